/* ctl.h - the scheduler <-> runner control protocol (docs/ctl.md).
 *
 * Control messages share the runner's socketpair and the framing with event
 * frames, and are told apart by their first key: an event body starts with
 * "ts", a control body with "ctl" (a msgpack map whose "ctl" key, first,
 * names the message). Every message and each of its fields (name, type,
 * required) is in one table, ctl_defs[]; both the senders and the decoder are
 * driven by it, so the two processes cannot disagree about a field count or a
 * type, and docs/ctl.md documents the same table.
 *
 *   scheduler -> runner   start, claim_ok, claim_denied, acquired, acquire_denied
 *   runner -> scheduler   plan, log, timeout, claim, acquire, release, fixture_wait, done
 *
 * Sending: one typed function per message, ctl_put_<name>(out, fields...),
 * appends the whole frame (header + body) to out; or, for a message whose
 * fields need packing by hand, ctl_begin(&w, out, name, nfields), the key and
 * value of each field with ctl_key/ctl_str and the msgpack packer w.pk, then
 * ctl_end(&w), which checks the finished body against the table and rolls
 * the buffer back on any mismatch. On failure out is left as it was.
 *
 * Receiving: ctl_parse() (or ctl_parse_dir(), which also checks the
 * direction) decodes a body strictly against the table: an unknown message,
 * a missing required field, a field the message does not have, a repeated
 * field, a value of the wrong type or out of range, or bytes after the map
 * are -EBADMSG with one line in err naming the message and field. After a
 * successful parse every required field is present with its declared type,
 * so the ctl_get_* accessors of those fields cannot fail. The message keeps
 * pointers into body: body must outlive it.
 */
#ifndef PV_CTL_H
#define PV_CTL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "mpr.h"

#define CTL_MAX_KEYS 24
/* a lab boots at most this many VMs with one acquire (MAX_VMS in the runner) */
#define CTL_MAX_VMS 64

enum ctl_dir {
	CTL_TO_RUNNER, /* scheduler -> runner */
	CTL_TO_SCHED,  /* runner -> scheduler */
};

enum ctl_id {
	CTL_START,
	CTL_CLAIM_OK,
	CTL_CLAIM_DENIED,
	CTL_ACQUIRED,
	CTL_ACQUIRE_DENIED,
	CTL_PLAN,
	CTL_LOG,
	CTL_TIMEOUT,
	CTL_CLAIM,
	CTL_ACQUIRE,
	CTL_RELEASE,
	CTL_FIXTURE_WAIT,
	CTL_DONE,
	CTL_COUNT,
};

enum ctl_type {
	CTL_T_STR,     /* str */
	CTL_T_STR_NIL, /* str, or nil for "none" */
	CTL_T_BOOL,
	CTL_T_UINT,  /* unsigned integer up to the field's max */
	CTL_T_STRV,  /* array of str */
	CTL_T_UINTV, /* array of unsigned integers up to the field's max */
	CTL_T_PLAN,  /* array of [name str, meta map] (the map is read by pv_meta_map_read) */
};

struct ctl_field {
	const char *name;
	enum ctl_type type;
	bool required;
	uint64_t max;       /* CTL_T_UINT / CTL_T_UINTV: largest value */
	uint32_t max_count; /* arrays: most elements (0: as many as fit the frame) */
};

struct ctl_def {
	const char *name;
	enum ctl_dir dir;
	unsigned nfields;
	const struct ctl_field *fields;
};

/* Indexed by enum ctl_id. */
extern const struct ctl_def ctl_defs[CTL_COUNT];

/* The definition of the message called name (len bytes), or NULL. */
const struct ctl_def *ctl_def_find(const char *name, size_t len);
const char *ctl_type_name(enum ctl_type t);

/* True if body starts like a control message (a map whose first key is "ctl"). */
bool ctl_is_ctl(const uint8_t *body, size_t len);

/* ---- sending ---------------------------------------------------------------- */

/* Each appends one frame to out: 0, or -ENOMEM / -EMSGSIZE (out unchanged). */
struct ctl_start {
	const char *config;    /* NULL: none */
	const char *scratch;
	const char *path;      /* root-relative */
	const char *file;      /* absolute */
	const char *const *roots;
	size_t nroots;
	const char *cache_dir; /* NULL: none */
	const char *fixture;   /* NULL: not a fixture build */
	size_t fixture_len;
	bool force, include_slow;
	const char *const *tags;
	size_t ntags;
	const char *const *no_tags;
	size_t nno_tags;
	bool interactive;     /* the terminal is the runner's: t:pause() stops there (provium repl/shell, --debug) */
	const char *pause_at; /* NULL, or the test after whose body the runner pauses (provium shell --at) */
	const char *const *tag_meta; /* --tag-meta KEY=VALUE */
	size_t ntag_meta;
	const char *const *no_tag_meta; /* --no-tag-meta KEY=VALUE */
	size_t nno_tag_meta;
	const char *const *only; /* --rerun-failed: the file's tests that run (none: all) */
	size_t nonly;
};
int ctl_put_start(struct pv_buf *out, const struct ctl_start *s);
int ctl_put_claim_ok(struct pv_buf *out);
int ctl_put_claim_denied(struct pv_buf *out, const char *reason);
/* cids: ncids consecutive ids starting at first_cid */
int ctl_put_acquired(struct pv_buf *out, uint32_t first_cid, uint32_t ncids);
int ctl_put_acquire_denied(struct pv_buf *out, const char *reason);
struct pv_meta_map;
/* get(ctx, i, ...) names test i and its meta, for i in [0, ntests). */
int ctl_put_plan(struct pv_buf *out, size_t ntests,
		 void (*get)(void *ctx, size_t i, const char **name, const struct pv_meta_map **meta), void *ctx,
		 struct pv_err *err);
int ctl_put_log(struct pv_buf *out, const char *test, const char *msg, size_t msg_len);
int ctl_put_timeout(struct pv_buf *out, uint64_t ns);
int ctl_put_claim(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus);
/* vms: at most CTL_MAX_VMS (else -EINVAL) */
int ctl_put_acquire(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus, uint32_t vms);
int ctl_put_release(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus);
int ctl_put_fixture_wait(struct pv_buf *out, bool waiting);
int ctl_put_done(struct pv_buf *out);

/* The checked builder behind them (see the top of this file). */
struct ctl_writer {
	struct pv_buf *out;
	size_t start;
	msgpack_packer pk;
	bool oom;
};

void ctl_begin(struct ctl_writer *w, struct pv_buf *out, const char *name, unsigned nfields);
void ctl_key(struct ctl_writer *w, const char *key);
void ctl_str(struct ctl_writer *w, const char *s, size_t len);
/* 0, or -ENOMEM / -EMSGSIZE / -EPROTO (the body does not match the table);
 * on failure the buffer is rolled back and err (if non-NULL) says why. */
int ctl_end_err(struct ctl_writer *w, struct pv_err *err);
int ctl_end(struct ctl_writer *w);

/* ---- receiving -------------------------------------------------------------- */

struct ctl_msg {
	char name[32];
	const struct ctl_def *def; /* NULL for ctl_parse_any */
	unsigned nkeys;
	struct {
		const uint8_t *key;
		uint32_t key_len;
		struct mpr at; /* cursor positioned at the value */
	} kv[CTL_MAX_KEYS];
};

int ctl_parse(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err);
/* ctl_parse, and the message must travel in direction dir. */
int ctl_parse_dir(const uint8_t *body, size_t len, enum ctl_dir dir, struct ctl_msg *m, struct pv_err *err);
/* Any msgpack map of at most CTL_MAX_KEYS str keys, unchecked (name left
 * empty unless it has a "ctl" key); the agent client reads responses with it. */
int ctl_parse_any(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err);
bool ctl_is(const struct ctl_msg *m, const char *name);
/* A bin or str value: pointer into the message and length. */
bool ctl_get_raw(const struct ctl_msg *m, const char *key, const uint8_t **ret, uint32_t *ret_len);
bool ctl_get_int(const struct ctl_msg *m, const char *key, int64_t *ret);
/* Cursor at the value of key, or false if absent. */
bool ctl_find(const struct ctl_msg *m, const char *key, struct mpr *ret);
/* Malloc'd NUL-terminated copy of a str value, or NULL. */
char *ctl_get_strdup(const struct ctl_msg *m, const char *key);
bool ctl_get_uint(const struct ctl_msg *m, const char *key, uint64_t *ret);
bool ctl_get_bool(const struct ctl_msg *m, const char *key, bool *ret);
/* Malloc'd array of malloc'd strings from an array of str. */
char **ctl_get_strv(const struct ctl_msg *m, const char *key, size_t *ret_n);
void ctl_strv_free(char **v, size_t n);
/* Up to max values of an array of unsigned integers into ret; the count in
 * *ret_n. False if key is absent or not such an array. */
bool ctl_get_uintv(const struct ctl_msg *m, const char *key, uint32_t *ret, size_t max, size_t *ret_n);

#endif

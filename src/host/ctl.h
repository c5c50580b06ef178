/* ctl.h - control messages between the scheduler and a runner.
 *
 * They share the socketpair and the framing with event frames, and are told
 * apart by their first key: an event body starts with "ts", a control body
 * with "ctl" (a msgpack map whose "ctl" key names the message).
 *
 *   scheduler -> runner   start {path, file, roots[], include_slow, tags[], no_tags[], scheduler_pid}
 *                         claim_ok {} | claim_denied {reason}
 *   runner -> scheduler   plan {tests: [[name, meta], ...]}    after the file loaded
 *                         log {test, msg}                      t:log()
 *                         timeout {ns}                         provium.timeout = ...
 *                         claim {memory_bytes, cpus}           provium:claim{...}
 *                         done {}                              every test reported
 *
 * Building: ctl_begin(&b, pk, "name", nfields) then pack nfields key/value
 * pairs with the msgpack packer, then ctl_end(&b, start). Reading: ctl_parse()
 * then the ctl_get_* accessors.
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

#define CTL_MAX_KEYS 16

bool ctl_is_ctl(const uint8_t *body, size_t len);

struct ctl_writer {
	struct pv_buf *out;
	size_t start;
	msgpack_packer pk;
	bool oom;
};

void ctl_begin(struct ctl_writer *w, struct pv_buf *out, const char *name, unsigned nfields);
void ctl_key(struct ctl_writer *w, const char *key);
void ctl_str(struct ctl_writer *w, const char *s, size_t len);
/* 0, or -ENOMEM / -EMSGSIZE (the buffer is rolled back). */
int ctl_end(struct ctl_writer *w);

struct ctl_msg {
	char name[32];
	unsigned nkeys;
	struct {
		const uint8_t *key;
		uint32_t key_len;
		struct mpr at; /* cursor positioned at the value */
	} kv[CTL_MAX_KEYS];
};

int ctl_parse(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err);
/* Any msgpack map of at most CTL_MAX_KEYS str keys (name left empty unless
 * it has a "ctl" key); the agent client reads responses with it. */
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

#endif

/* event.h - the Provium event stream: every kind, its encoder and its decoder.
 *
 * This module is the single owner of the event contract
 * (spec/events-reference.txt, PROTOCOL_VERSION 1). Producers fill a struct
 * pv_event and call pv_event_encode(); consumers split frames with frame_dec
 * and call pv_event_decode(). Both directions are driven by one table of kinds
 * and fields in event.c, so the two cannot drift apart.
 *
 * Wire shape of a frame body: a msgpack map with exactly the keys
 *   ts      i64, ns since the Unix epoch
 *   kind    str, one of the names below
 *   payload map with exactly the fields of that kind
 * Optional values are nil when absent. MetaMap keys are encoded in byte order
 * (the reference's BTreeMap order).
 *
 * Decoding is strict: unknown kind, missing/extra/duplicate field, wrong type,
 * out-of-range integer, invalid UTF-8 in a str, nesting deeper than
 * PV_META_MAX_DEPTH or more than PV_META_MAX_VALUES values each fail with a
 * struct pv_err naming the field and the byte offset within the body.
 *
 * Ownership: a decoded event owns its strings and arrays in ev->arena; they are
 * valid until the next pv_event_decode() into the same event or
 * pv_event_release(). An event filled by a producer owns nothing.
 */
#ifndef PV_EVENT_H
#define PV_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"
#include "err.h"

#define PV_PROTOCOL_VERSION 1
#define PV_META_MAX_DEPTH 32
#define PV_META_MAX_VALUES (1u << 20)

/* A byte string; ptr need not be NUL-terminated (decoded ones are). */
struct pv_str {
	const char *ptr;
	size_t len;
};

#define PV_STR(lit) ((struct pv_str){ (lit), sizeof(lit) - 1 })
struct pv_str pv_str_c(const char *s); /* NULL becomes "" */
/* Byte order (memcmp, then the shorter first): how meta keys sort. */
int pv_str_cmp(const struct pv_str *a, const struct pv_str *b);

struct pv_resource {
	uint64_t memory_bytes;
	uint32_t cpus;
};

struct pv_opt_resource {
	bool present;
	struct pv_resource value;
};

struct pv_strlist {
	struct pv_str *items;
	uint32_t n;
};

enum pv_meta_type {
	PV_META_NIL,
	PV_META_BOOL,
	PV_META_INT,
	PV_META_FLOAT,
	PV_META_STR,
	PV_META_BIN,
	PV_META_ARRAY,
	PV_META_MAP,
};

struct pv_meta_value;
struct pv_meta_entry;

struct pv_meta_map {
	struct pv_meta_entry *entries;
	uint32_t n;
};

struct pv_meta_value {
	enum pv_meta_type type;
	union {
		bool b;
		int64_t i;
		double f;
		struct pv_str s; /* STR and BIN */
		struct {
			struct pv_meta_value *items;
			uint32_t n;
		} array;
		struct pv_meta_map map;
	} v;
};

struct pv_meta_entry {
	struct pv_str key;
	struct pv_meta_value value;
};

enum pv_file_status {
	PV_FILE_PASSED,
	PV_FILE_FAILED,
	PV_FILE_TIMED_OUT,
	PV_FILE_CRASHED,
};
const char *pv_file_status_name(enum pv_file_status s);

/* X(ENUM, name) for every kind, in the reference's order. */
#define PV_EVENT_KINDS(X)                                                                          \
	X(FILE_DISCOVERED, file_discovered)                                                        \
	X(FILE_DISPATCHED, file_dispatched)                                                        \
	X(FILE_BLOCKED, file_blocked)                                                              \
	X(FILE_COMPLETED, file_completed)                                                          \
	X(TEST_STARTED, test_started)                                                              \
	X(TEST_SKIPPED, test_skipped)                                                              \
	X(TEST_PASSED, test_passed)                                                                \
	X(TEST_FAILED, test_failed)                                                                \
	X(VM_SPAWNED, vm_spawned)                                                                  \
	X(VM_SHUTDOWN, vm_shutdown)                                                                \
	X(POOL_STATE, pool_state)                                                                  \
	X(CLAIM_ACQUIRED, claim_acquired)                                                          \
	X(CLAIM_RELEASED, claim_released)                                                          \
	X(FIXTURE_BUILD_STARTED, fixture_build_started)                                            \
	X(FIXTURE_BUILD_DONE, fixture_build_done)                                                  \
	X(FIXTURE_BUILD_WAITING, fixture_build_waiting)                                            \
	X(FIXTURE_CACHE_HIT, fixture_cache_hit)

enum pv_event_kind {
#define X(E, n) PV_EV_##E,
	PV_EVENT_KINDS(X)
#undef X
	PV_EV__COUNT
};

struct pv_ev_file_discovered { struct pv_str path; struct pv_strlist fixture_refs; struct pv_opt_resource declared_claim; };
struct pv_ev_file_dispatched { struct pv_str path; struct pv_resource reservation; };
struct pv_ev_file_blocked { struct pv_str path; struct pv_resource waiting_for; struct pv_str reason; };
struct pv_ev_file_completed { struct pv_str path; enum pv_file_status status; uint64_t duration_ns; };
struct pv_ev_test_started { struct pv_str path; struct pv_str name; struct pv_meta_map meta; };
struct pv_ev_test_skipped { struct pv_str path; struct pv_str name; struct pv_str reason; struct pv_meta_map meta; };
struct pv_ev_test_passed { struct pv_str path; struct pv_str name; uint64_t duration_ns; struct pv_meta_map meta; };
struct pv_ev_test_failed {
	struct pv_str path;
	struct pv_str name;
	uint64_t duration_ns;
	struct pv_str reason;
	struct pv_str console_excerpt;
	struct pv_meta_map meta;
};
struct pv_ev_vm_spawned { struct pv_str file; struct pv_str vm_name; struct pv_str profile; uint64_t memory_bytes; uint32_t cid; };
struct pv_ev_vm_shutdown { struct pv_str file; struct pv_str vm_name; uint64_t duration_ns; };
struct pv_ev_pool_state { struct pv_resource used; struct pv_resource available; };
struct pv_ev_claim_acquired { struct pv_str path; struct pv_resource amount; };
struct pv_ev_claim_released { struct pv_str path; struct pv_resource amount; };
struct pv_ev_fixture_build_started { struct pv_str path; };
struct pv_ev_fixture_build_done { struct pv_str path; uint64_t duration_ns; uint64_t snapshot_bytes; };
struct pv_ev_fixture_build_waiting { struct pv_str path; struct pv_str held_by_file; };
struct pv_ev_fixture_cache_hit { struct pv_str path; };

struct pv_event {
	int64_t ts;
	enum pv_event_kind kind;
	union {
#define X(E, n) struct pv_ev_##n n;
		PV_EVENT_KINDS(X)
#undef X
	} u;
	struct pv_arena arena; /* owns decoded data */
};

const char *pv_event_kind_name(enum pv_event_kind k);
/* The kind named by s, or -1. */
int pv_event_kind_from_name(const char *s, size_t len);

/* ns since the Unix epoch (CLOCK_REALTIME). */
int64_t pv_now_ns(void);

void pv_event_init(struct pv_event *ev);
void pv_event_release(struct pv_event *ev);

/* Appends one complete frame (length header + body) to out.
 * -EINVAL with err set for an event that breaks the contract (invalid UTF-8 in
 * a str field, duplicate meta key, nesting too deep, unknown kind);
 * -EMSGSIZE for a body over FRAME_MAX_BODY. out is left as it was on failure. */
int pv_event_encode(const struct pv_event *ev, struct pv_buf *out, struct pv_err *err);

/* Decodes one frame body. 0 or a negative errno with err set; err->offset is
 * relative to body. ev must have been initialised. */
int pv_event_decode(struct pv_event *ev, const uint8_t *body, size_t len, struct pv_err *err);

/* A MetaMap on its own, for messages other than events. pv_meta_map_pack
 * packs with the caller's msgpack packer (keys in byte order);
 * pv_meta_map_read decodes one at the reader's position into arena. */
struct msgpack_packer;
struct mpr;
int pv_meta_map_pack(struct msgpack_packer *pk, const struct pv_meta_map *m, struct pv_err *err);
int pv_meta_map_read(struct mpr *r, struct pv_arena *a, struct pv_meta_map *out, struct pv_err *err);

/* Looks a key up in a (sorted) meta map; NULL if absent. */
const struct pv_meta_value *pv_meta_get(const struct pv_meta_map *m, const char *key);

/* The meta map of test_* events, NULL for other kinds. */
const struct pv_meta_map *pv_event_meta(const struct pv_event *ev);

/* Deep equality of two events (ts, kind and payload; meta compared by content). */
bool pv_event_equal(const struct pv_event *a, const struct pv_event *b);

#endif

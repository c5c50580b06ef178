/* mpr.h - a bounds-checked, allocation-free msgpack reader.
 *
 * Why not msgpack-c's unpacker: it allocates every array and map by the count
 * the input declares before reading a single element (a 5-byte frame can ask for
 * gigabytes), it reports no byte offsets, and its depth limit is not
 * distinguishable from other parse errors. Everything Provium reads may come
 * from an untrusted guest or a damaged file, so decoding walks the bytes with
 * this cursor instead. Encoding uses msgpack-c's packer.
 *
 * Protocol:
 *   1. mpr_init(&r, buf, len).
 *   2. mpr_next(&r, &item) reads one item header. For str/bin/ext the payload
 *      is consumed too (item.v.raw points into buf). For arrays and maps only the
 *      header is consumed: the caller then reads item.v.count elements (maps:
 *      count key/value pairs) with further mpr_next/mpr_skip calls.
 *   3. On failure the cursor does not advance and err names the offset.
 * Container counts are checked against the bytes left (every element takes at
 * least one byte), so a caller may size an allocation by item.v.count.
 */
#ifndef PV_MPR_H
#define PV_MPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum mpr_type {
	MPR_NIL,
	MPR_BOOL,
	MPR_UINT,  /* non-negative integer, any width: v.u */
	MPR_INT,   /* negative integer: v.i */
	MPR_FLOAT, /* float32 or float64: v.f */
	MPR_STR,
	MPR_BIN,
	MPR_ARRAY,
	MPR_MAP,
	MPR_EXT,
};

struct mpr_item {
	enum mpr_type type;
	size_t offset; /* of the item's first byte, relative to the buffer */
	int8_t ext_type;
	union {
		bool b;
		uint64_t u;
		int64_t i;
		double f;
		uint32_t count; /* array elements or map pairs */
		struct {
			const uint8_t *ptr;
			uint32_t len;
		} raw; /* str, bin, ext */
	} v;
};

struct mpr {
	const uint8_t *base;
	const uint8_t *p;
	const uint8_t *end;
};

static inline void mpr_init(struct mpr *r, const void *buf, size_t len)
{
	r->base = buf;
	r->p = buf;
	r->end = r->base + len;
}

static inline size_t mpr_offset(const struct mpr *r) { return (size_t)(r->p - r->base); }
static inline size_t mpr_left(const struct mpr *r) { return (size_t)(r->end - r->p); }

/* 0, or -EBADMSG for malformed input (reserved byte 0xc1, impossible count)
 * or -ENODATA when the buffer ends inside the item. */
int mpr_next(struct mpr *r, struct mpr_item *out, struct pv_err *err);

/* Skips one complete item, descending at most max_depth containers deep
 * (-ELOOP beyond). */
int mpr_skip(struct mpr *r, unsigned max_depth, struct pv_err *err);

const char *mpr_type_name(enum mpr_type t);

/* True if [s, s+len) is well-formed UTF-8 (no surrogates, no overlongs). */
bool pv_utf8_valid(const uint8_t *s, size_t len);
/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes left) and its
 * code point into *ret_cp (may be NULL), or 0 if the bytes there are not one
 * (overlong, surrogate, above U+10FFFF, truncated). */
size_t pv_utf8_seq(const uint8_t *s, size_t n, uint32_t *ret_cp);

#endif

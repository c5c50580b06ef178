/* buf.h - a growable byte buffer.
 *
 * Lifecycle: struct pv_buf b = PV_BUF_INIT; ... pv_buf_release(&b).
 * Appends check for size overflow and return -ENOMEM instead of aborting, so a
 * caller fed hostile lengths fails cleanly. data is NULL only while cap is 0.
 */
#ifndef PV_BUF_H
#define PV_BUF_H

#include <stddef.h>
#include <stdint.h>

struct pv_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

#define PV_BUF_INIT { NULL, 0, 0 }

/* Ensures room for `extra` more bytes; 0 or -ENOMEM. */
int pv_buf_reserve(struct pv_buf *b, size_t extra);
int pv_buf_append_slow(struct pv_buf *b, const void *data, size_t n);
/* Inline fast path: encoders append many small pieces. */
static inline int pv_buf_append(struct pv_buf *b, const void *data, size_t n)
{
	if (b->cap - b->len >= n && n) {
		__builtin_memcpy(b->data + b->len, data, n);
		b->len += n;
		return 0;
	}
	return pv_buf_append_slow(b, data, n);
}
/* Drops the first n bytes (n <= len). */
void pv_buf_consume(struct pv_buf *b, size_t n);
static inline void pv_buf_reset(struct pv_buf *b) { b->len = 0; }
void pv_buf_release(struct pv_buf *b);

/* Grows the array that arr points to (a pointer to T *, elements of size
 * elem, *cap of them allocated) so that it can hold n + 1: doubles, from 16.
 * 0 or -ENOMEM (the array is then unchanged). */
int pv_grow_array(void *arr, size_t *cap, size_t n, size_t elem);

#endif

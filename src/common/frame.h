/* frame.h - length-prefixed framing shared by the event stream and the guest wire.
 *
 * A frame is a 4-byte big-endian body length followed by that many bytes of
 * body (one msgpack item). Bodies over FRAME_MAX_BODY are rejected from the
 * header alone, before anything is allocated for them.
 *
 * Reading protocol (struct frame_dec, incremental, works for blocking and
 * non-blocking fds alike):
 *   1. frame_dec_init(&d).
 *   2. Bring bytes in with frame_dec_read_fd(&d, fd) or frame_dec_feed().
 *   3. Call frame_dec_next() until it returns 0 ("need more"). Each 1 hands out
 *      one body, valid until the next read/feed.
 *   4. On EOF call frame_dec_finish(): 0 when the stream ended at a frame
 *      boundary, -ENODATA naming a truncated header or body otherwise.
 *   5. frame_dec_release(&d).
 */
#ifndef PV_FRAME_H
#define PV_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

#define FRAME_HDR_LEN 4u
#define FRAME_MAX_BODY (128u * 1024u * 1024u)

static inline void frame_put_len(uint8_t *hdr, uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

static inline uint32_t frame_get_len(const uint8_t *hdr)
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
}

struct frame_dec {
	struct pv_buf buf;
	size_t pos;          /* first unconsumed byte in buf */
	uint64_t base_off;   /* stream offset of buf.data[0] */
	uint32_t max_body;   /* FRAME_MAX_BODY unless lowered */
	int failed;          /* sticky error after an oversize header */
};

void frame_dec_init(struct frame_dec *d);
void frame_dec_release(struct frame_dec *d);

/* Appends bytes to the decoder; 0 or -ENOMEM. */
int frame_dec_feed(struct frame_dec *d, const void *data, size_t n);

/* One read(2) into the decoder: bytes read, 0 at EOF, or a negative errno
 * (-EAGAIN for a non-blocking fd with nothing to read). */
ssize_t frame_dec_read_fd(struct frame_dec *d, int fd);

/* 1: a complete frame; *body and *len describe it and *frame_off (if non-NULL) is
 *    the stream offset of its header. 0: more bytes needed.
 * -EMSGSIZE: the header declares a body over max_body (the decoder stays failed). */
int frame_dec_next(struct frame_dec *d, const uint8_t **body, uint32_t *len, uint64_t *frame_off,
		   struct pv_err *err);

/* Stream offset of the next unconsumed byte. */
static inline uint64_t frame_dec_offset(const struct frame_dec *d) { return d->base_off + d->pos; }

/* At EOF: 0 at a frame boundary, else -ENODATA describing the truncation. */
int frame_dec_finish(struct frame_dec *d, struct pv_err *err);

/* Writes all of buf, retrying on EINTR and short writes; 0 or -errno. */
int pv_write_all(int fd, const void *buf, size_t n);

#endif

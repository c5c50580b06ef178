#include "frame.h"

#include <errno.h>
#include <unistd.h>

void frame_dec_init(struct frame_dec *d)
{
	d->buf = (struct pv_buf)PV_BUF_INIT;
	d->pos = 0;
	d->base_off = 0;
	d->max_body = FRAME_MAX_BODY;
	d->failed = 0;
}

void frame_dec_release(struct frame_dec *d)
{
	pv_buf_release(&d->buf);
	d->pos = 0;
}

/* Drops consumed bytes so the buffer does not grow with the stream. */
static void compact(struct frame_dec *d)
{
	if (d->pos == 0)
		return;
	pv_buf_consume(&d->buf, d->pos);
	d->base_off += d->pos;
	d->pos = 0;
}

int frame_dec_feed(struct frame_dec *d, const void *data, size_t n)
{
	compact(d);
	return pv_buf_append(&d->buf, data, n);
}

ssize_t frame_dec_read_fd(struct frame_dec *d, int fd)
{
	size_t want = 64 * 1024, avail;
	ssize_t n;
	int rc;

	compact(d);
	avail = d->buf.len;
	/* Read a whole pending body in as few calls as possible, but never size the
	 * buffer by a header that frame_dec_next would reject. */
	if (avail >= FRAME_HDR_LEN) {
		uint32_t body = frame_get_len(d->buf.data);
		if (body <= d->max_body && FRAME_HDR_LEN + (size_t)body > avail &&
		    FRAME_HDR_LEN + (size_t)body - avail > want)
			want = FRAME_HDR_LEN + (size_t)body - avail;
	}
	rc = pv_buf_reserve(&d->buf, want);
	if (rc < 0)
		return rc;
	do {
		n = read(fd, d->buf.data + d->buf.len, d->buf.cap - d->buf.len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	d->buf.len += (size_t)n;
	return n;
}

int frame_dec_next(struct frame_dec *d, const uint8_t **body, uint32_t *len, uint64_t *frame_off,
		   struct pv_err *err)
{
	size_t avail = d->buf.len - d->pos;
	uint32_t n;

	if (d->failed)
		return pv_err_set(err, -EMSGSIZE, (size_t)frame_dec_offset(d),
				  "frame stream is unusable after an oversize frame");
	if (avail < FRAME_HDR_LEN)
		return 0;
	n = frame_get_len(d->buf.data + d->pos);
	if (n > d->max_body) {
		d->failed = 1;
		return pv_err_set(err, -EMSGSIZE, (size_t)frame_dec_offset(d),
				  "frame header declares a body of %u bytes, over the %u-byte limit", n,
				  d->max_body);
	}
	if (avail - FRAME_HDR_LEN < n)
		return 0;
	if (frame_off)
		*frame_off = frame_dec_offset(d);
	*body = d->buf.data + d->pos + FRAME_HDR_LEN;
	*len = n;
	d->pos += FRAME_HDR_LEN + n;
	return 1;
}

int frame_dec_finish(struct frame_dec *d, struct pv_err *err)
{
	size_t avail = d->buf.len - d->pos;

	if (avail == 0)
		return 0;
	if (avail < FRAME_HDR_LEN)
		return pv_err_set(err, -ENODATA, (size_t)frame_dec_offset(d),
				  "stream ends inside a frame header (%zu of 4 bytes)", avail);
	return pv_err_set(err, -ENODATA, (size_t)frame_dec_offset(d),
			  "stream ends inside a frame body (%zu of %u bytes)", avail - FRAME_HDR_LEN,
			  frame_get_len(d->buf.data + d->pos));
}

int pv_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

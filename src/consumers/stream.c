#include "stream.h"

#include <errno.h>
#include <string.h>

#include "frame.h"

int pv_stream_read_fd(int fd, pv_stream_cb cb, void *ctx, uint64_t *frames_read, struct pv_err *err)
{
	struct frame_dec d;
	struct pv_event ev;
	uint64_t frames = 0;
	int rc = 0;

	frame_dec_init(&d);
	pv_event_init(&ev);
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		uint64_t off;
		ssize_t n;

		while ((rc = frame_dec_next(&d, &body, &len, &off, err)) == 1) {
			rc = pv_event_decode(&ev, body, len, err);
			if (rc < 0) {
				rc = -EBADMSG; /* a whole frame that does not decode: -ENODATA means a cut stream only */
				if (err) {
					err->offset = (size_t)(off + FRAME_HDR_LEN + err->offset);
					pv_err_prefix(err, "frame %llu (at byte %llu)",
						      (unsigned long long)frames + 1, (unsigned long long)off);
				}
				goto out;
			}
			frames++;
			rc = cb(ctx, &ev, off);
			if (rc)
				goto out;
		}
		if (rc < 0)
			goto out;
		n = frame_dec_read_fd(&d, fd);
		if (n < 0) {
			rc = pv_err_set(err, (int)n, (size_t)frame_dec_offset(&d), "read failed: %s",
					strerror((int)-n));
			goto out;
		}
		if (n == 0) {
			rc = frame_dec_finish(&d, err);
			goto out;
		}
	}
out:
	if (frames_read)
		*frames_read = frames;
	pv_event_release(&ev);
	frame_dec_release(&d);
	return rc;
}

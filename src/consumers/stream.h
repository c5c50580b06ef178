/* stream.h - reading a whole event stream from an fd (file, pipe, socket).
 *
 * pv_stream_read_fd() reads until EOF, decodes every frame and hands each
 * event to cb in order. It stops at the first problem, after every event
 * before it has been delivered, and describes the problem with the stream
 * offset of the offending byte in err->offset. A stream that ends inside a
 * frame is an error (-ENODATA), never a wait; a whole frame that does not
 * decode is -EBADMSG, so -ENODATA always means the stream was cut short.
 */
#ifndef PV_STREAM_H
#define PV_STREAM_H

#include <stdint.h>

#include "err.h"
#include "event.h"

/* Returning non-zero from cb stops reading; that value is returned. */
typedef int (*pv_stream_cb)(void *ctx, const struct pv_event *ev, uint64_t frame_off);

int pv_stream_read_fd(int fd, pv_stream_cb cb, void *ctx, uint64_t *frames_read, struct pv_err *err);

#endif

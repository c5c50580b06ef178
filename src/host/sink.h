/* sink.h - where encoded event frames go: a file, a fd (stdout), a unix socket.
 *
 * A sink takes complete frames (header + body, as pv_event_encode makes them)
 * and never splits one: whatever a reader sees is a sequence of whole frames.
 *
 *   file    opened O_APPEND; each frame is one write() under flock(LOCK_EX), so
 *           several processes appending to one file interleave only at frame
 *           boundaries. A write that fails part-way (disk full) is cut back off
 *           the file, so the file stays a valid stream of everything before it.
 *   fd      frames written to an fd the caller owns (stdout for --events-stdout).
 *   socket  a listening unix socket (mode 0600) with any number of clients.
 *           Clients joining later see frames from then on. A client that falls
 *           more than PV_SINK_CLIENT_BACKLOG bytes behind is disconnected: the
 *           producer never waits on a consumer. On close, pending bytes get up
 *           to PV_SINK_CLOSE_GRACE_MS to drain, then the socket is unlinked.
 *
 * Protocol: pv_sink_open_*() -> pv_sink_write()* -> pv_sink_close().
 * pv_sink_write() returns 0 or a negative errno with err set; after a failure
 * the sink is unusable (pv_sink_write keeps returning the error) except a
 * socket sink, where a failing client is simply dropped.
 */
#ifndef PV_SINK_H
#define PV_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"

#define PV_SINK_CLIENT_BACKLOG (8u * 1024u * 1024u)
#define PV_SINK_CLOSE_GRACE_MS 2000

struct pv_sink;

int pv_sink_open_file(const char *path, bool truncate, struct pv_sink **ret, struct pv_err *err);
/* fd stays the caller's; it is not closed by pv_sink_close. */
int pv_sink_open_fd(int fd, const char *name, struct pv_sink **ret, struct pv_err *err);
/* Refuses a path that is not a socket, or a socket another process serves;
 * a stale socket left by a dead process is replaced. */
int pv_sink_open_socket(const char *path, struct pv_sink **ret, struct pv_err *err);

int pv_sink_write(struct pv_sink *s, const uint8_t *frame, size_t len, struct pv_err *err);

/* File sinks: empties the file (under the lock) for a new --watch iteration. */
int pv_sink_restart(struct pv_sink *s, struct pv_err *err);

/* Socket sinks: accepts waiting clients and pushes pending bytes, without
 * blocking. Event loops call it when pv_sink_poll_fd() is readable. */
void pv_sink_service(struct pv_sink *s);
int pv_sink_poll_fd(const struct pv_sink *s); /* listening fd, or -1 */
unsigned pv_sink_clients(const struct pv_sink *s);
/* Clients dropped so far for falling behind. */
unsigned pv_sink_dropped(const struct pv_sink *s);

const char *pv_sink_name(const struct pv_sink *s);

/* NULL-safe; returns NULL. */
struct pv_sink *pv_sink_close(struct pv_sink *s);

/* A hub encodes each event once and writes it to every sink. A sink that fails
 * is reported once through report() and then left out; the run goes on. */
#define PV_HUB_MAX_SINKS 8

struct pv_hub {
	struct pv_sink *sinks[PV_HUB_MAX_SINKS];
	bool failed[PV_HUB_MAX_SINKS];
	unsigned n;
	struct pv_buf scratch;
	void (*report)(void *ctx, const char *msg);
	void *report_ctx;
};

void pv_hub_init(struct pv_hub *h, void (*report)(void *ctx, const char *msg), void *ctx);
int pv_hub_add(struct pv_hub *h, struct pv_sink *s);
/* Sets ev->ts to now if it is 0, encodes, writes to every healthy sink.
 * Returns 0, or -EINVAL if the event itself cannot be encoded (reported). */
int pv_hub_emit(struct pv_hub *h, struct pv_event *ev);
/* Writes an already-encoded frame (e.g. forwarded from a runner). */
void pv_hub_emit_frame(struct pv_hub *h, const uint8_t *frame, size_t len);
void pv_hub_release(struct pv_hub *h); /* closes every sink */

#endif

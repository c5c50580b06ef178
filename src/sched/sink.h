/* sink.h - where provium's output goes: encoded event frames to a file, a fd
 * (stdout) or a unix socket, and the text outputs (the human report, --json)
 * to a fd.
 *
 * A sink takes complete frames (header + body, as pv_event_encode makes them)
 * and never splits one: whatever a reader sees is a sequence of whole frames.
 *
 *   file    opened O_APPEND; each frame is one write() under flock(LOCK_EX), so
 *           several processes appending to one file interleave only at frame
 *           boundaries. A write that fails part-way (disk full) is cut back off
 *           the file, so the file stays a valid stream of everything before it.
 *   fd      frames written to an fd the caller owns (stdout for --events-stdout),
 *           or text through pv_sink_stream().
 *   socket  a listening unix socket (mode 0600) with any number of clients.
 *           A client is first sent the current run's frames so far (the
 *           replay, below), then every frame from then on. A client that
 *           falls more than PV_SINK_CLIENT_BACKLOG bytes behind the frames
 *           written since it joined is disconnected: the producer never waits
 *           on a consumer. On close, pending bytes get up to
 *           PV_SINK_CLOSE_GRACE_MS to drain, then the socket is unlinked.
 *
 * Runs. A run is what one scheduler run emits: its file_discovered frames,
 * then everything else (docs/events.md). pv_sink_begin_run() says that the
 * frames that follow belong to a new run (provium --watch calls it before
 * every run after the first): a file sink is emptied at once; a socket sink
 * forgets its replay when the new run's first frame arrives, so a client that
 * joins in between (a --watch pause) still gets the whole previous run.
 *
 * Replay. A socket sink keeps every frame of the current run, up to
 * PV_SINK_REPLAY_MAX bytes, and queues them for each client it accepts: a
 * client that connects mid-run, or after the run, sees the run from its start.
 * A run that grows past the cap stops being kept (its memory is freed): a
 * client that joins after that is sent nothing until the next run begins, so
 * it still only ever sees whole runs; clients already connected are not
 * affected. A client's queue is therefore bounded by the replay it was given
 * plus PV_SINK_CLIENT_BACKLOG.
 *
 * Serving. pv_sink_poll_fd() is an epoll fd that is readable while the sink
 * has work that needs no new frame: a client waiting to be accepted (and sent
 * its replay), a client that can take more of its queue, or one that hung up.
 * An event loop polls it and calls pv_sink_service(), so a consumer that
 * connects while nothing is emitted (a --watch pause, a slow VM boot) is
 * served at once. Writing a frame services the sink too.
 *
 * Failures. pv_sink_write() returns 0 or a negative errno with err set; after
 * a failure a file or fd sink refuses every write (pv_sink_write keeps
 * returning the error) until pv_sink_begin_run() restarts a file sink. A
 * socket sink never fails: a failing client is simply dropped. A sink added
 * to a hub reports its first failure (and a new one after a restart) through
 * the hub's report(), whether the write came from the hub or from the sink's
 * stream; pv_hub_release() counts the sinks that ever failed, which provium
 * turns into its exit status.
 *
 * Protocol: pv_sink_open_*() -> [pv_hub_add*()] -> pv_sink_write()* /
 * pv_sink_stream() writes, pv_sink_service() when pv_sink_poll_fd() is
 * readable, pv_sink_begin_run() between runs -> pv_sink_close() (or
 * pv_hub_release()).
 */
#ifndef PV_SINK_H
#define PV_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ev.h>

#include "err.h"
#include "event.h"

#define PV_SINK_CLIENT_BACKLOG (8u * 1024u * 1024u)
#define PV_SINK_REPLAY_MAX (32u * 1024u * 1024u)
#define PV_SINK_CLOSE_GRACE_MS 2000

struct pv_sink;
struct pv_hub;

int pv_sink_open_file(const char *path, bool truncate, struct pv_sink **ret, struct pv_err *err);
/* fd stays the caller's; it is not closed by pv_sink_close. name says what
 * goes there, for messages: "cannot write NAME: ..." ("events to stdout",
 * "the --json output to stdout"). */
int pv_sink_open_fd(int fd, const char *name, struct pv_sink **ret, struct pv_err *err);
/* Refuses a path that is not a socket, or a socket another process serves;
 * a stale socket left by a dead process is replaced. */
int pv_sink_open_socket(const char *path, struct pv_sink **ret, struct pv_err *err);

int pv_sink_write(struct pv_sink *s, const uint8_t *frame, size_t len, struct pv_err *err);

/* fd sinks: a buffered stdio stream whose bytes go through pv_sink_write(),
 * for text outputs. Created on first use, owned by the sink (closed, and so
 * flushed, by pv_sink_close); NULL if out of memory or not an fd sink. Its
 * fileno() is -1: ask the sink's fd for terminal properties. */
FILE *pv_sink_stream(struct pv_sink *s);

/* The frames that follow belong to a new run (see the top of this file). */
int pv_sink_begin_run(struct pv_sink *s, struct pv_err *err);
/* File sinks: empties the file (under the lock); pv_sink_begin_run does it. */
int pv_sink_restart(struct pv_sink *s, struct pv_err *err);

/* Socket sinks: accepts waiting clients (sending them the replay), pushes
 * pending bytes, drops clients that hung up; never blocks. No-op for others. */
void pv_sink_service(struct pv_sink *s);
int pv_sink_poll_fd(const struct pv_sink *s); /* epoll fd, or -1 if not a socket sink */
unsigned pv_sink_clients(const struct pv_sink *s);
/* Clients dropped so far for falling behind. */
unsigned pv_sink_dropped(const struct pv_sink *s);
/* Bytes of the current run kept for replay (0 once past PV_SINK_REPLAY_MAX). */
size_t pv_sink_replay_bytes(const struct pv_sink *s);

const char *pv_sink_name(const struct pv_sink *s);
/* 0, or the negative errno the sink failed with. */
int pv_sink_failed(const struct pv_sink *s);

/* NULL-safe; returns NULL. */
struct pv_sink *pv_sink_close(struct pv_sink *s);

/* A hub encodes each event once and writes it to every frame sink, and
 * watches the text sinks (written through their streams) the same way. A sink
 * that fails is reported once through report() and then left out; the run
 * goes on. */
#define PV_HUB_MAX_SINKS 8

struct pv_hub {
	struct pv_sink *sinks[PV_HUB_MAX_SINKS];
	bool text[PV_HUB_MAX_SINKS]; /* gets no frames */
	unsigned n;
	int ep; /* epoll over the sinks' poll fds, -1 until a socket sink is added */
	struct ev_loop *loop; /* set by pv_hub_attach */
	ev_io watch;          /* ep on loop */
	struct pv_buf scratch;
	void (*report)(void *ctx, const char *msg);
	void *report_ctx;
};

void pv_hub_init(struct pv_hub *h, void (*report)(void *ctx, const char *msg), void *ctx);
/* Frame sinks. -ENOSPC when full, -errno if its poll fd cannot be watched. */
int pv_hub_add(struct pv_hub *h, struct pv_sink *s);
/* Opens an fd sink for text named name, adds it as a text sink and returns
 * its stream; NULL (with err set) on failure. */
FILE *pv_hub_add_text(struct pv_hub *h, int fd, const char *name, struct pv_err *err);
/* Sets ev->ts to now if it is 0, encodes, writes to every healthy sink.
 * Returns 0, or -EINVAL if the event itself cannot be encoded (reported). */
int pv_hub_emit(struct pv_hub *h, struct pv_event *ev);
/* Writes an already-encoded frame (e.g. forwarded from a runner). */
void pv_hub_emit_frame(struct pv_hub *h, const uint8_t *frame, size_t len);
/* pv_sink_begin_run on every sink; failures are reported. */
void pv_hub_begin_run(struct pv_hub *h);
/* One fd for an event loop to poll (readable: call pv_hub_service), or -1
 * when no sink needs serving. */
int pv_hub_poll_fd(const struct pv_hub *h);
void pv_hub_service(struct pv_hub *h);
/* Serves the hub from loop from now on: whenever a sink has work that needs
 * no new frame (pv_hub_poll_fd readable), the loop calls pv_hub_service
 * within the turn, whoever runs the loop (the scheduler's run, the --watch
 * pause). Sinks added later are covered too. pv_hub_detach (and
 * pv_hub_release) stop it; the loop must outlive the attachment. */
void pv_hub_attach(struct pv_hub *h, struct ev_loop *loop);
void pv_hub_detach(struct pv_hub *h);
/* Closes every sink (flushing text streams); returns how many sinks failed
 * at any point, close included. */
unsigned pv_hub_release(struct pv_hub *h);

#endif

/* agent_client.h - the host end of the guest wire protocol (docs/wire.md).
 *
 * Protocol:
 *   1. agent_connect(): connects to the VM's agent chardev socket and waits
 *      (deadline) for the agent's hello; a different protocol version is an
 *      error naming both.
 *   2. agent_begin(&a, "op", nargs) returns a msgpack packer: pack nargs
 *      key/value pairs. agent_call() sends the request and waits until its
 *      response arrives or the deadline passes, watching QEMU's pidfd so a
 *      dying VM ends the wait at once. The response is in a->resp (valid until
 *      the next call).
 *   3. Any transport failure (QEMU gone, EOF, deadline) makes the connection
 *      dead: a->dead is set with the reason and later calls fail at once
 *      (except the soft deadline of agent_call_soft).
 */
#ifndef PV_AGENT_CLIENT_H
#define PV_AGENT_CLIENT_H

#include <msgpack.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "ctl.h"
#include "err.h"
#include "frame.h"

struct agent_conn {
	int fd;
	int pidfd; /* QEMU, or -1 */
	struct frame_dec dec;
	struct pv_buf out;
	struct pv_buf body; /* copy of the last response */
	msgpack_packer pk;
	uint32_t next_id, cur_id;
	bool dead;
	char dead_why[600];
	struct ctl_msg resp;
	int64_t agent_version;
	/* Frames without an id that are not its answer: push frames of streams
	 * ({"op": "stream", ...}) and a hello after the agent reconnected. The
	 * owner sets it after agent_connect (which clears the struct); m is valid
	 * only during the call, which must not use the connection. */
	void (*on_push)(void *ctx, const struct ctl_msg *m);
	void *push_ctx;
	unsigned hellos; /* hellos seen after the first: the agent (re)started */
	/* Nonzero: agent_begin and agent_frame_begin address the requests to
	 * this worker of the agent ({"worker": route}; docs/wire.md, Workers).
	 * The runner sets it around one op of a worker (lworker.c). */
	uint32_t route;
	int64_t hello_version; /* the protocol version of the last one */
	/* The last call returned -EINTR because agent_interrupt was set: the
	 * connection is fine, the answer will be dropped when it comes. */
	bool interrupted;
};

/* Set by a signal handler (Ctrl-C at provium repl's prompt, src/runner/repl.c):
 * while nonzero, a wait for the agent's answer stops with -EINTR ("interrupted")
 * and a->interrupted set, instead of waiting on. The owner clears it. */
extern volatile sig_atomic_t agent_interrupt;

/* deadline: CLOCK_MONOTONIC ns */
int agent_connect(struct agent_conn *a, const char *sock_path, int pidfd, uint64_t deadline, struct pv_err *err);
msgpack_packer *agent_begin(struct agent_conn *a, const char *op, unsigned nargs);
/* 0 with a->resp holding an ok response; -EREMOTEIO with err set to the agent's
 * message (errno in *ret_errno if non-NULL) for ok=false; other negative
 * errno for transport failures (then a->dead). deadline 0: none. */
int agent_call(struct agent_conn *a, uint64_t deadline, int *ret_errno, struct pv_err *err);
/* agent_call with a soft deadline, for ops the guest bounds itself (exec or
 * wait with a timeout): when it passes the call returns -ETIMEDOUT and the
 * connection stays usable; the late answer is skipped by its id. The guest
 * may still be busy with the op. */
int agent_call_soft(struct agent_conn *a, uint64_t deadline, int *ret_errno, struct pv_err *err);
/* The decoding halves of agent_connect and agent_call, without I/O (the fuzz
 * target's entries): each reads the frame body in a->body. agent_take_hello
 * checks a hello (as agent_connect). agent_take_response reads a response
 * to request a->cur_id: 1 when the frame is not it (a hello after a
 * reconnect, a late answer: the caller reads on), else as agent_call. */
int agent_take_hello(struct agent_conn *a, struct pv_err *err);
int agent_take_response(struct agent_conn *a, int *ret_errno, struct pv_err *err);
/* Reads one frame (blocking until one comes or the deadline passes: then
 * -ETIMEDOUT and the connection stays usable), handing a push to on_push;
 * answers to requests given up on are skipped. 0 after a frame; other
 * negative errno for transport failures (then a->dead). */
int agent_pump(struct agent_conn *a, uint64_t deadline, struct pv_err *err);
void agent_close(struct agent_conn *a);

/* Pipelined requests (vm:batch): agent_frame_begin packs a request of its
 * own id into f (not a->out, so single calls may come in between), and
 * agent_frames_send writes them all at once. agent_next_answer then reads
 * until the answer to one of the ids [f->first_id, f->first_id + f->n)
 * arrives, in whatever order the agent answers: *ret_id says which, a->resp
 * holds it; the return is as agent_call's (a deadline that passes kills the
 * connection). */
struct agent_frames {
	struct pv_buf buf;
	msgpack_packer pk;
	size_t open; /* offset of the frame being packed, SIZE_MAX if none */
	uint32_t first_id, n;
	bool oom, too_big;
};
void agent_frames_init(struct agent_frames *f);
void agent_frames_release(struct agent_frames *f);
msgpack_packer *agent_frame_begin(struct agent_conn *a, struct agent_frames *f, const char *op, unsigned nargs);
int agent_frames_send(struct agent_conn *a, struct agent_frames *f, struct pv_err *err);
int agent_next_answer(struct agent_conn *a, const struct agent_frames *f, uint64_t deadline, uint32_t *ret_id,
		      int *ret_errno, struct pv_err *err);

#endif

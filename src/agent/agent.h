/* agent.h - the guest agent (docs/wire.md): shared state, request decoding,
 * response encoding and the interfaces between its modules.
 *
 * Modules:
 *   main.c   process setup (PID 1 duties), the port, the poll() event loop
 *   wire.c   ag_req_* (decoding one request), ag_resp_* / ag_reply_* (encoding
 *            responses into the output queue), the hello message
 *   proc.c   proc_* (exec, spawn, wait, kill, stdin_write, close_stdin and
 *            every child's pipes, timers and reaping)
 *   fsops.c  fsop_* (read_file, write_file, stat, listdir, mkdir, unlink, rename)
 *   guest.c  guest_* (the agent's scheduling priority, the resume and clock
 *            ops, bringing lo up)
 *   stream.c stream_* / file_* (streams and file handles)
 *   raw.c    raw_* (syscall, syscall_async/await/cancel, ioctl, read_mem)
 *   worker.c worker_* (worker_spawn/kill/join and the relay to workers)
 *   bootfiles.c  bootfiles_* (the files and rng_seed boot options)
 *
 * Handling one request:
 *   1. main.c decodes a frame with ag_req_parse() and calls the op's handler.
 *   2. The handler reads its arguments with the ag_req_* getters (a type error
 *      returns -EINVAL with rq->msg set; reply with ag_reply_bad(rq)).
 *   3. It answers exactly once, now or later: ag_reply_ok(), ag_reply_err(), or
 *      ag_resp_begin() + msgpack fields + ag_resp_end(). An answer carries the
 *      connection generation of its request and is dropped if the host has
 *      reconnected since (ids restart on every connection).
 */
#ifndef PV_AGENT_H
#define PV_AGENT_H

#include <msgpack.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "mpr.h"
#include "sys.h"

#define AG_NAME "provium-agent"
#define AG_VERSION_STR AG_NAME " " PROVIUM_VERSION

/* Requests are nested at most this deep (env is the deepest legal value: 2). */
#define AG_MAX_DEPTH 8
/* argv and env entries per request: far more than execve accepts anyway. */
#define AG_MAX_STRV 65536u
/* Stop reading requests while this much output waits for a slow host. */
#define AG_OUT_HIGH (64u * 1024u * 1024u)

struct ag_state {
	bool pid1;
	bool guest;              /* in a guest: PID 1, or --guest (a systemd unit) */
	int log_fd;              /* /dev/console as PID 1, else stderr */
	uint64_t gen;            /* connection generation: +1 on every (re)connect */
	bool connected;          /* responses are queued only while connected */
	int protocol_version;    /* announced in hello */
	size_t out_bytes;        /* queued, unwritten response bytes */
	bool worker;             /* a worker of the guest's agent (--worker N) */
	uint32_t handle_base;    /* worker N: N << AG_HANDLE_BITS, else 0 */
};

/* Handles (processes, streams, files, calls) of worker N are
 * N << AG_HANDLE_BITS | k, so the agent routes an op on one to its worker. */
#define AG_HANDLE_BITS 24
#define AG_HANDLE_LOW ((1u << AG_HANDLE_BITS) - 1)
#define AG_MAX_WORKERS 255u

extern struct ag_state ag;

/* The next handle of a counter: handle_base | k, k never 0 (the caller still
 * skips one in use after wrapping). */
static inline uint32_t ag_next_handle(uint32_t *counter)
{
	uint32_t k;
	do
		k = (*counter)++ & AG_HANDLE_LOW;
	while (!k);
	return ag.handle_base | k;
}

/* Logs "provium-agent: ..." to the log fd (never to the port). */
void ag_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- requests (wire.c) ------------------------------------------------------ */

enum ag_key {
	AG_K_ID,
	AG_K_OP,
	AG_K_ARGV,
	AG_K_CMD,
	AG_K_ENV,
	AG_K_ENV_CLEAR,
	AG_K_CWD,
	AG_K_STDIN,
	AG_K_TIMEOUT_MS,
	AG_K_PROC,
	AG_K_SIGNAL,
	AG_K_DATA,
	AG_K_PATH,
	AG_K_APPEND,
	AG_K_MODE,
	AG_K_PARENTS,
	AG_K_FROM,
	AG_K_TO,
	AG_K_TIME_NS,
	AG_K_ENTROPY,
	AG_K_WHICH,
	AG_K_STREAM,
	AG_K_START,
	AG_K_FROM_END,
	AG_K_FILE,
	AG_K_READ,
	AG_K_WRITE,
	AG_K_CREATE,
	AG_K_TRUNCATE,
	AG_K_EXCLUSIVE,
	AG_K_N,
	AG_K_OFFSET,
	AG_K_WHENCE,
	AG_K_UID,
	AG_K_GID,
	AG_K_GROUPS,
	AG_K_DELTA_NS,
	AG_K_DURATION_NS,
	AG_K_NR,
	AG_K_ARGS,
	AG_K_BUFS,
	AG_K_PTRS,
	AG_K_CALL,
	AG_K_REQUEST,
	AG_K_ARG,
	AG_K_FD,
	AG_K_ADDR,
	AG_K_LEN,
	AG_K_WORKER,
	AG_K_CAPS,
	AG_K_UNSHARE,
	AG_K_HOSTNAME,
	AG_K_RNG_SEED,
	AG_K_MACHINE_ID,
	AG_K_COUNT
};

struct ag_req {
	uint32_t id;             /* 0 until a valid id was read */
	uint64_t gen;            /* connection the request came on */
	char op[32];             /* NUL-terminated, for messages */
	bool has[AG_K_COUNT];
	struct mpr at[AG_K_COUNT]; /* cursor positioned at each present value */
	char msg[256];           /* why parsing or a getter failed */
};

/* Decodes one request body. 0, or -EBADMSG with rq->msg set (rq->id stays 0
 * unless a valid id was read before the problem). Values stay in body: the
 * getters are valid only while it is. Unknown keys are ignored. */
int ag_req_parse(struct ag_req *rq, const uint8_t *body, size_t len);

/* Getters: 0 (the default when absent), or -EINVAL with rq->msg naming the key
 * and the type found. */
int ag_req_u64(struct ag_req *rq, enum ag_key k, uint64_t def, uint64_t *ret);
int ag_req_i64(struct ag_req *rq, enum ag_key k, int64_t def, int64_t *ret);
int ag_req_bool(struct ag_req *rq, enum ag_key k, bool def, bool *ret);
/* A str as a malloc'd C string (NULL when absent); embedded NULs are an error.
 * -ENOMEM on allocation failure. */
int ag_req_str(struct ag_req *rq, enum ag_key k, char **ret);
/* Required variant: absence is an error too. */
int ag_req_str_req(struct ag_req *rq, enum ag_key k, char **ret);
/* bin (or str) bytes pointing into the request; *present false when absent. */
int ag_req_bin(struct ag_req *rq, enum ag_key k, const uint8_t **ret, uint32_t *ret_len, bool *present);
/* An array of str as a NULL-terminated malloc'd vector (ag_strv_free). */
int ag_req_strv(struct ag_req *rq, enum ag_key k, char ***ret, size_t *ret_n);
/* A map str->str as a NULL-terminated vector of "KEY=VALUE". */
int ag_req_env(struct ag_req *rq, enum ag_key k, char ***ret, size_t *ret_n);
void ag_strv_free(char **v);
/* The raw value of key k for a getter of its own: 1 with *it (and *after, the
 * cursor past its header, for an array's elements) when present and not nil. */
int ag_req_item(struct ag_req *rq, enum ag_key k, struct mpr_item *it, struct mpr *after);
/* The key's name, for messages. */
const char *ag_key_name(enum ag_key k);
/* An array of unsigned 32-bit integers as a malloc'd vector (NULL when absent
 * or empty), at most AG_MAX_GROUPS entries. */
#define AG_MAX_GROUPS 256u
int ag_req_u32v(struct ag_req *rq, enum ag_key k, uint32_t **ret, size_t *ret_n);

/* ---- responses (wire.c) ----------------------------------------------------- */

struct ag_chunk; /* one queued frame */

struct ag_resp {
	struct ag_chunk *c;
	msgpack_packer pk;
	bool oom;
	uint32_t id;
	uint64_t gen;
	const char *op;
};

/* Starts {"id": id, "ok": true, + nfields more}; pack exactly nfields pairs. */
msgpack_packer *ag_resp_begin(struct ag_resp *r, const struct ag_req *rq, unsigned nfields);
/* Same, with about hint bytes of payload to come (sizes the buffer exactly). */
msgpack_packer *ag_resp_begin_sized(struct ag_resp *r, const struct ag_req *rq, unsigned nfields, size_t hint);
/* Same, for an answer that outlives its request. */
msgpack_packer *ag_resp_begin_id(struct ag_resp *r, uint32_t id, uint64_t gen, const char *op, unsigned nfields,
				 size_t hint);
/* Frames and queues it (or drops it for a stale connection); a response over
 * FRAME_MAX_BODY becomes an error response. true when queued. */
bool ag_resp_end(struct ag_resp *r);

/* Starts a push frame of stream sid (no id: {"op": "stream", "stream": sid,
 * + nfields more}); finish it with ag_resp_end. Dropped while disconnected. */
msgpack_packer *ag_push_begin(struct ag_resp *r, uint32_t sid, unsigned nfields, size_t hint);

/* Drops a response begun but not to be sent (an error answer replaces it). */
void ag_resp_abort(struct ag_resp *r);

void ag_pack_key(msgpack_packer *pk, const char *key);
void ag_pack_cstr(msgpack_packer *pk, const char *s);

void ag_reply_ok(const struct ag_req *rq);
/* {"ok": false, "errno": errnum, "error": "<message>"}; the message is made
 * one-line valid UTF-8. */
void ag_reply_err(const struct ag_req *rq, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ag_reply_err_id(uint32_t id, uint64_t gen, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* errno 0, "<op>: <rq->msg>": the answer to a getter failure. */
void ag_reply_bad(const struct ag_req *rq);
/* Queues the hello message of a new connection. */
void ag_send_hello(void);

/* Queues a frame made elsewhere (a worker's) as it is; dropped while
 * disconnected. */
void ag_out_frame(const uint8_t *body, uint32_t len);

/* Output queue, drained by main.c. */
bool ag_out_pending(void);
/* Writes as much as fd takes: 0 (done or -EAGAIN pending), or -errno. */
int ag_out_flush(int fd);
void ag_out_drop(void);

/* ---- processes (proc.c) ----------------------------------------------------- */

void proc_op_exec(struct ag_req *rq);
void proc_op_spawn(struct ag_req *rq);
void proc_op_wait(struct ag_req *rq);
void proc_op_kill(struct ag_req *rq);
void proc_op_status(struct ag_req *rq);
void proc_op_stdin_write(struct ag_req *rq);
void proc_op_close_stdin(struct ag_req *rq);
/* Packs the 3 fields status, exit_code and signal of a wait status. */
void proc_pack_status(msgpack_packer *pk, int wstatus, bool timed_out);

/* Event loop hooks, in the order main.c calls them in one iteration:
 *   n = proc_poll_fill(pfd, max)      register pipe fds (never frees)
 *   poll(...)
 *   proc_reap()                       on SIGCHLD: reap every zombie
 *   proc_poll_handle(pfd, n)          pipe I/O (never frees)
 *   proc_timers(now)                  timeouts, wait timeouts, exit grace
 *   proc_sweep()                      answer and free finished processes
 * proc_next_deadline() feeds the poll timeout (0: none). */
size_t proc_poll_fill(struct pollfd *pfd, size_t max);
void proc_poll_handle(const struct pollfd *pfd, size_t n);
void proc_reap(void);
void proc_timers(uint64_t now);
void proc_sweep(void);
uint64_t proc_next_deadline(void);
size_t proc_max_pollfds(void);
/* The host reconnected: forget pending waits of the old connection. */
void proc_conn_reset(void);
/* Kills every process group and reaps the children (before exiting). */
void proc_kill_all(void);

/* ---- files (fsops.c) -------------------------------------------------------- */

void fsop_read_file(struct ag_req *rq);
void fsop_write_file(struct ag_req *rq);
void fsop_stat(struct ag_req *rq);
void fsop_listdir(struct ag_req *rq);
void fsop_mkdir(struct ag_req *rq);
void fsop_unlink(struct ag_req *rq);
void fsop_rename(struct ag_req *rq);

/* ---- streams and file handles (stream.c) -------------------------------------- */

/* Stream sources are read only while less output than this waits for the host. */
#define AG_STREAM_HIGH (1024u * 1024u)
#define AG_MAX_STREAMS 256u
/* The most fds stream_poll_fill fills: one per stream and the inotify fd. */
#define AG_STREAM_POLLFDS (AG_MAX_STREAMS + 1)

bool stream_room(void);
/* Push frames of stream sid: data (split into chunks; false if it could not be
 * queued), the end, an error (the stream ends with it). */
bool stream_push_data(uint32_t sid, const uint8_t *p, size_t n);
void stream_push_eof(uint32_t sid);
void stream_push_error(uint32_t sid, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void stream_op_open(struct ag_req *rq);
void stream_op_close(struct ag_req *rq);
void file_op_open(struct ag_req *rq);
void file_op_read(struct ag_req *rq);
void file_op_write(struct ag_req *rq);
void file_op_seek(struct ag_req *rq);
void file_op_close(struct ag_req *rq);
/* The fd of file handle id, or -1 when there is none. */
int file_handle_fd(uint32_t id);

/* Loop hooks, called like proc_*'s: fill / poll / handle, then
 * stream_work(now) reads followed files that changed. */
size_t stream_poll_fill(struct pollfd *pfd, size_t max);
void stream_poll_handle(const struct pollfd *pfd, size_t n);
void stream_work(uint64_t now);
uint64_t stream_next_deadline(void);
/* A new connection: every stream of the old one is closed. */
void stream_conn_reset(void);

/* proc.c's half: the stdout (which 0) or stderr (1) of process `handle` goes
 * to stream sid from now on, starting with what it buffered. On success the
 * answer (begun by the caller) is sent first, then the data. -errno with why
 * set when there is no such process or the output is taken already. */
int proc_stream_attach(uint32_t handle, int which, uint32_t sid, char *why, size_t whylen, struct ag_resp *answer);
/* Stream sid is closed: the output it took is read and dropped from now on. */
void proc_stream_detach(uint32_t sid);

/* ---- the guest (guest.c) ---------------------------------------------------- */

/* PID 1 only: SCHED_RR priority 1 (else nice -20) with SCHED_RESET_ON_FORK,
 * so children start as ordinary SCHED_OTHER tasks at nice 0. */
void guest_priority_setup(void);
/* Brings the loopback interface of the caller's network namespace up (PID 1
 * at boot, a worker in a namespace of its own): 0 or -errno. The async-signal
 * safe calls only, for a forked child. */
int guest_lo_up(void);
/* resume: sets CLOCK_REALTIME to time_ns and mixes entropy into the kernel's
 * pool (PID 1 only); answers time_ns (the clock after), applied, reseeded. */
void guest_op_resume(struct ag_req *rq);
/* identity: the VM's own hostname, rng_seed and machine-id (docs/wire.md) */
void guest_op_identity(struct ag_req *rq);
/* The guest's wall clock: read, set, moved by a delta (PID 1 only), and a
 * sleep answered from the loop once guest_timers sees it due. */
void guest_op_clock_get(struct ag_req *rq);
void guest_op_clock_set(struct ag_req *rq);
void guest_op_clock_adjust(struct ag_req *rq);
void guest_op_sleep(struct ag_req *rq);
uint64_t guest_next_deadline(void);
void guest_timers(uint64_t now);

/* ---- raw calls (raw.c) --------------------------------------------------------- */

/* Installs the SIGALRM handler that interrupts a call past its timeout_ms. */
void raw_init(void);
void raw_op_syscall(struct ag_req *rq);
void raw_op_syscall_async(struct ag_req *rq);
void raw_op_syscall_await(struct ag_req *rq);
void raw_op_syscall_cancel(struct ag_req *rq);
void raw_op_ioctl(struct ag_req *rq);
void raw_op_read_mem(struct ag_req *rq);
/* Loop hooks, like proc_*'s: the eventfd finished calls signal, await timeouts. */
size_t raw_poll_fill(struct pollfd *pfd, size_t max);
void raw_poll_handle(const struct pollfd *pfd, size_t n);
void raw_timers(uint64_t now);
uint64_t raw_next_deadline(void);
void raw_conn_reset(void);

/* ---- workers (worker.c) ------------------------------------------------------- */

void worker_op_spawn(struct ag_req *rq);
void worker_op_kill(struct ag_req *rq);
void worker_op_join(struct ag_req *rq);
/* true when the request (body, len) is for a worker: then it was forwarded,
 * or answered with an error. Never in a worker itself. */
bool worker_route(struct ag_req *rq, const uint8_t *body, uint32_t len);
/* Loop hooks, like proc_*'s; worker_reaped takes a reaped pid that is a
 * worker's (true) and worker_flush writes relayed requests at once. */
size_t worker_poll_fill(struct pollfd *pfd, size_t max);
void worker_poll_handle(const struct pollfd *pfd, size_t n);
void worker_flush(void);
bool worker_reaped(pid_t pid, int wstatus);
void worker_timers(uint64_t now);
uint64_t worker_next_deadline(void);
/* A new connection: the workers of the old one are killed. */
void worker_conn_reset(void);

/* ---- boot files (bootfiles.c) ------------------------------------------------ */

/* PID 1, at startup: moves the files of the `files` boot option from the
 * initramfs staging directory to their paths; boot_files answers found,
 * installed and the first error. */
void bootfiles_install(void);
/* The agent as a unit of the guest's systemd (--guest): what PID 1 gave the
 * agent's environment (PROVIUM_RNG_SEED). */
void bootfiles_unit_env(void);
/* The rng_seed digits (checked) as the boot option gives them: the
 * environment, /run/provium/rng_seed and the pool; 0 or -EINVAL. */
int bootfiles_seed_apply(const char *digits);
void bootfiles_op(struct ag_req *rq);

#endif

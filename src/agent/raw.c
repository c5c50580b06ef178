/* raw.c - raw calls into the guest kernel from the agent's own process
 * (docs/wire.md "Raw calls"): syscall, syscall_async / syscall_await /
 * syscall_cancel, ioctl and read_mem.
 *
 * A syscall runs on the agent's main thread, so what it changes (credentials,
 * namespaces, the fd table, rlimits) sticks to the agent process, which is
 * what a worker is for. It blocks the loop while it runs: timeout_ms arms a
 * SIGALRM at this thread that interrupts it (EINTR, timed_out). An async call
 * runs on a thread of its own instead; what it changes per thread is lost
 * with the thread. */
#include "agent.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define RAW_MAX_ARGS 6
#define RAW_MAX_BUFS 16
#define RAW_MAX_BUF_BYTES (64u * 1024u * 1024u)
#define RAW_MAX_CALLS 64u
#define RAW_READ_MEM_MAX (1024u * 1024u)

struct rawcall {
	long nr;
	long args[RAW_MAX_ARGS];
	uint8_t *bufs[RAW_MAX_BUFS];
	uint32_t lens[RAW_MAX_BUFS];
	unsigned nbufs;
	long ret;
	int err;
	bool timed_out;
};

static void rawcall_free(struct rawcall *c)
{
	for (unsigned i = 0; i < c->nbufs; i++)
		free(c->bufs[i]);
	c->nbufs = 0;
}

/* ---- decoding ------------------------------------------------------------------------ */

static int bad(struct ag_req *rq, const char *msg)
{
	ag_reply_err(rq, 0, "%s: %s", rq->op, msg);
	return -1;
}

static int int_item(const struct mpr_item *it, long *ret)
{
	if (it->type == MPR_INT)
		*ret = (long)it->v.i;
	else if (it->type == MPR_UINT)
		*ret = (long)it->v.u; /* a bit pattern: 0xffffffffffffffff is -1 */
	else
		return -1;
	return 0;
}

/* nr, args, bufs and ptrs of a syscall request into c (answered on error). */
static int parse_call(struct ag_req *rq, struct rawcall *c)
{
	struct mpr_item it, e;
	struct mpr cur;
	int64_t nr;
	uint64_t total = 0;
	bool used[RAW_MAX_ARGS] = { false };
	char msg[200];

	memset(c, 0, sizeof(*c));
	if (!rq->has[AG_K_NR])
		return bad(rq, "'nr' (the syscall number) is required");
	if (ag_req_i64(rq, AG_K_NR, 0, &nr) < 0) {
		ag_reply_bad(rq);
		return -1;
	}
	if (nr < 0 || nr > 4095)
		return bad(rq, "'nr' must be a syscall number from 0 to 4095");
	c->nr = (long)nr;
	if (ag_req_item(rq, AG_K_ARGS, &it, &cur)) {
		if (it.type != MPR_ARRAY || it.v.count > RAW_MAX_ARGS)
			return bad(rq, "'args' must be an array of at most 6 integers");
		for (uint32_t i = 0; i < it.v.count; i++)
			if (mpr_next(&cur, &e, NULL) < 0 || int_item(&e, &c->args[i]) < 0) {
				snprintf(msg, sizeof(msg), "args[%u] is not an integer", i);
				return bad(rq, msg);
			}
	}
	if (ag_req_item(rq, AG_K_BUFS, &it, &cur)) {
		if (it.type != MPR_ARRAY || it.v.count > RAW_MAX_BUFS)
			return bad(rq, "'bufs' must be an array of at most 16 buffers (bin, or a size)");
		for (uint32_t i = 0; i < it.v.count; i++) {
			uint64_t len;
			if (mpr_next(&cur, &e, NULL) < 0 ||
			    (e.type != MPR_BIN && e.type != MPR_STR && e.type != MPR_UINT)) {
				snprintf(msg, sizeof(msg), "bufs[%u] is neither bytes nor a size", i);
				goto fail;
			}
			len = e.type == MPR_UINT ? e.v.u : e.v.raw.len;
			total += len;
			if (len > RAW_MAX_BUF_BYTES || total > RAW_MAX_BUF_BYTES) {
				snprintf(msg, sizeof(msg), "the buffers hold more than %u MiB", RAW_MAX_BUF_BYTES >> 20);
				goto fail;
			}
			/* one spare byte: a zero-length buffer still has an address */
			if (!(c->bufs[i] = calloc(1, (size_t)len + 1))) {
				snprintf(msg, sizeof(msg), "out of memory for bufs[%u]", i);
				goto fail;
			}
			c->nbufs = i + 1;
			c->lens[i] = (uint32_t)len;
			if (e.type != MPR_UINT)
				memcpy(c->bufs[i], e.v.raw.ptr, len);
		}
	}
	if (ag_req_item(rq, AG_K_PTRS, &it, &cur)) {
		if (it.type != MPR_ARRAY) {
			snprintf(msg, sizeof(msg), "'ptrs' must be an array of argument indexes");
			goto fail;
		}
		if (it.v.count != c->nbufs) {
			snprintf(msg, sizeof(msg), "'ptrs' has %u entries for %u buffers: each buffer needs the index of "
				 "the argument that gets its address", it.v.count, c->nbufs);
			goto fail;
		}
		for (uint32_t i = 0; i < it.v.count; i++) {
			if (mpr_next(&cur, &e, NULL) < 0 || e.type != MPR_UINT || e.v.u >= RAW_MAX_ARGS) {
				snprintf(msg, sizeof(msg), "ptrs[%u] is not an argument index from 0 to 5", i);
				goto fail;
			}
			if (used[e.v.u]) {
				snprintf(msg, sizeof(msg), "ptrs[%u]: argument %u already gets a buffer's address", i,
					 (unsigned)e.v.u);
				goto fail;
			}
			used[e.v.u] = true;
			c->args[e.v.u] = (long)(uintptr_t)c->bufs[i];
		}
	} else if (c->nbufs) {
		snprintf(msg, sizeof(msg), "'bufs' needs 'ptrs': the argument index of each buffer's address");
		goto fail;
	}
	return 0;
fail:
	rawcall_free(c);
	return bad(rq, msg);
}

/* ---- running on the main thread, interruptibly ------------------------------------------ */

static volatile sig_atomic_t alarm_fired;

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

void raw_init(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocked call must return EINTR */
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		ag_log("sigaction SIGALRM: %s", strerror(errno));
}

/* Arms a SIGALRM at this thread in timeout_ms (0: none). */
static int arm(timer_t *t, uint64_t timeout_ms)
{
	struct sigevent sev;
	struct itimerspec its;

	alarm_fired = 0;
	if (!timeout_ms)
		return 0;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = SIGALRM;
	sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	if (timer_create(CLOCK_MONOTONIC, &sev, t) < 0)
		return -errno;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(timeout_ms / 1000);
	its.it_value.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
	if (timer_settime(*t, 0, &its, NULL) < 0) {
		int err = -errno;
		timer_delete(*t);
		return err;
	}
	return 1;
}

static void run_call(struct rawcall *c)
{
	errno = 0;
	c->ret = syscall(c->nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4], c->args[5]);
	c->err = c->ret == -1 ? errno : 0;
}

static int timeout_of(struct ag_req *rq, uint64_t *ms)
{
	if (ag_req_u64(rq, AG_K_TIMEOUT_MS, 0, ms) < 0) {
		ag_reply_bad(rq);
		return -1;
	}
	return 0;
}

/* ---- answers ----------------------------------------------------------------------------- */

static void pack_result(msgpack_packer *pk, const struct rawcall *c)
{
	ag_pack_key(pk, "ret");
	msgpack_pack_int64(pk, c->ret);
	ag_pack_key(pk, "errno");
	msgpack_pack_int(pk, c->err);
	ag_pack_key(pk, "timed_out");
	if (c->timed_out)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	ag_pack_key(pk, "out_bufs");
	msgpack_pack_array(pk, c->nbufs);
	for (unsigned i = 0; i < c->nbufs; i++) {
		msgpack_pack_bin(pk, c->lens[i]);
		msgpack_pack_bin_body(pk, c->bufs[i], c->lens[i]);
	}
}

static size_t result_size(const struct rawcall *c)
{
	size_t n = 64;
	for (unsigned i = 0; i < c->nbufs; i++)
		n += c->lens[i] + 5;
	return n;
}

void raw_op_syscall(struct ag_req *rq)
{
	struct rawcall c;
	struct ag_resp r;
	uint64_t ms;
	timer_t t;
	int armed;

	if (timeout_of(rq, &ms) < 0 || parse_call(rq, &c) < 0)
		return;
	armed = arm(&t, ms);
	if (armed < 0) {
		ag_reply_err(rq, -armed, "syscall: timer_create: %s", strerror(-armed));
		rawcall_free(&c);
		return;
	}
	run_call(&c);
	if (armed > 0)
		timer_delete(t);
	c.timed_out = alarm_fired && c.err == EINTR;
	pack_result(ag_resp_begin_sized(&r, rq, 4, result_size(&c)), &c);
	ag_resp_end(&r);
	rawcall_free(&c);
}

/* ---- async calls ------------------------------------------------------------------------- */

struct acall {
	struct acall *next;
	uint32_t id;
	struct rawcall c;
	pthread_t th;
	atomic_bool done;
	bool orphan; /* cancelled: freed once done, never answered */
	bool waiting;
	uint32_t wid;
	uint64_t wgen;
	uint64_t deadline; /* of the waiter, 0: none */
};

static struct acall *calls;
static unsigned n_calls;
static uint32_t next_call = 1;
static int done_fd = -1; /* eventfd: a thread finished */

static struct acall *find_call(uint32_t id)
{
	for (struct acall *a = calls; a; a = a->next)
		if (a->id == id)
			return a;
	return NULL;
}

static void *call_thread(void *arg)
{
	struct acall *a = arg;
	uint64_t one = 1;
	run_call(&a->c);
	atomic_store_explicit(&a->done, true, memory_order_release);
	if (write(done_fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow with 64 calls: nothing to do */
	}
	return NULL;
}

void raw_op_syscall_async(struct ag_req *rq)
{
	struct acall *a;
	struct ag_resp r;
	pthread_attr_t attr;
	msgpack_packer *pk;
	int rc;

	if (n_calls >= RAW_MAX_CALLS) {
		ag_reply_err(rq, EAGAIN, "syscall_async: %u calls are unfinished or never awaited, the limit",
			     RAW_MAX_CALLS);
		return;
	}
	if (done_fd < 0 && (done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		ag_reply_err(rq, errno, "syscall_async: eventfd: %s", strerror(errno));
		return;
	}
	if (!(a = calloc(1, sizeof(*a)))) {
		ag_reply_err(rq, ENOMEM, "syscall_async: out of memory");
		return;
	}
	if (parse_call(rq, &a->c) < 0) {
		free(a);
		return;
	}
	do
		a->id = ag_next_handle(&next_call);
	while (find_call(a->id));
	atomic_init(&a->done, false);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&a->th, &attr, call_thread, a);
	pthread_attr_destroy(&attr);
	if (rc) {
		ag_reply_err(rq, rc, "syscall_async: pthread_create: %s", strerror(rc));
		rawcall_free(&a->c);
		free(a);
		return;
	}
	a->next = calls;
	calls = a;
	n_calls++;
	pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "call");
	msgpack_pack_uint32(pk, a->id);
	ag_resp_end(&r);
}

static void unlink_call(struct acall *a)
{
	for (struct acall **pp = &calls; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	n_calls--;
	rawcall_free(&a->c);
	free(a);
}

static struct acall *req_call(struct ag_req *rq)
{
	uint64_t id;
	struct acall *a;
	if (ag_req_u64(rq, AG_K_CALL, 0, &id) < 0) {
		ag_reply_bad(rq);
		return NULL;
	}
	a = id <= UINT32_MAX ? find_call((uint32_t)id) : NULL;
	if (!a || a->orphan)
		ag_reply_err(rq, EBADF, "%s %llu: no such call (never started, awaited already, or cancelled)",
			     rq->op, (unsigned long long)id);
	return a && !a->orphan ? a : NULL;
}

static void answer_done(struct acall *a, uint32_t id, uint64_t gen)
{
	struct ag_resp r;
	pack_result(ag_resp_begin_id(&r, id, gen, "syscall_await", 4, result_size(&a->c)), &a->c);
	ag_resp_end(&r);
	unlink_call(a);
}

void raw_op_syscall_await(struct ag_req *rq)
{
	struct acall *a = req_call(rq);
	uint64_t ms;

	if (!a || timeout_of(rq, &ms) < 0)
		return;
	if (a->waiting) {
		ag_reply_err(rq, EBUSY, "syscall_await %u: another await of this call is pending", a->id);
		return;
	}
	if (atomic_load_explicit(&a->done, memory_order_acquire)) {
		answer_done(a, rq->id, rq->gen);
		return;
	}
	a->waiting = true;
	a->wid = rq->id;
	a->wgen = rq->gen;
	a->deadline = ms ? sys_mono_ns() + ms * 1000000ull : 0;
}

void raw_op_syscall_cancel(struct ag_req *rq)
{
	struct acall *a = req_call(rq);
	if (!a)
		return;
	if (a->waiting)
		ag_reply_err_id(a->wid, a->wgen, ECANCELED, "syscall_await %u: the call was cancelled", a->id);
	a->waiting = false;
	if (atomic_load_explicit(&a->done, memory_order_acquire)) {
		unlink_call(a);
	} else {
		a->orphan = true;
		/* interrupt a blocked call; one that does not block finishes anyway */
		pthread_kill(a->th, SIGALRM);
	}
	ag_reply_ok(rq);
}

size_t raw_poll_fill(struct pollfd *pfd, size_t max)
{
	if (!calls || done_fd < 0 || !max)
		return 0;
	pfd[0] = (struct pollfd){ .fd = done_fd, .events = POLLIN };
	return 1;
}

void raw_poll_handle(const struct pollfd *pfd, size_t n)
{
	uint64_t v;
	struct acall *a, *next;

	if (!n || !(pfd[0].revents & POLLIN))
		return;
	if (read(done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		ag_log("reading the call eventfd: %s", strerror(errno));
	for (a = calls; a; a = next) {
		next = a->next;
		if (!atomic_load_explicit(&a->done, memory_order_acquire))
			continue;
		if (a->orphan)
			unlink_call(a);
		else if (a->waiting)
			answer_done(a, a->wid, a->wgen);
	}
}

void raw_timers(uint64_t now)
{
	for (struct acall *a = calls; a; a = a->next)
		if (a->waiting && a->deadline && now >= a->deadline) {
			a->waiting = false;
			ag_reply_err_id(a->wid, a->wgen, ETIMEDOUT,
					"syscall_await %u: the call is still running (await it again, or cancel it)", a->id);
		}
}

uint64_t raw_next_deadline(void)
{
	uint64_t dl = 0;
	for (struct acall *a = calls; a; a = a->next)
		if (a->waiting && a->deadline && (!dl || a->deadline < dl))
			dl = a->deadline;
	return dl;
}

void raw_conn_reset(void)
{
	for (struct acall *a = calls; a; a = a->next)
		a->waiting = false;
}

/* ---- ioctl ---------------------------------------------------------------------------------- */

void raw_op_ioctl(struct ag_req *rq)
{
	char *path = NULL;
	const uint8_t *data;
	uint32_t dlen;
	bool has_data;
	int64_t fd_arg = -1, arg = 0;
	uint64_t request, ms, fh;
	int fd = -1, own = -1, sources, armed;
	uint8_t *buf = NULL;
	struct rawcall c;
	struct ag_resp r;
	msgpack_packer *pk;
	timer_t t;

	sources = rq->has[AG_K_PATH] + rq->has[AG_K_FD] + rq->has[AG_K_FILE];
	if (sources != 1) {
		ag_reply_err(rq, 0, "ioctl: give exactly one of 'path', 'fd' and 'file'");
		return;
	}
	if (!rq->has[AG_K_REQUEST]) {
		ag_reply_err(rq, 0, "ioctl: 'request' (the ioctl number) is required");
		return;
	}
	if (ag_req_str(rq, AG_K_PATH, &path) < 0 || ag_req_i64(rq, AG_K_FD, -1, &fd_arg) < 0 ||
	    ag_req_u64(rq, AG_K_FILE, 0, &fh) < 0 || ag_req_u64(rq, AG_K_REQUEST, 0, &request) < 0 ||
	    ag_req_i64(rq, AG_K_ARG, 0, &arg) < 0 || ag_req_bin(rq, AG_K_DATA, &data, &dlen, &has_data) < 0 ||
	    ag_req_u64(rq, AG_K_TIMEOUT_MS, 0, &ms) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	if (has_data && rq->has[AG_K_ARG]) {
		ag_reply_err(rq, 0, "ioctl: give 'data' (a buffer) or 'arg' (an integer), not both");
		goto out;
	}
	if (path) {
		own = open(path, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (own < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS || errno == EPERM))
			own = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (own < 0) {
			ag_reply_err(rq, errno, "ioctl %s: open: %s", path, strerror(errno));
			goto out;
		}
		fd = own;
	} else if (rq->has[AG_K_FILE]) {
		fd = fh <= UINT32_MAX ? file_handle_fd((uint32_t)fh) : -1;
		if (fd < 0) {
			ag_reply_err(rq, EBADF, "ioctl: file handle %llu: no such file handle (never opened, or closed)",
				     (unsigned long long)fh);
			goto out;
		}
	} else {
		if (fd_arg < 0 || fd_arg > INT32_MAX) {
			ag_reply_err(rq, EBADF, "ioctl: fd %lld is not a file descriptor", (long long)fd_arg);
			goto out;
		}
		fd = (int)fd_arg;
	}
	if (has_data && !(buf = calloc(1, (size_t)dlen + 1))) {
		ag_reply_err(rq, ENOMEM, "ioctl: out of memory");
		goto out;
	}
	if (has_data)
		memcpy(buf, data, dlen);
	memset(&c, 0, sizeof(c));
	c.nr = SYS_ioctl;
	c.args[0] = fd;
	c.args[1] = (long)request;
	c.args[2] = has_data ? (long)(uintptr_t)buf : (long)arg;
	armed = arm(&t, ms);
	if (armed < 0) {
		ag_reply_err(rq, -armed, "ioctl: timer_create: %s", strerror(-armed));
		goto out;
	}
	run_call(&c);
	if (armed > 0)
		timer_delete(t);
	pk = ag_resp_begin_sized(&r, rq, has_data ? 4 : 3, dlen + 64);
	ag_pack_key(pk, "ret");
	msgpack_pack_int64(pk, c.ret);
	ag_pack_key(pk, "errno");
	msgpack_pack_int(pk, c.err);
	ag_pack_key(pk, "timed_out");
	if (alarm_fired && c.err == EINTR)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	if (has_data) {
		ag_pack_key(pk, "data");
		msgpack_pack_bin(pk, dlen);
		msgpack_pack_bin_body(pk, buf, dlen);
	}
	ag_resp_end(&r);
out:
	if (own >= 0)
		close(own);
	free(buf);
	free(path);
}

/* ---- read_mem ---------------------------------------------------------------------------------- */

void raw_op_read_mem(struct ag_req *rq)
{
	uint64_t addr, len;
	uint8_t *buf;
	struct iovec local, remote;
	ssize_t n;
	struct ag_resp r;
	msgpack_packer *pk;

	if (!rq->has[AG_K_ADDR] || !rq->has[AG_K_LEN]) {
		ag_reply_err(rq, 0, "read_mem: 'addr' and 'len' are required");
		return;
	}
	if (ag_req_u64(rq, AG_K_ADDR, 0, &addr) < 0 || ag_req_u64(rq, AG_K_LEN, 0, &len) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (len > RAW_READ_MEM_MAX) {
		ag_reply_err(rq, EINVAL, "read_mem: %llu bytes asked, at most %u at once", (unsigned long long)len,
			     RAW_READ_MEM_MAX);
		return;
	}
	if (!(buf = malloc((size_t)len + 1))) {
		ag_reply_err(rq, ENOMEM, "read_mem: out of memory");
		return;
	}
	/* through the kernel: an unmapped address is EFAULT, never a crash */
	local = (struct iovec){ .iov_base = buf, .iov_len = (size_t)len };
	remote = (struct iovec){ .iov_base = (void *)(uintptr_t)addr, .iov_len = (size_t)len };
	n = len ? process_vm_readv(getpid(), &local, 1, &remote, 1, 0) : 0;
	if (n < 0 || (uint64_t)n < len) {
		int err = n < 0 ? errno : EFAULT;
		ag_reply_err(rq, err, "read_mem 0x%llx (%llu bytes): %s%s", (unsigned long long)addr,
			     (unsigned long long)len, strerror(err), n > 0 ? " (only a part is mapped)" : "");
		free(buf);
		return;
	}
	pk = ag_resp_begin_sized(&r, rq, 1, (size_t)len + 16);
	ag_pack_key(pk, "data");
	msgpack_pack_bin(pk, (size_t)len);
	msgpack_pack_bin_body(pk, buf, (size_t)len);
	ag_resp_end(&r);
	free(buf);
}

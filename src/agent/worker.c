/* worker.c - workers (docs/wire.md "Workers"): separate agent processes with
 * credentials and namespaces of their own, and the relay to them.
 *
 * A worker is this binary again, exec'd as `--stdio --worker N` on one end of
 * a socketpair, after the forked child entered its namespaces and took its
 * credentials. It serves the same protocol with its own tables, its handles
 * numbered N << AG_HANDLE_BITS | k. The agent forwards a request to worker N
 * when it names `worker: N`, or a handle (proc, file, stream, call) of N's
 * range; the worker's frames (answers and stream pushes) go to the host as
 * they are. The agent remembers the ids it forwarded, so that a worker that
 * dies still gets every request answered (with an error).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"

struct worker {
	unsigned n; /* 1..AG_MAX_WORKERS; 0: a free slot */
	pid_t pid;
	int fd; /* the socket; -1 once the worker closed it */
	struct frame_dec dec;
	struct pv_buf out; /* requests not yet written */
	size_t out_off;
	bool hello_seen;
	uint32_t *inflight; /* ids forwarded and not answered yet */
	size_t n_inflight, cap_inflight;
	uint64_t gen; /* the connection it was made on */
	bool exited;
	int wstatus;
	bool joining;
	uint32_t jid;
	uint64_t jgen, jdeadline;
};

static struct worker workers[AG_MAX_WORKERS + 1];
static struct worker *slots[AG_MAX_WORKERS + 1]; /* pollfd index -> worker */
static unsigned next_worker = 1;

static struct worker *find_worker(uint32_t n)
{
	return n >= 1 && n <= AG_MAX_WORKERS && workers[n].n ? &workers[n] : NULL;
}

/* ---- spawning -------------------------------------------------------------------------- */

static const struct {
	const char *name;
	int flag;
} ns_names[] = {
	{ "net", CLONE_NEWNET }, { "mount", CLONE_NEWNS }, { "mnt", CLONE_NEWNS }, { "uts", CLONE_NEWUTS },
	{ "ipc", CLONE_NEWIPC }, { "pid", CLONE_NEWPID }, { "cgroup", CLONE_NEWCGROUP },
};

struct wspec {
	int64_t uid, gid;
	uint32_t *groups;
	size_t n_groups;
	bool has_groups;
	bool has_caps;
	uint64_t caps; /* bit per capability */
	int ns;        /* CLONE_NEW* flags */
	char *cwd;
	char exe[4096];
	char nbuf[16];
};

enum { WS_NS = 1, WS_MOUNTS, WS_CREDS, WS_CAPS, WS_CWD, WS_EXEC };
static const char *const stage_names[] = {
	[WS_NS] = "entering its namespaces", [WS_MOUNTS] = "mounting /proc in its namespaces",
	[WS_CREDS] = "taking its credentials", [WS_CAPS] = "setting its capabilities",
	[WS_CWD] = "entering cwd", [WS_EXEC] = "exec'ing the agent",
};

static __attribute__((noreturn)) void wchild_fail(int fd, int stage, int err)
{
	int m[2] = { stage, err };
	ssize_t r = write(fd, m, sizeof(m));
	(void)r;
	_exit(127);
}

static int set_caps(uint64_t caps)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(caps >> (32 * i));
		d[i].effective = d[i].permitted = d[i].inheritable = v;
	}
	return (int)syscall(SYS_capset, &hdr, d);
}

/* The forked child: async-signal-safe calls only (the agent may have threads). */
static __attribute__((noreturn)) void wchild_run(int sock, int report, const struct wspec *w, int last_cap)
{
	sigset_t none;
	char *argv[] = { (char *)w->exe, "--stdio", "--worker", (char *)w->nbuf, NULL };
	extern char **environ;

	if (setsid() < 0 || dup2(sock, 0) < 0 || dup2(sock, 1) < 0)
		wchild_fail(report, WS_NS, errno);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if ((w->ns & ~CLONE_NEWPID) && unshare(w->ns & ~CLONE_NEWPID) < 0)
		wchild_fail(report, WS_NS, errno);
	if (w->ns & CLONE_NEWNS) {
		/* its mounts stay its own */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			wchild_fail(report, WS_MOUNTS, errno);
		/* PID 1 of a pid namespace: a /proc that shows it */
		if ((w->ns & CLONE_NEWPID) && mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
			wchild_fail(report, WS_MOUNTS, errno);
	}
	if ((w->ns & CLONE_NEWNET) && guest_lo_up() < 0)
		wchild_fail(report, WS_NS, errno);
	if ((w->has_groups || w->uid >= 0) && setgroups(w->has_groups ? w->n_groups : 0, (const gid_t *)w->groups) < 0)
		wchild_fail(report, WS_CREDS, errno);
	if (w->has_caps) {
		for (int c = 0; c <= last_cap; c++)
			if (!(w->caps >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
				wchild_fail(report, WS_CAPS, errno);
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			wchild_fail(report, WS_CAPS, errno);
	}
	if (w->gid >= 0 && setresgid((gid_t)w->gid, (gid_t)w->gid, (gid_t)w->gid) < 0)
		wchild_fail(report, WS_CREDS, errno);
	if (w->uid >= 0 && setresuid((uid_t)w->uid, (uid_t)w->uid, (uid_t)w->uid) < 0)
		wchild_fail(report, WS_CREDS, errno);
	if (w->has_caps) {
		/* ambient, so they survive the exec of a non-root worker */
		if (set_caps(w->caps) < 0)
			wchild_fail(report, WS_CAPS, errno);
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
			wchild_fail(report, WS_CAPS, errno);
		for (int c = 0; c <= last_cap; c++)
			if ((w->caps >> c & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
				wchild_fail(report, WS_CAPS, errno);
	}
	if (w->cwd && chdir(w->cwd) < 0)
		wchild_fail(report, WS_CWD, errno);
	/* after the credentials change, which clears it: die with the agent */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	execve(w->exe, argv, environ);
	wchild_fail(report, WS_EXEC, errno);
}

/* Capability names as capabilities(7) spells them, with or without "cap_",
 * any case: "net_admin", "CAP_NET_ADMIN". */
static int parse_caps(struct ag_req *rq, char **names, uint64_t *ret)
{
	*ret = 0;
	for (size_t i = 0; names[i]; i++) {
		char buf[64];
		cap_value_t c;
		size_t l = strlen(names[i]);
		if (l + 5 > sizeof(buf))
			goto unknown;
		snprintf(buf, sizeof(buf), "%s%s", strncasecmp(names[i], "cap_", 4) ? "cap_" : "", names[i]);
		for (char *p = buf; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
		if (cap_from_name(buf, &c) < 0 || c < 0 || c > 63 || !CAP_IS_SUPPORTED(c))
			goto unknown;
		*ret |= UINT64_C(1) << c;
		continue;
unknown:
		ag_reply_err(rq, EINVAL,
			     "worker_spawn: unknown capability '%s' (names as in capabilities(7): net_admin or "
			     "CAP_NET_ADMIN, sys_time, ...)", names[i]);
		return -1;
	}
	return 0;
}

static int parse_ns(struct ag_req *rq, char **names, int *ret)
{
	*ret = 0;
	for (size_t i = 0; names[i]; i++) {
		size_t j;
		for (j = 0; j < sizeof(ns_names) / sizeof(ns_names[0]); j++)
			if (!strcmp(names[i], ns_names[j].name))
				break;
		if (j == sizeof(ns_names) / sizeof(ns_names[0])) {
			ag_reply_err(rq, EINVAL, "worker_spawn: unknown namespace '%s' (net, mount, uts, ipc, pid, cgroup)",
				     names[i]);
			return -1;
		}
		*ret |= ns_names[j].flag;
	}
	return 0;
}

static int free_slot(void)
{
	for (unsigned i = 0; i < AG_MAX_WORKERS; i++) {
		unsigned n = (next_worker + i - 1) % AG_MAX_WORKERS + 1;
		if (!workers[n].n) {
			next_worker = n % AG_MAX_WORKERS + 1;
			return (int)n;
		}
	}
	return -1;
}

/* Forks with the child in a new pid namespace when asked (unshare(CLONE_NEWPID)
 * moves only later children, so the agent steps in and back out around fork). */
static pid_t fork_in(int ns, int *err)
{
	int self = -1;
	pid_t pid;
	if (ns & CLONE_NEWPID) {
		if ((self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0 || unshare(CLONE_NEWPID) < 0) {
			*err = errno;
			if (self >= 0)
				close(self);
			return -1;
		}
	}
	pid = fork();
	*err = errno;
	if (self >= 0) {
		if (pid != 0 && setns(self, CLONE_NEWPID) < 0)
			ag_log("setns back to the agent's pid namespace: %s", strerror(errno));
		if (pid != 0)
			close(self);
	}
	return pid;
}

void worker_op_spawn(struct ag_req *rq)
{
	struct wspec w = { .uid = -1, .gid = -1 };
	char **caps = NULL, **ns = NULL;
	size_t ncaps = 0, nns = 0;
	int sv[2] = { -1, -1 }, rep[2] = { -1, -1 }, n, err, m[2], last_cap;
	ssize_t got;
	pid_t pid;
	struct worker *wk;
	struct ag_resp r;
	msgpack_packer *pk;
	FILE *f;

	if (ag_req_i64(rq, AG_K_UID, -1, &w.uid) < 0 || ag_req_i64(rq, AG_K_GID, -1, &w.gid) < 0 ||
	    ag_req_u32v(rq, AG_K_GROUPS, &w.groups, &w.n_groups) < 0 || ag_req_strv(rq, AG_K_CAPS, &caps, &ncaps) < 0 ||
	    ag_req_strv(rq, AG_K_UNSHARE, &ns, &nns) < 0 || ag_req_str(rq, AG_K_CWD, &w.cwd) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	w.has_groups = rq->has[AG_K_GROUPS];
	w.has_caps = rq->has[AG_K_CAPS];
	if (w.uid < -1 || w.uid >= UINT32_MAX || w.gid < -1 || w.gid >= UINT32_MAX) {
		ag_reply_err(rq, EINVAL, "worker_spawn: 'uid' and 'gid' must be between 0 and %u", UINT32_MAX - 1);
		goto out;
	}
	if ((caps && parse_caps(rq, caps, &w.caps) < 0) || (ns && parse_ns(rq, ns, &w.ns) < 0))
		goto out;
	if ((n = free_slot()) < 0) {
		ag_reply_err(rq, EAGAIN, "worker_spawn: %u workers are running, the limit", AG_MAX_WORKERS);
		goto out;
	}
	got = readlink("/proc/self/exe", w.exe, sizeof(w.exe) - 1);
	if (got <= 0) {
		ag_reply_err(rq, errno, "worker_spawn: /proc/self/exe: %s", strerror(errno));
		goto out;
	}
	w.exe[got] = 0;
	snprintf(w.nbuf, sizeof(w.nbuf), "%d", n);
	last_cap = CAP_LAST_CAP;
	if ((f = fopen("/proc/sys/kernel/cap_last_cap", "re"))) {
		if (fscanf(f, "%d", &last_cap) != 1 || last_cap < 0 || last_cap > 63)
			last_cap = CAP_LAST_CAP;
		fclose(f);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		ag_reply_err(rq, errno, "worker_spawn: socketpair: %s", strerror(errno));
		goto out;
	}
	pid = fork_in(w.ns, &err);
	if (pid < 0) {
		ag_reply_err(rq, err, "worker_spawn: fork: %s", strerror(err));
		goto out;
	}
	if (pid == 0) {
		close(rep[0]);
		close(sv[0]);
		wchild_run(sv[1], rep[1], &w, last_cap);
	}
	close(rep[1]);
	rep[1] = -1;
	close(sv[1]);
	sv[1] = -1;
	/* EOF: it exec'd; a report: the stage that failed. Quick either way. */
	do
		got = read(rep[0], m, sizeof(m));
	while (got < 0 && errno == EINTR);
	if (got == (ssize_t)sizeof(m)) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		ag_reply_err(rq, m[1], "worker_spawn: the worker failed %s (uid %lld gid %lld): %s",
			     m[0] > 0 && m[0] <= WS_EXEC ? stage_names[m[0]] : "to start", (long long)w.uid,
			     (long long)w.gid, strerror(m[1]));
		goto out;
	}
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		ag_log("worker %d: O_NONBLOCK: %s", n, strerror(errno));
	wk = &workers[n];
	memset(wk, 0, sizeof(*wk));
	wk->n = (unsigned)n;
	wk->pid = pid;
	wk->fd = sv[0];
	wk->gen = rq->gen;
	sv[0] = -1;
	frame_dec_init(&wk->dec);
	pk = ag_resp_begin(&r, rq, 2);
	ag_pack_key(pk, "worker");
	msgpack_pack_uint32(pk, (uint32_t)n);
	ag_pack_key(pk, "pid");
	msgpack_pack_int(pk, pid);
	ag_resp_end(&r);
out:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (rep[i] >= 0)
			close(rep[i]);
	}
	ag_strv_free(caps);
	ag_strv_free(ns);
	free(w.groups);
	free(w.cwd);
}

/* ---- relaying ------------------------------------------------------------------------------ */

static void forget_inflight(struct worker *w, uint32_t id)
{
	for (size_t i = 0; i < w->n_inflight; i++)
		if (w->inflight[i] == id) {
			w->inflight[i] = w->inflight[--w->n_inflight];
			return;
		}
}

/* The worker closed its end: every request it still owed is answered. */
static void lost(struct worker *w, const char *why)
{
	for (size_t i = 0; i < w->n_inflight; i++)
		ag_reply_err_id(w->inflight[i], w->gen, EPIPE, "worker %u ended before it answered (%s)", w->n, why);
	w->n_inflight = 0;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	pv_buf_release(&w->out);
	w->out_off = 0;
}

/* Which worker a request is for: the range of the handle it names (0: the
 * agent's own, whatever `worker` says), else its `worker`; 0 for the agent
 * itself. -1 when a value is not a u32 (the op's own getter then says so). */
static int64_t route_of(struct ag_req *rq)
{
	static const enum ag_key handle_keys[] = { AG_K_PROC, AG_K_FILE, AG_K_STREAM, AG_K_CALL };
	uint64_t v;
	for (size_t i = 0; i < sizeof(handle_keys) / sizeof(handle_keys[0]); i++)
		if (rq->has[handle_keys[i]]) {
			if (ag_req_u64(rq, handle_keys[i], 0, &v) < 0 || v > UINT32_MAX)
				return -1;
			return (int64_t)(v >> AG_HANDLE_BITS);
		}
	if (!rq->has[AG_K_WORKER])
		return 0;
	if (ag_req_u64(rq, AG_K_WORKER, 0, &v) < 0 || v > UINT32_MAX)
		return -1;
	return (int64_t)v;
}

bool worker_route(struct ag_req *rq, const uint8_t *body, uint32_t len)
{
	struct worker *w;
	uint8_t hdr[FRAME_HDR_LEN];
	int64_t n;

	if (ag.worker || !strncmp(rq->op, "worker_", 7))
		return false;
	n = route_of(rq);
	if (n <= 0)
		return false;
	w = find_worker((uint32_t)n);
	if (!w || w->fd < 0 || w->gen != rq->gen) {
		ag_reply_err(rq, ESRCH, "%s: no worker %lld (never spawned, joined, or it ended)", rq->op, (long long)n);
		return true;
	}
	if (w->n_inflight == w->cap_inflight) {
		size_t cap = w->cap_inflight ? 2 * w->cap_inflight : 16;
		uint32_t *p = realloc(w->inflight, cap * sizeof(*p));
		if (!p) {
			ag_reply_err(rq, ENOMEM, "%s: out of memory relaying to worker %u", rq->op, w->n);
			return true;
		}
		w->inflight = p;
		w->cap_inflight = cap;
	}
	frame_put_len(hdr, len);
	if (pv_buf_append(&w->out, hdr, sizeof(hdr)) < 0 || pv_buf_append(&w->out, body, len) < 0) {
		ag_reply_err(rq, ENOMEM, "%s: out of memory relaying to worker %u", rq->op, w->n);
		return true;
	}
	w->inflight[w->n_inflight++] = rq->id;
	return true;
}

/* A frame of worker w: its first hello is dropped, the rest go to the host. */
static void from_worker(struct worker *w, const uint8_t *body, uint32_t len)
{
	struct mpr r;
	struct mpr_item top, k, v;
	bool has_id = false, hello = false;
	uint64_t id = 0;

	mpr_init(&r, body, len);
	if (mpr_next(&r, &top, NULL) == 0 && top.type == MPR_MAP)
		for (uint32_t i = 0; i < top.v.count; i++) {
			if (mpr_next(&r, &k, NULL) < 0)
				break;
			struct mpr at = r;
			if (mpr_skip(&r, AG_MAX_DEPTH, NULL) < 0)
				break;
			if (k.type != MPR_STR || mpr_next(&at, &v, NULL) < 0)
				continue;
			if (k.v.raw.len == 2 && !memcmp(k.v.raw.ptr, "id", 2) && v.type == MPR_UINT) {
				has_id = true;
				id = v.v.u;
			} else if (k.v.raw.len == 2 && !memcmp(k.v.raw.ptr, "op", 2) && v.type == MPR_STR &&
				   v.v.raw.len == 5 && !memcmp(v.v.raw.ptr, "hello", 5)) {
				hello = true;
			}
		}
	if (hello && !has_id) {
		w->hello_seen = true;
		return;
	}
	if (has_id)
		forget_inflight(w, (uint32_t)id);
	if (w->gen == ag.gen)
		ag_out_frame(body, len);
}

size_t worker_poll_fill(struct pollfd *pfd, size_t max)
{
	size_t k = 0;
	for (unsigned n = 1; n <= AG_MAX_WORKERS && k < max; n++) {
		struct worker *w = &workers[n];
		short ev = 0;
		if (!w->n || w->fd < 0)
			continue;
		if (ag.out_bytes < AG_OUT_HIGH)
			ev |= POLLIN;
		if (w->out.len > w->out_off)
			ev |= POLLOUT;
		slots[k] = w;
		pfd[k++] = (struct pollfd){ .fd = w->fd, .events = ev };
	}
	return k;
}

static void write_out(struct worker *w)
{
	while (w->out.len > w->out_off) {
		ssize_t n = write(w->fd, w->out.data + w->out_off, w->out.len - w->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			lost(w, strerror(errno));
			return;
		}
		w->out_off += (size_t)n;
	}
	pv_buf_reset(&w->out);
	w->out_off = 0;
	if (w->out.cap > 1024 * 1024)
		pv_buf_release(&w->out);
}

static void read_in(struct worker *w)
{
	ssize_t n = frame_dec_read_fd(&w->dec, w->fd);
	struct pv_err e;
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0) {
		lost(w, n < 0 ? strerror((int)-n) : "it exited");
		return;
	}
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		int rc = frame_dec_next(&w->dec, &body, &len, NULL, &e);
		if (rc == 0)
			break;
		if (rc < 0) {
			ag_log("worker %u: %s", w->n, e.msg);
			kill(w->pid, SIGKILL);
			lost(w, "it sent a malformed frame");
			return;
		}
		from_worker(w, body, len);
	}
}

void worker_poll_handle(const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct worker *w = slots[i];
		if (w->fd < 0 || !pfd[i].revents)
			continue;
		if (pfd[i].revents & POLLOUT)
			write_out(w);
		if (w->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			read_in(w);
	}
}

/* First writes: a request relayed in this iteration goes out without waiting
 * for the next poll. */
void worker_flush(void)
{
	for (unsigned n = 1; n <= AG_MAX_WORKERS; n++)
		if (workers[n].n && workers[n].fd >= 0 && workers[n].out.len > workers[n].out_off)
			write_out(&workers[n]);
}

/* ---- the end of a worker ----------------------------------------------------------------------- */

static void release(struct worker *w)
{
	lost(w, "it was joined");
	frame_dec_release(&w->dec);
	free(w->inflight);
	memset(w, 0, sizeof(*w));
}

static void answer_join(struct worker *w)
{
	struct ag_resp r;
	msgpack_packer *pk = ag_resp_begin_id(&r, w->jid, w->jgen, "worker_join", 3, 64);
	proc_pack_status(pk, w->wstatus, false);
	ag_resp_end(&r);
	release(w);
}

bool worker_reaped(pid_t pid, int wstatus)
{
	for (unsigned n = 1; n <= AG_MAX_WORKERS; n++) {
		struct worker *w = &workers[n];
		if (w->n && w->pid == pid && !w->exited) {
			w->exited = true;
			w->wstatus = wstatus;
			if (w->fd >= 0) {
				/* what it wrote before it died is still to be read */
				read_in(w);
				if (w->fd >= 0)
					lost(w, "it exited");
			}
			if (w->joining)
				answer_join(w);
			return true;
		}
	}
	return false;
}

static struct worker *req_worker(struct ag_req *rq)
{
	uint64_t n;
	struct worker *w;
	if (!rq->has[AG_K_WORKER]) {
		ag_reply_err(rq, 0, "%s: 'worker' is required", rq->op);
		return NULL;
	}
	if (ag_req_u64(rq, AG_K_WORKER, 0, &n) < 0) {
		ag_reply_bad(rq);
		return NULL;
	}
	w = n <= UINT32_MAX ? find_worker((uint32_t)n) : NULL;
	if (!w || w->joining)
		ag_reply_err(rq, ESRCH, "%s: no worker %llu (never spawned, or joined)", rq->op, (unsigned long long)n);
	return w && !w->joining ? w : NULL;
}

void worker_op_kill(struct ag_req *rq)
{
	struct worker *w = req_worker(rq);
	int64_t sig;
	if (!w)
		return;
	if (ag_req_i64(rq, AG_K_SIGNAL, SIGTERM, &sig) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (sig < 1 || sig > 64) {
		ag_reply_err(rq, EINVAL, "worker_kill: %lld is not a signal number", (long long)sig);
		return;
	}
	if (w->exited) {
		ag_reply_err(rq, ESRCH, "worker_kill: worker %u has exited already", w->n);
		return;
	}
	if (kill(w->pid, (int)sig) < 0) {
		ag_reply_err(rq, errno, "worker_kill %u: %s", w->n, strerror(errno));
		return;
	}
	ag_reply_ok(rq);
}

void worker_op_join(struct ag_req *rq)
{
	struct worker *w = req_worker(rq);
	uint64_t ms;
	if (!w)
		return;
	if (ag_req_u64(rq, AG_K_TIMEOUT_MS, 0, &ms) < 0) {
		ag_reply_bad(rq);
		return;
	}
	w->joining = true;
	w->jid = rq->id;
	w->jgen = rq->gen;
	w->jdeadline = ms ? sys_mono_ns() + ms * 1000000ull : 0;
	if (w->exited) {
		answer_join(w);
		return;
	}
	/* EOF on its input: the worker ends its processes and exits */
	if (w->fd >= 0 && shutdown(w->fd, SHUT_WR) < 0)
		kill(w->pid, SIGKILL);
}

void worker_timers(uint64_t now)
{
	for (unsigned n = 1; n <= AG_MAX_WORKERS; n++) {
		struct worker *w = &workers[n];
		if (w->n && w->joining && w->jdeadline && now >= w->jdeadline) {
			/* it did not end in time: it is ended */
			w->jdeadline = 0;
			kill(w->pid, SIGKILL);
		}
	}
}

uint64_t worker_next_deadline(void)
{
	uint64_t dl = 0;
	for (unsigned n = 1; n <= AG_MAX_WORKERS; n++)
		if (workers[n].n && workers[n].joining && workers[n].jdeadline &&
		    (!dl || workers[n].jdeadline < dl))
			dl = workers[n].jdeadline;
	return dl;
}

void worker_conn_reset(void)
{
	/* a new connection never reaches the old one's workers: they end */
	for (unsigned n = 1; n <= AG_MAX_WORKERS; n++) {
		struct worker *w = &workers[n];
		if (!w->n)
			continue;
		if (!w->exited)
			kill(w->pid, SIGKILL);
		w->n_inflight = 0;
		release(w);
	}
}

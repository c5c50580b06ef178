/* proc.c - exec, spawn and the processes they start.
 *
 * Every child runs in its own session (setsid, so its pid is its process
 * group id) with stdout and stderr on pipes and stdin on a pipe or /dev/null.
 * The agent never blocks on a child: pipes are non-blocking and serviced from
 * the event loop, exits arrive as SIGCHLD through the signalfd in main.c.
 *
 * When is a process finished? Its main child has exited AND both output pipes
 * reached EOF; or its main child exited GRACE_NS ago and a pipe is still open.
 * The second case is a background grandchild (`daemon &`) that inherited the
 * pipes: waiting for its EOF could take forever, so the agent drains what is
 * readable, SIGKILLs the process group and reports. A background process that
 * redirected its output (`daemon >/dev/null 2>&1 &`) does not hold the pipes
 * and keeps running.
 *
 * Records: an exec record lives until its response is sent. A spawn record
 * lives until a `wait` returns its result (the handle stays valid before),
 * so results of unwaited processes are kept; they are capped separately from
 * the PV_WIRE_MAX_PROCS live processes.
 *
 * Over 800 lines: one process table and the state machine of a child
 * (start, pipes, output caps, timeouts, group kill, reaping) for both exec
 * and spawn; splitting it would expose that table to other files.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wire.h"

#define GRACE_NS (100ull * 1000000ull)
#define MAX_RECORDS (4 * PV_WIRE_MAX_PROCS)
#define READ_CHUNK (64u * 1024u)
#define STDIN_PENDING_CAP PV_WIRE_OUTPUT_CAP
#define DEFAULT_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

extern char **environ;

struct stream {
	int fd; /* -1 after EOF */
	struct pv_buf buf;
	uint32_t sid; /* streamed to the host (stream.c): pushed, not buffered */
	bool discard; /* its stream was closed: read and dropped */
};

struct proc {
	struct proc *next;
	uint32_t handle; /* 0 for exec */
	pid_t pid;       /* also the process group id */
	bool is_exec;
	char *name;      /* argv[0], for messages */
	uint32_t req_id; /* exec: the request to answer */
	uint64_t req_gen;

	struct stream out[2]; /* stdout, stderr */

	int in_fd;            /* -1 once closed */
	struct pv_buf in;     /* stdin bytes not yet written */
	size_t in_off;
	bool in_close;        /* close stdin once `in` is written */
	bool in_broken;       /* the child closed its end */

	bool exited;
	int wstatus;
	uint64_t exit_ns;
	uint64_t deadline;    /* timeout, 0: none */
	bool timed_out;
	bool finished;        /* result complete, no fds left */
	int fail_errno;       /* with fail_msg: the request fails (cap, OOM) */
	char fail_msg[128];

	bool waiting;         /* a `wait` is pending */
	uint32_t wait_id;
	uint64_t wait_gen;
	uint64_t wait_deadline;
};

static struct proc *procs;
static unsigned n_records, n_alive;
static uint32_t next_handle = 1;

/* pollfd index -> (process, 0 stdout / 1 stderr / 2 stdin), from proc_poll_fill */
static struct {
	struct proc *p;
	int which;
} slots[3 * PV_WIRE_MAX_PROCS];

static const char *const stream_names[2] = { "stdout", "stderr" };

size_t proc_max_pollfds(void)
{
	return sizeof(slots) / sizeof(slots[0]);
}

static uint64_t deadline_from_ms(uint64_t now, uint64_t ms)
{
	/* beyond ~34 years a timeout is as good as none, and cannot overflow */
	if (ms == 0 || ms > (UINT64_C(1) << 40))
		return 0;
	return now + ms * 1000000u;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The end of an output pipe (EOF, an error, or given up): a stream on it ends too. */
static void out_close(struct stream *s)
{
	close_fd(&s->fd);
	if (s->sid) {
		stream_push_eof(s->sid);
		s->sid = 0;
		s->discard = true;
	}
}

static void kill_group(struct proc *p)
{
	/* ESRCH: the group is already empty */
	if (kill(-p->pid, SIGKILL) < 0 && errno != ESRCH)
		ag_log("kill -%d: %s", (int)p->pid, strerror(errno));
}

static void fail(struct proc *p, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct proc *p, int errnum, const char *fmt, ...)
{
	va_list ap;
	if (p->fail_msg[0])
		return; /* the first reason is the one to report */
	p->fail_errno = errnum;
	va_start(ap, fmt);
	vsnprintf(p->fail_msg, sizeof(p->fail_msg), fmt, ap);
	va_end(ap);
	kill_group(p);
}

static void close_in(struct proc *p)
{
	close_fd(&p->in_fd);
	pv_buf_release(&p->in);
	p->in_off = 0;
}

static void proc_free(struct proc *p)
{
	struct proc **pp;
	for (pp = &procs; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	if (!p->finished)
		n_alive--;
	n_records--;
	for (int i = 0; i < 2; i++) {
		out_close(&p->out[i]);
		pv_buf_release(&p->out[i].buf);
	}
	close_in(p);
	free(p->name);
	free(p);
}

static struct proc *find_handle(uint32_t h)
{
	for (struct proc *p = procs; p; p = p->next)
		if (h && p->handle == h)
			return p;
	return NULL;
}

static uint32_t new_handle(void)
{
	/* never 0, never one in use, even after wrapping */
	for (;;) {
		uint32_t h = ag_next_handle(&next_handle);
		if (!find_handle(h))
			return h;
	}
}

void proc_pack_status(msgpack_packer *pk, int wstatus, bool timed_out)
{
	ag_pack_key(pk, "status");
	ag_pack_cstr(pk, timed_out ? "timed_out" : WIFSIGNALED(wstatus) ? "signalled" : "exited");
	ag_pack_key(pk, "exit_code");
	if (WIFEXITED(wstatus))
		msgpack_pack_int(pk, WEXITSTATUS(wstatus));
	else
		msgpack_pack_nil(pk);
	ag_pack_key(pk, "signal");
	if (WIFSIGNALED(wstatus))
		msgpack_pack_int(pk, WTERMSIG(wstatus));
	else
		msgpack_pack_nil(pk);
}

/* ---- starting a child ------------------------------------------------------------- */

enum { STAGE_SETUP = 1, STAGE_CREDS, STAGE_CWD, STAGE_EXEC };

/* Who the child runs as: -1 keeps the agent's own uid or gid. */
struct creds {
	int64_t uid, gid;
	uint32_t *groups; /* with has_groups: setgroups(n_groups, groups) */
	size_t n_groups;
	bool has_groups;
};

struct child_report {
	int stage;
	int err;
};

static size_t name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* The child's environment: the agent's (unless clear) with `over` applied.
 * NULL on allocation failure. */
static char **build_env(char **over, size_t nover, bool clear)
{
	size_t nbase = 0, n = 0;
	char **v;

	if (!clear)
		while (environ && environ[nbase])
			nbase++;
	v = calloc(nbase + nover + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < nbase; i++) {
		size_t l = name_len(environ[i]);
		bool overridden = false;
		for (size_t j = 0; j < nover && !overridden; j++)
			overridden = name_len(over[j]) == l && memcmp(over[j], environ[i], l) == 0;
		if (overridden)
			continue;
		if (!(v[n++] = strdup(environ[i])))
			goto oom;
	}
	for (size_t j = 0; j < nover; j++) {
		size_t l = name_len(over[j]);
		bool later = false;
		/* a name given twice: the last one wins, as in a shell */
		for (size_t k = j + 1; k < nover && !later; k++)
			later = name_len(over[k]) == l && memcmp(over[k], over[j], l) == 0;
		if (later)
			continue;
		if (!(v[n++] = strdup(over[j])))
			goto oom;
	}
	return v;
oom:
	ag_strv_free(v);
	return NULL;
}

/* Where execve is tried, in order: the name itself when it contains a slash,
 * else each directory of the child's PATH (the agent's, or a default). Built
 * before fork so the child only calls async-signal-safe functions. */
static char **exec_candidates(const char *file, char **envp, bool *searched)
{
	const char *path = NULL, *p;
	size_t n = 1, i = 0;
	char **v;

	*searched = strchr(file, '/') == NULL;
	if (!*searched) {
		v = calloc(2, sizeof(*v));
		if (v && !(v[0] = strdup(file))) {
			free(v);
			return NULL;
		}
		return v;
	}
	for (char **e = envp; *e && !path; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	if (!path)
		path = getenv("PATH");
	if (!path)
		path = DEFAULT_PATH;
	for (p = path; *p; p++)
		n += *p == ':';
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	if (!*file)
		return v; /* "" is never found */
	for (p = path;; ) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		/* an empty PATH element means the current directory */
		if (asprintf(&v[i], "%.*s/%s", (int)(dl ? dl : 1), dl ? p : ".", file) < 0) {
			v[i] = NULL;
			ag_strv_free(v);
			return NULL;
		}
		i++;
		if (!*end)
			break;
		p = end + 1;
	}
	return v;
}

static __attribute__((noreturn)) void child_fail(int fd, int stage, int err)
{
	struct child_report m = { stage, err };
	/* nothing to do if the parent cannot hear it: it sees exit code 127 */
	ssize_t r = write(fd, &m, sizeof(m));
	(void)r;
	_exit(127);
}

/* Runs in the forked child: async-signal-safe calls only. */
static __attribute__((noreturn)) void child_run(int in, int out, int err, int report, const struct creds *cr,
						const char *cwd, char **argv, char **envp, char **cands, bool searched)
{
	struct sigaction sa;
	sigset_t none;
	bool eacces = false;
	int last = ENOENT;

	if (setsid() < 0)
		child_fail(report, STAGE_SETUP, errno);
	/* the pipe ends are >= 3 (main.c keeps 0-2 open), so dup2 never clobbers
	 * one it still needs; the originals are O_CLOEXEC */
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		child_fail(report, STAGE_SETUP, errno);
	/* undo the agent's signal setup: it ignores SIGPIPE and blocks SIGCHLD/SIGIO
	 * for its signalfd, and both would be inherited across execve */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		child_fail(report, STAGE_SETUP, errno);
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		child_fail(report, STAGE_SETUP, errno);
	/* groups, then gid, then uid: each later step needs the privilege the
	 * earlier ones still have. A uid without groups drops the agent's
	 * supplementary groups (as su and sudo do). The cwd is entered as the
	 * new user, so its permission checks are that user's. */
	if ((cr->has_groups || cr->uid >= 0) &&
	    setgroups(cr->has_groups ? cr->n_groups : 0, (const gid_t *)cr->groups) < 0)
		child_fail(report, STAGE_CREDS, errno);
	if (cr->gid >= 0 && setgid((gid_t)cr->gid) < 0)
		child_fail(report, STAGE_CREDS, errno);
	if (cr->uid >= 0 && setuid((uid_t)cr->uid) < 0)
		child_fail(report, STAGE_CREDS, errno);
	if (cwd && chdir(cwd) < 0)
		child_fail(report, STAGE_CWD, errno);
	for (size_t i = 0; cands[i]; i++) {
		execve(cands[i], argv, envp);
		last = errno;
		if (!searched)
			break;
		/* execvp's rules: keep searching past missing entries, remember EACCES */
		if (last == EACCES)
			eacces = true;
		else if (last != ENOENT && last != ENOTDIR && last != ELOOP && last != ENAMETOOLONG)
			child_fail(report, STAGE_EXEC, last);
	}
	child_fail(report, STAGE_EXEC, searched ? (eacces ? EACCES : ENOENT) : last);
}

/* For messages: argv[0], or the start of a shell command. */
static char *proc_name(char **argv, bool is_cmd)
{
	char *s;
	if (!is_cmd)
		return strdup(argv[0]);
	if (asprintf(&s, "%.40s%s", argv[2], strlen(argv[2]) > 40 ? "..." : "") < 0)
		return NULL;
	return s;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Starts the child of an exec or spawn request; NULL after replying with an
 * error. */
static struct proc *proc_start(struct ag_req *rq, bool is_exec)
{
	char **argv = NULL, **env = NULL, **envp = NULL, **cands = NULL, *cmd = NULL, *cwd = NULL;
	size_t argc = 0, nenv = 0;
	bool env_clear = false, has_stdin = false, searched = false;
	const uint8_t *sin = NULL;
	uint32_t sin_len = 0;
	uint64_t timeout_ms = 0;
	struct creds cr = { .uid = -1, .gid = -1 };
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, prep[2] = { -1, -1 };
	struct proc *p = NULL;
	const char *what = is_exec ? "exec" : "spawn";
	struct child_report rep;
	ssize_t n;
	pid_t pid;

	if (ag_req_strv(rq, AG_K_ARGV, &argv, &argc) < 0 || ag_req_str(rq, AG_K_CMD, &cmd) < 0 ||
	    ag_req_env(rq, AG_K_ENV, &env, &nenv) < 0 || ag_req_bool(rq, AG_K_ENV_CLEAR, false, &env_clear) < 0 ||
	    ag_req_str(rq, AG_K_CWD, &cwd) < 0 || ag_req_bin(rq, AG_K_STDIN, &sin, &sin_len, &has_stdin) < 0 ||
	    ag_req_u64(rq, AG_K_TIMEOUT_MS, 0, &timeout_ms) < 0 || ag_req_i64(rq, AG_K_UID, -1, &cr.uid) < 0 ||
	    ag_req_i64(rq, AG_K_GID, -1, &cr.gid) < 0 || ag_req_u32v(rq, AG_K_GROUPS, &cr.groups, &cr.n_groups) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	cr.has_groups = rq->has[AG_K_GROUPS];
	if (cr.uid < -1 || cr.uid >= UINT32_MAX || cr.gid < -1 || cr.gid >= UINT32_MAX) {
		ag_reply_err(rq, EINVAL, "%s: 'uid' and 'gid' must be between 0 and %u", what, UINT32_MAX - 1);
		goto out;
	}
	if (argv && cmd) {
		ag_reply_err(rq, 0, "%s: give either 'argv' or 'cmd', not both", what);
		goto out;
	}
	if (!argv && !cmd) {
		ag_reply_err(rq, 0, "%s: missing 'argv' or 'cmd'", what);
		goto out;
	}
	if (argv && argc == 0) {
		ag_reply_err(rq, 0, "%s: 'argv' is empty", what);
		goto out;
	}
	if (cmd) {
		argv = calloc(4, sizeof(*argv));
		if (!argv || !(argv[0] = strdup("/bin/sh")) || !(argv[1] = strdup("-c"))) {
			ag_reply_err(rq, ENOMEM, "%s: out of memory", what);
			goto out;
		}
		argv[2] = cmd;
		cmd = NULL;
	}
	if (n_alive >= PV_WIRE_MAX_PROCS) {
		ag_reply_err(rq, 0, "%s %s: too many processes (at most %d may be alive at once)", what, argv[0],
			     PV_WIRE_MAX_PROCS);
		goto out;
	}
	if (n_records >= MAX_RECORDS) {
		ag_reply_err(rq, 0, "%s %s: too many spawned processes were never waited for (at most %d records)",
			     what, argv[0], MAX_RECORDS);
		goto out;
	}
	if (!(envp = build_env(env, nenv, env_clear)) || !(cands = exec_candidates(argv[0], envp, &searched)) ||
	    !(p = calloc(1, sizeof(*p))) || !(p->name = proc_name(argv, rq->has[AG_K_CMD]))) {
		ag_reply_err(rq, ENOMEM, "%s %s: out of memory", what, argv[0]);
		goto out;
	}
	p->out[0].fd = p->out[1].fd = p->in_fd = -1;
	/* spawn always gets a stdin pipe (it stays open for stdin_write); exec only
	 * when it has bytes to feed, else /dev/null */
	if (has_stdin || !is_exec) {
		if (pipe2(pin, O_CLOEXEC) < 0)
			goto sys_fail;
	} else if ((pin[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		goto sys_fail;
	}
	if (pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0 || pipe2(prep, O_CLOEXEC) < 0)
		goto sys_fail;
	if (has_stdin && pv_buf_append(&p->in, sin, sin_len) < 0) {
		errno = ENOMEM;
		goto sys_fail;
	}

	pid = fork();
	if (pid < 0)
		goto sys_fail;
	if (pid == 0)
		child_run(pin[0], pout[1], perr[1], prep[1], &cr, cwd, argv, envp, cands, searched);

	close_fd(&pin[0]);
	close_fd(&pout[1]);
	close_fd(&perr[1]);
	close_fd(&prep[1]);
	/* git's run-command trick: the report pipe closes on a successful execve
	 * (O_CLOEXEC) or carries why it failed. Blocking here is brief: the child
	 * runs only a few syscalls before exec. */
	do
		n = read(prep[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close_fd(&prep[0]);
	if (n == (ssize_t)sizeof(rep)) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (rep.stage == STAGE_CREDS)
			ag_reply_err(rq, rep.err, "%s %s: running as uid %lld gid %lld: %s", what, argv[0],
				     (long long)cr.uid, (long long)cr.gid, strerror(rep.err));
		else if (rep.stage == STAGE_CWD)
			ag_reply_err(rq, rep.err, "%s %s: cwd %s: %s", what, argv[0], cwd, strerror(rep.err));
		else if (rep.stage == STAGE_EXEC)
			ag_reply_err(rq, rep.err, "%s %s: %s", what, argv[0], strerror(rep.err));
		else
			ag_reply_err(rq, rep.err, "%s %s: setting up the child: %s", what, argv[0], strerror(rep.err));
		goto out;
	}

	p->pid = pid;
	p->is_exec = is_exec;
	p->out[0].fd = pout[0];
	p->out[1].fd = perr[0];
	p->in_fd = pin[1];
	pout[0] = perr[0] = pin[1] = -1;
	p->in_close = is_exec;
	p->deadline = deadline_from_ms(sys_mono_ns(), timeout_ms);
	p->req_id = rq->id;
	p->req_gen = rq->gen;
	for (int i = 0; i < 2; i++)
		if (set_nonblock(p->out[i].fd) < 0)
			ag_log("O_NONBLOCK on a pipe: %s", strerror(errno));
	if (p->in_fd >= 0 && set_nonblock(p->in_fd) < 0)
		ag_log("O_NONBLOCK on a pipe: %s", strerror(errno));
	if (p->in_fd >= 0 && p->in_close && p->in.len == 0)
		close_in(p);
	if (!is_exec)
		p->handle = new_handle();
	p->next = procs;
	procs = p;
	n_records++;
	n_alive++;
	{
		struct proc *ret = p;
		p = NULL;
		ag_strv_free(argv);
		ag_strv_free(env);
		ag_strv_free(envp);
		ag_strv_free(cands);
		free(cwd);
		free(cr.groups);
		return ret;
	}

sys_fail:
	ag_reply_err(rq, errno, "%s %s: %s", what, argv[0], strerror(errno));
out:
	close_fd(&pin[0]);
	close_fd(&pin[1]);
	close_fd(&pout[0]);
	close_fd(&pout[1]);
	close_fd(&perr[0]);
	close_fd(&perr[1]);
	close_fd(&prep[0]);
	close_fd(&prep[1]);
	if (p) {
		pv_buf_release(&p->in);
		free(p->name);
		free(p);
	}
	ag_strv_free(argv);
	ag_strv_free(env);
	ag_strv_free(envp);
	ag_strv_free(cands);
	free(cmd);
	free(cwd);
	free(cr.groups);
	return NULL;
}

void proc_op_exec(struct ag_req *rq)
{
	/* the response is sent by proc_sweep() when the process finishes */
	proc_start(rq, true);
}

void proc_op_spawn(struct ag_req *rq)
{
	struct proc *p = proc_start(rq, false);
	struct ag_resp r;
	msgpack_packer *pk;

	if (!p)
		return;
	pk = ag_resp_begin(&r, rq, 2);
	ag_pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->handle);
	ag_pack_key(pk, "pid");
	msgpack_pack_int(pk, p->pid);
	ag_resp_end(&r);
}

/* ---- results ---------------------------------------------------------------------- */

static bool ready(const struct proc *p)
{
	return p->exited && p->out[0].fd < 0 && p->out[1].fd < 0;
}

static void reply_result(struct proc *p, uint32_t id, uint64_t gen, const char *op)
{
	char label[64];
	struct ag_resp r;
	msgpack_packer *pk;
	int st = p->wstatus;

	if (p->is_exec)
		snprintf(label, sizeof(label), "%s", p->name);
	else
		snprintf(label, sizeof(label), "%u (%s)", p->handle, p->name);
	if (p->fail_msg[0]) {
		ag_reply_err_id(id, gen, p->fail_errno, "%s %s: %s", op, label, p->fail_msg);
		return;
	}
	pk = ag_resp_begin_id(&r, id, gen, op, 5, p->out[0].buf.len + p->out[1].buf.len);
	proc_pack_status(pk, st, p->timed_out);
	for (int i = 0; i < 2; i++) {
		ag_pack_key(pk, stream_names[i]);
		msgpack_pack_bin_with_body(pk, p->out[i].buf.data, p->out[i].buf.len);
	}
	ag_resp_end(&r);
}

/* ---- wait, kill, stdin ------------------------------------------------------------- */

/* The `proc` argument; NULL after replying with an error. */
static struct proc *req_proc(struct ag_req *rq)
{
	uint64_t h;
	struct proc *p;

	if (ag_req_u64(rq, AG_K_PROC, UINT64_MAX, &h) < 0) {
		ag_reply_bad(rq);
		return NULL;
	}
	if (h == UINT64_MAX) {
		ag_reply_err(rq, 0, "%s: missing 'proc'", rq->op);
		return NULL;
	}
	if (h > UINT32_MAX || !(p = find_handle((uint32_t)h))) {
		ag_reply_err(rq, ESRCH, "%s %llu: no such process handle (never spawned, or already waited for)",
			     rq->op, (unsigned long long)h);
		return NULL;
	}
	return p;
}

void proc_op_wait(struct ag_req *rq)
{
	uint64_t ms;
	struct proc *p;

	if (ag_req_u64(rq, AG_K_TIMEOUT_MS, 0, &ms) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (!(p = req_proc(rq)))
		return;
	if (p->waiting) {
		ag_reply_err(rq, EBUSY, "wait %u: another wait for this process is pending", p->handle);
		return;
	}
	if (p->finished) {
		reply_result(p, rq->id, rq->gen, "wait");
		proc_free(p);
		return;
	}
	p->waiting = true;
	p->wait_id = rq->id;
	p->wait_gen = rq->gen;
	p->wait_deadline = deadline_from_ms(sys_mono_ns(), ms);
}

void proc_op_kill(struct ag_req *rq)
{
	int64_t sig;
	struct proc *p;

	if (ag_req_i64(rq, AG_K_SIGNAL, SIGTERM, &sig) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (!(p = req_proc(rq)))
		return;
	if (sig < 0 || sig > SIGRTMAX) {
		ag_reply_err(rq, EINVAL, "kill %u: invalid signal %lld", p->handle, (long long)sig);
		return;
	}
	/* Once the main child is reaped its pid (the group id) may be recycled, so
	 * the agent no longer signals it; the process is gone, which is what kill
	 * asked for. */
	if (!p->exited && kill(-p->pid, (int)sig) < 0 && errno != ESRCH) {
		ag_reply_err(rq, errno, "kill %u: %s", p->handle, strerror(errno));
		return;
	}
	ag_reply_ok(rq);
}

/* Where a spawned process is, without waiting: "running" until it is reaped,
 * then as its wait result would say (output may still be unread). */
void proc_op_status(struct ag_req *rq)
{
	struct proc *p = req_proc(rq);
	struct ag_resp r;
	msgpack_packer *pk;
	int st;

	if (!p)
		return;
	st = p->wstatus;
	pk = ag_resp_begin(&r, rq, 3);
	ag_pack_key(pk, "status");
	ag_pack_cstr(pk, !p->exited ? "running"
			 : p->timed_out ? "timed_out"
			 : WIFSIGNALED(st) ? "signalled" : "exited");
	ag_pack_key(pk, "exit_code");
	if (p->exited && WIFEXITED(st))
		msgpack_pack_int(pk, WEXITSTATUS(st));
	else
		msgpack_pack_nil(pk);
	ag_pack_key(pk, "signal");
	if (p->exited && WIFSIGNALED(st))
		msgpack_pack_int(pk, WTERMSIG(st));
	else
		msgpack_pack_nil(pk);
	ag_resp_end(&r);
}

void proc_op_stdin_write(struct ag_req *rq)
{
	const uint8_t *data;
	uint32_t len;
	bool present;
	struct proc *p;

	if (ag_req_bin(rq, AG_K_DATA, &data, &len, &present) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (!present) {
		ag_reply_err(rq, 0, "stdin_write: missing 'data'");
		return;
	}
	if (!(p = req_proc(rq)))
		return;
	if (p->in_fd < 0 || p->in_close) {
		ag_reply_err(rq, EPIPE, "stdin_write %u: %s", p->handle,
			     p->in_broken ? "the process closed its stdin" : "stdin is closed");
		return;
	}
	if (p->in.len - p->in_off + (size_t)len > STDIN_PENDING_CAP) {
		ag_reply_err(rq, 0, "stdin_write %u: more than 16 MiB of stdin would be pending (the process is not reading it)",
			     p->handle);
		return;
	}
	if (pv_buf_append(&p->in, data, len) < 0) {
		ag_reply_err(rq, ENOMEM, "stdin_write %u: out of memory", p->handle);
		return;
	}
	ag_reply_ok(rq);
}

void proc_op_close_stdin(struct ag_req *rq)
{
	struct proc *p = req_proc(rq);
	if (!p)
		return;
	/* pending bytes are still delivered, then EOF */
	p->in_close = true;
	if (p->in_fd >= 0 && p->in.len == p->in_off)
		close_in(p);
	ag_reply_ok(rq);
}

/* ---- event loop hooks --------------------------------------------------------------- */

size_t proc_poll_fill(struct pollfd *pfd, size_t max)
{
	size_t n = 0;
	for (struct proc *p = procs; p; p = p->next) {
		for (int i = 0; i < 2; i++)
			if (p->out[i].fd >= 0 && n < max && (!p->out[i].sid || stream_room())) {
				pfd[n] = (struct pollfd){ .fd = p->out[i].fd, .events = POLLIN };
				slots[n].p = p;
				slots[n++].which = i;
			}
		if (p->in_fd >= 0 && p->in.len > p->in_off && n < max) {
			pfd[n] = (struct pollfd){ .fd = p->in_fd, .events = POLLOUT };
			slots[n].p = p;
			slots[n++].which = 2;
		}
	}
	return n;
}

/* One read of a streamed (or discarded) pipe: pushed, never buffered or capped. */
static bool stream_read_pushed(struct proc *p, int which)
{
	static uint8_t buf[READ_CHUNK];
	struct stream *s = &p->out[which];
	ssize_t n = read(s->fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return false;
		ag_log("reading %s of pid %d: %s", stream_names[which], (int)p->pid, strerror(errno));
		out_close(s);
		return false;
	}
	if (n == 0) {
		out_close(s);
		return false;
	}
	if (s->sid && !stream_push_data(s->sid, buf, (size_t)n)) {
		stream_push_error(s->sid, ENOMEM, "%s of pid %d: out of memory queueing output", stream_names[which],
				  (int)p->pid);
		s->sid = 0;
		s->discard = true;
	}
	return true;
}

/* One read; true if it read bytes (more may be waiting). */
static bool stream_read(struct proc *p, int which)
{
	struct stream *s = &p->out[which];
	size_t room, want;
	ssize_t n;

	if (s->fd < 0)
		return false;
	if (s->sid || s->discard)
		return stream_read_pushed(p, which);
	room = (size_t)PV_WIRE_OUTPUT_CAP - s->buf.len;
	want = room < READ_CHUNK ? room : READ_CHUNK;
	if (want == 0) {
		/* at the cap: one more byte means it was exceeded (a byte buffer of
		 * its own, so the stream buffer never outgrows the cap) */
		uint8_t probe;
		n = read(s->fd, &probe, 1);
		if (n > 0)
			goto over;
	} else {
		if (pv_buf_reserve(&s->buf, want) < 0) {
			fail(p, ENOMEM, "out of memory buffering %s", stream_names[which]);
			close_fd(&s->fd);
			pv_buf_release(&s->buf);
			return false;
		}
		n = read(s->fd, s->buf.data + s->buf.len, want);
	}
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return false;
		ag_log("reading %s of pid %d: %s", stream_names[which], (int)p->pid, strerror(errno));
		close_fd(&s->fd);
		return false;
	}
	if (n == 0) {
		close_fd(&s->fd);
		return false;
	}
	s->buf.len += (size_t)n;
	return true;
over:
	/* never a silent truncation: the request fails */
	fail(p, 0, "%s exceeded the %u MiB output cap", stream_names[which], PV_WIRE_OUTPUT_CAP >> 20);
	close_fd(&s->fd);
	pv_buf_release(&s->buf);
	return false;
}

int proc_stream_attach(uint32_t handle, int which, uint32_t sid, char *why, size_t whylen, struct ag_resp *answer)
{
	struct proc *p = find_handle(handle);
	struct stream *s;
	if (!p) {
		snprintf(why, whylen, "process %u: no such process handle (never spawned, or already waited for)",
			 handle);
		return -ESRCH;
	}
	s = &p->out[which];
	if (s->sid || s->discard) {
		snprintf(why, whylen, "process %u: its %s is streamed already (one stream per output)", handle,
			 stream_names[which]);
		return -EBUSY;
	}
	ag_resp_end(answer);
	/* what it wrote before comes first, so the stream sees every byte */
	if (s->buf.len && !stream_push_data(sid, s->buf.data, s->buf.len)) {
		stream_push_error(sid, ENOMEM, "%s of pid %d: out of memory queueing output", stream_names[which],
				  (int)p->pid);
		s->discard = true;
	} else {
		s->sid = sid;
	}
	pv_buf_release(&s->buf);
	if (s->fd < 0 && s->sid) {
		stream_push_eof(sid);
		s->sid = 0;
		s->discard = true;
	}
	return 0;
}

void proc_stream_detach(uint32_t sid)
{
	for (struct proc *p = procs; p; p = p->next)
		for (int i = 0; i < 2; i++)
			if (p->out[i].sid == sid) {
				p->out[i].sid = 0;
				p->out[i].discard = true;
			}
}

static void stdin_write_some(struct proc *p)
{
	ssize_t n;

	if (p->in_fd < 0)
		return;
	while (p->in.len > p->in_off) {
		n = write(p->in_fd, p->in.data + p->in_off, p->in.len - p->in_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* EPIPE: the child does not want more input; not an error of the request */
			p->in_broken = true;
			close_in(p);
			return;
		}
		p->in_off += (size_t)n;
	}
	pv_buf_reset(&p->in);
	p->in_off = 0;
	if (p->in.cap > 1024 * 1024)
		pv_buf_release(&p->in); /* a big stdin burst: give the memory back */
	if (p->in_close)
		close_in(p);
}

void proc_poll_handle(const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (slots[i].which == 2)
			stdin_write_some(slots[i].p);
		else
			stream_read(slots[i].p, slots[i].which);
	}
}

void proc_reap(void)
{
	uint64_t now = sys_mono_ns();
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return; /* 0: none left to reap; ECHILD: no children at all */
		/* As PID 1 most of these are orphans: reaping them is all there is to do. */
		bool ours = false;
		for (struct proc *p = procs; p; p = p->next)
			if (p->pid == pid && !p->exited) {
				p->exited = true;
				p->wstatus = st;
				p->exit_ns = now;
				p->deadline = 0;
				ours = true;
				break;
			}
		if (!ours)
			worker_reaped(pid, st);
	}
}

void proc_timers(uint64_t now)
{
	for (struct proc *p = procs; p; p = p->next) {
		if (p->finished)
			goto wait_timer;
		if (!p->exited && p->deadline && now >= p->deadline) {
			p->timed_out = true;
			p->deadline = 0;
			kill_group(p);
		}
		if (p->exited && (p->out[0].fd >= 0 || p->out[1].fd >= 0) && now >= p->exit_ns + GRACE_NS) {
			/* a background process holds the pipes: keep what it wrote so far */
			for (int i = 0; i < 2; i++)
				while (stream_read(p, i))
					;
			kill_group(p);
			out_close(&p->out[0]);
			out_close(&p->out[1]);
		}
wait_timer:
		if (p->waiting && p->wait_deadline && now >= p->wait_deadline && !ready(p)) {
			p->waiting = false;
			ag_reply_err_id(p->wait_id, p->wait_gen, ETIMEDOUT, "wait %u (%s): pid %d is still running",
					p->handle, p->name, (int)p->pid);
		}
	}
}

void proc_sweep(void)
{
	struct proc *p = procs, *next;
	for (; p; p = next) {
		next = p->next;
		if (p->finished || !ready(p))
			continue;
		p->finished = true;
		n_alive--;
		close_in(p);
		if (p->is_exec) {
			reply_result(p, p->req_id, p->req_gen, "exec");
			proc_free(p);
		} else if (p->waiting) {
			reply_result(p, p->wait_id, p->wait_gen, "wait");
			proc_free(p);
		}
	}
}

uint64_t proc_next_deadline(void)
{
	uint64_t d = 0;
#define CONSIDER(x) do { uint64_t x_ = (x); if (x_ && (!d || x_ < d)) d = x_; } while (0)
	for (struct proc *p = procs; p; p = p->next) {
		if (p->finished)
			continue;
		if (!p->exited)
			CONSIDER(p->deadline);
		else if (p->out[0].fd >= 0 || p->out[1].fd >= 0)
			CONSIDER(p->exit_ns + GRACE_NS);
		if (p->waiting)
			CONSIDER(p->wait_deadline);
	}
#undef CONSIDER
	return d;
}

void proc_conn_reset(void)
{
	/* a wait of the old connection would block new waits with EBUSY */
	for (struct proc *p = procs; p; p = p->next)
		if (p->waiting && p->wait_gen != ag.gen)
			p->waiting = false;
}

void proc_kill_all(void)
{
	for (struct proc *p = procs; p; p = p->next)
		if (!p->finished && (!p->exited || p->out[0].fd >= 0 || p->out[1].fd >= 0))
			kill_group(p);
	for (struct proc *p = procs; p; p = p->next)
		if (!p->exited) {
			int st;
			while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
				;
			p->exited = true;
		}
	while (procs)
		proc_free(procs);
}

/* scheduler.c - one run: files dispatched to runner processes in the pool,
 * every fd and deadline of the run a watcher on the process's event loop
 * (libev, docs/design.md): each runner's socket and pidfd, each file's
 * timeout, the interrupt signalfd, the 1 Hz pool_state and PSI timers.
 *
 * Over 800 lines: the state of a run (files, runners, their plans and live
 * VMs) and the loop's callbacks that change it. The pool's arithmetic is in
 * pool.c and the control messages' format in src/proto/ctl.c; the next split
 * would move the runner-message handlers (on_frame, answer_*) into their own
 * file behind an internal header.
 */
#include "scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "ctl.h"
#include "frame.h"
#include "mpr.h"
#include "pool.h"
#include "pressure.h"
#include "runner.h"
#include "scratch.h"
#include "sys.h"
#include "units.h"

extern char **environ;

enum fstate { F_PENDING, F_RUNNING, F_DONE };
enum tstate { T_NONE, T_STARTED, T_DONE };
enum stop { STOP_NONE, STOP_TIMEOUT, STOP_INTERRUPT, STOP_PROTOCOL, STOP_ABORT };

struct plan_test {
	char *name;
	struct pv_meta_map meta;
	enum tstate state;
	uint64_t started; /* mono ns */
};

struct open_item {
	char *name;
	uint64_t since; /* mono ns */
};

struct open_list {
	struct open_item *v;
	size_t n, cap;
};

struct sched;

struct frun {
	struct sched *s;
	const struct pv_test_file *f;
	enum fstate state;
	bool blocked_pool, blocked_psi;
	pid_t pid;
	int pidfd, sock;
	struct frame_dec dec;
	struct pool_share share; /* what it holds of the pool (pool.h) */
	bool claim_emitted;
	struct pv_resource claim;
	bool claim_waiting;
	struct pv_resource claim_want;
	bool acq_waiting;
	bool fixture_waiting; /* blocked on another file's fixture build lock */
	struct pool_amount acq_want;
	uint32_t acq_vms;
	uint64_t start, deadline, timeout_ns;
	struct plan_test *tests;
	size_t ntests;
	struct pv_arena arena;
	bool got_plan, got_done, load_seen;
	enum stop stop;
	char stop_why[1024];
	unsigned passed, failed, skipped;
	/* what the runner began and has not ended: VMs (vm_spawned, not yet
	 * vm_shutdown) and fixture builds (_started, not yet _done). A runner
	 * that dies cannot end them; the scheduler does, in the stream */
	struct open_list vms, builds;
	bool reading; /* read_runner is draining its socket (not re-entered) */
	/* on the loop while F_RUNNING: the runner's socket (until EOF), its
	 * pidfd (exit ends the file), the file's deadline (until it stops) */
	ev_io sock_w, pid_w;
	ev_timer deadline_w;
};

struct sched {
	const struct pv_sched_opts *o;
	const struct pv_emitter *em;
	struct frun *files;
	size_t nfiles, next, running;
	struct pool_waiter *waiters; /* scratch for break_deadlock: one per running file */
	size_t *waiter_file;         /* ... and the index of that file */
	struct pool pool;
	struct pv_buf out;
	struct pv_event ev; /* decode scratch */
	bool stopping, interrupted, psi_ok, psi_noticed;
	int signo; /* the signal that interrupted the run */
	uint32_t next_cid;
	char scratch[256];
	double psi;
	struct pv_sched_result *res;
	/* an event of ours that could not be encoded: the run stops with this */
	int fatal;
	char fatal_msg[PV_ERR_MSG_MAX];
	struct ev_loop *loop;
	ev_io intr_w;            /* o->interrupt_fd */
	ev_timer pool_w, psi_w;  /* 1 Hz each */
};

static struct pv_str S(const char *s) { return pv_str_c(s); }

static void count(struct sched *s, struct frun *fr, const struct pv_event *ev)
{
	switch (ev->kind) {
	case PV_EV_TEST_PASSED: s->res->passed++; fr->passed++; break;
	case PV_EV_TEST_FAILED:
		s->res->failed++;
		fr->failed++;
		if (s->o->fail_fast)
			s->stopping = true;
		break;
	case PV_EV_TEST_SKIPPED: s->res->skipped++; fr->skipped++; break;
	default: break;
	}
}

static void stop_file(struct frun *fr, enum stop why, const char *msg);

/* The file an event of ours is about, for an error message. */
static const struct pv_str *event_file(const struct pv_event *ev)
{
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED: return &ev->u.file_discovered.path;
	case PV_EV_FILE_DISPATCHED: return &ev->u.file_dispatched.path;
	case PV_EV_FILE_BLOCKED: return &ev->u.file_blocked.path;
	case PV_EV_FILE_COMPLETED: return &ev->u.file_completed.path;
	case PV_EV_TEST_STARTED: return &ev->u.test_started.path;
	case PV_EV_TEST_SKIPPED: return &ev->u.test_skipped.path;
	case PV_EV_TEST_FAILED: return &ev->u.test_failed.path;
	case PV_EV_VM_SHUTDOWN: return &ev->u.vm_shutdown.file;
	case PV_EV_CLAIM_ACQUIRED: return &ev->u.claim_acquired.path;
	case PV_EV_CLAIM_RELEASED: return &ev->u.claim_released.path;
	default: return NULL;
	}
}

/* Emits an event the scheduler itself produces. One that cannot be encoded
 * is never just dropped: a stream without it breaks the contract for every
 * consumer (a file_discovered missing made a file vanish from an exit-0
 * run). The run stops, and pv_sched_run fails with the first such error.
 * Returns 0, or -1 when the event was not emitted. */
static int emit(struct sched *s, struct frun *fr, struct pv_event *ev)
{
	struct pv_err err;
	int rc;
	ev->ts = pv_now_ns();
	pv_buf_reset(&s->out);
	if ((rc = pv_event_encode(ev, &s->out, &err)) < 0) {
		if (!s->fatal) {
			const struct pv_str *f = event_file(ev);
			char shown[512] = "";
			if (f)
				pv_escape_name(f->ptr, f->len, shown, sizeof(shown));
			s->fatal = rc;
			snprintf(s->fatal_msg, sizeof(s->fatal_msg),
				 "cannot encode the %s event%s%s%s: %.4000s; the run stops (a stream without it breaks "
				 "the event contract)",
				 pv_event_kind_name(ev->kind), f ? " for \"" : "", shown, f ? "\"" : "", err.msg);
			s->stopping = true;
			for (size_t i = 0; i < s->nfiles; i++)
				if (s->files[i].state == F_RUNNING)
					stop_file(&s->files[i], STOP_ABORT, "not finished: the run stopped on an event it could "
										"not encode");
		}
		return -1;
	}
	if (fr)
		count(s, fr, ev);
	s->em->event(s->em->ctx, ev, s->out.data, s->out.len);
	return 0;
}

/* Reasons are built from runner output and messages cut to a buffer's
 * size, which may split a UTF-8 sequence: anything that is not valid UTF-8
 * becomes '?', so the scheduler's own text never makes an event
 * unencodable. Returns text, or buf holding the cleaned copy. */
static const char *clean_text(const char *text, char *buf, size_t len)
{
	size_t n = strlen(text), o = 0;
	if (pv_utf8_valid((const uint8_t *)text, n))
		return text;
	for (size_t i = 0; i < n && o + 4 < len;) {
		size_t k = 1;
		while (k <= 4 && i + k <= n && !pv_utf8_valid((const uint8_t *)text + i, k))
			k++;
		if (k > 4 || i + k > n) {
			buf[o++] = '?';
			i++;
			continue;
		}
		memcpy(buf + o, text + i, k);
		o += k;
		i += k;
	}
	buf[o] = 0;
	return buf;
}

static void emit_pool_state(struct sched *s)
{
	struct pv_event ev = { .kind = PV_EV_POOL_STATE };
	ev.u.pool_state.used = pool_to_resource(s->pool.used);
	ev.u.pool_state.available = pool_to_resource(pool_available(&s->pool));
	emit(s, NULL, &ev);
}

/* ---- synthetic test events ---------------------------------------------- */

static void emit_test(struct sched *s, struct frun *fr, const char *name, const struct pv_meta_map *meta,
		      bool start, int outcome, uint64_t dur, const char *reason)
{
	struct pv_event ev = { 0 };
	struct pv_meta_map none = { NULL, 0 };
	char clean[2048];
	if (!meta)
		meta = &none;
	reason = clean_text(reason, clean, sizeof(clean));
	if (start) {
		ev.kind = PV_EV_TEST_STARTED;
		ev.u.test_started = (struct pv_ev_test_started){ S(fr->f->rel_path), S(name), *meta };
		emit(s, fr, &ev);
	}
	memset(&ev, 0, sizeof(ev));
	if (outcome == PV_EV_TEST_SKIPPED) {
		ev.kind = PV_EV_TEST_SKIPPED;
		ev.u.test_skipped = (struct pv_ev_test_skipped){ S(fr->f->rel_path), S(name), S(reason), *meta };
	} else {
		ev.kind = PV_EV_TEST_FAILED;
		ev.u.test_failed = (struct pv_ev_test_failed){ S(fr->f->rel_path), S(name), dur, S(reason), S(""), *meta };
	}
	emit(s, fr, &ev);
}

static void emit_completed(struct sched *s, struct frun *fr, enum pv_file_status st, uint64_t dur)
{
	struct pv_event ev = { .kind = PV_EV_FILE_COMPLETED };
	ev.u.file_completed = (struct pv_ev_file_completed){ S(fr->f->rel_path), st, dur };
	if (emit(s, fr, &ev) == 0)
		s->res->files++; /* the summary counts the files the stream shows */
	if (st != PV_FILE_PASSED && s->o->fail_fast)
		s->stopping = true;
}

/* ---- runner lifecycle --------------------------------------------------------- */

static int write_ctl(int fd, struct pv_buf *b)
{
	int rc = pv_write_all(fd, b->data, b->len);
	pv_buf_reset(b);
	return rc;
}

static int send_ctl_start(struct sched *s, struct frun *fr)
{
	size_t n = strlen(fr->f->rel_path), sl = strlen(".fixture.lua");
	struct ctl_start st = {
		.config = s->o->config_path,
		.scratch = s->scratch,
		.path = fr->f->rel_path,
		.file = fr->f->abs_path,
		.roots = (const char *const *)s->o->roots,
		.nroots = s->o->nroots,
		.cache_dir = s->o->cache_dir,
		.fixture = s->o->fixture_build ? fr->f->rel_path : NULL,
		.fixture_len = n > sl ? n - sl : n,
		.force = s->o->fixture_force,
		.include_slow = s->o->include_slow,
		.tags = (const char *const *)s->o->tags,
		.ntags = s->o->ntags,
		.no_tags = (const char *const *)s->o->no_tags,
		.nno_tags = s->o->nno_tags,
		.interactive = s->o->interactive,
		.pause_at = s->o->pause_at,
		.tag_meta = (const char *const *)s->o->tag_meta,
		.ntag_meta = s->o->ntag_meta,
		.no_tag_meta = (const char *const *)s->o->no_tag_meta,
		.nno_tag_meta = s->o->nno_tag_meta,
		.only = (const char *const *)fr->f->only,
		.nonly = fr->f->nonly,
	};
	pv_buf_reset(&s->out);
	if (ctl_put_start(&s->out, &st) < 0)
		return -ENOMEM;
	return write_ctl(fr->sock, &s->out);
}

static int spawn_runner(struct sched *s, struct frun *fr, char *why, size_t whylen)
{
	int sv[2], child_fd, rc;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	char ppid[32];
	char *argv[] = { "provium", "__runner", ppid, NULL };

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		return -1;
	}
	child_fd = sv[1];
	if (child_fd == PV_RUNNER_FD) { /* dup2 onto itself would keep CLOEXEC */
		child_fd = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
		close(sv[1]);
	}
	snprintf(ppid, sizeof(ppid), "%d", (int)getpid());
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, child_fd, PV_RUNNER_FD);
	/* a runner's stdout must never mix into machine output on ours */
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP); /* not ignored in runners even under nohup */
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGCHLD);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setpgroup(&at, 0); /* own group: one kill(-pgid) ends it all */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(&fr->pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		close(child_fd);
		close(sv[0]);
		fr->pid = 0;
		snprintf(why, whylen, "cannot start a runner: %s", strerror(rc));
		return -1;
	}
	/* The pidfd is how the loop learns that the runner ended: without one
	 * the file could never end. Opened while child_fd is still ours, so
	 * that a process out of fds fails here, where it is handled (the unit
	 * test exhausts fds to get here). */
	fr->pidfd = (int)syscall(SYS_pidfd_open, fr->pid, 0);
	close(child_fd);
	if (fr->pidfd < 0) {
		int e = errno;
		kill(-fr->pid, SIGKILL); /* it has not been told what to run: nothing is lost */
		while (waitpid(fr->pid, NULL, 0) < 0 && errno == EINTR)
			;
		close(sv[0]);
		fr->pid = 0;
		snprintf(why, whylen, "cannot watch the runner: pidfd_open: %s%s", strerror(e),
			 e == ENOSYS ? " (provium needs Linux 5.3 or later)"
			 : e == EMFILE || e == ENFILE ? " (raise the open-file limit, ulimit -n)" : "");
		return -1;
	}
	fr->sock = sv[0];
	fcntl(fr->sock, F_SETFL, O_NONBLOCK);
	frame_dec_init(&fr->dec);
	ev_io_set(&fr->sock_w, fr->sock, EV_READ);
	ev_io_set(&fr->pid_w, fr->pidfd, EV_READ);
	ev_io_start(s->loop, &fr->sock_w);
	ev_io_start(s->loop, &fr->pid_w);
	/* a runner that dies at once shows up through its pidfd like any crash */
	send_ctl_start(s, fr);
	return 0;
}

/* fr->deadline as a timer on the loop (again, when the runner sets the file's timeout). */
static void arm_deadline(struct frun *fr)
{
	uint64_t now = sys_mono_ns();
	ev_timer_stop(fr->s->loop, &fr->deadline_w);
	if (fr->stop != STOP_NONE || fr->s->o->interactive)
		return;
	/* the loop's cached time may lag: on_deadline checks the clock itself */
	ev_now_update(fr->s->loop);
	ev_timer_set(&fr->deadline_w, fr->deadline > now ? (double)(fr->deadline - now) / 1e9 : 0., 0.);
	ev_timer_start(fr->s->loop, &fr->deadline_w);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct frun *fr = w->data;
	char b[32], msg[128];
	(void)loop;
	(void)revents;
	if (sys_mono_ns() < fr->deadline) {
		arm_deadline(fr);
		return;
	}
	snprintf(msg, sizeof(msg), "file timed out after %s", pv_format_duration(fr->timeout_ns, b));
	stop_file(fr, STOP_TIMEOUT, msg);
}

static void dispatch(struct sched *s, struct frun *fr)
{
	struct pv_event ev = { .kind = PV_EV_FILE_DISPATCHED };
	char why[512];
	const struct pv_resource *claim = fr->f->has_claim ? &fr->f->claim : NULL;

	struct pool_amount r = pool_reservation(&s->pool, claim);

	ev.u.file_dispatched = (struct pv_ev_file_dispatched){ S(fr->f->rel_path), pool_to_resource(r) };
	emit(s, fr, &ev);
	fr->start = sys_mono_ns();
	fr->state = F_RUNNING;
	if (!pool_le(r, s->pool.total)) {
		char a[128], b[128], msg[512];
		pool_describe(r, a, sizeof(a));
		pool_describe(s->pool.total, b, sizeof(b));
		snprintf(msg, sizeof(msg),
			 "the file needs %s (runner overhead + provium:claim), more than the whole pool (%s); "
			 "lower the claim or raise --mem/--vcpus",
			 a, b);
		emit_test(s, fr, "<claim>", NULL, true, PV_EV_TEST_FAILED, 0, msg);
		emit_completed(s, fr, PV_FILE_FAILED, 0);
		fr->state = F_DONE;
		return;
	}
	pool_dispatch(&s->pool, &fr->share, r);
	if (claim) {
		struct pv_event c = { .kind = PV_EV_CLAIM_ACQUIRED };
		c.u.claim_acquired = (struct pv_ev_claim_acquired){ S(fr->f->rel_path), *claim };
		emit(s, fr, &c);
		fr->claim_emitted = true;
		fr->claim = *claim;
	}
	fr->timeout_ns = PV_DEFAULT_FILE_TIMEOUT;
	if (s->o->timeout_ceiling_ns && s->o->timeout_ceiling_ns < fr->timeout_ns)
		fr->timeout_ns = s->o->timeout_ceiling_ns;
	fr->deadline = fr->start + fr->timeout_ns;
	if (spawn_runner(s, fr, why, sizeof(why)) < 0) {
		emit_test(s, fr, "<load>", NULL, true, PV_EV_TEST_FAILED, 0, why);
		pool_end_file(&s->pool, &fr->share);
		if (fr->claim_emitted) {
			struct pv_event c = { .kind = PV_EV_CLAIM_RELEASED };
			c.u.claim_released = (struct pv_ev_claim_released){ S(fr->f->rel_path), fr->claim };
			emit(s, fr, &c);
		}
		emit_completed(s, fr, PV_FILE_CRASHED, sys_mono_ns() - fr->start);
		fr->state = F_DONE;
		return;
	}
	arm_deadline(fr);
	s->running++;
}

static void stop_file(struct frun *fr, enum stop why, const char *msg)
{
	if (fr->stop != STOP_NONE)
		return;
	ev_timer_stop(fr->s->loop, &fr->deadline_w); /* no timeout once it is being stopped */
	fr->stop = why;
	snprintf(fr->stop_why, sizeof(fr->stop_why), "%.1000s", msg);
	if (fr->pid > 0) /* 0 before its runner started: kill(0) would hit our own group */
		kill(-fr->pid, SIGKILL);
}

static struct plan_test *find_test(struct frun *fr, const struct pv_str *name)
{
	for (size_t i = 0; i < fr->ntests; i++)
		if (strlen(fr->tests[i].name) == name->len && memcmp(fr->tests[i].name, name->ptr, name->len) == 0)
			return &fr->tests[i];
	return NULL;
}

static int take_plan(struct frun *fr, const struct ctl_msg *m, struct pv_err *err)
{
	struct mpr r;
	struct mpr_item it, pair, name;
	if (!ctl_find(m, "tests", &r) || mpr_next(&r, &it, err) < 0 || it.type != MPR_ARRAY)
		return pv_err_set(err, -EBADMSG, 0, "plan without tests");
	fr->tests = calloc(it.v.count ? it.v.count : 1, sizeof(*fr->tests));
	if (!fr->tests)
		return pv_err_set(err, -ENOMEM, 0, "out of memory");
	for (uint32_t i = 0; i < it.v.count; i++) {
		if (mpr_next(&r, &pair, err) < 0 || pair.type != MPR_ARRAY || pair.v.count != 2 ||
		    mpr_next(&r, &name, err) < 0 || name.type != MPR_STR)
			return pv_err_set(err, -EBADMSG, 0, "malformed plan entry %u", i);
		/* the scheduler names these tests in events of its own */
		if (!pv_utf8_valid(name.v.raw.ptr, name.v.raw.len) || memchr(name.v.raw.ptr, 0, name.v.raw.len))
			return pv_err_set(err, -EBADMSG, 0, "plan entry %u: the test name is not UTF-8 text", i);
		fr->tests[i].name = pv_arena_strndup(&fr->arena, name.v.raw.ptr, name.v.raw.len);
		if (!fr->tests[i].name || pv_meta_map_read(&r, &fr->arena, &fr->tests[i].meta, err) < 0)
			return -EBADMSG;
		fr->ntests++;
	}
	fr->got_plan = true;
	return 0;
}

/* Something a runner began (a VM, a fixture build) until it ends it. */
static int open_push(struct open_list *l, const struct pv_str *name, const char *what, struct pv_err *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4;
		struct open_item *v = cap > 4096 ? NULL : realloc(l->v, cap * sizeof(*v));
		if (!v)
			return pv_err_set(err, -ENOMEM, 0, "too many %s at once (%zu)", what, l->n);
		l->v = v;
		l->cap = cap;
	}
	char *n = strndup(name->ptr, name->len);
	if (!n)
		return pv_err_set(err, -ENOMEM, 0, "out of memory");
	l->v[l->n++] = (struct open_item){ n, sys_mono_ns() };
	return 0;
}

/* Ends the latest open item of that name: names may repeat (a fixture
 * builder's Lua state and the file's are separate). 0, or -1 if none. */
static int open_pop(struct open_list *l, const struct pv_str *name)
{
	for (size_t i = l->n; i-- > 0;) {
		if (strlen(l->v[i].name) != name->len || memcmp(l->v[i].name, name->ptr, name->len) != 0)
			continue;
		free(l->v[i].name);
		memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
		l->n--;
		return 0;
	}
	return -1;
}

static void open_release(struct open_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void read_runner(struct sched *s, struct frun *fr);
static void read_frames(struct sched *s, struct frun *fr);

/* A build of one fixture starts only once the previous builder released the
 * key's lock, and a builder sends fixture_build_done before it unlocks; but
 * the two runners' sockets are read in whatever order the loop picks, so the
 * new build's _started could be forwarded before the old one's _done, and
 * the stream would show two builds of one fixture open at once. So before
 * forwarding a _started, read every other runner that has a build of that
 * fixture open: its _done is already in its socket. Returns whether it read
 * any (which reuses s->ev). */
static bool drain_builders_of(struct sched *s, struct frun *fr, const struct pv_str *path)
{
	bool drained = false;
	for (size_t i = 0; i < s->nfiles; i++) {
		struct frun *o = &s->files[i];
		if (o == fr || o->state != F_RUNNING || o->reading)
			continue;
		for (size_t j = 0; j < o->builds.n; j++) {
			if (strlen(o->builds.v[j].name) == path->len &&
			    memcmp(o->builds.v[j].name, path->ptr, path->len) == 0) {
				read_runner(s, o);
				drained = true;
				break;
			}
		}
	}
	return drained;
}

/* Keeps fr->vms and fr->builds in step with what the runner forwards. */
static int track_open(struct frun *fr, const struct pv_event *ev, struct pv_err *err)
{
	switch (ev->kind) {
	case PV_EV_VM_SPAWNED: return open_push(&fr->vms, &ev->u.vm_spawned.vm_name, "VMs", err);
	case PV_EV_FIXTURE_BUILD_STARTED: return open_push(&fr->builds, &ev->u.fixture_build_started.path, "builds", err);
	case PV_EV_VM_SHUTDOWN:
		if (open_pop(&fr->vms, &ev->u.vm_shutdown.vm_name) < 0)
			return pv_err_set(err, -EBADMSG, 0, "vm_shutdown for VM \"%.*s\" that is not running",
					  (int)ev->u.vm_shutdown.vm_name.len, ev->u.vm_shutdown.vm_name.ptr);
		return 0;
	case PV_EV_FIXTURE_BUILD_DONE:
		if (open_pop(&fr->builds, &ev->u.fixture_build_done.path) < 0)
			return pv_err_set(err, -EBADMSG, 0, "fixture_build_done for \"%.*s\" that this file did not start",
					  (int)ev->u.fixture_build_done.path.len, ev->u.fixture_build_done.path.ptr);
		return 0;
	default: return 0;
	}
}

static void answer_claim(struct sched *s, struct frun *fr);
static void send_denied(struct sched *s, struct frun *fr, const char *name, const char *reason);
static void answer_acquire(struct sched *s, struct frun *fr);
static void break_deadlock(struct sched *s);

/* One frame from a runner: a control message or a test event. */
static int on_frame(struct sched *s, struct frun *fr, const uint8_t *body, uint32_t len, struct pv_err *err)
{
	if (ctl_is_ctl(body, len)) {
		struct ctl_msg m;
		if (ctl_parse_dir(body, len, CTL_TO_SCHED, &m, err) < 0)
			return -EBADMSG;
		if (ctl_is(&m, "plan"))
			return take_plan(fr, &m, err);
		if (ctl_is(&m, "done")) {
			fr->got_done = true;
			return 0;
		}
		if (ctl_is(&m, "log")) {
			char *t = ctl_get_strdup(&m, "test"), *msg = ctl_get_strdup(&m, "msg");
			if (t && msg && s->em->log)
				s->em->log(s->em->ctx, fr->f->rel_path, t, msg);
			free(t);
			free(msg);
			return 0;
		}
		if (ctl_is(&m, "timeout")) {
			uint64_t ns;
			if (!ctl_get_uint(&m, "ns", &ns))
				return pv_err_set(err, -EBADMSG, 0, "timeout without ns");
			if (s->o->timeout_ceiling_ns && ns > s->o->timeout_ceiling_ns)
				ns = s->o->timeout_ceiling_ns; /* --timeout is the ceiling */
			fr->timeout_ns = ns;
			fr->deadline = fr->start + ns;
			arm_deadline(fr);
			return 0;
		}
		if (ctl_is(&m, "acquire")) {
			uint64_t mem = 0, cpus = 0, nvms = 1;
			ctl_get_uint(&m, "memory_bytes", &mem);
			ctl_get_uint(&m, "cpus", &cpus);
			ctl_get_uint(&m, "vms", &nvms);
			fr->acq_want = (struct pool_amount){ mem, 0, (uint32_t)cpus };
			fr->acq_vms = (uint32_t)(nvms > 64 ? 64 : nvms);
			fr->acq_waiting = true;
			answer_acquire(s, fr);
			return 0;
		}
		if (ctl_is(&m, "fixture_wait")) {
			/* no reply: only for telling a stuck run from a slow one */
			ctl_get_bool(&m, "waiting", &fr->fixture_waiting);
			if (fr->fixture_waiting)
				break_deadlock(s);
			return 0;
		}
		if (ctl_is(&m, "release")) {
			uint64_t mem = 0, cpus = 0;
			ctl_get_uint(&m, "memory_bytes", &mem);
			ctl_get_uint(&m, "cpus", &cpus);
			pool_release(&s->pool, &fr->share, (struct pool_amount){ mem, 0, (uint32_t)cpus });
			return 0;
		}
		if (ctl_is(&m, "claim")) {
			uint64_t mem = 0, cpus = 0;
			ctl_get_uint(&m, "memory_bytes", &mem);
			ctl_get_uint(&m, "cpus", &cpus);
			fr->claim_want = (struct pv_resource){ mem, (uint32_t)cpus };
			fr->claim_waiting = true;
			answer_claim(s, fr);
			return 0;
		}
		return pv_err_set(err, -EBADMSG, 0, "unknown control message \"%s\"", m.name);
	}
	if (pv_event_decode(&s->ev, body, len, err) < 0)
		return -EBADMSG;
	{
		const struct pv_event *ev = &s->ev;
		const struct pv_str *path, *name;
		struct plan_test *t;
		switch (ev->kind) {
		case PV_EV_TEST_STARTED: path = &ev->u.test_started.path; name = &ev->u.test_started.name; break;
		case PV_EV_TEST_PASSED: path = &ev->u.test_passed.path; name = &ev->u.test_passed.name; break;
		case PV_EV_TEST_FAILED: path = &ev->u.test_failed.path; name = &ev->u.test_failed.name; break;
		case PV_EV_TEST_SKIPPED: path = &ev->u.test_skipped.path; name = &ev->u.test_skipped.name; break;
		case PV_EV_VM_SPAWNED:
		case PV_EV_VM_SHUTDOWN: {
			const struct pv_str *file = ev->kind == PV_EV_VM_SPAWNED ? &ev->u.vm_spawned.file : &ev->u.vm_shutdown.file;
			if (file->len != strlen(fr->f->rel_path) || memcmp(file->ptr, fr->f->rel_path, file->len))
				return pv_err_set(err, -EBADMSG, 0, "VM event for another file");
			if (track_open(fr, ev, err) < 0)
				return -EBADMSG;
			s->em->event(s->em->ctx, ev, body - FRAME_HDR_LEN, len + FRAME_HDR_LEN);
			return 0;
		}
		case PV_EV_FIXTURE_BUILD_STARTED:
			if (drain_builders_of(s, fr, &ev->u.fixture_build_started.path)) {
				/* their frames reused the decode scratch */
				if (pv_event_decode(&s->ev, body, len, err) < 0)
					return -EBADMSG;
				ev = &s->ev;
			}
			/* fall through */
		case PV_EV_FIXTURE_BUILD_DONE:
		case PV_EV_FIXTURE_BUILD_WAITING:
		case PV_EV_FIXTURE_CACHE_HIT:
			/* fixtures are shared by files: no file to check against */
			if (track_open(fr, ev, err) < 0)
				return -EBADMSG;
			s->em->event(s->em->ctx, ev, body - FRAME_HDR_LEN, len + FRAME_HDR_LEN);
			return 0;
		default:
			return pv_err_set(err, -EBADMSG, 0, "a runner may not emit %s", pv_event_kind_name(ev->kind));
		}
		if (path->len != strlen(fr->f->rel_path) || memcmp(path->ptr, fr->f->rel_path, path->len))
			return pv_err_set(err, -EBADMSG, 0, "event for another file");
		t = find_test(fr, name);
		if (!t) {
			if (!fr->got_plan && name->len == 6 && memcmp(name->ptr, "<load>", 6) == 0) {
				fr->load_seen = true;
			} else {
				return pv_err_set(err, -EBADMSG, 0, "event for unknown test \"%.*s\"", (int)name->len, name->ptr);
			}
		} else if (ev->kind == PV_EV_TEST_STARTED) {
			if (t->state != T_NONE)
				return pv_err_set(err, -EBADMSG, 0, "test \"%s\" started twice", t->name);
			t->state = T_STARTED;
			t->started = sys_mono_ns();
		} else {
			if (t->state != T_STARTED)
				return pv_err_set(err, -EBADMSG, 0, "test \"%s\" ended without starting", t->name);
			t->state = T_DONE;
		}
		count(s, fr, ev);
		s->em->event(s->em->ctx, ev, body - FRAME_HDR_LEN, len + FRAME_HDR_LEN);
	}
	return 0;
}

static void answer_claim(struct sched *s, struct frun *fr)
{
	char msg[512];

	if (!fr->claim_emitted) { /* else declared at file scope and reserved at dispatch */
		switch (pool_grow_claim(&s->pool, &fr->share, &fr->claim_want, msg, sizeof(msg))) {
		case POOL_NEVER:
			fr->claim_waiting = false;
			send_denied(s, fr, "claim_denied", msg);
			return;
		case POOL_WAIT:
			return; /* stays waiting; retried whenever the pool frees up */
		case POOL_GRANTED:
			break;
		}
		fr->claim = fr->claim_want;
		fr->claim_emitted = true;
		struct pv_event c = { .kind = PV_EV_CLAIM_ACQUIRED };
		c.u.claim_acquired = (struct pv_ev_claim_acquired){ S(fr->f->rel_path), fr->claim };
		emit(s, fr, &c);
	}
	fr->claim_waiting = false;
	pv_buf_reset(&s->out);
	ctl_put_claim_ok(&s->out);
	write_ctl(fr->sock, &s->out);
}

/* A one-field refusal (claim_denied, acquire_denied) with the reason. */
static void send_denied(struct sched *s, struct frun *fr, const char *name, const char *reason)
{
	pv_buf_reset(&s->out);
	if (strcmp(name, "claim_denied") == 0)
		ctl_put_claim_denied(&s->out, reason);
	else
		ctl_put_acquire_denied(&s->out, reason);
	write_ctl(fr->sock, &s->out);
}

static void answer_acquire(struct sched *s, struct frun *fr)
{
	char msg[512];

	switch (pool_acquire(&s->pool, &fr->share, fr->acq_want, msg, sizeof(msg))) {
	case POOL_NEVER:
		fr->acq_waiting = false;
		send_denied(s, fr, "acquire_denied", msg);
		return;
	case POOL_WAIT:
		return; /* retried whenever the pool frees up */
	case POOL_GRANTED:
		break;
	}
	fr->acq_waiting = false;
	pv_buf_reset(&s->out);
	ctl_put_acquired(&s->out, s->next_cid, fr->acq_vms);
	s->next_cid += fr->acq_vms; /* unique per run, >= 3 */
	write_ctl(fr->sock, &s->out);
}

static void read_runner(struct sched *s, struct frun *fr)
{
	fr->reading = true;
	read_frames(s, fr);
	fr->reading = false;
}

static void read_frames(struct sched *s, struct frun *fr)
{
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		struct pv_err err;
		int rc;
		while ((rc = frame_dec_next(&fr->dec, &body, &len, NULL, &err)) == 1) {
			if (on_frame(s, fr, body, len, &err) < 0) {
				char msg[PV_ERR_MSG_MAX + 64];
				snprintf(msg, sizeof(msg), "runner broke the protocol: %s", err.msg);
				stop_file(fr, STOP_PROTOCOL, msg);
				return;
			}
		}
		if (rc < 0) {
			stop_file(fr, STOP_PROTOCOL, "runner sent an oversize frame");
			return;
		}
		ssize_t n = frame_dec_read_fd(&fr->dec, fr->sock);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			/* EOF (or a broken socket): nothing more will come, and a
			 * watcher left on it would fire every turn until the pidfd
			 * says the runner is really gone */
			ev_io_stop(s->loop, &fr->sock_w);
			return;
		}
	}
}

/* "SIGTERM" for SIGTERM: what the user sent, named as kill(1) takes it. */
static const char *sig_name(int sig)
{
	static char b[24];
	const char *abbr = sig > 0 ? sigabbrev_np(sig) : NULL;
	if (!abbr)
		return "a signal";
	snprintf(b, sizeof(b), "SIG%s", abbr);
	return b;
}

static void describe_status(int st, char *buf, size_t len)
{
	if (WIFSIGNALED(st)) {
		const char *abbr = sigabbrev_np(WTERMSIG(st));
		snprintf(buf, len, "runner crashed: killed by signal %d (SIG%s)", WTERMSIG(st), abbr ? abbr : "?");
	} else if (WIFEXITED(st)) {
		snprintf(buf, len, "runner exited with status %d before finishing (os.exit() in a test?)",
			 WEXITSTATUS(st));
	} else {
		snprintf(buf, len, "runner ended abnormally (status 0x%x)", st);
	}
}

static void finish_file(struct sched *s, struct frun *fr)
{
	int st = 0;
	char cause[1100] = "";
	enum pv_file_status status;
	uint64_t now;

	read_runner(s, fr); /* whatever it wrote before dying */
	while (waitpid(fr->pid, &st, 0) < 0 && errno == EINTR)
		;
	kill(-fr->pid, SIGKILL); /* anything it left behind in its group */
	ev_io_stop(s->loop, &fr->sock_w);
	ev_io_stop(s->loop, &fr->pid_w);
	ev_timer_stop(s->loop, &fr->deadline_w);
	close(fr->pidfd);
	close(fr->sock);
	frame_dec_release(&fr->dec);
	now = sys_mono_ns();

	/* VMs the runner never said it shut down died with its process group
	 * (QEMU is in it and has PDEATHSIG): every vm_spawned gets its
	 * vm_shutdown, and a build it started its fixture_build_done (nothing
	 * cached: snapshot_bytes 0, as for a build that fails), before the
	 * file's tests and the file itself end. Latest first, as a runner
	 * unwinding would end them. */
	for (size_t i = fr->vms.n; i-- > 0;) {
		struct pv_event ev = { .kind = PV_EV_VM_SHUTDOWN };
		ev.u.vm_shutdown = (struct pv_ev_vm_shutdown){ S(fr->f->rel_path), S(fr->vms.v[i].name), now - fr->vms.v[i].since };
		emit(s, fr, &ev);
	}
	for (size_t i = fr->builds.n; i-- > 0;) {
		struct pv_event ev = { .kind = PV_EV_FIXTURE_BUILD_DONE };
		ev.u.fixture_build_done = (struct pv_ev_fixture_build_done){ S(fr->builds.v[i].name), now - fr->builds.v[i].since, 0 };
		emit(s, fr, &ev);
	}
	open_release(&fr->vms);
	open_release(&fr->builds);

	if (fr->stop != STOP_NONE)
		snprintf(cause, sizeof(cause), "%s", fr->stop_why);
	else if (!fr->got_done || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		describe_status(st, cause, sizeof(cause));

	if (cause[0]) {
		bool skip = fr->stop == STOP_INTERRUPT || fr->stop == STOP_ABORT;
		if (!fr->got_plan) {
			if (!fr->load_seen)
				emit_test(s, fr, "<load>", NULL, true, skip ? PV_EV_TEST_SKIPPED : PV_EV_TEST_FAILED,
					  now - fr->start, cause);
		} else {
			char poisoned[1200], notrun[200];
			snprintf(poisoned, sizeof(poisoned), "not run: %s (failed due to poisoned state)", cause);
			if (fr->stop == STOP_ABORT)
				snprintf(notrun, sizeof(notrun), "not run: the run stopped on an event it could not encode");
			else
				snprintf(notrun, sizeof(notrun), "not run: the run was interrupted by %s", sig_name(s->signo));
			for (size_t i = 0; i < fr->ntests; i++) {
				struct plan_test *t = &fr->tests[i];
				if (t->state == T_STARTED)
					emit_test(s, fr, t->name, &t->meta, false, skip ? PV_EV_TEST_SKIPPED : PV_EV_TEST_FAILED,
						  now - t->started, cause);
				else if (t->state == T_NONE)
					emit_test(s, fr, t->name, &t->meta, true, skip ? PV_EV_TEST_SKIPPED : PV_EV_TEST_FAILED, 0,
						  skip ? notrun : poisoned);
				t->state = T_DONE;
			}
		}
	}
	if (fr->claim_emitted) {
		struct pv_event c = { .kind = PV_EV_CLAIM_RELEASED };
		c.u.claim_released = (struct pv_ev_claim_released){ S(fr->f->rel_path), fr->claim };
		emit(s, fr, &c);
	}
	pool_end_file(&s->pool, &fr->share);
	if (fr->stop == STOP_TIMEOUT)
		status = PV_FILE_TIMED_OUT;
	else if (fr->stop == STOP_INTERRUPT || fr->stop == STOP_ABORT)
		status = PV_FILE_FAILED;
	else if (cause[0])
		status = PV_FILE_CRASHED;
	else
		status = fr->failed ? PV_FILE_FAILED : PV_FILE_PASSED;
	emit_completed(s, fr, status, now - fr->start);
	fr->state = F_DONE;
	s->running--;
	pv_arena_release(&fr->arena);
	free(fr->tests);
	fr->tests = NULL;
}

/* ---- pressure ---------------------------------------------------------------- */

static void read_psi(struct sched *s)
{
	s->psi_ok = pressure_memory_avg10(&s->psi) == 0;
	if (!s->psi_ok && !s->psi_noticed && s->o->psi_threshold > 0 && s->em->notice) {
		s->em->notice(s->em->ctx, "host memory pressure (PSI, /proc/pressure/memory) is not available here: "
					  "dispatching without pressure back-off");
		s->psi_noticed = true;
	}
}

/* Every running file waiting for VM resources that only the others could
 * free (or for a fixture build of one of them): nobody ever will. Refuse the
 * newest resource waiter so the rest go on. */
static void break_deadlock(struct sched *s)
{
	size_t n = 0;
	unsigned stuck = 0, on_fixture = 0;
	for (size_t i = 0; i < s->nfiles; i++) {
		struct frun *fr = &s->files[i];
		if (fr->state != F_RUNNING)
			continue;
		on_fixture += fr->fixture_waiting;
		s->waiters[n] = (struct pool_waiter){ fr->acq_waiting, fr->fixture_waiting };
		s->waiter_file[n++] = i;
	}
	ptrdiff_t v = pool_deadlock_victim(s->waiters, n, &stuck);
	if (v < 0)
		return;
	struct frun *victim = &s->files[s->waiter_file[v]];
	char a[128], h[128], f[128], msg[900];
	struct pool_amount held = victim->share.reserved;
	held.memory += victim->share.vm_from_pool.memory;
	held.vcpus += victim->share.vm_from_pool.vcpus;
	pool_describe(victim->acq_want, a, sizeof(a));
	pool_describe(held, h, sizeof(h));
	pool_describe(pool_available(&s->pool), f, sizeof(f));
	snprintf(msg, sizeof(msg),
		 "booting needs %s, but all %u running files are waiting for pool resources held by each other%s "
		 "(this file holds %s; free now: %s); declare what the file needs with provium:claim{memory=, cpus=} "
		 "(reserved before it starts), or raise --mem/--vcpus",
		 a, stuck, on_fixture ? " (or for a fixture this boot would build)" : "", h, f);
	victim->acq_waiting = false;
	send_denied(s, victim, "acquire_denied", msg);
}

static void try_dispatch(struct sched *s)
{
	/* claims waiting inside running files go first: they already hold a runner */
	for (size_t i = 0; i < s->nfiles; i++)
		if (s->files[i].state == F_RUNNING && s->files[i].claim_waiting)
			answer_claim(s, &s->files[i]);
	for (size_t i = 0; i < s->nfiles; i++)
		if (s->files[i].state == F_RUNNING && s->files[i].acq_waiting)
			answer_acquire(s, &s->files[i]);
	break_deadlock(s);
	while (!s->stopping && s->next < s->nfiles) {
		struct frun *fr = &s->files[s->next];
		/* --jobs: a cap of the user's, not a resource: no file_blocked */
		if (s->o->jobs && s->running >= s->o->jobs)
			return;
		struct pool_amount want = pool_reservation(&s->pool, fr->f->has_claim ? &fr->f->claim : NULL);
		bool pressure = s->psi_ok && s->o->psi_threshold > 0 && s->psi > s->o->psi_threshold;

		/* pressure never holds back the only file: something must make progress */
		if (pressure && s->running > 0) {
			if (!fr->blocked_psi) {
				struct pv_event ev = { .kind = PV_EV_FILE_BLOCKED };
				ev.u.file_blocked =
					(struct pv_ev_file_blocked){ S(fr->f->rel_path), pool_to_resource(want), S("psi_pressure") };
				emit(s, fr, &ev);
				fr->blocked_psi = true;
			}
			return;
		}
		if (pool_le(want, s->pool.total) && !pool_fits(&s->pool, want)) {
			if (!fr->blocked_pool) {
				struct pv_event ev = { .kind = PV_EV_FILE_BLOCKED };
				ev.u.file_blocked =
					(struct pv_ev_file_blocked){ S(fr->f->rel_path), pool_to_resource(want), S("pool_full") };
				emit(s, fr, &ev);
				fr->blocked_pool = true;
			}
			return; /* strictly in order: no starvation of big files */
		}
		s->next++;
		dispatch(s, fr);
	}
}

/* ---- the loop's callbacks ------------------------------------------------------- */

static void on_runner_sock(struct ev_loop *loop, ev_io *w, int revents)
{
	struct frun *fr = w->data;
	(void)loop;
	(void)revents;
	if (fr->state == F_RUNNING)
		read_runner(fr->s, fr);
}

static void on_runner_exit(struct ev_loop *loop, ev_io *w, int revents)
{
	struct frun *fr = w->data;
	(void)loop;
	(void)revents;
	if (fr->state == F_RUNNING)
		finish_file(fr->s, fr);
}

static void on_interrupt(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sched *s = w->data;
	struct signalfd_siginfo si;
	char why[64], note[160];
	size_t nrun = 0;
	(void)loop;
	(void)revents;
	if (read(s->o->interrupt_fd, &si, sizeof(si)) != (ssize_t)sizeof(si) || s->interrupted)
		return;
	s->stopping = true;
	s->interrupted = true;
	s->signo = (int)si.ssi_signo;
	snprintf(why, sizeof(why), "interrupted by %s", sig_name(s->signo));
	for (size_t f = 0; f < s->nfiles; f++)
		if (s->files[f].state == F_RUNNING) {
			stop_file(&s->files[f], STOP_INTERRUPT, why);
			nrun++;
		}
	snprintf(note, sizeof(note), "%s: stopping %zu running file%s, starting no more", why, nrun, nrun == 1 ? "" : "s");
	if (s->em->notice)
		s->em->notice(s->em->ctx, note);
}

static void on_pool_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sched *s = w->data;
	(void)loop;
	(void)revents;
	if (s->running > 0)
		emit_pool_state(s);
}

static void on_psi_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	read_psi(w->data);
}

/* ---- the run ------------------------------------------------------------------- */

static void make_scratch(struct sched *s)
{
	/* one scratch directory per run: VMs' sockets and consoles live under
	 * it, and whatever a crashed runner leaves is removed at the end. A
	 * provium killed outright cannot, so each run first removes the dirs
	 * of runs that are provably gone (scratch.h) */
	const char *t = getenv("XDG_RUNTIME_DIR");
	struct pv_err serr;
	if (!t || strlen(t) > 60 || access(t, W_OK) != 0)
		t = "/tmp";
	pv_scratch_sweep(t, NULL);
	if (pv_scratch_create(t, s->scratch, sizeof(s->scratch), &serr) < 0) {
		if (s->em->notice)
			s->em->notice(s->em->ctx, serr.msg);
		snprintf(s->scratch, sizeof(s->scratch), "%s/" PV_SCRATCH_PREFIX "XXXXXX", t);
		if (!mkdtemp(s->scratch))
			snprintf(s->scratch, sizeof(s->scratch), "%s", t);
	}
}

int pv_sched_run(const struct pv_sched_opts *o, const struct pv_discovery *d, const struct pv_emitter *em,
		 struct pv_sched_result *res, struct pv_err *err)
{
	struct sched s = { .o = o, .em = em, .res = res, .loop = o->loop };
	s.pool.total = (struct pool_amount){ o->pool.memory_bytes, o->pool.cpus,
					     o->vcpus ? o->vcpus : o->pool.cpus * PV_VCPU_RATIO };
	struct ev_loop *own = NULL;

	memset(res, 0, sizeof(*res));
	s.nfiles = d->nfiles;
	s.files = calloc(d->nfiles ? d->nfiles : 1, sizeof(*s.files));
	s.waiters = calloc(d->nfiles ? d->nfiles : 1, sizeof(*s.waiters));
	s.waiter_file = calloc(d->nfiles ? d->nfiles : 1, sizeof(*s.waiter_file));
	if (!s.loop)
		s.loop = own = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (!s.files || !s.waiters || !s.waiter_file || !s.loop) {
		free(s.files);
		free(s.waiters);
		free(s.waiter_file);
		if (own)
			ev_loop_destroy(own);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, s.loop ? "out of memory" : "cannot create an event loop");
	}
	pv_event_init(&s.ev);
	s.next_cid = 3;
	make_scratch(&s);

	for (size_t i = 0; i < d->nfiles; i++) {
		struct pv_event ev = { .kind = PV_EV_FILE_DISCOVERED };
		struct pv_str refs[64];
		struct frun *fr = &s.files[i];
		size_t nr = d->files[i].nfixture_refs < 64 ? d->files[i].nfixture_refs : 64;
		fr->s = &s;
		fr->f = &d->files[i];
		ev_init(&fr->sock_w, on_runner_sock);
		ev_init(&fr->pid_w, on_runner_exit);
		ev_init(&fr->deadline_w, on_deadline);
		fr->sock_w.data = fr->pid_w.data = fr->deadline_w.data = fr;
		for (size_t r = 0; r < nr; r++)
			refs[r] = S(d->files[i].fixture_refs[r]);
		ev.u.file_discovered.path = S(d->files[i].rel_path);
		ev.u.file_discovered.fixture_refs = (struct pv_strlist){ refs, (uint32_t)nr };
		ev.u.file_discovered.declared_claim = (struct pv_opt_resource){ d->files[i].has_claim, d->files[i].claim };
		emit(&s, NULL, &ev);
	}

	if (o->interrupt_fd >= 0) {
		ev_io_init(&s.intr_w, on_interrupt, o->interrupt_fd, EV_READ);
		s.intr_w.data = &s;
		ev_io_start(s.loop, &s.intr_w);
	}
	ev_timer_init(&s.pool_w, on_pool_tick, 1., 1.);
	ev_timer_init(&s.psi_w, on_psi_tick, 1., 1.);
	s.pool_w.data = s.psi_w.data = &s;
	ev_now_update(s.loop);
	ev_timer_start(s.loop, &s.psi_w);
	ev_timer_start(s.loop, &s.pool_w);
	read_psi(&s);
	try_dispatch(&s);
	/* One turn of the loop runs every callback that is due (runner
	 * output, exits, deadlines, ticks, and whatever else is registered on
	 * the loop, such as the event socket); then the pool may have room. */
	while (s.running > 0 || (!s.stopping && s.next < s.nfiles)) {
		ev_run(s.loop, EVRUN_ONCE);
		try_dispatch(&s);
	}
	ev_timer_stop(s.loop, &s.pool_w);
	ev_timer_stop(s.loop, &s.psi_w);
	if (o->interrupt_fd >= 0)
		ev_io_stop(s.loop, &s.intr_w);
	/* files the run never reached still complete, so every consumer sees an end */
	for (size_t i = 0; i < s.nfiles; i++)
		if (s.files[i].state == F_PENDING) {
			s.files[i].state = F_DONE;
			emit_completed(&s, &s.files[i], PV_FILE_FAILED, 0);
		}
	res->interrupted = s.interrupted;
	res->signal = s.signo;
	if (s.fatal)
		pv_err_set(err, s.fatal, SIZE_MAX, "%s", s.fatal_msg);
	/* runners remove their VMs' directories; this catches crashed ones */
	if (strstr(s.scratch, "/" PV_SCRATCH_PREFIX))
		pv_scratch_remove(s.scratch);
	pv_event_release(&s.ev);
	pv_buf_release(&s.out);
	free(s.files);
	free(s.waiters);
	free(s.waiter_file);
	if (own)
		ev_loop_destroy(own);
	return s.fatal ? s.fatal : 0;
}

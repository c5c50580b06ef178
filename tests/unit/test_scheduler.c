/* Unit tests of the scheduler's own events: one it cannot encode ends the run
 * with an error (exit status 2 in provium) instead of being dropped.
 * Discovery refuses the names that would cause it (test_discover.c); here a
 * discovery is built by hand so the scheduler's guard is tested on its own.
 * Nothing is dispatched, so no runner process is needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include <ev.h>

#include "scheduler.h"

struct seen {
	char kinds[64][32];
	char paths[64][64];
	char reasons[64][256]; /* test_failed */
	int status[64];        /* file_completed */
	size_t n;
};

static void on_event(void *ctx, const struct pv_event *ev, const uint8_t *frame, size_t len)
{
	struct seen *s = ctx;
	struct pv_event back;
	struct pv_err err;
	const struct pv_str *p = NULL;

	/* what reaches the sinks is a frame that decodes to the same event */
	pv_event_init(&back);
	assert_true(len > 4);
	assert_int_equal(pv_event_decode(&back, frame + 4, len - 4, &err), 0);
	assert_int_equal(back.kind, ev->kind);
	pv_event_release(&back);
	if (ev->kind == PV_EV_FILE_DISCOVERED)
		p = &ev->u.file_discovered.path;
	else if (ev->kind == PV_EV_FILE_COMPLETED)
		p = &ev->u.file_completed.path;
	else if (ev->kind == PV_EV_FILE_DISPATCHED)
		p = &ev->u.file_dispatched.path;
	assert_true(s->n < 64);
	snprintf(s->kinds[s->n], sizeof(s->kinds[0]), "%s", pv_event_kind_name(ev->kind));
	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%.*s", p ? (int)p->len : 0, p ? p->ptr : "");
	if (ev->kind == PV_EV_TEST_FAILED)
		snprintf(s->reasons[s->n], sizeof(s->reasons[0]), "%.*s", (int)ev->u.test_failed.reason.len,
			 ev->u.test_failed.reason.ptr);
	if (ev->kind == PV_EV_FILE_COMPLETED)
		s->status[s->n] = (int)ev->u.file_completed.status;
	s->n++;
}

static void test_unencodable_event_ends_the_run(void **state)
{
	(void)state;
	struct pv_test_file files[2] = {
		{ .root = "/nonexistent", .rel_path = "ok.test.lua", .abs_path = "/nonexistent/ok.test.lua" },
		{ .root = "/nonexistent", .rel_path = "caf\xe9.test.lua", .abs_path = "/nonexistent/caf\xe9.test.lua" },
	};
	struct pv_discovery d = { .files = files, .nfiles = 2 };
	struct pv_sched_opts o = { .pool = { 1ull << 30, 2 }, .interrupt_fd = -1 };
	struct seen seen = { 0 };
	struct pv_emitter em = { on_event, NULL, NULL, &seen };
	struct pv_sched_result res;
	struct pv_err err = { 0 };

	assert_true(pv_sched_run(&o, &d, &em, &res, &err) < 0);
	/* the message names the event, the file (escaped) and why */
	assert_non_null(strstr(err.msg, "file_discovered"));
	assert_non_null(strstr(err.msg, "caf\\xe9.test.lua"));
	assert_non_null(strstr(err.msg, "not valid UTF-8"));
	assert_null(strchr(err.msg, '\n'));
	/* nothing ran, and the file that could be named still ends */
	for (size_t i = 0; i < seen.n; i++)
		assert_string_not_equal(seen.kinds[i], "file_dispatched");
	assert_int_equal(seen.n, 2);
	assert_string_equal(seen.kinds[0], "file_discovered");
	assert_string_equal(seen.paths[0], "ok.test.lua");
	assert_string_equal(seen.kinds[1], "file_completed");
	assert_string_equal(seen.paths[1], "ok.test.lua");
	assert_int_equal(res.files, 1);
}

/* A runner whose pidfd cannot be opened could never be seen ending: the
 * file fails at once with one clear reason and its terminal events, and the
 * run ends (it used to wait on an fd of -1 until the file's timeout).
 * Reached for real by running out of fds: all but two are taken, which the
 * runner's socketpair uses, so pidfd_open gets EMFILE. */
static void test_pidfd_failure_fails_the_file(void **state)
{
	(void)state;
	struct pv_test_file files[1] = {
		{ .root = "/nonexistent", .rel_path = "ok.test.lua", .abs_path = "/nonexistent/ok.test.lua" },
	};
	struct pv_discovery d = { .files = files, .nfiles = 1 };
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	struct pv_sched_opts o = { .pool = { 1ull << 30, 2 }, .interrupt_fd = -1, .loop = loop, .psi_threshold = 0 };
	struct seen seen = { 0 };
	struct pv_emitter em = { on_event, NULL, NULL, &seen };
	struct pv_sched_result res;
	struct pv_err err = { 0 };
	struct rlimit old, low;
	int fds[256], nfds = 0, rc;

	assert_non_null(loop);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 200;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfds < 256 && (fds[nfds] = dup(0)) >= 0)
		nfds++;
	assert_true(nfds > 2 && nfds < 256);
	close(fds[--nfds]);
	close(fds[--nfds]);
	rc = pv_sched_run(&o, &d, &em, &res, &err);
	while (nfds > 0)
		close(fds[--nfds]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	ev_loop_destroy(loop);

	assert_int_equal(rc, 0);
	assert_int_equal(seen.n, 5);
	assert_string_equal(seen.kinds[0], "file_discovered");
	assert_string_equal(seen.kinds[1], "file_dispatched");
	assert_string_equal(seen.kinds[2], "test_started");
	assert_string_equal(seen.kinds[3], "test_failed");
	assert_non_null(strstr(seen.reasons[3], "cannot watch the runner: pidfd_open: Too many open files"));
	assert_non_null(strstr(seen.reasons[3], "ulimit -n"));
	assert_string_equal(seen.kinds[4], "file_completed");
	assert_int_equal(seen.status[4], PV_FILE_CRASHED);
	assert_int_equal(res.failed, 1);
	assert_int_equal(res.files, 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unencodable_event_ends_the_run),
		cmocka_unit_test(test_pidfd_failure_fails_the_file),
	};
	/* the scheduler spawns /proc/self/exe as its runner: here, this test */
	if (argc > 1 && strcmp(argv[1], "__runner") == 0)
		return 3;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

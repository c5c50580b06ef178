/* Unit tests of the event sinks: concurrent file appends, disk-full
 * rollback, the socket's permissions, fan-out and slow-client dropping, the
 * socket's replay of the current run and serving it without new frames, and
 * text sinks' failures through the hub. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <ev.h>

#include "frame.h"
#include "sink.h"
#include "golden_events.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pvsink.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Decodes a whole file; returns the number of frames, fails on any error. */
static unsigned count_frames(int fd)
{
	struct frame_dec d;
	struct pv_event ev;
	struct pv_err err;
	const uint8_t *body;
	uint32_t len;
	unsigned n = 0;
	ssize_t r;

	frame_dec_init(&d);
	pv_event_init(&ev);
	do {
		r = frame_dec_read_fd(&d, fd);
		assert_true(r >= 0);
		int rc;
		while ((rc = frame_dec_next(&d, &body, &len, NULL, &err)) == 1) {
			if (pv_event_decode(&ev, body, len, &err) < 0)
				fail_msg("frame %u: %s", n, err.msg);
			n++;
		}
		assert_int_equal(rc, 0);
	} while (r > 0);
	if (frame_dec_finish(&d, &err) < 0)
		fail_msg("%s", err.msg);
	pv_event_release(&ev);
	frame_dec_release(&d);
	return n;
}

static void encode_kind(int k, struct pv_buf *b)
{
	struct pv_event ev;
	golden_event((enum pv_event_kind)k, &ev);
	assert_int_equal(pv_event_encode(&ev, b, NULL), 0);
}

static void test_file_concurrent_writers(void **state)
{
	(void)state;
	char path[300];
	const int writers = 4, per = 1500;
	int fd;

	snprintf(path, sizeof(path), "%s/events", dir);
	for (int w = 0; w < writers; w++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct pv_sink *s;
			struct pv_buf b = PV_BUF_INIT;
			if (pv_sink_open_file(path, false, &s, NULL) < 0)
				_exit(1);
			for (int i = 0; i < per; i++) {
				pv_buf_reset(&b);
				encode_kind((i + w) % PV_EV__COUNT, &b);
				if (pv_sink_write(s, b.data, b.len, NULL) < 0)
					_exit(1);
			}
			pv_sink_close(s);
			_exit(0);
		}
	}
	for (int w = 0; w < writers; w++) {
		int st;
		assert_true(wait(&st) > 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	fd = open(path, O_RDONLY);
	assert_int_equal(count_frames(fd), writers * per);
	close(fd);
}

static void test_file_disk_full_keeps_whole_frames(void **state)
{
	(void)state;
	char path[300];
	pid_t pid;
	int st, fd;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/full", dir);
	pid = fork();
	if (pid == 0) {
		/* RLIMIT_FSIZE makes the kernel cut a write short, as a full disk does */
		struct rlimit rl = { 3000, 3000 };
		struct pv_sink *s;
		struct pv_buf b = PV_BUF_INIT;
		struct pv_err err;
		int failed = 0;
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		if (pv_sink_open_file(path, true, &s, NULL) < 0)
			_exit(2);
		encode_kind(PV_EV_TEST_PASSED, &b);
		for (int i = 0; i < 100 && !failed; i++)
			failed = pv_sink_write(s, b.data, b.len, &err) < 0;
		/* the sink stays failed afterwards */
		if (!failed || pv_sink_write(s, b.data, b.len, &err) >= 0)
			_exit(3);
		pv_sink_close(s);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(sb.st_size > 0 && sb.st_size < 3000);
	assert_true(count_frames(fd) > 0); /* decodes to the end: no torn frame */
	close(fd);
}

static void test_file_restart(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	struct pv_buf b = PV_BUF_INIT;
	int fd;

	snprintf(path, sizeof(path), "%s/restart", dir);
	assert_int_equal(pv_sink_open_file(path, false, &s, NULL), 0);
	encode_kind(PV_EV_POOL_STATE, &b);
	pv_sink_write(s, b.data, b.len, NULL);
	pv_sink_write(s, b.data, b.len, NULL);
	assert_int_equal(pv_sink_restart(s, NULL), 0);
	pv_sink_write(s, b.data, b.len, NULL);
	pv_sink_close(s);
	fd = open(path, O_RDONLY);
	assert_int_equal(count_frames(fd), 1);
	close(fd);
	pv_buf_release(&b);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_socket_clients(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s, *s2;
	struct pv_err err;
	struct pv_buf b = PV_BUF_INIT;
	struct stat st;
	int c1, c2;

	snprintf(path, sizeof(path), "%s/ev.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* a second producer on the same path is refused while the first lives */
	assert_int_equal(pv_sink_open_socket(path, &s2, &err), -EADDRINUSE);

	c1 = connect_to(path);
	c2 = connect_to(path);
	assert_true(c1 >= 0 && c2 >= 0);
	for (int k = 0; k < PV_EV__COUNT; k++)
		encode_kind(k, &b);
	assert_int_equal(pv_sink_write(s, b.data, b.len, &err), 0);
	assert_int_equal(pv_sink_clients(s), 2);
	pv_sink_close(s);
	assert_int_not_equal(access(path, F_OK), 0); /* unlinked */
	assert_int_equal(count_frames(c1), PV_EV__COUNT);
	assert_int_equal(count_frames(c2), PV_EV__COUNT);
	close(c1);
	close(c2);
	pv_buf_release(&b);
}

static void test_socket_refuses_non_socket_and_reuses_stale(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	struct pv_err err;
	int fd;

	snprintf(path, sizeof(path), "%s/plain", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	assert_int_equal(pv_sink_open_socket(path, &s, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "is not a socket"));

	/* a stale socket: bound, then its owner vanished without unlinking */
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		close(fd);
	}
	assert_int_equal(pv_sink_open_socket(path, &s, &err), 0);
	pv_sink_close(s);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_socket_slow_client_dropped(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	struct pv_buf b = PV_BUF_INIT;
	int slow, fast;
	unsigned fast_frames = 0;
	double t0;
	size_t total = 0;
	struct frame_dec d;

	snprintf(path, sizeof(path), "%s/slow.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	slow = connect_to(path); /* never reads */
	fast = connect_to(path);
	fcntl(fast, F_SETFL, O_NONBLOCK);
	encode_kind(PV_EV_TEST_FAILED, &b);
	frame_dec_init(&d);
	t0 = now_s();
	/* push well past the backlog; the fast client keeps reading */
	while (total < 3 * (size_t)PV_SINK_CLIENT_BACKLOG) {
		const uint8_t *body;
		uint32_t len;
		assert_int_equal(pv_sink_write(s, b.data, b.len, NULL), 0);
		total += b.len;
		while (frame_dec_read_fd(&d, fast) > 0)
			while (frame_dec_next(&d, &body, &len, NULL, NULL) == 1)
				fast_frames++;
	}
	/* never waited on the slow one: writing 24 MiB is quick */
	assert_true(now_s() - t0 < 20.0);
	assert_int_equal(pv_sink_dropped(s), 1);
	assert_int_equal(pv_sink_clients(s), 1);
	assert_true(fast_frames > 0);
	pv_sink_close(s);
	frame_dec_release(&d);
	close(slow);
	close(fast);
	pv_buf_release(&b);
}

static int reports;
static char last_report[PV_ERR_MSG_MAX + 64];
static void on_report(void *ctx, const char *msg)
{
	(void)ctx;
	snprintf(last_report, sizeof(last_report), "%s", msg);
	reports++;
}

static void test_hub_reports_failure_once(void **state)
{
	(void)state;
	struct pv_hub h;
	struct pv_sink *bad, *good;
	struct pv_event ev;
	char path[300];
	int fd;

	snprintf(path, sizeof(path), "%s/hub", dir);
	pv_hub_init(&h, on_report, NULL);
	assert_int_equal(pv_sink_open_file("/dev/full", false, &bad, NULL), 0);
	assert_int_equal(pv_sink_open_file(path, true, &good, NULL), 0);
	pv_hub_add(&h, bad);
	pv_hub_add(&h, good);
	for (int i = 0; i < 10; i++) {
		golden_event(PV_EV_POOL_STATE, &ev);
		assert_int_equal(pv_hub_emit(&h, &ev), 0);
	}
	assert_int_equal(reports, 1);
	pv_hub_release(&h);
	fd = open(path, O_RDONLY);
	assert_int_equal(count_frames(fd), 10);
	close(fd);
}

/* ---- the replay and serving without new frames -------------------------- */

/* Reads frames from fd until `want` of them (or EOF), calling pv_sink_service
 * whenever s's poll fd is readable (s may be NULL: nothing more will be
 * written). The kinds of the first nkinds frames land in kinds. */
static unsigned read_frames(int fd, struct pv_sink *s, unsigned want, int *kinds, unsigned nkinds)
{
	struct frame_dec d;
	struct pv_event ev;
	unsigned n = 0;
	double deadline = now_s() + 60;

	frame_dec_init(&d);
	pv_event_init(&ev);
	while (n < want) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = s ? pv_sink_poll_fd(s) : -1, .events = POLLIN } };
		const uint8_t *body;
		uint32_t len;
		ssize_t r;
		if (now_s() > deadline)
			fail_msg("only %u of %u frames within 60 s", n, want);
		if (poll(p, 2, 1000) <= 0)
			continue;
		if (p[1].revents)
			pv_sink_service(s);
		if (!p[0].revents)
			continue;
		r = frame_dec_read_fd(&d, fd);
		assert_true(r >= 0);
		while (frame_dec_next(&d, &body, &len, NULL, NULL) == 1) {
			struct pv_err err;
			if (pv_event_decode(&ev, body, len, &err) < 0)
				fail_msg("frame %u: %s", n, err.msg);
			if (n < nkinds)
				kinds[n] = ev.kind;
			n++;
		}
		if (r == 0)
			break;
	}
	pv_event_release(&ev);
	frame_dec_release(&d);
	return n;
}

static void write_kind(struct pv_sink *s, int kind, unsigned times)
{
	struct pv_buf b = PV_BUF_INIT;
	encode_kind(kind, &b);
	for (unsigned i = 0; i < times; i++)
		assert_int_equal(pv_sink_write(s, b.data, b.len, NULL), 0);
	pv_buf_release(&b);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/* Waits (bounded) until the sink's poll fd says there is work. */
static void await_work(struct pv_sink *s)
{
	struct pollfd p = { .fd = pv_sink_poll_fd(s), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 30000), 1);
}

static void test_socket_replay_mid_run(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	int c, kinds[PV_EV__COUNT];

	snprintf(path, sizeof(path), "%s/replay.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	for (int k = 0; k < PV_EV__COUNT; k++)
		write_kind(s, k, 1);
	assert_false(readable(pv_sink_poll_fd(s))); /* idle: nothing to do */
	c = connect_to(path);
	/* no frame is written from here on: serving the poll fd alone must
	 * deliver the run so far */
	await_work(s);
	pv_sink_service(s);
	assert_int_equal(pv_sink_clients(s), 1);
	assert_int_equal(read_frames(c, NULL, PV_EV__COUNT, kinds, PV_EV__COUNT), PV_EV__COUNT);
	for (int k = 0; k < PV_EV__COUNT; k++)
		assert_int_equal(kinds[k], k);
	assert_false(readable(pv_sink_poll_fd(s))); /* the replay is out: idle again */
	/* and the client stays live for what follows */
	write_kind(s, PV_EV_POOL_STATE, 1);
	pv_sink_close(s);
	assert_int_equal(read_frames(c, NULL, 100, NULL, 0), 1);
	close(c);
}

static void test_socket_replay_larger_than_backlog(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	struct pv_buf b = PV_BUF_INIT;
	unsigned n, got;
	int c;

	snprintf(path, sizeof(path), "%s/big.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	encode_kind(PV_EV_TEST_FAILED, &b);
	n = (unsigned)(PV_SINK_CLIENT_BACKLOG + PV_SINK_CLIENT_BACKLOG / 2) / (unsigned)b.len;
	write_kind(s, PV_EV_TEST_FAILED, n);
	assert_int_equal(pv_sink_replay_bytes(s), (size_t)n * b.len);
	c = connect_to(path);
	/* a replay bigger than the backlog is not "falling behind" */
	got = read_frames(c, s, n, NULL, 0);
	assert_int_equal(got, n);
	assert_int_equal(pv_sink_dropped(s), 0);
	assert_int_equal(pv_sink_clients(s), 1);
	pv_sink_close(s);
	close(c);
	pv_buf_release(&b);
}

static void test_socket_runs(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	int early, pause, late, kinds[8];

	snprintf(path, sizeof(path), "%s/runs.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	early = connect_to(path);
	/* run 1: two files discovered, then three other frames */
	write_kind(s, PV_EV_FILE_DISCOVERED, 2);
	write_kind(s, PV_EV_TEST_PASSED, 2);
	write_kind(s, PV_EV_FILE_COMPLETED, 1);
	assert_int_equal(pv_sink_begin_run(s, NULL), 0);
	/* joining between runs (a --watch pause) gets the whole last run */
	pause = connect_to(path);
	await_work(s);
	pv_sink_service(s);
	assert_int_equal(read_frames(pause, NULL, 5, kinds, 8), 5);
	assert_int_equal(kinds[0], PV_EV_FILE_DISCOVERED);
	assert_int_equal(kinds[4], PV_EV_FILE_COMPLETED);
	/* run 2 forgets run 1: a client joining now sees run 2 from its start */
	write_kind(s, PV_EV_FILE_DISCOVERED, 1);
	write_kind(s, PV_EV_TEST_SKIPPED, 1);
	late = connect_to(path);
	write_kind(s, PV_EV_FILE_COMPLETED, 1);
	assert_int_equal(pv_sink_replay_bytes(s) > 0, 1);
	pv_sink_close(s);
	assert_int_equal(read_frames(early, NULL, 100, NULL, 0), 8);
	assert_int_equal(read_frames(pause, NULL, 100, NULL, 0), 3);
	assert_int_equal(read_frames(late, NULL, 100, kinds, 8), 3);
	assert_int_equal(kinds[0], PV_EV_FILE_DISCOVERED);
	assert_int_equal(kinds[1], PV_EV_TEST_SKIPPED);
	assert_int_equal(kinds[2], PV_EV_FILE_COMPLETED);
	close(early);
	close(pause);
	close(late);
}

static void test_socket_replay_cap(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	struct pv_buf b = PV_BUF_INIT;
	unsigned n;
	int before, after, kinds[4];

	snprintf(path, sizeof(path), "%s/cap.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	encode_kind(PV_EV_TEST_PASSED, &b);
	n = PV_SINK_REPLAY_MAX / (unsigned)b.len;
	write_kind(s, PV_EV_FILE_DISCOVERED, 1);
	write_kind(s, PV_EV_TEST_PASSED, n - 2);
	before = connect_to(path); /* within the cap: will see the run whole */
	await_work(s);
	pv_sink_service(s);
	write_kind(s, PV_EV_TEST_PASSED, 2); /* past the cap */
	assert_int_equal(pv_sink_replay_bytes(s), 0);
	after = connect_to(path);
	await_work(s);
	pv_sink_service(s);
	assert_int_equal(pv_sink_clients(s), 2);
	/* the client that joined past the cap gets nothing of this run... */
	write_kind(s, PV_EV_FILE_COMPLETED, 1);
	/* ...and the next run whole */
	assert_int_equal(pv_sink_begin_run(s, NULL), 0);
	write_kind(s, PV_EV_FILE_DISCOVERED, 1);
	write_kind(s, PV_EV_FILE_COMPLETED, 1);
	assert_int_equal(read_frames(after, s, 2, kinds, 4), 2);
	assert_int_equal(kinds[0], PV_EV_FILE_DISCOVERED);
	assert_int_equal(kinds[1], PV_EV_FILE_COMPLETED);
	assert_int_equal(read_frames(before, s, n + 4, NULL, 0), n + 4);
	assert_int_equal(pv_sink_dropped(s), 0);
	pv_sink_close(s);
	assert_int_equal(read_frames(after, NULL, 100, NULL, 0), 0);
	assert_int_equal(read_frames(before, NULL, 100, NULL, 0), 0);
	close(before);
	close(after);
	pv_buf_release(&b);
}

static void test_socket_hangup_dropped(void **state)
{
	(void)state;
	char path[300];
	struct pv_sink *s;
	int c;

	snprintf(path, sizeof(path), "%s/hup.sock", dir);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	c = connect_to(path);
	await_work(s);
	pv_sink_service(s);
	assert_int_equal(pv_sink_clients(s), 1);
	close(c);
	await_work(s); /* the hang-up is work: the client is dropped without a write */
	pv_sink_service(s);
	assert_int_equal(pv_sink_clients(s), 0);
	assert_false(readable(pv_sink_poll_fd(s)));
	pv_sink_close(s);
}

static void test_hub_serves_socket(void **state)
{
	(void)state;
	char path[300];
	struct pv_hub h;
	struct pv_sink *s;
	struct pv_event ev;
	int c, kinds[2];

	snprintf(path, sizeof(path), "%s/hub.sock", dir);
	pv_hub_init(&h, on_report, NULL);
	assert_int_equal(pv_hub_poll_fd(&h), -1);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	assert_int_equal(pv_hub_add(&h, s), 0);
	golden_event(PV_EV_FILE_DISCOVERED, &ev);
	assert_int_equal(pv_hub_emit(&h, &ev), 0);
	c = connect_to(path);
	{
		struct pollfd p = { .fd = pv_hub_poll_fd(&h), .events = POLLIN };
		assert_int_equal(poll(&p, 1, 30000), 1);
	}
	pv_hub_service(&h);
	assert_int_equal(read_frames(c, NULL, 1, kinds, 2), 1);
	assert_int_equal(kinds[0], PV_EV_FILE_DISCOVERED);
	assert_int_equal(pv_hub_release(&h), 0);
	close(c);
}

/* Attached to a loop, the hub is served by whoever runs it: a client that
 * connects while nothing is emitted gets the replay within one loop turn,
 * also for a socket sink added after the attach. */
static void test_hub_attached_to_loop(void **state)
{
	(void)state;
	char path[300];
	struct pv_hub h;
	struct pv_sink *s;
	struct pv_event ev;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	int c, kinds[2];

	assert_non_null(loop);
	snprintf(path, sizeof(path), "%s/loop.sock", dir);
	pv_hub_init(&h, on_report, NULL);
	pv_hub_attach(&h, loop);
	assert_int_equal(pv_sink_open_socket(path, &s, NULL), 0);
	assert_int_equal(pv_hub_add(&h, s), 0);
	golden_event(PV_EV_FILE_DISCOVERED, &ev);
	assert_int_equal(pv_hub_emit(&h, &ev), 0);
	c = connect_to(path);
	ev_run(loop, EVRUN_ONCE); /* the only watcher is the hub's: this turn serves it */
	assert_int_equal(pv_sink_clients(s), 1);
	assert_int_equal(read_frames(c, NULL, 1, kinds, 2), 1);
	assert_int_equal(kinds[0], PV_EV_FILE_DISCOVERED);
	assert_int_equal(pv_hub_release(&h), 0);
	/* released: nothing of the hub's is left on the loop */
	assert_int_equal(ev_run(loop, EVRUN_NOWAIT), 0);
	ev_loop_destroy(loop);
	close(c);
}

static void test_hub_text_sinks(void **state)
{
	(void)state;
	struct pv_hub h;
	struct pv_err err;
	char path[300], buf[64] = "";
	FILE *bad, *good;
	int full, fd;

	snprintf(path, sizeof(path), "%s/text", dir);
	reports = 0;
	pv_hub_init(&h, on_report, NULL);
	full = open("/dev/full", O_WRONLY | O_CLOEXEC);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(full >= 0 && fd >= 0);
	bad = pv_hub_add_text(&h, full, "the report to /dev/full", &err);
	good = pv_hub_add_text(&h, fd, "the report to a file", &err);
	assert_non_null(bad);
	assert_non_null(good);
	assert_int_equal(fileno(bad), -1);
	for (int i = 0; i < 3; i++) {
		fputs("a line\n", bad);
		assert_int_equal(fflush(bad), EOF);
		fputs("a line\n", good);
		assert_int_equal(fflush(good), 0);
	}
	assert_int_equal(reports, 1); /* once, however often it is written */
	assert_int_equal(strcmp(last_report, "cannot write the report to /dev/full: No space left on device; "
					  "no further output goes there"), 0);
	fputs("unflushed", good); /* closing flushes it */
	assert_int_equal(pv_hub_release(&h), 1);
	close(full);
	close(fd);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 30);
	assert_int_equal(strcmp(buf, "a line\na line\na line\nunflushed"), 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_concurrent_writers),
		cmocka_unit_test(test_file_disk_full_keeps_whole_frames),
		cmocka_unit_test(test_file_restart),
		cmocka_unit_test(test_socket_clients),
		cmocka_unit_test(test_socket_refuses_non_socket_and_reuses_stale),
		cmocka_unit_test(test_socket_slow_client_dropped),
		cmocka_unit_test(test_hub_reports_failure_once),
		cmocka_unit_test(test_socket_replay_mid_run),
		cmocka_unit_test(test_socket_replay_larger_than_backlog),
		cmocka_unit_test(test_socket_runs),
		cmocka_unit_test(test_socket_replay_cap),
		cmocka_unit_test(test_socket_hangup_dropped),
		cmocka_unit_test(test_hub_serves_socket),
		cmocka_unit_test(test_hub_attached_to_loop),
		cmocka_unit_test(test_hub_text_sinks),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests of the event sinks: concurrent file appends, disk-full
 * rollback, the socket's permissions, fan-out and slow-client dropping. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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
static void on_report(void *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
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
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

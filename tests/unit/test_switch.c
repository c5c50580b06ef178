/* test_switch.c - the virtual switch (src/net/switch.h) between socketpairs
 * that play the guests, on a libev loop run by the test. */
#include <errno.h>
#include <ev.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "switch.h"

#define NP 3
struct rig {
	struct ev_loop *loop;
	struct sw *sw;
	int guest[NP]; /* the guests' ends */
};

static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void mac_of(int i, uint8_t *m)
{
	uint8_t v[6] = { 0x52, 0x54, 0x00, 0x77, 0x01, (uint8_t)(i + 1) };
	memcpy(m, v, 6);
}

static void rig_up(struct rig *r, uint64_t seed)
{
	struct pv_err err;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	r->sw = sw_new(r->loop, "test", seed);
	assert_non_null(r->sw);
	for (int i = 0; i < NP; i++) {
		int sv[2];
		uint8_t mac[6];
		assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
		mac_of(i, mac);
		assert_int_equal(sw_port_add(r->sw, i, mac, sv[0], &err), 0);
		r->guest[i] = sv[1];
	}
}

static void rig_down(struct rig *r)
{
	sw_free(r->sw);
	for (int i = 0; i < NP; i++)
		close(r->guest[i]);
	ev_loop_destroy(r->loop);
}

/* Guest `from` sends a frame to dst with a 4-byte tag as payload. */
static void send_frame(struct rig *r, int from, const uint8_t *dst, uint32_t tag, size_t len)
{
	uint8_t f[1600] = { 0 };
	memcpy(f, dst, 6);
	mac_of(from, f + 6);
	f[12] = 0x08;
	memcpy(f + 14, &tag, 4);
	assert_true(len >= 18 && len <= sizeof(f));
	assert_int_equal(send(r->guest[from], f, len, 0), (ssize_t)len);
}

static void spin(struct rig *r, int turns)
{
	for (int i = 0; i < turns; i++)
		ev_run(r->loop, EVRUN_NOWAIT);
}

/* Runs the loop for about ms milliseconds. */
static void run_for(struct rig *r, int ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ev_run(r->loop, EVRUN_NOWAIT);
		struct timespec ts = { 0, 200000 };
		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

/* Frames waiting at guest i: their tags into tags (up to max); the count. */
static int drain(struct rig *r, int i, uint32_t *tags, int max)
{
	uint8_t f[2000];
	int n = 0;
	ssize_t k;
	while ((k = recv(r->guest[i], f, sizeof(f), MSG_DONTWAIT)) > 0) {
		if (tags && n < max)
			memcpy(&tags[n], f + 14, 4);
		n++;
	}
	return n;
}

static void test_unicast_and_broadcast(void **state)
{
	struct rig r;
	uint8_t m1[6];
	(void)state;
	rig_up(&r, 1);
	mac_of(1, m1);
	send_frame(&r, 0, m1, 7, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 1, NULL, 0), 1);
	assert_int_equal(drain(&r, 2, NULL, 0), 0);
	send_frame(&r, 2, BCAST, 8, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 0, NULL, 0), 1);
	assert_int_equal(drain(&r, 1, NULL, 0), 1);
	assert_int_equal(drain(&r, 2, NULL, 0), 0);
	struct sw_counters c;
	assert_int_equal(sw_port_counters(r.sw, 0, &c), 0);
	assert_int_equal(c.tx_packets, 1);
	assert_int_equal(c.rx_packets, 1);
	rig_down(&r);
}

static void test_cuts(void **state)
{
	struct rig r;
	uint8_t m0[6], m1[6];
	(void)state;
	rig_up(&r, 1);
	mac_of(0, m0);
	mac_of(1, m1);
	sw_cut(r.sw, 0, 1, true);
	assert_true(sw_is_cut(r.sw, 0, 1));
	assert_false(sw_is_cut(r.sw, 1, 0));
	send_frame(&r, 0, m1, 1, 60);
	send_frame(&r, 1, m0, 2, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 1, NULL, 0), 0);
	assert_int_equal(drain(&r, 0, NULL, 0), 1);
	/* isolation on top; unisolating brings the cut back */
	sw_isolate(r.sw, 1, true);
	send_frame(&r, 1, m0, 3, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 0, NULL, 0), 0);
	sw_isolate(r.sw, 1, false);
	assert_true(sw_is_cut(r.sw, 0, 1));
	sw_heal_all(r.sw);
	send_frame(&r, 0, m1, 4, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 1, NULL, 0), 1);
	/* link down and detach drop too */
	sw_port_set_link(r.sw, 1, false);
	send_frame(&r, 0, m1, 5, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 1, NULL, 0), 0);
	struct sw_counters c;
	sw_port_counters(r.sw, 1, &c);
	assert_true(c.drops >= 2);
	rig_down(&r);
}

/* Which of 2000 frames from 0 to 1 arrive under a 20% drop, as a bitmap. */
static int dropped_set(uint64_t seed, uint8_t *arrived)
{
	struct rig r;
	uint8_t m1[6];
	uint32_t tags[64];
	int got = 0;
	rig_up(&r, seed);
	mac_of(1, m1);
	struct sw_impair imp = { .drop_pct = 20 };
	sw_set_impair(r.sw, 0, 1, &imp);
	memset(arrived, 0, 2000);
	for (uint32_t i = 0; i < 2000; i++) {
		send_frame(&r, 0, m1, i, 60);
		if (i % 32 == 31) {
			spin(&r, 3);
			int n;
			while ((n = drain(&r, 1, tags, 64)) > 0)
				for (int k = 0; k < n && k < 64; k++) {
					arrived[tags[k]] = 1;
					got++;
				}
		}
	}
	rig_down(&r);
	return got;
}

static void test_drop_is_seeded(void **state)
{
	static uint8_t a[2000], b[2000], c[2000];
	(void)state;
	int na = dropped_set(42, a), nb = dropped_set(42, b), nc = dropped_set(43, c);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, 2000);
	assert_memory_not_equal(a, c, 2000);
	/* 20% of 2000: 400 expected, a binomial's sd is ~18 */
	assert_in_range(2000 - na, 300, 500);
	(void)nc;
}

static uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Runs the loop until guest i has received want frames; the ms it took
 * (an upper bound of the real time: only lower bounds are asserted). */
static uint64_t wait_frames(struct rig *r, int i, int want)
{
	uint64_t t0 = mono_ms();
	int got = 0;
	while (got < want) {
		if (mono_ms() - t0 > 20000)
			fail_msg("only %d of %d frames arrived in 20 s", got, want);
		run_for(r, 2);
		got += drain(r, i, NULL, 0);
	}
	return mono_ms() - t0;
}

static void test_latency_holds_frames(void **state)
{
	struct rig r;
	uint8_t m1[6];
	(void)state;
	rig_up(&r, 1);
	mac_of(1, m1);
	struct sw_impair imp = { .latency_us = 200000 };
	sw_set_impair(r.sw, SW_ANY, SW_ANY, &imp);
	send_frame(&r, 0, m1, 1, 60);
	assert_true(wait_frames(&r, 1, 1) >= 199); /* not before 200 ms */
	rig_down(&r);
}

static void test_duplicate_and_corrupt(void **state)
{
	struct rig r;
	uint8_t m1[6], f[100];
	(void)state;
	rig_up(&r, 1);
	mac_of(1, m1);
	struct sw_impair imp = { .duplicate_pct = 100 };
	sw_set_impair(r.sw, 0, 1, &imp);
	send_frame(&r, 0, m1, 1, 60);
	spin(&r, 5);
	assert_int_equal(drain(&r, 1, NULL, 0), 2);
	struct sw_impair cor = { .corrupt_pct = 100 };
	sw_set_impair(r.sw, 0, 1, &cor);
	send_frame(&r, 0, m1, 0, 60);
	spin(&r, 5);
	ssize_t n = recv(r.guest[1], f, sizeof(f), MSG_DONTWAIT);
	assert_int_equal(n, 60);
	uint8_t want[60] = { 0 };
	memcpy(want, m1, 6);
	mac_of(0, want + 6);
	want[12] = 0x08;
	int bits = 0;
	for (int i = 0; i < 60; i++)
		bits += __builtin_popcount(want[i] ^ f[i]);
	assert_int_equal(bits, 1);
	rig_down(&r);
}

static void test_bandwidth_paces(void **state)
{
	struct rig r;
	uint8_t m1[6];
	(void)state;
	rig_up(&r, 1);
	mac_of(1, m1);
	/* 20 frames of 1000 bytes at 800 kbit/s: 10 ms each, 200 ms in all */
	struct sw_impair imp = { .bandwidth_bps = 800000 };
	sw_set_impair(r.sw, 0, 1, &imp);
	for (int i = 0; i < 20; i++)
		send_frame(&r, 0, m1, (uint32_t)i, 1000);
	assert_true(wait_frames(&r, 1, 20) >= 195);
	rig_down(&r);
}

static void test_capture(void **state)
{
	struct rig r;
	struct pv_err err;
	uint8_t m1[6];
	char bpath[] = "/tmp/pv-sw-XXXXXX", ppath[] = "/tmp/pv-sw-XXXXXX";
	char ebuf[PCAP_ERRBUF_SIZE];
	(void)state;
	close(mkstemp(bpath));
	close(mkstemp(ppath));
	rig_up(&r, 1);
	mac_of(1, m1);
	int bc = sw_capture_start(r.sw, SW_ANY, bpath, &err);
	int pc = sw_capture_start(r.sw, 1, ppath, &err);
	assert_true(bc >= 0 && pc >= 0);
	send_frame(&r, 0, m1, 1, 60);   /* bridge: 1; port 1: delivered 1 */
	send_frame(&r, 1, BCAST, 2, 70); /* bridge: 1; port 1: sent 1 */
	spin(&r, 5);
	assert_int_equal(sw_capture_stop(r.sw, bc), 2);
	assert_int_equal(sw_capture_stop(r.sw, pc), 2);
	pcap_t *p = pcap_open_offline(bpath, ebuf);
	assert_non_null(p);
	assert_int_equal(pcap_datalink(p), DLT_EN10MB);
	struct pcap_pkthdr *h;
	const u_char *data;
	int n = 0;
	size_t bytes = 0;
	while (pcap_next_ex(p, &h, &data) == 1) {
		n++;
		bytes += h->caplen;
	}
	pcap_close(p);
	assert_int_equal(n, 2);
	assert_int_equal(bytes, 130);
	/* a path that cannot be written is an error, not a crash */
	assert_true(sw_capture_start(r.sw, SW_ANY, "/nonexistent/dir/x.pcap", &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent/dir/x.pcap"));
	rig_down(&r);
	unlink(bpath);
	unlink(ppath);
}

static void test_port_add_owns_fd(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sw *sw = sw_new(loop, "t", 1);
	struct pv_err err;
	uint8_t mac[6] = { 0 };
	int sv[2];
	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	assert_true(sw_port_add(sw, SW_MAX_PORTS, mac, sv[0], &err) < 0);
	errno = 0;
	assert_int_equal(close(sv[0]), -1); /* closed by the switch */
	assert_int_equal(errno, EBADF);
	close(sv[1]);
	sw_free(sw);
	ev_loop_destroy(loop);
}

/* Rules saved and loaded (lab snapshots, fixtures): the same cuts, isolation
 * and rules come back; what is not a saved state is refused. */
static void test_state_round_trip(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct sw *sw = sw_new(loop, "t", 1);
	struct sw_impair wide = { .latency_us = 50000 }, pair = { .drop_pct = 30, .bandwidth_bps = 2000000 }, got;
	size_t len;
	(void)state;
	sw_cut(sw, 1, 2, true);
	sw_isolate(sw, 5, true);
	sw_set_impair(sw, SW_ANY, SW_ANY, &wide);
	sw_set_impair(sw, 3, 4, &pair);
	uint8_t *blob = sw_state_save(sw, &len);
	assert_non_null(blob);
	assert_true(len < 8192); /* compact: one record per rule */
	sw_heal_all(sw);
	sw_reset_impair(sw);
	assert_false(sw_is_cut(sw, 1, 2));
	assert_int_equal(sw_state_load(sw, blob, len), 0);
	assert_true(sw_is_cut(sw, 1, 2));
	assert_false(sw_is_cut(sw, 2, 1));
	assert_true(sw_is_isolated(sw, 5));
	sw_get_impair(sw, SW_ANY, SW_ANY, &got);
	assert_int_equal(got.latency_us, 50000);
	sw_get_impair(sw, 3, 4, &got);
	assert_true(got.drop_pct == 30 && got.bandwidth_bps == 2000000);
	sw_get_impair(sw, 4, 3, &got);
	assert_true(got.drop_pct == 0);
	/* short, another magic, a record count that does not match the size */
	assert_int_equal(sw_state_load(sw, blob, 10), -EINVAL);
	assert_int_equal(sw_state_load(sw, blob, len - 1), -EINVAL);
	blob[0] ^= 1;
	assert_int_equal(sw_state_load(sw, blob, len), -EINVAL);
	free(blob);
	sw_free(sw);
	ev_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unicast_and_broadcast), cmocka_unit_test(test_cuts),
		cmocka_unit_test(test_drop_is_seeded),        cmocka_unit_test(test_latency_holds_frames),
		cmocka_unit_test(test_duplicate_and_corrupt), cmocka_unit_test(test_bandwidth_paces),
		cmocka_unit_test(test_capture),               cmocka_unit_test(test_port_add_owns_fd),
		cmocka_unit_test(test_state_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

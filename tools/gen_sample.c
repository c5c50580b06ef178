/* provium-gen-sample: writes the sample event stream the project ships
 * (examples/sample.events). Deterministic: fixed timestamps, fixed content,
 * every one of the 17 kinds at least once, metadata of every MetaValue type.
 * Usage: provium-gen-sample OUT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static struct pv_buf out = PV_BUF_INIT;
static int64_t now = 1764115200000000000LL; /* 2025-11-26T00:00:00Z */

static void emit(struct pv_event *ev)
{
	struct pv_err err;
	now += 1500000; /* 1.5 ms between events */
	ev->ts = now;
	if (pv_event_encode(ev, &out, &err) < 0) {
		fprintf(stderr, "provium-gen-sample: %s\n", err.msg);
		exit(1);
	}
}

#define MB (1024ull * 1024ull)
#define S(x) pv_str_c(x)

static struct pv_meta_value str_v(const char *s) { return (struct pv_meta_value){ .type = PV_META_STR, .v.s = S(s) }; }

static void test(const char *path, const char *name, struct pv_meta_map meta, int outcome,
		 const char *reason)
{
	struct pv_event ev = { .kind = PV_EV_TEST_STARTED };
	ev.u.test_started = (struct pv_ev_test_started){ S(path), S(name), meta };
	emit(&ev);
	memset(&ev, 0, sizeof(ev));
	if (outcome == 0) {
		ev.kind = PV_EV_TEST_PASSED;
		ev.u.test_passed = (struct pv_ev_test_passed){ S(path), S(name), 41000000, meta };
	} else if (outcome == 1) {
		ev.kind = PV_EV_TEST_FAILED;
		ev.u.test_failed = (struct pv_ev_test_failed){
			S(path), S(name), 2300000000ull, S(reason),
			S("[    1.234567] provium-agent: ready\n$ systemctl is-active sshd\nfailed\n"), meta
		};
	} else {
		ev.kind = PV_EV_TEST_SKIPPED;
		ev.u.test_skipped = (struct pv_ev_test_skipped){ S(path), S(name), S(reason), meta };
	}
	emit(&ev);
}

int main(int argc, char **argv)
{
	struct pv_event ev;
	FILE *f;
	const char *files[] = { "net/dhcp.test.lua", "storage/ext4.test.lua", "smoke.test.lua" };
	struct pv_str refs[] = { S("base/debian"), S("net/router") };
	struct pv_resource claim = { 1024 * MB, 2 };

	if (argc != 2) {
		fprintf(stderr, "usage: provium-gen-sample OUT\n");
		return 2;
	}
	for (int i = 0; i < 3; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = PV_EV_FILE_DISCOVERED;
		ev.u.file_discovered.path = S(files[i]);
		if (i == 0) {
			ev.u.file_discovered.fixture_refs = (struct pv_strlist){ refs, 2 };
			ev.u.file_discovered.declared_claim = (struct pv_opt_resource){ true, claim };
		}
		emit(&ev);
	}

	/* net/dhcp: a claim, a fixture build, two VMs */
	memset(&ev, 0, sizeof(ev));
	ev.kind = PV_EV_FILE_DISPATCHED;
	ev.u.file_dispatched = (struct pv_ev_file_dispatched){ S(files[0]), { 1074 * MB, 2 } };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FILE_BLOCKED };
	ev.u.file_blocked = (struct pv_ev_file_blocked){ S(files[1]), { 562 * MB, 1 }, S("pool_full") };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_CLAIM_ACQUIRED };
	ev.u.claim_acquired = (struct pv_ev_claim_acquired){ S(files[0]), claim };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_POOL_STATE };
	ev.u.pool_state = (struct pv_ev_pool_state){ { 1074 * MB, 2 }, { 18000 * MB, 0 } };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FIXTURE_BUILD_STARTED };
	ev.u.fixture_build_started.path = S("base/debian");
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FIXTURE_BUILD_WAITING };
	ev.u.fixture_build_waiting = (struct pv_ev_fixture_build_waiting){ S("base/debian"), S(files[0]) };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FIXTURE_BUILD_DONE };
	ev.u.fixture_build_done = (struct pv_ev_fixture_build_done){ S("base/debian"), 3100000000ull, 9437184 };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FIXTURE_CACHE_HIT };
	ev.u.fixture_cache_hit.path = S("net/router");
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_VM_SPAWNED };
	ev.u.vm_spawned = (struct pv_ev_vm_spawned){ S(files[0]), S("server"), S("linux"), 256 * MB, 3 };
	emit(&ev);
	ev.u.vm_spawned = (struct pv_ev_vm_spawned){ S(files[0]), S("client"), S("linux"), 256 * MB, 4 };
	emit(&ev);

	{
		struct pv_meta_value tags_items[] = { str_v("net"), str_v("dhcp") };
		struct pv_meta_value specs2[] = { str_v("net/dhcp"), str_v("net/lease") };
		struct pv_meta_entry nested[] = { { S("rfc"), { .type = PV_META_INT, .v.i = 2131 } },
						  { S("weight"), { .type = PV_META_FLOAT, .v.f = 0.5 } } };
		struct pv_meta_entry m1[] = {
			{ S("owner"), str_v("net-team") },
			{ S("spec"), str_v("net/dhcp") },
			{ S("tags"), { .type = PV_META_ARRAY, .v.array = { tags_items, 2 } } },
		};
		struct pv_meta_entry m2[] = {
			{ S("flaky"), { .type = PV_META_BOOL, .v.b = true } },
			{ S("nonce"), { .type = PV_META_BIN, .v.s = { "\x00\xff\xfe", 3 } } },
			{ S("ref"), { .type = PV_META_MAP, .v.map = { nested, 2 } } },
			{ S("spec"), { .type = PV_META_ARRAY, .v.array = { specs2, 2 } } },
		};
		struct pv_meta_entry m3[] = { { S("spec"), str_v("net/lease") },
					      { S("ticket"), { .type = PV_META_NIL } } };
		test(files[0], "client gets a lease", (struct pv_meta_map){ m1, 3 }, 0, NULL);
		test(files[0], "lease renews before expiry", (struct pv_meta_map){ m2, 4 }, 1,
		     "net/dhcp.test.lua:42: assert_eq failed: expected \"bound\", got \"expired\"");
		test(files[0], "lease survives server restart", (struct pv_meta_map){ m3, 2 }, 2,
		     "needs a persistent lease store");
	}
	ev = (struct pv_event){ .kind = PV_EV_VM_SHUTDOWN };
	ev.u.vm_shutdown = (struct pv_ev_vm_shutdown){ S(files[0]), S("client"), 5200000000ull };
	emit(&ev);
	ev.u.vm_shutdown = (struct pv_ev_vm_shutdown){ S(files[0]), S("server"), 5400000000ull };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_CLAIM_RELEASED };
	ev.u.claim_released = (struct pv_ev_claim_released){ S(files[0]), claim };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_FILE_COMPLETED };
	ev.u.file_completed = (struct pv_ev_file_completed){ S(files[0]), PV_FILE_FAILED, 5600000000ull };
	emit(&ev);

	/* storage/ext4 */
	ev = (struct pv_event){ .kind = PV_EV_FILE_DISPATCHED };
	ev.u.file_dispatched = (struct pv_ev_file_dispatched){ S(files[1]), { 50 * MB, 0 } };
	emit(&ev);
	{
		struct pv_meta_entry m[] = { { S("spec"), str_v("storage/ext4") } };
		struct pv_meta_entry none[] = { { S("slow"), { .type = PV_META_BOOL, .v.b = true } } };
		test(files[1], "mkfs and mount", (struct pv_meta_map){ m, 1 }, 0, NULL);
		test(files[1], "resize online", (struct pv_meta_map){ m, 1 }, 0, NULL);
		test(files[1], "fsck after power loss", (struct pv_meta_map){ none, 1 }, 2,
		     "slow (use --include-slow)");
	}
	ev = (struct pv_event){ .kind = PV_EV_FILE_COMPLETED };
	ev.u.file_completed = (struct pv_ev_file_completed){ S(files[1]), PV_FILE_PASSED, 1900000000ull };
	emit(&ev);

	/* smoke: a runner that died */
	ev = (struct pv_event){ .kind = PV_EV_FILE_DISPATCHED };
	ev.u.file_dispatched = (struct pv_ev_file_dispatched){ S(files[2]), { 50 * MB, 0 } };
	emit(&ev);
	test(files[2], "boots", (struct pv_meta_map){ NULL, 0 }, 0, NULL);
	test(files[2], "agent answers", (struct pv_meta_map){ NULL, 0 }, 1,
	     "runner crashed: killed by signal 9 (SIGKILL)");
	ev = (struct pv_event){ .kind = PV_EV_FILE_COMPLETED };
	ev.u.file_completed = (struct pv_ev_file_completed){ S(files[2]), PV_FILE_CRASHED, 800000000ull };
	emit(&ev);
	ev = (struct pv_event){ .kind = PV_EV_POOL_STATE };
	ev.u.pool_state = (struct pv_ev_pool_state){ { 0, 0 }, { 19092 * MB, 2 } };
	emit(&ev);

	f = fopen(argv[1], "wb");
	if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
		fprintf(stderr, "provium-gen-sample: cannot write %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	pv_buf_release(&out);
	return 0;
}

#include "golden_events.h"

#include <string.h>

#define S(x) pv_str_c(x)
#define MB (1024ull * 1024ull)

static struct pv_str refs[] = { { "base/debian", 11 }, { "net/r\xc3\xa9seau", 11 } };
static struct pv_meta_value arr[] = {
	{ .type = PV_META_STR, .v.s = { "net", 3 } },
	{ .type = PV_META_INT, .v.i = -7 },
	{ .type = PV_META_NIL },
};
static struct pv_meta_entry inner[] = {
	{ { "depth", 5 }, { .type = PV_META_INT, .v.i = 2 } },
};
/* deliberately unsorted: the encoder must emit byte order */
static struct pv_meta_entry meta_all[] = {
	{ { "spec", 4 }, { .type = PV_META_STR, .v.s = { "net/dhcp", 8 } } },
	{ { "big", 3 }, { .type = PV_META_INT, .v.i = INT64_MAX } },
	{ { "bytes", 5 }, { .type = PV_META_BIN, .v.s = { "ok\x00\xff", 4 } } },
	{ { "utf8bytes", 9 }, { .type = PV_META_BIN, .v.s = { "abc", 3 } } },
	{ { "flag", 4 }, { .type = PV_META_BOOL, .v.b = true } },
	{ { "ratio", 5 }, { .type = PV_META_FLOAT, .v.f = 0.25 } },
	{ { "list", 4 }, { .type = PV_META_ARRAY, .v.array = { arr, 3 } } },
	{ { "map", 3 }, { .type = PV_META_MAP, .v.map = { inner, 1 } } },
	{ { "none", 4 }, { .type = PV_META_NIL } },
	{ { "neg", 3 }, { .type = PV_META_INT, .v.i = INT64_MIN } },
};
static struct pv_meta_entry meta_one[] = {
	{ { "spec", 4 }, { .type = PV_META_STR, .v.s = { "boot", 4 } } },
};

void golden_event(enum pv_event_kind kind, struct pv_event *ev)
{
	struct pv_meta_map all = { meta_all, sizeof(meta_all) / sizeof(meta_all[0]) };
	struct pv_meta_map one = { meta_one, 1 };

	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->ts = 1764115200123456789LL;
	switch (kind) {
	case PV_EV_FILE_DISCOVERED:
		ev->u.file_discovered = (struct pv_ev_file_discovered){
			S("net/dhcp.test.lua"), { refs, 2 }, { true, { 512 * MB, 2 } }
		};
		break;
	case PV_EV_FILE_DISPATCHED:
		ev->u.file_dispatched = (struct pv_ev_file_dispatched){ S("a.test.lua"), { 50 * MB, 0 } };
		break;
	case PV_EV_FILE_BLOCKED:
		ev->u.file_blocked = (struct pv_ev_file_blocked){ S("a.test.lua"), { 4096 * MB, 4 }, S("pool_full") };
		break;
	case PV_EV_FILE_COMPLETED:
		ev->u.file_completed = (struct pv_ev_file_completed){ S("a.test.lua"), PV_FILE_TIMED_OUT, 300000000000ull };
		break;
	case PV_EV_TEST_STARTED:
		ev->u.test_started = (struct pv_ev_test_started){ S("a.test.lua"), S("boots"), all };
		break;
	case PV_EV_TEST_SKIPPED:
		ev->u.test_skipped = (struct pv_ev_test_skipped){ S("a.test.lua"), S("slow one"), S("slow"), one };
		break;
	case PV_EV_TEST_PASSED:
		ev->u.test_passed = (struct pv_ev_test_passed){ S("a.test.lua"), S("boots"), 1234, all };
		break;
	case PV_EV_TEST_FAILED:
		ev->u.test_failed = (struct pv_ev_test_failed){
			S("a.test.lua"), S("boots"), UINT64_MAX, S("a.test.lua:3: boom"), S(""), { NULL, 0 }
		};
		break;
	case PV_EV_VM_SPAWNED:
		ev->u.vm_spawned = (struct pv_ev_vm_spawned){ S("a.test.lua"), S("web"), S("linux"), 256 * MB, UINT32_MAX };
		break;
	case PV_EV_VM_SHUTDOWN:
		ev->u.vm_shutdown = (struct pv_ev_vm_shutdown){ S("a.test.lua"), S("web"), 0 };
		break;
	case PV_EV_POOL_STATE:
		ev->u.pool_state = (struct pv_ev_pool_state){ { 300 * MB, 1 }, { 19000 * MB, 1 } };
		break;
	case PV_EV_CLAIM_ACQUIRED:
		ev->u.claim_acquired = (struct pv_ev_claim_acquired){ S("a.test.lua"), { 1024 * MB, 2 } };
		break;
	case PV_EV_CLAIM_RELEASED:
		ev->u.claim_released = (struct pv_ev_claim_released){ S("a.test.lua"), { 1024 * MB, 2 } };
		break;
	case PV_EV_FIXTURE_BUILD_STARTED:
		ev->u.fixture_build_started.path = S("base/debian");
		break;
	case PV_EV_FIXTURE_BUILD_DONE:
		ev->u.fixture_build_done = (struct pv_ev_fixture_build_done){ S("base/debian"), 2500000000ull, 14680064 };
		break;
	case PV_EV_FIXTURE_BUILD_WAITING:
		ev->u.fixture_build_waiting = (struct pv_ev_fixture_build_waiting){ S("base/debian"), S("b.test.lua") };
		break;
	case PV_EV_FIXTURE_CACHE_HIT:
		ev->u.fixture_cache_hit.path = S("base/debian");
		break;
	default:
		break;
	}
}

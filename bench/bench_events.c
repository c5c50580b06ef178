/* bench_events: throughput of the event codec against raw msgpack-c.
 *
 * Measures, on a deterministic stream shaped like a real run (mostly test_*
 * events with metadata, plus the file, VM, pool, claim and fixture events around
 * them):
 *   encode           pv_event_encode of every event into one pv_buf;
 *   decode+validate  frame_dec splitting + pv_event_decode of every frame.
 * Each is printed as a ratio against msgpack-c doing the least it can with the
 * very same objects in the same run: msgpack_pack_object of prebuilt
 * msgpack_object trees (plus the 4-byte frame header) and msgpack_unpack_next
 * of the same bodies. That is the library's own limit, and a ratio survives a
 * noisy shared machine where absolute numbers do not.
 *
 * Targets (reported, never asserted; performance targets live here, not in
 * timed unit tests): encode >= 0.70x raw pack, decode+validate >= 0.50x raw
 * unpack. The exit status is non-zero only when the sanity check finds that the
 * two sides do not handle the same objects.
 *
 * Usage: bench_events [--quick]
 *   --quick  fewer events and rounds (under 2 s), for the test suite
 */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arena.h"
#include "event.h"
#include "frame.h"

#define TARGET_ENCODE 0.70
#define TARGET_DECODE 0.50
#define FEED_CHUNK (64u * 1024u) /* what frame_dec_read_fd asks read(2) for */
#define MAX_ROUNDS 15
#define MB (1024ull * 1024ull)

struct config {
	size_t events;
	unsigned rounds;
	double sample_s; /* aim for this much time per timed sample */
};

static const struct config full_cfg = { 20000, 11, 0.06 };
static const struct config quick_cfg = { 2000, 3, 0.01 };

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("bench_events: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- deterministic input -------------------------------------------------- */

/* splitmix64: the same stream on every machine, so every run measures the same
 * bytes. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t below(uint32_t n) { return (uint32_t)(rnd() % n); }
static bool chance(unsigned pct) { return below(100) < pct; }
#define PICK(a) ((a)[below(sizeof(a) / sizeof((a)[0]))])

/* Everything the generated events point to lives here, so the events are plain
 * producer-side events that own nothing. */
static struct pv_arena mem = PV_ARENA_INIT;

static void *xalloc(size_t n)
{
	void *p = pv_arena_alloc(&mem, n ? n : 1);
	if (!p)
		die("out of memory building the input");
	return p;
}

static struct pv_str fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

static struct pv_str fmt(const char *f, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	if (n < 0)
		die("formatting failed");
	p = xalloc((size_t)n + 1);
	va_start(ap, f);
	vsnprintf(p, (size_t)n + 1, f, ap);
	va_end(ap);
	return (struct pv_str){ p, (size_t)n };
}

static const char *const areas[] = { "net", "storage", "boot", "kernel", "services",
				     "security", "cluster", "desktop", "update", "virt" };
static const char *const topics[] = {
	"dhcp", "dns_resolver", "ipv6_router_advertisements", "bonding", "ext4", "btrfs_snapshots",
	"lvm_thin", "nfs_export", "grub", "secure_boot", "initramfs", "cgroups_v2", "sysctl", "sshd",
	"nginx_reverse_proxy", "postgresql_replication", "selinux", "firewalld_zones",
	"pacemaker_failover", "etcd_quorum", "gdm_autologin", "unattended_upgrades", "libvirt_nested",
};
static const char *const verbs[] = { "client gets", "server renews", "mount survives", "resize keeps",
				     "reboot preserves", "failover moves", "upgrade retains",
				     "login shows", "log rotation drops", "restart reloads" };
/* a few non-ASCII names keep UTF-8 validation off its ASCII fast path now and then */
static const char *const objects[] = { "a lease", "the snapshot", "quota limits", "the boot entry",
				       "replication slots", "the virtual IP", "unit overrides",
				       "the journal", "port forwarding rules", "the r\xc3\xa9sum\xc3\xa9 upload",
				       "stra\xc3\x9f" "e names" };
static const char *const quals[] = { "", " before expiry", " under packet loss", " after power loss",
				     " with 4 vCPUs", " across a kernel upgrade", " when the disk is full",
				     " with IPv6 only", " on a read-only root" };
static const char *const tags[] = { "net", "slow", "smoke", "regression", "storage", "ipv6",
				    "uefi", "cluster", "nightly", "security" };
static const char *const vm_names[] = { "server", "client", "router", "db-primary", "db-replica",
					"node1", "node2", "node3" };
static const char *const profiles[] = { "linux", "linux-uefi", "linux-minimal", "windows" };
static const char *const fixtures[] = { "base/debian", "base/fedora", "net/router",
					"db/postgres-16", "cluster/etcd-3node" };
static const char *const console_lines[] = {
	"systemd[1]: Started Journal Service.",
	"provium-agent: ready",
	"EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.",
	"$ systemctl is-active sshd",
	"failed",
	"virtio_net virtio0 enp0s3: renamed from eth0",
	"dhcpcd[412]: enp0s3: soliciting a DHCP lease",
	"kernel: audit: type=1400 audit(1764115200.123:42): apparmor=\"DENIED\" operation=\"open\"",
	"nginx[733]: connect() failed (111: Connection refused) while connecting to upstream",
	"postgres[801]: LOG:  started streaming WAL from primary at 0/3000000 on timeline 1",
	"$ ip -6 route show default",
	"Traceback (most recent call last):",
};

static struct pv_meta_value mv_str(struct pv_str s)
{
	return (struct pv_meta_value){ .type = PV_META_STR, .v.s = s };
}

static struct pv_meta_value mv_int(int64_t i)
{
	return (struct pv_meta_value){ .type = PV_META_INT, .v.i = i };
}

/* A test's metadata as a Lua test file would declare it. Keys are added in byte
 * order, the order the decoder hands maps out in. */
static struct pv_meta_map make_meta(const char *area, const char *topic)
{
	struct pv_meta_entry e[8];
	uint32_t n = 0;

	if (chance(30))
		e[n++] = (struct pv_meta_entry){ PV_STR("flaky"), { .type = PV_META_BOOL, .v.b = chance(50) } };
	if (chance(25)) {
		struct pv_meta_entry *ref = xalloc(2 * sizeof(*ref));
		ref[0] = (struct pv_meta_entry){ PV_STR("issue"), mv_int(1000 + below(9000)) };
		ref[1] = (struct pv_meta_entry){ PV_STR("tracker"),
						 mv_str(PV_STR("https://tracker.example.org")) };
		e[n++] = (struct pv_meta_entry){ PV_STR("ref"), { .type = PV_META_MAP, .v.map = { ref, 2 } } };
	}
	if (chance(20)) {
		size_t len = 8 + below(9);
		uint8_t *seed = xalloc(len);
		for (size_t i = 0; i < len; i++)
			seed[i] = (uint8_t)rnd();
		e[n++] = (struct pv_meta_entry){ PV_STR("seed"),
						 { .type = PV_META_BIN, .v.s = { (const char *)seed, len } } };
	}
	e[n++] = (struct pv_meta_entry){ PV_STR("spec"), mv_str(fmt("%s/%s", area, topic)) };
	{
		uint32_t nt = 2 + below(2);
		struct pv_meta_value *t = xalloc(nt * sizeof(*t));
		for (uint32_t i = 0; i < nt; i++)
			t[i] = mv_str(pv_str_c(PICK(tags)));
		e[n++] = (struct pv_meta_entry){ PV_STR("tags"),
						 { .type = PV_META_ARRAY, .v.array = { t, nt } } };
	}
	e[n++] = (struct pv_meta_entry){ PV_STR("timeout_s"), mv_int(30 + below(571)) };
	if (chance(50))
		e[n++] = (struct pv_meta_entry){ PV_STR("weight"),
						 { .type = PV_META_FLOAT, .v.f = (double)below(1000) / 256.0 } };
	{
		struct pv_meta_entry *out = xalloc(n * sizeof(*out));
		memcpy(out, e, n * sizeof(*out));
		return (struct pv_meta_map){ out, n };
	}
}

/* A console excerpt of 300 B to 4 KiB, whole lines of a plausible boot log. */
static struct pv_str make_console(void)
{
	size_t target = 300 + below(3797), len = 0;
	char *p = xalloc(target + 1);
	unsigned t = below(30);

	for (;;) {
		char line[160];
		int n = snprintf(line, sizeof(line), "[%5u.%06u] %s\n", t, below(1000000), PICK(console_lines));
		if (n < 0 || len + (size_t)n > target)
			break;
		memcpy(p + len, line, (size_t)n);
		len += (size_t)n;
		t += below(3);
	}
	p[len] = 0;
	return (struct pv_str){ p, len };
}

struct gen {
	struct pv_event *ev;
	size_t n, cap;
	int64_t ts;
};

static struct pv_event *push(struct gen *g, enum pv_event_kind kind)
{
	struct pv_event *ev;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 1024;
		void *p = realloc(g->ev, cap * sizeof(*g->ev));
		if (!p)
			die("out of memory building the input");
		g->ev = p;
		g->cap = cap;
	}
	ev = &g->ev[g->n++];
	pv_event_init(ev);
	g->ts += 200000 + below(2800000); /* 0.2 to 3 ms apart */
	ev->ts = g->ts;
	ev->kind = kind;
	return ev;
}

static struct pv_resource res(uint64_t mem_mb, uint32_t cpus)
{
	return (struct pv_resource){ mem_mb * MB, cpus };
}

/* One test file's life: discovered, maybe blocked, dispatched with a claim,
 * fixtures, VMs, its tests, teardown. */
static void gen_file(struct gen *g, unsigned idx)
{
	const char *area = areas[idx % (sizeof(areas) / sizeof(areas[0]))];
	const char *topic = PICK(topics);
	struct pv_str path = fmt("%s/%s_%02u.test.lua", area, topic, idx % 100);
	struct pv_resource claim = res(256u << below(4), 1 + below(4));
	uint32_t nrefs = chance(60) ? 1 + below(2) : 0, nvms = 1 + below(3), ntests = 3 + below(14);
	struct pv_str *refs = nrefs ? xalloc(nrefs * sizeof(*refs)) : NULL;
	struct pv_str vms[3];
	struct pv_event *ev;
	bool any_failed = false;

	for (uint32_t i = 0; i < nrefs; i++)
		refs[i] = pv_str_c(PICK(fixtures));
	ev = push(g, PV_EV_FILE_DISCOVERED);
	ev->u.file_discovered = (struct pv_ev_file_discovered){ path, { refs, nrefs }, { chance(40), claim } };
	if (chance(15)) {
		ev = push(g, PV_EV_FILE_BLOCKED);
		ev->u.file_blocked = (struct pv_ev_file_blocked){
			path, claim, pv_str_c(chance(70) ? "pool_full" : "claim_conflict")
		};
	}
	ev = push(g, PV_EV_FILE_DISPATCHED);
	ev->u.file_dispatched = (struct pv_ev_file_dispatched){ path, claim };
	ev = push(g, PV_EV_CLAIM_ACQUIRED);
	ev->u.claim_acquired = (struct pv_ev_claim_acquired){ path, claim };
	ev = push(g, PV_EV_POOL_STATE);
	ev->u.pool_state = (struct pv_ev_pool_state){ res(below(16384), below(8)), res(below(19000), below(8)) };

	for (uint32_t i = 0; i < nrefs; i++) {
		if (chance(70)) {
			ev = push(g, PV_EV_FIXTURE_CACHE_HIT);
			ev->u.fixture_cache_hit.path = refs[i];
			continue;
		}
		ev = push(g, PV_EV_FIXTURE_BUILD_STARTED);
		ev->u.fixture_build_started.path = refs[i];
		if (chance(30)) {
			ev = push(g, PV_EV_FIXTURE_BUILD_WAITING);
			ev->u.fixture_build_waiting = (struct pv_ev_fixture_build_waiting){
				refs[i], fmt("%s/%s_%02u.test.lua", PICK(areas), PICK(topics), below(100))
			};
		}
		ev = push(g, PV_EV_FIXTURE_BUILD_DONE);
		ev->u.fixture_build_done = (struct pv_ev_fixture_build_done){
			refs[i], 1000000000ull + below(60000) * 1000000ull, (8 + below(2048)) * MB
		};
	}
	for (uint32_t i = 0; i < nvms; i++) {
		vms[i] = pv_str_c(PICK(vm_names));
		ev = push(g, PV_EV_VM_SPAWNED);
		ev->u.vm_spawned = (struct pv_ev_vm_spawned){
			path, vms[i], pv_str_c(PICK(profiles)), (256u << below(3)) * MB, 3 + below(1000)
		};
	}

	for (uint32_t i = 0; i < ntests; i++) {
		struct pv_str name = fmt("%s %s%s", PICK(verbs), PICK(objects), PICK(quals));
		struct pv_meta_map meta = make_meta(area, topic);
		unsigned outcome = below(100);
		uint64_t dur = 5000000ull + below(4000) * 1000000ull;

		ev = push(g, PV_EV_TEST_STARTED);
		ev->u.test_started = (struct pv_ev_test_started){ path, name, meta };
		if (outcome < 88) {
			ev = push(g, PV_EV_TEST_PASSED);
			ev->u.test_passed = (struct pv_ev_test_passed){ path, name, dur, meta };
		} else if (outcome < 94) {
			ev = push(g, PV_EV_TEST_FAILED);
			ev->u.test_failed = (struct pv_ev_test_failed){
				path, name, dur,
				fmt("%.*s:%u: assert_eq failed: expected \"%s\", got \"%s\"", (int)path.len,
				    path.ptr, 10 + below(400), "bound", chance(50) ? "expired" : "nil"),
				make_console(), meta
			};
			any_failed = true;
		} else {
			ev = push(g, PV_EV_TEST_SKIPPED);
			ev->u.test_skipped = (struct pv_ev_test_skipped){
				path, name,
				chance(50) ? pv_str_c("slow (use --include-slow)")
					   : fmt("flaky: tracked in #%u", 1000 + below(9000)),
				meta
			};
		}
	}

	for (uint32_t i = 0; i < nvms; i++) {
		ev = push(g, PV_EV_VM_SHUTDOWN);
		ev->u.vm_shutdown = (struct pv_ev_vm_shutdown){ path, vms[i],
								 1000000000ull + below(60000) * 1000000ull };
	}
	ev = push(g, PV_EV_CLAIM_RELEASED);
	ev->u.claim_released = (struct pv_ev_claim_released){ path, claim };
	ev = push(g, PV_EV_POOL_STATE);
	ev->u.pool_state = (struct pv_ev_pool_state){ res(below(16384), below(8)), res(below(19000), below(8)) };
	ev = push(g, PV_EV_FILE_COMPLETED);
	{
		unsigned r = below(100);
		enum pv_file_status st = r < 2 ? PV_FILE_TIMED_OUT : r < 3 ? PV_FILE_CRASHED
					 : any_failed ? PV_FILE_FAILED : PV_FILE_PASSED;
		ev->u.file_completed = (struct pv_ev_file_completed){
			path, st, 1000000000ull + below(600000) * 1000000ull
		};
	}
}

/* ---- the same events as msgpack_object trees ------------------------------ */

static msgpack_zone zone;

static void *zalloc(size_t n)
{
	void *p = msgpack_zone_malloc(&zone, n ? n : 1);
	if (!p)
		die("out of memory building msgpack objects");
	return p;
}

static msgpack_object o_str(struct pv_str s)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_STR };
	o.via.str.size = (uint32_t)s.len;
	o.via.str.ptr = s.ptr;
	return o;
}

static msgpack_object o_uint(uint64_t v)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_POSITIVE_INTEGER };
	o.via.u64 = v;
	return o;
}

static msgpack_object o_int(int64_t v)
{
	msgpack_object o = { .type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER };
	o.via.i64 = v;
	return o;
}

static msgpack_object o_nil(void) { return (msgpack_object){ .type = MSGPACK_OBJECT_NIL }; }

/* Map builder: kv[] is filled in call order, which must be wire order. */
struct omap {
	msgpack_object_kv *kv;
	uint32_t i, n;
};

static msgpack_object o_map(struct omap *m, uint32_t n)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_MAP };
	m->kv = n ? zalloc(n * sizeof(*m->kv)) : NULL;
	m->i = 0;
	m->n = n;
	o.via.map.size = n;
	o.via.map.ptr = m->kv;
	return o;
}

static void put(struct omap *m, struct pv_str key, msgpack_object val)
{
	if (m->i == m->n)
		die("internal error: map overfilled");
	m->kv[m->i].key = o_str(key);
	m->kv[m->i].val = val;
	m->i++;
}

static msgpack_object o_res(const struct pv_resource *r)
{
	struct omap m;
	msgpack_object o = o_map(&m, 2);
	put(&m, PV_STR("memory_bytes"), o_uint(r->memory_bytes));
	put(&m, PV_STR("cpus"), o_uint(r->cpus));
	return o;
}

static msgpack_object o_meta_map(const struct pv_meta_map *mm);

static msgpack_object o_meta(const struct pv_meta_value *v)
{
	msgpack_object o = o_nil();
	switch (v->type) {
	case PV_META_NIL: break;
	case PV_META_BOOL: o.type = MSGPACK_OBJECT_BOOLEAN; o.via.boolean = v->v.b; break;
	case PV_META_INT: o = o_int(v->v.i); break;
	case PV_META_FLOAT: o.type = MSGPACK_OBJECT_FLOAT64; o.via.f64 = v->v.f; break;
	case PV_META_STR: o = o_str(v->v.s); break;
	case PV_META_BIN:
		o.type = MSGPACK_OBJECT_BIN;
		o.via.bin.size = (uint32_t)v->v.s.len;
		o.via.bin.ptr = v->v.s.ptr;
		break;
	case PV_META_ARRAY:
		o.type = MSGPACK_OBJECT_ARRAY;
		o.via.array.size = v->v.array.n;
		o.via.array.ptr = v->v.array.n ? zalloc(v->v.array.n * sizeof(msgpack_object)) : NULL;
		for (uint32_t i = 0; i < v->v.array.n; i++)
			o.via.array.ptr[i] = o_meta(&v->v.array.items[i]);
		break;
	case PV_META_MAP: o = o_meta_map(&v->v.map); break;
	}
	return o;
}

static msgpack_object o_meta_map(const struct pv_meta_map *mm)
{
	struct omap m;
	msgpack_object o = o_map(&m, mm->n);
	for (uint32_t i = 0; i < mm->n; i++)
		put(&m, mm->entries[i].key, o_meta(&mm->entries[i].value));
	return o;
}

/* The payload fields in the order of spec/events-reference.txt. */
static msgpack_object o_payload(const struct pv_event *ev)
{
	struct omap m;
	msgpack_object o;

#define P(n) const struct pv_ev_##n *p = &ev->u.n
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED: {
		P(file_discovered);
		msgpack_object refs = { .type = MSGPACK_OBJECT_ARRAY };
		refs.via.array.size = p->fixture_refs.n;
		refs.via.array.ptr =
			p->fixture_refs.n ? zalloc(p->fixture_refs.n * sizeof(msgpack_object)) : NULL;
		for (uint32_t i = 0; i < p->fixture_refs.n; i++)
			refs.via.array.ptr[i] = o_str(p->fixture_refs.items[i]);
		o = o_map(&m, 3);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("fixture_refs"), refs);
		put(&m, PV_STR("declared_claim"),
		    p->declared_claim.present ? o_res(&p->declared_claim.value) : o_nil());
		break;
	}
	case PV_EV_FILE_DISPATCHED: {
		P(file_dispatched);
		o = o_map(&m, 2);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("reservation"), o_res(&p->reservation));
		break;
	}
	case PV_EV_FILE_BLOCKED: {
		P(file_blocked);
		o = o_map(&m, 3);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("waiting_for"), o_res(&p->waiting_for));
		put(&m, PV_STR("reason"), o_str(p->reason));
		break;
	}
	case PV_EV_FILE_COMPLETED: {
		P(file_completed);
		o = o_map(&m, 3);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("status"), o_str(pv_str_c(pv_file_status_name(p->status))));
		put(&m, PV_STR("duration_ns"), o_uint(p->duration_ns));
		break;
	}
	case PV_EV_TEST_STARTED: {
		P(test_started);
		o = o_map(&m, 3);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("name"), o_str(p->name));
		put(&m, PV_STR("meta"), o_meta_map(&p->meta));
		break;
	}
	case PV_EV_TEST_SKIPPED: {
		P(test_skipped);
		o = o_map(&m, 4);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("name"), o_str(p->name));
		put(&m, PV_STR("reason"), o_str(p->reason));
		put(&m, PV_STR("meta"), o_meta_map(&p->meta));
		break;
	}
	case PV_EV_TEST_PASSED: {
		P(test_passed);
		o = o_map(&m, 4);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("name"), o_str(p->name));
		put(&m, PV_STR("duration_ns"), o_uint(p->duration_ns));
		put(&m, PV_STR("meta"), o_meta_map(&p->meta));
		break;
	}
	case PV_EV_TEST_FAILED: {
		P(test_failed);
		o = o_map(&m, 6);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("name"), o_str(p->name));
		put(&m, PV_STR("duration_ns"), o_uint(p->duration_ns));
		put(&m, PV_STR("reason"), o_str(p->reason));
		put(&m, PV_STR("console_excerpt"), o_str(p->console_excerpt));
		put(&m, PV_STR("meta"), o_meta_map(&p->meta));
		break;
	}
	case PV_EV_VM_SPAWNED: {
		P(vm_spawned);
		o = o_map(&m, 5);
		put(&m, PV_STR("file"), o_str(p->file));
		put(&m, PV_STR("vm_name"), o_str(p->vm_name));
		put(&m, PV_STR("profile"), o_str(p->profile));
		put(&m, PV_STR("memory_bytes"), o_uint(p->memory_bytes));
		put(&m, PV_STR("cid"), o_uint(p->cid));
		break;
	}
	case PV_EV_VM_SHUTDOWN: {
		P(vm_shutdown);
		o = o_map(&m, 3);
		put(&m, PV_STR("file"), o_str(p->file));
		put(&m, PV_STR("vm_name"), o_str(p->vm_name));
		put(&m, PV_STR("duration_ns"), o_uint(p->duration_ns));
		break;
	}
	case PV_EV_POOL_STATE: {
		P(pool_state);
		o = o_map(&m, 2);
		put(&m, PV_STR("used"), o_res(&p->used));
		put(&m, PV_STR("available"), o_res(&p->available));
		break;
	}
	case PV_EV_CLAIM_ACQUIRED: {
		P(claim_acquired);
		o = o_map(&m, 2);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("amount"), o_res(&p->amount));
		break;
	}
	case PV_EV_CLAIM_RELEASED: {
		P(claim_released);
		o = o_map(&m, 2);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("amount"), o_res(&p->amount));
		break;
	}
	case PV_EV_FIXTURE_BUILD_STARTED: {
		P(fixture_build_started);
		o = o_map(&m, 1);
		put(&m, PV_STR("path"), o_str(p->path));
		break;
	}
	case PV_EV_FIXTURE_BUILD_DONE: {
		P(fixture_build_done);
		o = o_map(&m, 3);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("duration_ns"), o_uint(p->duration_ns));
		put(&m, PV_STR("snapshot_bytes"), o_uint(p->snapshot_bytes));
		break;
	}
	case PV_EV_FIXTURE_BUILD_WAITING: {
		P(fixture_build_waiting);
		o = o_map(&m, 2);
		put(&m, PV_STR("path"), o_str(p->path));
		put(&m, PV_STR("held_by_file"), o_str(p->held_by_file));
		break;
	}
	case PV_EV_FIXTURE_CACHE_HIT: {
		P(fixture_cache_hit);
		o = o_map(&m, 1);
		put(&m, PV_STR("path"), o_str(p->path));
		break;
	}
	default:
		die("internal error: no object form for kind %d", (int)ev->kind);
	}
#undef P
	if (m.i != m.n)
		die("internal error: %s payload underfilled", pv_event_kind_name(ev->kind));
	return o;
}

static msgpack_object o_event(const struct pv_event *ev)
{
	struct omap m;
	msgpack_object o = o_map(&m, 3);
	put(&m, PV_STR("ts"), o_int(ev->ts));
	put(&m, PV_STR("kind"), o_str(pv_str_c(pv_event_kind_name(ev->kind))));
	put(&m, PV_STR("payload"), o_payload(ev));
	return o;
}

/* ---- the four timed passes ------------------------------------------------ */

struct bench {
	const struct pv_event *ev;
	const msgpack_object *obj;
	size_t n;
	struct pv_buf pv_out;      /* provium encode output, reused */
	msgpack_sbuffer raw_out;   /* raw pack output, reused */
	struct pv_buf stream;      /* the reference encoding both decoders read */
	struct frame_dec dec;
	struct pv_event dev;       /* one decoded event, reused as a consumer does */
	msgpack_unpacked unp;
};

static void pv_encode_pass(struct bench *b)
{
	struct pv_err err;

	pv_buf_reset(&b->pv_out);
	for (size_t i = 0; i < b->n; i++)
		if (pv_event_encode(&b->ev[i], &b->pv_out, &err) < 0)
			die("pv_event_encode of event %zu failed: %s", i, err.msg);
}

static void raw_encode_pass(struct bench *b)
{
	static const char zero[FRAME_HDR_LEN];
	msgpack_packer pk;

	msgpack_sbuffer_clear(&b->raw_out);
	msgpack_packer_init(&pk, &b->raw_out, msgpack_sbuffer_write);
	for (size_t i = 0; i < b->n; i++) {
		size_t start = b->raw_out.size;
		/* the same framing provium does, so both sides write the same bytes */
		if (msgpack_sbuffer_write(&b->raw_out, zero, FRAME_HDR_LEN) < 0 ||
		    msgpack_pack_object(&pk, b->obj[i]) < 0)
			die("msgpack_pack_object of event %zu failed", i);
		frame_put_len((uint8_t *)b->raw_out.data + start,
			      (uint32_t)(b->raw_out.size - start - FRAME_HDR_LEN));
	}
}

/* The stream arrives in read(2)-sized chunks, as frame_dec_read_fd would
 * deliver it, so frames straddle chunk boundaries as they do in practice. */
static size_t pv_decode_pass(struct bench *b, bool check)
{
	struct pv_err err;
	size_t frames = 0;

	for (size_t off = 0; off < b->stream.len;) {
		size_t n = b->stream.len - off < FEED_CHUNK ? b->stream.len - off : FEED_CHUNK;
		const uint8_t *body;
		uint32_t len;
		int rc;

		if (frame_dec_feed(&b->dec, b->stream.data + off, n) < 0)
			die("out of memory feeding the frame decoder");
		off += n;
		while ((rc = frame_dec_next(&b->dec, &body, &len, NULL, &err)) == 1) {
			if (pv_event_decode(&b->dev, body, len, &err) < 0)
				die("pv_event_decode of frame %zu failed: %s", frames, err.msg);
			if (check && (frames >= b->n || !pv_event_equal(&b->dev, &b->ev[frames])))
				die("frame %zu decodes to a different %s event than was encoded", frames,
				    pv_event_kind_name(b->ev[frames < b->n ? frames : 0].kind));
			frames++;
		}
		if (rc < 0)
			die("splitting frames: %s", err.msg);
	}
	if (frame_dec_finish(&b->dec, &err) < 0)
		die("splitting frames: %s", err.msg);
	return frames;
}

static size_t raw_decode_pass(struct bench *b)
{
	const uint8_t *p = b->stream.data, *end = p + b->stream.len;
	size_t frames = 0;

	while (p < end) {
		uint32_t len;
		size_t off = 0;

		if ((size_t)(end - p) < FRAME_HDR_LEN)
			die("raw split: truncated header");
		len = frame_get_len(p);
		p += FRAME_HDR_LEN;
		if (len > (size_t)(end - p))
			die("raw split: truncated body");
		if (msgpack_unpack_next(&b->unp, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
		    off != len)
			die("msgpack_unpack_next of frame %zu failed", frames);
		p += len;
		frames++;
	}
	return frames;
}

/* ---- sanity: both sides handle the same objects --------------------------- */

static void sanity_check(struct bench *b)
{
	struct pv_event ev;
	struct pv_err err;
	const uint8_t *p, *end;
	size_t i = 0;

	/* provium -> provium: every event survives the round trip */
	pv_encode_pass(b);
	if (pv_buf_append(&b->stream, b->pv_out.data, b->pv_out.len) < 0)
		die("out of memory copying the stream");
	if (pv_decode_pass(b, true) != b->n)
		die("the stream does not split into %zu frames", b->n);

	/* raw -> provium: msgpack-c's bytes for our object trees decode, strictly,
	 * to the original events, so the baselines pack and unpack the same objects */
	raw_encode_pass(b);
	pv_event_init(&ev);
	p = (const uint8_t *)b->raw_out.data;
	end = p + b->raw_out.size;
	for (; p < end; i++) {
		uint32_t len = frame_get_len(p);
		if (i >= b->n || (size_t)(end - p) < FRAME_HDR_LEN + (size_t)len)
			die("raw stream does not split into %zu frames", b->n);
		if (pv_event_decode(&ev, p + FRAME_HDR_LEN, len, &err) < 0)
			die("raw msgpack-c frame %zu (%s) is rejected by pv_event_decode: %s", i,
			    pv_event_kind_name(b->ev[i].kind), err.msg);
		if (!pv_event_equal(&ev, &b->ev[i]))
			die("raw msgpack-c frame %zu decodes to a different %s event", i,
			    pv_event_kind_name(b->ev[i].kind));
		p += FRAME_HDR_LEN + len;
	}
	pv_event_release(&ev);
	if (i != b->n)
		die("raw stream has %zu frames, expected %zu", i, b->n);
	/* Same objects, same minimal msgpack forms: the bytes should match too. A
	 * difference would mean one side does more or less work per event. */
	if (b->raw_out.size != b->stream.len || memcmp(b->raw_out.data, b->stream.data, b->stream.len) != 0)
		die("msgpack_pack_object and pv_event_encode wrote different bytes for the same events");

	if (raw_decode_pass(b) != b->n)
		die("msgpack_unpack_next did not see %zu frames", b->n);
}

/* ---- timing --------------------------------------------------------------- */

enum op { ENC_PV, ENC_RAW, DEC_PV, DEC_RAW, OP__COUNT };

static void run_op(struct bench *b, enum op op)
{
	switch (op) {
	case ENC_PV: pv_encode_pass(b); break;
	case ENC_RAW: raw_encode_pass(b); break;
	case DEC_PV: pv_decode_pass(b, false); break;
	case DEC_RAW: raw_decode_pass(b); break;
	default: break;
	}
}

/* Seconds per pass, averaged over reps passes. */
static double time_op(struct bench *b, enum op op, unsigned reps)
{
	double t0 = now_s();
	for (unsigned r = 0; r < reps; r++)
		run_op(b, op);
	return (now_s() - t0) / reps;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void minmax(const double *v, unsigned n, double *lo, double *hi)
{
	*lo = *hi = v[0];
	for (unsigned i = 1; i < n; i++) {
		if (v[i] < *lo)
			*lo = v[i];
		if (v[i] > *hi)
			*hi = v[i];
	}
}

int main(int argc, char **argv)
{
	const struct config *cfg = &full_cfg;
	static const char *const op_names[OP__COUNT] = { "encode          provium", "encode          raw",
							 "decode+validate provium", "decode+validate raw" };
	struct gen g = { .ts = 1764115200000000000LL };
	struct bench b = { .pv_out = PV_BUF_INIT, .stream = PV_BUF_INIT };
	size_t kind_count[PV_EV__COUNT] = { 0 }, with_meta = 0;
	double per_pass[OP__COUNT][MAX_ROUNDS], med[OP__COUNT], ratio[2][MAX_ROUNDS];
	double t_start = now_s(), mbytes;
	unsigned reps[OP__COUNT];
	msgpack_object *obj;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			cfg = &quick_cfg;
		} else {
			fprintf(stderr, "usage: bench_events [--quick]\n");
			return 2;
		}
	}

	/* input */
	for (unsigned f = 0; g.n < cfg->events; f++)
		gen_file(&g, f);
	g.n = cfg->events; /* the last file may be cut short; the mix is what matters */
	for (size_t i = 0; i < g.n; i++) {
		kind_count[g.ev[i].kind]++;
		with_meta += pv_event_meta(&g.ev[i]) && pv_event_meta(&g.ev[i])->n;
	}
	if (!msgpack_zone_init(&zone, 64 * 1024))
		die("out of memory creating a msgpack zone");
	obj = malloc(g.n * sizeof(*obj));
	if (!obj)
		die("out of memory building msgpack objects");
	for (size_t i = 0; i < g.n; i++)
		obj[i] = o_event(&g.ev[i]);

	b.ev = g.ev;
	b.obj = obj;
	b.n = g.n;
	msgpack_sbuffer_init(&b.raw_out);
	frame_dec_init(&b.dec);
	pv_event_init(&b.dev);
	msgpack_unpacked_init(&b.unp);

	/* also the warm-up: every buffer below reaches its final size here */
	sanity_check(&b);
	mbytes = (double)b.stream.len / 1e6;

	/* Repeat each pass enough to make one sample about sample_s long; calibrated
	 * once per operation so every round times the same work. */
	for (int op = 0; op < OP__COUNT; op++) {
		double t = time_op(&b, (enum op)op, 1);
		double r = t > 0 ? cfg->sample_s / t : 1000;
		reps[op] = r < 1 ? 1 : r > 1000 ? 1000 : (unsigned)r;
	}

	/* Interleave provium and raw within each round and swap which goes first
	 * every other round, so drift on a shared machine hits both sides alike. */
	for (unsigned r = 0; r < cfg->rounds; r++) {
		static const enum op order[2][OP__COUNT] = { { ENC_PV, ENC_RAW, DEC_PV, DEC_RAW },
							     { ENC_RAW, ENC_PV, DEC_RAW, DEC_PV } };
		for (int i = 0; i < OP__COUNT; i++) {
			enum op op = order[r % 2][i];
			per_pass[op][r] = time_op(&b, op, reps[op]);
		}
		ratio[0][r] = per_pass[ENC_RAW][r] / per_pass[ENC_PV][r];
		ratio[1][r] = per_pass[DEC_RAW][r] / per_pass[DEC_PV][r];
	}

	printf("event codec benchmark: %zu events, %.2f MB framed (avg %.0f B/frame), %zu with meta\n",
	       b.n, mbytes, (double)b.stream.len / (double)b.n, with_meta);
	printf("mix:");
	for (int k = 0; k < PV_EV__COUNT; k++)
		printf("%s %s %.1f%%", k ? "," : "", pv_event_kind_name((enum pv_event_kind)k),
		       100.0 * (double)kind_count[k] / (double)b.n);
	printf("\n%u rounds (median), passes per sample: enc %u/%u, dec %u/%u\n\n", cfg->rounds,
	       reps[ENC_PV], reps[ENC_RAW], reps[DEC_PV], reps[DEC_RAW]);
	printf("%-24s %14s %10s %22s\n", "", "frames/s", "MB/s", "MB/s min..max");
	for (int op = 0; op < OP__COUNT; op++) {
		double lo, hi;
		med[op] = median(per_pass[op], cfg->rounds);
		minmax(per_pass[op], cfg->rounds, &lo, &hi);
		printf("%-24s %14.0f %10.1f %10.1f..%-10.1f\n", op_names[op], (double)b.n / med[op],
		       mbytes / med[op], mbytes / hi, mbytes / lo);
	}
	{
		double enc = med[ENC_RAW] / med[ENC_PV], dec = med[DEC_RAW] / med[DEC_PV];
		double elo, ehi, dlo, dhi;
		minmax(ratio[0], cfg->rounds, &elo, &ehi);
		minmax(ratio[1], cfg->rounds, &dlo, &dhi);
		/* the paired per-round ratios show how much the machine moved under us */
		printf("\nper-round provium/raw (median, min..max): encode %.2f (%.2f..%.2f), "
		       "decode+validate %.2f (%.2f..%.2f)\n",
		       median(ratio[0], cfg->rounds), elo, ehi, median(ratio[1], cfg->rounds), dlo, dhi);
		printf("encode: provium/raw = %.2fx (target >= %.2fx) %s\n", enc, TARGET_ENCODE,
		       enc >= TARGET_ENCODE ? "OK" : "BELOW TARGET");
		printf("decode+validate: provium/raw = %.2fx (target >= %.2fx) %s\n", dec, TARGET_DECODE,
		       dec >= TARGET_DECODE ? "OK" : "BELOW TARGET");
	}
	printf("total %.1f s\n", now_s() - t_start);

	msgpack_unpacked_destroy(&b.unp);
	pv_event_release(&b.dev);
	frame_dec_release(&b.dec);
	msgpack_sbuffer_destroy(&b.raw_out);
	pv_buf_release(&b.pv_out);
	pv_buf_release(&b.stream);
	msgpack_zone_destroy(&zone);
	free(obj);
	free(g.ev);
	pv_arena_release(&mem);
	return 0;
}

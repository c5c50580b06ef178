/* Unit tests of the in-process consumers: --json lines parse back into the
 * exact frame shape for every kind (bytes, big u64, non-finite floats), and
 * the human report shows the right lines in each verbosity, with no colour or
 * progress escapes unless asked and the progress line never left mixed in
 * with the report. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "frame.h"
#include "golden_events.h"
#include "render.h"

/* ---- capture ------------------------------------------------------------ */

struct mem {
	char *buf;
	size_t len;
	FILE *f;
};

static void mem_open(struct mem *m)
{
	m->buf = NULL;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	assert_non_null(m->f);
}

/* Closes the stream; m->buf stays NUL-terminated text to free(). */
static char *mem_close(struct mem *m)
{
	assert_int_equal(fclose(m->f), 0);
	m->f = NULL;
	return m->buf;
}

/* ---- events ------------------------------------------------------------- */

static struct pv_event mk(enum pv_event_kind k)
{
	struct pv_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = k;
	ev.ts = 1;
	return ev;
}

#define S(x) pv_str_c(x)

static void discovered(struct pv_human *h, const char *p)
{
	struct pv_event ev = mk(PV_EV_FILE_DISCOVERED);
	ev.u.file_discovered.path = S(p);
	pv_human_event(h, &ev);
}

static void dispatched(struct pv_human *h, const char *p)
{
	struct pv_event ev = mk(PV_EV_FILE_DISPATCHED);
	ev.u.file_dispatched.path = S(p);
	ev.u.file_dispatched.reservation = (struct pv_resource){ 1 << 20, 1 };
	pv_human_event(h, &ev);
}

static void started(struct pv_human *h, const char *p, const char *name)
{
	struct pv_event ev = mk(PV_EV_TEST_STARTED);
	ev.u.test_started.path = S(p);
	ev.u.test_started.name = S(name);
	pv_human_event(h, &ev);
}

static void passed(struct pv_human *h, const char *p, const char *name, uint64_t ms)
{
	struct pv_event ev = mk(PV_EV_TEST_PASSED);
	ev.u.test_passed.path = S(p);
	ev.u.test_passed.name = S(name);
	ev.u.test_passed.duration_ns = ms * 1000000u;
	pv_human_event(h, &ev);
}

static void skipped(struct pv_human *h, const char *p, const char *name, const char *reason)
{
	struct pv_event ev = mk(PV_EV_TEST_SKIPPED);
	ev.u.test_skipped.path = S(p);
	ev.u.test_skipped.name = S(name);
	ev.u.test_skipped.reason = S(reason);
	pv_human_event(h, &ev);
}

static void failed(struct pv_human *h, const char *p, const char *name, uint64_t ms, const char *reason,
		   const char *console)
{
	struct pv_event ev = mk(PV_EV_TEST_FAILED);
	ev.u.test_failed.path = S(p);
	ev.u.test_failed.name = S(name);
	ev.u.test_failed.duration_ns = ms * 1000000u;
	ev.u.test_failed.reason = S(reason);
	ev.u.test_failed.console_excerpt = S(console);
	pv_human_event(h, &ev);
}

static void completed(struct pv_human *h, const char *p, enum pv_file_status st, uint64_t ms)
{
	struct pv_event ev = mk(PV_EV_FILE_COMPLETED);
	ev.u.file_completed.path = S(p);
	ev.u.file_completed.status = st;
	ev.u.file_completed.duration_ns = ms * 1000000u;
	pv_human_event(h, &ev);
}

static void golden(struct pv_human *h, enum pv_event_kind k)
{
	struct pv_event ev;
	golden_event(k, &ev);
	pv_human_event(h, &ev);
}

/* Two files interleaved (one passes, one fails with logs and a console
 * excerpt, and a skip), then a file whose runner crashes mid-test; plus
 * events the report does not show. */
static void script(struct pv_human *h)
{
	discovered(h, "a.test.lua");
	discovered(h, "b.test.lua");
	discovered(h, "c.test.lua");
	golden(h, PV_EV_POOL_STATE);
	golden(h, PV_EV_FIXTURE_BUILD_STARTED);
	golden(h, PV_EV_FIXTURE_BUILD_DONE);
	dispatched(h, "a.test.lua");
	golden(h, PV_EV_CLAIM_ACQUIRED);
	golden(h, PV_EV_FIXTURE_CACHE_HIT);
	golden(h, PV_EV_VM_SPAWNED);
	dispatched(h, "b.test.lua");
	started(h, "a.test.lua", "boots");
	started(h, "b.test.lua", "boots");
	pv_human_log(h, "a.test.lua", "boots", "starting vm");
	/* same test name in another file: must not mix with a's logs */
	pv_human_log(h, "b.test.lua", "boots", "b's log, never shown");
	pv_human_log(h, "a.test.lua", "boots", "waiting for\nlogin");
	passed(h, "b.test.lua", "boots", 100);
	skipped(h, "a.test.lua", "slow one", "needs --slow");
	started(h, "b.test.lua", "two");
	failed(h, "a.test.lua", "boots", 200, "a.test.lua:3: boom\nstack traceback:\n\t[C]: in ?\n",
	       "[    0.1] Linux version 6.1\r\nlogin: \n");
	started(h, "a.test.lua", "later");
	golden(h, PV_EV_FILE_BLOCKED);
	passed(h, "a.test.lua", "later", 50);
	passed(h, "b.test.lua", "two", 1496); /* rounds to 1.50s */
	golden(h, PV_EV_VM_SHUTDOWN);
	completed(h, "b.test.lua", PV_FILE_PASSED, 2000);
	golden(h, PV_EV_CLAIM_RELEASED);
	completed(h, "a.test.lua", PV_FILE_FAILED, 1000);
	dispatched(h, "c.test.lua");
	started(h, "c.test.lua", "first");
	passed(h, "c.test.lua", "first", 5);
	started(h, "c.test.lua", "hangs");
	pv_human_log(h, "c.test.lua", "hangs", "about to hang");
	pv_human_log(h, "c.test.lua", NULL, "runner: lost vsock");
	failed(h, "c.test.lua", "after", 10, "poisoned: runner crashed", "");
	completed(h, "c.test.lua", PV_FILE_CRASHED, 3000);
	pv_human_finish(h, 4210000000u, 0);
}

static char *render_script(enum pv_verbosity v, bool color, bool progress)
{
	struct mem m;
	struct pv_human *h;

	mem_open(&m);
	h = pv_human_new(m.f, v, color, progress);
	assert_non_null(h);
	script(h);
	pv_human_free(h);
	return mem_close(&m);
}

/* without -v a traceback of C frames only is left out */
#define A_FAILURE                                                                                  \
	"  FAIL  boots (200ms)\n"                                                                  \
	"        a.test.lua:3: boom\n"                                                             \
	A_FAILURE_REST
#define A_FAILURE_V                                                                                \
	"  FAIL  boots (200ms)\n"                                                                  \
	"        a.test.lua:3: boom\n"                                                             \
	"        stack traceback:\n"                                                               \
	"        \t[C]: in ?\n"                                                                    \
	A_FAILURE_REST
#define A_FAILURE_REST                                                                             \
	"        log:\n"                                                                           \
	"          starting vm\n"                                                                  \
	"          waiting for\n"                                                                  \
	"          login\n"                                                                        \
	"        console excerpt:\n"                                                               \
	"          [    0.1] Linux version 6.1\n"                                                  \
	"          login: \n"
#define C_FAILURES                                                                                 \
	"  FAIL  after (10ms)\n"                                                                   \
	"        poisoned: runner crashed\n"                                                       \
	"  FAIL  hangs\n"                                                                          \
	"        did not finish: the test runner crashed\n"                                        \
	"        log:\n"                                                                           \
	"          about to hang\n"                                                                \
	"  (outside any test)\n"                                                                  \
	"        log:\n"                                                                           \
	"          runner: lost vsock\n"
#define SUMMARY "4 passed, 3 failed, 1 skipped in 3 files, 1 crashed (4.21s)\n"

static const char normal_expected[] =
	"fixture base/debian built in 2.50s (14.0MiB)\n"
	"PASS    b.test.lua  2 passed (2.00s)\n"
	"FAIL    a.test.lua  1 passed, 1 failed, 1 skipped (1.00s)\n"
	A_FAILURE
	"CRASH   c.test.lua  1 passed, 2 failed (3.00s)\n"
	C_FAILURES
	"\n" SUMMARY;

static const char verbose_expected[] =
	"fixture base/debian built in 2.50s (14.0MiB)\n"
	"fixture base/debian restored from cache\n"
	"PASS    b.test.lua  2 passed (2.00s)\n"
	"  ok    boots (100ms)\n"
	"  ok    two (1.50s)\n"
	"FAIL    a.test.lua  1 passed, 1 failed, 1 skipped (1.00s)\n"
	"  skip  slow one (needs --slow)\n"
	A_FAILURE_V
	"  ok    later (50ms)\n"
	"CRASH   c.test.lua  1 passed, 2 failed (3.00s)\n"
	"  ok    first (5ms)\n"
	C_FAILURES
	"\n" SUMMARY;

static const char quiet_expected[] =
	"FAIL    a.test.lua  1 passed, 1 failed, 1 skipped (1.00s)\n"
	A_FAILURE
	"CRASH   c.test.lua  1 passed, 2 failed (3.00s)\n"
	C_FAILURES
	"\n" SUMMARY;

static void assert_text(const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("output differs.\n--- got ---\n%s--- want ---\n%s", got, want);
}

static void assert_plain(const char *s)
{
	if (strchr(s, '\033'))
		fail_msg("escape sequence in plain output:\n%s", s);
	if (strchr(s, '\r'))
		fail_msg("carriage return in output without progress:\n%s", s);
}

static void test_human_normal(void **state)
{
	char *out;
	(void)state;
	out = render_script(PV_NORMAL, false, false);
	assert_text(out, normal_expected);
	assert_plain(out);
	assert_null(strstr(out, "never shown"));
	free(out);
}

static void test_human_verbose(void **state)
{
	char *out, *again;
	(void)state;
	out = render_script(PV_VERBOSE, false, false);
	assert_text(out, verbose_expected);
	assert_plain(out);
	/* same events, same bytes */
	again = render_script(PV_VERBOSE, false, false);
	assert_string_equal(out, again);
	free(out);
	free(again);
}

static void test_human_quiet(void **state)
{
	char *out;
	(void)state;
	out = render_script(PV_QUIET, false, false);
	assert_text(out, quiet_expected);
	assert_plain(out);
	free(out);
}

static void test_human_quiet_all_pass(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_QUIET, false, false);
	discovered(h, "ok.test.lua");
	dispatched(h, "ok.test.lua");
	started(h, "ok.test.lua", "t");
	passed(h, "ok.test.lua", "t", 1);
	completed(h, "ok.test.lua", PV_FILE_PASSED, 2);
	pv_human_finish(h, 3000000u, 0);
	pv_human_free(h);
	out = mem_close(&m);
	assert_text(out, "1 passed, 0 failed, 0 skipped in 1 file (3ms)\n");
	free(out);
}

/* Removes CSI sequences ("\033[" ... final byte). */
static char *strip_ansi(const char *s)
{
	char *r = malloc(strlen(s) + 1), *w = r;
	assert_non_null(r);
	while (*s) {
		if (s[0] == '\033' && s[1] == '[') {
			s += 2;
			while (*s && !(*s >= 0x40 && *s <= 0x7e))
				s++;
			if (*s)
				s++;
			continue;
		}
		*w++ = *s++;
	}
	*w = '\0';
	return r;
}

static void test_human_color(void **state)
{
	char *out, *plain;
	(void)state;
	out = render_script(PV_VERBOSE, true, false);
	assert_non_null(strstr(out, "\033[32mPASS"));
	assert_non_null(strstr(out, "\033[31mFAIL"));
	assert_non_null(strstr(out, "\033[31mCRASH"));
	assert_non_null(strstr(out, "\033[33mskip"));
	assert_non_null(strstr(out, "\033[1mboots"));
	/* colour adds escapes and nothing else */
	plain = strip_ansi(out);
	assert_text(plain, verbose_expected);
	free(plain);
	free(out);
}

/* Plays output onto a simulated terminal line by line: \r moves to column 0,
 * \033[K erases to the end, \n commits the line. Returns the committed text;
 * *rest gets what is left on the last line. */
static char *terminal(const char *s, char **rest)
{
	size_t cap = strlen(s) + 1, olen = 0, llen = 0, col = 0;
	char *out = calloc(1, cap), *line = calloc(1, cap);

	assert_non_null(out);
	assert_non_null(line);
	for (; *s; s++) {
		if (*s == '\r') {
			col = 0;
		} else if (*s == '\n') {
			memcpy(out + olen, line, llen);
			olen += llen;
			out[olen++] = '\n';
			llen = col = 0;
		} else if (s[0] == '\033' && s[1] == '[' && s[2] == 'K') {
			llen = col;
			s += 2;
		} else if (*s == '\033') {
			fail_msg("unexpected escape sequence");
		} else {
			line[col++] = *s;
			if (col > llen)
				llen = col;
		}
	}
	line[llen] = '\0';
	*rest = line;
	return out;
}

static void test_human_progress(void **state)
{
	char *out, *screen, *rest;
	(void)state;
	out = render_script(PV_NORMAL, false, true);
	/* the live line was there, with counts and what runs */
	assert_non_null(strstr(out, "[0/3 files] | 1 running: a.test.lua | pool 300.0MiB/18.8GiB"));
	assert_non_null(strstr(out, "[0/3 files] | 2 running: a.test.lua, b.test.lua | 1 VM up"));
	assert_non_null(strstr(out, "[0/3 files] 1 passed, 1 skipped | 2 running: a.test.lua, b.test.lua | 1 VM up"));
	assert_non_null(strstr(out, "[1/3 files] 3 passed, 1 failed, 1 skipped | 1 running: a.test.lua"));
	assert_non_null(strstr(out, "[2/3 files] 3 passed, 1 failed, 1 skipped | 1 running: c.test.lua"));
	assert_non_null(strstr(out, "\r\033[K"));
	/* ...and once played on a terminal, the report is exactly the one
	 * without progress: the status line never ended up in it */
	screen = terminal(out, &rest);
	assert_text(screen, normal_expected);
	assert_string_equal(rest, "");
	free(screen);
	free(rest);
	free(out);

	out = render_script(PV_VERBOSE, false, true);
	screen = terminal(out, &rest);
	assert_text(screen, verbose_expected);
	assert_string_equal(rest, "");
	free(screen);
	free(rest);
	free(out);
}

/* The live line's clock is the events' own: the test running longest, by
 * the newest event's ts (pool_state, 1 Hz, moves it); VMs up until their
 * vm_shutdown or their file's end. */
static void test_human_progress_parts(void **state)
{
	struct mem m;
	struct pv_human *h;
	struct pv_event ev;
	char *out, *screen, *rest;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, true);
	discovered(h, "a.test.lua");
	discovered(h, "b.test.lua");
	dispatched(h, "a.test.lua");
	dispatched(h, "b.test.lua");
	ev = mk(PV_EV_TEST_STARTED);
	ev.ts = 1000000000;
	ev.u.test_started.path = S("b.test.lua");
	ev.u.test_started.name = S("slow one");
	pv_human_event(h, &ev);
	ev.ts = 5000000000;
	ev.u.test_started.path = S("a.test.lua");
	ev.u.test_started.name = S("quick");
	pv_human_event(h, &ev);
	ev = mk(PV_EV_VM_SPAWNED);
	ev.u.vm_spawned.file = S("b.test.lua");
	pv_human_event(h, &ev);
	pv_human_event(h, &ev);
	ev = mk(PV_EV_POOL_STATE);
	ev.ts = 43500000000;
	ev.u.pool_state.used.memory_bytes = 1536u << 20;
	ev.u.pool_state.available.memory_bytes = 2560u << 20;
	pv_human_event(h, &ev);
	pv_human_free(h);
	out = mem_close(&m);
	assert_non_null(strstr(out, "[0/2 files] | 2 running | longest: b.test.lua > "
				    "slow one 42.50s | 2 VMs up\r"));
	free(out);

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, true);
	discovered(h, "b.test.lua");
	dispatched(h, "b.test.lua");
	ev = mk(PV_EV_VM_SPAWNED);
	ev.u.vm_spawned.file = S("b.test.lua");
	pv_human_event(h, &ev);
	ev = mk(PV_EV_POOL_STATE);
	ev.u.pool_state.used.memory_bytes = 1536u << 20;
	ev.u.pool_state.available.memory_bytes = 2560u << 20;
	pv_human_event(h, &ev);
	completed(h, "b.test.lua", PV_FILE_CRASHED, 10); /* no vm_shutdown: its VM went with it */
	pv_human_event(h, &ev);
	pv_human_finish(h, 1, 0);
	pv_human_free(h);
	out = mem_close(&m);
	assert_non_null(strstr(out, "[0/1 files] | 1 running: b.test.lua | 1 VM up | pool 1.5GiB/4.0GiB"));
	assert_non_null(strstr(out, "[1/1 files] | pool 1.5GiB/4.0GiB"));
	screen = terminal(out, &rest);
	assert_null(strstr(screen, "running"));
	assert_string_equal(rest, "");
	free(screen);
	free(rest);
	free(out);
}

/* Freed without finish (an error path): the live line is still cleared. */
static void test_human_progress_free(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out, *screen, *rest;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, true);
	discovered(h, "a.test.lua");
	dispatched(h, "a.test.lua");
	pv_human_free(h);
	out = mem_close(&m);
	assert_non_null(strstr(out, "[0/1 files] | 1 running: a.test.lua"));
	screen = terminal(out, &rest);
	assert_string_equal(screen, "");
	assert_string_equal(rest, "");
	free(screen);
	free(rest);
	free(out);
}

static void test_human_interrupted(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, false);
	discovered(h, "a.test.lua");
	discovered(h, "b.test.lua");
	discovered(h, "c.test.lua");
	dispatched(h, "a.test.lua");
	started(h, "a.test.lua", "t1");
	failed(h, "a.test.lua", "t1", 20, "expected 1, got 2", "");
	started(h, "a.test.lua", "t2");
	pv_human_log(h, "a.test.lua", "t2", "half way");
	pv_human_finish(h, 1000000000u, SIGTERM);
	pv_human_free(h);
	out = mem_close(&m);
	assert_text(out, "STOPPED a.test.lua  1 failed, 1 unfinished\n"
			 "  FAIL  t1 (20ms)\n"
			 "        expected 1, got 2\n"
			 "  t2 (no outcome)\n"
			 "        log:\n"
			 "          half way\n"
			 "\n"
			 "0 passed, 1 failed, 0 skipped in 0 of 3 files (1.00s); interrupted by SIGTERM\n");
	free(out);
}

static void test_human_timeout_counts_running_test(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_QUIET, false, false);
	discovered(h, "slow.test.lua");
	dispatched(h, "slow.test.lua");
	started(h, "slow.test.lua", "waits");
	completed(h, "slow.test.lua", PV_FILE_TIMED_OUT, 300000);
	pv_human_finish(h, 300500000000u, 0);
	pv_human_free(h);
	out = mem_close(&m);
	assert_text(out, "TIMEOUT slow.test.lua  1 failed (5m00s)\n"
			 "  FAIL  waits\n"
			 "        did not finish: the file timed out after 5m00s\n"
			 "\n"
			 "0 passed, 1 failed, 0 skipped in 1 file, 1 timed out (5m00s)\n");
	free(out);
}

static void test_human_log_cap(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out, msg[1001], *p;
	(void)state;

	for (int v = PV_NORMAL; v <= PV_VERBOSE; v++) {
		mem_open(&m);
		h = pv_human_new(m.f, (enum pv_verbosity)v, false, false);
		dispatched(h, "a.test.lua");
		started(h, "a.test.lua", "noisy");
		for (int i = 0; i < 200; i++) {
			/* 1000 bytes each: "msg N " then padding */
			int n = snprintf(msg, sizeof(msg), "msg %d ", i);
			memset(msg + n, 'x', 1000 - (size_t)n);
			msg[1000] = '\0';
			pv_human_log(h, "a.test.lua", "noisy", msg);
		}
		failed(h, "a.test.lua", "noisy", 1, "boom", "");
		completed(h, "a.test.lua", PV_FILE_FAILED, 1);
		pv_human_finish(h, 1, 0);
		pv_human_free(h);
		out = mem_close(&m);
		/* 65 messages of 1000 bytes fit in 64 KiB */
		assert_non_null(strstr(out, "          (135 earlier messages dropped, last 64 KiB kept)\n"));
		assert_null(strstr(out, "msg 134 "));
		assert_non_null(p = strstr(out, "          msg 199 xxx"));
		assert_true(strlen(p) > 1010);
		if (v == PV_VERBOSE) {
			assert_non_null(strstr(out, "          msg 135 xxx"));
		} else {
			/* without -v: the last 20 of the 65 kept */
			assert_non_null(strstr(out, "          (45 earlier lines; -v shows them)\n          msg 180 xxx"));
			assert_null(strstr(out, "msg 179 "));
		}
		free(out);
	}
}

/* A failure in the order that helps: the reason and the assertion's values
 * with the Lua frames of its traceback, the log, each VM's console under its
 * name cut to its last lines, then the captures kept; -v shows all. */
static void test_human_failure_layout(void **state)
{
	char reason[2048], console[2048];
	int o;
	(void)state;

	o = snprintf(reason, sizeof(reason), "t.lua:5: assert_eq failed: 1 ~= 2\nstack traceback:\n"
					     "\t[C]: in method 'assert_eq'\n");
	for (int i = 0; i < 8; i++)
		o += snprintf(reason + o, sizeof(reason) - (size_t)o, "\tt.lua:%d: in function 'f%d'\n", 10 + i, i);
	snprintf(reason + o, sizeof(reason) - (size_t)o, "capture kept: /cap/t-1.pcap\ncapture kept: /cap/t-2.pcap");
	o = snprintf(console, sizeof(console), "--- vm web ---\n");
	for (int i = 0; i < 30; i++)
		o += snprintf(console + o, sizeof(console) - (size_t)o, "[ %d.0] boot line %d\r\n", i, i);
	snprintf(console + o, sizeof(console) - (size_t)o, "\n--- vm db ---\nready\n");

	for (int v = PV_NORMAL; v <= PV_VERBOSE; v++) {
		struct mem m;
		mem_open(&m);
		struct pv_human *h = pv_human_new(m.f, (enum pv_verbosity)v, false, false);
		dispatched(h, "t.lua");
		started(h, "t.lua", "x");
		pv_human_log(h, "t.lua", "x", "step 1");
		failed(h, "t.lua", "x", 3, reason, console);
		completed(h, "t.lua", PV_FILE_FAILED, 4);
		pv_human_free(h);
		char *out = mem_close(&m);
		const char *want_normal =
			"  FAIL  x (3ms)\n"
			"        t.lua:5: assert_eq failed: 1 ~= 2\n"
			"        stack traceback:\n"
			"        \tt.lua:10: in function 'f0'\n"
			"        \tt.lua:11: in function 'f1'\n"
			"        \tt.lua:12: in function 'f2'\n"
			"        \tt.lua:13: in function 'f3'\n"
			"        \tt.lua:14: in function 'f4'\n"
			"        \tt.lua:15: in function 'f5'\n"
			"        (2 more frames; -v shows them)\n"
			"        log:\n"
			"          step 1\n"
			"        console of vm web:\n"
			"          (18 earlier lines; -v shows them)\n"
			"          [ 18.0] boot line 18\n";
		const char *tail =
			"          [ 29.0] boot line 29\n"
			"        console of vm db:\n"
			"          ready\n"
			"        captures:\n"
			"          capture kept: /cap/t-1.pcap\n"
			"          capture kept: /cap/t-2.pcap\n";
		if (v == PV_NORMAL) {
			if (!strstr(out, want_normal))
				fail_msg("normal layout:\n%s", out);
		} else {
			assert_non_null(strstr(out, "        \t[C]: in method 'assert_eq'\n"));
			assert_non_null(strstr(out, "        \tt.lua:17: in function 'f7'\n"));
			assert_non_null(strstr(out, "        console of vm web:\n          [ 0.0] boot line 0\n"));
			assert_null(strstr(out, "-v shows"));
		}
		if (!strstr(out, tail))
			fail_msg("the end of the failure:\n%s", out);
		free(out);
	}
}

static void test_human_sanitizes(void **state)
{
	struct mem m;
	struct pv_human *h;
	char *out;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, false);
	dispatched(h, "a.test.lua");
	started(h, "a.test.lua", "evil\033[2Jname\nx");
	failed(h, "a.test.lua", "evil\033[2Jname\nx", 1, "bad\033]0;title\007", "\033[31mred\033[0m\xc2\x9b" "1m\n");
	completed(h, "a.test.lua", PV_FILE_FAILED, 1);
	pv_human_finish(h, 1, 0);
	pv_human_free(h);
	out = mem_close(&m);
	assert_plain(out);
	assert_non_null(strstr(out, "  FAIL  evil\\x1b[2Jname\\nx (1ms)\n"));
	assert_non_null(strstr(out, "        bad\\x1b]0;title\\x07\n"));
	assert_non_null(strstr(out, "          \\x1b[31mred\\x1b[0m\\u009b1m\n"));
	free(out);
}

/* A failed build (snapshot_bytes 0) says so instead of "built (0B)". */
static void test_human_failed_build(void **state)
{
	struct mem m;
	struct pv_human *h;
	struct pv_event ev = mk(PV_EV_FIXTURE_BUILD_DONE);
	char *out;
	(void)state;

	mem_open(&m);
	h = pv_human_new(m.f, PV_NORMAL, false, false);
	ev.u.fixture_build_done = (struct pv_ev_fixture_build_done){ S("db/seeded"), 1500000000ull, 0 };
	pv_human_event(h, &ev);
	pv_human_free(h);
	out = mem_close(&m);
	assert_string_equal(out, "fixture db/seeded failed to build after 1.50s\n");
	free(out);
}

/* Every golden kind goes through the report; of the fixture events, builds
 * show unless quiet, waits and hits only in verbose; the UINT64_MAX duration
 * prints. */
static void test_human_golden(void **state)
{
	(void)state;
	for (int v = PV_QUIET; v <= PV_VERBOSE; v++) {
		struct mem m;
		struct pv_human *h;
		char *out;

		mem_open(&m);
		h = pv_human_new(m.f, (enum pv_verbosity)v, false, false);
		for (int k = 0; k < PV_EV__COUNT; k++)
			if (k != PV_EV_FILE_COMPLETED)
				golden(h, (enum pv_event_kind)k);
		golden(h, PV_EV_FILE_COMPLETED);
		pv_human_finish(h, 0, 0);
		pv_human_free(h);
		out = mem_close(&m);
		assert_plain(out);
		assert_non_null(strstr(out, "TIMEOUT a.test.lua  1 passed, 1 failed, 1 skipped (5m00s)\n"));
		assert_non_null(strstr(out, "  FAIL  boots (5124095h34m33s)\n"
					    "        a.test.lua:3: boom\n"));
		assert_true((strstr(out, "  ok    boots (<1ms)\n") != NULL) == (v == PV_VERBOSE));
		assert_non_null(strstr(out, "\n1 passed, 1 failed, 1 skipped in 1 file, 1 timed out (0ms)\n"));
		assert_true((strstr(out, "fixture base/debian built in 2.50s (14.0MiB)\n") != NULL) ==
			    (v >= PV_NORMAL));
		assert_true((strstr(out, "fixture base/debian: waiting for ") != NULL) == (v == PV_VERBOSE));
		assert_true((strstr(out, "fixture base/debian restored from cache\n") != NULL) == (v == PV_VERBOSE));
		assert_true((strstr(out, "  skip  slow one (slow)\n") != NULL) == (v == PV_VERBOSE));
		assert_null(strstr(out, "pool"));
		assert_null(strstr(out, "web"));
		free(out);
	}
}

/* ---- JSON Lines --------------------------------------------------------- */

#define META_ALL                                                                                   \
	"{\"big\":9223372036854775807,\"bytes\":{\"$bytes\":\"b2sA/w==\"},\"flag\":true,"         \
	"\"list\":[\"net\",-7,null],\"map\":{\"depth\":2},\"neg\":-9223372036854775808,"           \
	"\"none\":null,\"ratio\":0.25,\"spec\":\"net/dhcp\",\"utf8bytes\":{\"$bytes\":\"YWJj\"}}"

/* The payload each golden event must become, in the reference's field order. */
static const char *const expected_payload[PV_EV__COUNT] = {
	[PV_EV_FILE_DISCOVERED] = "{\"path\":\"net/dhcp.test.lua\",\"fixture_refs\":[\"base/debian\","
				  "\"net/r\xc3\xa9seau\"],\"declared_claim\":{\"memory_bytes\":536870912,"
				  "\"cpus\":2}}",
	[PV_EV_FILE_DISPATCHED] = "{\"path\":\"a.test.lua\",\"reservation\":{\"memory_bytes\":52428800,"
				  "\"cpus\":0}}",
	[PV_EV_FILE_BLOCKED] = "{\"path\":\"a.test.lua\",\"waiting_for\":{\"memory_bytes\":4294967296,"
			       "\"cpus\":4},\"reason\":\"pool_full\"}",
	[PV_EV_FILE_COMPLETED] = "{\"path\":\"a.test.lua\",\"status\":\"timed_out\","
				 "\"duration_ns\":300000000000}",
	[PV_EV_TEST_STARTED] = "{\"path\":\"a.test.lua\",\"name\":\"boots\",\"meta\":" META_ALL "}",
	[PV_EV_TEST_SKIPPED] = "{\"path\":\"a.test.lua\",\"name\":\"slow one\",\"reason\":\"slow\","
			       "\"meta\":{\"spec\":\"boot\"}}",
	[PV_EV_TEST_PASSED] = "{\"path\":\"a.test.lua\",\"name\":\"boots\",\"duration_ns\":1234,"
			      "\"meta\":" META_ALL "}",
	/* "U64MAX": jansson cannot hold the number, see big_u64() */
	[PV_EV_TEST_FAILED] = "{\"path\":\"a.test.lua\",\"name\":\"boots\",\"duration_ns\":\"U64MAX\","
			      "\"reason\":\"a.test.lua:3: boom\",\"console_excerpt\":\"\",\"meta\":{}}",
	[PV_EV_VM_SPAWNED] = "{\"file\":\"a.test.lua\",\"vm_name\":\"web\",\"profile\":\"linux\","
			     "\"memory_bytes\":268435456,\"cid\":4294967295}",
	[PV_EV_VM_SHUTDOWN] = "{\"file\":\"a.test.lua\",\"vm_name\":\"web\",\"duration_ns\":0}",
	[PV_EV_POOL_STATE] = "{\"used\":{\"memory_bytes\":314572800,\"cpus\":1},"
			     "\"available\":{\"memory_bytes\":19922944000,\"cpus\":1}}",
	[PV_EV_CLAIM_ACQUIRED] = "{\"path\":\"a.test.lua\",\"amount\":{\"memory_bytes\":1073741824,\"cpus\":2}}",
	[PV_EV_CLAIM_RELEASED] = "{\"path\":\"a.test.lua\",\"amount\":{\"memory_bytes\":1073741824,\"cpus\":2}}",
	[PV_EV_FIXTURE_BUILD_STARTED] = "{\"path\":\"base/debian\"}",
	[PV_EV_FIXTURE_BUILD_DONE] = "{\"path\":\"base/debian\",\"duration_ns\":2500000000,"
				     "\"snapshot_bytes\":14680064}",
	[PV_EV_FIXTURE_BUILD_WAITING] = "{\"path\":\"base/debian\",\"held_by_file\":\"b.test.lua\"}",
	[PV_EV_FIXTURE_CACHE_HIT] = "{\"path\":\"base/debian\"}",
};

static char *jsonl_of(const struct pv_event *ev)
{
	struct mem m;
	struct pv_jsonl *j;

	mem_open(&m);
	j = pv_jsonl_new(m.f);
	assert_non_null(j);
	pv_jsonl_event(j, ev);
	pv_jsonl_free(j);
	return mem_close(&m);
}

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *v = json_loads(s, JSON_ALLOW_NUL, &e);
	if (!v)
		fail_msg("not JSON (%s at %d): %s", e.text, e.position, s);
	return v;
}

/* jansson refuses integers above INT64_MAX; after checking the exact digits
 * are in the text, swap them for a marker string so the rest parses. */
static char *big_u64(const char *line, const char *field)
{
	char needle[80], *r, *p;
	size_t nlen;

	nlen = (size_t)snprintf(needle, sizeof(needle), "\"%s\":18446744073709551615", field);
	p = strstr(line, needle);
	if (!p)
		fail_msg("no exact %s:UINT64_MAX in %s", field, line);
	r = malloc(strlen(line) + 16);
	assert_non_null(r);
	memcpy(r, line, (size_t)(p - line));
	sprintf(r + (p - line), "\"%s\":\"U64MAX\"%s", field, p + nlen);
	return r;
}

static void assert_json_equal(json_t *got, json_t *want, const char *what)
{
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);
		fail_msg("%s:\n got %s\nwant %s", what, g, w);
	}
}

static void assert_key_order(json_t *got, json_t *want, const char *what)
{
	void *gi = json_object_iter(got), *wi = json_object_iter(want);
	for (; gi && wi; gi = json_object_iter_next(got, gi), wi = json_object_iter_next(want, wi))
		if (strcmp(json_object_iter_key(gi), json_object_iter_key(wi)) != 0)
			fail_msg("%s: key %s where %s belongs", what, json_object_iter_key(gi),
				 json_object_iter_key(wi));
	assert_true(!gi && !wi);
}

static void test_jsonl_golden(void **state)
{
	(void)state;
	for (int k = 0; k < PV_EV__COUNT; k++) {
		struct pv_event ev;
		char *line, *text;
		const char *name = pv_event_kind_name((enum pv_event_kind)k);
		json_t *got, *want, *top_want;

		golden_event((enum pv_event_kind)k, &ev);
		line = jsonl_of(&ev);
		/* exactly one line */
		assert_true(strlen(line) > 2);
		assert_int_equal(line[strlen(line) - 1], '\n');
		assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
		text = k == PV_EV_TEST_FAILED ? big_u64(line, "duration_ns") : strdup(line);
		assert_non_null(text);
		got = parse(text);
		want = parse(expected_payload[k]);
		top_want = json_pack("{s:I,s:s,s:O}", "ts", (json_int_t)1764115200123456789LL, "kind", name,
				     "payload", want);
		assert_non_null(top_want);
		assert_json_equal(got, top_want, name);
		assert_key_order(got, top_want, name);
		assert_key_order(json_object_get(got, "payload"), want, name);
		json_decref(got);
		json_decref(want);
		json_decref(top_want);
		free(text);
		free(line);
	}
}

static void test_jsonl_exact_bytes(void **state)
{
	struct pv_event ev;
	char *line;
	(void)state;

	golden_event(PV_EV_POOL_STATE, &ev);
	line = jsonl_of(&ev);
	assert_string_equal(line, "{\"ts\":1764115200123456789,\"kind\":\"pool_state\",\"payload\":"
				  "{\"used\":{\"memory_bytes\":314572800,\"cpus\":1},"
				  "\"available\":{\"memory_bytes\":19922944000,\"cpus\":1}}}\n");
	free(line);

	/* the golden meta is deliberately unsorted: keys come out in byte order */
	golden_event(PV_EV_TEST_STARTED, &ev);
	line = jsonl_of(&ev);
	assert_non_null(strstr(line, ",\"meta\":" META_ALL "}}\n"));
	free(line);

	golden_event(PV_EV_TEST_FAILED, &ev);
	line = jsonl_of(&ev);
	assert_non_null(strstr(line, "\"duration_ns\":18446744073709551615,"));
	free(line);
}

/* A decoded event (what a replay sees) renders byte for byte like the
 * producer's. */
static void test_jsonl_decoded_same(void **state)
{
	(void)state;
	for (int k = 0; k < PV_EV__COUNT; k++) {
		struct pv_event ev, dec;
		struct pv_buf b = PV_BUF_INIT;
		struct pv_err err;
		char *a, *d;

		golden_event((enum pv_event_kind)k, &ev);
		assert_int_equal(pv_event_encode(&ev, &b, &err), 0);
		pv_event_init(&dec);
		if (pv_event_decode(&dec, b.data + FRAME_HDR_LEN, b.len - FRAME_HDR_LEN, &err) < 0)
			fail_msg("%s", err.msg);
		a = jsonl_of(&ev);
		d = jsonl_of(&dec);
		assert_string_equal(a, d);
		free(a);
		free(d);
		pv_event_release(&dec);
		pv_buf_release(&b);
	}
}

static void test_jsonl_values(void **state)
{
	static const char weird[] = "q\"b\\s/\n\t\x01\x7f\0z\xff\xc3\xa9\xed\xa0\x80\xe2\x82";
	struct pv_meta_value none[1];
	struct pv_meta_entry e[] = {
		{ S("a_nan"), { .type = PV_META_FLOAT, .v.f = NAN } },
		{ S("b_inf"), { .type = PV_META_FLOAT, .v.f = INFINITY } },
		{ S("c_ninf"), { .type = PV_META_FLOAT, .v.f = -INFINITY } },
		{ S("d_one"), { .type = PV_META_FLOAT, .v.f = 1.0 } },
		{ S("e_nzero"), { .type = PV_META_FLOAT, .v.f = -0.0 } },
		{ S("f_tenth"), { .type = PV_META_FLOAT, .v.f = 0.1 } },
		{ S("g_huge"), { .type = PV_META_FLOAT, .v.f = 1e300 } },
		{ S("h_bin0"), { .type = PV_META_BIN, .v.s = { "", 0 } } },
		{ S("i_bin1"), { .type = PV_META_BIN, .v.s = { "f", 1 } } },
		{ S("j_bin2"), { .type = PV_META_BIN, .v.s = { "fo", 2 } } },
		{ S("k_str"), { .type = PV_META_STR, .v.s = { weird, sizeof(weird) - 1 } } },
		{ S("l_arr"), { .type = PV_META_ARRAY, .v.array = { none, 0 } } },
		{ S("m_map"), { .type = PV_META_MAP, .v.map = { NULL, 0 } } },
		{ S("n_false"), { .type = PV_META_BOOL, .v.b = false } },
		{ { "o\"k", 3 }, { .type = PV_META_INT, .v.i = 0 } },
	};
	struct pv_event ev = mk(PV_EV_TEST_PASSED);
	json_t *got, *meta, *want, *v;
	char *line;
	(void)state;

	ev.ts = -5;
	ev.u.test_passed.path = S("p");
	ev.u.test_passed.name = S("n");
	ev.u.test_passed.duration_ns = (uint64_t)INT64_MAX + 1;
	ev.u.test_passed.meta = (struct pv_meta_map){ e, sizeof(e) / sizeof(e[0]) };
	line = jsonl_of(&ev);
	/* just past INT64_MAX: exact, not wrapped */
	assert_non_null(strstr(line, "\"duration_ns\":9223372036854775808,"));
	assert_non_null(strstr(line, "\"d_one\":1.0,"));
	assert_non_null(strstr(line, "\"f_tenth\":0.1,"));
	{
		char *p = strstr(line, "9223372036854775808");
		memcpy(p, "1000000000000000000", 19);
	}
	got = parse(line);
	assert_int_equal(json_integer_value(json_object_get(got, "ts")), -5);
	meta = json_object_get(json_object_get(got, "payload"), "meta");
	assert_non_null(meta);
	want = parse("{\"a_nan\":{\"$float\":\"NaN\"},\"b_inf\":{\"$float\":\"Infinity\"},"
		     "\"c_ninf\":{\"$float\":\"-Infinity\"},\"d_one\":1.0,\"e_nzero\":-0.0,\"f_tenth\":0.1,"
		     "\"g_huge\":1e300,\"h_bin0\":{\"$bytes\":\"\"},\"i_bin1\":{\"$bytes\":\"Zg==\"},"
		     "\"j_bin2\":{\"$bytes\":\"Zm8=\"},\"k_str\":\"x\",\"l_arr\":[],\"m_map\":{},"
		     "\"n_false\":false,\"o\\\"k\":0}");
	/* the string is compared on its own: it holds a NUL */
	v = json_object_get(meta, "k_str");
	assert_true(json_is_string(v));
	{
		static const char dec[] = "q\"b\\s/\n\t\x01\x7f\0z\xef\xbf\xbd\xc3\xa9"
					  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
		assert_int_equal(json_string_length(v), sizeof(dec) - 1);
		assert_memory_equal(json_string_value(v), dec, sizeof(dec) - 1);
	}
	json_object_set_new(meta, "k_str", json_string("x"));
	assert_json_equal(meta, want, "meta values");
	assert_true(json_is_real(json_object_get(meta, "d_one")));
	assert_true(signbit(json_real_value(json_object_get(meta, "e_nzero"))));
	json_decref(want);
	json_decref(got);
	free(line);

	/* absent claim and empty lists */
	ev = mk(PV_EV_FILE_DISCOVERED);
	ev.u.file_discovered.path = S("x.test.lua");
	line = jsonl_of(&ev);
	assert_string_equal(line, "{\"ts\":1,\"kind\":\"file_discovered\",\"payload\":{\"path\":\"x.test.lua\","
				  "\"fixture_refs\":[],\"declared_claim\":null}}\n");
	free(line);
}

static void test_jsonl_summary_and_flush(void **state)
{
	struct mem m;
	struct pv_jsonl *j;
	size_t last = 0, lines = 0;
	static const enum pv_event_kind seq[] = {
		PV_EV_FILE_DISCOVERED, PV_EV_FILE_DISPATCHED, PV_EV_TEST_STARTED, PV_EV_TEST_PASSED,
		PV_EV_TEST_STARTED,    PV_EV_TEST_FAILED,	  PV_EV_TEST_SKIPPED, PV_EV_TEST_PASSED,
		PV_EV_POOL_STATE,      PV_EV_FILE_COMPLETED,  PV_EV_FILE_COMPLETED,
	};
	json_t *got, *want;
	char *out, *lastline;
	(void)state;

	mem_open(&m);
	j = pv_jsonl_new(m.f);
	assert_non_null(j);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		struct pv_event ev;
		golden_event(seq[i], &ev);
		pv_jsonl_event(j, &ev);
		/* a memstream only publishes its size on fflush: this checks
		 * each line was flushed whole */
		assert_true(m.len > last);
		assert_int_equal(m.buf[m.len - 1], '\n');
		last = m.len;
	}
	pv_jsonl_finish(j, 4210000000u, 1);
	pv_jsonl_free(j);
	out = mem_close(&m);
	for (char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, sizeof(seq) / sizeof(seq[0]) + 1);
	out[strlen(out) - 1] = '\0';
	lastline = strrchr(out, '\n') + 1;
	got = parse(lastline);
	want = parse("{\"summary\":{\"passed\":2,\"failed\":1,\"skipped\":1,\"files\":2,"
		     "\"wall_ns\":4210000000,\"exit_code\":1}}");
	assert_json_equal(got, want, "summary");
	assert_key_order(json_object_get(got, "summary"), json_object_get(want, "summary"), "summary");
	json_decref(got);
	json_decref(want);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_human_normal),
		cmocka_unit_test(test_human_verbose),
		cmocka_unit_test(test_human_quiet),
		cmocka_unit_test(test_human_quiet_all_pass),
		cmocka_unit_test(test_human_color),
		cmocka_unit_test(test_human_progress),
		cmocka_unit_test(test_human_progress_free),
		cmocka_unit_test(test_human_progress_parts),
		cmocka_unit_test(test_human_failure_layout),
		cmocka_unit_test(test_human_interrupted),
		cmocka_unit_test(test_human_timeout_counts_running_test),
		cmocka_unit_test(test_human_log_cap),
		cmocka_unit_test(test_human_sanitizes),
		cmocka_unit_test(test_human_golden),
		cmocka_unit_test(test_human_failed_build),
		cmocka_unit_test(test_jsonl_golden),
		cmocka_unit_test(test_jsonl_exact_bytes),
		cmocka_unit_test(test_jsonl_decoded_same),
		cmocka_unit_test(test_jsonl_values),
		cmocka_unit_test(test_jsonl_summary_and_flush),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

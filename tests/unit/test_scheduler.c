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
#include <cmocka.h>

#include "scheduler.h"

struct seen {
	char kinds[64][32];
	char paths[64][64];
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unencodable_event_ends_the_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

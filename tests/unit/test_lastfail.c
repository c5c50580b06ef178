/* Unit tests of --rerun-failed's record (src/sched/lastfail.c): what a run's
 * events make of it, merging with the record before (what the run did not
 * learn stays), the file round trip with awkward names, and bad records. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lastfail.h"

static const struct pv_meta_map nometa = { NULL, 0 };

static struct pv_str S(const char *s) { return (struct pv_str){ s, strlen(s) }; }

static void started(struct lf_state *r, const char *path, const char *name)
{
	struct pv_event ev = { .kind = PV_EV_TEST_STARTED };
	ev.u.test_started = (struct pv_ev_test_started){ S(path), S(name), nometa };
	lf_run_event(r, &ev);
}

/* A test of path that ran and ended as o: 'p'assed, 'f'ailed, 's'kipped. */
static void test_ended(struct lf_state *r, const char *path, const char *name, char o)
{
	struct pv_event ev = { 0 };
	started(r, path, name);
	if (o == 'p') {
		ev.kind = PV_EV_TEST_PASSED;
		ev.u.test_passed = (struct pv_ev_test_passed){ S(path), S(name), 1, nometa };
	} else if (o == 'f') {
		ev.kind = PV_EV_TEST_FAILED;
		ev.u.test_failed = (struct pv_ev_test_failed){ S(path), S(name), 1, S("why"), S(""), nometa };
	} else {
		ev.kind = PV_EV_TEST_SKIPPED;
		ev.u.test_skipped = (struct pv_ev_test_skipped){ S(path), S(name), S("filtered"), nometa };
	}
	lf_run_event(r, &ev);
}

static void completed(struct lf_state *r, const char *path, enum pv_file_status st)
{
	struct pv_event ev = { .kind = PV_EV_FILE_COMPLETED };
	ev.u.file_completed = (struct pv_ev_file_completed){ S(path), st, 1 };
	lf_run_event(r, &ev);
}

static bool all(const char *path, void *ctx)
{
	(void)path;
	(void)ctx;
	return true;
}

static bool only_a(const char *path, void *ctx)
{
	(void)ctx;
	return !strcmp(path, "a.test.lua");
}

/* The record as one line: "path:name,name path:* ..." in record order. */
static const char *show(const struct lf_state *s)
{
	static char buf[1024];
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < s->n; i++) {
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s:", i ? " " : "", s->f[i].path);
		if (s->f[i].whole)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "*");
		for (size_t k = 0; k < s->f[i].nnames; k++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", k ? "," : "", s->f[i].names[k]);
	}
	return buf;
}

static void test_run_to_record(void **state)
{
	struct lf_state run = { 0 }, rec = { 0 };
	(void)state;

	test_ended(&run, "a.test.lua", "one", 'p');
	test_ended(&run, "a.test.lua", "two", 'f');
	test_ended(&run, "a.test.lua", "three", 's');
	completed(&run, "a.test.lua", PV_FILE_FAILED);
	test_ended(&run, "b.test.lua", "b1", 'p');
	completed(&run, "b.test.lua", PV_FILE_CRASHED); /* whole */
	test_ended(&run, "c.test.lua", "<load>", 'f');  /* a synthetic test: whole */
	completed(&run, "c.test.lua", PV_FILE_FAILED);
	test_ended(&run, "d.test.lua", "d1", 'p');
	completed(&run, "d.test.lua", PV_FILE_TIMED_OUT);
	test_ended(&run, "e.test.lua", "e1", 'p');
	completed(&run, "e.test.lua", PV_FILE_PASSED);
	completed(&run, "f.test.lua", PV_FILE_FAILED); /* never dispatched (fail-fast) */
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);
	assert_string_equal(show(&rec), "a.test.lua:two b.test.lua:* c.test.lua:* d.test.lua:*");
	assert_null(lf_find(&rec, "e.test.lua"));
	assert_null(lf_find(&rec, "f.test.lua"));
	lf_state_release(&run);
	lf_state_release(&rec);
}

static void test_merge_keeps_what_was_not_learnt(void **state)
{
	struct lf_state run = { 0 }, rec = { 0 };
	(void)state;

	test_ended(&run, "a.test.lua", "x", 'f');
	test_ended(&run, "a.test.lua", "y", 'f');
	test_ended(&run, "b.test.lua", "b", 'f');
	test_ended(&run, "c.test.lua", "c", 'f');
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);
	lf_state_release(&run);

	/* the next run: x passes, y is skipped (no news), a new failure z, b
	 * not run at all, c's test renamed (the old name is gone with it) */
	memset(&run, 0, sizeof(run));
	test_ended(&run, "a.test.lua", "x", 'p');
	test_ended(&run, "a.test.lua", "y", 's');
	test_ended(&run, "a.test.lua", "z", 'f');
	test_ended(&run, "c.test.lua", "c2", 'p');
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);
	assert_string_equal(show(&rec), "a.test.lua:z,y b.test.lua:b");
	lf_state_release(&run);

	/* files that are not this root's are left alone */
	memset(&run, 0, sizeof(run));
	test_ended(&run, "a.test.lua", "z", 'p');
	test_ended(&run, "a.test.lua", "y", 'p');
	test_ended(&run, "b.test.lua", "b", 'p');
	assert_int_equal(lf_merge(&rec, &run, only_a, NULL, false), 0);
	assert_string_equal(show(&rec), "b.test.lua:b");
	lf_state_release(&run);
	lf_state_release(&rec);
}

static void test_whole_files(void **state)
{
	struct lf_state run = { 0 }, rec = { 0 };
	(void)state;

	test_ended(&run, "a.test.lua", "a1", 'f');
	completed(&run, "a.test.lua", PV_FILE_CRASHED);
	test_ended(&run, "b.test.lua", "b1", 'f');
	completed(&run, "b.test.lua", PV_FILE_TIMED_OUT);
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);
	assert_string_equal(show(&rec), "a.test.lua:* b.test.lua:*");
	lf_state_release(&run);

	/* an interrupted rerun: a's cut-off tests keep it whole; b ran to its
	 * end, so its own results replace the mark */
	memset(&run, 0, sizeof(run));
	test_ended(&run, "a.test.lua", "a1", 'p');
	test_ended(&run, "a.test.lua", "a2", 's');
	test_ended(&run, "b.test.lua", "b1", 'p');
	test_ended(&run, "b.test.lua", "b2", 'f');
	assert_int_equal(lf_merge(&rec, &run, all, NULL, true), 0);
	assert_string_equal(show(&rec), "a.test.lua:* b.test.lua:b2");
	lf_state_release(&run);

	/* not interrupted: the skip is a filter's, a's results stand */
	memset(&run, 0, sizeof(run));
	test_ended(&run, "a.test.lua", "a1", 'p');
	test_ended(&run, "a.test.lua", "a2", 's');
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);
	assert_string_equal(show(&rec), "b.test.lua:b2");
	lf_state_release(&run);
	lf_state_release(&rec);
}

static char dir[64];

static void test_file_round_trip(void **state)
{
	struct lf_state run = { 0 }, rec = { 0 }, back;
	struct pv_err err;
	char file[256], cmp[256];
	(void)state;

	strcpy(dir, "/tmp/pvlastfail.XXXXXX");
	assert_non_null(mkdtemp(dir));
	test_ended(&run, "sub dir/a.test.lua", "tab\there", 'f');
	test_ended(&run, "sub dir/a.test.lua", "new\nline \\ and \r", 'f');
	test_ended(&run, "b.test.lua", "b", 'p');
	completed(&run, "b.test.lua", PV_FILE_CRASHED);
	assert_int_equal(lf_merge(&rec, &run, all, NULL, false), 0);

	assert_int_equal(lf_state_file(dir, dir, file, sizeof(file), &err), 0);
	assert_int_equal(lf_state_file(dir, "/nonexistent/root", cmp, sizeof(cmp), &err), -ENOENT);
	assert_int_equal(lf_load(file, &back, &err), 0); /* no record yet */
	assert_int_equal(back.n, 0);
	/* the directory is made (0700) */
	assert_int_equal(lf_save(file, dir, &rec, &err), 0);
	{
		struct stat st;
		char d[300];
		snprintf(d, sizeof(d), "%s/last-failed", dir);
		assert_int_equal(stat(d, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_int_equal(lf_load(file, &back, &err), 1);
	assert_string_equal(show(&back), show(&rec));
	assert_string_equal(back.f[0].names[1], "new\nline \\ and \r");
	lf_state_release(&back);

	/* the same root by another spelling is the same record */
	snprintf(cmp, sizeof(cmp), "%s/.", dir);
	{
		char file2[256];
		assert_int_equal(lf_state_file(dir, cmp, file2, sizeof(file2), &err), 0);
		assert_string_equal(file2, file);
	}

	/* a file that is not a record is an error naming it and the line */
	{
		FILE *f = fopen(file, "w");
		fputs("provium last-failed 1\nroot\t/x\nX\tsomething\n", f);
		fclose(f);
		assert_int_equal(lf_load(file, &back, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "line 3"));
		f = fopen(file, "w");
		fputs("something else\n", f);
		fclose(f);
		assert_int_equal(lf_load(file, &back, &err), -EINVAL);
		f = fopen(file, "w");
		fputs("provium last-failed 1\nT\ta.test.lua\tbad\\escape\n", f);
		fclose(f);
		assert_int_equal(lf_load(file, &back, &err), -EINVAL);
	}
	lf_state_release(&run);
	lf_state_release(&rec);
	snprintf(cmp, sizeof(cmp), "rm -rf %s", dir);
	assert_int_equal(system(cmp), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_to_record),
		cmocka_unit_test(test_merge_keeps_what_was_not_learnt),
		cmocka_unit_test(test_whole_files),
		cmocka_unit_test(test_file_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

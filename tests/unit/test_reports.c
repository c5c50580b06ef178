/* Unit tests of the reports written when a run ends (--junit, --json-summary):
 * text made safe for XML 1.0 and JSON (control characters, U+FFFE, invalid
 * UTF-8, NUL), times, the file:line of a failure, and whole reports built
 * from hostile events read back by libxml2 and jansson: well-formed, with
 * the names, counts and elements a CI server looks for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "render.h"
#include "results.h"

#define S(x) pv_str_c(x)

static char dir[] = "/tmp/pv-test-reports.XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	if (getenv("PV_KEEP"))
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void clean_is(const char *in, size_t len, bool xml, const char *want)
{
	size_t n;
	char *c = res_clean(in, len, xml, &n);

	assert_non_null(c);
	assert_string_equal(c, want);
	assert_int_equal(n, strlen(want));
	free(c);
}

static void test_clean(void **state)
{
	(void)state;
	/* XML 1.0 has no control characters but tab, newline, return */
	clean_is("a\x01" "b\tc\nd\re", 9, true, "a\\x01b\tc\nd\re");
	clean_is("nul\0here", 8, true, "nul\\x00here");
	clean_is("\x1b[31m", 5, true, "\\x1b[31m");
	/* nor U+FFFE / U+FFFF; U+FFFD and others pass */
	clean_is("\xef\xbf\xbe|\xef\xbf\xbf|\xef\xbf\xbd", 11, true, "\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd");
	clean_is("\xc3\xbc \xf0\x9f\x98\x80", 7, true, "\xc3\xbc \xf0\x9f\x98\x80");
	/* invalid UTF-8, each bad byte: a lone byte, overlong, surrogate, truncated */
	clean_is("x\xffy", 3, true, "x\xef\xbf\xbdy");
	clean_is("\xc0\xaf", 2, false, "\xef\xbf\xbd\xef\xbf\xbd");
	clean_is("\xed\xa0\x80", 3, false, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	clean_is("ab\xe2\x82", 4, false, "ab\xef\xbf\xbd\xef\xbf\xbd");
	/* JSON escapes control characters itself: kept */
	clean_is("a\x01" "b", 3, false, "a\x01" "b");
	/* markup is the writer's business: kept */
	clean_is("]]> <&>", 7, true, "]]> <&>");
	clean_is(NULL, 5, true, "");
}

static void test_seconds(void **state)
{
	char b[32];
	(void)state;
	assert_string_equal(res_seconds(0, b), "0.000");
	assert_string_equal(res_seconds(499999, b), "0.000");
	assert_string_equal(res_seconds(500000, b), "0.001");
	assert_string_equal(res_seconds(1999999999, b), "2.000");
	assert_string_equal(res_seconds(61234567890ull, b), "61.235");
}

/* ---- events ------------------------------------------------------------- */

static struct pv_event mk(enum pv_event_kind k)
{
	struct pv_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = k;
	ev.ts = 1700000000000000000ll;
	return ev;
}

static void file_ev(struct pv_report *r, enum pv_event_kind k, const char *path, enum pv_file_status st)
{
	struct pv_event ev = mk(k);
	if (k == PV_EV_FILE_DISCOVERED)
		ev.u.file_discovered.path = S(path);
	else if (k == PV_EV_FILE_DISPATCHED)
		ev.u.file_dispatched.path = S(path);
	else {
		ev.u.file_completed.path = S(path);
		ev.u.file_completed.status = st;
		ev.u.file_completed.duration_ns = 1234567890;
	}
	pv_report_event(r, &ev);
}

static void started(struct pv_report *r, const char *path, struct pv_str name)
{
	struct pv_event ev = mk(PV_EV_TEST_STARTED);
	ev.u.test_started.path = S(path);
	ev.u.test_started.name = name;
	pv_report_event(r, &ev);
}

static void failed(struct pv_report *r, const char *path, struct pv_str name, struct pv_str reason,
		   struct pv_str console)
{
	struct pv_event ev = mk(PV_EV_TEST_FAILED);
	ev.u.test_failed.path = S(path);
	ev.u.test_failed.name = name;
	ev.u.test_failed.duration_ns = 2500000;
	ev.u.test_failed.reason = reason;
	ev.u.test_failed.console_excerpt = console;
	pv_report_event(r, &ev);
}

static void passed(struct pv_report *r, const char *path, const char *name)
{
	struct pv_event ev = mk(PV_EV_TEST_PASSED);
	ev.u.test_passed.path = S(path);
	ev.u.test_passed.name = S(name);
	pv_report_event(r, &ev);
}

/* A hostile run: a name with "]]>" and markup, a reason with control
 * characters, invalid UTF-8 and U+FFFE, a console excerpt full of escape
 * sequences and NUL, a chunk name Lua shortened, a test left open by a
 * crash; a second file that timed out; a third that never started. */
#define NAME "end ]]> <x a=\"1\"> & \xff"
#define REASON "...ong/dir/h.test.lua:12: bad \x01\x02 \xef\xbf\xbe \xc3 done\nsecond line"
static const char console[] = "\x1b[1mboot\x1b[0m\0nul\r\n";

static struct pv_report *hostile(void)
{
	struct pv_report *r = pv_report_new();
	const char *p = "a/very/long/dir/h.test.lua";

	assert_non_null(r);
	pv_report_file_path(r, p, "./tests/a/very/long/dir/h.test.lua");
	file_ev(r, PV_EV_FILE_DISCOVERED, p, 0);
	file_ev(r, PV_EV_FILE_DISCOVERED, "t.test.lua", 0);
	file_ev(r, PV_EV_FILE_DISCOVERED, "never.test.lua", 0);
	file_ev(r, PV_EV_FILE_DISPATCHED, p, 0);
	file_ev(r, PV_EV_FILE_DISPATCHED, "t.test.lua", 0);
	started(r, p, (struct pv_str){ NAME, sizeof(NAME) - 1 });
	pv_report_log(r, p, "end ]]> <x a=\"1\"> & \xff", "log \x07 line");
	failed(r, p, (struct pv_str){ NAME, sizeof(NAME) - 1 }, (struct pv_str){ REASON, sizeof(REASON) - 1 },
	       (struct pv_str){ console, sizeof(console) - 1 });
	started(r, p, S("ok"));
	passed(r, p, "ok");
	started(r, p, S("open"));
	pv_report_log(r, p, NULL, "file scope");
	file_ev(r, PV_EV_FILE_COMPLETED, p, PV_FILE_CRASHED);
	started(r, "t.test.lua", S("<load>"));
	failed(r, "t.test.lua", S("<load>"), S("t.test.lua:3: syntax"), S(""));
	file_ev(r, PV_EV_FILE_COMPLETED, "t.test.lua", PV_FILE_TIMED_OUT);
	return r;
}

static xmlNodePtr child(xmlNodePtr n, const char *name, int nth)
{
	for (n = n ? n->children : NULL; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name) && nth-- == 0)
			return n;
	return NULL;
}

static void prop_is(xmlNodePtr n, const char *k, const char *want)
{
	xmlChar *v = xmlGetProp(n, BAD_CAST k);
	assert_non_null(v);
	assert_string_equal((const char *)v, want);
	xmlFree(v);
}

static void content_has(xmlNodePtr n, const char *needle)
{
	xmlChar *v = xmlNodeGetContent(n);
	assert_non_null(v);
	if (!strstr((const char *)v, needle))
		fail_msg("\"%s\" not in \"%s\"", needle, (const char *)v);
	xmlFree(v);
}

static void test_junit(void **state)
{
	struct pv_report *r = hostile();
	struct pv_err err;
	char path[128];
	xmlDocPtr doc;
	xmlNodePtr root, s, c, e;
	(void)state;

	snprintf(path, sizeof(path), "%s/junit.xml", dir);
	assert_int_equal(pv_junit_write(r, path, 3000000000u, &err), 0);
	r = pv_report_free(r);
	/* well-formed XML 1.0, or libxml2 refuses it */
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	assert_non_null(doc);
	root = xmlDocGetRootElement(doc);
	assert_string_equal((const char *)root->name, "testsuites");
	prop_is(root, "tests", "6");
	prop_is(root, "failures", "1");
	prop_is(root, "errors", "4");
	prop_is(root, "time", "3.000");
	prop_is(root, "timestamp", "2023-11-14T22:13:20");
	assert_null(child(root, "testsuite", 2)); /* never.test.lua never started */

	s = child(root, "testsuite", 0);
	prop_is(s, "name", "a/very/long/dir/h.test.lua");
	prop_is(s, "tests", "4");
	prop_is(s, "errors", "2");
	prop_is(s, "time", "1.235");
	c = child(s, "testcase", 0);
	prop_is(c, "name", "end ]]> <x a=\"1\"> & \xef\xbf\xbd");
	prop_is(c, "classname", "a.very.long.dir.h");
	prop_is(c, "file", "tests/a/very/long/dir/h.test.lua");
	prop_is(c, "line", "12");
	prop_is(c, "time", "0.003");
	e = child(c, "failure", 0);
	assert_non_null(e);
	prop_is(e, "message", "...ong/dir/h.test.lua:12: bad \\x01\\x02 \xef\xbf\xbd \xef\xbf\xbd done");
	content_has(e, "second line\n\nlog:\nlog \\x07 line\n");
	content_has(child(c, "system-out", 0), "console excerpt:\n\\x1b[1mboot\\x1b[0m\\x00nul\r\n");
	assert_null(child(child(s, "testcase", 1), "failure", 0)); /* "ok" passed */
	c = child(s, "testcase", 2);
	prop_is(c, "name", "open");
	prop_is(child(c, "error", 0), "type", "did_not_finish");
	c = child(s, "testcase", 3);
	prop_is(c, "name", "<file>");
	prop_is(child(c, "error", 0), "type", "crashed");
	content_has(child(s, "system-out", 0), "file scope\n");

	s = child(root, "testsuite", 1);
	prop_is(child(child(s, "testcase", 0), "error", 0), "type", "load_error");
	prop_is(child(child(s, "testcase", 1), "error", 0), "type", "timed_out");
	xmlFreeDoc(doc);
}

static void test_summary(void **state)
{
	struct pv_report *r = hostile();
	struct pv_err err;
	char path[128], *text, *nl;
	json_t *o, *t;
	FILE *f;
	long len;
	(void)state;

	snprintf(path, sizeof(path), "%s/summary.jsonl", dir);
	assert_int_equal(pv_summary_write(r, path, &err), 0);
	r = pv_report_free(r);
	assert_non_null(f = fopen(path, "r"));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	*nl = '\0';
	o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL); /* \u0000 is valid JSON */
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "path")), "a/very/long/dir/h.test.lua");
	assert_string_equal(json_string_value(json_object_get(o, "status")), "crashed");
	assert_true(json_is_false(json_object_get(o, "passed")));
	assert_string_equal(json_string_value(json_object_get(o, "timeout")), "in_time");
	assert_int_equal(json_integer_value(json_object_get(o, "duration_ms")), 1235);
	assert_int_equal(json_array_size(json_object_get(o, "tests")), 3);
	t = json_array_get(json_object_get(o, "tests"), 0);
	assert_string_equal(json_string_value(json_object_get(t, "name")), "end ]]> <x a=\"1\"> & \xef\xbf\xbd");
	assert_string_equal(json_string_value(json_object_get(t, "location")), "a/very/long/dir/h.test.lua:12");
	assert_int_equal(json_integer_value(json_object_get(t, "duration_ms")), 3);
	/* JSON can carry NUL and control characters: only the UTF-8 is mended */
	assert_int_equal(json_string_length(json_object_get(t, "console_excerpt")), sizeof(console) - 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(t, "log"), 0)), "log \x07 line");
	t = json_array_get(json_object_get(o, "tests"), 2);
	assert_string_equal(json_string_value(json_object_get(t, "status")), "failed");
	json_decref(o);

	o = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "timeout")), "timed_out");
	assert_string_equal(json_string_value(json_object_get(o, "chunk_error")), "t.test.lua:3: syntax");
	assert_int_equal(json_array_size(json_object_get(o, "tests")), 0);
	json_decref(o);
	assert_null(strstr(nl + 1, "never.test.lua"));
	free(text);
}

static void test_write_errors(void **state)
{
	struct pv_report *r = pv_report_new();
	struct pv_err err;
	(void)state;

	assert_int_equal(pv_junit_write(r, "/nonexistent/dir/j.xml", 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot write /nonexistent/dir/j.xml"));
	assert_int_equal(pv_summary_write(r, "/nonexistent/dir/s.jsonl", &err), -ENOENT);
	/* out of memory at the start: said, not crashed */
	assert_int_equal(pv_junit_write(NULL, "x.xml", 0, &err), -ENOMEM);
	assert_int_equal(pv_summary_write(NULL, "x.jsonl", &err), -ENOMEM);
	pv_report_free(r);
}

/* An empty run: a valid report with no suites, an empty summary. */
static void test_empty(void **state)
{
	struct pv_report *r = pv_report_new();
	struct pv_err err;
	char path[128];
	xmlDocPtr doc;
	(void)state;

	snprintf(path, sizeof(path), "%s/empty.xml", dir);
	assert_int_equal(pv_junit_write(r, path, 0, &err), 0);
	doc = xmlReadFile(path, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
	assert_non_null(doc);
	prop_is(xmlDocGetRootElement(doc), "tests", "0");
	xmlFreeDoc(doc);
	snprintf(path, sizeof(path), "%s/empty.jsonl", dir);
	assert_int_equal(pv_summary_write(r, path, &err), 0);
	assert_int_equal(access(path, R_OK), 0);
	pv_report_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_junit),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_empty),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	xmlCleanupParser();
	return rc;
}

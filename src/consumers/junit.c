/* junit.c - --junit PATH: the run as a JUnit XML report, the format CI
 * servers read test results in (GitHub Actions' report actions, GitLab's
 * artifacts:reports:junit, Jenkins' junit step).
 *
 * What maps to what (docs/cli.md, "JUnit report"):
 *   the run        <testsuites name="provium"> with the totals, the wall time
 *                  and the earliest file's start
 *   a test file    <testsuite name=PATH> (root-relative): tests, failures,
 *                  errors, skipped, time (file_completed's duration),
 *                  timestamp (file_dispatched, UTC), hostname
 *   a test         <testcase name classname time file [line]>: classname is
 *                  PATH without ".test.lua", '/' as '.' (Jenkins splits a
 *                  classname at its last dot into package and class); file
 *                  is the path the run opened; line comes from the reason's
 *                  "PATH:LINE:" prefix
 *     failed       <failure message=FIRST LINE type="failure">reason, then
 *                  the test's log</failure>
 *     <load>       <error type="load_error">: the file did not load
 *     no outcome   <error type="did_not_finish"> (a file that ended first)
 *     skipped      <skipped message=REASON/>
 *     log, console <system-out>: the test's t:log lines, then the console
 *                  excerpt of its failure
 *   crashed, timed out, unfinished file
 *                  one more <testcase name="<file>"> with <error
 *                  type="crashed" | "timed_out" | "did_not_finish">, so a
 *                  file whose tests all passed before its runner died still
 *                  shows as an error, never vanishes
 *   file-scope log <system-out> of the testsuite
 * Files that never started (an interrupted or --fail-fast run) have no
 * suite: nothing ran.
 *
 * XML through libxml2's xmlTextWriter, which escapes markup (so "]]>" or
 * "<" in a name cannot end anything); the text goes through res_clean first
 * because XML 1.0 cannot carry control characters at all, even escaped, and
 * libxml2 passes invalid UTF-8 through.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/xmlwriter.h>

#include "results.h"

/* A failure's message attribute: its first line, at most this many bytes. */
#define MSG_MAX 1024u

struct jw {
	xmlTextWriterPtr w;
	int rc; /* 0, or the first failure (-ENOMEM) */
};

static void start(struct jw *j, const char *name)
{
	if (j->rc == 0 && xmlTextWriterStartElement(j->w, BAD_CAST name) < 0)
		j->rc = -ENOMEM;
}

static void end(struct jw *j)
{
	if (j->rc == 0 && xmlTextWriterEndElement(j->w) < 0)
		j->rc = -ENOMEM;
}

/* An attribute of text s[0..len), cleaned; cut: only its first line, at
 * most MSG_MAX bytes. */
static void attr_n(struct jw *j, const char *name, const char *s, size_t len, bool cut)
{
	char *c;
	size_t n;

	if (j->rc)
		return;
	if (!(c = res_clean(s, len, true, &n))) {
		j->rc = -ENOMEM;
		return;
	}
	if (cut) {
		char *nl = strpbrk(c, "\r\n");
		if (nl)
			n = (size_t)(nl - c);
		if (n > MSG_MAX) {
			n = MSG_MAX;
			while (n > 0 && ((unsigned char)c[n] & 0xc0) == 0x80) /* not inside a character */
				n--;
		}
		c[n] = '\0';
	}
	if (xmlTextWriterWriteAttribute(j->w, BAD_CAST name, BAD_CAST c) < 0)
		j->rc = -ENOMEM;
	free(c);
}

static void attr(struct jw *j, const char *name, const char *s)
{
	attr_n(j, name, s, strlen(s), false);
}

static void attr_u64(struct jw *j, const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	attr(j, name, buf);
}

static void attr_time(struct jw *j, uint64_t ns)
{
	char buf[32];

	attr(j, "time", res_seconds(ns, buf));
}

/* ISO 8601 in UTC without a zone, as the JUnit schema's timestamp has it. */
static void attr_timestamp(struct jw *j, int64_t ts)
{
	time_t t = (time_t)(ts / 1000000000);
	struct tm tm;
	char buf[32];

	if (ts <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm))
		return;
	attr(j, "timestamp", buf);
}

static void text(struct jw *j, const char *s, size_t len)
{
	char *c;

	if (j->rc || len == 0)
		return;
	if (!(c = res_clean(s, len, true, NULL))) {
		j->rc = -ENOMEM;
		return;
	}
	if (xmlTextWriterWriteString(j->w, BAD_CAST c) < 0)
		j->rc = -ENOMEM;
	free(c);
}

static void text_log(struct jw *j, const struct res_log *l)
{
	const char *p = (const char *)l->text.data, *e = p + l->text.len;
	char note[80];

	for (; p < e; p += strlen(p) + 1) {
		text(j, p, strlen(p));
		text(j, "\n", 1);
	}
	if (l->dropped) {
		snprintf(note, sizeof(note), "(%" PRIu64 " more log lines not kept)\n", l->dropped);
		text(j, note, strlen(note));
	}
}

static bool has_log(const struct res_log *l)
{
	return l->text.len || l->dropped;
}

/* <failure>/<error> with message, type and the body (reason[0..len), then
 * the log). */
static void problem(struct jw *j, const char *el, const char *type, const char *reason, size_t len,
		    const struct res_log *log)
{
	static const char none[] = "(no reason given)";

	if (!reason || !len) {
		reason = none;
		len = sizeof(none) - 1;
	}
	start(j, el);
	attr_n(j, "message", reason, len, true);
	attr(j, "type", type);
	text(j, reason, len);
	if (log && has_log(log)) {
		text(j, "\n\nlog:\n", 7);
		text_log(j, log);
	}
	end(j);
}

/* PATH without ".test.lua", '/' as '.'. */
static char *classname(const char *path)
{
	size_t n = strlen(path);
	char *c;

	if (n > 9 && !strcmp(path + n - 9, ".test.lua"))
		n -= 9;
	if (!(c = malloc(n + 1)))
		return NULL;
	for (size_t i = 0; i < n; i++)
		c[i] = path[i] == '/' ? '.' : path[i];
	c[n] = '\0';
	return c;
}

static void case_start(struct jw *j, const struct res_file *f, const char *cls, const char *name, uint64_t ns,
		       unsigned line)
{
	start(j, "testcase");
	attr(j, "name", name);
	attr(j, "classname", cls);
	attr_time(j, ns);
	attr(j, "file", f->open_path ? f->open_path : f->path);
	if (line)
		attr_u64(j, "line", line);
}

static void put_test(struct jw *j, const struct res_file *f, const char *cls, const struct res_test *t)
{
	static const char console_hdr[] = "console excerpt:\n";

	case_start(j, f, cls, t->name, t->has_duration ? t->duration_ns : 0, t->line);
	switch (t->state) {
	case RES_PASSED:
		break;
	case RES_FAILED:
		problem(j, res_is_load(t) ? "error" : "failure", res_is_load(t) ? "load_error" : "failure", t->reason,
			t->reason_len, &t->log);
		break;
	case RES_SKIPPED:
		start(j, "skipped");
		if (t->reason_len)
			attr_n(j, "message", t->reason, t->reason_len, false);
		end(j);
		break;
	case RES_OPEN: {
		const char *why = f->completed ? "did not finish: its file ended first" : "did not finish: the run ended first";
		problem(j, "error", "did_not_finish", why, strlen(why), NULL);
		break;
	}
	}
	if (has_log(&t->log) || t->console) {
		start(j, "system-out");
		text_log(j, &t->log);
		if (t->console) {
			if (has_log(&t->log))
				text(j, "\n", 1);
			text(j, console_hdr, sizeof(console_hdr) - 1);
			text(j, t->console, t->console_len);
		}
		end(j);
	}
	end(j);
}

struct counts {
	uint64_t tests, failures, errors, skipped;
};

/* Why the file itself is an error ("<file>"), or NULL. */
static const char *file_error(const struct res_file *f, char *msg, size_t size, const char **type)
{
	char d[32];

	if (!f->completed) {
		*type = "did_not_finish";
		return "did not finish: the run ended first";
	}
	if (f->status == PV_FILE_CRASHED) {
		*type = "crashed";
		return "the test runner crashed (the failed tests say how)";
	}
	if (f->status == PV_FILE_TIMED_OUT) {
		*type = "timed_out";
		snprintf(msg, size, "the file timed out after %ss", res_seconds(f->duration_ns, d));
		return msg;
	}
	return NULL;
}

static struct counts file_counts(const struct res_file *f)
{
	struct counts c = { 0 };
	char msg[64];
	const char *type;

	for (size_t i = 0; i < f->ntests; i++) {
		const struct res_test *t = &f->tests[i];
		if (!res_is_test(t))
			continue;
		c.tests++;
		if (t->state == RES_SKIPPED)
			c.skipped++;
		else if (t->state == RES_OPEN || (t->state == RES_FAILED && res_is_load(t)))
			c.errors++;
		else if (t->state == RES_FAILED)
			c.failures++;
	}
	if (file_error(f, msg, sizeof(msg), &type)) {
		c.tests++;
		c.errors++;
	}
	return c;
}

static void put_file(struct jw *j, const struct res_file *f, const char *host)
{
	struct counts c = file_counts(f);
	char msg[64];
	const char *type = NULL, *why = file_error(f, msg, sizeof(msg), &type);
	char *cls = classname(f->path);

	if (!cls) {
		j->rc = -ENOMEM;
		return;
	}
	start(j, "testsuite");
	attr(j, "name", f->path);
	attr_u64(j, "tests", c.tests);
	attr_u64(j, "failures", c.failures);
	attr_u64(j, "errors", c.errors);
	attr_u64(j, "skipped", c.skipped);
	attr_time(j, f->duration_ns);
	attr_timestamp(j, f->ts);
	if (host[0])
		attr(j, "hostname", host);
	for (size_t i = 0; i < f->ntests; i++)
		if (res_is_test(&f->tests[i]))
			put_test(j, f, cls, &f->tests[i]);
	if (why) {
		case_start(j, f, cls, "<file>", 0, 0);
		problem(j, "error", type, why, strlen(why), NULL);
		end(j);
	}
	if (has_log(&f->log)) {
		start(j, "system-out");
		text_log(j, &f->log);
		end(j);
	}
	end(j);
	free(cls);
}

static void put_run(struct jw *j, const struct pv_report *r, uint64_t wall_ns)
{
	struct counts all = { 0 };
	int64_t first = 0;
	char host[256] = "";

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (size_t i = 0; i < r->nfiles; i++) {
		struct counts c;
		if (!res_ran(&r->files[i]))
			continue;
		c = file_counts(&r->files[i]);
		all.tests += c.tests;
		all.failures += c.failures;
		all.errors += c.errors;
		all.skipped += c.skipped;
		if (r->files[i].ts > 0 && (first == 0 || r->files[i].ts < first))
			first = r->files[i].ts;
	}
	if (j->rc == 0 && xmlTextWriterStartDocument(j->w, NULL, "UTF-8", NULL) < 0)
		j->rc = -ENOMEM;
	start(j, "testsuites");
	attr(j, "name", "provium");
	attr_u64(j, "tests", all.tests);
	attr_u64(j, "failures", all.failures);
	attr_u64(j, "errors", all.errors);
	attr_u64(j, "skipped", all.skipped);
	attr_time(j, wall_ns);
	attr_timestamp(j, first);
	for (size_t i = 0; i < r->nfiles; i++)
		if (res_ran(&r->files[i]))
			put_file(j, &r->files[i], host);
	end(j);
	if (j->rc == 0 && xmlTextWriterEndDocument(j->w) < 0)
		j->rc = -ENOMEM;
}

int pv_junit_write(const struct pv_report *r, const char *path, uint64_t wall_ns, struct pv_err *err)
{
	xmlBufferPtr buf = xmlBufferCreate();
	struct jw j = { NULL, 0 };
	int rc;

	if (!r || !buf || !(j.w = xmlNewTextWriterMemory(buf, 0))) {
		if (buf)
			xmlBufferFree(buf);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "cannot write %s: out of memory", path);
	}
	xmlTextWriterSetIndent(j.w, 1);
	xmlTextWriterSetIndentString(j.w, BAD_CAST "  ");
	put_run(&j, r, wall_ns);
	xmlFreeTextWriter(j.w); /* flushes into buf */
	if (j.rc)
		rc = pv_err_set(err, j.rc, SIZE_MAX, "cannot write %s: out of memory", path);
	else
		rc = res_write_atomic(path, xmlBufferContent(buf), (size_t)xmlBufferLength(buf), err);
	xmlBufferFree(buf);
	return rc;
}

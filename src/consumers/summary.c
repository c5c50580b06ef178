/* summary.c - --json-summary PATH: one JSON object per test file, one per
 * line (JSON Lines), in discovery order, written when the run ends.
 *
 * The original Provium's --json printed exactly this, one object per file
 * (peios/provium, provium-host/src/bin/provium.rs, render_json); its fields
 * keep their names and meaning here, and a few are added (docs/cli.md says
 * which):
 *   path         root-relative file path
 *   status       passed | failed | timed_out | crashed (file_completed;
 *                "unfinished" when the run ended before the file did)  [added]
 *   passed       true: the file passed and no test of it failed
 *   timeout      "in_time" | "timed_out"
 *   chunk_error  the reason the file did not load (its "<load>" test), or
 *                null; that pseudo-test is not in tests, as in the original
 *   duration_ms  the file's wall time, integer milliseconds         [added]
 *   log          t:log lines outside any test                       [added]
 *   tests        in start order, each:
 *     name, status (passed | failed | skipped), message (failure or skip
 *     reason, or null), log (its t:log lines), and, added: duration_ms
 *     (null for a skipped test), location ("PATH:LINE" of the failure, or
 *     null), console_excerpt (of a failure, or null)
 * A test with no outcome when its file ended is "failed" with a message
 * saying so. Files that never started are not listed.
 *
 * Through jansson (its integers are signed 64-bit: milliseconds fit). Text
 * is made valid UTF-8 first (res_clean), as JSON needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "results.h"

/* set k to v, which is stolen; a NULL v (out of memory) marks the object */
static void put(json_t *o, const char *k, json_t *v, bool *oom)
{
	if (!v || json_object_set_new(o, k, v) < 0)
		*oom = true;
}

static json_t *str_n(const char *s, size_t len)
{
	size_t n;
	char *c = res_clean(s, len, false, &n);
	json_t *v;

	if (!c)
		return NULL;
	v = json_stringn_nocheck(c, n);
	free(c);
	return v;
}

static json_t *str_or_null(const char *s)
{
	return s ? str_n(s, strlen(s)) : json_null();
}

static json_t *ms(uint64_t ns)
{
	uint64_t v = ns / 1000000u + (ns % 1000000u >= 500000u);

	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *log_array(const struct res_log *l)
{
	const char *p = (const char *)l->text.data, *e = p + l->text.len;
	json_t *a = json_array();
	char note[80];

	for (; a && p < e; p += strlen(p) + 1)
		if (json_array_append_new(a, str_n(p, strlen(p))) < 0)
			goto oom;
	if (a && l->dropped) {
		snprintf(note, sizeof(note), "(%" PRIu64 " more log lines not kept)", l->dropped);
		if (json_array_append_new(a, json_string(note)) < 0)
			goto oom;
	}
	return a;
oom:
	json_decref(a);
	return NULL;
}

static json_t *test_obj(const struct res_file *f, const struct res_test *t, bool *oom)
{
	static const char *const st[] = { "failed", "passed", "failed", "skipped" };
	json_t *o = json_object();
	static const char open_msg[] = "did not finish: its file ended first";

	if (!o) {
		*oom = true;
		return NULL;
	}
	put(o, "name", str_or_null(t->name), oom);
	put(o, "status", json_string(st[t->state]), oom);
	if (t->state == RES_OPEN)
		put(o, "message", json_string(open_msg), oom);
	else
		put(o, "message", t->reason ? str_n(t->reason, t->reason_len) : json_null(), oom);
	put(o, "log", log_array(&t->log), oom);
	put(o, "duration_ms", t->has_duration ? ms(t->duration_ns) : json_null(), oom);
	if (t->line) {
		size_t n = strlen(f->path) + 16;
		char *l = malloc(n);
		if (l)
			snprintf(l, n, "%s:%u", f->path, t->line);
		put(o, "location", l ? str_n(l, strlen(l)) : NULL, oom);
		free(l);
	} else {
		put(o, "location", json_null(), oom);
	}
	put(o, "console_excerpt", t->console ? str_n(t->console, t->console_len) : json_null(), oom);
	return o;
}

static const char *file_status(const struct res_file *f)
{
	return f->completed ? pv_file_status_name(f->status) : "unfinished";
}

static json_t *file_obj(const struct res_file *f, bool *oom)
{
	json_t *o = json_object(), *tests = json_array();
	const struct res_test *load = NULL; /* its failure is the chunk_error */
	bool failed = false;

	if (!o || !tests) {
		json_decref(o);
		json_decref(tests);
		*oom = true;
		return NULL;
	}
	for (size_t i = 0; i < f->ntests; i++) {
		const struct res_test *t = &f->tests[i];
		if (!res_is_test(t))
			continue;
		if (t->state == RES_FAILED || t->state == RES_OPEN)
			failed = true;
		if (res_is_load(t)) {
			if (t->state == RES_FAILED)
				load = t;
			continue;
		}
		if (json_array_append_new(tests, test_obj(f, t, oom)) < 0)
			*oom = true;
	}
	put(o, "path", str_or_null(f->path), oom);
	put(o, "status", json_string(file_status(f)), oom);
	put(o, "passed", json_boolean(f->completed && f->status == PV_FILE_PASSED && !failed), oom);
	put(o, "timeout", json_string(f->completed && f->status == PV_FILE_TIMED_OUT ? "timed_out" : "in_time"), oom);
	put(o, "chunk_error", load ? str_n(load->reason ? load->reason : "", load->reason_len) : json_null(), oom);
	put(o, "duration_ms", ms(f->duration_ns), oom);
	put(o, "log", log_array(&f->log), oom);
	put(o, "tests", tests, oom);
	return o;
}

int pv_summary_write(const struct pv_report *r, const char *path, struct pv_err *err)
{
	struct pv_buf b = PV_BUF_INIT;
	bool oom = !r;
	int rc;

	for (size_t i = 0; r && i < r->nfiles && !oom; i++) {
		json_t *o;
		char *line;
		if (!res_ran(&r->files[i]))
			continue;
		o = file_obj(&r->files[i], &oom);
		line = o && !oom ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (!line || pv_buf_append(&b, line, strlen(line)) < 0 || pv_buf_append(&b, "\n", 1) < 0)
			oom = true;
		free(line);
		json_decref(o);
	}
	if (oom)
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "cannot write %s: out of memory", path);
	else
		rc = res_write_atomic(path, b.data ? (const char *)b.data : "", b.len, err);
	pv_buf_release(&b);
	return rc;
}

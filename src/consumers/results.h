/* results.h - the outcomes of one run, per file and per test, gathered from
 * the event stream (and the t:log lines passed beside it) for the reports
 * written when the run ends: --junit (junit.c) and --json-summary
 * (summary.c). Internal to src/consumers; the entry points are in render.h.
 *
 * What is kept, and from which event:
 *   file_discovered   the file, in discovery order (a file first seen in
 *                     another event is added then)
 *   file_dispatched   its timestamp (the report's "when it started")
 *   file_completed    status and duration
 *   test_started      the test, in start order
 *   test_passed/failed/skipped  outcome, duration, reason, console excerpt;
 *                     the reason's "PATH:LINE:" prefix, when PATH is the
 *                     test's file, gives the line
 *   t:log             appended to its test (outside any test: to the file),
 *                     RES_LOG_CAP bytes each, the oldest kept
 */
#ifndef PV_RESULTS_H
#define PV_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "event.h"
#include "render.h"

#define RES_LOG_CAP (64u * 1024u)

enum res_state { RES_OPEN, RES_PASSED, RES_FAILED, RES_SKIPPED };

struct res_log {
	struct pv_buf text; /* the messages, each ending in '\0' */
	uint64_t dropped;   /* lines not kept past RES_LOG_CAP */
};

struct res_test {
	char *name;
	enum res_state state;
	bool started;
	bool has_duration;
	uint64_t duration_ns;
	char *reason;  /* failure or skip reason, NULL if none */
	char *console; /* console excerpt, NULL if empty */
	size_t reason_len, console_len; /* both may hold NUL bytes */
	unsigned line; /* 0: not known */
	struct res_log log;
};

struct res_file {
	char *path; /* root-relative, as in the events */
	char *open_path; /* the path the run opened (pv_report_file_path), NULL: path */
	bool dispatched, completed;
	enum pv_file_status status;
	uint64_t duration_ns;
	int64_t ts; /* file_dispatched's ts (else the first event's), ns since the epoch */
	struct res_test *tests;
	size_t ntests, cap;
	struct res_log log; /* logged outside any test */
};

struct pv_report {
	struct res_file *files; /* discovery order */
	size_t nfiles, cap;
	uint32_t *index; /* open addressing over files (i + 1; 0 empty), power-of-two size */
	size_t index_cap;
	bool lost; /* a detail could not be kept (out of memory) */
};

/* The text s[0..len) made safe for a report, malloc'd and NUL-terminated,
 * its length in *ret_len (NULL ok): always valid UTF-8 (a byte that is not
 * part of a well-formed sequence becomes U+FFFD). xml: also only characters
 * XML 1.0 allows (control characters other than tab, newline and carriage
 * return, NUL among them, become a visible \xNN; U+FFFE and U+FFFF become
 * U+FFFD). NULL if out of memory. */
char *res_clean(const char *s, size_t len, bool xml, size_t *ret_len);

/* "12.345": ns as seconds with 3 decimals, rounded; integer arithmetic so
 * the locale cannot put a comma in. */
const char *res_seconds(uint64_t ns, char buf[32]);

/* Writes data[0..len) to path atomically: a temporary file in the same
 * directory, renamed over path. 0 or a negative errno with err filled
 * ("cannot write PATH: ..."). */
int res_write_atomic(const char *path, const void *data, size_t len, struct pv_err *err);

/* The test whose failure is the file's own: the scheduler's "<load>" (the
 * file did not load, or its runner died before it said which tests it has). */
bool res_is_load(const struct res_test *t);
/* A file that started (files that never did are in no report: nothing ran). */
bool res_ran(const struct res_file *f);
/* A test that started or has an outcome (not only logged to). */
bool res_is_test(const struct res_test *t);

#endif

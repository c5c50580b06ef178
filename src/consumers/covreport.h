/* covreport.h - one run's coverage report: test outcomes counted per value
 * of one metadata key (docs/coverage.md). Shared by provium-coverage, which
 * reads streams, and provium --coverage, which counts its own run's events.
 *
 * Protocol: struct pv_cov_report r; pv_cov_init(&r, "spec"); then
 * pv_cov_count(&r, ev) for every event (only test outcomes count);
 * pv_cov_print_text() or pv_cov_print_json(); pv_cov_release(&r) (r can
 * then be counted into again, with the same key).
 *
 * Buckets of meta[KEY]: a string is one bucket; an array counts in each of
 * its elements' buckets (an empty array counts as <unset>); ints, floats and
 * booleans are stringified; bin is its text when valid UTF-8, else 0x hex;
 * a map is <map>; absent or nil is <unset>. Buckets are sorted by byte
 * order; the totals count each test once. Out of memory, a test is left
 * uncounted and the report says so (oom). Nothing here exits. */
#ifndef PV_COVREPORT_H
#define PV_COVREPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"

enum pv_cov_outcome { PV_COV_PASSED, PV_COV_FAILED, PV_COV_SKIPPED };

struct pv_cov_test {
	char *path, *name;
	enum pv_cov_outcome outcome;
};

struct pv_cov_bucket {
	char *key;
	unsigned count[3];
	struct pv_cov_test *tests;
	size_t ntests, cap;
};

struct pv_cov_report {
	const char *by;
	struct pv_cov_bucket *b;
	size_t n, cap;
	unsigned totals[3];
	uint64_t frames; /* events counted into it, of any kind */
	bool oom;
};

void pv_cov_init(struct pv_cov_report *r, const char *by);
/* Counts ev (frames always; the bucket of a test_passed, _failed, _skipped). */
void pv_cov_count(struct pv_cov_report *r, const struct pv_event *ev);
/* The header, one line per bucket (with verbose, its tests), the totals. */
void pv_cov_print_text(const struct pv_cov_report *r, bool verbose, FILE *out);
/* One line of JSON: run, complete, by, buckets (key, counts, tests),
 * totals, events, error (NULL or "": null). */
void pv_cov_print_json(const struct pv_cov_report *r, unsigned run, bool complete, const char *error, FILE *out);
void pv_cov_release(struct pv_cov_report *r);

#endif

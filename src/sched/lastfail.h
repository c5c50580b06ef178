/* lastfail.h - what --rerun-failed reruns: the failures of the last run of
 * each test root, kept between runs (docs/cli.md, "--rerun-failed").
 *
 * A root's record is one small text file,
 * <cache-dir>/last-failed/<key>, key the 32 hex digits of XXH3-128 of the
 * root directory's real path (a root given as a *.test.lua file stands for
 * its directory, as everywhere). Per test file it holds either the names of
 * its tests that failed, or "the whole file" when the file crashed or timed
 * out, or a synthetic test (<load>, <claim>) failed: no test of it is known
 * to be good then, and the next run of its tests may name others.
 *
 * Protocol:
 *   1. During a run, every event goes to lf_run_event(&run, ev).
 *   2. At its end, for each root: lf_state_file(), lf_load() the previous
 *      record (absent is fine), lf_merge() the run into it, lf_save().
 *   3. A later --rerun-failed lf_load()s it and asks lf_find() per file.
 *   4. lf_run_release(), lf_state_release().
 *
 * Merging keeps what the run did not learn: a file the run never started
 * keeps its record, and so does a failed test it skipped (filtered out,
 * interrupted); a test that ran takes its new outcome. Errors are negative
 * errno with err set; nothing here prints. */
#ifndef PV_LASTFAIL_H
#define PV_LASTFAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "event.h"

/* One test file's record (state), or what a run saw of it (run). */
struct lf_file {
	char *path;   /* root-relative, as in events */
	bool whole;   /* every test of the file counts as failed */
	char **names; /* state: failed tests; run: failed tests */
	size_t nnames, cap_names;
	/* run only */
	bool ran;       /* a test of it started */
	char **skipped; /* tests it skipped */
	size_t nskipped, cap_skipped;
};

struct lf_state {
	struct lf_file *f;
	size_t n, cap;
	bool oom; /* lf_run_event could not keep something: the record would be wrong */
};

/* Feeds one event of the run into run (a zeroed struct at first). */
void lf_run_event(struct lf_state *run, const struct pv_event *ev);

/* The record of the root directory (or *.test.lua file) root under
 * cache_dir into out: 0, or -errno if root has no real path or out is too
 * short. */
int lf_state_file(const char *cache_dir, const char *root, char *out, size_t len, struct pv_err *err);

/* 1 with *s filled, 0 if there is no record (s empty), or -errno (also for
 * a record that is not one: err says where). */
int lf_load(const char *file, struct lf_state *s, struct pv_err *err);

/* Writes s to file atomically (a temporary file renamed over it), making
 * its directory (0700) if needed; root is written into it for people. */
int lf_save(const char *file, const char *root, const struct lf_state *s, struct pv_err *err);

/* Merges what run learnt of the files for which mine(path, ctx) is true
 * into s. interrupted: the run was stopped by a signal (a file recorded as
 * whole stays so when this run skipped some of its tests). 0 or -ENOMEM. */
int lf_merge(struct lf_state *s, const struct lf_state *run, bool (*mine)(const char *path, void *ctx), void *ctx,
	     bool interrupted);

/* The record of path, or NULL (nothing of it failed). */
const struct lf_file *lf_find(const struct lf_state *s, const char *path);

void lf_state_release(struct lf_state *s);

#endif

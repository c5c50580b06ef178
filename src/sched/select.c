/* select.c - --since, --rerun-failed and the record behind it (select.h). */
#include "select.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "since.h"

/* The distinct root directories of d's files, in order (pointers into d). */
static const char **roots_of(const struct pv_discovery *d, size_t *n)
{
	const char **r = calloc(d->nfiles + 1, sizeof(*r));
	*n = 0;
	for (size_t i = 0; r && i < d->nfiles; i++) {
		size_t k = 0;
		while (k < *n && strcmp(r[k], d->files[i].root) != 0)
			k++;
		if (k == *n)
			r[(*n)++] = d->files[i].root;
	}
	return r;
}

static int since_apply(const struct cmd_ctx *c, struct pv_discovery *d)
{
	bool *keep = calloc(d->nfiles + 1, sizeof(*keep));
	struct pv_err err;
	size_t before = d->nfiles;

	if (!keep)
		return cli_fail("out of memory");
	if (since_changed(c->o->since, (const char *const *)c->roots, c->nroots, d, keep, &err) < 0) {
		free(keep);
		return cli_fail("--since %s: %s", c->o->since, err.msg);
	}
	pv_discovery_retain(d, keep);
	free(keep);
	if (before && !d->nfiles) {
		fprintf(stderr, "provium: --since %s: none of the %zu test files changed, nor a helper or fixture they use; "
			"nothing to run\n", c->o->since, before);
		return SEL_NOTHING;
	}
	return 0;
}

/* f's `only` list from its record (names copied). */
static int set_only(struct pv_test_file *f, const struct lf_file *rec)
{
	if (rec->whole)
		return 0;
	if (!(f->only = calloc(rec->nnames + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < rec->nnames; i++) {
		if (!(f->only[i] = strdup(rec->names[i])))
			return -ENOMEM;
		f->nonly++;
	}
	return 0;
}

static int rerun_apply(const struct cmd_ctx *c, struct pv_discovery *d)
{
	size_t nroots, ntests = 0, nwhole = 0;
	const char **roots;
	bool *keep;
	int rc = 0;
	char clean_root[PATH_MAX] = ""; /* a root whose last run failed nothing (d's strings go with its files) */

	if (!c->cache_dir || !*c->cache_dir)
		return cli_fail("--rerun-failed: there is no cache directory to keep the last run's failures in "
				  "(give one with --cache-dir DIR)");
	if (!d->nfiles)
		return 0;
	roots = roots_of(d, &nroots);
	keep = calloc(d->nfiles + 1, sizeof(*keep));
	if (!roots || !keep) {
		free(roots);
		free(keep);
		return cli_fail("out of memory");
	}
	for (size_t r = 0; r < nroots && rc == 0; r++) {
		char file[PATH_MAX];
		struct lf_state st;
		struct pv_err err;
		int loaded = lf_state_file(c->cache_dir, roots[r], file, sizeof(file), &err);
		if (loaded == 0)
			loaded = lf_load(file, &st, &err);
		if (loaded < 0)
			fprintf(stderr, "provium: --rerun-failed: %s; running all the tests of %s\n", err.msg, roots[r]);
		else if (loaded == 0)
			fprintf(stderr, "provium: --rerun-failed: no earlier run of %s is recorded; running all its tests\n",
				roots[r]);
		for (size_t i = 0; i < d->nfiles && rc == 0; i++) {
			const struct lf_file *rec;
			if (strcmp(d->files[i].root, roots[r]) != 0)
				continue;
			if (loaded <= 0) {
				keep[i] = true;
				continue;
			}
			if (!(rec = lf_find(&st, d->files[i].rel_path)))
				continue;
			keep[i] = true;
			nwhole += rec->whole;
			ntests += rec->whole ? 0 : rec->nnames;
			if (set_only(&d->files[i], rec) < 0)
				rc = cli_fail("out of memory");
		}
		if (loaded > 0) {
			bool any = false;
			for (size_t i = 0; i < d->nfiles; i++)
				any |= keep[i] && !strcmp(d->files[i].root, roots[r]);
			if (!any && !*clean_root)
				snprintf(clean_root, sizeof(clean_root), "%s", roots[r]);
			lf_state_release(&st);
		}
	}
	if (rc == 0) {
		pv_discovery_retain(d, keep);
		if (!d->nfiles) {
			fprintf(stderr, "provium: --rerun-failed: no test failed in the last run of %s%s; nothing to run\n",
				clean_root, nroots > 1 ? " (nor of the other roots)" : "");
			rc = SEL_NOTHING;
		} else if (ntests || nwhole) {
			fprintf(stderr, "provium: --rerun-failed: %zu failed test%s", ntests, ntests == 1 ? "" : "s");
			if (nwhole)
				fprintf(stderr, " and %zu file%s that failed whole (crashed, timed out or did not load)", nwhole,
					nwhole == 1 ? "" : "s");
			fprintf(stderr, " of the last run\n");
		}
	}
	free(roots);
	free(keep);
	return rc;
}

int sel_apply(const struct cmd_ctx *c, struct pv_discovery *d)
{
	int rc = 0;
	if (c->o->since)
		rc = since_apply(c, d);
	if (rc == 0 && c->o->rerun_failed)
		rc = rerun_apply(c, d);
	return rc;
}

struct mine_ctx {
	const struct pv_discovery *d;
	const char *root;
};

/* path is a file of the run under root */
static bool mine(const char *path, void *ctx)
{
	const struct mine_ctx *m = ctx;
	for (size_t i = 0; i < m->d->nfiles; i++)
		if (!strcmp(m->d->files[i].rel_path, path))
			return !strcmp(m->d->files[i].root, m->root); /* the first of equal paths, as events name it */
	return false;
}

void sel_record(const struct cmd_ctx *c, const struct pv_discovery *d, const struct lf_state *run, bool interrupted)
{
	size_t nroots;
	const char **roots;

	if (!c->cache_dir || !*c->cache_dir || !d->nfiles || c->o->fixture_cmd ||
	    (c->o->interactive_cmd && !strcmp(c->o->interactive_cmd, "repl")))
		return;
	if (run->oom) {
		fprintf(stderr, "provium: out of memory keeping this run's failures: --rerun-failed keeps the record "
			"of the run before\n");
		return;
	}
	if (!(roots = roots_of(d, &nroots)))
		return;
	for (size_t r = 0; r < nroots; r++) {
		char file[PATH_MAX];
		struct lf_state st = { 0 };
		struct pv_err err;
		struct mine_ctx m = { d, roots[r] };
		int rc = lf_state_file(c->cache_dir, roots[r], file, sizeof(file), &err);
		/* a record that cannot be read is started afresh */
		if (rc == 0 && lf_load(file, &st, &err) < 0)
			memset(&st, 0, sizeof(st));
		if (rc == 0 && (rc = lf_merge(&st, run, mine, &m, interrupted)) < 0)
			pv_err_set(&err, rc, SIZE_MAX, "out of memory");
		if (rc == 0)
			rc = lf_save(file, roots[r], &st, &err);
		if (rc < 0)
			fprintf(stderr, "provium: cannot record the failures of %s for --rerun-failed: %s\n", roots[r], err.msg);
		lf_state_release(&st);
	}
	free(roots);
}

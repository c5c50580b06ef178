/* cmd_fixture.c - provium fixture: list, stale and clean work on the cache
 * directly; build and rebuild turn each fixture into a "file" of a run whose
 * runner builds it (cmd.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "fcache.h"
#include "fixkey.h"
#include "mpr.h"
#include "units.h"

int cmd_fixture_name(const char *arg, const char *const *roots, size_t nroots, char *name, size_t len,
			const char **root)
{
	char want[PATH_MAX], rp[PATH_MAX], file[4200];
	struct pv_err err;
	if (realpath(arg, want)) {
		for (size_t i = 0; i < nroots; i++) {
			size_t n;
			if (!realpath(roots[i], rp))
				continue;
			n = strlen(rp);
			if (strncmp(want, rp, n) == 0 && want[n] == '/') {
				if (fx_normalize(want + n + 1, name, len, &err) < 0)
					return cli_fail("%s", err.msg);
				*root = roots[i];
				return 0;
			}
		}
		if (strstr(arg, FX_SUFFIX))
			return cli_fail("%s is not under the test root%s %s%s: fixture names are relative to a root "
					  "(pass the roots with provium.lua's roots)", arg, nroots > 1 ? "s" : "", roots[0],
					  nroots > 1 ? ", ..." : "");
	}
	if (fx_normalize(arg, name, len, &err) < 0)
		return cli_fail("%s", err.msg);
	for (size_t i = 0; i < nroots; i++)
		if (fx_find(&roots[i], 1, name, file, sizeof(file), NULL) == 0) {
			*root = roots[i];
			return 0;
		}
	fx_find(roots, nroots, name, file, sizeof(file), &err);
	return cli_fail("%s", err.msg);
}

/* provium fixture build/rebuild: each fixture becomes a "file" whose runner builds it. */
int cmd_fixture_jobs(const struct cmd_ctx *c, struct pv_discovery *d)
{
	const struct cli_opts *o = c->o;
	const char *const *roots = (const char *const *)c->roots;
	size_t nroots = c->nroots;

	memset(d, 0, sizeof(*d));
	d->files = calloc(o->npaths, sizeof(*d->files));
	if (!d->files)
		return cli_fail("out of memory");
	for (size_t i = 0; i < o->npaths; i++) {
		char name[1024], file[4200];
		const char *root = NULL;
		struct pv_test_file *f = &d->files[d->nfiles];
		if (cmd_fixture_name(o->paths[i], roots, nroots, name, sizeof(name), &root) != 0) {
			pv_discovery_release(d);
			return CLI_EXIT_USAGE;
		}
		if (!pv_utf8_valid((const uint8_t *)name, strlen(name))) {
			char shown[1024];
			pv_discovery_release(d);
			return cli_fail("fixture \"%s\" is not valid UTF-8 (event paths are UTF-8 text): rename it",
					  pv_escape_name(name, strlen(name), shown, sizeof(shown)));
		}
		fx_find(&root, 1, name, file, sizeof(file), NULL);
		d->nfiles++; /* from here pv_discovery_release frees what it holds */
		f->root = strdup(root);
		f->abs_path = strdup(file);
		f->rel_path = malloc(strlen(name) + strlen(FX_SUFFIX) + 1);
		f->fixture_refs = calloc(1, sizeof(char *));
		if (f->fixture_refs && (f->fixture_refs[0] = strdup(name)))
			f->nfixture_refs = 1;
		if (!f->root || !f->abs_path || !f->rel_path || !f->nfixture_refs) {
			pv_discovery_release(d);
			return cli_fail("out of memory");
		}
		sprintf(f->rel_path, "%s%s", name, FX_SUFFIX);
	}
	return 0;
}

static void fmt_age(int64_t then, char *b, size_t len)
{
	int64_t s = (int64_t)time(NULL) - then;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(b, len, "%llds ago", (long long)s);
	else if (s < 7200)
		snprintf(b, len, "%lldm ago", (long long)(s / 60));
	else if (s < 172800)
		snprintf(b, len, "%lldh ago", (long long)(s / 3600));
	else
		snprintf(b, len, "%lldd ago", (long long)(s / 86400));
}

/* The current key of every fixture under the roots (for stale). */
static char **current_keys(const char *const *roots, size_t nroots, const char *config, size_t *n)
{
	struct pv_discovery d;
	struct pv_err err;
	char **keys;
	*n = 0;
	if (pv_discover(roots, nroots, NULL, &d, &err) < 0)
		return NULL;
	keys = calloc(d.nfixtures + 1, sizeof(*keys));
	for (size_t i = 0; keys && i < d.nfixtures; i++) {
		char k[FC_KEY_LEN + 1];
		if (fx_key(roots, nroots, config, d.fixtures[i], k, &err) == 0)
			keys[(*n)++] = strdup(k);
	}
	pv_discovery_release(&d);
	return keys;
}

static bool is_current(char **keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i] && strcmp(keys[i], key) == 0)
			return true;
	return false;
}

/* An entry that is current: a fixture's key today, or a boot template
 * ("template:PROFILE", src/runner/ltemplate.h) of a profile that still
 * exists. A template's key depends on each VM's options, so an old one is
 * not told apart here: it ages out of the cache (cache_max_size). */
static bool current(const struct cmd_ctx *c, char **keys, size_t n, const struct fc_info *e)
{
	if (e->corrupt)
		return false;
	if (!strncmp(e->fixture, "template:", 9)) {
		const char *p = e->fixture + 9;
		return !strcmp(p, "linux") || !strcmp(p, "host") || pv_config_profile(c->cfg, p);
	}
	return is_current(keys, n, e->key);
}

/* provium fixture list | stale | clean [--stale] */
int cmd_fixture_admin(const struct cmd_ctx *c)
{
	const struct cli_opts *o = c->o;
	const char *dir = c->cache_dir, *config = c->cfg->path;
	const char *const *roots = (const char *const *)c->roots;
	size_t nroots = c->nroots;
	struct fc_info *e = NULL;
	struct pv_err err;
	size_t n = 0, nkeys = 0, shown = 0, removed = 0;
	uint64_t total = 0, freed = 0;
	char **keys = NULL;
	bool list = !strcmp(o->fixture_cmd, "list"), stale = !strcmp(o->fixture_cmd, "stale");

	if (fc_list(dir, &e, &n, &err) < 0)
		return cli_fail("%s", err.msg);
	if (list || stale || o->stale_only)
		keys = current_keys(roots, nroots, config, &nkeys);
	if (list || stale) {
		for (size_t i = 0; i < n; i++) {
			char sz[32], built[32], used[32];
			bool cur = current(c, keys, nkeys, &e[i]);
			if (stale && cur)
				continue;
			if (!shown++)
				printf("%-16s  %9s  %-9s  %-9s  %s\n", "KEY", "SIZE", "BUILT", "USED", "FIXTURE");
			fmt_age(e[i].created, built, sizeof(built));
			fmt_age(e[i].last_used, used, sizeof(used));
			printf("%-16.16s  %9s  %-9s  %-9s  %s%s\n", e[i].key, pv_format_size(e[i].bytes, sz), built, used,
			       e[i].fixture, e[i].corrupt ? " (corrupt)" : cur ? "" : " (stale)");
			total += e[i].bytes;
		}
		{
			char sz[32];
			fprintf(stderr, "%zu %sentr%s, %s, in %s\n", shown, stale ? "stale " : "", shown == 1 ? "y" : "ies",
				pv_format_size(total, sz), dir);
		}
	} else { /* clean */
		for (size_t i = 0; i < n; i++) {
			struct fc_lock lk;
			char held[256] = "another process";
			if (o->stale_only && current(c, keys, nkeys, &e[i]))
				continue;
			/* an entry being built right now stays (a resume that loses its
			 * entry midway treats it as corrupt and rebuilds) */
			if (fc_lock_try(dir, e[i].key, "provium fixture clean", &lk, held, sizeof(held), NULL) != 1) {
				fprintf(stderr, "provium: kept %s (%s): in use by %s\n", e[i].key, e[i].fixture, held);
				continue;
			}
			if (fc_remove(dir, e[i].key, &err) < 0)
				fprintf(stderr, "provium: %s\n", err.msg);
			else {
				char lock[4200];
				snprintf(lock, sizeof(lock), "%s/%s.lock", dir, e[i].key);
				unlink(lock); /* lockers check they hold the file still linked */
				removed++;
				freed += e[i].bytes;
			}
			fc_unlock(&lk);
		}
		{
			char sz[32];
			fprintf(stderr, "removed %zu entr%s (%s) from %s\n", removed, removed == 1 ? "y" : "ies",
				pv_format_size(freed, sz), dir);
		}
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(e);
	return 0;
}

/* settings.c - the run's settings resolved once (settings.h). */
#include "settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcache.h"
#include "pool.h"
#include "units.h"

static uint64_t mem_total(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

void settings_roots(const struct cli_opts *o, const struct pv_config *cfg, char ***roots, size_t *nroots)
{
	/* roots: command line, else config, else tests/, else . */
	if (o->npaths && !cli_fixture_build(o)) {
		*roots = o->paths;
		*nroots = o->npaths;
	} else if (cfg->nroots) {
		*roots = cfg->roots;
		*nroots = cfg->nroots;
	} else {
		static char *def_tests[] = { "tests" }, *def_dot[] = { "." };
		struct stat st;
		*roots = stat("tests", &st) == 0 && S_ISDIR(st.st_mode) ? def_tests : def_dot;
		*nroots = 1;
	}
}

/* s as a whole number from 1 to max into *out; false if it is not one. */
static bool whole_number(const char *s, long max, uint32_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || end == s || v < 1 || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

int settings_sched(const struct cli_opts *o, const struct pv_config *cfg, struct pv_sched_opts *so)
{
	struct pv_err err;

	/* pool */
	so->pool.memory_bytes = cfg->has_memory ? cfg->memory : mem_total() / 10 * 8;
	so->pool.cpus = cfg->has_cpus ? cfg->cpus : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	{
		double oc = cfg->has_overcommit ? cfg->cpu_overcommit : 1.0;
		if (o->mem && pv_parse_size(o->mem, &so->pool.memory_bytes, &err) < 0)
			return cli_fail("--mem: %s", err.msg);
		if (o->cpus) {
			char *end;
			long v = strtol(o->cpus, &end, 10);
			if (*end || end == o->cpus || v < 1 || v > 65536)
				return cli_fail("--cpus: \"%s\" is not a whole number >= 1", o->cpus);
			so->pool.cpus = (uint32_t)v;
		}
		if (o->overcommit) {
			char *end;
			oc = strtod(o->overcommit, &end);
			if (*end || end == o->overcommit || !(oc > 0) || oc > 1000)
				return cli_fail("--cpu-overcommit: \"%s\" is not a number > 0 (e.g. 1.5)", o->overcommit);
		}
		so->pool.cpus = (uint32_t)(so->pool.cpus * oc + 0.5);
		if (so->pool.cpus < 1)
			so->pool.cpus = 1;
		so->vcpus = cfg->has_vcpus ? cfg->vcpus : so->pool.cpus * PV_VCPU_RATIO;
		if (o->vcpus && !whole_number(o->vcpus, 65536, &so->vcpus))
			return cli_fail("--vcpus: \"%s\" is not a whole number >= 1", o->vcpus);
	}
	if (so->pool.memory_bytes == 0)
		return cli_fail("--mem: the pool needs some memory");
	so->timeout_ceiling_ns = cfg->has_timeout ? cfg->timeout_ns : 0;
	if (o->timeout && pv_parse_duration(o->timeout, &so->timeout_ceiling_ns, &err) < 0)
		return cli_fail("--timeout: %s", err.msg);
	if (o->timeout && so->timeout_ceiling_ns == 0)
		return cli_fail("--timeout: must be more than 0");
	so->psi_threshold = cfg->has_psi ? cfg->psi_threshold : 10.0;
	if (o->psi) {
		char *end;
		so->psi_threshold = strtod(o->psi, &end);
		if (*end || end == o->psi || !(so->psi_threshold >= 0 && so->psi_threshold <= 100))
			return cli_fail("--psi-threshold: \"%s\" is not a percentage from 0 to 100", o->psi);
	}
	so->include_slow = o->include_slow;
	so->fail_fast = o->fail_fast;
	if (o->jobs && !whole_number(o->jobs, 4096, &so->jobs))
		return cli_fail("--jobs: \"%s\" is not a whole number from 1 to 4096", o->jobs);
	/* repl, shell and --debug: the terminal goes to one runner at a time */
	so->interactive = o->debug || o->interactive_cmd;
	so->pause_at = o->at;
	if (so->interactive)
		so->jobs = 1;
	so->tags = o->tags;
	so->ntags = o->ntags;
	so->no_tags = o->no_tags;
	so->nno_tags = o->nno_tags;
	so->tag_meta = o->tag_meta;
	so->ntag_meta = o->ntag_meta;
	so->no_tag_meta = o->no_tag_meta;
	so->nno_tag_meta = o->nno_tag_meta;
	so->config_path = cfg->path;
	return 0;
}

int settings_cache(const struct cli_opts *o, const struct pv_config *cfg, char *dir, size_t len,
		   struct pv_sched_opts *so)
{
	struct pv_err err;

	/* the fixture cache: an explicit choice that does not work is an error;
	 * the default is only needed once a file uses a fixture */
	if (fc_resolve_dir(o->cache_dir, cfg->cache_dir, dir, len, &err) < 0) {
		if (o->cache_dir || getenv("PROVIUM_CACHE_DIR") || cfg->cache_dir || o->fixture_cmd)
			return cli_fail("%s", err.msg);
		fprintf(stderr, "provium: fixtures are unavailable: %s\n", err.msg);
	} else {
		so->cache_dir = dir;
	}
	/* provium list and the fixture admin commands only look */
	if (so->cache_dir && !o->list && (!o->fixture_cmd || cli_fixture_build(o))) {
		size_t removed = 0;
		uint64_t freed = 0;
		if (fc_evict(so->cache_dir, cfg->cache_max_size, &removed, &freed, &err) < 0)
			fprintf(stderr, "provium: fixture cache %s: %s\n", so->cache_dir, err.msg);
		else if (removed) {
			char a[32], b[32];
			fprintf(stderr, "provium: fixture cache over %s: removed %zu least recently used entr%s (%s)\n",
				pv_format_size(cfg->cache_max_size, a), removed, removed == 1 ? "y" : "ies",
				pv_format_size(freed, b));
		}
	}
	return 0;
}

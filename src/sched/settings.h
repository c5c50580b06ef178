/* settings.h - what a run uses, resolved once from the command line
 * (cli.h) over provium.lua (config.h) over the host's defaults: the roots,
 * the pool (memory, cpus, overcommit, vCPUs), the timeout ceiling, the PSI
 * threshold, tags, and the fixture cache directory.
 *
 * Each settings_*() returns 0, or CLI_EXIT_USAGE after printing one line
 * that says which option or key was wrong (cli_fail). Nothing here is
 * allocated: the results point into opts, cfg or static storage, and live
 * as long as they do. */
#ifndef PV_SETTINGS_H
#define PV_SETTINGS_H

#include <stddef.h>

#include "cli.h"
#include "config.h"
#include "scheduler.h"

/* The test roots: the command line's paths, else provium.lua's roots, else
 * tests/ if it is a directory, else "." (provium fixture build's paths are
 * fixtures: they never become roots). */
void settings_roots(const struct cli_opts *o, const struct pv_config *cfg, char ***roots, size_t *nroots);

/* The pool, timeout ceiling, PSI threshold, tags, slow tests and fail-fast
 * into so (other fields untouched). Pool defaults: 80% of MemTotal, the
 * online cpus, overcommit 1.0, PV_VCPU_RATIO vCPUs per pool cpu. */
int settings_sched(const struct cli_opts *o, const struct pv_config *cfg, struct pv_sched_opts *so);

/* The fixture cache (fcache.h) into dir[len], and so->cache_dir = dir when
 * it is usable. An explicit choice (--cache-dir, $PROVIUM_CACHE_DIR,
 * cache_dir, or a provium fixture command) that does not work is an error;
 * an unusable default is a notice: fixtures are unavailable. Unless
 * listing, the cache is then trimmed to cfg->cache_max_size. */
int settings_cache(const struct cli_opts *o, const struct pv_config *cfg, char *dir, size_t len,
		   struct pv_sched_opts *so);

#endif

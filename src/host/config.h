/* config.h - provium.lua, the project configuration.
 *
 * A Lua chunk that returns a table. Keys (all optional):
 *   roots           array of strings    test roots when none are given on the command line
 *   profiles        table name -> table VM profiles (validated by the VM layer; stored raw here
 *                                       as the chunk's source is re-read by runners)
 *   cache_dir       string              fixture cache directory
 *   cache_max_size  size                fixture cache cap (default "20G")
 *   memory          size                pool memory (default 80% of MemTotal; --mem overrides)
 *   cpus            integer >= 1        pool cpus (default online CPUs; --cpus overrides)
 *   cpu_overcommit  number > 0          multiplier on cpus (default 1.0; --cpu-overcommit overrides)
 *   vcpus           integer >= 1        VM vCPUs of all files at once (default 4 x pool cpus; --vcpus)
 *   timeout         duration            per-file timeout ceiling (default 5m; --timeout overrides)
 *   psi_threshold   number 0..100       PSI some-avg10 that pauses dispatch (default 10; 0 disables)
 * An unknown key, or a value of the wrong type, is an error naming the key,
 * what it should be and the config path. The chunk runs in a fresh Lua state
 * with the standard libraries; its errors are reported with file:line.
 */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct pv_config {
	char *path; /* NULL when no config file was used */
	char **roots;
	size_t nroots;
	char *cache_dir;
	uint64_t cache_max_size;
	bool has_memory, has_cpus, has_overcommit, has_vcpus, has_timeout, has_psi;
	uint64_t memory;
	uint32_t cpus;
	double cpu_overcommit;
	uint32_t vcpus;
	uint64_t timeout_ns;
	double psi_threshold;
	bool has_profiles;
};

/* path NULL: use ./provium.lua if it exists, else defaults (ret->path NULL).
 * An explicit path that does not exist is an error. */
int pv_config_load(const char *path, struct pv_config *ret, struct pv_err *err);
void pv_config_release(struct pv_config *c);

#endif

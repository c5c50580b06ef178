/* config.h - provium.lua, the project configuration.
 *
 * A Lua chunk that returns a table. Keys (all optional):
 *   roots           array of strings    test roots when none are given on the command line
 *   profiles        table name -> table VM profiles, checked here (keys, types, kernel and
 *                                       initrd readable); "linux" is built in and cannot be one
 *   cache_dir       string              fixture cache directory
 *   cache_max_size  size                fixture cache cap (default "20G")
 *   memory          size                pool memory (default 80% of MemTotal; --mem overrides)
 *   cpus            integer >= 1        pool cpus (default online CPUs; --cpus overrides)
 *   cpu_overcommit  number > 0          multiplier on cpus (default 1.0; --cpu-overcommit overrides)
 *   vcpus           integer >= 1        VM vCPUs of all files at once (default 4 x pool cpus; --vcpus)
 *   timeout         duration            per-file timeout ceiling (default 5m; --timeout overrides)
 *   psi_threshold   number 0..100       PSI some-avg10 that pauses dispatch (default 10; 0 disables)
 *   lua_memory      size >= 1M          Lua heap limit of each runner (default 256M; a file's
 *                                       provium:claim{memory=} raises it to the claim)
 * An unknown key, or a value of the wrong type, is an error naming the key,
 * what it should be and the config path. The chunk runs in a fresh Lua state
 * with the standard libraries, except os.exit, which raises; its errors are
 * reported with file:line.
 */
#ifndef PV_CONFIG_H
#define PV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Lua heap limit of a runner without lua_memory in provium.lua. */
#define PV_DEFAULT_LUA_MEMORY (UINT64_C(256) << 20)

#define PV_PROFILE_KEYS \
	"kernel, initrd, cmdline, memory, cpus, accel, agent, vmgenid, disks, base, suite, packages, init, mirror, " \
	"build, build_out, build_inputs, boot"

/* A disk of a profile (docs/config.md): the keys of provium:vm's disks,
 * types checked here, the rest by the runner when a VM is made. */
struct pv_profile_disk {
	char *id;
	uint64_t size;   /* 0: none given */
	char *image;     /* NULL: none given; else readable when the config was loaded */
	int readonly, writable, faults; /* -1: not given, else 0 or 1 */
	bool has_seed;
	int64_t seed;
	char *bus;       /* NULL: not given */
};
#define PV_PROFILE_MAX_DISKS 8

/* A VM profile of provium.lua. */
struct pv_profile {
	char *name;
	char *kernel, *initrd; /* readable when the config was loaded */
	char *cmdline;         /* NULL: none */
	uint64_t memory;       /* 0: the VM default */
	uint32_t cpus;         /* 0: the VM default */
	int accel;             /* -1 auto, 0 tcg, 1 kvm */
	bool agent_included;
	bool vmgenid; /* the kernel has CONFIG_VMGENID: QEMU gets a vmgenid device */
	bool boot_cold; /* boot = "cold": its VMs never resume a template (docs/lua-api.md, "Warm boot") */
	bool has_disks;
	struct pv_profile_disk *disks; /* ndisks of them: every VM of the profile gets them */
	size_t ndisks;
	/* base = "debian": a root file system built from Debian packages
	 * (src/host/dimage.c, docs/images.md); kernel and initrd are then optional */
	char *base;       /* NULL: none; else "debian" */
	char *suite;      /* NULL: the host's own */
	char *mirror;     /* NULL: the host's apt sources */
	char **packages;  /* npackages names, sorted, no duplicates */
	size_t npackages;
	bool init_systemd; /* init = "systemd": systemd is PID 1, the agent a unit */
	/* build = "make -C kernel O={out}": a command that makes the profile's
	 * files, run before any VM boots (src/host/pbuild.c, docs/config.md).
	 * "{out}" in build, kernel, initrd and disks' image is build_out; those
	 * paths are checked after the build, not when the config loads. */
	char *build;           /* NULL: none (with {out} expanded) */
	char *build_out;       /* the output directory (default .provium-out/NAME) */
	char **build_inputs;   /* nbuild_inputs paths whose mtimes key the build */
	size_t nbuild_inputs;
};

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
	struct pv_profile *profiles;
	size_t nprofiles;
	uint64_t lua_memory;
};

/* path NULL: use ./provium.lua if it exists, else defaults (ret->path NULL).
 * An explicit path that does not exist is an error. */
int pv_config_load(const char *path, struct pv_config *ret, struct pv_err *err);
/* The same from the file's text (path only names it in messages): the
 * loader's bytes-in entry, used by pv_config_load and the fuzz target. */
int pv_config_load_buf(const char *path, const char *src, size_t len, struct pv_config *ret, struct pv_err *err);
void pv_config_release(struct pv_config *c);
/* The profile named name, or NULL. */
const struct pv_profile *pv_config_profile(const struct pv_config *c, const char *name);

/* For "did you mean": the name of known[0..n) closest to key (case-insensitive
 * edit distance at most max_dist, and less than key's length), or NULL. */
const char *pv_closest_name(const char *key, const char *const *known, size_t n, size_t max_dist);

#endif

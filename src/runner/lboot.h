/* lboot.h - a VM's boot options (docs/lua-api.md, "Boot options"): the
 * kernel command line, files put in the guest before its agent answers, the
 * guest's clock at power-on and how long to wait for the agent. They are
 * keys of provium:vm(name, profile, opts) and of vm:boot(opts), which
 * overrides them key by key. */
#ifndef PROVIUM_LBOOT_H
#define PROVIUM_LBOOT_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "err.h"

struct lboot_file {
	char *path, *data;
	size_t len;
	uint32_t mode;
};

struct lboot {
	char *cmdline;        /* replaces the profile's; NULL keeps it */
	char *cmdline_append; /* after it; NULL: nothing */
	char rtc_base[32];    /* QEMU -rtc base= (UTC), "" for the host's time */
	uint64_t agent_timeout_ns; /* 0: the default */
	struct lboot_file *files;
	size_t nfiles;
	bool has_files; /* files given, even an empty list (it overrides) */
	/* The rng_seed option: given by the test, else picked (random, 64
	 * bits) by the VM's boot, or the fixture's when resumed from one. */
	uint64_t rng_seed;
	bool rng_seed_given;   /* rng_seed given in provium:vm or vm:boot */
	bool rng_seed_fixed;   /* rng_seed is this VM's seed (given, picked or resumed) */
	bool rng_seed_unknown; /* resumed from a fixture entry that did not record one */
	bool rng_seed_logged;  /* the log line went out for this seed */
	/* boot = "cold" | "warm" (ltemplate.h): 0 not given */
	int mode;
};
enum { LBOOT_COLD = 1, LBOOT_WARM = 2 };

/* The option keys lboot_parse reads, NULL-terminated, for opts_check lists. */
#define LBOOT_KEYS "cmdline", "cmdline_append", "files", "initial_time", "agent_timeout", "rng_seed", "boot"

/* Reads the boot keys of the (checked) options table at idx over *b: each
 * key given replaces what b had. Raises on a bad value, b unchanged. */
void lboot_parse(lua_State *L, int idx, const char *what, struct lboot *b);
void lboot_free(struct lboot *b);
/* A zeroed struct lboot in a userdata pushed on L, freed when collected:
 * options read before their VM exists (move them out and zero the box). */
struct lboot *lboot_box(lua_State *L);

/* The command line after provium's own words: the profile's (or
 * b->cmdline), b->cmdline_append, extra, then provium.rng_seed=N. malloc'd;
 * NULL with *err when it is too long for the kernel.
 *
 * It is the one call of a VM's boot (and fixture resume) into lboot, so it
 * also fixes the seed: b->rng_seed as given, else the one a resume set, else
 * a random one picked now (kept by later calls: vm:reset and vm:restore
 * keep the boot's command line), and logs "vm VM_NAME: rng_seed N" once per
 * seed. */
char *lboot_cmdline(struct lboot *b, const char *vm_name, const char *profile_cmdline, const char *extra,
		    struct pv_err *err);

/* The seed as a decimal string into out[24]. */
void lboot_seed_str(uint64_t seed, char out[24]);
/* Parses rng_seed at -1 (raises with what allowed values are). */
uint64_t lboot_seed_arg(lua_State *L, const char *what);

/* vm:rng_seed() into the VM methods table at `methods`. */
void lboot_install(lua_State *L, int methods);

/* b's files: writes base followed by a cpio of them to out (the agent
 * moves them in place at startup). 0, or <0 with *err. */
int lboot_initrd(const struct lboot *b, const char *base, const char *out, uint64_t memory, struct pv_err *err);

#endif

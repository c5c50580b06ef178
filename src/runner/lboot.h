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
};

/* The option keys lboot_parse reads, NULL-terminated, for opts_check lists. */
#define LBOOT_KEYS "cmdline", "cmdline_append", "files", "initial_time", "agent_timeout"

/* Reads the boot keys of the (checked) options table at idx over *b: each
 * key given replaces what b had. Raises on a bad value, b unchanged. */
void lboot_parse(lua_State *L, int idx, const char *what, struct lboot *b);
void lboot_free(struct lboot *b);
/* A zeroed struct lboot in a userdata pushed on L, freed when collected:
 * options read before their VM exists (move them out and zero the box). */
struct lboot *lboot_box(lua_State *L);

/* The command line after provium's own words: the profile's (or
 * b->cmdline), b->cmdline_append, then extra. malloc'd; NULL with *err when
 * it is too long for the kernel. */
char *lboot_cmdline(const struct lboot *b, const char *profile_cmdline, const char *extra, struct pv_err *err);

/* b's files: writes base followed by a cpio of them to out (the agent
 * moves them in place at startup). 0, or <0 with *err. */
int lboot_initrd(const struct lboot *b, const char *base, const char *out, uint64_t memory, struct pv_err *err);

#endif

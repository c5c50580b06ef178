/* fixkey.h - naming fixtures and computing their cache keys.
 *
 * A fixture is ROOT/NAME.fixture.lua; NAME is root-relative with forward
 * slashes and no suffix. Its key (fcache.h) hashes:
 *   - the provium version and the agent protocol version;
 *   - NAME and the builder's source;
 *   - every helper it require()s with a literal name, transitively (module
 *     "a.b" is ROOT/a/b.lua or ROOT/a/b/init.lua under the first root that has
 *     it; a module found under no root is hashed by name only);
 *   - the keys of the fixtures it references (vm_fixture / lab_fixture with a
 *     literal name), in source order;
 *   - the environment: the built-in image's kernel, initrd and agent.cpio, every
 *     profile of provium.lua (its settings, and path, size and mtime of its
 *     kernel and initrd), and $PROVIUM_GUEST_CMDLINE.
 * Editing any of them gives a new key, so the old entry is simply not found
 * (and later evicted, or listed by `provium fixture stale`).
 */
#ifndef PV_FIXKEY_H
#define PV_FIXKEY_H

#include <stddef.h>

#include "err.h"
#include "fcache.h"

#define FX_SUFFIX ".fixture.lua"

/* "dir/name" or "dir/name.fixture.lua" -> "dir/name". Rejects an empty name,
 * an absolute path, "." or ".." components and backslashes. */
int fx_normalize(const char *ref, char *out, size_t len, struct pv_err *err);

/* ROOT/name.fixture.lua of the first root that has it. */
int fx_find(const char *const *roots, size_t nroots, const char *name, char *out, size_t len, struct pv_err *err);

/* The cache key of fixture `name` (normalized). config_path may be NULL. */
int fx_key(const char *const *roots, size_t nroots, const char *config_path, const char *name,
	   char out[FC_KEY_LEN + 1], struct pv_err *err);

/* The whole file, malloc'd (NULL with errno set on failure). */
char *fx_read_file(const char *path, size_t *len);

#endif

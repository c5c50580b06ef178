/* lhostfile.h - host files a test brings into its guests (docs/lua-api.md,
 * "Host files"): vm:push_file(host_path, guest_path, {mode =}) and
 * provium:depends_on_file(path). A relative host path resolves against the
 * directory of the Lua file that makes the call (the test, fixture or helper
 * module). In a fixture builder both must name their file with a literal
 * string: the fixture's cache key hashes the contents of the files named so
 * (src/fixture/fixkey.c), before the builder runs, so editing one rebuilds
 * the fixture. */
#ifndef PV_LHOSTFILE_H
#define PV_LHOSTFILE_H

#include <lua.h>

/* vm:push_file into the VM methods table at methods; provium:depends_on_file. */
void lhostfile_install(lua_State *L, int methods);
/* A host path given by the test, resolved as push_file resolves one (a
 * relative one against the calling Lua file's directory) into out; raises
 * unless it names a regular file. */
const char *lhostfile_path(lua_State *L, const char *path, const char *what, char *out, size_t len);
/* The same for a directory (a share's host side). */
const char *lhostfile_dir(lua_State *L, const char *path, const char *what, char *out, size_t len);

#endif

/* lfx.h - fixtures in the Lua API: provium.vm_fixture / provium.lab_fixture
 * (docs/lua-api.md, "Fixtures") and `provium fixture build|rebuild`.
 * Implemented in src/runner/lfx.c (to move to src/runner/lfx.c). A
 * fixture is resumed from its cache entry (fcache.h) when one exists for its
 * key (fixkey.h); otherwise the first file to get the key's lock builds it in
 * a fresh Lua state (runner_builder_state; its VMs end with that state), and
 * everyone resumes that entry as VMs of the caller's current scope.
 */
#ifndef PV_LFX_H
#define PV_LFX_H

#include <lua.h>

/* provium.vm_fixture / provium.lab_fixture into the provium table on top of L. */
void lfx_install(lua_State *L);
/* Builds fixture `name` (arg 1; arg 2: force a rebuild) now and returns its
 * cache key; raises on failure. */
int lfx_build_cmd(lua_State *L);

#endif

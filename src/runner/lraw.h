/* lraw.h - raw calls of the Lua API (docs/lua-api.md, "Raw calls"):
 * vm:syscall, vm:syscall_async and the Call it returns (await, cancel),
 * vm:ioctl and vm:read_mem. Each runs in the agent's own process (or a
 * worker's, through lworker.c) and returns what the kernel said; a failing
 * call is a result (errno), not an error. A Call is a scope resource
 * (SCOPE_PROCESS): one never awaited is cancelled at its scope's end.
 */
#ifndef PV_LRAW_H
#define PV_LRAW_H

#include <lua.h>

/* Adds the raw calls to the VM methods table at index methods. */
void lraw_install(lua_State *L, int methods);

#endif

/* lfile.h - guest file handles and the guest clock of the Lua API
 * (docs/lua-api.md, "Files" and "The clock").
 *
 * vm:open_file(path, opts) returns a File: read(n), read_all(), write(data),
 * seek(offset, whence), tell(), close(), tail_stream(opts). A File is a scope
 * resource (SCOPE_FILE), closed at its scope's end, by close() or `<close>`,
 * or by the GC (the guest's file_close is then deferred with lvm_defer). It
 * lives in the guest's agent: it survives an agent reconnect, not a restore
 * or reboot of its VM (then its ops raise).
 *
 * vm:clock() returns the VM's Clock: get(), set(t), advance(duration),
 * sleep(duration), all on the guest's own clock.
 */
#ifndef PV_LFILE_H
#define PV_LFILE_H

#include <lua.h>
#include <stdint.h>

/* Adds vm:open_file and vm:clock to the VM methods at index methods. */
void lfile_install(lua_State *L, int methods);
/* The agent's handle of the open File at idx (raises as its methods do). */
uint32_t lfile_handle(lua_State *L, int idx);

#endif

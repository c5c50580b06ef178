/* lconsole.h - vm:console() and the Console it returns: console:expect
 * (waits with inotify on the serial log until a Lua pattern matches after the
 * previous match), console:read_log, console:read (a Stream of the log) and
 * console:write (types bytes into the guest's ttyS0 through the FIFO QEMU
 * reads its serial input from, vm.h) (docs/lua-api.md). A Console is a plain
 * table {path=, offset=}: it holds no host resource between calls; the fds a
 * call opens live in GC'd boxes (scope_fd_box), so an error raised in the
 * middle (a malformed pattern, the Lua memory limit) leaks none.
 */
#ifndef PV_LCONSOLE_H
#define PV_LCONSOLE_H

#include <lua.h>

/* Adds vm:console to the VM methods table at index methods, and the Console class. */
void lconsole_install(lua_State *L, int methods);

#endif

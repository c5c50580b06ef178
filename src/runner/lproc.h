/* lproc.h - guest processes of the Lua API: vm:run_async and the Process it
 * returns (p:wait, p:kill, p:pid, p:stdin_write, p:close_stdin;
 * docs/lua-api.md, "Virtual machines").
 *
 * A Process is a scope resource (scope.h) of kind SCOPE_PROCESS: it is closed
 * at the end of the test (or file) that started it, at the end of a
 * `local p <close>` block, or when the GC collects it, whichever comes first.
 * Closing a process that was not waited for kills its process group
 * (SIGKILL) and waits for it, so the agent releases its handle. A finalizer
 * may run in the middle of another request to the same agent, so a process
 * closed by the GC is only queued on its VM (struct lvm_reap); the queue is
 * worked off at the next safe point: the next op on that VM (lvm_running) or
 * the end of a scope. Ops on a closed process raise "process N was closed".
 * A process never outlives the QEMU it ran in: once its VM is shut down,
 * dead or restored, closing it does nothing.
 */
#ifndef PV_LPROC_H
#define PV_LPROC_H

#include <lua.h>

struct lvm;

/* Adds vm:run_async to the VM methods table at index methods, and the
 * Process class. */
void lproc_install(lua_State *L, int methods);
/* Kills process group `proc` of v and waits for it, releasing the handle.
 * Never raises; a transport failure marks v dead. */
void lproc_kill_release(struct lvm *v, uint32_t proc);
/* The signal at idx: a number, a name ("TERM", "SIGTERM"), or none (15). */
int lproc_signal_arg(lua_State *L, int idx);

#endif

/* lworker.h - workers of the Lua API (docs/lua-api.md, "Workers"):
 * vm:spawn_worker{uid, gid, groups, caps, unshare, cwd} returns a Worker, a
 * separate agent process in the guest with those credentials and namespaces
 * (src/agent/worker.c). worker:run, run_async, syscall, syscall_async, ioctl,
 * read_mem, open_file, read_file, write_file, stat, listdir, mkdir, unlink,
 * rename, tail_file, push_file, batch and clock are the VM's own methods with
 * every request addressed to the worker (agent_conn.route); kill, join, close,
 * pid, handle and creation_site are its own.
 *
 * A Worker is a scope resource (SCOPE_WORKER, closed after the processes,
 * files and streams of its scope): closing joins it, which ends its
 * processes, within CLOSE_JOIN_MS before the agent kills it. A finalizer
 * defers that (LVM_REAP_WORKER). Snapshots of a VM with a worker are refused,
 * naming each one and where it was spawned.
 */
#ifndef PV_LWORKER_H
#define PV_LWORKER_H

#include <lua.h>
#include <stdint.h>

struct lvm;

/* Adds vm:spawn_worker to the VM methods at index methods, and the Worker class. */
void lworker_install(lua_State *L, int methods);
/* Joins worker n of v (the agent kills it when it takes long). Never raises. */
void lworker_release(struct lvm *v, uint32_t n);
/* Raises "<op> of VM refused: ..." when v has workers open. */
void lworker_refuse_open(lua_State *L, struct lvm *v, const char *op);

#endif

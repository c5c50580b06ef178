/* lbatch.h - vm:batch(fn): many guest ops in one round trip
 * (docs/lua-api.md, "Batches"). fn(b) queues ops with b:run, b:read_file,
 * b:write_file, b:stat, b:listdir, b:mkdir, b:unlink and b:rename (the
 * arguments of the vm: calls of those names); when it returns, every request
 * goes to the agent in one write and vm:batch returns the list of what each
 * call would have returned (true for the ops that return nothing). */
#ifndef PV_LBATCH_H
#define PV_LBATCH_H

#include <lua.h>

/* Adds vm:batch to the VM methods table at index methods. */
void lbatch_install(lua_State *L, int methods);

#endif

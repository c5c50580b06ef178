/* lguest.h - one-round-trip guest ops of the Lua API: vm:run and its
 * RunResult, and the file ops (vm:read_file, vm:write_file, vm:stat,
 * vm:listdir, vm:mkdir, vm:unlink, vm:rename; docs/lua-api.md). Each op checks
 * its arguments, takes the running VM (lvm_running), packs one agent request
 * and raises on its failure; it holds nothing between calls, so it needs no
 * scope.
 */
#ifndef PV_LGUEST_H
#define PV_LGUEST_H

#include <lua.h>
#include <msgpack.h>
#include <stdint.h>

#include "agent_client.h"
#include "ctl.h"

/* The option keys of vm:run and vm:run_async. */
extern const char *const lguest_cmd_keys[];

/* Where an op's request goes: one call (f NULL: a->out) or the frames of
 * a vm:batch. */
struct lguest_sink {
	struct agent_conn *a;
	struct agent_frames *f;
};

/* The ops, "run" first, NULL-terminated by name. pack checks the arguments
 * at base.. (those of vm:<name> after the VM) and packs one request, raising
 * on a bad one; it returns the op's own time limit in ns (0: none). push
 * pushes what vm:<name> returns from the answer m (args still at base) and
 * returns how many values. */
struct lguest_op {
	const char *name;
	uint64_t (*pack)(lua_State *L, struct lguest_sink *s, int base);
	int (*push)(lua_State *L, const struct ctl_msg *m, int base);
	int opts_arg; /* its options table is at base + opts_arg (checked first), if opts_keys */
	const char *opts_what;
	const char *const *opts_keys;
};
extern const struct lguest_op lguest_ops[];

/* Adds the ops to the VM methods table at index methods, and the RunResult class. */
void lguest_install(lua_State *L, int methods);

/* How many request fields lguest_pack_cmd packs for the options at opts. */
unsigned lguest_count_cmd_args(lua_State *L, int opts);
/* Packs the command at cmd (a shell string or an argv array) and the options
 * at opts (checked by the caller) shared by exec and spawn; returns the
 * command's timeout in ns (0: none). May raise (a bad option value). */
uint64_t lguest_pack_cmd(lua_State *L, msgpack_packer *pk, int cmd, int opts);
/* Pushes the RunResult of an exec/wait answer; cmd_idx (0: none) is the
 * command, shown in messages. */
void lguest_push_result(lua_State *L, const struct ctl_msg *m, int cmd_idx);

#endif

/* lbatch.c - vm:batch (lbatch.h).
 *
 * The agent starts requests in the order they arrive: the file ops of a
 * batch run one after another, in order; a run starts its command and the
 * next op starts at once (the commands of one batch run side by side, as
 * with run_async). Answers come in any order and are matched by id. A raise
 * inside fn sends nothing. When ops fail, every answer is still read, then
 * vm:batch raises naming the first failed op (the others ran: a batch is
 * not a transaction).
 */
#include "lbatch.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"
#include "lguest.h"
#include "lvm.h"
#include "opts.h"

#define BATCH_MT "provium.batch"
#define BATCH_MAX 100000

struct batch {
	struct lvm *v;
	struct agent_frames f;
	bool open;           /* fn is running: ops may be queued */
	bool unbounded;      /* a run without any time limit */
	uint64_t longest_ns; /* the longest op time limit */
};

static int batch_gc(lua_State *L)
{
	struct batch *b = luaL_checkudata(L, 1, BATCH_MT);
	agent_frames_release(&b->f);
	return 0;
}

/* b:<op>(...): checks and packs the request now, keeps its arguments (a
 * RunResult names its command) in the batch's list. */
static int queue(lua_State *L)
{
	const struct lguest_op *op = lua_touserdata(L, lua_upvalueindex(1));
	struct batch *b = luaL_checkudata(L, 1, BATCH_MT);
	if (!b->open)
		return luaL_error(L, "batch:%s: the batch was sent; queue ops only inside the function given to vm:batch",
				  op->name);
	if (b->f.n >= BATCH_MAX)
		return luaL_error(L, "vm:batch: at most %d ops in one batch", BATCH_MAX);
	if (op->opts_keys)
		opts_check(L, 2 + op->opts_arg, op->opts_what, op->opts_keys);
	struct lguest_sink sk = { &b->v->vm.agent, &b->f };
	int top = lua_gettop(L);
	uint64_t t = op->pack(L, &sk, 2);
	if (!strcmp(op->name, "run") && !t)
		b->unbounded = true;
	t = t ? t + LVM_HOST_MARGIN_NS : lvm_op_timeout();
	if (t > b->longest_ns)
		b->longest_ns = t;
	lua_settop(L, top);
	/* the record: {op, args...} */
	lua_getiuservalue(L, 1, 1);
	lua_createtable(L, top, 0);
	lua_pushlightuserdata(L, (void *)op);
	lua_rawseti(L, -2, 1);
	for (int i = 2; i <= top; i++) {
		lua_pushvalue(L, i);
		lua_rawseti(L, -2, i);
	}
	lua_pushinteger(L, top);
	lua_setfield(L, -2, "n");
	lua_rawseti(L, -2, (lua_Integer)b->f.n);
	lua_pushinteger(L, (lua_Integer)b->f.n);
	return 1; /* its index in the results */
}

static int l_batch(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "batch");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	struct batch *b = lua_newuserdatauv(L, sizeof(*b), 1); /* 3 */
	memset(b, 0, sizeof(*b));
	agent_frames_init(&b->f);
	b->v = v;
	b->open = true;
	luaL_setmetatable(L, BATCH_MT);
	lua_newtable(L);
	lua_setiuservalue(L, 3, 1);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_call(L, 1, 0);
	b->open = false;
	lua_createtable(L, (int)b->f.n, 0); /* 4: the results */
	if (b->f.n == 0)
		return 1;
	v = lvm_running(L, 1, "batch"); /* fn may have shut it down */
	struct pv_err err;
	if (agent_frames_send(&v->vm.agent, &b->f, &err) < 0)
		return lvm_died(L, v, "batch", err.msg);
	lua_getiuservalue(L, 3, 1); /* 5: the records */
	uint64_t deadline = b->unbounded ? 0 : pv_mono_ns() + b->longest_ns;
	uint32_t failed = 0;
	char first_err[600] = "";
	for (uint32_t k = 0; k < b->f.n; k++) {
		uint32_t id;
		int e = 0;
		int rc = agent_next_answer(&v->vm.agent, &b->f, deadline, &id, &e, &err);
		if (rc < 0 && rc != -EREMOTEIO)
			return lvm_died(L, v, "batch", err.msg);
		lua_Integer i = (lua_Integer)(id - b->f.first_id) + 1;
		lua_rawgeti(L, 5, i); /* the record */
		int rec = lua_gettop(L);
		const struct lguest_op *op = (lua_rawgeti(L, rec, 1), lua_touserdata(L, -1));
		lua_pop(L, 1);
		if (rc == -EREMOTEIO) {
			if (!failed++)
				snprintf(first_err, sizeof(first_err), "op %lld (%s): %.500s", (long long)i, op->name, err.msg);
			lua_pushboolean(L, 0);
		} else {
			lua_getfield(L, rec, "n");
			int n = (int)lua_tointeger(L, -1);
			lua_pop(L, 1);
			int base = lua_gettop(L) + 1;
			for (int a = 2; a <= n; a++)
				lua_rawgeti(L, rec, a);
			int nret = op->push(L, &v->vm.agent.resp, base);
			if (nret == 0)
				lua_pushboolean(L, 1);
			lua_replace(L, base);
			lua_settop(L, base);
		}
		lua_rawseti(L, 4, i);
		lua_settop(L, 5);
	}
	if (failed)
		return luaL_error(L, "VM '%s': vm:batch: %s%s", v->name, first_err,
				  failed > 1 ? lua_pushfstring(L, " (and %d more failed)", (int)failed - 1) : "");
	lua_settop(L, 4);
	return 1;
}

void lbatch_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_batch);
	lua_setfield(L, methods, "batch");
	luaL_newmetatable(L, BATCH_MT);
	lua_newtable(L);
	for (const struct lguest_op *op = lguest_ops; op->name; op++) {
		lua_pushlightuserdata(L, (void *)op);
		lua_pushcclosure(L, queue, 1);
		lua_setfield(L, -2, op->name);
	}
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, batch_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
}

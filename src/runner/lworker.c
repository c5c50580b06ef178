/* lworker.c - workers (contract in lworker.h). */
#include "lworker.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lproc.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "scope.h"

struct lworker {
	struct scope_res res; /* first: a worker is a scope resource */
	struct lvm *v;        /* kept alive by uservalue 1 */
	struct lworker *next; /* v->workers */
	uint32_t n;           /* the agent's worker number */
	int64_t pid;
	unsigned gen;
	bool joined; /* worker:join answered: nothing left in the guest */
	char site[200];
};

/* How long closing lets a worker end its processes before the agent kills it. */
#define CLOSE_JOIN_MS 3000u

static void pack_key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

static void unlink_worker(struct lworker *w)
{
	if (!w->v)
		return;
	for (struct lworker **pp = &w->v->workers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
}

/* Sends worker_join {worker, timeout_ms}; the agent answers once it exited. */
static int join(struct lvm *v, uint32_t n, uint64_t timeout_ms, int *e, struct pv_err *err)
{
	msgpack_packer *pk = agent_begin(&v->vm.agent, "worker_join", 2);
	pack_key(pk, "worker");
	msgpack_pack_uint32(pk, n);
	pack_key(pk, "timeout_ms");
	msgpack_pack_uint64(pk, timeout_ms);
	return agent_call(&v->vm.agent, pv_mono_ns() + timeout_ms * 1000000ull + lvm_op_timeout(), e, err);
}

void lworker_release(struct lvm *v, uint32_t n)
{
	struct pv_err err;
	int e = 0;
	if (join(v, n, CLOSE_JOIN_MS, &e, &err) < 0 && v->vm.agent.dead)
		lvm_mark_dead(v, err.msg);
}

static void worker_close(struct scope_res *r, enum scope_how how)
{
	struct lworker *w = (struct lworker *)r;
	struct lvm *v = w->v;
	unlink_worker(w);
	if (!w->n || w->joined || !v || v->state != LVM_RUNNING || v->gen != w->gen)
		return; /* never started, or its QEMU is gone */
	if (how != SCOPE_BY_GC && !v->paused)
		lworker_release(v, w->n);
	else
		lvm_defer(v, LVM_REAP_WORKER, w->n, w->gen);
}

static const struct scope_ops worker_ops = { SCOPE_WORKER, "provium.worker", worker_close, NULL, NULL };

static void check_int_list(lua_State *L, int opts, const char *key, int want)
{
	if (lua_getfield(L, opts, key) != LUA_TNIL) {
		if (!lua_istable(L, -1))
			luaL_error(L, "vm:spawn_worker: %s must be a list, got %s", key, luaL_typename(L, -1));
		for (lua_Integer i = 1; i <= luaL_len(L, -1); i++) {
			int t = lua_geti(L, -1, i);
			if (want == LUA_TNUMBER ? !lua_isinteger(L, -1) : t != LUA_TSTRING)
				luaL_error(L, "vm:spawn_worker: %s[%d] must be %s, got %s", key, (int)i,
					   want == LUA_TNUMBER ? "an integer" : "a string", luaL_typename(L, -1));
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* vm:spawn_worker{uid =, gid =, groups =, caps =, unshare =, cwd =} */
static int l_spawn_worker(lua_State *L)
{
	static const char *const keys[] = { "uid", "gid", "groups", "caps", "unshare", "cwd", NULL };
	bool has = opts_check(L, 2, "vm:spawn_worker options", keys);
	unsigned fields = 0;
	if (has) {
		for (int i = 0; i < 2; i++) {
			if (lua_getfield(L, 2, keys[i]) != LUA_TNIL && !lua_isinteger(L, -1))
				luaL_error(L, "vm:spawn_worker: %s must be an integer, got %s", keys[i], luaL_typename(L, -1));
			lua_pop(L, 1);
		}
		check_int_list(L, 2, "groups", LUA_TNUMBER);
		check_int_list(L, 2, "caps", LUA_TSTRING);
		check_int_list(L, 2, "unshare", LUA_TSTRING);
		if (lua_getfield(L, 2, "cwd") != LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "vm:spawn_worker: cwd must be a string, got %s", luaL_typename(L, -1));
		lua_pop(L, 1);
		for (int i = 0; keys[i]; i++) {
			fields += lua_getfield(L, 2, keys[i]) != LUA_TNIL;
			lua_pop(L, 1);
		}
	}
	struct lvm *v = lvm_running(L, 1, "spawn_worker");
	lua_settop(L, 2);
	struct lworker *w = lua_newuserdatauv(L, sizeof(*w), 1);
	memset(w, 0, sizeof(*w));
	luaL_setmetatable(L, worker_ops.tname);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	runner_where(L, w->site, sizeof(w->site));
	scope_add(L, &w->res, &worker_ops);
	msgpack_packer *pk = agent_begin(&v->vm.agent, "worker_spawn", fields);
	for (int i = 0; has && keys[i]; i++) {
		int t = lua_getfield(L, 2, keys[i]);
		if (t == LUA_TNIL) {
			lua_pop(L, 1);
			continue;
		}
		pack_key(pk, keys[i]);
		if (t == LUA_TNUMBER) {
			msgpack_pack_int64(pk, (int64_t)lua_tointeger(L, -1));
		} else if (t == LUA_TSTRING) {
			size_t l;
			const char *s = lua_tolstring(L, -1, &l);
			msgpack_pack_str_with_body(pk, s, l);
		} else {
			lua_Integer n = luaL_len(L, -1);
			msgpack_pack_array(pk, (size_t)n);
			for (lua_Integer j = 1; j <= n; j++) {
				if (lua_geti(L, -1, j) == LUA_TNUMBER) {
					msgpack_pack_int64(pk, (int64_t)lua_tointeger(L, -1));
				} else {
					size_t l;
					const char *s = lua_tolstring(L, -1, &l);
					msgpack_pack_str_with_body(pk, s, l);
				}
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	lvm_call(L, v, "spawn_worker", 0);
	int64_t n = 0, pid = 0;
	ctl_get_int(&v->vm.agent.resp, "worker", &n);
	ctl_get_int(&v->vm.agent.resp, "pid", &pid);
	w->v = v;
	w->n = (uint32_t)n;
	w->pid = pid;
	w->gen = v->gen;
	w->next = v->workers;
	v->workers = w;
	return 1;
}

/* The worker at 1, open, in its running VM. */
static struct lworker *check_worker(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	if (!w->n)
		return (luaL_error(L, "this worker never started"), NULL);
	if (w->res.closed)
		return (luaL_error(L, "worker %d (spawned at %s) was closed or joined: its processes are gone",
				   (int)w->n, w->site), NULL);
	lua_getiuservalue(L, 1, 1);
	lvm_running(L, -1, "worker operations");
	lua_pop(L, 1);
	if (w->v->gen != w->gen)
		return (luaL_error(L, "worker %d ran in VM '%s' before it was reset or restored: it is gone", (int)w->n,
				   w->v->name), NULL);
	return w;
}

/* worker:<op>(...): vm:<op>(...) with every request addressed to the worker.
 * What it returns (a Process, a File, a Stream) names a handle of the
 * worker's, so the agent routes its later ops there by itself. */
static int w_forward(lua_State *L)
{
	struct lworker *w = check_worker(L);
	int nargs = lua_gettop(L), rc;
	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, lua_tostring(L, lua_upvalueindex(1)));
	lua_insert(L, 1);
	lua_replace(L, 2); /* the VM in place of the worker */
	w->v->vm.agent.route = w->n;
	rc = lua_pcall(L, nargs, LUA_MULTRET, 0);
	w->v->vm.agent.route = 0;
	if (rc != LUA_OK)
		return lua_error(L);
	return lua_gettop(L);
}

static int w_kill(lua_State *L)
{
	struct lworker *w = check_worker(L);
	int sig = lproc_signal_arg(L, 2);
	msgpack_packer *pk = agent_begin(&w->v->vm.agent, "worker_kill", 2);
	pack_key(pk, "worker");
	msgpack_pack_uint32(pk, w->n);
	pack_key(pk, "signal");
	msgpack_pack_int(pk, sig);
	lvm_call(L, w->v, "worker:kill", 0);
	return 0;
}

/* worker:join(timeout?): ends the worker's input, so it ends its processes
 * and exits (killed when it takes longer than timeout, default 10 s); returns
 * its exit code, or 128 + the signal that killed it, then the status. */
static int w_join(lua_State *L)
{
	struct lworker *w = check_worker(L);
	uint64_t t = lua_isnoneornil(L, 2) ? 10000000000ull : opts_duration(L, 2, "worker:join");
	struct pv_err err;
	int e = 0;
	int64_t code = 0, sig = 0;
	char *status;
	uint64_t ms = t / 1000000 ? t / 1000000 : 1;
	if (join(w->v, w->n, ms, &e, &err) < 0) {
		if (w->v->vm.agent.dead)
			return lvm_died(L, w->v, "worker:join", err.msg);
		return luaL_error(L, "worker:join: %s", err.msg);
	}
	w->joined = true;
	scope_close(&w->res, SCOPE_BY_USER);
	status = ctl_get_strdup(&w->v->vm.agent.resp, "status");
	bool signalled = status && !strcmp(status, "signalled");
	ctl_get_int(&w->v->vm.agent.resp, "exit_code", &code);
	ctl_get_int(&w->v->vm.agent.resp, "signal", &sig);
	lua_pushinteger(L, signalled ? 128 + sig : code);
	lua_pushstring(L, status ? status : "exited");
	free(status);
	return 2;
}

static int w_close(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	if (w->n && !w->res.closed)
		scope_close(&w->res, SCOPE_BY_USER);
	return 0;
}

static int w_pid(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	lua_pushinteger(L, w->pid);
	return 1;
}

static int w_handle(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	lua_pushinteger(L, w->n);
	return 1;
}

static int w_site(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	lua_pushstring(L, w->site);
	return 1;
}

static int w_tostring(lua_State *L)
{
	struct lworker *w = luaL_checkudata(L, 1, worker_ops.tname);
	lua_pushfstring(L, "provium.worker(%d, pid %d, spawned at %s)", (int)w->n, (int)w->pid, w->site);
	return 1;
}

void lworker_refuse_open(lua_State *L, struct lvm *v, const char *op)
{
	luaL_Buffer b;
	int n = 0;
	for (struct lworker *w = v->workers; w; w = w->next)
		n += w->gen == v->gen; /* one of an agent before a reset or restore is gone */
	if (!n)
		return;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "%s of VM '%s' refused: %d worker%s of it %s running (join or close them first):", op,
			v->name, n, n == 1 ? "" : "s", n == 1 ? "is" : "are");
	luaL_addvalue(&b);
	for (struct lworker *w = v->workers; w; w = w->next) {
		if (w->gen != v->gen)
			continue;
		lua_pushfstring(L, " worker %d, spawned at %s;", (int)w->n, w->site);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lua_error(L);
}

void lworker_install(lua_State *L, int methods)
{
	static const char *const forwarded[] = {
		"run", "run_async", "syscall", "syscall_async", "ioctl", "read_mem", "open_file", "read_file",
		"write_file", "stat", "listdir", "mkdir", "unlink", "rename", "tail_file", "push_file", "batch",
		"clock", NULL,
	};
	static const luaL_Reg own[] = {
		{ "kill", w_kill }, { "join", w_join }, { "close", w_close }, { "pid", w_pid },
		{ "handle", w_handle }, { "creation_site", w_site }, { NULL, NULL },
	};
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_spawn_worker);
	lua_setfield(L, methods, "spawn_worker");
	luaL_newlib(L, own);
	for (int i = 0; forwarded[i]; i++) {
		lua_pushstring(L, forwarded[i]);
		lua_pushcclosure(L, w_forward, 1);
		lua_setfield(L, -2, forwarded[i]);
	}
	scope_set_methods(L, &worker_ops);
	luaL_getmetatable(L, worker_ops.tname);
	lua_pushcfunction(L, w_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}

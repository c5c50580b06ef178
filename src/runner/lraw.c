/* lraw.c - raw calls (contract in lraw.h). */
#include "lraw.h"

#include <errno.h>
#include <lauxlib.h>
#include <string.h>

#include "lfile.h"
#include "lvm.h"
#include "mpr.h"
#include "opts.h"
#include "runner_priv.h"
#include "scope.h"

#define RAW_MAX_ARGS 6
#define RAW_MAX_BUFS 16

static void pack_key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

static void pack_int(msgpack_packer *pk, lua_Integer n)
{
	if (n < 0)
		msgpack_pack_int64(pk, (int64_t)n);
	else
		msgpack_pack_uint64(pk, (uint64_t)n);
}

static lua_Integer check_int(lua_State *L, int idx, const char *what)
{
	int isnum;
	lua_Integer n = lua_tointegerx(L, idx, &isnum);
	if (!isnum)
		luaL_error(L, "%s must be an integer, got %s", what, lua_type(L, idx) == LUA_TNUMBER ? "a fraction"
											      : luaL_typename(L, idx));
	return n;
}

/* The call at base (nr) and base + 1...: vm:syscall(nr, a1, ..., a6) or
 * vm:syscall(nr, {args =, bufs =, ptrs =, timeout =}). Checks everything and
 * returns how many request fields it will pack; *opts is the table (0 for
 * the positional form). */
static unsigned check_call(lua_State *L, int base, const char *what, int *opts)
{
	static const char *const keys[] = { "args", "bufs", "ptrs", "timeout", NULL };
	char name[64];
	int top = lua_gettop(L);
	unsigned fields = 2; /* nr, args */

	check_int(L, base, lua_pushfstring(L, "%s: the syscall number", what));
	lua_pop(L, 1);
	*opts = 0;
	if (lua_istable(L, base + 1)) {
		if (top > base + 1)
			luaL_error(L, "%s(nr, {args =, bufs =, ptrs =}) takes nothing after the table", what);
		*opts = base + 1;
		opts_check(L, *opts, lua_pushfstring(L, "%s options", what), keys);
		lua_pop(L, 1);
		if (lua_getfield(L, *opts, "args") != LUA_TNIL) {
			luaL_checktype(L, -1, LUA_TTABLE);
			if (luaL_len(L, -1) > RAW_MAX_ARGS)
				luaL_error(L, "%s: at most %d args", what, RAW_MAX_ARGS);
			for (lua_Integer i = 1; i <= luaL_len(L, -1); i++) {
				lua_geti(L, -1, i);
				snprintf(name, sizeof(name), "%s: args[%d]", what, (int)i);
				check_int(L, -1, name);
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
		lua_Integer nbufs = 0, nptrs = 0;
		if (lua_getfield(L, *opts, "bufs") != LUA_TNIL) {
			luaL_checktype(L, -1, LUA_TTABLE);
			nbufs = luaL_len(L, -1);
			if (nbufs > RAW_MAX_BUFS)
				luaL_error(L, "%s: at most %d bufs", what, RAW_MAX_BUFS);
			for (lua_Integer i = 1; i <= nbufs; i++) {
				int t = lua_geti(L, -1, i);
				if (t != LUA_TSTRING && !(t == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0))
					luaL_error(L, "%s: bufs[%d] must be a string (its bytes) or a size in bytes, got %s", what,
						   (int)i, luaL_typename(L, -1));
				lua_pop(L, 1);
			}
			fields++;
		}
		lua_pop(L, 1);
		if (lua_getfield(L, *opts, "ptrs") != LUA_TNIL) {
			luaL_checktype(L, -1, LUA_TTABLE);
			nptrs = luaL_len(L, -1);
			for (lua_Integer i = 1; i <= nptrs; i++) {
				lua_geti(L, -1, i);
				snprintf(name, sizeof(name), "%s: ptrs[%d]", what, (int)i);
				lua_Integer p = check_int(L, -1, name);
				if (p < 0 || p >= RAW_MAX_ARGS)
					luaL_error(L, "%s: ptrs[%d] = %d is no argument index: ptrs are 0-based (0 to 5), one per "
						      "buffer, naming the argument that gets the buffer's address", what, (int)i, (int)p);
				lua_pop(L, 1);
			}
			fields++;
		}
		lua_pop(L, 1);
		if (nptrs != nbufs)
			luaL_error(L, "%s: %d bufs but %d ptrs: ptrs[i] is the (0-based) argument index that gets the "
				      "address of bufs[i]", what, (int)nbufs, (int)nptrs);
		if (lua_getfield(L, *opts, "timeout") != LUA_TNIL)
			fields++;
		lua_pop(L, 1);
	} else {
		if (top - base > RAW_MAX_ARGS)
			luaL_error(L, "%s: at most %d arguments after the number", what, RAW_MAX_ARGS);
		for (int i = base + 1; i <= top; i++) {
			snprintf(name, sizeof(name), "%s: argument %d", what, i - base);
			check_int(L, i, name);
		}
	}
	return fields;
}

/* The list of integers at the top of the stack (checked) as an array. */
static void pack_int_list(lua_State *L, msgpack_packer *pk)
{
	lua_Integer n = luaL_len(L, -1);
	msgpack_pack_array(pk, (size_t)n);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, -1, i);
		pack_int(pk, lua_tointeger(L, -1));
		lua_pop(L, 1);
	}
}

/* Packs what check_call checked; returns the timeout in ns (0: none). */
static uint64_t pack_call(lua_State *L, msgpack_packer *pk, int base, int opts, const char *what)
{
	uint64_t timeout = 0;
	pack_key(pk, "nr");
	pack_int(pk, lua_tointeger(L, base));
	pack_key(pk, "args");
	if (!opts) {
		int n = lua_gettop(L) - base;
		msgpack_pack_array(pk, (size_t)n);
		for (int i = 1; i <= n; i++)
			pack_int(pk, lua_tointeger(L, base + i));
		return 0;
	}
	if (lua_getfield(L, opts, "args") != LUA_TNIL)
		pack_int_list(L, pk);
	else
		msgpack_pack_array(pk, 0);
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "bufs") != LUA_TNIL) {
		lua_Integer n = luaL_len(L, -1);
		pack_key(pk, "bufs");
		msgpack_pack_array(pk, (size_t)n);
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_geti(L, -1, i) == LUA_TSTRING) {
				size_t l;
				const char *s = lua_tolstring(L, -1, &l);
				msgpack_pack_bin(pk, l);
				msgpack_pack_bin_body(pk, s, l);
			} else {
				msgpack_pack_uint64(pk, (uint64_t)lua_tointeger(L, -1));
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "ptrs") != LUA_TNIL) {
		pack_key(pk, "ptrs");
		pack_int_list(L, pk);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "timeout") != LUA_TNIL) {
		timeout = opts_duration(L, -1, what);
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (timeout + 999999) / 1000000);
	}
	lua_pop(L, 1);
	return timeout;
}

/* {ret =, result =, errno =}: what syscall and ioctl results start with
 * (`result` is `ret`, as peios/provium names it). */
static void push_ret(lua_State *L, int64_t ret, int64_t err)
{
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, ret);
	lua_setfield(L, -2, "ret");
	lua_pushinteger(L, ret);
	lua_setfield(L, -2, "result");
	lua_pushinteger(L, err);
	lua_setfield(L, -2, "errno");
}

/* {ret =, result =, errno =, out_bufs = {...}} of a syscall answer; raises
 * when the agent interrupted it at its timeout. */
static int push_result(lua_State *L, const struct ctl_msg *m, const char *what, int nr)
{
	int64_t ret = 0, err = 0;
	bool timed_out = false;
	struct mpr r;
	struct mpr_item it, e;

	ctl_get_int(m, "ret", &ret);
	ctl_get_int(m, "errno", &err);
	ctl_get_bool(m, "timed_out", &timed_out);
	if (timed_out)
		return luaL_error(L, "%s(%d): still blocked at its timeout, so it was interrupted (EINTR); a call that "
				     "blocks belongs in syscall_async", what, nr);
	push_ret(L, ret, err);
	lua_newtable(L);
	if (ctl_find(m, "out_bufs", &r) && mpr_next(&r, &it, NULL) == 0 && it.type == MPR_ARRAY)
		for (uint32_t i = 0; i < it.v.count; i++) {
			if (mpr_next(&r, &e, NULL) < 0 || (e.type != MPR_BIN && e.type != MPR_STR))
				break;
			lua_pushlstring(L, (const char *)e.v.raw.ptr, e.v.raw.len);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	lua_setfield(L, -2, "out_bufs");
	return 1;
}

static int l_syscall(lua_State *L)
{
	int opts;
	unsigned fields = check_call(L, 2, "vm:syscall", &opts);
	struct lvm *v = lvm_running(L, 1, "syscall");
	msgpack_packer *pk = agent_begin(&v->vm.agent, "syscall", fields);
	uint64_t timeout = pack_call(L, pk, 2, opts, "vm:syscall");
	lvm_call(L, v, "syscall", timeout ? timeout + LVM_HOST_MARGIN_NS : 0);
	return push_result(L, &v->vm.agent.resp, "vm:syscall", (int)lua_tointeger(L, 2));
}

/* ---- async calls ----------------------------------------------------------------------- */

struct lcall {
	struct scope_res res; /* first: a call is a scope resource */
	struct lvm *v;        /* kept alive by uservalue 1 */
	uint32_t call;
	unsigned gen;
	int nr;
	bool done; /* awaited or cancelled */
};

static void cancel(struct lcall *c)
{
	struct pv_err err;
	int e = 0;
	msgpack_packer *pk = agent_begin(&c->v->vm.agent, "syscall_cancel", 1);
	pack_key(pk, "call");
	msgpack_pack_uint32(pk, c->call);
	if (agent_call(&c->v->vm.agent, pv_mono_ns() + lvm_op_timeout(), &e, &err) < 0 && e == 0 &&
	    c->v->vm.agent.dead)
		lvm_mark_dead(c->v, err.msg);
	c->done = true;
}

static void call_close(struct scope_res *r, enum scope_how how)
{
	struct lcall *c = (struct lcall *)r;
	/* a finalizer does no I/O: the agent keeps the call until its VM goes */
	if (c->done || how == SCOPE_BY_GC || !c->v || c->v->state != LVM_RUNNING || c->v->gen != c->gen ||
	    c->v->paused)
		return;
	cancel(c);
}

static const struct scope_ops call_ops = { SCOPE_PROCESS, "provium.syscall", call_close, NULL, NULL };

static int l_syscall_async(lua_State *L)
{
	int opts;
	unsigned fields = check_call(L, 2, "vm:syscall_async", &opts);
	struct lvm *v = lvm_running(L, 1, "syscall_async");
	int64_t id = 0;
	if (opts) {
		lua_getfield(L, opts, "timeout");
		if (!lua_isnil(L, -1))
			luaL_error(L, "vm:syscall_async takes no timeout: give one to call:await");
		lua_pop(L, 1);
	}
	msgpack_packer *pk = agent_begin(&v->vm.agent, "syscall_async", fields);
	pack_call(L, pk, 2, opts, "vm:syscall_async");
	lvm_call(L, v, "syscall_async", 0);
	ctl_get_int(&v->vm.agent.resp, "call", &id);
	/* after the call started: a raise before scope_add leaves it to the agent
	 * (at most 64; a new connection forgets them) */
	int nr = (int)lua_tointeger(L, 2);
	struct lcall *c = lua_newuserdatauv(L, sizeof(*c), 1);
	memset(c, 0, sizeof(*c));
	luaL_setmetatable(L, call_ops.tname);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	c->v = v;
	c->call = (uint32_t)id;
	c->gen = v->gen;
	c->nr = nr;
	scope_add(L, &c->res, &call_ops);
	return 1;
}

static struct lcall *check_lcall(lua_State *L)
{
	struct lcall *c = luaL_checkudata(L, 1, call_ops.tname);
	if (!c->res.ops)
		return (luaL_error(L, "this call never started"), NULL);
	if (c->done || c->res.closed)
		return (luaL_error(L, "syscall %d was awaited or cancelled already", c->nr), NULL);
	lua_getiuservalue(L, 1, 1);
	lvm_running(L, -1, "syscall await");
	lua_pop(L, 1);
	if (c->v->gen != c->gen)
		return (luaL_error(L, "syscall %d ran in VM '%s' before it was reset or restored: it is gone", c->nr,
				   c->v->name), NULL);
	return c;
}

/* call:await(timeout?): the result once the call returned; a timeout that
 * passes first raises, and the call stays awaitable. */
static int c_await(lua_State *L)
{
	struct lcall *c = check_lcall(L);
	uint64_t timeout = lua_isnoneornil(L, 2) ? 0 : opts_duration(L, 2, "call:await");
	uint64_t left = lvm_test_time_left(L, "call:await");
	struct pv_err err;
	int e = 0, rc;
	msgpack_packer *pk = agent_begin(&c->v->vm.agent, "syscall_await", timeout ? 2 : 1);
	pack_key(pk, "call");
	msgpack_pack_uint32(pk, c->call);
	if (timeout) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (timeout + 999999) / 1000000);
	}
	uint64_t bound = timeout ? timeout : left;
	rc = agent_call_soft(&c->v->vm.agent, bound ? pv_mono_ns() + bound + LVM_HOST_MARGIN_NS : 0, &e, &err);
	if (rc == -EREMOTEIO && e == ETIMEDOUT)
		return luaL_error(L, "call:await: syscall %d is still running after %f s", c->nr, (double)timeout / 1e9);
	if (rc == -ETIMEDOUT)
		return runner_failf(L, "call:await: syscall %d outlasted the test's timeout", c->nr);
	if (rc < 0) {
		if (c->v->vm.agent.dead)
			return lvm_died(L, c->v, "call:await", err.msg);
		return luaL_error(L, "call:await: %s", err.msg);
	}
	c->done = true;
	scope_close(&c->res, SCOPE_BY_USER);
	return push_result(L, &c->v->vm.agent.resp, "vm:syscall_async", c->nr);
}

/* call:cancel(): interrupts a call that blocks (SIGALRM at its thread: EINTR)
 * and forgets it. */
static int c_cancel(lua_State *L)
{
	struct lcall *c = check_lcall(L);
	cancel(c);
	scope_close(&c->res, SCOPE_BY_USER);
	return 0;
}

/* ---- ioctl, read_mem --------------------------------------------------------------------------- */

/* vm:ioctl(path | file | fd, request, data?): data a string (a buffer the
 * kernel reads and writes, returned as data) or an integer argument. */
static int l_ioctl(lua_State *L)
{
	static const char *const keys[] = { "timeout", NULL };
	int t = lua_type(L, 2);
	lua_Integer request;
	uint64_t timeout = 0;
	unsigned fields = 2;
	if (t != LUA_TSTRING && t != LUA_TNUMBER && !luaL_testudata(L, 2, "provium.file"))
		return luaL_error(L, "vm:ioctl needs a guest path, a File of vm:open_file or an fd of the agent, got %s",
				  luaL_typename(L, 2));
	request = check_int(L, 3, "vm:ioctl: the request number");
	if (!lua_isnoneornil(L, 4) && lua_type(L, 4) != LUA_TSTRING && !lua_isinteger(L, 4))
		return luaL_error(L, "vm:ioctl: data must be a string (a buffer) or an integer, got %s",
				  luaL_typename(L, 4));
	if (opts_check(L, 5, "vm:ioctl options", keys)) {
		lua_getfield(L, 5, "timeout");
		if (!lua_isnil(L, -1))
			timeout = opts_duration(L, -1, "vm:ioctl");
		lua_pop(L, 1);
	}
	fields += !lua_isnoneornil(L, 4);
	fields += timeout != 0;
	struct lvm *v = lvm_running(L, 1, "ioctl");
	uint32_t fh = t == LUA_TUSERDATA ? lfile_handle(L, 2) : 0;
	msgpack_packer *pk = agent_begin(&v->vm.agent, "ioctl", fields);
	if (t == LUA_TSTRING) {
		size_t l;
		const char *p = lua_tolstring(L, 2, &l);
		pack_key(pk, "path");
		msgpack_pack_str_with_body(pk, p, l);
	} else if (fh) {
		pack_key(pk, "file");
		msgpack_pack_uint32(pk, fh);
	} else {
		pack_key(pk, "fd");
		pack_int(pk, check_int(L, 2, "vm:ioctl: the fd"));
	}
	pack_key(pk, "request");
	pack_int(pk, request);
	if (lua_type(L, 4) == LUA_TSTRING) {
		size_t l;
		const char *p = lua_tolstring(L, 4, &l);
		pack_key(pk, "data");
		msgpack_pack_bin(pk, l);
		msgpack_pack_bin_body(pk, p, l);
	} else if (!lua_isnoneornil(L, 4)) {
		pack_key(pk, "arg");
		pack_int(pk, lua_tointeger(L, 4));
	}
	if (timeout) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (timeout + 999999) / 1000000);
	}
	lvm_call(L, v, "ioctl", timeout ? timeout + LVM_HOST_MARGIN_NS : 0);
	const struct ctl_msg *m = &v->vm.agent.resp;
	int64_t ret = 0, err = 0;
	bool timed_out = false;
	const uint8_t *d;
	uint32_t dl;
	ctl_get_int(m, "ret", &ret);
	ctl_get_int(m, "errno", &err);
	ctl_get_bool(m, "timed_out", &timed_out);
	if (timed_out)
		return luaL_error(L, "vm:ioctl(%I): still blocked at its timeout, so it was interrupted (EINTR)",
				  (lua_Integer)request);
	push_ret(L, ret, err);
	if (ctl_get_raw(m, "data", &d, &dl)) {
		lua_pushlstring(L, (const char *)d, dl);
		lua_setfield(L, -2, "out_data");
	}
	return 1;
}

/* vm:read_mem(addr, len): the bytes, or nil, errno, message for an address
 * the agent has not mapped. */
static int l_read_mem(lua_State *L)
{
	lua_Integer addr = check_int(L, 2, "vm:read_mem: the address"), len = check_int(L, 3, "vm:read_mem: the length");
	if (len < 0)
		return luaL_error(L, "vm:read_mem: the length must not be negative");
	struct lvm *v = lvm_running(L, 1, "read_mem");
	struct pv_err err;
	int e = 0, rc;
	msgpack_packer *pk = agent_begin(&v->vm.agent, "read_mem", 2);
	pack_key(pk, "addr");
	msgpack_pack_uint64(pk, (uint64_t)addr);
	pack_key(pk, "len");
	msgpack_pack_uint64(pk, (uint64_t)len);
	rc = agent_call(&v->vm.agent, pv_mono_ns() + lvm_op_timeout(), &e, &err);
	if (rc == -EREMOTEIO && e == EFAULT) {
		lua_pushnil(L);
		lua_pushinteger(L, e);
		lua_pushstring(L, err.msg);
		return 3;
	}
	if (rc < 0) {
		if (v->vm.agent.dead)
			return lvm_died(L, v, "read_mem", err.msg);
		return luaL_error(L, "vm:read_mem: %s", err.msg);
	}
	const uint8_t *d;
	uint32_t dl;
	if (!ctl_get_raw(&v->vm.agent.resp, "data", &d, &dl))
		return luaL_error(L, "vm:read_mem: the agent's answer has no data");
	lua_pushlstring(L, (const char *)d, dl);
	return 1;
}

void lraw_install(lua_State *L, int methods)
{
	static const luaL_Reg call_methods[] = { { "await", c_await }, { "cancel", c_cancel }, { NULL, NULL } };
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_syscall);
	lua_setfield(L, methods, "syscall");
	lua_pushcfunction(L, l_syscall_async);
	lua_setfield(L, methods, "syscall_async");
	lua_pushcfunction(L, l_ioctl);
	lua_setfield(L, methods, "ioctl");
	lua_pushcfunction(L, l_read_mem);
	lua_setfield(L, methods, "read_mem");
	luaL_newlib(L, call_methods);
	scope_set_methods(L, &call_ops);
}

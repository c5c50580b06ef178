/* lfile.c - guest file handles and the guest clock (contract in lfile.h). */
#include "lfile.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lstream.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "wire.h"

struct lfile {
	struct scope_res res; /* first: a file is a scope resource */
	struct lvm *v;        /* kept alive by uservalue 1 */
	uint32_t fh;          /* the agent's handle */
	unsigned gen;         /* v->gen when it opened */
	char path[256];       /* for messages */
};

static void pack_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void file_close(struct scope_res *r, enum scope_how how)
{
	struct lfile *f = (struct lfile *)r;
	struct lvm *v = f->v;
	if (!v || !f->fh || v->state != LVM_RUNNING || v->gen != f->gen)
		return; /* never opened, or its QEMU is gone */
	lvm_defer(v, LVM_REAP_FILE, f->fh, f->gen);
	if (how != SCOPE_BY_GC)
		lvm_settle(v);
}

static const struct scope_ops file_ops = { SCOPE_FILE, "provium.file", file_close, NULL, NULL };

static int l_open_file(lua_State *L)
{
	static const char *const keys[] = { "read", "write", "create", "truncate", "append", "exclusive", "mode", NULL };
	static const char *const flags[] = { "read", "write", "create", "truncate", "append", "exclusive" };
	const char *path = luaL_checkstring(L, 2);
	bool opts = opts_check(L, 3, "vm:open_file options", keys);
	int64_t mode = -1;
	unsigned n = 1;
	struct lvm *v = lvm_running(L, 1, "open_file");
	if (opts && lua_getfield(L, 3, "mode") != LUA_TNIL)
		mode = opts_mode(L, -1, "vm:open_file");
	lua_settop(L, 3);
	struct lfile *f = lua_newuserdatauv(L, sizeof(*f), 1);
	memset(f, 0, sizeof(*f));
	luaL_setmetatable(L, "provium.file");
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	snprintf(f->path, sizeof(f->path), "%s", path);
	scope_add(L, &f->res, &file_ops);
	for (unsigned i = 0; opts && i < 6; i++) {
		lua_getfield(L, 3, flags[i]);
		n += lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	msgpack_packer *pk = agent_begin(&v->vm.agent, "file_open", n + (mode >= 0));
	pack_key(pk, "path");
	msgpack_pack_str_with_body(pk, path, strlen(path));
	for (unsigned i = 0; opts && i < 6; i++) {
		lua_getfield(L, 3, flags[i]);
		if (lua_toboolean(L, -1)) {
			pack_key(pk, flags[i]);
			msgpack_pack_true(pk);
		}
		lua_pop(L, 1);
	}
	if (mode >= 0) {
		pack_key(pk, "mode");
		msgpack_pack_int64(pk, mode);
	}
	lvm_call(L, v, "open_file", 0);
	uint64_t fh = 0;
	ctl_get_uint(&v->vm.agent.resp, "file", &fh);
	f->v = v;
	f->gen = v->gen;
	f->fh = (uint32_t)fh;
	return 1;
}

/* The file at 1, open, on a running VM of the same QEMU. */
static struct lfile *check_file_at(lua_State *L, int idx)
{
	struct lfile *f = luaL_checkudata(L, idx, "provium.file");
	if (!f->fh)
		return (luaL_error(L, "this file never opened"), NULL);
	if (f->res.closed)
		return (luaL_error(L, "file %s was closed (by close(), its `<close>` block, or the end of the test that "
				   "opened it)", f->path), NULL);
	lua_getiuservalue(L, idx, 1);
	lvm_running(L, -1, "file operations");
	lua_pop(L, 1);
	if (f->v->gen != f->gen)
		return (luaL_error(L, "file %s was open in VM '%s' before it was restored or rebooted: the handle is gone",
				   f->path, f->v->name), NULL);
	return f;
}

static struct lfile *check_file(lua_State *L)
{
	return check_file_at(L, 1);
}

uint32_t lfile_handle(lua_State *L, int idx)
{
	return check_file_at(L, idx)->fh;
}

static msgpack_packer *begin(struct lfile *f, const char *op, unsigned extra)
{
	msgpack_packer *pk = agent_begin(&f->v->vm.agent, op, 1 + extra);
	pack_key(pk, "file");
	msgpack_pack_uint32(pk, f->fh);
	return pk;
}

/* f:read(n): up to n bytes (n: at most 64 MiB), nil at the end of the file. */
static int f_read(lua_State *L)
{
	struct lfile *f = check_file(L);
	lua_Integer n = luaL_checkinteger(L, 2);
	const uint8_t *p;
	uint32_t len;
	if (n < 0 || n > PV_WIRE_READ_CAP)
		return luaL_error(L, "file:read(%d): the count must be 0 to %d (64 MiB)", (int)n, PV_WIRE_READ_CAP);
	msgpack_packer *pk = begin(f, "file_read", 1);
	pack_key(pk, "n");
	msgpack_pack_uint64(pk, (uint64_t)n);
	lvm_call(L, f->v, "file:read", 0);
	if (!ctl_get_raw(&f->v->vm.agent.resp, "data", &p, &len) || (len == 0 && n > 0))
		lua_pushnil(L);
	else
		lua_pushlstring(L, (const char *)p, len);
	return 1;
}

/* f:read_all(): from the offset to the end, in reads of the wire's cap. */
static int f_read_all(lua_State *L)
{
	struct lfile *f = check_file(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (;;) {
		const uint8_t *p;
		uint32_t len = 0;
		msgpack_packer *pk = begin(f, "file_read", 1);
		pack_key(pk, "n");
		msgpack_pack_uint64(pk, PV_WIRE_READ_CAP);
		lvm_call(L, f->v, "file:read_all", 0);
		if (!ctl_get_raw(&f->v->vm.agent.resp, "data", &p, &len) || len == 0)
			break;
		luaL_addlstring(&b, (const char *)p, len);
	}
	luaL_pushresult(&b);
	return 1;
}

static int f_write(lua_State *L)
{
	struct lfile *f = check_file(L);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	msgpack_packer *pk = begin(f, "file_write", 1);
	pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, data, n);
	lvm_call(L, f->v, "file:write", 0);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* f:seek(offset, whence = "set" | "cur" | "end"): the new offset. */
static int f_seek(lua_State *L)
{
	static const char *const whences[] = { "set", "cur", "end", NULL };
	struct lfile *f = check_file(L);
	lua_Integer off = luaL_optinteger(L, 2, 0);
	int w = luaL_checkoption(L, 3, "set", whences);
	int64_t at = 0;
	msgpack_packer *pk = begin(f, "file_seek", 2);
	pack_key(pk, "offset");
	msgpack_pack_int64(pk, off);
	pack_key(pk, "whence");
	msgpack_pack_str_with_body(pk, whences[w], 3);
	lvm_call(L, f->v, "file:seek", 0);
	ctl_get_int(&f->v->vm.agent.resp, "offset", &at);
	lua_pushinteger(L, at);
	return 1;
}

static int f_tell(lua_State *L)
{
	lua_settop(L, 1);
	lua_pushinteger(L, 0);
	lua_pushliteral(L, "cur");
	return f_seek(L);
}

static int f_close(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, "provium.file");
	if (f->res.ops && !f->res.closed)
		scope_close(&f->res, SCOPE_BY_USER);
	return 0;
}

/* f:tail_stream(opts): the file followed from the handle's offset. */
static int f_tail_stream(lua_State *L)
{
	static const char *const keys[] = { "buffer", NULL };
	struct lfile *f = check_file(L);
	bool opts = opts_check(L, 2, "file:tail_stream options", keys);
	lua_getiuservalue(L, 1, 1);
	const char *what = lua_pushfstring(L, "tail_stream of file %s", f->path);
	msgpack_packer *pk = lstream_open_begin(L, -2, what, opts ? 2 : 0, 1);
	pack_key(pk, "file");
	msgpack_pack_uint32(pk, f->fh);
	lstream_open_finish(L);
	return 1;
}

static int f_tostring(lua_State *L)
{
	struct lfile *f = luaL_checkudata(L, 1, "provium.file");
	lua_pushfstring(L, "provium.file(%s%s)", f->path, f->res.closed ? ", closed" : "");
	return 1;
}

/* ---- the clock ------------------------------------------------------------------------- */

/* The clock table at 1: its VM, running. */
static struct lvm *clock_vm(lua_State *L, const char *what)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "vm");
	struct lvm *v = lvm_running(L, -1, what);
	lua_pop(L, 1);
	return v;
}

/* agent_begin of a clock op: a worker's clock (worker:clock()) addresses
 * its requests to the worker. */
static msgpack_packer *clock_begin(lua_State *L, struct lvm *v, const char *op, unsigned n)
{
	uint32_t saved = v->vm.agent.route;
	lua_getfield(L, 1, "worker");
	v->vm.agent.route = (uint32_t)lua_tointeger(L, -1);
	lua_pop(L, 1);
	msgpack_packer *pk = agent_begin(&v->vm.agent, op, n);
	v->vm.agent.route = saved;
	return pk;
}

/* Seconds since 1970 (a float, ns precision kept as far as a double holds). */
static void push_time(lua_State *L, struct lvm *v)
{
	int64_t t = 0;
	ctl_get_int(&v->vm.agent.resp, "time_ns", &t);
	lua_pushnumber(L, (lua_Number)t / 1e9);
}

static int c_get(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:get");
	clock_begin(L, v, "clock_get", 0);
	lvm_call(L, v, "clock:get", 0);
	push_time(L, v);
	return 1;
}

static int c_set(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:set");
	lua_Number t = luaL_checknumber(L, 2);
	if (!(t > 0 && t < 9.2e9))
		return luaL_error(L, "clock:set: %f is not a time (seconds since 1970, after 1970)", (double)t);
	msgpack_packer *pk = clock_begin(L, v, "clock_set", 1);
	pack_key(pk, "time_ns");
	msgpack_pack_int64(pk, (int64_t)llround(t * 1e9));
	lvm_call(L, v, "clock:set", 0);
	push_time(L, v);
	return 1;
}

static int c_advance(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:advance");
	int64_t d;
	/* a negative duration moves it back; opts_duration takes only >= 0 */
	if (lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) < 0) {
		lua_pushnumber(L, -lua_tonumber(L, 2));
		d = -(int64_t)opts_duration(L, -1, "clock:advance");
	} else {
		d = (int64_t)opts_duration(L, 2, "clock:advance");
	}
	msgpack_packer *pk = clock_begin(L, v, "clock_adjust", 1);
	pack_key(pk, "delta_ns");
	msgpack_pack_int64(pk, d);
	lvm_call(L, v, "clock:advance", 0);
	push_time(L, v);
	return 1;
}

static int c_sleep(lua_State *L)
{
	struct lvm *v = clock_vm(L, "clock:sleep");
	uint64_t d = opts_duration(L, 2, "clock:sleep");
	uint64_t left = lvm_test_time_left(L, "clock:sleep");
	msgpack_packer *pk = clock_begin(L, v, "sleep", 1);
	pack_key(pk, "duration_ns");
	msgpack_pack_uint64(pk, d);
	if (left && left < d + LVM_HOST_MARGIN_NS) {
		if (lvm_call_bounded(L, v, "clock:sleep", pv_mono_ns() + left) < 0)
			return runner_failf(L, "clock:sleep outlasted the test's timeout");
	} else {
		lvm_call(L, v, "clock:sleep", d + LVM_HOST_MARGIN_NS);
	}
	return 0;
}

static int l_clock(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "get", c_get }, { "set", c_set }, { "advance", c_advance }, { "sleep", c_sleep }, { NULL, NULL },
	};
	struct lvm *v = lvm_check(L, 1);
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "vm");
	if (v->vm.agent.route) { /* worker:clock() */
		lua_pushinteger(L, v->vm.agent.route);
		lua_setfield(L, -2, "worker");
	}
	if (luaL_newmetatable(L, "provium.clock")) {
		luaL_newlib(L, methods);
		lua_setfield(L, -2, "__index");
	}
	lua_setmetatable(L, -2);
	return 1;
}

void lfile_install(lua_State *L, int methods)
{
	static const luaL_Reg file_methods[] = {
		{ "read", f_read }, { "read_all", f_read_all }, { "write", f_write }, { "seek", f_seek },
		{ "tell", f_tell }, { "close", f_close }, { "tail_stream", f_tail_stream }, { NULL, NULL },
	};
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_open_file);
	lua_setfield(L, methods, "open_file");
	lua_pushcfunction(L, l_clock);
	lua_setfield(L, methods, "clock");
	luaL_newlib(L, file_methods);
	scope_set_methods(L, &file_ops);
	luaL_getmetatable(L, "provium.file");
	lua_pushcfunction(L, f_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}

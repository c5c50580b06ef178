/* lguest.c - vm:run, RunResult and the file ops (contract in lguest.h). */
#include "lguest.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lvm.h"
#include "mpr.h"
#include "opts.h"
#include "runner_priv.h"
#include "tclock.h"
#include "units.h"

static uint64_t opt_timeout(lua_State *L, int idx, const char *key)
{
	uint64_t ns = 0;
	if (!lua_istable(L, idx))
		return 0;
	if (lua_getfield(L, idx, key) != LUA_TNIL)
		ns = opts_duration(L, -1, key);
	lua_pop(L, 1);
	return ns;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n) { msgpack_pack_str_with_body(pk, s, n); }
static void pack_key(msgpack_packer *pk, const char *k) { pack_str(pk, k, strlen(k)); }

/* The options of vm:run and vm:run_async. */
const char *const lguest_cmd_keys[] = { "stdin", "env", "env_clear", "cwd", "timeout", "uid", "gid", "groups", NULL };

/* Packs the command and the options shared by exec and spawn; returns the
 * exec timeout in ns (0: none). */
unsigned lguest_count_cmd_args(lua_State *L, int opts)
{
	unsigned n = 1;
	if (!lua_istable(L, opts))
		return n;
	static const char *const keys[] = { "stdin", "env", "env_clear", "cwd", "timeout", "uid", "gid", "groups" };
	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (lua_getfield(L, opts, keys[i]) != LUA_TNIL)
			n++;
		lua_pop(L, 1);
	}
	return n;
}

uint64_t lguest_pack_cmd(lua_State *L, msgpack_packer *pk, int cmd, int opts)
{
	uint64_t timeout = 0;
	if (lua_type(L, cmd) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, cmd, &n);
		pack_key(pk, "cmd");
		pack_str(pk, s, n);
	} else {
		lua_Integer n = luaL_len(L, cmd);
		pack_key(pk, "argv");
		msgpack_pack_array(pk, (size_t)n);
		for (lua_Integer i = 1; i <= n; i++) {
			size_t l;
			lua_geti(L, cmd, i);
			const char *s = luaL_tolstring(L, -1, &l);
			pack_str(pk, s, l);
			lua_pop(L, 2);
		}
	}
	if (!lua_istable(L, opts))
		return 0;
	if (lua_getfield(L, opts, "stdin") != LUA_TNIL) {
		size_t n;
		const char *s = luaL_checklstring(L, -1, &n);
		pack_key(pk, "stdin");
		msgpack_pack_bin_with_body(pk, s, n);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "env") != LUA_TNIL) {
		int t = lua_gettop(L), count = 0;
		luaL_checktype(L, t, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			count++;
			lua_pop(L, 1);
		}
		pack_key(pk, "env");
		msgpack_pack_map(pk, (size_t)count);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			size_t kl, vl;
			const char *k = luaL_tolstring(L, -2, &kl);
			pack_str(pk, k, kl);
			lua_pop(L, 1);
			const char *val = luaL_tolstring(L, -1, &vl);
			pack_str(pk, val, vl);
			lua_pop(L, 2);
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "env_clear") != LUA_TNIL) {
		pack_key(pk, "env_clear");
		lua_toboolean(L, -1) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "cwd") != LUA_TNIL) {
		size_t n;
		const char *s = luaL_checklstring(L, -1, &n);
		pack_key(pk, "cwd");
		pack_str(pk, s, n);
	}
	lua_pop(L, 1);
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "gid" : "uid";
		if (lua_getfield(L, opts, k) != LUA_TNIL) {
			lua_Integer id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
			if (id < 0 || id >= 0xffffffffll)
				luaL_error(L, "%s must be a numeric id (0 to 4294967294), got %s", k, luaL_tolstring(L, -1, NULL));
			pack_key(pk, k);
			msgpack_pack_uint32(pk, (uint32_t)id);
		}
		lua_pop(L, 1);
	}
	if (lua_getfield(L, opts, "groups") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			luaL_error(L, "groups must be an array of numeric group ids, got %s", luaL_typename(L, -1));
		lua_Integer n = luaL_len(L, -1);
		if (n > 256)
			luaL_error(L, "groups: %d ids, at most 256", (int)n);
		pack_key(pk, "groups");
		msgpack_pack_array(pk, (size_t)n);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, -1, i);
			lua_Integer id = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
			if (id < 0 || id >= 0xffffffffll)
				luaL_error(L, "groups[%d] must be a numeric group id, got %s", (int)i, luaL_tolstring(L, -1, NULL));
			msgpack_pack_uint32(pk, (uint32_t)id);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	timeout = opt_timeout(L, opts, "timeout");
	if (lua_getfield(L, opts, "timeout") != LUA_TNIL) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (timeout + 999999) / 1000000);
	}
	lua_pop(L, 1);
	return timeout;
}

/* t.cmd of the table on top: the command as given, an argv shown joined
 * (for messages). */
static void set_cmd_field(lua_State *L, int cmd_idx)
{
	if (lua_type(L, cmd_idx) == LUA_TSTRING) {
		lua_pushvalue(L, cmd_idx);
	} else {
		lua_getglobal(L, "table");
		lua_getfield(L, -1, "concat");
		lua_pushvalue(L, cmd_idx);
		lua_pushliteral(L, " ");
		lua_call(L, 2, 1);
		lua_remove(L, -2);
	}
	lua_setfield(L, -2, "cmd");
}

static void push_raw_field(lua_State *L, const struct ctl_msg *m, const char *key)
{
	const uint8_t *p;
	uint32_t n;
	if (ctl_get_raw(m, key, &p, &n))
		lua_pushlstring(L, (const char *)p, n);
	else
		lua_pushliteral(L, "");
}

/* RunResult from an exec/wait response. */
void lguest_push_result(lua_State *L, const struct ctl_msg *m, int cmd_idx)
{
	int64_t code, sig;
	char *status = ctl_get_strdup(m, "status");
	lua_createtable(L, 0, 8);
	if (ctl_get_int(m, "exit_code", &code))
		lua_pushinteger(L, code);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, "exit_code");
	if (ctl_get_int(m, "signal", &sig))
		lua_pushinteger(L, sig);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, "signal");
	push_raw_field(L, m, "stdout");
	lua_setfield(L, -2, "stdout");
	push_raw_field(L, m, "stderr");
	lua_setfield(L, -2, "stderr");
	lua_pushstring(L, status ? status : "exited");
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, status && strcmp(status, "timed_out") == 0);
	lua_setfield(L, -2, "timed_out");
	if (cmd_idx)
		set_cmd_field(L, cmd_idx);
	free(status);
	luaL_setmetatable(L, "provium.runresult");
}

/* The RunResult of a command whose guest did not answer by the host's
 * deadline: timed out, no exit status, no output (the guest still has it). */
static void push_host_timeout(lua_State *L, int cmd_idx, uint64_t timeout)
{
	char b1[32], b2[32];
	lua_createtable(L, 0, 8);
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stdout");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stderr");
	lua_pushliteral(L, "timed_out");
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "timed_out");
	lua_pushfstring(L, "the guest did not answer within %s of the command's %s timeout (too busy or hung); "
			"the command may still be running in the guest", pv_format_duration(LVM_HOST_MARGIN_NS, b1),
			pv_format_duration(timeout, b2));
	lua_setfield(L, -2, "host_timeout");
	set_cmd_field(L, cmd_idx);
	luaL_setmetatable(L, "provium.runresult");
}

/* ---- ops: each packs its request into a sink and pushes what it returns ---------- */

static msgpack_packer *sink_begin(struct lguest_sink *s, const char *op, unsigned nargs)
{
	return s->f ? agent_frame_begin(s->a, s->f, op, nargs) : agent_begin(s->a, op, nargs);
}

/* run(cmd, opts): without a timeout of its own, a command gets what is left
 * of the test's (meta.timeout): the guest kills it then, and the test fails
 * as timed out (push_run). */
static uint64_t pack_run(lua_State *L, struct lguest_sink *s, int base)
{
	opts_check(L, base + 1, "vm:run options", lguest_cmd_keys);
	if (lua_type(L, base) != LUA_TSTRING && lua_type(L, base) != LUA_TTABLE)
		luaL_error(L, "vm:run needs a shell command string or an argv array, got %s", luaL_typename(L, base));
	uint64_t left = 0;
	bool explicit_timeout = false;
	if (lua_istable(L, base + 1)) {
		explicit_timeout = lua_getfield(L, base + 1, "timeout") != LUA_TNIL;
		lua_pop(L, 1);
	}
	if (!explicit_timeout)
		left = lvm_test_time_left(L, "vm:run");
	msgpack_packer *pk = sink_begin(s, "exec", lguest_count_cmd_args(L, base + 1) + (left ? 1 : 0));
	uint64_t timeout = lguest_pack_cmd(L, pk, base, base + 1);
	if (left) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (left + 999999) / 1000000);
		timeout = left;
	}
	return timeout;
}

/* A command killed at the test's deadline fails the test as timed out. */
static int run_timed_out(lua_State *L, int base)
{
	bool explicit_timeout = false;
	if (lua_istable(L, base + 1)) {
		explicit_timeout = lua_getfield(L, base + 1, "timeout") != LUA_TNIL;
		lua_pop(L, 1);
	}
	lua_getfield(L, -1, "timed_out");
	bool to = lua_toboolean(L, -1);
	lua_pop(L, 1);
	/* without a timeout of its own, only the test's can have ended it (and
	 * lvm_test_time_left would raise with less to say, the time being up) */
	if (!to || explicit_timeout)
		return 0;
	lua_getfield(L, -1, "cmd");
	return tclock_timed_out(L, lua_pushfstring(L, "vm:run(\"%s\")", luaL_tolstring(L, -1, NULL)));
}

static int push_run(lua_State *L, const struct ctl_msg *m, int base)
{
	lguest_push_result(L, m, base);
	run_timed_out(L, base);
	return 1;
}

static int l_vm_run(lua_State *L)
{
	opts_check(L, 3, "vm:run options", lguest_cmd_keys); /* before anything is asked of the VM */
	struct lvm *v = lvm_running(L, 1, "run");
	struct lguest_sink sk = { &v->vm.agent, NULL };
	uint64_t timeout = pack_run(L, &sk, 2);
	/* the agent enforces the command's timeout; the host gives up LVM_HOST_MARGIN_NS
	 * later even if the guest never answers (a guest too busy to answer) */
	if (!timeout)
		lvm_call(L, v, "run", UINT64_C(1) << 62);
	else if (lvm_call_bounded(L, v, "run", pv_mono_ns() + timeout + LVM_HOST_MARGIN_NS) < 0) {
		push_host_timeout(L, 2, timeout);
		run_timed_out(L, 2);
		return 1;
	}
	return push_run(L, &v->vm.agent.resp, 2);
}

static int r_ok(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "status");
	lua_getfield(L, 1, "exit_code");
	lua_pushboolean(L, strcmp(lua_tostring(L, -2) ?: "", "exited") == 0 && lua_tointeger(L, -1) == 0);
	return 1;
}

static int r_assert_ok(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	r_ok(L);
	if (lua_toboolean(L, -1)) {
		lua_settop(L, 1);
		return 1;
	}
	lua_getfield(L, 1, "cmd");
	lua_getfield(L, 1, "stdout");
	lua_getfield(L, 1, "stderr");
	lua_getfield(L, 1, "status");
	lua_getfield(L, 1, "exit_code");
	lua_getfield(L, 1, "signal");
	const char *how = lua_tostring(L, -3);
	char what[300];
	if (strcmp(how ?: "", "exited") == 0)
		snprintf(what, sizeof(what), "exit code %lld", (long long)lua_tointeger(L, -2));
	else if (strcmp(how ?: "", "signalled") == 0)
		snprintf(what, sizeof(what), "killed by signal %lld", (long long)lua_tointeger(L, -1));
	else {
		lua_getfield(L, 1, "host_timeout");
		snprintf(what, sizeof(what), "timed out%s%.250s", lua_isstring(L, -1) ? ": " : "",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
		lua_pop(L, 1);
	}
	return runner_failf(L, "command failed (%s): %s\n--- stdout ---\n%s\n--- stderr ---\n%s", what,
			    lua_tostring(L, -6) ?: "?", lua_tostring(L, -5) ?: "", lua_tostring(L, -4) ?: "");
}


/* ---- files ------------------------------------------------------------------------ */

static msgpack_packer *begin_path(lua_State *L, struct lguest_sink *s, const char *op, int idx, unsigned extra)
{
	size_t n;
	const char *path = luaL_checklstring(L, idx, &n);
	msgpack_packer *pk = sink_begin(s, op, 1 + extra);
	pack_key(pk, "path");
	pack_str(pk, path, n);
	return pk;
}

static uint64_t pack_read_file(lua_State *L, struct lguest_sink *s, int base)
{
	begin_path(L, s, "read_file", base, 0);
	return 0;
}

static int push_read_file(lua_State *L, const struct ctl_msg *m, int base)
{
	(void)base;
	push_raw_field(L, m, "data");
	return 1;
}

static int push_nothing(lua_State *L, const struct ctl_msg *m, int base)
{
	(void)L, (void)m, (void)base;
	return 0;
}

static const char *const write_file_keys[] = { "append", "mode", NULL };
static const char *const mkdir_keys[] = { "parents", "mode", NULL };

static uint64_t pack_write_file(lua_State *L, struct lguest_sink *s, int base)
{
	bool append = false, opts = opts_check(L, base + 2, "vm:write_file options", write_file_keys);
	int64_t mode = -1;
	size_t n;
	luaL_checkstring(L, base);
	const char *data = luaL_checklstring(L, base + 1, &n);
	if (opts) {
		lua_getfield(L, base + 2, "append");
		append = lua_toboolean(L, -1);
		if (lua_getfield(L, base + 2, "mode") != LUA_TNIL)
			mode = opts_mode(L, -1, "vm:write_file");
		lua_pop(L, 2);
	}
	msgpack_packer *pk = begin_path(L, s, "write_file", base, mode >= 0 ? 3 : 2);
	if (mode >= 0) {
		pack_key(pk, "mode");
		msgpack_pack_int64(pk, mode);
	}
	pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, data, n);
	pack_key(pk, "append");
	append ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	return 0;
}

static uint64_t pack_stat(lua_State *L, struct lguest_sink *s, int base)
{
	begin_path(L, s, "stat", base, 0);
	return 0;
}

static int push_stat(lua_State *L, const struct ctl_msg *m, int base)
{
	static const char *const ints[] = { "size", "mode", "mtime_ns" };
	int64_t x;
	(void)base;
	lua_createtable(L, 0, 4);
	char *type = ctl_get_strdup(m, "type");
	lua_pushstring(L, type ? type : "other");
	free(type);
	lua_setfield(L, -2, "type");
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (ctl_get_int(m, ints[i], &x)) {
			lua_pushinteger(L, x);
			lua_setfield(L, -2, ints[i]);
		}
	return 1;
}

static uint64_t pack_listdir(lua_State *L, struct lguest_sink *s, int base)
{
	begin_path(L, s, "listdir", base, 0);
	return 0;
}

static int push_listdir(lua_State *L, const struct ctl_msg *m, int base)
{
	struct mpr r;
	struct mpr_item it;
	(void)base;
	lua_newtable(L);
	if (ctl_find(m, "entries", &r) && mpr_next(&r, &it, NULL) == 0 && it.type == MPR_ARRAY)
		for (uint32_t i = 0; i < it.v.count; i++) {
			struct mpr_item e;
			if (mpr_next(&r, &e, NULL) < 0 || e.type != MPR_STR)
				break;
			lua_pushlstring(L, (const char *)e.v.raw.ptr, e.v.raw.len);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	return 1;
}

static uint64_t pack_mkdir(lua_State *L, struct lguest_sink *s, int base)
{
	bool parents = false, opts = opts_check(L, base + 1, "vm:mkdir options", mkdir_keys);
	int64_t mode = -1;
	if (opts) {
		lua_getfield(L, base + 1, "parents");
		parents = lua_toboolean(L, -1);
		if (lua_getfield(L, base + 1, "mode") != LUA_TNIL)
			mode = opts_mode(L, -1, "vm:mkdir");
		lua_pop(L, 2);
	}
	msgpack_packer *pk = begin_path(L, s, "mkdir", base, mode >= 0 ? 2 : 1);
	if (mode >= 0) {
		pack_key(pk, "mode");
		msgpack_pack_int64(pk, mode);
	}
	pack_key(pk, "parents");
	parents ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	return 0;
}

static uint64_t pack_unlink(lua_State *L, struct lguest_sink *s, int base)
{
	begin_path(L, s, "unlink", base, 0);
	return 0;
}

static uint64_t pack_rename(lua_State *L, struct lguest_sink *s, int base)
{
	size_t fl, tl;
	const char *from = luaL_checklstring(L, base, &fl), *to = luaL_checklstring(L, base + 1, &tl);
	msgpack_packer *pk = sink_begin(s, "rename", 2);
	pack_key(pk, "from");
	pack_str(pk, from, fl);
	pack_key(pk, "to");
	pack_str(pk, to, tl);
	return 0;
}

const struct lguest_op lguest_ops[] = {
	{ "run", pack_run, push_run, 1, "vm:run options", lguest_cmd_keys },
	{ "read_file", pack_read_file, push_read_file, 0, NULL, NULL },
	{ "write_file", pack_write_file, push_nothing, 2, "vm:write_file options", write_file_keys },
	{ "stat", pack_stat, push_stat, 0, NULL, NULL },
	{ "listdir", pack_listdir, push_listdir, 0, NULL, NULL },
	{ "mkdir", pack_mkdir, push_nothing, 1, "vm:mkdir options", mkdir_keys },
	{ "unlink", pack_unlink, push_nothing, 0, NULL, NULL },
	{ "rename", pack_rename, push_nothing, 0, NULL, NULL },
	{ NULL, NULL, NULL, 0, NULL, NULL },
};

/* vm:<op>(...) of a file op: one round trip. */
static int one_call(lua_State *L)
{
	const struct lguest_op *op = lua_touserdata(L, lua_upvalueindex(1));
	if (op->opts_keys) /* before anything is asked of the VM */
		opts_check(L, 2 + op->opts_arg, op->opts_what, op->opts_keys);
	struct lvm *v = lvm_running(L, 1, op->name);
	struct lguest_sink sk = { &v->vm.agent, NULL };
	op->pack(L, &sk, 2);
	lvm_call(L, v, op->name, 0);
	return op->push(L, &v->vm.agent.resp, 2);
}

static const luaL_Reg runresult_methods[] = { { "ok", r_ok }, { "assert_ok", r_assert_ok }, { NULL, NULL } };

void lguest_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_vm_run);
	lua_setfield(L, methods, "run");
	for (const struct lguest_op *op = lguest_ops + 1; op->name; op++) {
		lua_pushlightuserdata(L, (void *)op);
		lua_pushcclosure(L, one_call, 1);
		lua_setfield(L, methods, op->name);
	}
	luaL_newmetatable(L, "provium.runresult");
	luaL_newlib(L, runresult_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

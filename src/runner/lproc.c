/* lproc.c - guest processes (contract in lproc.h). */
#include "lproc.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lguest.h"
#include "lstream.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "tclock.h"
#include "units.h"

struct lproc {
	struct scope_res res; /* first: a process is a scope resource */
	struct lvm *v;        /* kept alive by uservalue 2 */
	uint32_t proc;        /* the agent's handle */
	int64_t pid;
	unsigned gen; /* v->gen when it started */
	bool done;    /* waited for: the agent released the handle */
};

/* How long closing waits for a killed process group to go. */
#define CLOSE_WAIT_NS (5000000000ull)

void lproc_kill_release(struct lvm *v, uint32_t proc)
{
	struct pv_err err;
	int e = 0, rc;
	msgpack_packer *pk = agent_begin(&v->vm.agent, "kill", 2);
	msgpack_pack_str_with_body(pk, "proc", 4);
	msgpack_pack_uint32(pk, proc);
	msgpack_pack_str_with_body(pk, "signal", 6);
	msgpack_pack_int(pk, 9);
	rc = agent_call(&v->vm.agent, pv_mono_ns() + CLOSE_WAIT_NS, &e, &err);
	if (rc < 0 && rc != -EREMOTEIO) {
		lvm_mark_dead(v, err.msg);
		return;
	}
	pk = agent_begin(&v->vm.agent, "wait", 2);
	msgpack_pack_str_with_body(pk, "proc", 4);
	msgpack_pack_uint32(pk, proc);
	msgpack_pack_str_with_body(pk, "timeout_ms", 10);
	msgpack_pack_uint64(pk, CLOSE_WAIT_NS / 1000000);
	/* the guest bounds the wait; the host gives up a margin later */
	rc = agent_call_soft(&v->vm.agent, pv_mono_ns() + CLOSE_WAIT_NS + LVM_HOST_MARGIN_NS, &e, &err);
	if (rc < 0 && rc != -EREMOTEIO && rc != -ETIMEDOUT)
		lvm_mark_dead(v, err.msg);
}

static void proc_close(struct scope_res *r, enum scope_how how)
{
	struct lproc *p = (struct lproc *)r;
	struct lvm *v = p->v;
	if (p->done || !v || v->state != LVM_RUNNING || v->gen != p->gen)
		return; /* nothing left in the guest: released, or its QEMU is gone */
	if (how != SCOPE_BY_GC && !v->paused)
		lproc_kill_release(v, p->proc);
	else /* a finalizer, or a paused VM: at the next safe point */
		lvm_defer(v, LVM_REAP_PROC, p->proc, p->gen); /* a finalizer: at the next safe point */
}

static const struct scope_ops proc_ops = { SCOPE_PROCESS, "provium.process", proc_close, NULL, NULL };

static int l_vm_run_async(lua_State *L)
{
	opts_check(L, 3, "vm:run_async options", lguest_cmd_keys);
	struct lvm *v = lvm_running(L, 1, "run_async");
	msgpack_packer *pk;
	struct lproc *p;
	int64_t h = 0, pid = 0;
	int pidx;
	if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TTABLE)
		return luaL_error(L, "vm:run_async needs a shell command string or an argv array");
	/* the object exists before the guest process does: nothing between the
	 * spawn and scope_add can raise, so no error can leak the process */
	p = lua_newuserdatauv(L, sizeof(*p), 2);
	memset(p, 0, sizeof(*p));
	pidx = lua_gettop(L);
	luaL_setmetatable(L, "provium.process");
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, pidx, 1);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, pidx, 2);
	pk = agent_begin(&v->vm.agent, "spawn", lguest_count_cmd_args(L, 3));
	lguest_pack_cmd(L, pk, 2, 3);
	lvm_call(L, v, "run_async", 0);
	ctl_get_int(&v->vm.agent.resp, "proc", &h);
	ctl_get_int(&v->vm.agent.resp, "pid", &pid);
	p->v = v;
	p->proc = (uint32_t)h;
	p->pid = pid;
	p->gen = v->gen;
	scope_add(L, &p->res, &proc_ops);
	lua_settop(L, pidx);
	return 1;
}

/* The process at 1, which must be open, and its VM, which must be running. */
static struct lproc *check_proc(lua_State *L)
{
	struct lproc *p = luaL_checkudata(L, 1, "provium.process");
	if (!p->res.ops)
		return (luaL_error(L, "this process never started"), NULL);
	if (p->res.closed)
		return (luaL_error(L, "process %d was closed (its `<close>` block or the test that started it ended, "
				   "or it was collected): it was killed", (int)p->pid), NULL);
	lua_getiuservalue(L, 1, 2);
	lvm_running(L, -1, "process operations");
	lua_pop(L, 1);
	if (p->v->gen != p->gen)
		return (luaL_error(L, "process %d ran in VM '%s' before it was reset or restored: it is gone", (int)p->pid,
				   p->v->name), NULL);
	return p;
}

static void pack_key(msgpack_packer *pk, const char *k) { msgpack_pack_str_with_body(pk, k, strlen(k)); }

static int p_wait(lua_State *L)
{
	struct lproc *p = check_proc(L);
	uint64_t ns = 0;
	msgpack_packer *pk;
	struct pv_err err;
	int e = 0, rc;
	if (p->done)
		return luaL_error(L, "process %d was already waited for", (int)p->pid);
	bool by_test = false;
	if (!lua_isnoneornil(L, 2))
		ns = opts_duration(L, 2, "wait timeout");
	else if ((ns = lvm_test_time_left(L, "p:wait")) != 0)
		by_test = true; /* as vm:run: bounded by the test's meta.timeout */
	pk = agent_begin(&p->v->vm.agent, "wait", ns ? 2 : 1);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	if (ns) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (ns + 999999) / 1000000);
	}
	/* as vm:run: the guest bounds the wait, the host gives up LVM_HOST_MARGIN_NS later */
	rc = ns ? agent_call_soft(&p->v->vm.agent, pv_mono_ns() + ns + LVM_HOST_MARGIN_NS, &e, &err)
		: agent_call(&p->v->vm.agent, 0, &e, &err);
	bool timed_out = (rc == -EREMOTEIO && e == ETIMEDOUT) || rc == -ETIMEDOUT;
	if (timed_out && by_test)
		return tclock_timed_out(L, lua_pushfstring(L, "p:wait() of process %d", (int)p->pid));
	if (timed_out) {
		char b[32];
		return runner_failf(L, "process %d still running after %s", (int)p->pid, pv_format_duration(ns, b));
	}
	if (rc == -EREMOTEIO)
		return luaL_error(L, "VM '%s': %s", p->v->name, err.msg);
	if (rc < 0)
		return lvm_died(L, p->v, "wait", err.msg);
	p->done = true;
	lua_getiuservalue(L, 1, 1);
	lguest_push_result(L, &p->v->vm.agent.resp, lua_gettop(L));
	return 1;
}

static const struct {
	const char *name;
	int num;
} signals[] = { { "HUP", 1 }, { "INT", 2 }, { "QUIT", 3 }, { "KILL", 9 }, { "USR1", 10 }, { "USR2", 12 },
		{ "TERM", 15 }, { "CONT", 18 }, { "STOP", 19 } };

int lproc_signal_arg(lua_State *L, int idx)
{
	int sig = 15;
	if (lua_type(L, idx) == LUA_TNUMBER)
		sig = (int)luaL_checkinteger(L, idx);
	else if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tostring(L, idx);
		if (!strncmp(s, "SIG", 3))
			s += 3;
		sig = -1;
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (!strcmp(s, signals[i].name))
				sig = signals[i].num;
		if (sig < 0)
			return luaL_error(L, "unknown signal '%s' (use a number or one of HUP INT QUIT KILL USR1 USR2 TERM CONT STOP)",
					  lua_tostring(L, idx));
	}
	return sig;
}

static int p_kill(lua_State *L)
{
	struct lproc *p = check_proc(L);
	int sig = lproc_signal_arg(L, 2);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "kill", 2);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	pack_key(pk, "signal");
	msgpack_pack_int(pk, sig);
	lvm_call(L, p->v, "kill", 0);
	return 0;
}

static int p_pid(lua_State *L)
{
	struct lproc *p = luaL_checkudata(L, 1, "provium.process");
	lua_pushinteger(L, p->pid);
	return 1;
}

static int p_stdin_write(lua_State *L)
{
	struct lproc *p = check_proc(L);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "stdin_write", 2);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, s, n);
	lvm_call(L, p->v, "stdin_write", 0);
	return 0;
}

static int p_close_stdin(lua_State *L)
{
	struct lproc *p = check_proc(L);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "close_stdin", 1);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	lvm_call(L, p->v, "close_stdin", 0);
	return 0;
}

/* "running", or as wait would say: "exited", "signalled", "timed_out"; then
 * the exit code or signal. Does not wait, and leaves the process to wait. */
static int p_status(lua_State *L)
{
	struct lproc *p = check_proc(L);
	int64_t n;
	if (p->done)
		return luaL_error(L, "process %d was already waited for: its result has the status", (int)p->pid);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "proc_status", 1);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	lvm_call(L, p->v, "status", 0);
	char *st = ctl_get_strdup(&p->v->vm.agent.resp, "status");
	lua_pushstring(L, st ? st : "running");
	free(st);
	if (ctl_get_int(&p->v->vm.agent.resp, "exit_code", &n) || ctl_get_int(&p->v->vm.agent.resp, "signal", &n))
		lua_pushinteger(L, n);
	else
		lua_pushnil(L);
	return 2;
}

/* p:close(): as its scope's end would (killed unless waited for). */
static int p_close(lua_State *L)
{
	struct lproc *p = luaL_checkudata(L, 1, "provium.process");
	if (p->res.ops && !p->res.closed)
		scope_close(&p->res, SCOPE_BY_USER);
	return 0;
}

static int out_stream(lua_State *L, const char *which)
{
	static const char *const keys[] = { "buffer", NULL };
	struct lproc *p = check_proc(L);
	bool opts = opts_check(L, 2, "stream options", keys);
	if (p->done)
		return luaL_error(L, "process %d was already waited for: its %s is in the result", (int)p->pid, which);
	lua_getiuservalue(L, 1, 2);
	const char *what = lua_pushfstring(L, "%s of process %d", which, (int)p->pid);
	msgpack_packer *pk = lstream_open_begin(L, -2, what, opts ? 2 : 0, 2);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	pack_key(pk, "which");
	msgpack_pack_str_with_body(pk, which, strlen(which));
	lstream_open_finish(L);
	return 1;
}

static int p_stdout_stream(lua_State *L)
{
	return out_stream(L, "stdout");
}

static int p_stderr_stream(lua_State *L)
{
	return out_stream(L, "stderr");
}

static const luaL_Reg process_methods[] = {
	{ "wait", p_wait }, { "kill", p_kill }, { "signal", p_kill }, { "pid", p_pid },
	{ "stdin_write", p_stdin_write }, { "close_stdin", p_close_stdin }, { "status", p_status },
	{ "close", p_close }, { "stdout_stream", p_stdout_stream }, { "stderr_stream", p_stderr_stream },
	{ NULL, NULL },
};

void lproc_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_vm_run_async);
	lua_setfield(L, methods, "run_async");
	luaL_newlib(L, process_methods);
	scope_set_methods(L, &proc_ops);
}

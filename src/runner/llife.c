/* llife.c - a running VM's lifecycle (docs/lua-api.md, "Pause, reset and the
 * power button"): vm:pause(), vm:resume(), vm:reset(), vm:power_button(),
 * vm:boot_count(), and provium:pause() / provium:resume() for every VM of
 * the file.
 *
 * A paused VM stays in the running state (its QEMU is alive, its pool share
 * held) with v->paused set: every op on it raises naming the pause
 * (lvm_running), a stream of it gives what it buffered and then raises, and
 * handle releases (processes, streams, files closed meanwhile) wait in the
 * VM's queue until vm:resume(). Guest time does not advance while paused
 * (QEMU stops the guest's clocks); the wall clock is left as it is.
 *
 * vm:reset() is a hard reset in the same QEMU: the guest reboots, its agent
 * says hello again on the same connection, and everything the old agent held
 * is void: processes, streams and file handles (as after a restore, v->gen
 * moves on). The guest's network is set up again.
 */
#include "llife.h"

#include <lauxlib.h>
#include <string.h>

#include "ldisk.h"
#include "lnet.h"
#include "ltemplate.h"
#include "lvm.h"
#include "runner_priv.h"

#define RESET_TIMEOUT_NS (180000000000ull)

/* The VM at 1, running; paused or not as `want_paused` says (raises if not). */
static struct lvm *check(lua_State *L, const char *what, bool want_paused)
{
	struct lvm *v = lvm_check(L, 1);
	if (v->state != LVM_RUNNING)
		return (lvm_state_error(L, v, what), NULL);
	if (v->paused != want_paused)
		return (luaL_error(L, "VM '%s' is %s: %s", v->name, v->paused ? "paused" : "not paused",
				   want_paused ? "vm:resume() resumes a paused VM only" : "vm:resume() it first"), NULL);
	return v;
}

static int qmp(lua_State *L, struct lvm *v, const char *cmd, const char *what)
{
	struct pv_err err;
	if (vm_qmp_simple(&v->vm, cmd, &err) < 0) {
		if (vm_exited(&v->vm))
			return lvm_died(L, v, what, err.msg);
		return luaL_error(L, "VM '%s': %s: %s", v->name, what, err.msg);
	}
	return 0;
}

static void set_paused(lua_State *L, struct lvm *v, bool paused)
{
	qmp(L, v, paused ? "stop" : "cont", paused ? "pause" : "resume");
	v->paused = paused;
	if (!paused)
		lvm_settle(v); /* what was closed while it was paused */
}

static int l_pause(lua_State *L)
{
	set_paused(L, check(L, "pause", false), true);
	return 0;
}

static int l_resume(lua_State *L)
{
	set_paused(L, check(L, "resume", true), false);
	return 0;
}

static int l_reset(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "reset");
	struct pv_err err;
	int rc = vm_reset(&v->vm, pv_mono_ns() + RESET_TIMEOUT_NS, &err);
	/* the old agent's handles are void whatever happened */
	v->gen++;
	v->nreap = 0;
	if (rc < 0)
		return lvm_died(L, v, "reset", err.msg);
	v->boot_count++;
	v->boot_mono = v->vm.started;
	ldisk_resolve(L, v);
	v->boot_kind = "cold"; /* the kernel booted anew */
	ltemplate_identity(L, v); /* its hostname again */
	lnet_guest_setup(L, v);
	return 0;
}

static int l_power_button(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "power_button");
	qmp(L, v, "system_powerdown", "power_button");
	return 0;
}

static int l_boot_count(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_pushinteger(L, v->boot_count);
	return 1;
}

/* provium:pause() / provium:resume(): every running VM of this state that is
 * not (or is) paused already. */
static int all(lua_State *L, bool pause)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vm_list");
	lua_Unsigned n = lua_rawlen(L, -1);
	for (lua_Unsigned i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, (lua_Integer)i);
		struct lvm *v = lua_touserdata(L, -1);
		if (v && v->state == LVM_RUNNING && v->paused != pause)
			set_paused(L, v, pause);
		lua_pop(L, 1);
	}
	return 0;
}

static int l_provium_pause(lua_State *L)
{
	return all(L, true);
}

static int l_provium_resume(lua_State *L)
{
	return all(L, false);
}

void llife_install(lua_State *L, int methods)
{
	static const luaL_Reg vm_methods[] = {
		{ "pause", l_pause }, { "resume", l_resume }, { "reset", l_reset },
		{ "power_button", l_power_button }, { "boot_count", l_boot_count }, { NULL, NULL },
	};
	methods = lua_absindex(L, methods);
	for (const luaL_Reg *r = vm_methods; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, methods, r->name);
	}
	lua_getglobal(L, "provium");
	/* raw: the provium table's __newindex only takes settings */
	lua_pushliteral(L, "pause");
	lua_pushcfunction(L, l_provium_pause);
	lua_rawset(L, -3);
	lua_pushliteral(L, "resume");
	lua_pushcfunction(L, l_provium_resume);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/* wait.c - wait_until (contract in wait.h). */
#include "wait.h"

#include <errno.h>
#include <lauxlib.h>
#include <time.h>

#include "opts.h"
#include "runner_priv.h"
#include "tclock.h"
#include "qmp.h" /* pv_mono_ns */
#include "units.h"

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int l_wait_until(lua_State *L)
{
	uint64_t timeout = 10ull * 1000000000u, interval = 50ull * 1000000u, start, now;
	const char *desc = "the condition";
	static const char *const keys[] = { "timeout", "interval", "desc", NULL };
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (opts_check(L, 2, "wait_until options", keys)) {
		if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
			timeout = opts_duration(L, -1, "wait_until timeout");
		if (lua_getfield(L, 2, "interval") != LUA_TNIL)
			interval = opts_duration(L, -1, "wait_until interval");
		if (lua_getfield(L, 2, "desc") != LUA_TNIL)
			desc = luaL_checkstring(L, -1);
		lua_pop(L, 3);
	}
	start = pv_mono_ns();
	uint64_t deadline = tclock_deadline(); /* the test's meta.timeout, 0: none */
	for (;;) {
		lua_pushvalue(L, 1);
		lua_call(L, 0, 1); /* errors from pred propagate at once */
		if (lua_toboolean(L, -1))
			return 1;
		lua_pop(L, 1);
		now = pv_mono_ns();
		if (now - start >= timeout) {
			char b[32];
			return runner_failf(L, "wait_until timed out after %s waiting for %s", pv_format_duration(timeout, b), desc);
		}
		if (deadline && now >= deadline)
			return tclock_timed_out(L, lua_pushfstring(L, "wait_until waiting for %s", desc));
		uint64_t nap = interval;
		if (now + nap > start + timeout)
			nap = start + timeout - now;
		if (deadline && now + nap > deadline)
			nap = deadline - now;
		sleep_ns(nap);
	}
}

void wait_install(lua_State *L)
{
	lua_pushcfunction(L, l_wait_until);
	lua_setglobal(L, "wait_until");
}

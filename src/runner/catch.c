/* catch.c - pcall, xpcall and coroutine.resume of test code (contract in catch.h). */
#include "catch.h"

#include <lauxlib.h>

#include "lheap.h"
#include "runner_priv.h"
#include "tclock.h"

/* pcall, xpcall and coroutine.resume catch errors; once the test's time is
 * up they raise its timeout again instead of returning, so that a loop of
 * pcalls ends with the test. A refused allocation caught by one reads as the
 * limit, not as Lua's "not enough memory". lua_callk keeps them yieldable. */
static int after_catch(lua_State *L, int status, lua_KContext before)
{
	(void)status;
	tclock_recheck(L);
	if ((unsigned long)before != lheap_refusals() && lua_gettop(L) >= 2 && lua_type(L, 1) == LUA_TBOOLEAN &&
	    !lua_toboolean(L, 1) && lheap_is_memory_error(L, 2)) {
		char msg[300];
		lua_pushstring(L, lheap_limit_msg(msg, sizeof(msg)));
		lua_replace(L, 2);
	}
	return lua_gettop(L);
}

static int catching(lua_State *L)
{
	lua_KContext before = (lua_KContext)lheap_refusals();
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, before, after_catch);
	return after_catch(L, LUA_OK, before);
}

static void wrap_catcher(lua_State *L, int table, const char *name)
{
	table = lua_absindex(L, table);
	lua_getfield(L, table, name);
	lua_pushcclosure(L, catching, 1);
	lua_setfield(L, table, name);
}

void catch_install(lua_State *L)
{
	lua_pushglobaltable(L);
	wrap_catcher(L, -1, "pcall");
	wrap_catcher(L, -1, "xpcall");
	lua_getfield(L, -1, "coroutine");
	wrap_catcher(L, -1, "resume");
	lua_pop(L, 2);
}

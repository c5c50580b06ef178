/* ljson.c - the `json` global (docs/lua-api.md, "json"): Debian's lua-cjson
 * with the edges a test author meets made explicit.
 *
 *   json.encode(v)  JSON text of v. An empty table is `{}` (an object: Lua
 *                   cannot tell an empty array from an empty map); json.null
 *                   encodes null; a string that is not valid UTF-8 raises
 *                   (JSON text is UTF-8), as does a function, a cycle, or a
 *                   sparse array (more than half holes).
 *   json.decode(s)  the value of JSON text s; null decodes to json.null (not
 *                   nil, so that arrays keep their length). Text that is not
 *                   valid UTF-8, or not JSON, raises naming what was wrong.
 *   json.null       the null sentinel (cjson's lightuserdata).
 */
#include "ljson.h"

#include <lauxlib.h>
#include <lua-cjson.h>

#include "mpr.h"

static int cjson_fn(lua_State *L, const char *name)
{
	lua_getfield(L, lua_upvalueindex(1), name);
	return lua_gettop(L);
}

static int j_encode(lua_State *L)
{
	size_t n;
	luaL_checkany(L, 1);
	lua_settop(L, 1);
	cjson_fn(L, "encode");
	lua_pushvalue(L, 1);
	lua_call(L, 1, 1);
	const char *s = lua_tolstring(L, -1, &n);
	if (!pv_utf8_valid((const uint8_t *)s, n))
		return luaL_error(L, "json.encode: a string in the value is not valid UTF-8, and JSON text must be "
				  "(encode binary data yourself, e.g. as hex)");
	return 1;
}

static int j_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	if (!pv_utf8_valid((const uint8_t *)s, n))
		return luaL_error(L, "json.decode: the text is not valid UTF-8, so it is not JSON");
	cjson_fn(L, "decode");
	lua_pushvalue(L, 1);
	return lua_call(L, 1, 1), 1;
}

void ljson_install(lua_State *L)
{
	luaL_requiref(L, "cjson", luaopen_cjson, 0); /* not a global: json is the API */
	int cj = lua_gettop(L);
	/* errors raised by cjson say "Expected ... at character N"; kept as they are */
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, cj);
	lua_pushcclosure(L, j_encode, 1);
	lua_setfield(L, -2, "encode");
	lua_pushvalue(L, cj);
	lua_pushcclosure(L, j_decode, 1);
	lua_setfield(L, -2, "decode");
	lua_getfield(L, cj, "null");
	lua_setfield(L, -2, "null");
	lua_setglobal(L, "json");
	lua_pop(L, 1);
}

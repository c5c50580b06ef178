/* tassert.c - the test handle's assertions (contract in tassert.h). */
#include "tassert.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "runner_priv.h"
#include "tclock.h"

/* Pushes a short, readable rendering of the value at idx, for failure
 * messages. Each piece is pushed and concatenated on the stack: a luaL_Buffer
 * must stay at the top while it grows, and the table walk pushes keys and
 * values above it. */
static void repr(lua_State *L, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 8, "rendering a value");
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		luaL_addchar(&b, '"');
		for (size_t i = 0; i < n && i < 400; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"' || c == '\\') {
				luaL_addchar(&b, '\\');
				luaL_addchar(&b, (char)c);
			} else if (c == '\n') {
				luaL_addstring(&b, "\\n");
			} else if (c < 32 || c == 127) {
				char tmp[8];
				snprintf(tmp, sizeof(tmp), "\\x%02x", c);
				luaL_addstring(&b, tmp);
			} else {
				luaL_addchar(&b, (char)c);
			}
		}
		if (n > 400)
			luaL_addstring(&b, "...");
		luaL_addchar(&b, '"');
		luaL_pushresult(&b);
		return;
	}
	case LUA_TTABLE: {
		int n = 0, text;
		if (depth > 2) {
			lua_pushliteral(L, "{...}");
			return;
		}
		lua_pushliteral(L, "{");
		text = lua_gettop(L); /* the rendering so far */
		lua_pushnil(L);
		while (lua_next(L, idx)) { /* text key value */
			int k = text + 1, v = text + 2;
			if (n++)
				lua_pushliteral(L, ", ");
			else
				lua_pushliteral(L, "");
			if (n > 20) {
				lua_pushliteral(L, "...");
			} else {
				if (lua_type(L, k) == LUA_TSTRING) {
					lua_pushvalue(L, k);
					lua_pushliteral(L, " = ");
				} else if (!(lua_isinteger(L, k) && lua_tointeger(L, k) == n)) {
					lua_pushliteral(L, "[");
					repr(L, k, depth + 1);
					lua_pushliteral(L, "] = ");
				}
				repr(L, v, depth + 1);
			}
			lua_concat(L, lua_gettop(L) - v); /* this entry */
			lua_pushvalue(L, text);
			lua_insert(L, -2);
			lua_concat(L, 2);
			lua_replace(L, text);
			if (n > 20) {
				lua_settop(L, text);
				break;
			}
			lua_settop(L, k); /* the key, for lua_next */
		}
		lua_pushliteral(L, "}");
		lua_concat(L, 2);
		return;
	}
	default:
		luaL_tolstring(L, idx, NULL);
		return;
	}
}

const char *tassert_repr(lua_State *L, int idx)
{
	repr(L, idx, 0);
	return lua_tostring(L, -1);
}

/* Deep equality compares tables nested this deep; deeper ones (or a cycle)
 * are an error rather than a wrong answer or a C stack overflow. */
#define DEEP_EQ_MAX_DEPTH 200

static bool deep_eq(lua_State *L, int a, int b, int depth)
{
	a = lua_absindex(L, a);
	b = lua_absindex(L, b);
	if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE || lua_rawequal(L, a, b))
		return lua_compare(L, a, b, LUA_OPEQ);
	if (depth > DEEP_EQ_MAX_DEPTH)
		return luaL_error(L, "cannot compare tables nested deeper than %d levels (is there a cycle?)",
				  DEEP_EQ_MAX_DEPTH) != 0;
	/* a key, a value and their counterparts per level */
	luaL_checkstack(L, 6, "comparing nested tables");
	if (luaL_getmetafield(L, a, "__eq") != LUA_TNIL) {
		lua_pop(L, 1);
		return lua_compare(L, a, b, LUA_OPEQ);
	}
	lua_pushnil(L);
	while (lua_next(L, a)) {
		lua_pushvalue(L, -2);
		lua_rawget(L, b);
		bool eq = deep_eq(L, -2, -1, depth + 1);
		lua_pop(L, 2);
		if (!eq) {
			lua_pop(L, 1);
			return false;
		}
	}
	lua_pushnil(L);
	while (lua_next(L, b)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawget(L, a);
		bool missing = lua_isnil(L, -1);
		lua_pop(L, 1);
		if (missing) {
			lua_pop(L, 1);
			return false;
		}
	}
	return true;
}

/* "msg: " prefix when an optional message is given at index idx. */
static const char *opt_msg(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return "";
	lua_pushfstring(L, ": %s", luaL_tolstring(L, idx, NULL));
	return lua_tostring(L, -1);
}

/* ---- t: the test handle ---------------------------------------------------- */

static int t_assert(lua_State *L)
{
	if (lua_toboolean(L, 2))
		return 0;
	return runner_failf(L, "assertion failed%s", opt_msg(L, 3));
}

static int t_assert_eq(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (deep_eq(L, 2, 3, 0))
		return 0;
	const char *a = tassert_repr(L, 2), *b = tassert_repr(L, 3);
	return runner_failf(L, "assert_eq failed%s: %s ~= %s", opt_msg(L, 4), a, b);
}

static int t_assert_neq(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (!deep_eq(L, 2, 3, 0))
		return 0;
	const char *a = tassert_repr(L, 2);
	return runner_failf(L, "assert_neq failed%s: both are %s", opt_msg(L, 4), a);
}

static int t_assert_contains(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (lua_type(L, 2) == LUA_TSTRING) {
		size_t hn, nn;
		const char *h = lua_tolstring(L, 2, &hn), *n = luaL_checklstring(L, 3, &nn);
		if (nn == 0 || memmem(h, hn, n, nn))
			return 0;
	} else if (lua_type(L, 2) == LUA_TTABLE) {
		lua_Integer len = luaL_len(L, 2);
		for (lua_Integer i = 1; i <= len; i++) {
			lua_geti(L, 2, i);
			bool eq = deep_eq(L, -1, 3, 0);
			lua_pop(L, 1);
			if (eq)
				return 0;
		}
	} else {
		return luaL_error(L, "assert_contains: the haystack must be a string or an array, got %s",
				  luaL_typename(L, 2));
	}
	const char *h = tassert_repr(L, 2), *n = tassert_repr(L, 3);
	return runner_failf(L, "assert_contains failed%s: %s not found in %s", opt_msg(L, 4), n, h);
}

static int t_assert_raises(lua_State *L)
{
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	int rc = lua_pcall(L, 0, 0, 0);
	tclock_recheck(L); /* not an error of fn's: the test's time is up */
	if (rc == LUA_OK)
		return runner_failf(L, "assert_raises failed%s: the function returned without an error",
			     opt_msg(L, 3));
	if (lua_istable(L, -1)) {
		if (lua_getfield(L, -1, "provium_failure") == LUA_TSTRING)
			return 1; /* an assertion inside: hand back its message */
		lua_pop(L, 1);
	}
	return 1; /* the error object itself */
}

static int t_fail(lua_State *L)
{
	return runner_failf(L, "%s", luaL_optstring(L, 2, "failed"));
}

static int t_skip(lua_State *L)
{
	return runner_skip(L, luaL_optstring(L, 2, "skipped by t:skip()"));
}

static const luaL_Reg t_methods[] = {
	{ "assert", t_assert },
	{ "assert_eq", t_assert_eq },
	{ "assert_neq", t_assert_neq },
	{ "assert_contains", t_assert_contains },
	{ "assert_raises", t_assert_raises },
	{ "fail", t_fail },
	{ "skip", t_skip },
	{ NULL, NULL },
};

void tassert_install(lua_State *L)
{
	luaL_newmetatable(L, "provium.test");
	luaL_newlib(L, t_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

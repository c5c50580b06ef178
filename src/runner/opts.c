/* opts.c - durations, sizes and options tables from Lua (contract in opts.h). */
#include "opts.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tassert.h"
#include "units.h"

uint64_t opts_duration(lua_State *L, int idx, const char *what)
{
	struct pv_err err;
	uint64_t ns = 0;
	int rc;
	if (lua_type(L, idx) == LUA_TNUMBER)
		rc = pv_duration_from_seconds(lua_tonumber(L, idx), &ns, &err);
	else if (lua_type(L, idx) == LUA_TSTRING)
		rc = pv_parse_duration(lua_tostring(L, idx), &ns, &err);
	else
		return (uint64_t)luaL_error(L, "%s must be a duration (seconds, or a string like \"5s\"), got %s",
					    what, luaL_typename(L, idx));
	if (rc < 0)
		return (uint64_t)luaL_error(L, "%s: %s", what, err.msg);
	return ns;
}

uint64_t opts_size(lua_State *L, int idx, const char *what)
{
	struct pv_err err;
	uint64_t n = 0;
	int rc;
	if (lua_type(L, idx) == LUA_TNUMBER)
		rc = pv_size_from_number(lua_tonumber(L, idx), &n, &err);
	else if (lua_type(L, idx) == LUA_TSTRING)
		rc = pv_parse_size(lua_tostring(L, idx), &n, &err);
	else
		return (uint64_t)luaL_error(L, "%s must be a size (bytes, or a string like \"512M\"), got %s",
					    what, luaL_typename(L, idx));
	if (rc < 0)
		return (uint64_t)luaL_error(L, "%s: %s", what, err.msg);
	return n;
}

static size_t count_keys(const char *const *keys)
{
	size_t n = 0;
	while (keys[n])
		n++;
	return n;
}

/* The keys of the table at idx against keys (NULL-terminated). Closed: any
 * other key is an error. Open (test meta, whose keys are free metadata): only
 * a key one letter away from one of keys is, as it is surely a typo. Of
 * several bad keys the smallest is reported, so that the message does not
 * depend on hash order. */
int opts_check_keys(lua_State *L, int idx, const char *what, const char *const *keys, bool open)
{
	size_t nkeys = count_keys(keys);
	const char *bad = NULL, *near = NULL;

	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 4, "checking options");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			if (open)
				continue; /* meta_table reports it */
			const char *type = luaL_typename(L, -1);
			return luaL_error(L, "%s: keys must be names, got %s key %s", what, type, tassert_repr(L, -1));
		}
		const char *k = lua_tostring(L, -1);
		bool known = false;
		for (size_t i = 0; i < nkeys && !known; i++)
			known = strcmp(k, keys[i]) == 0;
		if (known)
			continue;
		const char *c = pv_closest_name(k, keys, nkeys, open ? 1 : 2);
		if ((!open || c) && (!bad || strcmp(k, bad) < 0)) {
			bad = k;
			near = c;
		}
	}
	if (!bad)
		return 0;
	char msg[1024], q[80];
	size_t o = 0;
	/* o stops at the end: a cut message is still one line */
#define ADD(...) (o += (size_t)snprintf(msg + o, sizeof(msg) - o, __VA_ARGS__), o = o < sizeof(msg) ? o : sizeof(msg) - 1)
	ADD("%s: unknown key %s", what, pv_quote(bad, strlen(bad), q, sizeof(q)));
	if (!nkeys) {
		ADD(" (it takes none)");
	} else {
		ADD(" (");
		if (near)
			ADD("did you mean \"%s\"? ", near);
		ADD("%s", open ? "meta keys the runner reads: " : "valid keys: ");
		for (size_t i = 0; i < nkeys; i++)
			ADD("%s%s", i ? ", " : "", keys[i]);
		if (open)
			ADD("; other keys are free metadata, but not one a letter away from these");
		ADD(")");
	}
#undef ADD
	return luaL_error(L, "%s", msg);
}

bool opts_check(lua_State *L, int idx, const char *what, const char *const *keys)
{
	if (lua_isnoneornil(L, idx))
		return false;
	if (!lua_istable(L, idx))
		return luaL_error(L, "%s must be a table, got %s", what, luaL_typename(L, idx)) != 0;
	opts_check_keys(L, idx, what, keys, false);
	return true;
}

int64_t opts_mode(lua_State *L, int idx, const char *what)
{
	lua_Integer m = -1;
	if (lua_isinteger(L, idx)) {
		m = lua_tointeger(L, idx);
	} else if (lua_type(L, idx) == LUA_TSTRING) {
		const char *s = lua_tostring(L, idx);
		char *end;
		long v = strtol(s, &end, 8);
		if (*s && !*end)
			m = v;
	}
	if (m < 0 || m > 07777)
		return luaL_error(L, "%s: mode must be a permission mode such as \"0644\" (octal, as a string) or 420 "
				  "(a number), 0 to 07777, got %s", what, luaL_tolstring(L, idx, NULL));
	return m;
}

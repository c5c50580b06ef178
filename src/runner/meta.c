/* meta.c - test metadata from Lua to events (contract in meta.h). */
#include "meta.h"

#include <lauxlib.h>
#include <string.h>

#include "mpr.h"
#include "opts.h"
#include "tassert.h"

static int meta_value(lua_State *L, struct pv_arena *a, int idx, struct pv_meta_value *out, int depth, const char *path);

static bool is_sequence(lua_State *L, int idx, lua_Integer *ret_n)
{
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return false;
		}
		n++;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		bool nil = lua_rawgeti(L, idx, i) == LUA_TNIL;
		lua_pop(L, 1);
		if (nil)
			return false;
	}
	*ret_n = n;
	return true;
}

static char *adup(lua_State *L, struct pv_arena *a, const char *s, size_t n)
{
	char *p = pv_arena_strndup(a, s, n);
	if (!p)
		return (luaL_error(L, "out of memory"), NULL);
	return p;
}

static int meta_table(lua_State *L, struct pv_arena *a, int idx, struct pv_meta_map *out, int depth, const char *path)
{
	uint32_t n = 0, i = 0;
	idx = lua_absindex(L, idx);
	/* key, value and path per level: a deep table would overrun the stack */
	luaL_checkstack(L, 6, "converting nested test metadata");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "%s: keys must be strings, got %s key %s", path,
					  luaL_typename(L, -1), tassert_repr(L, -1));
		n++;
	}
	out->n = n;
	out->entries = n ? pv_arena_calloc(a, n, sizeof(*out->entries)) : NULL;
	if (n && !out->entries)
		return luaL_error(L, "out of memory");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t kl;
		const char *k = lua_tolstring(L, -2, &kl);
		if (!pv_utf8_valid((const uint8_t *)k, kl))
			return luaL_error(L, "%s: key %s is not valid UTF-8", path, tassert_repr(L, -2));
		out->entries[i].key = (struct pv_str){ adup(L, a, k, kl), kl };
		lua_pushfstring(L, "%s.%s", path, k);
		meta_value(L, a, -2, &out->entries[i].value, depth + 1, lua_tostring(L, -1));
		lua_pop(L, 2);
		i++;
	}
	return 0;
}

static int meta_value(lua_State *L, struct pv_arena *a, int idx, struct pv_meta_value *out, int depth, const char *path)
{
	idx = lua_absindex(L, idx);
	if (depth > PV_META_MAX_DEPTH)
		return luaL_error(L, "%s: nested deeper than %d levels", path, PV_META_MAX_DEPTH);
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		out->type = PV_META_BOOL;
		out->v.b = lua_toboolean(L, idx);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			out->type = PV_META_INT;
			out->v.i = lua_tointeger(L, idx);
		} else {
			out->type = PV_META_FLOAT;
			out->v.f = lua_tonumber(L, idx);
		}
		return 0;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		/* a Lua string is bytes: valid UTF-8 travels as str, anything else as bin */
		out->type = pv_utf8_valid((const uint8_t *)s, n) ? PV_META_STR : PV_META_BIN;
		out->v.s = (struct pv_str){ adup(L, a, s, n), n };
		return 0;
	}
	case LUA_TTABLE: {
		lua_Integer n;
		luaL_checkstack(L, 6, "converting nested test metadata");
		if (is_sequence(L, idx, &n)) {
			out->type = PV_META_ARRAY;
			out->v.array.n = (uint32_t)n;
			out->v.array.items = n ? pv_arena_calloc(a, (size_t)n, sizeof(struct pv_meta_value)) : NULL;
			if (n && !out->v.array.items)
				return luaL_error(L, "out of memory");
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				lua_pushfstring(L, "%s[%d]", path, (int)i);
				meta_value(L, a, -2, &out->v.array.items[i - 1], depth + 1, lua_tostring(L, -1));
				lua_pop(L, 2);
			}
			return 0;
		}
		out->type = PV_META_MAP;
		return meta_table(L, a, idx, &out->v.map, depth, path);
	}
	default:
		return luaL_error(L, "%s: a %s cannot be test metadata (use strings, numbers, booleans, tables)",
				  path, luaL_typename(L, idx));
	}
}

int meta_from_lua(lua_State *L, int idx, struct pv_meta_map *out, struct pv_arena *a, const char *path)
{
	return meta_table(L, a, idx, out, 0, path);
}

int meta_read(lua_State *L, int idx, struct meta_read *out, struct pv_arena *a)
{
	static const char *const read_keys[] = { "skip", "slow", "tags", "timeout", NULL };
	int ty;

	idx = lua_absindex(L, idx);
	memset(out, 0, sizeof(*out));
	opts_check_keys(L, idx, "meta", read_keys, true);
	meta_from_lua(L, idx, &out->map, a, "meta");
	ty = lua_getfield(L, idx, "skip");
	if (ty == LUA_TSTRING)
		out->skip = adup(L, a, lua_tostring(L, -1), lua_rawlen(L, -1));
	else if (ty == LUA_TBOOLEAN && lua_toboolean(L, -1))
		out->skip = adup(L, a, "skipped (meta.skip)", 19);
	else if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
		return luaL_error(L, "meta.skip must be a string (the reason) or a boolean, got %s",
				  lua_typename(L, ty));
	lua_pop(L, 1);
	ty = lua_getfield(L, idx, "slow");
	if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
		return luaL_error(L, "meta.slow must be a boolean, got %s", lua_typename(L, ty));
	out->slow = lua_toboolean(L, -1);
	lua_pop(L, 1);
	ty = lua_getfield(L, idx, "timeout");
	if (ty != LUA_TNIL)
		out->timeout_ns = opts_duration(L, -1, "meta.timeout");
	lua_pop(L, 1);
	ty = lua_getfield(L, idx, "tags");
	if (ty == LUA_TSTRING) {
		out->ntags = 1;
		out->tags = pv_arena_alloc(a, sizeof(char *));
		if (!out->tags)
			return luaL_error(L, "out of memory");
		out->tags[0] = adup(L, a, lua_tostring(L, -1), lua_rawlen(L, -1));
	} else if (ty == LUA_TTABLE) {
		lua_Integer n = luaL_len(L, -1);
		out->tags = pv_arena_calloc(a, (size_t)(n > 0 ? n : 1), sizeof(char *));
		if (!out->tags)
			return luaL_error(L, "out of memory");
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_geti(L, -1, i) != LUA_TSTRING)
				return luaL_error(L, "meta.tags[%d] must be a string", (int)i);
			out->tags[out->ntags++] = adup(L, a, lua_tostring(L, -1), lua_rawlen(L, -1));
			lua_pop(L, 1);
		}
	} else if (ty != LUA_TNIL) {
		return luaL_error(L, "meta.tags must be an array of strings, got %s", lua_typename(L, ty));
	}
	lua_pop(L, 1);
	return 0;
}

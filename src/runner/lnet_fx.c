/* lnet_fx.c - a lab fixture's network (contract in lnet.h; shared parts in
 * lnet_priv.h): bridge:_describe, which lsnap.c's Lua side packs into the
 * cache entry's net.bin, and provium._bridge_restore, which makes the
 * bridges again when the lab resumes. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lnet.h"
#include "lnet_priv.h"
#include "scope.h"

struct vm_bridge_find {
	const char *vm, *found;
};

static void vm_bridge_find(struct scope_res *r, void *ud)
{
	struct lbridge *b = (struct lbridge *)r;
	struct vm_bridge_find *f = ud;
	for (int k = 0; k < b->nslots && !f->found; k++)
		if (b->m[k].vm && !b->m[k].detached && strcmp(b->m[k].vm->name, f->vm) == 0)
			f->found = b->name;
}

const char *lnet_vm_bridge(lua_State *L, const char *vm_name)
{
	struct vm_bridge_find f = { vm_name, NULL };
	scope_each(L, SCOPE_BRIDGE, vm_bridge_find, &f);
	return f.found;
}

/* bridge:_describe(vms) -> { seed, net, prefix, uplink, rules, members =
 * {{vm, mac, ip, prefix}, ...} } with the members whose VM is a key of vms
 * (the VMs of the lab snapshot), in attach order. Raises for a member of
 * those that was detached (its NIC is in the VM's state but off the switch). */
static int l_describe(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "_describe");
	luaL_checktype(L, 2, LUA_TTABLE);
	int order[LNET_MAX_MEMBERS], n = 0;
	for (int k = 0; k < b->nslots; k++) {
		if (!b->m[k].vm || lua_getfield(L, 2, b->m[k].vm->name) == LUA_TNIL) {
			lua_pop(L, 1);
			continue;
		}
		lua_pop(L, 1);
		if (b->m[k].detached)
			return luaL_error(L, "bridge '%s': VM '%s' was detached from it; a fixture cannot keep a detached "
					  "NIC (attach it to a bridge it stays on)", b->name, b->m[k].vm->name);
		int j = n++;
		while (j > 0 && b->m[order[j - 1]].seq > b->m[k].seq) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = k;
	}
	struct net_call c = { .op = OP_SAVE, .b = b };
	lnet_call(L, &c);
	lua_createtable(L, 0, 6);
	lua_pushlstring(L, c.blob, c.len);
	free(c.blob);
	lua_setfield(L, -2, "rules");
	lua_pushinteger(L, (lua_Integer)b->seed);
	lua_setfield(L, -2, "seed");
	lua_pushinteger(L, b->net);
	lua_setfield(L, -2, "net");
	lua_pushinteger(L, b->prefix);
	lua_setfield(L, -2, "prefix");
	lua_pushboolean(L, b->uplink);
	lua_setfield(L, -2, "uplink");
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		struct member *m = &b->m[order[i]];
		lua_createtable(L, 0, 4);
		lua_pushstring(L, m->vm->name);
		lua_setfield(L, -2, "vm");
		lua_pushlstring(L, (const char *)m->mac, 6);
		lua_setfield(L, -2, "mac");
		lua_pushinteger(L, m->ip);
		lua_setfield(L, -2, "ip");
		lua_pushinteger(L, m->prefix);
		lua_setfield(L, -2, "prefix");
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "members");
	return 1;
}

static lua_Integer desc_int(lua_State *L, int t, const char *k, lua_Integer lo, lua_Integer hi)
{
	lua_getfield(L, t, k);
	int ok;
	lua_Integer v = lua_tointegerx(L, -1, &ok);
	lua_pop(L, 1);
	if (!ok || v < lo || v > hi)
		luaL_error(L, "a fixture's network: %s is missing or out of range", k);
	return v;
}

/* bridge:_close(): the bridge ends now (a lab fixture that did not resume) */
static int l_close(lua_State *L)
{
	struct lbridge *b = lnet_check_bridge(L, 1);
	scope_close(&b->res, SCOPE_BY_USER);
	return 0;
}

/* provium._bridge_restore(name, desc, vms): the bridge of a resumed lab
 * fixture, made in this file as _describe described it; vms maps the
 * members' names to the resumed VMs (not booted yet: their NICs come from
 * here). Addresses and MACs are the fixture's (the guests have them). */
static int l_bridge_restore(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.bridges");
	int reg = lua_gettop(L);
	if (lua_getfield(L, reg, name) != LUA_TNIL && ((struct lbridge *)luaL_checkudata(L, -1, BRIDGE_T))->sw)
		return luaL_error(L, "the fixture has a bridge '%s' and this file has one too; bridge names are unique "
				  "in a file (rename one)", name);
	lua_pop(L, 1);
	size_t made = scope_ctx(L)->count[SCOPE_BRIDGE];
	if (made >= LNET_MAX_BRIDGES)
		return luaL_error(L, "too many bridges in one file (at most %d)", LNET_MAX_BRIDGES);
	uint32_t net = (uint32_t)desc_int(L, 2, "net", 0, UINT32_MAX);
	uint8_t prefix = (uint8_t)desc_int(L, 2, "prefix", 8, 26);
	uint64_t seed = (uint64_t)desc_int(L, 2, "seed", LUA_MININTEGER, LUA_MAXINTEGER);
	struct lbridge *b = lnet_bridge_new(L, reg, name, (unsigned)made + 1, seed, net, prefix);
	int bi = lua_gettop(L);
	lua_getfield(L, 2, "members");
	int mt = lua_gettop(L);
	luaL_checktype(L, mt, LUA_TTABLE);
	for (lua_Integer i = 1; lua_geti(L, mt, i) == LUA_TTABLE; i++) {
		int e = lua_gettop(L);
		if (b->nslots >= LNET_MAX_MEMBERS)
			return luaL_error(L, "a fixture's network: bridge '%s' has too many members", name);
		lua_getfield(L, e, "vm");
		lua_gettable(L, 3);
		struct lvm *v = luaL_testudata(L, -1, "provium.vm");
		size_t maclen;
		lua_getfield(L, e, "mac");
		const char *mac = lua_tolstring(L, -1, &maclen);
		if (!v || !mac || maclen != 6)
			return luaL_error(L, "a fixture's network: bridge '%s': member %d is not one of its VMs", name, (int)i);
		struct member *m = &b->m[b->nslots++];
		*m = (struct member){ .vm = v, .seq = ++lnet_attach_seq };
		memcpy(m->mac, mac, 6);
		m->ip = (uint32_t)desc_int(L, e, "ip", 0, UINT32_MAX);
		m->prefix = (uint8_t)desc_int(L, e, "prefix", 8, 30);
		lua_settop(L, e - 1);
	}
	lua_settop(L, bi);
	size_t len;
	lua_getfield(L, 2, "rules");
	struct net_call c = { .op = OP_LOAD, .b = b };
	c.blob = (void *)lua_tolstring(L, -1, &len);
	c.len = len;
	if (!c.blob)
		return luaL_error(L, "a fixture's network: bridge '%s' has no rules", name);
	lnet_call(L, &c);
	lua_pop(L, 1);
	lua_getfield(L, 2, "uplink");
	if (lua_toboolean(L, -1)) {
		struct net_call u = { .op = OP_UPLINK, .b = b, .flag = true };
		lnet_call(L, &u);
		b->uplink = true; /* the guests have their routes already */
	}
	lua_settop(L, bi);
	return 1;
}

void lnet_fx_install(lua_State *L, int bridge_methods)
{
	bridge_methods = lua_absindex(L, bridge_methods);
	lua_pushcfunction(L, l_describe);
	lua_setfield(L, bridge_methods, "_describe");
	lua_pushcfunction(L, l_close);
	lua_setfield(L, bridge_methods, "_close");
	lua_getglobal(L, "provium"); /* its __newindex takes settings only */
	lua_pushliteral(L, "_bridge_restore");
	lua_pushcfunction(L, l_bridge_restore);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

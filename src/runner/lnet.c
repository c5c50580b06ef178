/* lnet.c - bridges of the Lua API: making them, membership, partitions,
 * impairments, counters, snapshot state, the uplink (contract in lnet.h; the
 * VM's side is lnet_vm.c, a lab fixture's network lnet_fx.c). Over 800 lines
 * because every bridge method shares the argument parsing and member lookup
 * here; what has its own state lives in the other two. */
#include "lnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "opts.h"
#include "rio.h"
#include "runner_priv.h"
#include "scope.h"
#include "switch.h"

#include "lnet_priv.h"

unsigned lnet_attach_seq; /* per process: only its order matters */

/* ---- calls into the switch (on the I/O loop) -------------------------------- */

/* The bridge's slirp on its port of the switch, made restricted. */
static int uplink_ensure(struct lbridge *b, struct pv_err *err)
{
	int sv[2];
	uint8_t mac[6];
	if (b->up)
		return 0;
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot make the uplink's port: %s", strerror(errno));
	b->up = uplink_new(rio_loop(), b->name, b->net, b->prefix, sv[1], err);
	if (!b->up) {
		close(sv[0]);
		return -ENOMEM;
	}
	uplink_mac(b->up, mac);
	int rc = sw_port_add(b->sw, LNET_UPLINK_PORT, mac, sv[0], err);
	if (rc < 0) {
		uplink_free(b->up);
		b->up = NULL;
	}
	return rc;
}

int lnet_run_op(void *p, struct pv_err *err)
{
	struct net_call *c = p;
	struct sw *sw = c->b->sw;
	switch (c->op) {
	case OP_NEW:
		c->b->sw = sw_new(rio_loop(), c->b->name, c->b->seed);
		return c->b->sw ? 0 : pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	case OP_FREE:
		uplink_free(c->b->up);
		c->b->up = NULL;
		sw_free(sw);
		c->b->sw = NULL;
		return 0;
	case OP_PORT_ADD:
		if (c->flag)
			sw_port_remove(sw, c->a);
		return sw_port_add(sw, c->a, c->mac, c->fd, err);
	case OP_DETACH:
		sw_port_detach(sw, c->a);
		return 0;
	case OP_LINK:
		sw_port_set_link(sw, c->a, c->flag);
		return 0;
	case OP_CUT:
		sw_cut(sw, c->a, c->c, c->flag);
		return 0;
	case OP_IS_CUT:
		return sw_is_cut(sw, c->a, c->c);
	case OP_ISOLATE:
		sw_isolate(sw, c->a, c->flag);
		return 0;
	case OP_IS_ISOLATED:
		return sw_is_isolated(sw, c->a);
	case OP_HEAL:
		sw_heal_all(sw);
		return 0;
	case OP_SET_IMPAIR:
		sw_set_impair(sw, c->a, c->c, &c->imp);
		return 0;
	case OP_GET_IMPAIR:
		sw_get_impair(sw, c->a, c->c, &c->imp);
		return 0;
	case OP_RESET:
		sw_reset_impair(sw);
		return 0;
	case OP_PORT_COUNTERS:
		return sw_port_counters(sw, c->a, &c->cnt);
	case OP_COUNTERS:
		sw_counters(sw, &c->cnt);
		return 0;
	case OP_CAP_START:
		return sw_capture_start(sw, c->a, c->path, err);
	case OP_CAP_STOP:
		c->u = sw_capture_stop(sw, c->a);
		return 0;
	case OP_SAVE:
		c->blob = sw_state_save(sw, &c->len);
		return c->blob ? 0 : pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	case OP_LOAD:
		return sw_state_load(sw, c->blob, c->len) < 0
			       ? pv_err_set(err, -EINVAL, SIZE_MAX, "the saved state is not a switch's")
			       : 0;
	case OP_UPLINK: /* flag: unrestricted */
	case OP_FORWARD: { /* u: guest ip; a: guest port; c: the host port */
		int rc = uplink_ensure(c->b, err);
		if (rc == 0 && c->flag)
			rc = uplink_unrestrict(c->b->up, err);
		if (rc == 0 && c->op == OP_FORWARD) {
			uint16_t port;
			rc = uplink_forward(c->b->up, (uint32_t)c->u, (uint16_t)c->a, &port, err);
			c->c = port;
		}
		return rc;
	}
	}
	return -EINVAL;
}

/* Runs c on the loop; raises with the switch's message on failure. A closed
 * bridge has no switch: ops on it raise before getting here. */
int lnet_call(lua_State *L, struct net_call *c)
{
	struct pv_err err = { .msg = "" };
	int rc = rio_call(lnet_run_op, c, &err);
	if (rc < 0)
		return luaL_error(L, "bridge '%s': %s", c->b->name, err.msg);
	return rc;
}

/* ---- bridges ---------------------------------------------------------------- */

static void bridge_close(struct scope_res *r, enum scope_how how)
{
	struct lbridge *b = (struct lbridge *)r;
	(void)how; /* the switch lives on the I/O loop: safe from a finalizer too */
	if (b->sw) {
		struct net_call c = { .op = OP_FREE, .b = b };
		struct pv_err err;
		rio_call(lnet_run_op, &c, &err);
	}
}

static void bridge_release(struct scope_res *r)
{
	struct lbridge *b = (struct lbridge *)r;
	free(b->name);
	b->name = NULL;
}

static const struct scope_ops bridge_ops = { SCOPE_BRIDGE, BRIDGE_T, bridge_close, NULL, bridge_release };

struct lbridge *lnet_check_bridge(lua_State *L, int idx)
{
	struct lbridge *b = luaL_checkudata(L, idx, BRIDGE_T);
	if (!b->name)
		luaL_error(L, "the bridge is gone (its state ended)");
	return b;
}

/* The bridge at idx, which must still be open. */
struct lbridge *lnet_open_bridge(lua_State *L, int idx, const char *what)
{
	struct lbridge *b = lnet_check_bridge(L, idx);
	if (!b->sw)
		luaL_error(L, "bridge:%s: bridge '%s' was closed (the test or fixture that made it ended)", what, b->name);
	return b;
}

void lnet_fmt_ip(uint32_t ip, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void lnet_fmt_mac(const uint8_t *m, char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* "a.b.c.d/p" (prefix 8..30 when needed, else 32 allowed) into host-order ip and prefix. */
static bool parse_cidr(const char *s, uint32_t *ip, uint8_t *prefix)
{
	char addr[32];
	const char *slash = strchr(s, '/');
	struct in_addr a;
	char *end;
	long p;
	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = 0;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return false;
	p = strtol(slash + 1, &end, 10);
	if (*end || end == slash + 1 || p < 8 || p > 30)
		return false;
	*ip = ntohl(a.s_addr);
	*prefix = (uint8_t)p;
	return true;
}

static uint32_t mask_of(uint8_t prefix) { return prefix ? ~0u << (32 - prefix) : 0; }

static const char *const bridge_keys[] = { "seed", "subnet", NULL };

static int l_provium_bridge(lua_State *L)
{
	const char *name = luaL_checkstring(L, 2);
	int nargs = lua_gettop(L);
	if (!*name)
		return luaL_error(L, "provium:bridge needs a non-empty name");
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.bridges");
	int reg = lua_gettop(L);
	lua_getfield(L, reg, name);
	struct lbridge *old = lua_isnil(L, -1) ? NULL : luaL_checkudata(L, -1, BRIDGE_T);
	if (nargs < 3) {
		if (!old)
			return luaL_error(L, "no bridge named '%s' (make it with provium:bridge(\"%s\", {...}))", name, name);
		return 1;
	}
	opts_check(L, 3, "provium:bridge options", bridge_keys);
	if (old && old->sw)
		return luaL_error(L, "a bridge named '%s' already exists; bridge names are unique in a file", name);
	lua_pop(L, 1);
	size_t made = scope_ctx(L)->count[SCOPE_BRIDGE];
	if (made >= LNET_MAX_BRIDGES)
		return luaL_error(L, "too many bridges in one file (at most %d)", LNET_MAX_BRIDGES);
	uint64_t seed = 0;
	for (const char *p = name; *p; p++) /* default: fixed per name (FNV-1a) */
		seed = (seed ^ (uint8_t)*p) * 0x100000001b3ull;
	seed ^= 0xcbf29ce484222325ull;
	uint32_t subnet = (10u << 24) | (77u << 16) | ((uint32_t)(made + 1) << 8);
	uint8_t prefix = 24;
	if (lua_istable(L, 3)) {
		if (lua_getfield(L, 3, "seed") != LUA_TNIL) {
			if (!lua_isinteger(L, -1))
				return luaL_error(L, "provium:bridge: seed must be an integer, got %s", luaL_typename(L, -1));
			seed = (uint64_t)lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
		if (lua_getfield(L, 3, "subnet") != LUA_TNIL) {
			const char *s = lua_tostring(L, -1);
			if (!s || !parse_cidr(s, &subnet, &prefix) || prefix > 26)
				return luaL_error(L, "provium:bridge: subnet must be an IPv4 network like \"10.9.0.0/24\" "
						     "(prefix 8 to 26), got %s", s ? s : luaL_typename(L, -1));
			subnet &= mask_of(prefix);
		}
		lua_pop(L, 1);
	}
	lnet_bridge_new(L, reg, name, (unsigned)made + 1, seed, subnet, prefix);
	return 1;
}

struct lbridge *lnet_bridge_new(lua_State *L, int reg, const char *name, unsigned index, uint64_t seed, uint32_t net,
				uint8_t prefix)
{
	struct lbridge *b = lua_newuserdatauv(L, sizeof(*b), 0);
	memset(b, 0, sizeof(*b));
	luaL_setmetatable(L, BRIDGE_T);
	scope_add(L, &b->res, &bridge_ops);
	b->name = strdup(name);
	if (!b->name)
		luaL_error(L, "out of memory");
	b->index = index;
	b->seed = seed;
	b->net = net;
	b->prefix = prefix;
	struct net_call c = { .op = OP_NEW, .b = b };
	lnet_call(L, &c);
	lua_pushvalue(L, -1);
	lua_setfield(L, reg, name); /* the state keeps it until it closes */
	return b;
}

/* The member index of the VM (userdata or name) at idx, or -1. */
static int find_member(lua_State *L, struct lbridge *b, int idx)
{
	struct lvm *v = NULL;
	const char *name = NULL;
	if (lua_type(L, idx) == LUA_TSTRING)
		name = lua_tostring(L, idx);
	else if (lua_isuserdata(L, idx) && luaL_testudata(L, idx, "provium.vm"))
		v = lua_touserdata(L, idx);
	else
		luaL_error(L, "bridge '%s': expected a VM or a VM's name, got %s", b->name, luaL_typename(L, idx));
	for (int i = 0; i < b->nslots; i++) {
		struct member *m = &b->m[i];
		if (!m->vm || m->detached)
			continue;
		if (v ? m->vm == v : strcmp(m->vm->name, name) == 0)
			return i;
	}
	return -1;
}

static void push_members_list(lua_State *L, struct lbridge *b, struct pv_buf *out)
{
	(void)L;
	for (int i = 0; i < b->nslots; i++) {
		if (!b->m[i].vm || b->m[i].detached)
			continue;
		if (out->len)
			pv_buf_append(out, ", ", 2);
		pv_buf_append(out, b->m[i].vm->name, strlen(b->m[i].vm->name));
	}
	if (!out->len)
		pv_buf_append(out, "none", 4);
	pv_buf_append(out, "", 1);
}

/* The member at idx, which must be attached; raises naming the members. */
int lnet_member_at(lua_State *L, struct lbridge *b, int idx, const char *what)
{
	int i = find_member(L, b, idx);
	if (i < 0) {
		struct pv_buf list = PV_BUF_INIT;
		const char *name = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : ((struct lvm *)lua_touserdata(L, idx))->name;
		push_members_list(L, b, &list);
		lua_pushfstring(L, "bridge:%s: VM '%s' is not attached to bridge '%s' (members: %s)", what, name, b->name,
				(char *)list.data);
		pv_buf_release(&list);
		return lua_error(L);
	}
	return i;
}

static const char *const attach_keys[] = { "ip", NULL };

static void attach_one(lua_State *L, struct lbridge *b, int idx, const char *ip)
{
	struct lvm *v = luaL_testudata(L, idx, "provium.vm");
	if (!v)
		luaL_error(L, "bridge:attach: expected a VM (or a list of VMs), got %s", luaL_typename(L, idx));
	if (v->state != LVM_CREATED)
		luaL_error(L, "bridge:attach: VM '%s' is %s; attach VMs to bridges before they boot", v->name,
			   lvm_state_names[v->state]);
	if (find_member(L, b, idx) >= 0)
		luaL_error(L, "bridge:attach: VM '%s' is already attached to bridge '%s'", v->name, b->name);
	if (b->nslots >= LNET_MAX_MEMBERS)
		luaL_error(L, "bridge:attach: bridge '%s' is full (at most %d VMs)", b->name, LNET_MAX_MEMBERS);
	int k = b->nslots;
	struct member m = { .vm = v, .seq = ++lnet_attach_seq, .prefix = b->prefix };
	m.ip = b->net | (uint32_t)(11 + k);
	if (ip && !parse_cidr(ip, &m.ip, &m.prefix))
		luaL_error(L, "bridge:attach: ip must be an IPv4 address with its prefix like \"10.9.0.5/24\", got \"%s\"", ip);
	if ((m.ip & ~mask_of(m.prefix)) == 0 || (m.ip | mask_of(m.prefix)) == ~0u)
		luaL_error(L, "bridge:attach: %s is a network or broadcast address", ip);
	if (m.ip == b->net + 2 || m.ip == b->net + 3)
		luaL_error(L, "bridge:attach: %s is bridge '%s''s gateway (.2) or DNS relay (.3); choose another address", ip,
			   b->name);
	for (int i = 0; i < b->nslots; i++)
		if (b->m[i].vm && b->m[i].ip == m.ip) {
			char s[16];
			lnet_fmt_ip(m.ip, s);
			luaL_error(L, "bridge:attach: %s is VM '%s''s address on bridge '%s' already", s, b->m[i].vm->name,
				   b->name);
		}
	if (!ip && (m.ip & ~mask_of(b->prefix)) >= (~mask_of(b->prefix)))
		luaL_error(L, "bridge:attach: bridge '%s' has no address left in its subnet", b->name);
	uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x77, (uint8_t)b->index, (uint8_t)(k + 1) };
	memcpy(m.mac, mac, 6);
	b->m[k] = m;
	b->nslots++;
}

static int l_attach(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "attach");
	const char *ip = NULL;
	opts_check(L, 3, "bridge:attach options", attach_keys);
	if (lua_istable(L, 3) && lua_getfield(L, 3, "ip") != LUA_TNIL) {
		ip = lua_tostring(L, -1);
		if (!ip)
			return luaL_error(L, "bridge:attach: ip must be a string like \"10.9.0.5/24\"");
	}
	if (lua_istable(L, 2) && !luaL_testudata(L, 2, "provium.vm")) {
		lua_Integer n = luaL_len(L, 2);
		if (ip && n != 1)
			return luaL_error(L, "bridge:attach: an ip option needs one VM, got a list of %d", (int)n);
		/* all checked before any is attached */
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, 2, i);
			struct lvm *v = luaL_testudata(L, -1, "provium.vm");
			if (!v)
				return luaL_error(L, "bridge:attach: element %d of the list is %s, not a VM", (int)i,
						  luaL_typename(L, -1));
			if (v->state != LVM_CREATED)
				return luaL_error(L, "bridge:attach: VM '%s' is %s; attach VMs to bridges before they boot",
						  v->name, lvm_state_names[v->state]);
			lua_pop(L, 1);
		}
		for (lua_Integer i = 1; i <= n; i++) {
			lua_geti(L, 2, i);
			attach_one(L, b, lua_gettop(L), ip);
			lua_pop(L, 1);
		}
	} else
		attach_one(L, b, 2, ip);
	lua_settop(L, 1);
	return 1;
}

/* ---- membership and partitions ------------------------------------------------ */

static int l_detach(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "detach");
	int k = lnet_member_at(L, b, 2, "detach");
	struct member *m = &b->m[k];
	if (m->vm->state == LVM_CREATED) {
		m->vm = NULL; /* never booted: as if never attached */
		return 0;
	}
	m->detached = true;
	struct net_call c = { .op = OP_DETACH, .b = b, .a = k };
	lnet_call(L, &c);
	if (m->vm->state == LVM_RUNNING) {
		struct pv_err err;
		if (vm_set_link(&m->vm->vm, m->nic, false, &err) < 0)
			return luaL_error(L, "bridge:detach: VM '%s': cannot unplug its NIC: %s", m->vm->name, err.msg);
	}
	return 0;
}

static int l_members(lua_State *L)
{
	struct lbridge *b = lnet_check_bridge(L, 1);
	int n = 0;
	lua_newtable(L);
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vm_list");
	lua_Unsigned all = lua_rawlen(L, -1);
	for (int k = 0; k < b->nslots; k++) {
		if (!b->m[k].vm || b->m[k].detached)
			continue;
		for (lua_Unsigned i = 1; i <= all; i++) {
			lua_rawgeti(L, -1, (lua_Integer)i);
			if (lua_touserdata(L, -1) == b->m[k].vm) {
				lua_rawseti(L, -3, ++n);
				break;
			}
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	return 1;
}

static int l_name(lua_State *L)
{
	lua_pushstring(L, lnet_check_bridge(L, 1)->name);
	return 1;
}

/* (a, b) or ({from = a, to = b}): the two ports and whether one way. */
static bool pair_args(lua_State *L, struct lbridge *b, const char *what, int *from, int *to)
{
	static const char *const keys[] = { "from", "to", NULL };
	if (lua_istable(L, 2) && !luaL_testudata(L, 2, "provium.vm")) {
		opts_check(L, 2, what, keys);
		lua_getfield(L, 2, "from");
		lua_getfield(L, 2, "to");
		if (lua_isnil(L, -2) || lua_isnil(L, -1))
			luaL_error(L, "bridge:%s{from = a, to = b} needs both from and to", what);
		*from = lnet_member_at(L, b, -2, what);
		*to = lnet_member_at(L, b, lua_gettop(L), what);
		lua_pop(L, 2);
		return true;
	}
	*from = lnet_member_at(L, b, 2, what);
	*to = lnet_member_at(L, b, 3, what);
	if (*from == *to)
		luaL_error(L, "bridge:%s: a VM cannot be partitioned from itself", what);
	return false;
}

static void cut(lua_State *L, struct lbridge *b, int from, int to, bool on)
{
	struct net_call c = { .op = OP_CUT, .b = b, .a = from, .c = to, .flag = on };
	lnet_call(L, &c);
}

static int partition_common(lua_State *L, bool on)
{
	const char *what = on ? "partition" : "unpartition";
	struct lbridge *b = lnet_open_bridge(L, 1, what);
	int from, to;
	bool oneway = pair_args(L, b, what, &from, &to);
	cut(L, b, from, to, on);
	if (!oneway)
		cut(L, b, to, from, on);
	return 0;
}

static int l_partition(lua_State *L) { return partition_common(L, true); }
static int l_unpartition(lua_State *L) { return partition_common(L, false); }

static int l_partition_all(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "partition_all");
	cut(L, b, SW_ANY, SW_ANY, true);
	return 0;
}

static int l_restore_all(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "restore_all");
	struct net_call c = { .op = OP_HEAL, .b = b };
	lnet_call(L, &c);
	return 0;
}

static int l_is_partitioned(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "is_partitioned");
	int from, to;
	bool oneway = pair_args(L, b, "is_partitioned", &from, &to);
	struct net_call c = { .op = OP_IS_CUT, .b = b, .a = from, .c = to };
	bool r = lnet_call(L, &c) > 0;
	if (!oneway && !r) {
		c.a = to;
		c.c = from;
		r = lnet_call(L, &c) > 0;
	}
	lua_pushboolean(L, r);
	return 1;
}

static int isolate_common(lua_State *L, bool on, const char *what)
{
	struct lbridge *b = lnet_open_bridge(L, 1, what);
	struct net_call c = { .op = OP_ISOLATE, .b = b, .a = lnet_member_at(L, b, 2, what), .flag = on };
	lnet_call(L, &c);
	return 0;
}

static int l_isolate(lua_State *L) { return isolate_common(L, true, "isolate"); }
static int l_unisolate(lua_State *L) { return isolate_common(L, false, "unisolate"); }

static int l_is_isolated(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "is_isolated");
	struct net_call c = { .op = OP_IS_ISOLATED, .b = b, .a = lnet_member_at(L, b, 2, "is_isolated") };
	lua_pushboolean(L, lnet_call(L, &c) > 0);
	return 1;
}

/* ---- impairments ------------------------------------------------------------- */

enum imp_field { IMP_LATENCY, IMP_DROP, IMP_BANDWIDTH, IMP_DUPLICATE, IMP_REORDER, IMP_CORRUPT };

struct imp_desc {
	const char *method, *key, *alt_key; /* the table's value key; alt: the original Provium's */
	enum imp_field field;
};

static const struct imp_desc imp_descs[] = {
	{ "add_latency", "ms", NULL, IMP_LATENCY },
	{ "drop_rate", "pct", "p", IMP_DROP },
	{ "bandwidth_limit", "bps", NULL, IMP_BANDWIDTH },
	{ "duplicate_rate", "pct", "p", IMP_DUPLICATE },
	{ "reorder", "pct", "p", IMP_REORDER },
	{ "corrupt_rate", "pct", "p", IMP_CORRUPT },
};

static double imp_value(lua_State *L, int idx, const struct imp_desc *d)
{
	int isnum;
	double x = lua_tonumberx(L, idx, &isnum);
	if (!isnum || !isfinite(x))
		luaL_error(L, "bridge:%s: %s must be a number, got %s", d->method, d->key, luaL_typename(L, idx));
	if (x < 0)
		luaL_error(L, "bridge:%s: %s must not be negative, got %f", d->method, d->key, x);
	if (d->field != IMP_LATENCY && d->field != IMP_BANDWIDTH && x > 100)
		luaL_error(L, "bridge:%s: %s is a percentage (0 to 100), got %f", d->method, d->key, x);
	if (d->field == IMP_LATENCY && x > 600000)
		luaL_error(L, "bridge:%s: %f ms is more than 10 minutes", d->method, x);
	return x;
}

static void imp_apply(struct sw_impair *r, const struct imp_desc *d, double x, double jitter, bool has_jitter)
{
	switch (d->field) {
	case IMP_LATENCY:
		r->latency_us = (uint32_t)llround(x * 1000);
		if (has_jitter)
			r->jitter_us = (uint32_t)llround(jitter * 1000);
		break;
	case IMP_DROP: r->drop_pct = x; break;
	case IMP_BANDWIDTH: r->bandwidth_bps = (uint64_t)llround(x); break;
	case IMP_DUPLICATE: r->duplicate_pct = x; break;
	case IMP_REORDER: r->reorder_pct = x; break;
	case IMP_CORRUPT: r->corrupt_pct = x; break;
	}
}

/* The ports a {from=, to=} names: one, or every member (SW_ANY expanded). */
static int ports_of(lua_State *L, struct lbridge *b, int idx, const char *what, int *out)
{
	int n = 0;
	if (!lua_isnil(L, idx)) {
		out[0] = lnet_member_at(L, b, idx, what);
		return 1;
	}
	for (int k = 0; k < b->nslots; k++)
		if (b->m[k].vm && !b->m[k].detached)
			out[n++] = k;
	return n;
}

static int impair(lua_State *L, const struct imp_desc *d)
{
	struct lbridge *b = lnet_open_bridge(L, 1, d->method);
	struct net_call c = { .b = b, .a = SW_ANY, .c = SW_ANY };
	double x, jitter = 0;
	bool has_jitter = false;
	if (lua_istable(L, 2)) {
		const char *keys[] = { "from", "to", d->key, d->alt_key ? d->alt_key : "jitter_ms",
				       d->field == IMP_LATENCY ? "jitter_ms" : NULL, NULL };
		char what[64];
		snprintf(what, sizeof(what), "bridge:%s options", d->method);
		opts_check(L, 2, what, keys);
		if (lua_getfield(L, 2, d->key) == LUA_TNIL && d->alt_key) {
			lua_pop(L, 1);
			lua_getfield(L, 2, d->alt_key);
		}
		if (lua_isnil(L, -1))
			return luaL_error(L, "bridge:%s{...} needs %s", d->method, d->key);
		x = imp_value(L, -1, d);
		lua_pop(L, 1);
		if (d->field == IMP_LATENCY && lua_getfield(L, 2, "jitter_ms") != LUA_TNIL) {
			static const struct imp_desc jd = { "add_latency", "jitter_ms", NULL, IMP_LATENCY };
			jitter = imp_value(L, -1, &jd);
			has_jitter = true;
		}
		lua_settop(L, 2);
		lua_getfield(L, 2, "from");
		lua_getfield(L, 2, "to");
		if (!lua_isnil(L, 3) || !lua_isnil(L, 4)) {
			int from[LNET_MAX_MEMBERS], to[LNET_MAX_MEMBERS];
			int nf = ports_of(L, b, 3, d->method, from), nt = ports_of(L, b, 4, d->method, to);
			for (int i = 0; i < nf; i++)
				for (int j = 0; j < nt; j++) {
					if (from[i] == to[j])
						continue;
					c.op = OP_GET_IMPAIR;
					c.a = from[i];
					c.c = to[j];
					lnet_call(L, &c);
					imp_apply(&c.imp, d, x, jitter, has_jitter);
					c.op = OP_SET_IMPAIR;
					lnet_call(L, &c);
				}
			return 0;
		}
	} else
		x = imp_value(L, 2, d);
	c.op = OP_GET_IMPAIR;
	lnet_call(L, &c);
	imp_apply(&c.imp, d, x, jitter, has_jitter);
	c.op = OP_SET_IMPAIR;
	lnet_call(L, &c);
	return 0;
}

#define IMPAIR_FN(fn, i) \
	static int fn(lua_State *L) { return impair(L, &imp_descs[i]); }
IMPAIR_FN(l_add_latency, 0)
IMPAIR_FN(l_drop_rate, 1)
IMPAIR_FN(l_bandwidth_limit, 2)
IMPAIR_FN(l_duplicate_rate, 3)
IMPAIR_FN(l_reorder, 4)
IMPAIR_FN(l_corrupt_rate, 5)

static int l_reset(lua_State *L)
{
	struct net_call c = { .op = OP_RESET, .b = lnet_open_bridge(L, 1, "reset") };
	lnet_call(L, &c);
	return 0;
}

/* Getters: the bridge-wide value, or {from=, to=}'s rule. */
static int getter(lua_State *L, int which)
{
	static const char *const names[] = { "latency_ms", "jitter_ms", "drop_rate_pct", "bandwidth_bps",
					      "duplicate_rate_pct", "reorder_pct", "corrupt_rate_pct" };
	struct lbridge *b = lnet_open_bridge(L, 1, names[which]);
	struct net_call c = { .op = OP_GET_IMPAIR, .b = b, .a = SW_ANY, .c = SW_ANY };
	if (!lua_isnoneornil(L, 2)) {
		bool oneway = pair_args(L, b, names[which], &c.a, &c.c);
		if (!oneway)
			return luaL_error(L, "bridge:%s: name a direction: {from = a, to = b}", names[which]);
	}
	lnet_call(L, &c);
	switch (which) {
	case 0: lua_pushnumber(L, c.imp.latency_us / 1000.0); break;
	case 1: lua_pushnumber(L, c.imp.jitter_us / 1000.0); break;
	case 2: lua_pushnumber(L, c.imp.drop_pct); break;
	case 3: lua_pushinteger(L, (lua_Integer)c.imp.bandwidth_bps); break;
	case 4: lua_pushnumber(L, c.imp.duplicate_pct); break;
	case 5: lua_pushnumber(L, c.imp.reorder_pct); break;
	default: lua_pushnumber(L, c.imp.corrupt_pct); break;
	}
	return 1;
}

#define GETTER_FN(fn, i) \
	static int fn(lua_State *L) { return getter(L, i); }
GETTER_FN(l_latency_ms, 0)
GETTER_FN(l_jitter_ms, 1)
GETTER_FN(l_drop_rate_pct, 2)
GETTER_FN(l_bandwidth_bps, 3)
GETTER_FN(l_duplicate_rate_pct, 4)
GETTER_FN(l_reorder_pct, 5)
GETTER_FN(l_corrupt_rate_pct, 6)

void lnet_push_counters(lua_State *L, const struct sw_counters *c)
{
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)c->tx_packets);
	lua_setfield(L, -2, "tx_packets");
	lua_pushinteger(L, (lua_Integer)c->tx_bytes);
	lua_setfield(L, -2, "tx_bytes");
	lua_pushinteger(L, (lua_Integer)c->rx_packets);
	lua_setfield(L, -2, "rx_packets");
	lua_pushinteger(L, (lua_Integer)c->rx_bytes);
	lua_setfield(L, -2, "rx_bytes");
	lua_pushinteger(L, (lua_Integer)c->drops);
	lua_setfield(L, -2, "drops");
}

static int l_counters(lua_State *L)
{
	struct net_call c = { .op = OP_COUNTERS, .b = lnet_open_bridge(L, 1, "counters") };
	lnet_call(L, &c);
	lnet_push_counters(L, &c.cnt);
	return 1;
}

static int l_bridge_tostring(lua_State *L)
{
	struct lbridge *b = lnet_check_bridge(L, 1);
	char net[16];
	lnet_fmt_ip(b->net, net);
	lua_pushfstring(L, "bridge '%s' (%s/%d)", b->name, net, (int)b->prefix);
	return 1;
}

/* bridge:_state() / bridge:_set_state(s): the partitions and impairments
 * as a string, for provium:snapshot() / provium:restore() (lsnap.c). */
static int l_state(lua_State *L)
{
	struct net_call c = { .op = OP_SAVE, .b = lnet_open_bridge(L, 1, "_state") };
	lnet_call(L, &c);
	lua_pushlstring(L, c.blob, c.len);
	free(c.blob);
	return 1;
}

static int l_set_state(lua_State *L)
{
	struct net_call c = { .op = OP_LOAD, .b = lnet_open_bridge(L, 1, "_set_state") };
	c.blob = (void *)luaL_checklstring(L, 2, &c.len);
	lnet_call(L, &c);
	return 0;
}

/* ---- the uplink ---------------------------------------------------------------- */

/* bridge:enable_uplink(): NAT to the host's network through the bridge's
 * slirp; guests already running get their default route now, the others at
 * boot (lnet_guest_setup). */
static int l_enable_uplink(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "enable_uplink");
	struct net_call c = { .op = OP_UPLINK, .b = b, .flag = true };
	lnet_call(L, &c);
	if (b->uplink)
		return 0;
	b->uplink = true;
	for (int k = 0; k < b->nslots; k++) {
		struct member *m = &b->m[k];
		if (!m->vm || m->detached || !m->on_switch || m->vm->state != LVM_RUNNING)
			continue;
		struct pv_buf sh = PV_BUF_INIT;
		lnet_uplink_lines(b, m->nic, &sh);
		lua_pushlstring(L, (const char *)sh.data, sh.len); /* freed by Lua if the exec raises */
		pv_buf_release(&sh);
		size_t len;
		const char *script = lua_tolstring(L, -1, &len);
		lnet_guest_exec(L, m->vm, script, len, "enabling the uplink");
		lua_pop(L, 1);
	}
	return 0;
}

static int l_uplink_enabled(lua_State *L)
{
	lua_pushboolean(L, lnet_check_bridge(L, 1)->uplink);
	return 1;
}

/* ---- install ----------------------------------------------------------------- */

static const luaL_Reg bridge_methods[] = {
	{ "attach", l_attach }, { "detach", l_detach }, { "members", l_members }, { "name", l_name },
	{ "partition", l_partition }, { "unpartition", l_unpartition },
	{ "partition_all", l_partition_all }, { "restore_all", l_restore_all }, { "is_partitioned", l_is_partitioned },
	{ "isolate", l_isolate }, { "unisolate", l_unisolate }, { "is_isolated", l_is_isolated },
	{ "add_latency", l_add_latency }, { "drop_rate", l_drop_rate }, { "bandwidth_limit", l_bandwidth_limit },
	{ "duplicate_rate", l_duplicate_rate }, { "reorder", l_reorder }, { "corrupt_rate", l_corrupt_rate },
	{ "reset", l_reset }, { "latency_ms", l_latency_ms }, { "jitter_ms", l_jitter_ms },
	{ "drop_rate_pct", l_drop_rate_pct }, { "bandwidth_bps", l_bandwidth_bps },
	{ "duplicate_rate_pct", l_duplicate_rate_pct }, { "reorder_pct", l_reorder_pct },
	{ "corrupt_rate_pct", l_corrupt_rate_pct }, { "counters", l_counters },
	{ "enable_uplink", l_enable_uplink }, { "uplink_enabled", l_uplink_enabled },
	{ "_state", l_state }, { "_set_state", l_set_state }, { NULL, NULL },
};

void lnet_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, "provium.bridges");

	luaL_newlib(L, bridge_methods);
	lnet_vm_install(L, lua_gettop(L), methods);
	lnet_fx_install(L, lua_gettop(L));
	scope_set_methods(L, &bridge_ops);
	luaL_getmetatable(L, BRIDGE_T);
	lua_pushcfunction(L, l_bridge_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);

	lua_getglobal(L, "provium");
	lua_pushliteral(L, "bridge");
	lua_pushcfunction(L, l_provium_bridge);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

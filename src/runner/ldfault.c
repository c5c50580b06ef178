/* ldfault.c - faults the guest sees and power cuts, on mediated disks
 * (docs/lua-api.md, "Disks"): disk:fault{...} -> Fault, disk:clear_faults(),
 * disk:faults(), disk:power_cut(). The rules live in the disk's server
 * (src/disk/nbd_plugin.c); the runner keeps what the test asked for to
 * list it. */
#include <errno.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ldisk.h"
#include "lvm.h"
#include "opts.h"

/* The errnos an NBD reply can carry (and so a fault can give). */
static const struct {
	const char *name;
	int err;
} errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EPERM", EPERM }, { "ENOMEM", ENOMEM }, { "EINVAL", EINVAL },
	{ "ENOTSUP", ENOTSUP }, { "EOPNOTSUPP", EOPNOTSUPP },
};

static const char *const op_names[] = { "read", "write", "flush", "any", NULL };
static const unsigned op_bits[] = { 1, 2, 4, 7 };

static const char *errno_name(int err)
{
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
		if (errnos[i].err == err)
			return errnos[i].name;
	return "?";
}

static const char *ops_name(unsigned ops)
{
	for (int i = 0; op_names[i]; i++)
		if (op_bits[i] == ops)
			return op_names[i];
	return "?";
}

/* The disk at 1, mediated; raises otherwise. */
static struct ldisk *mediated(lua_State *L, struct lvm **vp, const char *what)
{
	struct ldisk *d = ldisk_check(L, 1, vp);
	if (d->detached)
		luaL_error(L, "disk:%s of \"%s\": the disk was detached", what, d->id);
	if (!d->mediated)
		luaL_error(L, "disk:%s of \"%s\": the disk is a plain file (faults = false, or a readonly or qcow2 image), "
			      "and only a disk through provium's disk server has faults and power cuts; drop faults = "
			      "false, or give a fresh disk (size =) or a raw image with writable = true", what, d->id);
	return d;
}

static lua_Integer int_field(lua_State *L, int t, const char *key, const char *what, lua_Integer dflt)
{
	lua_Integer v = dflt;
	if (lua_getfield(L, t, key) != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
			luaL_error(L, "%s: %s must be a whole number, at least 0", what, key);
		v = lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* A byte position or count: an integer or a size string ("1M"). */
static uint64_t bytes_field(lua_State *L, int t, const char *key, const char *what, uint64_t dflt)
{
	uint64_t v = dflt;
	if (lua_getfield(L, t, key) != LUA_TNIL) {
		char w[120];
		snprintf(w, sizeof(w), "%s: %s", what, key);
		v = lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 ? (uint64_t)lua_tointeger(L, -1) : opts_size(L, -1, w);
	}
	lua_pop(L, 1);
	return v;
}

static int push_fault(lua_State *L, unsigned id);

/* disk:fault{op =, errno =, offset =, length =, after =, probability =, delay =, once =} */
static int d_fault(lua_State *L)
{
	static const char *const keys[] = { "op", "errno", "offset", "length", "after", "probability", "delay", "once",
					    NULL };
	struct lvm *v;
	struct ldisk *d = mediated(L, &v, "fault");
	struct ldisk_fault f = { 0 };
	struct pv_err err;
	char what[64], line[256];
	snprintf(what, sizeof(what), "disk:fault of \"%s\"", d->id);
	luaL_checktype(L, 2, LUA_TTABLE);
	opts_check(L, 2, what, keys);
	lua_getfield(L, 2, "op");
	f.ops = op_bits[luaL_checkoption(L, -1, "any", op_names)];
	lua_pop(L, 1);
	bool has_delay = lua_getfield(L, 2, "delay") != LUA_TNIL;
	if (has_delay) {
		char w[80];
		snprintf(w, sizeof(w), "%s: delay", what);
		f.delay_ns = opts_duration(L, -1, w);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 2, "errno") != LUA_TNIL) {
		const char *name = lua_tostring(L, -1);
		f.err = -1;
		for (size_t i = 0; name && i < sizeof(errnos) / sizeof(errnos[0]); i++)
			if (!strcmp(errnos[i].name, name))
				f.err = errnos[i].err;
		if (f.err < 0)
			return luaL_error(L, "%s: unknown errno %s: give one an NBD reply carries: EIO, ENOSPC, EPERM, "
					     "ENOMEM, EINVAL or ENOTSUP", what, name ? name : luaL_typename(L, -1));
	} else
		f.err = has_delay ? 0 : EIO; /* a delay alone is latency, not an error */
	lua_pop(L, 1);
	f.off = bytes_field(L, 2, "offset", what, 0);
	f.len = bytes_field(L, 2, "length", what, 0);
	bool ranged = lua_getfield(L, 2, "offset") != LUA_TNIL;
	ranged |= lua_getfield(L, 2, "length") != LUA_TNIL;
	lua_pop(L, 2);
	if (ranged && f.ops == 4)
		return luaL_error(L, "%s: a flush has no byte range; offset and length are for read, write or any", what);
	if (f.off >= d->size)
		return luaL_error(L, "%s: offset %I is past the disk's end (%I bytes)", what, (lua_Integer)f.off,
				  (lua_Integer)d->size);
	f.after = (uint64_t)int_field(L, 2, "after", what, 0);
	double p = 1.0;
	if (lua_getfield(L, 2, "probability") != LUA_TNIL) {
		if (!lua_isnumber(L, -1) || (p = lua_tonumber(L, -1)) < 0 || p > 1)
			return luaL_error(L, "%s: probability must be a number from 0 to 1", what);
	}
	lua_pop(L, 1);
	f.prob_ppm = (uint32_t)(p * 1000000.0 + 0.5);
	lua_getfield(L, 2, "once");
	f.once = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (d->nfaults == LDISK_MAX_FAULTS)
		return luaL_error(L, "%s: the disk has %d fault rules, the most; clear some", what, LDISK_MAX_FAULTS);
	/* the server: started now if the VM has not booted yet */
	if (ldisk_ready(d, &err) < 0)
		return luaL_error(L, "%s: %s", what, err.msg);
	f.id = ++d->next_fault;
	ldisk_fault_line(&f, line, sizeof(line));
	if (dserver_cmd(&d->srv, line, NULL, 0, &err) < 0)
		return luaL_error(L, "%s: %s", what, err.msg);
	d->faults[d->nfaults++] = f;
	return push_fault(L, f.id);
}

/* Drops rule id (0: all) in the server and here. */
static void clear(lua_State *L, struct ldisk *d, unsigned id, const char *what)
{
	struct pv_err err;
	char line[32];
	snprintf(line, sizeof(line), "C %u", id);
	if (d->srv.pid && dserver_cmd(&d->srv, line, NULL, 0, &err) < 0)
		luaL_error(L, "%s of \"%s\": %s", what, d->id, err.msg);
	for (unsigned i = 0; i < d->nfaults;)
		if (!id || d->faults[i].id == id)
			memmove(&d->faults[i], &d->faults[i + 1], (--d->nfaults - i) * sizeof(d->faults[0]));
		else
			i++;
}

static int d_clear_faults(lua_State *L)
{
	clear(L, mediated(L, NULL, "clear_faults"), 0, "disk:clear_faults");
	return 0;
}

/* Each rule's hits and whether it is still armed, from the server. */
static void server_counts(lua_State *L, struct ldisk *d, uint64_t *hits, bool *active)
{
	struct pv_err err;
	char reply[8192];
	for (unsigned i = 0; i < d->nfaults; i++)
		hits[i] = 0, active[i] = true;
	if (dserver_cmd(&d->srv, "L", reply, sizeof(reply), &err) < 0)
		luaL_error(L, "disk:faults of \"%s\": %s", d->id, err.msg);
	for (char *p = reply; *p;) {
		unsigned id;
		uint64_t h;
		int a, used;
		if (sscanf(p, " %u:%" SCNu64 ":%d%n", &id, &h, &a, &used) != 3)
			break;
		for (unsigned i = 0; i < d->nfaults; i++)
			if (d->faults[i].id == id)
				hits[i] = h, active[i] = a;
		p += used;
	}
}

static void push_rule(lua_State *L, const struct ldisk_fault *f, uint64_t hits, bool active)
{
	lua_createtable(L, 0, 12);
	lua_pushinteger(L, f->id);
	lua_setfield(L, -2, "id");
	lua_pushstring(L, ops_name(f->ops));
	lua_setfield(L, -2, "op");
	if (f->err) {
		lua_pushstring(L, errno_name(f->err));
		lua_setfield(L, -2, "errno");
	}
	lua_pushinteger(L, (lua_Integer)f->off);
	lua_setfield(L, -2, "offset");
	if (f->len) {
		lua_pushinteger(L, (lua_Integer)f->len);
		lua_setfield(L, -2, "length");
	}
	lua_pushinteger(L, (lua_Integer)f->after);
	lua_setfield(L, -2, "after");
	lua_pushnumber(L, f->prob_ppm / 1000000.0);
	lua_setfield(L, -2, "probability");
	lua_pushnumber(L, (double)f->delay_ns / 1e9);
	lua_setfield(L, -2, "delay");
	lua_pushboolean(L, f->once);
	lua_setfield(L, -2, "once");
	lua_pushinteger(L, (lua_Integer)hits);
	lua_setfield(L, -2, "hits");
	lua_pushboolean(L, active);
	lua_setfield(L, -2, "active");
}

/* disk:faults(): every rule in force, with its hits so far */
static int d_faults(lua_State *L)
{
	struct ldisk *d = mediated(L, NULL, "faults");
	uint64_t hits[LDISK_MAX_FAULTS];
	bool active[LDISK_MAX_FAULTS];
	lua_createtable(L, (int)d->nfaults, 0);
	if (!d->nfaults)
		return 1;
	server_counts(L, d, hits, active);
	for (unsigned i = 0; i < d->nfaults; i++) {
		push_rule(L, &d->faults[i], hits[i], active[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* disk:power_cut(): every mediated disk of the VM drops what its guest had
 * not flushed, then QEMU dies at once. The VM is back to "created": vm:boot()
 * boots it again, on the same disks. */
static int d_power_cut(lua_State *L)
{
	struct lvm *v;
	struct ldisk *d = mediated(L, &v, "power_cut");
	struct pv_err err;
	if (v->state != LVM_RUNNING)
		return luaL_error(L, "disk:power_cut of \"%s\": VM '%s' is %s; a power cut is for a running (or paused) VM",
				  d->id, v->name, lvm_state_names[v->state]);
	/* the servers first: once QEMU is gone, a server would commit */
	for (unsigned k = 0; k < v->disks.n; k++) {
		struct ldisk *o = &v->disks.d[k];
		if (o->mediated && o->srv.pid && dserver_cmd(&o->srv, "X", NULL, 0, &err) < 0) {
			vm_kill(&v->vm);
			lvm_mark_dead(v, "a disk server failed during a power cut");
			return luaL_error(L, "disk:power_cut of \"%s\": disk \"%s\": %s", d->id, o->id, err.msg);
		}
	}
	vm_kill(&v->vm);
	lvm_enter(v, LVM_CREATED);
	return 0;
}

/* ---- the Fault ---------------------------------------------------------------------------- */

struct fault_ud {
	unsigned id;
};

static int push_fault(lua_State *L, unsigned id)
{
	struct fault_ud *u = lua_newuserdatauv(L, sizeof(*u), 1);
	u->id = id;
	luaL_setmetatable(L, "provium.fault");
	lua_pushvalue(L, 1); /* the Disk: the rule's and its VM's life */
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* The Fault at 1 and its disk (pushed, then moved to index 1's place for
 * the disk helpers: the Fault itself ends at index 2). */
static struct ldisk *fault_disk(lua_State *L, unsigned *id)
{
	struct fault_ud *u = luaL_checkudata(L, 1, "provium.fault");
	*id = u->id;
	lua_getiuservalue(L, 1, 1);
	lua_insert(L, 1);
	return ldisk_check(L, 1, NULL);
}

static int f_clear(lua_State *L)
{
	unsigned id;
	struct ldisk *d = fault_disk(L, &id);
	clear(L, d, id, "fault:clear");
	return 0;
}

static int f_id(lua_State *L)
{
	lua_pushinteger(L, ((struct fault_ud *)luaL_checkudata(L, 1, "provium.fault"))->id);
	return 1;
}

/* fault:hits(): how many requests it has failed or delayed (0 once cleared) */
static int f_hits(lua_State *L)
{
	unsigned id;
	struct ldisk *d = fault_disk(L, &id);
	uint64_t hits[LDISK_MAX_FAULTS];
	bool active[LDISK_MAX_FAULTS];
	if (d->nfaults)
		server_counts(L, d, hits, active);
	for (unsigned i = 0; i < d->nfaults; i++)
		if (d->faults[i].id == id)
			return lua_pushinteger(L, (lua_Integer)hits[i]), 1;
	lua_pushinteger(L, 0);
	return 1;
}

static int f_tostring(lua_State *L)
{
	unsigned id;
	struct ldisk *d = fault_disk(L, &id);
	lua_pushfstring(L, "provium.fault(%d on disk %s)", (int)id, d->id);
	return 1;
}

void ldfault_install(lua_State *L, int methods)
{
	static const luaL_Reg dm[] = {
		{ "fault", d_fault }, { "clear_faults", d_clear_faults }, { "faults", d_faults },
		{ "power_cut", d_power_cut }, { NULL, NULL },
	};
	static const luaL_Reg fm[] = { { "clear", f_clear }, { "id", f_id }, { "hits", f_hits }, { NULL, NULL } };
	methods = lua_absindex(L, methods);
	lua_pushvalue(L, methods);
	luaL_setfuncs(L, dm, 0);
	lua_pop(L, 1);
	luaL_newmetatable(L, "provium.fault");
	luaL_newlib(L, fm);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, f_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}

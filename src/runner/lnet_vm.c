/* lnet_vm.c - the VM's side of networking (contract in lnet.h; shared
 * parts in lnet_priv.h): a VM's NICs at boot, the guest's configuration,
 * vm:ip / vm:mac / vm:nic, NIC objects and captures. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "lguest.h"
#include "lnet.h"
#include "lnet_priv.h"
#include "rio.h"
#include "runner_priv.h"
#include "sys.h"

/* ---- the VM's side ------------------------------------------------------------ */

struct vm_nics {
	struct lvm *v;
	struct {
		struct lbridge *b;
		int k;
	} n[VM_MAX_NICS + 1];
	unsigned count;
};

static void collect_nics(struct scope_res *r, void *ud)
{
	struct lbridge *b = (struct lbridge *)r;
	struct vm_nics *c = ud;
	for (int k = 0; k < b->nslots; k++) {
		if (b->m[k].vm != c->v || b->m[k].detached)
			continue;
		if (c->count <= VM_MAX_NICS) {
			/* insertion by attach order */
			unsigned j = c->count++;
			while (j > 0 && c->n[j - 1].b->m[c->n[j - 1].k].seq > b->m[k].seq) {
				c->n[j] = c->n[j - 1];
				j--;
			}
			c->n[j].b = b;
			c->n[j].k = k;
		}
	}
}

int lnet_boot_prepare(lua_State *L, struct lvm *v, struct vm_nic *nics, unsigned *n, struct pv_err *err)
{
	struct vm_nics c = { .v = v };
	*n = 0;
	scope_each(L, SCOPE_BRIDGE, collect_nics, &c);
	if (c.count > VM_MAX_NICS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "VM '%s' is on more than %d bridges", v->name, VM_MAX_NICS);
	for (unsigned i = 0; i < c.count; i++) {
		struct lbridge *b = c.n[i].b;
		struct member *m = &b->m[c.n[i].k];
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0) {
			lnet_boot_release(nics, *n);
			return pv_err_set(err, -errno, SIZE_MAX, "cannot make VM '%s''s NIC on bridge '%s': %s", v->name,
					  b->name, strerror(errno));
		}
		struct net_call call = { .op = OP_PORT_ADD, .b = b, .a = c.n[i].k, .fd = sv[0], .mac = m->mac,
					 .flag = m->on_switch };
		int rc = rio_call(lnet_run_op, &call, err); /* takes sv[0] */
		if (rc < 0) {
			close(sv[1]);
			lnet_boot_release(nics, *n);
			return rc;
		}
		m->on_switch = true;
		m->nic = i;
		m->link_down = false;
		nics[i].fd = sv[1];
		memcpy(nics[i].mac, m->mac, 6);
		(*n)++;
	}
	return 0;
}

void lnet_boot_release(struct vm_nic *nics, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (nics[i].fd >= 0) {
			close(nics[i].fd);
			nics[i].fd = -1;
		}
}

struct hosts_walk {
	struct lvm *v;
	struct pv_buf *sh;
	bool mine;
};

/* Every member of a bridge v is on: its /etc/hosts line, and on v's NIC a
 * permanent neighbour entry. */
static void walk_bridge(struct scope_res *r, void *ud)
{
	struct lbridge *b = (struct lbridge *)r;
	struct hosts_walk *w = ud;
	int mine = -1;
	char line[200], ip[16], mac[18];
	for (int k = 0; k < b->nslots; k++)
		if (b->m[k].vm == w->v && !b->m[k].detached)
			mine = k;
	if (mine < 0)
		return;
	for (int k = 0; k < b->nslots; k++) {
		struct member *m = &b->m[k];
		if (!m->vm || m->detached)
			continue;
		lnet_fmt_ip(m->ip, ip);
		lnet_fmt_mac(m->mac, mac);
		if (w->mine) {
			if (k == mine) {
				snprintf(line, sizeof(line), "nic %s eth%u %s/%u\n", mac, m->nic, ip, m->prefix);
				pv_buf_append(w->sh, line, strlen(line));
				if (b->uplink)
					lnet_uplink_lines(b, m->nic, w->sh);
			}
		} else if (k != mine) {
			snprintf(line, sizeof(line), "neigh %s %s eth%u\n", ip, mac, b->m[mine].nic);
			pv_buf_append(w->sh, line, strlen(line));
		}
	}
}

static void walk_hosts(struct scope_res *r, void *ud)
{
	struct lbridge *b = (struct lbridge *)r;
	struct hosts_walk *w = ud;
	char line[300], ip[16];
	bool on = false;
	for (int k = 0; k < b->nslots; k++)
		on |= b->m[k].vm == w->v && !b->m[k].detached;
	if (!on)
		return;
	for (int k = 0; k < b->nslots; k++) {
		struct member *m = &b->m[k];
		if (!m->vm || m->detached)
			continue;
		lnet_fmt_ip(m->ip, ip);
		/* name.bridge always; the bare name from the first bridge that has it
		 * (the hosts file's first match wins) */
		snprintf(line, sizeof(line), "%s %s.%s %s\n", ip, m->vm->name, b->name, m->vm->name);
		pv_buf_append(w->sh, line, strlen(line));
	}
}

/* The guest's side of a boot: a script the agent runs with the guest's own
 * sh and ip (busybox in the built-in image). */
static const char setup_head[] =
	"set -e\n"
	"nic() {\n"
	"  for d in /sys/class/net/*; do\n"
	"    [ \"$(cat \"$d/address\")\" = \"$1\" ] || continue\n"
	"    n=${d##*/}\n"
	"    [ \"$n\" = \"$2\" ] || ip link set dev \"$n\" name \"$2\"\n"
	"    ip addr add \"$3\" dev \"$2\"\n"
	"    ip link set dev \"$2\" up\n"
	"    return 0\n"
	"  done\n"
	"  echo \"no network interface has MAC $1 (is virtio_net in the guest kernel?)\" >&2\n"
	"  exit 1\n"
	"}\n"
	"neigh() { ip neigh replace \"$1\" lladdr \"$2\" nud permanent dev \"$3\" 2>/dev/null || arp -i \"$3\" -s \"$1\" \"$2\"; }\n"
	"ip link set dev lo up\n";

void lnet_guest_setup(lua_State *L, struct lvm *v)
{
	struct pv_buf sh = PV_BUF_INIT;
	struct hosts_walk w = { v, &sh, true };
	size_t head;
	pv_buf_append(&sh, setup_head, sizeof(setup_head) - 1);
	head = sh.len;
	scope_each(L, SCOPE_BRIDGE, walk_bridge, &w);
	if (sh.len == head) {
		pv_buf_release(&sh);
		return; /* on no bridge */
	}
	w.mine = false;
	scope_each(L, SCOPE_BRIDGE, walk_bridge, &w);
	{
		char line[300];
		snprintf(line, sizeof(line), "hostname '%s'\ncat > /etc/hosts <<'PROVIUM_EOF'\n127.0.0.1 localhost\n", v->name);
		pv_buf_append(&sh, line, strlen(line));
	}
	scope_each(L, SCOPE_BRIDGE, walk_hosts, &w);
	pv_buf_append(&sh, "PROVIUM_EOF\n", 12);
	/* the script into a Lua string, so a raise below frees it */
	lua_pushlstring(L, (const char *)sh.data, sh.len);
	pv_buf_release(&sh);
	size_t len;
	const char *script = lua_tolstring(L, -1, &len);
	lnet_guest_exec(L, v, script, len, "network setup");
	lua_pop(L, 1);
}

void lnet_guest_exec(lua_State *L, struct lvm *v, const char *script, size_t len, const char *what)
{
	int top = lua_gettop(L);
	msgpack_packer *pk = agent_begin(&v->vm.agent, "exec", 2);
	msgpack_pack_str_with_body(pk, "cmd", 3);
	msgpack_pack_str_with_body(pk, script, len);
	msgpack_pack_str_with_body(pk, "timeout_ms", 10);
	msgpack_pack_uint64(pk, 60000);
	lvm_call(L, v, what, 0);
	lguest_push_result(L, &v->vm.agent.resp, 0);
	lua_getfield(L, -1, "exit_code");
	if (lua_tointeger(L, -1) != 0 || lua_isnil(L, -1)) {
		lua_getfield(L, -2, "stderr");
		luaL_error(L, "VM '%s': %s in the guest failed: %s", v->name, what, lua_tostring(L, -1));
	}
	lua_settop(L, top);
}

void lnet_uplink_lines(struct lbridge *b, unsigned nic, struct pv_buf *sh)
{
	char line[200], gw[16], dns[16];
	lnet_fmt_ip(b->net + 2, gw);
	lnet_fmt_ip(b->net + 3, dns);
	snprintf(line, sizeof(line),
		 "ip route add default via %s dev eth%u 2>/dev/null || :\n"
		 "echo 'nameserver %s' >> /etc/resolv.conf\n",
		 gw, nic, dns);
	pv_buf_append(sh, line, strlen(line));
}

/* The member of bridge (name or object at idx, or the VM's only bridge when
 * idx is none) that is v; raises. */
struct nic_ref {
	struct lbridge *b;
	int k;
};

struct find_vm_bridge {
	struct lvm *v;
	const char *name;
	struct nic_ref found;
	int count;
	struct pv_buf names;
};

static void find_vm_bridge(struct scope_res *r, void *ud)
{
	struct lbridge *b = (struct lbridge *)r;
	struct find_vm_bridge *f = ud;
	for (int k = 0; k < b->nslots; k++) {
		if (b->m[k].vm != f->v || b->m[k].detached)
			continue;
		if (f->names.len)
			pv_buf_append(&f->names, ", ", 2);
		pv_buf_append(&f->names, b->name, strlen(b->name));
		if (!f->name || strcmp(f->name, b->name) == 0) {
			f->found.b = b;
			f->found.k = k;
			f->count++;
		}
	}
}

static struct nic_ref vm_nic_ref(lua_State *L, int bidx, const char *what)
{
	struct lvm *v = lvm_check(L, 1);
	struct find_vm_bridge f = { .v = v, .names = PV_BUF_INIT };
	if (lua_isnoneornil(L, bidx))
		f.name = NULL;
	else if (luaL_testudata(L, bidx, BRIDGE_T))
		f.name = lnet_check_bridge(L, bidx)->name;
	else if (lua_type(L, bidx) == LUA_TSTRING)
		f.name = lua_tostring(L, bidx);
	else
		luaL_error(L, "vm:%s: expected a bridge or a bridge's name, got %s", what, luaL_typename(L, bidx));
	scope_each(L, SCOPE_BRIDGE, find_vm_bridge, &f);
	pv_buf_append(&f.names, "", 1);
	if (f.count != 1) {
		if (f.name)
			lua_pushfstring(L, "vm:%s: VM '%s' is not on bridge '%s' (its bridges: %s)", what, v->name, f.name,
					f.names.len > 1 ? (char *)f.names.data : "none");
		else if (f.count)
			lua_pushfstring(L, "vm:%s: VM '%s' is on several bridges; name one: vm:%s(%s\"bridge\") (its bridges: %s)",
					what, v->name, what, bidx > 2 ? "..., " : "", (char *)f.names.data);
		else
			lua_pushfstring(L, "vm:%s: VM '%s' is on no bridge; its network is its bridges': attach it to one "
					"before it boots (provium:bridge(\"lan\"):attach(vm))", what, v->name);
		pv_buf_release(&f.names);
		lua_error(L);
	}
	pv_buf_release(&f.names);
	return f.found;
}

static int l_vm_ip(lua_State *L)
{
	struct nic_ref r = vm_nic_ref(L, 2, "ip");
	char ip[16];
	lnet_fmt_ip(r.b->m[r.k].ip, ip);
	lua_pushstring(L, ip);
	return 1;
}

static int l_vm_mac(lua_State *L)
{
	struct nic_ref r = vm_nic_ref(L, 2, "mac");
	char mac[18];
	lnet_fmt_mac(r.b->m[r.k].mac, mac);
	lua_pushstring(L, mac);
	return 1;
}

/* vm:forward(guest_port, bridge?) -> "127.0.0.1:PORT" through the bridge's slirp */
static int l_vm_forward(lua_State *L)
{
	lvm_check(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	if (port < 1 || port > 65535)
		return luaL_error(L, "vm:forward: the guest port must be 1-65535, got %d", (int)port);
	struct nic_ref r = vm_nic_ref(L, 3, "forward");
	if (!r.b->sw)
		return luaL_error(L, "vm:forward: bridge '%s' is closed", r.b->name);
	struct net_call c = { .op = OP_FORWARD, .b = r.b, .a = (int)port, .u = r.b->m[r.k].ip };
	lnet_call(L, &c);
	lua_pushfstring(L, "127.0.0.1:%d", c.c);
	return 1;
}

static void push_nic(lua_State *L, struct lbridge *b, int k, int bridge_idx)
{
	struct nic_ref *n = lua_newuserdatauv(L, sizeof(*n), 1);
	n->b = b;
	n->k = k;
	lua_pushvalue(L, bridge_idx); /* keeps the bridge alive */
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, NIC_T);
}

static void push_bridge_object(lua_State *L, struct lbridge *b)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.bridges");
	lua_getfield(L, -1, b->name);
	lua_remove(L, -2);
}

static int l_vm_nic(lua_State *L)
{
	struct nic_ref r = vm_nic_ref(L, 2, "nic");
	push_bridge_object(L, r.b);
	push_nic(L, r.b, r.k, lua_gettop(L));
	return 1;
}

static int l_bridge_nic(lua_State *L)
{
	struct lbridge *b = lnet_check_bridge(L, 1);
	int k = lnet_member_at(L, b, 2, "nic");
	push_nic(L, b, k, 1);
	return 1;
}

/* ---- captures ---------------------------------------------------------------- */

/* A capture started without a path writes into the run's scratch directory
 * (removed at the end of the run). When a test fails, every such capture
 * that was being written while it ran is kept: moved to the capture
 * directory, its new path added to the failure's reason. The records live
 * until the process ends (the captures' userdata may be collected first). */
struct unnamed_cap {
	struct unnamed_cap *next;
	char *path;         /* where the file is now */
	char *dest;         /* kept: where it goes (copied there at stop when rename could not) */
	unsigned long gen;  /* the last test it was written in */
	bool open, copy_at_stop;
};

static struct unnamed_cap *unnamed_caps;
static unsigned long test_gen; /* 0: the file's load */

struct lcapture {
	struct scope_res res;
	struct lbridge *b;
	int id;
	uint64_t frames;
	struct unnamed_cap *rec; /* NULL for a capture with a path */
	char path[4096];
};

static void keep_copy(struct unnamed_cap *u)
{
	if (sys_copy_file(u->path, u->dest) == 0) {
		unlink(u->path);
		free(u->path);
		u->path = strdup(u->dest);
	}
	u->copy_at_stop = false;
}

static void capture_close(struct scope_res *r, enum scope_how how)
{
	struct lcapture *cap = (struct lcapture *)r;
	(void)how;
	if (cap->b && cap->b->sw && cap->id >= 0) {
		struct net_call c = { .op = OP_CAP_STOP, .b = cap->b, .a = cap->id };
		struct pv_err err;
		rio_call(lnet_run_op, &c, &err);
		cap->frames = c.u;
	}
	cap->id = -1;
	if (cap->rec) {
		cap->rec->open = false;
		if (cap->rec->copy_at_stop)
			keep_copy(cap->rec);
	}
}

void lnet_test_begin(void)
{
	test_gen++;
	for (struct unnamed_cap *u = unnamed_caps; u; u = u->next)
		if (u->open)
			u->gen = test_gen;
}

char *lnet_keep_captures(void)
{
	struct pv_buf out = PV_BUF_INIT;
	char dir[2048], where[2048], stamp[32], line[8400];
	const char *file = runner_env()->path, *base = strrchr(file, '/');
	size_t stem = strlen(base ? base + 1 : file);
	base = base ? base + 1 : file;
	if (stem > 9 && strcmp(base + stem - 9, ".test.lua") == 0)
		stem -= 9;
	time_t now = time(NULL);
	struct tm tm;
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
	/* $PROVIUM_CAPTURE_DIR, else $XDG_STATE_HOME/provium/captures, else ~/.local/state/... */
	sys_user_dir(dir, sizeof(dir), "PROVIUM_CAPTURE_DIR", "XDG_STATE_HOME", ".local/state", "provium/captures");
	for (struct unnamed_cap *u = unnamed_caps; u; u = u->next) {
		if (u->gen != test_gen || u->dest)
			continue;
		int rc = sys_mkdir_p(dir, 0755, where, sizeof(where));
		if (rc < 0) {
			snprintf(line, sizeof(line), "capture not kept (cannot create %s: %s; set PROVIUM_CAPTURE_DIR): %s\n",
				 where, strerror(-rc), u->path);
			pv_buf_append(&out, line, strlen(line));
			continue;
		}
		const char *name = strrchr(u->path, '/');
		char dest[4400];
		snprintf(dest, sizeof(dest), "%s/%.*s-%s-%d-%s", dir, (int)stem, base, stamp, (int)getpid(),
			 name ? name + 1 : u->path);
		u->dest = strdup(dest);
		if (!u->dest)
			continue;
		if (rename(u->path, u->dest) == 0) {
			free(u->path);
			u->path = strdup(u->dest);
		} else if (errno == EXDEV) {
			u->copy_at_stop = true;
			if (!u->open)
				keep_copy(u);
		} else {
			snprintf(line, sizeof(line), "capture not kept (%s: %s): %s\n", dest, strerror(errno), u->path);
			pv_buf_append(&out, line, strlen(line));
			continue;
		}
		snprintf(line, sizeof(line), "capture kept: %s\n", u->dest);
		pv_buf_append(&out, line, strlen(line));
	}
	if (!out.len)
		return NULL;
	out.data[out.len - 1] = 0; /* the last newline */
	return (char *)out.data;
}

/* a capture stops before its bridge: the stream kind closes first */
static const struct scope_ops capture_ops = { SCOPE_STREAM, CAPTURE_T, capture_close, NULL, NULL };

static int start_capture(lua_State *L, struct lbridge *b, int bridge_idx, int port, int path_idx, const char *label)
{
	struct lcapture *cap;
	static unsigned serial;
	if (!lua_isnoneornil(L, path_idx) && lua_type(L, path_idx) != LUA_TSTRING)
		return luaL_error(L, "capture: path must be a string, got %s", luaL_typename(L, path_idx));
	cap = lua_newuserdatauv(L, sizeof(*cap), 1);
	memset(cap, 0, sizeof(*cap));
	cap->id = -1;
	luaL_setmetatable(L, CAPTURE_T);
	scope_add(L, &cap->res, &capture_ops);
	lua_pushvalue(L, bridge_idx);
	lua_setiuservalue(L, -2, 1);
	if (lua_type(L, path_idx) == LUA_TSTRING)
		snprintf(cap->path, sizeof(cap->path), "%s", lua_tostring(L, path_idx));
	else
		snprintf(cap->path, sizeof(cap->path), "%s/%s-%u.pcap", runner_env()->scratch, label, ++serial);
	cap->b = b;
	struct net_call c = { .op = OP_CAP_START, .b = b, .a = port, .path = cap->path };
	cap->id = lnet_call(L, &c);
	if (lua_type(L, path_idx) != LUA_TSTRING) {
		struct unnamed_cap *u = calloc(1, sizeof(*u));
		if (!u || !(u->path = strdup(cap->path))) {
			free(u);
			return luaL_error(L, "capture: out of memory");
		}
		u->gen = test_gen;
		u->open = true;
		u->next = unnamed_caps;
		unnamed_caps = u;
		cap->rec = u;
	}
	return 1;
}

static int l_bridge_capture(lua_State *L)
{
	struct lbridge *b = lnet_open_bridge(L, 1, "capture");
	char label[300];
	snprintf(label, sizeof(label), "bridge-%s", b->name);
	return start_capture(L, b, 1, SW_ANY, 2, label);
}

static struct lcapture *check_capture(lua_State *L)
{
	return luaL_checkudata(L, 1, CAPTURE_T);
}

static int l_capture_path(lua_State *L)
{
	struct lcapture *cap = check_capture(L);
	lua_pushstring(L, cap->rec ? cap->rec->path : cap->path);
	return 1;
}

static int l_capture_stop(lua_State *L)
{
	struct lcapture *cap = check_capture(L);
	scope_close(&cap->res, SCOPE_BY_USER);
	lua_pushinteger(L, (lua_Integer)cap->frames);
	return 1;
}

/* ---- NICs -------------------------------------------------------------------- */

static struct nic_ref *check_nic(lua_State *L)
{
	return luaL_checkudata(L, 1, NIC_T);
}

static struct member *nic_member(lua_State *L, struct nic_ref *n, const char *what)
{
	struct member *m = &n->b->m[n->k];
	if (!n->b->sw)
		luaL_error(L, "nic:%s: bridge '%s' was closed", what, n->b->name);
	if (!m->vm || m->detached)
		luaL_error(L, "nic:%s: the VM was detached from bridge '%s'", what, n->b->name);
	return m;
}

static int l_nic_counters(lua_State *L)
{
	struct nic_ref *n = check_nic(L);
	nic_member(L, n, "counters");
	struct net_call c = { .op = OP_PORT_COUNTERS, .b = n->b, .a = n->k };
	if (rio_call(lnet_run_op, &c, NULL) < 0)
		memset(&c.cnt, 0, sizeof(c.cnt)); /* not booted yet: nothing crossed */
	lnet_push_counters(L, &c.cnt);
	return 1;
}

static int set_link(lua_State *L, bool up)
{
	const char *what = up ? "reconnect" : "disconnect";
	struct nic_ref *n = check_nic(L);
	struct member *m = nic_member(L, n, what);
	struct pv_err err;
	if (m->vm->state != LVM_RUNNING)
		return lvm_state_error(L, m->vm, what);
	if (vm_set_link(&m->vm->vm, m->nic, up, &err) < 0)
		return luaL_error(L, "nic:%s: VM '%s': %s", what, m->vm->name, err.msg);
	struct net_call c = { .op = OP_LINK, .b = n->b, .a = n->k, .flag = up };
	lnet_call(L, &c);
	m->link_down = !up;
	return 0;
}

static int l_nic_disconnect(lua_State *L) { return set_link(L, false); }
static int l_nic_reconnect(lua_State *L) { return set_link(L, true); }

static int l_nic_capture(lua_State *L)
{
	struct nic_ref *n = check_nic(L);
	struct member *m = nic_member(L, n, "capture");
	char label[300];
	snprintf(label, sizeof(label), "nic-%s-%s", m->vm->name, n->b->name);
	lua_getiuservalue(L, 1, 1);
	return start_capture(L, n->b, lua_gettop(L), n->k, 2, label);
}

static int l_nic_name(lua_State *L)
{
	struct nic_ref *n = check_nic(L);
	lua_pushfstring(L, "eth%d", (int)n->b->m[n->k].nic);
	return 1;
}

static int l_nic_ip(lua_State *L)
{
	struct nic_ref *n = check_nic(L);
	char ip[16];
	lnet_fmt_ip(n->b->m[n->k].ip, ip);
	lua_pushstring(L, ip);
	return 1;
}

static int l_nic_mac(lua_State *L)
{
	struct nic_ref *n = check_nic(L);
	char mac[18];
	lnet_fmt_mac(n->b->m[n->k].mac, mac);
	lua_pushstring(L, mac);
	return 1;
}


static const luaL_Reg nic_methods[] = {
	{ "counters", l_nic_counters }, { "disconnect", l_nic_disconnect }, { "reconnect", l_nic_reconnect },
	{ "capture", l_nic_capture }, { "name", l_nic_name }, { "ip", l_nic_ip }, { "mac", l_nic_mac },
	{ NULL, NULL },
};

static const luaL_Reg capture_methods[] = { { "path", l_capture_path }, { "stop", l_capture_stop }, { NULL, NULL } };

static const luaL_Reg bridge_extra[] = { { "nic", l_bridge_nic }, { "capture", l_bridge_capture }, { NULL, NULL } };

static const luaL_Reg vm_extra[] = { { "ip", l_vm_ip }, { "mac", l_vm_mac }, { "nic", l_vm_nic }, { "forward", l_vm_forward }, { NULL, NULL } };

void lnet_vm_install(lua_State *L, int bridge_methods, int vm_methods)
{
	lua_pushvalue(L, bridge_methods);
	luaL_setfuncs(L, bridge_extra, 0);
	lua_pushvalue(L, vm_methods);
	luaL_setfuncs(L, vm_extra, 0);
	lua_pop(L, 2);

	luaL_newlib(L, capture_methods);
	scope_set_methods(L, &capture_ops);

	luaL_newmetatable(L, NIC_T);
	luaL_newlib(L, nic_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

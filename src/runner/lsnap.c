/* lsnap.c - snapshots in the Lua API and the VM side of fixtures (contract
 * in src/runner/lsnap.h; the VM itself is src/runner/lvm.c, its ops
 * lguest.c, lproc.c, lconsole.c). */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcache.h"
#include "lsnap.h"
#include "lnet.h"
#include "lstream.h"
#include "lworker.h"
#include "lvm.h"
#include "runner_priv.h"
#include "sys.h"

struct lsnap {
	char *path; /* owned: freed by __gc */
	uint64_t bytes;
	uint64_t memory;
	uint32_t cpus;
	bool deleted;
	/* the VM it was taken of: a fixture resumes the same machine */
	char name[128], profile[128];
	bool kvm;
	uint64_t rng_seed; /* its boot's (lboot.h), when has_rng_seed */
	bool has_rng_seed;
	struct ldisks_saved disks; /* copies of its disks, next to path */
};

/* The sum of a snapshot's disk copies. */
static uint64_t disk_bytes(const struct ldisks_saved *s)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < s->n; k++)
		n += s->d[k].bytes;
	return n;
}

struct save_ctx {
	struct lvm *v;
	struct lsnap *sn;
};

/* vm_snapshot's moment with the guest stopped: the disks go with its RAM. */
static int save_disks(void *ud, struct pv_err *err)
{
	struct save_ctx *c = ud;
	return ldisk_save(c->v, c->sn->path, &c->sn->disks, err);
}

/* Snapshot files are named by pid and this counter: process-wide on purpose,
 * as the file's state and a fixture builder's share the scratch directory. */
static unsigned nsnaps;

static int l_vm_snapshot(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "snapshot");
	/* a restore could not give them back: the guest's agent and the host's
	 * buffers would disagree on what was read */
	lstream_refuse_open(L, v, "vm:snapshot()");
	lworker_refuse_open(L, v, "vm:snapshot()");
	ldisk_check_snapshot(L, v, "vm:snapshot()");
	lshare_refuse(L, v, "vm:snapshot()");
	struct lsnap *sn = lua_newuserdatauv(L, sizeof(*sn), 0);
	struct pv_err err;
	memset(sn, 0, sizeof(*sn));
	luaL_setmetatable(L, "provium.snapshot"); /* from here __gc frees path */
	/* the scratch dir is shared by every runner of the run */
	if (asprintf(&sn->path, "%s/snap-%d-%u.zst", runner_env()->scratch, (int)getpid(), ++nsnaps) < 0) {
		sn->path = NULL;
		return luaL_error(L, "out of memory");
	}
	struct save_ctx ctx = { v, sn };
	if (vm_snapshot(&v->vm, sn->path, &sn->bytes, v->disks.n ? save_disks : NULL, &ctx, &err) < 0) {
		if (vm_exited(&v->vm))
			return lvm_died(L, v, "snapshot", err.msg);
		return luaL_error(L, "VM '%s': snapshot failed: %s", v->name, err.msg);
	}
	sn->memory = v->memory;
	sn->cpus = v->cpus;
	snprintf(sn->name, sizeof(sn->name), "%s", v->name);
	snprintf(sn->profile, sizeof(sn->profile), "%s", v->profile);
	sn->kvm = v->boot_kvm;
	sn->has_rng_seed = v->boot.rng_seed_fixed && !v->boot.rng_seed_unknown;
	sn->rng_seed = v->boot.rng_seed;
	return 1;
}

static int l_vm_restore(lua_State *L)
{
	struct lvm *v = lvm_running(L, 1, "restore");
	struct lsnap *sn = luaL_checkudata(L, 2, "provium.snapshot");
	struct pv_err err;
	if (sn->deleted)
		return luaL_error(L, "this snapshot was deleted");
	if (sn->memory != v->memory || sn->cpus != v->cpus)
		return luaL_error(L, "VM '%s' has %d MiB and %d cpus, the snapshot was taken with %d MiB and %d cpus",
				  v->name, (int)(v->memory >> 20), (int)v->cpus, (int)(sn->memory >> 20), (int)sn->cpus);
	ldisk_check_restore(L, v, &sn->disks);
	struct vm_spec spec = { v->boot_kernel, v->boot_initrd, v->boot_cmdline, v->memory, v->cpus, v->boot_kvm,
				v->boot_kvm ? 30000000000ull : 180000000000ull, sn->path, NULL, v->boot_vmgenid, NULL, 0, NULL, NULL, 0, 0, false, NULL, 0, v->rootfs };
	struct vm_disk disks[VM_MAX_DISKS];
	/* same VM, new QEMU: the old one goes, the pool share stays; the console
	 * keeps its last 64 KiB */
	vm_shutdown(&v->vm);
	v->gen++; /* the old agent's process handles are void */
	char *history = vm_console_tail(v->console_path, 65536);
	spec.console_history = history;
	vm_remove_dir(&v->vm);
	struct vm_nic nics[VM_MAX_NICS];
	unsigned nnics = 0;
	/* the disks as they were then: fresh copies of the snapshot's */
	int brc = ldisk_load(v, &sn->disks, &err);
	if (brc >= 0 && (brc = ldisk_prepare(v, disks, &err)) >= 0) {
		spec.disks = disks;
		spec.ndisks = (unsigned)brc;
		spec.hotplug_ports = v->disks.hotplug ? VM_MAX_HOTPLUG : 0;
		spec.scsi = v->disks.hotplug;
		brc = lnet_boot_prepare(L, v, nics, &nnics, &err);
	}
	spec.nics = nics;
	spec.nnics = nnics;
	if (brc >= 0)
		brc = vm_boot(&v->vm, &spec, &err);
	lnet_boot_release(nics, nnics);
	free(history);
	if (brc < 0) {
		snprintf(v->dead_why, sizeof(v->dead_why), "restore failed: %.700s", err.msg);
		lvm_enter(v, LVM_DEAD);
		return luaL_error(L, "VM '%s': %s", v->name, v->dead_why);
	}
	char *console = strdup(v->vm.console_path);
	if (console) {
		free(v->console_path);
		v->console_path = console;
	}
	v->boot_kind = "snapshot";
	ldisk_resolve(L, v);
	lua_settop(L, 1);
	return 1;
}

static int s_size(lua_State *L)
{
	struct lsnap *sn = luaL_checkudata(L, 1, "provium.snapshot");
	lua_pushinteger(L, (lua_Integer)(sn->bytes + disk_bytes(&sn->disks)));
	return 1;
}

static int s_delete(lua_State *L)
{
	struct lsnap *sn = luaL_checkudata(L, 1, "provium.snapshot");
	if (!sn->deleted && sn->path)
		unlink(sn->path);
	ldisk_saved_remove(&sn->disks);
	sn->deleted = true;
	return 0;
}

static int s_gc(lua_State *L)
{
	struct lsnap *sn = luaL_checkudata(L, 1, "provium.snapshot");
	free(sn->path);
	sn->path = NULL;
	return 0;
}

/* ---- fixtures (lfx.c) ------------------------------------------------------- */

static int add_part(struct fc_manifest *m, char **paths, const struct lsnap *sn, struct pv_err *err)
{
	struct fc_vm *fv;
	if (sn->deleted || !sn->path)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "the snapshot of VM '%s' was deleted", sn->name);
	if (m->nvms == FC_MAX_VMS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a fixture holds at most %d VMs", FC_MAX_VMS);
	paths[m->nvms] = strdup(sn->path);
	if (!paths[m->nvms])
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	fv = &m->vms[m->nvms];
	memset(fv, 0, sizeof(*fv));
	snprintf(fv->name, sizeof(fv->name), "%s", sn->name);
	snprintf(fv->profile, sizeof(fv->profile), "%s", sn->profile);
	fv->memory = sn->memory;
	fv->cpus = sn->cpus;
	fv->kvm = sn->kvm;
	fv->bytes = sn->bytes;
	fv->rng_seed = sn->rng_seed;
	fv->has_rng_seed = sn->has_rng_seed;
	fv->disk_ports = sn->disks.hotplug;
	if (m->ndisks + sn->disks.n > FC_MAX_DISKS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a fixture holds at most %d disks", FC_MAX_DISKS);
	for (unsigned k = 0; k < sn->disks.n; k++) {
		const struct ldisk_saved *sd = &sn->disks.d[k];
		struct fc_disk *d = &m->disks[m->ndisks];
		memset(d, 0, sizeof(*d));
		if (strlen(sd->image) >= sizeof(d->image))
			return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "disk \"%s\": its image's path is longer than %zu "
					  "bytes, more than a fixture records", sd->id, sizeof(d->image) - 1);
		d->vm = (uint32_t)m->nvms;
		memcpy(d->id, sd->id, sizeof(d->id));
		d->size = sd->size;
		d->seed = sd->seed;
		memcpy(d->format, sd->format, sizeof(d->format));
		memcpy(d->image, sd->image, strlen(sd->image) + 1); /* its length checked above */
		memcpy(d->image_format, sd->image_format, sizeof(d->image_format));
		d->readonly = sd->readonly;
		d->faults = sd->mediated;
		strcpy(d->bus, sd->scsi ? "scsi" : "virtio");
		d->data = sd->bytes;
		if (sd->copy[0] && !(paths[LSNAP_DISK_PATH + m->ndisks] = strdup(sd->copy)))
			return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		m->ndisks++;
	}
	m->nvms++;
	return 0;
}

uint64_t lsnap_disk_bytes(const struct fc_manifest *m)
{
	uint64_t n = 0;
	for (size_t j = 0; j < m->ndisks; j++)
		n += m->disks[j].data;
	return n;
}

static int cmp_fcvm(const void *a, const void *b)
{
	return strcmp(((const struct fc_vm *)a)->name, ((const struct fc_vm *)b)->name);
}

/* The lab snapshot's bridges (the Lua side's provium.net_pack) into a file
 * of the scratch directory, its path into paths[FC_MAX_VMS]; none when the
 * lab has no bridge. */
static int net_part(lua_State *L, int idx, char **paths, struct pv_err *err)
{
	size_t len;
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.net_pack");
	lua_pushvalue(L, idx);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		pv_err_set(err, -EINVAL, SIZE_MAX, "%s", lua_tostring(L, -1));
		lua_pop(L, 1);
		return -EINVAL;
	}
	const char *s = lua_tolstring(L, -1, &len);
	if (!s) {
		lua_pop(L, 1);
		return 0;
	}
	static unsigned n;
	FILE *f = NULL;
	if (asprintf(&paths[FC_MAX_VMS], "%s/net-%d-%u.bin", runner_env()->scratch, (int)getpid(), ++n) < 0)
		paths[FC_MAX_VMS] = NULL;
	if (!paths[FC_MAX_VMS] || !(f = fopen(paths[FC_MAX_VMS], "wb")) || fwrite(s, 1, len, f) != len ||
	    fclose(f) != 0) {
		int e = errno;
		lua_pop(L, 1);
		return pv_err_set(err, -e, SIZE_MAX, "cannot write the lab's network: %s", strerror(e));
	}
	lua_pop(L, 1);
	return 0;
}

int lsnap_parts(lua_State *L, int idx, struct fc_manifest *m, char **paths, struct pv_err *err)
{
	idx = lua_absindex(L, idx);
	m->nvms = 0;
	m->ndisks = 0;
	if (luaL_testudata(L, idx, "provium.snapshot")) {
		struct lsnap *sn = lua_touserdata(L, idx);
		const char *br = lnet_vm_bridge(L, sn->name);
		m->lab = false;
		if (br)
			return pv_err_set(err, -EINVAL, SIZE_MAX,
					  "returned vm:snapshot() of VM '%s', which is on bridge '%s': a VM's snapshot does "
					  "not hold the network; return provium:snapshot() and resume it with "
					  "provium.lab_fixture",
					  sn->name, br);
		return add_part(m, paths, sn, err);
	}
	if (lua_istable(L, idx) && lua_getmetatable(L, idx)) {
		lua_getfield(L, LUA_REGISTRYINDEX, "provium.labsnap");
		bool lab = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
		if (lab) {
			int rc = 0;
			m->lab = true;
			lua_getfield(L, idx, "vms");
			lua_pushnil(L);
			while (rc == 0 && lua_next(L, -2)) {
				struct lsnap *sn = luaL_testudata(L, -1, "provium.snapshot");
				rc = sn ? add_part(m, paths, sn, err) : pv_err_set(err, -EINVAL, SIZE_MAX, "a lab snapshot holds something else than VM snapshots");
				lua_pop(L, 1);
			}
			lua_pop(L, rc == 0 ? 1 : 2);
			if (rc == 0 && m->nvms == 0)
				rc = pv_err_set(err, -EINVAL, SIZE_MAX, "the lab snapshot holds no VM (no VM was running at provium:snapshot())");
			if (rc == 0)
				rc = net_part(L, idx, paths, err);
			if (rc == 0) {
				/* the same order in every manifest; paths and disks follow their VM */
				uint32_t was[FC_MAX_VMS], now[FC_MAX_VMS];
				for (size_t i = 0; i < m->nvms; i++)
					was[i] = (uint32_t)i;
				for (size_t i = 1; i < m->nvms; i++)
					for (size_t j = i; j > 0 && cmp_fcvm(&m->vms[j - 1], &m->vms[j]) > 0; j--) {
						struct fc_vm t = m->vms[j];
						char *tp = paths[j];
						uint32_t tw = was[j];
						m->vms[j] = m->vms[j - 1];
						m->vms[j - 1] = t;
						paths[j] = paths[j - 1];
						paths[j - 1] = tp;
						was[j] = was[j - 1];
						was[j - 1] = tw;
					}
				for (size_t i = 0; i < m->nvms; i++)
					now[was[i]] = (uint32_t)i;
				for (size_t j = 0; j < m->ndisks; j++)
					m->disks[j].vm = now[m->disks[j].vm];
				for (size_t i = 1; i < m->ndisks; i++) /* stable: a VM's disks keep their order */
					for (size_t j = i; j > 0 && m->disks[j - 1].vm > m->disks[j].vm; j--) {
						struct fc_disk t = m->disks[j];
						char *tp = paths[LSNAP_DISK_PATH + j];
						m->disks[j] = m->disks[j - 1];
						m->disks[j - 1] = t;
						paths[LSNAP_DISK_PATH + j] = paths[LSNAP_DISK_PATH + j - 1];
						paths[LSNAP_DISK_PATH + j - 1] = tp;
					}
			}
			return rc;
		}
	}
	return pv_err_set(err, -EINVAL, SIZE_MAX, "it returned %s, not a Snapshot: end the fixture with "
			  "`return vm:snapshot()` (one VM) or `return provium:snapshot()` (its VMs)",
			  luaL_typename(L, idx));
}

/* VM i of entry m gets its disks: private copies of the entry's. */
static int give_disks(struct lvm *v, const struct fc_manifest *m, size_t i, const char *entry_dir, struct pv_err *err)
{
	struct ldisks_saved *s = calloc(1, sizeof(*s));
	if (!s)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	s->hotplug = m->vms[i].disk_ports;
	for (size_t j = 0; j < m->ndisks; j++) {
		const struct fc_disk *d = &m->disks[j];
		struct ldisk_saved *sd = &s->d[s->n];
		if (d->vm != i || s->n == VM_MAX_DISKS)
			continue;
		memcpy(sd->id, d->id, sizeof(sd->id));
		sd->size = d->size;
		sd->seed = d->seed;
		memcpy(sd->format, d->format, sizeof(sd->format));
		snprintf(sd->image, sizeof(sd->image), "%s", d->image);
		memcpy(sd->image_format, d->image_format, sizeof(sd->image_format));
		sd->readonly = d->readonly;
		sd->mediated = d->faults;
		sd->scsi = !strcmp(d->bus, "scsi");
		if (d->file[0])
			snprintf(sd->copy, sizeof(sd->copy), "%s/%s", entry_dir, d->file);
		s->n++;
	}
	int rc = ldisk_load(v, s, err);
	free(s);
	return rc;
}

int lsnap_resume(lua_State *L, const struct fc_manifest *m, const char *entry_dir, const char *rename_to,
		 bool as_lab, struct pv_err *err)
{
	struct lvm *list[FC_MAX_VMS];
	int n = (int)m->nvms;
	char **in = scope_strv_box(L, (size_t)n); /* freed however this ends */
	int base = lua_gettop(L);

	luaL_checkstack(L, n + 4, "resuming a fixture");
	for (int i = 0; i < n; i++) {
		const struct fc_vm *fv = &m->vms[i];
		list[i] = lvm_new(L, rename_to && n == 1 ? rename_to : fv->name, fv->profile); /* pushed */
		list[i]->memory = fv->memory;
		list[i]->cpus = fv->cpus;
		list[i]->boot_kvm = fv->kvm;
		/* the guest has the build's seed: lboot_cmdline keeps (and logs) it */
		list[i]->boot.rng_seed = fv->rng_seed;
		list[i]->boot.rng_seed_fixed = true;
		list[i]->boot.rng_seed_unknown = !fv->has_rng_seed;
		if (asprintf(&in[i], "%s/%s", entry_dir, fv->file) < 0) {
			in[i] = NULL;
			return luaL_error(L, "out of memory");
		}
		/* lvm_boot_many makes it running; a raise on the way must not leave
		 * it to a later provium:boot() */
		list[i]->state = LVM_SHUTDOWN;
		if (give_disks(list[i], m, (size_t)i, entry_dir, err) < 0)
			return 0;
	}
	if (m->net_file[0]) { /* the bridges first: the VMs' NICs come from them */
		char *net = NULL, *path = NULL;
		size_t len;
		int rc = asprintf(&path, "%s/%s", entry_dir, m->net_file) < 0 ? -ENOMEM
										: sys_read_file(path, 1u << 24, &net, &len);
		free(path);
		if (rc < 0) {
			pv_err_set(err, rc, SIZE_MAX, "cannot read the lab's network (%s): %s", m->net_file, strerror(-rc));
			return 0;
		}
		lua_getfield(L, LUA_REGISTRYINDEX, "provium.net_unpack");
		lua_pushlstring(L, net, len);
		free(net);
		lua_createtable(L, 0, n);
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, base + 1 + i);
			lua_setfield(L, -2, m->vms[i].name);
		}
		lua_call(L, 2, 1); /* raises: a name clash is the caller's problem */
	} else {
		lua_newtable(L);
	}
	int made = lua_gettop(L); /* the bridges made: closed again if the VMs do not resume */
	if (lvm_boot_many(L, list, n, 0, (const char *const *)in, err) < 0) {
		for (lua_Integer i = 1; lua_geti(L, made, i) != LUA_TNIL; i++) {
			lua_getfield(L, -1, "_close");
			lua_insert(L, -2);
			lua_call(L, 1, 0);
		}
		return 0;
	}
	lua_remove(L, made);
	for (int i = 0; i < n; i++)
		lvm_publish(L, base + 1 + i);
	if (!as_lab) {
		lua_pushvalue(L, base + 1);
		return 1;
	}
	lua_createtable(L, 0, n);
	for (int i = 0; i < n; i++) {
		lua_pushvalue(L, base + 1 + i);
		lua_setfield(L, -2, list[i]->name);
	}
	return 1;
}

static const luaL_Reg snapshot_methods[] = { { "size", s_size }, { "delete", s_delete }, { NULL, NULL } };

void lsnap_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_vm_snapshot);
	lua_setfield(L, methods, "snapshot");
	lua_pushcfunction(L, l_vm_restore);
	lua_setfield(L, methods, "restore");
	luaL_newmetatable(L, "provium.snapshot");
	luaL_newlib(L, snapshot_methods);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, s_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);

	/* provium:snapshot() / provium:restore(): every running VM of the file.
	 * Written in Lua on top of the per-VM calls. */
	if (luaL_loadstring(L,
		"local vms, prov, reg = ...\n"
		"local mt = { __index = {\n"
		"  size = function(self) local n = 0; for _, s in pairs(self.vms) do n = n + s:size() end; return n end,\n"
		"  delete = function(self) for _, s in pairs(self.vms) do s:delete() end end } }\n"
		"reg['provium.labsnap'] = mt\n"
		"rawset(prov, 'snapshot', function(self)\n"
		"  local snap = setmetatable({ vms = {} }, mt)\n"
		"  for name, vm in pairs(vms) do if vm.state == 'running' then snap.vms[name] = vm:snapshot() end end\n"
		"  snap.bridges = {}\n"
		"  for name, br in pairs(reg['provium.bridges'] or {}) do\n"
		"    local ok, st = pcall(br._state, br)\n"
		"    if ok then snap.bridges[name] = { br, st } end\n" /* a closed bridge has nothing to keep */
		"  end\n"
		"  return snap\n"
		"end)\n"
		"rawset(prov, 'restore', function(self, snap)\n"
		"  if getmetatable(snap) ~= mt then error('provium:restore needs a snapshot from provium:snapshot()', 2) end\n"
		"  for name, s in pairs(snap.vms) do\n"
		"    local vm = vms[name]\n"
		"    if not vm or vm.state ~= 'running' then error(\"VM '\" .. name .. \"' of the snapshot is not running\", 2) end\n"
		"    vm:restore(s)\n"
		"  end\n"
		"  for _, b in pairs(snap.bridges) do b[1]:_set_state(b[2]) end\n"
		"end)\n"
		/* a lab fixture's bridges, as a file of its cache entry (string.pack;
		 * bridges by name, members in attach order) */
		"local MAGIC = 'provium-net-1'\n"
		"reg['provium.net_pack'] = function(snap)\n"
		"  local names = {}\n"
		"  for name in pairs(snap.bridges) do names[#names + 1] = name end\n"
		"  table.sort(names)\n"
		"  if #names == 0 then return nil end\n"
		"  local out = { string.pack('<s1I4', MAGIC, #names) }\n"
		"  for _, name in ipairs(names) do\n"
		"    local d = snap.bridges[name][1]:_describe(snap.vms)\n"
		"    out[#out + 1] = string.pack('<s4i8I4BBs4I4', name, d.seed, d.net, d.prefix, d.uplink and 1 or 0, d.rules, #d.members)\n"
		"    for _, m in ipairs(d.members) do out[#out + 1] = string.pack('<s4c6I4B', m.vm, m.mac, m.ip, m.prefix) end\n"
		"  end\n"
		"  return table.concat(out)\n"
		"end\n"
		"reg['provium.net_unpack'] = function(s, vms)\n"
		"  local ok, err = pcall(function()\n"
		"    local magic, n, pos = string.unpack('<s1I4', s)\n"
		"    if magic ~= MAGIC then error('not a network of this provium', 0) end\n"
		"    local list = {}\n"
		"    for _ = 1, n do\n"
		"      local d = { members = {} }\n"
		"      local name, up, nm\n"
		"      name, d.seed, d.net, d.prefix, up, d.rules, nm, pos = string.unpack('<s4i8I4BBs4I4', s, pos)\n"
		"      d.uplink = up == 1\n"
		"      for i = 1, nm do\n"
		"        local m = {}\n"
		"        m.vm, m.mac, m.ip, m.prefix, pos = string.unpack('<s4c6I4B', s, pos)\n"
		"        d.members[i] = m\n"
		"      end\n"
		"      list[#list + 1] = { name, d }\n"
		"    end\n"
		"    if pos ~= #s + 1 then error('trailing bytes', 0) end\n"
		"    return list\n"
		"  end)\n"
		"  if not ok then error('the fixture\\'s network file is corrupt (' .. tostring(err) .. ')', 0) end\n"
		"  local made = {}\n"
		"  for _, b in ipairs(err) do\n"
		"    local ok2, br = pcall(prov._bridge_restore, b[1], b[2], vms)\n"
		"    if not ok2 then for _, m in ipairs(made) do m:_close() end; error(br, 0) end\n"
		"    made[#made + 1] = br\n"
		"  end\n"
		"  return made\n"
		"end\n") != LUA_OK)
		lua_error(L); /* a bug in the chunk above: fail loudly at start */
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_getglobal(L, "provium");
	lua_pushvalue(L, LUA_REGISTRYINDEX);
	lua_call(L, 3, 0);
}

/* lua_vm.c - the Lua VM API of test files: provium:vm, vm:boot, vm:run, ...
 * (docs/lua-api.md). Each VM is a QEMU child of this runner (vm.c) driven
 * through its agent (agent_client.c). Pool memory and cpus come from the
 * scheduler through control messages; vm_spawned / vm_shutdown are emitted
 * here. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fcache.h"
#include "mpr.h"
#include "runner_priv.h"
#include "units.h"
#include "vm.h"
#include "wire.h"

#define VMM_OVERHEAD (100ull << 20)
#define MAX_VMS 64

/* The VM's state machine:
 *
 *   created --boot/resume--> running --vm:shutdown, end of scope/file--> shut down
 *      |                        |
 *      |                        +--QEMU gone, agent silent, failed restore--> dead --vm:shutdown--> shut down
 *      +--vm:shutdown, end of scope------------------------------------------------> shut down
 *
 * Every transition goes through enter(). A booted VM is `live` (its QEMU may
 * run, vm_spawned was emitted, its pool share is held) until enter() takes it
 * out of running: that is the only place that reaps QEMU, emits vm_shutdown
 * and gives the share back, so each happens exactly once whichever path ends
 * the VM (an op noticing QEMU died, vm:shutdown, scope or file end, cleanup). */
enum lstate { S_CREATED, S_RUNNING, S_DEAD, S_SHUTDOWN };
static const char *const state_names[] = { "created", "running", "dead", "shut down" };

struct lvm {
	char *name, *profile;
	char *kernel, *initrd, *cmdline; /* NULL: the built-in image */
	int accel_pref;                  /* -1 auto, 0 tcg, 1 kvm */
	uint64_t memory;
	uint32_t cpus;
	enum lstate state;
	bool live; /* see enter() */
	char dead_why[800];
	struct vm vm;
	uint32_t cid;
	char *scope; /* test that created it; NULL: file scope */
	bool agent_included;
	bool vmgenid; /* profiles.<name>.vmgenid */
	/* what it was booted with: a restore starts the same machine */
	char boot_kernel[4096], boot_initrd[4096], boot_cmdline[2048];
	bool boot_kvm, boot_vmgenid;
	bool booted_ever;
	uint64_t boot_mono;
	char console_path[300];
};

static struct lvm *vms[MAX_VMS];
static int nvms;
static int accel = -1; /* -1 unknown, 0 tcg, 1 kvm */

static uint64_t op_timeout(void) { return accel == 1 ? 30000000000ull : 120000000000ull; }

static struct lvm *check_vm(lua_State *L, int idx)
{
	struct lvm **p = luaL_checkudata(L, idx, "provium.vm");
	return *p;
}

/* ---- pool ------------------------------------------------------------------ */

static void acquire(lua_State *L, uint64_t mem, uint32_t cpus, uint32_t *cids, int ncids)
{
	struct ctl_msg m;
	size_t got = 0;
	if (ctl_put_acquire(runner_out(), mem, cpus, (uint32_t)ncids) < 0)
		luaL_error(L, "cannot ask the scheduler for %d VMs (at most %d at once)", ncids, CTL_MAX_VMS);
	runner_send();
	runner_recv(&m);
	if (ctl_is(&m, "acquire_denied")) {
		char *why = ctl_get_strdup(&m, "reason");
		lua_pushstring(L, why ? why : "the pool cannot hold this VM");
		free(why);
		lua_error(L);
	}
	/* the decoder checked the fields; that this is the reply, and its
	 * count, are for the runner to check */
	if (!ctl_is(&m, "acquired") || !ctl_get_uintv(&m, "cids", cids, (size_t)ncids, &got) || got != (size_t)ncids)
		luaL_error(L, "control protocol: the scheduler answered acquire (%d VMs) with %s", ncids, m.name);
}

static void release(uint64_t mem, uint32_t cpus)
{
	if (ctl_put_release(runner_out(), mem, cpus) == 0)
		runner_send();
}

/* ---- lifecycle ---------------------------------------------------------------- */

static int state_error(lua_State *L, struct lvm *v, const char *what)
{
	switch (v->state) {
	case S_CREATED:
		return luaL_error(L, "VM '%s' is not booted (state: created): call vm:boot() before %s", v->name, what);
	case S_DEAD:
		return luaL_error(L, "VM '%s' is dead (state: dead): %s", v->name, v->dead_why);
	case S_SHUTDOWN:
		return luaL_error(L, "VM '%s' was shut down (state: shut down): create a new one with provium:vm()", v->name);
	default:
		return luaL_error(L, "VM '%s' is %s", v->name, state_names[v->state]);
	}
}

static void emit_shutdown(struct lvm *v)
{
	struct pv_event ev = { .kind = PV_EV_VM_SHUTDOWN };
	ev.u.vm_shutdown = (struct pv_ev_vm_shutdown){ pv_str_c(runner_path()), pv_str_c(v->name),
							pv_mono_ns() - v->boot_mono };
	runner_emit(&ev);
}

/* The one state transition (see the state machine above). */
static void enter(struct lvm *v, enum lstate to)
{
	if (v->live && to != S_RUNNING) {
		v->live = false;
		vm_shutdown(&v->vm); /* reaps QEMU; a no-op for one reaped already */
		emit_shutdown(v);
		release(v->memory + VMM_OVERHEAD, v->cpus);
	}
	v->state = to;
}

static void do_shutdown(struct lvm *v)
{
	if (v->state != S_SHUTDOWN)
		enter(v, S_SHUTDOWN);
}

/* After a transport failure: QEMU gone or the agent silent. */
static int died(lua_State *L, struct lvm *v, const char *op, const char *why)
{
	char reason[300] = "", *tail;
	if (v->state == S_RUNNING) {
		if (!vm_exited(&v->vm)) {
			/* an agent that stops answering is as good as dead: stop the VM */
			vm_shutdown(&v->vm);
		}
		vm_exit_reason(&v->vm, reason, sizeof(reason));
		tail = vm_console_tail(v->console_path, 1024);
		snprintf(v->dead_why, sizeof(v->dead_why), "%s%s%s\nconsole (last lines):\n%s", why, reason[0] ? "; " : "",
			 reason, tail ? tail : "");
		free(tail);
		/* the VM is gone: give its resources back now */
		enter(v, S_DEAD);
	}
	return luaL_error(L, "VM '%s' died during %s: %s", v->name, op, v->dead_why);
}

static void resolve_accel(const char *kernel, const char *initrd)
{
	char notice[600];
	const char *force = getenv("PROVIUM_ACCEL");
	if (accel >= 0)
		return;
	if (force && strcmp(force, "tcg") == 0) {
		accel = 0;
		return;
	}
	accel = vm_kvm_usable(kernel, initrd, notice, sizeof(notice)) ? 1 : 0;
	if (notice[0])
		fprintf(stderr, "provium: %s\n", notice);
}

/* Boots every VM in list with one pool acquisition. A failed boot gives back
 * the share of the VMs not booted yet, then raises. */
static int agent_initrd(struct lvm *v, char *out, size_t len, struct pv_err *err);

/* incoming (may be NULL): per VM, a snapshot to resume instead of booting.
 * A failed resume is returned (-1, *rerr filled, every VM of list left shut
 * down and its share given back) rather than raised, so that a fixture can
 * tell a bad cache entry from a bad call. */
static int boot_many(lua_State *L, struct lvm **list, int n, uint64_t timeout_ns, const char *const *incoming,
		     struct pv_err *rerr)
{
	uint64_t mem = 0;
	uint32_t cpus = 0, cids[MAX_VMS] = { 0 };
	char kernel[MAX_VMS][4096], initrd[MAX_VMS][4096];
	struct pv_err err;

	/* every image is checked before the pool is asked for anything */
	for (int i = 0; i < n; i++) {
		struct lvm *v = list[i];
		if (!v->kernel) {
			if (vm_builtin_image(kernel[i], initrd[i], &err) < 0)
				luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		} else {
			snprintf(kernel[i], sizeof(kernel[i]), "%s", v->kernel);
			if (access(v->kernel, R_OK) != 0)
				luaL_error(L, "cannot boot VM '%s': kernel %s: %s (profiles.%s.kernel in provium.lua)", v->name,
					   v->kernel, strerror(errno), v->profile);
			if (v->agent_included)
				snprintf(initrd[i], sizeof(initrd[i]), "%s", v->initrd);
			else if (agent_initrd(v, initrd[i], sizeof(initrd[i]), &err) < 0)
				luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		}
		mem += v->memory + VMM_OVERHEAD;
		cpus += v->cpus;
	}
	acquire(L, mem, cpus, cids, n);
	for (int i = 0; i < n; i++) {
		struct lvm *v = list[i];
		bool kvm;
		if (v->accel_pref >= 0)
			kvm = v->accel_pref == 1;
		else {
			resolve_accel(kernel[i], initrd[i]);
			kvm = accel == 1;
		}
		char cmdline[2048];
		snprintf(cmdline, sizeof(cmdline), "%s %s", v->cmdline ? v->cmdline : "",
			 getenv("PROVIUM_GUEST_CMDLINE") ? getenv("PROVIUM_GUEST_CMDLINE") : "");
		if (incoming)
			kvm = v->boot_kvm; /* a snapshot resumes under the accelerator it was taken with */
		struct vm_spec spec = { kernel[i], initrd[i], cmdline, v->memory, v->cpus, kvm,
					timeout_ns ? timeout_ns : (kvm ? 30000000000ull : 180000000000ull),
					incoming ? incoming[i] : NULL, NULL, false };
		/* the built-in image says what its kernel has; a profile says it itself */
		spec.vmgenid = v->kernel ? v->vmgenid : vm_image_has_vmgenid(kernel[i]);
		struct pv_event ev = { .kind = PV_EV_VM_SPAWNED };
		v->cid = cids[i];
		if (vm_boot(&v->vm, &spec, &err) < 0) {
			release(mem, cpus);
			v->cid = 0;
			if (incoming && rerr) {
				vm_remove_dir(&v->vm);
				for (int j = 0; j < n; j++)
					enter(list[j], S_SHUTDOWN);
				pv_err_set(rerr, -EIO, SIZE_MAX, "VM '%s': %s", v->name, err.msg);
				return -1;
			}
			luaL_error(L, "VM '%s' failed to boot: %s", v->name, err.msg);
		}
		mem -= v->memory + VMM_OVERHEAD;
		cpus -= v->cpus;
		snprintf(v->boot_kernel, sizeof(v->boot_kernel), "%s", kernel[i]);
		snprintf(v->boot_initrd, sizeof(v->boot_initrd), "%s", initrd[i]);
		snprintf(v->boot_cmdline, sizeof(v->boot_cmdline), "%s", cmdline);
		v->boot_kvm = kvm;
		v->boot_vmgenid = spec.vmgenid;
		v->live = true;
		enter(v, S_RUNNING);
		v->booted_ever = true;
		v->boot_mono = v->vm.started;
		memcpy(v->console_path, v->vm.console_path, sizeof(v->console_path));
		ev.u.vm_spawned = (struct pv_ev_vm_spawned){ pv_str_c(runner_path()), pv_str_c(v->name), pv_str_c(v->profile),
							     v->memory, v->cid };
		runner_emit(&ev);
	}
	return 0;
}

/* profiles[name] of provium.lua into v; the config checked every profile
 * when it was loaded. Raises when there is no such profile. */
static void load_profile(lua_State *L, struct lvm *v, bool *has_mem, bool *has_cpus)
{
	const struct pv_profile *p = pv_config_profile(runner_config(), v->profile);

	if (!p)
		luaL_error(L, "profile '%s' is not defined %s%s (the built-in profile is 'linux')", v->profile,
			   runner_config_path() ? "in " : "(there is no provium.lua)",
			   runner_config_path() ? runner_config_path() : "");
	v->kernel = strdup(p->kernel);
	v->initrd = strdup(p->initrd);
	v->cmdline = p->cmdline ? strdup(p->cmdline) : NULL;
	if (!v->kernel || !v->initrd || (p->cmdline && !v->cmdline))
		luaL_error(L, "out of memory");
	if (p->memory) {
		v->memory = p->memory;
		*has_mem = true;
	}
	if (p->cpus) {
		v->cpus = p->cpus;
		*has_cpus = true;
	}
	v->accel_pref = p->accel;
	v->agent_included = p->agent_included;
	v->vmgenid = p->vmgenid;
}

/* The profile's initrd with the agent appended as a second cpio archive
 * (the kernel unpacks both; ours provides /init). Made once per profile. */
static int agent_initrd(struct lvm *v, char *out, size_t len, struct pv_err *err)
{
	char kernel[4096], initrd[4096], cpio[4200], buf[65536];
	FILE *in = NULL, *o = NULL;
	size_t n;
	const char *scratch = getenv("TMPDIR");
	if (vm_builtin_image(kernel, initrd, err) < 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX, "profile '%s' needs the agent from the built-in image: %s",
				  v->profile, err->msg);
	snprintf(cpio, sizeof(cpio), "%.*s/agent.cpio", (int)(strrchr(initrd, '/') - initrd), initrd);
	(void)scratch;
	snprintf(out, len, "%s/initrd-%s", runner_scratch(), v->profile);
	if (access(out, R_OK) == 0)
		return 0;
	in = fopen(v->initrd, "rbe");
	if (!in)
		return pv_err_set(err, -errno, SIZE_MAX, "initrd %s: %s; fix profiles.%s.initrd in provium.lua",
				  v->initrd, strerror(errno), v->profile);
	o = fopen(out, "wbe");
	while (o && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, o);
	fclose(in);
	in = fopen(cpio, "rbe");
	if (!in) {
		if (o)
			fclose(o);
		unlink(out);
		return pv_err_set(err, -ENOENT, SIZE_MAX, "%s is missing; run scripts/build-image", cpio);
	}
	while (o && (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, o);
	fclose(in);
	if (!o || fclose(o) != 0) {
		unlink(out);
		return pv_err_set(err, -EIO, SIZE_MAX, "cannot write %s", out);
	}
	return 0;
}

/* A new VM named `name` in L's file (not yet visible to Lua: see push_vm).
 * Raises on a name in use, too many VMs, or a bad profile. */
static struct lvm *create_lvm(lua_State *L, const char *name, const char *profile)
{
	struct lvm *v;
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	if (lua_getfield(L, -1, name) != LUA_TNIL) {
		struct lvm *old = check_vm(L, -1);
		if (old->state == S_CREATED || old->state == S_RUNNING)
			luaL_error(L, "a VM named '%s' already exists (state: %s)", name, state_names[old->state]);
	}
	lua_pop(L, 2);
	if (nvms == MAX_VMS)
		luaL_error(L, "too many VMs in one file (at most %d)", MAX_VMS);
	if (!*name)
		luaL_error(L, "a VM needs a non-empty name");
	v = calloc(1, sizeof(*v));
	if (!v)
		luaL_error(L, "out of memory");
	v->name = strdup(name);
	v->profile = strdup(profile);
	v->memory = 256ull << 20;
	v->cpus = 1;
	v->vm.pid = -1;
	v->vm.pidfd = -1;
	v->accel_pref = -1;
	bool has_mem = false, has_cpus = false;
	if (strcmp(profile, "linux") != 0)
		load_profile(L, v, &has_mem, &has_cpus); /* raises; v is not registered yet */
	if (runner_current_test())
		v->scope = strdup(runner_current_test());
	vms[nvms++] = v;
	return v;
}

/* Pushes v's userdata and makes it provium.<name> / provium:vm(name). */
static void push_vm(lua_State *L, struct lvm *v)
{
	struct lvm **ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	*ud = v;
	luaL_setmetatable(L, "provium.vm");
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, v->name);
	lua_pop(L, 1);
}

static int l_provium_vm(lua_State *L)
{
	const char *name = luaL_checkstring(L, 2);
	struct lvm *v;

	if (lua_gettop(L) == 2) {
		lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
		if (lua_getfield(L, -1, name) == LUA_TNIL)
			return luaL_error(L, "no VM named '%s' (create it with provium:vm(\"%s\", \"linux\"))", name, name);
		return 1;
	}
	/* opts override the profile; checked before the VM exists */
	static const char *const keys[] = { "memory", "cpus", NULL };
	uint64_t mem = 0;
	uint32_t cpus = 0;
	if (runner_check_opts(L, 4, "provium:vm options", keys)) {
		if (lua_getfield(L, 4, "memory") != LUA_TNIL) {
			mem = runner_check_size(L, -1, "VM memory");
			if (mem < (32ull << 20))
				return luaL_error(L, "VM '%s' memory: at least 32M is needed to boot", name);
		}
		if (lua_getfield(L, 4, "cpus") != LUA_TNIL) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > 64)
				return luaL_error(L, "VM '%s' cpus must be an integer from 1 to 64", name);
			cpus = (uint32_t)lua_tointeger(L, -1);
		}
		lua_pop(L, 2);
	}
	v = create_lvm(L, name, luaL_checkstring(L, 3));
	if (mem)
		v->memory = mem;
	if (cpus)
		v->cpus = cpus;
	push_vm(L, v);
	return 1;
}

/* The options of vm:boot / provium:boot: {timeout=}. */
static uint64_t boot_timeout(lua_State *L, int idx, const char *what)
{
	static const char *const keys[] = { "timeout", NULL };
	uint64_t ns = 0;
	if (!runner_check_opts(L, idx, what, keys))
		return 0;
	if (lua_getfield(L, idx, "timeout") != LUA_TNIL)
		ns = runner_check_duration(L, -1, "boot timeout");
	lua_pop(L, 1);
	return ns;
}

static uint64_t opt_timeout(lua_State *L, int idx, const char *key)
{
	uint64_t ns = 0;
	if (!lua_istable(L, idx))
		return 0;
	if (lua_getfield(L, idx, key) != LUA_TNIL)
		ns = runner_check_duration(L, -1, key);
	lua_pop(L, 1);
	return ns;
}

static int l_provium_boot(lua_State *L)
{
	struct lvm *list[MAX_VMS];
	int n = 0;
	uint64_t timeout = boot_timeout(L, 2, "provium:boot options");
	for (int i = 0; i < nvms; i++)
		if (vms[i]->state == S_CREATED)
			list[n++] = vms[i];
	if (n)
		boot_many(L, list, n, timeout, NULL, NULL);
	return 0;
}

static int l_vm_boot(lua_State *L)
{
	struct lvm *v = check_vm(L, 1);
	uint64_t timeout = boot_timeout(L, 2, "vm:boot options");
	if (v->state != S_CREATED) {
		if (v->state == S_RUNNING)
			return luaL_error(L, "VM '%s' is already booted (state: running)", v->name);
		return state_error(L, v, "boot");
	}
	boot_many(L, &v, 1, timeout, NULL, NULL);
	lua_settop(L, 1);
	return 1;
}

static int l_vm_shutdown(lua_State *L)
{
	do_shutdown(check_vm(L, 1));
	return 0;
}

/* ---- ops -------------------------------------------------------------------------- */

static struct lvm *running(lua_State *L, int idx, const char *what)
{
	struct lvm *v = check_vm(L, idx);
	if (v->state != S_RUNNING)
		state_error(L, v, what);
	return v;
}

/* Sends the request begun on v's agent; raises on failure. */
static void call(lua_State *L, struct lvm *v, const char *op, const char *subject, uint64_t timeout_ns)
{
	struct pv_err err;
	int e = 0;
	int rc = agent_call(&v->vm.agent, pv_mono_ns() + (timeout_ns ? timeout_ns : op_timeout()), &e, &err);
	if (rc == -EREMOTEIO)
		luaL_error(L, "VM '%s': %s", v->name, err.msg);
	else if (rc < 0)
		died(L, v, subject ? subject : op, err.msg);
}

/* How long after a command's timeout the host stops waiting for the guest's
 * answer: the guest kills the command at its timeout and answers at once,
 * unless it is too starved to (a fork bomb) or hung. */
#define HOST_MARGIN_NS (2000000000ull)

/* Sends the request begun on v's agent, waiting until deadline at most; raises
 * as call() does, but a deadline that passes returns -ETIMEDOUT and leaves the
 * VM running (the guest answers late or not at all; the answer is dropped). */
static int call_bounded(lua_State *L, struct lvm *v, const char *op, uint64_t deadline)
{
	struct pv_err err;
	int e = 0;
	int rc = agent_call_soft(&v->vm.agent, deadline, &e, &err);
	if (rc == -ETIMEDOUT)
		return rc;
	if (rc == -EREMOTEIO)
		luaL_error(L, "VM '%s': %s", v->name, err.msg);
	else if (rc < 0)
		died(L, v, op, err.msg);
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n) { msgpack_pack_str_with_body(pk, s, n); }
static void pack_key(msgpack_packer *pk, const char *k) { pack_str(pk, k, strlen(k)); }

/* The options of vm:run and vm:run_async. */
static const char *const cmd_keys[] = { "stdin", "env", "env_clear", "cwd", "timeout", NULL };

/* Packs the command and the options shared by exec and spawn; returns the
 * exec timeout in ns (0: none). */
static unsigned count_cmd_args(lua_State *L, int opts)
{
	unsigned n = 1;
	if (!lua_istable(L, opts))
		return n;
	static const char *const keys[] = { "stdin", "env", "env_clear", "cwd", "timeout" };
	for (unsigned i = 0; i < 5; i++) {
		if (lua_getfield(L, opts, keys[i]) != LUA_TNIL)
			n++;
		lua_pop(L, 1);
	}
	return n;
}

static uint64_t pack_cmd(lua_State *L, msgpack_packer *pk, int cmd, int opts)
{
	uint64_t timeout = 0;
	if (lua_type(L, cmd) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, cmd, &n);
		pack_key(pk, "cmd");
		pack_str(pk, s, n);
	} else {
		lua_Integer n = luaL_len(L, cmd);
		pack_key(pk, "argv");
		msgpack_pack_array(pk, (size_t)n);
		for (lua_Integer i = 1; i <= n; i++) {
			size_t l;
			lua_geti(L, cmd, i);
			const char *s = luaL_tolstring(L, -1, &l);
			pack_str(pk, s, l);
			lua_pop(L, 2);
		}
	}
	if (!lua_istable(L, opts))
		return 0;
	if (lua_getfield(L, opts, "stdin") != LUA_TNIL) {
		size_t n;
		const char *s = luaL_checklstring(L, -1, &n);
		pack_key(pk, "stdin");
		msgpack_pack_bin_with_body(pk, s, n);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "env") != LUA_TNIL) {
		int t = lua_gettop(L), count = 0;
		luaL_checktype(L, t, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			count++;
			lua_pop(L, 1);
		}
		pack_key(pk, "env");
		msgpack_pack_map(pk, (size_t)count);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			size_t kl, vl;
			const char *k = luaL_tolstring(L, -2, &kl);
			pack_str(pk, k, kl);
			lua_pop(L, 1);
			const char *val = luaL_tolstring(L, -1, &vl);
			pack_str(pk, val, vl);
			lua_pop(L, 2);
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "env_clear") != LUA_TNIL) {
		pack_key(pk, "env_clear");
		lua_toboolean(L, -1) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, opts, "cwd") != LUA_TNIL) {
		size_t n;
		const char *s = luaL_checklstring(L, -1, &n);
		pack_key(pk, "cwd");
		pack_str(pk, s, n);
	}
	lua_pop(L, 1);
	timeout = opt_timeout(L, opts, "timeout");
	if (lua_getfield(L, opts, "timeout") != LUA_TNIL) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (timeout + 999999) / 1000000);
	}
	lua_pop(L, 1);
	return timeout;
}

static void push_raw_field(lua_State *L, const struct ctl_msg *m, const char *key)
{
	const uint8_t *p;
	uint32_t n;
	if (ctl_get_raw(m, key, &p, &n))
		lua_pushlstring(L, (const char *)p, n);
	else
		lua_pushliteral(L, "");
}

/* RunResult from an exec/wait response. */
static void push_result(lua_State *L, const struct ctl_msg *m, int cmd_idx)
{
	int64_t code, sig;
	char *status = ctl_get_strdup(m, "status");
	lua_createtable(L, 0, 8);
	if (ctl_get_int(m, "exit_code", &code))
		lua_pushinteger(L, code);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, "exit_code");
	if (ctl_get_int(m, "signal", &sig))
		lua_pushinteger(L, sig);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, "signal");
	push_raw_field(L, m, "stdout");
	lua_setfield(L, -2, "stdout");
	push_raw_field(L, m, "stderr");
	lua_setfield(L, -2, "stderr");
	lua_pushstring(L, status ? status : "exited");
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, status && strcmp(status, "timed_out") == 0);
	lua_setfield(L, -2, "timed_out");
	if (cmd_idx) {
		if (lua_type(L, cmd_idx) == LUA_TSTRING)
			lua_pushvalue(L, cmd_idx);
		else {
			/* argv shown joined, for messages */
			lua_getglobal(L, "table");
			lua_getfield(L, -1, "concat");
			lua_pushvalue(L, cmd_idx);
			lua_pushliteral(L, " ");
			lua_call(L, 2, 1);
			lua_remove(L, -2);
		}
		lua_setfield(L, -2, "cmd");
	}
	free(status);
	luaL_setmetatable(L, "provium.runresult");
}

/* What is left of the running test's meta.timeout in ns, 0 if it has none;
 * raises the test's timeout failure if nothing is left. */
static uint64_t test_time_left(lua_State *L, const char *what)
{
	uint64_t dl = runner_test_deadline(), now = pv_mono_ns();
	if (!dl)
		return 0;
	if (now >= dl)
		runner_test_timed_out(L, what);
	return dl - now;
}

/* The RunResult of a command whose guest did not answer by the host's
 * deadline: timed out, no exit status, no output (the guest still has it). */
static void push_host_timeout(lua_State *L, int cmd_idx, uint64_t timeout)
{
	char b1[32], b2[32];
	lua_createtable(L, 0, 8);
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stdout");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stderr");
	lua_pushliteral(L, "timed_out");
	lua_setfield(L, -2, "status");
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "timed_out");
	lua_pushfstring(L, "the guest did not answer within %s of the command's %s timeout (too busy or hung); "
			"the command may still be running in the guest", pv_format_duration(HOST_MARGIN_NS, b1),
			pv_format_duration(timeout, b2));
	lua_setfield(L, -2, "host_timeout");
	if (lua_type(L, cmd_idx) == LUA_TSTRING)
		lua_pushvalue(L, cmd_idx);
	else {
		lua_getglobal(L, "table");
		lua_getfield(L, -1, "concat");
		lua_pushvalue(L, cmd_idx);
		lua_pushliteral(L, " ");
		lua_call(L, 2, 1);
		lua_remove(L, -2);
	}
	lua_setfield(L, -2, "cmd");
	luaL_setmetatable(L, "provium.runresult");
}

static int l_vm_run(lua_State *L)
{
	runner_check_opts(L, 3, "vm:run options", cmd_keys); /* before anything is asked of the VM */
	struct lvm *v = running(L, 1, "run");
	msgpack_packer *pk;
	uint64_t timeout;
	if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TTABLE)
		return luaL_error(L, "vm:run needs a shell command string or an argv array, got %s", luaL_typename(L, 2));
	/* without a timeout of its own, a command gets what is left of the test's
	 * (meta.timeout): the guest kills it then, and the test fails as timed out */
	uint64_t left = 0;
	bool explicit_timeout = false;
	if (lua_istable(L, 3)) {
		explicit_timeout = lua_getfield(L, 3, "timeout") != LUA_TNIL;
		lua_pop(L, 1);
	}
	if (!explicit_timeout)
		left = test_time_left(L, "vm:run");
	pk = agent_begin(&v->vm.agent, "exec", count_cmd_args(L, 3) + (left ? 1 : 0));
	timeout = pack_cmd(L, pk, 2, 3);
	if (left) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (left + 999999) / 1000000);
		timeout = left;
	}
	/* the agent enforces the command's timeout; the host gives up HOST_MARGIN_NS
	 * later even if the guest never answers (a guest too busy to answer) */
	if (!timeout)
		call(L, v, "run", NULL, UINT64_C(1) << 62);
	else if (call_bounded(L, v, "run", pv_mono_ns() + timeout + HOST_MARGIN_NS) < 0) {
		push_host_timeout(L, 2, timeout);
		if (left) {
			lua_getfield(L, -1, "cmd");
			return runner_test_timed_out(L, lua_pushfstring(L, "vm:run(\"%s\")", luaL_tolstring(L, -1, NULL)));
		}
		return 1;
	}
	push_result(L, &v->vm.agent.resp, 2);
	if (left) {
		lua_getfield(L, -1, "timed_out");
		if (lua_toboolean(L, -1)) {
			lua_getfield(L, -2, "cmd");
			return runner_test_timed_out(L, lua_pushfstring(L, "vm:run(\"%s\")", luaL_tolstring(L, -1, NULL)));
		}
		lua_pop(L, 1);
	}
	return 1;
}

static int r_ok(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "status");
	lua_getfield(L, 1, "exit_code");
	lua_pushboolean(L, strcmp(lua_tostring(L, -2) ?: "", "exited") == 0 && lua_tointeger(L, -1) == 0);
	return 1;
}

static int r_assert_ok(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	r_ok(L);
	if (lua_toboolean(L, -1)) {
		lua_settop(L, 1);
		return 1;
	}
	lua_getfield(L, 1, "cmd");
	lua_getfield(L, 1, "stdout");
	lua_getfield(L, 1, "stderr");
	lua_getfield(L, 1, "status");
	lua_getfield(L, 1, "exit_code");
	lua_getfield(L, 1, "signal");
	const char *how = lua_tostring(L, -3);
	char what[300];
	if (strcmp(how ?: "", "exited") == 0)
		snprintf(what, sizeof(what), "exit code %lld", (long long)lua_tointeger(L, -2));
	else if (strcmp(how ?: "", "signalled") == 0)
		snprintf(what, sizeof(what), "killed by signal %lld", (long long)lua_tointeger(L, -1));
	else {
		lua_getfield(L, 1, "host_timeout");
		snprintf(what, sizeof(what), "timed out%s%.250s", lua_isstring(L, -1) ? ": " : "",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
		lua_pop(L, 1);
	}
	return runner_failf(L, "command failed (%s): %s\n--- stdout ---\n%s\n--- stderr ---\n%s", what,
			    lua_tostring(L, -6) ?: "?", lua_tostring(L, -5) ?: "", lua_tostring(L, -4) ?: "");
}

/* ---- async processes ------------------------------------------------------------- */

struct lproc {
	struct lvm *v;
	uint32_t proc;
	int64_t pid;
	bool done;
};

static int l_vm_run_async(lua_State *L)
{
	runner_check_opts(L, 3, "vm:run_async options", cmd_keys);
	struct lvm *v = running(L, 1, "run_async");
	msgpack_packer *pk;
	struct lproc *p;
	int64_t h = 0, pid = 0;
	if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TTABLE)
		return luaL_error(L, "vm:run_async needs a shell command string or an argv array");
	pk = agent_begin(&v->vm.agent, "spawn", count_cmd_args(L, 3));
	pack_cmd(L, pk, 2, 3);
	call(L, v, "run_async", NULL, 0);
	ctl_get_int(&v->vm.agent.resp, "proc", &h);
	ctl_get_int(&v->vm.agent.resp, "pid", &pid);
	p = lua_newuserdatauv(L, sizeof(*p), 1);
	*p = (struct lproc){ v, (uint32_t)h, pid, false };
	lua_pushvalue(L, 2);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, "provium.process");
	return 1;
}

static struct lproc *check_proc(lua_State *L)
{
	struct lproc *p = luaL_checkudata(L, 1, "provium.process");
	if (p->v->state != S_RUNNING)
		state_error(L, p->v, "process operations");
	return p;
}

static int p_wait(lua_State *L)
{
	struct lproc *p = check_proc(L);
	uint64_t ns = 0;
	msgpack_packer *pk;
	struct pv_err err;
	int e = 0, rc;
	if (p->done)
		return luaL_error(L, "process %d was already waited for", (int)p->pid);
	bool by_test = false;
	if (!lua_isnoneornil(L, 2))
		ns = runner_check_duration(L, 2, "wait timeout");
	else if ((ns = test_time_left(L, "p:wait")) != 0)
		by_test = true; /* as vm:run: bounded by the test's meta.timeout */
	pk = agent_begin(&p->v->vm.agent, "wait", ns ? 2 : 1);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	if (ns) {
		pack_key(pk, "timeout_ms");
		msgpack_pack_uint64(pk, (ns + 999999) / 1000000);
	}
	/* as vm:run: the guest bounds the wait, the host gives up HOST_MARGIN_NS later */
	rc = ns ? agent_call_soft(&p->v->vm.agent, pv_mono_ns() + ns + HOST_MARGIN_NS, &e, &err)
		: agent_call(&p->v->vm.agent, 0, &e, &err);
	bool timed_out = (rc == -EREMOTEIO && e == ETIMEDOUT) || rc == -ETIMEDOUT;
	if (timed_out && by_test)
		return runner_test_timed_out(L, lua_pushfstring(L, "p:wait() of process %d", (int)p->pid));
	if (timed_out) {
		char b[32];
		return runner_failf(L, "process %d still running after %s", (int)p->pid, pv_format_duration(ns, b));
	}
	if (rc == -EREMOTEIO)
		return luaL_error(L, "VM '%s': %s", p->v->name, err.msg);
	if (rc < 0)
		return died(L, p->v, "wait", err.msg);
	p->done = true;
	lua_getiuservalue(L, 1, 1);
	push_result(L, &p->v->vm.agent.resp, lua_gettop(L));
	return 1;
}

static const struct {
	const char *name;
	int num;
} signals[] = { { "HUP", 1 }, { "INT", 2 }, { "QUIT", 3 }, { "KILL", 9 }, { "USR1", 10 }, { "USR2", 12 },
		{ "TERM", 15 }, { "CONT", 18 }, { "STOP", 19 } };

static int p_kill(lua_State *L)
{
	struct lproc *p = check_proc(L);
	int sig = 15;
	if (lua_type(L, 2) == LUA_TNUMBER)
		sig = (int)luaL_checkinteger(L, 2);
	else if (lua_type(L, 2) == LUA_TSTRING) {
		const char *s = lua_tostring(L, 2);
		if (!strncmp(s, "SIG", 3))
			s += 3;
		sig = -1;
		for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
			if (!strcmp(s, signals[i].name))
				sig = signals[i].num;
		if (sig < 0)
			return luaL_error(L, "unknown signal '%s' (use a number or one of HUP INT QUIT KILL USR1 USR2 TERM CONT STOP)",
					  lua_tostring(L, 2));
	}
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "kill", 2);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	pack_key(pk, "signal");
	msgpack_pack_int(pk, sig);
	call(L, p->v, "kill", NULL, 0);
	return 0;
}

static int p_pid(lua_State *L)
{
	struct lproc *p = luaL_checkudata(L, 1, "provium.process");
	lua_pushinteger(L, p->pid);
	return 1;
}

static int p_stdin_write(lua_State *L)
{
	struct lproc *p = check_proc(L);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "stdin_write", 2);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, s, n);
	call(L, p->v, "stdin_write", NULL, 0);
	return 0;
}

static int p_close_stdin(lua_State *L)
{
	struct lproc *p = check_proc(L);
	msgpack_packer *pk = agent_begin(&p->v->vm.agent, "close_stdin", 1);
	pack_key(pk, "proc");
	msgpack_pack_uint32(pk, p->proc);
	call(L, p->v, "close_stdin", NULL, 0);
	return 0;
}

/* ---- files ------------------------------------------------------------------------ */

static msgpack_packer *begin_path(struct lvm *v, const char *op, const char *path, unsigned extra)
{
	msgpack_packer *pk = agent_begin(&v->vm.agent, op, 1 + extra);
	pack_key(pk, "path");
	pack_str(pk, path, strlen(path));
	return pk;
}

static int l_read_file(lua_State *L)
{
	struct lvm *v = running(L, 1, "read_file");
	const char *path = luaL_checkstring(L, 2);
	begin_path(v, "read_file", path, 0);
	call(L, v, "read_file", NULL, 0);
	push_raw_field(L, &v->vm.agent.resp, "data");
	return 1;
}

static int l_write_file(lua_State *L)
{
	static const char *const keys[] = { "append", NULL };
	bool append = false, opts = runner_check_opts(L, 4, "vm:write_file options", keys);
	struct lvm *v = running(L, 1, "write_file");
	const char *path = luaL_checkstring(L, 2);
	size_t n;
	const char *data = luaL_checklstring(L, 3, &n);
	if (opts) {
		lua_getfield(L, 4, "append");
		append = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	msgpack_packer *pk = begin_path(v, "write_file", path, 2);
	pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, data, n);
	pack_key(pk, "append");
	append ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	call(L, v, "write_file", NULL, 0);
	return 0;
}

static int l_stat(lua_State *L)
{
	struct lvm *v = running(L, 1, "stat");
	const char *path = luaL_checkstring(L, 2);
	int64_t x;
	char *type;
	begin_path(v, "stat", path, 0);
	call(L, v, "stat", NULL, 0);
	lua_createtable(L, 0, 4);
	type = ctl_get_strdup(&v->vm.agent.resp, "type");
	lua_pushstring(L, type ? type : "other");
	free(type);
	lua_setfield(L, -2, "type");
	if (ctl_get_int(&v->vm.agent.resp, "size", &x)) {
		lua_pushinteger(L, x);
		lua_setfield(L, -2, "size");
	}
	if (ctl_get_int(&v->vm.agent.resp, "mode", &x)) {
		lua_pushinteger(L, x);
		lua_setfield(L, -2, "mode");
	}
	if (ctl_get_int(&v->vm.agent.resp, "mtime_ns", &x)) {
		lua_pushinteger(L, x);
		lua_setfield(L, -2, "mtime_ns");
	}
	return 1;
}

static int l_listdir(lua_State *L)
{
	struct lvm *v = running(L, 1, "listdir");
	struct mpr r;
	struct mpr_item it;
	begin_path(v, "listdir", luaL_checkstring(L, 2), 0);
	call(L, v, "listdir", NULL, 0);
	lua_newtable(L);
	if (ctl_find(&v->vm.agent.resp, "entries", &r) && mpr_next(&r, &it, NULL) == 0 && it.type == MPR_ARRAY)
		for (uint32_t i = 0; i < it.v.count; i++) {
			struct mpr_item e;
			if (mpr_next(&r, &e, NULL) < 0 || e.type != MPR_STR)
				break;
			lua_pushlstring(L, (const char *)e.v.raw.ptr, e.v.raw.len);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
	return 1;
}

static int l_mkdir(lua_State *L)
{
	static const char *const keys[] = { "parents", NULL };
	bool parents = false, opts = runner_check_opts(L, 3, "vm:mkdir options", keys);
	struct lvm *v = running(L, 1, "mkdir");
	if (opts) {
		lua_getfield(L, 3, "parents");
		parents = lua_toboolean(L, -1);
		lua_pop(L, 1);
	}
	msgpack_packer *pk = begin_path(v, "mkdir", luaL_checkstring(L, 2), 1);
	pack_key(pk, "parents");
	parents ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	call(L, v, "mkdir", NULL, 0);
	return 0;
}

static int l_unlink(lua_State *L)
{
	struct lvm *v = running(L, 1, "unlink");
	begin_path(v, "unlink", luaL_checkstring(L, 2), 0);
	call(L, v, "unlink", NULL, 0);
	return 0;
}

static int l_rename(lua_State *L)
{
	struct lvm *v = running(L, 1, "rename");
	const char *from = luaL_checkstring(L, 2), *to = luaL_checkstring(L, 3);
	msgpack_packer *pk = agent_begin(&v->vm.agent, "rename", 2);
	pack_key(pk, "from");
	pack_str(pk, from, strlen(from));
	pack_key(pk, "to");
	pack_str(pk, to, strlen(to));
	call(L, v, "rename", NULL, 0);
	return 0;
}

/* ---- console ---------------------------------------------------------------------- */

static int c_read_log(lua_State *L)
{
	lua_getfield(L, 1, "path");
	FILE *f = fopen(luaL_checkstring(L, -1), "rbe");
	luaL_Buffer b;
	char tmp[65536];
	size_t n;
	luaL_buffinit(L, &b);
	while (f && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		luaL_addlstring(&b, tmp, n);
	if (f)
		fclose(f);
	luaL_pushresult(&b);
	return 1;
}

/* console:expect(pattern, timeout): waits (inotify on the log, no polling)
 * until the Lua pattern matches text after the previous match; returns the
 * match. */
static int c_expect(lua_State *L)
{
	const char *pattern = luaL_checkstring(L, 2);
	uint64_t timeout = 30000000000ull, deadline;
	int ifd;
	if (!lua_isnoneornil(L, 3))
		timeout = runner_check_duration(L, 3, "expect timeout");
	deadline = pv_mono_ns() + timeout;
	lua_getfield(L, 1, "path");
	const char *path = lua_tostring(L, -1);
	ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ifd >= 0)
		inotify_add_watch(ifd, path, IN_MODIFY);
	for (;;) {
		lua_Integer off;
		lua_getfield(L, 1, "offset");
		off = lua_tointeger(L, -1);
		lua_pop(L, 1);
		/* s, e = string.find(log, pattern, offset + 1) */
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "find");
		lua_pushcfunction(L, c_read_log);
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		lua_pushvalue(L, 2);
		lua_pushinteger(L, off + 1);
		lua_call(L, 3, 2);
		if (!lua_isnil(L, -2)) {
			lua_Integer s = lua_tointeger(L, -2), e = lua_tointeger(L, -1);
			lua_pushinteger(L, e);
			lua_setfield(L, 1, "offset");
			lua_pushcfunction(L, c_read_log);
			lua_pushvalue(L, 1);
			lua_call(L, 1, 1);
			lua_getfield(L, -1, "sub");
			lua_insert(L, -2);
			lua_pushinteger(L, s);
			lua_pushinteger(L, e);
			lua_call(L, 3, 1);
			if (ifd >= 0)
				close(ifd);
			return 1;
		}
		lua_pop(L, 3);
		uint64_t now = pv_mono_ns();
		if (now >= deadline) {
			char b[32];
			if (ifd >= 0)
				close(ifd);
			return runner_failf(L, "console:expect timed out after %s waiting for %s", pv_format_duration(timeout, b),
					    pattern);
		}
		struct pollfd p = { .fd = ifd, .events = POLLIN };
		int wait = (int)((deadline - now) / 1000000u) + 1;
		if (ifd < 0 || wait > 250)
			wait = ifd < 0 ? 20 : 250; /* without inotify: poll the file */
		poll(&p, ifd >= 0 ? 1 : 0, wait);
		if (ifd >= 0) {
			char buf[4096];
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
		}
	}
}

static int l_console(lua_State *L)
{
	struct lvm *v = check_vm(L, 1);
	if (!v->booted_ever)
		return state_error(L, v, "console()");
	lua_createtable(L, 0, 2);
	lua_pushstring(L, v->console_path);
	lua_setfield(L, -2, "path");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "offset");
	luaL_setmetatable(L, "provium.console");
	return 1;
}

/* ---- snapshots ------------------------------------------------------------------ */

struct lsnap {
	char path[4200];
	uint64_t bytes;
	uint64_t memory;
	uint32_t cpus;
	bool deleted;
	/* the VM it was taken of: a fixture resumes the same machine */
	char name[128], profile[128];
	bool kvm;
};

static unsigned nsnaps;

static int l_vm_snapshot(lua_State *L)
{
	struct lvm *v = running(L, 1, "snapshot");
	struct lsnap *sn = lua_newuserdatauv(L, sizeof(*sn), 0);
	struct pv_err err;
	memset(sn, 0, sizeof(*sn));
	/* the scratch dir is shared by every runner of the run */
	snprintf(sn->path, sizeof(sn->path), "%s/snap-%d-%u.zst", runner_scratch(), (int)getpid(), ++nsnaps);
	if (vm_snapshot(&v->vm, sn->path, &sn->bytes, &err) < 0) {
		if (vm_exited(&v->vm))
			return died(L, v, "snapshot", err.msg);
		return luaL_error(L, "VM '%s': snapshot failed: %s", v->name, err.msg);
	}
	sn->memory = v->memory;
	sn->cpus = v->cpus;
	snprintf(sn->name, sizeof(sn->name), "%s", v->name);
	snprintf(sn->profile, sizeof(sn->profile), "%s", v->profile);
	sn->kvm = v->boot_kvm;
	luaL_setmetatable(L, "provium.snapshot");
	return 1;
}

static int l_vm_restore(lua_State *L)
{
	struct lvm *v = running(L, 1, "restore");
	struct lsnap *sn = luaL_checkudata(L, 2, "provium.snapshot");
	struct pv_err err;
	struct vm_spec spec = { v->boot_kernel, v->boot_initrd, v->boot_cmdline, v->memory, v->cpus, v->boot_kvm,
				v->boot_kvm ? 30000000000ull : 180000000000ull, sn->path, NULL, v->boot_vmgenid };
	if (sn->deleted)
		return luaL_error(L, "this snapshot was deleted");
	if (sn->memory != v->memory || sn->cpus != v->cpus)
		return luaL_error(L, "VM '%s' has %d MiB and %d cpus, the snapshot was taken with %d MiB and %d cpus",
				  v->name, (int)(v->memory >> 20), (int)v->cpus, (int)(sn->memory >> 20), (int)sn->cpus);
	/* same VM, new QEMU: the old one goes, the pool share stays; the console
	 * keeps its last 64 KiB */
	vm_shutdown(&v->vm);
	char *history = vm_console_tail(v->console_path, 65536);
	spec.console_history = history;
	vm_remove_dir(&v->vm);
	int brc = vm_boot(&v->vm, &spec, &err);
	free(history);
	if (brc < 0) {
		snprintf(v->dead_why, sizeof(v->dead_why), "restore failed: %.700s", err.msg);
		enter(v, S_DEAD);
		return luaL_error(L, "VM '%s': %s", v->name, v->dead_why);
	}
	memcpy(v->console_path, v->vm.console_path, sizeof(v->console_path));
	lua_settop(L, 1);
	return 1;
}

static int s_size(lua_State *L)
{
	struct lsnap *sn = luaL_checkudata(L, 1, "provium.snapshot");
	lua_pushinteger(L, (lua_Integer)sn->bytes);
	return 1;
}

static int s_delete(lua_State *L)
{
	struct lsnap *sn = luaL_checkudata(L, 1, "provium.snapshot");
	if (!sn->deleted)
		unlink(sn->path);
	sn->deleted = true;
	return 0;
}

/* ---- fixtures (lua_fixture.c) ------------------------------------------------------- */

static int add_part(struct fc_manifest *m, char (*paths)[4200], const struct lsnap *sn, struct pv_err *err)
{
	struct fc_vm *fv;
	if (sn->deleted)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "the snapshot of VM '%s' was deleted", sn->name);
	if (m->nvms == FC_MAX_VMS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a fixture holds at most %d VMs", FC_MAX_VMS);
	fv = &m->vms[m->nvms];
	memset(fv, 0, sizeof(*fv));
	snprintf(fv->name, sizeof(fv->name), "%s", sn->name);
	snprintf(fv->profile, sizeof(fv->profile), "%s", sn->profile);
	fv->memory = sn->memory;
	fv->cpus = sn->cpus;
	fv->kvm = sn->kvm;
	fv->bytes = sn->bytes;
	snprintf(paths[m->nvms], 4200, "%s", sn->path);
	m->nvms++;
	return 0;
}

static int cmp_fcvm(const void *a, const void *b)
{
	return strcmp(((const struct fc_vm *)a)->name, ((const struct fc_vm *)b)->name);
}

int lvm_snapshot_parts(lua_State *L, int idx, struct fc_manifest *m, char (*paths)[4200], struct pv_err *err)
{
	idx = lua_absindex(L, idx);
	m->nvms = 0;
	if (luaL_testudata(L, idx, "provium.snapshot")) {
		m->lab = false;
		return add_part(m, paths, lua_touserdata(L, idx), err);
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
			if (rc == 0) {
				/* the same order in every manifest; paths follow their VM */
				for (size_t i = 1; i < m->nvms; i++)
					for (size_t j = i; j > 0 && cmp_fcvm(&m->vms[j - 1], &m->vms[j]) > 0; j--) {
						struct fc_vm t = m->vms[j];
						char tp[4200];
						m->vms[j] = m->vms[j - 1];
						m->vms[j - 1] = t;
						memcpy(tp, paths[j], sizeof(tp));
						memcpy(paths[j], paths[j - 1], sizeof(tp));
						memcpy(paths[j - 1], tp, sizeof(tp));
					}
			}
			return rc;
		}
	}
	return pv_err_set(err, -EINVAL, SIZE_MAX, "it returned %s, not a Snapshot: end the fixture with "
			  "`return vm:snapshot()` (one VM) or `return provium:snapshot()` (its VMs)",
			  luaL_typename(L, idx));
}

int lvm_resume(lua_State *L, const struct fc_manifest *m, const char *entry_dir, const char *rename_to,
	       bool as_lab, struct pv_err *err)
{
	struct lvm *list[FC_MAX_VMS];
	char in[FC_MAX_VMS][4300];
	const char *inp[FC_MAX_VMS];
	int n = (int)m->nvms;

	for (int i = 0; i < n; i++) {
		const struct fc_vm *fv = &m->vms[i];
		list[i] = create_lvm(L, rename_to && n == 1 ? rename_to : fv->name, fv->profile);
		list[i]->memory = fv->memory;
		list[i]->cpus = fv->cpus;
		list[i]->boot_kvm = fv->kvm;
		snprintf(in[i], sizeof(in[i]), "%s/%s", entry_dir, fv->file);
		inp[i] = in[i];
		/* boot_many makes it running; a raise on the way must not leave
		 * it to a later provium:boot() */
		list[i]->state = S_SHUTDOWN;
	}
	if (boot_many(L, list, n, 0, inp, err) < 0)
		return 0;
	if (!as_lab) {
		push_vm(L, list[0]);
		return 1;
	}
	lua_createtable(L, 0, n);
	for (int i = 0; i < n; i++) {
		push_vm(L, list[i]);
		lua_setfield(L, -2, list[i]->name);
	}
	return 1;
}

void lvm_shutdown_state(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		struct lvm **p = luaL_testudata(L, -1, "provium.vm");
		if (p)
			do_shutdown(*p);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* ---- fields ------------------------------------------------------------------------- */

static const luaL_Reg vm_methods[] = {
	{ "boot", l_vm_boot }, { "shutdown", l_vm_shutdown }, { "run", l_vm_run }, { "run_async", l_vm_run_async },
	{ "read_file", l_read_file }, { "write_file", l_write_file }, { "stat", l_stat }, { "listdir", l_listdir },
	{ "mkdir", l_mkdir }, { "unlink", l_unlink }, { "rename", l_rename }, { "console", l_console },
	{ "snapshot", l_vm_snapshot }, { "restore", l_vm_restore },
	{ NULL, NULL },
};

static int vm_index(lua_State *L)
{
	struct lvm *v = check_vm(L, 1);
	const char *k = luaL_checkstring(L, 2);
	if (!strcmp(k, "name"))
		lua_pushstring(L, v->name);
	else if (!strcmp(k, "profile"))
		lua_pushstring(L, v->profile);
	else if (!strcmp(k, "state"))
		lua_pushstring(L, state_names[v->state]);
	else if (!strcmp(k, "cid")) {
		if (v->cid)
			lua_pushinteger(L, v->cid);
		else
			lua_pushnil(L);
	} else {
		lua_getfield(L, lua_upvalueindex(1), k);
	}
	return 1;
}

static int vm_tostring(lua_State *L)
{
	struct lvm *v = check_vm(L, 1);
	lua_pushfstring(L, "VM '%s' (%s, %s)", v->name, v->profile, state_names[v->state]);
	return 1;
}

static const luaL_Reg runresult_methods[] = { { "ok", r_ok }, { "assert_ok", r_assert_ok }, { NULL, NULL } };
static const luaL_Reg process_methods[] = {
	{ "wait", p_wait }, { "kill", p_kill }, { "pid", p_pid }, { "stdin_write", p_stdin_write },
	{ "close_stdin", p_close_stdin }, { NULL, NULL },
};
static const luaL_Reg console_methods[] = { { "expect", c_expect }, { "read_log", c_read_log }, { NULL, NULL } };
static const luaL_Reg snapshot_methods[] = { { "size", s_size }, { "delete", s_delete }, { NULL, NULL } };

/* A metatable named `name` whose __index is a table of methods. */
static void new_class(lua_State *L, const char *name, const luaL_Reg *methods)
{
	luaL_newmetatable(L, name);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

void lvm_install(lua_State *L)
{
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, "provium.vms");

	luaL_newmetatable(L, "provium.vm");
	luaL_newlib(L, vm_methods);
	lua_pushcclosure(L, vm_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, vm_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);

	new_class(L, "provium.runresult", runresult_methods);
	new_class(L, "provium.process", process_methods);
	new_class(L, "provium.console", console_methods);
	new_class(L, "provium.snapshot", snapshot_methods);

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
		"  return snap\n"
		"end)\n"
		"rawset(prov, 'restore', function(self, snap)\n"
		"  if getmetatable(snap) ~= mt then error('provium:restore needs a snapshot from provium:snapshot()', 2) end\n"
		"  for name, s in pairs(snap.vms) do\n"
		"    local vm = vms[name]\n"
		"    if not vm or vm.state ~= 'running' then error(\"VM '\" .. name .. \"' of the snapshot is not running\", 2) end\n"
		"    vm:restore(s)\n"
		"  end\n"
		"end)\n") != LUA_OK)
		lua_error(L); /* a bug in the chunk above: fail loudly at start */
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_getglobal(L, "provium");
	lua_pushvalue(L, LUA_REGISTRYINDEX);
	lua_call(L, 3, 0);
	/* provium.vm / provium.boot methods */
	lua_getglobal(L, "provium");
	/* raw: the provium table's __newindex only takes settings */
	lua_pushliteral(L, "vm");
	lua_pushcfunction(L, l_provium_vm);
	lua_rawset(L, -3);
	lua_pushliteral(L, "boot");
	lua_pushcfunction(L, l_provium_boot);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

void lvm_end_scope(lua_State *L, bool file_end)
{
	const char *t = runner_current_test();
	(void)L;
	for (int i = 0; i < nvms; i++) {
		struct lvm *v = vms[i];
		if (file_end || (v->scope && t && !strcmp(v->scope, t)))
			do_shutdown(v);
	}
}

char *lvm_console_excerpt(void)
{
	struct pv_buf b = PV_BUF_INIT;
	for (int i = 0; i < nvms; i++) {
		char head[300], *tail;
		if (!vms[i]->booted_ever)
			continue;
		tail = vm_console_tail(vms[i]->console_path, 4096);
		snprintf(head, sizeof(head), "%s--- vm %s ---\n", b.len ? "\n" : "", vms[i]->name);
		pv_buf_append(&b, head, strlen(head));
		if (tail)
			pv_buf_append(&b, tail, strlen(tail));
		free(tail);
	}
	pv_buf_append(&b, "", 1);
	return (char *)b.data;
}

void lvm_cleanup(void)
{
	for (int i = 0; i < nvms; i++) {
		do_shutdown(vms[i]);
		if (vms[i]->booted_ever)
			vm_remove_dir(&vms[i]->vm);
	}
}

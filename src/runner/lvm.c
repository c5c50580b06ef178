/* lvm.c - the VM resource of the Lua API (contract in lvm.h). */
#include "lvm.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dimage.h"
#include "lnet.h"
#include "lproc.h"
#include "ltemplate.h"
#include "lworker.h"
#include "opts.h"
#include "runner_priv.h"
#include "tclock.h"
#include "units.h"

const char *const lvm_state_names[] = { "created", "running", "dead", "shut down" };

/* The host's accelerator: -1 unknown, 0 tcg, 1 kvm. Process-wide on purpose:
 * it is a fact about the host, probed once for every state of the runner. */
static int accel = -1;

uint64_t lvm_op_timeout(void) { return accel == 1 ? 30000000000ull : 120000000000ull; }

struct lvm *lvm_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, "provium.vm");
}

int lvm_state_error(lua_State *L, struct lvm *v, const char *what)
{
	switch (v->state) {
	case LVM_CREATED:
		return luaL_error(L, "VM '%s' is not booted (state: created): call vm:boot() before %s", v->name, what);
	case LVM_DEAD:
		return luaL_error(L, "VM '%s' is dead (state: dead): %s", v->name, v->dead_why);
	case LVM_SHUTDOWN:
		return luaL_error(L, "VM '%s' was shut down (state: shut down): create a new one with provium:vm()", v->name);
	default:
		return luaL_error(L, "VM '%s' is %s", v->name, lvm_state_names[v->state]);
	}
}

void lvm_defer(struct lvm *v, enum lvm_reap_kind kind, uint32_t id, unsigned gen)
{
	if (v->nreap == v->reap_cap) {
		size_t cap = v->reap_cap ? v->reap_cap * 2 : 8;
		struct lvm_reap *n = realloc(v->reap, cap * sizeof(*n));
		if (!n)
			return; /* the VM's end releases it all the same */
		v->reap = n;
		v->reap_cap = cap;
	}
	v->reap[v->nreap++] = (struct lvm_reap){ id, gen, kind };
}

/* Closes stream or file handle id; an agent error (it is gone already) is fine. */
static void close_handle(struct lvm *v, const char *op, const char *key, uint32_t id)
{
	struct pv_err err;
	int e = 0;
	msgpack_packer *pk = agent_begin(&v->vm.agent, op, 1);
	msgpack_pack_str_with_body(pk, key, strlen(key));
	msgpack_pack_uint32(pk, id);
	int rc = agent_call(&v->vm.agent, pv_mono_ns() + 10000000000ull, &e, &err);
	if (rc < 0 && rc != -EREMOTEIO)
		lvm_mark_dead(v, err.msg);
}

void lvm_settle(struct lvm *v)
{
	/* no Lua call below, so no finalizer can add to the queue meanwhile;
	 * a paused VM keeps its queue until it resumes */
	while (v->nreap && v->state == LVM_RUNNING && !v->paused) {
		struct lvm_reap r = v->reap[--v->nreap];
		if (r.gen != v->gen)
			continue; /* of a QEMU that is gone */
		if (r.kind == LVM_REAP_PROC)
			lproc_kill_release(v, r.id);
		else if (r.kind == LVM_REAP_STREAM)
			close_handle(v, "stream_close", "stream", r.id);
		else if (r.kind == LVM_REAP_WORKER)
			lworker_release(v, r.id);
		else
			close_handle(v, "file_close", "file", r.id);
	}
	if (v->state != LVM_RUNNING)
		v->nreap = 0;
}

struct lvm *lvm_running(lua_State *L, int idx, const char *what)
{
	struct lvm *v = lvm_check(L, idx);
	if (v->state != LVM_RUNNING)
		return (lvm_state_error(L, v, what), NULL);
	if (v->paused)
		return (luaL_error(L, "VM '%s' is paused (vm:pause()): %s needs it running; vm:resume() it first", v->name,
				   what), NULL);
	lvm_settle(v); /* handles collected since the last op: a safe point */
	if (v->state != LVM_RUNNING)
		return (lvm_state_error(L, v, what), NULL);
	return v;
}

/* ---- pool ------------------------------------------------------------------ */

/* Raises when the pool refuses. */
static int acquire(lua_State *L, uint64_t mem, uint32_t cpus, uint32_t *cids, int ncids)
{
	struct ctl_msg m;
	size_t got = 0;
	if (ctl_put_acquire(runner_out(), mem, cpus, (uint32_t)ncids) < 0)
		return luaL_error(L, "cannot ask the scheduler for %d VMs (at most %d at once)", ncids, CTL_MAX_VMS);
	runner_send();
	runner_recv(&m);
	if (ctl_is(&m, "acquire_denied")) {
		char *why = ctl_get_strdup(&m, "reason");
		lua_pushstring(L, why ? why : "the pool cannot hold this VM");
		free(why);
		return lua_error(L);
	}
	/* the decoder checked the fields; that this is the reply, and its
	 * count, are for the runner to check */
	if (!ctl_is(&m, "acquired") || !ctl_get_uintv(&m, "cids", cids, (size_t)ncids, &got) || got != (size_t)ncids)
		return luaL_error(L, "control protocol: the scheduler answered acquire (%d VMs) with %s", ncids, m.name);
	return 0;
}

static void release(uint64_t mem, uint32_t cpus)
{
	if (ctl_put_release(runner_out(), mem, cpus) == 0)
		runner_send();
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void emit_shutdown(struct lvm *v)
{
	struct pv_event ev = { .kind = PV_EV_VM_SHUTDOWN };
	ev.u.vm_shutdown = (struct pv_ev_vm_shutdown){ pv_str_c(runner_env()->path), pv_str_c(v->name),
							pv_mono_ns() - v->boot_mono };
	runner_emit(&ev);
}

void lvm_enter(struct lvm *v, enum lvm_state to)
{
	if (v->live && to != LVM_RUNNING) {
		v->live = false;
		vm_shutdown(&v->vm); /* reaps QEMU; a no-op for one reaped already */
		lshare_stop(v);      /* its virtiofsds end with it */
		emit_shutdown(v);
		release(v->memory + LVM_OVERHEAD, v->cpus);
	}
	v->state = to;
}

void lvm_mark_dead(struct lvm *v, const char *why)
{
	char reason[300] = "", *tail;
	if (v->state != LVM_RUNNING)
		return;
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
	lvm_enter(v, LVM_DEAD);
}

int lvm_died(lua_State *L, struct lvm *v, const char *op, const char *why)
{
	if (v->vm.agent.interrupted) /* Ctrl-C at the REPL: the VM is fine */
		return luaL_error(L, "interrupted: VM '%s' stopped waiting for %s (what it started in the guest may still run)",
				  v->name, op);
	lvm_mark_dead(v, why);
	return luaL_error(L, "VM '%s' died during %s: %s", v->name, op, v->dead_why);
}

/* The scope's close: vm:shutdown, `<close>`, the end of its test or file.
 * VMs stay reachable from their state's list until lua_close, so a close by
 * the GC happens only there, where no request is half built: it may shut
 * down like any other. */
static void vm_close(struct scope_res *r, enum scope_how how)
{
	struct lvm *v = (struct lvm *)r;
	(void)how;
	if (v->state != LVM_SHUTDOWN)
		lvm_enter(v, LVM_SHUTDOWN);
	ldisk_close(v); /* after QEMU: the servers commit what it left unflushed */
}

static void vm_settle(struct scope_res *r)
{
	lvm_settle((struct lvm *)r);
}

/* __gc after the close: the scratch directory (console log) and the strings. */
static void vm_release(struct scope_res *r)
{
	struct lvm *v = (struct lvm *)r;
	if (v->booted_ever)
		vm_remove_dir(&v->vm);
	free(v->name);
	free(v->profile);
	free(v->kernel);
	free(v->initrd);
	free(v->cmdline);
	free(v->rootfs);
	v->rootfs = NULL;
	free(v->boot_kernel);
	free(v->boot_initrd);
	free(v->boot_cmdline);
	free(v->console_path);
	free(v->reap);
	lboot_free(&v->boot);
	v->name = v->profile = v->kernel = v->initrd = v->cmdline = NULL;
	v->boot_kernel = v->boot_initrd = v->boot_cmdline = v->console_path = NULL;
	v->reap = NULL;
	v->nreap = v->reap_cap = 0;
}

static const struct scope_ops vm_ops = { SCOPE_VM, "provium.vm", vm_close, vm_settle, vm_release };

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

/* The profile's initrd with the agent appended as a second cpio archive
 * (the kernel unpacks both; ours provides /init). Made once per profile;
 * *ret_path (malloc'd) is written only on success. */
static int agent_initrd(struct lvm *v, char **ret_path, struct pv_err *err)
{
	char kernel[4096], initrd[4096]; /* vm_builtin_image's API */
	char *cpio = NULL, *out = NULL, *buf = NULL;
	FILE *in = NULL, *o = NULL;
	size_t n;
	int rc = 0;
	if (vm_builtin_image(kernel, initrd, err) < 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX, "profile '%s' needs the agent from the built-in image: %s",
				  v->profile, err->msg);
	buf = malloc(65536);
	if (buf && asprintf(&cpio, "%.*s/agent.cpio", (int)(strrchr(initrd, '/') - initrd), initrd) < 0)
		cpio = NULL;
	if (cpio && asprintf(&out, "%s/initrd-%s", runner_env()->scratch, v->profile) < 0)
		out = NULL;
	if (!buf || !cpio || !out) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		goto out;
	}
	if (access(out, R_OK) == 0)
		goto out;
	in = fopen(v->initrd, "rbe");
	if (!in) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "initrd %s: %s; fix profiles.%s.initrd in provium.lua",
				v->initrd, strerror(errno), v->profile);
		goto out;
	}
	o = fopen(out, "wbe");
	while (o && (n = fread(buf, 1, 65536, in)) > 0)
		fwrite(buf, 1, n, o);
	fclose(in);
	in = fopen(cpio, "rbe");
	if (!in) {
		if (o)
			fclose(o);
		unlink(out);
		rc = pv_err_set(err, -ENOENT, SIZE_MAX, "%s is missing; run scripts/build-image", cpio);
		goto out;
	}
	while (o && (n = fread(buf, 1, 65536, in)) > 0)
		fwrite(buf, 1, n, o);
	fclose(in);
	if (!o || fclose(o) != 0) {
		unlink(out);
		rc = pv_err_set(err, -EIO, SIZE_MAX, "cannot write %s", out);
	}
out:
	if (rc == 0) {
		*ret_path = out;
		out = NULL;
	}
	free(out);
	free(cpio);
	free(buf);
	return rc;
}

static char *xstrdup(lua_State *L, const char *s)
{
	char *p = strdup(s);
	if (!p)
		return (luaL_error(L, "out of memory"), NULL);
	return p;
}

/* *initrd (replaced, malloc'd) followed by the files boot option's cpio, in
 * the run's scratch directory (a restore from a snapshot needs it again). */
static int files_initrd(struct lvm *v, char **initrd, struct pv_err *err)
{
	static unsigned seq;
	char *out = NULL;
	if (asprintf(&out, "%s/initrd-files-%u", runner_env()->scratch, seq++) < 0)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	if (lboot_initrd(&v->boot, *initrd, out, v->memory, err) < 0) {
		unlink(out);
		free(out);
		return -1;
	}
	free(*initrd);
	*initrd = out;
	return 0;
}

/* The agent moved the files boot option's files in place at startup:
 * raises naming the first that did not land. */
static void check_boot_files(lua_State *L, struct lvm *v)
{
	bool found = false;
	uint64_t installed = 0;
	if (!v->boot.nfiles)
		return;
	agent_begin(&v->vm.agent, "boot_files", 0);
	lvm_call(L, v, "boot_files", 0);
	char *e = ctl_get_strdup(&v->vm.agent.resp, "error");
	ctl_get_bool(&v->vm.agent.resp, "found", &found);
	ctl_get_uint(&v->vm.agent.resp, "installed", &installed);
	if (e) {
		lua_pushfstring(L, "VM '%s': boot files: %s (%d of %d installed)", v->name, e, (int)installed,
				(int)v->boot.nfiles);
		free(e);
		lua_error(L);
	}
	if (!found)
		luaL_error(L, "VM '%s': the guest's agent found none of the boot files: they go in the initramfs, so "
			   "the agent must run from it as PID 1 (the built-in image does; a profile whose init is not the "
			   "agent, or that switches root first, cannot take files; use vm:write_file)", v->name);
	if (installed != v->boot.nfiles)
		luaL_error(L, "VM '%s': the guest's agent installed %d of the %d boot files", v->name, (int)installed,
			   (int)v->boot.nfiles);
}

int lvm_boot_many(lua_State *L, struct lvm **list, int n, uint64_t timeout_ns, const char *const *incoming,
		  struct pv_err *rerr)
{
	uint64_t mem = 0;
	uint32_t cpus = 0, cids[LVM_MAX] = { 0 };
	/* kernel of list[i] at img[2i], initrd at img[2i + 1]: in a box, so
	 * that a raise on the way frees them */
	struct ltemplate *tpl = lua_newuserdatauv(L, sizeof(*tpl) * (size_t)(n > 0 ? n : 1), 0); /* ltemplate.h */
	char **img = scope_strv_box(L, 2 * (size_t)n);
	struct pv_err err;

	if (n > LVM_MAX)
		return luaL_error(L, "cannot boot %d VMs at once (at most %d)", n, LVM_MAX);
	/* every image is checked before the pool is asked for anything */
	for (int i = 0; i < n; i++) {
		struct lvm *v = list[i];
		if (!v->kernel) {
			char kernel[4096], initrd[4096]; /* vm_builtin_image's API */
			if (vm_builtin_image(kernel, initrd, &err) < 0)
				return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
			img[2 * i] = xstrdup(L, kernel);
			img[2 * i + 1] = xstrdup(L, initrd);
		} else {
			img[2 * i] = xstrdup(L, v->kernel);
			if (access(v->kernel, R_OK) != 0)
				return luaL_error(L, "cannot boot VM '%s': kernel %s: %s (profiles.%s.kernel in provium.lua)",
						  v->name, v->kernel, strerror(errno), v->profile);
			if (v->agent_included)
				img[2 * i + 1] = xstrdup(L, v->initrd);
			else if (agent_initrd(v, &img[2 * i + 1], &err) < 0)
				return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		}
		if (!incoming && v->boot.nfiles && (v->rootfs || !strcmp(v->profile, "host")))
			return luaL_error(L, "cannot boot VM '%s': boot files go in the initramfs, and profile '%s' switches "
					  "root away from it; use vm:write_file after the boot", v->name, v->profile);
		if (!incoming && v->boot.nfiles && files_initrd(v, &img[2 * i + 1], &err) < 0)
			return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		mem += v->memory + LVM_OVERHEAD;
		cpus += v->cpus;
	}
	acquire(L, mem, cpus, cids, n);
	for (int i = 0; i < n; i++) {
		struct lvm *v = list[i];
		const char *kernel = img[2 * i], *initrd = img[2 * i + 1];
		const char *env_extra = getenv("PROVIUM_GUEST_CMDLINE");
		char extra[4096] = "";
		struct vm_share shares[VM_MAX_SHARES];
		snprintf(extra, sizeof(extra), "%s", env_extra ? env_extra : "");
		if (!incoming && lshare_start(v, shares, extra, sizeof(extra), &err) < 0) {
			release(mem, cpus);
			return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		}
		if (v->rootfs) { /* the agent (bootfiles.c) switches root to it */
			size_t el = strlen(extra);
			snprintf(extra + el, sizeof(extra) - el, "%sprovium.rootfs=" VM_ROOTFS_SERIAL "%s", el ? " " : "",
				 v->init_systemd ? " provium.init=systemd" : "");
		}
		char *cmdline = NULL, *console = NULL;
		bool kvm;
		if (v->accel_pref >= 0)
			kvm = v->accel_pref == 1;
		else {
			resolve_accel(kernel, initrd);
			kvm = accel == 1;
		}
		if (!(cmdline = lboot_cmdline(&v->boot, v->name, v->cmdline, extra[0] ? extra : NULL, &err))) {
			lshare_stop(v);
			release(mem, cpus);
			return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		}
		free(v->boot_cmdline);
		v->boot_cmdline = cmdline; /* owned by v from here */
		if (incoming)
			kvm = v->boot_kvm; /* a snapshot resumes under the accelerator it was taken with */
		uint64_t tmo = timeout_ns ? timeout_ns : v->boot.agent_timeout_ns;
		struct vm_spec spec = { kernel, initrd, cmdline, v->memory, v->cpus, kvm,
					tmo ? tmo : (kvm ? 30000000000ull : 180000000000ull),
					incoming ? incoming[i] : NULL, NULL, false, NULL, 0,
					v->boot.rtc_base[0] && !incoming ? v->boot.rtc_base : NULL, NULL, 0, 0, false, NULL, 0, NULL };
		struct vm_disk disks[VM_MAX_DISKS];
		int ndisks = ldisk_prepare(v, disks, &err);
		if (ndisks < 0) {
			release(mem, cpus);
			return luaL_error(L, "cannot boot VM '%s': %s", v->name, err.msg);
		}
		spec.disks = disks;
		spec.ndisks = (unsigned)ndisks;
		spec.hotplug_ports = v->disks.hotplug ? VM_MAX_HOTPLUG : 0;
		spec.scsi = v->disks.hotplug; /* every VM given disks has a SCSI bus, for bus = "scsi" disks */
		/* the built-in image says what its kernel has; a profile says it itself */
		spec.vmgenid = v->kernel ? v->vmgenid : vm_image_has_vmgenid(kernel);
		struct pv_event ev = { .kind = PV_EV_VM_SPAWNED };
		v->cid = cids[i];
		struct vm_nic nics[VM_MAX_NICS];
		unsigned nnics = 0;
		if (lnet_boot_prepare(L, v, nics, &nnics, &err) < 0) {
			release(mem, cpus);
			return luaL_error(L, "VM '%s' failed to boot: %s", v->name, err.msg);
		}
		spec.nics = nics;
		spec.nnics = nnics;
		spec.shares = shares;
		spec.nshares = incoming ? 0 : v->shares.n;
		spec.rootfs = v->rootfs;
		struct ltemplate *t = &tpl[i];
		memset(t, 0, sizeof(*t));
		if (!incoming)
			ltemplate_prepare(v, kernel, initrd, extra, kvm, spec.vmgenid, nics, nnics, t);
		if (t->found) {
			spec.incoming = t->path; /* the guest's clock and entropy come after it (vm.c) */
			spec.rtc_base = NULL;
			spec.console_history = t->console;
		}
		int booted = vm_boot(&v->vm, &spec, &err);
		ltemplate_release(t);
		if (booted < 0 && t->found) { /* a template that does not resume: cold, and saved anew */
			vm_remove_dir(&v->vm);
			ltemplate_discard(t, err.msg);
			spec.incoming = NULL;
			spec.console_history = NULL;
			booted = vm_boot(&v->vm, &spec, &err);
		}
		lnet_boot_release(nics, nnics);
		if (booted < 0) {
			char why[500];
			lshare_explain(v, why, sizeof(why));
			size_t ml = strlen(err.msg);
			snprintf(err.msg + ml, sizeof(err.msg) - ml, "%s", why); /* a share's server may say why */
			lshare_stop(v);
			release(mem, cpus);
			v->cid = 0;
			if (incoming && rerr) {
				vm_remove_dir(&v->vm);
				for (int j = 0; j < n; j++)
					lvm_enter(list[j], LVM_SHUTDOWN);
				pv_err_set(rerr, -EIO, SIZE_MAX, "VM '%s': %s", v->name, err.msg);
				lua_pop(L, 2); /* the box, the templates */
				return -1;
			}
			return luaL_error(L, "VM '%s' failed to boot: %s", v->name, err.msg);
		}
		mem -= v->memory + LVM_OVERHEAD;
		cpus -= v->cpus;
		/* booted: from here on v owns a live QEMU, closed by its scope */
		v->live = true;
		lvm_enter(v, LVM_RUNNING);
		v->booted_ever = true;
		v->boot_mono = v->vm.started;
		v->gen++;
		v->boot_count++;
		v->paused = false;
		free(v->boot_kernel);
		free(v->boot_initrd);
		v->boot_kernel = img[2 * i];
		v->boot_initrd = img[2 * i + 1];
		img[2 * i] = img[2 * i + 1] = NULL;
		console = strdup(v->vm.console_path);
		if (console) {
			free(v->console_path);
			v->console_path = console;
		}
		v->boot_kvm = kvm;
		v->boot_vmgenid = spec.vmgenid;
		v->boot_kind = incoming ? "fixture" : t->found ? "warm" : "cold";
		ev.u.vm_spawned = (struct pv_ev_vm_spawned){ pv_str_c(runner_env()->path), pv_str_c(v->name), pv_str_c(v->profile),
							     v->memory, v->cid };
		runner_emit(&ev);
		if (!v->console_path) {
			release(mem, cpus); /* the VMs not booted yet */
			return luaL_error(L, "out of memory");
		}
		/* before the next VM's boot: it may resume the template made here
		 * (never raises: the pool share of the VMs not booted yet is held) */
		if (!incoming && !t->found)
			ltemplate_cold(v, t);
	}
	/* a fixture's resumed guest kept its network configuration (and its files) */
	for (int i = 0; !incoming && i < n; i++) {
		if (tpl[i].found)
			ltemplate_refresh(L, list[i], &tpl[i]);
		else
			ltemplate_identity(L, list[i]);
		check_boot_files(L, list[i]);
		lshare_check(L, list[i]);
		ldisk_resolve(L, list[i]);
		lnet_guest_setup(L, list[i]);
	}
	lua_pop(L, 2); /* the box, the templates */
	return 0;
}

/* profiles[name] of provium.lua into v; the config checked every profile
 * when it was loaded. Raises when there is no such profile. */
static int load_profile(lua_State *L, struct lvm *v, bool *has_mem, bool *has_cpus)
{
	const struct pv_profile *p = pv_config_profile(runner_env()->config, v->profile);

	if (!p)
		return luaL_error(L, "profile '%s' is not defined %s%s (the built-in profile is 'linux')", v->profile,
				  runner_env()->config_path ? "in " : "(there is no provium.lua)",
				  runner_env()->config_path ? runner_env()->config_path : "");
	v->agent_included = p->agent_included;
	if (p->base) {
		struct dimage d;
		if (!dimage_find(p, &d))
			return luaL_error(L, "profile '%s''s Debian image is not built: run 'provium image build %s' (a run "
					  "builds every profile's image before its first file; a runner started alone does not)",
					  v->profile, v->profile);
		if (!(v->rootfs = strdup(d.root)))
			return luaL_error(L, "out of memory");
		v->init_systemd = p->init_systemd;
		if (p->kernel && !p->initrd) {
			/* the profile's own kernel with the built-in initramfs: the agent */
			char kernel[4096], initrd[4096]; /* vm_builtin_image's API */
			struct pv_err err;
			if (vm_builtin_image(kernel, initrd, &err) < 0)
				return luaL_error(L, "profile '%s' boots its kernel with the built-in initramfs: %s", v->profile,
						  err.msg);
			v->initrd = strdup(initrd);
			v->agent_included = true;
		}
	}
	v->kernel = p->kernel ? strdup(p->kernel) : NULL;
	if (p->initrd)
		v->initrd = strdup(p->initrd);
	v->cmdline = p->cmdline ? strdup(p->cmdline) : NULL;
	if ((p->kernel && !v->kernel) || ((p->initrd || p->kernel) && !v->initrd) || (p->cmdline && !v->cmdline))
		return luaL_error(L, "out of memory");
	if (p->memory) {
		v->memory = p->memory;
		*has_mem = true;
	}
	if (p->cpus) {
		v->cpus = p->cpus;
		*has_cpus = true;
	}
	v->accel_pref = p->accel;
	v->vmgenid = p->vmgenid;
	v->profile_cold = p->boot_cold;
	return 0;
}

struct lvm *lvm_new(lua_State *L, const char *name, const char *profile)
{
	struct lvm *v;
	lua_Unsigned n;

	luaL_checkstack(L, 4, "creating a VM");
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	if (lua_getfield(L, -1, name) != LUA_TNIL) {
		struct lvm *old = lvm_check(L, -1);
		if (old->state == LVM_CREATED || old->state == LVM_RUNNING)
			return (luaL_error(L, "a VM named '%s' already exists (state: %s)", name,
					   lvm_state_names[old->state]), NULL);
	}
	lua_pop(L, 2);
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vm_list");
	n = lua_rawlen(L, -1);
	if (n >= LVM_MAX)
		return (luaL_error(L, "too many VMs in one file (at most %d)", LVM_MAX), NULL);
	if (!*name)
		return (luaL_error(L, "a VM needs a non-empty name"), NULL);
	/* registered before it holds anything: a raise below leaves it to its scope */
	v = lua_newuserdatauv(L, sizeof(*v), 0);
	memset(v, 0, sizeof(*v));
	v->vm.pid = -1;
	v->vm.pidfd = -1;
	v->accel_pref = -1;
	v->memory = 256ull << 20;
	v->cpus = 1;
	v->state = LVM_CREATED;
	luaL_setmetatable(L, "provium.vm");
	scope_add(L, &v->res, &vm_ops);
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, (lua_Integer)n + 1); /* the state's list keeps it until the state closes */
	lua_remove(L, -2);
	v->name = xstrdup(L, name);
	v->profile = xstrdup(L, profile);
	bool has_mem = false, has_cpus = false;
	if (!strcmp(profile, "host"))
		lshare_add_root(&v->shares); /* the built-in image's kernel, the host's / for root */
	else if (strcmp(profile, "linux") != 0)
		load_profile(L, v, &has_mem, &has_cpus);
	return v;
}

void lvm_publish(lua_State *L, int idx)
{
	struct lvm *v = lvm_check(L, idx);
	idx = lua_absindex(L, idx);
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_pushvalue(L, idx);
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
	const char *profile = luaL_checkstring(L, 3);
	/* opts override the profile; checked before the VM exists */
	static const char *const keys[] = { "memory", "cpus", "disks", "share", LBOOT_KEYS, NULL };
	uint64_t mem = 0;
	uint32_t cpus = 0;
	lua_settop(L, 4);
	struct lboot *boot = lboot_box(L); /* at 5: a raise before the VM exists frees it */
	struct ldisks *disks = lua_newuserdatauv(L, sizeof(*disks), 0); /* at 6: no C resources */
	memset(disks, 0, sizeof(*disks));
	struct lshares *shares = lua_newuserdatauv(L, sizeof(*shares), 0); /* at 7: none either */
	memset(shares, 0, sizeof(*shares));
	const struct pv_profile *prof = pv_config_profile(runner_env()->config, profile);
	bool opts = opts_check(L, 4, "provium:vm options", keys);
	/* disks: the opts' list, else the profile's */
	if (!opts || lua_getfield(L, 4, "disks") == LUA_TNIL) {
		if (opts)
			lua_pop(L, 1);
		if (prof && prof->has_disks)
			ldisk_push_profile(L, prof);
		else
			lua_pushnil(L);
	}
	ldisk_parse(L, -1, name, disks);
	lua_pop(L, 1);
	if (opts) {
		lua_getfield(L, 4, "share");
		lshare_parse(L, -1, name, shares);
		lua_pop(L, 1);
		lboot_parse(L, 4, "provium:vm options", boot);
		if (lua_getfield(L, 4, "memory") != LUA_TNIL) {
			mem = opts_size(L, -1, "VM memory");
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
	v = lvm_new(L, name, profile);
	v->boot = *boot;
	memset(boot, 0, sizeof(*boot));
	v->disks = *disks;
	lshare_merge(&v->shares, shares); /* after a host profile's root, if any */
	if (mem)
		v->memory = mem;
	if (cpus)
		v->cpus = cpus;
	lvm_publish(L, -1);
	return 1;
}

/* The options of provium:boot ({timeout=}) or, with v, of vm:boot (the
 * boot options too, into v->boot): the timeout, 0 for the default. */
static uint64_t boot_opts(lua_State *L, int idx, const char *what, struct lvm *v)
{
	static const char *const keys[] = { "timeout", NULL }, *const vm_keys[] = { "timeout", LBOOT_KEYS, NULL };
	uint64_t ns = 0;
	if (!opts_check(L, idx, what, v ? vm_keys : keys))
		return 0;
	if (lua_getfield(L, idx, "timeout") != LUA_TNIL) {
		ns = opts_duration(L, -1, "boot timeout");
		if (v && lua_getfield(L, idx, "agent_timeout") != LUA_TNIL)
			luaL_error(L, "%s: timeout and agent_timeout are the same; give one", what);
	}
	lua_settop(L, idx);
	if (v)
		lboot_parse(L, idx, what, &v->boot);
	return ns;
}

struct created {
	struct lvm *list[LVM_MAX];
	int n;
};

static void collect_created(struct scope_res *r, void *ud)
{
	struct created *c = ud;
	struct lvm *v = (struct lvm *)r;
	if (v->state == LVM_CREATED && c->n < LVM_MAX)
		c->list[c->n++] = v;
}

static int l_provium_boot(lua_State *L)
{
	struct created c = { .n = 0 };
	uint64_t timeout = boot_opts(L, 2, "provium:boot options", NULL);
	scope_each(L, SCOPE_VM, collect_created, &c);
	if (c.n)
		lvm_boot_many(L, c.list, c.n, timeout, NULL, NULL);
	return 0;
}

static int l_vm_boot(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	if (v->state != LVM_CREATED) {
		if (v->state == LVM_RUNNING)
			return luaL_error(L, "VM '%s' is already booted (state: running)", v->name);
		return lvm_state_error(L, v, "boot");
	}
	uint64_t timeout = boot_opts(L, 2, "vm:boot options", v);
	lvm_boot_many(L, &v, 1, timeout, NULL, NULL);
	lua_settop(L, 1);
	return 1;
}

static int l_vm_shutdown(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	scope_close(&v->res, SCOPE_BY_USER); /* once: shutting down a shut-down VM does nothing more */
	return 0;
}

/* ---- agent calls ----------------------------------------------------------- */

int lvm_call(lua_State *L, struct lvm *v, const char *op, uint64_t timeout_ns)
{
	struct pv_err err;
	int e = 0;
	int rc = agent_call(&v->vm.agent, pv_mono_ns() + (timeout_ns ? timeout_ns : lvm_op_timeout()), &e, &err);
	if (rc == -EREMOTEIO)
		return luaL_error(L, "VM '%s': %s", v->name, err.msg);
	if (rc < 0)
		return lvm_died(L, v, op, err.msg);
	return 0;
}

int lvm_call_bounded(lua_State *L, struct lvm *v, const char *op, uint64_t deadline)
{
	struct pv_err err;
	int e = 0;
	int rc = agent_call_soft(&v->vm.agent, deadline, &e, &err);
	if (rc == -ETIMEDOUT)
		return rc;
	if (rc == -EREMOTEIO)
		return luaL_error(L, "VM '%s': %s", v->name, err.msg);
	if (rc < 0)
		return lvm_died(L, v, op, err.msg);
	return 0;
}

uint64_t lvm_test_time_left(lua_State *L, const char *what)
{
	uint64_t dl = tclock_deadline(), now = pv_mono_ns();
	if (!dl)
		return 0;
	if (now >= dl)
		tclock_timed_out(L, what);
	return dl - now;
}

/* ---- the class ---------------------------------------------------------------- */

static int vm_index(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *k = luaL_checkstring(L, 2);
	if (!strcmp(k, "name"))
		lua_pushstring(L, v->name);
	else if (!strcmp(k, "profile"))
		lua_pushstring(L, v->profile);
	else if (!strcmp(k, "state"))
		lua_pushstring(L, v->state == LVM_RUNNING && v->paused ? "paused" : lvm_state_names[v->state]);
	else if (!strcmp(k, "boot_kind")) {
		if (v->boot_kind)
			lua_pushstring(L, v->boot_kind);
		else
			lua_pushnil(L);
	} else if (!strcmp(k, "cid")) {
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
	struct lvm *v = lvm_check(L, 1);
	lua_pushfstring(L, "VM '%s' (%s, %s)", v->name, v->profile, lvm_state_names[v->state]);
	return 1;
}

void lvm_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, "provium.vm_list");

	lua_pushcfunction(L, l_vm_boot);
	lua_setfield(L, methods, "boot");
	lua_pushcfunction(L, l_vm_shutdown);
	lua_setfield(L, methods, "shutdown");
	lua_pushnil(L);
	scope_set_methods(L, &vm_ops); /* __gc, __close */
	luaL_getmetatable(L, "provium.vm");
	lua_pushvalue(L, methods);
	lua_pushcclosure(L, vm_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, vm_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);

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

char *lvm_console_excerpt(lua_State *L)
{
	struct pv_buf b = PV_BUF_INIT;
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vm_list");
	lua_Unsigned n = lua_rawlen(L, -1);
	for (lua_Unsigned i = 1; i <= n; i++) {
		char head[300], *tail;
		lua_rawgeti(L, -1, (lua_Integer)i);
		struct lvm *v = lua_touserdata(L, -1);
		lua_pop(L, 1);
		if (!v || !v->booted_ever || !v->console_path)
			continue;
		tail = vm_console_tail(v->console_path, 4096);
		snprintf(head, sizeof(head), "%s--- vm %s ---\n", b.len ? "\n" : "", v->name);
		pv_buf_append(&b, head, strlen(head));
		if (tail)
			pv_buf_append(&b, tail, strlen(tail));
		free(tail);
	}
	lua_pop(L, 1);
	pv_buf_append(&b, "", 1);
	return (char *)b.data;
}

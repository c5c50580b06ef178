/* ltemplate.c - warm boot from cached templates (ltemplate.h). */
#include "ltemplate.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_client.h"
#include "event.h"
#include "frame.h"
#include "lnet_priv.h"
#include "runner_priv.h"
#include "sys.h"
#include "units.h"

#define TEMPLATE_PREFIX "template:"
#define CONSOLE_FILE "console.log" /* the maker's console up to the snapshot */

/* s into a new file path: 0 or -errno. */
static int write_text(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), rc = 0;
	if (fd < 0)
		return -errno;
	if (pv_write_all(fd, s, strlen(s)) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

static void fmt_secs(uint64_t ns, char *buf, size_t len)
{
	snprintf(buf, len, "%.2fs", (double)ns / 1e9);
}

/* Why v boots cold whatever its template, or NULL. */
static const char *cold_reason(const struct lvm *v)
{
	const char *env = getenv("PROVIUM_COLD_BOOT");
	if (env && *env && strcmp(env, "0"))
		return "--cold-boot";
	if (v->boot.mode == LBOOT_COLD)
		return "boot = \"cold\"";
	if (v->boot.mode != LBOOT_WARM && v->profile_cold)
		return "its profile has boot = \"cold\"";
	if (!runner_env()->cache_dir)
		return "this run has no fixture cache to keep templates in";
	/* what a template cannot hold for every VM alike (yet): each VM's
	 * own devices and files at power-on */
	if (!strcmp(v->profile, "host"))
		return "profile host shares the host's root";
	if (v->disks.n || v->disks.hotplug)
		return "it has disks";
	if (v->shares.n)
		return "it has shared directories";
	if (v->boot.nfiles)
		return "it has boot files";
	if (v->boot.rtc_base[0])
		return "initial_time sets its clock at power-on";
	return NULL;
}

void ltemplate_prepare(struct lvm *v, const char *kernel, const char *initrd, const char *extra, bool kvm,
		       bool vmgenid, const struct vm_nic *nics, unsigned nnics, struct ltemplate *t)
{
	struct fc_hash h;
	struct fc_manifest *m;
	struct pv_err err;
	const char *why = cold_reason(v);

	memset(t, 0, sizeof(*t));
	t->t0 = pv_mono_ns();
	t->nnics = nnics;
	for (unsigned k = 0; k < nnics && k < VM_MAX_NICS; k++)
		memcpy(t->macs[k], nics[k].mac, 6);
	if (why) {
		snprintf(t->why, sizeof(t->why), "%s", why);
		return;
	}
	if (fc_hash_init(&h) < 0) {
		snprintf(t->why, sizeof(t->why), "out of memory");
		return;
	}
	/* everything that decides what the guest is right after its agent's
	 * hello; the rng_seed is not (a warm boot gets its own) */
	fc_hash_str(&h, "what", "provium boot template 1");
	fc_hash_str(&h, "provium", PROVIUM_VERSION);
	fc_hash_u64(&h, "protocol", PV_PROTOCOL_VERSION);
	fc_hash_identity(&h, "kernel", kernel);
	if (v->kernel && !v->agent_included) {
		/* a file made for this boot (the profile's initrd + the agent) */
		char bk[4096], bi[4096], cpio[4200];
		fc_hash_identity(&h, "initrd", v->initrd);
		if (vm_builtin_image(bk, bi, &err) == 0) {
			const char *sl = strrchr(bi, '/');
			snprintf(cpio, sizeof(cpio), "%.*s/agent.cpio", sl ? (int)(sl - bi) : 1, sl ? bi : ".");
			fc_hash_identity(&h, "agent", cpio);
		}
	} else {
		fc_hash_identity(&h, "initrd", initrd);
	}
	if (v->rootfs)
		fc_hash_identity(&h, "rootfs", v->rootfs);
	fc_hash_u64(&h, "systemd", v->init_systemd);
	fc_hash_str(&h, "profile_cmdline", v->cmdline);
	fc_hash_str(&h, "cmdline", v->boot.cmdline);
	fc_hash_str(&h, "cmdline_append", v->boot.cmdline_append);
	fc_hash_str(&h, "extra", extra);
	fc_hash_u64(&h, "memory", v->memory);
	fc_hash_u64(&h, "cpus", v->cpus);
	fc_hash_u64(&h, "kvm", kvm);
	fc_hash_u64(&h, "vmgenid", vmgenid);
	fc_hash_u64(&h, "nics", nnics);
	fc_hash_final(&h, t->key);
	t->eligible = true;

	if (!(m = calloc(1, sizeof(*m))))
		return;
	int rc = fc_lookup(runner_env()->cache_dir, t->key, m, &err);
	if (rc == 1 && m->nvms == 1) {
		char con[4400];
		size_t len;
		snprintf(t->path, sizeof(t->path), "%s/%s/%s", runner_env()->cache_dir, t->key, m->vms[0].file);
		t->found = true;
		fc_touch(runner_env()->cache_dir, t->key);
		/* the boot messages the guest printed before the snapshot: a warm VM's
		 * console starts with them, as a cold one's would */
		snprintf(con, sizeof(con), "%s/%s/" CONSOLE_FILE, runner_env()->cache_dir, t->key);
		if (sys_read_file(con, 1u << 20, &t->console, &len) < 0)
			t->console = NULL;
	} else if (rc < 0 || rc == 1) {
		ltemplate_discard(t, rc < 0 ? err.msg : "it does not hold one VM");
	}
	free(m);
}

void ltemplate_release(struct ltemplate *t)
{
	free(t->console);
	t->console = NULL;
}

void ltemplate_discard(struct ltemplate *t, const char *why)
{
	ltemplate_release(t);
	struct pv_err err;
	struct fc_lock lk;
	fprintf(stderr, "provium: warning: boot template %s did not resume (%s); deleted, booting cold and saving it again\n",
		t->key, why);
	/* not while its maker is still writing it (a lookup then finds nothing) */
	if (fc_lock_try(runner_env()->cache_dir, t->key, "provium: deleting a template", &lk, NULL, 0, &err) == 1) {
		fc_remove(runner_env()->cache_dir, t->key, &err);
		fc_unlock(&lk);
	}
	t->found = false;
}

/* The agent's identity op: 1 done, 0 the agent has no such op (an older
 * one, in a profile's own initrd), or -errno with *err. */
static int identity_try(struct lvm *v, bool resumed, struct pv_err *err)
{
	char seed[24];
	int e = 0;
	bool with_seed = resumed && v->boot.rng_seed_fixed && !v->boot.rng_seed_unknown;
	size_t hl = strlen(v->name);
	msgpack_packer *pk = agent_begin(&v->vm.agent, "identity", 1 + with_seed + resumed);
	msgpack_pack_str_with_body(pk, "hostname", 8);
	/* a hostname is at most 64 bytes */
	msgpack_pack_str_with_body(pk, v->name, hl > 64 ? 64 : hl);
	if (with_seed) {
		lboot_seed_str(v->boot.rng_seed, seed);
		msgpack_pack_str_with_body(pk, "rng_seed", 8);
		msgpack_pack_str_with_body(pk, seed, strlen(seed));
	}
	if (resumed) {
		msgpack_pack_str_with_body(pk, "machine_id", 10);
		msgpack_pack_true(pk);
	}
	int rc = agent_call(&v->vm.agent, pv_mono_ns() + lvm_op_timeout(), &e, err);
	if (rc == -EREMOTEIO && strstr(err->msg, "unknown op"))
		return 0;
	return rc < 0 ? rc : 1;
}

/* identity_try that raises as any op on v does. */
static void identity(lua_State *L, struct lvm *v, bool resumed)
{
	struct pv_err err;
	int rc = identity_try(v, resumed, &err);
	if (rc == -EREMOTEIO)
		luaL_error(L, "VM '%s': %s", v->name, err.msg);
	else if (rc < 0)
		lvm_died(L, v, "boot", err.msg);
}

static unsigned nsaved;

void ltemplate_cold(struct lvm *v, struct ltemplate *t)
{
	const char *dir = runner_env()->cache_dir;
	char line[600], took[32], holder[300], snap[4300];
	struct fc_manifest *m = NULL;
	struct fc_writer w = { .open = false };
	struct fc_lock lk = { .fd = -1 };
	struct pv_err err;
	uint64_t bytes = 0, t1;

	fmt_secs(pv_mono_ns() - t->t0, took, sizeof(took));
	/* an agent without the identity op makes no template: its warm copies
	 * could not be told who they are (its hostname comes after, from
	 * lvm_boot_many; a guest that does not answer fails the boot there) */
	if (t->eligible) {
		int rc = identity_try(v, false, &err);
		if (rc <= 0) {
			t->eligible = false;
			snprintf(t->why, sizeof(t->why), "%s", rc == 0 ? "its agent is too old for warm boots: rebuild the "
							   "profile's initrd" : "its agent did not answer");
		}
	}
	if (!t->eligible) {
		snprintf(line, sizeof(line), "vm %s: cold boot (%s), %s", v->name, t->why, took);
		runner_log(line);
		return;
	}
	snprintf(holder, sizeof(holder), "provium: saving the boot template of VM '%s' (%s)", v->name,
		 runner_env()->path);
	/* another runner saving it: this boot was cold, the next will not be */
	if (fc_lock_try(dir, t->key, holder, &lk, NULL, 0, &err) != 1 || !(m = calloc(1, sizeof(*m))) ||
	    fc_lookup(dir, t->key, m, &err) == 1) {
		snprintf(line, sizeof(line), "vm %s: cold boot, %s (its template is being saved by another file)", v->name,
			 took);
		runner_log(line);
		goto out;
	}
	t1 = pv_mono_ns();
	snprintf(snap, sizeof(snap), "%s/template-%d-%u.zst", runner_env()->scratch, (int)getpid(), ++nsaved);
	memset(m, 0, sizeof(*m));
	if (vm_snapshot(&v->vm, snap, &bytes, NULL, NULL, &err) < 0 ||
	    vm_resync(&v->vm, pv_mono_ns() + lvm_op_timeout(), &err) < 0 || fc_begin(dir, t->key, &w, &err) < 0) {
		unlink(snap);
		goto fail;
	}
	snprintf(m->fixture, sizeof(m->fixture), TEMPLATE_PREFIX "%s", v->profile);
	snprintf(m->key, sizeof(m->key), "%s", t->key);
	m->created_unix = (uint64_t)time(NULL);
	m->nvms = 1;
	snprintf(m->vms[0].name, sizeof(m->vms[0].name), "template");
	snprintf(m->vms[0].profile, sizeof(m->vms[0].profile), "%s", v->profile);
	m->vms[0].memory = v->memory;
	m->vms[0].cpus = v->cpus;
	m->vms[0].kvm = v->boot_kvm;
	snprintf(m->vms[0].file, sizeof(m->vms[0].file), "vm0.zst");
	if (fc_add_file(&w, snap, m->vms[0].file, &m->vms[0].bytes, &err) < 0) {
		unlink(snap);
		goto fail;
	}
	{
		char *con = vm_console_tail(v->vm.console_path, 65536), tmp[4400];
		snprintf(tmp, sizeof(tmp), "%s.console", snap);
		int rc = con ? write_text(tmp, con) : 0;
		free(con);
		if (rc < 0 || (con && fc_add_file(&w, tmp, CONSOLE_FILE, NULL, &err) < 0)) {
			if (rc < 0)
				pv_err_set(&err, rc, SIZE_MAX, "%s: %s", tmp, strerror(-rc));
			unlink(tmp);
			goto fail;
		}
	}
	m->build_ns = pv_mono_ns() - t1;
	if (fc_commit(&w, m, &err) < 0)
		goto fail;
	{
		char saved[32], sz[32];
		fmt_secs(m->build_ns, saved, sizeof(saved));
		snprintf(line, sizeof(line), "vm %s: cold boot, %s; its boot template %.12s saved (%s, %s)", v->name, took,
			 t->key, pv_format_size(bytes, sz), saved);
	}
	runner_log(line);
	goto out;
fail:
	fc_abort(&w);
	fprintf(stderr, "provium: warning: VM '%s': its boot template could not be saved: %s; it booted cold\n", v->name,
		err.msg);
	snprintf(line, sizeof(line), "vm %s: cold boot, %s (saving its template failed: %.300s)", v->name, took, err.msg);
	runner_log(line);
out:
	fc_unlock(&lk);
	free(m);
}

void ltemplate_identity(lua_State *L, struct lvm *v)
{
	identity(L, v, false);
}

void ltemplate_refresh(lua_State *L, struct lvm *v, const struct ltemplate *t)
{
	char line[600], took[32];
	identity(L, v, true);
	if (t->nnics) {
		/* NIC k sits in PCI slot 0x10 + k (vm.c), whatever the guest named
		 * it; it has the template maker's MAC until told its own */
		struct pv_buf sh = PV_BUF_INIT;
		for (unsigned k = 0; k < t->nnics; k++) {
			const uint8_t *a = t->macs[k];
			char cmd[400];
			snprintf(cmd, sizeof(cmd),
				 "for n in /sys/bus/pci/devices/0000:00:%02x.0/virtio*/net/*; do "
				 "ip link set dev \"${n##*/}\" address %02x:%02x:%02x:%02x:%02x:%02x || exit 1; done\n",
				 0x10 + k, a[0], a[1], a[2], a[3], a[4], a[5]);
			pv_buf_append(&sh, cmd, strlen(cmd));
		}
		lua_pushlstring(L, (const char *)sh.data, sh.len); /* a raise below frees it */
		pv_buf_release(&sh);
		size_t len;
		const char *script = lua_tolstring(L, -1, &len);
		lnet_guest_exec(L, v, script, len, "giving the resumed guest its MAC addresses");
		lua_pop(L, 1);
	}
	fmt_secs(pv_mono_ns() - t->t0, took, sizeof(took));
	snprintf(line, sizeof(line), "vm %s: warm boot from template %.12s, %s", v->name, t->key, took);
	runner_log(line);
}

/* ldisk.h - disks of the Lua API (docs/lua-api.md, "Disks"): the `disks`
 * option of provium:vm, vm:disk(id) and the Disk it returns (id, size,
 * device, path, stats, read_sectors, write_sectors).
 *
 * A disk is a virtio-blk device whose serial is its id. Its host file is
 * made at the VM's first boot in the run's scratch directory and kept for
 * the VM's life (reboots and resets see the same data): a fresh sparse raw
 * file for {id, size}; for {id, image}, a qcow2 overlay backed by the image
 * (the image is never written), the image itself read-only with readonly =
 * true, or read-write with writable = true. A raw disk QEMU may write (a
 * fresh one, a writable raw image) is mediated unless faults = false: QEMU
 * reaches it through its disk server (dserver.h), which keeps the guest's
 * unflushed writes apart and injects the faults of disk:fault. After each boot the guest's
 * device is looked up by serial (/sys/block/vdX/serial).
 */
#ifndef PV_LDISK_H
#define PV_LDISK_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "dserver.h"
#include "err.h"
#include "vm.h"

/* A fault rule as the test gave it (disk:fault), kept for disk:faults(). */
struct ldisk_fault {
	unsigned id; /* the plugin's rule id, from 1 */
	unsigned ops; /* 1 read, 2 write, 4 flush */
	int err;      /* 0: a delay only */
	uint64_t off, len, after, delay_ns;
	uint32_t prob_ppm;
	bool once;
};
#define LDISK_MAX_FAULTS 32

struct ldisk {
	char id[21];         /* virtio-blk serials hold 20 bytes */
	uint64_t size;       /* bytes the guest sees */
	char image[4096];    /* an existing image, or "" for a fresh disk */
	char format[8];      /* of the file QEMU opens: "raw" or "qcow2" */
	char image_format[8];
	bool readonly, writable;
	char path[4200];     /* the file QEMU opens, once made */
	char device[32];     /* "/dev/vda", after a boot */
	int port;            /* the root port it was hot-plugged into, or -1 */
	bool detached;       /* disk:detach()ed: in no QEMU any more (its file stays) */
	bool mediated;       /* through a disk server (faults, power cuts), not a plain file */
	bool scsi;           /* bus = "scsi": a scsi-hd (/dev/sdX) on the VM's virtio-scsi bus */
	uint64_t seed;       /* of its probabilistic faults */
	struct dserver srv;  /* when mediated, from its first boot (or fault) on */
	struct ldisk_fault faults[LDISK_MAX_FAULTS];
	unsigned nfaults, next_fault;
};

struct ldisks {
	struct ldisk d[VM_MAX_DISKS];
	unsigned n;
	bool hotplug; /* the VM was given `disks`: it gets root ports to plug more into */
};

struct lvm;

/* Checks the `disks` list at idx (nil: none) of VM name into out; raises on
 * a bad one (before anything is made). */
void ldisk_parse(lua_State *L, int idx, const char *name, struct ldisks *out);
/* Pushes profile p's disks as a `disks` list for ldisk_parse. */
struct pv_profile;
void ldisk_push_profile(lua_State *L, const struct pv_profile *p);
/* Makes the disks' files (the first time) and fills out with them: their
 * number, or -errno with err set. */
int ldisk_prepare(struct lvm *v, struct vm_disk *out, struct pv_err *err);
/* After a boot: finds each disk's guest device. Raises when one is missing. */
void ldisk_resolve(lua_State *L, struct lvm *v);
/* A new file name for disk d in the run's scratch directory (disks/). */
int ldisk_new_path(const struct ldisk *d, const char *ext, char *out, size_t len, struct pv_err *err);
/* The plugin's "F" line of rule f. */
void ldisk_fault_line(const struct ldisk_fault *f, char *out, size_t len);

/* ---- snapshots (ldisk_snap.c) ---- */

/* A disk as a snapshot holds it: what it is, and a copy of its data. */
struct ldisk_saved {
	char id[21];
	uint64_t size, seed;
	char format[8];       /* of the copy (and so of the disk after a restore) */
	char image[4096];     /* a qcow2 copy's backing image, or a readonly image itself; "" */
	char image_format[8];
	bool readonly, mediated, scsi;
	char copy[4200];      /* the copy of its file; "" for a readonly image (nothing to copy) */
	uint64_t bytes;       /* the data bytes of the copy */
};
struct ldisks_saved {
	struct ldisk_saved d[VM_MAX_DISKS];
	unsigned n;
	bool hotplug;
};
/* Raises "<op> of VM refused: ..." when one of v's disks cannot go into a
 * snapshot (one written in place: writable = true; one hot-plugged). */
void ldisk_check_snapshot(lua_State *L, struct lvm *v, const char *op);
/* With v's QEMU stopped (its disks flushed): copies each disk's file to
 * "<base>.disk<k>" (sparse) into out. 0, or -errno with err set (the copies
 * made are removed). */
int ldisk_save(struct lvm *v, const char *base, struct ldisks_saved *out, struct pv_err *err);
/* Removes the copies of s. */
void ldisk_saved_remove(struct ldisks_saved *s);
/* Raises unless v's disks are s's (same ids and sizes): before a restore. */
void ldisk_check_restore(lua_State *L, struct lvm *v, const struct ldisks_saved *s);
/* Gives v (no QEMU running) the disks of s: each a private copy of the saved
 * data in the scratch directory; a disk server is restarted on its new file,
 * keeping its rules. v has s's disks (ldisk_check_restore) or none (a fresh
 * VM of a fixture, which gets s's). 0, or -errno with err set. */
int ldisk_load(struct lvm *v, const struct ldisks_saved *s, struct pv_err *err);
/* Ends v's disk servers (the VM is shut down for good). */
void ldisk_close(struct lvm *v);
/* Makes d's file and, when mediated, starts its server (both once). */
int ldisk_ready(struct ldisk *d, struct pv_err *err);
/* The Disk at idx, and its VM into *vp. */
struct ldisk *ldisk_check(lua_State *L, int idx, struct lvm **vp);
/* disk:fault, clear_faults, faults, power_cut and the Fault class
 * (ldfault.c), into the Disk methods table at index methods. */
void ldfault_install(lua_State *L, int methods);
/* Adds vm:disk and vm:attach_disk to the VM methods table at index methods, and the Disk class. */
void ldisk_install(lua_State *L, int methods);

#endif

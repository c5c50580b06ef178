/* vm.h - one QEMU virtual machine and its agent connection.
 *
 * Lifecycle: vm_boot() -> agent ops through vm->agent -> vm_shutdown().
 *   vm_boot spawns QEMU as a child of the calling process (PR_SET_PDEATHSIG,
 *   its own scratch directory, mode 0700), with no display, no network and no
 *   TCP listener: QMP, the agent chardev and the serial console are files in
 *   the scratch directory. The serial console's output is appended to
 *   console.log; its input is the FIFO console.in (given to the chardev by
 *   QMP chardev-change right after start), whose write end vm->console_in
 *   this process holds for QEMU's lifetime, so QEMU never reads an end of
 *   file (vm_console_write). Boot is done when the agent's hello arrives; a
 *   guest that never answers fails the boot with its console tail.
 *   A resume (spec->incoming) is done once the agent's resume op has set the
 *   guest's clock from the host's and mixed host entropy into its pool.
 *   vm_shutdown asks QEMU to quit (QMP), kills it if it lingers, reaps it, and
 *   removes the scratch directory unless keep_console is set.
 */
#ifndef PV_VM_H
#define PV_VM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_client.h"
#include "err.h"
#include "qmp.h"

/* A NIC: a virtio-net device on a `-netdev dgram` over fd, one end of an
 * AF_UNIX SOCK_DGRAM socketpair whose other end is a switch port
 * (src/net/switch.h). NIC k is QEMU device "nic<k>" (netdev "net<k>"); the
 * guest names it by PCI order, eth<k>. vm_boot does not take the fd: the
 * caller closes it after vm_boot returns. */
#define VM_MAX_NICS 8
struct vm_nic {
	int fd;
	uint8_t mac[6];
};

/* A host directory shared into the guest (virtio-fs): the guest mounts tag. */
struct vm_share {
	const char *tag;    /* at most 36 bytes */
	const char *socket; /* virtiofsd's vhost-user socket */
};

/* A block device for the guest: a virtio-blk disk whose serial is its id. */
#define VM_MAX_DISKS 8
struct vm_disk {
	const char *path;   /* the file QEMU opens, when nbd is NULL */
	const char *format; /* "raw" or "qcow2" */
	const char *nbd;    /* else: the unix socket of its disk server (dserver.h), raw */
	const char *serial; /* at most 20 bytes: the guest's /sys/block/vdX/serial */
	bool readonly;
	unsigned index; /* QEMU's node "disk<index>", device "vd<index>" */
	bool scsi;      /* a scsi-hd on the VM's virtio-scsi bus (target <index>), not a virtio-blk */
};

struct vm_spec {
	const char *kernel, *initrd, *cmdline; /* cmdline: extra, may be NULL */
	uint64_t memory_bytes;
	uint32_t cpus;
	bool kvm;
	uint64_t boot_timeout_ns;
	const char *incoming; /* a vm_snapshot() file to resume instead of booting, or NULL */
	const char *console_history; /* text the console log starts with (a restore carries it over), or NULL */
	bool vmgenid; /* give the guest QEMU's vmgenid device (its kernel has CONFIG_VMGENID) */
	const struct vm_nic *nics; /* nnics of them, at most VM_MAX_NICS */
	unsigned nnics;
	const char *rtc_base; /* the guest's RTC at power-on (QEMU -rtc base=, UTC), or NULL: the host's time */
	const struct vm_disk *disks; /* ndisks of them, at most VM_MAX_DISKS */
	unsigned ndisks;
	/* PCIe root ports "hp0".. for disks plugged in later (vm_hotplug_disk):
	 * at most VM_MAX_HOTPLUG */
	unsigned hotplug_ports;
	bool scsi; /* a virtio-scsi controller "scsi0" for scsi disks */
	/* host directories over virtio-fs: a vhost-user-fs-pci "fs<k>" per share,
	 * its chardev on the socket of a running virtiofsd; guest RAM becomes a
	 * shared memfd (vhost-user needs it) */
	const struct vm_share *shares;
	unsigned nshares;
	/* a root file system image (a Debian profile's root.squashfs), attached
	 * read-only as the virtio-blk disk with serial VM_ROOTFS_SERIAL, or NULL */
	const char *rootfs;
};
#define VM_ROOTFS_SERIAL "provium-root"
#define VM_MAX_SHARES 4
#define VM_MAX_HOTPLUG 4

struct vm {
	pid_t pid;
	int pidfd;
	char dir[256];
	char console_path[300];
	int console_in; /* the write end of console.in (O_RDWR, non-blocking); -1 after vm_shutdown */
	struct qmp qmp;
	bool qmp_ok;
	struct agent_conn agent;
	uint64_t started; /* mono ns */
	int exit_status;
	bool reaped;
	uint64_t resync_rtt_ns; /* resumed: the round trip of the last resume op */
};

int vm_boot(struct vm *vm, const struct vm_spec *spec, struct pv_err *err);
/* Scratch directories are made under dir (default $XDG_RUNTIME_DIR or /tmp). */
void vm_set_scratch_parent(const char *dir);
/* The directory vm_boot makes its next scratch directory (vm-XXXXXX) in. */
const char *vm_scratch_base(void);
/* The QEMU command vm_boot(spec) runs for a VM whose scratch directory is
 * dir, as one line of shell words (quoted where needed), malloc'd; NULL with
 * *err. The same builder as vm_boot's: the line is exactly what it runs.
 * What vm_boot does besides (not in the line): the scratch directory and the
 * console's input FIFO before the start, QEMU's output to dir/qemu.log, and
 * QMP chardev-change giving the serial port that FIFO as input after it. */
char *vm_command_line(const struct vm_spec *spec, const char *dir, struct pv_err *err);
/* QEMU in a process group of its own (default: the caller's). An
 * interactive runner owns the terminal's foreground group, and a ^C there
 * must reach the runner only: QEMU would end on it. QEMU still dies with the
 * runner (PR_SET_PDEATHSIG). */
void vm_set_own_process_group(bool own);
/* Saves the running VM's whole state (RAM and devices) to path, zstd
 * compressed, through a tmp file + rename; the VM runs on afterwards.
 * *ret_bytes: size on disk. Needs no agent op in flight. stopped (may be
 * NULL) runs once the migration is done and before the VM runs on, its
 * disks flushed (QMP stop flushes them): a failure there fails the snapshot. */
/* The guest's clock set from the host's and fresh host entropy mixed into
 * its pool (the agent's resume op): what a guest stopped for a while, or
 * resumed from a snapshot, needs. 0 or -errno with *err. */
int vm_resync(struct vm *vm, uint64_t deadline, struct pv_err *err);
int vm_snapshot(struct vm *vm, const char *path, uint64_t *ret_bytes, int (*stopped)(void *ud, struct pv_err *err),
		void *ud, struct pv_err *err);

/* Plugs disk d into root port `port` of the running VM ("hp<port>", the
 * guest's PCI slot port + 1) as node "disk<k>", device "vd<k>". */
int vm_hotplug_disk(struct vm *vm, unsigned k, unsigned port, const struct vm_disk *d, uint64_t deadline,
		    struct pv_err *err);

/* Asks the guest to let disk k go (QMP device_del of "vd<k>"). */
int vm_unplug_disk_start(struct vm *vm, unsigned k, struct pv_err *err);
/* 1 once the device is gone (and then its node "disk<k>" is deleted), 0
 * while it or its hold on the node is still there (poll again), -errno on
 * error. */
int vm_unplug_disk_done(struct vm *vm, unsigned k, struct pv_err *err);

/* Link state of NIC k as the guest sees it (QMP set_link): down is a cable
 * pulled out, the guest's carrier goes off. */
int vm_set_link(struct vm *vm, unsigned nic, bool up, struct pv_err *err);

/* True (and reaps) if QEMU has exited. */
/* A QMP command without arguments (stop, cont, system_powerdown). */
int vm_qmp_simple(struct vm *vm, const char *cmd, struct pv_err *err);
/* A hard reset (QMP system_reset): the guest reboots in the same QEMU; waits
 * until deadline for its agent's hello on the same connection. */
int vm_reset(struct vm *vm, uint64_t deadline, struct pv_err *err);
bool vm_exited(struct vm *vm);
/* A one-line description of how QEMU ended, or "" while it runs. */
void vm_exit_reason(struct vm *vm, char *buf, size_t len);
void vm_shutdown(struct vm *vm);
/* Kills QEMU at once (SIGKILL) and reaps it; vm_shutdown then only tidies. */
void vm_kill(struct vm *vm);
/* Last `max` bytes of the console log (malloc'd, NUL-terminated, valid UTF-8
 * with bad bytes replaced by '?'). */
char *vm_console_tail(const char *console_path, size_t max);

/* Types len bytes of data into the guest's serial port (its ttyS0): all of
 * them, or an error. The FIFO holds 64 KiB and QEMU takes more only as the
 * guest's UART is read, so a guest that reads nothing stalls the write:
 * -ETIMEDOUT when no byte went in for stall_ns or deadline (monotonic ns, 0
 * for none) passed, -ECHILD when QEMU exited; *ret_done (may be NULL): the
 * bytes that went in, whatever the result. */
int vm_console_write(struct vm *vm, const void *data, size_t len, uint64_t stall_ns, uint64_t deadline,
		     size_t *ret_done, struct pv_err *err);

/* Removes the scratch directory (console log included). */
void vm_remove_dir(struct vm *vm);

/* The directory guest images live in: the built-in one and Debian profiles'
 * ($PROVIUM_IMAGE_DIR, else ${XDG_DATA_HOME:-~/.local/share}/provium/images). */
void vm_image_dir(char *out, size_t len);
/* The built-in image: reads $PROVIUM_IMAGE_DIR (or the XDG data dir)
 * /linux.current. Fills kernel/initrd paths (buffers of 4096). */
int vm_builtin_image(char *kernel, char *initrd, struct pv_err *err);
/* True when the manifest.json next to kernel (a built-in image) says its
 * kernel has CONFIG_VMGENID=y (kernel_features.vmgenid); false otherwise. */
bool vm_image_has_vmgenid(const char *kernel);

/* "kvm" only when a probe VM really boots under KVM; the answer is cached per
 * host kernel and QEMU binary. notice (may be NULL) receives a one-line notice
 * when falling back to TCG the first time. */
bool vm_kvm_usable(const char *kernel, const char *initrd, char *notice, size_t notice_len);

/* A query-status return while an incoming migration loads (consumed):
 * 0 with *ret_waiting (still "inmigrate"), or -EIO naming the state QEMU
 * ended up in. Separate from the I/O for the QMP fuzz target. */
int vm_incoming_status(json_t *st, const char *path, bool *ret_waiting, struct pv_err *err);

#endif

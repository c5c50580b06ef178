/* lvm.h - the VM resource of the Lua API: provium:vm, provium:boot, vm:boot,
 * vm:shutdown, the VM's state machine, its pool share (docs/lua-api.md,
 * "Virtual machines"). Each VM is a QEMU child of this runner (vm.c) driven
 * through its agent (agent_client.c); vm_spawned / vm_shutdown are emitted
 * here.
 *
 * A VM is a full userdata (struct lvm) registered in its scope (scope.h):
 * closing it (vm:shutdown, `local v <close>`, the end of the test or file
 * that made it) shuts it down once. Every VM of a lua_State also stays in that
 * state's list until the state closes, so that a failed test's console
 * excerpt can show VMs that were shut down already; their scratch
 * directories go when the state does.
 *
 * The other binding modules that work on VMs (lguest.c: commands and files,
 * lproc.c: processes, lconsole.c, and the snapshots in lsnap.c) use:
 *   1. lvm_running(L, idx, what): the VM at idx, which must be running
 *      (raises naming its state otherwise); also settles deferred work.
 *   2. agent_begin(&v->vm.agent, ...) and pack the request, then
 *      lvm_call(...) which raises on an agent error or when the VM died.
 *   3. Read v->vm.agent.resp (valid until the next call on this VM).
 */
#ifndef PV_LVM_H
#define PV_LVM_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "lboot.h"
#include "ldisk.h"
#include "lshare.h"
#include "scope.h"
#include "vm.h"

/* At most this many VMs per lua_State (one file, or one fixture builder). */
#define LVM_MAX 64
#define LVM_OVERHEAD (100ull << 20) /* QEMU's own memory, on top of the guest's */
/* How long after a command's timeout the host stops waiting for the guest's
 * answer: the guest kills the command at its timeout and answers at once,
 * unless it is too starved to (a fork bomb) or hung. */
#define LVM_HOST_MARGIN_NS (2000000000ull)

/* The VM's state machine:
 *
 *   created --boot/resume--> running --vm:shutdown, end of scope/file--> shut down
 *      |                        |
 *      |                        +--QEMU gone, agent silent, failed restore--> dead --vm:shutdown--> shut down
 *      +--vm:shutdown, end of scope------------------------------------------------> shut down
 *
 * Every transition goes through lvm_enter(). A booted VM is `live` (its QEMU
 * may run, vm_spawned was emitted, its pool share is held) until lvm_enter()
 * takes it out of running: that is the only place that reaps QEMU, emits
 * vm_shutdown and gives the share back, so each happens exactly once whichever
 * path ends the VM (an op noticing QEMU died, vm:shutdown, scope or file end,
 * the state's close). */
enum lvm_state { LVM_CREATED, LVM_RUNNING, LVM_DEAD, LVM_SHUTDOWN };

/* A guest handle whose object was collected (a finalizer may not talk to
 * the agent): released at the next safe point by lvm_settle. */
enum lvm_reap_kind { LVM_REAP_PROC, LVM_REAP_STREAM, LVM_REAP_FILE, LVM_REAP_WORKER };
struct lvm_reap {
	uint32_t id;
	unsigned gen;
	enum lvm_reap_kind kind;
};

struct lstream;

struct lvm {
	struct scope_res res; /* first: the VM is a scope resource */
	char *name, *profile;
	char *kernel, *initrd, *cmdline; /* NULL: the built-in image */
	int accel_pref;                  /* -1 auto, 0 tcg, 1 kvm */
	uint64_t memory;
	uint32_t cpus;
	enum lvm_state state;
	bool live; /* see lvm_enter() */
	char dead_why[800];
	struct vm vm;
	uint32_t cid;
	bool agent_included;
	bool vmgenid; /* profiles.<name>.vmgenid */
	bool profile_cold; /* profiles.<name>.boot = "cold" (ltemplate.h) */
	const char *boot_kind; /* vm.boot_kind: how its last boot went ("cold", "warm", "fixture", "snapshot"), NULL before one */
	char *rootfs;      /* a Debian profile's root.ext4 (dimage.h), or NULL */
	bool init_systemd; /* its init = "systemd" */
	/* what it was booted with: a restore starts the same machine */
	char *boot_kernel, *boot_initrd, *boot_cmdline;
	bool boot_kvm, boot_vmgenid;
	bool booted_ever;
	uint64_t boot_mono;
	char *console_path; /* of the last QEMU started; kept after shutdown for excerpts */
	unsigned gen; /* bumped by every boot and restore: agent handles of older QEMUs are void */
	struct lvm_reap *reap; /* lvm_defer's queue */
	size_t nreap, reap_cap;
	struct lstream *streams; /* lstream.c: the streams of this VM, for push frames */
	struct lworker *workers; /* lworker.c: its workers not yet closed */
	bool paused;             /* llife.c: running, but its QEMU is stopped */
	unsigned boot_count;     /* boots (and fixture resumes) and resets */
	struct lboot boot;       /* lboot.c: the boot options of provium:vm and vm:boot */
	struct ldisks disks;     /* ldisk.c: the disks option of provium:vm */
	struct lshares shares;   /* lshare.c: the share option of provium:vm */
};

extern const char *const lvm_state_names[];

/* Installs provium:vm / provium:boot and the VM class into L (the provium
 * table is a global already). methods: stack index of the table of VM
 * methods that the other modules filled (vm:boot / vm:shutdown join them). */
void lvm_install(lua_State *L, int methods);

/* Queues handle id (of QEMU generation gen) for release at the next safe
 * point: a process is killed and waited for, a stream or file closed. No
 * I/O, never raises (a finalizer's). */
void lvm_defer(struct lvm *v, enum lvm_reap_kind kind, uint32_t id, unsigned gen);
/* Works off the queue (the next op on v, or a scope's end). Never raises; a
 * transport failure marks v dead. */
void lvm_settle(struct lvm *v);

/* The VM at idx (raises if it is none) / the same, which must be running. */
struct lvm *lvm_check(lua_State *L, int idx);
struct lvm *lvm_running(lua_State *L, int idx, const char *what);
/* Raises the error for an op `what` on a VM in v's state. */
int lvm_state_error(lua_State *L, struct lvm *v, const char *what);

/* A new VM named `name` of profile, pushed on L and registered in the
 * current scope, not yet visible as provium.<name> (lvm_publish does that).
 * Raises on a name in use, too many VMs, or a bad profile. */
struct lvm *lvm_new(lua_State *L, const char *name, const char *profile);
/* Makes the VM at idx provium.<name> / provium:vm(name). */
void lvm_publish(lua_State *L, int idx);

/* Boots list[0..n) with one pool acquisition. incoming (may be NULL): per
 * VM, a snapshot to resume instead of booting. A failed resume returns -1
 * with *rerr filled, every VM of list left shut down and its share given
 * back (a fixture tells a bad cache entry from a bad call); anything else
 * that fails raises. */
int lvm_boot_many(lua_State *L, struct lvm **list, int n, uint64_t timeout_ns, const char *const *incoming,
		  struct pv_err *rerr);

/* The one state transition (see the state machine above). Never raises. */
void lvm_enter(struct lvm *v, enum lvm_state to);
/* After a transport failure (QEMU gone, agent silent): the VM is dead, its
 * resources given back; lvm_mark_dead does not raise, lvm_died raises "VM
 * 'x' died during op: ..." with the console's last lines. */
void lvm_mark_dead(struct lvm *v, const char *why);
int lvm_died(lua_State *L, struct lvm *v, const char *op, const char *why);

/* Sends the request begun on v's agent and waits for its answer (timeout_ns
 * 0: the default op timeout); raises on an agent error or a dead VM. */
int lvm_call(lua_State *L, struct lvm *v, const char *op, uint64_t timeout_ns);
/* As lvm_call, but a deadline that passes returns -ETIMEDOUT and leaves the
 * VM running (the guest answers late or not at all; the answer is dropped). */
int lvm_call_bounded(lua_State *L, struct lvm *v, const char *op, uint64_t deadline);
/* What is left of the running test's meta.timeout in ns, 0 if it has none;
 * raises the test's timeout failure if nothing is left. */
uint64_t lvm_test_time_left(lua_State *L, const char *what);
/* How long one agent op may take before the VM counts as dead. */
uint64_t lvm_op_timeout(void);

/* "--- vm NAME ---\n<last 4 KiB>" for every VM L ever booted; malloc'd. */
char *lvm_console_excerpt(lua_State *L);

#endif

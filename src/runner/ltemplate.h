/* ltemplate.h - warm boot (docs/lua-api.md, "Warm boot"; docs/design.md):
 * a VM's boot resumes a snapshot of its profile's guest taken right after
 * the agent first answered (a template), then gives the guest what a fresh
 * boot would have given it (the host's clock and fresh entropy, its own
 * hostname, rng_seed, machine-id and MAC addresses). The first boot of a
 * template key boots cold and saves the template; later ones, in this run or
 * the next, resume it. Templates are entries of the fixture cache named
 * "template:PROFILE" (fcache.h), keyed by everything that decides what the
 * guest looks like right after its boot.
 *
 * lvm_boot_many calls, per VM:
 *   1. ltemplate_prepare before QEMU starts: may the boot be warm, its key,
 *      and the template to resume if there is one (t->found, t->path);
 *   2. after QEMU is up: ltemplate_discard when a template did not resume
 *      (then it boots cold), ltemplate_cold after a cold boot (it may make
 *      the template);
 *   3. once every VM is up: ltemplate_refresh after a warm boot,
 *      ltemplate_identity after a cold one.
 * None of them fails a boot: a template that cannot be saved or resumed is a
 * warning and a cold boot. */
#ifndef PV_LTEMPLATE_H
#define PV_LTEMPLATE_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "fcache.h"
#include "lvm.h"
#include "vm.h"

struct ltemplate {
	bool eligible;            /* this boot may be warm (or make a template) */
	bool found;               /* a template to resume: path */
	char why[160];            /* !eligible: why it boots cold */
	char key[FC_KEY_LEN + 1]; /* eligible: the template's key */
	char path[4300];          /* found: the template's snapshot */
	uint64_t t0;              /* when the boot began (mono ns), for the log line */
	unsigned nnics;
	uint8_t macs[VM_MAX_NICS][6]; /* this VM's own MACs (a template has its maker's) */
	char *console; /* found: the maker's console up to the snapshot, or NULL (ltemplate_release) */
};

/* Decides how v boots. kernel and initrd are the files QEMU gets, extra the
 * command line words provium adds (PROVIUM_GUEST_CMDLINE, a rootfs's). */
void ltemplate_prepare(struct lvm *v, const char *kernel, const char *initrd, const char *extra, bool kvm,
		       bool vmgenid, const struct vm_nic *nics, unsigned nnics, struct ltemplate *t);
/* Frees what prepare kept (t->console, once QEMU has it). */
void ltemplate_release(struct ltemplate *t);
/* t's template did not resume (why): it is deleted, with a warning; the
 * caller boots cold. */
void ltemplate_discard(struct ltemplate *t, const char *why);
/* After v booted cold: its template saved if t is eligible, none is there
 * and no other runner is saving it (the guest is stopped while QEMU writes
 * the snapshot, and re-synced after it). Never raises: a template that
 * cannot be saved is a warning. Logs how v booted. */
void ltemplate_cold(struct lvm *v, struct ltemplate *t);
/* After v resumed t's template: its own hostname, rng_seed, machine-id and
 * MACs (the network's addresses follow, lnet_guest_setup). Raises like any
 * op on v when the guest does not answer. */
void ltemplate_refresh(lua_State *L, struct lvm *v, const struct ltemplate *t);
/* The VM's own hostname (the agent's identity op) after a cold boot or a
 * reset. Raises like any op on v. */
void ltemplate_identity(lua_State *L, struct lvm *v);

#endif

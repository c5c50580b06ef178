/* lshare.h - host directories shared into a guest (docs/lua-api.md,
 * "Shares"): the `share` option of provium:vm.
 *
 * Each share is a virtio-fs export served by its own virtiofsd (QEMU's, in
 * /usr/lib/qemu; $PROVIUM_VIRTIOFSD overrides), started for every boot (it
 * ends when its QEMU does). As root it runs with sandbox=chroot; as an
 * ordinary user with sandbox=namespace inside `unshare --map-root-user
 * --map-auto --mount` with a tmpfs on /run (measured in docs/design.md). The guest's agent mounts the export on the guest path
 * before it answers (provium.share=TAG:ro|rw:PATH on the kernel command
 * line); after the boot the host checks /proc/mounts. */
#ifndef PV_LSHARE_H
#define PV_LSHARE_H

#include <lua.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "vm.h"

struct lshare {
	char host[4096];  /* an existing directory, absolute */
	char guest[201];  /* absolute, no spaces, commas or colons; "" for the host profile's root */
	bool readonly;
	char tag[16];     /* "pvfs<k>" */
	pid_t pid;        /* its virtiofsd, or 0 */
	char sock[108];
	char log[4200];
};

struct lshares {
	struct lshare s[VM_MAX_SHARES];
	unsigned n;
};

struct lvm;

/* Checks the `share` list at idx (nil: none) of VM name into out; raises on
 * a bad one (a missing directory, a relative guest path...). */
void lshare_parse(lua_State *L, int idx, const char *name, struct lshares *out);
/* The host profile's root: the host's / read-only (guest "" marks it). */
void lshare_add_root(struct lshares *s);
/* Appends add's shares to s (tags renumbered); raises nothing: the total
 * stays within VM_MAX_SHARES by lshare_parse's limit minus the root. */
void lshare_merge(struct lshares *s, const struct lshares *add);
/* Starts the virtiofsds of v's shares for a boot; fills out[] and appends
 * the kernel command-line words to words. 0, or -errno with err set. */
int lshare_start(struct lvm *v, struct vm_share *out, char *words, size_t len, struct pv_err *err);
/* What the virtiofsds logged (for a failed boot): "; the virtiofsd of
 * share H said: ..." or "". */
void lshare_explain(struct lvm *v, char *out, size_t len);
/* Ends them (after their QEMU). */
void lshare_stop(struct lvm *v);
/* After a boot: raises unless every share is mounted where it should be. */
void lshare_check(lua_State *L, struct lvm *v);
/* Raises "<op> of VM refused: ..." when v has shares (virtio-fs cannot migrate). */
void lshare_refuse(lua_State *L, struct lvm *v, const char *op);

#endif

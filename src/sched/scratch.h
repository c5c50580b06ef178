/* scratch.h - a run's scratch directory (VM sockets, consoles, snapshots),
 * and removing those that runs killed outright (SIGKILL, a power cut of the
 * CI container) left behind.
 *
 * Protocol:
 *   1. pv_scratch_sweep(parent, NULL): remove leftovers of dead runs.
 *   2. pv_scratch_create(parent, dir, sizeof(dir), &err): PARENT/provium-run-XXXXXX
 *      (mode 0700), with an owner record in it.
 *   3. ... runners put their VMs' directories under dir ...
 *   4. pv_scratch_remove(dir) at the end of the run.
 *
 * The owner record is DIR/.owner, one write of
 *   "provium-scratch 1\npid=PID\nstart=START\nboot=BOOT_ID\npidns=DEV:INO\n"
 * START is field 22 of /proc/PID/stat (clock ticks after boot) and tells a
 * reused pid from the owner; BOOT_ID is /proc/sys/kernel/random/boot_id; the
 * pid namespace is the one /proc/self/ns/pid names.
 *
 * A sweep removes PARENT/provium-run-* only when it is provably ours and
 * provably dead:
 *   - a real directory (not a symlink) owned by our euid, with a readable,
 *     well-formed .owner (a directory just made and not yet recorded, or one
 *     of an older provium, is kept);
 *   - and: recorded on another boot; or in our pid namespace with no process
 *     PID, or PID started at another time (reused). A record from another pid
 *     namespace (a container sharing the directory) is kept: its pids mean
 *     nothing here.
 * Errors while sweeping only keep things; nothing is ever reported.
 */
#ifndef PV_SCRATCH_H
#define PV_SCRATCH_H

#include <stddef.h>

#include "err.h"

#define PV_SCRATCH_PREFIX "provium-run-"

/* Makes the directory and its owner record; dir gets its path. 0 or a
 * negative errno with err set (the record failing removes the directory). */
int pv_scratch_create(const char *parent, char *dir, size_t len, struct pv_err *err);

/* Removes the leftovers of dead runs under parent, never keep (may be
 * NULL). Returns how many were removed. */
size_t pv_scratch_sweep(const char *parent, const char *keep);

/* Removes dir and everything under it (not following symlinks). */
void pv_scratch_remove(const char *dir);

#endif

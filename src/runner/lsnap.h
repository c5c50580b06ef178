/* lsnap.h - snapshots in the Lua API: vm:snapshot, vm:restore,
 * provium:snapshot, provium:restore, snap:size, snap:delete, and the VM side
 * of fixtures (docs/lua-api.md, "Snapshots", "Fixtures"). Implemented in
 * src/runner/lsnap.c (to move to src/runner/lsnap.c).
 *
 * A Snapshot is a file in the run's scratch directory (removed by the
 * scheduler at the end); its userdata owns only the path string (__gc).
 */
#ifndef PV_LSNAP_H
#define PV_LSNAP_H

#include <lua.h>
#include <stdbool.h>

#include "err.h"
#include "fcache.h"

struct fc_manifest;

/* Adds vm:snapshot / vm:restore to the VM methods table at index methods,
 * the Snapshot class, and provium:snapshot / provium:restore. */
void lsnap_install(lua_State *L, int methods);

/* The VMs of the Snapshot at idx (vm:snapshot() or provium:snapshot()) into
 * m->vms / m->lab / m->disks, their files into paths[0..m->nvms), a lab's
 * network (its bridges; none without) into paths[FC_MAX_VMS], and the copy of
 * disk j into paths[LSNAP_DISK_PATH + j] (NULL for a readonly image): malloc'd
 * strings the caller frees; paths has room for LSNAP_NPATHS, all NULL at
 * first. Returns 0, or negative with err saying what it is instead. */
#define LSNAP_DISK_PATH (FC_MAX_VMS + 1)
#define LSNAP_NPATHS (LSNAP_DISK_PATH + FC_MAX_DISKS)
int lsnap_parts(lua_State *L, int idx, struct fc_manifest *m, char **paths, struct pv_err *err);
/* The data bytes of m's disks as the guest wrote them (what snapshot_bytes
 * counts of them: their files' allocated blocks). */
uint64_t lsnap_disk_bytes(const struct fc_manifest *m);

/* Resumes the VMs of a cache entry as new VMs of L's current scope and
 * pushes them: the VM (rename_to, if given, names a single VM), or with
 * as_lab a table of VMs by name. Returns 1; 0 when the entry could not be
 * resumed (err says why; nothing is left running). A lab's bridges are made
 * in L first (with the fixture's addresses, rules and uplink; not its host
 * forwards). Raises for problems of the call (pool, names, a bridge name the
 * file already has). */
int lsnap_resume(lua_State *L, const struct fc_manifest *m, const char *entry_dir, const char *rename_to,
		 bool as_lab, struct pv_err *err);

#endif

/* lnet.h - bridges and NICs of the Lua API (lnet.c: bridges; lnet_vm.c: the
 * VM side; lnet_priv.h between them): provium:bridge, bridge:*, vm:ip,
 * vm:mac, vm:nic, nic:*, captures (docs/lua-api.md, "Networking").
 *
 * A bridge is one L2 segment of a lua_State: a scope resource (kind
 * SCOPE_BRIDGE, closed after the processes and before the VMs of its scope)
 * over a switch (src/net/switch.h) that lives on the runner's I/O loop
 * (rio.h); every call into the switch goes through rio_call. A bridge stays
 * in its state's table until the state closes, so the VMs' NICs can point
 * at it; a closed bridge keeps its members (for messages) but moves no frame.
 *
 * Addressing: the n-th bridge of a state gets 10.77.n.0/24 (or opts.subnet);
 * its k-th member (attach order, from 0) gets host .(11 + k) and the MAC
 * 52:54:00:77:nn:kk (hex of n and k + 1); .1 to .10 are reserved for
 * provium (an uplink gateway). A VM's NICs are eth0, eth1, ... in the order
 * it was attached to bridges.
 *
 * Boot protocol (lvm.c calls these for every boot and resume):
 *   1. lnet_boot_prepare: one socketpair per NIC of the VM, the switch's end
 *      on its port (replacing the end of an earlier QEMU of the VM), the
 *      other end for QEMU in nics[].
 *   2. vm_boot with those NICs, then lnet_boot_release closes QEMU's ends in
 *      the runner (whether the boot worked or not).
 *   3. After a fresh boot (not a resume: the guest kept its configuration),
 *      lnet_guest_setup configures the guest: addresses, links up, permanent
 *      neighbour entries for every member of its bridges (so a one-way cut
 *      stays one-way: no ARP has to cross it), /etc/hosts and its hostname.
 */
#ifndef PV_LNET_H
#define PV_LNET_H

#include <lua.h>

#include "err.h"
#include "lvm.h"
#include "vm.h"

/* provium:bridge into the provium table, the bridge, NIC and capture
 * classes, and vm:ip / vm:mac / vm:nic into the VM methods at methods. */
void lnet_install(lua_State *L, int methods);

/* 1. above; *n NICs filled (0: the VM is on no bridge). */
int lnet_boot_prepare(lua_State *L, struct lvm *v, struct vm_nic *nics, unsigned *n, struct pv_err *err);
/* 2. above. */
void lnet_boot_release(struct vm_nic *nics, unsigned n);
/* 3. above; raises when the guest refuses. */
void lnet_guest_setup(lua_State *L, struct lvm *v);

/* Captures started without a path (into the scratch directory): the runner
 * calls lnet_test_begin before each test, and lnet_keep_captures when one
 * fails, which keeps every such capture written during it (moved to the
 * capture directory; lua-api.md) and returns lines "capture kept: PATH" for
 * the failure's reason (malloc'd; NULL when there is none). */
void lnet_test_begin(void);

/* The name of a bridge the VM named vm_name is on (not detached), or NULL. */
const char *lnet_vm_bridge(lua_State *L, const char *vm_name);
char *lnet_keep_captures(void);

#endif

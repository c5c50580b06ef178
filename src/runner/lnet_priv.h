/* lnet_priv.h - what the parts of the networking bindings share:
 * lnet.c (bridges: making them, membership, partitions, impairments,
 * counters, snapshot state, the uplink), lnet_vm.c (the VM's side: its NICs
 * at boot and in the guest, vm:ip/mac/nic/forward, NIC objects, captures)
 * and lnet_fx.c (a lab fixture's network). Contract of the
 * whole in lnet.h. Internal to those files. */
#ifndef PV_LNET_PRIV_H
#define PV_LNET_PRIV_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "lvm.h"
#include "scope.h"
#include "switch.h"
#include "uplink.h"

struct pv_buf;

#define LNET_MAX_MEMBERS (SW_MAX_PORTS - 1)
#define LNET_UPLINK_PORT (SW_MAX_PORTS - 1) /* the switch port of the bridge's slirp (uplink.h) */
#define LNET_MAX_BRIDGES 254
#define BRIDGE_T "provium.bridge"
#define NIC_T "provium.nic"
#define CAPTURE_T "provium.capture"

struct member {
	struct lvm *vm; /* NULL: a free slot (detached before boot) */
	uint8_t mac[6];
	uint32_t ip; /* host order */
	uint8_t prefix;
	unsigned seq;       /* attach order in the state: the NIC order in the guest */
	unsigned nic;       /* eth<nic>, set at boot */
	bool detached;      /* bridge:detach of a running VM */
	bool link_down;     /* nic:disconnect */
	bool on_switch;     /* its port is on the switch */
};

struct lbridge {
	struct scope_res res; /* first: a scope resource */
	char *name;
	unsigned index; /* 1..LNET_MAX_BRIDGES */
	uint64_t seed;
	uint32_t net; /* host order */
	uint8_t prefix;
	struct sw *sw; /* NULL once closed */
	struct uplink *up; /* made by the first forward or enable_uplink; on the I/O loop */
	bool uplink;       /* enable_uplink was called */
	int nslots;
	struct member m[LNET_MAX_MEMBERS];
};

/* One call into a bridge's switch, run on the I/O loop by lnet_run_op. */
enum net_op {
	OP_NEW, OP_FREE, OP_PORT_ADD, OP_DETACH, OP_LINK, OP_CUT, OP_IS_CUT, OP_ISOLATE, OP_IS_ISOLATED, OP_HEAL,
	OP_SET_IMPAIR, OP_GET_IMPAIR, OP_RESET, OP_PORT_COUNTERS, OP_COUNTERS, OP_CAP_START, OP_CAP_STOP,
	OP_SAVE, OP_LOAD, OP_UPLINK, OP_FORWARD,
};

struct net_call {
	enum net_op op;
	struct lbridge *b;
	int a, c;   /* ports (or a capture id) */
	bool flag;
	int fd;
	const uint8_t *mac;
	const char *path;
	void *blob;
	size_t len;
	struct sw_impair imp;
	struct sw_counters cnt;
	uint64_t u;
};

/* For rio_call: runs c (a struct net_call) on the loop. */
int lnet_run_op(void *c, struct pv_err *err);
/* The same from the Lua thread; raises with the switch's message. */
int lnet_call(lua_State *L, struct net_call *c);

/* The bridge at idx (raises if none) / which must still be open. */
struct lbridge *lnet_check_bridge(lua_State *L, int idx);
struct lbridge *lnet_open_bridge(lua_State *L, int idx, const char *what);
/* The index of the attached member that is the VM (object or name) at idx; raises naming the members. */
int lnet_member_at(lua_State *L, struct lbridge *b, int idx, const char *what);
void lnet_fmt_ip(uint32_t ip, char *buf);   /* buf of 16 */
void lnet_fmt_mac(const uint8_t *m, char *buf); /* buf of 18 */
void lnet_push_counters(lua_State *L, const struct sw_counters *c);
/* Runs script with the guest's sh through v's agent; raises with its stderr
 * (what: for the message) unless it exits 0. */
void lnet_guest_exec(lua_State *L, struct lvm *v, const char *script, size_t len, const char *what);
/* The guest's shell lines that route through b's uplink on NIC eth<nic>
 * (the first default route wins; the DNS relay is added to resolv.conf). */
void lnet_uplink_lines(struct lbridge *b, unsigned nic, struct pv_buf *sh);

/* Pushes a new bridge (its switch made), registered under name in the
 * table at reg (the registry's provium.bridges). */
struct lbridge *lnet_bridge_new(lua_State *L, int reg, const char *name, unsigned index, uint64_t seed, uint32_t net,
				uint8_t prefix);
/* The attach order of members across bridges (per process). */
extern unsigned lnet_attach_seq;

/* lnet_fx.c's part of lnet_install: bridge:_describe / bridge:_close into
 * the bridge methods, provium._bridge_restore (lab fixtures' networks). */
void lnet_fx_install(lua_State *L, int bridge_methods);

/* lnet_vm.c's part of lnet_install: "nic" and "capture" into the bridge
 * methods at bridge_methods, the NIC and capture classes, vm:ip/mac/nic into
 * the VM methods at vm_methods. */
void lnet_vm_install(lua_State *L, int bridge_methods, int vm_methods);

#endif

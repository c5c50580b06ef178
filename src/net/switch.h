/* switch.h - provium's virtual Ethernet switch: one per bridge of a test file.
 *
 * A port is one guest NIC. Its other end is a QEMU `-netdev dgram` on one end
 * of an AF_UNIX SOCK_DGRAM socketpair: one datagram is one Ethernet frame (no
 * FCS, no length prefix). The switch owns the port's fd from sw_port_add on.
 *
 * Threading: a switch lives on one libev loop and every function here must be
 * called on the thread running that loop (in the runner, through rio_call;
 * in the unit tests, the test's own loop). Nothing blocks: reads and writes
 * are non-blocking, delays are timers.
 *
 * Forwarding, for each frame received on port P (the "ingress"):
 *   1. Counted as P's tx (what the guest sent); bridge captures and P's
 *      captures record it now, as received.
 *   2. Destinations: the port whose MAC is the destination MAC (ports'
 *      assigned MACs are known; source MACs are also learned, newest wins),
 *      or every other port for broadcast, multicast and unknown unicast.
 *   3. Per destination port D, in this order: P or D detached or its link
 *      down -> dropped; the direction P->D cut (partition or isolation) ->
 *      dropped; then the impairment rules that match P->D, the bridge-wide
 *      rule first, then the (P, D) rule (they stack: 50 ms bridge + 20 ms on
 *      the pair = 70 ms). A rule, in order: drop (pct), corrupt (one random
 *      bit of the copy flipped), duplicate (a second copy), bandwidth (token
 *      bucket: the frame waits for its turn; a queue past SW_QUEUE_MAX frames
 *      for the direction drops the frame), latency + jitter (uniform in
 *      [-jitter, +jitter], never below 0), reorder (that share of frames gets
 *      an extra SW_REORDER_DELAY_US, so later frames overtake them).
 *   4. Delivered to D (counted as D's rx; D's captures record it then). A
 *      frame D's socket cannot take (EAGAIN) waits in D's output queue, up to
 *      SW_QUEUE_MAX frames; past that it is dropped.
 *   Every drop is counted once, on the destination port's `drops` (and the
 *   bridge's), and never appears in a capture taken after the drop point.
 *
 * Randomness: each rule has its own PRNG seeded from (bridge seed, from, to)
 * and advanced only by the frames that rule sees, so the same frames in the
 * same order get the same fate in every run.
 *
 * Port ids are the caller's small integers (the runner uses one per VM on
 * this bridge); SW_ANY in a rule or cut means every port.
 */
#ifndef PV_SWITCH_H
#define PV_SWITCH_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct ev_loop;
struct sw;

#define SW_ANY (-1)
#define SW_QUEUE_MAX 1024
#define SW_REORDER_DELAY_US 10000u
#define SW_MAX_PORTS 64
#define SW_FRAME_MAX 65536 /* virtio-net without GSO sends <= 1514; leave room for jumbo */

/* An impairment rule. Zero values mean "not impaired" for that field. */
struct sw_impair {
	uint32_t latency_us, jitter_us;
	double drop_pct, duplicate_pct, reorder_pct, corrupt_pct; /* 0..100 */
	uint64_t bandwidth_bps; /* bits per second; 0: unlimited */
};

struct sw_counters {
	uint64_t tx_packets, tx_bytes; /* sent by the port's guest, as received by the switch */
	uint64_t rx_packets, rx_bytes; /* delivered to the port's guest */
	uint64_t drops;                /* frames for this port the switch dropped (any reason) */
};

/* name: for messages. seed: the bridge's seed. NULL on out of memory. */
struct sw *sw_new(struct ev_loop *loop, const char *name, uint64_t seed);
/* Stops every capture (flushing it), closes every port's fd, frees. */
void sw_free(struct sw *sw);

/* Adds port id (0 <= id < SW_MAX_PORTS, not in use) with its assigned MAC;
 * fd is made non-blocking and owned by the switch from now on, also on error. */
int sw_port_add(struct sw *sw, int id, const uint8_t mac[6], int fd, struct pv_err *err);
/* Forgets port id (closing its fd; a new QEMU of the VM is added again with
 * sw_port_add); its rules and cuts stay. No-op for an unknown id. */
void sw_port_remove(struct sw *sw, int id);
/* Detached: stays known (its counters too) but exchanges no frames. */
void sw_port_detach(struct sw *sw, int id);
/* Link state as the switch sees it (the runner also tells QEMU). */
void sw_port_set_link(struct sw *sw, int id, bool up);
int sw_port_counters(struct sw *sw, int id, struct sw_counters *out); /* -ENOENT */
void sw_counters(struct sw *sw, struct sw_counters *out); /* the bridge's totals */

/* Directed cut from -> to (either may be SW_ANY). cut=false heals it.
 * Isolation is a separate flag per port: isolated ports exchange nothing,
 * and unisolating restores the cuts that were there. */
void sw_cut(struct sw *sw, int from, int to, bool cut);
bool sw_is_cut(struct sw *sw, int from, int to); /* this direction, cut or isolated */
void sw_isolate(struct sw *sw, int id, bool isolated);
bool sw_is_isolated(struct sw *sw, int id);
void sw_heal_all(struct sw *sw); /* no cuts, no isolation */

/* Replaces the rule for from -> to (SW_ANY, SW_ANY: the bridge-wide rule;
 * (SW_ANY, D) or (P, SW_ANY) are not rules of their own: the runner expands
 * them). A rule of all zeros removes it. */
void sw_set_impair(struct sw *sw, int from, int to, const struct sw_impair *rule);
/* The rule as set (all zeros when none). */
void sw_get_impair(struct sw *sw, int from, int to, struct sw_impair *out);
/* Removes every impairment rule (frames already delayed still arrive). */
void sw_reset_impair(struct sw *sw);

/* The switch's rules as a blob (cuts, isolation, impairment rules; not its
 * ports, counters or frames in flight), for lab snapshots: sw_state_save
 * returns a malloc'd blob and its size; sw_state_load puts those rules back
 * (a blob that is not one is refused with -EINVAL; it may come from a file,
 * so it is checked). */
void *sw_state_save(struct sw *sw, size_t *len);
int sw_state_load(struct sw *sw, const void *blob, size_t len);

/* Starts a pcap capture (libpcap, LINKTYPE_ETHERNET, snaplen SW_FRAME_MAX)
 * into path (created, truncated): port = SW_ANY for the bridge (every frame
 * at ingress), or one port (its ingress and its deliveries). Returns a
 * capture id >= 0, or a negative errno with err set. */
int sw_capture_start(struct sw *sw, int port, const char *path, struct pv_err *err);
/* Flushes and closes; returns the number of frames written. */
uint64_t sw_capture_stop(struct sw *sw, int cap);

#endif

/* uplink.h - a bridge's way out: libslirp (QEMU's user-mode network stack,
 * as a library) on one port of the bridge's switch. It serves two things:
 *
 *   - host forwards: a TCP listener on 127.0.0.1 (and nowhere else) whose
 *     connections slirp carries to a guest's address and port on the bridge;
 *   - the uplink (NAT to the host's own network), when unrestricted: guests
 *     that route through the gateway reach what the host reaches, with DNS
 *     relayed to the host's resolver.
 *
 * Restricted (the default, until bridge:enable_uplink), slirp drops every
 * connection a guest opens, so a forward gives no way out.
 *
 * On the bridge's subnet slirp is two addresses: the gateway at net+2 (also
 * the source of every forwarded connection, and the host's loopback when
 * unrestricted) and DNS at net+3; its MAC is 52:55 followed by the gateway's
 * IPv4 address (what slirp puts on its frames). No DHCP: provium assigns
 * addresses.
 *
 * The switch side is an ordinary port: fd is one end of an AF_UNIX
 * SOCK_DGRAM socketpair whose other end the caller adds to the switch with
 * uplink_mac(), so partitions, impairments and captures apply to it like to
 * any NIC.
 *
 * Threading: like the switch, everything here runs on the thread of the
 * libev loop it was made on (the runner's I/O loop). Slirp's sockets, timers
 * and the fd are watchers of that loop (prepare/check watchers around each
 * poll, as libev's documentation does for foreign poll-based libraries).
 */
#ifndef PV_UPLINK_H
#define PV_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct ev_loop;
struct uplink;

/* net/prefix: the bridge's IPv4 subnet (host order). fd: owned from now on,
 * also on error. NULL with err set on failure. */
struct uplink *uplink_new(struct ev_loop *loop, const char *name, uint32_t net, uint8_t prefix, int fd,
			  struct pv_err *err);
/* Closes every forward's listener and connection, and fd. */
void uplink_free(struct uplink *u);

/* The MAC slirp sends from (for the switch port). */
void uplink_mac(const struct uplink *u, uint8_t mac[6]);
uint32_t uplink_gateway(const struct uplink *u); /* net+2 */
uint32_t uplink_dns(const struct uplink *u);     /* net+3 */

/* Lifts the restriction (idempotent). Slirp cannot change it in place, so
 * the stack is made anew: the forwards are kept (same host ports),
 * connections open through them are dropped. */
int uplink_unrestrict(struct uplink *u, struct pv_err *err);
bool uplink_unrestricted(const struct uplink *u);

/* A TCP forward 127.0.0.1:<port> -> guest_ip:guest_port (host order); the
 * host port is chosen free; the same guest address and port again return the
 * same forward. */
int uplink_forward(struct uplink *u, uint32_t guest_ip, uint16_t guest_port, uint16_t *host_port,
		   struct pv_err *err);

#endif

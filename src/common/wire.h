/* wire.h - constants of the guest wire protocol (docs/wire.md), shared by the
 * host's agent client and the guest agent. */
#ifndef PV_WIRE_H
#define PV_WIRE_H

#define PV_WIRE_VERSION 1
#define PV_WIRE_PORT_NAME "org.provium.agent.0"
#define PV_WIRE_OUTPUT_CAP (16u * 1024u * 1024u)
#define PV_WIRE_READ_CAP (64u * 1024u * 1024u)
#define PV_WIRE_MAX_PROCS 64

#endif

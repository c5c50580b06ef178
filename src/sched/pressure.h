/* pressure.h - the host's memory pressure (PSI), which the scheduler reads
 * on a 1 Hz timer to hold back dispatching (docs/design.md, "Pool and
 * pressure").
 *
 * Memory only: cpus are the pool's to share out, and on a small host TCG
 * guests keep cpu pressure high all the time, which would serialise every
 * run (measured: a 2-core host ran one file at a time).
 *
 * $PROVIUM_PSI_DIR stands in for /proc/pressure: tests drive back-off with
 * it. Nothing here prints. */
#ifndef PV_PRESSURE_H
#define PV_PRESSURE_H

/* The "some avg10" percentage of memory pressure into *ret: 0, or a negative
 * errno when PSI cannot be read here (no /proc/pressure: -ENOENT; a file
 * that does not start with "some avg10=": -EBADMSG). */
int pressure_memory_avg10(double *ret);

#endif

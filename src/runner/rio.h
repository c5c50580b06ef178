/* rio.h - the runner's I/O loop: one libev loop, on a thread of its own, that
 * serves the I/O of every long-lived guest resource (the switch behind each
 * bridge; later host forwards, streams, NBD exports) whatever the Lua thread
 * is doing: running Lua, waiting for an agent answer, decompressing a
 * snapshot. docs/design.md ("The runner's I/O loop") says why a thread.
 *
 * Contract:
 *   - Everything registered on rio_loop() is touched only on the loop thread.
 *     The Lua thread reaches it through rio_call(fn, arg), which runs fn(arg)
 *     there and blocks until it returns; objects living on the loop need no
 *     locks of their own.
 *   - The loop starts on the first rio_call and runs until rio_stop() (the
 *     runner's exit). A process that never makes a bridge has no such thread.
 *   - The thread blocks every signal: they stay the Lua thread's business.
 */
#ifndef PV_RIO_H
#define PV_RIO_H

#include "err.h"

struct ev_loop;

/* Runs fn(arg) on the loop thread and returns its result; starts the loop
 * first if needed (-errno with err set when the thread cannot start). Called
 * on the loop thread itself, it runs fn directly. */
int rio_call(int (*fn)(void *arg, struct pv_err *err), void *arg, struct pv_err *err);
/* The loop (valid inside a function run by rio_call). */
struct ev_loop *rio_loop(void);
/* Stops the loop and joins its thread. What is still registered is left as
 * it is: the process is about to exit. */
void rio_stop(void);

#endif

/* watch.h - provium --watch's pause between runs: waits on the process's
 * event loop for a change under the roots, or for an interrupt.
 *
 * While it waits the loop keeps serving whatever else is registered on it
 * (the event socket: a consumer that connects in the pause is sent the last
 * run at once). */
#ifndef PV_WATCH_H
#define PV_WATCH_H

#include <stddef.h>

#include <ev.h>

/* Returns 1 after a change under the roots followed by WATCH_QUIET_MS
 * without another (a save that writes several files is one change), 0 to
 * stop: an interrupt read from sfd (*signo = the signal), or no inotify
 * (*signo = 0). Directories are watched to a depth of 32; hidden ones are
 * skipped. */
#define WATCH_QUIET_MS 200
int watch_wait(struct ev_loop *loop, char **roots, size_t nroots, int sfd, int *signo);

#endif

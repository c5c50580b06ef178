/* lbarrier.h - provium:barrier(name, count, timeout?) (docs/lua-api.md,
 * "Barriers"): a rendezvous of `count` callers across the files of one
 * provium run. Each file is a runner process of its own, so the barrier is
 * kept in the run's scratch directory, which every runner of the run shares
 * (runner_env()->scratch), not in a daemon:
 *
 *   <scratch>/barriers/<name>/lock       flock(2)ed around every change
 *   <scratch>/barriers/<name>/count      the count the first call fixed
 *   <scratch>/barriers/<name>/round      the round now filling (0 if absent)
 *   <scratch>/barriers/<name>/r<N>/<pid>.<start time>   one per arrival
 *
 * An arrival takes the lock, counts the arrivals of the current round whose
 * process still lives (pid and /proc start time: a runner that died, or a
 * reused pid, counts for nothing and its file goes), and adds its own. The
 * one that makes `count` advances `round` (rename, so readers see one value)
 * and removes the round's files: every waiter of that round returns true.
 * The others wait on inotify of the barrier's directory (and a 0.5 s
 * recheck) for `round` to move on, until their timeout, when they take
 * their arrival back under the lock (unless the round completed meanwhile:
 * then they return true), or until the test's meta.timeout, which withdraws
 * the same way and fails the test. The lock dies with its holder. */
#ifndef PV_LBARRIER_H
#define PV_LBARRIER_H

#include <lua.h>

/* provium:barrier into the provium table at idx. */
void lbarrier_install(lua_State *L, int idx);

#endif

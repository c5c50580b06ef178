/* select.h - which discovered test files (and tests) a run or provium list
 * takes beyond --filter: --since REF (since.h) and --rerun-failed
 * (lastfail.h), and the record of every run that --rerun-failed reads.
 *
 * Protocol, per run: pv_discover(); sel_apply(); the run, its events fed to
 * lf_run_event(); sel_record(); pv_discovery_release(). */
#ifndef PV_SELECT_H
#define PV_SELECT_H

#include <stdbool.h>

#include "cmd.h"
#include "lastfail.h"

#define SEL_NOTHING 1 /* sel_apply: nothing selected (the line saying so printed); exit 0 */

/* Applies c->o's --since and --rerun-failed to d: the files they leave out
 * are released, and with --rerun-failed each kept file gets its `only`
 * tests (none for a file that failed whole). 0, SEL_NOTHING, or
 * CLI_EXIT_USAGE (printed: an unknown ref, no cache directory). Notices (no
 * record yet, what is rerun) go to stderr. */
int sel_apply(const struct cmd_ctx *c, struct pv_discovery *d);

/* Merges what run saw (lf_run_event) into the record of each root of d's
 * files, unless there is nowhere to keep it (no cache directory) or the run
 * was no run of test files (provium fixture build, provium repl). A record
 * that cannot be written is a notice on stderr, not a failure. */
void sel_record(const struct cmd_ctx *c, const struct pv_discovery *d, const struct lf_state *run, bool interrupted);

#endif

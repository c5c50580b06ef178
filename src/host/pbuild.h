/* pbuild.h - profiles that build themselves: a profile's `build` command
 * (config.h) runs before any VM boots, in the current directory, with its
 * output on the terminal (docs/config.md). It is cached: a stamp in
 * build_out holds the hash of the command, build_out and the paths, sizes
 * and mtimes of everything under build_inputs (build_out itself left out);
 * the same hash and the outputs still there is a cache hit. */
#ifndef PV_PBUILD_H
#define PV_PBUILD_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "err.h"

/* The build's cache key as hex into hex (len >= 17). 0 or -errno (an input
 * that is not there, named in err). */
int pbuild_key(const struct pv_profile *p, char *hex, size_t len, struct pv_err *err);
/* Runs p's build unless it is cached (force: even then), its lines and the
 * command's output on log: 0 built, 1 nothing to do (no build, or cached),
 * or -errno with err saying what failed (the command's status, an output
 * it did not make). */
int pbuild_run(const struct pv_profile *p, bool force, FILE *log, struct pv_err *err);

#endif

/* cmd.h - provium's subcommands, one file each (crun-style: main.c parses,
 * resolves the settings and dispatches; each command is a function over the
 * library that returns provium's exit status). One header for all of them
 * because they share one contract: what main resolved, in, an exit status
 * out, every message printed by the command itself.
 *
 *   cmd_list.c     provium list
 *   cmd_fixture.c  provium fixture list|stale|clean (cmd_fixture_admin), and
 *                  the fixtures that provium fixture build|rebuild builds as
 *                  the files of a run (cmd_fixture_jobs)
 *   cmd_image.c    provium image list|build|clean, and the profile builds
 *                  and images a run makes before its first file
 *                  (cmd_image_prepare; provium prepare runs them alone)
 *   cmd_repl.c     the one-test file that provium repl runs (cmd_repl_jobs), provium shell's checks
 *   cmd_run.c      a run, or runs under --watch (watch.h), with its outputs;
 *                  provium shell is a run with the prompt after one test
 *   cmd_lsp.c      provium lsp-setup: editor annotations of the Lua API
 *   cmd_console.c  provium console PROFILE: a booted VM's serial console on
 *                  the terminal, or --print-command: its QEMU command line */
#ifndef PV_CMD_H
#define PV_CMD_H

#include <stddef.h>

#include "cli.h"
#include "config.h"
#include "discover.h"
#include "scheduler.h"

/* What main resolved for every command. so is filled by settings_sched and
 * settings_cache (cache_dir, if usable); roots by settings_roots. */
struct cmd_ctx {
	const struct cli_opts *o;
	const struct pv_config *cfg;
	char **roots;
	size_t nroots;
	struct pv_sched_opts *so;
	const char *cache_dir; /* "" if unusable; provium fixture refuses that before */
};

int cmd_list(const struct cmd_ctx *c);
int cmd_fixture_admin(const struct cmd_ctx *c);
/* 0 with *d holding one "file" per fixture argument (pv_discovery_release),
 * or CLI_EXIT_USAGE (printed, nothing held). */
int cmd_fixture_jobs(const struct cmd_ctx *c, struct pv_discovery *d);
/* A fixture given as a path (tests/db/seeded.fixture.lua) or a root-relative
 * name (db/seeded): its name and the root it is under; 0, or CLI_EXIT_USAGE
 * (printed). */
int cmd_fixture_name(const char *arg, const char *const *roots, size_t nroots, char *name, size_t len,
		     const char **root);
/* provium repl: d gets the one file, written into a new directory dir (the
 * caller removes it), whose test boots the VM and pauses; 0, or
 * CLI_EXIT_USAGE (printed, nothing held). */
int cmd_repl_jobs(const struct cmd_ctx *c, struct pv_discovery *d, char *dir, size_t dirlen);
/* provium shell FILE --at TEST, before it runs: a terminal, and TEST among
 * FILE's tests (when they all have literal names); 0 or CLI_EXIT_USAGE. */
int cmd_shell_check(const struct cmd_ctx *c);
int cmd_run(const struct cmd_ctx *c);
int cmd_image(const struct cmd_ctx *c);
/* provium console: after provium.lua is read, before the run's settings
 * (its --mem and --cpus are the VM's, not the pool's); its exit status. */
int cmd_console(const struct cmd_ctx *c);
/* Before provium.lua is read (lsp-setup needs none); its exit status. */
int cmd_lsp_setup(const struct cli_opts *o);
/* Builds every Debian profile's image not built yet, progress on stderr;
 * 0, or the exit status to end the run with (the error printed). */
int cmd_image_prepare(const struct pv_config *cfg);
/* provium prepare [--force] [PROFILE...]: what a run does before its first
 * VM boots (profile builds, Debian images), alone; its exit status. */
int cmd_prepare(const struct cmd_ctx *c);

#endif

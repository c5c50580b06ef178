/* cli.h - provium's command line: the options as given, their first checks,
 * --help and --version.
 *
 * Protocol: struct cli_opts o = { 0 }; rc = cli_parse(argc, argv, &o);
 * rc is 0 to go on, or the exit status to end with (a usage error already
 * printed, or CLI_DONE after --help/--version); in every case
 * cli_release(&o) afterwards. The strings in o point into argv; only the
 * arrays are o's. Only the top level of provium prints: this module is part
 * of it, and cli_fail is how every subcommand reports a usage error. */
#ifndef PV_CLI_H
#define PV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_EXIT_USAGE 2
/* cli_parse: --help or --version printed; exit 0 */
#define CLI_DONE (-1)

struct cli_opts {
	const char *config;
	const char *mem, *cpus, *overcommit, *vcpus, *timeout, *psi;
	const char *filter;
	const char *jobs; /* --jobs N */
	char **tags, **no_tags;
	size_t ntags, nno_tags;
	bool include_slow, fail_fast, json, events_stdout, watch, list;
	int verbosity; /* enum pv_verbosity */
	const char *save_events, *events_socket;
	const char *junit, *json_summary; /* --junit PATH, --json-summary PATH: reports written when the run ends */
	const char *cache_dir;
	const char *fixture_cmd; /* provium fixture CMD: list, build, rebuild, clean, stale */
	bool stale_only;         /* provium fixture clean --stale */
	const char *image_cmd;   /* provium image CMD: list, build, clean */
	bool force, all, unused; /* provium image build / prepare --force, clean --all / --unused */
	bool prepare;            /* provium prepare [--force] [PROFILE...] (cmd_image.c) */
	const char *interactive_cmd; /* provium repl / provium shell (cmd_repl.c) */
	const char *repl_profile, *repl_fixture, *repl_name; /* provium repl [PROFILE] --fixture NAME --name VM */
	const char *at;              /* provium shell --at TEST */
	bool console;                /* provium console PROFILE (cmd_console.c); --mem/--cpus are the VM's */
	const char *console_profile, *console_cmdline; /* its PROFILE, --cmdline STR */
	bool print_command;          /* --print-command: the QEMU command, no VM */
	bool debug;                  /* --debug: t:pause() stops at a prompt */
	char **tag_meta, **no_tag_meta; /* --tag-meta / --no-tag-meta KEY=VALUE (checked: KEY non-empty) */
	size_t ntag_meta, nno_tag_meta;
	bool rerun_failed;      /* --rerun-failed */
	const char *since;      /* --since REF */
	bool coverage;          /* --coverage: the report after the run */
	const char *coverage_by; /* --by KEY (with --coverage; default spec) */
	bool no_progress;       /* --no-progress */
	bool cold_boot;         /* --cold-boot: PROVIUM_COLD_BOOT=1 for the runners (ltemplate.h) */
	bool list_tests, list_fixtures; /* provium list --tests / --fixtures */
	bool lsp_setup;                 /* provium lsp-setup [--force] [DIR] (cmd_lsp.c; force above) */
	const char *lsp_dir;            /* its DIR, NULL for the current directory */
	char **paths;
	size_t npaths;
};

int cli_parse(int argc, char **argv, struct cli_opts *o);
void cli_release(struct cli_opts *o);

/* provium fixture build / rebuild: the paths are fixtures, not roots. */
bool cli_fixture_build(const struct cli_opts *o);

void cli_usage(FILE *f);
/* "provium: MESSAGE" on stderr; returns CLI_EXIT_USAGE. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

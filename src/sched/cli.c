/* cli.c - the command line's options (cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "event.h"
#include "mpr.h"
#include "render.h"

bool cli_fixture_build(const struct cli_opts *o)
{
	return o->fixture_cmd && (!strcmp(o->fixture_cmd, "build") || !strcmp(o->fixture_cmd, "rebuild"));
}

void cli_release(struct cli_opts *o)
{
	free(o->tags);
	free(o->no_tags);
	free(o->tag_meta);
	free(o->no_tag_meta);
	free(o->paths);
	o->tags = o->no_tags = o->tag_meta = o->no_tag_meta = o->paths = NULL;
	o->ntags = o->nno_tags = o->ntag_meta = o->nno_tag_meta = o->npaths = 0;
}

void cli_usage(FILE *f)
{
	fputs("usage: provium [OPTIONS] [PATH...]       run *.test.lua files under PATH (default: config roots, tests/, .)\n"
	      "       provium list [OPTIONS] [PATH...]  list the test files that would run\n"
	      "       provium list --tests|--fixtures   every test with its tags and meta / every fixture, its key, cached?\n"
	      "       provium fixture list|stale        list cached fixtures (stale: no longer any fixture's key)\n"
	      "       provium fixture build|rebuild FIXTURE...  build (rebuild: even if cached) fixtures now\n"
	      "       provium fixture clean [--stale]   delete every cached fixture (or only the stale ones)\n"
	      "       provium repl [PROFILE] [--fixture NAME] [--name VM]  a Lua prompt with a booted (or resumed) VM\n"
	      "       provium shell FILE --at TEST       run FILE, stop at a prompt after TEST's body with its VMs\n"
	      "       provium console PROFILE [--mem SIZE] [--cpus N] [--cmdline STR] [--print-command]\n"
	      "                                         a booted VM's serial console (a shell) on the terminal, Ctrl-]\n"
	      "                                         leaves; --print-command: print its QEMU command line, boot none\n"
	      "       provium prepare [--force] [PROFILE...]  run profiles' builds and build their Debian images now\n"
	      "                                         (what a run does before its first VM; all profiles by default)\n"
	      "       provium image list                the guest images: built-in and Debian profiles' (built or not)\n"
	      "       provium image build [--force] [PROFILE...]  build Debian profiles' images (all by default)\n"
	      "       provium image clean PROFILE...|--unused|--all  delete those profiles' Debian images, or\n"
	      "                                         those no profile of provium.lua uses, or all of them\n"
	      "       provium lsp-setup [--force] [DIR]  editor support: the test API's lua-language-server annotations\n"
	      "                                         in DIR/.provium-meta, and DIR/.luarc.json (merged; --force replaces)\n"
	      "\n"
	      "Selection:\n"
	      "  --filter SUBSTR        only files whose root-relative path contains SUBSTR\n"
	      "  --tag TAG              only tests tagged TAG (repeatable: any of them)\n"
	      "  --no-tag TAG           skip tests tagged TAG (repeatable)\n"
	      "  --include-slow         run tests with meta slow = true\n"
	      "  --tag-meta KEY=VALUE   only tests whose meta KEY is VALUE (as a string; repeatable: any of them)\n"
	      "  --no-tag-meta KEY=VALUE  skip tests whose meta KEY is VALUE (repeatable)\n"
	      "  --rerun-failed         only the tests that failed (or whose file crashed) in the last run\n"
	      "  --since REF            only files changed (with their helpers and fixtures) since git REF, or\n"
	      "                         since the file REF was modified\n"
	      "Execution:\n"
	      "  --config PATH          configuration file (default: ./provium.lua if present)\n"
	      "  --mem SIZE             pool memory (default: 80% of MemTotal)\n"
	      "  --cpus N               pool cpus (default: online cpus)\n"
	      "  --cpu-overcommit X     multiply pool cpus by X (default 1.0)\n"
	      "  --vcpus N              VM vCPUs of all files at once (default: 4 x pool cpus)\n"
	      "  --timeout DURATION     ceiling on every file's timeout (default file timeout 5m)\n"
	      "  --psi-threshold PCT    pause dispatching while host memory PSI some-avg10 exceeds PCT (default 10; 0: never)\n"
	      "  -x, --fail-fast        stop dispatching files after the first failure\n"
	      "  --jobs N               run at most N files at once (default: as many as the pool holds)\n"
	      "  --watch                re-run when a file under the roots changes\n"
	      "  --debug                t:pause() stops at a Lua prompt with the test's VMs (one file at a time)\n"
	      "  --cold-boot            every VM boots its kernel: no VM resumes its profile's booted template\n"
	      "  --cache-dir DIR        fixture cache (default: $PROVIUM_CACHE_DIR, cache_dir, ~/.cache/provium/fixtures)\n"
	      "Output:\n"
	      "  -v, --verbose          also list passed and skipped tests\n"
	      "  -q, --quiet            only failures and the summary\n"
	      "  --no-progress          no live progress line, even on a terminal\n"
	      "  --coverage [--by KEY]  after the run, its tests counted per value of meta KEY (default spec)\n"
	      "  --json                 JSON Lines of every event on stdout, then a summary object\n"
	      "  --junit PATH           when the run ends, a JUnit XML report to PATH (a testsuite per file)\n"
	      "  --json-summary PATH    when the run ends, one JSON object per file to PATH (JSON Lines)\n"
	      "  --save-events PATH     append the event stream (msgpack frames) to PATH\n"
	      "  --events-stdout        the event stream on stdout (human output moves to stderr)\n"
	      "  --events-socket PATH   serve the event stream on a unix socket (mode 0600)\n"
	      "  --version              print the version\n"
	      "  -h, --help             this help\n"
	      "Exit status: 0 all passed or skipped, 1 a test or file failed, 2 usage/config/infrastructure error,\n"
	      "128+N interrupted by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP).\n",
	      f);
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;
	fputs("provium: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_USAGE;
}

static int push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(*p));
	if (!p)
		return cli_fail("out of memory");
	p[(*n)++] = (char *)s;
	*v = p;
	return 0;
}

/* The command of `provium argv[1] CMD`: argv[2] if it is one of cmds
 * (NULL-terminated), else NULL after saying which there are. */
static const char *subcommand(int argc, char **argv, const char *const *cmds)
{
	char list[200] = "";
	size_t o = 0, n = 0;
	for (; cmds[n]; n++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", n ? ", " : "", cmds[n]);
	if (argc < 3 || argv[2][0] == '-') {
		cli_fail("provium %s needs a command: %s (see --help)", argv[1], list);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[2], cmds[i]) == 0)
			return cmds[i];
	cli_fail("unknown %s command '%s' (commands: %s)", argv[1], argv[2], list);
	return NULL;
}

/* provium lsp-setup [--force] [DIR]: arguments of its own, none of a run's
 * (it reads no provium.lua either). */
static int parse_lsp_setup(int argc, char **argv, struct cli_opts *o)
{
	bool operands = false; /* after "--" */
	o->lsp_setup = true;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!operands && !strcmp(a, "--"))
			operands = true;
		else if (!operands && !strcmp(a, "--force"))
			o->force = true;
		else if (!operands && (!strcmp(a, "-h") || !strcmp(a, "--help")))
			return cli_usage(stdout), CLI_DONE;
		else if (!operands && a[0] == '-' && a[1])
			return cli_fail("provium lsp-setup takes [--force] [DIR], not %s", a);
		else if (o->lsp_dir)
			return cli_fail("provium lsp-setup takes one directory, got '%s' and '%s'", o->lsp_dir, a);
		else
			o->lsp_dir = a;
	}
	return 0;
}

/* provium console PROFILE [--mem SIZE] [--cpus N] [--cmdline STR]
 * [--print-command]: its operands and flags; 0 or CLI_EXIT_USAGE. */
static int check_console(struct cli_opts *o, int nargs, char **args)
{
	static const char usage[] = "provium console PROFILE [--mem SIZE] [--cpus N] [--cmdline STR] [--print-command]";
	if (!o->console)
		return (o->console_cmdline || o->print_command)
			       ? cli_fail("%s goes with %s", o->console_cmdline ? "--cmdline" : "--print-command", usage)
			       : 0;
	if (nargs != 1)
		return cli_fail("console takes one profile, got %d arguments (%s)", nargs, usage);
	if (o->list || o->watch || o->filter || o->debug || o->json || o->save_events || o->events_stdout ||
	    o->events_socket || o->ntags || o->nno_tags || o->overcommit || o->vcpus || o->timeout || o->jobs ||
	    o->coverage || o->rerun_failed || o->since || o->fail_fast || o->psi || o->cache_dir || o->junit ||
	    o->json_summary)
		return cli_fail("console takes only --mem, --cpus, --cmdline, --print-command and --config (%s)", usage);
	o->console_profile = args[0];
	return 0;
}

/* The directory part of a report's path ("." for none). */
static void report_dir(const char *path, char *dir, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, size, ".");
	else if (slash == path)
		snprintf(dir, size, "/");
	else
		snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* What names a report file: its directory's real path and its name, so
 * "a/r.xml" and "./a/../a/r.xml" are one file; "" if the directory is not
 * there (check_report says so). */
static void report_key(const char *path, char *key, size_t size)
{
	const char *slash = strrchr(path, '/');
	char dir[4096], real[PATH_MAX];

	report_dir(path, dir, sizeof(dir));
	if (!realpath(dir, real))
		key[0] = '\0';
	else
		snprintf(key, size, "%s/%s", real, slash ? slash + 1 : path);
}

/* A report's PATH can be written when the run ends: checked before anything
 * runs, so a typo does not cost a whole run. */
static int check_report(const char *flag, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	struct stat st;

	if (!*path || (slash && !slash[1]))
		return cli_fail("%s needs a file path, e.g. %s report.%s", flag, flag, strcmp(flag, "--junit") ? "jsonl" : "xml");
	if (path[0] == '-')
		return cli_fail("%s %s: looks like an option, not a file path (./%s for a file so named)", flag, path, path);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cli_fail("%s %s: is a directory; give a file path inside it", flag, path);
	report_dir(path, dir, sizeof(dir));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return cli_fail("%s %s: directory %s does not exist; create it first", flag, path, dir);
	if (access(dir, W_OK | X_OK) < 0)
		return cli_fail("%s %s: cannot create files in %s (%s); choose a writable directory", flag, path, dir,
				  strerror(errno));
	return 0;
}

/* --junit, --json-summary and --save-events name three different files. */
static int check_reports(const struct cli_opts *o)
{
	const char *flags[] = { "--junit", "--json-summary", "--save-events" };
	const char *paths[] = { o->junit, o->json_summary, o->save_events };
	char keys[3][PATH_MAX + 256];
	int rc;

	if ((o->junit && (rc = check_report("--junit", o->junit))) ||
	    (o->json_summary && (rc = check_report("--json-summary", o->json_summary))))
		return rc;
	for (int i = 0; i < 3; i++)
		if (paths[i])
			report_key(paths[i], keys[i], sizeof(keys[i]));
	for (int i = 0; i < 2; i++)
		for (int k = i + 1; k < 3; k++)
			if (paths[i] && paths[k] && keys[i][0] && !strcmp(keys[i], keys[k]))
				return cli_fail("%s and %s both name %s; give each its own file", flags[i], flags[k], paths[k]);
	return 0;
}

/* The selection, run and list flags of issue 15 against the command they
 * came with; 0 or CLI_EXIT_USAGE (printed). */
static int check_selection(const struct cli_opts *o)
{
	/* what runs tests: a run (also provium shell) or provium fixture build */
	bool run = !o->list && !o->image_cmd && !o->interactive_cmd && (!o->fixture_cmd || cli_fixture_build(o));
	bool plain = run && !o->fixture_cmd; /* a run of test files */

	for (size_t i = 0; i < o->ntag_meta + o->nno_tag_meta; i++) {
		bool pos = i < o->ntag_meta;
		const char *v = pos ? o->tag_meta[i] : o->no_tag_meta[i - o->ntag_meta], *eq = strchr(v, '=');
		char shown[512];
		if (!eq || eq == v)
			return cli_fail("%s \"%s\": expected KEY=VALUE, a meta key and the value it must have (e.g. slow=true)",
					  pos ? "--tag-meta" : "--no-tag-meta", pv_escape_name(v, strlen(v), shown, sizeof(shown)));
		if (!pv_utf8_valid((const uint8_t *)v, strlen(v)))
			return cli_fail("%s \"%s\": must be valid UTF-8 text", pos ? "--tag-meta" : "--no-tag-meta",
					  pv_escape_name(v, strlen(v), shown, sizeof(shown)));
	}
	if ((o->list_tests || o->list_fixtures) && !o->list)
		return cli_fail("%s goes with provium list", o->list_tests ? "--tests" : "--fixtures");
	if (o->list_tests && o->list_fixtures)
		return cli_fail("--tests or --fixtures, not both (provium list --tests | provium list --fixtures)");
	if (o->coverage_by && !o->coverage)
		return cli_fail("--by goes with --coverage (--coverage --by KEY)");
	if (o->coverage_by && !*o->coverage_by)
		return cli_fail("--by needs a meta key, e.g. --by spec");
	if ((o->coverage || o->no_progress) && !run)
		return cli_fail("%s goes with a run (provium [OPTIONS] [PATH...])", o->coverage ? "--coverage" : "--no-progress");
	if ((o->rerun_failed || o->since) && !(plain || (o->list && !o->list_fixtures)))
		return cli_fail("%s selects test files of a run or of provium list", o->rerun_failed ? "--rerun-failed" : "--since");
	if (o->since && !*o->since)
		return cli_fail("--since needs a git ref or a file, e.g. --since origin/main");
	if (o->cold_boot && !run && !o->interactive_cmd)
		return cli_fail("--cold-boot goes with what boots VMs: a run, provium repl or shell, provium fixture build");
	if ((o->junit || o->json_summary) && !run)
		return cli_fail("%s goes with a run (provium [OPTIONS] [PATH...])", o->junit ? "--junit" : "--json-summary");
	return check_reports(o);
}

int cli_parse(int argc, char **argv, struct cli_opts *o)
{
	enum { O_CONFIG = 256, O_MEM, O_CPUS, O_OVERCOMMIT, O_VCPUS, O_TIMEOUT, O_FILTER, O_TAG, O_NOTAG, O_SLOW,
	       O_FAILFAST, O_JSON, O_SAVE, O_EVSTDOUT, O_EVSOCK, O_WATCH, O_VERSION, O_PSI, O_CACHE, O_STALE,
	       O_FORCE, O_ALL, O_UNUSED, O_JOBS, O_DEBUG, O_FIXTURE, O_NAME, O_AT,
	       O_TAGMETA, O_NOTAGMETA, O_RERUN, O_SINCE, O_COVERAGE, O_BY, O_NOPROGRESS, O_COLDBOOT, O_JUNIT, O_JSONSUM, O_TESTS, O_FIXTURES,
	       O_CMDLINE, O_PRINTCMD };
	static const struct option lo[] = {
		{ "config", required_argument, NULL, O_CONFIG },
		{ "mem", required_argument, NULL, O_MEM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "cpu-overcommit", required_argument, NULL, O_OVERCOMMIT },
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "psi-threshold", required_argument, NULL, O_PSI },
		{ "filter", required_argument, NULL, O_FILTER },
		{ "tag", required_argument, NULL, O_TAG },
		{ "no-tag", required_argument, NULL, O_NOTAG },
		{ "include-slow", no_argument, NULL, O_SLOW },
		{ "fail-fast", no_argument, NULL, O_FAILFAST },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "json", no_argument, NULL, O_JSON },
		{ "save-events", required_argument, NULL, O_SAVE },
		{ "junit", required_argument, NULL, O_JUNIT },
		{ "json-summary", required_argument, NULL, O_JSONSUM },
		{ "events-stdout", no_argument, NULL, O_EVSTDOUT },
		{ "events-socket", required_argument, NULL, O_EVSOCK },
		{ "watch", no_argument, NULL, O_WATCH },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "stale", no_argument, NULL, O_STALE },
		{ "force", no_argument, NULL, O_FORCE },
		{ "all", no_argument, NULL, O_ALL },
		{ "unused", no_argument, NULL, O_UNUSED },
		{ "debug", no_argument, NULL, O_DEBUG },
		{ "fixture", required_argument, NULL, O_FIXTURE },
		{ "name", required_argument, NULL, O_NAME },
		{ "at", required_argument, NULL, O_AT },
		{ "tag-meta", required_argument, NULL, O_TAGMETA },
		{ "no-tag-meta", required_argument, NULL, O_NOTAGMETA },
		{ "rerun-failed", no_argument, NULL, O_RERUN },
		{ "since", required_argument, NULL, O_SINCE },
		{ "coverage", no_argument, NULL, O_COVERAGE },
		{ "by", required_argument, NULL, O_BY },
		{ "no-progress", no_argument, NULL, O_NOPROGRESS },
		{ "cold-boot", no_argument, NULL, O_COLDBOOT },
		{ "tests", no_argument, NULL, O_TESTS },
		{ "fixtures", no_argument, NULL, O_FIXTURES },
		{ "cmdline", required_argument, NULL, O_CMDLINE },
		{ "print-command", no_argument, NULL, O_PRINTCMD },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	if (argc > 1 && strcmp(argv[1], "lsp-setup") == 0)
		return parse_lsp_setup(argc, argv, o);
	if (argc > 1 && strcmp(argv[1], "list") == 0) {
		o->list = true;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "fixture") == 0) {
		static const char *const cmds[] = { "list", "build", "rebuild", "clean", "stale", NULL };
		if (!(o->fixture_cmd = subcommand(argc, argv, cmds)))
			return CLI_EXIT_USAGE;
		argv += 2;
		argc -= 2;
	} else if (argc > 1 && (strcmp(argv[1], "repl") == 0 || strcmp(argv[1], "shell") == 0)) {
		o->interactive_cmd = argv[1];
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "console") == 0) {
		o->console = true;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "prepare") == 0) {
		o->prepare = true;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "image") == 0) {
		static const char *const cmds[] = { "list", "build", "clean", NULL };
		if (!(o->image_cmd = subcommand(argc, argv, cmds)))
			return CLI_EXIT_USAGE;
		argv += 2;
		argc -= 2;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vqhx", lo, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: o->config = optarg; break;
		case O_MEM: o->mem = optarg; break;
		case O_CPUS: o->cpus = optarg; break;
		case O_OVERCOMMIT: o->overcommit = optarg; break;
		case O_VCPUS: o->vcpus = optarg; break;
		case O_TIMEOUT: o->timeout = optarg; break;
		case O_PSI: o->psi = optarg; break;
		case O_FILTER: o->filter = optarg; break;
		case O_TAG:
			if (push(&o->tags, &o->ntags, optarg))
				return CLI_EXIT_USAGE;
			break;
		case O_NOTAG:
			if (push(&o->no_tags, &o->nno_tags, optarg))
				return CLI_EXIT_USAGE;
			break;
		case O_SLOW: o->include_slow = true; break;
		case O_FAILFAST:
		case 'x': o->fail_fast = true; break;
		case O_JOBS: o->jobs = optarg; break;
		case O_JSON: o->json = true; break;
		case O_SAVE: o->save_events = optarg; break;
		case O_JUNIT: o->junit = optarg; break;
		case O_JSONSUM: o->json_summary = optarg; break;
		case O_EVSTDOUT: o->events_stdout = true; break;
		case O_EVSOCK: o->events_socket = optarg; break;
		case O_WATCH: o->watch = true; break;
		case O_CACHE: o->cache_dir = optarg; break;
		case O_STALE: o->stale_only = true; break;
		case O_FORCE: o->force = true; break;
		case O_ALL: o->all = true; break;
		case O_UNUSED: o->unused = true; break;
		case O_DEBUG: o->debug = true; break;
		case O_FIXTURE: o->repl_fixture = optarg; break;
		case O_NAME: o->repl_name = optarg; break;
		case O_AT: o->at = optarg; break;
		case O_TAGMETA:
		case O_NOTAGMETA:
			if (c == O_TAGMETA ? push(&o->tag_meta, &o->ntag_meta, optarg)
					   : push(&o->no_tag_meta, &o->nno_tag_meta, optarg))
				return CLI_EXIT_USAGE;
			break;
		case O_RERUN: o->rerun_failed = true; break;
		case O_SINCE: o->since = optarg; break;
		case O_COVERAGE: o->coverage = true; break;
		case O_BY: o->coverage_by = optarg; break;
		case O_NOPROGRESS: o->no_progress = true; break;
		case O_COLDBOOT: o->cold_boot = true; break;
		case O_TESTS: o->list_tests = true; break;
		case O_FIXTURES: o->list_fixtures = true; break;
		case O_CMDLINE: o->console_cmdline = optarg; break;
		case O_PRINTCMD: o->print_command = true; break;
		case 'v': o->verbosity = PV_VERBOSE; break;
		case 'q': o->verbosity = PV_QUIET; break;
		case O_VERSION: printf("provium %s (event protocol %d)\n", PROVIUM_VERSION, PV_PROTOCOL_VERSION); return CLI_DONE;
		case 'h': cli_usage(stdout); return CLI_DONE;
		case ':': return cli_fail("%s needs a value (see --help)", argv[optind - 1]);
		default: return cli_fail("unknown option %s (see --help)", argv[optind - 1]);
		}
	}
	if (o->stale_only && (!o->fixture_cmd || strcmp(o->fixture_cmd, "clean") != 0))
		return cli_fail("--stale goes with provium fixture clean");
	if (o->force && !o->prepare && (!o->image_cmd || strcmp(o->image_cmd, "build") != 0))
		return cli_fail("--force goes with provium image build or provium prepare");
	if (o->prepare && (o->list || o->watch || o->filter || o->debug || o->json || o->save_events ||
			   o->events_stdout || o->events_socket || o->junit || o->json_summary))
		return cli_fail("provium prepare takes [--force] [--config PATH] [PROFILE...]; it runs no tests");
	if ((o->all || o->unused) && (!o->image_cmd || strcmp(o->image_cmd, "clean") != 0))
		return cli_fail("%s goes with provium image clean", o->all ? "--all" : "--unused");
	if ((o->repl_fixture || o->repl_name) && !(o->interactive_cmd && !strcmp(o->interactive_cmd, "repl")))
		return cli_fail("%s goes with provium repl", o->repl_fixture ? "--fixture" : "--name");
	if (o->interactive_cmd && (o->watch || o->filter))
		return cli_fail("%s does not take --watch or --filter", o->interactive_cmd);
	if (o->at && !(o->interactive_cmd && !strcmp(o->interactive_cmd, "shell")))
		return cli_fail("--at goes with provium shell FILE --at TEST");
	if (o->debug && (o->list || o->fixture_cmd || o->image_cmd || o->interactive_cmd))
		return cli_fail("--debug goes with a run (provium [OPTIONS] PATH...); provium repl and shell always stop at the prompt");
	if ((rc = check_console(o, argc - optind, argv + optind)) != 0)
		return rc;
	if ((rc = check_selection(o)) != 0)
		return rc;
	/* a tag ends up in skip reasons, and events carry UTF-8 text */
	for (size_t i = 0; i < o->ntags + o->nno_tags; i++) {
		const char *tag = i < o->ntags ? o->tags[i] : o->no_tags[i - o->ntags];
		if (!pv_utf8_valid((const uint8_t *)tag, strlen(tag))) {
			char shown[512];
			return cli_fail("%s \"%s\": a tag must be valid UTF-8 text", i < o->ntags ? "--tag" : "--no-tag",
					  pv_escape_name(tag, strlen(tag), shown, sizeof(shown)));
		}
	}
	for (int i = optind; i < argc; i++) {
		if (o->console)
			break; /* its profile (check_console) */
		if (i == optind && !o->list && !o->fixture_cmd && !o->image_cmd && !o->interactive_cmd && !o->prepare && argv[i][0] && !strchr(argv[i], '/') && !strchr(argv[i], '.') &&
		    access(argv[i], F_OK) != 0)
			return cli_fail("unknown subcommand or path '%s' (subcommands: list, fixture, image, prepare, repl, shell, console, lsp-setup; see --help)", argv[i]);
		if (push(&o->paths, &o->npaths, argv[i]))
			return CLI_EXIT_USAGE;
	}
	if (o->interactive_cmd && !strcmp(o->interactive_cmd, "repl") && o->npaths > 1)
		return cli_fail("repl takes one profile, got %zu arguments (provium repl [PROFILE] [--fixture NAME] [--name VM])",
				  o->npaths);
	if (o->interactive_cmd && !strcmp(o->interactive_cmd, "repl") && o->npaths && o->repl_fixture)
		return cli_fail("repl: a profile or --fixture, not both (a fixture's VM has its builder's profile)");
	if (o->interactive_cmd && !strcmp(o->interactive_cmd, "repl") && o->npaths) {
		o->repl_profile = o->paths[0]; /* not a root */
		o->npaths = 0;
	}
	if (o->interactive_cmd && !strcmp(o->interactive_cmd, "shell") && (o->npaths != 1 || !o->at))
		return cli_fail("shell needs one test file and the test to stop in: provium shell FILE.test.lua --at TEST");
	if (cli_fixture_build(o) && !o->npaths)
		return cli_fail("provium fixture %s needs the fixture(s) to build: a path to a *.fixture.lua or a "
				  "root-relative name such as db/seeded", o->fixture_cmd);
	if (o->fixture_cmd && (o->watch || o->list || o->filter))
		return cli_fail("provium fixture %s does not take --watch or --filter", o->fixture_cmd);
	if (o->json && o->events_stdout)
		return cli_fail("--json and --events-stdout both want stdout; use --json with --save-events FILE instead");
	return 0;
}

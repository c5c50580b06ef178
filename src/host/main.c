/* provium: the command line. A thin layer over discovery, the scheduler, the
 * event sinks and the in-process consumers. Only this file prints. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <poll.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "discover.h"
#include "fcache.h"
#include "fixkey.h"
#include "event.h"
#include "mpr.h"
#include "render.h"
#include "runner.h"
#include "scheduler.h"
#include "sink.h"
#include "units.h"

#define EXIT_USAGE 2

struct opts {
	const char *config;
	const char *mem, *cpus, *overcommit, *vcpus, *timeout, *psi;
	const char *filter;
	char **tags, **no_tags;
	size_t ntags, nno_tags;
	bool include_slow, fail_fast, json, events_stdout, watch, list;
	int verbosity;
	const char *save_events, *events_socket;
	const char *cache_dir;
	const char *fixture_cmd; /* provium fixture CMD: list, build, rebuild, clean, stale */
	bool stale_only;         /* provium fixture clean --stale */
	char **paths;
	size_t npaths;
};

struct outputs {
	struct pv_hub hub;
	struct pv_human *human;
	struct pv_jsonl *jsonl;
	struct pv_sink *file_sink;
};

static void usage(FILE *f)
{
	fputs("usage: provium [OPTIONS] [PATH...]       run *.test.lua files under PATH (default: config roots, tests/, .)\n"
	      "       provium list [OPTIONS] [PATH...]  list the test files that would run\n"
	      "       provium fixture list|stale        list cached fixtures (stale: no longer any fixture's key)\n"
	      "       provium fixture build|rebuild FIXTURE...  build (rebuild: even if cached) fixtures now\n"
	      "       provium fixture clean [--stale]   delete every cached fixture (or only the stale ones)\n"
	      "\n"
	      "Selection:\n"
	      "  --filter SUBSTR        only files whose root-relative path contains SUBSTR\n"
	      "  --tag TAG              only tests tagged TAG (repeatable: any of them)\n"
	      "  --no-tag TAG           skip tests tagged TAG (repeatable)\n"
	      "  --include-slow         run tests with meta slow = true\n"
	      "Execution:\n"
	      "  --config PATH          configuration file (default: ./provium.lua if present)\n"
	      "  --mem SIZE             pool memory (default: 80% of MemTotal)\n"
	      "  --cpus N               pool cpus (default: online cpus)\n"
	      "  --cpu-overcommit X     multiply pool cpus by X (default 1.0)\n"
	      "  --vcpus N              VM vCPUs of all files at once (default: 4 x pool cpus)\n"
	      "  --timeout DURATION     ceiling on every file's timeout (default file timeout 5m)\n"
	      "  --psi-threshold PCT    pause dispatching while host memory PSI some-avg10 exceeds PCT (default 10; 0: never)\n"
	      "  --fail-fast            stop dispatching files after the first failure\n"
	      "  --watch                re-run when a file under the roots changes\n"
	      "  --cache-dir DIR        fixture cache (default: $PROVIUM_CACHE_DIR, cache_dir, ~/.cache/provium/fixtures)\n"
	      "Output:\n"
	      "  -v, --verbose          also list passed and skipped tests\n"
	      "  -q, --quiet            only failures and the summary\n"
	      "  --json                 JSON Lines of every event on stdout, then a summary object\n"
	      "  --save-events PATH     append the event stream (msgpack frames) to PATH\n"
	      "  --events-stdout        the event stream on stdout (human output moves to stderr)\n"
	      "  --events-socket PATH   serve the event stream on a unix socket (mode 0600)\n"
	      "  --version              print the version\n"
	      "  -h, --help             this help\n"
	      "Exit status: 0 all passed or skipped, 1 a test or file failed, 2 usage/config/infrastructure error,\n"
	      "128+N interrupted by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP).\n",
	      f);
}

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail_usage(const char *fmt, ...)
{
	va_list ap;
	fputs("provium: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static int push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(*p));
	if (!p)
		return -1;
	p[(*n)++] = (char *)s;
	*v = p;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_CONFIG = 256, O_MEM, O_CPUS, O_OVERCOMMIT, O_VCPUS, O_TIMEOUT, O_FILTER, O_TAG, O_NOTAG, O_SLOW,
	       O_FAILFAST, O_JSON, O_SAVE, O_EVSTDOUT, O_EVSOCK, O_WATCH, O_VERSION, O_PSI, O_CACHE, O_STALE };
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
		{ "json", no_argument, NULL, O_JSON },
		{ "save-events", required_argument, NULL, O_SAVE },
		{ "events-stdout", no_argument, NULL, O_EVSTDOUT },
		{ "events-socket", required_argument, NULL, O_EVSOCK },
		{ "watch", no_argument, NULL, O_WATCH },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "stale", no_argument, NULL, O_STALE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (argc > 1 && strcmp(argv[1], "list") == 0) {
		o->list = true;
		argv++;
		argc--;
	} else if (argc > 1 && strcmp(argv[1], "fixture") == 0) {
		static const char *const cmds[] = { "list", "build", "rebuild", "clean", "stale" };
		if (argc < 3 || argv[2][0] == '-')
			return fail_usage("provium fixture needs a command: list, build, rebuild, clean or stale (see --help)");
		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[2], cmds[i]) == 0)
				o->fixture_cmd = cmds[i];
		if (!o->fixture_cmd)
			return fail_usage("unknown fixture command '%s' (commands: list, build, rebuild, clean, stale)", argv[2]);
		argv += 2;
		argc -= 2;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vqh", lo, NULL)) != -1) {
		switch (c) {
		case O_CONFIG: o->config = optarg; break;
		case O_MEM: o->mem = optarg; break;
		case O_CPUS: o->cpus = optarg; break;
		case O_OVERCOMMIT: o->overcommit = optarg; break;
		case O_VCPUS: o->vcpus = optarg; break;
		case O_TIMEOUT: o->timeout = optarg; break;
		case O_PSI: o->psi = optarg; break;
		case O_FILTER: o->filter = optarg; break;
		case O_TAG: push(&o->tags, &o->ntags, optarg); break;
		case O_NOTAG: push(&o->no_tags, &o->nno_tags, optarg); break;
		case O_SLOW: o->include_slow = true; break;
		case O_FAILFAST: o->fail_fast = true; break;
		case O_JSON: o->json = true; break;
		case O_SAVE: o->save_events = optarg; break;
		case O_EVSTDOUT: o->events_stdout = true; break;
		case O_EVSOCK: o->events_socket = optarg; break;
		case O_WATCH: o->watch = true; break;
		case O_CACHE: o->cache_dir = optarg; break;
		case O_STALE: o->stale_only = true; break;
		case 'v': o->verbosity = PV_VERBOSE; break;
		case 'q': o->verbosity = PV_QUIET; break;
		case O_VERSION: printf("provium %s (event protocol %d)\n", PROVIUM_VERSION, PV_PROTOCOL_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		case ':': return fail_usage("%s needs a value (see --help)", argv[optind - 1]);
		default: return fail_usage("unknown option %s (see --help)", argv[optind - 1]);
		}
	}
	if (o->stale_only && (!o->fixture_cmd || strcmp(o->fixture_cmd, "clean") != 0))
		return fail_usage("--stale goes with provium fixture clean");
	/* a tag ends up in skip reasons, and events carry UTF-8 text */
	for (size_t i = 0; i < o->ntags + o->nno_tags; i++) {
		const char *tag = i < o->ntags ? o->tags[i] : o->no_tags[i - o->ntags];
		if (!pv_utf8_valid((const uint8_t *)tag, strlen(tag))) {
			char shown[512];
			return fail_usage("%s \"%s\": a tag must be valid UTF-8 text", i < o->ntags ? "--tag" : "--no-tag",
					  pv_escape_name(tag, strlen(tag), shown, sizeof(shown)));
		}
	}
	for (int i = optind; i < argc; i++) {
		if (i == optind && !o->list && !o->fixture_cmd && argv[i][0] && !strchr(argv[i], '/') && !strchr(argv[i], '.') &&
		    access(argv[i], F_OK) != 0)
			return fail_usage("unknown subcommand or path '%s' (subcommands: list; see --help)", argv[i]);
		push(&o->paths, &o->npaths, argv[i]);
	}
	if (o->fixture_cmd && (!strcmp(o->fixture_cmd, "build") || !strcmp(o->fixture_cmd, "rebuild")) && !o->npaths)
		return fail_usage("provium fixture %s needs the fixture(s) to build: a path to a *.fixture.lua or a "
				  "root-relative name such as db/seeded", o->fixture_cmd);
	if (o->fixture_cmd && (o->watch || o->list || o->filter))
		return fail_usage("provium fixture %s does not take --watch or --filter", o->fixture_cmd);
	if (o->json && o->events_stdout)
		return fail_usage("--json and --events-stdout both want stdout; use --json with --save-events FILE instead");
	return 0;
}

/* ---- outputs ----------------------------------------------------------------- */

static void on_event(void *ctx, const struct pv_event *ev, const uint8_t *frame, size_t len)
{
	struct outputs *out = ctx;
	pv_hub_emit_frame(&out->hub, frame, len);
	if (out->human)
		pv_human_event(out->human, ev);
	if (out->jsonl)
		pv_jsonl_event(out->jsonl, ev);
}

static void on_log(void *ctx, const char *path, const char *test, const char *msg)
{
	struct outputs *out = ctx;
	if (out->human)
		pv_human_log(out->human, path, test, msg);
}

static void on_service(void *ctx)
{
	struct outputs *out = ctx;
	pv_hub_service(&out->hub);
}

static void on_notice(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "provium: %s\n", msg);
}

static uint64_t mem_total(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	unsigned long long kb = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return (uint64_t)kb * 1024;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- watch -------------------------------------------------------------------- */

static void watch_tree(int ifd, const char *dir, int depth)
{
	DIR *d;
	struct dirent *e;
	if (depth > 32 || inotify_add_watch(ifd, dir, IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM) < 0)
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			watch_tree(ifd, p, depth + 1);
	}
	closedir(d);
}

/* Blocks until a change under the roots (then 200 ms of quiet) or a signal,
 * serving the event sinks meanwhile (a consumer joining the socket gets the
 * last run at once). Returns 1 to run again, 0 to stop; *signo is the signal
 * that stopped it, else 0. */
static int wait_for_change(char **roots, size_t nroots, int sfd, struct pv_hub *hub, int *signo)
{
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	char buf[8192];
	int changed = 0;
	if (ifd < 0)
		return 0;
	for (size_t i = 0; i < nroots; i++)
		watch_tree(ifd, roots[i], 0);
	for (;;) {
		struct pollfd p[3] = { { .fd = ifd, .events = POLLIN }, { .fd = sfd, .events = POLLIN },
				       { .fd = pv_hub_poll_fd(hub), .events = POLLIN } };
		int n = poll(p, 3, changed ? 200 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (p[2].revents)
			pv_hub_service(hub);
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				*signo = (int)si.ssi_signo;
			close(ifd);
			return 0;
		}
		if (n == 0 && changed)
			break;
		if (p[0].revents) {
			while (read(ifd, buf, sizeof(buf)) > 0)
				;
			changed = 1;
		}
	}
	close(ifd);
	return 1;
}

/* ---- provium fixture ------------------------------------------------------------ */

/* A fixture given as a path (tests/db/seeded.fixture.lua) or a root-relative
 * name (db/seeded): its name and the root it is under. */
static int fixture_name(const char *arg, const char *const *roots, size_t nroots, char *name, size_t len,
			const char **root)
{
	char want[PATH_MAX], rp[PATH_MAX], file[4200];
	struct pv_err err;
	if (realpath(arg, want)) {
		for (size_t i = 0; i < nroots; i++) {
			size_t n;
			if (!realpath(roots[i], rp))
				continue;
			n = strlen(rp);
			if (strncmp(want, rp, n) == 0 && want[n] == '/') {
				if (fx_normalize(want + n + 1, name, len, &err) < 0)
					return fail_usage("%s", err.msg);
				*root = roots[i];
				return 0;
			}
		}
		if (strstr(arg, FX_SUFFIX))
			return fail_usage("%s is not under the test root%s %s%s: fixture names are relative to a root "
					  "(pass the roots with provium.lua's roots)", arg, nroots > 1 ? "s" : "", roots[0],
					  nroots > 1 ? ", ..." : "");
	}
	if (fx_normalize(arg, name, len, &err) < 0)
		return fail_usage("%s", err.msg);
	for (size_t i = 0; i < nroots; i++)
		if (fx_find(&roots[i], 1, name, file, sizeof(file), NULL) == 0) {
			*root = roots[i];
			return 0;
		}
	fx_find(roots, nroots, name, file, sizeof(file), &err);
	return fail_usage("%s", err.msg);
}

/* provium fixture build/rebuild: each fixture becomes a "file" whose runner builds it. */
static int build_discovery(const struct opts *o, const char *const *roots, size_t nroots, struct pv_discovery *d)
{
	memset(d, 0, sizeof(*d));
	d->files = calloc(o->npaths, sizeof(*d->files));
	if (!d->files)
		return fail_usage("out of memory");
	for (size_t i = 0; i < o->npaths; i++) {
		char name[1024], file[4200];
		const char *root = NULL;
		struct pv_test_file *f = &d->files[d->nfiles];
		if (fixture_name(o->paths[i], roots, nroots, name, sizeof(name), &root) != 0) {
			pv_discovery_release(d);
			return -1;
		}
		if (!pv_utf8_valid((const uint8_t *)name, strlen(name))) {
			char shown[1024];
			pv_discovery_release(d);
			return fail_usage("fixture \"%s\" is not valid UTF-8 (event paths are UTF-8 text): rename it",
					  pv_escape_name(name, strlen(name), shown, sizeof(shown)));
		}
		fx_find(&root, 1, name, file, sizeof(file), NULL);
		f->root = strdup(root);
		f->abs_path = strdup(file);
		f->rel_path = malloc(strlen(name) + strlen(FX_SUFFIX) + 1);
		f->fixture_refs = malloc(sizeof(char *));
		if (!f->root || !f->abs_path || !f->rel_path || !f->fixture_refs) {
			pv_discovery_release(d);
			return fail_usage("out of memory");
		}
		sprintf(f->rel_path, "%s%s", name, FX_SUFFIX);
		f->fixture_refs[0] = strdup(name);
		f->nfixture_refs = 1;
		d->nfiles++;
	}
	return 0;
}

static void fmt_age(int64_t then, char *b, size_t len)
{
	int64_t s = (int64_t)time(NULL) - then;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(b, len, "%llds ago", (long long)s);
	else if (s < 7200)
		snprintf(b, len, "%lldm ago", (long long)(s / 60));
	else if (s < 172800)
		snprintf(b, len, "%lldh ago", (long long)(s / 3600));
	else
		snprintf(b, len, "%lldd ago", (long long)(s / 86400));
}

/* The current key of every fixture under the roots (for stale). */
static char **current_keys(const char *const *roots, size_t nroots, const char *config, size_t *n)
{
	struct pv_discovery d;
	struct pv_err err;
	char **keys;
	*n = 0;
	if (pv_discover(roots, nroots, NULL, &d, &err) < 0)
		return NULL;
	keys = calloc(d.nfixtures + 1, sizeof(*keys));
	for (size_t i = 0; keys && i < d.nfixtures; i++) {
		char k[FC_KEY_LEN + 1];
		if (fx_key(roots, nroots, config, d.fixtures[i], k, &err) == 0)
			keys[(*n)++] = strdup(k);
	}
	pv_discovery_release(&d);
	return keys;
}

static bool is_current(char **keys, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i] && strcmp(keys[i], key) == 0)
			return true;
	return false;
}

/* provium fixture list | stale | clean [--stale] */
static int fixture_admin(const struct opts *o, const char *dir, const char *const *roots, size_t nroots,
			 const char *config)
{
	struct fc_info *e = NULL;
	struct pv_err err;
	size_t n = 0, nkeys = 0, shown = 0, removed = 0;
	uint64_t total = 0, freed = 0;
	char **keys = NULL;
	bool list = !strcmp(o->fixture_cmd, "list"), stale = !strcmp(o->fixture_cmd, "stale");

	if (fc_list(dir, &e, &n, &err) < 0)
		return fail_usage("%s", err.msg);
	if (list || stale || o->stale_only)
		keys = current_keys(roots, nroots, config, &nkeys);
	if (list || stale) {
		for (size_t i = 0; i < n; i++) {
			char sz[32], built[32], used[32];
			bool cur = !e[i].corrupt && is_current(keys, nkeys, e[i].key);
			if (stale && cur)
				continue;
			if (!shown++)
				printf("%-16s  %9s  %-9s  %-9s  %s\n", "KEY", "SIZE", "BUILT", "USED", "FIXTURE");
			fmt_age(e[i].created, built, sizeof(built));
			fmt_age(e[i].last_used, used, sizeof(used));
			printf("%-16.16s  %9s  %-9s  %-9s  %s%s\n", e[i].key, pv_format_size(e[i].bytes, sz), built, used,
			       e[i].fixture, e[i].corrupt ? " (corrupt)" : cur ? "" : " (stale)");
			total += e[i].bytes;
		}
		{
			char sz[32];
			fprintf(stderr, "%zu %sentr%s, %s, in %s\n", shown, stale ? "stale " : "", shown == 1 ? "y" : "ies",
				pv_format_size(total, sz), dir);
		}
	} else { /* clean */
		for (size_t i = 0; i < n; i++) {
			struct fc_lock lk;
			char held[256] = "another process";
			if (o->stale_only && !e[i].corrupt && is_current(keys, nkeys, e[i].key))
				continue;
			/* an entry being built right now stays (a resume that loses its
			 * entry midway treats it as corrupt and rebuilds) */
			if (fc_lock_try(dir, e[i].key, "provium fixture clean", &lk, held, sizeof(held), NULL) != 1) {
				fprintf(stderr, "provium: kept %s (%s): in use by %s\n", e[i].key, e[i].fixture, held);
				continue;
			}
			if (fc_remove(dir, e[i].key, &err) < 0)
				fprintf(stderr, "provium: %s\n", err.msg);
			else {
				char lock[4200];
				snprintf(lock, sizeof(lock), "%s/%s.lock", dir, e[i].key);
				unlink(lock); /* lockers check they hold the file still linked */
				removed++;
				freed += e[i].bytes;
			}
			fc_unlock(&lk);
		}
		{
			char sz[32];
			fprintf(stderr, "removed %zu entr%s (%s) from %s\n", removed, removed == 1 ? "y" : "ies",
				pv_format_size(freed, sz), dir);
		}
	}
	for (size_t i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(e);
	return 0;
}

/* ---- main --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct pv_config cfg;
	struct pv_err err;
	struct pv_sched_opts so = { 0 };
	struct pv_discovery fixture_jobs = { 0 };
	char cache_dir[4096] = "";
	struct outputs out;
	char **roots = NULL;
	size_t nroots = 0;
	int rc, sfd = -1, exit_code = 0;
	sigset_t mask;
	FILE *human_out, *json_out;
	int human_fd;

	if (argc > 1 && strcmp(argv[1], "__runner") == 0)
		return pv_runner_main(argc, argv);

	if ((rc = parse_args(argc, argv, &o)) != 0)
		return rc;
	if (pv_config_load(o.config, &cfg, &err) < 0)
		return fail_usage("%s", err.msg);

	/* roots: command line, else config, else tests/, else . */
	if (o.npaths && !(o.fixture_cmd && (!strcmp(o.fixture_cmd, "build") || !strcmp(o.fixture_cmd, "rebuild")))) {
		roots = o.paths;
		nroots = o.npaths;
	} else if (cfg.nroots) {
		roots = cfg.roots;
		nroots = cfg.nroots;
	} else {
		static char *def_tests[] = { "tests" }, *def_dot[] = { "." };
		struct stat st;
		roots = stat("tests", &st) == 0 && S_ISDIR(st.st_mode) ? def_tests : def_dot;
		nroots = 1;
	}

	/* pool */
	so.pool.memory_bytes = cfg.has_memory ? cfg.memory : mem_total() / 10 * 8;
	so.pool.cpus = cfg.has_cpus ? cfg.cpus : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	{
		double oc = cfg.has_overcommit ? cfg.cpu_overcommit : 1.0;
		if (o.mem && pv_parse_size(o.mem, &so.pool.memory_bytes, &err) < 0)
			return fail_usage("--mem: %s", err.msg);
		if (o.cpus) {
			char *end;
			long v = strtol(o.cpus, &end, 10);
			if (*end || end == o.cpus || v < 1 || v > 65536)
				return fail_usage("--cpus: \"%s\" is not a whole number >= 1", o.cpus);
			so.pool.cpus = (uint32_t)v;
		}
		if (o.overcommit) {
			char *end;
			oc = strtod(o.overcommit, &end);
			if (*end || end == o.overcommit || !(oc > 0) || oc > 1000)
				return fail_usage("--cpu-overcommit: \"%s\" is not a number > 0 (e.g. 1.5)", o.overcommit);
		}
		so.pool.cpus = (uint32_t)(so.pool.cpus * oc + 0.5);
		if (so.pool.cpus < 1)
			so.pool.cpus = 1;
		so.vcpus = cfg.has_vcpus ? cfg.vcpus : so.pool.cpus * PV_VCPU_RATIO;
		if (o.vcpus) {
			char *end;
			long v = strtol(o.vcpus, &end, 10);
			if (*end || end == o.vcpus || v < 1 || v > 65536)
				return fail_usage("--vcpus: \"%s\" is not a whole number >= 1", o.vcpus);
			so.vcpus = (uint32_t)v;
		}
	}
	if (so.pool.memory_bytes == 0)
		return fail_usage("--mem: the pool needs some memory");
	so.timeout_ceiling_ns = cfg.has_timeout ? cfg.timeout_ns : 0;
	if (o.timeout && pv_parse_duration(o.timeout, &so.timeout_ceiling_ns, &err) < 0)
		return fail_usage("--timeout: %s", err.msg);
	if (o.timeout && so.timeout_ceiling_ns == 0)
		return fail_usage("--timeout: must be more than 0");
	so.psi_threshold = cfg.has_psi ? cfg.psi_threshold : 10.0;
	if (o.psi) {
		char *end;
		so.psi_threshold = strtod(o.psi, &end);
		if (*end || end == o.psi || !(so.psi_threshold >= 0 && so.psi_threshold <= 100))
			return fail_usage("--psi-threshold: \"%s\" is not a percentage from 0 to 100", o.psi);
	}
	so.include_slow = o.include_slow;
	so.config_path = cfg.path;
	so.fail_fast = o.fail_fast;
	so.tags = o.tags;
	so.ntags = o.ntags;
	so.no_tags = o.no_tags;
	so.nno_tags = o.nno_tags;

	/* the fixture cache: an explicit choice that does not work is an error;
	 * the default is only needed once a file uses a fixture */
	if (fc_resolve_dir(o.cache_dir, cfg.cache_dir, cache_dir, sizeof(cache_dir), &err) < 0) {
		if (o.cache_dir || getenv("PROVIUM_CACHE_DIR") || cfg.cache_dir || o.fixture_cmd)
			return fail_usage("%s", err.msg);
		fprintf(stderr, "provium: fixtures are unavailable: %s\n", err.msg);
	} else {
		so.cache_dir = cache_dir;
	}
	if (o.fixture_cmd && strcmp(o.fixture_cmd, "build") != 0 && strcmp(o.fixture_cmd, "rebuild") != 0) {
		rc = fixture_admin(&o, cache_dir, (const char *const *)roots, nroots, cfg.path);
		pv_config_release(&cfg);
		free(o.paths);
		return rc;
	}
	if (so.cache_dir && !o.list) {
		size_t removed = 0;
		uint64_t freed = 0;
		if (fc_evict(so.cache_dir, cfg.cache_max_size, &removed, &freed, &err) < 0)
			fprintf(stderr, "provium: fixture cache %s: %s\n", so.cache_dir, err.msg);
		else if (removed) {
			char a[32], b[32];
			fprintf(stderr, "provium: fixture cache over %s: removed %zu least recently used entr%s (%s)\n",
				pv_format_size(cfg.cache_max_size, a), removed, removed == 1 ? "y" : "ies",
				pv_format_size(freed, b));
		}
	}
	if (o.fixture_cmd) {
		so.fixture_build = true;
		so.fixture_force = strcmp(o.fixture_cmd, "rebuild") == 0;
		if (build_discovery(&o, (const char *const *)roots, nroots, &fixture_jobs) < 0) {
			pv_config_release(&cfg);
			return EXIT_USAGE;
		}
	}

	if (o.list) {
		struct pv_discovery d;
		if (pv_discover((const char *const *)roots, nroots, o.filter, &d, &err) < 0)
			return fail_usage("%s", err.msg);
		for (size_t i = 0; i < d.nfiles; i++) {
			printf("%s", d.files[i].rel_path);
			for (size_t r = 0; r < d.files[i].nfixture_refs; r++)
				printf("%s%s", r ? ", " : "  fixtures: ", d.files[i].fixture_refs[r]);
			if (d.files[i].has_claim) {
				char m[32];
				printf("  claim: %s, %u cpus", pv_format_size(d.files[i].claim.memory_bytes, m), d.files[i].claim.cpus);
			}
			putchar('\n');
		}
		fprintf(stderr, "%zu test files, %zu fixtures\n", d.nfiles, d.nfixtures);
		pv_discovery_release(&d);
		pv_config_release(&cfg);
		return 0;
	}

	signal(SIGPIPE, SIG_IGN);
	/* A shell starts background jobs with SIGINT ignored, and an ignored
	 * signal never reaches a signalfd: take them back, then block them.
	 * SIGHUP (a closed terminal, a cancelled CI step) ends the run like
	 * SIGTERM, unless it was ignored on purpose (nohup). */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	{
		struct sigaction hup;
		if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
			sigaddset(&mask, SIGHUP);
	}
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	so.interrupt_fd = sfd;

	memset(&out, 0, sizeof(out));
	pv_hub_init(&out.hub, on_notice, NULL);
	if (o.save_events) {
		if (pv_sink_open_file(o.save_events, false, &out.file_sink, &err) < 0)
			return fail_usage("--save-events: %s", err.msg);
		pv_hub_add(&out.hub, out.file_sink);
	}
	if (o.events_stdout) {
		struct pv_sink *sk;
		pv_sink_open_fd(1, "stdout", &sk, &err);
		pv_hub_add(&out.hub, sk);
	}
	if (o.events_socket) {
		struct pv_sink *sk;
		if (pv_sink_open_socket(o.events_socket, &sk, &err) < 0) {
			pv_hub_release(&out.hub);
			return fail_usage("--events-socket: %s", err.msg);
		}
		pv_hub_add(&out.hub, sk);
	}
	/* the text outputs are sinks too: a write that fails is reported and fails the exit status */
	human_fd = (o.events_stdout || o.json) ? 2 : 1;
	human_out = pv_hub_add_text(&out.hub, human_fd, human_fd == 1 ? "the report to stdout" : "the report to stderr", &err);
	json_out = o.json ? pv_hub_add_text(&out.hub, 1, "the --json output to stdout", &err) : NULL;
	if (!human_out || (o.json && !json_out)) {
		pv_hub_release(&out.hub);
		return fail_usage("%s", err.msg);
	}
	so.service = on_service; /* the event socket is served while the run is quiet too */
	so.service_fd = pv_hub_poll_fd(&out.hub);

	for (unsigned iteration = 0;; iteration++) {
		struct pv_discovery d;
		struct pv_sched_result res;
		struct pv_emitter em = { on_event, on_log, on_notice, &out };
		uint64_t t0 = mono_ns();
		bool tty = isatty(human_fd);
		bool color = tty && !getenv("NO_COLOR");

		if (iteration > 0)
			pv_hub_begin_run(&out.hub); /* --save-events restarts, the socket's replay too */
		if (o.fixture_cmd) {
			d = fixture_jobs; /* provium fixture build: the builders are the files */
			memset(&fixture_jobs, 0, sizeof(fixture_jobs));
			rc = 0;
		} else {
			rc = pv_discover((const char *const *)roots, nroots, o.filter, &d, &err);
		}
		if (rc < 0) {
			fprintf(stderr, "provium: %s\n", err.msg);
			exit_code = EXIT_USAGE;
			if (!o.watch)
				break;
		} else {
			so.roots = roots;
			so.nroots = nroots;
			out.human = pv_human_new(human_out, (enum pv_verbosity)o.verbosity, color, tty);
			pv_human_set_tty(out.human, human_fd);
			out.jsonl = o.json ? pv_jsonl_new(json_out) : NULL;
			if (d.nfiles == 0)
				fprintf(stderr, "provium: no *.test.lua files under %s%s\n", roots[0],
					nroots > 1 ? " (and the other roots)" : "");
			rc = pv_sched_run(&so, &d, &em, &res, &err);
			if (rc < 0) {
				fprintf(stderr, "provium: %s\n", err.msg);
				exit_code = EXIT_USAGE;
			} else {
				/* 128+N like a shell reports death by signal N: 130 SIGINT, 143 SIGTERM, 129 SIGHUP */
				exit_code = res.interrupted ? 128 + (res.signal > 0 ? res.signal : SIGINT) : res.failed ? 1 : 0;
				if (d.nfiles == 0 && exit_code == 0)
					exit_code = EXIT_USAGE; /* nothing ran: almost always a wrong path */
			}
			pv_human_finish(out.human, mono_ns() - t0, res.interrupted);
			if (out.jsonl)
				pv_jsonl_finish(out.jsonl, mono_ns() - t0, exit_code);
			out.human = pv_human_free(out.human);
			out.jsonl = pv_jsonl_free(out.jsonl);
			pv_discovery_release(&d);
			if (res.interrupted)
				break;
		}
		if (!o.watch)
			break;
		fprintf(stderr, "provium: watching %s for changes (Ctrl-C to stop)\n", roots[0]);
		{
			int sig = 0;
			if (!wait_for_change(roots, nroots, sfd, &out.hub, &sig)) {
				if (sig > 0) {
					/* an interrupt ends the watch, not the last run's status */
					const char *abbr = sigabbrev_np(sig);
					fprintf(stderr, "provium: interrupted by SIG%s while watching\n", abbr ? abbr : "?");
					exit_code = 128 + sig;
				}
				break;
			}
		}
	}
	if (pv_hub_release(&out.hub) && exit_code < 128) /* an interrupt keeps its 128+N */
		exit_code = EXIT_USAGE; /* an output could not be written (said when it failed) */
	pv_config_release(&cfg);
	free(o.tags);
	free(o.no_tags);
	free(o.paths);
	if (sfd >= 0)
		close(sfd);
	return exit_code;
}

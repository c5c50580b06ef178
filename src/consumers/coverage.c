/* provium-coverage: counts test outcomes per value of one metadata key.
 *
 * Reads event streams (files, stdin, a live --events-socket) and buckets every
 * test_passed / test_failed / test_skipped by meta[KEY] (the report itself,
 * shared with provium --coverage, is covreport.h).
 *
 * Runs (docs/events.md): a run starts at a file_discovered frame that follows
 * a frame of another kind, or at the first frame; a later --from source
 * continues the run in progress (shards of one run merge). Each run gets its
 * own report, printed when the run is over: when the next run starts, when
 * the input ends, or, for a live socket (the last source), as soon as every
 * file it discovered has completed, since provium --watch may not start the
 * next run for hours. A run that never completes all its discovered files, or
 * has none, was cut short: a warning, exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "covreport.h"
#include "event.h"
#include "mpr.h"
#include "stream.h"

/* The paths a run discovered, and which of them completed (open addressing). */
struct pathset {
	char **path;
	bool *done;
	size_t cap, n, ndone;
};

struct run {
	struct pv_cov_report r;
	struct pathset files;
	unsigned number;
	bool printed;
	bool cut;        /* its source ended inside a frame (already warned) */
	char error[PV_ERR_MSG_MAX + 1024]; /* what ended the input inside this run */
};

struct cov {
	const char *by;
	bool json, verbose;
	struct run run;
	bool have_prev; /* a frame of the current source was seen */
	enum pv_event_kind prev;
	bool live;      /* reading a socket that is the last source */
	unsigned runs;  /* runs started */
	uint64_t frames;
	int status;     /* 0, or 1 once some run was cut short */
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "provium-coverage: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p) {
		fprintf(stderr, "provium-coverage: out of memory\n");
		exit(2);
	}
	return p;
}

/* ---- paths of a run --------------------------------------------------------- */

static size_t path_hash(const char *p, size_t len)
{
	uint64_t x = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		x = (x ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return (size_t)x;
}

/* The slot of path: where it is, or the empty slot it would go to. */
static size_t pathset_slot(const struct pathset *ps, const struct pv_str *path)
{
	size_t i = path_hash(path->ptr, path->len) & (ps->cap - 1);
	while (ps->path[i] && (strlen(ps->path[i]) != path->len || memcmp(ps->path[i], path->ptr, path->len)))
		i = (i + 1) & (ps->cap - 1);
	return i;
}

static void pathset_add(struct pathset *ps, const struct pv_str *path)
{
	size_t i;
	if (2 * (ps->n + 1) > ps->cap) {
		struct pathset bigger = { .cap = ps->cap ? 2 * ps->cap : 64, .n = ps->n, .ndone = ps->ndone };
		bigger.path = calloc(bigger.cap, sizeof(*bigger.path));
		bigger.done = calloc(bigger.cap, sizeof(*bigger.done));
		if (!bigger.path || !bigger.done) {
			fprintf(stderr, "provium-coverage: out of memory\n");
			exit(2);
		}
		for (size_t o = 0; o < ps->cap; o++)
			if (ps->path[o]) {
				struct pv_str k = { ps->path[o], strlen(ps->path[o]) };
				size_t slot = pathset_slot(&bigger, &k);
				bigger.path[slot] = ps->path[o];
				bigger.done[slot] = ps->done[o];
			}
		free(ps->path);
		free(ps->done);
		*ps = bigger;
	}
	i = pathset_slot(ps, path);
	if (ps->path[i])
		return; /* discovered twice in one run: counted once */
	ps->path[i] = xstrdup(path->ptr);
	ps->n++;
}

static void pathset_complete(struct pathset *ps, const struct pv_str *path)
{
	size_t i;
	if (!ps->cap)
		return;
	i = pathset_slot(ps, path);
	if (ps->path[i] && !ps->done[i]) {
		ps->done[i] = true;
		ps->ndone++;
	}
}

/* The smallest (byte order) path that has not completed, for the warning. */
static const char *pathset_first_open(const struct pathset *ps)
{
	const char *first = NULL;
	for (size_t i = 0; i < ps->cap; i++)
		if (ps->path[i] && !ps->done[i] && (!first || strcmp(ps->path[i], first) < 0))
			first = ps->path[i];
	return first;
}

static void pathset_release(struct pathset *ps)
{
	for (size_t i = 0; i < ps->cap; i++)
		free(ps->path[i]);
	free(ps->path);
	free(ps->done);
	*ps = (struct pathset){ 0 };
}

/* ---- reports ---------------------------------------------------------------- */

static bool run_complete(const struct run *run)
{
	return run->files.n > 0 && run->files.ndone == run->files.n;
}

/* Prints the current run's report (once), then flushes: a live reader sees it now. */
static void print_run(struct cov *c)
{
	struct run *run = &c->run;
	if (run->printed)
		return;
	run->printed = true;
	if (c->json) {
		pv_cov_print_json(&run->r, run->number, run_complete(run), run->error, stdout);
	} else {
		if (run->number > 1)
			printf("\nrun %u:\n", run->number);
		pv_cov_print_text(&run->r, c->verbose, stdout);
	}
	fflush(stdout);
}

/* The current run is over: its report, and a warning if it was cut short. */
static void end_run(struct cov *c)
{
	struct run *run = &c->run;
	if (!run->number)
		return;
	print_run(c);
	if (!run->cut && !run_complete(run)) {
		if (run->files.n == 0)
			fprintf(stderr, "provium-coverage: warning: run %u has no file_discovered: the stream starts "
				"in the middle of a run, so its report is partial\n", run->number);
		else
			fprintf(stderr, "provium-coverage: warning: run %u: %zu of %zu files never completed (first: %s): "
				"the stream was cut short, so its report is partial\n", run->number,
				run->files.n - run->files.ndone, run->files.n, pathset_first_open(&run->files));
		c->status = 1;
	}
	pv_cov_release(&run->r);
	pathset_release(&run->files);
	*run = (struct run){ 0 };
	pv_cov_init(&run->r, c->by);
}

static int on_event(void *ctx, const struct pv_event *ev, uint64_t off)
{
	struct cov *c = ctx;
	struct run *run = &c->run;

	(void)off;
	/* a run's file_discovered frames come before anything else it emits */
	if (!run->number || (ev->kind == PV_EV_FILE_DISCOVERED && c->have_prev && c->prev != PV_EV_FILE_DISCOVERED)) {
		end_run(c);
		run->number = ++c->runs;
	}
	c->have_prev = true;
	c->prev = ev->kind;
	c->frames++;
	if (run->printed)
		return 0; /* reported live at completion; nothing more of this run can count */
	pv_cov_count(&run->r, ev);
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED: pathset_add(&run->files, &ev->u.file_discovered.path); break;
	case PV_EV_FILE_COMPLETED:
		pathset_complete(&run->files, &ev->u.file_completed.path);
		if (c->live && run_complete(run))
			print_run(c);
		break;
	default: break;
	}
	return 0;
}

static void usage(FILE *f)
{
	fputs("usage: provium-coverage [--from FILE|-]... [--from-socket PATH] [--by KEY] [--json] [-v]\n"
	      "\n"
	      "Counts passed/failed/skipped tests per value of meta[KEY] in Provium event streams.\n"
	      "  --from FILE        read a saved stream (repeatable: shards merge); - is stdin\n"
	      "  --from-socket PATH read live from `provium --events-socket PATH` until it closes\n"
	      "  --by KEY           metadata key to bucket by (default: spec)\n"
	      "  --json             print each run's report as one line of JSON\n"
	      "  -v, --verbose      list each bucket's tests\n"
	      "  -h, --help         this help\n"
	      "Input is split into runs (a file_discovered after other kinds starts one); each run gets\n"
	      "its own report, later ones titled \"run N:\" (--json: one object per line).\n"
	      "Exit status: 0 every run complete; 1 input cut short (a partial frame, a run whose files did\n"
	      "not all complete): the report of what was read and a warning; 2 bad usage, an empty or a\n"
	      "malformed stream.\n",
	      f);
}

struct source {
	const char *name;
	int is_socket;
};

static int open_source(const struct source *s, char *why, size_t whylen)
{
	int fd;
	if (s->is_socket) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(s->name) >= sizeof(sa.sun_path)) {
			snprintf(why, whylen, "socket path is too long");
			return -1;
		}
		strcpy(sa.sun_path, s->name);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			snprintf(why, whylen, "cannot connect: %s (is `provium --events-socket %s` running?)",
				 strerror(errno), s->name);
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	if (strcmp(s->name, "-") == 0)
		return 0;
	fd = open(s->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "from-socket", required_argument, NULL, 's' },
		{ "by", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct source *src = NULL;
	size_t nsrc = 0;
	struct cov cov = { .by = "spec" };
	int c, status = 0, stdin_used = 0;
	char errbuf[PV_ERR_MSG_MAX + 1024] = "";

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
		case 's':
			if (c == 'f' && strcmp(optarg, "-") == 0 && stdin_used++) {
				fprintf(stderr, "provium-coverage: --from - given twice; stdin can be read once\n");
				free(src);
				return 2;
			}
			src = xrealloc(src, (nsrc + 1) * sizeof(*src));
			src[nsrc++] = (struct source){ optarg, c == 's' };
			break;
		case 'b':
			if (!*optarg) {
				fprintf(stderr, "provium-coverage: --by needs a non-empty key\n");
				free(src);
				return 2;
			}
			cov.by = optarg;
			break;
		case 'j': cov.json = true; break;
		case 'v': cov.verbose = true; break;
		case 'h': usage(stdout); return 0;
		case ':':
			fprintf(stderr, "provium-coverage: %s needs a value\n", argv[optind - 1]);
			free(src);
			return 2;
		default:
			fprintf(stderr, "provium-coverage: unknown option %s (see --help)\n", argv[optind - 1]);
			free(src);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "provium-coverage: unexpected argument '%s'; streams are given with --from\n",
			argv[optind]);
		free(src);
		return 2;
	}
	if (nsrc == 0) {
		fprintf(stderr, "provium-coverage: no input; give --from FILE, --from - or --from-socket PATH\n");
		free(src);
		return 2;
	}
	pv_cov_init(&cov.run.r, cov.by);
	for (size_t i = 0; i < nsrc && !status; i++) {
		struct pv_err err;
		char why[512];
		uint64_t frames = 0;
		int rc, fd = open_source(&src[i], why, sizeof(why));
		if (fd < 0) {
			snprintf(errbuf, sizeof(errbuf), "%s: %s", src[i].name, why);
			status = 2;
			break;
		}
		cov.have_prev = false; /* a new source continues the run: shards merge */
		cov.live = src[i].is_socket && i == nsrc - 1;
		rc = pv_stream_read_fd(fd, on_event, &cov, &frames, &err);
		if (fd > 0)
			close(fd);
		if (rc == -ENODATA) {
			/* cut short inside a frame: what came before stands */
			fprintf(stderr, "provium-coverage: warning: %s: at byte %zu: %s; the report covers the %llu events before it\n",
				src[i].name, err.offset, err.msg, (unsigned long long)frames);
			snprintf(cov.run.error, sizeof(cov.run.error), "%s: at byte %zu: %s", src[i].name, err.offset, err.msg);
			cov.run.cut = true;
			cov.status = 1;
		} else if (rc < 0) {
			snprintf(errbuf, sizeof(errbuf), "%s: at byte %zu: %s", src[i].name, err.offset, err.msg);
			snprintf(cov.run.error, sizeof(cov.run.error), "%s", errbuf);
			cov.run.cut = true; /* the error line says why the run is partial */
			status = 2;
		} else if (frames == 0) {
			snprintf(errbuf, sizeof(errbuf), "%s: the stream is empty: no events to report (was the run's "
				 "output lost, or did the producer exit before sending any?)", src[i].name);
			status = 2;
		}
	}
	/* Report what was read even when a stream is bad, then say what broke. */
	end_run(&cov);
	if (status)
		fprintf(stderr, "provium-coverage: error: %s\n", errbuf);
	free(src);
	return status ? status : cov.status;
}

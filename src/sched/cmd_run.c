/* cmd_run.c - provium [PATH...] (and provium fixture build|rebuild): the
 * process's event loop, the interrupt signals, the outputs (event sinks and
 * the in-process consumers), then one run, or one run per change under
 * --watch (cmd.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ev.h>

#include "cmd.h"
#include "covreport.h"
#include "render.h"
#include "select.h"
#include "sink.h"
#include "sys.h"
#include "watch.h"

struct outputs {
	struct pv_hub hub;
	struct pv_human *human;
	struct pv_jsonl *jsonl;
	struct pv_report *report; /* --junit, --json-summary */
	FILE *human_out, *json_out;
	int human_fd;
	struct lf_state lf;        /* what --rerun-failed will need of this run (select.h) */
	struct pv_cov_report *cov; /* --coverage */
};

static void on_event(void *ctx, const struct pv_event *ev, const uint8_t *frame, size_t len)
{
	struct outputs *out = ctx;
	pv_hub_emit_frame(&out->hub, frame, len);
	if (out->human)
		pv_human_event(out->human, ev);
	if (out->jsonl)
		pv_jsonl_event(out->jsonl, ev);
	if (out->report)
		pv_report_event(out->report, ev);
	lf_run_event(&out->lf, ev);
	if (out->cov)
		pv_cov_count(out->cov, ev);
}

static void on_log(void *ctx, const char *path, const char *test, const char *msg)
{
	struct outputs *out = ctx;
	if (out->human)
		pv_human_log(out->human, path, test, msg);
	if (out->report)
		pv_report_log(out->report, path, test, msg);
}

static void on_notice(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "provium: %s\n", msg);
}

/* The signals that end a run, as a signalfd for the loop (-1 if none). */
static int interrupt_fd(void)
{
	sigset_t mask;
	struct sigaction hup;

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
	if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
		sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

/* A frame sink into the hub; the sink is closed if it cannot join. */
static int add_sink(struct pv_hub *hub, struct pv_sink *s, const char *what)
{
	int rc = pv_hub_add(hub, s);
	if (rc < 0) {
		pv_sink_close(s);
		return cli_fail("%s: cannot serve it: %s", what, strerror(-rc));
	}
	return 0;
}

/* The event sinks and text outputs the options ask for; 0 or CLI_EXIT_USAGE
 * (printed). The hub holds whatever was opened either way. */
static int open_outputs(const struct cli_opts *o, struct outputs *out)
{
	struct pv_sink *sk;
	struct pv_err err;

	if (o->save_events) {
		if (pv_sink_open_file(o->save_events, false, &sk, &err) < 0)
			return cli_fail("--save-events: %s", err.msg);
		if (add_sink(&out->hub, sk, "--save-events"))
			return CLI_EXIT_USAGE;
	}
	if (o->events_stdout) {
		if (pv_sink_open_fd(1, "stdout", &sk, &err) < 0)
			return cli_fail("--events-stdout: %s", err.msg);
		if (add_sink(&out->hub, sk, "--events-stdout"))
			return CLI_EXIT_USAGE;
	}
	if (o->events_socket) {
		if (pv_sink_open_socket(o->events_socket, &sk, &err) < 0)
			return cli_fail("--events-socket: %s", err.msg);
		if (add_sink(&out->hub, sk, "--events-socket"))
			return CLI_EXIT_USAGE;
	}
	/* the text outputs are sinks too: a write that fails is reported and fails the exit status */
	out->human_fd = (o->events_stdout || o->json) ? 2 : 1;
	out->human_out = pv_hub_add_text(&out->hub, out->human_fd,
					 out->human_fd == 1 ? "the report to stdout" : "the report to stderr", &err);
	if (out->human_out && o->json)
		out->json_out = pv_hub_add_text(&out->hub, 1, "the --json output to stdout", &err);
	if (!out->human_out || (o->json && !out->json_out))
		return cli_fail("%s", err.msg);
	return 0;
}

/* --junit and --json-summary of the run that ended, interrupted or not; 0
 * or CLI_EXIT_USAGE (printed). */
static int write_reports(const struct cli_opts *o, const struct pv_report *r, uint64_t wall_ns)
{
	struct pv_err err;
	int rc = 0;

	if (o->junit && pv_junit_write(r, o->junit, wall_ns, &err) < 0)
		rc = cli_fail("--junit: %s; the run's results are in its other outputs", err.msg);
	if (o->json_summary && pv_summary_write(r, o->json_summary, &err) < 0)
		rc = cli_fail("--json-summary: %s; the run's results are in its other outputs", err.msg);
	return rc;
}

/* One run over d (released). Returns its exit status; *interrupted if a
 * signal stopped it. */
static int run_once(const struct cmd_ctx *c, struct outputs *out, struct pv_discovery *d, bool *interrupted)
{
	const struct cli_opts *o = c->o;
	struct pv_sched_result res;
	struct pv_emitter em = { on_event, on_log, on_notice, out };
	struct pv_err err;
	uint64_t t0 = sys_mono_ns();
	bool tty = isatty(out->human_fd);
	const char *term = getenv("TERM");
	bool color = tty && !getenv("NO_COLOR") && term && *term && strcmp(term, "dumb") != 0;
	/* at a prompt (repl, shell, --debug) no progress line may redraw over it */
	bool progress = tty && !c->so->interactive && !o->no_progress;
	/* provium repl: its one test's outcome is no news */
	int verbosity = o->interactive_cmd && !strcmp(o->interactive_cmd, "repl") ? PV_QUIET : o->verbosity;
	struct pv_cov_report cov;
	int exit_code;

	pv_cov_init(&cov, o->coverage_by ? o->coverage_by : "spec");
	out->cov = o->coverage ? &cov : NULL;
	c->so->roots = c->roots;
	c->so->nroots = c->nroots;
	out->human = pv_human_new(out->human_out, (enum pv_verbosity)verbosity, color, progress);
	pv_human_set_tty(out->human, out->human_fd);
	out->jsonl = o->json ? pv_jsonl_new(out->json_out) : NULL;
	/* NULL (out of memory) is said when the reports cannot be written */
	out->report = o->junit || o->json_summary ? pv_report_new() : NULL;
	for (size_t i = 0; out->report && i < d->nfiles; i++)
		pv_report_file_path(out->report, d->files[i].rel_path, d->files[i].abs_path);
	if (d->nfiles == 0)
		fprintf(stderr, "provium: no *.test.lua files under %s%s\n", c->roots[0],
			c->nroots > 1 ? " (and the other roots)" : "");
	if (pv_sched_run(c->so, d, &em, &res, &err) < 0) {
		fprintf(stderr, "provium: %s\n", err.msg);
		exit_code = CLI_EXIT_USAGE;
	} else {
		/* 128+N like a shell reports death by signal N: 130 SIGINT, 143 SIGTERM, 129 SIGHUP */
		exit_code = res.interrupted ? 128 + (res.signal > 0 ? res.signal : SIGINT) : res.failed ? 1 : 0;
		if (d->nfiles == 0 && exit_code == 0)
			exit_code = CLI_EXIT_USAGE; /* nothing ran: almost always a wrong path */
		sel_record(c, d, &out->lf, res.interrupted);
	}
	pv_human_finish(out->human, sys_mono_ns() - t0, res.interrupted ? (res.signal > 0 ? res.signal : -1) : 0);
	if (out->cov) {
		fputc('\n', out->human_out);
		pv_cov_print_text(out->cov, o->verbosity == PV_VERBOSE, out->human_out);
		fflush(out->human_out);
	}
	if (out->jsonl)
		pv_jsonl_finish(out->jsonl, sys_mono_ns() - t0, exit_code);
	if ((o->junit || o->json_summary) && write_reports(o, out->report, sys_mono_ns() - t0) && exit_code < 128)
		exit_code = CLI_EXIT_USAGE; /* an interrupt keeps its 128+N */
	out->report = pv_report_free(out->report);
	out->human = pv_human_free(out->human);
	out->jsonl = pv_jsonl_free(out->jsonl);
	out->cov = NULL;
	pv_cov_release(&cov);
	lf_state_release(&out->lf);
	pv_discovery_release(d);
	*interrupted = res.interrupted;
	return exit_code;
}

int cmd_run(const struct cmd_ctx *c)
{
	const struct cli_opts *o = c->o;
	struct pv_discovery jobs = { 0 };
	struct outputs out = { 0 };
	struct ev_loop *loop = NULL;
	int sfd = -1, exit_code = 0;
	char repl_dir[4096] = "";

	pv_hub_init(&out.hub, on_notice, NULL);
	/* a Debian profile's first build takes minutes: before any file's clock runs */
	if ((exit_code = cmd_image_prepare(c->cfg)) != 0)
		goto out;
	if (o->fixture_cmd) {
		c->so->fixture_build = true;
		c->so->fixture_force = strcmp(o->fixture_cmd, "rebuild") == 0;
		if ((exit_code = cmd_fixture_jobs(c, &jobs)) != 0)
			goto out;
	} else if (o->interactive_cmd && !strcmp(o->interactive_cmd, "repl")) {
		if ((exit_code = cmd_repl_jobs(c, &jobs, repl_dir, sizeof(repl_dir))) != 0)
			goto out;
	} else if (o->interactive_cmd && (exit_code = cmd_shell_check(c)) != 0) {
		goto out;
	}
	/* One loop for the process: the run's watchers (scheduler.h), the
	 * event socket's (pv_hub_attach) and the --watch pause's share it */
	loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
	if (!loop) {
		exit_code = cli_fail("cannot create an event loop: %s", strerror(errno));
		goto out;
	}
	sfd = interrupt_fd();
	c->so->interrupt_fd = sfd;
	c->so->loop = loop;
	if ((exit_code = open_outputs(o, &out)) != 0)
		goto out;
	pv_hub_attach(&out.hub, loop);

	for (unsigned iteration = 0;; iteration++) {
		struct pv_discovery d;
		struct pv_err err;
		bool interrupted = false;
		int sig = 0;

		if (iteration > 0)
			pv_hub_begin_run(&out.hub); /* --save-events restarts, the socket's replay too */
		if (jobs.nfiles) {
			d = jobs; /* provium fixture build: the builders are the files; provium repl: its file */
			memset(&jobs, 0, sizeof(jobs));
		} else if (pv_discover((const char *const *)c->roots, c->nroots, o->filter, &d, &err) < 0) {
			fprintf(stderr, "provium: %s\n", err.msg);
			exit_code = CLI_EXIT_USAGE;
			if (!o->watch)
				break;
			goto pause;
		} else if ((exit_code = sel_apply(c, &d)) != 0) {
			/* --since / --rerun-failed: nothing to run is no failure; a bad ref is */
			pv_discovery_release(&d);
			exit_code = exit_code == SEL_NOTHING ? 0 : exit_code;
			if (exit_code == 0 && (o->junit || o->json_summary)) {
				/* a CI step reads the report whatever ran: an empty one */
				struct pv_report *empty = pv_report_new();
				exit_code = write_reports(o, empty, 0);
				pv_report_free(empty);
			}
			if (!o->watch)
				break;
			goto pause;
		}
		exit_code = run_once(c, &out, &d, &interrupted);
		if (interrupted || !o->watch)
			break;
	pause:
		fprintf(stderr, "provium: watching %s for changes (Ctrl-C to stop)\n", c->roots[0]);
		if (!watch_wait(loop, c->roots, c->nroots, sfd, &sig)) {
			if (sig > 0) {
				/* an interrupt ends the watch, not the last run's status */
				const char *abbr = sigabbrev_np(sig);
				fprintf(stderr, "provium: interrupted by SIG%s while watching\n", abbr ? abbr : "?");
				exit_code = 128 + sig;
			}
			break;
		}
	}
	if (pv_hub_release(&out.hub) && exit_code < 128) /* an interrupt keeps its 128+N */
		exit_code = CLI_EXIT_USAGE; /* an output could not be written (said when it failed) */
out:
	pv_hub_release(&out.hub); /* after a usage error: whatever was opened */
	pv_discovery_release(&jobs);
	if (loop)
		ev_loop_destroy(loop);
	if (sfd >= 0)
		close(sfd);
	if (repl_dir[0])
		sys_rm_tree(repl_dir, NULL, 0);
	return exit_code;
}

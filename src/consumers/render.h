/* render.h - the in-process consumers of the event stream: the human
 * renderer, --json (JSON Lines) and the reports written when a run ends
 * (--junit, --json-summary). All see every event the scheduler emits, in
 * order, as decoded structs, and nothing else but the t:log lines: what they
 * show is exactly what any other consumer of the stream could show.
 */
#ifndef PV_RENDER_H
#define PV_RENDER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "event.h"

enum pv_verbosity { PV_QUIET = -1, PV_NORMAL = 0, PV_VERBOSE = 1 };

struct pv_human;

/* out: where the report goes (stdout, or stderr with --events-stdout).
 * color/progress: decided by the caller (only on a TTY, NO_COLOR honoured). */
struct pv_human *pv_human_new(FILE *out, enum pv_verbosity v, bool color, bool progress);
/* The terminal behind out, for the progress line's width, when out has no fd
 * of its own (a stream from pv_sink_stream); default fileno(out). */
void pv_human_set_tty(struct pv_human *h, int fd);
void pv_human_event(struct pv_human *h, const struct pv_event *ev);
/* Test logs (t:log) are not events; the scheduler passes them through here so
 * a failure can show them. */
void pv_human_log(struct pv_human *h, const char *path, const char *test, const char *msg);
/* Prints the summary line: counts of passed/failed/skipped tests, files, wall time. */
/* The summary line; signal: what interrupted the run (its name is shown), 0
 * if nothing did, < 0 interrupted by something unnamed. */
void pv_human_finish(struct pv_human *h, uint64_t wall_ns, int signal);
struct pv_human *pv_human_free(struct pv_human *h);

struct pv_jsonl;
struct pv_jsonl *pv_jsonl_new(FILE *out);
/* One line per event: {"ts":..,"kind":..,"payload":{..}}, bin as {"$bytes": base64}, flushed. */
void pv_jsonl_event(struct pv_jsonl *j, const struct pv_event *ev);
/* The closing summary object: {"summary": {passed, failed, skipped, files, wall_ns, exit_code}}. */
void pv_jsonl_finish(struct pv_jsonl *j, uint64_t wall_ns, int exit_code);
struct pv_jsonl *pv_jsonl_free(struct pv_jsonl *j);

/* --junit and --json-summary: the run's outcomes kept per file and per test
 * (src/consumers/results.h says what comes from which event), written out
 * when the run ends, whatever ended it.
 *
 * Protocol:
 *   1. r = pv_report_new() (NULL: out of memory).
 *   2. pv_report_file_path for each file the run opens (optional), then
 *      every event through pv_report_event and every t:log line through
 *      pv_report_log, as they come.
 *   3. pv_junit_write / pv_summary_write, as many times as wanted.
 *   4. pv_report_free(r).
 * Out of memory only drops details; the writers return 0 or a negative
 * errno with err filled ("cannot write PATH: ..."). Each writes PATH
 * atomically (a temporary file beside it, renamed over it). */
struct pv_report;
struct pv_report *pv_report_new(void);
void pv_report_event(struct pv_report *r, const struct pv_event *ev);
void pv_report_log(struct pv_report *r, const char *path, const char *test, const char *msg);
/* The path the run opens rel_path by (its root as given + "/" + rel_path,
 * a leading "./" dropped): a JUnit testcase's file, which CI annotations
 * need relative to the checkout, not to a root. */
void pv_report_file_path(struct pv_report *r, const char *rel_path, const char *open_path);
/* JUnit XML (junit.c: what maps to what); wall_ns: the run's wall time. */
int pv_junit_write(const struct pv_report *r, const char *path, uint64_t wall_ns, struct pv_err *err);
/* JSON Lines, one object per file in discovery order (summary.c: fields). */
int pv_summary_write(const struct pv_report *r, const char *path, struct pv_err *err);
struct pv_report *pv_report_free(struct pv_report *r);

#endif

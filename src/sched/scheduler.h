/* sched.h - the scheduler: dispatches test files to runner processes inside a
 * memory/CPU pool, watches host pressure, enforces timeouts, and turns
 * everything that happens into events.
 *
 * Guarantees (spec/events-reference.txt): file_discovered for every file
 * before the first dispatch; per file at most one file_dispatched (file_blocked
 * only before it) and exactly one file_completed, also for files never
 * dispatched because the run stopped early (status failed, duration 0, no
 * tests); per registered test exactly one test_started then exactly one
 * terminal event, including tests cut off by a crash, a timeout or an
 * interrupt (SIGINT/SIGTERM/SIGHUP, res->signal); claim_acquired/
 * claim_released paired per file; every vm_spawned and fixture_build_started
 * a runner forwards gets its vm_shutdown / fixture_build_done, emitted by the
 * scheduler for a runner that dies first (before the file's test ends and
 * file_completed); pool_state at 1 Hz. An event of the scheduler's own that
 * cannot be encoded stops the run and pv_sched_run fails naming it.
 *
 * Pool: pool.h (what a file reserves at dispatch, what its VMs draw).
 */
#ifndef PV_SCHEDULER_H
#define PV_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "discover.h"
#include "event.h"
#include "pool.h"

#define PV_DEFAULT_FILE_TIMEOUT (300ull * 1000000000ull)

struct pv_emitter {
	/* every event, in order: decoded, and as the exact frame bytes */
	void (*event)(void *ctx, const struct pv_event *ev, const uint8_t *frame, size_t len);
	/* t:log() and print() from a test */
	void (*log)(void *ctx, const char *path, const char *test, const char *msg);
	/* a one-line notice for the user (e.g. PSI unavailable) */
	void (*notice)(void *ctx, const char *msg);
	void *ctx;
};

struct pv_sched_opts {
	char **roots; /* for package.path in runners */
	size_t nroots;
	struct pv_resource pool;     /* total, overcommit applied */
	uint32_t vcpus;              /* VM vCPUs of all files; 0: PV_VCPU_RATIO x pool.cpus */
	uint64_t timeout_ceiling_ns; /* 0: none */
	double psi_threshold;        /* 0: never throttle */
	bool fail_fast;
	unsigned jobs;               /* at most this many files at once; 0: the pool decides */
	bool include_slow;
	char **tags, **no_tags;
	size_t ntags, nno_tags;
	char **tag_meta, **no_tag_meta; /* --tag-meta / --no-tag-meta KEY=VALUE */
	size_t ntag_meta, nno_tag_meta;
	int interrupt_fd; /* signalfd for SIGINT/SIGTERM/SIGHUP, or -1 */
	/* The process's event loop: pv_sched_run registers the run's watchers on
	 * it, runs it until the run ends and removes them again; other modules'
	 * watchers on it (the event socket, pv_hub_attach) are served meanwhile.
	 * NULL: a loop of its own for the run. */
	struct ev_loop *loop;
	const char *config_path; /* provium.lua in use, or NULL: runners read profiles from it */
	const char *cache_dir;   /* the fixture cache (fcache.h), resolved and created */
	bool fixture_build; /* provium fixture build: every "file" is a NAME.fixture.lua to build */
	bool fixture_force; /* rebuild even if cached */
	/* The terminal goes to a runner that pauses (t:pause(), provium repl and
	 * shell, --debug): no file timeout, since a person is at the prompt. */
	bool interactive;
	const char *pause_at; /* provium shell --at TEST, or NULL */
};

struct pv_sched_result {
	unsigned passed, failed, skipped, files;
	bool interrupted;
	int signal; /* with interrupted: the signal (SIGINT, SIGTERM, SIGHUP) */
};

int pv_sched_run(const struct pv_sched_opts *o, const struct pv_discovery *d, const struct pv_emitter *em,
		 struct pv_sched_result *res, struct pv_err *err);

#endif

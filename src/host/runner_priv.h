/* runner_priv.h - what runner.c shares with the Lua VM bindings (lua_vm.c).
 * Internal to the runner process. */
#ifndef PV_RUNNER_PRIV_H
#define PV_RUNNER_PRIV_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "err.h"
#include "event.h"

/* Sends the control message built in *runner_out() and waits for the reply. */
struct pv_buf *runner_out(void);
void runner_send(void);
void runner_recv(struct ctl_msg *m);
void runner_emit(struct pv_event *ev);
const char *runner_path(void);
const char *runner_config_path(void);
/* This run's scratch directory (removed by the scheduler at the end). */
const char *runner_scratch(void);
/* Name of the running test, NULL at file scope. */
const char *runner_current_test(void);
/* Raises a test failure (no traceback) with "file:line: " of the caller. */
int runner_failf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The running test's deadline (monotonic ns), 0 if none; raising its timeout
 * failure (during: what was going on, or NULL). Once raised, the same failure
 * is raised again at every hook and after every pcall until the test ends. */
uint64_t runner_test_deadline(void);
int runner_test_timed_out(lua_State *L, const char *during);

/* A duration (seconds, or "500ms"/"5s"/...) or a size (bytes, or "512M")
 * at idx, in ns / bytes; raises naming `what` otherwise. */
uint64_t runner_check_duration(lua_State *L, int idx, const char *what);
uint64_t runner_check_size(lua_State *L, int idx, const char *what);

/* An options table at idx: none or nil gives false; a table whose keys are
 * all among keys (NULL-terminated) gives true; anything else raises, e.g.
 * `vm:run options: unknown key "evn" (did you mean "env"? valid keys: ...)`.
 * what names the table in messages. */
bool runner_check_opts(lua_State *L, int idx, const char *what, const char *const *keys);

/* provium.lua as loaded at the runner's start (defaults without one). */
struct pv_config;
const struct pv_config *runner_config(void);

/* lua_vm.c */
void lvm_install(lua_State *L);
/* Shuts down VMs created by the test that just ended (or all, at file end). */
void lvm_end_scope(lua_State *L, bool file_end);
/* "--- vm NAME ---\n<last 4 KiB>" for every VM booted by this file; malloc'd. */
char *lvm_console_excerpt(void);
void lvm_cleanup(void);

/* Fixtures (lua_fixture.c) */
struct fc_manifest;
/* The VMs of the Snapshot at idx (vm:snapshot() or provium:snapshot()) into
 * m->vms / m->lab, their files into paths; an error says what it is instead. */
int lvm_snapshot_parts(lua_State *L, int idx, struct fc_manifest *m, char (*paths)[4200], struct pv_err *err);
/* Resumes the VMs of a cache entry as new VMs of L's file and pushes them: the
 * VM (rename_to, if given, names a single VM), or with as_lab a table of VMs by
 * name. Returns 1; 0 when the entry could not be resumed (err says why; nothing
 * is left running). Raises for problems of the call (pool, names). */
int lvm_resume(lua_State *L, const struct fc_manifest *m, const char *entry_dir, const char *rename_to,
	       bool as_lab, struct pv_err *err);
/* Shuts down every VM created in L (a fixture builder's state). */
void lvm_shutdown_state(lua_State *L);
/* lua_fixture.c: provium.vm_fixture / provium.lab_fixture into the provium table on top of L. */
void lfx_install(lua_State *L);
/* Builds fixture `name` now (provium fixture build/rebuild). Raises on failure. */
int lfx_build_cmd(lua_State *L);
/* runner.c: a fresh Lua state with the API of a fixture builder. */
lua_State *runner_builder_state(void);
/* runner.c: the file's roots and cache dir. */
const char *const *runner_roots(size_t *n);
const char *runner_cache_dir(void);

#endif

/* runner_priv.h - what the runner's framework (runner.c) gives the modules
 * of the runner process: the binding modules (src/runner/l*.c, lua_vm.c),
 * the assertions (tassert.c) and fixtures (lua_fixture.c). Internal to the
 * runner process. */
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
/* Raises a skip of the running test with reason (t:skip). */
int runner_skip(lua_State *L, const char *reason);
/* After a catch (t:assert_raises): if the test's time is up, raises its
 * timeout failure again; else returns 0. */
int runner_recheck_timeout(lua_State *L);

/* The running test's deadline (monotonic ns), 0 if none; raising its timeout
 * failure (during: what was going on, or NULL). Once raised, the same failure
 * is raised again at every hook and after every pcall until the test ends. */
uint64_t runner_test_deadline(void);
int runner_test_timed_out(lua_State *L, const char *during);

/* provium.lua as loaded at the runner's start (defaults without one). */
struct pv_config;
const struct pv_config *runner_config(void);

/* lua_fixture.c: provium.vm_fixture / provium.lab_fixture into the provium table on top of L. */
void lfx_install(lua_State *L);
/* Builds fixture `name` now (provium fixture build/rebuild). Raises on failure. */
int lfx_build_cmd(lua_State *L);
/* runner.c: a fresh Lua state with the API of a fixture builder; the caller
 * ends it with scope_close_state(), which closes its VMs. */
lua_State *runner_builder_state(void);
/* runner.c: the file's roots and cache dir. */
const char *const *runner_roots(size_t *n);
const char *runner_cache_dir(void);

#endif

/* runner_priv.h - what the runner's framework (runner.c) gives the modules
 * of the runner process: the binding modules (src/runner/l*.c, lsnap.c),
 * the assertions (tassert.c) and fixtures (lfx.c). Internal to the
 * runner process. */
#ifndef PV_RUNNER_PRIV_H
#define PV_RUNNER_PRIV_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
#include "err.h"
#include "event.h"

#include <stddef.h>

/* Sends the control message built in *runner_out() and waits for the reply. */
struct pv_buf *runner_out(void);
void runner_send(void);
void runner_recv(struct ctl_msg *m);
void runner_emit(struct pv_event *ev);
/* A log line of the running test (of the file's scope outside tests), as
 * t:log sends it; msg must be UTF-8. */
void runner_log(const char *msg);
/* Raises a test failure (no traceback) with "file:line: " of the caller. */
int runner_failf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "file:line" of the innermost Lua caller with a line, for creation sites
 * ("?" when there is none). */
void runner_where(lua_State *L, char *buf, size_t size);
/* Raises a skip of the running test with reason (t:skip). */
int runner_skip(lua_State *L, const char *reason);
/* Raises a test failure whose message is msg exactly (the test's timeout:
 * tclock.h has the running test's clock). */
int runner_fail(lua_State *L, const char *msg);

/* What this runner was started with (the scheduler's start message and
 * provium.lua), fixed once the file starts loading. */
struct pv_config;
struct runner_env {
	const char *path;        /* the file, root-relative, as in events */
	const char *config_path; /* provium.lua, or NULL */
	const char *scratch;     /* this run's scratch directory (removed by the scheduler at the end) */
	const char *cache_dir;   /* the fixture cache, or NULL */
	const char *const *roots;
	size_t nroots;
	const struct pv_config *config; /* provium.lua as loaded (defaults without one) */
	const char *file;               /* the file, openable */
};
const struct runner_env *runner_env(void);

/* A fresh Lua state with the API of a fixture builder; the caller ends it
 * with scope_close_state(), which closes its VMs. */
lua_State *runner_builder_state(void);

#endif

/* runner_priv.h - what runner.c shares with the Lua VM bindings (lua_vm.c).
 * Internal to the runner process. */
#ifndef PV_RUNNER_PRIV_H
#define PV_RUNNER_PRIV_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "ctl.h"
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

/* A duration (seconds, or "500ms"/"5s"/...) or a size (bytes, or "512M")
 * at idx, in ns / bytes; raises naming `what` otherwise. */
uint64_t runner_check_duration(lua_State *L, int idx, const char *what);
uint64_t runner_check_size(lua_State *L, int idx, const char *what);

/* lua_vm.c */
void lvm_install(lua_State *L);
/* Shuts down VMs created by the test that just ended (or all, at file end). */
void lvm_end_scope(lua_State *L, bool file_end);
/* "--- vm NAME ---\n<last 4 KiB>" for every VM booted by this file; malloc'd. */
char *lvm_console_excerpt(void);
void lvm_cleanup(void);

#endif

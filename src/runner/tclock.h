/* tclock.h - the running test's clock: its meta.timeout deadline, and the
 * timeout failure that cannot be caught (docs/lua-api.md, "What happens when
 * things go wrong"). Once the time is up, the same failure is raised again at
 * every count hook, after every catch (catch.c, t:assert_raises) and by every
 * wait that checks it, until the test ends, so user code cannot swallow it.
 * Process-wide on purpose: one test runs at a time, and a fixture builder's
 * state runs on the time of the test that needs the fixture.
 *
 * Protocol: tclock_start(timeout) before the test's function, tclock_stop()
 * after it; tclock_hook is every state's count hook.
 */
#ifndef PV_TCLOCK_H
#define PV_TCLOCK_H

#include <lua.h>
#include <stdint.h>

/* timeout_ns 0: the test has none. */
void tclock_start(uint64_t timeout_ns);
void tclock_stop(void);
/* Stops the clock (t:pause at the prompt): the time left, 0 if none;
 * tclock_resume(left) starts it again with that much. */
uint64_t tclock_pause(void);
void tclock_resume(uint64_t left);
/* The deadline (monotonic ns), 0 if none. */
uint64_t tclock_deadline(void);
/* Raises the test's timeout failure; during (or NULL) says what was going on
 * when it was first detected ("vm:run(\"sleep 9\")"); later raises repeat it. */
int tclock_timed_out(lua_State *L, const char *during);
/* If the time is up, raises the timeout failure again; else returns 0. */
int tclock_recheck(lua_State *L);
/* The count hook (lua_sethook, LUA_MASKCOUNT). */
void tclock_hook(lua_State *L, lua_Debug *ar);

#endif

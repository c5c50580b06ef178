/* wait.h - wait_until(pred, {timeout=, interval=, desc=}) (docs/lua-api.md,
 * "Waiting"): calls pred every interval until it returns a true value (then
 * returns it); fails the test when timeout (default 10s) passes, and raises
 * the test's timeout once its meta.timeout is up. Errors of pred propagate.
 */
#ifndef PV_WAIT_H
#define PV_WAIT_H

#include <lua.h>

/* Sets the global wait_until. */
void wait_install(lua_State *L);

#endif

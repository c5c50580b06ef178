/* catch.h - the catchers of test code: pcall, xpcall and coroutine.resume
 * wrapped so that once the running test's time is up they raise its timeout
 * again instead of returning (a loop of pcalls ends with the test), and a
 * refused allocation they caught reads as the Lua memory limit (lheap.h),
 * not as "not enough memory". They stay yieldable (lua_callk).
 */
#ifndef PV_CATCH_H
#define PV_CATCH_H

#include <lua.h>

/* Replaces the globals pcall, xpcall and coroutine.resume of L. */
void catch_install(lua_State *L);

#endif

/* tassert.h - the assertions of the test handle t (t:assert, t:assert_eq,
 * t:assert_neq, t:assert_contains, t:assert_raises, t:fail, t:skip;
 * docs/lua-api.md, "The test handle"), and the value rendering their
 * messages use. A failed assertion raises a failure (runner_failf) that the
 * runner reports without a traceback.
 */
#ifndef PV_TASSERT_H
#define PV_TASSERT_H

#include <lua.h>

/* Creates the metatable "provium.test" whose __index holds the assertions
 * (the runner adds t:log to that table). */
void tassert_install(lua_State *L);

/* Pushes a short, readable rendering of the value at idx (strings quoted and
 * escaped, tables to 3 levels and 20 entries) and returns it; it stays valid
 * while it is on the stack. */
const char *tassert_repr(lua_State *L, int idx);

#endif

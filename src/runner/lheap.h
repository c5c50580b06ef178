/* lheap.h - the Lua heap of the runner process (docs/lua-api.md, "Lua
 * memory"). Every Lua state of the runner allocates through lheap_alloc,
 * which counts the bytes in use and, while armed (user code runs: file scope,
 * tests, fixture builders), refuses to grow past the limit: Lua then raises
 * its memory error, the test fails, and the runner goes on. Unarmed (the
 * runner's own bookkeeping between tests) there is no limit, so that no
 * allocation of the runner's fails outside a protected call, which would
 * abort. The count is process-wide on purpose: the limit is per runner, over
 * all of its states.
 */
#ifndef PV_LHEAP_H
#define PV_LHEAP_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

/* The lua_Alloc for lua_newstate (ud unused). */
void *lheap_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
void lheap_set_limit(size_t bytes);
size_t lheap_limit(void);
void lheap_arm(bool armed);
/* How often the limit refused so far: a change across a call says the call hit it. */
unsigned long lheap_refusals(void);
/* "Lua memory limit exceeded (...)", the failure that replaces Lua's message. */
const char *lheap_limit_msg(char *buf, size_t len);
/* Lua's message for a refused allocation ("not enough memory") at idx. */
bool lheap_is_memory_error(lua_State *L, int idx);

#endif

/* lheap.c - the runner's Lua heap and its limit (contract in lheap.h). */
#include "lheap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "units.h"

/* Process-wide: see lheap.h. */
static struct {
	size_t used, limit;
	bool armed;
	unsigned long refusals; /* how often the limit refused; a change says who hit it */
} M = { 0, PV_DEFAULT_LUA_MEMORY, false, 0 };

void *lheap_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	size_t old = ptr ? osize : 0; /* without ptr, osize is the kind of object */
	void *p;

	(void)ud;
	if (nsize == 0) {
		free(ptr);
		M.used -= old;
		return NULL;
	}
	/* shrinking must never fail (Lua relies on it); only growth is capped */
	if (nsize > old && M.armed && M.used - old + nsize > M.limit) {
		M.refusals++;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (p)
		M.used = M.used - old + nsize;
	return p;
}

void lheap_set_limit(size_t bytes) { M.limit = bytes; }
size_t lheap_limit(void) { return M.limit; }
void lheap_arm(bool armed) { M.armed = armed; }
unsigned long lheap_refusals(void) { return M.refusals; }

const char *lheap_limit_msg(char *buf, size_t len)
{
	char b[32];
	snprintf(buf, len,
		 "Lua memory limit exceeded (%s of Lua heap per runner; raise it with provium:claim{memory = ...} "
		 "in the file or lua_memory in provium.lua)",
		 pv_format_size(M.limit, b));
	return buf;
}

bool lheap_is_memory_error(lua_State *L, int idx)
{
	return lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "not enough memory") == 0;
}

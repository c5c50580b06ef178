/* tclock.c - the running test's clock (contract in tclock.h). */
#include "tclock.h"

#include <stdbool.h>
#include <stdio.h>

#include "qmp.h" /* pv_mono_ns */
#include "runner_priv.h"
#include "units.h"

/* Process-wide: see tclock.h. */
static struct {
	uint64_t deadline; /* monotonic ns; 0: none */
	uint64_t timeout;
	bool timed_out;
	char msg[600];
} C;

void tclock_start(uint64_t timeout_ns)
{
	C.timeout = timeout_ns;
	C.deadline = timeout_ns ? pv_mono_ns() + timeout_ns : 0;
	C.timed_out = false;
}

void tclock_stop(void)
{
	C.deadline = 0;
	C.timed_out = false;
}

uint64_t tclock_deadline(void) { return C.deadline; }

uint64_t tclock_pause(void)
{
	uint64_t now = pv_mono_ns(), left = C.deadline ? (C.deadline > now ? C.deadline - now : 1) : 0;
	C.deadline = 0;
	return left;
}

void tclock_resume(uint64_t left)
{
	if (left)
		C.deadline = pv_mono_ns() + left;
}

int tclock_timed_out(lua_State *L, const char *during)
{
	if (!C.timed_out) {
		/* the first detection says what was going on; every raise after it repeats it */
		char b[32];
		snprintf(C.msg, sizeof(C.msg), "test timed out after %s (meta.timeout)%s%.500s",
			 pv_format_duration(C.timeout, b), during ? " during " : "", during ? during : "");
		C.timed_out = true;
	}
	return runner_fail(L, C.msg);
}

int tclock_recheck(lua_State *L)
{
	return C.timed_out ? runner_fail(L, C.msg) : 0;
}

void tclock_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	/* once up, at every hook until the test ends: a pcall may have caught it */
	if (C.timed_out || (C.deadline && pv_mono_ns() >= C.deadline))
		tclock_timed_out(L, NULL);
}

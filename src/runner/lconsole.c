/* lconsole.c - the VM's serial console (contract in lconsole.h). */
#include "lconsole.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lstream.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "units.h"

#define READ_CHUNK 65536

/* The whole log at the console's path, as a string. */
static int c_read_log(lua_State *L)
{
	luaL_Buffer b;
	lua_getfield(L, 1, "path");
	const char *path = luaL_checkstring(L, -1);
	int *fd = scope_fd_box(L); /* the buffer may raise while it grows */
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	luaL_buffinit(L, &b);
	for (;;) {
		char *p;
		ssize_t n;
		if (*fd < 0)
			break;
		p = luaL_prepbuffsize(&b, READ_CHUNK);
		n = read(*fd, p, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		luaL_addsize(&b, (size_t)n);
	}
	luaL_pushresult(&b);
	return 1;
}

/* console:expect(pattern, timeout): waits (inotify on the log, no polling)
 * until the Lua pattern matches text after the previous match; returns the
 * match. */
static int c_expect(lua_State *L)
{
	const char *pattern = luaL_checkstring(L, 2);
	uint64_t timeout = 30000000000ull, deadline;
	if (!lua_isnoneornil(L, 3))
		timeout = opts_duration(L, 3, "expect timeout");
	lua_settop(L, 2);
	deadline = pv_mono_ns() + timeout;
	lua_getfield(L, 1, "path");
	const char *path = lua_tostring(L, -1);
	/* in a box: string.find raises on a malformed pattern, and Lua on memory */
	int *ifd = scope_fd_box(L);
	*ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (*ifd >= 0 && path)
		inotify_add_watch(*ifd, path, IN_MODIFY);
	int base = lua_gettop(L);
	for (;;) {
		lua_Integer off;
		lua_getfield(L, 1, "offset");
		off = lua_tointeger(L, -1);
		lua_pop(L, 1);
		/* s, e = string.find(log, pattern, offset + 1) */
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "find");
		lua_pushcfunction(L, c_read_log);
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		lua_pushvalue(L, 2);
		lua_pushinteger(L, off + 1);
		lua_call(L, 3, 2);
		if (!lua_isnil(L, -2)) {
			lua_Integer s = lua_tointeger(L, -2), e = lua_tointeger(L, -1);
			lua_pushinteger(L, e);
			lua_setfield(L, 1, "offset");
			lua_pushcfunction(L, c_read_log);
			lua_pushvalue(L, 1);
			lua_call(L, 1, 1);
			lua_getfield(L, -1, "sub");
			lua_insert(L, -2);
			lua_pushinteger(L, s);
			lua_pushinteger(L, e);
			lua_call(L, 3, 1);
			if (*ifd >= 0)
				close(*ifd);
			*ifd = -1;
			return 1;
		}
		lua_settop(L, base);
		uint64_t now = pv_mono_ns();
		if (now >= deadline) {
			char b[32];
			close(*ifd); /* now rather than when the box is collected */
			*ifd = -1;
			return runner_failf(L, "console:expect timed out after %s waiting for %s", pv_format_duration(timeout, b),
					    pattern);
		}
		struct pollfd p = { .fd = *ifd, .events = POLLIN };
		int wait = (int)((deadline - now) / 1000000u) + 1;
		if (*ifd < 0 || wait > 250)
			wait = *ifd < 0 ? 20 : 250; /* without inotify: poll the file */
		poll(&p, *ifd >= 0 ? 1 : 0, wait);
		if (*ifd >= 0) {
			char buf[4096];
			while (read(*ifd, buf, sizeof(buf)) > 0)
				;
		}
	}
}

static int l_console(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	if (!v->booted_ever || !v->console_path)
		return lvm_state_error(L, v, "console()");
	lua_createtable(L, 0, 3);
	lua_pushstring(L, v->console_path);
	lua_setfield(L, -2, "path");
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "vm");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "offset");
	luaL_setmetatable(L, "provium.console");
	return 1;
}

/* console:read(opts): a Stream of the console log, from its start (everything
 * this QEMU printed) or, with {start = "end"}, from now. */
static int c_read(lua_State *L)
{
	static const char *const keys[] = { "start", "buffer", NULL };
	bool opts = opts_check(L, 2, "console:read options", keys);
	uint64_t off = 0;
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "path");
	const char *path = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "vm");
	int vm_idx = lua_gettop(L);
	struct lvm *v = lvm_check(L, vm_idx);
	if (opts && lua_getfield(L, 2, "start") != LUA_TNIL) {
		const char *st = lua_tostring(L, -1);
		if (!st || (strcmp(st, "end") && strcmp(st, "beginning")))
			return luaL_error(L, "console:read: start must be \"beginning\" or \"end\"");
		if (!strcmp(st, "end")) {
			struct stat sb;
			off = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
		}
		lua_pop(L, 1);
	}
	const char *what = lua_pushfstring(L, "console of VM '%s'", v->name);
	lstream_push_host_file(L, vm_idx, path, what, off, opts ? 2 : 0);
	return 1;
}

/* console:write(data, {timeout=}): types data into the guest's ttyS0
 * (vm_console_write). A guest whose kernel services the UART takes any
 * amount (the built-in one's does with no reader too: its PID 1 holds
 * /dev/console open, and the tty keeps or drops what nobody reads); one that
 * does not fills the FIFO's 64 KiB, then stalls the write, which gives up
 * after `timeout` (10 s) without a byte going in, or at the test's timeout,
 * rather than hang the runner. */
static int c_write(lua_State *L)
{
	static const char *const keys[] = { "timeout", NULL };
	size_t len;
	uint64_t stall = 10000000000ull;
	struct pv_err err;
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_type(L, 2) != LUA_TSTRING) /* not a number turned into one */
		return luaL_error(L, "console:write: data must be a string (got %s)", luaL_typename(L, 2));
	if (opts_check(L, 3, "console:write options", keys) && lua_getfield(L, 3, "timeout") != LUA_TNIL)
		stall = opts_duration(L, -1, "console:write timeout");
	const char *data = lua_tolstring(L, 2, &len);
	lua_getfield(L, 1, "vm");
	struct lvm *v = lvm_running(L, -1, "console:write");
	uint64_t left = lvm_test_time_left(L, "console:write");
	int rc = vm_console_write(&v->vm, data, len, stall, left ? pv_mono_ns() + left : 0, NULL, &err);
	if (rc == -ETIMEDOUT) {
		lvm_test_time_left(L, "console:write"); /* the test's time is up: its timeout */
		return runner_failf(L, "console:write: the guest is not reading its console (VM '%s'): %s", v->name,
				    err.msg);
	}
	if (rc == -ECHILD)
		return lvm_died(L, v, "console:write", err.msg);
	if (rc < 0)
		return luaL_error(L, "console:write: VM '%s': %s", v->name, err.msg);
	return 0;
}

static const luaL_Reg console_methods[] = {
	{ "expect", c_expect }, { "read_log", c_read_log }, { "read", c_read }, { "write", c_write }, { NULL, NULL },
};

void lconsole_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_console);
	lua_setfield(L, methods, "console");
	luaL_newmetatable(L, "provium.console");
	luaL_newlib(L, console_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "ctl.h"
#include "event.h"
#include "frame.h"
#include "mpr.h"
#include "units.h"
#include "runner_priv.h"
#include "vm.h"

/* ---- state of this runner ------------------------------------------------- */

struct test_def {
	char *name;
	int fn_ref;
	int meta_ref;
	struct pv_meta_map meta;
	char *skip;   /* meta.skip reason */
	bool slow;
	char **tags;
	size_t ntags;
	uint64_t timeout_ns; /* 0: none */
};

static struct {
	char *path; /* root-relative, as in events */
	char *file; /* openable */
	char **roots;
	size_t nroots;
	char *scratch;
	char *config;
	char *cache_dir;
	char *fixture_build; /* provium fixture build: build this fixture instead of running a file */
	bool fixture_force;
	bool include_slow;
	char **tags, **no_tags;
	size_t ntags, nno_tags;

	struct test_def *tests;
	size_t ntests, cap;
	bool loading; /* file scope is running */
	char *todo;
	bool claimed;
	bool reset_between_tests;
	int reset_ref;    /* the provium:snapshot() taken after file scope, or LUA_NOREF */
	bool reset_dirty; /* a test ran since that snapshot was restored */
	uint64_t file_timeout_ns;
	const char *current; /* name of the running test, for logs */

	uint64_t deadline; /* monotonic ns; 0: none */
	uint64_t test_timeout;
	/* The running test's time is up: every hook and every catch (pcall,
	 * xpcall, coroutine.resume, t:assert_raises) raises timeout_msg again
	 * until the test ends, so user code cannot swallow it. */
	bool timed_out;
	char timeout_msg[600];

	struct pv_config cfg; /* provium.lua, as the scheduler loaded it */

	struct pv_arena arena; /* meta of every test */
	struct frame_dec in;
	struct pv_buf out;
} R;

/* ---- the Lua heap ------------------------------------------------------------
 * Every Lua state of the runner allocates through lua_alloc, which counts the
 * bytes in use and refuses to grow past the limit while user code runs
 * (file scope, tests, fixture builders): Lua then raises its memory error,
 * the test fails, and the runner goes on. Outside user code (the runner's own
 * bookkeeping between tests) there is no limit, so that no allocation of the
 * runner's fails outside a protected call, which would abort. */
static struct {
	size_t used, limit;
	bool armed;
	unsigned long refusals; /* how often the limit refused; a change says who hit it */
} M = { 0, PV_DEFAULT_LUA_MEMORY, false, 0 };

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
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

static const char *memory_limit_msg(char *buf, size_t len)
{
	char b[32];
	snprintf(buf, len,
		 "Lua memory limit exceeded (%s of Lua heap per runner; raise it with provium:claim{memory = ...} "
		 "in the file or lua_memory in provium.lua)",
		 pv_format_size(M.limit, b));
	return buf;
}

/* Lua's message for a refused allocation ("not enough memory"). */
static bool is_memory_error(lua_State *L, int idx)
{
	return lua_type(L, idx) == LUA_TSTRING && strcmp(lua_tostring(L, idx), "not enough memory") == 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "provium runner (%s): ", R.path ? R.path : "?");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(70);
}

static void send_buf(void)
{
	int rc = pv_write_all(PV_RUNNER_FD, R.out.data, R.out.len);
	if (rc < 0)
		die("lost the scheduler: %s", strerror(-rc)); /* the scheduler is gone */
	pv_buf_reset(&R.out);
}

static void emit(struct pv_event *ev)
{
	struct pv_err err;
	ev->ts = pv_now_ns();
	if (pv_event_encode(ev, &R.out, &err) < 0)
		die("cannot encode %s: %s", pv_event_kind_name(ev->kind), err.msg);
	send_buf();
}

/* Blocks for the next control message from the scheduler. */
static void recv_ctl(struct ctl_msg *m)
{
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		struct pv_err err;
		int rc = frame_dec_next(&R.in, &body, &len, NULL, &err);
		if (rc == 1) {
			if (ctl_parse_dir(body, len, CTL_TO_RUNNER, m, &err) < 0)
				die("bad control message: %s", err.msg);
			return;
		}
		if (rc < 0)
			die("bad frame from the scheduler: %s", err.msg);
		ssize_t n = frame_dec_read_fd(&R.in, PV_RUNNER_FD);
		if (n == 0)
			die("the scheduler closed the connection");
		if (n < 0)
			die("read: %s", strerror((int)-n));
	}
}

/* ---- failures and skips as Lua errors ------------------------------------ */

/* Assertion failures and skips travel as tables so that the message handler
 * can tell them from runtime errors (which get a traceback). */
static int raise_kind(lua_State *L, const char *kind, const char *msg)
{
	lua_createtable(L, 0, 1);
	lua_pushstring(L, msg);
	lua_setfield(L, -2, kind);
	luaL_setmetatable(L, "provium.error"); /* tostring(e) is the message */
	return lua_error(L);
}

static int error_tostring(lua_State *L)
{
	if (lua_getfield(L, 1, "provium_failure") != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_getfield(L, 1, "provium_skip");
	}
	return 1;
}

/* The running test's time is up: its timeout failure, again. */
static int raise_timeout(lua_State *L)
{
	return raise_kind(L, "provium_failure", R.timeout_msg);
}

int runner_failf(lua_State *L, const char *fmt, ...)
{
	va_list ap;
	luaL_where(L, 1);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_concat(L, 2);
	return raise_kind(L, "provium_failure", lua_tostring(L, -1));
}

struct pv_buf *runner_out(void) { return &R.out; }
void runner_send(void) { send_buf(); }
void runner_recv(struct ctl_msg *m) { recv_ctl(m); }
void runner_emit(struct pv_event *ev) { emit(ev); }
const char *runner_path(void) { return R.path; }
const char *runner_current_test(void) { return R.current; }
const char *runner_config_path(void) { return R.config; }
const char *runner_scratch(void) { return R.scratch ? R.scratch : "/tmp"; }
const char *runner_cache_dir(void) { return R.cache_dir; }
const struct pv_config *runner_config(void) { return &R.cfg; }
const char *const *runner_roots(size_t *n)
{
	*n = R.nroots;
	return (const char *const *)R.roots;
}

/* Pushes a short, readable rendering of the value at idx, for failure
 * messages. Each piece is pushed and concatenated on the stack: a luaL_Buffer
 * must stay at the top while it grows, and the table walk pushes keys and
 * values above it. */
static void repr(lua_State *L, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 8, "rendering a value");
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		luaL_Buffer b;
		luaL_buffinit(L, &b);
		luaL_addchar(&b, '"');
		for (size_t i = 0; i < n && i < 400; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"' || c == '\\') {
				luaL_addchar(&b, '\\');
				luaL_addchar(&b, (char)c);
			} else if (c == '\n') {
				luaL_addstring(&b, "\\n");
			} else if (c < 32 || c == 127) {
				char tmp[8];
				snprintf(tmp, sizeof(tmp), "\\x%02x", c);
				luaL_addstring(&b, tmp);
			} else {
				luaL_addchar(&b, (char)c);
			}
		}
		if (n > 400)
			luaL_addstring(&b, "...");
		luaL_addchar(&b, '"');
		luaL_pushresult(&b);
		return;
	}
	case LUA_TTABLE: {
		int n = 0, text;
		if (depth > 2) {
			lua_pushliteral(L, "{...}");
			return;
		}
		lua_pushliteral(L, "{");
		text = lua_gettop(L); /* the rendering so far */
		lua_pushnil(L);
		while (lua_next(L, idx)) { /* text key value */
			int k = text + 1, v = text + 2;
			if (n++)
				lua_pushliteral(L, ", ");
			else
				lua_pushliteral(L, "");
			if (n > 20) {
				lua_pushliteral(L, "...");
			} else {
				if (lua_type(L, k) == LUA_TSTRING) {
					lua_pushvalue(L, k);
					lua_pushliteral(L, " = ");
				} else if (!(lua_isinteger(L, k) && lua_tointeger(L, k) == n)) {
					lua_pushliteral(L, "[");
					repr(L, k, depth + 1);
					lua_pushliteral(L, "] = ");
				}
				repr(L, v, depth + 1);
			}
			lua_concat(L, lua_gettop(L) - v); /* this entry */
			lua_pushvalue(L, text);
			lua_insert(L, -2);
			lua_concat(L, 2);
			lua_replace(L, text);
			if (n > 20) {
				lua_settop(L, text);
				break;
			}
			lua_settop(L, k); /* the key, for lua_next */
		}
		lua_pushliteral(L, "}");
		lua_concat(L, 2);
		return;
	}
	default:
		luaL_tolstring(L, idx, NULL);
		return;
	}
}

static const char *repr_str(lua_State *L, int idx)
{
	repr(L, idx, 0);
	return lua_tostring(L, -1);
}

/* Deep equality compares tables nested this deep; deeper ones (or a cycle)
 * are an error rather than a wrong answer or a C stack overflow. */
#define DEEP_EQ_MAX_DEPTH 200

static bool deep_eq(lua_State *L, int a, int b, int depth)
{
	a = lua_absindex(L, a);
	b = lua_absindex(L, b);
	if (lua_type(L, a) != LUA_TTABLE || lua_type(L, b) != LUA_TTABLE || lua_rawequal(L, a, b))
		return lua_compare(L, a, b, LUA_OPEQ);
	if (depth > DEEP_EQ_MAX_DEPTH)
		luaL_error(L, "cannot compare tables nested deeper than %d levels (is there a cycle?)", DEEP_EQ_MAX_DEPTH);
	/* a key, a value and their counterparts per level */
	luaL_checkstack(L, 6, "comparing nested tables");
	if (luaL_getmetafield(L, a, "__eq") != LUA_TNIL) {
		lua_pop(L, 1);
		return lua_compare(L, a, b, LUA_OPEQ);
	}
	lua_pushnil(L);
	while (lua_next(L, a)) {
		lua_pushvalue(L, -2);
		lua_rawget(L, b);
		bool eq = deep_eq(L, -2, -1, depth + 1);
		lua_pop(L, 2);
		if (!eq) {
			lua_pop(L, 1);
			return false;
		}
	}
	lua_pushnil(L);
	while (lua_next(L, b)) {
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawget(L, a);
		bool missing = lua_isnil(L, -1);
		lua_pop(L, 1);
		if (missing) {
			lua_pop(L, 1);
			return false;
		}
	}
	return true;
}

/* "msg: " prefix when an optional message is given at index idx. */
static const char *opt_msg(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return "";
	lua_pushfstring(L, ": %s", luaL_tolstring(L, idx, NULL));
	return lua_tostring(L, -1);
}

/* ---- t: the test handle ---------------------------------------------------- */

static int t_assert(lua_State *L)
{
	if (lua_toboolean(L, 2))
		return 0;
	return runner_failf(L, "assertion failed%s", opt_msg(L, 3));
}

static int t_assert_eq(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (deep_eq(L, 2, 3, 0))
		return 0;
	const char *a = repr_str(L, 2), *b = repr_str(L, 3);
	return runner_failf(L, "assert_eq failed%s: %s ~= %s", opt_msg(L, 4), a, b);
}

static int t_assert_neq(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (!deep_eq(L, 2, 3, 0))
		return 0;
	const char *a = repr_str(L, 2);
	return runner_failf(L, "assert_neq failed%s: both are %s", opt_msg(L, 4), a);
}

static int t_assert_contains(lua_State *L)
{
	luaL_checkany(L, 3);
	lua_settop(L, 4); /* the message slot: values rendered later go above it */
	if (lua_type(L, 2) == LUA_TSTRING) {
		size_t hn, nn;
		const char *h = lua_tolstring(L, 2, &hn), *n = luaL_checklstring(L, 3, &nn);
		if (nn == 0 || memmem(h, hn, n, nn))
			return 0;
	} else if (lua_type(L, 2) == LUA_TTABLE) {
		lua_Integer len = luaL_len(L, 2);
		for (lua_Integer i = 1; i <= len; i++) {
			lua_geti(L, 2, i);
			bool eq = deep_eq(L, -1, 3, 0);
			lua_pop(L, 1);
			if (eq)
				return 0;
		}
	} else {
		return luaL_error(L, "assert_contains: the haystack must be a string or an array, got %s",
				  luaL_typename(L, 2));
	}
	const char *h = repr_str(L, 2), *n = repr_str(L, 3);
	return runner_failf(L, "assert_contains failed%s: %s not found in %s", opt_msg(L, 4), n, h);
}

static int t_assert_raises(lua_State *L)
{
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	int rc = lua_pcall(L, 0, 0, 0);
	if (R.timed_out)
		return raise_timeout(L); /* not an error of fn's: the test's time is up */
	if (rc == LUA_OK)
		return runner_failf(L, "assert_raises failed%s: the function returned without an error",
			     opt_msg(L, 3));
	if (lua_istable(L, -1)) {
		if (lua_getfield(L, -1, "provium_failure") == LUA_TSTRING)
			return 1; /* an assertion inside: hand back its message */
		lua_pop(L, 1);
	}
	return 1; /* the error object itself */
}

static int t_fail(lua_State *L)
{
	return runner_failf(L, "%s", luaL_optstring(L, 2, "failed"));
}

static int t_skip(lua_State *L)
{
	return raise_kind(L, "provium_skip", luaL_optstring(L, 2, "skipped by t:skip()"));
}

static void send_log(const char *test, const char *msg, size_t len)
{
	if (ctl_put_log(&R.out, test, msg, len) == 0)
		send_buf();
}

static int l_log_values(lua_State *L, int first)
{
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = first; i <= n; i++) {
		if (i > first)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	size_t len;
	const char *s = lua_tolstring(L, -1, &len);
	if (!pv_utf8_valid((const uint8_t *)s, len))
		s = "(log message is not valid UTF-8)", len = strlen(s);
	send_log(R.current ? R.current : "", s, len);
	return 0;
}

static int t_log(lua_State *L) { return l_log_values(L, 2); }
static int l_print(lua_State *L) { return l_log_values(L, 1); }

static const luaL_Reg t_methods[] = {
	{ "assert", t_assert },
	{ "assert_eq", t_assert_eq },
	{ "assert_neq", t_assert_neq },
	{ "assert_contains", t_assert_contains },
	{ "assert_raises", t_assert_raises },
	{ "fail", t_fail },
	{ "skip", t_skip },
	{ "log", t_log },
	{ NULL, NULL },
};

/* ---- meta: Lua table -> MetaMap ------------------------------------------- */

static int meta_value(lua_State *L, int idx, struct pv_meta_value *out, int depth, const char *path);

static bool is_sequence(lua_State *L, int idx, lua_Integer *ret_n)
{
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return false;
		}
		n++;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		bool nil = lua_rawgeti(L, idx, i) == LUA_TNIL;
		lua_pop(L, 1);
		if (nil)
			return false;
	}
	*ret_n = n;
	return true;
}

static char *adup(const char *s, size_t n)
{
	char *p = pv_arena_strndup(&R.arena, s, n);
	if (!p)
		die("out of memory");
	return p;
}

static int meta_table(lua_State *L, int idx, struct pv_meta_map *out, int depth, const char *path)
{
	uint32_t n = 0, i = 0;
	idx = lua_absindex(L, idx);
	/* key, value and path per level: a deep table would overrun the stack */
	luaL_checkstack(L, 6, "converting nested test metadata");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "%s: keys must be strings, got %s key %s", path,
					  luaL_typename(L, -1), repr_str(L, -1));
		n++;
	}
	out->n = n;
	out->entries = n ? pv_arena_calloc(&R.arena, n, sizeof(*out->entries)) : NULL;
	if (n && !out->entries)
		die("out of memory");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t kl;
		const char *k = lua_tolstring(L, -2, &kl);
		if (!pv_utf8_valid((const uint8_t *)k, kl))
			return luaL_error(L, "%s: key %s is not valid UTF-8", path, repr_str(L, -2));
		out->entries[i].key = (struct pv_str){ adup(k, kl), kl };
		lua_pushfstring(L, "%s.%s", path, k);
		meta_value(L, -2, &out->entries[i].value, depth + 1, lua_tostring(L, -1));
		lua_pop(L, 2);
		i++;
	}
	return 0;
}

static int meta_value(lua_State *L, int idx, struct pv_meta_value *out, int depth, const char *path)
{
	idx = lua_absindex(L, idx);
	if (depth > PV_META_MAX_DEPTH)
		return luaL_error(L, "%s: nested deeper than %d levels", path, PV_META_MAX_DEPTH);
	switch (lua_type(L, idx)) {
	case LUA_TBOOLEAN:
		out->type = PV_META_BOOL;
		out->v.b = lua_toboolean(L, idx);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			out->type = PV_META_INT;
			out->v.i = lua_tointeger(L, idx);
		} else {
			out->type = PV_META_FLOAT;
			out->v.f = lua_tonumber(L, idx);
		}
		return 0;
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		/* a Lua string is bytes: valid UTF-8 travels as str, anything else as bin */
		out->type = pv_utf8_valid((const uint8_t *)s, n) ? PV_META_STR : PV_META_BIN;
		out->v.s = (struct pv_str){ adup(s, n), n };
		return 0;
	}
	case LUA_TTABLE: {
		lua_Integer n;
		luaL_checkstack(L, 6, "converting nested test metadata");
		if (is_sequence(L, idx, &n)) {
			out->type = PV_META_ARRAY;
			out->v.array.n = (uint32_t)n;
			out->v.array.items = n ? pv_arena_calloc(&R.arena, (size_t)n, sizeof(struct pv_meta_value)) : NULL;
			if (n && !out->v.array.items)
				die("out of memory");
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				lua_pushfstring(L, "%s[%d]", path, (int)i);
				meta_value(L, -2, &out->v.array.items[i - 1], depth + 1, lua_tostring(L, -1));
				lua_pop(L, 2);
			}
			return 0;
		}
		out->type = PV_META_MAP;
		return meta_table(L, idx, &out->v.map, depth, path);
	}
	default:
		return luaL_error(L, "%s: a %s cannot be test metadata (use strings, numbers, booleans, tables)",
				  path, luaL_typename(L, idx));
	}
}

/* ---- durations / sizes from Lua ------------------------------------------- */

uint64_t runner_check_duration(lua_State *L, int idx, const char *what)
{
	struct pv_err err;
	uint64_t ns = 0;
	int rc;
	if (lua_type(L, idx) == LUA_TNUMBER)
		rc = pv_duration_from_seconds(lua_tonumber(L, idx), &ns, &err);
	else if (lua_type(L, idx) == LUA_TSTRING)
		rc = pv_parse_duration(lua_tostring(L, idx), &ns, &err);
	else
		return (uint64_t)luaL_error(L, "%s must be a duration (seconds, or a string like \"5s\"), got %s",
					    what, luaL_typename(L, idx));
	if (rc < 0)
		return (uint64_t)luaL_error(L, "%s: %s", what, err.msg);
	return ns;
}

uint64_t runner_check_size(lua_State *L, int idx, const char *what)
{
	struct pv_err err;
	uint64_t n = 0;
	int rc;
	if (lua_type(L, idx) == LUA_TNUMBER)
		rc = pv_size_from_number(lua_tonumber(L, idx), &n, &err);
	else if (lua_type(L, idx) == LUA_TSTRING)
		rc = pv_parse_size(lua_tostring(L, idx), &n, &err);
	else
		return (uint64_t)luaL_error(L, "%s must be a size (bytes, or a string like \"512M\"), got %s",
					    what, luaL_typename(L, idx));
	if (rc < 0)
		return (uint64_t)luaL_error(L, "%s: %s", what, err.msg);
	return n;
}

/* ---- options tables --------------------------------------------------------- */

static size_t count_keys(const char *const *keys)
{
	size_t n = 0;
	while (keys[n])
		n++;
	return n;
}

/* The keys of the table at idx against keys (NULL-terminated). Closed: any
 * other key is an error. Open (test meta, whose keys are free metadata): only
 * a key one letter away from one of keys is, as it is surely a typo. Of
 * several bad keys the smallest is reported, so that the message does not
 * depend on hash order. */
static void check_keys(lua_State *L, int idx, const char *what, const char *const *keys, bool open)
{
	size_t nkeys = count_keys(keys);
	const char *bad = NULL, *near = NULL;

	idx = lua_absindex(L, idx);
	luaL_checkstack(L, 4, "checking options");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			if (open)
				continue; /* meta_table reports it */
			const char *type = luaL_typename(L, -1);
			luaL_error(L, "%s: keys must be names, got %s key %s", what, type, repr_str(L, -1));
		}
		const char *k = lua_tostring(L, -1);
		bool known = false;
		for (size_t i = 0; i < nkeys && !known; i++)
			known = strcmp(k, keys[i]) == 0;
		if (known)
			continue;
		const char *c = pv_closest_name(k, keys, nkeys, open ? 1 : 2);
		if ((!open || c) && (!bad || strcmp(k, bad) < 0)) {
			bad = k;
			near = c;
		}
	}
	if (!bad)
		return;
	char msg[1024], q[80];
	size_t o = 0;
	/* o stops at the end: a cut message is still one line */
#define ADD(...) (o += (size_t)snprintf(msg + o, sizeof(msg) - o, __VA_ARGS__), o = o < sizeof(msg) ? o : sizeof(msg) - 1)
	ADD("%s: unknown key %s", what, pv_quote(bad, strlen(bad), q, sizeof(q)));
	if (!nkeys) {
		ADD(" (it takes none)");
	} else {
		ADD(" (");
		if (near)
			ADD("did you mean \"%s\"? ", near);
		ADD("%s", open ? "meta keys the runner reads: " : "valid keys: ");
		for (size_t i = 0; i < nkeys; i++)
			ADD("%s%s", i ? ", " : "", keys[i]);
		if (open)
			ADD("; other keys are free metadata, but not one a letter away from these");
		ADD(")");
	}
#undef ADD
	luaL_error(L, "%s", msg);
}

bool runner_check_opts(lua_State *L, int idx, const char *what, const char *const *keys)
{
	if (lua_isnoneornil(L, idx))
		return false;
	if (!lua_istable(L, idx))
		luaL_error(L, "%s must be a table, got %s", what, luaL_typename(L, idx));
	check_keys(L, idx, what, keys, false);
	return true;
}

/* ---- globals: test, todo, wait_until, provium ------------------------------ */

static int l_test(lua_State *L)
{
	size_t nl;
	const char *name = luaL_checklstring(L, 1, &nl);
	int fn = 2, meta = 0;
	struct test_def *t;

	if (!R.loading)
		return luaL_error(L, "test() must be called at file scope, not inside a test");
	if (lua_istable(L, 2)) {
		meta = 2;
		fn = 3;
	}
	luaL_checktype(L, fn, LUA_TFUNCTION);
	if (nl == 0)
		return luaL_error(L, "test name must not be empty");
	if (!pv_utf8_valid((const uint8_t *)name, nl) || memchr(name, 0, nl))
		return luaL_error(L, "test name %s is not valid UTF-8 text", repr_str(L, 1));
	for (size_t i = 0; i < R.ntests; i++)
		if (strcmp(R.tests[i].name, name) == 0)
			return luaL_error(L, "duplicate test name \"%s\": names must be unique within a file", name);
	if (R.ntests == R.cap) {
		size_t cap = R.cap ? R.cap * 2 : 64;
		struct test_def *n = realloc(R.tests, cap * sizeof(*n));
		if (!n)
			die("out of memory");
		R.tests = n;
		R.cap = cap;
	}
	t = &R.tests[R.ntests];
	memset(t, 0, sizeof(*t));
	if (meta) {
		static const char *const read_keys[] = { "skip", "slow", "tags", "timeout", NULL };
		int ty;
		check_keys(L, meta, "meta", read_keys, true);
		meta_table(L, meta, &t->meta, 0, "meta");
		ty = lua_getfield(L, meta, "skip");
		if (ty == LUA_TSTRING)
			t->skip = adup(lua_tostring(L, -1), lua_rawlen(L, -1));
		else if (ty == LUA_TBOOLEAN && lua_toboolean(L, -1))
			t->skip = adup("skipped (meta.skip)", 19);
		else if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
			return luaL_error(L, "meta.skip must be a string (the reason) or a boolean, got %s",
					  lua_typename(L, ty));
		lua_pop(L, 1);
		ty = lua_getfield(L, meta, "slow");
		if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
			return luaL_error(L, "meta.slow must be a boolean, got %s", lua_typename(L, ty));
		t->slow = lua_toboolean(L, -1);
		lua_pop(L, 1);
		ty = lua_getfield(L, meta, "timeout");
		if (ty != LUA_TNIL)
			t->timeout_ns = runner_check_duration(L, -1, "meta.timeout");
		lua_pop(L, 1);
		ty = lua_getfield(L, meta, "tags");
		if (ty == LUA_TSTRING) {
			t->ntags = 1;
			t->tags = pv_arena_alloc(&R.arena, sizeof(char *));
			t->tags[0] = adup(lua_tostring(L, -1), lua_rawlen(L, -1));
		} else if (ty == LUA_TTABLE) {
			lua_Integer n = luaL_len(L, -1);
			t->tags = pv_arena_calloc(&R.arena, (size_t)(n > 0 ? n : 1), sizeof(char *));
			for (lua_Integer i = 1; i <= n; i++) {
				if (lua_geti(L, -1, i) != LUA_TSTRING)
					return luaL_error(L, "meta.tags[%d] must be a string", (int)i);
				t->tags[t->ntags++] = adup(lua_tostring(L, -1), lua_rawlen(L, -1));
				lua_pop(L, 1);
			}
		} else if (ty != LUA_TNIL) {
			return luaL_error(L, "meta.tags must be an array of strings, got %s", lua_typename(L, ty));
		}
		lua_pop(L, 1);
		lua_pushvalue(L, meta);
	} else {
		lua_newtable(L);
	}
	t->meta_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, fn);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->name = adup(name, nl);
	R.ntests++;
	return 0;
}

static int l_todo(lua_State *L)
{
	if (!R.loading)
		return luaL_error(L, "todo() must be called at file scope");
	R.todo = adup(luaL_optstring(L, 1, "todo"), strlen(luaL_optstring(L, 1, "todo")));
	return 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int l_wait_until(lua_State *L)
{
	uint64_t timeout = 10ull * 1000000000u, interval = 50ull * 1000000u, start, now;
	const char *desc = "the condition";
	static const char *const keys[] = { "timeout", "interval", "desc", NULL };
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (runner_check_opts(L, 2, "wait_until options", keys)) {
		if (lua_getfield(L, 2, "timeout") != LUA_TNIL)
			timeout = runner_check_duration(L, -1, "wait_until timeout");
		if (lua_getfield(L, 2, "interval") != LUA_TNIL)
			interval = runner_check_duration(L, -1, "wait_until interval");
		if (lua_getfield(L, 2, "desc") != LUA_TNIL)
			desc = luaL_checkstring(L, -1);
		lua_pop(L, 3);
	}
	start = mono_ns();
	for (;;) {
		lua_pushvalue(L, 1);
		lua_call(L, 0, 1); /* errors from pred propagate at once */
		if (lua_toboolean(L, -1))
			return 1;
		lua_pop(L, 1);
		now = mono_ns();
		if (now - start >= timeout) {
			char b[32];
			return runner_failf(L, "wait_until timed out after %s waiting for %s", pv_format_duration(timeout, b), desc);
		}
		if (R.deadline && now >= R.deadline)
			return runner_test_timed_out(L, lua_pushfstring(L, "wait_until waiting for %s", desc));
		uint64_t nap = interval;
		if (now + nap > start + timeout)
			nap = start + timeout - now;
		if (R.deadline && now + nap > R.deadline)
			nap = R.deadline - now;
		sleep_ns(nap);
	}
}

static int l_claim(lua_State *L)
{
	struct ctl_msg m;
	uint64_t mem = 0, cpus = 0;

	static const char *const keys[] = { "memory", "cpus", NULL };
	luaL_checktype(L, 1, LUA_TTABLE); /* provium */
	luaL_checktype(L, 2, LUA_TTABLE);
	runner_check_opts(L, 2, "provium:claim", keys);
	if (R.claimed)
		return luaL_error(L, "provium:claim called twice; a file claims once");
	if (!R.loading)
		return luaL_error(L, "provium:claim must be called at file scope");
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		if (strcmp(k, "memory") == 0)
			mem = runner_check_size(L, -1, "provium:claim memory");
		else if (strcmp(k, "cpus") == 0) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > UINT32_MAX)
				return luaL_error(L, "provium:claim cpus must be a non-negative integer");
			cpus = (uint64_t)lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
	}
	R.claimed = true;
	if (ctl_put_claim(&R.out, mem, (uint32_t)cpus) < 0)
		die("out of memory");
	send_buf();
	recv_ctl(&m);
	if (ctl_is(&m, "claim_denied")) {
		char *why = ctl_get_strdup(&m, "reason");
		lua_pushstring(L, why ? why : "denied");
		free(why);
		return lua_error(L);
	}
	if (!ctl_is(&m, "claim_ok"))
		die("unexpected control message %s", m.name);
	/* what the file may hold in VMs it may hold in Lua data */
	if (mem > M.limit)
		M.limit = (size_t)mem;
	return 0;
}

static int provium_newindex(lua_State *L)
{
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "timeout") == 0) {
		uint64_t ns = runner_check_duration(L, 3, "provium.timeout");
		if (ctl_put_timeout(&R.out, ns) == 0)
			send_buf();
		R.file_timeout_ns = ns;
	} else if (strcmp(k, "reset_between_tests") == 0) {
		luaL_checktype(L, 3, LUA_TBOOLEAN);
		R.reset_between_tests = lua_toboolean(L, 3);
	} else {
		return luaL_error(L, "provium.%s is not a setting (settings: timeout, reset_between_tests)", k);
	}
	lua_rawset(L, lua_upvalueindex(1)); /* remember for reads */
	return 0;
}

static int provium_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL || lua_type(L, 2) != LUA_TSTRING)
		return 1;
	/* provium.<name>: a VM of this file */
	lua_getfield(L, LUA_REGISTRYINDEX, "provium.vms");
	lua_getfield(L, -1, lua_tostring(L, 2));
	return 1;
}

/* pcall, xpcall and coroutine.resume catch errors; once the test's time is
 * up they raise its timeout again instead of returning, so that a loop of
 * pcalls ends with the test. A refused allocation caught by one reads as the
 * limit, not as Lua's "not enough memory". lua_callk keeps them yieldable. */
static int after_catch(lua_State *L, int status, lua_KContext before)
{
	(void)status;
	if (R.timed_out)
		return raise_timeout(L);
	if ((unsigned long)before != M.refusals && lua_gettop(L) >= 2 && lua_type(L, 1) == LUA_TBOOLEAN &&
	    !lua_toboolean(L, 1) && is_memory_error(L, 2)) {
		char msg[300];
		lua_pushstring(L, memory_limit_msg(msg, sizeof(msg)));
		lua_replace(L, 2);
	}
	return lua_gettop(L);
}

static int catching(lua_State *L)
{
	lua_KContext before = (lua_KContext)M.refusals;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, before, after_catch);
	return after_catch(L, LUA_OK, before);
}

static void wrap_catcher(lua_State *L, int table, const char *name)
{
	table = lua_absindex(L, table);
	lua_getfield(L, table, name);
	lua_pushcclosure(L, catching, 1);
	lua_setfield(L, table, name);
}

static void install_catchers(lua_State *L)
{
	lua_pushglobaltable(L);
	wrap_catcher(L, -1, "pcall");
	wrap_catcher(L, -1, "xpcall");
	lua_getfield(L, -1, "coroutine");
	wrap_catcher(L, -1, "resume");
	lua_pop(L, 2);
}

static void install_api(lua_State *L)
{
	lua_pushcfunction(L, l_test);
	lua_setglobal(L, "test");
	lua_pushcfunction(L, l_todo);
	lua_setglobal(L, "todo");
	lua_pushcfunction(L, l_wait_until);
	lua_setglobal(L, "wait_until");
	lua_pushcfunction(L, l_print);
	lua_setglobal(L, "print");

	/* provium: methods live in the table; settings go through the metatable */
	lua_newtable(L);
	lua_pushcfunction(L, l_claim);
	lua_setfield(L, -2, "claim");
	lua_newtable(L); /* metatable */
	lua_newtable(L); /* settings store */
	lua_pushvalue(L, -1);
	lua_pushcclosure(L, provium_newindex, 1);
	lua_setfield(L, -3, "__newindex");
	lua_pushcclosure(L, provium_index, 1);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setglobal(L, "provium");

	/* failures and skips raised as tables read as their message */
	luaL_newmetatable(L, "provium.error");
	lua_pushcfunction(L, error_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	install_catchers(L);

	/* the metatable shared by every t */
	luaL_newmetatable(L, "provium.test");
	luaL_newlib(L, t_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lvm_install(L);
	lua_getglobal(L, "provium");
	lfx_install(L);
	lua_pop(L, 1);
}

static int not_in_fixture(lua_State *L)
{
	return luaL_error(L, "%s cannot be used in a fixture: a *.fixture.lua builds VM state and returns "
			  "vm:snapshot() or provium:snapshot()", lua_tostring(L, lua_upvalueindex(1)));
}

static int builder_newindex(lua_State *L)
{
	return luaL_error(L, "provium.%s cannot be set in a fixture (settings belong to test files)",
			  luaL_checkstring(L, 2));
}

static void set_package_path(lua_State *L);
static void hook(lua_State *L, lua_Debug *ar);

/* A Lua state with the standard libraries, the roots on package.path, the
 * test API and the timeout hook. */
static int panic(lua_State *L)
{
	die("Lua error outside a protected call: %s",
	    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
}

static lua_State *new_state(void)
{
	lua_State *L = lua_newstate(lua_alloc, NULL);
	if (!L)
		die("cannot create a Lua state (out of memory)");
	lua_atpanic(L, panic);
	luaL_openlibs(L);
	set_package_path(L);
	install_api(L);
	lua_sethook(L, hook, LUA_MASKCOUNT, 1000);
	return L;
}

lua_State *runner_builder_state(void)
{
	lua_State *L = new_state();
	/* what only a test file may do */
	lua_pushliteral(L, "test()");
	lua_pushcclosure(L, not_in_fixture, 1);
	lua_setglobal(L, "test");
	lua_pushliteral(L, "todo()");
	lua_pushcclosure(L, not_in_fixture, 1);
	lua_setglobal(L, "todo");
	lua_getglobal(L, "provium");
	lua_pushliteral(L, "claim");
	lua_pushliteral(L, "provium:claim()");
	lua_pushcclosure(L, not_in_fixture, 1);
	lua_rawset(L, -3);
	lua_getmetatable(L, -1);
	lua_pushcfunction(L, builder_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pop(L, 2);
	return L;
}

/* ---- running ---------------------------------------------------------------- */

static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	/* once up, at every hook until the test ends: a pcall may have caught it */
	if (R.timed_out || (R.deadline && mono_ns() >= R.deadline))
		runner_test_timed_out(L, NULL);
}

uint64_t runner_test_deadline(void) { return R.deadline; }

int runner_test_timed_out(lua_State *L, const char *during)
{
	if (!R.timed_out) {
		/* the first detection says what was going on; every raise after it repeats it */
		char b[32];
		snprintf(R.timeout_msg, sizeof(R.timeout_msg), "test timed out after %s (meta.timeout)%s%.500s",
			 pv_format_duration(R.test_timeout, b), during ? " during " : "", during ? during : "");
		R.timed_out = true;
	}
	return raise_timeout(L);
}

static int msgh(lua_State *L)
{
	if (lua_istable(L, 1))
		return 1;
	const char *msg = lua_tostring(L, 1);
	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	return 1;
}

enum outcome { O_PASS, O_FAIL, O_SKIP };

/* Interprets the error object on top of the stack. */
static enum outcome classify(lua_State *L, const char **reason)
{
	if (lua_istable(L, -1)) {
		if (lua_getfield(L, -1, "provium_skip") == LUA_TSTRING) {
			*reason = lua_tostring(L, -1);
			return O_SKIP;
		}
		lua_pop(L, 1);
		if (lua_getfield(L, -1, "provium_failure") == LUA_TSTRING) {
			*reason = lua_tostring(L, -1);
			return O_FAIL;
		}
		lua_pop(L, 1);
		*reason = repr_str(L, -1);
		return O_FAIL;
	}
	*reason = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error";
	return O_FAIL;
}

static struct pv_str S(const char *s) { return pv_str_c(s); }

static void emit_started(const char *name, const struct pv_meta_map *meta)
{
	struct pv_event ev = { .kind = PV_EV_TEST_STARTED };
	ev.u.test_started = (struct pv_ev_test_started){ S(R.path), S(name), *meta };
	emit(&ev);
}

static void emit_skipped(const char *name, const struct pv_meta_map *meta, const char *reason)
{
	struct pv_event ev = { .kind = PV_EV_TEST_SKIPPED };
	ev.u.test_skipped = (struct pv_ev_test_skipped){ S(R.path), S(name), S(reason), *meta };
	emit(&ev);
}

/* Reasons come from Lua and may hold any bytes; events carry UTF-8 text. */
static struct pv_str text(const char *s)
{
	size_t n = strlen(s);
	if (pv_utf8_valid((const uint8_t *)s, n))
		return (struct pv_str){ s, n };
	char *c = adup(s, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)c[i] >= 0x80)
			c[i] = '?';
	return (struct pv_str){ c, n };
}

static void emit_failed(const char *name, const struct pv_meta_map *meta, uint64_t dur, const char *reason)
{
	struct pv_event ev = { .kind = PV_EV_TEST_FAILED };
	char *excerpt = lvm_console_excerpt(); /* last 4 KiB of each VM booted by the file */
	ev.u.test_failed = (struct pv_ev_test_failed){ S(R.path), S(name), dur, text(reason), S(excerpt ? excerpt : ""), *meta };
	emit(&ev);
	free(excerpt);
}

static void plan_entry(void *ctx, size_t i, const char **name, const struct pv_meta_map **meta)
{
	(void)ctx;
	*name = R.tests[i].name;
	*meta = &R.tests[i].meta;
}

static void send_plan(void)
{
	struct pv_err err;
	int rc = ctl_put_plan(&R.out, R.ntests, plan_entry, NULL, &err);
	if (rc == -EMSGSIZE)
		die("the plan of %zu tests is too large", R.ntests);
	if (rc < 0)
		die("%s", err.msg);
	send_buf();
}

static const char *skip_reason(const struct test_def *t, char *buf, size_t len)
{
	if (R.todo)
		return R.todo;
	if (t->skip)
		return t->skip;
	if (t->slow && !R.include_slow)
		return "slow (run with --include-slow)";
	for (size_t i = 0; i < R.nno_tags; i++)
		for (size_t j = 0; j < t->ntags; j++)
			if (strcmp(R.no_tags[i], t->tags[j]) == 0) {
				snprintf(buf, len, "filtered out by --no-tag %s", R.no_tags[i]);
				return buf;
			}
	if (R.ntags) {
		for (size_t i = 0; i < R.ntags; i++)
			for (size_t j = 0; j < t->ntags; j++)
				if (strcmp(R.tags[i], t->tags[j]) == 0)
					return NULL;
		snprintf(buf, len, "filtered out by --tag %s", R.tags[0]);
		return buf;
	}
	return NULL;
}

static void run_test(lua_State *L, struct test_def *t)
{
	char buf[256];
	const char *why = skip_reason(t, buf, sizeof(buf));
	uint64_t t0;
	int rc;

	emit_started(t->name, &t->meta);
	if (why) {
		emit_skipped(t->name, &t->meta, why);
		return;
	}
	R.current = t->name;
	if (R.reset_ref != LUA_NOREF && R.reset_dirty) {
		/* provium.reset_between_tests: back to the state after file scope */
		lua_pushcfunction(L, msgh);
		lua_getglobal(L, "provium");
		lua_getfield(L, -1, "restore");
		lua_insert(L, -2);
		lua_rawgeti(L, LUA_REGISTRYINDEX, R.reset_ref);
		if (lua_pcall(L, 2, 0, -4) != LUA_OK) {
			const char *reason;
			classify(L, &reason);
			lua_pushfstring(L, "reset_between_tests: restoring the file's VMs failed: %s", reason);
			emit_failed(t->name, &t->meta, 0, lua_tostring(L, -1));
			lua_settop(L, 0);
			R.current = NULL;
			return;
		}
		lua_settop(L, 0);
	}
	R.reset_dirty = true;
	lua_pushcfunction(L, msgh);
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->fn_ref);
	/* t = setmetatable({name=, meta=}, provium.test) */
	lua_createtable(L, 0, 2);
	lua_pushstring(L, t->name);
	lua_setfield(L, -2, "name");
	lua_rawgeti(L, LUA_REGISTRYINDEX, t->meta_ref);
	lua_setfield(L, -2, "meta");
	luaL_setmetatable(L, "provium.test");
	t0 = mono_ns();
	R.test_timeout = t->timeout_ns;
	R.deadline = t->timeout_ns ? t0 + t->timeout_ns : 0;
	unsigned long refusals = M.refusals;
	M.armed = true;
	rc = lua_pcall(L, 1, 0, -3);
	M.armed = false;
	R.deadline = 0;
	R.timed_out = false;
	uint64_t dur = mono_ns() - t0;
	/* VMs created by this test end with it, before its result is reported */
	{
		int top = lua_gettop(L);
		lvm_end_scope(L, false);
		lua_settop(L, top);
	}
	if (rc == LUA_OK) {
		struct pv_event ev = { .kind = PV_EV_TEST_PASSED };
		ev.u.test_passed = (struct pv_ev_test_passed){ S(R.path), S(t->name), dur, t->meta };
		emit(&ev);
	} else {
		const char *reason;
		char msg[300];
		enum outcome o = rc == LUA_ERRMEM ? (reason = "out of memory", O_FAIL) : classify(L, &reason);
		if (M.refusals != refusals && (rc == LUA_ERRMEM || is_memory_error(L, -1)))
			reason = memory_limit_msg(msg, sizeof(msg));
		if (o == O_SKIP)
			emit_skipped(t->name, &t->meta, reason);
		else
			emit_failed(t->name, &t->meta, dur, reason);
	}
	lua_settop(L, 0);
	if (M.refusals != refusals)
		lua_gc(L, LUA_GCCOLLECT); /* what the test left behind, before the next one runs */
	R.current = NULL;
}

/* Every planned test fails with msg (nothing of the file can run). */
static void die_tests(lua_State *L, const char *msg)
{
	(void)L;
	for (size_t i = 0; i < R.ntests; i++) {
		emit_started(R.tests[i].name, &R.tests[i].meta);
		emit_failed(R.tests[i].name, &R.tests[i].meta, 0, msg);
	}
}

static void load_failed(const char *msg)
{
	struct pv_meta_map none = { NULL, 0 };
	emit_started("<load>", &none);
	emit_failed("<load>", &none, 0, msg);
}

static void read_start(void)
{
	struct ctl_msg m;
	recv_ctl(&m);
	if (!ctl_is(&m, "start"))
		die("expected start, got %s", m.name);
	R.path = ctl_get_strdup(&m, "path");
	R.file = ctl_get_strdup(&m, "file");
	R.roots = ctl_get_strv(&m, "roots", &R.nroots);
	R.tags = ctl_get_strv(&m, "tags", &R.ntags);
	R.no_tags = ctl_get_strv(&m, "no_tags", &R.nno_tags);
	ctl_get_bool(&m, "include_slow", &R.include_slow);
	R.scratch = ctl_get_strdup(&m, "scratch");
	R.config = ctl_get_strdup(&m, "config");
	R.cache_dir = ctl_get_strdup(&m, "cache_dir");
	R.fixture_build = ctl_get_strdup(&m, "fixture");
	ctl_get_bool(&m, "force", &R.fixture_force);
	if (R.scratch)
		vm_set_scratch_parent(R.scratch);
	if (!R.path || !R.file)
		die("start message without path/file");
}

static void set_package_path(lua_State *L)
{
	luaL_Buffer b;
	lua_getglobal(L, "package");
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < R.nroots; i++) {
		luaL_addstring(&b, R.roots[i]);
		luaL_addstring(&b, "/?.lua;");
		luaL_addstring(&b, R.roots[i]);
		luaL_addstring(&b, "/?/init.lua;");
	}
	lua_getfield(L, -2, "path");
	luaL_addvalue(&b);
	luaL_pushresult(&b);
	lua_setfield(L, -2, "path");
	lua_pop(L, 1);
}

int pv_runner_main(int argc, char **argv)
{
	lua_State *L;
	char chunkname[4096];
	int rc;

	/* die with the scheduler, whatever kills it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (argc > 2 && getppid() != (pid_t)strtol(argv[2], NULL, 10))
		return 70;
	signal(SIGPIPE, SIG_IGN);
	/* posix_spawn's dup2 left the control socket inheritable: no child of the
	 * runner (QEMU, a test's io.popen or os.execute) may hold it */
	fcntl(PV_RUNNER_FD, F_SETFD, FD_CLOEXEC);
	/* Under memory pressure the kernel should kill a runner (or one of its
	 * VMs, at 800: vm.c) before the scheduler, which reports what happened.
	 * Raising the score needs no privilege; failing to is not fatal. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "500", 3) != 3)
				fprintf(stderr, "provium runner: cannot set oom_score_adj: %s\n", strerror(errno));
			close(fd);
		}
	}
	frame_dec_init(&R.in);
	R.reset_ref = LUA_NOREF;
	read_start();

	{
		/* the scheduler loaded it already; a file edited since fails here */
		struct pv_err err;
		if (pv_config_load(R.config, &R.cfg, &err) < 0) {
			char msg[PV_ERR_MSG_MAX + 32];
			snprintf(msg, sizeof(msg), "%s", err.msg);
			L = new_state();
			load_failed(msg);
			goto done;
		}
		M.limit = (size_t)R.cfg.lua_memory;
	}
	L = new_state();

	snprintf(chunkname, sizeof(chunkname), "@%s", R.path);
	R.loading = true;
	lua_pushcfunction(L, msgh);
	{
		FILE *f = fopen(R.file, "rb");
		if (!f) {
			char msg[4200];
			snprintf(msg, sizeof(msg), "%s: cannot open: %s", R.path, strerror(errno));
			load_failed(msg);
			goto done;
		}
		fclose(f);
	}
	if (R.fixture_build) {
		/* provium fixture build / rebuild: one test that builds it */
		rc = luaL_loadstring(L, "local build, name, force = ...\n"
					"test((force and 'rebuild ' or 'build ') .. name, function(t)\n"
					"  t:log('cache key ' .. build(name, force))\n"
					"end)\n");
		if (rc == LUA_OK) {
			lua_pushcfunction(L, lfx_build_cmd);
			lua_pushstring(L, R.fixture_build);
			lua_pushboolean(L, R.fixture_force);
			rc = lua_pcall(L, 3, 0, 1);
		}
		if (rc != LUA_OK) {
			load_failed(lua_tostring(L, -1));
			goto done;
		}
		goto loaded;
	}
	/* luaL_loadfilex names the chunk by the path it opened; reload with the
	 * root-relative name so every message shows the path users know */
	{
		FILE *f = fopen(R.file, "rb");
		struct pv_buf src = PV_BUF_INIT;
		char tmp[65536];
		size_t n;
		while (f && (n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			if (pv_buf_append(&src, tmp, n) < 0)
				die("out of memory");
		if (f)
			fclose(f);
		/* skip a #! line as lua(1) does */
		size_t skip = 0;
		if (src.len && src.data[0] == '#')
			while (skip < src.len && src.data[skip] != '\n')
				skip++;
		rc = luaL_loadbufferx(L, src.data ? (const char *)src.data + skip : "", src.len - skip, chunkname, "t");
		pv_buf_release(&src);
	}
	if (rc != LUA_OK) {
		load_failed(lua_tostring(L, -1));
		goto done;
	}
	{
		unsigned long refusals = M.refusals;
		M.armed = true;
		rc = lua_pcall(L, 0, 0, 1);
		M.armed = false;
		if (rc != LUA_OK) {
			const char *reason;
			char msg[300];
			classify(L, &reason);
			if (M.refusals != refusals && (rc == LUA_ERRMEM || is_memory_error(L, -1)))
				reason = memory_limit_msg(msg, sizeof(msg));
			load_failed(reason);
			goto done;
		}
	}
loaded:
	R.loading = false;
	lua_settop(L, 0);
	send_plan();
	if (R.reset_between_tests) {
		lua_pushcfunction(L, msgh);
		lua_getglobal(L, "provium");
		lua_getfield(L, -1, "snapshot");
		lua_insert(L, -2);
		if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
			const char *reason;
			classify(L, &reason);
			die_tests(L, lua_pushfstring(L, "reset_between_tests: snapshotting the file's VMs failed: %s", reason));
			goto done;
		}
		R.reset_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		lua_settop(L, 0);
	}
	for (size_t i = 0; i < R.ntests; i++)
		run_test(L, &R.tests[i]);
done:
	lvm_end_scope(L, true);
	lvm_cleanup();
	if (ctl_put_done(&R.out) == 0)
		send_buf();
	lua_close(L);
	return 0;
}

/* runner.c - the runner process's framework (contract in runner.h): its
 * conversation with the scheduler, the file's Lua state and the test API's
 * globals (test, todo, print, provium settings and claim), running each test
 * in its scope, and reporting results. What each test uses lives in
 * src/runner/ (assertions, meta, filter, options, the Lua heap, catchers,
 * wait_until, the test clock, and one binding module per guest resource kind
 * over the scope registry). At ~840 lines it is over the ~800 mark because
 * it still holds the runner's one state (R: the start message, the plan, the
 * control channel) and everything that reads it. */
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
#include <sys/stat.h>
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
#include "catch.h"
#include "filter.h"
#include "lconsole.h"
#include "lnet.h"
#include "lguest.h"
#include "lfx.h"
#include "lheap.h"
#include "lproc.h"
#include "lraw.h"
#include "lworker.h"
#include "ldisk.h"
#include "lstream.h"
#include "lfile.h"
#include "ljson.h"
#include "lbarrier.h"
#include "lbatch.h"
#include "lhostfile.h"
#include "llife.h"
#include "lsnap.h"
#include "lvm.h"
#include "repl.h"
#include "meta.h"
#include "opts.h"
#include "scope.h"
#include "tassert.h"
#include "tclock.h"
#include "wait.h"
#include "vm.h"

/* ---- state of this runner ------------------------------------------------- */

struct test_def {
	char *name;
	int fn_ref;
	int meta_ref;
	struct meta_read m; /* meta as events carry it, and the keys the runner reads */
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
	struct filter filter; /* --tag, --no-tag, --tag-meta, --include-slow, --rerun-failed */
	char *pause_at;       /* provium shell --at TEST: the prompt after TEST's body */

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

	struct pv_config cfg; /* provium.lua, as the scheduler loaded it */
	struct runner_env env; /* the above, for the modules (runner_priv.h) */

	struct pv_arena arena; /* meta of every test */
	struct frame_dec in;
	struct pv_buf out;
} R;

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

static char *adup(const char *s, size_t n)
{
	char *p = pv_arena_strndup(&R.arena, s, n);
	if (!p)
		die("out of memory");
	return p;
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

int runner_fail(lua_State *L, const char *msg)
{
	return raise_kind(L, "provium_failure", msg);
}

void runner_where(lua_State *L, char *buf, size_t size)
{
	lua_Debug ar;
	for (int level = 1; lua_getstack(L, level, &ar); level++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
	snprintf(buf, size, "?");
}

int runner_skip(lua_State *L, const char *reason)
{
	return raise_kind(L, "provium_skip", reason);
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
const struct runner_env *runner_env(void) { return &R.env; }

static void send_log(const char *test, const char *msg, size_t len)
{
	if (ctl_put_log(&R.out, test, msg, len) == 0)
		send_buf();
}

void runner_log(const char *msg)
{
	send_log(R.current ? R.current : "", msg, strlen(msg));
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

/* ---- meta: Lua table -> MetaMap ------------------------------------------- */

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
		return luaL_error(L, "test name %s is not valid UTF-8 text", tassert_repr(L, 1));
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
		meta_read(L, meta, &t->m, &R.arena);
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

static int l_claim(lua_State *L)
{
	struct ctl_msg m;
	uint64_t mem = 0, cpus = 0;

	static const char *const keys[] = { "memory", "cpus", NULL };
	luaL_checktype(L, 1, LUA_TTABLE); /* provium */
	luaL_checktype(L, 2, LUA_TTABLE);
	opts_check(L, 2, "provium:claim", keys);
	if (R.claimed)
		return luaL_error(L, "provium:claim called twice; a file claims once");
	if (!R.loading)
		return luaL_error(L, "provium:claim must be called at file scope");
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		if (strcmp(k, "memory") == 0)
			mem = opts_size(L, -1, "provium:claim memory");
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
	if (mem > lheap_limit())
		lheap_set_limit((size_t)mem);
	return 0;
}

static int provium_newindex(lua_State *L)
{
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "timeout") == 0) {
		uint64_t ns = opts_duration(L, 3, "provium.timeout");
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

static void install_api(lua_State *L)
{
	lua_pushcfunction(L, l_test);
	lua_setglobal(L, "test");
	lua_pushcfunction(L, l_todo);
	lua_setglobal(L, "todo");
	wait_install(L);
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
	catch_install(L);

	/* the metatable shared by every t: the assertions and t:log */
	tassert_install(L);
	repl_install(L);
	luaL_getmetatable(L, "provium.test");
	lua_getfield(L, -1, "__index");
	lua_pushcfunction(L, t_log);
	lua_setfield(L, -2, "log");
	lua_pop(L, 2);
	/* the guest bindings: one module per resource kind, sharing the VM methods */
	lua_newtable(L);
	lvm_install(L, -1);
	lguest_install(L, -1);
	lproc_install(L, -1);
	lconsole_install(L, -1);
	lstream_install(L, -1);
	lfile_install(L, -1);
	llife_install(L, -1);
	lbatch_install(L, -1);
	lraw_install(L, -1);
	lworker_install(L, -1);
	ldisk_install(L, -1);
	lhostfile_install(L, -1);
	lsnap_install(L, -1);
	lnet_install(L, -1);
	lboot_install(L, -1);
	lua_pop(L, 1);
	ljson_install(L);
	lua_getglobal(L, "provium");
	lfx_install(L);
	lbarrier_install(L, -1);
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

/* A Lua state with the standard libraries, the roots on package.path, the
 * test API and the timeout hook. */
static int panic(lua_State *L)
{
	die("Lua error outside a protected call: %s",
	    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
}

static lua_State *new_state(void)
{
	lua_State *L = lua_newstate(lheap_alloc, NULL);
	if (!L)
		die("cannot create a Lua state (out of memory)");
	scope_ctx_new(L); /* its resources: closed with their scope (scope.h) */
	lua_atpanic(L, panic);
	luaL_openlibs(L);
	set_package_path(L);
	install_api(L);
	lua_sethook(L, tclock_hook, LUA_MASKCOUNT, 1000);
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
		*reason = tassert_repr(L, -1);
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

static void emit_failed(lua_State *L, const char *name, const struct pv_meta_map *meta, uint64_t dur, const char *reason)
{
	struct pv_event ev = { .kind = PV_EV_TEST_FAILED };
	char *excerpt = lvm_console_excerpt(L); /* last 4 KiB of each VM booted by the file */
	char *kept = lnet_keep_captures(), *full = NULL;
	if (kept && asprintf(&full, "%s\n%s", reason, kept) > 0)
		reason = full;
	ev.u.test_failed = (struct pv_ev_test_failed){ S(R.path), S(name), dur, text(reason), S(excerpt ? excerpt : ""), *meta };
	emit(&ev);
	free(excerpt);
	free(kept);
	free(full);
}

static void plan_entry(void *ctx, size_t i, const char **name, const struct pv_meta_map **meta)
{
	(void)ctx;
	*name = R.tests[i].name;
	*meta = &R.tests[i].m.map;
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

/* provium shell --at: the prompt after the test's body, its VMs as it left them. */
static void pause_after(lua_State *L, const char *name, int rc)
{
	const char *why = rc == LUA_OK ? NULL : luaL_tolstring(L, -1, NULL);
	lua_pushfstring(L, "provium shell: test '%s' %s%s%s\nIts VMs are as it left them: `vms` by name (and `vm` if only one). "
			   "Tab completes, ^C interrupts, ^D or .continue ends the test.",
			name, why ? "failed: " : "passed", why ? why : "", why ? "" : ".");
	repl_enter(L, 0, lua_tostring(L, -1));
	lua_pop(L, why ? 2 : 1);
}

static void run_test(lua_State *L, struct test_def *t)
{
	char buf[256];
	const char *why = filter_skip_reason(&R.filter, R.todo, t->m.skip, t->m.slow, t->m.tags, t->m.ntags, t->name,
					     &t->m.map, buf, sizeof(buf));
	unsigned scope = (unsigned)(t - R.tests) + 1;
	uint64_t t0;
	int rc;

	emit_started(t->name, &t->m.map);
	if (why) {
		emit_skipped(t->name, &t->m.map, why);
		return;
	}
	R.current = t->name;
	lnet_test_begin();
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
			emit_failed(L, t->name, &t->m.map, 0, lua_tostring(L, -1));
			lua_settop(L, 0);
			R.current = NULL;
			return;
		}
		lua_settop(L, 0);
	}
	R.reset_dirty = true;
	scope_begin(L, scope); /* resources made from here are the test's */
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
	tclock_start(t->m.timeout_ns);
	unsigned long refusals = lheap_refusals();
	lheap_arm(true);
	rc = lua_pcall(L, 1, 0, -3);
	lheap_arm(false);
	tclock_stop();
	uint64_t dur = mono_ns() - t0;
	if (R.pause_at && !strcmp(R.pause_at, t->name))
		pause_after(L, t->name, rc);
	/* what this test made (VMs, processes, ...) ends with it, before its
	 * result is reported */
	scope_end(L, scope);
	if (rc == LUA_OK) {
		struct pv_event ev = { .kind = PV_EV_TEST_PASSED };
		ev.u.test_passed = (struct pv_ev_test_passed){ S(R.path), S(t->name), dur, t->m.map };
		emit(&ev);
	} else {
		const char *reason;
		char msg[300];
		enum outcome o = rc == LUA_ERRMEM ? (reason = "out of memory", O_FAIL) : classify(L, &reason);
		if (lheap_refusals() != refusals && (rc == LUA_ERRMEM || lheap_is_memory_error(L, -1)))
			reason = lheap_limit_msg(msg, sizeof(msg));
		if (o == O_SKIP)
			emit_skipped(t->name, &t->m.map, reason);
		else
			emit_failed(L, t->name, &t->m.map, dur, reason);
	}
	lua_settop(L, 0);
	if (lheap_refusals() != refusals)
		lua_gc(L, LUA_GCCOLLECT); /* what the test left behind, before the next one runs */
	R.current = NULL;
}

static bool has_test(const char *name)
{
	for (size_t i = 0; i < R.ntests; i++)
		if (!strcmp(R.tests[i].name, name))
			return true;
	return false;
}

/* Every planned test fails with msg (nothing of the file can run). */
static void die_tests(lua_State *L, const char *msg)
{
	for (size_t i = 0; i < R.ntests; i++) {
		emit_started(R.tests[i].name, &R.tests[i].m.map);
		emit_failed(L, R.tests[i].name, &R.tests[i].m.map, 0, msg);
	}
}

static void load_failed(lua_State *L, const char *msg)
{
	struct pv_meta_map none = { NULL, 0 };
	emit_started("<load>", &none);
	emit_failed(L, "<load>", &none, 0, msg);
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
	R.filter.tags = ctl_get_strv(&m, "tags", &R.filter.ntags);
	R.filter.no_tags = ctl_get_strv(&m, "no_tags", &R.filter.nno_tags);
	R.filter.tag_meta = ctl_get_strv(&m, "tag_meta", &R.filter.ntag_meta);
	R.filter.no_tag_meta = ctl_get_strv(&m, "no_tag_meta", &R.filter.nno_tag_meta);
	R.filter.only = ctl_get_strv(&m, "only", &R.filter.nonly);
	ctl_get_bool(&m, "include_slow", &R.filter.include_slow);
	R.scratch = ctl_get_strdup(&m, "scratch");
	R.config = ctl_get_strdup(&m, "config");
	R.cache_dir = ctl_get_strdup(&m, "cache_dir");
	R.fixture_build = ctl_get_strdup(&m, "fixture");
	ctl_get_bool(&m, "force", &R.fixture_force);
	{
		bool interactive = false;
		ctl_get_bool(&m, "interactive", &interactive);
		if (interactive)
			repl_enable();
	}
	R.pause_at = ctl_get_strdup(&m, "pause_at");
	if (R.scratch)
		vm_set_scratch_parent(R.scratch);
	if (!R.path || !R.file)
		die("start message without path/file");
	R.env = (struct runner_env){ R.path, R.config, R.scratch ? R.scratch : "/tmp", R.cache_dir,
				     (const char *const *)R.roots, R.nroots, &R.cfg, R.file };
}

static void set_package_path(lua_State *L)
{
	luaL_Buffer b;
	lua_getglobal(L, "package");
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < R.nroots; i++) {
		/* a root given as a *.test.lua file stands for its directory, as
		 * for fixture keys (fixkey.c), which must find the same modules */
		struct stat st;
		const char *r = R.roots[i], *sl = strrchr(r, '/');
		size_t n = strlen(r);
		if (stat(r, &st) == 0 && !S_ISDIR(st.st_mode))
			n = sl ? (size_t)(sl - r) : 0;
		for (int k = 0; k < 2; k++) {
			luaL_addlstring(&b, n ? r : ".", n ? n : 1);
			luaL_addstring(&b, k ? "/?/init.lua;" : "/?.lua;");
		}
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
			load_failed(L, msg);
			goto done;
		}
		lheap_set_limit((size_t)R.cfg.lua_memory);
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
			load_failed(L, msg);
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
			load_failed(L, lua_tostring(L, -1));
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
		load_failed(L, lua_tostring(L, -1));
		goto done;
	}
	{
		unsigned long refusals = lheap_refusals();
		lheap_arm(true);
		rc = lua_pcall(L, 0, 0, 1);
		lheap_arm(false);
		if (rc != LUA_OK) {
			const char *reason;
			char msg[300];
			classify(L, &reason);
			if (lheap_refusals() != refusals && (rc == LUA_ERRMEM || lheap_is_memory_error(L, -1)))
				reason = lheap_limit_msg(msg, sizeof(msg));
			load_failed(L, reason);
			goto done;
		}
	}
loaded:
	R.loading = false;
	lua_settop(L, 0);
	if (R.pause_at && !has_test(R.pause_at)) {
		load_failed(L, lua_pushfstring(L, "provium shell --at: %s has no test named '%s'", R.path, R.pause_at));
		goto done;
	}
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
	/* every resource of the file, in close order; then the state (the VMs'
	 * scratch directories go with it) */
	scope_close_state(L);
	if (ctl_put_done(&R.out) == 0)
		send_buf();
	return 0;
}

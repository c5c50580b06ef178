/* lstream.c - streams (contract in lstream.h). */
#include "lstream.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "buf.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "tclock.h"
#include "units.h"

#define DEFAULT_LIMIT (16u << 20)
#define DEFAULT_TIMEOUT_NS (30000000000ull)
#define LAST_MAX 160u
#define HOST_CHUNK 65536u

enum lskind { LS_AGENT, LS_HOST };

struct lstream {
	struct scope_res res; /* first: a stream is a scope resource */
	struct lstream *next; /* on v->streams */
	struct lvm *v;        /* kept alive by uservalue 1 */
	enum lskind kind;
	uint32_t sid;  /* LS_AGENT: the agent's id, once open */
	unsigned gen;  /* v->gen when it opened */
	bool linked;   /* on v->streams */
	int fd, ino;   /* LS_HOST: the file and its inotify, or -1 */
	struct pv_buf buf;
	size_t pos;    /* buf[pos..len) is unread */
	size_t limit;  /* most unread bytes held */
	bool ended;    /* no more will come (eof, error, lost) */
	bool behind;   /* the reader fell behind: bytes were refused */
	char *error;   /* why it ended, if not a plain end */
	char what[200], site[200];
	char last[LAST_MAX]; /* the last bytes consumed, for messages */
	size_t nlast;
};

static const struct scope_ops stream_ops;

static size_t unread(const struct lstream *s)
{
	return s->buf.len - s->pos;
}

/* ---- feeding ------------------------------------------------------------------------- */

/* Appends what came; false when it would pass the limit (the stream is then
 * behind and takes nothing more). */
static bool take(struct lstream *s, const uint8_t *p, size_t n)
{
	if (s->behind)
		return false;
	if (unread(s) + n > s->limit) {
		s->behind = true;
		return false;
	}
	if (s->pos && s->pos >= s->buf.len / 2) {
		memmove(s->buf.data, s->buf.data + s->pos, unread(s));
		s->buf.len -= s->pos;
		s->pos = 0;
	}
	if (pv_buf_append(&s->buf, p, n) < 0) {
		s->behind = true;
		return false;
	}
	return true;
}

static void end_with(struct lstream *s, const char *why)
{
	if (s->ended)
		return;
	s->ended = true;
	if (why && !s->error)
		s->error = strdup(why);
}

/* The agent connection's on_push: files a push frame into its stream. */
static void on_push(void *ctx, const struct ctl_msg *m)
{
	struct lvm *v = ctx;
	const uint8_t *op, *data;
	uint32_t oplen, len;
	uint64_t sid;
	int64_t ver;
	if (ctl_get_int(m, "protocol_version", &ver)) {
		/* a hello: the agent reconnected, and closed every stream */
		for (struct lstream *s = v->streams; s; s = s->next)
			if (s->kind == LS_AGENT && s->gen == v->gen)
				end_with(s, "the guest agent reconnected (it restarted), which closes its streams");
		return;
	}
	if (!ctl_get_raw(m, "op", &op, &oplen) || oplen != 6 || memcmp(op, "stream", 6) || !ctl_get_uint(m, "stream", &sid))
		return;
	for (struct lstream *s = v->streams; s; s = s->next) {
		if (s->kind != LS_AGENT || s->sid != sid || s->gen != v->gen)
			continue;
		bool eof = false;
		if (ctl_get_raw(m, "data", &data, &len)) {
			if (!take(s, data, len))
				/* stop the guest sending: closed at the next safe point */
				lvm_defer(v, LVM_REAP_STREAM, s->sid, s->gen);
		} else if (ctl_get_bool(m, "eof", &eof) && eof) {
			end_with(s, NULL);
		} else if (ctl_get_raw(m, "error", &data, &len)) {
			char msg[400];
			snprintf(msg, sizeof(msg), "the guest: %.*s", (int)(len > 300 ? 300 : len), data);
			end_with(s, msg);
		}
		return;
	}
	/* a stream closed on this side: its last pushes are dropped */
}

/* ---- naming ---------------------------------------------------------------------------- */

/* "the stream WHAT (opened at SITE)" */
static const char *describe(lua_State *L, struct lstream *s)
{
	return lua_pushfstring(L, "the stream of %s (opened at %s)", s->what, s->site);
}

/* The last bytes seen (consumed or not), quoted. */
static const char *last_seen(lua_State *L, struct lstream *s)
{
	char tail[LAST_MAX * 2], q[LAST_MAX * 8];
	size_t n = 0, u = unread(s);
	if (u < LAST_MAX) {
		size_t k = s->nlast < LAST_MAX - u ? s->nlast : LAST_MAX - u;
		memcpy(tail, s->last + s->nlast - k, k);
		n = k;
	}
	size_t k = u < LAST_MAX ? u : LAST_MAX;
	memcpy(tail + n, s->buf.data + s->buf.len - k, k);
	n += k;
	if (!n)
		return lua_pushstring(L, "nothing yet");
	return lua_pushfstring(L, "the last bytes were %s", pv_quote(tail, n, q, sizeof(q)));
}

/* Removes n unread bytes, pushing them as a string. */
static void consume(lua_State *L, struct lstream *s, size_t n)
{
	const char *p = (const char *)s->buf.data + s->pos;
	lua_pushlstring(L, p, n);
	if (n >= LAST_MAX) {
		memcpy(s->last, p + n - LAST_MAX, LAST_MAX);
		s->nlast = LAST_MAX;
	} else {
		size_t keep = s->nlast + n > LAST_MAX ? LAST_MAX - n : s->nlast;
		memmove(s->last, s->last + s->nlast - keep, keep);
		memcpy(s->last + keep, p, n);
		s->nlast = keep + n;
	}
	s->pos += n;
	if (s->pos == s->buf.len)
		s->pos = s->buf.len = 0;
}

/* ---- waiting --------------------------------------------------------------------------- */

/* Host file: reads what is new; true if it read bytes. */
static bool host_read(struct lstream *s)
{
	uint8_t buf[HOST_CHUNK];
	bool got = false;
	while (s->fd >= 0 && !s->behind) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		take(s, buf, (size_t)n);
		got = true;
	}
	return got;
}

/* Waits for something to happen on s until deadline: true if it may have
 * (read again), false once the deadline passed. Raises when the VM is gone
 * and s can get nothing more (after its buffered bytes were read). */
static bool wait_more(lua_State *L, struct lstream *s, uint64_t deadline)
{
	struct lvm *v = s->v;
	bool vm_gone = v->state != LVM_RUNNING || v->gen != s->gen;
	if (s->kind == LS_HOST) {
		if (host_read(s))
			return true;
		if (vm_gone) {
			end_with(s, NULL); /* that QEMU's console has all it will ever get */
			return true;
		}
		uint64_t now = pv_mono_ns();
		if (now >= deadline)
			return false;
		struct pollfd p = { .fd = s->ino, .events = POLLIN };
		uint64_t ms = (deadline - now) / 1000000u + 1;
		if (s->ino < 0 || ms > 250)
			ms = s->ino < 0 ? 20 : 250; /* without inotify: poll the file; else notice a dead VM */
		poll(&p, s->ino >= 0 ? 1 : 0, (int)ms);
		if (s->ino >= 0) {
			char b[4096];
			while (read(s->ino, b, sizeof(b)) > 0)
				;
		}
		return true;
	}
	if (vm_gone) {
		if (v->state == LVM_RUNNING)
			end_with(s, lua_pushfstring(L, "VM '%s' was restored or rebooted since it opened", v->name));
		else
			end_with(s, lua_pushfstring(L, "VM '%s' is %s", v->name, lvm_state_names[v->state]));
		lua_pop(L, 1);
		return true;
	}
	if (v->paused)
		return luaL_error(L, "%s: VM '%s' is paused, so nothing more can come: vm:resume() it first",
				  describe(L, s), v->name), false;
	struct pv_err err;
	int rc = agent_pump(&v->vm.agent, deadline, &err);
	if (rc == -ETIMEDOUT)
		return false;
	if (rc < 0)
		return lvm_died(L, v, "a stream read", err.msg), false;
	return true;
}

struct rdopts {
	uint64_t timeout, deadline;
	bool by_test; /* the test's meta.timeout bounds it */
	bool plain;
};

/* The timeout (a duration, or a table {timeout =, plain =}) at idx. */
static void read_opts(lua_State *L, int idx, const char *what, struct rdopts *o, uint64_t dflt)
{
	static const char *const keys[] = { "timeout", "plain", NULL };
	o->timeout = dflt;
	o->plain = false;
	o->by_test = false;
	if (lua_istable(L, idx)) {
		opts_check(L, idx, what, keys);
		if (lua_getfield(L, idx, "timeout") != LUA_TNIL)
			o->timeout = opts_duration(L, -1, what);
		lua_pop(L, 1);
		lua_getfield(L, idx, "plain");
		o->plain = lua_toboolean(L, -1);
		lua_pop(L, 1);
	} else if (!lua_isnoneornil(L, idx)) {
		o->timeout = opts_duration(L, idx, what);
	}
	uint64_t left = lvm_test_time_left(L, what);
	if (left && left <= o->timeout) {
		o->timeout = left;
		o->by_test = true;
	}
	o->deadline = pv_mono_ns() + o->timeout;
}

/* The stream at 1, open. Settles its VM's deferred work first. */
static struct lstream *check_stream(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, 1, "provium.stream");
	if (!s->res.ops)
		return (luaL_error(L, "this stream never opened"), NULL);
	if (s->res.closed)
		return (luaL_error(L, "%s was closed (by close(), its `<close>` block, or the end of the test that opened it)",
				   describe(L, s)), NULL);
	if (s->kind == LS_AGENT && s->v->state == LVM_RUNNING)
		lvm_settle(s->v);
	return s;
}

/* Raises for a stream that can give nothing more than it gave. */
static int raise_end(lua_State *L, struct lstream *s, const char *wanted)
{
	if (s->behind)
		return runner_failf(L, "%s fell behind: more than %s arrived unread, and the rest was refused; read it "
				    "sooner or open it with a larger { buffer = ... }%s%s",
				    describe(L, s), pv_format_size(s->limit, (char[32]){ 0 }), wanted ? " while waiting for " : "",
				    wanted ? wanted : "");
	if (s->error)
		return runner_failf(L, "%s ended%s%s: %s; %s", describe(L, s), wanted ? " before " : "", wanted ? wanted : "",
				    s->error, last_seen(L, s));
	return runner_failf(L, "%s ended (end of file) before %s; %s", describe(L, s), wanted, last_seen(L, s));
}

static int raise_timeout(lua_State *L, struct lstream *s, const struct rdopts *o, const char *wanted, const char *m)
{
	char b[32];
	if (o->by_test)
		return tclock_timed_out(L, lua_pushfstring(L, "%s:%s(%s)", s->what, m, wanted));
	/* "no output", "no match for ..." (wanted is "a match for ...") */
	const char *no = strncmp(wanted, "a ", 2) ? wanted : wanted + 2;
	return runner_failf(L, "%s: no %s within %s; %s", describe(L, s), no, pv_format_duration(o->timeout, b),
			    last_seen(L, s));
}

/* ---- methods ----------------------------------------------------------------------------- */

static int s_next(lua_State *L)
{
	struct lstream *s = check_stream(L);
	struct rdopts o;
	read_opts(L, 2, "stream:next timeout", &o, DEFAULT_TIMEOUT_NS);
	for (;;) {
		if (unread(s)) {
			consume(L, s, unread(s));
			return 1;
		}
		if (s->behind || s->error)
			return raise_end(L, s, NULL);
		if (s->ended) {
			lua_pushnil(L);
			return 1;
		}
		if (!wait_more(L, s, o.deadline))
			return raise_timeout(L, s, &o, "output", "next");
	}
}

/* Finds the pattern at 2 in the unread bytes: true with the match's start
 * and end (1-based, as string.find) and its captures pushed (ncap of them). */
static bool find(lua_State *L, struct lstream *s, bool plain, lua_Integer *ms, lua_Integer *me, int *ncap)
{
	int top = lua_gettop(L);
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "find");
	lua_remove(L, -2);
	lua_pushlstring(L, (const char *)s->buf.data + s->pos, unread(s));
	lua_pushvalue(L, 2);
	lua_pushinteger(L, 1);
	lua_pushboolean(L, plain);
	lua_call(L, 4, LUA_MULTRET);
	if (lua_isnil(L, top + 1)) {
		lua_settop(L, top);
		return false;
	}
	*ms = lua_tointeger(L, top + 1);
	*me = lua_tointeger(L, top + 2);
	*ncap = lua_gettop(L) - top - 2;
	lua_remove(L, top + 1);
	lua_remove(L, top + 1);
	return true;
}

/* read_until (until = true: returns the bytes through the match) and expect
 * (the match, or its captures). */
static int match(lua_State *L, bool until)
{
	struct lstream *s = check_stream(L);
	const char *m = until ? "read_until" : "expect";
	const char *pat = luaL_checkstring(L, 2);
	struct rdopts o;
	read_opts(L, 3, until ? "stream:read_until options" : "stream:expect options", &o, DEFAULT_TIMEOUT_NS);
	lua_settop(L, 3);
	lua_pushfstring(L, "a match for %s%s", pv_quote(pat, strlen(pat), (char[400]){ 0 }, 400),
					     o.plain ? " (plain)" : "");
	int wanted_idx = lua_gettop(L);
	for (;;) {
		lua_Integer ms, me;
		int ncap;
		if (unread(s) && find(L, s, o.plain, &ms, &me, &ncap)) {
			if (until) {
				lua_pop(L, ncap);
				consume(L, s, (size_t)me);
				return 1;
			}
			consume(L, s, (size_t)me); /* the bytes through the match go */
			if (ncap) {
				lua_pop(L, 1);
				return ncap; /* a pattern with captures gives them, as string.match */
			}
			lua_pushlstring(L, lua_tostring(L, -1) + ms - 1, (size_t)(me - ms + 1));
			return 1;
		}
		if (s->ended || s->behind)
			return raise_end(L, s, lua_tostring(L, wanted_idx));
		if (!wait_more(L, s, o.deadline))
			return raise_timeout(L, s, &o, lua_tostring(L, wanted_idx), m);
	}
}

static int s_read_until(lua_State *L)
{
	return match(L, true);
}

static int s_expect(lua_State *L)
{
	return match(L, false);
}

/* Everything until the end or the timeout (default: what has come so far). */
static int s_drain(lua_State *L)
{
	struct lstream *s = check_stream(L);
	struct rdopts o;
	luaL_Buffer b;
	read_opts(L, 2, "stream:drain timeout", &o, 0);
	lua_settop(L, 1);
	if (o.by_test && o.timeout == 0)
		o.deadline = pv_mono_ns();
	luaL_buffinit(L, &b);
	for (;;) {
		if (unread(s)) {
			consume(L, s, unread(s));
			luaL_addvalue(&b);
		}
		if (s->ended || s->behind)
			break;
		/* what is there now is read even with no time to wait */
		bool more = wait_more(L, s, o.timeout ? o.deadline : pv_mono_ns() + 1000000u);
		if (!more && !unread(s))
			break;
		/* a console stream's wait_more says true after every look at the
		 * file: without a timeout, a look that found nothing ends it */
		if (!o.timeout && s->kind == LS_HOST && !unread(s))
			break;
	}
	luaL_pushresult(&b);
	if (s->behind && !lua_rawlen(L, -1))
		return raise_end(L, s, NULL);
	return 1;
}

static int s_eof(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, 1, "provium.stream");
	lua_pushboolean(L, (s->ended || s->res.closed) && !unread(s));
	return 1;
}

static int s_close(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, 1, "provium.stream");
	if (s->res.ops && !s->res.closed)
		scope_close(&s->res, SCOPE_BY_USER);
	return 0;
}

static int s_creation_site(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, 1, "provium.stream");
	lua_pushstring(L, s->site);
	return 1;
}

static int s_tostring(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, 1, "provium.stream");
	lua_pushfstring(L, "provium.stream(%s, opened at %s)", s->what, s->site);
	return 1;
}

static void stream_close(struct scope_res *r, enum scope_how how)
{
	struct lstream *s = (struct lstream *)r;
	struct lvm *v = s->v;
	if (s->linked) {
		for (struct lstream **pp = &v->streams; *pp; pp = &(*pp)->next)
			if (*pp == s) {
				*pp = s->next;
				break;
			}
		s->linked = false;
		if (s->kind == LS_AGENT && v->state == LVM_RUNNING && v->gen == s->gen) {
			lvm_defer(v, LVM_REAP_STREAM, s->sid, s->gen);
			if (how != SCOPE_BY_GC)
				lvm_settle(v);
		}
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->ino >= 0)
		close(s->ino);
	s->fd = s->ino = -1;
	pv_buf_release(&s->buf);
	s->pos = 0;
	free(s->error);
	s->error = NULL;
}

static const struct scope_ops stream_ops = { SCOPE_STREAM, "provium.stream", stream_close, NULL, NULL };

/* ---- opening ----------------------------------------------------------------------------- */

static struct lstream *new_stream(lua_State *L, int vm_idx, const char *what, int opts)
{
	struct lvm *v = lvm_check(L, vm_idx);
	size_t limit = DEFAULT_LIMIT;
	if (opts && lua_istable(L, opts)) {
		if (lua_getfield(L, opts, "buffer") != LUA_TNIL) {
			uint64_t b = opts_size(L, -1, "stream buffer");
			if (b < 4096 || b > (1ull << 32))
				luaL_error(L, "stream buffer: %s is out of range (4K to 4G)", lua_tostring(L, -1));
			limit = (size_t)b;
		}
		lua_pop(L, 1);
	}
	struct lstream *s = lua_newuserdatauv(L, sizeof(*s), 1);
	memset(s, 0, sizeof(*s));
	s->fd = s->ino = -1;
	luaL_setmetatable(L, "provium.stream");
	lua_pushvalue(L, vm_idx);
	lua_setiuservalue(L, -2, 1);
	s->v = v;
	s->limit = limit;
	snprintf(s->what, sizeof(s->what), "%s", what);
	runner_where(L, s->site, sizeof(s->site));
	scope_add(L, &s->res, &stream_ops);
	return s;
}

msgpack_packer *lstream_open_begin(lua_State *L, int vm_idx, const char *what, int opts, unsigned nargs)
{
	vm_idx = lua_absindex(L, vm_idx);
	opts = opts ? lua_absindex(L, opts) : 0;
	struct lvm *v = lvm_running(L, vm_idx, "opening a stream");
	struct lstream *s = new_stream(L, vm_idx, what, opts);
	s->kind = LS_AGENT;
	v->vm.agent.on_push = on_push; /* a new QEMU's connection starts without it */
	v->vm.agent.push_ctx = v;
	return agent_begin(&v->vm.agent, "stream_open", nargs);
}

void lstream_open_finish(lua_State *L)
{
	struct lstream *s = luaL_checkudata(L, -1, "provium.stream");
	uint64_t sid = 0;
	lvm_call(L, s->v, "stream_open", 0);
	ctl_get_uint(&s->v->vm.agent.resp, "stream", &sid);
	/* linked before the connection is read again: the answer precedes the data */
	s->sid = (uint32_t)sid;
	s->gen = s->v->gen;
	s->next = s->v->streams;
	s->v->streams = s;
	s->linked = true;
}

void lstream_push_host_file(lua_State *L, int vm_idx, const char *path, const char *what, uint64_t offset, int opts)
{
	vm_idx = lua_absindex(L, vm_idx);
	opts = opts ? lua_absindex(L, opts) : 0;
	struct lstream *s = new_stream(L, vm_idx, what, opts);
	s->kind = LS_HOST;
	s->gen = s->v->gen;
	s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (s->fd < 0)
		luaL_error(L, "%s: cannot open %s: %s", what, path, strerror(errno));
	if (offset && lseek(s->fd, (off_t)offset, SEEK_SET) < 0)
		luaL_error(L, "%s: cannot seek %s: %s", what, path, strerror(errno));
	s->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (s->ino >= 0 && inotify_add_watch(s->ino, path, IN_MODIFY) < 0) {
		close(s->ino);
		s->ino = -1;
	}
	s->next = s->v->streams;
	s->v->streams = s;
	s->linked = true;
}

void lstream_refuse_open(lua_State *L, struct lvm *v, const char *op)
{
	luaL_Buffer b;
	int n = 0;
	for (struct lstream *s = v->streams; s; s = s->next)
		n++;
	if (!n)
		return;
	luaL_buffinit(L, &b);
	lua_pushfstring(L, "%s of VM '%s' refused: %d stream%s of it %s open (close them first):", op, v->name, n,
			n == 1 ? "" : "s", n == 1 ? "is" : "are");
	luaL_addvalue(&b);
	for (struct lstream *s = v->streams; s; s = s->next) {
		lua_pushfstring(L, " %s, opened at %s;", s->what, s->site);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lua_error(L);
}

/* vm:tail_file(path, {start = "end" | "beginning" | offset | -N, buffer =}) */
static int l_tail_file(lua_State *L)
{
	static const char *const keys[] = { "start", "buffer", NULL };
	const char *path = luaL_checkstring(L, 2);
	bool has_opts = opts_check(L, 3, "vm:tail_file options", keys);
	lua_Integer start = 0;
	bool from_end = false;
	if (has_opts) {
		int t = lua_getfield(L, 3, "start");
		if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "end"))
			from_end = true;
		else if (t == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "beginning"))
			start = 0;
		else if (t == LUA_TNUMBER && lua_isinteger(L, -1))
			start = lua_tointeger(L, -1);
		else if (t != LUA_TNIL)
			return luaL_error(L, "vm:tail_file: start must be \"end\", \"beginning\", a byte offset or -N (the last "
					  "N bytes), got %s", luaL_tolstring(L, -1, NULL));
		if (start < 0)
			from_end = true;
		lua_pop(L, 1);
	}
	msgpack_packer *pk = lstream_open_begin(L, 1, lua_pushfstring(L, "tail_file %s", path), has_opts ? 3 : 0, 3);
	msgpack_pack_str_with_body(pk, "path", 4);
	msgpack_pack_str_with_body(pk, path, strlen(path));
	msgpack_pack_str_with_body(pk, "start", 5);
	msgpack_pack_int64(pk, start);
	msgpack_pack_str_with_body(pk, "from_end", 8);
	from_end ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	lstream_open_finish(L);
	return 1;
}

static const luaL_Reg stream_methods[] = {
	{ "next", s_next },   { "read_until", s_read_until }, { "expect", s_expect },
	{ "drain", s_drain }, { "eof", s_eof },               { "close", s_close },
	{ "creation_site", s_creation_site }, { NULL, NULL },
};

void lstream_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_tail_file);
	lua_setfield(L, methods, "tail_file");
	luaL_newlib(L, stream_methods);
	scope_set_methods(L, &stream_ops);
	luaL_getmetatable(L, "provium.stream");
	lua_pushcfunction(L, s_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
}

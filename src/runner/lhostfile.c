/* lhostfile.c - vm:push_file and provium:depends_on_file (lhostfile.h). */
#include "lhostfile.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "discover.h"
#include "fixkey.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "scan.h"

/* one write_file request per chunk: well under the 128 MiB frame limit */
#define PUSH_CHUNK (16u << 20)

struct caller {
	char file[4200]; /* the calling Lua file, openable ("" if none) */
	char chunk[4200]; /* its chunk name without the '@' */
};

/* The innermost Lua function on the stack that comes from a file. */
static void find_caller(lua_State *L, struct caller *c)
{
	lua_Debug ar;
	c->file[0] = c->chunk[0] = 0;
	for (int lvl = 1; lua_getstack(L, lvl, &ar); lvl++) {
		lua_getinfo(L, "S", &ar);
		if (ar.source[0] != '@')
			continue;
		const char *src = ar.source + 1;
		size_t n = strlen(src), sl = strlen(FX_SUFFIX);
		struct pv_err err;
		snprintf(c->chunk, sizeof(c->chunk), "%s", src);
		if (!strcmp(src, runner_env()->path)) {
			snprintf(c->file, sizeof(c->file), "%s", runner_env()->file);
		} else if (n > sl && !strcmp(src + n - sl, FX_SUFFIX)) {
			/* a fixture's chunk is named by its root-relative name */
			char name[1100];
			snprintf(name, sizeof(name), "%.*s", (int)(n - sl), src);
			if (fx_find(runner_env()->roots, runner_env()->nroots, name, c->file, sizeof(c->file), &err) < 0)
				c->file[0] = 0;
		} else {
			snprintf(c->file, sizeof(c->file), "%s", src); /* a module: package.path found it there */
		}
		return;
	}
}

/* A fixture builder caches what it does: a file it reads must be named by
 * a literal, so that the static scan behind the cache key sees it. */
static void check_literal(lua_State *L, const struct caller *c, const char *path, const char *what)
{
	size_t n = strlen(c->chunk), sl = strlen(FX_SUFFIX), len;
	bool in_fixture = n > sl && !strcmp(c->chunk + n - sl, FX_SUFFIX);
	if (!in_fixture && strcmp(c->chunk, runner_env()->path) == 0)
		return; /* a test file: nothing is cached */
	char *src = c->file[0] ? fx_read_file(c->file, &len) : NULL;
	struct pv_test_file f;
	bool found = false;
	if (src && pv_scan_source(src, len, &f, NULL) == 0) {
		for (size_t i = 0; i < f.nfile_deps && !found; i++)
			found = strcmp(f.file_deps[i], path) == 0;
		pv_test_file_release(&f);
	}
	free(src);
	if (!found && in_fixture)
		luaL_error(L, "%s(\"%s\") in a fixture needs the path as a literal string in %s: the fixture's cache key "
			   "hashes the files named so, before the builder runs", what, path, c->chunk);
}

/* path resolved against the directory of c's file, into out; a regular
 * file (or, with dir, a directory). */
static const char *resolve_for(lua_State *L, const struct caller *cp, const char *path, const char *what, char *out,
			       size_t len, bool dir)
{
	if (path[0] == '/') {
		snprintf(out, len, "%s", path);
	} else {
		const char *sl = cp->file[0] ? strrchr(cp->file, '/') : NULL;
		snprintf(out, len, "%.*s%s%s", sl ? (int)(sl - cp->file) : 0, sl ? cp->file : "", sl ? "/" : "", path);
	}
	struct stat st;
	if (stat(out, &st) < 0)
		luaL_error(L, "%s: %s: %s (a relative path resolves against the directory of %s)", what, out,
			   strerror(errno), cp->chunk[0] ? cp->chunk : "the test file");
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		luaL_error(L, "%s: %s is not a %s", what, out, dir ? "directory" : "regular file");
	return out;
}

static const char *host_path(lua_State *L, const char *path, const char *what, char *out, size_t len, bool dir)
{
	struct caller c;
	if (!*path)
		luaL_error(L, "%s: the host path is empty", what);
	find_caller(L, &c);
	return resolve_for(L, &c, path, what, out, len, dir);
}

const char *lhostfile_path(lua_State *L, const char *path, const char *what, char *out, size_t len)
{
	return host_path(L, path, what, out, len, false);
}

const char *lhostfile_dir(lua_State *L, const char *path, const char *what, char *out, size_t len)
{
	return host_path(L, path, what, out, len, true);
}

/* path (at idx) resolved against the calling file's directory, into out. */
static const char *resolve(lua_State *L, int idx, const char *what, char *out, size_t len)
{
	struct caller c;
	const char *path = luaL_checkstring(L, idx);
	if (!*path)
		luaL_error(L, "%s: the host path is empty", what);
	find_caller(L, &c);
	check_literal(L, &c, path, what);
	return resolve_for(L, &c, path, what, out, len, false);
}

static int l_depends_on_file(lua_State *L)
{
	char p[4400];
	lua_pushstring(L, resolve(L, 2, "provium:depends_on_file", p, sizeof(p)));
	return 1;
}

static int l_push_file(lua_State *L)
{
	static const char *const keys[] = { "mode", NULL };
	char p[4400];
	bool opts = opts_check(L, 4, "vm:push_file options", keys);
	struct lvm *v = lvm_running(L, 1, "push_file");
	size_t glen;
	const char *guest = luaL_checklstring(L, 3, &glen);
	resolve(L, 2, "vm:push_file", p, sizeof(p));
	int64_t mode = -1;
	if (opts && lua_getfield(L, 4, "mode") != LUA_TNIL)
		mode = opts_mode(L, -1, "vm:push_file");
	int *fd = scope_fd_box(L);
	if ((*fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
		return luaL_error(L, "vm:push_file: %s: %s", p, strerror(errno));
	struct stat st;
	if (mode < 0)
		mode = fstat(*fd, &st) == 0 ? (st.st_mode & 07777) : 0644;
	char **box = scope_strv_box(L, 1); /* outside the Lua heap and its limit */
	char *buf = box[0] = malloc(PUSH_CHUNK);
	if (!buf)
		return luaL_error(L, "out of memory");
	for (bool first = true;; first = false) {
		ssize_t n = read(*fd, buf, PUSH_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return luaL_error(L, "vm:push_file: reading %s: %s", p, strerror(errno));
		if (n == 0 && !first)
			break;
		msgpack_packer *pk = agent_begin(&v->vm.agent, "write_file", 4);
		msgpack_pack_str_with_body(pk, "path", 4);
		msgpack_pack_str_with_body(pk, guest, glen);
		msgpack_pack_str_with_body(pk, "mode", 4);
		msgpack_pack_int64(pk, mode);
		msgpack_pack_str_with_body(pk, "data", 4);
		msgpack_pack_bin_with_body(pk, buf, (size_t)n);
		msgpack_pack_str_with_body(pk, "append", 6);
		first ? msgpack_pack_false(pk) : msgpack_pack_true(pk);
		lvm_call(L, v, "push_file", 0);
		if (n == 0)
			break;
	}
	return 0;
}

void lhostfile_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_push_file);
	lua_setfield(L, methods, "push_file");
	lua_getglobal(L, "provium");
	/* raw: the provium table's __newindex only takes settings */
	lua_pushliteral(L, "depends_on_file");
	lua_pushcfunction(L, l_depends_on_file);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/* config.c - loading provium.lua.
 *
 * Everything that touches the Lua state, from luaL_openlibs to copying values
 * out, runs inside one lua_pcall: a Lua memory error then unwinds to a place
 * where we can close the state and report it, instead of reaching the panic
 * handler and aborting. C allocations made in there are stored in the
 * caller's struct as soon as they are made, so that an unwind never strands
 * one: pv_config_release frees whatever was filled in.
 *
 * Over 800 lines: the loader is one protected call over one Lua state, and
 * every key's check (with its message) sits beside the others so that the
 * rules of provium.lua can be read in one place.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "sys.h"
#include "units.h"

#define DEFAULT_PATH "provium.lua"
#define DEFAULT_CACHE_MAX_SIZE (UINT64_C(20) << 30)
/* a provium.lua is a page of settings; more is not a config file */
#define PV_CONFIG_MAX_BYTES (16u << 20)
#define DEFAULT_TIMEOUT_NS (UINT64_C(300) * 1000000000)
#define DEFAULT_OVERCOMMIT 1.0
#define DEFAULT_PSI 10.0

static const char *const known_keys[] = {
	"roots", "profiles", "cache_dir", "cache_max_size", "memory",
	"cpus",  "cpu_overcommit", "vcpus", "timeout", "psi_threshold", "lua_memory",
};
#define NKEYS (sizeof(known_keys) / sizeof(known_keys[0]))

struct load {
	const char *path; /* as shown in messages */
	const char *src;
	size_t len;
	struct pv_config *cfg;
	struct pv_err *err;
	int rc;
};

/* Sets the error as "<path>: <message>" and returns neg. */
static int fail(struct load *ld, int neg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct load *ld, int neg, const char *fmt, ...)
{
	char msg[PV_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return pv_err_set(ld->err, neg, SIZE_MAX, "%s: %s", ld->path, msg);
}


/* What the value at idx is, for "got ..." in messages: `string "4"`, `0`,
 * `2.5`, `boolean`. Never converts the value in place. */
static const char *describe(lua_State *L, int idx, char *buf, size_t size)
{
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		char q[80];
		snprintf(buf, size, "string %s", pv_quote(s, len, q, sizeof(q)));
		break;
	}
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
		else
			snprintf(buf, size, "%.14g", (double)lua_tonumber(L, idx));
		break;
	default:
		snprintf(buf, size, "%s", lua_typename(L, lua_type(L, idx)));
	}
	return buf;
}

/* Edit distance between two short strings, case-insensitive, for "did you
 * mean"; a large number when either is too long to bother. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[33];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = ((a[i - 1] | 0x20) == (b[j - 1] | 0x20)) ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *pv_closest_name(const char *key, const char *const *known, size_t n, size_t max_dist)
{
	size_t best = SIZE_MAX;
	const char *suggest = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t dist = distance(key, known[i]);
		if (dist < best) {
			best = dist;
			suggest = known[i];
		}
	}
	return suggest && best <= max_dist && best < strlen(key) ? suggest : NULL;
}

static bool is_known(const char *k)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(k, known_keys[i]) == 0)
			return true;
	return false;
}

static int unknown_key(struct load *ld, const char *key, size_t len)
{
	char q[80], known[256] = "", hint[64] = "";
	size_t o = 0;
	const char *suggest = strlen(key) == len ? pv_closest_name(key, known_keys, NKEYS, 2) : NULL;

	for (size_t i = 0; i < NKEYS; i++)
		o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "", known_keys[i]);
	if (suggest)
		snprintf(hint, sizeof(hint), "did you mean \"%s\"? ", suggest);
	return fail(ld, -EINVAL, "key %s is not a config key (%sknown: %s)", pv_quote(key, len, q, sizeof(q)),
		    hint, known);
}

/* Every key must be a known name. When several are wrong, the one reported
 * is the smallest, so that the message does not depend on hash order. */
static int check_keys(lua_State *L, struct load *ld, int t)
{
	const char *bad = NULL;
	size_t bad_len = 0;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			char d[128];
			describe(L, -1, d, sizeof(d));
			lua_pop(L, 1);
			return fail(ld, -EINVAL,
				    "the returned table has an entry without a name (key %s); settings are "
				    "named, e.g. return { roots = { \"tests\" } }",
				    d);
		}
		size_t len;
		const char *k = lua_tolstring(L, -1, &len);
		if ((strlen(k) != len || !is_known(k)) && (!bad || strcmp(k, bad) < 0)) {
			bad = k;
			bad_len = len;
		}
	}
	/* bad still points into a key of the table, which is alive on the stack */
	return bad ? unknown_key(ld, bad, bad_len) : 0;
}

/* The string at the top of the stack, or NULL (with the error set) when it is
 * not a non-empty string without NUL bytes. what names it in messages. */
static const char *get_path_string(lua_State *L, struct load *ld, const char *what)
{
	char d[128];
	size_t len;
	const char *s;

	if (lua_type(L, -1) != LUA_TSTRING) {
		ld->rc = fail(ld, -EINVAL, "%s must be a non-empty string (a path), got %s", what,
			      describe(L, -1, d, sizeof(d)));
		return NULL;
	}
	s = lua_tolstring(L, -1, &len);
	if (len == 0 || strlen(s) != len) {
		ld->rc = fail(ld, -EINVAL, "%s must be a non-empty string (a path)%s, got %s", what,
			      len ? " without NUL bytes" : "", describe(L, -1, d, sizeof(d)));
		return NULL;
	}
	return s;
}

static int get_roots(lua_State *L, struct load *ld)
{
	struct pv_config *c = ld->cfg;
	int t = lua_gettop(L);
	lua_Unsigned n;
	char d[128];

	if (lua_type(L, t) != LUA_TTABLE)
		return fail(ld, -EINVAL,
			    "\"roots\" must be an array of test directories or files, e.g. roots = { "
			    "\"tests\" }, got %s",
			    describe(L, t, d, sizeof(d)));
	n = lua_rawlen(L, t);
	/* An array and nothing else: a named entry is most likely a typo that
	 * would otherwise be ignored. */
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		lua_Integer k;
		if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1 || (lua_Unsigned)k > n) {
			if (lua_type(L, -1) == LUA_TSTRING) {
				size_t len;
				const char *ks = lua_tolstring(L, -1, &len);
				pv_quote(ks, len, d, sizeof(d));
			} else {
				describe(L, -1, d, sizeof(d));
			}
			lua_pop(L, 1);
			return fail(ld, -EINVAL,
				    "\"roots\" must be an array of strings, e.g. roots = { \"tests\" }, but "
				    "it has the key %s",
				    d);
		}
	}
	if (n > SIZE_MAX / sizeof(char *))
		return fail(ld, -ENOMEM, "\"roots\" is too long");
	c->roots = calloc(n ? (size_t)n : 1, sizeof(char *));
	if (!c->roots)
		return fail(ld, -ENOMEM, "out of memory");
	for (lua_Unsigned i = 1; i <= n; i++) {
		char what[64];
		const char *s;
		lua_rawgeti(L, t, (lua_Integer)i);
		snprintf(what, sizeof(what), "roots[%llu]", (unsigned long long)i);
		if (!(s = get_path_string(L, ld, what)))
			return ld->rc;
		c->roots[i - 1] = strdup(s);
		if (!c->roots[i - 1])
			return fail(ld, -ENOMEM, "out of memory");
		c->nroots = (size_t)i;
		lua_pop(L, 1);
	}
	return 0;
}

/* A size at the top of the stack: a Lua number of bytes or a size string. */
static int get_size(lua_State *L, struct load *ld, const char *key, uint64_t *ret)
{
	char d[128];
	int rc;

	if (lua_type(L, -1) == LUA_TNUMBER) {
		lua_Integer i;
		/* integers are exact; only floats go through the double form */
		if (lua_isinteger(L, -1) && (i = lua_tointeger(L, -1)) >= 0) {
			*ret = (uint64_t)i;
			return 0;
		}
		rc = pv_size_from_number((double)lua_tonumber(L, -1), ret, ld->err);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		if (strlen(s) != len)
			return fail(ld, -EINVAL, "\"%s\" must not contain NUL bytes", key);
		rc = pv_parse_size(s, ret, ld->err);
	} else {
		return fail(ld, -EINVAL,
			    "\"%s\" must be a size: a number of bytes or a string like \"512M\" or "
			    "\"8G\", got %s",
			    key, describe(L, -1, d, sizeof(d)));
	}
	if (rc < 0)
		pv_err_prefix(ld->err, "%s: \"%s\"", ld->path, key);
	return rc;
}

static int get_duration(lua_State *L, struct load *ld, const char *key, uint64_t *ret)
{
	char d[128];
	int rc;

	if (lua_type(L, -1) == LUA_TNUMBER) {
		rc = pv_duration_from_seconds((double)lua_tonumber(L, -1), ret, ld->err);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		if (strlen(s) != len)
			return fail(ld, -EINVAL, "\"%s\" must not contain NUL bytes", key);
		rc = pv_parse_duration(s, ret, ld->err);
	} else {
		return fail(ld, -EINVAL,
			    "\"%s\" must be a duration: a number of seconds or a string like \"90s\" or "
			    "\"5m\", got %s",
			    key, describe(L, -1, d, sizeof(d)));
	}
	if (rc < 0)
		pv_err_prefix(ld->err, "%s: \"%s\"", ld->path, key);
	return rc;
}

/* A Lua number (integer or float) at the top of the stack; false if not one. */
static bool get_number(lua_State *L, double *ret)
{
	if (lua_type(L, -1) != LUA_TNUMBER)
		return false;
	*ret = (double)lua_tonumber(L, -1);
	return true;
}

/* An integer >= 1 at the top of the stack. lua_tointegerx also accepts
 * floats with an integral value (cpus = 8 / 2), but it would convert
 * strings, hence the type check first. */
static bool get_count(lua_State *L, uint32_t *ret)
{
	int isint = 0;
	lua_Integer n = 0;
	if (lua_type(L, -1) == LUA_TNUMBER)
		n = lua_tointegerx(L, -1, &isint);
	if (!isint || n < 1 || (uint64_t)n > UINT32_MAX)
		return false;
	*ret = (uint32_t)n;
	return true;
}

/* Pushes t[key] without metamethods; returns its type. */
static int field(lua_State *L, int t, const char *key)
{
	lua_pushstring(L, key);
	return lua_rawget(L, t);
}

static const char *const profile_keys[] = { "kernel", "initrd", "cmdline", "memory", "cpus", "accel", "agent", "vmgenid",
					    "disks",  "base",   "suite",   "packages", "init", "mirror", "build", "build_out",
					    "build_inputs", "boot" };
#define NPROFILE_KEYS (sizeof(profile_keys) / sizeof(profile_keys[0]))

/* A Debian package name (Debian Policy 5.6.7): lower case letters, digits,
 * '+', '-' and '.', at least two characters, starting with a letter or digit. */
static bool debian_package_name(const char *s, size_t len)
{
	if (len < 2 || len > 100 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* base, suite, mirror, packages and init of the profile table at t. */
static int get_profile_base(lua_State *L, struct load *ld, struct pv_profile *p, int t)
{
	static const char *const needs_base[] = { "suite", "packages", "init", "mirror" };
	char d[128];
	if (field(L, t, "base") == LUA_TNIL) {
		for (size_t i = 0; i < sizeof(needs_base) / sizeof(needs_base[0]); i++) {
			if (field(L, t, needs_base[i]) != LUA_TNIL)
				return fail(ld, -EINVAL, "profiles.%s.%s needs base = \"debian\" (a root built from Debian "
					    "packages, docs/images.md)", p->name, needs_base[i]);
			lua_pop(L, 1);
		}
		return 0;
	}
	if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "debian") != 0)
		return fail(ld, -EINVAL, "profiles.%s.base must be \"debian\" (the only base there is), got %s", p->name,
			    describe(L, -1, d, sizeof(d)));
	if (!(p->base = strdup("debian")))
		return fail(ld, -ENOMEM, "out of memory");
	static const char *const strs[] = { "suite", "mirror" };
	for (int i = 0; i < 2; i++) {
		lua_settop(L, t);
		if (field(L, t, strs[i]) == LUA_TNIL)
			continue;
		size_t len;
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		bool ok = s && len && strlen(s) == len && !strpbrk(s, " \t\n'\"\\");
		if (ok && i == 0)
			ok = debian_package_name(s, len) || (len == 1 && s[0] >= 'a' && s[0] <= 'z');
		if (ok && i == 1)
			ok = !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "file:/", 6);
		if (!ok)
			return fail(ld, -EINVAL,
				    i ? "profiles.%s.mirror must be an archive URL (http://, https:// or file:/), got %s"
				      : "profiles.%s.suite must be a Debian suite name (e.g. \"bookworm\"), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		if (!(*(i ? &p->mirror : &p->suite) = strdup(s)))
			return fail(ld, -ENOMEM, "out of memory");
	}
	lua_settop(L, t);
	if (field(L, t, "init") != LUA_TNIL) {
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
		if (strcmp(s, "agent") != 0 && strcmp(s, "systemd") != 0)
			return fail(ld, -EINVAL,
				    "profiles.%s.init must be \"agent\" (the agent is PID 1) or \"systemd\" (systemd is PID 1, "
				    "the agent a unit), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		p->init_systemd = !strcmp(s, "systemd");
	}
	lua_settop(L, t);
	if (field(L, t, "packages") == LUA_TNIL)
		return 0;
	int lt = lua_gettop(L);
	lua_Unsigned n = lua_type(L, lt) == LUA_TTABLE ? lua_rawlen(L, lt) : 0;
	if (lua_type(L, lt) != LUA_TTABLE)
		return fail(ld, -EINVAL, "profiles.%s.packages must be a list of Debian package names, got %s", p->name,
			    describe(L, lt, d, sizeof(d)));
	if (n > 1000)
		return fail(ld, -EINVAL, "profiles.%s.packages has %llu names (at most 1000)", p->name,
			    (unsigned long long)n);
	if (n && !(p->packages = calloc((size_t)n, sizeof(*p->packages))))
		return fail(ld, -ENOMEM, "out of memory");
	for (lua_Unsigned i = 1; i <= n; i++) {
		size_t len;
		lua_rawgeti(L, lt, (lua_Integer)i);
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!s || strlen(s) != len || !debian_package_name(s, len))
			return fail(ld, -EINVAL,
				    "profiles.%s.packages[%llu] is not a Debian package name (lower case letters, digits, "
				    "+ - and .), got %s",
				    p->name, (unsigned long long)i, describe(L, -1, d, sizeof(d)));
		if (!(p->packages[p->npackages++] = strdup(s)))
			return fail(ld, -ENOMEM, "out of memory");
		lua_pop(L, 1);
	}
	qsort(p->packages, p->npackages, sizeof(*p->packages), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < p->npackages; i++) {
		if (w && !strcmp(p->packages[w - 1], p->packages[i])) {
			free(p->packages[i]);
			continue;
		}
		p->packages[w++] = p->packages[i];
	}
	p->npackages = w;
	return 0;
}

static int cmp_profile(const void *a, const void *b)
{
	return strcmp(((const struct pv_profile *)a)->name, ((const struct pv_profile *)b)->name);
}

/* A file a profile names must be readable now, not when a test boots it. */
/* s with every "{out}" replaced by out (NULL: out of memory). */
static char *expand_out(const char *s, const char *out)
{
	size_t n = 0, ol = strlen(out);
	for (const char *p = s; (p = strstr(p, "{out}")); p += 5)
		n++;
	char *r = malloc(strlen(s) + n * ol + 1), *w = r;
	if (!r)
		return NULL;
	for (const char *p = s, *q; *p; p = q + 5) {
		if (!(q = strstr(p, "{out}"))) {
			strcpy(w, p);
			return r;
		}
		memcpy(w, p, (size_t)(q - p));
		w += q - p;
		memcpy(w, out, ol);
		w += ol;
	}
	*w = 0;
	return r;
}

/* A path of the profile: readable now, or, with "{out}" in it, made by the
 * profile's build (checked after it runs, src/host/pbuild.c). */
static int get_profile_file(lua_State *L, struct load *ld, const struct pv_profile *p, const char *key, char **ret)
{
	char what[160];
	const char *s;

	snprintf(what, sizeof(what), "profiles.%.100s.%s", p->name, key);
	if (!(s = get_path_string(L, ld, what)))
		return ld->rc;
	if (strstr(s, "{out}")) {
		if (!p->build)
			return fail(ld, -EINVAL, "%s: %s uses {out}, the output of a build, but the profile has no build "
				    "(give build = \"a command that makes it\")", what, s);
		if (!(*ret = expand_out(s, p->build_out)))
			return fail(ld, -ENOMEM, "out of memory");
		return 0;
	}
	if (access(s, R_OK) != 0)
		return fail(ld, -errno, "%s: %s: %s (a file on this host)", what, s, strerror(errno));
	if (!(*ret = strdup(s)))
		return fail(ld, -ENOMEM, "out of memory");
	return 0;
}

/* build, build_out and build_inputs of the profile table at t. */
static int get_profile_build(lua_State *L, struct load *ld, struct pv_profile *p, int t)
{
	char d[128], what[160];
	const char *s;
	if (field(L, t, "build") == LUA_TNIL) {
		static const char *const needs[] = { "build_out", "build_inputs" };
		for (int i = 0; i < 2; i++) {
			lua_settop(L, t);
			if (field(L, t, needs[i]) != LUA_TNIL)
				return fail(ld, -EINVAL, "profiles.%s.%s goes with build = \"a command\"", p->name, needs[i]);
		}
		return 0;
	}
	size_t len;
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
	if (!s || !len || strlen(s) != len)
		return fail(ld, -EINVAL, "profiles.%s.build must be a non-empty shell command, e.g. \"make -C kernel "
			    "O={out}\", got %s", p->name, describe(L, -1, d, sizeof(d)));
	lua_settop(L, t);
	if (field(L, t, "build_out") != LUA_TNIL) {
		snprintf(what, sizeof(what), "profiles.%.100s.build_out", p->name);
		if (!(s = get_path_string(L, ld, what)))
			return ld->rc;
		if (strstr(s, "{out}"))
			return fail(ld, -EINVAL, "%s is {out} itself; it cannot use {out}", what);
		p->build_out = strdup(s);
	} else {
		char out[300];
		snprintf(out, sizeof(out), ".provium-out/%s", p->name);
		p->build_out = strdup(out);
	}
	if (!p->build_out)
		return fail(ld, -ENOMEM, "out of memory");
	lua_settop(L, t);
	field(L, t, "build");
	if (!(p->build = expand_out(lua_tostring(L, -1), p->build_out)))
		return fail(ld, -ENOMEM, "out of memory");
	lua_settop(L, t);
	if (field(L, t, "build_inputs") == LUA_TNIL)
		return 0;
	lua_Unsigned n = lua_type(L, -1) == LUA_TTABLE ? lua_rawlen(L, -1) : 0;
	if (lua_type(L, -1) != LUA_TTABLE || n == 0 || n > 4096)
		return fail(ld, -EINVAL, "profiles.%s.build_inputs must be a list of files and directories whose "
			    "changes rebuild, e.g. { \"kernel/\" }, got %s", p->name, describe(L, -1, d, sizeof(d)));
	if (!(p->build_inputs = calloc(n, sizeof(char *))))
		return fail(ld, -ENOMEM, "out of memory");
	int list = lua_gettop(L);
	for (lua_Unsigned i = 1; i <= n; i++) {
		lua_rawgeti(L, list, (lua_Integer)i);
		snprintf(what, sizeof(what), "profiles.%.100s.build_inputs[%llu]", p->name, (unsigned long long)i);
		if (!(s = get_path_string(L, ld, what)))
			return ld->rc;
		if (!(p->build_inputs[i - 1] = strdup(s)))
			return fail(ld, -ENOMEM, "out of memory");
		p->nbuild_inputs = (size_t)i;
		lua_settop(L, list);
	}
	return 0;
}

/* profiles.<name>.disks[k + 1] is on top of the stack. */
static int get_profile_disk(lua_State *L, struct load *ld, const struct pv_profile *p, size_t k,
			    struct pv_profile_disk *pd)
{
	const char *name = p->name;
	static const char *const keys[] = { "id", "size", "image", "readonly", "writable", "faults", "seed", "bus" };
	int t = lua_gettop(L), rc;
	char d[128], what[160];
	snprintf(what, sizeof(what), "profiles.%.100s.disks[%zu]", name, k + 1);
	pd->readonly = pd->writable = pd->faults = -1;
	if (lua_type(L, t) != LUA_TTABLE)
		return fail(ld, -EINVAL, "%s must be a table {id =, size =} or {id =, image =}, got %s", what,
			    describe(L, t, d, sizeof(d)));
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		bool known = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			known = known || (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), keys[i]));
		if (!known) {
			const char *near = NULL;
			char hint[64] = "";
			if (lua_type(L, -1) == LUA_TSTRING) {
				pv_quote(lua_tostring(L, -1), lua_rawlen(L, -1), d, sizeof(d));
				near = pv_closest_name(lua_tostring(L, -1), keys, sizeof(keys) / sizeof(keys[0]), 2);
			} else
				describe(L, -1, d, sizeof(d));
			if (near)
				snprintf(hint, sizeof(hint), "did you mean \"%s\"? ", near);
			lua_pop(L, 1);
			return fail(ld, -EINVAL, "%s has an unknown key %s (%sknown: id, size, image, readonly, writable, "
				    "faults, seed, bus)", what, d, hint);
		}
	}
	if (field(L, t, "id") != LUA_TSTRING || !(pd->id = strdup(lua_tostring(L, -1))))
		return fail(ld, -EINVAL, "%s needs an id (a string: the disk's name, e.g. \"data\")", what);
	lua_settop(L, t);
	if (field(L, t, "size") != LUA_TNIL) {
		char key[200];
		snprintf(key, sizeof(key), "%s.size", what);
		if ((rc = get_size(L, ld, key, &pd->size)) < 0)
			return rc;
	}
	lua_settop(L, t);
	if (field(L, t, "image") != LUA_TNIL) {
		char sub[40];
		snprintf(sub, sizeof(sub), "disks[%zu].image", k + 1);
		if ((rc = get_profile_file(L, ld, p, sub, &pd->image)) < 0)
			return rc;
	}
	lua_settop(L, t);
	int *flags[] = { &pd->readonly, &pd->writable, &pd->faults };
	for (int i = 0; i < 3; i++) {
		if (field(L, t, keys[3 + i]) != LUA_TNIL) {
			if (lua_type(L, -1) != LUA_TBOOLEAN)
				return fail(ld, -EINVAL, "%s.%s must be true or false, got %s", what, keys[3 + i],
					    describe(L, -1, d, sizeof(d)));
			*flags[i] = lua_toboolean(L, -1);
		}
		lua_settop(L, t);
	}
	if (field(L, t, "bus") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || !(pd->bus = strdup(lua_tostring(L, -1))))
			return fail(ld, -EINVAL, "%s.bus must be a string (\"virtio\" or \"scsi\"), got %s", what,
				    describe(L, -1, d, sizeof(d)));
	}
	lua_settop(L, t);
	if (field(L, t, "seed") != LUA_TNIL) {
		if (!lua_isinteger(L, -1))
			return fail(ld, -EINVAL, "%s.seed must be an integer, got %s", what, describe(L, -1, d, sizeof(d)));
		pd->has_seed = true;
		pd->seed = (int64_t)lua_tointeger(L, -1);
	}
	lua_settop(L, t);
	return 0;
}

/* profiles.<name>.disks is on top of the stack. */
static int get_profile_disks(lua_State *L, struct load *ld, struct pv_profile *p)
{
	int t = lua_gettop(L), rc;
	char d[128];
	lua_Unsigned n = lua_type(L, t) == LUA_TTABLE ? lua_rawlen(L, t) : 0;
	if (lua_type(L, t) != LUA_TTABLE)
		return fail(ld, -EINVAL, "profiles.%s.disks must be a list of disks, got %s", p->name,
			    describe(L, t, d, sizeof(d)));
	if (n > PV_PROFILE_MAX_DISKS)
		return fail(ld, -EINVAL, "profiles.%s.disks has %llu disks; at most %d", p->name, (unsigned long long)n,
			    PV_PROFILE_MAX_DISKS);
	p->has_disks = true;
	if (n && !(p->disks = calloc(n, sizeof(*p->disks))))
		return fail(ld, -ENOMEM, "out of memory");
	for (lua_Unsigned i = 0; i < n; i++) {
		lua_rawgeti(L, t, (lua_Integer)i + 1);
		p->ndisks = i + 1;
		if ((rc = get_profile_disk(L, ld, p, i, &p->disks[i])) < 0)
			return rc;
		lua_settop(L, t);
	}
	return 0;
}

/* profiles.<p->name> is on top of the stack. */
static int get_profile(lua_State *L, struct load *ld, struct pv_profile *p)
{
	int t = lua_gettop(L), rc;
	char d[128];
	const char *bad = NULL;

	if (lua_type(L, t) != LUA_TTABLE)
		return fail(ld, -EINVAL, "profiles.%s must be a table of settings (%s), got %s", p->name, PV_PROFILE_KEYS,
			    describe(L, t, d, sizeof(d)));
	/* every key known; the smallest bad one is reported, as for the top level */
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			describe(L, -1, d, sizeof(d));
			lua_pop(L, 1);
			return fail(ld, -EINVAL, "profiles.%s has an entry without a name (key %s); settings are %s",
				    p->name, d, PV_PROFILE_KEYS);
		}
		const char *k = lua_tostring(L, -1);
		bool known = false;
		for (size_t i = 0; i < NPROFILE_KEYS; i++)
			known = known || strcmp(k, profile_keys[i]) == 0;
		if (!known && (!bad || strcmp(k, bad) < 0))
			bad = k;
	}
	if (bad) {
		const char *near = pv_closest_name(bad, profile_keys, NPROFILE_KEYS, 2);
		char q[80], hint[64] = "";
		if (near)
			snprintf(hint, sizeof(hint), "did you mean \"%s\"? ", near);
		pv_quote(bad, strlen(bad), q, sizeof(q));
		q[strlen(q) - 1] = 0; /* unquoted, escaped: profiles.NAME.KEY */
		return fail(ld, -EINVAL, "profiles.%s.%s is not a profile key (%sknown: %s)", p->name, q + 1, hint,
			    PV_PROFILE_KEYS);
	}

	if ((rc = get_profile_base(L, ld, p, t)) < 0 || (rc = get_profile_build(L, ld, p, t)) < 0)
		return rc;
	lua_settop(L, t);
	for (int i = 0; i < 2; i++) {
		const char *key = i ? "initrd" : "kernel";
		if (field(L, t, key) == LUA_TNIL) {
			/* a Debian root boots the built-in kernel, or the profile's own
			 * kernel with the built-in initramfs (the agent) */
			if (p->base) {
				lua_settop(L, t);
				continue;
			}
			return fail(ld, -EINVAL,
				    "profiles.%s needs both kernel and initrd (paths of files on this host), or base = "
				    "\"debian\" (docs/images.md)",
				    p->name);
		}
		if ((rc = get_profile_file(L, ld, p, key, i ? &p->initrd : &p->kernel)) < 0)
			return rc;
		lua_settop(L, t);
	}
	if (p->initrd && !p->kernel)
		return fail(ld, -EINVAL, "profiles.%s gives an initrd without a kernel (give both, only kernel, or neither)",
			    p->name);

	if (field(L, t, "cmdline") != LUA_TNIL) {
		size_t len;
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!s || strlen(s) != len)
			return fail(ld, -EINVAL, "profiles.%s.cmdline must be a string (kernel options), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		if (!(p->cmdline = strdup(s)))
			return fail(ld, -ENOMEM, "out of memory");
	}
	lua_settop(L, t);

	if (field(L, t, "memory") != LUA_TNIL) {
		char key[160];
		snprintf(key, sizeof(key), "profiles.%.100s.memory", p->name);
		if ((rc = get_size(L, ld, key, &p->memory)) < 0)
			return rc;
		if (p->memory < (UINT64_C(32) << 20))
			return fail(ld, -EINVAL, "%s: at least 32M is needed to boot", key);
	}
	lua_settop(L, t);

	if (field(L, t, "cpus") != LUA_TNIL) {
		int isint = 0;
		lua_Integer n = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
		if (!isint || n < 1 || n > 64)
			return fail(ld, -EINVAL, "profiles.%s.cpus must be an integer from 1 to 64, got %s", p->name,
				    describe(L, -1, d, sizeof(d)));
		p->cpus = (uint32_t)n;
	}
	lua_settop(L, t);

	p->accel = -1;
	if (field(L, t, "accel") != LUA_TNIL) {
		const char *a = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
		p->accel = !strcmp(a, "kvm") ? 1 : !strcmp(a, "tcg") ? 0 : !strcmp(a, "auto") ? -1 : -2;
		if (p->accel == -2)
			return fail(ld, -EINVAL, "profiles.%s.accel must be \"auto\", \"kvm\" or \"tcg\", got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
	}
	lua_settop(L, t);

	if (field(L, t, "agent") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "included") != 0)
			return fail(ld, -EINVAL,
				    "profiles.%s.agent can only be \"included\" (the initrd already has "
				    "provium-agent as /init), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		p->agent_included = true;
	}
	lua_settop(L, t);

	if (field(L, t, "vmgenid") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			return fail(ld, -EINVAL,
				    "profiles.%s.vmgenid must be true or false (true: the kernel has CONFIG_VMGENID, give "
				    "it QEMU's vmgenid device), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		p->vmgenid = lua_toboolean(L, -1);
	}
	lua_settop(L, t);

	if (field(L, t, "boot") != LUA_TNIL) {
		const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (!m || (strcmp(m, "cold") && strcmp(m, "warm")))
			return fail(ld, -EINVAL,
				    "profiles.%s.boot must be \"warm\" (VMs resume a booted template, the default) or "
				    "\"cold\" (every VM boots its kernel), got %s",
				    p->name, describe(L, -1, d, sizeof(d)));
		p->boot_cold = !strcmp(m, "cold");
	}
	lua_settop(L, t);

	if (field(L, t, "disks") != LUA_TNIL && (rc = get_profile_disks(L, ld, p)) < 0)
		return rc;
	lua_settop(L, t);
	return 0;
}

/* profiles = { name = { ... }, ... } is at t. Every profile is checked now,
 * in name order (messages do not depend on hash order). */
static int get_profiles(lua_State *L, struct load *ld, int t)
{
	struct pv_config *c = ld->cfg;
	size_t n = 0;
	char d[128];
	int rc;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		size_t len;
		const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!k || len == 0 || strlen(k) != len) {
			describe(L, -1, d, sizeof(d));
			lua_pop(L, 1);
			return fail(ld, -EINVAL,
				    "profiles must be named by non-empty strings, e.g. profiles = { mykernel = { ... } }, "
				    "got the key %s",
				    d);
		}
		if (strcmp(k, "linux") == 0 || strcmp(k, "host") == 0) {
			char name[8];
			snprintf(name, sizeof(name), "%s", k);
			lua_pop(L, 1);
			return fail(ld, -EINVAL,
				    "profiles.%s: \"%s\" is a built-in profile and cannot be redefined; name "
				    "your profile differently (e.g. profiles.my%s) and use that name in provium:vm()", name, name,
				    name);
		}
		n++;
	}
	if (n == 0)
		return 0;
	if (!(c->profiles = calloc(n, sizeof(*c->profiles))))
		return fail(ld, -ENOMEM, "out of memory");
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (!(c->profiles[c->nprofiles].name = strdup(lua_tostring(L, -1))))
			return fail(ld, -ENOMEM, "out of memory");
		c->nprofiles++;
	}
	qsort(c->profiles, c->nprofiles, sizeof(*c->profiles), cmp_profile);
	for (size_t i = 0; i < c->nprofiles; i++) {
		field(L, t, c->profiles[i].name);
		if ((rc = get_profile(L, ld, &c->profiles[i])) < 0)
			return rc;
		lua_settop(L, t);
	}
	return 0;
}

const struct pv_profile *pv_config_profile(const struct pv_config *c, const char *name)
{
	for (size_t i = 0; c && i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, name) == 0)
			return &c->profiles[i];
	return NULL;
}

static int apply_table(lua_State *L, struct load *ld, int t)
{
	struct pv_config *c = ld->cfg;
	char d[128];
	double v;
	int rc;

	if ((rc = check_keys(L, ld, t)) < 0)
		return rc;

	if (field(L, t, "roots") != LUA_TNIL && (rc = get_roots(L, ld)) < 0)
		return rc;
	lua_settop(L, t);

	if (field(L, t, "profiles") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TTABLE)
			return fail(ld, -EINVAL,
				    "\"profiles\" must be a table of profile name -> settings, e.g. "
				    "profiles = { default = { ... } }, got %s",
				    describe(L, -1, d, sizeof(d)));
		c->has_profiles = true;
		if ((rc = get_profiles(L, ld, lua_gettop(L))) < 0)
			return rc;
	}
	lua_settop(L, t);

	if (field(L, t, "cache_dir") != LUA_TNIL) {
		const char *s = get_path_string(L, ld, "\"cache_dir\"");
		if (!s)
			return ld->rc;
		if (!(c->cache_dir = strdup(s)))
			return fail(ld, -ENOMEM, "out of memory");
	}
	lua_settop(L, t);

	if (field(L, t, "cache_max_size") != LUA_TNIL &&
	    (rc = get_size(L, ld, "cache_max_size", &c->cache_max_size)) < 0)
		return rc;
	lua_settop(L, t);

	if (field(L, t, "memory") != LUA_TNIL) {
		if ((rc = get_size(L, ld, "memory", &c->memory)) < 0)
			return rc;
		if (c->memory == 0)
			return fail(ld, -EINVAL,
				    "\"memory\" (the pool's memory) must be more than 0, e.g. \"16G\"");
		c->has_memory = true;
	}
	lua_settop(L, t);

	if (field(L, t, "cpus") != LUA_TNIL) {
		if (!get_count(L, &c->cpus))
			return fail(ld, -EINVAL, "\"cpus\" must be an integer >= 1, got %s",
				    describe(L, -1, d, sizeof(d)));
		c->has_cpus = true;
	}
	lua_settop(L, t);

	if (field(L, t, "vcpus") != LUA_TNIL) {
		if (!get_count(L, &c->vcpus))
			return fail(ld, -EINVAL, "\"vcpus\" (VM vCPUs of all files at once) must be an integer >= 1, got %s",
				    describe(L, -1, d, sizeof(d)));
		c->has_vcpus = true;
	}
	lua_settop(L, t);

	if (field(L, t, "cpu_overcommit") != LUA_TNIL) {
		if (!get_number(L, &v) || !(v > 0) || isinf(v))
			return fail(ld, -EINVAL, "\"cpu_overcommit\" must be a number > 0, e.g. 1.5, got %s",
				    describe(L, -1, d, sizeof(d)));
		c->cpu_overcommit = v;
		c->has_overcommit = true;
	}
	lua_settop(L, t);

	if (field(L, t, "timeout") != LUA_TNIL) {
		if ((rc = get_duration(L, ld, "timeout", &c->timeout_ns)) < 0)
			return rc;
		if (c->timeout_ns == 0)
			return fail(ld, -EINVAL, "\"timeout\" must be more than 0, e.g. \"10m\"");
		c->has_timeout = true;
	}
	lua_settop(L, t);

	if (field(L, t, "psi_threshold") != LUA_TNIL) {
		if (!get_number(L, &v) || !(v >= 0 && v <= 100))
			return fail(ld, -EINVAL,
				    "\"psi_threshold\" must be a number from 0 to 100 (0 disables it), "
				    "got %s",
				    describe(L, -1, d, sizeof(d)));
		c->psi_threshold = v;
		c->has_psi = true;
	}
	lua_settop(L, t);

	if (field(L, t, "lua_memory") != LUA_TNIL) {
		if ((rc = get_size(L, ld, "lua_memory", &c->lua_memory)) < 0)
			return rc;
		if (c->lua_memory < (UINT64_C(1) << 20))
			return fail(ld, -EINVAL,
				    "\"lua_memory\" (the Lua heap limit of each runner) must be at least 1M, e.g. "
				    "\"512M\"");
	}
	lua_settop(L, t);
	return 0;
}

/* The error value at the top of the stack as the message for the user.
 * Lua's own messages already start with "path:line:" (or "..." and the
 * path's tail when it is long); others get the path in front. */
static int lua_failure(lua_State *L, struct load *ld, int status)
{
	const char *msg;

	if (status == LUA_ERRMEM)
		return fail(ld, -ENOMEM, "out of memory");
	if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
		return fail(ld, -EINVAL, "error (error object is a %s value)", luaL_typename(L, -1));
	msg = lua_tostring(L, -1);
	if (strncmp(msg, ld->path, strlen(ld->path)) == 0 || strncmp(msg, "...", 3) == 0)
		return pv_err_set(ld->err, -EINVAL, SIZE_MAX, "%s", msg);
	return fail(ld, -EINVAL, "%s", msg);
}

/* A config is a few assignments: 100 million instructions is an endless loop.
 * (The fuzz build lowers it, to spend its time on other inputs.) */
#ifndef CONFIG_MAX_INSTRUCTIONS
#define CONFIG_MAX_INSTRUCTIONS 100000000
#endif
static void too_long(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_where(L, 0); /* in a hook, level 0 is the running Lua function */
	lua_pushfstring(L, "the config runs too long (over %d million Lua instructions): an endless loop?",
			CONFIG_MAX_INSTRUCTIONS / 1000000);
	lua_concat(L, 2);
	lua_error(L);
}

static int no_exit(lua_State *L)
{
	return luaL_error(L, "os.exit is not allowed in provium.lua (it would end provium); return the settings "
			  "table, or raise error(\"...\") to stop with a message");
}

/* Runs in protected mode: index 1 is the struct load. */
static int load_protected(lua_State *L)
{
	struct load *ld = lua_touserdata(L, 1);
	const char *chunkname;
	char d[128];
	int status;

	luaL_openlibs(L);
	/* os.exit would end provium itself, having run nothing, with whatever
	 * status the chunk chose */
	lua_getglobal(L, "os");
	lua_pushcfunction(L, no_exit);
	lua_setfield(L, -2, "exit");
	lua_pop(L, 1);
	/* "@path" makes Lua's messages start with "path:line:" */
	chunkname = lua_pushfstring(L, "@%s", ld->path);
	/* "t": a precompiled chunk can crash the interpreter; only source */
	status = luaL_loadbufferx(L, ld->src, ld->len, chunkname, "t");
	if (status == LUA_OK) {
		lua_sethook(L, too_long, LUA_MASKCOUNT, CONFIG_MAX_INSTRUCTIONS);
		status = lua_pcall(L, 0, 1, 0);
		lua_sethook(L, NULL, 0, 0);
	}
	if (status != LUA_OK) {
		ld->rc = lua_failure(L, ld, status);
		return 0;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		ld->rc = fail(ld, -EINVAL,
			      "the config must return a table of settings, e.g. return { roots = { "
			      "\"tests\" } }, but it returned %s",
			      lua_isnone(L, -1) || lua_isnil(L, -1) ? "nothing (nil)"
								    : describe(L, -1, d, sizeof(d)));
		return 0;
	}
	ld->rc = apply_table(L, ld, lua_gettop(L));
	return 0;
}

static void set_defaults(struct pv_config *c)
{
	memset(c, 0, sizeof(*c));
	c->cache_max_size = DEFAULT_CACHE_MAX_SIZE;
	c->cpu_overcommit = DEFAULT_OVERCOMMIT;
	c->timeout_ns = DEFAULT_TIMEOUT_NS;
	c->psi_threshold = DEFAULT_PSI;
	c->lua_memory = PV_DEFAULT_LUA_MEMORY;
}

int pv_config_load(const char *path, struct pv_config *ret, struct pv_err *err)
{
	const char *lpath = path ? path : DEFAULT_PATH;
	char *src = NULL;
	size_t len;
	int fd, rc;

	set_defaults(ret);
	fd = open(lpath, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !path)
			return 0; /* no ./provium.lua: defaults */
		if (errno == ENOENT)
			return pv_err_set(err, -ENOENT, SIZE_MAX,
					  "config file \"%s\" does not exist; check the path given "
					  "with --config",
					  path);
		return pv_err_set(err, -errno, SIZE_MAX, "cannot open config file \"%s\": %s", lpath,
				  strerror(errno));
	}
	rc = sys_read_fd(fd, PV_CONFIG_MAX_BYTES, &src, &len);
	close(fd);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot read config file \"%s\": %s", lpath,
				  strerror(-rc));
	rc = pv_config_load_buf(lpath, src, len, ret, err);
	free(src);
	return rc;
}

int pv_config_load_buf(const char *path, const char *src, size_t len, struct pv_config *ret, struct pv_err *err)
{
	struct load ld = { .path = path, .cfg = ret, .err = err, .src = src, .len = len };
	lua_State *L;
	int rc;

	set_defaults(ret);
	ret->path = strdup(ld.path);
	if (!ret->path)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	L = luaL_newstate();
	if (!L) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		goto out;
	}
	/* A light C function and a light userdata: pushing them cannot fail. */
	lua_pushcfunction(L, load_protected);
	lua_pushlightuserdata(L, &ld);
	rc = lua_pcall(L, 1, 0, 0);
	rc = rc == LUA_OK ? ld.rc : lua_failure(L, &ld, rc);
	lua_close(L);
out:
	if (rc < 0)
		pv_config_release(ret);
	return rc;
}

void pv_config_release(struct pv_config *c)
{
	if (!c)
		return;
	free(c->path);
	for (size_t i = 0; i < c->nroots; i++)
		free(c->roots[i]);
	free(c->roots);
	free(c->cache_dir);
	for (size_t i = 0; i < c->nprofiles; i++) {
		free(c->profiles[i].name);
		free(c->profiles[i].kernel);
		free(c->profiles[i].initrd);
		free(c->profiles[i].cmdline);
		for (size_t k = 0; k < c->profiles[i].ndisks; k++) {
			free(c->profiles[i].disks[k].id);
			free(c->profiles[i].disks[k].image);
			free(c->profiles[i].disks[k].bus);
		}
		free(c->profiles[i].disks);
		free(c->profiles[i].base);
		free(c->profiles[i].suite);
		free(c->profiles[i].mirror);
		for (size_t k = 0; k < c->profiles[i].npackages; k++)
			free(c->profiles[i].packages[k]);
		free(c->profiles[i].packages);
		free(c->profiles[i].build);
		free(c->profiles[i].build_out);
		for (size_t k = 0; k < c->profiles[i].nbuild_inputs; k++)
			free(c->profiles[i].build_inputs[k]);
		free(c->profiles[i].build_inputs);
	}
	free(c->profiles);
	memset(c, 0, sizeof(*c));
}

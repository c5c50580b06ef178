/* lboot.c - a VM's boot options (lboot.h). */
#include "lboot.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "sys.h"

/* x86's COMMAND_LINE_SIZE is 2048, provium's own words take ~70 */
#define CMDLINE_MAX 1900
/* the agent's staging directory in the initramfs (src/agent/bootfiles.c) */
#define BOOT_DIR ".provium-boot"

/* A kernel command line fragment at -1: one line of printable text. */
static const char *cmdline_arg(lua_State *L, const char *what, const char *key)
{
	size_t len;
	if (lua_type(L, -1) != LUA_TSTRING)
		return (luaL_error(L, "%s: %s must be a string, got %s", what, key, luaL_typename(L, -1)), NULL);
	const char *s = lua_tolstring(L, -1, &len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return (luaL_error(L, "%s: %s holds a control character at byte %d: the kernel command line is one "
					   "line of text", what, key, (int)i + 1), NULL);
	if (len > CMDLINE_MAX)
		return (luaL_error(L, "%s: %s is %d bytes; the kernel takes at most %d", what, key, (int)len, CMDLINE_MAX),
			NULL);
	return s;
}

/* initial_time at -1: seconds since 1970 (UTC), or "YYYY-MM-DD[THH:MM:SS][Z]"
 * (UTC), as QEMU's -rtc base= wants it. */
static void initial_time(lua_State *L, const char *what, char out[32])
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (lua_type(L, -1) == LUA_TNUMBER) {
		lua_Integer s;
		if (!lua_isinteger(L, -1) && lua_tonumber(L, -1) != (lua_Number)(lua_Integer)lua_tonumber(L, -1))
			luaL_error(L, "%s: initial_time must be whole seconds since 1970, got %f", what, lua_tonumber(L, -1));
		s = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)lua_tonumber(L, -1);
		time_t t = (time_t)s;
		if (s < 0 || s > 4102444799 || !gmtime_r(&t, &tm))
			luaL_error(L, "%s: initial_time %I is outside 1970..2099 (the guest's RTC)", what, (long long)s);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1), *end = strptime(s, "%Y-%m-%d", &tm);
		if (end && *end == 'T')
			end = strptime(end + 1, "%H:%M:%S", &tm);
		if (end && *end == 'Z')
			end++;
		if (!end || *end)
			luaL_error(L, "%s: initial_time \"%s\" is not a UTC date: write \"2030-01-31\", \"2030-01-31T12:00:00\" "
				   "or seconds since 1970", what, s);
		if (tm.tm_year < 70 || tm.tm_year > 199)
			luaL_error(L, "%s: initial_time \"%s\" is outside 1970..2099 (the guest's RTC)", what, s);
		/* the round trip normalizes (and refuses "2030-02-31") */
		struct tm check = tm;
		time_t t = timegm(&check);
		if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon || t < 0)
			luaL_error(L, "%s: initial_time \"%s\" is not a date of the calendar", what, s);
	} else {
		luaL_error(L, "%s: initial_time must be seconds since 1970 or a UTC date string, got %s", what,
			   luaL_typename(L, -1));
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
}

#define SEED_ALLOWED "an integer from 0 to 2^53, or a string of decimal digits up to 18446744073709551615 (2^64-1)"

uint64_t lboot_seed_arg(lua_State *L, const char *what)
{
	if (lua_type(L, -1) == LUA_TNUMBER) {
		lua_Number n = lua_tonumber(L, -1);
		if (lua_isinteger(L, -1)) {
			lua_Integer i = lua_tointeger(L, -1);
			if (i >= 0 && i <= ((lua_Integer)1 << 53))
				return (uint64_t)i;
		} else if (n >= 0 && n <= 9007199254740992.0 && n == (lua_Number)(uint64_t)n) {
			return (uint64_t)n;
		}
		luaL_error(L, "%s: rng_seed must be %s, got %s", what, SEED_ALLOWED, lua_tostring(L, -1));
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		uint64_t v = 0;
		bool ok = len > 0 && len <= 20;
		for (size_t i = 0; ok && i < len; i++) {
			unsigned d = (unsigned)(s[i] - '0');
			if (d > 9 || v > (UINT64_MAX - d) / 10)
				ok = false;
			else
				v = v * 10 + d;
		}
		if (ok)
			return v;
		luaL_error(L, "%s: rng_seed must be %s, got \"%s\"", what, SEED_ALLOWED, s);
	}
	luaL_error(L, "%s: rng_seed must be %s, got %s", what, SEED_ALLOWED, luaL_typename(L, -1));
	return 0;
}

void lboot_seed_str(uint64_t seed, char out[24])
{
	snprintf(out, 24, "%llu", (unsigned long long)seed);
}

/* files[i] at -1: {path =, content =, mode =}; checks, leaves nothing. */
static void check_file(lua_State *L, const char *what, lua_Integer i)
{
	static const char *const keys[] = { "path", "content", "mode", NULL };
	char where[160];
	size_t len;
	snprintf(where, sizeof(where), "%s: files[%lld]", what, (long long)i);
	if (!lua_istable(L, -1))
		luaL_error(L, "%s must be a table {path =, content =, mode =}, got %s", where, luaL_typename(L, -1));
	opts_check(L, -1, where, keys);
	if (lua_getfield(L, -1, "path") != LUA_TSTRING)
		luaL_error(L, "%s.path must be an absolute guest path (a string)", where);
	const char *p = lua_tolstring(L, -1, &len);
	if (p[0] != '/' || len < 2 || p[len - 1] == '/')
		luaL_error(L, "%s.path \"%s\" must be an absolute path to a file", where, p);
	if (strlen(p) != len || strchr(p, '\n') || len > 4000)
		luaL_error(L, "%s.path must be one line of text without NUL bytes, at most 4000 bytes", where);
	for (const char *c = p + 1; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL) {
		size_t cl = strcspn(c, "/");
		if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.'))
			luaL_error(L, "%s.path \"%s\" must not have empty, \".\" or \"..\" components", where, p);
	}
	if (lua_getfield(L, -2, "content") != LUA_TSTRING)
		luaL_error(L, "%s.content must be a string (the file's bytes), got %s", where, luaL_typename(L, -1));
	if (lua_getfield(L, -3, "mode") != LUA_TNIL)
		opts_mode(L, -1, where);
	lua_pop(L, 3);
}

void lboot_parse(lua_State *L, int idx, const char *what, struct lboot *b)
{
	const char *cmd = NULL, *app = NULL;
	char rtc[32] = "";
	uint64_t agent_timeout = 0, seed = 0;
	bool has_seed = false;
	lua_Integer nfiles = -1;
	idx = lua_absindex(L, idx);
	if (!lua_istable(L, idx))
		return;
	/* every value is checked first, so a raise leaves b as it was */
	if (lua_getfield(L, idx, "cmdline") != LUA_TNIL)
		cmd = cmdline_arg(L, what, "cmdline");
	if (lua_getfield(L, idx, "cmdline_append") != LUA_TNIL)
		app = cmdline_arg(L, what, "cmdline_append");
	if (lua_getfield(L, idx, "initial_time") != LUA_TNIL)
		initial_time(L, what, rtc);
	if (lua_getfield(L, idx, "agent_timeout") != LUA_TNIL && (agent_timeout = opts_duration(L, -1, "agent_timeout")) == 0)
		luaL_error(L, "%s: agent_timeout must be more than 0", what);
	if (lua_getfield(L, idx, "rng_seed") != LUA_TNIL) {
		seed = lboot_seed_arg(L, what);
		has_seed = true;
	}
	lua_pop(L, 1); /* rng_seed's value: the rest below counts from files */
	int mode = 0;
	if (lua_getfield(L, idx, "boot") != LUA_TNIL) {
		const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (m && !strcmp(m, "cold"))
			mode = LBOOT_COLD;
		else if (m && !strcmp(m, "warm"))
			mode = LBOOT_WARM;
		else
			luaL_error(L, "%s: boot must be \"warm\" (resume the profile's booted template, the default) or "
				   "\"cold\" (boot the kernel), got %s%s%s", what, m ? "\"" : "", m ? m : luaL_typename(L, -1),
				   m ? "\"" : "");
	}
	lua_pop(L, 1);
	if (lua_getfield(L, idx, "files") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			luaL_error(L, "%s: files must be a list of {path =, content =, mode =}, got %s", what,
				   luaL_typename(L, -1));
		nfiles = (lua_Integer)lua_rawlen(L, -1);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_Integer i = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
			if (i < 1 || i > nfiles)
				luaL_error(L, "%s: files must be a list (keys 1..n), it has the key %s", what,
					   luaL_tolstring(L, -2, NULL));
			check_file(L, what, i);
			lua_pop(L, 1);
		}
	}
	/* -1 files, -2 agent_timeout, -3 initial_time, -4 cmdline_append, -5 cmdline */
	struct lboot_file *files = NULL;
	if (nfiles > 0 && !(files = calloc((size_t)nfiles, sizeof(*files))))
		luaL_error(L, "out of memory");
	bool oom = false;
	for (lua_Integer i = 1; i <= nfiles; i++) {
		struct lboot_file *f = &files[i - 1];
		size_t plen;
		lua_rawgeti(L, -1, i);
		lua_getfield(L, -1, "path");
		lua_getfield(L, -2, "content");
		const char *p = lua_tolstring(L, -2, &plen), *c = lua_tolstring(L, -1, &f->len);
		f->path = strdup(p);
		f->data = malloc(f->len ? f->len : 1);
		if (f->data)
			memcpy(f->data, c, f->len);
		oom |= !f->path || !f->data;
		f->mode = 0644;
		if (lua_getfield(L, -3, "mode") != LUA_TNIL)
			f->mode = (uint32_t)opts_mode(L, -1, what);
		lua_pop(L, 4);
	}
	char *ncmd = cmd ? strdup(cmd) : NULL, *napp = app ? strdup(app) : NULL;
	if (oom || (cmd && !ncmd) || (app && !napp)) {
		struct lboot tmp = { .files = files, .nfiles = nfiles > 0 ? (size_t)nfiles : 0, .cmdline = ncmd,
				     .cmdline_append = napp };
		lboot_free(&tmp);
		luaL_error(L, "out of memory");
	}
	lua_pop(L, 5);
	if (cmd) {
		free(b->cmdline);
		b->cmdline = ncmd;
	}
	if (app) {
		free(b->cmdline_append);
		b->cmdline_append = napp;
	}
	if (rtc[0])
		memcpy(b->rtc_base, rtc, sizeof(rtc));
	if (mode)
		b->mode = mode;
	if (agent_timeout)
		b->agent_timeout_ns = agent_timeout;
	if (has_seed) {
		b->rng_seed = seed;
		b->rng_seed_given = b->rng_seed_fixed = true;
		b->rng_seed_unknown = b->rng_seed_logged = false;
	}
	if (nfiles >= 0) {
		struct lboot old = { .files = b->files, .nfiles = b->nfiles };
		lboot_free(&old);
		b->files = files;
		b->nfiles = (size_t)nfiles;
		b->has_files = true;
	}
}

static int box_gc(lua_State *L)
{
	lboot_free(lua_touserdata(L, 1));
	return 0;
}

struct lboot *lboot_box(lua_State *L)
{
	struct lboot *b = lua_newuserdatauv(L, sizeof(*b), 0);
	memset(b, 0, sizeof(*b));
	if (luaL_newmetatable(L, "provium.lboot_box")) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return b;
}

void lboot_free(struct lboot *b)
{
	for (size_t i = 0; i < b->nfiles; i++) {
		free(b->files[i].path);
		free(b->files[i].data);
	}
	free(b->files);
	free(b->cmdline);
	free(b->cmdline_append);
	memset(b, 0, sizeof(*b));
}

/* A random seed: the kernel's, else time and pid mixed (never fails). */
static uint64_t pick_seed(void)
{
	uint64_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	v = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^ ((uint64_t)getpid() << 32);
	v ^= v >> 30; /* splitmix64's finalizer */
	v *= 0xbf58476d1ce4e5b9ull;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebull;
	return v ^ (v >> 31);
}

char *lboot_cmdline(struct lboot *b, const char *vm_name, const char *profile_cmdline, const char *extra,
		    struct pv_err *err)
{
	char *s = NULL, *full = NULL, seed[24];
	const char *base = b->cmdline ? b->cmdline : profile_cmdline;
	if (asprintf(&s, "%s %s %s", base ? base : "", b->cmdline_append ? b->cmdline_append : "", extra ? extra : "") < 0)
		return (pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory"), NULL);
	if (strlen(s) > CMDLINE_MAX) {
		pv_err_set(err, -E2BIG, SIZE_MAX, "the kernel command line would be %zu bytes (cmdline, cmdline_append and "
			   "PROVIUM_GUEST_CMDLINE); the kernel takes at most %d", strlen(s), CMDLINE_MAX);
		free(s);
		return NULL;
	}
	if (b->rng_seed_unknown) /* a fixture resume: the guest has the build's, which is lost */
		return s;
	if (!b->rng_seed_fixed) {
		b->rng_seed = pick_seed();
		b->rng_seed_fixed = true;
	}
	lboot_seed_str(b->rng_seed, seed);
	/* last, so that it wins over one in cmdline_append (the agent takes the last) */
	int rc = asprintf(&full, "%s provium.rng_seed=%s", s, seed);
	free(s);
	if (rc < 0)
		return (pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory"), NULL);
	if (!b->rng_seed_logged) {
		char line[300];
		snprintf(line, sizeof(line), "vm %s: rng_seed %s", vm_name, seed);
		runner_log(line);
		b->rng_seed_logged = true;
	}
	return full;
}

static int l_vm_rng_seed(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	char seed[24];
	if (!v->boot.rng_seed_fixed || v->boot.rng_seed_unknown) {
		lua_pushnil(L);
		return 1;
	}
	lboot_seed_str(v->boot.rng_seed, seed);
	lua_pushstring(L, seed);
	return 1;
}

void lboot_install(lua_State *L, int methods)
{
	methods = lua_absindex(L, methods);
	lua_pushcfunction(L, l_vm_rng_seed);
	lua_setfield(L, methods, "rng_seed");
}

static int add(struct archive *a, const char *path, unsigned type, unsigned perm, const void *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return ARCHIVE_FATAL;
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_size(e, (la_int64_t)len);
	int rc = archive_write_header(a, e);
	if (rc == ARCHIVE_OK && len && archive_write_data(a, data, len) != (la_ssize_t)len)
		rc = ARCHIVE_FATAL;
	archive_entry_free(e);
	return rc;
}

int lboot_initrd(const struct lboot *b, const char *base, const char *out, uint64_t memory, struct pv_err *err)
{
	uint64_t total = 0;
	for (size_t i = 0; i < b->nfiles; i++)
		total += b->files[i].len;
	if (total > memory / 4)
		return pv_err_set(err, -EFBIG, SIZE_MAX, "the boot files hold %llu bytes, more than a quarter of the VM's "
				  "memory (%llu MiB): they live in its RAM; put big files in with vm:write_file",
				  (unsigned long long)total, (unsigned long long)(memory >> 20));
	int rc = sys_copy_file(base, out);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "copying %s to %s: %s", base, out, strerror(-rc));
	int fd = open(out, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "%s: %s", out, strerror(errno));
	/* the kernel finds the next archive at a 4-byte boundary after zeros */
	static const char zeros[512];
	off_t end = lseek(fd, 0, SEEK_END);
	if (end < 0 || pv_write_all(fd, zeros, (size_t)(512 - end % 512)) < 0) {
		close(fd);
		return pv_err_set(err, -EIO, SIZE_MAX, "%s: %s", out, strerror(errno));
	}
	struct archive *a = archive_write_new();
	char *manifest = NULL;
	size_t mlen = 0;
	FILE *m = open_memstream(&manifest, &mlen);
	for (size_t i = 0; m && i < b->nfiles; i++)
		fprintf(m, "%o %s\n", b->files[i].mode, b->files[i].path);
	if (!a || !m || fclose(m) != 0) {
		close(fd);
		free(manifest);
		if (a)
			archive_write_free(a);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	rc = archive_write_set_format_cpio_newc(a);
	if (rc == ARCHIVE_OK)
		rc = archive_write_open_fd(a, fd);
	if (rc == ARCHIVE_OK)
		rc = add(a, BOOT_DIR, AE_IFDIR, 0700, NULL, 0);
	if (rc == ARCHIVE_OK)
		rc = add(a, BOOT_DIR "/manifest", AE_IFREG, 0600, manifest, mlen);
	for (size_t i = 0; rc == ARCHIVE_OK && i < b->nfiles; i++) {
		char name[64];
		snprintf(name, sizeof(name), BOOT_DIR "/%zu", i);
		rc = add(a, name, AE_IFREG, 0600, b->files[i].data, b->files[i].len);
	}
	if (rc == ARCHIVE_OK)
		rc = archive_write_close(a);
	if (rc != ARCHIVE_OK)
		rc = pv_err_set(err, -EIO, SIZE_MAX, "writing the boot files into %s: %s", out, archive_error_string(a));
	archive_write_free(a);
	free(manifest);
	if (close(fd) < 0 && rc == 0)
		rc = pv_err_set(err, -errno, SIZE_MAX, "%s: %s", out, strerror(errno));
	return rc;
}

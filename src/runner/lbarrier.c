/* lbarrier.c - provium:barrier (contract in lbarrier.h). */
#include "lbarrier.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opts.h"
#include "qmp.h" /* pv_mono_ns */
#include "runner_priv.h"
#include "tclock.h"

#define NAME_MAX_LEN 200
#define COUNT_MAX 100000
#define DEFAULT_TIMEOUT_NS (60ull * 1000000000u)
#define RECHECK_NS (500ull * 1000000u)

struct barrier {
	char dir[4096];
	char me[64]; /* this process's arrival file name */
	int lock_fd, ino_fd;
	uint64_t round; /* the round this caller arrived in */
	char err[9000]; /* set when an operation failed: raised once the fds are closed */
};

/* The start time (field 22 of /proc/PID/stat, clock ticks since boot) of a
 * live process, 0 if pid is gone or a zombie. */
static unsigned long long proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command name may hold anything */
	if (!p || p[1] != ' ' || !p[2] || p[2] == 'Z' || p[2] == 'X' || p[2] == 'x')
		return 0;
	p += 2; /* field 3, the state */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

/* An arrival file's name "PID.START" names a process that still lives. */
static bool arrival_alive(const char *name)
{
	char *end;
	long pid = strtol(name, &end, 10);
	if (pid <= 0 || *end != '.')
		return false;
	unsigned long long start = strtoull(end + 1, &end, 10);
	return !*end && start && proc_start((pid_t)pid) == start;
}

static int read_u64(const char *path, uint64_t *v)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	char *end;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno || end == buf ? -EINVAL : 0;
}

/* path := v, atomically (a temporary file renamed over it). */
static int write_u64(const char *dir, const char *name, uint64_t v)
{
	char tmp[4200], path[4200], buf[32];
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, (int)getpid());
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int len = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)len) != len)
		rc = -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static uint64_t current_round(const struct barrier *b)
{
	char path[4200];
	uint64_t r = 0;
	snprintf(path, sizeof(path), "%s/round", b->dir);
	if (read_u64(path, &r) < 0)
		r = 0;
	return r;
}

static void round_dir(const struct barrier *b, uint64_t round, char *out, size_t size)
{
	snprintf(out, size, "%s/r%" PRIu64, b->dir, round);
}

/* Removes round's arrival files and its directory. */
static void remove_round(const struct barrier *b, uint64_t round)
{
	char rd[4200], p[4500];
	round_dir(b, round, rd, sizeof(rd));
	DIR *d = opendir(rd);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof(p), "%s/%s", rd, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(rd);
}

/* The live arrivals of round other than this process's; dead ones' files go. */
static unsigned live_arrivals(const struct barrier *b, uint64_t round)
{
	char rd[4200], p[4500];
	unsigned n = 0;
	round_dir(b, round, rd, sizeof(rd));
	DIR *d = opendir(rd);
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, b->me))
			continue;
		if (arrival_alive(e->d_name)) {
			n++;
		} else {
			snprintf(p, sizeof(p), "%s/%s", rd, e->d_name);
			unlink(p);
		}
	}
	closedir(d);
	return n;
}

static int lock(struct barrier *b)
{
	while (flock(b->lock_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static void unlock(struct barrier *b)
{
	flock(b->lock_fd, LOCK_UN);
}

static void close_barrier(struct barrier *b)
{
	if (b->lock_fd >= 0)
		close(b->lock_fd);
	if (b->ino_fd >= 0)
		close(b->ino_fd);
	b->lock_fd = b->ino_fd = -1;
}

/* Opens (making it) the barrier's directory, its lock and the inotify
 * watch (before arriving, so that no completion goes unseen). */
static int open_barrier(struct barrier *b, const char *name)
{
	char base[4096], lockp[4200];
	snprintf(base, sizeof(base), "%s/barriers", runner_env()->scratch);
	if (snprintf(b->dir, sizeof(b->dir), "%s/%s", base, name) >= (int)sizeof(b->dir))
		return snprintf(b->err, sizeof(b->err), "the scratch directory's path is too long"), -ENAMETOOLONG;
	if ((mkdir(base, 0755) < 0 && errno != EEXIST) || (mkdir(b->dir, 0755) < 0 && errno != EEXIST))
		return snprintf(b->err, sizeof(b->err), "cannot make %s: %s", b->dir, strerror(errno)), -errno;
	snprintf(lockp, sizeof(lockp), "%s/lock", b->dir);
	b->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (b->lock_fd < 0)
		return snprintf(b->err, sizeof(b->err), "cannot open %s: %s", lockp, strerror(errno)), -errno;
	b->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (b->ino_fd < 0 || inotify_add_watch(b->ino_fd, b->dir, IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE) < 0)
		return snprintf(b->err, sizeof(b->err), "inotify on %s: %s", b->dir, strerror(errno)), -errno;
	snprintf(b->me, sizeof(b->me), "%d.%llu", (int)getpid(), proc_start(getpid()));
	return 0;
}

/* Under the lock: fixes or checks the count, then arrives. 1: this arrival
 * completed the round; 0: arrived, waiting; -1: b->err says why not, or
 * *other_count is the count of an earlier call (>0, a mismatch). */
static int arrive(struct barrier *b, uint64_t count, uint64_t *other_count)
{
	char path[4200], rd[4200], mine[4300];
	uint64_t fixed = 0;
	int rc = 0;
	if (lock(b) < 0)
		return snprintf(b->err, sizeof(b->err), "flock: %s", strerror(errno)), -1;
	snprintf(path, sizeof(path), "%s/count", b->dir);
	if (read_u64(path, &fixed) < 0) {
		if (write_u64(b->dir, "count", count) < 0) {
			rc = -1;
			snprintf(b->err, sizeof(b->err), "cannot write %s: %s", path, strerror(errno));
		}
	} else if (fixed != count) {
		*other_count = fixed;
		rc = -1;
	}
	if (rc == 0) {
		b->round = current_round(b);
		unsigned others = live_arrivals(b, b->round);
		if (others + 1 >= count) {
			/* complete: the round moves on, its waiters return */
			if (write_u64(b->dir, "round", b->round + 1) < 0) {
				rc = -1;
				snprintf(b->err, sizeof(b->err), "cannot advance %s/round: %s", b->dir, strerror(errno));
			} else {
				remove_round(b, b->round);
				rc = 1;
			}
		} else {
			round_dir(b, b->round, rd, sizeof(rd));
			snprintf(mine, sizeof(mine), "%s/%s", rd, b->me);
			int fd = -1;
			if ((mkdir(rd, 0755) < 0 && errno != EEXIST) ||
			    (fd = open(mine, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) < 0) {
				rc = -1;
				snprintf(b->err, sizeof(b->err), "cannot arrive in %s: %s", rd, strerror(errno));
			}
			if (fd >= 0)
				close(fd);
		}
	}
	unlock(b);
	return rc;
}

/* The wait ended without a completion seen: takes the arrival back, unless
 * the round completed meanwhile. true: it did (the arrival counted). */
static bool withdraw(struct barrier *b)
{
	char rd[4200], mine[4300];
	bool done;
	if (lock(b) < 0)
		return current_round(b) > b->round;
	done = current_round(b) > b->round;
	if (!done) {
		round_dir(b, b->round, rd, sizeof(rd));
		snprintf(mine, sizeof(mine), "%s/%s", rd, b->me);
		unlink(mine);
	}
	unlock(b);
	return done;
}

static void check_name(lua_State *L, int idx)
{
	size_t len;
	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "provium:barrier: the name must be a string, got %s", luaL_typename(L, idx));
	const char *s = lua_tolstring(L, idx, &len);
	if (len == 0)
		luaL_error(L, "provium:barrier: the name must not be empty");
	if (len > NAME_MAX_LEN || strlen(s) != len || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..") ||
	    strstr(s, ".."))
		luaL_error(L, "provium:barrier: bad name \"%s\": at most %d bytes, without '/', \"..\" or NUL bytes "
			   "(it names a directory)", s, NAME_MAX_LEN);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			luaL_error(L, "provium:barrier: bad name: it holds a control character at byte %d", (int)i + 1);
}

static int l_barrier(lua_State *L)
{
	check_name(L, 2);
	const char *name = lua_tostring(L, 2);
	if (!lua_isinteger(L, 3) || lua_tointeger(L, 3) < 1 || lua_tointeger(L, 3) > COUNT_MAX)
		return luaL_error(L, "provium:barrier(\"%s\"): count must be an integer from 1 to %d, got %s", name,
				  COUNT_MAX, lua_isnoneornil(L, 3) ? "nothing" : luaL_tolstring(L, 3, NULL));
	uint64_t count = (uint64_t)lua_tointeger(L, 3), timeout = DEFAULT_TIMEOUT_NS, other = 0;
	if (!lua_isnoneornil(L, 4)) {
		char what[300];
		snprintf(what, sizeof(what), "provium:barrier(\"%s\") timeout", name);
		timeout = opts_duration(L, 4, what);
	}
	uint64_t start = pv_mono_ns(), deadline = start + timeout, test_dl = tclock_deadline();
	if (test_dl && start >= test_dl)
		return tclock_timed_out(L, lua_pushfstring(L, "provium:barrier(\"%s\")", name));

	struct barrier b = { .lock_fd = -1, .ino_fd = -1 };
	int rc = open_barrier(&b, name);
	if (rc == 0)
		rc = arrive(&b, count, &other);
	if (rc < 0) {
		close_barrier(&b);
		if (other)
			return luaL_error(L, "provium:barrier(\"%s\", %d): the first call for this name fixed its count at "
					  "%d (in this run); every caller must give the same count",
					  name, (int)count, (int)other);
		return luaL_error(L, "provium:barrier(\"%s\"): %s", name, b.err);
	}
	if (rc == 1) {
		close_barrier(&b);
		lua_pushboolean(L, 1);
		return 1;
	}
	bool done = false, test_timed_out = false;
	for (;;) {
		if (current_round(&b) > b.round) {
			done = true;
			break;
		}
		uint64_t now = pv_mono_ns();
		if (test_dl && now >= test_dl) {
			test_timed_out = true;
			done = withdraw(&b);
			break;
		}
		if (now >= deadline) {
			done = withdraw(&b);
			break;
		}
		uint64_t until = deadline;
		if (test_dl && test_dl < until)
			until = test_dl;
		if (until > now + RECHECK_NS)
			until = now + RECHECK_NS;
		uint64_t ms = (until - now + 999999) / 1000000;
		struct pollfd p = { .fd = b.ino_fd, .events = POLLIN };
		if (poll(&p, 1, (int)ms) > 0) {
			char buf[4096];
			while (read(b.ino_fd, buf, sizeof(buf)) > 0)
				;
		}
	}
	close_barrier(&b);
	if (test_timed_out)
		return tclock_timed_out(L, lua_pushfstring(L, "provium:barrier(\"%s\")", name));
	lua_pushboolean(L, done);
	return 1;
}

void lbarrier_install(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	/* raw: the provium table's __newindex only takes settings */
	lua_pushliteral(L, "barrier");
	lua_pushcfunction(L, l_barrier);
	lua_rawset(L, idx);
}

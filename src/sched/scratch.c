/* scratch.c - scratch directories and the sweep of dead runs' leftovers
 * (contract in scratch.h). */
#include "scratch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys.h"

#define OWNER_FILE ".owner"
#define OWNER_MAGIC "provium-scratch 1\n"

struct owner {
	long pid;
	unsigned long long start;
	char boot[64];
	unsigned long long ns_dev, ns_ino;
};

static ssize_t read_small(int dirfd, const char *path, int flags, char *buf, size_t len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | flags);
	ssize_t n;
	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

/* Field 22 (starttime) of /proc/PID/stat; -ENOENT when there is no such
 * process. The command name (field 2) may hold spaces and parentheses, so
 * fields are counted from the last ')'. */
static int start_time(long pid, unsigned long long *ret)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((n = read_small(AT_FDCWD, path, 0, buf, sizeof(buf))) < 0)
		return (int)n;
	if (!(p = strrchr(buf, ')')))
		return -EINVAL;
	p++;
	/* after ')': field 3 (state) ... field 22 is the 20th */
	for (int field = 3; field < 22; field++) {
		p += strspn(p, " ");
		p += strcspn(p, " ");
		if (!*p)
			return -EINVAL;
	}
	return sscanf(p, " %llu", ret) == 1 ? 0 : -EINVAL;
}

static int boot_id(char *buf, size_t len)
{
	ssize_t n = read_small(AT_FDCWD, "/proc/sys/kernel/random/boot_id", 0, buf, len);
	if (n <= 0)
		return n < 0 ? (int)n : -EINVAL;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int self_owner(struct owner *o)
{
	struct stat st;
	int rc;
	memset(o, 0, sizeof(*o));
	o->pid = (long)getpid();
	if ((rc = start_time(o->pid, &o->start)) < 0 || (rc = boot_id(o->boot, sizeof(o->boot))) < 0)
		return rc;
	if (stat("/proc/self/ns/pid", &st) < 0)
		return -errno;
	o->ns_dev = (unsigned long long)st.st_dev;
	o->ns_ino = (unsigned long long)st.st_ino;
	return 0;
}

static int parse_owner(const char *s, struct owner *o)
{
	int used = 0;
	memset(o, 0, sizeof(*o));
	if (strncmp(s, OWNER_MAGIC, strlen(OWNER_MAGIC)) != 0)
		return -EINVAL;
	s += strlen(OWNER_MAGIC);
	if (sscanf(s, "pid=%ld\nstart=%llu\nboot=%63[0-9a-f-]\npidns=%llu:%llu\n%n", &o->pid, &o->start, o->boot,
		   &o->ns_dev, &o->ns_ino, &used) != 5 ||
	    used == 0 || s[used - 1] != '\n' || s[used] != 0 || o->pid <= 0)
		return -EINVAL;
	return 0;
}

void pv_scratch_remove(const char *dir)
{
	sys_rm_tree(dir, NULL, 0); /* what cannot be removed stays; the next sweep tries again */
}

int pv_scratch_create(const char *parent, char *dir, size_t len, struct pv_err *err)
{
	struct owner me;
	char rec[256];
	int fd, rc, n;

	if ((size_t)snprintf(dir, len, "%s/" PV_SCRATCH_PREFIX "XXXXXX", parent) >= len)
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "scratch directory path under %s is too long", parent);
	if ((rc = self_owner(&me)) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot tell this process's identity from /proc: %s", strerror(-rc));
	if (!mkdtemp(dir))
		return pv_err_set(err, -errno, SIZE_MAX, "cannot create a scratch directory in %s: %s", parent,
				  strerror(errno));
	n = snprintf(rec, sizeof(rec), OWNER_MAGIC "pid=%ld\nstart=%llu\nboot=%s\npidns=%llu:%llu\n", me.pid, me.start,
		     me.boot, me.ns_dev, me.ns_ino);
	{
		char p[4200];
		snprintf(p, sizeof(p), "%s/" OWNER_FILE, dir);
		fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	/* one write: a sweeper reads all of it or finds it malformed, and keeps the dir */
	if (fd < 0 || write(fd, rec, (size_t)n) != n) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		pv_scratch_remove(dir);
		return pv_err_set(err, rc ? rc : -EIO, SIZE_MAX, "cannot record the owner of %s: %s", dir,
				  strerror(rc ? -rc : EIO));
	}
	close(fd);
	return 0;
}

/* Whether the run that made dir (a directory fd) is provably gone. */
static bool owner_dead(int dfd, const struct owner *me)
{
	char buf[512];
	struct owner o;
	unsigned long long start;
	int rc;

	if (read_small(dfd, OWNER_FILE, O_NOFOLLOW, buf, sizeof(buf)) <= 0 || parse_owner(buf, &o) < 0)
		return false;
	if (strcmp(o.boot, me->boot) != 0)
		return true; /* every process of another boot is gone */
	if (o.ns_dev != me->ns_dev || o.ns_ino != me->ns_ino)
		return false; /* its pids are not ours to look up */
	rc = start_time(o.pid, &start);
	if (rc == -ENOENT)
		return true;
	return rc == 0 && start != o.start; /* a different process has its pid now */
}

size_t pv_scratch_sweep(const char *parent, const char *keep)
{
	struct owner me;
	struct dirent *e;
	size_t removed = 0;
	DIR *d;

	if (self_owner(&me) < 0 || !(d = opendir(parent)))
		return 0;
	while ((e = readdir(d))) {
		char path[4200];
		struct stat st;
		int dfd;
		bool dead;

		if (strncmp(e->d_name, PV_SCRATCH_PREFIX, strlen(PV_SCRATCH_PREFIX)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
		if (keep && strcmp(path, keep) == 0)
			continue;
		dfd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			continue; /* not a directory, a symlink, or gone */
		dead = fstat(dfd, &st) == 0 && st.st_uid == geteuid() && owner_dead(dfd, &me);
		close(dfd);
		if (dead) {
			pv_scratch_remove(path);
			removed++;
		}
	}
	closedir(d);
	return removed;
}

#include "sys.h"

#include "frame.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t sys_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int sys_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return -EFBIG;
		}
	}
	buf[len] = 0;
	*ret = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

int sys_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
	if (fd < 0)
		return -errno;
	rc = sys_read_fd(fd, max, ret, ret_len);
	close(fd);
	return rc;
}

static __thread int rm_errno;
static __thread char *rm_where;
static __thread size_t rm_wherelen;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT && !rm_errno) {
		rm_errno = errno;
		if (rm_where)
			snprintf(rm_where, rm_wherelen, "%s", path);
	}
	return 0; /* keep going: remove as much as possible */
}

int sys_rm_tree(const char *path, char *where, size_t wherelen)
{
	rm_errno = 0;
	rm_where = wherelen ? where : NULL;
	rm_wherelen = wherelen;
	if (rm_where)
		rm_where[0] = 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT && !rm_errno) {
		rm_errno = errno;
		if (rm_where)
			snprintf(rm_where, rm_wherelen, "%s", path);
	}
	rm_where = NULL;
	return -rm_errno;
}

int sys_mkdir_p(const char *path, unsigned mode, char *where, size_t wherelen)
{
	char buf[PATH_MAX];
	struct stat st;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *s = buf + 1;; s++) {
		char c = *s;
		if (c != '/' && c != 0)
			continue;
		*s = 0;
		int e = mkdir(buf, (mode_t)mode) < 0 ? errno : 0;
		if (e && (e != EEXIST || stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))) {
			if (where)
				snprintf(where, wherelen, "%s", buf);
			return -(e == EEXIST ? ENOTDIR : e);
		}
		*s = c;
		if (!c)
			return 0;
	}
}

/* n bytes at off from ifd to ofd (same offset): copy_file_range, else pread/pwrite. */
static int copy_range(int ifd, int ofd, off_t off, uint64_t n)
{
	static char buf[1 << 20];
	off_t io = off, oo = off;
	bool plain = false;
	while (n) {
		ssize_t r;
		if (!plain) {
			r = copy_file_range(ifd, &io, ofd, &oo, n > (1u << 30) ? (1u << 30) : (size_t)n, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
				plain = true;
				continue;
			}
			if (r < 0)
				return -errno;
			if (r == 0)
				return -EIO; /* the file shrank under us */
			n -= (uint64_t)r;
			continue;
		}
		r = pread(ifd, buf, n > sizeof(buf) ? sizeof(buf) : (size_t)n, io);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = pwrite(ofd, buf + done, (size_t)(r - done), oo + done);
			if (w < 0 && errno != EINTR)
				return -errno;
			if (w > 0)
				done += w;
		}
		io += r;
		oo += r;
		n -= (uint64_t)r;
	}
	return 0;
}

int sys_copy_sparse(const char *src, const char *dst, uint64_t *allocated)
{
	struct stat st;
	uint64_t copied = 0;
	int rc = 0;
	int ifd = open(src, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return -errno;
	int ofd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (ofd < 0 || fstat(ifd, &st) < 0 || ftruncate(ofd, st.st_size) < 0) {
		rc = -errno;
		goto out;
	}
	for (off_t pos = 0; pos < st.st_size;) {
		off_t data = lseek(ifd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno != ENXIO) /* ENXIO: only a hole is left */
				rc = -errno;
			break;
		}
		off_t hole = lseek(ifd, data, SEEK_HOLE);
		if (hole < 0) {
			rc = -errno;
			break;
		}
		if ((rc = copy_range(ifd, ofd, data, (uint64_t)(hole - data))) < 0)
			break;
		copied += (uint64_t)(hole - data);
		pos = hole;
	}
out:
	if (ofd >= 0 && close(ofd) < 0 && rc == 0)
		rc = -errno;
	close(ifd);
	if (rc < 0)
		unlink(dst);
	else if (allocated)
		*allocated = copied;
	return rc;
}

pid_t sys_spawn(char *const argv[], const char *log, int keep_fd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid < 0 ? -errno : pid;
	int null = open("/dev/null", O_RDWR), lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (null >= 0)
		dup2(null, 0), dup2(null, 1);
	if (lfd >= 0)
		dup2(lfd, 2);
	if (keep_fd >= 0)
		fcntl(keep_fd, F_SETFD, 0);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	execvp(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

void sys_end_child(pid_t pid, int sig, uint64_t timeout_ns)
{
	int st;
	if (pid <= 0)
		return;
	if (sig)
		kill(pid, sig);
	uint64_t deadline = sys_mono_ns() + timeout_ns;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (sys_mono_ns() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return;
		}
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
	}
}

void sys_file_tail(const char *path, char *out, size_t len)
{
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	ssize_t n = pread(fd, out, len - 1, end > (off_t)len - 1 ? end - (off_t)len + 1 : 0);
	close(fd);
	out[n > 0 ? n : 0] = 0;
	for (ssize_t i = n - 1; i >= 0 && (out[i] == '\n' || out[i] == ' '); i--)
		out[i] = 0;
}

int sys_copy_fd(int ifd, int ofd)
{
	char *buf;
	ssize_t r;
	int rc = 0;

	for (;;) {
		r = copy_file_range(ifd, NULL, ofd, NULL, (size_t)1 << 30, 0);
		if (r > 0)
			continue;
		if (r == 0)
			break; /* EOF, or a file system that copies nothing: read/write checks */
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP || errno == EBADF ||
		    errno == EPERM || errno == ETXTBSY)
			break;
		return -errno;
	}
	if (!(buf = malloc(1 << 20)))
		return -ENOMEM;
	for (;;) {
		r = read(ifd, buf, 1 << 20);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		if ((rc = pv_write_all(ofd, buf, (size_t)r)) < 0)
			break;
	}
	free(buf);
	return rc;
}

int sys_copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out, rc;
	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	rc = sys_copy_fd(in, out);
	if (close(out) < 0 && rc == 0)
		rc = -errno;
	close(in);
	return rc;
}

void sys_user_dir(char *buf, size_t len, const char *override_env, const char *xdg_env, const char *home_rel,
		  const char *sub)
{
	const char *e = override_env ? getenv(override_env) : NULL, *x = getenv(xdg_env), *h = getenv("HOME");
	if (e && *e) {
		snprintf(buf, len, "%s", e);
		return;
	}
	if (x && x[0] == '/') {
		snprintf(buf, len, "%s/%s", x, sub);
		return;
	}
	if (!h || !*h)
		h = getuid() == 0 ? "/root" : "/tmp"; /* no password lookup: the agent links this statically */
	snprintf(buf, len, "%s/%s/%s", h, home_rel, sub);
}

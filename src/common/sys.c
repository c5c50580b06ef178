#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
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

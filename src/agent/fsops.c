/* fsops.c - the file ops. They run synchronously: local file systems answer
 * quickly, and FIFOs and devices are opened O_NONBLOCK so that one without a
 * peer fails (ENXIO, EAGAIN) instead of stalling the event loop. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

#define READ_CHUNK (256u * 1024u)

/* The required `path`, or NULL after replying with an error. */
static char *req_path(struct ag_req *rq, enum ag_key k)
{
	char *path;
	if (ag_req_str_req(rq, k, &path) < 0) {
		ag_reply_bad(rq);
		return NULL;
	}
	return path;
}

static int req_mode(struct ag_req *rq, int64_t def, mode_t *ret)
{
	int64_t m;
	if (ag_req_i64(rq, AG_K_MODE, def, &m) < 0) {
		ag_reply_bad(rq);
		return -EINVAL;
	}
	if (m < 0 || m > 07777) {
		ag_reply_err(rq, 0, "%s: 'mode' %lld is not a permission mode (0 to 07777)", rq->op, (long long)m);
		return -EINVAL;
	}
	*ret = (mode_t)m;
	return 0;
}

void fsop_read_file(struct ag_req *rq)
{
	struct ag_resp r;
	struct stat st;
	msgpack_packer *pk;
	uint8_t *buf = NULL;
	size_t len = 0, cap;
	char *path;
	int fd;

	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ag_reply_err(rq, errno, "read_file %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		ag_reply_err(rq, errno, "read_file %s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ag_reply_err(rq, EISDIR, "read_file %s: %s", path, strerror(EISDIR));
		goto out;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > PV_WIRE_READ_CAP)
		goto too_big;
	/* A regular file gets its size plus one byte (to see EOF in one read);
	 * /proc files say size 0 and FIFOs have none, so those grow as they go.
	 * Never more than the cap plus the one byte that shows it was exceeded. */
	cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : READ_CHUNK;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			size_t ncap = cap * 2 > (size_t)PV_WIRE_READ_CAP + 1 ? (size_t)PV_WIRE_READ_CAP + 1 : cap * 2;
			uint8_t *nb;
			if (ncap == cap)
				goto too_big;
			nb = realloc(buf, ncap);
			if (!nb)
				goto oom;
			buf = nb;
			cap = ncap;
		} else if (!buf && !(buf = malloc(cap))) {
			goto oom;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN)
				ag_reply_err(rq, EAGAIN, "read_file %s: no data available (a FIFO or device would block)", path);
			else
				ag_reply_err(rq, errno, "read_file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > PV_WIRE_READ_CAP)
			goto too_big;
	}
	pk = ag_resp_begin_sized(&r, rq, 1, len);
	ag_pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, buf, len);
	free(buf);
	buf = NULL;
	ag_resp_end(&r);
	goto out;
oom:
	ag_reply_err(rq, ENOMEM, "read_file %s: out of memory", path);
	goto out;
too_big:
	ag_reply_err(rq, 0, "read_file %s: the file exceeds the %u MiB read cap", path, PV_WIRE_READ_CAP >> 20);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
}

void fsop_write_file(struct ag_req *rq)
{
	const uint8_t *data;
	uint32_t len;
	bool present, append = false, created = false;
	mode_t mode;
	char *path;
	int fd = -1, flags;

	if (ag_req_bin(rq, AG_K_DATA, &data, &len, &present) < 0 || ag_req_bool(rq, AG_K_APPEND, false, &append) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (req_mode(rq, 0644, &mode) < 0)
		return;
	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	if (!present) {
		ag_reply_err(rq, 0, "write_file %s: missing 'data'", path);
		goto out;
	}
	flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (append ? O_APPEND : O_TRUNC);
	/* Create exclusively first so that `mode` is applied exactly (fchmod,
	 * beating the umask) only to a file this call created. A dangling symlink
	 * fails both the exclusive and the plain open; the last try creates its
	 * target like any open(O_CREAT) would. */
	fd = open(path, flags | O_CREAT | O_EXCL, mode);
	if (fd >= 0)
		created = true;
	else if (errno == EEXIST && (fd = open(path, flags)) < 0 && errno == ENOENT)
		fd = open(path, flags | O_CREAT, mode);
	if (fd < 0) {
		ag_reply_err(rq, errno, "write_file %s: %s", path, strerror(errno));
		goto out;
	}
	if (created && fchmod(fd, mode) < 0) {
		ag_reply_err(rq, errno, "write_file %s: chmod: %s", path, strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN)
				ag_reply_err(rq, EAGAIN, "write_file %s: a FIFO or device would block", path);
			else
				ag_reply_err(rq, errno, "write_file %s: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	{
		int rc = close(fd);
		fd = -1;
		/* close reports deferred write errors on some file systems */
		if (rc < 0 && errno != EINTR) {
			ag_reply_err(rq, errno, "write_file %s: %s", path, strerror(errno));
			goto out;
		}
	}
	ag_reply_ok(rq);
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

void fsop_stat(struct ag_req *rq)
{
	struct ag_resp r;
	struct stat st;
	msgpack_packer *pk;
	const char *type;
	char *path;

	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	if (lstat(path, &st) < 0) {
		ag_reply_err(rq, errno, "stat %s: %s", path, strerror(errno));
		free(path);
		return;
	}
	type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "symlink" : "other";
	pk = ag_resp_begin(&r, rq, 4);
	ag_pack_key(pk, "type");
	ag_pack_cstr(pk, type);
	ag_pack_key(pk, "size");
	msgpack_pack_uint64(pk, (uint64_t)st.st_size);
	ag_pack_key(pk, "mode");
	msgpack_pack_int(pk, (int)(st.st_mode & 07777));
	ag_pack_key(pk, "mtime_ns");
	msgpack_pack_int64(pk, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	ag_resp_end(&r);
	free(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void fsop_listdir(struct ag_req *rq)
{
	char **names = NULL, *path;
	size_t n = 0, cap = 0;
	struct ag_resp r;
	msgpack_packer *pk;
	struct dirent *e;
	DIR *d = NULL;
	int fd;

	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		ag_reply_err(rq, errno, "listdir %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	for (;;) {
		errno = 0;
		if (!(e = readdir(d))) {
			if (errno) {
				ag_reply_err(rq, errno, "listdir %s: %s", path, strerror(errno));
				goto out;
			}
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = reallocarray(names, ncap, sizeof(*names));
			if (!nn)
				goto oom;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto oom;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "entries");
	msgpack_pack_array(pk, n);
	for (size_t i = 0; i < n; i++)
		ag_pack_cstr(pk, names[i]);
	ag_resp_end(&r);
	goto out;
oom:
	ag_reply_err(rq, ENOMEM, "listdir %s: out of memory", path);
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
}

/* mkdir + chmod (mkdir's mode is reduced by the umask; the op's is exact). */
static int make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0)
		return -errno;
	if (chmod(path, mode) < 0)
		return -errno;
	return 0;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void fsop_mkdir(struct ag_req *rq)
{
	bool parents = false;
	mode_t mode;
	char *path;
	int rc = 0;

	if (ag_req_bool(rq, AG_K_PARENTS, false, &parents) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (req_mode(rq, 0755, &mode) < 0)
		return;
	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	if (!*path) {
		rc = -ENOENT;
	} else if (!parents) {
		rc = make_dir(path, mode);
	} else {
		size_t len = strlen(path);
		while (len > 1 && path[len - 1] == '/')
			path[--len] = 0;
		/* each ancestor in turn, like mkdir -p: existing directories are fine */
		for (char *s = path + 1; rc == 0; s++) {
			bool last = *s == 0;
			if (*s != '/' && !last)
				continue;
			*s = 0;
			/* intermediate directories get the usual 0755, the final one `mode` */
			if (mkdir(path, last ? mode : 0755) == 0) {
				if (last && chmod(path, mode) < 0)
					rc = -errno;
			} else if (errno != EEXIST) {
				rc = -errno;
			} else if (!is_dir(path)) {
				/* like mkdir -p: a file in the way of a parent is ENOTDIR */
				rc = last ? -EEXIST : -ENOTDIR;
			}
			if (!last)
				*s = '/';
			else
				break;
		}
	}
	if (rc < 0)
		ag_reply_err(rq, -rc, "mkdir %s: %s", path, strerror(-rc));
	else
		ag_reply_ok(rq);
	free(path);
}

void fsop_unlink(struct ag_req *rq)
{
	char *path;
	int rc = 0;

	if (!(path = req_path(rq, AG_K_PATH)))
		return;
	if (unlink(path) < 0) {
		rc = -errno;
		/* Linux says EISDIR for a directory (POSIX allows EPERM) */
		if (rc == -EISDIR || rc == -EPERM) {
			struct stat st;
			if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
				rc = rmdir(path) < 0 ? -errno : 0;
		}
	}
	if (rc < 0)
		ag_reply_err(rq, -rc, "unlink %s: %s", path, strerror(-rc));
	else
		ag_reply_ok(rq);
	free(path);
}

void fsop_rename(struct ag_req *rq)
{
	char *from = NULL, *to = NULL;

	if (ag_req_str_req(rq, AG_K_FROM, &from) < 0 || ag_req_str_req(rq, AG_K_TO, &to) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	if (rename(from, to) < 0)
		ag_reply_err(rq, errno, "rename %s -> %s: %s", from, to, strerror(errno));
	else
		ag_reply_ok(rq);
out:
	free(from);
	free(to);
}

/* fcache.c - the on-disk fixture cache store (see fcache.h).
 *
 * Crash safety: an entry is written under <key>.tmp.<pid>/, fsynced, and
 * renamed into place, so <dir>/<key>/ is either complete or absent; removal
 * renames the entry aside (to <key>.tmp.<pid>.rm) before deleting it. Debris
 * of a crashed process is a tmp dir whose pid is gone, which fc_evict removes.
 *
 * Reading manifest.json uses O_NOATIME (when permitted) so that listing or
 * looking up entries does not count as a use under relatime.
 */
#include "fcache.h"
#include "fc_internal.h"
#include "sys.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>


/* ---- small helpers ---- */

bool fc_key_valid(const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; i < FC_KEY_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[FC_KEY_LEN] == 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_path(const char *path, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- recursive removal ---- */

/* Sum of st_size of the regular files directly inside path. */
static uint64_t dir_bytes(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	uint64_t sum = 0;
	struct stat st;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

/* ---- the cache directory ---- */

/* Folds repeated slashes, "." components and a trailing slash of the
 * absolute path p in place. ".." is kept: folding it lexically would be
 * wrong across symlinks. */
static void fold_path(char *p)
{
	char *r = p, *w = p;

	while (*r) {
		if (r[0] == '/' && (r[1] == '/' || r[1] == 0) && w > p) {
			r++;
			continue;
		}
		if (r[0] == '/' && r[1] == '.' && (r[2] == '/' || r[2] == 0)) {
			r += 2;
			continue;
		}
		*w++ = *r++;
	}
	if (w == p)
		*w++ = '/';
	*w = 0;
	if (w - p > 1 && w[-1] == '/')
		w[-1] = 0;
}

static int mkdir_p(char *path, const char *src, struct pv_err *err)
{
	char *s, prefix[PATH_MAX];
	struct stat st;

	for (s = path + 1;; s++) {
		char c = *s;
		if (c != '/' && c != 0)
			continue;
		*s = 0;
		int e = mkdir(path, 0700) < 0 ? errno : 0;
		if (e && e != EEXIST && (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))) {
			snprintf(prefix, sizeof(prefix), "%s", path);
			*s = c;
			return pv_err_set(err, -e, SIZE_MAX,
					  "fixture cache directory %s (from %s): cannot create %s: %s; pass --cache-dir "
					  "or set PROVIUM_CACHE_DIR to a writable directory",
					  path, src, prefix, strerror(e));
		}
		*s = c;
		if (!c)
			return 0;
	}
}

int fc_resolve_dir(const char *flag, const char *config_value, char *out, size_t len, struct pv_err *err)
{
	const char *src, *val, *suffix = "", *e;
	char raw[PATH_MAX], cwd[PATH_MAX], pwbuf[4096];
	struct passwd pw, *pwp = NULL;
	struct stat st;
	int r;

	if (flag) {
		src = "--cache-dir";
		val = flag;
	} else if ((e = getenv("PROVIUM_CACHE_DIR")) && *e) {
		src = "PROVIUM_CACHE_DIR";
		val = e;
	} else if (config_value) {
		src = "cache_dir in provium.lua";
		val = config_value;
	} else if ((e = getenv("XDG_CACHE_HOME")) && e[0] == '/') {
		src = "XDG_CACHE_HOME";
		val = e;
		suffix = "/provium/fixtures";
	} else {
		src = "HOME";
		val = getenv("HOME");
		if (!val || val[0] != '/') {
			if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 || !pwp || !pwp->pw_dir ||
			    pwp->pw_dir[0] != '/')
				return pv_err_set(err, -ENOENT, SIZE_MAX,
						  "cannot find a fixture cache directory: HOME is not set; pass "
						  "--cache-dir or set PROVIUM_CACHE_DIR");
			val = pwp->pw_dir;
			src = "the home directory in the user database";
		}
		suffix = "/.cache/provium/fixtures";
	}
	if (!*val)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "fixture cache directory (from %s) is empty; give a path",
				  src);

	if (val[0] == '/') {
		r = snprintf(raw, sizeof(raw), "%s%s", val, suffix);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return pv_err_set(err, -errno, SIZE_MAX,
					  "fixture cache directory %s (from %s) is relative and the current "
					  "directory is unknown: %s; give an absolute path",
					  val, src, strerror(errno));
		r = snprintf(raw, sizeof(raw), "%s/%s%s", cwd, val, suffix);
	}
	if (r < 0 || (size_t)r >= sizeof(raw))
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "fixture cache directory %s%s (from %s): path too long",
				  val, suffix, src);
	fold_path(raw);
	if (strlen(raw) + 1 > len)
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "fixture cache directory %s (from %s): path too long",
				  raw, src);

	if ((r = mkdir_p(raw, src, err)) < 0)
		return r;
	if (stat(raw, &st) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "fixture cache directory %s (from %s): %s", raw, src,
				  strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return pv_err_set(err, -ENOTDIR, SIZE_MAX,
				  "fixture cache directory %s (from %s) is not a directory; pass --cache-dir or set "
				  "PROVIUM_CACHE_DIR to a directory",
				  raw, src);
	if (access(raw, W_OK | X_OK) < 0)
		return pv_err_set(err, -errno, SIZE_MAX,
				  "fixture cache directory %s (from %s) is not writable: %s; fix its permissions, or "
				  "pass --cache-dir or set PROVIUM_CACHE_DIR to a writable directory",
				  raw, src, strerror(errno));
	memcpy(out, raw, strlen(raw) + 1);
	return 0;
}

int fc_lookup(const char *dir, const char *key, struct fc_manifest *m, struct pv_err *err)
{
	char path[PATH_MAX], *buf = NULL;
	struct fc_why y = { "" };
	struct stat st;
	size_t len = 0, i;
	int dfd, rc;

	memset(m, 0, sizeof(*m));
	if (!fc_key_valid(key))
		return bad_key(err, key);
	if (path_join(path, sizeof(path), dir, key, NULL) < 0)
		return too_long(err, dir);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ENOTDIR) {
			rc = -EBADMSG;
			fc_bad(&y, "not a directory");
			goto fail;
		}
		return pv_err_set(err, -errno, SIZE_MAX, "fixture cache entry %s: %s", path, strerror(errno));
	}
	if ((rc = fc_manifest_read(dfd, &buf, &len, &y)) < 0)
		goto fail;
	rc = fc_manifest_decode(buf, len, key, m, &y);
	free(buf);
	if (rc < 0)
		goto fail;
	for (i = 0; i < m->nvms; i++) {
		const struct fc_vm *vm = &m->vms[i];
		if (fstatat(dfd, vm->file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -errno;
			if (errno == ENOENT) {
				rc = -EBADMSG;
				fc_bad(&y, "%s: missing", vm->file);
			} else {
				fc_bad(&y, "%s: %s", vm->file, strerror(errno));
			}
			goto fail;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = fc_bad(&y, "%s: not a regular file", vm->file);
			goto fail;
		}
		if ((uint64_t)st.st_size != vm->bytes) {
			rc = fc_bad(&y, "%s: size %" PRIu64 ", manifest says %" PRIu64, vm->file, (uint64_t)st.st_size,
				 vm->bytes);
			goto fail;
		}
	}
	close(dfd);
	return 1;

fail:
	if (dfd >= 0)
		close(dfd);
	memset(m, 0, sizeof(*m));
	if (rc == -ENOMEM)
		return pv_err_set(err, rc, SIZE_MAX, "out of memory reading fixture cache entry %s", path);
	if (rc == -EBADMSG)
		return pv_err_set(err, rc, SIZE_MAX, "fixture cache entry %s is corrupt: %s", path, y.s);
	return pv_err_set(err, rc, SIZE_MAX, "fixture cache entry %s: %s", path, y.s);
}

void fc_touch(const char *dir, const char *key)
{
	char path[PATH_MAX];
	struct timespec ts[2] = { { .tv_nsec = UTIME_NOW }, { .tv_nsec = UTIME_OMIT } };

	if (fc_key_valid(key) && path_join(path, sizeof(path), dir, key, "/" MANIFEST) == 0)
		utimensat(AT_FDCWD, path, ts, 0);
}

int fc_remove(const char *dir, const char *key, struct pv_err *err)
{
	char path[PATH_MAX], aside[PATH_MAX], sfx[64];
	const char *victim = path;
	char where[PATH_MAX];
	int rc;

	if (!fc_key_valid(key))
		return bad_key(err, key);
	snprintf(sfx, sizeof(sfx), ".tmp.%ld.rm", (long)getpid());
	if (path_join(path, sizeof(path), dir, key, NULL) < 0 || path_join(aside, sizeof(aside), dir, key, sfx) < 0)
		return too_long(err, dir);
	if (rename(path, aside) == 0) {
		victim = aside;
	} else if (errno == ENOENT) {
		return 0;
	} else {
		/* e.g. a leftover aside dir of ours is in the way: delete in place */
	}
	if ((rc = sys_rm_tree(victim, where, sizeof(where))) < 0)
		return pv_err_set(err, rc, SIZE_MAX,
				  "cannot remove fixture cache entry %s: %s: %s; check the permissions of %s", path,
				  where, strerror(-rc), dir);
	return 0;
}

uint64_t fc_entry_bytes(const char *dir, const char *key)
{
	char path[PATH_MAX];

	if (!fc_key_valid(key) || path_join(path, sizeof(path), dir, key, NULL) < 0)
		return 0;
	return dir_bytes(path);
}

/* ---- writing ---- */

/* An I/O failure while writing into the cache; a full disk says what to do. */
static int write_fail(struct pv_err *err, int e, const char *dir, const char *what, const char *path)
{
	if (e == ENOSPC || e == EDQUOT)
		return pv_err_set(err, -e, SIZE_MAX,
				  "fixture cache %s: disk full while %s %s (%s); free some space there, set a smaller "
				  "cache_max_size in provium.lua, or use another --cache-dir",
				  dir, what, path, strerror(e));
	return pv_err_set(err, -e, SIZE_MAX, "fixture cache %s: %s %s: %s", dir, what, path, strerror(e));
}

int fc_begin(const char *dir, const char *key, struct fc_writer *w, struct pv_err *err)
{
	char sfx[32];

	w->open = false;
	if (!fc_key_valid(key))
		return bad_key(err, key);
	snprintf(sfx, sizeof(sfx), ".tmp.%ld", (long)getpid());
	if (strlen(dir) >= sizeof(w->dir) || path_join(w->tmp, sizeof(w->tmp), dir, key, sfx) < 0)
		return too_long(err, dir);
	memcpy(w->dir, dir, strlen(dir) + 1);
	memcpy(w->key, key, FC_KEY_LEN + 1);
	if (mkdir(w->tmp, 0700) < 0) {
		int e = errno;
		if (e == EEXIST) { /* a leftover of an earlier writer with our pid */
			sys_rm_tree(w->tmp, NULL, 0);
			e = mkdir(w->tmp, 0700) < 0 ? errno : 0;
		}
		if (e)
			return write_fail(err, e, dir, "creating", w->tmp);
	}
	w->open = true;
	return 0;
}

/* Copies what is left of ifd to ofd: copy_file_range, else read/write. */
static int copy_fd(int ifd, int ofd)
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
		if ((rc = write_all(ofd, buf, (size_t)r)) < 0)
			break;
	}
	free(buf);
	return rc;
}

int fc_add_file(struct fc_writer *w, const char *src, const char *name, uint64_t *bytes, struct pv_err *err)
{
	char dst[PATH_MAX];
	struct stat st;
	int ifd, ofd, rc, e;

	if (!w->open)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "fixture cache writer is not open");
	if (!file_name_valid(name, sizeof(((struct fc_vm *)0)->file)))
		return pv_err_set(err, -EINVAL, SIZE_MAX,
				  "invalid fixture snapshot file name \"%.200s\": must be a plain file name", name);
	if (path_join(dst, sizeof(dst), w->tmp, name, NULL) < 0)
		return too_long(err, w->dir);
	if (lstat(dst, &st) == 0)
		return pv_err_set(err, -EEXIST, SIZE_MAX, "fixture cache %s: %s was already added", w->dir, name);
	if (lstat(src, &st) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot add %s to the fixture cache: %s", src,
				  strerror(errno));
	if (!S_ISREG(st.st_mode))
		return pv_err_set(err, -EINVAL, SIZE_MAX, "cannot add %s to the fixture cache: not a regular file",
				  src);

	if (rename(src, dst) == 0) {
		chmod(dst, 0600);
		if (stat(dst, &st) < 0)
			return pv_err_set(err, -errno, SIZE_MAX, "fixture cache %s: %s: %s", w->dir, dst,
					  strerror(errno));
		if (bytes)
			*bytes = (uint64_t)st.st_size;
		return 0;
	}
	if (errno != EXDEV)
		return write_fail(err, errno, w->dir, "moving", src);

	if ((ifd = open(src, O_RDONLY | O_CLOEXEC)) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot add %s to the fixture cache: %s", src,
				  strerror(errno));
	if ((ofd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		e = errno;
		close(ifd);
		return write_fail(err, e, w->dir, "creating", dst);
	}
	rc = copy_fd(ifd, ofd);
	if (rc == 0 && fstat(ofd, &st) < 0)
		rc = -errno;
	close(ifd);
	if (close(ofd) < 0 && rc == 0) /* e.g. NFS reports a full disk here */
		rc = -errno;
	if (rc < 0) {
		unlink(dst);
		if (rc == -ENOMEM)
			return pv_err_set(err, rc, SIZE_MAX, "out of memory copying %s", src);
		return write_fail(err, -rc, w->dir, "copying into", dst);
	}
	unlink(src); /* best effort: the copy is in place */
	if (bytes)
		*bytes = (uint64_t)st.st_size;
	return 0;
}

/* Checks m is writable as the manifest of w: fields fit, names are plain,
 * every VM file was added with the recorded size. */
static int check_manifest(const struct fc_writer *w, const struct fc_manifest *m, struct pv_err *err)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i, j;

#define INVALID(...) pv_err_set(err, -EINVAL, SIZE_MAX, "fixture cache: invalid manifest: " __VA_ARGS__)
	if (m->key[0] && strncmp(m->key, w->key, sizeof(m->key)) != 0)
		return INVALID("key %.32s, the writer's is %s", m->key, w->key);
	if (m->nvms > FC_MAX_VMS)
		return INVALID("%zu VMs, at most %d", m->nvms, FC_MAX_VMS);
	if (strnlen(m->fixture, sizeof(m->fixture)) == sizeof(m->fixture))
		return INVALID("fixture name is not terminated");
	if (m->created_unix > INT64_MAX || m->build_ns > INT64_MAX)
		return INVALID("time out of range");
	for (i = 0; i < m->nvms; i++) {
		const struct fc_vm *vm = &m->vms[i];
		if (strnlen(vm->name, sizeof(vm->name)) == sizeof(vm->name) ||
		    strnlen(vm->profile, sizeof(vm->profile)) == sizeof(vm->profile))
			return INVALID("vms[%zu]: name or profile is not terminated", i);
		if (vm->memory > INT64_MAX || vm->bytes > INT64_MAX)
			return INVALID("vms[%zu]: value out of range", i);
		if (!file_name_valid(vm->file, sizeof(vm->file)))
			return INVALID("vms[%zu]: file \"%.159s\" is not a plain file name", i, vm->file);
		for (j = 0; j < i; j++)
			if (!strcmp(m->vms[j].file, vm->file))
				return INVALID("vms[%zu]: file \"%s\" is listed twice", i, vm->file);
		if (path_join(path, sizeof(path), w->tmp, vm->file, NULL) < 0)
			return too_long(err, w->dir);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			return INVALID("vms[%zu]: file %s was not added", i, vm->file);
		if ((uint64_t)st.st_size != vm->bytes)
			return INVALID("vms[%zu]: %s is %" PRIu64 " bytes, manifest says %" PRIu64, i, vm->file,
				       (uint64_t)st.st_size, vm->bytes);
	}
#undef INVALID
	return 0;
}

/* fsyncs every regular file in the tmp dir, then the dir itself. */
static int sync_tmp(const struct fc_writer *w, struct pv_err *err)
{
	DIR *d = opendir(w->tmp);
	struct dirent *de;
	struct stat st;
	int fd, e = 0;

	if (!d)
		return write_fail(err, errno, w->dir, "reading", w->tmp);
	while (!e && (de = readdir(d))) {
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
			e = errno;
		if (fd >= 0)
			close(fd);
		if (e) {
			closedir(d);
			return write_fail(err, e, w->dir, "syncing a file in", w->tmp);
		}
	}
	if (fsync(dirfd(d)) < 0) {
		e = errno;
		closedir(d);
		return write_fail(err, e, w->dir, "syncing", w->tmp);
	}
	closedir(d);
	return 0;
}

int fc_commit(struct fc_writer *w, const struct fc_manifest *m, struct pv_err *err)
{
	char path[PATH_MAX], final[PATH_MAX], *text = NULL;
	json_t *root;
	int fd, rc, e;

	if (!w->open)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "fixture cache writer is not open");
	if ((rc = check_manifest(w, m, err)) < 0)
		goto fail;
	if (path_join(path, sizeof(path), w->tmp, MANIFEST, NULL) < 0 ||
	    path_join(final, sizeof(final), w->dir, w->key, NULL) < 0) {
		rc = too_long(err, w->dir);
		goto fail;
	}
	root = fc_manifest_json(w->key, m);
	text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	if (!text) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory writing a fixture cache manifest");
		goto fail;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = write_fail(err, errno, w->dir, "creating", path);
		goto fail;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0)
		rc = write_all(fd, "\n", 1);
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		rc = write_fail(err, -rc, w->dir, "writing", path);
		goto fail;
	}
	free(text);
	text = NULL;
	if ((rc = sync_tmp(w, err)) < 0)
		goto fail;
	if (rename(w->tmp, final) < 0) {
		e = errno;
		if (e == ENOTEMPTY || e == EEXIST) { /* a peer committed first: theirs is as good */
			fc_abort(w);
			return 0;
		}
		rc = write_fail(err, e, w->dir, "renaming into place", w->tmp);
		goto fail;
	}
	w->open = false;
	if ((rc = fsync_path(w->dir, O_DIRECTORY)) < 0)
		return write_fail(err, -rc, w->dir, "syncing", w->dir);
	return 0;

fail:
	free(text);
	fc_abort(w);
	return rc;
}

void fc_abort(struct fc_writer *w)
{
	if (!w->open)
		return;
	sys_rm_tree(w->tmp, NULL, 0);
	w->open = false;
}

/* ---- maintenance ---- */

static int cmp_info(const void *a, const void *b)
{
	const struct fc_info *x = a, *y = b;

	if (x->last_used != y->last_used)
		return x->last_used > y->last_used ? -1 : 1;
	return strcmp(x->key, y->key);
}

int fc_list(const char *dir, struct fc_info **out, size_t *n, struct pv_err *err)
{
	struct fc_info *v = NULL, *nv;
	struct fc_manifest *m;
	size_t cap = 0, cnt = 0;
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st, ms;
	DIR *d;
	int rc;

	*out = NULL;
	*n = 0;
	if (!(m = malloc(sizeof(*m))))
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory listing the fixture cache");
	if (!(d = opendir(dir))) {
		free(m);
		return pv_err_set(err, -errno, SIZE_MAX, "cannot read fixture cache %s: %s", dir, strerror(errno));
	}
	while ((errno = 0, de = readdir(d))) {
		struct fc_info *fi;
		if (!fc_key_valid(de->d_name) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			if (!(nv = realloc(v, cap * sizeof(*v)))) {
				rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory listing the fixture cache");
				goto fail;
			}
			v = nv;
		}
		fi = &v[cnt];
		memset(fi, 0, sizeof(*fi));
		memcpy(fi->key, de->d_name, FC_KEY_LEN + 1);
		rc = fc_lookup(dir, fi->key, m, NULL);
		if (rc == 0)
			continue; /* removed meanwhile */
		fi->corrupt = rc < 0;
		snprintf(fi->fixture, sizeof(fi->fixture), "%s", rc > 0 ? m->fixture : "?");
		fi->created = rc > 0 ? (int64_t)m->created_unix : (int64_t)st.st_mtime;
		fi->last_used = (int64_t)st.st_mtime;
		if (path_join(path, sizeof(path), dir, fi->key, "/" MANIFEST) == 0 && lstat(path, &ms) == 0)
			fi->last_used = (int64_t)ms.st_atime;
		fi->bytes = fc_entry_bytes(dir, fi->key);
		cnt++;
	}
	if (errno) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot read fixture cache %s: %s", dir, strerror(errno));
		goto fail;
	}
	closedir(d);
	free(m);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_info);
	else {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = cnt;
	return 0;

fail:
	closedir(d);
	free(m);
	free(v);
	return rc;
}

/* <key>.tmp.<pid> or <key>.tmp.<pid>.<anything>: the pid, else 0. */
static pid_t tmp_pid(const char *name)
{
	char key[FC_KEY_LEN + 1], *end;
	long pid;

	if (strnlen(name, FC_KEY_LEN + 6) < FC_KEY_LEN + 6)
		return 0;
	memcpy(key, name, FC_KEY_LEN);
	key[FC_KEY_LEN] = 0;
	if (!fc_key_valid(key) || strncmp(name + FC_KEY_LEN, ".tmp.", 5) != 0 ||
	    !isdigit((unsigned char)name[FC_KEY_LEN + 5]))
		return 0;
	errno = 0;
	pid = strtol(name + FC_KEY_LEN + 5, &end, 10);
	if (errno || pid <= 0 || pid > INT_MAX || (*end && *end != '.'))
		return 0;
	return (pid_t)pid;
}

/* Removes tmp dirs of dead processes. */
static int sweep_tmp(const char *dir, uint64_t *freed, struct pv_err *err)
{
	char path[PATH_MAX];
	char where[PATH_MAX];
	struct dirent *de;
	struct stat st;
	int rc = 0, r;
	pid_t pid;
	DIR *d;

	if (!(d = opendir(dir)))
		return pv_err_set(err, -errno, SIZE_MAX, "cannot read fixture cache %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (!(pid = tmp_pid(de->d_name)) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue; /* alive (or not ours to signal: alive too) */
		if (path_join(path, sizeof(path), dir, de->d_name, NULL) < 0)
			continue;
		*freed += dir_bytes(path);
		if ((r = sys_rm_tree(path, where, sizeof(where))) < 0 && !rc)
			rc = pv_err_set(err, r, SIZE_MAX,
					"cannot remove leftover fixture cache directory %s: %s: %s; check the "
					"permissions of %s",
					path, where, strerror(-r), dir);
	}
	closedir(d);
	return rc;
}

int fc_evict(const char *dir, uint64_t cap, size_t *removed, uint64_t *freed, struct pv_err *err)
{
	struct pv_err e2, *ep = err ? &e2 : NULL;
	uint64_t total = 0, fr = 0;
	struct fc_info *v;
	char path[PATH_MAX];
	size_t n, i, rm = 0;
	struct fc_lock l;
	int rc, first = 0;

	if (removed)
		*removed = 0;
	if (freed)
		*freed = 0;
	first = sweep_tmp(dir, &fr, err);
	if ((rc = fc_list(dir, &v, &n, first ? ep : err)) < 0) {
		if (freed)
			*freed = fr;
		return first ? first : rc;
	}
	for (i = 0; i < n; i++)
		total += v[i].bytes;
	for (i = n; i-- > 0 && total > cap;) {
		rc = fc_lock_try(dir, v[i].key, "provium (evicting from the fixture cache)", &l, NULL, 0,
				 first ? ep : err);
		if (rc == 0)
			continue; /* in use */
		if (rc > 0) {
			rc = fc_remove(dir, v[i].key, first ? ep : err);
			if (rc == 0) {
				if (path_join(path, sizeof(path), dir, v[i].key, ".lock") == 0)
					unlink(path);
				total -= v[i].bytes;
				fr += v[i].bytes;
				rm++;
			}
			fc_unlock(&l);
		}
		if (rc < 0 && !first)
			first = rc;
	}
	free(v);
	if (removed)
		*removed = rm;
	if (freed)
		*freed = fr;
	return first;
}

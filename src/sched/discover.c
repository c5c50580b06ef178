/* discover.c - finding test files and reading their declarations statically.
 *
 * The walk reads one directory at a time (its subdirectories are visited
 * after it is closed), so a deep tree never holds more than one descriptor.
 * Ordering is done afterwards per root on the whole relative path: sorting
 * each directory's entries and recursing would not give byte order of the
 * path ("a/b" sorts after "a.b" as '/' > '.').
 *
 * Each file found is read by the static scan (scan.c).
 */
#include "discover.h"
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mpr.h"
#include "sys.h"
#include "units.h"

#define TEST_SUFFIX ".test.lua"
#define FIXTURE_SUFFIX ".fixture.lua"

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *pv_escape_name(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return out;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = 1;
		char esc[8];
		const char *put;
		size_t plen;

		/* the shortest prefix that is one valid sequence is the character */
		while (n <= 4 && i + n <= len && !pv_utf8_valid((const uint8_t *)s + i, n))
			n++;
		if (n > 4 || i + n > len || c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			put = esc;
			plen = 4;
			n = 1;
		} else if (c == '\\') {
			put = "\\\\";
			plen = 2;
		} else {
			put = s + i;
			plen = n;
		}
		if (o + plen >= outlen)
			break;
		memcpy(out + o, put, plen);
		o += plen;
		i += n;
	}
	out[o] = 0;
	return out;
}

/* ---- the walk ---- */

struct walk {
	struct pv_discovery *d;
	size_t cap_files, cap_fixtures;
	const char *root;
	const char *filter;
	struct pv_err *err;
};

/* a + "/" + b, without doubling a slash that a already ends with. */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	bool slash = la > 0 && a[la - 1] != '/';
	char *r = malloc(la + slash + lb + 1);

	if (!r)
		return NULL;
	memcpy(r, a, la);
	if (slash)
		r[la] = '/';
	memcpy(r + la + slash, b, lb + 1);
	return r;
}

static void file_release(struct pv_test_file *f)
{
	free(f->root);
	free(f->rel_path);
	free(f->abs_path);
	for (size_t i = 0; i < f->nonly; i++)
		free(f->only[i]);
	free(f->only);
	pv_test_file_release(f);
}

/* Events carry paths as text: a name that is not UTF-8 is refused here,
 * naming it, rather than crashing the runner that would emit it. */
static int check_utf8(struct walk *w, const char *what, const char *root, const char *rel)
{
	char shown[1024], shown_root[512];

	if (pv_utf8_valid((const uint8_t *)rel, strlen(rel)))
		return 0;
	pv_escape_name(rel, strlen(rel), shown, sizeof(shown));
	pv_escape_name(root, strlen(root), shown_root, sizeof(shown_root));
	return pv_err_set(w->err, -EILSEQ, SIZE_MAX,
			  "%s \"%s\" is not valid UTF-8 (under test root %s): event paths are UTF-8 text; "
			  "rename it",
			  what, shown, shown_root);
}

/* Adds a test: root dir is w->root, rel the path under it. */
static int add_test(struct walk *w, const char *root, const char *rel)
{
	struct pv_discovery *d = w->d;
	struct pv_test_file *f;

	int rc;

	if (w->filter && !strstr(rel, w->filter))
		return 0;
	if ((rc = check_utf8(w, "test file", root, rel)) < 0)
		return rc;
	if (pv_grow_array(&d->files, &w->cap_files, d->nfiles, sizeof(*d->files)) < 0)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	f = &d->files[d->nfiles];
	memset(f, 0, sizeof(*f));
	f->root = strdup(root);
	f->rel_path = strdup(rel);
	f->abs_path = join(root, rel);
	if (!f->root || !f->rel_path || !f->abs_path) {
		file_release(f);
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	d->nfiles++;
	return 0;
}

static int add_fixture(struct walk *w, const char *rel)
{
	struct pv_discovery *d = w->d;
	char *name;
	int rc;

	if ((rc = check_utf8(w, "fixture", w->root, rel)) < 0)
		return rc;
	if (pv_grow_array(&d->fixtures, &w->cap_fixtures, d->nfixtures, sizeof(char *)) < 0)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	name = strndup(rel, strlen(rel) - strlen(FIXTURE_SUFFIX));
	if (!name)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	d->fixtures[d->nfixtures++] = name;
	return 0;
}

/* Walks the directory root/rel (rel NULL: the root itself). */
static int walk_dir(struct walk *w, const char *rel)
{
	char *path = rel ? join(w->root, rel) : NULL;
	const char *shown = rel ? path : w->root;
	char **subdirs = NULL;
	size_t nsub = 0, cap_sub = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int fd, rc = 0;

	if (rel && !path)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	/* O_NOFOLLOW: a subdirectory replaced by a symlink since readdir
	 * saw it must still not be followed */
	fd = open(shown, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (rel ? O_NOFOLLOW : 0));
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		rc = pv_err_set(w->err, rc, SIZE_MAX, "cannot read %s \"%s\": %s",
				rel ? "directory" : "test root", shown, strerror(-rc));
		goto out;
	}
	for (;;) {
		const char *name;
		unsigned char type;
		char *child;
		struct stat st;

		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno) {
				rc = pv_err_set(w->err, -errno, SIZE_MAX, "cannot read %s \"%s\": %s",
						rel ? "directory" : "test root", shown, strerror(errno));
				goto out;
			}
			break;
		}
		name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone since readdir */
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG
				: S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
		}
		if (type == DT_DIR) {
			if (name[0] == '.')
				continue;
		} else if (ends_with(name, TEST_SUFFIX) || ends_with(name, FIXTURE_SUFFIX)) {
			/* a symlink to a file counts (the dedupe sees through
			 * it); one to a directory, or a dangling one, does not */
			if (type == DT_LNK && fstatat(dirfd(dir), name, &st, 0) == 0 && S_ISREG(st.st_mode))
				type = DT_REG;
			if (type != DT_REG)
				continue;
		} else {
			continue;
		}
		child = rel ? join(rel, name) : strdup(name);
		if (!child) {
			rc = pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
			goto out;
		}
		if (type == DT_DIR) {
			if (pv_grow_array(&subdirs, &cap_sub, nsub, sizeof(char *)) < 0) {
				free(child);
				rc = pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
				goto out;
			}
			subdirs[nsub++] = child;
			continue;
		}
		rc = ends_with(name, TEST_SUFFIX) ? add_test(w, w->root, child) : add_fixture(w, child);
		free(child);
		if (rc < 0)
			goto out;
	}
	closedir(dir);
	dir = NULL;
	for (size_t i = 0; i < nsub && rc == 0; i++)
		rc = walk_dir(w, subdirs[i]);
out:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < nsub; i++)
		free(subdirs[i]);
	free(subdirs);
	free(path);
	return rc;
}

/* A root that is one test file: its directory becomes the root. */
static int add_single(struct walk *w, const char *root)
{
	const char *slash = strrchr(root, '/');
	char *dir;
	int rc;

	if (!slash)
		return add_test(w, ".", root);
	/* "/x.test.lua" lives in "/", not in "" */
	dir = strndup(root, slash == root ? 1 : (size_t)(slash - root));
	if (!dir)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	rc = add_test(w, dir, slash + 1);
	free(dir);
	return rc;
}

static int cmp_rel(const void *a, const void *b)
{
	const struct pv_test_file *x = a, *y = b;
	return strcmp(x->rel_path, y->rel_path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct real {
	char *path;
	size_t index;
};

static int cmp_real(const void *a, const void *b)
{
	const struct real *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Keeps the first of files that are the same file (by realpath), in place. */
static int dedupe(struct pv_discovery *d, struct pv_err *err)
{
	struct real *r;
	bool *drop;
	size_t n = d->nfiles, o = 0;
	int rc = 0;

	if (n < 2)
		return 0;
	r = calloc(n, sizeof(*r));
	drop = calloc(n, sizeof(*drop));
	if (!r || !drop) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].index = i;
		r[i].path = realpath(d->files[i].abs_path, NULL);
		if (!r[i].path) {
			rc = pv_err_set(err, -errno, SIZE_MAX, "cannot resolve test file \"%s\": %s",
					d->files[i].abs_path, strerror(errno));
			goto out;
		}
	}
	qsort(r, n, sizeof(*r), cmp_real);
	for (size_t i = 1; i < n; i++)
		if (strcmp(r[i].path, r[i - 1].path) == 0)
			drop[r[i].index] = true; /* sorted by index within equals */
	for (size_t i = 0; i < n; i++) {
		if (drop[i])
			file_release(&d->files[i]);
		else
			d->files[o++] = d->files[i];
	}
	d->nfiles = o;
out:
	if (r)
		for (size_t i = 0; i < n; i++)
			free(r[i].path);
	free(r);
	free(drop);
	return rc;
}

/* Test files are Lua source scanned whole: far below this. */
#define TEST_FILE_MAX (64u * 1024u * 1024u)

static int read_file(const char *path, char **ret, size_t *ret_len, struct pv_err *err)
{
	int rc = sys_read_file(path, TEST_FILE_MAX, ret, ret_len);
	if (rc == -EFBIG)
		return pv_err_set(err, rc, SIZE_MAX, "test file \"%s\" is over %u MiB: not a test file?", path,
				  TEST_FILE_MAX >> 20);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot read test file \"%s\": %s", path, strerror(-rc));
	return 0;
}

int pv_discover(const char *const *roots, size_t nroots, const char *filter, struct pv_discovery *ret,
		struct pv_err *err)
{
	struct walk w = { .d = ret, .filter = filter, .err = err };
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < nroots && rc == 0; i++) {
		const char *root = roots[i];
		size_t first = ret->nfiles;
		struct stat st;

		w.root = root;
		if (stat(root, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				rc = pv_err_set(err, -ENOENT, SIZE_MAX,
						"test root \"%s\" does not exist; give a directory of tests or "
						"a *.test.lua file",
						root);
			else
				rc = pv_err_set(err, -errno, SIZE_MAX, "cannot read test root \"%s\": %s",
						root, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(&w, NULL);
		} else if (S_ISREG(st.st_mode) && ends_with(root, TEST_SUFFIX)) {
			rc = add_single(&w, root);
		} else {
			rc = pv_err_set(err, -EINVAL, SIZE_MAX,
					"test root \"%s\" is neither a directory nor a *.test.lua file", root);
		}
		/* files is still NULL for a root without tests, and qsort
		 * must not be given a NULL base even for zero items */
		if (rc == 0 && ret->nfiles - first > 1)
			qsort(ret->files + first, ret->nfiles - first, sizeof(*ret->files), cmp_rel);
	}
	if (rc == 0)
		rc = dedupe(ret, err);
	if (rc == 0 && ret->nfixtures) {
		/* the same fixture path under two roots is listed once */
		size_t o = 1;
		qsort(ret->fixtures, ret->nfixtures, sizeof(char *), cmp_str);
		for (size_t i = 1; i < ret->nfixtures; i++) {
			if (strcmp(ret->fixtures[i], ret->fixtures[o - 1]) == 0)
				free(ret->fixtures[i]);
			else
				ret->fixtures[o++] = ret->fixtures[i];
		}
		ret->nfixtures = o;
	}
	for (size_t i = 0; i < ret->nfiles && rc == 0; i++) {
		struct pv_test_file *f = &ret->files[i];
		char *src = NULL;
		size_t len = 0;

		if ((rc = read_file(f->abs_path, &src, &len, err)) < 0)
			break;
		rc = pv_scan_source(src, len, f, err);
		free(src);
		if (rc < 0)
			pv_err_prefix(err, "%s", f->abs_path);
	}
	if (rc < 0)
		pv_discovery_release(ret);
	return rc;
}

void pv_discovery_release(struct pv_discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nfiles; i++)
		file_release(&d->files[i]);
	free(d->files);
	for (size_t i = 0; i < d->nfixtures; i++)
		free(d->fixtures[i]);
	free(d->fixtures);
	memset(d, 0, sizeof(*d));
}

void pv_discovery_retain(struct pv_discovery *d, const bool *keep)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nfiles; i++) {
		if (!keep[i])
			file_release(&d->files[i]);
		else
			d->files[n++] = d->files[i];
	}
	d->nfiles = n;
}

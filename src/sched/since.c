/* since.c - the test files changed since a git ref or a file (since.h). */
#include "since.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "fixkey.h"
#include "scan.h"
#include "sys.h"

extern char **environ;

#define GIT_OUT_MAX (256u * 1024u * 1024u)
#define SRC_MAX (64u * 1024u * 1024u)
#define DEPS_MAX 4096 /* files looked at per test file: a guard, far above real suites */

/* A sorted set of strings. */
struct strset {
	char **v;
	size_t n, cap;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool set_has(const struct strset *s, const char *x)
{
	return s->n && bsearch(&x, s->v, s->n, sizeof(char *), cmp_str);
}

/* Appends (unsorted; set_sort before set_has); 0 or -ENOMEM. */
static int set_add(struct strset *s, const char *x, size_t len)
{
	char *c;
	if (pv_grow_array(&s->v, &s->cap, s->n, sizeof(char *)) < 0 || !(c = strndup(x, len)))
		return -ENOMEM;
	s->v[s->n++] = c;
	return 0;
}

static void set_sort(struct strset *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(char *), cmp_str);
}

static void set_release(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* git -C dir ARGS...: 0 with its stdout (malloc'd) when it exits 0; else
 * -EINVAL with the first line git wrote on stderr in why, or -errno when it
 * cannot be run at all. */
static int git(const char *dir, const char *const *args, char **out, size_t *outlen, char *why, size_t whylen)
{
	char *argv[16];
	int p[2] = { -1, -1 }, efd = -1, status, rc, n = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	pid_t pid;

	argv[n++] = "git";
	argv[n++] = "-C";
	argv[n++] = (char *)dir;
	for (; *args && n < 15; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	*why = 0;
	if (pipe2(p, O_CLOEXEC) < 0 || (efd = memfd_create("git-stderr", MFD_CLOEXEC)) < 0) {
		rc = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, efd, 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none); /* the run blocks its interrupt signals for the signalfd */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	rc = -posix_spawnp(&pid, "git", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	p[1] = -1;
	if (rc < 0) {
		snprintf(why, whylen, "cannot run git: %s", strerror(-rc));
		goto out;
	}
	rc = sys_read_fd(p[0], GIT_OUT_MAX, out, outlen);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		char *err = NULL;
		size_t elen = 0;
		free(*out);
		*out = NULL;
		rc = -EINVAL;
		if (lseek(efd, 0, SEEK_SET) == 0 && sys_read_fd(efd, 65536, &err, &elen) == 0) {
			size_t l = strcspn(err, "\n");
			snprintf(why, whylen, "%.*s", (int)l, err);
			free(err);
		}
		if (!*why)
			snprintf(why, whylen, "exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
out:
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (efd >= 0)
		close(efd);
	return rc;
}

/* The NUL-separated paths of out, relative to top, into s as absolute paths. */
static int add_paths(struct strset *s, const char *top, const char *out, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t l = strnlen(out + i, len - i);
		char *abs = NULL;
		if (l && (asprintf(&abs, "%s/%.*s", top, (int)l, out + i) < 0 || set_add(s, abs, strlen(abs)) < 0)) {
			free(abs);
			return -ENOMEM;
		}
		free(abs);
		i += l + 1;
	}
	return 0;
}

/* Every path changed since ref in the repository of dir into s, unless that
 * repository (top) is in tops already. */
static int git_changed(const char *ref, const char *dir, struct strset *tops, struct strset *s, struct pv_err *err)
{
	char why[512], rev[PATH_MAX + 16], real[PATH_MAX];
	char *out = NULL;
	size_t len = 0;
	int rc;

	rc = git(dir, (const char *const[]){ "rev-parse", "--show-toplevel", NULL }, &out, &len, why, sizeof(why));
	if (rc < 0 && rc != -EINVAL)
		return pv_err_set(err, rc, SIZE_MAX, "not a file, and git cannot tell what changed in %s (%s)", dir, why);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "not a file, and %s is not in a git repository (git: %s)", dir, why);
	out[strcspn(out, "\n")] = 0;
	if (!realpath(out, real))
		snprintf(real, sizeof(real), "%s", out);
	free(out);
	if (set_has(tops, real))
		return 0;
	if (set_add(tops, real, strlen(real)) < 0)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	set_sort(tops);
	snprintf(rev, sizeof(rev), "%s^{commit}", ref);
	if ((rc = git(real, (const char *const[]){ "rev-parse", "--verify", "--end-of-options", rev, NULL }, &out, &len,
		      why, sizeof(why))) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "not a file, nor a git ref in %s (git: %s)", real, why);
	free(out);
	if ((rc = git(real, (const char *const[]){ "diff", "--name-only", "-z", "--end-of-options", ref, "--", NULL }, &out,
		      &len, why, sizeof(why))) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "git diff in %s failed (git: %s)", real, why);
	rc = add_paths(s, real, out, len);
	free(out);
	if (rc == 0 && (rc = git(real, (const char *const[]){ "ls-files", "--others", "--exclude-standard", "-z", NULL },
				 &out, &len, why, sizeof(why))) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "git ls-files in %s failed (git: %s)", real, why);
	if (rc == 0) {
		rc = add_paths(s, real, out, len);
		free(out);
	}
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "out of memory");
	return 0;
}

struct changes {
	bool by_mtime;
	struct timespec mtime; /* by_mtime: the reference file's */
	struct strset paths;   /* else: real paths changed since the ref */
};

static bool changed(const struct changes *c, const char *path)
{
	char real[PATH_MAX];
	struct stat st;
	if (c->by_mtime)
		return stat(path, &st) == 0 &&
		       (st.st_mtim.tv_sec > c->mtime.tv_sec ||
			(st.st_mtim.tv_sec == c->mtime.tv_sec && st.st_mtim.tv_nsec > c->mtime.tv_nsec));
	return realpath(path, real) && set_has(&c->paths, real);
}

/* f or what it depends on (since.h) changed. */
static int file_changed(const struct changes *c, const char *const *roots, size_t nroots, const char *start,
			bool *ret)
{
	struct strset seen = { 0 };
	char **queue = NULL;
	size_t nq = 0, capq = 0, head = 0;
	int rc = 0;

	*ret = false;
	if (!(queue = malloc(sizeof(char *))) || !(queue[0] = strdup(start))) {
		free(queue);
		return -ENOMEM;
	}
	nq = capq = 1;
	/* breadth first over the Lua sources: the file, its helpers and fixtures */
	while (head < nq && !*ret && rc == 0 && head < DEPS_MAX) {
		char *path = queue[head++], *src = NULL, dir[PATH_MAX], found[PATH_MAX];
		struct pv_test_file f = { 0 };
		size_t len;
		const char *sl = strrchr(path, '/');

		if (changed(c, path)) {
			*ret = true;
			break;
		}
		if (sys_read_file(path, SRC_MAX, &src, &len) < 0)
			continue; /* gone or unreadable: nothing more to follow */
		rc = pv_scan_source(src, len, &f, NULL);
		free(src);
		if (rc < 0) {
			rc = 0; /* a claim the runner will refuse: its references still count */
			continue;
		}
		snprintf(dir, sizeof(dir), "%.*s", sl ? (int)(sl - path) : 1, sl ? path : ".");
		for (size_t i = 0; i < f.nfile_deps && !*ret; i++) {
			char p[2 * PATH_MAX];
			bool abs = f.file_deps[i][0] == '/';
			snprintf(p, sizeof(p), "%s%s%s", abs ? "" : dir, abs ? "" : "/", f.file_deps[i]);
			*ret = changed(c, p);
		}
		for (size_t i = 0; i < f.nrequires + f.nfixture_refs && !*ret && rc == 0; i++) {
			bool req = i < f.nrequires;
			const char *name = req ? f.requires[i] : f.fixture_refs[i - f.nrequires];
			char norm[1024];
			if (req ? fx_find_module(roots, nroots, name, found, sizeof(found)) < 0
				: fx_normalize(name, norm, sizeof(norm), NULL) < 0 ||
					  fx_find(roots, nroots, norm, found, sizeof(found), NULL) < 0)
				continue; /* a standard module, or a fixture the runner will not find */
			if (set_has(&seen, found))
				continue;
			if (set_add(&seen, found, strlen(found)) < 0 || pv_grow_array(&queue, &capq, nq, sizeof(char *)) < 0 ||
			    !(queue[nq] = strdup(found))) {
				rc = -ENOMEM;
				break;
			}
			nq++;
			set_sort(&seen);
		}
		pv_test_file_release(&f);
	}
	for (size_t i = 0; i < nq; i++)
		free(queue[i]);
	free(queue);
	set_release(&seen);
	return rc;
}

int since_changed(const char *ref, const char *const *roots, size_t nroots, const struct pv_discovery *d,
		  bool *keep, struct pv_err *err)
{
	struct changes c = { 0 };
	struct strset tops = { 0 }, dirs = { 0 };
	struct stat st;
	int rc = 0;

	if (!*ref)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "needs a git ref or a file");
	if (stat(ref, &st) == 0) {
		c.by_mtime = true;
		c.mtime = st.st_mtim;
	} else {
		/* each root's repository once (roots may live in different ones) */
		for (size_t i = 0; i < d->nfiles && rc == 0; i++) {
			if (set_has(&dirs, d->files[i].root))
				continue;
			if (set_add(&dirs, d->files[i].root, strlen(d->files[i].root)) < 0)
				rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
			set_sort(&dirs);
			if (rc == 0)
				rc = git_changed(ref, d->files[i].root, &tops, &c.paths, err);
		}
		set_sort(&c.paths);
	}
	for (size_t i = 0; i < d->nfiles && rc == 0; i++)
		if ((rc = file_changed(&c, roots, nroots, d->files[i].abs_path, &keep[i])) < 0)
			pv_err_set(err, rc, SIZE_MAX, "out of memory");
	set_release(&c.paths);
	set_release(&tops);
	set_release(&dirs);
	return rc;
}

/* pbuild.c - profiles that build themselves (pbuild.h, docs/config.md,
 * "Profiles that build themselves"). */
#include "pbuild.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys.h"

#define STAMP ".provium-build"

/* nftw has no user pointer: the walk's sum, one walk at a time */
static uint64_t walk_sum, walk_count;
static const char *walk_skip; /* build_out: the build's own output is no input */

static void add_entry(const char *path, const struct stat *st)
{
	/* no padding to hash: every field 64 bits */
	const int64_t k[4] = { st->st_mtim.tv_sec, st->st_mtim.tv_nsec, st->st_size, st->st_mode };
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		return;
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, path, strlen(path) + 1);
	XXH3_64bits_update(s, k, sizeof(k));
	/* a sum: the same whatever order readdir gives */
	walk_sum += XXH3_64bits_digest(s);
	walk_count++;
	XXH3_freeState(s);
}

static int walk_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (walk_skip && !strcmp(path, walk_skip))
		return type == FTW_D ? FTW_SKIP_SUBTREE : 0;
	if (type == FTW_D || type == FTW_F || type == FTW_SL)
		add_entry(path, st);
	return 0;
}

int pbuild_key(const struct pv_profile *p, char *hex, size_t len, struct pv_err *err)
{
	char out[4096];
	XXH3_state_t *s = XXH3_createState();
	if (!s)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	XXH3_64bits_reset(s);
	XXH3_64bits_update(s, p->build, strlen(p->build) + 1);
	XXH3_64bits_update(s, p->build_out, strlen(p->build_out) + 1);
	snprintf(out, sizeof(out), "%s", p->build_out);
	while (strlen(out) > 1 && out[strlen(out) - 1] == '/')
		out[strlen(out) - 1] = 0;
	for (size_t i = 0; i < p->nbuild_inputs; i++) {
		struct stat st;
		if (lstat(p->build_inputs[i], &st) < 0) {
			int e = errno;
			XXH3_freeState(s);
			return pv_err_set(err, -e, SIZE_MAX, "profiles.%s.build_inputs[%zu]: %s: %s", p->name, i + 1,
					  p->build_inputs[i], strerror(e));
		}
		walk_sum = walk_count = 0;
		walk_skip = out;
		if (nftw(p->build_inputs[i], walk_one, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0) {
			int e = errno;
			XXH3_freeState(s);
			return pv_err_set(err, -e, SIZE_MAX, "profiles.%s.build_inputs[%zu]: %s: %s", p->name, i + 1,
					  p->build_inputs[i], strerror(e));
		}
		XXH3_64bits_update(s, p->build_inputs[i], strlen(p->build_inputs[i]) + 1);
		XXH3_64bits_update(s, &walk_sum, sizeof(walk_sum));
		XXH3_64bits_update(s, &walk_count, sizeof(walk_count));
	}
	snprintf(hex, len, "%016" PRIx64, (uint64_t)XXH3_64bits_digest(s));
	XXH3_freeState(s);
	return 0;
}

/* The paths the build must have made: 0, or -ENOENT naming the first that
 * is not there. */
static int check_outputs(const struct pv_profile *p, struct pv_err *err)
{
	struct {
		const char *key, *path;
	} f[2 + PV_PROFILE_MAX_DISKS];
	size_t n = 0;
	char keys[PV_PROFILE_MAX_DISKS][40];
	f[n].key = "kernel", f[n++].path = p->kernel;
	f[n].key = "initrd", f[n++].path = p->initrd;
	for (size_t i = 0; i < p->ndisks && i < PV_PROFILE_MAX_DISKS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "disks[%zu].image", i + 1);
		f[n].key = keys[i], f[n++].path = p->disks[i].image;
	}
	for (size_t i = 0; i < n; i++) {
		if (f[i].path && access(f[i].path, R_OK) < 0) {
			int e = errno;
			return pv_err_set(err, -e, SIZE_MAX,
					  "profiles.%s.%s: %s: %s after its build; the build (%s) should make it",
					  p->name, f[i].key, f[i].path, strerror(e), p->build);
		}
	}
	return 0;
}

/* Runs the build in the foreground: its output is the user's to see, and a
 * ^C at the terminal reaches it (and us). */
static int run_build(const struct pv_profile *p, FILE *log, struct pv_err *err)
{
	pid_t pid;
	int status;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "profile %s: cannot start its build: %s", p->name,
				  strerror(errno));
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		dup2(fileno(log), STDOUT_FILENO); /* stdout may be a --json stream */
		if (fileno(log) != STDERR_FILENO)
			dup2(fileno(log), STDERR_FILENO);
		setenv("PROVIUM_OUT", p->build_out, 1);
		setenv("PROVIUM_PROFILE", p->name, 1);
		execl("/bin/sh", "sh", "-c", p->build, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return pv_err_set(err, -errno, SIZE_MAX, "profile %s: waiting for its build: %s", p->name,
					  strerror(errno));
	}
	if (WIFSIGNALED(status))
		return pv_err_set(err, -EINTR, SIZE_MAX, "profile %s: its build (%s) was killed by signal %d", p->name,
				  p->build, WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return pv_err_set(err, -EIO, SIZE_MAX, "profile %s: its build (%s) failed with exit status %d", p->name,
				  p->build, WEXITSTATUS(status));
	return 0;
}

int pbuild_run(const struct pv_profile *p, bool force, FILE *log, struct pv_err *err)
{
	char key[32], stamp[4200], tmp[4300], where[4096], *old = NULL;
	size_t olen = 0;
	int rc;

	if (!p->build)
		return 1;
	if ((rc = pbuild_key(p, key, sizeof(key), err)) < 0)
		return rc;
	snprintf(stamp, sizeof(stamp), "%s/" STAMP, p->build_out);
	if (!force && sys_read_file(stamp, 64, &old, &olen) == 0) {
		bool same = olen == strlen(key) + 1 && !memcmp(old, key, strlen(key));
		free(old);
		if (same && check_outputs(p, err) == 0)
			return 1;
	}
	if ((rc = sys_mkdir_p(p->build_out, 0755, where, sizeof(where))) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "profiles.%s.build_out: cannot make %s: %s", p->name, where,
				  strerror(-rc));
	unlink(stamp); /* a build that fails halfway is no build */
	fprintf(log, "provium: profile %s: building: %s\n", p->name, p->build);
	fflush(log);
	uint64_t t0 = sys_mono_ns();
	if ((rc = run_build(p, log, err)) < 0 || (rc = check_outputs(p, err)) < 0)
		return rc;
	/* the key again: the build may have touched its inputs */
	if ((rc = pbuild_key(p, key, sizeof(key), err)) < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.%d", stamp, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s\n", key) < 0 || fclose(f) != 0 || rename(tmp, stamp) < 0) {
		int e = errno;
		unlink(tmp);
		return pv_err_set(err, -e, SIZE_MAX, "profile %s: cannot write %s: %s", p->name, stamp, strerror(e));
	}
	fprintf(log, "provium: profile %s: built in %.1fs\n", p->name, (double)(sys_mono_ns() - t0) / 1e9);
	fflush(log);
	return 0;
}

/* Unit tests of scratch directories: the owner record, and a sweep that
 * removes only what is provably ours and provably dead. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "scratch.h"

static char parent[256];

static int setup(void **state)
{
	(void)state;
	strcpy(parent, "/tmp/pvscratch.XXXXXX");
	return mkdtemp(parent) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", parent);
	return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static const char *at(const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, 512, "%s/%s", parent, name);
	return b;
}

static char *slurp(const char *path)
{
	static char buf[1024];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = 0;
	return buf;
}

/* A dir named name with .owner holding rec (NULL: no record). */
static void fake(const char *name, const char *rec)
{
	assert_int_equal(mkdir(at(name), 0700), 0);
	if (rec) {
		char p[600];
		FILE *f;
		snprintf(p, sizeof(p), "%s/.owner", at(name));
		assert_non_null(f = fopen(p, "w"));
		fputs(rec, f);
		fclose(f);
	}
}

/* Our own record with one field replaced: field "start", "boot", "pidns" or "pid". */
static void own_record_with(char *out, size_t len, const char *field, const char *value)
{
	char dir[512], line[600], *rec;
	struct pv_err err;
	size_t o = 0;
	assert_int_equal(pv_scratch_create(parent, dir, sizeof(dir), &err), 0);
	snprintf(line, sizeof(line), "%s/.owner", dir);
	rec = slurp(line);
	pv_scratch_remove(dir);
	for (char *l = strtok(rec, "\n"); l; l = strtok(NULL, "\n")) {
		size_t fl = strlen(field);
		if (strncmp(l, field, fl) == 0 && l[fl] == '=')
			o += (size_t)snprintf(out + o, len - o, "%s=%s\n", field, value);
		else
			o += (size_t)snprintf(out + o, len - o, "%s\n", l);
	}
}

static void test_create_records_owner(void **state)
{
	(void)state;
	char dir[512], p[600], want[64];
	struct pv_err err;
	struct stat st;

	assert_int_equal(pv_scratch_create(parent, dir, sizeof(dir), &err), 0);
	assert_non_null(strstr(dir, "/" PV_SCRATCH_PREFIX));
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/.owner", dir);
	snprintf(want, sizeof(want), "pid=%d\n", (int)getpid());
	assert_non_null(strstr(slurp(p), want));
	assert_non_null(strstr(slurp(p), "provium-scratch 1\n"));
	/* a live owner: kept */
	assert_int_equal(pv_scratch_sweep(parent, NULL), 0);
	assert_true(exists(dir));
	pv_scratch_remove(dir);
	assert_false(exists(dir));
}

static void test_dead_owner_removed(void **state)
{
	(void)state;
	int pfd[2], st;
	char dir[512] = "";
	pid_t pid;

	/* a child makes a dir with something in it, then dies */
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char d[512], f[600];
		struct pv_err err;
		if (pv_scratch_create(parent, d, sizeof(d), &err) < 0)
			_exit(1);
		snprintf(f, sizeof(f), "%s/vm-x", d);
		mkdir(f, 0700);
		snprintf(f, sizeof(f), "%s/vm-x/console.log", d);
		close(open(f, O_WRONLY | O_CREAT, 0600));
		if (write(pfd[1], d, strlen(d) + 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	assert_true(read(pfd[0], dir, sizeof(dir)) > 0);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(st, 0);
	assert_true(exists(dir));
	assert_int_equal(pv_scratch_sweep(parent, NULL), 1);
	assert_false(exists(dir));
}

static void test_reused_pid_and_other_boot_removed(void **state)
{
	(void)state;
	char rec[512];

	/* our pid, but a start time that is not ours: the pid was reused */
	own_record_with(rec, sizeof(rec), "start", "1");
	fake(PV_SCRATCH_PREFIX "reused", rec);
	own_record_with(rec, sizeof(rec), "boot", "00000000-0000-0000-0000-000000000000");
	fake(PV_SCRATCH_PREFIX "oldboot", rec);
	assert_int_equal(pv_scratch_sweep(parent, NULL), 2);
	assert_false(exists(at(PV_SCRATCH_PREFIX "reused")));
	assert_false(exists(at(PV_SCRATCH_PREFIX "oldboot")));
}

static void test_unprovable_kept(void **state)
{
	(void)state;
	char rec[512], own[512];
	struct pv_err err;

	/* another pid namespace: a dead-looking pid proves nothing */
	own_record_with(rec, sizeof(rec), "pidns", "1:1");
	fake(PV_SCRATCH_PREFIX "otherns", rec);
	/* no record (just made, or an older provium), or a malformed one */
	fake(PV_SCRATCH_PREFIX "norecord", NULL);
	fake(PV_SCRATCH_PREFIX "garbage", "provium-scratch 1\npid=oops\n");
	own_record_with(rec, sizeof(rec), "start", "1");
	rec[strlen(rec) - 1] = 0; /* cut short */
	fake(PV_SCRATCH_PREFIX "truncated", rec);
	/* not ours by name, or not a directory, or a symlink to a dead run's dir */
	own_record_with(rec, sizeof(rec), "start", "1");
	fake("other-dead", rec);
	close(open(at(PV_SCRATCH_PREFIX "file"), O_WRONLY | O_CREAT, 0600));
	assert_int_equal(symlink(at("other-dead"), at(PV_SCRATCH_PREFIX "link")), 0);
	/* the caller's own dir, even if its record looked dead */
	assert_int_equal(pv_scratch_create(parent, own, sizeof(own), &err), 0);

	assert_int_equal(pv_scratch_sweep(parent, own), 0);
	assert_true(exists(at(PV_SCRATCH_PREFIX "otherns")));
	assert_true(exists(at(PV_SCRATCH_PREFIX "norecord")));
	assert_true(exists(at(PV_SCRATCH_PREFIX "garbage")));
	assert_true(exists(at(PV_SCRATCH_PREFIX "truncated")));
	assert_true(exists(at("other-dead/.owner")));
	assert_true(exists(at(PV_SCRATCH_PREFIX "file")));
	assert_true(exists(at(PV_SCRATCH_PREFIX "link")));
	assert_true(exists(own));
}

static void test_create_errors(void **state)
{
	(void)state;
	char dir[64];
	struct pv_err err;
	assert_int_equal(pv_scratch_create("/nonexistent/dir", dir, sizeof(dir), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/dir"));
	assert_int_equal(pv_scratch_create(parent, dir, 10, &err), -ENAMETOOLONG);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_records_owner),
		T(test_dead_owner_removed),
		T(test_reused_pid_and_other_boot_removed),
		T(test_unprovable_kept),
		T(test_create_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

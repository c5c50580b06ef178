/* Unit tests of --since (src/sched/since.c): a file's mtime as the
 * reference, what a test file depends on (helpers transitively, fixtures and
 * theirs, host files), and a git repository's changes and untracked files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "discover.h"
#include "since.h"

static char dir[64], root[128], stamp[128];

static void mk(const char *rel, const char *content)
{
	char p[512], cmd[600];
	FILE *f;
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s/%s')\"", dir, rel);
	assert_int_equal(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* Sets rel's mtime to t seconds since the epoch. */
static void age(const char *rel, time_t t)
{
	char p[512];
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static const char *const files[] = {
	"t/plain.test.lua", "t/helper.test.lua", "t/deep.test.lua", "t/fix.test.lua", "t/push.test.lua",
	"t/lib/a.lua", "t/lib/b.lua", "t/lib/c/init.lua", "t/db/seed.fixture.lua", "t/data.txt", "stamp",
};

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pvsince.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(root, sizeof(root), "%s/t", dir);
	snprintf(stamp, sizeof(stamp), "%s/stamp", dir);
	mk("t/plain.test.lua", "test('p', function() end)\n");
	mk("t/helper.test.lua", "local a = require('lib.a')\ntest('h', function() end)\n");
	mk("t/deep.test.lua", "local c = require 'lib.c'\ntest('d', function() end)\n");
	mk("t/fix.test.lua", "local v = provium.vm_fixture('db/seed')\ntest('f', function() end)\n");
	mk("t/push.test.lua", "test('u', function() vm:push_file('data.txt', '/x') end)\n");
	mk("t/lib/a.lua", "return {}\n");
	mk("t/lib/b.lua", "return {}\n");
	mk("t/lib/c/init.lua", "return require('lib.b')\n"); /* deep -> c -> b */
	mk("t/db/seed.fixture.lua", "local b = require('lib.b')\nreturn 1\n");
	mk("t/data.txt", "data\n");
	mk("stamp", "");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		age(files[i], 1000000000);
	age("stamp", 1500000000);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The rel_paths of the test files changed since ref, joined by spaces. */
static const char *changed(const char *ref)
{
	static char buf[512];
	const char *roots[] = { root };
	struct pv_discovery d;
	struct pv_err err;
	bool keep[16] = { false };
	size_t o = 0;

	if (pv_discover(roots, 1, NULL, &d, &err) < 0)
		fail_msg("discover: %s", err.msg);
	if (since_changed(ref, roots, 1, &d, keep, &err) < 0)
		fail_msg("since %s: %s", ref, err.msg);
	buf[0] = 0;
	for (size_t i = 0; i < d.nfiles; i++)
		if (keep[i])
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", o ? " " : "", d.files[i].rel_path);
	pv_discovery_release(&d);
	return buf;
}

static void test_mtime(void **state)
{
	(void)state;
	assert_string_equal(changed(stamp), "");
	/* only newer than the stamp counts, not as new */
	age("t/plain.test.lua", 1500000000);
	assert_string_equal(changed(stamp), "");
	age("t/plain.test.lua", 1500000001);
	assert_string_equal(changed(stamp), "plain.test.lua");
	age("t/plain.test.lua", 1000000000);
	age("t/lib/a.lua", 1600000000);
	assert_string_equal(changed(stamp), "helper.test.lua");
	age("t/lib/a.lua", 1000000000);
	/* lib.b: through lib.c (deep) and through the fixture (fix) */
	age("t/lib/b.lua", 1600000000);
	assert_string_equal(changed(stamp), "deep.test.lua fix.test.lua");
	age("t/lib/b.lua", 1000000000);
	age("t/db/seed.fixture.lua", 1600000000);
	assert_string_equal(changed(stamp), "fix.test.lua");
	age("t/db/seed.fixture.lua", 1000000000);
	age("t/data.txt", 1600000000);
	assert_string_equal(changed(stamp), "push.test.lua");
	age("t/data.txt", 1000000000);
}

static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

static void test_git(void **state)
{
	const char *roots[] = { root };
	struct pv_discovery d;
	struct pv_err err;
	bool keep[16];
	(void)state;

	if (system("git --version >/dev/null 2>&1") != 0)
		skip(); /* scripts/setup installs it */
	/* not a repository yet, and no such file either */
	assert_int_equal(pv_discover(roots, 1, NULL, &d, &err), 0);
	assert_int_equal(since_changed("HEAD", roots, 1, &d, keep, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is not in a git repository"));
	sh("cd %s && git init -q . && git -c user.name=t -c user.email=t@t add -A && "
	   "git -c user.name=t -c user.email=t@t commit -qm one", dir);
	assert_string_equal(changed("HEAD"), "");
	assert_int_equal(since_changed("HEAD~3", roots, 1, &d, keep, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "nor a git ref in"));
	assert_non_null(strstr(err.msg, "(git: "));
	assert_int_equal(since_changed("--output=/tmp/x", roots, 1, &d, keep, &err), -EINVAL);
	pv_discovery_release(&d);
	/* a modified helper, a staged fixture */
	sh("cd %s && echo '-- edit' >> t/lib/a.lua && echo '-- edit' >> t/db/seed.fixture.lua && git add t/db", dir);
	assert_string_equal(changed("HEAD"), "fix.test.lua helper.test.lua");
	/* committed: not since HEAD, still since HEAD~1 */
	sh("cd %s && git -c user.name=t -c user.email=t@t commit -qam two", dir);
	assert_string_equal(changed("HEAD"), "");
	assert_string_equal(changed("HEAD~1"), "fix.test.lua helper.test.lua");
	/* untracked files count, ignored ones do not */
	mk("t/new.test.lua", "test('n', function() end)\n");
	mk("t/ign.test.lua", "test('i', function() end)\n");
	mk(".gitignore", "ign.test.lua\n");
	assert_string_equal(changed("HEAD"), "new.test.lua");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mtime),
		cmocka_unit_test(test_git),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

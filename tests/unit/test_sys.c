/* Unit tests of the shared OS helpers: whole-file reads and tree removal. */
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
#include <unistd.h>
#include <cmocka.h>

#include "sys.h"

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_read_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvsys.XXXXXX", path[64], *buf = NULL;
	size_t len = 0;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);

	/* larger than the first buffer, NUL-terminated, length exact */
	char *big = malloc(100001);
	memset(big, 'x', 100000);
	big[100000] = 0;
	put(path, big);
	assert_int_equal(sys_read_file(path, 1 << 20, &buf, &len), 0);
	assert_int_equal(len, 100000);
	assert_int_equal(buf[len], 0);
	assert_memory_equal(buf, big, len);
	free(buf);

	buf = (char *)0x1;
	assert_int_equal(sys_read_file(path, 99999, &buf, &len), -EFBIG);
	assert_ptr_equal(buf, (char *)0x1); /* untouched on failure */
	assert_int_equal(sys_read_file("/nonexistent/x", 10, &buf, &len), -ENOENT);

	put(path, "");
	assert_int_equal(sys_read_file(path, 10, &buf, &len), 0);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	free(big);
	assert_int_equal(sys_rm_tree(dir, NULL, 0), 0);
}

static void test_rm_tree(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvsys.XXXXXX", keep[] = "/tmp/pvsys-keep.XXXXXX", p[128], where[256];
	struct stat st;
	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(keep));
	snprintf(p, sizeof(p), "%s/kept", keep);
	put(p, "kept");

	snprintf(p, sizeof(p), "%s/a", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b/file", dir);
	put(p, "x");
	snprintf(p, sizeof(p), "%s/link", dir);
	assert_int_equal(symlink(keep, p), 0); /* removed, never followed */

	assert_int_equal(sys_rm_tree(dir, where, sizeof(where)), 0);
	assert_string_equal(where, "");
	assert_int_equal(stat(dir, &st), -1);
	snprintf(p, sizeof(p), "%s/kept", keep);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(sys_rm_tree(dir, NULL, 0), 0); /* absent: fine */
	assert_int_equal(sys_rm_tree(keep, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_rm_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

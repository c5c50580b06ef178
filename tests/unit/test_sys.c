/* Unit tests of the shared OS helpers: whole-file reads, making and
 * removing trees, copying a file, per-user directories. */
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

static void test_mkdir_p_and_copy(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvsys.XXXXXX", path[128], where[128], *buf = NULL;
	size_t len = 0;
	assert_non_null(mkdtemp(dir));

	/* every level made; again: fine */
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(sys_mkdir_p(path, 0755, where, sizeof(where)), 0);
	assert_int_equal(sys_mkdir_p(path, 0755, where, sizeof(where)), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* a file in the way: -ENOTDIR, naming the prefix */
	snprintf(path, sizeof(path), "%s/a/f", dir);
	put(path, "x");
	snprintf(path, sizeof(path), "%s/a/f/g", dir);
	assert_int_equal(sys_mkdir_p(path, 0755, where, sizeof(where)), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/a/f", dir);
	assert_string_equal(where, path);

	/* a copy has the same bytes; a missing source is -ENOENT */
	char src[128], dst[128];
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/a/b/c/dst", dir);
	put(src, "pcap bytes\n");
	assert_int_equal(sys_copy_file(src, dst), 0);
	assert_int_equal(sys_read_file(dst, 100, &buf, &len), 0);
	assert_string_equal(buf, "pcap bytes\n");
	free(buf);
	assert_int_equal(sys_copy_file("/nonexistent/x", dst), -ENOENT);
	assert_int_equal(sys_rm_tree(dir, NULL, 0), 0);
}

/* A sparse copy: the same bytes, the same size, holes left holes. */
static void test_copy_sparse(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvsys.XXXXXX", src[128], dst[128];
	uint64_t copied = 0;
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/disk", dir);
	snprintf(dst, sizeof(dst), "%s/copy", dir);
	int fd = open(src, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 64 << 20), 0);
	assert_int_equal(pwrite(fd, "head", 4, 0), 4);
	assert_int_equal(pwrite(fd, "middle", 6, 32 << 20), 6);
	close(fd);
	assert_int_equal(sys_copy_sparse(src, dst, &copied), 0);
	struct stat st;
	assert_int_equal(stat(dst, &st), 0);
	assert_int_equal(st.st_size, 64 << 20);
	assert_true(copied < (1 << 20));             /* two data blocks, not 64 MiB */
	assert_true(st.st_blocks * 512 < (1 << 20)); /* and the copy is as sparse */
	char b[8] = { 0 };
	fd = open(dst, O_RDONLY);
	assert_int_equal(pread(fd, b, 4, 0), 4);
	assert_memory_equal(b, "head", 4);
	assert_int_equal(pread(fd, b, 6, 32 << 20), 6);
	assert_memory_equal(b, "middle", 6);
	assert_int_equal(pread(fd, b, 4, 16 << 20), 4);
	assert_memory_equal(b, "\0\0\0\0", 4);
	close(fd);
	assert_int_equal(sys_copy_sparse("/nonexistent/x", dst, NULL), -ENOENT);
	assert_int_equal(sys_rm_tree(dir, NULL, 0), 0);
}

static void test_user_dir(void **state)
{
	(void)state;
	char buf[256];
	setenv("HOME", "/home/u", 1);
	unsetenv("PV_TEST_DIR");
	setenv("XDG_STATE_HOME", "/xdg", 1);
	sys_user_dir(buf, sizeof(buf), "PV_TEST_DIR", "XDG_STATE_HOME", ".local/state", "provium/captures");
	assert_string_equal(buf, "/xdg/provium/captures");
	setenv("XDG_STATE_HOME", "relative", 1); /* ignored, as the XDG rule says */
	sys_user_dir(buf, sizeof(buf), "PV_TEST_DIR", "XDG_STATE_HOME", ".local/state", "provium/captures");
	assert_string_equal(buf, "/home/u/.local/state/provium/captures");
	setenv("PV_TEST_DIR", "/over", 1);
	sys_user_dir(buf, sizeof(buf), "PV_TEST_DIR", "XDG_STATE_HOME", ".local/state", "provium/captures");
	assert_string_equal(buf, "/over");
	unsetenv("PV_TEST_DIR");
	unsetenv("XDG_STATE_HOME");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_rm_tree),
		cmocka_unit_test(test_mkdir_p_and_copy),
		cmocka_unit_test(test_user_dir),
		cmocka_unit_test(test_copy_sparse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

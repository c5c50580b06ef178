/* test_dserver.c - the disk server (src/vm/dserver.h, src/disk/nbd_plugin.c):
 * a real nbdkit with the built plugin, driven by libnbd as QEMU would drive
 * it, and the disk's file read directly to see what a power cut keeps. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libnbd.h>

#include "dserver.h"

#define SIZE (1u << 20)

struct rig {
	char dir[64], file[96];
	struct dserver s;
	struct nbd_handle *h;
};

static void connect_client(struct rig *r)
{
	r->h = nbd_create();
	assert_non_null(r->h);
	if (nbd_connect_unix(r->h, r->s.sock) < 0)
		fail_msg("connect: %s", nbd_get_error());
}

static void start(struct rig *r, uint64_t seed)
{
	struct pv_err err;
	strcpy(r->dir, "/tmp/pvdsrv-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->file, sizeof(r->file), "%s/disk.raw", r->dir);
	int fd = open(r->file, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0 && ftruncate(fd, SIZE) == 0);
	close(fd);
	if (dserver_start(&r->s, r->file, r->dir, seed, &err) < 0)
		fail_msg("dserver_start: %s", err.msg);
	connect_client(r);
}

static void stop(struct rig *r)
{
	if (r->h)
		nbd_close(r->h);
	dserver_stop(&r->s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	assert_int_equal(system(cmd), 0);
}

static void cmd(struct rig *r, const char *line, char *reply, size_t len)
{
	struct pv_err err;
	if (dserver_cmd(&r->s, line, reply, len, &err) < 0)
		fail_msg("%s: %s", line, err.msg);
}

/* n bytes of the disk's file at off, as the host sees it */
static void file_at(struct rig *r, uint64_t off, void *buf, size_t n)
{
	int fd = open(r->file, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void put(struct rig *r, uint64_t off, int byte, size_t n, uint32_t flags)
{
	char buf[8192];
	assert_true(n <= sizeof(buf));
	memset(buf, byte, n);
	if (nbd_pwrite(r->h, buf, n, off, flags) < 0)
		fail_msg("pwrite: %s", nbd_get_error());
}

static int byte_at(struct rig *r, uint64_t off)
{
	unsigned char c;
	if (nbd_pread(r->h, &c, 1, off, 0) < 0)
		fail_msg("pread: %s", nbd_get_error());
	return c;
}

static int file_byte(struct rig *r, uint64_t off)
{
	unsigned char c;
	file_at(r, off, &c, 1);
	return c;
}

static void test_writes_wait_for_a_flush(void **state)
{
	struct rig r = { 0 };
	char reply[128];
	(void)state;
	start(&r, 1);
	put(&r, 4096, 0xaa, 4096, 0);
	assert_int_equal(byte_at(&r, 4096), 0xaa); /* the client reads its own write */
	assert_int_equal(file_byte(&r, 4096), 0);  /* the disk does not have it yet */
	cmd(&r, "S", reply, sizeof(reply));
	assert_string_equal(strrchr(reply, ' ') + 1, "4096"); /* unflushed bytes */
	assert_int_equal(nbd_flush(r.h, 0), 0);
	assert_int_equal(file_byte(&r, 4096), 0xaa);
	cmd(&r, "S", reply, sizeof(reply));
	assert_string_equal(reply, "1 1 1 0 0"); /* reads writes flushes faults unflushed */
	stop(&r);
}

static void test_power_cut_keeps_exactly_what_was_flushed(void **state)
{
	struct rig r = { 0 };
	(void)state;
	start(&r, 1);
	put(&r, 0, 0x11, 512, 0);
	assert_int_equal(nbd_flush(r.h, 0), 0);
	put(&r, 0, 0x22, 512, 0);              /* over flushed data: lost */
	put(&r, 8192, 0x33, 512, 0);           /* lost */
	put(&r, 16384, 0x44, 512, LIBNBD_CMD_FLAG_FUA); /* FUA: durable at once */
	cmd(&r, "X", NULL, 0);
	/* until a new client comes, every request fails */
	char c;
	assert_int_equal(nbd_pread(r.h, &c, 1, 0, 0), -1);
	assert_int_equal(nbd_get_errno(), ESHUTDOWN);
	nbd_close(r.h);
	assert_int_equal(file_byte(&r, 0), 0x11);
	assert_int_equal(file_byte(&r, 8192), 0);
	assert_int_equal(file_byte(&r, 16384), 0x44);
	connect_client(&r);
	assert_int_equal(byte_at(&r, 0), 0x11);
	assert_int_equal(byte_at(&r, 8192), 0);
	put(&r, 8192, 0x55, 512, 0); /* the power is back */
	assert_int_equal(byte_at(&r, 8192), 0x55);
	stop(&r);
}

static void test_a_client_that_goes_away_leaves_its_writes(void **state)
{
	struct rig r = { 0 };
	(void)state;
	start(&r, 1);
	put(&r, 512, 0x66, 512, 0);
	nbd_close(r.h); /* no flush, no cut: QEMU quit or crashed */
	r.h = NULL;
	/* the server commits when it sees the client gone: wait for that */
	for (int i = 0; i < 5000 && file_byte(&r, 512) != 0x66; i++)
		usleep(1000);
	assert_int_equal(file_byte(&r, 512), 0x66);
	stop(&r);
}

static void test_a_partial_sector_write_keeps_the_rest(void **state)
{
	struct rig r = { 0 };
	unsigned char buf[1024];
	(void)state;
	start(&r, 1);
	put(&r, 0, 0x77, 1024, 0);
	assert_int_equal(nbd_flush(r.h, 0), 0);
	put(&r, 100, 0x88, 700, 0); /* across two sectors, neither whole */
	assert_int_equal(nbd_pread(r.h, buf, sizeof(buf), 0, 0), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], i >= 100 && i < 800 ? 0x88 : 0x77);
	cmd(&r, "X", NULL, 0);
	file_at(&r, 0, buf, sizeof(buf));
	for (int i = 0; i < 1024; i++)
		assert_int_equal(buf[i], 0x77);
	stop(&r);
}

static void test_fault_rules(void **state)
{
	struct rig r = { 0 };
	char reply[256], buf[512];
	(void)state;
	start(&r, 1);
	/* reads overlapping [4096, 8192), after 1, once */
	cmd(&r, "F 1 1 5 4096 4096 1 1000000 0 1", NULL, 0);
	assert_int_equal(nbd_pread(r.h, buf, 512, 0, 0), 0);    /* out of range */
	assert_int_equal(nbd_pread(r.h, buf, 512, 4096, 0), 0); /* the first one passes */
	assert_int_equal(nbd_pread(r.h, buf, 512, 4608, 0), -1);
	assert_int_equal(nbd_get_errno(), EIO);
	assert_int_equal(nbd_pread(r.h, buf, 512, 4608, 0), 0); /* once: spent */
	cmd(&r, "L", reply, sizeof(reply));
	assert_string_equal(reply, "1:1:0");
	/* writes anywhere: ENOSPC */
	cmd(&r, "F 2 2 28 0 0 0 1000000 0 0", NULL, 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(nbd_pwrite(r.h, buf, 512, 65536, 0), -1);
	assert_int_equal(nbd_get_errno(), ENOSPC);
	cmd(&r, "C 2", NULL, 0);
	assert_int_equal(nbd_pwrite(r.h, buf, 512, 65536, 0), 0);
	cmd(&r, "S", reply, sizeof(reply));
	assert_string_equal(reply, "4 2 0 2 512");
	struct pv_err err;
	assert_int_equal(dserver_cmd(&r.s, "F 1 2", NULL, 0, &err), -EREMOTEIO);
	assert_non_null(strstr(err.msg, "bad rule"));
	stop(&r);
}

/* The fail/pass pattern of 64 reads under a probability-1/2 rule. */
static void pattern(uint64_t seed, char *out)
{
	struct rig r = { 0 };
	char buf[512];
	start(&r, seed);
	cmd(&r, "F 1 1 5 0 0 0 500000 0 0", NULL, 0);
	for (int i = 0; i < 64; i++)
		out[i] = nbd_pread(r.h, buf, 512, 0, 0) < 0 ? '0' : '1';
	out[64] = 0;
	stop(&r);
}

static void test_probability_follows_the_seed(void **state)
{
	char a[65], b[65], c[65];
	(void)state;
	pattern(7, a);
	pattern(7, b);
	pattern(8, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_non_null(strchr(a, '0'));
	assert_non_null(strchr(a, '1'));
}

static void test_a_missing_plugin_is_one_clear_error(void **state)
{
	struct dserver s;
	struct pv_err err;
	char *old = getenv("PROVIUM_NBD_PLUGIN") ? strdup(getenv("PROVIUM_NBD_PLUGIN")) : NULL;
	(void)state;
	setenv("PROVIUM_NBD_PLUGIN", "/nonexistent/provium-nbd.so", 1);
	assert_int_equal(dserver_start(&s, "/tmp/x.raw", "/tmp", 1, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/provium-nbd.so is missing"));
	if (old)
		setenv("PROVIUM_NBD_PLUGIN", old, 1);
	free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_wait_for_a_flush),
		cmocka_unit_test(test_power_cut_keeps_exactly_what_was_flushed),
		cmocka_unit_test(test_a_client_that_goes_away_leaves_its_writes),
		cmocka_unit_test(test_a_partial_sector_write_keeps_the_rest),
		cmocka_unit_test(test_fault_rules),
		cmocka_unit_test(test_probability_follows_the_seed),
		cmocka_unit_test(test_a_missing_plugin_is_one_clear_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

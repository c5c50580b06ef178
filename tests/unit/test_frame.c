/* Unit tests of framing, the msgpack reader and UTF-8 validation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "frame.h"
#include "mpr.h"

static void add_frame(struct pv_buf *b, const char *body, uint32_t n)
{
	uint8_t h[4];
	frame_put_len(h, n);
	pv_buf_append(b, h, 4);
	pv_buf_append(b, body, n);
}

static void test_split_byte_by_byte(void **state)
{
	(void)state;
	struct pv_buf s = PV_BUF_INIT;
	struct frame_dec d;
	const uint8_t *body;
	uint32_t len;
	uint64_t off;
	int got = 0;

	add_frame(&s, "abc", 3);
	add_frame(&s, "", 0);
	add_frame(&s, "hello world", 11);
	frame_dec_init(&d);
	for (size_t i = 0; i < s.len; i++) {
		assert_int_equal(frame_dec_feed(&d, s.data + i, 1), 0);
		while (frame_dec_next(&d, &body, &len, &off, NULL) == 1) {
			if (got == 0) {
				assert_int_equal(len, 3);
				assert_memory_equal(body, "abc", 3);
				assert_int_equal(off, 0);
			} else if (got == 1) {
				assert_int_equal(len, 0);
				assert_int_equal(off, 7);
			} else {
				assert_int_equal(len, 11);
				assert_int_equal(off, 11);
			}
			got++;
		}
	}
	assert_int_equal(got, 3);
	assert_int_equal(frame_dec_finish(&d, NULL), 0);
	frame_dec_release(&d);
	pv_buf_release(&s);
}

static void test_truncations(void **state)
{
	(void)state;
	struct frame_dec d;
	struct pv_err err;
	const uint8_t *body;
	uint32_t len;

	frame_dec_init(&d);
	frame_dec_feed(&d, "\x00\x00", 2);
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), 0);
	assert_int_equal(frame_dec_finish(&d, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "inside a frame header (2 of 4 bytes)"));
	assert_int_equal(err.offset, 0);
	frame_dec_release(&d);

	frame_dec_init(&d);
	frame_dec_feed(&d, "\x00\x00\x00\x01" "a" "\x00\x00\x00\x09" "abc", 12);
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), 1);
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), 0);
	assert_int_equal(frame_dec_finish(&d, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "inside a frame body (3 of 9 bytes)"));
	assert_int_equal(err.offset, 5);
	frame_dec_release(&d);
}

static void test_oversize_rejected_before_alloc(void **state)
{
	(void)state;
	struct frame_dec d;
	struct pv_err err;
	const uint8_t *body;
	uint32_t len;
	int p[2];

	frame_dec_init(&d);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "\x08\x00\x00\x01xyz", 7), 7); /* 128 MiB + 1 */
	close(p[1]);
	assert_true(frame_dec_read_fd(&d, p[0]) > 0);
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), -EMSGSIZE);
	assert_non_null(strstr(err.msg, "134217729 bytes, over the 134217728-byte limit"));
	assert_true(d.buf.cap < 1024 * 1024);
	/* sticky */
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), -EMSGSIZE);
	close(p[0]);
	frame_dec_release(&d);

	/* exactly the limit is accepted as a header (body still pending) */
	frame_dec_init(&d);
	frame_dec_feed(&d, "\x08\x00\x00\x00", 4);
	assert_int_equal(frame_dec_next(&d, &body, &len, NULL, &err), 0);
	frame_dec_release(&d);
}

static void test_mpr_basics(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x93, 0x01, 0xd0, 0x80, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xc1 };
	struct mpr r;
	struct mpr_item it;
	struct pv_err err;

	mpr_init(&r, in, sizeof(in));
	assert_int_equal(mpr_next(&r, &it, &err), 0);
	assert_int_equal(it.type, MPR_ARRAY);
	assert_int_equal(it.v.count, 3);
	assert_int_equal(mpr_next(&r, &it, &err), 0);
	assert_int_equal(it.type, MPR_UINT);
	assert_int_equal(mpr_next(&r, &it, &err), 0);
	assert_int_equal(it.type, MPR_INT);
	assert_int_equal(it.v.i, -128);
	assert_int_equal(mpr_next(&r, &it, &err), 0);
	assert_int_equal(it.type, MPR_FLOAT);
	assert_true(it.v.f == 1.0);
	assert_int_equal(mpr_next(&r, &it, &err), -EBADMSG);
	assert_int_equal(err.offset, 13);
	assert_non_null(strstr(err.msg, "0xc1"));
}

static void test_mpr_skip_depth(void **state)
{
	(void)state;
	uint8_t deep[200];
	struct mpr r;
	struct pv_err err;
	memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
	deep[199] = 0xc0;
	mpr_init(&r, deep, sizeof(deep));
	assert_int_equal(mpr_skip(&r, 40, &err), -ELOOP);
	assert_int_equal(mpr_offset(&r), 0);
	mpr_init(&r, deep + 170, 30);
	assert_int_equal(mpr_skip(&r, 40, &err), 0);
	assert_int_equal(mpr_left(&r), 0);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(pv_utf8_valid((const uint8_t *)"plain ascii text, long enough", 29));
	assert_true(pv_utf8_valid((const uint8_t *)"r\xc3\xa9seau \xe2\x82\xac \xf0\x9f\x98\x80", 16));
	assert_false(pv_utf8_valid((const uint8_t *)"\xc0\x80", 2));         /* overlong NUL */
	assert_false(pv_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
	assert_false(pv_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(pv_utf8_valid((const uint8_t *)"ab\xe2\x82", 4));        /* cut */
	assert_false(pv_utf8_valid((const uint8_t *)"\xff", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_byte_by_byte),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_oversize_rejected_before_alloc),
		cmocka_unit_test(test_mpr_basics),
		cmocka_unit_test(test_mpr_skip_depth),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

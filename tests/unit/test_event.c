/* Unit tests of the event contract: golden bytes, round trips, strict decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "event.h"
#include "frame.h"
#include "golden_events.h"

static const char *golden_dir;

static int read_file(const char *path, struct pv_buf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[4096];
	size_t n;
	if (!f)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		pv_buf_append(b, tmp, n);
	fclose(f);
	return 0;
}

static void test_golden_bytes(void **state)
{
	(void)state;
	for (int k = 0; k < PV_EV__COUNT; k++) {
		struct pv_event ev, back;
		struct pv_buf enc = PV_BUF_INIT, gold = PV_BUF_INIT, again = PV_BUF_INIT;
		struct pv_err err;
		char path[4096];

		golden_event((enum pv_event_kind)k, &ev);
		snprintf(path, sizeof(path), "%s/%s.bin", golden_dir, pv_event_kind_name((enum pv_event_kind)k));
		assert_int_equal(read_file(path, &gold), 0);
		assert_int_equal(pv_event_encode(&ev, &enc, &err), 0);
		if (enc.len != gold.len || memcmp(enc.data, gold.data, enc.len) != 0)
			fail_msg("encoding of %s differs from %s", pv_event_kind_name((enum pv_event_kind)k), path);

		pv_event_init(&back);
		assert_int_equal(frame_get_len(gold.data), gold.len - 4);
		if (pv_event_decode(&back, gold.data + 4, gold.len - 4, &err) < 0)
			fail_msg("%s: %s", path, err.msg);
		assert_true(pv_event_equal(&ev, &back));
		assert_int_equal(pv_event_encode(&back, &again, &err), 0);
		assert_memory_equal(again.data, gold.data, gold.len);
		pv_event_release(&back);
		pv_buf_release(&enc);
		pv_buf_release(&gold);
		pv_buf_release(&again);
	}
}

static void test_kind_names(void **state)
{
	(void)state;
	assert_int_equal(PV_EV__COUNT, 17);
	for (int k = 0; k < PV_EV__COUNT; k++) {
		const char *n = pv_event_kind_name((enum pv_event_kind)k);
		assert_int_equal(pv_event_kind_from_name(n, strlen(n)), k);
	}
	assert_int_equal(pv_event_kind_from_name("test_exploded", 13), -1);
}

/* ---- building malformed bodies with msgpack-c ---- */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void begin(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void key(const char *s) { msgpack_pack_str_with_body(&pk, s, strlen(s)); }

static void frame_head(const char *kind, unsigned payload_fields)
{
	msgpack_pack_map(&pk, 3);
	key("ts");
	msgpack_pack_int64(&pk, 1);
	key("kind");
	key(kind);
	key("payload");
	msgpack_pack_map(&pk, payload_fields);
}

/* Decodes sb; expects failure whose message contains `needle`; returns the offset. */
static size_t expect_error(const char *needle)
{
	struct pv_event ev;
	struct pv_err err = { 0 };
	int rc;
	pv_event_init(&ev);
	rc = pv_event_decode(&ev, (const uint8_t *)sb.data, sb.size, &err);
	pv_event_release(&ev);
	if (rc >= 0)
		fail_msg("decoding succeeded, expected an error containing '%s'", needle);
	if (!strstr(err.msg, needle))
		fail_msg("error '%s' does not contain '%s'", err.msg, needle);
	msgpack_sbuffer_destroy(&sb);
	return err.offset;
}

static void test_unknown_kind(void **state)
{
	(void)state;
	begin();
	frame_head("test_exploded", 0);
	expect_error("unknown event kind \"test_exploded\"");
}

static void test_missing_and_extra_fields(void **state)
{
	(void)state;
	begin();
	frame_head("fixture_cache_hit", 0);
	expect_error("missing field \"path\"");

	begin();
	frame_head("fixture_cache_hit", 2);
	key("path");
	key("x");
	key("color");
	key("red");
	expect_error("fixture_cache_hit: payload: unknown field \"color\"");

	begin();
	frame_head("fixture_cache_hit", 2);
	key("path");
	key("x");
	key("path");
	key("y");
	expect_error("duplicate field \"path\"");

	begin();
	msgpack_pack_map(&pk, 2);
	key("ts");
	msgpack_pack_int(&pk, 1);
	key("kind");
	key("fixture_cache_hit");
	expect_error("missing key \"payload\"");

	begin();
	msgpack_pack_map(&pk, 4);
	key("ts");
	msgpack_pack_int(&pk, 1);
	key("kind");
	key("fixture_cache_hit");
	key("payload");
	msgpack_pack_map(&pk, 1);
	key("path");
	key("x");
	key("extra");
	msgpack_pack_nil(&pk);
	expect_error("unexpected key \"extra\"");
}

static void test_wrong_types(void **state)
{
	(void)state;
	size_t off;

	begin();
	frame_head("vm_shutdown", 3);
	key("file");
	key("a");
	key("vm_name");
	key("b");
	key("duration_ns");
	off = sb.size;
	key("soon");
	assert_int_equal(expect_error("vm_shutdown: payload.duration_ns: expected u64, got str"), off);

	begin();
	frame_head("vm_spawned", 5);
	key("file");
	key("a");
	key("vm_name");
	key("b");
	key("profile");
	key("linux");
	key("memory_bytes");
	msgpack_pack_uint64(&pk, 1);
	key("cid");
	msgpack_pack_uint64(&pk, 1ull << 32);
	expect_error("payload.cid: 4294967296 is out of range for u32");

	begin();
	frame_head("file_completed", 3);
	key("path");
	key("a");
	key("status");
	key("exploded");
	key("duration_ns");
	msgpack_pack_int(&pk, -1);
	expect_error("unknown status \"exploded\"");

	begin();
	frame_head("claim_acquired", 2);
	key("path");
	key("a");
	key("amount");
	msgpack_pack_map(&pk, 1);
	key("memory_bytes");
	msgpack_pack_int(&pk, 1);
	expect_error("payload.amount: ResourceAmount is missing field cpus");

	begin();
	frame_head("fixture_cache_hit", 1);
	key("path");
	msgpack_pack_bin_with_body(&pk, "abc", 3);
	expect_error("payload.path: expected str, got bin");

	begin();
	frame_head("fixture_cache_hit", 1);
	key("path");
	msgpack_pack_str_with_body(&pk, "\xff\xfe", 2);
	expect_error("not valid UTF-8");

	begin();
	msgpack_pack_array(&pk, 0);
	expect_error("event frame must be a map");
}

static void meta_frame(void)
{
	frame_head("test_started", 3);
	key("path");
	key("a");
	key("name");
	key("b");
	key("meta");
}

static void test_meta_errors(void **state)
{
	(void)state;
	size_t off;

	begin();
	meta_frame();
	msgpack_pack_map(&pk, 1);
	key("tags");
	msgpack_pack_array(&pk, 2);
	key("ok");
	off = sb.size;
	msgpack_pack_uint64(&pk, UINT64_MAX);
	assert_int_equal(expect_error("payload.meta.tags[1]: integer 18446744073709551615 does not fit"), off);

	begin();
	meta_frame();
	msgpack_pack_map(&pk, 1);
	msgpack_pack_int(&pk, 5);
	msgpack_pack_nil(&pk);
	expect_error("MetaMap keys are strings");

	begin();
	meta_frame();
	msgpack_pack_map(&pk, 2);
	key("b");
	msgpack_pack_nil(&pk);
	key("b");
	msgpack_pack_nil(&pk);
	expect_error("duplicate key \"b\"");

	/* 33 nested arrays: one too deep */
	begin();
	meta_frame();
	msgpack_pack_map(&pk, 1);
	key("deep");
	for (int i = 0; i < PV_META_MAX_DEPTH + 1; i++)
		msgpack_pack_array(&pk, 1);
	msgpack_pack_nil(&pk);
	expect_error("nesting deeper than 32 levels");

	/* 32 levels is fine */
	{
		struct pv_event ev;
		struct pv_err err;
		begin();
		meta_frame();
		msgpack_pack_map(&pk, 1);
		key("deep");
		for (int i = 0; i < PV_META_MAX_DEPTH - 1; i++)
			msgpack_pack_array(&pk, 1);
		msgpack_pack_nil(&pk);
		pv_event_init(&ev);
		if (pv_event_decode(&ev, (uint8_t *)sb.data, sb.size, &err) < 0)
			fail_msg("%s", err.msg);
		pv_event_release(&ev);
		msgpack_sbuffer_destroy(&sb);
	}

	begin();
	meta_frame();
	msgpack_pack_map(&pk, 1);
	key("e");
	msgpack_pack_ext_with_body(&pk, "x", 1, 5);
	expect_error("ext type 5 is not a MetaValue");
}

static void test_bin_stays_bin(void **state)
{
	(void)state;
	struct pv_event ev;
	struct pv_err err;
	const struct pv_meta_value *v;

	begin();
	meta_frame();
	msgpack_pack_map(&pk, 2);
	key("b");
	msgpack_pack_bin_with_body(&pk, "hello", 5);
	key("s");
	key("hello");
	pv_event_init(&ev);
	assert_int_equal(pv_event_decode(&ev, (uint8_t *)sb.data, sb.size, &err), 0);
	v = pv_meta_get(&ev.u.test_started.meta, "b");
	assert_non_null(v);
	assert_int_equal(v->type, PV_META_BIN);
	v = pv_meta_get(&ev.u.test_started.meta, "s");
	assert_int_equal(v->type, PV_META_STR);
	pv_event_release(&ev);
	msgpack_sbuffer_destroy(&sb);
}

static void test_truncation_everywhere(void **state)
{
	(void)state;
	/* every proper prefix of every golden body must fail cleanly, never succeed */
	for (int k = 0; k < PV_EV__COUNT; k++) {
		struct pv_event ev, back;
		struct pv_buf enc = PV_BUF_INIT;
		struct pv_err err;
		golden_event((enum pv_event_kind)k, &ev);
		assert_int_equal(pv_event_encode(&ev, &enc, &err), 0);
		pv_event_init(&back);
		for (size_t n = 0; n < enc.len - 4; n++) {
			uint8_t *copy = malloc(n ? n : 1);
			memcpy(copy, enc.data + 4, n);
			if (pv_event_decode(&back, copy, n, &err) >= 0)
				fail_msg("%s: prefix of %zu bytes decoded", pv_event_kind_name(ev.kind), n);
			assert_true(err.offset <= n);
			free(copy);
		}
		/* and trailing garbage is refused */
		pv_buf_append(&enc, "\xc0", 1);
		assert_int_equal(pv_event_decode(&back, enc.data + 4, enc.len - 4, &err), -EBADMSG);
		assert_non_null(strstr(err.msg, "1 trailing bytes"));
		pv_event_release(&back);
		pv_buf_release(&enc);
	}
}

static void test_huge_declared_count(void **state)
{
	(void)state;
	/* a 5-byte array header claiming 4 billion elements allocates nothing */
	static const uint8_t body[] = { 0xdd, 0xff, 0xff, 0xff, 0xff };
	struct pv_event ev;
	struct pv_err err;
	pv_event_init(&ev);
	assert_int_equal(pv_event_decode(&ev, body, sizeof(body), &err), -ENODATA);
	assert_non_null(strstr(err.msg, "declares 4294967295 elements"));
	pv_event_release(&ev);
}

static void test_payload_before_kind(void **state)
{
	(void)state;
	struct pv_event ev;
	struct pv_err err;
	begin();
	msgpack_pack_map(&pk, 3);
	key("payload");
	msgpack_pack_map(&pk, 1);
	key("path");
	key("x");
	key("kind");
	key("fixture_cache_hit");
	key("ts");
	msgpack_pack_int64(&pk, -5);
	pv_event_init(&ev);
	if (pv_event_decode(&ev, (uint8_t *)sb.data, sb.size, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(ev.kind, PV_EV_FIXTURE_CACHE_HIT);
	assert_int_equal(ev.ts, -5);
	assert_string_equal(ev.u.fixture_cache_hit.path.ptr, "x");
	pv_event_release(&ev);
	msgpack_sbuffer_destroy(&sb);
}

static void test_encode_rejects(void **state)
{
	(void)state;
	struct pv_event ev = { .kind = PV_EV_FIXTURE_CACHE_HIT };
	struct pv_buf b = PV_BUF_INIT;
	struct pv_err err;
	struct pv_meta_entry dup[] = { { { "k", 1 }, { .type = PV_META_NIL } },
				       { { "a", 1 }, { .type = PV_META_NIL } },
				       { { "k", 1 }, { .type = PV_META_NIL } } };

	ev.u.fixture_cache_hit.path = (struct pv_str){ "\xc3", 1 };
	assert_int_equal(pv_event_encode(&ev, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "path: not valid UTF-8"));
	assert_int_equal(b.len, 0);

	memset(&ev, 0, sizeof(ev));
	ev.kind = PV_EV_TEST_STARTED;
	ev.u.test_started.meta = (struct pv_meta_map){ dup, 3 };
	assert_int_equal(pv_event_encode(&ev, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "duplicate key \"k\""));
	assert_int_equal(b.len, 0);

	ev.kind = (enum pv_event_kind)99;
	assert_int_equal(pv_event_encode(&ev, &b, &err), -EINVAL);
	pv_buf_release(&b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_bytes),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_unknown_kind),
		cmocka_unit_test(test_missing_and_extra_fields),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_meta_errors),
		cmocka_unit_test(test_bin_stays_bin),
		cmocka_unit_test(test_truncation_everywhere),
		cmocka_unit_test(test_huge_declared_count),
		cmocka_unit_test(test_payload_before_kind),
		cmocka_unit_test(test_encode_rejects),
	};
	golden_dir = argc > 1 ? argv[1] : "tests/golden/frames";
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of the control protocol: the table, the typed senders and the
 * strict decoder (src/proto/ctl.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctl.h"
#include "event.h"
#include "frame.h"

static int buf_write(void *data, const char *p, size_t n)
{
	return pv_buf_append(data, p, n) < 0 ? -1 : 0;
}

/* A hand-made body, for inputs the senders refuse to build. */
struct raw {
	struct pv_buf b;
	msgpack_packer pk;
};

static void raw_init(struct raw *r)
{
	r->b = (struct pv_buf)PV_BUF_INIT;
	msgpack_packer_init(&r->pk, &r->b, buf_write);
}

static void raw_str(struct raw *r, const char *s)
{
	msgpack_pack_str_with_body(&r->pk, s, strlen(s));
}

/* Parses r's body, expecting failure with a message containing want. */
static void expect_bad(struct raw *r, const char *want)
{
	struct ctl_msg m;
	struct pv_err err;
	int rc = ctl_parse(r->b.data, r->b.len, &m, &err);
	if (rc != -EBADMSG || !strstr(err.msg, want))
		fail_msg("rc %d, message \"%s\", wanted \"%s\"", rc, rc < 0 ? err.msg : "", want);
	pv_buf_release(&r->b);
}

static const uint8_t *frame_body(const struct pv_buf *b, uint32_t *len)
{
	assert_true(b->len >= FRAME_HDR_LEN);
	*len = (uint32_t)b->data[0] << 24 | (uint32_t)b->data[1] << 16 | (uint32_t)b->data[2] << 8 | b->data[3];
	assert_int_equal(*len, b->len - FRAME_HDR_LEN);
	return b->data + FRAME_HDR_LEN;
}

static void parse_ok(const struct pv_buf *b, struct ctl_msg *m, enum ctl_id id)
{
	struct pv_err err;
	uint32_t len;
	const uint8_t *body = frame_body(b, &len);
	assert_true(ctl_is_ctl(body, len));
	if (ctl_parse(body, len, m, &err) < 0)
		fail_msg("%s", err.msg);
	assert_ptr_equal(m->def, &ctl_defs[id]);
	assert_string_equal(m->name, ctl_defs[id].name);
}

static void test_table(void **state)
{
	(void)state;
	for (int i = 0; i < CTL_COUNT; i++) {
		const struct ctl_def *d = &ctl_defs[i];
		assert_non_null(d->name);
		assert_true(strlen(d->name) < sizeof(((struct ctl_msg *)0)->name));
		assert_ptr_equal(ctl_def_find(d->name, strlen(d->name)), d);
		assert_true(d->nfields + 1 <= CTL_MAX_KEYS);
		for (unsigned f = 0; f < d->nfields; f++) {
			for (unsigned g = 0; g < f; g++)
				assert_string_not_equal(d->fields[f].name, d->fields[g].name);
			if (d->fields[f].type == CTL_T_UINT || d->fields[f].type == CTL_T_UINTV)
				assert_true(d->fields[f].max > 0);
		}
	}
	assert_null(ctl_def_find("nope", 4));
	assert_null(ctl_def_find("start_", 6));
}

static void test_start_round_trip(void **state)
{
	(void)state;
	const char *roots[] = { "tests", "more" }, *tags[] = { "fast" }, *meta[] = { "slow=true", "owner=net" },
		   *only[] = { "the failed one" };
	struct ctl_start s = { .config = NULL, .scratch = "/tmp/s", .path = "a.test.lua", .file = "/x/a.test.lua",
			       .roots = roots, .nroots = 2, .cache_dir = "/c", .fixture = "fix.fixture.lua",
			       .fixture_len = 3, .force = true, .include_slow = false, .tags = tags, .ntags = 1,
			       .tag_meta = meta, .ntag_meta = 2, .only = only, .nonly = 1 };
	struct pv_buf b = PV_BUF_INIT;
	struct ctl_msg m;
	struct mpr r;
	struct mpr_item it;
	size_t n;
	bool v;
	char *str, **sv;

	assert_int_equal(ctl_put_start(&b, &s), 0);
	parse_ok(&b, &m, CTL_START);
	assert_int_equal(m.nkeys, ctl_defs[CTL_START].nfields);
	assert_true(ctl_find(&m, "config", &r));
	assert_int_equal(mpr_next(&r, &it, NULL), 0);
	assert_int_equal(it.type, MPR_NIL);
	assert_null(ctl_get_strdup(&m, "config"));
	str = ctl_get_strdup(&m, "fixture");
	assert_string_equal(str, "fix");
	free(str);
	str = ctl_get_strdup(&m, "cache_dir");
	assert_string_equal(str, "/c");
	free(str);
	sv = ctl_get_strv(&m, "roots", &n);
	assert_int_equal(n, 2);
	assert_string_equal(sv[1], "more");
	ctl_strv_free(sv, n);
	sv = ctl_get_strv(&m, "no_tags", &n);
	assert_non_null(sv); /* an empty array is still an array */
	assert_int_equal(n, 0);
	ctl_strv_free(sv, n);
	assert_true(ctl_get_bool(&m, "force", &v) && v);
	assert_true(ctl_get_bool(&m, "include_slow", &v) && !v);
	/* --tag-meta, --no-tag-meta and --rerun-failed's tests */
	sv = ctl_get_strv(&m, "tag_meta", &n);
	assert_int_equal(n, 2);
	assert_string_equal(sv[1], "owner=net");
	ctl_strv_free(sv, n);
	sv = ctl_get_strv(&m, "no_tag_meta", &n);
	assert_int_equal(n, 0);
	ctl_strv_free(sv, n);
	sv = ctl_get_strv(&m, "only", &n);
	assert_int_equal(n, 1);
	assert_string_equal(sv[0], "the failed one");
	ctl_strv_free(sv, n);
	pv_buf_release(&b);
}

static void get_plan(void *ctx, size_t i, const char **name, const struct pv_meta_map **meta)
{
	static const char *const names[] = { "first", "second" };
	*name = names[i];
	*meta = ctx;
}

static void test_every_sender(void **state)
{
	(void)state;
	struct pv_buf b = PV_BUF_INIT;
	struct ctl_msg m;
	struct pv_meta_map none = { NULL, 0 };
	struct pv_err err;
	uint64_t u;
	uint32_t cids[4];
	size_t n;
	bool v;
	char *s;

	assert_int_equal(ctl_put_claim_ok(&b), 0);
	parse_ok(&b, &m, CTL_CLAIM_OK);
	assert_int_equal(m.nkeys, 0);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_claim_denied(&b, "too big"), 0);
	parse_ok(&b, &m, CTL_CLAIM_DENIED);
	s = ctl_get_strdup(&m, "reason");
	assert_string_equal(s, "too big");
	free(s);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_acquire_denied(&b, "no"), 0);
	parse_ok(&b, &m, CTL_ACQUIRE_DENIED);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_acquired(&b, 7, 3), 0);
	parse_ok(&b, &m, CTL_ACQUIRED);
	assert_true(ctl_get_uintv(&m, "cids", cids, 4, &n));
	assert_int_equal(n, 3);
	assert_int_equal(cids[0], 7);
	assert_int_equal(cids[2], 9);
	assert_true(ctl_get_uintv(&m, "cids", cids, 2, &n)); /* the caller's room bounds the copy */
	assert_int_equal(n, 2);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_acquired(&b, 3, CTL_MAX_VMS + 1), -EINVAL);
	assert_int_equal(b.len, 0);
	assert_int_equal(ctl_put_plan(&b, 2, get_plan, &none, &err), 0);
	parse_ok(&b, &m, CTL_PLAN);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_log(&b, "t", "hello", 5), 0);
	parse_ok(&b, &m, CTL_LOG);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_timeout(&b, UINT64_MAX), 0);
	parse_ok(&b, &m, CTL_TIMEOUT);
	assert_true(ctl_get_uint(&m, "ns", &u));
	assert_true(u == UINT64_MAX);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_claim(&b, 1 << 20, 2), 0);
	parse_ok(&b, &m, CTL_CLAIM);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_acquire(&b, 1 << 30, 4, 2), 0);
	parse_ok(&b, &m, CTL_ACQUIRE);
	assert_true(ctl_get_uint(&m, "vms", &u));
	assert_int_equal(u, 2);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_acquire(&b, 1, 1, CTL_MAX_VMS + 1), -EINVAL);
	assert_int_equal(ctl_put_release(&b, 5, 1), 0);
	parse_ok(&b, &m, CTL_RELEASE);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_fixture_wait(&b, true), 0);
	parse_ok(&b, &m, CTL_FIXTURE_WAIT);
	assert_true(ctl_get_bool(&m, "waiting", &v) && v);
	pv_buf_reset(&b);
	assert_int_equal(ctl_put_done(&b), 0);
	parse_ok(&b, &m, CTL_DONE);
	pv_buf_release(&b);
}

/* The hand builder checks what it built: a wrong field count, key or type
 * fails in the sender, and the buffer is as before. */
static void test_builder_checked(void **state)
{
	(void)state;
	struct pv_buf b = PV_BUF_INIT;
	struct ctl_writer w;
	struct pv_err err;

	pv_buf_append(&b, "keep", 4);
	ctl_begin(&w, &b, "release", 1); /* release has two fields */
	ctl_key(&w, "memory_bytes");
	msgpack_pack_uint64(&w.pk, 1);
	assert_int_equal(ctl_end_err(&w, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "field \"cpus\" is missing"));
	assert_int_equal(b.len, 4);

	ctl_begin(&w, &b, "timeout", 1);
	ctl_key(&w, "ns");
	msgpack_pack_int64(&w.pk, -5);
	assert_int_equal(ctl_end(&w), -EPROTO);
	assert_int_equal(b.len, 4);

	ctl_begin(&w, &b, "tiemout", 0);
	assert_int_equal(ctl_end_err(&w, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "unknown control message \"tiemout\""));
	assert_int_equal(b.len, 4);

	ctl_begin(&w, &b, "timeout", 1);
	ctl_key(&w, "ns");
	msgpack_pack_uint64(&w.pk, 5);
	assert_int_equal(ctl_end(&w), 0);
	assert_true(b.len > 4);
	pv_buf_release(&b);
}

/* A message of more than 15 keys is a map16, not a fixmap: still control. */
static void test_is_ctl_map16(void **state)
{
	struct raw r;
	(void)state;

	for (unsigned n = 15; n <= 17; n++) {
		raw_init(&r);
		msgpack_pack_map(&r.pk, n);
		raw_str(&r, "ctl");
		raw_str(&r, "start");
		assert_int_equal(r.b.data[0], n < 16 ? 0x80 | n : 0xde);
		assert_true(ctl_is_ctl(r.b.data, r.b.len));
		pv_buf_release(&r.b);
	}
	raw_init(&r);
	msgpack_pack_map(&r.pk, 16);
	raw_str(&r, "ts"); /* an event */
	assert_false(ctl_is_ctl(r.b.data, r.b.len));
	pv_buf_release(&r.b);
}

static void test_decoder_rejects(void **state)
{
	(void)state;
	struct raw r;

	raw_init(&r);
	msgpack_pack_array(&r.pk, 0);
	expect_bad(&r, "must be a map, not array");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 0);
	expect_bad(&r, "1 to 24 keys");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 1);
	raw_str(&r, "ts");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "first key must be \"ctl\"");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 1);
	raw_str(&r, "ctl");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "name must be a str, not int");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 1);
	raw_str(&r, "ctl");
	raw_str(&r, "shutdown");
	expect_bad(&r, "unknown control message \"shutdown\"");

	/* missing: a timeout without ns used to read as 0 in some handlers */
	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "acquire");
	raw_str(&r, "memory_bytes");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "control message \"acquire\": field \"cpus\" is missing");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 3);
	raw_str(&r, "ctl");
	raw_str(&r, "timeout");
	raw_str(&r, "ns");
	msgpack_pack_uint64(&r.pk, 1);
	raw_str(&r, "secs");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "control message \"timeout\" has no field \"secs\" (fields: ns)");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "done");
	raw_str(&r, "x");
	msgpack_pack_nil(&r.pk);
	expect_bad(&r, "\"done\" has no field \"x\" (fields: none)");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 3);
	raw_str(&r, "ctl");
	raw_str(&r, "timeout");
	raw_str(&r, "ns");
	msgpack_pack_uint64(&r.pk, 1);
	raw_str(&r, "ns");
	msgpack_pack_uint64(&r.pk, 2);
	expect_bad(&r, "field \"ns\" appears twice");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "timeout");
	raw_str(&r, "ns");
	raw_str(&r, "5s");
	expect_bad(&r, "field \"ns\" must be an unsigned integer, not str");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "fixture_wait");
	raw_str(&r, "waiting");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "field \"waiting\" must be a bool, not int");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 4);
	raw_str(&r, "ctl");
	raw_str(&r, "acquire");
	raw_str(&r, "memory_bytes");
	msgpack_pack_uint64(&r.pk, 1);
	raw_str(&r, "cpus");
	msgpack_pack_uint64(&r.pk, (uint64_t)UINT32_MAX + 1);
	raw_str(&r, "vms");
	msgpack_pack_uint64(&r.pk, 1);
	expect_bad(&r, "field \"cpus\" is 4294967296, at most 4294967295");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 4);
	raw_str(&r, "ctl");
	raw_str(&r, "acquire");
	raw_str(&r, "memory_bytes");
	msgpack_pack_uint64(&r.pk, 1);
	raw_str(&r, "cpus");
	msgpack_pack_uint64(&r.pk, 1);
	raw_str(&r, "vms");
	msgpack_pack_uint64(&r.pk, CTL_MAX_VMS + 1);
	expect_bad(&r, "field \"vms\" is 65, at most 64");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "acquired");
	raw_str(&r, "cids");
	msgpack_pack_array(&r.pk, 2);
	msgpack_pack_uint64(&r.pk, 3);
	raw_str(&r, "4");
	expect_bad(&r, "field \"cids\"[1] must be an unsigned integer up to 4294967295");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "plan");
	raw_str(&r, "tests");
	msgpack_pack_array(&r.pk, 1);
	msgpack_pack_array(&r.pk, 2);
	raw_str(&r, "t");
	msgpack_pack_array(&r.pk, 0);
	expect_bad(&r, "field \"tests\"[0]: the meta must be a map");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "plan");
	raw_str(&r, "tests");
	msgpack_pack_array(&r.pk, 1);
	raw_str(&r, "t");
	expect_bad(&r, "field \"tests\"[0] must be a [name, meta] pair");

	raw_init(&r);
	msgpack_pack_map(&r.pk, 1);
	raw_str(&r, "ctl");
	raw_str(&r, "done");
	msgpack_pack_nil(&r.pk);
	expect_bad(&r, "\"done\": 1 bytes after its map");

	/* a map cut short */
	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "timeout");
	raw_str(&r, "ns");
	expect_bad(&r, "");
}

static void test_cids_are_bounded_by_the_vm_cap(void **state)
{
	(void)state;
	/* cids are sent one per VM: the count is bounded like "vms" */
	struct raw r;
	raw_init(&r);
	msgpack_pack_map(&r.pk, 2);
	raw_str(&r, "ctl");
	raw_str(&r, "acquired");
	raw_str(&r, "cids");
	msgpack_pack_array(&r.pk, CTL_MAX_VMS + 1);
	for (int i = 0; i < CTL_MAX_VMS + 1; i++)
		msgpack_pack_uint64(&r.pk, 3);
	expect_bad(&r, "field \"cids\" has 65 elements, at most 64");
}

static void test_direction(void **state)
{
	(void)state;
	struct pv_buf b = PV_BUF_INIT;
	struct ctl_msg m;
	struct pv_err err;
	uint32_t len;
	const uint8_t *body;

	assert_int_equal(ctl_put_claim_ok(&b), 0);
	body = frame_body(&b, &len);
	assert_int_equal(ctl_parse_dir(body, len, CTL_TO_RUNNER, &m, &err), 0);
	assert_int_equal(ctl_parse_dir(body, len, CTL_TO_SCHED, &m, &err), -EBADMSG);
	assert_string_equal(err.msg, "control message \"claim_ok\" goes from the scheduler to the runner");
	pv_buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_start_round_trip),
		cmocka_unit_test(test_every_sender),
		cmocka_unit_test(test_builder_checked),
		cmocka_unit_test(test_decoder_rejects),
		cmocka_unit_test(test_is_ctl_map16),
		cmocka_unit_test(test_cids_are_bounded_by_the_vm_cap),
		cmocka_unit_test(test_direction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

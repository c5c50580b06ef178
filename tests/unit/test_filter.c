/* Unit tests of which tests run (src/runner/filter.c): the order of the
 * checks and their reasons, --rerun-failed's list, and --tag-meta's
 * comparison of meta values in their string form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "filter.h"

#define STR(k, val) { PV_STR(k), { .type = PV_META_STR, .v.s = PV_STR(val) } }

static struct pv_meta_value tag_items[] = {
	{ .type = PV_META_STR, .v.s = PV_STR("net") },
	{ .type = PV_META_STR, .v.s = PV_STR("disk") },
};
static struct pv_meta_value nested_items[] = { { .type = PV_META_INT, .v.i = 7 } };

static struct pv_meta_entry entries[] = {
	STR("owner", "net-team"),
	{ PV_STR("slow"), { .type = PV_META_BOOL, .v.b = true } },
	{ PV_STR("level"), { .type = PV_META_INT, .v.i = -2 } },
	{ PV_STR("ratio"), { .type = PV_META_FLOAT, .v.f = 2.0 } },
	{ PV_STR("half"), { .type = PV_META_FLOAT, .v.f = 0.5 } },
	{ PV_STR("tags"), { .type = PV_META_ARRAY, .v.array = { tag_items, 2 } } },
	{ PV_STR("raw"), { .type = PV_META_BIN, .v.s = { "a\xff", 2 } } },
	{ PV_STR("nothing"), { .type = PV_META_NIL } },
	{ PV_STR("map"), { .type = PV_META_MAP, .v.map = { NULL, 0 } } },
	{ PV_STR("nums"), { .type = PV_META_ARRAY, .v.array = { nested_items, 1 } } },
	STR("eq", "a=b"),
	STR("empty", ""),
};
static const struct pv_meta_map meta = { entries, sizeof(entries) / sizeof(entries[0]) };

static void test_meta_match(void **state)
{
	(void)state;
	assert_true(filter_meta_match(&meta, "owner=net-team"));
	assert_false(filter_meta_match(&meta, "owner=net"));
	assert_false(filter_meta_match(&meta, "owner=net-team "));
	assert_true(filter_meta_match(&meta, "slow=true"));
	assert_false(filter_meta_match(&meta, "slow=1"));
	assert_true(filter_meta_match(&meta, "level=-2"));
	/* floats as Lua prints them: 2.0 is not the integer 2 */
	assert_true(filter_meta_match(&meta, "ratio=2.0"));
	assert_false(filter_meta_match(&meta, "ratio=2"));
	assert_true(filter_meta_match(&meta, "half=0.5"));
	/* an array matches by any element */
	assert_true(filter_meta_match(&meta, "tags=disk"));
	assert_false(filter_meta_match(&meta, "tags=cpu"));
	assert_true(filter_meta_match(&meta, "nums=7"));
	assert_true(filter_meta_match(&meta, "raw=a\xff"));
	/* nil, maps and missing keys never match, not even an empty value */
	assert_false(filter_meta_match(&meta, "nothing="));
	assert_false(filter_meta_match(&meta, "nothing=nil"));
	assert_false(filter_meta_match(&meta, "map="));
	assert_false(filter_meta_match(&meta, "absent="));
	/* the value is everything after the first '=' */
	assert_true(filter_meta_match(&meta, "eq=a=b"));
	assert_true(filter_meta_match(&meta, "empty="));
	assert_false(filter_meta_match(&meta, "owner"));
	assert_false(filter_meta_match(NULL, "owner=net-team"));
}

static const char *why(const struct filter *f, const char *name, const struct pv_meta_map *m)
{
	static char buf[256];
	char *tags[] = { "net" };
	return filter_skip_reason(f, NULL, NULL, false, tags, 1, name, m, buf, sizeof(buf));
}

static void test_tag_meta(void **state)
{
	char *sel[] = { "owner=db", "level=-2" }, *none[] = { "tags=disk" };
	struct filter f = { .tag_meta = sel, .ntag_meta = 1 };
	const struct pv_meta_map empty = { NULL, 0 };
	(void)state;

	assert_string_equal(why(&f, "t", &meta), "filtered out by --tag-meta owner=db");
	f.ntag_meta = 2; /* any of them */
	assert_null(why(&f, "t", &meta));
	assert_string_equal(why(&f, "t", &empty), "filtered out by --tag-meta owner=db");
	f.no_tag_meta = none;
	f.nno_tag_meta = 1;
	assert_string_equal(why(&f, "t", &meta), "filtered out by --no-tag-meta tags=disk");
	f = (struct filter){ .no_tag_meta = none, .nno_tag_meta = 1 };
	assert_null(why(&f, "t", &empty));
}

static void test_only_and_order(void **state)
{
	char *only[] = { "b", "c" }, *tags[] = { "disk" }, buf[256];
	struct filter f = { .only = only, .nonly = 2 };
	(void)state;

	assert_null(why(&f, "b", &meta));
	assert_string_equal(why(&f, "a", &meta), "did not fail last time (--rerun-failed)");
	/* todo, skip and slow come first, --rerun-failed before the tags */
	assert_string_equal(filter_skip_reason(&f, "later", "no", true, NULL, 0, "b", &meta, buf, sizeof(buf)), "later");
	assert_string_equal(filter_skip_reason(&f, NULL, "no", true, NULL, 0, "b", &meta, buf, sizeof(buf)), "no");
	assert_string_equal(filter_skip_reason(&f, NULL, NULL, true, NULL, 0, "b", &meta, buf, sizeof(buf)),
			    "slow (run with --include-slow)");
	f.tags = tags;
	f.ntags = 1;
	assert_string_equal(why(&f, "a", &meta), "did not fail last time (--rerun-failed)");
	assert_string_equal(why(&f, "b", &meta), "filtered out by --tag disk");
	f.nonly = 0; /* none listed: every test */
	assert_string_equal(why(&f, "a", &meta), "filtered out by --tag disk");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_match),
		cmocka_unit_test(test_tag_meta),
		cmocka_unit_test(test_only_and_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

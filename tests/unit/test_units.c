/* Unit tests of duration and size parsing and their short printed forms. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "units.h"

#define MS UINT64_C(1000000)
#define S UINT64_C(1000000000)
#define KI UINT64_C(1024)
#define MI (KI * KI)
#define GI (MI * KI)
#define TI (GI * KI)

static void duration_ok(const char *s, uint64_t want)
{
	struct pv_err err = { 0 };
	uint64_t ns = 12345;

	if (pv_parse_duration(s, &ns, &err) != 0)
		fail_msg("\"%s\" rejected: %s", s, err.msg);
	if (ns != want)
		fail_msg("\"%s\" gave %llu ns, want %llu", s, (unsigned long long)ns,
			 (unsigned long long)want);
}

/* The message must quote the input, say why, and show the valid forms. */
static void duration_bad(const char *s, int want_rc, const char *why)
{
	struct pv_err err = { 0 };
	uint64_t ns = 777;
	char quoted[128];

	int rc = pv_parse_duration(s, &ns, &err);
	if (rc != want_rc)
		fail_msg("\"%s\": rc %d, want %d", s, rc, want_rc);
	assert_int_equal(ns, 777); /* untouched on failure */
	snprintf(quoted, sizeof(quoted), "\"%s\"", s);
	if (!strstr(err.msg, quoted) || !strstr(err.msg, why) || !strstr(err.msg, "\"500ms\""))
		fail_msg("\"%s\": message lacks the input, \"%s\" or the examples: %s", s, why, err.msg);
}

static void size_ok(const char *s, uint64_t want)
{
	struct pv_err err = { 0 };
	uint64_t b = 12345;

	if (pv_parse_size(s, &b, &err) != 0)
		fail_msg("\"%s\" rejected: %s", s, err.msg);
	if (b != want)
		fail_msg("\"%s\" gave %llu bytes, want %llu", s, (unsigned long long)b,
			 (unsigned long long)want);
}

static void size_bad(const char *s, int want_rc, const char *why)
{
	struct pv_err err = { 0 };
	uint64_t b = 777;
	char quoted[128];

	int rc = pv_parse_size(s, &b, &err);
	if (rc != want_rc)
		fail_msg("\"%s\": rc %d, want %d", s, rc, want_rc);
	assert_int_equal(b, 777);
	snprintf(quoted, sizeof(quoted), "\"%s\"", s);
	if (!strstr(err.msg, quoted) || !strstr(err.msg, why) || !strstr(err.msg, "\"512M\""))
		fail_msg("\"%s\": message lacks the input, \"%s\" or the examples: %s", s, why, err.msg);
}

static void test_duration_units(void **state)
{
	(void)state;
	duration_ok("500ms", 500 * MS);
	duration_ok("5s", 5 * S);
	duration_ok("5m", 300 * S);
	duration_ok("2h", 7200 * S);
	duration_ok("0s", 0);
	duration_ok("0ms", 0);
	/* a bare number is seconds, as for a Lua number */
	duration_ok("30", 30 * S);
	duration_ok("0", 0);
}

static void test_duration_fractions(void **state)
{
	(void)state;
	duration_ok("1.5s", 1500 * MS);
	duration_ok("0.1s", 100 * MS); /* exact, not 99999999 */
	duration_ok("0.3s", 300 * MS);
	duration_ok(".5s", 500 * MS);
	duration_ok("5.s", 5 * S);
	duration_ok("1.5m", 90 * S);
	duration_ok("0.5h", 1800 * S);
	duration_ok("2.5ms", 2500000);
	duration_ok("0.0000006ms", 1); /* to the nearest ns */
	duration_ok("0.0000004ms", 0);
	duration_ok("1.0000000001s", S);
	/* digits far past what matters are accepted and ignored */
	duration_ok("1.00000000000000000000000000009s", S);
}

static void test_duration_limits(void **state)
{
	(void)state;
	/* UINT64_MAX ns = 18446744073.709551615 s */
	duration_ok("18446744073s", 18446744073 * S);
	duration_ok("18446744073.709551615s", UINT64_MAX);
	duration_bad("18446744073.709551616s", -ERANGE, "too large");
	duration_bad("18446744074s", -ERANGE, "too large");
	duration_bad("5124096h", -ERANGE, "too large");
	duration_bad("99999999999999999999999s", -ERANGE, "too large");
}

static void test_duration_rejects(void **state)
{
	(void)state;
	duration_bad("", -EINVAL, "empty");
	duration_bad("5x", -EINVAL, "unknown unit \"x\"");
	duration_bad("5S", -EINVAL, "unknown unit \"S\"");
	duration_bad("5sec", -EINVAL, "unknown unit \"sec\"");
	duration_bad("5ms5", -EINVAL, "unknown unit");
	duration_bad("1.5.5s", -EINVAL, "unknown unit");
	duration_bad("1e3s", -EINVAL, "unknown unit");
	duration_bad("0x10s", -EINVAL, "unknown unit");
	duration_bad("-5s", -EINVAL, "negative");
	duration_bad("-0", -EINVAL, "negative");
	duration_bad("+5s", -EINVAL, "start with a number");
	duration_bad("s", -EINVAL, "start with a number");
	duration_bad(".s", -EINVAL, "start with a number");
	duration_bad("nan", -EINVAL, "start with a number");
	duration_bad("inf", -EINVAL, "start with a number");
	duration_bad(" 5s", -EINVAL, "spaces");
	duration_bad("5 s", -EINVAL, "spaces");
	duration_bad("5s ", -EINVAL, "spaces");
}

static void test_duration_null_and_hostile_input(void **state)
{
	(void)state;
	struct pv_err err;
	uint64_t ns;
	char longs[300];

	assert_int_equal(pv_parse_duration(NULL, &ns, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty"));
	/* a NULL err is allowed */
	assert_int_equal(pv_parse_duration("zz", &ns, NULL), -EINVAL);
	/* control bytes are escaped, long input shortened */
	assert_int_equal(pv_parse_duration("5\x1b[2Js", &ns, &err), -EINVAL);
	assert_null(strchr(err.msg, '\x1b'));
	assert_non_null(strstr(err.msg, "\\x1b"));
	memset(longs, 'x', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = 0;
	assert_int_equal(pv_parse_duration(longs, &ns, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "...\""));
	assert_non_null(strstr(err.msg, "\"500ms\"")); /* the hint survives */
}

static void test_duration_from_seconds(void **state)
{
	(void)state;
	struct pv_err err;
	uint64_t ns = 0;

	assert_int_equal(pv_duration_from_seconds(1.5, &ns, &err), 0);
	assert_int_equal(ns, 1500 * MS);
	assert_int_equal(pv_duration_from_seconds(0, &ns, &err), 0);
	assert_int_equal(ns, 0);
	assert_int_equal(pv_duration_from_seconds(300, &ns, &err), 0);
	assert_int_equal(ns, 300 * S);
	assert_int_equal(pv_duration_from_seconds(0.1, &ns, &err), 0);
	assert_int_equal(ns, 100 * MS);

	ns = 9;
	assert_int_equal(pv_duration_from_seconds(-1, &ns, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-1"));
	assert_non_null(strstr(err.msg, "negative"));
	assert_non_null(strstr(err.msg, "\"5m\""));
	assert_int_equal(pv_duration_from_seconds(NAN, &ns, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "finite"));
	assert_int_equal(pv_duration_from_seconds(INFINITY, &ns, &err), -EINVAL);
	assert_int_equal(pv_duration_from_seconds(-INFINITY, &ns, &err), -EINVAL);
	assert_int_equal(pv_duration_from_seconds(1.9e10, &ns, &err), -ERANGE);
	assert_non_null(strstr(err.msg, "too large"));
	assert_int_equal(ns, 9);
}

static void test_size_units(void **state)
{
	(void)state;
	size_ok("0", 0);
	size_ok("512", 512);
	size_ok("10B", 10);
	size_ok("10b", 10);
	size_ok("1K", KI);
	size_ok("1k", KI);
	size_ok("1KB", KI);
	size_ok("1kb", KI);
	size_ok("1KiB", KI);
	size_ok("1kib", KI);
	size_ok("1KIB", KI);
	size_ok("1Ki", KI);
	size_ok("512M", 512 * MI);
	size_ok("512MiB", 512 * MI);
	size_ok("2G", 2 * GI);
	size_ok("2gb", 2 * GI);
	size_ok("1T", TI);
	size_ok("1TiB", TI);
	size_ok("1.5G", 3 * GI / 2);
	size_ok(".5K", 512);
	size_ok("1.3K", 1331); /* 1331.2 rounds to the nearest byte */
	size_ok("0.5B", 1);
}

static void test_size_limits(void **state)
{
	(void)state;
	size_ok("18446744073709551615", UINT64_MAX);
	size_bad("18446744073709551616", -ERANGE, "too large");
	size_ok("16777215T", 16777215 * TI);
	size_bad("16777216T", -ERANGE, "too large");
	size_bad("99999999999999999999999G", -ERANGE, "too large");
	size_ok("16777215.5T", 16777215 * TI + TI / 2);
}

static void test_size_rejects(void **state)
{
	(void)state;
	size_bad("", -EINVAL, "empty");
	size_bad("1X", -EINVAL, "unknown unit \"X\"");
	size_bad("1P", -EINVAL, "unknown unit \"P\"");
	size_bad("1KK", -EINVAL, "unknown unit \"KK\"");
	size_bad("1iB", -EINVAL, "unknown unit \"iB\"");
	size_bad("1KBB", -EINVAL, "unknown unit");
	size_bad("1.5.5G", -EINVAL, "unknown unit");
	size_bad("1e9", -EINVAL, "unknown unit");
	size_bad("-1K", -EINVAL, "negative");
	size_bad("K", -EINVAL, "start with a number");
	size_bad("G1", -EINVAL, "start with a number");
	size_bad("1 G", -EINVAL, "spaces");
	size_bad("nan", -EINVAL, "start with a number");
}

static void test_size_from_number(void **state)
{
	(void)state;
	struct pv_err err;
	uint64_t b = 0;

	assert_int_equal(pv_size_from_number(1024, &b, &err), 0);
	assert_int_equal(b, KI);
	assert_int_equal(pv_size_from_number(0, &b, &err), 0);
	assert_int_equal(b, 0);
	assert_int_equal(pv_size_from_number(1.4, &b, &err), 0);
	assert_int_equal(b, 1);
	assert_int_equal(pv_size_from_number(4.0 * GI, &b, &err), 0);
	assert_int_equal(b, 4 * GI);
	/* the largest double below 2^64 */
	assert_int_equal(pv_size_from_number(18446744073709549568.0, &b, &err), 0);
	assert_int_equal(b, UINT64_C(18446744073709549568));

	b = 9;
	assert_int_equal(pv_size_from_number(-1, &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "negative"));
	assert_non_null(strstr(err.msg, "\"512M\""));
	assert_int_equal(pv_size_from_number(NAN, &b, &err), -EINVAL);
	assert_int_equal(pv_size_from_number(INFINITY, &b, &err), -EINVAL);
	assert_int_equal(pv_size_from_number(18446744073709551616.0, &b, &err), -ERANGE);
	assert_int_equal(pv_size_from_number(1e30, &b, &err), -ERANGE);
	assert_int_equal(b, 9);
}

static void check_duration_format(uint64_t ns, const char *want)
{
	char buf[32];
	const char *got = pv_format_duration(ns, buf);
	assert_ptr_equal(got, buf);
	if (strcmp(got, want) != 0)
		fail_msg("%llu ns printed as \"%s\", want \"%s\"", (unsigned long long)ns, got, want);
}

static void check_size_format(uint64_t b, const char *want)
{
	char buf[32];
	const char *got = pv_format_size(b, buf);
	assert_ptr_equal(got, buf);
	if (strcmp(got, want) != 0)
		fail_msg("%llu bytes printed as \"%s\", want \"%s\"", (unsigned long long)b, got, want);
}

static void test_format_duration(void **state)
{
	(void)state;
	check_duration_format(0, "0ns");
	check_duration_format(999, "999ns");
	check_duration_format(1000, "1us");
	check_duration_format(1500, "1.5us");
	check_duration_format(999949, "999.9us");
	check_duration_format(999950, "1ms"); /* rounds up into the next unit */
	check_duration_format(500 * MS, "500ms");
	check_duration_format(1500 * MS / 1000, "1.5ms");
	check_duration_format(S, "1s");
	check_duration_format(1500 * MS, "1.5s");
	check_duration_format(59949 * MS, "59.9s");
	check_duration_format(59950 * MS, "1m");
	check_duration_format(90 * S, "1m30s");
	check_duration_format(300 * S, "5m");
	check_duration_format(3599 * S, "59m59s");
	check_duration_format(3600 * S, "1h");
	check_duration_format(7200 * S, "2h");
	check_duration_format(7500 * S, "2h5m");
	check_duration_format(UINT64_MAX, "5124095h35m");
}

static void test_format_size(void **state)
{
	(void)state;
	check_size_format(0, "0B");
	check_size_format(1023, "1023B");
	check_size_format(KI, "1KiB");
	check_size_format(1536, "1.5KiB");
	check_size_format(MI - 1, "1MiB");
	check_size_format(512 * MI, "512MiB");
	check_size_format(3 * GI / 2, "1.5GiB");
	check_size_format(20 * GI, "20GiB");
	check_size_format(TI, "1TiB");
	check_size_format(1024 * TI, "1PiB");
	check_size_format(UINT64_MAX, "16EiB");
}

/* What is printed for a size reads back as the same size when exact. */
static void test_size_round_trip(void **state)
{
	(void)state;
	const uint64_t values[] = { 0, 1, 1023, KI, 1536, 512 * MI, 3 * GI / 2, 20 * GI, 7 * TI };
	char buf[32];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		size_ok(pv_format_size(values[i], buf), values[i]);
}

static void test_duration_round_trip(void **state)
{
	(void)state;
	const uint64_t values[] = { 0, 1500, 500 * MS, 1500 * MS, 5 * S, 300 * S, 7200 * S };
	char buf[32];

	/* "us" and "ns" are not accepted units; these are all ms or above */
	for (size_t i = 2; i < sizeof(values) / sizeof(values[0]); i++)
		duration_ok(pv_format_duration(values[i], buf), values[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_fractions),
		cmocka_unit_test(test_duration_limits),
		cmocka_unit_test(test_duration_rejects),
		cmocka_unit_test(test_duration_null_and_hostile_input),
		cmocka_unit_test(test_duration_from_seconds),
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_size_rejects),
		cmocka_unit_test(test_size_from_number),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_size_round_trip),
		cmocka_unit_test(test_duration_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

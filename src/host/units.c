/* units.c - durations and sizes: parsing what users write, printing short forms.
 *
 * Numbers in strings are parsed by hand rather than with strtod: the grammar
 * we accept is tiny (digits, an optional fraction), hand parsing keeps whole
 * numbers exact up to UINT64_MAX, and it does not depend on the process
 * locale's decimal point (strtod would reject "1.5" under a "1,5" locale).
 */
#include "units.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define DURATION_HINT "use a number of seconds or a string like \"500ms\", \"5s\", \"5m\", \"2h\""
#define SIZE_HINT                                                                                  \
	"use a number of bytes or a string like \"512M\", \"2G\" (units K, M, G, T; 1K = 1024)"

#define NS_PER_S UINT64_C(1000000000)
/* 2^64 as a double: the first value that no longer fits in a uint64_t. */
#define TWO_POW_64 18446744073709551616.0

const char *pv_quote(const char *s, size_t len, char *buf, size_t size)
{
	size_t o = 0, i;
	const size_t max_in = 48;

	buf[o++] = '"';
	for (i = 0; i < len && i < max_in && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

/* A non-negative decimal number as written: whole part exactly, fraction as
 * frac_num / frac_den. */
struct decimal {
	uint64_t whole;
	uint64_t frac_num;
	uint64_t frac_den;
};

enum { DEC_NONE = 0, DEC_OVERFLOW = -1 };

/* Parses digits ['.' digits] (at least one digit in all) at the start of s.
 * Returns the number of characters used, DEC_NONE when s does not start with
 * a number, or DEC_OVERFLOW when the whole part does not fit in 64 bits. */
static long parse_decimal(const char *s, struct decimal *d)
{
	const char *p = s;
	bool digits = false;

	d->whole = 0;
	d->frac_num = 0;
	d->frac_den = 1;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned v = (unsigned)(*p - '0');
		if (d->whole > (UINT64_MAX - v) / 10)
			return DEC_OVERFLOW;
		d->whole = d->whole * 10 + v;
		digits = true;
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++) {
			/* Digits past the 18th change the result by less than
			 * 1e-18 of a unit: below one ns even for hours. */
			if (d->frac_den < UINT64_C(1000000000000000000)) {
				d->frac_num = d->frac_num * 10 + (unsigned)(*p - '0');
				d->frac_den *= 10;
			}
			digits = true;
		}
	}
	return digits ? (long)(p - s) : DEC_NONE;
}

/* d * mult rounded to the nearest integer; false on overflow. */
static bool scale(const struct decimal *d, uint64_t mult, uint64_t *ret)
{
	uint64_t whole, frac;

	if (mult && d->whole > UINT64_MAX / mult)
		return false;
	whole = d->whole * mult;
	/* frac_num / frac_den < 1, so this is < mult and cannot overflow; a
	 * double's 53 bits are far more than the rounding needs. */
	frac = (uint64_t)((double)d->frac_num / (double)d->frac_den * (double)mult + 0.5);
	if (whole > UINT64_MAX - frac)
		return false;
	*ret = whole + frac;
	return true;
}

/* Why a string that is not "<number><unit>" was rejected, for messages. */
static const char *shape_problem(const char *s, long n)
{
	if (!*s)
		return "it is empty";
	if (s[0] == '-')
		return "it must not be negative";
	if (strpbrk(s, " \t\n\r\f\v"))
		return "it must not contain spaces";
	if (n == DEC_NONE)
		return "it must start with a number";
	return NULL;
}

int pv_parse_duration(const char *s, uint64_t *ret_ns, struct pv_err *err)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = {
		{ "", NS_PER_S }, /* a bare number, as for Lua numbers: seconds */
		{ "ms", UINT64_C(1000000) },
		{ "s", NS_PER_S },
		{ "m", 60 * NS_PER_S },
		{ "h", 3600 * NS_PER_S },
	};
	struct decimal d;
	char q[80], uq[80];
	const char *problem;
	long n;

	if (!s)
		s = "";
	n = parse_decimal(s, &d);
	problem = shape_problem(s, n);
	if (problem)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad duration %s: %s; " DURATION_HINT,
				  pv_quote(s, strlen(s), q, sizeof(q)), problem);
	if (n == DEC_OVERFLOW)
		goto too_large;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + n, units[i].name) == 0) {
			if (!scale(&d, units[i].ns, ret_ns))
				goto too_large;
			return 0;
		}
	}
	return pv_err_set(err, -EINVAL, SIZE_MAX, "bad duration %s: unknown unit %s; " DURATION_HINT,
			  pv_quote(s, strlen(s), q, sizeof(q)), pv_quote(s + n, strlen(s + n), uq, sizeof(uq)));
too_large:
	return pv_err_set(err, -ERANGE, SIZE_MAX,
			  "bad duration %s: too large (the limit is about 584 years); " DURATION_HINT,
			  pv_quote(s, strlen(s), q, sizeof(q)));
}

/* The multiplier for a size unit: "", "B", or K/M/G/T with an optional "i"
 * and an optional "B", letters in any case. 0 when unknown. */
static uint64_t size_unit(const char *u)
{
	static const char letters[] = "kmgt";
	unsigned shift = 0;
	const char *l;

	if (*u && (l = strchr(letters, *u | 0x20)) != NULL) {
		shift = 10 * (unsigned)(l - letters + 1);
		u++;
		if (*u == 'i' || *u == 'I')
			u++;
	}
	if (*u == 'b' || *u == 'B')
		u++;
	return *u ? 0 : UINT64_C(1) << shift;
}

int pv_parse_size(const char *s, uint64_t *ret_bytes, struct pv_err *err)
{
	struct decimal d;
	char q[80], uq[80];
	const char *problem;
	uint64_t mult;
	long n;

	if (!s)
		s = "";
	n = parse_decimal(s, &d);
	problem = shape_problem(s, n);
	if (problem)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad size %s: %s; " SIZE_HINT,
				  pv_quote(s, strlen(s), q, sizeof(q)), problem);
	if (n == DEC_OVERFLOW)
		goto too_large;
	mult = size_unit(s + n);
	if (!mult)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad size %s: unknown unit %s; " SIZE_HINT,
				  pv_quote(s, strlen(s), q, sizeof(q)), pv_quote(s + n, strlen(s + n), uq, sizeof(uq)));
	if (!scale(&d, mult, ret_bytes))
		goto too_large;
	return 0;
too_large:
	return pv_err_set(err, -ERANGE, SIZE_MAX, "bad size %s: too large (the limit is 16 EiB); " SIZE_HINT,
			  pv_quote(s, strlen(s), q, sizeof(q)));
}

/* Shared checks of the number forms: v is the value already multiplied into
 * the target unit; shown is what the user wrote, for the message. */
static int from_double(double shown, double v, const char *what, const char *hint, uint64_t *ret,
		       struct pv_err *err)
{
	if (isnan(shown) || isinf(shown))
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad %s %.14g: not a finite number; %s", what,
				  shown, hint);
	if (shown < 0)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad %s %.14g: it must not be negative; %s",
				  what, shown, hint);
	if (!(v + 0.5 < TWO_POW_64))
		return pv_err_set(err, -ERANGE, SIZE_MAX, "bad %s %.14g: too large; %s", what, shown, hint);
	*ret = (uint64_t)(v + 0.5);
	return 0;
}

int pv_duration_from_seconds(double secs, uint64_t *ret_ns, struct pv_err *err)
{
	return from_double(secs, secs * (double)NS_PER_S, "duration", DURATION_HINT, ret_ns, err);
}

int pv_size_from_number(double n, uint64_t *ret_bytes, struct pv_err *err)
{
	return from_double(n, n, "size", SIZE_HINT, ret_bytes, err);
}

/* a / b rounded half up (b < 2^63). */
static uint64_t div_round(uint64_t a, uint64_t b)
{
	return a / b + ((a % b) * 2 >= b);
}

/* "12.3<unit>" from a count of tenths, dropping a ".0". */
static const char *tenths(uint64_t t, const char *unit, char buf[32])
{
	if (t % 10)
		snprintf(buf, 32, "%llu.%llu%s", (unsigned long long)(t / 10),
			 (unsigned long long)(t % 10), unit);
	else
		snprintf(buf, 32, "%llu%s", (unsigned long long)(t / 10), unit);
	return buf;
}

const char *pv_format_duration(uint64_t ns, char buf[32])
{
	uint64_t t;

	if (ns < 1000) {
		snprintf(buf, 32, "%lluns", (unsigned long long)ns);
		return buf;
	}
	/* Each step rounds to a tenth of its unit; a value that rounds up to
	 * the next unit's size moves on to it ("999.96ms" is "1s"). */
	if ((t = div_round(ns, 100)) < 10000)
		return tenths(t, "us", buf);
	if ((t = div_round(ns, 100000)) < 10000)
		return tenths(t, "ms", buf);
	if ((t = div_round(ns, NS_PER_S / 10)) < 600)
		return tenths(t, "s", buf);
	if ((t = div_round(ns, NS_PER_S)) < 3600) {
		if (t % 60)
			snprintf(buf, 32, "%llum%llus", (unsigned long long)(t / 60),
				 (unsigned long long)(t % 60));
		else
			snprintf(buf, 32, "%llum", (unsigned long long)(t / 60));
		return buf;
	}
	t = div_round(ns, 60 * NS_PER_S);
	if (t % 60)
		snprintf(buf, 32, "%lluh%llum", (unsigned long long)(t / 60), (unsigned long long)(t % 60));
	else
		snprintf(buf, 32, "%lluh", (unsigned long long)(t / 60));
	return buf;
}

const char *pv_format_size(uint64_t bytes, char buf[32])
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

	if (bytes < 1024) {
		snprintf(buf, 32, "%lluB", (unsigned long long)bytes);
		return buf;
	}
	for (unsigned i = 0;; i++) {
		unsigned shift = 10 * (i + 1);
		uint64_t unit = UINT64_C(1) << shift;
		/* rem * 10 < 10 * 2^60 fits; whole * 10 < 2^64 / 2^10 * 10 fits */
		uint64_t rem = bytes & (unit - 1);
		uint64_t t = (bytes >> shift) * 10 + div_round(rem * 10, unit);
		if (t < 10240 || i == 5)
			return tenths(t, names[i], buf);
	}
}

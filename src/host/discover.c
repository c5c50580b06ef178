/* discover.c - finding test files and reading their declarations statically.
 *
 * The walk reads one directory at a time (its subdirectories are visited
 * after it is closed), so a deep tree never holds more than one descriptor.
 * Ordering is done afterwards per root on the whole relative path: sorting
 * each directory's entries and recursing would not give byte order of the
 * path ("a/b" sorts after "a.b" as '/' > '.').
 *
 * The static scan is a small Lua tokenizer plus a block stack; it never fails
 * on malformed source (the runner reports syntax errors far better), only on
 * a literal claim whose value is plainly wrong.
 */
#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpr.h"
#include "sys.h"
#include "units.h"

#define TEST_SUFFIX ".test.lua"
#define FIXTURE_SUFFIX ".fixture.lua"

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Grows the array that arr points to (a pointer to T *, elements of size
 * elem) so that it can hold n + 1. The pointer is moved with memcpy since it
 * is a T *, not a void *. */
static int grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p, *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	memcpy(&p, arr, sizeof(p));
	np = realloc(p, ncap * elem);
	if (!np)
		return -ENOMEM;
	memcpy(arr, &np, sizeof(np));
	*cap = ncap;
	return 0;
}

char *pv_escape_name(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;

	if (!outlen)
		return out;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = 1;
		char esc[8];
		const char *put;
		size_t plen;

		/* the shortest prefix that is one valid sequence is the character */
		while (n <= 4 && i + n <= len && !pv_utf8_valid((const uint8_t *)s + i, n))
			n++;
		if (n > 4 || i + n > len || c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			put = esc;
			plen = 4;
			n = 1;
		} else if (c == '\\') {
			put = "\\\\";
			plen = 2;
		} else {
			put = s + i;
			plen = n;
		}
		if (o + plen >= outlen)
			break;
		memcpy(out + o, put, plen);
		o += plen;
		i += n;
	}
	out[o] = 0;
	return out;
}

/* ---- the tokenizer ---- */

enum tok_type { T_EOF, T_NAME, T_NUMBER, T_STRING, T_PUNCT };

struct tok {
	enum tok_type type;
	size_t start, end;   /* the whole token in the source */
	size_t cstart, cend; /* T_STRING: the content between the delimiters */
	bool long_string;    /* content is raw: no escapes */
};

struct lexer {
	const char *s;
	size_t len, pos;
};

static int at(const struct lexer *lx, size_t i)
{
	return i < lx->len ? (unsigned char)lx->s[i] : -1;
}

static bool is_name_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(int c)
{
	return is_name_start(c) || is_digit(c);
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The level of a long bracket "[==[" opening at i, or -1 if there is none. */
static long long_open_level(const struct lexer *lx, size_t i)
{
	size_t j = i + 1;

	if (at(lx, i) != '[')
		return -1;
	while (at(lx, j) == '=')
		j++;
	return at(lx, j) == '[' ? (long)(j - i - 1) : -1;
}

/* From just after an opening long bracket of the given level, finds the
 * closing one. Sets *content_end to where it starts and returns the position
 * after it (the end of the source when unclosed). */
static size_t long_close(const struct lexer *lx, size_t i, long level, size_t *content_end)
{
	for (; i < lx->len; i++) {
		if (lx->s[i] != ']')
			continue;
		size_t j = i + 1;
		while (at(lx, j) == '=')
			j++;
		if (at(lx, j) == ']' && (long)(j - i - 1) == level) {
			*content_end = i;
			return j + 1;
		}
	}
	*content_end = lx->len;
	return lx->len;
}

static void next_token(struct lexer *lx, struct tok *t)
{
	static const char *const multi[] = { "...", "..", "::", "==", "~=", "<=", ">=", "//", "<<", ">>" };
	size_t p = lx->pos, dummy;
	long level;
	int c;

	/* whitespace and comments */
	for (;;) {
		c = at(lx, p);
		if (is_space(c)) {
			p++;
		} else if (c == '-' && at(lx, p + 1) == '-') {
			p += 2;
			if ((level = long_open_level(lx, p)) >= 0) {
				p = long_close(lx, p + (size_t)level + 2, level, &dummy);
			} else {
				while (p < lx->len && lx->s[p] != '\n')
					p++;
			}
		} else {
			break;
		}
	}
	memset(t, 0, sizeof(*t));
	t->start = p;
	if (c < 0) {
		t->type = T_EOF;
	} else if (is_name_start(c)) {
		while (is_name_char(at(lx, p)))
			p++;
		t->type = T_NAME;
	} else if (is_digit(c) || (c == '.' && is_digit(at(lx, p + 1)))) {
		/* like Lua's read_numeral: alphanumerics and dots, plus a sign
		 * right after an exponent mark */
		const char *expo = "Ee";
		if (c == '0' && (at(lx, p + 1) == 'x' || at(lx, p + 1) == 'X'))
			expo = "Pp";
		for (;;) {
			c = at(lx, p);
			if (c > 0 && strchr(expo, c) && (at(lx, p + 1) == '+' || at(lx, p + 1) == '-'))
				p += 2;
			else if (is_name_char(c) || c == '.')
				p++;
			else
				break;
		}
		t->type = T_NUMBER;
	} else if (c == '"' || c == '\'') {
		int q = c;
		t->type = T_STRING;
		t->cstart = ++p;
		/* an unescaped newline or the end of the source ends an
		 * unfinished string; Lua would reject it, we just move on */
		while (p < lx->len && (c = at(lx, p)) != q && c != '\n') {
			p++;
			if (c != '\\' || p >= lx->len)
				continue;
			c = at(lx, p++);
			if (c == 'z') {
				/* \z skips whitespace, line breaks included */
				while (p < lx->len && is_space(at(lx, p)))
					p++;
			} else if ((c == '\n' || c == '\r') && (at(lx, p) == '\n' || at(lx, p) == '\r') &&
				   at(lx, p) != c) {
				p++; /* an escaped \r\n is one line break */
			}
		}
		t->cend = p;
		if (at(lx, p) == q)
			p++;
	} else if ((level = long_open_level(lx, p)) >= 0) {
		t->type = T_STRING;
		t->long_string = true;
		t->cstart = p + (size_t)level + 2;
		p = long_close(lx, t->cstart, level, &t->cend);
	} else {
		size_t n = 1;
		for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++) {
			size_t l = strlen(multi[i]);
			if (lx->len - p >= l && memcmp(lx->s + p, multi[i], l) == 0) {
				n = l;
				break;
			}
		}
		p += n;
		t->type = T_PUNCT;
	}
	t->end = p;
	lx->pos = p;
}

static bool tok_is(const struct lexer *lx, const struct tok *t, enum tok_type type, const char *text)
{
	size_t n = strlen(text);
	return t->type == type && t->end - t->start == n && memcmp(lx->s + t->start, text, n) == 0;
}

static bool is_punct(const struct lexer *lx, const struct tok *t, const char *text)
{
	return tok_is(lx, t, T_PUNCT, text);
}

static bool is_name(const struct lexer *lx, const struct tok *t, const char *text)
{
	return tok_is(lx, t, T_NAME, text);
}

static int hexval(int c)
{
	if (is_digit(c))
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends code point cp (< 2^31, as Lua allows) as UTF-8. */
static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	/* the number of continuation bytes and the lead byte's marker */
	size_t n = cp < 0x800 ? 1 : cp < 0x10000 ? 2 : cp < 0x200000 ? 3 : cp < 0x4000000 ? 4 : 5;
	static const unsigned char lead[] = { 0, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc };
	for (size_t i = n; i > 0; i--) {
		o[i] = (char)(0x80 | (cp & 0x3f));
		cp >>= 6;
	}
	o[0] = (char)(lead[n] | cp);
	return n + 1;
}

/* The value of a string token, malloc'd and NUL-terminated; *len excludes
 * the NUL (the value itself may contain NULs). Short strings have their
 * escapes decoded, which never makes them longer than the source text;
 * unknown escapes are kept as written. NULL when out of memory. */
static char *string_value(const struct lexer *lx, const struct tok *t, size_t *len)
{
	const char *s = lx->s;
	size_t i = t->cstart, e = t->cend, o = 0;
	char *out = malloc(e - i + 1);

	if (!out)
		return NULL;
	if (t->long_string) {
		/* Lua drops a newline right after the opening bracket */
		if (i < e && (s[i] == '\r' || s[i] == '\n')) {
			i++;
			if (i < e && (s[i] == '\r' || s[i] == '\n') && s[i] != s[i - 1])
				i++;
		}
		memcpy(out, s + i, e - i);
		o = e - i;
		goto done;
	}
	while (i < e) {
		int c = (unsigned char)s[i++];
		if (c != '\\' || i >= e) {
			out[o++] = (char)c;
			continue;
		}
		c = (unsigned char)s[i++];
		switch (c) {
		case 'a': out[o++] = '\a'; break;
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'v': out[o++] = '\v'; break;
		case '\n': case '\r': /* an escaped line break is a newline */
			out[o++] = '\n';
			if (i < e && (s[i] == '\n' || s[i] == '\r') && s[i] != c)
				i++;
			break;
		case 'z': /* skips the whitespace that follows */
			while (i < e && is_space((unsigned char)s[i]))
				i++;
			break;
		case 'x':
			if (i + 1 < e && hexval(s[i]) >= 0 && hexval(s[i + 1]) >= 0) {
				out[o++] = (char)(hexval(s[i]) * 16 + hexval(s[i + 1]));
				i += 2;
			} else {
				out[o++] = '\\';
				out[o++] = 'x';
			}
			break;
		case 'u': {
			size_t j = i + 1;
			unsigned long cp = 0;
			if (i < e && s[i] == '{') {
				while (j < e && hexval(s[j]) >= 0 && cp < 0x80000000UL)
					cp = cp * 16 + (unsigned long)hexval(s[j++]);
			}
			if (j > i + 1 && j < e && s[j] == '}' && cp < 0x80000000UL) {
				o += put_utf8(out + o, cp);
				i = j + 1;
			} else {
				out[o++] = '\\';
				out[o++] = 'u';
			}
			break;
		}
		default:
			if (is_digit(c)) {
				unsigned v = (unsigned)(c - '0');
				for (int k = 0; k < 2 && i < e && is_digit(s[i]); k++)
					v = v * 10 + (unsigned)(s[i++] - '0');
				out[o++] = (char)v;
			} else {
				/* \\ \" \' and anything Lua would reject */
				out[o++] = (char)c;
			}
		}
	}
done:
	out[o] = 0;
	*len = o;
	return out;
}

/* ---- the scan ---- */

struct scan {
	struct lexer lx;
	struct pv_test_file *f;
	struct pv_err *err;
	/* block stack: 'f' for a function body, 'b' for do/if/repeat */
	char *blocks;
	size_t nblocks, cap_blocks, fdepth;
	size_t cap_refs, cap_reqs;
	unsigned nclaims; /* calls of provium:claim at file scope */
	bool claim_literal;
	struct pv_resource claim;
};

static unsigned line_of(const struct lexer *lx, size_t off)
{
	unsigned line = 1;
	for (size_t i = 0; i < off && i < lx->len; i++)
		line += lx->s[i] == '\n';
	return line;
}

static int push_block(struct scan *sc, char kind)
{
	if (grow(&sc->blocks, &sc->cap_blocks, sc->nblocks, 1) < 0)
		return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
	sc->blocks[sc->nblocks++] = kind;
	if (kind == 'f')
		sc->fdepth++;
	return 0;
}

static void pop_block(struct scan *sc)
{
	/* an unbalanced "end" is a syntax error for Lua; ignore it here */
	if (sc->nblocks && sc->blocks[--sc->nblocks] == 'f')
		sc->fdepth--;
}

/* Records a fixture reference (or, with req, a required module) from string
 * token t, unless already seen. */
static int add_ref(struct scan *sc, const struct tok *t, bool req)
{
	struct pv_test_file *f = sc->f;
	char ***list = req ? &f->requires : &f->fixture_refs;
	size_t *n = req ? &f->nrequires : &f->nfixture_refs;
	size_t len;
	char *v = string_value(&sc->lx, t, &len);

	if (!v)
		return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
	/* a NUL inside cannot be a file name, nor be represented here */
	if (strlen(v) != len || !len)
		goto drop;
	if (!req && !pv_utf8_valid((const uint8_t *)v, len)) {
		char shown[256];
		pv_escape_name(v, len, shown, sizeof(shown));
		free(v);
		return pv_err_set(sc->err, -EILSEQ, t->start,
				  "line %u: fixture name \"%s\" is not valid UTF-8 (events carry fixture names as UTF-8 text)",
				  line_of(&sc->lx, t->start), shown);
	}
	if (!req && len > strlen(FIXTURE_SUFFIX) && ends_with(v, FIXTURE_SUFFIX))
		v[len - strlen(FIXTURE_SUFFIX)] = 0;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], v) == 0)
			goto drop;
	if (grow(list, req ? &sc->cap_reqs : &sc->cap_refs, *n, sizeof(char *)) < 0) {
		free(v);
		return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	(*list)[(*n)++] = v;
	return 0;
drop:
	free(v);
	return 0;
}

/* After vm_fixture / lab_fixture (or require): a literal first argument is a
 * reference, as in  name "x"  name [[x]]  name("x")  name("x", opts). */
static int fixture_call(struct scan *sc, bool req)
{
	struct lexer la = sc->lx;
	struct tok a, b, c;

	next_token(&la, &a);
	if (a.type == T_STRING)
		return add_ref(sc, &a, req);
	if (!is_punct(&la, &a, "("))
		return 0;
	next_token(&la, &b);
	if (b.type != T_STRING)
		return 0;
	next_token(&la, &c);
	if (is_punct(&la, &c, ")") || is_punct(&la, &c, ","))
		return add_ref(sc, &b, req);
	return 0;
}

/* A Lua numeral as a double; false if it is not a well-formed one. Decimal
 * only (hexadecimal integers are handled by the caller); the result need
 * not be correctly rounded, as sizes are whole bytes anyway. */
static bool numeral_value(const char *s, size_t n, double *ret)
{
	double m = 0;
	long exp10 = 0, e = 0;
	bool digits = false, neg = false;
	size_t i = 0;

	for (; i < n && is_digit(s[i]); i++, digits = true)
		m = m * 10 + (s[i] - '0');
	if (i < n && s[i] == '.')
		for (i++; i < n && is_digit(s[i]); i++, digits = true, exp10--)
			m = m * 10 + (s[i] - '0');
	if (!digits)
		return false;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			neg = s[i++] == '-';
		if (i >= n || !is_digit(s[i]))
			return false;
		for (; i < n && is_digit(s[i]); i++)
			if (e < 100000)
				e = e * 10 + (s[i] - '0');
		exp10 += neg ? -e : e;
	}
	if (i != n)
		return false;
	for (; exp10 > 0 && m < 1e300; exp10--)
		m *= 10;
	for (; exp10 < 0 && m > 0; exp10++)
		m /= 10;
	*ret = exp10 > 0 ? m * 1e300 : m; /* still > 0: it overflowed to inf */
	return true;
}

/* A numeral token as an unsigned integer when it is a plain decimal or hex
 * integer that fits; 1 when so, 0 when it is some other numeral. */
static int numeral_integer(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	unsigned base = 10;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] | 0x20) == 'x') {
		base = 16;
		i = 2;
	}
	for (; i < n; i++) {
		int d = base == 16 ? hexval(s[i]) : is_digit(s[i]) ? s[i] - '0' : -1;
		if (d < 0 || v > (UINT64_MAX - (unsigned)d) / base)
			return 0;
		v = v * base + (unsigned)d;
	}
	*ret = v;
	return 1;
}

static int claim_error(struct scan *sc, const struct tok *t, const char *field, const char *what)
{
	const char *s = sc->lx.s + t->start;
	int n = (int)(t->end - t->start < 40 ? t->end - t->start : 40);
	return pv_err_set(sc->err, -EINVAL, t->start, "line %u: provium:claim: %s must be %s, got %.*s%s",
			  line_of(&sc->lx, t->start), field, what, n, s,
			  t->end - t->start > 40 ? "..." : "");
}

/* The claim's memory value from token t: 0 with *ret set, 1 when it is a
 * numeral this scan does not read (the claim is then left to run time), or
 * a negative errno for a literal that is plainly wrong. */
static int claim_memory(struct scan *sc, const struct tok *t, uint64_t *ret)
{
	const char *s = sc->lx.s + t->start;
	size_t n = t->end - t->start, len;
	int rc;

	if (t->type == T_NUMBER) {
		double v;
		if (numeral_integer(s, n, ret))
			return 0;
		/* a hex float, say: valid Lua, but left to run time */
		if (!numeral_value(s, n, &v))
			return 1;
		rc = pv_size_from_number(v, ret, sc->err);
	} else {
		char *v = string_value(&sc->lx, t, &len);
		if (!v)
			return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
		rc = strlen(v) == len ? pv_parse_size(v, ret, sc->err)
				      : pv_err_set(sc->err, -EINVAL, SIZE_MAX, "a size must not contain NUL bytes");
		free(v);
	}
	if (rc < 0 && sc->err) {
		sc->err->offset = t->start;
		pv_err_prefix(sc->err, "line %u: provium:claim: memory", line_of(&sc->lx, t->start));
	}
	return rc;
}

/* As claim_memory, for cpus: a whole number, as a numeral or a string. */
static int claim_cpus(struct scan *sc, const struct tok *t, uint32_t *ret)
{
	const char *what = "a whole number of CPUs like 2";
	uint64_t v;
	int ok;

	if (t->type == T_NUMBER) {
		ok = numeral_integer(sc->lx.s + t->start, t->end - t->start, &v);
		if (!ok) {
			/* 2.0 is a Lua float equal to an integer: fine */
			double d;
			if (!numeral_value(sc->lx.s + t->start, t->end - t->start, &d))
				return 1; /* not a numeral we read: left to run time */
			ok = d >= 0 && d <= UINT32_MAX && d == (double)(uint32_t)d;
			v = ok ? (uint32_t)d : 0;
		}
	} else {
		size_t len;
		char *s = string_value(&sc->lx, t, &len);
		if (!s)
			return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
		/* numeral_integer would take hex too; a string must be decimal */
		ok = len > 0 && strspn(s, "0123456789") == len && numeral_integer(s, len, &v);
		free(s);
	}
	if (!ok || v > UINT32_MAX)
		return claim_error(sc, t, "cpus", what);
	*ret = (uint32_t)v;
	return 0;
}

/* At file scope, after "provium": reads ":claim{...}" or ":claim({...})".
 * Only fields memory and cpus with literal values make a declared claim;
 * anything else leaves it to run time. */
static int claim_call(struct scan *sc)
{
	struct lexer la = sc->lx;
	struct tok t, name, val;
	struct pv_resource r = { 0, 0 };
	bool paren = false;
	int rc;

	next_token(&la, &t);
	if (!is_punct(&la, &t, ":"))
		return 0;
	next_token(&la, &t);
	if (!is_name(&la, &t, "claim"))
		return 0;
	/* a method call, literal or not: it counts toward "only one" */
	sc->nclaims++;
	next_token(&la, &t);
	if (is_punct(&la, &t, "(")) {
		paren = true;
		next_token(&la, &t);
	}
	if (!is_punct(&la, &t, "{"))
		return 0;
	for (;;) {
		next_token(&la, &name);
		if (is_punct(&la, &name, "}"))
			break;
		next_token(&la, &t);
		next_token(&la, &val);
		if (!is_punct(&la, &t, "=") || (val.type != T_STRING && val.type != T_NUMBER))
			return 0;
		if (is_name(&la, &name, "memory")) {
			if ((rc = claim_memory(sc, &val, &r.memory_bytes)) != 0)
				return rc < 0 ? rc : 0;
		} else if (is_name(&la, &name, "cpus")) {
			if ((rc = claim_cpus(sc, &val, &r.cpus)) != 0)
				return rc < 0 ? rc : 0;
		} else {
			return 0;
		}
		next_token(&la, &t);
		if (is_punct(&la, &t, "}"))
			break;
		if (!is_punct(&la, &t, ",") && !is_punct(&la, &t, ";"))
			return 0;
	}
	if (paren) {
		next_token(&la, &t);
		if (!is_punct(&la, &t, ")"))
			return 0;
	}
	if (sc->nclaims == 1) {
		sc->claim_literal = true;
		sc->claim = r;
	}
	return 0;
}

static void free_refs(struct pv_test_file *f)
{
	for (size_t i = 0; i < f->nfixture_refs; i++)
		free(f->fixture_refs[i]);
	free(f->fixture_refs);
	f->fixture_refs = NULL;
	f->nfixture_refs = 0;
	for (size_t i = 0; i < f->nrequires; i++)
		free(f->requires[i]);
	free(f->requires);
	f->requires = NULL;
	f->nrequires = 0;
}

void pv_test_file_release(struct pv_test_file *f) { free_refs(f); }

int pv_scan_source(const char *src, size_t len, struct pv_test_file *f, struct pv_err *err)
{
	struct scan sc = { .lx = { src, len, 0 }, .f = f, .err = err };
	/* the two tokens before the current one, to tell provium.x from y.x */
	struct tok t, prev = { .type = T_EOF }, prev2 = { .type = T_EOF };
	int rc = 0;

	f->fixture_refs = NULL;
	f->nfixture_refs = 0;
	f->requires = NULL;
	f->nrequires = 0;
	f->has_claim = false;
	f->claim = (struct pv_resource){ 0, 0 };
	for (next_token(&sc.lx, &t); t.type != T_EOF; prev2 = prev, prev = t, next_token(&sc.lx, &t)) {
		const struct lexer *lx = &sc.lx;
		bool after_dot = is_punct(lx, &prev, ".") || is_punct(lx, &prev, ":");

		if (t.type != T_NAME)
			continue;
		/* "end" closes function, do (also of while/for) and if blocks;
		 * "then", "elseif" and "else" open none of their own */
		if (is_name(lx, &t, "function"))
			rc = push_block(&sc, 'f');
		else if (is_name(lx, &t, "do") || is_name(lx, &t, "if") || is_name(lx, &t, "repeat"))
			rc = push_block(&sc, 'b');
		else if (is_name(lx, &t, "end") || is_name(lx, &t, "until"))
			pop_block(&sc);
		else if (is_name(lx, &t, "vm_fixture") || is_name(lx, &t, "lab_fixture")) {
			if (!after_dot || is_name(lx, &prev2, "provium"))
				rc = fixture_call(&sc, false);
		} else if (is_name(lx, &t, "require") && !after_dot) {
			rc = fixture_call(&sc, true);
		} else if (is_name(lx, &t, "provium") && !after_dot && sc.fdepth == 0) {
			rc = claim_call(&sc);
		}
		if (rc < 0)
			break;
	}
	free(sc.blocks);
	if (rc < 0) {
		free_refs(f);
		return rc;
	}
	/* two claims at file scope: which one holds is for the runner to see */
	if (sc.nclaims == 1 && sc.claim_literal) {
		f->has_claim = true;
		f->claim = sc.claim;
	}
	return 0;
}

/* ---- the walk ---- */

struct walk {
	struct pv_discovery *d;
	size_t cap_files, cap_fixtures;
	const char *root;
	const char *filter;
	struct pv_err *err;
};

/* a + "/" + b, without doubling a slash that a already ends with. */
static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	bool slash = la > 0 && a[la - 1] != '/';
	char *r = malloc(la + slash + lb + 1);

	if (!r)
		return NULL;
	memcpy(r, a, la);
	if (slash)
		r[la] = '/';
	memcpy(r + la + slash, b, lb + 1);
	return r;
}

static void file_release(struct pv_test_file *f)
{
	free(f->root);
	free(f->rel_path);
	free(f->abs_path);
	free_refs(f);
}

/* Events carry paths as text: a name that is not UTF-8 is refused here,
 * naming it, rather than crashing the runner that would emit it. */
static int check_utf8(struct walk *w, const char *what, const char *root, const char *rel)
{
	char shown[1024], shown_root[512];

	if (pv_utf8_valid((const uint8_t *)rel, strlen(rel)))
		return 0;
	pv_escape_name(rel, strlen(rel), shown, sizeof(shown));
	pv_escape_name(root, strlen(root), shown_root, sizeof(shown_root));
	return pv_err_set(w->err, -EILSEQ, SIZE_MAX,
			  "%s \"%s\" is not valid UTF-8 (under test root %s): event paths are UTF-8 text; "
			  "rename it",
			  what, shown, shown_root);
}

/* Adds a test: root dir is w->root, rel the path under it. */
static int add_test(struct walk *w, const char *root, const char *rel)
{
	struct pv_discovery *d = w->d;
	struct pv_test_file *f;

	int rc;

	if (w->filter && !strstr(rel, w->filter))
		return 0;
	if ((rc = check_utf8(w, "test file", root, rel)) < 0)
		return rc;
	if (grow(&d->files, &w->cap_files, d->nfiles, sizeof(*d->files)) < 0)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	f = &d->files[d->nfiles];
	memset(f, 0, sizeof(*f));
	f->root = strdup(root);
	f->rel_path = strdup(rel);
	f->abs_path = join(root, rel);
	if (!f->root || !f->rel_path || !f->abs_path) {
		file_release(f);
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	d->nfiles++;
	return 0;
}

static int add_fixture(struct walk *w, const char *rel)
{
	struct pv_discovery *d = w->d;
	char *name;
	int rc;

	if ((rc = check_utf8(w, "fixture", w->root, rel)) < 0)
		return rc;
	if (grow(&d->fixtures, &w->cap_fixtures, d->nfixtures, sizeof(char *)) < 0)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	name = strndup(rel, strlen(rel) - strlen(FIXTURE_SUFFIX));
	if (!name)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	d->fixtures[d->nfixtures++] = name;
	return 0;
}

/* Walks the directory root/rel (rel NULL: the root itself). */
static int walk_dir(struct walk *w, const char *rel)
{
	char *path = rel ? join(w->root, rel) : NULL;
	const char *shown = rel ? path : w->root;
	char **subdirs = NULL;
	size_t nsub = 0, cap_sub = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int fd, rc = 0;

	if (rel && !path)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	/* O_NOFOLLOW: a subdirectory replaced by a symlink since readdir
	 * saw it must still not be followed */
	fd = open(shown, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (rel ? O_NOFOLLOW : 0));
	if (fd < 0 || !(dir = fdopendir(fd))) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		rc = pv_err_set(w->err, rc, SIZE_MAX, "cannot read %s \"%s\": %s",
				rel ? "directory" : "test root", shown, strerror(-rc));
		goto out;
	}
	for (;;) {
		const char *name;
		unsigned char type;
		char *child;
		struct stat st;

		errno = 0;
		if (!(de = readdir(dir))) {
			if (errno) {
				rc = pv_err_set(w->err, -errno, SIZE_MAX, "cannot read %s \"%s\": %s",
						rel ? "directory" : "test root", shown, strerror(errno));
				goto out;
			}
			break;
		}
		name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN) {
			if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue; /* gone since readdir */
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG
				: S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
		}
		if (type == DT_DIR) {
			if (name[0] == '.')
				continue;
		} else if (ends_with(name, TEST_SUFFIX) || ends_with(name, FIXTURE_SUFFIX)) {
			/* a symlink to a file counts (the dedupe sees through
			 * it); one to a directory, or a dangling one, does not */
			if (type == DT_LNK && fstatat(dirfd(dir), name, &st, 0) == 0 && S_ISREG(st.st_mode))
				type = DT_REG;
			if (type != DT_REG)
				continue;
		} else {
			continue;
		}
		child = rel ? join(rel, name) : strdup(name);
		if (!child) {
			rc = pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
			goto out;
		}
		if (type == DT_DIR) {
			if (grow(&subdirs, &cap_sub, nsub, sizeof(char *)) < 0) {
				free(child);
				rc = pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
				goto out;
			}
			subdirs[nsub++] = child;
			continue;
		}
		rc = ends_with(name, TEST_SUFFIX) ? add_test(w, w->root, child) : add_fixture(w, child);
		free(child);
		if (rc < 0)
			goto out;
	}
	closedir(dir);
	dir = NULL;
	for (size_t i = 0; i < nsub && rc == 0; i++)
		rc = walk_dir(w, subdirs[i]);
out:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < nsub; i++)
		free(subdirs[i]);
	free(subdirs);
	free(path);
	return rc;
}

/* A root that is one test file: its directory becomes the root. */
static int add_single(struct walk *w, const char *root)
{
	const char *slash = strrchr(root, '/');
	char *dir;
	int rc;

	if (!slash)
		return add_test(w, ".", root);
	/* "/x.test.lua" lives in "/", not in "" */
	dir = strndup(root, slash == root ? 1 : (size_t)(slash - root));
	if (!dir)
		return pv_err_set(w->err, -ENOMEM, SIZE_MAX, "out of memory");
	rc = add_test(w, dir, slash + 1);
	free(dir);
	return rc;
}

static int cmp_rel(const void *a, const void *b)
{
	const struct pv_test_file *x = a, *y = b;
	return strcmp(x->rel_path, y->rel_path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct real {
	char *path;
	size_t index;
};

static int cmp_real(const void *a, const void *b)
{
	const struct real *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Keeps the first of files that are the same file (by realpath), in place. */
static int dedupe(struct pv_discovery *d, struct pv_err *err)
{
	struct real *r;
	bool *drop;
	size_t n = d->nfiles, o = 0;
	int rc = 0;

	if (n < 2)
		return 0;
	r = calloc(n, sizeof(*r));
	drop = calloc(n, sizeof(*drop));
	if (!r || !drop) {
		rc = pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].index = i;
		r[i].path = realpath(d->files[i].abs_path, NULL);
		if (!r[i].path) {
			rc = pv_err_set(err, -errno, SIZE_MAX, "cannot resolve test file \"%s\": %s",
					d->files[i].abs_path, strerror(errno));
			goto out;
		}
	}
	qsort(r, n, sizeof(*r), cmp_real);
	for (size_t i = 1; i < n; i++)
		if (strcmp(r[i].path, r[i - 1].path) == 0)
			drop[r[i].index] = true; /* sorted by index within equals */
	for (size_t i = 0; i < n; i++) {
		if (drop[i])
			file_release(&d->files[i]);
		else
			d->files[o++] = d->files[i];
	}
	d->nfiles = o;
out:
	if (r)
		for (size_t i = 0; i < n; i++)
			free(r[i].path);
	free(r);
	free(drop);
	return rc;
}

/* Test files are Lua source scanned whole: far below this. */
#define TEST_FILE_MAX (64u * 1024u * 1024u)

static int read_file(const char *path, char **ret, size_t *ret_len, struct pv_err *err)
{
	int rc = sys_read_file(path, TEST_FILE_MAX, ret, ret_len);
	if (rc == -EFBIG)
		return pv_err_set(err, rc, SIZE_MAX, "test file \"%s\" is over %u MiB: not a test file?", path,
				  TEST_FILE_MAX >> 20);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot read test file \"%s\": %s", path, strerror(-rc));
	return 0;
}

int pv_discover(const char *const *roots, size_t nroots, const char *filter, struct pv_discovery *ret,
		struct pv_err *err)
{
	struct walk w = { .d = ret, .filter = filter, .err = err };
	int rc = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i < nroots && rc == 0; i++) {
		const char *root = roots[i];
		size_t first = ret->nfiles;
		struct stat st;

		w.root = root;
		if (stat(root, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				rc = pv_err_set(err, -ENOENT, SIZE_MAX,
						"test root \"%s\" does not exist; give a directory of tests or "
						"a *.test.lua file",
						root);
			else
				rc = pv_err_set(err, -errno, SIZE_MAX, "cannot read test root \"%s\": %s",
						root, strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = walk_dir(&w, NULL);
		} else if (S_ISREG(st.st_mode) && ends_with(root, TEST_SUFFIX)) {
			rc = add_single(&w, root);
		} else {
			rc = pv_err_set(err, -EINVAL, SIZE_MAX,
					"test root \"%s\" is neither a directory nor a *.test.lua file", root);
		}
		/* files is still NULL for a root without tests, and qsort
		 * must not be given a NULL base even for zero items */
		if (rc == 0 && ret->nfiles - first > 1)
			qsort(ret->files + first, ret->nfiles - first, sizeof(*ret->files), cmp_rel);
	}
	if (rc == 0)
		rc = dedupe(ret, err);
	if (rc == 0 && ret->nfixtures) {
		/* the same fixture path under two roots is listed once */
		size_t o = 1;
		qsort(ret->fixtures, ret->nfixtures, sizeof(char *), cmp_str);
		for (size_t i = 1; i < ret->nfixtures; i++) {
			if (strcmp(ret->fixtures[i], ret->fixtures[o - 1]) == 0)
				free(ret->fixtures[i]);
			else
				ret->fixtures[o++] = ret->fixtures[i];
		}
		ret->nfixtures = o;
	}
	for (size_t i = 0; i < ret->nfiles && rc == 0; i++) {
		struct pv_test_file *f = &ret->files[i];
		char *src = NULL;
		size_t len = 0;

		if ((rc = read_file(f->abs_path, &src, &len, err)) < 0)
			break;
		rc = pv_scan_source(src, len, f, err);
		free(src);
		if (rc < 0)
			pv_err_prefix(err, "%s", f->abs_path);
	}
	if (rc < 0)
		pv_discovery_release(ret);
	return rc;
}

void pv_discovery_release(struct pv_discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nfiles; i++)
		file_release(&d->files[i]);
	free(d->files);
	for (size_t i = 0; i < d->nfixtures; i++)
		free(d->fixtures[i]);
	free(d->fixtures);
	memset(d, 0, sizeof(*d));
}

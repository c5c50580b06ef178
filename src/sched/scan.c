/* scan.c - reading a test file's declarations statically (see scan.h).
 *
 * A small Lua tokenizer plus a block stack; it never fails on malformed
 * source (the runner reports syntax errors far better), only on a literal
 * claim whose value is plainly wrong.
 */
#include "scan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mpr.h"
#include "units.h"

#define FIXTURE_SUFFIX ".fixture.lua"

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
	size_t cap_refs, cap_reqs, cap_files, cap_images;
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
	if (pv_grow_array(&sc->blocks, &sc->cap_blocks, sc->nblocks, 1) < 0)
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

enum ref_kind { REF_FIXTURE, REF_REQUIRE, REF_FILE, REF_IMAGE };

/* Records a fixture reference (or a required module, or a host file the
 * file depends on) from string token t, unless already seen. */
static int add_ref(struct scan *sc, const struct tok *t, enum ref_kind kind)
{
	struct pv_test_file *f = sc->f;
	bool req = kind != REF_FIXTURE;
	char ***list = kind == REF_IMAGE ? &f->image_deps : kind == REF_FILE ? &f->file_deps : req ? &f->requires
												      : &f->fixture_refs;
	size_t *n = kind == REF_IMAGE ? &f->nimage_deps : kind == REF_FILE ? &f->nfile_deps : req ? &f->nrequires
												   : &f->nfixture_refs;
	size_t *cap = kind == REF_IMAGE ? &sc->cap_images : kind == REF_FILE ? &sc->cap_files : req ? &sc->cap_reqs
												     : &sc->cap_refs;
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
	if (!req && len > strlen(FIXTURE_SUFFIX) && memcmp(v + len - strlen(FIXTURE_SUFFIX), FIXTURE_SUFFIX, strlen(FIXTURE_SUFFIX)) == 0)
		v[len - strlen(FIXTURE_SUFFIX)] = 0;
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], v) == 0)
			goto drop;
	if (pv_grow_array(list, cap, *n, sizeof(char *)) < 0) {
		free(v);
		return pv_err_set(sc->err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	(*list)[(*n)++] = v;
	return 0;
drop:
	free(v);
	return 0;
}

/* After vm_fixture / lab_fixture (or require, push_file, depends_on_file): a
 * literal first argument is a reference, as in  name "x"  name [[x]]
 * name("x")  name("x", opts). */
static int fixture_call(struct scan *sc, enum ref_kind req)
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

/* After the name `image`: `= "literal"` (a disk's image in a disks table)
 * is an image the file depends on. */
static int image_field(struct scan *sc)
{
	struct lexer la = sc->lx;
	struct tok a, b;
	next_token(&la, &a);
	if (!is_punct(&la, &a, "="))
		return 0;
	next_token(&la, &b);
	return b.type == T_STRING ? add_ref(sc, &b, REF_IMAGE) : 0;
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
	for (size_t i = 0; i < f->nfile_deps; i++)
		free(f->file_deps[i]);
	free(f->file_deps);
	f->file_deps = NULL;
	f->nfile_deps = 0;
	for (size_t i = 0; i < f->nimage_deps; i++)
		free(f->image_deps[i]);
	free(f->image_deps);
	f->image_deps = NULL;
	f->nimage_deps = 0;
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
	f->file_deps = NULL;
	f->nfile_deps = 0;
	f->image_deps = NULL;
	f->nimage_deps = 0;
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
				rc = fixture_call(&sc, REF_FIXTURE);
		} else if (is_name(lx, &t, "require") && !after_dot) {
			rc = fixture_call(&sc, REF_REQUIRE);
		} else if ((is_name(lx, &t, "push_file") || is_name(lx, &t, "depends_on_file")) && after_dot) {
			rc = fixture_call(&sc, REF_FILE);
		} else if (is_name(lx, &t, "image") && !after_dot) {
			rc = image_field(&sc);
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

/* ---- test declarations (provium list --tests) ---- */

#define DECL_DEPTH 32 /* meta nesting the runner allows */

struct dscan {
	struct lexer lx;
	struct pv_test_decl *d;
	size_t n, cap;
	size_t line_off; /* line numbers counted so far: up to here */
	unsigned line;
};

static json_t *bytes_json(const char *s, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = malloc(4 * (n / 3 + 1) + 1);
	size_t k = 0;
	json_t *j;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)(unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)(unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		o[k++] = b64[v >> 18 & 63];
		o[k++] = b64[v >> 12 & 63];
		o[k++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		o[k++] = i + 2 < n ? b64[v & 63] : '=';
	}
	o[k] = 0;
	j = json_pack("{s:s}", "$bytes", o);
	free(o);
	return j;
}

static json_t *string_json(const struct lexer *lx, const struct tok *t)
{
	size_t len;
	char *v = string_value(lx, t, &len);
	json_t *j;
	if (!v)
		return NULL;
	j = pv_utf8_valid((const uint8_t *)v, len) ? json_stringn(v, len) : bytes_json(v, len);
	free(v);
	return j;
}

/* Skips the rest of a field's value (or a call's argument): up to the ','
 * ';' '}' or ')' that ends it at this nesting level (left as the next
 * token). */
static void skip_value(struct lexer *lx)
{
	int depth = 0;
	for (;;) {
		struct lexer save = *lx;
		struct tok t;
		next_token(lx, &t);
		if (t.type == T_EOF)
			return;
		if (t.type != T_PUNCT)
			continue;
		if (depth == 0 && (is_punct(lx, &t, ",") || is_punct(lx, &t, ";") || is_punct(lx, &t, "}") ||
				   is_punct(lx, &t, ")"))) {
			*lx = save;
			return;
		}
		if (is_punct(lx, &t, "(") || is_punct(lx, &t, "{") || is_punct(lx, &t, "["))
			depth++;
		else if (is_punct(lx, &t, ")") || is_punct(lx, &t, "}") || is_punct(lx, &t, "]"))
			depth--;
	}
}

static json_t *table_json(struct lexer *lx, int depth, bool *literal);

/* A literal value (the next token on): its JSON, or NULL with *literal
 * false when it is not one (the value skipped). */
static json_t *value_json(struct lexer *lx, int depth, bool *literal)
{
	struct lexer save = *lx;
	struct tok t, after;
	json_t *v = NULL;
	bool neg = false;

	next_token(lx, &t);
	if (is_punct(lx, &t, "-")) {
		neg = true;
		next_token(lx, &t);
	}
	if (t.type == T_NUMBER) {
		const char *s = lx->s + t.start;
		size_t n = t.end - t.start;
		uint64_t u;
		double d;
		if (numeral_integer(s, n, &u) && u <= (uint64_t)INT64_MAX && !(n > 2 && (s[1] | 0x20) == 'x'))
			v = json_integer(neg ? -(json_int_t)u : (json_int_t)u);
		else if (!memchr(s, 'x', n) && !memchr(s, 'X', n) && numeral_value(s, n, &d) && d < 1e308)
			v = json_real(neg ? -d : d);
	} else if (!neg && t.type == T_STRING) {
		v = string_json(lx, &t);
	} else if (!neg && (is_name(lx, &t, "true") || is_name(lx, &t, "false"))) {
		v = json_boolean(is_name(lx, &t, "true"));
	} else if (!neg && is_name(lx, &t, "nil")) {
		v = json_null();
	} else if (!neg && is_punct(lx, &t, "{") && depth < DECL_DEPTH) {
		v = table_json(lx, depth + 1, literal);
		if (!*literal) {
			json_decref(v);
			v = NULL;
		}
	}
	/* a literal must end the field: "a" .. b or 1 + x are computed */
	if (v) {
		struct lexer peek = *lx;
		next_token(&peek, &after);
		if (is_punct(&peek, &after, ",") || is_punct(&peek, &after, ";") || is_punct(&peek, &after, "}"))
			return v;
		json_decref(v);
	}
	*literal = false;
	*lx = save;
	skip_value(lx);
	return NULL;
}

/* After '{': the table constructor as JSON (an array when every field is
 * positional, else an object of its literal named fields); *literal false
 * when some part is not a literal (an object then holds the rest, and
 * computed keys are listed in "\0computed"). The closing '}' is consumed. */
static json_t *table_json(struct lexer *lx, int depth, bool *literal)
{
	json_t *arr = json_array(), *obj = json_object(), *computed = json_array();
	bool named = false, positional = false;

	*literal = true;
	for (;;) {
		struct lexer save = *lx;
		struct tok k, eq;
		char *key = NULL;
		size_t klen = 0;
		bool lit = true;
		json_t *v;

		next_token(lx, &k);
		if (is_punct(lx, &k, "}") || k.type == T_EOF)
			break;
		if (k.type == T_NAME) {
			next_token(lx, &eq);
			if (is_punct(lx, &eq, "=") && !is_punct(lx, &eq, "==")) {
				key = strndup(lx->s + k.start, k.end - k.start);
				klen = k.end - k.start;
			}
		} else if (is_punct(lx, &k, "[")) {
			struct tok ks, close;
			next_token(lx, &ks);
			next_token(lx, &close);
			next_token(lx, &eq);
			if (ks.type == T_STRING && is_punct(lx, &close, "]") && is_punct(lx, &eq, "="))
				key = string_value(lx, &ks, &klen);
			else {
				/* a computed key: the field is unknown */
				*lx = save;
				next_token(lx, &k);
				skip_value(lx);
				*literal = false;
				goto sep;
			}
		}
		if (!key)
			*lx = save; /* a positional value */
		v = value_json(lx, depth, &lit);
		if (key) {
			named = true;
			if (!pv_utf8_valid((const uint8_t *)key, klen) || strlen(key) != klen) {
				*literal = false;
				json_decref(v);
			} else if (json_is_null(v)) {
				json_decref(v); /* k = nil: no field */
			} else if (v && lit) {
				json_object_set_new(obj, key, v);
			} else {
				*literal = false;
				json_array_append_new(computed, json_string(key));
				json_decref(v);
			}
			free(key);
		} else {
			positional = true;
			if (v && lit && !json_is_null(v))
				json_array_append_new(arr, v);
			else {
				*literal = false;
				json_decref(v);
			}
		}
	sep:
		next_token(lx, &k);
		if (is_punct(lx, &k, "}") || k.type == T_EOF)
			break;
		if (!is_punct(lx, &k, ",") && !is_punct(lx, &k, ";")) {
			*literal = false;
			skip_value(lx);
		}
	}
	if (named && positional)
		*literal = false; /* the runner refuses such a meta table anyway */
	if (!named) {
		json_decref(obj);
		json_decref(computed);
		return arr;
	}
	json_decref(arr);
	if (json_array_size(computed))
		json_object_set_new(obj, "\x01computed", computed);
	else
		json_decref(computed);
	return obj;
}

/* After the name `test` at file scope: test("name", {meta}, fn) or
 * test("name", fn). */
static int test_decl(struct dscan *ds)
{
	struct lexer la = ds->lx;
	struct tok t;
	struct pv_test_decl *d;

	next_token(&la, &t);
	if (!is_punct(&la, &t, "("))
		return 0;
	if (pv_grow_array(&ds->d, &ds->cap, ds->n, sizeof(*ds->d)) < 0)
		return -ENOMEM;
	d = &ds->d[ds->n++];
	memset(d, 0, sizeof(*d));
	/* declarations come in source order: count lines from the last one */
	for (; ds->line_off < t.start && ds->line_off < ds->lx.len; ds->line_off++)
		ds->line += ds->lx.s[ds->line_off] == '\n';
	d->line = ds->line;
	next_token(&la, &t);
	if (t.type == T_STRING) {
		struct lexer peek = la;
		struct tok c;
		next_token(&peek, &c);
		if (is_punct(&peek, &c, ",")) {
			if (!(d->name = string_value(&la, &t, &d->name_len)))
				return -ENOMEM;
			if (!pv_utf8_valid((const uint8_t *)d->name, d->name_len)) {
				free(d->name);
				d->name = NULL; /* the runner refuses it: not a name to list */
			}
			la = peek;
		} else {
			skip_value(&la);
			next_token(&la, &c);
		}
	} else {
		struct tok c;
		la = ds->lx;
		next_token(&la, &c); /* ( */
		skip_value(&la);
		next_token(&la, &c);
	}
	next_token(&la, &t);
	if (is_name(&la, &t, "function")) {
		d->meta = json_object();
	} else if (is_punct(&la, &t, "{")) {
		bool lit;
		json_t *m = table_json(&la, 1, &lit);
		if (json_is_array(m) && json_array_size(m) == 0) {
			json_decref(m);
			m = json_object(); /* {} */
		}
		if (!json_is_object(m)) {
			json_decref(m);
			d->meta_computed = true;
			d->meta = json_object();
		} else {
			json_t *c = json_object_get(m, "\x01computed");
			d->meta = m;
			if (c) {
				d->computed = json_incref(c);
				json_object_del(m, "\x01computed");
			}
		}
	} else {
		d->meta_computed = true; /* a variable or a call: known when it runs */
		d->meta = json_object();
	}
	return d->meta ? 0 : -ENOMEM;
}

void pv_test_decls_free(struct pv_test_decl *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(d[i].name);
		json_decref(d[i].meta);
		json_decref(d[i].computed);
	}
	free(d);
}

int pv_scan_tests(const char *src, size_t len, struct pv_test_decl **ret, size_t *ret_n, struct pv_err *err)
{
	struct dscan ds = { .lx = { src, len, 0 }, .line = 1 };
	struct scan sc = { .err = err }; /* its block stack */
	struct tok t, prev = { .type = T_EOF };
	int rc = 0;

	for (next_token(&ds.lx, &t); t.type != T_EOF && rc == 0; prev = t, next_token(&ds.lx, &t)) {
		const struct lexer *lx = &ds.lx;
		if (t.type != T_NAME)
			continue;
		if (is_name(lx, &t, "function"))
			rc = push_block(&sc, 'f');
		else if (is_name(lx, &t, "do") || is_name(lx, &t, "if") || is_name(lx, &t, "repeat"))
			rc = push_block(&sc, 'b');
		else if (is_name(lx, &t, "end") || is_name(lx, &t, "until"))
			pop_block(&sc);
		else if (is_name(lx, &t, "test") && sc.fdepth == 0 && !is_punct(lx, &prev, ".") &&
			 !is_punct(lx, &prev, ":") && !is_name(lx, &prev, "function") && !is_name(lx, &prev, "local"))
			rc = test_decl(&ds);
	}
	free(sc.blocks);
	if (rc < 0) {
		pv_test_decls_free(ds.d, ds.n);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	*ret = ds.d;
	*ret_n = ds.n;
	return 0;
}

#include "mpr.h"

#include <errno.h>
#include <string.h>

static inline uint64_t be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

const char *mpr_type_name(enum mpr_type t)
{
	switch (t) {
	case MPR_NIL: return "nil";
	case MPR_BOOL: return "bool";
	case MPR_UINT: return "int";
	case MPR_INT: return "int";
	case MPR_FLOAT: return "float";
	case MPR_STR: return "str";
	case MPR_BIN: return "bin";
	case MPR_ARRAY: return "array";
	case MPR_MAP: return "map";
	case MPR_EXT: return "ext";
	}
	return "?";
}

static int truncated(const struct mpr *r, struct pv_err *err, const char *what)
{
	return pv_err_set(err, -ENODATA, mpr_offset(r), "input ends inside %s", what);
}

int mpr_next(struct mpr *r, struct mpr_item *out, struct pv_err *err)
{
	const uint8_t *p = r->p;
	size_t left = mpr_left(r);
	unsigned hdr, n;
	uint8_t b;

	if (left < 1)
		return truncated(r, err, "a msgpack item");
	b = p[0];
	out->offset = mpr_offset(r);

	/* fixed-size single-byte forms */
	if (b <= 0x7f) {
		out->type = MPR_UINT;
		out->v.u = b;
		r->p += 1;
		return 0;
	}
	if (b >= 0xe0) {
		out->type = MPR_INT;
		out->v.i = (int8_t)b;
		r->p += 1;
		return 0;
	}
	if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
		out->type = (b & 0xf0) == 0x80 ? MPR_MAP : MPR_ARRAY;
		out->v.count = b & 0x0f;
		hdr = 1;
		goto container;
	}
	if ((b & 0xe0) == 0xa0) {
		out->type = MPR_STR;
		out->v.raw.len = b & 0x1f;
		hdr = 1;
		goto raw;
	}

	switch (b) {
	case 0xc0: out->type = MPR_NIL; r->p += 1; return 0;
	case 0xc2: case 0xc3: out->type = MPR_BOOL; out->v.b = b == 0xc3; r->p += 1; return 0;
	case 0xc1:
		return pv_err_set(err, -EBADMSG, out->offset, "invalid msgpack byte 0xc1");
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
		n = 1u << (b - 0xcc);
		if (left < 1 + n)
			return truncated(r, err, "an integer");
		out->type = MPR_UINT;
		out->v.u = be(p + 1, n);
		r->p += 1 + n;
		return 0;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
		int64_t v;
		n = 1u << (b - 0xd0);
		if (left < 1 + n)
			return truncated(r, err, "an integer");
		uint64_t u = be(p + 1, n);
		switch (n) {
		case 1: v = (int8_t)u; break;
		case 2: v = (int16_t)u; break;
		case 4: v = (int32_t)u; break;
		default: v = (int64_t)u; break;
		}
		if (v >= 0) {
			out->type = MPR_UINT;
			out->v.u = (uint64_t)v;
		} else {
			out->type = MPR_INT;
			out->v.i = v;
		}
		r->p += 1 + n;
		return 0;
	}
	case 0xca: {
		float f;
		uint32_t u;
		if (left < 5)
			return truncated(r, err, "a float");
		u = (uint32_t)be(p + 1, 4);
		memcpy(&f, &u, 4);
		out->type = MPR_FLOAT;
		out->v.f = f;
		r->p += 5;
		return 0;
	}
	case 0xcb: {
		uint64_t u;
		if (left < 9)
			return truncated(r, err, "a float");
		u = be(p + 1, 8);
		out->type = MPR_FLOAT;
		memcpy(&out->v.f, &u, 8);
		r->p += 9;
		return 0;
	}
	case 0xd9: case 0xda: case 0xdb:
	case 0xc4: case 0xc5: case 0xc6:
		out->type = b >= 0xd9 ? MPR_STR : MPR_BIN;
		n = 1u << (b >= 0xd9 ? b - 0xd9 : b - 0xc4);
		if (left < 1 + n)
			return truncated(r, err, out->type == MPR_STR ? "a str header" : "a bin header");
		out->v.raw.len = (uint32_t)be(p + 1, n);
		hdr = 1 + n;
		goto raw;
	case 0xdc: case 0xdd: case 0xde: case 0xdf:
		out->type = (b == 0xdc || b == 0xdd) ? MPR_ARRAY : MPR_MAP;
		n = (b == 0xdc || b == 0xde) ? 2 : 4;
		if (left < 1 + n)
			return truncated(r, err, out->type == MPR_ARRAY ? "an array header" : "a map header");
		out->v.count = (uint32_t)be(p + 1, n);
		hdr = 1 + n;
		goto container;
	case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
		n = 1u << (b - 0xd4);
		if (left < 2 + n)
			return truncated(r, err, "an ext");
		out->type = MPR_EXT;
		out->ext_type = (int8_t)p[1];
		out->v.raw.ptr = p + 2;
		out->v.raw.len = n;
		r->p += 2 + n;
		return 0;
	case 0xc7: case 0xc8: case 0xc9: {
		n = 1u << (b - 0xc7);
		if (left < 2 + n)
			return truncated(r, err, "an ext header");
		uint64_t len = be(p + 1, n);
		if (left - 2 - n < len)
			return truncated(r, err, "an ext");
		out->type = MPR_EXT;
		out->ext_type = (int8_t)p[1 + n];
		out->v.raw.ptr = p + 2 + n;
		out->v.raw.len = (uint32_t)len;
		r->p += 2 + n + len;
		return 0;
	}
	}
	return pv_err_set(err, -EBADMSG, out->offset, "invalid msgpack byte 0x%02x", b);

raw:
	if (left - hdr < out->v.raw.len)
		return pv_err_set(err, -ENODATA, out->offset,
				  "%s of %u bytes is cut off after %zu bytes", mpr_type_name(out->type),
				  out->v.raw.len, left - hdr);
	out->v.raw.ptr = p + hdr;
	r->p += hdr + out->v.raw.len;
	return 0;

container:
	/* every element needs at least one byte; a map pair two */
	if ((uint64_t)out->v.count * (out->type == MPR_MAP ? 2 : 1) > left - hdr)
		return pv_err_set(err, -ENODATA, out->offset,
				  "%s declares %u %s but only %zu bytes follow", mpr_type_name(out->type),
				  out->v.count, out->type == MPR_MAP ? "pairs" : "elements", left - hdr);
	r->p += hdr;
	return 0;
}

int mpr_skip(struct mpr *r, unsigned max_depth, struct pv_err *err)
{
	struct mpr_item it;
	const uint8_t *start = r->p;
	unsigned depth = 0;
	/* Iterative, so hostile nesting cannot exhaust the C stack: stack[d] counts
	 * the items still to read at depth d. */
	uint64_t stack[64];
	int rc;

	if (max_depth > 63)
		max_depth = 63;
	stack[0] = 1;
	while (1) {
		while (depth > 0 && stack[depth] == 0)
			depth--;
		if (stack[depth] == 0)
			break;
		stack[depth]--;
		rc = mpr_next(r, &it, err);
		if (rc < 0) {
			r->p = start;
			return rc;
		}
		if (it.type == MPR_ARRAY || it.type == MPR_MAP) {
			uint64_t n = (uint64_t)it.v.count * (it.type == MPR_MAP ? 2 : 1);
			if (n == 0)
				continue;
			if (depth + 1 > max_depth) {
				r->p = start;
				return pv_err_set(err, -ELOOP, it.offset,
						  "nesting deeper than %u levels", max_depth);
			}
			stack[++depth] = n;
		}
	}
	return 0;
}

bool pv_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = s[i];
		if (c < 0x80) {
			i++;
			/* fast path over ASCII runs */
			while (i + 8 <= len) {
				uint64_t w;
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			if (i + 1 >= len || (s[i + 1] & 0xc0) != 0x80)
				return false;
			i += 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			if (i + 2 >= len || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80)
				return false;
			if (c == 0xe0 && s[i + 1] < 0xa0)
				return false; /* overlong */
			if (c == 0xed && s[i + 1] >= 0xa0)
				return false; /* surrogate */
			i += 3;
		} else if (c >= 0xf0 && c <= 0xf4) {
			if (i + 3 >= len || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80 ||
			    (s[i + 3] & 0xc0) != 0x80)
				return false;
			if (c == 0xf0 && s[i + 1] < 0x90)
				return false;
			if (c == 0xf4 && s[i + 1] >= 0x90)
				return false;
			i += 4;
		} else {
			return false;
		}
	}
	return true;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left) and its code
 * point, or 0 if the bytes there are not one. */
size_t pv_utf8_seq(const uint8_t *s, size_t n, uint32_t *ret_cp)
{
	uint8_t c = s[0];
	size_t len, i;
	uint32_t cp;

	if (c < 0x80) {
		if (ret_cp)
			*ret_cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (ret_cp)
		*ret_cp = cp;
	return len;
}

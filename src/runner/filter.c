/* filter.c - which tests run (contract in filter.h). */
#include "filter.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool has_tag(char *const *tags, size_t ntags, const char *tag)
{
	for (size_t j = 0; j < ntags; j++)
		if (strcmp(tag, tags[j]) == 0)
			return true;
	return false;
}

/* d as Lua 5.4's tostring() writes a float: "%.14g", and ".0" when that
 * looks like an integer, so that --tag-meta ratio=2.0 matches ratio = 2.0
 * (and ratio=2 matches only the integer 2, as in Lua). */
static void lua_float(double d, char *out, size_t len)
{
	snprintf(out, len, "%.14g", d);
	if (out[strspn(out, "-0123456789")] == 0 && strlen(out) + 3 <= len)
		strcat(out, ".0");
}

static bool value_is(const struct pv_meta_value *v, const char *want, size_t wlen)
{
	char num[64];
	switch (v->type) {
	case PV_META_STR:
	case PV_META_BIN: return v->v.s.len == wlen && memcmp(v->v.s.ptr, want, wlen) == 0;
	case PV_META_INT: snprintf(num, sizeof(num), "%" PRId64, v->v.i); break;
	case PV_META_FLOAT: lua_float(v->v.f, num, sizeof(num)); break;
	case PV_META_BOOL: snprintf(num, sizeof(num), "%s", v->v.b ? "true" : "false"); break;
	default: return false; /* nil, and a map has no string form worth matching */
	}
	return strlen(num) == wlen && memcmp(num, want, wlen) == 0;
}

bool filter_meta_match(const struct pv_meta_map *meta, const char *sel)
{
	const char *eq = strchr(sel, '=');
	const struct pv_meta_value *v = NULL;
	struct pv_str key;

	if (!eq || !meta)
		return false;
	key = (struct pv_str){ sel, (size_t)(eq - sel) };
	for (uint32_t i = 0; i < meta->n && !v; i++)
		if (pv_str_cmp(&meta->entries[i].key, &key) == 0)
			v = &meta->entries[i].value;
	if (!v)
		return false;
	if (v->type == PV_META_ARRAY) {
		for (uint32_t i = 0; i < v->v.array.n; i++)
			if (value_is(&v->v.array.items[i], eq + 1, strlen(eq + 1)))
				return true;
		return false;
	}
	return value_is(v, eq + 1, strlen(eq + 1));
}

const char *filter_skip_reason(const struct filter *f, const char *todo, const char *skip, bool slow,
			       char *const *tags, size_t ntags, const char *name, const struct pv_meta_map *meta,
			       char *buf, size_t len)
{
	if (todo)
		return todo;
	if (skip)
		return skip;
	if (slow && !f->include_slow)
		return "slow (run with --include-slow)";
	if (f->nonly && !has_tag(f->only, f->nonly, name))
		return "did not fail last time (--rerun-failed)";
	for (size_t i = 0; i < f->nno_tags; i++)
		if (has_tag(tags, ntags, f->no_tags[i])) {
			snprintf(buf, len, "filtered out by --no-tag %s", f->no_tags[i]);
			return buf;
		}
	if (f->ntags) {
		size_t i;
		for (i = 0; i < f->ntags; i++)
			if (has_tag(tags, ntags, f->tags[i]))
				break;
		if (i == f->ntags) {
			snprintf(buf, len, "filtered out by --tag %s", f->tags[0]);
			return buf;
		}
	}
	for (size_t i = 0; i < f->nno_tag_meta; i++)
		if (filter_meta_match(meta, f->no_tag_meta[i])) {
			snprintf(buf, len, "filtered out by --no-tag-meta %s", f->no_tag_meta[i]);
			return buf;
		}
	if (f->ntag_meta) {
		for (size_t i = 0; i < f->ntag_meta; i++)
			if (filter_meta_match(meta, f->tag_meta[i]))
				return NULL;
		snprintf(buf, len, "filtered out by --tag-meta %s", f->tag_meta[0]);
		return buf;
	}
	return NULL;
}

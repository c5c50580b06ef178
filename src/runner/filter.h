/* filter.h - which tests run: todo(), meta.skip, meta.slow against
 * --include-slow, --rerun-failed's list of the file's failed tests, meta.tags
 * against --tag / --no-tag, and any meta value against --tag-meta /
 * --no-tag-meta (docs/cli.md).
 */
#ifndef PV_FILTER_H
#define PV_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

/* What the command line asked for. */
struct filter {
	char **tags, **no_tags; /* --tag (any of them), --no-tag (none of them) */
	size_t ntags, nno_tags;
	char **tag_meta, **no_tag_meta; /* "KEY=VALUE": --tag-meta (any of them), --no-tag-meta (none) */
	size_t ntag_meta, nno_tag_meta;
	char **only; /* --rerun-failed: only these tests of the file run; none: all of them */
	size_t nonly;
	bool include_slow;
};

/* The test called name, with the file's todo (NULL: none), its skip reason
 * (NULL: none), slow flag, tags and whole meta: why it is skipped (a static
 * string, one of the arguments, or buf), or NULL if it runs. The checks go
 * in this order, the first that skips names the reason: todo, skip, slow,
 * --rerun-failed, --no-tag, --tag, --no-tag-meta, --tag-meta. */
const char *filter_skip_reason(const struct filter *f, const char *todo, const char *skip, bool slow,
			       char *const *tags, size_t ntags, const char *name, const struct pv_meta_map *meta,
			       char *buf, size_t len);

/* Whether meta[KEY] matches VALUE of sel ("KEY=VALUE", split at the first
 * '='), comparing VALUE with the value's string form as Lua's tostring()
 * gives it: a str or bin as its bytes, an integer in decimal, a float as Lua
 * 5.4 prints it (2.0, 1.5, 1e+100), true/false; an array matches when any of
 * its elements does (so tags=net matches tags = {"net", "disk"}); a map, a
 * nil or a missing key never match. A sel without '=' matches nothing. */
bool filter_meta_match(const struct pv_meta_map *meta, const char *sel);

#endif

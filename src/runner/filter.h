/* filter.h - which tests run: todo(), meta.skip, meta.slow against
 * --include-slow, and meta.tags against --tag / --no-tag (docs/cli.md).
 */
#ifndef PV_FILTER_H
#define PV_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/* What the command line asked for. */
struct filter {
	char **tags, **no_tags; /* --tag (any of them), --no-tag (none of them) */
	size_t ntags, nno_tags;
	bool include_slow;
};

/* The test of the file's todo (NULL: none), skip reason (NULL: none), slow
 * flag and tags: why it is skipped (a static string, one of the arguments, or
 * buf), or NULL if it runs. */
const char *filter_skip_reason(const struct filter *f, const char *todo, const char *skip, bool slow,
			       char *const *tags, size_t ntags, char *buf, size_t len);

#endif

/* filter.c - which tests run (contract in filter.h). */
#include "filter.h"

#include <stdio.h>
#include <string.h>

static bool has_tag(char *const *tags, size_t ntags, const char *tag)
{
	for (size_t j = 0; j < ntags; j++)
		if (strcmp(tag, tags[j]) == 0)
			return true;
	return false;
}

const char *filter_skip_reason(const struct filter *f, const char *todo, const char *skip, bool slow,
			       char *const *tags, size_t ntags, char *buf, size_t len)
{
	if (todo)
		return todo;
	if (skip)
		return skip;
	if (slow && !f->include_slow)
		return "slow (run with --include-slow)";
	for (size_t i = 0; i < f->nno_tags; i++)
		if (has_tag(tags, ntags, f->no_tags[i])) {
			snprintf(buf, len, "filtered out by --no-tag %s", f->no_tags[i]);
			return buf;
		}
	if (f->ntags) {
		for (size_t i = 0; i < f->ntags; i++)
			if (has_tag(tags, ntags, f->tags[i]))
				return NULL;
		snprintf(buf, len, "filtered out by --tag %s", f->tags[0]);
		return buf;
	}
	return NULL;
}

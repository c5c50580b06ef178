/* meta.h - test metadata: a Lua table (test()'s meta argument) into the
 * MetaMap that events carry (event.h). Strings that are valid UTF-8 travel as
 * str, other bytes as bin; arrays are tables with keys 1..n; map keys must be
 * UTF-8 strings; at most PV_META_MAX_DEPTH levels.
 */
#ifndef PV_META_H
#define PV_META_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "event.h"

/* Converts the table at idx into *out, every byte of it allocated from a
 * (which owns it); path names the table in messages ("meta"). Raises on a
 * value that cannot be metadata, naming its path ("meta.owner.x: ..."). */
int meta_from_lua(lua_State *L, int idx, struct pv_meta_map *out, struct pv_arena *a, const char *path);

/* A test's meta table: the map events carry, and the keys the runner reads. */
struct meta_read {
	struct pv_meta_map map;
	char *skip; /* meta.skip reason (true: "skipped (meta.skip)"), or NULL */
	bool slow;
	char **tags; /* meta.tags: a string or an array of strings */
	size_t ntags;
	uint64_t timeout_ns; /* meta.timeout; 0: none */
};

/* The test meta table at idx into *out (zeroed first), allocated from a.
 * Raises on a key one letter away from those the runner reads (opts.h),
 * on a value that cannot be metadata, and on a read key of the wrong type. */
int meta_read(lua_State *L, int idx, struct meta_read *out, struct pv_arena *a);

#endif

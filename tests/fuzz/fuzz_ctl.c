/* libFuzzer target: the control-protocol decoder (src/proto/ctl.c), which
 * reads what a runner sends the scheduler (a runner runs the user's Lua and
 * may be killed mid-write) and what the scheduler sends a runner. The input
 * is one frame body. A message the strict decoder accepts must hold every
 * required field with its declared type, so each field's getter must
 * succeed; a plan's metas are then read as the scheduler reads them. A
 * rejection always says why. Nothing may crash, leak or read out of bounds.
 * Built by scripts/fuzz; replay.c runs tests/fuzz/ctl_corpus in every test
 * run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "ctl.h"
#include "event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const struct ctl_msg *m, const struct ctl_field *f)
{
	struct mpr r;
	struct mpr_item it;
	uint64_t u;
	bool b;
	size_t n;
	uint32_t cids[CTL_MAX_VMS];
	char *s, **v;

	if (!ctl_find(m, f->name, &r)) {
		if (f->required)
			abort(); /* accepted without a required field */
		return;
	}
	switch (f->type) {
	case CTL_T_STR:
		if (!(s = ctl_get_strdup(m, f->name)))
			abort();
		free(s);
		break;
	case CTL_T_STR_NIL:
		s = ctl_get_strdup(m, f->name);
		if (!s && (mpr_next(&r, &it, NULL) < 0 || it.type != MPR_NIL))
			abort();
		free(s);
		break;
	case CTL_T_BOOL:
		if (!ctl_get_bool(m, f->name, &b))
			abort();
		break;
	case CTL_T_UINT:
		if (!ctl_get_uint(m, f->name, &u) || u > f->max)
			abort();
		break;
	case CTL_T_STRV:
		v = ctl_get_strv(m, f->name, &n);
		if (!v)
			abort();
		ctl_strv_free(v, n);
		break;
	case CTL_T_UINTV:
		if (!ctl_get_uintv(m, f->name, cids, CTL_MAX_VMS, &n) || n > CTL_MAX_VMS)
			abort();
		break;
	case CTL_T_PLAN: {
		/* as the scheduler's take_plan */
		struct pv_arena a = PV_ARENA_INIT;
		struct pv_meta_map meta;
		struct pv_err err;
		struct mpr_item pair, name;
		if (mpr_next(&r, &it, NULL) < 0 || it.type != MPR_ARRAY)
			abort();
		for (uint32_t i = 0; i < it.v.count; i++) {
			if (mpr_next(&r, &pair, NULL) < 0 || pair.type != MPR_ARRAY || pair.v.count != 2 ||
			    mpr_next(&r, &name, NULL) < 0 || name.type != MPR_STR)
				abort();
			err.msg[0] = 0;
			if (pv_meta_map_read(&r, &a, &meta, &err) < 0) {
				if (!err.msg[0])
					abort();
				break; /* the scheduler stops at a bad meta */
			}
		}
		pv_arena_release(&a);
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_msg m;
	struct pv_err err;

	err.msg[0] = 0;
	if (ctl_parse(data, size, &m, &err) < 0) {
		if (!err.msg[0])
			abort(); /* a rejection always says why */
	} else {
		if (!m.def || !ctl_is(&m, m.def->name) || !ctl_is_ctl(data, size))
			abort();
		for (unsigned i = 0; i < m.def->nfields; i++)
			check_field(&m, &m.def->fields[i]);
		if (ctl_parse_dir(data, size, m.def->dir, &m, &err) < 0)
			abort();
	}
	/* the unchecked reader the agent client uses */
	err.msg[0] = 0;
	if (ctl_parse_any(data, size, &m, &err) < 0 && !err.msg[0])
		abort();
	return 0;
}

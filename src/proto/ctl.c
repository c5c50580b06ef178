#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "frame.h"

/* ---- the table ---------------------------------------------------------------- */

#define REQ(n, t) { n, t, true, 0, 0 }
#define REQ_MAX(n, t, m) { n, t, true, m, 0 }

static const struct ctl_field f_start[] = {
	REQ("config", CTL_T_STR_NIL), REQ("scratch", CTL_T_STR),	 REQ("path", CTL_T_STR),
	REQ("file", CTL_T_STR),	      REQ("roots", CTL_T_STRV),	 REQ("cache_dir", CTL_T_STR_NIL),
	REQ("fixture", CTL_T_STR_NIL), REQ("force", CTL_T_BOOL), REQ("include_slow", CTL_T_BOOL),
	REQ("tags", CTL_T_STRV),      REQ("no_tags", CTL_T_STRV), REQ("interactive", CTL_T_BOOL),
	REQ("pause_at", CTL_T_STR_NIL), REQ("tag_meta", CTL_T_STRV), REQ("no_tag_meta", CTL_T_STRV),
	REQ("only", CTL_T_STRV),
};
static const struct ctl_field f_reason[] = { REQ("reason", CTL_T_STR) };
static const struct ctl_field f_acquired[] = { { "cids", CTL_T_UINTV, true, UINT32_MAX, CTL_MAX_VMS } };
static const struct ctl_field f_plan[] = { REQ("tests", CTL_T_PLAN) };
static const struct ctl_field f_log[] = { REQ("test", CTL_T_STR), REQ("msg", CTL_T_STR) };
static const struct ctl_field f_timeout[] = { REQ_MAX("ns", CTL_T_UINT, UINT64_MAX) };
static const struct ctl_field f_claim[] = {
	REQ_MAX("memory_bytes", CTL_T_UINT, UINT64_MAX),
	REQ_MAX("cpus", CTL_T_UINT, UINT32_MAX),
};
static const struct ctl_field f_acquire[] = {
	REQ_MAX("memory_bytes", CTL_T_UINT, UINT64_MAX),
	REQ_MAX("cpus", CTL_T_UINT, UINT32_MAX),
	REQ_MAX("vms", CTL_T_UINT, CTL_MAX_VMS),
};
static const struct ctl_field f_fixture_wait[] = { REQ("waiting", CTL_T_BOOL) };

#define DEF(id, n, d, f) [id] = { n, d, sizeof(f) / sizeof(f[0]), f }
#define DEF0(id, n, d) [id] = { n, d, 0, NULL }

const struct ctl_def ctl_defs[CTL_COUNT] = {
	DEF(CTL_START, "start", CTL_TO_RUNNER, f_start),
	DEF0(CTL_CLAIM_OK, "claim_ok", CTL_TO_RUNNER),
	DEF(CTL_CLAIM_DENIED, "claim_denied", CTL_TO_RUNNER, f_reason),
	DEF(CTL_ACQUIRED, "acquired", CTL_TO_RUNNER, f_acquired),
	DEF(CTL_ACQUIRE_DENIED, "acquire_denied", CTL_TO_RUNNER, f_reason),
	DEF(CTL_PLAN, "plan", CTL_TO_SCHED, f_plan),
	DEF(CTL_LOG, "log", CTL_TO_SCHED, f_log),
	DEF(CTL_TIMEOUT, "timeout", CTL_TO_SCHED, f_timeout),
	DEF(CTL_CLAIM, "claim", CTL_TO_SCHED, f_claim),
	DEF(CTL_ACQUIRE, "acquire", CTL_TO_SCHED, f_acquire),
	DEF(CTL_RELEASE, "release", CTL_TO_SCHED, f_claim),
	DEF(CTL_FIXTURE_WAIT, "fixture_wait", CTL_TO_SCHED, f_fixture_wait),
	DEF0(CTL_DONE, "done", CTL_TO_SCHED),
};

const struct ctl_def *ctl_def_find(const char *name, size_t len)
{
	for (int i = 0; i < CTL_COUNT; i++)
		if (strlen(ctl_defs[i].name) == len && memcmp(ctl_defs[i].name, name, len) == 0)
			return &ctl_defs[i];
	return NULL;
}

const char *ctl_type_name(enum ctl_type t)
{
	switch (t) {
	case CTL_T_STR: return "a str";
	case CTL_T_STR_NIL: return "a str or nil";
	case CTL_T_BOOL: return "a bool";
	case CTL_T_UINT: return "an unsigned integer";
	case CTL_T_STRV: return "an array of str";
	case CTL_T_UINTV: return "an array of unsigned integers";
	case CTL_T_PLAN: return "an array of [name, meta] pairs";
	}
	return "?";
}

bool ctl_is_ctl(const uint8_t *body, size_t len)
{
	/* a fixmap up to 15 keys; start has more, a map16 */
	if (len >= 5 && (body[0] & 0xf0) == 0x80)
		return memcmp(body + 1, "\xa3" "ctl", 4) == 0;
	return len >= 7 && body[0] == 0xde && memcmp(body + 3, "\xa3" "ctl", 4) == 0;
}

/* ---- the checked builder -------------------------------------------------------- */

static int w_write(void *data, const char *p, size_t n)
{
	struct ctl_writer *w = data;
	if (pv_buf_append(w->out, p, n) < 0) {
		w->oom = true;
		return -1;
	}
	return 0;
}

void ctl_begin(struct ctl_writer *w, struct pv_buf *out, const char *name, unsigned nfields)
{
	static const uint8_t zero[4];
	w->out = out;
	w->start = out->len;
	w->oom = pv_buf_append(out, zero, 4) < 0;
	msgpack_packer_init(&w->pk, w, w_write);
	msgpack_pack_map(&w->pk, nfields + 1);
	ctl_key(w, "ctl");
	ctl_key(w, name);
}

void ctl_key(struct ctl_writer *w, const char *key)
{
	msgpack_pack_str_with_body(&w->pk, key, strlen(key));
}

void ctl_str(struct ctl_writer *w, const char *s, size_t len)
{
	msgpack_pack_str_with_body(&w->pk, s, len);
}

int ctl_end_err(struct ctl_writer *w, struct pv_err *err)
{
	size_t body = w->out->len - w->start - 4;
	struct ctl_msg m;
	struct pv_err e;

	if (w->oom || body > FRAME_MAX_BODY) {
		w->out->len = w->start;
		return pv_err_set(err, w->oom ? -ENOMEM : -EMSGSIZE, SIZE_MAX,
				  w->oom ? "out of memory building a control message"
					 : "control message larger than the frame limit");
	}
	/* What leaves a process is what the other side's strict decoder accepts:
	 * a builder that packed a wrong count or type fails here, in the sender. */
	if (ctl_parse(w->out->data + w->start + 4, body, &m, &e) < 0) {
		w->out->len = w->start;
		return pv_err_set(err, -EPROTO, SIZE_MAX, "built a bad control message: %s", e.msg);
	}
	frame_put_len(w->out->data + w->start, (uint32_t)body);
	return 0;
}

int ctl_end(struct ctl_writer *w)
{
	return ctl_end_err(w, NULL);
}

/* ---- typed senders ---------------------------------------------------------------- */

static void w_str_c(struct ctl_writer *w, const char *s)
{
	ctl_str(w, s, strlen(s));
}

static void w_str_nil(struct ctl_writer *w, const char *s, size_t len)
{
	if (s)
		ctl_str(w, s, len);
	else
		msgpack_pack_nil(&w->pk);
}

static void w_strv(struct ctl_writer *w, const char *const *v, size_t n)
{
	if (n > UINT32_MAX) {
		w->oom = true;
		return;
	}
	msgpack_pack_array(&w->pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		w_str_c(w, v[i]);
}

static void w_bool(struct ctl_writer *w, bool b)
{
	b ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk);
}

static const char *fname(enum ctl_id id, unsigned i)
{
	return ctl_defs[id].fields[i].name;
}

/* Begins message id with its field count from the table. */
static void w_begin(struct ctl_writer *w, struct pv_buf *out, enum ctl_id id)
{
	ctl_begin(w, out, ctl_defs[id].name, ctl_defs[id].nfields);
}

int ctl_put_start(struct pv_buf *out, const struct ctl_start *s)
{
	struct ctl_writer w;
	w_begin(&w, out, CTL_START);
	ctl_key(&w, fname(CTL_START, 0));
	w_str_nil(&w, s->config, s->config ? strlen(s->config) : 0);
	ctl_key(&w, fname(CTL_START, 1));
	w_str_c(&w, s->scratch);
	ctl_key(&w, fname(CTL_START, 2));
	w_str_c(&w, s->path);
	ctl_key(&w, fname(CTL_START, 3));
	w_str_c(&w, s->file);
	ctl_key(&w, fname(CTL_START, 4));
	w_strv(&w, s->roots, s->nroots);
	ctl_key(&w, fname(CTL_START, 5));
	w_str_nil(&w, s->cache_dir, s->cache_dir ? strlen(s->cache_dir) : 0);
	ctl_key(&w, fname(CTL_START, 6));
	w_str_nil(&w, s->fixture, s->fixture_len);
	ctl_key(&w, fname(CTL_START, 7));
	w_bool(&w, s->force);
	ctl_key(&w, fname(CTL_START, 8));
	w_bool(&w, s->include_slow);
	ctl_key(&w, fname(CTL_START, 9));
	w_strv(&w, s->tags, s->ntags);
	ctl_key(&w, fname(CTL_START, 10));
	w_strv(&w, s->no_tags, s->nno_tags);
	ctl_key(&w, fname(CTL_START, 11));
	w_bool(&w, s->interactive);
	ctl_key(&w, fname(CTL_START, 12));
	w_str_nil(&w, s->pause_at, s->pause_at ? strlen(s->pause_at) : 0);
	ctl_key(&w, fname(CTL_START, 13));
	w_strv(&w, s->tag_meta, s->ntag_meta);
	ctl_key(&w, fname(CTL_START, 14));
	w_strv(&w, s->no_tag_meta, s->nno_tag_meta);
	ctl_key(&w, fname(CTL_START, 15));
	w_strv(&w, s->only, s->nonly);
	return ctl_end(&w);
}

static int put_empty(struct pv_buf *out, enum ctl_id id)
{
	struct ctl_writer w;
	w_begin(&w, out, id);
	return ctl_end(&w);
}

static int put_str(struct pv_buf *out, enum ctl_id id, const char *s)
{
	struct ctl_writer w;
	w_begin(&w, out, id);
	ctl_key(&w, fname(id, 0));
	w_str_c(&w, s);
	return ctl_end(&w);
}

int ctl_put_claim_ok(struct pv_buf *out) { return put_empty(out, CTL_CLAIM_OK); }
int ctl_put_done(struct pv_buf *out) { return put_empty(out, CTL_DONE); }
int ctl_put_claim_denied(struct pv_buf *out, const char *reason) { return put_str(out, CTL_CLAIM_DENIED, reason); }
int ctl_put_acquire_denied(struct pv_buf *out, const char *reason) { return put_str(out, CTL_ACQUIRE_DENIED, reason); }

int ctl_put_acquired(struct pv_buf *out, uint32_t first_cid, uint32_t ncids)
{
	struct ctl_writer w;
	if (ncids > CTL_MAX_VMS || ncids > UINT32_MAX - first_cid)
		return -EINVAL;
	w_begin(&w, out, CTL_ACQUIRED);
	ctl_key(&w, fname(CTL_ACQUIRED, 0));
	msgpack_pack_array(&w.pk, ncids);
	for (uint32_t i = 0; i < ncids; i++)
		msgpack_pack_uint32(&w.pk, first_cid + i);
	return ctl_end(&w);
}

int ctl_put_plan(struct pv_buf *out, size_t ntests,
		 void (*get)(void *ctx, size_t i, const char **name, const struct pv_meta_map **meta), void *ctx,
		 struct pv_err *err)
{
	struct ctl_writer w;
	if (ntests > UINT32_MAX)
		return pv_err_set(err, -EMSGSIZE, SIZE_MAX, "a plan of %zu tests is too large", ntests);
	w_begin(&w, out, CTL_PLAN);
	ctl_key(&w, fname(CTL_PLAN, 0));
	msgpack_pack_array(&w.pk, (uint32_t)ntests);
	for (size_t i = 0; i < ntests; i++) {
		const char *name;
		const struct pv_meta_map *meta;
		int rc;
		get(ctx, i, &name, &meta);
		msgpack_pack_array(&w.pk, 2);
		w_str_c(&w, name);
		if ((rc = pv_meta_map_pack(&w.pk, meta, err)) < 0) {
			out->len = w.start;
			return rc;
		}
	}
	return ctl_end_err(&w, err);
}

int ctl_put_log(struct pv_buf *out, const char *test, const char *msg, size_t msg_len)
{
	struct ctl_writer w;
	w_begin(&w, out, CTL_LOG);
	ctl_key(&w, fname(CTL_LOG, 0));
	w_str_c(&w, test);
	ctl_key(&w, fname(CTL_LOG, 1));
	ctl_str(&w, msg, msg_len);
	return ctl_end(&w);
}

int ctl_put_timeout(struct pv_buf *out, uint64_t ns)
{
	struct ctl_writer w;
	w_begin(&w, out, CTL_TIMEOUT);
	ctl_key(&w, fname(CTL_TIMEOUT, 0));
	msgpack_pack_uint64(&w.pk, ns);
	return ctl_end(&w);
}

static int put_mem_cpus(struct pv_buf *out, enum ctl_id id, uint64_t memory_bytes, uint32_t cpus, int64_t vms)
{
	struct ctl_writer w;
	w_begin(&w, out, id);
	ctl_key(&w, fname(id, 0));
	msgpack_pack_uint64(&w.pk, memory_bytes);
	ctl_key(&w, fname(id, 1));
	msgpack_pack_uint32(&w.pk, cpus);
	if (vms >= 0) {
		ctl_key(&w, fname(id, 2));
		msgpack_pack_uint32(&w.pk, (uint32_t)vms);
	}
	return ctl_end(&w);
}

int ctl_put_claim(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus)
{
	return put_mem_cpus(out, CTL_CLAIM, memory_bytes, cpus, -1);
}

int ctl_put_release(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus)
{
	return put_mem_cpus(out, CTL_RELEASE, memory_bytes, cpus, -1);
}

int ctl_put_acquire(struct pv_buf *out, uint64_t memory_bytes, uint32_t cpus, uint32_t vms)
{
	if (vms > CTL_MAX_VMS)
		return -EINVAL;
	return put_mem_cpus(out, CTL_ACQUIRE, memory_bytes, cpus, vms);
}

int ctl_put_fixture_wait(struct pv_buf *out, bool waiting)
{
	struct ctl_writer w;
	w_begin(&w, out, CTL_FIXTURE_WAIT);
	ctl_key(&w, fname(CTL_FIXTURE_WAIT, 0));
	w_bool(&w, waiting);
	return ctl_end(&w);
}

/* ---- the strict decoder ------------------------------------------------------------ */

#define BAD(off, ...) pv_err_set(err, -EBADMSG, off, __VA_ARGS__)

/* Reads one value at r as field f of message d, advancing r past it. */
static int check_value(struct mpr *r, const struct ctl_def *d, const struct ctl_field *f, struct pv_err *err)
{
	struct mpr_item it, e, name;
	int rc;
	size_t off = mpr_offset(r);

	if ((rc = mpr_next(r, &it, err)) < 0)
		return rc;
	switch (f->type) {
	case CTL_T_STR:
		if (it.type == MPR_STR)
			return 0;
		break;
	case CTL_T_STR_NIL:
		if (it.type == MPR_STR || it.type == MPR_NIL)
			return 0;
		break;
	case CTL_T_BOOL:
		if (it.type == MPR_BOOL)
			return 0;
		break;
	case CTL_T_UINT:
		if (it.type != MPR_UINT)
			break;
		if (it.v.u > f->max)
			return BAD(off, "control message \"%s\": field \"%s\" is %llu, at most %llu", d->name, f->name,
				   (unsigned long long)it.v.u, (unsigned long long)f->max);
		return 0;
	case CTL_T_STRV:
	case CTL_T_UINTV:
		if (it.type != MPR_ARRAY)
			break;
		if (f->max_count && it.v.count > f->max_count)
			return BAD(off, "control message \"%s\": field \"%s\" has %u elements, at most %u", d->name,
				   f->name, it.v.count, f->max_count);
		for (uint32_t i = 0; i < it.v.count; i++) {
			size_t eoff = mpr_offset(r);
			if ((rc = mpr_next(r, &e, err)) < 0)
				return rc;
			if (f->type == CTL_T_STRV && e.type != MPR_STR)
				return BAD(eoff, "control message \"%s\": field \"%s\"[%u] must be a str, not %s", d->name,
					   f->name, i, mpr_type_name(e.type));
			if (f->type == CTL_T_UINTV && (e.type != MPR_UINT || e.v.u > f->max))
				return BAD(eoff, "control message \"%s\": field \"%s\"[%u] must be an unsigned integer "
					   "up to %llu", d->name, f->name, i, (unsigned long long)f->max);
		}
		return 0;
	case CTL_T_PLAN:
		if (it.type != MPR_ARRAY)
			break;
		for (uint32_t i = 0; i < it.v.count; i++) {
			size_t eoff = mpr_offset(r);
			if ((rc = mpr_next(r, &e, err)) < 0)
				return rc;
			if (e.type != MPR_ARRAY || e.v.count != 2)
				return BAD(eoff, "control message \"%s\": field \"%s\"[%u] must be a [name, meta] pair",
					   d->name, f->name, i);
			eoff = mpr_offset(r);
			if ((rc = mpr_next(r, &name, err)) < 0)
				return rc;
			if (name.type != MPR_STR)
				return BAD(eoff, "control message \"%s\": field \"%s\"[%u]: the name must be a str, not %s",
					   d->name, f->name, i, mpr_type_name(name.type));
			eoff = mpr_offset(r);
			/* the map itself is read by pv_meta_map_read: here only its
			 * kind and extent, to the event contract's depth */
			if (mpr_left(r) == 0 || ((*r->p & 0xf0) != 0x80 && *r->p != 0xde && *r->p != 0xdf))
				return BAD(eoff, "control message \"%s\": field \"%s\"[%u]: the meta must be a map",
					   d->name, f->name, i);
			if ((rc = mpr_skip(r, 40, err)) < 0)
				return rc;
		}
		return 0;
	}
	return BAD(off, "control message \"%s\": field \"%s\" must be %s, not %s", d->name, f->name,
		   ctl_type_name(f->type), mpr_type_name(it.type));
}

/* Lists d's field names into buf for an error message. */
static const char *field_list(const struct ctl_def *d, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = 0;
	if (!d->nfields)
		return "none";
	for (unsigned i = 0; i < d->nfields && n < len; i++) {
		int k = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", d->fields[i].name);
		if (k < 0)
			break;
		n += (size_t)k;
	}
	return buf;
}

static int parse_strict(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err)
{
	struct mpr r;
	struct mpr_item top, k, v;
	const struct ctl_def *d;
	bool seen[CTL_MAX_KEYS] = { false };
	char list[256];
	int rc;

	memset(m, 0, sizeof(*m));
	if (!len) /* an empty frame's body may be NULL */
		return BAD(0, "an empty control message");
	mpr_init(&r, body, len);
	if ((rc = mpr_next(&r, &top, err)) < 0)
		return rc;
	if (top.type != MPR_MAP)
		return BAD(0, "a control message must be a map, not %s", mpr_type_name(top.type));
	if (top.v.count == 0 || top.v.count > CTL_MAX_KEYS)
		return BAD(0, "a control message has 1 to %d keys, not %u", CTL_MAX_KEYS, top.v.count);
	if ((rc = mpr_next(&r, &k, err)) < 0)
		return rc;
	if (k.type != MPR_STR || k.v.raw.len != 3 || memcmp(k.v.raw.ptr, "ctl", 3) != 0)
		return BAD(k.offset, "a control message's first key must be \"ctl\"");
	if ((rc = mpr_next(&r, &v, err)) < 0)
		return rc;
	if (v.type != MPR_STR)
		return BAD(v.offset, "a control message's name must be a str, not %s", mpr_type_name(v.type));
	d = ctl_def_find((const char *)v.v.raw.ptr, v.v.raw.len);
	if (!d)
		return BAD(v.offset, "unknown control message \"%.*s\"", (int)(v.v.raw.len > 64 ? 64 : v.v.raw.len),
			   v.v.raw.ptr);
	m->def = d;
	memcpy(m->name, d->name, strlen(d->name) + 1);
	for (uint32_t i = 1; i < top.v.count; i++) {
		unsigned fi;
		if ((rc = mpr_next(&r, &k, err)) < 0)
			return rc;
		if (k.type != MPR_STR)
			return BAD(k.offset, "control message \"%s\": a key is %s, not a str", d->name,
				   mpr_type_name(k.type));
		for (fi = 0; fi < d->nfields; fi++)
			if (strlen(d->fields[fi].name) == k.v.raw.len &&
			    memcmp(d->fields[fi].name, k.v.raw.ptr, k.v.raw.len) == 0)
				break;
		if (fi == d->nfields)
			return BAD(k.offset, "control message \"%s\" has no field \"%.*s\" (fields: %s)", d->name,
				   (int)(k.v.raw.len > 64 ? 64 : k.v.raw.len), k.v.raw.ptr, field_list(d, list, sizeof(list)));
		if (seen[fi])
			return BAD(k.offset, "control message \"%s\": field \"%s\" appears twice", d->name,
				   d->fields[fi].name);
		seen[fi] = true;
		m->kv[m->nkeys].key = k.v.raw.ptr;
		m->kv[m->nkeys].key_len = k.v.raw.len;
		m->kv[m->nkeys].at = r;
		m->nkeys++;
		if ((rc = check_value(&r, d, &d->fields[fi], err)) < 0)
			return rc;
	}
	for (unsigned fi = 0; fi < d->nfields; fi++)
		if (d->fields[fi].required && !seen[fi])
			return BAD(len, "control message \"%s\": field \"%s\" is missing", d->name, d->fields[fi].name);
	if (mpr_left(&r))
		return BAD(mpr_offset(&r), "control message \"%s\": %zu bytes after its map", d->name, mpr_left(&r));
	return 0;
}

int ctl_parse(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err)
{
	int rc = parse_strict(body, len, m, err);
	/* a cut or impossible item (the reader's -ENODATA, -ELOOP) is as bad a
	 * message as any other */
	return rc < 0 ? -EBADMSG : 0;
}

int ctl_parse_dir(const uint8_t *body, size_t len, enum ctl_dir dir, struct ctl_msg *m, struct pv_err *err)
{
	int rc = ctl_parse(body, len, m, err);
	if (rc < 0)
		return rc;
	if (m->def->dir != dir)
		return BAD(0, "control message \"%s\" goes from the %s to the %s", m->name,
			   m->def->dir == CTL_TO_RUNNER ? "scheduler" : "runner",
			   m->def->dir == CTL_TO_RUNNER ? "runner" : "scheduler");
	return 0;
}

int ctl_parse_any(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err)
{
	struct mpr r;
	struct mpr_item top, k, v;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!len) /* an empty frame's body may be NULL (a buffer never grown) */
		return BAD(0, "an empty message");
	mpr_init(&r, body, len);
	if ((rc = mpr_next(&r, &top, err)) < 0)
		return rc;
	if (top.type != MPR_MAP || top.v.count > CTL_MAX_KEYS)
		return BAD(0, "message must be a map of at most %d keys", CTL_MAX_KEYS);
	for (uint32_t i = 0; i < top.v.count; i++) {
		if ((rc = mpr_next(&r, &k, err)) < 0)
			return rc;
		if (k.type != MPR_STR)
			return BAD(k.offset, "message key is not a str");
		m->kv[i].key = k.v.raw.ptr;
		m->kv[i].key_len = k.v.raw.len;
		m->kv[i].at = r;
		if (k.v.raw.len == 3 && memcmp(k.v.raw.ptr, "ctl", 3) == 0 && !m->name[0]) {
			if ((rc = mpr_next(&r, &v, err)) < 0)
				return rc;
			if (v.type != MPR_STR || v.v.raw.len >= sizeof(m->name))
				return BAD(v.offset, "message name is not a short str");
			memcpy(m->name, v.v.raw.ptr, v.v.raw.len);
			m->name[v.v.raw.len] = 0;
		} else if ((rc = mpr_skip(&r, 40, err)) < 0) {
			return rc;
		}
	}
	m->nkeys = top.v.count;
	return 0;
}

/* ---- accessors -------------------------------------------------------------------- */

bool ctl_is(const struct ctl_msg *m, const char *name)
{
	return strcmp(m->name, name) == 0;
}

bool ctl_find(const struct ctl_msg *m, const char *key, struct mpr *ret)
{
	size_t n = strlen(key);
	for (unsigned i = 0; i < m->nkeys; i++)
		if (m->kv[i].key_len == n && memcmp(m->kv[i].key, key, n) == 0) {
			*ret = m->kv[i].at;
			return true;
		}
	return false;
}

char *ctl_get_strdup(const struct ctl_msg *m, const char *key)
{
	struct mpr r;
	struct mpr_item it;
	char *s;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || it.type != MPR_STR)
		return NULL;
	s = malloc(it.v.raw.len + 1);
	if (!s)
		return NULL;
	memcpy(s, it.v.raw.ptr, it.v.raw.len);
	s[it.v.raw.len] = 0;
	return s;
}

bool ctl_get_uint(const struct ctl_msg *m, const char *key, uint64_t *ret)
{
	struct mpr r;
	struct mpr_item it;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || it.type != MPR_UINT)
		return false;
	*ret = it.v.u;
	return true;
}

bool ctl_get_bool(const struct ctl_msg *m, const char *key, bool *ret)
{
	struct mpr r;
	struct mpr_item it;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || it.type != MPR_BOOL)
		return false;
	*ret = it.v.b;
	return true;
}

void ctl_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **ctl_get_strv(const struct ctl_msg *m, const char *key, size_t *ret_n)
{
	struct mpr r;
	struct mpr_item it;
	char **v;
	*ret_n = 0;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || it.type != MPR_ARRAY)
		return NULL;
	v = calloc(it.v.count + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < it.v.count; i++) {
		struct mpr_item s;
		if (mpr_next(&r, &s, NULL) < 0 || s.type != MPR_STR ||
		    !(v[i] = strndup((const char *)s.v.raw.ptr, s.v.raw.len))) {
			ctl_strv_free(v, i);
			return NULL;
		}
	}
	*ret_n = it.v.count;
	return v;
}

bool ctl_get_uintv(const struct ctl_msg *m, const char *key, uint32_t *ret, size_t max, size_t *ret_n)
{
	struct mpr r;
	struct mpr_item it, c;
	size_t n = 0;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || it.type != MPR_ARRAY)
		return false;
	for (uint32_t i = 0; i < it.v.count; i++) {
		if (mpr_next(&r, &c, NULL) < 0 || c.type != MPR_UINT || c.v.u > UINT32_MAX)
			return false;
		if (n < max)
			ret[n++] = (uint32_t)c.v.u;
	}
	*ret_n = n;
	return true;
}

bool ctl_get_raw(const struct ctl_msg *m, const char *key, const uint8_t **ret, uint32_t *ret_len)
{
	struct mpr r;
	struct mpr_item it;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0 || (it.type != MPR_STR && it.type != MPR_BIN))
		return false;
	*ret = it.v.raw.ptr;
	*ret_len = it.v.raw.len;
	return true;
}

bool ctl_get_int(const struct ctl_msg *m, const char *key, int64_t *ret)
{
	struct mpr r;
	struct mpr_item it;
	if (!ctl_find(m, key, &r) || mpr_next(&r, &it, NULL) < 0)
		return false;
	if (it.type == MPR_INT)
		*ret = it.v.i;
	else if (it.type == MPR_UINT && it.v.u <= INT64_MAX)
		*ret = (int64_t)it.v.u;
	else
		return false;
	return true;
}

/* wire.c - decoding requests and queueing responses (docs/wire.md). */
#include "agent.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"

static const char *const key_names[AG_K_COUNT] = {
	[AG_K_ID] = "id",
	[AG_K_OP] = "op",
	[AG_K_ARGV] = "argv",
	[AG_K_CMD] = "cmd",
	[AG_K_ENV] = "env",
	[AG_K_ENV_CLEAR] = "env_clear",
	[AG_K_CWD] = "cwd",
	[AG_K_STDIN] = "stdin",
	[AG_K_TIMEOUT_MS] = "timeout_ms",
	[AG_K_PROC] = "proc",
	[AG_K_SIGNAL] = "signal",
	[AG_K_DATA] = "data",
	[AG_K_PATH] = "path",
	[AG_K_APPEND] = "append",
	[AG_K_MODE] = "mode",
	[AG_K_PARENTS] = "parents",
	[AG_K_FROM] = "from",
	[AG_K_TO] = "to",
	[AG_K_TIME_NS] = "time_ns",
	[AG_K_ENTROPY] = "entropy",
	[AG_K_HOSTNAME] = "hostname",
	[AG_K_RNG_SEED] = "rng_seed",
	[AG_K_MACHINE_ID] = "machine_id",
	[AG_K_WHICH] = "which",
	[AG_K_STREAM] = "stream",
	[AG_K_START] = "start",
	[AG_K_FROM_END] = "from_end",
	[AG_K_FILE] = "file",
	[AG_K_READ] = "read",
	[AG_K_WRITE] = "write",
	[AG_K_CREATE] = "create",
	[AG_K_TRUNCATE] = "truncate",
	[AG_K_EXCLUSIVE] = "exclusive",
	[AG_K_N] = "n",
	[AG_K_OFFSET] = "offset",
	[AG_K_WHENCE] = "whence",
	[AG_K_UID] = "uid",
	[AG_K_GID] = "gid",
	[AG_K_GROUPS] = "groups",
	[AG_K_DELTA_NS] = "delta_ns",
	[AG_K_DURATION_NS] = "duration_ns",
	[AG_K_NR] = "nr",
	[AG_K_ARGS] = "args",
	[AG_K_BUFS] = "bufs",
	[AG_K_PTRS] = "ptrs",
	[AG_K_CALL] = "call",
	[AG_K_REQUEST] = "request",
	[AG_K_ARG] = "arg",
	[AG_K_FD] = "fd",
	[AG_K_ADDR] = "addr",
	[AG_K_LEN] = "len",
	[AG_K_WORKER] = "worker",
	[AG_K_CAPS] = "caps",
	[AG_K_UNSHARE] = "unshare",
};

static int bad(struct ag_req *rq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct ag_req *rq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rq->msg, sizeof(rq->msg), fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int find_key(const uint8_t *p, uint32_t n)
{
	for (int i = 0; i < AG_K_COUNT; i++)
		if (strlen(key_names[i]) == n && memcmp(key_names[i], p, n) == 0)
			return i;
	return -1;
}

int ag_req_parse(struct ag_req *rq, const uint8_t *body, size_t len)
{
	struct mpr r;
	struct mpr_item top, k, v;
	struct pv_err e;
	bool id_bad = false;

	memset(rq, 0, sizeof(*rq));
	rq->gen = ag.gen;
	snprintf(rq->op, sizeof(rq->op), "request");
	mpr_init(&r, body, len);
	if (mpr_next(&r, &top, &e) < 0)
		return bad(rq, "malformed request: %s", e.msg);
	if (top.type != MPR_MAP)
		return bad(rq, "request is a msgpack %s, not a map", mpr_type_name(top.type));
	for (uint32_t i = 0; i < top.v.count; i++) {
		struct mpr at;
		int idx;
		if (mpr_next(&r, &k, &e) < 0)
			return bad(rq, "malformed request: %s", e.msg);
		if (k.type != MPR_STR)
			return bad(rq, "request key at byte %zu is a %s, not a str", k.offset, mpr_type_name(k.type));
		idx = find_key(k.v.raw.ptr, k.v.raw.len);
		at = r;
		if (mpr_skip(&r, AG_MAX_DEPTH, &e) < 0)
			return bad(rq, "malformed request: %s", e.msg);
		if (idx < 0)
			continue; /* unknown keys are ignored: newer hosts may add options */
		if (rq->has[idx])
			return bad(rq, "duplicate key '%s'", key_names[idx]);
		rq->has[idx] = true;
		rq->at[idx] = at;
		if (idx == AG_K_ID) {
			/* read at once, so later errors can name the request */
			struct mpr c = at;
			if (mpr_next(&c, &v, NULL) == 0 && v.type == MPR_UINT && v.v.u <= UINT32_MAX)
				rq->id = (uint32_t)v.v.u;
			else
				id_bad = true;
		}
	}
	if (mpr_left(&r))
		return bad(rq, "%zu trailing bytes after the request map", mpr_left(&r));
	if (!rq->has[AG_K_ID])
		return bad(rq, "request has no 'id'");
	if (id_bad)
		return bad(rq, "'id' must be an unsigned 32-bit integer");
	if (!rq->has[AG_K_OP])
		return bad(rq, "request has no 'op'");
	{
		struct mpr c = rq->at[AG_K_OP];
		if (mpr_next(&c, &v, NULL) < 0 || v.type != MPR_STR)
			return bad(rq, "'op' must be a str");
		if (v.v.raw.len >= sizeof(rq->op) || memchr(v.v.raw.ptr, 0, v.v.raw.len))
			return bad(rq, "unknown op");
		memcpy(rq->op, v.v.raw.ptr, v.v.raw.len);
		rq->op[v.v.raw.len] = 0;
	}
	return 0;
}

/* 1 with *it set when k is present and not nil, else 0. */
static int get(struct ag_req *rq, enum ag_key k, struct mpr_item *it, struct mpr *after)
{
	struct mpr c;
	if (!rq->has[k])
		return 0;
	c = rq->at[k];
	/* ag_req_parse already skipped this value successfully */
	if (mpr_next(&c, it, NULL) < 0 || it->type == MPR_NIL)
		return 0;
	if (after)
		*after = c;
	return 1;
}

int ag_req_item(struct ag_req *rq, enum ag_key k, struct mpr_item *it, struct mpr *after)
{
	return get(rq, k, it, after);
}

const char *ag_key_name(enum ag_key k)
{
	return key_names[k];
}

static int type_err(struct ag_req *rq, enum ag_key k, const char *want, const struct mpr_item *it)
{
	snprintf(rq->msg, sizeof(rq->msg), "'%s' must be %s, not %s%s", key_names[k], want,
		 it->type == MPR_INT ? "a negative " : "", mpr_type_name(it->type));
	return -EINVAL;
}

int ag_req_u64(struct ag_req *rq, enum ag_key k, uint64_t def, uint64_t *ret)
{
	struct mpr_item it;
	if (!get(rq, k, &it, NULL)) {
		*ret = def;
		return 0;
	}
	if (it.type != MPR_UINT)
		return type_err(rq, k, "an unsigned integer", &it);
	*ret = it.v.u;
	return 0;
}

int ag_req_i64(struct ag_req *rq, enum ag_key k, int64_t def, int64_t *ret)
{
	struct mpr_item it;
	if (!get(rq, k, &it, NULL)) {
		*ret = def;
		return 0;
	}
	if (it.type == MPR_INT) {
		*ret = it.v.i;
		return 0;
	}
	if (it.type != MPR_UINT || it.v.u > INT64_MAX)
		return type_err(rq, k, "an integer", &it);
	*ret = (int64_t)it.v.u;
	return 0;
}

int ag_req_bool(struct ag_req *rq, enum ag_key k, bool def, bool *ret)
{
	struct mpr_item it;
	if (!get(rq, k, &it, NULL)) {
		*ret = def;
		return 0;
	}
	if (it.type != MPR_BOOL)
		return type_err(rq, k, "a bool", &it);
	*ret = it.v.b;
	return 0;
}

static int dup_str(struct ag_req *rq, enum ag_key k, const struct mpr_item *it, char **ret)
{
	char *s;
	if (memchr(it->v.raw.ptr, 0, it->v.raw.len)) {
		snprintf(rq->msg, sizeof(rq->msg), "'%s' contains a NUL byte", key_names[k]);
		return -EINVAL;
	}
	s = malloc((size_t)it->v.raw.len + 1);
	if (!s) {
		snprintf(rq->msg, sizeof(rq->msg), "out of memory");
		return -ENOMEM;
	}
	memcpy(s, it->v.raw.ptr, it->v.raw.len);
	s[it->v.raw.len] = 0;
	*ret = s;
	return 0;
}

int ag_req_str(struct ag_req *rq, enum ag_key k, char **ret)
{
	struct mpr_item it;
	*ret = NULL;
	if (!get(rq, k, &it, NULL))
		return 0;
	if (it.type != MPR_STR)
		return type_err(rq, k, "a str", &it);
	return dup_str(rq, k, &it, ret);
}

int ag_req_str_req(struct ag_req *rq, enum ag_key k, char **ret)
{
	int rc = ag_req_str(rq, k, ret);
	if (rc == 0 && !*ret) {
		snprintf(rq->msg, sizeof(rq->msg), "missing '%s'", key_names[k]);
		return -EINVAL;
	}
	return rc;
}

int ag_req_bin(struct ag_req *rq, enum ag_key k, const uint8_t **ret, uint32_t *ret_len, bool *present)
{
	struct mpr_item it;
	*present = false;
	*ret = NULL;
	*ret_len = 0;
	if (!get(rq, k, &it, NULL))
		return 0;
	/* str is accepted too: a host that knows its bytes are text may send them so */
	if (it.type != MPR_BIN && it.type != MPR_STR)
		return type_err(rq, k, "bin", &it);
	*ret = it.v.raw.ptr;
	*ret_len = it.v.raw.len;
	*present = true;
	return 0;
}

void ag_strv_free(char **v)
{
	if (!v)
		return;
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

int ag_req_u32v(struct ag_req *rq, enum ag_key k, uint32_t **ret, size_t *ret_n)
{
	struct mpr_item it, e;
	struct mpr c;
	uint32_t *v;

	*ret = NULL;
	*ret_n = 0;
	if (!get(rq, k, &it, &c))
		return 0;
	if (it.type != MPR_ARRAY)
		return type_err(rq, k, "an array of unsigned integers", &it);
	if (it.v.count > AG_MAX_GROUPS) {
		snprintf(rq->msg, sizeof(rq->msg), "'%s' has %u entries, over the limit of %u", key_names[k],
			 it.v.count, AG_MAX_GROUPS);
		return -EINVAL;
	}
	if (it.v.count == 0)
		return 0;
	if (!(v = calloc(it.v.count, sizeof(*v)))) {
		snprintf(rq->msg, sizeof(rq->msg), "out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < it.v.count; i++) {
		if (mpr_next(&c, &e, NULL) < 0 || e.type != MPR_UINT || e.v.u > UINT32_MAX) {
			free(v);
			snprintf(rq->msg, sizeof(rq->msg), "'%s' must be an array of unsigned 32-bit integers",
				 key_names[k]);
			return -EINVAL;
		}
		v[i] = (uint32_t)e.v.u;
	}
	*ret = v;
	*ret_n = it.v.count;
	return 0;
}

/* A NULL-terminated vector for n entries, within AG_MAX_STRV. */
static int new_strv(struct ag_req *rq, enum ag_key k, uint32_t n, char ***ret)
{
	if (n > AG_MAX_STRV) {
		snprintf(rq->msg, sizeof(rq->msg), "'%s' has %u entries, over the limit of %u", key_names[k], n,
			 AG_MAX_STRV);
		return -EINVAL;
	}
	*ret = calloc((size_t)n + 1, sizeof(**ret));
	if (!*ret) {
		snprintf(rq->msg, sizeof(rq->msg), "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int ag_req_strv(struct ag_req *rq, enum ag_key k, char ***ret, size_t *ret_n)
{
	struct mpr_item it, s;
	struct mpr c;
	char **v;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if (!get(rq, k, &it, &c))
		return 0;
	if (it.type != MPR_ARRAY)
		return type_err(rq, k, "an array of str", &it);
	if ((rc = new_strv(rq, k, it.v.count, &v)) < 0)
		return rc;
	for (uint32_t i = 0; i < it.v.count; i++) {
		if (mpr_next(&c, &s, NULL) < 0 || s.type != MPR_STR) {
			ag_strv_free(v);
			snprintf(rq->msg, sizeof(rq->msg), "'%s' must be an array of str", key_names[k]);
			return -EINVAL;
		}
		if ((rc = dup_str(rq, k, &s, &v[i])) < 0) {
			ag_strv_free(v);
			return rc;
		}
	}
	*ret = v;
	*ret_n = it.v.count;
	return 0;
}

int ag_req_env(struct ag_req *rq, enum ag_key k, char ***ret, size_t *ret_n)
{
	struct mpr_item it, key, val;
	struct mpr c;
	char **v;
	int rc;

	*ret = NULL;
	*ret_n = 0;
	if (!get(rq, k, &it, &c))
		return 0;
	if (it.type != MPR_MAP)
		return type_err(rq, k, "a map of str to str", &it);
	if ((rc = new_strv(rq, k, it.v.count, &v)) < 0)
		return rc;
	for (uint32_t i = 0; i < it.v.count; i++) {
		char *s;
		if (mpr_next(&c, &key, NULL) < 0 || mpr_next(&c, &val, NULL) < 0 || key.type != MPR_STR ||
		    val.type != MPR_STR) {
			ag_strv_free(v);
			snprintf(rq->msg, sizeof(rq->msg), "'%s' must be a map of str to str", key_names[k]);
			return -EINVAL;
		}
		if (key.v.raw.len == 0 || memchr(key.v.raw.ptr, '=', key.v.raw.len) ||
		    memchr(key.v.raw.ptr, 0, key.v.raw.len) || memchr(val.v.raw.ptr, 0, val.v.raw.len)) {
			ag_strv_free(v);
			snprintf(rq->msg, sizeof(rq->msg),
				 "'%s': a variable name must be non-empty without '=' or NUL, a value without NUL",
				 key_names[k]);
			return -EINVAL;
		}
		s = malloc((size_t)key.v.raw.len + val.v.raw.len + 2);
		if (!s) {
			ag_strv_free(v);
			snprintf(rq->msg, sizeof(rq->msg), "out of memory");
			return -ENOMEM;
		}
		memcpy(s, key.v.raw.ptr, key.v.raw.len);
		s[key.v.raw.len] = '=';
		memcpy(s + key.v.raw.len + 1, val.v.raw.ptr, val.v.raw.len);
		s[key.v.raw.len + 1 + val.v.raw.len] = 0;
		v[i] = s;
	}
	*ret = v;
	*ret_n = it.v.count;
	return 0;
}

/* ---- output queue ---------------------------------------------------------------- */

struct ag_chunk {
	struct ag_chunk *next;
	struct pv_buf b;
	size_t off; /* bytes already written */
};

/* A list of whole frames rather than one buffer: consuming a written prefix
 * of one big buffer would memmove the rest on every write. */
static struct ag_chunk *q_head, *q_tail;

static void chunk_free(struct ag_chunk *c)
{
	if (!c)
		return;
	pv_buf_release(&c->b);
	free(c);
}

static void enqueue(struct ag_chunk *c)
{
	c->next = NULL;
	if (q_tail)
		q_tail->next = c;
	else
		q_head = c;
	q_tail = c;
	ag.out_bytes += c->b.len;
}

void ag_out_frame(const uint8_t *body, uint32_t len)
{
	struct ag_chunk *c;
	if (!ag.connected)
		return;
	if (!(c = calloc(1, sizeof(*c))) || pv_buf_reserve(&c->b, (size_t)len + FRAME_HDR_LEN) < 0) {
		ag_log("out of memory relaying a worker's frame (%u bytes)", len);
		chunk_free(c);
		return;
	}
	c->b.len = FRAME_HDR_LEN;
	frame_put_len(c->b.data, len);
	pv_buf_append(&c->b, body, len);
	enqueue(c);
}

bool ag_out_pending(void)
{
	return q_head != NULL;
}

int ag_out_flush(int fd)
{
	while (q_head) {
		struct ag_chunk *c = q_head;
		ssize_t n = write(fd, c->b.data + c->off, c->b.len - c->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		c->off += (size_t)n;
		ag.out_bytes -= (size_t)n;
		if (c->off == c->b.len) {
			q_head = c->next;
			if (!q_head)
				q_tail = NULL;
			chunk_free(c);
		}
	}
	return 0;
}

void ag_out_drop(void)
{
	while (q_head) {
		struct ag_chunk *c = q_head;
		q_head = c->next;
		chunk_free(c);
	}
	q_tail = NULL;
	ag.out_bytes = 0;
}

/* ---- responses ------------------------------------------------------------------- */

static int pk_write(void *data, const char *p, size_t n)
{
	struct ag_resp *r = data;
	if (r->oom || !r->c)
		return -1;
	if (pv_buf_append(&r->c->b, p, n) < 0) {
		r->oom = true;
		return -1;
	}
	return 0;
}

void ag_pack_key(msgpack_packer *pk, const char *key)
{
	msgpack_pack_str_with_body(pk, key, strlen(key));
}

void ag_pack_cstr(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static msgpack_packer *begin(struct ag_resp *r, uint32_t id, uint64_t gen, const char *op, bool ok,
			     unsigned nfields, size_t hint)
{
	static const uint8_t zero[FRAME_HDR_LEN];
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->gen = gen;
	r->op = op;
	r->c = calloc(1, sizeof(*r->c));
	/* Big payloads get an exact buffer: growing by doubling would hold up to
	 * twice the payload, and guest memory is small. */
	if (r->c && hint > 4096 && hint < SIZE_MAX - 4096) {
		r->c->b.data = malloc(hint + 4096);
		if (r->c->b.data)
			r->c->b.cap = hint + 4096;
	}
	if (!r->c || pv_buf_append(&r->c->b, zero, sizeof(zero)) < 0)
		r->oom = true;
	msgpack_packer_init(&r->pk, r, pk_write);
	msgpack_pack_map(&r->pk, nfields + 2);
	ag_pack_key(&r->pk, "id");
	msgpack_pack_uint32(&r->pk, id);
	ag_pack_key(&r->pk, "ok");
	if (ok)
		msgpack_pack_true(&r->pk);
	else
		msgpack_pack_false(&r->pk);
	return &r->pk;
}

msgpack_packer *ag_push_begin(struct ag_resp *r, uint32_t sid, unsigned nfields, size_t hint)
{
	static const uint8_t zero[FRAME_HDR_LEN];
	memset(r, 0, sizeof(*r));
	r->gen = ag.gen;
	r->op = "stream";
	r->c = calloc(1, sizeof(*r->c));
	if (r->c && hint > 4096 && hint < SIZE_MAX - 4096) {
		r->c->b.data = malloc(hint + 4096);
		if (r->c->b.data)
			r->c->b.cap = hint + 4096;
	}
	if (!r->c || pv_buf_append(&r->c->b, zero, sizeof(zero)) < 0)
		r->oom = true;
	msgpack_packer_init(&r->pk, r, pk_write);
	msgpack_pack_map(&r->pk, nfields + 2);
	ag_pack_key(&r->pk, "op");
	ag_pack_cstr(&r->pk, "stream");
	ag_pack_key(&r->pk, "stream");
	msgpack_pack_uint32(&r->pk, sid);
	return &r->pk;
}

msgpack_packer *ag_resp_begin_id(struct ag_resp *r, uint32_t id, uint64_t gen, const char *op, unsigned nfields,
				 size_t hint)
{
	return begin(r, id, gen, op, true, nfields, hint);
}

msgpack_packer *ag_resp_begin(struct ag_resp *r, const struct ag_req *rq, unsigned nfields)
{
	return begin(r, rq->id, rq->gen, rq->op, true, nfields, 0);
}

msgpack_packer *ag_resp_begin_sized(struct ag_resp *r, const struct ag_req *rq, unsigned nfields, size_t hint)
{
	return begin(r, rq->id, rq->gen, rq->op, true, nfields, hint);
}

/* Stale answers are dropped: the host numbers requests afresh on every
 * connection, so an old id could match a new request. */
static bool deliverable(uint64_t gen)
{
	return ag.connected && gen == ag.gen;
}

bool ag_resp_end(struct ag_resp *r)
{
	size_t body;
	bool push = r->id == 0 && r->op && strcmp(r->op, "stream") == 0;

	if (r->oom || !r->c) {
		chunk_free(r->c);
		r->c = NULL;
		ag_log("out of memory encoding the %s (id %u)", push ? "stream push" : r->op, r->id);
		if (!push)
			ag_reply_err_id(r->id, r->gen, ENOMEM, "%s: out of memory encoding the response", r->op);
		return false;
	}
	body = r->c->b.len - FRAME_HDR_LEN;
	if (body > FRAME_MAX_BODY) {
		chunk_free(r->c);
		r->c = NULL;
		if (!push)
			ag_reply_err_id(r->id, r->gen, EMSGSIZE,
					"%s: the response (%zu bytes) exceeds the %u-byte frame limit", r->op, body,
					FRAME_MAX_BODY);
		return false;
	}
	if (!deliverable(r->gen)) {
		chunk_free(r->c);
		r->c = NULL;
		return false;
	}
	frame_put_len(r->c->b.data, (uint32_t)body);
	enqueue(r->c);
	r->c = NULL;
	return true;
}

void ag_resp_abort(struct ag_resp *r)
{
	chunk_free(r->c);
	r->c = NULL;
}

void ag_reply_ok(const struct ag_req *rq)
{
	struct ag_resp r;
	ag_resp_begin(&r, rq, 0);
	ag_resp_end(&r);
}

/* One line of valid UTF-8: the host shows it to a user as is. */
static void sanitize(char *s)
{
	size_t n = strlen(s);
	bool valid = pv_utf8_valid((const uint8_t *)s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || (!valid && c >= 0x80))
			s[i] = '?';
	}
}

static void reply_err_v(uint32_t id, uint64_t gen, int errnum, const char *fmt, va_list ap)
{
	char msg[1024];
	struct ag_resp r;

	if (!deliverable(gen))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	sanitize(msg);
	begin(&r, id, gen, "error", false, 2, 0);
	ag_pack_key(&r.pk, "errno");
	msgpack_pack_int(&r.pk, errnum);
	ag_pack_key(&r.pk, "error");
	ag_pack_cstr(&r.pk, msg);
	if (r.oom || !r.c) {
		/* nothing smaller to fall back to: the host's deadline reports it */
		chunk_free(r.c);
		ag_log("out of memory encoding an error response (id %u)", id);
		return;
	}
	frame_put_len(r.c->b.data, (uint32_t)(r.c->b.len - FRAME_HDR_LEN));
	enqueue(r.c);
}

void ag_reply_err_id(uint32_t id, uint64_t gen, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_err_v(id, gen, errnum, fmt, ap);
	va_end(ap);
}

void ag_reply_err(const struct ag_req *rq, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_err_v(rq->id, rq->gen, errnum, fmt, ap);
	va_end(ap);
}

void ag_reply_bad(const struct ag_req *rq)
{
	ag_reply_err(rq, 0, "%s: %s", rq->op, rq->msg);
}

void ag_send_hello(void)
{
	static const uint8_t zero[FRAME_HDR_LEN];
	struct ag_resp r;

	memset(&r, 0, sizeof(r));
	r.c = calloc(1, sizeof(*r.c));
	if (!r.c || pv_buf_append(&r.c->b, zero, sizeof(zero)) < 0)
		r.oom = true;
	msgpack_packer_init(&r.pk, &r, pk_write);
	msgpack_pack_map(&r.pk, 3);
	ag_pack_key(&r.pk, "op");
	ag_pack_cstr(&r.pk, "hello");
	ag_pack_key(&r.pk, "protocol_version");
	msgpack_pack_int(&r.pk, ag.protocol_version);
	ag_pack_key(&r.pk, "agent");
	ag_pack_cstr(&r.pk, AG_VERSION_STR);
	if (r.oom || !r.c) {
		chunk_free(r.c);
		ag_log("out of memory encoding hello");
		return;
	}
	frame_put_len(r.c->b.data, (uint32_t)(r.c->b.len - FRAME_HDR_LEN));
	enqueue(r.c);
}

#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

bool ctl_is_ctl(const uint8_t *body, size_t len)
{
	return len >= 5 && (body[0] & 0xf0) == 0x80 && memcmp(body + 1, "\xa3" "ctl", 4) == 0;
}

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

int ctl_end(struct ctl_writer *w)
{
	size_t body = w->out->len - w->start - 4;
	if (w->oom || body > FRAME_MAX_BODY) {
		w->out->len = w->start;
		return w->oom ? -ENOMEM : -EMSGSIZE;
	}
	frame_put_len(w->out->data + w->start, (uint32_t)body);
	return 0;
}

int ctl_parse(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err)
{
	int rc = ctl_parse_any(body, len, m, err);
	if (rc == 0 && !m->name[0])
		return pv_err_set(err, -EBADMSG, 0, "control message without a name");
	return rc;
}

int ctl_parse_any(const uint8_t *body, size_t len, struct ctl_msg *m, struct pv_err *err)
{
	struct mpr r;
	struct mpr_item top, k, v;
	int rc;

	memset(m, 0, sizeof(*m));
	mpr_init(&r, body, len);
	if ((rc = mpr_next(&r, &top, err)) < 0)
		return rc;
	if (top.type != MPR_MAP || top.v.count > CTL_MAX_KEYS)
		return pv_err_set(err, -EBADMSG, 0, "control message must be a map of at most %d keys",
				  CTL_MAX_KEYS);
	for (uint32_t i = 0; i < top.v.count; i++) {
		if ((rc = mpr_next(&r, &k, err)) < 0)
			return rc;
		if (k.type != MPR_STR)
			return pv_err_set(err, -EBADMSG, k.offset, "control message key is not a str");
		m->kv[i].key = k.v.raw.ptr;
		m->kv[i].key_len = k.v.raw.len;
		m->kv[i].at = r;
		if (k.v.raw.len == 3 && memcmp(k.v.raw.ptr, "ctl", 3) == 0 && !m->name[0]) {
			if ((rc = mpr_next(&r, &v, err)) < 0)
				return rc;
			if (v.type != MPR_STR || v.v.raw.len >= sizeof(m->name))
				return pv_err_set(err, -EBADMSG, v.offset, "control message name is not a short str");
			memcpy(m->name, v.v.raw.ptr, v.v.raw.len);
			m->name[v.v.raw.len] = 0;
		} else if ((rc = mpr_skip(&r, 40, err)) < 0) {
			return rc;
		}
	}
	m->nkeys = top.v.count;
	return 0;
}

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
		if (mpr_next(&r, &s, NULL) < 0 || s.type != MPR_STR || !(v[i] = strndup((const char *)s.v.raw.ptr, s.v.raw.len))) {
			ctl_strv_free(v, i);
			return NULL;
		}
	}
	*ret_n = it.v.count;
	return v;
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

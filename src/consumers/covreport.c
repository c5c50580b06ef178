/* covreport.c - one run's coverage report (covreport.h). */
#include "covreport.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mpr.h"

static const char *const outcome_names[] = { "passed", "failed", "skipped" };

void pv_cov_init(struct pv_cov_report *r, const char *by)
{
	*r = (struct pv_cov_report){ .by = by };
}

/* The bucket called key, made if new; NULL out of memory. */
static struct pv_cov_bucket *bucket_get(struct pv_cov_report *r, const char *key)
{
	size_t lo = 0, hi = r->n;
	char *k;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(r->b[mid].key, key);
		if (c == 0)
			return &r->b[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct pv_cov_bucket *b = realloc(r->b, cap * sizeof(*b));
		if (!b)
			return NULL;
		r->b = b;
		r->cap = cap;
	}
	if (!(k = strdup(key)))
		return NULL;
	memmove(&r->b[lo + 1], &r->b[lo], (r->n - lo) * sizeof(*r->b));
	r->n++;
	memset(&r->b[lo], 0, sizeof(r->b[lo]));
	r->b[lo].key = k;
	return &r->b[lo];
}

static void bucket_add(struct pv_cov_report *r, const char *key, const struct pv_str *path,
		       const struct pv_str *name, enum pv_cov_outcome o)
{
	struct pv_cov_bucket *b = key ? bucket_get(r, key) : NULL;
	char *p = NULL, *n = NULL;
	if (b && b->ntests == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		struct pv_cov_test *t = realloc(b->tests, cap * sizeof(*t));
		if (t) {
			b->tests = t;
			b->cap = cap;
		}
	}
	if (!b || b->ntests == b->cap || !(p = strndup(path->ptr, path->len)) || !(n = strndup(name->ptr, name->len))) {
		free(p);
		r->oom = true;
		return;
	}
	b->count[o]++;
	b->tests[b->ntests++] = (struct pv_cov_test){ p, n, o };
}

/* The bucket name of a value (malloc'd; NULL out of memory). */
static char *bucket_name(const struct pv_meta_value *v)
{
	char num[64];
	switch (v->type) {
	case PV_META_NIL: return strdup("<unset>");
	case PV_META_BOOL: return strdup(v->v.b ? "true" : "false");
	case PV_META_INT: snprintf(num, sizeof(num), "%" PRId64, v->v.i); return strdup(num);
	case PV_META_FLOAT: snprintf(num, sizeof(num), "%.17g", v->v.f); return strdup(num);
	case PV_META_STR: return strdup(v->v.s.ptr);
	case PV_META_BIN:
		if (pv_utf8_valid((const uint8_t *)v->v.s.ptr, v->v.s.len) && !memchr(v->v.s.ptr, 0, v->v.s.len))
			return strdup(v->v.s.ptr);
		else {
			char *h = malloc(2 * v->v.s.len + 3);
			if (!h)
				return NULL;
			strcpy(h, "0x");
			for (size_t i = 0; i < v->v.s.len; i++)
				sprintf(h + 2 + 2 * i, "%02x", (unsigned char)v->v.s.ptr[i]);
			return h;
		}
	case PV_META_ARRAY: return strdup("<array>");
	case PV_META_MAP: return strdup("<map>");
	}
	return strdup("<unset>");
}

void pv_cov_count(struct pv_cov_report *r, const struct pv_event *ev)
{
	const struct pv_str *path, *name;
	const struct pv_meta_value *v;
	enum pv_cov_outcome o;

	r->frames++;
	switch (ev->kind) {
	case PV_EV_TEST_PASSED: o = PV_COV_PASSED; path = &ev->u.test_passed.path; name = &ev->u.test_passed.name; break;
	case PV_EV_TEST_FAILED: o = PV_COV_FAILED; path = &ev->u.test_failed.path; name = &ev->u.test_failed.name; break;
	case PV_EV_TEST_SKIPPED: o = PV_COV_SKIPPED; path = &ev->u.test_skipped.path; name = &ev->u.test_skipped.name; break;
	default: return;
	}
	r->totals[o]++;
	v = pv_meta_get(pv_event_meta(ev), r->by);
	if (v && v->type == PV_META_ARRAY && v->v.array.n > 0) {
		for (uint32_t i = 0; i < v->v.array.n; i++) {
			char *k = bucket_name(&v->v.array.items[i]);
			bucket_add(r, k, path, name, o);
			free(k);
		}
	} else {
		char *k = v && v->type != PV_META_ARRAY ? bucket_name(v) : strdup("<unset>");
		bucket_add(r, k, path, name, o);
		free(k);
	}
}

void pv_cov_release(struct pv_cov_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		for (size_t t = 0; t < r->b[i].ntests; t++) {
			free(r->b[i].tests[t].path);
			free(r->b[i].tests[t].name);
		}
		free(r->b[i].tests);
		free(r->b[i].key);
	}
	free(r->b);
	*r = (struct pv_cov_report){ .by = r->by };
}

void pv_cov_print_text(const struct pv_cov_report *r, bool verbose, FILE *out)
{
	size_t w = strlen(r->by);
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->b[i].key) > w)
			w = strlen(r->b[i].key);
	if (w < 5)
		w = 5;
	if (w > 60)
		w = 60;
	fprintf(out, "%-*s %8s %8s %8s %8s\n", (int)w, r->by, "passed", "failed", "skipped", "total");
	for (size_t i = 0; i < r->n; i++) {
		const struct pv_cov_bucket *b = &r->b[i];
		fprintf(out, "%-*s %8u %8u %8u %8u\n", (int)w, b->key, b->count[0], b->count[1],
			b->count[2], b->count[0] + b->count[1] + b->count[2]);
		if (verbose)
			for (size_t t = 0; t < b->ntests; t++)
				fprintf(out, "    %-7s %s :: %s\n", outcome_names[b->tests[t].outcome],
					b->tests[t].path, b->tests[t].name);
	}
	fprintf(out, "%-*s %8u %8u %8u %8u\n", (int)w, "total", r->totals[0], r->totals[1],
		r->totals[2], r->totals[0] + r->totals[1] + r->totals[2]);
	if (r->oom)
		fprintf(out, "(out of memory: some tests are not counted in the buckets)\n");
}

void pv_cov_print_json(const struct pv_cov_report *r, unsigned run, bool complete, const char *error, FILE *out)
{
	json_t *root = json_object(), *buckets = json_array();
	for (size_t i = 0; i < r->n; i++) {
		const struct pv_cov_bucket *b = &r->b[i];
		json_t *tests = json_array();
		for (size_t t = 0; t < b->ntests; t++)
			json_array_append_new(tests, json_pack("{s:s, s:s, s:s}", "path", b->tests[t].path,
							       "name", b->tests[t].name, "outcome",
							       outcome_names[b->tests[t].outcome]));
		json_array_append_new(buckets,
				      json_pack("{s:s, s:i, s:i, s:i, s:i, s:o}", "key", b->key, "passed",
						(json_int_t)b->count[0], "failed", (json_int_t)b->count[1],
						"skipped", (json_int_t)b->count[2], "total",
						(json_int_t)(b->count[0] + b->count[1] + b->count[2]), "tests",
						tests));
	}
	if (r->oom && !(error && *error))
		error = "out of memory: some tests are not counted in the buckets";
	json_object_set_new(root, "run", json_integer(run));
	json_object_set_new(root, "complete", json_boolean(complete));
	json_object_set_new(root, "by", json_string(r->by));
	json_object_set_new(root, "buckets", buckets);
	json_object_set_new(root, "totals",
			    json_pack("{s:i, s:i, s:i, s:i}", "passed", (json_int_t)r->totals[0], "failed",
				      (json_int_t)r->totals[1], "skipped", (json_int_t)r->totals[2], "total",
				      (json_int_t)(r->totals[0] + r->totals[1] + r->totals[2])));
	json_object_set_new(root, "events", json_integer((json_int_t)r->frames));
	json_object_set_new(root, "error", error && *error ? json_string(error) : json_null());
	json_dumpf(root, out, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(root);
}

/* jsonl.c - --json: one JSON object per event, one per line.
 *
 * Each line has exactly the frame's shape, {"ts":..,"kind":..,"payload":{..}},
 * with the payload's fields named and ordered as in the events reference.
 *
 * The JSON is written by hand rather than through jansson because jansson's
 * integers are signed 64-bit: a u64 above INT64_MAX (duration_ns may be
 * UINT64_MAX) would have to wrap negative, lose precision as a real, or turn
 * into a string. Here every integer is printed with its exact decimal digits,
 * which is valid JSON of the right type; consumers with arbitrary-precision
 * numbers (Python, jq >= 1.7, serde_json with u64) read it back exactly.
 * Writing straight to the FILE also means no allocation on the hot path, so
 * there is nothing to fail but the stream itself.
 *
 * Value mapping (MetaValue):
 *   nil -> null, bool -> true/false, int -> integer, str -> string,
 *   float -> a number that always has a '.' or an exponent, so it reads back
 *            as a float, not an int (1.0 -> 1.0, not 1), shortest form that
 *            round-trips;
 *   non-finite float -> {"$float": "NaN" | "Infinity" | "-Infinity"}: JSON
 *            has no such numbers, null would be indistinguishable from nil,
 *            and a tagged object mirrors "$bytes" and loses nothing;
 *   bin   -> {"$bytes": "<standard base64 with padding>"};
 *   array -> array; map -> object with keys in byte order (the stream's
 *            BTreeMap order), so live output and a replay agree.
 * A meta map whose only key is "$bytes" or "$float" looks like the tagged
 * forms; that ambiguity is accepted, as in other extended-JSON conventions.
 *
 * Strings are escaped per RFC 8259; a str field can only hold valid UTF-8,
 * but should one not, each invalid byte becomes U+FFFD rather than producing
 * a line that is not JSON.
 */
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mpr.h"
#include "render.h"

struct pv_jsonl {
	FILE *out;
	uint64_t passed, failed, skipped, files;
};

struct pv_jsonl *pv_jsonl_new(FILE *out)
{
	struct pv_jsonl *j;

	if (!out)
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->out = out;
	return j;
}

struct pv_jsonl *pv_jsonl_free(struct pv_jsonl *j)
{
	free(j);
	return NULL;
}

static void put_str(FILE *f, const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)(p ? p : "");
	size_t i = 0, run = 0;

	if (!p)
		len = 0;
	putc('"', f);
	while (i < len) {
		unsigned char c = s[i];
		size_t n;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++;
			i++;
			continue;
		}
		if (c >= 0x80 && (n = pv_utf8_seq(s + i, len - i, NULL)) > 0) {
			run += n;
			i += n;
			continue;
		}
		/* Flush the plain run, then the one thing that needs care. */
		fwrite(s + i - run, 1, run, f);
		run = 0;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputs("\\ufffd", f); /* invalid UTF-8 byte */
			break;
		}
		i++;
	}
	fwrite(s + i - run, 1, run, f);
	putc('"', f);
}

static void put_pv_str(FILE *f, const struct pv_str *s)
{
	put_str(f, s->ptr, s->len);
}

static void put_key(FILE *f, const char *key)
{
	/* Our own field names: plain ASCII, no escaping needed. */
	fprintf(f, "\"%s\":", key);
}

static void put_u64(FILE *f, uint64_t v)
{
	fprintf(f, "%" PRIu64, v);
}

static void put_i64(FILE *f, int64_t v)
{
	fprintf(f, "%" PRId64, v);
}

static void put_float(FILE *f, double d)
{
	char buf[40];
	int prec;

	if (isnan(d)) {
		fputs("{\"$float\":\"NaN\"}", f);
		return;
	}
	if (isinf(d)) {
		fputs(d > 0 ? "{\"$float\":\"Infinity\"}" : "{\"$float\":\"-Infinity\"}", f);
		return;
	}
	/* Shortest of %.15g..%.17g that reads back to the same double. */
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* A locale with a decimal comma must not leak into JSON. Only the
	 * decimal point can be something other than [-+0-9eE] here. */
	for (char *p = buf; *p; p++)
		if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == 'e' || *p == 'E'))
			*p = '.';
	fputs(buf, f);
	if (!strpbrk(buf, ".eE"))
		fputs(".0", f);
}

static void put_base64(FILE *f, const struct pv_str *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)(s->ptr ? s->ptr : "");
	size_t n = s->ptr ? s->len : 0, i;

	fputs("{\"$bytes\":\"", f);
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		putc(tab[v >> 18], f);
		putc(tab[(v >> 12) & 63], f);
		putc(tab[(v >> 6) & 63], f);
		putc(tab[v & 63], f);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		putc(tab[v >> 18], f);
		putc(tab[(v >> 12) & 63], f);
		fputs("==", f);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		putc(tab[v >> 18], f);
		putc(tab[(v >> 12) & 63], f);
		putc(tab[(v >> 6) & 63], f);
		putc('=', f);
	}
	fputs("\"}", f);
}

static int entry_ptr_cmp(const void *a, const void *b)
{
	const struct pv_meta_entry *x = *(const struct pv_meta_entry *const *)a;
	const struct pv_meta_entry *y = *(const struct pv_meta_entry *const *)b;
	int c = pv_str_cmp(&x->key, &y->key);

	/* Equal keys (a broken producer) keep their order: compare positions. */
	if (c)
		return c;
	return x < y ? -1 : x > y;
}

static void put_meta_value(FILE *f, const struct pv_meta_value *v);

static void put_entry(FILE *f, const struct pv_meta_entry *e, bool first)
{
	if (!first)
		putc(',', f);
	put_pv_str(f, &e->key);
	putc(':', f);
	put_meta_value(f, &e->value);
}

static void put_meta_map(FILE *f, const struct pv_meta_map *m)
{
	const struct pv_meta_entry **order;
	uint32_t i;
	bool sorted = true;

	putc('{', f);
	for (i = 1; i < m->n && sorted; i++)
		sorted = pv_str_cmp(&m->entries[i - 1].key, &m->entries[i].key) < 0;
	/* Decoded maps are already in byte order; only producer-filled ones
	 * need sorting. Without memory for that, the given order is still
	 * valid JSON, just not canonical. */
	order = sorted || m->n < 2 ? NULL : malloc(m->n * sizeof(*order));
	if (order) {
		for (i = 0; i < m->n; i++)
			order[i] = &m->entries[i];
		qsort(order, m->n, sizeof(*order), entry_ptr_cmp);
		for (i = 0; i < m->n; i++)
			put_entry(f, order[i], i == 0);
		free(order);
	} else {
		for (i = 0; i < m->n; i++)
			put_entry(f, &m->entries[i], i == 0);
	}
	putc('}', f);
}

static void put_meta_value(FILE *f, const struct pv_meta_value *v)
{
	uint32_t i;

	switch (v->type) {
	case PV_META_NIL: fputs("null", f); return;
	case PV_META_BOOL: fputs(v->v.b ? "true" : "false", f); return;
	case PV_META_INT: put_i64(f, v->v.i); return;
	case PV_META_FLOAT: put_float(f, v->v.f); return;
	case PV_META_STR: put_pv_str(f, &v->v.s); return;
	case PV_META_BIN: put_base64(f, &v->v.s); return;
	case PV_META_ARRAY:
		putc('[', f);
		for (i = 0; i < v->v.array.n; i++) {
			if (i)
				putc(',', f);
			put_meta_value(f, &v->v.array.items[i]);
		}
		putc(']', f);
		return;
	case PV_META_MAP: put_meta_map(f, &v->v.map); return;
	}
	fputs("null", f); /* an out-of-range type tag: still a valid line */
}

static void put_resource(FILE *f, const struct pv_resource *r)
{
	fprintf(f, "{\"memory_bytes\":%" PRIu64 ",\"cpus\":%" PRIu32 "}", r->memory_bytes, r->cpus);
}

/* Field writers: the first field of a payload has no leading comma. */
static void f_str(FILE *f, const char *k, const struct pv_str *s, bool first)
{
	if (!first)
		putc(',', f);
	put_key(f, k);
	put_pv_str(f, s);
}

static void f_u64(FILE *f, const char *k, uint64_t v)
{
	putc(',', f);
	put_key(f, k);
	put_u64(f, v);
}

static void f_res(FILE *f, const char *k, const struct pv_resource *r, bool first)
{
	if (!first)
		putc(',', f);
	put_key(f, k);
	put_resource(f, r);
}

static void f_meta(FILE *f, const struct pv_meta_map *m)
{
	putc(',', f);
	put_key(f, "meta");
	put_meta_map(f, m);
}

static void put_payload(FILE *f, const struct pv_event *ev)
{
	putc('{', f);
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED:
		f_str(f, "path", &ev->u.file_discovered.path, true);
		fputs(",\"fixture_refs\":[", f);
		for (uint32_t i = 0; i < ev->u.file_discovered.fixture_refs.n; i++) {
			if (i)
				putc(',', f);
			put_pv_str(f, &ev->u.file_discovered.fixture_refs.items[i]);
		}
		putc(']', f);
		if (ev->u.file_discovered.declared_claim.present)
			f_res(f, "declared_claim", &ev->u.file_discovered.declared_claim.value, false);
		else
			fputs(",\"declared_claim\":null", f);
		break;
	case PV_EV_FILE_DISPATCHED:
		f_str(f, "path", &ev->u.file_dispatched.path, true);
		f_res(f, "reservation", &ev->u.file_dispatched.reservation, false);
		break;
	case PV_EV_FILE_BLOCKED:
		f_str(f, "path", &ev->u.file_blocked.path, true);
		f_res(f, "waiting_for", &ev->u.file_blocked.waiting_for, false);
		f_str(f, "reason", &ev->u.file_blocked.reason, false);
		break;
	case PV_EV_FILE_COMPLETED:
		f_str(f, "path", &ev->u.file_completed.path, true);
		fputs(",\"status\":", f);
		put_str(f, pv_file_status_name(ev->u.file_completed.status),
			strlen(pv_file_status_name(ev->u.file_completed.status)));
		f_u64(f, "duration_ns", ev->u.file_completed.duration_ns);
		break;
	case PV_EV_TEST_STARTED:
		f_str(f, "path", &ev->u.test_started.path, true);
		f_str(f, "name", &ev->u.test_started.name, false);
		f_meta(f, &ev->u.test_started.meta);
		break;
	case PV_EV_TEST_SKIPPED:
		f_str(f, "path", &ev->u.test_skipped.path, true);
		f_str(f, "name", &ev->u.test_skipped.name, false);
		f_str(f, "reason", &ev->u.test_skipped.reason, false);
		f_meta(f, &ev->u.test_skipped.meta);
		break;
	case PV_EV_TEST_PASSED:
		f_str(f, "path", &ev->u.test_passed.path, true);
		f_str(f, "name", &ev->u.test_passed.name, false);
		f_u64(f, "duration_ns", ev->u.test_passed.duration_ns);
		f_meta(f, &ev->u.test_passed.meta);
		break;
	case PV_EV_TEST_FAILED:
		f_str(f, "path", &ev->u.test_failed.path, true);
		f_str(f, "name", &ev->u.test_failed.name, false);
		f_u64(f, "duration_ns", ev->u.test_failed.duration_ns);
		f_str(f, "reason", &ev->u.test_failed.reason, false);
		f_str(f, "console_excerpt", &ev->u.test_failed.console_excerpt, false);
		f_meta(f, &ev->u.test_failed.meta);
		break;
	case PV_EV_VM_SPAWNED:
		f_str(f, "file", &ev->u.vm_spawned.file, true);
		f_str(f, "vm_name", &ev->u.vm_spawned.vm_name, false);
		f_str(f, "profile", &ev->u.vm_spawned.profile, false);
		f_u64(f, "memory_bytes", ev->u.vm_spawned.memory_bytes);
		f_u64(f, "cid", ev->u.vm_spawned.cid);
		break;
	case PV_EV_VM_SHUTDOWN:
		f_str(f, "file", &ev->u.vm_shutdown.file, true);
		f_str(f, "vm_name", &ev->u.vm_shutdown.vm_name, false);
		f_u64(f, "duration_ns", ev->u.vm_shutdown.duration_ns);
		break;
	case PV_EV_POOL_STATE:
		f_res(f, "used", &ev->u.pool_state.used, true);
		f_res(f, "available", &ev->u.pool_state.available, false);
		break;
	case PV_EV_CLAIM_ACQUIRED:
		f_str(f, "path", &ev->u.claim_acquired.path, true);
		f_res(f, "amount", &ev->u.claim_acquired.amount, false);
		break;
	case PV_EV_CLAIM_RELEASED:
		f_str(f, "path", &ev->u.claim_released.path, true);
		f_res(f, "amount", &ev->u.claim_released.amount, false);
		break;
	case PV_EV_FIXTURE_BUILD_STARTED:
		f_str(f, "path", &ev->u.fixture_build_started.path, true);
		break;
	case PV_EV_FIXTURE_BUILD_DONE:
		f_str(f, "path", &ev->u.fixture_build_done.path, true);
		f_u64(f, "duration_ns", ev->u.fixture_build_done.duration_ns);
		f_u64(f, "snapshot_bytes", ev->u.fixture_build_done.snapshot_bytes);
		break;
	case PV_EV_FIXTURE_BUILD_WAITING:
		f_str(f, "path", &ev->u.fixture_build_waiting.path, true);
		f_str(f, "held_by_file", &ev->u.fixture_build_waiting.held_by_file, false);
		break;
	case PV_EV_FIXTURE_CACHE_HIT:
		f_str(f, "path", &ev->u.fixture_cache_hit.path, true);
		break;
	case PV_EV__COUNT:
		break;
	}
	putc('}', f);
}

void pv_jsonl_event(struct pv_jsonl *j, const struct pv_event *ev)
{
	FILE *f;

	if (!j || !ev || (unsigned)ev->kind >= PV_EV__COUNT)
		return;
	f = j->out;
	switch (ev->kind) {
	case PV_EV_TEST_PASSED: j->passed++; break;
	case PV_EV_TEST_FAILED: j->failed++; break;
	case PV_EV_TEST_SKIPPED: j->skipped++; break;
	case PV_EV_FILE_COMPLETED: j->files++; break;
	default: break;
	}
	fputs("{\"ts\":", f);
	put_i64(f, ev->ts);
	fprintf(f, ",\"kind\":\"%s\",\"payload\":", pv_event_kind_name(ev->kind));
	put_payload(f, ev);
	fputs("}\n", f);
	/* A live consumer (tail -f, a pipe into jq) should see each event as
	 * it happens, not when a stdio buffer fills. */
	fflush(f);
}

void pv_jsonl_finish(struct pv_jsonl *j, uint64_t wall_ns, int exit_code)
{
	if (!j)
		return;
	fprintf(j->out,
		"{\"summary\":{\"passed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"skipped\":%" PRIu64
		",\"files\":%" PRIu64 ",\"wall_ns\":%" PRIu64 ",\"exit_code\":%d}}\n",
		j->passed, j->failed, j->skipped, j->files, wall_ns, exit_code);
	fflush(j->out);
}

/* results.c - the outcomes of a run kept for --junit and --json-summary
 * (results.h), the text cleaning and the atomic write both reports share.
 *
 * Out of memory drops a detail (a log line, a reason) and sets r->lost; the
 * report is still written with what was kept, as the human report does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "results.h"

#include "mpr.h"

/* ---- text --------------------------------------------------------------- */

char *res_clean(const char *p, size_t len, bool xml, size_t *ret_len)
{
	static const char fffd[] = "\xef\xbf\xbd";
	const unsigned char *s = (const unsigned char *)(p ? p : "");
	struct pv_buf b = PV_BUF_INIT;
	size_t i = 0, n;
	uint32_t cp;
	int rc = 0;

	if (!p)
		len = 0;
	if (pv_buf_reserve(&b, len + 1) < 0)
		return NULL;
	while (i < len && rc == 0) {
		n = pv_utf8_seq(s + i, len - i, &cp);
		if (n == 0) {
			rc = pv_buf_append(&b, fffd, 3);
			i++;
		} else if (xml && cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') {
			char esc[8];
			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned)cp);
			rc = pv_buf_append(&b, esc, 4);
			i++;
		} else if (xml && (cp == 0xfffe || cp == 0xffff)) {
			rc = pv_buf_append(&b, fffd, 3);
			i += n;
		} else {
			rc = pv_buf_append(&b, s + i, n);
			i += n;
		}
	}
	if (rc == 0)
		rc = pv_buf_append(&b, "", 1);
	if (rc < 0) {
		pv_buf_release(&b);
		return NULL;
	}
	if (ret_len)
		*ret_len = b.len - 1;
	return (char *)b.data;
}

const char *res_seconds(uint64_t ns, char buf[32])
{
	uint64_t ms = ns / 1000000u + (ns % 1000000u >= 500000u);

	snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64, ms / 1000u, ms % 1000u);
	return buf;
}

bool res_is_load(const struct res_test *t)
{
	return strcmp(t->name, "<load>") == 0;
}

bool res_ran(const struct res_file *f)
{
	return f->dispatched || f->completed || f->ntests;
}

bool res_is_test(const struct res_test *t)
{
	return t->started || t->state != RES_OPEN;
}

/* ---- the atomic write --------------------------------------------------- */

int res_write_atomic(const char *path, const void *data, size_t len, struct pv_err *err)
{
	size_t plen = strlen(path), off = 0;
	mode_t mode;
	char *tmp = malloc(plen + sizeof(".XXXXXX"));
	int fd, rc = 0;

	if (!tmp)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "cannot write %s: out of memory", path);
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", sizeof(".XXXXXX"));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot write %s: %s", path, strerror(errno));
		free(tmp);
		return rc;
	}
	while (off < len && rc == 0) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = -(w < 0 ? errno : EIO);
		else
			off += (size_t)w;
	}
	/* mkstemp makes it 0600; give it what open(0666) would, for CI steps
	 * that read it as another user */
	mode = umask(0);
	umask(mode);
	if (rc == 0 && fchmod(fd, 0666 & ~mode) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		pv_err_set(err, rc, SIZE_MAX, "cannot write %s: %s", path, strerror(-rc));
	}
	free(tmp);
	return rc;
}

/* ---- keeping outcomes --------------------------------------------------- */

static char *dup_str(const struct pv_str *s)
{
	char *d = malloc(s->len + 1);

	if (!d)
		return NULL;
	if (s->len)
		memcpy(d, s->ptr, s->len);
	d[s->len] = '\0';
	return d;
}

static uint64_t hash(const char *p, size_t len)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211u;
	return h;
}

static bool same(const char *a, const char *p, size_t len)
{
	return strlen(a) == len && memcmp(a, p, len) == 0;
}

static void index_place(struct pv_report *r, size_t i)
{
	size_t mask = r->index_cap - 1, h = hash(r->files[i].path, strlen(r->files[i].path)) & mask;

	while (r->index[h])
		h = (h + 1) & mask;
	r->index[h] = (uint32_t)(i + 1);
}

/* Indexes files[nfiles - 1], growing the index to stay at most half full. */
static int index_add(struct pv_report *r)
{
	if (r->nfiles * 2 > r->index_cap) {
		size_t cap = r->index_cap ? r->index_cap * 2 : 64;
		uint32_t *t = calloc(cap, sizeof(*t));
		if (!t)
			return -ENOMEM;
		free(r->index);
		r->index = t;
		r->index_cap = cap;
		for (size_t j = 0; j < r->nfiles; j++)
			index_place(r, j);
		return 0;
	}
	index_place(r, r->nfiles - 1);
	return 0;
}

/* The file of path, added if new (NULL: out of memory, r->lost set). */
static struct res_file *file_of(struct pv_report *r, const char *p, size_t len, int64_t ts)
{
	struct res_file *f;

	if (r->index_cap) {
		size_t mask = r->index_cap - 1, h = hash(p, len) & mask;
		for (; r->index[h]; h = (h + 1) & mask)
			if (same(r->files[r->index[h] - 1].path, p, len))
				return &r->files[r->index[h] - 1];
	}
	if (r->nfiles >= UINT32_MAX - 1 || pv_grow_array(&r->files, &r->cap, r->nfiles, sizeof(*r->files)) < 0)
		goto lost;
	f = &r->files[r->nfiles];
	memset(f, 0, sizeof(*f));
	f->path = dup_str(&(struct pv_str){ p, len });
	f->ts = ts;
	if (!f->path)
		goto lost;
	r->nfiles++;
	if (index_add(r) < 0) {
		free(f->path);
		r->nfiles--;
		goto lost;
	}
	return f;
lost:
	r->lost = true;
	return NULL;
}

/* The test of name in f: the latest one so named (outcomes follow their
 * start), added if none or create says so. */
static struct res_test *test_of(struct pv_report *r, struct res_file *f, const struct pv_str *name, bool create)
{
	struct res_test *t;

	for (size_t i = f->ntests; i-- > 0;)
		if (same(f->tests[i].name, name->ptr ? name->ptr : "", name->len))
			return &f->tests[i];
	if (!create)
		return NULL;
	if (pv_grow_array(&f->tests, &f->cap, f->ntests, sizeof(*f->tests)) < 0)
		goto lost;
	t = &f->tests[f->ntests];
	memset(t, 0, sizeof(*t));
	if (!(t->name = dup_str(name)))
		goto lost;
	f->ntests++;
	return t;
lost:
	r->lost = true;
	return NULL;
}

static void log_add(struct pv_report *r, struct res_log *l, const char *msg)
{
	size_t n = strlen(msg);

	if (l->text.len + n + 1 > RES_LOG_CAP) {
		l->dropped++;
		return;
	}
	/* a message's own newlines stay in it: --json-summary keeps each whole */
	if (pv_buf_append(&l->text, msg, n + 1) < 0)
		r->lost = true;
}

/* The line of a reason "PATH:LINE: ..." when PATH is the test's file (Lua
 * shortens a long chunk name to "...TAIL"); 0 if it is not. */
static unsigned reason_line(const char *path, const char *reason)
{
	size_t plen = strlen(path);

	for (const char *c = strchr(reason, ':'); c; c = strchr(c + 1, ':')) {
		size_t n = (size_t)(c - reason);
		const char *d = c + 1;
		unsigned long line = 0;
		bool match;

		if (memchr(reason, '\n', n))
			return 0;
		while (*d >= '0' && *d <= '9' && line < 1000000000ul)
			line = line * 10 + (unsigned long)(*d++ - '0');
		if (d == c + 1 || *d != ':' || line == 0 || line >= 1000000000ul)
			continue;
		match = (n == plen && !memcmp(reason, path, n)) ||
			(n > 3 && !memcmp(reason, "...", 3) && n - 3 <= plen && !memcmp(reason + 3, path + plen - (n - 3), n - 3));
		if (match)
			return (unsigned)line;
	}
	return 0;
}

static void outcome(struct pv_report *r, struct res_file *f, const struct pv_str *name, enum res_state st,
		    const uint64_t *duration, const struct pv_str *reason, const struct pv_str *console)
{
	struct res_test *t = test_of(r, f, name, true);

	if (!t)
		return;
	t->state = st;
	if (duration) {
		t->has_duration = true;
		t->duration_ns = *duration;
	}
	free(t->reason);
	t->reason = NULL;
	if (reason && !(t->reason = dup_str(reason)))
		r->lost = true;
	t->reason_len = t->reason ? reason->len : 0;
	free(t->console);
	t->console = NULL;
	/* a test that booted no VM has an empty excerpt: nothing to show */
	if (console && console->len && !(t->console = dup_str(console)))
		r->lost = true;
	t->console_len = t->console ? console->len : 0;
	if (t->reason && st == RES_FAILED)
		t->line = reason_line(f->path, t->reason);
}

#define FILE_OF(field) file_of(r, (field).ptr ? (field).ptr : "", (field).len, ev->ts)

void pv_report_event(struct pv_report *r, const struct pv_event *ev)
{
	struct res_file *f;
	struct res_test *t;

	if (!r || !ev)
		return;
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED:
		FILE_OF(ev->u.file_discovered.path);
		break;
	case PV_EV_FILE_DISPATCHED:
		if ((f = FILE_OF(ev->u.file_dispatched.path))) {
			f->dispatched = true;
			f->ts = ev->ts;
		}
		break;
	case PV_EV_FILE_COMPLETED:
		if ((f = FILE_OF(ev->u.file_completed.path))) {
			f->completed = true;
			f->status = ev->u.file_completed.status;
			f->duration_ns = ev->u.file_completed.duration_ns;
		}
		break;
	case PV_EV_TEST_STARTED:
		if ((f = FILE_OF(ev->u.test_started.path))) {
			t = test_of(r, f, &ev->u.test_started.name, false);
			/* a log line may have made it first; a started one is a new run of the name */
			if (!t || t->started)
				t = test_of(r, f, &ev->u.test_started.name, true);
			if (t)
				t->started = true;
		}
		break;
	case PV_EV_TEST_PASSED:
		if ((f = FILE_OF(ev->u.test_passed.path)))
			outcome(r, f, &ev->u.test_passed.name, RES_PASSED, &ev->u.test_passed.duration_ns, NULL, NULL);
		break;
	case PV_EV_TEST_FAILED:
		if ((f = FILE_OF(ev->u.test_failed.path)))
			outcome(r, f, &ev->u.test_failed.name, RES_FAILED, &ev->u.test_failed.duration_ns,
				&ev->u.test_failed.reason, &ev->u.test_failed.console_excerpt);
		break;
	case PV_EV_TEST_SKIPPED:
		if ((f = FILE_OF(ev->u.test_skipped.path)))
			outcome(r, f, &ev->u.test_skipped.name, RES_SKIPPED, NULL, &ev->u.test_skipped.reason, NULL);
		break;
	default:
		break;
	}
}

void pv_report_log(struct pv_report *r, const char *path, const char *test, const char *msg)
{
	struct res_file *f;
	struct res_test *t;

	if (!r || !path || !msg || !(f = file_of(r, path, strlen(path), pv_now_ns())))
		return;
	if (!test || !*test) { /* outside any test */
		log_add(r, &f->log, msg);
		return;
	}
	t = test_of(r, f, &(struct pv_str){ test, strlen(test) }, true);
	if (t)
		log_add(r, &t->log, msg);
}

void pv_report_file_path(struct pv_report *r, const char *rel_path, const char *open_path)
{
	struct res_file *f;

	if (!r || !rel_path || !open_path || !(f = file_of(r, rel_path, strlen(rel_path), pv_now_ns())))
		return;
	while (open_path[0] == '.' && open_path[1] == '/')
		open_path += 2;
	free(f->open_path);
	if (!(f->open_path = strdup(open_path)))
		r->lost = true;
}

struct pv_report *pv_report_new(void)
{
	return calloc(1, sizeof(struct pv_report));
}

struct pv_report *pv_report_free(struct pv_report *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->nfiles; i++) {
		struct res_file *f = &r->files[i];
		for (size_t j = 0; j < f->ntests; j++) {
			free(f->tests[j].name);
			free(f->tests[j].reason);
			free(f->tests[j].console);
			pv_buf_release(&f->tests[j].log.text);
		}
		free(f->tests);
		free(f->path);
		free(f->open_path);
		pv_buf_release(&f->log.text);
	}
	free(r->files);
	free(r->index);
	free(r);
	return NULL;
}

/* human.c - the report a person reads while and after tests run.
 *
 * Output, by verbosity:
 *   all        one line per completed file: status word, path, counts, time;
 *              failures expanded under it (reason, the test's logs, the
 *              console excerpt); a closing summary line.
 *   quiet      only the lines of files that did not pass (with their
 *              failures) and the summary.
 *   verbose    also each passed test (with its time) and skipped test (with
 *              its reason), and a short line per fixture built or restored.
 *
 * Tests of several files interleave in the stream, so everything is kept per
 * file (keyed by path) until that file's file_completed, then printed in one
 * block. Output depends only on the event sequence and the logs passed in.
 *
 * Text that comes from tests or VMs (names, reasons, logs, console output) is
 * printed with control characters made visible: a console excerpt full of
 * escape sequences must not repaint the user's terminal.
 *
 * Over 800 lines: one renderer's state (per-file buffers, the live line,
 * colour) shared by every event kind it shows.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "render.h"

/* Logs kept per test in progress; the oldest messages go first. */
#define LOG_CAP (64u * 1024u)

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"

struct logmsg {
	struct logmsg *next;
	size_t len;
	char text[];
};

/* A test that has started or logged but has no outcome yet. */
struct slot {
	struct slot *next;
	char *name;
	bool started;
	int64_t started_ts; /* the test_started event's ts */
	struct logmsg *head, *tail;
	size_t bytes;
	uint64_t dropped;
};

enum rec_kind { REC_PASSED, REC_SKIPPED, REC_FAILED };

/* An outcome to print with the file's line. */
struct record {
	struct record *next;
	enum rec_kind kind;
	bool has_duration;
	uint64_t duration_ns;
	char *name;
	char *reason;
	char *console;
	struct slot *logs; /* failed tests only; may be NULL */
};

struct file {
	char *path;
	size_t pathlen;
	uint64_t hash;
	bool dispatched, completed;
	unsigned passed, failed, skipped;
	unsigned vms; /* spawned, not shut down */
	bool lost; /* a detail could not be kept (out of memory) */
	struct record *rec_head, *rec_tail;
	struct slot *slots;
	struct file *run_prev, *run_next; /* dispatched, not completed */
};

struct pv_human {
	FILE *out;
	int tty_fd; /* asked for the terminal width; fileno(out) unless set */
	enum pv_verbosity v;
	bool color, progress;

	struct file **table; /* open addressing, power-of-two size */
	size_t table_cap, nfiles;
	struct file **order; /* first-seen order, for deterministic finish */
	size_t order_cap;
	struct file *run_head, *run_tail;

	uint64_t passed, failed, skipped;
	uint64_t discovered, completed, crashed, timed_out;
	uint64_t vms;        /* VMs up: spawned, not shut down */
	bool have_pool;      /* a pool_state was seen: */
	struct pv_resource pool_used, pool_free;
	int64_t now;         /* the newest event's ts: the progress line's clock */
	bool lost;
	bool printed;	   /* something other than the progress line is out */
	bool status_shown; /* the progress line is on screen */
};

/* ---- small helpers ------------------------------------------------------ */

static char *dup_n(const char *p, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return NULL;
	if (len)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static char *dup_str(const struct pv_str *s)
{
	return dup_n(s->ptr ? s->ptr : "", s->ptr ? s->len : 0);
}

/* "0ms", "<1ms", "340ms", "4.21s", "1m05s", "2h03m07s". Integer arithmetic
 * so the locale cannot change the output. */
static const char *fmt_dur(uint64_t ns, char buf[32])
{
	uint64_t s;

	if (ns == 0) {
		snprintf(buf, 32, "0ms");
	} else if (ns < 1000000u) {
		snprintf(buf, 32, "<1ms");
	} else if (ns < 1000000000u) {
		snprintf(buf, 32, "%" PRIu64 "ms", ns / 1000000u);
	} else if (ns < 59995000000u) { /* below what rounds to 60.00s */
		uint64_t cs = (ns + 5000000u) / 10000000u;
		snprintf(buf, 32, "%" PRIu64 ".%02" PRIu64 "s", cs / 100, cs % 100);
	} else if ((s = ns / 1000000000u) < 3600) {
		snprintf(buf, 32, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	} else {
		snprintf(buf, 32, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", s / 3600, s / 60 % 60,
			 s % 60);
	}
	return buf;
}

/* "512B", "14.0MiB". */
static const char *fmt_size(uint64_t bytes, char buf[32])
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	uint64_t div = 1024;

	if (bytes < 1024) {
		snprintf(buf, 32, "%" PRIu64 "B", bytes);
		return buf;
	}
	while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	snprintf(buf, 32, "%" PRIu64 ".%" PRIu64 "%s", bytes / div, bytes % div * 10 / div, units[u]);
	return buf;
}

static void color(struct pv_human *h, const char *code)
{
	if (h->color)
		fputs(code, h->out);
}

/* Writes s with control characters shown as \xNN (and C1 controls, which some
 * terminals obey, as \u00NN). Tabs are kept unless `inline_`, where line
 * structure must not leak either. */
static void fput_clean(FILE *out, const char *p, size_t len, bool inline_)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if ((c >= 0x20 && c != 0x7f && c != 0xc2) || (c == '\t' && !inline_) ||
		    (c == 0xc2 && !(i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f))) {
			run++;
			continue;
		}
		fwrite(s + i - run, 1, run, out);
		run = 0;
		if (c == 0xc2) {
			fprintf(out, "\\u%04x", s[i + 1]);
			i++;
		} else if (c == '\n') {
			fputs("\\n", out);
		} else {
			fprintf(out, "\\x%02x", c);
		}
	}
	fwrite(s + i - run, 1, run, out);
}

static void put_clean(struct pv_human *h, const char *p, size_t len, bool inline_)
{
	fput_clean(h->out, p, len, inline_);
}

/* put_clean of an event string (a NULL ptr is ""), inline. */
static void put_str(struct pv_human *h, const struct pv_str *str)
{
	put_clean(h, str->ptr ? str->ptr : "", str->ptr ? str->len : 0, true);
}

static void put_inline(struct pv_human *h, const char *s)
{
	put_clean(h, s, strlen(s), true);
}

/* Multi-line text, each line indented; \r\n and a lone \r end a line too,
 * trailing line ends are dropped. */
static void put_block(struct pv_human *h, const char *s, size_t len, int indent)
{
	size_t i = 0;

	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	while (i < len) {
		size_t j = i;

		while (j < len && s[j] != '\n' && s[j] != '\r')
			j++;
		if (j > i) /* no trailing blanks on an empty line */
			fprintf(h->out, "%*s", indent, "");
		put_clean(h, s + i, j - i, false);
		putc('\n', h->out);
		if (j + 1 < len && s[j] == '\r' && s[j + 1] == '\n')
			j++;
		i = j + 1;
	}
}

/* Lines in s[0..len) as put_block counts them. */
static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' || s[i] == '\r') {
			n++;
			if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
		}
	}
	return len ? n + 1 : 0;
}

/* Where the last `keep` lines of s[0..len) start. */
static size_t tail_start(const char *s, size_t len, size_t keep)
{
	size_t skip = count_lines(s, len) - keep, i = 0;
	while (skip && i < len) {
		if (s[i] == '\n' || s[i] == '\r') {
			if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
				i++;
			skip--;
		}
		i++;
	}
	return i;
}

/* put_block of the last `max` lines only (0: all), after a line saying how
 * many were left out. */
static void put_tail(struct pv_human *h, const char *s, size_t len, int indent, size_t max)
{
	size_t n = count_lines(s, len);
	if (max && n > max) {
		size_t at = tail_start(s, len, max);
		fprintf(h->out, "%*s(%zu earlier line%s; -v shows them)\n", indent, "", n - max, n - max == 1 ? "" : "s");
		s += at;
		len -= at;
	}
	put_block(h, s, len, indent);
}

/* ---- the progress line -------------------------------------------------- */

static unsigned term_width(struct pv_human *h)
{
	struct winsize ws;
	int fd = h->tty_fd;

	if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 80;
}

/* Removes the progress line so that the next output starts on a clean line. */
static void out_begin(struct pv_human *h)
{
	if (h->status_shown) {
		fputs("\r\033[K", h->out);
		h->status_shown = false;
	}
}

/* How many bytes put_clean(inline) writes for p. */
static size_t clean_len(const char *p, size_t len)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == 0xc2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
			n += 6;
			i++;
		} else if (s[i] == '\n') {
			n += 2;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			n += 4;
		} else {
			n++;
		}
	}
	return n;
}

/* The test that has run longest among the running files' (NULL if none),
 * and its file. */
static const struct slot *longest_test(const struct pv_human *h, const struct file **in)
{
	const struct slot *best = NULL;
	for (const struct file *f = h->run_head; f; f = f->run_next) {
		for (const struct slot *s = f->slots; s; s = s->next) {
			if (s->started && (!best || s->started_ts < best->started_ts)) {
				best = s;
				*in = f;
			}
		}
	}
	return best;
}

/* ": a.test.lua, b.test.lua, +3 more" in at most room bytes into buf ("" if
 * not even one name fits); returns its length. */
static size_t running_names(const struct pv_human *h, size_t nrun, size_t room, char *buf, size_t len)
{
	size_t used = 0, names = 0;
	FILE *m = fmemopen(buf, len, "w");
	if (!m)
		return buf[0] = 0, 0;
	for (const struct file *f = h->run_head; f; f = f->run_next) {
		size_t need = 2 + clean_len(f->path, f->pathlen);
		size_t more = f->run_next ? 12 : 0; /* ", +NNNN more" */
		if (used + need + more > room || used + need + more >= len)
			break;
		fputs(names ? ", " : ": ", m);
		fput_clean(m, f->path, f->pathlen, true);
		used += need;
		names++;
	}
	if (names && names < nrun)
		fprintf(m, ", +%zu more", nrun - names);
	if (fclose(m) != 0)
		return buf[0] = 0, 0;
	return strlen(buf);
}

/* "[3/12 files] 5 passed, 1 failed | 2 running: a.test.lua, b.test.lua |
 * longest: a.test.lua > boots 41.2s | 2 VMs up | pool 1.2GiB/18.8GiB", cut
 * to the terminal's width. The counts always stay; then, as room allows,
 * the longest-running test, the running files' names, the VMs up and the
 * pool's memory, in that order of importance. */
static void draw_status(struct pv_human *h)
{
	size_t width, used, nrun = 0;
	char head[160], cnt[32], names[1024] = "", longest[320] = "", vms[48] = "", pool[80] = "", a[32], b[32];
	const struct file *f = NULL;
	const struct slot *s;
	FILE *m;

	if (!h->progress)
		return;
	out_begin(h);
	/* One column short of the width: a line that wraps could not be
	 * taken back with \r. Paths are measured in bytes, which only errs
	 * towards shorter lines. */
	width = term_width(h) - 1;
	int o = snprintf(head, sizeof(head), "[%" PRIu64 "/%" PRIu64 " files]", h->completed,
			 h->discovered > h->completed ? h->discovered : h->completed);
	if (h->passed + h->failed + h->skipped) {
		o += snprintf(head + o, sizeof(head) - (size_t)o, " %" PRIu64 " passed", h->passed);
		if (h->failed)
			o += snprintf(head + o, sizeof(head) - (size_t)o, ", %" PRIu64 " failed", h->failed);
		if (h->skipped)
			snprintf(head + o, sizeof(head) - (size_t)o, ", %" PRIu64 " skipped", h->skipped);
	}
	for (const struct file *r = h->run_head; r; r = r->run_next)
		nrun++;
	cnt[0] = 0;
	if (nrun)
		snprintf(cnt, sizeof(cnt), " | %zu running", nrun);
	used = strlen(head) + strlen(cnt);
	if ((s = longest_test(h, &f)) && (m = fmemopen(longest, sizeof(longest), "w"))) {
		fputs(" | longest: ", m);
		fput_clean(m, f->path, f->pathlen, true);
		fputs(" > ", m);
		fput_clean(m, s->name, strlen(s->name), true);
		fprintf(m, " %s", fmt_dur(h->now > s->started_ts ? (uint64_t)(h->now - s->started_ts) : 0, a));
		if (fclose(m) != 0 || used + strlen(longest) > width)
			longest[0] = 0;
		used += strlen(longest);
	}
	if (nrun)
		used += running_names(h, nrun, width - used, names, sizeof(names));
	if (h->vms)
		snprintf(vms, sizeof(vms), " | %" PRIu64 " VM%s up", h->vms, h->vms == 1 ? "" : "s");
	if (used + strlen(vms) > width)
		vms[0] = 0;
	used += strlen(vms);
	if (h->have_pool)
		snprintf(pool, sizeof(pool), " | pool %s/%s", fmt_size(h->pool_used.memory_bytes, a),
			 fmt_size(h->pool_used.memory_bytes + h->pool_free.memory_bytes, b));
	if (used + strlen(pool) > width)
		pool[0] = 0;
	fprintf(h->out, "%s%s%s%s%s%s", head, cnt, names, longest, vms, pool);
	h->status_shown = true;
	fflush(h->out);
}

static void out_end(struct pv_human *h)
{
	h->printed = true;
	if (h->progress)
		draw_status(h);
	else
		fflush(h->out);
}

/* ---- per-file state ----------------------------------------------------- */

static uint64_t hash_path(const char *p, size_t len)
{
	uint64_t x = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		x = (x ^ (unsigned char)p[i]) * 0x100000001b3ull;
	return x;
}

static int table_grow(struct pv_human *h)
{
	size_t cap = h->table_cap ? h->table_cap * 2 : 64, i;
	struct file **t = calloc(cap, sizeof(*t));

	if (!t)
		return -1;
	for (i = 0; i < h->table_cap; i++) {
		struct file *f = h->table[i];
		size_t k;

		if (!f)
			continue;
		for (k = f->hash & (cap - 1); t[k]; k = (k + 1) & (cap - 1))
			;
		t[k] = f;
	}
	free(h->table);
	h->table = t;
	h->table_cap = cap;
	return 0;
}

/* The state of path, created on first sight; NULL only when out of memory. */
static struct file *file_get(struct pv_human *h, const char *p, size_t len)
{
	uint64_t hash;
	size_t k;
	struct file *f;

	if (!p)
		p = "", len = 0;
	hash = hash_path(p, len);
	if (h->table_cap) {
		for (k = hash & (h->table_cap - 1); (f = h->table[k]); k = (k + 1) & (h->table_cap - 1))
			if (f->hash == hash && f->pathlen == len && memcmp(f->path, p, len) == 0)
				return f;
	}
	if ((h->nfiles + 1) * 10 > h->table_cap * 7 && table_grow(h) < 0)
		goto oom;
	if (h->nfiles == h->order_cap) {
		size_t cap = h->order_cap ? h->order_cap * 2 : 64;
		struct file **o = realloc(h->order, cap * sizeof(*o));

		if (!o)
			goto oom;
		h->order = o;
		h->order_cap = cap;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		goto oom;
	f->path = dup_n(p, len);
	if (!f->path) {
		free(f);
		goto oom;
	}
	f->pathlen = len;
	f->hash = hash;
	for (k = hash & (h->table_cap - 1); h->table[k]; k = (k + 1) & (h->table_cap - 1))
		;
	h->table[k] = f;
	h->order[h->nfiles++] = f;
	return f;
oom:
	h->lost = true;
	return NULL;
}

static struct file *file_of(struct pv_human *h, const struct pv_str *path)
{
	return file_get(h, path->ptr, path->ptr ? path->len : 0);
}

static void slot_free(struct slot *s)
{
	while (s && s->head) {
		struct logmsg *m = s->head;
		s->head = m->next;
		free(m);
	}
	if (s)
		free(s->name);
	free(s);
}

static void record_free(struct record *r)
{
	free(r->name);
	free(r->reason);
	free(r->console);
	slot_free(r->logs);
	free(r);
}

static void file_clear(struct file *f)
{
	while (f->rec_head) {
		struct record *r = f->rec_head;
		f->rec_head = r->next;
		record_free(r);
	}
	f->rec_tail = NULL;
	while (f->slots) {
		struct slot *s = f->slots;
		f->slots = s->next;
		slot_free(s);
	}
}

/* The slot of test `name` in f, created if `create`. */
static struct slot *slot_get(struct file *f, const char *name, size_t len, bool create)
{
	struct slot *s, **tail = &f->slots;

	for (s = f->slots; s; tail = &s->next, s = s->next)
		if (strlen(s->name) == len && memcmp(s->name, name, len) == 0)
			return s;
	if (!create)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s || !(s->name = dup_n(name, len))) {
		free(s);
		f->lost = true;
		return NULL;
	}
	*tail = s; /* appended: unfinished tests are reported in start order */
	return s;
}

/* Takes the slot of `name` out of f (NULL if it has none). */
static struct slot *slot_take(struct file *f, const struct pv_str *name)
{
	struct slot **pp;
	size_t len = name->ptr ? name->len : 0;

	for (pp = &f->slots; *pp; pp = &(*pp)->next) {
		struct slot *s = *pp;
		if (strlen(s->name) == len && memcmp(s->name, name->ptr, len) == 0) {
			*pp = s->next;
			s->next = NULL;
			return s;
		}
	}
	return NULL;
}

static void slot_log(struct file *f, struct slot *s, const char *msg)
{
	size_t len = strlen(msg);
	struct logmsg *m;

	/* One message larger than the whole budget keeps its beginning. */
	if (len > LOG_CAP)
		len = LOG_CAP;
	m = malloc(sizeof(*m) + len + 1);
	if (!m) {
		f->lost = true;
		return;
	}
	memcpy(m->text, msg, len);
	m->text[len] = '\0';
	m->len = len;
	m->next = NULL;
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->bytes += len;
	while (s->bytes > LOG_CAP && s->head != s->tail) {
		struct logmsg *old = s->head;
		s->head = old->next;
		s->bytes -= old->len;
		s->dropped++;
		free(old);
	}
}

static void add_record(struct file *f, struct record *r)
{
	if (f->rec_tail)
		f->rec_tail->next = r;
	else
		f->rec_head = r;
	f->rec_tail = r;
}

/* Keeps an outcome for printing. Passed and skipped tests are only printed in
 * verbose mode, so they are kept only then. */
static void keep(struct pv_human *h, struct file *f, enum rec_kind kind, const struct pv_str *name,
		 bool has_duration, uint64_t duration_ns, const struct pv_str *reason,
		 const struct pv_str *console, struct slot *logs)
{
	struct record *r;

	/* Logs are shown for failures only. */
	if (kind != REC_FAILED) {
		slot_free(logs);
		logs = NULL;
		if (h->v < PV_VERBOSE)
			return;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto oom;
	r->kind = kind;
	r->has_duration = has_duration;
	r->duration_ns = duration_ns;
	r->logs = logs;
	r->name = dup_str(name);
	r->reason = reason ? dup_str(reason) : NULL;
	r->console = console ? dup_str(console) : NULL;
	if (!r->name || (reason && !r->reason) || (console && !r->console)) {
		record_free(r);
		goto oom;
	}
	add_record(f, r);
	return;
oom:
	if (!r)
		slot_free(logs);
	f->lost = true;
}

/* ---- printing a file ---------------------------------------------------- */

static void put_counts(struct pv_human *h, unsigned passed, unsigned failed, unsigned skipped)
{
	const char *sep = "";

	if (passed) {
		fprintf(h->out, "%u passed", passed);
		sep = ", ";
	}
	if (failed) {
		fputs(sep, h->out);
		color(h, C_RED);
		fprintf(h->out, "%u failed", failed);
		color(h, C_RESET);
		sep = ", ";
	}
	if (skipped) {
		fputs(sep, h->out);
		color(h, C_YELLOW);
		fprintf(h->out, "%u skipped", skipped);
		color(h, C_RESET);
		sep = ", ";
	}
	if (!*sep)
		fputs("no tests", h->out);
}

/* How much of a failure the report shows without -v: the last lines of its
 * log and of each VM's console, the first frames of its traceback. */
#define SHOW_LOG_LINES 20
#define SHOW_CONSOLE_LINES 12
#define SHOW_FRAMES 6

static void put_logs(struct pv_human *h, const struct slot *s, int indent)
{
	const struct logmsg *m;
	size_t max = h->v >= PV_VERBOSE ? 0 : SHOW_LOG_LINES, total = 0, skipped = 0;

	if (!s || (!s->head && !s->dropped))
		return;
	fprintf(h->out, "%*slog:\n", indent, "");
	if (s->dropped)
		fprintf(h->out, "%*s(%" PRIu64 " earlier message%s dropped, last %u KiB kept)\n",
			indent + 2, "", s->dropped, s->dropped == 1 ? "" : "s", LOG_CAP / 1024);
	for (m = s->head; m; m = m->next)
		total += m->len ? count_lines(m->text, m->len) : 1;
	/* whole messages first, then the lines of the one left straddling */
	for (m = s->head; m && max && total - skipped > max; m = m->next) {
		size_t n = m->len ? count_lines(m->text, m->len) : 1;
		if (total - skipped - n < max)
			break;
		skipped += n;
	}
	if (skipped)
		fprintf(h->out, "%*s(%zu earlier line%s; -v shows them)\n", indent + 2, "", skipped,
			skipped == 1 ? "" : "s");
	for (; m; m = m->next) {
		if (!m->len) {
			putc('\n', h->out);
			continue;
		}
		size_t n = count_lines(m->text, m->len), left = total - skipped;
		if (max && left > max) { /* the straddling message: its last lines */
			size_t at = tail_start(m->text, m->len, n - (left - max));
			put_block(h, m->text + at, m->len - at, indent + 2);
			skipped += left - max;
			continue;
		}
		put_block(h, m->text, m->len, indent + 2);
	}
}

/* A failure's reason without what the runner appended for the captures it
 * kept ("capture kept: PATH" lines at its end, lnet_vm.c): *caps gets where
 * those start (len if none). */
static size_t reason_body(const char *r, size_t len, size_t *caps)
{
	size_t end = len;
	for (;;) {
		size_t ls = end;
		while (ls && r[ls - 1] != '\n')
			ls--;
		if (strncmp(r + ls, "capture kept: ", 14) && strncmp(r + ls, "capture not kept (", 18))
			break;
		end = ls ? ls - 1 : 0;
		if (!ls)
			break;
	}
	*caps = end < len && r[end] == '\n' ? end + 1 : end;
	return end;
}

/* The reason: its first lines as they are, then the traceback without the
 * C frames and cut to SHOW_FRAMES frames (everything with -v). */
static void put_reason(struct pv_human *h, const char *r, size_t len, int indent)
{
	const char *tb = memmem(r, len, "\nstack traceback:\n", 18);
	if (!tb || h->v >= PV_VERBOSE) {
		put_block(h, r, len, indent);
		return;
	}
	put_block(h, r, (size_t)(tb - r), indent);
	const char *p = tb + 18, *end = r + len;
	size_t shown = 0, left = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		bool c_frame = ll >= 4 && !memcmp(p + strspn(p, "\t "), "[C]", 3);
		if (!c_frame && shown < SHOW_FRAMES) {
			if (!shown++) /* only C frames: no traceback worth a line */
				fprintf(h->out, "%*sstack traceback:\n", indent, "");
			put_block(h, p, ll, indent);
		} else if (!c_frame) {
			left++;
		}
		p += ll + 1;
	}
	if (left)
		fprintf(h->out, "%*s(%zu more frame%s; -v shows them)\n", indent, "", left, left == 1 ? "" : "s");
}

/* The console excerpt, one part per VM ("--- vm NAME ---" starts each,
 * lvm.c), each cut to its last lines. */
static void put_console(struct pv_human *h, const char *c, size_t len, int indent)
{
	size_t max = h->v >= PV_VERBOSE ? 0 : SHOW_CONSOLE_LINES;
	const char *p = c, *end = c + len;
	if (len < 8 || strncmp(c, "--- vm ", 7) != 0) {
		fprintf(h->out, "%*sconsole excerpt:\n", indent, "");
		put_tail(h, c, len, indent + 2, max);
		return;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *body = nl ? nl + 1 : end, *next = body;
		while ((next = memmem(next, (size_t)(end - next), "\n--- vm ", 8)) && next < end) {
			next++;
			break;
		}
		if (!next)
			next = end;
		size_t hl = (size_t)((nl ? nl : end) - p);
		/* "--- vm web ---" -> "console of vm web:" */
		if (hl > 11 && !memcmp(p + hl - 4, " ---", 4)) {
			fprintf(h->out, "%*sconsole of vm ", indent, "");
			put_clean(h, p + 7, hl - 11, true);
			fputs(":\n", h->out);
		} else {
			fprintf(h->out, "%*s", indent, "");
			put_clean(h, p, hl, true);
			putc('\n', h->out);
		}
		if (count_lines(body, (size_t)(next - body)))
			put_tail(h, body, (size_t)(next - body), indent + 2, max);
		else
			fprintf(h->out, "%*s(nothing on its console)\n", indent + 2, "");
		p = next;
	}
}

static void put_record(struct pv_human *h, const struct record *r)
{
	char d[32];

	switch (r->kind) {
	case REC_PASSED:
		fputs("  ", h->out);
		color(h, C_GREEN);
		fputs("ok", h->out);
		color(h, C_RESET);
		fputs("    ", h->out);
		put_inline(h, r->name);
		fprintf(h->out, " (%s)\n", fmt_dur(r->duration_ns, d));
		return;
	case REC_SKIPPED:
		fputs("  ", h->out);
		color(h, C_YELLOW);
		fputs("skip", h->out);
		color(h, C_RESET);
		fputs("  ", h->out);
		put_inline(h, r->name);
		if (r->reason && *r->reason) {
			fputs(" (", h->out);
			put_inline(h, r->reason);
			putc(')', h->out);
		}
		putc('\n', h->out);
		return;
	case REC_FAILED:
		fputs("  ", h->out);
		color(h, C_RED);
		fputs("FAIL", h->out);
		color(h, C_RESET);
		fputs("  ", h->out);
		color(h, C_BOLD);
		put_inline(h, r->name);
		color(h, C_RESET);
		if (r->has_duration)
			fprintf(h->out, " (%s)", fmt_dur(r->duration_ns, d));
		putc('\n', h->out);
		/* the reason (file:line, the assertion's values, where it
		 * was called from), the test's log, each VM's console, then
		 * the captures it kept */
		size_t rlen = r->reason ? strlen(r->reason) : 0, caps = rlen;
		if (r->reason)
			put_reason(h, r->reason, reason_body(r->reason, rlen, &caps), 8);
		put_logs(h, r->logs, 8);
		if (r->console && strspn(r->console, "\r\n") < strlen(r->console))
			put_console(h, r->console, strlen(r->console), 8);
		if (caps < rlen) {
			fprintf(h->out, "%8scaptures:\n", "");
			put_block(h, r->reason + caps, rlen - caps, 10);
		}
		return;
	}
}

/* The file's line and its kept outcomes. word: PASS / FAIL / ..., NULL for a
 * file that never completed. */
static void print_file(struct pv_human *h, struct file *f, const char *word, bool bad,
		       bool has_duration, uint64_t duration_ns)
{
	const struct record *r;
	const struct slot *s;
	char d[32];
	unsigned unfinished = 0;

	out_begin(h);
	color(h, bad ? C_RED : C_GREEN);
	fprintf(h->out, "%-7s", word);
	color(h, C_RESET);
	putc(' ', h->out);
	color(h, C_BOLD);
	put_clean(h, f->path, f->pathlen, true);
	color(h, C_RESET);
	fputs("  ", h->out);
	put_counts(h, f->passed, f->failed, f->skipped);
	for (s = f->slots; s; s = s->next)
		unfinished += s->started;
	if (unfinished)
		fprintf(h->out, ", %u unfinished", unfinished);
	if (has_duration)
		fprintf(h->out, " (%s)", fmt_dur(duration_ns, d));
	putc('\n', h->out);
	for (r = f->rec_head; r; r = r->next)
		put_record(h, r);
	/* Logs of tests that never reported an outcome: on a bad file they
	 * may be the only clue. */
	if (bad) {
		for (s = f->slots; s; s = s->next) {
			if (!s->head && !s->dropped)
				continue;
			if (*s->name) {
				fputs("  ", h->out);
				put_clean(h, s->name, strlen(s->name), true);
				fputs(" (no outcome)\n", h->out);
			} else {
				fputs("  (outside any test)\n", h->out);
			}
			put_logs(h, s, 8);
		}
	}
	if (f->lost)
		fputs("  (some details were not kept: out of memory)\n", h->out);
	out_end(h);
}

static void running_remove(struct pv_human *h, struct file *f)
{
	if (!f->dispatched || f->completed)
		return;
	if (f->run_prev)
		f->run_prev->run_next = f->run_next;
	else
		h->run_head = f->run_next;
	if (f->run_next)
		f->run_next->run_prev = f->run_prev;
	else
		h->run_tail = f->run_prev;
	f->run_prev = f->run_next = NULL;
}

static void on_completed(struct pv_human *h, const struct pv_ev_file_completed *e)
{
	struct file *f = file_of(h, &e->path);
	static const char *const words[] = { "PASS", "FAIL", "TIMEOUT", "CRASH" };
	const char *word = (unsigned)e->status < 4 ? words[e->status] : "FAIL";
	bool bad;

	h->completed++;
	if (e->status == PV_FILE_CRASHED)
		h->crashed++;
	if (e->status == PV_FILE_TIMED_OUT)
		h->timed_out++;
	if (!f) {
		if (h->progress)
			draw_status(h);
		return;
	}
	running_remove(h, f);
	f->completed = true;
	h->vms -= f->vms; /* a crashed runner's VMs die with it */
	f->vms = 0;
	/* A test that started but got no outcome failed with its file: the
	 * runner crashed or the file timed out while it ran. */
	for (struct slot **pp = &f->slots; *pp;) {
		struct slot *s = *pp;
		char reason[96], d[32];
		struct pv_str rs, name;

		if (!s->started) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		s->next = NULL;
		if (e->status == PV_FILE_TIMED_OUT)
			snprintf(reason, sizeof(reason), "did not finish: the file timed out after %s",
				 fmt_dur(e->duration_ns, d));
		else if (e->status == PV_FILE_CRASHED)
			snprintf(reason, sizeof(reason), "did not finish: the test runner crashed");
		else
			snprintf(reason, sizeof(reason), "did not finish: no outcome was reported");
		rs = pv_str_c(reason);
		name = pv_str_c(s->name);
		f->failed++;
		h->failed++;
		/* keep() copies the name before it may free the slot */
		keep(h, f, REC_FAILED, &name, false, 0, &rs, NULL, s);
	}
	bad = e->status != PV_FILE_PASSED || f->failed;
	if (bad && e->status == PV_FILE_PASSED)
		word = "FAIL"; /* a failed test in a "passed" file: trust the test */
	if (h->v >= PV_NORMAL || bad)
		print_file(h, f, word, bad, true, e->duration_ns);
	else if (h->progress)
		draw_status(h);
	file_clear(f);
}

/* ---- entry points ------------------------------------------------------- */

struct pv_human *pv_human_new(FILE *out, enum pv_verbosity v, bool color_, bool progress)
{
	struct pv_human *h;

	if (!out)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->out = out;
	h->tty_fd = fileno(out);
	h->v = v < PV_QUIET ? PV_QUIET : v > PV_VERBOSE ? PV_VERBOSE : v;
	h->color = color_;
	h->progress = progress;
	return h;
}

void pv_human_set_tty(struct pv_human *h, int fd)
{
	if (h)
		h->tty_fd = fd;
}

void pv_human_log(struct pv_human *h, const char *path, const char *test, const char *msg)
{
	struct file *f;
	struct slot *s;

	if (!h || !msg)
		return;
	f = file_get(h, path, path ? strlen(path) : 0);
	if (!f)
		return;
	/* Logged outside any test: kept under the empty name, shown if the
	 * file goes bad. */
	if (!test)
		test = "";
	s = slot_get(f, test, strlen(test), true);
	if (s)
		slot_log(f, s, msg);
}

void pv_human_event(struct pv_human *h, const struct pv_event *ev)
{
	struct file *f;
	char d[32], sz[32];

	if (!h || !ev)
		return;
	if (ev->ts > h->now)
		h->now = ev->ts;
	switch (ev->kind) {
	case PV_EV_FILE_DISCOVERED:
		h->discovered++;
		/* Registered now so that a stopped run lists files in
		 * discovery order. */
		file_of(h, &ev->u.file_discovered.path);
		break;
	case PV_EV_FILE_DISPATCHED:
		f = file_of(h, &ev->u.file_dispatched.path);
		if (f && !f->dispatched && !f->completed) {
			f->dispatched = true;
			f->run_prev = h->run_tail;
			if (h->run_tail)
				h->run_tail->run_next = f;
			else
				h->run_head = f;
			h->run_tail = f;
		}
		if (h->progress)
			draw_status(h);
		break;
	case PV_EV_FILE_COMPLETED:
		on_completed(h, &ev->u.file_completed);
		break;
	case PV_EV_TEST_STARTED:
		f = file_of(h, &ev->u.test_started.path);
		if (f) {
			struct slot *s = slot_get(f, ev->u.test_started.name.ptr ? ev->u.test_started.name.ptr : "",
						  ev->u.test_started.name.ptr ? ev->u.test_started.name.len : 0, true);
			if (s) {
				s->started = true;
				s->started_ts = ev->ts;
			}
		}
		if (h->progress)
			draw_status(h);
		break;
	case PV_EV_TEST_PASSED:
		h->passed++;
		f = file_of(h, &ev->u.test_passed.path);
		if (f) {
			f->passed++;
			keep(h, f, REC_PASSED, &ev->u.test_passed.name, true, ev->u.test_passed.duration_ns, NULL,
			     NULL, slot_take(f, &ev->u.test_passed.name));
		}
		if (h->progress)
			draw_status(h); /* the counts */
		break;
	case PV_EV_TEST_SKIPPED:
		h->skipped++;
		f = file_of(h, &ev->u.test_skipped.path);
		if (f) {
			f->skipped++;
			keep(h, f, REC_SKIPPED, &ev->u.test_skipped.name, false, 0, &ev->u.test_skipped.reason,
			     NULL, slot_take(f, &ev->u.test_skipped.name));
		}
		if (h->progress)
			draw_status(h); /* the counts */
		break;
	case PV_EV_TEST_FAILED:
		h->failed++;
		f = file_of(h, &ev->u.test_failed.path);
		if (f) {
			f->failed++;
			keep(h, f, REC_FAILED, &ev->u.test_failed.name, true, ev->u.test_failed.duration_ns,
			     &ev->u.test_failed.reason, &ev->u.test_failed.console_excerpt,
			     slot_take(f, &ev->u.test_failed.name));
		}
		if (h->progress)
			draw_status(h); /* the counts */
		break;
	case PV_EV_FIXTURE_BUILD_DONE:
		/* a build takes seconds: worth a line unless quiet */
		if (h->v < PV_NORMAL)
			break;
		out_begin(h);
		fputs("fixture ", h->out);
		put_str(h, &ev->u.fixture_build_done.path);
		if (ev->u.fixture_build_done.snapshot_bytes == 0) /* a failed build; the test says why */
			fprintf(h->out, " failed to build after %s\n", fmt_dur(ev->u.fixture_build_done.duration_ns, d));
		else
			fprintf(h->out, " built in %s (%s)\n", fmt_dur(ev->u.fixture_build_done.duration_ns, d),
				fmt_size(ev->u.fixture_build_done.snapshot_bytes, sz));
		out_end(h);
		break;
	case PV_EV_FIXTURE_BUILD_WAITING:
		if (h->v < PV_VERBOSE)
			break;
		out_begin(h);
		fputs("fixture ", h->out);
		put_str(h, &ev->u.fixture_build_waiting.path);
		fputs(": waiting for ", h->out);
		put_str(h, &ev->u.fixture_build_waiting.held_by_file);
		fputs(" to build it\n", h->out);
		out_end(h);
		break;
	case PV_EV_FIXTURE_CACHE_HIT:
		if (h->v < PV_VERBOSE)
			break;
		out_begin(h);
		fputs("fixture ", h->out);
		put_str(h, &ev->u.fixture_cache_hit.path);
		fputs(" restored from cache\n", h->out);
		out_end(h);
		break;
	case PV_EV_VM_SPAWNED:
		if ((f = file_of(h, &ev->u.vm_spawned.file)) && !f->completed) {
			f->vms++;
			h->vms++;
		}
		if (h->progress)
			draw_status(h);
		break;
	case PV_EV_VM_SHUTDOWN:
		if ((f = file_of(h, &ev->u.vm_shutdown.file)) && f->vms) {
			f->vms--;
			h->vms--;
		}
		if (h->progress)
			draw_status(h);
		break;
	case PV_EV_POOL_STATE:
		/* 1 Hz: the progress line's tick, so the longest test's time moves */
		h->have_pool = true;
		h->pool_used = ev->u.pool_state.used;
		h->pool_free = ev->u.pool_state.available;
		if (h->progress)
			draw_status(h);
		break;
	default:
		/* claim_*, the other fixture_* and file_blocked are for
		 * dashboards and --json, not this report. */
		break;
	}
}

void pv_human_finish(struct pv_human *h, uint64_t wall_ns, int signal)
{
	char d[32];
	uint64_t total;

	if (!h)
		return;
	/* Files that never completed (an interrupted run) still show what
	 * they did: their failures are real. */
	for (size_t i = 0; i < h->nfiles; i++) {
		struct file *f = h->order[i];
		bool any = f->rec_head || f->failed || f->passed || f->skipped;

		if (f->completed || (!f->dispatched && !any))
			continue;
		if (h->v >= PV_NORMAL || f->failed)
			print_file(h, f, "STOPPED", true, false, 0);
		running_remove(h, f);
		f->completed = true;
		file_clear(f);
	}
	out_begin(h);
	if (h->printed)
		putc('\n', h->out);
	fprintf(h->out, "%s%" PRIu64 " passed%s, ", h->color && h->passed ? C_GREEN : "", h->passed,
		h->color && h->passed ? C_RESET : "");
	fprintf(h->out, "%s%" PRIu64 " failed%s, ", h->color && h->failed ? C_RED : "", h->failed,
		h->color && h->failed ? C_RESET : "");
	fprintf(h->out, "%s%" PRIu64 " skipped%s in ", h->color && h->skipped ? C_YELLOW : "",
		h->skipped, h->color && h->skipped ? C_RESET : "");
	total = h->discovered > h->completed ? h->discovered : h->completed;
	if (total != h->completed)
		fprintf(h->out, "%" PRIu64 " of ", h->completed);
	fprintf(h->out, "%" PRIu64 " file%s", total, total == 1 ? "" : "s");
	if (h->crashed) {
		color(h, C_RED);
		fprintf(h->out, ", %" PRIu64 " crashed", h->crashed);
		color(h, C_RESET);
	}
	if (h->timed_out) {
		color(h, C_RED);
		fprintf(h->out, ", %" PRIu64 " timed out", h->timed_out);
		color(h, C_RESET);
	}
	fprintf(h->out, " (%s)", fmt_dur(wall_ns, d));
	if (signal) {
		const char *abbr = signal > 0 ? sigabbrev_np(signal) : NULL;
		color(h, C_YELLOW);
		if (abbr)
			fprintf(h->out, "; interrupted by SIG%s", abbr);
		else
			fputs("; interrupted", h->out);
		color(h, C_RESET);
	}
	if (h->lost)
		fputs("; some details were not kept (out of memory)", h->out);
	putc('\n', h->out);
	h->printed = true;
	fflush(h->out);
	/* The progress line stays gone: nothing is running any more. */
	h->progress = false;
}

struct pv_human *pv_human_free(struct pv_human *h)
{
	if (!h)
		return NULL;
	if (h->status_shown) {
		fputs("\r\033[K", h->out);
		fflush(h->out);
	}
	for (size_t i = 0; i < h->nfiles; i++) {
		file_clear(h->order[i]);
		free(h->order[i]->path);
		free(h->order[i]);
	}
	free(h->order);
	free(h->table);
	free(h);
	return NULL;
}

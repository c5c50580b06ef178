/* lastfail.c - the last run's failures per root (lastfail.h).
 *
 * The record's format, line by line (fields separated by a tab; in paths
 * and names \ tab, newline and carriage return are written \\ \t \n \r):
 *   provium last-failed 1
 *   root<TAB>ROOT             the root directory, for people reading it
 *   F<TAB>PATH                the whole file failed
 *   T<TAB>PATH<TAB>NAME       test NAME of PATH failed
 */
#include "lastfail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fcache.h"
#include "frame.h"
#include "sys.h"

#define LF_HEADER "provium last-failed 1"
#define LF_MAX (64u * 1024u * 1024u) /* a record is tiny; this is a guard */

static bool has_name(char *const *v, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i]) == len && memcmp(v[i], s, len) == 0)
			return true;
	return false;
}

/* Adds s[0..len) to the list unless it is there; 0 or -ENOMEM. */
static int add_name(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
	char *c;
	if (has_name(*v, *n, s, len))
		return 0;
	if (pv_grow_array(v, cap, *n, sizeof(char *)) < 0 || !(c = strndup(s, len)))
		return -ENOMEM;
	(*v)[(*n)++] = c;
	return 0;
}

static void file_release(struct lf_file *f)
{
	for (size_t i = 0; i < f->nnames; i++)
		free(f->names[i]);
	for (size_t i = 0; i < f->nskipped; i++)
		free(f->skipped[i]);
	free(f->names);
	free(f->skipped);
	free(f->path);
	memset(f, 0, sizeof(*f));
}

void lf_state_release(struct lf_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		file_release(&s->f[i]);
	free(s->f);
	memset(s, 0, sizeof(*s));
}

static struct lf_file *find(const struct lf_state *s, const char *path, size_t len)
{
	/* from the end: a run's events mostly concern the file seen last */
	for (size_t i = s->n; i-- > 0;)
		if (strlen(s->f[i].path) == len && memcmp(s->f[i].path, path, len) == 0)
			return &s->f[i];
	return NULL;
}

const struct lf_file *lf_find(const struct lf_state *s, const char *path)
{
	return find(s, path, strlen(path));
}

static struct lf_file *get(struct lf_state *s, const char *path, size_t len)
{
	struct lf_file *f = find(s, path, len);
	if (f)
		return f;
	if (pv_grow_array(&s->f, &s->cap, s->n, sizeof(*s->f)) < 0)
		return NULL;
	f = &s->f[s->n];
	memset(f, 0, sizeof(*f));
	if (!(f->path = strndup(path, len)))
		return NULL;
	s->n++;
	return f;
}

/* <load> and <claim> stand for the file, not for a test it declares */
static bool synthetic(const struct pv_str *name)
{
	return name->len >= 2 && name->ptr[0] == '<' && name->ptr[name->len - 1] == '>';
}

void lf_run_event(struct lf_state *run, const struct pv_event *ev)
{
	const struct pv_str *path = NULL, *name = NULL;
	struct lf_file *f;

	switch (ev->kind) {
	case PV_EV_TEST_STARTED: path = &ev->u.test_started.path; break;
	case PV_EV_TEST_FAILED: path = &ev->u.test_failed.path, name = &ev->u.test_failed.name; break;
	case PV_EV_TEST_SKIPPED: path = &ev->u.test_skipped.path, name = &ev->u.test_skipped.name; break;
	case PV_EV_FILE_COMPLETED:
		if (ev->u.file_completed.status != PV_FILE_CRASHED && ev->u.file_completed.status != PV_FILE_TIMED_OUT)
			return;
		path = &ev->u.file_completed.path;
		break;
	default: return;
	}
	if (!(f = get(run, path->ptr, path->len))) {
		run->oom = true;
		return;
	}
	switch (ev->kind) {
	case PV_EV_TEST_STARTED: f->ran = true; break;
	case PV_EV_TEST_FAILED:
		if (synthetic(name))
			f->whole = true;
		else if (add_name(&f->names, &f->nnames, &f->cap_names, name->ptr, name->len) < 0)
			run->oom = true;
		break;
	case PV_EV_TEST_SKIPPED:
		if (add_name(&f->skipped, &f->nskipped, &f->cap_skipped, name->ptr, name->len) < 0)
			run->oom = true;
		break;
	default: f->whole = true; break; /* crashed or timed out */
	}
}

int lf_merge(struct lf_state *s, const struct lf_state *run, bool (*mine)(const char *path, void *ctx), void *ctx,
	     bool interrupted)
{
	for (size_t i = 0; i < run->n; i++) {
		const struct lf_file *r = &run->f[i];
		struct lf_file *prev, next = { 0 };

		if (!mine(r->path, ctx) || (!r->ran && !r->whole))
			continue; /* never started: nothing learnt */
		prev = find(s, r->path, strlen(r->path));
		next.whole = r->whole || (prev && prev->whole && interrupted && r->nskipped);
		if (!next.whole) {
			for (size_t k = 0; k < r->nnames; k++)
				if (add_name(&next.names, &next.nnames, &next.cap_names, r->names[k], strlen(r->names[k])) < 0)
					goto oom;
			/* a failure this run skipped is still a failure */
			for (size_t k = 0; prev && k < prev->nnames; k++)
				if (has_name(r->skipped, r->nskipped, prev->names[k], strlen(prev->names[k])) &&
				    add_name(&next.names, &next.nnames, &next.cap_names, prev->names[k],
					     strlen(prev->names[k])) < 0)
					goto oom;
		}
		if (!next.whole && !next.nnames) {
			if (prev) {
				file_release(prev);
				*prev = s->f[--s->n];
			}
			continue;
		}
		if (!prev && !(prev = get(s, r->path, strlen(r->path))))
			goto oom;
		next.path = prev->path;
		prev->path = NULL;
		file_release(prev);
		*prev = next;
		continue;
	oom:
		file_release(&next);
		return -ENOMEM;
	}
	return 0;
}

int lf_state_file(const char *cache_dir, const char *root, char *out, size_t len, struct pv_err *err)
{
	char real[PATH_MAX], key[FC_KEY_LEN + 1];
	struct fc_hash h;
	int n;

	if (!realpath(root, real))
		return pv_err_set(err, -errno, SIZE_MAX, "test root \"%s\": %s", root, strerror(errno));
	if (fc_hash_init(&h) < 0)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	fc_hash_str(&h, "last-failed root", real);
	fc_hash_final(&h, key);
	n = snprintf(out, len, "%s/last-failed/%s", cache_dir, key);
	if (n < 0 || (size_t)n >= len)
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "cache directory path too long: %s", cache_dir);
	return 0;
}

/* ---- the file ------------------------------------------------------------- */

static int put_escaped(struct pv_buf *b, const char *s)
{
	int rc = 0;
	for (; *s && rc == 0; s++) {
		const char *e = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : NULL;
		rc = e ? pv_buf_append(b, e, 2) : pv_buf_append(b, s, 1);
	}
	return rc;
}

/* Decodes the field s[0..len) in place; its new length, or -1 for a bad escape. */
static long unescape(char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			s[o++] = s[i];
			continue;
		}
		if (++i >= len)
			return -1;
		switch (s[i]) {
		case '\\': s[o++] = '\\'; break;
		case 't': s[o++] = '\t'; break;
		case 'n': s[o++] = '\n'; break;
		case 'r': s[o++] = '\r'; break;
		default: return -1;
		}
	}
	return (long)o;
}

int lf_load(const char *file, struct lf_state *s, struct pv_err *err)
{
	char *text, *line, *next;
	size_t len;
	unsigned lineno = 0;
	int rc = sys_read_file(file, LF_MAX, &text, &len);

	memset(s, 0, sizeof(*s));
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot read %s: %s", file, strerror(-rc));
	for (line = text; line && *line; line = next) {
		char *tab, *tab2;
		long n1, n2 = 0;
		struct lf_file *f;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (lineno == 1) {
			if (strcmp(line, LF_HEADER) != 0)
				goto bad;
			continue;
		}
		if (!(tab = strchr(line, '\t')))
			goto bad;
		*tab++ = 0;
		if (!strcmp(line, "root"))
			continue;
		tab2 = strchr(tab, '\t');
		if (!strcmp(line, "F") && !tab2) {
			if ((n1 = unescape(tab, strlen(tab))) <= 0)
				goto bad;
		} else if (!strcmp(line, "T") && tab2) {
			*tab2++ = 0;
			if ((n1 = unescape(tab, strlen(tab))) <= 0 || (n2 = unescape(tab2, strlen(tab2))) <= 0)
				goto bad;
		} else {
			goto bad;
		}
		if (!(f = get(s, tab, (size_t)n1)))
			goto oom;
		if (!tab2)
			f->whole = true;
		else if (add_name(&f->names, &f->nnames, &f->cap_names, tab2, (size_t)n2) < 0)
			goto oom;
	}
	if (lineno == 0)
		goto bad;
	free(text);
	return 1;
bad:
	free(text);
	lf_state_release(s);
	return pv_err_set(err, -EINVAL, SIZE_MAX, "%s: line %u is not part of a last-failed record", file,
			  lineno ? lineno : 1);
oom:
	free(text);
	lf_state_release(s);
	return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
}

int lf_save(const char *file, const char *root, const struct lf_state *s, struct pv_err *err)
{
	struct pv_buf b = PV_BUF_INIT;
	char dir[PATH_MAX], tmp[PATH_MAX + 32], where[PATH_MAX];
	const char *slash = strrchr(file, '/');
	int rc = 0, fd;

	if (!slash || (size_t)(slash - file) >= sizeof(dir) || strlen(file) + 32 > sizeof(tmp))
		return pv_err_set(err, -EINVAL, SIZE_MAX, "bad record path %s", file);
	memcpy(dir, file, (size_t)(slash - file));
	dir[slash - file] = 0;
	if ((rc = sys_mkdir_p(dir, 0700, where, sizeof(where))) < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot make %s: %s", where, strerror(-rc));
	rc = pv_buf_append(&b, LF_HEADER "\nroot\t", strlen(LF_HEADER "\nroot\t"));
	rc = rc ? rc : put_escaped(&b, realpath(root, where) ? where : root);
	rc = rc ? rc : pv_buf_append(&b, "\n", 1);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		const struct lf_file *f = &s->f[i];
		if (f->whole) {
			rc = pv_buf_append(&b, "F\t", 2);
			rc = rc ? rc : put_escaped(&b, f->path);
			rc = rc ? rc : pv_buf_append(&b, "\n", 1);
			continue;
		}
		for (size_t k = 0; k < f->nnames && rc == 0; k++) {
			rc = pv_buf_append(&b, "T\t", 2);
			rc = rc ? rc : put_escaped(&b, f->path);
			rc = rc ? rc : pv_buf_append(&b, "\t", 1);
			rc = rc ? rc : put_escaped(&b, f->names[k]);
			rc = rc ? rc : pv_buf_append(&b, "\n", 1);
		}
	}
	if (rc < 0) {
		pv_buf_release(&b);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", file, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot write %s: %s", tmp, strerror(errno));
	} else {
		rc = pv_write_all(fd, b.data, b.len);
		if (close(fd) < 0 && rc == 0)
			rc = -errno;
		if (rc == 0 && rename(tmp, file) < 0)
			rc = -errno;
		if (rc < 0) {
			pv_err_set(err, rc, SIZE_MAX, "cannot write %s: %s", file, strerror(-rc));
			unlink(tmp);
		}
	}
	pv_buf_release(&b);
	return rc;
}

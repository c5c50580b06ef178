/* stream.c - streams pushed to the host and file handles (docs/wire.md,
 * "Streams" and "File handles").
 *
 * A stream is output the agent sends as it comes, without a request per
 * chunk: push frames {"op": "stream", "stream": id, "data" | "eof" | "error"}.
 * Its source is a process's stdout or stderr (proc.c reads the pipe and
 * pushes; this file only keeps the id) or an fd the agent follows: a file
 * (like `tail -f`, woken by inotify, with a 100 ms re-check where inotify
 * cannot watch), a FIFO or a device (polled; read() == 0 is the end).
 *
 * Flow control: a source is read only while less than AG_STREAM_HIGH bytes of
 * output wait for the host. A host that stops reading thus stops the reads;
 * a process writing into a streamed pipe then blocks on it, as it would on
 * any pipe whose reader is slow; nothing is dropped.
 *
 * Streams belong to the connection that opened them: on a reconnect they are
 * closed (the host's objects for them are gone). File handles, like process
 * handles, survive reconnects.
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

#define PUSH_CHUNK (256u * 1024u)
#define MAX_FILES 256u
#define RECHECK_NS (100ull * 1000000ull)
#define READ_STEP (256u * 1024u)

enum skind { SK_PROC, SK_FD };

struct agstream {
	struct agstream *next;
	uint32_t id;
	enum skind kind;
	int fd;       /* SK_FD: the followed fd, -1 after the end */
	bool regular; /* read when dirty (inotify, re-check), else poll the fd */
	int wd;       /* inotify watch, -1: re-checked every RECHECK_NS */
	bool dirty;   /* may have data to read */
	uint64_t recheck_at;
};

struct aghandle {
	struct aghandle *next;
	uint32_t id;
	int fd;
	char *path; /* for messages */
};

static struct agstream *streams;
static struct aghandle *files;
static unsigned n_streams, n_files;
static uint32_t next_stream = 1, next_file = 1;
static int ino_fd = -2; /* -2: not tried yet, -1: unavailable */

/* pollfd index -> stream (or NULL for the inotify fd), from stream_poll_fill */
static struct agstream *slots[AG_STREAM_POLLFDS];

bool stream_room(void)
{
	return ag.out_bytes < AG_STREAM_HIGH;
}

/* ---- pushes ---------------------------------------------------------------------------- */

bool stream_push_data(uint32_t sid, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n < PUSH_CHUNK ? n : PUSH_CHUNK;
		struct ag_resp r;
		msgpack_packer *pk = ag_push_begin(&r, sid, 1, k);
		ag_pack_key(pk, "data");
		msgpack_pack_bin_with_body(pk, p, k);
		if (!ag_resp_end(&r))
			return false;
		p += k;
		n -= k;
	}
	return true;
}

void stream_push_eof(uint32_t sid)
{
	struct ag_resp r;
	msgpack_packer *pk = ag_push_begin(&r, sid, 1, 0);
	ag_pack_key(pk, "eof");
	msgpack_pack_true(pk);
	ag_resp_end(&r);
}

void stream_push_error(uint32_t sid, int errnum, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	struct ag_resp r;
	msgpack_packer *pk;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pk = ag_push_begin(&r, sid, 2, 0);
	ag_pack_key(pk, "errno");
	msgpack_pack_int(pk, errnum);
	ag_pack_key(pk, "error");
	ag_pack_cstr(pk, msg);
	ag_resp_end(&r);
}

/* ---- the stream table ---------------------------------------------------------------- */

static struct agstream *find_stream(uint32_t id)
{
	for (struct agstream *s = streams; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static uint32_t new_stream_id(void)
{
	for (;;) {
		uint32_t id = ag_next_handle(&next_stream);
		if (!find_stream(id))
			return id;
	}
}

static void unwatch(struct agstream *s)
{
	if (s->wd < 0)
		return;
	for (struct agstream *o = streams; o; o = o->next)
		if (o != s && o->wd == s->wd) {
			s->wd = -1; /* the watch is shared: inotify gives one per inode */
			return;
		}
	inotify_rm_watch(ino_fd, s->wd);
	s->wd = -1;
}

static void stream_free(struct agstream *s)
{
	struct agstream **pp;
	if (s->kind == SK_PROC)
		proc_stream_detach(s->id);
	unwatch(s);
	if (s->fd >= 0)
		close(s->fd);
	for (pp = &streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	n_streams--;
	free(s);
}

static void ensure_inotify(void)
{
	if (ino_fd != -2)
		return;
	ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ino_fd < 0)
		ag_log("inotify: %s; followed files are re-checked every 100 ms", strerror(errno));
}

/* Reads what a followed fd has, while the host has room; pushes it. */
static void read_fd(struct agstream *s)
{
	static uint8_t buf[PUSH_CHUNK];
	while (s->fd >= 0 && stream_room()) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			s->dirty = false;
			return;
		}
		if (n < 0) {
			stream_push_error(s->id, errno, "stream %u: read: %s", s->id, strerror(errno));
			close(s->fd);
			s->fd = -1;
			return;
		}
		if (n == 0) {
			struct stat st;
			off_t at = lseek(s->fd, 0, SEEK_CUR);
			if (s->regular && fstat(s->fd, &st) == 0 && at > st.st_size) {
				/* truncated under us: follow it from its new start, as tail -f does */
				lseek(s->fd, 0, SEEK_SET);
				continue;
			}
			s->dirty = false;
			if (!s->regular) {
				/* a FIFO's writers all left, or a device ended */
				stream_push_eof(s->id);
				close(s->fd);
				s->fd = -1;
			}
			return;
		}
		if (!stream_push_data(s->id, buf, (size_t)n)) {
			stream_push_error(s->id, ENOMEM, "stream %u: out of memory queueing %zd bytes", s->id, n);
			close(s->fd);
			s->fd = -1;
			return;
		}
	}
}

/* ---- ops ------------------------------------------------------------------------------- */

static struct aghandle *find_file(uint32_t id)
{
	for (struct aghandle *h = files; h; h = h->next)
		if (h->id == id)
			return h;
	return NULL;
}

/* The `file` argument; NULL after replying with an error. */
int file_handle_fd(uint32_t id)
{
	struct aghandle *h = find_file(id);
	return h ? h->fd : -1;
}

static struct aghandle *req_file(struct ag_req *rq)
{
	uint64_t id;
	struct aghandle *h;
	if (ag_req_u64(rq, AG_K_FILE, UINT64_MAX, &id) < 0) {
		ag_reply_bad(rq);
		return NULL;
	}
	if (id == UINT64_MAX) {
		ag_reply_err(rq, 0, "%s: missing 'file'", rq->op);
		return NULL;
	}
	if (id > UINT32_MAX || !(h = find_file((uint32_t)id))) {
		ag_reply_err(rq, EBADF, "%s %llu: no such file handle (never opened, or closed)", rq->op,
			     (unsigned long long)id);
		return NULL;
	}
	return h;
}

/* Opens a followed fd for stream_open: from `path` or a file handle. */
static int open_follow(struct ag_req *rq, struct agstream *s, char *path, struct aghandle *h)
{
	int64_t start = 0;
	bool from_end = false;
	struct stat st;
	char self[64];
	const char *what = path ? path : h->path;

	if (ag_req_i64(rq, AG_K_START, 0, &start) < 0 || ag_req_bool(rq, AG_K_FROM_END, false, &from_end) < 0) {
		ag_reply_bad(rq);
		return -EINVAL;
	}
	if (h) {
		/* a description of its own: reading must not move the handle's offset */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", h->fd);
		path = self;
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (s->fd < 0) {
		ag_reply_err(rq, errno, "stream_open %s: %s", what, strerror(errno));
		return -errno;
	}
	if (fstat(s->fd, &st) < 0 || S_ISDIR(st.st_mode)) {
		int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
		ag_reply_err(rq, e, "stream_open %s: %s", what, strerror(e));
		return -e;
	}
	s->regular = S_ISREG(st.st_mode);
	if (s->regular) {
		off_t at;
		if (h)
			at = lseek(h->fd, 0, SEEK_CUR);
		else if (from_end)
			at = start < -(int64_t)st.st_size ? 0 : (off_t)(st.st_size + start);
		else /* past the end: from the end (what is before start never comes) */
			at = start > (int64_t)st.st_size ? st.st_size : (off_t)start;
		if (!h && from_end && start > 0) {
			ag_reply_err(rq, EINVAL, "stream_open %s: 'start' must be <= 0 with 'from_end'", what);
			return -EINVAL;
		}
		if (at < 0 || lseek(s->fd, at, SEEK_SET) < 0) {
			ag_reply_err(rq, EINVAL, "stream_open %s: offset %lld is out of range", what, (long long)start);
			return -EINVAL;
		}
		ensure_inotify();
		s->wd = ino_fd >= 0 ? inotify_add_watch(ino_fd, path, IN_MODIFY | IN_ATTRIB) : -1;
		s->dirty = true;
		s->recheck_at = sys_mono_ns() + RECHECK_NS;
	} else if (start != 0 || from_end) {
		ag_reply_err(rq, ESPIPE, "stream_open %s: not a regular file, so 'start' cannot apply", what);
		return -ESPIPE;
	}
	return 0;
}

void stream_op_open(struct ag_req *rq)
{
	struct agstream *s = NULL;
	struct aghandle *h = NULL;
	char *path = NULL, *which = NULL;
	struct ag_resp r;
	msgpack_packer *pk;
	int sources;

	if (ag_req_str(rq, AG_K_PATH, &path) < 0 || ag_req_str(rq, AG_K_WHICH, &which) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	sources = (path != NULL) + rq->has[AG_K_PROC] + rq->has[AG_K_FILE];
	if (sources != 1) {
		ag_reply_err(rq, 0, "stream_open: give exactly one of 'proc' (with 'which'), 'path' or 'file'");
		goto out;
	}
	if (n_streams >= AG_MAX_STREAMS) {
		ag_reply_err(rq, 0, "stream_open: too many open streams (at most %u)", AG_MAX_STREAMS);
		goto out;
	}
	if (rq->has[AG_K_FILE] && !(h = req_file(rq)))
		goto out;
	if (!(s = calloc(1, sizeof(*s)))) {
		ag_reply_err(rq, ENOMEM, "stream_open: out of memory");
		goto out;
	}
	s->fd = s->wd = -1;
	s->id = new_stream_id();
	if (rq->has[AG_K_PROC]) {
		uint64_t ph;
		char why[200];
		int w = which && !strcmp(which, "stdout") ? 0 : which && !strcmp(which, "stderr") ? 1 : -1;
		if (ag_req_u64(rq, AG_K_PROC, 0, &ph) < 0) {
			ag_reply_bad(rq);
			goto fail;
		}
		if (w < 0) {
			ag_reply_err(rq, 0, "stream_open: 'which' must be \"stdout\" or \"stderr\"");
			goto fail;
		}
		s->kind = SK_PROC;
		/* the answer goes first: the host must know the id before its data */
		pk = ag_resp_begin(&r, rq, 1);
		ag_pack_key(pk, "stream");
		msgpack_pack_uint32(pk, s->id);
		int rc = proc_stream_attach(ph > UINT32_MAX ? 0 : (uint32_t)ph, w, s->id, why, sizeof(why), &r);
		if (rc < 0) {
			ag_resp_abort(&r);
			ag_reply_err(rq, -rc, "stream_open: %s", why);
			goto fail;
		}
	} else {
		s->kind = SK_FD;
		if (open_follow(rq, s, path, h) < 0)
			goto fail;
		pk = ag_resp_begin(&r, rq, 1);
		ag_pack_key(pk, "stream");
		msgpack_pack_uint32(pk, s->id);
		ag_resp_end(&r);
	}
	s->next = streams;
	streams = s;
	n_streams++;
	goto out;
fail:
	if (s->fd >= 0)
		close(s->fd);
	if (s->wd >= 0) {
		bool shared = false;
		for (struct agstream *o = streams; o; o = o->next)
			shared |= o->wd == s->wd;
		if (!shared)
			inotify_rm_watch(ino_fd, s->wd);
	}
	free(s);
out:
	free(path);
	free(which);
}

void stream_op_close(struct ag_req *rq)
{
	uint64_t id;
	struct agstream *s;
	if (ag_req_u64(rq, AG_K_STREAM, 0, &id) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (id > UINT32_MAX || !(s = find_stream((uint32_t)id))) {
		ag_reply_err(rq, EBADF, "stream_close %llu: no such stream", (unsigned long long)id);
		return;
	}
	stream_free(s);
	ag_reply_ok(rq);
}

/* ---- file handles ---------------------------------------------------------------------- */

void file_op_open(struct ag_req *rq)
{
	bool rd = false, wr = false, create = false, trunc = false, append = false, excl = false, created = false;
	int64_t mode = 0644;
	char *path = NULL;
	int fd = -1, flags;
	struct aghandle *h;
	struct ag_resp r;
	msgpack_packer *pk;

	if (ag_req_str_req(rq, AG_K_PATH, &path) < 0 || ag_req_bool(rq, AG_K_READ, false, &rd) < 0 ||
	    ag_req_bool(rq, AG_K_WRITE, false, &wr) < 0 || ag_req_bool(rq, AG_K_CREATE, false, &create) < 0 ||
	    ag_req_bool(rq, AG_K_TRUNCATE, false, &trunc) < 0 || ag_req_bool(rq, AG_K_APPEND, false, &append) < 0 ||
	    ag_req_bool(rq, AG_K_EXCLUSIVE, false, &excl) < 0 || ag_req_i64(rq, AG_K_MODE, 0644, &mode) < 0) {
		ag_reply_bad(rq);
		goto out;
	}
	if (mode < 0 || mode > 07777) {
		ag_reply_err(rq, 0, "file_open %s: 'mode' %lld is not a permission mode (0 to 07777)", path,
			     (long long)mode);
		goto out;
	}
	if (n_files >= MAX_FILES) {
		ag_reply_err(rq, 0, "file_open %s: too many open files (at most %u handles)", path, MAX_FILES);
		goto out;
	}
	wr |= append || trunc;
	if (!rd && !wr)
		rd = true;
	flags = (rd && wr ? O_RDWR : wr ? O_WRONLY : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	flags |= (trunc ? O_TRUNC : 0) | (append ? O_APPEND : 0);
	if (create || excl) {
		/* as write_file: create exclusively first so `mode` is exact (beating
		 * the umask) and applies only to a file this open created */
		fd = open(path, flags | O_CREAT | O_EXCL, (mode_t)mode);
		if (fd >= 0)
			created = true;
		else if (!excl && errno == EEXIST && (fd = open(path, flags)) < 0 && errno == ENOENT)
			fd = open(path, flags | O_CREAT, (mode_t)mode);
	} else {
		fd = open(path, flags);
	}
	if (fd < 0) {
		ag_reply_err(rq, errno, "file_open %s: %s", path, strerror(errno));
		goto out;
	}
	if (created && fchmod(fd, (mode_t)mode) < 0) {
		ag_reply_err(rq, errno, "file_open %s: chmod: %s", path, strerror(errno));
		goto out;
	}
	if (!(h = calloc(1, sizeof(*h)))) {
		ag_reply_err(rq, ENOMEM, "file_open %s: out of memory", path);
		goto out;
	}
	do
		h->id = ag_next_handle(&next_file);
	while (find_file(h->id));
	h->fd = fd;
	h->path = path;
	fd = -1;
	path = NULL;
	h->next = files;
	files = h;
	n_files++;
	pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "file");
	msgpack_pack_uint32(pk, h->id);
	ag_resp_end(&r);
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

void file_op_read(struct ag_req *rq)
{
	struct aghandle *h = req_file(rq);
	uint64_t want;
	uint8_t *buf;
	size_t len = 0;
	struct ag_resp r;
	msgpack_packer *pk;

	if (!h)
		return;
	if (ag_req_u64(rq, AG_K_N, PV_WIRE_READ_CAP, &want) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (want > PV_WIRE_READ_CAP) {
		ag_reply_err(rq, 0, "file_read %s: %llu bytes asked, at most %u MiB per read", h->path,
			     (unsigned long long)want, PV_WIRE_READ_CAP >> 20);
		return;
	}
	/* grow as it reads: a read to the end of a small file must not take the cap */
	size_t cap = want < READ_STEP ? (size_t)want : READ_STEP;
	if (!(buf = malloc(cap ? cap : 1))) {
		ag_reply_err(rq, ENOMEM, "file_read %s: out of memory", h->path);
		return;
	}
	while (len < want) {
		ssize_t n;
		if (len == cap) {
			size_t ncap = cap * 2 > want ? (size_t)want : cap * 2;
			uint8_t *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				ag_reply_err(rq, ENOMEM, "file_read %s: out of memory", h->path);
				return;
			}
			buf = nb;
			cap = ncap;
		}
		n = read(h->fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN && len)
			break; /* what a FIFO had so far */
		if (n < 0) {
			int e = errno;
			free(buf);
			ag_reply_err(rq, e, "file_read %s: %s", h->path,
				     e == EAGAIN ? "no data available (a FIFO or device would block)" : strerror(e));
			return;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	pk = ag_resp_begin_sized(&r, rq, 1, len);
	ag_pack_key(pk, "data");
	msgpack_pack_bin_with_body(pk, buf, len);
	free(buf);
	ag_resp_end(&r);
}

void file_op_write(struct ag_req *rq)
{
	struct aghandle *h = req_file(rq);
	const uint8_t *data;
	uint32_t len;
	bool present;
	struct ag_resp r;
	msgpack_packer *pk;

	if (!h)
		return;
	if (ag_req_bin(rq, AG_K_DATA, &data, &len, &present) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (!present) {
		ag_reply_err(rq, 0, "file_write %s: missing 'data'", h->path);
		return;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(h->fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ag_reply_err(rq, errno, "file_write %s: %s", h->path,
				     errno == EAGAIN ? "a FIFO or device would block" : strerror(errno));
			return;
		}
		off += (size_t)n;
	}
	pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "written");
	msgpack_pack_uint32(pk, len);
	ag_resp_end(&r);
}

void file_op_seek(struct ag_req *rq)
{
	struct aghandle *h = req_file(rq);
	int64_t off;
	char *whence = NULL;
	int w;
	off_t at;
	struct ag_resp r;
	msgpack_packer *pk;

	if (!h)
		return;
	if (ag_req_i64(rq, AG_K_OFFSET, 0, &off) < 0 || ag_req_str(rq, AG_K_WHENCE, &whence) < 0) {
		ag_reply_bad(rq);
		return;
	}
	w = !whence || !strcmp(whence, "set") ? SEEK_SET : !strcmp(whence, "cur") ? SEEK_CUR
		: !strcmp(whence, "end") ? SEEK_END : -1;
	free(whence);
	if (w < 0) {
		ag_reply_err(rq, 0, "file_seek %s: 'whence' must be \"set\", \"cur\" or \"end\"", h->path);
		return;
	}
	if ((at = lseek(h->fd, (off_t)off, w)) < 0) {
		ag_reply_err(rq, errno, "file_seek %s: %s", h->path, strerror(errno));
		return;
	}
	pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "offset");
	msgpack_pack_int64(pk, (int64_t)at);
	ag_resp_end(&r);
}

void file_op_close(struct ag_req *rq)
{
	struct aghandle *h = req_file(rq), **pp;
	int rc;
	if (!h)
		return;
	for (pp = &files; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	n_files--;
	rc = close(h->fd);
	/* close reports deferred write errors on some file systems */
	if (rc < 0 && errno != EINTR)
		ag_reply_err(rq, errno, "file_close %s: %s", h->path, strerror(errno));
	else
		ag_reply_ok(rq);
	free(h->path);
	free(h);
}

/* ---- event loop hooks ------------------------------------------------------------------ */

size_t stream_poll_fill(struct pollfd *pfd, size_t max)
{
	size_t n = 0;
	if (!stream_room())
		return 0; /* the host owes reading: no source is read meanwhile */
	if (ino_fd >= 0 && n < max) {
		pfd[n] = (struct pollfd){ .fd = ino_fd, .events = POLLIN };
		slots[n++] = NULL;
	}
	for (struct agstream *s = streams; s && n < max; s = s->next)
		if (s->kind == SK_FD && s->fd >= 0 && !s->regular) {
			pfd[n] = (struct pollfd){ .fd = s->fd, .events = POLLIN };
			slots[n++] = s;
		}
	return n;
}

void stream_poll_handle(const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (slots[i]) {
			read_fd(slots[i]);
			continue;
		}
		/* inotify: mark every stream on a changed inode */
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t len;
		while ((len = read(ino_fd, buf, sizeof(buf))) > 0)
			for (char *p = buf; p < buf + len;) {
				const struct inotify_event *ev = (const void *)p;
				for (struct agstream *s = streams; s; s = s->next)
					if (s->wd == ev->wd)
						s->dirty = true;
				p += sizeof(*ev) + ev->len;
			}
	}
}

void stream_work(uint64_t now)
{
	for (struct agstream *s = streams; s && stream_room(); s = s->next) {
		if (s->kind != SK_FD || s->fd < 0 || !s->regular)
			continue;
		if (s->wd < 0 && now >= s->recheck_at) {
			s->dirty = true;
			s->recheck_at = now + RECHECK_NS;
		}
		if (s->dirty)
			read_fd(s);
	}
}

uint64_t stream_next_deadline(void)
{
	uint64_t d = 0;
	for (struct agstream *s = streams; s; s = s->next) {
		if (s->kind != SK_FD || s->fd < 0 || !s->regular)
			continue;
		if (s->dirty && stream_room())
			return sys_mono_ns(); /* work now */
		if (s->wd < 0 && (!d || s->recheck_at < d))
			d = s->recheck_at;
	}
	return d;
}

void stream_conn_reset(void)
{
	while (streams)
		stream_free(streams);
}

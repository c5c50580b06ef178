#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "sys.h"

enum sink_type { SINK_FILE, SINK_FD, SINK_SOCKET };

struct client {
	int fd;
	struct pv_buf q;    /* queued bytes; q.data[head, q.len) not yet sent */
	size_t head;
	size_t replay_left; /* how many of the unsent bytes are replay: exempt from the backlog limit */
	bool waiting;       /* joined past the replay cap: gets nothing until the next run */
	bool want_out;      /* EPOLLOUT is registered */
};

struct pv_sink {
	enum sink_type type;
	int fd; /* file, fd, or listening socket */
	char *name;
	bool text;          /* an fd sink for text: messages say "cannot write NAME" */
	int broken;         /* sticky negative errno */
	unsigned failures;  /* times it failed: pv_hub_release counts sinks that did */
	struct pv_hub *hub; /* where failures are reported */
	FILE *stream;
	/* socket */
	int ep;
	struct client *clients;
	unsigned nclients, cap_clients, dropped;
	struct pv_buf run; /* the current run's frames, for replay */
	bool run_over;     /* the run passed PV_SINK_REPLAY_MAX: nothing kept */
	bool new_run;      /* pv_sink_begin_run: the next frame starts a run */
	dev_t dev;
	ino_t ino;
};

static void hub_report(struct pv_hub *h, const struct pv_sink *s, const char *msg);

static struct pv_sink *sink_new(enum sink_type t, int fd, const char *name)
{
	struct pv_sink *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = strdup(name);
	if (!s->name) {
		free(s);
		return NULL;
	}
	s->type = t;
	s->fd = fd;
	s->ep = -1;
	return s;
}

const char *pv_sink_name(const struct pv_sink *s) { return s->name; }
int pv_sink_failed(const struct pv_sink *s) { return s->broken; }

/* Marks the sink failed with rc (err says why) and reports it once. */
static int sink_fail(struct pv_sink *s, int rc, const struct pv_err *err)
{
	if (s->broken)
		return rc;
	s->broken = rc;
	s->failures++;
	if (s->hub)
		hub_report(s->hub, s, err->msg);
	return rc;
}

int pv_sink_open_file(const char *path, bool truncate, struct pv_sink **ret, struct pv_err *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
	struct pv_sink *s;
	if (fd < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot open event file %s: %s", path,
				  strerror(errno));
	s = sink_new(SINK_FILE, fd, path);
	if (!s) {
		close(fd);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	*ret = s;
	return 0;
}

int pv_sink_open_fd(int fd, const char *name, struct pv_sink **ret, struct pv_err *err)
{
	struct pv_sink *s = sink_new(SINK_FD, fd, name);
	if (!s)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	*ret = s;
	return 0;
}

int pv_sink_open_socket(const char *path, struct pv_sink **ret, struct pv_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	struct pv_sink *s;
	mode_t old;
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX,
				  "socket path %s is longer than %zu bytes; use a shorter path", path,
				  sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return pv_err_set(err, -EEXIST, SIZE_MAX,
					  "%s exists and is not a socket; refusing to replace it", path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return pv_err_set(err, -errno, SIZE_MAX, "socket: %s", strerror(errno));
		rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return pv_err_set(err, -EADDRINUSE, SIZE_MAX,
					  "another process is serving events on %s; pick another path", path);
		/* nobody listens: a stale socket from a process that died */
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "socket: %s", strerror(errno));
	/* The socket must never be reachable by other users, not even between
	 * bind() and a chmod(); the process is single-threaded here. */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		close(fd);
		return pv_err_set(err, rc, SIZE_MAX, "cannot listen on %s: %s", path, strerror(-rc));
	}
	s = sink_new(SINK_SOCKET, fd, path);
	if (!s) {
		close(fd);
		unlink(path);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	if (stat(path, &st) == 0) {
		s->dev = st.st_dev;
		s->ino = st.st_ino;
	}
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = fd;
	if (s->ep < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		rc = -errno;
		pv_sink_close(s);
		return pv_err_set(err, rc, SIZE_MAX, "cannot watch %s: %s", path, strerror(-rc));
	}
	*ret = s;
	return 0;
}

/* ---- socket clients ------------------------------------------------------- */

/* EPOLLOUT exactly while something is queued: an idle client must not keep
 * the poll fd readable. Hang-ups are reported either way. */
static void client_watch(struct pv_sink *s, struct client *c)
{
	bool want = c->head < c->q.len;
	struct epoll_event ev = { .events = want ? EPOLLOUT : 0, .data.fd = c->fd };
	if (want != c->want_out && epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->want_out = want;
}

static void drop_client(struct pv_sink *s, unsigned i)
{
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->clients[i].fd, NULL);
	close(s->clients[i].fd);
	pv_buf_release(&s->clients[i].q);
	s->clients[i] = s->clients[--s->nclients];
}

static int client_queue(struct client *c, const uint8_t *p, size_t n)
{
	if (c->head == c->q.len) {
		c->head = 0;
		c->q.len = 0;
	} else if (c->head >= (1u << 20) && c->head * 2 >= c->q.len) {
		/* sent bytes are cut off in bulk, not per send: a queue of a whole
		 * replay drains in many small sends */
		memmove(c->q.data, c->q.data + c->head, c->q.len - c->head);
		c->q.len -= c->head;
		c->head = 0;
	}
	return pv_buf_append(&c->q, p, n);
}

static void client_sent(struct client *c, size_t n)
{
	c->head += n;
	c->replay_left -= n < c->replay_left ? n : c->replay_left;
	if (c->head == c->q.len) {
		c->head = 0;
		c->q.len = 0;
		if (c->q.cap > (1u << 20))
			pv_buf_release(&c->q); /* do not keep a replay's worth of memory per client */
	}
}

/* Pushes what the client can take now: 0, or -1 if the client is gone. */
static int flush_client(struct client *c)
{
	while (c->head < c->q.len) {
		ssize_t n = send(c->fd, c->q.data + c->head, c->q.len - c->head, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		client_sent(c, (size_t)n);
	}
	return 0;
}

/* A new run's first frame: the replay starts afresh, and clients that
 * joined past the cap start receiving. */
static void start_run(struct pv_sink *s)
{
	s->new_run = false;
	pv_buf_reset(&s->run);
	s->run_over = false;
	for (unsigned i = 0; i < s->nclients; i++)
		s->clients[i].waiting = false;
}

static void accept_clients(struct pv_sink *s)
{
	for (;;) {
		struct epoll_event ev = { .events = 0 };
		struct client *c;
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error: try on the next service */
		if (s->nclients == s->cap_clients) {
			unsigned cap = s->cap_clients ? s->cap_clients * 2 : 4;
			c = realloc(s->clients, cap * sizeof(*c));
			if (!c) {
				close(fd);
				return;
			}
			s->clients = c;
			s->cap_clients = cap;
		}
		ev.data.fd = fd;
		if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			continue;
		}
		c = &s->clients[s->nclients++];
		*c = (struct client){ .fd = fd, .q = PV_BUF_INIT, .waiting = s->run_over };
		/* the run so far, so that this client sees it whole */
		if (!s->run_over && s->run.len) {
			if (pv_buf_append(&c->q, s->run.data, s->run.len) < 0) {
				drop_client(s, s->nclients - 1);
				continue;
			}
			c->replay_left = s->run.len;
		}
		if (flush_client(c) < 0)
			drop_client(s, s->nclients - 1);
		else
			client_watch(s, c);
	}
}

void pv_sink_service(struct pv_sink *s)
{
	struct epoll_event evs[32];
	int n;

	if (s->type != SINK_SOCKET)
		return;
	n = epoll_wait(s->ep, evs, 32, 0);
	for (int e = 0; e < n; e++) {
		if (evs[e].data.fd == s->fd) {
			accept_clients(s);
			continue;
		}
		for (unsigned i = 0; i < s->nclients; i++) {
			struct client *c = &s->clients[i];
			if (c->fd != evs[e].data.fd)
				continue;
			/* a client that hung up cannot take what is queued for it */
			if ((evs[e].events & (EPOLLHUP | EPOLLERR)) || flush_client(c) < 0)
				drop_client(s, i);
			else
				client_watch(s, c);
			break;
		}
	}
}

int pv_sink_poll_fd(const struct pv_sink *s) { return s->type == SINK_SOCKET ? s->ep : -1; }
unsigned pv_sink_clients(const struct pv_sink *s) { return s->nclients; }
unsigned pv_sink_dropped(const struct pv_sink *s) { return s->dropped; }
size_t pv_sink_replay_bytes(const struct pv_sink *s) { return s->run_over ? 0 : s->run.len; }

static int socket_write(struct pv_sink *s, const uint8_t *frame, size_t len)
{
	if (s->new_run)
		start_run(s);
	/* clients accepted here get the replay of the frames before this one */
	accept_clients(s);
	for (unsigned i = 0; i < s->nclients;) {
		struct client *c = &s->clients[i];
		size_t off = 0;
		if (c->waiting) {
			i++;
			continue;
		}
		if (c->head < c->q.len && flush_client(c) < 0) {
			drop_client(s, i);
			continue;
		}
		if (c->head == c->q.len) {
			ssize_t n;
			do
				n = send(c->fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			while (n < 0 && errno == EINTR);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				drop_client(s, i);
				continue;
			}
			off = n > 0 ? (size_t)n : 0;
		}
		if (off < len) {
			size_t behind = c->q.len - c->head - c->replay_left;
			if (behind + (len - off) > PV_SINK_CLIENT_BACKLOG ||
			    client_queue(c, frame + off, len - off) < 0) {
				/* too slow: cut it loose rather than stall the run */
				s->dropped++;
				drop_client(s, i);
				continue;
			}
		}
		client_watch(s, c);
		i++;
	}
	if (!s->run_over) {
		if (s->run.len + len > PV_SINK_REPLAY_MAX || pv_buf_append(&s->run, frame, len) < 0) {
			/* past the cap: keep nothing rather than a replay that is not a whole run */
			s->run_over = true;
			pv_buf_release(&s->run);
		}
	}
	return 0;
}

/* ---- files and fds --------------------------------------------------------- */

static int file_write(struct pv_sink *s, const uint8_t *frame, size_t len, struct pv_err *err)
{
	struct stat st;
	int rc = 0;

	while (flock(s->fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return pv_err_set(err, -errno, SIZE_MAX, "cannot lock %s: %s", s->name,
					  strerror(errno));
	if (fstat(s->fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	{
		ssize_t n;
		do
			n = write(s->fd, frame, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			rc = -errno;
		else if ((size_t)n < len)
			rc = -ENOSPC; /* a short write to a regular file: the disk is full */
	}
	if (rc < 0 && S_ISREG(st.st_mode)) {
		/* Keep the file a valid stream: cut back the torn frame. */
		if (ftruncate(s->fd, st.st_size) < 0) {
			/* nothing better to do; the error below still stands */
		}
	}
out:
	flock(s->fd, LOCK_UN);
	if (rc < 0)
		return pv_err_set(err, rc, SIZE_MAX, "cannot write events to %s: %s", s->name,
				  strerror(-rc));
	return 0;
}

int pv_sink_write(struct pv_sink *s, const uint8_t *frame, size_t len, struct pv_err *err)
{
	struct pv_err local;
	struct pv_err *e = err ? err : &local;
	int rc;

	if (s->broken)
		return pv_err_set(err, s->broken, SIZE_MAX, "cannot write %s%s: it failed earlier",
				  s->text ? "" : "events to ", s->name);
	switch (s->type) {
	case SINK_FILE:
		rc = file_write(s, frame, len, e);
		break;
	case SINK_FD:
		rc = pv_write_all(s->fd, frame, len);
		if (rc < 0)
			pv_err_set(e, rc, SIZE_MAX, "cannot write %s%s: %s", s->text ? "" : "events to ",
				   s->name, strerror(-rc));
		break;
	default:
		return socket_write(s, frame, len);
	}
	if (rc < 0)
		sink_fail(s, rc, e);
	return rc;
}

/* stdio's side of pv_sink_stream: a failed write loses the buffered bytes
 * (returning 0 sets the stream's error flag) and the sink keeps the errno. */
static ssize_t stream_write(void *cookie, const char *buf, size_t n)
{
	struct pv_sink *s = cookie;
	return pv_sink_write(s, (const uint8_t *)buf, n, NULL) < 0 ? 0 : (ssize_t)n;
}

FILE *pv_sink_stream(struct pv_sink *s)
{
	if (s->type != SINK_FD)
		return NULL;
	if (!s->stream)
		s->stream = fopencookie(s, "w", (cookie_io_functions_t){ .write = stream_write });
	return s->stream;
}

int pv_sink_restart(struct pv_sink *s, struct pv_err *err)
{
	int rc = 0;
	if (s->type != SINK_FILE)
		return 0;
	while (flock(s->fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return pv_err_set(err, -errno, SIZE_MAX, "cannot lock %s: %s", s->name,
					  strerror(errno));
	if (ftruncate(s->fd, 0) < 0)
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot truncate %s: %s", s->name, strerror(errno));
	flock(s->fd, LOCK_UN);
	if (rc == 0)
		s->broken = 0;
	return rc;
}

int pv_sink_begin_run(struct pv_sink *s, struct pv_err *err)
{
	struct pv_err local;
	struct pv_err *e = err ? err : &local;
	int rc;

	switch (s->type) {
	case SINK_FILE:
		rc = pv_sink_restart(s, e);
		/* a file that cannot be emptied would mix two runs: stop writing it */
		return rc < 0 ? sink_fail(s, rc, e) : 0;
	case SINK_SOCKET:
		s->new_run = true; /* applied at the next frame: until then a joining client gets the last run */
		return 0;
	default:
		return 0;
	}
}

/* Flushes and closes a text stream; a failing flush is the sink's failure. */
static void close_stream(struct pv_sink *s)
{
	if (s->stream) {
		fclose(s->stream);
		s->stream = NULL;
	}
}

struct pv_sink *pv_sink_close(struct pv_sink *s)
{
	if (!s)
		return NULL;
	close_stream(s);
	if (s->type == SINK_SOCKET) {
		/* Give live consumers a bounded chance to receive the end of the run;
		 * a client still in the listen queue is accepted and sent the replay. */
		int64_t deadline = (int64_t)(sys_mono_ns() / 1000000) + PV_SINK_CLOSE_GRACE_MS;
		accept_clients(s);
		for (;;) {
			unsigned waiting = 0;
			pv_sink_service(s);
			for (unsigned i = 0; i < s->nclients; i++)
				waiting += s->clients[i].head < s->clients[i].q.len;
			int64_t left = deadline - (int64_t)(sys_mono_ns() / 1000000);
			if (!waiting || left <= 0)
				break;
			struct pollfd p = { .fd = s->ep, .events = POLLIN };
			poll(&p, 1, (int)left);
		}
		while (s->nclients)
			drop_client(s, 0);
		free(s->clients);
		pv_buf_release(&s->run);
		{
			struct stat st;
			/* unlink only our own socket, not one that replaced it */
			if (stat(s->name, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
				unlink(s->name);
		}
		if (s->ep >= 0)
			close(s->ep);
		close(s->fd);
	} else if (s->type == SINK_FILE) {
		close(s->fd);
	}
	free(s->name);
	free(s);
	return NULL;
}

/* ---- hub ------------------------------------------------------------------ */

void pv_hub_init(struct pv_hub *h, void (*report)(void *ctx, const char *msg), void *ctx)
{
	memset(h, 0, sizeof(*h));
	h->ep = -1;
	h->report = report;
	h->report_ctx = ctx;
}

static void hub_report(struct pv_hub *h, const struct pv_sink *s, const char *msg)
{
	char line[PV_ERR_MSG_MAX + 64];
	if (!h->report)
		return;
	snprintf(line, sizeof(line), "%s; no further %s there", msg, s->text ? "output goes" : "events go");
	h->report(h->report_ctx, line);
}

static void hub_on_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	pv_hub_service(w->data);
}

/* Starts the watcher once there is both a loop and an epoll fd to watch. */
static void hub_watch(struct pv_hub *h)
{
	if (!h->loop || h->ep < 0 || ev_is_active(&h->watch))
		return;
	ev_io_init(&h->watch, hub_on_ready, h->ep, EV_READ);
	h->watch.data = h;
	ev_io_start(h->loop, &h->watch);
}

void pv_hub_attach(struct pv_hub *h, struct ev_loop *loop)
{
	pv_hub_detach(h);
	h->loop = loop;
	hub_watch(h);
}

void pv_hub_detach(struct pv_hub *h)
{
	if (h->loop && ev_is_active(&h->watch))
		ev_io_stop(h->loop, &h->watch);
	h->loop = NULL;
}

static int hub_add(struct pv_hub *h, struct pv_sink *s, bool text)
{
	int pfd = pv_sink_poll_fd(s);
	if (h->n == PV_HUB_MAX_SINKS)
		return -ENOSPC;
	if (pfd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = pfd };
		if (h->ep < 0 && (h->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			return -errno;
		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, pfd, &ev) < 0)
			return -errno;
		hub_watch(h);
	}
	s->hub = h;
	h->text[h->n] = text;
	h->sinks[h->n++] = s;
	return 0;
}

int pv_hub_add(struct pv_hub *h, struct pv_sink *s) { return hub_add(h, s, false); }

FILE *pv_hub_add_text(struct pv_hub *h, int fd, const char *name, struct pv_err *err)
{
	struct pv_sink *s;
	FILE *f;
	int rc;

	if (pv_sink_open_fd(fd, name, &s, err) < 0)
		return NULL;
	s->text = true;
	f = pv_sink_stream(s);
	rc = f ? hub_add(h, s, true) : -ENOMEM;
	if (rc < 0) {
		pv_sink_close(s);
		pv_err_set(err, rc, SIZE_MAX, "cannot set up %s: %s", name, strerror(-rc));
		return NULL;
	}
	return f;
}

void pv_hub_emit_frame(struct pv_hub *h, const uint8_t *frame, size_t len)
{
	for (unsigned i = 0; i < h->n; i++)
		if (!h->text[i] && !pv_sink_failed(h->sinks[i]))
			pv_sink_write(h->sinks[i], frame, len, NULL); /* a failure reports itself */
}

int pv_hub_emit(struct pv_hub *h, struct pv_event *ev)
{
	struct pv_err err;
	int rc;
	if (ev->ts == 0)
		ev->ts = pv_now_ns();
	pv_buf_reset(&h->scratch);
	rc = pv_event_encode(ev, &h->scratch, &err);
	if (rc < 0) {
		if (h->report)
			h->report(h->report_ctx, err.msg);
		return rc;
	}
	pv_hub_emit_frame(h, h->scratch.data, h->scratch.len);
	return 0;
}

void pv_hub_begin_run(struct pv_hub *h)
{
	for (unsigned i = 0; i < h->n; i++)
		pv_sink_begin_run(h->sinks[i], NULL); /* a failure reports itself */
}

int pv_hub_poll_fd(const struct pv_hub *h) { return h->ep; }

void pv_hub_service(struct pv_hub *h)
{
	for (unsigned i = 0; i < h->n; i++)
		pv_sink_service(h->sinks[i]);
}

unsigned pv_hub_release(struct pv_hub *h)
{
	unsigned failed = 0;
	pv_hub_detach(h); /* before its fd closes */
	for (unsigned i = 0; i < h->n; i++) {
		close_stream(h->sinks[i]); /* the last text may fail here, reported like any write */
		failed += h->sinks[i]->failures > 0;
		h->sinks[i] = pv_sink_close(h->sinks[i]);
	}
	h->n = 0;
	if (h->ep >= 0)
		close(h->ep);
	h->ep = -1;
	pv_buf_release(&h->scratch);
	return failed;
}

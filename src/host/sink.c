#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

enum sink_type { SINK_FILE, SINK_FD, SINK_SOCKET };

struct client {
	int fd;
	struct pv_buf pending;
};

struct pv_sink {
	enum sink_type type;
	int fd; /* file, fd, or listening socket */
	char *name;
	int broken; /* sticky negative errno */
	/* socket */
	struct client *clients;
	unsigned nclients, cap_clients, dropped;
	dev_t dev;
	ino_t ino;
};

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
	return s;
}

const char *pv_sink_name(const struct pv_sink *s) { return s->name; }

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
	*ret = s;
	return 0;
}

static void drop_client(struct pv_sink *s, unsigned i)
{
	close(s->clients[i].fd);
	pv_buf_release(&s->clients[i].pending);
	s->clients[i] = s->clients[--s->nclients];
}

static void accept_clients(struct pv_sink *s)
{
	for (;;) {
		int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error: try on the next write */
		if (s->nclients == s->cap_clients) {
			unsigned cap = s->cap_clients ? s->cap_clients * 2 : 4;
			struct client *c = realloc(s->clients, cap * sizeof(*c));
			if (!c) {
				close(fd);
				return;
			}
			s->clients = c;
			s->cap_clients = cap;
		}
		s->clients[s->nclients++] = (struct client){ .fd = fd, .pending = PV_BUF_INIT };
	}
}

/* Pushes what the client can take now: 0, or -1 if the client is gone. */
static int flush_client(struct client *c)
{
	while (c->pending.len) {
		ssize_t n = send(c->fd, c->pending.data, c->pending.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		pv_buf_consume(&c->pending, (size_t)n);
	}
	return 0;
}

void pv_sink_service(struct pv_sink *s)
{
	if (s->type != SINK_SOCKET)
		return;
	accept_clients(s);
	for (unsigned i = 0; i < s->nclients;) {
		if (flush_client(&s->clients[i]) < 0)
			drop_client(s, i);
		else
			i++;
	}
}

int pv_sink_poll_fd(const struct pv_sink *s) { return s->type == SINK_SOCKET ? s->fd : -1; }
unsigned pv_sink_clients(const struct pv_sink *s) { return s->nclients; }
unsigned pv_sink_dropped(const struct pv_sink *s) { return s->dropped; }

static int socket_write(struct pv_sink *s, const uint8_t *frame, size_t len)
{
	accept_clients(s);
	for (unsigned i = 0; i < s->nclients;) {
		struct client *c = &s->clients[i];
		size_t off = 0;
		if (c->pending.len == 0) {
			ssize_t n;
			do
				n = send(c->fd, frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			while (n < 0 && errno == EINTR);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				drop_client(s, i);
				continue;
			}
			off = n > 0 ? (size_t)n : 0;
		} else if (flush_client(c) < 0) {
			drop_client(s, i);
			continue;
		}
		if (off < len) {
			if (c->pending.len + (len - off) > PV_SINK_CLIENT_BACKLOG ||
			    pv_buf_append(&c->pending, frame + off, len - off) < 0) {
				/* too slow: cut it loose rather than stall the run */
				s->dropped++;
				drop_client(s, i);
				continue;
			}
		}
		i++;
	}
	return 0;
}

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
	int rc;
	if (s->broken)
		return pv_err_set(err, s->broken, SIZE_MAX, "event sink %s failed earlier", s->name);
	switch (s->type) {
	case SINK_FILE:
		rc = file_write(s, frame, len, err);
		break;
	case SINK_FD:
		rc = pv_write_all(s->fd, frame, len);
		if (rc < 0)
			pv_err_set(err, rc, SIZE_MAX, "cannot write events to %s: %s", s->name,
				   strerror(-rc));
		break;
	default:
		return socket_write(s, frame, len);
	}
	if (rc < 0)
		s->broken = rc;
	return rc;
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

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pv_sink *pv_sink_close(struct pv_sink *s)
{
	if (!s)
		return NULL;
	if (s->type == SINK_SOCKET) {
		/* Give live consumers a bounded chance to receive the end of the run. */
		int64_t deadline = mono_ms() + PV_SINK_CLOSE_GRACE_MS;
		for (;;) {
			unsigned waiting = 0;
			pv_sink_service(s);
			for (unsigned i = 0; i < s->nclients; i++)
				waiting += s->clients[i].pending.len > 0;
			int64_t left = deadline - mono_ms();
			if (!waiting || left <= 0)
				break;
			struct pollfd *pfd = calloc(s->nclients, sizeof(*pfd));
			if (!pfd)
				break;
			for (unsigned i = 0; i < s->nclients; i++) {
				pfd[i].fd = s->clients[i].fd;
				pfd[i].events = s->clients[i].pending.len ? POLLOUT : 0;
			}
			poll(pfd, s->nclients, (int)left);
			free(pfd);
		}
		while (s->nclients)
			drop_client(s, 0);
		free(s->clients);
		{
			struct stat st;
			/* unlink only our own socket, not one that replaced it */
			if (stat(s->name, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
				unlink(s->name);
		}
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
	h->report = report;
	h->report_ctx = ctx;
}

int pv_hub_add(struct pv_hub *h, struct pv_sink *s)
{
	if (h->n == PV_HUB_MAX_SINKS)
		return -ENOSPC;
	h->failed[h->n] = false;
	h->sinks[h->n++] = s;
	return 0;
}

void pv_hub_emit_frame(struct pv_hub *h, const uint8_t *frame, size_t len)
{
	for (unsigned i = 0; i < h->n; i++) {
		struct pv_err err;
		if (h->failed[i])
			continue;
		if (pv_sink_write(h->sinks[i], frame, len, &err) < 0) {
			h->failed[i] = true;
			if (h->report) {
				char msg[PV_ERR_MSG_MAX + 64];
				snprintf(msg, sizeof(msg), "%s; no further events go there", err.msg);
				h->report(h->report_ctx, msg);
			}
		}
	}
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

void pv_hub_release(struct pv_hub *h)
{
	for (unsigned i = 0; i < h->n; i++)
		h->sinks[i] = pv_sink_close(h->sinks[i]);
	h->n = 0;
	pv_buf_release(&h->scratch);
}

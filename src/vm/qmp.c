#include "qmp.h"

#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t pv_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		uint64_t now = pv_mono_ns();
		struct pollfd p = { .fd = fd, .events = ev };
		int rc;
		if (now >= deadline)
			return -ETIMEDOUT;
		rc = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc > 0)
			return 0;
	}
}

/* One JSON line from what is buffered, without I/O: 1 with *ret, 0 when no
 * whole line is buffered yet, or a negative errno. */
static int take_msg(struct qmp *q, json_t **ret, struct pv_err *err)
{
	uint8_t *nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
	if (nl) {
		json_error_t je;
		size_t n = (size_t)(nl - q->in.data) + 1;
		json_t *j = json_loadb((const char *)q->in.data, n, 0, &je);
		pv_buf_consume(&q->in, n);
		if (!j)
			return pv_err_set(err, -EBADMSG, SIZE_MAX, "QMP sent invalid JSON: %s", je.text);
		*ret = j;
		return 1;
	}
	if (q->in.len > QMP_MAX_LINE)
		return pv_err_set(err, -EMSGSIZE, SIZE_MAX, "QMP line longer than 16 MiB");
	return 0;
}

/* Reads one JSON line. */
static int read_msg(struct qmp *q, json_t **ret, uint64_t deadline, struct pv_err *err)
{
	for (;;) {
		int rc = take_msg(q, ret, err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		rc = wait_fd(q->fd, POLLIN, deadline);
		if (rc < 0)
			return pv_err_set(err, rc, SIZE_MAX, "timed out waiting for QEMU's QMP reply");
		if (pv_buf_reserve(&q->in, 65536) < 0)
			return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		ssize_t n = read(q->fd, q->in.data + q->in.len, q->in.cap - q->in.len);
		if (n == 0)
			return pv_err_set(err, -EPIPE, SIZE_MAX, "QEMU closed its QMP socket (did it exit?)");
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return pv_err_set(err, -errno, SIZE_MAX, "QMP read: %s", strerror(errno));
		if (n > 0)
			q->in.len += (size_t)n;
	}
}

/* Message m while waiting for cmd's reply (consumed): 1 for an event (kept
 * in q->events), 0 for the return (into *ret if ret), -EIO for an error. */
static int on_reply(struct qmp *q, const char *cmd, json_t *m, json_t **ret, struct pv_err *err)
{
	int rc;
	if (json_object_get(m, "event")) {
		json_array_append_new(q->events, m);
		return 1;
	}
	json_t *e = json_object_get(m, "error");
	if (e) {
		rc = pv_err_set(err, -EIO, SIZE_MAX, "QMP %s failed: %s", cmd,
				json_string_value(json_object_get(e, "desc")) ?: "unknown error");
		json_decref(m);
		return rc;
	}
	if (ret)
		*ret = json_incref(json_object_get(m, "return"));
	json_decref(m);
	return 0;
}

int qmp_parse_reply(struct qmp *q, const char *cmd, json_t **ret, struct pv_err *err)
{
	for (;;) {
		json_t *m;
		int rc = take_msg(q, &m, err);
		if (rc == 0)
			return -EAGAIN;
		if (rc < 0 || (rc = on_reply(q, cmd, m, ret, err)) <= 0)
			return rc;
	}
}

bool qmp_take_event(struct qmp *q, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(q->events, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "event")) ?: "", name) == 0) {
			json_array_remove(q->events, i);
			return true;
		}
	}
	return false;
}

static int send_all(struct qmp *q, const char *s, size_t n, int fd, uint64_t deadline, struct pv_err *err)
{
	struct iovec iov = { (void *)s, n };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (iov.iov_len > 0) {
		ssize_t w = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int rc = wait_fd(q->fd, POLLOUT, deadline);
				if (rc < 0)
					return pv_err_set(err, rc, SIZE_MAX, "timed out sending to QMP");
				continue;
			}
			return pv_err_set(err, -errno, SIZE_MAX, "QMP send: %s", strerror(errno));
		}
		iov.iov_base = (char *)iov.iov_base + w;
		iov.iov_len -= (size_t)w;
		mh.msg_control = NULL; /* the fd goes with the first byte only */
		mh.msg_controllen = 0;
	}
	return 0;
}

static int exec_common(struct qmp *q, const char *cmd, json_t *args, int fd, json_t **ret, uint64_t deadline,
		       struct pv_err *err)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	char *s;
	int rc;

	if (args)
		json_object_set_new(req, "arguments", args);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!s)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	rc = send_all(q, s, strlen(s), fd, deadline, err);
	if (rc == 0)
		rc = send_all(q, "\n", 1, -1, deadline, err);
	free(s);
	if (rc < 0)
		return rc;
	for (;;) {
		json_t *m;
		if ((rc = read_msg(q, &m, deadline, err)) < 0) {
			pv_err_prefix(err, "QMP %s", cmd);
			return rc;
		}
		if ((rc = on_reply(q, cmd, m, ret, err)) <= 0)
			return rc;
	}
}

int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret, uint64_t deadline, struct pv_err *err)
{
	return exec_common(q, cmd, args, -1, ret, deadline, err);
}

int qmp_exec_fd(struct qmp *q, const char *cmd, json_t *args, int fd, uint64_t deadline, struct pv_err *err)
{
	return exec_common(q, cmd, args, fd, NULL, deadline, err);
}

int pv_connect_listening(int fd, const struct sockaddr_un *sa, uint64_t deadline)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		/* the socket file appears at bind(), QEMU's listen() follows a moment
		 * later: nothing to wait on for that moment */
		if (errno != ECONNREFUSED || pv_mono_ns() >= deadline)
			return -1;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

int qmp_connect(struct qmp *q, const char *path, uint64_t deadline, struct pv_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *greet;
	int rc;

	q->fd = -1;
	q->in = (struct pv_buf)PV_BUF_INIT;
	q->events = json_array();
	if (strlen(path) >= sizeof(sa.sun_path))
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "QMP socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0 || pv_connect_listening(q->fd, &sa, deadline) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot connect to QMP at %s: %s", path, strerror(errno));
	if ((rc = read_msg(q, &greet, deadline, err)) < 0)
		return rc;
	json_decref(greet);
	return qmp_exec(q, "qmp_capabilities", NULL, NULL, deadline, err);
}

int qmp_wait_event(struct qmp *q, const char *name, uint64_t deadline, struct pv_err *err)
{
	for (;;) {
		if (qmp_take_event(q, name))
			return 0;
		json_t *m;
		int rc = read_msg(q, &m, deadline, err);
		if (rc < 0) {
			pv_err_prefix(err, "waiting for QMP event %s", name);
			return rc;
		}
		if (json_object_get(m, "event"))
			json_array_append_new(q->events, m);
		else
			json_decref(m);
	}
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	pv_buf_release(&q->in);
	json_decref(q->events);
	q->events = NULL;
}

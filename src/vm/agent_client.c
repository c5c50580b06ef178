#include "agent_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp.h"
#include "wire.h"

static int out_write(void *data, const char *p, size_t n)
{
	return pv_buf_append(data, p, n) < 0 ? -1 : 0;
}

static int mark_dead(struct agent_conn *a, int rc, struct pv_err *err, const char *fmt, const char *why)
{
	if (!a->dead) {
		a->dead = true;
		snprintf(a->dead_why, sizeof(a->dead_why), fmt, why);
	}
	return pv_err_set(err, rc, SIZE_MAX, "%s", a->dead_why);
}

/* Reads frames until one arrives; returns it in a->body. soft: a deadline
 * that passes is -ETIMEDOUT with the connection left alive. */
volatile sig_atomic_t agent_interrupt;

static int interrupted(struct agent_conn *a, struct pv_err *err)
{
	a->interrupted = true;
	return pv_err_set(err, -EINTR, SIZE_MAX, "%s", "interrupted");
}

static int read_frame(struct agent_conn *a, uint64_t deadline, bool soft, struct pv_err *err)
{
	a->interrupted = false;
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		struct pv_err ferr;
		int rc = frame_dec_next(&a->dec, &body, &len, NULL, &ferr);
		if (rc == 1) {
			pv_buf_reset(&a->body);
			if (pv_buf_append(&a->body, body, len) < 0)
				return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
			return 0;
		}
		if (rc < 0)
			return mark_dead(a, -EPROTO, err, "the agent sent a bad frame: %.400s", ferr.msg);
		struct pollfd p[2] = { { .fd = a->fd, .events = POLLIN }, { .fd = a->pidfd, .events = POLLIN } };
		uint64_t now = pv_mono_ns();
		int timeout = -1;
		if (deadline) {
			if (now >= deadline && soft)
				return pv_err_set(err, -ETIMEDOUT, SIZE_MAX, "the agent did not answer before the deadline");
			if (now >= deadline)
				return mark_dead(a, -ETIMEDOUT, err, "%s", "the agent stopped answering (no reply before the deadline)");
			timeout = (int)((deadline - now) / 1000000u) + 1;
		}
		if (agent_interrupt)
			return interrupted(a, err);
		rc = poll(p, a->pidfd >= 0 ? 2 : 1, timeout);
		if (rc < 0 && errno != EINTR)
			return mark_dead(a, -errno, err, "poll: %s", strerror(errno));
		if (rc <= 0)
			continue;
		if (p[0].revents) {
			ssize_t n = frame_dec_read_fd(&a->dec, a->fd);
			if (n == 0)
				return mark_dead(a, -EPIPE, err, "%s", "the agent connection closed (did QEMU exit?)");
			if (n < 0 && n != -EAGAIN && n != -EINTR)
				return mark_dead(a, (int)n, err, "agent read: %s", strerror((int)-n));
			continue;
		}
		if (a->pidfd >= 0 && p[1].revents)
			return mark_dead(a, -ECHILD, err, "%s", "QEMU exited");
	}
}

int agent_connect(struct agent_conn *a, const char *sock_path, int pidfd, uint64_t deadline, struct pv_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->pidfd = pidfd;
	frame_dec_init(&a->dec);
	a->next_id = 1;
	msgpack_packer_init(&a->pk, &a->out, out_write);
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return pv_err_set(err, -ENAMETOOLONG, SIZE_MAX, "agent socket path too long: %s", sock_path);
	strcpy(sa.sun_path, sock_path);
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || pv_connect_listening(a->fd, &sa, deadline) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot connect to the agent socket %s: %s", sock_path,
				  strerror(errno));
	if ((rc = read_frame(a, deadline, false, err)) < 0)
		return rc;
	return agent_take_hello(a, err);
}

int agent_take_hello(struct agent_conn *a, struct pv_err *err)
{
	int64_t v = -1;
	if (ctl_parse_any(a->body.data, a->body.len, &a->resp, err) < 0 || !ctl_get_int(&a->resp, "protocol_version", &v)) {
		a->dead = true;
		return pv_err_set(err, -EPROTO, SIZE_MAX, "the guest's first message is not an agent hello");
	}
	a->agent_version = v;
	if (v != PV_WIRE_VERSION) {
		a->dead = true;
		return pv_err_set(err, -EPROTONOSUPPORT, SIZE_MAX,
				  "agent protocol version mismatch: the guest agent speaks version %lld, this provium speaks "
				  "version %d; rebuild the guest image (scripts/build-image) or use a matching provium",
				  (long long)v, PV_WIRE_VERSION);
	}
	return 0;
}

static void pack_route(const struct agent_conn *a, msgpack_packer *pk)
{
	if (!a->route)
		return;
	msgpack_pack_str_with_body(pk, "worker", 6);
	msgpack_pack_uint32(pk, a->route);
}

msgpack_packer *agent_begin(struct agent_conn *a, const char *op, unsigned nargs)
{
	static const uint8_t zero[4];
	pv_buf_reset(&a->out);
	pv_buf_append(&a->out, zero, 4);
	a->cur_id = a->next_id++;
	msgpack_pack_map(&a->pk, nargs + 2 + (a->route ? 1 : 0));
	msgpack_pack_str_with_body(&a->pk, "id", 2);
	msgpack_pack_uint32(&a->pk, a->cur_id);
	msgpack_pack_str_with_body(&a->pk, "op", 2);
	msgpack_pack_str_with_body(&a->pk, op, strlen(op));
	pack_route(a, &a->pk);
	return &a->pk;
}

static int call(struct agent_conn *a, uint64_t deadline, bool soft, int *ret_errno, struct pv_err *err)
{
	int rc;
	if (a->dead)
		return pv_err_set(err, -EPIPE, SIZE_MAX, "%s", a->dead_why);
	if (a->out.len < 4 || a->out.len - 4 > FRAME_MAX_BODY)
		return pv_err_set(err, -EMSGSIZE, SIZE_MAX, "request larger than the 128 MiB frame limit");
	frame_put_len(a->out.data, (uint32_t)(a->out.len - 4));
	rc = pv_write_all(a->fd, a->out.data, a->out.len);
	if (rc < 0)
		return mark_dead(a, rc, err, "cannot send to the agent: %s", strerror(-rc));
	for (;;) {
		if ((rc = read_frame(a, deadline, soft, err)) < 0)
			return rc;
		if ((rc = agent_take_response(a, ret_errno, err)) != 1)
			return rc;
	}
}

/* A frame without an id in a->resp: a hello is counted, then either is
 * handed to on_push. */
static void note_unsolicited(struct agent_conn *a)
{
	int64_t v;
	if (ctl_get_int(&a->resp, "protocol_version", &v)) {
		a->hellos++;
		a->hello_version = v;
	}
	if (a->on_push)
		a->on_push(a->push_ctx, &a->resp);
}

/* agent_take_response for the answer to any of the ids [first, first + n). */
static int take_answer(struct agent_conn *a, uint32_t first, uint32_t n, uint32_t *ret_id, int *ret_errno,
		       struct pv_err *err)
{
	int64_t id;
	bool ok = false;
	if (ctl_parse_any(a->body.data, a->body.len, &a->resp, err) < 0)
		return mark_dead(a, -EPROTO, err, "%s", "the agent sent a malformed response");
	if (!ctl_get_int(&a->resp, "id", &id)) {
		/* a push frame, or a hello after the agent reconnected */
		note_unsolicited(a);
		return 1;
	}
	if ((uint32_t)id - first >= n)
		return 1; /* a late answer to a request we gave up on */
	*ret_id = (uint32_t)id;
	ctl_get_bool(&a->resp, "ok", &ok);
	if (ok)
		return 0;
	{
		int64_t e = 0;
		const uint8_t *msg;
		uint32_t len;
		ctl_get_int(&a->resp, "errno", &e);
		if (ret_errno)
			*ret_errno = (int)e;
		/* an empty text (or one starting with NUL) would be an empty error line */
		if (!ctl_get_raw(&a->resp, "error", &msg, &len) || len == 0 || msg[0] == 0) {
			msg = (const uint8_t *)"unknown error (the agent gave no message)";
			len = (uint32_t)strlen((const char *)msg);
		}
		return pv_err_set(err, -EREMOTEIO, SIZE_MAX, "%.*s", (int)(len > 400 ? 400 : len), msg);
	}
}

int agent_take_response(struct agent_conn *a, int *ret_errno, struct pv_err *err)
{
	uint32_t id;
	return take_answer(a, a->cur_id, 1, &id, ret_errno, err);
}

int agent_call(struct agent_conn *a, uint64_t deadline, int *ret_errno, struct pv_err *err)
{
	return call(a, deadline, false, ret_errno, err);
}

int agent_call_soft(struct agent_conn *a, uint64_t deadline, int *ret_errno, struct pv_err *err)
{
	return call(a, deadline, true, ret_errno, err);
}

int agent_pump(struct agent_conn *a, uint64_t deadline, struct pv_err *err)
{
	int64_t id;
	int rc;
	if (a->dead)
		return pv_err_set(err, -EPIPE, SIZE_MAX, "%s", a->dead_why);
	if ((rc = read_frame(a, deadline, true, err)) < 0)
		return rc;
	if (ctl_parse_any(a->body.data, a->body.len, &a->resp, err) < 0)
		return mark_dead(a, -EPROTO, err, "%s", "the agent sent a malformed frame");
	if (!ctl_get_int(&a->resp, "id", &id))
		note_unsolicited(a);
	return 0;
}

void agent_close(struct agent_conn *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	frame_dec_release(&a->dec);
	pv_buf_release(&a->out);
	pv_buf_release(&a->body);
}

static int frames_write(void *data, const char *p, size_t n)
{
	struct agent_frames *f = data;
	if (pv_buf_append(&f->buf, p, n) < 0) {
		f->oom = true;
		return -1;
	}
	return 0;
}

void agent_frames_init(struct agent_frames *f)
{
	memset(f, 0, sizeof(*f));
	f->open = SIZE_MAX;
	msgpack_packer_init(&f->pk, f, frames_write);
}

void agent_frames_release(struct agent_frames *f)
{
	pv_buf_release(&f->buf);
}

static void frame_close(struct agent_frames *f)
{
	if (f->open != SIZE_MAX && f->buf.len >= f->open + 4) {
		if (f->buf.len - f->open - 4 > FRAME_MAX_BODY)
			f->too_big = true;
		frame_put_len(f->buf.data + f->open, (uint32_t)(f->buf.len - f->open - 4));
	}
	f->open = SIZE_MAX;
}

msgpack_packer *agent_frame_begin(struct agent_conn *a, struct agent_frames *f, const char *op, unsigned nargs)
{
	static const uint8_t zero[4];
	frame_close(f);
	f->open = f->buf.len;
	frames_write(f, (const char *)zero, 4);
	uint32_t id = a->next_id++;
	if (f->n++ == 0)
		f->first_id = id;
	msgpack_pack_map(&f->pk, nargs + 2 + (a->route ? 1 : 0));
	msgpack_pack_str_with_body(&f->pk, "id", 2);
	msgpack_pack_uint32(&f->pk, id);
	msgpack_pack_str_with_body(&f->pk, "op", 2);
	msgpack_pack_str_with_body(&f->pk, op, strlen(op));
	pack_route(a, &f->pk);
	return &f->pk;
}

int agent_frames_send(struct agent_conn *a, struct agent_frames *f, struct pv_err *err)
{
	frame_close(f);
	if (a->dead)
		return pv_err_set(err, -EPIPE, SIZE_MAX, "%s", a->dead_why);
	if (f->oom)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory packing the requests");
	if (f->too_big)
		return pv_err_set(err, -EMSGSIZE, SIZE_MAX, "a request larger than the 128 MiB frame limit");
	/* answers are read (and kept in the decoder) while the requests go out:
	 * an agent whose output is full stops reading, and a host that only
	 * wrote would then wait for it forever */
	size_t off = 0;
	while (off < f->buf.len) {
		struct pollfd p[2] = { { .fd = a->fd, .events = POLLIN | POLLOUT }, { .fd = a->pidfd, .events = POLLIN } };
		if (poll(p, a->pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return mark_dead(a, -errno, err, "poll: %s", strerror(errno));
		}
		if (a->pidfd >= 0 && p[1].revents)
			return mark_dead(a, -ECHILD, err, "%s", "QEMU exited");
		if (p[0].revents & POLLIN) {
			ssize_t n = frame_dec_read_fd(&a->dec, a->fd);
			if (n == 0)
				return mark_dead(a, -EPIPE, err, "%s", "the agent connection closed (did QEMU exit?)");
			if (n < 0 && n != -EAGAIN && n != -EINTR)
				return mark_dead(a, (int)n, err, "agent read: %s", strerror((int)-n));
		}
		if (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
			ssize_t w = send(a->fd, f->buf.data + off, f->buf.len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EINTR)
				return mark_dead(a, -errno, err, "cannot send to the agent: %s", strerror(errno));
			off += w > 0 ? (size_t)w : 0;
		}
	}
	return 0;
}

int agent_next_answer(struct agent_conn *a, const struct agent_frames *f, uint64_t deadline, uint32_t *ret_id,
		      int *ret_errno, struct pv_err *err)
{
	int rc;
	if (a->dead)
		return pv_err_set(err, -EPIPE, SIZE_MAX, "%s", a->dead_why);
	for (;;) {
		if ((rc = read_frame(a, deadline, false, err)) < 0)
			return rc;
		if ((rc = take_answer(a, f->first_id, f->n, ret_id, ret_errno, err)) != 1)
			return rc;
	}
}

/* uplink.c - libslirp on a switch port (contract in uplink.h). */
#include "uplink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "switch.h" /* SW_FRAME_MAX */

#define MAX_FORWARDS 64
#define FORWARD_TRIES 32

struct utimer {
	struct uplink *u;
	ev_timer w;
	SlirpTimerId id;
	void *cb_opaque;
	SlirpTimerCb cb; /* timer_new; NULL for timer_new_opaque */
};

struct fwd {
	uint32_t guest_ip;
	uint16_t guest_port, host_port;
};

struct uplink {
	struct ev_loop *loop;
	char name[64];
	Slirp *slirp;
	bool unrestricted;
	uint32_t net;
	uint8_t prefix;
	int fd;
	ev_io fd_w;
	ev_prepare prep;
	ev_check check;
	ev_timer wake; /* slirp's poll timeout */
	/* slirp's sockets for this poll: filled in prepare, read back in check */
	struct upoll {
		ev_io w;
		int events; /* SLIRP_POLL_* asked */
	} *polls;
	int npolls, cap_polls;
	struct fwd fwd[MAX_FORWARDS];
	int nfwd;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- slirp's callbacks ---------------------------------------------------- */

static ssize_t cb_send(const void *buf, size_t len, void *opaque)
{
	struct uplink *u = opaque;
	/* the switch's end drains as it is readable; a full socket drops the
	 * frame, which slirp allows ("TCP will then handle retransmissions") */
	(void)send(u->fd, buf, len, MSG_DONTWAIT);
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)msg;
	(void)opaque;
}

static int64_t cb_clock(void *opaque)
{
	(void)opaque;
	return (int64_t)mono_ns();
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct utimer *t = (struct utimer *)((char *)w - offsetof(struct utimer, w));
	if (t->cb)
		t->cb(t->cb_opaque);
	else
		slirp_handle_timer(t->u->slirp, t->id, t->cb_opaque);
}

static struct utimer *timer_make(struct uplink *u)
{
	struct utimer *t = calloc(1, sizeof(*t));
	if (!t)
		abort(); /* slirp has no way to fail here */
	t->u = u;
	ev_init(&t->w, timer_fired);
	return t;
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct utimer *t = timer_make(opaque);
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	return t;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct utimer *t = timer_make(opaque);
	t->id = id;
	t->cb_opaque = cb_opaque;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct uplink *u = opaque;
	struct utimer *t = timer;
	ev_timer_stop(u->loop, &t->w);
	free(t);
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	struct uplink *u = opaque;
	struct utimer *t = timer;
	int64_t now_ms = (int64_t)(mono_ns() / 1000000u);
	ev_timer_stop(u->loop, &t->w);
	ev_timer_set(&t->w, expire_ms > now_ms ? (double)(expire_ms - now_ms) / 1e3 : 0., 0.);
	ev_timer_start(u->loop, &t->w);
}

static void cb_fd_noop(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void cb_notify(void *opaque)
{
	(void)opaque; /* single-threaded: the next prepare polls again anyway */
}

static const SlirpCb callbacks = {
	.send_packet = cb_send,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_fd_noop,
	.unregister_poll_fd = cb_fd_noop,
	.notify = cb_notify,
	.timer_new_opaque = cb_timer_new_opaque,
};

/* ---- the poll around each loop iteration ------------------------------------ */

static void poll_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents; /* read back in check with ev_clear_pending */
}

static int cb_add_poll(int fd, int events, void *opaque)
{
	struct uplink *u = opaque;
	if (u->npolls == u->cap_polls) {
		int cap = u->cap_polls ? 2 * u->cap_polls : 16;
		struct upoll *p = realloc(u->polls, (size_t)cap * sizeof(*p));
		if (!p)
			abort();
		u->polls = p;
		u->cap_polls = cap;
	}
	struct upoll *p = &u->polls[u->npolls];
	int ev = 0;
	if (events & (SLIRP_POLL_IN | SLIRP_POLL_PRI | SLIRP_POLL_HUP | SLIRP_POLL_ERR))
		ev |= EV_READ;
	if (events & SLIRP_POLL_OUT)
		ev |= EV_WRITE;
	p->events = events;
	ev_io_init(&p->w, poll_io, fd, ev ? ev : EV_READ);
	ev_io_start(u->loop, &p->w);
	return u->npolls++;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	struct uplink *u = (struct uplink *)((char *)w - offsetof(struct uplink, prep));
	uint32_t timeout = 1000;
	if (!u->slirp)
		return; /* uplink_unrestrict could not make the stack again */
	u->npolls = 0;
	slirp_pollfds_fill(u->slirp, &timeout, cb_add_poll, u);
	ev_timer_stop(loop, &u->wake);
	ev_timer_set(&u->wake, (double)timeout / 1e3, 0.);
	ev_timer_start(loop, &u->wake);
}

static int cb_get_revents(int idx, void *opaque)
{
	struct uplink *u = opaque;
	struct upoll *p = &u->polls[idx];
	int got = ev_clear_pending(u->loop, &p->w), out = 0;
	if (got & EV_READ)
		out |= p->events & (SLIRP_POLL_IN | SLIRP_POLL_PRI | SLIRP_POLL_HUP | SLIRP_POLL_ERR);
	if (got & EV_WRITE)
		out |= SLIRP_POLL_OUT;
	return out;
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)revents;
	struct uplink *u = (struct uplink *)((char *)w - offsetof(struct uplink, check));
	if (!u->slirp)
		return;
	slirp_pollfds_poll(u->slirp, 0, cb_get_revents, u);
	for (int i = 0; i < u->npolls; i++)
		ev_io_stop(loop, &u->polls[i].w);
	u->npolls = 0;
}

static void wake_noop(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* frames from the switch */
static void on_fd(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct uplink *u = (struct uplink *)((char *)w - offsetof(struct uplink, fd_w));
	static uint8_t buf[SW_FRAME_MAX]; /* the loop's thread only */
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(u->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		if (u->slirp) /* else dropped: no stack */
			slirp_input(u->slirp, buf, (int)n);
	}
}

/* ---- the stack ----------------------------------------------------------------- */

static struct in_addr in4(uint32_t host_order)
{
	struct in_addr a = { htonl(host_order) };
	return a;
}

uint32_t uplink_gateway(const struct uplink *u) { return u->net + 2; }
uint32_t uplink_dns(const struct uplink *u) { return u->net + 3; }
bool uplink_unrestricted(const struct uplink *u) { return u->unrestricted; }

void uplink_mac(const struct uplink *u, uint8_t mac[6])
{
	uint32_t gw = htonl(uplink_gateway(u));
	mac[0] = 0x52;
	mac[1] = 0x55;
	memcpy(mac + 2, &gw, 4);
}

static int stack_new(struct uplink *u, struct pv_err *err)
{
	SlirpConfig cfg = {
		.version = 4,
		.restricted = !u->unrestricted,
		.in_enabled = true,
		.vnetwork = in4(u->net),
		.vnetmask = in4(u->prefix ? ~0u << (32 - u->prefix) : 0),
		.vhost = in4(uplink_gateway(u)),
		.vdhcp_start = in4(u->net + 15),
		.vnameserver = in4(uplink_dns(u)),
		.disable_dhcp = true,
	};
	u->slirp = slirp_new(&cfg, &callbacks, u);
	if (!u->slirp)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "bridge '%s': cannot start the user-mode network stack", u->name);
	return 0;
}

static void stack_free(struct uplink *u)
{
	for (int i = 0; i < u->npolls; i++)
		ev_io_stop(u->loop, &u->polls[i].w);
	u->npolls = 0;
	if (u->slirp)
		slirp_cleanup(u->slirp); /* frees its timers through cb_timer_free */
	u->slirp = NULL;
}

struct uplink *uplink_new(struct ev_loop *loop, const char *name, uint32_t net, uint8_t prefix, int fd,
			  struct pv_err *err)
{
	struct uplink *u = calloc(1, sizeof(*u));
	if (!u) {
		close(fd);
		pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		return NULL;
	}
	u->loop = loop;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->net = net;
	u->prefix = prefix;
	u->fd = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (stack_new(u, err) < 0) {
		close(fd);
		free(u);
		return NULL;
	}
	ev_io_init(&u->fd_w, on_fd, fd, EV_READ);
	ev_io_start(loop, &u->fd_w);
	ev_prepare_init(&u->prep, on_prepare);
	ev_prepare_start(loop, &u->prep);
	ev_check_init(&u->check, on_check);
	ev_check_start(loop, &u->check);
	ev_init(&u->wake, wake_noop);
	return u;
}

void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	ev_prepare_stop(u->loop, &u->prep);
	ev_check_stop(u->loop, &u->check);
	ev_timer_stop(u->loop, &u->wake);
	ev_io_stop(u->loop, &u->fd_w);
	stack_free(u);
	close(u->fd);
	free(u->polls);
	free(u);
}

static int add_hostfwd(struct uplink *u, const struct fwd *f)
{
	return slirp_add_hostfwd(u->slirp, 0, in4(INADDR_LOOPBACK), f->host_port, in4(f->guest_ip), f->guest_port);
}

int uplink_unrestrict(struct uplink *u, struct pv_err *err)
{
	if (u->unrestricted)
		return 0;
	stack_free(u);
	u->unrestricted = true;
	int rc = stack_new(u, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < u->nfwd; i++)
		if (add_hostfwd(u, &u->fwd[i]) < 0)
			return pv_err_set(err, -EADDRINUSE, SIZE_MAX,
					  "bridge '%s': cannot listen on 127.0.0.1:%u again after enabling the uplink",
					  u->name, u->fwd[i].host_port);
	return 0;
}

/* A port free on 127.0.0.1 now (slirp binds it next; a race lost to another
 * process is retried by the caller). */
static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = in4(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (s < 0)
		return -errno;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0) {
		int e = errno;
		close(s);
		return -e;
	}
	close(s);
	return ntohs(a.sin_port);
}

int uplink_forward(struct uplink *u, uint32_t guest_ip, uint16_t guest_port, uint16_t *host_port,
		   struct pv_err *err)
{
	if (!u->slirp)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "bridge '%s': the user-mode network stack is gone", u->name);
	for (int i = 0; i < u->nfwd; i++)
		if (u->fwd[i].guest_ip == guest_ip && u->fwd[i].guest_port == guest_port) {
			*host_port = u->fwd[i].host_port;
			return 0;
		}
	if (u->nfwd == MAX_FORWARDS)
		return pv_err_set(err, -ENOSPC, SIZE_MAX, "bridge '%s': more than %d forwards", u->name, MAX_FORWARDS);
	for (int t = 0; t < FORWARD_TRIES; t++) {
		int p = free_port();
		if (p < 0)
			return pv_err_set(err, p, SIZE_MAX, "cannot find a free port on 127.0.0.1: %s", strerror(-p));
		struct fwd f = { guest_ip, guest_port, (uint16_t)p };
		if (add_hostfwd(u, &f) == 0) {
			u->fwd[u->nfwd++] = f;
			*host_port = f.host_port;
			return 0;
		}
	}
	return pv_err_set(err, -EADDRINUSE, SIZE_MAX, "cannot listen on a port of 127.0.0.1 (%d tries)", FORWARD_TRIES);
}

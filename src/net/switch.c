/* switch.c - the virtual Ethernet switch behind a bridge (contract in switch.h). */
#include "switch.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CAPTURES 16
#define BURST 64 /* frames read from one port per wakeup: fairness */

struct frame {
	uint64_t due;  /* mono ns: when it leaves the delay heap */
	uint64_t seq;  /* FIFO among equal due times */
	int to;        /* destination port */
	uint32_t len;
	uint8_t data[];
};

struct fq { /* a FIFO of frames */
	struct frame **v;
	size_t head, len, cap;
};

struct rule {
	bool set;
	struct sw_impair imp;
	uint64_t rng[4];       /* xoshiro256** state */
	uint64_t link_free_at; /* bandwidth: when the link is free again (mono ns) */
};

struct port {
	struct sw *sw;
	int id;
	bool used, detached, down, isolated;
	uint8_t mac[6];
	int fd;
	ev_io rd, wr;
	struct fq out; /* frames the socket could not take yet */
	struct sw_counters c;
};

struct capture {
	bool used;
	int port; /* SW_ANY: the bridge */
	pcap_t *p;
	pcap_dumper_t *d;
	uint64_t frames;
};

struct sw {
	struct ev_loop *loop;
	char name[64];
	uint64_t seed;
	struct port ports[SW_MAX_PORTS];
	bool cut[SW_MAX_PORTS][SW_MAX_PORTS];
	struct rule wide;                               /* (SW_ANY, SW_ANY) */
	struct rule *pair[SW_MAX_PORTS][SW_MAX_PORTS]; /* malloc'd on first use */
	struct frame **heap;                            /* delayed frames, min-heap by (due, seq) */
	size_t nheap, heap_cap;
	uint64_t seq;
	ev_timer timer;
	struct capture caps[MAX_CAPTURES];
	struct sw_counters total;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- PRNG: splitmix64 seeds xoshiro256** ------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(uint64_t *s)
{
	uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* uniform in [0, 1) */
static double unit(uint64_t *s) { return (double)(next(s) >> 11) * 0x1.0p-53; }

static void seed_rule(struct sw *sw, struct rule *r, int from, int to)
{
	uint64_t x = sw->seed ^ ((uint64_t)(uint32_t)from << 32) ^ (uint64_t)(uint32_t)to;
	for (int i = 0; i < 4; i++)
		r->rng[i] = splitmix(&x);
}

/* ---- frame queues and the delay heap ---------------------------------------- */

static struct frame *frame_new(const uint8_t *data, size_t len, int to)
{
	struct frame *f = malloc(sizeof(*f) + len);
	if (!f)
		return NULL;
	f->len = (uint32_t)len;
	f->to = to;
	memcpy(f->data, data, len);
	return f;
}

static bool fq_push(struct fq *q, struct frame *f)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct frame **v = malloc(cap * sizeof(*v));
		if (!v)
			return false;
		for (size_t i = 0; i < q->len; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->len++) % q->cap] = f;
	return true;
}

static struct frame *fq_pop(struct fq *q)
{
	struct frame *f;
	if (!q->len)
		return NULL;
	f = q->v[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	return f;
}

static void fq_free(struct fq *q)
{
	struct frame *f;
	while ((f = fq_pop(q)))
		free(f);
	free(q->v);
	memset(q, 0, sizeof(*q));
}

static bool before(const struct frame *a, const struct frame *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static bool heap_push(struct sw *sw, struct frame *f)
{
	size_t i;
	if (sw->nheap == sw->heap_cap) {
		size_t cap = sw->heap_cap ? sw->heap_cap * 2 : 64;
		struct frame **h = realloc(sw->heap, cap * sizeof(*h));
		if (!h)
			return false;
		sw->heap = h;
		sw->heap_cap = cap;
	}
	f->seq = sw->seq++;
	i = sw->nheap++;
	while (i > 0 && before(f, sw->heap[(i - 1) / 2])) {
		sw->heap[i] = sw->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	sw->heap[i] = f;
	return true;
}

static struct frame *heap_pop(struct sw *sw)
{
	struct frame *top = sw->heap[0], *last = sw->heap[--sw->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= sw->nheap)
			break;
		if (c + 1 < sw->nheap && before(sw->heap[c + 1], sw->heap[c]))
			c++;
		if (!before(sw->heap[c], last))
			break;
		sw->heap[i] = sw->heap[c];
		i = c;
	}
	if (sw->nheap)
		sw->heap[i] = last;
	return top;
}

static void arm_timer(struct sw *sw)
{
	ev_timer_stop(sw->loop, &sw->timer);
	if (!sw->nheap)
		return;
	uint64_t now = now_ns(), due = sw->heap[0]->due;
	ev_timer_set(&sw->timer, due > now ? (double)(due - now) / 1e9 : 0., 0.);
	ev_timer_start(sw->loop, &sw->timer);
}

/* ---- captures ---------------------------------------------------------------- */

/* The key of a bridge capture: every frame at ingress. */
#define AT_INGRESS (SW_ANY - 1)

/* Records the frame in every capture whose key is `key` (a port: its
 * ingress and deliveries; AT_INGRESS: the bridge's). */
static void capture_frame(struct sw *sw, int key, const uint8_t *data, size_t len)
{
	struct pcap_pkthdr h;
	bool stamped = false;
	for (int i = 0; i < MAX_CAPTURES; i++) {
		struct capture *c = &sw->caps[i];
		if (!c->used || c->port != key)
			continue;
		if (!stamped) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			h.ts.tv_sec = ts.tv_sec;
			h.ts.tv_usec = ts.tv_nsec / 1000;
			h.caplen = h.len = (bpf_u_int32)len;
			stamped = true;
		}
		pcap_dump((u_char *)c->d, &h, data);
		c->frames++;
	}
}

static void capture_ingress(struct sw *sw, int port, const uint8_t *data, size_t len)
{
	capture_frame(sw, AT_INGRESS, data, len);
	capture_frame(sw, port, data, len);
}

/* ---- delivery ---------------------------------------------------------------- */

static void drop(struct sw *sw, int to)
{
	sw->ports[to].c.drops++;
	sw->total.drops++;
}

static void port_write_cb(struct ev_loop *loop, ev_io *w, int revents);

/* The guest's socket took f: counted, and recorded by the port's captures. */
static void delivered(struct sw *sw, const struct frame *f)
{
	struct port *p = &sw->ports[f->to];
	p->c.rx_packets++;
	p->c.rx_bytes += f->len;
	sw->total.rx_packets++;
	sw->total.rx_bytes += f->len;
	capture_frame(sw, f->to, f->data, f->len);
}

static void deliver(struct sw *sw, struct frame *f)
{
	struct port *p = &sw->ports[f->to];
	if (!p->used || p->detached || p->down) {
		drop(sw, f->to);
		free(f);
		return;
	}
	if (!p->out.len) {
		ssize_t n = send(p->fd, f->data, f->len, MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)) {
			if (n >= 0)
				delivered(sw, f);
			else
				drop(sw, f->to); /* the peer is gone (QEMU quit): like a cable to nowhere */
			free(f);
			return;
		}
	}
	if (p->out.len >= SW_QUEUE_MAX || !fq_push(&p->out, f)) {
		drop(sw, f->to);
		free(f);
		return;
	}
	ev_io_start(sw->loop, &p->wr);
}

static void port_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct port *p = w->data;
	struct sw *sw = p->sw;
	(void)revents;
	while (p->out.len) {
		struct frame *f = p->out.v[p->out.head];
		ssize_t n = send(p->fd, f->data, f->len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
			return;
		fq_pop(&p->out);
		if (n >= 0)
			delivered(sw, f);
		else
			drop(sw, f->to);
		free(f);
	}
	ev_io_stop(loop, w);
}

/* One rule on a frame on its way: may drop it (NULL), change it, add a copy
 * (*dup) and push its due time. */
static struct frame *apply_rule(struct rule *r, struct frame *f, uint64_t *due, struct frame **dup)
{
	const struct sw_impair *im = &r->imp;
	if (im->drop_pct > 0 && unit(r->rng) * 100 < im->drop_pct) {
		free(f);
		return NULL;
	}
	if (im->corrupt_pct > 0 && unit(r->rng) * 100 < im->corrupt_pct && f->len) {
		uint64_t bit = next(r->rng) % ((uint64_t)f->len * 8);
		f->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	if (im->duplicate_pct > 0 && unit(r->rng) * 100 < im->duplicate_pct && !*dup)
		*dup = frame_new(f->data, f->len, f->to);
	if (im->bandwidth_bps) {
		/* serialization: the frame takes the link after those before it */
		uint64_t tx = (uint64_t)f->len * 8 * 1000000000ull / im->bandwidth_bps;
		uint64_t start = r->link_free_at > *due ? r->link_free_at : *due;
		if (tx && (start - *due) / tx >= SW_QUEUE_MAX) { /* that many frames' worth waiting: tail drop */
			free(f);
			return NULL;
		}
		r->link_free_at = start + tx;
		*due = start + tx;
	}
	if (im->latency_us || im->jitter_us) {
		int64_t d = (int64_t)im->latency_us * 1000;
		if (im->jitter_us)
			d += (int64_t)((unit(r->rng) * 2 - 1) * im->jitter_us * 1000);
		if (d > 0)
			*due += (uint64_t)d;
	}
	if (im->reorder_pct > 0 && unit(r->rng) * 100 < im->reorder_pct)
		*due += SW_REORDER_DELAY_US * 1000ull;
	return f;
}

static void schedule(struct sw *sw, struct frame *f, uint64_t due, uint64_t now)
{
	if (due <= now) {
		deliver(sw, f);
		return;
	}
	f->due = due;
	if (!heap_push(sw, f)) {
		drop(sw, f->to);
		free(f);
		return;
	}
	if (sw->heap[0] == f)
		arm_timer(sw);
}

static void forward_to(struct sw *sw, int from, int to, const uint8_t *data, size_t len, uint64_t now)
{
	struct port *d = &sw->ports[to];
	struct rule *pr = sw->pair[from][to];
	if (d->detached || d->down || sw->cut[from][to] || d->isolated || sw->ports[from].isolated) {
		drop(sw, to);
		return;
	}
	struct frame *f = frame_new(data, len, to), *dup = NULL;
	uint64_t due = now;
	if (!f) {
		drop(sw, to);
		return;
	}
	if (sw->wide.set && !(f = apply_rule(&sw->wide, f, &due, &dup))) {
		drop(sw, to);
		goto copy;
	}
	if (pr && pr->set && !(f = apply_rule(pr, f, &due, &dup))) {
		drop(sw, to);
		goto copy;
	}
	schedule(sw, f, due, now);
copy:
	if (dup)
		schedule(sw, dup, due, now);
}

static void on_frame(struct sw *sw, int from, const uint8_t *data, size_t len)
{
	struct port *p = &sw->ports[from];
	uint64_t now = now_ns();
	p->c.tx_packets++;
	p->c.tx_bytes += len;
	sw->total.tx_packets++;
	sw->total.tx_bytes += len;
	capture_ingress(sw, from, data, len);
	if (p->detached || p->down || len < 14)
		return; /* a frame from a NIC that is not connected goes nowhere */
	/* learn: the source MAC is this port's */
	if (!(data[6] & 1))
		memcpy(p->mac, data + 6, 6);
	if (!(data[0] & 1)) {
		for (int i = 0; i < SW_MAX_PORTS; i++)
			if (i != from && sw->ports[i].used && memcmp(sw->ports[i].mac, data, 6) == 0) {
				forward_to(sw, from, i, data, len, now);
				return;
			}
	}
	for (int i = 0; i < SW_MAX_PORTS; i++) /* broadcast, multicast, unknown */
		if (i != from && sw->ports[i].used)
			forward_to(sw, from, i, data, len, now);
}

static void port_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static uint8_t buf[SW_FRAME_MAX];
	struct port *p = w->data;
	(void)revents;
	for (int i = 0; i < BURST; i++) {
		ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				ev_io_stop(loop, w); /* the peer is gone */
			return;
		}
		if (n == 0) {
			ev_io_stop(loop, w);
			return;
		}
		on_frame(p->sw, p->id, buf, (size_t)n);
	}
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sw *sw = w->data;
	uint64_t now = now_ns();
	(void)loop;
	(void)revents;
	while (sw->nheap && sw->heap[0]->due <= now) {
		struct frame *f = heap_pop(sw);
		deliver(sw, f);
	}
	arm_timer(sw);
}

/* ---- the API ------------------------------------------------------------------ */

struct sw *sw_new(struct ev_loop *loop, const char *name, uint64_t seed)
{
	struct sw *sw = calloc(1, sizeof(*sw));
	if (!sw)
		return NULL;
	sw->loop = loop;
	snprintf(sw->name, sizeof(sw->name), "%s", name);
	sw->seed = seed;
	ev_init(&sw->timer, timer_cb);
	sw->timer.data = sw;
	for (int i = 0; i < SW_MAX_PORTS; i++)
		sw->ports[i].fd = -1;
	return sw;
}

void sw_port_remove(struct sw *sw, int id)
{
	struct port *p;
	if (id < 0 || id >= SW_MAX_PORTS || !sw->ports[id].used)
		return;
	p = &sw->ports[id];
	ev_io_stop(sw->loop, &p->rd);
	ev_io_stop(sw->loop, &p->wr);
	fq_free(&p->out);
	close(p->fd);
	p->fd = -1;
	p->used = false;
}

void sw_free(struct sw *sw)
{
	if (!sw)
		return;
	for (int i = 0; i < MAX_CAPTURES; i++)
		if (sw->caps[i].used)
			sw_capture_stop(sw, i);
	for (int i = 0; i < SW_MAX_PORTS; i++) {
		sw_port_remove(sw, i);
		for (int j = 0; j < SW_MAX_PORTS; j++)
			free(sw->pair[i][j]);
	}
	ev_timer_stop(sw->loop, &sw->timer);
	while (sw->nheap)
		free(heap_pop(sw));
	free(sw->heap);
	free(sw);
}

int sw_port_add(struct sw *sw, int id, const uint8_t mac[6], int fd, struct pv_err *err)
{
	struct port *p;
	if (id < 0 || id >= SW_MAX_PORTS || sw->ports[id].used) {
		close(fd);
		return pv_err_set(err, -EINVAL, SIZE_MAX, "switch %s: port %d is %s", sw->name, id,
				  id < 0 || id >= SW_MAX_PORTS ? "out of range" : "in use");
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return pv_err_set(err, -e, SIZE_MAX, "switch %s: port %d: %s", sw->name, id, strerror(e));
	}
	p = &sw->ports[id];
	bool isolated = p->isolated;
	struct sw_counters c = p->c;
	memset(p, 0, sizeof(*p));
	p->sw = sw;
	p->id = id;
	p->used = true;
	p->isolated = isolated; /* a VM's new QEMU keeps its port's state */
	p->c = c;
	memcpy(p->mac, mac, 6);
	p->fd = fd;
	ev_io_init(&p->rd, port_read_cb, fd, EV_READ);
	ev_io_init(&p->wr, port_write_cb, fd, EV_WRITE);
	p->rd.data = p->wr.data = p;
	ev_io_start(sw->loop, &p->rd);
	return 0;
}

void sw_port_detach(struct sw *sw, int id)
{
	if (id >= 0 && id < SW_MAX_PORTS)
		sw->ports[id].detached = true;
}

void sw_port_set_link(struct sw *sw, int id, bool up)
{
	if (id >= 0 && id < SW_MAX_PORTS)
		sw->ports[id].down = !up;
}

int sw_port_counters(struct sw *sw, int id, struct sw_counters *out)
{
	if (id < 0 || id >= SW_MAX_PORTS || (!sw->ports[id].used && !sw->ports[id].c.tx_packets))
		return -ENOENT;
	*out = sw->ports[id].c;
	return 0;
}

void sw_counters(struct sw *sw, struct sw_counters *out) { *out = sw->total; }

void sw_cut(struct sw *sw, int from, int to, bool cut)
{
	for (int i = 0; i < SW_MAX_PORTS; i++)
		for (int j = 0; j < SW_MAX_PORTS; j++)
			if ((from == SW_ANY || from == i) && (to == SW_ANY || to == j) && i != j)
				sw->cut[i][j] = cut;
}

bool sw_is_cut(struct sw *sw, int from, int to)
{
	if (from < 0 || to < 0 || from >= SW_MAX_PORTS || to >= SW_MAX_PORTS)
		return false;
	return sw->cut[from][to] || sw->ports[from].isolated || sw->ports[to].isolated;
}

void sw_isolate(struct sw *sw, int id, bool isolated)
{
	if (id >= 0 && id < SW_MAX_PORTS)
		sw->ports[id].isolated = isolated;
}

bool sw_is_isolated(struct sw *sw, int id) { return id >= 0 && id < SW_MAX_PORTS && sw->ports[id].isolated; }

void sw_heal_all(struct sw *sw)
{
	memset(sw->cut, 0, sizeof(sw->cut));
	for (int i = 0; i < SW_MAX_PORTS; i++)
		sw->ports[i].isolated = false;
}

static struct rule **rule_slot(struct sw *sw, int from, int to)
{
	if (from < 0 || to < 0 || from >= SW_MAX_PORTS || to >= SW_MAX_PORTS)
		return NULL;
	return &sw->pair[from][to];
}

static bool is_zero(const struct sw_impair *r)
{
	static const struct sw_impair zero;
	return memcmp(r, &zero, sizeof(zero)) == 0;
}

void sw_set_impair(struct sw *sw, int from, int to, const struct sw_impair *imp)
{
	struct rule *r;
	if (from == SW_ANY && to == SW_ANY)
		r = &sw->wide;
	else {
		struct rule **slot = rule_slot(sw, from, to);
		if (!slot)
			return;
		if (!*slot && !(*slot = calloc(1, sizeof(**slot))))
			return;
		r = *slot;
	}
	r->imp = *imp;
	r->set = !is_zero(imp);
	r->link_free_at = 0;
	seed_rule(sw, r, from, to);
}

void sw_get_impair(struct sw *sw, int from, int to, struct sw_impair *out)
{
	memset(out, 0, sizeof(*out));
	if (from == SW_ANY && to == SW_ANY)
		*out = sw->wide.imp;
	else {
		struct rule **slot = rule_slot(sw, from, to);
		if (slot && *slot)
			*out = (*slot)->imp;
	}
}

void sw_reset_impair(struct sw *sw)
{
	static const struct sw_impair zero;
	sw_set_impair(sw, SW_ANY, SW_ANY, &zero);
	for (int i = 0; i < SW_MAX_PORTS; i++)
		for (int j = 0; j < SW_MAX_PORTS; j++) {
			free(sw->pair[i][j]);
			sw->pair[i][j] = NULL;
		}
}

/* The saved rules: a header, then one record per impairment rule between
 * two ports (most pairs have none, so a blob is a few KiB). */
#define SAVED_MAGIC 0x70767377u /* "pvsw" */
struct saved {
	uint32_t magic, npairs;
	bool cut[SW_MAX_PORTS][SW_MAX_PORTS];
	bool isolated[SW_MAX_PORTS];
	struct sw_impair wide;
};
struct saved_pair {
	uint8_t from, to;
	struct sw_impair imp;
};

void *sw_state_save(struct sw *sw, size_t *len)
{
	uint32_t n = 0;
	for (int i = 0; i < SW_MAX_PORTS; i++)
		for (int j = 0; j < SW_MAX_PORTS; j++)
			n += sw->pair[i][j] != NULL;
	struct saved *st = calloc(1, sizeof(*st) + n * sizeof(struct saved_pair));
	if (!st)
		return NULL;
	st->magic = SAVED_MAGIC;
	st->npairs = n;
	memcpy(st->cut, sw->cut, sizeof(st->cut));
	struct saved_pair *p = (struct saved_pair *)(st + 1);
	for (int i = 0; i < SW_MAX_PORTS; i++) {
		st->isolated[i] = sw->ports[i].isolated;
		for (int j = 0; j < SW_MAX_PORTS; j++)
			if (sw->pair[i][j])
				*p++ = (struct saved_pair){ (uint8_t)i, (uint8_t)j, sw->pair[i][j]->imp };
	}
	st->wide = sw->wide.imp;
	*len = sizeof(*st) + n * sizeof(struct saved_pair);
	return st;
}

int sw_state_load(struct sw *sw, const void *blob, size_t len)
{
	struct saved st;
	if (len < sizeof(st))
		return -EINVAL;
	memcpy(&st, blob, sizeof(st)); /* the blob may come unaligned from a file */
	if (st.magic != SAVED_MAGIC || st.npairs > SW_MAX_PORTS * SW_MAX_PORTS ||
	    len != sizeof(st) + st.npairs * sizeof(struct saved_pair))
		return -EINVAL;
	const uint8_t *rec = (const uint8_t *)blob + sizeof(st);
	for (uint32_t k = 0; k < st.npairs; k++) {
		struct saved_pair p;
		memcpy(&p, rec + k * sizeof(p), sizeof(p));
		if (p.from >= SW_MAX_PORTS || p.to >= SW_MAX_PORTS)
			return -EINVAL;
	}
	memcpy(sw->cut, st.cut, sizeof(sw->cut));
	sw_reset_impair(sw);
	sw_set_impair(sw, SW_ANY, SW_ANY, &st.wide);
	for (int i = 0; i < SW_MAX_PORTS; i++)
		sw->ports[i].isolated = st.isolated[i];
	for (uint32_t k = 0; k < st.npairs; k++) {
		struct saved_pair p;
		memcpy(&p, rec + k * sizeof(p), sizeof(p));
		sw_set_impair(sw, p.from, p.to, &p.imp);
	}
	return 0;
}

int sw_capture_start(struct sw *sw, int port, const char *path, struct pv_err *err)
{
	for (int i = 0; i < MAX_CAPTURES; i++) {
		struct capture *c = &sw->caps[i];
		if (c->used)
			continue;
		c->p = pcap_open_dead(DLT_EN10MB, SW_FRAME_MAX);
		if (!c->p)
			return pv_err_set(err, -ENOMEM, SIZE_MAX, "capture: out of memory");
		c->d = pcap_dump_open(c->p, path);
		if (!c->d) {
			int rc = pv_err_set(err, -EIO, SIZE_MAX, "capture: cannot write %s: %s", path, pcap_geterr(c->p));
			pcap_close(c->p);
			return rc;
		}
		c->used = true;
		c->port = port == SW_ANY ? AT_INGRESS : port;
		c->frames = 0;
		return i;
	}
	return pv_err_set(err, -EMFILE, SIZE_MAX, "switch %s: at most %d captures at once", sw->name, MAX_CAPTURES);
}

uint64_t sw_capture_stop(struct sw *sw, int cap)
{
	struct capture *c;
	if (cap < 0 || cap >= MAX_CAPTURES || !sw->caps[cap].used)
		return 0;
	c = &sw->caps[cap];
	pcap_dump_close(c->d);
	pcap_close(c->p);
	c->used = false;
	return c->frames;
}

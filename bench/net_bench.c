/* Networking benchmark: provium's virtual switch (src/net/switch.h) between
 * QEMU VMs of the built-in image (128 MiB, 1 cpu, TCG), in one run.
 *
 *   1. direct vs switched: VMs A and B each get two NICs. eth0 of A and eth0
 *      of B are the two ends of one AF_UNIX SOCK_DGRAM socketpair (no switch,
 *      10.77.1.0/24); eth1 of each is on its own socketpair whose other end
 *      is a switch port (10.77.2.0/24). Same VMs, same guests, only the path
 *      differs. TCP throughput: `nc -l -p 5000 >/dev/null` spawned on B, then
 *      `dd if=/dev/zero bs=64k count=N | nc B 5000` on A, timed on the host
 *      around the exec (it ends once B's nc has read everything and closed;
 *      N is calibrated so a direct transfer takes about 3 s). RTT:
 *      `ping -c 20 -i 0.2`. ROUNDS runs, direct and switched alternating
 *      which goes first; throughput: the median of the runs; RTT: the median
 *      of every ping's RTT (the median of the runs' avg is printed too: an
 *      avg carries the host's scheduling hiccups). Prints switched/direct
 *      ratios (targets: throughput >= 0.80x, rtt <= 1.20x).
 *   2. impairments (switched path): bridge-wide latency 50 ms (added RTT:
 *      median of 60 pings against the unimpaired median: 100 ms +- 5), drop
 *      20% on A->B only (a ping is lost when its request or its reply is, so
 *      one direction: loss of 1000 pings 17-23%), bandwidth 2 Mbit/s on A->B
 *      (TCP goodput within +-10%; the switch counts whole Ethernet frames, so
 *      goodput is about 1448/1514 of the rate). Each line: measured, target,
 *      deviation, PASS/MISS; the switch's own counters are printed next to
 *      them.
 *   3. eight VMs on one switch: boot wall time (all at once), then every one
 *      of the 56 ordered pairs pings once (`ping -c 1 -W 5`, one after the
 *      other): successes and the sweep's wall time.
 *
 * The switch runs on a libev loop of its own thread; every sw_* call is
 * handed to that thread (sw_run: an ev_async, the caller waits on a condvar).
 * VMs boot on threads that stay alive until the VM is shut down (QEMU gets
 * PR_SET_PDEATHSIG, which follows the thread that forked it).
 *
 * Exit status 0 when everything ran (a missed target is reported as MISS and
 * still exits 0), 1 when something could not run (image, boot, guest
 * command, switch). Usage: net_bench (needs the built-in image:
 * scripts/build-image). Takes several minutes on 2 cores under TCG. */
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "switch.h"
#include "vm.h"

#define MEM_BYTES (128ull << 20)
#define ROUNDS 5
#define IMPAIR_ROUNDS 3
#define NVMS 8
#define PORT_A 0
#define PORT_B 1

static char kernel[4096], initrd[4096];

/* ---- VMs ---------------------------------------------------------------------- */

struct gvm {
	struct vm vm;
	char name[16];
	bool live;
};

/* every booted VM, for the cleanup of a fatal error */
static struct gvm *live_vms[16];
static int nlive;

static void cleanup_vms(void)
{
	for (int i = 0; i < nlive; i++)
		if (live_vms[i]->live) {
			vm_shutdown(&live_vms[i]->vm);
			vm_remove_dir(&live_vms[i]->vm);
			live_vms[i]->live = false;
		}
	nlive = 0;
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "net_bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	cleanup_vms();
	exit(1);
}

/* A boot thread: vm_boot, then it waits until released (after the VM's
 * shutdown), so QEMU's parent-death signal does not fire early. */
struct boot_group;
struct boot_slot {
	struct boot_group *grp;
	struct gvm *g;
	struct vm_nic nics[2];
	unsigned nnics;
	int rc;
	struct pv_err err;
	pthread_t th;
};

struct boot_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n, done;
	bool release;
	struct boot_slot slot[NVMS];
};

static void *boot_main(void *arg)
{
	struct boot_slot *s = arg;
	struct vm_spec spec = { kernel, initrd, NULL, MEM_BYTES, 1, false, 180000000000ull, NULL, NULL, false,
				s->nics, s->nnics, NULL, NULL, 0, 0, false, NULL, 0, NULL };
	s->rc = vm_boot(&s->g->vm, &spec, &s->err);
	pthread_mutex_lock(&s->grp->mu);
	s->grp->done++;
	pthread_cond_broadcast(&s->grp->cv);
	while (!s->grp->release)
		pthread_cond_wait(&s->grp->cv, &s->grp->mu);
	pthread_mutex_unlock(&s->grp->mu);
	return NULL;
}

/* Boots the group's n slots at once; returns the wall time until the last
 * one's agent answered. The NIC fds are the caller's (closed after). */
static uint64_t boot_all(struct boot_group *grp)
{
	uint64_t t0 = pv_mono_ns();
	pthread_mutex_init(&grp->mu, NULL);
	pthread_cond_init(&grp->cv, NULL);
	grp->done = 0;
	grp->release = false;
	for (int i = 0; i < grp->n; i++) {
		grp->slot[i].grp = grp;
		if (pthread_create(&grp->slot[i].th, NULL, boot_main, &grp->slot[i]) != 0)
			die("cannot start a boot thread");
	}
	pthread_mutex_lock(&grp->mu);
	while (grp->done < grp->n)
		pthread_cond_wait(&grp->cv, &grp->mu);
	pthread_mutex_unlock(&grp->mu);
	uint64_t t = pv_mono_ns() - t0;
	for (int i = 0; i < grp->n; i++) {
		struct boot_slot *s = &grp->slot[i];
		if (s->rc == 0) {
			s->g->live = true;
			live_vms[nlive++] = s->g;
		}
	}
	for (int i = 0; i < grp->n; i++)
		if (grp->slot[i].rc < 0)
			die("VM %s did not boot: %s", grp->slot[i].g->name, grp->slot[i].err.msg);
	return t;
}

/* Shuts the group's VMs down, then lets their boot threads end. */
static void shutdown_all(struct boot_group *grp)
{
	for (int i = 0; i < grp->n; i++) {
		struct gvm *g = grp->slot[i].g;
		if (g->live) {
			vm_shutdown(&g->vm);
			vm_remove_dir(&g->vm);
			g->live = false;
		}
	}
	pthread_mutex_lock(&grp->mu);
	grp->release = true;
	pthread_cond_broadcast(&grp->cv);
	pthread_mutex_unlock(&grp->mu);
	for (int i = 0; i < grp->n; i++)
		pthread_join(grp->slot[i].th, NULL);
	nlive = 0;
	for (int i = 0; i < 16 && live_vms[i]; i++)
		live_vms[i] = NULL;
}

/* ---- guest commands ----------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void take_output(struct gvm *g, char *out, size_t outlen)
{
	const uint8_t *p;
	uint32_t n;
	if (!out)
		return;
	out[0] = 0;
	if (!ctl_get_raw(&g->vm.agent.resp, "stdout", &p, &n))
		return;
	if (n >= outlen) { /* keep the end: ping's summary is there */
		p += n - (outlen - 1);
		n = (uint32_t)(outlen - 1);
	}
	memcpy(out, p, n);
	out[n] = 0;
}

/* The exit code in the agent's last answer (exec or wait); -1 when the
 * process was killed or timed out. */
static int exit_code(struct gvm *g)
{
	int64_t code = -1;
	char *status = ctl_get_strdup(&g->vm.agent.resp, "status");
	bool exited = status && !strcmp(status, "exited");
	free(status);
	if (!exited || !ctl_get_int(&g->vm.agent.resp, "exit_code", &code))
		return -1;
	return (int)code;
}

/* Runs cmd (sh -c) in the guest, bounded by timeout_ms there. Returns its exit
 * code, or -1 if it was killed or timed out; stdout (its tail) in out. A
 * failed op or a lost VM is fatal. */
static int gexec(struct gvm *g, const char *cmd, unsigned timeout_ms, char *out, size_t outlen)
{
	struct pv_err err;
	msgpack_packer *pk = agent_begin(&g->vm.agent, "exec", 2);
	pack_str(pk, "cmd");
	pack_str(pk, cmd);
	pack_str(pk, "timeout_ms");
	msgpack_pack_uint64(pk, timeout_ms);
	if (agent_call(&g->vm.agent, pv_mono_ns() + (timeout_ms + 30000ull) * 1000000ull, NULL, &err) < 0)
		die("VM %s: exec '%s': %s", g->name, cmd, err.msg);
	take_output(g, out, outlen);
	return exit_code(g);
}

/* As gexec, and a non-zero exit is fatal too (stderr in the message). */
static void gexec_ok(struct gvm *g, const char *cmd, unsigned timeout_ms)
{
	int rc = gexec(g, cmd, timeout_ms, NULL, 0);
	if (rc != 0) {
		const uint8_t *p = NULL;
		uint32_t n = 0;
		ctl_get_raw(&g->vm.agent.resp, "stderr", &p, &n);
		die("VM %s: '%s' failed (exit %d): %.*s", g->name, cmd, rc, (int)n, p ? (const char *)p : "");
	}
}

/* Starts cmd in the background (the agent's spawn: its stdin stays open,
 * which busybox nc needs: at stdin's EOF it shuts the connection's write side
 * and the peer's nc would stop). Returns the agent's process handle. */
static uint32_t gspawn(struct gvm *g, const char *cmd)
{
	struct pv_err err;
	int64_t h;
	msgpack_packer *pk = agent_begin(&g->vm.agent, "spawn", 1);
	pack_str(pk, "cmd");
	pack_str(pk, cmd);
	if (agent_call(&g->vm.agent, pv_mono_ns() + 30000000000ull, NULL, &err) < 0)
		die("VM %s: spawn '%s': %s", g->name, cmd, err.msg);
	if (!ctl_get_int(&g->vm.agent.resp, "proc", &h))
		die("VM %s: spawn '%s': no process handle in the answer", g->name, cmd);
	return (uint32_t)h;
}

/* Waits for a spawned process; its exit code, -1 when killed. */
static int gwait(struct gvm *g, uint32_t proc, unsigned timeout_ms)
{
	struct pv_err err;
	msgpack_packer *pk = agent_begin(&g->vm.agent, "wait", 2);
	pack_str(pk, "proc");
	msgpack_pack_uint32(pk, proc);
	pack_str(pk, "timeout_ms");
	msgpack_pack_uint64(pk, timeout_ms);
	if (agent_call(&g->vm.agent, pv_mono_ns() + (timeout_ms + 30000ull) * 1000000ull, NULL, &err) < 0)
		die("VM %s: wait for process %u: %s", g->name, proc, err.msg);
	return exit_code(g);
}

static void fmt_mac(const uint8_t *m, char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

struct addr {
	char ip[16];
	uint8_t mac[6];
};

/* Configures NIC eth<k> of a guest: checks it is the NIC with the MAC we
 * gave (vm.c: eth<k> is NIC k), its address, link up, and permanent
 * neighbour entries for the peers (no ARP on the wire). IPv6 is off so the
 * only frames are the bench's. */
static void guest_nic(struct gvm *g, unsigned k, const struct addr *me, const struct addr *peers, int npeers)
{
	char cmd[4096], mac[18];
	size_t n = 0;
	fmt_mac(me->mac, mac);
	n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
			      "set -e; d=eth%u; [ \"$(cat /sys/class/net/$d/address)\" = %s ] || "
			      "{ echo \"$d is not the NIC with MAC %s\" >&2; exit 3; }; "
			      "echo 1 > /proc/sys/net/ipv6/conf/$d/disable_ipv6 2>/dev/null || true; "
			      "ip addr add %s/24 dev $d; ip link set $d up; ip link set lo up; ",
			      k, mac, mac, me->ip);
	for (int i = 0; i < npeers; i++) {
		fmt_mac(peers[i].mac, mac);
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n,
				      "ip neigh replace %s lladdr %s nud permanent dev $d 2>/dev/null || "
				      "arp -i $d -s %s %s; ",
				      peers[i].ip, mac, peers[i].ip, mac);
	}
	if (n >= sizeof(cmd))
		die("guest setup command too long");
	gexec_ok(g, cmd, 30000);
}

/* ---- the switch thread ----------------------------------------------------------- */

static struct {
	struct ev_loop *loop;
	ev_async wake;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(void *);
	void *arg;
	bool done, quit;
	struct sw *sw;
} st = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)w;
	(void)revents;
	pthread_mutex_lock(&st.mu);
	if (st.fn) {
		st.fn(st.arg);
		st.fn = NULL;
		st.done = true;
		pthread_cond_broadcast(&st.cv);
	}
	if (st.quit)
		ev_break(loop, EVBREAK_ALL);
	pthread_mutex_unlock(&st.mu);
}

static void *switch_main(void *arg)
{
	(void)arg;
	ev_run(st.loop, 0);
	return NULL;
}

/* Runs fn(arg) on the switch thread and waits for it. */
static void sw_run(void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&st.mu);
	st.fn = fn;
	st.arg = arg;
	st.done = false;
	ev_async_send(st.loop, &st.wake);
	while (!st.done)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);
}

static void switch_thread_start(void)
{
	if (!(st.loop = ev_loop_new(EVFLAG_AUTO)))
		die("cannot create an event loop for the switch");
	ev_async_init(&st.wake, on_wake);
	ev_async_start(st.loop, &st.wake);
	if (pthread_create(&st.th, NULL, switch_main, NULL) != 0)
		die("cannot start the switch thread");
}

static void switch_thread_stop(void)
{
	pthread_mutex_lock(&st.mu);
	st.quit = true;
	ev_async_send(st.loop, &st.wake);
	pthread_mutex_unlock(&st.mu);
	pthread_join(st.th, NULL);
	ev_loop_destroy(st.loop);
}

static void do_new(void *arg)
{
	st.sw = sw_new(st.loop, arg, 1);
}

static void do_free(void *arg)
{
	(void)arg;
	sw_free(st.sw);
	st.sw = NULL;
}

struct port_args {
	int id, fd, rc;
	const uint8_t *mac;
	struct pv_err err;
};

static void do_port_add(void *arg)
{
	struct port_args *a = arg;
	a->rc = sw_port_add(st.sw, a->id, a->mac, a->fd, &a->err);
}

struct impair_args {
	int from, to;
	struct sw_impair rule;
};

static void do_impair(void *arg)
{
	struct impair_args *a = arg;
	sw_set_impair(st.sw, a->from, a->to, &a->rule);
}

static void do_reset_impair(void *arg)
{
	(void)arg;
	sw_reset_impair(st.sw);
}

struct counter_args {
	int id, rc;
	struct sw_counters c;
};

static void do_counters(void *arg)
{
	struct counter_args *a = arg;
	a->rc = sw_port_counters(st.sw, a->id, &a->c);
}

static void switch_new(const char *name)
{
	sw_run(do_new, (void *)name);
	if (!st.sw)
		die("sw_new: out of memory");
}

/* A socketpair: one end becomes switch port id, the other is returned for
 * the VM's NIC. */
static int switch_port(int id, const uint8_t mac[6])
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair: %s", strerror(errno));
	struct port_args a = { .id = id, .fd = sv[0], .mac = mac };
	sw_run(do_port_add, &a);
	if (a.rc < 0)
		die("sw_port_add %d: %s", id, a.err.msg);
	return sv[1];
}

static void set_impair(int from, int to, struct sw_impair rule)
{
	struct impair_args a = { from, to, rule };
	sw_run(do_impair, &a);
}

static struct sw_counters counters(int id)
{
	struct counter_args a = { .id = id };
	sw_run(do_counters, &a);
	if (a.rc < 0)
		die("sw_port_counters %d: %s", id, strerror(-a.rc));
	return a.c;
}

/* ---- measurements ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double dmedian(const double *v, int n)
{
	double s[128];
	if (n < 1 || n > 128)
		die("median of %d values", n);
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct ping_res {
	int tx, rx;
	double avg_ms;
	double t[64]; /* per-ping RTTs (ms) when not quiet */
	int nt;
};

/* ping from g to ip (quiet: the summary only, else also each reply's time,
 * up to 64); fatal if no summary comes back. */
static struct ping_res gping(struct gvm *g, const char *ip, int count, const char *interval, int wait_s, bool quiet)
{
	char cmd[256], out[8192];
	struct ping_res r = { .avg_ms = NAN };
	snprintf(cmd, sizeof(cmd), "ping%s -c %d -i %s -W %d %s", quiet ? " -q" : "", count, interval, wait_s, ip);
	unsigned limit = (unsigned)(count * atof(interval) * 1000 * 3) + (unsigned)wait_s * 1000 + 30000;
	gexec(g, cmd, limit, out, sizeof(out));
	char *p = strstr(out, " packets transmitted");
	if (!p)
		die("VM %s: '%s' printed no statistics: %s", g->name, cmd, out);
	while (p > out && p[-1] != '\n')
		p--;
	if (sscanf(p, "%d packets transmitted, %d packets received", &r.tx, &r.rx) != 2 || r.tx <= 0)
		die("VM %s: cannot parse ping's statistics: %s", g->name, p);
	if ((p = strstr(out, "min/avg/max = ")))
		sscanf(p + 14, "%*f/%lf", &r.avg_ms);
	for (p = out; r.nt < 64 && (p = strstr(p, " time=")); p += 6)
		if (sscanf(p + 6, "%lf", &r.t[r.nt]) == 1)
			r.nt++;
	return r;
}

/* 20 pings 0.2 s apart, none may be lost: their avg RTT (ms); each ping's
 * RTT appended to samples[*ns] if samples. */
static double rtt_ms(struct gvm *from, const char *ip, double *samples, int *ns)
{
	struct ping_res r = gping(from, ip, 20, "0.2", 2, !samples);
	if (r.rx != r.tx || isnan(r.avg_ms))
		die("VM %s: %d of %d pings to %s were lost (no packet should be)", from->name, r.tx - r.rx, r.tx, ip);
	for (int i = 0; samples && i < r.nt; i++)
		samples[(*ns)++] = r.t[i];
	return r.avg_ms;
}

/* One TCP transfer of count*64 KiB from a to b (at ip); seconds. */
static double transfer_s(struct gvm *a, struct gvm *b, const char *ip, int count)
{
	char cmd[256];
	uint32_t proc = gspawn(b, "nc -l -p 5000 >/dev/null");
	/* the listener is up before the sender connects */
	gexec_ok(b, "i=0; until netstat -ltn | grep -q ':5000 '; do i=$((i+1)); [ $i -lt 200 ] || exit 1; "
		    "sleep 0.05; done", 30000);
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc %s 5000", count, ip);
	uint64_t t0 = pv_mono_ns();
	int rc = gexec(a, cmd, 600000, NULL, 0);
	double s = (double)(pv_mono_ns() - t0) / 1e9;
	if (rc != 0)
		die("VM %s: '%s' failed (exit %d)", a->name, cmd, rc);
	rc = gwait(b, proc, 30000);
	if (rc != 0)
		die("VM %s: the listener 'nc -l -p 5000' ended with %d", b->name, rc);
	return s;
}

static const char *verdict(bool ok)
{
	return ok ? "PASS" : "MISS";
}

int main(void)
{
	struct pv_err err;
	static struct gvm gv[NVMS];
	static struct boot_group pair, eight;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (vm_builtin_image(kernel, initrd, &err) < 0)
		die("%s", err.msg);
	switch_thread_start();

	/* ---- 1. direct vs switched -------------------------------------------------- */
	struct gvm *A = &gv[0], *B = &gv[1];
	struct addr d[2] = { { "10.77.1.11", { 0x52, 0x54, 0x00, 0x77, 0x01, 0x01 } },
			     { "10.77.1.12", { 0x52, 0x54, 0x00, 0x77, 0x01, 0x02 } } };
	struct addr s[2] = { { "10.77.2.11", { 0x52, 0x54, 0x00, 0x77, 0x02, 0x01 } },
			     { "10.77.2.12", { 0x52, 0x54, 0x00, 0x77, 0x02, 0x02 } } };
	int sv[2];
	strcpy(A->name, "A");
	strcpy(B->name, "B");
	switch_new("bench");
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair: %s", strerror(errno));
	pair.n = 2;
	for (int i = 0; i < 2; i++) {
		struct boot_slot *sl = &pair.slot[i];
		sl->g = &gv[i];
		sl->nnics = 2;
		sl->nics[0].fd = sv[i];
		memcpy(sl->nics[0].mac, d[i].mac, 6);
		sl->nics[1].fd = switch_port(i == 0 ? PORT_A : PORT_B, s[i].mac);
		memcpy(sl->nics[1].mac, s[i].mac, 6);
	}
	uint64_t pair_boot = boot_all(&pair);
	for (int i = 0; i < 2; i++) {
		close(pair.slot[i].nics[0].fd);
		close(pair.slot[i].nics[1].fd);
	}
	for (int i = 0; i < 2; i++) {
		guest_nic(&gv[i], 0, &d[i], &d[1 - i], 1);
		guest_nic(&gv[i], 1, &s[i], &s[1 - i], 1);
	}
	printf("two VMs (128 MiB, TCG, eth0 direct, eth1 switched) booted in %.2f s\n", pair_boot / 1e9);
	/* warm-up: both paths answer (and the first, slower pings are not measured) */
	if (gping(A, d[1].ip, 3, "0.2", 5, true).rx == 0 || gping(A, s[1].ip, 3, "0.2", 5, true).rx == 0)
		die("no connectivity between the VMs (direct %s or switched %s)", d[1].ip, s[1].ip);

	/* calibration: N so a direct transfer takes about 3 s */
	double cal = transfer_s(A, B, d[1].ip, 128);
	int count = (int)(128 * 3.0 / cal);
	count = count < 64 ? 64 : count > 16384 ? 16384 : count;
	printf("calibration: 8 MiB direct in %.2f s -> %d x 64 KiB (%.1f MiB) per transfer\n", cal, count,
	       count / 16.0);

	double tput_d[ROUNDS], tput_s[ROUNDS], rtt_d[ROUNDS], rtt_s[ROUNDS];
	double ping_d[ROUNDS * 20], ping_s[ROUNDS * 20];
	int npd = 0, nps = 0;
	double mib = count / 16.0;
	for (int r = 0; r < ROUNDS; r++) {
		for (int side = 0; side < 2; side++) {
			bool direct = (side == 0) == (r % 2 == 0);
			if (direct) {
				tput_d[r] = mib / transfer_s(A, B, d[1].ip, count);
				rtt_d[r] = rtt_ms(A, d[1].ip, ping_d, &npd);
			} else {
				struct sw_counters c0 = counters(PORT_A);
				tput_s[r] = mib / transfer_s(A, B, s[1].ip, count);
				struct sw_counters c1 = counters(PORT_A);
				if (c1.tx_bytes - c0.tx_bytes < (uint64_t)count * 65536)
					die("switched transfer: the switch saw only %llu bytes from A, %d x 64 KiB were sent",
					    (unsigned long long)(c1.tx_bytes - c0.tx_bytes), count);
				rtt_s[r] = rtt_ms(A, s[1].ip, ping_s, &nps);
			}
		}
		printf("round %d: direct %6.2f MiB/s %7.3f ms   switched %6.2f MiB/s %7.3f ms\n", r + 1, tput_d[r],
		       rtt_d[r], tput_s[r], rtt_s[r]);
	}
	double md = dmedian(tput_d, ROUNDS), ms = dmedian(tput_s, ROUNDS);
	double rd = dmedian(rtt_d, ROUNDS), rs = dmedian(rtt_s, ROUNDS);
	if (npd != ROUNDS * 20 || nps != ROUNDS * 20)
		die("ping printed %d and %d reply times, %d expected", npd, nps, ROUNDS * 20);
	double pd = dmedian(ping_d, npd), ps = dmedian(ping_s, nps);
	printf("TCP throughput     direct %6.2f MiB/s   switched %6.2f MiB/s   (median of %d, %.1f MiB each)\n", md, ms,
	       ROUNDS, mib);
	printf("ping RTT (avg)     direct %7.3f ms     switched %7.3f ms     (median of %d runs' avg, 20 pings each)\n",
	       rd, rs, ROUNDS);
	printf("ping RTT (median)  direct %7.3f ms     switched %7.3f ms     (median of all %d pings a side)\n", pd, ps,
	       npd);
	printf("throughput switched/direct = %.2fx (target >= 0.80x) %s\n", ms / md, verdict(ms / md >= 0.80));
	/* of every ping's RTT: a run's avg carries the host's hiccups */
	printf("rtt switched/direct = %.2fx (target <= 1.20x) %s (of the runs' avg: %.2fx)\n", ps / pd,
	       verdict(ps / pd <= 1.20), rs / rd);

	/* ---- 2. impairments --------------------------------------------------------- */
	/* the median of every ping's RTT (20 a run, IMPAIR_ROUNDS runs a side,
	 * alternating): the delay is a constant shift, the median keeps the host's
	 * scheduling hiccups out of it */
	double base[IMPAIR_ROUNDS * 20], lat[IMPAIR_ROUNDS * 20];
	int nbase = 0, nlat = 0;
	for (int r = 0; r < IMPAIR_ROUNDS; r++)
		for (int side = 0; side < 2; side++) {
			bool impaired = (side == 0) == (r % 2 == 1);
			if (impaired) {
				set_impair(SW_ANY, SW_ANY, (struct sw_impair){ .latency_us = 50000 });
				rtt_ms(A, s[1].ip, lat, &nlat);
				sw_run(do_reset_impair, NULL);
			} else {
				rtt_ms(A, s[1].ip, base, &nbase);
			}
		}
	if (nlat != IMPAIR_ROUNDS * 20 || nbase != IMPAIR_ROUNDS * 20)
		die("ping printed %d and %d reply times, %d expected", nlat, nbase, IMPAIR_ROUNDS * 20);
	double mlat = dmedian(lat, nlat), mbase = dmedian(base, nbase), added = mlat - mbase;
	printf("latency 50 ms bridge-wide: RTT %.3f ms vs %.3f ms unimpaired (medians of %d pings each)\n", mlat, mbase,
	       nlat);
	printf("  added RTT = %.2f ms (target 100 +- 5 ms) deviation %+.2f ms %s\n", added, added - 100,
	       verdict(fabs(added - 100) <= 5));

	struct sw_counters b0 = counters(PORT_B), a0 = counters(PORT_A);
	set_impair(PORT_A, PORT_B, (struct sw_impair){ .drop_pct = 20 });
	struct ping_res pr = { .tx = 0 };
	for (int k = 0; k < 4; k++) { /* 4 x 250 pings */
		struct ping_res x = gping(A, s[1].ip, 250, "0.01", 1, true);
		pr.tx += x.tx;
		pr.rx += x.rx;
	}
	sw_run(do_reset_impair, NULL);
	struct sw_counters b1 = counters(PORT_B), a1 = counters(PORT_A);
	double loss = 100.0 * (pr.tx - pr.rx) / pr.tx;
	uint64_t fwd = a1.tx_packets - a0.tx_packets, dropped = b1.drops - b0.drops;
	printf("drop 20%% on A->B: %d of %d pings lost; switch: %llu of %llu frames from A dropped (%.1f%%)\n",
	       pr.tx - pr.rx, pr.tx, (unsigned long long)dropped, (unsigned long long)fwd,
	       fwd ? 100.0 * (double)dropped / (double)fwd : 0.0);
	printf("  loss = %.1f%% (target 17-23%%) deviation %+.1f points %s\n", loss, loss - 20,
	       verdict(loss >= 17 && loss <= 23));

	int bw_count = 32; /* 2 MiB: 8.4 s at 2 Mbit/s */
	double bw[IMPAIR_ROUNDS], wire[IMPAIR_ROUNDS];
	set_impair(PORT_A, PORT_B, (struct sw_impair){ .bandwidth_bps = 2000000 });
	for (int r = 0; r < IMPAIR_ROUNDS; r++) {
		struct sw_counters c0 = counters(PORT_B);
		double t = transfer_s(A, B, s[1].ip, bw_count);
		struct sw_counters c1 = counters(PORT_B);
		bw[r] = bw_count * 65536.0 * 8 / t / 1e6;
		wire[r] = (double)(c1.rx_bytes - c0.rx_bytes) * 8 / t / 1e6;
	}
	sw_run(do_reset_impair, NULL);
	double mbw = dmedian(bw, IMPAIR_ROUNDS), mwire = dmedian(wire, IMPAIR_ROUNDS);
	printf("bandwidth 2 Mbit/s on A->B: %d x %.1f MiB, TCP goodput runs %.3f %.3f %.3f Mbit/s; "
	       "frames delivered to B %.3f Mbit/s (Ethernet headers included)\n",
	       IMPAIR_ROUNDS, bw_count / 16.0, bw[0], bw[1], bw[2], mwire);
	printf("  rate = %.3f Mbit/s (target 2.000 +- 10%%) deviation %+.1f%% %s\n", mbw, (mbw / 2 - 1) * 100,
	       verdict(fabs(mbw / 2 - 1) <= 0.10));

	shutdown_all(&pair);
	sw_run(do_free, NULL);

	/* ---- 3. eight VMs on one switch --------------------------------------------- */
	struct addr e[NVMS];
	switch_new("eight");
	eight.n = NVMS;
	for (int i = 0; i < NVMS; i++) {
		snprintf(e[i].ip, sizeof(e[i].ip), "10.77.1.1%d", i + 1);
		uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x77, 0x03, (uint8_t)(i + 1) };
		memcpy(e[i].mac, mac, 6);
		snprintf(gv[i].name, sizeof(gv[i].name), "vm%d", i + 1);
		eight.slot[i].g = &gv[i];
		eight.slot[i].nnics = 1;
		eight.slot[i].nics[0].fd = switch_port(i, e[i].mac);
		memcpy(eight.slot[i].nics[0].mac, e[i].mac, 6);
	}
	uint64_t boot8 = boot_all(&eight);
	for (int i = 0; i < NVMS; i++)
		close(eight.slot[i].nics[0].fd);
	uint64_t t0 = pv_mono_ns();
	for (int i = 0; i < NVMS; i++) {
		struct addr peers[NVMS];
		int np = 0;
		for (int j = 0; j < NVMS; j++)
			if (j != i)
				peers[np++] = e[j];
		guest_nic(&gv[i], 0, &e[i], peers, np);
	}
	uint64_t conf8 = pv_mono_ns() - t0;
	int ok = 0;
	char failed[1024] = "";
	t0 = pv_mono_ns();
	for (int i = 0; i < NVMS; i++)
		for (int j = 0; j < NVMS; j++) {
			char cmd[256];
			if (i == j)
				continue;
			snprintf(cmd, sizeof(cmd), "ping -q -c 1 -W 5 %s", e[j].ip);
			if (gexec(&gv[i], cmd, 30000, NULL, 0) == 0)
				ok++;
			else if (strlen(failed) < sizeof(failed) - 16)
				sprintf(failed + strlen(failed), " %d->%d", i + 1, j + 1);
		}
	uint64_t sweep = pv_mono_ns() - t0;
	printf("8 VMs (128 MiB each) on one switch, 2 host cores: booted at once in %.2f s (2 VMs: %.2f s), "
	       "network set up in %.2f s\n",
	       boot8 / 1e9, pair_boot / 1e9, conf8 / 1e9);
	printf("  all-pairs ping (56 ordered pairs, one after the other): %d/56 answered in %.2f s (%.0f ms a pair)%s%s\n",
	       ok, sweep / 1e9, sweep / 1e6 / 56, ok < 56 ? "; failed:" : "", failed);
	printf("  all pairs reachable: %s\n", verdict(ok == 56));
	shutdown_all(&eight);
	sw_run(do_free, NULL);
	switch_thread_stop();
	return 0;
}

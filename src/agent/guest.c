/* guest.c - the guest-wide duties of the agent: its own scheduling priority
 * (so that a runaway command cannot starve the one process that enforces
 * timeouts and answers the host) and the `resume` op (the host's wall clock
 * and fresh entropy for a guest restored from a snapshot). */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif
#ifndef RNDRESEEDCRNG
#define RNDRESEEDCRNG _IO('R', 0x07)
#endif

/* The most entropy one resume takes: the kernel's input pool is 256 bits. */
#define RESUME_ENTROPY_MAX 512u

void guest_priority_setup(void)
{
	struct sched_param sp = { .sched_priority = 1 };

	/* SCHED_RR at the lowest real-time priority: the agent runs as soon as
	 * it is runnable, ahead of every normal task (a fork bomb included); it
	 * only ever blocks in poll(), and the kernel's RT throttling still leaves
	 * normal tasks 5% of each second should it spin. SCHED_RESET_ON_FORK:
	 * every child starts as SCHED_OTHER at nice 0, so commands run exactly as
	 * they would under any other init. */
	if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &sp) < 0) {
		ag_log("SCHED_RR: %s; running at nice -20 instead", strerror(errno));
		sp.sched_priority = 0;
		if (sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &sp) < 0)
			ag_log("SCHED_RESET_ON_FORK: %s", strerror(errno));
	}
	/* with SCHED_RESET_ON_FORK a negative nice is not inherited either */
	if (setpriority(PRIO_PROCESS, 0, -20) < 0)
		ag_log("setpriority -20: %s", strerror(errno));
}

static int add_entropy(const uint8_t *data, uint32_t len, bool *reseeded, char *why, size_t whylen)
{
	struct {
		struct rand_pool_info info;
		uint8_t buf[RESUME_ENTROPY_MAX];
	} e;
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC), rc = 0;

	*reseeded = false;
	if (fd < 0) {
		snprintf(why, whylen, "open /dev/urandom: %s", strerror(errno));
		return -errno;
	}
	memset(&e, 0, sizeof(e));
	e.info.entropy_count = (int)(len * 8);
	e.info.buf_size = (int)len;
	memcpy(e.buf, data, len);
	if (ioctl(fd, RNDADDENTROPY, &e.info) < 0) {
		rc = -errno;
		snprintf(why, whylen, "RNDADDENTROPY: %s", strerror(errno));
		goto out;
	}
	/* a new key for the CRNG now, not at its next scheduled reseed: two
	 * guests resumed from one snapshot must not hand out the same bytes.
	 * Kernels before 4.17 lack it; the added entropy still counts. */
	*reseeded = ioctl(fd, RNDRESEEDCRNG) == 0;
out:
	close(fd);
	explicit_bzero(&e, sizeof(e));
	return rc;
}

void guest_op_resume(struct ag_req *rq)
{
	int64_t t;
	const uint8_t *ent = NULL;
	uint32_t ent_len = 0;
	bool has_ent = false, applied = false, reseeded = false;
	struct timespec ts;
	struct ag_resp r;
	msgpack_packer *pk;

	if (!rq->has[AG_K_TIME_NS]) {
		ag_reply_err(rq, 0, "resume: 'time_ns' (the host's CLOCK_REALTIME in ns) is required");
		return;
	}
	if (ag_req_i64(rq, AG_K_TIME_NS, 0, &t) < 0 || ag_req_bin(rq, AG_K_ENTROPY, &ent, &ent_len, &has_ent) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (t <= 0) {
		ag_reply_err(rq, 0, "resume: 'time_ns' %lld is not a time after 1970", (long long)t);
		return;
	}
	if (ent_len > RESUME_ENTROPY_MAX) {
		ag_reply_err(rq, 0, "resume: 'entropy' has %u bytes, at most %u are taken", ent_len, RESUME_ENTROPY_MAX);
		return;
	}
	/* outside a VM (--stdio tests) the clock and the pool are the host's own:
	 * the op is checked and answered, but touches neither */
	if (ag.guest) {
		char why[200];
		ts.tv_sec = (time_t)(t / 1000000000);
		ts.tv_nsec = (long)(t % 1000000000);
		if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
			ag_reply_err(rq, errno, "resume: clock_settime: %s", strerror(errno));
			return;
		}
		int erc = has_ent && ent_len ? add_entropy(ent, ent_len, &reseeded, why, sizeof(why)) : 0;
		if (erc < 0) {
			ag_reply_err(rq, -erc, "resume: %s", why);
			return;
		}
		applied = true;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	pk = ag_resp_begin(&r, rq, 3);
	ag_pack_key(pk, "time_ns");
	msgpack_pack_int64(pk, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
	ag_pack_key(pk, "applied");
	applied ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	ag_pack_key(pk, "reseeded");
	reseeded ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	ag_resp_end(&r);
}

/* ---- identity: what makes a VM resumed from a shared template its own ---- */

/* A fresh random machine id (32 lowercase hex digits and a newline) into
 * path when the file is there and not empty (systemd's "uninitialized"
 * first-boot marker and an absent file are left alone). 1 written, 0 left,
 * -errno. */
static int new_machine_id(const char *path, char id[33])
{
	uint8_t b[16];
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || !strncmp(buf, "uninitialized", 13))
		return 0;
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(id + 2 * i, 3, "%02x", b[i]);
	snprintf(buf, sizeof(buf), "%s\n", id);
	/* replaced, not rewritten: a bind mount or a read-only lower layer of
	 * the file's own stays as it is */
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.provium", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, 33) != 33 || close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		/* a bind-mounted file (systemd's /run/machine-id): write it in place */
		if (e != EBUSY)
			return -e;
		if ((fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)) < 0)
			return -errno;
		if (write(fd, buf, 33) != 33) {
			e = errno;
			close(fd);
			return -e;
		}
		close(fd);
	}
	return 1;
}

void guest_op_identity(struct ag_req *rq)
{
	char *host = NULL, *seed = NULL, id[33] = "";
	bool want_id = false;
	struct ag_resp r;

	if (ag_req_str_req(rq, AG_K_HOSTNAME, &host) < 0 || ag_req_str(rq, AG_K_RNG_SEED, &seed) < 0 ||
	    ag_req_bool(rq, AG_K_MACHINE_ID, false, &want_id) < 0) {
		free(host);
		free(seed);
		ag_reply_bad(rq);
		return;
	}
	size_t hl = strlen(host);
	if (!hl || hl > 64) {
		ag_reply_err(rq, 0, "identity: 'hostname' must be 1 to 64 bytes, got %zu", hl);
		goto out;
	}
	if (seed && (!*seed || strlen(seed) > 20 || seed[strspn(seed, "0123456789")])) {
		ag_reply_err(rq, EINVAL, "identity: 'rng_seed' \"%s\" is not a decimal number up to 2^64-1", seed);
		goto out;
	}
	/* outside a VM (--stdio tests) the host is not renamed: checked and answered */
	if (ag.guest) {
		if (sethostname(host, hl) < 0) {
			ag_reply_err(rq, errno, "identity: sethostname: %s", strerror(errno));
			goto out;
		}
		if (seed && bootfiles_seed_apply(seed) < 0) {
			ag_reply_err(rq, EINVAL, "identity: 'rng_seed' \"%s\" is not a decimal number up to 2^64-1", seed);
			goto out;
		}
		if (want_id) {
			int rc = new_machine_id("/etc/machine-id", id);
			if (rc < 0) {
				ag_reply_err(rq, -rc, "identity: /etc/machine-id: %s", strerror(-rc));
				goto out;
			}
		}
	}
	msgpack_packer *pk = ag_resp_begin(&r, rq, 2);
	ag_pack_key(pk, "hostname");
	msgpack_pack_str_with_body(pk, host, hl);
	ag_pack_key(pk, "machine_id");
	msgpack_pack_str_with_body(pk, id, strlen(id));
	ag_resp_end(&r);
out:
	free(host);
	free(seed);
}

/* ---- the guest's clock (clock_get / clock_set / clock_adjust / sleep) ------------------ */

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void reply_time(struct ag_req *rq)
{
	struct ag_resp r;
	msgpack_packer *pk = ag_resp_begin(&r, rq, 1);
	ag_pack_key(pk, "time_ns");
	msgpack_pack_int64(pk, realtime_ns());
	ag_resp_end(&r);
}

void guest_op_clock_get(struct ag_req *rq)
{
	reply_time(rq);
}

/* Sets CLOCK_REALTIME to t (ns since 1970). Outside PID 1 (--stdio tests)
 * the clock is the host's own: refused, never touched. A worker is in a
 * guest: the kernel checks its CAP_SYS_TIME. */
static int set_realtime(struct ag_req *rq, int64_t t)
{
	struct timespec ts;
	if (!ag.guest && !ag.worker) {
		ag_reply_err(rq, EPERM, "%s: the agent is not PID 1 of a guest, so it leaves this machine's clock alone",
			     rq->op);
		return -1;
	}
	if (t <= 0) {
		ag_reply_err(rq, EINVAL, "%s: %lld ns is not a time after 1970", rq->op, (long long)t);
		return -1;
	}
	ts.tv_sec = (time_t)(t / 1000000000);
	ts.tv_nsec = (long)(t % 1000000000);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
		ag_reply_err(rq, errno, "%s: clock_settime: %s", rq->op, strerror(errno));
		return -1;
	}
	return 0;
}

void guest_op_clock_set(struct ag_req *rq)
{
	int64_t t;
	if (!rq->has[AG_K_TIME_NS]) {
		ag_reply_err(rq, 0, "clock_set: 'time_ns' (ns since 1970) is required");
		return;
	}
	if (ag_req_i64(rq, AG_K_TIME_NS, 0, &t) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (set_realtime(rq, t) == 0)
		reply_time(rq);
}

void guest_op_clock_adjust(struct ag_req *rq)
{
	int64_t d;
	if (!rq->has[AG_K_DELTA_NS]) {
		ag_reply_err(rq, 0, "clock_adjust: 'delta_ns' is required");
		return;
	}
	if (ag_req_i64(rq, AG_K_DELTA_NS, 0, &d) < 0) {
		ag_reply_bad(rq);
		return;
	}
	int64_t now = realtime_ns();
	if ((d > 0 && now > INT64_MAX - d) || (d < 0 && now + d <= 0)) {
		ag_reply_err(rq, EINVAL, "clock_adjust: %lld ns moves the clock out of range", (long long)d);
		return;
	}
	if (set_realtime(rq, now + d) == 0)
		reply_time(rq);
}

/* Sleeps are answered from the loop (guest_timers), never by blocking it. */
struct sleeper {
	struct sleeper *next;
	uint32_t id;
	uint64_t gen, due;
};
static struct sleeper *sleepers;
static unsigned n_sleepers;
#define MAX_SLEEPERS 1024u
#define SLEEP_MAX_NS (24ull * 3600 * 1000000000ull)

void guest_op_sleep(struct ag_req *rq)
{
	uint64_t d;
	struct sleeper *s;
	if (!rq->has[AG_K_DURATION_NS]) {
		ag_reply_err(rq, 0, "sleep: 'duration_ns' is required");
		return;
	}
	if (ag_req_u64(rq, AG_K_DURATION_NS, 0, &d) < 0) {
		ag_reply_bad(rq);
		return;
	}
	if (d > SLEEP_MAX_NS) {
		ag_reply_err(rq, EINVAL, "sleep: %llu ns is more than a day", (unsigned long long)d);
		return;
	}
	if (n_sleepers >= MAX_SLEEPERS || !(s = malloc(sizeof(*s)))) {
		ag_reply_err(rq, ENOMEM, "sleep: too many sleeps at once (at most %u)", MAX_SLEEPERS);
		return;
	}
	*s = (struct sleeper){ .next = sleepers, .id = rq->id, .gen = rq->gen, .due = sys_mono_ns() + d };
	sleepers = s;
	n_sleepers++;
}

uint64_t guest_next_deadline(void)
{
	uint64_t d = 0;
	for (struct sleeper *s = sleepers; s; s = s->next)
		if (!d || s->due < d)
			d = s->due;
	return d;
}

void guest_timers(uint64_t now)
{
	for (struct sleeper **pp = &sleepers; *pp;) {
		struct sleeper *s = *pp;
		if (s->due > now) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		n_sleepers--;
		struct ag_resp r;
		ag_resp_begin_id(&r, s->id, s->gen, "sleep", 0, 0);
		ag_resp_end(&r); /* dropped if that connection is gone */
		free(s);
	}
}

int guest_lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		rc = -errno;
	else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			rc = -errno;
	}
	close(s);
	return rc;
}

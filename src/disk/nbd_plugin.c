/* nbd_plugin.c - provium-nbd.so, the nbdkit plugin behind every faultable
 * disk (docs/design.md, "Disks").
 *
 * nbdkit speaks NBD to QEMU; this plugin serves one raw file (file=) with
 * two additions the guest sees:
 *
 *  - A volatile write cache. Writes land in an overlay (an unlinked sparse
 *    file next to the disk, one dirty bit per 512-byte sector) and reach the
 *    disk's file only on a FLUSH, a FUA write, or when the client goes away
 *    without a power cut. A power cut ("X" below) drops the overlay, so the
 *    file keeps exactly what the guest had flushed.
 *  - Fault rules: by op, byte range, after N matching requests, with a
 *    probability drawn from the disk's seed (seed=), an errno and a delay.
 *
 * The runner drives it over a connected socket inherited as fd control=N,
 * one request line, one answer line ("ok ..." or "err <why>"):
 *
 *   F <id> <ops> <errno> <offset> <length> <after> <prob_ppm> <delay_ns> <once>
 *                      add a rule (ops: bit 1 read, 2 write, 4 flush; length
 *                      0: to the end; prob_ppm 1000000: every match)
 *   C <id>             drop rule id (0: every rule)
 *   L                  "ok <id>:<hits>:<active> ..." for every rule
 *   S                  "ok <reads> <writes> <flushes> <faults> <unflushed bytes>"
 *   X                  power cut: drop unflushed writes, fail every request
 *                      until the next client connects
 *
 * It writes "ready\n" there once nbdkit listens, and shuts nbdkit down when
 * the runner's end closes. */
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <nbdkit-plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512u
#define MAX_RULES 64
#define OP_READ 1u
#define OP_WRITE 2u
#define OP_FLUSH 4u

struct rule {
	unsigned id, ops;
	int err;
	uint64_t off, len, after, delay_ns, seen, hits;
	uint32_t prob_ppm;
	bool once, active;
};

static char *file_path;
static int control_fd = -1;
static uint64_t rng_state;

static int base_fd = -1, ovl_fd = -1;
static uint64_t size, nsectors;
static uint64_t *dirty; /* one bit per sector: its data is in the overlay */
static uint64_t ndirty;
static bool cut;
static struct rule rules[MAX_RULES];
static unsigned nrules;
static uint64_t n_reads, n_writes, n_flushes, n_faults;
/* lock: the rules, counts and cut; data: the bitmap and the files (reads
 * share it, so the client's parallel reads run in parallel) */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t data = PTHREAD_RWLOCK_INITIALIZER;

static int pv_config(const char *key, const char *value)
{
	if (!strcmp(key, "file")) {
		free(file_path);
		file_path = nbdkit_realpath(value);
		return file_path ? 0 : -1;
	}
	if (!strcmp(key, "control"))
		return control_fd = atoi(value), 0;
	if (!strcmp(key, "seed"))
		return rng_state = strtoull(value, NULL, 0), 0;
	nbdkit_error("unknown parameter '%s'", key);
	return -1;
}

static int pv_config_complete(void)
{
	if (!file_path || control_fd < 0) {
		nbdkit_error("file= and control= are required");
		return -1;
	}
	return 0;
}

static int pv_get_ready(void)
{
	struct stat st;
	base_fd = open(file_path, O_RDWR | O_CLOEXEC);
	if (base_fd < 0 || fstat(base_fd, &st) < 0) {
		nbdkit_error("%s: %m", file_path);
		return -1;
	}
	size = (uint64_t)st.st_size;
	nsectors = (size + SECTOR - 1) / SECTOR;
	char *dir = strdup(file_path), *slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	ovl_fd = open(slash ? dir : ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	free(dir);
	if (ovl_fd < 0 || ftruncate(ovl_fd, (off_t)size) < 0) {
		nbdkit_error("the write cache's file next to %s: %m", file_path);
		return -1;
	}
	dirty = calloc((nsectors + 63) / 64 + 1, sizeof(uint64_t));
	return dirty ? 0 : -1;
}

/* ---- the data path (data held) ----------------------------------------------------------- */

static bool is_dirty(uint64_t s)
{
	return dirty[s / 64] >> (s % 64) & 1;
}

static void set_dirty(uint64_t s, bool on)
{
	uint64_t bit = 1ull << (s % 64);
	if (on && !(dirty[s / 64] & bit))
		dirty[s / 64] |= bit, ndirty++;
	else if (!on && (dirty[s / 64] & bit))
		dirty[s / 64] &= ~bit, ndirty--;
}

static int full_pread(int fd, void *buf, size_t n, uint64_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) { /* past a sparse file's end: zeros */
			memset((char *)buf + done, 0, n - done);
			break;
		}
		done += (size_t)r;
	}
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* Reads [off, off + n): each run of sectors from where its newest data is. */
static int read_range(char *buf, uint64_t off, uint64_t n)
{
	while (n) {
		uint64_t s = off / SECTOR;
		bool d = is_dirty(s);
		uint64_t end = off + n, run_end = (s + 1) * SECTOR;
		while (run_end < end && is_dirty(run_end / SECTOR) == d)
			run_end += SECTOR;
		if (run_end > end)
			run_end = end;
		if (full_pread(d ? ovl_fd : base_fd, buf, run_end - off, off) < 0)
			return -1;
		buf += run_end - off;
		n -= run_end - off;
		off = run_end;
	}
	return 0;
}

/* Copies the dirty sectors of [first, last) to the disk's file. */
static int commit(uint64_t first, uint64_t last)
{
	static char chunk[1 << 20];
	if (!ndirty)
		return 0;
	for (uint64_t s = first; s < last;) {
		if (!(s % 64) && !dirty[s / 64]) {
			s += 64;
			continue;
		}
		if (!is_dirty(s)) {
			s++;
			continue;
		}
		uint64_t e = s;
		while (e < last && e - s < sizeof(chunk) / SECTOR && is_dirty(e))
			e++;
		uint64_t len = (e - s) * SECTOR;
		if (s * SECTOR + len > size)
			len = size - s * SECTOR;
		if (full_pread(ovl_fd, chunk, len, s * SECTOR) < 0 || full_pwrite(base_fd, chunk, len, s * SECTOR) < 0)
			return -1;
		for (uint64_t i = s; i < e; i++)
			set_dirty(i, false);
		s = e;
	}
	return 0;
}

static void drop_overlay(void)
{
	memset(dirty, 0, ((nsectors + 63) / 64 + 1) * sizeof(uint64_t));
	ndirty = 0;
	if (ftruncate(ovl_fd, 0) < 0 || ftruncate(ovl_fd, (off_t)size) < 0)
		nbdkit_debug("resetting the write cache: %m");
}

/* Writes [off, off + n) to the overlay; a partial sector at either end is
 * first filled from its current data. */
static int write_range(const char *buf, uint64_t off, uint64_t n)
{
	char edge[SECTOR];
	uint64_t first = off / SECTOR, last = (off + n + SECTOR - 1) / SECTOR;
	for (int i = 0; i < 2; i++) {
		uint64_t s = i ? last - 1 : first;
		if ((i ? (off + n) % SECTOR : off % SECTOR) && !is_dirty(s)) {
			if (full_pread(base_fd, edge, SECTOR, s * SECTOR) < 0 ||
			    full_pwrite(ovl_fd, edge, SECTOR, s * SECTOR) < 0)
				return -1;
		}
	}
	if (full_pwrite(ovl_fd, buf, n, off) < 0)
		return -1;
	for (uint64_t s = first; s < last; s++)
		set_dirty(s, true);
	return 0;
}

/* ---- faults ------------------------------------------------------------------------------ */

static uint64_t next_random(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The fault, if any, request (op, off, n) meets: its errno (0: none) and
 * delay. Counts the request. */
static int meet(unsigned op, uint64_t off, uint64_t n, uint64_t *delay_ns)
{
	int err = 0;
	*delay_ns = 0;
	pthread_mutex_lock(&lock);
	if (op == OP_READ)
		n_reads++;
	else if (op == OP_WRITE)
		n_writes++;
	else
		n_flushes++;
	for (unsigned i = 0; i < nrules; i++) {
		struct rule *r = &rules[i];
		if (!r->active || !(r->ops & op))
			continue;
		if (op != OP_FLUSH && (off + n <= r->off || (r->len && off >= r->off + r->len)))
			continue;
		if (++r->seen <= r->after)
			continue;
		if (r->prob_ppm < 1000000 && next_random() % 1000000 >= r->prob_ppm)
			continue;
		r->hits++;
		n_faults++;
		if (r->once)
			r->active = false;
		if (r->delay_ns > *delay_ns)
			*delay_ns = r->delay_ns;
		if (!err)
			err = r->err;
	}
	if (cut)
		err = ESHUTDOWN;
	pthread_mutex_unlock(&lock);
	return err;
}

/* Applies a met fault: sleeps its delay, sets its errno; true if it fails. */
static bool fails(unsigned op, uint64_t off, uint64_t n)
{
	uint64_t delay;
	int err = meet(op, off, n, &delay);
	if (delay) {
		struct timespec ts = { (time_t)(delay / 1000000000u), (long)(delay % 1000000000u) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (err)
		nbdkit_set_error(err);
	return err != 0;
}

/* Under data: a cut (taken under data too) cannot come between this and the write. */
static bool is_cut(void)
{
	pthread_mutex_lock(&lock);
	bool c = cut;
	pthread_mutex_unlock(&lock);
	return c;
}

/* ---- callbacks --------------------------------------------------------------------------- */

static void *pv_open(int readonly)
{
	(void)readonly;
	pthread_mutex_lock(&lock);
	cut = false; /* a new client: the power is back */
	pthread_mutex_unlock(&lock);
	return NBDKIT_HANDLE_NOT_NEEDED;
}

static void pv_close(void *h)
{
	(void)h;
	/* the client went without a power cut (QEMU quit or was killed): its
	 * writes are on the disk, as a crashed host process leaves them */
	pthread_mutex_lock(&lock);
	bool was_cut = cut;
	pthread_mutex_unlock(&lock);
	pthread_rwlock_wrlock(&data);
	if (!was_cut && commit(0, nsectors) < 0)
		nbdkit_debug("committing on close: %m");
	pthread_rwlock_unlock(&data);
}

static int64_t pv_get_size(void *h)
{
	(void)h;
	return (int64_t)size;
}

static int pv_can_fua(void *h)
{
	(void)h;
	return NBDKIT_FUA_NATIVE;
}

static int pv_yes(void *h)
{
	(void)h;
	return 1;
}

static int pv_no(void *h)
{
	(void)h;
	return 0;
}

static int pv_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)h, (void)flags;
	if (fails(OP_READ, offset, count))
		return -1;
	pthread_rwlock_rdlock(&data);
	int rc = read_range(buf, offset, count);
	pthread_rwlock_unlock(&data);
	if (rc < 0)
		nbdkit_error("read: %m");
	return rc;
}

static int pv_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	(void)h;
	if (fails(OP_WRITE, offset, count))
		return -1;
	pthread_rwlock_wrlock(&data);
	int rc = is_cut() ? (errno = ESHUTDOWN, -1) : write_range(buf, offset, count);
	if (rc == 0 && (flags & NBDKIT_FLAG_FUA))
		rc = commit(offset / SECTOR, (offset + count + SECTOR - 1) / SECTOR);
	pthread_rwlock_unlock(&data);
	if (rc < 0)
		nbdkit_error("write: %m");
	return rc;
}

static int pv_flush(void *h, uint32_t flags)
{
	(void)h, (void)flags;
	if (fails(OP_FLUSH, 0, 0))
		return -1;
	pthread_rwlock_wrlock(&data);
	int rc = is_cut() ? (errno = ESHUTDOWN, -1) : commit(0, nsectors);
	pthread_rwlock_unlock(&data);
	if (rc < 0)
		nbdkit_error("flush: %m");
	return rc;
}

/* ---- the control socket ------------------------------------------------------------------ */

static void answer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void answer(const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(control_fd, line, (size_t)n) < 0)
		nbdkit_debug("control: %m");
}

static void command(char *line)
{
	struct rule r = { 0 };
	unsigned once = 0, id;
	char list[8000];
	size_t used = 0;
	/* data before lock, as the data path takes them */
	pthread_rwlock_wrlock(&data);
	pthread_mutex_lock(&lock);
	switch (line[0]) {
	case 'F':
		if (sscanf(line + 1, "%u %u %d %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu32 " %" SCNu64 " %u", &r.id,
			   &r.ops, &r.err, &r.off, &r.len, &r.after, &r.prob_ppm, &r.delay_ns, &once) != 9) {
			answer("err bad rule: %s", line);
			break;
		}
		if (nrules == MAX_RULES) {
			answer("err at most %d fault rules on a disk", MAX_RULES);
			break;
		}
		r.once = once;
		r.active = true;
		rules[nrules++] = r;
		answer("ok");
		break;
	case 'C':
		id = (unsigned)strtoul(line + 1, NULL, 10);
		for (unsigned i = 0; i < nrules;)
			if (!id || rules[i].id == id)
				rules[i] = rules[--nrules];
			else
				i++;
		answer("ok");
		break;
	case 'L':
		list[0] = 0;
		for (unsigned i = 0; i < nrules && used + 64 < sizeof(list); i++)
			used += (size_t)snprintf(list + used, sizeof(list) - used, " %u:%" PRIu64 ":%d", rules[i].id,
						 rules[i].hits, rules[i].active);
		answer("ok%s", list);
		break;
	case 'S':
		answer("ok %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, n_reads, n_writes, n_flushes,
		       n_faults, ndirty * SECTOR);
		break;
	case 'X':
		cut = true;
		drop_overlay();
		answer("ok");
		break;
	default:
		answer("err unknown command: %s", line);
	}
	pthread_mutex_unlock(&lock);
	pthread_rwlock_unlock(&data);
}

static void *control_thread(void *arg)
{
	char buf[4096];
	size_t have = 0;
	(void)arg;
	answer("ready");
	for (;;) {
		ssize_t r = read(control_fd, buf + have, sizeof(buf) - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += (size_t)r;
		char *nl;
		while ((nl = memchr(buf, '\n', have))) {
			*nl = 0;
			command(buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf) - 1)
			have = 0; /* an overlong line: dropped */
	}
	/* the runner is gone: so is the disk */
	nbdkit_shutdown();
	return NULL;
}

static int pv_after_fork(void)
{
	pthread_t t;
	int rc = pthread_create(&t, NULL, control_thread, NULL);
	if (rc) {
		nbdkit_error("control thread: %s", strerror(rc));
		return -1;
	}
	pthread_detach(t);
	return 0;
}

static void pv_unload(void)
{
	free(file_path);
	free(dirty);
}

static struct nbdkit_plugin plugin = {
	.name = "provium",
	.longname = "provium faultable disk",
	.version = "1",
	.description = "a raw file with a volatile write cache and fault rules, driven by provium",
	.config = pv_config,
	.config_complete = pv_config_complete,
	.get_ready = pv_get_ready,
	.after_fork = pv_after_fork,
	.unload = pv_unload,
	.open = pv_open,
	.close = pv_close,
	.get_size = pv_get_size,
	.can_write = pv_yes,
	.can_flush = pv_yes,
	.can_fua = pv_can_fua,
	.can_multi_conn = pv_no,
	.is_rotational = pv_no,
	.pread = pv_pread,
	.pwrite = pv_pwrite,
	.flush = pv_flush,
};

NBDKIT_REGISTER_PLUGIN(plugin)

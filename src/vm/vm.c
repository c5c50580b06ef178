#include "vm.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "sys.h"
#include "wire.h"

#include <jansson.h>
#include <zstd.h>

/* what every disk's virtio-blk device gets (vm_hotplug_disk says the same in JSON) */
#define DISK_DEVICE_PROPS "write-cache=on,werror=report,rerror=report"

static const char *qemu_binary(void)
{
	const char *q = getenv("PROVIUM_QEMU");
	return q && *q ? q : "qemu-system-x86_64";
}

/* Waits until path exists, QEMU exits, or the deadline: inotify, not polling. */
static int wait_for_file(struct vm *vm, const char *path, uint64_t deadline, struct pv_err *err)
{
	int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK), rc = 0;
	if (ifd < 0 || inotify_add_watch(ifd, vm->dir, IN_CREATE | IN_MOVED_TO) < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "inotify: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		char buf[4096];
		if (access(path, F_OK) == 0)
			break;
		uint64_t now = pv_mono_ns();
		if (now >= deadline) {
			rc = pv_err_set(err, -ETIMEDOUT, SIZE_MAX, "QEMU did not create %s in time", path);
			break;
		}
		struct pollfd p[2] = { { .fd = ifd, .events = POLLIN }, { .fd = vm->pidfd, .events = POLLIN } };
		if (poll(p, 2, (int)((deadline - now) / 1000000u) + 1) < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (p[1].revents) {
			rc = pv_err_set(err, -ECHILD, SIZE_MAX, "QEMU exited during start-up");
			break;
		}
		while (read(ifd, buf, sizeof(buf)) > 0)
			;
	}
out:
	if (ifd >= 0)
		close(ifd);
	return rc;
}

static char *read_small(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	char *b;
	size_t n;
	if (!f)
		return NULL;
	b = calloc(1, max + 1);
	n = b ? fread(b, 1, max, f) : 0;
	if (b)
		b[n] = 0;
	fclose(f);
	return b;
}

char *vm_console_tail(const char *console_path, size_t max)
{
	int fd = open(console_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *b;
	ssize_t n;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return strdup("");
	}
	off_t start = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
	b = calloc(1, max + 1);
	n = b ? pread(fd, b, max, start) : -1;
	close(fd);
	if (!b)
		return NULL;
	if (n < 0)
		n = 0;
	b[n] = 0;
	/* console bytes are whatever the guest printed; events carry UTF-8 */
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)b[i] >= 0x80 || b[i] == 0 || (b[i] < 32 && b[i] != '\n' && b[i] != '\t'))
			b[i] = b[i] == '\r' ? ' ' : '?';
	return b;
}

/* Runs in the forked child. QEMU gets /dev/null, its log on 1 and 2, and no
 * other fd: whatever the runner holds (its control socket, other VMs' QMP and
 * agent sockets, files a test opened without O_CLOEXEC, as Lua's io.open
 * does) is closed here rather than trusted to be close-on-exec. */
#define NIC_SLOTS4 NULL, NULL, NULL, NULL,
#define NIC_SLOTS NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4
#define DISK_SLOTS NIC_SLOTS /* 4 per disk too: VM_MAX_DISKS == VM_MAX_NICS */
/* 4 per share, and 4 for the shared memory */
#define SHARE_SLOTS NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4 NIC_SLOTS4

/* s with every comma doubled (how a QEMU option value holds one) into out */
static const char *qemu_escape(const char *s, char *out, size_t len)
{
	size_t e = 0;
	for (; *s && e + 2 < len; s++) {
		if (*s == ',')
			out[e++] = ',';
		out[e++] = *s;
	}
	out[e] = 0;
	return out;
}

static bool own_process_group; /* vm_set_own_process_group */

static void child_exec(const struct vm *vm, char **argv, const struct vm_spec *spec)
{
	int fd;
	/* the NICs' sockets become fds 3, 4, ...: first out of the way of
	 * those numbers, then into place (the argv names them) */
	int hi[VM_MAX_NICS];
	for (unsigned k = 0; k < spec->nnics; k++)
		hi[k] = fcntl(spec->nics[k].fd, F_DUPFD, 100);
	for (unsigned k = 0; k < spec->nnics; k++)
		if (hi[k] < 0 || dup2(hi[k], 3 + (int)k) < 0)
			_exit(126);
	if (own_process_group)
		setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* under memory pressure a VM goes first (runner 500, scheduler 0): the
	 * runner then reports the VM dead; not fatal if it cannot be raised */
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "800", 3) != 3) {
			/* nothing to do: the VM runs with the runner's score */
		}
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	{
		char log[300];
		snprintf(log, sizeof(log), "%s/qemu.log", vm->dir);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
	}
	if (syscall(SYS_close_range, 3u + spec->nnics, ~0u, 0u) < 0)
		for (int i = 3 + (int)spec->nnics; i < 65536; i++) /* a kernel before 5.9 */
			close(i);
	execvp(argv[0], argv);
	fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Decompressing a snapshot: a thread started as soon as QEMU is forked
 * unpacks the zstd file into a memfd while QEMU starts up, so that QEMU then
 * loads from memory as fast as from an uncompressed file (the stream is
 * ~3.5x the compressed size and freed once loaded). */
struct unpack {
	const char *path;
	int in, out; /* compressed file, memfd */
	pthread_t th;
	bool running;
	int rc;
	char msg[600];
};

static void *unpack_main(void *arg)
{
	struct unpack *u = arg;
	size_t ilen = ZSTD_DStreamInSize() * 8, olen = 1 << 20;
	uint8_t *in = malloc(ilen), *out = malloc(olen);
	ZSTD_DCtx *dz = ZSTD_createDCtx();
	size_t pending = 1; /* ZSTD_decompressStream's hint: 0 once a frame is complete */

	u->rc = 0;
	if (!in || !out || !dz) {
		u->rc = -ENOMEM;
		snprintf(u->msg, sizeof(u->msg), "out of memory unpacking snapshot %s", u->path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(u->in, in, ilen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			u->rc = -errno;
			snprintf(u->msg, sizeof(u->msg), "reading snapshot %s: %s", u->path, strerror(errno));
			goto out;
		}
		if (n == 0) {
			if (pending) {
				u->rc = -EBADMSG;
				snprintf(u->msg, sizeof(u->msg), "snapshot %s is truncated", u->path);
			}
			goto out;
		}
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		while (ib.pos < ib.size) {
			ZSTD_outBuffer ob = { out, olen, 0 };
			size_t z = ZSTD_decompressStream(dz, &ob, &ib);
			if (ZSTD_isError(z)) {
				u->rc = -EBADMSG;
				snprintf(u->msg, sizeof(u->msg), "snapshot %s is corrupt: %s", u->path, ZSTD_getErrorName(z));
				goto out;
			}
			pending = z;
			int rc = ob.pos ? pv_write_all(u->out, out, ob.pos) : 0;
			if (rc < 0) {
				u->rc = rc;
				snprintf(u->msg, sizeof(u->msg), "unpacking snapshot %s into memory: %s", u->path,
					 strerror(-rc));
				goto out;
			}
		}
	}
out:
	ZSTD_freeDCtx(dz);
	free(in);
	free(out);
	return NULL;
}

static int unpack_start(struct unpack *u, const char *path, struct pv_err *err)
{
	memset(u, 0, sizeof(*u));
	u->path = path;
	u->out = -1;
	u->in = open(path, O_RDONLY | O_CLOEXEC);
	if (u->in < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "snapshot %s: %s", path, strerror(errno));
	u->out = memfd_create("provium-snapshot", MFD_CLOEXEC);
	if (u->out < 0) {
		int e = errno;
		close(u->in);
		return pv_err_set(err, -e, SIZE_MAX, "memfd_create: %s", strerror(e));
	}
	int rc = pthread_create(&u->th, NULL, unpack_main, u);
	if (rc) {
		close(u->in);
		close(u->out);
		return pv_err_set(err, -rc, SIZE_MAX, "cannot start a thread: %s", strerror(rc));
	}
	u->running = true;
	return 0;
}

/* Waits for the unpacker; closes the compressed file. */
static int unpack_join(struct unpack *u, struct pv_err *err)
{
	if (!u->running)
		return 0;
	pthread_join(u->th, NULL);
	u->running = false;
	close(u->in);
	u->in = -1;
	if (u->rc < 0)
		return pv_err_set(err, u->rc, SIZE_MAX, "%s", u->msg);
	return 0;
}

static void unpack_release(struct unpack *u)
{
	unpack_join(u, NULL);
	if (u->out >= 0)
		close(u->out);
	u->out = -1;
}

int vm_incoming_status(json_t *st, const char *path, bool *ret_waiting, struct pv_err *err)
{
	const char *s = json_string_value(json_object_get(st, "status"));
	bool waiting = s && strcmp(s, "inmigrate") == 0;
	bool bad = s && (strcmp(s, "paused") != 0 && strcmp(s, "postmigrate") != 0 && !waiting &&
			 strcmp(s, "running") != 0 && strcmp(s, "prelaunch") != 0);
	int rc = 0;

	if (bad) /* s lives in st: the message is made before st goes */
		rc = pv_err_set(err, -EIO, SIZE_MAX, "restoring %s failed: QEMU is %.200s", path, s);
	json_decref(st);
	*ret_waiting = waiting;
	return rc;
}

/* Feeds the unpacked snapshot into a QEMU started with -incoming defer, then runs it. */
static int resume(struct vm *vm, struct unpack *u, uint64_t deadline, struct pv_err *err)
{
	int rc;
	const char *path = u->path;

	if ((rc = unpack_join(u, err)) < 0)
		return rc;
	if (lseek(u->out, 0, SEEK_SET) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "lseek: %s", strerror(errno));
	if ((rc = qmp_exec_fd(&vm->qmp, "getfd", json_pack("{s:s}", "fdname", "snapin"), u->out, deadline, err)) < 0 ||
	    (rc = qmp_exec(&vm->qmp, "migrate-incoming", json_pack("{s:s}", "uri", "fd:snapin"), NULL, deadline, err)) < 0)
		return rc;
	/* QEMU has its own copy of the fd */
	close(u->out);
	u->out = -1;
	for (;;) {
		json_t *st = NULL;
		if ((rc = qmp_exec(&vm->qmp, "query-status", NULL, &st, deadline, err)) < 0)
			return rc;
		bool waiting;
		if ((rc = vm_incoming_status(st, path, &waiting, err)) < 0)
			return rc;
		if (!waiting)
			break;
		if (pv_mono_ns() >= deadline)
			return pv_err_set(err, -ETIMEDOUT, SIZE_MAX, "restoring %s: QEMU still loading at the deadline", path);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL); /* QMP has no event for the end of an incoming migration without the events capability */
	}
	return qmp_exec(&vm->qmp, "cont", NULL, NULL, deadline, err);
}

int vm_snapshot(struct vm *vm, const char *path, uint64_t *ret_bytes, int (*stopped)(void *ud, struct pv_err *err),
		void *ud, struct pv_err *err)
{
	char tmp[4200];
	int p[2] = { -1, -1 }, out = -1, rc;
	uint64_t deadline = pv_mono_ns() + 300000000000ull;
	ZSTD_CCtx *cz = NULL;
	static uint8_t in[1 << 17], obuf[1 << 17];
	struct stat st;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot create %s: %s", tmp, strerror(errno));
	if (pipe2(p, O_CLOEXEC) < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "pipe: %s", strerror(errno));
		goto out;
	}
	if ((rc = qmp_exec(&vm->qmp, "stop", NULL, NULL, deadline, err)) < 0 ||
	    (rc = qmp_exec_fd(&vm->qmp, "getfd", json_pack("{s:s}", "fdname", "snapout"), p[1], deadline, err)) < 0 ||
	    (rc = qmp_exec(&vm->qmp, "migrate", json_pack("{s:s}", "uri", "fd:snapout"), NULL, deadline, err)) < 0)
		goto out;
	close(p[1]);
	p[1] = -1;
	cz = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cz, ZSTD_c_compressionLevel, 1);
	for (;;) {
		ssize_t n = read(p[0], in, sizeof(in));
		ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = pv_err_set(err, -errno, SIZE_MAX, "reading the migration stream: %s", strerror(errno));
			goto out;
		}
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		size_t left;
		do {
			ZSTD_outBuffer ob = { obuf, sizeof(obuf), 0 };
			left = ZSTD_compressStream2(cz, &ob, &ib, mode);
			if (ZSTD_isError(left)) {
				rc = pv_err_set(err, -EIO, SIZE_MAX, "zstd: %s", ZSTD_getErrorName(left));
				goto out;
			}
			if (ob.pos && (rc = pv_write_all(out, obuf, ob.pos)) < 0) {
				/* a full disk: the tmp file goes, no partial snapshot stays */
				pv_err_set(err, rc, SIZE_MAX, "cannot write %s: %s", tmp, strerror(-rc));
				goto out;
			}
		} while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
		if (n == 0)
			break;
	}
	for (;;) {
		json_t *m = NULL;
		if ((rc = qmp_exec(&vm->qmp, "query-migrate", NULL, &m, deadline, err)) < 0)
			goto out;
		const char *s = json_string_value(json_object_get(m, "status"));
		bool done = s && strcmp(s, "completed") == 0, failed = s && (strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0);
		json_decref(m);
		if (failed) {
			rc = pv_err_set(err, -EIO, SIZE_MAX, "QEMU's migration to the snapshot failed");
			goto out;
		}
		if (done)
			break;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL); /* EOF came first; the status lags by a moment */
	}
	/* still stopped, its disks flushed: what goes with the RAM (the disks) */
	if (stopped && (rc = stopped(ud, err)) < 0) {
		struct pv_err e2;
		qmp_exec(&vm->qmp, "cont", NULL, NULL, deadline, &e2);
		goto out;
	}
	if (fsync(out) < 0 || close(out) < 0) {
		out = -1;
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	out = -1;
	if (rename(tmp, path) < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (stat(path, &st) == 0 && ret_bytes)
		*ret_bytes = (uint64_t)st.st_size;
	rc = qmp_exec(&vm->qmp, "cont", NULL, NULL, deadline, err);
out:
	ZSTD_freeCCtx(cz);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	if (out >= 0)
		close(out);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* A resumed guest's clock is the snapshot's, and its random state is every
 * other copy's: the agent's resume op sets CLOCK_REALTIME from the host and
 * mixes fresh host entropy into the pool (docs/wire.md). The clock is set to
 * the host time at sending plus half the previous round trip, so its error is
 * within about half a round trip; the first op after a restore is slow (QEMU
 * starts with an empty TCG translation cache), so it is repeated until a round
 * trip is short. */
#define RESYNC_GOOD_RTT_NS (10000000ull)
#define RESYNC_TRIES 4

int vm_resync(struct vm *vm, uint64_t deadline, struct pv_err *err)
{
	uint64_t est = 0;
	for (int i = 0; i < RESYNC_TRIES; i++) {
		uint8_t ent[64];
		struct timespec now;
		int e = 0, rc;
		if (getrandom(ent, sizeof(ent), 0) != (ssize_t)sizeof(ent))
			return pv_err_set(err, -EIO, SIZE_MAX, "getrandom: %s", strerror(errno));
		uint64_t m0 = pv_mono_ns();
		clock_gettime(CLOCK_REALTIME, &now);
		msgpack_packer *pk = agent_begin(&vm->agent, "resume", 2);
		msgpack_pack_str_with_body(pk, "time_ns", 7);
		msgpack_pack_int64(pk, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec + (int64_t)est);
		msgpack_pack_str_with_body(pk, "entropy", 7);
		msgpack_pack_bin_with_body(pk, ent, sizeof(ent));
		rc = agent_call(&vm->agent, deadline, &e, err);
		explicit_bzero(ent, sizeof(ent));
		if (rc == -EREMOTEIO && e == 0 && strstr(err->msg, "unknown op")) {
			char msg[PV_ERR_MSG_MAX];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			return pv_err_set(err, rc, SIZE_MAX, "the guest agent is too old to resume a snapshot (%s); "
					  "rebuild the image with scripts/build-image", msg);
		}
		if (rc < 0)
			return rc;
		vm->resync_rtt_ns = pv_mono_ns() - m0;
		if (vm->resync_rtt_ns <= RESYNC_GOOD_RTT_NS)
			break;
		est = vm->resync_rtt_ns / 2;
	}
	return 0;
}

/* Gives the serial port its input. QEMU 7.2's -chardev file has no
 * input-path (8.1 added it; QMP's ChardevFile has had "in" since 1.4), so the
 * chardev QEMU started with is swapped for one that writes the same log, in
 * append mode, and reads the FIFO: chardev-change, which the 16550 supports
 * (serial_be_change). The guest may print meanwhile: QEMU swaps under its
 * big lock, between two of the UART's writes, so the log loses nothing. A
 * restore does this before the migration loads, with the guest stopped. */
static int console_input(struct vm *vm, const char *fifo, uint64_t deadline, struct pv_err *err)
{
	json_t *args = json_pack("{s:s,s:{s:s,s:{s:s,s:s,s:b}}}", "id", "con", "backend", "type", "file", "data", "out",
				 vm->console_path, "in", fifo, "append", 1);
	if (!args)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	int rc = qmp_exec(&vm->qmp, "chardev-change", args, NULL, deadline, err);
	if (rc < 0) {
		char msg[PV_ERR_MSG_MAX];
		snprintf(msg, sizeof(msg), "%s", err->msg);
		pv_err_set(err, rc, SIZE_MAX, "cannot give the serial console its input (QMP chardev-change): %s", msg);
	}
	return rc;
}

/* The QEMU command of a VM (vm_boot runs it, vm_command_line prints it), and
 * the strings its argv points into: one builder, so what is printed is what
 * runs. On the heap: the disks' paths make it ~150 KiB. */
#define QEMU_ARGV_MAX 192
struct qemu_cmd {
	char *argv[QEMU_ARGV_MAX];
	size_t n;
	char mem[32], smp[32], chardev[400], qmp[400], serial[400], append[2048];
	char nicarg[VM_MAX_NICS][2][96];
	char diskarg[VM_MAX_DISKS][2][PATH_MAX * 2 + 160];
	char memobj[96], sharearg[VM_MAX_SHARES][2][200];
	char rootarg[2][PATH_MAX * 2 + 160];
	char portarg[VM_MAX_HOTPLUG][64];
	char rtc[64];
};

/* c gets spec's command for a VM whose scratch directory is dir: QMP, the
 * agent's socket and the console log are files there. The counts in spec
 * are checked by the caller (at most VM_MAX_*). */
static void qemu_cmd_build(struct qemu_cmd *c, const struct vm_spec *spec, const char *dir)
{
	snprintf(c->mem, sizeof(c->mem), "%lluM", (unsigned long long)(spec->memory_bytes >> 20));
	snprintf(c->smp, sizeof(c->smp), "%u", spec->cpus ? spec->cpus : 1);
	snprintf(c->chardev, sizeof(c->chardev), "socket,id=ag,path=%s/agent.sock,server=on,wait=off", dir);
	snprintf(c->qmp, sizeof(c->qmp), "unix:%s/qmp.sock,server=on,wait=off", dir);
	/* append: a restored VM's console starts with what it printed before;
	 * its input is given by QMP after the start (console_input) */
	snprintf(c->serial, sizeof(c->serial), "file,id=con,path=%s/console.log,append=on", dir);
	/* init_on_free=1: the guest zeroes pages it frees, so a snapshot stores
	 * them as zeros (an idle 256 MiB guest: 42 MB -> 16 MB compressed, and a
	 * faster snapshot). no_timer_check: under TCG on a loaded host the
	 * kernel's early check that the IO-APIC timer ticks can miss its window
	 * and panic ("IO-APIC + timer doesn't work!", seen once in CI); the
	 * timer does work, so the check is skipped, as libguestfs does. */
	snprintf(c->append, sizeof(c->append), "console=ttyS0 quiet panic=-1 edd=off init_on_free=1 no_timer_check %s",
		 spec->cmdline ? spec->cmdline : "");
	const char *const base[] = {
		/* under TCG the default CPU model: with "max" this kernel cannot
		 * calibrate its TSC against microvm's PIT and stalls */
		qemu_binary(), "-accel", spec->kvm ? "kvm" : "tcg", "-cpu", spec->kvm ? "host" : "qemu64",
		"-m", c->mem, "-smp", c->smp, "-nodefaults", "-no-user-config", "-display", "none",
		/* q35, not microvm: microvm's only calibration source is the
		 * PIT, and under TCG on a loaded host the guest kernel fails to
		 * calibrate against it and hangs (3 of 3 boots at load 3); q35's
		 * HPET and ACPI PM timer make boots reliable for ~0.2 s more */
		"-M", "q35", "-device", "virtio-serial-pci",
		"-chardev", c->chardev, "-device", "virtserialport,chardev=ag,name=" PV_WIRE_PORT_NAME,
		"-qmp", c->qmp, "-chardev", c->serial, "-serial", "chardev:con", "-kernel", spec->kernel, "-initrd", spec->initrd,
		"-append", c->append, "-no-reboot",
	};
	c->n = 0;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		c->argv[c->n++] = (char *)base[i];
	if (spec->nshares) {
		/* vhost-user (virtiofsd) maps the guest's RAM: it must be a shared memfd */
		snprintf(c->memobj, sizeof(c->memobj), "memory-backend-memfd,id=mem,size=%s,share=on", c->mem);
		c->argv[c->n++] = "-object";
		c->argv[c->n++] = c->memobj;
		c->argv[c->n++] = "-numa";
		c->argv[c->n++] = "node,memdev=mem";
	}
	for (unsigned k = 0; k < spec->nshares && k < VM_MAX_SHARES; k++) {
		snprintf(c->sharearg[k][0], sizeof(c->sharearg[k][0]), "socket,id=fsc%u,path=%s", k, spec->shares[k].socket);
		snprintf(c->sharearg[k][1], sizeof(c->sharearg[k][1]), "vhost-user-fs-pci,chardev=fsc%u,id=fs%u,tag=%s", k, k,
			 spec->shares[k].tag);
		c->argv[c->n++] = "-chardev";
		c->argv[c->n++] = c->sharearg[k][0];
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = c->sharearg[k][1];
	}
	if (spec->rootfs) {
		/* read-only, shared by every VM of its profile: the guest's
		 * writes go to an overlay in its RAM (docs/images.md) */
		char esc[PATH_MAX * 2];
		snprintf(c->rootarg[0], sizeof(c->rootarg[0]),
			 "driver=raw,node-name=rootfs,read-only=on,file.driver=file,file.filename=%s",
			 qemu_escape(spec->rootfs, esc, sizeof(esc)));
		snprintf(c->rootarg[1], sizeof(c->rootarg[1]), "virtio-blk-pci,drive=rootfs,id=rootfs,serial=" VM_ROOTFS_SERIAL
			 ",addr=0x0f");
		c->argv[c->n++] = "-blockdev";
		c->argv[c->n++] = c->rootarg[0];
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = c->rootarg[1];
	}
	if (spec->ndisks || spec->scsi) {
		/* the disks' I/O in a thread of its own, off the main loop
		 * (measured: sequential reads through a disk server 0.68x -> 0.80x
		 * of a plain disk, every disk faster; docs/design.md) */
		c->argv[c->n++] = "-object";
		c->argv[c->n++] = "iothread,id=io0";
	}
	if (spec->scsi) {
		/* before the disks: their scsi-hd devices sit on its bus */
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = "virtio-scsi-pci,id=scsi0,addr=0x17,iothread=io0";
	}
	for (unsigned k = 0; k < spec->ndisks; k++) {
		const struct vm_disk *d = &spec->disks[k];
		char esc[PATH_MAX * 2];
		qemu_escape(d->path, esc, sizeof(esc));
		if (d->nbd)
			snprintf(c->diskarg[k][0], sizeof(c->diskarg[k][0]),
				 "driver=nbd,node-name=disk%u,server.type=unix,server.path=%s", d->index, d->nbd);
		else
			snprintf(c->diskarg[k][0], sizeof(c->diskarg[k][0]),
				 "driver=%s,node-name=disk%u,read-only=%s,file.driver=file,file.filename=%s", d->format,
				 d->index, d->readonly ? "on" : "off", esc);
		/* addr: PCI slots in disk order, after the NICs'. An I/O error
		 * reaches the guest (werror's default would pause the VM on
		 * ENOSPC); a write cache makes the guest flush. */
		if (d->scsi) /* target <index> of the VM's SCSI bus */
			snprintf(c->diskarg[k][1], sizeof(c->diskarg[k][1]),
				 "scsi-hd,drive=disk%u,id=vd%u,serial=%s,bus=scsi0.0,channel=0,scsi-id=%u,lun=0,"
				 DISK_DEVICE_PROPS, d->index, d->index, d->serial, d->index);
		else
			snprintf(c->diskarg[k][1], sizeof(c->diskarg[k][1]),
				 "virtio-blk-pci,drive=disk%u,id=vd%u,serial=%s,addr=0x%x,iothread=io0," DISK_DEVICE_PROPS,
				 d->index, d->index, d->serial, 0x18 + k);
		c->argv[c->n++] = "-blockdev";
		c->argv[c->n++] = c->diskarg[k][0];
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = c->diskarg[k][1];
	}
	for (unsigned k = 0; k < spec->nnics; k++) {
		const uint8_t *m = spec->nics[k].mac;
		snprintf(c->nicarg[k][0], sizeof(c->nicarg[k][0]), "dgram,id=net%u,local.type=fd,local.str=%u", k, 3 + k);
		/* addr: PCI slots in NIC order, so eth<k> is NIC k */
		snprintf(c->nicarg[k][1], sizeof(c->nicarg[k][1]),
			 "virtio-net-pci,netdev=net%u,id=nic%u,mac=%02x:%02x:%02x:%02x:%02x:%02x,addr=0x%x", k, k, m[0], m[1],
			 m[2], m[3], m[4], m[5], 0x10 + k);
		c->argv[c->n++] = "-netdev";
		c->argv[c->n++] = c->nicarg[k][0];
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = c->nicarg[k][1];
	}
	/* last: they take the free slots QEMU assigns, after the fixed ones */
	for (unsigned k = 0; k < spec->hotplug_ports && k < VM_MAX_HOTPLUG; k++) {
		/* slot k + 1: the guest's /sys/bus/pci/slots/<k + 1> */
		snprintf(c->portarg[k], sizeof(c->portarg[k]), "pcie-root-port,id=hp%u,chassis=%u,slot=%u", k, k + 1, k + 1);
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = c->portarg[k];
	}
	if (spec->rtc_base) {
		snprintf(c->rtc, sizeof(c->rtc), "base=%s", spec->rtc_base);
		c->argv[c->n++] = "-rtc";
		c->argv[c->n++] = c->rtc;
	}
	if (spec->incoming) {
		c->argv[c->n++] = "-incoming";
		c->argv[c->n++] = "defer";
	}
	if (spec->vmgenid) {
		/* guid=auto: a new generation id in every QEMU, a restored one
		 * included, which tells the guest kernel to reseed its CRNG */
		c->argv[c->n++] = "-device";
		c->argv[c->n++] = "vmgenid,guid=auto";
	}
	c->argv[c->n] = NULL;
}

static const char *scratch_parent;

/* Where vm_boot makes its scratch directories (vm_set_scratch_parent). */
static const char *scratch_base(void)
{
	const char *tmp = getenv("XDG_RUNTIME_DIR");
	if (scratch_parent && strlen(scratch_parent) < 80 && access(scratch_parent, W_OK) == 0)
		return scratch_parent;
	if (!tmp || strlen(tmp) > 80 || access(tmp, W_OK) != 0)
		return "/tmp";
	return tmp;
}

const char *vm_scratch_base(void)
{
	return scratch_base();
}

/* s as one shell word into b: as it is when it needs no quoting, else in
 * single quotes (a quote inside as '\''). */
static int shell_word(struct pv_buf *b, const char *s)
{
	bool plain = *s != 0;
	int rc = 0;
	for (const char *p = s; *p && plain; p++)
		plain = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%+=:,./-", *p) != NULL;
	if (plain)
		return pv_buf_append(b, s, strlen(s));
	rc |= pv_buf_append(b, "'", 1);
	for (const char *p = s; *p; p++)
		rc |= *p == '\'' ? pv_buf_append(b, "'\\''", 4) : pv_buf_append(b, p, 1);
	rc |= pv_buf_append(b, "'", 1);
	return rc;
}

char *vm_command_line(const struct vm_spec *spec, const char *dir, struct pv_err *err)
{
	struct qemu_cmd *c;
	struct pv_buf b = PV_BUF_INIT;
	int rc = 0;

	if (spec->ndisks > VM_MAX_DISKS || spec->nshares > VM_MAX_SHARES || spec->nnics > VM_MAX_NICS) {
		pv_err_set(err, -E2BIG, SIZE_MAX, "a VM has at most %d disks, %d shares and %d NICs", VM_MAX_DISKS,
			   VM_MAX_SHARES, VM_MAX_NICS);
		return NULL;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		return NULL;
	}
	qemu_cmd_build(c, spec, dir);
	for (size_t i = 0; i < c->n; i++)
		rc |= (i ? pv_buf_append(&b, " ", 1) : 0) | shell_word(&b, c->argv[i]);
	free(c);
	if (rc != 0 || pv_buf_append(&b, "", 1) < 0) {
		pv_buf_release(&b);
		pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
		return NULL;
	}
	return (char *)b.data; /* NUL-terminated above; the caller frees it */
}

void vm_set_own_process_group(bool own)
{
	own_process_group = own;
}

void vm_set_scratch_parent(const char *dir)
{
	scratch_parent = dir;
}

int vm_boot(struct vm *vm, const struct vm_spec *spec, struct pv_err *err)
{
	char agent_sock[300], qmp_sock[300], console_in[300];
	const char *tmp = scratch_base();
	struct qemu_cmd *cmd;
	uint64_t deadline;
	int rc;
	struct unpack up = { .in = -1, .out = -1 };

	memset(vm, 0, sizeof(*vm));
	vm->pidfd = -1;
	vm->qmp.fd = -1;
	vm->agent.fd = -1;
	vm->console_in = -1;
	if (access(spec->kernel, R_OK) != 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX,
				  "kernel %s: %s; build the built-in image with scripts/build-image or fix the profile",
				  spec->kernel, strerror(errno));
	if (spec->ndisks > VM_MAX_DISKS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a VM has at most %d disks", VM_MAX_DISKS);
	if (spec->nshares > VM_MAX_SHARES)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a VM has at most %d shares", VM_MAX_SHARES);
	if (spec->nnics > VM_MAX_NICS)
		return pv_err_set(err, -E2BIG, SIZE_MAX, "a VM has at most %d NICs (it is on %u bridges)", VM_MAX_NICS,
				  spec->nnics);
	if (access(spec->initrd, R_OK) != 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX,
				  "initrd %s: %s; build the built-in image with scripts/build-image or fix the profile",
				  spec->initrd, strerror(errno));
	snprintf(vm->dir, sizeof(vm->dir), "%s/vm-XXXXXX", tmp);
	if (!mkdtemp(vm->dir)) /* mode 0700 */
		return pv_err_set(err, -errno, SIZE_MAX, "cannot create a scratch directory in %s: %s", tmp, strerror(errno));
	snprintf(vm->console_path, sizeof(vm->console_path), "%s/console.log", vm->dir);
	snprintf(agent_sock, sizeof(agent_sock), "%s/agent.sock", vm->dir);
	snprintf(qmp_sock, sizeof(qmp_sock), "%s/qmp.sock", vm->dir);
	/* The console's input (console_input) is the FIFO made here: QEMU opens it
	 * O_RDONLY, which blocks until there is a writer, and stops reading at
	 * the first end of file; opened O_RDWR here first, it has a writer for
	 * as long as we hold it (a restore makes a new one with its new QEMU). */
	snprintf(console_in, sizeof(console_in), "%s/console.in", vm->dir);
	if (mkfifo(console_in, 0600) < 0 ||
	    (vm->console_in = open(console_in, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot make the console's input FIFO %s: %s", console_in,
				strerror(errno));
		sys_rm_tree(vm->dir, NULL, 0);
		return rc;
	}
	if (spec->console_history) {
		int cfd = open(vm->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		static const char mark[] = "\n--- provium: restored from a snapshot ---\n";
		if (cfd >= 0) {
			if (pv_write_all(cfd, spec->console_history, strlen(spec->console_history)) < 0 ||
			    pv_write_all(cfd, mark, sizeof(mark) - 1) < 0) {
				/* a console without its history still works */
			}
			close(cfd);
		}
	}
	if (!(cmd = calloc(1, sizeof(*cmd)))) {
		close(vm->console_in);
		vm->console_in = -1;
		sys_rm_tree(vm->dir, NULL, 0);
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	qemu_cmd_build(cmd, spec, vm->dir);
	vm->started = pv_mono_ns();
	vm->pid = fork();
	if (vm->pid < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "fork: %s", strerror(errno));
		free(cmd);
		close(vm->console_in);
		vm->console_in = -1;
		sys_rm_tree(vm->dir, NULL, 0);
		return rc;
	}
	if (vm->pid == 0)
		child_exec(vm, cmd->argv, spec);
	free(cmd);
	/* after the fork: the child of a process with threads may only exec */
	if (spec->incoming && (rc = unpack_start(&up, spec->incoming, err)) < 0)
		goto fail;
	vm->pidfd = (int)syscall(SYS_pidfd_open, vm->pid, 0);
	deadline = vm->started + (spec->boot_timeout_ns ? spec->boot_timeout_ns : 60000000000ull);
	if ((rc = wait_for_file(vm, qmp_sock, deadline, err)) < 0 ||
	    (rc = wait_for_file(vm, agent_sock, deadline, err)) < 0)
		goto fail;
	if ((rc = qmp_connect(&vm->qmp, qmp_sock, deadline, err)) < 0)
		goto fail;
	vm->qmp_ok = true;
	if ((rc = console_input(vm, console_in, deadline, err)) < 0)
		goto fail;
	if (spec->incoming && (rc = resume(vm, &up, deadline, err)) < 0)
		goto fail;
	unpack_release(&up);
	if ((rc = agent_connect(&vm->agent, agent_sock, vm->pidfd, deadline, err)) < 0)
		goto fail;
	if (spec->incoming && (rc = vm_resync(vm, deadline, err)) < 0)
		goto fail;
	return 0;
fail:
	unpack_release(&up);
	{
		char why[300] = "";
		char *tail;
		/* only a QEMU that ended by itself explains anything */
		if (vm_exited(vm))
			vm_exit_reason(vm, why, sizeof(why));
		vm_shutdown(vm); /* reaps; keeps the console for the message */
		tail = vm_console_tail(vm->console_path, 4096);
		if (rc != -EPROTONOSUPPORT && err) {
			char msg[PV_ERR_MSG_MAX];
			snprintf(msg, sizeof(msg), "%s", err->msg);
			pv_err_set(err, rc, SIZE_MAX, "boot failed: %s%s%s", msg, why[0] ? "; " : "", why);
		}
		if (err && tail && *tail) {
			/* the console goes into the message: it is what explains a boot failure */
			size_t have = strlen(err->msg);
			const char *t = tail + (strlen(tail) > PV_ERR_MSG_MAX - have - 40 ? strlen(tail) - (PV_ERR_MSG_MAX - have - 40) : 0);
			snprintf(err->msg + have, PV_ERR_MSG_MAX - have, "\nconsole (last lines):\n%s", t);
		}
		free(tail);
		sys_rm_tree(vm->dir, NULL, 0);
	}
	return rc;
}

int vm_hotplug_disk(struct vm *vm, unsigned k, unsigned port, const struct vm_disk *d, uint64_t deadline,
		    struct pv_err *err)
{
	char node[16], dev[16], bus[16];
	snprintf(node, sizeof(node), "disk%u", k);
	snprintf(dev, sizeof(dev), "vd%u", k);
	snprintf(bus, sizeof(bus), "hp%u", port);
	json_t *bd = d->nbd ? json_pack("{s:s, s:s, s:{s:s, s:s}}", "driver", "nbd", "node-name", node, "server", "type",
					"unix", "path", d->nbd)
			    : json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "driver", d->format, "node-name", node, "read-only",
					d->readonly, "file", "driver", "file", "filename", d->path);
	if (!bd)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	int rc = qmp_exec(&vm->qmp, "blockdev-add", bd, NULL, deadline, err);
	if (rc < 0)
		return rc;
	json_t *da = d->scsi ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s}", "driver", "scsi-hd",
					 "drive", node, "id", dev, "serial", d->serial, "bus", "scsi0.0", "channel", 0,
					 "scsi-id", (int)d->index, "lun", 0, "write-cache", "on", "werror", "report", "rerror",
					 "report")
			     : json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "driver", "virtio-blk-pci", "drive",
					 node, "id", dev, "serial", d->serial, "bus", bus, "write-cache", "on", "werror", "report",
					 "rerror", "report", "iothread", "io0");
	if (!da || (rc = qmp_exec(&vm->qmp, "device_add", da, NULL, deadline, err)) < 0) {
		struct pv_err e2;
		qmp_exec(&vm->qmp, "blockdev-del", json_pack("{s:s}", "node-name", node), NULL, deadline, &e2);
		return da ? rc : pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	}
	return 0;
}

int vm_unplug_disk_start(struct vm *vm, unsigned k, struct pv_err *err)
{
	char dev[16];
	snprintf(dev, sizeof(dev), "vd%u", k);
	return qmp_exec(&vm->qmp, "device_del", json_pack("{s:s}", "id", dev), NULL, pv_mono_ns() + 10000000000ull, err);
}

int vm_unplug_disk_done(struct vm *vm, unsigned k, struct pv_err *err)
{
	char dev[16], node[16];
	json_t *ret = NULL, *e;
	size_t i;
	snprintf(dev, sizeof(dev), "vd%u", k);
	snprintf(node, sizeof(node), "disk%u", k);
	if (qmp_exec(&vm->qmp, "qom-list", json_pack("{s:s}", "path", "/machine/peripheral"), &ret,
		     pv_mono_ns() + 10000000000ull, err) < 0)
		return -EIO;
	json_array_foreach(ret, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));
		if (n && !strcmp(n, dev)) {
			json_decref(ret);
			return 0;
		}
	}
	json_decref(ret);
	int rc = qmp_exec(&vm->qmp, "blockdev-del", json_pack("{s:s}", "node-name", node), NULL,
			  pv_mono_ns() + 10000000000ull, err);
	if (rc < 0 && strstr(err->msg, "in use"))
		return 0; /* the device is gone from the tree, not yet from the node */
	return rc < 0 ? -EIO : 1;
}

int vm_set_link(struct vm *vm, unsigned nic, bool up, struct pv_err *err)
{
	char id[16];
	snprintf(id, sizeof(id), "nic%u", nic);
	return qmp_exec(&vm->qmp, "set_link", json_pack("{s:s,s:b}", "name", id, "up", up), NULL,
			pv_mono_ns() + 10000000000ull, err);
}

int vm_qmp_simple(struct vm *vm, const char *cmd, struct pv_err *err)
{
	return qmp_exec(&vm->qmp, cmd, NULL, NULL, pv_mono_ns() + 10000000000ull, err);
}

int vm_reset(struct vm *vm, uint64_t deadline, struct pv_err *err)
{
	unsigned seen = vm->agent.hellos;
	uint64_t qdl = pv_mono_ns() + 10000000000ull;
	/* QEMU runs with -no-reboot (a guest's reboot or panic ends it), which
	 * turns a reset into a shutdown too: reboots reset until the guest is
	 * back. Not just for the request: the firmware (SeaBIOS) answers a warm
	 * start with a reset of its own, ~50 ms later, which would end QEMU. */
	int rc = qmp_exec(&vm->qmp, "set-action", json_pack("{s:s}", "reboot", "reset"), NULL, qdl, err);
	if (rc == 0)
		rc = qmp_exec(&vm->qmp, "system_reset", NULL, NULL, qdl, err);
	/* the same connection: the rebooted guest's agent says hello on it */
	while (rc == 0 && vm->agent.hellos == seen) {
		rc = agent_pump(&vm->agent, deadline, err);
		if (rc == -ETIMEDOUT)
			rc = pv_err_set(err, -ETIMEDOUT, SIZE_MAX, "the guest did not come back after the reset: its agent "
					"did not say hello before the boot timeout");
	}
	struct pv_err e2;
	int rc2 = qmp_exec(&vm->qmp, "set-action", json_pack("{s:s}", "reboot", "shutdown"), NULL,
			   pv_mono_ns() + 10000000000ull, &e2);
	if (rc < 0)
		return rc;
	if (rc2 < 0)
		return pv_err_set(err, rc2, SIZE_MAX, "%s", e2.msg);
	if (vm->agent.hello_version != PV_WIRE_VERSION)
		return pv_err_set(err, -EPROTONOSUPPORT, SIZE_MAX, "after the reset the guest agent speaks protocol "
				  "version %lld, this provium %d", (long long)vm->agent.hello_version, PV_WIRE_VERSION);
	vm->started = pv_mono_ns();
	return 0;
}

bool vm_exited(struct vm *vm)
{
	int st;
	if (vm->reaped)
		return true;
	if (vm->pid <= 0)
		return true;
	if (waitpid(vm->pid, &st, WNOHANG) == vm->pid) {
		vm->reaped = true;
		vm->exit_status = st;
		return true;
	}
	return false;
}

void vm_exit_reason(struct vm *vm, char *buf, size_t len)
{
	int st = vm->exit_status;
	buf[0] = 0;
	if (!vm->reaped)
		return;
	if (WIFSIGNALED(st))
		snprintf(buf, len, "QEMU was killed by signal %d (SIG%s)", WTERMSIG(st), sigabbrev_np(WTERMSIG(st)) ?: "?");
	else if (WIFEXITED(st) && WEXITSTATUS(st) != 0) {
		char log[300], *q;
		snprintf(log, sizeof(log), "%s/qemu.log", vm->dir);
		q = read_small(log, 200);
		if (q)
			for (char *c = q; *c; c++)
				if (*c == '\n')
					*c = ' ';
		snprintf(buf, len, "QEMU exited with status %d%s%s", WEXITSTATUS(st), q && *q ? ": " : "", q ? q : "");
		free(q);
	} else if (WIFEXITED(st))
		snprintf(buf, len, "the guest powered off or the kernel panicked (QEMU exited)");
}

void vm_kill(struct vm *vm)
{
	if (vm->pid > 0 && !vm->reaped) {
		int st;
		kill(vm->pid, SIGKILL);
		while (waitpid(vm->pid, &st, 0) < 0 && errno == EINTR)
			;
		vm->reaped = true;
		vm->exit_status = st;
	}
}

void vm_shutdown(struct vm *vm)
{
	if (vm->pid > 0 && !vm->reaped) {
		if (vm->qmp_ok) {
			struct pv_err e;
			qmp_exec(&vm->qmp, "quit", NULL, NULL, pv_mono_ns() + 2000000000ull, &e);
		}
		struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };
		if (vm->pidfd < 0 || poll(&p, 1, 3000) <= 0)
			kill(vm->pid, SIGKILL);
		int st;
		while (waitpid(vm->pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!vm->reaped) {
			vm->reaped = true;
			vm->exit_status = st;
		}
	}
	if (vm->qmp_ok) {
		qmp_close(&vm->qmp);
		vm->qmp_ok = false;
	}
	agent_close(&vm->agent);
	if (vm->console_in >= 0) {
		close(vm->console_in);
		vm->console_in = -1;
	}
	if (vm->pidfd >= 0) {
		close(vm->pidfd);
		vm->pidfd = -1;
	}
}

void vm_image_dir(char *out, size_t len)
{
	sys_user_dir(out, len, "PROVIUM_IMAGE_DIR", "XDG_DATA_HOME", ".local/share", "provium/images");
}

bool vm_image_has_vmgenid(const char *kernel)
{
	char path[4200];
	const char *slash = strrchr(kernel, '/');
	json_t *m, *f;
	bool yes;
	snprintf(path, sizeof(path), "%.*s/manifest.json", slash ? (int)(slash - kernel) : 1, slash ? kernel : ".");
	m = json_load_file(path, 0, NULL);
	f = json_object_get(json_object_get(m, "kernel_features"), "vmgenid");
	yes = json_is_true(f);
	json_decref(m);
	return yes;
}

int vm_builtin_image(char *kernel, char *initrd, struct pv_err *err)
{
	char dir[3000], cur[3100], *name;
	vm_image_dir(dir, sizeof(dir));
	snprintf(cur, sizeof(cur), "%s/linux.current", dir);
	name = read_small(cur, 200);
	if (!name || !*name) {
		free(name);
		return pv_err_set(err, -ENOENT, SIZE_MAX,
				  "the built-in linux image is not built (no %s); run scripts/setup or scripts/build-image",
				  cur);
	}
	name[strcspn(name, "\n")] = 0;
	snprintf(kernel, 4096, "%s/%s/vmlinuz", dir, name);
	snprintf(initrd, 4096, "%s/%s/initrd", dir, name);
	free(name);
	return 0;
}

bool vm_kvm_usable(const char *kernel, const char *initrd, char *notice, size_t notice_len)
{
	char cache[4096], key[512];
	const char *c = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	struct utsname u;
	struct stat st;
	char *cached;
	bool ok = false;
	int fd;

	if (notice_len)
		notice[0] = 0;
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (notice_len)
			snprintf(notice, notice_len, "no usable /dev/kvm (%s): guests run under TCG, much slower", strerror(errno));
		return false;
	}
	close(fd);
	uname(&u);
	memset(&st, 0, sizeof(st));
	{
		/* identify QEMU by its binary: a version check costs a process */
		char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL, *save = NULL;
		for (char *d = path ? strtok_r(path, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", d, qemu_binary());
			if (stat(p, &st) == 0)
				break;
		}
		free(path);
	}
	snprintf(key, sizeof(key), "accel-%s-%lld-%lld", u.release, (long long)st.st_size, (long long)st.st_mtime);
	if (c && *c)
		snprintf(cache, sizeof(cache), "%s/provium", c);
	else
		snprintf(cache, sizeof(cache), "%s/.cache/provium", h ? h : "/root");
	for (char *p = cache + 1; *p; p++) /* mkdir -p */
		if (*p == '/') {
			*p = 0;
			mkdir(cache, 0700);
			*p = '/';
		}
	mkdir(cache, 0700);
	strncat(cache, "/", sizeof(cache) - strlen(cache) - 1);
	strncat(cache, key, sizeof(cache) - strlen(cache) - 1);
	cached = read_small(cache, 16);
	if (cached) {
		ok = strncmp(cached, "kvm", 3) == 0;
		free(cached);
		return ok;
	}
	{
		struct vm probe;
		struct vm_spec spec = { kernel, initrd, NULL, 128ull << 20, 1, true, 20000000000ull, NULL, NULL, false, NULL, 0, NULL, NULL, 0, 0, false, NULL, 0, NULL };
		struct pv_err e;
		ok = vm_boot(&probe, &spec, &e) == 0;
		if (ok) {
			vm_shutdown(&probe);
			sys_rm_tree(probe.dir, NULL, 0);
		}
	}
	{
		FILE *f = fopen(cache, "we");
		if (f) {
			fputs(ok ? "kvm\n" : "tcg\n", f);
			fclose(f);
		}
	}
	if (!ok && notice_len)
		snprintf(notice, notice_len,
			 "/dev/kvm is present but a probe guest does not boot under it; using TCG (much slower). "
			 "Cached in %s", cache);
	return ok;
}

int vm_console_write(struct vm *vm, const void *data, size_t len, uint64_t stall_ns, uint64_t deadline,
		     size_t *ret_done, struct pv_err *err)
{
	const char *p = data;
	size_t done = 0;
	int rc = 0;
	uint64_t last = pv_mono_ns(); /* when a byte last went in */
	if (vm->console_in < 0)
		rc = pv_err_set(err, -EBADF, SIZE_MAX, "the console has no input: QEMU is not running");
	while (rc == 0 && done < len) {
		ssize_t n = write(vm->console_in, p + done, len - done); /* non-blocking: what fits */
		if (n > 0) {
			done += (size_t)n;
			last = pv_mono_ns();
			continue;
		}
		if (errno != EAGAIN && errno != EINTR) {
			rc = pv_err_set(err, -errno, SIZE_MAX, "console input: %s", strerror(errno));
			break;
		}
		uint64_t now = pv_mono_ns(), until = last + stall_ns;
		if (deadline && deadline < until)
			until = deadline;
		if (now >= until) {
			rc = pv_err_set(err, -ETIMEDOUT, SIZE_MAX, "%zu of %zu bytes went in, then none for %.1f s", done,
					len, (double)(now - last) / 1e9);
			break;
		}
		/* and the pidfd: a QEMU that exited reads nothing more */
		struct pollfd f[2] = { { .fd = vm->console_in, .events = POLLOUT }, { .fd = vm->pidfd, .events = POLLIN } };
		if (poll(f, vm->pidfd >= 0 ? 2 : 1, (int)((until - now) / 1000000u) + 1) < 0 && errno != EINTR)
			rc = pv_err_set(err, -errno, SIZE_MAX, "poll: %s", strerror(errno));
		else if (f[1].revents && vm_exited(vm))
			rc = pv_err_set(err, -ECHILD, SIZE_MAX, "QEMU exited after %zu of %zu bytes", done, len);
	}
	if (ret_done)
		*ret_done = done;
	return rc;
}

void vm_remove_dir(struct vm *vm)
{
	sys_rm_tree(vm->dir, NULL, 0);
}

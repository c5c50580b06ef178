/* VM benchmark: provium's QEMU backend + agent client against raw QEMU driven
 * by a minimal client, same kernel, initrd, machine and agent, in one run.
 *
 *   boot:  spawn -> first answered op. raw: fork/exec QEMU, connect to the
 *          chardev, read the hello frame, send one ping. provium: vm_boot()
 *          (scratch dir, QMP, handshake checks) + one agent_call ping.
 *   rtt:   ping round trips over the same kind of connection.
 *   4 VMs: wall time to boot four VMs at once (one process each) vs one.
 *
 * Prints ratios provium/raw (targets: boot <= 1.10x, rtt <= 2.0x).
 * Usage: vm_bench [--quick] (needs the built-in image: scripts/build-image).
 *
 * vm_bench --raw-restore FILE [--rounds N] [--op exec|ping]: the baseline of
 * bench/fixture_bench.sh. FILE is an uncompressed QEMU migration stream (a
 * decompressed fixture snapshot of a built-in 'linux' VM: 256 MiB, 1 cpu,
 * TCG). Each round starts raw QEMU with provium's argv (src/vm/vm.c, same
 * machine, devices, kernel, initrd, cmdline, memory, cpus) and -incoming
 * defer, and a minimal client: QMP migrate-incoming "exec:cat FILE" (QEMU
 * reads the file itself), the MIGRATION "completed" event, cont (the stream
 * comes from a stopped VM, so QEMU does not autostart it), then the agent
 * socket: hello, one op, its answer. The op is exec {cmd = "true"} (what
 * vm:run("true") sends) or ping. Times spawn -> answered op; prints one line
 * per round, then "raw_restore_median_ns=N loaded_median_ns=N
 * hello_median_ns=N rounds=N". --provium-zst ZST: each round also times
 * provium's own restore path (vm_boot from the compressed ZST, then the
 * same op through agent_call; no runner, no Lua), the two sides alternating
 * (--provium-first: provium's goes first in round 1), and prints
 * "pv_restore_median_ns=N pv_hello_median_ns=N rounds=N". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "vm.h"
#include "wire.h"

static char kernel[4096], initrd[4096];

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* ---- raw ---------------------------------------------------------------------- */

struct raw {
	pid_t pid;
	int fd;
	char dir[64];
	struct frame_dec dec;
};

/* {"id": 1, "op": "ping"}; the length is filled in by main() */
static uint8_t ping_frame[] = { 0, 0, 0, 0, 0x82, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g' };

static void raw_read_frame(struct raw *r)
{
	const uint8_t *b;
	uint32_t n;
	while (frame_dec_next(&r->dec, &b, &n, NULL, NULL) != 1)
		if (frame_dec_read_fd(&r->dec, r->fd) <= 0) {
			fprintf(stderr, "vm_bench: raw guest connection lost\n");
			exit(1);
		}
}

static void raw_boot(struct raw *r)
{
	char sock[128], chardev[200], serial[128];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(r->dir, "/tmp/pvbench-XXXXXX");
	if (!mkdtemp(r->dir))
		exit(1);
	snprintf(sock, sizeof(sock), "%s/a.sock", r->dir);
	snprintf(chardev, sizeof(chardev), "socket,id=ag,path=%s,server=on,wait=off", sock);
	snprintf(serial, sizeof(serial), "file:%s/console.log", r->dir);
	r->pid = fork();
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", "256M", "-smp", "1",
		       "-nodefaults", "-no-user-config", "-display", "none", "-M", "q35",
		       "-device", "virtio-serial-pci", "-chardev", chardev, "-device",
		       "virtserialport,chardev=ag,name=" PV_WIRE_PORT_NAME, "-serial", serial, "-kernel", kernel, "-initrd",
		       initrd, "-append", "console=ttyS0 quiet panic=-1 edd=off init_on_free=1", "-no-reboot", (char *)NULL);
		_exit(127);
	}
	strcpy(sa.sun_path, sock);
	for (;;) {
		r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(r->fd);
		usleep(1000); /* the baseline: as simple as a script would be */
	}
	frame_dec_init(&r->dec);
	raw_read_frame(r); /* hello */
	pv_write_all(r->fd, ping_frame, sizeof(ping_frame));
	raw_read_frame(r);
}

static void raw_stop(struct raw *r)
{
	kill(r->pid, SIGKILL);
	waitpid(r->pid, NULL, 0);
	close(r->fd);
	frame_dec_release(&r->dec);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "vm_bench: could not remove %s\n", r->dir);
}

/* ---- provium --------------------------------------------------------------------- */

static void pv_boot(struct vm *v)
{
	struct vm_spec spec = { kernel, initrd, NULL, 256ull << 20, 1, false, 120000000000ull, NULL, NULL, false, NULL, 0, NULL, NULL, 0, 0, false, NULL, 0, NULL };
	struct pv_err err;
	if (vm_boot(v, &spec, &err) < 0) {
		fprintf(stderr, "vm_bench: %s\n", err.msg);
		exit(1);
	}
	agent_begin(&v->agent, "ping", 0);
	if (agent_call(&v->agent, pv_mono_ns() + 10000000000ull, NULL, &err) < 0) {
		fprintf(stderr, "vm_bench: ping: %s\n", err.msg);
		exit(1);
	}
}

static uint64_t boot_n_at_once(int n, bool use_provium)
{
	uint64_t t0 = pv_mono_ns();
	int p[2];
	if (pipe(p) < 0)
		exit(1);
	for (int i = 0; i < n; i++) {
		if (fork() == 0) {
			if (use_provium) {
				struct vm v;
				pv_boot(&v);
				if (write(p[1], "x", 1) != 1)
					_exit(1);
				char c;
				(void)!read(p[0], &c, 0);
				vm_shutdown(&v);
				vm_remove_dir(&v);
			} else {
				struct raw r;
				raw_boot(&r);
				if (write(p[1], "x", 1) != 1)
					_exit(1);
				raw_stop(&r);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		char c;
		if (read(p[0], &c, 1) != 1)
			exit(1);
	}
	uint64_t t = pv_mono_ns() - t0;
	while (wait(NULL) > 0)
		;
	close(p[0]);
	close(p[1]);
	return t;
}

/* ---- raw restore ------------------------------------------------------------------- */

/* The kernel command line provium gives a VM of the built-in profile: vm.c's
 * fixed part, then lsnap.c's "<profile cmdline> <$PROVIUM_GUEST_CMDLINE>"
 * (the built-in profile has none, so that part is " " by default). */
static void provium_append(char *out, size_t len)
{
	const char *extra = getenv("PROVIUM_GUEST_CMDLINE");
	snprintf(out, len, "console=ttyS0 quiet panic=-1 edd=off init_on_free=1 %s %s", "", extra ? extra : "");
}

/* {"id": 1, "op": "exec", "cmd": "true"} or {"id": 1, "op": "ping"} */
static size_t op_frame(uint8_t *b, bool exec)
{
	static const uint8_t exec_body[] = { 0x83, 0xa2, 'i', 'd', 0x01, 0xa2, 'o', 'p', 0xa4, 'e', 'x', 'e', 'c',
					     0xa3, 'c', 'm', 'd', 0xa4, 't', 'r', 'u', 'e' };
	size_t n = exec ? sizeof(exec_body) : sizeof(ping_frame) - FRAME_HDR_LEN;
	memcpy(b + FRAME_HDR_LEN, exec ? exec_body : ping_frame + FRAME_HDR_LEN, n);
	frame_put_len(b, (uint32_t)n);
	return n + FRAME_HDR_LEN;
}

struct restore_times {
	/* ns after the fork */
	uint64_t qmp, loaded, agent, hello, answer;
};

struct rrun {
	struct raw r;
	int qfd;
	char qbuf[65536];
	size_t qlen;
	uint64_t deadline;
};

static void die_restore(struct rrun *x, const char *what)
{
	char log[128];
	fprintf(stderr, "vm_bench: raw restore: %s\n", what);
	snprintf(log, sizeof(log), "%s/qemu.log", x->r.dir);
	char *q = vm_console_tail(log, 2000);
	if (q && *q)
		fprintf(stderr, "qemu.log:\n%s\n", q);
	free(q);
	if (x->r.pid > 0) {
		kill(x->r.pid, SIGKILL);
		waitpid(x->r.pid, NULL, 0);
	}
	snprintf(log, sizeof(log), "rm -rf %s", x->r.dir);
	if (system(log) != 0)
		fprintf(stderr, "vm_bench: could not remove %s\n", x->r.dir);
	exit(1);
}

/* Waits until fd is readable; QEMU's exit or the deadline end the run. */
static void restore_wait(struct rrun *x, int fd)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (pv_mono_ns() >= x->deadline)
			die_restore(x, "timed out");
		if (poll(&p, 1, 100) > 0)
			return;
		if (waitpid(x->r.pid, NULL, WNOHANG) == x->r.pid) {
			x->r.pid = -1;
			die_restore(x, "QEMU exited");
		}
	}
}

/* Connects to a unix socket QEMU creates, retrying every millisecond. */
static int restore_connect(struct rrun *x, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if (pv_mono_ns() >= x->deadline)
			die_restore(x, "QEMU's socket never accepted a connection");
		if (waitpid(x->r.pid, NULL, WNOHANG) == x->r.pid) {
			x->r.pid = -1;
			die_restore(x, "QEMU exited");
		}
		usleep(1000);
	}
}

/* The next QMP line (greeting, return, error or event), NUL-terminated in
 * x->qbuf; the previous one is dropped first. */
static char *qmp_line(struct rrun *x)
{
	char *nl;
	while (!(nl = memchr(x->qbuf, '\n', x->qlen))) {
		if (x->qlen >= sizeof(x->qbuf) - 1)
			die_restore(x, "QMP line too long");
		restore_wait(x, x->qfd);
		ssize_t n = read(x->qfd, x->qbuf + x->qlen, sizeof(x->qbuf) - 1 - x->qlen);
		if (n <= 0)
			die_restore(x, "QMP connection closed");
		x->qlen += (size_t)n;
	}
	*nl = 0;
	return x->qbuf;
}

static void qmp_next(struct rrun *x)
{
	char *nl = memchr(x->qbuf, 0, x->qlen);
	size_t used = nl ? (size_t)(nl - x->qbuf) + 1 : 0;
	memmove(x->qbuf, x->qbuf + used, x->qlen - used);
	x->qlen -= used;
}

/* Sends one command and waits for its return (events on the way are kept
 * in mind only for the migration's end). */
static void qmp_cmd(struct rrun *x, const char *json, bool *completed)
{
	if (pv_write_all(x->qfd, json, strlen(json)) < 0)
		die_restore(x, "QMP write failed");
	for (;;) {
		char *l = qmp_line(x);
		if (strstr(l, "\"error\"")) {
			fprintf(stderr, "vm_bench: QMP: %s -> %s\n", json, l);
			die_restore(x, "a QMP command failed");
		}
		if (completed && strstr(l, "\"MIGRATION\"") && strstr(l, "\"completed\""))
			*completed = true;
		bool ret = strncmp(l, "{\"return\"", 9) == 0;
		qmp_next(x);
		if (ret)
			return;
	}
}

static void raw_restore(const char *file, bool exec, struct restore_times *t)
{
	char sock[128], qsock[128], chardev[200], qmp[200], serial[128], append[2048], log[128], cmd[4400];
	struct rrun xx = { .qlen = 0 }, *x = &xx;
	struct raw *r = &x->r;
	uint8_t frame[64];
	bool completed = false;
	uint64_t t0;

	strcpy(r->dir, "/tmp/pvbench-XXXXXX");
	if (!mkdtemp(r->dir))
		exit(1);
	snprintf(sock, sizeof(sock), "%s/agent.sock", r->dir);
	snprintf(qsock, sizeof(qsock), "%s/qmp.sock", r->dir);
	snprintf(chardev, sizeof(chardev), "socket,id=ag,path=%s,server=on,wait=off", sock);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", qsock);
	snprintf(serial, sizeof(serial), "file:%s/console.log", r->dir);
	snprintf(log, sizeof(log), "%s/qemu.log", r->dir);
	provium_append(append, sizeof(append));
	t0 = pv_mono_ns();
	x->deadline = t0 + 120000000000ull;
	r->pid = fork();
	if (r->pid == 0) {
		int null = open("/dev/null", O_RDWR), lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(null, 0);
		dup2(lf, 1);
		dup2(lf, 2);
		/* src/vm/vm.c's argv for a built-in profile VM under TCG, with
		 * -incoming defer as for a resume */
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-accel", "tcg", "-cpu", "qemu64", "-m", "256M", "-smp", "1",
		       "-nodefaults", "-no-user-config", "-display", "none", "-M", "q35", "-device", "virtio-serial-pci",
		       "-chardev", chardev, "-device", "virtserialport,chardev=ag,name=" PV_WIRE_PORT_NAME, "-qmp", qmp,
		       "-serial", serial, "-kernel", kernel, "-initrd", initrd, "-append", append, "-no-reboot", "-incoming",
		       "defer", (char *)NULL);
		_exit(127);
	}
	/* The snapshot was taken of a stopped VM (vm_snapshot stops it first),
	 * and QEMU restores the source's run state: an incoming stream leaves
	 * this VM paused whatever -S says, so the client needs QMP for "cont".
	 * With QMP at hand, the stream is started by migrate-incoming and its
	 * end comes as a MIGRATION event (no polling). QEMU reads the file
	 * itself (exec:cat), uncompressed. */
	x->qfd = restore_connect(x, qsock);
	qmp_line(x); /* greeting */
	qmp_next(x);
	qmp_cmd(x, "{\"execute\":\"qmp_capabilities\"}\n", NULL);
	t->qmp = pv_mono_ns() - t0;
	qmp_cmd(x, "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":"
		   "[{\"capability\":\"events\",\"state\":true}]}}\n", NULL);
	snprintf(cmd, sizeof(cmd), "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"exec:cat %s\"}}\n", file);
	qmp_cmd(x, cmd, &completed);
	while (!completed) {
		char *l = qmp_line(x);
		if (strstr(l, "\"MIGRATION\"") && strstr(l, "\"failed\""))
			die_restore(x, "the incoming migration failed");
		completed = strstr(l, "\"MIGRATION\"") && strstr(l, "\"completed\"");
		qmp_next(x);
	}
	t->loaded = pv_mono_ns() - t0;
	qmp_cmd(x, "{\"execute\":\"cont\"}\n", NULL);
	/* as provium: connect to the agent once the guest runs, wait for its
	 * hello (it greets every new host connection), then the first op */
	r->fd = restore_connect(x, sock);
	t->agent = pv_mono_ns() - t0;
	frame_dec_init(&r->dec);
	for (;;) {
		const uint8_t *b;
		uint32_t n;
		if (frame_dec_next(&r->dec, &b, &n, NULL, NULL) == 1)
			break;
		restore_wait(x, r->fd);
		if (frame_dec_read_fd(&r->dec, r->fd) <= 0)
			die_restore(x, "the agent connection closed");
	}
	t->hello = pv_mono_ns() - t0;
	pv_write_all(r->fd, frame, op_frame(frame, exec));
	for (;;) {
		const uint8_t *b;
		uint32_t n;
		struct ctl_msg m;
		struct pv_err err;
		int64_t id;
		bool ok = false;
		if (frame_dec_next(&r->dec, &b, &n, NULL, NULL) != 1) {
			restore_wait(x, r->fd);
			if (frame_dec_read_fd(&r->dec, r->fd) <= 0)
				die_restore(x, "the agent connection closed");
			continue;
		}
		if (ctl_parse_any(b, n, &m, &err) < 0)
			die_restore(x, "the agent sent a malformed frame");
		if (!ctl_get_int(&m, "id", &id))
			continue; /* another hello */
		if (!ctl_get_bool(&m, "ok", &ok) || !ok)
			die_restore(x, "the first op failed in the guest");
		break;
	}
	t->answer = pv_mono_ns() - t0;
	close(x->qfd);
	raw_stop(r);
}

/* provium's own restore path without the runner: vm_boot() with spec.incoming
 * (QMP getfd + migrate-incoming fd, zstd decompression into the pipe,
 * query-status polling, cont, agent hello), then one op by agent_call(). */
static void pv_restore(const char *zst, bool exec, struct restore_times *t)
{
	char cmdline[2048];
	const char *extra = getenv("PROVIUM_GUEST_CMDLINE");
	struct pv_err err;
	struct vm v;
	uint64_t t0 = pv_mono_ns();

	snprintf(cmdline, sizeof(cmdline), "%s %s", "", extra ? extra : ""); /* as lsnap.c */
	struct vm_spec spec = { kernel, initrd, cmdline, 256ull << 20, 1, false, 120000000000ull, zst, NULL, false, NULL, 0, NULL, NULL, 0, 0, false, NULL, 0, NULL };
	memset(t, 0, sizeof(*t));
	if (vm_boot(&v, &spec, &err) < 0) {
		fprintf(stderr, "vm_bench: provium restore: %s\n", err.msg);
		exit(1);
	}
	t->hello = pv_mono_ns() - t0;
	msgpack_packer *pk = agent_begin(&v.agent, exec ? "exec" : "ping", exec ? 1 : 0);
	if (exec) {
		msgpack_pack_str_with_body(pk, "cmd", 3);
		msgpack_pack_str_with_body(pk, "true", 4);
	}
	if (agent_call(&v.agent, pv_mono_ns() + 60000000000ull, NULL, &err) < 0) {
		fprintf(stderr, "vm_bench: provium restore: first op: %s\n", err.msg);
		exit(1);
	}
	t->answer = pv_mono_ns() - t0;
	vm_shutdown(&v);
	vm_remove_dir(&v);
}

/* zst (may be NULL): also time pv_restore() from it, alternating with raw
 * (raw first in odd rounds, or in even ones with pv_first) */
static int raw_restore_main(const char *file, const char *zst, int rounds, bool exec, bool pv_first)
{
	uint64_t v[64], h[64], l[64], pv[64], ph[64];
	struct restore_times t;
	if (access(file, R_OK) != 0 || (zst && access(zst, R_OK) != 0)) {
		fprintf(stderr, "vm_bench: %s: %s\n", access(file, R_OK) ? file : zst, strerror(errno));
		return 1;
	}
	if (strpbrk(file, " '\"\\")) {
		fprintf(stderr, "vm_bench: %s: the path goes through a shell (exec:cat); use one without spaces or quotes\n",
			file);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		for (int side = 0; side < (zst ? 2 : 1); side++) {
			bool raw_side = !zst || ((side == 0) == (i % 2 == 0)) != pv_first;
			if (raw_side) {
				raw_restore(file, exec, &t);
				v[i] = t.answer;
				h[i] = t.hello;
				l[i] = t.loaded;
				printf("round %d raw: QMP up %.3f s, stream loaded %.3f s, agent connected %.3f s, hello %.3f s, "
				       "first op (%s) answered %.3f s\n",
				       i + 1, t.qmp / 1e9, t.loaded / 1e9, t.agent / 1e9, t.hello / 1e9,
				       exec ? "exec true" : "ping", t.answer / 1e9);
			} else {
				pv_restore(zst, exec, &t);
				pv[i] = t.answer;
				ph[i] = t.hello;
				printf("round %d provium vm_boot: hello %.3f s, first op (%s) answered %.3f s\n", i + 1,
				       t.hello / 1e9, exec ? "exec true" : "ping", t.answer / 1e9);
			}
			fflush(stdout);
		}
	}
	/* medians of each column on their own */
	printf("raw_restore_median_ns=%llu loaded_median_ns=%llu hello_median_ns=%llu rounds=%d\n",
	       (unsigned long long)median(v, rounds), (unsigned long long)median(l, rounds),
	       (unsigned long long)median(h, rounds), rounds);
	if (zst)
		printf("pv_restore_median_ns=%llu pv_hello_median_ns=%llu rounds=%d\n", (unsigned long long)median(pv, rounds),
		       (unsigned long long)median(ph, rounds), rounds);
	return 0;
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && !strcmp(argv[1], "--quick");
	if (argc > 1 && !strcmp(argv[1], "--raw-restore")) {
		const char *file = argc > 2 ? argv[2] : NULL, *zst = NULL;
		int rounds = 5;
		bool exec = true, pv_first = false;
		struct pv_err err;
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
				rounds = atoi(argv[++i]);
			else if (!strcmp(argv[i], "--provium-zst") && i + 1 < argc)
				zst = argv[++i];
			else if (!strcmp(argv[i], "--provium-first"))
				pv_first = true;
			else if (!strcmp(argv[i], "--op") && i + 1 < argc &&
				 (!strcmp(argv[i + 1], "exec") || !strcmp(argv[i + 1], "ping")))
				exec = !strcmp(argv[++i], "exec");
			else
				file = NULL;
		}
		if (!file || rounds < 1 || rounds > 64) {
			fprintf(stderr, "usage: vm_bench --raw-restore FILE [--rounds N (1..64)] [--op exec|ping]\n"
					"                               [--provium-zst ZST [--provium-first]]\n");
			return 2;
		}
		signal(SIGPIPE, SIG_IGN);
		if (vm_builtin_image(kernel, initrd, &err) < 0) {
			fprintf(stderr, "vm_bench: %s\n", err.msg);
			return 1;
		}
		return raw_restore_main(file, zst, rounds, exec, pv_first);
	}
	int rounds = quick ? 1 : 5, pings = quick ? 50 : 500;
	uint64_t braw[8], bpv[8], rraw[8], rpv[8];
	struct pv_err err;

	signal(SIGPIPE, SIG_IGN);
	frame_put_len(ping_frame, sizeof(ping_frame) - FRAME_HDR_LEN);
	if (vm_builtin_image(kernel, initrd, &err) < 0) {
		fprintf(stderr, "vm_bench: %s\n", err.msg);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		/* alternate which side goes first */
		for (int side = 0; side < 2; side++) {
			bool raw_side = (side == 0) == (i % 2 == 0);
			uint64_t t0 = pv_mono_ns(), t1;
			if (raw_side) {
				struct raw r;
				raw_boot(&r);
				t1 = pv_mono_ns();
				braw[i] = t1 - t0;
				for (int k = 0; k < pings; k++) {
					pv_write_all(r.fd, ping_frame, sizeof(ping_frame));
					raw_read_frame(&r);
				}
				rraw[i] = (pv_mono_ns() - t1) / (uint64_t)pings;
				raw_stop(&r);
			} else {
				struct vm v;
				pv_boot(&v);
				t1 = pv_mono_ns();
				bpv[i] = t1 - t0;
				for (int k = 0; k < pings; k++) {
					agent_begin(&v.agent, "ping", 0);
					if (agent_call(&v.agent, pv_mono_ns() + 10000000000ull, NULL, &err) < 0) {
						fprintf(stderr, "vm_bench: %s\n", err.msg);
						return 1;
					}
				}
				rpv[i] = (pv_mono_ns() - t1) / (uint64_t)pings;
				vm_shutdown(&v);
				vm_remove_dir(&v);
			}
		}
	}
	uint64_t mb_raw = median(braw, rounds), mb_pv = median(bpv, rounds);
	uint64_t mr_raw = median(rraw, rounds), mr_pv = median(rpv, rounds);
	uint64_t one = boot_n_at_once(1, true), four = boot_n_at_once(4, true);
	double boot_ratio = (double)mb_pv / (double)mb_raw, rtt_ratio = (double)mr_pv / (double)mr_raw;

	printf("boot to first op   provium %7.3f s   raw %7.3f s   (median of %d, TCG)\n", mb_pv / 1e9, mb_raw / 1e9,
	       rounds);
	printf("op round trip      provium %7.1f us  raw %7.1f us  (median per ping, %d pings)\n", mr_pv / 1e3,
	       mr_raw / 1e3, pings);
	printf("4 VMs at once      %.3f s vs one %.3f s: %.2fx (2 host cores)\n", four / 1e9, one / 1e9,
	       (double)four / (double)one);
	printf("boot: provium/raw = %.2fx (target <= 1.10x) %s\n", boot_ratio, boot_ratio <= 1.10 ? "OK" : "ABOVE TARGET");
	printf("op round trip: provium/raw = %.2fx (target <= 2.00x) %s\n", rtt_ratio,
	       rtt_ratio <= 2.0 ? "OK" : "ABOVE TARGET");
	return 0;
}

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
 * Usage: vm_bench [--quick] (needs the built-in image: scripts/build-image). */
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
		       initrd, "-append", "console=ttyS0 quiet panic=-1 edd=off", "-no-reboot", (char *)NULL);
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
	struct vm_spec spec = { kernel, initrd, NULL, 256ull << 20, 1, false, 120000000000ull, NULL };
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

int main(int argc, char **argv)
{
	bool quick = argc > 1 && !strcmp(argv[1], "--quick");
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

/* bootfiles.c - files the host put in the initramfs for this boot (the
 * `files` boot option, docs/lua-api.md). The host appends a cpio that holds
 * BOOT_DIR/manifest (one "<octal mode> <path>\n" line per file) and the
 * contents as BOOT_DIR/<n>; at startup, after PID 1 has mounted /tmp and
 * /run (which would hide anything the initramfs put there), each file moves
 * to its path, missing parent directories made 0755 (existing ones keep
 * their modes: a cpio directory entry would chmod them). The `boot_files`
 * op tells the host how that went, so a file that did not land is an error
 * of vm:boot, never a surprise later.
 *
 * The rng_seed boot option arrives as provium.rng_seed=N on the kernel
 * command line (the last one counts: the host puts its own last). At the same
 * point of startup the agent writes it to /run/provium/rng_seed, sets
 * PROVIUM_RNG_SEED in its own environment (every command inherits it) and
 * mixes bytes derived from it into the kernel's pool (uncredited: the kernel
 * RNG stays as unpredictable as before; the seed is for the test's and the
 * guest programs' own PRNGs).
 *
 * Shares (the `share` option of provium:vm) arrive as provium.share=TAG:MODE:PATH
 * words (MODE ro or rw): each virtio-fs export TAG is mounted on PATH (made
 * if missing), read-only for ro, before the agent answers; a failure is
 * logged, and the host, which checks /proc/mounts after the boot, reports it.
 *
 * The `host` profile adds provium.root=TAG: the export TAG (the host's /) is
 * mounted read-only as the lower layer of an overlay whose writes go to a
 * tmpfs, the agent's /proc, /sys, /dev, /run and /tmp move into it, /home
 * gets a tmpfs of its own, and the agent switches its root there (MS_MOVE +
 * chroot), before the shares and the boot files. A Debian profile
 * (docs/images.md) adds provium.rootfs=SERIAL instead: the virtio disk with
 * that serial (squashfs, read-only; provium.rootfstype=TYPE says otherwise,
 * which bench/rootfs_bench.sh uses) is the lower layer, and /home is its own;
 * with provium.init=systemd the agent then installs itself as a systemd unit
 * (run with --guest) and execs systemd, which becomes PID 1.
 *
 * provium.console=shell (what `provium console` adds) starts /bin/sh on
 * ttyS0, the serial console, as the session leader with it as its
 * controlling terminal (^C and job control work), once, after the root is
 * in place; the agent serves as always. Not under init = systemd: systemd
 * owns the console there. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys.h"
#include "wire.h"

#define BOOT_DIR "/.provium-boot"
#define SEED_KEY "provium.rng_seed="
#define SEED_DIR "/run/provium"
#define SHARE_KEY "provium.share="
#define ROOT_KEY "provium.root="
#define ROOTFS_KEY "provium.rootfs="
#define INIT_KEY "provium.init="
#define FSTYPE_KEY "provium.rootfstype="
#define CONSOLE_KEY "provium.console="
#define AGENT_COPY "/run/provium/agent"

static struct {
	bool found;
	unsigned installed;
	char error[512]; /* the first failure, "" if none */
} bf;

static int make_parents(char *path)
{
	for (char *s = path + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		int rc = mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
		*s = '/';
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int copy_to(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n = 0;
	int in = open(from, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0)
		rc = -errno;
	while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; rc == 0 && off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno != EINTR)
				rc = -errno;
			off += w > 0 ? w : 0;
		}
	if (rc == 0 && n < 0)
		rc = -errno;
	close(in);
	if (out >= 0 && close(out) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int install(unsigned idx, mode_t mode, char *path)
{
	char staged[64];
	int rc;
	snprintf(staged, sizeof(staged), BOOT_DIR "/%u", idx);
	if ((rc = make_parents(path)) < 0)
		return rc;
	/* the same file system (the initramfs) moves; /tmp, /run copy */
	if (rename(staged, path) < 0) {
		if (errno != EXDEV)
			return -errno;
		if ((rc = copy_to(staged, path, mode)) < 0)
			return rc;
		unlink(staged);
	}
	return chmod(path, mode) < 0 ? -errno : 0;
}

/* /proc/cmdline into buf (NUL-terminated): false if it cannot be read. */
static bool read_cmdline(char *buf, size_t len)
{
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, len - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

/* A seed's decimal digits (at most 2^64-1) into *seed: 0, or -1. */
static int parse_seed(const char *d, uint64_t *seed)
{
	uint64_t v = 0;
	size_t len = strlen(d);
	bool ok = len > 0 && len <= 20;
	for (size_t i = 0; ok && i < len; i++) {
		unsigned c = (unsigned)(d[i] - '0');
		ok = c <= 9 && v <= (UINT64_MAX - c) / 10;
		v = v * 10 + c;
	}
	*seed = v;
	return ok ? 0 : -1;
}

/* The value of the last provium.rng_seed= word of /proc/cmdline into
 * out[24] (digits only, at most 2^64-1): 0, or -1 if there is none. */
static int cmdline_seed(char out[24], uint64_t *seed)
{
	char buf[4096];
	int rc = -1;
	if (!read_cmdline(buf, sizeof(buf)))
		return -1;
	for (char *w = strtok(buf, " \t\n"); w; w = strtok(NULL, " \t\n")) {
		if (strncmp(w, SEED_KEY, strlen(SEED_KEY)) != 0)
			continue;
		const char *d = w + strlen(SEED_KEY);
		if (parse_seed(d, seed) < 0) {
			ag_log("ignoring %s: not a decimal number up to 2^64-1", w);
			continue;
		}
		snprintf(out, 24, "%s", d);
		rc = 0;
	}
	return rc;
}

static void seed_apply(const char *s, uint64_t seed)
{
	char line[32];
	if (setenv("PROVIUM_RNG_SEED", s, 1) < 0)
		ag_log("setenv PROVIUM_RNG_SEED: %s", strerror(errno));
	if (mkdir(SEED_DIR, 0755) < 0 && errno != EEXIST)
		ag_log("mkdir " SEED_DIR ": %s", strerror(errno));
	int len = snprintf(line, sizeof(line), "%s\n", s);
	int fd = open(SEED_DIR "/rng_seed", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, line, (size_t)len) != len || fchmod(fd, 0644) < 0)
		ag_log(SEED_DIR "/rng_seed: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	/* 64 bytes of splitmix64 over the seed, written (not credited) to the pool */
	uint64_t mix[8], x = seed;
	for (size_t i = 0; i < 8; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		mix[i] = z ^ (z >> 31);
	}
	fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, mix, sizeof(mix)) != (ssize_t)sizeof(mix))
		ag_log("/dev/urandom: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

int bootfiles_seed_apply(const char *digits)
{
	uint64_t seed;
	if (parse_seed(digits, &seed) < 0)
		return -EINVAL;
	seed_apply(digits, seed);
	return 0;
}

static void rng_seed_setup(void)
{
	char s[24];
	uint64_t seed = 0;
	if (cmdline_seed(s, &seed) == 0)
		seed_apply(s, seed);
}

/* The value of the first KEY... word of /proc/cmdline into out. */
static bool cmdline_word(const char *key, char *out, size_t len)
{
	char buf[4096];
	if (!read_cmdline(buf, sizeof(buf)))
		return false;
	for (char *w = strtok(buf, " \t\n"); w; w = strtok(NULL, " \t\n"))
		if (!strncmp(w, key, strlen(key))) {
			snprintf(out, len, "%s", w + strlen(key));
			return true;
		}
	return false;
}

/* Mounts source (type fstype, read-only) as the lower layer of an overlay
 * whose writes go to a tmpfs, moves the agent's /proc, /sys, /dev, /run and
 * /tmp into it (and a tmpfs on /home when home_tmpfs), and switches root
 * there (MS_MOVE + chroot). */
static int overlay_root(const char *source, const char *fstype, bool home_tmpfs)
{
	static const char *const moved[] = { "/proc", "/sys", "/dev", "/run", "/tmp" };
	const char *lower = "/.host-ro", *rw = "/.host-rw", *root = "/.host-root";
	char dst[64];
	if ((mkdir(lower, 0755) < 0 && errno != EEXIST) || (mkdir(rw, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(root, 0755) < 0 && errno != EEXIST))
		return -errno;
	if (mount(source, lower, fstype, MS_RDONLY, NULL) < 0 || mount("tmpfs", rw, "tmpfs", 0, "mode=0755") < 0)
		return -errno;
	if ((mkdir("/.host-rw/upper", 0755) < 0 && errno != EEXIST) || (mkdir("/.host-rw/work", 0755) < 0 && errno != EEXIST))
		return -errno;
	if (mount("overlay", root, "overlay", 0,
		  "lowerdir=/.host-ro,upperdir=/.host-rw/upper,workdir=/.host-rw/work") < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		snprintf(dst, sizeof(dst), "%s%s", root, moved[i]);
		if ((mkdir(dst, 0755) < 0 && errno != EEXIST) || mount(moved[i], dst, NULL, MS_MOVE, NULL) < 0)
			return -errno;
	}
	snprintf(dst, sizeof(dst), "%s/home", root);
	if (home_tmpfs && ((mkdir(dst, 0755) < 0 && errno != EEXIST) ||
			   mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0))
		return -errno;
	if (chdir(root) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
		return -errno;
	return 0;
}

/* /dev/vdX of the virtio disk whose serial is serial, into out. */
static int find_disk(const char *serial, char *out, size_t len)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int rc = -ENODEV;
	while (d && rc < 0 && (e = readdir(d))) {
		char path[300], buf[64] = "";
		if (strncmp(e->d_name, "vd", 2) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/serial", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			buf[strcspn(buf, "\n")] = 0;
		}
		if (!strcmp(buf, serial)) {
			snprintf(out, len, "/dev/%.50s", e->d_name);
			rc = 0;
		}
	}
	if (d)
		closedir(d);
	return rc;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	size_t len = strlen(text);
	if (fd < 0)
		return -errno;
	int rc = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
	close(fd);
	return rc;
}

/* init = "systemd": the agent becomes a unit (its binary copied to /run, as
 * the initramfs is out of reach now), ordered after multi-user.target so
 * that the host's first op finds the system up; then systemd replaces us as
 * PID 1. Returns only on failure (the agent then serves as PID 1). */
static void exec_systemd(void)
{
	static const char unit[] =
		"[Unit]\n"
		"Description=Provium agent (serves the host's ops)\n"
		"After=multi-user.target\n"
		"[Service]\n"
		"ExecStart=" AGENT_COPY " --guest\n"
		"KillMode=process\n"
		"StandardError=journal+console\n"
		"[Install]\n"
		"WantedBy=multi-user.target\n";
	static const char *const inits[] = { "/lib/systemd/systemd", "/usr/lib/systemd/systemd" };
	int rc = mkdir(SEED_DIR, 0755) == 0 || errno == EEXIST ? 0 : -errno; /* AGENT_COPY's directory */
	if (rc == 0)
		rc = sys_copy_file("/proc/self/exe", AGENT_COPY);
	if (rc == 0 && chmod(AGENT_COPY, 0755) < 0)
		rc = -errno;
	if (rc == 0)
		rc = write_text("/etc/systemd/system/provium-agent.service", unit, 0644);
	if (rc == 0 && mkdir("/etc/systemd/system/multi-user.target.wants", 0755) < 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0 && symlink("/etc/systemd/system/provium-agent.service",
			       "/etc/systemd/system/multi-user.target.wants/provium-agent.service") < 0 &&
	    errno != EEXIST)
		rc = -errno;
	/* the serial console carries the guest's log and the test's console
	 * input: no getty on it */
	if (rc == 0 && symlink("/dev/null", "/etc/systemd/system/serial-getty@ttyS0.service") < 0 && errno != EEXIST)
		rc = -errno;
	if (rc < 0) {
		ag_log("init = systemd: installing the agent's unit: %s; serving as PID 1", strerror(-rc));
		return;
	}
	for (size_t i = 0; i < sizeof(inits) / sizeof(inits[0]); i++) {
		char *argv[] = { (char *)inits[i], NULL };
		execv(inits[i], argv);
	}
	ag_log("init = systemd: cannot run systemd (%s): is systemd-sysv in the image? serving as PID 1",
	       strerror(errno));
}

static void shares_mount(void)
{
	char buf[4096];
	if (!read_cmdline(buf, sizeof(buf)))
		return;
	for (char *w = strtok(buf, " \t\n"); w; w = strtok(NULL, " \t\n")) {
		if (strncmp(w, SHARE_KEY, strlen(SHARE_KEY)) != 0)
			continue;
		char *tag = w + strlen(SHARE_KEY), *mode = strchr(tag, ':'), *path = mode ? strchr(mode + 1, ':') : NULL;
		if (!path || path[1] != '/') {
			ag_log("ignoring %s: not TAG:ro|rw:/PATH", w);
			continue;
		}
		*mode++ = 0;
		*path++ = 0;
		int rc = make_parents(path);
		if (rc == 0 && mkdir(path, 0755) < 0 && errno != EEXIST)
			rc = -errno;
		if (rc == 0 && mount(tag, path, "virtiofs", strcmp(mode, "ro") ? 0 : MS_RDONLY, NULL) < 0)
			rc = -errno;
		if (rc < 0)
			ag_log("share %s: mounting it on %s: %s", tag, path, strerror(-rc));
	}
}

/* provium.console=shell: a shell on the serial console (the header says
 * why). ttyS0 is opened before the fork, so it is open by the time the
 * agent says hello: what the host types from then on waits in the tty for
 * the shell (an 8250 port that is opened later clears its FIFO). */
static void console_shell(void)
{
	char mode[16];
	pid_t pid;
	int fd;
	if (!cmdline_word(CONSOLE_KEY, mode, sizeof(mode)) || strcmp(mode, "shell") != 0)
		return;
	if ((fd = open("/dev/ttyS0", O_RDWR | O_NOCTTY)) < 0) {
		ag_log("console shell: /dev/ttyS0: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0)
		ag_log("console shell: fork: %s", strerror(errno));
	if (pid != 0) {
		close(fd);
		return; /* reaped with every other child (proc_reap) */
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	if (setsid() < 0 || ioctl(fd, TIOCSCTTY, 0) < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
		ag_log("console shell: ttyS0 as its terminal: %s", strerror(errno));
		_exit(127);
	}
	if (fd > 2)
		close(fd);
	setenv("TERM", "vt100", 1);
	setenv("HOME", "/root", 0);
	if (chdir("/root") < 0 && chdir("/") < 0) {
		/* the shell starts wherever it is */
	}
	execl("/bin/sh", "sh", "-i", (char *)NULL);
	ag_log("console shell: /bin/sh: %s", strerror(errno));
	_exit(127);
}

void bootfiles_unit_env(void)
{
	char s[24];
	uint64_t seed;
	if (cmdline_seed(s, &seed) == 0 && setenv("PROVIUM_RNG_SEED", s, 1) < 0)
		ag_log("setenv PROVIUM_RNG_SEED: %s", strerror(errno));
}

void bootfiles_install(void)
{
	char tag[64];
	rng_seed_setup();
	bool rooted = false;
	if (cmdline_word(ROOT_KEY, tag, sizeof(tag))) {
		int rc = overlay_root(tag, "virtiofs", true);
		if (rc < 0)
			ag_log("the host's root (%s): %s", tag, strerror(-rc));
	} else if (cmdline_word(ROOTFS_KEY, tag, sizeof(tag))) {
		char dev[64];
		char fstype[32] = "squashfs"; /* provium.rootfstype=: others, for measuring them */
		cmdline_word(FSTYPE_KEY, fstype, sizeof(fstype));
		int rc = find_disk(tag, dev, sizeof(dev));
		if (rc == 0)
			rc = overlay_root(dev, fstype, false);
		if (rc < 0)
			ag_log("the root file system (the disk with serial %s): %s", tag, strerror(-rc));
		rooted = rc == 0;
	}
	shares_mount();
	if (rooted && cmdline_word(INIT_KEY, tag, sizeof(tag)) && !strcmp(tag, "systemd"))
		exec_systemd();
	console_shell();
	FILE *m = fopen(BOOT_DIR "/manifest", "re");
	char line[4200];
	unsigned idx = 0;
	if (!m)
		return;
	bf.found = true;
	for (; fgets(line, sizeof(line), m); idx++) {
		char *sp = strchr(line, ' '), *nl = strchr(line, '\n');
		if (!sp || !nl || sp[1] != '/') {
			if (!bf.error[0])
				snprintf(bf.error, sizeof(bf.error), "line %u of " BOOT_DIR "/manifest is malformed", idx + 1);
			continue;
		}
		*nl = 0;
		mode_t mode = (mode_t)strtoul(line, NULL, 8) & 07777;
		int rc = install(idx, mode, sp + 1);
		if (rc == 0)
			bf.installed++;
		else if (!bf.error[0])
			snprintf(bf.error, sizeof(bf.error), "%s: %s", sp + 1, strerror(-rc));
	}
	fclose(m);
	unlink(BOOT_DIR "/manifest");
	for (unsigned i = 0; i < idx; i++) {
		char staged[64];
		snprintf(staged, sizeof(staged), BOOT_DIR "/%u", i);
		unlink(staged); /* what failed to install */
	}
	rmdir(BOOT_DIR);
	if (bf.error[0])
		ag_log("boot files: %s", bf.error);
}

void bootfiles_op(struct ag_req *rq)
{
	struct ag_resp r;
	msgpack_packer *pk = ag_resp_begin(&r, rq, bf.error[0] ? 3 : 2);
	ag_pack_key(pk, "found");
	bf.found ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	ag_pack_key(pk, "installed");
	msgpack_pack_uint32(pk, bf.installed);
	if (bf.error[0]) {
		ag_pack_key(pk, "error");
		ag_pack_cstr(pk, bf.error);
	}
	ag_resp_end(&r);
}

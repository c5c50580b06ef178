/* main.c - provium-agent: process setup (PID 1 duties), the port to the host,
 * and the single-threaded poll() event loop.
 *
 * Usage:
 *   provium-agent                 find the virtio-serial port PV_WIRE_PORT_NAME
 *   provium-agent --port PATH     use PATH: a unix socket to connect to, or a
 *                                 character device (a virtio port)
 *   provium-agent --stdio         talk on stdin/stdout (tests); EOF ends it
 *
 * Connections. A virtio-serial port stays open across host connections; the
 * guest learns of them from poll(): POLLHUP (and read() == 0) while no host
 * is connected. On a disconnect the agent drops queued output and half-read
 * input, closes and reopens the port (which discards stale bytes), and while
 * POLLHUP persists it leaves the port out of poll() (it would spin) and
 * re-checks on SIGIO (the driver signals connection changes to an O_ASYNC
 * opener) or every HOST_RECHECK_NS. Each new connection gets a fresh hello and
 * a new generation: answers to requests of an older connection are dropped,
 * because the host numbers requests afresh per connection. Processes keep
 * running across reconnects; spawn handles stay valid.
 *
 * A host that disconnects and reconnects at once may flip the port closed and
 * open again before the agent runs, so it never sees POLLHUP. The driver still
 * raises SIGIO for each change (and for each arriving buffer): a SIGIO with no
 * data to read and no disconnect is taken as a possible reconnect, answered
 * with a hello (when no frame is half written or half read). When the guess
 * is wrong the host just gets an extra hello, which it ignores (it carries no
 * id). Such a reconnect keeps the generation: answers to requests still in
 * flight from the old connection may reach the new one (the host drops ids
 * it is not waiting for). A reconnect right behind a request of the old
 * connection is not seen at all (its SIGIO merges with the request's).
 *
 * --stdio: EOF on stdin (or a closed stdout) writes out the answers already
 * made (for up to 1 s), kills every process group and exits 0. An oversize frame header cannot be resynchronized: the agent
 * answers with an error (id 0), then closes the connection (--stdio: exit 1;
 * a socket: reconnect) or, on a device it cannot close, ignores input until
 * the host reconnects.
 *
 * As PID 1 the agent never exits (that would panic the kernel): fatal errors
 * are logged to /dev/console and it idles, reaping zombies.
 *
 * Over 800 lines: PID 1's whole life (mounts, modules, the port and its
 * reconnects, the loop) reads best in one place; requests, processes, file
 * ops and guest duties are already in wire.c, proc.c, fsops.c, guest.c.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "wire.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif

#define NS_PER_MS 1000000ull
#define PORT_WAIT_NS (10000ull * NS_PER_MS)
#define HOST_RECHECK_NS (200ull * NS_PER_MS)
#define REOPEN_NS (100ull * NS_PER_MS)
#define SOCK_RETRY_NS (100ull * NS_PER_MS)
#define DEFAULT_PATH "/usr/sbin:/usr/bin:/sbin:/bin"
#define MODULES_LIST "/etc/provium/modules"

struct ag_state ag = { .log_fd = -1, .protocol_version = PV_WIRE_VERSION };

/* PORT_PATH is --port: a unix socket or a device, looked at on every (re)open
 * since a socket may not exist yet */
enum port_kind { PORT_VIRTIO, PORT_PATH, PORT_STDIO };

static struct {
	enum port_kind kind;
	char path[PATH_MAX];
	int in_fd, out_fd;  /* the same fd except for stdio; -1 when closed */
	bool discard;       /* after an oversize frame: drop input until a reconnect */
	bool dead;          /* stdio ended while PID 1: nothing left to serve */
	bool failing;       /* (re)open keeps failing: logged once */
	bool async;         /* O_ASYNC set on the device port */
	bool is_sock;       /* PORT_PATH names a unix socket */
	bool ready_logged;
	uint64_t retry_at;  /* reopen / reconnect / re-check the host; 0: none */
	struct frame_dec dec;
} port = { .in_fd = -1, .out_fd = -1 };

static int sig_fd = -1;
static bool chld_late; /* a SIGCHLD drained by read_input, for the loop */

/* A device port (virtio): POLLHUP means no host is connected. */
static bool is_device(void)
{
	return port.kind == PORT_VIRTIO || (port.kind == PORT_PATH && !port.is_sock);
}

static void drain_signals(bool *chld, bool *io)
{
	struct signalfd_siginfo si;
	while (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			*chld = true;
		else if (si.ssi_signo == SIGIO)
			*io = true;
	}
}

/* ---- basics ------------------------------------------------------------------------ */

void ag_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), AG_NAME ": ");

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(buf);
	buf[n++] = '\n';
	/* nowhere to report a failing log write */
	if (write(ag.log_fd >= 0 ? ag.log_fd : 2, buf, (size_t)n) < 0)
		return;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void reap_any(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static __attribute__((noreturn, format(printf, 1, 2))) void fatal(const char *fmt, ...)
{
	char buf[800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ag_log("fatal: %s", buf);
	if (!ag.pid1)
		exit(1);
	/* exiting as PID 1 panics the kernel and buries the message: idle instead */
	for (;;) {
		reap_any();
		sleep_ns(1000ull * NS_PER_MS);
	}
}

/* Moves fd out of 0..2 so it cannot be mistaken for a standard stream. */
static int fd_high(int fd)
{
	int nfd;
	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

/* Fills closed standard fds with /dev/null: the kernel leaves them closed when
 * the initramfs has no /dev/console, and a pipe landing on 0..2 would be
 * clobbered by a child's dup2. */
static void ensure_std_fds(void)
{
	for (int i = 0; i < 3; i++) {
		int fd;
		if (fcntl(i, F_GETFD) >= 0 || errno != EBADF)
			continue;
		fd = open("/dev/null", O_RDWR);
		if (fd < 0) {
			ag_log("open /dev/null: %s", strerror(errno));
			return;
		}
		if (fd != i) {
			/* cannot happen (open takes the lowest free fd), but be exact */
			if (dup2(fd, i) < 0)
				ag_log("dup2: %s", strerror(errno));
			close(fd);
		}
	}
}

/* ---- PID 1 --------------------------------------------------------------------------- */

static void load_modules(void)
{
	char buf[64 * 1024];
	ssize_t n;
	size_t len = 0;
	int fd = open(MODULES_LIST, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno != ENOENT)
			ag_log("open %s: %s", MODULES_LIST, strerror(errno));
		return;
	}
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ag_log("read %s: %s", MODULES_LIST, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		size_t l;
		int mfd, flags = 0;
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		line += strspn(line, " \t\r");
		l = strlen(line);
		while (l && (line[l - 1] == ' ' || line[l - 1] == '\t' || line[l - 1] == '\r'))
			line[--l] = 0;
		if (!l || line[0] == '#')
			continue;
		if (line[0] != '/') {
			ag_log("%s: '%s' is not an absolute path; skipped", MODULES_LIST, line);
			continue;
		}
		mfd = open(line, O_RDONLY | O_CLOEXEC);
		if (mfd < 0) {
			ag_log("module %s: %s", line, strerror(errno));
			continue;
		}
		/* the kernel decompresses .ko.xz/.zst/.gz itself when built to */
		if ((l > 3 && !strcmp(line + l - 3, ".xz")) || (l > 4 && !strcmp(line + l - 4, ".zst")) ||
		    (l > 3 && !strcmp(line + l - 3, ".gz")))
			flags = MODULE_INIT_COMPRESSED_FILE;
		/* EEXIST: built in or loaded already, which is what we wanted */
		if (syscall(SYS_finit_module, mfd, "", flags) < 0 && errno != EEXIST)
			ag_log("module %s: %s", line, strerror(errno));
		close(mfd);
	}
}

static void pid1_setup(void)
{
	static const struct {
		const char *src, *dst, *type;
		unsigned long flags;
		const char *data;
		mode_t mode;
	} mounts[] = {
		{ "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
		{ "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555 },
		{ "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755 },
		{ "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", 0755 },
		{ "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
		{ "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777 },
		{ "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755 },
	};
	static const char *const links[][2] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};

	/* an initramfs may ship a /dev/console node: log mount errors there */
	ag.log_fd = fd_high(open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC));
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		if (mkdir(mounts[i].dst, mounts[i].mode) < 0 && errno != EEXIST)
			ag_log("mkdir %s: %s", mounts[i].dst, strerror(errno));
		/* EBUSY: already mounted (e.g. CONFIG_DEVTMPFS_MOUNT) */
		if (mount(mounts[i].src, mounts[i].dst, mounts[i].type, mounts[i].flags, mounts[i].data) < 0 &&
		    errno != EBUSY)
			ag_log("mount %s on %s: %s", mounts[i].type, mounts[i].dst, strerror(errno));
		if (!strcmp(mounts[i].dst, "/dev") && ag.log_fd < 0)
			ag.log_fd = fd_high(open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC));
	}
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			ag_log("symlink %s: %s", links[i][1], strerror(errno));
	ensure_std_fds();
	if (setenv("PATH", DEFAULT_PATH, 1) < 0)
		ag_log("setenv PATH: %s", strerror(errno));
	load_modules();
	/* a booted system has lo up: a daemon under test listens on 127.0.0.1 */
	int rc = guest_lo_up();
	if (rc < 0)
		ag_log("bringing lo up: %s", strerror(-rc));
}

/* provium.protocol_version=N on the kernel command line (a test hook for the
 * host's mismatch error). PROVIUM_AGENT_CMDLINE names another file to read,
 * so the hook can be tested outside a VM. */
static void read_cmdline(void)
{
	static const char key[] = "provium.protocol_version=";
	const char *path = getenv("PROVIUM_AGENT_CMDLINE");
	char buf[4096];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (!path)
		path = "/proc/cmdline";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ag_log("open %s: %s", path, strerror(errno));
		return;
	}
	while (len < sizeof(buf) - 1 && ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(fd);
	buf[len] = 0;
	for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
		char *end;
		long v;
		if (strncmp(tok, key, sizeof(key) - 1) != 0)
			continue;
		errno = 0;
		v = strtol(tok + sizeof(key) - 1, &end, 10);
		if (errno || *end || end == tok + sizeof(key) - 1 || v < 0 || v > INT_MAX) {
			ag_log("ignoring malformed %s", tok);
			continue;
		}
		ag.protocol_version = (int)v;
		ag_log("announcing protocol version %d (kernel command line)", ag.protocol_version);
	}
}

/* ---- the port ----------------------------------------------------------------------- */

/* /dev/<vportNpM> of the port named PV_WIRE_PORT_NAME; 0 or -ENOENT. */
static int find_virtio_port(char *out, size_t outlen)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int rc = -ENOENT;

	if (!d)
		return -ENOENT;
	while (rc < 0 && (e = readdir(d))) {
		char p[PATH_MAX], name[256];
		ssize_t n;
		int fd;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/class/virtio-ports/%s/name", e->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, name, sizeof(name) - 1);
		close(fd);
		if (n <= 0)
			continue; /* the name arrives from the host after the port appears */
		name[n] = 0;
		name[strcspn(name, "\n")] = 0;
		if (!strcmp(name, PV_WIRE_PORT_NAME)) {
			snprintf(out, outlen, "/dev/%s", e->d_name);
			rc = 0;
		}
	}
	closedir(d);
	return rc;
}

/* Blocks until the virtio port is open: nothing else to do before it is. */
static int open_virtio_port(void)
{
	uint64_t start = sys_mono_ns();
	bool late = false;

	for (;;) {
		if (find_virtio_port(port.path, sizeof(port.path)) == 0) {
			int fd = open(port.path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
			if (fd >= 0)
				return fd;
			/* ENOENT: devtmpfs has not made the node yet */
			if (errno != ENOENT && !late)
				ag_log("open %s: %s", port.path, strerror(errno));
		}
		if (sys_mono_ns() - start < PORT_WAIT_NS) {
			sleep_ns(10 * NS_PER_MS);
			continue;
		}
		if (!ag.pid1)
			fatal("no virtio-serial port named %s after 10 s", PV_WIRE_PORT_NAME);
		if (!late)
			ag_log("no virtio-serial port named %s after 10 s; still looking", PV_WIRE_PORT_NAME);
		late = true;
		reap_any();
		sleep_ns(1000 * NS_PER_MS);
	}
}

/* SIGIO on connection changes (and data) of a device port. */
static void enable_sigio(void)
{
	int fl;
	if (port.in_fd < 0 || port.async)
		return;
	/* best effort: without SIGIO the HOST_RECHECK_NS timer still notices a
	 * host that connects, only later */
	if (fcntl(port.in_fd, F_SETOWN, getpid()) < 0 || (fl = fcntl(port.in_fd, F_GETFL)) < 0 ||
	    fcntl(port.in_fd, F_SETFL, fl | O_ASYNC) < 0) {
		ag_log("O_ASYNC on %s: %s", port.path, strerror(errno));
		return;
	}
	port.async = true;
}

static void reset_input(void)
{
	frame_dec_release(&port.dec);
	frame_dec_init(&port.dec);
}

static void connected(void)
{
	ag.gen++;
	ag.connected = true;
	port.discard = false;
	port.retry_at = 0;
	reset_input();
	proc_conn_reset();
	stream_conn_reset();
	raw_conn_reset();
	worker_conn_reset();
	ag_send_hello();
}

/* A device port: is a host on the other end? */
static void host_check(void)
{
	struct pollfd p = { .fd = port.in_fd, .events = POLLIN | POLLOUT };
	if (poll(&p, 1, 0) < 0) {
		ag_log("poll %s: %s", port.path, strerror(errno));
		port.retry_at = sys_mono_ns() + HOST_RECHECK_NS;
		return;
	}
	if (p.revents & POLLHUP) {
		port.retry_at = sys_mono_ns() + HOST_RECHECK_NS;
		return;
	}
	connected();
}

static void port_ready_log(void)
{
	if (!port.ready_logged && port.kind != PORT_STDIO)
		ag_log("ready");
	port.ready_logged = true;
}

static void port_open(void)
{
	int fd;

	port.retry_at = 0;
	port.async = false;
	if (port.kind == PORT_PATH) {
		struct stat st;
		port.is_sock = stat(port.path, &st) == 0 && S_ISSOCK(st.st_mode);
	}
	if (port.kind == PORT_PATH && port.is_sock) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		size_t l = strlen(port.path);
		/* main() checked that the path fits */
		memcpy(sa.sun_path, port.path, l < sizeof(sa.sun_path) ? l : sizeof(sa.sun_path) - 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			if (!port.failing)
				ag_log("connect %s: %s (retrying)", port.path, strerror(errno));
			port.failing = true;
			if (fd >= 0)
				close(fd);
			port.retry_at = sys_mono_ns() + SOCK_RETRY_NS;
			return;
		}
		port.failing = false;
		port.in_fd = port.out_fd = fd;
		port_ready_log();
		connected();
		return;
	}
	fd = open(port.path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (!port.failing)
			ag_log("open %s: %s (retrying)", port.path, strerror(errno));
		port.failing = true;
		port.retry_at = sys_mono_ns() + REOPEN_NS;
		return;
	}
	port.failing = false;
	port.in_fd = port.out_fd = fd;
	enable_sigio();
	port_ready_log();
	host_check();
}

static void port_close(void)
{
	if (port.in_fd >= 0)
		close(port.in_fd);
	if (port.out_fd >= 0 && port.out_fd != port.in_fd)
		close(port.out_fd);
	port.in_fd = port.out_fd = -1;
}

/* Writes queued output for up to 1 s: used before closing the connection. */
static void flush_for_close(void)
{
	uint64_t end = sys_mono_ns() + 1000 * NS_PER_MS;
	while (ag_out_pending() && port.out_fd >= 0) {
		struct pollfd p = { .fd = port.out_fd, .events = POLLOUT };
		uint64_t now = sys_mono_ns();
		if (ag_out_flush(port.out_fd) < 0 || now >= end)
			return;
		if (ag_out_pending() && poll(&p, 1, (int)((end - now) / NS_PER_MS) + 1) <= 0)
			return;
	}
}

/* The host went away (EOF, HUP, write error). */
static void disconnected(void)
{
	/* a test driver may write its requests and close stdin at once: answers
	 * already made still go out (flush_for_close gives up on a dead stdout) */
	if (port.kind == PORT_STDIO)
		flush_for_close();
	ag.connected = false;
	ag_out_drop();
	reset_input();
	switch (port.kind) {
	case PORT_STDIO:
		port_close();
		if (!ag.pid1) {
			proc_kill_all();
			exit(0);
		}
		ag_log("stdin closed; idling");
		port.dead = true;
		return;
	case PORT_VIRTIO:
	case PORT_PATH:
		port_close();
		if (port.kind == PORT_PATH && port.is_sock) {
			port.retry_at = sys_mono_ns() + SOCK_RETRY_NS;
			return;
		}
		/* closing discards bytes left from the old connection */
		port_open();
		return;
	}
}

/* An oversize frame header: the byte stream cannot be resynchronized. */
static void frame_error(const char *msg)
{
	ag_log("bad frame from the host: %s", msg);
	if (is_device()) {
		/* the host end cannot be closed from here: ignore it until it reconnects */
		ag_reply_err_id(0, ag.gen, 0, "ignoring input until the host reconnects: %s", msg);
		port.discard = true;
		reset_input();
		return;
	}
	ag_reply_err_id(0, ag.gen, 0, "closing the connection: %s", msg);
	flush_for_close();
	if (port.kind == PORT_STDIO && !ag.pid1) {
		port_close();
		proc_kill_all();
		exit(1);
	}
	disconnected();
}

/* SIGIO while connected: data, or a disconnect + reconnect too quick to see
 * (see the top of the file). */
static void silent_reconnect_check(void)
{
	struct pollfd p = { .fd = port.in_fd, .events = POLLIN };
	int rc = poll(&p, 1, 0);

	if (rc < 0)
		return;
	/* a disconnect: take it now, by the next poll() the host may be back */
	if (p.revents & (POLLHUP | POLLERR)) {
		disconnected();
		return;
	}
	if (p.revents & POLLIN)
		return; /* data */
	/* a hello must not land inside another frame in either direction */
	if (ag_out_pending() || port.dec.buf.len > port.dec.pos)
		return;
	ag_send_hello();
}

/* ---- requests ------------------------------------------------------------------------- */

static void op_ping(struct ag_req *rq)
{
	ag_reply_ok(rq);
}

static const struct {
	const char *name;
	void (*fn)(struct ag_req *rq);
} ops[] = {
	{ "ping", op_ping },
	{ "exec", proc_op_exec },
	{ "spawn", proc_op_spawn },
	{ "wait", proc_op_wait },
	{ "kill", proc_op_kill },
	{ "stdin_write", proc_op_stdin_write },
	{ "close_stdin", proc_op_close_stdin },
	{ "read_file", fsop_read_file },
	{ "write_file", fsop_write_file },
	{ "stat", fsop_stat },
	{ "listdir", fsop_listdir },
	{ "mkdir", fsop_mkdir },
	{ "unlink", fsop_unlink },
	{ "rename", fsop_rename },
	{ "resume", guest_op_resume },
	{ "identity", guest_op_identity },
	{ "proc_status", proc_op_status },
	{ "stream_open", stream_op_open },
	{ "stream_close", stream_op_close },
	{ "file_open", file_op_open },
	{ "file_read", file_op_read },
	{ "file_write", file_op_write },
	{ "file_seek", file_op_seek },
	{ "file_close", file_op_close },
	{ "clock_get", guest_op_clock_get },
	{ "clock_set", guest_op_clock_set },
	{ "clock_adjust", guest_op_clock_adjust },
	{ "sleep", guest_op_sleep },
	{ "boot_files", bootfiles_op },
	{ "syscall", raw_op_syscall },
	{ "syscall_async", raw_op_syscall_async },
	{ "syscall_await", raw_op_syscall_await },
	{ "syscall_cancel", raw_op_syscall_cancel },
	{ "ioctl", raw_op_ioctl },
	{ "read_mem", raw_op_read_mem },
	{ "worker_spawn", worker_op_spawn },
	{ "worker_kill", worker_op_kill },
	{ "worker_join", worker_op_join },
};

static void handle_frame(const uint8_t *body, uint32_t len)
{
	struct ag_req rq;

	if (ag_req_parse(&rq, body, len) < 0) {
		ag_reply_err_id(rq.id, rq.gen, 0, "bad request: %s", rq.msg);
		return;
	}
	if (worker_route(&rq, body, len))
		return;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(ops[i].name, rq.op)) {
			ops[i].fn(&rq);
			return;
		}
	ag_reply_err(&rq, 0, "unknown op '%s'", rq.op);
}

static void read_input(void)
{
	ssize_t n = frame_dec_read_fd(&port.dec, port.in_fd);
	struct pv_err e;

	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n < 0) {
		ag_log("reading %s: %s", port.kind == PORT_STDIO ? "stdin" : port.path, strerror((int)-n));
		disconnected();
		return;
	}
	if (n == 0) {
		if (!port.discard && frame_dec_finish(&port.dec, &e) < 0)
			ag_log("the host disconnected mid-frame: %s", e.msg);
		disconnected();
		return;
	}
	if (is_device()) {
		/* The SIGIOs of the bytes just read are queued by now: drop them, so
		 * that fewer SIGIOs without data are mistaken for a reconnect. (A
		 * late interrupt can still raise one for bytes already read.) */
		bool stale = false;
		drain_signals(&chld_late, &stale);
	}
	if (port.discard) {
		reset_input();
		return;
	}
	for (;;) {
		const uint8_t *body;
		uint32_t len;
		int rc = frame_dec_next(&port.dec, &body, &len, NULL, &e);
		if (rc == 0)
			break;
		if (rc < 0) {
			frame_error(e.msg);
			return;
		}
		handle_frame(body, len);
	}
	/* a big request leaves a big buffer behind: give it back once drained */
	if (port.dec.pos == port.dec.buf.len && port.dec.buf.cap > 1024 * 1024)
		reset_input();
}

/* ---- the loop -------------------------------------------------------------------------- */

static void setup_signals(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	/* a closed pipe or port must be an EPIPE, not death */
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		fatal("sigaction SIGPIPE: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGIO);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("sigprocmask: %s", strerror(errno));
	sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		fatal("signalfd: %s", strerror(errno));
}

static void setup_stdio(void)
{
	int null;
	/* keep the protocol off 0/1 so nothing else can write into it */
	port.in_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
	port.out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
	if (port.in_fd < 0 || port.out_fd < 0)
		fatal("--stdio: stdin and stdout must be open: %s", strerror(errno));
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		fatal("--stdio: /dev/null: %s", strerror(errno));
	close(null);
	for (int i = 0; i < 2; i++) {
		int fd = i ? port.out_fd : port.in_fd;
		int fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			fatal("--stdio: O_NONBLOCK: %s", strerror(errno));
	}
	connected();
}

/* The earlier of two deadlines, 0 meaning none. */
static uint64_t earliest(uint64_t a, uint64_t b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static void loop(void)
{
	static struct pollfd pfd[4 + 3 * PV_WIRE_MAX_PROCS + AG_STREAM_POLLFDS + AG_MAX_WORKERS];

	for (;;) {
		uint64_t now = sys_mono_ns(),
			 dl = earliest(earliest(proc_next_deadline(), stream_next_deadline()),
				       earliest(earliest(guest_next_deadline(), raw_next_deadline()),
						worker_next_deadline()));
		size_t n = 0, first_proc, nproc, first_stream, nstream, first_raw, nraw, first_worker, nworker;
		int in_idx = -1, out_idx = -1, timeout = -1, rc;
		bool chld = false, io = false;

		if (port.retry_at && (!dl || port.retry_at < dl))
			dl = port.retry_at;
		if (chld_late)
			dl = now; /* reap what read_input saw without waiting */
		if (dl) {
			uint64_t ms = dl <= now ? 0 : (dl - now + NS_PER_MS - 1) / NS_PER_MS;
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		}
		pfd[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
		if (ag.connected) {
			/* stop taking requests while a slow host owes us a lot of reading */
			short in_ev = ag.out_bytes < AG_OUT_HIGH ? POLLIN : 0;
			short out_ev = ag_out_pending() ? POLLOUT : 0;
			if (port.in_fd == port.out_fd) {
				in_idx = out_idx = (int)n;
				pfd[n++] = (struct pollfd){ .fd = port.in_fd, .events = in_ev | out_ev };
			} else {
				in_idx = (int)n;
				pfd[n++] = (struct pollfd){ .fd = port.in_fd, .events = in_ev };
				out_idx = (int)n;
				pfd[n++] = (struct pollfd){ .fd = port.out_fd, .events = out_ev };
			}
		}
		first_proc = n;
		nproc = proc_poll_fill(pfd + n, sizeof(pfd) / sizeof(pfd[0]) - n);
		n += nproc;
		first_stream = n;
		nstream = stream_poll_fill(pfd + n, sizeof(pfd) / sizeof(pfd[0]) - n);
		n += nstream;
		first_raw = n;
		nraw = raw_poll_fill(pfd + n, sizeof(pfd) / sizeof(pfd[0]) - n);
		n += nraw;
		first_worker = n;
		nworker = worker_poll_fill(pfd + n, sizeof(pfd) / sizeof(pfd[0]) - n);
		n += nworker;

		rc = poll(pfd, n, timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			fatal("poll: %s", strerror(errno));
		}

		if (pfd[0].revents)
			drain_signals(&chld, &io);
		chld |= chld_late;
		chld_late = false;
		if (chld)
			proc_reap();
		if (io && ag.connected && in_idx >= 0 && is_device() &&
		    !(pfd[in_idx].revents & (POLLIN | POLLHUP | POLLERR)))
			silent_reconnect_check();
		proc_poll_handle(pfd + first_proc, nproc);
		stream_poll_handle(pfd + first_stream, nstream);
		raw_poll_handle(pfd + first_raw, nraw);
		worker_poll_handle(pfd + first_worker, nworker);
		now = sys_mono_ns();
		proc_timers(now);
		raw_timers(now);
		worker_timers(now);
		guest_timers(now);
		stream_work(now);
		proc_sweep();

		if (ag.connected && out_idx >= 0 && (pfd[out_idx].revents & (POLLOUT | POLLERR | POLLHUP)) &&
		    ag_out_pending()) {
			int wrc = ag_out_flush(port.out_fd);
			if (wrc < 0) {
				ag_log("writing to the host: %s", strerror(-wrc));
				disconnected();
			}
		}
		if (ag.connected && in_idx >= 0 && is_device() && (pfd[in_idx].revents & POLLHUP))
			/* no host now: bytes still unread are of a connection that is
			 * gone, and waiting for read() == 0 could miss a quick reconnect */
			disconnected();
		else if (ag.connected && in_idx >= 0 && (pfd[in_idx].revents & (POLLIN | POLLHUP | POLLERR)))
			read_input();
		/* a stdio reader that went away shows up as POLLERR on stdout */
		if (ag.connected && out_idx != in_idx && out_idx >= 0 && (pfd[out_idx].revents & POLLERR))
			disconnected();

		if (!ag.connected && !port.dead && port.kind != PORT_STDIO) {
			bool due = port.retry_at && sys_mono_ns() >= port.retry_at;
			if (port.in_fd >= 0 && (due || io)) {
				port.retry_at = 0;
				host_check();
			} else if (port.in_fd < 0 && due) {
				port_open();
			}
		}
		/* answer (and relay) now rather than after the next poll */
		worker_flush();
		if (ag.connected && ag_out_pending()) {
			int wrc = ag_out_flush(port.out_fd);
			if (wrc < 0) {
				ag_log("writing to the host: %s", strerror(-wrc));
				disconnected();
			}
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: %s [--stdio | --port PATH] [--guest]\n"
			"  (no option)  serve on the virtio-serial port named %s\n"
			"  --port PATH  serve on PATH: a unix socket to connect to, or a character device\n"
			"  --stdio      serve on stdin/stdout (for tests); exits at EOF\n"
			"  --guest      in a guest but not its init (a systemd unit): serve its port\n"
			"  --stdio --worker N  serve as worker N of the guest's agent (started by worker_spawn)\n",
		AG_NAME, PV_WIRE_PORT_NAME);
}

int main(int argc, char **argv)
{
	const char *port_path = NULL;
	bool stdio = false;

	/* a worker in a pid namespace of its own is PID 1 there, and says so first */
	ag.pid1 = getpid() == 1 && !(argc > 2 && !strcmp(argv[1], "--stdio") && !strcmp(argv[2], "--worker"));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--stdio")) {
			stdio = true;
		} else if (!strcmp(argv[i], "--worker") && i + 1 < argc && !ag.pid1) {
			/* a worker of the guest's agent (worker.c): maybe PID 1 of a pid
			 * namespace, never the guest's init */
			char *end;
			unsigned long n = strtoul(argv[++i], &end, 10);
			if (*end || n < 1 || n > AG_MAX_WORKERS) {
				fprintf(stderr, "%s: --worker takes a number from 1 to %u\n", AG_NAME, AG_MAX_WORKERS);
				return 2;
			}
			ag.worker = true;
			ag.handle_base = (uint32_t)n << AG_HANDLE_BITS;
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			port_path = argv[++i];
		} else if (!strcmp(argv[i], "--guest") && !ag.pid1) {
			/* a unit of the guest's systemd (init = "systemd"): in a guest,
			 * serving its port, but not its init */
			ag.guest = true;
		} else if (!ag.pid1 && (!strcmp(argv[i], "--version"))) {
			printf("%s\n", AG_VERSION_STR);
			return 0;
		} else if (ag.pid1) {
			/* the kernel hands init the command line words it does not know:
			 * never refuse to start over them */
			continue;
		} else {
			if (strcmp(argv[i], "--help") != 0)
				fprintf(stderr, "%s: unknown argument '%s'\n", AG_NAME, argv[i]);
			usage();
			return strcmp(argv[i], "--help") ? 2 : 0;
		}
	}
	if (stdio && port_path && !ag.pid1) {
		usage();
		return 2;
	}
	ag.guest = ag.guest || ag.pid1;
	if (ag.pid1) {
		pid1_setup();
		bootfiles_install(); /* init = "systemd": execs systemd, the unit comes back with --guest */
		guest_priority_setup();
	} else if (ag.guest) {
		bootfiles_unit_env();
		guest_priority_setup();
	}
	ensure_std_fds();
	/* inherited fds must not reach the children: mark them close-on-exec (all
	 * of the agent's own fds are O_CLOEXEC from the start) */
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0 && errno != ENOSYS && errno != EINVAL)
		ag_log("close_range: %s", strerror(errno));
	setup_signals();
	raw_init();
	read_cmdline();
	frame_dec_init(&port.dec);

	if (stdio) {
		port.kind = PORT_STDIO;
		setup_stdio();
	} else if (port_path) {
		if (strlen(port_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			fatal("--port: path too long: %s", port_path);
		snprintf(port.path, sizeof(port.path), "%s", port_path);
		port.kind = PORT_PATH;
		port_open();
	} else {
		port.kind = PORT_VIRTIO;
		port.in_fd = port.out_fd = open_virtio_port();
		enable_sigio();
		port_ready_log();
		host_check();
	}
	loop();
}

/* dserver.c - the nbdkit disk server (contract in dserver.h). */
#include "dserver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

/* How long nbdkit may take to listen, and to answer a control line. */
#define START_TIMEOUT_MS 15000
#define CMD_TIMEOUT_MS 10000

static int plugin_path(char *out, size_t len)
{
	const char *env = getenv("PROVIUM_NBD_PLUGIN");
	char exe[PATH_MAX];
	if (env && *env)
		return snprintf(out, len, "%s", env) < (int)len ? 0 : -1;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	return snprintf(out, len, "%s/provium-nbd.so", exe) < (int)len ? 0 : -1;
}

/* One line from the control socket, waiting at most ms. */
static int read_line(struct dserver *s, char *line, size_t len, int ms)
{
	size_t have = 0;
	uint64_t deadline = sys_mono_ns() + (uint64_t)ms * 1000000u;
	while (have + 1 < len) {
		uint64_t now = sys_mono_ns();
		struct pollfd p = { .fd = s->ctl, .events = POLLIN };
		if (now >= deadline)
			return -ETIMEDOUT;
		int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		/* byte by byte: the answer is one short line, and nothing follows it */
		ssize_t n = read(s->ctl, line + have, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		if (line[have] == '\n') {
			line[have] = 0;
			return 0;
		}
		have++;
	}
	return -EMSGSIZE;
}

int dserver_start(struct dserver *s, const char *file, const char *sock_dir, uint64_t seed, struct pv_err *err)
{
	static unsigned counter;
	char plugin[PATH_MAX] = "", fdarg[32], seedarg[40], filearg[PATH_MAX + 8], line[256], tail[1024];
	int sv[2];
	memset(s, 0, sizeof(*s));
	s->ctl = -1;
	if (plugin_path(plugin, sizeof(plugin)) < 0 || access(plugin, R_OK) < 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX, "the disk server's nbdkit plugin %s is missing: build provium "
				  "(ninja -C build), or set PROVIUM_NBD_PLUGIN", plugin);
	if (strlen(sock_dir) > 90)
		sock_dir = "/tmp";
	snprintf(s->sock, sizeof(s->sock), "%s/nbd-%d-%u.sock", sock_dir, (int)getpid(), counter++);
	snprintf(s->log, sizeof(s->log), "%s.nbdkit.log", file);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "socketpair: %s", strerror(errno));
	snprintf(fdarg, sizeof(fdarg), "control=%d", sv[1]);
	snprintf(seedarg, sizeof(seedarg), "seed=%llu", (unsigned long long)seed);
	snprintf(filearg, sizeof(filearg), "file=%s", file);
	char *argv[] = { "nbdkit", "-f", "-U", s->sock, plugin, filearg, fdarg, seedarg, NULL };
	pid_t pid = sys_spawn(argv, s->log, sv[1]);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return pv_err_set(err, pid, SIZE_MAX, "fork: %s", strerror(-pid));
	}
	close(sv[1]);
	s->pid = pid;
	s->ctl = sv[0];
	int rc = read_line(s, line, sizeof(line), START_TIMEOUT_MS);
	if (rc == 0 && !strcmp(line, "ready"))
		return 0;
	dserver_stop(s);
	sys_file_tail(s->log, tail, sizeof(tail));
	return pv_err_set(err, rc < 0 ? rc : -EPROTO, SIZE_MAX, "the disk server (nbdkit) did not start: %s%s%s",
			  rc == -ETIMEDOUT ? "no answer in 15 s" : rc < 0 ? "it exited" : line, tail[0] ? "; nbdkit said: " : "",
			  strstr(tail, "exec nbdkit") ? "nbdkit is not installed (scripts/setup installs it)" : tail);
}

int dserver_cmd(struct dserver *s, const char *line, char *reply, size_t reply_len, struct pv_err *err)
{
	char ans[8192];
	size_t n = strlen(line);
	if (!s->pid)
		return pv_err_set(err, -ESRCH, SIZE_MAX, "its disk server is not running");
	char *buf = malloc(n + 1);
	if (!buf)
		return pv_err_set(err, -ENOMEM, SIZE_MAX, "out of memory");
	memcpy(buf, line, n);
	buf[n] = '\n';
	int rc = 0;
	for (size_t done = 0; done < n + 1 && rc == 0;) {
		/* MSG_NOSIGNAL: a server that died is an error here, not a SIGPIPE */
		ssize_t w = send(s->ctl, buf + done, n + 1 - done, MSG_NOSIGNAL);
		if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	free(buf);
	if (rc == 0)
		rc = read_line(s, ans, sizeof(ans), CMD_TIMEOUT_MS);
	if (rc < 0) {
		char tail[512];
		sys_file_tail(s->log, tail, sizeof(tail));
		return pv_err_set(err, rc, SIZE_MAX, "its disk server (nbdkit, pid %d) %s%s%s", (int)s->pid,
				  rc == -ETIMEDOUT ? "did not answer in 10 s" : "is gone", tail[0] ? ": " : "", tail);
	}
	if (!strncmp(ans, "err ", 4))
		return pv_err_set(err, -EREMOTEIO, SIZE_MAX, "%s", ans + 4);
	if (strncmp(ans, "ok", 2))
		return pv_err_set(err, -EPROTO, SIZE_MAX, "its disk server answered \"%s\"", ans);
	if (reply)
		snprintf(reply, reply_len, "%s", ans[2] == ' ' ? ans + 3 : ans + 2);
	return 0;
}

void dserver_stop(struct dserver *s)
{
	if (s->ctl >= 0) {
		close(s->ctl); /* the plugin shuts nbdkit down */
		s->ctl = -1;
	}
	sys_end_child(s->pid, 0, 5000000000ull); /* it ends itself once the socket closes */
	s->pid = 0;
	if (s->sock[0])
		unlink(s->sock);
}

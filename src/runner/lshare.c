/* lshare.c - shares (contract in lshare.h). */
#include "lshare.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lhostfile.h"
#include "lvm.h"
#include "opts.h"
#include "runner_priv.h"
#include "sys.h"

/* How long a virtiofsd may take to listen. */
#define START_NS 10000000000ull

void lshare_parse(lua_State *L, int idx, const char *name, struct lshares *out)
{
	static const char *const keys[] = { "host", "guest", "readonly", NULL };
	memset(out, 0, sizeof(*out));
	if (lua_isnoneornil(L, idx))
		return;
	idx = lua_absindex(L, idx);
	if (!lua_istable(L, idx))
		luaL_error(L, "VM '%s' share must be a list of {host =, guest =, readonly =}, got %s", name,
			   luaL_typename(L, idx));
	lua_Integer n = luaL_len(L, idx);
	if (n > VM_MAX_SHARES - 1)
		luaL_error(L, "VM '%s' has %d shares; at most %d", name, (int)n, VM_MAX_SHARES - 1);
	for (lua_Integer i = 1; i <= n; i++) {
		struct lshare *s = &out->s[i - 1];
		char what[160];
		snprintf(what, sizeof(what), "VM '%s' share[%d]", name, (int)i);
		lua_geti(L, idx, i);
		int t = lua_gettop(L);
		if (!lua_istable(L, t))
			luaL_error(L, "%s must be a table {host =, guest =, readonly =}, got %s", what, luaL_typename(L, t));
		opts_check(L, t, what, keys);
		if (lua_getfield(L, t, "host") != LUA_TSTRING)
			luaL_error(L, "%s needs host (a directory of this host; relative to the test file)", what);
		lhostfile_dir(L, lua_tostring(L, -1), what, s->host, sizeof(s->host));
		char abs[PATH_MAX];
		if (realpath(s->host, abs) && strlen(abs) < sizeof(s->host))
			strcpy(s->host, abs);
		if (lua_getfield(L, t, "guest") != LUA_TSTRING)
			luaL_error(L, "%s needs guest (the absolute path it is mounted on in the guest)", what);
		size_t gl;
		const char *g = lua_tolstring(L, -1, &gl);
		if (g[0] != '/' || gl >= sizeof(s->guest) || strpbrk(g, " \t\n,:") || strlen(g) != gl)
			luaL_error(L, "%s: guest \"%s\" must be an absolute path of at most %d bytes without spaces, commas "
				      "or colons", what, g, (int)sizeof(s->guest) - 1);
		memcpy(s->guest, g, gl + 1);
		for (lua_Integer j = 1; j < i; j++)
			if (!strcmp(out->s[j - 1].guest, s->guest))
				luaL_error(L, "%s: guest %s is share[%d]'s too", what, s->guest, (int)j);
		if (lua_getfield(L, t, "readonly") != LUA_TNIL && !lua_isboolean(L, -1))
			luaL_error(L, "%s: readonly must be a boolean", what);
		s->readonly = lua_toboolean(L, -1);
		snprintf(s->tag, sizeof(s->tag), "pvfs%d", (int)i - 1);
		lua_settop(L, t - 1);
	}
	out->n = (unsigned)n;
}

void lshare_add_root(struct lshares *s)
{
	struct lshare *r = &s->s[s->n++];
	memset(r, 0, sizeof(*r));
	strcpy(r->host, "/");
	r->readonly = true;
	strcpy(r->tag, "pvroot");
}

void lshare_merge(struct lshares *s, const struct lshares *add)
{
	for (unsigned k = 0; k < add->n && s->n < VM_MAX_SHARES; k++) {
		s->s[s->n] = add->s[k];
		snprintf(s->s[s->n].tag, sizeof(s->s[s->n].tag), "pvfs%u", s->n);
		s->n++;
	}
}

static const char *virtiofsd(void)
{
	const char *e = getenv("PROVIUM_VIRTIOFSD");
	return e && *e ? e : "/usr/lib/qemu/virtiofsd";
}

static void reap(struct lshare *s)
{
	sys_end_child(s->pid, SIGTERM, 3000000000ull);
	s->pid = 0;
	if (s->sock[0])
		unlink(s->sock);
}

void lshare_stop(struct lvm *v)
{
	for (unsigned k = 0; k < v->shares.n; k++)
		reap(&v->shares.s[k]);
}

static int start_one(struct lshare *s, struct pv_err *err)
{
	static unsigned counter;
	char src[4200], sockarg[160];
	const char *dir = runner_env()->scratch;
	if (strlen(dir) > 80)
		dir = "/tmp";
	unsigned n = counter++;
	snprintf(s->sock, sizeof(s->sock), "%s/fs-%d-%u.sock", dir, (int)getpid(), n);
	snprintf(s->log, sizeof(s->log), "%s/fs-%d-%u.log", runner_env()->scratch, (int)getpid(), n);
	snprintf(src, sizeof(src), "source=%s", s->host);
	snprintf(sockarg, sizeof(sockarg), "--socket-path=%s", s->sock);
	if (access(virtiofsd(), X_OK) < 0)
		return pv_err_set(err, -ENOENT, SIZE_MAX, "share %s: %s: %s (it comes with qemu-system-common; "
				  "scripts/setup installs it)", s->host, virtiofsd(), strerror(errno));
	/* as root, sandbox=chroot: the namespace sandbox pivot_roots into the
	 * source, which fails inside a chroot and for the host's / itself; as an
	 * ordinary user, a user namespace where it may setgroups, a /run of its
	 * own for its pid file, and the host's / through a bind of it */
	bool whole = !strcmp(s->host, "/");
	char *root_argv[] = { (char *)virtiofsd(), sockarg, "-o", src, "-o", "sandbox=chroot", NULL };
	char *user_argv[] = { "unshare", "--map-root-user", "--map-auto", "--mount", "sh", "-c",
			      whole ? "mount -t tmpfs none /run && mkdir -p /run/virtiofsd /run/root && mount --rbind / "
				      "/run/root && exec \"$0\" \"$1\" -o source=/run/root -o sandbox=namespace"
				    : "mount -t tmpfs none /run && mkdir -p /run/virtiofsd && exec \"$0\" \"$@\"",
			      (char *)virtiofsd(), sockarg, "-o", src, "-o", "sandbox=namespace", NULL };
	pid_t pid = sys_spawn(geteuid() == 0 ? root_argv : user_argv, s->log, -1);
	if (pid < 0)
		return pv_err_set(err, pid, SIZE_MAX, "fork: %s", strerror(-pid));
	s->pid = pid;
	uint64_t deadline = pv_mono_ns() + START_NS;
	struct stat st;
	while (stat(s->sock, &st) < 0) {
		int wst;
		char tail[600];
		bool exited = waitpid(pid, &wst, WNOHANG) == pid;
		if (exited || pv_mono_ns() > deadline) {
			s->pid = exited ? 0 : pid; /* reaped already, or still to end */
			reap(s);
			sys_file_tail(s->log, tail, sizeof(tail));
			return pv_err_set(err, -EIO, SIZE_MAX, "share %s: virtiofsd %s%s%s%s", s->host,
					  exited ? "exited" : "did not listen within 10 s", tail[0] ? ": " : "", tail,
					  strstr(tail, "setgroups") || strstr(tail, "map-auto") || strstr(tail, "newuidmap")
						  ? " (as an ordinary user it needs uidmap's newuidmap and a range in "
						    "/etc/subuid and /etc/subgid)"
						  : "");
		}
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	return 0;
}

int lshare_start(struct lvm *v, struct vm_share *out, char *words, size_t len, struct pv_err *err)
{
	size_t used = strlen(words);
	lshare_stop(v); /* a previous boot's, if any */
	for (unsigned k = 0; k < v->shares.n; k++) {
		struct lshare *s = &v->shares.s[k];
		int rc = start_one(s, err);
		if (rc < 0) {
			lshare_stop(v);
			return rc;
		}
		out[k] = (struct vm_share){ s->tag, s->sock };
		if (!s->guest[0])
			used += (size_t)snprintf(words + used, used < len ? len - used : 0, " provium.root=%s", s->tag);
		else
			used += (size_t)snprintf(words + used, used < len ? len - used : 0, " provium.share=%s:%s:%s",
						 s->tag, s->readonly ? "ro" : "rw", s->guest);
	}
	return used < len ? 0 : pv_err_set(err, -E2BIG, SIZE_MAX, "the shares' kernel command line is too long");
}

void lshare_explain(struct lvm *v, char *out, size_t len)
{
	out[0] = 0;
	for (unsigned k = 0; k < v->shares.n && !out[0]; k++) {
		char tail[400];
		sys_file_tail(v->shares.s[k].log, tail, sizeof(tail));
		if (tail[0])
			snprintf(out, len, "; the virtiofsd of share %s said: %s", v->shares.s[k].host, tail);
	}
}

void lshare_check(lua_State *L, struct lvm *v)
{
	const uint8_t *p;
	uint32_t plen;
	if (!v->shares.n)
		return;
	msgpack_packer *pk = agent_begin(&v->vm.agent, "read_file", 1);
	msgpack_pack_str_with_body(pk, "path", 4);
	msgpack_pack_str_with_body(pk, "/proc/mounts", 12);
	lvm_call(L, v, "checking its shares", 0);
	if (!ctl_get_raw(&v->vm.agent.resp, "data", &p, &plen))
		luaL_error(L, "VM '%s': its agent sent no /proc/mounts", v->name);
	char *mounts = malloc(plen + 1);
	if (!mounts)
		luaL_error(L, "out of memory");
	memcpy(mounts, p, plen);
	mounts[plen] = 0;
	for (unsigned k = 0; k < v->shares.n; k++) {
		const struct lshare *s = &v->shares.s[k];
		char want[300];
		if (!s->guest[0]) /* the host profile's root: an overlay on / */
			snprintf(want, sizeof(want), "overlay / overlay ");
		else
			snprintf(want, sizeof(want), "%s %s virtiofs ", s->tag, s->guest);
		if (!strstr(mounts, want)) {
			free(mounts);
			luaL_error(L, "VM '%s': share %s was not mounted on %s in the guest (its console says why: does the "
				      "kernel have virtiofs%s? the built-in image does)", v->name, s->host,
				   s->guest[0] ? s->guest : "/ (the host's root under an overlay)", s->guest[0] ? "" : " and overlay");
		}
	}
	free(mounts);
}

void lshare_refuse(lua_State *L, struct lvm *v, const char *op)
{
	if (v->shares.n)
		luaL_error(L, "%s of VM '%s' refused: it has a share (%s on %s), and QEMU cannot migrate a virtio-fs "
			      "device; a VM with shares (or of the host profile) has no snapshots (and so no fixtures)", op,
			   v->name, v->shares.s[0].host, v->shares.s[0].guest[0] ? v->shares.s[0].guest : "/");
}

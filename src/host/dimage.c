/* dimage.c - guest roots built from Debian packages (dimage.h). */
#include "dimage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "sys.h"
#include "vm.h"

/* Bumped when what a build makes changes (the hook, the file system). */
#define RECIPE_VERSION "provium-debian-4"

/* The host's Debian codename (VERSION_CODENAME of /etc/os-release) into out,
 * "" when there is none. */
static void host_suite(char *out, size_t len)
{
	FILE *f = fopen("/etc/os-release", "re");
	char line[256];
	out[0] = 0;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VERSION_CODENAME=", 17)) {
			char *v = line + 17;
			v[strcspn(v, "\n")] = 0;
			if (*v == '"')
				v++;
			v[strcspn(v, "\"")] = 0;
			snprintf(out, len, "%.63s", v);
		}
	if (f)
		fclose(f);
}

static const char *suite_of(const struct pv_profile *p, char *buf, size_t len)
{
	if (p->suite)
		return p->suite;
	host_suite(buf, len);
	return buf[0] ? buf : "bookworm";
}

/* Whether the file has a line naming a Debian archive (not a comment). */
static bool debian_source(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	bool yes = false;
	while (f && !yes && fgets(line, sizeof(line), f)) {
		char *h = strchr(line, '#');
		if (h)
			*h = 0;
		yes = strstr(line, "debian") != NULL;
	}
	if (f)
		fclose(f);
	return yes;
}

/* The host's apt source files naming Debian: what a profile with no mirror
 * is built from when its suite is the host's (so it reaches the archive the
 * way the host does, proxy or local mirror included). */
static size_t host_sources(char paths[][512], size_t max)
{
	static const char *const pats[] = { "/etc/apt/sources.list", "/etc/apt/sources.list.d/*.list",
					    "/etc/apt/sources.list.d/*.sources" };
	size_t n = 0;
	for (size_t i = 0; i < 3; i++) {
		glob_t g;
		if (glob(pats[i], 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc && n < max; k++)
			if (debian_source(g.gl_pathv[k]) && !strpbrk(g.gl_pathv[k], "'\\"))
				snprintf(paths[n++], 512, "%s", g.gl_pathv[k]);
		globfree(&g);
	}
	return n;
}

#define MAX_SOURCES 16

/* Where p is built from: the sources files of the host (*nsrc of them), or
 * p's mirror, or mmdebstrap's default for the suite (*nsrc 0, *mirror NULL). */
static void sources_of(const struct pv_profile *p, const char *suite, char src[][512], size_t *nsrc, const char **mirror)
{
	char host[64];
	*nsrc = 0;
	*mirror = p->mirror;
	host_suite(host, sizeof(host));
	if (!p->mirror && !strcmp(suite, host))
		*nsrc = host_sources(src, MAX_SOURCES);
}

static void feed_file(XXH3_state_t *st, const char *path)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "re");
	XXH3_64bits_update(st, path, strlen(path) + 1);
	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		XXH3_64bits_update(st, buf, n);
	if (f)
		fclose(f);
}

static void feed_str(XXH3_state_t *st, const char *s)
{
	XXH3_64bits_update(st, s ? s : "", s ? strlen(s) + 1 : 1);
}

static void recipe_key(const struct pv_profile *p, char key[17])
{
	char suite[64], src[MAX_SOURCES][512];
	size_t nsrc;
	const char *mirror;
	const char *s = suite_of(p, suite, sizeof(suite));
	XXH3_state_t *st = XXH3_createState();
	sources_of(p, s, src, &nsrc, &mirror);
	XXH3_64bits_reset(st);
	feed_str(st, RECIPE_VERSION);
	feed_str(st, p->base);
	feed_str(st, s);
	feed_str(st, mirror);
	for (size_t i = 0; i < nsrc; i++)
		feed_file(st, src[i]);
	feed_str(st, p->init_systemd ? "systemd" : "agent");
	for (size_t i = 0; i < p->npackages; i++)
		feed_str(st, p->packages[i]);
	snprintf(key, 17, "%016llx", (unsigned long long)XXH3_64bits_digest(st));
	XXH3_freeState(st);
}

bool dimage_find(const struct pv_profile *p, struct dimage *d)
{
	char base[3000], path[4300];
	memset(d, 0, sizeof(*d));
	recipe_key(p, d->key);
	vm_image_dir(base, sizeof(base));
	snprintf(d->dir, sizeof(d->dir), "%s/debian-%s", base, d->key);
	snprintf(d->root, sizeof(d->root), "%s/root.squashfs", d->dir);
	snprintf(path, sizeof(path), "%s/manifest.json", d->dir);
	json_t *m = json_load_file(path, 0, NULL);
	const char *id = json_string_value(json_object_get(m, "id"));
	struct stat st;
	bool ok = id && stat(d->root, &st) == 0;
	if (ok) {
		snprintf(d->id, sizeof(d->id), "%s", id);
		d->bytes = (uint64_t)st.st_size;
		d->npackages = (unsigned)json_integer_value(json_object_get(m, "installed"));
	}
	json_decref(m);
	return ok;
}

/* The packages a profile's root gets besides its own list: what the agent's
 * boot needs of it (nothing for init = "agent"; systemd for "systemd", and
 * udev: without it no device unit ever appears, and units that wait for one
 * time out after 90 s). */
static void include_list(const struct pv_profile *p, char *out, size_t len)
{
	size_t o = 0;
	out[0] = 0;
	if (p->init_systemd)
		o += (size_t)snprintf(out + o, len - o, "systemd-sysv,udev");
	for (size_t i = 0; i < p->npackages && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", p->packages[i]);
}

/* The customize hook: run by mmdebstrap with the finished root as $1. In
 * unshare mode it runs as the user namespace's root, which is a subordinate
 * id outside: it cannot reach the user's image directory, so it works inside
 * the root (BUILD_DIR, left out of the image) and a copy-out hook, which
 * mmdebstrap runs as the user, brings root.squashfs and packages.txt out. It
 * records the versions and makes the squashfs (lz4: bench/rootfs_bench.sh,
 * docs/design.md). In root mode the build's /proc, /sys and /dev are still
 * mounted in the root: -one-file-system leaves them empty, and /dev's nodes
 * stay out (in unshare mode they are bind mounts of the host's; the guest
 * mounts its devtmpfs over /dev anyway). */
#define BUILD_NAME ".provium-build"
#define BUILD_DIR "/" BUILD_NAME
static const char hook_text[] =
	"set -eu\n"
	"root=$1 b=$1" BUILD_DIR "\n"
	"mkdir \"$b\"\n"
	"dpkg-query --admindir=\"$root/var/lib/dpkg\" -W -f '${Package}=${Version}\\n' | LC_ALL=C sort >\"$b/packages.txt\"\n"
	"rm -f \"$root\"/var/cache/apt/*.bin\n"
	"echo \"I: making root.squashfs from $(du -smx \"$root\" | cut -f1) MiB\" >&2\n"
	"mksquashfs \"$root\" \"$b/root.squashfs\" -comp lz4 -noappend -quiet -no-progress -one-file-system "
	"-wildcards -e " BUILD_NAME " 'dev/*' >&2\n";

/* Runs argv with stdout and stderr into one pipe: every line goes to log, and
 * to progress prefixed; the last of mmdebstrap's "E: " lines is kept in
 * why. The exit status, or -errno. */
static int run_logged(char *const argv[], const char *name, const char *log_path, FILE *progress, char *why, size_t wlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (pid == 0) {
		/* a provium killed outside the terminal's ^C takes its build along
		 * (mmdebstrap cleans up on SIGTERM) */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		execvp(argv[0], argv);
		dprintf(2, "E: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	FILE *in = fdopen(pfd[0], "re"), *log = fopen(log_path, "we");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (in && (n = getline(&line, &cap, in)) > 0) {
		if (log)
			fputs(line, log);
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "E: ", 3) && why[0] == 0)
			snprintf(why, wlen, "%s", line + 3);
		if (progress && line[0]) {
			fprintf(progress, "provium: image %s: %s\n", name, line);
			fflush(progress);
		}
	}
	free(line);
	if (in)
		fclose(in);
	else
		close(pfd[0]);
	if (log)
		fclose(log);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static uint64_t file_hash(const char *path, unsigned *lines)
{
	XXH3_state_t *st = XXH3_createState();
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "re");
	*lines = 0;
	XXH3_64bits_reset(st);
	while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		XXH3_64bits_update(st, buf, n);
		for (size_t i = 0; i < n; i++)
			*lines += buf[i] == '\n';
	}
	if (f)
		fclose(f);
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

static int write_manifest(const struct pv_profile *p, const char *suite, const char *tmp, const char *key,
			  double secs, char *id, size_t idlen)
{
	char path[4300];
	unsigned lines;
	snprintf(path, sizeof(path), "%s/packages.txt", tmp);
	uint64_t vh = file_hash(path, &lines);
	snprintf(id, idlen, "%s-%016llx", key, (unsigned long long)vh);
	json_t *m = json_object(), *pk = json_array();
	for (size_t i = 0; i < p->npackages; i++)
		json_array_append_new(pk, json_string(p->packages[i]));
	json_object_set_new(m, "id", json_string(id));
	json_object_set_new(m, "profile", json_string(p->name));
	json_object_set_new(m, "base", json_string(p->base));
	json_object_set_new(m, "suite", json_string(suite));
	json_object_set_new(m, "mirror", p->mirror ? json_string(p->mirror) : json_null());
	json_object_set_new(m, "init", json_string(p->init_systemd ? "systemd" : "agent"));
	json_object_set_new(m, "packages", pk);
	json_object_set_new(m, "installed", json_integer(lines));
	json_object_set_new(m, "build_seconds", json_real(secs));
	json_object_set_new(m, "built_at", json_integer((json_int_t)time(NULL)));
	snprintf(path, sizeof(path), "%s/manifest.json", tmp);
	int rc = json_dump_file(m, path, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 ? 0 : -EIO;
	json_decref(m);
	return rc;
}

int dimage_build(const struct pv_profile *p, bool force, FILE *progress, struct pv_err *err)
{
	struct dimage d;
	char base[3000], suite_buf[64], lock_path[3100], tmp[3200], copy_arg[3400], log[3300];
	char hook_arg[sizeof(hook_text) + 32];
	char src[MAX_SOURCES][512], include[8192], why[512] = "", variant[] = "--variant=essential";
	const char *mirror;
	size_t nsrc;
	if (!p->base)
		return pv_err_set(err, -EINVAL, SIZE_MAX, "profile '%s' has no base: nothing to build", p->name);
	if (dimage_find(p, &d) && !force)
		return 0;
	const char *suite = suite_of(p, suite_buf, sizeof(suite_buf));
	sources_of(p, suite, src, &nsrc, &mirror);
	vm_image_dir(base, sizeof(base));
	if (strpbrk(base, "'\\ \t\n"))
		return pv_err_set(err, -EINVAL, SIZE_MAX, "the image directory %s has a space, quote or backslash in its "
				  "name (mmdebstrap's copy-out hook splits on spaces); set PROVIUM_IMAGE_DIR to another", base);
	if (sys_mkdir_p(base, 0755, NULL, 0) < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "cannot create the image directory %s: %s", base,
				  strerror(errno));
	snprintf(lock_path, sizeof(lock_path), "%s/.debian-%s.lock", base, d.key);
	int lfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0)
		return pv_err_set(err, -errno, SIZE_MAX, "%s: %s", lock_path, strerror(errno));
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		if (progress)
			fprintf(progress, "provium: image %s: waiting for another build of it\n", p->name);
		flock(lfd, LOCK_EX);
		if (!force && dimage_find(p, &d)) {
			close(lfd);
			return 0;
		}
	} else if (!force && dimage_find(p, &d)) { /* built while we looked */
		close(lfd);
		return 0;
	}
	int rc = 0;
	/* a killed build's directory (we hold the key's lock: none is running) */
	char pat[3200];
	glob_t left;
	snprintf(pat, sizeof(pat), "%s/.tmp-debian-%s.*", base, d.key);
	if (glob(pat, 0, NULL, &left) == 0) {
		for (size_t i = 0; i < left.gl_pathc; i++)
			sys_rm_tree(left.gl_pathv[i], NULL, 0);
		globfree(&left);
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-debian-%s.XXXXXX", base, d.key);
	if (!mkdtemp(tmp)) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot create a build directory in %s: %s", base, strerror(errno));
		close(lfd);
		return rc;
	}
	chmod(tmp, 0755);
	snprintf(log, sizeof(log), "%s/build.log", tmp);
	snprintf(copy_arg, sizeof(copy_arg), "--customize-hook=copy-out " BUILD_DIR "/root.squashfs " BUILD_DIR "/packages.txt %s",
		 tmp);
	include_list(p, include, sizeof(include));
	if (strlen(include) >= sizeof(include) - 1) {
		rc = pv_err_set(err, -E2BIG, SIZE_MAX, "profile '%s' has more package names than one build takes (%zu "
				"bytes of them at most); install the rest from a fixture", p->name, sizeof(include) - 2);
		goto out;
	}
	char inc_arg[8300];
	snprintf(inc_arg, sizeof(inc_arg), "--include=%s", include);
	char *argv[64];
	int a = 0;
	argv[a++] = "mmdebstrap";
	argv[a++] = variant;
	if (include[0])
		argv[a++] = inc_arg;
	argv[a++] = "--format=null";
	/* documentation nobody reads in a test VM: a smaller image, a faster build */
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/man/*";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/info/*";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/doc/*";
	argv[a++] = "--dpkgopt=path-include=/usr/share/doc/*/copyright";
	argv[a++] = "--dpkgopt=path-exclude=/usr/share/locale/*";
	snprintf(hook_arg, sizeof(hook_arg), "--customize-hook=%s", hook_text);
	argv[a++] = hook_arg;
	argv[a++] = copy_arg;
	/* the host's Acquire settings (a proxy, a snapshot mirror's validity) */
	char aptopt[8][600];
	int naptopt = 0;
	glob_t g;
	int g1 = glob("/etc/apt/apt.conf", 0, NULL, &g);
	if (glob("/etc/apt/apt.conf.d/*", g1 == 0 ? GLOB_APPEND : 0, NULL, &g) == 0 || g1 == 0) {
		for (size_t i = 0; i < g.gl_pathc && naptopt < 8; i++) {
			FILE *f = fopen(g.gl_pathv[i], "re");
			char line[512];
			bool acq = false;
			while (f && !acq && fgets(line, sizeof(line), f))
				acq = strstr(line, "Acquire::") && line[0] != '/' && line[0] != '#';
			if (f)
				fclose(f);
			if (acq) {
				snprintf(aptopt[naptopt], sizeof(aptopt[0]), "--aptopt=%s", g.gl_pathv[i]);
				argv[a++] = aptopt[naptopt++];
			}
		}
		globfree(&g);
	}
	argv[a++] = (char *)suite;
	argv[a++] = "/dev/null";
	if (mirror)
		argv[a++] = (char *)mirror;
	for (size_t i = 0; i < nsrc; i++)
		argv[a++] = src[i];
	argv[a] = NULL;
	if (progress) {
		fprintf(progress, "provium: image %s: building a Debian %s root with %s%s (mmdebstrap; takes a minute or more)\n",
			p->name, suite, include[0] ? include : "the essential packages",
			include[0] ? " and the essential packages" : "");
		fflush(progress);
	}
	double t0 = (double)sys_mono_ns() / 1e9;
	int st = run_logged(argv, p->name, log, progress, why, sizeof(why));
	if (st != 0) {
		if (st == 127 || st == -ENOENT)
			rc = pv_err_set(err, -ENOENT, SIZE_MAX,
					"cannot build profile '%s''s image: mmdebstrap is not installed (apt-get install "
					"mmdebstrap e2fsprogs; scripts/setup does)", p->name);
		else
			rc = pv_err_set(err, -EIO, SIZE_MAX, "cannot build profile '%s''s image: %s%s(mmdebstrap exit %d)",
					p->name, why[0] ? why : "mmdebstrap failed", why[0] ? " " : " ", st);
		if (progress)
			fprintf(progress, "provium: image %s: the build's log: %s\n", p->name, log);
		/* the log is kept for reading: the directory is renamed out of the way */
		char kept[3300];
		snprintf(kept, sizeof(kept), "%s/debian-%s.failed", base, d.key);
		sys_rm_tree(kept, NULL, 0);
		if (rename(tmp, kept) == 0 && progress)
			fprintf(progress, "provium: image %s: kept as %s/build.log\n", p->name, kept);
		close(lfd);
		return rc;
	}
	double secs = (double)sys_mono_ns() / 1e9 - t0;
	char built[3300];
	snprintf(built, sizeof(built), "%s/root.squashfs", tmp);
	if (access(built, R_OK) != 0) {
		rc = pv_err_set(err, -EIO, SIZE_MAX, "cannot build profile '%s''s image: mmdebstrap succeeded but no "
				"root.squashfs came out (see %s)", p->name, log);
		goto out;
	}
	if ((rc = write_manifest(p, suite, tmp, d.key, secs, d.id, sizeof(d.id))) < 0) {
		pv_err_set(err, rc, SIZE_MAX, "cannot write %s/manifest.json", tmp);
		goto out;
	}
	if (force) {
		char old[3300];
		snprintf(old, sizeof(old), "%s/.old-debian-%s", base, d.key);
		sys_rm_tree(old, NULL, 0);
		rename(d.dir, old);
		sys_rm_tree(old, NULL, 0);
	}
	if (rename(tmp, d.dir) < 0) {
		rc = pv_err_set(err, -errno, SIZE_MAX, "cannot publish %s: %s", d.dir, strerror(errno));
		goto out;
	}
	char failed[4200];
	snprintf(failed, sizeof(failed), "%s.failed", d.dir); /* an earlier attempt's log */
	sys_rm_tree(failed, NULL, 0);
	if (progress) {
		struct stat sb;
		stat(d.root, &sb);
		fprintf(progress, "provium: image %s: built in %.1f s: %s (%.0f MiB, %lld MiB allocated)\n", p->name, secs,
			d.root, (double)sb.st_size / 1048576.0, (long long)sb.st_blocks / 2048);
	}
out:
	if (rc < 0)
		sys_rm_tree(tmp, NULL, 0);
	close(lfd);
	return rc;
}

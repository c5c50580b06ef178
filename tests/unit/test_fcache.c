/* Unit tests of the fixture cache store: keys, the cache directory, writing
 * and looking up entries (and every way an entry can be corrupt), the build
 * lock, listing and eviction. Real files in a mkdtemp dir. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "fcache.h"

static char dir[256];   /* the test's temp dir */
static char cache[300]; /* dir/cache, created by setup */
static char srcd[300];  /* dir/src: snapshot files before they are added */

static const char K1[] = "0123456789abcdef0123456789abcdef";
static const char K2[] = "fedcba9876543210fedcba9876543210";
static const char K3[] = "00000000000000000000000000000003";
static const char K4[] = "00000000000000000000000000000004";

static int setup(void **state)
{
	(void)state;
	umask(022);
	strcpy(dir, "/tmp/pvfcache.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(srcd, sizeof(srcd), "%s/src", dir);
	return mkdir(cache, 0700) == 0 && mkdir(srcd, 0700) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];
	(void)state;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* a + "/" + b, in one of 32 static buffers used in turn. */
static const char *pj(const char *a, const char *b)
{
	static char bufs[32][600];
	static unsigned next;
	char *p = bufs[next++ % 32], tmp[600];
	if (snprintf(tmp, sizeof(tmp), "%s/%s", a, b) >= (int)sizeof(tmp)) /* a may be an earlier result */
		fail_msg("path too long");
	memcpy(p, tmp, sizeof(tmp));
	return p;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static void write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* A source file of n bytes (a pattern seeded by seed) in srcd. */
static const char *make_src(const char *name, size_t n, int seed)
{
	const char *p = pj(srcd, name);
	char *b = malloc(n ? n : 1);
	size_t i;

	assert_non_null(b);
	for (i = 0; i < n; i++)
		b[i] = (char)(i * 7 + (size_t)seed);
	write_file(p, b, n);
	free(b);
	return p;
}

/* Number of directory entries in p besides . and .. */
static int count_entries(const char *p)
{
	char cmd[700];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", p);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

static void fill_vm(struct fc_vm *vm, const char *name, const char *file, uint64_t bytes)
{
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->profile, sizeof(vm->profile), "linux");
	vm->memory = UINT64_C(512) << 20;
	vm->cpus = 2;
	vm->kvm = true;
	snprintf(vm->file, sizeof(vm->file), "%s", file);
	vm->bytes = bytes;
}

/* Writes an entry for key with the given VM files (sizes 100*(i+1)); fills *m. */
static void make_entry(const char *key, const char *fixture, size_t nvms, struct fc_manifest *m)
{
	struct pv_err err = { 0 };
	struct fc_writer w;
	char name[32];
	uint64_t bytes;
	size_t i;

	memset(m, 0, sizeof(*m));
	snprintf(m->fixture, sizeof(m->fixture), "%s", fixture);
	memcpy(m->key, key, FC_KEY_LEN + 1);
	m->lab = nvms > 1;
	m->created_unix = 1700000000;
	m->build_ns = 1234567890123;
	m->nvms = nvms;
	if (fc_begin(cache, key, &w, &err) != 0)
		fail_msg("fc_begin: %s", err.msg);
	for (i = 0; i < nvms; i++) {
		snprintf(name, sizeof(name), "vm%zu.zst", i);
		if (fc_add_file(&w, make_src(name, 100 * (i + 1), (int)i), name, &bytes, &err) != 0)
			fail_msg("fc_add_file: %s", err.msg);
		assert_int_equal(bytes, 100 * (i + 1));
		fill_vm(&m->vms[i], i ? "db" : "web", name, bytes);
	}
	if (fc_commit(&w, m, &err) != 0)
		fail_msg("fc_commit: %s", err.msg);
	assert_false(w.open);
}

static void assert_manifest_equal(const struct fc_manifest *a, const struct fc_manifest *b)
{
	size_t i;

	assert_string_equal(a->fixture, b->fixture);
	assert_string_equal(a->key, b->key);
	assert_int_equal(a->lab, b->lab);
	assert_int_equal(a->created_unix, b->created_unix);
	assert_int_equal(a->build_ns, b->build_ns);
	assert_int_equal(a->nvms, b->nvms);
	for (i = 0; i < a->nvms; i++) {
		assert_string_equal(a->vms[i].name, b->vms[i].name);
		assert_string_equal(a->vms[i].profile, b->vms[i].profile);
		assert_int_equal(a->vms[i].memory, b->vms[i].memory);
		assert_int_equal(a->vms[i].cpus, b->vms[i].cpus);
		assert_int_equal(a->vms[i].kvm, b->vms[i].kvm);
		assert_string_equal(a->vms[i].file, b->vms[i].file);
		assert_int_equal(a->vms[i].bytes, b->vms[i].bytes);
	}
}

/* fc_lookup must fail (negative) with a message containing frag. */
static void lookup_bad(const char *key, const char *frag)
{
	struct fc_manifest m;
	struct pv_err err = { 0 };
	int rc = fc_lookup(cache, key, &m, &err);

	if (rc >= 0)
		fail_msg("lookup returned %d, want an error with \"%s\"", rc, frag);
	if (!strstr(err.msg, frag))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, frag);
	assert_int_equal(m.nvms, 0);
}

static void set_atime(const char *key, time_t t)
{
	struct timespec ts[2] = { { .tv_sec = t }, { .tv_nsec = UTIME_OMIT } };
	assert_int_equal(utimensat(AT_FDCWD, pj(pj(cache, key), "manifest.json"), ts, 0), 0);
}

static time_t get_atime(const char *key)
{
	struct stat st;
	assert_int_equal(stat(pj(pj(cache, key), "manifest.json"), &st), 0);
	return st.st_atime;
}

/* ---- hashing ---- */

static void key_of(char out[FC_KEY_LEN + 1], const char *t1, const char *v1, const char *t2, const char *v2)
{
	struct fc_hash h;
	assert_int_equal(fc_hash_init(&h), 0);
	fc_hash_str(&h, t1, v1);
	if (t2)
		fc_hash_str(&h, t2, v2);
	fc_hash_final(&h, out);
	assert_null(h.st);
}

static void test_hash(void **state)
{
	char a[FC_KEY_LEN + 1], b[FC_KEY_LEN + 1];
	struct fc_hash h;
	(void)state;

	key_of(a, "src", "hello", "profile", "linux");
	key_of(b, "src", "hello", "profile", "linux");
	assert_string_equal(a, b);
	assert_true(fc_key_valid(a));
	assert_int_equal(strlen(a), FC_KEY_LEN);

	/* value boundaries and tag boundaries */
	key_of(a, "t", "a", "u", "bc");
	key_of(b, "t", "ab", "u", "c");
	assert_string_not_equal(a, b);
	key_of(a, "ab", "c", NULL, NULL);
	key_of(b, "a", "bc", NULL, NULL);
	assert_string_not_equal(a, b);
	key_of(a, "t", "x", NULL, NULL);
	key_of(b, "u", "x", NULL, NULL);
	assert_string_not_equal(a, b);
	/* NULL and "" differ */
	key_of(a, "t", "", NULL, NULL);
	key_of(b, "t", NULL, NULL, NULL);
	assert_string_not_equal(a, b);

	/* a string and the same bytes differ; order matters */
	assert_int_equal(fc_hash_init(&h), 0);
	fc_hash_bytes(&h, "t", "x", 1);
	fc_hash_final(&h, b);
	key_of(a, "t", "x", NULL, NULL);
	assert_string_not_equal(a, b);

	assert_int_equal(fc_hash_init(&h), 0);
	fc_hash_u64(&h, "mem", 1);
	fc_hash_u64(&h, "cpus", 2);
	fc_hash_final(&h, a);
	assert_int_equal(fc_hash_init(&h), 0);
	fc_hash_u64(&h, "mem", 2);
	fc_hash_u64(&h, "cpus", 1);
	fc_hash_final(&h, b);
	assert_string_not_equal(a, b);
	assert_int_equal(fc_hash_init(&h), 0);
	fc_hash_u64(&h, "mem", 1);
	fc_hash_u64(&h, "cpus", 2);
	fc_hash_final(&h, b);
	assert_string_equal(a, b);

	assert_true(fc_key_valid(K1));
	assert_false(fc_key_valid("0123456789ABCDEF0123456789abcdef"));
	assert_false(fc_key_valid("0123456789abcdef0123456789abcde"));
	assert_false(fc_key_valid("0123456789abcdef0123456789abcdef0"));
	assert_false(fc_key_valid(NULL));
}

/* ---- the cache directory ---- */

static void resolve_ok(const char *flag, const char *conf, const char *want)
{
	char out[4096];
	struct pv_err err = { 0 };

	if (fc_resolve_dir(flag, conf, out, sizeof(out), &err) != 0)
		fail_msg("fc_resolve_dir: %s", err.msg);
	assert_string_equal(out, want);
}

static int mode_of(const char *p)
{
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	return (int)(st.st_mode & 07777);
}

static void test_resolve_dir(void **state)
{
	char cwd[4096], out[4096], small[8];
	struct pv_err err = { 0 };
	(void)state;

	setenv("HOME", pj(dir, "home"), 1);
	setenv("XDG_CACHE_HOME", pj(dir, "xdg"), 1);
	setenv("PROVIUM_CACHE_DIR", pj(dir, "env"), 1);

	resolve_ok(pj(dir, "flag"), pj(dir, "conf"), pj(dir, "flag"));
	resolve_ok(NULL, pj(dir, "conf"), pj(dir, "env"));
	unsetenv("PROVIUM_CACHE_DIR");
	resolve_ok(NULL, pj(dir, "conf"), pj(dir, "conf"));
	resolve_ok(NULL, NULL, pj(dir, "xdg/provium/fixtures"));
	setenv("XDG_CACHE_HOME", "relative/xdg", 1); /* the XDG spec: ignore relative paths */
	resolve_ok(NULL, NULL, pj(dir, "home/.cache/provium/fixtures"));
	unsetenv("XDG_CACHE_HOME");
	setenv("PROVIUM_CACHE_DIR", "", 1); /* empty: unset */
	resolve_ok(NULL, NULL, pj(dir, "home/.cache/provium/fixtures"));

	/* every directory created is 0700 (umask is 022 here) */
	assert_int_equal(mode_of(pj(dir, "home")), 0700);
	assert_int_equal(mode_of(pj(dir, "home/.cache")), 0700);
	assert_int_equal(mode_of(pj(dir, "home/.cache/provium/fixtures")), 0700);
	assert_int_equal(mode_of(pj(dir, "xdg/provium")), 0700);
	assert_int_equal(mode_of(pj(dir, "flag")), 0700);

	/* an existing directory keeps its mode */
	assert_int_equal(mkdir(pj(dir, "open"), 0755), 0);
	assert_int_equal(chmod(pj(dir, "open"), 0755), 0);
	resolve_ok(pj(dir, "open"), NULL, pj(dir, "open"));
	assert_int_equal(mode_of(pj(dir, "open")), 0755);

	/* relative paths are made absolute against the cwd, lexically tidied */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	resolve_ok("rel/./x//", NULL, pj(dir, "rel/x"));
	resolve_ok(NULL, "conf2", pj(dir, "conf2"));
	assert_int_equal(chdir(cwd), 0);

	/* errors name the path and where it came from */
	write_file(pj(dir, "file"), "x", 1);
	assert_int_equal(fc_resolve_dir(pj(dir, "file/sub"), NULL, out, sizeof(out), &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, pj(dir, "file/sub")));
	assert_non_null(strstr(err.msg, "--cache-dir"));
	setenv("PROVIUM_CACHE_DIR", pj(dir, "file"), 1);
	assert_int_equal(fc_resolve_dir(NULL, NULL, out, sizeof(out), &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "PROVIUM_CACHE_DIR"));
	unsetenv("PROVIUM_CACHE_DIR");
	assert_true(fc_resolve_dir(NULL, pj(dir, "file"), out, sizeof(out), &err) < 0);
	assert_non_null(strstr(err.msg, "cache_dir in provium.lua"));
	assert_int_equal(fc_resolve_dir("", NULL, out, sizeof(out), &err), -EINVAL);
	assert_non_null(strstr(err.msg, "--cache-dir"));
	assert_int_equal(fc_resolve_dir(pj(dir, "flag"), NULL, small, sizeof(small), &err), -ENAMETOOLONG);
}

/* ---- writing and looking up ---- */

static void test_commit_then_lookup(void **state)
{
	struct fc_manifest m, got;
	struct pv_err err = { 0 };
	const char *e = pj(cache, K1);
	struct stat st;
	(void)state;

	make_entry(K1, "net/two_vms", 2, &m);
	assert_int_equal(fc_lookup(cache, K1, &got, &err), 1);
	assert_manifest_equal(&m, &got);

	/* sources moved, nothing left over, modes */
	assert_false(exists(pj(srcd, "vm0.zst")));
	assert_int_equal(count_entries(cache), 1);
	assert_int_equal(count_entries(e), 3);
	assert_int_equal(mode_of(e), 0700);
	assert_int_equal(stat(pj(e, "vm0.zst"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(pj(e, "manifest.json"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(fc_entry_bytes(cache, K1), 100 + 200 + (uint64_t)st.st_size);

	/* absent */
	assert_int_equal(fc_lookup(cache, K2, &got, &err), 0);
	assert_int_equal(fc_entry_bytes(cache, K2), 0);
	assert_int_equal(fc_lookup(cache, "nothex", &got, &err), -EINVAL);

	/* remove: gone, no debris; again: 0 */
	assert_int_equal(fc_remove(cache, K1, &err), 0);
	assert_int_equal(fc_lookup(cache, K1, &got, &err), 0);
	assert_int_equal(count_entries(cache), 0);
	assert_int_equal(fc_remove(cache, K1, &err), 0);
}

/* A lab's network file: recorded in the manifest, checked by lookup like the
 * VMs' files. */
static void test_net_file(void **state)
{
	struct fc_manifest m, got;
	struct pv_err err = { 0 };
	struct fc_writer w;
	uint64_t bytes;
	(void)state;

	memset(&m, 0, sizeof(m));
	snprintf(m.fixture, sizeof(m.fixture), "netlab");
	memcpy(m.key, K1, FC_KEY_LEN + 1);
	m.lab = true;
	m.nvms = 1;
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_int_equal(fc_add_file(&w, make_src("vm0.zst", 100, 0), "vm0.zst", &bytes, &err), 0);
	fill_vm(&m.vms[0], "na", "vm0.zst", bytes);
	assert_int_equal(fc_add_file(&w, make_src("net.bin", 42, 1), "net.bin", &m.net_bytes, &err), 0);
	snprintf(m.net_file, sizeof(m.net_file), "net.bin");
	assert_int_equal(fc_commit(&w, &m, &err), 0);
	assert_int_equal(fc_lookup(cache, K1, &got, &err), 1);
	assert_string_equal(got.net_file, "net.bin");
	assert_int_equal(got.net_bytes, 42);
	/* a manifest that names another size than was added: refused */
	memcpy(m.key, K2, FC_KEY_LEN + 1);
	assert_int_equal(fc_begin(cache, K2, &w, &err), 0);
	assert_int_equal(fc_add_file(&w, make_src("vm0.zst", 100, 0), "vm0.zst", &bytes, &err), 0);
	assert_int_equal(fc_add_file(&w, make_src("net.bin", 42, 1), "net.bin", &bytes, &err), 0);
	m.net_bytes = 43;
	assert_int_equal(fc_commit(&w, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "net: file net.bin was not added with 43 bytes"));
	fc_abort(&w);
	/* a lab without one has none */
	make_entry(K2, "lab", 2, &m);
	assert_int_equal(fc_lookup(cache, K2, &got, &err), 1);
	assert_string_equal(got.net_file, "");
	/* gone or truncated: the entry is corrupt */
	assert_int_equal(truncate(pj(pj(cache, K1), "net.bin"), 7), 0);
	lookup_bad(K1, "net.bin: size 7, manifest says 42");
	assert_int_equal(unlink(pj(pj(cache, K1), "net.bin")), 0);
	lookup_bad(K1, "net.bin: missing");
}

static void test_max_vms(void **state)
{
	struct fc_manifest *m = calloc(1, sizeof(*m)), *got = calloc(1, sizeof(*got));
	struct pv_err err = { 0 };
	struct fc_writer w;
	char name[32];
	size_t i;
	(void)state;

	/* FC_MAX_VMS VMs round-trip */
	assert_int_equal(fc_begin(cache, K2, &w, &err), 0);
	memcpy(m->key, K2, sizeof(K2));
	snprintf(m->fixture, sizeof(m->fixture), "big");
	m->lab = true;
	m->nvms = FC_MAX_VMS;
	for (i = 0; i < FC_MAX_VMS; i++) {
		uint64_t b;
		snprintf(name, sizeof(name), "v%zu", i);
		assert_int_equal(fc_add_file(&w, make_src(name, i, 1), name, &b, &err), 0);
		fill_vm(&m->vms[i], name, name, b);
	}
	if (fc_commit(&w, m, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(fc_lookup(cache, K2, got, &err), 1);
	assert_manifest_equal(m, got);
	free(m);
	free(got);
}

static void test_commit_rejects_bad_manifest(void **state)
{
	struct fc_manifest m;
	struct pv_err err = { 0 };
	struct fc_writer w;
	uint64_t b;
	(void)state;

	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_int_equal(fc_add_file(&w, make_src("a", 10, 0), "a.zst", &b, &err), 0);
	memset(&m, 0, sizeof(m));
	m.nvms = 1;
	fill_vm(&m.vms[0], "a", "a.zst", 11); /* wrong size */
	assert_int_equal(fc_commit(&w, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "a.zst"));
	assert_false(w.open);
	assert_int_equal(count_entries(cache), 0); /* tmp removed, no entry */

	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	m.vms[0].bytes = 0; /* never added */
	assert_int_equal(fc_commit(&w, &m, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "was not added"));
	assert_int_equal(count_entries(cache), 0);

	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	memcpy(m.key, K2, sizeof(K2)); /* another key */
	m.nvms = 0;
	assert_int_equal(fc_commit(&w, &m, &err), -EINVAL);
	assert_int_equal(count_entries(cache), 0);
	assert_int_equal(fc_commit(&w, &m, &err), -EINVAL); /* closed */
}

static void write_manifest(const char *key, const char *json)
{
	write_file(pj(pj(cache, key), "manifest.json"), json, strlen(json));
}

static void test_corrupt_entries(void **state)
{
	struct fc_manifest m;
	char j[2048];
	const char *e = pj(cache, K1);
	(void)state;

	memset(j, 0, sizeof(j));

	make_entry(K1, "one", 1, &m);

	/* a VM file truncated, then missing */
	assert_int_equal(truncate(pj(e, "vm0.zst"), 50), 0);
	lookup_bad(K1, "vm0.zst: size 50, manifest says 100");
	lookup_bad(K1, "is corrupt");
	assert_int_equal(unlink(pj(e, "vm0.zst")), 0);
	lookup_bad(K1, "vm0.zst: missing");
	assert_int_equal(mkdir(pj(e, "vm0.zst"), 0700), 0);
	lookup_bad(K1, "vm0.zst: not a regular file");
	assert_int_equal(rmdir(pj(e, "vm0.zst")), 0);
	write_file(pj(e, "vm0.zst"), j, 100);

	/* the manifest */
	write_manifest(K1, "{ not json");
	lookup_bad(K1, "manifest.json: invalid JSON");
	write_manifest(K1, "[]");
	lookup_bad(K1, "manifest.json: not a JSON object");
	assert_int_equal(unlink(pj(e, "manifest.json")), 0);
	lookup_bad(K1, "manifest.json: missing");

#define MAN(fmt, ...) (snprintf(j, sizeof(j), fmt, __VA_ARGS__), write_manifest(K1, j))
#define GOOD_VM "{\"name\":\"a\",\"profile\":\"p\",\"memory\":1,\"cpus\":1,\"kvm\":false,\"file\":\"vm0.zst\",\"bytes\":100}"
#define HEAD "\"fixture\":\"f\",\"lab\":false,\"created_unix\":1,\"build_ns\":2"
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[" GOOD_VM "]}", K1);
	assert_int_equal(fc_lookup(cache, K1, &m, NULL), 1); /* the hand-written baseline is valid */
	MAN("{\"format\":2,\"key\":\"%s\"," HEAD ",\"vms\":[]}", K1);
	lookup_bad(K1, "this provium reads format 1");
	MAN("{\"key\":\"%s\"," HEAD ",\"vms\":[]}", K1);
	lookup_bad(K1, "\"format\" is missing");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[]}", K2);
	lookup_bad(K1, "key is " "fedcba");
	MAN("{\"format\":1,\"key\":\"%s\",\"fixture\":3,\"lab\":false,\"created_unix\":1,\"build_ns\":2,\"vms\":[]}",
	    K1);
	lookup_bad(K1, "\"fixture\" must be a string");
	MAN("{\"format\":1,\"key\":\"%s\",\"fixture\":\"f\",\"lab\":1,\"created_unix\":1,\"build_ns\":2,\"vms\":[]}",
	    K1);
	lookup_bad(K1, "\"lab\" must be true or false");
	MAN("{\"format\":1,\"key\":\"%s\",\"fixture\":\"f\",\"lab\":true,\"created_unix\":-1,\"build_ns\":2,"
	    "\"vms\":[]}",
	    K1);
	lookup_bad(K1, "\"created_unix\" is out of range");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":{}}", K1);
	lookup_bad(K1, "\"vms\" must be an array");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[1]}", K1);
	lookup_bad(K1, "vms[0]: not an object");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[{\"name\":\"a\",\"profile\":\"p\",\"memory\":1,"
	    "\"cpus\":4294967296,\"kvm\":false,\"file\":\"vm0.zst\",\"bytes\":100}]}",
	    K1);
	lookup_bad(K1, "vms[0]: \"cpus\" is out of range");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[{\"name\":\"a\",\"profile\":\"p\",\"memory\":1,"
	    "\"cpus\":1,\"kvm\":false,\"file\":\"../vm0.zst\",\"bytes\":100}]}",
	    K1);
	lookup_bad(K1, "is not a plain file name");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[{\"name\":\"a\",\"profile\":\"p\",\"memory\":1,"
	    "\"cpus\":1,\"kvm\":false,\"file\":\"x/vm0.zst\",\"bytes\":100}]}",
	    K1);
	lookup_bad(K1, "is not a plain file name");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[" GOOD_VM "," GOOD_VM "]}", K1);
	lookup_bad(K1, "listed twice");
	MAN("{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[{\"name\":\"%0200d\",\"profile\":\"p\",\"memory\":1,"
	    "\"cpus\":1,\"kvm\":false,\"file\":\"vm0.zst\",\"bytes\":100}]}",
	    K1, 0);
	lookup_bad(K1, "\"name\" is longer than 127 bytes");
	{
		/* too many VMs */
		size_t n = (size_t)snprintf(j, sizeof(j), "{\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[", K1);
		for (int i = 0; i <= FC_MAX_VMS; i++)
			n += (size_t)snprintf(j + n, sizeof(j) - n, "%s1", i ? "," : "");
		snprintf(j + n, sizeof(j) - n, "]}");
		write_manifest(K1, j);
		lookup_bad(K1, "65 VMs, at most 64");
	}
	MAN("{\"format\":1,\"format\":1,\"key\":\"%s\"," HEAD ",\"vms\":[]}", K1);
	lookup_bad(K1, "duplicate");

	/* the entry is a file */
	write_file(pj(cache, K2), "x", 1);
	lookup_bad(K2, "not a directory");
#undef MAN
#undef GOOD_VM
#undef HEAD
}

/* Disks of an entry: written, read back, and each file checked by lookup. */
static void test_disks_round_trip(void **state)
{
	struct fc_manifest *m = calloc(1, sizeof(*m)), *got = calloc(1, sizeof(*got));
	struct pv_err err = { 0 };
	struct fc_writer w;
	uint64_t b;
	(void)state;
	assert_true(m && got);
	snprintf(m->fixture, sizeof(m->fixture), "disky");
	m->nvms = 1;
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_int_equal(fc_add_file(&w, make_src("v", 10, 1), "vm0.zst", &b, &err), 0);
	fill_vm(&m->vms[0], "db", "vm0.zst", b);
	m->vms[0].disk_ports = true;
	assert_int_equal(fc_add_file(&w, make_src("d", 4096, 2), "vm0.disk0", &b, &err), 0);
	m->ndisks = 2;
	m->disks[0] = (struct fc_disk){ .vm = 0, .id = "data", .file = "vm0.disk0", .bytes = b, .size = 4096,
					.seed = 18446744073709551615ull, .format = "raw", .faults = true };
	m->disks[1] = (struct fc_disk){ .vm = 0, .id = "ro", .size = 512, .format = "raw", .image = "/srv/base.img",
					.image_format = "raw", .readonly = true };
	assert_int_equal(fc_commit(&w, m, &err), 0);
	assert_int_equal(fc_lookup(cache, K1, got, &err), 1);
	assert_true(got->vms[0].disk_ports);
	assert_int_equal(got->ndisks, 2);
	assert_string_equal(got->disks[0].id, "data");
	assert_string_equal(got->disks[0].file, "vm0.disk0");
	assert_int_equal(got->disks[0].bytes, 4096);
	assert_true(got->disks[0].seed == 18446744073709551615ull);
	assert_true(got->disks[0].faults);
	assert_string_equal(got->disks[1].image, "/srv/base.img");
	assert_true(got->disks[1].readonly);
	assert_string_equal(got->disks[1].file, "");
	/* a disk file gone: the entry is corrupt, naming it */
	assert_int_equal(unlink(pj(pj(cache, K1), "vm0.disk0")), 0);
	lookup_bad(K1, "vm0.disk0: missing");
	free(m);
	free(got);
}

static void test_peer_won(void **state)
{
	struct fc_manifest m, got;
	struct pv_err err = { 0 };
	struct fc_writer w;
	uint64_t b;
	(void)state;

	make_entry(K1, "first", 1, &m);
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_true(exists(w.tmp));
	assert_int_equal(fc_add_file(&w, make_src("x", 5, 3), "x.zst", &b, &err), 0);
	memset(&got, 0, sizeof(got));
	snprintf(got.fixture, sizeof(got.fixture), "second");
	got.nvms = 1;
	fill_vm(&got.vms[0], "x", "x.zst", 5);
	assert_int_equal(fc_commit(&w, &got, &err), 0);
	assert_false(w.open);
	assert_int_equal(count_entries(cache), 1); /* tmp gone */
	assert_int_equal(fc_lookup(cache, K1, &got, &err), 1);
	assert_manifest_equal(&m, &got); /* the first one stays */
}

static void test_abort_and_add_errors(void **state)
{
	struct pv_err err = { 0 };
	struct fc_writer w;
	uint64_t b = 77;
	const char *src;
	(void)state;

	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_true(w.open);

	/* a missing source: error naming it, nothing added */
	assert_int_equal(fc_add_file(&w, pj(srcd, "nope"), "a.zst", &b, &err), -ENOENT);
	assert_non_null(strstr(err.msg, pj(srcd, "nope")));
	assert_int_equal(b, 77);
	assert_int_equal(count_entries(w.tmp), 0);

	/* names */
	src = make_src("s", 3, 0);
	assert_int_equal(fc_add_file(&w, src, "a/b", &b, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "plain file name"));
	assert_int_equal(fc_add_file(&w, src, "..", &b, &err), -EINVAL);
	assert_int_equal(fc_add_file(&w, src, "", &b, &err), -EINVAL);
	assert_int_equal(fc_add_file(&w, src, "manifest.json", &b, &err), -EINVAL);
	assert_int_equal(fc_add_file(&w, srcd, "d", &b, &err), -EINVAL); /* a directory */
	assert_int_equal(fc_add_file(&w, src, "a.zst", &b, &err), 0);
	assert_int_equal(b, 3);
	assert_int_equal(fc_add_file(&w, make_src("s2", 1, 0), "a.zst", &b, &err), -EEXIST);
	assert_true(exists(pj(srcd, "s2"))); /* not consumed */

	/* abort removes everything; twice is fine; then nothing works */
	fc_abort(&w);
	assert_false(w.open);
	assert_int_equal(count_entries(cache), 0);
	fc_abort(&w);
	assert_int_equal(fc_add_file(&w, pj(srcd, "s2"), "b.zst", &b, &err), -EINVAL);

	/* a leftover tmp dir of our own pid is replaced */
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	write_file(pj(w.tmp, "junk"), "j", 1);
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	assert_int_equal(count_entries(w.tmp), 0);
	fc_abort(&w);

	assert_int_equal(fc_begin(cache, "NOTAKEY", &w, &err), -EINVAL);
	assert_false(w.open);
	assert_int_equal(count_entries(cache), 0);
}

/* A source on another file system (tmpfs /dev/shm) is copied, then unlinked. */
static void test_add_file_copies_across_fs(void **state)
{
	char shm[] = "/dev/shm/pvfcache.XXXXXX", *buf;
	struct pv_err err = { 0 };
	struct stat a, b;
	struct fc_writer w;
	uint64_t bytes;
	size_t n = (3u << 20) + 123, i;
	FILE *f;
	(void)state;

	if (stat("/dev/shm", &a) < 0 || stat(cache, &b) < 0 || a.st_dev == b.st_dev || !mkdtemp(shm))
		skip();
	buf = malloc(n);
	assert_non_null(buf);
	for (i = 0; i < n; i++)
		buf[i] = (char)(i % 251);
	write_file(pj(shm, "big"), buf, n);
	assert_int_equal(fc_begin(cache, K1, &w, &err), 0);
	if (fc_add_file(&w, pj(shm, "big"), "big.zst", &bytes, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(bytes, n);
	assert_false(exists(pj(shm, "big")));
	assert_int_equal(stat(pj(w.tmp, "big.zst"), &a), 0);
	assert_int_equal(a.st_mode & 0777, 0600);
	f = fopen(pj(w.tmp, "big.zst"), "rb");
	assert_non_null(f);
	for (i = 0; i < n; i++)
		if (fgetc(f) != (unsigned char)buf[i])
			fail_msg("copy differs at byte %zu", i);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	free(buf);
	fc_abort(&w);
	rmdir(shm);
}

/* ---- the build lock ---- */

/* A waiter that looks just after the holder locked, before it wrote its
 * name, still learns the name (regression: "another provium process" was
 * reported in fixture_build_waiting). */
static void test_lock_holder_written_late(void **state)
{
	struct fc_lock l;
	char held[64] = "";
	int p[2], status;
	pid_t pid;
	(void)state;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(pj(cache, "0123456789abcdef0123456789abcdef.lock"), O_RDWR | O_CREAT, 0600);
		struct timespec ts = { 0, 30000000 };
		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		nanosleep(&ts, NULL); /* locked, name not written yet */
		if (write(fd, "late builder\n1\n", 16) != 16)
			_exit(1);
		ts.tv_nsec = 500000000;
		nanosleep(&ts, NULL);
		_exit(0);
	}
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(fc_lock_try(cache, K1, "me", &l, held, sizeof(held), NULL), 0);
	assert_string_equal(held, "late builder");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	close(p[0]);
	close(p[1]);
}

static void test_lock(void **state)
{
	struct fc_lock a, b;
	struct pv_err err = { 0 };
	char held[64], want[64], text[128] = { 0 };
	int status, fd;
	pid_t pid;
	(void)state;

	assert_int_equal(fc_lock_try(cache, K1, "builder A", &a, held, sizeof(held), &err), 1);
	fd = open(pj(cache, "0123456789abcdef0123456789abcdef.lock"), O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, text, sizeof(text) - 1) > 0);
	snprintf(want, sizeof(want), "builder A\n%ld\n", (long)getpid());
	assert_string_equal(text, want);

	strcpy(held, "unchanged");
	assert_int_equal(fc_lock_try(cache, K1, "builder B", &b, held, sizeof(held), &err), 0);
	assert_string_equal(held, "builder A");
	assert_int_equal(b.fd, -1);
	/* a short buffer is truncated */
	assert_int_equal(fc_lock_try(cache, K1, "builder B", &b, held, 4, &err), 0);
	assert_string_equal(held, "bui");

	/* another key is independent */
	assert_int_equal(fc_lock_try(cache, K2, "builder B", &b, held, sizeof(held), &err), 1);
	fc_unlock(&b);

	/* a waiter in a child blocks until we unlock */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fc_lock c;
		close(a.fd); /* an inherited descriptor would share our lock */
		_exit(fc_lock_wait(cache, K1, "child", &c, NULL) == 0 ? 0 : 1);
	}
	usleep(100 * 1000);
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still waiting */

	fc_unlock(&a);
	assert_int_equal(a.fd, -1);
	fc_unlock(&a); /* twice is fine */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the child's lock died with it; the file stays; empty => generic text */
	assert_true(exists(pj(cache, "0123456789abcdef0123456789abcdef.lock")));

	assert_int_equal(fc_lock_try(cache, K1, "builder B", &b, held, sizeof(held), &err), 1);
	assert_int_equal(fc_lock_wait(cache, K2, "w", &a, &err), 0);
	fc_unlock(&a);
	fc_unlock(&b);
	memset(text, 0, sizeof(text));
	assert_int_equal(pread(fd, text, sizeof(text), 0), 0); /* holder text truncated on unlock */
	close(fd);

	/* an empty holder file reads as a generic description */
	assert_int_equal(fc_lock_try(cache, K1, "x", &a, held, sizeof(held), &err), 1);
	assert_int_equal(ftruncate(a.fd, 0), 0);
	assert_int_equal(fc_lock_try(cache, K1, "y", &b, held, sizeof(held), &err), 0);
	assert_string_equal(held, "another provium process");
	fc_unlock(&a);

	assert_int_equal(fc_lock_try(cache, "bad", "y", &b, held, sizeof(held), &err), -EINVAL);
	assert_int_equal(fc_lock_try(pj(dir, "nodir"), K1, "y", &b, held, sizeof(held), &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nodir"));
}

/* ---- listing and eviction ---- */

static void test_list_and_touch(void **state)
{
	struct fc_manifest m;
	struct fc_info *v;
	struct pv_err err = { 0 };
	time_t now = time(NULL);
	size_t n;
	(void)state;

	assert_int_equal(fc_list(cache, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(v);

	make_entry(K1, "one", 1, &m);
	make_entry(K2, "two", 2, &m);
	make_entry(K3, "three", 1, &m);
	set_atime(K1, now - 300);
	set_atime(K2, now - 100);
	set_atime(K3, now - 200);
	assert_int_equal(truncate(pj(pj(cache, K3), "vm0.zst"), 1), 0); /* corrupt */
	/* noise that is not an entry */
	assert_int_equal(mkdir(pj(cache, "not-a-key"), 0700), 0);
	write_file(pj(cache, K4), "file, not dir", 13);

	assert_int_equal(fc_list(cache, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].key, K2);
	assert_string_equal(v[0].fixture, "two");
	assert_int_equal(v[0].last_used, now - 100);
	assert_int_equal(v[0].created, 1700000000);
	assert_int_equal(v[0].bytes, fc_entry_bytes(cache, K2));
	assert_false(v[0].corrupt);
	assert_string_equal(v[1].key, K3);
	assert_true(v[1].corrupt);
	assert_string_equal(v[1].fixture, "?");
	assert_string_equal(v[2].key, K1);
	assert_int_equal(v[2].last_used, now - 300);
	free(v);

	/* listing and lookup do not count as a use; touch does, and keeps mtime */
	assert_int_equal(fc_lookup(cache, K1, &m, &err), 1);
	assert_int_equal(get_atime(K1), now - 300);
	{
		struct stat before, after;
		assert_int_equal(stat(pj(pj(cache, K1), "manifest.json"), &before), 0);
		fc_touch(cache, K1);
		assert_int_equal(stat(pj(pj(cache, K1), "manifest.json"), &after), 0);
		assert_true(after.st_atime >= now);
		assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
		assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	}
	assert_int_equal(fc_list(cache, &v, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].key, K1);
	assert_string_equal(v[1].key, K2);
	free(v);

	assert_int_equal(fc_list(pj(dir, "nodir"), &v, &n, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nodir"));
}

static void test_evict(void **state)
{
	struct fc_manifest m;
	struct fc_info *v;
	struct fc_lock held;
	struct pv_err err = { 0 };
	time_t now = time(NULL);
	char dead[128], live[128], aside[128];
	uint64_t b2, b3, total, freed;
	size_t n, removed;
	int status;
	pid_t pid;
	(void)state;

	make_entry(K1, "fx1", 1, &m);
	make_entry(K2, "fx2", 1, &m);
	make_entry(K3, "fx3", 1, &m);
	make_entry(K4, "fx4", 2, &m);
	set_atime(K1, now - 400);
	set_atime(K2, now - 300);
	set_atime(K3, now - 200);
	set_atime(K4, now - 100);
	b2 = fc_entry_bytes(cache, K2);
	b3 = fc_entry_bytes(cache, K3);
	total = fc_entry_bytes(cache, K1) + b2 + b3 + fc_entry_bytes(cache, K4);

	/* debris: a tmp dir of a dead process, one of a live one (us) */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	snprintf(dead, sizeof(dead), "%s.tmp.%ld", K1, (long)pid);
	snprintf(aside, sizeof(aside), "%s.tmp.%ld.rm", K2, (long)pid);
	snprintf(live, sizeof(live), "%s.tmp.%ld", K2, (long)getpid());
	assert_int_equal(mkdir(pj(cache, dead), 0700), 0);
	write_file(pj(pj(cache, dead), "part.zst"), "12345", 5);
	assert_int_equal(mkdir(pj(cache, aside), 0700), 0);
	write_file(pj(pj(cache, aside), "x"), "12", 2);
	assert_int_equal(mkdir(pj(cache, live), 0700), 0);
	write_file(pj(pj(cache, live), "part.zst"), "123", 3);

	/* under the cap: only debris goes */
	assert_int_equal(fc_evict(cache, total, &removed, &freed, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(freed, 7);
	assert_false(exists(pj(cache, dead)));
	assert_false(exists(pj(cache, aside)));
	assert_true(exists(pj(cache, live)));

	/* the oldest is locked: skipped; the next two go, the newest stays */
	assert_int_equal(fc_lock_try(cache, K1, "a test", &held, NULL, 0, &err), 1);
	assert_int_equal(fc_evict(cache, total - b2 - b3 + 1, &removed, &freed, &err), 0);
	assert_int_equal(removed, 1 + 1);
	assert_int_equal(freed, b2 + b3);
	assert_int_equal(fc_lookup(cache, K1, &m, &err), 1);
	assert_int_equal(fc_lookup(cache, K2, &m, &err), 0);
	assert_int_equal(fc_lookup(cache, K3, &m, &err), 0);
	assert_int_equal(fc_lookup(cache, K4, &m, &err), 1);
	assert_true(exists(pj(cache, "0123456789abcdef0123456789abcdef.lock")));
	assert_false(exists(pj(cache, "fedcba9876543210fedcba9876543210.lock")));
	assert_false(exists(pj(cache, "00000000000000000000000000000003.lock")));
	assert_true(exists(pj(cache, live)));
	fc_unlock(&held);

	/* cap 0 removes everything unlocked; NULL counters are fine */
	assert_int_equal(fc_evict(cache, 0, NULL, NULL, &err), 0);
	assert_int_equal(fc_list(cache, &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(fc_entry_bytes(cache, K1), 0);
	assert_true(exists(pj(cache, live)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash),
		cmocka_unit_test_setup_teardown(test_resolve_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_then_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_vms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_rejects_bad_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disks_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_won, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_and_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_file_copies_across_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_holder_written_late, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_touch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evict, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of provium.lua loading: every key valid and invalid, defaults,
 * Lua errors with file:line, and the shape of the returned value. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "config.h"
#include "pbuild.h"

#define GI (UINT64_C(1) << 30)
#define MI (UINT64_C(1) << 20)
#define S UINT64_C(1000000000)

static char dir[256];
static char path[300];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pvconfig.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/provium.lua", dir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_config(const char *src)
{
	write_file(path, src, strlen(src));
}

/* Loads src as provium.lua and expects success. */
static void load_ok(const char *src, struct pv_config *c)
{
	struct pv_err err = { 0 };

	write_config(src);
	if (pv_config_load(path, c, &err) != 0)
		fail_msg("config rejected: %s\n--- source:\n%s", err.msg, src);
	assert_string_equal(c->path, path);
}

/* Loads src and expects failure with a message containing each of the
 * NULL-terminated fragments, and a released (zeroed) config. */
static void load_bad(const char *src, int want_rc, ...)
{
	struct pv_config c;
	struct pv_err err = { 0 };
	const char *frag;
	va_list ap;
	int rc;

	write_config(src);
	memset(&c, 0xa5, sizeof(c));
	rc = pv_config_load(path, &c, &err);
	if (rc != want_rc)
		fail_msg("rc %d, want %d (%s)\n--- source:\n%s", rc, want_rc, err.msg, src);
	va_start(ap, want_rc);
	while ((frag = va_arg(ap, const char *)) != NULL) {
		if (!strstr(err.msg, frag)) {
			va_end(ap);
			fail_msg("message lacks \"%s\": %s\n--- source:\n%s", frag, err.msg, src);
		}
	}
	va_end(ap);
	/* the message starts with the file, like Lua's own ones */
	if (strncmp(err.msg, path, strlen(path)) != 0)
		fail_msg("message does not start with the path: %s", err.msg);
	assert_null(c.path);
	assert_null(c.roots);
	assert_int_equal(c.nroots, 0);
	assert_null(c.cache_dir);
	/* and releasing it again is harmless */
	pv_config_release(&c);
}

static void check_defaults(const struct pv_config *c)
{
	assert_null(c->roots);
	assert_int_equal(c->nroots, 0);
	assert_null(c->cache_dir);
	assert_int_equal(c->cache_max_size, 20 * GI);
	assert_false(c->has_memory);
	assert_false(c->has_cpus);
	assert_false(c->has_overcommit);
	assert_false(c->has_timeout);
	assert_false(c->has_psi);
	assert_false(c->has_profiles);
	/* the documented constant defaults are filled in too */
	assert_true(c->cpu_overcommit == 1.0);
	assert_int_equal(c->timeout_ns, 300 * S);
	assert_true(c->psi_threshold == 10.0);
	assert_int_equal(c->lua_memory, 256 * MI);
	assert_int_equal(c->nprofiles, 0);
}

static void test_no_file_gives_defaults(void **state)
{
	(void)state;
	struct pv_config c;
	struct pv_err err;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(cwd >= 0);
	assert_int_equal(chdir(dir), 0);
	memset(&c, 0xa5, sizeof(c));
	int rc = pv_config_load(NULL, &c, &err);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(rc, 0);
	assert_null(c.path);
	check_defaults(&c);
	pv_config_release(&c);
}

static void test_null_path_uses_provium_lua_in_cwd(void **state)
{
	(void)state;
	struct pv_config c;
	struct pv_err err;
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	write_config("return { cpus = 3 }");
	assert_true(cwd >= 0);
	assert_int_equal(chdir(dir), 0);
	int rc = pv_config_load(NULL, &c, &err);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	if (rc != 0)
		fail_msg("%s", err.msg);
	assert_string_equal(c.path, "provium.lua");
	assert_true(c.has_cpus);
	assert_int_equal(c.cpus, 3);
	pv_config_release(&c);

	/* and its errors name it */
	write_config("return { cpus = 0 }");
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(chdir(dir), 0);
	rc = pv_config_load(NULL, &c, &err);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err.msg, "provium.lua: \"cpus\""));
}

static void test_explicit_missing_path(void **state)
{
	(void)state;
	struct pv_config c;
	struct pv_err err;
	char p[400];

	snprintf(p, sizeof(p), "%s/nope.lua", dir);
	assert_int_equal(pv_config_load(p, &c, &err), -ENOENT);
	assert_non_null(strstr(err.msg, p));
	assert_non_null(strstr(err.msg, "does not exist"));
	assert_null(c.path);
}

static void test_directory_path(void **state)
{
	(void)state;
	struct pv_config c;
	struct pv_err err;

	assert_true(pv_config_load(dir, &c, &err) < 0);
	assert_non_null(strstr(err.msg, dir));
	assert_null(c.path);
}

static void test_empty_table(void **state)
{
	(void)state;
	struct pv_config c;

	load_ok("return {}", &c);
	check_defaults(&c);
	pv_config_release(&c);
}

static void test_every_key(void **state)
{
	(void)state;
	struct pv_config c;

	load_ok("-- the whole set\n"
		"return {\n"
		"  roots = { 'tests', 'more/tests' },\n"
		"  profiles = { default = { kernel = '/dev/null', initrd = '/dev/null', memory = '1G' } },\n"
		"  cache_dir = '/var/cache/provium',\n"
		"  cache_max_size = '50G',\n"
		"  memory = '16G',\n"
		"  cpus = 8,\n"
		"  cpu_overcommit = 1.5,\n"
		"  timeout = '10m',\n"
		"  psi_threshold = 25,\n"
		"  lua_memory = '1G',\n"
		"}\n",
		&c);
	assert_int_equal(c.nroots, 2);
	assert_string_equal(c.roots[0], "tests");
	assert_string_equal(c.roots[1], "more/tests");
	assert_true(c.has_profiles);
	assert_string_equal(c.cache_dir, "/var/cache/provium");
	assert_int_equal(c.cache_max_size, 50 * GI);
	assert_true(c.has_memory);
	assert_int_equal(c.memory, 16 * GI);
	assert_true(c.has_cpus);
	assert_int_equal(c.cpus, 8);
	assert_true(c.has_overcommit);
	assert_true(c.cpu_overcommit == 1.5);
	assert_true(c.has_timeout);
	assert_int_equal(c.timeout_ns, 600 * S);
	assert_true(c.has_psi);
	assert_true(c.psi_threshold == 25);
	assert_int_equal(c.lua_memory, GI);
	assert_int_equal(c.nprofiles, 1);
	assert_int_equal(pv_config_profile(&c, "default")->memory, GI);
	pv_config_release(&c);
	/* released means zeroed, and a second release is harmless */
	assert_null(c.roots);
	assert_null(c.path);
	pv_config_release(&c);
}

static void test_number_forms(void **state)
{
	(void)state;
	struct pv_config c;

	load_ok("return { cache_max_size = 1024, memory = 4 * 1024^3, timeout = 90.5,\n"
		"         cpus = 8 / 2, psi_threshold = 0, cpu_overcommit = 3 }",
		&c);
	assert_int_equal(c.cache_max_size, 1024);
	assert_int_equal(c.memory, 4 * GI); /* a float in Lua */
	assert_int_equal(c.timeout_ns, 90500 * UINT64_C(1000000));
	assert_int_equal(c.cpus, 4); /* 4.0, a float with an integral value */
	assert_true(c.has_psi);
	assert_true(c.psi_threshold == 0);
	assert_true(c.cpu_overcommit == 3);
	pv_config_release(&c);

	/* an integer memory above 2^53 stays exact */
	load_ok("return { memory = 9007199254740993 }", &c);
	assert_int_equal(c.memory, UINT64_C(9007199254740993));
	pv_config_release(&c);

	/* strings for everything that takes a unit */
	load_ok("return { cache_max_size = '0', memory = '512MiB', timeout = '1.5s' }", &c);
	assert_int_equal(c.cache_max_size, 0);
	assert_int_equal(c.memory, 512 * MI);
	assert_int_equal(c.timeout_ns, 1500 * UINT64_C(1000000));
	pv_config_release(&c);
}

static void test_lua_computation(void **state)
{
	(void)state;
	struct pv_config c;

	/* the standard libraries are there, and the chunk can compute */
	load_ok("local roots = {}\n"
		"for _, d in ipairs({ 'a', 'b', 'c' }) do roots[#roots + 1] = 'tests/' .. d end\n"
		"return { roots = roots, cache_dir = os.getenv('HOME') and 'x' or 'y',\n"
		"         cpus = math.max(2, 3), timeout = string.format('%dm', 7) }\n",
		&c);
	assert_int_equal(c.nroots, 3);
	assert_string_equal(c.roots[2], "tests/c");
	assert_int_equal(c.cpus, 3);
	assert_int_equal(c.timeout_ns, 420 * S);
	pv_config_release(&c);
}

static void test_roots_invalid(void **state)
{
	(void)state;
	load_bad("return { roots = 'tests' }", -EINVAL, "\"roots\" must be an array", "got string \"tests\"",
		 NULL);
	load_bad("return { roots = { 'a', 5 } }", -EINVAL, "roots[2] must be a non-empty string", "got 5",
		 NULL);
	load_bad("return { roots = { 'a', '' } }", -EINVAL, "roots[2] must be a non-empty string",
		 "got string \"\"", NULL);
	load_bad("return { roots = { 'a', 'b\\0c' } }", -EINVAL, "roots[2]", "NUL", NULL);
	load_bad("return { roots = { 'a', dir = 'b' } }", -EINVAL, "\"roots\" must be an array of strings",
		 "has the key \"dir\"", NULL);
	load_bad("return { roots = { 'a', nil, 'c' } }", -EINVAL, "roots", NULL);
	load_bad("return { roots = { { 'nested' } } }", -EINVAL, "roots[1]", "got table", NULL);
}

static void test_empty_roots_array(void **state)
{
	(void)state;
	struct pv_config c;

	load_ok("return { roots = {} }", &c);
	assert_int_equal(c.nroots, 0);
	pv_config_release(&c);
}

static void test_profiles_invalid(void **state)
{
	(void)state;
	load_bad("return { profiles = 'default' }", -EINVAL, "\"profiles\" must be a table",
		 "got string \"default\"", NULL);
	load_bad("return { profiles = 3 }", -EINVAL, "\"profiles\"", "got 3", NULL);
}

/* Profiles are checked when the config loads, not when a test boots one. */
static void test_profiles(void **state)
{
	(void)state;
	struct pv_config c;
	char src[4096], k[300], i[300];
	const struct pv_profile *p;

	snprintf(k, sizeof(k), "%s/vmlinuz", dir);
	snprintf(i, sizeof(i), "%s/initrd", dir);
	write_file(k, "k", 1);
	write_file(i, "i", 1);
	snprintf(src, sizeof(src),
		 "return { profiles = {\n"
		 "  full = { kernel = '%s', initrd = '%s', cmdline = 'loglevel=7', memory = '512M', cpus = 2,\n"
		 "           accel = 'tcg', agent = 'included', vmgenid = true },\n"
		 "  bare = { kernel = '%s', initrd = '%s' },\n"
		 "  store = { kernel = '%s', initrd = '%s', disks = { { id = 'a', size = '1M', seed = -3 },\n"
		 "            { id = 'b', image = '%s', readonly = true } } },\n"
		 "} }\n",
		 k, i, k, i, k, i, k);
	load_ok(src, &c);
	assert_int_equal(c.nprofiles, 3);
	p = pv_config_profile(&c, "store");
	assert_non_null(p);
	assert_true(p->has_disks);
	assert_int_equal(p->ndisks, 2);
	assert_string_equal(p->disks[0].id, "a");
	assert_int_equal(p->disks[0].size, MI);
	assert_true(p->disks[0].has_seed);
	assert_int_equal(p->disks[0].seed, -3);
	assert_int_equal(p->disks[0].faults, -1);
	assert_string_equal(p->disks[1].image, k);
	assert_int_equal(p->disks[1].readonly, 1);
	assert_int_equal(p->disks[1].writable, -1);
	p = pv_config_profile(&c, "full");
	assert_non_null(p);
	assert_string_equal(p->kernel, k);
	assert_string_equal(p->initrd, i);
	assert_string_equal(p->cmdline, "loglevel=7");
	assert_int_equal(p->memory, 512 * MI);
	assert_int_equal(p->cpus, 2);
	assert_int_equal(p->accel, 0);
	assert_true(p->agent_included);
	assert_true(p->vmgenid);
	p = pv_config_profile(&c, "bare");
	assert_non_null(p);
	assert_null(p->cmdline);
	assert_int_equal(p->memory, 0);
	assert_int_equal(p->cpus, 0);
	assert_int_equal(p->accel, -1);
	assert_false(p->agent_included);
	assert_null(pv_config_profile(&c, "linux"));
	pv_config_release(&c);
}

static void test_profiles_debian(void **state)
{
	(void)state;
	struct pv_config c;
	char src[2048], k[300];
	const struct pv_profile *p;

	snprintf(k, sizeof(k), "%s/vmlinuz", dir);
	write_file(k, "k", 1);
	snprintf(src, sizeof(src),
		 "return { profiles = {\n"
		 "  web = { base = 'debian', packages = { 'nginx', 'curl', 'nginx' }, memory = '512M' },\n"
		 "  sd = { base = 'debian', init = 'systemd', suite = 'trixie', mirror = 'http://deb.debian.org/debian' },\n"
		 "  own = { base = 'debian', kernel = '%s', init = 'agent' },\n"
		 "} }\n", k);
	load_ok(src, &c);
	p = pv_config_profile(&c, "web");
	assert_string_equal(p->base, "debian");
	assert_null(p->kernel);
	assert_null(p->initrd);
	assert_int_equal(p->npackages, 2); /* sorted, once each */
	assert_string_equal(p->packages[0], "curl");
	assert_string_equal(p->packages[1], "nginx");
	assert_false(p->init_systemd);
	assert_null(p->suite);
	p = pv_config_profile(&c, "sd");
	assert_true(p->init_systemd);
	assert_string_equal(p->suite, "trixie");
	assert_string_equal(p->mirror, "http://deb.debian.org/debian");
	p = pv_config_profile(&c, "own");
	assert_string_equal(p->kernel, k);
	assert_null(p->initrd);
	pv_config_release(&c);

	load_bad("return { profiles = { p = { base = 'ubuntu' } } }", -EINVAL,
		 "profiles.p.base must be \"debian\" (the only base there is), got string \"ubuntu\"", NULL);
	load_bad("return { profiles = { p = { base = 'debian', packages = 'curl' } } }", -EINVAL,
		 "profiles.p.packages must be a list of Debian package names, got string", NULL);
	load_bad("return { profiles = { p = { base = 'debian', packages = { 'curl', 'Bad Name' } } } }", -EINVAL,
		 "profiles.p.packages[2] is not a Debian package name", NULL);
	load_bad("return { profiles = { p = { base = 'debian', init = 'sysv' } } }", -EINVAL,
		 "profiles.p.init must be \"agent\"", "or \"systemd\"", NULL);
	load_bad("return { profiles = { p = { base = 'debian', mirror = 'deb.debian.org' } } }", -EINVAL,
		 "profiles.p.mirror must be an archive URL", NULL);
	load_bad("return { profiles = { p = { base = 'debian', suite = 'book worm' } } }", -EINVAL,
		 "profiles.p.suite must be a Debian suite name", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', packages = { 'curl' } } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.packages needs base = \"debian\"", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { base = 'debian', initrd = '%s' } } }", k);
	load_bad(src, -EINVAL, "profiles.p gives an initrd without a kernel", NULL);
}

/* build, build_out, build_inputs and {out} (docs/config.md, "Profiles that
 * build themselves"), and the build's cache key (pbuild.h). */
static void test_profiles_build(void **state)
{
	(void)state;
	struct pv_config c;
	struct pv_err err;
	char src[2048], in[300], key1[32], key2[32], key3[32];
	const struct pv_profile *p;

	snprintf(in, sizeof(in), "%s/src", dir);
	assert_int_equal(mkdir(in, 0755), 0);
	snprintf(src, sizeof(src), "%s/src/a.c", dir);
	write_file(src, "v1", 2);
	snprintf(src, sizeof(src),
		 "return { profiles = {\n"
		 "  k = { build = 'make O={out} all', build_inputs = { '%s' }, kernel = '{out}/bzImage', initrd = '{out}/i' },\n"
		 "  o = { build = 'true', build_out = '%s/out', kernel = '{out}/k', initrd = '/x/{out}' },\n"
		 "} }\n", in, dir);
	load_ok(src, &c);
	p = pv_config_profile(&c, "k");
	assert_string_equal(p->build_out, ".provium-out/k");
	assert_string_equal(p->build, "make O=.provium-out/k all");
	assert_string_equal(p->kernel, ".provium-out/k/bzImage");
	assert_int_equal(p->nbuild_inputs, 1);
	assert_string_equal(p->build_inputs[0], in);
	assert_int_equal(pbuild_key(p, key1, sizeof(key1), &err), 0);
	assert_int_equal(pbuild_key(p, key2, sizeof(key2), &err), 0);
	assert_string_equal(key1, key2); /* nothing changed: the same key */
	snprintf(src, sizeof(src), "%s/src/a.c", dir);
	write_file(src, "v2 longer", 9);
	assert_int_equal(pbuild_key(p, key3, sizeof(key3), &err), 0);
	assert_string_not_equal(key1, key3);
	p = pv_config_profile(&c, "o");
	snprintf(src, sizeof(src), "%s/out/k", dir);
	assert_string_equal(p->kernel, src);
	snprintf(src, sizeof(src), "/x/%s/out", dir);
	assert_string_equal(p->initrd, src);
	assert_int_equal(p->nbuild_inputs, 0);
	assert_int_equal(pbuild_key(p, key2, sizeof(key2), &err), 0);
	assert_string_not_equal(key2, key3); /* another command */
	pv_config_release(&c);

	load_bad("return { profiles = { p = { build = '', kernel = '{out}/k', initrd = '{out}/i' } } }", -EINVAL,
		 "profiles.p.build must be a non-empty shell command", NULL);
	load_bad("return { profiles = { p = { build_inputs = { 'x' }, kernel = '/bin/sh', initrd = '/bin/sh' } } }",
		 -EINVAL, "profiles.p.build_inputs goes with build = \"a command\"", NULL);
	load_bad("return { profiles = { p = { kernel = '{out}/k', initrd = '/bin/sh' } } }", -EINVAL,
		 "profiles.p.kernel: {out}/k uses {out}, the output of a build, but the profile has no build", NULL);
	load_bad("return { profiles = { p = { build = 'true', build_inputs = {}, kernel = '{out}/k', initrd = '{out}/i' } } }",
		 -EINVAL, "profiles.p.build_inputs must be a list of files and directories", NULL);
	load_bad("return { profiles = { p = { build = 'true', build_inputs = { 7 }, kernel = '{out}/k', initrd = '{out}/i' } } }",
		 -EINVAL, "profiles.p.build_inputs[1] must be a non-empty string (a path)", NULL);
}

static void test_profiles_bad(void **state)
{
	(void)state;
	char src[2048], k[300];

	snprintf(k, sizeof(k), "%s/vmlinuz", dir);
	write_file(k, "k", 1);
	load_bad("return { profiles = { linux = { memory = '1G' } } }", -EINVAL,
		 "profiles.linux: \"linux\" is a built-in profile", "name your profile differently", NULL);
	load_bad("return { profiles = { host = { memory = '1G' } } }", -EINVAL, "profiles.host: \"host\" is a built-in profile", NULL);
	load_bad("return { profiles = { 'x' } }", -EINVAL, "profiles must be named", "got the key 1", NULL);
	load_bad("return { profiles = { p = 'x' } }", -EINVAL, "profiles.p must be a table", NULL);
	load_bad("return { profiles = { p = { memory = '1G' } } }", -EINVAL, "profiles.p needs both kernel and initrd",
		 NULL);
	load_bad("return { profiles = { p = { kernel = '/nonexistent/k', initrd = '/nonexistent/i' } } }", -ENOENT,
		 "profiles.p.kernel: /nonexistent/k: No such file or directory", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '/nonexistent/i' } } }", k);
	load_bad(src, -ENOENT, "profiles.p.initrd: /nonexistent/i: No such file or directory", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', memroy = '1G' } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.memroy is not a profile key", "did you mean \"memory\"?",
		 "known: kernel, initrd, cmdline, memory, cpus, accel, agent, vmgenid, disks, base, suite, packages, init, "
		 "mirror", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', colour = 'red' } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.colour is not a profile key (known:", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', cpus = 65 } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.cpus must be an integer from 1 to 64, got 65", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', memory = '1M' } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.memory: at least 32M", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', accel = 'xen' } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.accel must be \"auto\", \"kvm\" or \"tcg\", got string \"xen\"", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', agent = 'yes' } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.agent can only be \"included\"", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', cmdline = 3 } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.cmdline must be a string", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', vmgenid = 1 } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.vmgenid must be true or false", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', disks = { { id = 'd', sise = 1 } } } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.disks[1] has an unknown key \"sise\" (did you mean \"size\"?", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', disks = { { id = 'd', faults = 1 } } } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.disks[1].faults must be true or false", NULL);
	snprintf(src, sizeof(src), "return { profiles = { p = { kernel = '%s', initrd = '%s', disks = { { id = 'd', seed = 1.5 } } } } }", k, k);
	load_bad(src, -EINVAL, "profiles.p.disks[1].seed must be an integer", NULL);
	/* of several bad profiles, the first by name is reported */
	load_bad("return { profiles = { zz = { }, aa = { } } }", -EINVAL, "profiles.aa needs both", NULL);
}

static void test_os_exit(void **state)
{
	(void)state;
	load_bad("os.exit(0)\n", -EINVAL, "provium.lua:1: os.exit is not allowed in provium.lua", NULL);
	load_bad("local x = 1\nos.exit(true, true)\n", -EINVAL, "provium.lua:2: os.exit is not allowed", NULL);
}

static void test_lua_memory(void **state)
{
	(void)state;
	struct pv_config c;

	load_ok("return { lua_memory = 64 * 1024 * 1024 }", &c);
	assert_int_equal(c.lua_memory, 64 * MI);
	pv_config_release(&c);
	load_bad("return { lua_memory = '512K' }", -EINVAL, "\"lua_memory\"", "at least 1M", NULL);
	load_bad("return { lua_memory = true }", -EINVAL, "\"lua_memory\" must be a size", NULL);
}

static void test_cache_dir_invalid(void **state)
{
	(void)state;
	load_bad("return { cache_dir = 5 }", -EINVAL, "\"cache_dir\" must be a non-empty string", "got 5",
		 NULL);
	load_bad("return { cache_dir = '' }", -EINVAL, "\"cache_dir\"", NULL);
	load_bad("return { cache_dir = {} }", -EINVAL, "\"cache_dir\"", "got table", NULL);
}

static void test_sizes_invalid(void **state)
{
	(void)state;
	load_bad("return { cache_max_size = '20Q' }", -EINVAL, "\"cache_max_size\"", "bad size \"20Q\"",
		 "unknown unit", "\"512M\"", NULL);
	load_bad("return { cache_max_size = true }", -EINVAL, "\"cache_max_size\" must be a size",
		 "got boolean", NULL);
	load_bad("return { memory = -1 }", -EINVAL, "\"memory\"", "negative", NULL);
	load_bad("return { memory = -1.5 }", -EINVAL, "\"memory\"", "negative", NULL);
	load_bad("return { memory = 'abc' }", -EINVAL, "\"memory\"", "bad size \"abc\"", NULL);
	load_bad("return { memory = 0 }", -EINVAL, "\"memory\"", "more than 0", NULL);
	load_bad("return { memory = '0G' }", -EINVAL, "\"memory\"", "more than 0", NULL);
	load_bad("return { memory = 1e30 }", -ERANGE, "\"memory\"", "too large", NULL);
	load_bad("return { memory = 0/0 }", -EINVAL, "\"memory\"", "finite", NULL);
	load_bad("return { memory = '1G\\0' }", -EINVAL, "\"memory\"", "NUL", NULL);
}

static void test_cpus_invalid(void **state)
{
	(void)state;
	load_bad("return { cpus = '4' }", -EINVAL, "\"cpus\" must be an integer >= 1, got string \"4\"",
		 NULL);
	load_bad("return { cpus = 0 }", -EINVAL, "\"cpus\" must be an integer >= 1, got 0", NULL);
	load_bad("return { cpus = -2 }", -EINVAL, "got -2", NULL);
	load_bad("return { cpus = 2.5 }", -EINVAL, "got 2.5", NULL);
	load_bad("return { cpus = 4294967296 }", -EINVAL, "got 4294967296", NULL);
	load_bad("return { cpus = true }", -EINVAL, "got boolean", NULL);
}

static void test_overcommit_invalid(void **state)
{
	(void)state;
	load_bad("return { cpu_overcommit = 0 }", -EINVAL, "\"cpu_overcommit\" must be a number > 0",
		 "got 0", NULL);
	load_bad("return { cpu_overcommit = -1.5 }", -EINVAL, "got -1.5", NULL);
	load_bad("return { cpu_overcommit = '2' }", -EINVAL, "got string \"2\"", NULL);
	load_bad("return { cpu_overcommit = 1/0 }", -EINVAL, "\"cpu_overcommit\"", NULL);
	load_bad("return { cpu_overcommit = 0/0 }", -EINVAL, "\"cpu_overcommit\"", NULL);
}

static void test_timeout_invalid(void **state)
{
	(void)state;
	load_bad("return { timeout = '5x' }", -EINVAL, "\"timeout\"", "bad duration \"5x\"", "\"500ms\"",
		 NULL);
	load_bad("return { timeout = -1 }", -EINVAL, "\"timeout\"", "negative", NULL);
	load_bad("return { timeout = 0 }", -EINVAL, "\"timeout\" must be more than 0", NULL);
	load_bad("return { timeout = '0s' }", -EINVAL, "\"timeout\" must be more than 0", NULL);
	load_bad("return { timeout = {} }", -EINVAL, "\"timeout\" must be a duration", "got table", NULL);
}

static void test_psi_invalid(void **state)
{
	(void)state;
	struct pv_config c;

	load_bad("return { psi_threshold = 101 }", -EINVAL, "\"psi_threshold\" must be a number from 0 to 100",
		 "got 101", NULL);
	load_bad("return { psi_threshold = -1 }", -EINVAL, "got -1", NULL);
	load_bad("return { psi_threshold = '10' }", -EINVAL, "got string \"10\"", NULL);
	load_bad("return { psi_threshold = 0/0 }", -EINVAL, "\"psi_threshold\"", NULL);
	load_ok("return { psi_threshold = 100 }", &c);
	assert_true(c.psi_threshold == 100);
	pv_config_release(&c);
}

static void test_unknown_key(void **state)
{
	(void)state;
	load_bad("return { rootz = { 'tests' } }", -EINVAL, "key \"rootz\" is not a config key",
		 "did you mean \"roots\"?",
		 "known: roots, profiles, cache_dir, cache_max_size, memory, cpus, cpu_overcommit, vcpus, timeout, "
		 "psi_threshold, lua_memory",
		 NULL);
	/* nothing close: no suggestion */
	load_bad("return { frobnicate = 1 }", -EINVAL, "key \"frobnicate\"", NULL);
	/* several: the smallest is reported, whatever the hash order */
	load_bad("return { zeta = 1, mid = 3, cpus = 1, k1 = 1, k2 = 2, k3 = 3, k4 = 4, k5 = 5,\n"
		 "         k6 = 6, k7 = 7, k8 = 8, k9 = 9, alpha = 2, q = 1, r = 2, s = 3 }",
		 -EINVAL, "key \"alpha\"", NULL);
	/* an unknown key is reported even when a known one is also wrong */
	load_bad("return { cpus = 0, CPUS = 2 }", -EINVAL, "key \"CPUS\"", "did you mean \"cpus\"?", NULL);
}

static void test_unnamed_entry(void **state)
{
	(void)state;
	load_bad("return { 'tests' }", -EINVAL, "entry without a name (key 1)", "roots = { \"tests\" }",
		 NULL);
	load_bad("return { [true] = 1 }", -EINVAL, "entry without a name (key boolean)", NULL);
}

static void test_syntax_error_has_line(void **state)
{
	(void)state;
	char want[400];

	snprintf(want, sizeof(want), "%s:3:", path);
	load_bad("return {\n  cpus = 2,\n  memory = = '1G',\n}\n", -EINVAL, want, NULL);
	load_bad("return {\n  roots = { 'a' \n", -EINVAL, "'}' expected (to close '{' at line 2)", NULL);
}

static void test_runtime_error_has_line(void **state)
{
	(void)state;
	char want[400];

	snprintf(want, sizeof(want), "%s:2: boom", path);
	load_bad("local x = 1\nerror('boom')\nreturn {}\n", -EINVAL, want, NULL);
	snprintf(want, sizeof(want), "%s:1: attempt to", path);
	load_bad("return { cpus = nothing.here }", -EINVAL, want, "nothing", NULL);
	load_bad("error({})", -EINVAL, "error object is a table value", NULL);
	/* a message without a position still gets the file name */
	load_bad("error('no position', 0)", -EINVAL, ": no position", NULL);
}

/* A config that never returns is an error, not a hung provium. */
static void test_endless_loop(void **state)
{
	(void)state;
	char want[400];
	snprintf(want, sizeof(want), "%s:1: the config runs too long", path);
	load_bad("while true do end", -EINVAL, want, "endless loop", NULL);
}

static void test_non_table_return(void **state)
{
	(void)state;
	load_bad("local x = 5", -EINVAL, "must return a table", "returned nothing (nil)", NULL);
	load_bad("return nil", -EINVAL, "must return a table", NULL);
	load_bad("return 5", -EINVAL, "must return a table", "returned 5", NULL);
	load_bad("return 'roots'", -EINVAL, "returned string \"roots\"", NULL);
	load_bad("return function() end", -EINVAL, "returned function", NULL);
}

static void test_binary_chunk_rejected(void **state)
{
	(void)state;
	lua_State *L = luaL_newstate();
	struct pv_config c;
	struct pv_err err;
	const char *bc;
	size_t len;

	/* a precompiled chunk that would return a valid config */
	assert_non_null(L);
	luaL_openlibs(L);
	assert_int_equal(luaL_dostring(L, "return string.dump(function() return {} end)"), 0);
	bc = lua_tolstring(L, -1, &len);
	write_file(path, bc, len);
	lua_close(L);
	assert_int_equal(pv_config_load(path, &c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "binary"));
	assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
	assert_null(c.path);
}

static void test_metatable_is_not_consulted(void **state)
{
	(void)state;
	struct pv_config c;

	/* keys come from the table itself, never from __index */
	load_ok("return setmetatable({}, { __index = function() error('consulted') end })", &c);
	check_defaults(&c);
	pv_config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_file_gives_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_path_uses_provium_lua_in_cwd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explicit_missing_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_number_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_computation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roots_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_roots_array, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_debian, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_build, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_os_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lua_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache_dir_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sizes_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpus_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overcommit_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_psi_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unnamed_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error_has_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_error_has_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endless_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_table_return, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_chunk_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metatable_is_not_consulted, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests of fixture names and cache keys (src/fixture/fixkey.c): what goes
 * into a key changes it, what does not leaves it alone. Real files in a
 * temporary root. */
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

#include "fixkey.h"
#include "dimage.h"
#include "config.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char p[512], d[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	snprintf(d, sizeof(d), "%s", p);
	*strrchr(d, '/') = 0;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", d);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void key(const char *name, const char *config, char out[FC_KEY_LEN + 1])
{
	const char *roots[] = { root };
	struct pv_err err;
	if (fx_key(roots, 1, config, name, out, &err) != 0)
		fail_msg("fx_key(%s): %s", name, err.msg);
	assert_int_equal(strlen(out), FC_KEY_LEN);
}

static int setup(void **state)
{
	(void)state;
	strcpy(root, "/tmp/pvfixkey.XXXXXX");
	if (!mkdtemp(root))
		return -1;
	setenv("PROVIUM_IMAGE_DIR", "/nonexistent", 1); /* no built-in image: hashed as absent */
	unsetenv("PROVIUM_GUEST_CMDLINE");
	put("lib/h.lua", "return { v = 1 }\n");
	put("lib/deep.lua", "return 2\n");
	put("lib/mid.lua", "local d = require('lib.deep')\nreturn d\n");
	put("b.fixture.lua", "local v = provium:vm('b', 'linux')\nv:boot()\nreturn v:snapshot()\n");
	put("a.fixture.lua", "local h = require('lib.h')\nlocal m = require \"lib.mid\"\n"
			     "local v = provium.vm_fixture('b')\nreturn v:snapshot()\n");
	put("unrelated.lua", "return 0\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd);
}

static void test_stable_and_distinct(void **state)
{
	char a1[FC_KEY_LEN + 1], a2[FC_KEY_LEN + 1], b[FC_KEY_LEN + 1];
	(void)state;
	key("a", NULL, a1);
	key("a", NULL, a2);
	key("b", NULL, b);
	assert_string_equal(a1, a2);
	assert_string_not_equal(a1, b);
	put("unrelated.lua", "return 1\n");
	key("a", NULL, a2);
	assert_string_equal(a1, a2);
}

static void edit_changes(const char *rel, const char *text, const char *name)
{
	char k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1];
	key(name, NULL, k1);
	put(rel, text);
	key(name, NULL, k2);
	if (strcmp(k1, k2) == 0)
		fail_msg("editing %s left the key of %s unchanged", rel, name);
}

static void test_inputs_change_the_key(void **state)
{
	(void)state;
	edit_changes("a.fixture.lua", "local h = require('lib.h')\nlocal m = require \"lib.mid\"\n"
				      "local v = provium.vm_fixture('b') -- edited\nreturn v:snapshot()\n", "a");
	edit_changes("lib/h.lua", "return { v = 2 }\n", "a");          /* a required helper */
	edit_changes("lib/deep.lua", "return 3\n", "a");               /* required by a helper */
	edit_changes("b.fixture.lua", "return provium:snapshot()\n", "a"); /* a nested fixture */
	{
		char k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1];
		key("a", NULL, k1);
		setenv("PROVIUM_GUEST_CMDLINE", "foo=1", 1);
		key("a", NULL, k2);
		unsetenv("PROVIUM_GUEST_CMDLINE");
		assert_string_not_equal(k1, k2);
	}
}

static void test_profiles_identity(void **state)
{
	char cfg[300], k0[FC_KEY_LEN + 1], k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1], k3[FC_KEY_LEN + 1];
	char kern[300], conf[700];
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/provium.lua", root);
	snprintf(kern, sizeof(kern), "%s/vmlinuz", root);
	put("vmlinuz", "kernel-1");
	snprintf(conf, sizeof(conf),
		 "return { profiles = { custom = { kernel = '%s', initrd = '%s', memory = '512M' } } }\n", kern, kern);
	put("provium.lua", conf);
	key("b", NULL, k0);
	key("b", cfg, k1);
	assert_string_not_equal(k0, k1); /* a profile exists */
	/* the same size, a newer mtime */
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, kern, ts, 0), 0);
	key("b", cfg, k2);
	assert_string_not_equal(k1, k2);
	/* a profile setting */
	snprintf(conf, sizeof(conf),
		 "return { profiles = { custom = { kernel = '%s', initrd = '%s', memory = '1G' } } }\n", kern, kern);
	put("provium.lua", conf);
	key("b", cfg, k3);
	assert_string_not_equal(k2, k3);
}

/* A profile that builds itself: its {out} kernel is taken as the build left
 * it, so a rebuilt kernel is a new key (its path in the settings is the
 * same "{out}/k" text every time). */
static void test_built_profile(void **state)
{
	char cfg[300], k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1], k3[FC_KEY_LEN + 1], kern[300], conf[700];
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/provium.lua", root);
	snprintf(kern, sizeof(kern), "%s/out/k", root);
	put("out/k", "kernel-1");
	snprintf(conf, sizeof(conf),
		 "return { profiles = { dev = { build = 'make', build_out = '%s/out', kernel = '{out}/k', "
		 "initrd = '{out}/k' } } }\n", root);
	put("provium.lua", conf);
	key("b", cfg, k1);
	key("b", cfg, k2);
	assert_string_equal(k1, k2);
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, kern, ts, 0), 0);
	key("b", cfg, k3);
	assert_string_not_equal(k1, k3); /* rebuilt */
}

/* A profile's disks: the same spec gives the same key (a table is hashed by
 * its contents, never its address), another size or a touched image another. */
static void test_profile_disks(void **state)
{
	char cfg[300], kern[300], img[300], conf[1200];
	char k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1], k3[FC_KEY_LEN + 1], k4[FC_KEY_LEN + 1];
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/provium.lua", root);
	snprintf(kern, sizeof(kern), "%s/vmlinuz", root);
	snprintf(img, sizeof(img), "%s/base.img", root);
	put("vmlinuz", "kernel-1");
	put("base.img", "image-1");
	const char *fmt = "return { profiles = { s = { kernel = '%s', initrd = '%s', disks = {\n"
			  "  { id = 'a', size = '%s' }, { id = 'b', image = '%s', readonly = true } } } } }\n";
	snprintf(conf, sizeof(conf), fmt, kern, kern, "1M", img);
	put("provium.lua", conf);
	key("b", cfg, k1);
	key("b", cfg, k2);
	assert_string_equal(k1, k2);
	snprintf(conf, sizeof(conf), fmt, kern, kern, "2M", img);
	put("provium.lua", conf);
	key("b", cfg, k3);
	assert_string_not_equal(k1, k3);
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, img, ts, 0), 0);
	key("b", cfg, k4);
	assert_string_not_equal(k3, k4);
}

/* A Debian profile: its package list by content (never the table's address),
 * and its built image by the id that names the resolved versions. */
static void test_debian_profile(void **state)
{
	char cfg[300], conf[600], imgdir[300], path[13000];
	char k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1], k3[FC_KEY_LEN + 1], k4[FC_KEY_LEN + 1], k5[FC_KEY_LEN + 1];
	(void)state;
	snprintf(cfg, sizeof(cfg), "%s/provium.lua", root);
	snprintf(imgdir, sizeof(imgdir), "%s/images", root);
	setenv("PROVIUM_IMAGE_DIR", imgdir, 1);
	const char *fmt = "return { profiles = { web = { base = 'debian', suite = 'bookworm', packages = { %s } } } }\n";
	snprintf(conf, sizeof(conf), fmt, "'curl', 'busybox'");
	put("provium.lua", conf);
	key("b", cfg, k1);
	key("b", cfg, k2);
	assert_string_equal(k1, k2);
	snprintf(conf, sizeof(conf), fmt, "'curl', 'lighttpd'");
	put("provium.lua", conf);
	key("b", cfg, k3);
	assert_string_not_equal(k1, k3);
	/* built: the image's id counts, and another build's id gives another key */
	struct pv_config c = { 0 };
	struct pv_err e;
	struct dimage d;
	assert_int_equal(pv_config_load(cfg, &c, &e), 0);
	assert_false(dimage_find(&c.profiles[0], &d));
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "mkdir -p '%s' && : > '%s' && echo '{\"id\": \"%s-%d\"}' > '%s/manifest.json'",
			 d.dir, d.root, d.key, i, d.dir);
		assert_int_equal(system(path), 0);
		key("b", cfg, i ? k5 : k4);
	}
	pv_config_release(&c);
	assert_string_not_equal(k3, k4);
	assert_string_not_equal(k4, k5);
	setenv("PROVIUM_IMAGE_DIR", "/nonexistent", 1);
}

/* A disk image a builder names literally: its identity is in the key. */
static void test_image_identity(void **state)
{
	char img[300], k1[FC_KEY_LEN + 1], k2[FC_KEY_LEN + 1], k3[FC_KEY_LEN + 1];
	(void)state;
	snprintf(img, sizeof(img), "%s/base.img", root);
	put("base.img", "image-1");
	put("d.fixture.lua", "local v = provium:vm('d', 'linux', { disks = { { id = 'x', image = \"base.img\" } } })\n"
			     "return v:snapshot()\n");
	key("d", NULL, k1);
	key("d", NULL, k2);
	assert_string_equal(k1, k2);
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 1000000000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, img, ts, 0), 0);
	key("d", NULL, k3);
	assert_string_not_equal(k1, k3);
}

static void test_errors(void **state)
{
	const char *roots[] = { root };
	char out[FC_KEY_LEN + 1], name[64];
	struct pv_err err;
	(void)state;
	assert_int_equal(fx_key(roots, 1, NULL, "missing", out, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "missing.fixture.lua"));
	put("c1.fixture.lua", "return provium.vm_fixture('c2'):snapshot()\n");
	put("c2.fixture.lua", "return provium.vm_fixture('c1'):snapshot()\n");
	assert_int_equal(fx_key(roots, 1, NULL, "c1", out, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "c1 -> c2 -> c1"));
	put("self.fixture.lua", "return provium.vm_fixture('self.fixture.lua'):snapshot()\n");
	assert_int_equal(fx_key(roots, 1, NULL, "self", out, &err), -ELOOP);

	assert_int_equal(fx_normalize("db/seeded.fixture.lua", name, sizeof(name), &err), 0);
	assert_string_equal(name, "db/seeded");
	assert_int_equal(fx_normalize("db/seeded", name, sizeof(name), &err), 0);
	assert_string_equal(name, "db/seeded");
	assert_int_equal(fx_normalize("", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize(".fixture.lua", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("/abs", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("a/../b", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("a//b", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("./a", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("a/", name, sizeof(name), &err), -EINVAL);
	assert_int_equal(fx_normalize("a\\b", name, sizeof(name), &err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stable_and_distinct, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inputs_change_the_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile_disks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_built_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debian_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_identity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

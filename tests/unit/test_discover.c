/* Unit tests of test discovery (walk, order, filter, fixtures, dedupe across
 * roots) and of the static scan (fixture references, declared claims and
 * test declarations, with Lua comments, strings and function scope
 * honoured). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "discover.h"
#include "scan.h"

#define MI (UINT64_C(1) << 20)
#define GI (UINT64_C(1) << 30)

static char dir[256];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/pvdiscover.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[600];
	(void)state;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* dir + "/" + rel, in one of 32 static buffers used in turn: a result
 * stays valid for the next 31 calls. */
static const char *at_dir(const char *rel)
{
	static char bufs[32][512];
	static unsigned next;
	char *b = bufs[next++ % 32];
	snprintf(b, 512, "%s/%s", dir, rel);
	return b;
}

/* Creates dir/rel with the given content, making parent directories. */
static void mk(const char *rel, const char *content)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

static void discover_ok(const char *const *roots, size_t n, const char *filter, struct pv_discovery *d)
{
	struct pv_err err = { 0 };
	if (pv_discover(roots, n, filter, d, &err) != 0)
		fail_msg("discovery failed: %s", err.msg);
}

/* The rel_paths of d joined with spaces, for one comparison. */
static const char *rels(const struct pv_discovery *d)
{
	static char buf[4096];
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < d->nfiles; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", d->files[i].rel_path);
	return buf;
}

static const char *fixtures(const struct pv_discovery *d)
{
	static char buf[4096];
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < d->nfixtures; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", d->fixtures[i]);
	return buf;
}

static void make_tree(void)
{
	mk("b.test.lua", "");
	mk("a.test.lua", "");
	mk("a-b.test.lua", "");
	mk("a/b.test.lua", "");
	mk("a/z/deep.test.lua", "");
	mk("sub/z.test.lua", "");
	mk("sub/helper.lua", "return {}");
	mk("sub/notes.txt", "");
	mk("fx/base.fixture.lua", "");
	mk("fx/net/router.fixture.lua", "");
	mk("web.fixture.lua", "");
	mk(".git/hidden.test.lua", "");
	mk(".cache/x.fixture.lua", "");
	mk("sub/.hidden/also.test.lua", "");
}

static void test_order_is_byte_order_of_rel_path(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	make_tree();
	discover_ok(roots, 1, NULL, &d);
	/* '-' < '.' < '/': per-directory sorting would put a/ first */
	assert_string_equal(rels(&d), "a-b.test.lua a.test.lua a/b.test.lua a/z/deep.test.lua b.test.lua "
				      "sub/z.test.lua");
	for (size_t i = 0; i < d.nfiles; i++) {
		assert_string_equal(d.files[i].root, dir);
		assert_string_equal(d.files[i].abs_path, at_dir(d.files[i].rel_path));
		assert_int_equal(access(d.files[i].abs_path, R_OK), 0);
		assert_false(d.files[i].has_claim);
		assert_int_equal(d.files[i].nfixture_refs, 0);
	}
	pv_discovery_release(&d);
	assert_null(d.files);
	assert_int_equal(d.nfiles, 0);
}

static void test_fixtures_listed_sorted(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	make_tree();
	discover_ok(roots, 1, NULL, &d);
	/* without suffix, sorted, dot-directories skipped, never run as tests */
	assert_string_equal(fixtures(&d), "fx/base fx/net/router web");
	pv_discovery_release(&d);
}

static void test_filter(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	make_tree();
	discover_ok(roots, 1, "sub", &d);
	assert_string_equal(rels(&d), "sub/z.test.lua");
	/* fixtures are listed whatever the filter */
	assert_int_equal(d.nfixtures, 3);
	pv_discovery_release(&d);

	/* a substring anywhere in the relative path, even across a slash */
	discover_ok(roots, 1, "a/z", &d);
	assert_string_equal(rels(&d), "a/z/deep.test.lua");
	pv_discovery_release(&d);

	discover_ok(roots, 1, "a/", &d);
	assert_string_equal(rels(&d), "a/b.test.lua a/z/deep.test.lua");
	pv_discovery_release(&d);

	/* it is the whole relative path: "a" is in every ".lua" */
	discover_ok(roots, 1, "a", &d);
	assert_int_equal(d.nfiles, 6);
	pv_discovery_release(&d);

	discover_ok(roots, 1, "nothing-matches", &d);
	assert_int_equal(d.nfiles, 0);
	pv_discovery_release(&d);

	discover_ok(roots, 1, "", &d);
	assert_int_equal(d.nfiles, 6);
	pv_discovery_release(&d);
}

static void test_symlinks(void **state)
{
	(void)state;
	struct pv_discovery d;
	char root[512];
	const char *roots[] = { root };

	snprintf(root, sizeof(root), "%s/t", dir);
	mk("t/real/x.test.lua", "");
	mk("elsewhere/y.test.lua", "");
	mk("elsewhere/ext.fixture.lua", "");
	/* a symlinked directory is not followed */
	assert_int_equal(symlink(at_dir("elsewhere"), at_dir("t/linkdir")), 0);
	/* a symlinked test file counts */
	assert_int_equal(symlink(at_dir("elsewhere/y.test.lua"), at_dir("t/linked.test.lua")), 0);
	/* a dangling one, or one to a directory, does not */
	assert_int_equal(symlink(at_dir("missing.test.lua"), at_dir("t/dangling.test.lua")), 0);
	assert_int_equal(symlink(at_dir("elsewhere"), at_dir("t/dir.test.lua")), 0);
	discover_ok(roots, 1, NULL, &d);
	assert_string_equal(rels(&d), "linked.test.lua real/x.test.lua");
	assert_int_equal(d.nfixtures, 0);
	pv_discovery_release(&d);
}

static void test_roots_in_given_order(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { at_dir("two"), at_dir("one") };

	mk("one/a.test.lua", "");
	mk("one/b.test.lua", "");
	mk("two/c.test.lua", "");
	mk("two/a.test.lua", "");
	discover_ok(roots, 2, NULL, &d);
	assert_int_equal(d.nfiles, 4);
	assert_string_equal(d.files[0].abs_path, at_dir("two/a.test.lua"));
	assert_string_equal(d.files[1].abs_path, at_dir("two/c.test.lua"));
	assert_string_equal(d.files[2].abs_path, at_dir("one/a.test.lua"));
	assert_string_equal(d.files[3].abs_path, at_dir("one/b.test.lua"));
	assert_string_equal(d.files[0].root, at_dir("two"));
	assert_string_equal(d.files[2].root, at_dir("one"));
	pv_discovery_release(&d);
}

static void test_dedupe_across_roots(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *outer_first[] = { dir, at_dir("sub") };
	const char *inner_first[] = { at_dir("sub"), dir };

	mk("top.test.lua", "");
	mk("sub/z.test.lua", "");
	/* the first root to reach a file keeps it */
	discover_ok(outer_first, 2, NULL, &d);
	assert_string_equal(rels(&d), "sub/z.test.lua top.test.lua");
	assert_string_equal(d.files[0].root, dir);
	pv_discovery_release(&d);

	discover_ok(inner_first, 2, NULL, &d);
	assert_int_equal(d.nfiles, 2);
	assert_string_equal(d.files[0].rel_path, "z.test.lua");
	assert_string_equal(d.files[0].root, at_dir("sub"));
	assert_string_equal(d.files[1].rel_path, "top.test.lua");
	pv_discovery_release(&d);

	/* the same root twice, and the same file spelled differently */
	{
		char dotted[512];
		snprintf(dotted, sizeof(dotted), "%s/./sub/../", dir);
		const char *twice[] = { dir, dotted };
		discover_ok(twice, 2, NULL, &d);
		assert_string_equal(rels(&d), "sub/z.test.lua top.test.lua");
		pv_discovery_release(&d);
	}
}

static void test_dedupe_symlinked_file_within_root(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	mk("b.test.lua", "");
	assert_int_equal(symlink("b.test.lua", at_dir("a.test.lua")), 0);
	discover_ok(roots, 1, NULL, &d);
	/* one file: the first in order wins */
	assert_string_equal(rels(&d), "a.test.lua");
	pv_discovery_release(&d);
}

static void test_single_file_root(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { at_dir("sub/one.test.lua") };

	mk("sub/one.test.lua", "vm_fixture 'base'");
	mk("sub/two.test.lua", "");
	mk("sub/fx.fixture.lua", "");
	discover_ok(roots, 1, NULL, &d);
	assert_int_equal(d.nfiles, 1);
	assert_string_equal(d.files[0].root, at_dir("sub"));
	assert_string_equal(d.files[0].rel_path, "one.test.lua");
	assert_string_equal(d.files[0].abs_path, at_dir("sub/one.test.lua"));
	/* it is scanned like any other */
	assert_int_equal(d.files[0].nfixture_refs, 1);
	assert_string_equal(d.files[0].fixture_refs[0], "base");
	pv_discovery_release(&d);

	/* the filter applies to it too */
	discover_ok(roots, 1, "two", &d);
	assert_int_equal(d.nfiles, 0);
	pv_discovery_release(&d);
}

static void test_single_file_root_relative(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { "x.test.lua" };
	char cwd[512];

	mk("x.test.lua", "");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	struct pv_err err;
	int rc = pv_discover(roots, 1, NULL, &d, &err);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(d.nfiles, 1);
	assert_string_equal(d.files[0].root, ".");
	assert_string_equal(d.files[0].rel_path, "x.test.lua");
	assert_string_equal(d.files[0].abs_path, "./x.test.lua");
	pv_discovery_release(&d);
}

static void test_trailing_slash_root(void **state)
{
	(void)state;
	struct pv_discovery d;
	char root[512];

	mk("t/a.test.lua", "");
	snprintf(root, sizeof(root), "%s/t/", dir);
	const char *roots[] = { root };
	discover_ok(roots, 1, NULL, &d);
	assert_int_equal(d.nfiles, 1);
	assert_string_equal(d.files[0].root, root); /* as given */
	assert_string_equal(d.files[0].abs_path, at_dir("t/a.test.lua"));
	pv_discovery_release(&d);
}

static void test_missing_root_is_an_error(void **state)
{
	(void)state;
	struct pv_discovery d;
	struct pv_err err;
	const char *roots[] = { dir, at_dir("nope") };

	mk("a.test.lua", "");
	memset(&d, 0x5a, sizeof(d));
	assert_int_equal(pv_discover(roots, 2, NULL, &d, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "test root \""));
	assert_non_null(strstr(err.msg, at_dir("nope")));
	assert_non_null(strstr(err.msg, "does not exist"));
	/* nothing is left half-filled */
	assert_null(d.files);
	assert_int_equal(d.nfiles, 0);
	assert_null(d.fixtures);
}

static void test_bad_roots(void **state)
{
	(void)state;
	struct pv_discovery d;
	struct pv_err err;
	const char *helper[] = { at_dir("helper.lua") };
	const char *fixture[] = { at_dir("a.fixture.lua") };
	const char *under_file[] = { at_dir("helper.lua/x") };

	mk("helper.lua", "");
	mk("a.fixture.lua", "");
	assert_int_equal(pv_discover(helper, 1, NULL, &d, &err), -EINVAL);
	assert_non_null(strstr(err.msg, at_dir("helper.lua")));
	assert_non_null(strstr(err.msg, "neither a directory nor a *.test.lua file"));
	assert_int_equal(pv_discover(fixture, 1, NULL, &d, &err), -EINVAL);
	assert_int_equal(pv_discover(under_file, 1, NULL, &d, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "does not exist"));
}

/* The checks of test_unreadable_directory; 0 when all hold. Runs in a child
 * when the tests run as root, so it reports by exit code, not assertions. */
static int check_unreadable(void)
{
	struct pv_discovery d;
	struct pv_err err;
	const char *roots[] = { dir };
	const char *subroot[] = { at_dir("locked") };

	/* a subdirectory that cannot be read fails the walk, naming it */
	if (pv_discover(roots, 1, NULL, &d, &err) != -EACCES || !strstr(err.msg, at_dir("locked")) ||
	    !strstr(err.msg, "cannot read directory"))
		return 1;
	if (pv_discover(subroot, 1, NULL, &d, &err) != -EACCES || !strstr(err.msg, "cannot read test root"))
		return 2;
	return 0;
}

static void test_unreadable_directory(void **state)
{
	(void)state;
	int st;
	pid_t pid;

	mk("ok.test.lua", "");
	mk("locked/a.test.lua", "");
	assert_int_equal(chmod(at_dir("locked"), 0), 0);
	if (geteuid() != 0) {
		assert_int_equal(check_unreadable(), 0);
		return;
	}
	/* root reads anything: check as nobody, in a child */
	assert_int_equal(chmod(dir, 0755), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(99);
		_exit(check_unreadable());
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 99)
		skip();
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_scan_results_attached(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	mk("net.test.lua", "local provium = require 'provium'\n"
			   "provium:claim{ memory = '2G', cpus = 2 }\n"
			   "test('ping', function() local vm = vm_fixture('router.fixture.lua') end)\n");
	mk("plain.test.lua", "test('x', function() end)\n");
	discover_ok(roots, 1, NULL, &d);
	assert_int_equal(d.nfiles, 2);
	assert_true(d.files[0].has_claim);
	assert_int_equal(d.files[0].claim.memory_bytes, 2 * GI);
	assert_int_equal(d.files[0].claim.cpus, 2);
	assert_int_equal(d.files[0].nfixture_refs, 1);
	assert_string_equal(d.files[0].fixture_refs[0], "router");
	assert_false(d.files[1].has_claim);
	pv_discovery_release(&d);
}

static void test_scan_error_names_file_and_line(void **state)
{
	(void)state;
	struct pv_discovery d;
	struct pv_err err;
	const char *roots[] = { dir };

	mk("ok.test.lua", "");
	mk("bad.test.lua", "-- header\n\nprovium:claim{ memory = '5x' }\n");
	assert_int_equal(pv_discover(roots, 1, NULL, &d, &err), -EINVAL);
	assert_non_null(strstr(err.msg, at_dir("bad.test.lua")));
	assert_non_null(strstr(err.msg, "line 3"));
	assert_non_null(strstr(err.msg, "bad size \"5x\""));
	assert_null(d.files);
}

/* Paths travel in events as UTF-8 text: a test or fixture whose name is not
 * UTF-8 is refused by name (escaped, so the message stays one printable
 * line) instead of crashing its runner and vanishing from the results. */
static void test_non_utf8_test_path_rejected(void **state)
{
	(void)state;
	struct pv_discovery d;
	struct pv_err err;
	const char *roots[] = { dir };

	mk("ok.test.lua", "");
	mk("caf\xe9.test.lua", "");
	memset(&d, 0x5a, sizeof(d));
	assert_int_equal(pv_discover(roots, 1, NULL, &d, &err), -EILSEQ);
	assert_non_null(strstr(err.msg, "\"caf\\xe9.test.lua\""));
	assert_non_null(strstr(err.msg, "not valid UTF-8"));
	assert_non_null(strstr(err.msg, "rename"));
	assert_null(strchr(err.msg, '\n'));
	assert_null(d.files);
	assert_int_equal(d.nfiles, 0);
}

static void test_non_utf8_directory_and_fixture_rejected(void **state)
{
	(void)state;
	struct pv_discovery d;
	struct pv_err err;
	const char *roots[] = { dir };

	mk("sub\xff/x.test.lua", "");
	assert_int_equal(pv_discover(roots, 1, NULL, &d, &err), -EILSEQ);
	assert_non_null(strstr(err.msg, "\"sub\\xff/x.test.lua\""));
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf %s/sub*", dir);
		assert_int_equal(system(cmd), 0);
	}
	/* a control character would break the one-line message */
	mk("db\x01\xc3(.fixture.lua", "");
	assert_int_equal(pv_discover(roots, 1, NULL, &d, &err), -EILSEQ);
	assert_non_null(strstr(err.msg, "\"db\\x01\\xc3(.fixture.lua\""));
	assert_non_null(strstr(err.msg, "fixture"));
}

static void test_non_utf8_names_that_never_reach_events_are_fine(void **state)
{
	(void)state;
	struct pv_discovery d;
	const char *roots[] = { dir };

	/* helpers and directories without tests are never named in events */
	mk("lib\xfe/helper.lua", "");
	mk("h\xe9lper.lua", "");
	/* valid multi-byte names pass untouched */
	mk("caf\xc3\xa9.test.lua", "");
	discover_ok(roots, 1, NULL, &d);
	assert_int_equal(d.nfiles, 1);
	assert_string_equal(d.files[0].rel_path, "caf\xc3\xa9.test.lua");
	pv_discovery_release(&d);
	/* a test filtered out is not run, so it is not named either */
	mk("b\xe9.test.lua", "");
	discover_ok(roots, 1, "caf", &d);
	assert_int_equal(d.nfiles, 1);
	pv_discovery_release(&d);
}

static void test_no_roots(void **state)
{
	(void)state;
	struct pv_discovery d;

	discover_ok(NULL, 0, NULL, &d);
	assert_int_equal(d.nfiles, 0);
	assert_int_equal(d.nfixtures, 0);
	pv_discovery_release(&d);
}

/* ---- pv_scan_source ---- */

static void free_scan(struct pv_test_file *f) { pv_test_file_release(f); }

/* Scans src; returns the refs joined with "|" and fills *claim / *has. */
static const char *scan(const char *src, bool *has, struct pv_resource *claim)
{
	static char buf[1024];
	struct pv_test_file f;
	struct pv_err err;
	size_t o = 0;

	memset(&f, 0, sizeof(f));
	if (pv_scan_source(src, strlen(src), &f, &err) != 0)
		fail_msg("scan failed: %s\n--- source:\n%s", err.msg, src);
	buf[0] = 0;
	for (size_t i = 0; i < f.nfixture_refs; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "|" : "", f.fixture_refs[i]);
	if (has)
		*has = f.has_claim;
	if (claim)
		*claim = f.claim;
	free_scan(&f);
	return buf;
}

static void expect_refs(const char *src, const char *want)
{
	const char *got = scan(src, NULL, NULL);
	if (strcmp(got, want) != 0)
		fail_msg("refs \"%s\", want \"%s\"\n--- source:\n%s", got, want, src);
}

static void expect_claim(const char *src, uint64_t mem, uint32_t cpus)
{
	struct pv_resource c;
	bool has;

	scan(src, &has, &c);
	if (!has)
		fail_msg("no claim found\n--- source:\n%s", src);
	if (c.memory_bytes != mem || c.cpus != cpus)
		fail_msg("claim %llu bytes %u cpus, want %llu %u\n--- source:\n%s",
			 (unsigned long long)c.memory_bytes, c.cpus, (unsigned long long)mem, cpus, src);
}

static void expect_no_claim(const char *src)
{
	bool has;
	scan(src, &has, NULL);
	if (has)
		fail_msg("claim found where none is declared\n--- source:\n%s", src);
}

static void expect_scan_error(const char *src, int want_rc, const char *frag1, const char *frag2)
{
	struct pv_test_file f;
	struct pv_err err;

	memset(&f, 0, sizeof(f));
	assert_int_equal(pv_scan_source(src, strlen(src), &f, &err), want_rc);
	if (!strstr(err.msg, frag1) || !strstr(err.msg, frag2))
		fail_msg("message lacks \"%s\" or \"%s\": %s", frag1, frag2, err.msg);
	assert_null(f.fixture_refs);
	assert_int_equal(f.nfixture_refs, 0);
	assert_false(f.has_claim);
}

static void test_ref_call_forms(void **state)
{
	(void)state;
	expect_refs("vm_fixture(\"a\")", "a");
	expect_refs("vm_fixture 'b'", "b");
	expect_refs("vm_fixture [[c]]", "c");
	expect_refs("vm_fixture[==[d]==]", "d");
	expect_refs("provium.vm_fixture('e')", "e");
	expect_refs("provium:vm_fixture('f')", "f");
	expect_refs("provium : vm_fixture ( 'g' , { memory = '1G' } )", "g");
	expect_refs("lab_fixture('h')", "h");
	expect_refs("lab_fixture 'i'", "i");
	expect_refs("provium.lab_fixture('j')", "j");
	expect_refs("provium:lab_fixture 'k'", "k");
	expect_refs("local vm = provium.vm_fixture(\"l\"):start()", "l");
	expect_refs("x = a .. vm_fixture('m')", "m");
}

static void test_ref_order_dedupe_suffix(void **state)
{
	(void)state;
	expect_refs("vm_fixture('z')\nlab_fixture('a')\nvm_fixture('z')\nvm_fixture('m.fixture.lua')\n"
		    "vm_fixture('m')\nvm_fixture('net/router.fixture.lua')",
		    "z|a|m|net/router");
	/* only a trailing suffix is stripped */
	expect_refs("vm_fixture('a.fixture.lua.bak')", "a.fixture.lua.bak");
	expect_refs("vm_fixture('.fixture.lua')", ".fixture.lua");
}

static void test_refs_at_any_depth(void **state)
{
	(void)state;
	expect_refs("test('x', function()\n"
		    "  local function inner()\n"
		    "    if ok then return vm_fixture('deep') end\n"
		    "  end\n"
		    "  vm_fixture('shallow')\n"
		    "end)\n"
		    "lab_fixture('top')\n",
		    "deep|shallow|top");
}

static void test_refs_non_literal_ignored(void **state)
{
	(void)state;
	expect_refs("vm_fixture(name)", "");
	expect_refs("vm_fixture('a' .. suffix)", "");
	expect_refs("vm_fixture{ 'a' }", "");
	expect_refs("vm_fixture()", "");
	/* definitions, fields and other objects' methods are not calls of ours */
	expect_refs("local function vm_fixture(name) end", "");
	expect_refs("local t = { vm_fixture = 'x' }", "");
	expect_refs("other.vm_fixture('x')", "");
	expect_refs("other:lab_fixture('x')", "");
	expect_refs("my_vm_fixture('x') vm_fixtures('y')", "");
}

static void test_refs_in_comments_and_strings_ignored(void **state)
{
	(void)state;
	expect_refs("-- vm_fixture('c1')\n"
		    "--[[ vm_fixture('c2')\n vm_fixture('c3') ]]\n"
		    "--[==[ ]] vm_fixture('c4') ]=] ]==]\n"
		    "local s = \"vm_fixture('s1')\"\n"
		    "local t = 'it\\'s vm_fixture(\"s2\")'\n"
		    "local u = [[vm_fixture('s3')]]\n"
		    "local v = [=[ ]] vm_fixture('s4') ]=]\n"
		    "local w = \"\\\"vm_fixture('s5')\\\"\"\n"
		    "---vm_fixture('c5')\n"
		    "vm_fixture('real')",
		    "real");
	/* "--[" that is not a long bracket is a line comment */
	expect_refs("--[ vm_fixture('c')\nvm_fixture('r')", "r");
	expect_refs("--[= vm_fixture('c')\nvm_fixture('r')", "r");
	/* a comment between the name and its argument is fine */
	expect_refs("vm_fixture --[[ why ]] ( -- the base\n 'base' )", "base");
}

static void test_ref_escapes_decoded(void **state)
{
	(void)state;
	expect_refs("vm_fixture('a\\x2db')", "a-b");
	expect_refs("vm_fixture('\\97\\098c')", "abc");
	expect_refs("vm_fixture('q\\\"q')", "q\"q");
	expect_refs("vm_fixture('x\\z   \n   y')", "xy");
	expect_refs("vm_fixture('x\\\r\ny')", "x\ny");
	expect_refs("vm_fixture('\\u{e9}')", "\xc3\xa9");
	expect_refs("vm_fixture('b\\\\s')", "b\\s");
	/* long strings are raw, and drop a first newline */
	expect_refs("vm_fixture [[\nraw\\n]]", "raw\\n");
	/* a NUL cannot be a file name */
	expect_refs("vm_fixture('a\\0b')", "");
}

/* file_discovered carries the literal fixture references: one that is not
 * UTF-8 is an error naming the line, not an event that cannot be encoded. */
static void test_non_utf8_fixture_ref_rejected(void **state)
{
	(void)state;
	expect_scan_error("-- x\nlocal v = vm_fixture('caf\\233')\n", -EILSEQ, "line 2", "\"caf\\xe9\" is not valid UTF-8");
	expect_scan_error("lab_fixture [[\xff]]", -EILSEQ, "line 1", "\"\\xff\"");
	/* a helper's name never reaches an event: require keeps any bytes */
	struct pv_test_file f;
	struct pv_err err;
	const char *src = "require('h\\233')";
	memset(&f, 0, sizeof(f));
	assert_int_equal(pv_scan_source(src, strlen(src), &f, &err), 0);
	assert_int_equal(f.nrequires, 1);
	free_scan(&f);
}

static void test_claim_forms(void **state)
{
	(void)state;
	expect_claim("provium:claim{ memory = '512M', cpus = 2 }", 512 * MI, 2);
	expect_claim("provium:claim({ memory = \"2G\", cpus = 4 })", 2 * GI, 4);
	expect_claim("provium:claim{ cpus = 1; memory = [[1G]]; }", GI, 1);
	expect_claim("provium:claim{ memory = 1073741824 }", GI, 0);
	expect_claim("provium:claim{ memory = 0x40000000 }", GI, 0);
	expect_claim("provium:claim{ memory = 1.5e9 }", 1500000000, 0);
	expect_claim("provium:claim{ cpus = 3 }", 0, 3);
	expect_claim("provium:claim{ cpus = '3' }", 0, 3);
	expect_claim("provium:claim{ cpus = 2.0 }", 0, 2);
	expect_claim("provium:claim{}", 0, 0);
	expect_claim("local provium = require('provium')\n"
		     "-- needs room\n"
		     "provium:claim {\n  memory = '4GiB', -- for the VM\n  cpus = 2,\n}\n",
		     4 * GI, 2);
}

static void test_claim_non_literal_left_undeclared(void **state)
{
	(void)state;
	expect_no_claim("provium:claim{ memory = mem, cpus = 2 }");
	expect_no_claim("provium:claim{ memory = 2 * 1024, cpus = 2 }");
	expect_no_claim("provium:claim{ memory = '1G' .. '', cpus = 2 }");
	expect_no_claim("provium:claim{ memory = -1 }");
	/* valid Lua numerals the scan does not read are left to run time */
	expect_no_claim("provium:claim{ memory = 0x1p30 }");
	expect_no_claim("provium:claim{ cpus = 0x1p1 }");
	expect_no_claim("provium:claim{ memory = '1G', extra = 1 }");
	expect_no_claim("provium:claim{ ['memory'] = '1G' }");
	expect_no_claim("provium:claim(spec)");
	expect_no_claim("provium:claim({ memory = '1G' }, more)");
	expect_no_claim("provium.claim{ memory = '1G' }");
	expect_no_claim("other:claim{ memory = '1G' }");
	expect_no_claim("x.provium:claim{ memory = '1G' }");
	/* two claims at file scope: the runner decides */
	expect_no_claim("provium:claim{ cpus = 1 }\nprovium:claim{ cpus = 2 }");
	expect_no_claim("provium:claim{ cpus = 1 }\nprovium:claim(spec)");
}

static void test_claim_inside_function_not_counted(void **state)
{
	(void)state;
	expect_no_claim("local function f()\n  provium:claim{ cpus = 1 }\nend\n");
	expect_no_claim("test('x', function() provium:claim{ memory = '1G' } end)");
	expect_no_claim("function M.setup() provium:claim{ cpus = 1 } end");
	/* a claim inside a function does not spoil the file-scope one */
	expect_claim("provium:claim{ cpus = 4 }\nlocal function f() provium:claim{ cpus = 1 } end", 0, 4);
}

static void test_claim_block_depth_tracking(void **state)
{
	(void)state;
	/* every block kind opens and closes inside the function, so the
	 * claim after it is back at file scope */
	expect_claim("local function f()\n"
		     "  if a then x() elseif b then y() else z() end\n"
		     "  do local q = 1 end\n"
		     "  while c do break end\n"
		     "  for i = 1, 3 do end\n"
		     "  for k, v in pairs(t) do end\n"
		     "  repeat n = n + 1 until n > 3\n"
		     "  local g = function() return function() end end\n"
		     "end\n"
		     "provium:claim{ cpus = 1 }\n",
		     0, 1);
	/* and the same blocks before the claim, still inside the function */
	expect_no_claim("local function f()\n"
			"  if a then x() end\n"
			"  do end\n"
			"  repeat until true\n"
			"  provium:claim{ cpus = 1 }\n"
			"end\n");
	/* blocks at file scope are still file scope */
	expect_claim("if os.getenv('BIG') then\n  provium:claim{ cpus = 8 }\nend\n", 0, 8);
	expect_claim("do provium:claim{ cpus = 2 } end", 0, 2);
	/* a function inside repeat..until: until closes the repeat only */
	expect_claim("repeat local f = function() end until true\nprovium:claim{ cpus = 5 }", 0, 5);
}

static void test_claim_keywords_in_strings_and_comments(void **state)
{
	(void)state;
	/* a counted "function" would leave the claim at depth 1 */
	expect_claim("local s = 'function f()'\n"
		     "-- function\n"
		     "--[[ function ]]\n"
		     "local l = [[ function ]]\n"
		     "local n = t['function']\n"
		     "provium:claim{ cpus = 1 }\n",
		     0, 1);
	/* a counted "end" would close the function early */
	expect_no_claim("local function f()\n"
			"  local s = \"end\" -- end\n"
			"  local l = [==[ end ]] end ]==] --[[ end ]]\n"
			"  provium:claim{ cpus = 1 }\n"
			"end\n");
	/* names that only contain keywords are not keywords */
	expect_claim("local function_end, endx, doit = 1, 2, 3\nprovium:claim{ cpus = 6 }", 0, 6);
	expect_no_claim("local function f() local ending = 1\nprovium:claim{ cpus = 1 }\nend");
}

static void test_claim_bad_literals(void **state)
{
	(void)state;
	expect_scan_error("\n\nprovium:claim{ memory = '5x' }", -EINVAL, "line 3", "bad size \"5x\"");
	expect_scan_error("provium:claim{ cpus = 2.5 }", -EINVAL, "line 1", "cpus must be a whole number");
	expect_scan_error("provium:claim{ cpus = 'two' }", -EINVAL, "cpus", "'two'");
	expect_scan_error("provium:claim{ cpus = 4294967296 }", -EINVAL, "cpus", "4294967296");
	expect_scan_error("provium:claim{ memory = 1e30 }", -ERANGE, "memory", "too large");
	expect_scan_error("provium:claim{ memory = 'a\\0b' }", -EINVAL, "line 1: provium:claim: memory: a size",
			  "NUL");
	expect_scan_error("vm_fixture('kept')\nprovium:claim{ memory = '1Q' }", -EINVAL, "line 2",
			  "unknown unit");
}

static void test_scan_tolerates_broken_source(void **state)
{
	(void)state;
	/* unterminated strings and comments end at the line or the source */
	expect_refs("local s = 'open\nvm_fixture('a')", "a");
	expect_refs("vm_fixture('a')\n--[[ never closed vm_fixture('b')", "a");
	expect_refs("vm_fixture('a')\nlocal s = [[ never closed vm_fixture('b')", "a");
	expect_refs("vm_fixture('unterminated", "");
	expect_refs("vm_fixture 'unterminated", "unterminated");
	expect_refs("vm_fixture(", "");
	expect_refs("vm_fixture", "");
	expect_refs("", "");
	expect_refs("'\\", "");
	/* stray ends do not make the depth negative */
	expect_claim("end end until\nprovium:claim{ cpus = 1 }", 0, 1);
	expect_no_claim("provium:claim{ memory = '1G'");
	expect_no_claim("provium:claim");
	/* numbers with exponents and hex floats are single tokens */
	expect_refs("x = 1e-5 + 0x1p-4 + .5 vm_fixture('n')", "n");
}

static void test_scan_does_not_need_nul(void **state)
{
	(void)state;
	const char src[] = "vm_fixture('abc')vm_fixture('zzz')";
	struct pv_test_file f;
	struct pv_err err;

	/* a length that ends inside the second call: only what is in it counts */
	memset(&f, 0, sizeof(f));
	assert_int_equal(pv_scan_source(src, 20, &f, &err), 0);
	assert_int_equal(f.nfixture_refs, 1);
	assert_string_equal(f.fixture_refs[0], "abc");
	free_scan(&f);
}

/* :push_file("x") / :depends_on_file("x") literals: host files that enter
 * fixture cache keys */
static void test_scan_file_deps(void **state)
{
	(void)state;
	const char src[] = "v:push_file('data/a.bin', '/a')\n"
			   "provium:depends_on_file \"b.txt\"\n"
			   "-- v:push_file('commented', '/c')\n"
			   "v:push_file(name, '/d')\n"
			   "push_file('not a method', '/e')\n"
			   "provium:depends_on_file('data/a.bin')\n"
			   "v.push_file([[/abs/c]], '/f')\n";
	struct pv_test_file f;
	struct pv_err err;

	memset(&f, 0, sizeof(f));
	assert_int_equal(pv_scan_source(src, strlen(src), &f, &err), 0);
	assert_int_equal(f.nfile_deps, 3);
	assert_string_equal(f.file_deps[0], "data/a.bin");
	assert_string_equal(f.file_deps[1], "b.txt");
	assert_string_equal(f.file_deps[2], "/abs/c");
	assert_int_equal(f.nrequires, 0);
	assert_int_equal(f.nfixture_refs, 0);
	pv_test_file_release(&f);
}

/* require("x") literals, for fixture cache keys */
static void test_scan_requires(void **state)
{
	(void)state;
	const char src[] = "local a = require('lib.net')\n"
			   "local b = require \"util\"\n"
			   "-- require('commented')\n"
			   "local c = require(name)\n"
			   "local d = x.require('method')\n"
			   "local e = require('lib.net')\n"
			   "local s = \"require('in a string')\"\n"
			   "return require [[long.form]]\n";
	struct pv_test_file f;
	struct pv_err err;

	memset(&f, 0, sizeof(f));
	assert_int_equal(pv_scan_source(src, strlen(src), &f, &err), 0);
	assert_int_equal(f.nrequires, 3);
	assert_string_equal(f.requires[0], "lib.net");
	assert_string_equal(f.requires[1], "util");
	assert_string_equal(f.requires[2], "long.form");
	assert_int_equal(f.nfixture_refs, 0);
	free_scan(&f);
}

/* ---- pv_scan_tests (provium list --tests) ---- */

/* Each declaration as "LINE NAME META" (META compact JSON, then " computed=
 * [...]" or " meta=?"), joined by " | ". */
static const char *decls(const char *src)
{
	static char buf[4096];
	struct pv_test_decl *d;
	struct pv_err err;
	size_t n, o = 0;

	if (pv_scan_tests(src, strlen(src), &d, &n, &err) != 0)
		fail_msg("scan failed: %s", err.msg);
	buf[0] = 0;
	for (size_t i = 0; i < n; i++) {
		char *m = json_dumps(d[i].meta, JSON_COMPACT | JSON_PRESERVE_ORDER), *c = NULL;
		if (d[i].computed)
			c = json_dumps(d[i].computed, JSON_COMPACT);
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%u %s %s%s%s%s", i ? " | " : "", d[i].line,
				      d[i].name ? d[i].name : "?", m, c ? " computed=" : "", c ? c : "",
				      d[i].meta_computed ? " meta=?" : "");
		free(m);
		free(c);
	}
	pv_test_decls_free(d, n);
	return buf;
}

static void test_scan_tests_literal(void **state)
{
	(void)state;
	assert_string_equal(decls("test('a', function(t) end)\ntest(\"b\", {}, function() end)"), "1 a {} | 2 b {}");
	assert_string_equal(decls("test('net', { spec = 'net/dhcp', tags = { 'net', \"fast\" }, slow = true,\n"
				  "  n = -3, f = 1.5, two = 2.0, h = 0x10, gone = nil, [\"odd key\"] = [[v]],\n"
				  "  nest = { a = { 1, false } } }, function(t) end)"),
			    "1 net {\"spec\":\"net/dhcp\",\"tags\":[\"net\",\"fast\"],\"slow\":true,\"n\":-3,\"f\":1.5,"
			    "\"two\":2.0,\"odd key\":\"v\",\"nest\":{\"a\":[1,false]}} computed=[\"h\"]");
	/* escapes decoded; a string that is not UTF-8 is bytes */
	assert_string_equal(decls("test('x\\ty', { b = '\\xff' }, function() end)"), "1 x\ty {\"b\":{\"$bytes\":\"/w==\"}}");
}

static void test_scan_tests_computed(void **state)
{
	(void)state;
	/* names and values that are expressions are not guessed */
	assert_string_equal(decls("local m = {}\ntest('a' .. x, function() end)\ntest(name, m, function() end)\n"
				  "test('c', m, function() end)\ntest('d', { spec = 'a' .. 'b', k = f(1), ok = 1 }, fn)"),
			    "2 ? {} | 3 ? {} meta=? | 4 c {} meta=? | 5 d {\"ok\":1} computed=[\"spec\",\"k\"]");
	/* inside a loop or an if: still declared at file scope */
	assert_string_equal(decls("for i = 1, 2 do test('t' .. i, function() end) end\n"
				  "if x then test('maybe', function() end) end"),
			    "1 ? {} | 2 maybe {}");
}

static void test_scan_tests_not_declarations(void **state)
{
	(void)state;
	/* in function bodies, comments, strings; methods and local definitions */
	assert_string_equal(decls("local function f() test('in', function() end) end\n"
				  "-- test('comment', function() end)\n"
				  "local s = \"test('str', function() end)\"\n"
				  "x.test('dot', fn) y:test('colon', fn)\n"
				  "local function test(a) end\nfunction test(a) end\nlocal test = 1\n"
				  "t = { test = 1 }\n"
				  "test('real', function() test('nested', fn) end)"),
			    "9 real {}");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_order_is_byte_order_of_rel_path),
		T(test_fixtures_listed_sorted),
		T(test_filter),
		T(test_symlinks),
		T(test_roots_in_given_order),
		T(test_dedupe_across_roots),
		T(test_dedupe_symlinked_file_within_root),
		T(test_single_file_root),
		T(test_single_file_root_relative),
		T(test_trailing_slash_root),
		T(test_missing_root_is_an_error),
		T(test_bad_roots),
		T(test_unreadable_directory),
		T(test_scan_results_attached),
		T(test_scan_error_names_file_and_line),
		T(test_no_roots),
		T(test_non_utf8_test_path_rejected),
		T(test_non_utf8_directory_and_fixture_rejected),
		T(test_non_utf8_names_that_never_reach_events_are_fine),
		cmocka_unit_test(test_ref_call_forms),
		cmocka_unit_test(test_ref_order_dedupe_suffix),
		cmocka_unit_test(test_refs_at_any_depth),
		cmocka_unit_test(test_refs_non_literal_ignored),
		cmocka_unit_test(test_refs_in_comments_and_strings_ignored),
		cmocka_unit_test(test_ref_escapes_decoded),
		cmocka_unit_test(test_non_utf8_fixture_ref_rejected),
		cmocka_unit_test(test_scan_tests_literal),
		cmocka_unit_test(test_scan_tests_computed),
		cmocka_unit_test(test_scan_tests_not_declarations),
		cmocka_unit_test(test_claim_forms),
		cmocka_unit_test(test_claim_non_literal_left_undeclared),
		cmocka_unit_test(test_claim_inside_function_not_counted),
		cmocka_unit_test(test_claim_block_depth_tracking),
		cmocka_unit_test(test_claim_keywords_in_strings_and_comments),
		cmocka_unit_test(test_claim_bad_literals),
		cmocka_unit_test(test_scan_tolerates_broken_source),
		cmocka_unit_test(test_scan_does_not_need_nul),
		cmocka_unit_test(test_scan_requires),
		cmocka_unit_test(test_scan_file_deps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

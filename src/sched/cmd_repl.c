/* cmd_repl.c - provium repl (cmd.h). The prompt runs in a runner like any
 * test file's (the pool, events, isolation and cleanup are the same): this
 * writes a one-test file that boots the VM, or resumes the fixture, and calls
 * t:pause with it; cmd_run runs that file with the terminal given to its
 * runner (repl.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "scan.h"
#include "sys.h"

/* s as a Lua string literal into out. */
static void lua_quoted(char *out, size_t len, const char *s)
{
	size_t o = 0;
	out[o++] = '"';
	for (; *s && o + 6 < len; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(out + o, len - o, "\\%03u", c);
		else
			out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = 0;
}

static int check_profile(const struct pv_config *cfg, const char *name)
{
	char list[1024];
	size_t o;
	if (!strcmp(name, "linux") || !strcmp(name, "host") || pv_config_profile(cfg, name))
		return 0;
	o = (size_t)snprintf(list, sizeof(list), "linux, host");
	for (size_t i = 0; i < cfg->nprofiles && o + 4 < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, ", %s", cfg->profiles[i].name);
	return cli_fail("repl: unknown profile '%s' (profiles: %s)", name, list);
}

int cmd_repl_jobs(const struct cmd_ctx *c, struct pv_discovery *d, char *dir, size_t dirlen)
{
	const struct cli_opts *o = c->o;
	const char *profile = o->repl_profile ? o->repl_profile : "linux";
	char fixture[1024], file[4200], q1[2100], q2[2100], vm[4400];
	const char *root = NULL;
	struct pv_err err;
	FILE *f;

	memset(d, 0, sizeof(*d));
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_fail("repl needs a terminal on stdin and stdout (for scripts, write a *.test.lua)");
	if (o->repl_fixture) {
		if (cmd_fixture_name(o->repl_fixture, (const char *const *)c->roots, c->nroots, fixture, sizeof(fixture),
				     &root) != 0)
			return CLI_EXIT_USAGE;
		lua_quoted(q1, sizeof(q1), fixture);
		if (o->repl_name) {
			lua_quoted(q2, sizeof(q2), o->repl_name);
			snprintf(vm, sizeof(vm), "provium.vm_fixture(%s, { name = %s })", q1, q2);
		} else {
			snprintf(vm, sizeof(vm), "provium.vm_fixture(%s)", q1);
		}
	} else {
		if (check_profile(c->cfg, profile) != 0)
			return CLI_EXIT_USAGE;
		lua_quoted(q1, sizeof(q1), o->repl_name ? o->repl_name : profile);
		lua_quoted(q2, sizeof(q2), profile);
		snprintf(vm, sizeof(vm), "provium:vm(%s, %s)", q1, q2);
	}
	snprintf(dir, dirlen, "%s/provium-repl-XXXXXX", getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		int e = errno;
		dir[0] = 0;
		return cli_fail("repl: cannot make a directory for its file: %s", strerror(e));
	}
	snprintf(file, sizeof(file), "%s/repl.test.lua", dir);
	if (!(f = fopen(file, "w")))
		return cli_fail("repl: cannot write %s: %s", file, strerror(errno));
	/* the VM is the test's: ^D ends the test, and the VM with it */
	fprintf(f,
		"-- written by provium repl\n"
		"test(\"repl\", function(t)\n"
		"  local vm = %s\n"
		"  if vm.state ~= \"running\" then vm:boot() end\n"
		"  t:pause({ vm = vm }, \"provium repl: VM '\" .. vm.name .. \"' (\" .. vm.profile .. \") is running as `vm`; \""
		" ..\n    \"try vm:run(\\\"uname -a\\\"). Tab completes, ^C interrupts, ^D leaves and shuts it down.\")\n"
		"end)\n",
		vm);
	if (fclose(f) != 0)
		return cli_fail("repl: cannot write %s: %s", file, strerror(errno));
	if (pv_discover((const char *const *)&dir, 1, NULL, d, &err) < 0 || d->nfiles != 1) {
		pv_discovery_release(d);
		return cli_fail("repl: %s", err.msg);
	}
	return 0;
}

int cmd_shell_check(const struct cmd_ctx *c)
{
	const char *path = c->o->paths[0], *at = c->o->at;
	struct pv_test_decl *t = NULL;
	struct pv_err err;
	size_t n = 0, len, o = 0;
	char *src, names[512] = "";
	bool computed = false, found = false;
	int rc;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_fail("shell needs a terminal on stdin and stdout (to run %s without stopping, leave out shell and --at)",
				path);
	if ((rc = sys_read_file(path, 64u << 20, &src, &len)) < 0)
		return cli_fail("shell: cannot read %s: %s", path, strerror(-rc));
	rc = pv_scan_tests(src, len, &t, &n, &err);
	free(src);
	if (rc < 0)
		return cli_fail("shell: %s: %s", path, err.msg);
	for (size_t k = 0; k < n; k++) {
		if (!t[k].name) {
			computed = true; /* the runner checks when it has the names */
			continue;
		}
		found = found || (strlen(at) == t[k].name_len && !memcmp(at, t[k].name, t[k].name_len));
		if (o + t[k].name_len + 8 < sizeof(names))
			o += (size_t)snprintf(names + o, sizeof(names) - o, "%s'%.*s'", o ? ", " : "", (int)t[k].name_len,
					      t[k].name);
	}
	pv_test_decls_free(t, n);
	if (!found && !computed)
		return cli_fail("shell: %s has no test named '%s' (its tests: %s)", path, at, o ? names : "none");
	return 0;
}

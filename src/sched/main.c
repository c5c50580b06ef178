/* provium: the command line. main parses the options (cli.h), loads
 * provium.lua once, resolves the settings (settings.h) and dispatches to one
 * subcommand (cmd.h); `provium __runner` is the runner process instead. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "config.h"
#include "runner.h"
#include "settings.h"

int main(int argc, char **argv)
{
	struct cli_opts o = { 0 };
	struct pv_config cfg = { 0 };
	struct pv_sched_opts so = { .interrupt_fd = -1 };
	struct pv_err err;
	char cache_dir[4096] = "";
	struct cmd_ctx c = { .o = &o, .cfg = &cfg, .so = &so, .cache_dir = cache_dir };
	bool loaded = false;
	int rc;

	if (argc > 1 && strcmp(argv[1], "__runner") == 0)
		return pv_runner_main(argc, argv);

	if ((rc = cli_parse(argc, argv, &o)) != 0) {
		rc = rc == CLI_DONE ? 0 : rc;
		goto out;
	}
	/* the runners read it (src/runner/ltemplate.c); they inherit the environment */
	if (o.cold_boot)
		setenv("PROVIUM_COLD_BOOT", "1", 1);
	if (o.lsp_setup) {
		rc = cmd_lsp_setup(&o);
		goto out;
	}
	if (pv_config_load(o.config, &cfg, &err) < 0) {
		rc = cli_fail("%s", err.msg);
		goto out;
	}
	loaded = true;
	if (o.console) {
		rc = cmd_console(&c);
		goto out;
	}
	settings_roots(&o, &cfg, &c.roots, &c.nroots);
	if ((rc = settings_sched(&o, &cfg, &so)) != 0 || (rc = settings_cache(&o, &cfg, cache_dir, sizeof(cache_dir), &so)) != 0)
		goto out;
	if (o.image_cmd)
		rc = cmd_image(&c);
	else if (o.prepare)
		rc = cmd_prepare(&c);
	else if (o.fixture_cmd && !cli_fixture_build(&o))
		rc = cmd_fixture_admin(&c);
	else if (o.list)
		rc = cmd_list(&c);
	else
		rc = cmd_run(&c);
out:
	if (loaded)
		pv_config_release(&cfg);
	cli_release(&o);
	return rc;
}

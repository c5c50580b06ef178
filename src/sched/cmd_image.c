/* cmd_image.c - provium image list|build|clean: the guest images of
 * provium.lua's Debian profiles (dimage.h; docs/images.md), and the built-in
 * one in the list. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "dimage.h"
#include "pbuild.h"
#include "sys.h"
#include "vm.h"

/* The profiles named on the command line (all Debian ones when none are),
 * each checked to be one; NULL entries end the list. CLI_EXIT_USAGE after
 * printing when a name is wrong. */
static int pick(const struct cmd_ctx *c, const struct pv_profile **out, size_t max, size_t *n)
{
	*n = 0;
	if (!c->o->npaths) {
		for (size_t i = 0; i < c->cfg->nprofiles && *n < max; i++)
			if (c->cfg->profiles[i].base)
				out[(*n)++] = &c->cfg->profiles[i];
		return 0;
	}
	for (size_t i = 0; i < c->o->npaths && *n < max; i++) {
		const struct pv_profile *p = pv_config_profile(c->cfg, c->o->paths[i]);
		if (!p)
			return cli_fail("profile '%s' is not defined %s%s", c->o->paths[i],
					c->cfg->path ? "in " : "(there is no provium.lua)", c->cfg->path ? c->cfg->path : "");
		if (!p->base)
			return cli_fail("profile '%s' has no base = \"debian\": its kernel and initrd are files of its own, "
					"there is no image to build", p->name);
		out[(*n)++] = p;
	}
	return 0;
}

static int build(const struct cmd_ctx *c)
{
	const struct pv_profile *ps[256];
	size_t n;
	int rc = pick(c, ps, 256, &n);
	if (rc)
		return rc;
	if (!n) {
		fprintf(stderr, "provium: no profile %s%s has base = \"debian\": no image to build\n",
			c->cfg->path ? "of " : "(there is no provium.lua)", c->cfg->path ? c->cfg->path : "");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		struct pv_err err;
		struct dimage d;
		if (!c->o->force && dimage_find(ps[i], &d)) {
			printf("%s: up to date (%s)\n", ps[i]->name, d.root);
			continue;
		}
		if (dimage_build(ps[i], c->o->force, stderr, &err) < 0) {
			fprintf(stderr, "provium: %s\n", err.msg);
			return 1;
		}
		dimage_find(ps[i], &d);
		printf("%s: built (%s)\n", ps[i]->name, d.root);
	}
	return 0;
}

/* What a run does for profile p before its first VM boots: its build
 * (pbuild.h), then its Debian image. 0 nothing to do, 1 something was
 * made, or -errno with err set. */
static int prepare_one(const struct pv_profile *p, bool force, struct pv_err *err)
{
	struct dimage d;
	int built = pbuild_run(p, force, stderr, err), rc;
	if (built < 0)
		return built;
	if (!p->base || dimage_find(p, &d))
		return built == 0;
	if ((rc = dimage_build(p, false, stderr, err)) < 0)
		return rc;
	return 1;
}

int cmd_image_prepare(const struct pv_config *cfg)
{
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		struct pv_err err;
		if (prepare_one(&cfg->profiles[i], false, &err) < 0) {
			fprintf(stderr, "provium: %s; nothing ran\n", err.msg);
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

int cmd_prepare(const struct cmd_ctx *c)
{
	const struct pv_config *cfg = c->cfg;
	size_t n = c->o->npaths ? c->o->npaths : cfg->nprofiles, done = 0;

	for (size_t i = 0; i < c->o->npaths; i++) {
		if (!pv_config_profile(cfg, c->o->paths[i])) {
			char names[1024] = "";
			for (size_t k = 0, o = 0; k < cfg->nprofiles && o < sizeof(names); k++)
				o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", k ? ", " : "",
						      cfg->profiles[k].name);
			return cli_fail("profile '%s' is not defined %s%s (its profiles: %s)", c->o->paths[i],
					cfg->path ? "in " : "(there is no provium.lua)", cfg->path ? cfg->path : "",
					cfg->nprofiles ? names : "none");
		}
	}
	for (size_t i = 0; i < n; i++) {
		const struct pv_profile *p = c->o->npaths ? pv_config_profile(cfg, c->o->paths[i]) : &cfg->profiles[i];
		struct pv_err err;
		int rc;
		if (!p->build && !p->base) {
			if (c->o->npaths)
				printf("%s: nothing to prepare (no build, no base = \"debian\")\n", p->name);
			continue;
		}
		if ((rc = prepare_one(p, c->o->force, &err)) < 0) {
			fprintf(stderr, "provium: %s\n", err.msg);
			return 1;
		}
		printf("%s: %s\n", p->name, rc ? "prepared" : "up to date");
		done++;
	}
	if (!c->o->npaths && !done)
		printf("nothing to prepare: no profile %s%s has a build or base = \"debian\"\n",
		       cfg->path ? "of " : "(there is no provium.lua)", cfg->path ? cfg->path : "");
	return 0;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

/* Whether DIR/name is the image of a profile of the config. */
static const struct pv_profile *owner(const struct pv_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		struct dimage d;
		if (!cfg->profiles[i].base)
			continue;
		dimage_find(&cfg->profiles[i], &d);
		const char *slash = strrchr(d.dir, '/');
		if (slash && !strcmp(slash + 1, name))
			return &cfg->profiles[i];
	}
	return NULL;
}

static int list(const struct cmd_ctx *c)
{
	char base[3000], kernel[4096], initrd[4096];
	struct pv_err err;
	vm_image_dir(base, sizeof(base));
	if (vm_builtin_image(kernel, initrd, &err) == 0)
		printf("%-16s built-in  %.*s\n", "linux, host", (int)(strrchr(kernel, '/') - kernel), kernel);
	else
		printf("%-16s built-in  not built (scripts/setup builds it)\n", "linux, host");
	for (size_t i = 0; i < c->cfg->nprofiles; i++) {
		const struct pv_profile *p = &c->cfg->profiles[i];
		struct dimage d;
		if (!p->base)
			continue;
		if (dimage_find(p, &d))
			printf("%-16s debian    %s (%.0f MiB, %u packages, id %s)\n", p->name, d.root, mib(d.bytes),
			       d.npackages, d.id);
		else
			printf("%-16s debian    not built (provium image build %s; a run builds it first)\n", p->name,
			       p->name);
	}
	DIR *dir = opendir(base);
	struct dirent *e;
	while (dir && (e = readdir(dir)))
		if (!strncmp(e->d_name, "debian-", 7) && !owner(c->cfg, e->d_name))
			printf("%-16s debian    %s/%s (no profile uses it: provium image clean --unused removes it)\n", "-", base,
			       e->d_name);
	if (dir)
		closedir(dir);
	return 0;
}

static int clean(const struct cmd_ctx *c)
{
	char base[3000], path[3300];
	const struct pv_profile *ps[256];
	size_t n = 0, removed = 0;
	int rc;
	vm_image_dir(base, sizeof(base));
	if (c->o->npaths) {
		if (c->o->all || c->o->unused)
			return cli_fail("provium image clean takes profiles or %s, not both", c->o->all ? "--all" : "--unused");
		if ((rc = pick(c, ps, 256, &n)) != 0)
			return rc;
		for (size_t i = 0; i < n; i++) {
			struct dimage d;
			bool built = dimage_find(ps[i], &d);
			if (built && (rc = sys_rm_tree(d.dir, NULL, 0)) < 0) {
				fprintf(stderr, "provium: cannot remove %s: %s\n", d.dir, strerror(-rc));
				return 1;
			}
			printf("%s: %s\n", ps[i]->name, built ? "removed" : "not built");
		}
		return 0;
	}
	if (c->o->all == c->o->unused)
		return cli_fail(c->o->all ? "provium image clean takes --all or --unused, not both"
					  : "provium image clean needs the profiles whose images to delete, or --unused (the Debian "
					    "images no profile of this provium.lua uses: other projects' too, as the image directory "
					    "is per user) or --all");
	DIR *dir = opendir(base);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		bool failed = strlen(e->d_name) > 7 && !strcmp(e->d_name + strlen(e->d_name) - 7, ".failed");
		if (strncmp(e->d_name, "debian-", 7) != 0 || (!c->o->all && !failed && owner(c->cfg, e->d_name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
		if ((rc = sys_rm_tree(path, NULL, 0)) < 0) {
			fprintf(stderr, "provium: cannot remove %s: %s\n", path, strerror(-rc));
			closedir(dir);
			return 1;
		}
		printf("removed %s\n", path);
		removed++;
	}
	if (dir)
		closedir(dir);
	if (!removed)
		printf("nothing to remove\n");
	return 0;
}

int cmd_image(const struct cmd_ctx *c)
{
	if (!strcmp(c->o->image_cmd, "build"))
		return build(c);
	if (c->o->force)
		return cli_fail("--force goes with provium image build");
	if (!strcmp(c->o->image_cmd, "list")) {
		if (c->o->npaths)
			return cli_fail("provium image list takes no arguments");
		return list(c);
	}
	return clean(c);
}

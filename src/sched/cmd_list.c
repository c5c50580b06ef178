/* cmd_list.c - provium list: the test files a run would dispatch, with their
 * fixtures and claims; with --tests every test they declare, with its tags
 * and meta; with --fixtures every fixture, its cache key and whether it is
 * cached (cmd.h). Nothing runs: tests are read by the static scan (scan.h),
 * since a file's top level often boots VMs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fcache.h"
#include "fixkey.h"
#include "mpr.h"
#include "scan.h"
#include "select.h"
#include "sys.h"
#include "units.h"

static void print_json_line(json_t *j)
{
	json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	putchar('\n');
	json_decref(j);
}

/* A table key as Lua source writes it: name, or ["any text"]. */
static void put_key(const char *k)
{
	bool ident = (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') || *k == '_';
	for (const char *p = k; ident && *p; p++)
		ident = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (*p >= '0' && *p <= '9');
	printf(ident ? "%s" : "[\"%s\"]", k);
}

/* A meta value as Lua source would write it, for the text listing. */
static void put_lua(const json_t *v)
{
	size_t i;
	const char *k;
	json_t *e;

	if (json_is_string(v))
		printf("\"%s\"", json_string_value(v));
	else if (json_is_integer(v))
		printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v)) {
		/* as Lua's tostring: 2.0 stays a float */
		char num[64];
		snprintf(num, sizeof(num), "%.14g", json_real_value(v));
		printf("%s%s", num, num[strspn(num, "-0123456789")] ? "" : ".0");
	}
	else if (json_is_boolean(v))
		fputs(json_is_true(v) ? "true" : "false", stdout);
	else if (json_is_array(v)) {
		putchar('{');
		json_array_foreach(v, i, e) {
			fputs(i ? ", " : "", stdout);
			put_lua(e);
		}
		putchar('}');
	} else if (json_is_object(v) && json_object_get(v, "$bytes") && json_object_size(v) == 1) {
		fputs("<bytes>", stdout);
	} else if (json_is_object(v)) {
		bool first = true;
		putchar('{');
		json_object_foreach((json_t *)v, k, e) {
			fputs(first ? "" : ", ", stdout);
			put_key(k);
			fputs(" = ", stdout);
			put_lua(e);
			first = false;
		}
		putchar('}');
	}
}

/* The tags a test's meta declares: tags = "x" or tags = {"x", ...}. */
static json_t *tags_of(const json_t *meta)
{
	json_t *t = json_object_get(meta, "tags");
	if (json_is_string(t))
		return json_pack("[O]", t);
	return json_is_array(t) ? json_incref(t) : json_array();
}

static bool selected(const struct pv_test_file *f, const struct pv_test_decl *d)
{
	if (!f->nonly)
		return true;
	for (size_t i = 0; d->name && i < f->nonly; i++)
		if (!strcmp(f->only[i], d->name))
			return true;
	return false;
}

static int list_tests(const struct cmd_ctx *c, const struct pv_discovery *d)
{
	size_t ntests = 0, nunknown = 0;

	for (size_t i = 0; i < d->nfiles; i++) {
		const struct pv_test_file *f = &d->files[i];
		struct pv_test_decl *t = NULL;
		struct pv_err err;
		size_t n = 0, len;
		char *src;
		int rc = sys_read_file(f->abs_path, 64u << 20, &src, &len);

		if (rc < 0)
			return cli_fail("cannot read %s: %s", f->abs_path, strerror(-rc));
		rc = pv_scan_tests(src, len, &t, &n, &err);
		free(src);
		if (rc < 0)
			return cli_fail("%s: %s", f->abs_path, err.msg);
		for (size_t k = 0; k < n; k++) {
			json_t *tags;
			if (!selected(f, &t[k]))
				continue;
			ntests++;
			nunknown += !t[k].name;
			tags = tags_of(t[k].meta);
			if (c->o->json) {
				json_t *j = json_pack("{s:s, s:s, s:I, s:s%, s:O, s:O}", "path", f->rel_path, "root", f->root,
						      "line", (json_int_t)t[k].line, "name", t[k].name ? t[k].name : "",
						      t[k].name_len, "tags", tags, "meta", t[k].meta);
				if (!t[k].name)
					json_object_set_new(j, "name", json_null());
				if (t[k].meta_computed)
					json_object_set_new(j, "meta_computed", json_true());
				if (t[k].computed)
					json_object_set(j, "computed", t[k].computed);
				print_json_line(j);
			} else {
				const char *key;
				json_t *v;
				bool first = true;
				size_t ti;
				printf("%s:%u :: %s", f->rel_path, t[k].line, t[k].name ? t[k].name : "? (name computed when the file runs)");
				json_array_foreach(tags, ti, v)
					printf("%s%s", ti ? ", " : "  tags: ", json_is_string(v) ? json_string_value(v) : "?");
				json_object_foreach(t[k].meta, key, v) {
					if (!strcmp(key, "tags"))
						continue;
					fputs(first ? "  meta: " : " ", stdout);
					put_key(key);
					putchar('=');
					put_lua(v);
					first = false;
				}
				for (size_t ci = 0; t[k].computed && ci < json_array_size(t[k].computed); ci++)
					printf("%s%s=?", first && !ci ? "  meta: " : " ",
					       json_string_value(json_array_get(t[k].computed, ci)));
				if (t[k].meta_computed)
					fputs("  meta: ? (computed when the file runs)", stdout);
				putchar('\n');
			}
			json_decref(tags);
		}
		pv_test_decls_free(t, n);
	}
	fprintf(stderr, "%zu test%s in %zu file%s", ntests, ntests == 1 ? "" : "s", d->nfiles, d->nfiles == 1 ? "" : "s");
	if (nunknown)
		fprintf(stderr, " (%zu with a name computed when the file runs)", nunknown);
	fputc('\n', stderr);
	return 0;
}

static int list_fixtures(const struct cmd_ctx *c, const struct pv_discovery *d)
{
	struct fc_info *e = NULL;
	size_t n = 0, ncached = 0;
	struct pv_err err;
	bool have_cache = c->cache_dir && *c->cache_dir;

	if (have_cache && fc_list(c->cache_dir, &e, &n, &err) < 0)
		return cli_fail("%s", err.msg);
	for (size_t i = 0; i < d->nfixtures; i++) {
		char key[FC_KEY_LEN + 1], file[4200];
		const char *state = have_cache ? "not cached" : "unknown (no cache directory)";
		bool keyed = fx_key((const char *const *)c->roots, c->nroots, c->cfg->path, d->fixtures[i], key, &err) == 0;
		bool cached = false;

		for (size_t k = 0; keyed && k < n; k++)
			if (!strcmp(e[k].key, key)) {
				cached = !e[k].corrupt;
				state = e[k].corrupt ? "corrupt" : "cached";
			}
		ncached += cached;
		if (fx_find((const char *const *)c->roots, c->nroots, d->fixtures[i], file, sizeof(file), NULL) < 0)
			file[0] = 0;
		if (c->o->json) {
			json_t *j = json_pack("{s:s, s:s, s:s?, s:s}", "fixture", d->fixtures[i], "file", file, "key",
					      keyed ? key : NULL, "state", state);
			json_object_set_new(j, "cached", json_boolean(cached));
			if (!keyed)
				json_object_set_new(j, "error", json_string(err.msg));
			print_json_line(j);
		} else if (keyed) {
			printf("%-16.16s  %-10s  %s\n", key, state, d->fixtures[i]);
		} else {
			printf("%-16s  %-10s  %s (%s)\n", "?", "no key", d->fixtures[i], err.msg);
		}
	}
	free(e);
	fprintf(stderr, "%zu fixture%s, %zu cached", d->nfixtures, d->nfixtures == 1 ? "" : "s", ncached);
	if (have_cache)
		fprintf(stderr, ", in %s", c->cache_dir);
	fputc('\n', stderr);
	return 0;
}

int cmd_list(const struct cmd_ctx *c)
{
	struct pv_discovery d;
	struct pv_err err;
	int rc = 0;

	if (pv_discover((const char *const *)c->roots, c->nroots, c->o->filter, &d, &err) < 0)
		return cli_fail("%s", err.msg);
	if (!c->o->list_fixtures && (rc = sel_apply(c, &d)) != 0) {
		pv_discovery_release(&d);
		return rc == SEL_NOTHING ? 0 : rc;
	}
	if (c->o->list_tests) {
		rc = list_tests(c, &d);
	} else if (c->o->list_fixtures) {
		rc = list_fixtures(c, &d);
	} else {
		for (size_t i = 0; i < d.nfiles; i++) {
			printf("%s", d.files[i].rel_path);
			for (size_t r = 0; r < d.files[i].nfixture_refs; r++)
				printf("%s%s", r ? ", " : "  fixtures: ", d.files[i].fixture_refs[r]);
			if (d.files[i].has_claim) {
				char m[32];
				printf("  claim: %s, %u cpus", pv_format_size(d.files[i].claim.memory_bytes, m),
				       d.files[i].claim.cpus);
			}
			putchar('\n');
		}
		fprintf(stderr, "%zu test files, %zu fixtures\n", d.nfiles, d.nfixtures);
	}
	pv_discovery_release(&d);
	return rc;
}

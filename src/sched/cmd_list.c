/* cmd_list.c - provium list: the test files a run would dispatch, with their
 * fixtures and claims (cmd.h). */
#include <stdio.h>

#include "cmd.h"
#include "units.h"

int cmd_list(const struct cmd_ctx *c)
{
	struct pv_discovery d;
	struct pv_err err;

	if (pv_discover((const char *const *)c->roots, c->nroots, c->o->filter, &d, &err) < 0)
		return cli_fail("%s", err.msg);
	for (size_t i = 0; i < d.nfiles; i++) {
		printf("%s", d.files[i].rel_path);
		for (size_t r = 0; r < d.files[i].nfixture_refs; r++)
			printf("%s%s", r ? ", " : "  fixtures: ", d.files[i].fixture_refs[r]);
		if (d.files[i].has_claim) {
			char m[32];
			printf("  claim: %s, %u cpus", pv_format_size(d.files[i].claim.memory_bytes, m), d.files[i].claim.cpus);
		}
		putchar('\n');
	}
	fprintf(stderr, "%zu test files, %zu fixtures\n", d.nfiles, d.nfixtures);
	pv_discovery_release(&d);
	return 0;
}

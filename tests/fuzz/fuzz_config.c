/* libFuzzer target: the provium.lua loader (src/host/config.c) on the file's
 * text: the config and its profiles are read once by the scheduler, and a
 * typo or a damaged file must be one clear error, never a crash. The
 * loader's instruction limit ends an endless loop (scripts/fuzz lowers it
 * with -DCONFIG_MAX_INSTRUCTIONS so the fuzzer spends its time elsewhere).
 * The chunk runs with the standard libraries, so scripts/fuzz runs the
 * fuzzer in an empty scratch directory. A rejection always says why; a
 * loaded config has the invariants the scheduler relies on. Built by
 * scripts/fuzz; replay.c runs tests/fuzz/config_corpus in every test run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pv_config c;
	struct pv_err err;

	err.msg[0] = 0;
	if (pv_config_load_buf("provium.lua", (const char *)data, size, &c, &err) < 0) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (!c.path || (c.nroots && !c.roots) || (c.nprofiles && !c.profiles))
		abort();
	for (size_t i = 0; i < c.nroots; i++)
		if (!c.roots[i])
			abort();
	for (size_t i = 0; i < c.nprofiles; i++) {
		const struct pv_profile *p = &c.profiles[i];
		if (!p->name || !p->kernel || !p->initrd || pv_config_profile(&c, p->name) != p)
			abort();
	}
	if (c.has_overcommit && !(c.cpu_overcommit > 0))
		abort();
	pv_config_release(&c);
	return 0;
}

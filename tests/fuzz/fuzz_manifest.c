/* libFuzzer target: the fixture cache's manifest.json reader
 * (src/fixture/fcache.c), which reads files a crashed or older provium, a full
 * disk or a user's hand may have damaged. The input is the file's text, read
 * as the entry named KEY. An accepted manifest has the invariants fc_lookup
 * and the fixture glue rely on (NUL-terminated names, plain distinct file
 * names, at most FC_MAX_VMS VMs, the key repeated); a rejection always says
 * why. Built by scripts/fuzz; replay.c runs tests/fuzz/manifest_corpus in
 * every test run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcache.h"

#define KEY "0123456789abcdef0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fc_manifest m; /* 60 KiB: off the stack */
	struct pv_err err;

	err.msg[0] = 0;
	if (fc_manifest_parse((const char *)data, size, KEY, &m, &err) < 0) {
		if (!err.msg[0] || m.nvms || m.key[0])
			abort();
		return 0;
	}
	if (strcmp(m.key, KEY) != 0 || m.nvms > FC_MAX_VMS || memchr(m.fixture, 0, sizeof(m.fixture)) == NULL)
		abort();
	for (size_t i = 0; i < m.nvms; i++) {
		const struct fc_vm *vm = &m.vms[i];
		if (!memchr(vm->name, 0, sizeof(vm->name)) || !memchr(vm->file, 0, sizeof(vm->file)) ||
		    !vm->file[0] || strchr(vm->file, '/') || !strcmp(vm->file, ".") || !strcmp(vm->file, "..") ||
		    !strcmp(vm->file, "manifest.json"))
			abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m.vms[j].file, vm->file))
				abort();
	}
	return 0;
}

/* libFuzzer target: the guest agent's request decoder (src/agent/wire.c),
 * which reads whatever the host sends. The input is one request body (a
 * msgpack map); every getter is run on every key, as the op handlers would.
 * Nothing may crash, leak or read out of bounds; getters must either succeed
 * or explain themselves in rq.msg. Built by scripts/fuzz; replay.c runs the
 * checked-in corpus (tests/fuzz/agent_corpus) in every test run. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

struct ag_state ag;
void ag_log(const char *fmt, ...)
{
	(void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ag_req rq;
	memset(&rq, 0, sizeof(rq));
	if (ag_req_parse(&rq, data, size) < 0) {
		if (!rq.msg[0])
			abort(); /* a rejection always says why */
		return 0;
	}
	for (int k = 0; k < AG_K_COUNT; k++) {
		uint64_t u;
		int64_t i;
		bool b, present;
		char *s = NULL, **v = NULL;
		const uint8_t *bin;
		uint32_t blen;
		size_t n;

		rq.msg[0] = 0;
		if (ag_req_u64(&rq, (enum ag_key)k, 0, &u) < 0 && !rq.msg[0])
			abort();
		(void)ag_req_i64(&rq, (enum ag_key)k, 0, &i);
		(void)ag_req_bool(&rq, (enum ag_key)k, false, &b);
		if (ag_req_str(&rq, (enum ag_key)k, &s) == 0 && s && strlen(s) > size)
			abort();
		free(s);
		if (ag_req_bin(&rq, (enum ag_key)k, &bin, &blen, &present) == 0 && present &&
		    (bin < data || bin + blen > data + size))
			abort(); /* bytes must point into the request */
		if (ag_req_strv(&rq, (enum ag_key)k, &v, &n) == 0)
			ag_strv_free(v);
		v = NULL;
		if (ag_req_env(&rq, (enum ag_key)k, &v, &n) == 0)
			ag_strv_free(v);
	}
	return 0;
}

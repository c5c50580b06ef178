/* libFuzzer target: the QMP reply decoder (src/vm/qmp.c), which reads
 * what QEMU writes on its monitor socket: a QEMU that crashes mid-line, a
 * version that answers differently. The input is the byte stream QEMU
 * sends while a command waits: lines are handled as qmp_exec handles them
 * (events kept, the return or error ending the command), then events are
 * looked up as qmp_wait_event and a return is read as the VM backend reads
 * a restore's query-status (vm_incoming_status). A rejection always says why. Built by
 * scripts/fuzz; replay.c runs tests/fuzz/qmp_corpus in every test run. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qmp.h"
#include "vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qmp q = { .fd = -1, .in = PV_BUF_INIT };
	struct pv_err err;

	q.events = json_array();
	if (!q.events || pv_buf_append(&q.in, data, size) < 0)
		abort();
	/* one command after another while whole replies remain */
	for (int n = 0; n < 64; n++) {
		json_t *ret = NULL;
		int rc;
		err.msg[0] = 0;
		rc = qmp_parse_reply(&q, "query-status", &ret, &err);
		if (rc == -EAGAIN)
			break;
		if (rc < 0) {
			if (!err.msg[0])
				abort();
			if (rc != -EIO)
				break; /* the connection is unusable after a bad line */
			continue;
		}
		if (rc != 0)
			abort();
		/* as vm.c's restore reads query-status */
		bool waiting;
		err.msg[0] = 0;
		if (vm_incoming_status(ret, "snap.zst", &waiting, &err) < 0 && !err.msg[0])
			abort();
	}
	while (qmp_take_event(&q, "MIGRATION") || qmp_take_event(&q, "STOP") || qmp_take_event(&q, "SHUTDOWN"))
		;
	/* qmp_close without a socket */
	pv_buf_release(&q.in);
	json_decref(q.events);
	return 0;
}

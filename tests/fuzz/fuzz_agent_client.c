/* libFuzzer target: the host's agent client decoder (src/vm/agent_client.c),
 * which reads what the guest sends: a guest is untrusted (a test may break
 * it, a kernel may corrupt the port). The input is the byte stream on the
 * agent's port: frames are decoded as the client's read loop does, the first
 * as the hello, the rest as responses to request 1 (then 2, ...), and every
 * response is read with the getters the VM bindings use. A transport or
 * protocol failure marks the connection dead with its reason. Built by
 * scripts/fuzz; replay.c runs tests/fuzz/agent_client_corpus in every test
 * run. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_like_the_bindings(const struct ctl_msg *m)
{
	static const char *const keys[] = { "status", "exit_code", "signal", "stdout", "stderr", "proc", "pid",
					    "type", "size", "mode", "mtime_ns", "entries", "data", "time_ns",
					    "applied", "reseeded" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const uint8_t *p;
		uint32_t len;
		int64_t x;
		uint64_t u;
		bool b;
		size_t n;
		char *s = ctl_get_strdup(m, keys[i]), **v;
		free(s);
		(void)ctl_get_raw(m, keys[i], &p, &len);
		(void)ctl_get_int(m, keys[i], &x);
		(void)ctl_get_uint(m, keys[i], &u);
		(void)ctl_get_bool(m, keys[i], &b);
		v = ctl_get_strv(m, keys[i], &n);
		ctl_strv_free(v, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_conn a;
	const uint8_t *body;
	uint32_t len;
	struct pv_err err;
	bool hello = true;
	int rc;

	memset(&a, 0, sizeof(a));
	a.fd = -1;
	a.pidfd = -1;
	frame_dec_init(&a.dec);
	a.cur_id = 1;
	if (frame_dec_feed(&a.dec, data, size) < 0)
		abort();
	while (!a.dead && (rc = frame_dec_next(&a.dec, &body, &len, NULL, &err)) == 1) {
		int e = 0;
		pv_buf_reset(&a.body);
		if (pv_buf_append(&a.body, body, len) < 0)
			abort();
		err.msg[0] = 0;
		if (hello) {
			hello = false;
			if (agent_take_hello(&a, &err) < 0 && (!err.msg[0] || !a.dead))
				abort();
			continue;
		}
		rc = agent_take_response(&a, &e, &err);
		if (rc < 0 && !err.msg[0])
			abort();
		if (rc == -EPROTO && !a.dead)
			abort(); /* a malformed response ends the connection */
		if (rc == 0 || rc == -EREMOTEIO) {
			read_like_the_bindings(&a.resp);
			a.cur_id++;
		}
	}
	agent_close(&a);
	return 0;
}

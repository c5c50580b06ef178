/* libFuzzer target: the frame splitter and the event decoder.
 *
 * The input is treated as a byte stream of frames. Every frame that decodes
 * must re-encode and decode to an equal event (the decoder accepts nothing the
 * encoder cannot write). Built with clang -fsanitize=fuzzer by scripts/fuzz;
 * replay.c runs the checked-in corpus in the normal test suite. */
#include <stdint.h>
#include <stdlib.h>

#include "event.h"
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_dec d;
	struct pv_event ev, back;
	struct pv_buf b = PV_BUF_INIT;
	struct pv_err err;
	const uint8_t *body;
	uint32_t len;
	int rc;

	frame_dec_init(&d);
	pv_event_init(&ev);
	pv_event_init(&back);
	if (frame_dec_feed(&d, data, size) < 0)
		abort();
	while ((rc = frame_dec_next(&d, &body, &len, NULL, &err)) == 1) {
		if (pv_event_decode(&ev, body, len, &err) < 0) {
			if (err.msg[0] == 0 || err.offset > len)
				abort(); /* every failure explains itself, inside the body */
			continue;
		}
		pv_buf_reset(&b);
		if (pv_event_encode(&ev, &b, &err) < 0)
			abort();
		if (pv_event_decode(&back, b.data + 4, b.len - 4, &err) < 0)
			abort();
		if (!pv_event_equal(&ev, &back))
			abort();
	}
	if (rc == 0)
		(void)frame_dec_finish(&d, &err);
	pv_buf_release(&b);
	pv_event_release(&back);
	pv_event_release(&ev);
	frame_dec_release(&d);
	return 0;
}

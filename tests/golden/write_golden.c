/* Regenerates tests/golden/frames/<kind>.bin from the canonical events.
 * Only for deliberate contract changes: the files are checked in, the unit
 * test compares the encoder against them and check.py compares them against
 * an independent msgpack encoder. Usage: write-golden DIR */
#include <stdio.h>

#include "golden_events.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: write-golden DIR\n");
		return 2;
	}
	for (int k = 0; k < PV_EV__COUNT; k++) {
		struct pv_event ev;
		struct pv_buf b = PV_BUF_INIT;
		struct pv_err err;
		char path[4096];
		FILE *f;
		golden_event((enum pv_event_kind)k, &ev);
		if (pv_event_encode(&ev, &b, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		snprintf(path, sizeof(path), "%s/%s.bin", argv[1], pv_event_kind_name((enum pv_event_kind)k));
		f = fopen(path, "wb");
		if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f)) {
			perror(path);
			return 1;
		}
		pv_buf_release(&b);
	}
	return 0;
}

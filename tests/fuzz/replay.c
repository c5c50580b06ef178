/* Runs the fuzz target over every file in the given directories (the
 * checked-in corpus), without libFuzzer: the regression half of fuzzing, in
 * every build. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	struct pv_buf b = PV_BUF_INIT;
	char tmp[65536];
	size_t r;
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	while ((r = fread(tmp, 1, sizeof(tmp), f)) > 0)
		pv_buf_append(&b, tmp, r);
	fclose(f);
	LLVMFuzzerTestOneInput(b.data ? b.data : (const uint8_t *)"", b.len);
	pv_buf_release(&b);
	return 0;
}

int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((e = readdir(d))) {
			char path[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (run_file(path) < 0)
				return 1;
			n++;
		}
		closedir(d);
	}
	printf("replayed %d inputs\n", n);
	return n > 0 ? 0 : 1;
}

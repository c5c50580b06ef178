/* pressure.c - host memory pressure (pressure.h). */
#include "pressure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sys.h"

int pressure_memory_avg10(double *ret)
{
	const char *dir = getenv("PROVIUM_PSI_DIR");
	char path[4096], *buf = NULL;
	size_t len;
	double v;
	int rc;

	snprintf(path, sizeof(path), "%s/memory", dir ? dir : "/proc/pressure");
	if ((rc = sys_read_file(path, 4096, &buf, &len)) < 0)
		return rc;
	rc = sscanf(buf, "some avg10=%lf", &v) == 1 ? 0 : -EBADMSG;
	free(buf);
	if (rc == 0)
		*ret = v;
	return rc;
}

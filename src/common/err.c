#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pv_err_set(struct pv_err *err, int neg_errno, size_t offset, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		err->offset = offset;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return neg_errno;
}

void pv_err_prefix(struct pv_err *err, const char *fmt, ...)
{
	char prefix[PV_ERR_MSG_MAX], joined[2 * PV_ERR_MSG_MAX + 2];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg);
	/* a message too long for the buffer loses its tail, never its start */
	memcpy(err->msg, joined, sizeof(err->msg) - 1);
	err->msg[sizeof(err->msg) - 1] = 0;
}

/* err.h - an error a user will read: a message and, for decoders, a byte offset.
 *
 * Functions that can fail return a negative errno and, when given a non-NULL
 * struct pv_err, describe the failure in it. They never print: only the top
 * level of a process prints.
 */
#ifndef PV_ERR_H
#define PV_ERR_H

#include <stddef.h>
#include <stdint.h>

/* room for a boot failure's 4 KiB console tail */
#define PV_ERR_MSG_MAX 6144

struct pv_err {
	/* Byte offset the problem was found at, relative to the start of the
	 * buffer or stream the decoder was given; SIZE_MAX when not applicable. */
	size_t offset;
	char msg[PV_ERR_MSG_MAX];
};

/* Fills err (if non-NULL) with offset and a printf-style message; returns -errnum
 * so that callers can write `return pv_err_set(err, -EBADMSG, off, "...")`. */
int pv_err_set(struct pv_err *err, int neg_errno, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Prepends "prefix: " to an existing message. */
void pv_err_prefix(struct pv_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pv_buf_reserve(struct pv_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int pv_buf_append_slow(struct pv_buf *b, const void *data, size_t n)
{
	int rc = pv_buf_reserve(b, n);
	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

void pv_buf_consume(struct pv_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void pv_buf_release(struct pv_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

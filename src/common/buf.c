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

/* Grows the array that arr points to (a pointer to T *, elements of size
 * elem) so that it can hold n + 1. The pointer is moved with memcpy since it
 * is a T *, not a void *. */
int pv_grow_array(void *arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p, *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	memcpy(&p, arr, sizeof(p));
	np = realloc(p, ncap * elem);
	if (!np)
		return -ENOMEM;
	memcpy(arr, &np, sizeof(np));
	*cap = ncap;
	return 0;
}

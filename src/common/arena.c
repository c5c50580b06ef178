#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pv_arena_block {
	struct pv_arena_block *next;
	size_t size;
	_Alignas(16) unsigned char data[];
};

#define ARENA_MIN_BLOCK (16u * 1024u)

void *pv_arena_alloc(struct pv_arena *a, size_t n)
{
	struct pv_arena_block *b;
	size_t size;

	if (n > SIZE_MAX - 16)
		return NULL;
	n = (n + 7) & ~(size_t)7;
	if (a->head && a->head->size - a->used >= n) {
		void *p = a->head->data + a->used;
		a->used += n;
		return p;
	}
	size = n > ARENA_MIN_BLOCK ? n : ARENA_MIN_BLOCK;
	if (a->head && a->head->size * 2 > size && a->head->size * 2 >= a->head->size)
		size = a->head->size * 2 > n ? a->head->size * 2 : n;
	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	b = malloc(sizeof(*b) + size);
	if (!b)
		return NULL;
	b->size = size;
	b->next = a->head;
	a->head = b;
	a->used = n;
	return b->data;
}

void *pv_arena_calloc(struct pv_arena *a, size_t nmemb, size_t size)
{
	void *p;
	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = pv_arena_alloc(a, nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

char *pv_arena_strndup(struct pv_arena *a, const void *s, size_t n)
{
	char *p;
	if (n == SIZE_MAX)
		return NULL;
	p = pv_arena_alloc(a, n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void pv_arena_reset(struct pv_arena *a)
{
	/* keep the newest (largest) block, free the rest */
	struct pv_arena_block *b;
	if (!a->head)
		return;
	b = a->head->next;
	a->head->next = NULL;
	while (b) {
		struct pv_arena_block *n = b->next;
		free(b);
		b = n;
	}
	a->used = 0;
}

void pv_arena_release(struct pv_arena *a)
{
	pv_arena_reset(a);
	free(a->head);
	a->head = NULL;
	a->used = 0;
}

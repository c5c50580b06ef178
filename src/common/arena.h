/* arena.h - a bump allocator for data that dies together (one decoded event).
 *
 * pv_arena_reset keeps the first block for reuse, so decoding a stream of events
 * into one arena allocates only when an event is larger than any before it.
 */
#ifndef PV_ARENA_H
#define PV_ARENA_H

#include <stddef.h>

struct pv_arena_block;

struct pv_arena {
	struct pv_arena_block *head;
	size_t used; /* in head */
};

#define PV_ARENA_INIT { NULL, 0 }

/* 8-byte aligned, uninitialised; NULL on overflow or out of memory. */
void *pv_arena_alloc(struct pv_arena *a, size_t n);
void *pv_arena_calloc(struct pv_arena *a, size_t nmemb, size_t size);
/* Copies n bytes and appends a NUL. */
char *pv_arena_strndup(struct pv_arena *a, const void *s, size_t n);
void pv_arena_reset(struct pv_arena *a);
void pv_arena_release(struct pv_arena *a);

#endif

/* scope.c - per-lua_State contexts and the registry of guest resources
 * (contract in scope.h). */
#include "scope.h"

#include <lauxlib.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

/* lua_getextraspace is one pointer wide: ours. Coroutines start with a copy
 * of the main thread's, so every thread of a state finds the same context. */
_Static_assert(LUA_EXTRASPACE >= sizeof(void *), "LUA_EXTRASPACE holds the context pointer");

void scope_ctx_new(lua_State *L)
{
	struct scope_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		fprintf(stderr, "provium runner: out of memory\n");
		exit(70);
	}
	c->head.prev = c->head.next = &c->head;
	memcpy(lua_getextraspace(L), &c, sizeof(c));
}

struct scope_ctx *scope_ctx(lua_State *L)
{
	struct scope_ctx *c;
	memcpy(&c, lua_getextraspace(L), sizeof(c));
	return c;
}

static void unlink_res(struct scope_res *r)
{
	if (!r->prev)
		return;
	r->prev->next = r->next;
	r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

void scope_add(lua_State *L, struct scope_res *r, const struct scope_ops *ops)
{
	struct scope_ctx *c = scope_ctx(L);
	r->ops = ops;
	r->ctx = c;
	r->scope = c->current;
	r->closed = false;
	r->next = &c->head;
	r->prev = c->head.prev;
	c->head.prev->next = r;
	c->head.prev = r;
	c->count[ops->kind]++;
}

void scope_close(struct scope_res *r, enum scope_how how)
{
	if (!r->ops || r->closed)
		return;
	/* first: a close that reaches this resource again finds it closed */
	r->closed = true;
	unlink_res(r);
	r->ops->close(r, how);
}

struct scope_res *scope_test(lua_State *L, int idx, const struct scope_ops *ops)
{
	struct scope_res *r = luaL_testudata(L, idx, ops->tname);
	return r && r->ops == ops ? r : NULL;
}

static int res_gc(lua_State *L)
{
	struct scope_res *r = lua_touserdata(L, 1);
	if (!r || !r->ops)
		return 0; /* collected before it was registered: it holds nothing */
	scope_close(r, SCOPE_BY_GC);
	if (r->ops->release)
		r->ops->release(r);
	r->ops = NULL;
	return 0;
}

static int res_tbc(lua_State *L)
{
	struct scope_res *r = lua_touserdata(L, 1);
	if (r && r->ops)
		scope_close(r, SCOPE_BY_USER);
	return 0;
}

void scope_set_methods(lua_State *L, const struct scope_ops *ops)
{
	luaL_newmetatable(L, ops->tname);
	lua_pushcfunction(L, res_gc);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, res_tbc);
	lua_setfield(L, -2, "__close");
	lua_insert(L, -2);
	if (lua_isnil(L, -1))
		lua_pop(L, 1);
	else
		lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

/* The newest open resource of kind in scope (any scope if all). */
static struct scope_res *newest(struct scope_ctx *c, enum scope_kind kind, unsigned scope, bool all)
{
	for (struct scope_res *r = c->head.prev; r != &c->head; r = r->prev)
		if (r->ops->kind == kind && (all || r->scope == scope))
			return r;
	return NULL;
}

static void end_scopes(struct scope_ctx *c, unsigned scope, bool all)
{
	/* one at a time from the newest: a close may end other resources too */
	for (int k = 0; k < SCOPE_NKINDS; k++) {
		struct scope_res *r;
		while ((r = newest(c, (enum scope_kind)k, scope, all)))
			scope_close(r, SCOPE_BY_SCOPE);
	}
}

void scope_begin(lua_State *L, unsigned n)
{
	scope_ctx(L)->current = n;
}

void scope_end(lua_State *L, unsigned n)
{
	struct scope_ctx *c = scope_ctx(L);
	end_scopes(c, n, false);
	c->current = 0;
	for (struct scope_res *r = c->head.next; r != &c->head; r = r->next)
		if (r->ops->settle)
			r->ops->settle(r);
}

void scope_end_all(lua_State *L)
{
	end_scopes(scope_ctx(L), 0, true);
}

void scope_close_state(lua_State *L)
{
	struct scope_ctx *c = scope_ctx(L);
	scope_end_all(L);
	/* finalizers run in lua_close find everything closed; they only free */
	lua_close(L);
	free(c);
}

void scope_each(lua_State *L, enum scope_kind kind, void (*fn)(struct scope_res *r, void *ud), void *ud)
{
	struct scope_ctx *c = scope_ctx(L);
	for (struct scope_res *r = c->head.next; r != &c->head; r = r->next)
		if (r->ops->kind == kind)
			fn(r, ud);
}

struct strv_box {
	size_t n;
	char *v[];
};

/* Gives the box on top of the stack the metatable `name` (gc as __gc and
 * __close) and marks its slot to-be-closed: it is freed when the C function
 * returns or raises, or by the GC. */
static void close_in_slot(lua_State *L, const char *name, lua_CFunction gc)
{
	if (luaL_newmetatable(L, name)) {
		lua_pushcfunction(L, gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, gc);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	lua_toclose(L, -1);
}
static int strv_gc(lua_State *L)
{
	struct strv_box *b = lua_touserdata(L, 1);
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i]);
		b->v[i] = NULL;
	}
	return 0;
}

char **scope_strv_box(lua_State *L, size_t n)
{
	struct strv_box *b = lua_newuserdatauv(L, sizeof(*b) + n * sizeof(char *), 0);
	b->n = n;
	memset(b->v, 0, n * sizeof(char *));
	close_in_slot(L, "provium.strv", strv_gc);
	return b->v;
}

static int fd_gc(lua_State *L)
{
	int *fd = lua_touserdata(L, 1);
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	return 0;
}

int *scope_fd_box(lua_State *L)
{
	int *fd = lua_newuserdatauv(L, sizeof(*fd), 0);
	*fd = -1;
	close_in_slot(L, "provium.fdbox", fd_gc);
	return fd;
}

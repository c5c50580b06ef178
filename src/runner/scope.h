/* scope.h - the runner's per-lua_State context and its registry of guest
 * resources (VMs, processes; later bridges, disks, streams, files, workers).
 *
 * Every lua_State the runner makes (the test file's, each fixture builder's)
 * owns one struct scope_ctx, reachable from the state and its coroutines
 * through lua_getextraspace: there are no C globals, and two states never see
 * each other's resources.
 *
 * A resource is a full userdata whose first member is a struct scope_res. It
 * joins the scope that is current when it is made: the file (or the fixture
 * builder), or the running test. When that scope ends, every resource still
 * open in it is closed, kinds in enum order (streams before the processes they
 * read, processes before the VMs they run in, ...), newest first within a kind.
 * A resource closed earlier (its __close at the end of a `local x <close>`
 * block, an explicit vm:shutdown(), its __gc) is skipped: close runs once.
 *
 * Protocol for a resource kind:
 *   1. Check every argument first (luaL_error longjmps past C cleanup).
 *   2. Push the userdata (lua_newuserdatauv), zero it, set its metatable with
 *      scope_set_methods' __gc/__close, and call scope_add() before taking any
 *      host resource, then fill it in: from then on an error anywhere (even
 *      one unwinding through C) leaves the resource to its scope or the GC.
 *   3. ops->close(res, how) releases everything the resource holds and must not
 *      raise. how says who calls: SCOPE_BY_GC means a finalizer, which Lua may
 *      run at any allocation, in the middle of another op's request: it must
 *      not do guest or scheduler I/O then (defer it; see lproc.c).
 *   4. A resource that is used after it was closed raises, saying so.
 *
 * The context's life: scope_ctx_new() right after lua_newstate, scope_begin /
 * scope_end around each test, scope_close_state() instead of lua_close.
 */
#ifndef PV_SCOPE_H
#define PV_SCOPE_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>

/* Close order at the end of a scope. */
enum scope_kind { SCOPE_STREAM, SCOPE_PROCESS, SCOPE_FILE, SCOPE_WORKER, SCOPE_BRIDGE, SCOPE_VM, SCOPE_NKINDS };

enum scope_how {
	SCOPE_BY_USER,  /* __close, or the kind's own method (vm:shutdown) */
	SCOPE_BY_SCOPE, /* the end of its test, file or fixture builder */
	SCOPE_BY_GC,    /* __gc: no I/O allowed (see 3. above) */
};

struct scope_res;
struct scope_ops {
	enum scope_kind kind;
	const char *tname; /* the metatable's name, e.g. "provium.vm" */
	void (*close)(struct scope_res *r, enum scope_how how);
	/* optional: called for every open resource of the kind at the end of
	 * each scope, a safe point to do work that a finalizer deferred */
	void (*settle)(struct scope_res *r);
	/* optional: frees what close left for later readers (names, ...); run
	 * by __gc after close */
	void (*release)(struct scope_res *r);
};

struct scope_res {
	const struct scope_ops *ops;
	struct scope_res *prev, *next; /* the context's list, oldest first */
	struct scope_ctx *ctx;
	unsigned scope; /* 0: file or builder; n: the n-th test */
	bool closed;
};

struct scope_ctx {
	struct scope_res head; /* sentinel of the list of open resources */
	unsigned current;      /* the scope new resources join */
	size_t count[SCOPE_NKINDS]; /* resources made so far, per kind (never decreases) */
};

/* Makes L's context (no resources, file scope). Dies on out of memory (it
 * runs before any user code). */
void scope_ctx_new(lua_State *L);
struct scope_ctx *scope_ctx(lua_State *L);

/* Sets the metatable named ops->tname (creating it) with __gc and __close
 * calling ops->close, and __index = the table on top of the stack (popped),
 * or nothing if the top is nil. */
void scope_set_methods(lua_State *L, const struct scope_ops *ops);

/* Registers r (the userdata at the top, with ops' metatable) in the current
 * scope. Cannot fail. */
void scope_add(lua_State *L, struct scope_res *r, const struct scope_ops *ops);
/* Closes r now (how: who asks), once; then it leaves the registry. */
void scope_close(struct scope_res *r, enum scope_how how);
/* The resource at idx if it has ops' metatable, else NULL. */
struct scope_res *scope_test(lua_State *L, int idx, const struct scope_ops *ops);

/* Test scopes: resources made between scope_begin(L, n) and scope_end(L, n)
 * belong to test n (n >= 1); scope_end closes them and returns to file scope. */
void scope_begin(lua_State *L, unsigned n);
void scope_end(lua_State *L, unsigned n);
/* Closes every open resource of L (the file or builder ends). */
void scope_end_all(lua_State *L);
/* scope_end_all, lua_close, then frees the context. */
void scope_close_state(lua_State *L);

/* Calls fn for every open resource of kind, oldest first. */
void scope_each(lua_State *L, enum scope_kind kind, void (*fn)(struct scope_res *r, void *ud), void *ud);

/* Boxes for what a C function holds while it may raise. Each pushes a
 * userdata in a to-be-closed slot (lua_toclose): what it holds is freed as
 * soon as the calling C function returns or raises, or the slot is popped
 * (remove it only with lua_pop / lua_settop, never lua_remove/lua_replace),
 * and by __gc at the latest.
 * scope_strv_box: a vector of n C strings, all NULL at first; the caller
 * stores malloc'd strings in it, and takes one back by storing NULL.
 * scope_fd_box: one fd, -1 at first; the caller stores an fd in it, and
 * takes it back (closing it itself) by storing -1. */
char **scope_strv_box(lua_State *L, size_t n);
int *scope_fd_box(lua_State *L);

#endif

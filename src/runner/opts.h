/* opts.h - values from Lua that the API reads the same way everywhere:
 * durations, sizes, and options tables whose keys are checked. Each raises
 * (luaL_error) with one line naming `what` when the value is wrong; none
 * holds anything, so a raise leaks nothing.
 */
#ifndef PV_OPTS_H
#define PV_OPTS_H

#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

/* A duration (seconds, or "500ms"/"5s"/...) or a size (bytes, or "512M")
 * at idx, in ns / bytes; raises naming `what` otherwise. */
uint64_t opts_duration(lua_State *L, int idx, const char *what);
uint64_t opts_size(lua_State *L, int idx, const char *what);

/* A permission mode at idx: an integer 0..07777, or a string of octal
 * digits ("0644"); raises naming `what` otherwise. */
int64_t opts_mode(lua_State *L, int idx, const char *what);

/* An options table at idx: none or nil gives false; a table whose keys are
 * all among keys (NULL-terminated) gives true; anything else raises, e.g.
 * `vm:run options: unknown key "evn" (did you mean "env"? valid keys: ...)`.
 * what names the table in messages. */
bool opts_check(lua_State *L, int idx, const char *what, const char *const *keys);

/* The keys of the table at idx against keys (NULL-terminated). Closed (open
 * false): any other key raises. Open (test meta, whose keys are free
 * metadata): only a key one letter away from one of keys raises, as it is
 * surely a typo. Of several bad keys the smallest is reported, so that the
 * message does not depend on hash order. Returns 0. */
int opts_check_keys(lua_State *L, int idx, const char *what, const char *const *keys, bool open);

#endif

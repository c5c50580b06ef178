/* repl.h - the interactive Lua prompt of a runner that owns the terminal
 * (provium repl, provium shell --at, t:pause() under --debug).
 *
 * repl_enter takes the terminal's foreground process group for the runner
 * (so a ^C reaches it and not provium or QEMU), reads lines with libedit
 * (history in $XDG_STATE_HOME/provium/repl_history, tab completion of
 * globals, fields and methods), evaluates each in an environment over the
 * globals with the given variables, and pretty-prints what it returns. A ^C
 * interrupts the running line (a blocked VM op or a Lua loop) and returns to
 * the prompt; ^D (or `.continue`) leaves; the terminal goes back to provium.
 */
#ifndef PV_REPL_H
#define PV_REPL_H

#include <lua.h>
#include <stdbool.h>

/* Enables interactive mode for this runner (the start message said so): QEMU
 * gets its own process group so a ^C at the prompt does not end it. */
void repl_enable(void);
bool repl_enabled(void);
/* Runs the prompt until ^D. vars: index of a table of names to define in the
 * prompt's environment (0: none); every live VM of the file is also in `vms`
 * by name (and `vm` if there is only one and vars has none). banner: printed
 * first. Raises only if the terminal cannot be used. */
void repl_enter(lua_State *L, int vars, const char *banner);
/* t:pause() on the test object's metatable (after tassert_install). */
void repl_install(lua_State *L);
/* The text of a value as the prompt shows it (for tests of the printer):
 * pushes a string. */
void repl_show(lua_State *L, int idx);

#endif

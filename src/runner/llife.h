/* llife.h - pause, resume, reset and the power button of a running VM
 * (contract in llife.c). */
#ifndef PV_LLIFE_H
#define PV_LLIFE_H

#include <lua.h>

/* Adds the lifecycle methods to the VM methods at index methods, and
 * provium:pause / provium:resume. */
void llife_install(lua_State *L, int methods);

#endif

/* ljson.h - the `json` global of test files (contract in ljson.c). */
#ifndef PV_LJSON_H
#define PV_LJSON_H

#include <lua.h>

void ljson_install(lua_State *L);

#endif

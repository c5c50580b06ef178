/* lstream.h - streams of the Lua API: output read as it comes (docs/lua-api.md,
 * "Streams"). vm:tail_file, proc:stdout_stream / stderr_stream,
 * file:tail_stream and vm:console():read() make one; every stream has next,
 * read_until, expect, drain, eof, close and creation_site.
 *
 * Two kinds share the class:
 *   - agent streams: the guest agent pushes their bytes (docs/wire.md,
 *     "Streams") on the VM's agent connection, so they are fed whenever that
 *     connection is read: during any op on the VM, or while a stream of it
 *     waits. The push handler (on_push of the connection) files the bytes by
 *     stream id into the stream's buffer;
 *   - the console stream: the VM's console log on the host, followed with
 *     inotify.
 * Each buffer is bounded (16 MiB, or the `buffer` option): a stream whose
 * unread bytes would pass it is marked as fallen behind and closed in the
 * guest; its reads give what it holds, then raise saying so. Nothing is lost
 * silently.
 *
 * A stream is a scope resource (SCOPE_STREAM): closed at its scope's end, by
 * close() or `<close>`, or by the GC (the guest's stream_close is then
 * deferred with lvm_defer). Bytes already buffered stay readable after the VM
 * died or was restored; reading past them raises naming the VM's state.
 */
#ifndef PV_LSTREAM_H
#define PV_LSTREAM_H

#include <lua.h>
#include <msgpack.h>
#include <stdint.h>

struct lvm;

/* Adds vm:tail_file to the VM methods at index methods, and the Stream class. */
void lstream_install(lua_State *L, int methods);

/* Opens an agent stream of the VM at vm_idx (running): pushes the Stream
 * object, then begins a stream_open request with nargs + the caller's
 * fields; the caller packs its nargs fields and calls lstream_open_finish.
 * what names the stream in messages ("stdout of process 42"); opts: stack
 * index of an options table with `buffer`, or 0. */
msgpack_packer *lstream_open_begin(lua_State *L, int vm_idx, const char *what, int opts, unsigned nargs);
/* Sends it; raises on an agent error. The Stream stays on the stack. */
void lstream_open_finish(lua_State *L);

/* Pushes a stream of the host file at path (the console log), from offset;
 * opts as lstream_open_begin's. */
void lstream_push_host_file(lua_State *L, int vm_idx, const char *path, const char *what, uint64_t offset, int opts);

/* Raises naming each stream of v still open (a snapshot would lose them). */
void lstream_refuse_open(lua_State *L, struct lvm *v, const char *op);

#endif

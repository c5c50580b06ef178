#!/usr/bin/python3
"""Decodes a saved Provium event stream with python3-msgpack (independently of
the C decoder) and prints it as a Lua chunk: `return { {ts=, kind=, payload=}, ... }`.
bin values become {bytes = "..."} so tests can tell them from str."""
import struct
import sys

import msgpack


def lua(v):
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return "math.tointeger(%d)" % v if -2**63 <= v < 2**63 else "%d.0" % v
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bytes):
        return "{bytes=%s}" % lua_str(v)
    if isinstance(v, str):
        return lua_str(v.encode())
    if isinstance(v, list):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join("[%s]=%s" % (lua(k), lua(x)) for k, x in v.items()) + "}"
    raise TypeError(type(v))


def lua_str(b):
    return '"' + "".join("\\%03d" % c if c < 32 or c > 126 or c in (34, 92) else chr(c) for c in b) + '"'


data = open(sys.argv[1], "rb").read()
off, out = 0, []
while off < len(data):
    (n,) = struct.unpack(">I", data[off:off + 4])
    body = data[off + 4:off + 4 + n]
    if len(body) != n:
        sys.exit("truncated frame at byte %d" % off)
    obj = msgpack.unpackb(body, raw=False)
    if list(obj) != ["ts", "kind", "payload"]:
        sys.exit("frame at byte %d has keys %s" % (off, list(obj)))
    # nil payload values vanish in a Lua table; keep the key visible
    out.append("{ts=%s, kind=%s, payload=%s, nils=%s}" % (
        lua(obj["ts"]), lua(obj["kind"]), lua(obj["payload"]),
        lua([k for k, v in obj["payload"].items() if v is None])))
    off += 4 + n
print("return {\n" + ",\n".join(out) + "\n}")

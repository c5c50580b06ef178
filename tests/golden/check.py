#!/usr/bin/python3
"""Checks the golden frames against an independent msgpack implementation.

For every kind, the event is written here from the reference
(spec/events-reference.txt) as a Python dict, packed with Debian's
python3-msgpack, and compared byte for byte with the frame the C encoder
wrote. Then every frame (golden and the shipped sample stream) is decoded by
python3-msgpack and re-packed: the bytes must be identical, str and bin must
stay distinct, and the shape (ts/kind/payload, field names) must be exact.
"""
import struct
import sys

import msgpack

MB = 1024 * 1024
TS = 1764115200123456789
META_ALL = {
    "spec": "net/dhcp",
    "big": 2**63 - 1,
    "bytes": b"ok\x00\xff",
    "utf8bytes": b"abc",
    "flag": True,
    "ratio": 0.25,
    "list": ["net", -7, None],
    "map": {"depth": 2},
    "none": None,
    "neg": -(2**63),
}
META_ALL = dict(sorted(META_ALL.items(), key=lambda kv: kv[0].encode()))


def res(mem, cpus):
    return {"memory_bytes": mem, "cpus": cpus}


EXPECTED = {
    "file_discovered": {"path": "net/dhcp.test.lua", "fixture_refs": ["base/debian", "net/réseau"],
                        "declared_claim": res(512 * MB, 2)},
    "file_dispatched": {"path": "a.test.lua", "reservation": res(50 * MB, 0)},
    "file_blocked": {"path": "a.test.lua", "waiting_for": res(4096 * MB, 4), "reason": "pool_full"},
    "file_completed": {"path": "a.test.lua", "status": "timed_out", "duration_ns": 300000000000},
    "test_started": {"path": "a.test.lua", "name": "boots", "meta": META_ALL},
    "test_skipped": {"path": "a.test.lua", "name": "slow one", "reason": "slow", "meta": {"spec": "boot"}},
    "test_passed": {"path": "a.test.lua", "name": "boots", "duration_ns": 1234, "meta": META_ALL},
    "test_failed": {"path": "a.test.lua", "name": "boots", "duration_ns": 2**64 - 1,
                    "reason": "a.test.lua:3: boom", "console_excerpt": "", "meta": {}},
    "vm_spawned": {"file": "a.test.lua", "vm_name": "web", "profile": "linux",
                   "memory_bytes": 256 * MB, "cid": 2**32 - 1},
    "vm_shutdown": {"file": "a.test.lua", "vm_name": "web", "duration_ns": 0},
    "pool_state": {"used": res(300 * MB, 1), "available": res(19000 * MB, 1)},
    "claim_acquired": {"path": "a.test.lua", "amount": res(1024 * MB, 2)},
    "claim_released": {"path": "a.test.lua", "amount": res(1024 * MB, 2)},
    "fixture_build_started": {"path": "base/debian"},
    "fixture_build_done": {"path": "base/debian", "duration_ns": 2500000000, "snapshot_bytes": 14680064},
    "fixture_build_waiting": {"path": "base/debian", "held_by_file": "b.test.lua"},
    "fixture_cache_hit": {"path": "base/debian"},
}

FIELDS = {k: list(v.keys()) for k, v in EXPECTED.items()}
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def frames(data):
    off = 0
    while off < len(data):
        (n,) = struct.unpack(">I", data[off:off + 4])
        yield off, data[off + 4:off + 4 + n]
        off += 4 + n
    if off != len(data):
        fail("stream does not end at a frame boundary")


def check_roundtrip(where, body):
    obj = msgpack.unpackb(body, raw=False, strict_map_key=True)
    if list(obj.keys()) != ["ts", "kind", "payload"]:
        fail(f"{where}: top-level keys {list(obj.keys())}")
        return obj
    if obj["kind"] not in FIELDS:
        fail(f"{where}: unknown kind {obj['kind']}")
    elif list(obj["payload"].keys()) != FIELDS[obj["kind"]]:
        fail(f"{where}: payload fields {list(obj['payload'].keys())} != {FIELDS[obj['kind']]}")
    again = msgpack.packb(obj, use_bin_type=True)
    if again != body:
        fail(f"{where}: python re-encoding differs from the C encoding")
    return obj


def main():
    frames_dir, sample = sys.argv[1], sys.argv[2]
    checked = 0
    for kind, payload in EXPECTED.items():
        with open(f"{frames_dir}/{kind}.bin", "rb") as f:
            data = f.read()
        want = msgpack.packb({"ts": TS, "kind": kind, "payload": payload}, use_bin_type=True)
        want = struct.pack(">I", len(want)) + want
        if data != want:
            fail(f"{kind}: C encoding differs from python3-msgpack's\n  C:  {data.hex()}\n  py: {want.hex()}")
        obj = check_roundtrip(kind, data[4:])
        if kind in ("test_started", "test_passed"):
            m = obj["payload"]["meta"]
            if not isinstance(m["utf8bytes"], bytes) or not isinstance(m["spec"], str):
                fail(f"{kind}: bin/str distinction lost")
        checked += 1
    with open(sample, "rb") as f:
        data = f.read()
    kinds = set()
    for off, body in frames(data):
        kinds.add(check_roundtrip(f"sample frame at byte {off}", body)["kind"])
        checked += 1
    if kinds != set(FIELDS):
        fail(f"sample stream lacks kinds {sorted(set(FIELDS) - kinds)}")
    print(f"{checked} frames checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

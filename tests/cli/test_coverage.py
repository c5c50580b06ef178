#!/usr/bin/python3
"""provium-coverage, driven as a user drives it. Usage: test_coverage.py COVERAGE SAMPLE EMIT_SOCKET"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

COV, SAMPLE, EMIT = sys.argv[1:4]
failures = 0
passed = 0


def run(*args, stdin=None, timeout=20):
    return subprocess.run([COV, *args], input=stdin, capture_output=True, timeout=timeout)


def check(name, cond, detail=""):
    global failures, passed
    if cond:
        passed += 1
    else:
        failures += 1
        print(f"FAIL: {name} {detail}")


def json_lines(b):
    try:
        return [json.loads(l) for l in b.decode().splitlines()]
    except ValueError:
        return None


def frame_offsets(data):
    offs, off = [], 0
    while off < len(data):
        offs.append(off)
        off += 4 + struct.unpack(">I", data[off:off + 4])[0]
    return offs


data = open(SAMPLE, "rb").read()
tmp = tempfile.mkdtemp(prefix="pvcov.")

r = run("--from", SAMPLE)
out = r.stdout.decode()
check("text exit 0", r.returncode == 0, r.stderr)
lines = out.splitlines()
check("header", lines[0].split() == ["spec", "passed", "failed", "skipped", "total"], lines[0])
check("totals", lines[-1].split() == ["total", "4", "2", "2", "8"], lines[-1])
check("array buckets", any(l.split() == ["net/lease", "0", "1", "1", "2"] for l in lines), out)
check("unset bucket", any(l.split() == ["<unset>", "1", "1", "1", "3"] for l in lines), out)
keys = [l.split()[0] for l in lines[1:-1]]
check("buckets sorted", keys == sorted(keys), keys)

r = run("--from", SAMPLE, "-v")
check("-v lists tests", b"failed  net/dhcp.test.lua :: lease renews before expiry" in r.stdout, r.stdout)

r = run("--from", SAMPLE, "--json", "--by", "tags")
j = json.loads(r.stdout)
check("json totals", j["totals"] == {"passed": 4, "failed": 2, "skipped": 2, "total": 8}, j["totals"])
check("json by", j["by"] == "tags" and j["error"] is None)
check("json tag buckets", [b["key"] for b in j["buckets"]] == ["<unset>", "dhcp", "net"], j["buckets"])

r = run("--from", SAMPLE, "--from", SAMPLE, "--json")
j = json.loads(r.stdout)
check("shards merge", j["totals"]["total"] == 16 and j["events"] == 2 * len(frame_offsets(data)), j["totals"])

r = run("--from", "-", "--json", stdin=data)
check("stdin", r.returncode == 0 and json.loads(r.stdout)["totals"]["total"] == 8, r.stderr)

# Truncated inside the body of a test_passed frame: report what was read, warn with the offset, exit 1.
offs = frame_offsets(data)
cut = offs[20] + 10
r = run("--from", "-", "--json", stdin=data[:cut])
check("truncated exit 1", r.returncode == 1, r.returncode)
err = r.stderr.decode()
check("truncated names offset", f"at byte {offs[20]}:" in err and "inside a frame body" in err, err)
check("truncated is a warning", err.startswith("provium-coverage: warning: -: "), err)
check("truncated one line", err.count("\n") == 1, err)
j = json.loads(r.stdout)
check("partial report kept", j["error"] is not None and j["events"] == 20 and j.get("complete") is False, j)

# Truncated inside a header.
r = run("--from", "-", stdin=data[:offs[3] + 2])
check("header truncation", r.returncode == 1 and b"inside a frame header (2 of 4 bytes)" in r.stderr, r.stderr)

# Whole frames, but the run stops before its files complete: what was read, a warning, exit 1.
r = run("--from", "-", "--json", stdin=data[:offs[20]])
err = r.stderr.decode()
check("unfinished run exit 1", r.returncode == 1, r.returncode)
check("unfinished run warning", err.startswith("provium-coverage: warning: run 1: 3 of 3 files never completed")
      and "net/dhcp.test.lua" in err and err.count("\n") == 1, err)
j = json.loads(r.stdout)
check("unfinished run report", j.get("complete") is False and j["error"] is None and j["events"] == 20, j)

# A stream that starts in the middle of a run (no file_discovered): a warning, exit 1.
r = run("--from", "-", stdin=data[offs[3]:])
err = r.stderr.decode()
check("mid-run start", r.returncode == 1 and "run 1 has no file_discovered" in err and err.count("\n") == 1, err)

# Two runs in one stream (a run starts at a file_discovered after other kinds):
# one report per run, the later ones titled.
r = run("--from", "-", stdin=data + data)
out = r.stdout.decode()
check("two runs exit 0", r.returncode == 0, r.stderr)
reports = out.split("\n\nrun 2:\n")
check("two runs: two reports", len(reports) == 2 and "run 1" not in out, out)
check("two runs: each its own", all(rep.splitlines()[-1].split() == ["total", "4", "2", "2", "8"] for rep in reports), out)
r = run("--from", "-", "--json", stdin=data + data)
js = json_lines(r.stdout) or []
check("two runs json: one line each", [(x.get("run"), x.get("complete"), x["totals"]["total"], x["events"]) for x in js]
      == [(1, True, 8, len(offs)), (2, True, 8, len(offs))], js)
# the second of three runs cut short: its warning, the others fine
r = run("--from", "-", "--json", stdin=data + data[:offs[25]] + data)
js = json_lines(r.stdout) or []
err = r.stderr.decode()
check("three runs, second unfinished", r.returncode == 1 and [x.get("complete") for x in js] == [True, False, True]
      and err.startswith("provium-coverage: warning: run 2: 2 of 3 files never completed") and err.count("\n") == 1, (js, err))

# A well-framed but invalid event: unknown kind, with the byte offset of the bad value.
bad = bytearray(data[:offs[5]])
body = bytes.fromhex("83a2747301a46b696e64ad746573745f6578706c6f646564a77061796c6f616480")
bad += struct.pack(">I", len(body)) + body
r = run("--from", "-", stdin=bytes(bad))
err = r.stderr.decode()
kind_off = offs[5] + 4 + body.index(b"\xad")
check("unknown kind", r.returncode == 2 and 'unknown event kind "test_exploded"' in err and f"at byte {kind_off}:" in err, err)

# Oversize frame header: refused at once, no allocation of 2 GiB.
r = run("--from", "-", stdin=b"\x7f\xff\xff\xff" + b"x" * 10)
check("oversize", r.returncode == 2 and b"over the 134217728-byte limit" in r.stderr, r.stderr)

# Empty input has no run to report: an error, exit 2, no report.
empty = os.path.join(tmp, "empty.events")
open(empty, "wb").close()
for args, stdin in [(("--from", "-"), b""), (("--from", empty), None), (("--from", SAMPLE, "--from", empty), None)]:
    r = run(*args, stdin=stdin)
    e = r.stderr.decode()
    check(f"empty {args}", r.returncode == 2 and "the stream is empty" in e and e.count("\n") == 1, e)
r = run("--from", "-", stdin=b"")
check("empty: no report", r.stdout == b"", r.stdout)

# Usage errors: one clear line, exit 2.
for args, needle in [((), "no input"), (("--frm", SAMPLE), "unknown option --frm"),
                     (("--from",), "--from needs a value"), (("--from", "/nonexistent/x"), "cannot open"),
                     (("--from", SAMPLE, "extra"), "unexpected argument"),
                     (("--from-socket", os.path.join(tmp, "none.sock")), "cannot connect")]:
    r = run(*args)
    e = r.stderr.decode()
    check(f"usage {args}", r.returncode == 2 and needle in e and e.count("\n") == 1, e)

# Live from a socket.
sock = os.path.join(tmp, "ev.sock")
p = subprocess.Popen([EMIT, sock, SAMPLE])
for _ in range(500):
    if os.path.exists(sock):
        break
    time.sleep(0.01)
r = run("--from-socket", sock, "--json")
p.wait(timeout=20)
check("socket", r.returncode == 0 and json.loads(r.stdout)["totals"]["total"] == 8, r.stderr)
check("socket unlinked", not os.path.exists(sock))

# Live, two runs back to back (provium --watch): one report per run.
twice = os.path.join(tmp, "twice.events")
with open(twice, "wb") as f:
    f.write(data + data)
p = subprocess.Popen([EMIT, sock, twice])
for _ in range(500):
    if os.path.exists(sock):
        break
    time.sleep(0.01)
r = run("--from-socket", sock, "--json")
p.wait(timeout=20)
js = json_lines(r.stdout) or []
check("socket, two runs", r.returncode == 0 and [(x.get("run"), x["totals"]["total"]) for x in js] == [(1, 8), (2, 8)],
      (r.stdout, r.stderr))

import shutil
shutil.rmtree(tmp, ignore_errors=True)
print(f"coverage-cli: {passed} passed, {failures} failed")
sys.exit(1 if failures else 0)

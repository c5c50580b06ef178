#!/usr/bin/env bash
# Disk benchmark: guest I/O on a faultable disk (through provium's disk
# server: nbdkit + provium-nbd.so, no fault active) against a plain disk (a
# raw file QEMU opens itself), both 256 MiB, on one VM of the built-in linux
# profile (256 MiB, 1 cpu) in the same run. Workloads, busybox dd in the
# guest, O_DIRECT so the guest's page cache is out of the way:
#   seq-write  32 MiB in 1 MiB requests, then fsync
#   seq-read   32 MiB in 1 MiB requests
#   4k-write   8 MiB in 4 KiB requests, then fsync
#   4k-read    8 MiB in 4 KiB requests
#   rand-read  64 single 4 KiB reads at random offsets (one dd each: the
#   rand-write guest's process start is in the figure on both sides alike)
# Each round runs every workload on both disks, the order flipping every
# round; medians of the tests' own durations (test_passed events) give the
# throughput ratio faultable / plain (target >= 0.8x). Misses are reported,
# not failed; exit 1 means something did not run.
# Then fixture resume: a fixture whose VM has a 256 MiB disk holding 64 MiB
# of data, resumed to its first op (run "true"), against the same fixture
# without the disk, in rounds of alternating order (the ratio is reported;
# the issue sets no target).
# Usage: bench/disk_bench.sh [--quick]   (quick: 3 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh && bench_init disk_bench 3 "$@"
tmp=$(mktemp -d /tmp/pvdiskbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

{
  cat <<'EOF'
provium.timeout = "30m"
local vm = provium:vm("bench", "linux", { disks = {
  { id = "plain", size = "256M", faults = false },
  { id = "faultable", size = "256M" },
} })
vm:boot()
-- the same random offsets (4 KiB blocks) on both sides
local offs = {}
math.randomseed(42)
for i = 1, 64 do offs[i] = math.random(0, 65535) end
offs = table.concat(offs, " ")
local W = {
  ["seq-write"] = "dd if=/dev/zero of=DEV bs=1M count=32 oflag=direct conv=fsync",
  ["seq-read"] = "dd if=DEV of=/dev/null bs=1M count=32 iflag=direct",
  ["4k-write"] = "dd if=/dev/zero of=DEV bs=4k count=2048 oflag=direct conv=fsync",
  ["4k-read"] = "dd if=DEV of=/dev/null bs=4k count=2048 iflag=direct",
  ["rand-read"] = "for o in " .. offs .. "; do dd if=DEV of=/dev/null bs=4k count=1 skip=$o iflag=direct || exit 1; done",
  ["rand-write"] = "for o in " .. offs .. "; do dd if=/dev/zero of=DEV bs=4k count=1 seek=$o oflag=direct conv=fsync || exit 1; done",
}
local function run(w, id)
  vm:run((W[w]:gsub("DEV", vm:disk(id):device())) .. " 2>/dev/null"):assert_ok()
end
-- first touch of each disk, untimed
test("warm", function() for _, id in ipairs({ "plain", "faultable" }) do run("seq-write", id) end end)
EOF
  for i in $(seq "$rounds"); do
    for w in seq-write seq-read 4k-write 4k-read rand-read rand-write; do
      if [ $((i % 2)) -eq 1 ]; then order="plain faultable"; else order="faultable plain"; fi
      for id in $order; do echo "test(\"$w $id $i\", function() run(\"$w\", \"$id\") end)"; done
    done
  done
} > "$tmp/disk.test.lua"

echo "disk benchmark: built-in linux VM (256 MiB, 1 cpu), 256 MiB disks, $rounds rounds"
if ! (cd "$tmp" && "$provium" --psi-threshold 0 --timeout 1800s --json "$tmp/disk.test.lua" \
      > "$tmp/out.jsonl" 2> "$tmp/err.txt"); then
  echo "disk_bench: provium failed:" >&2
  cat "$tmp/err.txt" >&2
  grep -E '"test_failed"|"file_failed"' "$tmp/out.jsonl" >&2 || true
  exit 1
fi

mkdir -p "$tmp/fx" "$tmp/cache"
cat > "$tmp/fx/withdisk.fixture.lua" <<'EOF'
local v = provium:vm("v", "linux", { disks = { { id = "data", size = "256M" } } })
v:boot()
v:run("dd if=/dev/urandom of=" .. v:disk("data"):device() .. " bs=1M count=64 conv=fsync 2>/dev/null"):assert_ok()
return v:snapshot()
EOF
cat > "$tmp/fx/nodisk.fixture.lua" <<'EOF'
local v = provium:vm("v", "linux")
v:boot()
return v:snapshot()
EOF
{
  echo 'provium.timeout = "30m"'
  echo 'test("build", function() provium.vm_fixture("withdisk"):shutdown(); provium.vm_fixture("nodisk"):shutdown() end)'
  for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then order="withdisk nodisk"; else order="nodisk withdisk"; fi
    for f in $order; do
      echo "test(\"resume $f $i\", function() local v = provium.vm_fixture(\"$f\"); v:run(\"true\"):assert_ok(); v:shutdown() end)"
    done
  done
} > "$tmp/fx/resume.test.lua"
if ! (cd "$tmp" && "$provium" --psi-threshold 0 --timeout 1800s --cache-dir "$tmp/cache" --json "$tmp/fx" \
      > "$tmp/fx.jsonl" 2> "$tmp/fxerr.txt"); then
  echo "disk_bench: provium failed (fixtures):" >&2
  cat "$tmp/fxerr.txt" >&2
  grep -E '"test_failed"|"file_failed"' "$tmp/fx.jsonl" >&2 || true
  exit 1
fi

"$py" - "$tmp/out.jsonl" "$tmp/fx.jsonl" "$rounds" <<'PY'
import json, statistics, sys
path, fxpath, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = {}
for line in open(path):
    e = json.loads(line) if line.strip() else {}
    p = e.get("payload", {})
    if e.get("kind") == "test_passed" and p.get("name", "").count(" ") == 2:
        w, disk, _ = p["name"].split(" ")
        d.setdefault((w, disk), []).append(p["duration_ns"] / 1e6)
size = {"seq-write": 32, "seq-read": 32, "4k-write": 8, "4k-read": 8, "rand-read": 0.25, "rand-write": 0.25}
worst = None
for w in ["seq-write", "seq-read", "4k-write", "4k-read", "rand-read", "rand-write"]:
    if len(d.get((w, "plain"), [])) != rounds or len(d.get((w, "faultable"), [])) != rounds:
        print("disk_bench: no timings for " + w, file=sys.stderr)
        sys.exit(1)
    p, f = statistics.median(d[(w, "plain")]), statistics.median(d[(w, "faultable")])
    r = p / f
    worst = r if worst is None else min(worst, r)
    print("%-11s faultable %8.1f ms (%7.1f MiB/s) vs plain %8.1f ms (%7.1f MiB/s)  %5.2fx  (target >= 0.8x: %s)"
          % (w, f, size[w] * 1e3 / f, p, size[w] * 1e3 / p, r, "met" if r >= 0.8 else "MISSED"))
print("worst ratio %.2fx" % worst)
fx = {}
for line in open(fxpath):
    e = json.loads(line) if line.strip() else {}
    p = e.get("payload", {})
    if e.get("kind") == "test_passed" and p.get("name", "").startswith("resume "):
        fx.setdefault(p["name"].split(" ")[1], []).append(p["duration_ns"] / 1e6)
if len(fx.get("withdisk", [])) != rounds or len(fx.get("nodisk", [])) != rounds:
    print("disk_bench: no fixture resume timings", file=sys.stderr)
    sys.exit(1)
w, n = statistics.median(fx["withdisk"]), statistics.median(fx["nodisk"])
print("fixture resume to first op: 256 MiB disk with 64 MiB of data %.1f ms vs no disk %.1f ms  %.2fx" % (w, n, w / n))
PY

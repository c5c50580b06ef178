#!/usr/bin/env bash
# Fixture benchmark: resuming a cached fixture (provium.vm_fixture) to its
# first op, against baselines measured in the same run:
#   - a cold boot of the same VM to its first op (provium:vm + boot + run);
#   - raw QEMU restoring the uncompressed snapshot (the cached vm0.zst run
#     through zstd -d) to the first answered agent op: vm_bench --raw-restore
#     (see bench/vm_bench.c), which also times provium's restore path alone
#     (vm_boot from vm0.zst, no runner) to show where resume time goes;
#   - the cached snapshot's size against the guest's RAM.
# The VM is the built-in 'linux' profile (256 MiB, 1 cpu), idle after boot;
# the first op is run("true") (an agent exec) on every side.
#
# Run 1 builds the fixture. Then each round is one provium run of the tests
# tagged for it ("resume i" from the cache, then "cold i") and one vm_bench
# round (raw restore + provium's restore path), the order flipping every
# round, so host noise hits every side alike.
# Prints medians and ratios (targets: resume <= 0.15x cold boot, <= 1.20x raw
# restore; snapshot <= 15% of RAM). Misses are reported, not failed; exit 1
# means something did not run.
# Usage: bench/fixture_bench.sh [--quick]   (quick: 3 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium), VM_BENCH_BIN (default
# build/bench/vm_bench). Needs the built-in image (scripts/build-image), zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh && bench_init fixture_bench 3 "$@"
vm_bench=$(realpath "${VM_BENCH_BIN:-build/bench/vm_bench}")
for x in "$provium" "$vm_bench" "$py"; do
  [ -x "$x" ] || { echo "fixture_bench: $x is missing (ninja -C build?)" >&2; exit 1; }
done
command -v zstd >/dev/null || { echo "fixture_bench: zstd not found (apt-get install zstd)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/pvfxbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root cache=$tmp/cache
mkdir -p "$root" "$cache"

cat > "$root/idle.fixture.lua" <<'EOF'
local v = provium:vm("idle", "linux")
v:boot()
return v:snapshot()
EOF
# run 1 builds the fixture (and resumes it once, which proves the entry)
cat > "$root/build.test.lua" <<'EOF'
test("build", function()
  provium.vm_fixture("idle", { name = "warm" }):run("true"):assert_ok()
end)
EOF
{
  for i in $(seq "$rounds"); do
    cat <<EOF
test("resume $i", { tags = "round$i" }, function()
  local v = provium.vm_fixture("idle", { name = "r$i" })
  v:run("true"):assert_ok()
end)
test("cold $i", { tags = "round$i" }, function()
  local v = provium:vm("c$i", "linux", { boot = "cold" })
  v:boot()
  v:run("true"):assert_ok()
end)
EOF
  done
} > "$root/measure.test.lua"

# provium runs from $tmp so that no provium.lua of the cwd applies
run_provium() { # OUT ARGS...
  local out=$1
  shift
  if ! (cd "$tmp" && "$provium" --cache-dir "$cache" --psi-threshold 0 --json "$@" "$root" \
        > "$out" 2> "$out.err"); then
    echo "fixture_bench: provium $* failed:" >&2
    cat "$out.err" >&2
    grep -E '"test_failed"|"file_failed"' "$out" >&2 || true
    exit 1
  fi
}

echo "fixture benchmark: built-in linux VM (256 MiB, 1 cpu), $rounds rounds"
run_provium "$tmp/build.jsonl" --filter build
entries=("$cache"/*/manifest.json)
[ "${#entries[@]}" -eq 1 ] && [ -f "${entries[0]}" ] ||
  { echo "fixture_bench: expected one cache entry in $cache, found: ${entries[*]}" >&2; exit 1; }
entry=$(dirname "${entries[0]}")
zstd -d -q "$entry/vm0.zst" -o "$tmp/vm0.mig"

run_raw() { # I
  local first=()
  [ $(($1 % 2)) -eq 0 ] && first=(--provium-first)
  if ! "$vm_bench" --raw-restore "$tmp/vm0.mig" --provium-zst "$entry/vm0.zst" "${first[@]}" --rounds 1 \
       > "$tmp/raw$1.txt"; then
    echo "fixture_bench: vm_bench --raw-restore failed" >&2
    cat "$tmp/raw$1.txt" >&2
    exit 1
  fi
}
for i in $(seq "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then
    run_provium "$tmp/measure$i.jsonl" --filter measure --tag "round$i"
    run_raw "$i"
  else
    run_raw "$i"
    run_provium "$tmp/measure$i.jsonl" --filter measure --tag "round$i"
  fi
done

"$py" - "$tmp" "$rounds" "$entry" <<'EOF'
import json, os, re, statistics, sys

tmp, rounds, entry = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def events(name):
    out = []
    with open(os.path.join(tmp, name)) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out

def fail(msg):
    print("fixture_bench: " + msg, file=sys.stderr)
    sys.exit(1)

def median(v):
    return statistics.median_low(v)

def numbers(name, prefix):
    lines = [l for l in open(os.path.join(tmp, name)) if l.startswith(prefix)]
    if not lines:
        fail("vm_bench printed no %s line in %s" % (prefix, name))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[0])}

build = events("build.jsonl")
done = [e for e in build if e.get("kind") == "fixture_build_done"]
if len(done) != 1 or not done[0]["payload"]["snapshot_bytes"]:
    fail("run 1 did not build the fixture exactly once")
snap_bytes = done[0]["payload"]["snapshot_bytes"]
manifest = json.load(open(os.path.join(entry, "manifest.json")))
ram = manifest["vms"][0]["memory"]
if os.path.getsize(os.path.join(entry, "vm0.zst")) != snap_bytes:
    fail("the cached vm0.zst is not the size fixture_build_done reported")

resume, cold, ready, raw, raw_loaded, raw_hello, pv, pv_hello = ([] for _ in range(8))
for i in range(1, rounds + 1):
    meas = events("measure%d.jsonl" % i)
    if any(e.get("kind") in ("fixture_build_started", "fixture_build_done") for e in meas):
        fail("round %d built the fixture again: its resume was not served from the cache" % i)
    if sum(1 for e in meas if e.get("kind") == "fixture_cache_hit") != 1:
        fail("round %d: expected one fixture cache hit" % i)
    summary = [e["summary"] for e in meas if "summary" in e]
    if not summary or summary[0]["failed"] or summary[0]["passed"] != 2:
        fail("round %d did not pass its 2 tests: %s" % (i, summary))
    started = None
    for e in meas:
        k, p = e.get("kind"), e.get("payload", {})
        if k == "test_started":
            started = e["ts"]
        elif k == "vm_spawned" and p.get("vm_name") == "r%d" % i:
            ready.append(e["ts"] - started)  # test start -> resumed VM's hello
        elif k == "test_passed" and p["name"] == "resume %d" % i:
            resume.append(p["duration_ns"])
        elif k == "test_passed" and p["name"] == "cold %d" % i:
            cold.append(p["duration_ns"])
    r = numbers("raw%d.txt" % i, "raw_restore_median_ns=")
    raw.append(r["raw_restore_median_ns"])
    raw_loaded.append(r["loaded_median_ns"])
    raw_hello.append(r["hello_median_ns"])
    q = numbers("raw%d.txt" % i, "pv_restore_median_ns=")
    pv.append(q["pv_restore_median_ns"])
    pv_hello.append(q["pv_hello_median_ns"])
if len(resume) != rounds or len(cold) != rounds or len(ready) != rounds:
    fail("missing test_passed or vm_spawned events")

s = lambda ns: ns / 1e9
row = lambda v: "  ".join("%.3f" % s(x) for x in v)
mr, mc, mraw = median(resume), median(cold), median(raw)
mig = os.path.getsize(os.path.join(tmp, "vm0.mig"))
verdict = lambda ok: "OK" if ok else "ABOVE TARGET"

lbl = lambda name, v: print("  %-38s %s" % (name, row(v)))
print("per round (s); the first op is run(\"true\") (an agent exec) everywhere:")
lbl("fixture resume -> first op", resume)
lbl("  of which vm_fixture() returned", ready)
lbl("cold boot -> first op", cold)
lbl("raw QEMU restore -> first op", raw)
lbl("  of which stream loaded", raw_loaded)
lbl("  of which agent hello", raw_hello)
lbl("provium vm_boot(vm0.zst) -> first op", pv)
lbl("  of which agent hello", pv_hello)
print("medians: resume %.3f s (vm_fixture() %.3f s); provium vm_boot alone %.3f s (hello %.3f s); "
      "raw %.3f s (hello %.3f s); raw stream %.1f MiB" %
      (s(mr), s(median(ready)), s(median(pv)), s(median(pv_hello)), s(mraw), s(median(raw_hello)), mig / 1048576))
r1, r2, pct = mr / mc, mr / mraw, 100.0 * snap_bytes / ram
print("fixture resume -> first op: %.3f s   cold boot: %.3f s   ratio %.2fx (target <= 0.15x) %s" %
      (s(mr), s(mc), r1, verdict(r1 <= 0.15)))
print("fixture resume vs raw QEMU restore of the uncompressed snapshot: %.3f s vs %.3f s   ratio %.2fx (target <= 1.20x) %s" %
      (s(mr), s(mraw), r2, verdict(r2 <= 1.20)))
print("cached snapshot of an idle %d MiB guest: %.1f MiB = %.1f%% of RAM (target <= 15%%) %s" %
      (ram >> 20, snap_bytes / 1048576, pct, verdict(pct <= 15.0)))
EOF

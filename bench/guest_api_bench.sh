#!/usr/bin/env bash
# Guest API benchmark (issue 12's calls), each against a baseline measured in
# the same provium run on the same VM (built-in 'linux' profile, 512 MiB,
# 1 cpu, TCG here):
#   - vm:batch of 100 small ops (stat) against the same 100 as single calls
#     (target: batch >= 5x faster);
#   - a stream's latency: a line written to `cat`'s stdin (p:stdin_write, one
#     op) until stdout_stream():expect returns it, against one op round trip
#     (vm:stat); the line's push latency is the difference;
#   - File:read_all (open_file) against vm:read_file of the same 64 MiB file.
# Every measurement is one test, timed by its test_passed duration_ns in the
# --json stream; each round runs every test, the order flipping every round,
# so host noise hits both sides alike. Prints medians and ratios; a missed
# target is reported, not failed; exit 1 means something did not run.
# Usage: bench/guest_api_bench.sh [--quick]   (quick: 2 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium). Needs the built-in image.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh && bench_init guest_api_bench 2 "$@"

tmp=$(mktemp -d /tmp/pvgabench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
{
  cat <<'EOF'
local vm = provium:vm("bench", "linux", { memory = "512M" })
vm:boot()
vm:run("head -c 67108864 /dev/urandom > /tmp/big"):assert_ok()
local cat = vm:run_async("cat")
local out = cat:stdout_stream()
local N, LINES = 100, 50
local M = {}
function M.single() for _ = 1, N do vm:stat("/") end end
function M.batch()
  local r = vm:batch(function(b) for _ = 1, N do b:stat("/") end end)
  assert(#r == N)
end
function M.op() for _ = 1, LINES do vm:stat("/") end end
function M.stream()
  for i = 1, LINES do
    cat:stdin_write("line " .. i .. "\n")
    out:expect("line " .. i .. "\n", "10s")
  end
end
function M.read_file() assert(#vm:read_file("/tmp/big") == 67108864) end
function M.open_file()
  local f = vm:open_file("/tmp/big")
  assert(#f:read_all() == 67108864)
  f:close()
end
test("warm", function() M.single(); M.batch(); M.stream(); M.read_file(); M.open_file() end)
EOF
  for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then order="single batch op stream read_file open_file"
    else order="batch single stream op open_file read_file"; fi
    for m in $order; do echo "test(\"$m $i\", function() M.$m() end)"; done
  done
} > "$tmp/guest_api.test.lua"

echo "guest API benchmark: built-in linux VM (512 MiB, 1 cpu), $rounds rounds"
if ! (cd "$tmp" && "$provium" --psi-threshold 0 --timeout 900s --json "$tmp/guest_api.test.lua" \
      > "$tmp/out.jsonl" 2> "$tmp/err.txt"); then
  echo "guest_api_bench: provium failed:" >&2
  cat "$tmp/err.txt" >&2
  grep -E '"test_failed"|"file_failed"' "$tmp/out.jsonl" >&2 || true
  exit 1
fi

"$py" - "$tmp/out.jsonl" "$rounds" <<'PY'
import json, statistics, sys
path, rounds = sys.argv[1], int(sys.argv[2])
d = {}
for line in open(path):
    e = json.loads(line) if line.strip() else {}
    p = e.get("payload", {})
    if e.get("kind") == "test_passed" and " " in p.get("name", ""):
        m, _ = p["name"].rsplit(" ", 1)
        d.setdefault(m, []).append(p["duration_ns"] / 1e6)
need = ["single", "batch", "op", "stream", "read_file", "open_file"]
missing = [m for m in need if len(d.get(m, [])) != rounds]
if missing:
    print("guest_api_bench: no timings for " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
med = {m: statistics.median(d[m]) for m in need}
r = med["single"] / med["batch"]
print("%-42s %9.1f ms vs %9.1f ms  %6.2fx faster  (target >= 5.0x: %s)"
      % ("vm:batch of 100 stat vs 100 single calls", med["batch"], med["single"], r, "met" if r >= 5 else "MISSED"))
per_op, per_line = med["op"] / 50, med["stream"] / 50
print("%-42s %9.2f ms vs %9.2f ms  %6.2fx an op round trip (push latency ~%.2f ms)"
      % ("stream line (stdin_write+expect) vs an op", per_line, per_op, per_line / per_op, max(per_line - per_op, 0)))
print("%-42s %9.1f ms vs %9.1f ms  %6.2fx read_file's throughput (%.0f vs %.0f MiB/s)"
      % ("open_file read_all vs read_file, 64 MiB", med["open_file"], med["read_file"],
         med["read_file"] / med["open_file"], 64e3 / med["open_file"], 64e3 / med["read_file"]))
PY

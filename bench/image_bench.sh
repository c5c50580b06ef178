#!/usr/bin/env bash
# Guest images benchmark (issue 14, what exists so far), in one run:
#   - boot to the first op (run "true") of the `host` profile (the host's /
#     over virtio-fs under an overlay) against the built-in `linux` profile,
#     each booted and shut down in its own test, alternating;
#   - reading a 64 MiB host file in the guest through a share (cat to
#     /dev/null, the guest's caches dropped first) against vm:read_file of
#     the same bytes copied into the guest's tmpfs (the agent's framed
#     transfer to the host).
# Medians of the tests' own durations (test_passed events) and ratios. No
# targets yet (Debian images are still to come). Exit 1: something did not run.
# Usage: bench/image_bench.sh [--quick]   (quick: 3 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5
case "${1:-}" in
  --quick) rounds=3 ;;
  "") ;;
  *) echo "usage: bench/image_bench.sh [--quick]" >&2; exit 2 ;;
esac
provium=$(realpath "${PROVIUM_BIN:-build/provium}")
py=/usr/bin/python3
for x in "$provium" "$py"; do
  [ -x "$x" ] || { echo "image_bench: $x is missing (ninja -C build?)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/pvimgbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
head -c $((64 << 20)) /dev/urandom > "$tmp/data/big"

{
  cat <<'EOF'
provium.timeout = "30m"
local function boot(profile)
  local v = provium:vm("b", profile)
  v:boot()
  v:run("true"):assert_ok()
  v:shutdown()
end
local r = provium:vm("r", "linux", { memory = "512M", share = { { host = "data", guest = "/data", readonly = true } } })
r:boot()
r:run("cp /data/big /tmp/big"):assert_ok()
local M = {}
function M.share() r:run("echo 3 > /proc/sys/vm/drop_caches; cat /data/big > /dev/null"):assert_ok() end
function M.read_file() assert(#r:read_file("/tmp/big") == 67108864) end
EOF
  for i in $(seq "$rounds"); do
    if [ $((i % 2)) -eq 1 ]; then order="linux host"; io="share read_file"; else order="host linux"; io="read_file share"; fi
    for p in $order; do echo "test(\"boot $p $i\", function() boot(\"$p\") end)"; done
    for m in $io; do echo "test(\"io $m $i\", function() M[\"$m\"]() end)"; done
  done
} > "$tmp/image.test.lua"

echo "image benchmark: built-in profiles under TCG, $rounds rounds"
if ! (cd "$tmp" && "$provium" --psi-threshold 0 --timeout 1800s --json "$tmp/image.test.lua" \
      > "$tmp/out.jsonl" 2> "$tmp/err.txt"); then
  echo "image_bench: provium failed:" >&2
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
    if e.get("kind") == "test_passed" and p.get("name", "").count(" ") == 2:
        k, what, _ = p["name"].split(" ")
        d.setdefault((k, what), []).append(p["duration_ns"] / 1e6)
for key in [("boot", "linux"), ("boot", "host"), ("io", "share"), ("io", "read_file")]:
    if len(d.get(key, [])) != rounds:
        print("image_bench: no timings for %s %s" % key, file=sys.stderr)
        sys.exit(1)
m = {k: statistics.median(v) for k, v in d.items()}
print("boot to first op: host profile %.0f ms vs linux %.0f ms  %.2fx"
      % (m[("boot", "host")], m[("boot", "linux")], m[("boot", "host")] / m[("boot", "linux")]))
print("64 MiB in the guest: a share (virtio-fs) %.0f ms (%.0f MiB/s) vs vm:read_file %.0f ms (%.0f MiB/s)  %.2fx faster"
      % (m[("io", "share")], 64e3 / m[("io", "share")], m[("io", "read_file")], 64e3 / m[("io", "read_file")],
         m[("io", "read_file")] / m[("io", "share")]))
PY

#!/usr/bin/env bash
# Guest images benchmark (docs/images.md), in one run:
#   - boot of every kind of guest, from the test's start to the agent's hello
#     (test_started -> vm_spawned): the built-in `linux` profile, `host` (the
#     host's / over virtio-fs under an overlay), a Debian profile with
#     init = "agent" (busybox, netcat-openbsd) and one with init = "systemd";
#     each booted, run "true" and shut down in its own test, the order turning
#     every round; ratios against `linux`;
#   - raw QEMU (bench/raw_boot.py) booting the same kernel, initramfs and
#     root (the same machine, -append and devices: the Debian root.squashfs as the
#     same read-only virtio-blk disk, the host's / through the same virtiofsd),
#     timed from the spawn to the agent's first bytes: what provium adds;
#   - the Debian images' build time and size (each built anew into a scratch
#     image directory; --no-build skips it);
#   - reading a 64 MiB host file in the guest through a share (cat to
#     /dev/null, the guest's caches dropped first) against vm:read_file of
#     the same bytes copied into the guest's tmpfs (the agent's framed
#     transfer to the host).
# Medians and ratios; no targets (issue 14 sets none). Exit 1: something did
# not run.
# Usage: bench/image_bench.sh [--quick] [--no-build]   (quick: 3 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 build=1
for a in "$@"; do
  case "$a" in
    --quick) rounds=3 ;;
    --no-build) build=0 ;;
    *) echo "usage: bench/image_bench.sh [--quick] [--no-build]" >&2; exit 2 ;;
  esac
done
. bench/lib.sh && bench_bins image_bench
tmp=$(mktemp -d /tmp/pvimgbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
head -c $((64 << 20)) /dev/urandom > "$tmp/data/big"
cat > "$tmp/provium.lua" <<'LUA'
return { profiles = {
  deb = { base = "debian", packages = { "busybox", "netcat-openbsd" } },
  debsd = { base = "debian", init = "systemd", packages = { "busybox" } },
} }
LUA

if [ "$build" -eq 1 ]; then
  for p in deb debsd; do
    PROVIUM_IMAGE_DIR="$tmp/images" "$provium" image build --config "$tmp/provium.lua" "$p" \
      >/dev/null 2>"$tmp/build-$p.txt" ||
      { echo "image_bench: building $p failed:" >&2; tail -5 "$tmp/build-$p.txt" >&2; exit 1; }
  done
  "$py" - "$tmp/images" <<'PY'
import glob, json, os, sys
for m in sorted(glob.glob(os.path.join(sys.argv[1], "debian-*", "manifest.json"))):
    j = json.load(open(m))
    st = os.stat(os.path.join(os.path.dirname(m), "root.squashfs"))
    print("build of a Debian root, init = %-7s (%s): %.1f s, %d packages, root.squashfs %.0f MiB (%.0f MiB allocated)"
          % (j["init"], ",".join(j["packages"]), j["build_seconds"], j["installed"], st.st_size / 2**20,
             st.st_blocks * 512 / 2**20))
PY
  rm -rf "$tmp/images"
fi
# the runs below use the usual image directory (built there if missing)
"$provium" image build --config "$tmp/provium.lua" >/dev/null 2>"$tmp/build.txt" ||
  { echo "image_bench: building the images failed:" >&2; tail -5 "$tmp/build.txt" >&2; exit 1; }

profiles=(linux host deb debsd)
{
  cat <<'LUA'
provium.timeout = "30m"
local function boot(profile)
  local v = provium:vm("b", profile, { boot = "cold" })
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
LUA
  for i in $(seq "$rounds"); do
    for k in 0 1 2 3; do
      p=${profiles[$(( (i + k) % 4 ))]}
      echo "test(\"boot $p $i\", function() boot(\"$p\") end)"
    done
    if [ $((i % 2)) -eq 1 ]; then io="share read_file"; else io="read_file share"; fi
    for m in $io; do echo "test(\"io $m $i\", function() M[\"$m\"]() end)"; done
  done
} > "$tmp/image.test.lua"

echo "image benchmark: linux, host and Debian profiles under TCG, $rounds rounds"
if ! (cd "$tmp" && "$provium" --config "$tmp/provium.lua" --psi-threshold 0 --timeout 1800s --json \
      "$tmp/image.test.lua" > "$tmp/out.jsonl" 2> "$tmp/err.txt"); then
  echo "image_bench: provium failed:" >&2
  cat "$tmp/err.txt" >&2
  grep -E '"test_failed"|"file_failed"' "$tmp/out.jsonl" >&2 || true
  exit 1
fi
# raw QEMU, the same guests, as many rounds
"$py" bench/raw_boot.py --rounds "$rounds" --config "$tmp/provium.lua" --provium "$provium" > "$tmp/raw.json" ||
  { echo "image_bench: raw QEMU boots failed" >&2; exit 1; }

"$py" - "$tmp/out.jsonl" "$rounds" "$tmp/raw.json" <<'PY'
import json, statistics, sys
path, rounds, raw = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
boot, io, started = {}, {}, {}
for line in open(path):
    e = json.loads(line) if line.strip() else {}
    p = e.get("payload", {})
    name = p.get("name", "")
    if e.get("kind") == "test_started":
        started["cur"] = (name, e["ts"])
    elif e.get("kind") == "vm_spawned" and started.get("cur", ("",))[0].startswith("boot "):
        _, prof, _ = started["cur"][0].split(" ")
        boot.setdefault(prof, []).append((e["ts"] - started["cur"][1]) / 1e6)
    elif e.get("kind") == "test_passed" and name.startswith("io "):
        io.setdefault(name.split(" ")[1], []).append(p["duration_ns"] / 1e6)
for prof in ("linux", "host", "deb", "debsd"):
    if len(boot.get(prof, [])) != rounds or len(raw.get(prof, [])) != rounds:
        print("image_bench: no boot timings for %s" % prof, file=sys.stderr)
        sys.exit(1)
for k in ("share", "read_file"):
    if len(io.get(k, [])) != rounds:
        print("image_bench: no timings for io %s" % k, file=sys.stderr)
        sys.exit(1)
m = {k: statistics.median(v) for k, v in boot.items()}
r = {k: statistics.median(v) for k, v in raw.items()}
names = {"linux": "linux (busybox initramfs)", "host": "host (the host's /)", "deb": "Debian, init = agent",
         "debsd": "Debian, init = systemd"}
print("boot to the agent's hello (medians):")
for prof in ("linux", "host", "deb", "debsd"):
    print("  %-28s %6.0f ms  %.2fx of linux   raw QEMU %6.0f ms  provium/raw %.2fx"
          % (names[prof], m[prof], m[prof] / m["linux"], r[prof], m[prof] / r[prof]))
i = {k: statistics.median(v) for k, v in io.items()}
print("64 MiB in the guest: a share (virtio-fs) %.0f ms (%.0f MiB/s) vs vm:read_file %.0f ms (%.0f MiB/s)  %.2fx faster"
      % (i["share"], 64e3 / i["share"], i["read_file"], 64e3 / i["read_file"], i["read_file"] / i["share"]))
PY

#!/usr/bin/env bash
# Root file systems for Debian profiles (docs/design.md, "Debian images"), in
# one run: the same Debian root (a profile with busybox and netcat-openbsd,
# init = "agent") as the lz4 squashfs provium makes, as ext4 (mke2fs -d, no
# journal: what provium made before), as squashfs with zstd and as erofs
# (uncompressed, and lz4); for each its size (file and allocated), raw
# QEMU's boot to the agent's hello (bench/raw_boot.py), and reading all of
# /usr in the guest (tar | wc, caches dropped; through provium, the file put
# in a scratch image directory as the profile's root), against provium's.
# The kernel and initramfs are the built-in image's with squashfs and erofs
# added (scripts/build-image --modules, in a scratch directory), the same for
# every file system.
# Needs root (the squashfs is loop-mounted to copy the tree out) and erofs-utils
# (measurement only: apt-get install erofs-utils).
# Usage: bench/rootfs_bench.sh [--quick]   (3 rounds instead of 5)
# Env: PROVIUM_BIN (default build/provium).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh && bench_init rootfs_bench 3 "$@"
[ "$(id -u)" -eq 0 ] || { echo "rootfs_bench: needs root (it loop-mounts the image)" >&2; exit 1; }
command -v mkfs.erofs >/dev/null || { echo "rootfs_bench: no mkfs.erofs: apt-get install erofs-utils" >&2; exit 1; }
tmp=$(mktemp -d /var/tmp/pvrootfs.XXXXXX)
cleanup() { umount "$tmp/mnt" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cat > "$tmp/provium.lua" <<'LUA'
return { profiles = { deb = { base = "debian", packages = { "busybox", "netcat-openbsd" } } } }
LUA
"$provium" image build --config "$tmp/provium.lua" >/dev/null 2>"$tmp/build.txt" ||
  { echo "rootfs_bench: building the image failed:" >&2; tail -5 "$tmp/build.txt" >&2; exit 1; }
sq=$("$provium" image list --config "$tmp/provium.lua" | sed -n 's/^deb  *debian  *\([^ ]*root\.squashfs\) .*/\1/p')
[ -f "$sq" ] || { echo "rootfs_bench: no root.squashfs for the profile" >&2; exit 1; }
agent=$(dirname "$provium")/src/agent/provium-agent
img=$(scripts/build-image --agent "$agent" --out "$tmp/img" --modules squashfs,erofs 2>"$tmp/img.txt") ||
  { echo "rootfs_bench: build-image failed:" >&2; tail -5 "$tmp/img.txt" >&2; exit 1; }

mkdir "$tmp/mnt" "$tmp/fs"
mount -o loop,ro "$sq" "$tmp/mnt"
mb=$(du -sm "$tmp/mnt" | cut -f1) files=$(find "$tmp/mnt" | wc -l)
mke2fs -q -F -t ext4 -O ^has_journal -m 0 -N $((files + files / 4 + 1024)) -E root_owner=0:0 -d "$tmp/mnt" \
  "$tmp/fs/ext4" $((mb + mb / 4 + 64))M >/dev/null
mksquashfs "$tmp/mnt" "$tmp/fs/zstd.squashfs" -comp zstd -quiet -no-progress >/dev/null
mkfs.erofs -d0 -x-1 "$tmp/fs/plain.erofs" "$tmp/mnt" >/dev/null
mkfs.erofs -d0 -x-1 -zlz4 "$tmp/fs/lz4.erofs" "$tmp/mnt" >/dev/null
umount "$tmp/mnt"

key=$(basename "$(dirname "$sq")")
{
  echo 'local v = provium:vm("r", "deb", { boot = "cold" })'
  echo 'v:boot()'
  for i in $(seq "$rounds"); do
    echo "test(\"read $i\", function() v:run(\"echo 3 > /proc/sys/vm/drop_caches; tar -C / -cf - usr | wc -c\"):assert_ok() end)"
  done
} > "$tmp/read.test.lua"
echo "root file systems of a Debian root (busybox, netcat-openbsd), raw QEMU under TCG, $rounds rounds"
declare -A fstype=([ext4]=ext4 [zstd.squashfs]=squashfs [lz4.squashfs]=squashfs [plain.erofs]=erofs [lz4.erofs]=erofs)
for f in lz4.squashfs ext4 zstd.squashfs plain.erofs lz4.erofs; do
  file=$tmp/fs/$f
  [ "$f" = lz4.squashfs ] && file=$sq
  "$py" bench/raw_boot.py --rounds "$rounds" --config "$tmp/provium.lua" --provium "$provium" --profiles deb \
    --image "$img" --root "$file" --fstype "${fstype[$f]}" > "$tmp/$f.json" ||
    { echo "rootfs_bench: booting $f failed" >&2; exit 1; }
  stat -c '%s %b %B' "$file" > "$tmp/$f.size"
  # reading the whole of /usr in the guest, through provium: the same image
  # directory with this file as the profile's root.ext4 (the agent mounts it
  # as provium.rootfstype says)
  rm -rf "$tmp/img/$key"
  mkdir "$tmp/img/$key"
  cp "$(dirname "$sq")"/{manifest.json,packages.txt} "$tmp/img/$key/"
  ln -s "$file" "$tmp/img/$key/root.squashfs"
  (cd "$tmp" && PROVIUM_IMAGE_DIR="$tmp/img" PROVIUM_GUEST_CMDLINE="provium.rootfstype=${fstype[$f]}" \
     "$provium" --config "$tmp/provium.lua" --psi-threshold 0 --json "$tmp/read.test.lua" > "$tmp/$f.read.jsonl" 2>&1) ||
    { echo "rootfs_bench: reading /usr on $f failed" >&2; grep -E 'test_failed|file_failed' "$tmp/$f.read.jsonl" >&2; exit 1; }
done
"$py" - "$tmp" <<'PY'
import json, statistics, sys
d = sys.argv[1]
res = {}
for f in ("lz4.squashfs", "ext4", "zstd.squashfs", "plain.erofs", "lz4.erofs"):
    ms = statistics.median(json.load(open("%s/%s.json" % (d, f)))["deb"])
    rd = [json.loads(l)["payload"]["duration_ns"] / 1e6 for l in open("%s/%s.read.jsonl" % (d, f))
          if l.startswith("{") and '"test_passed"' in l]
    size, blocks, bsize = map(int, open("%s/%s.size" % (d, f)).read().split())
    res[f] = (ms, size, blocks * bsize, statistics.median(rd))
base, rbase = res["lz4.squashfs"][0], res["lz4.squashfs"][3]
for f, (ms, size, alloc, r) in res.items():
    print("  %-14s %5.0f MiB file, %5.0f MiB allocated   boot %5.0f ms %.2fx   reading /usr %5.0f ms %.2fx of provium's (lz4.squashfs)"
          % (f, size / 2**20, alloc / 2**20, ms, ms / base, r, r / rbase))
PY

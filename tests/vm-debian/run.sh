#!/usr/bin/env bash
# tests/vm-debian/run.sh PROVIUM: Debian profiles end to end (docs/images.md).
# The VM tests of debian.test.lua (the run builds the images it lacks), then
# the cache hit, the image commands, and bad input: each a clear error
# before any VM boots. Ends with "N passed, N failed".
set -uo pipefail
provium=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { # NAME EXPECTED_RC PATTERN CMD...: CMD exits EXPECTED_RC and prints PATTERN
  local name=$1 want=$2 pat=$3 rc
  shift 3
  "$@" >"$tmp/out" 2>&1
  rc=$?
  if [ "$rc" -eq "$want" ] && grep -qE -- "$pat" "$tmp/out"; then ok "$name"; else
    bad "$name (exit $rc, wanted $want and /$pat/)"; sed 's/^/    /' "$tmp/out" | tail -20; fi
}

cd "$here"
if "$provium" --timeout 600s --config provium.lua . >"$tmp/run" 2>&1; then ok "debian.test.lua"; else
  bad "debian.test.lua"; grep -v '^provium: image' "$tmp/run" | tail -40; fi
grep -q '^[0-9]* passed, 0 failed' "$tmp/run" || bad "debian.test.lua's summary"

check "a second build of the same package list is a cache hit" 0 '^deb: up to date [^|]*[|]debsd: up to date' \
  sh -c "'$provium' image build --config provium.lua | tr '\n' '|'"
check "image list shows both images built" 0 '^deb +debian +/.*root\.squashfs \([0-9]+ MiB, [0-9]+ packages, id [0-9a-f]{16}-[0-9a-f]{16}\)' \
  "$provium" image list --config provium.lua
check "image build of a profile with no base" 2 "profile 'linux' is not defined" \
  "$provium" image build --config provium.lua linux
check "image clean needs a choice" 2 'needs the profiles whose images to delete, or --unused' \
  "$provium" image clean --config provium.lua
check "--force only with image build" 2 '^provium: --force goes with provium image build' "$provium" image list --force

# bad input: before any VM boots, one clear line, exit 2
mkdir -p "$tmp/bad"
cat >"$tmp/bad/a.test.lua" <<'LUA'
test("boots", function() provium:vm("v", "linux"):boot() end)
LUA
cat >"$tmp/bad/provium.lua" <<'LUA'
return { profiles = { web = { base = "debian", packages = { "provium-no-such-package" } } } }
LUA
check "an unknown package fails the run before any VM boots" 2 \
  "^provium: cannot build profile 'web''s image: .*Unable to locate package provium-no-such-package.*nothing ran" \
  env PROVIUM_IMAGE_DIR="$tmp/bad/images" "$provium" --config "$tmp/bad/provium.lua" "$tmp/bad"
if grep -qE 'PASS|FAIL|vm_spawned' "$tmp/out"; then bad "no file ran after the failed build"; else ok "no file ran after the failed build"; fi
cat >"$tmp/bad/provium.lua" <<'LUA'
return { profiles = { web = { base = "ubuntu" } } }
LUA
check "an unknown base is a config error" 2 'profiles.web.base must be "debian" \(the only base there is\), got string "ubuntu"' \
  "$provium" --config "$tmp/bad/provium.lua" "$tmp/bad"

# a kernel of one's own with a Debian root: Debian's generic kernel (squashfs, ext4,
# virtio as modules) with the initramfs scripts/build-image makes for it
gen="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/provium-tests/generic-kernel"
if "$here/../../scripts/build-image" --kernel generic --out "$gen" --agent "$(dirname "$provium")/src/agent/provium-agent" \
     >"$tmp/gen.txt" 2>&1; then
  g="$gen/$(cat "$gen/linux.current")"
  mkdir -p "$tmp/own"
  cat >"$tmp/own/provium.lua" <<LUA
return { profiles = { own = { base = "debian", kernel = "$g/vmlinuz", initrd = "$g/initrd", agent = "included",
                              packages = { "busybox", "netcat-openbsd" } } } }
LUA
  cat >"$tmp/own/own.test.lua" <<'LUA'
test("own kernel, Debian root", function(t)
  local v = provium:vm("o", "own")
  v:boot()
  t:assert_contains(v:run("uname -r"):assert_ok().stdout, "-amd64")
  t:assert_eq(v:run("test -x /usr/bin/nc.openbsd && grep -c ' / overlay ' /proc/mounts"):assert_ok().stdout, "1\n")
end)
LUA
  check "a profile's own kernel boots a Debian root" 0 '1 passed, 0 failed' "$provium" --config "$tmp/own/provium.lua" "$tmp/own"
else
  bad "building the generic kernel's image"; tail -5 "$tmp/gen.txt"
fi

# clean: in an image directory of its own (the user's images stay)
mkdir -p "$tmp/images/debian-0123456789abcdef" "$tmp/images/debian-fedcba9876543210.failed"
check "image clean --unused removes images no profile uses" 0 'removed .*debian-0123456789abcdef' \
  env PROVIUM_IMAGE_DIR="$tmp/images" "$provium" image clean --config provium.lua --unused
if [ -e "$tmp/images/debian-0123456789abcdef" ] || [ -e "$tmp/images/debian-fedcba9876543210.failed" ]; then
  bad "image clean --unused left them"; else ok "image clean --unused left nothing"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

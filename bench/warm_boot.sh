#!/usr/bin/env bash
# Warm boot benchmark (docs/lua-api.md, "Warm boot"), two measures, each
# against its baseline in the same run:
#   1. boot -> first op of one VM of the built-in 'linux' profile (256 MiB,
#      1 cpu): vm:boot() resuming the profile's template vs boot = "cold",
#      the order flipping every round (target: warm <= 0.12x cold);
#   2. a suite of 20 files, each booting one to three VMs and running a few
#      ops (the shape of a real suite): its wall time warm vs --cold-boot
#      (target: >= 5x faster warm).
# A first run saves the template (its cost is the cold boot's + the save).
# Prints medians and ratios; misses are reported, not failed; exit 1 means
# something did not run.
# Usage: bench/warm_boot.sh [--quick]   (quick: 3 rounds, 1 suite round)
# Env: PROVIUM_BIN (default build/provium). Needs the built-in image.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh && bench_init warm_boot 3 "$@"
suite_rounds=$(( rounds >= 5 ? 2 : 1 ))

tmp=$(mktemp -d /tmp/pvwarmbench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cache=$tmp/cache one=$tmp/one suite=$tmp/suite
mkdir -p "$cache" "$one" "$suite"

{
  for i in $(seq "$rounds"); do
    for kind in warm cold; do
      cat <<EOF
test("$kind $i", { tags = "round$i" }, function()
  local v <close> = provium:vm("v", "linux", { boot = "$kind" })
  v:boot()
  v:run("true"):assert_ok()
end)
EOF
    done
  done
} > "$one/boot.test.lua"
echo 'test("save the template", function() provium:vm("t", "linux"):boot() end)' > "$one/first.test.lua"

# the suite: file k boots 1 + k % 3 VMs, runs three ops on each
for k in $(seq 20); do
  n=$(( 1 + k % 3 ))
  {
    echo "test(\"file $k\", function(t)"
    for j in $(seq "$n"); do
      echo "  local v$j <close> = provium:vm(\"v$j\", \"linux\", { memory = \"192M\" })"
      echo "  v$j:boot()"
      echo "  t:assert_eq(v$j:run(\"echo $k\"):assert_ok().stdout, \"$k\\n\")"
      echo "  v$j:write_file(\"/tmp/f\", \"x\")"
      echo "  t:assert_eq(v$j:read_file(\"/tmp/f\"), \"x\")"
    done
    echo "end)"
  } > "$suite/f$k.test.lua"
done

# provium runs from $tmp so that no provium.lua of the cwd applies
run_provium() { # OUT DIR ARGS...
  local out=$1 dir=$2
  shift 2
  if ! (cd "$tmp" && "$provium" --cache-dir "$cache" --psi-threshold 0 --json "$@" "$dir" \
        > "$out" 2> "$out.err"); then
    echo "warm_boot: provium $* $dir failed:" >&2
    tail -20 "$out.err" >&2
    grep -E '"test_failed"' "$out" >&2 || true
    exit 1
  fi
}

echo "warm boot benchmark: built-in linux VM, $rounds rounds; a suite of 20 files x $suite_rounds"
run_provium "$tmp/first.jsonl" "$one" --filter first
run_provium "$tmp/first192.jsonl" "$suite" --filter f1.test # the suite's 192 MiB template
for i in $(seq "$rounds"); do
  run_provium "$tmp/boot$i.jsonl" "$one" --filter boot --tag "round$i"
done
timed() { # NAME ARGS...: the wall time of a suite run into $tmp/NAME.t
  local name=$1 t0
  shift
  t0=$(date +%s%N)
  run_provium "$tmp/$name.jsonl" "$suite" "$@"
  echo $(( $(date +%s%N) - t0 )) > "$tmp/$name.t"
}
for i in $(seq "$suite_rounds"); do
  # alternate which goes first: host noise hits both alike
  if (( i % 2 )); then
    timed "warm$i"
    timed "cold$i" --cold-boot
  else
    timed "cold$i" --cold-boot
    timed "warm$i"
  fi
done

"$py" - "$tmp" "$rounds" "$suite_rounds" <<'PYEOF'
import json, statistics, sys
tmp, rounds, srounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
warm, cold = [], []
for i in range(1, rounds + 1):
    for line in open("%s/boot%d.jsonl" % (tmp, i)):
        e = json.loads(line)
        if e.get("kind") != "test_passed":
            continue
        p = e["payload"]
        (warm if p["name"].startswith("warm") else cold).append(p["duration_ns"])
if len(warm) != rounds or len(cold) != rounds:
    sys.exit("warm_boot: expected %d warm and cold boots, got %d and %d" % (rounds, len(warm), len(cold)))
mw, mc = statistics.median_low(warm), statistics.median_low(cold)
r = mw / mc
print("boot -> first op: warm %.3f s, cold %.3f s (medians of %d): %.3fx (target <= 0.12x)%s"
      % (mw / 1e9, mc / 1e9, rounds, r, "" if r <= 0.12 else "  MISSED"))
sw = [int(open("%s/warm%d.t" % (tmp, i)).read()) / 1e9 for i in range(1, srounds + 1)]
sc = [int(open("%s/cold%d.t" % (tmp, i)).read()) / 1e9 for i in range(1, srounds + 1)]
mw, mc = statistics.median_low(sw), statistics.median_low(sc)
print("suite of 20 files (41 VMs): warm %.1f s, --cold-boot %.1f s: %.1fx faster warm (target >= 5x)%s"
      % (mw, mc, mc / mw, "" if mc / mw >= 5 else "  MISSED"))
PYEOF

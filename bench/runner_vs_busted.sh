#!/usr/bin/env bash
# Per-test and per-file overhead of provium (one isolated runner process per
# file) against Debian's lua-busted (everything in one process) running the
# same trivial tests: FILES files of TESTS tests each. Prints the wall-time
# ratio provium/busted (target <= 1.0x). Usage: bench/runner_vs_busted.sh [FILES TESTS ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-20} tests=${2:-100} rounds=${3:-5}
provium=${PROVIUM_BIN:-build/provium}
command -v busted >/dev/null || { echo "busted not found (apt-get install lua-busted)"; exit 2; }
dir=$(mktemp -d /tmp/pvbench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/p" "$dir/b"
for f in $(seq "$files"); do
  {
    for i in $(seq "$tests"); do
      echo "test(\"case $i\", function(t) t:assert_eq($i + 1, $((i + 1))) end)"
    done
  } > "$dir/p/f$f.test.lua"
  {
    echo "describe(\"file $f\", function()"
    for i in $(seq "$tests"); do
      echo "  it(\"case $i\", function() assert.are.equal($i + 1, $((i + 1))) end)"
    done
    echo "end)"
  } > "$dir/b/f${f}_spec.lua"
done

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pt=() bt=()
for r in $(seq "$rounds"); do
  # alternate the order so neither side always runs on a warmer machine
  for who in p b; do
    [ $((r % 2)) -eq 0 ] && who=$([ $who = p ] && echo b || echo p)
    s=$(now)
    if [ $who = p ]; then
      "$provium" -q --psi-threshold 0 "$dir/p" >/dev/null 2>&1 || { echo "provium failed"; exit 1; }
      pt+=("$(echo "$(now) - $s" | bc)")
    else
      (cd "$dir/b" && busted -o utfTerminal . >/dev/null 2>&1) || { echo "busted failed"; exit 1; }
      bt+=("$(echo "$(now) - $s" | bc)")
    fi
  done
done
p=$(printf '%s\n' "${pt[@]}" | median)
b=$(printf '%s\n' "${bt[@]}" | median)
ratio=$(echo "scale=2; $p / $b" | bc)
printf 'files=%s tests/file=%s rounds=%s\n' "$files" "$tests" "$rounds"
printf 'provium median %.3fs   busted median %.3fs\n' "$p" "$b"
verdict=$(echo "$ratio <= 1.0" | bc)
printf 'provium/busted = %sx (target <= 1.00x) %s\n' "$ratio" "$([ "$verdict" = 1 ] && echo OK || echo 'ABOVE TARGET')"

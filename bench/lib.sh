# bench/lib.sh: how the bench/*.sh scripts start, sourced from the repository's
# top (each one cd's there first):
#   . bench/lib.sh && bench_init NAME QUICK_ROUNDS "$@"   (or bench_bins NAME)
# sets rounds (5, or QUICK_ROUNDS with --quick, the only option), provium
# ($PROVIUM_BIN, else build/provium) and py (Debian's python3, which has
# python3-msgpack), each checked to exist.
bench_init() {
  local name=$1 quick=$2
  shift 2
  rounds=5
  case "${1:-}" in
    --quick) rounds=$quick ;;
    "") ;;
    *) echo "usage: bench/$name.sh [--quick]" >&2; exit 2 ;;
  esac
  bench_bins "$name"
}

# Only the binaries (for a script with options of its own): provium and py.
bench_bins() {
  local x
  provium=$(realpath "${PROVIUM_BIN:-build/provium}")
  py=/usr/bin/python3
  for x in "$provium" "$py"; do
    [ -x "$x" ] || { echo "$1: $x is missing (ninja -C build?)" >&2; exit 1; }
  done
}

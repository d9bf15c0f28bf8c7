#!/usr/bin/env bash
# Batch throughput on many small photos: `kmq run` over COPIES copies of the
# bundled photos (4 photos, 0.2-0.5 MP each), fresh output each round, the
# median wall time of REPEAT rounds. With KMQ_B set, the two binaries run
# alternately in the same rounds and the ratio B/A is printed: the way to
# measure a change on a shared, noisy machine.
#
#   bash bench/batch.sh                       # build/kmq alone
#   KMQ_B=/tmp/old/kmq bash bench/batch.sh    # build/kmq against another build
#   COPIES=10 REPEAT=5 K=16 RESTARTS=1 THREADS=2 bash bench/batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
copies=${COPIES:-10}; repeat=${REPEAT:-5}; k=${K:-16}; restarts=${RESTARTS:-1}
threads=${THREADS:-2}
a=${KMQ:-build/kmq}; b=${KMQ_B:-}
[ -x "$a" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-batch.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/in"
for c in $(seq 1 "$copies"); do
  for f in data/photos/*.png data/photos/*.jpg; do
    cp "$f" "$work/in/$c-$(basename "$f")"
  done
done
cat > "$work/job.ini" <<INI
[run]
output = out
seed = 1
[defaults]
k = $k
restarts = $restarts
save = indexed
[job batch]
input = in
INI
n=$(ls "$work/in" | wc -l)
once() {   # binary -> seconds
  rm -rf "$work/out"
  local t0 t1
  t0=$(date +%s.%N)
  "$1" run "$work/job.ini" --threads "$threads" --quiet >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f\n", b - a}'
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ta=(); tb=()
for r in $(seq 1 "$repeat"); do
  ta+=("$(once "$a")")
  [ -n "$b" ] && tb+=("$(once "$b")")
done
ma=$(printf '%s\n' "${ta[@]}" | median)
echo "$n images, k = $k, restarts = $restarts, $threads threads, median of $repeat rounds:"
printf '  A %-40s %8.3f s  (%.1f images/s)\n' "$a" "$ma" "$(awk -v n="$n" -v t="$ma" 'BEGIN {print n / t}')"
if [ -n "$b" ]; then
  mb=$(printf '%s\n' "${tb[@]}" | median)
  printf '  B %-40s %8.3f s  (%.1f images/s)\n' "$b" "$mb" "$(awk -v n="$n" -v t="$mb" 'BEGIN {print n / t}')"
  printf '  B / A = %.2f\n' "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')"
fi

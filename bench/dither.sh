#!/usr/bin/env bash
# What dither = floyd-steinberg costs in the map pass: wall time and peak
# memory of the same quantize with and without it, on a large photo
# streamed in strips (KMQ_IMAGE_MODE=stream), runs alternating so that load
# on a shared machine hits both alike. Prints medians and their ratios.
#
#   bash bench/dither.sh                         # bundled astronaut.png enlarged to 24 MP
#   SCALE=4 K=16,256 RUNS=5 bash bench/dither.sh
#   IMAGE=/path/big.jpg bash bench/dither.sh     # any image, as it is
#
# The fit is kept short (RESTARTS=1, MAX_ITER=20, SAMPLE=200000): it is the
# same for both and not what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-10}; k=${K:-16,64,256}; runs=${RUNS:-3}; threads=${THREADS:-2}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (Debian: time)"; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-dither.XXXXXX")
trap 'rm -rf "$work"' EXIT
image=${IMAGE:-}
if [ -z "$image" ]; then
  image=$work/big.v
  vips resize data/photos/astronaut.png "$image" "$scale" --kernel linear
fi
echo "image: $image ($(vipsheader -f width "$image") x $(vipsheader -f height "$image")), k = $k, $threads threads"

one() {   # $1: label, rest: extra flags -> "seconds kib"
  local label=$1; shift
  rm -rf "$work/out"
  KMQ_IMAGE_MODE=stream /usr/bin/time -f "%e %M" -o "$work/time" "$kmq" quantize "$image" \
    -k "$k" --restarts 1 --max-iter 20 --sample 200000 --threads "$threads" --quiet \
    -o "$work/out" "$@" >/dev/null
  echo "$label $(tail -n 1 "$work/time")"
}

: > "$work/runs"
for i in $(seq "$runs"); do
  one plain >> "$work/runs"
  one dither --dither floyd-steinberg >> "$work/runs"
done
/usr/bin/python3 - "$work/runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for label in ("plain", "dither"):
    t = [float(r[1]) for r in rows if r[0] == label]
    m = [int(r[2]) for r in rows if r[0] == label]
    med[label] = (statistics.median(t), statistics.median(m) / 1024)
    print(f"{label:7s} wall {med[label][0]:7.2f} s (runs {t})  peak {med[label][1]:7.1f} MiB")
print(f"ratio dither / plain: wall {med['dither'][0] / med['plain'][0]:.2f}x, "
      f"peak memory {med['dither'][1] / med['plain'][1]:.3f}x")
PY

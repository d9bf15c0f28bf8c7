#!/usr/bin/env bash
# Streaming benchmark on a very large image: peak memory and wall time of
# `kmq quantize` beside `vips copy` of the same file to PNG (decode + encode,
# the I/O floor). The mosaic is generated at run time from a bundled photo
# and never committed.
#
#   bash bench/bigimage.sh [TILES_X TILES_Y [FORMAT]]     default 34 33 jpg (306 MP)
#   REPEAT=3 K=4,16,64 RESTARTS=3 THREADS=0 bash bench/bigimage.sh
#
# Writes bench/results/bigimage.json and bench/results/bigimage.md; prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
tx=${1:-34}; ty=${2:-33}; fmt=${3:-jpg}
repeat=${REPEAT:-3}; k=${K:-4,16,64}; restarts=${RESTARTS:-3}; threads=${THREADS:-0}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh)"; exit 2; }
command -v vips >/dev/null || { echo "needs the vips command (Debian: libvips-tools)"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (Debian: time)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-bigimage.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=data/photos/china.jpg
mosaic="$work/mosaic.$fmt"
echo "building a ${tx}x${ty} mosaic of $src as $fmt ..."
vips replicate "$src" "$work/mosaic.v" "$tx" "$ty"
case "$fmt" in
  v) mv "$work/mosaic.v" "$mosaic" ;;
  tif) vips copy "$work/mosaic.v" "$mosaic[tile,compression=deflate]"; rm "$work/mosaic.v" ;;
  *) vips copy "$work/mosaic.v" "$mosaic"; rm "$work/mosaic.v" ;;
esac
width=$(vipsheader -f width "$mosaic"); height=$(vipsheader -f height "$mosaic")
pixels=$((width * height))
echo "mosaic: ${width}x${height} = $pixels pixels, $(stat -c %s "$mosaic") bytes"

measure() {   # label, command... -> appends "label wall_s peak_kib" to $work/times
  local label=$1; shift
  /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" || {
    cat "$work/stderr.txt"; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  echo "$label $wall $rss" >> "$work/times"
  printf '  %-6s %8.2f s  %8.1f MiB\n' "$label" "$wall" "$(awk "BEGIN {print $rss / 1024}")"
}

: > "$work/times"
for i in $(seq "$repeat"); do
  echo "round $i/$repeat"
  rm -f "$work/copy.png"
  measure vips vips copy "$mosaic" "$work/copy.png"
  rm -rf "$work/out"
  measure kmq "$kmq" quantize "$mosaic" -k "$k" --restarts "$restarts" --threads "$threads" \
    -o "$work/out" --quiet
done

mkdir -p bench/results
/usr/bin/python3 - "$work/times" "$width" "$height" "$fmt" "$k" "$restarts" "$threads" \
    "$(nproc)" "$(uname -m)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, statistics, sys
path, width, height, fmt, k, restarts, threads, cores, arch, cpu = sys.argv[1:]
rows = [line.split() for line in open(path)]
def med(label, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == label)
res = {
    "image": {"width": int(width), "height": int(height), "pixels": int(width) * int(height),
              "format": fmt, "decoded_mib": int(width) * int(height) * 3 / 2**20},
    "kmq": {"k": k, "restarts": int(restarts), "threads": int(threads),
            "wall_s_median": med("kmq", 1), "peak_rss_mib_median": med("kmq", 2) / 1024},
    "vips_copy_png": {"wall_s_median": med("vips", 1), "peak_rss_mib_median": med("vips", 2) / 1024},
    "runs": len(rows) // 2, "machine": {"cores": int(cores), "arch": arch, "cpu": cpu},
}
res["ratio_wall_kmq_over_vips"] = res["kmq"]["wall_s_median"] / res["vips_copy_png"]["wall_s_median"]
json.dump(res, open("bench/results/bigimage.json", "w"), indent=2)
md = (f"Image: {width}x{height} = {res['image']['pixels']/1e6:.0f} MP {fmt} "
      f"(decoded RGB {res['image']['decoded_mib']:.0f} MiB); machine: {cores} cores, {cpu}; "
      f"median of {res['runs']} runs.\n\n"
      "| command | wall (s) | peak RSS (MiB) |\n|---|---:|---:|\n"
      f"| `vips copy` to PNG | {res['vips_copy_png']['wall_s_median']:.1f} | {res['vips_copy_png']['peak_rss_mib_median']:.0f} |\n"
      f"| `kmq quantize -k {k} --restarts {restarts}` | {res['kmq']['wall_s_median']:.1f} | {res['kmq']['peak_rss_mib_median']:.0f} |\n"
      f"\nkmq / vips copy wall-time ratio: {res['ratio_wall_kmq_over_vips']:.2f}\n")
open("bench/results/bigimage.md", "w").write(md)
print(md)
PY

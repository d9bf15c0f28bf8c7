#!/usr/bin/env bash
# space = rgb against space = oklab on the same photos, k and seed: the
# colour difference of the written image (ΔE_OK = OKLab distance x 100 per
# pixel, mean and 95th percentile, from summary.json), PSNR (RGB) and the
# wall time of each quantize. Prints a Markdown table.
#
#   bash bench/oklab.sh                    # bundled photos, k = 16
#   K=64 RESTARTS=10 PHOTOS="a.jpg" bash bench/oklab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
k=${K:-16}; restarts=${RESTARTS:-10}; threads=${THREADS:-2}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
photos=${PHOTOS:-$(ls data/photos/*.png data/photos/*.jpg)}
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-oklab.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "| photo (k = $k) | ΔE mean rgb | ΔE mean oklab | ΔE p95 rgb | ΔE p95 oklab | PSNR rgb | PSNR oklab | s rgb | s oklab |"
echo "|---|---|---|---|---|---|---|---|---|"
for photo in $photos; do
  for space in rgb oklab; do
    t0=$(date +%s.%N)
    "$kmq" quantize "$photo" -k "$k" --restarts "$restarts" --seed 1 --threads "$threads" \
      --space "$space" -o "$work/$space" --quiet
    echo "$t0 $(date +%s.%N)" > "$work/$space.s"
  done
  /usr/bin/python3 - "$work" "$(basename "$photo")" <<'PY'
import json, sys
work, name = sys.argv[1:]
r = {s: json.load(open(f"{work}/{s}/{name}/summary.json"))["results"][0] for s in ("rgb", "oklab")}
t = {s: (lambda a, b: b - a)(*map(float, open(f"{work}/{s}.s").read().split())) for s in r}
print(f"| {name} | {r['rgb']['delta_e_mean']:.2f} | **{r['oklab']['delta_e_mean']:.2f}** "
      f"| {r['rgb']['delta_e_p95']:.2f} | {r['oklab']['delta_e_p95']:.2f} "
      f"| {r['rgb']['psnr_db']:.2f} | {r['oklab']['psnr_db']:.2f} | {t['rgb']:.2f} | {t['oklab']:.2f} |")
PY
done

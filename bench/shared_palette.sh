#!/usr/bin/env bash
# Peak memory of a shared palette (palette = shared): `kmq palette` builds
# the union histogram of N generated images of MP megapixels each (one
# streamed pass per image) and fits it, beside `kmq run` of ONE of those
# images with its own palette and the same keys, and of one image holding
# all 2^24 colours: the single-image bound (memory follows distinct colours,
# at most 2^24). The union is bounded by the distinct colours of the whole
# collection, not by pixels or by the number of images, so its peak stays
# under that bound.
#
#   bash bench/shared_palette.sh      N=200 MP=4 K=16 RESTARTS=1 REPEAT=1 THREADS=2
#
# The images are generated on the fly (smooth colour fields of random hues,
# with noise: each has several hundred thousand distinct colours, and the
# collection millions), written as JPEG into a temporary folder, deleted on
# exit. Runs alternate (single, bound, shared) REPEAT times; medians printed.
# Needs build/kmq, GNU time, python3-numpy and python3-pil.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-200}; mp=${MP:-4}; k=${K:-16}; restarts=${RESTARTS:-1}
repeat=${REPEAT:-1}; threads=${THREADS:-2}
kmq=$(realpath "${KMQ:-build/kmq}")
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh)"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (Debian: time)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-shared.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/img"
/usr/bin/python3 - "$work/img" "$n" "$mp" <<'PY'
import sys
import numpy as np
from PIL import Image
out, n, mp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
w = int((mp * 1e6 * 4 / 3) ** 0.5)
h = int(mp * 1e6 / w)
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
xx /= w
yy /= h
for i in range(n):
    rng = np.random.default_rng(i)
    base = rng.uniform(0, 255, 3)
    gx, gy = rng.uniform(-200, 200, 3), rng.uniform(-200, 200, 3)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = base[c] + gx[c] * xx + gy[c] * yy + 40 * np.sin(
            rng.uniform(2, 20) * xx + rng.uniform(2, 20) * yy)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(f"{out}/g{i:04d}.jpg",
                                                                 quality=92)
print(f"{n} images of {w} x {h}", file=sys.stderr)
# The single-image bound: one 4096 x 4096 image holding every one of the
# 2^24 colours once, the most distinct colours any image can have.
every = np.arange(1 << 24, dtype=np.uint32)
rgb = np.stack([every >> 16, (every >> 8) & 255, every & 255], axis=1).astype(np.uint8)
Image.fromarray(rgb.reshape(4096, 4096, 3)).save(f"{out}/../every_colour.png", compress_level=1)
PY

job() {  # job(file, input)
  cat > "$1" <<EOF
[run]
output = $work/out
threads = $threads
[defaults]
k = $k
restarts = $restarts
palette = $3
[job gen]
input = $2
EOF
}
job "$work/single.ini" "$work/img/g0000.jpg" per_image
job "$work/bound.ini" "$work/every_colour.png" per_image
job "$work/shared.ini" "$work/img" shared

median() { printf "%s\n" "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
peak() {  # peak(cmd...) -> "rss_kib wall_s"
  /usr/bin/time -f "%M %e" -o "$work/time" "$@" >/dev/null 2>"$work/err" ||
    { cat "$work/err"; exit 1; }
  tail -n 1 "$work/time"
}
s_rss=(); s_wall=(); p_rss=(); p_wall=(); b_rss=(); b_wall=()
for _ in $(seq "$repeat"); do
  rm -rf "$work/out"
  read -r r t < <(peak "$kmq" run "$work/single.ini" --quiet)
  s_rss+=("$r"); s_wall+=("$t")
  rm -rf "$work/out"
  read -r r t < <(peak "$kmq" run "$work/bound.ini" --quiet)
  b_rss+=("$r"); b_wall+=("$t")
  rm -rf "$work/out"
  read -r r t < <(peak "$kmq" palette "$work/shared.ini" --quiet)
  p_rss+=("$r"); p_wall+=("$t")
done
colours=$(/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['unique_colors'], d['pixels'])" \
  "$work/out/gen/_palette/k$k.palette.json")
read -r uc px <<<"$colours"
sr=$(median "${s_rss[@]}"); pr=$(median "${p_rss[@]}"); br=$(median "${b_rss[@]}")
echo "images: $n of ${mp} MP; union: $px pixels, $uc distinct colours; k = $k, restarts = $restarts, threads = $threads, runs: $repeat"
printf "%-38s %12s %10s\n" run "peak MiB" "wall s"
printf "%-38s %12.1f %10s\n" "kmq run, 1 image (own palette)" "$(echo "$sr/1024" | bc -l)" "$(median "${s_wall[@]}")"
printf "%-38s %12.1f %10s\n" "kmq run, 1 image of all 2^24 colours" "$(echo "$br/1024" | bc -l)" "$(median "${b_wall[@]}")"
printf "%-38s %12.1f %10s\n" "kmq palette, union of $n images" "$(echo "$pr/1024" | bc -l)" "$(median "${p_wall[@]}")"
printf "ratio union / the single-image bound (2^24 colours): %.2f\n" "$(echo "$pr/$br" | bc -l)"
printf "ratio union / one of its images: %.2f\n" "$(echo "$pr/$sr" | bc -l)"

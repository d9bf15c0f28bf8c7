#!/usr/bin/env bash
# kmq (alpha = keep) against pngquant --speed 1 --nofs on RGBA images: the
# RGBA error of docs/design.md §19 (per pixel, sum over RGB of
# (a c - a' c')^2 with a in 0..1, plus (A - A')^2; mean over pixels) of
# each written PNG against its input, and the wall time of each tool, at
# k = 16, 64 and 256. Images: the bundled chelsea_alpha.png, a generated
# UI-style image (gradients, soft shadow, anti-aliased edges, transparent
# background; tests/cli/test_alpha.py draws the same), and
# chelsea_alpha.png as a 16-bit RGBA PNG (every sample times 257).
#
#   bash bench/peers/alpha.sh [--install]     # --install: apt-get pngquant
#   K=16,64 RESTARTS=10 bash bench/peers/alpha.sh
#
# Prints a Markdown table; kmq 2 threads, 10 restarts, seed 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "${1:-}" = --install ] && apt-get install -y pngquant >/dev/null
ks=${K:-16,64,256}; restarts=${RESTARTS:-10}
kmq=${KMQ:-build/kmq}
command -v pngquant >/dev/null || { echo "needs pngquant (--install)"; exit 2; }
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-alpha.XXXXXX")
trap 'rm -rf "$work"' EXIT
# test_alpha.py draws the UI image; its helpers module wants these set.
KMQ_BIN=$kmq KMQ_PHOTOS=data/photos KMQ_SOURCE_DIR=$PWD /usr/bin/python3 - "$work" <<'PY'
import sys
sys.path.insert(0, "tests/cli")
import numpy as np
from PIL import Image
from test_alpha import ui_image, png16
work = sys.argv[1]
ui_image(f"{work}/ui.png")
src = np.asarray(Image.open("data/photos/chelsea_alpha.png").convert("RGBA")).astype(np.uint16)
png16(f"{work}/chelsea16.png", src * 257)
Image.open("data/photos/chelsea_alpha.png").convert("RGBA").save(f"{work}/chelsea_alpha.png")
PY
echo "| image | k | kmq RGBA error | pngquant RGBA error | kmq / pngquant | kmq s | pngquant s |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for image in chelsea_alpha.png ui.png chelsea16.png; do
  for k in ${ks//,/ }; do
    t0=$(date +%s.%N)
    "$kmq" quantize "$work/$image" -k "$k" --restarts "$restarts" --threads 2 \
      -o "$work/kmq" --quiet
    t1=$(date +%s.%N)
    pngquant --speed 1 --nofs --force -o "$work/pq.png" "$k" "$work/$image"
    t2=$(date +%s.%N)
    /usr/bin/python3 - "$work" "$image" "$k" "$t0" "$t1" "$t2" <<'PY'
import sys
import numpy as np
from PIL import Image
work, image, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0, t1, t2 = map(float, sys.argv[4:])
def rgba(p):
    with Image.open(p) as im:
        if im.mode == "RGBA" and np.asarray(im).dtype != np.uint8:
            raise SystemExit("unexpected")
        return np.asarray(im.convert("RGBA")).reshape(-1, 4).astype(np.float64)
ref = image if image != "chelsea16.png" else "chelsea_alpha.png"
src = rgba(f"{work}/{ref}")
def err(path):
    out = rgba(path)
    a, b = src[:, 3:] / 255, out[:, 3:] / 255
    return (((a * src[:, :3] - b * out[:, :3]) ** 2).sum(1) + (src[:, 3] - out[:, 3]) ** 2).mean()
e_k, e_p = err(f"{work}/kmq/{image}/k{k}.png"), err(f"{work}/pq.png")
ratio = f"{e_k / e_p:.3f}" if e_p > 0 else ("both lossless" if e_k == 0 else "pngquant lossless")
print(f"| {image} | {k} | {e_k:.2f} | {e_p:.2f} | {ratio} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
PY
  done
done

#!/usr/bin/env bash
# Peak memory against image width: a square image and a wide one holding the
# same pixels (the square's row bands side by side, so the histogram and the
# fit are the same and only the layout differs), run with many k and label
# maps. The map pass keeps one strip of labels for every k and one PNG
# writer per k and file kind, so the wide image must not peak higher than
# the square one (target: wide / square <= 1.10). Two contents: smooth
# colours (labels compress well) and random 24-bit colours (labels do not,
# and every distinct colour gets a label for every k). The images are
# generated at run time and never committed.
#
#   bash bench/widemem.sh                      # 2000x2000 vs 20000x200, k = 1-256
#   SIDE=1000 BANDS=10 K=1-64 CONTENT=smooth bash bench/widemem.sh
#   KMQ=/tmp/old/kmq bash bench/widemem.sh     # another build
#
# The fit is kept short (RESTARTS=1, MAX_ITER=10, SAMPLE=100000): it works
# on distinct colours, the same for both shapes, and is not what is
# measured. With the defaults a run takes about 1 min (smooth) and 3-4 min
# (random: labelling 3.6 million colours for 256 k) on 2 cores.
# Writes bench/results/widemem.json and bench/results/widemem.md; prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
side=${SIDE:-2000}; bands=${BANDS:-10}; k=${K:-1-256}; contents=${CONTENT:-smooth random}
restarts=${RESTARTS:-1}; max_iter=${MAX_ITER:-10}; sample=${SAMPLE:-100000}
threads=${THREADS:-2}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (Debian: time)"; exit 2; }
[ $((side % bands)) -eq 0 ] || { echo "SIDE must be a multiple of BANDS"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-widemem.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "building ${side}x${side} and $((side * bands))x$((side / bands)) images ($contents) ..."
/usr/bin/python3 - "$work" "$side" "$bands" $contents <<'PY'
import sys
import numpy as np
from PIL import Image
work, side, bands, contents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) / side
made = {
    "smooth": lambda: np.rint(np.stack([127.5 + 127.5 * np.sin(6.3 * xx + 2.0 * yy),
                                        127.5 + 127.5 * np.cos(5.1 * yy - 1.3 * xx),
                                        127.5 * (xx + yy)], axis=-1)).astype(np.uint8),
    "random": lambda: np.random.default_rng(1).integers(0, 256, size=(side, side, 3),
                                                        dtype=np.uint8),
}
for c in contents:
    a = made[c]()
    Image.fromarray(a, "RGB").save(f"{work}/{c}-square.png", compress_level=1)
    wide = np.concatenate(np.split(a, bands, axis=0), axis=1)
    Image.fromarray(wide, "RGB").save(f"{work}/{c}-wide.png", compress_level=1)
PY

measure() {   # name -> appends "name wall_s user_s peak_kib" to $work/times
  local name=$1
  cat > "$work/$name.ini" <<INI
[run]
output = out-$name
seed = 1
[job j]
input = $name.png
k = $k
restarts = $restarts
max_iter = $max_iter
sample = $sample
save = indexed, labels
INI
  /usr/bin/time -v -o "$work/time.txt" "$kmq" run "$work/$name.ini" --threads "$threads" \
    --quiet >/dev/null 2>"$work/stderr.txt" || { cat "$work/stderr.txt"; exit 1; }
  rm -rf "$work/out-$name"
  local wall user rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time.txt")
  user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  echo "$name $wall $user $rss" >> "$work/times"
  printf '  %-14s %8.1f s wall %8.1f s user %8.1f MiB\n' "$name" "$wall" "$user" \
    "$(awk "BEGIN {print $rss / 1024}")"
}

: > "$work/times"
for c in $contents; do
  measure "$c-square"
  measure "$c-wide"
done

mkdir -p bench/results
/usr/bin/python3 - "$work/times" "$side" "$bands" "$k" "$restarts" "$max_iter" "$sample" \
    "$threads" "$(nproc)" "$(uname -m)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
    "$kmq" <<'PY'
import json, sys
path, side, bands, k, restarts, max_iter, sample, threads, cores, arch, cpu, kmq = sys.argv[1:]
side, bands = int(side), int(bands)
runs = {}
for line in open(path):
    name, wall, user, rss = line.split()
    content, shape = name.split("-")
    runs.setdefault(content, {})[shape] = {
        "wall_s": float(wall), "user_s": float(user), "peak_rss_mib": int(rss) / 1024}
res = {
    "square": f"{side}x{side}", "wide": f"{side * bands}x{side // bands}",
    "job": {"k": k, "restarts": int(restarts), "max_iter": int(max_iter),
            "sample": int(sample), "save": "indexed, labels"},
    "threads": int(threads), "kmq": kmq,
    "machine": {"cores": int(cores), "arch": arch, "cpu": cpu},
    "runs": runs,
}
for c, r in runs.items():
    r["ratio_wide_over_square"] = r["wide"]["peak_rss_mib"] / r["square"]["peak_rss_mib"]
json.dump(res, open("bench/results/widemem.json", "w"), indent=2)
md = (f"Square {res['square']} vs wide {res['wide']} (same pixels), k = {k}, "
      f"save = indexed, labels, restarts = {restarts}, max_iter = {max_iter}, "
      f"sample = {sample}; {threads} threads; machine: {cores} cores, {cpu}.\n\n"
      "| content | shape | peak RSS (MiB) | wall (s) | user (s) |\n|---|---|---:|---:|---:|\n")
for c, r in runs.items():
    for shape in ("square", "wide"):
        s = r[shape]
        md += (f"| {c} | {shape} | {s['peak_rss_mib']:.0f} | {s['wall_s']:.1f} "
               f"| {s['user_s']:.1f} |\n")
md += "\n" + "".join(f"{c}: wide / square peak RSS = {r['ratio_wide_over_square']:.3f} "
                     f"(target <= 1.10)\n" for c, r in runs.items())
open("bench/results/widemem.md", "w").write(md)
print(md)
PY

#!/usr/bin/env bash
# What target_psnr saves: per photo, the k the search picks and the fits it
# makes, against fitting every k of the same list (what a user without the
# key runs to read the answer off), both with the same restarts and seed.
# The two runs alternate per photo so that load on a shared machine hits
# both alike; prints seconds, fits and the ratio, and checks the answer.
#
#   bash bench/target.sh                      # bundled photos, k = auto, 35 dB
#   TARGET=30 RESTARTS=10 bash bench/target.sh
#   PHOTOS="a.jpg b.png" bash bench/target.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target=${TARGET:-35}; restarts=${RESTARTS:-3}; threads=${THREADS:-2}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh) or set KMQ=path"; exit 2; }
photos=${PHOTOS:-$(ls data/photos/*.png data/photos/*.jpg)}
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-target.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%-20s %6s %8s %10s %8s %10s %7s\n' photo k fits seconds "all k" seconds ratio
for photo in $photos; do
  name=$(basename "$photo")
  common=("$photo" --restarts "$restarts" --seed 1 --threads "$threads" --quiet)
  t0=$(date +%s.%N)
  "$kmq" quantize "${common[@]}" -k auto --target-psnr "$target" -o "$work/search"
  t1=$(date +%s.%N)
  "$kmq" quantize "${common[@]}" -k 2-256 -o "$work/every"
  t2=$(date +%s.%N)
  /usr/bin/python3 - "$work" "$name" "$target" "$t0" "$t1" "$t2" <<'PY'
import json, sys
work, name, target, t0, t1, t2 = sys.argv[1], sys.argv[2], float(sys.argv[3]), *map(float, sys.argv[4:])
s = json.load(open(f"{work}/search/{name}/summary.json"))
every = json.load(open(f"{work}/every/{name}/summary.json"))["results"]
ok = lambda r: r["psnr_db"] is None or r["psnr_db"] >= target
t = s["target"]
# The k a reader of the full run would take: the first that reaches after
# the last k before it that the search saw miss (the same rule as kmq).
k = t["k"]
assert not t["reached"] or (ok(next(r for r in every if r["k"] == k)) and
                            not ok(next(r for r in every if r["k"] == k - 1))), "mismatch"
print(f"{name:20s} {k:6d} {len(t['fitted']):8d} {t1 - t0:10.2f} {len(every):8d} {t2 - t1:10.2f}"
      f" {(t2 - t1) / (t1 - t0):6.1f}x" + ("" if t["reached"] else "  (not reached)"))
PY
  rm -rf "$work/search" "$work/every"
done

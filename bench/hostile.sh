#!/usr/bin/env bash
# What a hostile file costs: peak memory and wall time of `kmq quantize` on
# each decompression bomb and disguised file of tests/cli/hostile_files.py
# (a few hundred bytes each), beside a 1 x 1 PNG, the floor of any run.
# Each file is run REPEAT times; the table shows medians.
#
#   bash bench/hostile.sh            REPEAT=5 THREADS=2 by default
#
# Needs build/kmq (bash scripts/setup.sh), GNU time and python3-pil.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${REPEAT:-5}; threads=${THREADS:-2}
kmq=${KMQ:-build/kmq}
[ -x "$kmq" ] || { echo "build kmq first (bash scripts/setup.sh)"; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (Debian: time)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-hostile.XXXXXX")
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work" <<'PY'
import os, sys
sys.path.insert(0, "tests/cli")
import hostile_files as hf
work = sys.argv[1]
os.makedirs(os.path.join(work, "files"))
def put(name, data):
    with open(os.path.join(work, "files", name), "wb") as f:
        f.write(data)
put("one_pixel.png", hf.one_pixel_png())
for name, (data, _, _) in hf.bombs(work).items():
    put("bomb_" + name, data)
for name, (data, _) in hf.disguised().items():
    put("disguised_" + name, data)
PY

printf "%-24s %8s %-14s %10s %12s\n" file bytes status "wall s" "peak KiB"
for f in "$work"/files/*; do
  name=$(basename "$f")
  walls=(); rss=()
  for _ in $(seq "$repeat"); do
    rm -rf "$work/out"
    /usr/bin/time -f "%e %M" -o "$work/t" "$kmq" quantize "$f" -k 2 -o "$work/out" \
      --threads "$threads" --quiet >/dev/null 2>&1 || true
    read -r w m < <(tail -n 1 "$work/t")
    walls+=("$w"); rss+=("$m")
  done
  status=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"] if d["status"]=="ok" else d["error"]["code"])' "$work/out/$name/summary.json")
  med() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf "%-24s %8s %-14s %10s %12s\n" "$name" "$(stat -c %s "$f")" "$status" "$(med "${walls[@]}")" "$(med "${rss[@]}")"
done

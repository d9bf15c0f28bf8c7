#!/usr/bin/env bash
# Side-by-side timing of two kmq builds' fits: time per Lloyd iteration and
# seeding time per restart, from `kmq bench` at 1 thread, the two builds
# alternating, medians and ratios (new / base). Both builds run the same
# exact fits (same iterations), so the per-iteration times compare like
# with like.
#
# usage: bench/lloyd_filter.sh BASE_KMQ NEW_KMQ IMAGE [ROUNDS] [K_LIST] [THREADS]
#   e.g. bench/lloyd_filter.sh /tmp/base/build/kmq build/kmq photo.png 5 64,256
set -euo pipefail
base=$1 new=$2 image=$3 rounds=${4:-5} ks=${5:-64,256} threads=${6:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-lloyd.XXXXXX")
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$rounds"); do
    for side in base new; do
        bin=$base
        [ "$side" = new ] && bin=$new
        "$bin" bench --image "$image" -k "$ks" --restarts 1 --threads-max "$threads" \
            --repeat 1 -q --json "$work/$side-$r.json" > /dev/null
    done
done
/usr/bin/python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for side in ("base", "new"):
    for r in range(1, rounds + 1):
        doc = json.load(open(f"{work}/{side}-{r}.json"))
        for res in doc["results"]:
            t = res["threads"][-1]
            key = (res["k"], t["threads"])
            # The phases' own times: fit_s also holds preparing the
            # colours (shared by every k and restart in a real run). Builds
            # before init_s / lloyd_s: split fit_s by init_share (their
            # preparation, under 1% of it, counted in both).
            if "init_s" in t:
                it = t["lloyd_s"] / res["iterations_total"] * 1e3
                init = t["init_s"] * 1e3
            else:
                it = t["fit_s"] * (1 - t["init_share"]) / res["iterations_total"] * 1e3
                init = t["fit_s"] * t["init_share"] * 1e3
            rows.setdefault(key, {}).setdefault(side, []).append((it, init))
print(f"{doc['image']}: {doc['unique_colors']} distinct colours; {rounds} alternating rounds, medians")
print("| k | threads | base ms/iter | new ms/iter | ratio | base seeding ms | new seeding ms | ratio |")
print("|---|---|---|---|---|---|---|---|")
for (k, th), sides in sorted(rows.items()):
    bi = statistics.median(x[0] for x in sides["base"]); ni = statistics.median(x[0] for x in sides["new"])
    bs = statistics.median(x[1] for x in sides["base"]); ns = statistics.median(x[1] for x in sides["new"])
    print(f"| {k} | {th} | {bi:.2f} | {ni:.2f} | {ni / bi:.2f} | {bs:.1f} | {ns:.1f} | {ns / bs:.2f} |")
PY

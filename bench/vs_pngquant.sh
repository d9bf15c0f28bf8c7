#!/usr/bin/env bash
# kmq quantize --restarts 10 end to end against pngquant --speed 1 --nofs
# on the same pixels (a PNG copy of IMAGE), alternating pairs, medians and
# ratios (kmq / pngquant).
#
# usage: bench/vs_pngquant.sh KMQ IMAGE [PAIRS] [K_LIST] [THREADS]
set -euo pipefail
kmq=$1 image=$2 pairs=${3:-5} ks=${4:-"16 64 256"} threads=${5:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/kmq-pngq.XXXXXX")
trap 'rm -rf "$work"' EXIT
vips copy "$image" "$work/in.png"
export OMP_NUM_THREADS=$threads
now() { date +%s.%N; }
echo "$(basename "$image"), $threads threads, $pairs alternating pairs, medians"
echo "| k | kmq s | pngquant s | kmq / pngquant |"
echo "|---|---|---|---|"
for k in $ks; do
    a=() b=()
    for p in $(seq 1 "$pairs"); do
        rm -rf "$work/out"
        t0=$(now)
        "$kmq" quantize "$work/in.png" -k "$k" --restarts 10 --threads "$threads" \
            -o "$work/out" > /dev/null 2>&1
        t1=$(now)
        pngquant --speed 1 --nofs --force --output "$work/pq.png" "$k" "$work/in.png"
        t2=$(now)
        a+=("$(echo "$t1 - $t0" | bc)") b+=("$(echo "$t2 - $t1" | bc)")
    done
    /usr/bin/python3 -c 'import statistics,sys
n=int(sys.argv[2]); v=[float(x) for x in sys.argv[3:]]
a=statistics.median(v[:n]); b=statistics.median(v[n:])
print(f"| {sys.argv[1]} | {a:.3f} | {b:.3f} | {a/b:.2f} |")' "$k" "$pairs" "${a[@]}" "${b[@]}"
done

#!/usr/bin/env bash
# Submits one kmq job file as a SLURM job array, then a report task that
# merges the shards (docs/cluster.md).
#
#   kmq-array.sh [options] JOB.ini [N] [-- sbatch options...]
#
#   N               shards, one per array task (default 16; also --tasks N)
#   --cpus C        CPUs per task, passed to kmq as --threads (default 1;
#                   checked against the largest node of the partition)
#   --array LIST    submit only these shards of N, e.g. 3 or 1,5-7 or 0-14:2
#                   or 0-15%4 (a throttle); each index is its shard
#   --logs DIR      one log per task, DIR/shard-I-of-N.JOBID.log, and the
#                   report's (default: OUT.logs beside the output root)
#   --kmq PATH      the kmq binary the tasks run (default: build/kmq of this
#                   repository, or $KMQ)
#   --no-report     no dependent report task
#   --hold          submit the array held (look at it, then scontrol release)
#   extra sbatch options (--partition, --time, --account, --signal, ...) go
#   to every sbatch call; --array is this script's own option.
#
# Prints the array's job id and the report task's. The report task runs
# after every array task ended, however (--dependency=afterany), and exits
# non-zero when shards are missing or images failed: `sacct -j JOBID`
# shows it. Re-running only the shards that did not finish is the line
# `kmq report OUT` prints.
set -euo pipefail

die() {
    echo "kmq-array.sh: $*" >&2
    exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kmq=${KMQ:-$here/../../build/kmq}
count=16
cpus=1
array=""
logs=""
report=1
hold=()
job=""
extra=()

while [ $# -gt 0 ]; do
    case $1 in
    --tasks) count=${2:?--tasks needs N}; shift 2 ;;
    --tasks=*) count=${1#*=}; shift ;;
    --cpus) cpus=${2:?--cpus needs a number}; shift 2 ;;
    --cpus=*) cpus=${1#*=}; shift ;;
    --array) array=${2:?--array needs a list}; shift 2 ;;
    --array=*) array=${1#*=}; shift ;;
    --logs) logs=${2:?--logs needs a folder}; shift 2 ;;
    --logs=*) logs=${1#*=}; shift ;;
    --kmq) kmq=${2:?--kmq needs a path}; shift 2 ;;
    --kmq=*) kmq=${1#*=}; shift ;;
    --no-report) report=0; shift ;;
    --hold) hold=(--hold); shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; extra+=("$@"); break ;;
    -a | -a* | --array*) die "give the array as this script's --array LIST (each index is its shard of N)" ;;
    -*) extra+=("$1"); shift ;;
    *)
        if [ -z "$job" ]; then job=$1
        elif [[ $1 =~ ^[0-9]+$ ]] && [ ${#extra[@]} -eq 0 ]; then count=$1
        else die "unexpected argument '$1': give sbatch options as --option=value, or after --"
        fi
        shift ;;
    esac
done
for o in "${extra[@]}"; do
    case $o in -a | -a* | --array*) die "give the array as this script's --array LIST, not as an sbatch option" ;; esac
done
[ -n "$job" ] || die "usage: kmq-array.sh [--cpus C] [--array LIST] JOB.ini [N] [-- sbatch options...]"
[[ $count =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number of shards, not '$count'"
[[ $cpus =~ ^[1-9][0-9]*$ ]] || die "--cpus must be a positive number, not '$cpus'"

# Every index of an sbatch --array LIST (a, a-b, a-b:step, comma-separated,
# an optional %throttle at the end), one per line; refuses a malformed list.
array_indices() {
    local list=${1%\%*} part a b step
    if [[ $1 == *%* ]] && ! [[ ${1##*%} =~ ^[1-9][0-9]*$ ]]; then
        die "--array $1: the throttle after % must be a positive number"
    fi
    IFS=, read -ra parts <<<"$list"
    [ ${#parts[@]} -gt 0 ] || die "--array is empty"
    for part in "${parts[@]}"; do
        if [[ $part =~ ^([0-9]+)$ ]]; then
            echo "$part"
        elif [[ $part =~ ^([0-9]+)-([0-9]+)(:([1-9][0-9]*))?$ ]]; then
            a=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]} step=${BASH_REMATCH[4]:-1}
            [ "$a" -le "$b" ] || die "--array $1: range $part runs backwards"
            seq "$a" "$step" "$b"
        else
            die "--array $1: '$part' is not I, A-B or A-B:STEP"
        fi
    done
}

[ -n "$array" ] || array="0-$((count - 1))"
indices=$(array_indices "$array") || exit 2
while read -r i; do
    [ "$i" -lt "$count" ] ||
        die "--array $array holds index $i, but there are only $count shards (0..$((count - 1))): an index is its shard, so the array must stay within 0-$((count - 1))"
done <<<"$indices"

[ -x "$kmq" ] || die "no kmq binary at $kmq (build it, or give --kmq PATH or KMQ=PATH)"
kmq=$(cd "$(dirname "$kmq")" && pwd)/$(basename "$kmq")
job=$(cd "$(dirname "$job")" && pwd)/$(basename "$job")
out=$("$kmq" validate "$job" | awk -F' = ' '/^output = / {print $2; exit}') || true
[ -n "$out" ] || die "$job does not validate: run $kmq validate $job"
[ -n "$logs" ] || logs=${out%/}.logs
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)

# A task asking for more CPUs than any node of its partition has stays
# pending for ever.
partition=()
for ((i = 0; i < ${#extra[@]}; i++)); do
    case ${extra[i]} in
    --partition=* | -p?*) p=${extra[i]#--partition=}; partition=(-p "${p#-p}") ;;
    --partition | -p) partition=(-p "${extra[i + 1]:-}") ;;
    esac
done
if command -v sinfo >/dev/null; then
    most=$(sinfo -h "${partition[@]}" -o %c 2>/dev/null | tr -d '+' | sort -n | tail -1 || true)
    if [[ $most =~ ^[0-9]+$ ]] && [ "$cpus" -gt "$most" ]; then
        die "--cpus $cpus: the largest node${partition[1]:+ of partition ${partition[1]}} has $most CPUs, so the tasks would never start"
    fi
fi

# The submission line without --array: each shard records it, and
# `kmq report` prints it with the shards that must run again.
submit=(sbatch --cpus-per-task="$cpus" --output="$logs/shard-%a-of-$count.%A.log"
        "${extra[@]}" "$here/kmq-array.sbatch" "$job" "$count" "$kmq")
KMQ_RESUBMIT=$(printf '%q ' "${submit[@]}")
export KMQ_RESUBMIT=${KMQ_RESUBMIT% }

# A job with palette = shared: its palette is computed once, by a task the
# array waits for; the shards only map to it (docs/design.md, section 16).
after=()
if "$kmq" validate "$job" | grep -qE '^  palette += shared$'; then
    palette_id=$(sbatch --parsable --cpus-per-task="$cpus" --job-name=kmq-palette \
        --output="$logs/palette.%j.log" "${extra[@]}" \
        --wrap "$(printf '%q palette %q --quiet' "$kmq" "$job")")
    palette_id=${palette_id%%;*}
    after=(--dependency=afterok:"$palette_id")
    echo "kmq-array: palette task $palette_id (the shards wait for it)"
fi
array_id=$(sbatch --parsable --array="$array" "${hold[@]}" "${after[@]}" "${submit[@]:1}")
array_id=${array_id%%;*}
echo "kmq-array: array $array_id, shards $array of $count, logs in $logs"
if [ "$report" = 1 ]; then
    report_id=$(sbatch --parsable --dependency=afterany:"$array_id" --job-name=kmq-report \
        --output="$logs/report.%j.log" "${extra[@]}" --wrap "$(printf '%q report %q' "$kmq" "$out")")
    report_id=${report_id%%;*}
    echo "kmq-array: report task $report_id (after the array; exits 1 when shards are missing)"
fi

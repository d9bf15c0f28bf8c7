#!/usr/bin/env bash
# One job file over a SLURM job array (docs/design.md). A first task computes
# the shared palettes (kmq palette; nothing to do without palette = shared),
# then each array task runs its shard of the images against the shared output
# root, mapping only; a final dependent task merges every shard's summaries
# into run.json and elbow.csv.
#
#   scripts/slurm/kmq-array.sh JOB.ini [TASKS] [extra sbatch options...]
#
# Re-running after a failed or pre-empted task is safe: finished images are
# skipped (resume), unfinished ones are redone.
set -euo pipefail
job=${1:?usage: kmq-array.sh JOB.ini [TASKS] [sbatch options...]}
tasks=${2:-16}
shift $(( $# >= 2 ? 2 : 1 ))
kmq=${KMQ:-$(cd "$(dirname "$0")/../.." && pwd)/build/kmq}
out=$("$kmq" validate "$job" | awk -F' = ' '/^output = / {print $2; exit}')

palette_id=$(sbatch --parsable --cpus-per-task="${CPUS:-8}" "$@" \
  --wrap "OMP_NUM_THREADS=\$SLURM_CPUS_PER_TASK '$kmq' palette '$job' --quiet")
array_id=$(sbatch --parsable --dependency=afterok:"$palette_id" \
  --array=0-$((tasks - 1)) --cpus-per-task="${CPUS:-8}" "$@" \
  --wrap "OMP_NUM_THREADS=\$SLURM_CPUS_PER_TASK '$kmq' run '$job' --quiet \
          --shard \$SLURM_ARRAY_TASK_ID/\$SLURM_ARRAY_TASK_COUNT \
          --log '$out'.shard\$SLURM_ARRAY_TASK_ID.log")
sbatch --dependency=afterany:"$array_id" --wrap "'$kmq' report '$out'" "$@"
echo "submitted array $array_id ($tasks tasks) and the report task for $out"

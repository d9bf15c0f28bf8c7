#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, serial) into build-fuzz/
# and runs each for a given time, longer than CI's bounded run.
#
#   bash scripts/fuzz.sh              10 minutes per target
#   bash scripts/fuzz.sh 3600         one hour per target
#   bash scripts/fuzz.sh 600 image    one target (job | image | runfiles)
#
# New inputs are kept in build-fuzz/fuzz/corpus/NAME (seeds: fuzz/corpus/NAME);
# a crash is written to build-fuzz/fuzz/crash-NAME-* and the script fails.
# Reproduce one with: build-fuzz/fuzz/fuzz_NAME build-fuzz/fuzz/crash-NAME-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
targets=${2:-"job image runfiles"}
jobs=$(nproc)

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DKMQ_WERROR=ON -DKMQ_SANITIZE=ON \
  -DKMQ_FUZZ=ON -DKMQ_OPENMP=OFF -DKMQ_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$jobs"
for name in $targets; do
  echo "== fuzz_$name for ${seconds} s"
  mkdir -p "build-fuzz/fuzz/corpus/$name"
  opts=""
  [ "$name" = image ] && opts="detect_leaks=0"   # libvips/GLib process-wide state
  ASAN_OPTIONS="$opts" "build-fuzz/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/fuzz/crash-$name-" \
    "build-fuzz/fuzz/corpus/$name" "fuzz/corpus/$name"
done
echo "== fuzzing found no crash"

#!/usr/bin/env bash
# The whole test suite, as CI runs it: layer check, a warnings-as-errors
# release build with OpenMP, an ASan+UBSan build, and a serial (no OpenMP)
# build; every build runs all of CTest (Check unit suites + CLI tests); then
# a clang build of the libFuzzer targets runs each for a bounded time.
#
#   bash scripts/test.sh            everything
#   KMQ_TEST_QUICK=1 bash scripts/test.sh   release build only
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/setup.sh --deps --test-deps
bash scripts/check-layers.sh

run_suite() {   # name, extra cmake args...
  local dir=$1; shift
  echo "== $dir: configure + build"
  cmake -S . -B "$dir" -DKMQ_WERROR=ON -DKMQ_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $dir: ctest"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite build -DCMAKE_BUILD_TYPE=Release
if [ -z "${KMQ_TEST_QUICK:-}" ]; then
  # libvips and GLib keep process-wide caches that LeakSanitizer reports as
  # leaks; the suppressions name only those libraries, never kmq.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DKMQ_SANITIZE=ON
  unset LSAN_OPTIONS ASAN_OPTIONS UBSAN_OPTIONS
  run_suite build-serial -DCMAKE_BUILD_TYPE=Release -DKMQ_OPENMP=OFF
  # libFuzzer targets (clang, ASan + UBSan): job, image and runfiles each
  # run KMQ_FUZZ_SECONDS (30 s, side by side) from fuzz/corpus;
  # scripts/fuzz.sh runs them longer.
  CC=clang run_suite build-fuzz -DCMAKE_BUILD_TYPE=Debug -DKMQ_SANITIZE=ON -DKMQ_FUZZ=ON \
    -DKMQ_OPENMP=OFF -DKMQ_TESTS=OFF
fi
echo "== all test suites passed"

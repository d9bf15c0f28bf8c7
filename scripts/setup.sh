#!/usr/bin/env bash
# Installs kmq's dependencies from Debian 12 packages and builds kmq into
# build/. Safe to run again: apt-get skips what is installed, CMake rebuilds
# only what changed. Run as root (or with sudo).
#
#   bash scripts/setup.sh                     what building and running kmq need, + build
#   bash scripts/setup.sh --deps              install only
#   bash scripts/setup.sh --test-deps         also what the test suite needs (scripts/test.sh
#                                             passes it), + build with the tests
#   bash scripts/setup.sh --deps --test-deps  both installs, no build
set -euo pipefail
cd "$(dirname "$0")/.."

deps_only=0 test_deps=0
for arg in "$@"; do
  case $arg in
    --deps) deps_only=1 ;;
    --test-deps) test_deps=1 ;;
    *) echo "setup: unknown option $arg (--deps, --test-deps)" >&2; exit 2 ;;
  esac
done

# Building and running kmq.
packages=(
  build-essential cmake pkg-config                # compiler, build
  libvips-dev libpng-dev libjansson-dev           # libraries
)
# The test suite only (scripts/test.sh), never needed to run kmq.
test_packages=(
  check                                           # unit tests (tests/unit)
  libvips-tools python3 python3-pil python3-numpy time  # test fixtures, second PNG decoder, peak memory
  python3-jsonschema                              # CLI tests: docs/*.schema.json
  chromium                                        # opens the HTML report in tests
  clang libclang-rt-14-dev                        # libFuzzer targets (fuzz/, scripts/fuzz.sh)
  slurm-wlm munge                                 # live single-node SLURM test (tests/cli/test_slurm_live.py)
  man-db dpkg-dev fakeroot                        # install test: man -l; the .deb (scripts/build-deb.sh)
  python3-venv python3-pip python3-setuptools python3-pytest python3-sklearn  # python/ package and its tests
)
[ "$test_deps" = 1 ] && packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "$deps_only" = 1 ] && exit 0

# Without the test packages there is no Check to build the unit tests with.
tests=OFF
[ "$test_deps" = 1 ] && tests=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKMQ_WERROR=ON -DKMQ_TESTS=$tests >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/kmq ($(build/kmq --version))"

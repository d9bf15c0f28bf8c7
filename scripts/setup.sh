#!/usr/bin/env bash
# Installs kmq's dependencies from Debian 12 packages and builds kmq into
# build/. Safe to run again: apt-get skips what is installed, CMake rebuilds
# only what changed. Run as root (or with sudo).
#
#   bash scripts/setup.sh            install + build
#   bash scripts/setup.sh --deps     install only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config          # compiler, build
  libvips-dev libpng-dev libjansson-dev check  # libraries
  libvips-tools python3 python3-pil python3-numpy time     # test fixtures, second PNG decoder, peak memory
  python3-jsonschema                                       # CLI tests: docs/*.schema.json
  chromium                                                 # opens the HTML report in tests
  slurm-wlm munge                                          # live single-node SLURM test (tests/cli/test_slurm_live.py)
  clang libclang-rt-14-dev                                 # libFuzzer targets (fuzz/, scripts/fuzz.sh)
)

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

[ "${1:-}" = "--deps" ] && exit 0

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKMQ_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/kmq ($(build/kmq --version))"

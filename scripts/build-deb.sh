#!/usr/bin/env bash
# Builds the Debian package kmq_VERSION_amd64.deb (CPack) in build-deb/:
# a release build for prefix /usr, its `cmake --install` tree, and Depends
# computed by dpkg-shlibdeps from the binary and libkmq (libvips42,
# libpng16-16, libjansson4, libgomp1, libc6, ...). Needs dpkg-dev (the test
# packages of scripts/setup.sh). Prints the package's path last.
#
#   bash scripts/build-deb.sh            then: sudo apt install ./build-deb/kmq_*_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${KMQ_DEB_BUILD_DIR:-build-deb}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DKMQ_WERROR=ON -DKMQ_TESTS=OFF \
  -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$dir" -j"$(nproc)"
rm -f "$dir"/kmq_*.deb
(cd "$dir" && cpack -G DEB >/dev/null)
deb=$(ls "$dir"/kmq_*_amd64.deb)
dpkg-deb --field "$deb" Package Version Architecture Depends Suggests
echo "$deb"

#!/usr/bin/env bash
# The Debian package on a clean Debian 12. Builds kmq_VERSION_amd64.deb
# (scripts/build-deb.sh), makes a fresh minimal bookworm root with
# mmdebstrap, installs the package there with apt (which brings exactly
# what its Depends name), and runs tests/install/test_install.sh inside it
# against /usr: the demo job, man kmq, completion of `kmq qu<TAB>`, a C
# program built with `pkg-config --cflags --libs kmq`, the Python package
# finding the installed library, the exports.
# Needs root, mmdebstrap (apt-get install mmdebstrap) and the Debian mirror.
#
#   bash scripts/check-install.sh            clean root (mmdebstrap)
#   bash scripts/check-install.sh --unpack   no root to make: the .deb unpacked with
#                                            dpkg -x into a throwaway prefix on this
#                                            machine, the same checks run there
set -euo pipefail
cd "$(dirname "$0")/.."
mode=root
[ "${1:-}" = --unpack ] && mode=unpack
[ $mode = root ] && ! command -v mmdebstrap >/dev/null && {
  echo "check-install: no mmdebstrap (apt-get install mmdebstrap), or use --unpack" >&2; exit 2; }

deb=$(bash scripts/build-deb.sh | tail -1)
echo "== $deb"
dpkg-deb --field "$deb" Depends
work=$(mktemp -d /tmp/kmq-check-install.XXXXXX)
root=$work/root
cleanup() {
  mountpoint -q "$root/proc" 2>/dev/null && umount "$root/proc"
  rm -rf "$work"
}
trap cleanup EXIT

if [ $mode = unpack ]; then
  dpkg -x "$deb" "$work/unpacked"
  LD_LIBRARY_PATH=$(dirname "$(find "$work/unpacked" -name libkmq.so.0)") \
    bash tests/install/test_install.sh . . "$work/tmp" "$work/unpacked/usr"
  exit 0
fi

echo "== a fresh Debian 12 root (mmdebstrap --variant=apt bookworm)"
# The tools the checks use (not kmq's dependencies: those come from the .deb).
mmdebstrap --quiet --variant=apt --include=man-db,pkg-config,gcc,libc6-dev,python3-numpy \
  bookworm "$root"
cp "$deb" "$root/tmp/"
mkdir -p "$root/src/tests" "$root/src/include/kmq"
cp -r data configs "$root/src/"
cp -r tests/install "$root/src/tests/"
cp -r python "$root/src/"
cp include/kmq/kmq.h "$root/src/include/kmq/"
mount -t proc proc "$root/proc"
echo "== apt-get install ./$(basename "$deb") in it"
chroot "$root" apt-get update -qq   # mmdebstrap leaves no package lists behind
chroot "$root" apt-get update -qq   # mmdebstrap leaves no package lists behind
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$deb")" >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
echo "set up $(grep -c '^Setting up' "$work/apt.log") packages, among them:"
grep -oE '^Setting up (kmq|libvips42|libpng16-16|libjansson4|libgomp1)[^ ]* [^ ]*' "$work/apt.log" |
  sed 's/^Setting up /  /' || true
echo "== the checks, inside the root, against /usr"
chroot "$root" bash /src/tests/install/test_install.sh /src /src /tmp/check /usr
echo "check-install: the .deb installs and works on a fresh Debian 12 root"

#!/usr/bin/env bash
# test_venv.sh BUILD_DIR SOURCE_DIR TMP_DIR: the Python package installs
# offline into a virtual environment of Debian's Python
# (`python3 -m venv --system-site-packages`, `pip install
# --no-build-isolation --no-index`: setuptools and numpy from Debian, no
# download), and the installed package, imported away from the source tree,
# finds libkmq through the dynamic linker's search and fits.
set -euo pipefail
mkdir -p "$3"
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) tmp=$(cd "$3" && pwd)/venv
rm -rf "$tmp"; mkdir -p "$tmp"
# A copy, so that the build leaves nothing in the source tree.
cp -r "$src/python" "$tmp/python"
/usr/bin/python3 -m venv --system-site-packages "$tmp/env"
"$tmp/env/bin/pip" install --no-build-isolation --no-index --quiet "$tmp/python"
cd "$tmp"
LD_LIBRARY_PATH=$build "$tmp/env/bin/python" - "$tmp/env" <<'PY'
import sys
import numpy as np
import kmq
assert kmq.__file__.startswith(sys.argv[1]), kmq.__file__   # the installed copy
X = np.array([[0, 0, 0], [2, 0, 0], [250, 250, 250], [254, 250, 250]], dtype=np.uint8)
km = kmq.KMeans(2, random_state=0).fit(X)
assert sorted(km.cluster_centers_[:, 0]) == [1.0, 252.0], km.cluster_centers_
assert km.inertia_ == 10.0, km.inertia_  # 1 + 1 + 4 + 4
print(f"venv: kmq {kmq.__version__} from {kmq.__file__}, libkmq {kmq.library_version()}: "
      f"centres {km.cluster_centers_.tolist()}, inertia {km.inertia_}")
PY

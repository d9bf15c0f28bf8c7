#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR TMP_DIR [PREFIX]: what a user of an
# installed kmq gets. Without PREFIX: `cmake --install BUILD_DIR` into a
# staging prefix under TMP_DIR. With PREFIX (scripts/check-install.sh: the
# .deb unpacked into a fresh root): that tree as it is. Then:
#   the installed `kmq run` on the demo job; `man` renders kmq(1) and
#   kmq-job(5), which lists every key of `kmq help keys`; the bash
#   completion completes `kmq qu<TAB>`, options and job files; a C program
#   built with `pkg-config --cflags --libs kmq` fits k-means; the library
#   exports exactly the functions of kmq.h under its soname.
set -euo pipefail
mkdir -p "$3"
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) tmp=$(cd "$3" && pwd)/install
rm -rf "$tmp"; mkdir -p "$tmp"
if [ $# -ge 4 ]; then
  prefix=$4
else
  prefix=$tmp/stage
  cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
fi
ok() { echo "ok: $*"; }

bin=$prefix/bin/kmq
libso=$(find "$prefix" -name 'libkmq.so.0' | head -1)
libdir=$(dirname "$libso")
[ -x "$bin" ] && [ -n "$libso" ] || { echo "FAIL: no bin/kmq or libkmq.so.0 under $prefix"; exit 1; }
ok "installed $(cd "$prefix" && find . -path '*kmq*' \( -type f -o -type l \) | sort | tr '\n' ' ')"

# -- kmq run on the demo job --------------------------------------------------
mkdir -p "$tmp/demo"
sed -e "s|^output *=.*|output = $tmp/demo/out|" -e "s|^input *=.*|input = $src/data/photos|" \
    "$src/configs/demo.ini" > "$tmp/demo/demo.ini"
"$bin" run "$tmp/demo/demo.ini" --quiet
grep -q '"status": "complete"' "$tmp/demo/out/run.json"
[ -s "$tmp/demo/out/photos/china.jpg/k16.png" ] && [ -s "$tmp/demo/out/index.html" ]
ok "kmq run on the demo job: $(ls "$tmp/demo/out/photos" | wc -l) images, run.json complete"

# -- man pages ------------------------------------------------------------------
man1=$(find "$prefix" -path '*man1/kmq.1*' | head -1)
man5=$(find "$prefix" -path '*man5/kmq-job.5*' | head -1)
MANWIDTH=100 man -l "$man1" >"$tmp/kmq.1.txt" 2>"$tmp/man.err"
MANWIDTH=100 man -l "$man5" >"$tmp/kmq-job.5.txt" 2>>"$tmp/man.err"
[ ! -s "$tmp/man.err" ] || { echo "FAIL: man warnings:"; cat "$tmp/man.err"; exit 1; }
grep -q "kmq - exact k-means colour quantization" "$tmp/kmq.1.txt"
grep -q "kmq-job(5)" "$tmp/kmq.1.txt"
# `man kmq` itself, finding the page by name under the prefix.
MANPATH=$(dirname "$(dirname "$man1")") MANWIDTH=100 man kmq 2>/dev/null | grep -q "EXIT STATUS"
# kmq-job(5) lists exactly the keys the installed program knows.
keys=$("$bin" help keys | sed -n 's/^| `\([a-z_]*\)`.*/\1/p')
listed=$(awk '/^KEYS/{on=1; next} /^[A-Z]/{on=0} on && /^       [a-z_]+( |$)/{print $1}' "$tmp/kmq-job.5.txt")
[ "$keys" = "$listed" ] || { echo "FAIL: kmq-job(5) keys differ from kmq help keys:"; diff <(echo "$keys") <(echo "$listed"); exit 1; }
ok "man kmq and man -l kmq-job.5 render; kmq-job(5) lists the $(echo "$keys" | wc -l) keys of kmq help keys"

# -- bash completion ------------------------------------------------------------
comp=$(find "$prefix" -path '*bash-completion/completions/kmq' | head -1)
complete_words() {   # words... (the last is the one being completed)
  (cd "$tmp/demo" && PATH="$prefix/bin:$PATH" bash -c '
    source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kmq; printf "%s\n" "${COMPREPLY[@]}"' \
    "$comp" "$@")
}
[ "$(complete_words kmq qu)" = quantize ] || { echo "FAIL: kmq qu<TAB> gave: $(complete_words kmq qu)"; exit 1; }
complete_words kmq quantize --max-i | grep -qx -- --max-iter
complete_words kmq run de | grep -qx demo.ini
complete_words kmq help k | grep -qx keys
ok "completion: kmq qu<TAB> -> quantize; options; job files"

# -- the C API through pkg-config -----------------------------------------------
pc=$(dirname "$(find "$prefix" -name kmq.pc | head -1)")
flags=$(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs kmq)
cc -std=c11 -Wall -Wextra -Werror -pedantic "$src/tests/install/fit_colours.c" $flags -lm \
   -o "$tmp/fit_colours"
LD_LIBRARY_PATH=$libdir "$tmp/fit_colours"
ok "C program built with pkg-config --cflags --libs kmq ($flags) fits k-means"
if command -v c++ >/dev/null; then
  echo "#include <kmq/kmq.h>" | c++ -x c++ -fsyntax-only -Wall -Werror $(PKG_CONFIG_PATH=$pc pkg-config --cflags kmq) -
  ok "kmq.h compiles as C++"
fi

# -- the Python package finds the installed library ---------------------------
if [ -d "$src/python/kmq" ] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  ldpath=$libdir; [ "$prefix" = /usr ] && ldpath=   # /usr: the ld.so cache finds it
  (cd "$tmp" && env -u KMQ_LIBRARY LD_LIBRARY_PATH=$ldpath PYTHONPATH=$src/python \
     /usr/bin/python3 - "$libdir" <<'PY'
import os, sys
import numpy as np
import kmq
km = kmq.KMeans(2, random_state=0).fit(np.array([[0, 0, 0], [2, 0, 0], [250, 250, 250]], np.uint8))
assert km.inertia_ == 2.0, km.inertia_
with open("/proc/self/maps") as f:
    loaded = {line.split()[-1] for line in f if "libkmq.so" in line}
want = os.path.realpath(os.path.join(sys.argv[1], "libkmq.so.0"))
assert loaded == {want}, (loaded, want)
print(f"ok: the Python package loaded {want} and fits (inertia {km.inertia_})")
PY
  )
fi

# -- the library's ABI ------------------------------------------------------------
[ "$(readelf -d "$libso" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')" = libkmq.so.0 ]
exported=$(nm -D --defined-only "$libso" | awk '$2 == "T" {sub(/@.*/, "", $3); print $3}' | sort)
declared=$(grep -oE 'KMQ_EXPORT [^(]*\b(kmq_[a-z_]+)\(' "$src/include/kmq/kmq.h" |
           sed -E 's/.*\b(kmq_[a-z_]+)\($/\1/' | sort)
[ "$exported" = "$declared" ] || { echo "FAIL: exports differ from kmq.h:"; diff <(echo "$declared") <(echo "$exported"); exit 1; }
ok "libkmq.so.0 exports exactly kmq.h's $(echo "$declared" | wc -l) functions"
echo "install test: all checks passed"

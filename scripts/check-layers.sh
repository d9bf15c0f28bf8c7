#!/usr/bin/env bash
# Enforces the layering of docs/design.md (Layers) from the folders of src/ alone (no table
# of files to keep up to date): a file's layer is its folder's
#
#   src/core (0) -> src/compute, src/kmeans (1) -> src/io (2) -> src/pipeline, src/api (3) -> src/cli (4)
#
# and a public header include/kmq/NAME.h belongs to the folder of the module
# that implements it (src/*/NAME.c or src/*/NAME_*.c). Includes point only
# down; the L2 adapters do not include each other (a module's own split
# files, e.g. job_ini.c -> job.h -> job_internal.h, share the name before
# the first '_'). Also: third-party
# headers live in exactly one adapter each, the library allocates only
# through kmq__alloc*, and only the CLI prints or exits.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "check-layers: $*"; fail=1; }

folder_layer() {   # folder name -> layer number
  case "$1" in
    core) echo 0 ;;
    compute|kmeans) echo 1 ;;
    io) echo 2 ;;
    pipeline|api) echo 3 ;;
    cli) echo 4 ;;
    *) echo 9 ;;
  esac
}

# Every folder of src/ must be a known layer.
for d in src/*/; do
  d=${d%/}; d=${d#src/}
  [ "$(folder_layer "$d")" = 9 ] && bad "src/$d is not a layer folder (core, compute, kmeans, io, pipeline, api, cli)"
done
ls src/*.c src/*.h >/dev/null 2>&1 && bad "files directly in src/: put each in its layer's folder"

# module name -> layer, from where its implementation lives
declare -A module_layer
for f in src/*/*.c src/*/*.h; do
  m=$(basename "$f"); m=${m%.*}
  module_layer[$m]=$(folder_layer "$(basename "$(dirname "$f")")")
done
layer_of_header() {   # "kmq/hist.h" or "internal.h" -> layer (9: unknown)
  local m; m=$(basename "$1" .h)
  if [ -n "${module_layer[$m]:-}" ]; then echo "${module_layer[$m]}"; return; fi
  for f in src/*/"$m"_*.c; do
    [ -e "$f" ] && { folder_layer "$(basename "$(dirname "$f")")"; return; }
  done
  # alloc_hook.h is a part of alloc: strip trailing _words until a module matches.
  while [[ $m == *_* ]]; do
    m=${m%_*}
    if [ -n "${module_layer[$m]:-}" ]; then echo "${module_layer[$m]}"; return; fi
  done
  echo 9
}

for f in src/*/*.c src/*/*.h include/kmq/*.h; do
  mod=$(basename "$f"); mod=${mod%.*}
  if [[ $f == include/* ]]; then mine=$(layer_of_header "$f"); else mine=$(folder_layer "$(basename "$(dirname "$f")")"); fi
  while IFS= read -r inc; do
    dep=$(basename "$inc" .h)
    [ "$dep" = "$mod" ] && continue
    theirs=$(layer_of_header "$inc")
    [ "$theirs" = 9 ] && { bad "$f includes $inc, which no layer folder implements"; continue; }
    if [ "$theirs" -gt "$mine" ]; then
      bad "$f includes $inc (layer $theirs) from layer $mine"
    elif [ "$theirs" -eq "$mine" ] && [ "$mine" -eq 2 ] && [ "${mod%%_*}" != "${dep%%_*}" ]; then
      bad "$f includes sibling adapter $inc"
    fi
  done < <(grep -oE '#include "(kmq/)?[a-z0-9_]+\.h"' "$f" | sed -E 's/#include "(.*)"/\1/')
done

only_in() {   # header, allowed files (an extended regex matching whole paths)
  local hits
  hits=$(grep -lE "#include <$1>" src/*/*.c src/*/*.h include/kmq/*.h 2>/dev/null | grep -vxE "$2" || true)
  [ -n "$hits" ] && bad "<$1> may only be included by $2, found in: $hits"
}
only_in 'vips/vips.h' 'src/io/image_vips\.c'
only_in 'png.h' 'src/io/pngout\.c'
# The summary module is split by job into src/io/summary_*.c around the
# private summary_internal.h; those files, and no other, hold the adapter.
only_in 'jansson.h' 'src/io/summary_[a-z]+\.[ch]'

# A private header NAME_internal.h serves only its own module's files
# (NAME.c, NAME_*.c, NAME_*.h beside it), so a third-party header that it
# includes (summary_internal.h: <jansson.h>) reaches no other file either.
for h in src/*/*_internal.h; do
  m=$(basename "$h" _internal.h)
  hits=$(grep -lF "#include \"$(basename "$h")\"" src/*/*.c src/*/*.h include/kmq/*.h 2>/dev/null |
         grep -vxE "$(dirname "$h")/$m(_[a-z0-9_]+)?\.[ch]" || true)
  [ -n "$hits" ] && bad "$h is private to its module, found in: $hits"
done

lib=$(ls src/*/*.c | grep -v '^src/cli/')
hits=$(grep -nE '\b(malloc|calloc|realloc|strdup)\s*\(' $lib | grep -v '^src/core/alloc.c:' || true)
[ -n "$hits" ] && bad "plain allocation in the library (use kmq__alloc*):"$'\n'"$hits"
hits=$(grep -nE '\b(printf|perror|exit|abort)\s*\(' $lib | grep -vE 'snprintf|vsnprintf|asprintf' || true)
[ -n "$hits" ] && bad "printing or exiting in the library (only src/cli may):"$'\n'"$hits"
hits=$(grep -nE '\bomp_[a-z_]+\s*\(' $lib | grep -v '^src/core/par.c:' || true)
[ -n "$hits" ] && bad "omp_* outside par.c (use par.h):"$'\n'"$hits"

[ "$fail" -eq 0 ] && echo "check-layers: ok"
exit "$fail"

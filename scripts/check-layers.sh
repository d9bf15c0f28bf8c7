#!/usr/bin/env bash
# Enforces STYLE.md §1: includes point only down the layer stack, third-party
# headers live in exactly one adapter each, the library allocates only
# through kmq__alloc*, and only the CLI prints or exits.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "check-layers: $*"; fail=1; }

layer_of() {   # module name -> layer number
  case "$1" in
    error|formats|par|rng|alloc|alloc_hook|fsx|strbuf|internal) echo 0 ;;
    hist|hist_internal|kmeans|kmeans_init|kmeans_f32|labels|elbow|preview) echo 1 ;;
    image|image_vips|pngout|job|job_ini|job_internal|summary|summary_json|plot|plot_svg) echo 2 ;;
    runner|runner_plots|strip_reader|report|report_html|report_internal) echo 3 ;;
    kmq) echo 4 ;;
    *) echo 9 ;;
  esac
}
header_module() {   # "kmq/hist.h" -> hist
  basename "$1" .h
}

for f in src/*.c src/*.h include/kmq/*.h; do
  mod=$(basename "$f"); mod=${mod%.*}
  mine=$(layer_of "$mod")
  while IFS= read -r inc; do
    dep=$(header_module "$inc")
    theirs=$(layer_of "$dep")
    [ "$dep" = "$mod" ] && continue
    # Own header of a split module (job_ini.c -> job.h, image_vips.c -> image.h ...)
    case "$mod:$dep" in
      job_ini:job|job_ini:job_internal|job:job_internal|job_internal:job|image_vips:image|summary_json:summary|plot_svg:plot|kmeans_init:kmeans|report:runner) continue ;;
    esac
    if [ "$theirs" -gt "$mine" ]; then
      bad "$f includes $inc (layer $theirs) from layer $mine"
    elif [ "$theirs" -eq "$mine" ] && [ "$mine" -eq 2 ]; then
      bad "$f includes sibling adapter $inc"
    fi
  done < <(grep -oE '#include "(kmq/)?[a-z_]+\.h"' "$f" | sed -E 's/#include "(.*)"/\1/')
done

only_in() {   # header, allowed file
  local hits
  hits=$(grep -lE "#include <$1>" src/*.c src/*.h src/cli/*.c include/kmq/*.h 2>/dev/null | grep -v "^$2\$" || true)
  [ -n "$hits" ] && bad "<$1> may only be included by $2, found in: $hits"
}
only_in 'vips/vips.h' src/image_vips.c
only_in 'png.h' src/pngout.c
only_in 'ini.h' src/job_ini.c
only_in 'jansson.h' src/summary_json.c

hits=$(grep -nE '\b(malloc|calloc|realloc|strdup)\s*\(' src/*.c | grep -v '^src/alloc.c:' || true)
[ -n "$hits" ] && bad "plain allocation in the library (use kmq__alloc*):"$'\n'"$hits"
hits=$(grep -nE '\b(printf|perror|exit|abort)\s*\(' src/*.c | grep -vE 'snprintf|vsnprintf|asprintf' || true)
[ -n "$hits" ] && bad "printing or exiting in the library (only src/cli may):"$'\n'"$hits"
hits=$(grep -nE '\bomp_[a-z_]+\s*\(' src/*.c | grep -v '^src/par.c:' || true)
[ -n "$hits" ] && bad "omp_* outside par.c (use par.h):"$'\n'"$hits"

[ "$fail" -eq 0 ] && echo "check-layers: ok"
exit "$fail"

#!/bin/sh
# make-job-man.sh KMQ TEMPLATE OUT VERSION [DOCDIR]: writes kmq-job(5) to OUT, the
# line @KEYS@ of TEMPLATE replaced by the key table that `KMQ help keys`
# prints (a Markdown table), one .TP entry per key. Run by the build, so
# the page lists exactly the keys of the program it is installed with.
set -eu
kmq=$1 template=$2 out=$3 version=$4 docdir=${5:-/usr/share/doc/kmq}
keys=$(ASAN_OPTIONS=detect_leaks=0 "$kmq" help keys)
tmp=$out.tmp
mkdir -p "$(dirname "$out")"
printf '%s\n' "$keys" | awk -v template="$template" -v version="$version" -v docdir="$docdir" '
function roff(s) {            # escape for roff text
  gsub(/\\/, "\\e", s)
  gsub(/\001/, "|", s)
  gsub(/`/, "", s)
  gsub(/-/, "\\-", s)
  if (s ~ /^[.\047]/) s = "\\&" s
  return s
}
function trim(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }
/^\| `/ {
  line = $0
  gsub(/\\\|/, "\001", line)       # an escaped | inside a cell
  n = split(line, cell, "|")         # cell[1] and cell[n] are empty
  key = trim(cell[2]); gsub(/`/, "", key)
  table = table ".TP\n.B " key "\n"
  table = table "Section: " roff(trim(cell[3])) ". Value: " roff(trim(cell[4])) ". Default: " roff(trim(cell[5])) ".\n.br\n"
  table = table roff(trim(cell[6])) "\n"
  count++
}
END {
  if (count == 0) { print "make-job-man.sh: no keys in the output of kmq help keys" > "/dev/stderr"; exit 1 }
  while ((getline l < template) > 0) {
    gsub(/@VERSION@/, version, l); gsub(/@DOCDIR@/, docdir, l)
    if (l == "@KEYS@") printf "%s", table; else print l
  }
}' > "$tmp"
mv "$tmp" "$out"

#!/bin/sh
# What .editorconfig and doc/design.md promise of the sources, checked:
# no tabs (C, headers, meson, shell), no trailing blanks, a final newline,
# and no function longer than 80 lines in lib/ or 120 in apps/ (from the
# line that starts its declaration to its closing brace); and, where
# clang-format 14 (Debian 12's) is installed, that every C file is laid out
# as .clang-format says (with another version the layout is not checked:
# versions format differently). To format: tools/check-style.sh --fix
# usage: tools/check-style.sh [--fix] [SOURCE_ROOT]   exit 0: clean, 1: listed
set -eu
fix=0
if [ "${1:-}" = --fix ]; then fix=1; shift; fi
cd "${1:-$(dirname "$0")/..}"
cfmt=""
for c in clang-format-14 clang-format; do
  if command -v $c >/dev/null 2>&1 && $c --version | grep -q 'version 14\.'; then cfmt=$c; break; fi
done
files=$(find lib apps include tests examples bench fuzz tools -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name meson.build \) | sort)
fail=0
for f in $files meson.build meson_options.txt; do
  if grep -n "$(printf '\t')" "$f" >/dev/null; then
    echo "$f: a tab (indent with spaces)"; fail=1
  fi
  if grep -n ' $' "$f" >/dev/null; then
    echo "$f:$(grep -n ' $' "$f" | head -1 | cut -d: -f1): trailing blanks"; fail=1
  fi
  if [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ]; then
    echo "$f: no newline at the end"; fail=1
  fi
done
# A function: a line at column 0 opens with "{", its declaration starts at
# the closest line above that does not begin with a blank; it ends at the
# next "}" at column 0.
for f in $(echo "$files" | grep -E '^(lib|apps)/.*\.[ch]$'); do
  case $f in lib/*) limit=80 ;; *) limit=120 ;; esac
  awk -v f="$f" -v limit="$limit" '
    { line[NR] = $0 }
    $0 == "{" { open = NR; start = NR - 1
                while (start > 1 && line[start] ~ /^[ \t]/) start--
                name = line[start]; sub(/\(.*/, "", name); n = split(name, w, /[ *]+/); name = w[n] }
    $0 == "}" && open { len = NR - start + 1
                        if (len > limit) { printf "%s:%d: %s is %d lines (at most %d)\n", f, start, name, len, limit; bad = 1 }
                        open = 0 }
    END { exit bad }' "$f" || fail=1
done
cfiles=$(echo "$files" | grep -E '\.[ch]$')
if [ -z "$cfmt" ]; then
  echo "style: clang-format 14 not found: the layout is not checked"
elif [ $fix -eq 1 ]; then
  # shellcheck disable=SC2086
  $cfmt -i $cfiles
else
  for f in $cfiles; do
    if ! $cfmt --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "$f:$($cfmt "$f" | diff "$f" - | head -1 | sed 's/[a-z].*//'): not as .clang-format lays it out (tools/check-style.sh --fix)"
      fail=1
    fi
  done
fi
[ $fail -eq 0 ] && echo "style: clean ($(echo "$files" | wc -l) files${cfmt:+, laid out as .clang-format says})"
exit $fail

#!/bin/sh
# Symbol hygiene and header self-sufficiency.
# usage: test-abi.sh LIBNSDE.so SRC_INCLUDE BUILD_INCLUDE CC
set -eu
lib=$1 src_inc=$2 build_inc=$3 cc=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# 1. Exported symbols are exactly the functions the public headers declare.
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u >"$tmp/exported"
grep -hv '^[[:space:]]*#' "$src_inc"/nsde/*.h | tr '\n' ' ' | grep -o 'NSDE_API [^;{]*(' |
  sed -E 's/.*[ *](nsde_[a-z0-9_]+) *\($/\1/' | sort -u >"$tmp/declared"
if grep -v '^nsde_' "$tmp/exported"; then
  echo "FAIL: symbols without the nsde_ prefix are exported"; fail=1
fi
if ! diff -u "$tmp/declared" "$tmp/exported"; then
  echo "FAIL: exported symbols differ from the header declarations"; fail=1
fi
[ -s "$tmp/declared" ] || { echo "FAIL: found no declarations"; fail=1; }

# 1b. The version script names every public symbol exactly once, by name
# (no wildcard), and every exported symbol carries its release's node.
map=$src_inc/../lib/libnsde.map
sed -e 's|/\*.*\*/||' "$map" | tr -s ' \t' '\n\n' | grep -E '^nsde_[a-z0-9_]+;$' | tr -d ';' | sort >"$tmp/mapped"
if grep -q '^[[:space:]]*nsde_\*' "$map" || ! diff -u "$tmp/declared" "$tmp/mapped"; then
  echo "FAIL: lib/libnsde.map does not list exactly the declared symbols by name"; fail=1
fi
if [ "$(sort "$tmp/mapped" | uniq -d)" != "" ]; then
  echo "FAIL: a symbol stands in two nodes of lib/libnsde.map"; fail=1
fi
if nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '@@*NSDE_[0-9]' | grep .; then
  echo "FAIL: exported symbols without a version node"; fail=1
fi

# 1c. Every public function's comment says since when it exists (@since X.Y),
# and X.Y is the release node that exports it; every call that returns an
# enum nsde_status lists what it can return (@return; a deprecated alias may
# point to its replacement instead).
awk '/^NSDE_[0-9.]+ \{/ { v = substr($1, 6) } /^ +nsde_[a-z0-9_]+;/ { s = $1; sub(/;/, "", s); print s, v }' \
  "$map" >"$tmp/nodes"
for h in "$src_inc"/nsde/*.h; do
  awk -v h="$(basename "$h")" -v nodes="$tmp/nodes" '
    BEGIN { while ((getline l < nodes) > 0) { split(l, a, " "); node[a[1]] = a[2] } }
    /\/\*\*/ { inc = 1; com = "" }
    inc { com = com " " $0 }
    /\*\// { if (inc) { inc = 0; last = NR } }
    /^NSDE_API/ {
      line = $0; if ($0 !~ /\(/) { getline nxt; line = line " " nxt }
      if (!match(line, /nsde_[a-z0-9_]+ *\(/)) next
      name = substr(line, RSTART, RLENGTH); sub(/ *\($/, "", name)
      since = ""
      if (last == NR - 1 || last == NR - 2) if (match(com, /@since [0-9]+\.[0-9]+/)) since = substr(com, RSTART + 7, RLENGTH - 7)
      if (since == "") { print "FAIL: " h ": " name " has no @since"; bad = 1 }
      else if (since != node[name]) { print "FAIL: " h ": " name " says @since " since ", exported in NSDE_" node[name]; bad = 1 }
      type = substr(line, 1, index(line, name) - 1)
      if (type ~ /enum nsde_status/ && !(last == NR - 1 || last == NR - 2) ||
          type ~ /enum nsde_status/ && com !~ /@return/ && com !~ /@deprecated/) {
        print "FAIL: " h ": " name " returns a status but its comment has no @return list"; bad = 1
      }
    }
    END { exit bad }' "$h" || fail=1
done

# 1d. Every status a comment names exists.
grep -o 'NSDE_ERR_[A-Z_]*' "$src_inc"/nsde/*.h | sed 's/.*://' | sort -u >"$tmp/named"
sed -n 's/^ *X(\(NSDE_[A-Z_]*\),.*/\1/p' "$src_inc/nsde/nsde-core.h" | sort -u >"$tmp/statuses"
if [ ! -s "$tmp/statuses" ] || comm -23 "$tmp/named" "$tmp/statuses" | grep .; then
  echo "FAIL: the headers name statuses that do not exist (above)"; fail=1
fi

# 1e. debian/libnsde1.symbols promises exactly the map: every symbol with
# its node, every node, for the SONAME the library has.
deb=$src_inc/../debian/libnsde1.symbols
if [ -f "$deb" ]; then
  { awk '{ print $1 "@NSDE_" $2 }' "$tmp/nodes"; awk '{ print "NSDE_" $2 "@NSDE_" $2 }' "$tmp/nodes"; } |
    sort -u >"$tmp/deb-want"
  sed -n 's/^ \([A-Za-z0-9_.]*@[A-Za-z0-9_.]*\) .*/\1/p' "$deb" | sort >"$tmp/deb-have"
  soname=$(readelf -d "$lib" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
  if ! diff -u "$tmp/deb-want" "$tmp/deb-have" || ! head -n 1 "$deb" | grep -q "^$soname libnsde1 "; then
    echo "FAIL: debian/libnsde1.symbols differs from lib/libnsde.map or the SONAME ($soname)"; fail=1
  fi
fi

# 2. Every public header compiles alone as C99 (pedantic) and as C++.
for h in "$src_inc"/nsde/*.h; do
  name=$(basename "$h")
  printf '#include <nsde/%s>\nint main(void) { return 0; }\n' "$name" >"$tmp/t.c"
  if ! "$cc" -std=c99 -pedantic -Werror -Wall -Wextra -I"$src_inc" -I"$build_inc" -c "$tmp/t.c" -o "$tmp/t.o"; then
    echo "FAIL: $name does not compile alone as C99"; fail=1
  fi
  if command -v c++ >/dev/null 2>&1; then
    cp "$tmp/t.c" "$tmp/t.cpp"
    if ! c++ -std=c++11 -pedantic -Werror -Wall -I"$src_inc" -I"$build_inc" -c "$tmp/t.cpp" -o "$tmp/t.o"; then
      echo "FAIL: $name does not compile as C++"; fail=1
    fi
  fi
done
n=$(wc -l <"$tmp/exported")
[ $fail -eq 0 ] && echo "ok: $n exported nsde_ symbols match the headers; headers compile alone"
exit $fail

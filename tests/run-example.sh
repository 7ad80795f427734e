#!/bin/sh
# Run an example and compare what it prints with its recorded output:
# word by word, numbers to 1e-3 relative (two numbers both below 1e-10 in
# size agree: rounding-level errors), "~" in the record matches any word
# (a value that depends on the CPU's rounding, such as a finite-difference
# error). The example's own exit status must be 0 too.
# usage: run-example.sh EXPECTED PROGRAM [ARGS...]
set -eu
expected=$1
shift
out=$("$@") || { echo "FAIL: $* exited with status $?"; printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" >"${TMPDIR:-/tmp}/run-example.$$"
if awk -v got="${TMPDIR:-/tmp}/run-example.$$" '
  function num(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[,;)]?$/ }
  function val(s) { sub(/[,;)]$/, "", s); return s + 0 }
  {
    if ((getline line < got) <= 0) { print "FAIL: output ends before line " NR; bad = 1; exit }
    n = split($0, e, /[ \t(]+/); m = split(line, g, /[ \t(]+/)
    if (n != m) { print "FAIL: line " NR ": expected \"" $0 "\", got \"" line "\""; bad = 1; next }
    for (i = 1; i <= n; i++) {
      if (e[i] == "~" || e[i] == g[i]) continue
      if (num(e[i]) && num(g[i])) {
        a = val(e[i]); b = val(g[i]); d = a - b; if (d < 0) d = -d
        s = (a < 0 ? -a : a); t = (b < 0 ? -b : b); if (t > s) s = t
        if (d <= 1e-3 * s || s < 1e-10) continue
      }
      print "FAIL: line " NR ", word " i ": expected \"" e[i] "\", got \"" g[i] "\""; bad = 1
    }
  }
  END { if (!bad && (getline line < got) > 0) { print "FAIL: extra output: " line; bad = 1 }
        exit bad }' "$expected"; then
  rm -f "${TMPDIR:-/tmp}/run-example.$$"
  echo "ok: $(basename "$1") prints its recorded output"
else
  echo "--- got:"; cat "${TMPDIR:-/tmp}/run-example.$$"; rm -f "${TMPDIR:-/tmp}/run-example.$$"
  exit 1
fi

#!/bin/sh
# The attack protocols of tools/cifar-attacks.sh summarised like the runs
# themselves: each protocol folder (pgd-eot8, pgd-noise-off, pgd-check-base,
# pgd-check-strong, ...) under the run folders NOISE-sSEED of RUNS_DIR is
# gathered into RUNS_DIR/protocols/NAME/NOISE-sSEED (symbolic links), and
# tools/cifar-summary.sh and tools/cifar-paired.sh are run there, into
# RUNS_DIR/protocols/NAME/summary.md and paired.md (the tables of doc/results.md).
# Then the strength check (CHECK=1): per model and eps, the accuracy with 100
# steps and 5 restarts (pgd-check-strong) against 50 steps (pgd-check-base)
# on the same images; the attack is strong enough where the stronger one
# lowers the accuracy by less than one standard error (binomial, at the base
# accuracy, sqrt(p (1 - p) / images)).
# usage: tools/cifar-protocols.sh RUNS_DIR   (prints the check's table)
set -eu
[ $# -eq 1 ] || { echo "usage: $0 RUNS_DIR" >&2; exit 2; }
out=$1
here=$(dirname "$0")
names=$(for d in "$out"/*-s[0-9]*/*/; do
  [ -f "$d/eval.done" ] && basename "$d"
done | sort -u)
[ -n "$names" ] || { echo "$0: no finished protocol folders under $out/*-s*/" >&2; exit 1; }
for name in $names; do
  v=$out/protocols/$name
  rm -rf "$v"
  mkdir -p "$v"
  for d in "$out"/*-s[0-9]*; do
    [ -f "$d/$name/eval.done" ] && ln -s "$(cd "$d/$name" && pwd)" "$v/$(basename "$d")"
  done
  sh "$here/cifar-summary.sh" "$v" >"$v/summary.md" 2>"$v/summary.err" || {
    echo "$0: cifar-summary.sh failed on $v:" >&2
    cat "$v/summary.err" >&2
    exit 1
  }
  sh "$here/cifar-paired.sh" "$v" >"$v/paired.md"
  echo "$name: $v/summary.md, $v/paired.md"
done
printf '\n| model | eps | 50 steps | 100 steps, 5 restarts | drop | 1 SE | check |\n|---|---|---|---|---|---|---|\n'
for d in "$out"/*-s[0-9]*; do
  b=$d/pgd-check-base/attack.csv s=$d/pgd-check-strong/attack.csv
  { [ -f "$b" ] && [ -f "$s" ]; } || continue
  awk -F, -v m="$(basename "$d")" '
    FNR == 1 || $2 == 0 { next }
    FILENAME == ARGV[1] { base[$1, $2] = $3; n[$1, $2] = $6; next }
    ($1, $2) in base {
      p = base[$1, $2]; se = sqrt(p * (1 - p) / n[$1, $2]); drop = p - $3
      printf "| %s | %s | %.4f | %.4f | %+.4f | %.4f | %s |\n", m, $2, p, $3, drop, se,
             drop < se || drop <= 0 ? "strong enough" : "too weak"
    }' "$b" "$s"
done

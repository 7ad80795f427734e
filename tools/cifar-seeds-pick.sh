#!/bin/sh
# Which models of the paper's regime get seeds 2 and 3 (doc/results.md's
# rule, fixed before the full runs): the ODE and every SDE whose clean or
# PGD difference with the ODE is not settled at two standard errors. With
# one seed per model the standard error is the paired one over the test
# images (tools/cifar-paired.sh): an SDE noise type is settled when its
# clean row (noise off) in CLEAN_MD and every PGD row (pgd@EPS, eps > 0) in
# PGD_MD have a verdict other than "no difference"; a noise type with no such
# row is not settled either. The ODE gets seeds 2 and 3 when any SDE does.
# Prints a table and the RUNS of the new runs (empty when all are settled).
# usage: RUNS="noise:sigma:1 ..." tools/cifar-seeds-pick.sh CLEAN_MD PGD_MD
#   CLEAN_MD: cifar-paired.sh on the seed-1 runs; PGD_MD: the same on the
#   attack protocol's folders (tools/cifar-protocols.sh, protocols/pgd-eot8)
set -eu
[ $# -eq 2 ] || { echo "usage: RUNS=... $0 CLEAN_MD PGD_MD" >&2; exit 2; }
[ -n "${RUNS:-}" ] || { echo "$0: RUNS names the seed-1 runs (noise:sigma:1 ...)" >&2; exit 2; }
for f in "$1" "$2"; do [ -f "$f" ] || { echo "$0: no $f" >&2; exit 1; }; done
awk -F'|' -v runs="$RUNS" '
  function trim(s) { gsub(/^ +| +$/, "", s); return s }
  # the noise type of a "noise (seeds)" cell
  function noise(s) { s = trim(s); sub(/ \(.*$/, "", s); return s }
  FILENAME == ARGV[1] && trim($2) == "clean (noise off), SDE - ODE" {
    z = noise($3); nc[z]++; if (trim($7) == "no difference") open_[z] = open_[z] " clean" }
  FILENAME == ARGV[2] && trim($2) ~ /^pgd@/ {
    z = noise($3); np[z]++; e = trim($2); sub(/,.*$/, "", e)
    if (trim($7) == "no difference") open_[z] = open_[z] " " e }
  END {
    n = split(runs, r, " ")
    print "| SDE noise | clean rows | PGD rows | not settled | seeds 2 and 3 |"
    print "|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
      split(r[i], f, ":"); z = f[1]
      if (z == "ode") continue
      un = nc[z] == 0 || np[z] == 0 || open_[z] != ""
      printf "| %s | %d | %d | %s | %s |\n", z, nc[z], np[z],
             open_[z] != "" ? trim(open_[z]) : nc[z] == 0 || np[z] == 0 ? "(no rows)" : "-", un ? "yes" : "no"
      if (un) { more = more " " z ":" f[2] ":2 " z ":" f[2] ":3"; any = 1 }
    }
    if (any) more = "ode:0:2 ode:0:3" more
    printf "RUNS=\"%s\"\n", more
  }' "$1" "$2"

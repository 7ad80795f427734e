#!/bin/sh
# Summarise the runs of tools/cifar-results.sh as the markdown tables of
# doc/results.md: per model, the mean over seeds, the standard error over
# seeds (sd / sqrt(seeds)) and the binomial standard error of the pooled
# accuracy (sqrt(p (1 - p) / (images x seeds))).
# usage: tools/cifar-summary.sh OUT_DIR
set -eu
out=$1
for model in ode sde; do
  for d in "$out/$model"-seed*; do
    [ -d "$d" ] || continue
    awk -F, -v m=$model '
      FILENAME ~ /summary.csv$/ && $1 == "images" { n = $2 }
      FILENAME ~ /summary.csv$/ && $1 == "clean_accuracy" { print m, "clean", $2, n }
      FILENAME ~ /summary.csv$/ && $1 == "ttn_accuracy" { print m, "ttn", $2, n }
      FILENAME ~ /attack.csv$/ && FNR > 1 && $2 > 0 { print m, $1 "@" $2, $3, an }
      FILENAME ~ /attack.csv$/ && FNR == 1 { an = 100 }
      FILENAME ~ /corruption.csv$/ && FNR > 1 { s[$1] += $3; k[$1]++ }
      END { for (v in s) print m, "corrupt@" v, s[v] / k[v], 500 * k[v] }' \
      "$d/summary.csv" "$d/attack.csv" "$d/corruption.csv"
  done
done | awk '
  { key = $1 " " $2; sum[key] += $3; sq[key] += $3 * $3; cnt[key]++; tot[key] += $4; seen[$2] = 1 }
  END {
    printf "| metric | ODE mean | SE seeds | SE binom | SDE mean | SE seeds | SE binom |\n|---|---|---|---|---|---|---|\n"
    n = 0
    for (mt in seen) order[++n] = mt
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (order[j] < order[i]) { t = order[i]; order[i] = order[j]; order[j] = t }
    for (i = 1; i <= n; i++) {
      mt = order[i]; line = "| " mt
      for (mi = 1; mi <= 2; mi++) {
        m = mi == 1 ? "ode" : "sde"; key = m " " mt; c = cnt[key]
        if (c == 0) { line = line " | - | - | -"; continue }
        mu = sum[key] / c; var = c > 1 ? (sq[key] - c * mu * mu) / (c - 1) : 0
        if (var < 0) var = 0
        line = line sprintf(" | %.4f | %.4f | %.4f", mu, sqrt(var / c), sqrt(mu * (1 - mu) / tot[key]))
      }
      print line " |"
    }
  }'

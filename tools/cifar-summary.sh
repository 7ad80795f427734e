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

# curves averaged over seeds, and PNG plots next to the runs (not committed)
for model in ode sde; do
  cat "$out/$model"-seed*/attack.csv 2>/dev/null | awk -F, '$1 != "method" { k = $1 " " $2; s[k] += $3; n[k]++ }
    END { for (k in s) print k, s[k] / n[k] }' | sort -k1,1 -k2,2n >"$out/$model-attack.dat"
  for d in "$out/$model"-seed*; do
    awk -F, 'NR > 1 { s[$1] += $3; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' "$d/corruption.csv"
  done | awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' | sort -n >"$out/$model-corruption.dat"
  cat "$out/$model"-seed*/hidden.csv 2>/dev/null | awk -F, '$1 != "t" { s[$1] += $2; n[$1]++ }
    END { for (k in s) print k, s[k] / n[k] }' | sort -n >"$out/$model-hidden.dat"
done
if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "set terminal png size 800,500; set output '$out/attack.png'; set key top right;
    set title 'CIFAR-10, l2 attacks (mean over seeds)'; set xlabel 'eps'; set ylabel 'accuracy';
    plot '< grep ^authors $out/ode-attack.dat' u 2:3 w lp lw 2 t 'ODE, authors',
         '< grep ^authors $out/sde-attack.dat' u 2:3 w lp lw 2 t 'SDE, authors',
         '< grep ^pgd $out/ode-attack.dat' u 2:3 w lp lw 2 dt 2 t 'ODE, PGD',
         '< grep ^pgd $out/sde-attack.dat' u 2:3 w lp lw 2 dt 2 t 'SDE, PGD'"
  gnuplot -e "set terminal png size 800,500; set output '$out/corruption.png'; set key top right;
    set title 'CIFAR-10, corruptions (mean over families and seeds)'; set xlabel 'severity'; set ylabel 'accuracy';
    plot '$out/ode-corruption.dat' w lp lw 2 t 'ODE', '$out/sde-corruption.dat' w lp lw 2 t 'SDE'"
  gnuplot -e "set terminal png size 800,500; set output '$out/hidden.png'; set key top left;
    set title 'CIFAR-10, hidden-state perturbation, eps 0.1 (Fig. 4)'; set xlabel 't'; set ylabel 'eps_t';
    plot '$out/ode-hidden.dat' w l lw 2 t 'ODE', '$out/sde-hidden.dat' w l lw 2 t 'SDE'"
fi

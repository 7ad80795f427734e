#!/bin/sh
# Summarise the runs of tools/cifar-results.sh (directories NOISE-sSEED) as
# the markdown tables of doc/results.md and check the paper's claims.
# Per noise type and metric: the mean over seeds, the standard error over
# seeds (sd / sqrt(seeds), when there are at least 2) and the binomial
# standard error of the pooled accuracy (sqrt(p (1 - p) / (images x seeds)));
# for the perturbation eps_T of Fig. 4, the standard error over the images.
# A claim "SDE better than ODE" holds when the difference of the means exceeds
# two standard errors of the difference (over seeds where both have >= 2
# seeds, else binomial over images). Also writes curve files and PNG plots
# into OUT_DIR (not committed).
# usage: tools/cifar-summary.sh OUT_DIR
set -eu
out=$1
rows=$out/summary-rows.txt
: >"$rows"
for d in "$out"/*-s[0-9]*; do
  [ -f "$d/eval.done" ] || continue
  noise=$(basename "$d" | sed 's/-s[0-9]*$//')
  awk -F, -v m="$noise" '
    FILENAME ~ /summary.csv$/ && $1 == "images" { n = $2 }
    FILENAME ~ /summary.csv$/ && $1 == "clean_accuracy" { print m, "clean", $2, n }
    FILENAME ~ /summary.csv$/ && $1 == "ttn_accuracy" { print m, "ttn", $2, n }
    FILENAME ~ /attack.csv$/ && FNR > 1 && $2 > 0 { print m, $1 "@" $2, $3, $6 }
    FILENAME ~ /corruption.csv$/ && FNR > 1 && $1 > 0 { s[$1] += $3; k[$1]++; ni[$1] = $5 }
    FILENAME ~ /hidden.csv$/ && FNR > 1 { last = $2; lse = $3 }
    END { for (v = 1; v <= 5; v++) if (v in s) print m, "corrupt@" v, s[v] / k[v], ni[v]
          print m, "hidden_eps_T", last, 0, lse }' \
    "$d/summary.csv" "$d/attack.csv" "$d/corruption.csv" "$d/hidden.csv" >>"$rows"
done
awk '
  { key = $1 SUBSEP $2; sum[key] += $3; sq[key] += $3 * $3; cnt[key]++; tot[key] += $4
    if (NF >= 5 && $5 != "nan") se2[key] += $5 * $5
    if (!($2 in seenm)) { seenm[$2] = 1; order[++nm] = $2 }
    if (!($1 in seenn)) { seenn[$1] = 1 } }
  function stat(m, mt,   key, c) {
    key = m SUBSEP mt; c = cnt[key]
    if (c == 0) return 0
    MU = sum[key] / c; VAR = c > 1 ? (sq[key] - c * MU * MU) / (c - 1) : -1
    SES = VAR >= 0 ? sqrt((VAR > 0 ? VAR : 0) / c) : -1
    SEB = tot[key] > 0 ? sqrt(MU * (1 - MU) / tot[key]) : (key in se2 ? sqrt(se2[key]) / c : -1)
    C = c
    return 1
  }
  END {
    split("ode additive multiplicative dropout", nz, " ")
    printf "| metric |"
    for (i = 1; i <= 4; i++) if (nz[i] in seenn) printf " %s: mean (SE seeds, SE images, seeds) |", nz[i]
    printf "\n|---|"
    for (i = 1; i <= 4; i++) if (nz[i] in seenn) printf "---|"
    printf "\n"
    for (j = 1; j <= nm; j++) {
      mt = order[j]; printf "| %s |", mt
      for (i = 1; i <= 4; i++) {
        if (!(nz[i] in seenn)) continue
        if (!stat(nz[i], mt)) { printf " - |"; continue }
        a = SES >= 0 ? sprintf("%.4f", SES) : "-"
        b = SEB >= 0 ? sprintf("%.4f", SEB) : "-"
        printf " %.4f (%s, %s, %d) |", MU, a, b, C
      }
      printf "\n"
    }
    # the claims: each SDE noise type against the ODE
    printf "\n| claim (metric) | SDE noise | SDE - ODE | 2 SE | verdict |\n|---|---|---|---|---|\n"
    for (j = 1; j <= nm; j++) {
      mt = order[j]
      if (!stat("ode", mt)) continue
      om = MU; os = SES; ob = SEB; oc = C
      for (i = 2; i <= 4; i++) {
        if (!stat(nz[i], mt)) continue
        d = MU - om
        se = (SES >= 0 && os >= 0) ? sqrt(SES * SES + os * os) : (SEB >= 0 && ob >= 0) ? sqrt(SEB * SEB + ob * ob) : -1
        better = mt == "hidden_eps_T" ? -d : d   # a smaller perturbation is better
        v = se < 0 ? "no standard error" : better > 2 * se ? "SDE better" : better < -2 * se ? "SDE worse" : "no difference at 2 SE"
        printf "| %s | %s | %+.4f | %s | %s |\n", mt, nz[i], d, se < 0 ? "-" : sprintf("%.4f", 2 * se), v
      }
    }
  }' "$rows"

# curves averaged over seeds, and PNG plots next to the runs
for noise in ode additive multiplicative dropout; do
  ls -d "$out/$noise"-s[0-9]* >/dev/null 2>&1 || continue
  cat "$out/$noise"-s*/attack.csv 2>/dev/null | awk -F, '$1 != "method" { k = $1 " " $2; s[k] += $3; n[k]++ }
    END { for (k in s) print k, s[k] / n[k] }' | sort -k1,1 -k2,2n >"$out/$noise-attack.dat"
  for d in "$out/$noise"-s*; do
    [ -f "$d/corruption.csv" ] || continue
    awk -F, 'NR > 1 { s[$1] += $3; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' "$d/corruption.csv"
  done | awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' | sort -n >"$out/$noise-corruption.dat"
  cat "$out/$noise"-s*/hidden.csv 2>/dev/null | awk -F, '$1 != "t" { s[$1] += $2; n[$1]++ }
    END { for (k in s) print k, s[k] / n[k] }' | sort -n >"$out/$noise-hidden.dat"
  for d in "$out/$noise"-s*; do
    [ -f "$d/train.csv" ] && awk -F, -v s="$(basename "$d")" 'NR > 1 { print $1, $4, s }' "$d/train.csv"
  done >"$out/$noise-train.dat"
done
if command -v gnuplot >/dev/null 2>&1; then
  plots() { # $1: file suffix, $2: using, $3: filter
    sep=""
    for noise in ode additive multiplicative dropout; do
      [ -s "$out/$noise-$1.dat" ] || continue
      printf "%s'%s' u %s w lp lw 2 t '%s'" "$sep" "${3:+< grep ^$3 }$out/$noise-$1.dat" "$2" "$noise"
      sep=", "
    done
  }
  for m in authors pgd cw; do
    grep -q "^$m " "$out"/*-attack.dat 2>/dev/null || continue
    gnuplot -e "set terminal png size 800,500; set output '$out/attack-$m.png'; set key top right;
      set title 'CIFAR-10, l2 attack: $m (mean over seeds)'; set xlabel 'eps'; set ylabel 'accuracy';
      plot $(plots attack 2:3 $m)"
  done
  gnuplot -e "set terminal png size 800,500; set output '$out/corruption.png'; set key top right;
    set title 'CIFAR-10, corruptions (mean over families and seeds)'; set xlabel 'severity'; set ylabel 'accuracy';
    plot $(plots corruption 1:2)"
  gnuplot -e "set terminal png size 800,500; set output '$out/hidden.png'; set key top left;
    set title 'CIFAR-10, hidden-state perturbation, eps 0.1 (Fig. 4)'; set xlabel 't'; set ylabel 'eps_t';
    plot $(plots hidden 1:2)"
  gnuplot -e "set terminal png size 800,500; set output '$out/training.png'; set key bottom right;
    set title 'CIFAR-10, training accuracy per epoch'; set xlabel 'epoch'; set ylabel 'train accuracy';
    plot $(plots train 1:2)"
fi

#!/bin/sh
# Summarise the runs of tools/cifar-results.sh (directories NOISE-sSEED) as
# the markdown tables of doc/results.md and check the paper's claims.
# Per noise type and metric: the mean over seeds, the standard error over
# seeds (sd / sqrt(seeds), when there are at least 2) and the standard error
# over the test images (binomial, sqrt(p (1 - p) / images): the seeds share
# the images, so it does not shrink with more seeds); for the perturbation
# eps_T of Fig. 4, the standard error over the images.
# A claim "SDE better than ODE" holds when the difference of the means exceeds
# two standard errors of the difference; the verdict is given twice, with the
# standard errors over seeds (where both sides have >= 2 seeds) and over the
# images. With a few seeds two standard errors are too few: the seed verdict
# is also given as a Welch t test at 95% (two-sided; the Welch-Satterthwaite
# degrees of freedom rounded down, which errs towards "no difference").
# TTN is judged against the same SDE with the noise off (ttn_gain),
# Fig. 4 by eps_T and by its growth eps_T / eps_0; strongest@EPS is the lowest
# accuracy of the three attacks at that budget. Last, every model's own figures:
# one column per run directory, the same metrics (no standard errors: over
# the images they follow from the value and the image count). Also writes
# curve files and PNG plots into OUT_DIR (not committed).
# usage: tools/cifar-summary.sh OUT_DIR
set -eu
out=$1
rows=$out/summary-rows.txt models=$out/summary-models.txt
: >"$rows"
: >"$models"
for d in "$out"/*-s[0-9]*; do
  [ -f "$d/eval.done" ] || continue
  noise=$(basename "$d" | sed 's/-s[0-9]*$//')
  # (an attack protocol's folder, tools/cifar-protocols.sh, has no
  # corruptions or hidden-state curve: only the files there are read)
  # shellcheck disable=SC2046 # run folders have no blanks
  awk -F, -v m="$noise" '
    FILENAME ~ /summary.csv$/ && $1 == "images" { n = $2 }
    FILENAME ~ /summary.csv$/ && $1 == "clean_accuracy" { clean = $2; print m, "clean", $2, n }
    FILENAME ~ /summary.csv$/ && $1 == "ttn_accuracy" { ttn = $2 }
    FILENAME ~ /attack.csv$/ && FNR > 1 && $2 > 0 { print m, $1 "@" $2, $3, $6
      # the strongest of the attacks at each budget (an upper bound on the
      # accuracy against all three: per image the worst could be lower)
      if (!($2 in w)) { ne++; eo[ne] = $2; w[$2] = $3; wn[$2] = $6 } else if ($3 < w[$2]) w[$2] = $3 }
    # corruptions per protocol: the noise off (or, in files from before the
    # protocols, their one noisy pass) and the TTN ensemble, accuracy and
    # drop from severity 0
    FILENAME ~ /corruption.csv$/ && FNR > 1 && $1 > 0 {
      p = $6 == "" || $6 <= 1 ? "corrupt" : "corrupt_ttn"
      s[p, $1] += $3; k[p, $1]++; ni[p, $1] = $5; if ($7 != "") dr[p, $1] += $7 }
    FILENAME ~ /hidden.csv$/ && FNR == 2 { first = $2 }
    FILENAME ~ /hidden.csv$/ && FNR > 1 { last = $2; lse = $3 }
    END { for (i = 1; i <= ne; i++) print m, "strongest@" eo[i], w[eo[i]], wn[eo[i]]
          # the ODE has no TTN (its passes are all equal): its TTN accuracy is the clean one
          if (ttn == "" || ttn == "nan") ttn = clean
          print m, "ttn", ttn, n
          # what TTN adds to the same model with the noise off; SE over the
          # images unpaired, sqrt(2 p (1 - p) / n) (conservative)
          if (m != "ode") print m, "ttn_gain", ttn - clean, 0, sqrt(2 * clean * (1 - clean) / n)
          for (v = 1; v <= 5; v++)
            for (pi = 1; pi <= 2; pi++) {
              p = pi == 1 ? "corrupt" : "corrupt_ttn"
              if (!((p, v) in s)) continue
              print m, p "@" v, s[p, v] / k[p, v], ni[p, v]
              if ((p, v) in dr) print m, p "_drop@" v, dr[p, v] / k[p, v], ni[p, v]
            }
          if (last != "") print m, "hidden_eps_T", last, 0, lse
          if (first > 0) print m, "hidden_growth", last / first, 0, "nan" }' \
    $(for f in summary attack corruption hidden; do [ -f "$d/$f.csv" ] && echo "$d/$f.csv"; done) >"$rows.one"
  cat "$rows.one" >>"$rows"
  sed "s|^|$(basename "$d") |" "$rows.one" >>"$models"
done
rm -f "$rows.one"
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
    # over the images: every seed is tested on the same images, so the
    # test-set sampling error does not shrink with more seeds: the binomial
    # SE at the mean with the image count of one seed (the RMS of the per-seed SEs
    # where those are given)
    SEB = tot[key] > 0 ? sqrt(MU * (1 - MU) / (tot[key] / c)) : (key in se2 ? sqrt(se2[key] / c) : -1)
    C = c
    return 1
  }
  function verdict(b, se, mt, k,   who) {
    who = mt == "ttn_gain" ? "TTN" : "SDE"
    return se < 0 ? "-" : b > k * se ? who " better" : b < -k * se ? who " worse" : "no difference"
  }
  # the two-sided 95% quantile of Student t with df degrees of freedom
  # (rounded down; 0 for df < 1)
  function t975(df,   q) {
    split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131", q, " ")
    df = int(df + 1e-9) # a df of 2 computed as 1.9999... is 2
    return df < 1 ? 0 : df <= 15 ? q[df] : df <= 30 ? 2.09 : 2.0
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
    # the claims: each SDE noise type against the ODE (TTN: against the same
    # SDE with the noise off), judged with the standard error over seeds (when
    # both sides have >= 2 seeds) and, separately, over the images
    printf "\n| claim (metric) | SDE noise | SDE - ODE | 2 SE seeds | 2 SE images | verdict (seeds) | verdict (images) | Welch df | verdict (seeds, t test 95%%) |\n"
    printf "|---|---|---|---|---|---|---|---|---|\n"
    for (j = 1; j <= nm; j++) {
      mt = order[j]
      if (mt == "ttn_gain") { om = 0; os = 0; ob = 0; oc = 0 }
      else if (!stat("ode", mt)) continue
      else { om = MU; os = SES; ob = SEB; oc = C }
      for (i = 2; i <= 4; i++) {
        if (!stat(nz[i], mt)) continue
        d = MU - om
        ses = (SES >= 0 && os >= 0) ? sqrt(SES * SES + os * os) : -1
        seb = (SEB >= 0 && ob >= 0) ? sqrt(SEB * SEB + ob * ob) : -1
        # Welch-Satterthwaite; ttn_gain is one sample (oc = 0: C - 1 df)
        df = -1
        if (ses > 0)
          df = ses ^ 4 / (SES ^ 4 / (C - 1) + (oc > 1 ? os ^ 4 / (oc - 1) : 0))
        better = mt ~ /^hidden/ ? -d : d   # a smaller perturbation is better
        printf "| %s | %s | %+.4f | %s | %s | %s | %s | %s | %s |\n", mt == "ttn_gain" ? "ttn_gain (TTN - noise off)" : mt,
               nz[i], d, ses < 0 ? "-" : sprintf("%.4f", 2 * ses), seb < 0 ? "-" : sprintf("%.4f", 2 * seb),
               verdict(better, ses, mt, 2), verdict(better, seb, mt, 2), df < 0 ? "-" : sprintf("%.1f", df),
               df < 1 ? "-" : verdict(better, ses, mt, t975(df))
      }
    }
  }' "$rows"

# every model's own figures: metrics down, run directories across (the ODE,
# additive, multiplicative, dropout, each by seed)
awk '
  { run = $1; mt = $3; v[run, mt] = $4
    if (!(run in seenr)) { seenr[run] = 1; runs[++nr] = run }
    if (!(mt in seenm)) { seenm[mt] = 1; order[++nm] = mt } }
  function rank(r,   n, s) {
    n = r; sub(/-s[0-9]+$/, "", n); s = r; sub(/^.*-s/, "", s)
    return (n == "ode" ? 0 : n == "additive" ? 1 : n == "multiplicative" ? 2 : n == "dropout" ? 3 : 4) * 1000 + s
  }
  END {
    if (nr == 0) exit
    for (i = 2; i <= nr; i++) # insertion sort by noise type, then seed
      for (j = i; j > 1 && rank(runs[j]) < rank(runs[j - 1]); j--) { t = runs[j]; runs[j] = runs[j - 1]; runs[j - 1] = t }
    printf "\n| metric (per model) |"
    for (i = 1; i <= nr; i++) printf " %s |", runs[i]
    printf "\n|---|"
    for (i = 1; i <= nr; i++) printf "---|"
    printf "\n"
    for (j = 1; j <= nm; j++) {
      printf "| %s |", order[j]
      for (i = 1; i <= nr; i++)
        printf (runs[i], order[j]) in v ? " %.4f |" : " - |", v[runs[i], order[j]]
      printf "\n"
    }
  }' "$models"

# curves averaged over the evaluated seeds (training: every run that finished
# its EPOCHS [30] epochs), and PNG plots next to the runs
evaluated() { for d in "$out/$noise"-s*; do [ -f "$d/eval.done" ] && [ -f "$d/$1" ] && echo "$d/$1"; done; } # FILE of $noise's runs
mean_by_key() { awk '{ s[$1] += $2; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' | sort -n; }
for noise in ode additive multiplicative dropout; do
  ls -d "$out/$noise"-s[0-9]* >/dev/null 2>&1 || continue
  evaluated attack.csv | xargs -r cat | awk -F, '$1 != "method" { k = $1 " " $2; s[k] += $3; n[k]++ }
    END { for (k in s) print k, s[k] / n[k] }' | sort -k1,1 -k2,2n >"$out/$noise-attack.dat"
  for f in $(evaluated corruption.csv); do
    awk -F, 'NR > 1 && ($6 == "" || $6 <= 1) { s[$1] += $3; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' "$f"
  done | mean_by_key >"$out/$noise-corruption.dat"
  evaluated hidden.csv | xargs -r cat | awk -F, '$1 != "t" { print $1, $2 }' | mean_by_key >"$out/$noise-hidden.dat"
  for d in "$out/$noise"-s*; do
    # finished runs only: a run still training would bend the mean
    [ -f "$d/train.csv" ] && [ "$(($(wc -l <"$d/train.csv") - 1))" -ge "${EPOCHS:-30}" ] &&
      awk -F, 'NR > 1 { print $1, $4 }' "$d/train.csv"
  done | mean_by_key >"$out/$noise-train.dat"
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
  plot1() { # $1: name, $2: key position, $3: title, $4: x label, $5: y label, $6: plot list
    [ -n "$6" ] || return 0 # no data for this plot
    gnuplot -e "set terminal png size 800,500; set output '$out/$1.png'; set key $2;
      set title '$3'; set xlabel '$4'; set ylabel '$5'; plot $6"
  }
  for m in authors pgd cw; do
    grep -q "^$m " "$out"/*-attack.dat 2>/dev/null || continue
    plot1 "attack-$m" "top right" "CIFAR-10, l2 attack: $m (mean over seeds)" eps accuracy "$(plots attack 2:3 $m)"
  done
  plot1 corruption "top right" "CIFAR-10, corruptions (mean over families and seeds)" severity accuracy \
    "$(plots corruption 1:2)"
  plot1 hidden "top left" "CIFAR-10, hidden-state perturbation, eps 0.1 (Fig. 4)" t eps_t "$(plots hidden 1:2)"
  plot1 training "bottom right" "CIFAR-10, training accuracy per epoch (mean over seeds)" epoch \
    "train accuracy" "$(plots train 1:2)"
fi

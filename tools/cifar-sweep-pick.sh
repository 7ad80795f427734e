#!/bin/sh
# The sigma of each noise type from the paper-regime sweep, by the rule that
# doc/results.md fixed before the sweep's runs finished: the highest
# noise-off validation accuracy (val_acc) in the last row of each run's
# train.csv; sigmas within 0.2 points of the best (10 of 5,000 images) tie,
# and a tie goes to the largest of them, the paper's side. A noise type is
# chosen only when every one of its runs has finished all EPOCHS epochs.
#
# usage: tools/cifar-sweep-pick.sh SWEEP_DIR   (folders NOISE-SIGMA-sSEED, as
#        RECIPE=paper SIGMA_DIRS=1 tools/cifar-results.sh writes them)
# Knobs (environment): RUNS [the sweep's, doc/results.md] noise:sigma:seed of
#   the sweep, each of which must have finished; EPOCHS [30] the sweep's
#   epochs; SEED [1] the seed the full runs take. Prints a Markdown table of the candidates, one line
#   "choice NOISE SIGMA ..." per decided noise type, "pending NOISE ..." per
#   undecided one, and last "RUNS=..." for RECIPE=paper tools/cifar-results.sh.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 SWEEP_DIR" >&2; exit 2; }
dir=$1 epochs=${EPOCHS:-30} seed=${SEED:-1}
runs=${RUNS:-"ode:0:1 multiplicative:0.25:1 multiplicative:0.5:1 multiplicative:1.0:1 additive:0.1:1 additive:0.2:1 additive:0.5:1 dropout:0.25:1 dropout:0.5:1 dropout:0.9:1"}
[ -d "$dir" ] || { echo "$0: no folder $dir" >&2; exit 1; }
for r in $runs; do
  noise=${r%%:*} rest=${r#*:}
  sigma=${rest%%:*} sd=${rest#*:}
  run=$dir/$noise-$sigma-s$sd
  [ -f "$run/train.csv" ] || { echo "$noise $sigma 0 nan"; continue; }
  # the last row's epoch and val_acc, found by the header's names
  awk -F, -v n="$noise" -v s="$sigma" '
    NR == 1 { for (k = 1; k <= NF; k++) col[$k] = k; next }
    ("val_acc" in col) && NF >= col["val_acc"] { e = $col["epoch"]; v = $col["val_acc"] }
    END { if (e == "") { e = 0; v = "nan" } print n, s, e, v }' "$run/train.csv"
done | sort -k1,1 -k2,2g | awk -v epochs="$epochs" -v seed="$seed" '
  { noise[NR] = $1; sigma[NR] = $2; ep[NR] = $3; val[NR] = $4; n = NR }
  END {
    print "| noise | sigma | epochs | val_acc |"
    print "|---|---|---|---|"
    for (i = 1; i <= n; i++) printf "| %s | %s | %d | %s |\n", noise[i], sigma[i], ep[i], val[i]
    runs = ""
    for (i = 1; i <= n; i++) {
      t = noise[i]
      if (t in seen) continue
      seen[t] = 1
      done = 1; best = -1; count = 0
      for (j = 1; j <= n; j++) if (noise[j] == t) {
        count++
        if (ep[j] + 0 < epochs + 0 || val[j] == "nan") done = 0
        else if (val[j] + 0 > best) { best = val[j] + 0; bs = sigma[j] }
      }
      if (!done) { printf "pending %s: %d run(s), not all at %d epochs\n", t, count, epochs; continue }
      # the largest sigma within 0.2 points (20 basis points) of the best
      pick = ""; pv = 0
      for (j = 1; j <= n; j++)
        if (noise[j] == t && int((best - val[j]) * 10000 + 0.5) <= 20)
          if (pick == "" || sigma[j] + 0 > pick + 0) { pick = sigma[j]; pv = val[j] }
      if (pick == bs) printf "choice %s %s val_acc %s (the best)\n", t, pick, pv
      else printf "choice %s %s val_acc %s (the best, %.4f at %s, is within 0.2 points: the larger sigma)\n", t, pick, pv, best, bs
      runs = runs (runs == "" ? "" : " ") t ":" pick ":" seed
    }
    print "RUNS=\"" runs "\""
  }'

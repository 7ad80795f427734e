#!/bin/sh
# The statistics of the reproduction tools, on hand-made run directories
# whose numbers are worked out by hand.
#
# 1. tools/cifar-summary.sh: two seeds of an ODE and a multiplicative SDE
#   (1,000 test images each).
#     clean: ODE 0.80, 0.82 (mean 0.81, SE over seeds 0.01), SDE 0.70, 0.72
#       (0.71, 0.01): difference -0.10, 2 SE seeds 2 * sqrt(2) * 0.01 = 0.0283;
#       over images sqrt(0.81 * 0.19 / 1000) = 0.012405 and
#       sqrt(0.71 * 0.29 / 1000) = 0.014349, 2 SE = 0.0379; Welch df
#       (2e-4)^2 / (1e-8 + 1e-8) = 2.0, t 4.303: 4.303 * 0.01414 = 0.061 < 0.10.
#     TTN of the SDE 0.76, 0.80: gains 0.06, 0.08, mean 0.07, SE 0.01,
#       2 SE 0.0200; over images the RMS of sqrt(2 p (1 - p) / 1000) at 0.70
#       and 0.72: 0.020288, 2 SE 0.0406; df 1, t 12.706: 0.127 > 0.07, so the
#       t test does not call what two standard errors call.
#
# 2. tools/cifar-paired.sh: predictions for 10 images of class 0.
#     ODE seed 1: noise off right on images 0-7.
#     SDE seed 1: noise off right on 0-5, TTN right on 0-4 and 6-9.
#   TTN - noise off: n01 = 4 (images 6-9), n10 = 1 (image 5), gain 0.3,
#     d = +1 x4, -1 x1: var = 0.5 - 0.09, SE = sqrt(0.41 / 9) = 0.2134;
#     McNemar p = 2 P(X <= 1 | 5, 1/2) = 2 * 6/32 = 0.375.
#   clean SDE - ODE: -1 on images 6, 7: mean -0.2, SE = sqrt(0.16 / 9) = 0.1333.
#   TTN SDE - ODE: -1 on image 5, +1 on 8, 9: mean 0.1, SE = sqrt(0.29 / 9) = 0.1795.
#   PGD at eps 0.1 on images 0-3 (eps 0 rows are ignored): ODE seed 1 right on
#     0, 1, seed 2 on 0; SDE on 0-2. Per image SDE - mean ODE: 0, 0.5, 1, 0:
#     mean 0.375, SE = sqrt((1.25 / 4 - 0.375^2) / 3) = 0.2394.
#   a run on other images is refused
#   corruption-images.csv, fog at severity 1 with the noise off, images 0-3:
#     ODE seeds right at severity 0 on 1110 and 1100, at 1 on 1010 and 1000;
#     SDE on 1111 and 1101. SDE - mean ODE at 1: 0, 1, -0.5, 1: mean 0.375,
#     SE sqrt((2.25 / 4 - 0.375^2) / 3) = 0.375. Drops (severity 0 - 1): ODE
#     0, 1, 0, 0, SDE 0, 0, 1, 0: SDE - ODE 0, -1, 1, 0, mean 0, SE
#     sqrt(0.5 / 3) = 0.4082
#   hidden-images.csv, eps_T of images 0-3: ODE seeds 0.2 and 0.4 on every
#     image (mean 0.3); the SDE 0.1, 0.2, 0.1, 0.2: -0.15, SE sqrt((0.025 -
#     0.0225) / 3) = 0.0289, better; noise off 0.3, 0.3, 0.3, 0.4: +0.025, SE
#     sqrt((0.0025 - 0.000625) / 3) = 0.025, no difference
#   corruptions: the SDE runs' files have both protocols, the noise off (0.6,
#     drop 0.1, both seeds) and TTN (0.64 and 0.68: mean 0.66, SE over seeds
#     0.02, over 1000 images sqrt(0.66 0.34 / 1000) = 0.0150); the ODE's are
#     from before the protocols (no TTN row)
#   per model: one column per run (ODE first, by seed), each run's own value
#     (the TTN gains 0.06 and 0.08, the TTN corruption 0.64 and 0.68)
#
# 3. tools/cifar-sweep-pick.sh: a sweep of 30 epochs, val_acc in the last rows
#   multiplicative 0.25 0.8130, 0.5 0.8110 (20 basis points below: a tie, so
#   the larger sigma, 0.5), 1.0 0.8000; additive 0.1 0.8200, 0.2 0.8179 (21
#   points below: no tie), 0.5 0.7000; dropout 0.25 and 0.9 finished, 0.5
#   stopped at 29 epochs (pending); the ODE 0.8100.
#
# 4. tools/paper-regime.sh with stand-ins for the training and the attacks
#   (each run's last val_acc from VAL_<sigma>): on the sweep of 3., with
#   dropout 0.5 finished too (0.8300, a tie with 0.25: 0.5), the check runs
#   multiplicative 0.5 (chosen) and 1.0 (worst); the full runs and the attacks
#   follow in the order ODE, multiplicative, dropout, additive (CHECK=1 on the
#   SDEs). With 1.0 ahead at 120 epochs it stops before the full runs.
#   With JOBS=2 (UNTIL=1) it starts two copies of cifar-results.sh, each with
#   THREADS the cores / JOBS (at least 1).
#
# 5. tools/cifar-results.sh run twice at once on four runs, with a stand-in
#   nsde-train that takes a second per run: each run is trained once, not
#   twice (without the claim both copies train the first run together); a
#   run whose run.lock another process holds is passed over, and finished
#   runs are passed over without a claim or a word.
#
# 6. A run keeps the build it started with: resumed with another BUILD it
#   trains on its first one, with PIN=0 on BUILD's, and a first build that is
#   gone stops the script with a message naming the run's folder.
# 7. tools/cifar-protocols.sh on hand-made protocol folders (below).
# 8. tools/ship-model.sh into a scratch models folder (below).
# usage: test-stats.sh CIFAR_SUMMARY CIFAR_PAIRED CIFAR_SWEEP_PICK PAPER_REGIME CIFAR_RESULTS
#        CIFAR_SEEDS_PICK CIFAR_PROTOCOLS SHIP_MODEL WORKDIR
set -eu
summary=$1 paired=$2 pick=$3 regime=$4 results=$5 seeds=$6 protocols=$7 ship=$8 work=$9/stats-test
rm -rf "$work"
fail=0
# $1: the tool's output file; $2...: lines it must hold
want() {
  f=$1; shift
  for line in "$@"; do grep -qF "$line" "$f" || { echo "FAIL: $f has no line: $line"; fail=1; }; done
}

# 1. tools/cifar-summary.sh
s=$work/summary
run() { # $1: dir, $2: clean, $3: ttn
  mkdir -p "$s/$1"
  printf 'metric,value\nimages,1000\nclean_accuracy,%s\nttn_accuracy,%s\n' "$2" "$3" >"$s/$1/summary.csv"
  printf 'method,eps,accuracy,mean_l2,se,images\npgd,0,%s,0,0.01,1000\npgd,0.1,0.5,0.08,0.0158,1000\n' "$2" \
    >"$s/$1/attack.csv"
  if [ $# -ge 4 ]; then # both protocols (noise off, TTN) with drops from severity 0: $4 TTN accuracy
    printf 'severity,family,accuracy,se,images,passes,drop\n1,noise,0.6,0.01,1000,0,0.1\n1,noise,%s,0.01,1000,20,0.12\n' \
      "$4" >"$s/$1/corruption.csv"
  else # a file from before the protocols: one noisy pass
    printf 'severity,family,accuracy,se,images\n1,noise,0.6,0.01,1000\n' >"$s/$1/corruption.csv"
  fi
  printf 't,eps_t,se,images\n0,0.05,0.001,100\n1,0.2,0.01,100\n' >"$s/$1/hidden.csv"
  touch "$s/$1/eval.done"
}
run ode-s1 0.80 nan
run ode-s2 0.82 nan
run multiplicative-s1 0.70 0.76 0.64
run multiplicative-s2 0.72 0.80 0.68
# (gnuplot, where installed, warns about the one-point plots: kept in err.log)
sh "$summary" "$s" >"$s/out.md" 2>"$s/err.log" || { echo "FAIL: cifar-summary"; cat "$s/err.log"; exit 1; }
cat "$s/out.md"
want "$s/out.md" \
  "| clean | 0.8100 (0.0100, 0.0124, 2) | 0.7100 (0.0100, 0.0143, 2) |" \
  "| clean | multiplicative | -0.1000 | 0.0283 | 0.0379 | SDE worse | SDE worse | 2.0 | SDE worse |" \
  "| ttn_gain (TTN - noise off) | multiplicative | +0.0700 | 0.0200 | 0.0406 | TTN better | TTN better | 1.0 | no difference |" \
  "| corrupt_ttn@1 | - | 0.6600 (0.0200, 0.0150, 2) |" \
  "| corrupt_drop@1 | - | 0.1000 (0.0000, 0.0095, 2) |" \
  "| metric (per model) | ode-s1 | ode-s2 | multiplicative-s1 | multiplicative-s2 |" \
  "| clean | 0.8000 | 0.8200 | 0.7000 | 0.7200 |" \
  "| ttn_gain | - | - | 0.0600 | 0.0800 |" \
  "| corrupt_ttn@1 | - | - | 0.6400 | 0.6800 |" \
  "| strongest@0.1 | 0.5000 | 0.5000 | 0.5000 | 0.5000 |"

# 2. tools/cifar-paired.sh
p=$work/paired
mkdir -p "$p/ode-s1" "$p/multiplicative-s1"
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 10; i++) print i ",0," (i <= 7 ? 0 : 3) ",-1" }' \
  >"$p/ode-s1/predictions.csv"
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 10; i++) print i ",0," (i <= 5 ? 0 : 2) "," (i == 5 ? 1 : 0) }' \
  >"$p/multiplicative-s1/predictions.csv"
mkdir -p "$p/ode-s2"
ai() { # $1: run, $2..$5: PGD outcome of images 0-3 at eps 0.1
  r=$1; shift
  { echo "method,eps,image,correct"; i=0
    for c in "$@"; do echo "pgd,0,$i,1"; echo "pgd,0.1,$i,$c"; i=$((i + 1)); done; } >"$p/$r/attack-images.csv"
}
ai ode-s1 1 1 0 0
ai ode-s2 1 0 0 0
ai multiplicative-s1 1 1 1 0
ci() { # $1: run, $2: outcomes of images 0-3 at severity 0, $3: at severity 1 (one family, noise off)
  { echo "severity,family,passes,image,correct"
    for i in 0 1 2 3; do
      echo "0,none,0,$i,$(echo "$2" | cut -c$((i + 1)))"
      echo "1,fog,0,$i,$(echo "$3" | cut -c$((i + 1)))"
    done; } >"$p/$1/corruption-images.csv"
}
ci ode-s1 1110 1010
ci ode-s2 1100 1000
ci multiplicative-s1 1111 1101
hi() { # $1: run, $2: eps_T of images 0-3 (curve model), $3: the same with the noise off (SDEs)
  { echo "curve,image,eps_0,eps_T"; i=0
    for e in $2; do echo "model,$i,0.05,$e"; i=$((i + 1)); done
    i=0
    for e in $3; do echo "noise-off,$i,0.05,$e"; i=$((i + 1)); done; } >"$p/$1/hidden-images.csv"
}
hi ode-s1 "0.2 0.2 0.2 0.2" ""
hi ode-s2 "0.4 0.4 0.4 0.4" ""
hi multiplicative-s1 "0.1 0.2 0.1 0.2" "0.3 0.3 0.3 0.4"
sh "$paired" "$p" >"$p/out.md"
cat "$p/out.md"
want "$p/out.md" \
  "| multiplicative-s1 | 10 | 4 | 1 | +0.3000 | 0.2134 | 0.375 |" \
  "| ttn_gain (TTN - noise off) | multiplicative (1) | - | +0.3000 | 0.4269 | no difference |" \
  "| clean (noise off), SDE - ODE | multiplicative (1) | 1 | -0.2000 | 0.2667 | no difference |" \
  "| TTN, SDE - ODE | multiplicative (1) | 1 | +0.1000 | 0.3590 | no difference |" \
  "| pgd@0.1, SDE - ODE (4 images) | multiplicative (1) | 2 | +0.3750 | 0.4787 | no difference |" \
  "| corrupt(passes 0)@1, SDE - ODE (4 images) | multiplicative (1) | 2 | +0.3750 | 0.7500 | no difference |" \
  "| corrupt(passes 0)@1 drop from severity 0, SDE - ODE | multiplicative (1) | 2 | +0.0000 | 0.8165 | no difference |" \
  "| hidden eps_T (model), SDE - ODE (4 images) | multiplicative (1) | 2 | -0.1500 | 0.0577 | SDE better |" \
  "| hidden eps_T (noise-off), SDE - ODE (4 images) | multiplicative (1) | 2 | +0.0250 | 0.0500 | no difference |"
# a run on other images is refused
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 12; i++) print i ",0,0,0" }' >"$p/multiplicative-s1/predictions.csv"
if sh "$paired" "$p" >"$p/bad.md" 2>&1; then echo "FAIL: runs on different images accepted"; fail=1; fi
grep -q "not the same test images" "$p/bad.md" || { echo "FAIL: no message"; cat "$p/bad.md"; fail=1; }

# 3. tools/cifar-sweep-pick.sh
w=$work/sweep
sw() { # $1: noise, $2: sigma, $3: epochs, $4: val_acc of the last row
  mkdir -p "$w/$1-$2-s1"
  awk -v n="$3" -v v="$4" 'BEGIN { print "epoch,lr,train_loss,train_acc,images_per_s,seconds,val_acc,val_loss"
    for (e = 1; e <= n; e++) print e ",0.1,1.0,0.5,300,150," (e == n ? v : 0.5) ",1.0" }' >"$w/$1-$2-s1/train.csv"
}
sw ode 0 30 0.8100
sw multiplicative 0.25 30 0.8130
sw multiplicative 0.5 30 0.8110
sw multiplicative 1.0 30 0.8000
sw additive 0.1 30 0.8200
sw additive 0.2 30 0.8179
sw additive 0.5 30 0.7000
sw dropout 0.25 30 0.8300
sw dropout 0.5 29 0.8400
sw dropout 0.9 30 0.8000
sh "$pick" "$w" >"$w/out.md"
cat "$w/out.md"
want "$w/out.md" \
  "choice multiplicative 0.5 val_acc 0.8110 (the best, 0.8130 at 0.25, is within 0.2 points: the larger sigma)" \
  "choice additive 0.1 val_acc 0.8200 (the best)" \
  "pending dropout: 3 run(s), not all at 30 epochs" \
  "RUNS=\"additive:0.1:1 multiplicative:0.5:1 ode:0:1\""

# 4. tools/paper-regime.sh
t=$work/regime
mkdir -p "$t/tools"
cp "$regime" "$pick" "$t/tools/"
cat >"$t/tools/cifar-results.sh" <<'STUB'
echo "train $2 $RUNS"
for r in $RUNS; do
  n=${r%%:*} rest=${r#*:}
  s=${rest%%:*} d=$2/$n-s${rest#*:}
  [ "${SIGMA_DIRS:-0}" = 1 ] && d=$2/$n-$s-s${rest#*:}
  [ -f "$d/train.csv" ] && continue # finished (the sweep of 3.)
  mkdir -p "$d"
  v=$(eval echo "\${VAL_$(echo "$s" | tr . _):-0.8}")
  awk -v v="$v" 'BEGIN { print "epoch,val_acc"; print "120," v }' >"$d/train.csv"
done
STUB
echo 'echo "attack $2 CHECK=${CHECK:-0}"' >"$t/tools/cifar-attacks.sh"
cp "$seeds" "$t/tools/"
# step 6's paired comparisons: multiplicative level clean, additive level
# under PGD at 0.1, dropout settled on both (worse clean, better under PGD)
cat >"$t/tools/cifar-paired.sh" <<'STUB'
echo "paired $1" >&2
echo "| clean (noise off), SDE - ODE | multiplicative (1) | 1 | -0.0100 | 0.0200 | no difference |"
echo "| clean (noise off), SDE - ODE | dropout (1) | 1 | -0.0300 | 0.0200 | SDE worse |"
echo "| clean (noise off), SDE - ODE | additive (1) | 1 | -0.0300 | 0.0200 | SDE worse |"
STUB
cat >"$t/tools/cifar-protocols.sh" <<'STUB'
mkdir -p "$1/protocols/pgd-eot8"
{ for z in multiplicative dropout; do
    echo "| pgd@0.1, SDE - ODE (500 images) | $z (1) | 1 | +0.0500 | 0.0300 | SDE better |"
  done
  echo "| pgd@0.1, SDE - ODE (500 images) | additive (1) | 1 | +0.0100 | 0.0300 | no difference |"
  echo "| pgd@0.2, SDE - ODE (500 images) | additive (1) | 1 | +0.0400 | 0.0300 | SDE better |"
} >"$1/protocols/pgd-eot8/paired.md"
STUB
cp -r "$w" "$t/sweep"
w=$t/sweep
sw dropout 0.5 30 0.8300
VAL_0_5=0.80 VAL_1_0=0.79 sh "$t/tools/paper-regime.sh" DATA "$t" >"$t/out.txt" 2>&1 ||
  { echo "FAIL: paper-regime"; cat "$t/out.txt"; fail=1; }
cat "$t/out.txt"
grep -E '^(train|attack)' "$t/out.txt" >"$t/calls.txt" || true
printf '%s\n' "train $t/check multiplicative:0.5:1 multiplicative:1.0:1" \
  "train $t/full ode:0:1 multiplicative:0.5:1 dropout:0.5:1 additive:0.1:1 " \
  "attack $t/full/ode-s1 CHECK=0" "attack $t/full/multiplicative-s1 CHECK=1" \
  "attack $t/full/dropout-s1 CHECK=1" "attack $t/full/additive-s1 CHECK=1" \
  "train $t/full ode:0:2 ode:0:3 multiplicative:0.5:2 multiplicative:0.5:3 additive:0.1:2 additive:0.1:3" \
  "attack $t/full/ode-s2 CHECK=0" "attack $t/full/ode-s3 CHECK=0" \
  "attack $t/full/multiplicative-s2 CHECK=0" "attack $t/full/multiplicative-s3 CHECK=0" \
  "attack $t/full/additive-s2 CHECK=0" "attack $t/full/additive-s3 CHECK=0" >"$t/want.txt"
grep -v "$t/sweep" "$t/calls.txt" | diff "$t/want.txt" - || { echo "FAIL: paper-regime's steps"; fail=1; }
want "$t/full/seeds.md" "| multiplicative | 1 | 1 | clean | yes |" "| dropout | 1 | 1 | - | no |" \
  "| additive | 1 | 2 | pgd@0.1 | yes |"
# run again with every difference settled: the choice of seeds is kept, not
# made again from the new runs
sed -i 's/no difference/SDE worse/' "$t/tools/cifar-paired.sh" "$t/tools/cifar-protocols.sh"
sh "$t/tools/paper-regime.sh" DATA "$t" >"$t/again.txt" 2>&1 || { echo "FAIL: paper-regime again"; fail=1; }
grep -q "^train $t/full ode:0:2 ode:0:3 multiplicative:0.5:2" "$t/again.txt" ||
  { echo "FAIL: the seeds' choice was not kept"; cat "$t/again.txt"; fail=1; }
rm -rf "$t/check" "$t/full"
if VAL_0_5=0.79 VAL_1_0=0.80 sh "$t/tools/paper-regime.sh" DATA "$t" >"$t/flip.txt" 2>&1; then
  echo "FAIL: paper-regime went on with the order flipped"; fail=1
fi
grep -q "no longer beats 1.0" "$t/flip.txt" || { echo "FAIL: no message"; cat "$t/flip.txt"; fail=1; }
[ -d "$t/full" ] && { echo "FAIL: full runs after a flipped check"; fail=1; }
cat >>"$t/tools/cifar-results.sh" <<'STUB'
echo "$THREADS" >"$2/threads.$$"
STUB
rm -rf "$t/sweep/threads."*
UNTIL=1 JOBS=2 sh "$t/tools/paper-regime.sh" DATA "$t" >"$t/jobs.txt" 2>&1 ||
  { echo "FAIL: paper-regime JOBS=2"; cat "$t/jobs.txt"; fail=1; }
want_threads=$(($(nproc) / 2))
[ "$want_threads" -ge 1 ] || want_threads=1
[ "$(cat "$t/sweep/threads."* | tr '\n' ' ')" = "$want_threads $want_threads " ] ||
  { echo "FAIL: JOBS=2 did not start two copies of $want_threads thread(s)"; fail=1; }

# 5. tools/cifar-results.sh, two copies at once
r=$work/results
mkdir -p "$r/build/apps"
cat >"$r/build/apps/nsde-train" <<'STUB'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
echo "$out" >>"$(dirname "$0")/trained.txt"
sleep 1
printf '\0\0\0\0\0\0\0\0\002\0\0\0' >"$out.state"
touch "$out"
STUB
chmod +x "$r/build/apps/nsde-train"
four="ode:0:1 ode:0:2 ode:0:3 ode:0:4"
BUILD=$r/build EVAL=0 EPOCHS=2 RUNS=$four sh "$results" DATA "$r/out" >"$r/a.txt" 2>&1 &
a=$!
BUILD=$r/build EVAL=0 EPOCHS=2 RUNS=$four sh "$results" DATA "$r/out" >"$r/b.txt" 2>&1 ||
  { echo "FAIL: cifar-results, copy b"; cat "$r/b.txt"; fail=1; }
wait $a || { echo "FAIL: cifar-results, copy a"; cat "$r/a.txt"; fail=1; }
sort "$r/build/apps/trained.txt" >"$r/got.txt"
for s in 1 2 3 4; do echo "$r/out/ode-s$s/model.nsde"; done >"$r/want.txt"
diff "$r/want.txt" "$r/got.txt" || { echo "FAIL: two copies trained these runs"; fail=1; }
# finished runs: passed over silently, while another copy holds one of them
flock "$r/out/ode-s2/run.lock" sleep 2 &
h=$!
sleep 0.5
BUILD=$r/build EVAL=0 EPOCHS=2 RUNS=$four sh "$results" DATA "$r/out" >"$r/d.txt" 2>&1 || fail=1
wait $h
[ -s "$r/d.txt" ] && { echo "FAIL: finished runs were not passed over silently"; cat "$r/d.txt"; fail=1; }
[ "$(wc -l <"$r/build/apps/trained.txt")" -eq 4 ] || { echo "FAIL: a finished run was trained again"; fail=1; }
mkdir -p "$r/out/ode-s5"
flock "$r/out/ode-s5/run.lock" sleep 3 &
h=$!
sleep 0.5
BUILD=$r/build EVAL=0 EPOCHS=2 RUNS=ode:0:5 sh "$results" DATA "$r/out" >"$r/c.txt" 2>&1 || fail=1
wait $h
grep -q "ode-s5" "$r/build/apps/trained.txt" && { echo "FAIL: a held run was trained"; fail=1; }
grep -q "ode sigma 0 seed 5: another copy has it" "$r/c.txt" || { echo "FAIL: no message"; fail=1; }

# 6. a run keeps its build: stand-ins that finish one epoch of two per sitting
for b in pa pb; do
  mkdir -p "$r/$b/apps"
  cat >"$r/$b/apps/nsde-train" <<'STUB'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
echo "$out" >>"$(dirname "$0")/trained.txt"
printf '\0\0\0\0\0\0\0\0\001\0\0\0' >"$out.state"
touch "$out"
STUB
  chmod +x "$r/$b/apps/nsde-train"
  : >"$r/$b/apps/trained.txt"
done
BUILD=$r/pa EVAL=0 EPOCHS=2 RUNS=ode:0:6 sh "$results" DATA "$r/out" >"$r/p1.txt" 2>&1 || fail=1
BUILD=$r/pb EVAL=0 EPOCHS=2 RUNS=ode:0:6 sh "$results" DATA "$r/out" >"$r/p2.txt" 2>&1 || fail=1
[ "$(wc -l <"$r/pa/apps/trained.txt")" -eq 2 ] && [ ! -s "$r/pb/apps/trained.txt" ] ||
  { echo "FAIL: a resumed run left the build it started with"; fail=1; }
PIN=0 BUILD=$r/pb EVAL=0 EPOCHS=2 RUNS=ode:0:6 sh "$results" DATA "$r/out" >"$r/p3.txt" 2>&1 || fail=1
[ "$(wc -l <"$r/pb/apps/trained.txt")" -eq 1 ] || { echo "FAIL: PIN=0 did not use BUILD"; fail=1; }
rm "$r/pa/apps/nsde-train"
if BUILD=$r/pb EVAL=0 EPOCHS=2 RUNS=ode:0:6 sh "$results" DATA "$r/out" >"$r/p4.txt" 2>&1; then
  echo "FAIL: a run whose build is gone went on"; fail=1
fi
grep -q "ode-s6/build names $r/pa/apps, which has no nsde-train" "$r/p4.txt" ||
  { echo "FAIL: no message for a run whose build is gone"; cat "$r/p4.txt"; fail=1; }

# 7. tools/cifar-protocols.sh: two models, each with the strength check's two
#   folders (8 images) and an EOT folder (4 images), PGD at 0.1. ODE: 50
#   steps 0.75, 100 steps and 5 restarts 0.50: drop 0.25 against 1 SE
#   sqrt(0.75 0.25 / 8) = 0.1531, too weak; SDE 0.500 and 0.375: drop 0.125
#   against sqrt(0.25 / 8) = 0.1768, strong enough. The EOT folders' paired
#   comparison per image: ODE right on images 0, 1, SDE on 0-2: +0.25 (SE
#   sqrt((0.25 - 0.0625) / 3) = 0.25, 2 SE 0.5000).
q=$work/protocols
proto() { # $1: run, $2: folder, $3: PGD outcomes of images 0.. at eps 0.1
  d=$q/$1/$2
  mkdir -p "$d"
  awk -v o="$3" 'BEGIN { n = length(o); print "method,eps,image,correct"
    for (i = 0; i < n; i++) { print "pgd,0," i ",1"; print "pgd,0.1," i "," substr(o, i + 1, 1) } }' \
    >"$d/attack-images.csv"
  awk -v o="$3" 'BEGIN { n = length(o); r = gsub(/1/, "1", o); print "method,eps,accuracy,mean_l2,se,images"
    print "pgd,0,1,0,0," n; printf "pgd,0.1,%.3f,0.1,0.2,%d\n", r / n, n }' >"$d/attack.csv"
  awk -v o="$3" 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < length(o); i++) print i ",0,0,0" }' \
    >"$d/predictions.csv"
  printf 'metric,value\nimages,%d\nclean_accuracy,1\nttn_accuracy,1\n' ${#3} >"$d/summary.csv"
  touch "$d/eval.done"
}
proto ode-s1 pgd-check-base 11111100
proto ode-s1 pgd-check-strong 11110000
proto ode-s1 pgd-eot8 1100
proto multiplicative-s1 pgd-check-base 11110000
proto multiplicative-s1 pgd-check-strong 11100000
proto multiplicative-s1 pgd-eot8 1110
sh "$protocols" "$q" >"$q/out.md" 2>&1 || { echo "FAIL: cifar-protocols"; cat "$q/out.md"; fail=1; }
cat "$q/out.md"
want "$q/out.md" "| ode-s1 | 0.1 | 0.7500 | 0.5000 | +0.2500 | 0.1531 | too weak |" \
  "| multiplicative-s1 | 0.1 | 0.5000 | 0.3750 | +0.1250 | 0.1768 | strong enough |"
want "$q/protocols/pgd-eot8/paired.md" "| pgd@0.1, SDE - ODE (4 images) | multiplicative (1) | 1 | +0.2500 | 0.5000 | no difference |"
want "$q/protocols/pgd-eot8/summary.md" "| metric (per model) | ode-s1 | multiplicative-s1 |" "| pgd@0.1 | 0.5000 | 0.7500 |"

# 8. tools/ship-model.sh with a stand-in nsde-eval (clean accuracy 0.862):
#   the file copied, its SHA-256 listed and checkable, the first 500 images'
#   accuracy recorded as 0.8620; the same name again is refused
m=$work/ship
mkdir -p "$m/build/apps" "$m/run" "$m/models"
cat >"$m/build/apps/nsde-eval" <<'STUB'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
printf 'metric,value\nimages,500\nclean_accuracy,0.862000\n' >"$out/summary.csv"
STUB
chmod +x "$m/build/apps/nsde-eval"
echo "a model" >"$m/run/model.nsde"
BUILD=$m/build sh "$ship" "$m/run" cifar10-paper-ode-s1 DATA "$m/models" >"$m/out.txt" 2>&1 ||
  { echo "FAIL: ship-model"; cat "$m/out.txt"; fail=1; }
cmp -s "$m/run/model.nsde" "$m/models/cifar10-paper-ode-s1.nsde" || { echo "FAIL: ship-model's copy"; fail=1; }
(cd "$m/models" && sha256sum -c --quiet SHA256SUMS) || { echo "FAIL: ship-model's SHA256SUMS"; fail=1; }
printf 'file,images,clean_accuracy\ncifar10-paper-ode-s1.nsde,500,0.8620\n' | diff - "$m/models/expected.csv" ||
  { echo "FAIL: ship-model's expected.csv"; fail=1; }
if BUILD=$m/build sh "$ship" "$m/run" cifar10-paper-ode-s1 DATA "$m/models" >"$m/again.txt" 2>&1; then
  echo "FAIL: ship-model shipped a name twice"; fail=1
fi
grep -q "is shipped already" "$m/again.txt" || { echo "FAIL: no message"; cat "$m/again.txt"; fail=1; }

[ $fail -eq 0 ] && echo "1 passed, 0 failed"
exit $fail

#!/bin/sh
# A tiny end-to-end run of the experiment programs on real Fashion-MNIST
# images: train an SDE model briefly, evaluate it, and check the outputs.
# Two halves that meson runs as two tests (each well inside its timeout):
# PART eval trains and evaluates an SDE model and checks every output file,
# PART train checks resuming, the schedules, divergence and the attacks on an
# ODE; all (the default) runs both.
# usage: test-experiment.sh NSDE_TRAIN NSDE_EVAL WORKDIR [eval|train|all]
set -eu
part=${4:-all}
train=$1 eval=$2 work=$3/experiment-test-$part
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || { echo "FAIL: $fm missing (apt-get install dataset-fashion-mnist)"; exit 1; }
# attack.csv is valid when no attack beats its eps-0 accuracy and every
# distortion stays within its budget eps
check_attack() {
  awk -F, 'NR > 1 { if ($2 == 0) a0[$1] = $3; else if ($3 > a0[$1] + 1e-9 || $4 > $2 + 1e-5) exit 1 }' "$1" ||
    { echo "FAIL: $2"; cat "$1"; exit 1; }
}
rm -rf "$work"
mkdir -p "$work"
if [ "$part" != train ]; then # the SDE model: training, evaluation, outputs
  "$train" --data fashion-mnist --out "$work/m.nsde" --width 8 --groups 2 --subset 200 --epochs 2 \
    --stages 2 --batch 50 --noise multiplicative --sigma 0.5 --metrics "$work/train.csv" >"$work/train.log"
  "$eval" --model "$work/m.nsde" --data fashion-mnist --subset 50 --ttn 3 --attack-images 50 \
    --attack-steps 3 --eps 0,1.0 --severities 2 --hidden-curve 4 --hidden-images 2 --out "$work" \
    >"$work/eval.log"
  cat "$work/eval.log"
  # expectation over transformation: --attack-eot 1 is the default attack bit
  # for bit; 4 noisy passes per gradient change the attack (other gradients)
  # and keep its results valid (never above eps 0, distortion within eps)
  eot="--model $work/m.nsde --data fashion-mnist --subset 50 --ttn 3 --attack-images 50 --attack-steps 3 \
    --eps 0,1.0 --severities 0"
  mkdir -p "$work/eot0" "$work/eot1" "$work/eot4"
  "$eval" $eot --out "$work/eot0" >/dev/null
  "$eval" $eot --attack-eot 1 --out "$work/eot1" >/dev/null
  "$eval" $eot --attack-eot 4 --out "$work/eot4" >/dev/null
  cmp "$work/eot0/attack.csv" "$work/eot1/attack.csv" || { echo "FAIL: --attack-eot 1 changes the attack"; exit 1; }
  if cmp -s "$work/eot1/attack.csv" "$work/eot4/attack.csv"; then echo "FAIL: --attack-eot 4 ignored"; exit 1; fi
  grep -q '^attack_eot,4$' "$work/eot4/summary.csv" || { echo "FAIL: summary.csv lacks attack_eot"; exit 1; }
  check_attack "$work/eot4/attack.csv" "EOT attack.csv"
  # --attack-noise off: the SDE attacked and classified with its noise off
  # is another attack (deterministic gradients), valid, and says so
  mkdir -p "$work/eotoff"
  "$eval" $eot --attack-noise off --out "$work/eotoff" >/dev/null
  if cmp -s "$work/eot1/attack.csv" "$work/eotoff/attack.csv"; then echo "FAIL: --attack-noise off ignored"; exit 1; fi
  grep -q '^attack_noise,off$' "$work/eotoff/summary.csv" && grep -q '^attack_noise,on$' "$work/eot1/summary.csv" ||
    { echo "FAIL: summary.csv lacks attack_noise"; exit 1; }
  check_attack "$work/eotoff/attack.csv" "noise-off attack.csv"
  # and deterministic: another noise seed gives the same attack
  mkdir -p "$work/eotoff2"
  "$eval" $eot --attack-noise off --seed 7 --out "$work/eotoff2" >/dev/null
  cmp "$work/eotoff/attack.csv" "$work/eotoff2/attack.csv" ||
    { echo "FAIL: the noise-off attack depends on the noise seed"; exit 1; }
  # corruption strengths: severity 0 is the identity and the mean change grows
  # with the severity. Three families are checked only for "changes something"
  # and severity 5 > severity 1: saturation's published levels are not ordered
  # (0.3, 0.1, 1.5, 2, 2.5 times the saturation), and pixelate's box resampling
  # of a 28-pixel image to 26 and 25 pixels (levels 0.95, 0.9) changes about as
  # much either way (measured 0.0414 vs 0.0406); glass blur's levels
  # trade blur against rounds of pixel swaps (0.4, 1 round at 3 changes less
  # than 0.25, 1 round at 2: 0.086 vs 0.092 on 20 Fashion-MNIST images).
  "$eval" --corruption-report 20 --data fashion-mnist >"$work/corr.csv"
  nfam=$(awk -F, 'NR > 1 && $2 == 0 { n++ } END { print n }' "$work/corr.csv")
  [ "$nfam" -ge 12 ] || { echo "FAIL: only $nfam corruption families"; cat "$work/corr.csv"; exit 1; }
  # Motion blur's levels 3 and 4 differ in the kernel's length beyond where
  # sigma 2 leaves weight (0.0518 vs 0.0511 on 200 CIFAR-10 images), so it is
  # checked like those three. The elastic transform is only checked for
  # "changes something": its published levels trade a random affine map
  # (jitter 0.08 of the side at level 1, 0.03 at 5) against a local
  # displacement field (none at 1), so the mean change falls with the level
  # while the local distortion grows (tests/test-corrupt.c checks its maps).
  # Spatter is checked like saturation: its levels 1-3 are water and 4-5 mud,
  # and water at 3 changes more than mud at 4 (0.028 vs 0.010 on 200
  # Fashion-MNIST images).
  awk -F, 'NR > 1 { if ($2 == 0 && $3 != 0) exit 1; if ($2 > 0 && !($3 > 0)) exit 1;
    loose = $1 == "saturate" || $1 == "pixelate" || $1 == "glass_blur" || $1 == "motion_blur" ||
      $1 == "spatter";
    free = $1 == "elastic_transform"; if ($2 == 1) s1 = $3;
    if ($2 > 1 && $1 == f && !loose && !free && !($3 > prev)) exit 1;
    if ($2 == 5 && !free && !($3 > s1)) exit 1;
    f = $1; prev = $3 }' "$work/corr.csv" ||
    { echo "FAIL: corruption strengths"; cat "$work/corr.csv"; exit 1; }
fi
if [ "$part" != eval ]; then # resuming, schedules, divergence, attacks on an ODE
  # --resume continues exactly: 1 epoch + resume = 2 epochs, bit for bit
  opts="--data fashion-mnist --width 4 --groups 2 --subset 100 --stages 1,1 --batch 50 --sigma 0.5"
  "$train" $opts --out "$work/a.nsde" --epochs 2 >/dev/null
  "$train" $opts --out "$work/b.nsde" --epochs 1 >/dev/null
  "$train" $opts --out "$work/b.nsde" --epochs 2 --resume >/dev/null
  cmp "$work/a.nsde" "$work/b.nsde" || { echo "FAIL: resumed model differs"; exit 1; }
  head -c 30 "$work/a.nsde.state" >"$work/b.nsde.state"
  if "$train" $opts --out "$work/b.nsde" --epochs 2 --resume >"$work/resume.log" 2>&1; then
    echo "FAIL: a truncated training state was accepted"; exit 1
  fi
  grep -q "truncated" "$work/resume.log" || { echo "FAIL: no clear message"; cat "$work/resume.log"; exit 1; }
  # the same with the strided stem, the cosine schedule (per-batch learning
  # rate, warm-up), weight decay and Nesterov momentum
  opts="--data fashion-mnist --width 4 --groups 2 --subset 100 --batch 50 --sigma 0.5 --arch large \
    --schedule cosine --warmup 0.5 --wd 5e-4 --nesterov"
  "$train" $opts --out "$work/c.nsde" --epochs 2 >/dev/null
  "$train" $opts --out "$work/d.nsde" --epochs 2 --stop-after 1 >/dev/null
  "$train" $opts --out "$work/d.nsde" --epochs 2 --resume >/dev/null
  cmp "$work/c.nsde" "$work/d.nsde" || { echo "FAIL: resumed cosine model differs"; exit 1; }
  # a diverging run stops with a message naming the epoch and batch, and the
  # model file of the last finished epoch stays as it was
  "$train" $opts --out "$work/c.nsde" --epochs 1 >/dev/null
  cp "$work/c.nsde" "$work/good.nsde"
  rc=0
  "$train" $opts --out "$work/c.nsde" --epochs 3 --lr 1e6 --resume >"$work/div.log" 2>&1 || rc=$?
  [ $rc -eq 3 ] || { echo "FAIL: a diverging run exited with $rc, expected 3"; cat "$work/div.log"; exit 1; }
  grep -q "diverged .* at epoch 2, batch [0-9]" "$work/div.log" ||
    { echo "FAIL: no message naming the epoch and batch"; cat "$work/div.log"; exit 1; }
  cmp "$work/c.nsde" "$work/good.nsde" || { echo "FAIL: the last good model was overwritten"; exit 1; }
  # attack sanity on a deterministic (ODE) model: for every method the accuracy
  # never rises above eps = 0, TTN equals the clean accuracy, and the distortion
  # stays within each budget
  mkdir -p "$work/ode"
  "$train" --data fashion-mnist --out "$work/ode.nsde" --width 8 --groups 2 --subset 1000 --epochs 3 \
    --stages 3 --batch 25 --lr 0.5 --noise ode >/dev/null
  "$eval" --model "$work/ode.nsde" --data fashion-mnist --subset 50 --ttn 2 --attack-images 50 \
    --attack-steps 5 --eps 0,0.5,1.5 --severities 0 --out "$work/ode" >"$work/ode-eval.log"
  cat "$work/ode-eval.log"
  awk -F, '/^clean_accuracy/ { c = $2 } /^ttn_accuracy/ { if ($2 != c) exit 1 }' "$work/ode/summary.csv" ||
    { echo "FAIL: TTN differs from clean on an ODE model"; cat "$work/ode/summary.csv"; exit 1; }
  # an ODE has one path: averaging over "noisy" passes is the plain attack
  mkdir -p "$work/ode-eot"
  "$eval" --model "$work/ode.nsde" --data fashion-mnist --subset 50 --ttn 2 --attack-images 50 \
    --attack-steps 5 --eps 0,0.5,1.5 --severities 0 --attack-eot 3 --out "$work/ode-eot" >/dev/null
  cmp "$work/ode/attack.csv" "$work/ode-eot/attack.csv" || { echo "FAIL: EOT changes an ODE's attack"; exit 1; }
  # and with its noise off: an ODE has none
  mkdir -p "$work/ode-off"
  "$eval" --model "$work/ode.nsde" --data fashion-mnist --subset 50 --ttn 2 --attack-images 50 \
    --attack-steps 5 --eps 0,0.5,1.5 --severities 0 --attack-noise off --out "$work/ode-off" >/dev/null
  cmp "$work/ode/attack.csv" "$work/ode-off/attack.csv" || { echo "FAIL: --attack-noise off changes an ODE's attack"; exit 1; }
  grep -q '^attack_eot,1$' "$work/ode-eot/summary.csv" || { echo "FAIL: an ODE's attack_eot is not 1"; exit 1; }
  # PGD with random restarts: run 0 is the attack from the clean image, so no
  # image survives 3 runs that 1 run broke, the authors' attack is as it was,
  # and the images that survive come back from a random start (another
  # distortion)
  mkdir -p "$work/ode-restarts"
  "$eval" --model "$work/ode.nsde" --data fashion-mnist --subset 50 --ttn 2 --attack-images 50 \
    --attack-steps 5 --eps 0,0.5,1.5 --severities 0 --attack-restarts 3 --out "$work/ode-restarts" >/dev/null
  grep -q '^attack_restarts,3$' "$work/ode-restarts/summary.csv" || { echo "FAIL: summary.csv lacks attack_restarts"; exit 1; }
  awk -F, 'NR == FNR { if (FNR > 1) c[$1 "," $2 "," $3] = $4; next }
    FNR > 1 { k = $1 "," $2 "," $3; if (!(k in c) || $4 > c[k] || ($1 != "pgd" && $4 != c[k])) exit 1; n++ }
    END { exit n == 0 }' "$work/ode/attack-images.csv" "$work/ode-restarts/attack-images.csv" ||
    { echo "FAIL: restarts made PGD weaker or changed the authors' attack"; exit 1; }
  awk -F, 'NR == FNR { if ($1 == "pgd" && $2 == 0.5) d = $4; next } $1 == "pgd" && $2 == 0.5 && $4 == d { exit 1 }' \
    "$work/ode/attack.csv" "$work/ode-restarts/attack.csv" || { echo "FAIL: --attack-restarts ignored"; exit 1; }
  check_attack "$work/ode-restarts/attack.csv" "restarts attack.csv"
  [ "$(wc -l <"$work/ode/attack.csv")" -eq 10 ] || { echo "FAIL: attack.csv"; cat "$work/ode/attack.csv"; exit 1; }
  check_attack "$work/ode/attack.csv" "ODE attack.csv"
  # PGD must find something at eps 1.5 on a barely trained model
  awk -F, '$1 == "pgd" && $2 == 0 { a0 = $3 } $1 == "pgd" && $2 == 1.5 { if (!($3 < a0)) exit 1 }' \
    "$work/ode/attack.csv" || { echo "FAIL: PGD does not lower the accuracy"; cat "$work/ode/attack.csv"; exit 1; }
fi
if [ "$part" != train ]; then
  # every output exists and holds numbers in range
  [ "$(wc -l <"$work/train.csv")" -eq 3 ] || { echo "FAIL: train.csv"; exit 1; }
  awk -F, 'NR > 1 && ($4 < 0 || $4 > 1) { exit 1 }' "$work/train.csv"
  grep -q '^clean_accuracy,0\.' "$work/summary.csv" || { echo "FAIL: summary.csv"; cat "$work/summary.csv"; exit 1; }
  # predictions.csv: one row per test image, its accuracies those of summary.csv
  [ "$(wc -l <"$work/predictions.csv")" -eq 51 ] || { echo "FAIL: predictions.csv rows"; exit 1; }
  awk -F, 'NR == FNR { if ($1 == "clean_accuracy") c = $2; if ($1 == "ttn_accuracy") t = $2; next }
    FNR > 1 { n++; c0 += $2 == $3; ct += $2 == $4; if ($3 < 0 || $3 > 9 || $4 < 0 || $4 > 9) bad = 1 }
    END { d0 = c0 / n - c; dt = ct / n - t; exit bad || !(n == 50 && d0 * d0 < 1e-12 && dt * dt < 1e-12) }' \
    "$work/summary.csv" "$work/predictions.csv" ||
    { echo "FAIL: predictions.csv disagrees with summary.csv"; head "$work/predictions.csv" "$work/summary.csv"; exit 1; }
  # attack-images.csv: each attacked image's outcome; per method and eps the
  # mean is attack.csv's accuracy
  awk -F, 'NR == FNR { if (FNR > 1) { a[$1 "," $2] = $3; na[$1 "," $2] = $6 } next }
    FNR > 1 { k = $1 "," $2; s[k] += $4; n[k]++; if ($4 != 0 && $4 != 1) bad = 1 }
    END { for (k in a) { if (n[k] != na[k]) bad = 1; d = s[k] / n[k] - a[k]; if (d * d > 1e-10) bad = 1 }
          for (k in n) if (!(k in a)) bad = 1
          exit bad }' "$work/attack.csv" "$work/attack-images.csv" ||
    { echo "FAIL: attack-images.csv disagrees with attack.csv"; cat "$work/attack.csv"; exit 1; }
  # Fig. 4 data: 51 times from 0 to 1, relative changes finite and positive
  [ "$(wc -l <"$work/hidden.csv")" -eq 52 ] || { echo "FAIL: hidden.csv"; exit 1; }
  awk -F, 'NR == 2 && $1 != 0 { exit 1 } NR == 52 && $1 != 1 { exit 1 } NR > 1 && !($2 > 0 && $2 < 10) { exit 1 }' \
    "$work/hidden.csv" || { echo "FAIL: hidden.csv values"; cat "$work/hidden.csv"; exit 1; }
  # the SDE's curve with the noise off: the same layout, and the same eps_0
  # (at t = 0 the hidden state does not depend on the noise)
  [ "$(wc -l <"$work/hidden-noise-off.csv")" -eq 52 ] || { echo "FAIL: hidden-noise-off.csv"; exit 1; }
  awk -F, 'NR == FNR { if (FNR == 2) e0 = $2; next } FNR == 2 && ($2 - e0) ^ 2 > 1e-8 * e0 ^ 2 { exit 1 }
    FNR > 1 && !($2 > 0 && $2 < 10) { exit 1 }' "$work/hidden.csv" "$work/hidden-noise-off.csv" ||
    { echo "FAIL: hidden-noise-off.csv values"; cat "$work/hidden-noise-off.csv"; exit 1; }
  # each image's ends, per curve: their means over the 2 images are the
  # curves' first and last values
  [ "$(wc -l <"$work/hidden-images.csv")" -eq 5 ] || { echo "FAIL: hidden-images.csv"; exit 1; }
  awk -F, 'FILENAME ~ /hidden-images/ { if (FNR > 1) { s0[$1] += $3 / 2; sT[$1] += $4 / 2 }; next }
    FNR == 2 { e0[FILENAME ~ /noise-off/] = $2 } FNR == 52 { eT[FILENAME ~ /noise-off/] = $2 }
    function far(a, b) { return (a - b) ^ 2 > 1e-8 * b ^ 2 }
    END { exit far(s0["model"], e0[0]) || far(sT["model"], eT[0]) || far(s0["noise-off"], e0[1]) ||
                far(sT["noise-off"], eT[1]) }' "$work/hidden.csv" "$work/hidden-noise-off.csv" \
    "$work/hidden-images.csv" || { echo "FAIL: hidden-images.csv values"; cat "$work/hidden-images.csv"; exit 1; }
  [ "$(wc -l <"$work/attack.csv")" -eq 7 ] || { echo "FAIL: attack.csv"; cat "$work/attack.csv"; exit 1; }
  # corruptions under two protocols (the default: noise off and TTN with the
  # --ttn 3 passes), severities 0-2, each with its drop from severity 0
  [ "$(wc -l <"$work/corruption.csv")" -eq $((1 + 3 * 2 * nfam)) ] || { echo "FAIL: corruption.csv"; exit 1; }
  awk -F, 'FNR == 1 { next } NR == FNR { if ($1 == "clean_accuracy") clean = $2; next }
    $6 != 0 && $6 != 3 { bad = 1 }
    $1 == 0 { a0[$6] = $3; if ($6 == 0 && ($3 - clean) ^ 2 > 1e-12) bad = 1 }
    $1 > 0 && (($7 - (a0[$6] - $3)) ^ 2 > 1e-10) { bad = 1 }
    END { exit bad }' "$work/summary.csv" "$work/corruption.csv" ||
    { echo "FAIL: corruption.csv: protocols, severity 0 (noise off = clean accuracy) or drops"
      cat "$work/corruption.csv"; exit 1; }
  # corruption-images.csv: each image's outcome; per severity, family and
  # protocol the mean is corruption.csv's accuracy (severity 0 once, "none")
  awk -F, 'NR == FNR { if (FNR > 1) { k = $1 "," ($1 == 0 ? "none" : $2) "," $6; a[k] = $3; na[k] = $5 } next }
    FNR > 1 { k = $1 "," $2 "," $3; s[k] += $5; n[k]++; if ($5 != 0 && $5 != 1) bad = 1 }
    END { for (k in a) { if (n[k] != na[k]) bad = 1; d = s[k] / n[k] - a[k]; if (d * d > 1e-10) bad = 1 }
          for (k in n) if (!(k in a)) bad = 1
          exit bad }' "$work/corruption.csv" "$work/corruption-images.csv" ||
    { echo "FAIL: corruption-images.csv disagrees with corruption.csv"; exit 1; }
  check_attack "$work/attack.csv" "attack.csv"
  # a corrupted model file is refused with a message, not a crash
  head -c 100 "$work/m.nsde" >"$work/broken.nsde"
  if "$eval" --model "$work/broken.nsde" --data fashion-mnist --subset 100 >"$work/broken.log" 2>&1; then
    echo "FAIL: a truncated model file was accepted"; exit 1
  fi
  grep -q "truncated\|impossible" "$work/broken.log" || { echo "FAIL: no clear message"; cat "$work/broken.log"; exit 1; }
fi
echo "1 passed, 0 failed"

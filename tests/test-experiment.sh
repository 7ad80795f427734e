#!/bin/sh
# A tiny end-to-end run of the experiment programs on real Fashion-MNIST
# images: train an SDE model briefly, evaluate it, and check the outputs.
# usage: test-experiment.sh NSDE_TRAIN NSDE_EVAL WORKDIR
set -eu
train=$1 eval=$2 work=$3/experiment-test
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || { echo "FAIL: $fm missing (apt-get install dataset-fashion-mnist)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
"$train" --data fashion-mnist --out "$work/m.nsde" --width 8 --groups 2 --subset 200 --epochs 2 \
  --stages 2 --batch 50 --noise multiplicative --sigma 0.5 --metrics "$work/train.csv" >"$work/train.log"
"$eval" --model "$work/m.nsde" --data fashion-mnist --subset 100 --ttn 3 --attack-images 50 \
  --attack-steps 3 --eps 0,1.0 --severities 2 --out "$work" >"$work/eval.log"
cat "$work/eval.log"
# every output exists and holds numbers in range
[ "$(wc -l <"$work/train.csv")" -eq 3 ] || { echo "FAIL: train.csv"; exit 1; }
awk -F, 'NR > 1 && ($4 < 0 || $4 > 1) { exit 1 }' "$work/train.csv"
grep -q '^clean_accuracy,0\.' "$work/summary.csv" || { echo "FAIL: summary.csv"; cat "$work/summary.csv"; exit 1; }
[ "$(wc -l <"$work/attack.csv")" -eq 3 ] || { echo "FAIL: attack.csv"; exit 1; }
[ "$(wc -l <"$work/corruption.csv")" -eq 16 ] || { echo "FAIL: corruption.csv"; exit 1; }
# the attack never helps: accuracy at eps 1.0 is not above eps 0, and the
# distortion stays within the budget
awk -F, 'NR == 2 { a0 = $2 } NR == 3 { if ($2 > a0 + 1e-9 || $3 > 1.0 + 1e-6) exit 1 }' "$work/attack.csv" ||
  { echo "FAIL: attack.csv"; cat "$work/attack.csv"; exit 1; }
# a corrupted model file is refused with a message, not a crash
head -c 100 "$work/m.nsde" >"$work/broken.nsde"
if "$eval" --model "$work/broken.nsde" --data fashion-mnist --subset 100 >"$work/broken.log" 2>&1; then
  echo "FAIL: a truncated model file was accepted"; exit 1
fi
grep -q "truncated\|impossible" "$work/broken.log" || { echo "FAIL: no clear message"; cat "$work/broken.log"; exit 1; }
echo "1 passed, 0 failed"

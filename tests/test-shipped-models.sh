#!/bin/sh
# The shipped CIFAR-10 models (models/): each file matches its SHA-256, loads,
# and nsde-eval gives the recorded clean accuracy on the first 500 test
# images (models/expected.csv). The tolerance is 3 images: the recorded value
# comes from one machine, and another CPU's kernels (BLIS zen3 instead of
# skx, AVX2 instead of AVX-512) round differently, which can move an image
# that sits on a decision boundary.
# usage: test-shipped-models.sh NSDE_EVAL MODELS_DIR CIFAR_SRC WORKDIR
set -eu
eval_bin=$1 models=$2 src=$3 work=$4/shipped-models-test
[ -s "$models/expected.csv" ] || { echo "no shipped models"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
(cd "$models" && sha256sum -c --quiet SHA256SUMS) || { echo "FAIL: a shipped model does not match its SHA-256"; exit 1; }
if [ -x "$src/unpack.sh" ]; then
  "$src/unpack.sh" "$4/cifar" >/dev/null || { echo "FAIL: cannot unpack CIFAR-10 from $src"; exit 1; }
  data=$4/cifar/cifar-10-batches-bin
else
  data=$src
fi
[ -f "$data/test_batch.bin" ] || { echo "FAIL: no CIFAR-10 test batch in $data (is ../shared beside the checkout?)"; exit 1; }
fail=0 n=0
while IFS=, read -r file images acc; do
  [ "$file" = file ] && continue
  n=$((n + 1))
  "$eval_bin" --model "$models/$file" --data cifar10 --data-dir "$data" --subset "$images" --ttn 0 \
    --attack-images 0 --severities 0 --out "$work" >"$work/eval.log" 2>&1 ||
    { echo "FAIL: nsde-eval on $file"; cat "$work/eval.log"; fail=1; continue; }
  got=$(awk -F, '$1 == "clean_accuracy" { print $2 }' "$work/summary.csv")
  if awk -v g="$got" -v e="$acc" -v n="$images" 'BEGIN { d = g - e; if (d < 0) d = -d; exit !(d * n <= 3.5) }'; then
    echo "ok: $file: clean accuracy $got on the first $images test images (recorded $acc)"
  else
    echo "FAIL: $file: clean accuracy $got on the first $images test images, recorded $acc"
    fail=1
  fi
done <"$models/expected.csv"
# Carlini-Wagner on a trained ODE: the model is deterministic, so every
# iterate the attack records (logit margin <= 0) must be misclassified when
# nsde-eval confirms it with TTN, and the attack must find some
ode=$(awk -F, '$1 ~ /-ode-/ { print $1; exit }' "$models/expected.csv")
if [ -n "$ode" ]; then
  "$eval_bin" --model "$models/$ode" --data cifar10 --data-dir "$data" --subset 100 --ttn 2 --attack-images 100 \
    --attack-steps 20 --attacks cw --eps 0,0.3 --severities 0 --out "$work" >"$work/cw.log" 2>&1 ||
    { echo "FAIL: nsde-eval C&W on $ode"; cat "$work/cw.log"; exit 1; }
  if grep -Eq "cw +kappa 0: [1-9][0-9]* of the [0-9]+ correctly classified images reached a margin <= -kappa; TTN does not confirm 0 of" "$work/cw.log"; then
    echo "ok: $ode: every C&W adversarial confirmed by TTN"
  else
    echo "FAIL: $ode: C&W found nothing, or TTN disagrees with a deterministic model's margin"; grep "cw " "$work/cw.log"; fail=1
  fi
fi
[ $fail -eq 0 ] && echo "$n shipped models passed"
exit $fail

#!/bin/sh
# The attack protocols of the paper-regime issue on trained CIFAR-10 models:
# l2 PGD with expectation over transformation (EOT paths per gradient) at
# EPS on ATTACK_IMAGES test images, with the noise on and with it off (a
# stochastic defence against a smoother learned map); with CHECK=1 also the
# strength check: 100 steps and 5 random restarts on CHECK_IMAGES images, which
# should lower the accuracy by less than one standard error; and the
# paper's Fig. 4 averaged over HIDDEN_PASSES noisy passes on HIDDEN_IMAGES
# images, with an SDE's curve with the noise off and each image's ends
# (folder fig4). One folder per protocol under each model's folder; finished
# ones are skipped, so it can be run again after an interruption.
#
# usage: tools/cifar-attacks.sh CIFAR10_BIN_DIR MODEL_DIR...   (after meson compile -C build)
#   each MODEL_DIR holds model.nsde (tools/cifar-results.sh's folders)
# Knobs (environment), defaults in brackets: EPS [0,0.05,0.1,0.2]
#   ATTACK_IMAGES [500]  ATTACK_STEPS [50]  EOT [8]  TTN [20]  THREADS [0: all]
#   CHECK [0]  CHECK_IMAGES [200]  HIDDEN_PASSES [1000]  HIDDEN_IMAGES [20]
set -eu
[ $# -ge 2 ] || { echo "usage: $0 CIFAR10_BIN_DIR MODEL_DIR..." >&2; exit 2; }
data=$1
shift
bin=${BUILD:-build}/apps
eps=${EPS:-0,0.05,0.1,0.2} images=${ATTACK_IMAGES:-500} steps=${ATTACK_STEPS:-50}
eot=${EOT:-8} ttn=${TTN:-20} threads=${THREADS:-0} check_images=${CHECK_IMAGES:-200}
# protocol NAME OPTIONS...: one nsde-eval run into MODEL_DIR/NAME
protocol() {
  name=$1
  shift
  [ -f "$dir/$name/eval.done" ] && return 0
  mkdir -p "$dir/$name"
  start=$(date +%s)
  "$bin/nsde-eval" --model "$dir/model.nsde" --data cifar10 --data-dir "$data" --ttn "$ttn" \
    --attacks pgd --severities 0 --threads "$threads" --out "$dir/$name" "$@" >"$dir/$name/eval.log"
  touch "$dir/$name/eval.done"
  echo "$dir $name: $(($(date +%s) - start)) s"
}
for dir in "$@"; do
  [ -f "$dir/model.nsde" ] || { echo "$0: no $dir/model.nsde" >&2; exit 2; }
  protocol "pgd-eot$eot" --subset "$images" --attack-images "$images" --attack-steps "$steps" \
    --attack-eot "$eot" --eps "$eps"
  protocol pgd-noise-off --subset "$images" --attack-images "$images" --attack-steps "$steps" \
    --attack-noise off --eps "$eps"
  protocol fig4 --subset "${HIDDEN_IMAGES:-20}" --attack-images 0 --hidden-curve "${HIDDEN_PASSES:-1000}" \
    --hidden-images "${HIDDEN_IMAGES:-20}"
  if [ "${CHECK:-0}" = 1 ]; then
    n=$check_images
    protocol pgd-check-base --subset "$n" --attack-images "$n" --attack-steps "$steps" \
      --attack-eot "$eot" --eps "$eps"
    protocol pgd-check-strong --subset "$n" --attack-images "$n" --attack-steps 100 \
      --attack-restarts 5 --attack-eot "$eot" --eps "$eps"
  fi
done

#!/bin/sh
# The CIFAR-10 runs behind doc/results.md: the recipe of doc/results.md
# (the paper's classifier with its strided stem, SDE block of width 64 at
# 8x8, T = 1 on the paper's Euler-Maruyama grid, cosine learning rate, weight
# decay 5e-4, all 50,000 training images with the paper's random crops), one
# model per line of RUNS, each then evaluated as the reproduction issue asks.
# Resumable: run it again after an interruption and every run continues from
# its last finished epoch (nsde-train --resume); finished runs and finished
# evaluations are skipped. Keep OUT_DIR outside the repository.
#
# usage: tools/cifar-results.sh CIFAR10_BIN_DIR OUT_DIR   (after meson compile -C build)
# Knobs (environment), defaults in brackets:
#   RUNS     noise:sigma:seed ... ["ode:0:1 multiplicative:1.0:1 additive:0.5:1 dropout:0.5:1
#            ode:0:2 ode:0:3 multiplicative:1.0:2 multiplicative:1.0:3"]: seeds 1-3 of the ODE
#            and of the best SDE at seed 1 (multiplicative and dropout tie at 0.8395 clean;
#            multiplicative is the noise the paper's stability analysis is about)
#   EPOCHS [30]  WIDTH [64]  THREADS [0: all]  EVAL [1]
#   TRAIN [1]; with TRAIN=0 an OUT_DIR/NOISE-sSEED/model.nsde without a .state file is
#            evaluated too, for example a shipped model copied there (models/cifar10-ode-s1.nsde -> OUT_DIR/ode-s1/model.nsde)
#   TEST_IMAGES [10000]  TTN [20]  ATTACK_IMAGES [1000]  ATTACK_STEPS [40]
#   ATTACK_EOT [1]: noisy passes averaged per attack gradient (nsde-eval --attack-eot)
#   EPS [0,0.05,0.1,0.2,0.3,0.5]  CORRUPTION_IMAGES [2000]  HIDDEN_IMAGES [100]
#   RECIPE [cosine]: cosine is the recipe above; paper is the paper's own (SGD momentum 0.9,
#            no Nesterov, no weight decay, lr 0.1 divided by 10 at each of STAGES, momentum
#            reset per stage), STAGES [40,40,20,20] (EPOCHS is then their sum)
#   VAL [0]: training images held out for validation (nsde-train --val; 5000 for the sigma
#            sweep: the last 5,000, never the test set)
#   SIGMA_DIRS [0]: 1 names each run's folder NOISE-SIGMA-sSEED (a sweep over sigma),
#            else NOISE-sSEED
#   PIN [1]: each run keeps the build it started with (its folder's file build); 0: BUILD's
# Several copies may run at once on the same OUT_DIR and RUNS (tools/paper-regime.sh JOBS):
# each run is claimed with flock(1) on its folder's run.lock for as long as it trains and
# evaluates, and a copy passes over runs another copy holds (a killed copy's claim ends with
# it). The results do not depend on THREADS, so two 1-thread copies on 2 cores give the same
# models as one 2-thread copy, about 7% sooner in all (their threads never wait on each other).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CIFAR10_BIN_DIR OUT_DIR" >&2; exit 2; }
data=$1 out=$2 bin=${BUILD:-build}/apps
[ -x "$bin/nsde-train" ] || bin=${BUILD:-build}/examples # a build from before apps/
runs=${RUNS:-"ode:0:1 multiplicative:1.0:1 additive:0.5:1 dropout:0.5:1 ode:0:2 ode:0:3 multiplicative:1.0:2 multiplicative:1.0:3"}
recipe=${RECIPE:-cosine} stages=${STAGES:-40,40,20,20} val=${VAL:-0}
width=${WIDTH:-64} threads=${THREADS:-0}
case $recipe in
  cosine) epochs=${EPOCHS:-30}
    schedule="--schedule cosine --epochs $epochs --warmup 1 --wd 5e-4 --nesterov" ;;
  paper) epochs=$(echo "$stages" | tr ',' '\n' | awk '{ s += $1 } END { print s }')
    schedule="--schedule step --stages $stages" ;;
  *) echo "RECIPE must be cosine or paper" >&2; exit 2 ;;
esac
test_images=${TEST_IMAGES:-10000} ttn=${TTN:-20} attack_images=${ATTACK_IMAGES:-1000}
attack_steps=${ATTACK_STEPS:-40} attack_eot=${ATTACK_EOT:-1} eps=${EPS:-0,0.05,0.1,0.2,0.3,0.5}
corruption_images=${CORRUPTION_IMAGES:-2000} hidden_images=${HIDDEN_IMAGES:-100}
mkdir -p "$out"
# epochs finished by a run: MODEL.state holds them as a u32 at byte 8
done_epochs() { [ -f "$1.state" ] && od -An -t u4 -j 8 -N 4 "$1.state" | tr -d ' ' || echo 0; }
for run in $runs; do
  noise=${run%%:*} rest=${run#*:}
  sigma=${rest%%:*} seed=${rest#*:}
  dir=$out/$noise-s$seed
  [ "${SIGMA_DIRS:-0}" = 1 ] && dir=$out/$noise-$sigma-s$seed
  model=$dir/model.nsde
  mkdir -p "$dir"
  # a finished run (trained, and evaluated unless EVAL=0) is passed over without a claim
  if [ "$(done_epochs "$model")" -ge "$epochs" ] && { [ "${EVAL:-1}" != 1 ] || [ -f "$dir/eval.done" ]; }; then
    continue
  fi
  exec 9>"$dir/run.lock"
  if ! flock -n 9; then
    echo "$noise sigma $sigma seed $seed: another copy has it" >&2
    exec 9>&-
    continue
  fi
  # a run keeps the programs it started with: a fresh run writes their folder to DIR/build,
  # and every later sitting (training, evaluation) uses that folder, so one build trains a
  # model from its first epoch to its last whatever BUILD says then (PIN=0: BUILD's always)
  rbin=$bin
  if [ "${PIN:-1}" = 1 ] && [ -f "$dir/build" ]; then
    rbin=$(cat "$dir/build")
    if [ ! -x "$rbin/nsde-train" ]; then
      echo "$0: $dir/build names $rbin, which has no nsde-train (PIN=0 uses $bin)" >&2
      exit 1
    fi
  elif [ "${PIN:-1}" = 1 ] && [ "${TRAIN:-1}" = 1 ] && [ ! -f "$model.state" ]; then
    (cd "$bin" && pwd) >"$dir/build"
  fi
  if [ "${TRAIN:-1}" = 1 ] && [ "$(done_epochs "$model")" -lt "$epochs" ]; then
    resume=
    [ -f "$model.state" ] && resume=--resume
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$rbin/nsde-train" --data cifar10 --data-dir "$data" --out "$model" --noise "$noise" \
      --sigma "$sigma" --arch large --width "$width" $schedule --val "$val" \
      --lr 0.1 --batch 128 --crop 4 --seed "$seed" \
      --threads "$threads" --metrics "$dir/train.csv" $resume >>"$dir/train.log"
    echo "$noise sigma $sigma seed $seed: trained $(($(date +%s) - start)) s in this sitting" |
      tee -a "$out/times.txt"
  fi
  trained=0
  [ "$(done_epochs "$model")" -ge "$epochs" ] && trained=1
  # a model without training state (a copied, finished model) counts as trained
  [ "${TRAIN:-1}" = 0 ] && [ -f "$model" ] && [ ! -f "$model.state" ] && trained=1
  if [ "${EVAL:-1}" = 1 ] && [ $trained = 1 ] && [ ! -f "$dir/eval.done" ]; then
    start=$(date +%s)
    "$rbin/nsde-eval" --model "$model" --data cifar10 --data-dir "$data" --subset "$test_images" \
      --ttn "$ttn" --attack-images "$attack_images" --attack-steps "$attack_steps" \
      --attack-eot "$attack_eot" \
      --attacks authors,pgd,cw --eps "$eps" --severities 5 --corruption-passes 0,"$ttn" \
      --corruption-images "$corruption_images" --hidden-curve 20 --hidden-images "$hidden_images" \
      --seed "$seed" --threads "$threads" --out "$dir" >"$dir/eval.log"
    touch "$dir/eval.done"
    echo "$noise sigma $sigma seed $seed: evaluated in $(($(date +%s) - start)) s" | tee -a "$out/times.txt"
  fi
  exec 9>&- # the claim ends with the run
done

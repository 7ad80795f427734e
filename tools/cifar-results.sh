#!/bin/sh
# The CIFAR-10 runs behind doc/results.md: a reduced schedule of the paper's
# recipe, a Neural ODE and a Neural SDE per seed, each evaluated on clean
# (noise off and TTN), attacked (the authors' attack and l2 PGD), corrupted
# and hidden-state data. Every knob is an environment variable; the defaults
# are what doc/results.md reports.
#
# usage: tools/cifar-results.sh CIFAR10_BIN_DIR OUT_DIR   (after meson compile -C build)
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CIFAR10_BIN_DIR OUT_DIR" >&2; exit 2; }
data=$1 out=$2 bin=${BUILD:-build}/examples
seeds=${SEEDS:-"1 2"} train_images=${TRAIN_IMAGES:-5000} width=${WIDTH:-16} groups=${GN_GROUPS:-4}
stages=${STAGES:-3,2,1} sde_noise=${SDE_NOISE:-additive} sde_sigma=${SDE_SIGMA:-0.5}
test_images=${TEST_IMAGES:-1000} attack_images=${ATTACK_IMAGES:-100} eps=${EPS:-0,0.1,0.2,0.5}
mkdir -p "$out"
for seed in $seeds; do
  for model in ode sde; do
    if [ $model = ode ]; then noise="--noise ode"; else noise="--noise $sde_noise --sigma $sde_sigma"; fi
    dir=$out/$model-seed$seed
    mkdir -p "$dir"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$bin/nsde-train" --data cifar10 --data-dir "$data" --out "$dir/model.nsde" $noise \
      --width "$width" --groups "$groups" --subset "$train_images" --stages "$stages" --batch 128 \
      --crop 4 --seed "$seed" --metrics "$dir/train.csv" >"$dir/train.log"
    mid=$(date +%s)
    "$bin/nsde-eval" --model "$dir/model.nsde" --data cifar10 --data-dir "$data" \
      --subset "$test_images" --ttn 10 --attack-images "$attack_images" --attack-steps 20 \
      --attacks authors,pgd --eps "$eps" --severities 5 --corruption-passes 1 \
      --corruption-images 500 --hidden-curve 20 --seed "$seed" --out "$dir" >"$dir/eval.log"
    echo "$model seed $seed: train $((mid - start)) s, eval $(($(date +%s) - mid)) s" | tee -a "$out/times.txt"
  done
done

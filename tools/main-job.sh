#!/bin/sh
# The Neural SDE experiment in minutes: train a Neural ODE and a Neural SDE
# (multiplicative noise) briefly, then evaluate both: clean accuracy without
# noise and with the test-time noise ensemble (TTN), accuracy under the
# authors' l2 attack, and under CIFAR-10-C style corruptions; write CSV files
# and PNG plots.
#
# usage: tools/main-job.sh [CIFAR10_DIR]
#   default: Fashion-MNIST from Debian's dataset-fashion-mnist package
#   CIFAR10_DIR: a folder of *.bin.xz files with unpack.sh (../shared/data/cifar10)
#                or an unpacked cifar-10-batches-bin folder
# Knobs (environment): TRAIN_IMAGES, EPOCHS, WIDTH, TEST_IMAGES, ATTACK_IMAGES.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
meson compile -C build >/dev/null

if [ $# -ge 1 ]; then
  data=cifar10
  if [ -x "$1/unpack.sh" ]; then
    "$1/unpack.sh" build/cifar10 >/dev/null
    dir=build/cifar10/cifar-10-batches-bin
  else
    dir=$1
  fi
  eps=${EPS:-0,0.25,0.5}
  crop=4
else
  data=fashion-mnist
  dir=/usr/share/datasets/fashion-mnist
  eps=${EPS:-0,0.5,1.0}
  crop=0
fi
train_images=${TRAIN_IMAGES:-2000}
epochs=${EPOCHS:-2}
width=${WIDTH:-16}
test_images=${TEST_IMAGES:-200}
attack_images=${ATTACK_IMAGES:-100}
out=results/$data
mkdir -p "$out"
start=$(date +%s)
echo "main job: $data, $train_images training images x $epochs epochs, width $width; results in $out"
for model in ode sde; do
  if [ $model = ode ]; then noise="--noise ode"; else noise="--noise multiplicative --sigma 0.5"; fi
  # shellcheck disable=SC2086
  ./build/examples/nsde-train --data $data --data-dir "$dir" --out "$out/$model.nsde" $noise \
    --width "$width" --groups 4 --subset "$train_images" --epochs "$epochs" --stages "$epochs" \
    --batch 50 --lr 0.1 --crop $crop --metrics "$out/$model-train.csv"
  mkdir -p "$out/$model"
  ./build/examples/nsde-eval --model "$out/$model.nsde" --data $data --data-dir "$dir" \
    --subset "$test_images" --ttn 10 --attack-images "$attack_images" --attack-steps 10 \
    --attacks authors,pgd --hidden-curve 20 \
    --eps "$eps" --severities 5 --corruption-passes 1 --out "$out/$model"
done

# mean corruption accuracy per severity, and the plots
for model in ode sde; do
  awk -F, 'NR > 1 { s[$1] += $3; n[$1]++ } END { for (k in s) print k, s[k] / n[k] }' \
    "$out/$model/corruption.csv" | sort -n >"$out/$model/corruption-mean.dat"
  for meth in authors pgd; do
    awk -F, -v m=$meth '$1 == m { print $2, $3, $4 }' "$out/$model/attack.csv" >"$out/$model/attack-$meth.dat"
  done
done
if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "set terminal png size 800,500; set output '$out/attack.png'; set key top right;
    set title 'l2 attacks (noise on, TTN classification)'; set xlabel 'eps (l2 budget)';
    set ylabel 'accuracy'; set yrange [0:1];
    plot '$out/ode/attack-authors.dat' u 1:2 w lp lw 2 t 'Neural ODE, authors attack',
         '$out/sde/attack-authors.dat' u 1:2 w lp lw 2 t 'Neural SDE (multiplicative), authors attack',
         '$out/ode/attack-pgd.dat' u 1:2 w lp lw 2 dt 2 t 'Neural ODE, PGD',
         '$out/sde/attack-pgd.dat' u 1:2 w lp lw 2 dt 2 t 'Neural SDE, PGD'"
  gnuplot -e "set terminal png size 800,500; set output '$out/hidden.png'; set key top right;
    set title 'hidden-state perturbation, first test image, eps 0.1 attack (Fig. 4)';
    set xlabel 't'; set ylabel 'eps_t = |E h_t(x_{adv}) - E h_t(x)| / |E h_t(x)|'; set datafile separator ',';
    plot '$out/ode/hidden.csv' u 1:2 every ::1 w l lw 2 t 'Neural ODE', '$out/sde/hidden.csv' u 1:2 every ::1 w l lw 2 t 'Neural SDE (multiplicative)'"
  gnuplot -e "set terminal png size 800,500; set output '$out/corruption.png'; set key top right;
    set title 'corruptions (mean over the families)'; set xlabel 'severity'; set ylabel 'accuracy'; set yrange [0:1];
    plot '$out/ode/corruption-mean.dat' u 1:2 w lp lw 2 t 'Neural ODE', '$out/sde/corruption-mean.dat' u 1:2 w lp lw 2 t 'Neural SDE (multiplicative)'"
fi
echo
echo "model  clean  TTN    attack(eps=${eps##*,})  corruption(severity 5)"
for model in ode sde; do
  clean=$(awk -F, '$1 == "clean_accuracy" { print $2 }' "$out/$model/summary.csv")
  ttn=$(awk -F, '$1 == "ttn_accuracy" { print $2 }' "$out/$model/summary.csv")
  att=$(tail -n 1 "$out/$model/attack-authors.dat" | cut -d' ' -f2)
  cor=$(awk '$1 == 5 { print $2 }' "$out/$model/corruption-mean.dat")
  printf '%-6s %.4f %.4f %.4f            %.4f\n' $model "$clean" "$ttn" "$att" "$cor"
done
echo
echo "main job done in $(( $(date +%s) - start )) s: results in $out (summary/attack/corruption/hidden CSV per model, attack.png, corruption.png, hidden.png)"

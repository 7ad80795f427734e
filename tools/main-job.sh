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
# Knobs (environment): TRAIN_IMAGES, EPOCHS, WIDTH, TEST_IMAGES, ATTACK_IMAGES,
# CORRUPTION_IMAGES, TTN.
# Recipe: the strided stem (--arch large: the SDE block runs at 7x7 for
# Fashion-MNIST, 8x8 for CIFAR-10), SGD with Nesterov momentum, weight decay
# 5e-4, lr 0.1 with a short warm-up and a cosine decay over all epochs.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
start=$(date +%s) # the budget: 10 minutes from here, the build included
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
train_images=${TRAIN_IMAGES:-50000}
epochs=${EPOCHS:-2}
width=${WIDTH:-32}
test_images=${TEST_IMAGES:-10000}
attack_images=${ATTACK_IMAGES:-500}
corruption_images=${CORRUPTION_IMAGES:-500}
ttn=${TTN:-10}
out=results/$data
mkdir -p "$out"
echo "main job: $data, $train_images training images x $epochs epochs, width $width; results in $out"
for model in ode sde; do
  if [ $model = ode ]; then noise="--noise ode"; else noise="--noise multiplicative --sigma 0.5"; fi
  # shellcheck disable=SC2086
  ./build/apps/nsde-train --data $data --data-dir "$dir" --out "$out/$model.nsde" $noise \
    --arch large --width "$width" --subset "$train_images" --schedule cosine --epochs "$epochs" \
    --warmup 0.3 --lr 0.1 --wd 5e-4 --nesterov --batch 128 --crop $crop \
    --metrics "$out/$model-train.csv"
  mkdir -p "$out/$model"
  ./build/apps/nsde-eval --model "$out/$model.nsde" --data $data --data-dir "$dir" \
    --subset "$test_images" --ttn "$ttn" --attack-images "$attack_images" --attack-steps 10 \
    --attacks authors,pgd --hidden-curve 20 --hidden-images 20 --eps "$eps" --severities 5 --corruption-passes 0 \
    --corruption-images "$corruption_images" --out "$out/$model"
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
    set title 'hidden-state perturbation, mean over 20 test images, eps 0.1 attack (Fig. 4)';
    set xlabel 't'; set ylabel 'eps_t = |E h_t(x_{adv}) - E h_t(x)| / |E h_t(x)|'; set datafile separator ',';
    plot '$out/ode/hidden.csv' u 1:2 every ::1 w l lw 2 t 'Neural ODE', '$out/sde/hidden.csv' u 1:2 every ::1 w l lw 2 t 'Neural SDE (multiplicative)',
         '$out/sde/hidden-noise-off.csv' u 1:2 every ::1 w l lw 2 dt 2 t 'Neural SDE, noise off'"
  gnuplot -e "set terminal png size 800,500; set output '$out/corruption.png'; set key top right;
    set title 'corruptions (mean over the families)'; set xlabel 'severity'; set ylabel 'accuracy'; set yrange [0:1];
    plot '$out/ode/corruption-mean.dat' u 1:2 w lp lw 2 t 'Neural ODE', '$out/sde/corruption-mean.dat' u 1:2 w lp lw 2 t 'Neural SDE (multiplicative)'"
fi
# every figure with the number of images behind it and one binomial standard
# error; then each of the paper's claims: does the SDE minus ODE difference
# exceed two standard errors of the difference?
echo
awk -F, '
  FILENAME ~ /summary.csv$/ { m = FILENAME ~ /\/ode\// ? "ode" : "sde" }
  FILENAME ~ /summary.csv$/ && $1 == "images" { n[m] = $2 }
  FILENAME ~ /summary.csv$/ && $1 == "clean_accuracy" { v[m, "clean"] = $2 }
  FILENAME ~ /summary.csv$/ && $1 == "ttn_accuracy" { v[m, "TTN"] = $2 }
  FILENAME ~ /summary.csv$/ && $1 == "clean_se" { s[m, "clean"] = $2; c[m, "clean"] = n[m] }
  FILENAME ~ /summary.csv$/ && $1 == "ttn_se" { s[m, "TTN"] = $2; c[m, "TTN"] = n[m] }
  FILENAME ~ /attack.csv$/ { m = FILENAME ~ /\/ode\// ? "ode" : "sde" }
  FILENAME ~ /attack.csv$/ && FNR > 1 && $2 > 0 { q = $1 " eps " $2; v[m, q] = $3; s[m, q] = $5; c[m, q] = $6; if (!(q in seen)) { seen[q] = 1; akey[++na] = q } }
  FILENAME ~ /corruption.csv$/ { m = FILENAME ~ /\/ode\// ? "ode" : "sde" }
  FILENAME ~ /corruption.csv$/ && FNR > 1 && $1 > 0 { q = "corruption sev " $1; cs[m, q] += $3; cn[m, q]++; c[m, q] = $5; if (!(q in seen)) { seen[q] = 1; ckey[++ncq] = q } }
  function line(q, o, e, d, se, verdict) {
    o = v["ode", q]; e = v["sde", q]
    d = e - o; se = sqrt(s["ode", q]^2 + s["sde", q]^2)
    verdict = d > 2 * se ? "SDE better (> 2 SE)" : d < -2 * se ? "SDE worse (> 2 SE)" : "no difference at 2 SE"
    printf "%-22s %.4f +- %.4f  %.4f +- %.4f  %5d  %+.4f +- %.4f  %s\n", q, o, s["ode", q], e, s["sde", q], c["sde", q], d, se, verdict
  }
  END {
    for (mm in cs) { split(mm, p, SUBSEP); v[p[1], p[2]] = cs[mm] / cn[mm]; s[p[1], p[2]] = sqrt(v[p[1], p[2]] * (1 - v[p[1], p[2]]) / c[p[1], p[2]]) }
    printf "%-22s %-16s  %-16s  %5s  %-16s  %s\n", "figure", "Neural ODE", "Neural SDE", "imgs", "SDE - ODE", "the paper expects SDE >= ODE"
    line("clean"); line("TTN")
    for (i = 1; i <= na; i++) line(akey[i])
    for (i = 1; i <= ncq; i++) line(ckey[i])
    print "(+- one binomial standard error over the images; corruption rows: mean over the families, error of one family; the ODE TTN equals its clean accuracy)"
  }' "$out/ode/summary.csv" "$out/sde/summary.csv" "$out/ode/attack.csv" "$out/sde/attack.csv" \
  "$out/ode/corruption.csv" "$out/sde/corruption.csv"
echo
echo "main job done in $(( $(date +%s) - start )) s (build, training and evaluation): results in $out (summary/attack/corruption/hidden CSV per model, attack.png, corruption.png, hidden.png)"

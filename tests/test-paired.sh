#!/bin/sh
# tools/cifar-paired.sh on hand-made predictions whose paired statistics are
# worked out by hand: 10 images of class 0.
#   ODE seed 1: noise off right on images 0-7.
#   SDE seed 1: noise off right on 0-5, TTN right on 0-4 and 6-9.
# TTN - noise off: n01 = 4 (images 6-9), n10 = 1 (image 5), gain 0.3,
#   d = +1 x4, -1 x1: var = 0.5 - 0.09, SE = sqrt(0.41 / 9) = 0.2134;
#   McNemar p = 2 P(X <= 1 | 5, 1/2) = 2 * 6/32 = 0.375.
# clean SDE - ODE: -1 on images 6, 7: mean -0.2, SE = sqrt(0.16 / 9) = 0.1333.
# TTN SDE - ODE: -1 on image 5, +1 on 8, 9: mean 0.1, SE = sqrt(0.29 / 9) = 0.1795.
# PGD at eps 0.1 on images 0-3 (eps 0 rows are ignored): ODE seed 1 right on
#   0, 1, seed 2 on 0; SDE on 0-2. Per image SDE - mean ODE: 0, 0.5, 1, 0:
#   mean 0.375, SE = sqrt((1.25 / 4 - 0.375^2) / 3) = 0.2394.
# usage: test-paired.sh CIFAR_PAIRED WORKDIR
set -eu
tool=$1 work=$2/paired-test
rm -rf "$work"
mkdir -p "$work/ode-s1" "$work/multiplicative-s1"
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 10; i++) print i ",0," (i <= 7 ? 0 : 3) ",-1" }' \
  >"$work/ode-s1/predictions.csv"
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 10; i++) print i ",0," (i <= 5 ? 0 : 2) "," (i == 5 ? 1 : 0) }' \
  >"$work/multiplicative-s1/predictions.csv"
mkdir -p "$work/ode-s2"
ai() { # $1: run, $2..$5: PGD outcome of images 0-3 at eps 0.1
  run=$1; shift
  { echo "method,eps,image,correct"; i=0
    for c in "$@"; do echo "pgd,0,$i,1"; echo "pgd,0.1,$i,$c"; i=$((i + 1)); done; } >"$work/$run/attack-images.csv"
}
ai ode-s1 1 1 0 0
ai ode-s2 1 0 0 0
ai multiplicative-s1 1 1 1 0
sh "$tool" "$work" >"$work/out.md"
cat "$work/out.md"
fail=0
want() { grep -qF "$1" "$work/out.md" || { echo "FAIL: no line with: $1"; fail=1; }; }
want "| multiplicative-s1 | 10 | 4 | 1 | +0.3000 | 0.2134 | 0.375 |"
want "| ttn_gain (TTN - noise off) | multiplicative (1) | - | +0.3000 | 0.4269 | no difference |"
want "| clean (noise off), SDE - ODE | multiplicative (1) | 1 | -0.2000 | 0.2667 | no difference |"
want "| TTN, SDE - ODE | multiplicative (1) | 1 | +0.1000 | 0.3590 | no difference |"
want "| pgd@0.1, SDE - ODE (4 images) | multiplicative (1) | 2 | +0.3750 | 0.4787 | no difference |"
# a run on other images is refused
awk 'BEGIN { print "image,label,clean,ttn"; for (i = 0; i < 12; i++) print i ",0,0,0" }' >"$work/multiplicative-s1/predictions.csv"
if sh "$tool" "$work" >"$work/bad.md" 2>&1; then echo "FAIL: runs on different images accepted"; fail=1; fi
grep -q "not the same test images" "$work/bad.md" || { echo "FAIL: no message"; cat "$work/bad.md"; fail=1; }
[ $fail -eq 0 ] && echo "1 passed, 0 failed"
exit $fail

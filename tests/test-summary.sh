#!/bin/sh
# tools/cifar-summary.sh on two hand-made seeds of an ODE and a
# multiplicative SDE (1,000 test images each), checked against statistics
# worked out by hand.
#   clean: ODE 0.80, 0.82 (mean 0.81, SE over seeds 0.01), SDE 0.70, 0.72
#     (0.71, 0.01): difference -0.10, 2 SE seeds 2 * sqrt(2) * 0.01 = 0.0283;
#     over images sqrt(0.81 * 0.19 / 1000) = 0.012405 and
#     sqrt(0.71 * 0.29 / 1000) = 0.014349, 2 SE = 0.0379; Welch df
#     (2e-4)^2 / (1e-8 + 1e-8) = 2.0, t 4.303: 4.303 * 0.01414 = 0.061 < 0.10.
#   TTN of the SDE 0.76, 0.80: gains 0.06, 0.08, mean 0.07, SE 0.01,
#     2 SE 0.0200; over images the RMS of sqrt(2 p (1 - p) / 1000) at 0.70
#     and 0.72: 0.020288, 2 SE 0.0406; df 1, t 12.706: 0.127 > 0.07, so the
#     t test does not call what two standard errors call.
# usage: test-summary.sh CIFAR_SUMMARY WORKDIR
set -eu
tool=$1 work=$2/summary-test
rm -rf "$work"
run() { # $1: dir, $2: clean, $3: ttn
  mkdir -p "$work/$1"
  printf 'metric,value\nimages,1000\nclean_accuracy,%s\nttn_accuracy,%s\n' "$2" "$3" >"$work/$1/summary.csv"
  printf 'method,eps,accuracy,mean_l2,se,images\npgd,0,%s,0,0.01,1000\npgd,0.1,0.5,0.08,0.0158,1000\n' "$2" \
    >"$work/$1/attack.csv"
  printf 'severity,family,accuracy,se,images\n1,noise,0.6,0.01,1000\n' >"$work/$1/corruption.csv"
  printf 't,eps_t,se,images\n0,0.05,0.001,100\n1,0.2,0.01,100\n' >"$work/$1/hidden.csv"
  touch "$work/$1/eval.done"
}
run ode-s1 0.80 nan
run ode-s2 0.82 nan
run multiplicative-s1 0.70 0.76
run multiplicative-s2 0.72 0.80
sh "$tool" "$work" >"$work/out.md"
cat "$work/out.md"
fail=0
want() { grep -qF "$1" "$work/out.md" || { echo "FAIL: no line with: $1"; fail=1; }; }
want "| clean | 0.8100 (0.0100, 0.0124, 2) | 0.7100 (0.0100, 0.0143, 2) |"
want "| clean | multiplicative | -0.1000 | 0.0283 | 0.0379 | SDE worse | SDE worse | 2.0 | SDE worse |"
want "| ttn_gain (TTN - noise off) | multiplicative | +0.0700 | 0.0200 | 0.0406 | TTN better | TTN better | 1.0 | no difference |"
[ $fail -eq 0 ] && echo "1 passed, 0 failed"
exit $fail

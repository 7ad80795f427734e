#!/bin/sh
# Every option of nsde-train, nsde-eval and nsde-bench with a bad value gets
# a one-line error naming the problem and a non-zero exit (never a crash, a
# hang or a silent default). One row per case: program, expected words in
# the message, then the arguments.
# usage: test-cli.sh NSDE_TRAIN NSDE_EVAL NSDE_BENCH WORKDIR
set -u
# The programs exit on a bad option without freeing what they hold (the
# process ends); LeakSanitizer would add its report to the one line checked
# here. Leaks are the other tests' business.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
train=$1 eval_bin=$2 bench=$3 work=$4/cli-test
rm -rf "$work"
mkdir -p "$work"
fm=/usr/share/datasets/fashion-mnist
# a tiny valid model for the cases that get past option parsing, trained
# with 20 of its 100 images held out (--val): one batch of 50 per epoch
"$train" --data fashion-mnist --out "$work/m.nsde" --width 4 --groups 2 --subset 100 --epochs 1 \
  --stages 1 --batch 50 --val 20 --metrics "$work/m.csv" >"$work/train.out" 2>&1 ||
  { echo "FAIL: cannot train the tiny model"; cat "$work/train.out"; exit 1; }
fail=0 n=0
grep -q "batch 1/1 " "$work/train.out" ||
  { echo "FAIL: --val 20 of 100 images should leave one batch of 50"; fail=1; }
grep -q "validation (20 images" "$work/train.out" ||
  { echo "FAIL: no validation line for --val 20"; fail=1; }
# holding out the last 20 of 100 trains exactly as on the first 80: the same bytes
"$train" --data fashion-mnist --out "$work/m80.nsde" --width 4 --groups 2 --subset 80 --epochs 1 \
  --stages 1 --batch 50 >/dev/null 2>&1 && cmp -s "$work/m.nsde" "$work/m80.nsde" ||
  { echo "FAIL: --subset 100 --val 20 should give --subset 80's model file"; fail=1; }
awk -F, 'NR == 1 && $7 != "val_acc" { exit 1 } NR == 2 && !($7 >= 0 && $7 <= 1 && $8 > 0) { exit 1 }
  END { if (NR != 2) exit 1 }' "$work/m.csv" ||
  { echo "FAIL: --metrics lacks a valid val_acc,val_loss row:"; cat "$work/m.csv"; fail=1; }
check() { # PROGRAM EXPECTED ARGS...
  prog=$1 want=$2
  shift 2
  n=$((n + 1))
  case $prog in train) bin=$train ;; eval) bin=$eval_bin ;; bench) bin=$bench ;; esac
  timeout 60 "$bin" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  lines=$(wc -l <"$work/err")
  if [ $rc -eq 0 ] || [ $rc -ge 124 ]; then
    echo "FAIL: nsde-$prog $*: exit status $rc (expected a clean failure)"; fail=1
  elif [ "$lines" -ne 1 ]; then
    echo "FAIL: nsde-$prog $*: $lines lines on stderr (expected one):"; cat "$work/err"; fail=1
  elif ! grep -q -- "$want" "$work/err"; then
    echo "FAIL: nsde-$prog $*: message lacks '$want':"; cat "$work/err"; fail=1
  fi
}
o="--out $work/x.nsde"
check train "--width" $o --width -1
check train "--width" $o --width 0
check train "--width" $o --width abc
check train "--width" $o --width 1e9
check train "--batch" $o --batch 99999999999
check train "--batch" $o --batch ""
check train "--lr" $o --lr nan
check train "--lr" $o --lr 0
check train "--lr" $o --lr -1
check train "--sigma" $o --sigma nan
check train "--sigma" $o --sigma inf
check train "--epochs" $o --epochs 0
check train "--noise" $o --noise gaussian
check train "--data" $o --data mnist
check train "--grad" $o --grad adjoint2
check train "--arch" $o --arch resnet
check train "--schedule" $o --schedule linear
check train "cosine" $o --schedule cosine
check train "--warmup" $o --schedule cosine --epochs 2 --warmup 3
check train "--stages" $o --stages 1,x
check train "whole numbers" $o --stages 1.5
check train "--stages" $o --stages 0
check train "--seed" $o --seed -1
check train "--threads" $o --threads -2
check train "--wd" $o --wd -0.1
check train "--warmup" $o --warmup nan
check train "--stop-after" $o --stop-after 0
check train "--micro-batch" $o --micro-batch 0
check train "--rank-timeout" $o --rank-timeout 0
check train "--rank-timeout" $o --rank-timeout 1e9
check train "--crop" $o --crop 1000
check train "--subset" $o --subset -5
check train "--val" $o --val -1
check train "--val" $o --subset 100 --val 100
check train "--groups" $o --groups x
check train "usage" $o --width
check train "usage" $o --bogus 1
check train "--out" --width 4
check train "cannot write" --out /nonexistent-dir/m.nsde
check train "is a directory" --out "$work"
check train "cannot load" $o --data-dir /nonexistent-dir
check train "cannot load" $o --data cifar10 --data-dir "$work"
check train "to resume" --out "$work/none.nsde" --subset 100 --resume
m="--model $work/m.nsde"
check eval "--model" --subset 10
check eval "cannot open" --model /nonexistent.nsde --subset 10
check eval "not a regular file" --model "$work" --subset 10
check eval "impossible" --model "$work/out" --subset 10
check eval "--subset" $m --subset 0
check eval "--ttn" $m --ttn -1
check eval "--severities" $m --severities 6
check eval "--eps" $m --eps 0,x
check eval "--eps" $m --eps nan
check eval "--eps" $m --eps 0,,1
check eval "--attacks" $m --attacks authors,fgsm
check eval "--hidden-images" $m --hidden-images 0
check eval "--hidden-curve" $m --hidden-curve -1
check eval "--cw-c" $m --cw-c nan
check eval "--cw-kappa" $m --cw-kappa -1
check eval "--threads" $m --threads x
check eval "--attack-steps" $m --attack-steps 1.5
check eval "--attack-eot" $m --attack-eot 0
check eval "--attack-noise" $m --attack-noise maybe
check eval "--corruption-passes" $m --corruption-passes -1
check eval "whole numbers" $m --corruption-passes 0,1.5
check eval "--corruption-passes" $m --corruption-passes 0,1,2,3,4
check eval "--corruption-images" $m --corruption-images -1
check eval "--corruption-report" $m --corruption-report 0
check eval "--data" $m --data imagenet
check eval "cannot load" $m --data-dir /nonexistent-dir
check eval "cannot write" $m --subset 10 --ttn 0 --attack-images 0 --severities 0 --out /nonexistent-dir
check eval "usage" $m --ttn
check bench "--width" model --width 0
check bench "--batch" model --batch x
check bench "--threads" model --threads 0
check bench "--reps" eval --reps 0
check bench "--steps" eval --steps -3
check bench "needs a value" model --width
check bench "unknown option" eval --grad store-all
check bench "THREADS" solve abc
check bench "unknown or missing command" frobnicate
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || echo "note: $fm missing; the tiny model could not be trained"
[ $fail -eq 0 ] && echo "ok: $n bad command lines, each refused with one clear line"
exit $fail

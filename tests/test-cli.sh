#!/bin/sh
# Every option of nsde-train, nsde-eval and nsde-bench with a bad value gets
# a one-line error naming the problem (never a crash, a hang or a silent
# default): a usage error exits 2 and says "try '... --help'", a runtime
# failure exits 1. One row per case: program, expected words in the message,
# then the arguments. Then --help, --version, --opt=value, "--", and the man
# pages generated from the same option tables (MAN_DIR, the build's apps/).
# usage: test-cli.sh NSDE_TRAIN NSDE_EVAL NSDE_BENCH WORKDIR MAN_DIR SOURCE_ROOT
set -u
# The programs exit on a bad option without freeing what they hold (the
# process ends); LeakSanitizer would add its report to the one line checked
# here. Leaks are the other tests' business.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
train=$1 eval_bin=$2 bench=$3 work=$4/cli-test mandir=$5 src=$6
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
  case $want in
    "cannot write" | "is a directory" | "cannot load" | "to resume" | "cannot open" | \
      "not a regular file" | "impossible") expect=1 ;;
    *) expect=2 ;;
  esac
  if [ $rc -ne $expect ]; then
    echo "FAIL: nsde-$prog $*: exit status $rc (expected $expect)"; cat "$work/err"; fail=1
  elif [ $expect -eq 2 ] && ! grep -q "try 'nsde-[a-z ]* --help'" "$work/err"; then
    echo "FAIL: nsde-$prog $*: a usage error without \"try --help\":"; cat "$work/err"; fail=1
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
check train "option '--width' needs a value" $o --width
check train "unknown option '--bogus'" $o --bogus 1
check train "--width '0'" $o --width=0
check train "unexpected argument '--bogus'" $o -- --bogus
check train "unexpected argument 'm.nsde'" $o m.nsde
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
check eval "--attack-restarts" $m --attack-restarts 0
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
check eval "option '--ttn' needs a value" $m --ttn
check eval "--ttn 'x'" $m --ttn=x
check bench "--width" model --width 0
check bench "--batch" model --batch x
check bench "--threads" model --threads 0
check bench "--reps" eval --reps 0
check bench "--steps" eval --steps -3
check bench "needs a value" model --width
check bench "unknown option" eval --grad store-all
check bench "THREADS" solve abc
check bench "unknown or missing command" frobnicate
# --help: stdout, exit 0, every option of the table with a line; --version
# names the library's version; the man page lists exactly the --help options
# and renders without a warning.
for p in "$train" "$eval_bin"; do
  name=$(basename "$p")
  "$p" --help >"$work/help" 2>"$work/err" && [ ! -s "$work/err" ] && grep -q "^Usage: $name " "$work/help" &&
    grep -q "^Exit status: 0 success, 1 a runtime failure" "$work/help" ||
    { echo "FAIL: $name --help"; cat "$work/err"; fail=1; }
  "$p" --version >"$work/ver" 2>&1 && grep -q "^$name (libnsde) [0-9]" "$work/ver" &&
    grep -q "^library [0-9]" "$work/ver" || { echo "FAIL: $name --version:"; cat "$work/ver"; fail=1; }
  grep -o '^  --[a-z-]*' "$work/help" | sort >"$work/help-opts"
  grep -A1 '^\.TP' "$mandir/$name.1" | sed -n 's/^\.BR* \\-\\-\([a-z\\-]*\).*/  --\1/p' |
    sed 's/\\-/-/g' | sort >"$work/man-opts"
  [ "$(wc -l <"$work/help-opts")" -gt 10 ] && diff "$work/help-opts" "$work/man-opts" >"$work/diff" ||
    { echo "FAIL: $name: --help and $name.1 list different options:"; cat "$work/diff"; fail=1; }
done
"$bench" --help >"$work/help" 2>&1 && "$bench" model --help >>"$work/help" 2>&1 &&
  "$bench" --version | grep -q "^nsde-bench (libnsde)" ||
  { echo "FAIL: nsde-bench --help / model --help / --version"; fail=1; }
# --opt=value trains as --opt value does (the same model file)
"$train" --data=fashion-mnist --out="$work/m80eq.nsde" --width=4 --groups=2 --subset=80 --epochs=1 \
  --stages=1 --batch=50 >/dev/null 2>&1 && cmp -s "$work/m80.nsde" "$work/m80eq.nsde" ||
  { echo "FAIL: --opt=value should train the same model as --opt value"; fail=1; }
for page in "$mandir/nsde-train.1" "$mandir/nsde-eval.1" "$src/doc/libnsde.3"; do
  if command -v groff >/dev/null; then
    groff -ww -man -Tutf8 "$page" 2>"$work/groff" >/dev/null && [ ! -s "$work/groff" ] ||
      { echo "FAIL: groff -ww $page:"; cat "$work/groff"; fail=1; }
  else
    echo "note: groff not installed; $page not rendered"
  fi
done
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || echo "note: $fm missing; the tiny model could not be trained"
[ $fail -eq 0 ] && echo "ok: $n bad command lines, each refused with one clear line; --help, --version, --opt=value, man pages"
exit $fail

#!/bin/sh
# Ship a trained CIFAR-10 model: copy RUN_DIR/model.nsde to
# MODELS_DIR/NAME.nsde, add its SHA-256 to MODELS_DIR/SHA256SUMS and its
# clean accuracy on the first 500 test images (nsde-eval, noise off) to
# MODELS_DIR/expected.csv, which tests/test-shipped-models.sh checks; then
# print what models/README.md's table wants from the run (its last
# train.csv row, its build). A name already shipped is refused: a shipped
# file never changes.
# usage: tools/ship-model.sh RUN_DIR NAME CIFAR10_BIN_DIR [MODELS_DIR]
#   (NAME as cifar10-paper-multiplicative-s1; BUILD [build] has nsde-eval)
set -eu
case $# in 3 | 4) ;; *) echo "usage: $0 RUN_DIR NAME CIFAR10_BIN_DIR [MODELS_DIR]" >&2; exit 2 ;; esac
run=$1 name=$2 data=$3 models=${4:-$(dirname "$0")/../models}
eval_bin=${BUILD:-build}/apps/nsde-eval
case $name in *[!a-z0-9.-]* | '' | *.nsde) echo "$0: NAME is letters, digits, . and - (no .nsde)" >&2; exit 2 ;; esac
[ -f "$run/model.nsde" ] || { echo "$0: no $run/model.nsde" >&2; exit 1; }
[ ! -f "$run/model.nsde.state" ] || [ -f "$run/eval.done" ] ||
  { echo "$0: $run has not finished (no eval.done beside its training state)" >&2; exit 1; }
[ -x "$eval_bin" ] || { echo "$0: no $eval_bin (BUILD)" >&2; exit 1; }
if [ -e "$models/$name.nsde" ] || grep -q " $name.nsde\$" "$models/SHA256SUMS" 2>/dev/null; then
  echo "$0: $name is shipped already" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$eval_bin" --model "$run/model.nsde" --data cifar10 --data-dir "$data" --subset 500 --ttn 0 \
  --attack-images 0 --severities 0 --out "$work" >"$work/eval.log" 2>&1 ||
  { echo "$0: nsde-eval failed:" >&2; cat "$work/eval.log" >&2; exit 1; }
acc=$(awk -F, '$1 == "clean_accuracy" { printf "%.4f\n", $2 }' "$work/summary.csv")
[ -n "$acc" ] || { echo "$0: no clean accuracy in nsde-eval's summary.csv" >&2; exit 1; }
cp "$run/model.nsde" "$models/$name.nsde"
(cd "$models" && sha256sum "$name.nsde") >>"$models/SHA256SUMS"
[ -s "$models/expected.csv" ] || echo "file,images,clean_accuracy" >"$models/expected.csv"
echo "$name.nsde,500,$acc" >>"$models/expected.csv"
echo "shipped $models/$name.nsde: first 500 test images $acc (noise off)"
[ -f "$run/train.csv" ] && echo "last epoch: $(tail -1 "$run/train.csv")"
[ -f "$run/build" ] && echo "trained by the build in $(cat "$run/build")"
[ -f "$run/summary.csv" ] && awk -F, '$1 == "clean_accuracy" || $1 == "ttn_accuracy" || $1 == "images"' "$run/summary.csv"
exit 0

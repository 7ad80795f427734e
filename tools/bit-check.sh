#!/bin/sh
# Whether two builds train the same bits: short CIFAR-10 trainings (the
# trained recipe and the paper's model; 1 and 2 threads; store-all,
# checkpointed and micro-batched gradients; the four noise types) with each
# build, their model files compared by SHA-256. A change that claims "the
# same bits" shows "same" on every line; any "DIFF" line is a different
# trajectory (as another seed's would be).
#
# usage: tools/bit-check.sh BUILD_A BUILD_B CIFAR_DIR   (meson build folders;
#        the cifar-10-batches-bin folder). Exit status 1 when a line differs
#        or a run fails. About 2 minutes on 2 cores.
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BUILD_A BUILD_B CIFAR_DIR" >&2; exit 2; }
a=$1 b=$2 data=$3
for d in "$a" "$b"; do
  [ -x "$d/apps/nsde-train" ] || { echo "$0: no $d/apps/nsde-train" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0
run() { # build tag args...: prints the model's SHA-256 prefix, or FAILED
  bd=$1 tag=$2
  shift 2
  if "$bd/apps/nsde-train" --data cifar10 --data-dir "$data" --subset 640 --epochs 1 --lr 0.1 \
    --seed 1 --out "$tmp/$tag.nsde" "$@" >"$tmp/$tag.log" 2>&1; then
    sha256sum "$tmp/$tag.nsde" | cut -c1-16
  else
    echo FAILED
  fi
}
for cfg in "large-dropout-t1|--arch large --noise dropout --sigma 0.5 --threads 1" \
  "large-dropout-t2|--arch large --noise dropout --sigma 0.5 --threads 2" \
  "large-mult-checkpoint|--arch large --noise multiplicative --grad checkpoint --threads 2" \
  "large-additive-micro|--arch large --noise additive --sigma 0.2 --micro-batch 32 --threads 2" \
  "paper-mult-w16|--arch cifar --width 16 --noise multiplicative --threads 2" \
  "paper-ode-w16-t1|--arch cifar --width 16 --noise ode --threads 1"; do
  tag=${cfg%%|*} args=${cfg#*|}
  # shellcheck disable=SC2086 # args are words
  ha=$(run "$a" "a-$tag" $args)
  # shellcheck disable=SC2086
  hb=$(run "$b" "b-$tag" $args)
  if [ "$ha" = "$hb" ] && [ "$ha" != FAILED ]; then
    echo "same  $tag $ha"
  else
    echo "DIFF  $tag $ha $hb"
    bad=1
  fi
done
exit $bad

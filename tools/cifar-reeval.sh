#!/bin/sh
# The shipped CIFAR-10 models (models/cifar10-NOISE-sSEED.nsde, the 30-epoch
# recipe) evaluated again with the paper-regime issue's protocols: the
# corruptions with the noise off and with the 20-pass ensemble, severity 0
# and the drops, per-image outcomes (tools/cifar-results.sh with TRAIN=0),
# then PGD with 8-path EOT and with the noise off (tools/cifar-attacks.sh;
# CHECK=1 on each SDE). Each model is copied to OUT_DIR/NOISE-sSEED/model.nsde
# after its SHA-256 is checked against models/SHA256SUMS; finished parts are
# skipped, so the same command continues after an interruption.
#
# usage: tools/cifar-reeval.sh CIFAR10_BIN_DIR OUT_DIR   (after meson compile -C build)
# Knobs (environment): BUILD [build]; MODELS [every models/cifar10-*-s*.nsde but
# the paper regime's], as NOISE-sSEED names; JOBS [1] copies of
# tools/cifar-results.sh at once, THREADS [the cores / JOBS] each; ATTACK_IMAGES [0]:
# the first pass's attacks of the old protocol (their figures are in
# doc/results.md already; the new attack protocols are cifar-attacks.sh's).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CIFAR10_BIN_DIR OUT_DIR" >&2; exit 2; }
data=$1 out=$2 jobs=${JOBS:-1}
here=$(dirname "$0")
top=$here/..
case $jobs in '' | *[!0-9]* | 0) echo "$0: JOBS must be a positive count" >&2; exit 2 ;; esac
threads=${THREADS:-$(($(nproc) / jobs))}
[ "$threads" -ge 1 ] || threads=1
names=${MODELS:-}
if [ -z "$names" ]; then
  for f in "$top"/models/cifar10-*-s*.nsde; do
    n=${f##*/cifar10-}
    case $n in paper-*) ;; *) names="$names ${n%.nsde}" ;; esac
  done
fi
runs=''
for n in $names; do
  f=$top/models/cifar10-$n.nsde
  [ -f "$f" ] || { echo "$0: no $f" >&2; exit 2; }
  want=$(grep " cifar10-$n.nsde\$" "$top/models/SHA256SUMS" | cut -d' ' -f1)
  have=$(sha256sum "$f" | cut -d' ' -f1)
  if [ -z "$want" ] || [ "$want" != "$have" ]; then
    echo "$0: $f does not match models/SHA256SUMS" >&2
    exit 1
  fi
  mkdir -p "$out/$n"
  [ -f "$out/$n/model.nsde" ] || cp "$f" "$out/$n/model.nsde"
  runs="$runs ${n%-s*}:0:${n##*-s}" # the sigma is not read when nothing trains
done
pids='' rc=0
for _ in $(seq "$jobs"); do
  env TRAIN=0 RUNS="$runs" THREADS="$threads" ATTACK_IMAGES="${ATTACK_IMAGES:-0}" \
    sh "$here/cifar-results.sh" "$data" "$out" &
  pids="$pids $!"
done
for p in $pids; do wait "$p" || rc=1; done
[ $rc = 0 ] || exit $rc
for n in $names; do
  case $n in
    ode-*) THREADS="$(nproc)" sh "$here/cifar-attacks.sh" "$data" "$out/$n" ;;
    *) CHECK=1 THREADS="$(nproc)" sh "$here/cifar-attacks.sh" "$data" "$out/$n" ;;
  esac
done

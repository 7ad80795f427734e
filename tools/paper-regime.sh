#!/bin/sh
# The paper's regime of doc/results.md from start to end, in the order and
# with the decision rules that section fixed before its runs finished:
#   1. the sigma sweep (30 epochs, stages 10/10/5/5, 5,000 training images
#      held out) into RUNS_DIR/sweep;
#   2. the sigma per noise type (tools/cifar-sweep-pick.sh, RUNS_DIR/sweep/pick.md);
#   3. the schedule check: multiplicative's chosen and worst sigma again with
#      the full 40/40/20/20 schedule on the same split (RUNS_DIR/check); if
#      their order flips, the 30-epoch sweep does not stand in for the full
#      one, and this stops and says so;
#   4. the full runs on all 50,000 images, 120 epochs, seed 1, with their
#      evaluations (RUNS_DIR/full);
#   5. the attack protocols on every model of step 4 (tools/cifar-attacks.sh;
#      CHECK=1 on each SDE);
#   6. seeds 2 and 3 of the ODE and of every SDE whose clean or PGD difference
#      with the ODE seed 1 does not settle (tools/cifar-seeds-pick.sh on the
#      paired comparisons; the choice is kept in RUNS_DIR/full/seeds.md), then
#      their evaluations and attacks.
# Every step is resumable (each run continues from its last finished epoch,
# finished runs and evaluations are skipped): after an interruption run the
# same command again. Roughly 50 hours on 2 Zen 3 cores up to step 5 (the
# sweep about 10, the check 8, the full runs 17, their evaluations and
# attacks the rest); step 6 up to 8 more runs.
#
# usage: tools/paper-regime.sh CIFAR10_BIN_DIR RUNS_DIR   (after meson compile -C build)
# Knobs (environment): BUILD [build]; UNTIL [6] the last step to run; JOBS [1]
# copies of tools/cifar-results.sh at once in steps 1, 3 and 4, each on its own
# runs with THREADS [the cores / JOBS] threads (the same models: 2 copies of 1
# thread on 2 cores trained 1.07x the images per second of one with 2).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 CIFAR10_BIN_DIR RUNS_DIR" >&2; exit 2; }
data=$1 out=$2 until=${UNTIL:-6} jobs=${JOBS:-1}
here=$(dirname "$0")
case $jobs in '' | *[!0-9]* | 0) echo "$0: JOBS must be a positive count" >&2; exit 2 ;; esac
threads=${THREADS:-0}
if [ -z "${THREADS:-}" ] && [ "$jobs" -gt 1 ]; then
  threads=$(($(nproc) / jobs))
  [ "$threads" -ge 1 ] || threads=1
fi
# results OUT_DIR VAR=VALUE...: tools/cifar-results.sh into OUT_DIR, JOBS copies at once
results() {
  dir=$1 pids='' rc=0
  shift
  for _ in $(seq "$jobs"); do
    env THREADS="$threads" "$@" sh "$here/cifar-results.sh" "$data" "$dir" &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p" || rc=1; done
  return $rc
}
sweep="ode:0:1 multiplicative:0.25:1 multiplicative:0.5:1 multiplicative:1.0:1 additive:0.1:1"
sweep="$sweep additive:0.2:1 additive:0.5:1 dropout:0.25:1 dropout:0.5:1 dropout:0.9:1"
step() { echo "== paper regime, step $1 ($(date -u '+%F %T'))"; [ "$1" -le "$until" ]; }

step 1 || exit 0
results "$out/sweep" RECIPE=paper STAGES=10,10,5,5 VAL=5000 SIGMA_DIRS=1 EVAL=0 RUNS="$sweep"

step 2 || exit 0
RUNS=$sweep sh "$here/cifar-sweep-pick.sh" "$out/sweep" >"$out/sweep/pick.md"
cat "$out/sweep/pick.md"
if grep -q '^pending' "$out/sweep/pick.md"; then
  echo "$0: the sweep has unfinished runs" >&2
  exit 1
fi
# the full runs in the order: the ODE, the paper's Fig. 3 pair, additive
runs=$(sed -n 's/^RUNS="\(.*\)"$/\1/p' "$out/sweep/pick.md" | tr ' ' '\n' |
  awk -F: '{ print index("ode multiplicative dropout additive", $1), $0 }' | sort -n |
  cut -d' ' -f2 | tr '\n' ' ')

step 3 || exit 0
# multiplicative's chosen sigma and its worst (the lowest val_acc) from the table
best=$(echo "$runs" | tr ' ' '\n' | awk -F: '$1 == "multiplicative" { print $2 }')
worst=$(awk -F'|' '$2 ~ /multiplicative/ { gsub(/ /, ""); print $5, $3 }' "$out/sweep/pick.md" |
  sort -g | head -1 | cut -d' ' -f2)
results "$out/check" RECIPE=paper VAL=5000 SIGMA_DIRS=1 EVAL=0 \
  RUNS="multiplicative:$best:1 multiplicative:$worst:1"
RUNS="multiplicative:$best:1 multiplicative:$worst:1" EPOCHS=120 \
  sh "$here/cifar-sweep-pick.sh" "$out/check" >"$out/check/pick.md"
cat "$out/check/pick.md"
# the order holds unless the worst sigma now ends strictly above the chosen one
if ! awk -F'|' -v b="$best" -v w="$worst" '$2 ~ /multiplicative/ { gsub(/ /, ""); v[$3] = $5 }
       END { exit !(v[b] != "" && v[w] != "" && v[b] + 0 >= v[w] + 0) }' "$out/check/pick.md"; then
  echo "$0: at 120 epochs multiplicative $best no longer beats $worst: the sweep must be rerun" \
    "with the full schedule (doc/results.md)" >&2
  exit 1
fi

step 4 || exit 0
results "$out/full" RECIPE=paper RUNS="$runs"

# attacks CHECK RUNS...: the attack protocols on these runs of step 4 (CHECK=1:
# with the strength check on each SDE)
attacks() {
  check=$1
  shift
  for r in "$@"; do
    noise=${r%%:*}
    dir=$out/full/$noise-s${r##*:}
    if [ "$noise" = ode ] || [ "$check" = 0 ]; then
      sh "$here/cifar-attacks.sh" "$data" "$dir"
    else
      CHECK=1 sh "$here/cifar-attacks.sh" "$data" "$dir"
    fi
  done
}

step 5 || exit 0
# shellcheck disable=SC2086 # runs are words
attacks 1 $runs

step 6 || exit 0
f=$out/full
if [ ! -f "$f/seeds.md" ]; then # decided once, from seed 1 alone
  sh "$here/cifar-paired.sh" "$f" >"$f/paired.md"
  sh "$here/cifar-protocols.sh" "$f" >"$f/protocols.md"
  RUNS=$runs sh "$here/cifar-seeds-pick.sh" "$f/paired.md" "$f/protocols/pgd-eot${EOT:-8}/paired.md" \
    >"$f/seeds.md.new"
  mv "$f/seeds.md.new" "$f/seeds.md"
fi
cat "$f/seeds.md"
more=$(sed -n 's/^RUNS="\(.*\)"$/\1/p' "$f/seeds.md")
[ -n "$more" ] || exit 0
results "$f" RECIPE=paper RUNS="$more"
# shellcheck disable=SC2086
attacks 0 $more

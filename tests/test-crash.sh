#!/bin/sh
# Crash safety of the files nsde-train writes, by force. A tiny training run
# is killed with SIGKILL at random moments while it writes its model file and
# training state slowly (NSDE_TEST_SLOW_WRITE: 64-byte pieces, 1 ms apart):
# afterwards each file is byte for byte the old version or the new one, the
# state is never behind the model, the metrics CSV holds only whole lines, no
# temporary file is left behind, and --resume ends with the same bits as an
# uninterrupted run. Then a full disk (NSDE_TEST_WRITE_FAIL_AFTER) gives a
# clear error and leaves both files as they were.
# usage: test-crash.sh NSDE_TRAIN WORKDIR [KILLS]
set -u
train=$1 work=$2/crash-test kills=${3:-200}
export OMP_WAIT_POLICY=passive
rm -rf "$work"
mkdir -p "$work"
opts="--data fashion-mnist --width 4 --groups 2 --subset 100 --stages 5 --epochs 5 --batch 50 --threads 1"
fail() { echo "FAIL: $*"; exit 1; }
# reference: the files after each epoch, and the uninterrupted result
for k in 1 2 3 4 5; do
  r=; [ $k -gt 1 ] && r=--resume
  # shellcheck disable=SC2086
  "$train" $opts --out "$work/ref.nsde" --stop-after 1 $r >/dev/null || fail "reference epoch $k"
  cp "$work/ref.nsde" "$work/model.$k"
  cp "$work/ref.nsde.state" "$work/state.$k"
done
# shellcheck disable=SC2086
"$train" $opts --out "$work/straight.nsde" >/dev/null || fail "uninterrupted run"
cmp -s "$work/straight.nsde" "$work/model.5" || fail "epoch-by-epoch resume differs from one run"
# Each kill waits until the run has begun to write (its temporary file
# exists), then a random 0-0.8 s more: the two slow writes take about 0.65 s
# together, so the kills land inside either write, between them and after
# both, whatever the load on the machine.
seen_old=0 seen_new=0 seen_mixed=0 inside=0
i=0
while [ $i -lt "$kills" ]; do
  i=$((i + 1))
  k=$(( (i % 4) + 1 ))
  rm -f "$work"/w.nsde*
  cp "$work/model.$k" "$work/w.nsde"; cp "$work/state.$k" "$work/w.nsde.state"
  printf 'epoch,lr,train_loss,train_acc,images_per_s,seconds,val_acc,val_loss\n' >"$work/w.csv"
  delay=$(awk -v s="$i" 'BEGIN { srand(s * 7919); printf "%.3f", rand() * 0.8 }')
  # shellcheck disable=SC2086
  NSDE_TEST_SLOW_WRITE=5000 "$train" $opts --out "$work/w.nsde" --resume --stop-after 1 \
    --metrics "$work/w.csv" >/dev/null 2>&1 &
  pid=$!
  waited=0
  while ! ls "$work"/w.nsde*.tmp.* >/dev/null 2>&1 && kill -0 $pid 2>/dev/null && [ $waited -lt 4000 ]; do
    sleep 0.005
    waited=$((waited + 1))
  done
  sleep "$delay"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  next=$((k + 1))
  if cmp -s "$work/w.nsde" "$work/model.$k"; then m=old
  elif cmp -s "$work/w.nsde" "$work/model.$next"; then m=new
  else fail "kill $i (after ${delay}s): the model file is neither epoch $k nor epoch $next"; fi
  if cmp -s "$work/w.nsde.state" "$work/state.$k"; then s=old
  elif cmp -s "$work/w.nsde.state" "$work/state.$next"; then s=new
  else fail "kill $i (after ${delay}s): the training state is neither epoch $k nor epoch $next"; fi
  [ $m = new ] && [ $s = old ] && fail "kill $i: the model file is ahead of the training state"
  [ $m = old ] && [ $s = old ] && seen_old=$((seen_old + 1))
  [ $m = new ] && [ $s = new ] && seen_new=$((seen_new + 1))
  [ $m = old ] && [ $s = new ] && seen_mixed=$((seen_mixed + 1))
  awk -F, '{ if (NF != 8) exit 1 }' "$work/w.csv" || fail "kill $i: a partial line in the metrics CSV"
  if ls "$work"/w.nsde*.tmp.* >/dev/null 2>&1; then # killed inside a write: its leftover is never read
    inside=$((inside + 1))
    rm -f "$work"/w.nsde*.tmp.*
  fi
  if [ $((i % 25)) -eq 0 ]; then # resume to the end: the same bits as the uninterrupted run
    # shellcheck disable=SC2086
    "$train" $opts --out "$work/w.nsde" --resume >/dev/null 2>&1 || fail "kill $i: --resume failed"
    cmp -s "$work/w.nsde" "$work/straight.nsde" || fail "kill $i: the resumed run ends with other bits"
  fi
done
echo "# $kills kills: $inside inside a write; files after them: $seen_old both old, $seen_mixed new state" \
  "and old model, $seen_new both new"
[ $seen_old -gt 0 ] && [ $seen_new -gt 0 ] && [ $inside -ge $((kills / 5)) ] ||
  fail "the kills did not spread over the writes"
# killed between the last epoch's two writes: the state is done, the model
# file one epoch behind; --resume has nothing left to train and must still
# bring the model file up to the state (found by the 200-kill run)
cp "$work/model.4" "$work/w.nsde"; cp "$work/state.5" "$work/w.nsde.state"
# shellcheck disable=SC2086
"$train" $opts --out "$work/w.nsde" --resume >/dev/null 2>&1 || fail "resume with the state one epoch ahead at the end"
cmp -s "$work/w.nsde" "$work/straight.nsde" || fail "the model file stayed behind the finished state after --resume"
cmp -s "$work/w.nsde.state" "$work/state.5" || fail "the finished state changed on --resume"

# a full disk: a clear error, both files as they were, no temporary file
cp "$work/model.2" "$work/w.nsde"; cp "$work/state.2" "$work/w.nsde.state"
rm -f "$work"/w.nsde*.tmp.*
for after in 0 100 3000; do
  # shellcheck disable=SC2086
  if NSDE_TEST_WRITE_FAIL_AFTER=$after "$train" $opts --out "$work/w.nsde" --resume --stop-after 1 \
    >/dev/null 2>"$work/full.log"; then
    fail "a write failing after $after bytes was not reported"
  fi
  grep -q "No space left on device" "$work/full.log" || { cat "$work/full.log"; fail "no clear message for a full disk"; }
  cmp -s "$work/w.nsde" "$work/model.2" || fail "a full disk changed the model file"
  cmp -s "$work/w.nsde.state" "$work/state.2" || fail "a full disk changed the training state"
  ! ls "$work"/w.nsde*.tmp.* >/dev/null 2>&1 || fail "a full disk left a temporary file"
done
echo "1 passed, 0 failed"

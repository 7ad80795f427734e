#!/bin/sh
# Data-parallel training over MPI (doc/distributed.md), on localhost:
#  1. the same model and state files, byte for byte, for 1, 2 and 3 ranks and
#     for 1 or 2 threads, and from nsde-train (no MPI) with the same
#     --micro-batch;
#  2. a run stopped after one epoch with 2 ranks and resumed with 3 ends with
#     the bytes of the uninterrupted run;
#  3. a rank killed mid-run stops the whole job within 60 s with a message,
#     the last saved files stay intact, and --resume with 1 rank finishes with
#     the uninterrupted run's bytes;
#  4. a rank that hangs (SIGSTOP) stops the job within --rank-timeout (5 s
#     here) plus 30 s with a message, the files stay, --resume on 2 ranks
#     finishes with the uninterrupted run's bytes;
#  5. rank 0 failing alone (a full disk while it writes the model) stops the
#     whole job within 60 s with the error, instead of leaving rank 1 waiting.
# usage: test-mpi.sh NSDE_TRAIN_MPI NSDE_TRAIN WORKDIR
set -eu
mpi=$1 plain=$2 work=$3/mpi-test
command -v mpirun >/dev/null || { echo "no mpirun"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
# as root, Open MPI wants these; --oversubscribe: more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none # containers without ptrace rights
# an MPI that cannot start two local processes here is the machine's, not ours
if ! timeout 60 mpirun -np 2 true >"$work/preflight.log" 2>&1; then
  echo "SKIP: mpirun cannot start 2 local processes on this machine:"; cat "$work/preflight.log"
  exit 77
fi
args="--data fashion-mnist --subset 192 --width 8 --groups 2 --batch 48 --micro-batch 8 --stages 3
      --epochs 3 --lr 0.1 --seed 5"
run() { # run NAME NP THREADS [extra args]
  name=$1 np=$2 th=$3
  shift 3
  # shellcheck disable=SC2086
  mpirun -np "$np" "$mpi" $args --threads "$th" --out "$work/$name.nsde" "$@" >"$work/$name.log" 2>&1 ||
    { echo "FAIL: $np ranks x $th threads"; cat "$work/$name.log"; exit 1; }
}
same() { # same A B: model and state files identical
  cmp -s "$work/$1.nsde" "$work/$2.nsde" && cmp -s "$work/$1.nsde.state" "$work/$2.nsde.state"
}
run k1 1 1
for cfg in "k2 2 1" "k3 3 1" "k2t2 2 2"; do
  # shellcheck disable=SC2086
  run $cfg
  set -- $cfg
  same k1 "$1" || { echo "FAIL: $2 ranks x $3 threads differ from 1 rank"; exit 1; }
done
# shellcheck disable=SC2086
"$plain" $args --threads 2 --out "$work/plain.nsde" >"$work/plain.log" 2>&1
same k1 plain || { echo "FAIL: nsde-train without MPI differs from 1 rank"; exit 1; }
echo "ok: 1, 2, 3 ranks, 1 or 2 threads, and no MPI: the same bytes"

run split 2 1 --stop-after 1
run split 3 1 --resume
same k1 split || { echo "FAIL: 1 epoch on 2 ranks + --resume on 3 differs"; exit 1; }
echo "ok: stopped on 2 ranks, resumed on 3: the same bytes"

# kill a rank once the first epoch's files exist (the run has 3 epochs)
# shellcheck disable=SC2086
mpirun -np 2 "$mpi" $args --threads 1 --out "$work/fault.nsde" >"$work/fault.log" 2>&1 &
job=$!
i=0
while [ ! -f "$work/fault.nsde" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -f "$work/fault.nsde" ] || { echo "FAIL: no model after the first epoch"; kill $job; exit 1; }
victim=$(pgrep -n -f "$mpi .*--out $work/fault.nsde" || true)
[ -n "$victim" ] || { echo "FAIL: no rank to kill"; exit 1; }
t0=$(date +%s)
kill -9 "$victim"
status=0
wait $job || status=$?
dt=$(($(date +%s) - t0))
[ $status -ne 0 ] || { echo "FAIL: the job ended with status 0 after a rank was killed"; exit 1; }
[ $dt -le 60 ] || { echo "FAIL: the job took $dt s to stop after a rank was killed"; exit 1; }
grep -qi "signal\|killed\|exited\|abort" "$work/fault.log" ||
  { echo "FAIL: no message about the killed rank"; cat "$work/fault.log"; exit 1; }
run fault 1 1 --resume
same k1 fault || { echo "FAIL: resumed after a killed rank differs"; exit 1; }
echo "ok: a killed rank stopped the job in $dt s (status $status); resumed on 1 rank: the same bytes"

# a hung rank: stopped (SIGSTOP) once the first epoch's files exist; the other
# rank's collective times out after --rank-timeout 5
# shellcheck disable=SC2086
mpirun -np 2 "$mpi" $args --threads 1 --rank-timeout 5 --out "$work/hang.nsde" >"$work/hang.log" 2>&1 &
job=$!
i=0
while [ ! -f "$work/hang.nsde" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
[ -f "$work/hang.nsde" ] || { echo "FAIL: no model after the first epoch (hang)"; kill $job; exit 1; }
victim=$(pgrep -n -f "$mpi .*--out $work/hang.nsde" || true)
[ -n "$victim" ] || { echo "FAIL: no rank to stop"; exit 1; }
cp "$work/hang.nsde" "$work/hang.before"
t0=$(date +%s)
kill -STOP "$victim"
status=0
wait $job || status=$?
dt=$(($(date +%s) - t0))
kill -CONT "$victim" 2>/dev/null || true
kill -9 "$victim" 2>/dev/null || true
[ $status -ne 0 ] || { echo "FAIL: the job ended with status 0 with a hung rank"; exit 1; }
[ $dt -le 35 ] || { echo "FAIL: the job took $dt s to stop after a rank hung (--rank-timeout 5)"; exit 1; }
grep -q "no answer within --rank-timeout" "$work/hang.log" ||
  { echo "FAIL: no message about the hung rank"; cat "$work/hang.log"; exit 1; }
# the files are whole: one of the finished epochs (the stop may land after the 2nd)
nsde_epochs=$(od -An -t u4 -j 8 -N 4 "$work/hang.nsde.state" | tr -d ' ')
[ "$nsde_epochs" -ge 1 ] || { echo "FAIL: the hung job lost its training state"; exit 1; }
run hang 2 1 --resume
same k1 hang || { echo "FAIL: resumed after a hung rank differs"; exit 1; }
echo "ok: a hung rank stopped the job in $dt s (--rank-timeout 5, status $status); resumed: the same bytes"

# rank 0 alone fails: its disk is full when it writes the first model file
t0=$(date +%s)
status=0
# shellcheck disable=SC2086
NSDE_TEST_WRITE_FAIL_AFTER=0 timeout 120 mpirun -np 2 "$mpi" $args --threads 1 --out "$work/full.nsde" \
  >"$work/full.log" 2>&1 || status=$?
dt=$(($(date +%s) - t0))
[ $status -ne 0 ] && [ $status -ne 124 ] ||
  { echo "FAIL: a full disk on rank 0 ended with status $status"; cat "$work/full.log"; exit 1; }
[ $dt -le 60 ] || { echo "FAIL: the job took $dt s to stop after rank 0's write failed"; exit 1; }
grep -q "No space left on device" "$work/full.log" ||
  { echo "FAIL: no message about the full disk"; cat "$work/full.log"; exit 1; }
! ls "$work"/full.nsde* >/dev/null 2>&1 || { echo "FAIL: a failed write left a file"; exit 1; }
echo "ok: rank 0's full disk stopped the job in $dt s (status $status)"

#!/bin/sh
# Build the libFuzzer targets (fuzz/, clang with AddressSanitizer and
# UndefinedBehaviorSanitizer) and run each for SECONDS on a copy of its seed
# corpus (fuzz/corpus/TARGET; new inputs go to WORK/corpus/TARGET, crashes to
# WORK/crash-TARGET-*). Prints, per target, executions, coverage and the
# result; exits non-zero when any target found a crash, a leak or a hang.
# usage: tools/fuzz.sh [SECONDS] [TARGET ...]     (default 30 s, every target)
#   WORK=/tmp/nsde-fuzz  MAX_RUNS=-1 (stop a target after this many executions
#   if that comes before SECONDS; -1: no limit)
set -eu
cd "$(dirname "$0")/.."
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-"cifar10 idx stl10 model state options"}
work=${WORK:-/tmp/nsde-fuzz}
for p in clang libomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    { echo "fuzz: installing $p"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $p >/dev/null; }
done
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Db_lundef=false -Dfuzz=true -Dtests=false >/dev/null
fi
meson compile -C build-fuzz >/dev/null
mkdir -p "$work"
fail=0
for t in $targets; do
  mkdir -p "$work/corpus/$t"
  log=$work/$t.log
  timer=
  [ -x /usr/bin/time ] && timer="/usr/bin/time -f %U+%S -o $work/$t.cpu"
  # shellcheck disable=SC2086
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1 \
    $timer ./build-fuzz/fuzz/fuzz-"$t" -max_total_time="$secs" -runs="${MAX_RUNS:--1}" \
    -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$work/crash-$t-" "$work/corpus/$t" "fuzz/corpus/$t" \
    >"$log" 2>&1 && rc=0 || rc=$?
  execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*ft: \([0-9]*\).*corp: \([0-9]*\).*/cov \1, features \2, corpus \3/p')
  cpu=
  [ -s "$work/$t.cpu" ] && cpu=" ($(tail -1 "$work/$t.cpu" | awk -F+ '{ printf "%.0f", $1 + $2 }') CPU-s)"
  if [ $rc -eq 0 ]; then
    echo "fuzz-$t: ${execs:-?} executions in at most $secs s$cpu, $cov: no crash, leak or hang"
  else
    echo "fuzz-$t: FAILED (exit $rc) after ${execs:-?} executions; see $log and $work/crash-$t-*"
    grep -E "ERROR|SUMMARY" "$log" | head -5
    fail=1
  fi
done
exit $fail

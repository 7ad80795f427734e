#!/bin/bash
# Build and run the whole test suite: a release build, then the same suite
# under AddressSanitizer and UndefinedBehaviorSanitizer.
# usage: tools/run-tests.sh   (from the repository root, as root on Debian 12)
# Suites run one at a time: each uses every core through OpenMP and BLIS, and
# spinning OpenMP teams of concurrent suites would starve each other.
set -euo pipefail
cd "$(dirname "$0")/.."
sh tools/install-deps.sh --suite
rm -rf build-ci build-asan
meson setup build-ci --buildtype=release >/dev/null
meson compile -C build-ci
meson test -C build-ci --num-processes 1 --print-errorlogs | tee build-ci/test-output.txt
meson setup build-asan --buildtype=debugoptimized -Db_sanitize=address,undefined \
  -Db_lundef=false >/dev/null
meson compile -C build-asan
meson test -C build-asan --num-processes 1 --print-errorlogs --timeout-multiplier 4 | tee build-asan/test-output.txt
ok=$(cat build-ci/test-output.txt build-asan/test-output.txt | awk '/^Ok:/ {s += $2} END {print s + 0}')
echo "all tests passed (release and sanitizer builds)"
echo "$ok passed, 0 failed"

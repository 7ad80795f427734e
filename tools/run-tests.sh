#!/bin/bash
# Build and run the whole test suite: a release build, then the same suite
# under AddressSanitizer and UndefinedBehaviorSanitizer, then every libFuzzer
# target for 30 s on its seed corpus (tools/fuzz.sh; clang, ASan + UBSan) so
# that a reader which starts crashing on its own corpus or near it shows;
# then the Debian packages (tools/build-deb.sh: build, lintian, install, use,
# remove).
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
fuzz_work=$(mktemp -d /tmp/nsde-fuzz-ci.XXXXXX)
WORK=$fuzz_work sh tools/fuzz.sh 30 | tee build-asan/fuzz-output.txt
rm -rf "$fuzz_work"
sh tools/build-deb.sh | tee build-ci/deb-output.txt
ok=$(cat build-ci/test-output.txt build-asan/test-output.txt | awk '/^Ok:/ {s += $2} END {print s + 0}')
echo "all tests passed (release and sanitizer builds, fuzz smoke, Debian packages)"
echo "$ok passed, 0 failed"

#!/bin/sh
# Install what libnsde needs to build, test and run its examples on Debian 12
# (as root). Installs only what is missing; safe to run again.
# usage: install-deps.sh [--suite]
set -eu
pkgs="build-essential meson ninja-build pkg-config libblis-dev check zlib1g-dev libjpeg-dev gnuplot-nox xz-utils dataset-fashion-mnist"
# --suite: also what the whole test suite checks and the main job does not need:
# Open MPI (nsde-train-mpi and its test), Doxygen (the API reference), groff
# (test-cli renders the man pages), CMake (test-pkgconfig's find_package) and
# clang-format (the style test checks the layout)
if [ "${1:-}" = --suite ]; then pkgs="$pkgs libopenmpi-dev openmpi-bin doxygen groff-base cmake clang-format"; fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "install-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing >/dev/null
fi

#!/bin/sh
# Build the Debian packages of libnsde (libnsde1, libnsde-dev, nsde-tools,
# libnsde-doc) from this tree on Debian 12 (as root), check them with
# lintian (no error, no warning), install them, build and run the README's
# example against the installed packages through pkg-config, check the
# programs and man pages, and remove the packages again.
# usage: tools/build-deb.sh [OUT_DIR]   (the .deb files stay in OUT_DIR;
#        default: a temporary directory that is removed)
# DEB_BUILD_OPTIONS=nocheck skips the unit tests at package build (they need
# ../shared/data/cifar10 beside the tree, as the test suite does).
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/nsde-deb.XXXXXX)
out=${1:-$work/out}
pkgs="libnsde1 libnsde-dev nsde-tools libnsde-doc"
installed=0
cleanup() {
  if [ $installed -eq 1 ]; then
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $pkgs >/dev/null 2>&1 ||
      echo "build-deb: could not remove $pkgs"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive

# 1. the packaging tools and the build dependencies of debian/control
need=""
for p in debhelper dpkg-dev fakeroot lintian; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  echo "build-deb: installing$need"
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $need >/dev/null
fi
apt-get build-dep -y -qq "$src" >/dev/null

# 2. the tracked files of this tree, built outside it (the tree stays clean)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tree=$work/nsde-$version
mkdir -p "$tree" "$out"
# the model tests read a CIFAR-10 slice from ../shared beside the tree, as in CI
[ -d "$src/../shared" ] && ln -s "$(cd "$src/../shared" && pwd)" "$work/shared"
(cd "$src" && git ls-files -z | xargs -0 cp --parents -t "$tree")
(cd "$tree" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
  tail -n 60 "$work/build.log"
  # a failing unit test: its name and output last, where a CI summary that
  # keeps only the end of the log still shows them
  failed='^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT) ' # meson test's line for a failed test
  if grep -qE "$failed" "$work/build.log"; then
    echo "build-deb: the failing tests and what they printed:"
    grep -A 40 -E "$failed" "$work/build.log" | head -n 120
    grep -E "$failed" "$work/build.log"
  fi
  echo "FAIL: dpkg-buildpackage (log above)"
  exit 1
}
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
echo "build-deb: built $(cd "$out" && ls ./*.deb | tr '\n' ' ')"

# 3. lintian: no errors, no warnings (overrides, if any, say why in a comment)
lintian --fail-on error,warning --tag-display-limit 0 "$out"/nsde_"${version}"_*.changes ||
  { echo "FAIL: lintian"; exit 1; }

# 4. install, then use the packages as a user would
installed=1
# shellcheck disable=SC2046
apt-get install -y -qq $(for p in $pkgs; do ls "$out"/"${p}"_*.deb; done) >/dev/null
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
sysdir=/usr/lib/$multiarch
# only the packages' files: a `meson install` under /usr/local must not answer
export PKG_CONFIG_LIBDIR=$sysdir/pkgconfig:/usr/share/pkgconfig
[ "$(pkg-config --modversion nsde)" = "${version%%-*}" ] ||
  { echo "FAIL: pkg-config finds nsde $(pkg-config --modversion nsde), not $version"; exit 1; }
sed -n '/^## A short example/,/^## /p' "$src/README.md" | sed -n '/^```c$/,/^```$/p' | sed '1d;$d' \
  >"$work/example.c"
[ -s "$work/example.c" ] || { echo "FAIL: no C example in README.md"; exit 1; }
# shellcheck disable=SC2046
cc -o "$work/example" "$work/example.c" $(pkg-config --cflags --libs nsde) ||
  { echo "FAIL: the README example does not build against the packages"; exit 1; }
LD_LIBRARY_PATH=$sysdir "$work/example" ||
  { echo "FAIL: the README example does not run against the packages"; exit 1; }
LD_LIBRARY_PATH=$sysdir ldd "$work/example" | grep -q "libnsde.so.1 => $sysdir/libnsde.so.1" ||
  { echo "FAIL: the example did not load $sysdir/libnsde.so.1"; exit 1; }
LD_LIBRARY_PATH=$sysdir /usr/bin/nsde-train --version | grep -q "^nsde-train (libnsde) ${version%%-*}" ||
  { echo "FAIL: /usr/bin/nsde-train --version"; exit 1; }
for page in "1 nsde-train" "1 nsde-eval" "3 libnsde"; do
  # shellcheck disable=SC2086
  man -w $page | grep -q '^/usr/share/man/' || { echo "FAIL: man $page is not installed"; exit 1; }
done
[ -f /usr/share/doc/nsde/html/index.html ] || { echo "FAIL: libnsde-doc has no API reference"; exit 1; }
echo "ok: $pkgs built, lintian clean, installed, README example built with pkg-config and ran"

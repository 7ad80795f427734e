#!/bin/sh
# Run by `meson install` (meson.add_install_script): make the installed
# libnsde.so findable by the dynamic loader, so that a program built with
#   cc prog.c $(pkg-config --cflags --libs nsde)
# runs as is. A staged install (DESTDIR set) is left to the package manager.
# usage: post-install.sh LIBDIR
set -eu
libdir=$1
[ -n "${DESTDIR:-}" ] && exit 0
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
# as root, refresh the loader's cache (meson does not): /usr/local/lib... is on
# Debian's loader path, but the cache still lacks a library just installed
if [ "$(id -u)" = 0 ] && [ -x "$ldconfig" ]; then
  "$ldconfig" || true
fi
if [ -x "$ldconfig" ] && "$ldconfig" -p 2>/dev/null | grep -q " => $libdir/libnsde\.so"; then
  echo "libnsde: $libdir/libnsde.so is in the loader's cache"
else
  echo "libnsde: $libdir is not on the loader's path; run programs with" \
    "LD_LIBRARY_PATH=$libdir, or add it to /etc/ld.so.conf.d/ and run ldconfig as root"
fi

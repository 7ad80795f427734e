#!/bin/sh
# Whether the dynamic loader searches LIBDIR without LD_LIBRARY_PATH: the
# trusted directories and every directory listed in /etc/ld.so.conf and the
# files it includes (one level of `include`, as Debian uses it). Prints yes or
# no. Used by meson.build at configure time, when LIBDIR may not exist yet.
# usage: loader-path.sh LIBDIR
libdir=${1%/}
conf_dirs() {
  for f in "$@"; do
    [ -r "$f" ] || continue
    sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$f" | while read -r line; do
      case $line in
        include\ *) for g in ${line#include }; do [ -r "$g" ] && sed -e 's/#.*//' -e 's/[[:space:]]//g' "$g"; done ;;
        '') ;;
        *) echo "$line" ;;
      esac
    done
  done
}
for d in /lib /usr/lib /lib64 /usr/lib64 $(conf_dirs /etc/ld.so.conf); do
  [ "${d%/}" = "$libdir" ] && { echo yes; exit 0; }
done
echo no

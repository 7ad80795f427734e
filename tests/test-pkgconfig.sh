#!/bin/sh
# Configure and install libnsde into a prefix inside the build tree, then
# build and run an outside program with nothing but
#   cc prog.c $(pkg-config --cflags --libs nsde)
# usage: test-pkgconfig.sh BUILD_ROOT SOURCE_ROOT
set -eu
build=$1 src=$2
work=$build/pkgconfig-test
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
meson setup "$work/build" "$src" --prefix="$prefix" -Dtests=false >"$work/setup.log" 2>&1 ||
  { cat "$work/setup.log"; exit 1; }
meson install -C "$work/build" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
pc=$(find "$prefix" -name nsde.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: nsde.pc not installed"; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir nsde)
cat >"$work/prog.c" <<'PROG'
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <nsde/nsde.h>

int main(void)
{
  struct nsde_context *ctx;
  struct nsde_func *f, *g;
  struct nsde_sde *sde;
  struct nsde_solver_config cfg;
  struct nsde_solver *solver;
  struct nsde_tensor *x;
  int64_t shape[2] = {20000, 1};
  double mean = 0;

  if (strcmp(nsde_version(), NSDE_VERSION_STRING) != 0)
    return 2;
  printf("version %s\n", nsde_version());
  if (nsde_context_new(&ctx) || nsde_func_new_linear(ctx, NSDE_DTYPE_FLOAT64, 0.5, 0.0, &f) ||
      nsde_func_new_multiplicative(ctx, NSDE_DTYPE_FLOAT64, 0.3, &g) ||
      nsde_sde_new(ctx, f, g, NSDE_NOISE_DIAGONAL, NSDE_CALCULUS_ITO, &sde))
    return 3;
  nsde_solver_config_init(&cfg);
  cfg.n_steps = 50;
  if (nsde_solver_new(sde, &cfg, 2, shape, &solver) ||
      nsde_tensor_new(ctx, NSDE_DTYPE_FLOAT64, 2, shape, &x))
    return 4;
  if (nsde_tensor_fill(x, 1.0) != NSDE_OK || nsde_solve(solver, x, NULL) != NSDE_OK)
    return 5;
  for (int i = 0; i < 20000; i++)
    mean += ((double *)nsde_tensor_data(x))[i] / 20000;
  /* E x(1) = e^0.5 for GBM; Euler's mean is (1 + 0.5/50)^50 */
  printf("mean %.4f expected %.4f\n", mean, pow(1.01, 50));
  nsde_tensor_free(x); nsde_solver_free(solver); nsde_sde_free(sde);
  nsde_func_free(g); nsde_func_free(f); nsde_context_free(ctx);
  return fabs(mean - pow(1.01, 50)) < 0.01 ? 0 : 6;
}
PROG
cc=${CC:-cc}
# shellcheck disable=SC2046
$cc -o "$work/prog" "$work/prog.c" $(pkg-config --cflags --libs nsde) -lm
LD_LIBRARY_PATH=$libdir "$work/prog" >"$work/prog.out"
cat "$work/prog.out"
# One version everywhere: meson.build, nsde.pc, nsde_version() of the
# installed library, the newest NEWS.md entry; the SONAME is the major's.
v_meson=$(sed -n "s/^  version: '\([0-9.]*\)',$/\1/p" "$src/meson.build")
v_pc=$(pkg-config --modversion nsde)
v_lib=$(sed -n 's/^version //p' "$work/prog.out")
v_news=$(sed -n 's/^## \([0-9][0-9.]*\) .*/\1/p' "$src/NEWS.md" | head -n 1)
if [ -z "$v_meson" ] || [ "$v_meson" != "$v_pc" ] || [ "$v_meson" != "$v_lib" ] || [ "$v_meson" != "$v_news" ]; then
  echo "FAIL: versions disagree: meson.build '$v_meson', nsde.pc '$v_pc', nsde_version() '$v_lib', NEWS.md '$v_news'"
  exit 1
fi
soname=$(readelf -d "$libdir/libnsde.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libnsde.so.${v_meson%%.*}" ] || { echo "FAIL: SONAME '$soname' for version $v_meson"; exit 1; }
# CMake: find_package(nsde) and the imported target, three lines of CMakeLists
if command -v cmake >/dev/null; then
  mkdir -p "$work/cmake"
  cp "$work/prog.c" "$work/cmake/prog.c"
  cat >"$work/cmake/CMakeLists.txt" <<'CML'
cmake_minimum_required(VERSION 3.13)
project(use_nsde C)
find_package(nsde 1.0 REQUIRED)
add_executable(prog prog.c)
target_link_libraries(prog nsde::nsde m)
CML
  cmake -S "$work/cmake" -B "$work/cmake/build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake/build" >>"$work/cmake.log" 2>&1 &&
    LD_LIBRARY_PATH=$libdir "$work/cmake/build/prog" >/dev/null ||
    { echo "FAIL: a CMake project with find_package(nsde)"; cat "$work/cmake.log"; exit 1; }
  sed -i 's/find_package(nsde 1.0 REQUIRED)/find_package(nsde 2.0 REQUIRED)/' "$work/cmake/CMakeLists.txt"
  if cmake -S "$work/cmake" -B "$work/cmake/build2" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
    echo "FAIL: find_package(nsde 2.0) accepted libnsde $v_meson"; exit 1
  fi
else
  echo "note: cmake not installed; find_package(nsde) not tried"
fi
# meson install puts the man pages where man finds them
for page in man1/nsde-train.1 man1/nsde-eval.1 man3/libnsde.3; do
  [ -n "$(find "$prefix" -path "*/man/$page")" ] || { echo "FAIL: $page not installed"; exit 1; }
done
# -Dtests=false builds no test program, even with Check installed
if find "$work/build/tests" -name 'test-*' -type f 2>/dev/null | grep -q .; then
  echo "FAIL: -Dtests=false still built test programs"; exit 1
fi
# the configure summary tells a user how the loader finds the library: a
# scratch prefix is not on the loader's path, and it says what to set
grep -q "LD_LIBRARY_PATH=$libdir" "$work/setup.log" ||
  { echo "FAIL: meson setup did not say how to find $libdir"; cat "$work/setup.log"; exit 1; }
[ "$(sh "$src/tools/loader-path.sh" /usr/lib)" = yes ] || { echo "FAIL: loader-path.sh"; exit 1; }
echo "ok: external program built with pkg-config ($pc) and ran"

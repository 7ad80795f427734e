/*
 * libnsde internals shared by the modules. Not installed.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_PRIVATE_H
#define NSDE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nsde/nsde.h"

#if defined(__GNUC__)
#define NSDE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NSDE_PRINTF(a, b)
#endif

#define NSDE_MSG_MAX 512

struct nsde_context {
  int threads;
  nsde_log_fn log_fn;
  void *log_user;
  enum nsde_log_level log_min;
  enum nsde_status last_status;
  char last_error[NSDE_MSG_MAX];
};

struct nsde_tensor {
  struct nsde_context *ctx;
  enum nsde_dtype dtype;
  int rank;
  int contiguous;
  int64_t shape[NSDE_MAX_RANK];
  int64_t stride[NSDE_MAX_RANK];
  int64_t numel;
  void *data;
  void *owned; /* freed by nsde_tensor_free(); NULL when wrapped */
};

/* Record an error on ctx (if not NULL), log it, return status. */
enum nsde_status nsde__error(struct nsde_context *ctx, enum nsde_status status, const char *fmt,
                             ...) NSDE_PRINTF(3, 4);
void nsde__log(struct nsde_context *ctx, enum nsde_log_level level, const char *fmt, ...)
    NSDE_PRINTF(3, 4);

size_t nsde__dtype_size(enum nsde_dtype dtype);
bool nsde__dtype_valid(enum nsde_dtype dtype);
const char *nsde__dtype_name(enum nsde_dtype dtype);

/* The one way functions are written once for both dtypes: as a macro
 * DEF(T, SFX) whose body is in terms of T, made for float (name_f32) and
 * double (name_f64) by NSDE__FOR_DTYPES(DEF). */
#define NSDE__FOR_DTYPES(DEF) DEF(float, _f32) DEF(double, _f64)

/* Element i of an array of dtype dt, read or written as a double. */
static inline double nsde__get_el(enum nsde_dtype dt, const void *p, int64_t i)
{
  return dt == NSDE_DTYPE_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void nsde__set_el(enum nsde_dtype dt, void *p, int64_t i, double v)
{
  if (dt == NSDE_DTYPE_FLOAT32)
    ((float *)p)[i] = (float)v;
  else
    ((double *)p)[i] = v;
}
/* p[i] += v in the dtype. */
static inline void nsde__add_el(enum nsde_dtype dt, void *p, int64_t i, double v)
{
  if (dt == NSDE_DTYPE_FLOAT32)
    ((float *)p)[i] += (float)v;
  else
    ((double *)p)[i] += v;
}

/* FNV-1a 64 of n bytes, continuing from h (NSDE__FNV_BASIS to start). */
#define NSDE__FNV_BASIS 14695981039346656037ULL
#define NSDE__FNV_PRIME 1099511628211ULL
uint64_t nsde__fnv1a(const void *p, size_t n, uint64_t h);
/* A 64-bit fingerprint of n bytes for telling in-process states apart (not
 * stored in files: the values may change between versions): eight
 * independent multiply-xor chains over 8-byte words, which the core
 * overlaps (0.25 ns a float on Zen 5; byte-wise FNV-1a waits one
 * multiply's latency per byte). */
uint64_t nsde__fingerprint(const void *p, size_t n);

/* The one check of a tensor argument: t, named what in fn's messages, is
 * not NULL, has dtype dt, and (rank >= 0) rank dimensions of the given shape,
 * an entry < 0 taking any extent; contiguous if asked. */
enum nsde_status nsde__check_tensor(struct nsde_context *ctx, const char *fn, const char *what,
                                    const struct nsde_tensor *t, enum nsde_dtype dt, int rank,
                                    const int64_t *shape, bool contiguous);

/* Versioned structs (first member `size_t size`). Copy the caller's struct at
 * src into dst (full bytes, this library's sizeof): a struct from an older
 * header (size between min and full) is copied and zero-filled past its end,
 * so members added later read as 0, which means "default"; one from a newer
 * header (size above full) is accepted when every byte past full is zero (the
 * program left the members this library does not know at their defaults).
 * dst->size is set to full. min is the struct's size in the release that
 * introduced it. */
enum nsde_status nsde__struct_in(struct nsde_context *ctx, const char *what, const void *src,
                                 size_t min, size_t full, void *dst);
/* For a struct the library fills (a report): the caller's size must be
 * between min and a sane bound; the library writes at most that many bytes. */
enum nsde_status nsde__struct_out_check(struct nsde_context *ctx, const char *what, const void *dst,
                                        size_t min);
/* Size of a versioned struct up to and including member m: the min argument
 * above, frozen at the last member of the struct's first release. */
#define NSDE__SIZE_TO(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))
/* Largest size field taken as a struct size (larger values are garbage). */
#define NSDE__STRUCT_MAX 4096

/* Checked products; return false on overflow of int64/size_t. */
bool nsde__mul_i64(int64_t a, int64_t b, int64_t *out);
bool nsde__mul_size(size_t a, size_t b, size_t *out);

/* n rounded up to a multiple of 64 bytes (a cache line; the alignment of every
 * buffer libnsde carves out of one allocation). n must be <= SIZE_MAX - 63. */
static inline size_t nsde__round64(size_t n)
{
  return (n + 63) & ~(size_t)63;
}

/* A tuning knob read from the environment once per process: choose(the
 * variable's value, or NULL when unset) gives a value >= 0, kept in *cache
 * (which starts at -1); threads that race here compute the same value
 * (relaxed atomics). */
int nsde__env_knob(int *cache, const char *name, int (*choose)(const char *value));

/* 64-byte aligned allocation of n bytes (n may be 0 -> NULL). */
void *nsde__alloc(size_t n);
void nsde__free(void *p);

/* Make sure BLIS is initialised with the right kernels (idempotent, thread-safe). */
void nsde__blis_ensure(void);
/* True when faster kernels were wanted but threads were already running. */
bool nsde__blis_forcing_failed(void);

/* Column/row-strided GEMM on raw pointers, dtype-dispatched, threads from ctx.
 * Strides in elements: A is m x k with (rsa, csa), etc. */
void nsde__gemm(const struct nsde_context *ctx, enum nsde_dtype dtype, bool ta, bool tb, int64_t m,
                int64_t n, int64_t k, double alpha, const void *a, int64_t rsa, int64_t csa,
                const void *b, int64_t rsb, int64_t csb, double beta, void *c, int64_t rsc,
                int64_t csc);

/* Validate a user shape; on success fills numel. */
enum nsde_status nsde__check_shape(struct nsde_context *ctx, const char *fn, int rank,
                                   const int64_t *shape, int64_t *numel);

/* Denormal floats: x86 cores take microcode assists on them (2x and more
 * slower network passes when gradients get tiny). libnsde's own parallel
 * regions run with flush-to-zero and denormals-are-zero and give the
 * thread its floating-point state back afterwards; the caller's threads
 * are never left changed. */
#if defined(__x86_64__) || defined(__SSE2__)
#include <xmmintrin.h>
static inline unsigned nsde__ftz_enter(void)
{
  unsigned old = _mm_getcsr();
  _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
  return old;
}
static inline void nsde__ftz_leave(unsigned old)
{
  _mm_setcsr(old);
}
#else
static inline unsigned nsde__ftz_enter(void)
{
  return 0;
}
static inline void nsde__ftz_leave(unsigned old)
{
  (void)old;
}
#endif

/* Loops shorter than this stay on one thread: waking threads costs more. */
#define NSDE_PAR_MIN 8192

/* NSDE_PAR_FOR(cond, "omp parallel for ...", loop): the loop shared among
 * threads by the pragma when cond holds, else run here without entering a
 * parallel region. An OpenMP if() clause is not enough: libgomp still sets
 * up a one-thread team for if(0) and ends it with a futex call, and small
 * solves make several such regions per step (a quarter of the CPU time of a
 * run of small adaptive solves went to the kernel). cond includes
 * "threads > 1". NSDE_PAR_FOR_SIMD runs the serial loop under a second
 * pragma ("omp simd ..."). */
#define NSDE_PAR_FOR(cond, par, ...)                                                               \
  do {                                                                                             \
    if (cond) {                                                                                    \
      _Pragma(par) __VA_ARGS__                                                                     \
    } else {                                                                                       \
      __VA_ARGS__                                                                                  \
    }                                                                                              \
  } while (0)
#define NSDE_PAR_FOR_SIMD(cond, par, ser, ...)                                                     \
  do {                                                                                             \
    if (cond) {                                                                                    \
      _Pragma(par) __VA_ARGS__                                                                     \
    } else {                                                                                       \
      _Pragma(ser) __VA_ARGS__                                                                     \
    }                                                                                              \
  } while (0)

/* Hot loops: one clone per vector ISA, chosen at load time. Only loops whose
 * results do not depend on the vector width (element-wise work, sums kept
 * per lane in the scalar order) get clones. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define NSDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NSDE_CLONES
#define NSDE_CLONES
#endif

#endif

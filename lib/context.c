/*
 * Context, status strings, version, logging.
 * SPDX-License-Identifier: MIT
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nsde-private.h"

#ifdef _OPENMP
#include <omp.h>
#endif

NSDE_API const char *nsde_status_str(enum nsde_status status)
{
  switch (status) {
#define NSDE_STATUS_CASE_(name, value, msg)                                                        \
  case name: return msg;
    NSDE_STATUS_LIST(NSDE_STATUS_CASE_)
#undef NSDE_STATUS_CASE_
  default: return "unknown status";
  }
}

NSDE_API const char *nsde_version(void)
{
  return NSDE_VERSION_STRING;
}

static int default_threads(void)
{
#ifdef _OPENMP
  int n = omp_get_num_procs();
  return n > 0 ? n : 1;
#else
  return 1;
#endif
}

NSDE_API enum nsde_status nsde_context_new(struct nsde_context **out)
{
  struct nsde_context *ctx;

  if (!out)
    return NSDE_ERR_NULL;
  *out = NULL;
  ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return NSDE_ERR_NOMEM;
  ctx->threads = default_threads();
  ctx->log_min = NSDE_LOG_WARNING;
  nsde__blis_ensure();
  *out = ctx;
  return NSDE_OK;
}

NSDE_API void nsde_context_free(struct nsde_context *ctx)
{
  free(ctx);
}

NSDE_API enum nsde_status nsde_context_set_threads(struct nsde_context *ctx, int n)
{
  if (!ctx)
    return NSDE_ERR_NULL;
  if (n < 0 || n > 1024)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "thread count %d out of range (0 for the default, or 1..1024)", n);
  ctx->threads = n == 0 ? default_threads() : n;
  return NSDE_OK;
}

NSDE_API int nsde_context_threads(const struct nsde_context *ctx)
{
  return ctx ? ctx->threads : 0;
}

NSDE_API enum nsde_status nsde_context_set_log(struct nsde_context *ctx, nsde_log_fn fn, void *user,
                                               enum nsde_log_level min_level)
{
  if (!ctx)
    return NSDE_ERR_NULL;
  if ((int)min_level < NSDE_LOG_DEBUG || (int)min_level > NSDE_LOG_ERROR)
    return nsde__error(ctx, NSDE_ERR_INVALID, "log level %d out of range", (int)min_level);
  ctx->log_fn = fn;
  ctx->log_user = user;
  ctx->log_min = min_level;
  nsde__log(ctx, NSDE_LOG_INFO, "libnsde %s, BLIS kernels '%s' (%s)", nsde_version(),
            nsde_blis_arch(),
            nsde_blis_arch_choice() == NSDE_BLIS_CHOSEN_BY_USER   ? "BLIS_ARCH_TYPE"
            : nsde_blis_arch_choice() == NSDE_BLIS_CHOSEN_BY_NSDE ? "chosen by libnsde"
                                                                  : "chosen by BLIS");
  if (nsde__blis_forcing_failed())
    nsde__log(ctx, NSDE_LOG_WARNING,
              "BLIS uses its '%s' kernels: libnsde was loaded after threads started and "
              "did not touch the environment; set BLIS_ARCH_TYPE for faster ones",
              nsde_blis_arch());
  return NSDE_OK;
}

NSDE_API const char *nsde_context_last_error(const struct nsde_context *ctx)
{
  return ctx ? ctx->last_error : "";
}

NSDE_API enum nsde_status nsde_context_last_status(const struct nsde_context *ctx)
{
  return ctx ? ctx->last_status : NSDE_OK;
}

NSDE_API void nsde_context_clear_error(struct nsde_context *ctx)
{
  if (!ctx)
    return;
  ctx->last_status = NSDE_OK;
  ctx->last_error[0] = '\0';
}

static void vlog(struct nsde_context *ctx, enum nsde_log_level level, const char *fmt, va_list ap)
{
  char buf[NSDE_MSG_MAX];

  if (!ctx || !ctx->log_fn || level < ctx->log_min)
    return;
  vsnprintf(buf, sizeof(buf), fmt, ap);
  ctx->log_fn(ctx->log_user, level, buf);
}

int nsde__env_knob(int *cache, const char *name, int (*choose)(const char *value))
{
  int v = __atomic_load_n(cache, __ATOMIC_RELAXED);
  if (v < 0) {
    v = choose(getenv(name));
    __atomic_store_n(cache, v, __ATOMIC_RELAXED);
  }
  return v;
}

void nsde__log(struct nsde_context *ctx, enum nsde_log_level level, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vlog(ctx, level, fmt, ap);
  va_end(ap);
}

enum nsde_status nsde__error(struct nsde_context *ctx, enum nsde_status status, const char *fmt,
                             ...)
{
  va_list ap;

  if (!ctx)
    return status;
  va_start(ap, fmt);
  vsnprintf(ctx->last_error, sizeof(ctx->last_error), fmt, ap);
  va_end(ap);
  ctx->last_status = status;
  nsde__log(ctx, NSDE_LOG_ERROR, "%s: %s", nsde_status_str(status), ctx->last_error);
  return status;
}

size_t nsde__dtype_size(enum nsde_dtype dtype)
{
  return dtype == NSDE_DTYPE_FLOAT64 ? sizeof(double) : sizeof(float);
}

const char *nsde__dtype_name(enum nsde_dtype dtype)
{
  return dtype == NSDE_DTYPE_FLOAT32 ? "float32" : dtype == NSDE_DTYPE_FLOAT64 ? "float64" : "?";
}

uint64_t nsde__fnv1a(const void *p, size_t n, uint64_t h)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * NSDE__FNV_PRIME;
  return h;
}

uint64_t nsde__fingerprint(const void *p, size_t n)
{
  const unsigned char *b = p;
  uint64_t h[8] = {0x9E3779B97F4A7C15ULL, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL,
                   0x27D4EB2F165667C5ULL, 0x85EBCA77C2B2AE63ULL, 0xFF51AFD7ED558CCDULL,
                   0xC4CEB9FE1A85EC53ULL, 0xD6E8FEB86659FD93ULL};
  size_t i = 0;
  uint64_t w[8];

  for (; i + sizeof(w) <= n; i += sizeof(w)) {
    memcpy(w, b + i, sizeof(w));
    for (int j = 0; j < 8; j++)
      h[j] = (h[j] ^ w[j]) * NSDE__FNV_PRIME;
  }
  h[0] = nsde__fnv1a(b + i, n - i, h[0]);
  for (int j = 1; j < 8; j++) {
    h[0] = (h[0] ^ h[j]) * 0xBF58476D1CE4E5B9ULL;
    h[0] ^= h[0] >> 31;
  }
  return h[0] ^ (uint64_t)n;
}

bool nsde__dtype_valid(enum nsde_dtype dtype)
{
  return dtype == NSDE_DTYPE_FLOAT32 || dtype == NSDE_DTYPE_FLOAT64;
}

enum nsde_status nsde__struct_in(struct nsde_context *ctx, const char *what, const void *src,
                                 size_t min, size_t full, void *dst)
{
  size_t size;

  memcpy(&size, src, sizeof(size));
  if (size < min || size > NSDE__STRUCT_MAX)
    return nsde__error(ctx, NSDE_ERR_INVALID,
                       "%s: size field is %zu; set it with the struct's _init function "
                       "(this library takes %zu..%zu)",
                       what, size, min, full);
  if (size > full) {
    const unsigned char *tail = (const unsigned char *)src + full;
    for (size_t i = 0; i < size - full; i++)
      if (tail[i])
        return nsde__error(ctx, NSDE_ERR_UNSUPPORTED,
                           "%s: the program was built with a newer libnsde header and sets a "
                           "member this library (%zu-byte struct) does not have (byte %zu of %zu)",
                           what, full, full + i, size);
  }
  memset(dst, 0, full);
  memcpy(dst, src, size < full ? size : full);
  memcpy(dst, &full, sizeof(full));
  return NSDE_OK;
}

enum nsde_status nsde__struct_out_check(struct nsde_context *ctx, const char *what, const void *dst,
                                        size_t min)
{
  size_t size;

  memcpy(&size, dst, sizeof(size));
  if (size < min || size > NSDE__STRUCT_MAX)
    return nsde__error(ctx, NSDE_ERR_INVALID, "%s: size field is %zu; set it to sizeof the struct",
                       what, size);
  return NSDE_OK;
}

bool nsde__mul_i64(int64_t a, int64_t b, int64_t *out)
{
  if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a))
    return false;
  *out = a * b;
  return true;
}

bool nsde__mul_size(size_t a, size_t b, size_t *out)
{
  if (a != 0 && b > SIZE_MAX / a)
    return false;
  *out = a * b;
  return true;
}

void *nsde__alloc(size_t n)
{
  size_t rounded;

  if (n == 0)
    return NULL;
  if (n > SIZE_MAX - 63)
    return NULL;
  rounded = nsde__round64(n);
  return aligned_alloc(64, rounded);
}

void nsde__free(void *p)
{
  free(p);
}

enum nsde_status nsde__check_shape(struct nsde_context *ctx, const char *fn, int rank,
                                   const int64_t *shape, int64_t *numel)
{
  int64_t n = 1;

  if (!shape)
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: shape is NULL", fn);
  if (rank < 1 || rank > NSDE_MAX_RANK)
    return nsde__error(ctx, NSDE_ERR_SHAPE, "%s: rank %d out of range 1..%d", fn, rank,
                       NSDE_MAX_RANK);
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 1)
      return nsde__error(ctx, NSDE_ERR_SHAPE, "%s: extent %lld of axis %d is not positive", fn,
                         (long long)shape[i], i);
    if (!nsde__mul_i64(n, shape[i], &n))
      return nsde__error(ctx, NSDE_ERR_OVERFLOW, "%s: element count overflows at axis %d", fn, i);
  }
  *numel = n;
  return NSDE_OK;
}

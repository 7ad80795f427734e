/**
 * @file
 * libnsde - core: export macro, status codes, context, version, BLIS info.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_CORE_H
#define NSDE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks the public functions: exported from the library, hidden otherwise. */
#if defined(NSDE_BUILDING_LIBRARY) && defined(__GNUC__)
#define NSDE_API __attribute__((visibility("default")))
#else
#define NSDE_API
#endif

/** Marks a name kept for one release after its replacement: using it warns. */
#if defined(__GNUC__) || defined(__clang__)
#define NSDE_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define NSDE_DEPRECATED(msg)
#endif

/** Calls that return a status: the compiler warns when a caller drops it
 * (cast to void to ignore one on purpose). */
#if defined(__GNUC__) || defined(__clang__)
#define NSDE_NODISCARD __attribute__((warn_unused_result))
#else
#define NSDE_NODISCARD
#endif

/**
 * The single list of status codes: NAME, value, message.
 * 0 is success, every error is negative. nsde_status_str() is generated
 * from the same list, so the two cannot drift apart.
 */
#define NSDE_STATUS_LIST(X)                                                                        \
  X(NSDE_OK, 0, "success")                                                                         \
  X(NSDE_ERR_INVALID, -1, "invalid argument")                                                      \
  X(NSDE_ERR_NULL, -2, "NULL pointer where an object was required")                                \
  X(NSDE_ERR_SHAPE, -3, "invalid or mismatched shape")                                             \
  X(NSDE_ERR_OVERFLOW, -4, "size does not fit in memory arithmetic")                               \
  X(NSDE_ERR_NOMEM, -5, "out of memory")                                                           \
  X(NSDE_ERR_DTYPE, -6, "unsupported or mismatched data type")                                     \
  X(NSDE_ERR_UNSUPPORTED, -7, "combination of options not supported")                              \
  X(NSDE_ERR_MISSING_OP, -8, "a callback the operation needs is missing")                          \
  X(NSDE_ERR_CALLBACK, -9, "a user callback returned an error")                                    \
  X(NSDE_ERR_NONFINITE, -10, "non-finite value (NaN or infinity)")                                 \
  X(NSDE_ERR_STATE, -11, "call out of order for this object")                                      \
  X(NSDE_ERR_IO, -12, "input/output error")                                                        \
  X(NSDE_ERR_FORMAT, -13, "malformed or unsupported file")                                         \
  X(NSDE_ERR_INTERNAL, -14, "internal error (a bug in libnsde)")                                   \
  X(NSDE_ERR_CHECK_FAILED, -15, "a derivative check failed")                                       \
  X(NSDE_ERR_STEP_SIZE, -16, "adaptive steps cannot meet the tolerance")

/** Status returned by every fallible libnsde call. */
enum nsde_status {
/** @cond INTERNAL */
#define NSDE_STATUS_ENUM_(name, value, msg) name = value,
  /** @endcond */
  NSDE_STATUS_LIST(NSDE_STATUS_ENUM_)
#undef NSDE_STATUS_ENUM_
      NSDE_STATUS_MIN_ = -16
};

/**
 * Human-readable text of a status. Never NULL; unknown values give
 * "unknown status". The string is static: do not free it.
 * @since 1.0
 */
NSDE_API const char *nsde_status_str(enum nsde_status status);

/** Version of the library actually loaded, e.g. "0.1.0" (compare with
 *  NSDE_VERSION_STRING from the headers you compiled against). @since 1.0 */
NSDE_API const char *nsde_version(void);

/** Severity of a log message. */
enum nsde_log_level {
  NSDE_LOG_DEBUG = 0,
  NSDE_LOG_INFO = 1,
  NSDE_LOG_WARNING = 2,
  NSDE_LOG_ERROR = 3
};

/**
 * Log callback. @p message is valid only during the call.
 * Called from the thread that made the libnsde call.
 */
typedef void (*nsde_log_fn)(void *user, enum nsde_log_level level, const char *message);

/**
 * A context: thread count, log callback and the most recent detailed
 * error message. Every object is created under a context and borrows it,
 * so the context must outlive them. A context and the objects created
 * under it must be used from one thread at a time; separate contexts
 * may be used concurrently from different threads.
 */
struct nsde_context;

/**
 * Create a context with the default thread count (the number of
 * processors OpenMP reports, or 1 without OpenMP) and no log callback.
 *
 * @param[out] out  receives the new context (owned by the caller; free
 *                  with nsde_context_free()). Set to NULL on error.
 * @return NSDE_OK, NSDE_ERR_NULL (out is NULL), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_context_new(struct nsde_context **out);

/** Free a context. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_context_free(struct nsde_context *ctx);

/**
 * Set how many threads libnsde uses for the calls made under @p ctx:
 * BLIS matrix products and libnsde's own OpenMP loops alike. The
 * setting is per context; nothing process-wide changes.
 *
 * @param n  1..1024, or 0 for the default.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (n out of range).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_context_set_threads(struct nsde_context *ctx, int n);

/** Threads used under @p ctx; 0 if ctx is NULL. @since 1.0 */
NSDE_API int nsde_context_threads(const struct nsde_context *ctx);

/**
 * Install a log callback; messages below @p min_level are dropped.
 * @p fn NULL removes the callback. @p user is passed back unchanged.
 * Errors reported to the context are also logged at NSDE_LOG_ERROR.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (bad level).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_context_set_log(struct nsde_context *ctx,
                                                              nsde_log_fn fn, void *user,
                                                              enum nsde_log_level min_level);

/**
 * The detailed message of the most recent error reported under @p ctx
 * ("" if none). Valid until the next libnsde call under the same context.
 * Returns "" for a NULL context.
 * @since 1.0
 */
NSDE_API const char *nsde_context_last_error(const struct nsde_context *ctx);

/** Status of the most recent error reported under @p ctx.
 *  @return that status, or NSDE_OK if none (or for a NULL ctx). @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_context_last_status(const struct nsde_context *ctx);

/** Forget the last error of @p ctx. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_context_clear_error(struct nsde_context *ctx);

/** How the BLIS kernel family in use was chosen. */
enum nsde_blis_choice {
  NSDE_BLIS_CHOSEN_BY_BLIS = 0, /**< BLIS's own CPU detection was kept */
  NSDE_BLIS_CHOSEN_BY_NSDE = 1, /**< libnsde chose for a CPU this BLIS does not know */
  NSDE_BLIS_CHOSEN_BY_USER = 2  /**< the BLIS_ARCH_TYPE environment variable was set */
};

/**
 * Name of the BLIS kernel family ("sub-configuration") in use for the whole
 * process, e.g. "skx", "zen3", "haswell", "generic". Static string.
 * @since 1.0
 */
NSDE_API const char *nsde_blis_arch(void);

/** How the family reported by nsde_blis_arch() was chosen. @since 1.0 */
NSDE_API enum nsde_blis_choice nsde_blis_arch_choice(void);

#ifdef __cplusplus
}
#endif
#endif

/**
 * @file
 * libnsde - tensors: dense arrays of rank 1..4 (NCHW), float32 or float64.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_TENSOR_H
#define NSDE_TENSOR_H

#include <nsde/nsde-core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Element type. */
enum nsde_dtype {
  NSDE_DTYPE_FLOAT32 = 1, /**< float @since 1.0 */
  NSDE_DTYPE_FLOAT64 = 2  /**< double @since 1.0 */
};

/** Highest supported rank (N, C, H, W). */
#define NSDE_MAX_RANK 4

/**
 * A dense tensor. Shapes and strides count elements, not bytes; axis 0 is
 * the outermost (the batch for SDE states). Owning tensors are contiguous
 * (row-major, last axis fastest) and 64-byte aligned; wrapped tensors may
 * have any positive, non-overlapping strides.
 */
struct nsde_tensor;

/**
 * Create a tensor that owns a zero-filled buffer.
 *
 * @param ctx    context (borrowed; must outlive the tensor)
 * @param dtype  NSDE_DTYPE_FLOAT32 or NSDE_DTYPE_FLOAT64
 * @param rank   1..NSDE_MAX_RANK
 * @param shape  @p rank extents, each >= 1 (copied)
 * @param[out] out  new tensor, owned by the caller; NULL on error
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_DTYPE, NSDE_ERR_SHAPE (bad rank
 *         or extent), NSDE_ERR_OVERFLOW (byte size does not fit),
 *         NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_new(struct nsde_context *ctx,
                                                         enum nsde_dtype dtype, int rank,
                                                         const int64_t *shape,
                                                         struct nsde_tensor **out);

/**
 * Create a tensor that borrows the caller's buffer @p data (not freed by
 * nsde_tensor_free(); must outlive the tensor).
 *
 * @param strides  @p rank element strides, or NULL for contiguous row-major.
 *                 Strides must be >= 1 and describe non-overlapping elements.
 * @return as nsde_tensor_new(), plus NSDE_ERR_INVALID for bad strides.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_tensor_wrap(struct nsde_context *ctx, enum nsde_dtype dtype, int rank, const int64_t *shape,
                 const int64_t *strides, void *data, struct nsde_tensor **out);

/** Free a tensor (and its buffer if it owns one). NULL is a no-op. @since 1.0 */
NSDE_API void nsde_tensor_free(struct nsde_tensor *t);

/** Rank, or -1 for NULL. @since 1.0 */
NSDE_API int nsde_tensor_rank(const struct nsde_tensor *t);
/** Extent of @p axis, or -1 for NULL or an axis out of range. @since 1.0 */
NSDE_API int64_t nsde_tensor_dim(const struct nsde_tensor *t, int axis);
/** Element stride of @p axis, or -1 for NULL or an axis out of range. @since 1.0 */
NSDE_API int64_t nsde_tensor_stride(const struct nsde_tensor *t, int axis);
/** Number of elements, or -1 for NULL. @since 1.0 */
NSDE_API int64_t nsde_tensor_numel(const struct nsde_tensor *t);
/** Element type, or 0 for NULL. @since 1.0 */
NSDE_API enum nsde_dtype nsde_tensor_dtype(const struct nsde_tensor *t);
/** First element (borrowed, writable), or NULL for NULL. @since 1.0 for one) */
NSDE_API void *nsde_tensor_data(struct nsde_tensor *t);
/** First element, read-only, from a const handle; NULL for NULL. @since 1.0 */
NSDE_API const void *nsde_tensor_data_const(const struct nsde_tensor *t);
/** 1 if the elements are contiguous row-major, 0 otherwise or for NULL. @since 1.0 */
NSDE_API bool nsde_tensor_is_contiguous(const struct nsde_tensor *t);

/** Set every element to @p value (rounded to the dtype).
 *  @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_fill(struct nsde_tensor *t, double value);

/** dst = src elementwise; shapes and dtypes must match (strides may differ).
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_DTYPE. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_copy(struct nsde_tensor *dst,
                                                          const struct nsde_tensor *src);

/** t = alpha * t.  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_NONFINITE (alpha). @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_scale(struct nsde_tensor *t, double alpha);

/** y = alpha * x + y; shapes and dtypes must match.
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_DTYPE, NSDE_ERR_NONFINITE.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_axpy(double alpha, const struct nsde_tensor *x,
                                                          struct nsde_tensor *y);

/** Transposition flags for nsde_tensor_gemm(). */
enum nsde_trans {
  NSDE_TRANS_NONE = 0,     /**< the matrix as stored @since 1.0 */
  NSDE_TRANS_TRANSPOSE = 1 /**< its transpose @since 1.0 */
};

/**
 * C = alpha * op(A) op(B) + beta * C for rank-2 tensors of one dtype, with
 * BLIS on the threads of C's context. Any strides are accepted (no copies).
 * With beta == 0, C's old contents are ignored (NaN in C does not spread).
 *
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE (rank or inner/outer
 *         extents disagree), NSDE_ERR_DTYPE, NSDE_ERR_INVALID (bad trans),
 *         NSDE_ERR_NONFINITE (alpha or beta).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_tensor_gemm(enum nsde_trans trans_a,
                                                          enum nsde_trans trans_b, double alpha,
                                                          const struct nsde_tensor *a,
                                                          const struct nsde_tensor *b, double beta,
                                                          struct nsde_tensor *c);

#ifdef __cplusplus
}
#endif
#endif

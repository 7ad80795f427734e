/**
 * @file
 * libnsde - image data sets: CIFAR-10 (binary), Fashion-MNIST (IDX, gzip),
 * STL-10 (binary); batches with random-crop augmentation; shuffling.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_DATA_H
#define NSDE_DATA_H

#include <nsde/nsde-tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which part of a data set. */
enum nsde_split { NSDE_SPLIT_TRAIN = 0, NSDE_SPLIT_TEST = 1 };

/** Images (stored as bytes) and labels in memory. */
struct nsde_dataset;

/**
 * CIFAR-10 from the standard binary files in @p dir (data_batch_1.bin ...
 * data_batch_5.bin, test_batch.bin: 3073-byte records). Reads at most
 * @p max_images (0: all). Missing, truncated or malformed files give
 * NSDE_ERR_IO / NSDE_ERR_FORMAT with a message naming the file and the problem.
 * @return NSDE_OK, NSDE_ERR_NULL (ctx, dir or out NULL), NSDE_ERR_INVALID (bad
 *         split, max_images < 0), NSDE_ERR_IO (a file missing or unreadable),
 *         NSDE_ERR_FORMAT (a size that is not a whole number of records, a
 *         label out of 0..9), NSDE_ERR_NOMEM.
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_dataset_load_cifar10(struct nsde_context *ctx, const char *dir, enum nsde_split split,
                          int64_t max_images, struct nsde_dataset **out);
/** Fashion-MNIST (or MNIST) IDX files, gzip-compressed or not, in @p dir:
 *  train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-...
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (bad split, max_images < 0),
 *          NSDE_ERR_IO (a file missing or unreadable, a broken gzip stream),
 *          NSDE_ERR_FORMAT (bad magic, dimensions, counts that disagree,
 *          truncated data, a label out of range), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_dataset_load_fashion_mnist(struct nsde_context *ctx, const char *dir, enum nsde_split split,
                                int64_t max_images, struct nsde_dataset **out);
/** STL-10 binary files in @p dir: train_X.bin / train_y.bin, test_X.bin /
 *  test_y.bin (3 x 96 x 96 images stored column-major, labels 1..10).
 *  @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_INVALID (bad split, max_images < 0),
 *          NSDE_ERR_IO (a file missing or unreadable), NSDE_ERR_FORMAT (sizes
 *          that disagree, a label out of 1..10), NSDE_ERR_NOMEM.
 *  @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_dataset_load_stl10(struct nsde_context *ctx, const char *dir, enum nsde_split split,
                        int64_t max_images, struct nsde_dataset **out);
/** Free. NULL is a no-op. @since 1.0 */
NSDE_API void nsde_dataset_free(struct nsde_dataset *ds);
/** Number of images (-1 for NULL). @since 1.0 */
NSDE_API int64_t nsde_dataset_size(const struct nsde_dataset *ds);
/** Image shape and class count. @return NSDE_OK, NSDE_ERR_NULL. @since 1.0 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_dataset_get_info(const struct nsde_dataset *ds,
                                                               int *channels, int *height,
                                                               int *width, int *classes);
/** The label of image @p i (-1 when out of range or NULL). @since 1.0 */
NSDE_API int nsde_dataset_label(const struct nsde_dataset *ds, int64_t i);

/**
 * Gather images @p indices into @p images ((count, C, H, W) float32 in [0, 1])
 * and their labels. With @p crop_pad > 0, each image is shifted by a random
 * offset in [-pad, pad]^2 with zero fill (random crop of the zero-padded image),
 * drawn from (@p seed, index): deterministic.
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_SHAPE, NSDE_ERR_INVALID (an index
 *         out of range, crop_pad < 0).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_dataset_batch(const struct nsde_dataset *ds, const int64_t *indices, int64_t count,
                   int crop_pad, uint64_t seed, struct nsde_tensor *images, int32_t *labels);

/**
 * An epoch's order of the data set's items: a permutation of
 * 0..nsde_dataset_size(ds)-1 written to @p perm (that many int64 values),
 * a pure function of @p seed (Philox-driven Fisher-Yates; the same on every
 * machine).
 * @return NSDE_OK, NSDE_ERR_NULL (ds or perm NULL).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status nsde_dataset_permutation(const struct nsde_dataset *ds,
                                                                  uint64_t seed, int64_t *perm);

#ifdef __cplusplus
}
#endif
#endif

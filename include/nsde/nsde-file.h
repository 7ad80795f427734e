/**
 * @file
 * libnsde - crash-safe files: the atomic write that model files and
 * nsde-train's training state use, for programs that keep their own files
 * beside them.
 * SPDX-License-Identifier: MIT
 */
#ifndef NSDE_FILE_H
#define NSDE_FILE_H

#include <nsde/nsde-core.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Write @p n bytes to @p path so that a crash, a kill or a full disk at any
 * moment leaves either the old file or the complete new one: a temporary
 * file in the same directory, fsync, rename over @p path, fsync of the
 * directory. On failure the temporary file is removed and @p path is as it
 * was. Model files and nsde-train's training state are written this way.
 * @param ctx  for the error message (may be NULL)
 * @return NSDE_OK, NSDE_ERR_NULL, NSDE_ERR_NOMEM, NSDE_ERR_IO (with the
 *         system's reason: no space, no permission, ...).
 * @since 1.0
 */
NSDE_API NSDE_NODISCARD enum nsde_status
nsde_file_write_atomic(struct nsde_context *ctx, const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif

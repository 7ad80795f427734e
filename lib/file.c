/*
 * Crash-safe files: the whole content written to a temporary file in the
 * same directory, fsync, rename over the destination, fsync of the
 * directory. A crash at any moment leaves the old file or the new one.
 *
 * Test hooks (environment, read at each call; for the crash and full-disk
 * tests, never needed otherwise): NSDE_TEST_SLOW_WRITE=US writes in 64-byte
 * pieces with US microseconds between them, so that a kill -9 lands inside
 * the write; NSDE_TEST_WRITE_FAIL_AFTER=N fails the write with ENOSPC after
 * N bytes, as a full disk would.
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nsde-private.h"

static long long env_ll(const char *name)
{
  const char *v = getenv(name);
  return v && *v ? atoll(v) : -1;
}

/* write() until done; 0 or an errno value */
static int write_all(int fd, const unsigned char *p, size_t n)
{
  const long long slow = env_ll("NSDE_TEST_SLOW_WRITE"),
                  fail_after = env_ll("NSDE_TEST_WRITE_FAIL_AFTER");
  size_t off = 0;
  while (off < n) {
    size_t want = n - off;
    ssize_t w;
    if (slow >= 0 && want > 64)
      want = 64;
    if (fail_after >= 0 && off + want > (size_t)fail_after) {
      if (off >= (size_t)fail_after)
        return ENOSPC;
      want = (size_t)fail_after - off;
    }
    w = write(fd, p + off, want);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return w < 0 ? errno : EIO;
    off += (size_t)w;
    if (slow > 0) {
      struct timespec ts = {(time_t)(slow / 1000000), (long)(slow % 1000000) * 1000};
      nanosleep(&ts, NULL);
    }
  }
  return 0;
}

NSDE_API enum nsde_status nsde_file_write_atomic(struct nsde_context *ctx, const char *path,
                                                 const void *data, size_t n)
{
  const char *fn = "nsde_file_write_atomic";
  size_t plen;
  char *tmp;
  int fd, err;
  enum nsde_status st = NSDE_OK;

  if (!path || (!data && n > 0))
    return nsde__error(ctx, NSDE_ERR_NULL, "%s: NULL path or data", fn);
  plen = strlen(path);
  tmp = malloc(plen + 64);
  if (!tmp)
    return nsde__error(ctx, NSDE_ERR_NOMEM, "%s: out of memory", fn);
  /* a fresh name next to the destination; created with mode 0666 so that the
   * umask applies as for any file (mkstemp would force 0600) */
  fd = -1;
  errno = EEXIST;
  for (unsigned k = 0; fd < 0 && errno == EEXIST && k < 1000; k++) {
    static unsigned counter;
    snprintf(tmp, plen + 64, "%s.tmp.%ld.%u", path, (long)getpid(),
             __atomic_fetch_add(&counter, 1u, __ATOMIC_RELAXED));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  }
  if (fd < 0) {
    st = nsde__error(ctx, NSDE_ERR_IO, "%s: cannot create a temporary file next to %s: %s", fn,
                     path, strerror(errno));
    free(tmp);
    return st;
  }
  if ((err = write_all(fd, data, n)) != 0)
    st = nsde__error(ctx, NSDE_ERR_IO, "%s: writing %s: %s (%s is unchanged)", fn, tmp,
                     strerror(err), path);
  else if (fsync(fd) != 0)
    st = nsde__error(ctx, NSDE_ERR_IO, "%s: fsync %s: %s (%s is unchanged)", fn, tmp,
                     strerror(errno), path);
  if (close(fd) != 0 && st == NSDE_OK)
    st = nsde__error(ctx, NSDE_ERR_IO, "%s: close %s: %s (%s is unchanged)", fn, tmp,
                     strerror(errno), path);
  if (st == NSDE_OK && rename(tmp, path) != 0)
    st = nsde__error(ctx, NSDE_ERR_IO, "%s: rename to %s: %s (%s is unchanged)", fn, path,
                     strerror(errno), path);
  if (st != NSDE_OK) {
    unlink(tmp);
    free(tmp);
    return st;
  }
  { /* make the rename itself durable */
    char *slash = strrchr(tmp, '/');
    int dfd;
    if (slash)
      *(slash == tmp ? slash + 1 : slash) = '\0';
    dfd = open(slash ? tmp : ".", O_RDONLY);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  free(tmp);
  return NSDE_OK;
}

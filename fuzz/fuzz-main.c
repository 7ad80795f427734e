/* The fuzz targets without libFuzzer: replays each file named on the command
 * line, and each file in a directory named there (in name order), through
 * LLVMFuzzerTestOneInput once, so that meson test runs the seed corpora on
 * any compiler, under the sanitizers in a sanitizer build. A crash, a
 * sanitizer report or an abort() of the target is the failure; exit 0 says
 * every input ran, 1 that an input could not be read.
 * SPDX-License-Identifier: MIT */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long size;
  int rc = 1;

  if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)size + 1)) && fread(buf, 1, (size_t)size, f) == (size_t)size) {
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    printf("replayed %s (%ld bytes)\n", path, size);
    rc = 0;
  } else {
    fprintf(stderr, "fuzz replay: cannot read %s\n", path);
  }
  free(buf);
  if (f)
    fclose(f);
  return rc;
}

static int no_dots(const struct dirent *e)
{
  return e->d_name[0] != '.';
}

static int replay(const char *path)
{
  struct dirent **list;
  struct stat sb;
  int n, rc = 0;

  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return replay_file(path);
  if ((n = scandir(path, &list, no_dots, alphasort)) < 0) {
    fprintf(stderr, "fuzz replay: cannot list %s\n", path);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    char sub[4096];
    snprintf(sub, sizeof(sub), "%s/%s", path, list[i]->d_name);
    rc |= replay(sub);
    free(list[i]);
  }
  free(list);
  return rc;
}

int main(int argc, char **argv)
{
  int rc = 0;

  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++)
    rc |= replay(argv[i]);
  return rc;
}

/* Small helpers shared by the portable unit tests. */
#ifndef JW_TEST_UTIL_H
#define JW_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file as a NUL-terminated malloc'd buffer (length in *len), or
 * NULL when it cannot be read. */
static inline char *jw_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long n;
  *len = 0;
  if (f == NULL)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
    }
    if (buf != NULL) {
      buf[n] = '\0';
      *len = (size_t)n;
    }
  }
  fclose(f);
  return buf;
}

#endif

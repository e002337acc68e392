/* Small helpers shared by the portable unit tests. */
#ifndef JW_TEST_UTIL_H
#define JW_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* The value at a dotted path of a parsed event ("process.parent.pid"); in
 * an array a part is an index ("tags.1"). Borrowed; NULL when absent. */
static inline json_t *jw_test_json_at(json_t *o, const char *path) {
  char key[64];
  while (o != NULL && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n >= sizeof(key))
      return NULL;
    memcpy(key, path, n);
    key[n] = '\0';
    o = json_is_array(o) ? json_array_get(o, (size_t)atoi(key)) : json_object_get(o, key);
    path += n + (dot ? 1 : 0);
  }
  return o;
}

#endif

/* Small helpers shared by the portable unit tests (and the Windows tests
 * that read event files). */
#ifndef JW_TEST_UTIL_H
#define JW_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jobwarden.h"

/* The I-th argument (from 1) of a test executable, `--case NAME` left out
 * (harness.h's jw_test_run_cases reads that pair wherever it stands); def
 * when there are fewer. Unit tests take tests/data then the directory they
 * may write to. */
static inline const char *jw_test_arg(int argc, char **argv, int i, const char *def) {
  int a, k = 0;
  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--case") == 0 && a + 1 < argc) {
      a++;
      continue;
    }
    if (++k == i)
      return argv[a];
  }
  return def;
}

/* Whether argv asks only for the list of cases (`--case list`): set-up
 * that writes files is skipped then. */
static inline int jw_test_listing(int argc, char **argv) {
  int a;
  for (a = 1; a + 1 < argc; a++)
    if (strcmp(argv[a], "--case") == 0 && strcmp(argv[a + 1], "list") == 0)
      return 1;
  return 0;
}

/* The values a policy test writes for a row of each type, different from
 * what jw_policy_init leaves. The test files write the same value for most
 * types; the ones below differ on purpose (a command-line flag and a policy
 * file take different spellings), so each test passes its own. */
typedef struct {
  const char *tier;  /* JW_PF_TIER */
  const char *ui;    /* JW_PF_UI */
  const char *flag;  /* JW_PF_BOOL; NULL: a flag that takes no value */
  const char *image; /* JW_PF_IMAGE */
} jw_test_samples_t;

static inline const char *jw_test_sample_of(jw_policy_type_t type, const jw_test_samples_t *own) {
  switch (type) {
  case JW_PF_NAME:
    return "sample-1";
  case JW_PF_TIER:
    return own->tier;
  case JW_PF_COUNT:
    return "7";
  case JW_PF_TOTAL:
    return "70000";
  case JW_PF_SIZE:
    return "3M";
  case JW_PF_DURATION:
    return "90s";
  case JW_PF_INTERVAL:
    return "250ms";
  case JW_PF_MARGIN:
    return "2.5%";
  case JW_PF_UI:
    return own->ui;
  case JW_PF_BOOL:
    return own->flag;
  case JW_PF_TOKEN:
    return "restricted";
  case JW_PF_ACTION:
    return "kill_job";
  case JW_PF_IMAGE:
    return own->image;
  case JW_PF_HASH_CAP:
    return "5M";
  case JW_PF_TAGS:
    return "attack.t1059";
  case JW_PF_KEY_FILE:
    return "run.key";
  }
  return NULL;
}

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

/* The lines of a file, each a malloc'd NUL-terminated string without its
 * newline (a last line without one is kept). */
typedef struct {
  char **l;
  size_t n;
} jw_test_lines_t;

/* 0, or -1 when the file cannot be read (out->n is 0 then). */
static inline int jw_test_lines_read(const char *path, jw_test_lines_t *out) {
  size_t len = 0;
  char *text = jw_test_read_file(path, &len), *p, *nl;
  out->l = NULL;
  out->n = 0;
  if (text == NULL)
    return -1;
  for (p = text; *p != '\0'; p = nl ? nl + 1 : p + strlen(p)) {
    char **grown = (char **)realloc(out->l, (out->n + 1) * sizeof(char *));
    size_t n;
    nl = strchr(p, '\n');
    n = nl ? (size_t)(nl - p) : strlen(p);
    if (grown == NULL)
      break;
    out->l = grown;
    out->l[out->n] = (char *)malloc(n + 1);
    if (out->l[out->n] == NULL)
      break;
    memcpy(out->l[out->n], p, n);
    out->l[out->n++][n] = '\0';
  }
  free(text);
  return 0;
}

/* Writes lines[0..n) to path, each with a newline; NULL entries are left
 * out (a deleted line). */
static inline void jw_test_lines_write(const char *path, char *const *lines, size_t n) {
  FILE *f = fopen(path, "wb");
  size_t i;
  if (f == NULL)
    return;
  for (i = 0; i < n; i++)
    if (lines[i] != NULL)
      fprintf(f, "%s\n", lines[i]);
  fclose(f);
}

static inline void jw_test_lines_free(jw_test_lines_t *l) {
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->l[i]);
  free(l->l);
  l->l = NULL;
  l->n = 0;
}

#endif

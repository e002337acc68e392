/* A minimal test harness shared by every jobwarden test executable.
 * CHECK* macros record a failure with file:line and the values compared,
 * then continue; a test executable returns jw_test_result(). */
#ifndef JW_TEST_HARNESS_H
#define JW_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int jw_test_failures;
static int jw_test_checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    jw_test_checks++;                                                                              \
    if (!(cond)) {                                                                                 \
      jw_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECK_INT(got, want)                                                                       \
  do {                                                                                             \
    long long g_ = (long long)(got), w_ = (long long)(want);                                       \
    jw_test_checks++;                                                                              \
    if (g_ != w_) {                                                                                \
      jw_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #got, g_, w_);     \
    }                                                                                              \
  } while (0)

#define CHECK_U64(got, want)                                                                       \
  do {                                                                                             \
    unsigned long long g_ = (unsigned long long)(got), w_ = (unsigned long long)(want);            \
    jw_test_checks++;                                                                              \
    if (g_ != w_) {                                                                                \
      jw_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: %s == %llu (0x%llX), expected %llu (0x%llX)\n", __FILE__, __LINE__,  \
              #got, g_, g_, w_, w_);                                                               \
    }                                                                                              \
  } while (0)

#define CHECK_STR(got, want)                                                                       \
  do {                                                                                             \
    const char *g_ = (got), *w_ = (want);                                                          \
    jw_test_checks++;                                                                              \
    if ((g_ == NULL) != (w_ == NULL) || (g_ && strcmp(g_, w_) != 0)) {                             \
      jw_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #got,          \
              g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                             \
    }                                                                                              \
  } while (0)

/* Substring check, for error messages. */
#define CHECK_CONTAINS(hay, needle)                                                                \
  do {                                                                                             \
    const char *h_ = (hay), *n_ = (needle);                                                        \
    jw_test_checks++;                                                                              \
    if (!h_ || !strstr(h_, n_)) {                                                                  \
      jw_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: %s == \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, #hay,   \
              h_ ? h_ : "(null)", n_);                                                             \
    }                                                                                              \
  } while (0)

static inline int jw_test_result(const char *name) {
  if (jw_test_checks == 0) {
    fprintf(stderr, "%s: no check ran\n", name);
    return 1;
  }
  fprintf(stderr, "%s: %d checks, %d failed\n", name, jw_test_checks, jw_test_failures);
  return jw_test_failures ? 1 : 0;
}

/* The exporter kinds jobwarden lists in its messages (pipe exporters
 * exist on Windows only). */
#ifdef _WIN32
#define JW_TEST_KINDS                                                                              \
  "file:PATH | stdout | stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT | "               \
  "syslog+tls://HOST:PORT | pipe:NAME | pipe-connect:NAME"
#else
#define JW_TEST_KINDS                                                                              \
  "file:PATH | stdout | stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT"
#endif

#endif

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

/* Cases by name. A test executable lists its cases (name, function,
 * timeout) and returns jw_test_run_cases(): every case in order, or with
 * `--case NAME` anywhere in argv only that one (`--case list` prints the
 * names). Each case reports "case NAME: N checks, K failed, T ms"; a case
 * still running after its timeout ends the executable at once with exit
 * status 124 and a line naming it (a hang is a failure that says where,
 * not a CTest timeout of the whole executable). */
typedef struct jw_test_case_s {
  const char *name;
  void (*fn)(void);
  unsigned timeout_s;
} jw_test_case_t;

#ifdef _WIN32
#include <windows.h>
static const char *volatile jw_test_case_running;
static HANDLE jw_test_case_done;
static volatile LONG jw_test_case_limit_ms;

static DWORD WINAPI jw_test_watchdog(LPVOID arg) {
  (void)arg;
  for (;;) {
    if (WaitForSingleObject(jw_test_case_done, (DWORD)jw_test_case_limit_ms) == WAIT_TIMEOUT &&
        jw_test_case_running != NULL) {
      fprintf(stderr, "case %s: still running after %ld s: timed out\n", jw_test_case_running,
              (long)(jw_test_case_limit_ms / 1000));
      fflush(stderr);
      TerminateProcess(GetCurrentProcess(), 124);
    }
  }
  return 0;
}

static inline void jw_test_case_arm(const char *name, unsigned timeout_s) {
  if (jw_test_case_done == NULL) {
    jw_test_case_done = CreateEventW(NULL, FALSE, FALSE, NULL);
    jw_test_case_limit_ms = (LONG)timeout_s * 1000;
    CloseHandle(CreateThread(NULL, 0, jw_test_watchdog, NULL, 0, NULL));
  }
  jw_test_case_running = name;
  InterlockedExchange(&jw_test_case_limit_ms, (LONG)timeout_s * 1000);
  SetEvent(jw_test_case_done); /* the watchdog starts the new case's clock */
}

static inline void jw_test_case_disarm(void) {
  jw_test_case_running = NULL;
  SetEvent(jw_test_case_done);
}

static inline double jw_test_case_ms(void) {
  return (double)GetTickCount64();
}
#else
#include <signal.h>
#include <time.h>
#include <unistd.h>
static const char *volatile jw_test_case_running;

static void jw_test_case_alarm(int sig) {
  const char *n = jw_test_case_running ? jw_test_case_running : "?";
  (void)sig;
  /* Async-signal-safe: write(2) and _exit(2) only. */
  if (write(2, "case ", 5) < 0 || write(2, n, strlen(n)) < 0 || write(2, ": timed out\n", 12) < 0)
    _exit(124);
  _exit(124);
}

static inline void jw_test_case_arm(const char *name, unsigned timeout_s) {
  jw_test_case_running = name;
  signal(SIGALRM, jw_test_case_alarm);
  alarm(timeout_s);
}

static inline void jw_test_case_disarm(void) {
  alarm(0);
  jw_test_case_running = NULL;
}

static inline double jw_test_case_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}
#endif

/* Called, when a test sets it, after each case of jw_test_run_cases and
 * before its case line, with the case's name and whether a check of it
 * failed: a kit that started processes for the case prints what they
 * said (the Windows kit: tw_kit_case_end, tests/win/helpers.h). */
static void (*jw_test_case_end_hook)(const char *name, int failed);

static inline int jw_test_run_cases(const char *name, int argc, char **argv,
                                    const jw_test_case_t *cases, size_t n) {
  const char *only = NULL;
  size_t i;
  int a, ran = 0;
  for (a = 1; a + 1 < argc; a++)
    if (strcmp(argv[a], "--case") == 0)
      only = argv[a + 1];
  if (only != NULL && strcmp(only, "list") == 0) {
    for (i = 0; i < n; i++)
      printf("%s\n", cases[i].name);
    return 0;
  }
  for (i = 0; i < n; i++) {
    int checks = jw_test_checks, failures = jw_test_failures;
    double t0;
    if (only != NULL && strcmp(only, cases[i].name) != 0)
      continue;
    ran++;
    t0 = jw_test_case_ms();
    jw_test_case_arm(cases[i].name, cases[i].timeout_s);
    cases[i].fn();
    jw_test_case_disarm();
    if (jw_test_case_end_hook != NULL)
      jw_test_case_end_hook(cases[i].name, jw_test_failures != failures);
    fprintf(stderr, "case %s: %d checks, %d failed, %.0f ms\n", cases[i].name,
            jw_test_checks - checks, jw_test_failures - failures, jw_test_case_ms() - t0);
  }
  if (only != NULL && ran == 0) {
    fprintf(stderr, "%s: no case named '%s' (--case list names them)\n", name, only);
    return 2;
  }
  return jw_test_result(name);
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

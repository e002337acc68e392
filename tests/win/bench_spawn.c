/* Spawn overhead benchmark (not a test): median time of starting this
 * executable as `--helper exit 0` and waiting for it, three ways, in one
 * run on one machine:
 *   baseline   plain CreateProcessW, no job
 *   jobwarden  a new job (policy: lockdown) + jw_spawn (JOB_LIST, HANDLE_LIST,
 *              membership check) — what `jobwarden run` does per run
 *   fallback   the same with CREATE_SUSPENDED + AssignProcessToJobObject
 * Prints one line per way, the ratio of the medians, the median of each
 * round's own ratios (paired), and the ratios within each of Wine's two
 * start-up modes (mode-aware).
 * Usage: bench_spawn.exe [RUNS] (default 50). See docs/performance.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig.h"

static double now_ms(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1000.0 / (double)f.QuadPart;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double baseline_once(void) {
  wchar_t cmd[1024];
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  double t0 = now_ms();
  tw_helper_cmdline(cmd, 1024, "exit 0");
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
    return -1;
  WaitForSingleObject(pi.hProcess, INFINITE);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return now_ms() - t0;
}

static double jobwarden_once(int fallback) {
  jw_policy_t p, eff;
  jw_job_t job;
  jw_error_t err;
  jw_spawn_options_t opt;
  jw_child_t child;
  const char *argv[] = {rig_self_utf8(), "--helper", "exit", "0"};
  double t0 = now_ms();
  jw_policy_init(&p);
  jw_policy_set(&p, "tier", "lockdown", "bench", NULL);
  jw_policy_resolve(&p, &eff);
  if (jw_job_create(&job, &eff, &err) != 0)
    return -1;
  memset(&opt, 0, sizeof(opt));
  opt.argv = argv;
  opt.argc = 4;
  opt.test_force_fallback = fallback;
  if (jw_spawn(job.job, &opt, &child, &err) != 0) {
    jw_job_close(&job);
    return -1;
  }
  WaitForSingleObject(child.process, INFINITE);
  jw_child_close(&child);
  jw_job_close(&job);
  return now_ms() - t0;
}

/* The median of n values (sorted in place). */
static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(double), cmp);
  return n > 0 ? v[n / 2] : 0;
}

int main(int argc, char **argv) {
  int runs = 50, i, w;
  double *t[3], *sorted[3], *pr[3];
  double med[3], split;
  const char *names[3] = {"baseline (CreateProcessW)", "jobwarden (job + JOB_LIST)",
                          "jobwarden (suspended+assign)"};
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc > 1)
    runs = atoi(argv[1]);
  if (runs < 5)
    runs = 5;
  for (w = 0; w < 3; w++) {
    t[w] = calloc((size_t)runs, sizeof(double));
    sorted[w] = calloc((size_t)runs, sizeof(double));
    pr[w] = calloc((size_t)runs, sizeof(double));
    if (t[w] == NULL || sorted[w] == NULL || pr[w] == NULL)
      return 1;
  }
  baseline_once(); /* warm-up */
  jobwarden_once(0);
  /* Rounds of one run of each way, in an order rotated round by round, so
   * that drift in machine load and Wine's start-up mode hit all three
   * alike and none always goes first. */
  for (i = 0; i < runs; i++) {
    int k;
    for (k = 0; k < 3; k++) {
      w = (i + k) % 3;
      t[w][i] = w == 0 ? baseline_once() : jobwarden_once(w == 2);
    }
  }
  for (w = 0; w < 3; w++) {
    memcpy(sorted[w], t[w], (size_t)runs * sizeof(double));
    qsort(sorted[w], (size_t)runs, sizeof(double), cmp);
    med[w] = sorted[w][runs / 2];
    printf("%-30s median %7.2f ms  p10 %7.2f  p90 %7.2f  (n=%d)\n", names[w], med[w],
           sorted[w][runs / 10], sorted[w][runs * 9 / 10], runs);
  }
  printf("ratio of medians: job_list %.3f, suspended+assign %.3f\n", med[1] / med[0],
         med[2] / med[0]);
  /* Paired: each round's own ratio (the runs of a round are seconds
   * apart), then their median and quartiles. */
  for (w = 1; w < 3; w++) {
    for (i = 0; i < runs; i++)
      pr[w][i] = t[w][i] / t[0][i];
    qsort(pr[w], (size_t)runs, sizeof(double), cmp);
  }
  printf("paired ratio (median of the rounds' own ratios, quartiles): job_list %.3f (%.3f-%.3f), "
         "suspended+assign %.3f (%.3f-%.3f)\n",
         pr[1][runs / 2], pr[1][runs / 4], pr[1][runs * 3 / 4], pr[2][runs / 2], pr[2][runs / 4],
         pr[2][runs * 3 / 4]);
  /* Wine starts a process in one of two modes tens of milliseconds apart
   * (measured: p10 and p90 of the baseline differ by 2-8x): the runs are
   * split at the geometric mean of the baseline's p10 and p90, and each
   * mode compared with itself. */
  split = sqrt(sorted[0][runs / 10] * sorted[0][runs * 9 / 10]);
  for (i = 0; i < 2; i++) {
    double m[3];
    int n[3];
    for (w = 0; w < 3; w++) {
      int j;
      n[w] = 0;
      for (j = 0; j < runs; j++)
        if ((t[w][j] < split) == (i == 0))
          pr[w][n[w]++] = t[w][j];
      m[w] = median(pr[w], n[w]);
    }
    printf("%s mode (%s %.1f ms): n %d/%d/%d, medians %.2f/%.2f/%.2f ms, ratio job_list %.3f, "
           "suspended+assign %.3f\n",
           i == 0 ? "fast" : "slow", i == 0 ? "<" : ">=", split, n[0], n[1], n[2], m[0], m[1], m[2],
           n[0] && n[1] ? m[1] / m[0] : 0, n[0] && n[2] ? m[2] / m[0] : 0);
  }
  return 0;
}

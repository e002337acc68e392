/* Spawn overhead benchmark (not a test): median time of starting this
 * executable as `--helper exit 0` and waiting for it, three ways, in one
 * run on one machine:
 *   baseline   plain CreateProcessW, no job
 *   jobwarden  a new job (policy: lockdown) + jw_spawn (JOB_LIST, HANDLE_LIST,
 *              membership check) — what `jobwarden run` does per run
 *   fallback   the same with CREATE_SUSPENDED + AssignProcessToJobObject
 * Prints one line per way and the ratios to the baseline.
 * Usage: bench_spawn.exe [RUNS] (default 50). See docs/performance.md. */
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

int main(int argc, char **argv) {
  int runs = 50, i, w;
  double *t[3];
  double med[3];
  const char *names[3] = {"baseline (CreateProcessW)", "jobwarden (job + JOB_LIST)",
                          "jobwarden (suspended+assign)"};
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc > 1)
    runs = atoi(argv[1]);
  if (runs < 5)
    runs = 5;
  for (w = 0; w < 3; w++)
    t[w] = calloc((size_t)runs, sizeof(double));
  baseline_once(); /* warm-up */
  jobwarden_once(0);
  /* Interleaved, so drift in machine load hits all three alike. */
  for (i = 0; i < runs; i++) {
    t[0][i] = baseline_once();
    t[1][i] = jobwarden_once(0);
    t[2][i] = jobwarden_once(1);
  }
  for (w = 0; w < 3; w++) {
    qsort(t[w], (size_t)runs, sizeof(double), cmp);
    med[w] = t[w][runs / 2];
    printf("%-30s median %7.2f ms  p10 %7.2f  p90 %7.2f  (n=%d)\n", names[w], med[w],
           t[w][runs / 10], t[w][runs * 9 / 10], runs);
  }
  printf("ratio to baseline: job_list %.3f, suspended+assign %.3f\n", med[1] / med[0],
         med[2] / med[0]);
  return 0;
}

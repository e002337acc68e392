/* Spawn overhead benchmark (not a test): median time of starting this
 * executable as `--helper exit 0` and waiting for it, three ways, in one
 * run on one machine:
 *   baseline   plain CreateProcessW, no job
 *   jobwarden  a new job (policy: lockdown) + jw_spawn (JOB_LIST, HANDLE_LIST,
 *              membership check) — what `jobwarden run` does per run
 *   fallback   the same with CREATE_SUSPENDED + AssignProcessToJobObject
 * Prints one line per way, the ratio of the medians, and the paired ratio:
 * the median of each round's own ratio jobwarden / baseline with its 95 %
 * confidence interval (order statistics of the rounds' ratios). Rounds
 * go on until both intervals are no wider than +-HALF (default 0.03) or
 * MAX rounds (default 600) are done, at least 30: the figure is then as
 * stable from run to run as its interval says, however much Wine's
 * start-up time spreads (it does: 25-350 ms in one run, with two modes).
 * Usage: bench_spawn.exe [MAX [HALF]]. JW_BENCH_CSV=FILE writes every
 * round's three times. See docs/performance.md. */
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
  if (jw_job_create(&job, &eff, &err) != 0) {
    fprintf(stderr, "bench_spawn: %s: %s\n", err.where, err.text);
    return -1;
  }
  memset(&opt, 0, sizeof(opt));
  opt.argv = argv;
  opt.argc = 4;
  opt.test_force_fallback = fallback;
  if (jw_spawn(job.job, &opt, &child, &err) != 0) {
    fprintf(stderr, "bench_spawn: %s: %s\n", err.where, err.text);
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

/* The paired ratio of way w: the median of the rounds' own ratios and
 * its 95 % confidence interval from the order statistics (ranks
 * n/2 -+ 1.96 sqrt(n)/2, the binomial's normal approximation). */
typedef struct {
  double ratio, lo, hi;
} paired_t;

static paired_t paired(double *const t[3], int w, int rounds, double *scratch) {
  paired_t r;
  int i, d = (int)ceil(1.96 * sqrt((double)rounds) / 2.0), lo, hi;
  for (i = 0; i < rounds; i++)
    scratch[i] = t[w][i] / t[0][i];
  qsort(scratch, (size_t)rounds, sizeof(double), cmp);
  lo = rounds / 2 - d < 0 ? 0 : rounds / 2 - d;
  hi = rounds / 2 + d >= rounds ? rounds - 1 : rounds / 2 + d;
  r.ratio = scratch[rounds / 2];
  r.lo = scratch[lo];
  r.hi = scratch[hi];
  return r;
}

int main(int argc, char **argv) {
  int max = 600, rounds = 0, min, i, w;
  double half = 0.03;
  double *t[3], *sorted[3], *scratch;
  double med[3];
  paired_t pr[3];
  const char *names[3] = {"baseline (CreateProcessW)", "jobwarden (job + JOB_LIST)",
                          "jobwarden (suspended+assign)"};
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc > 1)
    max = atoi(argv[1]);
  if (argc > 2)
    half = atof(argv[2]);
  if (max < 3)
    max = 3;
  min = max < 30 ? max : 30;
  scratch = calloc((size_t)max, sizeof(double));
  for (w = 0; w < 3; w++) {
    t[w] = calloc((size_t)max, sizeof(double));
    sorted[w] = calloc((size_t)max, sizeof(double));
    if (t[w] == NULL || sorted[w] == NULL || scratch == NULL)
      return 1;
  }
  baseline_once(); /* warm-up */
  jobwarden_once(0);
  /* Rounds of one run of each way, in an order rotated round by round, so
   * that drift in machine load and Wine's start-up mode hit all three
   * alike and none always goes first; a round's runs are milliseconds
   * apart, so its own ratio compares like with like. */
  for (;;) {
    int k;
    for (k = 0; k < 3; k++) {
      w = (rounds + k) % 3;
      t[w][rounds] = w == 0 ? baseline_once() : jobwarden_once(w == 2);
      if (t[w][rounds] < 0) {
        fprintf(stderr, "bench_spawn: round %d: the %s run failed\n", rounds + 1, names[w]);
        return 1;
      }
    }
    rounds++;
    if (rounds >= max)
      break;
    if (rounds >= min && rounds % 10 == 0) {
      pr[1] = paired(t, 1, rounds, scratch);
      pr[2] = paired(t, 2, rounds, scratch);
      if (pr[1].hi - pr[1].lo <= 2 * half && pr[2].hi - pr[2].lo <= 2 * half)
        break;
    }
  }
  if (getenv("JW_BENCH_CSV") != NULL) {
    FILE *f = fopen(getenv("JW_BENCH_CSV"), "w");
    for (i = 0; f != NULL && i < rounds; i++)
      fprintf(f, "%.4f,%.4f,%.4f\n", t[0][i], t[1][i], t[2][i]);
    if (f != NULL)
      fclose(f);
  }
  for (w = 0; w < 3; w++) {
    memcpy(sorted[w], t[w], (size_t)rounds * sizeof(double));
    med[w] = median(sorted[w], rounds);
    printf("%-30s median %7.2f ms  p10 %7.2f  p90 %7.2f  (n=%d)\n", names[w], med[w],
           sorted[w][rounds / 10], sorted[w][rounds * 9 / 10], rounds);
  }
  printf("ratio of medians: job_list %.3f, suspended+assign %.3f\n", med[1] / med[0],
         med[2] / med[0]);
  pr[1] = paired(t, 1, rounds, scratch);
  pr[2] = paired(t, 2, rounds, scratch);
  printf("paired ratio (median of the rounds' own ratios, 95%% CI), %d rounds: job_list %.3f "
         "(%.3f-%.3f), suspended+assign %.3f (%.3f-%.3f)%s\n",
         rounds, pr[1].ratio, pr[1].lo, pr[1].hi, pr[2].ratio, pr[2].lo, pr[2].hi,
         pr[1].hi - pr[1].lo <= 2 * half && pr[2].hi - pr[2].lo <= 2 * half
             ? ""
             : " [the intervals are wider than asked: more rounds needed]");
  return 0;
}

/* Setup benchmark (not a test): how long the monitor thread spends in one
 * admission of a real process, with the setup worker (a member not ready
 * at the first ask is read by the worker; src/win/monitor_setup.c) and
 * without it (the baseline: admission reads and retries on the monitor
 * thread, as before the worker existed; jw__monitor_setup_worker(0)).
 * Each round runs a real job whose root starts N children at once (helper
 * `flood N`) under each mode, the order alternating round by round, and
 * reads the monitor's counters: admissions, their total and longest time
 * on the monitor thread, the setups handed to the worker, the packets
 * that waited for a setup. Printed per run, then the medians per mode and
 * their ratios (worker / baseline). Usage: bench_setup.exe DIR [N [ROUNDS]].
 * See docs/performance.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "rig.h"

#define MAX_ROUNDS 32

typedef struct {
  double max_us, mean_us, async, deferred, wall_ms;
} sample_t;

static double now_ms(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1e3 / (double)f.QuadPart;
}

static int one_run(const char *dir, unsigned n, int worker, int round, sample_t *out) {
  rig_t r;
  jw_policy_t p;
  char name[64], count[16];
  const char *args[2];
  json_t *evs;
  double t0;
  size_t starts = 0, i;
  snprintf(name, sizeof(name), "bench-setup-%s-%d", worker ? "worker" : "baseline", round);
  snprintf(count, sizeof(count), "%u", n);
  args[0] = "flood";
  args[1] = count;
  jw_policy_init(&p);
  jw__monitor_setup_worker(worker);
  t0 = now_ms();
  if (rig_start(&r, dir, name, &p, args, 2) != 0)
    return -1;
  evs = rig_finish(&r);
  out->wall_ms = now_ms() - t0;
  jw__monitor_setup_worker(1);
  for (i = 0; evs != NULL && i < json_array_size(evs); i++)
    starts += strcmp(tw_str(json_array_get(evs, i), "event"), "sandbox.process_start") == 0;
  json_decref(evs);
  if (starts != n + 1 || r.stats.admissions == 0) {
    fprintf(stderr, "bench_setup: %s: %zu process_start events (expected %u), %u admissions\n",
            name, starts, n + 1, r.stats.admissions);
    return -1;
  }
  out->max_us = (double)r.stats.admit_us_max;
  out->mean_us = (double)r.stats.admit_us_total / r.stats.admissions;
  out->async = r.stats.setups_async;
  out->deferred = r.stats.setups_deferred_packets;
  printf("%-9s round %2d: %4u admissions, longest %8.0f us, mean %7.0f us, to the worker %4.0f, "
         "packets deferred %4.0f, run %6.0f ms\n",
         worker ? "worker" : "baseline", round, r.stats.admissions, out->max_us, out->mean_us,
         out->async, out->deferred, out->wall_ms);
  return 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const sample_t *s, int n, size_t off) {
  double v[MAX_ROUNDS];
  int i;
  for (i = 0; i < n; i++)
    v[i] = *(const double *)((const char *)&s[i] + off);
  qsort(v, (size_t)n, sizeof(v[0]), cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  const char *dir;
  unsigned n;
  int rounds, i;
  sample_t base[MAX_ROUNDS], work[MAX_ROUNDS];
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if ((dir = bench_dir(argc, argv, "bench_setup.exe DIR [N [ROUNDS]]")) == NULL)
    return 2;
  n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 50;
  rounds = argc > 3 ? atoi(argv[3]) : 6;
  if (n == 0 || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "bench_setup: N must be > 0 and ROUNDS 1..%d\n", MAX_ROUNDS);
    return 2;
  }
  CreateDirectoryA(dir, NULL);
  printf("bench_setup: %u children at once per run, %d rounds, order alternating\n", n, rounds);
  for (i = 0; i < rounds; i++) {
    int first = i % 2; /* 0: baseline first */
    if (one_run(dir, n, first, i, first ? &work[i] : &base[i]) != 0 ||
        one_run(dir, n, !first, i, first ? &base[i] : &work[i]) != 0)
      return 1;
  }
  {
    double bmax = median(base, rounds, offsetof(sample_t, max_us)),
           wmax = median(work, rounds, offsetof(sample_t, max_us)),
           bmean = median(base, rounds, offsetof(sample_t, mean_us)),
           wmean = median(work, rounds, offsetof(sample_t, mean_us));
    printf("median longest admission: baseline %.0f us, worker %.0f us (ratio %.3f)\n", bmax, wmax,
           bmax > 0 ? wmax / bmax : 0);
    printf("median mean admission:    baseline %.0f us, worker %.0f us (ratio %.3f)\n", bmean,
           wmean, bmean > 0 ? wmean / bmean : 0);
    printf("median setups to the worker per run: %.0f of %u; packets deferred: %.0f\n",
           median(work, rounds, offsetof(sample_t, async)), n,
           median(work, rounds, offsetof(sample_t, deferred)));
    printf("median run: baseline %.0f ms, worker %.0f ms\n",
           median(base, rounds, offsetof(sample_t, wall_ms)),
           median(work, rounds, offsetof(sample_t, wall_ms)));
  }
  return 0;
}

/* Escape-scan benchmark (not a test; docs/performance.md). With N extra
 * idle processes on the system (orphans: their parent has exited, so they
 * belong to nobody of the run):
 *   1. the cost of one system process list (jw__escape_snapshot), the part
 *      of a scan that grows with the number of processes;
 *   2. K runs in which the root starts a child with a spoofed parent (this
 *      process, playing jobwarden), with the port's NEW_PROCESS dropped so
 *      that only the timed scan can find it (the real attack causes no job
 *      message at all): the latency from the escapee's creation to the
 *      job_escape event (escape.detected_after_ms), and the monitor's own
 *      count of scans and their cost (jw_monitor_stats_t).
 * Usage: bench_escape.exe DIR [N=200] [K=20] [INTERVAL=200ms]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "rig.h"
#include "win/escape.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int drop_new_process(DWORD msg, ULONG_PTR value) {
  (void)value;
  return msg == JOB_OBJECT_MSG_NEW_PROCESS;
}

/* bench-fan N OUTFILE: N children that sleep a minute; their pids, one a
 * line, to OUTFILE; then this process exits (they become orphans). */
static int fan(int argc, char **argv) {
  unsigned long n = strtoul(argv[3], NULL, 0), i;
  wchar_t cmd[1024];
  FILE *f = fopen(argv[4], "wb");
  if (f == NULL)
    return 1;
  tw_helper_cmdline(cmd, 1024, "sleep 60000");
  for (i = 0; i < n; i++) {
    PROCESS_INFORMATION pi;
    if (tw_spawn(cmd, 0, &pi) != 0)
      break;
    fprintf(f, "%lu\n", (unsigned long)pi.dwProcessId);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  (void)argc;
  return fclose(f) == 0 && i == n ? 0 : 2;
}

static void kill_fans(const char *path) {
  FILE *f = fopen(path, "rb");
  unsigned long pid;
  if (f == NULL)
    return;
  while (fscanf(f, "%lu", &pid) == 1) {
    HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE, (DWORD)pid);
    if (h != NULL) {
      TerminateProcess(h, 0);
      CloseHandle(h);
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  const char *dir;
  unsigned long n, k, i, got = 0;
  int src;
  char fanfile[1024], pidfile[1024], me[32], args[1200];
  wchar_t cmd[2048];
  double *snap_us, *lat_ms;
  jw__escape_snap_t snap;
  uint64_t scans = 0, scan_us = 0, scan_max = 0;
  DWORD code;
  LARGE_INTEGER fq, t0, t1;

  if (argc >= 5 && strcmp(argv[1], "--helper") == 0 && strcmp(argv[2], "bench-fan") == 0)
    return fan(argc, argv);
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if ((dir = bench_dir(argc, argv, "bench_escape DIR [N] [K] [INTERVAL]")) == NULL)
    return 2;
  n = argc > 2 ? strtoul(argv[2], NULL, 0) : 200;
  k = argc > 3 ? strtoul(argv[3], NULL, 0) : 20;
  snprintf(fanfile, sizeof(fanfile), "%s/bench-escape-fan.txt", dir);
  snprintf(args, sizeof(args), "bench-fan %lu %s", n, fanfile);
  tw_helper_cmdline(cmd, 2048, args);
  if (tw_run_wait(cmd, 600000, &code) != 0 || code != 0) {
    fprintf(stderr, "could not start %lu idle processes\n", n);
    kill_fans(fanfile);
    return 1;
  }

  /* 1. The process list alone, both ways. */
  snap_us = calloc(200, sizeof(double));
  lat_ms = calloc(k ? k : 1, sizeof(double));
  for (src = 0; src < 2; src++) {
    jw__escape_toolhelp_only(src);
    memset(&snap, 0, sizeof(snap));
    QueryPerformanceFrequency(&fq);
    for (i = 0; i < 200; i++) {
      QueryPerformanceCounter(&t0);
      jw__escape_snapshot(&snap);
      QueryPerformanceCounter(&t1);
      snap_us[i] = (double)(t1.QuadPart - t0.QuadPart) * 1e6 / (double)fq.QuadPart;
    }
    qsort(snap_us, 200, sizeof(double), cmp);
    printf("process list (%s): %lu processes on the system, %.0f us p50, %.0f us p99 "
           "(200 lists)\n",
           src ? "Toolhelp32" : "NtQuerySystemInformation", (unsigned long)snap.n, snap_us[100],
           snap_us[197]);
    jw__escape_snap_free(&snap);
  }
  jw__escape_toolhelp_only(0);

  /* 2. Detection by the timed scan. */
  snprintf(me, sizeof(me), "%lu", (unsigned long)GetCurrentProcessId());
  snprintf(pidfile, sizeof(pidfile), "%s/bench-escape.pids", dir);
  jw__monitor_drop_hook(drop_new_process);
  for (i = 0; i < k; i++) {
    rig_t r;
    jw_policy_t p;
    json_t *evs, *f;
    const char *hargs[] = {"spoof-parent", me, pidfile, "wait", "sleep", "30000"};
    jw_policy_init(&p);
    jw_policy_set(&p, "tier", "hardened", NULL, NULL);
    if (argc > 4)
      jw_policy_set(&p, "escape_scan_interval", argv[4], NULL, NULL);
    remove(pidfile);
    if (rig_start(&r, dir, "bench-escape", &p, hargs, 6) != 0)
      break;
    evs = rig_finish(&r);
    scans += r.stats.escape_scans;
    scan_us += r.stats.escape_scan_us_total;
    if (r.stats.escape_scan_us_max > scan_max)
      scan_max = r.stats.escape_scan_us_max;
    f = evs ? tw_filter(evs, "sandbox.violation", "job_escape") : NULL;
    if (f != NULL && json_array_size(f) == 1 &&
        tw_int(json_array_get(f, 0), "escape.detected_after_ms") >= 0)
      lat_ms[got++] = (double)tw_int(json_array_get(f, 0), "escape.detected_after_ms");
    json_decref(f);
    json_decref(evs);
  }
  jw__monitor_drop_hook(NULL);
  kill_fans(fanfile);
  if (got == 0) {
    fprintf(stderr, "no escape detected\n");
    return 1;
  }
  qsort(lat_ms, got, sizeof(double), cmp);
  printf("timed scan (%s): %lu/%lu escapes found; latency creation -> event: %.0f ms min, "
         "%.0f ms p50, %.0f ms max\n",
         argc > 4 ? argv[4] : "200ms", got, k, lat_ms[0], lat_ms[got / 2], lat_ms[got - 1]);
  printf("monitor scans: %llu, %.0f us mean, %llu us max\n", (unsigned long long)scans,
         scans ? (double)scan_us / (double)scans : 0.0, (unsigned long long)scan_max);
  free(snap_us);
  free(lat_ms);
  return 0;
}

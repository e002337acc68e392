/* Latency benchmark (not a test): from PostQueuedCompletionStatus of the
 * packet the kernel would post (ACTIVE_PROCESS_LIMIT on the job's real
 * port) until a reader that follows the event file has read the whole line:
 * monitor thread, rendering, queue, file sink's writer thread, the file.
 * One packet at a time (the next is posted once the line was read), so each
 * figure is the latency of an idle pipeline. Prints p50 / p99 / max.
 * Usage: bench_latency.exe DIR [N] (default 10000). See docs/performance.md. */
#include <process.h>

#include "rig.h"

static double now_us(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1e6 / (double)f.QuadPart;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Reads the file as it grows; returns once it holds `lines` complete lines. */
static int wait_lines(HANDLE h, long want, long *have) {
  char buf[65536];
  for (;;) {
    DWORD got = 0, i;
    if (!ReadFile(h, buf, sizeof(buf), &got, NULL))
      return -1;
    for (i = 0; i < got; i++)
      if (buf[i] == '\n')
        (*have)++;
    if (*have >= want)
      return 0;
    if (got == 0)
      YieldProcessor();
  }
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  int n = argc > 2 ? atoi(argv[2]) : 10000, i;
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "600000"};
  double *lat;
  wchar_t wpath[1100];
  HANDLE h;
  long have = 0;

  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  lat = calloc((size_t)n, sizeof(double));
  jw_policy_init(&p);
  jw_policy_set(&p, "active_processes", "4", "bench", NULL);
  if (lat == NULL || rig_start(&r, dir, "bench-latency", &p, args, 2) != 0)
    return 1;
  MultiByteToWideChar(CP_UTF8, 0, r.path, -1, wpath, 1100);
  h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return 1;
  Sleep(300);
  if (wait_lines(h, (long)jw_emitter_count(r.em), &have) != 0)
    return 1;
  for (i = 0; i < n; i++) {
    double t0 = now_us();
    PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, JW_KEY_JOB, NULL);
    if (wait_lines(h, have + 1, &have) != 0)
      return 1;
    lat[i] = now_us() - t0;
  }
  CloseHandle(h);
  TerminateProcess(r.child.process, 0);
  json_decref(rig_finish(&r));
  qsort(lat, (size_t)n, sizeof(double), cmp);
  printf("packet -> line read from the file, %d packets one at a time:\n", n);
  printf("  p50 %.0f us   p99 %.0f us   max %.0f us\n", lat[n / 2], lat[(size_t)n * 99 / 100],
         lat[n - 1]);
  return 0;
}

/* Latency benchmark (not a test): from PostQueuedCompletionStatus of the
 * packet the kernel would post (ACTIVE_PROCESS_LIMIT on the job's real
 * port) until the whole line has been read (a) by a reader that follows the
 * event file and (b) by a reader of a pipe: exporter: monitor thread,
 * rendering, the queues, each sink's writer thread, the file / the pipe.
 * One packet at a time (the next is posted once both lines were read), so
 * each figure is the latency of an idle pipeline. Prints p50 / p99 / max.
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

/* Reads what is there without blocking (a file at its end, or a pipe with
 * nothing to read, gives 0) and counts the lines. -1 on error. */
static int poll_lines(HANDLE h, int is_pipe, long *have) {
  char buf[65536];
  DWORD got = 0, avail = 0, i;
  if (is_pipe && (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL)))
    return -1;
  if (is_pipe && avail == 0)
    return 0;
  if (!ReadFile(h, buf, is_pipe && avail < sizeof(buf) ? avail : sizeof(buf), &got, NULL))
    return -1;
  for (i = 0; i < got; i++)
    if (buf[i] == '\n')
      (*have)++;
  return 0;
}

/* Waits until the file holds `want` lines and the pipe reader has read as
 * many; stores when each got there. */
static int wait_both(HANDLE file, HANDLE pipe, long want, long *have_f, long *have_p, double t0,
                     double *lat_f, double *lat_p) {
  *lat_f = *have_f >= want ? 0 : -1;
  *lat_p = *have_p >= want ? 0 : -1;
  while (*lat_f < 0 || *lat_p < 0) {
    if (*lat_f < 0 && poll_lines(file, 0, have_f) != 0)
      return -1;
    if (*lat_f < 0 && *have_f >= want)
      *lat_f = now_us() - t0;
    if (*lat_p < 0 && poll_lines(pipe, 1, have_p) != 0)
      return -1;
    if (*lat_p < 0 && *have_p >= want)
      *lat_p = now_us() - t0;
    YieldProcessor();
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  int n = argc > 2 ? atoi(argv[2]) : 10000, i;
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "600000"};
  double *lat, *lat_pipe, ignore_f, ignore_p;
  wchar_t wpath[1100];
  HANDLE h, pipe;
  long have = 0, have_pipe = 0;

  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  lat = calloc((size_t)n, sizeof(double));
  lat_pipe = calloc((size_t)n, sizeof(double));
  jw_policy_init(&p);
  jw_policy_set(&p, "active_processes", "4", "bench", NULL);
  if (lat == NULL || lat_pipe == NULL ||
      rig_start_ex(&r, dir, "bench-latency", &p, args, 2, "pipe:jw-bench-latency") != 0)
    return 1;
  pipe =
      CreateFileW(L"\\\\.\\pipe\\jw-bench-latency", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
  if (pipe == INVALID_HANDLE_VALUE)
    return 1;
  MultiByteToWideChar(CP_UTF8, 0, r.path, -1, wpath, 1100);
  h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return 1;
  Sleep(300);
  if (wait_both(h, pipe, (long)jw_emitter_count(r.em), &have, &have_pipe, now_us(), &ignore_f,
                &ignore_p) != 0)
    return 1;
  for (i = 0; i < n; i++) {
    double t0 = now_us();
    PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                               NULL);
    if (wait_both(h, pipe, have + 1, &have, &have_pipe, t0, &lat[i], &lat_pipe[i]) != 0)
      return 1;
  }
  CloseHandle(h);
  TerminateProcess(r.child.process, 0);
  json_decref(rig_finish(&r));
  CloseHandle(pipe);
  qsort(lat, (size_t)n, sizeof(double), cmp);
  qsort(lat_pipe, (size_t)n, sizeof(double), cmp);
  printf("packet -> line read, %d packets one at a time:\n", n);
  printf("  from the file:       p50 %.0f us   p99 %.0f us   max %.0f us\n", lat[n / 2],
         lat[(size_t)n * 99 / 100], lat[n - 1]);
  printf("  from a pipe: reader: p50 %.0f us   p99 %.0f us   max %.0f us\n", lat_pipe[n / 2],
         lat_pipe[(size_t)n * 99 / 100], lat_pipe[n - 1]);
  return 0;
}

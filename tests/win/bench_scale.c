/* Scaling benchmark (not a test): the monitor's cost per event and
 * jobwarden's memory as a run's processes grow. For each size N (default
 * 1 000, 10 000, 100 000) a fresh job with one real root (asleep) gets
 * NEW_PROCESS / EXIT_PROCESS packets on its real completion port for N
 * processes that exist only in the packets (jw__monitor_synthetic_hook
 * gives admission their facts: parent = the root, an image, a creation
 * time), at most WINDOW of them alive at once: NEW_PROCESS i is followed
 * by EXIT_PROCESS i - WINDOW. Everything after admission is the monitor's
 * own path: the table, the rules, the process_start / process_exit events
 * through the emitter to an event file. Timed from the first packet until
 * the emitter has numbered all 2N events; the rate is also taken over the
 * first and the last tenth of them (flat means the same). The monitor is
 * held at the first packet until all are posted (the clock starts when it
 * is let go), so the poster's round trips do not compete with it. Memory
 * (this process's working set and page-file usage): before the run, when
 * WINDOW processes are live, and once all N have exited (before the job
 * ends).
 * Usage: bench_scale.exe DIR [N...]. See docs/performance.md. */
#include "bench_util.h"
#include "rig.h"

#define WINDOW 1000

static DWORD g_root;
static DWORD g_base;
static DWORD g_count;
static uint64_t g_ct0;
static char g_image[MAX_PATH * 3];

static double now_us(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1e6 / (double)f.QuadPart;
}

static DWORD pid_of(DWORD i) {
  return g_base + 4u * i;
}

static int synthetic(DWORD pid, jw__synthetic_proc_t *out) {
  DWORD i;
  if (pid < g_base || (pid - g_base) % 4u != 0 || (pid - g_base) / 4u >= g_count)
    return 0;
  i = (pid - g_base) / 4u;
  out->ppid = g_root;
  out->create_time = g_ct0 + i;
  out->image = g_image;
  return 1;
}

/* Waits until the emitter has numbered `target` events; records when it
 * passed `mark_a` and `mark_b`. -1 when it stalls for 60 s. */
static int wait_count(jw_emitter_t *em, uint64_t target, uint64_t mark_a, double *at_a,
                      uint64_t mark_b, double *at_b) {
  uint64_t last = 0;
  double since = now_us();
  for (;;) {
    uint64_t c = jw_emitter_count(em);
    double t = now_us();
    if (at_a != NULL && *at_a == 0 && c >= mark_a)
      *at_a = t;
    if (at_b != NULL && *at_b == 0 && c >= mark_b)
      *at_b = t;
    if (c >= target)
      return 0;
    if (c != last) {
      last = c;
      since = t;
    } else if (t - since > 60e6) {
      return -1;
    }
    Sleep(0);
  }
}

/* Holds the monitor at the first packet until every packet is posted, so
 * that the clock measures the monitor alone (not the posting thread's
 * round trips competing with it). Drops nothing. */
static HANDLE g_gate;

static int gate(DWORD msg, ULONG_PTR value) {
  (void)msg;
  (void)value;
  if (g_gate != NULL)
    WaitForSingleObject(g_gate, INFINITE);
  return 0;
}

/* Memory of this process: Wine fills the working set and the page-file
 * usage (private bytes read 0). */
static void memory(double *ws_mb, double *pf_mb) {
  PROCESS_MEMORY_COUNTERS_EX pmc;
  memset(&pmc, 0, sizeof(pmc));
  pmc.cb = sizeof(pmc);
  *ws_mb = *pf_mb = -1;
  if (!GetProcessMemoryInfo(GetCurrentProcess(), (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc)))
    return;
  *ws_mb = (double)pmc.WorkingSetSize / (1024.0 * 1024.0);
  *pf_mb = (double)pmc.PagefileUsage / (1024.0 * 1024.0);
}

static int run_size(const char *dir, DWORD n, int index) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "600000"};
  char name[64];
  double t0, t1, at_live = 0, first = 0, last_from = 0, ws[3], pf[3];
  uint64_t base, total = 2ull * n, tenth = total / 10;
  DWORD i, live = n < WINDOW ? n : WINDOW;
  FILETIME ft;

  snprintf(name, sizeof(name), "bench-scale-%lu", (unsigned long)n);
  jw_policy_init(&p);
  jw_policy_set(&p, "tier", "none", "bench", NULL);
  memory(&ws[0], &pf[0]);
  if (rig_start(&r, dir, name, &p, args, 2) != 0)
    return 1;
  g_root = r.child.pid;
  g_base = 0x20000000u + (DWORD)index * 0x01000000u;
  g_count = n;
  GetSystemTimeAsFileTime(&ft);
  g_ct0 = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
  /* The root's own events first (its start, its identity). */
  if (wait_count(r.em, 1, 0, NULL, 0, NULL) != 0)
    return 1;
  Sleep(300);
  base = jw_emitter_count(r.em);
  ResetEvent(g_gate);
  jw__monitor_drop_hook(gate);
  for (i = 0; i < n + live; i++) {
    if (i < n)
      PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_NEW_PROCESS, r.job.key_job,
                                 (LPOVERLAPPED)(ULONG_PTR)pid_of(i));
    if (i >= live)
      PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_EXIT_PROCESS, r.job.key_job,
                                 (LPOVERLAPPED)(ULONG_PTR)pid_of(i - live));
  }
  t0 = now_us();
  SetEvent(g_gate);
  /* The window's peak: the first `live` started, none exited yet. */
  if (wait_count(r.em, base + live, base + tenth, &first, 0, NULL) != 0)
    return 1;
  at_live = now_us();
  memory(&ws[1], &pf[1]);
  if (wait_count(r.em, base + total, base + tenth, &first, base + total - tenth, &last_from) != 0) {
    fprintf(stderr, "bench_scale: the monitor stalled at %llu of %llu events\n",
            (unsigned long long)(jw_emitter_count(r.em) - base), (unsigned long long)total);
    return 1;
  }
  t1 = now_us();
  jw__monitor_drop_hook(NULL);
  memory(&ws[2], &pf[2]);
  TerminateJobObject(r.job.job, 0);
  WaitForSingleObject(jw_monitor_done_event(r.mon), 30000);
  jw_monitor_stop(r.mon, 30000, &r.stats);
  jw_child_close(&r.child);
  jw_job_close(&r.job);
  {
    uint64_t dropped = jw_emitter_dropped(r.em);
    jw_emitter_free(r.em);
    (void)at_live;
    printf("N=%lu (at most %lu live): %llu events in %.0f ms = %.1f us/event; first tenth %.1f "
           "us/event, last tenth %.1f us/event (last/first %.2f); working set %.1f MB before, "
           "%.1f MB at %lu live, %.1f MB after all exited (after/at-live %.2f); page-file usage "
           "%.1f / %.1f / %.1f MB (%.2f); table peak %llu entries; %lu processes seen; %llu "
           "lines dropped by the sink\n",
           (unsigned long)n, (unsigned long)live, (unsigned long long)total, (t1 - t0) / 1000.0,
           (t1 - t0) / (double)total, (first - t0) / (double)tenth,
           (t1 - last_from) / (double)tenth, (t1 - last_from) / (first - t0 > 0 ? first - t0 : 1),
           ws[0], ws[1], (unsigned long)live, ws[2], ws[1] > 0 ? ws[2] / ws[1] : 0, pf[0], pf[1],
           pf[2], pf[1] > 0 ? pf[2] / pf[1] : 0, (unsigned long long)r.stats.table_peak,
           (unsigned long)r.stats.processes_seen, (unsigned long long)dropped);
  }
  fflush(stdout);
  remove(r.path);
  return 0;
}

int main(int argc, char **argv) {
  const char *dir;
  static const DWORD sizes[] = {1000, 10000, 100000};
  int i;
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if ((dir = bench_dir(argc, argv, "bench_scale.exe DIR [N...]")) == NULL)
    return 2;
  snprintf(g_image, sizeof(g_image), "%s", rig_self_utf8());
  g_gate = CreateEventW(NULL, TRUE, TRUE, NULL);
  jw__monitor_synthetic_hook(synthetic);
  if (argc > 2) {
    for (i = 2; i < argc; i++)
      if (run_size(dir, (DWORD)strtoul(argv[i], NULL, 0), i) != 0)
        return 1;
    return 0;
  }
  for (i = 0; i < 3; i++)
    if (run_size(dir, sizes[i], i) != 0)
      return 1;
  return 0;
}

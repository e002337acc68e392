/* Latency benchmark (not a test): from PostQueuedCompletionStatus of the
 * packet the kernel would post (ACTIVE_PROCESS_LIMIT on the job's real
 * port) until the whole line has been read (a) by a reader that follows the
 * event file and (b) by a client of a pipe: exporter (its own thread,
 * blocked in ReadFile like a consumer's; --poll-pipe: polls with
 * PeekNamedPipe instead, as this benchmark did before): monitor thread,
 * rendering, the queues, each sink's writer thread, the file / the pipe.
 * Coalescing is off: every packet is one violation line.
 *   idle   N packets one at a time (the next is posted once both lines were
 *          read): the latency of an idle pipeline;
 *   burst  BURST packets posted back to back by another thread while the
 *          readers read: packet i's latency is from its post until the
 *          i-th new line was read.
 *   asleep N more packets one at a time, timed at the pipe's client only,
 *          while nobody spins (the benchmark waits on an event the client
 *          sets after its stamp; the file is read afterwards, untimed):
 *          what a consumer blocked in ReadFile sees when the observer
 *          does not hold a core;
 *   relay  the baseline, measured in the same run, each of its packets
 *          posted right after one of the idle series: a thread blocked in
 *          GetQueuedCompletionStatus on a port of its own writes a line as
 *          long as jobwarden's to a file and to a pipe (one WriteFile each)
 *          that readers of the same kind read: the least any monitor
 *          that reports a packet to a file and a pipe costs on this
 *          system. The idle series is printed as a ratio of it too.
 * Prints p50 / p99 / max of each. Violations are flushed to disk by group
 * commit (JW_SYNC_BOUND_MS), not per line, so the flush is not in the path.
 * --gap-us=N: the idle series posts each packet (jobwarden's and the
 * relay's) N us or more after the one before (lone messages: a port quiet
 * between them, as an agent's occasional limit hit; without it the series
 * is a stream of about 2 500 messages a second).
 * --tier=T: the job's tier (none by default; hardened and lockdown add the
 * timed escape scan, every 200 ms).
 * Usage: bench_latency.exe DIR [N [BURST [--poll-pipe] [--relay-like-sink] [--gap-us=N]
 * [--tier=T]]]
 * (defaults 10000, 5000). See docs/performance.md. */
#include <process.h>

#include "bench_util.h"
#include "rig.h"
#include "win/escape.h"

static double now_us(void) {
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (double)c.QuadPart * 1e6 / (double)f.QuadPart;
}

/* A wait that sees no line for STUCK_US fails the run with what it waited
 * for and the sinks' state, instead of hanging. */
#define STUCK_US 30e6
static jw_emitter_t *g_em;
static jw_exporter_t *g_pipe;
static int stuck(double since, const char *what, long have, long want) {
  jw__pipe_wstats_t ws = {0, 0, 0, 0};
  if (now_us() - since < STUCK_US)
    return 0;
  jw__pipe_write_stats(g_pipe, &ws);
  fprintf(stderr,
          "bench_latency: stuck for 30 s waiting for %s line %ld (have %ld); emitter: %llu "
          "committed; pipe sink: %llu direct, %llu handed, %llu resumed\n",
          what, want, have, (unsigned long long)jw_emitter_count(g_em),
          (unsigned long long)ws.direct, (unsigned long long)ws.handed,
          (unsigned long long)ws.resumed);
  return 1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Microseconds since 1970 on the clock of the lines' "emitted" (the
 * system's precise time). */
static double sys_us(void) {
  FILETIME ft;
  GetSystemTimePreciseAsFileTime(&ft);
  return (double)((((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime) -
                  116444736000000000ull) /
         10.0;
}

/* A line's "emitted" in microseconds since 1970, or -1. */
static double emitted_us(const char *line, size_t len) {
  static const char key[] = "\"emitted\":\"";
  const char *p = NULL;
  size_t i;
  unsigned y, mo, d, h, mi, sec, us;
  SYSTEMTIME st;
  FILETIME ft;
  for (i = 0; i + sizeof(key) - 1 + 27 <= len && p == NULL; i++)
    if (memcmp(line + i, key, sizeof(key) - 1) == 0)
      p = line + i + sizeof(key) - 1;
  if (p == NULL || sscanf(p, "%4u-%2u-%2uT%2u:%2u:%2u.%6uZ", &y, &mo, &d, &h, &mi, &sec, &us) != 7)
    return -1;
  memset(&st, 0, sizeof(st));
  st.wYear = (WORD)y;
  st.wMonth = (WORD)mo;
  st.wDay = (WORD)d;
  st.wHour = (WORD)h;
  st.wMinute = (WORD)mi;
  st.wSecond = (WORD)sec;
  if (!SystemTimeToFileTime(&st, &ft))
    return -1;
  return (double)((((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime) -
                  116444736000000000ull) /
             10.0 +
         us;
}

/* One reader's stream: lines counted; while emit_lat is set, line
 * base + k's time from its "emitted" (its seq was taken: the monitor has
 * decided) until it was read goes to emit_lat[k] — the pipeline's own
 * share of the latency, apart from the monitor's. */
typedef struct {
  long have;
  size_t last_len;  /* the last whole line's length, '\n' included */
  char part[16384]; /* the line read so far */
  size_t plen;
  int overflow; /* the line is longer than part: counted, not measured */
  double *emit_lat;
  long base, cap;
} stream_t;

/* Counts the lines in got bytes read at `now` (µs on the emitted clock,
 * taken only while emit_lat is set). */
static void count_lines(stream_t *s, const char *buf, DWORD got, double now) {
  DWORD i;
  for (i = 0; i < got; i++) {
    if (buf[i] != '\n') {
      if (s->plen < sizeof(s->part))
        s->part[s->plen++] = buf[i];
      else
        s->overflow = 1;
      continue;
    }
    if (s->emit_lat != NULL && s->have >= s->base && s->have - s->base < s->cap) {
      double e = s->overflow ? -1 : emitted_us(s->part, s->plen);
      s->emit_lat[s->have - s->base] = e < 0 ? -1 : now - e;
    }
    s->have++;
    s->last_len = s->plen + 1;
    s->plen = 0;
    s->overflow = 0;
  }
}

/* Reads what the file holds beyond what was read (0 bytes at its end:
 * a file read never blocks) and counts the lines. -1 on error. */
static int poll_file(HANDLE h, stream_t *s) {
  static char buf[65536];
  DWORD got = 0;
  if (!ReadFile(h, buf, sizeof(buf), &got, NULL))
    return -1;
  if (got > 0)
    count_lines(s, buf, got, s->emit_lat != NULL ? sys_us() : 0);
  return 0;
}

/* The pipe's client: its own thread, blocked in ReadFile until jobwarden
 * writes (what a consumer of the pipe does; the benchmark's earlier
 * reader polled with PeekNamedPipe, a server round trip per look under
 * Wine, and that polling competed with the pipeline for the cores and
 * for the server). `when[k]` is when line k (counted from `when_base`)
 * was read, on now_us()'s clock; `seen` is published after it. With
 * --poll-pipe it polls as before (for comparison). */
typedef struct {
  HANDLE pipe;
  stream_t s;
  volatile LONG seen; /* lines read so far, published */
  double *when;
  volatile LONG when_base; /* -1: not recording */
  long when_cap;
  int poll;
  volatile LONG failed;
  HANDLE ev;          /* set once `seen` reaches `want` (the sleeping wait) */
  volatile LONG want; /* 0: nobody waits */
} pipe_client_t;

static unsigned __stdcall pipe_client(void *arg) {
  static char buf[65536];
  pipe_client_t *c = arg;
  for (;;) {
    DWORD got = 0, avail = 0;
    double t;
    long before = c->s.have, k, base;
    if (c->poll) {
      if (!PeekNamedPipe(c->pipe, NULL, 0, NULL, &avail, NULL))
        break;
      if (avail == 0) {
        YieldProcessor();
        continue;
      }
    }
    if (!ReadFile(c->pipe, buf, c->poll && avail < sizeof(buf) ? avail : sizeof(buf), &got, NULL) &&
        GetLastError() != ERROR_MORE_DATA)
      break;
    t = now_us();
    count_lines(&c->s, buf, got, c->s.emit_lat != NULL ? sys_us() : 0);
    base = c->when_base;
    for (k = before; base >= 0 && k < c->s.have; k++)
      if (k >= base && k - base < c->when_cap)
        c->when[k - base] = t;
    MemoryBarrier();
    InterlockedExchange(&c->seen, c->s.have);
    if (c->want > 0 && c->s.have >= c->want)
      SetEvent(c->ev); /* after the stamp: not in what is measured */
  }
  InterlockedExchange(&c->failed, 1); /* the run's end closes the pipe */
  return 0;
}

/* Spins (giving the core to whoever needs it) until now_us() reaches t. */
static void spin_until(double t) {
  while (now_us() < t)
    SwitchToThread();
}

/* Waits until the file holds `want` lines (polled here) and the pipe's
 * client has read as many (its own stamps); the latencies from t0. */
static int wait_both(HANDLE file, pipe_client_t *c, long want, stream_t *f, double t0,
                     double *lat_f, double *lat_p) {
  *lat_f = f->have >= want ? 0 : -1;
  while (*lat_f < 0) {
    if (poll_file(file, f) != 0 || stuck(t0, "the file's", f->have, want))
      return -1;
    if (f->have >= want)
      *lat_f = now_us() - t0;
    SwitchToThread(); /* the core to whoever needs it */
  }
  while (c->seen < want) {
    if (c->failed || stuck(t0, "the pipe's", c->seen, want))
      return -1;
    SwitchToThread(); /* the core to whoever needs it */
  }
  MemoryBarrier();
  *lat_p = c->when_base >= 0 ? c->when[want - 1 - c->when_base] - t0 : 0;
  return 0;
}

/* Waits asleep until the pipe's client has read `want` lines (nobody
 * spins: the pipeline and the server have both cores); the latency from
 * t0. `want` is set before the packet is posted. -1 when the client
 * failed. */
static int wait_pipe_asleep(pipe_client_t *c, long want, double t0, double *lat) {
  while (c->seen < want) {
    if (c->failed || stuck(t0, "the pipe's (asleep)", c->seen, want))
      return -1;
    WaitForSingleObject(c->ev, 1000);
  }
  MemoryBarrier();
  InterlockedExchange(&c->want, 0);
  *lat = c->when[want - 1 - c->when_base] - t0;
  return 0;
}

/* Reads the file up to `want` lines, untimed (its lines came before). */
static int catch_up(HANDLE file, stream_t *f, long want) {
  double t0 = now_us();
  while (f->have < want) {
    if (poll_file(file, f) != 0 || stuck(t0, "the file's (catching up)", f->have, want))
      return -1;
    if (f->have < want)
      SwitchToThread();
  }
  return 0;
}

typedef struct {
  HANDLE port;
  ULONG_PTR key;
  int n;
  volatile double *posted; /* when packet i was posted (set before the post) */
} burst_t;

static unsigned __stdcall post_burst(void *arg) {
  burst_t *b = arg;
  int i;
  for (i = 0; i < b->n; i++) {
    b->posted[i] = now_us();
    MemoryBarrier();
    PostQueuedCompletionStatus(b->port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, b->key, NULL);
  }
  return 0;
}

/* Reads the file until it holds `base + n` lines and waits for the pipe's
 * client to have read as many; the k-th new line of a stream gives packet
 * k's latency in that stream. */
static int read_burst(HANDLE file, pipe_client_t *c, long base, int n, stream_t *f,
                      volatile double *posted, double *lat_f, double *lat_p) {
  long k, last = c->seen;
  double moved = now_us(); /* when a line last came */
  while (f->have < base + n) {
    long before_f = f->have;
    double t;
    if (poll_file(file, f) != 0 || stuck(moved, "the file's (burst)", f->have, base + n))
      return -1;
    t = now_us();
    if (f->have != before_f)
      moved = t;
    MemoryBarrier();
    for (k = before_f; k < f->have && k < base + n; k++)
      lat_f[k - base] = t - posted[k - base];
    SwitchToThread(); /* the core to whoever needs it */
  }
  moved = now_us();
  while (c->seen < base + n) {
    if (c->failed || stuck(moved, "the pipe's (burst)", c->seen, base + n))
      return -1;
    if (c->seen != last) {
      last = c->seen;
      moved = now_us();
    }
    Sleep(1); /* the client stamps its own lines */
  }
  MemoryBarrier();
  for (k = 0; k < n; k++)
    lat_p[k] = c->when[base + k - c->when_base] - posted[k];
  return 0;
}

/* The baseline: one thread, one port, one WriteFile to each sink. */
typedef struct {
  HANDLE port, file, pipe;
  char *line;
  DWORD len;
  /* --relay-like-sink: its pipe made as the pipe sink makes its own
   * (duplex, overlapped, a read kept pending to learn of the client's
   * end) and written as the sink's writer writes (overlapped, an event,
   * complete at once): what those cost the tail, measured apart. */
  int like_sink;
  HANDLE wev, rev;
  OVERLAPPED ro;
  char rbuf[64];
} relay_t;

static unsigned __stdcall relay_main(void *arg) {
  relay_t *rl = arg;
  for (;;) {
    DWORD bytes = 0, put = 0;
    ULONG_PTR key = 0;
    OVERLAPPED *ov = NULL, wo;
    if (!GetQueuedCompletionStatus(rl->port, &bytes, &key, &ov, INFINITE) || key == 0)
      return 0;
    if (!WriteFile(rl->file, rl->line, rl->len, &put, NULL))
      return 1;
    if (!rl->like_sink) {
      if (!WriteFile(rl->pipe, rl->line, rl->len, &put, NULL))
        return 1;
      continue;
    }
    memset(&wo, 0, sizeof(wo));
    wo.hEvent = rl->wev;
    if (!WriteFile(rl->pipe, rl->line, rl->len, &put, &wo) &&
        (GetLastError() != ERROR_IO_PENDING || !GetOverlappedResult(rl->pipe, &wo, &put, TRUE)))
      return 1;
  }
}

/* Starts the relay (its file in dir, its pipe, a client of the kind the
 * benchmark reads jobwarden's pipe with) writing lines of `len` bytes;
 * *fr is the file opened for reading. 0 or -1. */
static int relay_start(relay_t *rl, const char *dir, size_t len, int like_sink, pipe_client_t *c,
                       HANDLE *fr, HANDLE *thread) {
  char path[1100];
  wchar_t wpath[1100];
  memset(rl, 0, sizeof(*rl));
  rl->len = (DWORD)(len < 2 ? 2 : len);
  rl->line = malloc(rl->len);
  if (rl->line == NULL)
    return -1;
  memset(rl->line, 'x', rl->len - 1);
  rl->line[rl->len - 1] = '\n';
  snprintf(path, sizeof(path), "%s\\bench-latency-relay.txt", dir);
  MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 1100);
  rl->file = CreateFileW(wpath, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         CREATE_ALWAYS, 0, NULL);
  *fr = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                    NULL);
  rl->pipe =
      CreateNamedPipeW(L"\\\\.\\pipe\\jw-bench-latency-relay",
                       like_sink ? PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED : PIPE_ACCESS_OUTBOUND,
                       PIPE_TYPE_BYTE | PIPE_WAIT, 1, 65536, 4096, 0, NULL);
  rl->like_sink = like_sink;
  if (rl->file == INVALID_HANDLE_VALUE || *fr == INVALID_HANDLE_VALUE ||
      rl->pipe == INVALID_HANDLE_VALUE)
    return -1;
  c->pipe = CreateFileW(L"\\\\.\\pipe\\jw-bench-latency-relay", GENERIC_READ, 0, NULL,
                        OPEN_EXISTING, 0, NULL);
  if (c->pipe == INVALID_HANDLE_VALUE)
    return -1;
  if (like_sink) {
    OVERLAPPED co;
    DWORD got = 0;
    memset(&co, 0, sizeof(co));
    co.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ConnectNamedPipe(rl->pipe, &co) && GetLastError() == ERROR_IO_PENDING)
      GetOverlappedResult(rl->pipe, &co, &got, TRUE);
    CloseHandle(co.hEvent);
    rl->wev = CreateEventW(NULL, TRUE, FALSE, NULL);
    rl->rev = CreateEventW(NULL, TRUE, FALSE, NULL);
    rl->ro.hEvent = rl->rev;
    if (rl->wev == NULL || rl->rev == NULL ||
        (ReadFile(rl->pipe, rl->rbuf, sizeof(rl->rbuf), &got, &rl->ro) ||
         GetLastError() != ERROR_IO_PENDING))
      return -1; /* the client never writes: the read stays pending */
  } else if (!ConnectNamedPipe(rl->pipe, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
    return -1;
  rl->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (rl->port == NULL)
    return -1;
  *thread = (HANDLE)_beginthreadex(NULL, 0, relay_main, rl, 0, NULL);
  return *thread != NULL ? 0 : -1;
}

/* p50 / p99 / max of the n values that are >= 0 (a line that could not be
 * measured is -1). */
static int report(const char *what, double *lat, int n) {
  int k = 0, i;
  for (i = 0; i < n; i++)
    if (lat[i] >= 0)
      lat[k++] = lat[i];
  if (k == 0)
    return 0;
  qsort(lat, (size_t)k, sizeof(double), cmp);
  printf("  %-40s p50 %6.0f us   p99 %6.0f us   max %7.0f us\n", what, lat[k / 2],
         lat[(size_t)k * 99 / 100], lat[k - 1]);
  return k;
}

/* The p-th percentile (50 or 99, as report() prints it) of the k values
 * report() sorted. */
static double pct(const double *lat, int k, int p) {
  return k == 0 ? -1 : lat[(size_t)k * (size_t)p / 100];
}

/* jobwarden's percentiles (ka values) as a ratio of the relay's (kb). */
static void ratio(const char *what, const double *a, int ka, const double *base, int kb) {
  if (ka > 0 && kb > 0)
    printf("  %-40s p50 %5.2fx      p99 %5.2fx\n", what, pct(a, ka, 50) / pct(base, kb, 50),
           pct(a, ka, 99) / pct(base, kb, 99));
}

int main(int argc, char **argv) {
  const char *dir;
  int n = argc > 2 ? atoi(argv[2]) : 10000, i;
  int burst = argc > 3 ? atoi(argv[3]) : 5000, like_sink = 0;
  double gap_us = 0, t_last = 0; /* --gap-us=N: an idle packet at most every N us */
  const char *tier = NULL;       /* --tier=T: the job's tier (none by default) */
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "600000"};
  double *lat, *lat_pipe, *blat, *blat_pipe, *elat, *elat_pipe, ignore_f, ignore_p;
  volatile double *posted;
  wchar_t wpath[1100];
  HANDLE h, t, ct;
  static stream_t fs;
  static pipe_client_t pc, rc; /* jobwarden's pipe, the relay's */
  static stream_t rs;          /* the relay's file */
  relay_t rl;
  HANDLE rh, rt, rct;
  double *rlat, *rlat_pipe, *alat, *ralat; /* alat, ralat: the sleeping series */
  int kf, kp, krf, krp, ka, kra;
  jw__pipe_wstats_t ws = {0, 0, 0, 0};
  burst_t b;

  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if ((dir = bench_dir(argc, argv,
                       "bench_latency.exe DIR [N [BURST [--poll-pipe] [--relay-like-sink] "
                       "[--gap-us=N] [--tier=T]]]")) == NULL)
    return 2;
  for (i = 4; i < argc; i++) {
    pc.poll |= strcmp(argv[i], "--poll-pipe") == 0;
    like_sink |= strcmp(argv[i], "--relay-like-sink") == 0;
    if (strncmp(argv[i], "--gap-us=", 9) == 0)
      gap_us = atof(argv[i] + 9);
    if (strncmp(argv[i], "--tier=", 7) == 0)
      tier = argv[i] + 7;
  }
  lat = calloc((size_t)n, sizeof(double));
  lat_pipe = calloc((size_t)n, sizeof(double));
  blat = calloc((size_t)burst, sizeof(double));
  blat_pipe = calloc((size_t)burst, sizeof(double));
  posted = calloc((size_t)burst, sizeof(double));
  elat = calloc(2 * (size_t)n + (size_t)burst, sizeof(double));
  elat_pipe = calloc(2 * (size_t)n + (size_t)burst, sizeof(double));
  pc.when = calloc(2 * (size_t)n + (size_t)burst, sizeof(double));
  pc.when_base = -1;
  pc.ev = CreateEventW(NULL, FALSE, FALSE, NULL);
  rlat = calloc((size_t)n, sizeof(double));
  rlat_pipe = calloc((size_t)n, sizeof(double));
  alat = calloc((size_t)n, sizeof(double));
  ralat = calloc((size_t)n, sizeof(double));
  rc.when = calloc(2 * (size_t)n, sizeof(double));
  rc.ev = CreateEventW(NULL, FALSE, FALSE, NULL);
  rc.when_base = -1;
  rc.poll = pc.poll;
  jw_policy_init(&p);
  if (tier != NULL && jw_policy_set(&p, "tier", tier, "bench", NULL) != 0) {
    fprintf(stderr, "bench_latency: --tier=%s: not a tier (none, hardened, lockdown)\n", tier);
    return 2;
  }
  jw_policy_set(&p, "active_processes", "4", "bench", NULL);
  /* Every packet its own line: a repeat inside the window would be
   * counted into a summary written when the window closes. */
  jw_policy_set(&p, "coalesce_window", "off", "bench", NULL);
  if (lat == NULL || lat_pipe == NULL || blat == NULL || blat_pipe == NULL || posted == NULL ||
      elat == NULL || elat_pipe == NULL || pc.when == NULL || rlat == NULL || rlat_pipe == NULL ||
      rc.when == NULL || alat == NULL || ralat == NULL || pc.ev == NULL || rc.ev == NULL ||
      rig_start_ex(&r, dir, "bench-latency", &p, args, 2, "pipe:jw-bench-latency,buffer=8192") != 0)
    return 1;
  g_em = r.em;
  g_pipe = r.extra;
  pc.pipe =
      CreateFileW(L"\\\\.\\pipe\\jw-bench-latency", GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
  if (pc.pipe == INVALID_HANDLE_VALUE)
    return 1;
  MultiByteToWideChar(CP_UTF8, 0, r.path, -1, wpath, 1100);
  h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return 1;
  ct = (HANDLE)_beginthreadex(NULL, 0, pipe_client, &pc, 0, NULL);
  if (ct == NULL)
    return 1;
  Sleep(300);
  if (wait_both(h, &pc, (long)jw_emitter_count(r.em), &fs, now_us(), &ignore_f, &ignore_p) != 0)
    return 1;
  /* The relay writes lines as long as jobwarden's last one (the pipeline
   * is idle: a violation line of the same kind follows). */
  if (relay_start(&rl, dir, fs.last_len, like_sink, &rc, &rh, &rt) != 0)
    return 1;
  rct = (HANDLE)_beginthreadex(NULL, 0, pipe_client, &rc, 0, NULL);
  if (rct == NULL)
    return 1;
  rc.when_cap = 2 * n;
  MemoryBarrier();
  rc.when_base = 0;
  /* Everything so far is read and the client waits in ReadFile: from here
   * on it records. */
  fs.emit_lat = elat;
  pc.s.emit_lat = elat_pipe;
  fs.base = fs.have;
  pc.s.base = pc.s.have;
  fs.cap = pc.s.cap = 2 * n + burst;
  pc.when_cap = 2 * n + burst;
  MemoryBarrier();
  pc.when_base = pc.s.have;
  for (i = 0; i < n; i++) {
    double t0;
    /* --gap-us: lone messages, each packet (jobwarden's and the relay's
     * alike) at least gap_us after the one before; the cores kept awake
     * meanwhile, as in the series without a gap. */
    spin_until(t_last + gap_us);
    t0 = t_last = now_us();
    PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                               NULL);
    if (wait_both(h, &pc, fs.have + 1, &fs, t0, &lat[i], &lat_pipe[i]) != 0)
      return 1;
    spin_until(t_last + gap_us);
    t0 = t_last = now_us();
    PostQueuedCompletionStatus(rl.port, 0, 1, NULL);
    if (wait_both(rh, &rc, rs.have + 1, &rs, t0, &rlat[i], &rlat_pipe[i]) != 0)
      return 1;
  }
  /* The sleeping series: nothing of the benchmark's runs while a line
   * travels. The file's lines are read after each, untimed. */
  fs.emit_lat = NULL;
  for (i = 0; i < n; i++) {
    double t0;
    long want = pc.s.have + 1;
    InterlockedExchange(&pc.want, want);
    t0 = now_us();
    PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                               NULL);
    if (wait_pipe_asleep(&pc, want, t0, &alat[i]) != 0 || catch_up(h, &fs, fs.have + 1) != 0)
      return 1;
    want = rc.s.have + 1;
    InterlockedExchange(&rc.want, want);
    t0 = now_us();
    PostQueuedCompletionStatus(rl.port, 0, 1, NULL);
    if (wait_pipe_asleep(&rc, want, t0, &ralat[i]) != 0 || catch_up(rh, &rs, rs.have + 1) != 0)
      return 1;
  }
  fs.emit_lat = elat;
  PostQueuedCompletionStatus(rl.port, 0, 0, NULL); /* the relay ends */
  WaitForSingleObject(rt, INFINITE);
  CloseHandle(rt);
  CloseHandle(rl.pipe); /* its client reads the end */
  WaitForSingleObject(rct, 10000);
  CloseHandle(rct);
  CloseHandle(rc.pipe);
  CloseHandle(rl.file);
  CloseHandle(rh);
  CloseHandle(rl.port);
  free(rl.line);
  b.port = r.job.port;
  b.key = r.job.key_job;
  b.n = burst;
  b.posted = posted;
  t = (HANDLE)_beginthreadex(NULL, 0, post_burst, &b, 0, NULL);
  if (t == NULL || read_burst(h, &pc, fs.have, burst, &fs, posted, blat, blat_pipe) != 0)
    return 1;
  WaitForSingleObject(t, INFINITE);
  CloseHandle(t);
  CloseHandle(h);
  TerminateProcess(r.child.process, 0);
  jw__pipe_write_stats(r.extra, &ws);
  json_decref(rig_finish(&r));
  /* The run's end closed the server's end: the client's ReadFile fails. */
  WaitForSingleObject(ct, 10000);
  CloseHandle(ct);
  CloseHandle(pc.pipe);
  printf("pipe client: %s\n", pc.poll ? "polls with PeekNamedPipe (--poll-pipe)"
                                      : "blocks in ReadFile in its own thread");
  printf("pipe sink: %llu write(s) straight to the reader's pipe, %llu of them handed to the "
         "reader's thread\n",
         (unsigned long long)ws.direct, (unsigned long long)ws.handed);
  /* Each packet is a job message: escape scans came due all along (one per
   * 50 ms at most), each waiting for a quiet port, or for its bound. */
  printf("escape scans in the run: %lu (%lu after the port was quiet %d ms, %lu at the %d ms "
         "bound), %.2f ms each on average\n",
         (unsigned long)r.stats.escape_scans, (unsigned long)r.stats.escape_scans_after_quiet,
         JW__SCAN_QUIET_MS, (unsigned long)r.stats.escape_scans_at_bound, JW__SCAN_QUIET_MAX_MS,
         r.stats.escape_scans ? (double)r.stats.escape_scan_us_total / 1000.0 / r.stats.escape_scans
                              : 0.0);
  if (gap_us > 0)
    printf("packet -> line read, %d packets one at a time, one at most every %.0f us (lone "
           "messages):\n",
           n, gap_us);
  else
    printf("packet -> line read, %d packets one at a time (idle pipeline):\n", n);
  kf = report("from the file:", lat, n);
  kp = report("from a pipe: reader:", lat_pipe, n);
  report("emitted -> read, file:", elat, n);
  report("emitted -> read, pipe: reader:", elat_pipe, n);
  if (like_sink)
    printf("relay's pipe: as the pipe sink's (duplex, overlapped, a read pending; overlapped "
           "writes with an event)\n");
  printf("the relay (baseline: one thread, one port, one WriteFile per sink), %d packets, each "
         "right after one of the above; lines of %lu bytes:\n",
         n, (unsigned long)rl.len);
  krf = report("from the file:", rlat, n);
  krp = report("from a pipe: reader:", rlat_pipe, n);
  printf("jobwarden / relay:\n");
  ratio("from the file:", lat, kf, rlat, krf);
  ratio("from a pipe: reader:", lat_pipe, kp, rlat_pipe, krp);
  printf("packet -> line read by the pipe's client, %d more packets, nobody spinning (the "
         "benchmark asleep until the client has read):\n",
         n);
  ka = report("jobwarden:", alat, n);
  report("emitted -> read (jobwarden):", elat_pipe + n, n);
  kra = report("the relay:", ralat, n);
  ratio("jobwarden / relay:", alat, ka, ralat, kra);
  printf("packet -> line read, a burst of %d packets posted back to back:\n", burst);
  report("from the file:", blat, burst);
  report("from a pipe: reader:", blat_pipe, burst);
  report("emitted -> read, file:", elat + 2 * n, burst);
  report("emitted -> read, pipe: reader:", elat_pipe + 2 * n, burst);
  return 0;
}

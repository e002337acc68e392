/* The spool's cost (not a test): N events through a syslog+tcp sink to a
 * collector thread on 127.0.0.1 that reads every frame, once through the
 * sink's spool (the default: each line appended to a file on disk, then
 * read back and sent by the sender thread) and once with spool=none (the
 * writer thread sends directly), timed from the first jw_emit until the
 * collector has read the last frame. And the sender alone against raw
 * sends of the same bytes: "drain" is a backlog of the N lines delivered
 * from the spool after an outage (timed from the first byte the collector
 * reads to the last frame), "raw" the frames the sink sent in the first
 * round sent again by plain send() calls, one per frame and 256 KiB at a
 * time. Alternating rounds, medians. Builds natively and for Windows (run
 * under Wine). Usage: bench_spool DIR [N]. See docs/performance.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "internal.h"
#include "spool.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET bsock_t;
#define BBAD INVALID_SOCKET
static void bclose(bsock_t s) {
  closesocket(s);
}
#else
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
typedef int bsock_t;
#define BBAD (-1)
static void bclose(bsock_t s) {
  close(s);
}
#endif

#define ROUNDS 5

typedef struct {
  bsock_t listener;
  uint64_t want;   /* frames to read */
  uint64_t got;    /* frames read */
  double first_at; /* when the first bytes were read */
  double done_at;  /* when the last one was read */
  int failed;
  char *record; /* non-NULL: every byte read is kept here (malloc'd) */
  size_t record_len, record_cap;
} collector_t;

static double now_s(void) {
  return (double)jw_now_us() / 1e6;
}

/* Accepts connections one after another and reads octet-counted frames
 * until `want` of them arrived. */
static void collector_main(void *arg) {
  collector_t *c = arg;
  static char buf[1 << 16];
  uint64_t need = 0; /* bytes left of the current frame's message */
  size_t digits = 0;
  uint64_t count = 0;
  while (c->got < c->want) {
    bsock_t s = accept(c->listener, NULL, NULL);
    if (s == BBAD) {
      c->failed = 1;
      return;
    }
    for (;;) {
      long r = (long)recv(s, buf, sizeof(buf), 0);
      long i;
      if (r <= 0)
        break;
      if (c->first_at == 0)
        c->first_at = now_s();
      if (c->record != NULL) {
        if (c->record_cap - c->record_len < (size_t)r) {
          char *p = realloc(c->record, (c->record_cap + (size_t)r) * 2);
          if (p == NULL) {
            c->failed = 1;
            return;
          }
          c->record = p;
          c->record_cap = (c->record_cap + (size_t)r) * 2;
        }
        memcpy(c->record + c->record_len, buf, (size_t)r);
        c->record_len += (size_t)r;
      }
      for (i = 0; i < r;) {
        if (need > 0) {
          uint64_t take = (uint64_t)(r - i) < need ? (uint64_t)(r - i) : need;
          need -= take;
          i += (long)take;
          if (need == 0 && ++c->got == c->want) {
            c->done_at = now_s();
            break;
          }
        } else if (buf[i] == ' ') {
          need = count;
          count = 0;
          digits = 0;
          i++;
        } else {
          count = count * 10 + (uint64_t)(buf[i] - '0');
          digits++;
          i++;
        }
      }
      if (c->got == c->want)
        break;
    }
    bclose(s);
  }
  (void)digits;
}

/* The bytes the sink sent in the first round (frames back to back). */
static char *frames;
static size_t frames_len;

static int collector_open(collector_t *c, struct sockaddr_in *a, uint64_t want) {
  socklen_t alen = sizeof(*a);
  memset(c, 0, sizeof(*c));
  memset(a, 0, sizeof(*a));
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->listener = socket(AF_INET, SOCK_STREAM, 0);
  c->want = want;
  return c->listener == BBAD || bind(c->listener, (struct sockaddr *)a, sizeof(*a)) != 0 ||
                 getsockname(c->listener, (struct sockaddr *)a, &alen) != 0
             ? -1
             : 0;
}

/* One run: seconds from the first jw_emit until the collector read the
 * n-th frame, or -1. */
static double one_run(const jw_run_info_t *run, const char *dir, uint32_t n, int spooled) {
  struct sockaddr_in a;
  collector_t c;
  jw__thread_t t;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  char spec[1400];
  double t0, took;
  uint32_t i;
  if (collector_open(&c, &a, n) != 0 || listen(c.listener, 4) != 0)
    return -1;
  if (frames == NULL && !spooled)
    c.record = malloc(1); /* the first round keeps what the sink sent */
  if (spooled)
    snprintf(spec, sizeof(spec),
             "syslog+tcp://127.0.0.1:%u,spool=%s/bench-spool,max_message=64K,drain=1h",
             (unsigned)ntohs(a.sin_port), dir);
  else
    snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=none,max_message=64K",
             (unsigned)ntohs(a.sin_port));
  if (jw__thread_start(&t, collector_main, &c) != 0)
    return -1;
  memset(&err, 0, sizeof(err));
  if (jw_emitter_new(run, &em) != 0 || jw_exporter_open(spec, &exp, &err) != 0 ||
      jw_emitter_add(em, exp) != 0 || jw_emitter_start(em, n) != 0) {
    fprintf(stderr, "bench_spool: %s\n", err.text);
    return -1;
  }
  t0 = now_s();
  for (i = 0; i < n; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    if (jw_emit(em, &ev) != 0)
      return -1;
  }
  jw_emitter_free(em); /* waits for the writer; the spool's drain delivers the rest */
  jw__thread_join(&t);
  bclose(c.listener);
  if (c.failed || c.got != n) {
    free(c.record);
    return -1;
  }
  if (c.record != NULL) {
    frames = c.record;
    frames_len = c.record_len;
  }
  took = c.done_at - t0;
  return took;
}

/* The JSON line inside a frame "LEN <PRI>1 ... - {...}": from its '{'. */
static const char *frame_next(const char *p, const char *end, const char **msg, size_t *msg_len) {
  size_t len = 0;
  while (p < end && *p != ' ')
    len = len * 10 + (size_t)(*p++ - '0');
  p++;
  *msg = p;
  *msg_len = len;
  return p + len;
}

/* The sender alone: the n lines (taken from the recorded frames) wait in
 * a spool while the collector is down; seconds from the first byte the
 * collector reads to the n-th frame, or -1. by_line: the sink's batch
 * entry is hidden, so the sender hands it one line at a time (export_line:
 * a connection check and a send per line, as before batches). */
static double one_drain(const char *dir, uint32_t n, int round, int by_line) {
  jw_exporter_vtable_t line_vt;
  struct sockaddr_in a;
  collector_t c;
  jw__thread_t t;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  char spec[1400], *line = malloc(1 << 20);
  const char *p = frames, *end = frames + frames_len;
  uint32_t i;
  if (line == NULL || collector_open(&c, &a, n) != 0)
    return -1;
  snprintf(spec, sizeof(spec),
           "syslog+tcp://127.0.0.1:%u,spool=%s/bench-drain-%d-%d,max_message=64K,drain=1h,"
           "retry_max=100ms",
           (unsigned)ntohs(a.sin_port), dir, round, by_line);
  memset(&err, 0, sizeof(err));
  if (jw_exporter_open(spec, &exp, &err) != 0) {
    fprintf(stderr, "bench_spool: %s\n", err.text);
    return -1;
  }
  if (by_line) {
    /* Before the first line: the sender reads vt when it delivers. */
    line_vt = *exp->vt;
    line_vt.deliver_lines = NULL;
    exp->vt = &line_vt;
  }
  for (i = 0; i < n && p < end; i++) {
    const char *msg, *brace;
    size_t msg_len, l;
    p = frame_next(p, end, &msg, &msg_len);
    brace = memchr(msg, '{', msg_len);
    if (brace == NULL)
      return -1;
    l = msg_len - (size_t)(brace - msg);
    memcpy(line, brace, l);
    line[l] = '\n';
    if (jw__spool_append(exp, line, l + 1, 0, &err) != 0)
      return -1;
  }
  free(line);
  /* The collector comes back: the backlog goes. */
  if (listen(c.listener, 4) != 0 || jw__thread_start(&t, collector_main, &c) != 0)
    return -1;
  jw__thread_join(&t);
  jw_exporter_close(exp);
  bclose(c.listener);
  return c.failed || c.got != n ? -1 : c.done_at - c.first_at;
}

/* Plain send() calls of the recorded frames: one per frame (chunk 0) or
 * up to chunk bytes at a time. Seconds from the first send to the n-th
 * frame read, or -1. */
static double one_raw(uint32_t n, size_t chunk) {
  struct sockaddr_in a;
  collector_t c;
  jw__thread_t t;
  bsock_t s;
  const char *p = frames, *end = frames + frames_len;
  double t0;
  if (collector_open(&c, &a, n) != 0 || listen(c.listener, 4) != 0 ||
      jw__thread_start(&t, collector_main, &c) != 0)
    return -1;
  s = socket(AF_INET, SOCK_STREAM, 0);
  if (s == BBAD || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0)
    return -1;
  t0 = now_s();
  while (p < end) {
    const char *msg, *next;
    size_t msg_len, len;
    if (chunk == 0) {
      next = frame_next(p, end, &msg, &msg_len);
      len = (size_t)(next - p);
    } else {
      len = (size_t)(end - p) < chunk ? (size_t)(end - p) : chunk;
    }
    while (len > 0) {
      long w = (long)send(s, p, (int)len, 0);
      if (w <= 0)
        return -1;
      p += w;
      len -= (size_t)w;
    }
  }
  jw__thread_join(&t);
  bclose(s);
  bclose(c.listener);
  return c.failed || c.got != n ? -1 : c.done_at - t0;
}

static double median(double *v) {
  int i, j;
  for (i = 1; i < ROUNDS; i++)
    for (j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double x = v[j];
      v[j] = v[j - 1];
      v[j - 1] = x;
    }
  return v[ROUNDS / 2];
}

int main(int argc, char **argv) {
  const char *dir = bench_dir(argc, argv, "bench_spool DIR [N]");
  uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 50000;
  jw_run_info_t run;
  double direct_t[ROUNDS], spool_t[ROUNDS], drain_t[ROUNDS], line_t[ROUNDS], each_t[ROUNDS];
  double bulk_t[ROUNDS], direct, spool, drain, by_line, each, bulk;
  int r;
#ifdef _WIN32
  WSADATA d;
  WSAStartup(MAKEWORD(2, 2), &d);
#endif
  if (dir == NULL)
    return 2;
  if (n == 0 || jw_run_info_init(&run, "bench", JW_TIER_NONE) != 0)
    return 1;
  for (r = 0; r < ROUNDS; r++) {
    direct_t[r] = one_run(&run, dir, n, 0);
    spool_t[r] = one_run(&run, dir, n, 1);
    drain_t[r] = frames != NULL ? one_drain(dir, n, r, 0) : -1;
    line_t[r] = frames != NULL ? one_drain(dir, n, r, 1) : -1;
    each_t[r] = frames != NULL ? one_raw(n, 0) : -1;
    bulk_t[r] = frames != NULL ? one_raw(n, 256u << 10) : -1;
    if (direct_t[r] < 0 || spool_t[r] < 0 || drain_t[r] < 0 || line_t[r] < 0 || each_t[r] < 0 ||
        bulk_t[r] < 0) {
      fprintf(stderr, "bench_spool: round %d failed\n", r);
      return 1;
    }
  }
  direct = median(direct_t);
  spool = median(spool_t);
  drain = median(drain_t);
  by_line = median(line_t);
  each = median(each_t);
  bulk = median(bulk_t);
  printf("events: %u over syslog+tcp to a collector on 127.0.0.1\n", n);
  printf("spool=none (writer sends)          %9.0f events/s (%.3f s, median of %d)\n", n / direct,
         direct, ROUNDS);
  printf("spool (append, read back, send)    %9.0f events/s (%.3f s, median of %d)\n", n / spool,
         spool, ROUNDS);
  printf("spool / spool=none throughput ratio %.3f\n", direct / spool);
  printf("the sender alone, %u frames (%.0f bytes each on average):\n", n, (double)frames_len / n);
  printf("drain: a spooled backlog delivered    %9.0f lines/s (%.3f s, median of %d)\n", n / drain,
         drain, ROUNDS);
  printf("drain, line by line (export_line)    %9.0f lines/s (%.3f s, median of %d)\n", n / by_line,
         by_line, ROUNDS);
  printf("raw send(), one per frame             %9.0f frames/s (%.3f s, median of %d)\n", n / each,
         each, ROUNDS);
  printf("raw send(), 256 KiB at a time         %9.0f frames/s (%.3f s, median of %d)\n", n / bulk,
         bulk, ROUNDS);
  printf("drain / line by line ratio %.3f, drain / raw one-per-frame %.3f, drain / raw 256 KiB "
         "%.3f\n",
         by_line / drain, each / drain, bulk / drain);
  free(frames);
  return 0;
}

/* The spool's cost (not a test): N events through a syslog+tcp sink to a
 * collector thread on 127.0.0.1 that reads every frame, once through the
 * sink's spool (the default: each line appended to a file on disk, then
 * read back and sent by the sender thread) and once with spool=none (the
 * writer thread sends directly), in alternating rounds; medians; timed
 * until the collector has read the last frame. Builds natively and for
 * Windows (run under Wine). Usage: bench_spool DIR [N]. See
 * docs/performance.md. */
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
  uint64_t want;  /* frames to read */
  uint64_t got;   /* frames read */
  double done_at; /* when the last one was read */
  int failed;
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

/* One run: seconds from the first jw_emit until the collector read the
 * n-th frame, or -1. */
static double one_run(const jw_run_info_t *run, const char *dir, uint32_t n, int spooled) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  collector_t c;
  jw__thread_t t;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  char spec[1400];
  double t0, took;
  uint32_t i;
  memset(&c, 0, sizeof(c));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c.listener = socket(AF_INET, SOCK_STREAM, 0);
  if (c.listener == BBAD || bind(c.listener, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(c.listener, 4) != 0 || getsockname(c.listener, (struct sockaddr *)&a, &alen) != 0)
    return -1;
  c.want = n;
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
  if (c.failed || c.got != n)
    return -1;
  took = c.done_at - t0;
  return took;
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
  const char *dir = argc > 1 ? argv[1] : ".";
  uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 50000;
  jw_run_info_t run;
  double direct_t[ROUNDS], spool_t[ROUNDS], direct, spool;
  int r;
#ifdef _WIN32
  WSADATA d;
  WSAStartup(MAKEWORD(2, 2), &d);
#endif
  if (n == 0 || jw_run_info_init(&run, "bench", JW_TIER_NONE) != 0)
    return 1;
  for (r = 0; r < ROUNDS; r++) {
    direct_t[r] = one_run(&run, dir, n, 0);
    spool_t[r] = one_run(&run, dir, n, 1);
    if (direct_t[r] < 0 || spool_t[r] < 0) {
      fprintf(stderr, "bench_spool: round %d failed\n", r);
      return 1;
    }
  }
  direct = median(direct_t);
  spool = median(spool_t);
  printf("events: %u over syslog+tcp to a collector on 127.0.0.1\n", n);
  printf("spool=none (writer sends)          %9.0f events/s (%.3f s, median of %d)\n", n / direct,
         direct, ROUNDS);
  printf("spool (append, read back, send)    %9.0f events/s (%.3f s, median of %d)\n", n / spool,
         spool, ROUNDS);
  printf("spool / spool=none throughput ratio %.3f\n", direct / spool);
  return 0;
}

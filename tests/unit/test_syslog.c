/* unit: the syslog+udp and syslog+tcp exporters against listeners opened by
 * the test on 127.0.0.1: exact RFC 5424 bytes (PRI, version, timestamp,
 * hostname, MSGID, structured data, MSG == the JSON line), RFC 6587 octet
 * counting, TCP reconnection after the peer closed, losses counted while the
 * collector is down and delivery again once it is back; SPEC errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format.h"
#include "harness.h"
#include "internal.h"

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET tsock_t;
#define TBAD INVALID_SOCKET
static void tclose(tsock_t s) {
  closesocket(s);
}
static unsigned long tpid(void) {
  return (unsigned long)GetCurrentProcessId();
}
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
typedef int tsock_t;
#define TBAD (-1)
static void tclose(tsock_t s) {
  close(s);
}
static unsigned long tpid(void) {
  return (unsigned long)getpid();
}
#endif

/* Closes a connected TCP socket (blocking) gracefully and returns once
 * the peer's kernel has acknowledged the FIN: with SO_LINGER on, Linux's
 * close waits for the connection to leave FIN_WAIT1 (the FIN acked), and
 * Windows' closesocket for the data and the FIN to be acknowledged (at
 * most 5 s). By then the peer's socket (the exporter's) reads as closed:
 * the test goes on from what happened, not after a pause. Returns 0, or
 * -1 when the option could not be set (then the close is plain). */
static int tclose_acked(tsock_t s) {
  struct linger lg;
  int rc;
  lg.l_onoff = 1;
  lg.l_linger = 5;
  rc = setsockopt(s, SOL_SOCKET, SO_LINGER, (const char *)&lg, sizeof(lg));
  tclose(s);
  return rc == 0 ? 0 : -1;
}

/* A socket bound to 127.0.0.1:*port (0: ephemeral, *port receives it). */
static tsock_t tbind(int type, unsigned *port) {
  struct sockaddr_in a;
  tsock_t s = socket(AF_INET, type, 0);
  int one = 1;
#ifdef _WIN32
  int len = sizeof(a);
#else
  socklen_t len = sizeof(a);
#endif
  if (s == TBAD)
    return TBAD;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, (const char *)&one, sizeof(one));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((unsigned short)*port);
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      (type == SOCK_STREAM && listen(s, 4) != 0) ||
      getsockname(s, (struct sockaddr *)&a, &len) != 0) {
    tclose(s);
    return TBAD;
  }
  *port = ntohs(a.sin_port);
  return s;
}

static int twait(tsock_t s, int ms) {
  fd_set r;
  struct timeval tv;
  FD_ZERO(&r);
  FD_SET(s, &r);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return select((int)s + 1, &r, NULL, NULL, &tv) > 0;
}

static tsock_t taccept(tsock_t l) {
  if (!twait(l, 3000))
    return TBAD;
  return accept(l, NULL, NULL);
}

static int trecv_exact(tsock_t s, char *buf, size_t n) {
  while (n > 0) {
    int r;
    if (!twait(s, 3000))
      return -1;
    r = (int)recv(s, buf, (int)n, 0);
    if (r <= 0)
      return -1;
    buf += r;
    n -= (size_t)r;
  }
  return 0;
}

/* One octet-counted frame: returns the message (malloc'd) or NULL. */
static char *trecv_frame(tsock_t s, size_t *len) {
  char digits[16];
  size_t n = 0, want = 0;
  char *msg;
  for (;;) {
    if (n >= sizeof(digits) - 1 || trecv_exact(s, &digits[n], 1) != 0)
      return NULL;
    if (digits[n] == ' ')
      break;
    if (digits[n] < '0' || digits[n] > '9' || (n == 0 && digits[n] == '0'))
      return NULL;
    want = want * 10 + (size_t)(digits[n] - '0');
    n++;
  }
  if (n == 0)
    return NULL;
  msg = malloc(want + 1);
  if (msg == NULL || trecv_exact(s, msg, want) != 0) {
    free(msg);
    return NULL;
  }
  msg[want] = '\0';
  *len = want;
  return msg;
}

static char *trecv_datagram(tsock_t s, size_t *len) {
  char *buf = malloc(70000);
  int r;
  if (buf == NULL || !twait(s, 3000)) {
    free(buf);
    return NULL;
  }
  r = (int)recv(s, buf, 70000, 0);
  if (r < 0) {
    free(buf);
    return NULL;
  }
  buf[r] = '\0';
  *len = (size_t)r;
  return buf;
}

static const char *const sev_names[] = {"info", "low", "medium", "high", "critical"};
static const jw_severity_t sevs[] = {JW_SEV_INFO, JW_SEV_LOW, JW_SEV_MEDIUM, JW_SEV_HIGH,
                                     JW_SEV_CRITICAL};

/* Checks one received message against the expected header and MSG. The
 * timestamp is the one inside MSG (the emitter stamps it). */
static void check_message(const char *got, size_t got_len, const char *line, uint64_t seq,
                          int sev_index) {
  json_t *j;
  json_error_t jerr;
  char want[2048];
  size_t line_len = strlen(line);
  int n;
  CHECK(line_len > 0 && line[line_len - 1] == '\n');
  line_len--;
  j = json_loadb(line, line_len, 0, &jerr);
  CHECK(j != NULL);
  if (j == NULL)
    return;
  CHECK_STR(json_string_value(json_object_get(j, "severity")), sev_names[sev_index]);
  CHECK_INT(json_integer_value(json_object_get(j, "seq")), (long long)seq);
  n = snprintf(want, sizeof(want),
               "<%d>1 %s unit_host_\xC3\xA9 jobwarden %lu sandbox.violation "
               "[jobwarden@32473 run_id=\"ab\\\"c\\\\d\\]e\" seq=\"%llu\"] ",
               128 + 6 - sev_index, json_string_value(json_object_get(j, "@timestamp")), tpid(),
               (unsigned long long)seq);
  json_decref(j);
  CHECK(n > 0 && (size_t)n < sizeof(want));
  /* The hostname: space -> '_', each non-ASCII byte -> '_'. */
  {
    char *p = strstr(want, "unit_host_\xC3\xA9");
    if (p != NULL)
      memcpy(p, "unit_host___", 12);
  }
  CHECK_INT(got_len, strlen(want) + line_len);
  if (got_len == strlen(want) + line_len) {
    CHECK(memcmp(got, want, strlen(want)) == 0);
    CHECK(memcmp(got + strlen(want), line, line_len) == 0);
  }
  if (strncmp(got, want, strlen(want)) != 0)
    fprintf(stderr, "got:  %.*s\nwant: %s\n", (int)strlen(want), got, want);
}

static void run_info(jw_run_info_t *run) {
  memset(run, 0, sizeof(*run));
  /* Hostile values: the SD-PARAM escaping and the HOSTNAME rules show. */
  jw__strlcpy(run->run_id, "ab\"c\\d]e", sizeof(run->run_id));
  jw__strlcpy(run->host, "unit host \xC3\xA9", sizeof(run->host));
  jw__strlcpy(run->job_name, "syslog-unit", sizeof(run->job_name));
  run->tier = JW_TIER_HARDENED;
}

static void make_event(jw_event_t *ev, int i) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = JW_EVENT_VIOLATION;
  ev->rule = "child_process";
  ev->action = "observed";
  ev->enforcer = "kernel";
  ev->source = "port";
  ev->severity = sevs[i % 5];
  ev->has_process = 1;
  ev->process.pid = 4000u + (uint32_t)i;
  ev->process.create_time = 133000000000000000ull + (uint64_t)i;
  ev->process.image = "C:\\agent\\\xC3\xA9t\xC3\xA9.exe";
  snprintf(ev->message, sizeof(ev->message), "syslog event %d \"quoted\" ]", i);
}

/* The file sink's lines, for comparison with MSG. */
static char **read_lines(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  static char buf[70000];
  char **v = NULL;
  size_t n = 0;
  if (f == NULL)
    return NULL;
  while (fgets(buf, sizeof(buf), f) != NULL) {
    char **p = realloc(v, (n + 1) * sizeof(*v));
    if (p == NULL)
      break;
    v = p;
    v[n] = malloc(strlen(buf) + 1);
    if (v[n] == NULL)
      break;
    strcpy(v[n], buf);
    n++;
  }
  fclose(f);
  *count = n;
  return v;
}

static void free_lines(char **v, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void test_specs(void) {
  jw_exporter_t *e = NULL;
  jw_error_t err;
  char spec[128];
  unsigned port = 0;
  tsock_t l;

  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open("syslog+tcp://nohostport", &e, &err), JW_EUSAGE);
  CHECK(e == NULL);
  CHECK_STR(err.text, "--export syslog+tcp://nohostport: expected syslog+tcp://HOST:PORT");
  CHECK_INT(jw_exporter_open("syslog+udp", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp: expected syslog+udp://HOST:PORT");
  CHECK_INT(jw_exporter_open("syslog+udp:127.0.0.1:514", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp:127.0.0.1:514: expected syslog+udp://HOST:PORT");
  CHECK_INT(jw_exporter_open("syslog+udp://:514", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("syslog+udp://::1:514", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("syslog+udp://[::1:514", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("syslog+udp://host:51x", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("syslog+udp://host:", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("syslog+udp://127.0.0.1:65536", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://127.0.0.1:65536: port must be 1..65535");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:0", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:0: port must be 1..65535");
  CHECK_INT(jw_exporter_open("syslog+http://127.0.0.1:1", &e, &err), JW_EUSAGE);
  CHECK_CONTAINS(err.text, "unknown exporter 'syslog+http'");

  /* IPv6 literal in brackets: UDP needs no peer to open. */
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514", &e, &err), 0);
  CHECK(e != NULL);
  jw_exporter_close(e);
  e = NULL;

  /* TCP with nobody listening: a set-up error that names the target. */
  l = tbind(SOCK_STREAM, &port);
  CHECK(l != TBAD);
  tclose(l);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u", port);
  CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EIO);
  CHECK(e == NULL);
  snprintf(spec, sizeof(spec),
           "--export syslog+tcp://127.0.0.1:%u: cannot connect to 127.0.0.1 port %u: ", port, port);
  CHECK_CONTAINS(err.text, spec);
  CHECK(err.sys_error != 0);
}

static void test_udp(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL, *fx = NULL;
  jw_error_t err;
  char spec[1200], path[1024];
  unsigned port = 0;
  tsock_t u = tbind(SOCK_DGRAM, &port);
  char **lines;
  size_t n_lines = 0;
  int i;
  const int N = 5;
  char *got[5];
  size_t got_len[5];

  CHECK(u != TBAD);
  if (u == TBAD)
    return;
  snprintf(path, sizeof(path), "%s/unit-syslog-udp.jsonl.txt", dir);
  remove(path);
  run_info(&run);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "syslog+udp://127.0.0.1:%u", port);
  CHECK_INT(jw_exporter_open(spec, &sx, &err), 0);
  snprintf(spec, sizeof(spec), "file:%s", path);
  CHECK_INT(jw_exporter_open(spec, &fx, &err), 0);
  if (em == NULL || sx == NULL || fx == NULL)
    return;
  jw_emitter_add(em, sx);
  jw_emitter_add(em, fx);
  for (i = 0; i < N; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    got[i] = trecv_datagram(u, &got_len[i]);
    CHECK(got[i] != NULL);
  }
  /* Too big for one datagram: an error for this event, nothing truncated. */
  {
    jw_event_t ev;
    char *big = malloc(66000);
    make_event(&ev, 0);
    memset(big, 'x', 65999);
    big[65999] = '\0';
    ev.extra = json_pack("{s:s}", "padding", big);
    free(big);
    CHECK_INT(jw_emit(em, &ev), JW_EIO);
    CHECK_U64(sx->lost, 1);
    CHECK_U64(sx->written, (uint64_t)N);
    CHECK(!twait(u, 200));
  }
  jw_emitter_free(em);

  lines = read_lines(path, &n_lines);
  CHECK_INT(n_lines, N + 1);
  for (i = 0; i < N && (size_t)i < n_lines; i++) {
    if (got[i] != NULL)
      check_message(got[i], got_len[i], lines[i], (uint64_t)i + 1, i % 5);
  }
  for (i = 0; i < N; i++)
    free(got[i]);
  free_lines(lines, n_lines);
  tclose(u);
  remove(path);
}

static void test_tcp(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL, *fx = NULL;
  jw_error_t err;
  char spec[1200], path[1024];
  unsigned port = 0;
  tsock_t l = tbind(SOCK_STREAM, &port), c;
  char **lines;
  size_t n_lines = 0, len;
  int i;
  char *got[20] = {0};
  size_t got_len[20] = {0};
  uint64_t seqs[20];
  int n_got = 0;

  CHECK(l != TBAD);
  if (l == TBAD)
    return;
  snprintf(path, sizeof(path), "%s/unit-syslog-tcp.jsonl.txt", dir);
  remove(path);
  run_info(&run);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u", port);
  CHECK_INT(jw_exporter_open(spec, &sx, &err), 0);
  snprintf(spec, sizeof(spec), "file:%s", path);
  CHECK_INT(jw_exporter_open(spec, &fx, &err), 0);
  if (em == NULL || sx == NULL || fx == NULL)
    return;
  jw_emitter_add(em, sx);
  jw_emitter_add(em, fx);
  c = taccept(l); /* the exporter connected at init */
  CHECK(c != TBAD);

  /* seq 1..3 on the first connection. */
  for (i = 0; i < 3; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    got[n_got] = trecv_frame(c, &got_len[n_got]);
    seqs[n_got++] = (uint64_t)i + 1;
  }
  /* The collector closes the connection: the next event opens a new one,
   * which first gets the frames sent last on the old connection again (no
   * acknowledgement says they were read), then seq 4. */
  CHECK_INT(tclose_acked(c), 0);
  {
    jw_event_t ev;
    uint64_t k;
    make_event(&ev, 3);
    CHECK_INT(jw_emit(em, &ev), 0);
    c = taccept(l);
    CHECK(c != TBAD);
    for (k = 1; k <= 4; k++) {
      got[n_got] = c != TBAD ? trecv_frame(c, &got_len[n_got]) : NULL;
      seqs[n_got++] = k;
    }
  }
  CHECK_U64(sx->lost, 0);

  /* Collector down: seq 5 and 6 are reported lost, counted per sink. */
  /* Closed and acked; the listener's port is unbound once tclose returns,
   * so a reconnect is refused at once. */
  CHECK_INT(tclose_acked(c), 0);
  tclose(l);
  for (i = 4; i < 6; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), JW_EIO);
    CHECK_U64(sx->lost, (uint64_t)i - 3);
  }
  CHECK_INT(jw_emitter_failed_sinks(em), 1);

  /* Collector back on the same port: the last frames sent (seq 1..4) go
   * again, then events flow (seq 7, 8). */
  l = tbind(SOCK_STREAM, &port);
  CHECK(l != TBAD);
  c = TBAD;
  for (i = 6; i < 8 && l != TBAD; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    if (c == TBAD) {
      uint64_t k;
      c = taccept(l);
      for (k = 1; k <= 4 && c != TBAD; k++) {
        got[n_got] = trecv_frame(c, &got_len[n_got]);
        seqs[n_got++] = k;
      }
    }
    CHECK(c != TBAD);
    got[n_got] = c != TBAD ? trecv_frame(c, &got_len[n_got]) : NULL;
    seqs[n_got++] = (uint64_t)i + 1;
  }
  CHECK_INT(n_got, 3 + 4 + 4 + 2);
  CHECK_U64(sx->lost, 2);
  CHECK_U64(sx->written, 6);
  jw_emitter_free(em);
  /* Nothing else arrived, and the exporter closed its connection. */
  if (c != TBAD) {
    CHECK(trecv_frame(c, &len) == NULL);
    tclose(c);
  }
  if (l != TBAD)
    tclose(l);

  lines = read_lines(path, &n_lines);
  CHECK_INT(n_lines, 8);
  for (i = 0; i < n_got; i++) {
    CHECK(got[i] != NULL);
    if (got[i] != NULL && seqs[i] <= n_lines)
      check_message(got[i], got_len[i], lines[seqs[i] - 1], seqs[i], (int)(seqs[i] - 1) % 5);
    free(got[i]);
  }
  free_lines(lines, n_lines);
  remove(path);
}

/* The RFC 5424 header of a datagram: everything up to the space after the
 * structured data. */
static size_t header_len(const char *msg, size_t len) {
  const char *sd = strstr(msg, "[jobwarden@32473 ");
  const char *end = sd ? strstr(sd, "] ") : NULL;
  return end && (size_t)(end + 2 - msg) <= len ? (size_t)(end + 2 - msg) : 0;
}

/* format=ecs and format=ocsf syslog sinks: the header says the same as the
 * native sink's (OCSF's time has milliseconds), and MSG is the conversion
 * of the native line. */
static void test_udp_formats(void) {
  const char *names[3] = {"native", "ecs", "ocsf"};
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *x[3] = {NULL, NULL, NULL};
  tsock_t u[3];
  unsigned port[3];
  jw_error_t err;
  char spec[256];
  int i, k;
  run_info(&run);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  for (k = 0; k < 3; k++) {
    port[k] = 0; /* ephemeral */
    u[k] = tbind(SOCK_DGRAM, &port[k]);
    CHECK(u[k] != TBAD);
    snprintf(spec, sizeof(spec), "syslog+udp://127.0.0.1:%u,format=%s", port[k], names[k]);
    CHECK_INT(jw_exporter_open(spec, &x[k], &err), 0);
    if (x[k] != NULL)
      jw_emitter_add(em, x[k]);
  }
  if (em == NULL || x[0] == NULL || x[1] == NULL || x[2] == NULL)
    return;
  for (i = 0; i < 5; i++) {
    jw_event_t ev;
    char *got[3];
    size_t len[3], h[3];
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    for (k = 0; k < 3; k++) {
      got[k] = trecv_datagram(u[k], &len[k]);
      CHECK(got[k] != NULL);
      h[k] = got[k] ? header_len(got[k], len[k]) : 0;
      CHECK(h[k] > 0);
    }
    if (got[0] && got[1] && got[2] && h[0] && h[1] && h[2]) {
      char *conv = NULL, want[1024];
      const char *ts = strchr(got[0], ' ') + 1; /* after "<PRI>1 " */
      size_t clen = 0, pre = (size_t)(ts - got[0]);
      /* ecs: the same header byte for byte. */
      CHECK_INT(h[1], h[0]);
      CHECK(h[1] == h[0] && memcmp(got[0], got[1], h[0]) == 0);
      /* ocsf: the same header with the time cut to milliseconds
       * ("...T09:11:05.123456Z" -> "...T09:11:05.123Z"). */
      snprintf(want, sizeof(want), "%.*s%.23sZ%.*s", (int)pre, got[0], ts, (int)(h[0] - pre - 27),
               ts + 27);
      CHECK_INT(h[2], strlen(want));
      CHECK(h[2] == strlen(want) && memcmp(got[2], want, h[2]) == 0);
      for (k = 1; k < 3; k++) {
        CHECK_INT(jw_format_line((jw_format_t)k, got[0] + h[0], len[0] - h[0], &conv, &clen), 0);
        CHECK_INT(len[k] - h[k], clen - 1);
        CHECK(conv != NULL && len[k] - h[k] == clen - 1 &&
              memcmp(got[k] + h[k], conv, clen - 1) == 0);
        free(conv);
        conv = NULL;
      }
    }
    for (k = 0; k < 3; k++)
      free(got[k]);
  }
  jw_emitter_free(em);
  for (k = 0; k < 3; k++)
    tclose(u[k]);
}

int main(int argc, char **argv) {
  const char *out = argc > 2 ? argv[2] : ".";
#ifdef _WIN32
  WSADATA d;
  WSAStartup(MAKEWORD(2, 2), &d);
#endif
  test_specs();
  test_udp(out);
  test_tcp(out);
  test_udp_formats();
  return jw_test_result("syslog");
}

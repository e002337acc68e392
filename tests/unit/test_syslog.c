/* unit: the syslog+udp and syslog+tcp exporters against listeners opened by
 * the test on 127.0.0.1: exact RFC 5424 bytes (PRI from facility=, version,
 * timestamp, hostname, MSGID, no structured data or sd_id=, MSG == the JSON
 * line), RFC 6587 octet counting, TCP reconnection after the peer closed;
 * the spool: nothing lost while the collector is down, delivered in order
 * with the outage's notices once it is back, what a run could not deliver
 * delivered by the next one, a full spool's loss counted; batches from the
 * spool: one buffer whose short sends go on from the first byte not taken,
 * a connection broken mid-batch resent from the first line not sent whole
 * (byte for byte), a line that can never be sent skipped mid-batch with one
 * sink_failed; SPEC errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format.h"
#include "harness.h"
#include "test_util.h"
#include "internal.h"
#include "fileio.h"
#include "parts.h"
#include "spool.h"
/* The exporter's test seam (the tests include src/ only). */
#include "../../exporters/syslog/syslog.h"

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

/* The collector's side. collector_listen: a listening TCP socket on *port
 * (0: any; the port chosen is written back); collector_accept: the
 * exporter's next connection on it. TBAD when it failed (a CHECK says so). */
static tsock_t collector_listen(unsigned *port) {
  tsock_t l = tbind(SOCK_STREAM, port);
  CHECK(l != TBAD);
  return l;
}

static tsock_t collector_accept(tsock_t l) {
  tsock_t c = l != TBAD ? taccept(l) : TBAD;
  CHECK(c != TBAD);
  return c;
}

static const char *const sev_names[] = {"info", "low", "medium", "high", "critical"};
static const jw_severity_t sevs[] = {JW_SEV_INFO, JW_SEV_LOW, JW_SEV_MEDIUM, JW_SEV_HIGH,
                                     JW_SEV_CRITICAL};

/* Checks one received message against the expected header and MSG. The
 * timestamp is the one inside MSG (the emitter stamps it). facility: the
 * code; sd_id: NULL for none ("-"). */
static void check_message_sd(const char *got, size_t got_len, const char *line, int facility,
                             const char *sd_id) {
  json_t *j;
  json_error_t jerr;
  char want[2048], sd[300];
  size_t line_len = strlen(line);
  int n, sev_index;
  const char *sev;
  CHECK(line_len > 0 && line[line_len - 1] == '\n');
  line_len--;
  j = json_loadb(line, line_len, 0, &jerr);
  CHECK(j != NULL);
  if (j == NULL)
    return;
  sev = json_string_value(json_object_get(j, "severity"));
  for (sev_index = 0; sev_index < 5 && sev != NULL && strcmp(sev, sev_names[sev_index]) != 0;
       sev_index++)
    ;
  CHECK(sev_index < 5);
  if (sd_id != NULL)
    snprintf(sd, sizeof(sd), "[%s run_id=\"%s\" seq=\"%lld\"]", sd_id,
             strcmp(json_string_value(json_object_get(j, "run_id")), "ab\"c\\d]e") == 0
                 ? "ab\\\"c\\\\d\\]e"
                 : json_string_value(json_object_get(j, "run_id")),
             (long long)json_integer_value(json_object_get(j, "seq")));
  else
    snprintf(sd, sizeof(sd), "-");
  n = snprintf(want, sizeof(want), "<%d>1 %s unit_host_\xC3\xA9 jobwarden %lu %s %s ",
               facility * 8 + 6 - sev_index, json_string_value(json_object_get(j, "@timestamp")),
               tpid(), json_string_value(json_object_get(j, "event")), sd);
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

/* Removes a directory tree the test made (two levels: root/run/file). */
static void rm_tree(const char *path) {
  char **names = NULL;
  size_t n = 0, i;
  jw_error_t err;
  memset(&err, 0, sizeof(err));
  if (jw__dir_list(path, &names, &n, &err) == 0) {
    for (i = 0; i < n; i++) {
      char sub[1400];
      snprintf(sub, sizeof(sub), "%s%c%s", path, JW_PATH_SEP, names[i]);
      if (jw__file_remove(sub, &err) != 0)
        rm_tree(sub);
    }
    jw__dir_list_free(names, n);
  }
  jw__dir_remove(path, &err);
}

/* The run directories in a spool root. */
static size_t count_runs(const char *root) {
  char **names = NULL;
  size_t n = 0;
  jw_error_t err;
  memset(&err, 0, sizeof(err));
  if (jw__dir_list(root, &names, &n, &err) != 0)
    return 0;
  jw__dir_list_free(names, n);
  return n;
}

/* The RFC 5424 header of a datagram: everything before MSG's '{'. */
static size_t header_len(const char *msg, size_t len) {
  const char *brace = memchr(msg, '{', len);
  return brace != NULL ? (size_t)(brace - msg) : 0;
}

/* The spool tests' rig: an emitter with a syslog+tcp sink on port
 * spooled to DIR/unit-syslog-spool-NAME (made anew; its path in root),
 * with OPTS after the spool option, and, when path != NULL, a file sink
 * DIR/unit-syslog-NAME.jsonl.txt (made anew). NULL when something failed
 * (a CHECK says what). */
static jw_emitter_t *spool_rig(const char *dir, const char *name, unsigned port, const char *opts,
                               jw_run_info_t *run, jw_exporter_t **sx, char *root, size_t root_size,
                               char *path, size_t path_size) {
  jw_emitter_t *em = NULL;
  jw_exporter_t *fx = NULL;
  jw_error_t err;
  char spec[1500];
  snprintf(root, root_size, "%s/unit-syslog-spool-%s", dir, name);
  rm_tree(root);
  run_info(run);
  *sx = NULL;
  CHECK_INT(jw_emitter_new(run, &em), 0);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=%s%s", port, root, opts);
  CHECK_INT(jw_exporter_open(spec, sx, &err), 0);
  if (em == NULL || *sx == NULL)
    return NULL;
  jw_emitter_add(em, *sx);
  if (path != NULL) {
    snprintf(path, path_size, "%s/unit-syslog-%s.jsonl.txt", dir, name);
    remove(path);
    snprintf(spec, sizeof(spec), "file:%s", path);
    CHECK_INT(jw_exporter_open(spec, &fx, &err), 0);
    if (fx == NULL)
      return NULL;
    jw_emitter_add(em, fx);
  }
  return em;
}

/* Events from..to-1 of make_event, each emitted (and taken) at once. */
static void emit_range(jw_emitter_t *em, int from, int to) {
  int i;
  for (i = from; i < to; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
}

static void test_specs(const char *dir) {
  jw_exporter_t *e = NULL;
  jw_error_t err;
  char spec[1400], want[1500], root[1200];
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
  /* The options, from their rows. */
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,facility=local9", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:514,facility=local9: facility: expected kern, "
                      "user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, "
                      "ntp, audit, alert, clock, local0, local1, local2, local3, local4, local5, "
                      "local6 or local7, got \"local9\"");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,sd_id=jobwarden", &e, &err), JW_EUSAGE);
  CHECK_CONTAINS(err.text, "sd_id: expected NAME@PEN (at most 32 printable characters");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,sd_id=a b@12", &e, &err), JW_EUSAGE);
  CHECK_CONTAINS(err.text, "got \"a b@12\"");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,sd_id=jobwarden@32473", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:514,sd_id=jobwarden@32473: sd_id: 32473 is "
                      "the enterprise number reserved for documentation (RFC 5612); use your "
                      "organisation's own number, or no sd_id");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,max_message=70000", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:514,max_message=70000: max_message: a UDP "
                      "datagram holds at most 65000 bytes");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,max_message=512", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:514,max_message=512: max_message: expected a "
                      "size like \"64M\" from 1K to 64M, got \"512\"");
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,spool=x", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://[::1]:514,spool=x: unknown option 'spool' "
                      "(expected facility=NAME, sd_id=NAME@PEN, max_message=SIZE, "
                      "format=native|ecs|ocsf)");
  CHECK_INT(jw_exporter_open("syslog+tcp://[::1]:514,drain=2d", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+tcp://[::1]:514,drain=2d: drain: expected a duration "
                      "like \"10s\" from 0s to 1h, got \"2d\"");
  CHECK_INT(jw_exporter_open("syslog+tcp://[::1]:514,spool_max=1K", &e, &err), JW_EUSAGE);
  CHECK_CONTAINS(err.text, "spool_max: expected a size like \"64M\", at least 64K, got \"1K\"");
  CHECK_INT(jw_exporter_open("syslog+tcp://[::1]:514,retry_max=10ms", &e, &err), JW_EUSAGE);
  CHECK_CONTAINS(err.text, "retry_max: expected a duration like \"10s\" from 100ms to 1h");
  CHECK_INT(jw_exporter_open("syslog+tcp://[::1]:514,spool=", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+tcp://[::1]:514,spool=: spool: expected spool=DIR");

  /* IPv6 literal in brackets: UDP needs no peer to open. */
  CHECK_INT(jw_exporter_open("syslog+udp://[::1]:514,facility=auth,sd_id=probe@1.3.6", &e, &err),
            0);
  CHECK(e != NULL);
  jw_exporter_close(e);
  e = NULL;

  /* TCP with nobody listening and no spool: a set-up error that names the
   * target. */
  l = collector_listen(&port);
  tclose(l);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=none", port);
  CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EIO);
  CHECK(e == NULL);
  snprintf(want, sizeof(want),
           "--export syslog+tcp://127.0.0.1:%u,spool=none: cannot connect to 127.0.0.1 port %u: ",
           port, port);
  CHECK_CONTAINS(err.text, want);
  CHECK(err.sys_error != 0);
  /* With a spool it opens (the spool holds the lines until it comes): a
   * run directory with its lock, sink and cursor; removed at the close
   * when nothing waits. */
  snprintf(root, sizeof(root), "%s/unit-syslog-spool-specs", dir);
  rm_tree(root);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=%s,drain=0s", port, root);
  CHECK_INT(jw_exporter_open(spec, &e, &err), 0);
  CHECK(e != NULL && e->spool != NULL);
  CHECK_INT(count_runs(root), 1);
  jw_exporter_close(e);
  e = NULL;
  CHECK_INT(count_runs(root), 0);
  /* A spool directory that cannot be made: a set-up error. */
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=%s/unit-syslog.jsonl.txt/x", port,
           dir);
  {
    FILE *f;
    char file[1300];
    snprintf(file, sizeof(file), "%s/unit-syslog.jsonl.txt", dir);
    f = fopen(file, "wb");
    if (f != NULL)
      fclose(f);
    CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EIO);
    CHECK(e == NULL);
    snprintf(want, sizeof(want), "--export %s: spool: cannot create directory", spec);
    CHECK_CONTAINS(err.text, want);
    remove(file);
  }
  rm_tree(root);
}

static void test_udp(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL, *fx = NULL, *dx = NULL;
  jw_error_t err;
  char spec[1200], path[1024];
  unsigned port = 0, port2 = 0;
  tsock_t u = tbind(SOCK_DGRAM, &port), u2 = tbind(SOCK_DGRAM, &port2);
  char **lines;
  size_t n_lines = 0;
  int i;
  const int N = 5;
  char *got[5], *got2[5], *big_line = NULL;
  size_t got_len[5], got2_len[5], big_len = 0;

  CHECK(u != TBAD && u2 != TBAD);
  if (u == TBAD || u2 == TBAD)
    return;
  snprintf(path, sizeof(path), "%s/unit-syslog-udp.jsonl.txt", dir);
  remove(path);
  run_info(&run);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "syslog+udp://127.0.0.1:%u", port);
  CHECK_INT(jw_exporter_open(spec, &sx, &err), 0);
  /* facility=auth (4) and structured data under a test number. */
  snprintf(spec, sizeof(spec), "syslog+udp://127.0.0.1:%u,sd_id=probe@1.3.6,facility=auth", port2);
  CHECK_INT(jw_exporter_open(spec, &dx, &err), 0);
  snprintf(spec, sizeof(spec), "file:%s", path);
  CHECK_INT(jw_exporter_open(spec, &fx, &err), 0);
  if (em == NULL || sx == NULL || fx == NULL || dx == NULL)
    return;
  jw_emitter_add(em, sx);
  jw_emitter_add(em, dx);
  jw_emitter_add(em, fx);
  for (i = 0; i < N; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    got[i] = trecv_datagram(u, &got_len[i]);
    got2[i] = trecv_datagram(u2, &got2_len[i]);
    CHECK(got[i] != NULL && got2[i] != NULL);
  }
  jw_emitter_free(em);
  /* Too big for one message (max_message=8K): continuation records, each
   * a datagram with the event's header and at most 8K, that put together
   * give the line byte for byte. (A run of its own: continuation records
   * name the run, whose id is always hex; this test's other run has a
   * hostile one for the SD escaping.) */
  {
    jw_run_info_t run2;
    jw_emitter_t *em2 = NULL;
    jw_exporter_t *sx2 = NULL, *fx2 = NULL;
    jw_event_t ev;
    char *big = malloc(66000), path2[1100];
    jw__parts_t *pr = jw__parts_new();
    int whole = 0, parts = 0;
    char **l2;
    size_t n2 = 0;
    run_info(&run2);
    jw__strlcpy(run2.run_id, "0123456789abcdef0123456789abcdef", sizeof(run2.run_id));
    snprintf(path2, sizeof(path2), "%s/unit-syslog-udp-big.jsonl.txt", dir);
    remove(path2);
    CHECK_INT(jw_emitter_new(&run2, &em2), 0);
    snprintf(spec, sizeof(spec), "syslog+udp://127.0.0.1:%u", port);
    CHECK_INT(jw_exporter_open(spec, &sx2, &err), 0);
    snprintf(spec, sizeof(spec), "file:%s", path2);
    CHECK_INT(jw_exporter_open(spec, &fx2, &err), 0);
    if (em2 == NULL || sx2 == NULL || fx2 == NULL || big == NULL || pr == NULL)
      return;
    jw_emitter_add(em2, sx2);
    jw_emitter_add(em2, fx2);
    make_event(&ev, 0);
    memset(big, 'x', 65999);
    big[65999] = '\0';
    ev.extra = json_pack("{s:s}", "padding", big);
    free(big);
    CHECK_INT(jw_emit(em2, &ev), 0);
    CHECK_U64(sx2->lost, 0);
    CHECK_U64(sx2->written, 1);
    while (!whole && parts < 20) {
      size_t dlen = 0, h;
      char *d = trecv_datagram(u, &dlen);
      jw__part_result_t res;
      CHECK(d != NULL);
      if (d == NULL)
        break;
      parts++;
      CHECK(dlen <= 8192);
      h = header_len(d, dlen);
      CHECK(h > 0 && strncmp(d + h, "{\"jobwarden_part\":", 18) == 0);
      memset(&res, 0, sizeof(res));
      if (jw__parts_feed(pr, d, dlen, (uint64_t)parts, &res) == JW_PARTS_WHOLE) {
        whole = 1;
        big_line = res.whole;
        big_len = res.whole_len;
      }
      free(d);
    }
    CHECK(whole);
    CHECK(parts >= 9);
    jw__parts_free(pr);
    CHECK(!twait(u, 200));
    jw_emitter_free(em2);
    l2 = read_lines(path2, &n2);
    CHECK_INT(n2, 1);
    if (n2 == 1 && big_line != NULL) {
      CHECK_INT(big_len + 1, strlen(l2[0]));
      CHECK(big_len + 1 == strlen(l2[0]) && memcmp(big_line, l2[0], big_len) == 0);
    }
    free_lines(l2, n2);
    free(big_line);
    remove(path2);
  }

  lines = read_lines(path, &n_lines);
  CHECK_INT(n_lines, N);
  for (i = 0; i < N && (size_t)i < n_lines; i++) {
    if (got[i] != NULL)
      check_message_sd(got[i], got_len[i], lines[i], 16, NULL);
    if (got2[i] != NULL)
      check_message_sd(got2[i], got2_len[i], lines[i], 4, "probe@1.3.6");
  }
  for (i = 0; i < N; i++) {
    free(got[i]);
    free(got2[i]);
  }
  free_lines(lines, n_lines);
  tclose(u);
  tclose(u2);
  remove(path);
}

/* Receives frames from c until `want` of them or a timeout; appends. */
static int recv_frames(tsock_t c, char **got, size_t *got_len, int n_got, int want) {
  while (n_got < want) {
    got[n_got] = trecv_frame(c, &got_len[n_got]);
    if (got[n_got] == NULL)
      break;
    n_got++;
  }
  return n_got;
}

/* The rule of a received message's MSG ("" if none). */
static const char *frame_rule(const char *msg, char *buf, size_t size) {
  const char *r = strstr(msg, "\"rule\":\"");
  size_t n = 0;
  buf[0] = '\0';
  if (r != NULL) {
    r += 8;
    while (r[n] != '"' && n + 1 < size)
      n++;
    memcpy(buf, r, n);
    buf[n] = '\0';
  }
  return buf;
}

static void test_tcp(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL;
  char path[1024], root[1100], rule[64];
  unsigned port = 0;
  tsock_t l = collector_listen(&port), c;
  char **lines;
  size_t n_lines = 0, len;
  int i, n_got = 0, first_after;
  char *got[64] = {0};
  size_t got_len[64] = {0};

  if (l == TBAD)
    return;
  em = spool_rig(dir, "tcp", port, ",retry_max=200ms", &run, &sx, root, sizeof(root), path,
                 sizeof(path));
  if (em == NULL)
    return;

  /* seq 1..3 on the first connection (made at the first delivery). */
  emit_range(em, 0, 3);
  c = collector_accept(l);
  n_got = recv_frames(c, got, got_len, n_got, 3);
  CHECK_INT(n_got, 3);
  /* The collector closes the connection: the next event opens a new one,
   * which first gets the frames sent last on the old connection again (no
   * acknowledgement says they were read), then seq 4. */
  CHECK_INT(tclose_acked(c), 0);
  {
    jw_event_t ev;
    make_event(&ev, 3);
    CHECK_INT(jw_emit(em, &ev), 0);
    c = collector_accept(l);
    if (c != TBAD)
      n_got = recv_frames(c, got, got_len, n_got, 3 + 4);
    CHECK_INT(n_got, 7);
  }
  CHECK_U64(sx->lost, 0);

  /* Collector down: seq 5 and 6 wait in the spool; nothing is lost, and
   * the outage is a notice (sink_unreachable) in every stream. */
  CHECK_INT(tclose_acked(c), 0);
  tclose(l);
  for (i = 4; i < 6; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  {
    jw__spool_stats_t st;
    int tries;
    /* The sender's failed attempt (it retries every 200 ms at most). */
    for (tries = 0; tries < 300; tries++) {
      CHECK_INT(jw__spool_stats(sx, &st), 0);
      if (st.down)
        break;
      jw__spool_wait(sx, 10);
    }
    CHECK(st.down);
    CHECK(st.pending >= 2);
  }
  CHECK_U64(sx->lost, 0);
  CHECK_INT(jw_emitter_failed_sinks(em), 0);

  /* Collector back on the same port: the last frames sent (seq 1..4) go
   * again, then everything spooled, in order: 5, 6, the notices. */
  l = collector_listen(&port);
  c = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  for (i = 6; i < 8; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  CHECK_U64(sx->lost, 0);
  jw_emitter_free(em);
  lines = read_lines(path, &n_lines);
  /* 8 events, sink_unreachable, sink_recovered. */
  CHECK_INT(n_lines, 10);
  first_after = n_got;
  if (c != TBAD)
    n_got = recv_frames(c, got, got_len, n_got, first_after + 4 + (int)n_lines - 4);
  CHECK_INT(n_got, 7 + 4 + 10 - 4);
  /* Nothing else arrived, and the exporter closed its connection. */
  if (c != TBAD) {
    CHECK(trecv_frame(c, &len) == NULL);
    tclose(c);
  }
  if (l != TBAD)
    tclose(l);
  /* What arrived: 1 2 3 | 1 2 3 4 | 1 2 3 4 then lines 5..10 of the file. */
  for (i = 0; i < n_got && n_lines == 10; i++) {
    size_t want = i < 3    ? (size_t)i
                  : i < 7  ? (size_t)(i - 3)
                  : i < 11 ? (size_t)(i - 7)
                           : (size_t)(i - 7);
    check_message_sd(got[i], got_len[i], lines[want], 16, NULL);
  }
  {
    int unreachable = 0, recovered = 0;
    size_t k;
    for (k = 0; k < n_lines; k++) {
      unreachable += strcmp(frame_rule(lines[k], rule, sizeof(rule)), "sink_unreachable") == 0;
      recovered += strcmp(frame_rule(lines[k], rule, sizeof(rule)), "sink_recovered") == 0;
    }
    CHECK_INT(unreachable, 1);
    CHECK_INT(recovered, 1);
  }
  for (i = 0; i < n_got; i++)
    free(got[i]);
  free_lines(lines, n_lines);
  /* Everything was delivered: the run's directory is gone. */
  CHECK_INT(count_runs(root), 0);
  rm_tree(root);
  remove(path);
}

/* A run that could not deliver leaves its lines in the spool; the next
 * exporter on the same spool delivers them first, byte for byte, then its
 * own; `flush` (jw__spool_open_flush) delivers leftovers alone. */
static void test_spool_restart(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL;
  jw_error_t err;
  char spec[1400], path[1024], root[1100];
  unsigned port = 0;
  tsock_t l = collector_listen(&port), c;
  char **lines;
  size_t n_lines = 0;
  int i, n_got = 0;
  char *got[32] = {0};
  size_t got_len[32] = {0};

  if (l == TBAD)
    return;
  tclose(l); /* the collector is down during the first run */
  /* Run 1: 4 events, no collector, drain=0s. */
  em = spool_rig(dir, "restart", port, ",drain=0s", &run, &sx, root, sizeof(root), path,
                 sizeof(path));
  if (em == NULL)
    return;
  emit_range(em, 0, 4);
  jw_emitter_free(em); /* sink_unreachable may be in it too */
  CHECK_INT(count_runs(root), 1);
  lines = read_lines(path, &n_lines);
  CHECK(n_lines == 4 || n_lines == 5);

  /* Run 2 on the same spool, the collector up: run 1's lines first. */
  l = collector_listen(&port);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=%s", port, root);
  sx = NULL;
  CHECK_INT(jw_exporter_open(spec, &sx, &err), 0);
  if (sx == NULL || l == TBAD)
    return;
  {
    jw__spool_stats_t st;
    CHECK_INT(jw__spool_stats(sx, &st), 0);
    CHECK_U64(st.adopted, n_lines);
  }
  c = collector_accept(l);
  if (c != TBAD)
    n_got = recv_frames(c, got, got_len, 0, (int)n_lines);
  CHECK_INT(n_got, (int)n_lines);
  for (i = 0; i < n_got; i++)
    check_message_sd(got[i], got_len[i], lines[i], 16, NULL);
  CHECK_INT(jw__spool_wait(sx, 5000), 0);
  jw_exporter_close(sx);
  CHECK_INT(count_runs(root), 0); /* both directories delivered and gone */
  for (i = 0; i < n_got; i++)
    free(got[i]);
  free_lines(lines, n_lines);
  if (c != TBAD)
    tclose(c);
  tclose(l);
  rm_tree(root);
  remove(path);
}

/* A collector that accepts and never reads: the sender's send waits for
 * room at most 5 s, then the attempt has failed (sink_unreachable); the
 * lines stay in the spool, nothing is lost, and once the collector reads
 * they all arrive (with at most the resent frames twice). */
/* Marks the seq of each frame read from s until it has nothing more for
 * ms milliseconds or is closed; returns the number of new seqs. */
static size_t read_seqs(tsock_t s, char *seen, unsigned long max, int ms) {
  size_t have = 0;
  char *m;
  size_t len;
  while (twait(s, ms) && (m = trecv_frame(s, &len)) != NULL) {
    const char *q = strstr(m, "\"seq\":");
    unsigned long v = q ? strtoul(q + 6, NULL, 10) : 0;
    if (v > 0 && v <= max && !seen[v]) {
      seen[v] = 1;
      have++;
    }
    free(m);
  }
  return have;
}

static void test_stall(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL;
  char root[1100];
  unsigned port = 0;
  tsock_t l = tbind(SOCK_STREAM, &port), c = TBAD;
  int i, small = 4096, tries;
  const int N = 8000; /* ~6 MB: more than the kernel's buffers hold (~3 MB) */
  jw__spool_stats_t st;
  uint64_t t0;
  char *seen = calloc((size_t)N + 8, 1);
  size_t have = 0;

  CHECK(l != TBAD && seen != NULL);
  if (l == TBAD || seen == NULL)
    return;
  setsockopt(l, SOL_SOCKET, SO_RCVBUF, (const char *)&small, sizeof(small));
  em = spool_rig(dir, "stall", port, ",retry_max=200ms,drain=0s", &run, &sx, root, sizeof(root),
                 NULL, 0);
  if (em == NULL)
    return;
  for (i = 0; i < N; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    CHECK_INT(jw_emit(em, &ev), 0);
    if (i == 0) {
      /* Accepted and never read (yet); no other connection is taken
       * meanwhile (a listening socket's kernel would take some and hold
       * their bytes unread too). */
      c = taccept(l);
      tclose(l);
      l = TBAD;
    }
  }
  CHECK(c != TBAD);
  /* The sender gives up on the stalled connection within ~5 s. */
  t0 = jw_now_us();
  memset(&st, 0, sizeof(st));
  while (jw__spool_stats(sx, &st) == 0 && !st.down && st.pending > 0 &&
         jw_now_us() - t0 < 30000000u)
    jw__spool_wait(sx, 20);
  CHECK(st.down);
  CHECK(st.pending > 0);
  CHECK_U64(sx->lost, 0);
  printf("stall: the sender gave up after %llu ms with %llu line(s) pending\n",
         (unsigned long long)((jw_now_us() - t0) / 1000u), (unsigned long long)st.pending);
  /* The collector reads again: what the stalled connection holds, then
   * the connections the sender makes until its spool is empty. */
  if (c != TBAD)
    have += read_seqs(c, seen, (unsigned long)N + 4, 2000);
  l = collector_listen(&port);
  for (tries = 0; tries < 20 && have < (size_t)N + 1 && l != TBAD; tries++) {
    tsock_t n2 = taccept(l);
    if (n2 == TBAD)
      continue;
    have += read_seqs(n2, seen, (unsigned long)N + 4, 1000);
    tclose(n2);
  }
  /* Every event and the sink_unreachable notice (sink_recovered may still
   * be on its way). */
  CHECK(have >= (size_t)N + 1);
  for (i = 1; i <= N; i++)
    if (!seen[i]) {
      CHECK(!"an event never arrived");
      fprintf(stderr, "seq %d missing\n", i);
      break;
    }
  CHECK_U64(sx->lost, 0);
  free(seen);
  jw_emitter_free(em);
  if (c != TBAD)
    tclose(c);
  if (l != TBAD)
    tclose(l);
  rm_tree(root);
}

/* A full spool: what does not fit is lost for that sink, counted, and
 * recorded in its stream as a telemetry_gap once it has room again. */
static void test_spool_full(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *sx = NULL;
  char root[1100];
  unsigned port = 0;
  tsock_t l = collector_listen(&port), c;
  int i, n_got = 0, gaps = 0, events = 0;
  uint64_t emitted;
  char *got[400] = {0};
  size_t got_len[400] = {0};
  uint64_t lost;

  if (l == TBAD)
    return;
  tclose(l);
  em = spool_rig(dir, "full", port, ",spool_max=64K,retry_max=100ms", &run, &sx, root, sizeof(root),
                 NULL, 0);
  if (em == NULL)
    return;
  CHECK_INT(jw_emitter_start(em, 1024), 0);
  /* ~700-byte lines: 64K holds about 90 of them. */
  for (i = 0; i < 200; i++) {
    jw_event_t ev;
    make_event(&ev, i);
    jw_emit(em, &ev);
  }
  CHECK_INT(jw_emitter_settle(em, 5000), 0);
  lost = sx->lost;
  CHECK(lost > 50 && lost < 150);
  /* The collector comes; one more event: the gap record goes first. */
  l = tbind(SOCK_STREAM, &port);
  c = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  {
    jw_event_t ev;
    make_event(&ev, 200);
    jw_emit(em, &ev);
  }
  CHECK_INT(jw_emitter_settle(em, 5000), 0);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  emitted = jw_emitter_count(em);
  CHECK_U64(sx->lost, lost); /* no more since */
  jw_emitter_free(em);
  if (c != TBAD)
    n_got = recv_frames(c, got, got_len, 0, 400);
  for (i = 0; i < n_got; i++) {
    if (strstr(got[i], "\"event\":\"sandbox.telemetry_gap\"") != NULL) {
      char want[64];
      gaps++;
      snprintf(want, sizeof(want), "\"count\":%llu", (unsigned long long)lost);
      CHECK(strstr(got[i], want) != NULL);
    } else {
      events++;
    }
    free(got[i]);
  }
  /* Every line the run made arrived, or is in the one gap record. */
  CHECK_INT(gaps, 1);
  CHECK_U64((uint64_t)events + lost, emitted);
  if (c != TBAD)
    tclose(c);
  if (l != TBAD)
    tclose(l);
  rm_tree(root);
}

/* --- batches from the spool ---------------------------------------------------- */

/* The send hook (exporters/syslog/syslog.h): caps every send at hook_cap
 * bytes (0: no cap) and fails the send that comes once hook_fail_at bytes
 * have passed (-1: never; it fails once, then lets everything through). */
static volatile long hook_cap, hook_fail_at, hook_passed, hook_calls;
/* hook_hold: the next send waits (hook_held = 1) until the test clears
 * hook_hold, so that lines pile up behind a connection in use.
 * hook_hold_after_fail: the failed send sets hook_hold (the test looks at
 * the spool between the failed attempt and the next). */
static volatile int hook_hold, hook_held, hook_hold_after_fail;

static void tsleep_ms(unsigned ms) {
#ifdef _WIN32
  Sleep(ms);
#else
  struct timespec ts;
  ts.tv_sec = 0;
  ts.tv_nsec = (long)ms * 1000000L;
  nanosleep(&ts, NULL);
#endif
}

static long test_send_hook(size_t len) {
  long cap = len > 0x7fffffff ? 0x7fffffff : (long)len;
  if (hook_hold) {
    hook_held = 1;
    while (hook_hold)
      tsleep_ms(1);
  }
  hook_calls++;
  if (hook_fail_at >= 0) {
    if (hook_passed >= hook_fail_at) {
      hook_fail_at = -1;
      if (hook_hold_after_fail)
        hook_hold = 1;
      return -1;
    }
    if (cap > hook_fail_at - hook_passed)
      cap = hook_fail_at - hook_passed;
  }
  if (hook_cap > 0 && cap > hook_cap)
    cap = hook_cap;
  hook_passed += cap;
  return cap;
}

static void hook_set(long cap, long fail_at) {
  hook_hold = 0;
  hook_held = 0;
  hook_hold_after_fail = 0;
  hook_cap = cap;
  hook_fail_at = fail_at;
  hook_passed = 0;
  hook_calls = 0;
  jw__syslog_send_hook(test_send_hook);
}

/* Line i of the batch tests (native format, what the header needs), with
 * its newline, and the exact octet-counted frame the exporter makes of it
 * (facility local0, severity info: PRI 134; no structured data). */
static void batch_line(int i, char *line, size_t line_size, char *frame, size_t frame_size,
                       size_t *frame_len) {
  char msg[1024];
  int n;
  snprintf(line, line_size,
           "{\"@timestamp\":\"2026-12-02T10:00:%02d.000000Z\",\"event\":\"sandbox.violation\","
           "\"severity\":\"info\",\"host\":{\"name\":\"batch-host\"},\"run_id\":\"batch-run\","
           "\"seq\":%d,\"message\":\"batch line %d %.*s\"}\n",
           i % 60, i + 1, i, 40 + (i * 37) % 300,
           "................................................................................"
           "................................................................................"
           "................................................................................"
           "................................................................................");
  n = snprintf(msg, sizeof(msg),
               "<134>1 2026-12-02T10:00:%02d.000000Z batch-host jobwarden %lu "
               "sandbox.violation - %.*s",
               i % 60, tpid(), (int)(strlen(line) - 1), line);
  *frame_len = (size_t)snprintf(frame, frame_size, "%d %s", n, msg);
}

/* An exporter alone (no emitter: this thread is the spool's only writer)
 * on a collector that is down: its lines wait in the spool until the
 * test listens on *port. Notices are counted in rules (one string). */
static char notice_rules[512];
static void count_notice(void *ctx, jw_exporter_t *exp, const char *rule, jw_severity_t sev,
                         const char *message, void *extra) {
  (void)ctx;
  (void)exp;
  (void)sev;
  (void)message;
  json_decref((json_t *)extra);
  if (strlen(notice_rules) + strlen(rule) + 2 < sizeof(notice_rules)) {
    strcat(notice_rules, rule);
    strcat(notice_rules, " ");
  }
}

static jw_exporter_t *batch_rig(const char *dir, const char *name, unsigned *port, char *root,
                                size_t root_size) {
  jw_exporter_t *sx = NULL;
  jw_error_t err;
  char spec[1500];
  tsock_t l = collector_listen(port);
  if (l == TBAD)
    return NULL;
  tclose(l); /* down until the test listens */
  snprintf(root, root_size, "%s/unit-syslog-batch-%s", dir, name);
  rm_tree(root);
  snprintf(spec, sizeof(spec), "syslog+tcp://127.0.0.1:%u,spool=%s,retry_max=100ms", *port, root);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(spec, &sx, &err), 0);
  if (sx != NULL) {
    notice_rules[0] = '\0';
    sx->notice = count_notice;
  }
  return sx;
}

/* Waits until the sender has found the collector down (it tries at the
 * first line), so that what follows starts from a known state. */
static void wait_down(jw_exporter_t *sx) {
  jw__spool_stats_t st;
  int tries;
  memset(&st, 0, sizeof(st));
  for (tries = 0; tries < 1000; tries++) {
    CHECK_INT(jw__spool_stats(sx, &st), 0);
    if (st.down)
      break;
    jw__spool_wait(sx, 10);
  }
  CHECK(st.down);
}

/* Reads from s until the peer closes it (or 5 s of silence); *len bytes. */
static char *trecv_all(tsock_t s, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL && twait(s, 5000)) {
    int r;
    if (n == cap) {
      char *p = realloc(buf, cap * 2);
      if (p == NULL)
        break;
      buf = p;
      cap *= 2;
    }
    r = (int)recv(s, buf + n, (int)(cap - n), 0);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  *len = n;
  return buf;
}

/* Everything c gets until the exporter closes it is exactly want. */
static void check_received(tsock_t c, const char *want, size_t want_len) {
  size_t got_len = 0;
  char *got = c != TBAD ? trecv_all(c, &got_len) : NULL;
  CHECK_U64(got_len, want_len);
  CHECK(got != NULL && got_len == want_len && memcmp(got, want, want_len) == 0);
  free(got);
}

/* A connection broken at byte cut, inside frame[whole]: c got exactly
 * frames 0..whole-1 and the start of frame[whole]. */
static void check_torn(tsock_t c, char (*frame)[1200], const size_t *flen, int whole, size_t cut) {
  size_t got_len = 0;
  char *got = c != TBAD ? trecv_all(c, &got_len) : NULL;
  int i;
  CHECK_U64(got_len, cut);
  if (got != NULL && got_len == cut) {
    size_t at = 0;
    for (i = 0; i < whole; i++) {
      CHECK(memcmp(got + at, frame[i], flen[i]) == 0);
      at += flen[i];
    }
    CHECK(memcmp(got + at, frame[whole], cut - at) == 0);
  }
  free(got);
}

/* frame[0..n) one after the other into want; their length. */
static size_t frames_join(char *want, char (*frame)[1200], const size_t *flen, int n) {
  size_t len = 0;
  int i;
  for (i = 0; i < n; i++) {
    memcpy(want + len, frame[i], flen[i]);
    len += flen[i];
  }
  return len;
}

/* The end of a batch test: the sockets closed (TBAD ones skipped), every
 * line delivered (the spool's run directory is gone), the spool removed. */
static void batch_done(const char *root, tsock_t c1, tsock_t c2, tsock_t l) {
  if (c1 != TBAD)
    tclose(c1);
  if (c2 != TBAD)
    tclose(c2);
  if (l != TBAD)
    tclose(l);
  CHECK_INT(count_runs(root), 0);
  rm_tree(root);
}

#define BATCH_N 6

/* Short sends: a batch of BATCH_N lines goes as one buffer, each send
 * taking at most 97 bytes; every send goes on from the first byte the last
 * one did not take, so the collector reads the frames exactly once, whole,
 * in order, and the sends are exactly ceil(bytes / 97). */
static void test_batch_short_sends(const char *dir) {
  char root[1200], line[1024], frame[1200], want[BATCH_N * 1200];
  size_t want_len = 0, flen;
  unsigned port = 0;
  jw_exporter_t *sx = batch_rig(dir, "short", &port, root, sizeof(root));
  jw_error_t err;
  tsock_t l, c;
  int i;
  if (sx == NULL)
    return;
  for (i = 0; i < BATCH_N; i++) {
    batch_line(i, line, sizeof(line), frame, sizeof(frame), &flen);
    memcpy(want + want_len, frame, flen);
    want_len += flen;
    CHECK_INT(jw__spool_append(sx, line, strlen(line), 0, &err), 0);
  }
  wait_down(sx);
  hook_set(97, -1);
  l = collector_listen(&port);
  c = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  jw_exporter_close(sx); /* closes the connection: the collector reads to its end */
  jw__syslog_send_hook(NULL);
  check_received(c, want, want_len);
  CHECK_U64((uint64_t)hook_calls, (want_len + 96) / 97);
  CHECK_STR(notice_rules, "sink_unreachable sink_recovered ");
  batch_done(root, c, TBAD, l);
}

/* A fresh connection that breaks mid-batch, inside line 3's frame: the
 * collector has lines 0..2 whole and a torn start of line 3. The attempt
 * fails; the cursor passes lines 0..2 only; the next attempt's connection
 * gets the frames sent last again (0..2, nothing acknowledges them) and
 * then line 3 on, whole: byte for byte the frames the first had. */
static void test_batch_broken(const char *dir) {
  char root[1200], line[1024], frame[BATCH_N][1200];
  size_t flen[BATCH_N], cut, before = 0, want_len = 0;
  char want[BATCH_N * 2 * 1200];
  unsigned port = 0;
  jw_exporter_t *sx = batch_rig(dir, "broken", &port, root, sizeof(root));
  jw__spool_stats_t st;
  jw_error_t err;
  tsock_t l, c1, c2;
  int i;
  if (sx == NULL)
    return;
  for (i = 0; i < BATCH_N; i++) {
    batch_line(i, line, sizeof(line), frame[i], sizeof(frame[i]), &flen[i]);
    CHECK_INT(jw__spool_append(sx, line, strlen(line), 0, &err), 0);
  }
  for (i = 0; i < 3; i++)
    before += flen[i];
  cut = before + flen[3] / 2; /* inside line 3's frame */
  wait_down(sx);
  hook_set(0, (long)cut);
  hook_hold_after_fail = 1;
  l = collector_listen(&port);
  c1 = collector_accept(l);
  /* The first connection: exactly the bytes before the cut, then closed
   * by the exporter. */
  check_torn(c1, frame, flen, 3, cut);
  /* Between the attempts (the next one's first send is held): the cursor
   * passed lines 0..2, not the cut line 3. */
  memset(&st, 0, sizeof(st));
  for (i = 0; i < 5000 && (!hook_held || !st.down || st.delivered == 0); i++) {
    tsleep_ms(1);
    CHECK_INT(jw__spool_stats(sx, &st), 0);
  }
  CHECK(hook_held && st.down);
  CHECK_U64(st.delivered, 3);
  CHECK_U64(st.pending, BATCH_N - 3);
  hook_hold = 0;
  /* The second: lines 0..2 again (the resend), then 3..5. */
  c2 = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  CHECK_INT(jw__spool_stats(sx, &st), 0);
  CHECK_U64(st.delivered, BATCH_N);
  CHECK_U64(st.undeliverable, 0);
  jw_exporter_close(sx);
  jw__syslog_send_hook(NULL);
  want_len = frames_join(want, frame, flen, BATCH_N);
  check_received(c2, want, want_len);
  /* Each outage was said, and its end: the collector down at the start,
   * then the connection that broke (after it had taken lines 0..2). */
  CHECK_STR(notice_rules, "sink_unreachable sink_recovered sink_unreachable sink_recovered ");
  batch_done(root, c1, c2, l);
}

/* A connection in use that breaks mid-batch: the exporter reconnects at
 * once (within the same attempt), sends the frames sent last again and
 * goes on from the first frame of the line that was cut, not from the
 * byte where the cut was. The lines pile up behind a send the hook holds. */
static void test_batch_broken_in_use(const char *dir) {
  char root[1200], line[1024], frame[BATCH_N + 1][1200];
  size_t flen[BATCH_N + 1], cut = 0, want_len = 0;
  char want[(BATCH_N + 1) * 2 * 1200];
  unsigned port = 0;
  jw_exporter_t *sx = batch_rig(dir, "in-use", &port, root, sizeof(root));
  jw__spool_stats_t st;
  jw_error_t err;
  tsock_t l, c1, c2;
  int i, tries;
  if (sx == NULL)
    return;
  /* frame[0]: the line that holds the connection; 1..BATCH_N the batch. */
  for (i = 0; i <= BATCH_N; i++)
    batch_line(i, line, sizeof(line), frame[i], sizeof(frame[i]), &flen[i]);
  hook_set(0, -1);
  hook_hold = 1;
  l = collector_listen(&port);
  batch_line(0, line, sizeof(line), frame[0], sizeof(frame[0]), &flen[0]);
  CHECK_INT(jw__spool_append(sx, line, strlen(line), 0, &err), 0);
  c1 = l != TBAD ? taccept(l) : TBAD;
  CHECK(c1 != TBAD);
  for (tries = 0; tries < 5000 && !hook_held; tries++)
    tsleep_ms(1);
  CHECK(hook_held);
  for (i = 1; i <= BATCH_N; i++) {
    batch_line(i, line, sizeof(line), frame[i], sizeof(frame[i]), &flen[i]);
    CHECK_INT(jw__spool_append(sx, line, strlen(line), 0, &err), 0);
  }
  /* Cut inside the batch's fourth line (frame[4]). */
  for (i = 0; i < 4; i++)
    cut += flen[i];
  cut += flen[4] / 2;
  hook_fail_at = (long)cut;
  hook_hold = 0;
  check_torn(c1, frame, flen, 4, cut);
  c2 = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  CHECK_INT(jw__spool_stats(sx, &st), 0);
  CHECK_U64(st.delivered, BATCH_N + 1);
  jw_exporter_close(sx);
  jw__syslog_send_hook(NULL);
  /* The second connection: frames 0..3 again (the last sent), then 4..N. */
  want_len = frames_join(want, frame, flen, BATCH_N + 1);
  check_received(c2, want, want_len);
  /* Reconnected within the attempt: no outage to tell. */
  CHECK_STR(notice_rules, "");
  batch_done(root, c1, c2, l);
}

/* A line that can never be sent (not JSON) in the middle of a batch: the
 * lines before it and after it arrive, exactly once and in order, on one
 * connection; it is skipped, counted, and said once (sink_failed). by_line:
 * the same through an exporter without deliver_lines (the sender calls
 * export_line per line: one send each). */
static void test_batch_undeliverable(const char *dir, int by_line) {
  jw_exporter_vtable_t line_vt;
  char root[1200], line[1024], frame[1200], want[BATCH_N * 1200];
  size_t want_len = 0, flen;
  unsigned port = 0;
  jw_exporter_t *sx =
      batch_rig(dir, by_line ? "by-line" : "undeliverable", &port, root, sizeof(root));
  jw__spool_stats_t st;
  jw_error_t err;
  tsock_t l, c;
  int i;
  if (sx == NULL)
    return;
  if (by_line) {
    /* Before the first line: the sender reads vt when it delivers. */
    line_vt = *sx->vt;
    line_vt.deliver_lines = NULL;
    sx->vt = &line_vt;
  }
  for (i = 0; i < BATCH_N; i++) {
    if (i == 2 || i == 4)
      CHECK_INT(jw__spool_append(sx, "not json\n", 9, 0, &err), 0);
    batch_line(i, line, sizeof(line), frame, sizeof(frame), &flen);
    memcpy(want + want_len, frame, flen);
    want_len += flen;
    CHECK_INT(jw__spool_append(sx, line, strlen(line), 0, &err), 0);
  }
  wait_down(sx);
  hook_set(0, -1);
  l = collector_listen(&port);
  c = collector_accept(l);
  CHECK_INT(jw__spool_wait(sx, 10000), 0);
  CHECK_INT(jw__spool_stats(sx, &st), 0);
  CHECK_U64(st.undeliverable, 2);
  CHECK_U64(st.delivered, BATCH_N + 2);
  CHECK_U64(st.pending, 0);
  jw_exporter_close(sx);
  jw__syslog_send_hook(NULL);
  check_received(c, want, want_len);
  /* Batches: every send was of a whole batch, the lines before the first
   * bad one, between the two, and after the second. Line by line: one per
   * line. */
  CHECK_U64((uint64_t)hook_calls, by_line ? BATCH_N : 3);
  CHECK_STR(notice_rules, "sink_unreachable sink_failed sink_recovered ");
  batch_done(root, c, TBAD, l);
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

static const char *g_out = ".";

static void test_specs_case(void) {
  test_specs(g_out);
}

static void test_udp_case(void) {
  test_udp(g_out);
}

static void test_tcp_case(void) {
  test_tcp(g_out);
}

static void test_spool_restart_case(void) {
  test_spool_restart(g_out);
}

static void test_spool_full_case(void) {
  test_spool_full(g_out);
}

static void test_stall_case(void) {
  test_stall(g_out);
}

static void test_batch_short_sends_case(void) {
  test_batch_short_sends(g_out);
}

static void test_batch_broken_case(void) {
  test_batch_broken(g_out);
}

static void test_batch_broken_in_use_case(void) {
  test_batch_broken_in_use(g_out);
}

static void test_batch_undeliverable_case(void) {
  test_batch_undeliverable(g_out, 0);
}

static void test_batch_undeliverable_by_line(void) {
  test_batch_undeliverable(g_out, 1);
}

/* Runnable one by one: `test_syslog DATA OUT --case specs`. */
static const jw_test_case_t cases[] = {
    {"specs", test_specs_case, 30},
    {"udp", test_udp_case, 30},
    {"tcp", test_tcp_case, 30},
    {"spool_restart", test_spool_restart_case, 30},
    {"spool_full", test_spool_full_case, 30},
    {"stall", test_stall_case, 250},
    {"batch_short_sends", test_batch_short_sends_case, 30},
    {"batch_broken", test_batch_broken_case, 30},
    {"batch_broken_in_use", test_batch_broken_in_use_case, 30},
    {"batch_undeliverable", test_batch_undeliverable_case, 30},
    {"batch_undeliverable_by_line", test_batch_undeliverable_by_line, 30},
    {"udp_formats", test_udp_formats, 30},
};

int main(int argc, char **argv) {
#ifdef _WIN32
  WSADATA d;
  WSAStartup(MAKEWORD(2, 2), &d);
#endif
  g_out = jw_test_arg(argc, argv, 2, ".");
  return jw_test_run_cases("syslog", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

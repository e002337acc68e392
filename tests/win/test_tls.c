/* wine.real.tls: the SChannel TLS transport (exporters/syslog/tls.h)
 * against a real rsyslogd with its gnutls driver, started by
 * tests/syslog/tls/run_tls_test.sh, which also made the certificates.
 *
 * Usage: win_tls.exe WORK_DIR GOOD_PORT EXPIRED_PORT OTHER_PORT TLS13_PORT TLS11_PORT
 *                    CLOSER_PORT
 *   WORK_DIR holds ca.pem, ca.der, other-ca.pem, two-cas.pem,
 *   not-a-cert.pem, garbage.pem, key-only.pem and rsyslog's output
 *   rsyslog-out.txt (each received message as sent, one per line).
 *   GOOD_PORT serves a certificate for localhost + 127.0.0.1 issued by
 *   ca.pem, EXPIRED_PORT the same names valid only on 2020-01-01,
 *   OTHER_PORT one for collector.example; TLS13_PORT and TLS11_PORT serve
 *   GOOD_PORT's certificate with TLS 1.3 only and TLS 1.1 only.
 *   CLOSER_PORT is closer.py: after the handshake a record of data, then
 *   close_notify, and the TCP connection left open.
 *
 * What only the script can do (stop, continue, kill rsyslogd) is asked for
 * with WORK_DIR\request-NAME and awaited as WORK_DIR\done-NAME. Every wait
 * is for something that happened (a file, lines in rsyslog's output, a
 * state of the connection) and bounded. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "helpers.h"
#include "jobwarden.h"
#include "syslog/tls.h"

#define IO_TIMEOUT_MS 5000
#define WAIT_MS       30000

static char g_work[TW_PATH_CHARS];
static int g_good, g_expired, g_other, g_tls13, g_tls11, g_closer;
static char g_out[TW_PATH_CHARS];
/* Every message rsyslog must have written so far, each with its newline,
 * in order (malloc'd). */
static char *g_expected;
static size_t g_expected_len, g_expected_cap;

static void work_path(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s\\%s", g_work, name);
}

static int file_exists(const char *path) {
  return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

/* Asks the script for NAME and waits (60 s at most) for its answer. */
static int request(const char *name) {
  char req[TW_PATH_CHARS], done[TW_PATH_CHARS], file[64];
  HANDLE h;
  ULONGLONG end = GetTickCount64() + 60000;
  snprintf(file, sizeof file, "request-%s", name);
  work_path(req, sizeof req, file);
  snprintf(file, sizeof file, "done-%s", name);
  work_path(done, sizeof done, file);
  h = CreateFileA(req, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    fprintf(stderr, "cannot create %s (%lu)\n", req, GetLastError());
    return -1;
  }
  CloseHandle(h);
  while (!file_exists(done)) {
    if (GetTickCount64() >= end) {
      fprintf(stderr, "the script did not answer request %s within 60 s\n", name);
      return -1;
    }
    Sleep(20);
  }
  return 0;
}

static SOCKET tcp_connect(int port) {
  SOCKET s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((u_short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (s == INVALID_SOCKET)
    return s;
  if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
    fprintf(stderr, "connect to 127.0.0.1:%d failed (%d)\n", port, WSAGetLastError());
    closesocket(s);
    return INVALID_SOCKET;
  }
  return s;
}

/* Credentials for a CA file of the work directory (NULL: the system's
 * roots). */
static jw__tls_creds_t *creds(const char *ca_name, int insecure) {
  char ca[TW_PATH_CHARS];
  jw__tls_config_t cfg = {NULL, insecure};
  jw__tls_creds_t *c = NULL;
  jw_error_t err;
  int rc;
  if (ca_name != NULL) {
    work_path(ca, sizeof ca, ca_name);
    cfg.ca_file = ca;
  }
  memset(&err, 0, sizeof err);
  rc = jw__tls_creds_new(&cfg, &c, &err);
  CHECK_INT(rc, 0);
  if (rc != 0)
    fprintf(stderr, "creds for %s: %s\n", ca_name ? ca_name : "(system)", err.text);
  return c;
}

/* One connection: its socket and session. */
typedef struct {
  SOCKET s;
  jw__tls_t *t;
} conn_t;

/* Connects to port and does the handshake for name. Returns the
 * jw__tls_connect result (err filled); on failure the socket is closed. */
static int conn_open(conn_t *k, jw__tls_creds_t *c, int port, const char *name, int timeout_ms,
                     jw_error_t *err) {
  int rc;
  memset(err, 0, sizeof *err);
  k->t = NULL;
  k->s = tcp_connect(port);
  if (k->s == INVALID_SOCKET)
    return jw_error_set(err, JW_EIO, 0, "test", "no TCP connection to port %d", port);
  rc = jw__tls_connect(c, (uintptr_t)k->s, name, timeout_ms, &k->t, err);
  if (rc != 0) {
    closesocket(k->s);
    k->s = INVALID_SOCKET;
  }
  return rc;
}

static void conn_close(conn_t *k) {
  jw__tls_close(k->t);
  k->t = NULL;
  if (k->s != INVALID_SOCKET)
    closesocket(k->s);
  k->s = INVALID_SOCKET;
}

static void expect_append(const char *msg, size_t len) {
  if (g_expected_len + len + 1 > g_expected_cap) {
    g_expected_cap = (g_expected_len + len + 1) * 2;
    g_expected = realloc(g_expected, g_expected_cap);
    if (g_expected == NULL) {
      fprintf(stderr, "out of memory\n");
      exit(1);
    }
  }
  memcpy(g_expected + g_expected_len, msg, len);
  g_expected_len += len;
  g_expected[g_expected_len++] = '\n';
}

/* An RFC 5424 message of `size` bytes (at least 80) whose body is
 * printable ASCII drawn from seed; malloc'd, NUL-terminated. */
static char *make_message(const char *tag, size_t size, unsigned seed) {
  char *m = malloc(size + 1);
  int head;
  size_t i;
  if (m == NULL)
    exit(1);
  head = snprintf(m, size + 1, "<134>1 2026-01-01T00:00:00.000Z jwtest tlstest 42 %s - ", tag);
  for (i = (size_t)head; i < size; i++) {
    seed = seed * 1103515245u + 12345u;
    m[i] = (char)('!' + (seed >> 16) % 94); /* '!'..'~': no space, no control */
  }
  m[size] = '\0';
  return m;
}

/* Sends one RFC 5425 frame ("LEN SP MSG") through t; when it is meant to
 * arrive, remembers MSG as rsyslog's next line. */
static int send_frame(jw__tls_t *t, const char *msg, int expect, jw_error_t *err) {
  size_t len = strlen(msg);
  char prefix[32];
  char *frame;
  int n = snprintf(prefix, sizeof prefix, "%lu ", (unsigned long)len), rc;
  frame = malloc((size_t)n + len);
  if (frame == NULL)
    exit(1);
  memcpy(frame, prefix, (size_t)n);
  memcpy(frame + n, msg, len);
  memset(err, 0, sizeof *err);
  rc = jw__tls_send(t, frame, (size_t)n + len, err);
  free(frame);
  if (rc == 0 && expect)
    expect_append(msg, len);
  return rc;
}

/* Waits until rsyslog's output is as long as everything expected, then
 * checks it is exactly that: every message, byte for byte, in order, and
 * nothing else. */
static void check_output(const char *when) {
  ULONGLONG end = GetTickCount64() + WAIT_MS;
  size_t len = 0;
  char *got = NULL;
  for (;;) {
    free(got);
    got = tw_read_file(g_out, &len);
    if ((got != NULL && len >= g_expected_len) || GetTickCount64() >= end)
      break;
    Sleep(20);
  }
  if (got == NULL) {
    got = calloc(1, 1);
    len = 0;
  }
  CHECK_U64(len, g_expected_len);
  CHECK(len == g_expected_len && memcmp(got, g_expected, len) == 0);
  if (len != g_expected_len || memcmp(got, g_expected, len) != 0) {
    size_t i = 0;
    while (i < len && i < g_expected_len && got[i] == g_expected[i])
      i++;
    fprintf(stderr, "%s: rsyslog's output differs from what was sent at byte %lu of %lu/%lu\n",
            when, (unsigned long)i, (unsigned long)len, (unsigned long)g_expected_len);
  } else {
    printf("%s: rsyslog wrote every message as sent (%lu bytes)\n", when, (unsigned long)len);
  }
  free(got);
}

/* Waits until rsyslog's output contains `needle`. */
static int wait_output_has(const char *needle) {
  ULONGLONG end = GetTickCount64() + WAIT_MS;
  for (;;) {
    size_t len = 0;
    char *got = tw_read_file(g_out, &len);
    int found = got != NULL && strstr(got, needle) != NULL;
    free(got);
    if (found)
      return 0;
    if (GetTickCount64() >= end)
      return -1;
    Sleep(20);
  }
}

/* ------------------------------------------------------------------------ */

/* jw__tls_creds_new: CA files that are not, each with its exact message. */
static void case_ca_files(void) {
  char path[TW_PATH_CHARS], want[2 * TW_PATH_CHARS];
  jw__tls_config_t cfg = {NULL, 0};
  jw__tls_creds_t *c = NULL;
  jw_error_t err;
  HANDLE h;

  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(NULL, &c, &err), JW_EINVAL);
  CHECK(c == NULL);

  work_path(path, sizeof path, "ca.pem");
  cfg.ca_file = path;
  cfg.insecure = 1;
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "ca=%s and insecure contradict each other: insecure checks no certificate", path);
  CHECK_STR(err.text, want);
  cfg.insecure = 0;

  work_path(path, sizeof path, "missing.pem");
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_ENOENT);
  CHECK(c == NULL);
  CHECK_U64(err.sys_error, ERROR_FILE_NOT_FOUND);
  CHECK_STR(err.where, "ca");
  snprintf(want, sizeof want, "cannot open the CA file %s: ", path);
  CHECK(strncmp(err.text, want, strlen(want)) == 0);
  printf("missing CA file: %s\n", err.text);

  work_path(path, sizeof path, "empty.pem");
  h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  CHECK(h != INVALID_HANDLE_VALUE);
  CloseHandle(h);
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "the CA file %s is empty: expected PEM certificates or one DER certificate", path);
  CHECK_STR(err.text, want);

  work_path(path, sizeof path, "not-a-cert.pem");
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "the CA file %s holds no certificate: it is neither PEM (\"-----BEGIN "
           "CERTIFICATE-----\" blocks) nor one DER certificate: ",
           path);
  CHECK(strncmp(err.text, want, strlen(want)) == 0);
  CHECK(err.sys_error != 0);
  printf("text file as CA file: %s\n", err.text);

  work_path(path, sizeof path, "garbage.pem");
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "the CA file %s: certificate 1 (line 1) is not an X.509 certificate: ", path);
  CHECK(strncmp(err.text, want, strlen(want)) == 0);
  CHECK(err.sys_error != 0);
  printf("PEM block that is no certificate: %s\n", err.text);

  /* The second certificate is bad: named by its number and line (the
   * line after ca.pem's last). */
  {
    char ca[TW_PATH_CHARS];
    size_t len = 0, i;
    unsigned lines = 0;
    char *text;
    work_path(ca, sizeof ca, "ca.pem");
    text = tw_read_file(ca, &len);
    CHECK(text != NULL);
    for (i = 0; text != NULL && i < len; i++)
      lines += text[i] == '\n';
    free(text);
    work_path(path, sizeof path, "second-bad.pem");
    memset(&err, 0, sizeof err);
    CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
    snprintf(want, sizeof want,
             "the CA file %s: certificate 2 (line %u) is not an X.509 certificate: ", path,
             lines + 1);
    CHECK(strncmp(err.text, want, strlen(want)) == 0);
    printf("bad second certificate: %s\n", err.text);
  }

  work_path(path, sizeof path, "truncated.pem");
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "the CA file %s: certificate 1 (line 1) has no \"-----END CERTIFICATE-----\" line",
           path);
  CHECK_STR(err.text, want);

  work_path(path, sizeof path, "key-only.pem");
  memset(&err, 0, sizeof err);
  CHECK_INT(jw__tls_creds_new(&cfg, &c, &err), JW_EINVAL);
  snprintf(want, sizeof want,
           "the CA file %s holds no certificate: it has PEM blocks, but none is a \"-----BEGIN "
           "CERTIFICATE-----\" block",
           path);
  CHECK_STR(err.text, want);
  CHECK(c == NULL);
}

/* A server that accepts the TCP connection and never answers: the
 * handshake gives up after timeout_ms, not before, not much later. */
static void case_handshake_timeout(void) {
  SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), s;
  struct sockaddr_in a;
  int alen = sizeof a, rc;
  jw__tls_creds_t *c = creds("ca.pem", 0);
  jw__tls_t *t = NULL;
  jw_error_t err;
  ULONGLONG t0, took;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(l, 1) == 0);
  CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);
  s = tcp_connect(ntohs(a.sin_port));
  CHECK(s != INVALID_SOCKET);
  memset(&err, 0, sizeof err);
  t0 = GetTickCount64();
  rc = jw__tls_connect(c, (uintptr_t)s, "localhost", 1000, &t, &err);
  took = GetTickCount64() - t0;
  CHECK_INT(rc, JW_ETIMEDOUT);
  CHECK(t == NULL);
  CHECK_STR(err.text,
            "the server localhost did not answer during the TLS handshake within 1000 ms");
  CHECK(took >= 990 && took < 4000);
  printf("silent server: handshake gave up after %llu ms (bound 1000 ms)\n", took);
  closesocket(s);
  closesocket(l);
  jw__tls_creds_free(c);
}

/* Each refusal: exact code, Win32 value and message. */
static void expect_refused(const char *tag, const char *ca, int port, const char *name, int code,
                           uint32_t sys, const char *want) {
  jw__tls_creds_t *c = creds(ca, 0);
  conn_t k;
  jw_error_t err;
  int rc;
  rc = conn_open(&k, c, port, name, IO_TIMEOUT_MS, &err);
  CHECK_INT(rc, code);
  CHECK(k.t == NULL);
  CHECK_U64(err.sys_error, sys);
  CHECK_STR(err.where, "certificate");
  CHECK_STR(err.text, want);
  printf("%s: refused: %s (0x%08lx)\n", tag, err.text, (unsigned long)err.sys_error);
  if (rc == 0)
    conn_close(&k);
  jw__tls_creds_free(c);
}

static void case_refusals(void) {
  char want[2 * TW_PATH_CHARS], path[TW_PATH_CHARS];
  work_path(path, sizeof path, "other-ca.pem");
  snprintf(want, sizeof want,
           "the server's certificate (CN=localhost) is not issued by the CA in %s: it chains up "
           "to CN=jobwarden test CA",
           path);
  expect_refused("wrong-ca", "other-ca.pem", g_good, "localhost", JW_EPOLICY,
                 (uint32_t)CERT_E_UNTRUSTEDROOT, want);
  /* No ca=: the system's roots (Wine: the host's), which do not hold the
   * test CA. */
  expect_refused("system-roots", NULL, g_good, "localhost", JW_EPOLICY, (uint32_t)CERT_E_CHAINING,
                 "the server's certificate (CN=localhost) is not issued by a CA this system "
                 "trusts: it chains up to CN=jobwarden test CA");
  expect_refused("wrong-name", "ca.pem", g_good, "collector.example", JW_EPOLICY,
                 (uint32_t)CERT_E_CN_NO_MATCH,
                 "the server's certificate is for localhost, 127.0.0.1, not collector.example");
  expect_refused("cert-for-other-host", "ca.pem", g_other, "localhost", JW_EPOLICY,
                 (uint32_t)CERT_E_CN_NO_MATCH,
                 "the server's certificate is for collector.example, not localhost");
  expect_refused("wrong-ip", "ca.pem", g_good, "127.0.0.2", JW_EPOLICY,
                 (uint32_t)CERT_E_CN_NO_MATCH,
                 "the server's certificate is for localhost, 127.0.0.1, not 127.0.0.2");
  expect_refused("wrong-ipv6", "ca.pem", g_good, "[::1]", JW_EPOLICY, (uint32_t)CERT_E_CN_NO_MATCH,
                 "the server's certificate is for localhost, 127.0.0.1, not [::1]");
  expect_refused("expired", "ca.pem", g_expired, "localhost", JW_EPOLICY, (uint32_t)CERT_E_EXPIRED,
                 "the server's certificate (CN=localhost) expired on 2020-01-02 00:00:00 UTC");
}

/* Valid CA and name: frames arrive byte for byte, a 200 KB one across
 * many records; by DNS name and by IP address; with the CA as DER and in a
 * file of two CAs; insecure takes any certificate. */
static void case_delivery(void) {
  static const struct {
    const char *tag, *ca;
    int insecure, *port;
    const char *name;
  } runs[] = {
      {"dns-name", "ca.pem", 0, &g_good, "localhost"},
      {"ip-address", "ca.pem", 0, &g_good, "127.0.0.1"},
      {"der-ca", "ca.der", 0, &g_good, "localhost"},
      {"two-cas", "two-cas.pem", 0, &g_good, "localhost"},
      {"insecure-other-host", NULL, 1, &g_other, "localhost"},
      {"insecure-expired", NULL, 1, &g_expired, "127.0.0.9"},
  };
  size_t i;
  for (i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    jw__tls_creds_t *c = creds(runs[i].ca, runs[i].insecure);
    conn_t k;
    jw_error_t err;
    char tag[64];
    int rc, m;
    rc = conn_open(&k, c, *runs[i].port, runs[i].name, IO_TIMEOUT_MS, &err);
    CHECK_INT(rc, 0);
    if (rc != 0) {
      fprintf(stderr, "%s: %s\n", runs[i].tag, err.text);
    } else {
      if (i == 0)
        printf("session: %s, at most %lu bytes per record\n", jw__tls_protocol(k.t),
               (unsigned long)jw__tls_max_record(k.t));
      CHECK_STR(jw__tls_protocol(k.t), "TLS 1.2");
      CHECK_U64(jw__tls_max_record(k.t), 16384);
      CHECK_INT(jw__tls_peer_closed(k.t), 0);
      for (m = 0; m < 4; m++) {
        /* 80 bytes, one record, exactly one full record, 200 KB. */
        static const size_t sizes[] = {80, 1000, 16384 - 6, 200000};
        char *msg;
        snprintf(tag, sizeof tag, "%s-%d", runs[i].tag, m);
        msg = make_message(tag, sizes[m], (unsigned)(i * 16 + m));
        CHECK_INT(send_frame(k.t, msg, 1, &err), 0);
        free(msg);
      }
      CHECK_INT(jw__tls_peer_closed(k.t), 0);
      conn_close(&k);
      /* Each connection's messages are in before the next one starts:
       * rsyslog's sessions would otherwise interleave. */
      check_output(runs[i].tag);
    }
    jw__tls_creds_free(c);
  }
}

static int under_wine(void) {
  return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL;
}

/* Below TLS 1.2 is refused, whatever SChannel was willing to negotiate
 * (Wine 8 negotiates TLS 1.1 although told not to: the check after the
 * handshake refuses it; Windows never offers it). TLS 1.3 is Windows'
 * alone (11, Server 2022): Wine 8 offers TLS 1.2 at most, so a TLS
 * 1.3-only collector ends the handshake. */
static void case_versions(void) {
  jw__tls_creds_t *c = creds("ca.pem", 0);
  conn_t k;
  jw_error_t err;
  int rc, wine = under_wine();
  rc = conn_open(&k, c, g_tls11, "localhost", IO_TIMEOUT_MS, &err);
  CHECK_INT(rc, JW_EIO);
  CHECK(k.t == NULL);
  CHECK_STR(err.where, "handshake");
  if (wine)
    CHECK_STR(err.text,
              "the TLS server localhost negotiated TLS 1.1: RFC 5425 needs TLS 1.2 or later");
  printf("TLS 1.1-only collector: refused: %s\n", err.text);
  if (rc == 0)
    conn_close(&k);

  rc = conn_open(&k, c, g_tls13, "localhost", IO_TIMEOUT_MS, &err);
  if (wine) {
    CHECK_INT(rc, JW_EIO);
    CHECK_STR(err.text, "the server localhost closed the connection during the TLS handshake "
                        "(not a TLS port, or it refused our TLS versions or cipher suites)");
    printf("TLS 1.3-only collector: refused under Wine: %s\n", err.text);
  } else if (rc == 0) {
    char *msg = make_message("tls13", 3000, 77);
    CHECK_STR(jw__tls_protocol(k.t), "TLS 1.3");
    CHECK_INT(send_frame(k.t, msg, 1, &err), 0);
    conn_close(&k);
    check_output("tls13");
    free(msg);
  } else {
    CHECK_INT(rc, JW_EIO); /* a Windows without TLS 1.3 */
    printf("TLS 1.3-only collector: refused: %s\n", err.text);
  }
  jw__tls_creds_free(c);
}

/* A collector that accepts and stops reading (SIGSTOP): a send fails
 * with JW_ETIMEDOUT within its bound, and the connection is broken
 * afterwards. */
static void case_stalled(void) {
  jw__tls_creds_t *c = creds("ca.pem", 0);
  conn_t k;
  jw_error_t err;
  char *msg = make_message("stall", 65536, 7);
  int rc, n = 0;
  ULONGLONG t0 = 0, took = 0;
  rc = conn_open(&k, c, g_good, "localhost", 1500, &err);
  CHECK_INT(rc, 0);
  if (rc == 0 && request("stop") == 0) {
    /* The socket buffers of both ends fill, then a send waits: at most
     * 1,000 messages of 64 KB (64 MB) before one must time out. */
    do {
      t0 = GetTickCount64();
      rc = send_frame(k.t, msg, 0, &err);
      took = GetTickCount64() - t0;
    } while (rc == 0 && ++n < 1000);
    CHECK_INT(rc, JW_ETIMEDOUT);
    CHECK_STR(err.where, "send");
    CHECK(strncmp(err.text, "the TLS server localhost took ", 30) == 0);
    CHECK(strstr(err.text, " bytes within 1500 ms") != NULL);
    CHECK(took >= 1490 && took < 5000);
    printf("stalled collector: %d messages of 64 KB went out, then a send gave up after %llu ms "
           "(bound 1500 ms): %s\n",
           n, took, err.text);
    memset(&err, 0, sizeof err);
    CHECK_INT(jw__tls_send(k.t, "1 x", 3, &err), JW_EIO);
    CHECK_STR(err.text, "the TLS connection to localhost failed before: connect again");
    CHECK_INT(jw__tls_peer_closed(k.t), 1);
    CHECK_INT(request("cont"), 0);
  }
  if (rc != JW_ETIMEDOUT && rc != 0)
    fprintf(stderr, "stalled: %s\n", err.text);
  if (k.t != NULL)
    conn_close(&k);
  free(msg);
  jw__tls_creds_free(c);
}

/* What is waiting on a socket without taking it: "close_notify or data"
 * (bytes), "end of stream", "reset" or "nothing". For the report only. */
static const char *peek_state(SOCKET s) {
  char b[8];
  int n = recv(s, b, sizeof b, MSG_PEEK);
  if (n > 0)
    return "TLS bytes (a close_notify alert)";
  if (n == 0)
    return "end of stream, no close_notify";
  return WSAGetLastError() == WSAEWOULDBLOCK ? "nothing" : "reset";
}

/* A server that sends data, then close_notify, and keeps the TCP
 * connection open: jw__tls_peer_closed takes the data in, ignores it, and
 * answers 1 on the close_notify alone (no end of stream, no reset). */
static void case_close_notify(void) {
  jw__tls_creds_t *c = creds("ca.pem", 0);
  conn_t k;
  jw_error_t err;
  int closed = 0;
  char b[8];
  ULONGLONG t0;
  CHECK_INT(conn_open(&k, c, g_closer, "localhost", IO_TIMEOUT_MS, &err), 0);
  if (k.t != NULL) {
    /* Wait, bounded, until the alert is here; then the proof that the
     * stream has not ended. */
    t0 = GetTickCount64();
    while (!(closed = jw__tls_peer_closed(k.t)) && GetTickCount64() - t0 < 10000)
      Sleep(10);
    CHECK_INT(closed, 1);
    CHECK_INT(recv(k.s, b, sizeof b, MSG_PEEK), SOCKET_ERROR);
    CHECK_INT(WSAGetLastError(), WSAEWOULDBLOCK);
    printf("close_notify: jw__tls_peer_closed 1 after %llu ms, the TCP stream still open\n",
           GetTickCount64() - t0);
    CHECK_INT(send_frame(k.t, "<134>1 - - - - - - late", 0, &err), JW_EIO);
    CHECK_STR(err.text, "the TLS server localhost has closed the connection");
    conn_close(&k);
  }
  jw__tls_creds_free(c);
}

/* The collector goes away (SIGTERM, waited for): jw__tls_peer_closed says
 * so without blocking, and sends fail instead of hanging. */
static void case_server_gone(void) {
  jw__tls_creds_t *c = creds("ca.pem", 0);
  conn_t a, b;
  jw_error_t err;
  char *msg = make_message("before-kill", 200, 9);
  int rc, i, closed = 0;
  ULONGLONG t0, took;
  CHECK_INT(conn_open(&a, c, g_good, "localhost", IO_TIMEOUT_MS, &err), 0);
  CHECK_INT(conn_open(&b, c, g_good, "127.0.0.1", IO_TIMEOUT_MS, &err), 0);
  if (a.t == NULL || b.t == NULL)
    goto done;
  CHECK_INT(send_frame(a.t, msg, 0, &err), 0);
  CHECK_INT(wait_output_has(msg), 0);
  CHECK_INT(jw__tls_peer_closed(a.t), 0);
  if (request("kill") != 0) {
    CHECK(0);
    goto done;
  }
  /* rsyslogd has exited: its end of the connection is closed. The kernel
   * may still be delivering that; wait for it, bounded. */
  printf("after the collector exited, the socket holds: %s\n", peek_state(a.s));
  t0 = GetTickCount64();
  while (!(closed = jw__tls_peer_closed(a.t)) && GetTickCount64() - t0 < 10000)
    Sleep(10);
  took = GetTickCount64() - t0;
  CHECK_INT(closed, 1);
  printf("jw__tls_peer_closed: 1 after %llu ms\n", took);
  CHECK_INT(jw__tls_peer_closed(a.t), 1);
  CHECK_INT(send_frame(a.t, msg, 0, &err), JW_EIO);
  CHECK_STR(err.text, "the TLS server localhost has closed the connection");
  /* Without asking first: the first send may still leave (TCP takes it),
   * the reset that answers it fails a following one; none waits. */
  t0 = GetTickCount64();
  for (i = 0; i < 50; i++) {
    if ((rc = send_frame(b.t, msg, 0, &err)) != 0)
      break;
    Sleep(10);
  }
  took = GetTickCount64() - t0;
  CHECK_INT(rc, JW_EIO);
  CHECK_STR(err.where, "send");
  CHECK(strncmp(err.text, "sending to the TLS server 127.0.0.1 failed: ", 44) == 0);
  CHECK(took < IO_TIMEOUT_MS);
  printf("sending to the gone collector without asking first: send %d failed after %llu ms: %s "
         "(%lu)\n",
         i + 1, took, err.text, (unsigned long)err.sys_error);
  CHECK_INT(jw__tls_peer_closed(b.t), 1);
done:
  conn_close(&a);
  conn_close(&b);
  free(msg);
  jw__tls_creds_free(c);
}

/* In this order: the refused handshakes sent nothing, so rsyslog's output
 * is exactly the delivered messages (check_output after each connection).
 * Runnable one by one (with the script's collectors): `--case stalled`. */
static const jw_test_case_t cases[] = {
    {"ca_files", case_ca_files, 60}, {"handshake_timeout", case_handshake_timeout, 60},
    {"refusals", case_refusals, 60}, {"delivery", case_delivery, 60},
    {"versions", case_versions, 60}, {"close_notify", case_close_notify, 60},
    {"stalled", case_stalled, 120},  {"server_gone", case_server_gone, 60},
};

int main(int argc, char **argv) {
  WSADATA wsa;
  int rc;
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc < 8 || tw_full_path(argv[1], g_work, sizeof g_work) != 0) {
    fprintf(stderr,
            "usage: win_tls.exe WORK_DIR GOOD_PORT EXPIRED_PORT OTHER_PORT TLS13_PORT TLS11_PORT "
            "CLOSER_PORT\n");
    return 2;
  }
  g_good = atoi(argv[2]);
  g_expired = atoi(argv[3]);
  g_other = atoi(argv[4]);
  g_tls13 = atoi(argv[5]);
  g_tls11 = atoi(argv[6]);
  g_closer = atoi(argv[7]);
  work_path(g_out, sizeof g_out, "rsyslog-out.txt");
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) {
    fprintf(stderr, "WSAStartup failed\n");
    return 1;
  }
  rc = TW_RUN_CASES("wine.real.tls", argc, argv, cases);
  free(g_expected);
  WSACleanup();
  return rc;
}

/* syslog exporters: RFC 5424 messages to a collector over UDP or TCP.
 *
 * SPEC: syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT, and the options
 * in syslog_options (facility=, sd_id=, max_message=). HOST is a name, an
 * IPv4 literal or an IPv6 literal in brackets ("[::1]").
 *
 * One message per event:
 *   <PRI>1 TIMESTAMP HOSTNAME jobwarden PROCID MSGID SD MSG
 * PRI = facility (facility=, default local0 = 16) * 8 + the event's
 * severity (critical 2, high 3, medium 4, low 5, info 6); TIMESTAMP = the
 * event's @timestamp; HOSTNAME = host.name; PROCID = jobwarden's pid; MSGID
 * = the event name; MSG = the JSON line without its newline, UTF-8 without
 * a BOM (JSON needs no marker and collectors that parse MSG as JSON would
 * otherwise have to strip it). With format=ecs or ocsf, MSG is the line in
 * that format and the header takes the same facts from where that format
 * keeps them (jw_format_meta): the header is the same whatever the format.
 *
 * SD: none ("-") by default. An SD-ID of the form NAME@NUMBER belongs to
 * the holder of that IANA private enterprise number; jobwarden has none, so
 * it claims none. With sd_id=NAME@PEN (the user's own number) each message
 * carries [NAME@PEN run_id="..." seq="N"]. The run_id and seq are in MSG
 * in every case.
 *
 * Size: a message longer than max_message= (default 8K, rsyslog's default
 * limit; UDP at most 65000) is never cut: it is sent as continuation
 * records (src/parts.h), each a message of its own with the event's
 * header, that readers (verify, report, tail --file) put back together.
 *
 * UDP: one datagram per message, fire and forget. TCP: octet-counting
 * framing (RFC 6587, "LEN SP MSG"); a NETWORK sink: every line goes through
 * its spool (src/spool.h), whose sender hands deliver_lines a batch of
 * lines: they are framed into one buffer and sent with as few sends as the
 * socket takes (under Wine each socket call is a wineserver round trip;
 * docs/performance.md). Before each send the connection is checked once
 * (a collector never sends, so a readable socket means the peer closed or
 * reset it); a broken connection is re-established once at once; after a
 * break the last RESEND_MAX frames are sent again first (frames the
 * collector's kernel took may have died unread with it), then the batch
 * from the first line not sent whole: delivery is at-least-once, and a
 * repeated message is byte for byte the same (run_id + seq identify it).
 * Only lines sent whole count as delivered. A collector that takes nothing
 * for SEND_TIMEOUT_MS is a failed attempt too.
 *
 * Sockets are not inheritable (WSA_FLAG_NO_HANDLE_INHERIT / SOCK_CLOEXEC);
 * connecting is bounded by 2 s, a send by 5 s. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exporters.h"
#include "format.h"
#include "internal.h"
#include "parts.h"
#include "syslog/syslog.h"
#ifdef _WIN32
#include "syslog/tls.h"
#endif

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET sock_t;
#define BAD_SOCK INVALID_SOCKET
#else
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
typedef int sock_t;
#define BAD_SOCK (-1)
#endif

#define SYSLOG_UDP_MAX     65000
#define CONNECT_TIMEOUT_MS 2000
#define SEND_TIMEOUT_MS    5000
#define RESEND_MAX         16

/* The options (exporters/options.c). */
typedef struct {
  int facility;         /* the code: the CHOICE's index */
  char *sd_id;          /* NAME@PEN, or NULL: no structured data */
  uint64_t max_message; /* bytes of one message (header included) */
  char *ca;             /* syslog+tls: the CA file, or NULL: the system's roots */
  int insecure;         /* syslog+tls: no certificate check (tests only) */
} syslog_config_t;

/* The rows every syslog transport has. */
#define SYSLOG_ROWS                                                                                \
  {"facility",                                                                                     \
   JW_OPT_CHOICE,                                                                                  \
   offsetof(syslog_config_t, facility),                                                            \
   "local0",                                                                                       \
   0,                                                                                              \
   0,                                                                                              \
   "kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|ntp|audit|alert|clock|"      \
   "local0|local1|local2|local3|local4|local5|local6|local7",                                      \
   "the messages' facility (RFC 5424 codes 0-23)"},                                                \
      {"sd_id",                                                                                    \
       JW_OPT_STRING,                                                                              \
       offsetof(syslog_config_t, sd_id),                                                           \
       NULL,                                                                                       \
       0,                                                                                          \
       0,                                                                                          \
       "NAME@PEN",                                                                                 \
       "structured data [NAME@PEN run_id seq] under your own IANA enterprise number (default: "    \
       "none)"},                                                                                   \
  {                                                                                                \
    "max_message", JW_OPT_SIZE, offsetof(syslog_config_t, max_message), "8K", 1024, 64u << 20,     \
        NULL,                                                                                      \
        "longer messages go as continuation records (UDP: at most 65000); the collector's limit"   \
  }

static const jw_option_t syslog_options[] = {
    SYSLOG_ROWS,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

#ifdef _WIN32
/* syslog+tls: the same, and how the collector is checked. */
static const jw_option_t syslog_tls_options[] = {
    SYSLOG_ROWS,
    {"ca", JW_OPT_STRING, offsetof(syslog_config_t, ca), NULL, 0, 0, "FILE",
     "the collector's certificate must chain to a CA in FILE (PEM or DER; default: the "
     "system's trusted roots)"},
    {"insecure", JW_OPT_FLAG, offsetof(syslog_config_t, insecure), NULL, 0, 0, NULL,
     "no certificate check at all: for tests only; every event of the run is "
     "tagged " JW_TAG_INSECURE_TRANSPORT},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};
#endif

typedef struct {
  int tcp;
  int facility;
  char sd_id[40]; /* "" : none */
  size_t max_message;
  char host[256];
  char port[8];
  struct sockaddr_storage addr; /* resolved once, at init */
  int addr_len;
  int family;
  sock_t s; /* owner: this exporter; BAD_SOCK while disconnected */
  int tls;  /* syslog+tls: every connection is a TLS session (RFC 5425) */
#ifdef _WIN32
  jw__tls_creds_t *creds; /* owned; the CA checked at init */
  jw__tls_t *session;     /* owned; NULL while disconnected */
#endif
  jw_error_t send_err; /* why the last send failed (TLS: the session's word) */
  unsigned long pid;
  /* TCP syslog has no acknowledgement: frames the collector's kernel took
   * may die unread with it. The last RESEND_MAX frames sent are kept, back
   * to back, and sent again on the next connection after a break. */
  char *recent; /* owned */
  size_t recent_bytes, recent_cap;
  size_t recent_len[RESEND_MAX];
  int n_recent;
  int resend; /* the connection broke: resend `recent` first */
  /* What is being sent (one line's frames, or a whole batch's), back to
   * back, so that it goes out in as few sends as the socket takes. Per
   * frame: where it ends in `out`, and for the last frame of a line where
   * that line ends in the caller's input (NOT_LINE_END for the other
   * parts of a long line). Owned, reused from one call to the next. */
  char *out;
  size_t out_len, out_cap;
  size_t *frame_end, *line_end;
  size_t n_frames, frames_cap;
} syslog_state_t;

#define NOT_LINE_END ((size_t)-1)

/* Test hook (exporters/syslog/syslog.h): caps or fails each TCP send. */
static jw__syslog_send_hook_fn send_hook;

void jw__syslog_send_hook(jw__syslog_send_hook_fn fn) {
  send_hook = fn;
}

/* --- the small platform layer ---------------------------------------------- */

#ifdef _WIN32
static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_rc;

static BOOL CALLBACK wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA d;
  (void)once;
  (void)param;
  (void)ctx;
  wsa_rc = WSAStartup(MAKEWORD(2, 2), &d);
  return TRUE;
}

static int net_init(void) {
  InitOnceExecuteOnce(&wsa_once, wsa_start, NULL, NULL);
  return wsa_rc;
}
static uint32_t net_errno(void) {
  return (uint32_t)WSAGetLastError();
}
static void sock_close(sock_t s) {
  closesocket(s);
}
static unsigned long self_pid(void) {
  return (unsigned long)GetCurrentProcessId();
}
static sock_t sock_new(int family, int type, int proto) {
  sock_t s = WSASocketW(family, type, proto, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    /* Before Windows 7 SP1 the flag is unknown: clear the bit by hand. */
    s = WSASocketW(family, type, proto, NULL, 0, 0);
    if (s != INVALID_SOCKET)
      SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  }
  return s;
}
static int sock_nonblock(sock_t s, int on) {
  u_long v = (u_long)on;
  return ioctlsocket(s, FIONBIO, &v) == 0 ? 0 : -1;
}
static int connect_pending(uint32_t e) {
  return e == WSAEWOULDBLOCK || e == WSAEINPROGRESS;
}
static int would_block(uint32_t e) {
  return e == WSAEWOULDBLOCK;
}
#define SEND_TIMED_OUT WSAETIMEDOUT
#define CONN_RESET     WSAECONNRESET
/* 1 writable (connected or failed: see SO_ERROR), 0 timeout, -1 error. */
static int wait_writable(sock_t s, int ms) {
  fd_set w, x;
  struct timeval tv;
  int r;
  FD_ZERO(&w);
  FD_ZERO(&x);
  FD_SET(s, &w);
  FD_SET(s, &x);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  r = select(0, NULL, &w, &x, &tv);
  return r < 0 ? -1 : r > 0;
}
/* 1 when the socket has something to read (for a collector: closed). */
static int readable_now(sock_t s) {
  fd_set r;
  struct timeval tv = {0, 0};
  FD_ZERO(&r);
  FD_SET(s, &r);
  return select(0, &r, NULL, NULL, &tv) > 0;
}
static void set_send_timeout(sock_t s, int ms) {
  DWORD v = (DWORD)ms;
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&v, sizeof(v));
}
static long sock_send(sock_t s, const char *buf, size_t len) {
  return send(s, buf, len > 0x10000000 ? 0x10000000 : (int)len, 0);
}
static long sock_sendto(sock_t s, const char *buf, size_t len, const struct sockaddr *a, int alen) {
  return sendto(s, buf, (int)len, 0, a, alen);
}
static long sock_peek(sock_t s, char *buf, size_t len) {
  return recv(s, buf, (int)len, MSG_PEEK);
}
static int interrupted(uint32_t e) {
  return e == WSAEINTR;
}
#else
static int net_init(void) {
  return 0;
}
static uint32_t net_errno(void) {
  return (uint32_t)errno;
}
static void sock_close(sock_t s) {
  close(s);
}
static unsigned long self_pid(void) {
  return (unsigned long)getpid();
}
static sock_t sock_new(int family, int type, int proto) {
  return socket(family, type | SOCK_CLOEXEC, proto);
}
static int sock_nonblock(sock_t s, int on) {
  int fl = fcntl(s, F_GETFL);
  if (fl < 0)
    return -1;
  return fcntl(s, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) == 0 ? 0 : -1;
}
static int connect_pending(uint32_t e) {
  return e == EINPROGRESS || e == EINTR;
}
static int would_block(uint32_t e) {
  return e == EAGAIN || e == EWOULDBLOCK;
}
#define SEND_TIMED_OUT ETIMEDOUT
#define CONN_RESET     ECONNRESET
static int wait_writable(sock_t s, int ms) {
  struct pollfd p;
  int r;
  p.fd = s;
  p.events = POLLOUT;
  p.revents = 0;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : r > 0;
}
static int readable_now(sock_t s) {
  struct pollfd p;
  p.fd = s;
  p.events = POLLIN;
  p.revents = 0;
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}
static void set_send_timeout(sock_t s, int ms) {
  struct timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}
static long sock_send(sock_t s, const char *buf, size_t len) {
  return (long)send(s, buf, len, MSG_NOSIGNAL);
}
static long sock_sendto(sock_t s, const char *buf, size_t len, const struct sockaddr *a, int alen) {
  return (long)sendto(s, buf, len, MSG_NOSIGNAL, a, (socklen_t)alen);
}
static long sock_peek(sock_t s, char *buf, size_t len) {
  return (long)recv(s, buf, len, MSG_PEEK | MSG_DONTWAIT);
}
static int interrupted(uint32_t e) {
  return e == EINTR;
}
#endif

static void net_error_text(uint32_t e, char *buf, size_t size) {
#ifdef _WIN32
  jw__sys_error_text(e, buf, size);
#else
  jw__strlcpy(buf, strerror((int)e), size);
#endif
}

/* --- SPEC ------------------------------------------------------------------ */

static int usage(jw_exporter_t *self, jw_error_t *err) {
  return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected %s://HOST:PORT",
                      self->spec, self->vt->name);
}

/* arg is the SPEC after "syslog+xxx:", i.e. "//HOST:PORT". */
static int parse_target(jw_exporter_t *self, const char *arg, syslog_state_t *st, jw_error_t *err) {
  const char *h, *hend, *p;
  size_t hlen, plen, i;
  unsigned long port = 0;
  if (arg == NULL || strncmp(arg, "//", 2) != 0)
    return usage(self, err);
  h = arg + 2;
  if (*h == '[') {
    h++;
    hend = strchr(h, ']');
    if (hend == NULL || hend[1] != ':')
      return usage(self, err);
    p = hend + 2;
  } else {
    hend = strrchr(h, ':');
    if (hend == NULL || memchr(h, ':', (size_t)(hend - h)) != NULL)
      return usage(self, err);
    p = hend + 1;
  }
  hlen = (size_t)(hend - h);
  plen = strlen(p);
  if (hlen == 0 || hlen >= sizeof(st->host) || plen == 0 || plen > 5)
    return usage(self, err);
  for (i = 0; i < plen; i++) {
    if (p[i] < '0' || p[i] > '9')
      return usage(self, err);
    port = port * 10 + (unsigned long)(p[i] - '0');
  }
  if (port == 0 || port > 65535)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: port must be 1..65535",
                        self->spec);
  memcpy(st->host, h, hlen);
  st->host[hlen] = '\0';
  snprintf(st->port, sizeof(st->port), "%lu", port);
  return 0;
}

/* sd_id=: an SD-NAME (RFC 5424: 1-32 printable US-ASCII, no '=', ' ',
 * ']', '"') of the form NAME@PEN, PEN a private enterprise number
 * (digits and dots). The documentation number 32473 (RFC 5612) is for
 * examples, not for messages: refused. */
static int check_options(jw_exporter_t *self, syslog_state_t *st, jw_error_t *err) {
  const syslog_config_t *cfg = self->config;
  const char *sd = cfg->sd_id, *at, *p;
  st->facility = cfg->facility;
  st->max_message = (size_t)cfg->max_message;
  st->sd_id[0] = '\0';
  if (!st->tcp && cfg->max_message > SYSLOG_UDP_MAX)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: max_message: a UDP datagram holds at most %d bytes",
                        self->spec, SYSLOG_UDP_MAX);
  if (sd == NULL)
    return 0;
  at = strchr(sd, '@');
  for (p = sd; *p; p++)
    if (*p <= 32 || *p >= 127 || *p == '=' || *p == ']' || *p == '"')
      break;
  if (*p != '\0' || strlen(sd) > 32 || at == NULL || at == sd || at[1] == '\0' ||
      strspn(at + 1, "0123456789.") != strlen(at + 1) || at[1] == '.')
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: sd_id: expected NAME@PEN (at most 32 printable characters "
                        "without '=', ']', '\"' or spaces; PEN your IANA private enterprise "
                        "number), got \"%.40s\"",
                        self->spec, sd);
  if (strcmp(at + 1, "32473") == 0 || strncmp(at + 1, "32473.", 6) == 0)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: sd_id: 32473 is the enterprise number reserved for "
                        "documentation (RFC 5612); use your organisation's own number, or no "
                        "sd_id",
                        self->spec);
  jw__strlcpy(st->sd_id, sd, sizeof(st->sd_id));
  return 0;
}

static int resolve(jw_exporter_t *self, syslog_state_t *st, jw_error_t *err) {
  struct addrinfo hints, *res = NULL;
  int rc;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = st->tcp ? SOCK_STREAM : SOCK_DGRAM;
  rc = getaddrinfo(st->host, st->port, &hints, &res);
  if (rc != 0 || res == NULL) {
#ifdef _WIN32
    char why[256];
    net_error_text((uint32_t)rc, why, sizeof(why));
#else
    const char *why = gai_strerror(rc);
#endif
    return jw_error_set(err, JW_EIO, (uint32_t)rc, "--export",
                        "--export %s: cannot resolve '%s': %s", self->spec, st->host, why);
  }
  memcpy(&st->addr, res->ai_addr, res->ai_addrlen);
  st->addr_len = (int)res->ai_addrlen;
  st->family = res->ai_family;
  freeaddrinfo(res);
  return 0;
}

/* --- connection ------------------------------------------------------------ */

static int tcp_connect(jw_exporter_t *self, syslog_state_t *st, jw_error_t *err) {
  sock_t s;
  uint32_t e = 0;
  int r;
  char why[256];
  s = sock_new(st->family, SOCK_STREAM, IPPROTO_TCP);
  if (s == BAD_SOCK) {
    e = net_errno();
    goto fail;
  }
  if (sock_nonblock(s, 1) != 0) {
    e = net_errno();
    goto fail;
  }
  if (connect(s, (const struct sockaddr *)&st->addr, st->addr_len) != 0) {
    e = net_errno();
    if (!connect_pending(e))
      goto fail;
    r = wait_writable(s, CONNECT_TIMEOUT_MS);
    if (r <= 0) {
      e = r == 0 ? 0 : net_errno();
      sock_close(s);
      if (r == 0)
        return jw_error_set(err, JW_EIO, 0, self->spec,
                            "cannot connect to %s port %s: no answer within %d ms", st->host,
                            st->port, CONNECT_TIMEOUT_MS);
      s = BAD_SOCK;
      goto fail;
    }
    {
      int soerr = 0;
#ifdef _WIN32
      int sl = sizeof(soerr);
      getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&soerr, &sl);
#else
      socklen_t sl = sizeof(soerr);
      getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
#endif
      if (soerr != 0) {
        e = (uint32_t)soerr;
        goto fail;
      }
    }
  }
  /* The socket stays non-blocking: every send waits for room itself,
   * bounded by SEND_TIMEOUT_MS (Wine does not honour SO_SNDTIMEO on a
   * blocking send: a collector that stops reading would hold the sender
   * for ever; measured, docs/platform-support.md). */
  set_send_timeout(s, SEND_TIMEOUT_MS);
#ifdef _WIN32
  if (st->tls) {
    jw_error_t terr;
    int rc;
    memset(&terr, 0, sizeof(terr));
    rc = jw__tls_connect(st->creds, (uintptr_t)s, st->host, SEND_TIMEOUT_MS, &st->session, &terr);
    if (rc != 0) {
      sock_close(s);
      return jw_error_set(err, rc, terr.sys_error, self->spec, "TLS with %s port %s: %s", st->host,
                          st->port, terr.text);
    }
  }
#endif
  st->s = s;
  return 0;
fail:
  if (s != BAD_SOCK)
    sock_close(s);
  net_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_EIO, e, self->spec, "cannot connect to %s port %s: %s", st->host,
                      st->port, why);
}

static void disconnect(syslog_state_t *st) {
#ifdef _WIN32
  if (st->session != NULL) {
    jw__tls_close(st->session);
    st->session = NULL;
  }
#endif
  if (st->s != BAD_SOCK) {
    sock_close(st->s);
    st->s = BAD_SOCK;
  }
}

/* A collector never sends: a readable connection was closed or reset. */
static int connection_broken(syslog_state_t *st) {
  char c;
  long n;
#ifdef _WIN32
  if (st->session != NULL) /* TLS data is not a close: the session says */
    return jw__tls_peer_closed(st->session);
#endif
  if (!readable_now(st->s))
    return 0;
  n = sock_peek(st->s, &c, 1);
  return n <= 0;
}

/* One send loop for buf (frames back to back). 0, or -1 with the error
 * code in *e. *sent: the bytes handed to the connection (TLS: in records
 * that went out whole), on success and failure. */
static int send_all(syslog_state_t *st, const char *buf, size_t len, size_t *sent, uint32_t *e) {
  uint64_t deadline;
  *sent = 0;
  memset(&st->send_err, 0, sizeof(st->send_err));
#ifdef _WIN32
  if (st->session != NULL) {
    if (jw__tls_send_some(st->session, buf, len, sent, &st->send_err) == 0)
      return 0;
    *e = st->send_err.sys_error;
    return -1;
  }
#endif
  deadline = jw_now_us() + (uint64_t)SEND_TIMEOUT_MS * 1000u;
  while (len > 0) {
    size_t offer = len;
    long w;
    if (send_hook != NULL) {
      long cap = send_hook(len);
      if (cap < 0) {
        *e = CONN_RESET;
        return -1;
      }
      offer = (size_t)cap < len ? (size_t)cap : len;
    }
    w = sock_send(st->s, buf, offer);
    if (w <= 0) {
      *e = w < 0 ? net_errno() : 0;
      if (w < 0 && interrupted(*e))
        continue;
      if (w < 0 && would_block(*e)) {
        /* The collector's window is full: wait for room, not for ever. */
        uint64_t now = jw_now_us();
        int r = now < deadline ? wait_writable(st->s, (int)((deadline - now + 999u) / 1000u)) : 0;
        if (r > 0)
          continue;
        *e = r == 0 ? SEND_TIMED_OUT : net_errno();
      }
      return -1;
    }
    buf += w;
    len -= (size_t)w;
    *sent += (size_t)w;
    /* A batch may be long: the bound is on a collector that takes nothing. */
    deadline = jw_now_us() + (uint64_t)SEND_TIMEOUT_MS * 1000u;
  }
  return 0;
}

/* --- message ----------------------------------------------------------------- */

/* RFC 5424 header fields are PRINTUSASCII without spaces, bounded. */
static void header_field(char *dst, size_t size, const char *src, size_t max) {
  size_t i = 0;
  if (src != NULL)
    for (; src[i] != '\0' && i < max && i + 1 < size; i++)
      dst[i] = (src[i] > 32 && src[i] < 127) ? src[i] : '_';
  if (i == 0 && size > 1)
    dst[i++] = '-';
  dst[i] = '\0';
}

/* SD-PARAM value: '"', '\' and ']' are escaped with a backslash. */
static size_t sd_escape(char *dst, size_t size, const char *src) {
  size_t o = 0;
  for (; src != NULL && *src != '\0' && o + 2 < size; src++) {
    if (*src == '"' || *src == '\\' || *src == ']')
      dst[o++] = '\\';
    dst[o++] = *src;
  }
  dst[o] = '\0';
  return o;
}

static int severity_code(const char *name, const jw_event_t *ev) {
  static const struct {
    const char *name;
    int code;
  } map[] = {{"critical", 2}, {"high", 3}, {"medium", 4}, {"low", 5}, {"info", 6}};
  size_t i;
  if (name != NULL)
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
      if (strcmp(name, map[i].name) == 0)
        return map[i].code;
  if (ev != NULL)
    return severity_code(jw_severity_name(ev->severity), NULL);
  return 6;
}

/* The RFC 5424 header for a line (without its newline: msg_len bytes)
 * into hdr; the line's run_id (unescaped, for continuation records) and
 * seq. JW_EINVAL: the line can never be sent (not JSON). */
static int build_header(jw_exporter_t *self, syslog_state_t *st, const char *line, size_t msg_len,
                        const jw_event_t *ev, char hdr[1024], size_t *hlen, char run_raw[80],
                        uint64_t *seq_out, jw_error_t *err) {
  json_t *j;
  json_error_t jerr;
  char ts[64], host[256], msgid[40], run_id[200], seq[32];
  int n;
  const char *sev;
  jw_format_meta_t m;

  j = json_loadb(line, msg_len, JSON_ALLOW_NUL, &jerr);
  if (j == NULL) /* never deliverable: JW_EINVAL (src/spool.h) */
    return jw_error_set(err, JW_EINVAL, 0, self->spec, "event line is not JSON: %s", jerr.text);
  /* The header's facts, read where the sink's format keeps them. */
  jw_format_meta(self->format, j, &m);
  header_field(ts, sizeof(ts), m.timestamp, 40);
  header_field(host, sizeof(host), m.host, 255);
  header_field(msgid, sizeof(msgid), m.event, 32);
  sd_escape(run_id, sizeof(run_id), m.run_id);
  jw__strlcpy(run_raw, m.run_id != NULL ? m.run_id : "", 80);
  *seq_out = m.has_seq ? (uint64_t)m.seq : 0;
  snprintf(seq, sizeof(seq), "%lld", (long long)(m.has_seq ? m.seq : 0));
  sev = m.severity;
  if (st->sd_id[0] != '\0')
    n = snprintf(hdr, 1024, "<%d>1 %s %s jobwarden %lu %s [%s run_id=\"%s\" seq=\"%s\"] ",
                 st->facility * 8 + severity_code(sev, ev), ts, host, st->pid, msgid, st->sd_id,
                 run_id, seq);
  else
    n = snprintf(hdr, 1024, "<%d>1 %s %s jobwarden %lu %s - ",
                 st->facility * 8 + severity_code(sev, ev), ts, host, st->pid, msgid);
  json_decref(j);
  if (n < 0 || n >= 1024)
    return jw_error_set(err, JW_EINVAL, 0, self->spec, "syslog header too long");
  *hlen = (size_t)n;
  return 0;
}

/* --- framing: what is to be sent, back to back in st->out ---------------------- */

static void frames_reset(syslog_state_t *st) {
  st->out_len = 0;
  st->n_frames = 0;
}

/* Appends one frame: [octet count SP] header message. */
static int append_frame(syslog_state_t *st, const char *hdr, size_t hlen, const char *msg,
                        size_t msg_len) {
  char prefix[32];
  size_t plen = 0, total;
  if (st->tcp) {
    int n = snprintf(prefix, sizeof(prefix), "%lu ", (unsigned long)(hlen + msg_len));
    plen = n > 0 ? (size_t)n : 0;
  }
  total = plen + hlen + msg_len;
  if (st->out_cap - st->out_len < total) {
    size_t cap = st->out_cap ? st->out_cap : 64u << 10;
    char *p;
    while (cap - st->out_len < total)
      cap *= 2;
    p = realloc(st->out, cap);
    if (p == NULL)
      return JW_ENOMEM;
    st->out = p;
    st->out_cap = cap;
  }
  if (st->n_frames == st->frames_cap) {
    size_t cap = st->frames_cap ? st->frames_cap * 2 : 256;
    size_t *fe = realloc(st->frame_end, cap * sizeof(*fe)), *le;
    if (fe == NULL)
      return JW_ENOMEM;
    st->frame_end = fe;
    le = realloc(st->line_end, cap * sizeof(*le));
    if (le == NULL)
      return JW_ENOMEM;
    st->line_end = le;
    st->frames_cap = cap;
  }
  memcpy(st->out + st->out_len, prefix, plen);
  memcpy(st->out + st->out_len + plen, hdr, hlen);
  memcpy(st->out + st->out_len + plen + hlen, msg, msg_len);
  st->out_len += total;
  st->frame_end[st->n_frames] = st->out_len;
  st->line_end[st->n_frames] = NOT_LINE_END;
  st->n_frames++;
  return 0;
}

/* One continuation record of a line over max_message, with the line's
 * header. */
typedef struct {
  syslog_state_t *st;
  const char *hdr;
  size_t hlen;
} part_ctx_t;

static int append_part(void *ctx, const char *part, size_t part_len) {
  part_ctx_t *c = ctx;
  return append_frame(c->st, c->hdr, c->hlen, part, part_len);
}

/* Appends the frames of one line (len bytes, '\n' included): one message,
 * or continuation records when it is longer than max_message. line_end:
 * where the line ends in the caller's input, kept with its last frame.
 * JW_EINVAL: the line can never be sent (nothing is appended). */
static int frame_line(jw_exporter_t *self, syslog_state_t *st, const char *line, size_t len,
                      const jw_event_t *ev, size_t line_end, jw_error_t *err) {
  char hdr[1024], run_id[80];
  size_t msg_len = len, hlen = 0, out_len = st->out_len, n_frames = st->n_frames;
  uint64_t seq = 0;
  part_ctx_t pc;
  int rc;

  if (msg_len > 0 && line[msg_len - 1] == '\n')
    msg_len--;
  rc = build_header(self, st, line, msg_len, ev, hdr, &hlen, run_id, &seq, err);
  if (rc != 0)
    return rc;
  if (hlen + msg_len <= st->max_message) {
    rc = append_frame(st, hdr, hlen, line, msg_len);
  } else if (st->max_message < hlen + JW_PARTS_MIN_MAX) {
    return jw_error_set(err, JW_EINVAL, 0, self->spec,
                        "message of %lu bytes exceeds max_message=%lu, and its %lu-byte header "
                        "leaves less than %u bytes for a continuation record; not sent",
                        (unsigned long)(hlen + msg_len), (unsigned long)st->max_message,
                        (unsigned long)hlen, (unsigned)JW_PARTS_MIN_MAX);
  } else {
    /* Too long for one message: continuation records, each a message with
     * this line's header (src/parts.h); never cut. A part that fails to
     * go fails the line: it is sent again whole later (readers ignore a
     * part they already have). */
    pc.st = st;
    pc.hdr = hdr;
    pc.hlen = hlen;
    rc = jw__parts_split(line, msg_len, st->max_message - hlen, run_id, seq, append_part, &pc, err);
    if (rc == JW_PARTS_FITS) /* cannot be: it did not fit */
      rc = jw_error_set(err, JW_EINVAL, 0, self->spec, "continuation records: the line fits");
  }
  if (rc == JW_ENOMEM && err->text[0] == '\0')
    jw_error_set(err, JW_ENOMEM, 0, self->spec, "out of memory");
  if (rc != 0) {
    st->out_len = out_len; /* none of this line's frames */
    st->n_frames = n_frames;
    return rc;
  }
  st->line_end[st->n_frames - 1] = line_end;
  return 0;
}

/* --- callbacks --------------------------------------------------------------- */

static int syslog_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  syslog_state_t *st;
  int rc;
  uint32_t e;
  char why[256];
  st = calloc(1, sizeof(*st));
  if (st == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  st->s = BAD_SOCK;
  st->tls = strcmp(self->vt->name, "syslog+tls") == 0;
  st->tcp = st->tls || strcmp(self->vt->name, "syslog+tcp") == 0;
  st->pid = self_pid();
  rc = parse_target(self, arg, st, err);
  if (rc == 0)
    rc = check_options(self, st, err);
  if (rc == 0 && net_init() != 0)
    rc = jw_error_set(err, JW_ESYS, 0, "--export", "--export %s: cannot start Winsock", self->spec);
  if (rc == 0)
    rc = resolve(self, st, err);
#ifdef _WIN32
  if (rc == 0 && st->tls) {
    /* The CA file is read now: a bad one is a set-up error. */
    const syslog_config_t *cfg = self->config;
    jw__tls_config_t tc;
    jw_error_t terr;
    memset(&tc, 0, sizeof(tc));
    memset(&terr, 0, sizeof(terr));
    tc.ca_file = cfg->ca;
    tc.insecure = cfg->insecure;
    rc = jw__tls_creds_new(&tc, &st->creds, &terr);
    if (rc != 0)
      jw_error_set(err, rc == JW_ENOMEM ? rc : JW_EUSAGE, terr.sys_error, "--export",
                   "--export %s: %s", self->spec, terr.text);
    if (rc == 0 && cfg->insecure) {
      char warn[700];
      int n = snprintf(warn, sizeof(warn),
                       "jobwarden: exporter '%s' does not check its collector's certificate "
                       "(insecure: for tests only); every event of this run is tagged %s\n",
                       self->spec, JW_TAG_INSECURE_TRANSPORT);
      self->insecure = 1;
      if (n > 0)
        jw__stderr_write(warn, (size_t)n < sizeof(warn) ? (size_t)n : sizeof(warn) - 1);
    }
  }
#endif
  if (rc == 0 && st->tcp) {
    /* Without a spool, refuse to start when the collector is not there:
     * like an unwritable log path, a sink that cannot take the first event
     * is a set-up error. With one, the spool holds the lines until it
     * comes (connected at the first delivery). */
    int spooled = self->delivery.spool == NULL || strcmp(self->delivery.spool, "none") != 0;
    jw_error_t cerr;
    memset(&cerr, 0, sizeof(cerr));
    rc = spooled ? 0 : tcp_connect(self, st, &cerr);
    if (rc != 0)
      jw_error_set(err, rc, cerr.sys_error, "--export", "--export %s: %s", self->spec, cerr.text);
  } else if (rc == 0) {
    st->s = sock_new(st->family, SOCK_DGRAM, IPPROTO_UDP);
    if (st->s == BAD_SOCK) {
      e = net_errno();
      net_error_text(e, why, sizeof(why));
      rc = jw_error_set(err, JW_EIO, e, "--export", "--export %s: cannot create a UDP socket: %s",
                        self->spec, why);
    }
  }
  if (rc != 0) {
    disconnect(st);
    free(st);
    return rc;
  }
  self->state = st;
  return 0;
}

/* Keeps frames [first, end) of st->out, just sent, as the newest of the
 * last RESEND_MAX. Out of memory: none are kept (the resend after a break
 * is a best effort; the spool holds every line not sent). */
static void remember(syslog_state_t *st, size_t first, size_t end) {
  size_t n, drop, start, bytes, i;
  if (end <= first)
    return;
  if (end - first > RESEND_MAX)
    first = end - RESEND_MAX;
  n = end - first;
  drop = (size_t)st->n_recent + n > RESEND_MAX ? (size_t)st->n_recent + n - RESEND_MAX : 0;
  if (drop > 0) {
    size_t gone = 0;
    for (i = 0; i < drop; i++)
      gone += st->recent_len[i];
    memmove(st->recent, st->recent + gone, st->recent_bytes - gone);
    memmove(st->recent_len, st->recent_len + drop,
            ((size_t)st->n_recent - drop) * sizeof(st->recent_len[0]));
    st->n_recent -= (int)drop;
    st->recent_bytes -= gone;
  }
  start = first > 0 ? st->frame_end[first - 1] : 0;
  bytes = st->frame_end[end - 1] - start;
  if (st->recent_cap - st->recent_bytes < bytes) {
    size_t cap = (st->recent_bytes + bytes) * 2; /* frames vary: not a realloc per batch */
    char *p = realloc(st->recent, cap);
    if (p == NULL) {
      st->n_recent = 0;
      st->recent_bytes = 0;
      return;
    }
    st->recent = p;
    st->recent_cap = cap;
  }
  memcpy(st->recent + st->recent_bytes, st->out + start, bytes);
  st->recent_bytes += bytes;
  for (i = first; i < end; i++)
    st->recent_len[st->n_recent++] = st->frame_end[i] - (i > 0 ? st->frame_end[i - 1] : 0);
}

/* Sends the remembered frames again on a new connection: at-least-once
 * around a collector restart (a repeated line has the same run_id and seq). */
static int resend_recent(syslog_state_t *st, uint32_t *e) {
  size_t sent = 0;
  return st->n_recent > 0 ? send_all(st, st->recent, st->recent_bytes, &sent, e) : 0;
}

/* UDP: one datagram per frame of st->out, fire and forget. */
static int send_datagrams(jw_exporter_t *self, syslog_state_t *st, jw_error_t *err) {
  size_t i, start = 0;
  char why[256];
  for (i = 0; i < st->n_frames; i++) {
    size_t flen = st->frame_end[i] - start;
    long w =
        sock_sendto(st->s, st->out + start, flen, (const struct sockaddr *)&st->addr, st->addr_len);
    uint32_t e = w < 0 ? net_errno() : 0;
    if (w != (long)flen) {
      net_error_text(e, why, sizeof(why));
      return jw_error_set(err, JW_EIO, e, self->spec, "UDP send to %s port %s failed: %s", st->host,
                          st->port, w < 0 ? why : "short datagram");
    }
    start = st->frame_end[i];
  }
  return 0;
}

/* TCP/TLS: sends st->out on the current connection if it is healthy (it
 * is checked once, not once per frame), else on one new connection; after
 * a break, the frames sent last on the old one go again first. A send
 * that stops part way goes on from the first byte not taken; when the
 * connection breaks, the next one starts at the first frame of the first
 * line not sent whole, so that line goes again byte for byte. *done: where
 * the last line sent whole ends in the caller's input (0: none). fresh:
 * the caller has just connected (a fresh connection gets one try only). */
static int send_frames(jw_exporter_t *self, syslog_state_t *st, int fresh, size_t *done,
                       jw_error_t *err) {
  size_t from = 0, first = 0; /* the first frame not sent, and where it starts */
  uint32_t e = 0;
  char why[256];
  int rc, attempt;
  *done = 0;
  for (attempt = fresh; attempt < 2; attempt++) {
    size_t sent = 0, k, last = NOT_LINE_END;
    if (st->s != BAD_SOCK && connection_broken(st)) {
      disconnect(st);
      st->resend = 1;
    }
    if (st->s == BAD_SOCK) {
      if (attempt == 0)
        attempt = 1; /* a fresh connection gets one try only */
      rc = tcp_connect(self, st, err);
      if (rc != 0)
        return rc;
    }
    if (st->resend) {
      if (resend_recent(st, &e) != 0) {
        disconnect(st);
        continue;
      }
      st->resend = 0;
    }
    rc = send_all(st, st->out + from, st->out_len - from, &sent, &e);
    /* The lines whose frames all went: delivered as far as TCP tells. */
    for (k = first; k < st->n_frames && st->frame_end[k] <= from + sent; k++)
      if (st->line_end[k] != NOT_LINE_END)
        last = k;
    if (last != NOT_LINE_END) {
      remember(st, first, last + 1);
      *done = st->line_end[last];
      first = last + 1;
      from = st->frame_end[last];
    }
    if (rc == 0)
      return 0;
    disconnect(st);
    st->resend = 1;
  }
  if (st->send_err.text[0] != '\0')
    return jw_error_set(err, JW_EIO, e, self->spec, "TLS send to %s port %s failed: %s", st->host,
                        st->port, st->send_err.text);
  if (e == SEND_TIMED_OUT)
    snprintf(why, sizeof(why), "the collector took nothing for %d ms (it does not read)",
             SEND_TIMEOUT_MS);
  else
    net_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_EIO, e, self->spec, "TCP send to %s port %s failed: %s", st->host,
                      st->port, e ? why : "connection closed");
}

/* One line (the writer thread with spool=none, UDP). */
static int syslog_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                         jw_error_t *err) {
  syslog_state_t *st = self->state;
  size_t done = 0;
  int rc;
  frames_reset(st);
  rc = frame_line(self, st, line, len, ev, len, err);
  if (rc != 0)
    return rc;
  return st->tcp ? send_frames(self, st, 0, &done, err) : send_datagrams(self, st, err);
}

/* A batch from the spool (TCP/TLS): every line framed into one buffer, up
 * to the first line that can never be sent; the connection checked once;
 * the buffer sent with as few sends as the socket takes. */
static int syslog_deliver(jw_exporter_t *self, const char *lines, size_t len, size_t *done,
                          jw_error_t *err) {
  syslog_state_t *st = self->state;
  size_t pos = 0;
  int rc = 0, fresh = 0;
  jw_error_t why;
  *done = 0;
  memset(&why, 0, sizeof(why));
  if (st->s == BAD_SOCK) {
    /* No collector, no framing: a retry against a collector that is away
     * costs one connection attempt. */
    rc = tcp_connect(self, st, err);
    if (rc != 0)
      return rc;
    fresh = 1;
  }
  frames_reset(st);
  while (pos < len) {
    const char *nl = memchr(lines + pos, '\n', len - pos);
    size_t l = nl != NULL ? (size_t)(nl - (lines + pos)) + 1 : len - pos;
    rc = frame_line(self, st, lines + pos, l, NULL, pos + l, &why);
    if (rc != 0)
      break;
    pos += l;
  }
  if (st->n_frames > 0) {
    int sent = send_frames(self, st, fresh, done, err);
    if (sent != 0)
      return sent;
  }
  if (rc != 0) {
    /* The line at pos can never be sent (JW_EINVAL), or there was no
     * memory to frame it: the lines before it went. */
    *err = why;
    return rc;
  }
  return 0;
}

static void syslog_close(jw_exporter_t *self) {
  syslog_state_t *st = self->state;
  if (st == NULL)
    return;
  disconnect(st);
#ifdef _WIN32
  jw__tls_creds_free(st->creds);
#endif
  free(st->recent);
  free(st->out);
  free(st->frame_end);
  free(st->line_end);
  free(st);
  self->state = NULL;
}

static int syslog_check(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  syslog_state_t st;
  int rc;
  memset(&st, 0, sizeof(st));
  st.tcp = strcmp(self->vt->name, "syslog+udp") != 0;
#ifdef _WIN32
  if (strcmp(self->vt->name, "syslog+tls") == 0) {
    /* The CA file is checked by the policy check too. */
    const syslog_config_t *cfg = self->config;
    jw__tls_config_t tc;
    jw__tls_creds_t *c = NULL;
    jw_error_t terr;
    memset(&tc, 0, sizeof(tc));
    memset(&terr, 0, sizeof(terr));
    tc.ca_file = cfg->ca;
    tc.insecure = cfg->insecure;
    rc = parse_target(self, arg, &st, err);
    if (rc == 0)
      rc = check_options(self, &st, err);
    if (rc == 0 && jw__tls_creds_new(&tc, &c, &terr) != 0)
      rc = jw_error_set(err, JW_EUSAGE, terr.sys_error, "--export", "--export %s: %s", self->spec,
                        terr.text);
    jw__tls_creds_free(c);
    return rc;
  }
#endif
  rc = parse_target(self, arg, &st, err);
  return rc != 0 ? rc : check_options(self, &st, err);
}

const jw_exporter_vtable_t jw_exporter_syslog_udp = {
    .name = "syslog+udp",
    .init = syslog_init,
    .export_line = syslog_export,
    .close = syslog_close,
    .check = syslog_check,
    .usage = "syslog+udp://HOST:PORT",
    .summary = "RFC 5424 messages in UDP datagrams (RFC 5426): fire and forget, no spool",
    .options = syslog_options,
    .config_size = sizeof(syslog_config_t),
};
const jw_exporter_vtable_t jw_exporter_syslog_tcp = {
    .name = "syslog+tcp",
    .init = syslog_init,
    .export_line = syslog_export,
    .deliver_lines = syslog_deliver,
    .close = syslog_close,
    .check = syslog_check,
    .usage = "syslog+tcp://HOST:PORT",
    .summary = "RFC 5424 messages over TCP, octet-counted (RFC 6587); spooled while the "
               "collector is away",
    .options = syslog_options,
    .config_size = sizeof(syslog_config_t),
    .delivery = JW_DELIVERY_NETWORK,
};
#ifdef _WIN32
const jw_exporter_vtable_t jw_exporter_syslog_tls = {
    .name = "syslog+tls",
    .init = syslog_init,
    .export_line = syslog_export,
    .deliver_lines = syslog_deliver,
    .close = syslog_close,
    .check = syslog_check,
    .usage = "syslog+tls://HOST:PORT",
    .summary = "RFC 5424 messages over TLS (RFC 5425) through Windows' SChannel; the collector's "
               "certificate checked against ca= or the system's roots; spooled while it is away",
    .options = syslog_tls_options,
    .config_size = sizeof(syslog_config_t),
    .delivery = JW_DELIVERY_NETWORK,
};
#endif

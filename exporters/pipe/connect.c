/* pipe-connect exporter (Windows): pushes the event stream into a pipe that
 * a collector already serves (\\.\pipe\NAME), one JSON line per event.
 *
 * SPEC: pipe-connect:NAME (NAME as for pipe:), and the delivery options of
 * every network sink (spool=, spool_max=, drain=, retry_max=).
 *
 * A NETWORK sink (src/spool.h): every line goes to the sink's spool first
 * and its sender delivers from there; export_line is one attempt — connect
 * if not connected (a collector that serves the pipe with every instance
 * taken gets a short WaitNamedPipe), write the line; deliver_lines writes
 * a batch of what the spool holds with one write. The collector may be
 * absent at start, busy, or restart during the run: the spool holds the
 * lines and the sender retries with backoff. A write the collector does
 * not take within WRITE_TIMEOUT_MS is a failed attempt too.
 *
 * With spool=none there is no spool: the first line that finds no
 * collector waits for one, retrying with backoff (50 ms doubling to 1 s)
 * for up to RECONNECT_WAIT_MS; if none comes, that line and the following
 * ones are lost (the emitter turns them into one sandbox.telemetry_gap
 * record, written first when a collector is back) and each later line
 * costs one quick connection attempt.
 *
 * A pipe has no acknowledgement: lines in the pipe's buffer die unread
 * with a collector that goes away. So the last RESEND_MAX lines written are
 * kept and written again first on the next connection after a break:
 * delivery is at-least-once around a break, and a collector deduplicates on
 * run_id + seq (seq only grows within a run). It must also discard an
 * incomplete last line of a connection that broke.
 *
 * The client end is opened with SECURITY_IDENTIFICATION, so the collector
 * can identify jobwarden's user but never act as it, and is not
 * inheritable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "exporters.h"
#include "internal.h"

#define RECONNECT_WAIT_MS 5000
#define BACKOFF_FIRST_MS  50
#define BACKOFF_MAX_MS    1000
#define WRITE_TIMEOUT_MS  5000
#define RESEND_MAX        16

typedef struct {
  char name[JW_PIPE_NAME_MAX + 1];
  wchar_t *path;      /* owned */
  HANDLE h;           /* owner: this exporter; NULL while disconnected */
  HANDLE wev;         /* owner: this exporter; completes the overlapped writes */
  int waited;         /* a wait for the collector already ran out */
  int spooled;        /* the engine retries: one attempt per call */
  jw__lineq_t recent; /* the last RESEND_MAX lines written */
  int resend;         /* a connection broke: write `recent` first */
} connect_state_t;

static int connect_parse(const jw_exporter_t *self, const char *arg, connect_state_t *cs,
                         jw_error_t *err) {
  char what[32 + JW_EXPORTER_SPEC_MAX];
  const char *name = arg ? arg : "";
  snprintf(what, sizeof(what), "--export %s", self->spec);
  if (strchr(name, ',') != NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "%s: a pipe NAME has no ','", what);
  if (jw__pipe_name_check(&name, what, err) != 0)
    return err->code;
  jw__strlcpy(cs->name, name, sizeof(cs->name));
  return 0;
}

static int connect_check(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  connect_state_t cs;
  return connect_parse(self, arg, &cs, err);
}

static int connect_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  connect_state_t *cs = calloc(1, sizeof(*cs));
  char path[JW_PIPE_NAME_MAX + 16];
  int rc;
  if (cs == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  rc = connect_parse(self, arg, cs, err);
  if (rc == 0) {
    snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", cs->name);
    cs->path = jw__utf8_to_wide(path);
    if (cs->path == NULL)
      rc = jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: NAME is not valid UTF-8",
                        self->spec);
  }
  if (rc == 0 && (cs->wev = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    rc = jw_error_set(err, JW_ESYS, GetLastError(), "CreateEventW",
                      "--export %s: cannot create an event", self->spec);
  if (rc != 0) {
    free(cs->path);
    free(cs);
    return rc;
  }
  cs->spooled = self->delivery.spool == NULL || strcmp(self->delivery.spool, "none") != 0;
  self->state = cs; /* connected lazily: the collector may start later */
  return 0;
}

static void disconnect(connect_state_t *cs) {
  if (cs->h != NULL) {
    CloseHandle(cs->h);
    cs->h = NULL;
    cs->resend = cs->recent.head != NULL;
  }
}

/* One attempt. 0 connected, else the Win32 error. */
static DWORD try_connect(connect_state_t *cs) {
  HANDLE h =
      CreateFileW(cs->path, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                  FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
  if (h == INVALID_HANDLE_VALUE)
    return GetLastError();
  cs->h = h;
  cs->waited = 0;
  return 0;
}

/* Connects, waiting for a collector unless a wait already ran out. */
static DWORD ensure_connected(connect_state_t *cs) {
  ULONGLONG deadline;
  DWORD backoff = BACKOFF_FIRST_MS, e;
  if (cs->h != NULL)
    return 0;
  e = try_connect(cs);
  if (e == ERROR_PIPE_BUSY && cs->spooled && WaitNamedPipeW(cs->path, BACKOFF_MAX_MS))
    e = try_connect(cs);
  if (e == 0 || cs->waited || cs->spooled)
    return e;
  deadline = GetTickCount64() + RECONNECT_WAIT_MS;
  while (e != 0 && GetTickCount64() < deadline) {
    if (e == ERROR_PIPE_BUSY) /* served, every instance taken: wait for one */
      WaitNamedPipeW(cs->path, backoff);
    else
      Sleep(backoff);
    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    e = try_connect(cs);
  }
  if (e != 0)
    cs->waited = 1;
  return e;
}

/* Writes all of line (one line or a batch of them) on the current
 * connection. 0 or the Win32 error. *wrote (may be NULL): the bytes the
 * pipe took, also on failure. */
static DWORD write_line(connect_state_t *cs, const char *line, size_t len, size_t *wrote) {
  OVERLAPPED o;
  DWORD e = 0;
  HANDLE ev = cs->wev;
  if (wrote != NULL)
    *wrote = 0;
  while (len > 0 && e == 0) {
    DWORD put = 0, chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    memset(&o, 0, sizeof(o));
    o.hEvent = ev;
    if (!WriteFile(cs->h, line, chunk, &put, &o)) {
      e = GetLastError();
      if (e == ERROR_IO_PENDING) {
        e = 0;
        if (WaitForSingleObject(ev, WRITE_TIMEOUT_MS) != WAIT_OBJECT_0) {
          CancelIoEx(cs->h, &o);
          e = ERROR_TIMEOUT;
        }
        if (!GetOverlappedResult(cs->h, &o, &put, TRUE) && e == 0)
          e = GetLastError();
      }
    }
    line += put;
    len -= put;
    if (wrote != NULL)
      *wrote += put;
  }
  return e;
}

/* Keeps the last RESEND_MAX of the whole lines in lines[0..len). */
static void remember(connect_state_t *cs, const char *lines, size_t len) {
  const char *end = lines + len, *start = end;
  int n = 0;
  /* The start of the last RESEND_MAX lines: only those are kept. */
  while (start > lines && n < RESEND_MAX) {
    const char *p = start - 1;
    while (p > lines && p[-1] != '\n')
      p--;
    start = p;
    n++;
  }
  while (start < end) {
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    size_t l = nl != NULL ? (size_t)(nl - start) + 1 : (size_t)(end - start);
    jw__line_t *it = jw__line_new(0, JW_EVENT_NOTICE, start, l);
    if (it != NULL) {
      jw__lineq_push(&cs->recent, it);
      if (cs->recent.queued > RESEND_MAX)
        free(jw__lineq_pop(&cs->recent));
    }
    start += l;
  }
}

/* Connects if needed, writes the lines a broken connection may have lost,
 * then lines[0..len) (whole lines) with one write. 0 or the Win32 error
 * (the connection is then closed). *done: the bytes of the lines the pipe
 * took whole. */
static DWORD deliver(connect_state_t *cs, const char *lines, size_t len, size_t *done) {
  DWORD e = ensure_connected(cs);
  jw__line_t *it;
  size_t wrote = 0;
  *done = 0;
  if (e != 0)
    return e;
  if (cs->resend) {
    for (it = cs->recent.head; it != NULL && e == 0; it = it->next)
      e = write_line(cs, it->data, it->len, NULL);
    if (e == 0)
      cs->resend = 0;
  }
  if (e == 0)
    e = write_line(cs, lines, len, &wrote);
  /* The lines written whole count; a torn one goes again whole. */
  while (wrote > 0 && lines[wrote - 1] != '\n')
    wrote--;
  *done = wrote;
  remember(cs, lines, wrote);
  if (e != 0)
    disconnect(cs);
  return e;
}

/* One attempt for lines[0..len): one write for all of them; a collector
 * that went away since the last write gets one new connection at once,
 * from the first line not written whole. */
static DWORD deliver_attempt(connect_state_t *cs, const char *lines, size_t len, size_t *done) {
  int had = cs->h != NULL;
  size_t more = 0;
  DWORD e = deliver(cs, lines, len, done);
  if (e != 0 && had && e != ERROR_TIMEOUT) {
    e = deliver(cs, lines + *done, len - *done, &more);
    *done += more;
  }
  return e;
}

static int connect_error(jw_exporter_t *self, connect_state_t *cs, DWORD e, jw_error_t *err) {
  return jw_error_set(err, JW_EIO, e, "--export",
                      "--export %s: no collector takes lines on \\\\.\\pipe\\%s (error %lu)%s",
                      self->spec, cs->name, (unsigned long)e,
                      e == ERROR_FILE_NOT_FOUND ? ": nothing serves that pipe" : "");
}

static int connect_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                          jw_error_t *err) {
  connect_state_t *cs = self->state;
  size_t done = 0;
  DWORD e = deliver_attempt(cs, line, len, &done);
  (void)ev;
  return e == 0 ? 0 : connect_error(self, cs, e, err);
}

/* A batch from the spool: one write for all of it. */
static int connect_deliver(jw_exporter_t *self, const char *lines, size_t len, size_t *done,
                           jw_error_t *err) {
  connect_state_t *cs = self->state;
  DWORD e = deliver_attempt(cs, lines, len, done);
  return e == 0 ? 0 : connect_error(self, cs, e, err);
}

static void connect_close(jw_exporter_t *self) {
  connect_state_t *cs = self->state;
  if (cs == NULL)
    return;
  disconnect(cs);
  jw__lineq_clear(&cs->recent);
  CloseHandle(cs->wev);
  free(cs->path);
  free(cs);
  self->state = NULL;
}

const jw_exporter_vtable_t jw_exporter_pipe_connect = {
    .name = "pipe-connect",
    .init = connect_init,
    .export_line = connect_export,
    .deliver_lines = connect_deliver,
    .close = connect_close,
    .check = connect_check,
    .usage = "pipe-connect:NAME",
    .summary = "writes into \\\\.\\pipe\\NAME that a collector serves; spooled while it is "
               "away",
    .delivery = JW_DELIVERY_NETWORK,
};

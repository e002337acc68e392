/* pipe exporter (Windows): serves the event stream on a named pipe that any
 * number of local readers (`jobwarden tail NAME`, a collector) connect to
 * and leave at any time.
 *
 * SPEC: pipe:NAME[,replay=N][,buffer=N][,max_readers=N]. NAME is the part
 * after \\.\pipe\ (no backslash, slash, comma or control character, at
 * most 200 bytes).
 *   replay=N   lines a reader gets on connecting, from before it connected
 *              (0..65536, default 256): a late reader sees the context.
 *   buffer=N   lines queued for one reader before it loses lines (16..1M,
 *              default 4096); alerts (violations, notices, gap records)
 *              may fill four times that.
 *   max_readers=N  readers served at the same time (1..256, default 16); a
 *              client beyond that is disconnected at once (it reads EOF)
 *              and the refusal recorded in-band (rule pipe_reader_refused,
 *              severity medium, the client's pid and image).
 *
 * Readers from inside the job. Before a client is served, the run's gate
 * (jw_exporter_set_gate: jobwarden run sets one that asks IsProcessInJob
 * for GetNamedPipeClientProcessId's pid) is asked; a client that is a
 * process of the sandboxed job, or whose identity cannot be established, is
 * disconnected before it reads a byte and the refusal recorded in-band
 * (rule pipe_reader_refused, severity critical): the program does not get
 * the telemetry about itself. So is a process that escaped the job (not
 * in it, but its parent is jobwarden or a process of the job).
 *
 * What a reader costs (docs/architecture.md): one thread with a stack of
 * READER_STACK_BYTES (64 KiB reserved, instead of the default 1 MB), three
 * events, one pipe instance with a PIPE_OUT_BYTES kernel buffer, and its
 * queue: at most buffer=N lines (4 N for alerts), each at most one event
 * (an event line is at most about 70 KB; typically 1-2 KB). With
 * max_readers=16 the number of readers, and so all of that, is bounded.
 *
 * The pipe is created with a DACL that grants access to the owner (the
 * user jobwarden runs as) and SYSTEM only, FILE_FLAG_FIRST_PIPE_INSTANCE
 * (a name someone already serves is refused, not shared: no squatting) and
 * PIPE_REJECT_REMOTE_CLIENTS. Handles are not inheritable. Wine enforces
 * neither the DACL nor FIRST_PIPE_INSTANCE, so the name is also checked with
 * WaitNamedPipeW before it is created (docs/platform-support.md).
 *
 * Each reader has its own queue and writer thread. A reader with nothing
 * queued and nobody writing to it gets the line straight from the sink's
 * writer (one overlapped WriteFile, no hand-off: under Wine that saves the
 * wake-up of the reader's thread, four round trips to the server). A write
 * that does not complete at once (the reader's pipe is full) is handed to
 * the reader's thread, which waits for it; lines after it are queued. Else
 * export_line only copies the line into the reader's queue, so a slow
 * reader never delays the emitter or another reader; what a reader can
 * hold beyond its queue is one write of at most PIPE_OUT_BYTES (plus one
 * line). When a reader's queue is full it loses lines
 * and, before the next line it does get, reads a sandbox.telemetry_gap
 * record for exactly the seq range it missed (gap.reason "reader_slow",
 * gap.reader = its number). A late reader's stream starts with a gap record
 * for the events before its replay (reason "joined_late", severity info),
 * so every reader's stream accounts for every seq from 1. A reader that
 * goes away (WriteFile fails with ERROR_NO_DATA 232, or its pending read
 * ends with ERROR_BROKEN_PIPE 109) is dropped; the run goes on.
 *
 * At the end of the run every reader gets what is queued for it, then its
 * handle is closed: a reader reads to the last line, then gets
 * ERROR_BROKEN_PIPE. A reader that makes no progress for CLOSE_DEADLINE_MS
 * is given up then, and the end waits CLOSE_MAX_MS at most.
 *
 * The pipe is duplex: bytes a reader writes are read and discarded (the
 * control channel is a pipe of its own: src/win/control.c). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <sddl.h>

#include "exporters.h"
#include "format.h"
#include "internal.h"
#include "seal.h"

#define PIPE_REPLAY_DEFAULT  256
#define PIPE_REPLAY_MAX      65536
#define PIPE_BUFFER_DEFAULT  4096
#define PIPE_BUFFER_MIN      16
#define PIPE_BUFFER_MAX      1048576
#define PIPE_OUT_BYTES       65536 /* the kernel's buffer, per instance */
#define PIPE_IN_BYTES        4096
#define PIPE_READERS_DEFAULT 16
#define PIPE_READERS_MAX     256
#define READER_STACK_BYTES   (64u * 1024u) /* reader_main needs a few KB */
#define CLOSE_DEADLINE_MS    3000
#define CLOSE_MAX_MS         30000

typedef struct pipe_state_s pipe_state_t;

/* The bytes written with one WriteFile: whole lines, each sealed with the
 * reader's chain in a sealed run. */
typedef struct {
  char *p;
  size_t len, cap;
} out_t;

/* Who writes to a reader's pipe, and moves its seal chain, now. */
enum {
  W_NONE,   /* nobody: the next line may be written by the sink's writer */
  W_THREAD, /* the reader's thread (lines queued for it, a gap it holds) */
  W_SINK,   /* the sink's writer, in pipe_export: a line straight to the pipe */
  W_HANDED  /* the sink writer's write did not complete at once: the
             * reader's thread finishes it, then carries on */
};

typedef struct reader_s {
  struct reader_s *next;
  pipe_state_t *ps;
  HANDLE pipe; /* server end of this reader's instance, overlapped */
  HANDLE wake; /* auto-reset: its queue grew, or the run is closing */
  HANDLE wev;  /* manual-reset: its overlapped writes complete (its thread's) */
  jw__thread_t thread;
  uint64_t id;     /* 1, 2, ... in connection order */
  jw__lineq_t q;   /* guarded by ps->lock */
  uint64_t last;   /* last seq queued or dropped for it; guarded */
  int done;        /* its thread has finished; guarded */
  jw_seal_t *seal; /* its own chain "S/id" in a sealed run (its writer's) */
  int writer;      /* W_*; guarded */
  int ending;      /* its thread is finishing: no more direct writes; guarded */
  /* The direct write (the sink writer's while W_SINK, the thread's once
   * W_HANDED): its bytes stay alive until it completes. */
  struct reader_s *dnext; /* the sink writer's list in one export call */
  size_t dfrom;           /* the call's first line that goes to it directly */
  size_t dbytes;          /* and the bytes from there: the rest is queued */
  OVERLAPPED dwo;
  HANDLE dev; /* manual-reset: dwo's event */
  out_t dout;
  DWORD dput; /* bytes of dout the WriteFile took at once */
  DWORD derr; /* its WriteFile's error: ERROR_IO_PENDING, or what ended it */
} reader_t;

struct pipe_state_s {
  char name[JW_PIPE_NAME_MAX + 1];
  wchar_t *path; /* \\.\pipe\NAME, owned */
  size_t replay, buffer;
  size_t max_readers;      /* readers served at the same time */
  PSECURITY_DESCRIPTOR sd; /* owned (LocalFree) */
  SECURITY_ATTRIBUTES sa;
  HANDLE listening; /* the instance waiting for the next reader */
  HANDLE stop;      /* manual-reset: stop accepting */
  HANDLE abort;     /* manual-reset: give up on readers that do not read */
  jw__thread_t acceptor;
  int acceptor_started;
  jw__mutex_t lock; /* guards everything below */
  reader_t *readers;
  uint64_t next_id;
  jw__lineq_t ring; /* the last `replay` lines */
  uint64_t last_seq;
  int closing;
  uint64_t readers_gone; /* readers that went away before the end */
  uint64_t direct;       /* writes the sink's writer made itself */
  uint64_t handed;       /* ... that did not complete at once */
  uint64_t resumed;      /* ... cancelled by the writer's end, finished here */
  DWORD gone_error;      /* the Win32 error that showed the last one */
  const jw_exporter_t *self;
};

/* --- SPEC ------------------------------------------------------------------ */

typedef struct {
  uint64_t replay, buffer, max_readers;
} pipe_config_t;

static const jw_option_t pipe_options[] = {
    {"replay", JW_OPT_COUNT, offsetof(pipe_config_t, replay), "256", 0, PIPE_REPLAY_MAX, "N lines",
     "lines a reader gets on connecting, from before it connected"},
    {"buffer", JW_OPT_COUNT, offsetof(pipe_config_t, buffer), "4096", PIPE_BUFFER_MIN,
     PIPE_BUFFER_MAX, "N lines",
     "lines queued for one reader before it loses lines (alerts: 4 times)"},
    {"max_readers", JW_OPT_COUNT, offsetof(pipe_config_t, max_readers), "16", 1, PIPE_READERS_MAX,
     "N readers", "readers served at the same time; one more is refused and recorded"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

static int parse_pipe_spec(const jw_exporter_t *self, const char *arg, pipe_state_t *ps,
                           jw_error_t *err) {
  const pipe_config_t *cfg = self->config;
  const char *name = arg ? arg : "";
  char what[64 + JW_EXPORTER_SPEC_MAX];
  snprintf(what, sizeof(what), "--export %s", self->spec);
  if (strlen(name) > JW_PIPE_NAME_MAX)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "%s: pipe NAME is longer than %d bytes",
                        what, JW_PIPE_NAME_MAX);
  if (jw__pipe_name_check(&name, what, err) != 0)
    return err->code;
  jw__strlcpy(ps->name, name, sizeof(ps->name));
  ps->replay = (size_t)cfg->replay;
  ps->buffer = (size_t)cfg->buffer;
  ps->max_readers = (size_t)cfg->max_readers;
  return 0;
}

static int pipe_check(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  pipe_state_t ps;
  memset(&ps, 0, sizeof(ps));
  return parse_pipe_spec(self, arg, &ps, err);
}

/* --- security -------------------------------------------------------------- */

/* Owner and SYSTEM only: "O:<user>D:P(A;;GA;;;<user>)(A;;GA;;;SY)". */
static int make_security(pipe_state_t *ps, jw_error_t *err) {
  HANDLE token = NULL;
  union {
    TOKEN_USER tu;
    unsigned char raw[256];
  } u;
  DWORD got = 0;
  LPWSTR sid = NULL;
  wchar_t sddl[512];
  int rc = 0;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return jw_error_set(err, JW_ESYS, GetLastError(), "OpenProcessToken",
                        "--export pipe:%s: cannot read the current user (OpenProcessToken)",
                        ps->name);
  if (!GetTokenInformation(token, TokenUser, &u, sizeof(u), &got) ||
      !ConvertSidToStringSidW(u.tu.User.Sid, &sid)) {
    rc = jw_error_set(err, JW_ESYS, GetLastError(), "GetTokenInformation",
                      "--export pipe:%s: cannot read the current user's SID", ps->name);
    goto done;
  }
  if (_snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]), L"O:%lsD:P(A;;GA;;;%ls)(A;;GA;;;SY)", sid,
                 sid) < 0 ||
      !ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &ps->sd, NULL)) {
    rc = jw_error_set(
        err, JW_ESYS, GetLastError(), "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        "--export pipe:%s: cannot build the owner-only security descriptor", ps->name);
    goto done;
  }
  ps->sa.nLength = sizeof(ps->sa);
  ps->sa.lpSecurityDescriptor = ps->sd;
  ps->sa.bInheritHandle = FALSE;
done:
  if (sid != NULL)
    LocalFree(sid);
  CloseHandle(token);
  return rc;
}

static HANDLE new_instance(pipe_state_t *ps, int first) {
  return CreateNamedPipeW(
      ps->path,
      PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      PIPE_UNLIMITED_INSTANCES, PIPE_OUT_BYTES, PIPE_IN_BYTES, 0, &ps->sa);
}

/* --- one reader ------------------------------------------------------------ */

/* Starts the read whose completion tells that the reader went away (or
 * wrote something, which is discarded). 0, or the Win32 error that says it
 * is already gone (ERROR_BROKEN_PIPE). */
static DWORD start_read(reader_t *r, OVERLAPPED *ro, char *buf, DWORD size) {
  DWORD got, e;
  for (;;) {
    ResetEvent(ro->hEvent);
    if (ReadFile(r->pipe, buf, size, &got, ro))
      continue; /* data was there: discard, read again */
    e = GetLastError();
    return e == ERROR_IO_PENDING ? 0 : e;
  }
}

/* The pending read completed: data (discarded; read again) or the end. */
static DWORD read_completed(reader_t *r, OVERLAPPED *ro, char *buf, DWORD size) {
  DWORD got;
  if (!GetOverlappedResult(r->pipe, ro, &got, FALSE))
    return GetLastError();
  return start_read(r, ro, buf, size);
}

/* Waits for the write wo (event ev) that WriteFile left pending, reading
 * on: *put is what it wrote. 0, or the Win32 error that ended this reader:
 * ERROR_BROKEN_PIPE from its pending read, ERROR_OPERATION_ABORTED when
 * the run ends and it does not read. */
static DWORD wait_write(reader_t *r, OVERLAPPED *wo, HANDLE ev, OVERLAPPED *ro, char *rbuf,
                        DWORD rsize, DWORD *put) {
  DWORD rc = 0;
  for (;;) {
    HANDLE hs[3] = {ev, ro->hEvent, r->ps->abort};
    DWORD w = WaitForMultipleObjects(3, hs, FALSE, INFINITE);
    if (w == WAIT_OBJECT_0)
      return GetOverlappedResult(r->pipe, wo, put, FALSE) ? 0 : GetLastError();
    if (w == WAIT_OBJECT_0 + 1 && (rc = read_completed(r, ro, rbuf, rsize)) == 0)
      continue;
    /* gone, or the run ends and this reader does not read */
    CancelIoEx(r->pipe, wo);
    GetOverlappedResult(r->pipe, wo, put, TRUE);
    return rc != 0 ? rc : ERROR_OPERATION_ABORTED;
  }
}

/* Writes all of data. 0, or the Win32 error that ended this reader:
 * ERROR_NO_DATA (232) when it closed its end, or one of wait_write's. */
static DWORD write_all(reader_t *r, const char *data, size_t len, OVERLAPPED *ro, char *rbuf,
                       DWORD rsize) {
  OVERLAPPED wo;
  DWORD rc = 0;
  while (len > 0 && rc == 0) {
    DWORD put = 0, chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    memset(&wo, 0, sizeof(wo));
    wo.hEvent = r->wev;
    if (!WriteFile(r->pipe, data, chunk, &put, &wo)) {
      rc = GetLastError();
      if (rc != ERROR_IO_PENDING)
        break; /* ERROR_NO_DATA (232): the reader closed its end */
      rc = wait_write(r, &wo, r->wev, ro, rbuf, rsize, &put);
    }
    data += put;
    len -= put;
  }
  return rc;
}

/* The line as this reader gets it: sealed on its own chain (started
 * from the sink's root at its first line) when the run seals. *sealed is
 * the caller's to free (NULL when not sealed). 0 or a Win32 error. */
static DWORD reader_seal(reader_t *r, const char **data, size_t *len, int end, char **sealed) {
  const jw_seal_t *root = r->ps->self->seal;
  size_t slen = 0;
  *sealed = NULL;
  if (root != NULL && r->seal == NULL && jw_seal_child(root, (unsigned long)r->id, &r->seal) != 0)
    return ERROR_NOT_ENOUGH_MEMORY;
  if (r->seal != NULL) {
    if (jw_seal_line(r->seal, *data, *len, end ? JW_SEAL_END : 0, sealed, &slen) != 0)
      return ERROR_NOT_ENOUGH_MEMORY;
    *data = *sealed;
    *len = slen;
  }
  return 0;
}

/* After a write of sealed lines: the reader's chain moves on when it was
 * written (e == 0), else goes back to before them. */
static void chain_settle(reader_t *r, DWORD e) {
  if (r->seal == NULL)
    return;
  if (e == 0)
    jw_seal_commit(r->seal);
  else
    jw_seal_abort(r->seal);
}

/* Writes one line to reader r, sealed with the reader's own chain when the
 * run seals (each reader's stream is complete in itself: its replay, its
 * gap records, the live lines). The chain is made at the first line: the
 * run sets the sink's root before any line exists. */
static DWORD reader_write(reader_t *r, const char *data, size_t len, int end, OVERLAPPED *ro,
                          char *rbuf, DWORD rsize) {
  char *sealed;
  DWORD e = reader_seal(r, &data, &len, end, &sealed);
  if (e != 0)
    return e;
  e = write_all(r, data, len, ro, rbuf, rsize);
  chain_settle(r, e);
  free(sealed);
  return e;
}

/* The gap record of g for reader r in the sink's format (format=), new
 * buffer in *line. Returns 0 or a JW_E* code. */
static int render_gap(reader_t *r, const jw__gap_t *g, char **line, size_t *len) {
  const jw_exporter_t *self = r->ps->self;
  char *native = NULL, *conv = NULL;
  size_t nlen = 0, clen = 0;
  int rc = jw__gap_render(self->run, self->spec, r->id, g,
                          strcmp(g->reason, "joined_late") == 0 ? JW_SEV_INFO : JW_SEV_HIGH,
                          &native, &nlen);
  if (rc != 0 || self->format == JW_FORMAT_NATIVE) {
    *line = native;
    *len = nlen;
    return rc;
  }
  rc = jw_format_line(self->format, native, nlen, &conv, &clen);
  free(native);
  *line = conv;
  *len = clen;
  return rc;
}

/* Writes the record of the losses in g and clears it. 0 or the error. */
static DWORD write_gap(reader_t *r, jw__gap_t *g, OVERLAPPED *ro, char *rbuf, DWORD rsize) {
  char *line = NULL;
  size_t len = 0;
  DWORD e = 0;
  if (render_gap(r, g, &line, &len) == 0) {
    e = reader_write(r, line, len, 0, ro, rbuf, rsize);
    free(line);
  }
  g->count = 0;
  return e;
}

/* Appends one line to o, sealed when the run seals (the chain moves on;
 * reader_flush commits or aborts it with the write). 0 or a Win32 error. */
static DWORD reader_append(reader_t *r, out_t *o, const char *data, size_t len, int end) {
  char *sealed;
  DWORD se = reader_seal(r, &data, &len, end, &sealed);
  if (se != 0)
    return se;
  if (o->len + len > o->cap) {
    size_t cap = o->cap ? o->cap : PIPE_OUT_BYTES;
    char *n;
    while (cap < o->len + len)
      cap *= 2;
    n = realloc(o->p, cap);
    if (n == NULL) {
      free(sealed);
      return ERROR_NOT_ENOUGH_MEMORY;
    }
    o->p = n;
    o->cap = cap;
  }
  memcpy(o->p + o->len, data, len);
  o->len += len;
  free(sealed);
  return 0;
}

/* Writes what o holds in one go; the seal chain is committed when it was
 * written, else rolled back. 0 or the error that ended the reader. */
static DWORD reader_flush(reader_t *r, out_t *o, OVERLAPPED *ro, char *rbuf, DWORD rsize) {
  DWORD e = o->len > 0 ? write_all(r, o->p, o->len, ro, rbuf, rsize) : 0;
  chain_settle(r, e);
  o->len = 0;
  return e;
}

/* The sink writer's direct write that did not complete at once, now this
 * thread's: waited for (reading on), what it left written, the chain
 * committed or rolled back. 0 or the error that ended the reader. */
static DWORD finish_handed(reader_t *r, OVERLAPPED *ro, char *rbuf, DWORD rsize) {
  DWORD e = r->derr, put = r->dput;
  if (e == ERROR_IO_PENDING) {
    e = wait_write(r, &r->dwo, r->dev, ro, rbuf, rsize, &put);
    /* A pending write is cancelled when the thread that made it ends: the
     * sink's writer, at the run's end (seen under Wine, and Windows does
     * the same for a handle without a completion port). The rest is
     * written from here; only the end's own give-up (abort) stops it. */
    if (e == ERROR_OPERATION_ABORTED && WaitForSingleObject(r->ps->abort, 0) == WAIT_TIMEOUT) {
      e = 0;
      jw__mutex_lock(&r->ps->lock);
      r->ps->resumed++;
      jw__mutex_unlock(&r->ps->lock);
    }
  }
  if (e == 0 && put < r->dout.len)
    e = write_all(r, r->dout.p + put, r->dout.len - put, ro, rbuf, rsize);
  chain_settle(r, e);
  r->dout.len = 0;
  return e;
}

static void reader_main(void *arg) {
  reader_t *r = arg;
  pipe_state_t *ps = r->ps;
  OVERLAPPED ro;
  char rbuf[256];
  jw__gap_t gap = {0, 0, 0, NULL};
  DWORD gone = 0; /* the Win32 error that ended this reader */
  jw__lineq_t batch;
  out_t out = {NULL, 0, 0};

  memset(&ro, 0, sizeof(ro));
  memset(&batch, 0, sizeof(batch));
  ro.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  r->wev = CreateEventW(NULL, TRUE, FALSE, NULL);
  gone =
      ro.hEvent == NULL || r->wev == NULL ? GetLastError() : start_read(r, &ro, rbuf, sizeof(rbuf));
  while (!gone) {
    jw__line_t *it;
    int closing, handed = 0;
    /* Everything queued for it in one take, written with as few
     * WriteFile calls as the pipe's buffer allows (one per
     * PIPE_OUT_BYTES): under Wine each is a round trip to the server.
     * With nothing queued and no gap held, the sink's writer may write
     * the next line itself (W_NONE). */
    jw__mutex_lock(&ps->lock);
    if (r->writer == W_HANDED) {
      r->writer = W_THREAD;
      handed = 1;
    } else if (r->writer != W_SINK) {
      jw__lineq_take(&r->q, &batch);
      r->writer = batch.head != NULL || gap.count > 0 ? W_THREAD : W_NONE;
    }
    closing = ps->closing;
    jw__mutex_unlock(&ps->lock);
    if (handed) {
      gone = finish_handed(r, &ro, rbuf, sizeof(rbuf));
      continue;
    }
    if (batch.head == NULL) {
      HANDLE hs[2] = {r->wake, ro.hEvent};
      DWORD w;
      if (closing)
        break; /* everything it was owed is written */
      w = WaitForMultipleObjects(2, hs, FALSE, INFINITE);
      if (w == WAIT_OBJECT_0 + 1)
        gone = read_completed(r, &ro, rbuf, sizeof(rbuf));
      else if (w != WAIT_OBJECT_0)
        gone = GetLastError();
      continue;
    }
    while (!gone && (it = jw__lineq_pop(&batch)) != NULL) {
      if (it->gap_count > 0) {
        jw__gap_add(&gap, it->gap_from, it->seq, it->gap_count, it->gap_reason);
        free(it);
        continue;
      }
      if (gap.count > 0) {
        char *line = NULL;
        size_t len = 0;
        if (render_gap(r, &gap, &line, &len) == 0) {
          gone = reader_append(r, &out, line, len, 0);
          free(line);
        }
        gap.count = 0;
      }
      if (!gone)
        gone = reader_append(r, &out, it->data, it->len, it->kind == JW_EVENT_JOB_END);
      free(it);
      if (!gone && out.len >= PIPE_OUT_BYTES)
        gone = reader_flush(r, &out, &ro, rbuf, sizeof(rbuf));
    }
    if (!gone)
      gone = reader_flush(r, &out, &ro, rbuf, sizeof(rbuf));
  }
  jw__lineq_clear(&batch);
  free(out.p);
  /* The sink's writer writes to this pipe no more; a write of its still
   * in flight (the reader went away) is cancelled. */
  jw__mutex_lock(&ps->lock);
  r->ending = 1;
  while (r->writer == W_SINK) {
    jw__mutex_unlock(&ps->lock);
    WaitForSingleObject(r->wake, INFINITE); /* it sets it when it is done */
    jw__mutex_lock(&ps->lock);
  }
  if (r->writer == W_HANDED) {
    DWORD got;
    if (r->derr == ERROR_IO_PENDING &&
        (CancelIoEx(r->pipe, &r->dwo) || GetLastError() != ERROR_NOT_FOUND))
      GetOverlappedResult(r->pipe, &r->dwo, &got, TRUE);
    chain_settle(r, ERROR_OPERATION_ABORTED); /* never written whole */
  }
  r->writer = W_THREAD;
  jw__mutex_unlock(&ps->lock);
  if (!gone && gap.count > 0) /* lost at the very end: still said */
    gone = write_gap(r, &gap, &ro, rbuf, sizeof(rbuf));
  if (ro.hEvent != NULL) {
    DWORD got;
    if (CancelIoEx(r->pipe, &ro) || GetLastError() != ERROR_NOT_FOUND)
      GetOverlappedResult(r->pipe, &ro, &got, TRUE);
    CloseHandle(ro.hEvent);
  }
  if (r->wev != NULL)
    CloseHandle(r->wev);
  /* Not DisconnectNamedPipe: that would discard what the reader has not
   * read yet. After CloseHandle it reads the rest, then ERROR_BROKEN_PIPE. */
  CloseHandle(r->pipe);
  r->pipe = NULL;
  jw__mutex_lock(&ps->lock);
  jw__lineq_clear(&r->q);
  if (gone != 0) {
    ps->readers_gone++;
    ps->gone_error = gone;
  }
  r->done = 1;
  jw__mutex_unlock(&ps->lock);
}

/* Frees readers whose thread has finished (lock held). */
static void reap(pipe_state_t *ps) {
  reader_t **pp = &ps->readers;
  while (*pp != NULL) {
    reader_t *r = *pp;
    if (!r->done) {
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    jw__thread_join(&r->thread); /* it has finished: at most a moment */
    CloseHandle(r->wake);
    CloseHandle(r->dev);
    free(r->dout.p);
    jw_seal_free(r->seal);
    free(r);
  }
}

/* A reader connected on `h`: give it the replay and start its writer. */
static void add_reader(pipe_state_t *ps, HANDLE h) {
  reader_t *r = calloc(1, sizeof(*r));
  jw__line_t *it;
  if (r == NULL || (r->wake = CreateEventW(NULL, FALSE, FALSE, NULL)) == NULL ||
      (r->dev = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    if (r != NULL && r->wake != NULL)
      CloseHandle(r->wake);
    free(r);
    CloseHandle(h);
    return;
  }
  r->ps = ps;
  r->pipe = h;
  jw__mutex_lock(&ps->lock);
  reap(ps);
  r->id = ++ps->next_id;
  /* Everything before the replay is accounted for by one record. */
  {
    uint64_t first = ps->ring.head ? ps->ring.head->seq : ps->last_seq + 1;
    if (first > 1)
      jw__lineq_drop(&r->q, 1, first - 1, "joined_late");
  }
  for (it = ps->ring.head; it != NULL; it = it->next) {
    jw__line_t *copy = NULL;
    if (it->gap_count == 0)
      copy = jw__line_new(it->seq, it->kind, it->data, it->len);
    if (copy != NULL)
      jw__lineq_push(&r->q, copy);
    else if (it->gap_count > 0)
      jw__lineq_drop(&r->q, it->gap_from, it->seq, it->gap_reason);
    else
      jw__lineq_drop(&r->q, it->seq, it->seq, "out_of_memory");
  }
  r->last = ps->last_seq;
  if (jw__thread_start_stack(&r->thread, reader_main, r, READER_STACK_BYTES) != 0) {
    jw__mutex_unlock(&ps->lock);
    jw__lineq_clear(&r->q);
    CloseHandle(r->wake);
    CloseHandle(r->dev);
    CloseHandle(h);
    free(r);
    return;
  }
  r->next = ps->readers;
  ps->readers = r;
  jw__mutex_unlock(&ps->lock);
}

/* --- accepting readers ----------------------------------------------------- */

/* Readers being served now (lock held). */
static size_t active_readers(pipe_state_t *ps) {
  size_t n = 0;
  reader_t *r;
  for (r = ps->readers; r != NULL; r = r->next)
    n += !r->done;
  return n;
}

/* Whether the client connected on h may be served; when not, it is
 * disconnected (it reads EOF: ERROR_BROKEN_PIPE), h is closed and the
 * refusal recorded. Returns 1 to serve it. The acceptor's thread, no lock
 * held. */
static int admit(pipe_state_t *ps, HANDLE h) {
  const jw_client_gate_t *gate = ps->self->gate;
  ULONG pid = 0;
  char why[300] = "";
  jw_client_verdict_t verdict = JW_CLIENT_OK;
  jw_client_refusal_t what = JW_CLIENT_REFUSED_MAX;
  size_t active;
  if (!GetNamedPipeClientProcessId(h, &pid)) {
    snprintf(why, sizeof(why), "GetNamedPipeClientProcessId failed (error %lu)",
             (unsigned long)GetLastError());
    pid = 0;
    verdict = JW_CLIENT_UNKNOWN;
  } else if (gate != NULL) {
    verdict = gate->check(gate->ctx, (uint32_t)pid, why, sizeof(why));
  }
  jw__mutex_lock(&ps->lock);
  reap(ps);
  active = active_readers(ps);
  jw__mutex_unlock(&ps->lock);
  if (verdict == JW_CLIENT_IN_JOB)
    what = JW_CLIENT_REFUSED_IN_JOB;
  else if (verdict == JW_CLIENT_ESCAPED)
    what = JW_CLIENT_REFUSED_ESCAPED;
  else if (verdict != JW_CLIENT_OK && gate != NULL)
    what = JW_CLIENT_REFUSED_UNKNOWN;
  else if (active < ps->max_readers)
    return 1; /* without a gate an unknown pid is served as before */
  if (what == JW_CLIENT_REFUSED_MAX)
    snprintf(why, sizeof(why), "%lu readers are served already (max_readers=%lu)",
             (unsigned long)active, (unsigned long)ps->max_readers);
  /* Recorded first, while the client still waits for its first byte: a
   * client of the job that learnt of its refusal could end the job (and
   * so the record) before the refusal is in it. */
  if (gate != NULL && gate->refused != NULL) {
    gate->refused(gate->ctx, ps->self->spec, what, (uint32_t)pid, why, ps->max_readers);
  } else {
    char msg[600];
    int n =
        snprintf(msg, sizeof(msg), "jobwarden: exporter 'pipe:%s' refused a reader (pid %lu): %s\n",
                 ps->name, (unsigned long)pid, why);
    if (n > 0)
      jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
  }
  /* DisconnectNamedPipe drops the instance at once: the client's pending
   * or next read ends with ERROR_PIPE_NOT_CONNECTED (233), or
   * ERROR_BROKEN_PIPE (109), without a single byte of the stream. */
  DisconnectNamedPipe(h);
  CloseHandle(h);
  return 0;
}

static void acceptor_main(void *arg) {
  pipe_state_t *ps = arg;
  OVERLAPPED co;
  memset(&co, 0, sizeof(co));
  co.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (co.hEvent == NULL)
    return;
  while (ps->listening != NULL) {
    HANDLE h = ps->listening;
    int connected = 0;
    DWORD got;
    ResetEvent(co.hEvent);
    if (ConnectNamedPipe(h, &co) || GetLastError() == ERROR_PIPE_CONNECTED) {
      connected = 1;
    } else if (GetLastError() == ERROR_IO_PENDING) {
      HANDLE hs[2] = {co.hEvent, ps->stop};
      if (WaitForMultipleObjects(2, hs, FALSE, INFINITE) == WAIT_OBJECT_0) {
        connected = GetOverlappedResult(h, &co, &got, FALSE) != 0;
      } else {
        CancelIoEx(h, &co);
        GetOverlappedResult(h, &co, &got, TRUE);
        break; /* the run ends */
      }
    }
    if (WaitForSingleObject(ps->stop, 0) == WAIT_OBJECT_0) {
      if (connected && admit(ps, h))
        add_reader(ps, h); /* it still gets its replay before the end */
      else
        CloseHandle(h);
      ps->listening = NULL;
      break;
    }
    /* The next instance exists before this one is handed over, so a reader
     * can always connect. */
    ps->listening = new_instance(ps, 0);
    if (connected) {
      if (admit(ps, h))
        add_reader(ps, h);
    } else {
      CloseHandle(h); /* the client left before it was served */
    }
    if (ps->listening == INVALID_HANDLE_VALUE) {
      char msg[400];
      int n = snprintf(msg, sizeof(msg),
                       "jobwarden: exporter 'pipe:%s' cannot accept more readers "
                       "(CreateNamedPipeW failed with error %lu); connected readers go on\n",
                       ps->name, (unsigned long)GetLastError());
      if (n > 0)
        jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
      ps->listening = NULL;
    }
  }
  if (ps->listening != NULL) {
    CloseHandle(ps->listening);
    ps->listening = NULL;
  }
  CloseHandle(co.hEvent);
}

/* --- the exporter ---------------------------------------------------------- */

static void pipe_free(pipe_state_t *ps) {
  if (ps->listening != NULL && ps->listening != INVALID_HANDLE_VALUE)
    CloseHandle(ps->listening);
  if (ps->stop != NULL)
    CloseHandle(ps->stop);
  if (ps->abort != NULL)
    CloseHandle(ps->abort);
  if (ps->sd != NULL)
    LocalFree(ps->sd);
  jw__lineq_clear(&ps->ring);
  jw__mutex_destroy(&ps->lock);
  free(ps->path);
  free(ps);
}

static int pipe_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  pipe_state_t *ps = calloc(1, sizeof(*ps));
  char path[JW_PIPE_NAME_MAX + 16];
  int rc;
  if (ps == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  jw__mutex_init(&ps->lock);
  ps->self = self;
  rc = parse_pipe_spec(self, arg, ps, err);
  if (rc != 0)
    goto fail;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", ps->name);
  ps->path = jw__utf8_to_wide(path);
  if (ps->path == NULL) {
    rc = jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: NAME is not valid UTF-8",
                      self->spec);
    goto fail;
  }
  rc = make_security(ps, err);
  if (rc != 0)
    goto fail;
  /* Refuse a name that is already served. FIRST_PIPE_INSTANCE makes this
   * race-free on Windows; the probe also covers Wine, which ignores it. */
  if (WaitNamedPipeW(ps->path, 1) || GetLastError() != ERROR_FILE_NOT_FOUND) {
    rc = jw_error_set(err, JW_EUSAGE, ERROR_ACCESS_DENIED, "--export",
                      "--export %s: %s already exists (another jobwarden run or another program "
                      "serves it); choose another NAME",
                      self->spec, path);
    goto fail;
  }
  ps->listening = new_instance(ps, 1);
  if (ps->listening == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();
    ps->listening = NULL;
    if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY)
      rc = jw_error_set(err, JW_EUSAGE, e, "--export",
                        "--export %s: %s already exists (another jobwarden run or another "
                        "program serves it); choose another NAME",
                        self->spec, path);
    else
      rc = jw_error_set(err, JW_ESYS, e, "CreateNamedPipeW",
                        "--export %s: cannot create %s (CreateNamedPipeW, error %lu)", self->spec,
                        path, (unsigned long)e);
    goto fail;
  }
  ps->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
  ps->abort = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (ps->stop == NULL || ps->abort == NULL ||
      jw__thread_start(&ps->acceptor, acceptor_main, ps) != 0) {
    rc = jw_error_set(err, JW_ESYS, GetLastError(), "CreateThread",
                      "--export %s: cannot start the pipe's threads", self->spec);
    goto fail;
  }
  ps->acceptor_started = 1;
  self->state = ps;
  return 0;
fail:
  pipe_free(ps);
  return rc;
}

/* One line into the replay ring and every reader's queue (ps->lock held),
 * or, for a reader whose pipe nobody writes to now, with nothing queued
 * for it, onto *direct: the caller writes this line (index i of its call)
 * and the rest of its call to that reader itself, saving the hand-off to
 * the reader's thread (under Wine four round trips to the server). */
static void queue_line(pipe_state_t *ps, uint64_t seq, jw_event_kind_t kind, const char *line,
                       size_t len, size_t i, reader_t **direct) {
  reader_t *r;
  ps->last_seq = seq;
  if (ps->replay > 0) {
    jw__line_t *it = jw__line_new(seq, kind, line, len);
    if (it != NULL) {
      jw__lineq_push(&ps->ring, it);
    } else {
      /* the replay shows the hole as lost, not as a late join */
      jw__lineq_drop(&ps->ring, seq, seq, "out_of_memory");
    }
    while (ps->ring.queued > ps->replay)
      free(jw__lineq_pop(&ps->ring));
    /* a marker at the head is covered by a late reader's joined_late gap */
    while (ps->ring.head != NULL && ps->ring.head->gap_count > 0)
      free(jw__lineq_pop(&ps->ring));
  }
  for (r = ps->readers; r != NULL; r = r->next) {
    size_t limit = jw__is_alert(kind) ? ps->buffer * 4 : ps->buffer;
    jw__line_t *it = NULL;
    if (r->done)
      continue;
    if (r->writer == W_SINK && r->q.head == NULL && r->dbytes < PIPE_OUT_BYTES) {
      r->dbytes += len; /* taken by this call already; up to a pipe's buffer */
      r->last = seq;
      continue;
    }
    if (r->writer == W_NONE && r->q.head == NULL && !r->ending && !ps->closing) {
      r->writer = W_SINK;
      r->dfrom = i;
      r->dbytes = len;
      r->dnext = *direct;
      *direct = r;
      r->last = seq;
      continue;
    }
    if (r->q.queued < limit)
      it = jw__line_new(seq, kind, line, len);
    if (it != NULL)
      jw__lineq_push(&r->q, it);
    else /* everything since what it last got: gap records included */
      jw__lineq_drop(&r->q, r->last + 1, seq,
                     r->q.queued < limit ? "out_of_memory" : "reader_slow");
    r->last = seq;
  }
}

/* Writes, for each reader on the list, its lines of this call (from
 * r->dfrom on, sealed with its chain) with one WriteFile, no lock held.
 * One that does not complete at once (its pipe's buffer is full) or fails
 * is handed to the reader's thread, which waits for it, reading on, or ends
 * the reader: the sink's writer never waits for a reader. */
static void write_direct(pipe_state_t *ps, reader_t *list, const jw_line_ref_t *lines, size_t n) {
  reader_t *r, *next;
  for (r = list; r != NULL; r = next) {
    DWORD e = 0, put = 0;
    size_t i, taken;
    next = r->dnext;
    r->dout.len = 0;
    for (i = r->dfrom, taken = 0; i < n && taken < r->dbytes && e == 0; i++) {
      taken += lines[i].len;
      e = reader_append(r, &r->dout, lines[i].line, lines[i].len,
                        lines[i].kind == JW_EVENT_JOB_END);
    }
    if (e == 0) {
      memset(&r->dwo, 0, sizeof(r->dwo));
      r->dwo.hEvent = r->dev;
      /* dout is at most PIPE_OUT_BYTES and one line (queue_line) */
      if (!WriteFile(r->pipe, r->dout.p, (DWORD)r->dout.len, &put, &r->dwo))
        e = GetLastError();
      else if (put == r->dout.len)
        chain_settle(r, 0);
    }
    r->dput = e == 0 ? put : 0;
    r->derr = e;
    jw__mutex_lock(&ps->lock);
    ps->direct++;
    if (e == 0 && put == r->dout.len) {
      r->writer = W_NONE;
      if (r->ending || r->q.head != NULL)
        SetEvent(r->wake); /* its thread waits for this write, or has lines */
    } else {
      ps->handed++;
      r->writer = W_HANDED;
      SetEvent(r->wake);
    }
    jw__mutex_unlock(&ps->lock);
  }
}

/* Wakes every reader with something queued once (ps->lock held): after a
 * line or a whole batch, so that a batch costs one SetEvent per reader, not
 * one per line. A reader written to directly is not woken. */
static void wake_readers(pipe_state_t *ps) {
  reader_t *r;
  for (r = ps->readers; r != NULL; r = r->next)
    if (!r->done && r->q.head != NULL)
      SetEvent(r->wake);
}

static size_t pipe_export_lines(jw_exporter_t *self, const jw_line_ref_t *lines, size_t n,
                                jw_error_t *err) {
  pipe_state_t *ps = self->state;
  reader_t *direct = NULL;
  size_t i;
  (void)err;
  jw__mutex_lock(&ps->lock);
  for (i = 0; i < n; i++)
    queue_line(ps, lines[i].seq, lines[i].kind, lines[i].line, lines[i].len, i, &direct);
  wake_readers(ps);
  reap(ps);
  jw__mutex_unlock(&ps->lock);
  write_direct(ps, direct, lines, n);
  return n;
}

static int pipe_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  jw_line_ref_t one;
  one.line = line;
  one.len = len;
  one.seq = ev->seq;
  one.kind = ev->kind;
  pipe_export_lines(self, &one, 1, err); /* takes every line */
  return 0;
}

static void pipe_close(jw_exporter_t *self) {
  pipe_state_t *ps = self->state;
  reader_t *r;
  ULONGLONG deadline, limit;
  size_t last_queued = (size_t)-1;
  if (ps == NULL)
    return;
  SetEvent(ps->stop);
  if (ps->acceptor_started)
    jw__thread_join(&ps->acceptor);
  jw__mutex_lock(&ps->lock);
  ps->closing = 1;
  for (r = ps->readers; r != NULL; r = r->next)
    SetEvent(r->wake);
  jw__mutex_unlock(&ps->lock);
  /* Readers that read get everything, however slowly, as long as they make
   * progress; one that stops reading for CLOSE_DEADLINE_MS is given up (its
   * lines are lost to it alone), and the end is never held up longer than
   * CLOSE_MAX_MS. */
  deadline = GetTickCount64() + CLOSE_DEADLINE_MS;
  limit = GetTickCount64() + CLOSE_MAX_MS;
  for (;;) {
    size_t queued = 0;
    int any;
    ULONGLONG now = GetTickCount64();
    jw__mutex_lock(&ps->lock);
    reap(ps);
    for (r = ps->readers; r != NULL; r = r->next)
      queued += r->q.queued + (r->q.head != NULL);
    any = ps->readers != NULL;
    jw__mutex_unlock(&ps->lock);
    if (!any)
      break;
    if (queued < last_queued && now < limit)
      deadline = now + CLOSE_DEADLINE_MS;
    last_queued = queued;
    if (now >= deadline || now >= limit) {
      SetEvent(ps->abort);
    }
    Sleep(5);
  }
  self->state = NULL;
  pipe_free(ps);
}

int jw__pipe_reader_stats(jw_exporter_t *exp, uint64_t *connected, uint64_t *gone,
                          uint32_t *last_error, uint64_t *last_seq) {
  pipe_state_t *ps;
  if (exp == NULL || exp->vt != &jw_exporter_pipe || exp->state == NULL)
    return JW_EINVAL;
  ps = exp->state;
  jw__mutex_lock(&ps->lock);
  *connected = ps->next_id;
  *gone = ps->readers_gone;
  *last_error = ps->gone_error;
  *last_seq = ps->last_seq;
  jw__mutex_unlock(&ps->lock);
  return 0;
}

int jw__pipe_write_stats(jw_exporter_t *exp, jw__pipe_wstats_t *st) {
  pipe_state_t *ps;
  if (exp == NULL || exp->vt != &jw_exporter_pipe || exp->state == NULL)
    return JW_EINVAL;
  ps = exp->state;
  jw__mutex_lock(&ps->lock);
  st->direct = ps->direct;
  st->handed = ps->handed;
  st->resumed = ps->resumed;
  st->closing = ps->closing;
  jw__mutex_unlock(&ps->lock);
  return 0;
}

/* Seals itself: one chain per reader (reader_write). */
const jw_exporter_vtable_t jw_exporter_pipe = {
    .name = "pipe",
    .init = pipe_init,
    .export_line = pipe_export,
    .export_lines = pipe_export_lines,
    .close = pipe_close,
    .check = pipe_check,
    .seals_itself = 1, /* one chain per reader */
    .usage = "pipe:NAME",
    .summary = "serves \\\\.\\pipe\\NAME to local readers (jobwarden tail NAME, a collector); "
               "the job's own processes are refused",
    .options = pipe_options,
    .config_size = sizeof(pipe_config_t),
};

/* file exporter: JSON Lines appended to a file, optionally rotated by size.
 *
 * SPEC: file:PATH[,rotate=SIZE][,keep=N]. The file is opened for appending
 * only, so every write lands at the end even when another writer appends
 * too, and each event is one write of one whole line: a reader never sees
 * half a line from a completed write. On Windows the file is shared for
 * reading only (no FILE_SHARE_WRITE, no FILE_SHARE_DELETE): while jobwarden
 * holds it, no other process (the sandboxed program included) can open it
 * for writing, truncate, delete or rename it (error 32, sharing violation),
 * and Windows and Wine both enforce that. A reader that follows the file
 * (`tail -F`-style) opens it for reading with FILE_SHARE_READ |
 * FILE_SHARE_WRITE | FILE_SHARE_DELETE (it must admit jobwarden's write
 * access, and sharing delete lets a rotation rename the file under it);
 * rotation closes the file before it renames it, so jobwarden's own rename
 * is never refused by its own handle. Only the file being written is held:
 * rotated files (PATH.1 ...) are ordinary files that the sandboxed program
 * can touch wherever the file system lets it (docs/threat-model.md, the
 * restricted token). The second jobwarden run that names the same PATH at
 * the same time is refused (sharing violation) instead of interleaving. The
 * handle is not inheritable, so the sandboxed process never receives it.
 *
 * Options (the rows in file_options; exporters/options.c parses them).
 * The PATH ends at the first comma followed by NAME= (a word and '=');
 * without such a comma the whole argument is the path, commas included.
 *   rotate=SIZE  (jw_parse_size, at least 1K) before a line would make the
 *                current file exceed SIZE bytes, the file is closed and
 *                renamed PATH -> PATH.1 (PATH.1 -> PATH.2 ... first), and a
 *                new PATH is opened. A line is never split; a file holds
 *                more than SIZE bytes only when it holds a single event.
 *   keep=N       rotated files kept (1..1000, default 5): PATH.N is the
 *                oldest, the one beyond it is replaced (deleted).
 * Each file after a rotation starts with a sandbox.log_continued line
 * (run_id, continues_at_seq, previous_file; in the sink's format=), written
 * with its first event in the same write. A failed rename is reported on
 * stderr and the exporter keeps appending to the current file (retrying
 * after another SIZE bytes): no line is lost.
 *
 * Batches (export_lines, the emitter's writer thread): the lines between
 * two rotations are sealed one after the other into one buffer and written
 * with one write. Violations are then flushed to disk by the writer's
 * group commit (file_flush, at most JW_SYNC_BOUND_MS after the oldest
 * unflushed one was written; docs/architecture.md), and before a rotation
 * closes the file. A single line (export_line: synchronous delivery) that
 * is a violation is flushed (FlushFileBuffers / fdatasync) before it is
 * reported written.
 *
 * Threads: file_flush runs on the emitter's flusher thread while the
 * writer thread goes on writing (a line never waits behind a flush to
 * disk). Only the writer changes the handle, and only under hlock; the
 * flusher flushes under hlock, so a rotation waits for a flush in
 * progress, never a write. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "exporters.h"
#include "format.h"
#include "internal.h"
#include "seal.h"

#define FILE_KEEP_DEFAULT 5
#define FILE_KEEP_MAX     1000
#define FILE_ROTATE_MIN   1024

#ifdef _WIN32
typedef HANDLE file_handle_t;
#define FILE_NO_HANDLE INVALID_HANDLE_VALUE
#define FILE_ERR_NOMEM ERROR_NOT_ENOUGH_MEMORY
#else
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
typedef int file_handle_t;
#define FILE_NO_HANDLE (-1)
#define FILE_ERR_NOMEM ENOMEM
#endif

typedef struct {
  /* Held by the writer while it changes h (a rotation, a reopen) and by
   * file_flush (the emitter's flusher thread) while it flushes h. */
  jw__mutex_t hlock;
  file_handle_t h; /* owner: this exporter; closed in file_close */
  char *path;      /* UTF-8, as given */
  uint64_t rotate; /* 0 = never rotate */
  unsigned keep;
  uint64_t size;       /* bytes in the current file (ours and what was there) */
  uint64_t base;       /* size at which the rotation budget starts (after a failed rotation) */
  int has_events;      /* the current file holds at least one line */
  unsigned n_rotated;  /* PATH.1 ... PATH.n_rotated exist (as far as we know) */
  int failing;         /* the last rotation failed: report again only after a success */
  atomic_int unsynced; /* a violation was written since the last flush to disk */
  char *wbuf;          /* export_lines: the batch's bytes (owned, reused) */
  size_t wcap;
} file_state_t;

/* ------------------------------------------------------------------------ */
/* Platform primitives                                                      */
/* ------------------------------------------------------------------------ */

#ifdef _WIN32

static int os_open(const char *spec, const char *path, file_handle_t *h, uint64_t *size,
                   jw_error_t *err) {
  wchar_t *wpath = jw__utf8_to_wide(path);
  DWORD e;
  LARGE_INTEGER li;
  char why[256];
  if (wpath == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: the path is not valid UTF-8",
                        spec);
  /* Security attributes NULL: the handle is not inheritable. Shared for
   * reading only: the record cannot be rewritten, truncated, deleted or
   * renamed by anyone else while it is open (see the top of this file). */
  *h = CreateFileW(wpath, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ, NULL, OPEN_ALWAYS,
                   FILE_ATTRIBUTE_NORMAL, NULL);
  e = GetLastError();
  free(wpath);
  if (*h == INVALID_HANDLE_VALUE && e == ERROR_SHARING_VIOLATION)
    return jw_error_set(err, JW_EIO, e, "--export",
                        "cannot open event log '%s' for appending: another process has it open "
                        "for writing or deleting (another jobwarden run?); jobwarden needs it "
                        "to itself (Win32 error %lu)",
                        path, (unsigned long)e);
  if (*h == INVALID_HANDLE_VALUE) {
    jw__sys_error_text(e, why, sizeof(why));
    return jw_error_set(err, JW_EIO, e, "--export",
                        "cannot open event log '%s' for appending: %s (Win32 error %lu)", path, why,
                        (unsigned long)e);
  }
  *size = GetFileSizeEx(*h, &li) && li.QuadPart > 0 ? (uint64_t)li.QuadPart : 0;
  return 0;
}

/* Writes len bytes in one WriteFile; *put: how many were written (also
 * when it fails). */
static int os_write(jw_exporter_t *self, file_handle_t h, const char *buf, size_t len, size_t *put,
                    jw_error_t *err) {
  DWORD w = 0, e;
  char why[256];
  *put = 0;
  if (len > 0x7FFFFFFF)
    return jw_error_set(err, JW_EIO, 0, self->spec, "line too long");
  if (WriteFile(h, buf, (DWORD)len, &w, NULL) && w == (DWORD)len) {
    *put = len;
    return 0;
  }
  *put = w;
  e = GetLastError();
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_EIO, e, self->spec,
                      "write to '%s' failed after %lu of %lu bytes: %s (Win32 error %lu)",
                      self->spec, (unsigned long)w, (unsigned long)len, why, (unsigned long)e);
}

static int os_sync(jw_exporter_t *self, file_handle_t h, jw_error_t *err) {
  if (!FlushFileBuffers(h)) {
    DWORD e = GetLastError();
    return jw_error_set(err, JW_EIO, e, self->spec, "flush failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  return 0;
}

static void os_close(file_handle_t h) {
  CloseHandle(h);
}

/* 0 or the system error; a missing source is ENOENT-like (returns 0 with
 * *missing set). */
static uint32_t os_rename(const char *from, const char *to, int *missing) {
  wchar_t *wf = jw__utf8_to_wide(from), *wt = jw__utf8_to_wide(to);
  uint32_t e = 0;
  *missing = 0;
  if (wf == NULL || wt == NULL) {
    e = ERROR_NOT_ENOUGH_MEMORY;
  } else if (!MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING)) {
    e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND) {
      *missing = 1;
      e = 0;
    }
  }
  free(wf);
  free(wt);
  return e;
}

static int os_exists(const char *path) {
  wchar_t *w = jw__utf8_to_wide(path);
  int r = w != NULL && GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
  free(w);
  return r;
}

#else /* POSIX */

static int os_exists(const char *path) {
  return access(path, F_OK) == 0;
}

static int os_open(const char *spec, const char *path, file_handle_t *h, uint64_t *size,
                   jw_error_t *err) {
  struct stat sb;
  (void)spec;
  int e;
  *h = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (*h < 0) {
    e = errno;
    return jw_error_set(err, JW_EIO, (uint32_t)e, "--export",
                        "cannot open event log '%s' for appending: %s", path, strerror(e));
  }
  *size = fstat(*h, &sb) == 0 && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
  return 0;
}

/* Writes len bytes (one write(2) unless the system writes fewer); *put:
 * how many were written (also when it fails). */
static int os_write(jw_exporter_t *self, file_handle_t h, const char *buf, size_t len, size_t *put,
                    jw_error_t *err) {
  ssize_t w;
  *put = 0;
  while (*put < len) {
    do {
      w = write(h, buf + *put, len - *put);
    } while (w < 0 && errno == EINTR);
    if (w <= 0)
      return jw_error_set(err, JW_EIO, w < 0 ? (uint32_t)errno : 0, self->spec,
                          "write to '%s' failed after %zu of %zu bytes: %s", self->spec, *put, len,
                          w < 0 ? strerror(errno) : "nothing written");
    *put += (size_t)w;
  }
  return 0;
}

static int os_sync(jw_exporter_t *self, file_handle_t h, jw_error_t *err) {
  if (fdatasync(h) != 0 && errno != EINVAL)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, self->spec, "fdatasync failed: %s",
                        strerror(errno));
  return 0;
}

static void os_close(file_handle_t h) {
  close(h);
}

static uint32_t os_rename(const char *from, const char *to, int *missing) {
  *missing = 0;
  if (rename(from, to) == 0)
    return 0;
  if (errno == ENOENT) {
    *missing = 1;
    return 0;
  }
  return (uint32_t)errno;
}

#endif

/* ------------------------------------------------------------------------ */
/* SPEC parsing                                                             */
/* ------------------------------------------------------------------------ */

/* The options (exporters/options.c parses them into file_config_t). */
typedef struct {
  uint64_t rotate; /* 0: never */
  uint64_t keep;   /* 0: not given (FILE_KEEP_DEFAULT) */
} file_config_t;

static const jw_option_t file_options[] = {
    {"rotate", JW_OPT_SIZE, offsetof(file_config_t, rotate), NULL, FILE_ROTATE_MIN, 0, NULL,
     "before a line would make the file exceed SIZE, rename it PATH.1 (PATH.1 -> PATH.2 ...) and "
     "start a new one"},
    {"keep", JW_OPT_COUNT, offsetof(file_config_t, keep), NULL, 1, FILE_KEEP_MAX, "N",
     "rotated files kept, with rotate= (default 5)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* The path and the options' cross-checks. */
static int check_spec(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  const file_config_t *cfg = self->config;
  if (arg == NULL || arg[0] == '\0')
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  if (cfg->keep != 0 && cfg->rotate == 0)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: keep: only meaningful with rotate=SIZE", self->spec);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                */
/* ------------------------------------------------------------------------ */

/* "PATH.n", malloc'd. */
static char *numbered(const char *path, unsigned n) {
  size_t len = strlen(path) + 16;
  char *s = malloc(len);
  if (s != NULL)
    snprintf(s, len, "%s.%u", path, n);
  return s;
}

/* Sets st->n_rotated to the number of PATH.1, PATH.2 ... that exist (up to
 * keep, stopping at the first missing one). */
static void count_rotated(file_state_t *st) {
  st->n_rotated = 0;
  while (st->rotate != 0 && st->n_rotated < st->keep) {
    char *p = numbered(st->path, st->n_rotated + 1);
    int found = p != NULL && os_exists(p);
    free(p);
    if (!found)
      break;
    st->n_rotated++;
  }
}

static int file_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  const file_config_t *cfg = self->config;
  file_state_t *st;
  int rc = check_spec(self, arg, err);
  if (rc != 0)
    return rc;
  st = calloc(1, sizeof(*st));
  if (st == NULL || (st->path = malloc(strlen(arg) + 1)) == NULL) {
    free(st);
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  }
  memcpy(st->path, arg, strlen(arg) + 1);
  st->rotate = cfg->rotate;
  st->keep = cfg->keep != 0 ? (unsigned)cfg->keep : FILE_KEEP_DEFAULT;
  atomic_init(&st->unsynced, 0);
  rc = os_open(self->spec, st->path, &st->h, &st->size, err);
  if (rc != 0) {
    free(st->path);
    free(st);
    return rc;
  }
  jw__mutex_init(&st->hlock);
  st->has_events = st->size > 0;
  /* Rotated files left by an earlier run are shifted too, never overwritten
   * out of order. */
  count_rotated(st);
  self->state = st;
  return 0;
}

/* The sandbox.log_continued line for the file that will start with `line`
 * (new malloc'd buffer, '\n' included), in the sink's format
 * (jw_format_continuation), NULL when it cannot be built. */
static char *continuation_line(jw_exporter_t *self, const char *path, const char *line, size_t len,
                               size_t *out_len) {
  char *prev = numbered(path, 1), *out = NULL;
  if (prev != NULL)
    out = jw_format_continuation(self->format, prev, line, len, out_len);
  free(prev);
  return out;
}

static void report_rotation_failure(file_state_t *st, const char *from, const char *to,
                                    uint32_t e) {
  char why[256], buf[1024];
  int n;
  jw__sys_error_text(e, why, sizeof(why));
  n = snprintf(buf, sizeof(buf),
               "jobwarden: cannot rotate event log '%s': renaming '%s' to '%s' failed: %s "
               "(error %lu); appending to '%s' instead, retrying after every further %llu bytes "
               "(reported again only after a rotation succeeded)\n",
               st->path, from, to, why, (unsigned long)e, st->path, (unsigned long long)st->rotate);
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Closes the current file, shifts PATH.(keep-1) -> PATH.keep ... PATH ->
 * PATH.1 and opens a new PATH. Returns 1 when the new file is open, 0 when
 * the rotation failed but the old file is open again (appending goes on),
 * or a negative JW_E* when no file is open any more. */
static int rotate_locked(jw_exporter_t *self, file_state_t *st, jw_error_t *err);

/* rotate_locked under hlock: the flusher never flushes a handle being
 * closed. */
static int rotate_now(jw_exporter_t *self, file_state_t *st, jw_error_t *err) {
  int rc;
  jw__mutex_lock(&st->hlock);
  rc = rotate_locked(self, st, err);
  jw__mutex_unlock(&st->hlock);
  return rc;
}

static int rotate_locked(jw_exporter_t *self, file_state_t *st, jw_error_t *err) {
  unsigned i;
  int missing, rc;
  uint32_t e = 0;
  char *from = NULL, *to = NULL;

  /* Violations not yet flushed (group commit) are flushed before the file
   * is closed: closing does not put them on disk. */
  if (atomic_exchange(&st->unsynced, 0) && os_sync(self, st->h, err) != 0)
    atomic_store(&st->unsynced, 1);
  os_close(st->h);
  st->h = FILE_NO_HANDLE;
  /* PATH.keep is replaced (deleted) by PATH.(keep-1); files that do not
   * exist yet are not tried. */
  i = st->n_rotated < st->keep ? st->n_rotated + 1 : st->keep;
  for (; i >= 1 && e == 0; i--) {
    free(from);
    free(to);
    from = i == 1 ? numbered(st->path, 0) : numbered(st->path, i - 1);
    to = numbered(st->path, i);
    if (from == NULL || to == NULL) {
      e = FILE_ERR_NOMEM;
      break;
    }
    if (i == 1)
      from[strlen(st->path)] = '\0'; /* "PATH.0" -> "PATH" */
    e = os_rename(from, to, &missing);
  }
  if (e != 0 && !st->failing)
    report_rotation_failure(st, from ? from : st->path, to ? to : "?", e);
  st->failing = e != 0;
  if (e == 0 && st->n_rotated < st->keep)
    st->n_rotated++;
  else if (e != 0)
    count_rotated(st); /* part of the chain may have moved */
  free(from);
  free(to);
  rc = os_open(self->spec, st->path, &st->h, &st->size, err);
  if (rc != 0) {
    st->h = FILE_NO_HANDLE;
    return rc;
  }
  if (e != 0) {
    st->base = st->size;
    st->has_events = st->size > 0;
    return 0;
  }
  st->base = 0;
  st->has_events = st->size > 0; /* someone else may have created PATH meanwhile */
  return 1;
}

/* One line: a rotation first when it is due (or the file reopened), the
 * line sealed, one write. A violation is flushed to disk at once when
 * `sync`; otherwise the writer's group commit flushes it (file_flush). */
static int export_one(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                      int sync, jw_error_t *err) {
  file_state_t *st = self->state;
  char *buf = NULL, *sealed = NULL;
  const char *wline = line;
  size_t blen = 0, wlen = len, put;
  int rc, params = 0;

  if (st->h == FILE_NO_HANDLE) {
    /* A rotation could not reopen the file: try again now. */
    jw__mutex_lock(&st->hlock);
    rc = os_open(self->spec, st->path, &st->h, &st->size, err);
    if (rc != 0)
      st->h = FILE_NO_HANDLE;
    jw__mutex_unlock(&st->hlock);
    if (rc != 0)
      return rc;
    st->base = 0;
    st->has_events = st->size > 0;
    params = 1; /* a sealed stream states its chain again in a new file */
  }
  if (st->rotate != 0 && st->has_events && st->size - st->base + len > st->rotate) {
    rc = rotate_now(self, st, err);
    if (rc < 0)
      return rc;
    if (rc == 1 && !st->has_events) {
      size_t hlen = 0;
      char *head = continuation_line(self, st->path, line, len, &hlen);
      params = 1;
      if (head != NULL) {
        /* Sealed first: the continuation line comes first in the chain and
         * states its parameters for the new file. */
        char *shead = NULL;
        const char *whead = head;
        if (jw_exporter_seal(self, head, hlen, NULL, JW_SEAL_PARAMS, &shead, &whead, &hlen) == 0) {
          params = 0;
          if (jw_exporter_seal(self, line, len, ev, 0, &sealed, &wline, &wlen) != 0) {
            free(shead);
            free(head);
            jw_exporter_sealed(self, 0);
            return jw_error_set(err, JW_ENOMEM, 0, self->spec, "%s: cannot seal the line",
                                self->spec);
          }
          buf = malloc(hlen + wlen);
          if (buf != NULL) {
            memcpy(buf, whead, hlen);
            memcpy(buf + hlen, wline, wlen);
            blen = hlen + wlen;
          } else {
            jw_exporter_sealed(self, 0); /* both go back; the line alone below */
            free(sealed);
            sealed = NULL;
            wline = line;
            wlen = len;
            params = 1;
          }
        }
        free(shead);
        free(head);
      }
    }
  }
  if (buf == NULL && wline == line &&
      jw_exporter_seal(self, line, len, ev, params ? JW_SEAL_PARAMS : 0, &sealed, &wline, &wlen) !=
          0)
    return jw_error_set(err, JW_ENOMEM, 0, self->spec, "%s: cannot seal the line", self->spec);
  if (buf != NULL) {
    /* The continuation line and the first event in one write. */
    rc = os_write(self, st->h, buf, blen, &put, err);
    free(buf);
  } else {
    blen = wlen;
    rc = os_write(self, st->h, wline, wlen, &put, err);
  }
  free(sealed);
  jw_exporter_sealed(self, rc == 0);
  if (rc != 0)
    return rc;
  st->size += blen;
  st->has_events = 1;
  if (ev != NULL && ev->kind == JW_EVENT_VIOLATION) {
    atomic_store(&st->unsynced, 1);
    if (sync) {
      rc = os_sync(self, st->h, err);
      if (rc == 0)
        atomic_store(&st->unsynced, 0);
      return rc;
    }
  }
  return 0;
}

static int file_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  return export_one(self, line, len, ev, 1, err);
}

/* Whether line i of a batch must go the single way: the file is to be
 * reopened, or a rotation is due before it (`size`: the file's size
 * with the lines before it in the batch). */
static int needs_single(const file_state_t *st, uint64_t size, int has_events, size_t len) {
  return st->h == FILE_NO_HANDLE ||
         (st->rotate != 0 && has_events && size - st->base + len > st->rotate);
}

static int reserve_wbuf(file_state_t *st, size_t need) {
  size_t cap = st->wcap ? st->wcap : 64 * 1024;
  char *p;
  if (need <= st->wcap)
    return 0;
  while (cap < need)
    cap *= 2;
  p = realloc(st->wbuf, cap);
  if (p == NULL)
    return -1;
  st->wbuf = p;
  st->wcap = cap;
  return 0;
}

/* A batch: the lines between rotations sealed one after the other into one
 * buffer and written with one write; a line before which a rotation is due
 * goes through export_one. Violations are flushed by the writer's group
 * commit (file_flush), not here. When a write stops short, the lines it
 * wrote whole are the ones written (the seal chain is moved past exactly
 * those); the line it cut is the failure. */
static size_t file_export_lines(jw_exporter_t *self, const jw_line_ref_t *lines, size_t n,
                                jw_error_t *err) {
  file_state_t *st = self->state;
  static const jw_event_t zero_event;
  jw_event_t stub = zero_event;
  size_t i = 0, done = 0;
  while (i < n) {
    size_t j, used = 0, put = 0, whole = 0, k;
    uint64_t size = st->size;
    int violation = 0, rc;
    stub.kind = lines[i].kind;
    stub.seq = lines[i].seq;
    if (needs_single(st, st->size, st->has_events, lines[i].len)) {
      if (export_one(self, lines[i].line, lines[i].len, &stub, 0, err) != 0)
        return done;
      done++;
      i++;
      continue;
    }
    /* Lines i .. j-1 go in one write. */
    for (j = i; j < n && (j == i || !needs_single(st, size, 1, lines[j].len)); j++) {
      char *sealed = NULL;
      const char *w;
      size_t wlen;
      stub.kind = lines[j].kind;
      stub.seq = lines[j].seq;
      /* Room first (a seal adds about 110 bytes): once a line is sealed
       * the chain has moved past it, and it must be written. */
      if (reserve_wbuf(st, used + lines[j].len + 1024) != 0 ||
          jw_exporter_seal(self, lines[j].line, lines[j].len, &stub, 0, &sealed, &w, &wlen) != 0 ||
          reserve_wbuf(st, used + wlen) != 0) {
        free(sealed);
        jw_exporter_sealed(self, 0); /* nothing of this round was written */
        jw_error_set(err, JW_ENOMEM, 0, self->spec, "%s: cannot seal the line", self->spec);
        return done;
      }
      memcpy(st->wbuf + used, w, wlen);
      used += wlen;
      size += wlen;
      free(sealed);
      violation |= lines[j].kind == JW_EVENT_VIOLATION;
    }
    rc = os_write(self, st->h, st->wbuf, used, &put, err);
    if (rc == 0) {
      jw_exporter_sealed(self, 1);
      st->size += used;
      st->has_events = 1;
      if (violation)
        atomic_store(&st->unsynced, 1);
      done += j - i;
      i = j;
      continue;
    }
    /* Short: the lines before the cut are in the file. Move the chain back
     * to before the batch and forward again over exactly those (sealing is
     * deterministic: the same bytes as were written). */
    jw_exporter_sealed(self, 0);
    for (k = i; k < j; k++) {
      char *sealed = NULL;
      const char *w;
      size_t wlen;
      stub.kind = lines[k].kind;
      stub.seq = lines[k].seq;
      if (jw_exporter_seal(self, lines[k].line, lines[k].len, &stub, 0, &sealed, &w, &wlen) != 0)
        break;
      free(sealed);
      if (whole + wlen > put) {
        jw_exporter_sealed(self, 0); /* this one was cut: not part of the chain */
        break;
      }
      jw_exporter_sealed(self, 1);
      whole += wlen;
      if (lines[k].kind == JW_EVENT_VIOLATION)
        atomic_store(&st->unsynced, 1);
      done++;
    }
    st->size += put;
    st->has_events = st->has_events || put > 0;
    return done;
  }
  return done;
}

/* The emitter's flusher thread, while the writer may be writing: what
 * was written before the call is on disk when it returns 0. */
static int file_flush(jw_exporter_t *self, jw_error_t *err) {
  file_state_t *st = self->state;
  int rc = 0;
  jw__mutex_lock(&st->hlock);
  if (st->h != FILE_NO_HANDLE) {
    /* Cleared first: a violation written during the flush sets it again. */
    atomic_store(&st->unsynced, 0);
#ifdef _WIN32
    rc = os_sync(self, st->h, err);
#else
    if (fsync(st->h) != 0 && errno != EINVAL)
      rc = jw_error_set(err, JW_EIO, (uint32_t)errno, self->spec, "fsync failed: %s",
                        strerror(errno));
#endif
    if (rc != 0)
      atomic_store(&st->unsynced, 1);
  }
  jw__mutex_unlock(&st->hlock);
  return rc;
}

static void file_close(jw_exporter_t *self) {
  file_state_t *st = self->state;
  if (st == NULL)
    return;
  if (st->h != FILE_NO_HANDLE)
    os_close(st->h);
  jw__mutex_destroy(&st->hlock);
  free(st->wbuf);
  free(st->path);
  free(st);
  self->state = NULL;
}

static int file_check(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  return check_spec(self, arg, err);
}

const jw_exporter_vtable_t jw_exporter_file = {
    .name = "file",
    .init = file_init,
    .export_line = file_export,
    .export_lines = file_export_lines,
    .flush = file_flush,
    .close = file_close,
    .check = file_check,
    .seals_itself = 1, /* rotation: each file's first line restates the chain */
    .usage = "file:PATH",
    .summary = "JSON Lines appended to PATH; shared for reading only while jobwarden runs",
    .options = file_options,
    .config_size = sizeof(file_config_t),
};

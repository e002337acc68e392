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
 * Options. The PATH ends at the first comma followed by NAME= (a word and
 * '='); without such a comma the whole argument is the path, commas
 * included. When options follow, the path itself must not hold a comma.
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
 * Violations (ev->kind == JW_EVENT_VIOLATION) are flushed to disk
 * (FlushFileBuffers / fdatasync) before the line is reported written. */
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
  file_handle_t h; /* owner: this exporter; closed in file_close */
  char *path;      /* UTF-8, as given */
  uint64_t rotate; /* 0 = never rotate */
  unsigned keep;
  uint64_t size;      /* bytes in the current file (ours and what was there) */
  uint64_t base;      /* size at which the rotation budget starts (after a failed rotation) */
  int has_events;     /* the current file holds at least one line */
  unsigned n_rotated; /* PATH.1 ... PATH.n_rotated exist (as far as we know) */
  int failing;        /* the last rotation failed: report again only after a success */
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

static int os_write(jw_exporter_t *self, file_handle_t h, const char *buf, size_t len,
                    jw_error_t *err) {
  DWORD w = 0, e;
  char why[256];
  if (len > 0x7FFFFFFF)
    return jw_error_set(err, JW_EIO, 0, self->spec, "line too long");
  if (WriteFile(h, buf, (DWORD)len, &w, NULL) && w == (DWORD)len)
    return 0;
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

static int os_write(jw_exporter_t *self, file_handle_t h, const char *buf, size_t len,
                    jw_error_t *err) {
  ssize_t w;
  do {
    w = write(h, buf, len);
  } while (w < 0 && errno == EINTR);
  if (w == (ssize_t)len)
    return 0;
  return jw_error_set(err, JW_EIO, w < 0 ? (uint32_t)errno : 0, self->spec,
                      "write to '%s' failed: %s", self->spec,
                      w < 0 ? strerror(errno) : "short write");
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

/* Length of NAME in "NAME=..." at s, 0 when s does not start an option. */
static size_t option_name_len(const char *s) {
  size_t n = 0;
  while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') || s[n] == '_' ||
         (n > 0 && s[n] >= '0' && s[n] <= '9'))
    n++;
  return n > 0 && s[n] == '=' ? n : 0;
}

static int parse_keep(const char *v, unsigned *out) {
  unsigned long n = 0;
  const char *p = v;
  if (*p == '\0')
    return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    n = n * 10 + (unsigned long)(*p - '0');
    if (n > FILE_KEEP_MAX)
      return -1;
  }
  if (n < 1)
    return -1;
  *out = (unsigned)n;
  return 0;
}

/* Splits arg into the path (new string in *path) and the options. */
static int parse_spec(jw_exporter_t *self, const char *arg, char **path, uint64_t *rotate,
                      unsigned *keep, jw_error_t *err) {
  const char *opts = NULL, *p;
  size_t path_len;
  int has_rotate = 0, has_keep = 0;

  *rotate = 0;
  *keep = FILE_KEEP_DEFAULT;
  for (p = strchr(arg, ','); p != NULL; p = strchr(p + 1, ',')) {
    if (option_name_len(p + 1) > 0) {
      opts = p + 1;
      break;
    }
  }
  path_len = opts ? (size_t)(opts - 1 - arg) : strlen(arg);
  if (path_len == 0)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  if (opts != NULL && memchr(arg, ',', path_len) != NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: a PATH holding a comma cannot take options "
                        "(rename the file, or give it without options)",
                        self->spec);
  while (opts != NULL) {
    const char *end = strchr(opts, ',');
    size_t seg = end ? (size_t)(end - opts) : strlen(opts);
    size_t nlen = option_name_len(opts);
    char value[128];
    if (nlen == 0 || nlen >= seg + 1) {
      return jw_error_set(err, JW_EUSAGE, 0, "--export",
                          "--export %s: expected NAME=VALUE after ',', got \"%.*s\"", self->spec,
                          (int)(seg > 64 ? 64 : seg), opts);
    }
    if (seg - nlen - 1 >= sizeof(value))
      return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %.*s: value too long",
                          self->spec, (int)nlen, opts);
    memcpy(value, opts + nlen + 1, seg - nlen - 1);
    value[seg - nlen - 1] = '\0';
    if (nlen == 6 && memcmp(opts, "rotate", 6) == 0) {
      if (has_rotate)
        return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: rotate: given twice",
                            self->spec);
      has_rotate = 1;
      if (jw_parse_size(value, rotate) != 0)
        return jw_error_set(err, JW_EUSAGE, 0, "--export",
                            "--export %s: rotate: expected a size like \"64M\", got \"%s\"",
                            self->spec, value);
      if (*rotate < FILE_ROTATE_MIN)
        return jw_error_set(err, JW_EUSAGE, 0, "--export",
                            "--export %s: rotate: must be at least 1K, got \"%s\"", self->spec,
                            value);
    } else if (nlen == 4 && memcmp(opts, "keep", 4) == 0) {
      if (has_keep)
        return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: keep: given twice",
                            self->spec);
      has_keep = 1;
      if (parse_keep(value, keep) != 0)
        return jw_error_set(err, JW_EUSAGE, 0, "--export",
                            "--export %s: keep: expected a number from 1 to %d, got \"%s\"",
                            self->spec, FILE_KEEP_MAX, value);
    } else {
      return jw_error_set(err, JW_EUSAGE, 0, "--export",
                          "--export %s: unknown option '%.*s' (expected rotate=SIZE, keep=N)",
                          self->spec, (int)(nlen > 64 ? 64 : nlen), opts);
    }
    opts = end ? end + 1 : NULL;
  }
  if (has_keep && !has_rotate)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: keep: only meaningful with rotate=SIZE", self->spec);
  *path = malloc(path_len + 1);
  if (*path == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  memcpy(*path, arg, path_len);
  (*path)[path_len] = '\0';
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
  file_state_t *st;
  int rc;
  if (arg == NULL || arg[0] == '\0')
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  st = calloc(1, sizeof(*st));
  if (st == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  rc = parse_spec(self, arg, &st->path, &st->rotate, &st->keep, err);
  if (rc == 0)
    rc = os_open(self->spec, st->path, &st->h, &st->size, err);
  if (rc != 0) {
    free(st->path);
    free(st);
    return rc;
  }
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
static int rotate_now(jw_exporter_t *self, file_state_t *st, jw_error_t *err) {
  unsigned i;
  int missing, rc;
  uint32_t e = 0;
  char *from = NULL, *to = NULL;

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

static int file_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  file_state_t *st = self->state;
  char *buf = NULL, *sealed = NULL;
  const char *wline = line;
  size_t blen = 0, wlen = len;
  int rc, params = 0;

  if (st->h == FILE_NO_HANDLE) {
    /* A rotation could not reopen the file: try again now. */
    rc = os_open(self->spec, st->path, &st->h, &st->size, err);
    if (rc != 0) {
      st->h = FILE_NO_HANDLE;
      return rc;
    }
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
    rc = os_write(self, st->h, buf, blen, err);
    free(buf);
  } else {
    blen = wlen;
    rc = os_write(self, st->h, wline, wlen, err);
  }
  free(sealed);
  jw_exporter_sealed(self, rc == 0);
  if (rc != 0)
    return rc;
  st->size += blen;
  st->has_events = 1;
  if (ev != NULL && ev->kind == JW_EVENT_VIOLATION)
    return os_sync(self, st->h, err);
  return 0;
}

static int file_flush(jw_exporter_t *self, jw_error_t *err) {
  file_state_t *st = self->state;
  if (st->h == FILE_NO_HANDLE)
    return 0;
#ifdef _WIN32
  return os_sync(self, st->h, err);
#else
  if (fsync(st->h) != 0 && errno != EINVAL)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, self->spec, "fsync failed: %s",
                        strerror(errno));
  return 0;
#endif
}

static void file_close(jw_exporter_t *self) {
  file_state_t *st = self->state;
  if (st == NULL)
    return;
  if (st->h != FILE_NO_HANDLE)
    os_close(st->h);
  free(st->path);
  free(st);
  self->state = NULL;
}

static int file_check(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  char *path = NULL;
  uint64_t rotate;
  unsigned keep;
  int rc;
  if (arg == NULL || arg[0] == '\0')
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  rc = parse_spec(self, arg, &path, &rotate, &keep, err);
  free(path);
  return rc;
}

const jw_exporter_vtable_t jw_exporter_file = {
    "file",     file_init, file_export, file_flush, file_close,
    file_check, 1 /* seals itself: rotation */
};

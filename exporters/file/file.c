/* file exporter: JSON Lines appended to a file.
 *
 * SPEC: file:PATH. The file is opened for appending only, so every write
 * lands at the end even when another writer appends too, and each event is
 * one write of one whole line: a reader never sees half a line from a
 * completed write. On Windows the file is shared for reading, writing and
 * deletion so a tailer (and later a rotation) can work while it grows; the
 * handle is not inheritable, so the sandboxed process never receives it. */
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "internal.h"

#ifdef _WIN32

typedef struct {
  HANDLE h; /* owner: this exporter; closed in file_close */
} file_state_t;

static int file_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  file_state_t *st;
  wchar_t *wpath;
  DWORD e;
  char why[256];
  if (arg == NULL || arg[0] == '\0')
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  wpath = jw__utf8_to_wide(arg);
  if (wpath == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: the path is not valid UTF-8",
                        self->spec);
  st = calloc(1, sizeof(*st));
  if (st == NULL) {
    free(wpath);
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  }
  /* Security attributes NULL: the handle is not inheritable. */
  st->h = CreateFileW(wpath, FILE_APPEND_DATA | SYNCHRONIZE,
                      FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_ALWAYS,
                      FILE_ATTRIBUTE_NORMAL, NULL);
  e = GetLastError();
  free(wpath);
  if (st->h == INVALID_HANDLE_VALUE) {
    free(st);
    jw__sys_error_text(e, why, sizeof(why));
    return jw_error_set(err, JW_EIO, e, "--export",
                        "cannot open event log '%s' for appending: %s (Win32 error %lu)", arg, why,
                        (unsigned long)e);
  }
  self->state = st;
  return 0;
}

static int file_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  file_state_t *st = self->state;
  DWORD w = 0, e;
  char why[256];
  (void)ev;
  if (len > 0x7FFFFFFF)
    return jw_error_set(err, JW_EIO, 0, self->spec, "line too long");
  if (WriteFile(st->h, line, (DWORD)len, &w, NULL) && w == (DWORD)len)
    return 0;
  e = GetLastError();
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_EIO, e, self->spec,
                      "write to '%s' failed after %lu of %lu bytes: %s (Win32 error %lu)",
                      self->spec, (unsigned long)w, (unsigned long)len, why, (unsigned long)e);
}

static int file_flush(jw_exporter_t *self, jw_error_t *err) {
  file_state_t *st = self->state;
  if (!FlushFileBuffers(st->h)) {
    DWORD e = GetLastError();
    return jw_error_set(err, JW_EIO, e, self->spec, "flush failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  return 0;
}

static void file_close(jw_exporter_t *self) {
  file_state_t *st = self->state;
  if (st == NULL)
    return;
  CloseHandle(st->h);
  free(st);
  self->state = NULL;
}

#else /* POSIX */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

typedef struct {
  int fd; /* owner: this exporter; closed in file_close */
} file_state_t;

static int file_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  file_state_t *st;
  int e;
  if (arg == NULL || arg[0] == '\0')
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: expected file:PATH",
                        self->spec);
  st = calloc(1, sizeof(*st));
  if (st == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  st->fd = open(arg, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (st->fd < 0) {
    e = errno;
    free(st);
    return jw_error_set(err, JW_EIO, (uint32_t)e, "--export",
                        "cannot open event log '%s' for appending: %s", arg, strerror(e));
  }
  self->state = st;
  return 0;
}

static int file_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  file_state_t *st = self->state;
  ssize_t w;
  (void)ev;
  do {
    w = write(st->fd, line, len);
  } while (w < 0 && errno == EINTR);
  if (w == (ssize_t)len)
    return 0;
  return jw_error_set(err, JW_EIO, w < 0 ? (uint32_t)errno : 0, self->spec,
                      "write to '%s' failed: %s", self->spec,
                      w < 0 ? strerror(errno) : "short write");
}

static int file_flush(jw_exporter_t *self, jw_error_t *err) {
  file_state_t *st = self->state;
  if (fsync(st->fd) != 0 && errno != EINVAL)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, self->spec, "fsync failed: %s",
                        strerror(errno));
  return 0;
}

static void file_close(jw_exporter_t *self) {
  file_state_t *st = self->state;
  if (st == NULL)
    return;
  close(st->fd);
  free(st);
  self->state = NULL;
}

#endif

const jw_exporter_vtable_t jw_exporter_file = {
    "file", file_init, file_export, file_flush, file_close,
};

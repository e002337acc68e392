/* stdout / stderr exporters: JSON Lines on jobwarden's own standard
 * streams, written with one system call per line (no stdio buffering), so a
 * line never interleaves with another writer's partial output. */
#include <string.h>

#include "exporters.h"
#include "internal.h"

#ifdef _WIN32
static int write_all(int which, const char *buf, size_t len, uint32_t *sys) {
  HANDLE h = GetStdHandle(which == 1 ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE);
  if (h == NULL || h == INVALID_HANDLE_VALUE) {
    *sys = ERROR_INVALID_HANDLE;
    return -1;
  }
  while (len > 0) {
    DWORD w = 0;
    if (!WriteFile(h, buf, len > 0x10000000 ? 0x10000000 : (DWORD)len, &w, NULL) || w == 0) {
      *sys = GetLastError();
      return -1;
    }
    buf += w;
    len -= w;
  }
  return 0;
}
#else
#include <errno.h>
#include <unistd.h>
static int write_all(int which, const char *buf, size_t len, uint32_t *sys) {
  while (len > 0) {
    ssize_t w = write(which, buf, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      *sys = w < 0 ? (uint32_t)errno : 0;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}
#endif

static int stdio_init(jw_exporter_t *self, const char *arg, jw_error_t *err) {
  if (arg != NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: stdout and stderr take no argument", self->spec);
  return 0;
}

static int stdio_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                        jw_error_t *err) {
  uint32_t sys = 0;
  int which = strcmp(self->vt->name, "stdout") == 0 ? 1 : 2;
  char why[256];
  (void)ev;
  if (write_all(which, line, len, &sys) == 0)
    return 0;
  jw__sys_error_text(sys, why, sizeof(why));
  return jw_error_set(err, JW_EIO, sys, self->spec, "write to %s failed: %s", self->vt->name, why);
}

const jw_exporter_vtable_t jw_exporter_stdout = {
    .name = "stdout",
    .init = stdio_init,
    .export_line = stdio_export,
    .usage = "stdout",
    .summary = "JSON Lines on jobwarden's standard output",
};
const jw_exporter_vtable_t jw_exporter_stderr = {
    .name = "stderr",
    .init = stdio_init,
    .export_line = stdio_export,
    .usage = "stderr",
    .summary = "JSON Lines on jobwarden's standard error",
};

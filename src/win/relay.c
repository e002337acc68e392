/* The sandboxed program's own output stream (`run --agent-output`).
 *
 * When an event sink writes to jobwarden's stdout or stderr, the program
 * must not share that stream: it could write half a line into the middle of
 * an event line, or a whole forged `sandbox.job_end`. So it gets a pipe of
 * its own for both its stdout and its stderr (one pipe: its bytes keep the
 * order it wrote them in), and a relay thread copies what comes out of it,
 * unchanged, to where --agent-output says: the standard stream that carries
 * no events, a file, or nowhere. The event stream is then written by
 * jobwarden alone.
 *
 * The pipe's write end goes to the program through jw_spawn's stdio handles
 * (inherited by it alone, PROC_THREAD_ATTRIBUTE_HANDLE_LIST); jobwarden
 * closes its own copy as soon as the program runs, so the relay reads to
 * EOF when the last process holding it (the program and whatever it gave
 * it to) has closed it or ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <process.h>

#include "win/win.h"

#define RELAY_PIPE_BYTES  65536
#define RELAY_CHUNK_BYTES 65536

struct jw__relay_s {
  jw__agent_output_t mode;
  HANDLE read_end;  /* owner: the relay thread once started (closed at its end) */
  HANDLE write_end; /* owner: this relay until jw__relay_start closes it */
  HANDLE dest;      /* owner: this relay when mode is FILE; else borrowed (GetStdHandle) */
  HANDLE thread;    /* owner: this relay */
  uint64_t bytes;   /* relayed so far (the relay thread's; read after it ends) */
  DWORD error;      /* the write error that stopped forwarding, 0 if none */
  char *path;       /* FILE: the path, for messages */
};

/* "stdout" / "stderr", also with options ("stdout,format=ecs"). */
static int is_stdio_sink(const char *spec, const char *which) {
  size_t n = strlen(which);
  return spec != NULL && strncmp(spec, which, n) == 0 && (spec[n] == '\0' || spec[n] == ',');
}

int jw__agent_output_resolve(const char *value, const char *const *exports, int n_exports,
                             jw__agent_output_t *mode, const char **path, jw_error_t *err) {
  int out_used = 0, err_used = 0, i;
  *path = NULL;
  for (i = 0; i < n_exports; i++) {
    out_used |= is_stdio_sink(exports[i], "stdout");
    err_used |= is_stdio_sink(exports[i], "stderr");
  }
  if (value == NULL || strcmp(value, "auto") == 0) {
    /* The stream no sink uses; with both used, nowhere. */
    if (!out_used && !err_used)
      *mode = JW_AGENT_OUT_INHERIT;
    else if (!err_used)
      *mode = JW_AGENT_OUT_STDERR;
    else if (!out_used)
      *mode = JW_AGENT_OUT_STDOUT;
    else
      *mode = JW_AGENT_OUT_NULL;
    return 0;
  }
  if (strcmp(value, "inherit") == 0) {
    if (out_used || err_used)
      return jw_error_set(err, JW_EUSAGE, 0, "--agent-output",
                          "--agent-output inherit: the program would share jobwarden's %s with "
                          "the event stream (--export %s); use auto, %s, null or file:PATH",
                          out_used ? "stdout" : "stderr", out_used ? "stdout" : "stderr",
                          out_used && !err_used ? "stderr"
                          : !out_used           ? "stdout"
                                                : "null");
    *mode = JW_AGENT_OUT_INHERIT;
    return 0;
  }
  if (strcmp(value, "stdout") == 0 || strcmp(value, "stderr") == 0) {
    int to_out = value[3] == 'o';
    if (to_out ? out_used : err_used)
      return jw_error_set(err, JW_EUSAGE, 0, "--agent-output",
                          "--agent-output %s: jobwarden's %s carries events (--export %s); the "
                          "program's output must go elsewhere (auto, %s, null or file:PATH)",
                          value, value, value, to_out ? "stderr" : "stdout");
    *mode = to_out ? JW_AGENT_OUT_STDOUT : JW_AGENT_OUT_STDERR;
    return 0;
  }
  if (strcmp(value, "null") == 0) {
    *mode = JW_AGENT_OUT_NULL;
    return 0;
  }
  if (strncmp(value, "file:", 5) == 0 && value[5] != '\0') {
    *mode = JW_AGENT_OUT_FILE;
    *path = value + 5;
    return 0;
  }
  return jw_error_set(err, JW_EUSAGE, 0, "--agent-output",
                      "--agent-output: expected auto, inherit, stdout, stderr, null or "
                      "file:PATH, got \"%.80s\"",
                      value);
}

void jw__relay_free(jw__relay_t *r) {
  if (r == NULL)
    return;
  if (r->thread != NULL)
    CloseHandle(r->thread);
  else if (r->read_end != NULL)
    CloseHandle(r->read_end);
  if (r->write_end != NULL)
    CloseHandle(r->write_end);
  if (r->mode == JW_AGENT_OUT_FILE && r->dest != NULL && r->dest != INVALID_HANDLE_VALUE)
    CloseHandle(r->dest);
  free(r->path);
  free(r);
}

int jw__relay_open(jw__agent_output_t mode, const char *path, jw__relay_t **out,
                   HANDLE *agent_stdio, jw_error_t *err) {
  jw__relay_t *r;
  DWORD e;
  *out = NULL;
  *agent_stdio = NULL;
  if (mode == JW_AGENT_OUT_INHERIT)
    return 0;
  r = calloc(1, sizeof(*r));
  if (r == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--agent-output", "out of memory");
  r->mode = mode;
  if (mode == JW_AGENT_OUT_STDOUT)
    r->dest = GetStdHandle(STD_OUTPUT_HANDLE);
  else if (mode == JW_AGENT_OUT_STDERR)
    r->dest = GetStdHandle(STD_ERROR_HANDLE);
  else if (mode == JW_AGENT_OUT_FILE) {
    wchar_t *w = jw__utf8_to_wide(path);
    r->path = _strdup(path);
    /* Appended, shared for reading only, like the event file: nothing else
     * writes into it while jobwarden has it. Not inheritable. */
    r->dest = w == NULL ? INVALID_HANDLE_VALUE
                        : CreateFileW(w, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ, NULL,
                                      OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    e = w == NULL ? ERROR_INVALID_NAME : GetLastError();
    free(w);
    if (r->dest == INVALID_HANDLE_VALUE) {
      char why[256];
      jw__sys_error_text(e, why, sizeof(why));
      jw__relay_free(r);
      return jw_error_set(err, JW_EIO, e, "--agent-output",
                          "--agent-output file:%.300s: cannot open it for appending: %s (Win32 "
                          "error %lu)",
                          path, why, (unsigned long)e);
    }
  }
  /* Neither end is inheritable here: jw_spawn makes the one inheritable
   * copy of the write end that only the program receives. */
  if (!CreatePipe(&r->read_end, &r->write_end, NULL, RELAY_PIPE_BYTES)) {
    e = GetLastError();
    r->read_end = r->write_end = NULL;
    jw__relay_free(r);
    return jw_error_set(err, JW_ESYS, e, "CreatePipe",
                        "cannot create the program's output pipe (CreatePipe, Win32 error %lu)",
                        (unsigned long)e);
  }
  *agent_stdio = r->write_end;
  *out = r;
  return 0;
}

static unsigned __stdcall relay_main(void *arg) {
  jw__relay_t *r = arg;
  char *buf = malloc(RELAY_CHUNK_BYTES);
  DWORD got;
  if (buf == NULL) {
    r->error = ERROR_NOT_ENOUGH_MEMORY;
  }
  /* Reads to EOF even when forwarding failed: a program whose output
   * cannot be delivered must not block on a full pipe. */
  while (buf != NULL && ReadFile(r->read_end, buf, RELAY_CHUNK_BYTES, &got, NULL) && got > 0) {
    DWORD off = 0;
    while (r->mode != JW_AGENT_OUT_NULL && r->error == 0 && off < got) {
      DWORD w = 0;
      if (r->dest == NULL || r->dest == INVALID_HANDLE_VALUE) {
        r->error = ERROR_INVALID_HANDLE;
      } else if (!WriteFile(r->dest, buf + off, got - off, &w, NULL) || w == 0) {
        r->error = GetLastError() ? GetLastError() : ERROR_WRITE_FAULT;
      }
      off += w;
    }
    r->bytes += got;
  }
  free(buf);
  CloseHandle(r->read_end);
  r->read_end = NULL;
  return 0;
}

int jw__relay_start(jw__relay_t *r, jw_error_t *err) {
  if (r == NULL)
    return 0;
  /* The program has its copy now: without ours, EOF comes when it (and
   * everything it handed the handle to) is done. */
  CloseHandle(r->write_end);
  r->write_end = NULL;
  r->thread = jw__thread_begin(relay_main, r, 64 * 1024, 0);
  if (r->thread == NULL) {
    DWORD e = GetLastError();
    return jw_error_set(err, JW_ESYS, e, "CreateThread",
                        "cannot start the program's output relay (Win32 error %lu)",
                        (unsigned long)e);
  }
  return 0;
}

int jw__relay_finish(jw__relay_t *r, uint32_t timeout_ms) {
  char msg[600];
  int n;
  if (r == NULL || r->thread == NULL)
    return 0;
  if (WaitForSingleObject(r->thread, timeout_ms) != WAIT_OBJECT_0) {
    /* A process outside the job still holds the program's output pipe
     * (nothing of the job is alive any more). The thread is left to the
     * process's exit; the relay is not freed. */
    n = snprintf(msg, sizeof(msg),
                 "jobwarden: the program's output pipe is still open after the job ended (a "
                 "process outside the job holds it); its output after %llu bytes is not "
                 "relayed\n",
                 (unsigned long long)r->bytes);
    if (n > 0)
      jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    return -1;
  }
  if (r->error != 0) {
    n = snprintf(msg, sizeof(msg),
                 "jobwarden: the program's output could not be written to %s (Win32 error %lu); "
                 "%llu bytes were read from it\n",
                 r->mode == JW_AGENT_OUT_FILE     ? r->path
                 : r->mode == JW_AGENT_OUT_STDOUT ? "stdout"
                                                  : "stderr",
                 (unsigned long)r->error, (unsigned long long)r->bytes);
    if (n > 0)
      jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
  }
  return 0;
}

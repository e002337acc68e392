/* `jobwarden tail NAME [--raw]`: reads the event stream a running
 * `jobwarden run --export pipe:NAME` serves and prints it as it comes.
 * Exit status (src/cli.h): 0 the stream ended after sandbox.job_end,
 * 1 it ended without one (the run was killed, or this reader was cut
 * off), 3 no such pipe, 125 any other failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "win/win.h"

#define TAIL_CHUNK    65536
#define TAIL_LINE_MAX (4u << 20) /* longer lines are reported and skipped */
#define BUSY_WAIT_MS  5000

static void say(const char *name, const char *what, DWORD e) {
  char msg[600], sys[256];
  int n;
  jw__sys_error_text(e, sys, sizeof(sys));
  n = snprintf(msg, sizeof(msg), "jobwarden: tail: \\\\.\\pipe\\%s: %s (error %lu: %s)\n", name,
               what, (unsigned long)e, sys);
  if (n > 0)
    jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* Opens the pipe, waiting a moment if every instance is busy. */
static HANDLE open_pipe(const char *name, DWORD *err) {
  char path[JW_PIPE_NAME_MAX + 16];
  wchar_t *wpath;
  HANDLE h = INVALID_HANDLE_VALUE;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  wpath = jw__utf8_to_wide(path);
  if (wpath == NULL) {
    *err = ERROR_INVALID_NAME;
    return INVALID_HANDLE_VALUE;
  }
  for (;;) {
    /* Identification only: the server may know who reads, never act as us. */
    h = CreateFileW(wpath, GENERIC_READ, 0, NULL, OPEN_EXISTING,
                    SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
      break;
    if (!WaitNamedPipeW(wpath, BUSY_WAIT_MS))
      break;
  }
  *err = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  free(wpath);
  return h;
}

int jw_tail_main(const char *name, int raw) {
  HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE), pipe;
  DWORD e, mode;
  char *buf;
  size_t have = 0, cap = TAIL_CHUNK, skipping = 0;
  int saw_end = 0, status;

  pipe = open_pipe(name, &e);
  if (pipe == INVALID_HANDLE_VALUE) {
    if (e == ERROR_FILE_NOT_FOUND) {
      say(name, "no such pipe (is 'jobwarden run --export pipe:NAME' running?)", e);
      return JW_EXIT_TAIL_NO_PIPE;
    }
    say(name, "cannot connect", e);
    return JW_EXIT_JW_ERROR;
  }
  if (GetConsoleMode(out, &mode))
    SetConsoleOutputCP(CP_UTF8);
  buf = malloc(cap);
  if (buf == NULL) {
    CloseHandle(pipe);
    return JW_EXIT_JW_ERROR;
  }
  for (;;) {
    DWORD got = 0;
    char *nl;
    if (cap - have < TAIL_CHUNK / 2 && cap < TAIL_LINE_MAX + TAIL_CHUNK) {
      char *p = realloc(buf, cap * 2);
      if (p == NULL)
        break;
      buf = p;
      cap *= 2;
    }
    if (!ReadFile(pipe, buf + have, (DWORD)(cap - have), &got, NULL) || got == 0) {
      e = GetLastError();
      break;
    }
    have += got;
    while ((nl = memchr(buf, '\n', have)) != NULL) {
      size_t len = (size_t)(nl - buf) + 1;
      if (skipping) {
        skipping = 0; /* the end of an over-long line */
      } else {
        char line[2048];
        if (jw_tail_format(buf, len, line, sizeof(line)) == 1)
          saw_end = 1;
        if (raw ? jw__write_all(out, buf, len) : jw__write_all(out, line, strlen(line)))
          goto stdout_gone;
      }
      memmove(buf, nl + 1, have - len);
      have -= len;
    }
    if (have > TAIL_LINE_MAX) {
      char note[120];
      snprintf(note, sizeof(note), "(a line longer than %u bytes, skipped)\n", TAIL_LINE_MAX);
      if (jw__write_all(out, note, strlen(note)) != 0)
        goto stdout_gone;
      skipping = 1;
      have = 0;
    }
  }
  if (have > 0 && !skipping) {
    char note[120];
    snprintf(note, sizeof(note), "(the stream ended inside a line: %lu bytes dropped)\n",
             (unsigned long)have);
    jw__write_all(out, note, strlen(note));
  }
  if (saw_end) {
    status = JW_EXIT_OK;
  } else {
    say(name, "the stream ended before sandbox.job_end", e);
    status = JW_EXIT_TAIL_CUT;
  }
  free(buf);
  CloseHandle(pipe);
  return status;
stdout_gone:
  free(buf);
  CloseHandle(pipe);
  return JW_EXIT_JW_ERROR;
}

/* `jobwarden ps NAME [--json]` and `jobwarden kill NAME [--pid PID]`: one
 * request line on the control pipe of a `jobwarden run --control NAME`,
 * one reply line (docs/control.md). Exit status (src/cli.h): 0 done, 1 the
 * run refused the request or could not do it, 3 no such control pipe, 125
 * anything else (no valid reply, a pipe served by another user).
 *
 * Every wait is bounded. The pipe is opened at the identification level:
 * the run may learn who asks, never act as the caller. The server must run
 * as the caller's own user (GetNamedPipeServerProcessId): a pipe someone
 * else created under that name gets no request. Whatever the reply holds
 * is shown without control characters or bidirectional overrides. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <sddl.h>

#include "cli.h"
#include "win/win.h"

#define BUSY_WAIT_MS 15000 /* another client is being served (at most ~10 s) */
#define REPLY_MS     15000 /* the server waits up to 5 s for the monitor */
#define WRITE_MS     5000

typedef struct conn_s {
  const char *cmd;  /* "ps" or "kill" */
  const char *name; /* NAME */
  char path[JW_PIPE_NAME_MAX + 64];
  HANDLE pipe; /* overlapped */
  HANDLE io;   /* manual-reset event of the pending operation */
} conn_t;

static void say(const conn_t *c, const char *what, DWORD e) {
  char msg[1200], sys[256];
  int n;
  if (e != 0) {
    jw__sys_error_text(e, sys, sizeof(sys));
    n = snprintf(msg, sizeof(msg), "jobwarden: %s: %s: %s (error %lu: %s)\n", c->cmd, c->path, what,
                 (unsigned long)e, sys);
  } else {
    n = snprintf(msg, sizeof(msg), "jobwarden: %s: %s: %s\n", c->cmd, c->path, what);
  }
  if (n > 0)
    jw__stderr_write(msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
}

/* Opens the pipe, waiting (bounded) while another client is served.
 * Returns 0 or the Win32 error. */
static DWORD open_control(conn_t *c) {
  wchar_t *wpath = jw__utf8_to_wide(c->path);
  ULONGLONG deadline = GetTickCount64() + BUSY_WAIT_MS;
  DWORD e = 0;
  if (wpath == NULL)
    return ERROR_INVALID_NAME;
  for (;;) {
    ULONGLONG now;
    c->pipe =
        CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (c->pipe != INVALID_HANDLE_VALUE)
      break;
    e = GetLastError();
    now = GetTickCount64();
    if (e != ERROR_PIPE_BUSY || now >= deadline)
      break;
    /* A failed wait (the instance came free and was taken again, or the
     * run ended) is answered by the next CreateFileW; the pause keeps a
     * wait that fails at once from spinning. */
    if (!WaitNamedPipeW(wpath, (DWORD)(deadline - now)))
      Sleep(10);
  }
  free(wpath);
  if (c->pipe == INVALID_HANDLE_VALUE) {
    c->pipe = NULL;
    return e;
  }
  return 0;
}

/* Whether the server process runs as this process's user. 0 yes, 1 no
 * (*why says who it is), -1 unknown (its process or token cannot be read;
 * the reply is then only shown, sanitized, never trusted further). */
static int check_server(const conn_t *c, char *why, size_t size) {
  char mine[JW_CONTROL_SID_MAX], theirs[JW_CONTROL_SID_MAX];
  ULONG pid = 0;
  HANDLE h, token;
  int rc = -1;
  union {
    TOKEN_USER tu;
    unsigned char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  DWORD got;
  LPSTR text;
  HANDLE procs[2];
  char *sids[2] = {mine, theirs};
  int i;

  if (!GetNamedPipeServerProcessId(c->pipe, &pid))
    return -1;
  procs[0] = GetCurrentProcess();
  procs[1] = h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (h == NULL)
    return -1;
  for (i = 0; i < 2; i++) {
    sids[i][0] = '\0';
    if (!OpenProcessToken(procs[i], TOKEN_QUERY, &token))
      continue;
    if (GetTokenInformation(token, TokenUser, &u, sizeof(u), &got) &&
        ConvertSidToStringSidA(u.tu.User.Sid, &text)) {
      jw__strlcpy(sids[i], text, JW_CONTROL_SID_MAX);
      LocalFree(text);
    }
    CloseHandle(token);
  }
  CloseHandle(h);
  if (mine[0] && theirs[0]) {
    rc = strcmp(mine, theirs) == 0 ? 0 : 1;
    if (rc == 1)
      snprintf(why, size,
               "the pipe is served by pid %lu running as %s, not as you (%s): no request sent",
               (unsigned long)pid, theirs, mine);
  }
  return rc;
}

/* Waits for the pending operation (timeout_ms). Bytes moved, or -1 with
 * *e set. */
static long finish_io(conn_t *c, OVERLAPPED *ov, DWORD timeout_ms, DWORD *e) {
  DWORD got = 0;
  if (WaitForSingleObject(c->io, timeout_ms) != WAIT_OBJECT_0) {
    *e = ERROR_TIMEOUT;
    if (CancelIoEx(c->pipe, ov) || GetLastError() != ERROR_NOT_FOUND)
      GetOverlappedResult(c->pipe, ov, &got, TRUE);
    return -1;
  }
  if (!GetOverlappedResult(c->pipe, ov, &got, FALSE)) {
    *e = GetLastError();
    return -1;
  }
  return (long)got;
}

/* Sends the request line. 0 or the Win32 error. */
static DWORD send_request(conn_t *c, const char *line, size_t len) {
  while (len > 0) {
    OVERLAPPED ov;
    DWORD put = 0, e = 0;
    long n;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->io;
    if (!ResetEvent(c->io))
      return GetLastError();
    if (WriteFile(c->pipe, line, (DWORD)len, &put, &ov))
      n = (long)put;
    else if ((e = GetLastError()) == ERROR_IO_PENDING)
      n = finish_io(c, &ov, WRITE_MS, &e);
    else
      return e;
    if (n <= 0)
      return e ? e : ERROR_NO_DATA;
    line += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads the reply line (up to JW_CONTROL_REPLY_MAX bytes) into a new
 * malloc'd, NUL-terminated buffer, its length without the '\n' in *len.
 * 0, or the Win32 error (ERROR_TIMEOUT: no reply in time;
 * ERROR_BROKEN_PIPE: the run closed the pipe first; ERROR_MORE_DATA: the
 * reply is too long). */
static DWORD read_reply(conn_t *c, char **out, size_t *len) {
  size_t have = 0, cap = 65536;
  char *buf = malloc(cap + 1), *nl = NULL;
  ULONGLONG deadline = GetTickCount64() + REPLY_MS;
  DWORD e = 0;
  *out = NULL;
  if (buf == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  while (nl == NULL) {
    OVERLAPPED ov;
    DWORD got = 0;
    ULONGLONG now = GetTickCount64();
    long n;
    if (now >= deadline) {
      e = ERROR_TIMEOUT;
      break;
    }
    if (have == cap) {
      char *p;
      if (cap >= JW_CONTROL_REPLY_MAX) {
        e = ERROR_MORE_DATA;
        break;
      }
      p = realloc(buf, cap * 2 + 1);
      if (p == NULL) {
        e = ERROR_NOT_ENOUGH_MEMORY;
        break;
      }
      buf = p;
      cap *= 2;
    }
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->io;
    if (!ResetEvent(c->io)) {
      e = GetLastError();
      break;
    }
    if (ReadFile(c->pipe, buf + have, (DWORD)(cap - have), &got, &ov))
      n = (long)got;
    else if ((e = GetLastError()) == ERROR_IO_PENDING)
      n = finish_io(c, &ov, (DWORD)(deadline - now), &e);
    else
      break;
    if (n <= 0) {
      if (e == 0 || e == ERROR_IO_PENDING)
        e = ERROR_BROKEN_PIPE;
      break;
    }
    e = 0;
    nl = memchr(buf + have, '\n', (size_t)n);
    have += (size_t)n;
  }
  if (nl == NULL) {
    free(buf);
    return e ? e : ERROR_BROKEN_PIPE;
  }
  *nl = '\0';
  *len = (size_t)(nl - buf);
  *out = buf;
  return 0;
}

/* One request, one reply, printed. */
static int control_main(const char *cmd, const char *name, const jw_control_request_t *req,
                        int json) {
  conn_t c;
  char line[128], why[400];
  char *reply = NULL, *text = NULL;
  size_t len = 0, rlen = 0;
  DWORD e, mode;
  int status = JW_EXIT_JW_ERROR, rc;
  HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);

  memset(&c, 0, sizeof(c));
  c.cmd = cmd;
  c.name = name;
  snprintf(c.path, sizeof(c.path), "\\\\.\\pipe\\" JW_CONTROL_PIPE_PREFIX "%s", name);
  len = jw_control_format_request(req, line, sizeof(line));
  if (len == 0)
    return JW_EXIT_JW_ERROR;
  c.io = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (c.io == NULL) {
    say(&c, "cannot create an event", GetLastError());
    return JW_EXIT_JW_ERROR;
  }
  e = open_control(&c);
  if (e != 0) {
    if (e == ERROR_FILE_NOT_FOUND) {
      say(&c, "no such control pipe (is 'jobwarden run --control NAME' running?)", e);
      status = JW_EXIT_CONTROL_NO_PIPE;
    } else {
      say(&c, "cannot connect", e);
    }
    goto done;
  }
  if (check_server(&c, why, sizeof(why)) == 1) {
    say(&c, why, 0);
    goto done;
  }
  e = send_request(&c, line, len);
  if (e == 0)
    e = read_reply(&c, &reply, &rlen);
  if (e != 0) {
    say(&c,
        e == ERROR_TIMEOUT     ? "no reply from the run in time"
        : e == ERROR_MORE_DATA ? "the reply is longer than the limit"
                               : "the run did not reply",
        e);
    goto done;
  }
  rc = jw_control_reply_text(reply, rlen, req->op, &text);
  if (rc < 0) {
    say(&c, text ? text : "out of memory", 0);
    goto done;
  }
  if (GetConsoleMode(out, &mode))
    SetConsoleOutputCP(CP_UTF8);
  if (json) {
    /* The reply as it came: a valid JSON object, one line. */
    reply[rlen] = '\n';
    if (jw__write_all(out, reply, rlen + 1) != 0)
      goto done;
  }
  if (rc == 0) {
    snprintf(why, sizeof(why), "refused: %s", text);
    say(&c, why, 0);
    status = JW_EXIT_CONTROL_REFUSED;
    goto done;
  }
  if (!json && jw__write_all(out, text, strlen(text)) != 0)
    goto done;
  status = JW_EXIT_OK;
done:
  free(reply);
  free(text);
  if (c.pipe != NULL)
    CloseHandle(c.pipe);
  CloseHandle(c.io);
  return status;
}

int jw_ps_main(const char *name, int json) {
  jw_control_request_t req;
  memset(&req, 0, sizeof(req));
  req.op = JW_CONTROL_PS;
  return control_main("ps", name, &req, json);
}

int jw_kill_main(const char *name, int has_pid, uint32_t pid) {
  jw_control_request_t req;
  memset(&req, 0, sizeof(req));
  req.op = has_pid ? JW_CONTROL_KILL_PID : JW_CONTROL_KILL_JOB;
  req.pid = pid;
  return control_main("kill", name, &req, 0);
}

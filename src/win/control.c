/* The control channel of `jobwarden run --control NAME` (docs/control.md):
 * \\.\pipe\jobwarden-control-NAME, on which the owner of the run lists the
 * job's processes and terminates one of them or the whole job.
 *
 * Who may ask: the pipe's DACL grants the run's user and SYSTEM only
 * (protected, like the pipe exporter's), remote clients are rejected, and
 * the handle is not inheritable (the sandboxed program's spawn lists its
 * inherited handles explicitly anyway). Wine enforces none of the pipe's
 * access rules, and on Windows the sandboxed program itself runs as the
 * same user, so the server also checks every connection itself:
 *   - the client's process (GetNamedPipeClientProcessId) must not be in the
 *     job: the sandbox never controls its own run; nor an escape from it: a
 *     process outside the job that descends, through processes outside the
 *     job, from jobwarden itself or from a member (a parent named with
 *     PROC_THREAD_ATTRIBUTE_PARENT_PROCESS takes the child out of the job;
 *     src/win/escape.h);
 *   - every identity that can be read must be the run's user: the token
 *     the client lets the pipe see (ImpersonateNamedPipeClient at
 *     identification level + OpenThreadToken) and its process's token; at
 *     least one of them must be readable.
 * A refused request gets {"ok":false,...} and a sandbox.notice
 * (member_control).
 *
 * One thread serves one client at a time on one pipe instance; a second
 * client waits (WaitNamedPipeW) until the first is done. A connection may
 * carry several request lines, each answered by one reply line. Every wait
 * is bounded: a client that sends nothing for IDLE_MS, or does not take
 * its reply within WRITE_MS, is disconnected; the monitor's answer is
 * awaited ANSWER_MS. A request line longer than JW_CONTROL_LINE_MAX is
 * answered with an error as soon as the limit is reached, and the rest of
 * it is read and thrown away (never stored). The work itself (the member
 * list, the kills) is done by the monitor thread (jw_monitor_control). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <sddl.h>

#include "win/escape.h"
#include "win/win.h"

#define IDLE_MS            5000
#define WRITE_MS           5000
#define ANSWER_MS          5000
#define PIPE_OUT_BYTES     65536
#define PIPE_IN_BYTES      JW_CONTROL_LINE_MAX
#define MAX_REFUSAL_EVENTS 1000 /* refusal notices per run; the last one says so */

/* What the server knows about a client's connection. */
typedef struct client_s {
  DWORD pid;                          /* 0 = unknown */
  char sid[JW_CONTROL_SID_MAX];       /* the user, "" = unknown */
  const char *refusal;                /* NULL: may control the run; else the reason */
  char why[JW_CONTROL_SID_MAX + 200]; /* the refusal as a sentence */
  int checked;
} client_t;

struct jw_control_s {
  char name[JW_PIPE_NAME_MAX + 1];
  wchar_t *path;           /* \\.\pipe\jobwarden-control-NAME, owned */
  PSECURITY_DESCRIPTOR sd; /* owned (LocalFree) */
  SECURITY_ATTRIBUTES sa;
  char owner[JW_CONTROL_SID_MAX]; /* the run's user as text */
  HANDLE pipe;                    /* owner: the control; the one instance, overlapped */
  HANDLE stop;                    /* owner: the control; manual-reset: the run ends */
  HANDLE io;                      /* owner: the control; manual-reset, the server thread's I/O */
  jw__thread_t thread;
  int thread_started;
  jw_job_t *job;     /* borrowed */
  jw_monitor_t *mon; /* borrowed */
  jw_emitter_t *em;  /* borrowed */
  char run_id[40];
  char job_name[JW_POLICY_NAME_MAX + 32];
  unsigned refusals; /* refusal notices emitted (server thread) */
  uint64_t started;  /* FILETIME of jw_control_start: before the root exists */
};

static jw__control_identity_fn volatile identity_hook;

void jw__control_identity_hook(jw__control_identity_fn fn) {
  identity_hook = fn;
  MemoryBarrier();
}

/* ------------------------------------------------------------------------ */
/* Identity                                                                 */
/* ------------------------------------------------------------------------ */

/* The user of a token as "S-1-..." into sid. 0, or the Win32 error. */
static DWORD token_user(HANDLE token, char *sid, size_t size) {
  union {
    TOKEN_USER tu;
    unsigned char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  DWORD got = 0;
  LPSTR text = NULL;
  if (!GetTokenInformation(token, TokenUser, &u, sizeof(u), &got))
    return GetLastError();
  if (!ConvertSidToStringSidA(u.tu.User.Sid, &text))
    return GetLastError();
  jw__strlcpy(sid, text, size);
  LocalFree(text);
  return 0;
}

static DWORD process_user(HANDLE process, char *sid, size_t size) {
  HANDLE token = NULL;
  DWORD e;
  if (!OpenProcessToken(process, TOKEN_QUERY, &token))
    return GetLastError();
  e = token_user(token, sid, size);
  CloseHandle(token);
  return e;
}

/* The user the client presents on the pipe (its impersonation token, at
 * the identification level `jobwarden ps` / `kill` ask for). 0 or the
 * Win32 error. */
static DWORD pipe_user(HANDLE pipe, char *sid, size_t size) {
  HANDLE token = NULL;
  DWORD e = 0;
  if (!ImpersonateNamedPipeClient(pipe))
    return GetLastError();
  if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token))
    e = GetLastError();
  /* This thread must never go on acting as the client. */
  if (!RevertToSelf())
    abort();
  if (e != 0)
    return e;
  e = token_user(token, sid, size);
  CloseHandle(token);
  return e;
}

/* Decides once per connection whether its client may control the run. */
static void check_client(jw_control_t *c, client_t *cl) {
  char by_pipe[JW_CONTROL_SID_MAX] = "", by_process[JW_CONTROL_SID_MAX] = "";
  DWORD e_pipe = 0, e_proc = 0;
  HANDLE h;
  BOOL in_job = FALSE;
  jw__control_identity_fn hook = identity_hook;
  const char *escape = NULL;
  DWORD escape_via = 0;

  cl->checked = 1;
  if (!GetNamedPipeClientProcessId(c->pipe, &cl->pid) || cl->pid == 0) {
    cl->pid = 0;
    cl->refusal = "identity_unknown";
    snprintf(cl->why, sizeof(cl->why),
             "the client's process cannot be identified (GetNamedPipeClientProcessId, Win32 "
             "error %lu)",
             (unsigned long)GetLastError());
    return;
  }
  /* Inside the job? PROCESS_QUERY_INFORMATION: Wine's IsProcessInJob
   * refuses a limited handle. */
  h = OpenProcess(PROCESS_QUERY_INFORMATION, FALSE, cl->pid);
  if (h == NULL)
    h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, cl->pid);
  if (h == NULL || !IsProcessInJob(h, c->job->job, &in_job)) {
    DWORD e = GetLastError();
    if (h != NULL)
      CloseHandle(h);
    cl->refusal = "identity_unknown";
    snprintf(cl->why, sizeof(cl->why),
             "the client's process (pid %lu) cannot be examined (%s, Win32 error %lu)",
             (unsigned long)cl->pid, h == NULL ? "OpenProcess" : "IsProcessInJob",
             (unsigned long)e);
    return;
  }
  if (!in_job)
    escape = jw__escape_ancestry(c->job->job, h, c->started, &escape_via);
  if (hook != NULL) {
    if (hook(cl->pid, by_process, sizeof(by_process)) != 0) {
      by_process[0] = '\0';
      e_proc = ERROR_ACCESS_DENIED;
    }
  } else {
    e_pipe = pipe_user(c->pipe, by_pipe, sizeof(by_pipe));
    e_proc = process_user(h, by_process, sizeof(by_process));
  }
  CloseHandle(h);
  if (e_pipe != 0)
    by_pipe[0] = '\0';
  if (e_proc != 0)
    by_process[0] = '\0';
  jw__strlcpy(cl->sid, by_pipe[0] ? by_pipe : by_process, sizeof(cl->sid));
  if (in_job) {
    cl->refusal = "from_sandbox";
    snprintf(cl->why, sizeof(cl->why),
             "the request comes from pid %lu, a process inside the job: the sandbox cannot "
             "control its own run",
             (unsigned long)cl->pid);
  } else if (escape != NULL) {
    cl->refusal = "from_escape";
    snprintf(cl->why, sizeof(cl->why),
             "the request comes from pid %lu, a process outside the job that descends from %s "
             "(pid %lu): it escaped the job, and the sandbox cannot control its own run",
             (unsigned long)cl->pid,
             strcmp(escape, "jobwarden") == 0 ? "jobwarden itself" : "a process of the job",
             (unsigned long)escape_via);
  } else if (!by_pipe[0] && !by_process[0]) {
    cl->refusal = "identity_unknown";
    snprintf(cl->why, sizeof(cl->why),
             "the user of the client (pid %lu) cannot be read (pipe token: Win32 error %lu; "
             "process token: Win32 error %lu)",
             (unsigned long)cl->pid, (unsigned long)e_pipe, (unsigned long)e_proc);
  } else if ((by_pipe[0] && strcmp(by_pipe, c->owner) != 0) ||
             (by_process[0] && strcmp(by_process, c->owner) != 0)) {
    const char *other = by_pipe[0] && strcmp(by_pipe, c->owner) != 0 ? by_pipe : by_process;
    jw__strlcpy(cl->sid, other, sizeof(cl->sid));
    cl->refusal = "not_owner";
    snprintf(cl->why, sizeof(cl->why),
             "the client (pid %lu) runs as %s, not as the run's user: only the owner of the run "
             "may control it",
             (unsigned long)cl->pid, other);
  }
}

/* ------------------------------------------------------------------------ */
/* Pipe I/O (one overlapped operation at a time, on c->io)                  */
/* ------------------------------------------------------------------------ */

/* Waits for the pending operation; gives up (cancels) after timeout_ms or,
 * when `stoppable`, when the run ends. Returns the bytes moved, or -1. */
static long finish_io(jw_control_t *c, OVERLAPPED *ov, DWORD timeout_ms, int stoppable) {
  HANDLE hs[2] = {c->io, c->stop};
  DWORD w = WaitForMultipleObjects(stoppable ? 2 : 1, hs, FALSE, timeout_ms), got = 0;
  if (w != WAIT_OBJECT_0) {
    if (!CancelIoEx(c->pipe, ov) && GetLastError() != ERROR_NOT_FOUND)
      return -1; /* cannot happen for our own pending operation */
    GetOverlappedResult(c->pipe, ov, &got, TRUE);
    return -1;
  }
  if (!GetOverlappedResult(c->pipe, ov, &got, FALSE))
    return -1;
  return (long)got;
}

/* Reads what the client sent (at most size bytes). Returns the count, or
 * -1 when the client left, stayed silent for IDLE_MS, or the run ends. */
static long read_some(jw_control_t *c, char *buf, DWORD size) {
  OVERLAPPED ov;
  DWORD got = 0;
  memset(&ov, 0, sizeof(ov));
  ov.hEvent = c->io;
  if (!ResetEvent(c->io))
    return -1;
  if (ReadFile(c->pipe, buf, size, &got, &ov))
    return (long)got;
  if (GetLastError() != ERROR_IO_PENDING)
    return -1; /* ERROR_BROKEN_PIPE: the client closed its end */
  return finish_io(c, &ov, IDLE_MS, 1);
}

/* Writes all of data; a client that does not take it within WRITE_MS is
 * given up. The run's end does not cut a reply short. 0 or -1. */
static int write_all(jw_control_t *c, const char *data, size_t len) {
  while (len > 0) {
    OVERLAPPED ov;
    DWORD put = 0, chunk = len > 0x10000000u ? 0x10000000u : (DWORD)len;
    long n;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->io;
    if (!ResetEvent(c->io))
      return -1;
    if (WriteFile(c->pipe, data, chunk, &put, &ov)) {
      n = (long)put;
    } else if (GetLastError() == ERROR_IO_PENDING) {
      n = finish_io(c, &ov, WRITE_MS, 0);
    } else {
      return -1; /* ERROR_NO_DATA: the client has gone */
    }
    if (n <= 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Writes reply (stolen) as one line. 0 or -1. */
static int send_reply(jw_control_t *c, json_t *reply) {
  char *text;
  size_t len;
  int rc;
  if (reply == NULL)
    reply = json_pack("{s:b,s:s,s:s}", "ok", 0, "reason", "system_error", "error",
                      "jobwarden ran out of memory");
  text = reply ? json_dumps(reply, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(reply);
  if (text == NULL)
    return -1;
  len = strlen(text);
  text[len] = '\n'; /* json_dumps leaves the NUL; the line end replaces it */
  rc = write_all(c, text, len + 1);
  free(text);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* A request the server refuses itself: a reply, and a notice while the
 * run's budget of them lasts. */
static json_t *refuse(jw_control_t *c, const jw_control_request_t *req, const char *reason,
                      jw_severity_t sev, const char *why) {
  jw_event_t ev;
  json_t *x, *ctl;
  if (c->refusals < MAX_REFUSAL_EVENTS) {
    c->refusals++;
    jw_event_init(&ev, JW_EVENT_NOTICE, "member_control", "blocked", "monitor", "jobwarden", sev);
    snprintf(ev.message, sizeof(ev.message),
             "control request %s from pid %lu (user %s) refused: %s%s", jw_control_op_name(req->op),
             (unsigned long)req->requester_pid,
             req->requester_sid[0] ? req->requester_sid : "unknown", why,
             c->refusals == MAX_REFUSAL_EVENTS ? " (further refusals of this run are not reported)"
                                               : "");
    x = json_object();
    ctl = jw_control_event_object(req, "refused", reason);
    if (x != NULL && ctl != NULL && json_object_set_new(x, "control", ctl) == 0) {
      ev.extra = x;
    } else {
      json_decref(x);
      if (x == NULL)
        json_decref(ctl);
    }
    jw_emit(c->em, &ev);
  }
  return json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "op", jw_control_op_name(req->op), "reason",
                   reason, "error", why);
}

/* Answers one request line (without its '\n'). 0, or -1 when the client
 * is gone. */
static int handle_line(jw_control_t *c, client_t *cl, const char *line, size_t len) {
  jw_control_request_t req;
  json_t *reply = NULL;
  char why[300];
  int rc;

  memset(&req, 0, sizeof(req));
  if (!cl->checked)
    check_client(c, cl);
  /* The op is read first so that a refusal names what was asked. */
  rc = jw_control_parse_request(line, len, &req, why, sizeof(why));
  req.requester_pid = cl->pid;
  jw__strlcpy(req.requester_sid, cl->sid, sizeof(req.requester_sid));
  if (cl->refusal != NULL)
    return send_reply(c, refuse(c, &req, cl->refusal, JW_SEV_HIGH, cl->why));
  if (rc != 0)
    return send_reply(c, refuse(c, &req, "bad_request", JW_SEV_MEDIUM, why));
  rc = jw_monitor_control(c->mon, &req, ANSWER_MS, &reply);
  if (rc != 0) {
    snprintf(why, sizeof(why),
             "the monitor did not answer within %d ms (the run is starting or ending)", ANSWER_MS);
    return send_reply(c, refuse(c, &req, "unavailable", JW_SEV_MEDIUM, why));
  }
  if (req.op == JW_CONTROL_PS && json_is_true(json_object_get(reply, "ok"))) {
    json_object_set_new(reply, "run_id", json_string(c->run_id));
    json_object_set_new(reply, "job", json_string(c->job_name));
  }
  return send_reply(c, reply);
}

/* Serves one connected client until it leaves, falls silent or the run
 * ends. Returns 1 when the run ends (the pipe must not be disconnected:
 * that would throw away a reply not yet read). */
static int serve_client(jw_control_t *c) {
  char *buf = malloc(JW_CONTROL_LINE_MAX);
  size_t have = 0;
  int discarding = 0;
  client_t cl;
  memset(&cl, 0, sizeof(cl));
  if (buf == NULL)
    return 0;
  for (;;) {
    long n = read_some(c, buf + have, (DWORD)(JW_CONTROL_LINE_MAX - have));
    char *nl;
    if (n <= 0)
      break;
    have += (size_t)n;
    while ((nl = memchr(buf, '\n', have)) != NULL) {
      size_t len = (size_t)(nl - buf);
      if (discarding)
        discarding = 0; /* the end of a line already answered */
      else if (handle_line(c, &cl, buf, len) != 0)
        goto done;
      memmove(buf, nl + 1, have - len - 1);
      have -= len + 1;
    }
    if (have == JW_CONTROL_LINE_MAX) {
      if (!discarding) {
        jw_control_request_t req;
        char why[120];
        memset(&req, 0, sizeof(req));
        if (!cl.checked)
          check_client(c, &cl);
        req.requester_pid = cl.pid;
        jw__strlcpy(req.requester_sid, cl.sid, sizeof(req.requester_sid));
        snprintf(why, sizeof(why), "the request line is longer than %d bytes",
                 JW_CONTROL_LINE_MAX - 1);
        if (send_reply(c, refuse(c, &req, cl.refusal ? cl.refusal : "request_too_long",
                                 cl.refusal ? JW_SEV_HIGH : JW_SEV_MEDIUM,
                                 cl.refusal ? cl.why : why)) != 0)
          goto done;
        discarding = 1;
      }
      have = 0;
    }
  }
done:
  free(buf);
  return WaitForSingleObject(c->stop, 0) == WAIT_OBJECT_0;
}

/* The channel stops working; the run goes on without it. */
static void say_broken(const jw_control_t *c, const char *call, DWORD e) {
  char msg[400];
  int k = snprintf(msg, sizeof(msg),
                   "jobwarden: control pipe %s: %s failed (Win32 error %lu); the run goes on "
                   "without its control channel\n",
                   c->name, call, (unsigned long)e);
  if (k > 0)
    jw__stderr_write(msg, (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1);
}

static void server_main(void *arg) {
  jw_control_t *c = arg;
  for (;;) {
    OVERLAPPED ov;
    DWORD e;
    int connected = 0;
    if (WaitForSingleObject(c->stop, 0) == WAIT_OBJECT_0)
      break;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = c->io;
    if (!ResetEvent(c->io)) {
      say_broken(c, "ResetEvent", GetLastError());
      break;
    }
    if (ConnectNamedPipe(c->pipe, &ov)) {
      connected = 1;
    } else if ((e = GetLastError()) == ERROR_PIPE_CONNECTED) {
      connected = 1;
    } else if (e == ERROR_IO_PENDING) {
      connected = finish_io(c, &ov, INFINITE, 1) >= 0;
      if (!connected && WaitForSingleObject(c->stop, 0) == WAIT_OBJECT_0)
        break;
    } else if (e != ERROR_NO_DATA) { /* NO_DATA: the client came and went */
      say_broken(c, "ConnectNamedPipe", e);
      break;
    }
    if (connected && serve_client(c))
      break; /* the run ends: the last reply stays readable */
    if (!DisconnectNamedPipe(c->pipe)) {
      say_broken(c, "DisconnectNamedPipe", GetLastError());
      break;
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Owner side                                                               */
/* ------------------------------------------------------------------------ */

/* Owner and SYSTEM only: "O:<user>D:P(A;;GA;;;<user>)(A;;GA;;;SY)". */
static int make_security(jw_control_t *c, jw_error_t *err) {
  HANDLE token = NULL;
  DWORD e;
  wchar_t sddl[512];
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return jw_error_set(err, JW_ESYS, GetLastError(), "OpenProcessToken",
                        "--control %s: cannot read the current user (OpenProcessToken)", c->name);
  e = token_user(token, c->owner, sizeof(c->owner));
  CloseHandle(token);
  if (e != 0)
    return jw_error_set(err, JW_ESYS, e, "GetTokenInformation",
                        "--control %s: cannot read the current user's SID", c->name);
  if (_snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]), L"O:%hsD:P(A;;GA;;;%hs)(A;;GA;;;SY)",
                 c->owner, c->owner) < 0 ||
      !ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &c->sd, NULL))
    return jw_error_set(err, JW_ESYS, GetLastError(),
                        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
                        "--control %s: cannot build the owner-only security descriptor", c->name);
  c->sa.nLength = sizeof(c->sa);
  c->sa.lpSecurityDescriptor = c->sd;
  c->sa.bInheritHandle = FALSE;
  return 0;
}

static void control_free(jw_control_t *c) {
  if (c->pipe != NULL && c->pipe != INVALID_HANDLE_VALUE)
    CloseHandle(c->pipe);
  if (c->stop != NULL)
    CloseHandle(c->stop);
  if (c->io != NULL)
    CloseHandle(c->io);
  if (c->sd != NULL)
    LocalFree(c->sd);
  free(c->path);
  free(c);
}

int jw_control_open(const char *name, jw_control_t **out, jw_error_t *err) {
  jw_control_t *c = calloc(1, sizeof(*c));
  char path[JW_PIPE_NAME_MAX + 64];
  DWORD e;
  int rc;
  *out = NULL;
  if (c == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--control", "out of memory");
  jw__strlcpy(c->name, name, sizeof(c->name));
  snprintf(path, sizeof(path), "\\\\.\\pipe\\" JW_CONTROL_PIPE_PREFIX "%s", c->name);
  c->path = jw__utf8_to_wide(path);
  if (c->path == NULL) {
    rc = jw_error_set(err, JW_EUSAGE, 0, "--control", "--control %s: NAME is not valid UTF-8",
                      c->name);
    goto fail;
  }
  rc = make_security(c, err);
  if (rc != 0)
    goto fail;
  /* A served name is refused, never shared. FIRST_PIPE_INSTANCE (and one
   * instance at most) make that race-free on Windows; Wine ignores both,
   * so the name is probed first. */
  if (WaitNamedPipeW(c->path, 1) || GetLastError() != ERROR_FILE_NOT_FOUND) {
    rc = jw_error_set(err, JW_EUSAGE, ERROR_ACCESS_DENIED, "--control",
                      "--control %s: %s already exists (another jobwarden run or another program "
                      "serves it); choose another NAME",
                      c->name, path);
    goto fail;
  }
  c->pipe = CreateNamedPipeW(
      c->path, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1,
      PIPE_OUT_BYTES, PIPE_IN_BYTES, 0, &c->sa);
  if (c->pipe == INVALID_HANDLE_VALUE) {
    e = GetLastError();
    c->pipe = NULL;
    if (e == ERROR_ACCESS_DENIED || e == ERROR_PIPE_BUSY)
      rc = jw_error_set(err, JW_EUSAGE, e, "--control",
                        "--control %s: %s already exists (another jobwarden run or another "
                        "program serves it); choose another NAME",
                        c->name, path);
    else
      rc = jw_error_set(err, JW_ESYS, e, "CreateNamedPipeW",
                        "--control %s: cannot create %s (CreateNamedPipeW, error %lu)", c->name,
                        path, (unsigned long)e);
    goto fail;
  }
  c->stop = CreateEventW(NULL, TRUE, FALSE, NULL);
  c->io = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (c->stop == NULL || c->io == NULL) {
    rc = jw_error_set(err, JW_ESYS, GetLastError(), "CreateEventW",
                      "--control %s: cannot create events", c->name);
    goto fail;
  }
  *out = c;
  return 0;
fail:
  control_free(c);
  return rc;
}

int jw_control_start(jw_control_t *c, jw_job_t *job, jw_monitor_t *mon, jw_emitter_t *em,
                     const jw_run_info_t *run, jw_error_t *err) {
  FILETIME now;
  c->job = job;
  c->mon = mon;
  c->em = em;
  GetSystemTimeAsFileTime(&now);
  c->started = ((uint64_t)now.dwHighDateTime << 32) | now.dwLowDateTime;
  jw__strlcpy(c->run_id, run->run_id, sizeof(c->run_id));
  jw__strlcpy(c->job_name, run->job_name, sizeof(c->job_name));
  if (jw__thread_start(&c->thread, server_main, c) != 0)
    return jw_error_set(err, JW_ESYS, GetLastError(), "CreateThread",
                        "--control %s: cannot start the control thread", c->name);
  c->thread_started = 1;
  return 0;
}

void jw_control_close(jw_control_t *c) {
  if (c == NULL)
    return;
  /* Every wait of the thread ends on `stop` or within WRITE_MS. Closing
   * the instance afterwards (no DisconnectNamedPipe) lets a client read a
   * reply still in the pipe, then see the end. */
  if (!SetEvent(c->stop)) {
    say_broken(c, "SetEvent", GetLastError());
    return; /* the thread may still use c: left allocated */
  }
  if (c->thread_started)
    jw__thread_join(&c->thread);
  control_free(c);
}

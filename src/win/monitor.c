/* The monitor thread: drains the job's completion port and turns every
 * JOB_OBJECT_MSG_* packet into events. It never waits on an exporter's
 * reader (exporters write files and standard streams synchronously under
 * the emitter's lock) and sleeps only in GetQueuedCompletionStatusEx, so an
 * idle job costs nothing. */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winternl.h>

#include <jansson.h>

#include "win/win.h"

#define BATCH          64
#define OPEN_RETRIES   12
#define RETRY_SLEEP_MS 10

typedef struct tracked_s {
  DWORD pid;
  HANDLE h;             /* owner: the monitor; NULL when it could not be opened */
  uint64_t create_time; /* 0 = unknown */
  char *image;          /* owned, UTF-8; NULL = unknown */
  size_t image_len;     /* bytes of image (U+0000 kept); 0 = strlen(image) */
  int image_truncated;  /* the path was cut at JW_HOSTILE_MAX_UNITS */
  int has_parent;
  DWORD ppid;
  int is_root;
  int exited;
  int has_exit_code;
  uint32_t exit_code;
} tracked_t;

struct jw_monitor_s {
  jw_job_t *job;      /* borrowed */
  jw_emitter_t *em;   /* borrowed */
  HANDLE thread;      /* owner: the monitor */
  HANDLE done;        /* owner: the monitor; set when the job is empty */
  int thread_running; /* resumed (main thread only) */
  tracked_t *procs;   /* monitor thread only once it runs */
  size_t n_procs, cap_procs;
  DWORD root_pid;
  volatile LONG terminating; /* jobwarden is killing the job */
  const char *volatile terminate_reason;
  jw_monitor_stats_t stats;
};

typedef LONG(NTAPI *nt_query_fn)(HANDLE, PROCESSINFOCLASS, PVOID, ULONG, PULONG);

/* ------------------------------------------------------------------------ */
/* Process facts                                                            */
/* ------------------------------------------------------------------------ */

static tracked_t *find_proc(jw_monitor_t *m, DWORD pid) {
  size_t i;
  /* Newest first: a reused pid belongs to the latest live entry. */
  for (i = m->n_procs; i-- > 0;)
    if (m->procs[i].pid == pid)
      return &m->procs[i];
  return NULL;
}

static tracked_t *add_proc(jw_monitor_t *m, DWORD pid) {
  tracked_t *t;
  if (m->n_procs == m->cap_procs) {
    size_t cap = m->cap_procs ? m->cap_procs * 2 : 16;
    tracked_t *p = realloc(m->procs, cap * sizeof(*p));
    if (p == NULL)
      return NULL;
    m->procs = p;
    m->cap_procs = cap;
  }
  t = &m->procs[m->n_procs++];
  memset(t, 0, sizeof(*t));
  t->pid = pid;
  m->stats.processes_seen++;
  return t;
}

/* The image path, or NULL (with the Win32 error in *e) when the handle
 * cannot answer yet; its length in bytes (U+0000 kept) in *len and whether
 * it was cut in *truncated. */
static char *query_image(HANDLE h, DWORD *e, size_t *len, int *truncated) {
  wchar_t *buf = malloc(32768 * sizeof(wchar_t));
  char *out = NULL;
  DWORD size = 32768;
  *e = 0;
  *len = 0;
  *truncated = 0;
  if (buf == NULL)
    return NULL;
  if (QueryFullProcessImageNameW(h, 0, buf, &size)) {
    if (jw_utf16_to_utf8((const uint16_t *)buf, size, JW_HOSTILE_MAX_UNITS, &out, len, truncated) !=
        0)
      *truncated = 0; /* no image: nothing to call truncated */
  } else {
    *e = GetLastError();
  }
  free(buf);
  return out;
}

static int query_parent(HANDLE h, DWORD *ppid) {
  static nt_query_fn fn;
  PROCESS_BASIC_INFORMATION pbi;
  ULONG got = 0;
  if (fn == NULL) {
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    if (nt == NULL)
      return 0;
    fn = (nt_query_fn)(void (*)(void))GetProcAddress(nt, "NtQueryInformationProcess");
    if (fn == NULL)
      return 0;
  }
  memset(&pbi, 0, sizeof(pbi));
  if (fn(h, ProcessBasicInformation, &pbi, sizeof(pbi), &got) < 0)
    return 0;
  *ppid = (DWORD)pbi.InheritedFromUniqueProcessId;
  return 1;
}

/* FILETIME of 2000-01-01, and of "now" plus a day: a creation time outside
 * that range is not believed. */
#define FILETIME_2000 0x01BF53EB256D4000ull

static int plausible_filetime(uint64_t ft) {
  FILETIME now;
  uint64_t n;
  GetSystemTimeAsFileTime(&now);
  n = ((uint64_t)now.dwHighDateTime << 32) | now.dwLowDateTime;
  return ft >= FILETIME_2000 && ft <= n + 864000000000ull;
}

/* The creation time, 0 when it cannot be read. Wine reports a bogus value
 * for a process that is still starting; it settles within milliseconds. */
static uint64_t query_create_time(HANDLE h) {
  int attempt;
  for (attempt = 0; attempt < OPEN_RETRIES; attempt++) {
    FILETIME ct, xt, kt, ut;
    uint64_t v;
    memset(&ct, 0, sizeof(ct));
    if (!GetProcessTimes(h, &ct, &xt, &kt, &ut))
      return 0;
    v = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
    if (plausible_filetime(v))
      return v;
    Sleep(RETRY_SLEEP_MS);
  }
  return 0;
}

/* Opens a process announced by the port and records what can be read. The
 * handle is kept for the process's lifetime, so its pid cannot be reused
 * while jobwarden tracks it. A process caught at the instant of its
 * NEW_PROCESS may hand out a handle that does not answer yet (Wine: error 6
 * for up to tens of milliseconds); it is opened again after a short pause,
 * a bounded number of times. */
static void enrich(tracked_t *t) {
  int attempt;
  for (attempt = 0; attempt < OPEN_RETRIES; attempt++) {
    DWORD e = 0;
    if (attempt > 0)
      Sleep(RETRY_SLEEP_MS);
    if (t->h == NULL)
      t->h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, t->pid);
    if (t->h == NULL) {
      if (GetLastError() == ERROR_INVALID_PARAMETER)
        return; /* no such process (any more) */
      continue;
    }
    t->image = query_image(t->h, &e, &t->image_len, &t->image_truncated);
    if (t->image != NULL)
      break;
    if (e == ERROR_INVALID_HANDLE && attempt + 1 < OPEN_RETRIES) {
      CloseHandle(t->h);
      t->h = NULL;
    }
  }
  if (t->h == NULL)
    return;
  t->has_parent = query_parent(t->h, &t->ppid);
  t->create_time = query_create_time(t->h);
}

static void fill_process(const tracked_t *t, jw_process_info_t *p) {
  memset(p, 0, sizeof(*p));
  p->pid = t->pid;
  p->create_time = t->create_time;
  p->image = t->image;
  p->image_len = t->image_len;
  p->image_truncated = t->image_truncated;
  p->has_parent = t->has_parent;
  p->parent_pid = t->ppid;
  p->has_exit_code = t->has_exit_code;
  p->exit_code = t->exit_code;
  p->is_root = t->is_root;
}

static const char *image_or_unknown(const tracked_t *t) {
  return t->image ? t->image : "(image unknown)";
}

static uint32_t active_count(jw_monitor_t *m) {
  uint32_t n = 0;
  size_t i;
  for (i = 0; i < m->n_procs; i++)
    n += !m->procs[i].exited;
  return n;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* Most monitor events come from a port message. */
static void ev_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                    const char *enforcer, jw_severity_t sev) {
  jw_event_init(ev, kind, rule, action, enforcer, "port", sev);
}

static void ev_job_message(jw_event_t *ev, DWORD msg) {
  ev->has_job_message = 1;
  ev->job_message = msg;
}

static void emit(jw_monitor_t *m, jw_event_t *ev) {
  if (ev->kind == JW_EVENT_VIOLATION)
    m->stats.violations++;
  if (ev->source != NULL && strcmp(ev->source, "reconciled") == 0)
    m->stats.reconciled++;
  jw_emit(m->em, ev);
}

static void format_code(uint32_t code, char *buf, size_t size) {
  const char *name = jw_ntstatus_name(code);
  if (name != NULL)
    snprintf(buf, size, "0x%08lX %s", (unsigned long)code, name);
  else
    snprintf(buf, size, "0x%08lX", (unsigned long)code);
}

/* The exit of a tracked process: its lifecycle event, preceded by a
 * violation when the exit code is an exception / NTSTATUS error (whichever
 * message announced it) and jobwarden did not cause it. */
static void report_exit(jw_monitor_t *m, tracked_t *t, DWORD msg, const char *source) {
  jw_event_t ev;
  char code[96];
  int killed = m->terminating && t->has_exit_code && t->exit_code == JW_TERMINATE_EXIT_CODE;
  int abnormal = (t->has_exit_code && jw_exit_classify(t->exit_code) == JW_EXIT_ABNORMAL) ||
                 msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS;

  if (t->has_exit_code)
    format_code(t->exit_code, code, sizeof(code));
  else
    snprintf(code, sizeof(code), "an unknown exit code");

  if (abnormal && !killed) {
    m->stats.abnormal_exits++;
    ev_init(&ev, JW_EVENT_VIOLATION, "abnormal_exit", "terminated",
            msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS ? "kernel" : "monitor", JW_SEV_HIGH);
    ev.source = source;
    if (msg)
      ev_job_message(&ev, msg);
    ev.has_process = 1;
    fill_process(t, &ev.process);
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) exited abnormally with %s", t->is_root ? "root" : "child",
             image_or_unknown(t), (unsigned long)t->pid, code);
    emit(m, &ev);
  }

  ev_init(&ev, JW_EVENT_PROCESS_EXIT, t->is_root ? "root_process" : "child_process",
          killed ? "killed_job" : "observed", "monitor", JW_SEV_INFO);
  ev.source = source;
  if (msg)
    ev_job_message(&ev, msg);
  ev.has_process = 1;
  fill_process(t, &ev.process);
  if (killed)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (%s)",
             t->is_root ? "root" : "child", image_or_unknown(t), (unsigned long)t->pid,
             m->terminate_reason ? m->terminate_reason : "job terminated");
  else
    snprintf(ev.message, sizeof(ev.message), "%s process %.300s (pid %lu) exited with %s",
             t->is_root ? "root" : "child", image_or_unknown(t), (unsigned long)t->pid, code);
  emit(m, &ev);
}

static void read_exit_code(tracked_t *t) {
  DWORD code;
  if (t->h != NULL && GetExitCodeProcess(t->h, &code) && code != STILL_ACTIVE) {
    t->has_exit_code = 1;
    t->exit_code = code;
  }
}

static void on_new_process(jw_monitor_t *m, DWORD pid) {
  tracked_t *t = find_proc(m, pid);
  jw_event_t ev;
  uint32_t limit = m->job->policy.active_processes, active;

  if (t != NULL && !t->exited)
    return; /* the root (announced by jw_monitor_set_root) or a repeat */
  t = add_proc(m, pid);
  if (t == NULL)
    return;
  enrich(t);
  active = active_count(m);

  ev_init(&ev, JW_EVENT_VIOLATION, "child_process", "allowed", "kernel", JW_SEV_LOW);
  ev_job_message(&ev, JOB_OBJECT_MSG_NEW_PROCESS);
  ev.has_process = 1;
  fill_process(t, &ev.process);
  if (limit != 0) {
    ev.has_limit = 1;
    ev.limit_name = "active_processes";
    ev.limit_unit = "processes";
    ev.limit_configured = limit;
    ev.has_limit_observed = 1;
    ev.limit_observed = active;
  }
  if (limit != 0 && active > limit) {
    /* The kernel should have refused this process (it does on Windows);
     * this kernel did not. The process exists: say so loudly. */
    ev.action = "not_enforced";
    ev.severity = JW_SEV_HIGH;
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started although the active-process "
             "limit is %lu (%lu active): the kernel did not enforce the limit",
             image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid, (unsigned long)limit,
             (unsigned long)active);
  } else {
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started; the policy allows it",
             image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid);
  }
  emit(m, &ev);
}

static void on_exit_process(jw_monitor_t *m, DWORD pid, DWORD msg) {
  tracked_t *t = find_proc(m, pid);
  if (t != NULL && t->exited)
    return; /* already reported */
  if (t == NULL) {
    /* An exit of a process whose start the port never announced: what can
     * still be read is read, and it is counted as seen. */
    t = add_proc(m, pid);
    if (t == NULL)
      return;
    enrich(t);
  }
  t->exited = 1;
  read_exit_code(t);
  report_exit(m, t, msg, "port");
}

/* Reports every tracked process the port did not report as exited. */
static void reconcile(jw_monitor_t *m) {
  size_t i;
  for (i = 0; i < m->n_procs; i++) {
    tracked_t *t = &m->procs[i];
    jw_event_t ev;
    if (t->exited)
      continue;
    if (t->h != NULL && WaitForSingleObject(t->h, 0) == WAIT_OBJECT_0) {
      t->exited = 1;
      read_exit_code(t);
      report_exit(m, t, 0, "reconciled");
      continue;
    }
    if (t->h == NULL)
      continue;
    /* Alive although the job says it is empty: it left the job. */
    if (WaitForSingleObject(t->h, 0) == WAIT_TIMEOUT) {
      BOOL in_job = TRUE;
      if (IsProcessInJob(t->h, m->job->job, &in_job) && !in_job) {
        ev_init(&ev, JW_EVENT_VIOLATION, "process_left_job", "observed", "monitor",
                JW_SEV_CRITICAL);
        ev.source = "reconciled";
        ev.has_process = 1;
        fill_process(t, &ev.process);
        snprintf(ev.message, sizeof(ev.message),
                 "process %.300s (pid %lu) is running outside the job", image_or_unknown(t),
                 (unsigned long)t->pid);
        t->exited = 1; /* no longer a member */
        emit(m, &ev);
      }
    }
  }
}

static void emit_job_end(jw_monitor_t *m, const char *source) {
  jw_event_t ev;
  json_t *summary;
  tracked_t *root = find_proc(m, m->root_pid);
  if (m->stats.job_end_emitted)
    return;
  m->stats.job_end_emitted = 1;
  ev_init(&ev, JW_EVENT_JOB_END, "job", m->terminating ? "killed_job" : "observed", "monitor",
          JW_SEV_INFO);
  ev.source = source;
  if (strcmp(source, "port") == 0)
    ev_job_message(&ev, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO);
  summary = json_object();
  if (summary != NULL) {
    json_object_set_new(summary, "processes", json_integer(m->stats.processes_seen));
    json_object_set_new(summary, "violations", json_integer(m->stats.violations));
    json_object_set_new(summary, "abnormal_exits", json_integer(m->stats.abnormal_exits));
    json_object_set_new(summary, "reconciled_events", json_integer(m->stats.reconciled));
    /* Lines some sink did not get so far (each also reported in that sink's
     * stream as a sandbox.telemetry_gap). */
    json_object_set_new(summary, "events_dropped",
                        json_integer((json_int_t)jw_emitter_dropped(m->em)));
    json_object_set_new(summary, "active_processes", json_integer(active_count(m)));
    json_object_set_new(summary, "terminated_by_jobwarden",
                        m->terminating && m->terminate_reason ? json_string(m->terminate_reason)
                                                              : json_null());
    if (root != NULL && root->has_exit_code)
      json_object_set_new(summary, "root_exit_code", json_integer(root->exit_code));
    else
      json_object_set_new(summary, "root_exit_code", json_null());
    ev.extra = json_pack("{s:o}", "summary", summary);
  }
  snprintf(ev.message, sizeof(ev.message),
           "job ended: %lu process(es), %lu violation(s), %lu abnormal exit(s)%s",
           (unsigned long)m->stats.processes_seen, (unsigned long)m->stats.violations,
           (unsigned long)m->stats.abnormal_exits,
           strcmp(source, "port") == 0 ? "" : " (the port never announced the end; reconciled)");
  emit(m, &ev);
}

static void on_active_zero(jw_monitor_t *m) {
  reconcile(m);
  emit_job_end(m, "port");
  SetEvent(m->done);
}

/* A limit message: the kernel enforced (or, for notifications, observed) a
 * limit of the policy. */
static void on_limit(jw_monitor_t *m, DWORD msg, DWORD pid, int has_pid, const char *rule,
                     const char *action, const char *unit, uint64_t configured, jw_severity_t sev,
                     const char *what) {
  jw_event_t ev;
  tracked_t *t = NULL;
  ev_init(&ev, JW_EVENT_VIOLATION, rule, action, "kernel", sev);
  ev_job_message(&ev, msg);
  ev.has_limit = 1;
  ev.limit_name = rule;
  ev.limit_unit = unit;
  ev.limit_configured = configured;
  if (has_pid) {
    t = find_proc(m, pid);
    if (t == NULL) {
      t = add_proc(m, pid);
      if (t != NULL)
        enrich(t);
    }
    if (t != NULL) {
      ev.has_process = 1;
      fill_process(t, &ev.process);
    }
    snprintf(ev.message, sizeof(ev.message), "%s: process %.300s (pid %lu)", what,
             t ? image_or_unknown(t) : "(unknown)", (unsigned long)pid);
  } else {
    snprintf(ev.message, sizeof(ev.message), "%s", what);
  }
  emit(m, &ev);
}

static void on_notice(jw_monitor_t *m, DWORD msg, ULONG_PTR value, const char *rule,
                      jw_severity_t sev, const char *text) {
  jw_event_t ev;
  ev_init(&ev, JW_EVENT_NOTICE, rule, "observed", "kernel", sev);
  ev_job_message(&ev, msg);
  ev.extra = json_pack("{s:{s:I}}", "error", "value", (json_int_t)value);
  snprintf(ev.message, sizeof(ev.message), "%s (message %lu, value %llu)", text, (unsigned long)msg,
           (unsigned long long)value);
  emit(m, &ev);
}

static void on_job_message(jw_monitor_t *m, DWORD msg, ULONG_PTR value) {
  const jw_policy_t *p = &m->job->policy;
  DWORD pid = (DWORD)value;
  switch (msg) {
  case JOB_OBJECT_MSG_NEW_PROCESS:
    on_new_process(m, pid);
    break;
  case JOB_OBJECT_MSG_EXIT_PROCESS:
  case JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS:
    on_exit_process(m, pid, msg);
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO:
    on_active_zero(m);
    break;
  case JOB_OBJECT_MSG_END_OF_JOB_TIME:
    on_limit(m, msg, 0, 0, "job_cpu_time", "killed_job", "ms", p->job_time_ms, JW_SEV_HIGH,
             "the job used up its CPU time limit; the kernel terminated every process in it");
    break;
  case JOB_OBJECT_MSG_END_OF_PROCESS_TIME:
    on_limit(m, msg, pid, 1, "process_cpu_time", "terminated", "ms", p->process_time_ms,
             JW_SEV_HIGH, "a process used up its CPU time limit; the kernel terminated it");
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT:
    on_limit(m, msg, 0, 0, "active_processes", "blocked", "processes", p->active_processes,
             JW_SEV_HIGH, "a process creation was refused: the active-process limit is reached");
    break;
  case JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT:
    on_limit(m, msg, pid, 1, "process_memory", "blocked", "bytes", p->process_memory, JW_SEV_HIGH,
             "a memory commit was refused: the per-process memory limit is reached");
    break;
  case JOB_OBJECT_MSG_JOB_MEMORY_LIMIT:
    on_limit(m, msg, pid, 1, "job_memory", "blocked", "bytes", p->job_memory, JW_SEV_HIGH,
             "a memory commit was refused: the job memory limit is reached");
    break;
  case JOB_OBJECT_MSG_NOTIFICATION_LIMIT:
    on_limit(m, msg, pid, 1, "notification_limit", "observed", "bytes", 0, JW_SEV_MEDIUM,
             "a notification limit was exceeded");
    break;
  case JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT:
    on_limit(m, msg, pid, 1, "job_cycle_time", "observed", "cycles", 0, JW_SEV_MEDIUM,
             "the job's CPU cycle time limit was exceeded");
    break;
  case JOB_OBJECT_MSG_SILO_TERMINATED:
    on_notice(m, msg, value, "silo_terminated", JW_SEV_MEDIUM, "the job's silo was terminated");
    break;
  default:
    on_notice(m, msg, value, "unknown_job_message", JW_SEV_MEDIUM,
              "the job's port delivered a message jobwarden does not know");
    break;
  }
}

static unsigned __stdcall monitor_main(void *arg) {
  jw_monitor_t *m = arg;
  OVERLAPPED_ENTRY ents[BATCH];
  int quit = 0;

  while (!quit) {
    ULONG n = 0, i;
    if (!GetQueuedCompletionStatusEx(m->job->port, ents, BATCH, &n, INFINITE, FALSE)) {
      jw_event_t ev;
      DWORD e = GetLastError();
      ev_init(&ev, JW_EVENT_NOTICE, "monitor_failed", "observed", "monitor", JW_SEV_CRITICAL);
      ev.source = "jobwarden";
      snprintf(ev.message, sizeof(ev.message),
               "the monitor cannot read the job's completion port (Win32 error %lu); "
               "no further job messages will be seen",
               (unsigned long)e);
      emit(m, &ev);
      break;
    }
    for (i = 0; i < n; i++) {
      ULONG_PTR key = ents[i].lpCompletionKey;
      ULONG_PTR value = (ULONG_PTR)ents[i].lpOverlapped;
      if (key == JW_KEY_CONTROL) {
        if (value == JW_CTRL_QUIT)
          quit = 1; /* the rest of this batch is still handled */
      } else if (key == JW_KEY_JOB && m->job->job != NULL) {
        on_job_message(m, ents[i].dwNumberOfBytesTransferred, value);
      } else {
        on_notice(m, ents[i].dwNumberOfBytesTransferred, value, "unknown_completion_key",
                  JW_SEV_MEDIUM, "a packet arrived under a completion key that names no job");
      }
    }
  }
  /* The port may never have said the job ended (its messages are not
   * guaranteed): reconcile and end the record anyway. */
  if (!m->stats.job_end_emitted) {
    reconcile(m);
    emit_job_end(m, "reconciled");
  }
  SetEvent(m->done);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Owner side                                                               */
/* ------------------------------------------------------------------------ */

int jw_monitor_start(jw_job_t *job, jw_emitter_t *em, jw_monitor_t **out, jw_error_t *err) {
  jw_monitor_t *m = calloc(1, sizeof(*m));
  *out = NULL;
  if (m == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "monitor", "out of memory");
  m->job = job;
  m->em = em;
  m->done = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (m->done == NULL) {
    DWORD e = GetLastError();
    free(m);
    return jw_error_set(err, JW_ESYS, e, "CreateEventW",
                        "cannot start the monitor: CreateEventW failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  m->thread = (HANDLE)_beginthreadex(NULL, 0, monitor_main, m, CREATE_SUSPENDED, NULL);
  if (m->thread == NULL) {
    DWORD e = GetLastError();
    CloseHandle(m->done);
    free(m);
    return jw_error_set(err, JW_ESYS, e, "_beginthreadex",
                        "cannot start the monitor thread (Win32 error %lu)", (unsigned long)e);
  }
  *out = m;
  return 0;
}

static int run_thread(jw_monitor_t *m) {
  if (m->thread_running)
    return 0;
  if (ResumeThread(m->thread) == (DWORD)-1)
    return JW_ESYS;
  m->thread_running = 1;
  return 0;
}

int jw_monitor_set_root(jw_monitor_t *m, const jw_child_t *root) {
  tracked_t *t;
  jw_event_t ev;
  if (m->thread_running)
    return JW_EINVAL;
  t = add_proc(m, root->pid);
  if (t == NULL)
    return JW_ENOMEM;
  t->is_root = 1;
  m->root_pid = root->pid;
  t->create_time = root->create_time;
  if (root->image != NULL)
    t->image = strdup(root->image);
  if (!DuplicateHandle(GetCurrentProcess(), root->process, GetCurrentProcess(), &t->h,
                       SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, 0))
    t->h = NULL;
  t->has_parent = 1;
  t->ppid = GetCurrentProcessId();

  ev_init(&ev, JW_EVENT_PROCESS_START, "root_process", "observed", "monitor", JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  fill_process(t, &ev.process);
  snprintf(ev.message, sizeof(ev.message),
           "root process %.300s (pid %lu) created inside the job (%s); it runs next",
           image_or_unknown(t), (unsigned long)t->pid, root->method ? root->method : "?");
  emit(m, &ev);
  return run_thread(m) == 0 ? 0 : JW_ESYS;
}

void jw_monitor_note_terminating(jw_monitor_t *m, const char *reason) {
  m->terminate_reason = reason;
  InterlockedExchange(&m->terminating, 1);
}

HANDLE jw_monitor_done_event(jw_monitor_t *m) {
  return m->done;
}

int jw_monitor_stop(jw_monitor_t *m, DWORD timeout_ms, jw_monitor_stats_t *stats) {
  size_t i;
  if (m == NULL)
    return 0;
  if (run_thread(m) != 0 || !PostQueuedCompletionStatus(m->job->port, 0, JW_KEY_CONTROL,
                                                        (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_QUIT))
    return JW_ESYS;
  if (WaitForSingleObject(m->thread, timeout_ms) != WAIT_OBJECT_0)
    return JW_ETIMEDOUT; /* left running; the process is about to exit */
  if (stats != NULL)
    *stats = m->stats;
  CloseHandle(m->thread);
  CloseHandle(m->done);
  for (i = 0; i < m->n_procs; i++) {
    if (m->procs[i].h != NULL)
      CloseHandle(m->procs[i].h);
    free(m->procs[i].image);
  }
  free(m->procs);
  free(m);
  return 0;
}

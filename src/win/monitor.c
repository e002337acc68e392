/* The monitor thread: drains the job's completion port and turns every
 * JOB_OBJECT_MSG_* packet into events. It never waits on an exporter's
 * reader (exporters write files and standard streams synchronously under
 * the emitter's lock) and sleeps only in GetQueuedCompletionStatusEx: every
 * 200 ms while members run (it then looks at them itself: reconciliation),
 * without a timeout once the job is empty.
 *
 * It also enforces the policy's monitor rules (docs/policy.md): the image
 * lists, the total-process cap and the active-process limit the kernel let
 * pass are checked at each NEW_PROCESS; the run's timeout is the timeout of
 * that same wait, so it costs no polling either. */
#include <limits.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

#define BATCH          64
#define OPEN_RETRIES   12
#define RETRY_SLEEP_MS 10

/* tracked_t, lost_t and struct jw_monitor_s: src/win/monitor_int.h. */

/* The outcome of a rule's action on one process (or the job). */
typedef struct outcome_s {
  int job_killed;        /* TerminateJobObject succeeded (now or earlier) */
  int proc_killed;       /* TerminateProcess succeeded */
  int proc_gone;         /* nothing to kill: the process had already exited */
  const char *err_where; /* the call that failed, or NULL */
  DWORD err;             /* its Win32 error */
} outcome_t;

/* One rule a new process breaks. */
typedef struct verdict_s {
  const char *rule;        /* "image_denied", "total_processes", ... (static) */
  jw_rule_action_t action; /* configured */
  int has_limit;
  const char *limit_name, *limit_unit;
  uint64_t configured, observed;
  const char *list;    /* "deny" / "allow" for the image rules, else NULL */
  const char *matched; /* the deny-list entry that matched (borrowed from the policy) */
} verdict_t;

static jw__query_image_fn query_image_hook;
static jw__drop_message_fn drop_hook;

void jw__monitor_image_hook(jw__query_image_fn fn) {
  query_image_hook = fn;
}

void jw__monitor_drop_hook(jw__drop_message_fn fn) {
  drop_hook = fn;
}

/* ------------------------------------------------------------------------ */
/* Process facts                                                            */
/* ------------------------------------------------------------------------ */

tracked_t *jw__mon_find_proc(jw_monitor_t *m, DWORD pid) {
  size_t i;
  /* Newest first: a reused pid belongs to the latest live entry. */
  for (i = m->n_procs; i-- > 0;)
    if (m->procs[i].pid == pid)
      return &m->procs[i];
  return NULL;
}

tracked_t *jw__mon_add_proc(jw_monitor_t *m, DWORD pid) {
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
  t->parent_idx = -1;
  t->start_source = "port";
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
  if (query_image_hook != NULL ? query_image_hook(h, 0, buf, &size)
                               : QueryFullProcessImageNameW(h, 0, buf, &size)) {
    if (jw_utf16_to_utf8((const uint16_t *)buf, size, JW_HOSTILE_MAX_UNITS, &out, len, truncated) !=
        0)
      *truncated = 0; /* no image: nothing to call truncated */
  } else {
    *e = GetLastError();
  }
  free(buf);
  return out;
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
/* PROCESS_TERMINATE: a monitor rule may have to kill it; QUERY_INFORMATION
 * and VM_READ: its command line is read from its memory where the system
 * has no query for it. Without those two (a protected process), the
 * limited rights still give the rest. */
#define TRACK_RIGHTS (SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_TERMINATE)
#define EXTRA_RIGHTS (PROCESS_QUERY_INFORMATION | PROCESS_VM_READ)

static HANDLE open_tracked(DWORD pid) {
  HANDLE h = OpenProcess(TRACK_RIGHTS | EXTRA_RIGHTS, FALSE, pid);
  if (h == NULL && GetLastError() == ERROR_ACCESS_DENIED)
    h = OpenProcess(TRACK_RIGHTS, FALSE, pid);
  return h;
}

/* The account name of a SID, through a small cache (a lookup can take a
 * domain round trip; the members of one job nearly always share a user).
 * The root's is looked up by jw_monitor_set_root on the owner's thread
 * before the monitor runs, so the monitor thread itself looks up only a
 * descendant running as another user. */
static const char *sid_name(jw_monitor_t *m, void *sid) {
  size_t i;
  char *name;
  for (i = 0; i < m->n_sids; i++)
    if (EqualSid((PSID)m->sids[i].sid, (PSID)sid)) {
      free(sid);
      return m->sids[i].name;
    }
  name = jw__sid_account_name(sid);
  if (m->n_sids == SID_CACHE) {
    free(sid);
    return NULL; /* not cached: the name is left out rather than leaked */
  }
  m->sids[m->n_sids].sid = sid;
  m->sids[m->n_sids].name = name;
  m->n_sids++;
  return name;
}

static BOOL get_memory(HANDLE h, jw__process_memory_fn fn, PROCESS_MEMORY_COUNTERS_EX *pmc) {
  memset(pmc, 0, sizeof(*pmc));
  pmc->cb = sizeof(*pmc);
  return fn != NULL ? fn(h, (PROCESS_MEMORY_COUNTERS *)pmc, sizeof(*pmc))
                    : GetProcessMemoryInfo(h, (PROCESS_MEMORY_COUNTERS *)pmc, sizeof(*pmc));
}

int jw__mon_memory_counters(const tracked_t *t, jw__process_memory_fn fn,
                            PROCESS_MEMORY_COUNTERS_EX *pmc, const char **where, DWORD *error) {
  HANDLE h;
  BOOL ok;
  if (t->h == NULL) {
    *where = "OpenProcess";
    *error = t->open_error;
    return -1;
  }
  if (get_memory(t->h, fn, pmc))
    return 0;
  *where = "GetProcessMemoryInfo";
  *error = GetLastError();
  if (*error != ERROR_ACCESS_DENIED)
    return -1;
  h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, FALSE, t->pid);
  if (h == NULL) {
    *where = "OpenProcess";
    *error = GetLastError();
    return -1;
  }
  ok = get_memory(h, fn, pmc);
  *error = ok ? 0 : GetLastError();
  CloseHandle(h);
  return ok ? 0 : -1;
}

static void sample_memory(tracked_t *t) {
  uint64_t v;
  if (t->h == NULL)
    return;
  v = jw__peak_working_set(t->h);
  if (v > t->peak_ws)
    t->peak_ws = v;
}

/* The parent inside the job: the newest earlier entry with the parent's
 * pid created no later than the child (an older holder of a reused pid
 * cannot be the parent of a younger process... the younger one can't). */
static void link_parent(jw_monitor_t *m, tracked_t *t) {
  /* An escape (src/win/monitor_escape.c) is kept outside the table: every
   * entry may be its parent. */
  uintptr_t at = (uintptr_t)t, base = (uintptr_t)m->procs;
  size_t idx = at >= base && at < base + m->n_procs * sizeof(*t) ? (size_t)(t - m->procs)
                                                                 : m->n_procs,
         j;
  if (!t->has_parent)
    return;
  if (t->is_root) {
    t->parent_create_time = t->ppid == GetCurrentProcessId() ? m->own_create_time : 0;
    return;
  }
  for (j = idx; j-- > 0;) {
    const tracked_t *p = &m->procs[j];
    if (p->pid == t->ppid &&
        (p->create_time == 0 || t->create_time == 0 || p->create_time <= t->create_time)) {
      t->parent_idx = (long)j;
      t->parent_create_time = p->create_time;
      return;
    }
  }
}

/* Command line, user and integrity, parent link, a first memory sample. A
 * just-created process may not answer the memory read yet (Wine: error 6
 * or 299 for a few milliseconds): a few short retries. */
static void enrich_more(jw_monitor_t *m, tracked_t *t) {
  int attempt;
  link_parent(m, t);
  if (t->h == NULL) {
    snprintf(t->cmdline_why, sizeof(t->cmdline_why), "the process could not be opened (error %lu)",
             (unsigned long)t->open_error);
    snprintf(t->user_why, sizeof(t->user_why), "the process could not be opened (error %lu)",
             (unsigned long)t->open_error);
    return;
  }
  for (attempt = 0; attempt < OPEN_RETRIES; attempt++) {
    int e;
    if (attempt > 0)
      Sleep(RETRY_SLEEP_MS);
    e = jw__proc_command_line(t->h, &t->cmdline, &t->cmdline_len, &t->cmdline_truncated,
                              t->cmdline_why, sizeof(t->cmdline_why));
    if (e == 0) {
      t->cmdline_why[0] = 0;
      break;
    }
    /* Only a process still being set up is worth another look; a refusal
     * (access denied: a protected process) will not change. */
    if ((e != ERROR_NOT_READY && e != ERROR_PARTIAL_COPY && e != ERROR_INVALID_HANDLE &&
         e != ERROR_NOACCESS) ||
        WaitForSingleObject(t->h, 0) == WAIT_OBJECT_0)
      break; /* or gone: its memory with it */
  }
  {
    void *sid = NULL;
    if (jw__proc_user(t->h, &t->user_sid, &sid, &t->integrity, t->user_why, sizeof(t->user_why)) ==
        0) {
      t->user_why[0] = 0;
      t->user_name = sid_name(m, sid);
    }
  }
  sample_memory(t);
}

void jw__mon_enrich(jw_monitor_t *m, tracked_t *t) {
  int attempt;
  for (attempt = 0; attempt < OPEN_RETRIES; attempt++) {
    DWORD e = 0;
    if (attempt > 0)
      Sleep(RETRY_SLEEP_MS);
    if (t->h == NULL)
      t->h = open_tracked(t->pid);
    if (t->h == NULL) {
      t->open_error = GetLastError();
      if (t->open_error == ERROR_INVALID_PARAMETER)
        return; /* no such process (any more) */
      continue;
    }
    t->open_error = 0;
    t->image = query_image(t->h, &e, &t->image_len, &t->image_truncated);
    t->image_error = e;
    if (t->image != NULL)
      break;
    if (e == ERROR_INVALID_HANDLE && attempt + 1 < OPEN_RETRIES) {
      CloseHandle(t->h);
      t->h = NULL;
    }
  }
  if (t->h != NULL) {
    t->has_parent = jw__proc_parent(t->h, &t->ppid);
    t->create_time = query_create_time(t->h);
  }
  enrich_more(m, t);
}

static void unavailable(jw_process_info_t *p, const char *field, const char *why) {
  if (why != NULL && why[0] != 0 && p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = field;
    p->unavailable[p->n_unavailable].reason = why;
    p->n_unavailable++;
  }
}

/* Everything known about t, for an event emitted before the next call (the
 * ancestry lives in the monitor's scratch array). */
void jw__mon_fill_process(jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p) {
  long idx;
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

  p->parent_create_time = t->parent_create_time;
  p->command_line = t->cmdline;
  p->command_line_len = t->cmdline_len;
  p->command_line_truncated = t->cmdline_truncated;
  p->user_sid = t->user_sid;
  p->user_name = t->user_name;
  p->integrity = t->integrity;
  p->ancestry = m->anc;
  for (idx = t->is_root ? -1 : t->parent_idx; idx >= 0;) {
    const tracked_t *a = &m->procs[idx];
    if (p->n_ancestry == JW_ANCESTRY_MAX) {
      p->ancestry_truncated = 1;
      break;
    }
    m->anc[p->n_ancestry].pid = a->pid;
    m->anc[p->n_ancestry].create_time = a->create_time;
    m->anc[p->n_ancestry].image = a->image;
    m->anc[p->n_ancestry].image_len = a->image_len;
    p->n_ancestry++;
    if (a->is_root)
      break;
    idx = a->parent_idx;
  }
  unavailable(p, "command_line", t->cmdline == NULL ? t->cmdline_why : NULL);
  unavailable(p, "user", t->user_sid == NULL ? t->user_why : NULL);
  if (t->exited && t->exit_read) {
    const jw__exit_facts_t *f = &t->xf;
    p->end_time = f->end_time;
    unavailable(p, "end", f->end_time == 0 ? f->end_why : NULL);
    p->has_cpu = f->has_cpu;
    p->cpu_user_100ns = f->cpu_user_100ns;
    p->cpu_kernel_100ns = f->cpu_kernel_100ns;
    unavailable(p, "cpu", f->has_cpu ? NULL : f->cpu_why);
    p->has_io = f->has_io;
    p->io_read_ops = f->io_read_ops;
    p->io_write_ops = f->io_write_ops;
    p->io_other_ops = f->io_other_ops;
    p->io_read_bytes = f->io_read_bytes;
    p->io_write_bytes = f->io_write_bytes;
    p->io_other_bytes = f->io_other_bytes;
    unavailable(p, "io", f->has_io ? NULL : f->io_why);
    if (f->peak_working_set != 0 && f->peak_working_set >= t->peak_ws) {
      p->has_peak_working_set = 1;
      p->peak_working_set = f->peak_working_set;
      p->peak_working_set_from = "exit";
    } else if (t->peak_ws != 0) {
      p->has_peak_working_set = 1;
      p->peak_working_set = t->peak_ws;
      p->peak_working_set_from = "samples";
    } else {
      unavailable(p, "peak_working_set",
                  f->memory_why[0] ? f->memory_why
                                   : "the system reported 0 and no value was read while it ran");
    }
  } else if (t->exited) {
    unavailable(p, "end", "no handle to the process: nothing could be read at its exit");
  }
}

/* Marks t exited and reads what its exit leaves: exit code, time, CPU,
 * memory, I/O. */
static void mark_exited(tracked_t *t) {
  DWORD code;
  t->exited = 1;
  if (t->h == NULL)
    return;
  if (GetExitCodeProcess(t->h, &code) && code != STILL_ACTIVE) {
    t->has_exit_code = 1;
    t->exit_code = code;
  }
  jw__proc_exit_facts(t->h, &t->xf);
  t->exit_read = 1;
}

const char *jw__mon_image_or_unknown(const tracked_t *t) {
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
void jw__mon_ev_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                     const char *enforcer, jw_severity_t sev) {
  jw_event_init(ev, kind, rule, action, enforcer, "port", sev);
}

void jw__mon_ev_job_message(jw_event_t *ev, DWORD msg) {
  ev->has_job_message = 1;
  ev->job_message = msg;
}

void jw__mon_emit(jw_monitor_t *m, jw_event_t *ev) {
  if (ev->kind == JW_EVENT_VIOLATION)
    m->stats.violations++;
  /* Events that stand in for lost messages (not the gap record itself). */
  if (ev->source != NULL && strcmp(ev->source, "reconciled") == 0 &&
      ev->kind != JW_EVENT_TELEMETRY_GAP)
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
  int ours = t->has_exit_code && t->exit_code == JW_TERMINATE_EXIT_CODE;
  /* A process a rule terminated on its own (kill_process) keeps that
   * cause even when the job is terminated afterwards. */
  int killed_proc = ours && t->killed_by != NULL;
  int killed = ours && (killed_proc || m->terminating);
  int abnormal = (t->has_exit_code && jw_exit_classify(t->exit_code) == JW_EXIT_ABNORMAL) ||
                 msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS;

  if (t->has_exit_code)
    format_code(t->exit_code, code, sizeof(code));
  else
    snprintf(code, sizeof(code), "an unknown exit code");

  if (abnormal && !killed) {
    m->stats.abnormal_exits++;
    jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "abnormal_exit", "terminated",
                    msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS ? "kernel" : "monitor",
                    JW_SEV_HIGH);
    ev.source = source;
    if (msg)
      jw__mon_ev_job_message(&ev, msg);
    ev.has_process = 1;
    jw__mon_fill_process(m, t, &ev.process);
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) exited abnormally with %s", t->is_root ? "root" : "child",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, code);
    jw__mon_emit(m, &ev);
  }

  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_EXIT, t->is_root ? "root_process" : "child_process",
                  killed_proc ? "terminated"
                  : killed    ? "killed_job"
                              : "observed",
                  "monitor", JW_SEV_INFO);
  ev.source = source;
  if (msg)
    jw__mon_ev_job_message(&ev, msg);
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  if (killed_proc && strcmp(t->killed_by, "member_control") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (control request `kill` "
             "from pid %lu)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             (unsigned long)t->kill_requester);
  else if (killed_proc)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (monitor rule %s, "
             "kill_process)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             t->killed_by);
  else if (killed)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (%s)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             m->terminate_reason ? m->terminate_reason : "job terminated");
  else
    snprintf(ev.message, sizeof(ev.message), "%s process %.300s (pid %lu) exited with %s",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             code);
  jw__mon_emit(m, &ev);
  /* Reported: its handle is let go, so that a long run with many
   * short-lived processes does not keep every one of them (and its pid)
   * alive in the kernel. What the events need was read at the exit. */
  if (t->h != NULL) {
    CloseHandle(t->h);
    t->h = NULL;
    t->released = 1;
  }
}

/* ------------------------------------------------------------------------ */
/* Monitor rules                                                            */
/* ------------------------------------------------------------------------ */

static jw_rule_action_t effective(jw_rule_action_t a, jw_rule_action_t def) {
  return a == JW_ACTION_DEFAULT ? def : a;
}

/* Whether `entry` (a policy name: no directory, at most 255 bytes) names
 * the file `base` (UTF-16, blen units): equal ignoring case the way NTFS
 * compares names (CompareStringOrdinal), or, for an entry without a dot,
 * equal to the file name without its extension ("cmd" matches cmd.exe). */
static int name_matches(const wchar_t *base, int blen, const char *entry) {
  wchar_t w[JW_IMAGE_NAME_MAX];
  int n, dot;
  n = MultiByteToWideChar(CP_UTF8, 0, entry, -1, w, JW_IMAGE_NAME_MAX);
  if (n <= 1)
    return 0; /* cannot happen for a checked entry */
  n--;        /* without the NUL */
  if (CompareStringOrdinal(base, blen, w, n, TRUE) == CSTR_EQUAL)
    return 1;
  if (strchr(entry, '.') != NULL)
    return 0;
  for (dot = blen - 1; dot > 0 && base[dot] != L'.'; dot--)
    ;
  return dot > 0 && CompareStringOrdinal(base, dot, w, n, TRUE) == CSTR_EQUAL;
}

/* The file name part of the image as UTF-16 (new malloc'd string, length
 * in *blen), NULL when the image is unknown, cut, or not convertible. */
static wchar_t *image_basename(const tracked_t *t, int *blen, int *start) {
  size_t len;
  int n, i;
  wchar_t *w;
  if (t->image == NULL || t->image_truncated)
    return NULL;
  len = t->image_len ? t->image_len : strlen(t->image);
  if (len == 0 || len > (size_t)INT_MAX / 2)
    return NULL;
  n = MultiByteToWideChar(CP_UTF8, 0, t->image, (int)len, NULL, 0);
  if (n <= 0)
    return NULL;
  w = malloc(((size_t)n + 1) * sizeof(*w));
  if (w == NULL)
    return NULL;
  if (MultiByteToWideChar(CP_UTF8, 0, t->image, (int)len, w, n) != n) {
    free(w);
    return NULL;
  }
  for (i = n; i > 0 && w[i - 1] != L'\\' && w[i - 1] != L'/'; i--)
    ;
  *start = i;
  *blen = n - i;
  return w;
}

/* The image lists. A process whose image cannot be read (or was cut) is
 * never let through: it breaks the rule image_unknown, with the lists'
 * action, so a list never fails open. */
static int check_images(jw_monitor_t *m, const tracked_t *t, verdict_t *v) {
  const jw_policy_t *p = &m->job->policy;
  wchar_t *w;
  int blen = 0, start = 0, i;
  if (p->n_deny_images == 0 && p->n_allow_images == 0)
    return 0;
  memset(v, 0, sizeof(*v));
  v->action = effective(p->image_action, JW_ACTION_KILL_PROCESS);
  w = image_basename(t, &blen, &start);
  if (w == NULL || blen == 0) {
    free(w);
    v->rule = "image_unknown";
    return 1;
  }
  for (i = 0; i < p->n_deny_images && i < JW_POLICY_MAX_IMAGES; i++) {
    if (name_matches(w + start, blen, p->deny_images[i])) {
      free(w);
      v->rule = "image_denied";
      v->list = "deny";
      v->matched = p->deny_images[i];
      return 1;
    }
  }
  if (p->n_allow_images > 0) {
    for (i = 0; i < p->n_allow_images && i < JW_POLICY_MAX_IMAGES; i++) {
      if (name_matches(w + start, blen, p->allow_images[i])) {
        free(w);
        return 0;
      }
    }
    free(w);
    v->rule = "image_not_allowed";
    v->list = "allow";
    return 1;
  }
  free(w);
  return 0;
}

/* TerminateJobObject for a rule. The root dies with the job, so the owner
 * learns which rule ended the run (set before the call: the owner may wake
 * as soon as the root is gone). A job jobwarden is already terminating
 * (Ctrl-C, an earlier rule) keeps its first reason. */
static void kill_job_for(jw_monitor_t *m, const char *rule, outcome_t *o) {
  int first = InterlockedCompareExchange(&m->terminating, 1, 0) == 0;
  if (first) {
    snprintf(m->kill_reason, sizeof(m->kill_reason), "monitor rule %s (kill_job)", rule);
    m->terminate_reason = m->kill_reason;
    m->rule_kill = rule;
    InterlockedExchange(&m->rule_kill_job, 1);
  }
  if (TerminateJobObject(m->job->job, JW_TERMINATE_EXIT_CODE)) {
    o->job_killed = 1;
    return;
  }
  o->err_where = "TerminateJobObject";
  o->err = GetLastError();
  if (first) {
    m->rule_kill = NULL;
    InterlockedExchange(&m->rule_kill_job, 0);
    m->terminate_reason = NULL;
    InterlockedExchange(&m->terminating, 0);
  }
}

int jw__mon_kill_job(jw_monitor_t *m, const char *rule, DWORD *err) {
  outcome_t o;
  memset(&o, 0, sizeof(o));
  kill_job_for(m, rule, &o);
  *err = o.err;
  return o.job_killed ? 0 : -1;
}

/* TerminateProcess on the handle the monitor holds (the pid cannot have
 * been reused while it is held). */
static void kill_process_for(jw_monitor_t *m, tracked_t *t, const char *rule, outcome_t *o) {
  DWORD e;
  if (t->h == NULL) {
    if (t->open_error == ERROR_INVALID_PARAMETER || t->open_error == 0) {
      o->proc_gone = 1; /* no such process any more */
    } else {
      o->err_where = "OpenProcess";
      o->err = t->open_error;
    }
    return;
  }
  t->killed_by = rule;
  if (t->is_root) {
    m->rule_kill = rule;
    MemoryBarrier();
  }
  if (TerminateProcess(t->h, JW_TERMINATE_EXIT_CODE)) {
    o->proc_killed = 1;
    return;
  }
  e = GetLastError();
  t->killed_by = NULL;
  if (t->is_root)
    m->rule_kill = NULL;
  if (WaitForSingleObject(t->h, 0) == WAIT_OBJECT_0) {
    o->proc_gone = 1;
  } else {
    o->err_where = "TerminateProcess";
    o->err = e;
  }
}

/* The `action` of an event for a rule whose configured action is `a`, and
 * a sentence saying what was done. */
static const char *outcome_action(jw_rule_action_t a, const outcome_t *o, char *say, size_t n) {
  if (a == JW_ACTION_REPORT) {
    snprintf(say, n, "reported only (action report)");
    return "observed";
  }
  if (a == JW_ACTION_KILL_JOB ? o->job_killed : (o->proc_killed || o->job_killed)) {
    snprintf(say, n, "%s",
             a == JW_ACTION_KILL_JOB ? "jobwarden terminated the job"
                                     : "jobwarden terminated the process");
    return a == JW_ACTION_KILL_JOB ? "killed_job" : "terminated";
  }
  if (a == JW_ACTION_KILL_PROCESS && o->proc_gone) {
    snprintf(say, n, "the process had already exited, nothing to terminate");
    return "observed";
  }
  snprintf(say, n, "%s failed (Win32 error %lu): NOT enforced, it may still run",
           o->err_where ? o->err_where : "the action", (unsigned long)o->err);
  return "not_enforced";
}

/* The extension objects of a rule's event: "enforcement" (what the policy
 * asked and, for the lists, which entry matched) and "error" when the
 * action failed or the image could not be read. New reference or NULL. */
static json_t *rule_extra(const verdict_t *v, const outcome_t *o, const tracked_t *t) {
  json_t *x = json_object(), *enf = json_object();
  if (x == NULL || enf == NULL) {
    json_decref(x);
    json_decref(enf);
    return NULL;
  }
  json_object_set_new(enf, "configured_action", json_string(jw_rule_action_name(v->action)));
  if (v->list != NULL)
    json_object_set_new(enf, "list", json_string(v->list));
  if (v->matched != NULL)
    json_object_set_new(enf, "matched", json_string(v->matched));
  json_object_set_new(x, "enforcement", enf);
  if (o != NULL && o->err_where != NULL && v->action != JW_ACTION_REPORT)
    json_object_set_new(x, "error",
                        json_pack("{s:s,s:s,s:I}", "where", o->err_where, "code", "JW_ESYS",
                                  "win32_error", (json_int_t)o->err));
  else if (t != NULL && strcmp(v->rule, "image_unknown") == 0)
    json_object_set_new(x, "error",
                        json_pack("{s:s,s:s,s:I}", "where",
                                  t->h == NULL ? "OpenProcess" : "QueryFullProcessImageNameW",
                                  "code", "JW_ESYS", "win32_error",
                                  (json_int_t)(t->h == NULL ? t->open_error : t->image_error)));
  return x;
}

/* The event of one broken rule at a NEW_PROCESS. */
static void emit_verdict(jw_monitor_t *m, const tracked_t *t, const verdict_t *v,
                         const outcome_t *o) {
  jw_event_t ev;
  char say[160];
  const char *action = outcome_action(v->action, o, say, sizeof(say));
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, v->rule, action, "monitor", JW_SEV_HIGH);
  jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NEW_PROCESS);
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  if (v->has_limit) {
    ev.has_limit = 1;
    ev.limit_name = v->limit_name;
    ev.limit_unit = v->limit_unit;
    ev.limit_configured = v->configured;
    ev.has_limit_observed = 1;
    ev.limit_observed = v->observed;
  }
  if (strcmp(v->rule, "image_denied") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu) runs an image the deny list names (\"%.60s\"): %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, v->matched, say);
  else if (strcmp(v->rule, "image_not_allowed") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu) runs an image that is not on the allow list: %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, say);
  else if (strcmp(v->rule, "image_unknown") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "the image of child process pid %lu (parent %lu) could not be read (Win32 error "
             "%lu), so it cannot be checked against the image lists: %s",
             (unsigned long)t->pid, (unsigned long)t->ppid,
             (unsigned long)(t->h == NULL ? t->open_error : t->image_error), say);
  else if (strcmp(v->rule, "total_processes") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu) is process %llu of the job, over the cap of %llu "
             "processes in its lifetime: %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, (unsigned long long)v->observed,
             (unsigned long long)v->configured, say);
  else
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu) makes %llu active processes, over the limit of %llu "
             "that the kernel did not enforce: %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, (unsigned long long)v->observed,
             (unsigned long long)v->configured, say);
  ev.extra = rule_extra(v, o, t);
  jw__mon_emit(m, &ev);
}

/* The kernel's own count of active processes, or `fallback` when it
 * cannot be read. */
static uint32_t kernel_active(jw_monitor_t *m, uint32_t fallback) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  if (!QueryInformationJobObject(m->job->job, JobObjectBasicAccountingInformation, &acc,
                                 sizeof(acc), NULL))
    return fallback;
  return acc.ActiveProcesses;
}

/* The run's timeout: the deadline of the port wait has passed. */
static void on_timeout(jw_monitor_t *m) {
  const jw_policy_t *p = &m->job->policy;
  tracked_t *root = jw__mon_find_proc(m, m->root_pid);
  jw_rule_action_t a = effective(p->timeout_action, JW_ACTION_KILL_JOB);
  uint64_t elapsed = GetTickCount64() - m->start_tick;
  outcome_t o;
  verdict_t v;
  jw_event_t ev;
  char say[160];
  const char *action;

  m->deadline_tick = 0; /* once */
  memset(&o, 0, sizeof(o));
  if (a == JW_ACTION_KILL_JOB) {
    kill_job_for(m, "timeout", &o);
  } else if (a == JW_ACTION_KILL_PROCESS) {
    if (root != NULL && !root->exited)
      kill_process_for(m, root, "timeout", &o);
    else
      o.proc_gone = 1;
  }
  action = outcome_action(a, &o, say, sizeof(say));
  memset(&v, 0, sizeof(v));
  v.rule = "timeout";
  v.action = a;
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "timeout", action, "monitor", JW_SEV_HIGH);
  ev.source = "jobwarden";
  ev.has_limit = 1;
  ev.limit_name = "timeout";
  ev.limit_unit = "ms";
  ev.limit_configured = p->timeout_ms;
  ev.has_limit_observed = 1;
  ev.limit_observed = elapsed;
  if (root != NULL) {
    ev.has_process = 1;
    jw__mon_fill_process(m, root, &ev.process);
  }
  snprintf(ev.message, sizeof(ev.message),
           "the run exceeded its timeout of %llu ms (%llu ms since the root process started): "
           "%s%s",
           (unsigned long long)p->timeout_ms, (unsigned long long)elapsed, say,
           a == JW_ACTION_KILL_PROCESS && o.proc_killed ? " (the root)" : "");
  ev.extra = rule_extra(&v, &o, NULL);
  jw__mon_emit(m, &ev);
}

void jw__mon_on_new_process(jw_monitor_t *m, DWORD pid) {
  const jw_policy_t *p = &m->job->policy;
  tracked_t *t = jw__mon_find_proc(m, pid);
  jw_event_t ev;
  uint32_t limit = p->active_processes, active;
  verdict_t verdicts[3];
  int n = 0, i, over, decider = -1;
  outcome_t o;

  if (t != NULL && !t->exited)
    return; /* the root (announced by jw_monitor_set_root) or a repeat */
  t = jw__mon_add_proc(m, pid);
  if (t == NULL)
    return;
  jw__mon_enrich(m, t);
  active = active_count(m);
  /* The monitor's count can run ahead of the kernel's when an exit is still
   * queued behind this message: the kernel's count confirms it. */
  over = limit != 0 && active > limit && kernel_active(m, active) > limit;

  /* The rules this process breaks, and the strongest action among them. */
  if (check_images(m, t, &verdicts[n]))
    n++;
  if (p->max_total_processes != 0 && m->stats.processes_seen > p->max_total_processes) {
    verdict_t *v = &verdicts[n++];
    memset(v, 0, sizeof(*v));
    v->rule = "total_processes";
    v->action = effective(p->total_processes_action, JW_ACTION_KILL_PROCESS);
    v->has_limit = 1;
    v->limit_name = "total_processes";
    v->limit_unit = "processes";
    v->configured = p->max_total_processes;
    v->observed = m->stats.processes_seen;
  }
  /* The kernel should have refused this process (it does on Windows, and
   * then no NEW_PROCESS arrives); this kernel did not. Its report is the
   * child_process event below (not_enforced); any other action is the
   * monitor's. */
  if (over && effective(p->active_processes_action, JW_ACTION_REPORT) != JW_ACTION_REPORT) {
    verdict_t *v = &verdicts[n++];
    memset(v, 0, sizeof(*v));
    v->rule = "active_processes";
    v->action = p->active_processes_action;
    v->has_limit = 1;
    v->limit_name = "active_processes";
    v->limit_unit = "processes";
    v->configured = limit;
    v->observed = active;
  }
  /* The first rule with the strongest action decides what is done. */
  for (i = 0; i < n; i++)
    if (decider < 0 || verdicts[i].action > verdicts[decider].action)
      decider = i;

  /* Act first (the process is running), report after. */
  memset(&o, 0, sizeof(o));
  if (decider >= 0 && verdicts[decider].action == JW_ACTION_KILL_JOB)
    kill_job_for(m, verdicts[decider].rule, &o);
  else if (decider >= 0 && verdicts[decider].action == JW_ACTION_KILL_PROCESS)
    kill_process_for(m, t, verdicts[decider].rule, &o);

  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "child_process", "allowed", "kernel", JW_SEV_LOW);
  jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NEW_PROCESS);
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  if (limit != 0) {
    ev.has_limit = 1;
    ev.limit_name = "active_processes";
    ev.limit_unit = "processes";
    ev.limit_configured = limit;
    ev.has_limit_observed = 1;
    ev.limit_observed = active;
  }
  if (over) {
    ev.action = "not_enforced";
    ev.severity = JW_SEV_HIGH;
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started although the active-process "
             "limit is %lu (%lu active): the kernel did not enforce the limit",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid,
             (unsigned long)limit, (unsigned long)active);
  } else if (n > 0) {
    /* The policy does not allow it: the rule's own event follows. */
    ev.action = "observed";
    ev.severity = JW_SEV_MEDIUM;
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started; it breaks the monitor rule %s "
             "(next event)",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid,
             verdicts[0].rule);
  } else {
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started; the policy allows it",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid);
  }
  jw__mon_emit(m, &ev);
  for (i = 0; i < n; i++)
    emit_verdict(m, t, &verdicts[i], &o);
}

static void on_exit_process(jw_monitor_t *m, DWORD pid, DWORD msg) {
  tracked_t *t = jw__mon_find_proc(m, pid);
  if (t != NULL && t->exited)
    return; /* already reported */
  if (t == NULL) {
    /* An exit of a process whose start the port never announced: what can
     * still be read is read, and it is counted as seen. */
    t = jw__mon_add_proc(m, pid);
    if (t == NULL)
      return;
    jw__mon_enrich(m, t);
  }
  mark_exited(t);
  report_exit(m, t, msg, "port");
}

/* ------------------------------------------------------------------------ */
/* Reconciliation: what the port did not say                                */
/* ------------------------------------------------------------------------ */

static void note_lost(jw_monitor_t *m, const char *message, const tracked_t *t, DWORD pid,
                      const char *by, uint64_t count) {
  m->lost_total += count;
  if (m->n_lost < LOST_MAX) {
    lost_t *l = &m->lost[m->n_lost++];
    l->message = message;
    l->pid = t != NULL ? t->pid : pid;
    l->create_time = t != NULL ? t->create_time : 0;
    l->detected_by = by;
    l->count = count;
  }
}

/* One sandbox.telemetry_gap record for the messages gathered by note_lost
 * since the last one (none: nothing). */
static void emit_port_gap(jw_monitor_t *m, const JOBOBJECT_BASIC_ACCOUNTING_INFORMATION *acc,
                          uint64_t announced) {
  jw_event_t ev;
  json_t *gap, *lost;
  size_t i;
  char eid[48];
  if (m->lost_total == 0)
    return;
  jw__mon_ev_init(&ev, JW_EVENT_TELEMETRY_GAP, "telemetry_gap", "lost", "monitor", JW_SEV_MEDIUM);
  ev.source = "reconciled";
  gap = json_object();
  lost = json_array();
  if (gap != NULL && lost != NULL) {
    json_object_set_new(gap, "count", json_integer((json_int_t)m->lost_total));
    json_object_set_new(gap, "reason", json_string("port_message_lost"));
    for (i = 0; i < m->n_lost; i++) {
      const lost_t *l = &m->lost[i];
      json_t *e = json_pack("{s:s}", "message", l->message);
      if (e == NULL)
        continue;
      if (l->pid != 0)
        json_object_set_new(e, "pid", json_integer(l->pid));
      if (l->create_time != 0) {
        jw_format_entity_id(l->pid, l->create_time, eid, sizeof(eid));
        json_object_set_new(e, "entity_id", json_string(eid));
      }
      json_object_set_new(e, "detected_by", json_string(l->detected_by));
      if (l->count > 1 || strcmp(l->detected_by, "accounting") == 0)
        json_object_set_new(e, "count", json_integer((json_int_t)l->count));
      json_array_append_new(lost, e);
    }
    json_object_set_new(gap, "lost", lost);
    lost = NULL;
    if (m->lost_total > m->n_lost && m->n_lost == LOST_MAX)
      json_object_set_new(gap, "lost_truncated", json_true());
    if (acc != NULL)
      json_object_set_new(gap, "accounting",
                          json_pack("{s:I,s:I}", "total_processes", (json_int_t)acc->TotalProcesses,
                                    "announced", (json_int_t)announced));
    ev.extra = json_pack("{s:o}", "gap", gap);
    gap = NULL;
  }
  json_decref(gap);
  json_decref(lost);
  snprintf(ev.message, sizeof(ev.message),
           "the job's completion port did not deliver %llu message(s); the events that replace "
           "them carry source \"reconciled\"",
           (unsigned long long)m->lost_total);
  m->n_lost = 0;
  m->lost_total = 0;
  jw__mon_emit(m, &ev);
}

static int was_pending(const jw_monitor_t *m, DWORD pid) {
  size_t i;
  for (i = 0; i < m->n_pending; i++)
    if (m->pending[i] == pid)
      return 1;
  return 0;
}

/* A member the port never announced, found in the job's process id list
 * at two polls in a row: tracked from now on, and reported as it would
 * have been (rule child_process), with source reconciled. */
static void reconciled_start(jw_monitor_t *m, DWORD pid) {
  tracked_t *t = jw__mon_add_proc(m, pid);
  jw_event_t ev;
  if (t == NULL)
    return;
  t->start_source = "reconciled";
  jw__mon_enrich(m, t);
  note_lost(m, "JOB_OBJECT_MSG_NEW_PROCESS", t, pid, "process_id_list", 1);
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "child_process", "allowed", "kernel", JW_SEV_LOW);
  ev.source = "reconciled";
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  snprintf(ev.message, sizeof(ev.message),
           "child process %.300s (pid %lu, parent %lu) is in the job although the port never "
           "announced it",
           jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid);
  jw__mon_emit(m, &ev);
}

/* Whether the process now holding t's pid is t's own (same creation
 * time); when it cannot be opened, it is taken to be (nothing new to
 * report). */
int jw__mon_same_process(const tracked_t *t) {
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, t->pid);
  FILETIME ct, xt, kt, ut;
  int same = 1;
  if (h == NULL)
    return 1;
  if (t->create_time != 0 && GetProcessTimes(h, &ct, &xt, &kt, &ut))
    same = (((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime) == t->create_time;
  CloseHandle(h);
  return same;
}

/* The job's members by its process id list; NULL with *n 0 on failure.
 * m->idlist holds the raw answer (header + ULONG_PTR ids); the ids are
 * returned in m->pids. */
const DWORD *jw__mon_job_pids(jw_monitor_t *m, size_t *n) {
  *n = 0;
  for (;;) {
    size_t cap = m->idlist_cap ? m->idlist_cap : 64;
    size_t bytes = sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + cap * sizeof(ULONG_PTR);
    JOBOBJECT_BASIC_PROCESS_ID_LIST *l;
    size_t i;
    if (m->idlist == NULL) {
      m->idlist = malloc(bytes);
      m->pids = malloc(cap * sizeof(DWORD));
      if (m->idlist == NULL || m->pids == NULL)
        return NULL;
      m->idlist_cap = cap;
    }
    l = (JOBOBJECT_BASIC_PROCESS_ID_LIST *)m->idlist;
    memset(l, 0, sizeof(*l));
    if (!QueryInformationJobObject(m->job->job, JobObjectBasicProcessIdList, l, (DWORD)bytes,
                                   NULL) &&
        GetLastError() != ERROR_MORE_DATA)
      return NULL;
    if (l->NumberOfAssignedProcesses > l->NumberOfProcessIdsInList &&
        l->NumberOfAssignedProcesses < 65536 && cap < l->NumberOfAssignedProcesses + 16u) {
      size_t want = l->NumberOfAssignedProcesses + 16u;
      void *raw =
          realloc(m->idlist, sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + want * sizeof(ULONG_PTR));
      DWORD *ids;
      if (raw == NULL)
        return NULL;
      m->idlist = raw;
      ids = realloc(m->pids, want * sizeof(DWORD));
      if (ids == NULL)
        return NULL;
      m->pids = ids;
      m->idlist_cap = want;
      continue;
    }
    for (i = 0; i < l->NumberOfProcessIdsInList && i < cap; i++)
      m->pids[i] = (DWORD)l->ProcessIdList[i];
    *n = i;
    return m->pids;
  }
}

/* Every POLL_MS while members run: exits whose message did not come
 * (handle signaled for EXIT_GRACE_MS), members whose start message did
 * not come (in the job's list at two polls in a row), memory samples. */
static void poll_members(jw_monitor_t *m) {
  ULONGLONG now = GetTickCount64();
  size_t i, n = 0, n_pending = 0;
  const DWORD *pids;
  DWORD next[PENDING_MAX];

  m->last_poll = now;
  for (i = 0; i < m->n_procs; i++) {
    tracked_t *t = &m->procs[i];
    if (t->exited || t->h == NULL)
      continue;
    if (WaitForSingleObject(t->h, 0) != WAIT_OBJECT_0) {
      sample_memory(t);
      continue;
    }
    if (t->signaled_tick == 0) {
      t->signaled_tick = now;
      continue;
    }
    if (now - t->signaled_tick < EXIT_GRACE_MS)
      continue;
    mark_exited(t);
    note_lost(m, "JOB_OBJECT_MSG_EXIT_PROCESS", t, 0, "process_handle", 1);
    report_exit(m, t, 0, "reconciled");
  }
  pids = jw__mon_job_pids(m, &n);
  for (i = 0; pids != NULL && i < n; i++) {
    tracked_t *t = jw__mon_find_proc(m, pids[i]);
    /* A pid the monitor holds a handle to is that process (running, or
     * exited and still listed while handles to it are open). One whose
     * exit was reported and handle let go is that process still if it was
     * created at the same time (someone else keeps it listed); otherwise
     * the pid was reused by a process the port did not announce. */
    if (t != NULL && !(t->released && !jw__mon_same_process(t)))
      continue;
    if (was_pending(m, pids[i]))
      reconciled_start(m, pids[i]);
    else if (n_pending < PENDING_MAX)
      next[n_pending++] = pids[i];
  }
  memcpy(m->pending, next, n_pending * sizeof(DWORD));
  m->n_pending = n_pending;
  emit_port_gap(m, NULL, 0);
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
      mark_exited(t);
      note_lost(m, "JOB_OBJECT_MSG_EXIT_PROCESS", t, 0, "process_handle", 1);
      report_exit(m, t, 0, "reconciled");
      continue;
    }
    if (t->h == NULL)
      continue;
    /* Alive although the job says it is empty: it left the job. */
    if (WaitForSingleObject(t->h, 0) == WAIT_TIMEOUT) {
      BOOL in_job = TRUE;
      if (IsProcessInJob(t->h, m->job->job, &in_job) && !in_job) {
        jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "process_left_job", "observed", "monitor",
                        JW_SEV_CRITICAL);
        ev.source = "reconciled";
        ev.has_process = 1;
        jw__mon_fill_process(m, t, &ev.process);
        snprintf(ev.message, sizeof(ev.message),
                 "process %.300s (pid %lu) is running outside the job", jw__mon_image_or_unknown(t),
                 (unsigned long)t->pid);
        t->exited = 1; /* no longer a member */
        jw__mon_emit(m, &ev);
      }
    }
  }
  /* The kernel's count of every process ever in the job against the
   * processes the monitor knows: starts that were never announced and never
   * seen in the process id list (they came and went between polls). */
  {
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
    memset(&acc, 0, sizeof(acc));
    if (!m->accounting_checked &&
        QueryInformationJobObject(m->job->job, JobObjectBasicAccountingInformation, &acc,
                                  sizeof(acc), NULL)) {
      m->accounting_checked = 1;
      if (acc.TotalProcesses > m->n_procs) {
        note_lost(m, "JOB_OBJECT_MSG_NEW_PROCESS", NULL, 0, "accounting",
                  acc.TotalProcesses - m->n_procs);
        emit_port_gap(m, &acc, m->n_procs);
        return;
      }
    }
  }
  emit_port_gap(m, NULL, 0);
}

/* The process tree of the run for the job-end summary: every process seen,
 * in the order seen, at most TREE_MAX. */
static json_t *process_tree(jw_monitor_t *m) {
  json_t *a = json_array();
  size_t i;
  char buf[48];
  if (a == NULL)
    return NULL;
  for (i = 0; i < m->n_procs && i < TREE_MAX; i++) {
    const tracked_t *t = &m->procs[i];
    json_t *e = json_object(), *parent = json_null();
    if (e == NULL || json_array_append_new(a, e) != 0)
      break;
    json_object_set_new(e, "pid", json_integer(t->pid));
    if (t->create_time != 0) {
      jw_format_entity_id(t->pid, t->create_time, buf, sizeof(buf));
      json_object_set_new(e, "entity_id", json_string(buf));
    }
    if (t->has_parent) {
      parent = json_pack("{s:I}", "pid", (json_int_t)t->ppid);
      if (parent != NULL && t->parent_create_time != 0) {
        jw_format_entity_id(t->ppid, t->parent_create_time, buf, sizeof(buf));
        json_object_set_new(parent, "entity_id", json_string(buf));
      }
    }
    json_object_set_new(e, "parent", parent ? parent : json_null());
    /* The image through the event renderer's own rules (counted,
     * sanitized), cut like an ancestor's: the tree lists every process. */
    jw__json_put_cut(e, "executable", t->image, t->image_len, TREE_IMAGE_MAX);
    if (jw__filetime_iso(t->create_time, buf, sizeof(buf)))
      json_object_set_new(e, "start", json_string(buf));
    json_object_set_new(e, "end",
                        t->exit_read && jw__filetime_iso(t->xf.end_time, buf, sizeof(buf))
                            ? json_string(buf)
                            : json_null());
    json_object_set_new(e, "exit_code",
                        t->has_exit_code ? json_integer(t->exit_code) : json_null());
    json_object_set_new(e, "start_source", json_string(t->start_source));
  }
  return a;
}

static void emit_job_end(jw_monitor_t *m, const char *source) {
  jw_event_t ev;
  json_t *summary;
  tracked_t *root = jw__mon_find_proc(m, m->root_pid);
  if (m->stats.job_end_emitted)
    return;
  m->stats.job_end_emitted = 1;
  m->deadline_tick = 0; /* the run is over: a timeout can no longer apply */
  jw__mon_ev_init(&ev, JW_EVENT_JOB_END, "job", m->terminating ? "killed_job" : "observed",
                  "monitor", JW_SEV_INFO);
  ev.source = source;
  if (strcmp(source, "port") == 0)
    jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO);
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
    json_object_set_new(summary, "process_tree", process_tree(m));
    if (m->n_procs > TREE_MAX)
      json_object_set_new(summary, "process_tree_omitted",
                          json_integer((json_int_t)(m->n_procs - TREE_MAX)));
    ev.extra = json_pack("{s:o}", "summary", summary);
  }
  snprintf(ev.message, sizeof(ev.message),
           "job ended: %lu process(es), %lu violation(s), %lu abnormal exit(s)%s",
           (unsigned long)m->stats.processes_seen, (unsigned long)m->stats.violations,
           (unsigned long)m->stats.abnormal_exits,
           strcmp(source, "port") == 0 ? "" : " (the port never announced the end; reconciled)");
  jw__mon_emit(m, &ev);
}

static void on_active_zero(jw_monitor_t *m) {
  jw__mon_escape_job_end(m);
  reconcile(m);
  emit_job_end(m, "port");
  SetEvent(m->done);
}

static void on_notice(jw_monitor_t *m, DWORD msg, ULONG_PTR value, const char *rule,
                      jw_severity_t sev, const char *text) {
  jw_event_t ev;
  jw__mon_ev_init(&ev, JW_EVENT_NOTICE, rule, "observed", "kernel", sev);
  jw__mon_ev_job_message(&ev, msg);
  ev.extra = json_pack("{s:{s:I}}", "error", "value", (json_int_t)value);
  snprintf(ev.message, sizeof(ev.message), "%s (message %lu, value %llu)", text, (unsigned long)msg,
           (unsigned long long)value);
  jw__mon_emit(m, &ev);
}

static void on_job_message(jw_monitor_t *m, DWORD msg, ULONG_PTR value) {
  const jw_policy_t *p = &m->job->policy;
  DWORD pid = (DWORD)value;
  jw__mon_escape_note(m, msg, pid);
  switch (msg) {
  case JOB_OBJECT_MSG_NEW_PROCESS:
    jw__mon_on_new_process(m, pid);
    break;
  case JOB_OBJECT_MSG_EXIT_PROCESS:
  case JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS:
    on_exit_process(m, pid, msg);
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO:
    on_active_zero(m);
    break;
  case JOB_OBJECT_MSG_END_OF_JOB_TIME:
    jw__mon_on_limit(
        m, msg, 0, 0, "job_cpu_time", "killed_job", "ms", p->job_time_ms, JW_SEV_HIGH,
        "the job used up its CPU time limit; the kernel terminated every process in it");
    break;
  case JOB_OBJECT_MSG_END_OF_PROCESS_TIME:
    jw__mon_on_limit(m, msg, pid, 1, "process_cpu_time", "terminated", "ms", p->process_time_ms,
                     JW_SEV_HIGH, "a process used up its CPU time limit; the kernel terminated it");
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT:
    jw__mon_on_limit(m, msg, 0, 0, "active_processes", "blocked", "processes", p->active_processes,
                     JW_SEV_HIGH,
                     "a process creation was refused: the active-process limit is reached");
    break;
  case JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "process_memory", "blocked", "bytes", p->process_memory,
                     JW_SEV_HIGH,
                     "a memory commit was refused: the per-process memory limit is reached");
    break;
  case JOB_OBJECT_MSG_JOB_MEMORY_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "job_memory", "blocked", "bytes", p->job_memory, JW_SEV_HIGH,
                     "a memory commit was refused: the job memory limit is reached");
    break;
  case JOB_OBJECT_MSG_NOTIFICATION_LIMIT:
    jw__mon_on_notification(m, pid);
    break;
  case JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT:
    jw__mon_on_limit(m, msg, pid, 1, "job_cycle_time", "observed", "cycles", 0, JW_SEV_MEDIUM,
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
  int quit = 0, busy = 0;

  while (!quit) {
    ULONG n = 0, i;
    DWORD wait = INFINITE;
    /* The timeout is the wait's own: the thread sleeps until a packet or
     * the deadline, whichever comes first. */
    ULONGLONG now = GetTickCount64();
    if (m->deadline_tick != 0) {
      if (now >= m->deadline_tick) {
        on_timeout(m);
        continue;
      }
      wait = m->deadline_tick - now >= INFINITE ? INFINITE - 1 : (DWORD)(m->deadline_tick - now);
    }
    /* While members run, the monitor also looks at them itself, every
     * POLL_MS (also when packets keep coming). */
    if (!m->stats.job_end_emitted && active_count(m) > 0) {
      /* Not while the port still has a full batch waiting: the messages
       * are flowing, and the queues behind are full of them. */
      if (!busy && now - m->last_poll >= POLL_MS) {
        poll_members(m);
        now = GetTickCount64();
      }
      if (wait > POLL_MS)
        wait = POLL_MS;
    }
    jw__mon_escape_tick(m, &wait);
    if (!GetQueuedCompletionStatusEx(m->job->port, ents, BATCH, &n, wait, FALSE)) {
      jw_event_t ev;
      DWORD e = GetLastError();
      if (wait != INFINITE && (e == WAIT_TIMEOUT || e == ERROR_TIMEOUT))
        continue; /* the deadline or the poll, checked at the top */
      jw__mon_ev_init(&ev, JW_EVENT_NOTICE, "monitor_failed", "observed", "monitor",
                      JW_SEV_CRITICAL);
      ev.source = "jobwarden";
      snprintf(ev.message, sizeof(ev.message),
               "the monitor cannot read the job's completion port (Win32 error %lu); "
               "no further job messages will be seen",
               (unsigned long)e);
      jw__mon_emit(m, &ev);
      break;
    }
    busy = n == BATCH;
    for (i = 0; i < n; i++) {
      ULONG_PTR key = ents[i].lpCompletionKey;
      ULONG_PTR value = (ULONG_PTR)ents[i].lpOverlapped;
      if (key == JW_KEY_CONTROL) {
        if (value == JW_CTRL_QUIT)
          quit = 1; /* the rest of this batch is still handled */
        else if (value == JW_CTRL_REQUEST)
          jw__mon_on_control_packet(m, ents[i].dwNumberOfBytesTransferred);
      } else if (key == JW_KEY_JOB && m->job->job != NULL) {
        if (drop_hook != NULL && drop_hook(ents[i].dwNumberOfBytesTransferred, value))
          continue; /* a test makes the port lose this message */
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
    jw__mon_escape_job_end(m);
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
  m->ctl_answered = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (m->done == NULL || m->ctl_answered == NULL) {
    DWORD e = GetLastError();
    if (m->done != NULL)
      CloseHandle(m->done);
    if (m->ctl_answered != NULL)
      CloseHandle(m->ctl_answered);
    free(m);
    return jw_error_set(err, JW_ESYS, e, "CreateEventW",
                        "cannot start the monitor: CreateEventW failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  m->thread = (HANDLE)_beginthreadex(NULL, 0, monitor_main, m, CREATE_SUSPENDED, NULL);
  if (m->thread == NULL) {
    DWORD e = GetLastError();
    CloseHandle(m->done);
    CloseHandle(m->ctl_answered);
    free(m);
    return jw_error_set(err, JW_ESYS, e, "_beginthreadex",
                        "cannot start the monitor thread (Win32 error %lu)", (unsigned long)e);
  }
  jw__mutex_init(&m->ctl_lock);
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
  t = jw__mon_add_proc(m, root->pid);
  if (t == NULL)
    return JW_ENOMEM;
  t->is_root = 1;
  t->start_source = "jobwarden";
  m->root_pid = root->pid;
  t->create_time = root->create_time;
  if (root->image != NULL)
    t->image = strdup(root->image);
  if (!DuplicateHandle(GetCurrentProcess(), root->process, GetCurrentProcess(), &t->h,
                       TRACK_RIGHTS | EXTRA_RIGHTS, FALSE, 0) &&
      !DuplicateHandle(GetCurrentProcess(), root->process, GetCurrentProcess(), &t->h, TRACK_RIGHTS,
                       FALSE, 0)) {
    t->open_error = GetLastError();
    t->h = NULL;
  }
  /* The run's clock starts now: the root runs as soon as this returns. */
  m->start_tick = GetTickCount64();
  if (m->job->policy.timeout_ms != 0)
    m->deadline_tick = m->start_tick + m->job->policy.timeout_ms;
  t->has_parent = 1;
  t->ppid = GetCurrentProcessId();
  {
    FILETIME ct, xt, kt, ut;
    if (GetProcessTimes(GetCurrentProcess(), &ct, &xt, &kt, &ut))
      m->own_create_time = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
  }
  enrich_more(m, t);

  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_START, "root_process", "observed", "monitor", JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  snprintf(ev.message, sizeof(ev.message),
           "root process %.300s (pid %lu) created inside the job (%s); it runs next",
           jw__mon_image_or_unknown(t), (unsigned long)t->pid, root->method ? root->method : "?");
  jw__mon_emit(m, &ev);
  return run_thread(m) == 0 ? 0 : JW_ESYS;
}

void jw_monitor_note_terminating(jw_monitor_t *m, const char *reason) {
  m->terminate_reason = reason;
  InterlockedExchange(&m->terminating, 1);
}

const char *jw_monitor_rule_kill(jw_monitor_t *m, int *job) {
  const char *rule;
  MemoryBarrier();
  rule = m->rule_kill;
  if (job != NULL)
    *job = rule != NULL && m->rule_kill_job != 0;
  return rule;
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
  for (i = 0; i < m->n_procs; i++)
    m->stats.handles_held += m->procs[i].h != NULL;
  jw__mon_escape_free(m);
  if (stats != NULL)
    *stats = m->stats;
  CloseHandle(m->thread);
  CloseHandle(m->done);
  CloseHandle(m->ctl_answered);
  json_decref(m->ctl_reply);
  jw__mutex_destroy(&m->ctl_lock);
  for (i = 0; i < m->n_procs; i++) {
    if (m->procs[i].h != NULL)
      CloseHandle(m->procs[i].h);
    free(m->procs[i].image);
    free(m->procs[i].cmdline);
    free(m->procs[i].user_sid);
  }
  for (i = 0; i < m->n_sids; i++) {
    free(m->sids[i].sid);
    free(m->sids[i].name);
  }
  free(m->idlist);
  free(m->pids);
  free(m->procs);
  free(m);
  return 0;
}

/* Escapes, as the monitor sees them: processes outside the job whose
 * parent is jobwarden (other than the root), a member of the job, or an
 * escape found before (docs/events.md, rule job_escape). A child started
 * with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming a process outside the
 * job takes that process's job, none, and the kernel posts no job message
 * for it; Windows offers a non-administrator no event for process creation
 * either (docs/performance.md), so the monitor looks at the system's
 * process list itself (src/win/escape.c):
 *   - after a job message (a NEW_PROCESS above all: a member is starting
 *     processes), at most once per PORT_SCAN_GAP_MS while the port keeps
 *     reporting, so a flood does not become a scan per packet;
 *   - every policy escape_scan_ms while members run (0: never);
 *   - at the job's end, when every escape still running is terminated:
 *     no process of the run outlives it, whatever the rule's action.
 * A scan of the first two kinds, once due, waits until the port has said
 * nothing for JW__SCAN_QUIET_MS, and JW__SCAN_QUIET_MAX_MS at most
 * (jw__escape_scan_wait): the events of the messages just taken are then
 * on their way to the sinks without the scan in their path (under Wine
 * the list holds the wineserver about a millisecond, and a line to a
 * pipe, the pipe's client and the next packet all need the server:
 * docs/performance.md, "The escape scan in the pipe's tail").
 * Escapes are kept here, apart from the job's members (they are not in the
 * job: they take no part in its counts, its limits or its reconciliation),
 * each with its process handle, held until the monitor stops so that its
 * pid cannot be reused while the monitor may still attribute children to
 * it. An escape is believed only when the kernel confirms it (not in the
 * job by IsProcessInJob, created in the life of a parent of the run); it
 * is described by admission (jw__mon_admit_outside) without becoming a
 * member, and every kill goes through monitor_actions.c, whose record
 * (tracked_t.killed_by, the job's terminate_reason) says who killed it.
 * A leaf: called by the loop (note, tick, free) and at the job's confirmed
 * end (monitor_reconcile.c); it calls nothing back. Monitor thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/escape.h"
#include "win/monitor_int.h"

#define PORT_SCAN_GAP_MS 50   /* scans caused by job messages, at most one per */
#define END_ROUNDS       8    /* job end: scan and kill until nothing new, at most */
#define END_WAIT_MS      2000 /* job end: how long a terminated escape is waited for */

typedef struct escape_s {
  tracked_t t;             /* the process; t.h owned here */
  const char *parent_kind; /* "jobwarden", "member", "escape" (static) */
  const char *detected_by; /* "scan", "new_process", "port", "job_end" (static) */
  int exit_reported;
} escape_t;

struct jw__mon_escapes_s {
  jw__escape_snap_t snap;
  escape_t *list; /* owned; grows, so held by index */
  size_t n, cap;
  ULONGLONG last_scan;
  const char *pending;    /* a job message asked for a scan: its trigger, NULL none */
  ULONGLONG pending_tick; /* when it first asked (since the last scan) */
  ULONGLONG message_tick; /* when the last job message was taken */
  int ended;              /* the job-end sweep ran */
  uint64_t self_ct;       /* jobwarden's creation time */
  LARGE_INTEGER freq;
};

static jw__mon_escapes_t *state(jw_monitor_t *m) {
  jw__mon_escapes_t *x = m->esc;
  FILETIME ct, xt, kt, ut;
  if (x != NULL)
    return x;
  x = calloc(1, sizeof(*x));
  if (x == NULL)
    return NULL;
  QueryPerformanceFrequency(&x->freq);
  if (GetProcessTimes(GetCurrentProcess(), &ct, &xt, &kt, &ut))
    x->self_ct = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
  m->esc = x;
  return x;
}

static uint64_t now_filetime(void) {
  FILETIME f;
  GetSystemTimeAsFileTime(&f);
  return ((uint64_t)f.dwHighDateTime << 32) | f.dwLowDateTime;
}

/* Whether pid is a member the monitor knows (admission's own rule: that
 * process, in the job or already reported as having left it), or an
 * escape already found: nothing to examine. */
static int known(jw_monitor_t *m, const jw__mon_escapes_t *x, DWORD pid) {
  size_t i;
  if (jw__mon_known(m, pid, NULL))
    return 1;
  for (i = 0; i < x->n; i++)
    if (x->list[i].t.pid == pid)
      return 1;
  return 0;
}

/* The life window so far (window_add): the earliest creation, the latest
 * end, whether a holder still runs, and the first holder's kind. */
typedef struct window_s {
  const char *kind;
  int running;
  uint64_t ct, last;
} window_t;

static void window_add(window_t *w, const tracked_t *t, const char *kind) {
  if (t->create_time == 0)
    return;
  /* An exited process whose end is unknown bounds nothing: left out. */
  if (t->exited && !(t->exit_read && t->xf.end_time != 0))
    return;
  if (w->kind == NULL || t->create_time < w->ct)
    w->ct = t->create_time;
  if (!t->exited)
    w->running = 1;
  else if (t->xf.end_time > w->last)
    w->last = t->xf.end_time;
  if (w->kind == NULL)
    w->kind = kind;
}

/* The life of whatever tracked process had pid ppid: the widest window
 * (earliest creation, latest end; 0 = still running) over every holder of
 * that pid, and its kind; NULL when ppid names nobody of the run. The
 * members are those of the table's pid slot (exited ones are kept while
 * recent, in the tree or an ancestor). */
static const char *parent_window(jw_monitor_t *m, const jw__mon_escapes_t *x, DWORD ppid,
                                 uint64_t *ct, uint64_t *end) {
  window_t w;
  const tracked_t *t;
  size_t i;
  *ct = 0;
  *end = 0;
  if (ppid != 0 && ppid == jw__escape_self_pid()) {
    /* Created after the root: nothing of the run existed before it, and
     * jobwarden's own console host (conhost.exe, whose parent is
     * jobwarden on Windows) is older. */
    const tracked_t *root = jw__mon_find_proc(m, m->root_pid);
    *ct = root != NULL && root->create_time > x->self_ct ? root->create_time : x->self_ct;
    return "jobwarden";
  }
  memset(&w, 0, sizeof(w));
  for (t = jw__mon_find_proc(m, ppid); t != NULL; t = t->pid_next)
    window_add(&w, t, "member");
  for (i = 0; i < x->n; i++)
    if (x->list[i].t.pid == ppid)
      window_add(&w, &x->list[i].t, "escape");
  *ct = w.ct;
  *end = w.running ? 0 : w.last;
  return w.kind;
}

/* The one holder of ppid whose life contains child_ct: *member, or *eidx
 * (an escape's index); 0 when none does (a reused pid). */
static int pick_parent(jw_monitor_t *m, const jw__mon_escapes_t *x, DWORD ppid, uint64_t child_ct,
                       const tracked_t **member, long *eidx) {
  const tracked_t *t;
  size_t i;
  *member = NULL;
  *eidx = -1;
  for (t = jw__mon_find_proc(m, ppid); t != NULL; t = t->pid_next) {
    if ((!t->exited || t->exit_read) &&
        jw__escape_born_of(t->create_time, t->exited ? t->xf.end_time : 0, child_ct)) {
      *member = t;
      return 1;
    }
  }
  for (i = x->n; i-- > 0;) {
    t = &x->list[i].t;
    if (t->pid == ppid && (!t->exited || t->exit_read) &&
        jw__escape_born_of(t->create_time, t->exited ? t->xf.end_time : 0, child_ct)) {
      *eidx = (long)i;
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* The violation of one escape, after its action. */
static void emit_escape(jw_monitor_t *m, escape_t *e, jw_rule_action_t a, const char *action,
                        const char *say, const char *err_where, DWORD err) {
  jw_event_t ev;
  json_t *x = json_object();
  uint64_t now = now_filetime();
  uint64_t after_ms = now > e->t.create_time ? (now - e->t.create_time) / 10000 : 0;
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "job_escape", action, "monitor", JW_SEV_CRITICAL);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, &e->t, &ev.process);
  snprintf(ev.message, sizeof(ev.message),
           "process %.300s (pid %lu) runs outside the job although its parent is %s (pid %lu): it "
           "escaped the job (a parent named at its creation takes the child into that parent's "
           "job); %s",
           jw__mon_image_or_unknown(&e->t), (unsigned long)e->t.pid,
           strcmp(e->parent_kind, "jobwarden") == 0 ? "jobwarden itself"
           : strcmp(e->parent_kind, "member") == 0  ? "a process of the job"
                                                    : "an escaped process",
           (unsigned long)e->t.ppid, say);
  if (x != NULL) {
    json_object_set_new(x, "enforcement",
                        json_pack("{s:s}", "configured_action", jw_rule_action_name(a)));
    json_object_set_new(x, "escape",
                        json_pack("{s:s,s:s,s:I}", "parent", e->parent_kind, "detected_by",
                                  e->detected_by, "detected_after_ms", (json_int_t)after_ms));
    if (err_where != NULL)
      json_object_set_new(x, "error",
                          json_pack("{s:s,s:s,s:I}", "where", err_where, "code", "JW_ESYS",
                                    "win32_error", (json_int_t)err));
  }
  ev.extra = x;
  jw__mon_emit(m, &ev);
}

/* The end of an escape: read what its exit leaves, report it once. */
static void report_exit(jw_monitor_t *m, escape_t *e, int at_job_end) {
  jw_event_t ev;
  int64_t code;
  int ours;
  if (e->exit_reported)
    return;
  e->exit_reported = 1;
  e->t.exited = 1;
  if (e->t.h != NULL) {
    code = jw__proc_exit_code(e->t.h);
    if (code >= 0) {
      e->t.has_exit_code = 1;
      e->t.exit_code = (uint32_t)code;
    }
    jw__proc_exit_facts(e->t.h, &e->t.xf);
    e->t.exit_read = 1;
  }
  ours = e->t.killed_by != NULL && e->t.has_exit_code && e->t.exit_code == JW_TERMINATE_EXIT_CODE;
  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_EXIT, "escaped_process", ours ? "terminated" : "observed",
                  "monitor", ours ? JW_SEV_HIGH : JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, &e->t, &ev.process);
  ev.time_us = jw__mon_filetime_us(ev.process.end_time);
  if (ours && at_job_end)
    snprintf(ev.message, sizeof(ev.message),
             "escaped process %.300s (pid %lu) was still running when the job ended: terminated "
             "by jobwarden (no process of the run outlives it)",
             jw__mon_image_or_unknown(&e->t), (unsigned long)e->t.pid);
  else if (ours)
    snprintf(ev.message, sizeof(ev.message),
             "escaped process %.300s (pid %lu) was terminated by jobwarden (monitor rule "
             "job_escape, %s)",
             jw__mon_image_or_unknown(&e->t), (unsigned long)e->t.pid,
             jw_rule_action_name(m->job->policy.escape_action == JW_ACTION_KILL_JOB
                                     ? JW_ACTION_KILL_JOB
                                     : JW_ACTION_KILL_PROCESS));
  else if (e->t.has_exit_code)
    snprintf(ev.message, sizeof(ev.message), "escaped process %.300s (pid %lu) exited with 0x%08lX",
             jw__mon_image_or_unknown(&e->t), (unsigned long)e->t.pid,
             (unsigned long)e->t.exit_code);
  else
    snprintf(ev.message, sizeof(ev.message), "escaped process %.300s (pid %lu) exited",
             jw__mon_image_or_unknown(&e->t), (unsigned long)e->t.pid);
  jw__mon_emit(m, &ev);
}

/* ------------------------------------------------------------------------ */
/* Actions                                                                  */
/* ------------------------------------------------------------------------ */

/* The policy's action on a new escape, then its violation. The kills are
 * monitor_actions.c's (one record of who killed what): the escape's entry
 * gets killed_by "job_escape", a kill_job the run's terminate reason. */
static void act(jw_monitor_t *m, escape_t *e) {
  jw_rule_action_t a = jw__mon_effective(
      m->job->policy.escape_action,
      m->job->policy.tier == JW_TIER_NONE ? JW_ACTION_REPORT : JW_ACTION_KILL_PROCESS);
  const char *action = a == JW_ACTION_REPORT ? "reported" : "observed", *where = NULL;
  char say[200];
  DWORD err = 0;
  outcome_t jo, po;
  memset(&jo, 0, sizeof(jo));
  memset(&po, 0, sizeof(po));
  snprintf(say, sizeof(say), "reported only (action report); it is terminated when the job ends");
  if (a == JW_ACTION_KILL_JOB) {
    /* The job's end does not reach a process outside it: both. */
    jw__mon_kill_job_for(m, "job_escape", &jo);
    jw__mon_kill_process_for(m, &e->t, "job_escape", &po);
    if (jo.job_killed && (po.proc_killed || po.proc_gone)) {
      action = "killed_job";
      snprintf(say, sizeof(say), "jobwarden terminated it and the job");
    } else {
      action = "not_enforced";
      where = jo.job_killed ? po.err_where : jo.err_where;
      err = jo.job_killed ? po.err : jo.err;
      snprintf(say, sizeof(say), "%s failed (Win32 error %lu): NOT enforced", where,
               (unsigned long)err);
    }
  } else if (a == JW_ACTION_KILL_PROCESS) {
    jw__mon_kill_process_for(m, &e->t, "job_escape", &po);
    if (po.proc_killed) {
      action = "terminated";
      snprintf(say, sizeof(say), "jobwarden terminated it");
    } else if (po.proc_gone) {
      snprintf(say, sizeof(say), "it had already exited, nothing to terminate");
    } else {
      action = "not_enforced";
      where = po.err_where;
      err = po.err;
      snprintf(say, sizeof(say),
               "%s failed (Win32 error %lu): NOT enforced, it "
               "may still run",
               where, (unsigned long)err);
    }
  }
  emit_escape(m, e, a, action, say, where, err);
}

/* ------------------------------------------------------------------------ */
/* The scan                                                                 */
/* ------------------------------------------------------------------------ */

/* A new escape: tracked, read like a member, acted on, reported. */
static void found(jw_monitor_t *m, jw__mon_escapes_t *x, DWORD pid, DWORD ppid, HANDLE h,
                  uint64_t ct, const char *kind, long eidx, const char *trigger) {
  escape_t *e;
  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 8;
    escape_t *p = realloc(x->list, cap * sizeof(*p));
    if (p == NULL) {
      CloseHandle(h);
      return;
    }
    x->list = p;
    x->cap = cap;
  }
  e = &x->list[x->n++];
  memset(e, 0, sizeof(*e));
  jw__mon_admit_outside(m, &e->t, pid, h, "escape");
  e->parent_kind = kind;
  e->detected_by = trigger;
  m->stats.escapes++;
  if (e->t.create_time == 0)
    e->t.create_time = ct;
  if (!e->t.has_parent || e->t.ppid != ppid) {
    e->t.has_parent = 1;
    e->t.ppid = ppid;
  }
  /* The parent's entity id where the member table did not give it. */
  if (strcmp(kind, "jobwarden") == 0)
    e->t.parent_create_time = x->self_ct;
  else if (eidx >= 0)
    e->t.parent_create_time = x->list[eidx].t.create_time;
  /* Its executable identity, as a member's: in the violation when the
   * service has it cached, else a process_update (rule escaped_process)
   * follows once the worker has read the file. Only the file's open and
   * identity happen here, on the monitor's thread (monitor_identity.c);
   * the process itself need not live for it, so the kill below does not
   * wait for it. */
  jw__mon_identity_request(m, &e->t);
  act(m, e);
}

/* One look at every process of the system. */
static void scan(jw_monitor_t *m, jw__mon_escapes_t *x, const char *trigger) {
  LARGE_INTEGER t0, t1;
  DWORD self = jw__escape_self_pid();
  size_t i;
  uint64_t us;
  QueryPerformanceCounter(&t0);
  x->last_scan = GetTickCount64();
  x->pending = NULL;
  if (jw__escape_snapshot(&x->snap) != 0)
    return; /* nothing to look at this time; the next scan tries again */
  for (i = 0; i < x->snap.n; i++) {
    DWORD pid = x->snap.procs[i].pid, ppid = x->snap.procs[i].ppid, err;
    uint64_t pct, pend, ct;
    const tracked_t *member;
    long eidx;
    const char *kind;
    HANDLE h;
    if (pid == 0 || pid == self || pid == m->root_pid || pid == ppid)
      continue;
    kind = parent_window(m, x, ppid, &pct, &pend);
    if (kind == NULL || known(m, x, pid))
      continue;
    if (jw__escape_examine(m->job->job, pid, pct, pend, &h, &ct, &err) != JW__ESC_OUTSIDE)
      continue; /* in the job (the port announces it), gone, or not that parent's */
    if (strcmp(kind, "jobwarden") != 0) {
      if (!pick_parent(m, x, ppid, ct, &member, &eidx)) {
        CloseHandle(h);
        continue;
      }
      kind = member != NULL ? "member" : "escape";
    } else {
      eidx = -1;
    }
    found(m, x, pid, ppid, h, ct, kind, eidx, trigger);
  }
  QueryPerformanceCounter(&t1);
  us = x->freq.QuadPart > 0 ? (uint64_t)((t1.QuadPart - t0.QuadPart) * 1000000 / x->freq.QuadPart)
                            : 0;
  m->stats.escape_scans++;
  m->stats.escape_scan_us_total += us;
  if (us > m->stats.escape_scan_us_max)
    m->stats.escape_scan_us_max = us;
  m->stats.escape_scan_processes = (uint32_t)x->snap.n;
}

/* Escapes that ended since the last look. */
static void check_exits(jw_monitor_t *m, jw__mon_escapes_t *x) {
  size_t i;
  for (i = 0; i < x->n; i++) {
    escape_t *e = &x->list[i];
    if (!e->exit_reported && jw__proc_ended(e->t.h))
      report_exit(m, e, 0);
  }
}

/* ------------------------------------------------------------------------ */
/* The monitor's calls                                                      */
/* ------------------------------------------------------------------------ */

void jw__mon_escape_note(jw_monitor_t *m, DWORD msg, DWORD pid) {
  jw__mon_escapes_t *x = state(m);
  const tracked_t *t;
  if (x == NULL || x->ended)
    return;
  /* A member starting a process: not the root's own announcement (which
   * jobwarden made already), nor a repeat. */
  t = msg == JOB_OBJECT_MSG_NEW_PROCESS ? jw__mon_find_proc(m, pid) : NULL;
  x->message_tick = GetTickCount64();
  if (x->pending == NULL)
    x->pending_tick = x->message_tick;
  if (msg == JOB_OBJECT_MSG_NEW_PROCESS && (t == NULL || t->exited))
    x->pending = "new_process";
  else if (x->pending == NULL)
    x->pending = "port";
}

/* Tests: the port is never quiet (as if a message had just been taken at
 * every look), so that a due scan runs at its bound. */
static volatile LONG g_never_quiet;
void jw__monitor_escape_never_quiet(int on) {
  InterlockedExchange(&g_never_quiet, on != 0);
}

/* A scan that came due at `due` (the last message taken at `message`),
 * counted by how it waited. */
static void scan_counted(jw_monitor_t *m, jw__mon_escapes_t *x, const char *trigger, ULONGLONG due,
                         ULONGLONG message, int at_bound) {
  if (at_bound)
    m->stats.escape_scans_at_bound++;
  else if (message + JW__SCAN_QUIET_MS > due)
    m->stats.escape_scans_after_quiet++;
  scan(m, x, trigger);
}

static void shorten(DWORD *wait, ULONGLONG ms) {
  if (*wait > ms)
    *wait = ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

void jw__mon_escape_tick(jw_monitor_t *m, DWORD *wait) {
  jw__mon_escapes_t *x = state(m);
  uint64_t interval = m->job->policy.escape_scan_ms;
  ULONGLONG now, left, message;
  int at_bound;
  if (x == NULL || x->ended)
    return;
  check_exits(m, x);
  now = GetTickCount64();
  message = g_never_quiet ? now : x->message_tick;
  if (x->pending != NULL) {
    ULONGLONG due = x->last_scan + PORT_SCAN_GAP_MS;
    if (x->pending_tick > due)
      due = x->pending_tick;
    left = jw__escape_scan_wait(message, due, now, &at_bound);
    if (left == 0)
      scan_counted(m, x, x->pending, due, message, at_bound);
    else
      shorten(wait, left);
  }
  if (interval != 0 && jw__mon_active_count(m) > 0) {
    ULONGLONG due = interval > UINT64_MAX - x->last_scan ? UINT64_MAX : x->last_scan + interval;
    left = jw__escape_scan_wait(message, due, now, &at_bound);
    if (left == 0) {
      scan_counted(m, x, "scan", due, message, at_bound);
      left = interval;
    }
    shorten(wait, left);
  }
}

void jw__mon_escape_job_end(jw_monitor_t *m) {
  jw__mon_escapes_t *x = state(m);
  size_t i;
  int round;
  if (x == NULL || x->ended)
    return;
  x->ended = 1;
  /* Escapes start escapes: look and kill until a look finds nothing new. */
  for (round = 0; round < END_ROUNDS; round++) {
    size_t before = x->n;
    int killed = 0;
    scan(m, x, "job_end");
    for (i = 0; i < x->n; i++) {
      escape_t *e = &x->list[i];
      if (e->exit_reported || e->t.h == NULL || jw__proc_ended(e->t.h))
        continue;
      if (e->t.killed_by == NULL) {
        outcome_t o;
        memset(&o, 0, sizeof(o));
        jw__mon_kill_process_for(m, &e->t, "job_end", &o);
        killed |= o.proc_killed;
      }
    }
    if (x->n == before && !killed)
      break;
  }
  for (i = 0; i < x->n; i++) {
    escape_t *e = &x->list[i];
    if (e->exit_reported || e->t.h == NULL)
      continue;
    if (WaitForSingleObject(e->t.h, END_WAIT_MS) == WAIT_OBJECT_0 &&
        jw__proc_await_end(e->t.h, END_WAIT_MS))
      report_exit(m, e, e->t.killed_by != NULL && strcmp(e->t.killed_by, "job_end") == 0);
  }
}

tracked_t *jw__mon_escape_pending(jw_monitor_t *m, uint64_t cookie) {
  jw__mon_escapes_t *x = m->esc;
  size_t i;
  for (i = 0; x != NULL && i < x->n; i++)
    if (x->list[i].t.id_state == ID_PENDING && x->list[i].t.id_cookie == cookie)
      return &x->list[i].t;
  return NULL;
}

void jw__mon_escape_free(jw_monitor_t *m) {
  jw__mon_escapes_t *x = m->esc;
  size_t i;
  if (x == NULL)
    return;
  for (i = 0; i < x->n; i++) {
    if (x->list[i].t.h != NULL)
      CloseHandle(x->list[i].t.h);
    free(x->list[i].t.image);
    free(x->list[i].t.cmdline);
    free(x->list[i].t.user_sid);
    free(x->list[i].t.id);
  }
  free(x->list);
  jw__escape_snap_free(&x->snap);
  free(x);
  m->esc = NULL;
}

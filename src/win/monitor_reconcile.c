/* Reconciliation: what the port did not say (lost exits and starts, the
 * gap records), and the job's end. A leaf: nothing here calls back into
 * the loop. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

/* How long job_end waits for the sinks to handle what came before it. */
#define SETTLE_TIMEOUT_MS 2000

/* ------------------------------------------------------------------------ */
/* Reconciliation: what the port did not say                                */
/* ------------------------------------------------------------------------ */

void jw__mon_note_lost(jw_monitor_t *m, const char *message, const tracked_t *t, DWORD pid,
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

/* The job's list against the table: a pid the monitor does not know is
 * pending at its first sighting (its NEW_PROCESS may be on its way) and
 * admitted at the second, RECHECK_MS later (the port lost it). */
static void look_at_list(jw_monitor_t *m) {
  size_t i, n = 0, n_pending = 0;
  const DWORD *pids;
  DWORD next[PENDING_MAX], *copy = NULL;
  char why[240];
  int refused;

  /* Admission reads the job's list itself: this one is copied first. */
  pids = jw__mon_job_pids(m, &n);
  if (pids != NULL && n > 0) {
    copy = malloc(n * sizeof(DWORD));
    if (copy != NULL)
      memcpy(copy, pids, n * sizeof(DWORD));
    else
      n = 0;
  }
  for (i = 0; copy != NULL && i < n; i++) {
    /* A pid the monitor holds a handle to is that process (running, or
     * exited and still listed while handles to it are open). One whose
     * exit was reported and handle let go is that process still if it was
     * created at the same time (someone else keeps it listed); otherwise
     * the pid was reused by a process the port did not announce. */
    if (jw__mon_known(m, copy[i], NULL))
      continue;
    if (was_pending(m, copy[i])) {
      /* Refused: it left the job meanwhile; nothing was posted, so no
       * forgery either. */
      (void)jw__mon_admit(m, copy[i], ADMIT_ID_LIST, &refused, why, sizeof(why));
    } else if (n_pending < PENDING_MAX) {
      next[n_pending++] = copy[i];
    }
  }
  free(copy);
  memcpy(m->pending, next, n_pending * sizeof(DWORD));
  m->n_pending = n_pending;
  m->recheck_tick = n_pending > 0 ? GetTickCount64() + RECHECK_MS : 0;
  emit_port_gap(m, NULL, 0);
}

void jw__mon_check_members(jw_monitor_t *m) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  int have;
  if (m->stats.job_end_emitted)
    return;
  memset(&acc, 0, sizeof(acc));
  if (m->acc_seen_valid) {
    acc = m->acc_seen; /* read by a limit message of this batch */
    have = 1;
  } else {
    have = QueryInformationJobObject(m->job->job, JobObjectBasicAccountingInformation, &acc,
                                     sizeof(acc), NULL) != 0;
  }
  if (have && acc.ActiveProcesses + m->n_grace < m->n_live) {
    /* Fewer members run than the monitor thinks, beyond those whose exit
     * it awaits: an exit it was not told of (its message and its
     * watcher's packet both taken from the port by someone holding a copy
     * of it, or TerminateJobObject under Wine, which posts no message).
     * The signaled handles say which. */
    tracked_t *t;
    for (t = m->live; t != NULL; t = t->live_next)
      if (!t->in_grace && !t->setup_pending && jw__mon_has_ended(t))
        jw__mon_grace_add(m, t);
  }
  if (m->n_pending > 0)
    return; /* the second look is already due */
  /* Every process the kernel counted is known, or was looked for at this
   * count already (gone before it could be listed: the job's end counts
   * it). */
  if (have) {
    if (acc.TotalProcesses <= m->stats.processes_seen || acc.TotalProcesses == m->looked_total)
      return;
    m->looked_total = acc.TotalProcesses;
  }
  look_at_list(m);
}

void jw__mon_recheck_tick(jw_monitor_t *m, ULONGLONG now, DWORD *wait) {
  if (m->recheck_tick == 0)
    return;
  if (now >= m->recheck_tick) {
    m->recheck_tick = 0;
    if (!m->stats.job_end_emitted)
      look_at_list(m);
    return;
  }
  if (m->recheck_tick - now < *wait)
    *wait = (DWORD)(m->recheck_tick - now);
}

void jw__mon_exit_grace(jw_monitor_t *m, ULONGLONG now, DWORD *wait) {
  tracked_t *t;
  while ((t = m->grace_head) != NULL) {
    if (!t->exited && now - t->signaled_tick < EXIT_GRACE_MS) {
      DWORD left = (DWORD)(EXIT_GRACE_MS - (now - t->signaled_tick));
      if (left < *wait)
        *wait = left;
      return;
    }
    m->grace_head = t->grace_next;
    if (m->grace_head == NULL)
      m->grace_tail = NULL;
    t->in_grace = 0;
    m->n_grace--;
    if (!t->exited) {
      jw__mon_mark_exited(m, t);
      jw__mon_note_lost(m, "JOB_OBJECT_MSG_EXIT_PROCESS", t, 0, "process_handle", 1);
      jw__mon_report_exit(m, t, 0, "reconciled");
    }
    jw__mon_unref(m, t); /* the queue's */
  }
  emit_port_gap(m, NULL, 0);
}

/* Reports every tracked process the port did not report as exited. */
static void reconcile(jw_monitor_t *m) {
  tracked_t *t, *next;
  for (t = m->live; t != NULL; t = next) {
    jw_event_t ev;
    next = t->live_next; /* t may leave the list */
    if (jw__proc_ended(t->h)) {
      jw__mon_mark_exited(m, t);
      jw__mon_note_lost(m, "JOB_OBJECT_MSG_EXIT_PROCESS", t, 0, "process_handle", 1);
      jw__mon_report_exit(m, t, 0, "reconciled");
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
        jw__mon_left_job(m, t); /* no longer a member */
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
      if (acc.TotalProcesses > m->stats.processes_seen) {
        jw__mon_note_lost(m, "JOB_OBJECT_MSG_NEW_PROCESS", NULL, 0, "accounting",
                          acc.TotalProcesses - m->stats.processes_seen);
        emit_port_gap(m, &acc, m->stats.processes_seen);
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
  for (i = 0; i < m->n_tree; i++) {
    const tracked_t *t = m->tree[i];
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
  jw__mon_identity_finish(m); /* the identities still being computed, and their rules */
  jw__mon_tamper_summary(m);  /* before the end: job_end is the last event */
  jw__mon_coalesce_flush(m, 1, NULL);
  if (m->before_end != NULL)
    m->before_end(m->before_end_ctx); /* the readers' gate's summary */
  /* Every sink has handled what came before, so that a sink's failure
   * (sink_failed) is in the record before the end, and the summary's
   * figures per sink are true for everything but job_end itself. */
  jw_emitter_settle(m->em, SETTLE_TIMEOUT_MS);
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
    /* Of them, repeats counted into a coalesced summary line. */
    json_object_set_new(summary, "coalesced", json_integer(m->stats.coalesced));
    json_object_set_new(summary, "abnormal_exits", json_integer(m->stats.abnormal_exits));
    json_object_set_new(summary, "reconciled_events", json_integer(m->stats.reconciled));
    /* Packets the kernel did not send (each a monitor_tampering violation,
     * or counted in its summary violation past TAMPER_DETAILED). */
    json_object_set_new(summary, "forged_packets", json_integer((json_int_t)m->tamper_total));
    /* Lines some sink did not get so far (each also reported in that sink's
     * stream as a sandbox.telemetry_gap). */
    json_object_set_new(summary, "events_dropped",
                        json_integer((json_int_t)jw_emitter_dropped(m->em)));
    /* Per sink: lines written (a network sink: into its spool), lost,
     * and a network sink's delivery so far. */
    json_object_set_new(summary, "sinks", (json_t *)jw__emitter_sinks_json(m->em));
    json_object_set_new(summary, "active_processes", json_integer(jw__mon_active_count(m)));
    json_object_set_new(summary, "terminated_by_jobwarden",
                        m->terminating && m->terminate_reason ? json_string(m->terminate_reason)
                                                              : json_null());
    if (root != NULL && root->has_exit_code)
      json_object_set_new(summary, "root_exit_code", json_integer(root->exit_code));
    else
      json_object_set_new(summary, "root_exit_code", json_null());
    json_object_set_new(summary, "process_tree", process_tree(m));
    if (m->stats.processes_seen > m->n_tree)
      json_object_set_new(summary, "process_tree_omitted",
                          json_integer((json_int_t)(m->stats.processes_seen - m->n_tree)));
    ev.extra = json_pack("{s:o}", "summary", summary);
  }
  snprintf(ev.message, sizeof(ev.message),
           "job ended: %lu process(es), %lu violation(s), %lu abnormal exit(s)%s",
           (unsigned long)m->stats.processes_seen, (unsigned long)m->stats.violations,
           (unsigned long)m->stats.abnormal_exits,
           strcmp(source, "port") == 0 ? "" : " (the port never announced the end; reconciled)");
  jw__mon_emit(m, &ev);
}

/* The kernel posts ACTIVE_PROCESS_ZERO when the job's last process has
 * ended: its accounting says so too. One that says otherwise is a
 * forgery, and the job goes on. Where the accounting cannot be read, every
 * process the monitor tracks must have ended. */
void jw__mon_on_active_zero(jw_monitor_t *m) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  char why[200];
  memset(&acc, 0, sizeof(acc));
  if (QueryInformationJobObject(m->job->job, JobObjectBasicAccountingInformation, &acc, sizeof(acc),
                                NULL)) {
    if (acc.ActiveProcesses != 0) {
      snprintf(why, sizeof(why),
               "the job's accounting counts %lu active process(es) (ActiveProcesses)",
               (unsigned long)acc.ActiveProcesses);
      jw__mon_tampering(m, "job", 0, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, "job_not_empty", why);
      return;
    }
  } else {
    const tracked_t *t;
    for (t = m->live; t != NULL; t = t->live_next) {
      if (t->h != NULL && !jw__mon_has_ended(t)) {
        snprintf(why, sizeof(why),
                 "the job's accounting cannot be read (Win32 error %lu) and process %lu still "
                 "runs",
                 (unsigned long)GetLastError(), (unsigned long)t->pid);
        jw__mon_tampering(m, "job", 0, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, "job_not_empty", why);
        return;
      }
    }
  }
  if (m->stats.job_end_emitted)
    return; /* a second real one (a process was assigned after the end) */
  /* A real end (a forged one was judged above, at once) waits for every
   * member's setup and what waits for it (monitor_setup.c). */
  if (jw__mon_setup_defer(m, NULL, JW_DEFER_JOB, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0))
    return;
  /* Only now, the end confirmed: a forged ACTIVE_PROCESS_ZERO must not
   * end the look for escapes. */
  jw__mon_escape_job_end(m);
  reconcile(m);
  emit_job_end(m, "port");
  SetEvent(m->done);
}

void jw__mon_end_unannounced(jw_monitor_t *m) {
  if (!m->stats.job_end_emitted) {
    jw__mon_escape_job_end(m);
    reconcile(m);
    emit_job_end(m, "reconciled");
  }
}

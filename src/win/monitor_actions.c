/* Actions: every process or job jobwarden terminates goes through here
 * (monitor rules, the timeout, control requests), and the one record of
 * who killed what and why is kept here: tracked_t.killed_by /
 * kill_requester for a process, terminate_reason / rule_kill / ctl_killed
 * for the job. A leaf: nothing here calls back into the loop. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

/* TerminateJobObject for a rule. The root dies with the job, so the owner
 * learns which rule ended the run (set before the call: the owner may wake
 * as soon as the root is gone). A job jobwarden is already terminating
 * (Ctrl-C, an earlier rule) keeps its first reason. */
void jw__mon_kill_job_for(jw_monitor_t *m, const char *rule, outcome_t *o) {
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

/* TerminateProcess on the handle the monitor holds (the pid cannot have
 * been reused while it is held). */
void jw__mon_kill_process_for(jw_monitor_t *m, tracked_t *t, const char *rule, outcome_t *o) {
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
  if (jw__proc_ended(t->h)) {
    o->proc_gone = 1;
  } else {
    o->err_where = "TerminateProcess";
    o->err = e;
  }
}

/* The `action` of an event for a rule whose configured action is `a`, and
 * a sentence saying what was done. */
const char *jw__mon_outcome_action(jw_rule_action_t a, const outcome_t *o, char *say, size_t n) {
  if (a == JW_ACTION_REPORT) {
    snprintf(say, n, "reported only (action report)");
    return "reported";
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
json_t *jw__mon_rule_extra(const verdict_t *v, const outcome_t *o, const tracked_t *t) {
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
  /* The image path itself could not be read (an identity that could not
   * be had says why in process.unavailable instead). */
  else if (t != NULL && strcmp(v->rule, "image_unknown") == 0 && v->why == NULL)
    json_object_set_new(x, "error",
                        json_pack("{s:s,s:s,s:I}", "where",
                                  t->h == NULL ? "OpenProcess" : "QueryFullProcessImageNameW",
                                  "code", "JW_ESYS", "win32_error",
                                  (json_int_t)(t->h == NULL ? t->open_error : t->image_error)));
  return x;
}

/* The run's timeout: the deadline of the port wait has passed. */
void jw__mon_on_timeout(jw_monitor_t *m) {
  const jw_policy_t *p = &m->job->policy;
  tracked_t *root = jw__mon_find_proc(m, m->root_pid);
  jw_rule_action_t a = jw__mon_effective(p->timeout_action, JW_ACTION_KILL_JOB);
  uint64_t elapsed = GetTickCount64() - m->start_tick;
  outcome_t o;
  verdict_t v;
  jw_event_t ev;
  char say[160];
  const char *action;

  m->deadline_tick = 0; /* once */
  memset(&o, 0, sizeof(o));
  if (a == JW_ACTION_KILL_JOB) {
    jw__mon_kill_job_for(m, "timeout", &o);
  } else if (a == JW_ACTION_KILL_PROCESS) {
    if (root != NULL && !root->exited)
      jw__mon_kill_process_for(m, root, "timeout", &o);
    else
      o.proc_gone = 1;
  }
  action = jw__mon_outcome_action(a, &o, say, sizeof(say));
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
  ev.extra = jw__mon_rule_extra(&v, &o, NULL);
  jw__mon_emit(m, &ev);
}

/* A control request's kill of one member. Said before the call: the owner
 * may wake as soon as the root is gone. */
DWORD jw__mon_kill_process_by_request(jw_monitor_t *m, tracked_t *t, DWORD requester,
                                      const char *who) {
  DWORD e;
  t->killed_by = "member_control";
  t->kill_requester = requester;
  if (t->is_root) {
    jw__strlcpy(m->ctl_kill_text, who, sizeof(m->ctl_kill_text));
    InterlockedExchange(&m->ctl_killed, 1);
  }
  if (TerminateProcess(t->h, JW_TERMINATE_EXIT_CODE))
    return 0;
  e = GetLastError();
  t->killed_by = NULL;
  if (t->is_root)
    InterlockedExchange(&m->ctl_killed, 0);
  return e != 0 ? e : ERROR_GEN_FAILURE;
}

/* A control request's kill of the job. A job jobwarden is already
 * terminating keeps its first reason. */
DWORD jw__mon_kill_job_by_request(jw_monitor_t *m, const char *who) {
  int first = InterlockedCompareExchange(&m->terminating, 1, 0) == 0;
  DWORD e;
  if (first) {
    jw__strlcpy(m->ctl_kill_text, who, sizeof(m->ctl_kill_text));
    m->terminate_reason = m->ctl_kill_text;
    InterlockedExchange(&m->ctl_killed, 2);
  }
  if (TerminateJobObject(m->job->job, JW_TERMINATE_EXIT_CODE))
    return 0;
  e = GetLastError();
  if (first) {
    InterlockedExchange(&m->ctl_killed, 0);
    m->terminate_reason = NULL;
    InterlockedExchange(&m->terminating, 0);
  }
  return e != 0 ? e : ERROR_GEN_FAILURE;
}

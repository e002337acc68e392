/* Control requests (docs/control.md), answered on the monitor thread: the
 * control server (src/win/control.c) puts a request in the monitor's
 * one-request slot and posts JW_CTRL_REQUEST; the monitor lists members or
 * terminates one or the job through the same paths as its own rules, so
 * every exit says who caused it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win/monitor_int.h"

/* ------------------------------------------------------------------------ */
/* Control requests (docs/control.md)                                       */
/* ------------------------------------------------------------------------ */

#define FILETIME_1970 116444736000000000ull

/* The pids in the job now, as the kernel lists them (job_pids): a new
 * malloc'd copy in *ids, their count in *n. Returns 0 or the Win32 error. */
static DWORD list_job_pids(jw_monitor_t *m, DWORD **ids, DWORD *n) {
  size_t k = 0;
  const DWORD *listed;
  SetLastError(0);
  listed = jw__mon_job_pids(m, &k);
  *ids = NULL;
  *n = 0;
  if (listed == NULL)
    return GetLastError() != 0 ? GetLastError() : ERROR_NOT_ENOUGH_MEMORY;
  *ids = malloc((k + 1) * sizeof(DWORD));
  if (*ids == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  memcpy(*ids, listed, k * sizeof(DWORD));
  *n = (DWORD)k;
  return 0;
}

static int pid_listed(const DWORD *ids, DWORD n, DWORD pid) {
  DWORD i;
  for (i = 0; i < n; i++)
    if (ids[i] == pid)
      return 1;
  return 0;
}

/* A member the port has not announced yet (its NEW_PROCESS is still queued
 * behind this request) is handled now, exactly as that message would be:
 * its child_process event, the monitor rules. The queued message then
 * finds it tracked and is ignored, as for the root. */
static void catch_up(jw_monitor_t *m, const DWORD *ids, DWORD n) {
  DWORD i;
  char why[240];
  int refused;
  /* The list is copied: admission reads the job's list again. A listed
   * pid that admission refuses (it left the job meanwhile) is no forgery:
   * nothing was posted; it is simply not admitted. */
  for (i = 0; i < n; i++)
    (void)jw__mon_admit(m, ids[i], ADMIT_CONTROL, &refused, why, sizeof(why));
}

/* The working set in bytes; 0 when it cannot be read. */
static int working_set(const tracked_t *t, uint64_t *bytes) {
  PROCESS_MEMORY_COUNTERS_EX pmc;
  const char *where;
  DWORD e;
  if (jw__mon_memory_counters(t, NULL, &pmc, &where, &e) != 0)
    return 0;
  *bytes = pmc.WorkingSetSize;
  return 1;
}

/* One member of a ps reply. New reference or NULL. */
static json_t *member_json(const tracked_t *t) {
  json_t *o = json_object();
  char buf[48];
  uint64_t ws = 0;
  int bad = 0;
  if (o == NULL)
    return NULL;
  bad |= json_object_set_new(o, "pid", json_integer(t->pid));
  if (t->create_time != 0)
    jw_format_entity_id(t->pid, t->create_time, buf, sizeof(buf));
  bad |= json_object_set_new(o, "entity_id", t->create_time ? json_string(buf) : json_null());
  bad |= json_object_set_new(
      o, "executable",
      t->image == NULL ? json_null()
                       : json_stringn(t->image, t->image_len ? t->image_len : strlen(t->image)));
  bad |= json_object_set_new(o, "parent_pid", t->has_parent ? json_integer(t->ppid) : json_null());
  bad |= json_object_set_new(o, "working_set",
                             working_set(t, &ws) ? json_integer((json_int_t)ws) : json_null());
  if (t->create_time > FILETIME_1970)
    jw_format_time_us((t->create_time - FILETIME_1970) / 10, buf, sizeof(buf));
  bad |= json_object_set_new(o, "start",
                             t->create_time > FILETIME_1970 ? json_string(buf) : json_null());
  bad |= json_object_set_new(o, "is_root", json_boolean(t->is_root));
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *refusal(const jw_control_request_t *req, const char *reason, const char *text) {
  return json_pack("{s:b,s:s,s:s,s:s}", "ok", 0, "op", jw_control_op_name(req->op), "reason",
                   reason, "error", text);
}

/* "control request kill from pid P (user S)" into buf. */
static void describe_requester(const jw_control_request_t *req, char *buf, size_t size) {
  snprintf(buf, size, "control request %s from pid %lu (user %s)", jw_control_op_name(req->op),
           (unsigned long)req->requester_pid,
           req->requester_sid[0] ? req->requester_sid : "unknown");
}

/* The member_control notice of a kill request. t (may be NULL) is the
 * process it named; err_where (may be NULL) the call that failed. */
static void emit_control_notice(jw_monitor_t *m, const jw_control_request_t *req,
                                const char *action, jw_severity_t sev, const char *result,
                                const char *reason, const tracked_t *t, const char *err_where,
                                DWORD err, const char *text) {
  jw_event_t ev;
  json_t *x = json_object(), *ctl = jw_control_event_object(req, result, reason);
  jw_event_init(&ev, JW_EVENT_NOTICE, "member_control", action, "monitor", "jobwarden", sev);
  if (t != NULL) {
    ev.has_process = 1;
    jw__mon_fill_process(m, t, &ev.process);
  }
  if (x != NULL && ctl != NULL) {
    json_object_set_new(x, "control", ctl);
    ctl = NULL;
    if (err_where != NULL)
      json_object_set_new(x, "error",
                          json_pack("{s:s,s:s,s:I}", "where", err_where, "code", "JW_ESYS",
                                    "win32_error", (json_int_t)err));
    ev.extra = x;
    x = NULL;
  }
  json_decref(x);
  json_decref(ctl);
  jw__strlcpy(ev.message, text, sizeof(ev.message));
  jw__mon_emit(m, &ev);
}

static json_t *control_ps(jw_monitor_t *m, const DWORD *ids, DWORD n) {
  json_t *members = json_array(), *reply;
  size_t used = 256; /* the reply's own keys */
  int truncated = 0;
  DWORD i;
  if (members == NULL)
    return NULL;
  for (i = 0; i < n && !truncated; i++) {
    tracked_t *t = jw__mon_find_proc(m, ids[i]);
    json_t *one;
    size_t size;
    if (t == NULL || t->exited || jw__mon_has_ended(t))
      continue; /* gone: no longer a running member */
    one = member_json(t);
    if (one == NULL)
      continue;
    size = json_dumpb(one, NULL, 0, JSON_COMPACT) + 1;
    if (used + size > JW_CONTROL_REPLY_MAX - 64) {
      truncated = 1;
      json_decref(one);
      break;
    }
    used += size;
    json_array_append_new(members, one);
  }
  reply = json_pack("{s:b,s:s,s:o,s:b}", "ok", 1, "op", "ps", "members", members, "truncated",
                    truncated);
  return reply;
}

static json_t *control_kill_pid(jw_monitor_t *m, const jw_control_request_t *req, const DWORD *ids,
                                DWORD n) {
  tracked_t *t = jw__mon_find_proc(m, req->pid);
  char who[JW_CONTROL_SID_MAX + 64], text[512];
  DWORD e;
  describe_requester(req, who, sizeof(who));
  if (!pid_listed(ids, n, req->pid) || t == NULL || t->exited || jw__mon_has_ended(t)) {
    /* A pid outside the job is how a hostile caller would try to use
     * jobwarden against another process: refused, and said loudly. */
    snprintf(text, sizeof(text),
             "%s asked to terminate pid %lu, which is not a running process of this job: refused",
             who, (unsigned long)req->pid);
    emit_control_notice(m, req, "blocked", JW_SEV_HIGH, "refused", "not_member", NULL, NULL, 0,
                        text);
    snprintf(text, sizeof(text), "pid %lu is not a running process of this job",
             (unsigned long)req->pid);
    return refusal(req, "not_member", text);
  }
  if (t->h == NULL) {
    snprintf(text, sizeof(text),
             "%s asked to terminate pid %lu, a process of this job that jobwarden could not open "
             "(OpenProcess, Win32 error %lu): not terminated",
             who, (unsigned long)req->pid, (unsigned long)t->open_error);
    emit_control_notice(m, req, "observed", JW_SEV_HIGH, "failed", "system_error", t, "OpenProcess",
                        t->open_error, text);
    snprintf(text, sizeof(text), "cannot open pid %lu (OpenProcess, Win32 error %lu)",
             (unsigned long)req->pid, (unsigned long)t->open_error);
    return refusal(req, "system_error", text);
  }
  e = jw__mon_kill_process_by_request(m, t, req->requester_pid, who);
  if (e != 0) {
    if (jw__mon_has_ended(t)) {
      snprintf(text, sizeof(text), "pid %lu has already exited", (unsigned long)req->pid);
      return refusal(req, "not_member", text);
    }
    snprintf(text, sizeof(text),
             "%s asked to terminate %s process %.300s (pid %lu): TerminateProcess failed (Win32 "
             "error %lu), it still runs",
             who, t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             (unsigned long)e);
    emit_control_notice(m, req, "observed", JW_SEV_HIGH, "failed", "system_error", t,
                        "TerminateProcess", e, text);
    snprintf(text, sizeof(text), "cannot terminate pid %lu (TerminateProcess, Win32 error %lu)",
             (unsigned long)req->pid, (unsigned long)e);
    return refusal(req, "system_error", text);
  }
  snprintf(text, sizeof(text), "%s terminated %s process %.300s (pid %lu)%s", who,
           t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
           t->is_root ? "; the run ends" : "");
  emit_control_notice(m, req, "terminated", JW_SEV_MEDIUM, "done", NULL, t, NULL, 0, text);
  return json_pack("{s:b,s:s,s:I,s:o,s:b}", "ok", 1, "op", "kill", "pid", (json_int_t)t->pid,
                   "executable",
                   t->image ? json_stringn(t->image, t->image_len ? t->image_len : strlen(t->image))
                            : json_null(),
                   "is_root", t->is_root);
}

static json_t *control_kill_job(jw_monitor_t *m, const jw_control_request_t *req, DWORD n) {
  char who[JW_CONTROL_SID_MAX + 64], text[512];
  DWORD e;
  describe_requester(req, who, sizeof(who));
  e = jw__mon_kill_job_by_request(m, who);
  if (e != 0) {
    snprintf(text, sizeof(text),
             "%s asked to terminate the job: TerminateJobObject failed (Win32 error %lu), its "
             "processes still run",
             who, (unsigned long)e);
    emit_control_notice(m, req, "observed", JW_SEV_HIGH, "failed", "system_error", NULL,
                        "TerminateJobObject", e, text);
    snprintf(text, sizeof(text), "cannot terminate the job (TerminateJobObject, Win32 error %lu)",
             (unsigned long)e);
    return refusal(req, "system_error", text);
  }
  snprintf(text, sizeof(text), "%s terminated the job (%lu process(es) were running)", who,
           (unsigned long)n);
  emit_control_notice(m, req, "killed_job", JW_SEV_MEDIUM, "done", NULL, NULL, NULL, 0, text);
  return json_pack("{s:b,s:s,s:b,s:I}", "ok", 1, "op", "kill", "job", 1, "processes",
                   (json_int_t)n);
}

/* Answers one request. New reference, NULL only when memory runs out. */
static json_t *on_control(jw_monitor_t *m, const jw_control_request_t *req) {
  DWORD *ids = NULL, n = 0, e;
  json_t *reply;
  char text[160];
  e = list_job_pids(m, &ids, &n);
  if (e != 0) {
    snprintf(text, sizeof(text),
             "cannot list the job's processes (QueryInformationJobObject, Win32 error %lu)",
             (unsigned long)e);
    return refusal(req, "system_error", text);
  }
  catch_up(m, ids, n);
  switch (req->op) {
  case JW_CONTROL_PS:
    reply = control_ps(m, ids, n);
    break;
  case JW_CONTROL_KILL_PID:
    reply = control_kill_pid(m, req, ids, n);
    break;
  case JW_CONTROL_KILL_JOB:
    reply = control_kill_job(m, req, n);
    break;
  default:
    reply = refusal(req, "bad_request", "unknown request");
    break;
  }
  free(ids);
  return reply;
}

/* A JW_CTRL_REQUEST packet: answers the request in the slot if the packet
 * is the one posted for it (a withdrawn request's packet is ignored). */
int jw__mon_on_control_packet(jw_monitor_t *m, uint32_t gen) {
  jw_control_request_t req;
  json_t *reply;
  jw__mutex_lock(&m->ctl_lock);
  if (m->ctl_state != SLOT_POSTED || m->ctl_gen != gen) {
    /* A withdrawn request's packet (its generation was issued) is
     * ignored; a generation never issued was not posted by jobwarden. */
    int forged = gen == 0 || gen > m->ctl_gen;
    jw__mutex_unlock(&m->ctl_lock);
    return forged ? -1 : 0;
  }
  req = m->ctl_req;
  m->ctl_state = SLOT_TAKEN;
  jw__mutex_unlock(&m->ctl_lock);
  reply = on_control(m, &req);
  jw__mutex_lock(&m->ctl_lock);
  if (m->ctl_state == SLOT_TAKEN) {
    m->ctl_reply = reply;
    m->ctl_state = SLOT_ANSWERED;
    /* Should the signal fail, the control thread still finds the answer
     * in the slot when its wait times out. */
    if (!SetEvent(m->ctl_answered))
      m->ctl_signal_error = GetLastError();
  } else { /* SLOT_ABANDONED */
    json_decref(reply);
    m->ctl_state = SLOT_IDLE;
  }
  jw__mutex_unlock(&m->ctl_lock);
  return 0;
}

int jw_monitor_control(jw_monitor_t *m, const jw_control_request_t *req, DWORD timeout_ms,
                       json_t **reply) {
  uint32_t gen;
  int rc = JW_ETIMEDOUT;
  *reply = NULL;
  jw__mutex_lock(&m->ctl_lock);
  if (m->ctl_state != SLOT_IDLE) {
    /* An abandoned request is still being answered. */
    jw__mutex_unlock(&m->ctl_lock);
    return JW_ETIMEDOUT;
  }
  gen = ++m->ctl_gen;
  m->ctl_req = *req;
  m->ctl_state = SLOT_POSTED;
  jw__mutex_unlock(&m->ctl_lock);
  /* ResetEvent clears the signal of an earlier request's late answer. */
  if (!ResetEvent(m->ctl_answered) ||
      !PostQueuedCompletionStatus(m->job->port, gen, m->job->key_control,
                                  (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_REQUEST)) {
    jw__mutex_lock(&m->ctl_lock);
    m->ctl_state = SLOT_IDLE;
    jw__mutex_unlock(&m->ctl_lock);
    return JW_ESYS;
  }
  /* The slot's state says what happened, whatever the wait returns. */
  WaitForSingleObject(m->ctl_answered, timeout_ms);
  jw__mutex_lock(&m->ctl_lock);
  if (m->ctl_state == SLOT_ANSWERED) {
    *reply = m->ctl_reply;
    m->ctl_reply = NULL;
    m->ctl_state = SLOT_IDLE;
    rc = *reply != NULL ? 0 : JW_ENOMEM;
  } else if (m->ctl_state == SLOT_POSTED) {
    m->ctl_state = SLOT_IDLE; /* withdrawn: the monitor skips its packet */
  } else if (m->ctl_state == SLOT_TAKEN) {
    m->ctl_state = SLOT_ABANDONED; /* the monitor drops the answer */
  }
  jw__mutex_unlock(&m->ctl_lock);
  return rc;
}

const char *jw_monitor_control_kill(jw_monitor_t *m, int *job) {
  LONG k;
  MemoryBarrier();
  k = m->ctl_killed;
  if (job != NULL)
    *job = k == 2;
  return k != 0 ? m->ctl_kill_text : NULL;
}

HANDLE jw_monitor_done_event(jw_monitor_t *m) {
  return m->done;
}

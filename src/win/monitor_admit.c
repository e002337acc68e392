/* Admission: the one path by which a process becomes known to the monitor,
 * whatever saw it first (the port's NEW_PROCESS, the control channel's
 * catch-up, the job's process id list, a limit or exit message naming an
 * unknown pid): check that the kernel says it is a member of the job,
 * track it, enrich it, run the monitor rules, emit. A leaf: nothing here
 * calls back into the loop. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rule_catalog.h"
#include "win/monitor_int.h"

/* ------------------------------------------------------------------------ */
/* Monitor rules                                                            */
/* ------------------------------------------------------------------------ */

jw_rule_action_t jw__mon_effective(jw_rule_action_t a, jw_rule_action_t def) {
  return a == JW_ACTION_DEFAULT ? def : a;
}

/* The file name part of the image, UTF-8, inside t->image; NULL when the
 * image is unknown. */
static const char *image_file_name(const tracked_t *t) {
  const char *p, *name;
  if (t->image == NULL)
    return NULL;
  for (name = p = t->image; *p; p++)
    if (*p == '\\' || *p == '/')
      name = p + 1;
  return name;
}

/* What is known of t's image for the lists (jw__image_list_match): NULL
 * for a fact not known (yet, or at all), "" for one known to be absent. A
 * signer counts only when the signature verified. */
static void image_facts(const tracked_t *t, jw_image_facts_t *f) {
  const jw__imageid_t *r = t->id_state == ID_KNOWN || t->id_state == ID_FAILED ? t->id : NULL;
  const char *why;
  memset(f, 0, sizeof(*f));
  f->file_name = image_file_name(t);
  if (r == NULL)
    return;
  if (r->has_sha256)
    f->sha256 = r->sha256;
  /* The file was read: a missing version resource is an absent name. It
   * is read over the hashing cap too (a few small reads), so an image too
   * large to hash still has its OriginalFilename, or is known to lack one. */
  if (r->has_pe)
    f->original_file_name = r->original_file_name;
  else if (t->id_state == ID_KNOWN &&
           (r->has_sha256 || ((why = jw__imageid_unavailable(r, "pe")) != NULL &&
                              strcmp(why, "image has no version resource") == 0)))
    f->original_file_name = "";
  if (r->has_code_signature)
    f->signer = r->code_signature.trusted ? r->code_signature.subject_name : "";
}

/* Which identity fact an undecided entry of the lists waits for, and why
 * it is not known: the first entry whose fact is NULL names its field
 * ("hash", "pe", "code_signature") and the reason t's identity gives for
 * it (borrowed from t->id; NULL when there is none to give). */
static void identity_gap(const jw_policy_t *p, const jw_image_facts_t *f, const tracked_t *t,
                         verdict_t *v) {
  static const struct {
    const char *prefix, *field;
  } kinds[] = {{"sha256:", "hash"}, {"original_file_name:", "pe"}, {"signer:", "code_signature"}};
  int list, i, k;
  for (list = 0; list < 2; list++) {
    const char(*names)[JW_IMAGE_NAME_MAX] = list == 0 ? p->deny_images : p->allow_images;
    int n = list == 0 ? p->n_deny_images : p->n_allow_images;
    if (n > JW_POLICY_MAX_IMAGES)
      n = JW_POLICY_MAX_IMAGES;
    for (i = 0; i < n; i++) {
      for (k = 0; k < 3; k++) {
        const char *fact = k == 0 ? f->sha256 : k == 1 ? f->original_file_name : f->signer;
        if (fact != NULL || strncmp(names[i], kinds[k].prefix, strlen(kinds[k].prefix)) != 0)
          continue;
        v->gap_field = kinds[k].field;
        v->gap_reason = t->id != NULL ? jw__imageid_unavailable(t->id, kinds[k].field) : NULL;
        return;
      }
    }
  }
}

/* The image lists for t. Returns 1 with *v filled when t breaks one, 0
 * when it does not, -1 when the answer needs an identity fact that is not
 * known yet (only while its identity is pending and !final). A list never
 * fails open: an image that cannot be read, or whose identity a list needs
 * and cannot be had, breaks image_unknown with the lists' action. */
static int image_verdict(jw_monitor_t *m, const tracked_t *t, int final, verdict_t *v) {
  const jw_policy_t *p = &m->job->policy;
  jw_image_facts_t f;
  jw_image_match_t deny = JW_IMAGE_NO_MATCH, allow = JW_IMAGE_MATCH;
  const char *matched = NULL;
  memset(v, 0, sizeof(*v));
  if (p->n_deny_images == 0 && p->n_allow_images == 0)
    return 0;
  v->action = jw__mon_effective(p->image_action, JW_ACTION_KILL_PROCESS);
  image_facts(t, &f);
  if (t->image == NULL || t->image_truncated || f.file_name == NULL || f.file_name[0] == '\0') {
    v->rule = "image_unknown";
    return 1;
  }
  if (p->n_deny_images > 0)
    deny = jw__image_list_match(p->deny_images,
                                p->n_deny_images < JW_POLICY_MAX_IMAGES ? p->n_deny_images
                                                                        : JW_POLICY_MAX_IMAGES,
                                &f, &matched);
  if (deny == JW_IMAGE_MATCH) {
    v->rule = "image_denied";
    v->list = "deny";
    v->matched = matched;
    return 1;
  }
  if (p->n_allow_images > 0)
    allow = jw__image_list_match(p->allow_images,
                                 p->n_allow_images < JW_POLICY_MAX_IMAGES ? p->n_allow_images
                                                                          : JW_POLICY_MAX_IMAGES,
                                 &f, NULL);
  if (allow == JW_IMAGE_NO_MATCH) {
    v->rule = "image_not_allowed";
    v->list = "allow";
    return 1;
  }
  if (deny == JW_IMAGE_NO_MATCH && allow == JW_IMAGE_MATCH)
    return 0;
  /* An entry needs a fact of the identity. */
  if (!final && t->id_state == ID_PENDING)
    return -1;
  v->rule = "image_unknown";
  v->why = "its executable identity, which an image list entry needs, could not be had";
  identity_gap(p, &f, t, v);
  return 1;
}

/* The event of one broken rule at a NEW_PROCESS. */
static void emit_verdict(jw_monitor_t *m, const tracked_t *t, const verdict_t *v,
                         const outcome_t *o) {
  jw_event_t ev;
  char say[160];
  const char *action = jw__mon_outcome_action(v->action, o, say, sizeof(say));
  /* The active-process limit is the kernel's to enforce: when it let the
   * process pass and the policy asks only for a report, the limit was
   * not enforced, which is more than "reported". */
  if (strcmp(v->rule, "active_processes") == 0 && v->action == JW_ACTION_REPORT) {
    action = "not_enforced";
    snprintf(say, sizeof(say), "nothing stopped it (action report)");
  }
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, v->rule, action, "monitor", JW_SEV_HIGH);
  if (v->late)
    ev.source = "jobwarden"; /* decided on the identity the worker computed */
  else if (strcmp(t->start_source, "port") == 0)
    jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NEW_PROCESS);
  else
    ev.source = t->start_source;
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  /* An interpreter stopped by an image list: its ATT&CK technique. */
  if (strcmp(v->rule, "image_denied") == 0 || strcmp(v->rule, "image_not_allowed") == 0)
    ev.tags[0] = jw_rule_image_tag(image_file_name(t));
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
  else if (strcmp(v->rule, "image_unknown") == 0 && v->why != NULL && v->gap_reason != NULL)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu): %s (%s: %.240s), so it cannot be checked against "
             "the image lists: %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, v->why, v->gap_field,
             v->gap_reason, say);
  else if (strcmp(v->rule, "image_unknown") == 0 && v->why != NULL)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu): %s, so it cannot be checked against the image "
             "lists: %s",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, v->why, say);
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
  ev.extra = jw__mon_rule_extra(v, o, t);
  jw__mon_emit(m, &ev);
}

void jw__mon_image_decide(jw_monitor_t *m, tracked_t *t, int final) {
  verdict_t v;
  outcome_t o;
  t->image_rules_pending = 0;
  if (image_verdict(m, t, final, &v) <= 0)
    return;
  v.late = 1;
  memset(&o, 0, sizeof(o));
  if (v.action == JW_ACTION_KILL_JOB)
    jw__mon_kill_job_for(m, v.rule, &o);
  else if (v.action == JW_ACTION_KILL_PROCESS)
    jw__mon_kill_process_for(m, t, v.rule, &o);
  emit_verdict(m, t, &v, &o);
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

/* The monitor rules for a process just admitted, their actions, and its
 * events: its process_start, then one violation per broken rule. */
static void judge(jw_monitor_t *m, tracked_t *t) {
  const jw_policy_t *p = &m->job->policy;
  DWORD pid = t->pid;
  jw_event_t ev;
  uint32_t limit = p->active_processes, active;
  verdict_t verdicts[3];
  int n = 0, i, over, decider = -1;
  int reconciled = strcmp(t->start_source, "port") != 0;
  outcome_t o;

  active = jw__mon_active_count(m);
  /* The monitor's count can run ahead of the kernel's when an exit is still
   * queued behind this message: the kernel's count confirms it. */
  over = limit != 0 && active > limit && kernel_active(m, active) > limit;

  /* The rules this process breaks, and the strongest action among them. */
  {
    int img = image_verdict(m, t, 0, &verdicts[n]);
    if (img > 0)
      n++;
    else if (img < 0)
      t->image_rules_pending = 1; /* decided when its identity arrives */
  }
  /* Its own ordinal: other members may have been admitted while its
   * facts were read (monitor_setup.c). */
  if (p->max_total_processes != 0 && t->seen_no > p->max_total_processes) {
    verdict_t *v = &verdicts[n++];
    memset(v, 0, sizeof(*v));
    v->rule = "total_processes";
    v->action = jw__mon_effective(p->total_processes_action, JW_ACTION_KILL_PROCESS);
    v->has_limit = 1;
    v->limit_name = "total_processes";
    v->limit_unit = "processes";
    v->configured = p->max_total_processes;
    v->observed = t->seen_no;
  }
  /* The kernel should have refused this process (it does on Windows, and
   * then no NEW_PROCESS arrives); this kernel did not. That is a violation
   * of the active-process limit whatever the rule's action: with `report`
   * nobody stops it (not_enforced), otherwise the monitor acts. */
  if (over) {
    verdict_t *v = &verdicts[n++];
    memset(v, 0, sizeof(*v));
    v->rule = "active_processes";
    v->action = jw__mon_effective(p->active_processes_action, JW_ACTION_REPORT);
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
    jw__mon_kill_job_for(m, verdicts[decider].rule, &o);
  else if (decider >= 0 && verdicts[decider].action == JW_ACTION_KILL_PROCESS)
    jw__mon_kill_process_for(m, t, verdicts[decider].rule, &o);

  /* Every process of the job gets its start event, whatever the policy
   * says of it; a decision against it is a violation of its own, after. */
  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", NULL, JW_SEV_INFO);
  if (reconciled)
    ev.source = t->start_source;
  else
    jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NEW_PROCESS);
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  ev.time_us = jw__mon_filetime_us(t->create_time);
  if (reconciled)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) is in the job although the port never "
             "announced it",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid);
  else if (n > 0)
    snprintf(ev.message, sizeof(ev.message),
             "child process %.300s (pid %lu, parent %lu) started; it breaks the rule %s (next "
             "event)",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid,
             verdicts[0].rule);
  else
    snprintf(ev.message, sizeof(ev.message), "child process %.300s (pid %lu, parent %lu) started",
             jw__mon_image_or_unknown(t), (unsigned long)pid, (unsigned long)t->ppid);
  jw__mon_emit(m, &ev);
  for (i = 0; i < n; i++)
    emit_verdict(m, t, &verdicts[i], &o);
}

/* ------------------------------------------------------------------------ */
/* Admission                                                                */
/* ------------------------------------------------------------------------ */

static int listed(jw_monitor_t *m, DWORD pid) {
  size_t n = 0, i;
  const DWORD *ids = jw__mon_job_pids(m, &n);
  for (i = 0; ids != NULL && i < n; i++)
    if (ids[i] == pid)
      return 1;
  return 0;
}

/* Members the job lists that the monitor does not know yet (their
 * NEW_PROCESS may still be queued): each accounts for one of the kernel's
 * processes without a record. */
static uint32_t untracked_listed(jw_monitor_t *m) {
  size_t n = 0, i;
  uint32_t k = 0;
  const DWORD *ids = jw__mon_job_pids(m, &n);
  for (i = 0; ids != NULL && i < n; i++)
    k += !jw__mon_known(m, ids[i], NULL);
  return k;
}

/* Whether the kernel says pid is a member of the job. *h gets an open
 * handle when one could be opened (the caller owns it). A process that is
 * already gone (a real short-lived member whose NEW_PROCESS comes late)
 * cannot be asked: it is believed only while the job's accounting counts
 * more processes than the monitor knows of (TotalProcesses > processes
 * seen + members listed but not yet known), so a forged pid never gets a
 * record the kernel's count does not leave room for. */
static int is_member(jw_monitor_t *m, DWORD pid, HANDLE *h, char *why, size_t why_size) {
  BOOL in = FALSE;
  DWORD e;
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  *h = pid != 0 ? jw__mon_open_process(pid) : NULL;
  if (*h != NULL) {
    if (IsProcessInJob(*h, m->job->job, &in)) {
      if (in)
        return 1;
      /* An ended member may already be out of the job: judged as gone. */
      if (!jw__proc_ended(*h)) {
        snprintf(why, why_size, "IsProcessInJob: pid %lu is a running process outside the job",
                 (unsigned long)pid);
        return 0;
      }
    } else if (listed(m, pid)) {
      return 1; /* the handle cannot ask (limited rights); the job's list can */
    }
    e = ERROR_INVALID_PARAMETER;
  } else {
    e = pid != 0 ? GetLastError() : ERROR_INVALID_PARAMETER;
    if (pid != 0 && listed(m, pid))
      return 1; /* a member jobwarden cannot open (a protected process) */
  }
  memset(&acc, 0, sizeof(acc));
  if (!QueryInformationJobObject(m->job->job, JobObjectBasicAccountingInformation, &acc,
                                 sizeof(acc), NULL)) {
    DWORD qe = GetLastError();
    snprintf(why, why_size,
             "pid %lu cannot be opened (Win32 error %lu) and the job's accounting cannot be read "
             "(Win32 error %lu)",
             (unsigned long)pid, (unsigned long)e, (unsigned long)qe);
    return 0;
  }
  {
    uint64_t known = (uint64_t)m->stats.processes_seen + untracked_listed(m);
    if (acc.TotalProcesses > known)
      return 1;
    snprintf(why, why_size,
             "pid %lu is not in the job (OpenProcess: Win32 error %lu; not in the job's process "
             "id list; the job's accounting counts %lu process(es) in its lifetime, all of them "
             "known)",
             (unsigned long)pid, (unsigned long)e, (unsigned long)acc.TotalProcesses);
  }
  return 0;
}

static jw__synthetic_fn synthetic_hook;

void jw__monitor_synthetic_hook(jw__synthetic_fn fn) {
  synthetic_hook = fn;
}

/* A benchmark's pid (jw__monitor_synthetic_hook): tracked with the hook's
 * facts, as admission would with the kernel's. */
static tracked_t *admit_synthetic(jw_monitor_t *m, DWORD pid, const jw__synthetic_proc_t *f,
                                  admit_source_t src) {
  tracked_t *t = jw__mon_add_proc(m, pid);
  if (t == NULL)
    return NULL;
  t->start_source = src == ADMIT_PORT || src == ADMIT_CONTROL ? "port" : "reconciled";
  t->has_parent = 1;
  t->ppid = f->ppid;
  t->create_time = f->create_time;
  t->image = f->image != NULL ? strdup(f->image) : NULL;
  t->open_error = ERROR_INVALID_PARAMETER;
  t->seen_no = m->stats.processes_seen;
  jw__mon_enrich_more(m, t);
  jw__mon_identity_request(m, t);
  judge(m, t);
  return t;
}

/* The monitor thread's time in one admission (stats). */
static void admit_timed(jw_monitor_t *m, const LARGE_INTEGER *t0) {
  LARGE_INTEGER t1, f;
  uint64_t us;
  QueryPerformanceCounter(&t1);
  QueryPerformanceFrequency(&f);
  us =
      f.QuadPart > 0 ? (uint64_t)(t1.QuadPart - t0->QuadPart) * 1000000u / (uint64_t)f.QuadPart : 0;
  m->stats.admissions++;
  m->stats.admit_us_total += us;
  if (us > m->stats.admit_us_max)
    m->stats.admit_us_max = us;
}

tracked_t *jw__mon_admit(jw_monitor_t *m, DWORD pid, admit_source_t src, int *refused, char *why,
                         size_t why_size) {
  tracked_t *t = NULL;
  HANDLE h = NULL;
  LARGE_INTEGER t0;
  jw__synthetic_proc_t syn;
  *refused = 0;
  /* The root (announced by jw_monitor_set_root), or a repeat; NULL (not
   * refused) when it is a process long exited whose entry was freed. */
  if (jw__mon_known(m, pid, &t))
    return t;
  if (synthetic_hook != NULL && synthetic_hook(pid, &syn))
    return admit_synthetic(m, pid, &syn, src);
  QueryPerformanceCounter(&t0);
  if (!is_member(m, pid, &h, why, why_size)) {
    if (h != NULL)
      CloseHandle(h);
    *refused = 1;
    return NULL;
  }
  t = jw__mon_add_proc(m, pid);
  if (t == NULL) {
    if (h != NULL)
      CloseHandle(h);
    return NULL;
  }
  t->h = h; /* owner: the monitor, from here on */
  t->start_source = src == ADMIT_PORT || src == ADMIT_CONTROL ? "port" : "reconciled";
  t->admit_src = src;
  t->seen_no = m->stats.processes_seen;
  /* Its facts now, or from the setup worker (the rest then follows in
   * jw__mon_admit_finish). */
  jw__mon_setup_begin(m, t);
  admit_timed(m, &t0);
  return t;
}

void jw__mon_admit_finish(jw_monitor_t *m, tracked_t *t) {
  jw__mon_link_parent(m, t);
  /* Linked while the parent's own setup was pending (monitor_setup.c
   * held it): the parent's creation time is known only now. */
  if (t->parent != NULL)
    t->parent_create_time = t->parent->create_time;
  if (t->admit_src == ADMIT_ID_LIST || t->admit_src == ADMIT_MESSAGE)
    jw__mon_note_lost(m, "JOB_OBJECT_MSG_NEW_PROCESS", t, t->pid,
                      t->admit_src == ADMIT_ID_LIST ? "process_id_list" : "job_message", 1);
  /* Its executable identity: in the start event when cached, else later. */
  jw__mon_identity_request(m, t);
  jw__mon_watch_exit(m, t);
  judge(m, t);
}

/* An escape is described like a member (the same reads, the same parent
 * link) but kept out of the table: the kernel's check for it is
 * jw__escape_examine (IsProcessInJob false, created in its parent's life),
 * its rule and event are monitor_escape.c's. */
void jw__mon_admit_outside(jw_monitor_t *m, tracked_t *t, DWORD pid, HANDLE h, const char *source) {
  static const char not_ready[] = "not read: the process was still being created when the "
                                  "escape was found (jobwarden acts on an escape at once)";
  memset(t, 0, sizeof(*t));
  t->pid = pid;
  t->h = h; /* owner: t's holder (monitor_escape.c) */
  t->start_source = source;
  /* Each fact asked once: an escape is acted on now, not after retries
   * (and the monitor never waits in a read). What did not answer yet is
   * named. */
  if (jw__mon_read_facts(t, JW__READ_ASK) == JW__FACTS_WAIT) {
    if (t->cmdline == NULL && t->cmdline_why[0] == 0)
      jw__strlcpy(t->cmdline_why, not_ready, sizeof(t->cmdline_why));
    if (t->user_sid == NULL && t->user_why[0] == 0)
      jw__strlcpy(t->user_why, not_ready, sizeof(t->user_why));
    if (t->image == NULL && t->image_why[0] == 0)
      jw__strlcpy(t->image_why, not_ready, sizeof(t->image_why));
  }
  if (!jw__mon_user_name_cached(m, t)) {
    free(t->sid_bin); /* a user not named before: its SID without a name */
    t->sid_bin = NULL;
  }
  jw__mon_link_parent(m, t);
}

void jw__mon_on_new_process_message(jw_monitor_t *m, DWORD pid) {
  char why[240];
  int refused = 0;
  if (jw__mon_admit(m, pid, ADMIT_PORT, &refused, why, sizeof(why)) == NULL && refused)
    jw__mon_tampering(m, "job", 0, JOB_OBJECT_MSG_NEW_PROCESS, pid, "not_a_member", why);
}

/* Limit hits and their measured values (docs/events.md, "Measured values
 * of limit hits"), on the monitor thread: each kernel limit message becomes
 * a violation with the configured value and, where Windows gives a true
 * one, the measured value; the warnings of the notification limits
 * jobwarden set below the hard job limits. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win/monitor_int.h"

#include <psapi.h>

/* ------------------------------------------------------------------------ */
/* Limit hits and their measured values                                     */
/* ------------------------------------------------------------------------ */

#define Q_VIOLATION  "QueryInformationJobObject(JobObjectLimitViolationInformation)"
#define Q_ACCOUNTING "QueryInformationJobObject(JobObjectBasicAccountingInformation)"
#define JOB_WARNINGS (JOB_OBJECT_LIMIT_JOB_MEMORY | JOB_OBJECT_LIMIT_JOB_TIME)

static jw__process_memory_fn process_memory_hook;
static jw__process_times_fn process_times_hook;

void jw__monitor_measure_hooks(jw__process_memory_fn memory, jw__process_times_fn times) {
  process_memory_hook = memory;
  process_times_hook = times;
}

/* What Windows offered at a limit hit: a value, or why there is none. A
 * value that cannot be true (a 0 where the hit proves more, or numbers
 * that are jobwarden's own) counts as none: never a made-up number. */
typedef struct measure_s {
  int ok;
  uint64_t value;
  const char *source; /* static: the field that holds the value */
  const char *where;  /* static: the call that failed or answered nonsense, or NULL */
  int has_error;
  DWORD error; /* its Win32 error, with has_error */
  char why[240];
} measure_t;

#if defined(__GNUC__)
#define MEASURE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MEASURE_PRINTF(f, a)
#endif

static void unmeasured(measure_t *mv, const char *where, int has_error, DWORD error,
                       const char *fmt, ...) MEASURE_PRINTF(5, 6);
static void unmeasured(measure_t *mv, const char *where, int has_error, DWORD error,
                       const char *fmt, ...) {
  va_list ap;
  memset(mv, 0, sizeof(*mv));
  mv->where = where;
  mv->has_error = has_error;
  mv->error = error;
  va_start(ap, fmt);
  vsnprintf(mv->why, sizeof(mv->why), fmt, ap);
  va_end(ap);
}

/* A failed call: its name, error code and the system's text for it. */
static void call_failed(measure_t *mv, const char *where, DWORD e) {
  char text[128];
  jw__sys_error_text(e, text, sizeof(text));
  unmeasured(mv, where, 1, e, "%s failed with Win32 error %lu (%s)", where, (unsigned long)e, text);
}

static void measured(measure_t *mv, uint64_t value, const char *source) {
  memset(mv, 0, sizeof(*mv));
  mv->ok = 1;
  mv->value = value;
  mv->source = source;
}

static void apply_measure(jw_event_t *ev, const measure_t *mv) {
  if (mv->ok) {
    ev->has_limit_observed = 1;
    ev->limit_observed = mv->value;
    ev->limit_observed_source = mv->source;
    return;
  }
  jw__strlcpy(ev->limit_unavailable, mv->why, sizeof(ev->limit_unavailable));
  ev->limit_unavailable_where = mv->where;
  ev->has_limit_unavailable_error = mv->has_error;
  ev->limit_unavailable_error = mv->error;
}

/* Windows' record of the job's exceeded notification limits. */
static int query_violation(jw_monitor_t *m, JOBOBJECT_LIMIT_VIOLATION_INFORMATION *v,
                           measure_t *mv) {
  memset(v, 0, sizeof(*v));
  if (jw__job_query_info(m->job->job, JobObjectLimitViolationInformation, v, sizeof(*v), NULL))
    return 1;
  call_failed(mv, Q_VIOLATION, GetLastError());
  return 0;
}

/* The value the violation record holds for one limit (JOB_MEMORY or
 * JOB_TIME); Windows fills it only when ViolationLimitFlags names it. */
static void violation_value(const JOBOBJECT_LIMIT_VIOLATION_INFORMATION *v, DWORD flag,
                            measure_t *mv) {
  int memory = flag == JOB_OBJECT_LIMIT_JOB_MEMORY;
  const char *what = memory ? "job memory" : "job CPU time";
  if (!(v->ViolationLimitFlags & flag)) {
    unmeasured(mv, Q_VIOLATION, 0, 0,
               "Windows' limit-violation record does not flag the %s limit (ViolationLimitFlags "
               "0x%08lX), so it holds no measurement of it",
               what, (unsigned long)v->ViolationLimitFlags);
    return;
  }
  if (memory ? v->JobMemory == 0 : v->PerJobUserTime.QuadPart <= 0) {
    unmeasured(mv, Q_VIOLATION, 0, 0,
               "Windows' limit-violation record flags the %s limit but reports %s 0, which "
               "cannot be a crossed limit",
               what, memory ? "JobMemory" : "PerJobUserTime");
    return;
  }
  if (memory)
    measured(mv, v->JobMemory, "JobObjectLimitViolationInformation.JobMemory");
  else
    measured(mv, (uint64_t)v->PerJobUserTime.QuadPart / 10000u,
             "JobObjectLimitViolationInformation.PerJobUserTime");
}

static void measure_violation(jw_monitor_t *m, DWORD flag, measure_t *mv) {
  JOBOBJECT_LIMIT_VIOLATION_INFORMATION v;
  if (query_violation(m, &v, mv))
    violation_value(&v, flag, mv);
}

/* The job's accounting: its user-mode CPU time (END_OF_JOB_TIME: what the
 * limit counts) or its active processes (ACTIVE_PROCESS_LIMIT). */
static void measure_accounting(jw_monitor_t *m, int cpu, measure_t *mv) {
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc;
  /* Read once per wake-up: every message of the batch was taken from the
   * port before this read, so the first read is as late as any would be
   * for all of them (a burst of limit hits then costs one query per
   * batch, not one per packet: docs/performance.md, "Latency"). */
  if (m->acc_seen_valid) {
    acc = m->acc_seen;
    m->stats.limit_reads_shared++;
  } else {
    memset(&acc, 0, sizeof(acc));
    if (!jw__job_query_info(m->job->job, JobObjectBasicAccountingInformation, &acc, sizeof(acc),
                            NULL)) {
      call_failed(mv, Q_ACCOUNTING, GetLastError());
      return;
    }
    m->stats.limit_reads++;
    m->acc_seen = acc;
    m->acc_seen_valid = 1;
  }
  if (!cpu) {
    measured(mv, acc.ActiveProcesses, "JobObjectBasicAccountingInformation.ActiveProcesses");
  } else if (acc.TotalUserTime.QuadPart <= 0) {
    unmeasured(mv, Q_ACCOUNTING, 0, 0,
               "the job's accounting reports %lld ms of user-mode CPU time, which cannot be "
               "true of a job that used up its CPU time limit (Wine does not account it)",
               (long long)(acc.TotalUserTime.QuadPart / 10000));
  } else {
    measured(mv, (uint64_t)acc.TotalUserTime.QuadPart / 10000u,
             "JobObjectBasicAccountingInformation.TotalUserTime");
  }
}

/* Without the monitor's handle the pid may already name another process:
 * nothing is read through it. */
static int process_unreadable(const tracked_t *t, measure_t *mv) {
  if (t != NULL && t->h != NULL)
    return 0;
  if (t != NULL && t->open_error != 0)
    unmeasured(mv, "OpenProcess", 1, t->open_error,
               "the process could not be opened (Win32 error %lu), so its own values cannot be "
               "read without risking another process's under a reused pid",
               (unsigned long)t->open_error);
  else
    unmeasured(mv, NULL, 0, 0, "the process is not known to the monitor, so it cannot be read");
  return 1;
}

/* A process's commit (PROCESS_MEMORY_LIMIT), through the monitor's handle
 * (jw__mon_memory_counters). */
static void measure_process_commit(const tracked_t *t, measure_t *mv) {
  PROCESS_MEMORY_COUNTERS_EX pmc;
  const char *where = NULL;
  DWORD e = 0;
  if (process_unreadable(t, mv))
    return;
  if (jw__mon_memory_counters(t, process_memory_hook, &pmc, &where, &e) != 0)
    call_failed(mv, where, e);
  else if (pmc.PrivateUsage == 0)
    unmeasured(mv, "GetProcessMemoryInfo", 0, 0,
               "GetProcessMemoryInfo reports a commit (PrivateUsage) of 0 bytes, which no "
               "process that reached its memory limit has (Wine does not report it)");
  else
    measured(mv, pmc.PrivateUsage, "GetProcessMemoryInfo.PrivateUsage");
}

/* A process's user-mode CPU time (END_OF_PROCESS_TIME). Some kernels (Wine)
 * answer GetProcessTimes on another process with the caller's own times:
 * jobwarden reads its own times just before and after, and an answer that
 * falls between them in both user and kernel time is not believed. */
static void measure_process_cpu(const tracked_t *t, measure_t *mv) {
  DWORD e;
  uint64_t user, kernel;
  int rc;
  if (process_unreadable(t, mv))
    return;
  rc = jw__proc_cpu_times(t->h, process_times_hook, &user, &kernel, NULL, &e);
  if (rc == JW_CPU_FAILED || rc == JW_CPU_UNCHECKED) {
    call_failed(mv, "GetProcessTimes", e);
  } else if (rc == JW_CPU_OWN) {
    unmeasured(mv, "GetProcessTimes", 0, 0,
               "GetProcessTimes answered with jobwarden's own CPU times (%llu ms user, %llu ms "
               "kernel), not the process's (Wine does this for another process)",
               (unsigned long long)(user / 10000u), (unsigned long long)(kernel / 10000u));
  } else if (user == 0) {
    unmeasured(mv, "GetProcessTimes", 0, 0,
               "GetProcessTimes reports 0 ms of user-mode CPU time, which cannot be true of a "
               "process that used up its CPU time limit");
  } else {
    measured(mv, user / 10000u, "GetProcessTimes.UserTime");
  }
}

/* The process a limit message names, through admission. *stop set when
 * the message is done with: the kernel does not confirm it as a member
 * (NULL), or it waits for the member's setup (deferred, replayed after its
 * start). */
static tracked_t *limit_process(jw_monitor_t *m, DWORD msg, DWORD pid, int *stop) {
  char why[240];
  tracked_t *t = jw__mon_admit(m, pid, ADMIT_MESSAGE, stop, why, sizeof(why));
  if (t == NULL && *stop)
    jw__mon_tampering(m, "job", 0, msg, pid, "not_a_member", why);
  else if (t != NULL && jw__mon_setup_defer(m, t, JW_DEFER_JOB, msg, pid))
    *stop = 1;
  return t;
}

/* A limit message for a limit jobwarden did not set cannot be the
 * kernel's: monitor_tampering, and 1. */
static int limit_not_set(jw_monitor_t *m, DWORD msg, ULONG_PTR value, const char *rule) {
  char why[160];
  snprintf(why, sizeof(why), "the policy sets no %s limit, so the kernel cannot have enforced one",
           rule);
  jw__mon_tampering(m, "job", 0, msg, value, "limit_not_set", why);
  return 1;
}

/* What the message's own limit measures, read the moment it arrives. */
static void measure_limit(jw_monitor_t *m, DWORD msg, const tracked_t *t, measure_t *mv) {
  switch (msg) {
  case JOB_OBJECT_MSG_JOB_MEMORY_LIMIT:
    measure_violation(m, JOB_OBJECT_LIMIT_JOB_MEMORY, mv);
    break;
  case JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT:
    measure_process_commit(t, mv);
    break;
  case JOB_OBJECT_MSG_END_OF_JOB_TIME:
    measure_accounting(m, 1, mv);
    break;
  case JOB_OBJECT_MSG_END_OF_PROCESS_TIME:
    measure_process_cpu(t, mv);
    break;
  case JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT:
    measure_accounting(m, 0, mv);
    break;
  default:
    unmeasured(mv, NULL, 0, 0, "Windows offers no documented query of a job's CPU cycle count");
    break;
  }
}

static void describe_measure(const measure_t *mv, const char *unit, char *buf, size_t size) {
  if (mv->ok)
    snprintf(buf, size, " (observed %llu %s)", (unsigned long long)mv->value, unit);
  else
    snprintf(buf, size, " (observed value unavailable)");
}

/* A limit message: the kernel enforced a limit of the policy (or one an
 * enclosing job set). The event carries what Windows measured at that
 * moment, or why it could not. */
void jw__mon_on_limit(jw_monitor_t *m, DWORD msg, DWORD pid, int has_pid, const char *rule,
                      const char *action, const char *unit, uint64_t configured, jw_severity_t sev,
                      const char *what) {
  jw_event_t ev;
  tracked_t *t = NULL;
  measure_t mv;
  char seen[96];
  int refused = 0;
  /* Every limit jobwarden sets has a configured value; a cycle-time
   * limit it never sets. */
  if (configured == 0) {
    limit_not_set(m, msg, has_pid ? pid : 0, rule);
    return;
  }
  if (has_pid) {
    t = limit_process(m, msg, pid, &refused);
    if (refused)
      return;
  }
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, rule, action, "kernel", sev);
  jw__mon_ev_job_message(&ev, msg);
  ev.has_limit = 1;
  ev.limit_name = rule;
  ev.limit_unit = unit;
  ev.limit_configured = configured;
  if (has_pid) {
    if (t != NULL) {
      ev.has_process = 1;
      jw__mon_fill_process(m, t, &ev.process);
    }
  }
  measure_limit(m, msg, t, &mv);
  apply_measure(&ev, &mv);
  describe_measure(&mv, unit, seen, sizeof(seen));
  if (has_pid)
    snprintf(ev.message, sizeof(ev.message), "%s: process %.300s (pid %lu)%s", what,
             t ? jw__mon_image_or_unknown(t) : "(unknown)", (unsigned long)pid, seen);
  else
    snprintf(ev.message, sizeof(ev.message), "%s%s", what, seen);
  jw__mon_emit(m, &ev);
}

/* The warning of one notification limit jobwarden set below a hard job
 * limit (memory, else CPU time). */
static void emit_warning(jw_monitor_t *m, tracked_t *t, int memory, const measure_t *mv) {
  const jw_policy_t *p = &m->job->policy;
  const char *unit = memory ? "bytes" : "ms";
  jw_event_t ev;
  char seen[96];
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, memory ? "job_memory_warning" : "job_cpu_time_warning",
                  "observed", "kernel", JW_SEV_MEDIUM);
  jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NOTIFICATION_LIMIT);
  ev.has_limit = 1;
  ev.limit_name = ev.rule;
  ev.limit_unit = unit;
  ev.limit_configured = memory ? m->job->notify_job_memory : m->job->notify_job_time_ms;
  ev.limit_hard = memory ? p->job_memory : p->job_time_ms;
  apply_measure(&ev, mv);
  if (t != NULL) {
    ev.has_process = 1;
    jw__mon_fill_process(m, t, &ev.process);
  }
  describe_measure(mv, unit, seen, sizeof(seen));
  snprintf(ev.message, sizeof(ev.message),
           "the job's %s passed the warning threshold of %llu %s; the hard limit of %llu %s "
           "comes next%s",
           memory ? "committed memory" : "user-mode CPU time",
           (unsigned long long)ev.limit_configured, unit, (unsigned long long)ev.limit_hard, unit,
           seen);
  jw__mon_emit(m, &ev);
}

/* NOTIFICATION_LIMIT: Windows guarantees its delivery. The violation
 * record says which notification limit was crossed and by how much; one
 * warning per limit jobwarden set that it names. When the record cannot
 * be read and jobwarden set only one, the message is about that one. */
void jw__mon_on_notification(jw_monitor_t *m, DWORD pid) {
  JOBOBJECT_LIMIT_VIOLATION_INFORMATION v;
  measure_t why, mv;
  jw_event_t ev;
  tracked_t *t = NULL;
  DWORD set = m->job->notify_flags;
  int refused = 0;

  /* Only a notification limit the kernel accepted can be crossed. */
  if (set == 0) {
    limit_not_set(m, JOB_OBJECT_MSG_NOTIFICATION_LIMIT, pid, "notification");
    return;
  }
  if (pid != 0) {
    t = limit_process(m, JOB_OBJECT_MSG_NOTIFICATION_LIMIT, pid, &refused);
    if (refused)
      return;
  }

  if (query_violation(m, &v, &why)) {
    DWORD hit = v.ViolationLimitFlags & JOB_WARNINGS;
    if (hit & JOB_OBJECT_LIMIT_JOB_MEMORY) {
      violation_value(&v, JOB_OBJECT_LIMIT_JOB_MEMORY, &mv);
      emit_warning(m, t, 1, &mv);
    }
    if (hit & JOB_OBJECT_LIMIT_JOB_TIME) {
      violation_value(&v, JOB_OBJECT_LIMIT_JOB_TIME, &mv);
      emit_warning(m, t, 0, &mv);
    }
    if (hit != 0)
      return;
    unmeasured(&why, Q_VIOLATION, 0, 0,
               "Windows' limit-violation record names none of the limits jobwarden set "
               "(ViolationLimitFlags 0x%08lX)",
               (unsigned long)v.ViolationLimitFlags);
  } else if (set == JOB_OBJECT_LIMIT_JOB_MEMORY || set == JOB_OBJECT_LIMIT_JOB_TIME) {
    emit_warning(m, t, set == JOB_OBJECT_LIMIT_JOB_MEMORY, &why);
    return;
  }
  /* Which limit was crossed is unknown: no limit object to attach. */
  jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "notification_limit", "observed", "kernel",
                  JW_SEV_MEDIUM);
  jw__mon_ev_job_message(&ev, JOB_OBJECT_MSG_NOTIFICATION_LIMIT);
  if (t != NULL) {
    ev.has_process = 1;
    jw__mon_fill_process(m, t, &ev.process);
  }
  if (why.has_error)
    ev.extra = json_pack("{s:{s:s,s:s,s:I}}", "error", "where", why.where, "code", "JW_ESYS",
                         "win32_error", (json_int_t)why.error);
  snprintf(ev.message, sizeof(ev.message),
           "a notification limit was exceeded; which one is unknown: %s", why.why);
  jw__mon_emit(m, &ev);
}

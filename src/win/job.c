/* The job: limits, UI restrictions and the completion port, all in place
 * before any process can be assigned to it. */
#include <string.h>

#include "win/win.h"

static jw__set_job_info_fn set_info_hook;

void jw__job_set_info_hook(jw__set_job_info_fn fn) {
  set_info_hook = fn;
}

static BOOL set_job_info(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info, DWORD len) {
  if (set_info_hook != NULL)
    return set_info_hook(job, cls, info, len);
  return SetInformationJobObject(job, cls, info, len);
}

static jw__query_job_info_fn query_info_hook;

void jw__job_query_info_hook(jw__query_job_info_fn fn) {
  query_info_hook = fn;
}

BOOL jw__job_query_info(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info, DWORD len, LPDWORD ret) {
  if (query_info_hook != NULL)
    return query_info_hook(job, cls, info, len, ret);
  return QueryInformationJobObject(job, cls, info, len, ret);
}

/* Asks Windows for a guaranteed JOB_OBJECT_MSG_NOTIFICATION_LIMIT some way
 * below the hard job limits (docs/policy.md, notification_margin). Unlike
 * the hard limits' messages, the delivery of this one is guaranteed, so the
 * record gets a warning before the kernel refuses memory or ends the job.
 * A kernel that refuses the class (Windows before 8, Wine: error 87) only
 * loses the warnings: the refusal is kept for the caller to report, and
 * the job is set up without them. */
static void set_notification_limits(jw_job_t *job, const jw_policy_t *p) {
  JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION nli;
  DWORD flags = 0;
  job->notify_job_memory = jw_notification_threshold(p->job_memory, p->notification_margin_bp);
  job->notify_job_time_ms = jw_notification_threshold(p->job_time_ms, p->notification_margin_bp);
  memset(&nli, 0, sizeof(nli));
  if (job->notify_job_memory != 0) {
    flags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
    nli.JobMemoryLimit = job->notify_job_memory;
  }
  if (job->notify_job_time_ms != 0) {
    /* Below the hard limit, which ms_to_ticks already accepted. No
     * process is in the job yet, so nothing is added to it (Windows adds
     * the CPU time the members already used). */
    flags |= JOB_OBJECT_LIMIT_JOB_TIME;
    nli.PerJobUserTimeLimit.QuadPart = (LONGLONG)(job->notify_job_time_ms * 10000u);
  }
  if (flags == 0)
    return;
  nli.LimitFlags = flags;
  if (set_job_info(job->job, JobObjectNotificationLimitInformation, &nli, sizeof(nli)))
    job->notify_flags = flags;
  else {
    job->notify_error = GetLastError();
    job->notify_refused = 1;
  }
}

static int sys_fail(jw_error_t *err, const char *step, DWORD e, const char *what) {
  char why[256];
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_ESYS, e, step, "%s: %s failed: %s (Win32 error %lu)", what, step, why,
                      (unsigned long)e);
}

/* 100-ns units for a limit in milliseconds, refusing what does not fit. */
static int ms_to_ticks(uint64_t ms, LARGE_INTEGER *out) {
  if (ms > (uint64_t)INT64_MAX / 10000u)
    return -1;
  out->QuadPart = (LONGLONG)(ms * 10000u);
  return 0;
}

int jw_job_create(jw_job_t *job, const jw_policy_t *p, jw_error_t *err) {
  JOBOBJECT_ASSOCIATE_COMPLETION_PORT acp;
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  DWORD flags = 0;
  int rc = 0;

  memset(job, 0, sizeof(*job));
  job->policy = *p;

  /* NULL security attributes: the handle is not inheritable. */
  job->job = CreateJobObjectW(NULL, NULL);
  if (job->job == NULL) {
    rc = sys_fail(err, "CreateJobObjectW", GetLastError(), "cannot create the job");
    goto done;
  }
  job->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (job->port == NULL) {
    rc = sys_fail(err, "CreateIoCompletionPort", GetLastError(),
                  "cannot create the job's completion port");
    goto done;
  }
  /* Unguessable keys per run (a constant one is a forger's gift); they are
   * not a defence alone (a holder of the port can dequeue and learn them):
   * the monitor checks every message against the kernel too. */
  do {
    if (jw__random_bytes(&job->key_job, sizeof(job->key_job)) != 0 ||
        jw__random_bytes(&job->key_control, sizeof(job->key_control)) != 0) {
      rc = jw_error_set(err, JW_ESYS, 0, "RtlGenRandom",
                        "cannot draw the completion port's keys: no random source");
      goto done;
    }
  } while (job->key_job == 0 || job->key_control == 0 || job->key_job == job->key_control);
  acp.CompletionKey = (PVOID)job->key_job;
  acp.CompletionPort = job->port;
  if (!set_job_info(job->job, JobObjectAssociateCompletionPortInformation, &acp, sizeof(acp))) {
    rc = sys_fail(err, "SetInformationJobObject(AssociateCompletionPort)", GetLastError(),
                  "cannot bind the completion port to the job");
    goto done;
  }

  memset(&li, 0, sizeof(li));
  if (p->active_processes) {
    flags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
    li.BasicLimitInformation.ActiveProcessLimit = p->active_processes;
  }
  if (p->process_memory) {
    if (p->process_memory > (uint64_t)SIZE_MAX) {
      rc = jw_error_set(err, JW_EPOLICY, 0, "limits.process_memory",
                        "limits.process_memory: too large");
      goto done;
    }
    flags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
    li.ProcessMemoryLimit = (SIZE_T)p->process_memory;
  }
  if (p->job_memory) {
    if (p->job_memory > (uint64_t)SIZE_MAX) {
      rc = jw_error_set(err, JW_EPOLICY, 0, "limits.job_memory", "limits.job_memory: too large");
      goto done;
    }
    flags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
    li.JobMemoryLimit = (SIZE_T)p->job_memory;
  }
  if (p->process_time_ms) {
    if (ms_to_ticks(p->process_time_ms, &li.BasicLimitInformation.PerProcessUserTimeLimit)) {
      rc = jw_error_set(err, JW_EPOLICY, 0, "limits.process_cpu_time",
                        "limits.process_cpu_time: too large");
      goto done;
    }
    flags |= JOB_OBJECT_LIMIT_PROCESS_TIME;
  }
  if (p->job_time_ms) {
    if (ms_to_ticks(p->job_time_ms, &li.BasicLimitInformation.PerJobUserTimeLimit)) {
      rc =
          jw_error_set(err, JW_EPOLICY, 0, "limits.job_cpu_time", "limits.job_cpu_time: too large");
      goto done;
    }
    flags |= JOB_OBJECT_LIMIT_JOB_TIME;
  }
  if (p->die_on_unhandled_exception)
    flags |= JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
  if (p->breakaway_ok)
    flags |= JOB_OBJECT_LIMIT_BREAKAWAY_OK;
  if (p->kill_on_close)
    flags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  li.BasicLimitInformation.LimitFlags = flags;

  if (flags != 0 && !set_job_info(job->job, JobObjectExtendedLimitInformation, &li, sizeof(li))) {
    DWORD e = GetLastError();
    /* A parent job may forbid KILL_ON_JOB_CLOSE (CI runners, some
     * terminals). Carry on without it; the caller says so in an event. */
    if (e == ERROR_INVALID_PARAMETER && (flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)) {
      li.BasicLimitInformation.LimitFlags = flags & ~(DWORD)JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
      if (li.BasicLimitInformation.LimitFlags == 0 ||
          set_job_info(job->job, JobObjectExtendedLimitInformation, &li, sizeof(li))) {
        job->kill_on_close_refused = 1;
        job->kill_on_close_error = e;
        job->policy.kill_on_close = 0;
        e = 0;
      } else {
        e = GetLastError();
      }
    }
    if (e != 0) {
      rc = sys_fail(err, "SetInformationJobObject(ExtendedLimitInformation)", e,
                    "cannot apply the policy's limits to the job");
      goto done;
    }
  }

  set_notification_limits(job, p);

  if (p->ui_restrictions) {
    JOBOBJECT_BASIC_UI_RESTRICTIONS ui;
    ui.UIRestrictionsClass = p->ui_restrictions;
    if (!set_job_info(job->job, JobObjectBasicUIRestrictions, &ui, sizeof(ui))) {
      rc = sys_fail(err, "SetInformationJobObject(BasicUIRestrictions)", GetLastError(),
                    "cannot apply the UI restrictions to the job");
      goto done;
    }
  }

done:
  if (rc != 0)
    jw_job_close(job);
  return rc;
}

void jw_job_close(jw_job_t *job) {
  if (job->job != NULL)
    CloseHandle(job->job);
  if (job->port != NULL)
    CloseHandle(job->port);
  job->job = NULL;
  job->port = NULL;
}

/* wine.injected.limits — messages only a real Windows kernel sends (Wine
 * enforces no limit and posts no limit message): the exact packet the
 * kernel would post (completion key of the job, message id, pid or NULL in
 * lpOverlapped) is posted to the job's real port while a real root runs,
 * and the whole path port -> monitor -> event -> file is checked.
 * Each limit event carries what Windows measured at that moment: checked
 * with Wine's real answers (which offer no true value: the event says
 * why) and with the answers a real Windows gives, injected through the
 * query hooks. Notification limits: the thresholds set below the hard job
 * limits (hook), the warnings they bring, and Wine's real refusal.
 * Also injected: a parent job that refuses KILL_ON_JOB_CLOSE. */
#include "harness.h"
#include "rig.h"

#define Q_VIOLATION  "QueryInformationJobObject(JobObjectLimitViolationInformation)"
#define Q_ACCOUNTING "QueryInformationJobObject(JobObjectBasicAccountingInformation)"
#define JOB_MEM      JOB_OBJECT_LIMIT_JOB_MEMORY
#define JOB_TIME     JOB_OBJECT_LIMIT_JOB_TIME

typedef struct {
  DWORD msg;
  int with_pid; /* lpOverlapped = root pid, else NULL (or `value`) */
  ULONG_PTR value;
  const char *event;
  const char *rule;
  const char *action;
  const char *unit;     /* NULL: no limit object */
  long long configured; /* -1: null */
  const char *severity;
  /* What the measurement says with Wine's real answers. */
  long long observed; /* -1: no limit.observed */
  const char *source; /* limit.observed_source, with observed */
  /* limit.observed_unavailable: NULL = absent; where "" = without where */
  const char *where;
  long long win32_error; /* -1: absent */
  const char *reason;    /* exact, or a prefix when it ends with '*' */
} packet_t;

static const packet_t packets[] = {
    {1, 0, 0, "sandbox.violation", "job_cpu_time", "killed_job", "ms", 60000, "high", -1, NULL,
     Q_ACCOUNTING, -1,
     "the job's accounting reports 0 ms of user-mode CPU time, which cannot be true of a job "
     "that used up its CPU time limit (Wine does not account it)"},
    {2, 1, 0, "sandbox.violation", "process_cpu_time", "terminated", "ms", 30000, "high", -1, NULL,
     "GetProcessTimes", -1, "GetProcessTimes answered with jobwarden's own CPU times (*"},
    {3, 0, 0, "sandbox.violation", "active_processes", "blocked", "processes", 4, "high", 1,
     "JobObjectBasicAccountingInformation.ActiveProcesses", NULL, -1, NULL},
    {9, 1, 0, "sandbox.violation", "process_memory", "blocked", "bytes", 268435456, "high", -1,
     NULL, "GetProcessMemoryInfo", -1,
     "GetProcessMemoryInfo reports a commit (PrivateUsage) of 0 bytes, which no process that "
     "reached its memory limit has (Wine does not report it)"},
    {10, 1, 0, "sandbox.violation", "job_memory", "blocked", "bytes", 1073741824, "high", -1, NULL,
     Q_VIOLATION, 87, Q_VIOLATION " failed with Win32 error 87 (*"},
    /* A notification limit the kernel refused (Wine: error 87) cannot be
     * crossed, and jobwarden never sets a cycle-time limit: no kernel
     * posts these here, so they are forgeries (reason in `where`). */
    {11, 1, 0, "sandbox.violation", "monitor_tampering", "blocked", NULL, 0, "critical", -1, NULL,
     "limit_not_set", -1,
     "the policy sets no notification limit, so the kernel cannot have "
     "enforced one"},
    {12, 1, 0, "sandbox.violation", "monitor_tampering", "blocked", NULL, 0, "critical", -1, NULL,
     "limit_not_set", -1,
     "the policy sets no job_cycle_time limit, so the kernel cannot have "
     "enforced one"},
    {13, 0, 0, "sandbox.notice", "silo_terminated", "observed", NULL, 0, "medium", -1, NULL, NULL,
     -1, NULL},
    {5, 0, 77, "sandbox.notice", "unknown_job_message", "observed", NULL, 0, "medium", -1, NULL,
     NULL, -1, NULL},
    {99, 0, 0, "sandbox.notice", "unknown_job_message", "observed", NULL, 0, "medium", -1, NULL,
     NULL, -1, NULL},
};
#define N_PACKETS (sizeof(packets) / sizeof(packets[0]))

static const char *g_dir;

static int ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return s != NULL && a >= b && _stricmp(s + a - b, suffix) == 0;
}

/* The reason is exact, or starts with `want` up to its final '*'. */
static void check_reason(const char *got, const char *want) {
  size_t n = strlen(want);
  if (n > 0 && want[n - 1] == '*') {
    CHECK(got != NULL && strncmp(got, want, n - 1) == 0);
    if (got == NULL || strncmp(got, want, n - 1) != 0)
      fprintf(stderr, "  reason: %s\n  wanted a prefix: %.*s\n", got ? got : "(none)", (int)(n - 1),
              want);
  } else {
    CHECK_STR(got, want);
  }
}

/* limit.observed or limit.observed_unavailable, exactly. */
static void check_observed(json_t *e, long long observed, const char *source, const char *where,
                           long long win32_error, const char *reason) {
  json_t *limit = json_object_get(e, "limit");
  json_t *why = json_object_get(limit, "observed_unavailable");
  if (observed >= 0) {
    CHECK_INT(tw_int(e, "limit.observed"), observed);
    CHECK_STR(tw_str(e, "limit.observed_source"), source);
    CHECK(why == NULL);
    return;
  }
  /* Never a number standing for "unknown". */
  CHECK(json_object_get(limit, "observed") == NULL);
  CHECK(json_object_get(limit, "observed_source") == NULL);
  CHECK(json_is_object(why));
  if (where != NULL && where[0] != '\0')
    CHECK_STR(tw_str(e, "limit.observed_unavailable.where"), where);
  else
    CHECK(json_object_get(why, "where") == NULL);
  if (win32_error >= 0)
    CHECK_INT(tw_int(e, "limit.observed_unavailable.win32_error"), win32_error);
  else
    CHECK(json_object_get(why, "win32_error") == NULL);
  check_reason(tw_str(e, "limit.observed_unavailable.reason"), reason);
}

/* Waits (20 s at most) until the event file at path holds n events with
 * `"key":"value"`: the monitor has handled the packet that makes the n-th.
 * 0, or -1 on the deadline. */
static int wait_field(const char *path, const char *key, const char *value, int n) {
  char needle[96];
  ULONGLONG end = GetTickCount64() + 20000;
  snprintf(needle, sizeof(needle), "\"%s\":\"%s\"", key, value);
  for (;;) {
    char *buf = tw_read_file(path, NULL), *p = buf;
    int count = 0;
    while (p != NULL && (p = strstr(p, needle)) != NULL) {
      count++;
      p += strlen(needle);
    }
    free(buf);
    if (count >= n)
      return 0;
    if (GetTickCount64() >= end) {
      fprintf(stderr, "%s: %d of %d %s event(s) after 20 s\n", path, count, n, needle);
      return -1;
    }
    Sleep(5);
  }
}

static void set_limits(jw_policy_t *p) {
  jw_policy_init(p);
  /* Each injected hit is checked one by one: no coalescing. */
  CHECK_INT(jw_policy_set(p, "coalesce_window", "off", "test", NULL), 0);
  CHECK_INT(jw_policy_set(p, "active_processes", "4", "test", NULL), 0);
  CHECK_INT(jw_policy_set(p, "process_memory", "256M", "test", NULL), 0);
  CHECK_INT(jw_policy_set(p, "job_memory", "1G", "test", NULL), 0);
  CHECK_INT(jw_policy_set(p, "process_cpu_time", "30s", "test", NULL), 0);
  CHECK_INT(jw_policy_set(p, "job_cpu_time", "1m", "test", NULL), 0);
}

/* The real queries under Wine: every limit message is checked with what
 * Wine really answers (LimitViolationInformation and notification limits
 * refused with 87, job CPU time 0, the caller's own process times, a
 * PrivateUsage of 0): no value where none is true, and why. */
static void test_limit_packets(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "60000"};
  json_t *evs;
  size_t i, first = 0;
  DWORD root;
  /* A pid no process has: an ABNORMAL_EXIT_PROCESS for a process whose
   * start the port never announced. */
  const DWORD ghost = 0x7FFFFFF0u;

  set_limits(&p);
  if (rig_start(&r, g_dir, "injected-limits", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    return;
  }
  /* The default 10 % margin asked for warnings; Wine refuses the class. */
  CHECK_U64(r.job.notify_job_memory, 966367642ull);
  CHECK_U64(r.job.notify_job_time_ms, 54000);
  CHECK_INT(r.job.notify_refused, 1);
  CHECK_U64(r.job.notify_error, ERROR_INVALID_PARAMETER);
  CHECK_U64(r.job.notify_flags, 0);
  root = r.child.pid;
  /* The root's own NEW_PROCESS is in the port already (JOB_LIST: the
   * process joined the job inside CreateProcess, and the kernel posted
   * it then), so the port hands it to the monitor before these. */
  for (i = 0; i < N_PACKETS; i++) {
    ULONG_PTR ov = packets[i].with_pid ? (ULONG_PTR)root : packets[i].value;
    CHECK(PostQueuedCompletionStatus(r.job.port, packets[i].msg, r.job.key_job, (LPOVERLAPPED)ov));
  }
  CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS, r.job.key_job,
                                   (LPOVERLAPPED)(ULONG_PTR)ghost));
  /* A packet under a key that names no job. */
  CHECK(PostQueuedCompletionStatus(r.job.port, 6, (ULONG_PTR)0xBAD, (LPOVERLAPPED)(ULONG_PTR)4));
  /* The last packet's event is in the file: the monitor handled them all. */
  CHECK_INT(wait_field(r.path, "reason", "unknown_key", 1), 0);
  TerminateProcess(r.child.process, 0);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;

  /* Events come in port order, right after the root's process_start. */
  for (i = 0; i < json_array_size(evs); i++)
    if (tw_str(json_array_get(evs, i), "event") &&
        strcmp(tw_str(json_array_get(evs, i), "event"), "sandbox.process_start") == 0)
      first = i + 1;
  CHECK_INT(first, 1);
  CHECK(json_array_size(evs) >= first + N_PACKETS + 2);
  for (i = 0; i < N_PACKETS && first + i < json_array_size(evs); i++) {
    json_t *e = json_array_get(evs, first + i);
    const packet_t *k = &packets[i];
    int before = jw_test_failures;
    CHECK_STR(tw_str(e, "event"), k->event);
    CHECK_STR(tw_str(e, "rule"), k->rule);
    CHECK_STR(tw_str(e, "action"), k->action);
    CHECK_STR(tw_str(e, "severity"), k->severity);
    CHECK_STR(tw_str(e, "enforcer"),
              tw_enforcer_for(k->action,
                              strcmp(k->rule, "monitor_tampering") == 0 ? "monitor" : "kernel"));
    CHECK_STR(tw_str(e, "source"), "port");
    CHECK_INT(tw_int(e, "job_message.id"), k->msg);
    if (strcmp(k->rule, "monitor_tampering") == 0) {
      char v[24];
      snprintf(v, sizeof(v), "0x%lX", (unsigned long)root);
      CHECK_STR(tw_str(e, "tampering.channel"), "job");
      CHECK_STR(tw_str(e, "tampering.reason"), k->where);
      CHECK_INT(tw_int(e, "tampering.bytes"), k->msg);
      CHECK_STR(tw_str(e, "tampering.value"), v);
      CHECK_STR(tw_str(e, "tampering.detail"), k->reason);
      CHECK(tw_get(e, "tampering.key") == NULL);
      CHECK(json_object_get(e, "limit") == NULL);
      CHECK(json_object_get(e, "process") == NULL);
    } else if (k->unit != NULL) {
      CHECK_STR(tw_str(e, "limit.name"), k->rule);
      CHECK_STR(tw_str(e, "limit.unit"), k->unit);
      if (k->configured >= 0)
        CHECK_INT(tw_int(e, "limit.configured"), k->configured);
      else
        CHECK(json_is_null(json_object_get(json_object_get(e, "limit"), "configured")));
      CHECK(json_object_get(json_object_get(e, "limit"), "hard_limit") == NULL);
      check_observed(e, k->observed, k->source, k->where, k->win32_error, k->reason);
    } else {
      CHECK(json_object_get(e, "limit") == NULL);
    }
    if (k->with_pid && strcmp(k->rule, "monitor_tampering") != 0) {
      CHECK_INT(tw_int(e, "process.pid"), root);
      CHECK(json_is_true(json_object_get(json_object_get(e, "process"), "is_root")));
      CHECK(ends_with(tw_str(e, "process.executable"), "\\win_limits.exe"));
    } else if (!k->with_pid) {
      CHECK(json_object_get(e, "process") == NULL);
    }
    if (jw_test_failures != before)
      fprintf(stderr, "  ^ packet %lu: %s\n", (unsigned long)k->msg,
              tw_str(e, "message") ? tw_str(e, "message") : "?");
  }
  {
    json_t *e = json_array_get(evs, first + 2);
    CHECK_STR(tw_str(e, "message"), "a process creation was refused: the active-process limit is "
                                    "reached (observed 1 processes)");
    e = json_array_get(evs, first + 4);
    CHECK_CONTAINS(tw_str(e, "message"), "(observed value unavailable)");
  }
  CHECK_STR(tw_str(json_array_get(evs, first + 8), "job_message.name"), "UNKNOWN");
  CHECK_INT(tw_int(json_array_get(evs, first + 8), "error.value"), 77);
  {
    /* The exit of a process that never was in the job (the job's
     * accounting knows of no process the monitor has not seen): a forgery,
     * nothing reported of the ghost. */
    json_t *e = json_array_get(evs, first + N_PACKETS);
    CHECK_STR(tw_str(e, "event"), "sandbox.violation");
    CHECK_STR(tw_str(e, "rule"), "monitor_tampering");
    CHECK_STR(tw_str(e, "severity"), "critical");
    CHECK_STR(tw_str(e, "enforcer"), "monitor");
    CHECK_INT(tw_int(e, "job_message.id"), 8);
    CHECK_STR(tw_str(e, "tampering.reason"), "not_a_member");
    CHECK_STR(tw_str(e, "tampering.value"), "0x7FFFFFF0");
    CHECK_STR(tw_str(e, "tampering.detail"),
              "pid 2147483632 is not in the job (OpenProcess: Win32 error 87; not in the job's "
              "process id list; the job's accounting counts 1 process(es) in its lifetime, all of "
              "them known)");
    CHECK(json_object_get(e, "process") == NULL);
    CHECK_INT(json_array_size(tw_filter(evs, "sandbox.process_exit", "child_process")), 0);
    /* A packet under a key that is neither the job's nor jobwarden's. */
    e = json_array_get(evs, first + N_PACKETS + 1);
    CHECK_STR(tw_str(e, "rule"), "monitor_tampering");
    CHECK(tw_get(e, "job_message") == NULL);
    CHECK_STR(tw_str(e, "tampering.channel"), "unknown");
    CHECK_STR(tw_str(e, "tampering.reason"), "unknown_key");
    CHECK_STR(tw_str(e, "tampering.key"), "0xBAD");
    CHECK_INT(tw_int(e, "tampering.bytes"), 6);
    CHECK_STR(tw_str(e, "tampering.value"), "0x4");
    e = json_array_get(evs, json_array_size(evs) - 1);
    CHECK_STR(tw_str(e, "event"), "sandbox.job_end");
    CHECK_INT(tw_int(e, "summary.forged_packets"), 4);
  }
  json_decref(evs);
}

/* ------------------------------------------------------------------------ */
/* Injected: what a real Windows answers                                    */
/* ------------------------------------------------------------------------ */

/* SetInformationJobObject as Windows 8 and later answer it: the
 * notification limits are taken (and recorded here); every other class
 * goes to the real call. */
static int g_class12_calls;
static JOBOBJECT_NOTIFICATION_LIMIT_INFORMATION g_class12;

static BOOL WINAPI accept_notifications(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info,
                                        DWORD len) {
  if (cls == JobObjectNotificationLimitInformation) {
    g_class12_calls++;
    if (len != sizeof(g_class12)) {
      SetLastError(ERROR_BAD_LENGTH);
      return FALSE;
    }
    memcpy(&g_class12, info, len);
    return TRUE;
  }
  return SetInformationJobObject(job, cls, info, len);
}

/* Counts the notification-limit calls and lets the real kernel answer. */
static BOOL WINAPI count_notifications(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info, DWORD len) {
  if (cls == JobObjectNotificationLimitInformation)
    g_class12_calls++;
  return SetInformationJobObject(job, cls, info, len);
}

/* The LimitViolationInformation answers, one per query, in order. */
typedef struct {
  DWORD error; /* 0: the query succeeds */
  DWORD violated;
  DWORD64 job_memory;
  LONGLONG user_time; /* 100-ns ticks */
} answer_t;

static const answer_t *g_answers;
static int g_n_answers, g_next_answer;

static BOOL WINAPI windows_query(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info, DWORD len,
                                 LPDWORD ret) {
  if (cls == JobObjectLimitViolationInformation) {
    JOBOBJECT_LIMIT_VIOLATION_INFORMATION *v = info;
    const answer_t *a;
    if (len < sizeof(*v) || g_next_answer >= g_n_answers) {
      SetLastError(ERROR_BAD_LENGTH);
      return FALSE;
    }
    a = &g_answers[g_next_answer++];
    if (a->error != 0) {
      SetLastError(a->error);
      return FALSE;
    }
    memset(v, 0, sizeof(*v));
    v->LimitFlags = g_class12.LimitFlags;
    v->ViolationLimitFlags = a->violated;
    v->JobMemory = a->job_memory;
    v->JobMemoryLimit = g_class12.JobMemoryLimit;
    v->PerJobUserTime.QuadPart = a->user_time;
    v->PerJobUserTimeLimit = g_class12.PerJobUserTimeLimit;
    if (ret != NULL)
      *ret = sizeof(*v);
    return TRUE;
  }
  if (cls == JobObjectBasicAccountingInformation) {
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION *acc = info;
    if (!QueryInformationJobObject(job, cls, info, len, ret))
      return FALSE;
    acc->TotalUserTime.QuadPart = 600200000; /* 60020 ms */
    acc->ActiveProcesses = 4;
    return TRUE;
  }
  return QueryInformationJobObject(job, cls, info, len, ret);
}

static BOOL WINAPI windows_memory(HANDLE h, PROCESS_MEMORY_COUNTERS *c, DWORD cb) {
  PROCESS_MEMORY_COUNTERS_EX *x = (PROCESS_MEMORY_COUNTERS_EX *)c;
  /* The real call first: the handle must be one it accepts. */
  if (cb < sizeof(*x) || !GetProcessMemoryInfo(h, c, cb))
    return FALSE;
  x->PrivateUsage = 268300000;
  x->PagefileUsage = 268300000;
  return TRUE;
}

static BOOL WINAPI windows_times(HANDLE h, LPFILETIME c, LPFILETIME x, LPFILETIME k, LPFILETIME u) {
  if (!GetProcessTimes(h, c, x, k, u))
    return FALSE;
  u->dwHighDateTime = 0;
  u->dwLowDateTime = 300100000; /* 30010 ms */
  k->dwHighDateTime = 0;
  k->dwLowDateTime = 1200000; /* 120 ms */
  return TRUE;
}

/* The events of a rule, which must be exactly `n`, not counting a
 * process's identity update (whether it comes in its start or in an
 * update depends on the identity cache); the index-th (borrowed from evs)
 * or NULL. */
static json_t *only(json_t *evs, const char *rule, size_t n, size_t index) {
  json_t *ev, *found = NULL;
  size_t i, count = 0;
  json_array_foreach(evs, i, ev) {
    const char *r = tw_str(ev, "rule"), *k = tw_str(ev, "event");
    if (k != NULL && strcmp(k, "sandbox.process_update") == 0)
      continue;
    if (r != NULL && strcmp(r, rule) == 0 && count++ == index)
      found = ev;
  }
  CHECK_INT(count, n);
  if (count != n)
    fprintf(stderr, "  ^ rule %s\n", rule);
  return found;
}

static void check_limit_event(json_t *e, const char *event, const char *action,
                              const char *severity, long long msg, DWORD root) {
  CHECK(e != NULL);
  if (e == NULL)
    return;
  CHECK_STR(tw_str(e, "event"), event);
  CHECK_STR(tw_str(e, "action"), action);
  CHECK_STR(tw_str(e, "severity"), severity);
  CHECK_STR(tw_str(e, "enforcer"), tw_enforcer_for(action, "kernel"));
  CHECK_STR(tw_str(e, "source"), "port");
  CHECK_INT(tw_int(e, "job_message.id"), msg);
  if (root != 0)
    CHECK_INT(tw_int(e, "process.pid"), root);
  else
    CHECK(json_object_get(e, "process") == NULL);
}

/* Every limit message with the answers a real Windows gives: the exact
 * thresholds set below the hard limits, and the exact measured values. */
static void test_measured_values(void) {
  static const answer_t answers[] = {
      /* 1: NOTIFICATION_LIMIT, both warnings crossed */
      {0, JOB_MEM | JOB_TIME, 970000000u, 550000000},
      /* 2: JOB_MEMORY_LIMIT */
      {0, JOB_MEM, 1073610000u, 0},
      /* 3: NOTIFICATION_LIMIT naming a limit jobwarden never sets */
      {0, JOB_OBJECT_LIMIT_JOB_READ_BYTES, 0, 0},
      /* 4: JOB_MEMORY_LIMIT the record does not flag */
      {0, 0, 0, 0},
      /* 5: NOTIFICATION_LIMIT, the record unreadable, two warnings set */
      {ERROR_INVALID_FUNCTION, 0, 0, 0},
      /* 6: JOB_MEMORY_LIMIT flagged with a JobMemory of 0 */
      {0, JOB_MEM, 0, 0},
  };
  static const DWORD msgs[] = {11, 10, 11, 10, 11, 1, 2, 9, 3, 10};
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "60000"};
  json_t *evs, *e;
  DWORD root;
  size_t i;

  set_limits(&p);
  memset(&g_class12, 0, sizeof(g_class12));
  g_class12_calls = 0;
  g_answers = answers;
  g_n_answers = (int)(sizeof(answers) / sizeof(answers[0]));
  g_next_answer = 0;
  jw__job_set_info_hook(accept_notifications);
  jw__job_query_info_hook(windows_query);
  jw__monitor_measure_hooks(windows_memory, windows_times);
  if (rig_start(&r, g_dir, "injected-measured", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    goto done;
  }
  /* The thresholds: 10 % (the default) below 1 GiB and 1 min. */
  CHECK_INT(g_class12_calls, 1);
  CHECK_U64(g_class12.LimitFlags, JOB_MEM | JOB_TIME);
  CHECK_U64(g_class12.JobMemoryLimit, 966367642ull);
  CHECK_U64((uint64_t)g_class12.PerJobUserTimeLimit.QuadPart, 540000000ull);
  CHECK_U64(g_class12.IoReadBytesLimit, 0);
  CHECK_U64(g_class12.IoWriteBytesLimit, 0);
  CHECK_U64((uint64_t)g_class12.RateControlTolerance, 0);
  CHECK_U64(r.job.notify_flags, JOB_MEM | JOB_TIME);
  CHECK_INT(r.job.notify_refused, 0);
  root = r.child.pid;
  /* The root's NEW_PROCESS is in the port before these (JOB_LIST). */
  for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
    ULONG_PTR ov = msgs[i] == 1 || msgs[i] == 3 ? 0 : (ULONG_PTR)root;
    CHECK(PostQueuedCompletionStatus(r.job.port, msgs[i], r.job.key_job, (LPOVERLAPPED)ov));
  }
  /* The last message (JOB_MEMORY_LIMIT) makes the third job_memory. */
  CHECK_INT(wait_field(r.path, "rule", "job_memory", 3), 0);
  TerminateProcess(r.child.process, 0);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    goto done;
  CHECK_INT(g_next_answer, g_n_answers);

  /* The guaranteed warnings: the threshold, the hard limit, the value. */
  e = only(evs, "job_memory_warning", 1, 0);
  check_limit_event(e, "sandbox.violation", "observed", "medium", 11, root);
  CHECK_STR(tw_str(e, "limit.name"), "job_memory_warning");
  CHECK_STR(tw_str(e, "limit.unit"), "bytes");
  CHECK_INT(tw_int(e, "limit.configured"), 966367642);
  CHECK_INT(tw_int(e, "limit.hard_limit"), 1073741824);
  check_observed(e, 970000000, "JobObjectLimitViolationInformation.JobMemory", NULL, -1, NULL);
  CHECK_STR(tw_str(e, "message"),
            "the job's committed memory passed the warning threshold of 966367642 bytes; the "
            "hard limit of 1073741824 bytes comes next (observed 970000000 bytes)");
  e = only(evs, "job_cpu_time_warning", 1, 0);
  check_limit_event(e, "sandbox.violation", "observed", "medium", 11, root);
  CHECK_STR(tw_str(e, "limit.unit"), "ms");
  CHECK_INT(tw_int(e, "limit.configured"), 54000);
  CHECK_INT(tw_int(e, "limit.hard_limit"), 60000);
  check_observed(e, 55000, "JobObjectLimitViolationInformation.PerJobUserTime", NULL, -1, NULL);

  /* The hard job memory limit: measured, then not flagged, then a 0. */
  e = only(evs, "job_memory", 3, 0);
  check_limit_event(e, "sandbox.violation", "blocked", "high", 10, root);
  CHECK_INT(tw_int(e, "limit.configured"), 1073741824);
  check_observed(e, 1073610000, "JobObjectLimitViolationInformation.JobMemory", NULL, -1, NULL);
  CHECK_CONTAINS(tw_str(e, "message"),
                 "a memory commit was refused: the job memory limit is reached: process ");
  CHECK_CONTAINS(tw_str(e, "message"), "(observed 1073610000 bytes)");
  e = only(evs, "job_memory", 3, 1);
  check_observed(e, -1, NULL, Q_VIOLATION, -1,
                 "Windows' limit-violation record does not flag the job memory limit "
                 "(ViolationLimitFlags 0x00000000), so it holds no measurement of it");
  e = only(evs, "job_memory", 3, 2);
  check_observed(e, -1, NULL, Q_VIOLATION, -1,
                 "Windows' limit-violation record flags the job memory limit but reports "
                 "JobMemory 0, which cannot be a crossed limit");

  /* A notification about a limit jobwarden did not set, and one whose
   * record cannot be read while two warnings are set: which is unknown. */
  e = only(evs, "notification_limit", 2, 0);
  check_limit_event(e, "sandbox.violation", "observed", "medium", 11, root);
  CHECK(json_object_get(e, "limit") == NULL);
  CHECK(json_object_get(e, "error") == NULL);
  CHECK_STR(tw_str(e, "message"),
            "a notification limit was exceeded; which one is unknown: Windows' limit-violation "
            "record names none of the limits jobwarden set (ViolationLimitFlags 0x00010000)");
  e = only(evs, "notification_limit", 2, 1);
  CHECK(json_object_get(e, "limit") == NULL);
  CHECK_STR(tw_str(e, "error.where"), Q_VIOLATION);
  CHECK_STR(tw_str(e, "error.code"), "JW_ESYS");
  CHECK_INT(tw_int(e, "error.win32_error"), 1);

  /* The accounting and the process's own values. */
  e = only(evs, "job_cpu_time", 1, 0);
  check_limit_event(e, "sandbox.violation", "killed_job", "high", 1, 0);
  check_observed(e, 60020, "JobObjectBasicAccountingInformation.TotalUserTime", NULL, -1, NULL);
  CHECK_STR(tw_str(e, "message"), "the job used up its CPU time limit; the kernel terminated every "
                                  "process in it (observed 60020 ms)");
  e = only(evs, "process_cpu_time", 1, 0);
  check_limit_event(e, "sandbox.violation", "terminated", "high", 2, root);
  check_observed(e, 30010, "GetProcessTimes.UserTime", NULL, -1, NULL);
  e = only(evs, "process_memory", 1, 0);
  check_limit_event(e, "sandbox.violation", "blocked", "high", 9, root);
  check_observed(e, 268300000, "GetProcessMemoryInfo.PrivateUsage", NULL, -1, NULL);
  e = only(evs, "active_processes", 1, 0);
  check_limit_event(e, "sandbox.violation", "blocked", "high", 3, 0);
  check_observed(e, 4, "JobObjectBasicAccountingInformation.ActiveProcesses", NULL, -1, NULL);
  json_decref(evs);

done:
  jw__job_set_info_hook(NULL);
  jw__job_query_info_hook(NULL);
  jw__monitor_measure_hooks(NULL, NULL);
}

/* Only one warning set (job CPU time, 25 % below 2 s) and its record
 * unreadable: the warning is that one, without a value, saying why. */
static void test_single_warning(void) {
  static const answer_t answers[] = {{ERROR_INVALID_FUNCTION, 0, 0, 0}};
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "60000"};
  json_t *evs, *e;

  jw_policy_init(&p);
  /* Each injected hit is checked one by one: no coalescing. */
  CHECK_INT(jw_policy_set(&p, "coalesce_window", "off", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_cpu_time", "2s", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "25%", "test", NULL), 0);
  memset(&g_class12, 0, sizeof(g_class12));
  g_class12_calls = 0;
  g_answers = answers;
  g_n_answers = 1;
  g_next_answer = 0;
  jw__job_set_info_hook(accept_notifications);
  jw__job_query_info_hook(windows_query);
  if (rig_start(&r, g_dir, "injected-single-warning", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    goto done;
  }
  CHECK_INT(g_class12_calls, 1);
  CHECK_U64(g_class12.LimitFlags, JOB_TIME);
  CHECK_U64((uint64_t)g_class12.PerJobUserTimeLimit.QuadPart, 15000000ull);
  CHECK_U64(g_class12.JobMemoryLimit, 0);
  CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_NOTIFICATION_LIMIT, r.job.key_job,
                                   NULL));
  CHECK_INT(wait_field(r.path, "rule", "job_cpu_time_warning", 1), 0);
  TerminateProcess(r.child.process, 0);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    goto done;
  e = only(evs, "job_cpu_time_warning", 1, 0);
  check_limit_event(e, "sandbox.violation", "observed", "medium", 11, 0);
  CHECK_INT(tw_int(e, "limit.configured"), 1500);
  CHECK_INT(tw_int(e, "limit.hard_limit"), 2000);
  check_observed(e, -1, NULL, Q_VIOLATION, 1, Q_VIOLATION " failed with Win32 error 1 (*");
  CHECK_STR(tw_str(e, "message"),
            "the job's user-mode CPU time passed the warning threshold of 1500 ms; the hard "
            "limit of 2000 ms comes next (observed value unavailable)");
  (void)only(evs, "notification_limit", 0, 0);
  json_decref(evs);

done:
  jw__job_set_info_hook(NULL);
  jw__job_query_info_hook(NULL);
}

/* `run` with a helper that exits 7; events in <dir>/wine-<name>.jsonl.
 * Returns the exit status. jw_run runs in this process (its job calls
 * hooked), so there is no kit run: the callers read the file. */
static int run_policy(const char *name, jw_policy_t *policy, char *path, size_t size) {
  jw_run_config_t cfg;
  char spec[1100];
  const char *exports[1];
  const char *argv[] = {rig_self_utf8(), "--helper", "exit", "7"};
  snprintf(path, size, "%s/wine-%s.jsonl", g_dir, name);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  exports[0] = spec;
  memset(&cfg, 0, sizeof(cfg));
  cfg.policy = *policy;
  cfg.exports = exports;
  cfg.n_exports = 1;
  cfg.argv = argv;
  cfg.argc = 4;
  return jw_run(&cfg);
}

/* Real: Wine refuses JobObjectNotificationLimitInformation (87). The run
 * says so once, in-band, and goes on. */
static void test_notifications_refused(void) {
  jw_policy_t p;
  char path[1024];
  json_t *evs, *n, *e;

  jw_policy_init(&p);
  /* Each injected hit is checked one by one: no coalescing. */
  CHECK_INT(jw_policy_set(&p, "coalesce_window", "off", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_memory", "64M", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_cpu_time", "10s", "test", NULL), 0);
  CHECK_INT(run_policy("real-notifications-refused", &p, path, sizeof(path)), 7);
  evs = tw_read_events(path);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  e = json_array_get(evs, 0);
  CHECK_STR(tw_str(e, "event"), "sandbox.job_start");
  CHECK_STR(tw_str(e, "policy.limits.notification_margin"), "10%");
  CHECK_INT(tw_int(e, "job_config.notification_limits.job_memory"), 60397978);
  CHECK_INT(tw_int(e, "job_config.notification_limits.job_cpu_time_ms"), 9000);
  CHECK(json_is_false(tw_get(e, "job_config.notification_limits.applied")));
  n = tw_filter(evs, "sandbox.notice", "notification_limits_unavailable");
  CHECK_INT(json_array_size(n), 1);
  e = json_array_get(n, 0);
  if (e != NULL) {
    CHECK_INT(tw_int(e, "seq"), 2);
    CHECK_STR(tw_str(e, "action"), "degraded");
    CHECK_STR(tw_str(e, "severity"), "low");
    CHECK(tw_get(e, "enforcer") == NULL); /* nobody acted: a weaker protection */
    CHECK_STR(tw_str(e, "source"), "jobwarden");
    CHECK_STR(tw_str(e, "error.where"), "SetInformationJobObject(NotificationLimitInformation)");
    CHECK_STR(tw_str(e, "error.code"), "JW_ESYS");
    CHECK_INT(tw_int(e, "error.win32_error"), 87);
    CHECK(json_object_get(e, "limit") == NULL);
    check_reason(tw_str(e, "message"),
                 "Windows refused the notification limits (warnings: job memory at 60397978 "
                 "bytes, job CPU time at 9000 ms) with Win32 error 87 (*");
    CHECK_CONTAINS(tw_str(e, "message"),
                   "); the hard limits still apply, without a guaranteed warning before them");
  }
  json_decref(n);
  /* The run went on: the root ran and exited, the record is complete. */
  e = only(evs, "root_process", 2, 1);
  CHECK_STR(tw_str(e, "event"), "sandbox.process_exit");
  CHECK_INT(tw_int(e, "process.exit_code"), 7);
  CHECK_STR(tw_str(json_array_get(evs, json_array_size(evs) - 1), "event"), "sandbox.job_end");
  json_decref(evs);
}

/* A margin of "off", or no job limit: no notification limit is asked for,
 * so nothing is refused and nothing is said. */
static void test_notifications_off(void) {
  jw_policy_t p;
  char path[1024];
  json_t *evs, *n;

  jw_policy_init(&p);
  /* Each injected hit is checked one by one: no coalescing. */
  CHECK_INT(jw_policy_set(&p, "coalesce_window", "off", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_memory", "64M", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "off", "test", NULL), 0);
  g_class12_calls = 0;
  jw__job_set_info_hook(count_notifications);
  CHECK_INT(run_policy("real-notifications-off", &p, path, sizeof(path)), 7);
  jw_policy_init(&p);
  /* Each injected hit is checked one by one: no coalescing. */
  CHECK_INT(jw_policy_set(&p, "coalesce_window", "off", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "process_memory", "64M", "test", NULL), 0);
  CHECK_INT(run_policy("real-notifications-none", &p, path, sizeof(path)), 7);
  jw__job_set_info_hook(NULL);
  CHECK_INT(g_class12_calls, 0);
  evs = tw_read_events(path);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  n = tw_filter(evs, "sandbox.notice", NULL);
  CHECK_INT(json_array_size(n), 0);
  json_decref(n);
  CHECK(tw_get(json_array_get(evs, 0), "job_config.notification_limits") == NULL);
  CHECK(tw_get(json_array_get(evs, 0), "policy.limits.notification_margin") == NULL);
  json_decref(evs);
}

/* The parent-job case: SetInformationJobObject refuses KILL_ON_JOB_CLOSE
 * with ERROR_INVALID_PARAMETER. jobwarden must carry on without it and say
 * so in-band, never silently. */
static DWORD g_flags_applied;

static BOOL WINAPI refuse_kill_on_close(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info,
                                        DWORD len) {
  if (cls == JobObjectExtendedLimitInformation) {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION *li = info;
    if (li->BasicLimitInformation.LimitFlags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE) {
      SetLastError(ERROR_INVALID_PARAMETER);
      return FALSE;
    }
    g_flags_applied = li->BasicLimitInformation.LimitFlags;
  }
  return SetInformationJobObject(job, cls, info, len);
}

static void test_kill_on_close_refused(void) {
  jw_run_config_t cfg;
  char path[1024], spec[1100];
  const char *exports[1];
  const char *argv[] = {rig_self_utf8(), "--helper", "exit", "7"};
  json_t *evs, *n;
  int status;

  snprintf(path, sizeof(path), "%s/wine-injected-kill-on-close.jsonl", g_dir);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  exports[0] = spec;
  memset(&cfg, 0, sizeof(cfg));
  jw_policy_init(&cfg.policy);
  CHECK_INT(jw_policy_set(&cfg.policy, "tier", "hardened", "test", NULL), 0);
  cfg.exports = exports;
  cfg.n_exports = 1;
  cfg.argv = argv;
  cfg.argc = 4;
  jw__job_set_info_hook(refuse_kill_on_close);
  status = jw_run(&cfg);
  jw__job_set_info_hook(NULL);
  CHECK_INT(status, 7);
  /* The rest of the hardened tier still applies. */
  CHECK_U64(g_flags_applied, JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION);
  evs = tw_read_events(path);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  CHECK_STR(tw_str(json_array_get(evs, 0), "event"), "sandbox.job_start");
  CHECK(json_is_false(json_object_get(json_object_get(json_array_get(evs, 0), "job_config"),
                                      "kill_on_close_applied")));
  n = tw_filter(evs, "sandbox.notice", "kill_on_close_unavailable");
  CHECK_INT(json_array_size(n), 1);
  if (json_array_size(n) == 1) {
    CHECK_STR(tw_str(json_array_get(n, 0), "action"), "degraded");
    CHECK_STR(tw_str(json_array_get(n, 0), "severity"), "high");
    CHECK_INT(tw_int(json_array_get(n, 0), "seq"), 2);
    CHECK_CONTAINS(tw_str(json_array_get(n, 0), "message"), "Win32 error 87");
  }
  json_decref(n);
  json_decref(evs);
}

/* A burst of limit hits taken from the port in one wake-up costs one
 * read of the job's accounting, shared by the batch's messages; a later
 * wake-up reads again. The monitor is held (drop hook) on a marker packet
 * while the burst is posted, so the burst is one batch. */
#define MARKER_VALUE 0x4D41524Bu
static HANDLE g_held, g_release;

static int hold_on_marker(DWORD msg, ULONG_PTR value) {
  if (msg != JOB_OBJECT_MSG_NEW_PROCESS || value != MARKER_VALUE)
    return 0;
  SetEvent(g_held);
  WaitForSingleObject(g_release, 20000);
  return 1; /* the marker is not a message of the job */
}

static void test_shared_read(void) {
  enum { BURST = 20 };
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "60000"};
  json_t *evs, *hits;
  size_t i;
  int k;

  set_limits(&p);
  CHECK_INT(jw_policy_set(&p, "active_processes", "4", "test", NULL), 0);
  g_held = CreateEventW(NULL, TRUE, FALSE, NULL);
  g_release = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (rig_start(&r, g_dir, "injected-limits-shared", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    return;
  }
  jw__monitor_drop_hook(hold_on_marker);
  CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_NEW_PROCESS, r.job.key_job,
                                   (LPOVERLAPPED)(ULONG_PTR)MARKER_VALUE));
  CHECK_INT(WaitForSingleObject(g_held, 20000), WAIT_OBJECT_0);
  for (k = 0; k < BURST; k++)
    CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                                     NULL));
  SetEvent(g_release);
  CHECK_INT(wait_field(r.path, "rule", "active_processes", BURST), 0);
  /* One more, alone in its wake-up: a read of its own. */
  CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                                   NULL));
  CHECK_INT(wait_field(r.path, "rule", "active_processes", BURST + 1), 0);
  jw__monitor_drop_hook(NULL);
  TerminateProcess(r.child.process, 0);
  evs = rig_finish(&r);
  CloseHandle(g_held);
  CloseHandle(g_release);
  CHECK_INT(r.stats.limit_reads, 2);
  CHECK_INT(r.stats.limit_reads_shared, BURST - 1);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  /* Every hit carries the count read for its batch: the root alone. */
  hits = tw_filter(evs, "sandbox.violation", "active_processes");
  CHECK_INT(json_array_size(hits), BURST + 1);
  for (i = 0; i < json_array_size(hits); i++)
    check_observed(json_array_get(hits, i), 1,
                   "JobObjectBasicAccountingInformation.ActiveProcesses", NULL, -1, NULL);
  json_decref(hits);
  json_decref(evs);
}

/* Runnable one by one: `win_limits.exe DATA EVENTS JOBWARDEN --case single_warning`. */
static const jw_test_case_t cases[] = {
    {"limit_packets", test_limit_packets, 60},
    {"measured_values", test_measured_values, 60},
    {"single_warning", test_single_warning, 60},
    {"notifications_refused", test_notifications_refused, 60},
    {"notifications_off", test_notifications_off, 60},
    {"kill_on_close_refused", test_kill_on_close_refused, 60},
    {"shared_read", test_shared_read, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  g_dir = argc > 2 ? argv[2] : ".";
  return TW_RUN_CASES("limits_injected", argc, argv, cases);
}

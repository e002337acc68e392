/* wine.injected.limits — messages only a real Windows kernel sends (Wine
 * enforces no limit and posts no limit message): the exact packet the
 * kernel would post (completion key of the job, message id, pid or NULL in
 * lpOverlapped) is posted to the job's real port while a real root runs,
 * and the whole path port -> monitor -> event -> file is checked.
 * Also injected: a parent job that refuses KILL_ON_JOB_CLOSE. */
#include "harness.h"
#include "rig.h"

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
} packet_t;

static const packet_t packets[] = {
    {1, 0, 0, "sandbox.violation", "job_cpu_time", "killed_job", "ms", 60000, "high"},
    {2, 1, 0, "sandbox.violation", "process_cpu_time", "terminated", "ms", 30000, "high"},
    {3, 0, 0, "sandbox.violation", "active_processes", "blocked", "processes", 4, "high"},
    {9, 1, 0, "sandbox.violation", "process_memory", "blocked", "bytes", 268435456, "high"},
    {10, 1, 0, "sandbox.violation", "job_memory", "blocked", "bytes", 1073741824, "high"},
    {11, 1, 0, "sandbox.violation", "notification_limit", "observed", "bytes", -1, "medium"},
    {12, 1, 0, "sandbox.violation", "job_cycle_time", "observed", "cycles", -1, "medium"},
    {13, 0, 0, "sandbox.notice", "silo_terminated", "observed", NULL, 0, "medium"},
    {5, 0, 77, "sandbox.notice", "unknown_job_message", "observed", NULL, 0, "medium"},
    {99, 0, 0, "sandbox.notice", "unknown_job_message", "observed", NULL, 0, "medium"},
};
#define N_PACKETS (sizeof(packets) / sizeof(packets[0]))

static const char *g_dir;

static int ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return s != NULL && a >= b && _stricmp(s + a - b, suffix) == 0;
}

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

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "active_processes", "4", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "process_memory", "256M", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_memory", "1G", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "process_cpu_time", "30s", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "job_cpu_time", "1m", "test", NULL), 0);
  if (rig_start(&r, g_dir, "injected-limits", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    return;
  }
  root = r.child.pid;
  Sleep(300); /* the root's own NEW_PROCESS is handled first */
  for (i = 0; i < N_PACKETS; i++) {
    ULONG_PTR ov = packets[i].with_pid ? (ULONG_PTR)root : packets[i].value;
    CHECK(PostQueuedCompletionStatus(r.job.port, packets[i].msg, JW_KEY_JOB, (LPOVERLAPPED)ov));
  }
  CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS, JW_KEY_JOB,
                                   (LPOVERLAPPED)(ULONG_PTR)ghost));
  /* A packet under a key that names no job. */
  CHECK(PostQueuedCompletionStatus(r.job.port, 6, (ULONG_PTR)0xBAD, (LPOVERLAPPED)(ULONG_PTR)4));
  Sleep(300);
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
    fprintf(stderr, "packet %lu -> %s %s\n", (unsigned long)k->msg, tw_str(e, "event"),
            tw_str(e, "rule"));
    CHECK_STR(tw_str(e, "event"), k->event);
    CHECK_STR(tw_str(e, "rule"), k->rule);
    CHECK_STR(tw_str(e, "action"), k->action);
    CHECK_STR(tw_str(e, "severity"), k->severity);
    CHECK_STR(tw_str(e, "enforcer"), "kernel");
    CHECK_STR(tw_str(e, "source"), "port");
    CHECK_INT(tw_int(e, "job_message.id"), k->msg);
    if (k->unit != NULL) {
      CHECK_STR(tw_str(e, "limit.name"), k->rule);
      CHECK_STR(tw_str(e, "limit.unit"), k->unit);
      if (k->configured >= 0)
        CHECK_INT(tw_int(e, "limit.configured"), k->configured);
      else
        CHECK(json_is_null(json_object_get(json_object_get(e, "limit"), "configured")));
    } else {
      CHECK(json_object_get(e, "limit") == NULL);
    }
    if (k->with_pid) {
      CHECK_INT(tw_int(e, "process.pid"), root);
      CHECK(json_is_true(json_object_get(json_object_get(e, "process"), "is_root")));
      CHECK(ends_with(tw_str(e, "process.executable"), "\\win_limits.exe"));
    } else {
      CHECK(json_object_get(e, "process") == NULL);
    }
  }
  CHECK_STR(tw_str(json_array_get(evs, first + 8), "job_message.name"), "UNKNOWN");
  CHECK_INT(tw_int(json_array_get(evs, first + 8), "error.value"), 77);
  {
    json_t *e = json_array_get(evs, first + N_PACKETS);
    CHECK_STR(tw_str(e, "event"), "sandbox.violation");
    CHECK_STR(tw_str(e, "rule"), "abnormal_exit");
    CHECK_STR(tw_str(e, "enforcer"), "kernel");
    CHECK_INT(tw_int(e, "job_message.id"), 8);
    CHECK_INT(tw_int(e, "process.pid"), ghost);
    /* Nothing could be read of a process that does not exist. */
    CHECK(json_object_get(json_object_get(e, "process"), "exit_code") == NULL);
    CHECK(json_is_null(json_object_get(json_object_get(e, "process"), "executable")));
    e = json_array_get(evs, first + N_PACKETS + 1);
    CHECK_STR(tw_str(e, "event"), "sandbox.process_exit");
    CHECK_INT(tw_int(e, "process.pid"), ghost);
    e = json_array_get(evs, first + N_PACKETS + 2);
    CHECK_STR(tw_str(e, "event"), "sandbox.notice");
    CHECK_STR(tw_str(e, "rule"), "unknown_completion_key");
  }
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

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  g_dir = argc > 2 ? argv[2] : ".";
  test_limit_packets();
  test_kill_on_close_refused();
  return jw_test_result("limits_injected");
}

/* wine.real.monitor — the monitor thread on the real completion port under
 * Wine: NEW_PROCESS of a grandchild becomes a sandbox.violation with its
 * pid, parent and image; a crash (which Wine announces as a plain
 * EXIT_PROCESS) becomes an abnormal_exit violation named by its NTSTATUS;
 * TerminateJobObject leaves no survivor and every exit is still reported
 * (Wine sends none: they are reconciled from the process handles). */
#include "harness.h"
#include "rig.h"

static const char *g_dir;

static char g_pidfile[1024];

static int ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return s != NULL && a >= b && _stricmp(s + a - b, suffix) == 0;
}

/* Checks the envelope of every event: seq 1..n, one run id, the job. */
static void check_envelope(json_t *evs, const char *job_name, const char *tier) {
  size_t i;
  json_t *ev;
  const char *run_id = tw_str(json_array_get(evs, 0), "run_id");
  CHECK(run_id != NULL);
  json_array_foreach(evs, i, ev) {
    CHECK_INT(tw_int(ev, "seq"), (long long)i + 1);
    CHECK_STR(tw_str(ev, "run_id"), run_id);
    CHECK_STR(tw_str(ev, "job.name"), job_name);
    CHECK_STR(tw_str(ev, "job.tier"), tier);
  }
}

/* Root starts a grandchild that lives 300 ms; both exit 0. */
static void test_tree(const char *tier) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"tree", g_pidfile, "300"};
  json_t *evs, *v, *ex, *st, *end;
  DWORD root = 0, gc = 0;
  char name[64], entity[64];
  int lockdown = strcmp(tier, "lockdown") == 0;

  snprintf(name, sizeof(name), "monitor-tree-%s", tier);
  snprintf(g_pidfile, sizeof(g_pidfile), "%s/%s.pids", g_dir, name);
  remove(g_pidfile);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", tier, "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "name", name, "test", NULL), 0);
  if (rig_start(&r, g_dir, name, &p, args, 3) != 0) {
    CHECK(!"rig_start");
    return;
  }
  CHECK_INT(tw_read_pids(g_pidfile, 10000, &root, &gc), 0);
  CHECK_U64(root, r.child.pid);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  check_envelope(evs, name, tier);

  st = tw_filter(evs, "sandbox.process_start", "root_process");
  CHECK_INT(json_array_size(st), 1);
  CHECK_INT(tw_int(json_array_get(st, 0), "process.pid"), root);
  CHECK(
      json_is_true(json_object_get(json_object_get(json_array_get(st, 0), "process"), "is_root")));

  /* The grandchild has its start like every process of the job. */
  st = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(st), 1);
  v = json_array_get(st, 0) ? json_incref(json_array_get(st, 0)) : NULL;
  json_decref(st);
  if (v != NULL) {
    CHECK_STR(tw_str(v, "action"), "observed");
    CHECK_STR(tw_str(v, "severity"), "info");
    CHECK(json_object_get(v, "enforcer") == NULL);
    CHECK(json_object_get(v, "limit") == NULL);
    CHECK_STR(tw_str(v, "source"), "port");
    CHECK_INT(tw_int(v, "job_message.id"), 6);
    CHECK_STR(tw_str(v, "job_message.name"), "JOB_OBJECT_MSG_NEW_PROCESS");
    CHECK_INT(tw_int(v, "process.pid"), gc);
    CHECK_INT(tw_int(v, "process.parent.pid"), root);
    CHECK(ends_with(tw_str(v, "process.executable"), "\\win_monitor.exe"));
    snprintf(entity, sizeof(entity), "%lu-", (unsigned long)gc);
    CHECK(tw_str(v, "process.entity_id") != NULL &&
          strncmp(tw_str(v, "process.entity_id"), entity, strlen(entity)) == 0);
    /* It happened at the process's creation. */
    CHECK_STR(tw_str(v, "@timestamp"), tw_str(v, "process.start"));
    json_decref(v);
  }
  /* A violation only where the policy forbids the grandchild: lockdown
   * allows one active process, and Wine did not enforce it. */
  v = tw_filter(evs, "sandbox.violation", NULL);
  CHECK_INT(json_array_size(v), lockdown ? 1 : 0);
  v = json_array_get(v, 0) ? json_incref(json_array_get(v, 0)) : NULL;
  if (v != NULL) {
    CHECK_STR(tw_str(v, "rule"), "active_processes");
    CHECK_STR(tw_str(v, "action"), "not_enforced");
    CHECK(json_object_get(v, "enforcer") == NULL);
    CHECK_STR(tw_str(v, "severity"), "high");
    CHECK_INT(tw_int(v, "process.pid"), gc);
    CHECK_INT(tw_int(v, "limit.configured"), 1);
    CHECK_INT(tw_int(v, "limit.observed"), 2);
    CHECK_STR(tw_str(v, "limit.name"), "active_processes");
    json_decref(v);
  }

  ex = tw_filter(evs, "sandbox.process_exit", NULL);
  CHECK_INT(json_array_size(ex), 2);
  {
    size_t i;
    json_t *e;
    int seen_root = 0, seen_gc = 0;
    json_array_foreach(ex, i, e) {
      long long pid = tw_int(e, "process.pid");
      CHECK_INT(tw_int(e, "process.exit_code"), 0);
      CHECK_STR(tw_str(e, "process.exit_class"), "success");
      CHECK_STR(tw_str(e, "action"), "observed");
      seen_root += pid == (long long)root;
      seen_gc += pid == (long long)gc;
    }
    CHECK_INT(seen_root, 1);
    CHECK_INT(seen_gc, 1);
  }
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(end, "source"), "port");
  CHECK_INT(tw_int(end, "job_message.id"), 4);
  CHECK_INT(tw_int(end, "summary.processes"), 2);
  CHECK_INT(tw_int(end, "summary.violations"), lockdown ? 1 : 0);
  CHECK_INT(tw_int(end, "summary.abnormal_exits"), 0);
  CHECK_INT(tw_int(end, "summary.root_exit_code"), 0);
  CHECK_INT(tw_int(end, "summary.events_dropped"), 0);
  CHECK_INT(r.stats.processes_seen, 2);
  json_decref(st);
  json_decref(ex);
  json_decref(evs);
  remove(g_pidfile);
}

/* A crash of the root, then of a grandchild. */
static void test_crashes(void) {
  rig_t r;
  jw_policy_t p;
  const char *crash[] = {"crash"};
  const char *gcrash[] = {"tree", g_pidfile, "0", "crash"};
  json_t *evs, *v;
  DWORD root = 0, gc = 0;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", "lockdown", "test", NULL), 0);
  if (rig_start(&r, g_dir, "monitor-crash", &p, crash, 1) != 0) {
    CHECK(!"rig_start");
    return;
  }
  root = r.child.pid;
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  v = tw_filter(evs, "sandbox.violation", "abnormal_exit");
  CHECK_INT(json_array_size(v), 1);
  if (json_array_size(v) == 1) {
    json_t *e = json_array_get(v, 0);
    /* A crash: nobody acted. Wine announces it as EXIT_PROCESS; the exit
     * code decides. */
    CHECK_STR(tw_str(e, "action"), "observed");
    CHECK(json_object_get(e, "enforcer") == NULL);
    CHECK_INT(tw_int(e, "job_message.id"), 7);
    CHECK_INT(tw_int(e, "process.pid"), root);
    CHECK_INT(tw_int(e, "process.exit_code"), 0xC0000005ll);
    CHECK_STR(tw_str(e, "process.exit_code_hex"), "0xC0000005");
    CHECK_STR(tw_str(e, "process.status"), "STATUS_ACCESS_VIOLATION");
    CHECK_STR(tw_str(e, "process.exit_class"), "abnormal");
    CHECK_STR(tw_str(e, "severity"), "high");
  }
  json_decref(v);
  if (evs != NULL)
    CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.abnormal_exits"), 1);
  json_decref(evs);

  snprintf(g_pidfile, sizeof(g_pidfile), "%s/monitor-gcrash.pids", g_dir);
  remove(g_pidfile);
  jw_policy_init(&p);
  if (rig_start(&r, g_dir, "monitor-grandchild-crash", &p, gcrash, 4) != 0) {
    CHECK(!"rig_start");
    return;
  }
  CHECK_INT(tw_read_pids(g_pidfile, 10000, &root, &gc), 0);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  v = tw_filter(evs, "sandbox.violation", "abnormal_exit");
  CHECK_INT(json_array_size(v), 1);
  if (json_array_size(v) == 1) {
    json_t *e = json_array_get(v, 0);
    CHECK_INT(tw_int(e, "process.pid"), gc);
    CHECK_INT(tw_int(e, "process.parent.pid"), root);
    CHECK(json_is_false(json_object_get(json_object_get(e, "process"), "is_root")));
    CHECK_STR(tw_str(e, "process.status"), "STATUS_ACCESS_VIOLATION");
  }
  json_decref(v);
  json_decref(evs);
  remove(g_pidfile);
}

/* TerminateJobObject: both processes die; each exit is reported once, as
 * killed by jobwarden, not as a crash. */
static void test_terminate_job(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"tree", g_pidfile, "60000"};
  json_t *evs, *ex, *end;
  DWORD root = 0, gc = 0;
  HANDLE hgc = NULL;
  size_t i;
  json_t *e;
  int n_reconciled = 0;

  snprintf(g_pidfile, sizeof(g_pidfile), "%s/monitor-terminate.pids", g_dir);
  remove(g_pidfile);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", "hardened", "test", NULL), 0);
  if (rig_start(&r, g_dir, "monitor-terminate", &p, args, 3) != 0) {
    CHECK(!"rig_start");
    return;
  }
  CHECK_INT(tw_read_pids(g_pidfile, 10000, &root, &gc), 0);
  hgc = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, gc);
  CHECK(hgc != NULL);
  /* The monitor has handled the grandchild's NEW_PROCESS: its event is written. */
  CHECK_INT(tw_wait_event_pid(r.path, gc, 10000), 0);
  jw_monitor_note_terminating(r.mon, "terminated by the test");
  CHECK(TerminateJobObject(r.job.job, JW_TERMINATE_EXIT_CODE));
  CHECK_U64(WaitForSingleObject(r.child.process, 3000), WAIT_OBJECT_0);
  if (hgc != NULL) {
    DWORD code = 0;
    CHECK_U64(WaitForSingleObject(hgc, 3000), WAIT_OBJECT_0);
    CHECK(tw_exit_code(hgc, &code));
    CHECK_U64(code, JW_TERMINATE_EXIT_CODE);
    CloseHandle(hgc);
  }
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  CHECK_INT(json_array_size(tw_filter(evs, "sandbox.violation", "abnormal_exit")), 0);
  ex = tw_filter(evs, "sandbox.process_exit", NULL);
  CHECK_INT(json_array_size(ex), 2);
  json_array_foreach(ex, i, e) {
    long long pid = tw_int(e, "process.pid");
    const char *src = tw_str(e, "source");
    CHECK(pid == (long long)root || pid == (long long)gc);
    CHECK_STR(tw_str(e, "action"), "killed_job");
    CHECK_INT(tw_int(e, "process.exit_code"), JW_TERMINATE_EXIT_CODE);
    /* Real Windows reports these exits on the port; Wine does not, and the
     * monitor reconciles them from the handles it holds. */
    CHECK(src != NULL && (strcmp(src, "port") == 0 || strcmp(src, "reconciled") == 0));
    n_reconciled += src != NULL && strcmp(src, "reconciled") == 0;
  }
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(end, "action"), "killed_job");
  CHECK_STR(tw_str(end, "summary.terminated_by_jobwarden"), "terminated by the test");
  CHECK_INT(tw_int(end, "summary.reconciled_events"), n_reconciled);
  CHECK_INT(tw_int(end, "summary.processes"), 2);
  json_decref(ex);
  json_decref(evs);
  remove(g_pidfile);
}

/* An idle monitor does not wake up, also while a member runs. The root
 * sleeps 2 s: every wake-up of the monitor in that time is a packet (the
 * root's NEW_PROCESS, its exit wait's JW_CTRL_EXITED, its EXIT_PROCESS,
 * ACTIVE_PROCESS_ZERO, an identity result), none a timeout: there is no
 * member poll (its exit posts its own packet). Once the job is empty
 * (job_end written) and no deadline is due, the monitor waits on the port
 * with no timeout: over a 2 s window its wake-up count does not move (the
 * window is what is observed, not a synchronisation: the job's end is
 * waited for on the done event). At the stop, every further wake-up is a
 * quit packet the owner posted. */
static void test_idle(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "2000"};
  uint32_t w0, w1;
  ULONGLONG t0, ran;
  json_t *evs;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "name", "monitor-idle", "test", NULL), 0);
  t0 = GetTickCount64();
  if (rig_start(&r, g_dir, "monitor-idle", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    return;
  }
  CHECK_INT(WaitForSingleObject(jw_monitor_done_event(r.mon), 30000), WAIT_OBJECT_0);
  ran = GetTickCount64() - t0;
  /* The root's exit-watcher packet may come after its EXIT_PROCESS and
   * ACTIVE_PROCESS_ZERO (the watcher's thread wakes when the handle is
   * signaled, at the very end of the teardown): the window starts once
   * the monitor took it. */
  {
    uint32_t posted = 0, taken = 0;
    ULONGLONG until = GetTickCount64() + 10000;
    do {
      jw_monitor_exit_packets(r.mon, &posted, &taken);
      if (posted >= 1 && taken == posted)
        break;
      Sleep(1);
    } while (GetTickCount64() < until);
    CHECK_INT(posted, 1);
    CHECK_INT(taken, 1);
  }
  w0 = jw_monitor_wakeups(r.mon);
  Sleep(2000);
  w1 = jw_monitor_wakeups(r.mon);
  CHECK_U64(w1, w0);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  CHECK(ran >= 2000);
  CHECK(r.stats.wakeups > w0);
  CHECK(r.stats.quits_posted >= 1);
  CHECK(r.stats.wakeups - w0 <= r.stats.quits_posted);
  /* While the root slept: packets only, and at most one timed wake-up,
   * for the escape scan its NEW_PROCESS caused once the port had been
   * quiet for 3 ms (monitor_escape.c; none when a packet of jobwarden's
   * own, e.g. the identity worker's, woke the monitor after those 3 ms);
   * none at the bound. */
  CHECK(r.stats.timeouts <= 1);
  CHECK_INT(r.stats.escape_scans_after_quiet, 1);
  CHECK_INT(r.stats.escape_scans_at_bound, 0);
  CHECK(w0 <= 6);
  CHECK_INT(r.stats.exit_waits_failed, 0);
  fprintf(stderr,
          "measured: %lu wake-up(s) while the root ran %llu ms (%lu timed), %lu in 2 s idle, %lu "
          "at the stop (%lu quit(s) posted)\n",
          (unsigned long)w0, (unsigned long long)ran, (unsigned long)r.stats.timeouts,
          (unsigned long)(w1 - w0), (unsigned long)(r.stats.wakeups - w1),
          (unsigned long)r.stats.quits_posted);
  if (evs != NULL) {
    json_t *end = json_array_get(evs, json_array_size(evs) - 1);
    json_t *ex = tw_filter(evs, "sandbox.process_exit", "root_process");
    CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
    CHECK_STR(tw_str(end, "source"), "port");
    /* Its exit came from the port's message, its wait only woke the
     * monitor. */
    CHECK_INT(json_array_size(ex), 1);
    CHECK_STR(tw_str(json_array_get(ex, 0), "source"), "port");
    CHECK_INT(tw_int(json_array_get(ex, 0), "process.exit_code"), 0);
    json_decref(ex);
    json_decref(evs);
  }
}

static void test_tree_none(void) {
  test_tree("none");
}

static void test_tree_lockdown(void) {
  test_tree("lockdown");
}

/* Runnable one by one: `win_monitor.exe DATA EVENTS --case idle`. */
static const jw_test_case_t cases[] = {
    {"tree_none", test_tree_none, 60}, {"tree_lockdown", test_tree_lockdown, 60},
    {"crashes", test_crashes, 60},     {"terminate_job", test_terminate_job, 60},
    {"idle", test_idle, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  g_dir = argc > 2 ? argv[2] : ".";
  return TW_RUN_CASES("monitor_real", argc, argv, cases);
}

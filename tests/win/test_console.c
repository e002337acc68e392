/* wine.injected.console — Ctrl-C, Ctrl-Break and console close. Wine
 * cannot deliver console control events to a process without a real
 * console, so the test calls the handler jobwarden installs
 * (jw__run_console_ctrl) exactly as Windows would, on a thread of its own,
 * while `jw_run` supervises a real process tree. Checked: the job is
 * terminated (no survivor), every exit is reported as killed by jobwarden,
 * the job-end event is written, and for console close the handler returns
 * only once the log is complete (Windows kills the process right after). */
#include <process.h>

#include "harness.h"
#include "rig.h"

typedef struct {
  jw_run_config_t cfg;
  int status;
} run_arg_t;

static unsigned __stdcall run_thread(void *p) {
  run_arg_t *a = p;
  a->status = jw_run(&a->cfg);
  return 0;
}

typedef struct {
  DWORD type;
  HANDLE returned; /* set when the handler returned */
} ctrl_arg_t;

static unsigned __stdcall ctrl_thread(void *p) {
  ctrl_arg_t *c = p;
  jw__run_console_ctrl(c->type);
  SetEvent(c->returned);
  return 0;
}

static void test_ctrl(const char *dir, DWORD type, const char *name, const char *reason) {
  run_arg_t a;
  ctrl_arg_t c;
  char path[1024], spec[1100], pidfile[1024];
  const char *exports[1];
  const char *argv[] = {rig_self_utf8(), "--helper", "tree", pidfile, "60000"};
  HANDLE th, ct, hroot = NULL, hgc = NULL;
  DWORD root = 0, gc = 0;
  json_t *evs, *ex, *e, *n;
  size_t i;

  snprintf(path, sizeof(path), "%s/wine-console-%s.jsonl", dir, name);
  snprintf(pidfile, sizeof(pidfile), "%s/console-%s.pids", dir, name);
  remove(path);
  remove(pidfile);
  snprintf(spec, sizeof(spec), "file:%s", path);
  exports[0] = spec;
  memset(&a, 0, sizeof(a));
  jw_policy_init(&a.cfg.policy);
  CHECK_INT(jw_policy_set(&a.cfg.policy, "tier", "hardened", "test", NULL), 0);
  a.cfg.exports = exports;
  a.cfg.n_exports = 1;
  a.cfg.argv = argv;
  a.cfg.argc = 5;
  th = (HANDLE)_beginthreadex(NULL, 0, run_thread, &a, 0, NULL);
  CHECK(th != NULL);
  if (th == NULL)
    return;
  CHECK_INT(tw_read_pids(pidfile, 10000, &root, &gc), 0);
  hroot = OpenProcess(SYNCHRONIZE, FALSE, root);
  hgc = OpenProcess(SYNCHRONIZE, FALSE, gc);
  CHECK(hroot != NULL && hgc != NULL);
  /* The run has seen the grandchild (its event is written) before the
   * console event arrives. */
  CHECK_INT(tw_wait_event_pid(path, gc, 10000), 0);

  c.type = type;
  c.returned = CreateEventW(NULL, TRUE, FALSE, NULL);
  ct = (HANDLE)_beginthreadex(NULL, 0, ctrl_thread, &c, 0, NULL);
  CHECK_U64(WaitForSingleObject(ct, 10000), WAIT_OBJECT_0);
  if (type == CTRL_CLOSE_EVENT) {
    /* Windows ends the process when the handler returns: by then the log
     * must be complete, job_end included. */
    json_t *now = tw_read_events(path);
    CHECK(now != NULL);
    if (now != NULL)
      CHECK_STR(tw_str(json_array_get(now, json_array_size(now) - 1), "event"), "sandbox.job_end");
    json_decref(now);
  }
  CHECK_U64(WaitForSingleObject(th, 10000), WAIT_OBJECT_0);
  CHECK_U64((uint32_t)a.status, JW_TERMINATE_EXIT_CODE);
  if (hroot != NULL)
    CHECK_U64(WaitForSingleObject(hroot, 0), WAIT_OBJECT_0);
  if (hgc != NULL)
    CHECK_U64(WaitForSingleObject(hgc, 0), WAIT_OBJECT_0);

  /* jw_run ran in this process (no kit run): its file, read here. */
  evs = tw_read_events(path);
  CHECK(evs != NULL);
  if (evs != NULL) {
    n = tw_filter(evs, "sandbox.notice", "interrupted");
    CHECK_INT(json_array_size(n), 1);
    CHECK_STR(tw_str(json_array_get(n, 0), "action"), "killed_job");
    json_decref(n);
    ex = tw_filter(evs, "sandbox.process_exit", NULL);
    CHECK_INT(json_array_size(ex), 2);
    json_array_foreach(ex, i, e) {
      CHECK_STR(tw_str(e, "action"), "killed_job");
      CHECK_INT(tw_int(e, "process.exit_code"), JW_TERMINATE_EXIT_CODE);
    }
    json_decref(ex);
    n = tw_filter(evs, "sandbox.violation", "abnormal_exit");
    CHECK_INT(json_array_size(n), 0);
    json_decref(n);
    e = json_array_get(evs, json_array_size(evs) - 1);
    CHECK_STR(tw_str(e, "event"), "sandbox.job_end");
    CHECK_STR(tw_str(e, "action"), "killed_job");
    CHECK_STR(tw_str(e, "summary.terminated_by_jobwarden"), reason);
    CHECK_INT(tw_int(e, "summary.root_exit_code"), JW_TERMINATE_EXIT_CODE);
    json_decref(evs);
  }
  CloseHandle(th);
  CloseHandle(ct);
  CloseHandle(c.returned);
  if (hroot)
    CloseHandle(hroot);
  if (hgc)
    CloseHandle(hgc);
  remove(pidfile);
}

static const char *g_dir = ".";

static void test_ctrl_c(void) {
  test_ctrl(g_dir, CTRL_C_EVENT, "ctrl-c", "interrupted by Ctrl-C");
}

static void test_ctrl_break(void) {
  test_ctrl(g_dir, CTRL_BREAK_EVENT, "ctrl-break", "interrupted by Ctrl-Break");
}

static void test_close(void) {
  test_ctrl(g_dir, CTRL_CLOSE_EVENT, "close", "the console is closing");
}

/* Runnable one by one: `win_console.exe DATA EVENTS JOBWARDEN --case close`. */
static const jw_test_case_t cases[] = {
    {"ctrl_c", test_ctrl_c, 60},
    {"ctrl_break", test_ctrl_break, 60},
    {"close", test_close, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  g_dir = argc > 2 ? argv[2] : ".";
  return TW_RUN_CASES("console_injected", argc, argv, cases);
}

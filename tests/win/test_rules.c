/* wine.real.rules — the monitor-enforced rules of the policy ("rules"),
 * through the real `run` path under Wine: jw_run in this process (policy ->
 * job -> monitor -> spawn -> exit status), and twice the real jobwarden.exe
 * with the command-line flags. Each rule is run with each action:
 *
 *   timeout            wall clock of the run (the monitor's port wait times out)
 *   total_processes    cap on processes over the job's lifetime
 *   images             deny list, allow list, and an image that cannot be read
 *   active_processes   the kernel limit Wine accepts but does not enforce: the
 *                      monitor notices at NEW_PROCESS and acts itself
 *
 * The sandboxed processes are this executable (helper modes) and copies of
 * it named cmd.exe, ok.exe and a non-ASCII name, so that image rules see real
 * image paths. The one injected part: image_unknown replaces
 * QueryFullProcessImageNameW through the monitor's test hook (the call
 * fails with error 6 forever, what Wine does for a few milliseconds).
 * Every outcome is asserted exactly: event fields, child exit codes, the
 * run's exit status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rig.h"
#include "cli.h"

#define KILLED       JW_TERMINATE_EXIT_CODE
#define CHILD_MS     "2000" /* how long an allowed child lives */
#define MAX_CHILDREN 4

static char g_dir[TW_PATH_CHARS]; /* events directory (Windows path) */
static char g_bin[TW_PATH_CHARS]; /* copies of this executable */
static char g_jw[TW_PATH_CHARS];  /* jobwarden.exe */
static const wchar_t g_uni_name[] = L"\u00DCn\u00EFc\u00F8d\u00E9.exe"; /* Ünïcødé.exe */

/* ------------------------------------------------------------------------ */
/* Helper mode: rules-spawn OUTFILE MS BINDIR NAME...                        */
/* ------------------------------------------------------------------------ */

/* Starts BINDIR\NAME --helper sleep MS for each NAME ("uni" stands for the
 * non-ASCII name, which an ANSI argv cannot carry), 50 ms apart, waits for
 * all, then writes one line per child to OUTFILE: its exit code in hex, or
 * "fail <error>" when it could not be started. */
static int helper_rules_spawn(int argc, char **argv) {
  PROCESS_INFORMATION pi[MAX_CHILDREN];
  DWORD err[MAX_CHILDREN];
  char tmp[TW_PATH_CHARS + 8];
  FILE *f;
  int i, n = argc - 6;
  if (n < 1 || n > MAX_CHILDREN)
    return 80;
  for (i = 0; i < n; i++) {
    wchar_t cmd[2 * TW_PATH_CHARS], name[MAX_PATH];
    const char *a = argv[6 + i];
    if (strcmp(a, "uni") == 0)
      wcscpy(name, g_uni_name);
    else
      swprintf(name, MAX_PATH, L"%hs", a);
    swprintf(cmd, 2 * TW_PATH_CHARS, L"\"%hs\\%ls\" --helper sleep %hs", argv[5], name, argv[4]);
    memset(&pi[i], 0, sizeof(pi[i]));
    err[i] = tw_spawn(cmd, 0, &pi[i]) == 0 ? 0 : GetLastError();
    Sleep(50);
  }
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return 81;
  for (i = 0; i < n; i++) {
    DWORD code = 0;
    if (err[i] != 0) {
      fprintf(f, "fail %lu\n", (unsigned long)err[i]);
      continue;
    }
    if (WaitForSingleObject(pi[i].hProcess, 30000) != WAIT_OBJECT_0 ||
        !tw_exit_code(pi[i].hProcess, &code))
      code = 0xDEAD;
    fprintf(f, "%lx\n", (unsigned long)code);
    CloseHandle(pi[i].hThread);
    CloseHandle(pi[i].hProcess);
  }
  if (fclose(f) != 0 || !MoveFileExA(tmp, argv[3], MOVEFILE_REPLACE_EXISTING))
    return 82;
  return 0;
}

/* The children's exit codes from OUTFILE; returns how many were read. */
static int read_codes(const char *path, DWORD *codes, int max) {
  char *s = tw_read_file(path, NULL), *p;
  int n = 0;
  if (s == NULL)
    return -1;
  for (p = s; n < max && *p;) {
    char *nl = strchr(p, '\n');
    codes[n++] = strncmp(p, "fail", 4) == 0 ? 0xFA11 : (DWORD)strtoul(p, NULL, 16);
    if (nl == NULL)
      break;
    p = nl + 1;
  }
  free(s);
  return n;
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

/* g_bin\cmd.exe, ok.exe and the non-ASCII name: copies of this program. */
static int make_bin(void) {
  static const char *const names[] = {"cmd.exe", "ok.exe"};
  wchar_t dst[TW_PATH_CHARS];
  size_t i;
  snprintf(g_bin, sizeof(g_bin), "%s\\rules-bin", g_dir);
  CreateDirectoryA(g_bin, NULL);
  for (i = 0; i < 2; i++) {
    swprintf(dst, TW_PATH_CHARS, L"%hs\\%hs", g_bin, names[i]);
    if (!CopyFileW(tw_self(), dst, FALSE))
      return -1;
  }
  swprintf(dst, TW_PATH_CHARS, L"%hs\\%ls", g_bin, g_uni_name);
  return CopyFileW(tw_self(), dst, FALSE) ? 0 : -1;
}

/* One jw_run: events to <dir>\wine-rules-<name>.jsonl. */
typedef struct {
  int status;
  DWORD ms; /* how long jw_run took */
  json_t *evs;
  char out[TW_PATH_CHARS]; /* the rules-spawn OUTFILE */
} run_t;

static void run_case(run_t *r, const char *name, const jw_policy_t *pol, const char *const *args,
                     int nargs) {
  jw_run_config_t cfg;
  char path[TW_PATH_CHARS], spec[TW_PATH_CHARS + 8];
  const char *exports[1], *argv[16];
  ULONGLONG t0;
  int i;
  snprintf(path, sizeof(path), "%s\\wine-rules-%s.jsonl", g_dir, name);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  exports[0] = spec;
  argv[0] = rig_self_utf8();
  argv[1] = "--helper";
  for (i = 0; i < nargs && i < 14; i++)
    argv[2 + i] = args[i];
  memset(&cfg, 0, sizeof(cfg));
  cfg.policy = *pol;
  jw_policy_set(&cfg.policy, "name", name, "test", NULL);
  cfg.exports = exports;
  cfg.n_exports = 1;
  cfg.argv = argv;
  cfg.argc = 2 + i;
  t0 = GetTickCount64();
  r->status = jw_run(&cfg);
  r->ms = (DWORD)(GetTickCount64() - t0);
  r->evs = tw_read_events(path); /* jw_run in this process: no kit run to read it */
  CHECK(r->evs != NULL);
  if (r->evs == NULL)
    r->evs = json_array();
  fprintf(stderr, "case %s: status %d, %lu ms, %lu events\n", name, r->status, (unsigned long)r->ms,
          (unsigned long)json_array_size(r->evs));
}

/* The spawn arguments: rules-spawn <out> CHILD_MS <bin> names... */
static int spawn_args(run_t *r, const char *name, const char **args, const char *const *names,
                      int n) {
  int i;
  snprintf(r->out, sizeof(r->out), "%s\\wine-rules-%s.codes", g_dir, name);
  remove(r->out);
  args[0] = "rules-spawn";
  args[1] = r->out;
  args[2] = CHILD_MS;
  args[3] = g_bin;
  for (i = 0; i < n; i++)
    args[4 + i] = names[i];
  return 4 + n;
}

/* The only event of `rule` (NULL and a failed check when not exactly one). */
static json_t *one(json_t *evs, const char *event, const char *rule) {
  json_t *a = tw_filter(evs, event, rule), *e = NULL;
  CHECK_INT(json_array_size(a), 1);
  if (json_array_size(a) == 1)
    e = json_incref(json_array_get(a, 0));
  json_decref(a);
  return e;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return s != NULL && a >= b && _stricmp(s + a - b, suffix) == 0;
}

/* The fields every rule violation has. */
static void check_rule_event(json_t *e, const char *rule, const char *action,
                             const char *configured_action) {
  if (e == NULL)
    return;
  CHECK_STR(tw_str(e, "event"), "sandbox.violation");
  CHECK_STR(tw_str(e, "rule"), rule);
  CHECK_STR(tw_str(e, "action"), action);
  /* Schema 2.0.0: the monitor is named only when it did something. */
  if (strcmp(action, "terminated") == 0 || strcmp(action, "killed_job") == 0)
    CHECK_STR(tw_str(e, "enforcer"), "monitor");
  else
    CHECK(tw_get(e, "enforcer") == NULL);
  CHECK_STR(tw_str(e, "severity"), "high");
  CHECK_STR(tw_str(e, "enforcement.configured_action"), configured_action);
}

/* The exit event of the process with this pid. */
static json_t *exit_of(json_t *evs, long long pid) {
  json_t *a = tw_filter(evs, "sandbox.process_exit", NULL), *e, *found = NULL;
  size_t i;
  json_array_foreach(a, i, e) {
    if (tw_int(e, "process.pid") == pid)
      found = e;
  }
  if (found != NULL)
    json_incref(found);
  json_decref(a);
  return found;
}

static void check_last_is_job_end(json_t *evs, const char *action) {
  json_t *end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(end, "action"), action);
}

static void finish(run_t *r) {
  json_decref(r->evs);
  remove(r->out);
}

/* ------------------------------------------------------------------------ */
/* timeout                                                                  */
/* ------------------------------------------------------------------------ */

static void test_timeout(const char *action) {
  run_t r;
  jw_policy_t p;
  char name[64], pidfile[TW_PATH_CHARS];
  const char *sleep_args[] = {"sleep", "3000"};
  const char *tree_args[] = {"tree", pidfile, "60000"};
  int report = strcmp(action, "report") == 0;
  json_t *e, *x;
  DWORD root = 0, gc = 0;
  HANDLE hgc = NULL;

  snprintf(name, sizeof(name), "timeout-%s", action);
  snprintf(pidfile, sizeof(pidfile), "%s\\wine-rules-%s.pids", g_dir, name);
  remove(pidfile);
  memset(&r, 0, sizeof(r));
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", "hardened", "test", NULL), 0);
  /* Long enough for the tree helper to have started its grandchild and
   * written its pid file before the kill, on a loaded machine too (400 ms
   * was not, once, at load 10). */
  CHECK_INT(jw_policy_set(&p, "timeout", "1500ms", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "timeout_action", action, "test", NULL), 0);
  /* report: a root that ends by itself after the timeout; the kills: a
   * root with a grandchild that would live a minute. */
  if (report)
    run_case(&r, name, &p, sleep_args, 2);
  else
    run_case(&r, name, &p, tree_args, 3);
  if (!report && tw_read_pids(pidfile, 0, &root, &gc) == 0)
    hgc = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, gc);

  e = one(r.evs, "sandbox.violation", "timeout");
  x = one(r.evs, "sandbox.process_start", "root_process");
  check_rule_event(e, "timeout",
                   report                            ? "reported"
                   : strcmp(action, "kill_job") == 0 ? "killed_job"
                                                     : "terminated",
                   action);
  if (e != NULL) {
    CHECK_STR(tw_str(e, "source"), "jobwarden");
    CHECK_STR(tw_str(e, "limit.name"), "timeout");
    CHECK_STR(tw_str(e, "limit.unit"), "ms");
    CHECK_INT(tw_int(e, "limit.configured"), 1500);
    /* Measured: the port wait ends at the deadline (observed 400-416 ms
     * with a 400 ms timeout). */
    fprintf(stderr, "  timeout observed at %lld ms\n", tw_int(e, "limit.observed"));
    CHECK(tw_int(e, "limit.observed") >= 1500 && tw_int(e, "limit.observed") < 2500);
    CHECK_INT(tw_int(e, "process.pid"), tw_int(x, "process.pid"));
    CHECK(json_object_get(e, "job_message") == NULL);
    CHECK(json_object_get(e, "error") == NULL);
  }
  if (report) {
    json_t *ex = exit_of(r.evs, tw_int(x, "process.pid"));
    CHECK_INT(r.status, 0);
    CHECK_STR(tw_str(ex, "action"), "observed");
    CHECK_INT(tw_int(ex, "process.exit_code"), 0);
    check_last_is_job_end(r.evs, "observed");
    json_decref(ex);
  } else {
    json_t *rx = exit_of(r.evs, root), *gx = exit_of(r.evs, gc);
    CHECK_INT(r.status, JW_EXIT_RULE_KILLED);
    CHECK(r.ms < 10000);
    CHECK(root != 0 && gc != 0);
    CHECK_INT(tw_int(rx, "process.exit_code"), KILLED);
    CHECK_INT(tw_int(gx, "process.exit_code"), KILLED);
    CHECK_INT(tw_count(r.evs, "sandbox.violation", "abnormal_exit"), 0);
    if (strcmp(action, "kill_job") == 0) {
      json_t *end = json_array_get(r.evs, json_array_size(r.evs) - 1);
      CHECK_STR(tw_str(rx, "action"), "killed_job");
      CHECK_STR(tw_str(gx, "action"), "killed_job");
      CHECK_INT(tw_count(r.evs, "sandbox.violation", "orphan_processes"), 0);
      check_last_is_job_end(r.evs, "killed_job");
      CHECK_STR(tw_str(end, "summary.terminated_by_jobwarden"), "monitor rule timeout (kill_job)");
    } else {
      /* Only the root is terminated; jobwarden run then ends the leftovers
       * as after any root exit. */
      CHECK_STR(tw_str(rx, "action"), "terminated");
      CHECK_CONTAINS(tw_str(rx, "message"), "monitor rule timeout, kill_process");
      CHECK_STR(tw_str(gx, "action"), "killed_job");
      CHECK_INT(tw_count(r.evs, "sandbox.violation", "orphan_processes"), 1);
      check_last_is_job_end(r.evs, "killed_job");
    }
    if (hgc != NULL) {
      DWORD code = 0;
      CHECK_U64(WaitForSingleObject(hgc, 3000), WAIT_OBJECT_0);
      CHECK(tw_exit_code(hgc, &code));
      CHECK_U64(code, KILLED);
    }
    json_decref(rx);
    json_decref(gx);
  }
  if (hgc != NULL)
    CloseHandle(hgc);
  json_decref(e);
  json_decref(x);
  remove(pidfile);
  finish(&r);
}

/* ------------------------------------------------------------------------ */
/* total_processes                                                          */
/* ------------------------------------------------------------------------ */

static void test_total(const char *action) {
  static const char *const names[] = {"ok.exe", "ok.exe", "ok.exe"};
  run_t r;
  jw_policy_t p;
  const char *args[12];
  char name[64];
  int nargs, kill_job = strcmp(action, "kill_job") == 0;
  DWORD codes[MAX_CHILDREN];
  json_t *v, *cp;

  snprintf(name, sizeof(name), "total-%s", action);
  jw_policy_init(&p);
  /* The root and one child: the second and third child are over the cap. */
  CHECK_INT(jw_policy_set(&p, "max_total_processes", "2", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "total_processes_action", action, "test", NULL), 0);
  nargs = spawn_args(&r, name, args, names, 3);
  run_case(&r, name, &p, args, nargs);

  v = tw_filter(r.evs, "sandbox.violation", "total_processes");
  cp = tw_filter(r.evs, "sandbox.process_start", "child_process");
  if (kill_job) {
    /* The job ends at the second child; a third may not exist. */
    CHECK_INT(r.status, JW_EXIT_RULE_KILLED);
    CHECK(json_array_size(v) >= 1);
    check_rule_event(json_array_get(v, 0), "total_processes", "killed_job", "kill_job");
    CHECK_INT(tw_int(json_array_get(v, 0), "limit.observed"), 3);
    CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), -1); /* the root died first */
    check_last_is_job_end(r.evs, "killed_job");
  } else {
    size_t i;
    int kill = strcmp(action, "kill_process") == 0;
    CHECK_INT(r.status, 0);
    /* Two processes of ok.exe over the cap: the first hit is written in
     * full, the second (same rule, same image, inside the 10 s window) is
     * counted into one coalesced summary before job_end. Both are acted
     * on and both have their start and exit. */
    CHECK_INT(json_array_size(v), 2);
    CHECK_INT(json_array_size(cp), 3);
    CHECK_STR(tw_str(json_array_get(cp, 0), "action"), "observed");
    CHECK_STR(tw_str(json_array_get(cp, 0), "severity"), "info");
    for (i = 0; i < 2; i++) {
      json_t *c = json_array_get(cp, i + 1), *ex;
      /* Every child has its start, also the ones a rule is against. */
      CHECK_STR(tw_str(c, "action"), "observed");
      CHECK_STR(tw_str(c, "severity"), "info");
      ex = exit_of(r.evs, tw_int(c, "process.pid"));
      CHECK_STR(tw_str(ex, "action"), kill ? "terminated" : "observed");
      CHECK_INT(tw_int(ex, "process.exit_code"), kill ? KILLED : 0);
      json_decref(ex);
    }
    {
      json_t *e = json_array_get(v, 0), *sum = json_array_get(v, 1);
      check_rule_event(e, "total_processes", kill ? "terminated" : "reported", action);
      CHECK_STR(tw_str(e, "limit.name"), "total_processes");
      CHECK_STR(tw_str(e, "limit.unit"), "processes");
      CHECK_INT(tw_int(e, "limit.configured"), 2);
      CHECK_INT(tw_int(e, "limit.observed"), 3);
      CHECK_INT(tw_int(e, "job_message.id"), 6);
      CHECK_INT(tw_int(e, "process.pid"), tw_int(json_array_get(cp, 1), "process.pid"));
      CHECK(ends_with(tw_str(e, "process.executable"), "\\ok.exe"));
      CHECK(tw_get(e, "coalesced") == NULL);
      /* The summary: same rule and action, the count, the written hit's
       * seq, the last repeat's process and measured value. */
      check_rule_event(sum, "total_processes", kill ? "terminated" : "reported", action);
      CHECK(tw_get(sum, "process") == NULL);
      CHECK_INT(tw_int(sum, "coalesced.count"), 1);
      CHECK_INT(tw_int(sum, "coalesced.first_seq"), tw_int(e, "seq"));
      CHECK_INT(tw_int(sum, "coalesced.window_ms"), 10000);
      CHECK_INT(tw_int(sum, "coalesced.last_pid"), tw_int(json_array_get(cp, 2), "process.pid"));
      CHECK(tw_str(sum, "coalesced.subject") != NULL &&
            strncmp(tw_str(sum, "coalesced.subject"), "image:", 6) == 0 &&
            ends_with(tw_str(sum, "coalesced.subject"), "\\ok.exe"));
      CHECK_INT(tw_int(sum, "limit.observed"), 4);
      CHECK(tw_int(sum, "seq") > tw_int(e, "seq"));
      CHECK(tw_str(sum, "coalesced.first") != NULL && tw_str(sum, "coalesced.last") != NULL &&
            strcmp(tw_str(sum, "coalesced.first"), tw_str(sum, "coalesced.last")) <= 0);
      /* job_end counts both hits, one of them coalesced. */
      CHECK_INT(tw_int(json_array_get(r.evs, json_array_size(r.evs) - 1), "summary.violations"), 2);
      CHECK_INT(tw_int(json_array_get(r.evs, json_array_size(r.evs) - 1), "summary.coalesced"), 1);
    }
    CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 3);
    CHECK_U64(codes[0], 0);
    CHECK_U64(codes[1], kill ? KILLED : 0);
    CHECK_U64(codes[2], kill ? KILLED : 0);
    CHECK_INT(tw_count(r.evs, "sandbox.violation", "abnormal_exit"), 0);
    CHECK_INT(tw_int(json_array_get(r.evs, json_array_size(r.evs) - 1), "summary.processes"), 4);
    check_last_is_job_end(r.evs, "observed");
  }
  json_decref(v);
  json_decref(cp);
  finish(&r);
}

/* ------------------------------------------------------------------------ */
/* images                                                                   */
/* ------------------------------------------------------------------------ */

/* Deny "CMD" (no extension: any; case ignored) and the non-ASCII name in
 * another case; start cmd.exe, ok.exe and Ünïcødé.exe. */
static void test_deny(const char *action) {
  static const char *const names[] = {"cmd.exe", "ok.exe", "uni"};
  run_t r;
  jw_policy_t p;
  const char *args[12];
  char name[64];
  int nargs, n = 3, kill_job = strcmp(action, "kill_job") == 0;
  int kill = strcmp(action, "kill_process") == 0;
  DWORD codes[MAX_CHILDREN];
  json_t *v, *e;

  snprintf(name, sizeof(name), "deny-%s", action);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "deny_image", "CMD", "test", NULL), 0);
  /* The policy's own tag for this rule's violations (rules.images.tags). */
  CHECK_INT(jw_policy_set(&p, "images_tags", "team.agent_review", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "deny_image",
                          "\xC3\xBCN\xC3\x8F"
                          "C\xC3\x98"
                          "D\xC3\x89.EXE",
                          "test", NULL),
            0); /* üNÏCØDÉ.EXE */
  CHECK_INT(jw_policy_set(&p, "deny_image", "powershell.exe", "test", NULL), 0);
  if (!kill) /* kill_process is the default: left unset */
    CHECK_INT(jw_policy_set(&p, "image_action", action, "test", NULL), 0);
  if (kill_job)
    n = 1; /* the job ends at cmd.exe */
  nargs = spawn_args(&r, name, args, names, n);
  run_case(&r, name, &p, args, nargs);

  v = tw_filter(r.evs, "sandbox.violation", "image_denied");
  CHECK_INT(json_array_size(v), kill_job ? 1 : 2);
  e = json_array_get(v, 0);
  check_rule_event(e, "image_denied",
                   kill_job ? "killed_job"
                   : kill   ? "terminated"
                            : "reported",
                   action);
  CHECK(ends_with(tw_str(e, "process.executable"), "\\rules-bin\\cmd.exe"));
  CHECK_STR(tw_str(e, "enforcement.list"), "deny");
  CHECK_STR(tw_str(e, "enforcement.matched"), "CMD");
  CHECK(json_object_get(e, "limit") == NULL);
  CHECK_INT(tw_int(e, "job_message.id"), 6);
  if (kill_job) {
    CHECK_INT(r.status, JW_EXIT_RULE_KILLED);
    check_last_is_job_end(r.evs, "killed_job");
  } else {
    json_t *cp = tw_filter(r.evs, "sandbox.process_start", "child_process"), *ex;
    e = json_array_get(v, 1);
    check_rule_event(e, "image_denied", kill ? "terminated" : "reported", action);
    CHECK(ends_with(tw_str(e, "process.executable"), "\\rules-bin\\\xC3\x9Cn\xC3\xAF"
                                                     "c\xC3\xB8"
                                                     "d\xC3\xA9.exe"));
    CHECK_STR(tw_str(e, "enforcement.matched"), "\xC3\xBCN\xC3\x8F"
                                                "C\xC3\x98"
                                                "D\xC3\x89.EXE");
    CHECK_INT(r.status, 0);
    CHECK_INT(json_array_size(cp), 3);
    CHECK_STR(tw_str(json_array_get(cp, 0), "action"), "observed");
    CHECK_STR(tw_str(json_array_get(cp, 1), "action"), "observed");
    CHECK(ends_with(tw_str(json_array_get(cp, 1), "process.executable"), "\\ok.exe"));
    CHECK_STR(tw_str(json_array_get(cp, 2), "action"), "observed");
    /* cmd.exe is denied: its ATT&CK technique is in the violation's tags. */
    CHECK_STR(tw_str(json_array_get(v, 0), "rule_id"), "JW-1103");
    CHECK_STR(json_string_value(json_array_get(tw_get(json_array_get(v, 0), "tags"), 1)),
              "attack.t1059.003");
    CHECK_STR(json_string_value(json_array_get(tw_get(json_array_get(v, 0), "tags"), 2)),
              "team.agent_review");
    CHECK_INT(json_array_size(tw_get(json_array_get(v, 0), "tags")), 3);
    /* The other denied image has no interpreter technique: the rule's tag
     * and the policy's. */
    CHECK_STR(json_string_value(json_array_get(tw_get(json_array_get(v, 1), "tags"), 1)),
              "team.agent_review");
    CHECK_INT(json_array_size(tw_get(json_array_get(v, 1), "tags")), 2);
    ex = exit_of(r.evs, tw_int(json_array_get(v, 0), "process.pid"));
    CHECK_STR(tw_str(ex, "action"), kill ? "terminated" : "observed");
    CHECK_CONTAINS(tw_str(ex, "message"), kill ? "monitor rule image_denied" : "exited with");
    json_decref(ex);
    CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 3);
    CHECK_U64(codes[0], kill ? KILLED : 0);
    CHECK_U64(codes[1], 0);
    CHECK_U64(codes[2], kill ? KILLED : 0);
    CHECK_INT(tw_count(r.evs, "sandbox.violation", "abnormal_exit"), 0);
    check_last_is_job_end(r.evs, "observed");
    json_decref(cp);
  }
  json_decref(v);
  finish(&r);
}

/* Allow ok.exe and "win_rules" (the root is exempt anyway): cmd.exe is not
 * on the list. */
static void test_allow(void) {
  static const char *const names[] = {"ok.exe", "cmd.exe"};
  run_t r;
  jw_policy_t p;
  const char *args[12];
  int nargs;
  DWORD codes[MAX_CHILDREN];
  json_t *e, *cp;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "allow_image", "OK.exe", "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "allow_image", "python", "test", NULL), 0);
  nargs = spawn_args(&r, "allow-kill_process", args, names, 2);
  run_case(&r, "allow-kill_process", &p, args, nargs);
  CHECK_INT(r.status, 0);
  e = one(r.evs, "sandbox.violation", "image_not_allowed");
  check_rule_event(e, "image_not_allowed", "terminated", "kill_process");
  CHECK(ends_with(tw_str(e, "process.executable"), "\\cmd.exe"));
  CHECK_STR(tw_str(e, "enforcement.list"), "allow");
  CHECK(tw_get(e, "enforcement.matched") == NULL);
  cp = tw_filter(r.evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 2);
  CHECK_STR(tw_str(json_array_get(cp, 0), "action"), "observed");
  CHECK_STR(tw_str(json_array_get(cp, 1), "action"), "observed");
  CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 2);
  CHECK_U64(codes[0], 0);
  CHECK_U64(codes[1], KILLED);
  json_decref(cp);
  json_decref(e);
  finish(&r);
}

/* Injected: the image of cmd.exe never reads (error 6 forever). */
static BOOL WINAPI unreadable_cmd(HANDLE h, DWORD flags, LPWSTR buf, PDWORD size) {
  DWORD cap = *size;
  if (!QueryFullProcessImageNameW(h, flags, buf, size))
    return FALSE;
  if (*size >= 7 && _wcsicmp(buf + *size - 7, L"cmd.exe") == 0) {
    *size = cap;
    SetLastError(ERROR_INVALID_HANDLE);
    return FALSE;
  }
  return TRUE;
}

static void test_image_unknown(void) {
  static const char *const names[] = {"cmd.exe", "ok.exe"};
  run_t r;
  jw_policy_t p;
  const char *args[12];
  int nargs;
  DWORD codes[MAX_CHILDREN];
  json_t *e;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "deny_image", "powershell", "test", NULL), 0);
  nargs = spawn_args(&r, "image-unknown", args, names, 2);
  jw__monitor_image_hook(unreadable_cmd);
  run_case(&r, "image-unknown", &p, args, nargs);
  jw__monitor_image_hook(NULL);
  CHECK_INT(r.status, 0);
  e = one(r.evs, "sandbox.violation", "image_unknown");
  check_rule_event(e, "image_unknown", "terminated", "kill_process");
  CHECK(json_is_null(tw_get(e, "process.executable")));
  CHECK_STR(tw_str(e, "error.where"), "QueryFullProcessImageNameW");
  CHECK_INT(tw_int(e, "error.win32_error"), 6);
  CHECK(tw_get(e, "enforcement.list") == NULL);
  CHECK_INT(tw_count(r.evs, "sandbox.violation", "image_denied"), 0);
  CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 2);
  CHECK_U64(codes[0], KILLED);
  CHECK_U64(codes[1], 0);
  json_decref(e);
  finish(&r);
}

/* ------------------------------------------------------------------------ */
/* active_processes: the kernel limit Wine does not enforce                 */
/* ------------------------------------------------------------------------ */

static void test_active(const char *action) {
  static const char *const names[] = {"ok.exe", "ok.exe"};
  run_t r;
  jw_policy_t p;
  const char *args[12];
  char name[64];
  int nargs, report = strcmp(action, "report") == 0, kill_job = strcmp(action, "kill_job") == 0;
  DWORD codes[MAX_CHILDREN];
  json_t *cp;

  snprintf(name, sizeof(name), "active-%s", action);
  jw_policy_init(&p);
  /* The root and one child at once: the second child is one too many. */
  CHECK_INT(jw_policy_set(&p, "active_processes", "2", "test", NULL), 0);
  if (!report) /* report is the default: left unset */
    CHECK_INT(jw_policy_set(&p, "active_processes_action", action, "test", NULL), 0);
  nargs = spawn_args(&r, name, args, names, 2);
  run_case(&r, name, &p, args, nargs);

  cp = tw_filter(r.evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 2);
  CHECK_STR(tw_str(json_array_get(cp, 0), "action"), "observed");
  /* Under Wine the kernel lets it start: it has its start like any
   * process, and the violation of the limit follows. */
  CHECK_STR(tw_str(json_array_get(cp, 1), "action"), "observed");
  CHECK(tw_get(json_array_get(cp, 1), "limit") == NULL);
  if (report) {
    /* Nobody stops it: the limit was not enforced, and that is the report. */
    json_t *e = one(r.evs, "sandbox.violation", "active_processes");
    check_rule_event(e, "active_processes", "not_enforced", "report");
    CHECK_INT(tw_int(e, "limit.configured"), 2);
    CHECK_INT(tw_int(e, "limit.observed"), 3);
    CHECK_INT(tw_int(e, "process.pid"), tw_int(json_array_get(cp, 1), "process.pid"));
    json_decref(e);
    CHECK_INT(r.status, 0);
    CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 2);
    CHECK_U64(codes[0], 0);
    CHECK_U64(codes[1], 0);
  } else {
    json_t *e = one(r.evs, "sandbox.violation", "active_processes");
    check_rule_event(e, "active_processes", kill_job ? "killed_job" : "terminated", action);
    CHECK_STR(tw_str(e, "limit.name"), "active_processes");
    CHECK_INT(tw_int(e, "limit.configured"), 2);
    CHECK_INT(tw_int(e, "limit.observed"), 3);
    CHECK_INT(tw_int(e, "process.pid"), tw_int(json_array_get(cp, 1), "process.pid"));
    if (kill_job) {
      CHECK_INT(r.status, JW_EXIT_RULE_KILLED);
      check_last_is_job_end(r.evs, "killed_job");
    } else {
      CHECK_INT(r.status, 0);
      CHECK_INT(read_codes(r.out, codes, MAX_CHILDREN), 2);
      CHECK_U64(codes[0], 0);
      CHECK_U64(codes[1], KILLED);
      check_last_is_job_end(r.evs, "observed");
    }
    json_decref(e);
  }
  json_decref(cp);
  finish(&r);
}

/* ------------------------------------------------------------------------ */
/* The real jobwarden.exe with the flags                                    */
/* ------------------------------------------------------------------------ */

static void test_cli(const char *tag, const char *flags, const char *helper_args,
                     const char *rule) {
  char args[TW_CMD_CHARS], log[TW_PATH_CHARS];
  tw_run_t r;
  json_t *evs, *e;

  snprintf(log, sizeof(log), "%s\\wine-rules-cli-%s.jsonl", g_dir, tag);
  remove(log);
  snprintf(args, sizeof(args), "run --export \"file:%s\" %s -- \"%s\" --helper %s", log, flags,
           rig_self_utf8(), helper_args);
  if (tw_jw_start(
          &(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = 30000},
          &r) != 0) {
    CHECK(!"jobwarden.exe did not start");
    return;
  }
  CHECK_INT(tw_jw_wait(&r), 1);
  CHECK(r.exit_code != (DWORD)-1);
  CHECK_U64(r.exit_code, JW_EXIT_RULE_KILLED);
  {
    char want[128];
    snprintf(want, sizeof(want),
             "jobwarden: the monitor rule %s terminated the job (exit status 124)", rule);
    CHECK_CONTAINS(r.err, want);
  }
  evs = json_incref(r.events);
  tw_jw_free(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  e = one(evs, "sandbox.violation", rule);
  check_rule_event(e, rule, "killed_job", "kill_job");
  json_decref(e);
  e = json_array_get(evs, 0);
  CHECK_STR(tw_str(e, "event"), "sandbox.job_start");
  CHECK_STR(tw_str(e, "policy.rules.timeout.action"), "kill_job");
  check_last_is_job_end(evs, "killed_job");
  json_decref(evs);
  remove(r.out_path);
  remove(r.err_path);
}

static void test_timeout_report(void) {
  test_timeout("report");
}
static void test_timeout_kill_process(void) {
  test_timeout("kill_process");
}
static void test_timeout_kill_job(void) {
  test_timeout("kill_job");
}
static void test_total_report(void) {
  test_total("report");
}
static void test_total_kill_process(void) {
  test_total("kill_process");
}
static void test_total_kill_job(void) {
  test_total("kill_job");
}
static void test_deny_report(void) {
  test_deny("report");
}
static void test_deny_kill_process(void) {
  test_deny("kill_process");
}
static void test_deny_kill_job(void) {
  test_deny("kill_job");
}
static void test_active_report(void) {
  test_active("report");
}
static void test_active_kill_process(void) {
  test_active("kill_process");
}
static void test_active_kill_job(void) {
  test_active("kill_job");
}

static void test_cli_timeout(void) {
  test_cli("timeout", "--timeout 300ms --timeout-action kill_job", "sleep 30000", "timeout");
}

static void test_cli_deny(void) {
  char args[TW_PATH_CHARS * 2];
  char codes[TW_PATH_CHARS];
  snprintf(codes, sizeof(codes), "%s\\wine-rules-cli-deny.codes", g_dir);
  snprintf(args, sizeof(args), "rules-spawn \"%s\" %s \"%s\" cmd.exe", codes, CHILD_MS, g_bin);
  test_cli("deny", "--deny-image cmd.exe --image-action kill_job", args, "image_denied");
  remove(codes);
}

/* Runnable one by one: `win_rules.exe DATA EVENTS JOBWARDEN --case deny_kill_job`. */
static const jw_test_case_t cases[] = {
    {"timeout_report", test_timeout_report, 60},
    {"timeout_kill_process", test_timeout_kill_process, 60},
    {"timeout_kill_job", test_timeout_kill_job, 60},
    {"total_report", test_total_report, 60},
    {"total_kill_process", test_total_kill_process, 60},
    {"total_kill_job", test_total_kill_job, 60},
    {"deny_report", test_deny_report, 60},
    {"deny_kill_process", test_deny_kill_process, 60},
    {"deny_kill_job", test_deny_kill_job, 60},
    {"allow", test_allow, 60},
    {"image_unknown", test_image_unknown, 60},
    {"active_report", test_active_report, 60},
    {"active_kill_process", test_active_kill_process, 60},
    {"active_kill_job", test_active_kill_job, 60},
    {"cli_timeout", test_cli_timeout, 60},
    {"cli_deny", test_cli_deny, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv)) {
    if (strcmp(argv[2], "rules-spawn") == 0)
      return helper_rules_spawn(argc, argv);
    return tw_helper_main(argc, argv);
  }
  if (tw_test_setup(argc, argv, "wine-rules-cli-", g_dir, g_jw, NULL) != 0 || make_bin() != 0)
    return 1;
  return TW_RUN_CASES("rules_real", argc, argv, cases);
}

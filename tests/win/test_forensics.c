/* wine.real.forensics and wine.injected.reconcile — the evidence in process
 * events, and reconciliation of what the port did not say.
 *
 * real (the real Win32 path under Wine, mode "real"):
 *   enrich     a root, a child with a hostile command line (quotes,
 *              backslashes, ESC, U+202E, non-ASCII) and a grandchild: each
 *              event's command line equals what the process itself reports
 *              (GetCommandLineW, written to a file by the process), user and
 *              integrity equal the test's own token, parent entity ids and
 *              the ancestry chain link to the other events, exits carry end
 *              time, lifetime, peak working set, and CPU / I/O are marked
 *              unavailable exactly as Wine makes them; the job-end process
 *              tree equals the three processes.
 *   longcmd    a 9000-character command line is kept to 8192 units, marked
 *              truncated, and the event stays far below a syslog datagram.
 *   terminate  TerminateJobObject: Wine posts no EXIT_PROCESS, the monitor
 *              synthesizes both exits (source reconciled) and one gap
 *              record naming exactly those two messages.
 *
 * injected (the port loses a message, through the monitor's drop hook,
 * mode "injected"):
 *   lost exit   the child's EXIT_PROCESS: found by its handle, reported with
 *               the exact exit code, gap record detected_by process_handle.
 *   lost start  the child's NEW_PROCESS: found in the job's process id list
 *               at the next port traffic (no polling), reported as
 *               child_process with source reconciled, gap record
 *               detected_by process_id_list; its EXIT still arrives.
 *   lost exit and signal  a child's EXIT_PROCESS and the exit watcher's packet:
 *               found at the next port traffic by the job's accounting and
 *               the signaled handle, reconciled with the exact exit code.
 *   lost both   a short child's NEW_PROCESS and EXIT_PROCESS: the job's
 *               accounting (or, if it lived long enough, the id list)
 *               reports exactly one lost start.
 *   signal before end  the child's state reads "unsettled" (signaled, no
 *               exit time) three times (what Wine's threadless moments look like):
 *               one packet only after the end, no tampering, the exit
 *               reconciled with its code (its EXIT_PROCESS dropped).
 *   watcher settles  the watcher alone on an event: no packet while
 *               "not ended", back in the wait when unsignaled, one packet
 *               at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "rig.h"
#include "win/exitwatch.h"

#include <sddl.h>

/* The hostile tail of the child's command line. */
#define HOSTILE L"\"a b\" c\\\\\" \\x \x1b[31m red \x202e evil.exe \x00e9t\x00e9 \x4e2d"

static const char *g_dir;

/* ---- helper modes (in the sandbox) --------------------------------------- */

static int write_text(const char *path, const wchar_t *text) {
  char tmp[TW_PATH_CHARS], *u8;
  FILE *f;
  int n = WideCharToMultiByte(CP_UTF8, 0, text, -1, NULL, 0, NULL, NULL);
  if (n <= 0 || (u8 = malloc((size_t)n)) == NULL)
    return -1;
  WideCharToMultiByte(CP_UTF8, 0, text, -1, u8, n, NULL, NULL);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (f == NULL) {
    free(u8);
    return -1;
  }
  fputs(u8, f);
  free(u8);
  if (fclose(f) != 0 || !MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING))
    return -1;
  return 0;
}

/* froot DIR: writes DIR/root.cmd, starts the hostile child, waits. */
static int mode_root(const char *dir) {
  wchar_t cmd[2048];
  char path[TW_PATH_CHARS];
  DWORD code = 0;
  snprintf(path, sizeof(path), "%s/root.cmd", dir);
  if (write_text(path, GetCommandLineW()) != 0)
    return 80;
  swprintf(cmd, 2048, L"\"%ls\" --helper fchild %hs " HOSTILE, tw_self(), dir);
  if (tw_run_wait(cmd, INFINITE, &code) != 0)
    return 81;
  return code == 3 ? 0 : 82;
}

/* fchild DIR ...: writes DIR/child.cmd, runs a grandchild (sleep 300). */
static int mode_child(const char *dir) {
  wchar_t cmd[1024];
  char path[TW_PATH_CHARS];
  DWORD code = 1;
  snprintf(path, sizeof(path), "%s/child.cmd", dir);
  if (write_text(path, GetCommandLineW()) != 0)
    return 83;
  tw_helper_cmdline(cmd, 1024, "sleep 300");
  if (tw_run_wait(cmd, INFINITE, &code) != 0 || code != 0)
    return 84;
  return 3;
}

/* parent-of MS CHILD_ARGS...: runs `--helper CHILD_ARGS`, waits for it,
 * then sleeps MS (the root still runs after its child's end). */
static int mode_parent_of(int argc, char **argv) {
  wchar_t cmd[1024];
  char args[512] = "";
  DWORD code;
  int i;
  for (i = 4; i < argc; i++) {
    strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
    strncat(args, " ", sizeof(args) - strlen(args) - 1);
  }
  tw_helper_cmdline(cmd, 1024, args);
  if (tw_run_wait(cmd, INFINITE, &code) != 0)
    return 85;
  Sleep((DWORD)strtoul(argv[3], NULL, 0));
  return 0;
}

/* two-then MS: runs `--helper exit 7` to its end, then `--helper exit 0`
 * to its end (port traffic after the first one's end), then sleeps MS. */
static int mode_two_then(char **argv) {
  wchar_t cmd[1024];
  DWORD code;
  tw_helper_cmdline(cmd, 1024, "exit 7");
  if (tw_run_wait(cmd, INFINITE, &code) != 0 || code != 7)
    return 88;
  tw_helper_cmdline(cmd, 1024, "exit 0");
  if (tw_run_wait(cmd, INFINITE, &code) != 0 || code != 0)
    return 89;
  Sleep((DWORD)strtoul(argv[3], NULL, 0));
  return 0;
}

/* then-another MS: starts `--helper sleep MS` (the child whose start the
 * test drops), then runs `--helper exit 0` to its end (ordinary port
 * traffic while the first one runs), then waits for the first. */
static int mode_then_another(char **argv) {
  wchar_t cmd[1024], cmd2[1024];
  char args[64];
  PROCESS_INFORMATION pi;
  DWORD code;
  snprintf(args, sizeof(args), "sleep %s", argv[3]);
  tw_helper_cmdline(cmd, 1024, args);
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 86;
  tw_helper_cmdline(cmd2, 1024, "exit 0");
  if (tw_run_wait(cmd2, INFINITE, &code) != 0)
    return 87;
  WaitForSingleObject(pi.hProcess, 60000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0;
}

/* longcmd: starts `--helper sleep 100 <9000 x>` (a command line longer
 * than jobwarden keeps) and waits. */
static int mode_longcmd(void) {
  static wchar_t cmd[10000];
  DWORD code;
  int n = swprintf(cmd, 10000, L"\"%ls\" --helper sleep 100 ", tw_self()), i;
  for (i = 0; i < 9000 && n + i < 9999; i++)
    cmd[n + i] = L'x';
  cmd[n + i] = 0;
  return tw_run_wait(cmd, INFINITE, &code) == 0 ? 0 : 86;
}

/* ---- the test's own identity --------------------------------------------- */

static char g_sid[200], g_user[600];
static const char *g_integrity;

static void own_identity(void) {
  HANDLE tok;
  union {
    TOKEN_USER user;
    TOKEN_MANDATORY_LABEL label;
    BYTE raw[256];
  } info;
  DWORD n;
  LPSTR s;
  wchar_t name[256], dom[256], full[520];
  DWORD nn = 256, dn = 256;
  SID_NAME_USE use;
  CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
  CHECK(GetTokenInformation(tok, TokenUser, &info, sizeof(info), &n));
  CHECK(ConvertSidToStringSidA(info.user.User.Sid, &s));
  snprintf(g_sid, sizeof(g_sid), "%s", s);
  LocalFree(s);
  if (LookupAccountSidW(NULL, info.user.User.Sid, name, &nn, dom, &dn, &use)) {
    swprintf(full, 520, dom[0] ? L"%ls\\%ls" : L"%ls%ls", dom[0] ? dom : L"", name);
    WideCharToMultiByte(CP_UTF8, 0, full, -1, g_user, sizeof(g_user), NULL, NULL);
  }
  if (GetTokenInformation(tok, TokenIntegrityLevel, &info, sizeof(info), &n)) {
    DWORD rid = *GetSidSubAuthority(info.label.Label.Sid,
                                    *GetSidSubAuthorityCount(info.label.Label.Sid) - 1u);
    g_integrity = rid < 0x1000   ? "untrusted"
                  : rid < 0x2000 ? "low"
                  : rid < 0x2100 ? "medium"
                  : rid < 0x3000 ? "medium_plus"
                  : rid < 0x4000 ? "high"
                  : rid < 0x5000 ? "system"
                                 : "protected";
  }
  CloseHandle(tok);
}

/* ---- checks --------------------------------------------------------------- */

/* The one event of `evs` named `event` (rule may be NULL) whose
 * process.pid is pid (borrowed; NULL and a failed check if not exactly
 * one). */
static json_t *one_for(json_t *evs, const char *event, const char *rule, long long pid) {
  json_t *all = tw_filter(evs, event, rule), *ev, *found = NULL;
  size_t i;
  int n = 0;
  json_array_foreach(all, i, ev) {
    if (tw_int(ev, "process.pid") == pid) {
      found = ev;
      n++;
    }
  }
  json_decref(all);
  CHECK_INT(n, 1);
  if (n != 1)
    fprintf(stderr, "  (%s %s pid %lld)\n", event, rule ? rule : "*", pid);
  return n == 1 ? found : NULL;
}

static void check_identity(json_t *ev) {
  if (ev == NULL)
    return;
  CHECK_STR(tw_str(ev, "process.user.sid"), g_sid);
  if (g_user[0])
    CHECK_STR(tw_str(ev, "process.user.name"), g_user);
  if (g_integrity)
    CHECK_STR(tw_str(ev, "process.integrity"), g_integrity);
}

/* The exit facts: end after start, lifetime at least min_ms, a peak working
 * set, and CPU / I/O as this platform gives them. */
static void check_exit_facts(json_t *ev, long long min_ms) {
  long long life;
  if (ev == NULL)
    return;
  CHECK(tw_str(ev, "process.end") != NULL);
  CHECK(tw_str(ev, "process.start") != NULL &&
        strcmp(tw_str(ev, "process.start"), tw_str(ev, "process.end")) <= 0);
  life = tw_int(ev, "process.lifetime_ms");
  CHECK(life >= min_ms && life < 20000);
  CHECK(tw_int(ev, "process.memory.peak_working_set") > 0);
  if (jw__is_wine()) {
    /* Wine: GetProcessMemoryInfo answers 0 once the process is gone (the
     * largest sample taken while it ran stands in) but may still answer
     * while the exit message is handled; the caller's own CPU times for
     * another process; zero I/O counters. */
    CHECK(tw_str(ev, "process.memory.from") != NULL &&
          (strcmp(tw_str(ev, "process.memory.from"), "exit") == 0 ||
           strcmp(tw_str(ev, "process.memory.from"), "samples") == 0));
    CHECK_STR(tw_str(ev, "process.unavailable.cpu"),
              "the system answered with jobwarden's own CPU times, not the process's");
    CHECK_STR(tw_str(ev, "process.unavailable.io"),
              "Wine reports zero I/O counters for every other process");
    CHECK(tw_get(ev, "process.cpu") == NULL);
    CHECK(tw_get(ev, "process.io") == NULL);
  } else {
    CHECK_STR(tw_str(ev, "process.memory.from"), "exit");
    CHECK(tw_int(ev, "process.cpu.user_ms") >= 0);
    CHECK(tw_int(ev, "process.io.read_ops") >= 0);
    CHECK(tw_get(ev, "process.unavailable") == NULL);
  }
}

static char *file_utf8(const char *dir, const char *name) {
  char path[TW_PATH_CHARS];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  return tw_read_file(path, NULL);
}

/* ---- real: enrichment ----------------------------------------------------- */

static void test_enrich(void) {
  rig_t r;
  jw_policy_t p;
  char dir[TW_PATH_CHARS], hostile[512];
  const char *args[2];
  json_t *evs, *rs, *cs, *gs, *re, *ce, *ge, *end, *tree, *anc;
  char *root_cmd, *child_cmd;
  long long root, child, gc;
  const char *root_eid, *child_eid, *gc_eid;
  size_t i;

  snprintf(dir, sizeof(dir), "%s/forensics-enrich", g_dir);
  CreateDirectoryA(dir, NULL);
  args[0] = "froot";
  args[1] = dir;
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", "hardened", "test", NULL), 0);
  if (rig_start(&r, g_dir, "forensics-enrich", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    return;
  }
  root = r.child.pid;
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  CHECK_U64(r.stats.processes_seen, 3);
  rs = one_for(evs, "sandbox.process_start", "root_process", root);
  {
    json_t *cps = tw_filter(evs, "sandbox.process_start", "child_process");
    CHECK_INT(json_array_size(cps), 2);
    cs = json_array_get(cps, 0);
    gs = json_array_get(cps, 1);
    child = tw_int(cs, "process.pid");
    gc = tw_int(gs, "process.pid");
    json_incref(cs);
    json_incref(gs);
    json_decref(cps);
  }
  if (rs == NULL || cs == NULL || gs == NULL) {
    json_decref(evs);
    return;
  }

  /* Command lines: exactly what each process reports for itself. */
  root_cmd = file_utf8(dir, "root.cmd");
  child_cmd = file_utf8(dir, "child.cmd");
  CHECK(root_cmd != NULL && child_cmd != NULL);
  if (root_cmd != NULL)
    CHECK_STR(tw_str(rs, "process.command_line"), root_cmd);
  if (child_cmd != NULL)
    CHECK_STR(tw_str(cs, "process.command_line"), child_cmd);
  WideCharToMultiByte(CP_UTF8, 0, HOSTILE, -1, hostile, sizeof(hostile), NULL, NULL);
  {
    const char *cl = tw_str(cs, "process.command_line");
    CHECK(cl != NULL && strlen(cl) > strlen(hostile) &&
          strcmp(cl + strlen(cl) - strlen(hostile), hostile) == 0);
  }
  CHECK(tw_str(gs, "process.command_line") != NULL &&
        strstr(tw_str(gs, "process.command_line"), "--helper sleep 300") != NULL);
  CHECK(tw_get(rs, "process.unavailable") == NULL);
  CHECK(tw_get(cs, "process.unavailable") == NULL);
  free(root_cmd);
  free(child_cmd);

  /* Identity. */
  check_identity(rs);
  check_identity(cs);
  check_identity(gs);

  /* Lineage: parent entity ids and ancestry link the three. */
  root_eid = tw_str(rs, "process.entity_id");
  child_eid = tw_str(cs, "process.entity_id");
  gc_eid = tw_str(gs, "process.entity_id");
  CHECK(root_eid != NULL && child_eid != NULL && gc_eid != NULL);
  CHECK_INT(tw_int(rs, "process.parent.pid"), (long long)GetCurrentProcessId());
  CHECK(tw_str(rs, "process.parent.entity_id") != NULL);
  CHECK_INT(json_array_size(tw_get(rs, "process.ancestry")), 0);
  CHECK_INT(tw_int(cs, "process.parent.pid"), root);
  CHECK_STR(tw_str(cs, "process.parent.entity_id"), root_eid);
  anc = tw_get(cs, "process.ancestry");
  CHECK_INT(json_array_size(anc), 1);
  CHECK_STR(tw_str(json_array_get(anc, 0), "entity_id"), root_eid);
  CHECK_STR(tw_str(json_array_get(anc, 0), "executable"), tw_str(rs, "process.executable"));
  CHECK_INT(tw_int(gs, "process.parent.pid"), child);
  CHECK_STR(tw_str(gs, "process.parent.entity_id"), child_eid);
  anc = tw_get(gs, "process.ancestry");
  CHECK_INT(json_array_size(anc), 2);
  CHECK_INT(tw_int(json_array_get(anc, 0), "pid"), child);
  CHECK_STR(tw_str(json_array_get(anc, 0), "entity_id"), child_eid);
  CHECK_INT(tw_int(json_array_get(anc, 1), "pid"), root);
  CHECK_STR(tw_str(json_array_get(anc, 1), "entity_id"), root_eid);

  /* Exits. */
  re = one_for(evs, "sandbox.process_exit", "root_process", root);
  ce = one_for(evs, "sandbox.process_exit", "child_process", child);
  ge = one_for(evs, "sandbox.process_exit", "child_process", gc);
  if (re && ce && ge) {
    CHECK_INT(tw_int(re, "process.exit_code"), 0);
    CHECK_INT(tw_int(ce, "process.exit_code"), 3);
    CHECK_INT(tw_int(ge, "process.exit_code"), 0);
    CHECK_STR(tw_str(ge, "process.entity_id"), gc_eid);
    CHECK_STR(tw_str(ge, "process.command_line"), tw_str(gs, "process.command_line"));
    check_exit_facts(re, 300);
    check_exit_facts(ce, 300);
    check_exit_facts(ge, 300);
  }

  /* The process tree of the run. */
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  tree = tw_get(end, "summary.process_tree");
  CHECK_INT(json_array_size(tree), 3);
  for (i = 0; i < json_array_size(tree) && i < 3; i++) {
    json_t *e = json_array_get(tree, i);
    long long want_pid[3] = {root, child, gc}, want_code[3] = {0, 3, 0};
    const char *want_eid[3] = {root_eid, child_eid, gc_eid};
    const char *want_parent[3] = {NULL, root_eid, child_eid};
    json_t *start_ev[3] = {rs, cs, gs};
    CHECK_INT(tw_int(e, "pid"), want_pid[i]);
    CHECK_STR(tw_str(e, "entity_id"), want_eid[i]);
    if (want_parent[i] != NULL)
      CHECK_STR(tw_str(e, "parent.entity_id"), want_parent[i]);
    CHECK_STR(tw_str(e, "executable"), tw_str(start_ev[i], "process.executable"));
    CHECK_STR(tw_str(e, "start"), tw_str(start_ev[i], "process.start"));
    CHECK(tw_str(e, "end") != NULL);
    CHECK_INT(tw_int(e, "exit_code"), want_code[i]);
    CHECK_STR(tw_str(e, "start_source"), i == 0 ? "jobwarden" : "port");
  }
  /* Nothing was lost on the way. */
  CHECK_INT(json_array_size(tw_filter(evs, "sandbox.telemetry_gap", NULL)), 0);
  CHECK_INT(tw_int(end, "summary.reconciled_events"), 0);
  json_decref(cs);
  json_decref(gs);
  json_decref(evs);
}

/* ---- real: a command line longer than kept ---------------------------------- */

static void test_long_command_line(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"longcmd"};
  json_t *evs, *cp;
  const char *cl;
  char *text;
  size_t len = 0, longest = 0, i, start = 0;
  jw_policy_init(&p);
  if (rig_start(&r, g_dir, "forensics-longcmd", &p, args, 1) != 0) {
    CHECK(!"rig_start");
    return;
  }
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  cp = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 1);
  cl = tw_str(json_array_get(cp, 0), "process.command_line");
  CHECK(cl != NULL && strlen(cl) == JW_COMMAND_LINE_MAX_UNITS);
  CHECK(cl != NULL && strstr(cl, "--helper sleep 100 xxxx") != NULL && cl[strlen(cl) - 1] == 'x');
  CHECK(json_is_true(tw_get(json_array_get(cp, 0), "process.command_line_truncated")));
  json_decref(cp);
  json_decref(evs);
  /* Every line stays far below a syslog datagram (65000 bytes). */
  text = tw_read_file(r.path, &len);
  for (i = 0; text != NULL && i < len; i++)
    if (text[i] == '\n') {
      if (i - start > longest)
        longest = i - start;
      start = i + 1;
    }
  CHECK(longest > JW_COMMAND_LINE_MAX_UNITS && longest < 20000);
  free(text);
}

/* ---- real: handles of exited processes are let go ------------------------- */

/* 40 short-lived children: once their exits are reported the monitor holds
 * no handle to them (without that, a long run would keep every process it
 * ever had alive in the kernel), and the events still carry their exit
 * facts and the process tree all 41. */
static void test_handles_released(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"series", "40", "0"};
  json_t *evs, *ex, *e;
  size_t i;
  jw_policy_init(&p);
  if (rig_start(&r, g_dir, "forensics-handles", &p, args, 3) != 0) {
    CHECK(!"rig_start");
    return;
  }
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  CHECK_U64(r.stats.processes_seen, 41);
  CHECK_U64(r.stats.handles_held, 0);
  ex = tw_filter(evs, "sandbox.process_exit", "child_process");
  CHECK_INT(json_array_size(ex), 40);
  json_array_foreach(ex, i, e) {
    CHECK_INT(tw_int(e, "process.exit_code"), 0);
    CHECK(tw_str(e, "process.end") != NULL);
  }
  e = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_INT(json_array_size(tw_get(e, "summary.process_tree")), 41);
  CHECK_INT(json_array_size(tw_filter(evs, "sandbox.telemetry_gap", NULL)), 0);
  json_decref(ex);
  json_decref(evs);
}

/* ---- real: TerminateJobObject --------------------------------------------- */

/* The gap records of evs with reason port_message_lost, all entries of
 * their "lost" lists appended to *lost (new array). */
static size_t port_gaps(json_t *evs, json_t **lost) {
  json_t *gaps = tw_filter(evs, "sandbox.telemetry_gap", "telemetry_gap"), *g;
  size_t i, n = 0;
  *lost = json_array();
  json_array_foreach(gaps, i, g) {
    size_t j;
    json_t *e;
    CHECK_STR(tw_str(g, "gap.reason"), "port_message_lost");
    CHECK_STR(tw_str(g, "source"), "reconciled");
    CHECK(tw_get(g, "enforcer") == NULL); /* lost: nobody acted */
    CHECK_STR(tw_str(g, "severity"), "medium");
    json_array_foreach(tw_get(g, "gap.lost"), j, e) json_array_append(*lost, e);
    n++;
  }
  json_decref(gaps);
  return n;
}

static void test_terminate(void) {
  rig_t r;
  jw_policy_t p;
  char pidfile[TW_PATH_CHARS];
  const char *args[] = {"tree", pidfile, "60000"};
  json_t *evs, *lost, *ex, *e;
  DWORD root = 0, child = 0;
  size_t i;

  snprintf(pidfile, sizeof(pidfile), "%s/forensics-terminate.pids", g_dir);
  remove(pidfile);
  jw_policy_init(&p);
  if (rig_start(&r, g_dir, "forensics-terminate", &p, args, 3) != 0) {
    CHECK(!"rig_start");
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, 10000, &root, &child), 0);
  /* The child's NEW_PROCESS is handled: its event is written. */
  CHECK_INT(tw_wait_event_pid(r.path, child, 10000), 0);
  jw_monitor_note_terminating(r.mon, "terminated by the test");
  CHECK(TerminateJobObject(r.job.job, JW_TERMINATE_EXIT_CODE));
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  ex = tw_filter(evs, "sandbox.process_exit", NULL);
  CHECK_INT(json_array_size(ex), 2);
  json_array_foreach(ex, i, e) {
    CHECK_STR(tw_str(e, "source"), "reconciled"); /* Wine: no EXIT_PROCESS */
    CHECK_INT(tw_int(e, "process.exit_code"), JW_TERMINATE_EXIT_CODE);
    CHECK(tw_str(e, "process.end") != NULL);
  }
  CHECK_INT(port_gaps(evs, &lost), 1);
  CHECK_INT(json_array_size(lost), 2);
  json_array_foreach(lost, i, e) {
    long long pid = tw_int(e, "pid");
    json_t *exit_ev = one_for(evs, "sandbox.process_exit", NULL, pid);
    CHECK(pid == (long long)root || pid == (long long)child);
    CHECK_STR(tw_str(e, "message"), "JOB_OBJECT_MSG_EXIT_PROCESS");
    CHECK_STR(tw_str(e, "detected_by"), "process_handle");
    if (exit_ev != NULL)
      CHECK_STR(tw_str(e, "entity_id"), tw_str(exit_ev, "process.entity_id"));
  }
  CHECK(tw_int(json_array_get(lost, 0), "pid") != tw_int(json_array_get(lost, 1), "pid"));
  e = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(e, "event"), "sandbox.job_end");
  CHECK_INT(tw_int(e, "summary.reconciled_events"), 2);
  CHECK_INT(json_array_size(tw_get(e, "summary.process_tree")), 2);
  CHECK_INT(tw_int(json_array_get(tw_get(e, "summary.process_tree"), 1), "exit_code"),
            JW_TERMINATE_EXIT_CODE);
  json_decref(lost);
  json_decref(ex);
  json_decref(evs);
  remove(pidfile);
}

/* ---- injected: the port loses messages ------------------------------------ */

static volatile LONG g_drop_msg;   /* the message id to drop, 0 = none */
static volatile LONG g_drop_msg2;  /* a second one */
static volatile LONG g_drop_after; /* drop only for pids other than this (the root) */
static volatile LONG g_dropped;
static volatile LONG g_drop_max; /* drop at most this many, 0 = every one */

/* The root's pid. The monitor may handle the root's own packets before
 * the test has learnt it (rig_start returning): waits for the test to set
 * it, rather than take the root for a child by chance. Bounded, so a test
 * that failed to start leaves no monitor stuck here. */
static DWORD root_pid(void) {
  ULONGLONG deadline = GetTickCount64() + 10000;
  while (InterlockedCompareExchange(&g_drop_after, 0, 0) == 0 && GetTickCount64() < deadline)
    Sleep(1);
  return (DWORD)InterlockedCompareExchange(&g_drop_after, 0, 0);
}

static int drop_one(DWORD msg, ULONG_PTR value) {
  if ((msg != (DWORD)g_drop_msg && msg != (DWORD)g_drop_msg2) || (DWORD)value == 0)
    return 0;
  if ((DWORD)value != root_pid() &&
      (g_drop_max == 0 || InterlockedCompareExchange(&g_dropped, 0, 0) < g_drop_max)) {
    InterlockedIncrement(&g_dropped);
    return 1;
  }
  return 0;
}

/* Runs `parent-of SLEEP child...` with the given messages of non-root
 * processes dropped; returns the events. */
static jw_monitor_stats_t g_stats; /* the last run_dropping's monitor */

static json_t *run_dropping(const char *name, DWORD msg, DWORD msg2, const char *const *args,
                            int nargs, DWORD *root) {
  rig_t r;
  jw_policy_t p;
  json_t *evs;
  jw_policy_init(&p);
  g_drop_msg = (LONG)msg;
  g_drop_msg2 = (LONG)msg2;
  g_drop_after = 0;
  g_dropped = 0;
  /* then-another: only the first child's start; two-then: the first
   * child's exit message and its watcher's packet. */
  g_drop_max = strcmp(args[0], "then-another") == 0 ? 1 : strcmp(args[0], "two-then") == 0 ? 2 : 0;
  jw__monitor_drop_hook(drop_one);
  if (rig_start(&r, g_dir, name, &p, args, nargs) != 0) {
    jw__monitor_drop_hook(NULL);
    CHECK(!"rig_start");
    return NULL;
  }
  *root = r.child.pid;
  InterlockedExchange(&g_drop_after, (LONG)r.child.pid);
  evs = rig_finish(&r);
  g_stats = r.stats;
  jw__monitor_drop_hook(NULL);
  CHECK(evs != NULL);
  return evs;
}

static void test_lost_exit(void) {
  const char *args[] = {"parent-of", "1500", "exit", "7"};
  DWORD root = 0;
  json_t *evs = run_dropping("reconcile-lost-exit", JOB_OBJECT_MSG_EXIT_PROCESS, 0, args, 4, &root);
  json_t *cp, *ex, *lost, *end;
  long long child;
  if (evs == NULL)
    return;
  CHECK_INT(g_dropped, 1);
  cp = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 1);
  child = tw_int(json_array_get(cp, 0), "process.pid");
  CHECK_STR(tw_str(json_array_get(cp, 0), "source"), "port");
  ex = one_for(evs, "sandbox.process_exit", "child_process", child);
  if (ex != NULL) {
    CHECK_STR(tw_str(ex, "source"), "reconciled");
    CHECK(tw_get(ex, "job_message") == NULL);
    CHECK_INT(tw_int(ex, "process.exit_code"), 7);
    CHECK_STR(tw_str(ex, "process.exit_class"), "failure");
    CHECK(tw_str(ex, "process.end") != NULL);
    /* Reconciled later, dated when it happened: its exit time. */
    CHECK_STR(tw_str(ex, "@timestamp"), tw_str(ex, "process.end"));
    CHECK(tw_str(ex, "emitted") != NULL &&
          strcmp(tw_str(ex, "@timestamp"), tw_str(ex, "emitted")) < 0);
  }
  CHECK_INT(port_gaps(evs, &lost), 1);
  CHECK_INT(json_array_size(lost), 1);
  CHECK_STR(tw_str(json_array_get(lost, 0), "message"), "JOB_OBJECT_MSG_EXIT_PROCESS");
  CHECK_INT(tw_int(json_array_get(lost, 0), "pid"), child);
  CHECK_STR(tw_str(json_array_get(lost, 0), "detected_by"), "process_handle");
  if (ex != NULL)
    CHECK_STR(tw_str(json_array_get(lost, 0), "entity_id"), tw_str(ex, "process.entity_id"));
  /* Found while the root still ran (it sleeps 1.5 s after the child): the
   * gap record follows the reconciled exit and precedes the root's exit. */
  {
    json_t *gap = json_array_get(tw_filter(evs, "sandbox.telemetry_gap", NULL), 0);
    json_t *rex = one_for(evs, "sandbox.process_exit", "root_process", root);
    if (gap && ex && rex) {
      CHECK(tw_int(gap, "seq") > tw_int(ex, "seq"));
      CHECK(tw_int(gap, "seq") < tw_int(rex, "seq"));
      CHECK_STR(tw_str(rex, "source"), "port");
    }
  }
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  CHECK_INT(tw_int(end, "summary.reconciled_events"), 1);
  CHECK_INT(tw_int(end, "summary.processes"), 2);
  json_decref(lost);
  json_decref(cp);
  json_decref(evs);
}

/* The port loses the start of a child that then sleeps. Nothing polls:
 * the next port traffic (another child's start and exit) makes the
 * monitor compare the job's accounting with what it knows, look at the
 * job's list, and admit the unknown pid at its second look (RECHECK_MS
 * later), while it still runs (its command line readable). */
static void test_lost_start(void) {
  const char *args[] = {"then-another", "1500"};
  DWORD root = 0;
  json_t *evs = run_dropping("reconcile-lost-start", JOB_OBJECT_MSG_NEW_PROCESS, 0, args, 2, &root);
  json_t *cp, *st = NULL, *e, *ex, *lost, *end, *tree;
  long long child;
  size_t i;
  int reconciled_at = -1;
  if (evs == NULL)
    return;
  CHECK_INT(g_dropped, 1);
  cp = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 2);
  json_array_foreach(cp, i, e) {
    if (strcmp(tw_str(e, "source"), "reconciled") == 0)
      st = e;
    else
      CHECK_STR(tw_str(e, "source"), "port"); /* the other child */
  }
  CHECK(st != NULL);
  if (st == NULL) {
    json_decref(cp);
    json_decref(evs);
    return;
  }
  child = tw_int(st, "process.pid");
  CHECK(child > 0 && child != (long long)root);
  CHECK_STR(tw_str(st, "action"), "observed");
  /* Found late, dated when it happened: its creation time. */
  CHECK_STR(tw_str(st, "@timestamp"), tw_str(st, "process.start"));
  CHECK(strcmp(tw_str(st, "@timestamp"), tw_str(st, "emitted")) < 0);
  CHECK(tw_get(st, "job_message") == NULL);
  CHECK_INT(tw_int(st, "process.parent.pid"), root);
  CHECK(tw_str(st, "process.command_line") != NULL &&
        strstr(tw_str(st, "process.command_line"), "--helper sleep 1500") != NULL);
  CHECK_INT(json_array_size(tw_get(st, "process.ancestry")), 1);
  ex = one_for(evs, "sandbox.process_exit", "child_process", child);
  if (ex != NULL) {
    CHECK_STR(tw_str(ex, "source"), "port"); /* its exit was delivered */
    CHECK_INT(tw_int(ex, "process.exit_code"), 0);
    CHECK(tw_int(ex, "seq") > tw_int(st, "seq"));
  }
  CHECK_INT(port_gaps(evs, &lost), 1);
  CHECK_INT(json_array_size(lost), 1);
  CHECK_STR(tw_str(json_array_get(lost, 0), "message"), "JOB_OBJECT_MSG_NEW_PROCESS");
  CHECK_INT(tw_int(json_array_get(lost, 0), "pid"), child);
  CHECK_STR(tw_str(json_array_get(lost, 0), "detected_by"), "process_id_list");
  CHECK_STR(tw_str(json_array_get(lost, 0), "entity_id"), tw_str(st, "process.entity_id"));
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_INT(tw_int(end, "summary.reconciled_events"), 1);
  CHECK_INT(tw_int(end, "summary.processes"), 3);
  tree = tw_get(end, "summary.process_tree");
  CHECK_INT(json_array_size(tree), 3);
  json_array_foreach(tree, i, e) {
    if (tw_int(e, "pid") == child) {
      CHECK_STR(tw_str(e, "start_source"), "reconciled");
      reconciled_at = (int)i;
    } else {
      CHECK_STR(tw_str(e, "start_source"), i == 0 ? "jobwarden" : "port");
    }
  }
  CHECK_INT(reconciled_at, 2); /* admitted after the child that was announced */
  json_decref(lost);
  json_decref(cp);
  json_decref(evs);
}

/* Someone holding a copy of the port takes both the kernel's EXIT_PROCESS
 * of a child and the exit watcher's packet for it (injected: the drop
 * hook). The next port traffic (another child's start) makes the monitor
 * compare the job's accounting (fewer active processes than it knows)
 * with its members: the child's handle is signaled, its exit is
 * reconciled with the exact exit code, long before the job's end. */
static void test_lost_exit_and_signal(void) {
  const char *args[] = {"two-then", "1500"};
  DWORD root = 0;
  json_t *evs = run_dropping("reconcile-lost-exit-signal", JOB_OBJECT_MSG_EXIT_PROCESS,
                             JW_DROP_EXITED, args, 2, &root);
  json_t *cp, *ex, *ex2, *lost, *rex, *st2;
  long long child, child2;
  if (evs == NULL)
    return;
  CHECK_INT(g_dropped, 2);
  cp = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 2);
  child = tw_int(json_array_get(cp, 0), "process.pid");
  st2 = json_array_get(cp, 1);
  child2 = tw_int(st2, "process.pid");
  ex = one_for(evs, "sandbox.process_exit", "child_process", child);
  ex2 = one_for(evs, "sandbox.process_exit", "child_process", child2);
  rex = one_for(evs, "sandbox.process_exit", "root_process", root);
  CHECK(ex != NULL && ex2 != NULL && rex != NULL);
  if (ex != NULL && ex2 != NULL && rex != NULL && st2 != NULL) {
    CHECK_STR(tw_str(ex, "source"), "reconciled");
    CHECK_INT(tw_int(ex, "process.exit_code"), 7);
    CHECK_STR(tw_str(ex2, "source"), "port");
    /* Found at the traffic after it (the second child's start), before
     * the root's exit 1.5 s later. */
    CHECK(tw_int(ex, "seq") > tw_int(st2, "seq"));
    CHECK(tw_int(ex, "seq") < tw_int(rex, "seq"));
  }
  CHECK_INT(port_gaps(evs, &lost), 1);
  CHECK_INT(json_array_size(lost), 1);
  CHECK_STR(tw_str(json_array_get(lost, 0), "message"), "JOB_OBJECT_MSG_EXIT_PROCESS");
  CHECK_INT(tw_int(json_array_get(lost, 0), "pid"), child);
  CHECK_STR(tw_str(json_array_get(lost, 0), "detected_by"), "process_handle");
  json_decref(lost);
  json_decref(cp);
  json_decref(evs);
}

static void test_lost_both(void) {
  const char *args[] = {"parent-of", "100", "exit", "0"};
  DWORD root = 0;
  json_t *evs = run_dropping("reconcile-lost-both", JOB_OBJECT_MSG_NEW_PROCESS,
                             JOB_OBJECT_MSG_EXIT_PROCESS, args, 4, &root);
  json_t *lost, *end, *e;
  size_t i;
  long long starts = 0;
  if (evs == NULL)
    return;
  CHECK_INT(g_dropped, 2);
  CHECK(port_gaps(evs, &lost) >= 1);
  json_array_foreach(lost, i, e) {
    const char *by = tw_str(e, "detected_by");
    if (strcmp(tw_str(e, "message"), "JOB_OBJECT_MSG_NEW_PROCESS") == 0) {
      CHECK(strcmp(by, "accounting") == 0 || strcmp(by, "process_id_list") == 0);
      starts += strcmp(by, "accounting") == 0 ? tw_int(e, "count") : 1;
      fprintf(stderr, "lost start detected by %s\n", by);
    }
  }
  CHECK_INT(starts, 1);
  end = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  {
    /* The accounting record says what the kernel counted. */
    json_t *gaps = tw_filter(evs, "sandbox.telemetry_gap", NULL), *g;
    json_array_foreach(gaps, i, g) {
      if (tw_get(g, "gap.accounting") != NULL) {
        CHECK_INT(tw_int(g, "gap.accounting.total_processes"), 2);
        CHECK_INT(tw_int(g, "gap.accounting.announced"), 1);
      }
    }
    json_decref(gaps);
  }
  json_decref(lost);
  json_decref(evs);
}

/* ---- injected: a process handle signaled before its process ended ------- */

/* Under Wine a process with no running thread (as it starts, as it ends)
 * is signaled while its exit time still reads 0 (docs/platform-support.md).
 * The state hook answers "unsettled" for the first g_not_yet reads that
 * found a process other than the root ended. */
static volatile LONG g_not_yet, g_looks, g_not_yet_given;

static jw__proc_state_t ended_later(HANDLE h, jw__proc_state_t real) {
  DWORD pid = GetProcessId(h);
  if (real != JW_PROC_ENDED || pid == 0 || pid == root_pid())
    return real;
  if (InterlockedCompareExchange(&g_not_yet_given, 0, 0) < g_not_yet) {
    InterlockedIncrement(&g_not_yet_given);
    return JW_PROC_UNSETTLED;
  }
  return real;
}

/* A child's exit learnt only from the exit watcher (its EXIT_PROCESS
 * dropped), whose first three looks say it has not ended yet: no packet
 * until it has (no tampering: the monitor's own look agrees then), then
 * its exit reconciled with the exact code, before the root's. */
static void test_signal_before_end(void) {
  const char *args[] = {"parent-of", "1500", "exit", "7"};
  DWORD root = 0;
  json_t *evs, *cp, *ex, *rex, *lost;
  long long child;
  g_not_yet = 3;
  g_not_yet_given = 0;
  jw__proc_state_hook(ended_later);
  evs = run_dropping("reconcile-signal-before-end", JOB_OBJECT_MSG_EXIT_PROCESS, 0, args, 4, &root);
  jw__proc_state_hook(NULL);
  if (evs == NULL)
    return;
  CHECK_INT(g_dropped, 1);
  /* The watcher's first look and the two after it: it posted only at
   * the fourth, once the process had ended. */
  CHECK_INT(g_not_yet_given, 3);
  CHECK_INT(g_stats.exit_waits_unsettled, 1);
  CHECK_INT((int)tw_count(evs, "sandbox.violation", "monitor_tampering"), 0);
  cp = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(cp), 1);
  child = tw_int(json_array_get(cp, 0), "process.pid");
  ex = one_for(evs, "sandbox.process_exit", "child_process", child);
  rex = one_for(evs, "sandbox.process_exit", "root_process", root);
  CHECK(ex != NULL && rex != NULL);
  if (ex != NULL && rex != NULL) {
    CHECK_STR(tw_str(ex, "source"), "reconciled");
    CHECK_INT(tw_int(ex, "process.exit_code"), 7);
    CHECK(tw_int(ex, "seq") < tw_int(rex, "seq"));
  }
  CHECK_INT(port_gaps(evs, &lost), 1);
  CHECK_STR(tw_str(json_array_get(lost, 0), "message"), "JOB_OBJECT_MSG_EXIT_PROCESS");
  CHECK_INT(tw_int(json_array_get(lost, 0), "pid"), child);
  json_decref(lost);
  json_decref(cp);
  json_decref(evs);
}

/* The watcher alone, on an event standing in for a process handle (only
 * its signal matters to the wait): signaled but "not ended" gets no
 * packet and leaves the wait; reset, it returns to it (a new signal is
 * counted again); "ended", exactly one packet, with its pid. */
static volatile LONG g_event_ended;

/* An event is no process (GetProcessId 0): while signaled, "unsettled"
 * until the test says "ended". */
static jw__proc_state_t event_state(HANDLE h, jw__proc_state_t real) {
  if (GetProcessId(h) != 0 || real == JW_PROC_RUNNING)
    return real;
  InterlockedIncrement(&g_looks);
  return InterlockedCompareExchange(&g_event_ended, 0, 0) ? JW_PROC_ENDED : JW_PROC_UNSETTLED;
}

/* The hook's looks, read as the watcher's counters are. */
static uint32_t looks(jw__exitwatch_t *w) {
  (void)w;
  return (uint32_t)InterlockedCompareExchange(&g_looks, 0, 0);
}

/* Waits (bounded) until counter(w) reaches n: 0, or -1. */
static int wait_counter(jw__exitwatch_t *w, uint32_t (*counter)(jw__exitwatch_t *), uint32_t n) {
  ULONGLONG deadline = GetTickCount64() + 10000;
  while (counter(w) < n)
    if (GetTickCount64() >= deadline)
      return -1;
    else
      Sleep(1);
  return 0;
}

static void test_watcher_settles(void) {
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL), quiet = CreateEventW(NULL, TRUE, FALSE, NULL);
  jw__exitwatch_t *w = NULL;
  DWORD bytes = 0;
  ULONG_PTR key = 0;
  LPOVERLAPPED ov = NULL;
  CHECK(port != NULL && ev != NULL && quiet != NULL);
  g_looks = g_event_ended = 0;
  jw__proc_state_hook(event_state);
  CHECK_INT(jw__exitwatch_start(port, 77, &w), 0);
  CHECK_INT(jw__exitwatch_add(w, ev, 4242), 0);
  CHECK_INT(jw__exitwatch_add(w, quiet, 4343), 0);
  /* Signaled, not ended: looked at again (1, 2, 4 ms ...), no packet. */
  SetEvent(ev);
  CHECK_INT(wait_counter(w, looks, 4), 0);
  CHECK_INT(jw__exitwatch_unsettled(w), 1);
  CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0));
  CHECK_INT(jw__exitwatch_posted(w), 0);
  /* It "runs" again: the next look puts it back in the wait, where a new
   * signal is a new unsettled one. */
  ResetEvent(ev);
  CHECK_INT(wait_counter(w, jw__exitwatch_rewaited, 1), 0);
  SetEvent(ev);
  CHECK_INT(wait_counter(w, jw__exitwatch_unsettled, 2), 0);
  CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0));
  /* Ended: one packet, its pid, and no other. */
  InterlockedExchange(&g_event_ended, 1);
  CHECK(GetQueuedCompletionStatus(port, &bytes, &key, &ov, 10000));
  CHECK_INT(bytes, 4242);
  CHECK_INT(key, 77);
  CHECK_INT((ULONG_PTR)ov, JW_CTRL_EXITED);
  /* (Counted right after the post: the packet can be taken first.) */
  CHECK_INT(wait_counter(w, jw__exitwatch_posted, 1), 0);
  CHECK_INT(jw__exitwatch_posted(w), 1);
  CHECK_INT(jw__exitwatch_unsettled(w), 2);
  CHECK_INT(jw__exitwatch_rewaited(w), 1);
  CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0));
  jw__exitwatch_stop(w);
  jw__proc_state_hook(NULL);
  CHECK(!GetQueuedCompletionStatus(port, &bytes, &key, &ov, 0));
  CloseHandle(ev);
  CloseHandle(quiet);
  CloseHandle(port);
}

/* Runnable one by one: `win_forensics.exe DATA EVENTS JOBWARDEN [injected] --case NAME`. */
static const jw_test_case_t real_cases[] = {
    {"enrich", test_enrich, 60},
    {"long_command_line", test_long_command_line, 60},
    {"handles_released", test_handles_released, 60},
    {"terminate", test_terminate, 60},
};

static const jw_test_case_t injected_cases[] = {
    {"lost_exit", test_lost_exit, 60},
    {"lost_start", test_lost_start, 60},
    {"lost_both", test_lost_both, 60},
    {"lost_exit_and_signal", test_lost_exit_and_signal, 60},
    {"signal_before_end", test_signal_before_end, 60},
    {"watcher_settles", test_watcher_settles, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv)) {
    if (strcmp(argv[2], "froot") == 0 && argc > 3)
      return mode_root(argv[3]);
    if (strcmp(argv[2], "fchild") == 0 && argc > 3)
      return mode_child(argv[3]);
    if (strcmp(argv[2], "parent-of") == 0 && argc > 4)
      return mode_parent_of(argc, argv);
    if (strcmp(argv[2], "then-another") == 0 && argc > 3)
      return mode_then_another(argv);
    if (strcmp(argv[2], "two-then") == 0 && argc > 3)
      return mode_two_then(argv);
    if (strcmp(argv[2], "longcmd") == 0)
      return mode_longcmd();
    return tw_helper_main(argc, argv);
  }
  g_dir = argc > 2 ? argv[2] : ".";
  own_identity();
  if (argc > 4 && strcmp(argv[4], "injected") == 0)
    return TW_RUN_CASES("reconcile_injected", argc, argv, injected_cases);
  return TW_RUN_CASES("forensics_real", argc, argv, real_cases);
}

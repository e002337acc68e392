/* wine.real.control — the control channel (docs/control.md) through the
 * real path under Wine: a real `jobwarden.exe run --control NAME` with a
 * tree of helper processes, and `jobwarden.exe ps` / `kill` run from
 * other processes, each asserted exactly (exit statuses, the JSON reply,
 * the table, which processes died with which code, the events written).
 *
 *   security  the control pipe as created: owner, protected DACL (the
 *             user and SYSTEM), a second open of the name refused
 *   main      ps --json / ps, kill --pid of a member (only it dies, with
 *             0xC000013A), kill --pid of a process outside the job
 *             (refused, it lives), an oversized and a malformed request
 *             on one raw connection (error replies, the run goes on),
 *             a silent client (held 5 s at most; a ps behind it waits),
 *             ps of a missing NAME (3), a taken NAME (125, nothing
 *             started), kill of the whole job (the run ends 0xC000013A)
 *   inside    jw_run in this process: the sandboxed program itself runs
 *             `jobwarden kill` (refused: from_sandbox); then, injected
 *             through the identity hook, a client of another user
 *             (refused: not_owner); then the owner kills the root, which
 *             ends the run
 *   stuck     a client that connects and sends nothing: the run still
 *             ends when its root does, and the client sees the pipe end
 *
 * Pipe names carry this process's id, so suites running in parallel on
 * one wineserver never meet. Events: <dir>\wine-control-*.jsonl (validated
 * by wine.schema.events). */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

#include "harness.h"
#include "rig.h"
#include "checks.h"
#include "cli.h"
#include "win/escape.h"

#define KILLED   JW_TERMINATE_EXIT_CODE
#define CHILD_MS "60000" /* the helpers live until they are killed */
#define WAIT_MS  20000

static char g_dir[TW_PATH_CHARS];      /* events directory (Windows path) */
static char g_jw[TW_PATH_CHARS];       /* jobwarden.exe */
static char g_me[TW_PATH_CHARS];       /* this executable, as the monitor reads it */
static char g_sid[JW_CONTROL_SID_MAX]; /* this process's user */
static char g_tag[64];                 /* "jwt-<pid>" */

/* ------------------------------------------------------------------------ */
/* Helper modes                                                             */
/* ------------------------------------------------------------------------ */

/* ctl-tree OUTFILE MS: two children that sleep MS; "<self> <c1> <c2>\n"
 * to OUTFILE; then waits for both (so it outlives one that is killed). */
static int helper_tree(int argc, char **argv) {
  PROCESS_INFORMATION pi[2];
  char tmp[TW_PATH_CHARS + 8];
  wchar_t cmd[TW_CMD_CHARS];
  char args[64];
  FILE *f;
  int i;
  if (argc < 5)
    return 70;
  snprintf(args, sizeof(args), "sleep %s", argv[4]);
  for (i = 0; i < 2; i++) {
    tw_helper_cmdline(cmd, TW_CMD_CHARS, args);
    if (tw_spawn(cmd, 0, &pi[i]) != 0)
      return 71;
  }
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return 72;
  fprintf(f, "%lu %lu %lu\n", (unsigned long)GetCurrentProcessId(),
          (unsigned long)pi[0].dwProcessId, (unsigned long)pi[1].dwProcessId);
  if (fclose(f) != 0 || !MoveFileExA(tmp, argv[3], MOVEFILE_REPLACE_EXISTING))
    return 73;
  for (i = 0; i < 2; i++) {
    WaitForSingleObject(pi[i].hProcess, INFINITE);
    CloseHandle(pi[i].hThread);
    CloseHandle(pi[i].hProcess);
  }
  return 0;
}

/* ctl-inside JOBWARDEN NAME OUTFILE MS: runs `JOBWARDEN kill NAME` from
 * inside the job, writes its exit code (hex), its pid and this process's
 * pid to OUTFILE, then sleeps MS. */
static int helper_inside(int argc, char **argv) {
  PROCESS_INFORMATION pi;
  wchar_t cmd[TW_CMD_CHARS];
  char tmp[TW_PATH_CHARS + 8];
  DWORD code = 0xDEAD;
  FILE *f;
  if (argc < 7)
    return 74;
  swprintf(cmd, TW_CMD_CHARS, L"\"%hs\" kill %hs", argv[3], argv[4]);
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 75;
  if (WaitForSingleObject(pi.hProcess, 30000) != WAIT_OBJECT_0 || !tw_exit_code(pi.hProcess, &code))
    code = 0xDEAD;
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[5]);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return 76;
  fprintf(f, "%lx %lu %lu\n", (unsigned long)code, (unsigned long)pi.dwProcessId,
          (unsigned long)GetCurrentProcessId());
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  if (fclose(f) != 0 || !MoveFileExA(tmp, argv[5], MOVEFILE_REPLACE_EXISTING))
    return 77;
  Sleep((DWORD)strtoul(argv[6], NULL, 10));
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Utilities                                                                */
/* ------------------------------------------------------------------------ */

/* One run of jobwarden.exe to its end: exit code, stdout, stderr, pid
 * (pi.dwProcessId). */
typedef tw_run_t cli_t;

static void cli_free(cli_t *r) {
  tw_jw_free(r);
  memset(r, 0, sizeof(*r));
}

/* Starts `jobwarden.exe ARGS` with stdout/stderr to <dir>\wine-control-TAG.*
 * and, when log is not NULL, its event file read into r->events at its end. */
static int cli_start(const char *tag, const char *args, const char *log, cli_t *r) {
  return tw_jw_start(
      &(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = WAIT_MS}, r);
}

/* Waits for it (killed after WAIT_MS) and reads its output; the exit code
 * is 0xDEADBEEF unless it exited by itself in time (1, a kill's code, is
 * also JW_EXIT_CONTROL_REFUSED). */
static void cli_finish(cli_t *r) {
  if (!tw_jw_wait(r))
    r->exit_code = 0xDEADBEEF;
}

/* Runs `jobwarden.exe ARGS` to its end. */
static void cli_run(const char *tag, const char *args, cli_t *r) {
  if (cli_start(tag, args, NULL, r) != 0)
    CHECK(!"jobwarden.exe did not start");
  cli_finish(r);
}

/* Reads "a b c" (count numbers) from path, waiting for it. */
static int read_numbers(const char *path, int base, unsigned long *v, int count) {
  DWORD waited;
  for (waited = 0; waited < WAIT_MS; waited += 20) {
    char *s = tw_read_file(path, NULL), *p, *end;
    int n = 0;
    if (s != NULL) {
      for (p = s; n < count; p = end) {
        v[n] = strtoul(p, &end, n == 0 ? base : 10);
        if (end == p)
          break;
        n++;
      }
      free(s);
      if (n == count)
        return 0;
    }
    Sleep(20);
  }
  return -1;
}

static HANDLE open_pid(DWORD pid) {
  return OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
}

static int alive(HANDLE h) {
  return h != NULL && WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
}

/* The exit code of a process that must end within WAIT_MS. */
static DWORD exit_code_of(HANDLE h) {
  DWORD code = 0xDEADBEEF;
  if (h == NULL || WaitForSingleObject(h, WAIT_MS) != WAIT_OBJECT_0 || !tw_exit_code(h, &code))
    return 0xDEADBEEF;
  return code;
}

/* The events of a case whose run is jw_run in this process (no kit run
 * read them); an empty array, after a failed check, when unreadable. */
static json_t *load(const char *path) {
  json_t *evs = tw_read_events(path);
  CHECK(evs != NULL);
  return evs ? evs : json_array();
}

/* The member_control notices in order. New array. */
static json_t *control_notices(json_t *evs) {
  return tw_filter(evs, "sandbox.notice", "member_control");
}

/* Checks the fields every member_control notice has. */
static void check_notice(json_t *ev, const char *action, const char *severity, const char *op,
                         const char *result, const char *reason, long long requester) {
  CHECK_STR(tw_str(ev, "action"), action);
  CHECK_STR(tw_str(ev, "severity"), severity);
  CHECK_STR(tw_str(ev, "enforcer"), "monitor");
  CHECK_STR(tw_str(ev, "source"), "jobwarden");
  CHECK_STR(tw_str(ev, "control.op"), op);
  CHECK_STR(tw_str(ev, "control.result"), result);
  CHECK_STR(tw_str(ev, "control.reason"), reason);
  if (requester >= 0)
    CHECK_INT(tw_int(ev, "control.requester.pid"), requester);
}

/* ------------------------------------------------------------------------ */
/* A raw connection: bounded requests                                       */
/* ------------------------------------------------------------------------ */

/* Reads one line from a synchronous pipe handle (at most size - 1 bytes). */
static int read_line(HANDLE h, char *buf, size_t size) {
  size_t have = 0;
  while (have + 1 < size) {
    DWORD got = 0;
    if (!ReadFile(h, buf + have, 1, &got, NULL) || got == 0)
      return -1;
    if (buf[have] == '\n') {
      buf[have] = '\0';
      return 0;
    }
    have++;
  }
  return -1;
}

/* Connects to the control pipe NAME as a plain synchronous client,
 * waiting while the one instance is busy. */
static HANDLE open_raw(const char *name) {
  char path[256];
  wchar_t wpath[256];
  DWORD waited;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\jobwarden-control-%s", name);
  MultiByteToWideChar(CP_ACP, 0, path, -1, wpath, 256);
  for (waited = 0; waited < WAIT_MS; waited += 10) {
    HANDLE h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
      return h;
    if (!WaitNamedPipeW(wpath, 1000))
      Sleep(10);
  }
  return INVALID_HANDLE_VALUE;
}

static void test_raw(const char *name) {
  char reply[8192];
  char *big;
  DWORD put = 0;
  HANDLE h;
  json_t *j;
  h = open_raw(name);
  CHECK(h != INVALID_HANDLE_VALUE);
  if (h == INVALID_HANDLE_VALUE)
    return;
  /* 5000 bytes and a line end: answered when the first 4096 are in, the
   * rest read and thrown away. */
  big = malloc(5001);
  memset(big, 'x', 5000);
  big[5000] = '\n';
  CHECK(WriteFile(h, big, 5001, &put, NULL));
  CHECK_U64(put, 5001);
  free(big);
  CHECK_INT(read_line(h, reply, sizeof(reply)), 0);
  CHECK_STR(reply,
            "{\"ok\":false,\"op\":\"invalid\",\"reason\":\"request_too_long\",\"error\":\"the "
            "request line is longer than 4095 bytes\"}");
  /* Malformed, then an unknown op, on the same connection. */
  CHECK(WriteFile(h, "{\"op\":\"ps\"\n", 11, &put, NULL));
  CHECK_INT(read_line(h, reply, sizeof(reply)), 0);
  CHECK_STR(reply, "{\"ok\":false,\"op\":\"invalid\",\"reason\":\"bad_request\",\"error\":\"the "
                   "request is not JSON: '}' expected near end of file (at byte 10)\"}");
  CHECK(WriteFile(h, "{\"op\":\"stop\"}\n", 14, &put, NULL));
  CHECK_INT(read_line(h, reply, sizeof(reply)), 0);
  CHECK_STR(reply,
            "{\"ok\":false,\"op\":\"invalid\",\"reason\":\"bad_request\",\"error\":\"\\\"op\\\" "
            "must be \\\"ps\\\" or \\\"kill\\\"\"}");
  /* The run goes on: a valid request on the same connection. */
  CHECK(WriteFile(h, "{\"op\":\"ps\"}\n", 12, &put, NULL));
  CHECK_INT(read_line(h, reply, sizeof(reply)), 0);
  j = json_loads(reply, 0, NULL);
  CHECK(json_is_true(json_object_get(j, "ok")));
  CHECK_INT(json_array_size(json_object_get(j, "members")), 2);
  json_decref(j);
  CloseHandle(h);
}

/* ------------------------------------------------------------------------ */
/* security: the pipe as created                                            */
/* ------------------------------------------------------------------------ */

static void test_security(void) {
  char name[96], path[256], want[512];
  wchar_t wpath[256];
  jw_control_t *c = NULL, *second = NULL;
  jw_error_t err;
  HANDLE h;

  snprintf(name, sizeof(name), "%s-sec", g_tag);
  snprintf(path, sizeof(path), "\\\\.\\pipe\\jobwarden-control-%s", name);
  MultiByteToWideChar(CP_ACP, 0, path, -1, wpath, 256);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_control_open(name, &c, &err), 0);
  if (c == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return;
  }
  /* A second run on the same name is refused. */
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_control_open(name, &second, &err), JW_EUSAGE);
  CHECK(second == NULL);
  snprintf(want, sizeof(want),
           "--control %s: %s already exists (another jobwarden run or another program serves "
           "it); choose another NAME",
           name, path);
  CHECK_STR(err.text, want);

  /* Owner = this user, a protected DACL: this user and SYSTEM only. */
  h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
  CHECK(h != INVALID_HANDLE_VALUE);
  tw_check_private_dacl(h);
  if (h != INVALID_HANDLE_VALUE)
    CloseHandle(h);
  jw_control_close(c);
  /* Once the run is over the name is free again. */
  memset(&err, 0, sizeof(err));
  c = NULL;
  CHECK_INT(jw_control_open(name, &c, &err), 0);
  jw_control_close(c);
}

/* ------------------------------------------------------------------------ */
/* main: the real jobwarden.exe                                             */
/* ------------------------------------------------------------------------ */

/* The member of a ps reply with this pid, or NULL. */
static json_t *member(json_t *members, unsigned long pid) {
  size_t i;
  json_t *m;
  json_array_foreach(members, i, m) {
    if (tw_int(m, "pid") == (long long)pid)
      return m;
  }
  return NULL;
}

static void check_member(json_t *m, unsigned long ppid, int is_root) {
  const char *eid = tw_str(m, "entity_id"), *start = tw_str(m, "start");
  char prefix[32];
  CHECK(m != NULL);
  if (m == NULL)
    return;
  CHECK_STR(tw_str(m, "executable"), g_me);
  CHECK_INT(tw_int(m, "parent_pid"), ppid);
  CHECK(json_is_boolean(tw_get(m, "is_root")) && json_is_true(tw_get(m, "is_root")) == is_root);
  CHECK(tw_int(m, "working_set") > 0);
  snprintf(prefix, sizeof(prefix), "%lld-", tw_int(m, "pid"));
  CHECK(eid != NULL && strncmp(eid, prefix, strlen(prefix)) == 0 &&
        strlen(eid) == strlen(prefix) + 16);
  CHECK(start != NULL && strlen(start) == 27 && start[4] == '-' && start[10] == 'T' &&
        start[26] == 'Z');
  CHECK_INT(json_object_size(m), 7);
}

static void test_main(void) {
  char name[96], args[TW_CMD_CHARS], log[TW_PATH_CHARS], pids[TW_PATH_CHARS], want[1024];
  char taken_log[TW_PATH_CHARS];
  unsigned long p[3];
  PROCESS_INFORMATION outsider;
  HANDLE h_root, h_c1, h_c2;
  cli_t r, run;
  json_t *reply, *members, *evs, *notes, *e;
  DWORD kill1_pid = 0, refused_pid = 0, killjob_pid = 0;
  wchar_t cmd[TW_CMD_CHARS];

  snprintf(name, sizeof(name), "%s-main", g_tag);
  snprintf(log, sizeof(log), "%s\\wine-control-main.jsonl", g_dir);
  snprintf(pids, sizeof(pids), "%s\\wine-control-main.pids", g_dir);
  remove(log);
  remove(pids);
  snprintf(args, sizeof(args),
           "run --name control-main --control %s --export \"file:%s\" -- \"%s\" --helper ctl-tree "
           "\"%s\" %s",
           name, log, rig_self_utf8(), pids, CHILD_MS);
  if (cli_start("run", args, log, &run) != 0) {
    CHECK(!"jobwarden.exe run did not start");
    return;
  }
  CHECK_INT(read_numbers(pids, 10, p, 3), 0);
  h_root = open_pid((DWORD)p[0]);
  h_c1 = open_pid((DWORD)p[1]);
  h_c2 = open_pid((DWORD)p[2]);
  CHECK(alive(h_root) && alive(h_c1) && alive(h_c2));

  /* ps --json: exactly the three, described. */
  snprintf(args, sizeof(args), "ps %s --json", name);
  cli_run("ps-json", args, &r);
  CHECK_INT(r.exit_code, 0);
  CHECK_STR(r.err, "");
  reply = json_loads(r.out, JSON_REJECT_DUPLICATES, NULL);
  CHECK(reply != NULL && r.out[strlen(r.out) - 1] == '\n' && strchr(r.out, '\n')[1] == '\0');
  CHECK(json_is_true(json_object_get(reply, "ok")));
  CHECK_STR(tw_str(reply, "op"), "ps");
  CHECK_STR(tw_str(reply, "job"), "control-main");
  CHECK(tw_str(reply, "run_id") != NULL && strlen(tw_str(reply, "run_id")) == 32);
  CHECK(json_is_false(json_object_get(reply, "truncated")));
  members = json_object_get(reply, "members");
  CHECK_INT(json_array_size(members), 3);
  check_member(member(members, p[0]), run.pi.dwProcessId, 1);
  check_member(member(members, p[1]), p[0], 0);
  check_member(member(members, p[2]), p[0], 0);
  cli_free(&r);

  /* The table. */
  snprintf(args, sizeof(args), "ps %s", name);
  cli_run("ps", args, &r);
  CHECK_INT(r.exit_code, 0);
  CHECK_STR(r.err, "");
  CHECK(strncmp(r.out, "    PID  WORKING SET  STARTED (UTC)                IMAGE\n", 57) == 0);
  {
    json_t *root = member(members, p[0]);
    snprintf(want, sizeof(want), "%7lu", p[0]);
    CHECK_CONTAINS(r.out, want);
    snprintf(want, sizeof(want), "%s  %s  [root]\n", root ? tw_str(root, "start") : "?", g_me);
    CHECK_CONTAINS(r.out, want);
  }
  {
    int lines = 0;
    const char *s;
    for (s = r.out; *s; s++)
      lines += *s == '\n';
    CHECK_INT(lines, 4);
  }
  cli_free(&r);
  json_decref(reply);

  /* kill --pid of one child: only it dies, with 0xC000013A. */
  snprintf(args, sizeof(args), "kill %s --pid %lu", name, p[1]);
  cli_run("kill-pid", args, &r);
  kill1_pid = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, 0);
  snprintf(want, sizeof(want), "terminated pid %lu (%s)\n", p[1], g_me);
  CHECK_STR(r.out, want);
  CHECK_STR(r.err, "");
  cli_free(&r);
  CHECK_U64(exit_code_of(h_c1), KILLED);
  CHECK(alive(h_root));
  CHECK(alive(h_c2));
  CHECK(alive(run.pi.hProcess));

  /* kill --pid of a process outside the job: refused, it lives. */
  tw_helper_cmdline(cmd, TW_CMD_CHARS, "sleep " CHILD_MS);
  CHECK_INT(tw_spawn(cmd, 0, &outsider), 0);
  snprintf(args, sizeof(args), "kill %s --pid %lu", name, (unsigned long)outsider.dwProcessId);
  cli_run("kill-outsider", args, &r);
  refused_pid = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, JW_EXIT_CONTROL_REFUSED);
  CHECK_STR(r.out, "");
  snprintf(want, sizeof(want),
           "jobwarden: kill: \\\\.\\pipe\\jobwarden-control-%s: refused: pid %lu is not a running "
           "process of this job\n",
           name, (unsigned long)outsider.dwProcessId);
  CHECK_STR(r.err, want);
  cli_free(&r);
  CHECK(alive(outsider.hProcess));
  TerminateProcess(outsider.hProcess, 0);
  CloseHandle(outsider.hThread);
  CloseHandle(outsider.hProcess);

  /* Bounded requests on a raw connection; the run goes on. */
  test_raw(name);
  CHECK(alive(h_root) && alive(h_c2) && alive(run.pi.hProcess));

  /* A client that connects and stays silent holds the one instance for 5 s
   * at most; a `ps` meanwhile waits for it, then gets its answer. */
  {
    char buf[16];
    HANDLE silent;
    ULONGLONG t0, took;
    DWORD got = 0, rerr;
    silent = open_raw(name);
    CHECK(silent != INVALID_HANDLE_VALUE);
    t0 = GetTickCount64();
    snprintf(args, sizeof(args), "ps %s --json", name);
    cli_run("ps-busy", args, &r);
    took = GetTickCount64() - t0;
    CHECK_INT(r.exit_code, 0);
    CHECK_STR(r.err, "");
    CHECK(strncmp(r.out, "{\"ok\":true,\"op\":\"ps\",\"members\":[", 31) == 0);
    cli_free(&r);
    fprintf(stderr, "ps behind a silent client: %llu ms\n", took);
    CHECK(took >= 4000 && took < 12000);
    /* The server gave up on the silent client: its pipe is disconnected. */
    CHECK(!ReadFile(silent, buf, sizeof(buf), &got, NULL));
    rerr = GetLastError();
    CHECK_U64(rerr, ERROR_PIPE_NOT_CONNECTED);
    if (silent != INVALID_HANDLE_VALUE)
      CloseHandle(silent);
  }

  /* No such NAME: 3. */
  snprintf(args, sizeof(args), "ps %s-missing", g_tag);
  cli_run("ps-missing", args, &r);
  CHECK_INT(r.exit_code, JW_EXIT_CONTROL_NO_PIPE);
  CHECK_STR(r.out, "");
  snprintf(want, sizeof(want),
           "jobwarden: ps: \\\\.\\pipe\\jobwarden-control-%s-missing: no such control pipe (is "
           "'jobwarden run --control NAME' running?) (error 2: ",
           g_tag);
  CHECK(strncmp(r.err, want, strlen(want)) == 0);
  cli_free(&r);

  /* A taken NAME: 125, nothing started, no log. */
  snprintf(taken_log, sizeof(taken_log), "%s\\wine-control-taken.jsonl", g_dir);
  remove(taken_log);
  snprintf(args, sizeof(args), "run --control %s --export \"file:%s\" -- \"%s\" --helper exit 7",
           name, taken_log, rig_self_utf8());
  cli_run("taken", args, &r);
  CHECK_INT(r.exit_code, JW_EXIT_JW_ERROR);
  CHECK_STR(r.out, "");
  snprintf(want, sizeof(want),
           "jobwarden: --control %s: \\\\.\\pipe\\jobwarden-control-%s already exists (another "
           "jobwarden run or another program serves it); choose another NAME\n",
           name, name);
  CHECK_STR(r.err, want);
  CHECK(GetFileAttributesA(taken_log) == INVALID_FILE_ATTRIBUTES);
  cli_free(&r);

  /* kill: the whole job; the run ends like an interrupted one. */
  snprintf(args, sizeof(args), "kill %s", name);
  cli_run("kill-job", args, &r);
  killjob_pid = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, 0);
  CHECK_STR(r.out, "terminated the job (2 process(es) were running)\n");
  CHECK_STR(r.err, "");
  cli_free(&r);
  CHECK_U64(exit_code_of(h_root), KILLED);
  CHECK_U64(exit_code_of(h_c2), KILLED);
  cli_finish(&run);
  CHECK_U64(run.exit_code, KILLED);
  CHECK_STR(run.out, "");
  snprintf(want, sizeof(want),
           "jobwarden: the job was terminated on request (control request kill from pid %lu "
           "(user %s))\n",
           (unsigned long)killjob_pid, g_sid);
  CHECK_STR(run.err, want);
  CloseHandle(h_root);
  CloseHandle(h_c1);
  CloseHandle(h_c2);

  /* The record. */
  evs = tw_check_events(&run);
  cli_free(&run);
  notes = control_notices(evs);
  CHECK_INT(json_array_size(notes), 6);
  e = json_array_get(notes, 0); /* kill --pid c1 */
  check_notice(e, "terminated", "medium", "kill", "done", NULL, kill1_pid);
  CHECK_INT(tw_int(e, "control.pid"), p[1]);
  CHECK_STR(tw_str(e, "control.requester.user"), g_sid);
  CHECK_INT(tw_int(e, "process.pid"), p[1]);
  snprintf(want, sizeof(want),
           "control request kill from pid %lu (user %s) terminated child process %s (pid %lu)",
           (unsigned long)kill1_pid, g_sid, g_me, p[1]);
  CHECK_STR(tw_str(e, "message"), want);
  e = json_array_get(notes, 1); /* kill --pid outsider */
  check_notice(e, "blocked", "high", "kill", "refused", "not_member", refused_pid);
  CHECK_INT(tw_int(e, "control.pid"), outsider.dwProcessId);
  CHECK(tw_get(e, "process") == NULL);
  e = json_array_get(notes, 2); /* too long */
  check_notice(e, "blocked", "medium", "invalid", "refused", "request_too_long",
               GetCurrentProcessId());
  CHECK_STR(tw_str(e, "control.requester.user"), g_sid);
  e = json_array_get(notes, 3); /* malformed */
  check_notice(e, "blocked", "medium", "invalid", "refused", "bad_request", GetCurrentProcessId());
  e = json_array_get(notes, 4); /* unknown op */
  check_notice(e, "blocked", "medium", "invalid", "refused", "bad_request", GetCurrentProcessId());
  e = json_array_get(notes, 5); /* kill */
  check_notice(e, "killed_job", "medium", "kill", "done", NULL, killjob_pid);
  CHECK(tw_get(e, "control.pid") == NULL);
  json_decref(notes);

  /* c1's exit names the request; the rest died with the job. */
  {
    json_t *exits = tw_filter(evs, "sandbox.process_exit", NULL), *x;
    size_t i;
    int seen = 0;
    CHECK_INT(json_array_size(exits), 3);
    json_array_foreach(exits, i, x) {
      long long pid = tw_int(x, "process.pid");
      CHECK_U64(tw_int(x, "process.exit_code"), KILLED);
      if (pid == (long long)p[1]) {
        seen |= 1;
        CHECK_STR(tw_str(x, "action"), "terminated");
        snprintf(want, sizeof(want),
                 "child process %s (pid %lu) was terminated by jobwarden (control request `kill` "
                 "from pid %lu)",
                 g_me, p[1], (unsigned long)kill1_pid);
        CHECK_STR(tw_str(x, "message"), want);
      } else {
        seen |= pid == (long long)p[0] ? 2 : pid == (long long)p[2] ? 4 : 8;
        CHECK_STR(tw_str(x, "action"), "killed_job");
      }
    }
    CHECK_INT(seen, 7);
    json_decref(exits);
  }
  CHECK_INT(tw_count(evs, "sandbox.violation", "orphan_processes"), 0);
  CHECK_INT(tw_count(evs, "sandbox.violation", "abnormal_exit"), 0);
  e = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(e, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(e, "action"), "killed_job");
  snprintf(want, sizeof(want), "control request kill from pid %lu (user %s)",
           (unsigned long)killjob_pid, g_sid);
  CHECK_STR(tw_str(e, "summary.terminated_by_jobwarden"), want);
  json_decref(evs);
}

/* ------------------------------------------------------------------------ */
/* inside: jw_run in this process; the sandbox itself, and another user     */
/* ------------------------------------------------------------------------ */

#define FOREIGN_SID "S-1-5-21-1111-2222-3333-4444"

static int foreign_identity(DWORD pid, char *sid, size_t size) {
  (void)pid;
  snprintf(sid, size, "%s", FOREIGN_SID);
  return 0;
}

/* A jw_run in this process, on a thread of its own; its one sink's spec
 * lives here as long as the run. */
typedef struct {
  jw_run_config_t cfg;
  int status;
  char spec[TW_PATH_CHARS + 8];
  const char *exports[1];
} run_arg_t;

static unsigned __stdcall run_thread(void *arg) {
  run_arg_t *a = arg;
  a->status = jw_run(&a->cfg);
  return 0;
}

/* Starts jw_run of argv on a thread: the policy named policy_name, the
 * control pipe `name`, events to file:log (argv and name must outlive
 * the run). The thread's handle, or NULL after a failed check. */
static HANDLE start_in_process(run_arg_t *a, const char *policy_name, const char *name,
                               const char *log, const char **argv, int argc) {
  HANDLE th;
  memset(a, 0, sizeof(*a));
  snprintf(a->spec, sizeof(a->spec), "file:%s", log);
  a->exports[0] = a->spec;
  jw_policy_init(&a->cfg.policy);
  jw_policy_set(&a->cfg.policy, "name", policy_name, "test", NULL);
  a->cfg.exports = a->exports;
  a->cfg.n_exports = 1;
  a->cfg.argv = argv;
  a->cfg.argc = argc;
  a->cfg.control_name = name;
  th = (HANDLE)_beginthreadex(NULL, 0, run_thread, a, 0, NULL);
  CHECK(th != NULL);
  return th;
}

static void test_inside(void) {
  char name[96], log[TW_PATH_CHARS], out[TW_PATH_CHARS], args[TW_CMD_CHARS], want[1024];
  const char *argv[8];
  unsigned long inside[3]; /* the client's exit code, its pid, the root's pid */
  run_arg_t a;
  HANDLE th;
  cli_t r;
  json_t *evs, *notes, *e;
  DWORD foreign_ps = 0, foreign_kill = 0, owner_kill = 0;

  /* jw_run runs in this process, which also starts the owner's clients
   * outside the job: children of "jobwarden" that are no escape. */
  jw__escape_self_hook(0);
  snprintf(name, sizeof(name), "%s-inside", g_tag);
  snprintf(log, sizeof(log), "%s\\wine-control-inside.jsonl", g_dir);
  snprintf(out, sizeof(out), "%s\\wine-control-inside.code", g_dir);
  remove(log);
  remove(out);
  argv[0] = rig_self_utf8();
  argv[1] = "--helper";
  argv[2] = "ctl-inside";
  argv[3] = g_jw;
  argv[4] = name;
  argv[5] = out;
  argv[6] = CHILD_MS;
  th = start_in_process(&a, "control-inside", name, log, argv, 7);
  if (th == NULL)
    return;

  /* The sandboxed program's own `jobwarden kill`: refused, exit 1. */
  CHECK_INT(read_numbers(out, 16, inside, 3), 0);
  CHECK_U64(inside[0], JW_EXIT_CONTROL_REFUSED);
  CHECK_U64(WaitForSingleObject(th, 0), WAIT_TIMEOUT);

  /* Another user (injected: the identity hook): refused. */
  jw__control_identity_hook(foreign_identity);
  snprintf(args, sizeof(args), "ps %s --json", name);
  cli_run("foreign-ps", args, &r);
  foreign_ps = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, JW_EXIT_CONTROL_REFUSED);
  snprintf(want, sizeof(want),
           "{\"ok\":false,\"op\":\"ps\",\"reason\":\"not_owner\",\"error\":\"the client (pid %lu) "
           "runs as " FOREIGN_SID ", not as the run's user: only the owner of the run may control "
           "it\"}\n",
           (unsigned long)foreign_ps);
  CHECK_STR(r.out, want);
  cli_free(&r);
  snprintf(args, sizeof(args), "kill %s", name);
  cli_run("foreign-kill", args, &r);
  foreign_kill = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, JW_EXIT_CONTROL_REFUSED);
  CHECK_STR(r.out, "");
  snprintf(want, sizeof(want),
           "jobwarden: kill: \\\\.\\pipe\\jobwarden-control-%s: refused: the client (pid %lu) runs "
           "as " FOREIGN_SID ", not as the run's user: only the owner of the run may control it\n",
           name, (unsigned long)foreign_kill);
  CHECK_STR(r.err, want);
  cli_free(&r);
  CHECK_U64(WaitForSingleObject(th, 0), WAIT_TIMEOUT);

  /* The owner terminates the root: the run ends. */
  jw__control_identity_hook(NULL);
  snprintf(args, sizeof(args), "kill %s --pid %lu", name, inside[2]);
  cli_run("owner-kill", args, &r);
  owner_kill = r.pi.dwProcessId;
  CHECK_INT(r.exit_code, 0);
  snprintf(want, sizeof(want), "terminated pid %lu (%s), the root process: the run ends\n",
           inside[2], g_me);
  CHECK_STR(r.out, want);
  cli_free(&r);
  CHECK_U64(WaitForSingleObject(th, WAIT_MS), WAIT_OBJECT_0);
  CloseHandle(th);
  CHECK_U64((DWORD)a.status, KILLED);

  evs = load(log);
  notes = control_notices(evs);
  CHECK_INT(json_array_size(notes), 4);
  e = json_array_get(notes, 0);
  check_notice(e, "blocked", "high", "kill", "refused", "from_sandbox", inside[1]);
  CHECK_STR(tw_str(e, "control.requester.user"), g_sid);
  snprintf(want, sizeof(want),
           "control request kill from pid %lu (user %s) refused: the request comes from pid %lu, "
           "a process inside the job: the sandbox cannot control its own run",
           inside[1], g_sid, inside[1]);
  CHECK_STR(tw_str(e, "message"), want);
  e = json_array_get(notes, 1);
  check_notice(e, "blocked", "high", "ps", "refused", "not_owner", foreign_ps);
  CHECK_STR(tw_str(e, "control.requester.user"), FOREIGN_SID);
  e = json_array_get(notes, 2);
  check_notice(e, "blocked", "high", "kill", "refused", "not_owner", foreign_kill);
  CHECK_STR(tw_str(e, "control.requester.user"), FOREIGN_SID);
  e = json_array_get(notes, 3);
  check_notice(e, "terminated", "medium", "kill", "done", NULL, owner_kill);
  CHECK_STR(tw_str(e, "control.requester.user"), g_sid);
  CHECK_INT(tw_int(e, "control.pid"), inside[2]);
  CHECK_INT(tw_int(e, "process.pid"), inside[2]);
  CHECK(json_is_true(tw_get(e, "process.is_root")));
  snprintf(want, sizeof(want),
           "control request kill from pid %lu (user %s) terminated root process %s (pid %lu); the "
           "run ends",
           (unsigned long)owner_kill, g_sid, g_me, inside[2]);
  CHECK_STR(tw_str(e, "message"), want);
  json_decref(notes);
  /* The root's exit names the request; nothing was left to terminate. */
  {
    json_t *exits = tw_filter(evs, "sandbox.process_exit", "root_process");
    CHECK_INT(json_array_size(exits), 1);
    e = json_array_get(exits, 0);
    CHECK_STR(tw_str(e, "action"), "terminated");
    CHECK_U64(tw_int(e, "process.exit_code"), KILLED);
    snprintf(want, sizeof(want),
             "root process %s (pid %lu) was terminated by jobwarden (control request `kill` from "
             "pid %lu)",
             g_me, inside[2], (unsigned long)owner_kill);
    CHECK_STR(tw_str(e, "message"), want);
    json_decref(exits);
  }
  CHECK_INT(tw_count(evs, "sandbox.violation", "orphan_processes"), 0);
  /* The in-job client is a member of the job like any other process. */
  {
    json_t *starts = tw_filter(evs, "sandbox.process_start", "child_process"), *s;
    size_t i;
    int found = 0;
    json_array_foreach(starts, i, s) {
      if (tw_int(s, "process.pid") == (long long)inside[1])
        found++;
    }
    CHECK_INT(found, 1);
    json_decref(starts);
  }
  /* The root alone was terminated, not the job. */
  e = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(e, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(e, "action"), "observed");
  CHECK(json_is_null(tw_get(e, "summary.terminated_by_jobwarden")));
  json_decref(evs);
  jw__escape_self_hook(GetCurrentProcessId());
}

/* ------------------------------------------------------------------------ */
/* stuck: a client that connects and sends nothing holds up nothing         */
/* ------------------------------------------------------------------------ */

static void test_stuck(void) {
  char name[96], log[TW_PATH_CHARS], path[256], buf[16];
  const char *argv[4];
  wchar_t wpath[256];
  run_arg_t a;
  HANDLE th, h = INVALID_HANDLE_VALUE;
  ULONGLONG t0;
  DWORD waited, got = 0, e;

  snprintf(name, sizeof(name), "%s-stuck", g_tag);
  snprintf(log, sizeof(log), "%s\\wine-control-stuck.jsonl", g_dir);
  snprintf(path, sizeof(path), "\\\\.\\pipe\\jobwarden-control-%s", name);
  MultiByteToWideChar(CP_ACP, 0, path, -1, wpath, 256);
  remove(log);
  argv[0] = rig_self_utf8();
  argv[1] = "--helper";
  argv[2] = "sleep";
  argv[3] = "1500";
  th = start_in_process(&a, "control-stuck", name, log, argv, 4);
  if (th == NULL)
    return;
  for (waited = 0; waited < WAIT_MS && h == INVALID_HANDLE_VALUE; waited += 10) {
    h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
      Sleep(10);
  }
  CHECK(h != INVALID_HANDLE_VALUE);
  t0 = GetTickCount64();
  /* Connected, silent: the root ends by itself after 1.5 s and the run
   * with it, well before the server would give up on this client (5 s). */
  CHECK_U64(WaitForSingleObject(th, WAIT_MS), WAIT_OBJECT_0);
  CHECK(GetTickCount64() - t0 < 4000);
  CloseHandle(th);
  CHECK_INT(a.status, 0);
  /* The server's end is gone: the client reads the end of the pipe. */
  CHECK(!ReadFile(h, buf, sizeof(buf), &got, NULL));
  e = GetLastError();
  CHECK_U64(e, ERROR_BROKEN_PIPE);
  CHECK_U64(got, 0);
  if (h != INVALID_HANDLE_VALUE)
    CloseHandle(h);
  {
    json_t *evs = load(log);
    CHECK_INT(tw_count(evs, "sandbox.notice", "member_control"), 0);
    CHECK_STR(tw_str(json_array_get(evs, json_array_size(evs) - 1), "event"), "sandbox.job_end");
    json_decref(evs);
  }
}

/* Runnable one by one: `win_control.exe DATA EVENTS JOBWARDEN --case stuck`. */
static const jw_test_case_t cases[] = {
    {"security", test_security, 60},
    {"main", test_main, 120},
    {"inside", test_inside, 60},
    {"stuck", test_stuck, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv)) {
    if (strcmp(argv[2], "ctl-tree") == 0)
      return helper_tree(argc, argv);
    if (strcmp(argv[2], "ctl-inside") == 0)
      return helper_inside(argc, argv);
    return tw_helper_main(argc, argv);
  }
  if (tw_test_setup(argc, argv, "wine-control-", g_dir, g_jw, g_me) != 0 ||
      tw_user_sid()[0] == '\0')
    return 1;
  snprintf(g_sid, sizeof(g_sid), "%s", tw_user_sid());
  snprintf(g_tag, sizeof(g_tag), "jwt-%lu", (unsigned long)GetCurrentProcessId());
  return TW_RUN_CASES("control_real", argc, argv, cases);
}

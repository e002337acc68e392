/* wine.real.selfdefense: the agent runs with less than jobwarden (issue 9,
 * part 1). The real jobwarden.exe runs this executable in a helper mode
 * (helpers.h, "Self-defence attacks") that turns on jobwarden from inside
 * the job; every case asserts exactly what the attacker got, what
 * jobwarden recorded, and that no process of the run outlives it.
 *
 * What Wine 8 does not enforce is asserted as measured and named
 * windows_only in the case name (docs/platform-support.md): there the
 * code path is tested and the outcome on Windows is documented.
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. Each
 * run writes <events dir>/wine-self-<case>.jsonl / .stdout / .stderr. */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>
#include <tlhelp32.h>

#include <jansson.h>

#include "harness.h"
#include "helpers.h"
#include "checks.h"

#define RUN_TIMEOUT_MS   30000
#define KILL_DEADLINE_MS 3000

static char g_self[TW_PATH_CHARS];   /* this executable */
static char g_jw[TW_PATH_CHARS];     /* jobwarden.exe */
static char g_events[TW_PATH_CHARS]; /* the events directory */

static void case_path(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_events, "wine-self-", tag, suffix);
}

/* ------------------------------------------------------------------------ */
/* A jobwarden run                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
  tw_run_t p; /* the run; p.out is the helper's reports after finish_run */
  char log[TW_PATH_CHARS];
} run_t;

/* Starts `jobwarden run OPTS --export file:<log> -- <self> --helper ARGS`. */
static int start_run(run_t *r, const char *tag, const char *opts, const char *helper_args) {
  char cmd[TW_CMD_CHARS];
  case_path(r->log, sizeof(r->log), tag, ".jsonl");
  DeleteFileA(r->log);
  snprintf(cmd, sizeof(cmd), "run %s --export \"file:%s\" -- \"%s\" --helper %s", opts, r->log,
           g_self, helper_args);
  tw_jw_start(&(tw_run_opts_t){.tag = tag,
                               .args = cmd,
                               .events_path = r->log,
                               .timeout_ms = RUN_TIMEOUT_MS,
                               .retry_1359 = 1},
              &r->p);
  CHECK(r->p.started);
  return r->p.started ? 0 : -1;
}

/* Waits for the run (a run killed after RUN_TIMEOUT_MS fails), reads its
 * reports (p.out) and its events (p.events, NULL when torn or unreadable). */
static void finish_run(run_t *r) {
  if (!tw_jw_wait(&r->p))
    CHECK(0);
}

/* The rest of the helper's report line starting with "key " (static
 * buffer), or NULL. */
static const char *reported(const run_t *r, const char *key) {
  static char value[2048];
  const char *p = r->p.out;
  size_t k = strlen(key);
  while (p != NULL && *p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n > k && strncmp(p, key, k) == 0 && p[k] == ' ') {
      n -= k + 1;
      if (n >= sizeof(value))
        n = sizeof(value) - 1;
      memcpy(value, p + k + 1, n);
      value[n] = '\0';
      while (n > 0 && (value[n - 1] == '\r' || value[n - 1] == ' '))
        value[--n] = '\0';
      return value;
    }
    p = nl ? nl + 1 : NULL;
  }
  return NULL;
}

static long reported_long(const run_t *r, const char *key) {
  const char *v = reported(r, key);
  return v ? strtol(v, NULL, 0) : -1;
}

static json_t *only(json_t *evs, const char *event, const char *rule) {
  json_t *f = tw_filter(evs, event, rule), *one = NULL;
  CHECK_INT(json_array_size(f), 1);
  if (json_array_size(f) >= 1)
    one = json_array_get(f, 0);
  json_decref(f); /* `one` stays alive: evs holds it too */
  return one;
}

/* ------------------------------------------------------------------------ */
/* The expected DACL                                                        */
/* ------------------------------------------------------------------------ */

/* Reads a kernel object's DACL and checks it holds exactly: allow user
 * `user_mask`, allow SYSTEM `system_mask`, allow OWNER RIGHTS
 * READ_CONTROL, in that order; and SE_DACL_PROTECTED as `want_protected`
 * says (1 set, 0 clear, -1 either). */
static void check_dacl_bit(HANDLE h, DWORD user_mask, DWORD system_mask, int want_protected,
                           const char *what) {
  static const char *const sids[3] = {NULL, TW_SID_SYSTEM, "S-1-3-4"};
  DWORD masks[3], i;
  tw_acl_t a;
  int before = jw_test_failures;
  masks[0] = user_mask;
  masks[1] = system_mask;
  masks[2] = READ_CONTROL;
  CHECK_INT(tw_acl_read(h, NULL, 0, &a), ERROR_SUCCESS);
  if (a.error != ERROR_SUCCESS)
    return;
  CHECK(a.have_control);
  /* Wine 8 (measured) does not keep SE_DACL_PROTECTED when a DACL is
   * set with SetSecurityInfo: read back, the bit is clear. It keeps the
   * bit of a descriptor given at creation (a thread started with
   * jobwarden's SECURITY_ATTRIBUTES). Windows keeps it either way. */
  if (want_protected >= 0)
    CHECK(a.is_protected == want_protected);
  CHECK(a.have_dacl);
  CHECK_INT(a.ace_count, 3);
  for (i = 0; i < 3 && i < a.ace_count; i++) {
    CHECK(a.ace[i].read);
    if (!a.ace[i].read)
      continue;
    CHECK_INT(a.ace[i].type, ACCESS_ALLOWED_ACE_TYPE);
    CHECK_U64(a.ace[i].mask, masks[i]);
    CHECK(a.ace[i].sid[0] != '\0');
    CHECK_STR(a.ace[i].sid, sids[i] ? sids[i] : tw_user_sid());
  }
  if (jw_test_failures != before)
    fprintf(stderr, "    ^ in the DACL of %s\n", what);
}

/* jobwarden's process: its DACL is set with SetSecurityInfo (the bit
 * reads clear under Wine). */
static void check_dacl(HANDLE h, DWORD user_mask, DWORD system_mask, const char *what) {
  check_dacl_bit(h, user_mask, system_mask, 0, what);
}

/* 1. jobwarden's process and its threads carry the protected DACL, read
 *    back from outside while the program runs. */
static void case_dacl_read_back(void) {
  run_t r;
  char pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  DWORD root = 0, gc = 0, jw_pid;
  HANDLE snap, h;
  THREADENTRY32 te;
  int threads = 0;

  case_path(pidfile, sizeof(pidfile), "dacl", ".pids");
  DeleteFileA(pidfile);
  snprintf(args, sizeof(args), "tree \"%s\" 60000", pidfile);
  if (start_run(&r, "dacl", "--tier none", args) != 0)
    return;
  jw_pid = r.p.pi.dwProcessId;
  CHECK_INT(tw_read_pids(pidfile, RUN_TIMEOUT_MS, &root, &gc), 0);
  /* The creator's handle has full access: it reads the DACL as set. */
  check_dacl(r.p.pi.hProcess, PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, PROCESS_ALL_ACCESS,
             "jobwarden's process");
  /* Every thread jobwarden had when the program started. */
  snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  CHECK(snap != INVALID_HANDLE_VALUE);
  te.dwSize = sizeof(te);
  if (snap != INVALID_HANDLE_VALUE && Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID != jw_pid)
        continue;
      h = OpenThread(READ_CONTROL, FALSE, te.th32ThreadID);
      CHECK(h != NULL);
      if (h != NULL) {
        char what[64];
        snprintf(what, sizeof(what), "jobwarden's thread %lu", (unsigned long)te.th32ThreadID);
        /* Set at creation or by jw__self_protect: the bit says which. */
        check_dacl_bit(h, THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, THREAD_ALL_ACCESS, -1,
                       what);
        CloseHandle(h);
        threads++;
      }
    } while (Thread32Next(snap, &te));
  }
  if (snap != INVALID_HANDLE_VALUE)
    CloseHandle(snap);
  CHECK(threads >= 2); /* the main thread and the monitor at least */
  fprintf(stderr, "[dacl] %d thread(s) of jobwarden carry the protected DACL\n", threads);

  /* The same user, outside the job, opening jobwarden afresh: what Wine
   * makes of the DACL (docs/platform-support.md). */
  h = OpenProcess(PROCESS_TERMINATE, FALSE, jw_pid);
  {
    DWORD e = h ? 0 : GetLastError();
    fprintf(stderr, "[dacl] OpenProcess(PROCESS_TERMINATE) from outside the job: %s (%lu)\n",
            h ? "granted" : "refused", (unsigned long)e);
    SetLastError(e);
  }
  CHECK(h == NULL); /* measured: Wine 8 checks a process DACL */
  CHECK_INT(GetLastError(), ERROR_ACCESS_DENIED);
  if (h != NULL)
    CloseHandle(h);

  /* End the run: the creator kills jobwarden; kill-on-close (tier none)
   * takes the program and its grandchild. */
  if (root && gc) {
    HANDLE m[2];
    m[0] = OpenProcess(SYNCHRONIZE, FALSE, root);
    m[1] = OpenProcess(SYNCHRONIZE, FALSE, gc);
    CHECK(TerminateProcess(r.p.pi.hProcess, 9));
    if (m[0] && m[1])
      CHECK_INT(WaitForMultipleObjects(2, m, TRUE, KILL_DEADLINE_MS), WAIT_OBJECT_0);
    if (m[0])
      CloseHandle(m[0]);
    if (m[1])
      CloseHandle(m[1]);
  }
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 9);
  tw_jw_free(&r.p);
}

/* Waits until the file at path holds text (a line jobwarden wrote). 0,
 * or -1 after timeout_ms. */
static int wait_text(const char *path, const char *text, DWORD timeout_ms) {
  ULONGLONG end = GetTickCount64() + timeout_ms;
  for (;;) {
    char *buf = tw_read_file(path, NULL);
    int found = buf != NULL && strstr(buf, text) != NULL;
    free(buf);
    if (found)
      return 0;
    if (GetTickCount64() >= end)
      return -1;
    Sleep(5);
  }
}

/* jobwarden's thread ids now (pid jw_pid), into ids[] (at most cap). */
static size_t thread_ids(DWORD jw_pid, DWORD *ids, size_t cap) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  THREADENTRY32 te;
  size_t n = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID == jw_pid && n < cap)
        ids[n++] = te.th32ThreadID;
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  return n;
}

typedef struct {
  HANDLE h;     /* the pipe, read to its end */
  HANDLE first; /* set at the first byte (or the end) */
  size_t len;
} drain_t;

static unsigned __stdcall drain_main(void *arg) {
  drain_t *d = arg;
  char buf[4096];
  DWORD got;
  while (ReadFile(d->h, buf, sizeof(buf), &got, NULL) && got > 0) {
    d->len += got;
    SetEvent(d->first);
  }
  SetEvent(d->first);
  return 0;
}

/* 1a. Threads jobwarden starts after the program: a pipe: reader from
 *     outside the job makes jobwarden start its writer thread; then the
 *     agent, from inside, opens every thread of jobwarden's with
 *     THREAD_SUSPEND_RESUME and THREAD_TERMINATE. Every open is refused,
 *     and every thread (the late ones too) carries the protected DACL. */
static void case_late_threads(void) {
  run_t r;
  char gofile[TW_PATH_CHARS], args[TW_CMD_CHARS], opts[256], name[64], path[300];
  DWORD before[256], after[256], jw_pid;
  size_t nb, na, i, j, late = 0;
  drain_t d;
  HANDLE th = NULL;
  int k;

  memset(&d, 0, sizeof(d));
  snprintf(name, sizeof(name), "jwself%lu-late", (unsigned long)GetCurrentProcessId());
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  case_path(gofile, sizeof(gofile), "late-threads", ".go");
  DeleteFileA(gofile);
  snprintf(opts, sizeof(opts), "--tier none --export pipe:%s", name);
  snprintf(args, sizeof(args), "open-threads \"%s\"", gofile);
  if (start_run(&r, "late-threads", opts, args) != 0)
    return;
  jw_pid = r.p.pi.dwProcessId;
  /* The root's process_start is written once every thread of the set-up
   * is started and the second jw__self_protect is done: what starts from
   * now on is the run's own. The pipe listens since before. */
  CHECK_INT(wait_text(r.log, "\"rule\":\"root_process\"", RUN_TIMEOUT_MS), 0);
  nb = thread_ids(jw_pid, before, 256);
  d.h = INVALID_HANDLE_VALUE;
  for (k = 0; k < 100 && d.h == INVALID_HANDLE_VALUE; k++) {
    d.h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (d.h == INVALID_HANDLE_VALUE)
      WaitNamedPipeA(path, 1000); /* busy: the acceptor's next instance */
  }
  CHECK(d.h != INVALID_HANDLE_VALUE);
  if (d.h != INVALID_HANDLE_VALUE) {
    d.first = CreateEventW(NULL, TRUE, FALSE, NULL);
    th = (HANDLE)_beginthreadex(NULL, 0, drain_main, &d, 0, NULL);
    /* The first byte comes from the writer thread jobwarden started for
     * this reader: it exists now. */
    CHECK_INT(WaitForSingleObject(d.first, RUN_TIMEOUT_MS), WAIT_OBJECT_0);
    CHECK(d.len > 0);
  }
  na = thread_ids(jw_pid, after, 256);
  /* Read back from outside: every thread, the new ones included. */
  for (i = 0; i < na; i++) {
    HANDLE h = OpenThread(READ_CONTROL, FALSE, after[i]);
    int is_new = 1;
    for (j = 0; j < nb; j++)
      is_new &= before[j] != after[i];
    late += is_new;
    if (h != NULL) {
      char what[64];
      snprintf(what, sizeof(what), "jobwarden's %sthread %lu", is_new ? "late " : "",
               (unsigned long)after[i]);
      /* A late thread got its DACL at creation, so the protected bit
       * reads set under Wine too; an earlier one either way. */
      check_dacl_bit(h, THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, THREAD_ALL_ACCESS,
                     is_new ? 1 : -1, what);
      CloseHandle(h);
    }
    CHECK(h != NULL); /* READ_CONTROL: the OWNER RIGHTS entry grants it */
  }
  CHECK(late >= 1); /* the reader's writer thread at least */
  {
    FILE *f = fopen(gofile, "wb");
    CHECK(f != NULL);
    if (f)
      fclose(f);
  }
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 0);
  if (th != NULL) {
    CHECK_INT(WaitForSingleObject(th, RUN_TIMEOUT_MS), WAIT_OBJECT_0);
    CloseHandle(th);
  }
  if (d.h != INVALID_HANDLE_VALUE)
    CloseHandle(d.h);
  if (d.first != NULL)
    CloseHandle(d.first);
  /* What the agent got: nothing, on every thread it saw (the late ones
   * among them: they still ran when it looked, the run waited for it). */
  {
    long n = reported_long(&r, "threads");
    const char *p = r.p.out;
    long seen = 0, late_seen = 0;
    CHECK(n >= 2);
    while (p != NULL && (p = strstr(p, "thread ")) != NULL) {
      unsigned long tid = 0, es = 0, et = 0;
      if (sscanf(p, "thread %lu %lu %lu", &tid, &es, &et) == 3) {
        seen++;
        for (i = 0; i < na; i++)
          if (after[i] == tid) {
            int is_new = 1;
            for (j = 0; j < nb; j++)
              is_new &= before[j] != tid;
            late_seen += is_new;
          }
        if (es != ERROR_ACCESS_DENIED || et != ERROR_ACCESS_DENIED)
          fprintf(stderr, "[late-threads] thread %lu: suspend %lu terminate %lu\n", tid, es, et);
        CHECK_U64(es, ERROR_ACCESS_DENIED);
        CHECK_U64(et, ERROR_ACCESS_DENIED);
      }
      p += 7;
    }
    CHECK_INT(seen, n);
    CHECK(late_seen >= 1);
    fprintf(stderr,
            "[late-threads] %ld thread(s) of jobwarden (%ld started after the reader came) "
            "refused THREAD_SUSPEND_RESUME and THREAD_TERMINATE from inside the job\n",
            seen, late_seen);
  }
  tw_jw_free(&r.p);
}

/* 1b. The explicit opt-out: --no-kill-on-close is recorded as
 *     "opted_out", and then a killed jobwarden does leave the program and
 *     its grandchild running (which is what the default prevents). */
static void case_kill_on_close_opt_out(void) {
  run_t r;
  char pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  DWORD root = 0, gc = 0;
  HANDLE m[2] = {NULL, NULL};
  json_t *evs;
  int i;
  case_path(pidfile, sizeof(pidfile), "opt-out", ".pids");
  DeleteFileA(pidfile);
  snprintf(args, sizeof(args), "tree \"%s\" 60000", pidfile);
  if (start_run(&r, "opt-out", "--tier none --no-kill-on-close", args) != 0)
    return;
  CHECK_INT(tw_read_pids(pidfile, RUN_TIMEOUT_MS, &root, &gc), 0);
  m[0] = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, root);
  m[1] = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, gc);
  CHECK(m[0] != NULL && m[1] != NULL);
  CHECK(TerminateProcess(r.p.pi.hProcess, 9));
  CHECK_INT(WaitForSingleObject(r.p.pi.hProcess, KILL_DEADLINE_MS), WAIT_OBJECT_0);
  /* Kill-on-close ends members within milliseconds (WINE.md: ~4 ms);
   * with it off, both are still running after the whole deadline. */
  for (i = 0; i < 2; i++)
    if (m[i] != NULL)
      CHECK_INT(WaitForSingleObject(m[i], i == 0 ? KILL_DEADLINE_MS : 0), WAIT_TIMEOUT);
  for (i = 0; i < 2; i++)
    if (m[i] != NULL) {
      TerminateProcess(m[i], 1);
      WaitForSingleObject(m[i], 5000);
      CloseHandle(m[i]);
    }
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 9);
  evs = json_incref(r.p.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev = only(evs, "sandbox.job_start", NULL);
    CHECK_STR(tw_str(ev, "job_config.kill_on_close"), "opted_out");
    CHECK(json_is_false(tw_get(ev, "job_config.kill_on_close_applied")));
    CHECK(json_is_false(tw_get(ev, "policy.kill_on_close")));
    json_decref(evs);
  }
  tw_jw_free(&r.p);
}

/* 2. From inside the job: which rights on jobwarden the agent gets.
 *    Measured under Wine 8: the DACL is checked (error 5) for terminate,
 *    dup-handle, VM read and create-process; query-limited is granted as
 *    the DACL says; WRITE_DAC is granted because Wine ignores the OWNER
 *    RIGHTS entry (the owner keeps its implicit WRITE_DAC): on Windows it
 *    is refused (windows-only, docs/platform-support.md). */
static void case_open_parent(void) {
  static const struct {
    const char *name, *want;
  } rights[] = {{"PROCESS_TERMINATE", "5"},
                {"PROCESS_DUP_HANDLE", "5"},
                {"PROCESS_VM_READ", "5"},
                {"PROCESS_CREATE_PROCESS", "5"},
                {"WRITE_DAC", "0" /* Windows: 5 */},
                {"PROCESS_QUERY_LIMITED_INFORMATION", "0"}};
  run_t r;
  size_t i;
  if (start_run(&r, "open-parent", "--tier none", "open-parent") != 0)
    return;
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 0);
  CHECK_INT(reported_long(&r, "parent"), (long)r.p.pi.dwProcessId);
  for (i = 0; i < sizeof(rights) / sizeof(rights[0]); i++) {
    char key[64];
    const char *v;
    snprintf(key, sizeof(key), "open %s", rights[i].name);
    v = reported(&r, key);
    fprintf(stderr, "[open-parent] %s from inside the job: Win32 error %s\n", rights[i].name,
            v ? v : "(not reported)");
    CHECK_STR(v, rights[i].want);
  }
  tw_jw_free(&r.p);
}

/* 3. The agent kills jobwarden (exit code 0) while it has a grandchild:
 *    nothing of the run survives (kill-on-close, in every tier), and the
 *    log holds whole lines only. The direct open is refused; the kill
 *    goes through the DACL rewrite that only Wine allows (case 2), which
 *    is what lets this test show kill-on-close at work. */
static void case_agent_kills_jobwarden(const char *tier) {
  run_t r;
  char tag[64], pidfile[TW_PATH_CHARS], gofile[TW_PATH_CHARS], args[TW_CMD_CHARS], opts[64];
  DWORD root = 0, gc = 0;
  HANDLE m[2] = {NULL, NULL};
  json_t *evs;

  snprintf(tag, sizeof(tag), "kill-parent-%s", tier);
  case_path(pidfile, sizeof(pidfile), tag, ".pids");
  case_path(gofile, sizeof(gofile), tag, ".go");
  DeleteFileA(pidfile);
  DeleteFileA(gofile);
  snprintf(args, sizeof(args), "kill-parent \"%s\" \"%s\"", pidfile, gofile);
  snprintf(opts, sizeof(opts), "--tier %s", tier);
  if (start_run(&r, tag, opts, args) != 0)
    return;
  CHECK_INT(tw_read_pids(pidfile, RUN_TIMEOUT_MS, &root, &gc), 0);
  m[0] = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, root);
  m[1] = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, gc);
  CHECK(m[0] != NULL && m[1] != NULL);
  {
    FILE *f = fopen(gofile, "wb");
    CHECK(f != NULL);
    if (f)
      fclose(f);
  }
  /* jobwarden dies by the agent's hand... */
  CHECK_INT(WaitForSingleObject(r.p.pi.hProcess, RUN_TIMEOUT_MS), WAIT_OBJECT_0);
  /* ...and the whole run with it, within the deadline. */
  if (m[0] && m[1]) {
    DWORD w = WaitForMultipleObjects(2, m, TRUE, KILL_DEADLINE_MS);
    CHECK_INT(w, WAIT_OBJECT_0);
    if (w != WAIT_OBJECT_0) {
      fprintf(stderr, "[%s] the run survived jobwarden; killing it\n", tag);
      TerminateProcess(m[0], 1);
      TerminateProcess(m[1], 1);
    }
  }
  if (m[0])
    CloseHandle(m[0]);
  if (m[1])
    CloseHandle(m[1]);
  finish_run(&r);
  /* The direct open is refused by the DACL (Wine and Windows). The
   * owner's way round, WRITE_DAC, works under Wine only (it ignores
   * OWNER RIGHTS): the agent replaces the DACL, opens jobwarden again and
   * kills it with exit code 0 (the caller of jobwarden sees "success";
   * the log, which has no job_end, is the only witness). On Windows the
   * rewrite_open is refused with 5 and jobwarden lives on. */
  CHECK_STR(reported(&r, "open"), "5");
  CHECK_STR(reported(&r, "rewrite_open"), "0"); /* windows-only: 5 */
  CHECK_STR(reported(&r, "rewrite_set"), "0");
  CHECK_STR(reported(&r, "reopen"), "0");
  CHECK_U64(r.p.exit_code, 0);
  evs = json_incref(r.p.events); /* NULL on a torn line */
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev, *end = tw_filter(evs, "sandbox.job_end", NULL);
    ev = only(evs, "sandbox.job_start", NULL);
    CHECK_STR(tw_str(ev, "job_config.kill_on_close"), "on");
    ev = only(evs, "sandbox.process_start", "root_process");
    CHECK_INT(tw_int(ev, "process.pid"), root);
    CHECK_INT(json_array_size(end), 0);
    json_decref(end);
    json_decref(evs);
  }
  tw_jw_free(&r.p);
}

/* 4. The agent copies jobwarden's job handle (PROCESS_DUP_HANDLE) and
 *    turns kill-on-close off and breakaway on. The direct open is refused
 *    (Wine and Windows); through the DACL rewrite Wine lets every step
 *    through, so a child breaks away: on Windows the rewrite is refused
 *    (error 5) and nothing follows. Asserted as Wine does it. */
static void case_dup_job_windows_only(void) {
  run_t r;
  json_t *evs;
  if (start_run(&r, "dup-job", "--tier none", "dup-job") != 0)
    return;
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 0);
  CHECK_STR(reported(&r, "open"), "5");         /* the DACL, Wine and Windows */
  CHECK_STR(reported(&r, "rewrite_open"), "0"); /* windows-only: 5, and nothing follows */
  CHECK_STR(reported(&r, "rewrite_set"), "0");
  CHECK_STR(reported(&r, "reopen"), "0");
  CHECK(reported_long(&r, "job") > 0); /* jobwarden's job handle, found by value */
  CHECK_STR(reported(&r, "set"), "0");
  CHECK_STR(reported(&r, "breakaway"), "0");
  CHECK_STR(reported(&r, "escaped"), "1");
  fprintf(stderr,
          "[dup-job] Wine: direct open refused; after the DACL rewrite: job handle 0x%lx copied, "
          "kill-on-close off, a child broke away (windows-only defence: OWNER RIGHTS)\n",
          (unsigned long)reported_long(&r, "job"));
  evs = json_incref(r.p.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *end = only(evs, "sandbox.job_end", NULL);
    CHECK(end != NULL);
    json_decref(evs);
  }
  tw_jw_free(&r.p);
}

/* 5. What the program inherited (the HANDLE_LIST path): exactly its three
 *    standard handles; and jobwarden itself holds no inheritable handle
 *    when it starts the program (job_start's self_protection). */
static void case_inherited_handles(void) {
  run_t r;
  json_t *evs;
  const char *std, *inh;
  unsigned long in = 0, out = 0, err = 0;
  char want[128];
  if (start_run(&r, "inherited", "--tier none", "inherited") != 0)
    return;
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 0);
  std = reported(&r, "std");
  CHECK(std != NULL && sscanf(std, "%lx %lx %lx", &in, &out, &err) == 3);
  CHECK(in != 0 && out != 0 && err != 0 && in != out && out != err && in != err);
  {
    unsigned long v[3] = {in, out, err}, t;
    int i, j;
    for (i = 0; i < 3; i++)
      for (j = i + 1; j < 3; j++)
        if (v[j] < v[i]) {
          t = v[i];
          v[i] = v[j];
          v[j] = t;
        }
    snprintf(want, sizeof(want), "0x%lx 0x%lx 0x%lx", v[0], v[1], v[2]); /* listed by value */
  }
  inh = reported(&r, "inheritable");
  fprintf(stderr, "[inherited] std %s; inheritable %s\n", std ? std : "-", inh ? inh : "-");
  CHECK_STR(inh, want);
  evs = json_incref(r.p.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev = only(evs, "sandbox.job_start", NULL);
    CHECK(json_is_true(tw_get(ev, "job_config.self_protection.process_dacl")));
    CHECK_INT(tw_int(ev, "job_config.self_protection.inheritable_handles"), 0);
    /* Its standard handles came inheritable from the test (tw_spawn_redirected). */
    CHECK(tw_int(ev, "job_config.self_protection.handles_made_uninheritable") >= 3);
    json_decref(evs);
  }
  tw_jw_free(&r.p);
}

/* ------------------------------------------------------------------------ */
/* Token                                                                    */
/* ------------------------------------------------------------------------ */

/* The powerful groups of this test's own token (the same user as
 * jobwarden's), listed independently of jobwarden: what a restricted
 * token must hold as deny-only. */
static void powerful_groups(char *out, size_t n) {
  static const char *const list[] = {"S-1-5-32-544", "S-1-5-32-547", "S-1-5-32-548", "S-1-5-32-549",
                                     "S-1-5-32-550", "S-1-5-32-551", "S-1-5-32-552", "S-1-5-32-556",
                                     "S-1-5-32-578", "S-1-5-32-582", "S-1-5-114"};
  HANDLE tok;
  static BYTE buf[8192];
  DWORD len, i;
  size_t k;
  out[0] = '\0';
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return;
  if (GetTokenInformation(tok, TokenGroups, buf, sizeof(buf), &len)) {
    TOKEN_GROUPS *g = (TOKEN_GROUPS *)buf;
    for (i = 0; i < g->GroupCount; i++) {
      char *s = NULL;
      if (!ConvertSidToStringSidA(g->Groups[i].Sid, &s))
        continue;
      for (k = 0; k < sizeof(list) / sizeof(list[0]); k++)
        if (strcmp(s, list[k]) == 0)
          snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? " " : "", s);
      LocalFree(s);
    }
  }
  CloseHandle(tok);
}

/* A JSON array of strings joined by spaces (static buffer). */
static const char *joined(json_t *arr) {
  static char buf[2048];
  size_t i;
  json_t *v;
  buf[0] = '\0';
  if (!json_is_array(arr))
    return NULL;
  json_array_foreach(arr, i, v) {
    snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "",
             json_string_value(v) ? json_string_value(v) : "?");
  }
  return buf;
}

static const char *rid_name(unsigned long rid) {
  if (rid < 0x1000)
    return "untrusted";
  if (rid < 0x2000)
    return "low";
  if (rid < 0x2100)
    return "medium";
  if (rid < 0x3000)
    return "medium_plus";
  if (rid < 0x4000)
    return "high";
  if (rid < 0x5000)
    return "system";
  return "protected";
}

/* 6. The token the program runs with: what jobwarden built (read back
 *    before the spawn) is exactly the policy's; what the child really
 *    has is recorded and matches the child's own reading. Wine accepts
 *    the restricted Low token and leaves the child with the full one:
 *    asserted as measured (windows-only: the child at Low integrity). */
static void case_token(const char *tag, const char *opts, const char *mode) {
  run_t r;
  json_t *evs;
  char deny[1024];
  const char *v;
  int low = strcmp(mode, "low_integrity") == 0 || strcmp(mode, "restricted_low") == 0;
  int restricted = strcmp(mode, "restricted") == 0 || strcmp(mode, "restricted_low") == 0;
  if (start_run(&r, tag, opts, "token-report") != 0)
    return;
  finish_run(&r);
  CHECK_U64(r.p.exit_code, 0);
  powerful_groups(deny, sizeof(deny));
  evs = json_incref(r.p.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev = only(evs, "sandbox.job_start", NULL), *tok = tw_get(ev, "token");
    json_t *built = json_object_get(tok, "built"), *child = json_object_get(tok, "child");
    int before = jw_test_failures;
    CHECK_STR(tw_str(ev, "policy.token"), mode);
    CHECK_STR(json_string_value(json_object_get(tok, "requested")), mode);
    if (strcmp(mode, "inherit") == 0) {
      CHECK(built == NULL); /* nothing is built: the program gets jobwarden's own */
      CHECK(json_object_get(tok, "applied") == NULL ||
            json_is_true(json_object_get(tok, "applied")));
    } else {
      CHECK(json_is_object(built));
      /* Wine 8 (measured): SetTokenInformation(TokenIntegrityLevel)
       * returns TRUE and changes nothing, so the built token reads back
       * at jobwarden's own level, high. On Windows: "low", S-1-16-4096. */
      CHECK_STR(tw_str(built, "integrity"), "high");
      CHECK_STR(tw_str(built, "integrity_sid"), "S-1-16-12288");
      if (restricted) {
        CHECK_STR(joined(json_object_get(built, "privileges")), "SeChangeNotifyPrivilege");
        CHECK_STR(joined(json_object_get(built, "deny_only")), deny);
      } else {
        CHECK_STR(joined(json_object_get(built, "deny_only")), "");
        CHECK(json_array_size(json_object_get(built, "privileges")) > 1);
      }
      CHECK(json_object_get(built, "unavailable") == NULL);
      /* The gap is said in-band: applied false (for a Low token) and a
       * token_not_applied notice naming it. */
      {
        json_t *n = tw_filter(evs, "sandbox.notice", "token_not_applied");
        CHECK_INT(json_is_true(json_object_get(tok, "applied")), !low);
        CHECK_INT(json_array_size(n), low ? 1 : 0);
        if (low && json_array_size(n) == 1) {
          json_t *e = json_array_get(n, 0);
          CHECK_STR(tw_str(e, "severity"), "high");
          CHECK_STR(tw_str(e, "action"), "degraded");
          CHECK_CONTAINS(tw_str(e, "message"), "the built token's integrity is high, not low");
        }
        json_decref(n);
      }
    }
    /* The child's own token, as jobwarden recorded it and as the child
     * itself reads it. */
    CHECK(json_is_object(child));
    v = reported(&r, "integrity");
    CHECK(v != NULL);
    CHECK_STR(tw_str(child, "integrity"), v ? rid_name(strtoul(v, NULL, 0)) : "?");
    v = reported(&r, "privileges");
    CHECK_STR(joined(json_object_get(child, "privileges")), v ? v : "");
    v = reported(&r, "deny_only");
    CHECK_STR(joined(json_object_get(child, "deny_only")), v ? v : "");
    /* Wine 8 (measured): the child gets the built token's groups and
     * privileges, and High integrity whatever was asked. */
    CHECK_STR(tw_str(child, "integrity"), "high");
    if (built != NULL) {
      CHECK(json_equal(json_object_get(child, "deny_only"), json_object_get(built, "deny_only")));
      CHECK(json_equal(json_object_get(child, "privileges"), json_object_get(built, "privileges")));
    } else {
      CHECK_STR(joined(json_object_get(child, "deny_only")), "");
    }
    fprintf(stderr, "[%s] built: integrity %s, %lu privilege(s), deny-only [%s]", tag,
            built ? tw_str(built, "integrity") : "(jobwarden's own)",
            (unsigned long)json_array_size(json_object_get(built, "privileges")),
            built ? joined(json_object_get(built, "deny_only")) : "-");
    fprintf(stderr, "; child (really): integrity %s, %lu privilege(s), deny-only [%s]\n",
            tw_str(child, "integrity"),
            (unsigned long)json_array_size(json_object_get(child, "privileges")),
            joined(json_object_get(child, "deny_only")));
    if (jw_test_failures != before)
      fprintf(stderr, "    ^ in case %s\n", tag);
    json_decref(evs);
  }
  tw_jw_free(&r.p);
}

static void case_agent_kills_none(void) {
  case_agent_kills_jobwarden("none");
}

static void case_agent_kills_hardened(void) {
  case_agent_kills_jobwarden("hardened");
}

static void case_token_lockdown(void) {
  case_token("token-lockdown", "--tier lockdown", "restricted_low");
}

static void case_token_none(void) {
  case_token("token-none", "--tier none", "inherit");
}

static void case_token_restricted(void) {
  case_token("token-restricted", "--tier none --token restricted", "restricted");
}

static void case_token_low(void) {
  case_token("token-low", "--tier hardened --token low_integrity", "low_integrity");
}

/* Runnable one by one: `win_selfdefense.exe DATA EVENTS JOBWARDEN --case open_parent`. */
static const jw_test_case_t cases[] = {
    {"dacl_read_back", case_dacl_read_back, 60},
    {"late_threads", case_late_threads, 60},
    {"kill_on_close_opt_out", case_kill_on_close_opt_out, 60},
    {"open_parent", case_open_parent, 60},
    {"agent_kills_none", case_agent_kills_none, 60},
    {"agent_kills_hardened", case_agent_kills_hardened, 60},
    {"dup_job_windows_only", case_dup_job_windows_only, 60},
    {"inherited_handles", case_inherited_handles, 60},
    {"token_lockdown", case_token_lockdown, 60},
    {"token_none", case_token_none, 60},
    {"token_restricted", case_token_restricted, 60},
    {"token_low", case_token_low, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-self-", g_events, g_jw, g_self) != 0)
    return 2;
  if (tw_user_sid()[0] == '\0') {
    fprintf(stderr, "cannot read the user\n");
    return 2;
  }

  return TW_RUN_CASES("selfdefense", argc, argv, cases);
}

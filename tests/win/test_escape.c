/* wine.real.escape — the escape by parent spoofing (issue 9, section 3),
 * attacked from inside the job: a member starts a child with
 * PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming jobwarden (or a member), and
 * the child takes that parent's job. Wine does this as Windows documents
 * it (docs/platform-support.md), so every case is the real path.
 *
 *   rig-scan     hardened (kill_process, scan every 200 ms): the escape is
 *                found by the timed scan (no job message exists for it),
 *                reported critical with its image, command line and parent
 *                (this process, playing jobwarden), and terminated; it runs
 *                a fresh copy of this executable, whose identity no cache
 *                holds: its job_escape comes without it and one
 *                process_update (rule escaped_process) follows with it
 *   rig-kick     tier none with escape_action kill_process and no timed
 *                scan: found at the next job message (a NEW_PROCESS)
 *   rig-kill-job hardened with escape_action kill_job: the job and the
 *                escape terminated, the run's end says which rule
 *   rig-report   tier none (report, no timed scan), the root exits at
 *                once: found at the job's end, reported, then terminated
 *                there (no process of the run outlives it)
 *   rig-breakaway a member's child started with CREATE_BREAKAWAY_FROM_JOB
 *                (allowed by the policy): parent = a member, an escape
 *   rig-member   the named parent is a member: the child stays in the job;
 *                no job_escape
 *   cli-refused  the real jobwarden.exe protects its process: the member's
 *                OpenProcess(PROCESS_CREATE_PROCESS) on it fails with 5,
 *                nothing is started, nothing escapes, no job_escape
 *   cli-kill     the real jobwarden.exe, hardened: the attacker first
 *                rewrites jobwarden's DACL through WRITE_DAC (Wine grants
 *                it: it ignores the OWNER RIGHTS entry; Windows refuses
 *                it, docs/platform-support.md), then spoofs: parent =
 *                jobwarden.exe, found and terminated
 *   cli-report   the same way in, tier none: reported at the end,
 *                terminated, jobwarden exits 0
 *   cli-control  an escape (the same way in) runs `jobwarden ps NAME` and
 *                `kill NAME` on its own run: both refused (from_escape),
 *                recorded, the run unaffected
 *
 * Every escape's executable identity (its hash, size, signature status,
 * as a member's process_start carries them) is asserted against
 * coreutils' sha256sum of the file it runs, computed natively by
 * tests/win/escape/run.sh: exactly once, in its job_escape violation
 * (cached: the root runs the same file) or in one process_update after it,
 * before job_end.
 *
 * argv: <tests/data dir> <events dir> <jobwarden.exe> <sha256 of this
 * executable> <its size>. Events: <events dir>\wine-escape-*.jsonl
 * (validated by wine.schema.events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "cli.h"
#include "harness.h"
#include "rig.h"
#include "checks.h"
#include "win/escape.h"

#define WAIT_MS 30000
#define KILLED  JW_TERMINATE_EXIT_CODE

static char g_dir[TW_PATH_CHARS]; /* events directory (Windows path) */
static char g_jw[TW_PATH_CHARS];  /* jobwarden.exe */
static char g_me[TW_PATH_CHARS];  /* this executable (Windows path) */
static const char *g_sha;         /* its SHA-256, by coreutils (escape/run.sh) */
static long long g_size;          /* its size in bytes */

/* <events dir>\wine-escape-<tag><suffix>, removed. */
static void fresh_path(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_dir, "wine-escape-", tag, suffix);
  DeleteFileA(buf);
}

/* A handle to the escape, opened as soon as its pid is known (the monitor
 * holds one too, so the pid stays that process's). */
static HANDLE open_escape(DWORD pid) {
  HANDLE h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  CHECK(h != NULL);
  return h;
}

/* Whether the process has ended, and with which code. */
static int ended_with(HANDLE h, DWORD *code) {
  *code = 0;
  return h != NULL && WaitForSingleObject(h, 0) == WAIT_OBJECT_0 && tw_exit_code(h, code);
}

/* Index of the first event matching (event, rule, pid or -1 for any). */
static long index_of(json_t *evs, const char *event, const char *rule, long long pid) {
  json_t *ev;
  size_t i;
  json_array_foreach(evs, i, ev) {
    if (strcmp(tw_str(ev, "event") ? tw_str(ev, "event") : "", event) == 0 &&
        (rule == NULL || (tw_str(ev, "rule") && strcmp(tw_str(ev, "rule"), rule) == 0)) &&
        (pid < 0 || tw_int(ev, "process.pid") == pid))
      return (long)i;
  }
  return -1;
}

/* The job_escape event of `child`, checked field by field: critical, the
 * escape's image (this executable) and command line, its parent. */
static void check_escape_event(json_t *ev, DWORD child, DWORD parent, const char *parent_kind,
                               const char *detected_by, const char *action, const char *configured,
                               const char *mode_args, const char *image) {
  const char *cmd;
  if (ev == NULL)
    return;
  CHECK_STR(tw_str(ev, "event"), "sandbox.violation");
  CHECK_STR(tw_str(ev, "rule"), "job_escape");
  CHECK_STR(tw_str(ev, "severity"), "critical");
  CHECK_STR(tw_str(ev, "enforcer"), tw_enforcer_for(action, "monitor"));
  CHECK_STR(tw_str(ev, "source"), "jobwarden");
  CHECK_STR(tw_str(ev, "action"), action);
  CHECK_STR(tw_str(ev, "rule_id"), "JW-1301");
  CHECK_STR(json_string_value(json_array_get(tw_get(ev, "tags"), 0)), "attack.t1134.004");
  CHECK_INT(tw_int(ev, "process.pid"), child);
  CHECK(tw_str(ev, "process.entity_id") != NULL);
  CHECK_STR(tw_str(ev, "process.executable"), image);
  CHECK_INT(tw_int(ev, "process.parent.pid"), parent);
  CHECK(tw_str(ev, "process.parent.entity_id") != NULL);
  CHECK(tw_get(ev, "process.is_root") == json_false());
  cmd = tw_str(ev, "process.command_line");
  CHECK(cmd != NULL);
  if (cmd != NULL)
    CHECK_CONTAINS(cmd, mode_args);
  CHECK_STR(tw_str(ev, "enforcement.configured_action"), configured);
  CHECK_STR(tw_str(ev, "escape.parent"), parent_kind);
  if (strchr(detected_by, '|') != NULL) {
    const char *got = tw_str(ev, "escape.detected_by");
    char one[32];
    const char *p = detected_by;
    int hit = 0;
    while (got != NULL && *p) {
      size_t k = strcspn(p, "|");
      snprintf(one, sizeof(one), "%.*s", (int)k, p);
      hit |= strcmp(one, got) == 0;
      p += k + (p[k] == '|');
    }
    if (!hit)
      fprintf(stderr, "detected_by %s, expected one of %s\n", got ? got : "(none)", detected_by);
    CHECK(hit);
  } else {
    CHECK_STR(tw_str(ev, "escape.detected_by"), detected_by);
  }
  CHECK(tw_int(ev, "escape.detected_after_ms") >= 0);
  CHECK(tw_get(ev, "error") == NULL);
}

/* The identity fields of a process running this executable (or a copy):
 * sha256sum's hash and the file's size, unsigned (a mingw build), no
 * version resource (and none missing), nothing named unavailable. */
static void check_identity_fields(json_t *ev) {
  CHECK_STR(tw_str(ev, "process.hash.sha256"), g_sha);
  CHECK_INT(tw_int(ev, "process.image_size"), g_size);
  CHECK(tw_get(ev, "process.code_signature.exists") == json_false());
  CHECK_STR(tw_str(ev, "process.code_signature.status"), "unsigned");
  CHECK(tw_get(ev, "process.code_signature.trusted") == json_false());
  CHECK(tw_get(ev, "process.pe") == NULL);
  CHECK(tw_get(ev, "process.unavailable.hash") == NULL);
  CHECK(tw_get(ev, "process.unavailable.pe") == NULL);
  CHECK(tw_get(ev, "process.unavailable.code_signature") == NULL);
  CHECK(tw_get(ev, "process.unavailable.image_size") == NULL);
}

/* The escape's executable identity: exactly once among its job_escape
 * violation and its process_updates (rule escaped_process, after the
 * violation, before job_end); in the update when must_update (a file no
 * cache holds). Its exit, when it carries a hash, carries the same. */
static void check_escape_identity(json_t *evs, DWORD child, int must_update) {
  json_t *ev, *found = NULL;
  size_t i;
  long long esc_seq = -1, end_seq = -1;
  int times = 0, in_update = 0;
  json_array_foreach(evs, i, ev) {
    const char *kind = tw_str(ev, "event"), *rule = tw_str(ev, "rule");
    if (kind != NULL && strcmp(kind, "sandbox.job_end") == 0)
      end_seq = tw_int(ev, "seq");
    if (kind == NULL || rule == NULL || tw_int(ev, "process.pid") != (long long)child)
      continue;
    if (strcmp(kind, "sandbox.violation") == 0 && strcmp(rule, "job_escape") == 0) {
      esc_seq = tw_int(ev, "seq");
      if (tw_get(ev, "process.hash") != NULL) {
        times++;
        found = ev;
      }
    } else if (strcmp(kind, "sandbox.process_update") == 0) {
      CHECK_STR(rule, "escaped_process");
      CHECK_STR(tw_str(ev, "action"), "observed");
      CHECK_STR(tw_str(ev, "severity"), "info");
      CHECK_STR(tw_str(ev, "source"), "jobwarden");
      CHECK(esc_seq > 0 && tw_int(ev, "seq") > esc_seq);
      times++;
      in_update = 1;
      found = ev;
    } else if (strcmp(kind, "sandbox.process_exit") == 0 && tw_get(ev, "process.hash") != NULL) {
      CHECK_STR(tw_str(ev, "process.hash.sha256"), g_sha);
    }
  }
  CHECK_INT(times, 1);
  if (must_update)
    CHECK_INT(in_update, 1);
  if (found != NULL) {
    check_identity_fields(found);
    CHECK(end_seq > 0 && tw_int(found, "seq") < end_seq);
  }
}

/* What spoof-parent says of its way in: the first OpenProcess's error and
 * the DACL rewrite's (-1: not tried), from the pid file's tail. */
static void check_way_in(const char *pidfile, long open_err, long rewrite_err) {
  char *s = tw_read_file(pidfile, NULL);
  unsigned long a = 0, b = 0;
  long o = -2, w = -2;
  CHECK(s != NULL);
  if (s == NULL)
    return;
  CHECK_INT(sscanf(s, "%lu %lu open=%ld rewrite=%ld", &a, &b, &o, &w), 4);
  CHECK_INT(o, open_err);
  CHECK_INT(w, rewrite_err);
  free(s);
}

/* The exit event of an escape jobwarden terminated. */
static void check_escape_exit(json_t *evs, DWORD child, const char *phrase) {
  json_t *ev = tw_only_for(evs, "sandbox.process_exit", "escaped_process", child);
  if (ev == NULL)
    return;
  CHECK_STR(tw_str(ev, "action"), "terminated");
  CHECK_INT(tw_int(ev, "process.exit_code"), (long long)KILLED);
  CHECK_CONTAINS(tw_str(ev, "message"), phrase);
}

/* ------------------------------------------------------------------------ */
/* With the rig: this process plays jobwarden                               */
/* ------------------------------------------------------------------------ */

typedef struct rig_case_s {
  const char *tag;
  jw_policy_t policy;
  const char *image;   /* "image=EXE" for spoof-parent, or NULL: this executable */
  const char *then;    /* spoof-parent's THEN */
  const char *who;     /* NULL: this process */
  json_t *evs;         /* after the run */
  DWORD parent, child; /* from the pid file */
  HANDLE h_child;      /* opened at once */
  DWORD root_code;
  /* Called once the escape exists (its pids read), before the root is
   * waited for; NULL: nothing. */
  void (*during)(rig_t *r, struct rig_case_s *c);
  jw_monitor_stats_t stats; /* the monitor's, after the run */
} rig_case_t;

static void rig_case(rig_case_t *c, const char *mode, const char *mode_arg) {
  rig_t r;
  char pidfile[TW_PATH_CHARS], me[32];
  const char *args[9];
  int n = 0;
  fresh_path(pidfile, sizeof(pidfile), c->tag, ".pids");
  snprintf(me, sizeof(me), "%lu", (unsigned long)GetCurrentProcessId());
  args[n++] = "spoof-parent";
  args[n++] = c->who ? c->who : me;
  args[n++] = pidfile;
  args[n++] = c->then;
  if (c->image != NULL)
    args[n++] = c->image;
  args[n++] = mode;
  args[n++] = mode_arg;
  c->evs = NULL;
  c->h_child = NULL;
  if (rig_start(&r, g_dir, c->tag, &c->policy, args, n) != 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, WAIT_MS, &c->parent, &c->child), 0);
  /* This process plays jobwarden and does not protect itself: the open
   * works at once, no DACL rewrite. */
  check_way_in(pidfile, 0, -1);
  c->h_child = c->child
                   ? OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, c->child)
                   : NULL;
  if (c->during != NULL)
    c->during(&r, c);
  c->root_code = (DWORD)-1;
  if (WaitForSingleObject(r.child.process, WAIT_MS) == WAIT_OBJECT_0)
    tw_exit_code(r.child.process, &c->root_code);
  c->evs = rig_finish(&r);
  c->stats = r.stats;
  CHECK(c->evs != NULL);
  if (c->evs == NULL)
    c->evs = json_array();
}

static void rig_case_free(rig_case_t *c) {
  if (c->h_child != NULL) {
    TerminateProcess(c->h_child, 1); /* a failed case must not leave it */
    CloseHandle(c->h_child);
  }
  json_decref(c->evs);
}

/* The port loses every NEW_PROCESS (there is only the root's, a repeat of
 * what jobwarden announced itself): nothing but the timer can find the
 * escape. */
static int drop_new_process(DWORD msg, ULONG_PTR value) {
  (void)value;
  return msg == JOB_OBJECT_MSG_NEW_PROCESS;
}

/* The port loses the first NEW_PROCESS only: the root's (it is the first
 * member), a repeat of what jobwarden announced itself, which might
 * otherwise come late enough to find the escape first. */
static volatile LONG g_new_seen;
static int drop_first_new_process(DWORD msg, ULONG_PTR value) {
  (void)value;
  return msg == JOB_OBJECT_MSG_NEW_PROCESS && InterlockedIncrement(&g_new_seen) == 1;
}

/* Hardened: the timed scan finds it and kill_process ends it. */
static void test_rig_scan(void) {
  rig_case_t c;
  DWORD code;
  char copy[TW_PATH_CHARS], image[TW_PATH_CHARS + 8];
  json_t *esc;
  /* A fresh copy: a file the identity service has never seen. */
  fresh_path(copy, sizeof(copy), "rig-scan-copy", ".exe");
  CHECK(CopyFileA(g_me, copy, FALSE));
  snprintf(image, sizeof(image), "image=%s", copy);
  jw__monitor_drop_hook(drop_new_process);
  memset(&c, 0, sizeof(c));
  c.tag = "escape-rig-scan";
  c.then = "wait";
  c.image = image;
  jw_policy_init(&c.policy);
  jw_policy_set(&c.policy, "tier", "hardened", "test", NULL);
  rig_case(&c, "sleep", "30000");
  jw__monitor_drop_hook(NULL);
  CHECK_INT(c.parent, GetCurrentProcessId());
  esc = tw_only_for(c.evs, "sandbox.violation", "job_escape", c.child);
  check_escape_event(esc, c.child, GetCurrentProcessId(), "jobwarden", "scan", "terminated",
                     "kill_process", "--helper sleep 30000", copy);
  /* The violation did not wait for the hash: the update brings it. */
  if (esc != NULL)
    CHECK(tw_get(esc, "process.hash") == NULL);
  check_escape_identity(c.evs, c.child, 1);
  CHECK_INT(tw_count(c.evs, "sandbox.violation", "job_escape"), 1);
  check_escape_exit(c.evs, c.child, "monitor rule job_escape, kill_process");
  CHECK(ended_with(c.h_child, &code));
  CHECK_U64(code, KILLED);
  CHECK_INT(c.root_code, 58); /* the root saw its escape terminated */
  /* Never a member: no child_process event for it. */
  CHECK_INT(index_of(c.evs, "sandbox.process_start", "child_process", c.child), -1);
  /* The escape's exit comes before the job's end. */
  CHECK(index_of(c.evs, "sandbox.process_exit", "escaped_process", c.child) <
        index_of(c.evs, "sandbox.job_end", NULL, -1));
  rig_case_free(&c);
  DeleteFileA(copy);
}

/* No timed scan; the next job message (a member's NEW_PROCESS) finds it. */
static void test_rig_kick(void) {
  rig_case_t c;
  DWORD code;
  memset(&c, 0, sizeof(c));
  c.tag = "escape-rig-kick";
  c.then = "kick";
  jw_policy_init(&c.policy);
  jw_policy_set(&c.policy, "escape_action", "kill_process", "test", NULL);
  g_new_seen = 0;
  jw__monitor_drop_hook(drop_first_new_process);
  rig_case(&c, "sleep", "30000");
  jw__monitor_drop_hook(NULL);
  check_escape_event(tw_only_for(c.evs, "sandbox.violation", "job_escape", c.child), c.child,
                     GetCurrentProcessId(), "jobwarden", "new_process", "terminated",
                     "kill_process", "--helper sleep 30000", g_me);
  check_escape_identity(c.evs, c.child, 0);
  CHECK(ended_with(c.h_child, &code));
  CHECK_U64(code, KILLED);
  CHECK_INT(c.root_code, 58);
  rig_case_free(&c);
}

/* One job message (ACTIVE_PROCESS_LIMIT, as the kernel posts it for a
 * member at its limit) on the job's real port once the escape exists. */
static void post_one_message(rig_t *r, rig_case_t *c) {
  (void)c;
  CHECK(PostQueuedCompletionStatus(r->job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r->job.key_job,
                                   NULL));
}

/* The escape exists, no timed scan, its root's NEW_PROCESS is lost: only
 * the scan one job message causes can find it. never_quiet: the monitor
 * sees its port as never quiet (injected). */
static void port_scan_case(rig_case_t *c, const char *tag, int never_quiet) {
  memset(c, 0, sizeof(*c));
  c->tag = tag;
  c->then = "wait";
  c->during = post_one_message;
  jw_policy_init(&c->policy);
  jw_policy_set(&c->policy, "escape_action", "kill_process", "test", NULL);
  jw_policy_set(&c->policy, "active_processes", "8", "test", NULL);
  jw__monitor_drop_hook(drop_new_process);
  jw__monitor_escape_never_quiet(never_quiet);
  rig_case(c, "sleep", "30000");
  jw__monitor_escape_never_quiet(0);
  jw__monitor_drop_hook(NULL);
}

/* The escape of a port_scan_case found by the port's scan and killed: its
 * job_escape event (NULL: checked). */
static json_t *check_port_kill(rig_case_t *c) {
  DWORD code;
  json_t *ev = tw_only_for(c->evs, "sandbox.violation", "job_escape", c->child);
  check_escape_event(ev, c->child, GetCurrentProcessId(), "jobwarden", "port", "terminated",
                     "kill_process", "--helper sleep 30000", g_me);
  CHECK(ended_with(c->h_child, &code));
  CHECK_U64(code, KILLED);
  return ev;
}

/* Real: the message's scan waits for the port to be quiet (3 ms), then
 * finds the escape and kills it; it did not need the bound. */
static void test_rig_quiet_scan(void) {
  rig_case_t c;
  port_scan_case(&c, "escape-rig-quiet-scan", 0);
  check_port_kill(&c);
  CHECK(c.stats.escape_scans_after_quiet >= 1);
  CHECK_INT(c.stats.escape_scans_at_bound, 0);
  rig_case_free(&c);
}

/* The attack on the quiet rule, injected: a program that keeps the port
 * busy so that a due scan waits for a quiet moment that never comes. The
 * bound has the scan run 50 ms after it came due: the escape is found and
 * killed all the same, 50 ms or more after its start. */
static void test_rig_busy_port(void) {
  rig_case_t c;
  json_t *ev;
  port_scan_case(&c, "escape-rig-busy-port", 1);
  ev = check_port_kill(&c);
  if (ev != NULL) /* 1 ms less: the monitor's clock counts whole milliseconds */
    CHECK(tw_int(ev, "escape.detected_after_ms") >= JW__SCAN_QUIET_MAX_MS - 1);
  CHECK(c.stats.escape_scans_at_bound >= 1);
  CHECK_INT(c.stats.escape_scans_after_quiet, 0);
  rig_case_free(&c);
}

/* The quiet rule on its own (injected times, milliseconds). */
static void test_scan_wait(void) {
  static const struct {
    uint64_t message, due, now, left;
    int at_bound;
  } rows[] = {
      /* A port quiet for long: the scan runs when due. */
      {100, 1000, 1000, 0, 0},
      {100, 1000, 990, 10, 0},
      /* A message 1 ms before it came due: it waits for 3 ms of quiet. */
      {999, 1000, 1000, 2, 0},
      {999, 1000, 1002, 0, 0},
      /* The port busy every millisecond: no quiet; it runs at the bound. */
      {1049, 1000, 1049, 1, 1},
      {1050, 1000, 1050, 0, 1},
      {5000, 1000, 5000, 0, 1},
      /* Quiet comes just before the bound: no bound. */
      {1046, 1000, 1049, 0, 0},
      /* Times at the end of the clock do not wrap. */
      {5, UINT64_MAX, 10, UINT64_MAX - 10, 0},
      {UINT64_MAX - 1, 0, 10, JW__SCAN_QUIET_MAX_MS - 10, 1},
  };
  size_t i;
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    int b = -1;
    CHECK_U64(jw__escape_scan_wait(rows[i].message, rows[i].due, rows[i].now, &b), rows[i].left);
    CHECK_INT(b, rows[i].at_bound);
  }
}

/* Tier none: reported only, the root leaves at once; found at the job's
 * end (or by the scan the root's exit message causes, when the job's end
 * comes in a later batch) and terminated when the job ends. */
static void test_rig_report(void) {
  rig_case_t c;
  DWORD code;
  long esc, ex, end;
  memset(&c, 0, sizeof(c));
  c.tag = "escape-rig-report";
  c.then = "exit";
  jw_policy_init(&c.policy);
  rig_case(&c, "sleep", "30000");
  check_escape_event(tw_only_for(c.evs, "sandbox.violation", "job_escape", c.child), c.child,
                     GetCurrentProcessId(), "jobwarden", "job_end|port", "reported", "report",
                     "--helper sleep 30000", g_me);
  check_escape_identity(c.evs, c.child, 0);
  check_escape_exit(c.evs, c.child, "still running when the job ended");
  CHECK(ended_with(c.h_child, &code));
  CHECK_U64(code, KILLED);
  CHECK_INT(c.root_code, 0);
  esc = index_of(c.evs, "sandbox.violation", "job_escape", c.child);
  ex = index_of(c.evs, "sandbox.process_exit", "escaped_process", c.child);
  end = index_of(c.evs, "sandbox.job_end", NULL, -1);
  CHECK(esc >= 0 && esc < ex && ex < end);
  CHECK_INT(end, (long)json_array_size(c.evs) - 1);
  rig_case_free(&c);
}

/* kill_job: the job and the escape (which the job's end does not reach). */
static void test_rig_kill_job(void) {
  rig_case_t c;
  DWORD code;
  json_t *end;
  jw__monitor_drop_hook(drop_new_process);
  memset(&c, 0, sizeof(c));
  c.tag = "escape-rig-kill-job";
  c.then = "wait";
  jw_policy_init(&c.policy);
  jw_policy_set(&c.policy, "tier", "hardened", "test", NULL);
  jw_policy_set(&c.policy, "escape_action", "kill_job", "test", NULL);
  rig_case(&c, "sleep", "30000");
  jw__monitor_drop_hook(NULL);
  check_escape_event(tw_only_for(c.evs, "sandbox.violation", "job_escape", c.child), c.child,
                     GetCurrentProcessId(), "jobwarden", "scan", "killed_job", "kill_job",
                     "--helper sleep 30000", g_me);
  check_escape_identity(c.evs, c.child, 0);
  check_escape_exit(c.evs, c.child, "monitor rule job_escape, kill_job");
  CHECK(ended_with(c.h_child, &code));
  CHECK_U64(code, KILLED);
  CHECK_U64(c.root_code, KILLED); /* the root died with the job */
  end = json_array_get(c.evs, json_array_size(c.evs) - 1);
  CHECK_STR(tw_str(end, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(end, "action"), "killed_job");
  CHECK_STR(tw_str(end, "summary.terminated_by_jobwarden"), "monitor rule job_escape (kill_job)");
  rig_case_free(&c);
}

/* A member's own child outside the job (a breakaway the policy allows):
 * its parent is a member, so it is an escape too, with the member in its
 * ancestry. */
static void test_rig_breakaway(void) {
  rig_t r;
  jw_policy_t p;
  char pidfile[TW_PATH_CHARS];
  const char *args[] = {"breakaway-child", NULL, "sleep", "30000"};
  DWORD root = 0, child = 0, code, root_code = 0;
  HANDLE h = NULL;
  json_t *evs, *ev;
  fresh_path(pidfile, sizeof(pidfile), "escape-rig-breakaway", ".pids");
  args[1] = pidfile;
  jw_policy_init(&p);
  jw_policy_set(&p, "tier", "hardened", "test", NULL);
  jw_policy_set(&p, "allow_breakaway", "true", "test", NULL);
  if (rig_start(&r, g_dir, "escape-rig-breakaway", &p, args, 4) != 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, WAIT_MS, &root, &child), 0);
  CHECK_INT(root, r.child.pid);
  if (child != 0)
    h = open_escape(child);
  if (WaitForSingleObject(r.child.process, WAIT_MS) == WAIT_OBJECT_0)
    tw_exit_code(r.child.process, &root_code);
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs != NULL) {
    ev = tw_only_for(evs, "sandbox.violation", "job_escape", child);
    check_escape_event(ev, child, root, "member", "scan|port|new_process", "terminated",
                       "kill_process", "--helper sleep 30000", g_me);
    check_escape_identity(evs, child, 0);
    if (ev != NULL) {
      json_t *first = json_array_get(tw_get(ev, "process.ancestry"), 0);
      CHECK_INT(tw_int(first, "pid"), root);
    }
  }
  CHECK(ended_with(h, &code));
  CHECK_U64(code, KILLED);
  CHECK_INT(root_code, 58);
  if (h != NULL)
    CloseHandle(h);
  json_decref(evs);
}

/* The named parent is a member: the child takes the member's job, this
 * one. Not an escape. */
static void test_rig_member(void) {
  rig_case_t c;
  json_t *ev;
  DWORD code;
  memset(&c, 0, sizeof(c));
  c.tag = "escape-rig-member";
  c.then = "wait";
  c.who = "member";
  jw_policy_init(&c.policy);
  jw_policy_set(&c.policy, "tier", "hardened", "test", NULL);
  rig_case(&c, "exit", "7");
  CHECK(c.parent != 0 && c.parent != GetCurrentProcessId());
  CHECK_INT(tw_count(c.evs, "sandbox.violation", "job_escape"), 0);
  CHECK_INT(tw_count(c.evs, "sandbox.process_exit", "escaped_process"), 0);
  ev = tw_only_for(c.evs, "sandbox.process_start", "child_process", c.child);
  if (ev != NULL)
    CHECK_INT(tw_int(ev, "process.parent.pid"), c.parent);
  CHECK(ended_with(c.h_child, &code));
  CHECK_U64(code, 7);
  CHECK_INT(c.root_code, 7);
  rig_case_free(&c);
}

/* ------------------------------------------------------------------------ */
/* The real jobwarden.exe                                                   */
/* ------------------------------------------------------------------------ */

typedef tw_run_t cli_t;

/* Starts `jobwarden.exe ARGS` with stdout/stderr to <dir>\wine-escape-TAG.*
 * (created anew); log is its event file. */
static int cli_start(cli_t *r, const char *tag, const char *args, const char *log) {
  return tw_jw_start(
      &(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = WAIT_MS}, r);
}

/* Waits for it (killed after WAIT_MS); the exit code is (DWORD)-1 unless it
 * exited by itself in time. Its output is not looked at (the kit prints it
 * when the case fails). Returns its events (a new reference), NULL when
 * the log is unreadable or does not parse. */
static json_t *cli_finish(cli_t *r) {
  json_t *evs;
  if (!tw_jw_wait(r))
    r->exit_code = (DWORD)-1;
  evs = json_incref(r->events);
  tw_jw_free(r);
  return evs;
}

/* `jobwarden run OPTS -- self --helper spoof-parent parent-dacl PIDFILE
 * THEN sleep 30000`: the escape's parent is jobwarden.exe itself, reached
 * the way Wine lets a member in (its DACL rewritten first). */
/* detected_by "scan|port": either (the root's own NEW_PROCESS, which Wine
 * posts when the root starts running, can come after the escape exists). */
static void cli_case(const char *tag, const char *opts, const char *then, const char *action,
                     const char *configured, const char *detected_by, const char *phrase,
                     DWORD jw_code) {
  cli_t r;
  char log[TW_PATH_CHARS], pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  DWORD parent = 0, child = 0, code;
  HANDLE h = NULL;
  json_t *evs;
  fresh_path(log, sizeof(log), tag, ".jsonl");
  fresh_path(pidfile, sizeof(pidfile), tag, ".pids");
  snprintf(
      args, sizeof(args),
      "run %s --name %s --export file:%s -- \"%s\" --helper spoof-parent parent-dacl %s %s sleep "
      "30000",
      opts, tag, log, g_me, pidfile, then);
  if (cli_start(&r, tag, args, log) != 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, WAIT_MS, &parent, &child), 0);
  if (child != 0)
    h = open_escape(child);
  CHECK_INT(parent, r.pi.dwProcessId); /* the helper named jobwarden.exe */
  /* jobwarden's own DACL refused the plain open; the rewrite let it in. */
  check_way_in(pidfile, ERROR_ACCESS_DENIED, 0);
  evs = cli_finish(&r);
  CHECK(r.finished);
  CHECK_U64(r.exit_code, jw_code);
  CHECK(evs != NULL);
  if (evs != NULL) {
    check_escape_event(tw_only_for(evs, "sandbox.violation", "job_escape", child), child,
                       r.pi.dwProcessId, "jobwarden", detected_by, action, configured,
                       "--helper sleep 30000", g_me);
    check_escape_identity(evs, child, 0);
    CHECK_INT(tw_count(evs, "sandbox.violation", "job_escape"), 1);
    check_escape_exit(evs, child, phrase);
    CHECK_INT(index_of(evs, "sandbox.job_end", NULL, -1), (long)json_array_size(evs) - 1);
  }
  /* No process of the run outlives it. */
  CHECK(ended_with(h, &code));
  CHECK_U64(code, KILLED);
  if (h != NULL) {
    TerminateProcess(h, 1);
    CloseHandle(h);
  }
  json_decref(evs);
}

static void test_cli_kill(void) {
  cli_case("escape-cli-kill", "--tier hardened", "wait", "terminated", "kill_process", "scan|port",
           "monitor rule job_escape, kill_process", 58);
}

/* Without the DACL rewrite: jobwarden's protected process refuses the
 * member PROCESS_CREATE_PROCESS (5), the helper starts nothing (exit 82,
 * which is jobwarden's exit status: the root's), and the record holds no
 * escape and no process but the root. */
static void test_cli_refused(void) {
  cli_t r;
  char log[TW_PATH_CHARS], pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  DWORD parent = 0, child = 1;
  json_t *evs;
  fresh_path(log, sizeof(log), "escape-cli-refused", ".jsonl");
  fresh_path(pidfile, sizeof(pidfile), "escape-cli-refused", ".pids");
  snprintf(args, sizeof(args),
           "run --tier hardened --name escape-cli-refused --export file:%s -- \"%s\" --helper "
           "spoof-parent parent %s wait sleep 30000",
           log, g_me, pidfile);
  if (cli_start(&r, "escape-cli-refused", args, log) != 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, WAIT_MS, &parent, &child), 0);
  CHECK_INT(parent, r.pi.dwProcessId);
  CHECK_INT(child, 0); /* nothing was started */
  check_way_in(pidfile, ERROR_ACCESS_DENIED, -1);
  evs = cli_finish(&r);
  CHECK(r.finished);
  CHECK_U64(r.exit_code, 82); /* spoof-parent: OpenProcess refused */
  CHECK(evs != NULL);
  if (evs != NULL) {
    CHECK_INT(tw_count(evs, "sandbox.violation", "job_escape"), 0);
    CHECK_INT(tw_count(evs, "sandbox.process_exit", "escaped_process"), 0);
    CHECK_INT(tw_count(evs, "sandbox.process_start", "child_process"), 0);
    CHECK_INT(index_of(evs, "sandbox.job_end", NULL, -1), (long)json_array_size(evs) - 1);
    CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.processes"), 1);
  }
  json_decref(evs);
}

static void test_cli_report(void) {
  cli_case("escape-cli-report", "--tier none", "exit", "reported", "report", "job_end|port",
           "still running when the job ended", 0);
}

/* An escape runs `jobwarden ps NAME` and `jobwarden kill NAME` against its
 * own run: both refused (from_escape) and recorded; the run goes on and
 * ends as its root does. Hardened with escape_action report: the escape
 * is seen (the timed scan) and left alive so that it can try. */
static void test_cli_control(void) {
  cli_t r;
  char log[TW_PATH_CHARS], pidfile[TW_PATH_CHARS], out[TW_PATH_CHARS], args[TW_CMD_CHARS];
  char name[64];
  DWORD parent = 0, child = 0, ps = 0, kill = 0;
  json_t *evs, *f, *ev;
  size_t i;
  int saw_ps = 0, saw_kill = 0;
  fresh_path(log, sizeof(log), "escape-cli-control", ".jsonl");
  fresh_path(pidfile, sizeof(pidfile), "escape-cli-control", ".pids");
  fresh_path(out, sizeof(out), "escape-cli-control", ".codes");
  snprintf(name, sizeof(name), "jwt-escape-%lu", (unsigned long)GetCurrentProcessId());
  snprintf(args, sizeof(args),
           "run --tier hardened --escape-action report --name escape-cli-control --control %s "
           "--export file:%s -- \"%s\" --helper spoof-parent parent-dacl %s wait jw-control %s %s "
           "%s",
           name, log, g_me, pidfile, out, g_jw, name);
  if (cli_start(&r, "escape-cli-control", args, log) != 0) {
    CHECK(0);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, WAIT_MS, &parent, &child), 0);
  CHECK_INT(parent, r.pi.dwProcessId);
  check_way_in(pidfile, ERROR_ACCESS_DENIED, 0);
  CHECK_INT(tw_read_pids(out, WAIT_MS, &ps, &kill), 0);
  CHECK_INT(ps, JW_EXIT_CONTROL_REFUSED);
  CHECK_INT(kill, JW_EXIT_CONTROL_REFUSED);
  evs = cli_finish(&r);
  CHECK(r.finished);
  CHECK_U64(r.exit_code, 0); /* the root's own code: the escape ended by itself */
  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  f = tw_filter(evs, "sandbox.notice", "member_control");
  CHECK_INT(json_array_size(f), 2);
  json_array_foreach(f, i, ev) {
    const char *op = tw_str(ev, "control.op");
    CHECK_STR(tw_str(ev, "action"), "blocked");
    CHECK_STR(tw_str(ev, "severity"), "high");
    CHECK_STR(tw_str(ev, "control.result"), "refused");
    CHECK_STR(tw_str(ev, "control.reason"), "from_escape");
    CHECK_CONTAINS(tw_str(ev, "message"), "escaped the job");
    saw_ps += op != NULL && strcmp(op, "ps") == 0;
    saw_kill += op != NULL && strcmp(op, "kill") == 0;
  }
  json_decref(f);
  CHECK_INT(saw_ps, 1);
  CHECK_INT(saw_kill, 1);
  /* The escape itself lives about as long as its two requests (~150 ms
   * under Wine), less than the scan interval: whether a scan saw it
   * depends on timing (the other cases prove detection). When one did, it
   * is reported once, left to run (report), with jobwarden as parent. */
  f = tw_filter(evs, "sandbox.violation", "job_escape");
  json_array_foreach(f, i, ev) {
    if (tw_int(ev, "process.pid") != (long long)child)
      continue;
    CHECK_STR(tw_str(ev, "action"), "reported");
    CHECK_INT(tw_int(ev, "process.parent.pid"), r.pi.dwProcessId);
  }
  json_decref(f);
  /* The run was not killed. */
  ev = json_array_get(evs, json_array_size(evs) - 1);
  CHECK_STR(tw_str(ev, "event"), "sandbox.job_end");
  CHECK_STR(tw_str(ev, "action"), "observed");
  CHECK(tw_get(ev, "summary.terminated_by_jobwarden") == json_null());
  json_decref(evs);
}

/* The parent-life test on its own: a pid alone names nobody. */
static void test_born_of(void) {
  const uint64_t p = 1000, end = 2000;
  CHECK_INT(jw__escape_born_of(p, 0, 1500), 1);   /* parent still running */
  CHECK_INT(jw__escape_born_of(p, end, 1500), 1); /* within its life */
  CHECK_INT(jw__escape_born_of(p, end, p), 1);    /* same instant */
  CHECK_INT(jw__escape_born_of(p, 0, 999), 0);    /* older than the parent */
  CHECK_INT(jw__escape_born_of(p, end, 2001), 0); /* after the parent ended: reused pid */
  CHECK_INT(jw__escape_born_of(0, 0, 1500), 0);   /* unknown parent creation */
  CHECK_INT(jw__escape_born_of(p, 0, 0), 0);      /* unknown child creation */
}

/* Runnable one by one: `win_escape.exe DATA EVENTS JOBWARDEN SHA SIZE --case rig_kick`. */
static const jw_test_case_t cases[] = {
    {"born_of", test_born_of, 60},
    {"rig_scan", test_rig_scan, 60},
    {"rig_kick", test_rig_kick, 60},
    {"rig_report", test_rig_report, 60},
    {"rig_kill_job", test_rig_kill_job, 60},
    {"rig_breakaway", test_rig_breakaway, 60},
    {"rig_member", test_rig_member, 60},
    {"cli_refused", test_cli_refused, 60},
    {"cli_kill", test_cli_kill, 60},
    {"cli_report", test_cli_report, 60},
    {"cli_control", test_cli_control, 60},
    {"scan_wait", test_scan_wait, 60},
    {"rig_quiet_scan", test_rig_quiet_scan, 60},
    {"rig_busy_port", test_rig_busy_port, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc < 6 || tw_test_args(argc, argv, g_dir, g_jw, g_me) != 0 || strlen(argv[4]) != 64) {
    fprintf(stderr, "usage: win_escape DATA EVENTS JOBWARDEN.EXE SELF_SHA256 SELF_SIZE\n");
    return 1;
  }
  g_sha = argv[4];
  g_size = atoll(argv[5]);
  tw_kit_set(g_jw, g_dir, "wine-escape-");
  return TW_RUN_CASES("escape_real", argc, argv, cases);
}

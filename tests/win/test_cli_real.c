/* wine.real.cli: the real jobwarden.exe, started as a child process the way
 * a user (or a CI script) starts it, with its standard output and error
 * redirected to files. Every case asserts exact outcomes: jobwarden's exit
 * status (all 32 bits), its messages, and the JSON Lines it wrote.
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. The
 * sandboxed program is this executable again, in a helper mode (helpers.h).
 * Each run writes its events to <events dir>/wine-cli-<case>.jsonl and its
 * stdout / stderr to wine-cli-<case>.stdout / .stderr next to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <jansson.h>

#include "harness.h"
#include "jobwarden.h"
#include "helpers.h"
#include "checks.h"

#define RUN_TIMEOUT_MS   30000
#define KILL_DEADLINE_MS 3000

static char g_self[TW_PATH_CHARS];   /* this executable (Windows path) */
static char g_jw[TW_PATH_CHARS];     /* jobwarden.exe (Windows path) */
static char g_events[TW_PATH_CHARS]; /* the events directory (Windows path) */
static char g_data[TW_PATH_CHARS];   /* tests/data (Windows path) */

/* ------------------------------------------------------------------------ */
/* Paths                                                                    */
/* ------------------------------------------------------------------------ */

/* <events dir>\<name> */
static void ev_path(char *buf, size_t n, const char *name) {
  snprintf(buf, n, "%s\\%s", g_events, name);
}

/* <events dir>\wine-cli-<tag><suffix> */
static void case_path(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_events, "wine-cli-", tag, suffix);
}

static int file_exists(const char *path) {
  return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (f == NULL)
    return -1;
  fputs(text, f);
  return fclose(f) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* Running jobwarden.exe                                                    */
/* ------------------------------------------------------------------------ */

/* Runs jobwarden to completion; a run that does not finish in time fails.
 * log (or NULL): its event file, read into r->events (tw_check_events). */
static void run_jobwarden(tw_run_t *r, const char *tag, const char *args, const char *log) {
  tw_jw_run(
      &(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = RUN_TIMEOUT_MS},
      r);
  CHECK(r->started);
  CHECK(r->finished);
}

/* The first line of a text, without its line end (static buffer). */
static const char *first_line(const char *s) {
  static char line[1024];
  size_t n = strcspn(s, "\r\n");
  if (n >= sizeof(line))
    n = sizeof(line) - 1;
  memcpy(line, s, n);
  line[n] = '\0';
  return line;
}

static int count_occurrences(const char *hay, const char *needle) {
  int n = 0;
  size_t len = strlen(needle);
  const char *p = hay;
  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += len;
  }
  return n;
}

/* ------------------------------------------------------------------------ */
/* Event logs                                                               */
/* ------------------------------------------------------------------------ */

/* 1 true, 0 false, -1 absent or not a boolean. */
static int jbool(json_t *ev, const char *path) {
  json_t *v = tw_get(ev, path);
  return json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
}

/* "job_start,process_start,..." (event names without "sandbox."), without
 * the identity updates: whether a process's identity comes before or after
 * its exit depends on how fast it exits (check_envelope checks them). */
static void names_of(json_t *evs, char *buf, size_t size) {
  size_t i, used = 0;
  json_t *ev;
  buf[0] = '\0';
  json_array_foreach(evs, i, ev) {
    const char *e = tw_str(ev, "event");
    if (e != NULL && strcmp(e, "sandbox.process_update") == 0)
      continue;
    if (e == NULL)
      e = "?";
    if (strncmp(e, "sandbox.", 8) == 0)
      e += 8;
    used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "", e);
    if (used >= size)
      break;
  }
}

/* The only event matching (event, rule), or NULL; *count how many match. */
static json_t *find_only(json_t *evs, const char *event, const char *rule, size_t *count) {
  json_t *f = tw_filter(evs, event, rule), *ev;
  *count = json_array_size(f);
  ev = *count == 1 ? json_array_get(f, 0) : NULL; /* still held by evs */
  json_decref(f);
  return ev;
}

/* The envelope of a whole log: seq 1..k without gaps, one run_id, the tier
 * on every line, job_start first and (when the run ended) job_end last. */
/* The context of schema 2.0.0, the same in every event of the run: the
 * host's MachineGuid as the registry of this Wine prefix holds it, the
 * OS as RtlGetVersion says with Wine's own version, this jobwarden, and
 * the user running it (a SID that resolves). */
static void check_context(json_t *evs) {
  json_t *first = json_array_get(evs, 0), *ev;
  size_t i;
  char guid[64] = "";
  HKEY k;
  DWORD size = sizeof(guid);
  if (first == NULL)
    return;
  if (RegOpenKeyExA(HKEY_LOCAL_MACHINE, "SOFTWARE\\Microsoft\\Cryptography", 0,
                    KEY_READ | KEY_WOW64_64KEY, &k) == ERROR_SUCCESS) {
    if (RegQueryValueExA(k, "MachineGuid", NULL, NULL, (BYTE *)guid, &size) != ERROR_SUCCESS)
      guid[0] = '\0';
    RegCloseKey(k);
  }
  CHECK(guid[0] != '\0');
  /* ASCII lowercase by hand: CharLowerA would import user32, and this
   * program also runs inside the jobs (docs/platform-support.md). */
  for (size = 0; guid[size] != '\0'; size++)
    if (guid[size] >= 'A' && guid[size] <= 'Z')
      guid[size] = (char)(guid[size] - 'A' + 'a');
  CHECK_STR(tw_str(first, "host.id"), guid);
  CHECK_STR(tw_str(first, "host.os.name"), "Windows");
  CHECK(tw_str(first, "host.os.version") != NULL && tw_str(first, "host.os.build") != NULL);
  CHECK(tw_str(first, "host.os.wine_version") != NULL); /* this runs under Wine */
  CHECK_STR(tw_str(first, "agent.name"), "jobwarden");
  CHECK_STR(tw_str(first, "agent.version"), JW_VERSION);
  CHECK(tw_str(first, "user.id") != NULL && strncmp(tw_str(first, "user.id"), "S-1-5-", 6) == 0);
  CHECK(tw_str(first, "user.name") != NULL);
  json_array_foreach(evs, i, ev) {
    CHECK(json_equal(tw_get(ev, "host"), tw_get(first, "host")));
    CHECK(json_equal(tw_get(ev, "agent"), tw_get(first, "agent")));
    CHECK(json_equal(tw_get(ev, "user"), tw_get(first, "user")));
    CHECK(tw_str(ev, "emitted") != NULL && tw_str(ev, "@timestamp") != NULL &&
          strcmp(tw_str(ev, "@timestamp"), tw_str(ev, "emitted")) <= 0);
  }
}

static void check_envelope(json_t *evs, const char *tier, int ended) {
  size_t i, n = json_array_size(evs);
  int bad = 0;
  json_t *ev;
  const char *run_id;
  CHECK(n > 0);
  if (n == 0)
    return;
  run_id = tw_str(json_array_get(evs, 0), "run_id");
  CHECK(run_id != NULL && run_id[0] != '\0');
  json_array_foreach(evs, i, ev) {
    const char *rid = tw_str(ev, "run_id"), *t = tw_str(ev, "job.tier");
    if (tw_int(ev, "seq") != (long long)i + 1) {
      fprintf(stderr, "line %zu: seq %lld, expected %zu\n", i + 1, tw_int(ev, "seq"), i + 1);
      bad++;
    }
    if (rid == NULL || run_id == NULL || strcmp(rid, run_id) != 0) {
      fprintf(stderr, "line %zu: run_id %s, expected %s\n", i + 1, rid ? rid : "(none)",
              run_id ? run_id : "(none)");
      bad++;
    }
    if (tier != NULL && (t == NULL || strcmp(t, tier) != 0)) {
      fprintf(stderr, "line %zu: job.tier %s, expected %s\n", i + 1, t ? t : "(none)", tier);
      bad++;
    }
  }
  CHECK_INT(bad, 0);
  check_context(evs);
  /* Every process's identity once: in its start or in one update after it,
   * with the SHA-256 of its image (a run cut short may end before it);
   * none for a process whose image could not be read. */
  json_array_foreach(evs, i, ev) {
    const char *kind = tw_str(ev, "event");
    if (!ended)
      break;
    size_t j, updates = 0;
    json_t *other;
    int in_start;
    if (kind == NULL || strcmp(kind, "sandbox.process_start") != 0)
      continue;
    in_start = tw_str(ev, "process.hash.sha256") != NULL;
    json_array_foreach(evs, j, other) {
      const char *k2 = tw_str(other, "event");
      if (k2 != NULL && strcmp(k2, "sandbox.process_update") == 0 &&
          tw_int(other, "process.pid") == tw_int(ev, "process.pid")) {
        updates++;
        CHECK(j > i && tw_str(other, "process.hash.sha256") != NULL);
      }
    }
    /* A process gone before its image could be read (executable null:
     * seen under load for a short-lived child of `series`) has no file to
     * identify: no identity anywhere. */
    CHECK_INT(in_start + (int)updates, json_is_null(tw_get(ev, "process.executable")) ? 0 : 1);
  }
  CHECK_STR(tw_str(json_array_get(evs, 0), "event"), "sandbox.job_start");
  if (ended)
    CHECK_STR(tw_str(json_array_get(evs, n - 1), "event"), "sandbox.job_end");
}

/* Checks the root's process_start against jobwarden's pid and returns the
 * root pid (0 if absent). */
static DWORD check_root_start(json_t *evs, DWORD jw_pid) {
  size_t n;
  json_t *ev = find_only(evs, "sandbox.process_start", "root_process", &n);
  CHECK_INT(n, 1);
  if (ev == NULL)
    return 0;
  CHECK(tw_int(ev, "process.pid") > 0);
  CHECK_INT(jbool(ev, "process.is_root"), 1);
  CHECK_INT(tw_int(ev, "process.parent.pid"), jw_pid);
  return tw_int(ev, "process.pid") > 0 ? (DWORD)tw_int(ev, "process.pid") : 0;
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */
/* ------------------------------------------------------------------------ */

/* 1. `run` exits with the program's exit code, all 32 bits of it (259,
 *    STILL_ACTIVE's value, too), and the log tells the same story. */
static void case_exit_codes(void) {
  static const DWORD codes[] = {0, 1, 42, 255, 259, 0xC0000409u};
  size_t k;
  for (k = 0; k < sizeof(codes) / sizeof(codes[0]); k++) {
    DWORD code = codes[k];
    int abnormal = code == 0xC0000409u;
    char tag[64], log[TW_PATH_CHARS], args[TW_CMD_CHARS], names[512];
    tw_run_t r;
    json_t *evs, *ev;
    DWORD root;
    size_t n;

    snprintf(tag, sizeof(tag), "exit-%lu", (unsigned long)code);
    case_path(log, sizeof(log), tag, ".jsonl");
    DeleteFileA(log);
    snprintf(args, sizeof(args), "run --export \"file:%s\" -- \"%s\" --helper exit %lu", log,
             g_self, (unsigned long)code);
    run_jobwarden(&r, tag, args, log);
    CHECK_U64(r.exit_code, code);

    evs = tw_check_events(&r);
    names_of(evs, names, sizeof(names));
    CHECK_STR(names, abnormal ? "job_start,process_start,violation,process_exit,job_end"
                              : "job_start,process_start,process_exit,job_end");
    check_envelope(evs, "none", 1);
    root = check_root_start(evs, r.pi.dwProcessId);

    ev = find_only(evs, "sandbox.process_exit", "root_process", &n);
    CHECK_INT(n, 1);
    CHECK_INT(tw_int(ev, "process.pid"), root);
    CHECK_INT(tw_int(ev, "process.exit_code"), code);
    CHECK_INT(jbool(ev, "process.is_root"), 1);

    ev = find_only(evs, "sandbox.job_end", NULL, &n);
    CHECK_INT(n, 1);
    CHECK_INT(tw_int(ev, "summary.root_exit_code"), code);

    if (abnormal) {
      ev = find_only(evs, "sandbox.violation", "abnormal_exit", &n);
      CHECK_INT(n, 1);
      CHECK_INT(tw_int(ev, "process.pid"), root);
      CHECK_INT(tw_int(ev, "process.exit_code"), code);
      CHECK_STR(tw_str(ev, "process.status"), "STATUS_STACK_BUFFER_OVERRUN");
      CHECK_STR(tw_str(ev, "process.exit_code_hex"), "0xC0000409");
    }
    json_decref(evs);
    tw_jw_free(&r);
  }
}

/* 2. A crash under lockdown: the exit code passes through and the log has
 *    the abnormal exit with its status name. */
static void case_crash_lockdown(void) {
  const char *tag = "crash-lockdown";
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS], names[512];
  tw_run_t r;
  json_t *evs, *ev;
  DWORD root;
  size_t n;

  case_path(log, sizeof(log), tag, ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args), "run --tier lockdown --export \"file:%s\" -- \"%s\" --helper crash",
           log, g_self);
  run_jobwarden(&r, tag, args, log);
  CHECK_U64(r.exit_code, 0xC0000005u);

  evs = tw_check_events(&r);
  names_of(evs, names, sizeof(names));
  /* The notice: lockdown's Low-integrity token, which Wine does not
   * apply (token_not_applied, docs/platform-support.md). */
  CHECK_STR(names, "job_start,notice,process_start,violation,process_exit,job_end");
  check_envelope(evs, "lockdown", 1);
  root = check_root_start(evs, r.pi.dwProcessId);

  ev = find_only(evs, "sandbox.violation", "abnormal_exit", &n);
  CHECK_INT(n, 1);
  CHECK_STR(tw_str(ev, "process.status"), "STATUS_ACCESS_VIOLATION");
  CHECK_INT(tw_int(ev, "process.exit_code"), 3221225477LL);
  CHECK_STR(tw_str(ev, "process.exit_code_hex"), "0xC0000005");
  CHECK_INT(jbool(ev, "process.is_root"), 1);
  CHECK_INT(tw_int(ev, "process.pid"), root);
  CHECK_STR(tw_str(ev, "job.tier"), "lockdown");

  ev = find_only(evs, "sandbox.job_end", NULL, &n);
  CHECK_INT(tw_int(ev, "summary.root_exit_code"), 3221225477LL);
  CHECK_INT(tw_int(ev, "summary.abnormal_exits"), 1);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 3. Child + grandchild: under lockdown (active_processes 1) the
 *    grandchild is a not-enforced violation (Wine ignores the limit);
 *    under tier none it is allowed and carries no limit. */
static void case_tree(const char *tier) {
  int lockdown = strcmp(tier, "lockdown") == 0;
  char tag[64], log[TW_PATH_CHARS], pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  json_t *evs, *ev;
  DWORD root = 0, gc = 0, started_root;
  size_t n;

  snprintf(tag, sizeof(tag), "tree-%s", tier);
  case_path(log, sizeof(log), tag, ".jsonl");
  case_path(pidfile, sizeof(pidfile), tag, ".pids");
  DeleteFileA(log);
  DeleteFileA(pidfile);
  snprintf(args, sizeof(args),
           "run --tier %s --export \"file:%s\" -- \"%s\" --helper tree \"%s\" 200", tier, log,
           g_self, pidfile);
  run_jobwarden(&r, tag, args, log);
  CHECK_U64(r.exit_code, 0);
  CHECK_INT(tw_read_pids(pidfile, 0, &root, &gc), 0);
  CHECK(root != 0 && gc != 0 && root != gc);

  evs = tw_check_events(&r);
  check_envelope(evs, tier, 1);
  {
    /* No policy name: "<program>-<host>-<first 8 hex of the run id>". */
    char want[256];
    const char *base = strrchr(g_self, '\\') ? strrchr(g_self, '\\') + 1 : g_self;
    const char *rid = tw_str(json_array_get(evs, 0), "run_id");
    int blen = (int)strlen(base) - 4; /* without ".exe" */
    snprintf(want, sizeof(want), "%.*s-%s-%.8s", blen, base,
             tw_str(json_array_get(evs, 0), "host.name"), rid ? rid : "");
    CHECK_STR(tw_str(json_array_get(evs, 0), "job.name"), want);
  }
  started_root = check_root_start(evs, r.pi.dwProcessId);
  CHECK_INT(started_root, root);

  /* Every process has its start, whatever the tier: the grandchild too. */
  ev = find_only(evs, "sandbox.process_start", "child_process", &n);
  CHECK_INT(n, 1);
  if (ev != NULL && tw_str(ev, "process.executable") == NULL)
    fprintf(stderr,
            "[%s] note: the monitor could not read the grandchild (executable null: "
            "enrich() in src/win/monitor.c gave up), so it has no parent either\n",
            tag);
  CHECK_INT(tw_int(ev, "process.pid"), gc);
  CHECK_INT(tw_int(ev, "process.parent.pid"), root);
  CHECK_INT(jbool(ev, "process.is_root"), 0);
  CHECK_STR(tw_str(ev, "action"), "observed");
  CHECK_STR(tw_str(ev, "severity"), "info");
  CHECK(ev != NULL && json_object_get(ev, "limit") == NULL);
  CHECK(ev != NULL && json_object_get(ev, "enforcer") == NULL);
  {
    /* Violations only for what the policy forbids: under lockdown (one
     * active process) the grandchild is over the limit Wine did not
     * enforce; under none and hardened there is no violation at all. */
    json_t *v = tw_filter(evs, "sandbox.violation", NULL);
    if (lockdown) {
      CHECK_INT(json_array_size(v), 1);
      ev = json_array_get(v, 0);
      CHECK_STR(tw_str(ev, "rule"), "active_processes");
      CHECK_STR(tw_str(ev, "action"), "not_enforced");
      CHECK(ev != NULL && json_object_get(ev, "enforcer") == NULL);
      CHECK_INT(tw_int(ev, "process.pid"), gc);
      CHECK_STR(tw_str(ev, "limit.name"), "active_processes");
      CHECK_INT(tw_int(ev, "limit.configured"), 1);
      CHECK_INT(tw_int(ev, "limit.observed"), 2);
    } else {
      CHECK_INT(json_array_size(v), 0);
    }
    json_decref(v);
  }

  /* Both exits are reported, the grandchild's as a child process. */
  ev = find_only(evs, "sandbox.process_exit", "child_process", &n);
  CHECK_INT(n, 1);
  CHECK_INT(tw_int(ev, "process.pid"), gc);
  CHECK_INT(tw_int(ev, "process.exit_code"), 0);
  ev = find_only(evs, "sandbox.process_exit", "root_process", &n);
  CHECK_INT(n, 1);
  CHECK_INT(tw_int(ev, "process.pid"), root);
  ev = find_only(evs, "sandbox.job_end", NULL, &n);
  CHECK_INT(tw_int(ev, "summary.processes"), 2);
  CHECK_INT(tw_int(ev, "summary.root_exit_code"), 0);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 4. A program that does not exist: 127, a message naming it, and a
 *    spawn_failed notice in the log (which still ends properly). */
static void case_missing_program(const char *tag, const char *program) {
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  json_t *evs, *ev;
  size_t n;

  case_path(log, sizeof(log), tag, ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args), "run --export \"file:%s\" -- %s", log, program);
  run_jobwarden(&r, tag, args, log);
  CHECK_U64(r.exit_code, 127);
  CHECK_CONTAINS(r.err, "program not found");
  CHECK_CONTAINS(r.err, program);

  evs = tw_check_events(&r);
  check_envelope(evs, "none", 1);
  ev = find_only(evs, "sandbox.notice", "spawn_failed", &n);
  CHECK_INT(n, 1);
  CHECK_CONTAINS(tw_str(ev, "message"), "program not found");
  json_decref(ev = tw_filter(evs, "sandbox.process_start", NULL));
  CHECK_INT(json_array_size(ev), 0);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 5. A file that exists but is not a program: 126 "cannot execute". */
static void case_not_executable(void) {
  const char *tag = "not-executable";
  char log[TW_PATH_CHARS], exe[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  json_t *evs;
  size_t n;

  case_path(log, sizeof(log), tag, ".jsonl");
  ev_path(exe, sizeof(exe), "not-an-exe.exe");
  DeleteFileA(log);
  CHECK_INT(write_text(exe, "this is a text file, not a program\r\n"), 0);
  snprintf(args, sizeof(args), "run --export \"file:%s\" -- \"%s\"", log, exe);
  run_jobwarden(&r, tag, args, log);
  CHECK_U64(r.exit_code, 126);
  CHECK_CONTAINS(r.err, "cannot execute");
  CHECK_CONTAINS(r.err, "not-an-exe.exe");

  evs = tw_check_events(&r);
  check_envelope(evs, "none", 1);
  find_only(evs, "sandbox.notice", "spawn_failed", &n);
  CHECK_INT(n, 1);
  json_decref(evs);
  tw_jw_free(&r);
}

/* Runs `run <opts> -- <self> --helper tree MARKER 0`, which must be refused
 * before the program starts: exit_want, the exact first line on stderr (or
 * one containing `contains`), nothing on stdout, no program started (the
 * helper would create MARKER), no default log written. */
static void expect_refused(const char *tag, const char *opts, int exit_want, const char *line_want,
                           const char *contains) {
  char marker[TW_PATH_CHARS], args[TW_CMD_CHARS], deflog[TW_PATH_CHARS];
  tw_run_t r;

  case_path(marker, sizeof(marker), tag, ".marker");
  ev_path(deflog, sizeof(deflog), "jobwarden-events.jsonl");
  DeleteFileA(marker);
  DeleteFileA(deflog);
  snprintf(args, sizeof(args), "run %s -- \"%s\" --helper tree \"%s\" 0", opts, g_self, marker);
  run_jobwarden(&r, tag, args, NULL);
  CHECK_U64(r.exit_code, exit_want);
  if (line_want != NULL)
    CHECK_STR(first_line(r.err), line_want);
  if (contains != NULL)
    CHECK_CONTAINS(first_line(r.err), contains);
  CHECK_INT(r.out_len, 0);
  CHECK(!file_exists(marker));
  CHECK(!file_exists(deflog));
  tw_jw_free(&r);
}

/* The same without a program to run (`run` alone). */
static void expect_refused_plain(const char *tag, const char *args, const char *line_want) {
  tw_run_t r;
  run_jobwarden(&r, tag, args, NULL);
  CHECK_U64(r.exit_code, 125);
  CHECK_STR(first_line(r.err), line_want);
  CHECK_INT(r.out_len, 0);
  tw_jw_free(&r);
}

/* 6. Usage errors. */
static void case_usage(void) {
  expect_refused("usage-bogus", "--bogus", 125,
                 "jobwarden: run: unknown option '--bogus' (see jobwarden --help)", NULL);
  expect_refused_plain("usage-no-command", "run",
                       "jobwarden: run: expected a COMMAND to run (see jobwarden --help)");
  expect_refused("usage-job-memory", "--job-memory abc", 125,
                 "jobwarden: --job-memory: expected a size like \"512M\", got \"abc\"", NULL);
  expect_refused("usage-export", "--export bogus:x", 125,
                 "jobwarden: --export: unknown exporter 'bogus' (expected file:PATH | stdout | "
                 "stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT | "
                 "syslog+tls://HOST:PORT | pipe:NAME | pipe-connect:NAME)",
                 NULL);
}

/* 7. A policy file with a bad value: `run` refuses it (125), check-policy
 *    says why (1); a valid file passes check-policy (0) with JSON out. */
static void case_policy(void) {
  static const char *const bad_text =
      "limits.process_memory: expected a size like \"512M\", got -3";
  char bad[TW_PATH_CHARS], good[TW_PATH_CHARS], args[TW_CMD_CHARS], opts[TW_CMD_CHARS];
  tw_run_t r;
  json_t *j;
  json_error_t jerr;

  snprintf(bad, sizeof(bad), "%s\\cli\\bad-process-memory.json", g_data);
  snprintf(good, sizeof(good), "%s\\policy\\lockdown.json", g_data);
  CHECK(file_exists(bad));
  CHECK(file_exists(good));

  snprintf(opts, sizeof(opts), "--policy \"%s\"", bad);
  expect_refused("policy-bad-run", opts, 125, NULL, bad_text);

  snprintf(args, sizeof(args), "check-policy \"%s\"", bad);
  run_jobwarden(&r, "policy-bad-check", args, NULL);
  CHECK_U64(r.exit_code, 1);
  CHECK_CONTAINS(r.err, bad_text);
  CHECK_CONTAINS(first_line(r.err), "jobwarden: check-policy: ");
  CHECK_INT(r.out_len, 0);
  tw_jw_free(&r);

  snprintf(args, sizeof(args), "check-policy \"%s\"", good);
  run_jobwarden(&r, "policy-good-check", args, NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_INT(r.err_len, 0);
  j = json_loads(r.out, 0, &jerr);
  CHECK(json_is_object(j));
  CHECK_STR(tw_str(j, "tier"), "lockdown");
  CHECK_STR(tw_str(j, "name"), "agent-run");
  CHECK_INT(tw_int(j, "limits.active_processes"), 4);
  /* The effective notification margin, shown because of the job limits. */
  CHECK_STR(tw_str(j, "limits.notification_margin"), "10%");
  json_decref(j);
  tw_jw_free(&r);
}

/* 8. An event log that cannot be opened: 125 and the program never runs. */
static void case_unwritable_log(void) {
  char dir[TW_PATH_CHARS], opts[TW_CMD_CHARS];
  ev_path(dir, sizeof(dir), "wine-cli-no-such-dir");
  RemoveDirectoryA(dir); /* it must not exist */
  CHECK(!file_exists(dir));
  snprintf(opts, sizeof(opts), "--export \"file:%s\\x.jsonl\"", dir);
  expect_refused("log-unwritable", opts, 125, NULL, "cannot open event log");
  expect_refused("log-unwritable-z", "--export \"file:Z:\\no\\such\\dir\\x.jsonl\"", 125, NULL,
                 "cannot open event log");
  CHECK(!file_exists(dir));
}

/* 9. Killing jobwarden kills the job (kill-on-close), and what was logged
 *    so far is whole lines. */
static void case_kill_jobwarden(void) {
  const char *tag = "kill";
  char log[TW_PATH_CHARS], pidfile[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  DWORD root = 0, gc = 0;
  HANDLE h[2] = {NULL, NULL};
  json_t *evs;
  size_t n;

  case_path(log, sizeof(log), tag, ".jsonl");
  case_path(pidfile, sizeof(pidfile), tag, ".pids");
  DeleteFileA(log);
  DeleteFileA(pidfile);
  snprintf(args, sizeof(args),
           "run --tier hardened --export \"file:%s\" -- \"%s\" --helper tree \"%s\" 60000", log,
           g_self, pidfile);
  tw_jw_start(
      &(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = RUN_TIMEOUT_MS},
      &r);
  CHECK(r.started);
  if (!r.started) {
    tw_jw_wait(&r);
    tw_jw_free(&r);
    return;
  }
  CHECK_INT(tw_read_pids(pidfile, RUN_TIMEOUT_MS, &root, &gc), 0);
  if (root != 0 && gc != 0) {
    BOOL in_job = FALSE;
    DWORD w, i;
    h[0] = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_INFORMATION | PROCESS_TERMINATE, FALSE, root);
    h[1] = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_INFORMATION | PROCESS_TERMINATE, FALSE, gc);
    CHECK(h[0] != NULL);
    CHECK(h[1] != NULL);
    for (i = 0; i < 2; i++)
      if (h[i] != NULL) {
        CHECK(IsProcessInJob(h[i], NULL, &in_job) && in_job);
        CHECK_INT(WaitForSingleObject(h[i], 0), WAIT_TIMEOUT);
      }
    /* The deadline counts from the kill: both must be gone by then. */
    CHECK(TerminateProcess(r.pi.hProcess, 9));
    if (h[0] != NULL && h[1] != NULL) {
      w = WaitForMultipleObjects(2, h, TRUE, KILL_DEADLINE_MS);
      CHECK_INT(w, WAIT_OBJECT_0);
    }
    CHECK_INT(WaitForSingleObject(r.pi.hProcess, KILL_DEADLINE_MS), WAIT_OBJECT_0);
    for (i = 0; i < 2; i++)
      if (h[i] != NULL) {
        if (WaitForSingleObject(h[i], 0) != WAIT_OBJECT_0) {
          fprintf(stderr, "[%s] pid %lu survived jobwarden; killing it\n", tag,
                  (unsigned long)(i ? gc : root));
          TerminateProcess(h[i], 1);
        }
        CloseHandle(h[i]);
      }
  }
  tw_jw_wait(&r); /* returns at once: jobwarden is dead */
  CHECK_U64(r.exit_code, 9);

  evs = json_incref(r.events); /* NULL on a torn or broken line */
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev;
    check_envelope(evs, "hardened", 0);
    find_only(evs, "sandbox.job_start", NULL, &n);
    CHECK_INT(n, 1);
    ev = find_only(evs, "sandbox.process_start", "root_process", &n);
    CHECK_INT(n, 1);
    CHECK_INT(tw_int(ev, "process.pid"), root);
    json_decref(evs);
  }
  tw_jw_free(&r);
}

/* The line the helper prints: `print` uses printf on a text-mode stdout,
 * so the CRT of the program writes CR LF; jobwarden passes the bytes on
 * untouched. */
#define CHILD_LINE "hello-from-child\r\n"

/* 10. The program's standard output reaches jobwarden's, once; with
 *     --export stdout the JSON lines share the stream. */
static void case_stdio(void) {
  char deflog[TW_PATH_CHARS], kept[TW_PATH_CHARS], args[TW_CMD_CHARS], other[256], *line, *nl;
  tw_run_t r;
  json_t *evs, *ev;
  size_t n;
  int json_lines = 0, bad = 0;

  /* Default exporter: file:jobwarden-events.jsonl in the current
   * directory (the events directory here). */
  ev_path(deflog, sizeof(deflog), "jobwarden-events.jsonl");
  case_path(kept, sizeof(kept), "stdio-default", ".jsonl");
  DeleteFileA(deflog);
  DeleteFileA(kept);
  snprintf(args, sizeof(args), "run -- \"%s\" --helper print hello-from-child", g_self);
  run_jobwarden(&r, "stdio-default", args, deflog);
  CHECK_U64(r.exit_code, 0);
  /* Nothing but the program's line: exactly once, byte for byte. */
  CHECK_STR(r.out, CHILD_LINE);
  CHECK_INT(r.err_len, 0);
  CHECK(file_exists(deflog));
  /* Kept under the case's own name, the default name is free again. */
  if (file_exists(deflog)) {
    CHECK(MoveFileExA(deflog, kept, MOVEFILE_REPLACE_EXISTING));
    evs = tw_check_events(&r); /* read from deflog when the run ended */
    check_envelope(evs, "none", 1);
    json_decref(evs);
  }
  tw_jw_free(&r);

  /* --export stdout: the events alone on stdout; the program's output is
   * relayed to stderr (--agent-output auto), byte for byte. */
  DeleteFileA(deflog);
  snprintf(args, sizeof(args), "run --export stdout -- \"%s\" --helper print hello-from-child",
           g_self);
  run_jobwarden(&r, "stdio-export-stdout", args, NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_STR(r.err, CHILD_LINE);
  CHECK(!file_exists(deflog));
  CHECK(r.out_len > 0 && r.out[r.out_len - 1] == '\n');
  /* Every line is an event (starts with '{' and parses) or the program's;
   * the lines that are not events are, together, exactly its one line. */
  evs = json_array();
  other[0] = '\0';
  for (line = r.out; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    json_error_t jerr;
    json_t *j;
    if (line[0] != '{') {
      size_t used = strlen(other), len = (size_t)(nl + 1 - line);
      if (used + len < sizeof(other)) {
        memcpy(other + used, line, len);
        other[used + len] = '\0';
      }
      continue;
    }
    json_lines++;
    j = json_loadb(line, (size_t)(nl - line), 0, &jerr);
    if (!json_is_object(j)) {
      fprintf(stderr, "stdout line does not parse: %.*s (%s)\n", (int)(nl - line), line, jerr.text);
      bad++;
      json_decref(j);
      continue;
    }
    json_array_append_new(evs, j);
  }
  CHECK_INT(bad, 0);
  CHECK_STR(other, "");
  CHECK_INT(count_occurrences(r.out, CHILD_LINE), 0);
  /* job_start, the root's start, its identity (a process_update: every
   * run's cache starts empty), its exit, job_end. */
  CHECK_INT(json_lines, 5);
  CHECK_INT(json_array_size(evs), json_lines);
  check_envelope(evs, "none", 1);
  ev = find_only(evs, "sandbox.process_exit", "root_process", &n);
  CHECK_INT(n, 1);
  CHECK_INT(tw_int(ev, "process.exit_code"), 0);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 11. --help and --version. */
static void case_help_version(void) {
  tw_run_t r;
  run_jobwarden(&r, "help", "--help", NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK(strncmp(r.out, "Usage:", 6) == 0);
  CHECK_CONTAINS(r.out, "jobwarden run [OPTIONS] [--] COMMAND [ARG...]");
  CHECK_INT(r.err_len, 0);
  tw_jw_free(&r);

  run_jobwarden(&r, "version", "--version", NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_CONTAINS(r.out, "jobwarden " JW_VERSION " (event schema " JW_SCHEMA_VERSION ")");
  CHECK_INT(r.err_len, 0);
  tw_jw_free(&r);
}

/* 12. Two file exporters get the very same bytes. */
static void case_two_exporters(void) {
  char a[TW_PATH_CHARS], b[TW_PATH_CHARS], args[TW_CMD_CHARS], *ta, *tb;
  size_t la = 0, lb = 0;
  tw_run_t r;
  json_t *evs;

  case_path(a, sizeof(a), "two-a", ".jsonl");
  case_path(b, sizeof(b), "two-b", ".jsonl");
  DeleteFileA(a);
  DeleteFileA(b);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export \"file:%s\" -- \"%s\" --helper exit 7", a, b, g_self);
  run_jobwarden(&r, "two-exporters", args, a);
  CHECK_U64(r.exit_code, 7);
  ta = tw_read_file(a, &la);
  tb = tw_read_file(b, &lb);
  CHECK(ta != NULL && tb != NULL);
  /* the same events; each sink's own seal chain aside */
  if (ta != NULL && tb != NULL) {
    la = tw_unseal(ta, la);
    lb = tw_unseal(tb, lb);
  }
  CHECK(la > 0);
  CHECK_INT(la, lb);
  CHECK(ta != NULL && tb != NULL && la == lb && memcmp(ta, tb, la) == 0);
  free(ta);
  free(tb);
  evs = tw_check_events(&r); /* a's: b is compared with it byte for byte */
  check_envelope(evs, "none", 1);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 14. A sink stuck for good: jobwarden's stdout is a pipe nobody reads
 *     (`--export stdout`), the file exporter beside it is healthy. The run
 *     ends, the file has every event up to job_end, stderr names the stuck
 *     exporter, and jobwarden exits with the program's code after its
 *     bounded wait (10 s) instead of hanging. */
static void case_stuck_stdout(void) {
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS];
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
  HANDLE rd = NULL, wr = NULL;
  tw_run_t r;
  ULONGLONG t0;
  json_t *evs;

  case_path(log, sizeof(log), "stuck-stdout", ".jsonl");
  DeleteFileA(log);
  CHECK(CreatePipe(&rd, &wr, &sa, 4096));
  CHECK(SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0));
  /* 40 children: far more event bytes than the pipe holds. */
  snprintf(args, sizeof(args),
           "run --export stdout --export \"file:%s\" -- \"%s\" --helper series 40 5", log, g_self);
  t0 = GetTickCount64();
  CHECK_INT(tw_jw_start(&(tw_run_opts_t){.tag = "stuck-stdout",
                                         .args = args,
                                         .out_handle = wr,
                                         .events_path = log,
                                         .timeout_ms = 60000},
                        &r),
            0);
  CloseHandle(wr);
  CHECK_INT(tw_jw_wait(&r), 1);
  CHECK(r.exit_code != (DWORD)-1);
  CHECK_U64(r.exit_code, 0);
  /* It waited for the stuck writer, boundedly. */
  CHECK(GetTickCount64() - t0 >= 9000);
  CloseHandle(rd);

  CHECK(strstr(r.err, "jobwarden: exporter 'stdout' is stuck (a write has not "
                      "returned for 10000 ms); ") != NULL);
  CHECK(strstr(r.err, "jobwarden: exiting without waiting for the stuck exporter(s) named "
                      "above\n") != NULL);
  evs = tw_check_events(&r);
  check_envelope(evs, "none", 1);
  CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.processes"), 41);
  json_decref(evs);
  tw_jw_free(&r);
}

/* 13. --notification-margin through jobwarden.exe: the threshold below the
 *     job memory limit, Wine's refusal said once on stderr and in the log,
 *     and the program's exit code. */
static void case_notification_margin(void) {
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS], names[512];
  tw_run_t r;
  json_t *evs, *ev;
  size_t n;

  case_path(log, sizeof(log), "notification-margin", ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args),
           "run --job-memory 64M --notification-margin 5%% --export \"file:%s\" -- \"%s\" "
           "--helper exit 3",
           log, g_self);
  run_jobwarden(&r, "notification-margin", args, log);
  CHECK_U64(r.exit_code, 3);
  evs = tw_check_events(&r);
  names_of(evs, names, sizeof(names));
  CHECK_STR(names, "job_start,notice,process_start,process_exit,job_end");
  check_envelope(evs, "none", 1);
  ev = json_array_get(evs, 0);
  CHECK_STR(tw_str(ev, "policy.limits.notification_margin"), "5%");
  CHECK_INT(tw_int(ev, "job_config.notification_limits.job_memory"), 63753421);
  CHECK_INT(jbool(ev, "job_config.notification_limits.applied"), 0);
  ev = find_only(evs, "sandbox.notice", "notification_limits_unavailable", &n);
  CHECK_INT(n, 1);
  CHECK_INT(tw_int(ev, "error.win32_error"), 87);
  CHECK_CONTAINS(tw_str(ev, "message"), "warnings: job memory at 63753421 bytes");
  /* Said in the log only: the run is not worse than its hard limits. */
  CHECK_INT(r.err_len, 0);
  json_decref(evs);
  tw_jw_free(&r);
}

static void case_tree_lockdown(void) {
  case_tree("lockdown");
}

static void case_tree_none(void) {
  case_tree("none");
}

static void case_missing_path(void) {
  case_missing_program("missing-path", "C:\\no\\such\\program.exe");
}

static void case_missing_bare(void) {
  case_missing_program("missing-bare", "no-such-program-xyz");
}

/* Runnable one by one: `win_cli.exe DATA EVENTS JOBWARDEN --case stdio`. */
static const jw_test_case_t cases[] = {
    {"exit_codes", case_exit_codes, 120},
    {"crash_lockdown", case_crash_lockdown, 60},
    {"tree_lockdown", case_tree_lockdown, 60},
    {"tree_none", case_tree_none, 60},
    {"missing_path", case_missing_path, 60},
    {"missing_bare", case_missing_bare, 60},
    {"not_executable", case_not_executable, 60},
    {"usage", case_usage, 60},
    {"policy", case_policy, 60},
    {"unwritable_log", case_unwritable_log, 60},
    {"kill_jobwarden", case_kill_jobwarden, 60},
    {"stdio", case_stdio, 60},
    {"help_version", case_help_version, 60},
    {"two_exporters", case_two_exporters, 60},
    {"notification_margin", case_notification_margin, 60},
    {"stuck_stdout", case_stuck_stdout, 120},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-cli-", g_events, g_jw, g_self) != 0 ||
      tw_full_path(argv[1], g_data, sizeof(g_data)) != 0)
    return 2;
  CHECK(file_exists(g_jw));
  return TW_RUN_CASES("cli_real", argc, argv, cases);
}

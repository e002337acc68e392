/* wine.real.identity — the executable identity in a real `jobwarden run`
 * (issue 10, section 2), against hashes computed natively by coreutils'
 * sha256sum (tests/win/identity/run.sh passes them: the test never
 * compares CNG with itself).
 *
 *  hashes       tier none, a root and a grandchild of this executable:
 *               every process has its identity exactly once, in its
 *               process_start (cached) or in one process_update after it,
 *               and before job_end: sha256 = sha256sum, image_size = the
 *               file's size, code_signature unsigned; no violation.
 *  deny-hash    a copy of this executable under another name, denied by
 *               `sha256:<its hash>`: image_denied, matched the entry, the
 *               copy terminated — a renamed binary does not pass.
 *  deny-original a copy of jwtestid.exe (version resource OriginalFilename
 *               jwtestid.exe) named innocent.exe, denied by
 *               `original_file_name:jwtestid.exe` after a `signer:` entry
 *               that cannot match an unsigned file: image_denied, matched
 *               the original_file_name entry, with the process's pe fields.
 *  cap-deny     --image-hash-cap 64K (this executable is larger): a copy
 *               of it, denied by `sha256:<its hash>` after an
 *               `original_file_name:` entry that the cap does not stop
 *               (the version resource is still read: it has none, so no
 *               match): the hash cannot be had, so the list cannot decide
 *               and the copy breaks image_unknown once its identity is in
 *               (source jobwarden), terminated (kill_process), the reason
 *               in process.unavailable.hash and in the message; the copy's
 *               process_update and the root's identity say the same. The
 *               run also gives --rule-tags images=... (and escape=...):
 *               the violation carries the images rule's tags, exactly.
 *  cap-allow    the same cap with `--allow-image sha256:<its hash>` and
 *               --image-action report: image_unknown reported, the copy
 *               left to run to its own exit code.
 *  gone         an image that cannot be read (the rig: this process plays
 *               jobwarden and holds the job): a copy started suspended
 *               outside any job, renamed (Wine and Windows refuse to
 *               delete a running image but rename it; the process's image
 *               path stays the old one, where CreateFileW then fails with
 *               2), then assigned to the job: NEW_PROCESS, admission, the
 *               identity fails at once, and a `sha256:` deny entry makes
 *               image_unknown at its start (source port), terminated.
 *
 * usage: win_identity DATA EVENTS JOBWARDEN SELF_SHA256 SELF_SIZE TESTID_EXE TESTID_SHA256 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <jansson.h>

#include "harness.h"
#include "helpers.h"
#include "checks.h"
#include "rig.h"

#define KILLED 0xC000013Au

static char g_events[TW_PATH_CHARS], g_jw[TW_PATH_CHARS], g_self[TW_PATH_CHARS];
static const char *g_self_sha, *g_testid_sha;
static long long g_self_size;
static char g_testid[TW_PATH_CHARS];

static int ends_with_ci(const char *s, const char *suffix) {
  size_t a = s ? strlen(s) : 0, b = strlen(suffix);
  return s != NULL && a >= b && _stricmp(s + a - b, suffix) == 0;
}

/* jobwarden run ARGS with events to <events>\wine-identity-<tag>.jsonl;
 * returns its events (or NULL) and its exit code in *code. */
static json_t *run(const char *tag, const char *opts, const char *cmd, DWORD *code) {
  char log[TW_PATH_CHARS], args[4 * TW_PATH_CHARS];
  tw_run_t r;
  json_t *evs;
  tw_case_path(log, sizeof(log), g_events, "wine-identity-", tag, ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args), "run %s --export \"file:%s\" -- %s", opts, log, cmd);
  if (tw_jw_start(&(tw_run_opts_t){.tag = tag, .args = args, .events_path = log}, &r) != 0) {
    CHECK(!"tw_jw_start");
    return NULL;
  }
  tw_jw_wait(&r);
  *code = r.exit_code;
  evs = r.events; /* ours now */
  r.events = NULL;
  CHECK(evs != NULL);
  tw_jw_free(&r);
  return evs;
}

/* The identity of process pid: from its process_start when there, else
 * from its process_update; checks that it comes exactly once, after the
 * start and before job_end. Borrowed from evs; NULL when absent. */
static json_t *identity_of(json_t *evs, long long pid) {
  json_t *ev, *found = NULL;
  size_t i;
  long long start_seq = -1, end_seq = -1;
  int times = 0;
  json_array_foreach(evs, i, ev) {
    const char *kind = tw_str(ev, "event");
    if (kind != NULL && strcmp(kind, "sandbox.job_end") == 0)
      end_seq = tw_int(ev, "seq");
    if (tw_int(ev, "process.pid") != pid || kind == NULL)
      continue;
    if (strcmp(kind, "sandbox.process_start") == 0)
      start_seq = tw_int(ev, "seq");
    if ((strcmp(kind, "sandbox.process_start") == 0 ||
         strcmp(kind, "sandbox.process_update") == 0) &&
        tw_get(ev, "process.hash") != NULL) {
      times++;
      found = tw_get(ev, "process");
      if (strcmp(kind, "sandbox.process_update") == 0) {
        CHECK(start_seq > 0 && tw_int(ev, "seq") > start_seq);
        CHECK_STR(tw_str(ev, "action"), "observed");
        CHECK_STR(tw_str(ev, "severity"), "info");
      }
    }
  }
  CHECK_INT(times, 1);
  CHECK(end_seq > 0);
  return found;
}

static void test_hashes(void) {
  char cmd[TW_CMD_CHARS], pidfile[TW_PATH_CHARS];
  DWORD code = 0, root = 0, gc = 0;
  json_t *evs, *id, *v;
  long long pids[2];
  int k;
  tw_case_path(pidfile, sizeof(pidfile), g_events, "wine-identity-", "hashes", ".pids");
  DeleteFileA(pidfile);
  snprintf(cmd, sizeof(cmd), "\"%s\" --helper tree \"%s\" 200", g_self, pidfile);
  evs = run("hashes", "--tier none", cmd, &code);
  CHECK_U64(code, 0);
  CHECK_INT(tw_read_pids(pidfile, 0, &root, &gc), 0);
  pids[0] = root;
  pids[1] = gc;
  for (k = 0; k < 2; k++) {
    id = identity_of(evs, pids[k]);
    CHECK_STR(tw_str(id, "hash.sha256"), g_self_sha);
    CHECK_INT(tw_int(id, "image_size"), g_self_size);
    CHECK(json_is_false(tw_get(id, "code_signature.exists")));
    CHECK_STR(tw_str(id, "code_signature.status"), "unsigned");
    CHECK(json_is_false(tw_get(id, "code_signature.trusted")));
    /* This executable has no version resource: no pe, and nothing failed. */
    CHECK(tw_get(id, "pe") == NULL);
    CHECK(tw_get(id, "unavailable.pe") == NULL);
  }
  v = tw_filter(evs, "sandbox.violation", NULL);
  CHECK_INT(json_array_size(v), 0);
  json_decref(v);
  json_decref(evs);
}

/* The only image_denied violation; checks its match and returns it. */
static json_t *denied(json_t *evs, const char *matched) {
  json_t *v = tw_filter(evs, "sandbox.violation", "image_denied"), *e;
  CHECK_INT(json_array_size(v), 1);
  e = json_array_get(v, 0);
  json_incref(e);
  json_decref(v);
  CHECK_STR(tw_str(e, "enforcement.list"), "deny");
  CHECK_STR(tw_str(e, "enforcement.matched"), matched);
  CHECK_STR(tw_str(e, "enforcement.configured_action"), "kill_process");
  return e;
}

static void test_deny_hash(void) {
  char copy[TW_PATH_CHARS], cmd[TW_CMD_CHARS], opts[256], entry[80];
  DWORD code = 0;
  json_t *evs, *e, *ex, *starts, *s;
  size_t i;
  long long pid = -1;
  tw_case_path(copy, sizeof(copy), g_events, "wine-identity-", "not-the-agent", ".exe");
  CHECK(CopyFileA(g_self, copy, FALSE));
  snprintf(entry, sizeof(entry), "sha256:%s", g_self_sha);
  snprintf(opts, sizeof(opts), "--tier none --deny-image %s --image-action kill_process", entry);
  snprintf(cmd, sizeof(cmd), "\"%s\" --helper run-exe \"%s\" --helper sleep 20000", g_self, copy);
  evs = run("deny-hash", opts, cmd, &code);
  /* The root (exempt) ran the copy, which was terminated. */
  CHECK_U64(code, 58); /* the helper's code for a child jobwarden killed */
  starts = tw_filter(evs, "sandbox.process_start", "child_process");
  CHECK_INT(json_array_size(starts), 1);
  json_array_foreach(starts, i, s) pid = tw_int(s, "process.pid");
  json_decref(starts);
  e = denied(evs, entry);
  CHECK_INT(tw_int(e, "process.pid"), pid);
  CHECK_STR(tw_str(e, "process.executable"), copy);
  CHECK_STR(tw_str(e, "process.hash.sha256"), g_self_sha);
  CHECK_STR(tw_str(e, "action"), "terminated");
  CHECK_STR(tw_str(e, "enforcer"), "monitor");
  json_decref(e);
  ex = tw_filter(evs, "sandbox.process_exit", "child_process");
  CHECK_INT(json_array_size(ex), 1);
  CHECK_STR(tw_str(json_array_get(ex, 0), "action"), "terminated");
  CHECK_INT(tw_int(json_array_get(ex, 0), "process.exit_code"), (long long)KILLED);
  json_decref(ex);
  json_decref(evs);
  DeleteFileA(copy);
}

static void test_deny_original(void) {
  char copy[TW_PATH_CHARS], cmd[TW_CMD_CHARS];
  DWORD code = 0;
  json_t *evs, *e, *id;
  tw_case_path(copy, sizeof(copy), g_events, "wine-identity-", "innocent", ".exe");
  CHECK(CopyFileA(g_testid, copy, FALSE));
  snprintf(cmd, sizeof(cmd), "\"%s\" --helper run-exe \"%s\"", g_self, copy);
  evs = run("deny-original",
            "--tier none --deny-image \"signer:Example Vendor\" "
            "--deny-image original_file_name:jwtestid.exe --image-action kill_process",
            cmd, &code);
  e = denied(evs, "original_file_name:jwtestid.exe");
  CHECK(ends_with_ci(tw_str(e, "process.executable"), "\\wine-identity-innocent.exe"));
  CHECK_STR(tw_str(e, "process.pe.original_file_name"), "jwtestid.exe");
  CHECK_STR(tw_str(e, "process.hash.sha256"), g_testid_sha);
  /* The copy does nothing and may be gone before the kill: either way the
   * rule was applied to it. */
  CHECK(tw_str(e, "action") != NULL && (strcmp(tw_str(e, "action"), "terminated") == 0 ||
                                        strcmp(tw_str(e, "action"), "observed") == 0));
  id = identity_of(evs, tw_int(e, "process.pid"));
  CHECK_STR(tw_str(id, "pe.original_file_name"), "jwtestid.exe");
  json_decref(e);
  json_decref(evs);
  DeleteFileA(copy);
}

/* The pid of the run's only child_process. */
static long long only_child(json_t *evs) {
  json_t *starts = tw_filter(evs, "sandbox.process_start", "child_process");
  long long pid = -1;
  CHECK_INT(json_array_size(starts), 1);
  if (json_array_size(starts) == 1)
    pid = tw_int(json_array_get(starts, 0), "process.pid");
  json_decref(starts);
  return pid;
}

/* The identity of a process over the hashing cap, in an event: its size,
 * no hash, no signature, both named unavailable with the cap. */
static void check_over_cap(json_t *ev, const char *reason) {
  if (ev == NULL)
    return;
  CHECK(tw_get(ev, "process.hash") == NULL);
  CHECK(tw_get(ev, "process.code_signature") == NULL);
  CHECK_INT(tw_int(ev, "process.image_size"), g_self_size);
  CHECK_STR(tw_str(ev, "process.unavailable.hash"), reason);
  CHECK_STR(tw_str(ev, "process.unavailable.code_signature"), reason);
  /* The version resource is read over the cap: it has none, no failure. */
  CHECK(tw_get(ev, "process.pe") == NULL);
  CHECK(tw_get(ev, "process.unavailable.pe") == NULL);
}

#define CAP_REASON "image larger than the 64 KiB hashing cap"

/* image_unknown for want of the hash: a copy of this executable over the
 * cap, under a sha256: deny entry (kill_process) or allow entry (report). */
static void test_cap(const char *tag, int allow) {
  char copy[TW_PATH_CHARS], cmd[TW_CMD_CHARS], opts[512], want[1024];
  DWORD code = 0;
  json_t *evs, *e, *up, *ex, *root;
  long long pid;
  tw_case_path(copy, sizeof(copy), g_events, "wine-identity-", tag, ".exe");
  CHECK(CopyFileA(g_self, copy, FALSE));
  if (allow)
    snprintf(opts, sizeof(opts),
             "--tier none --image-hash-cap 64K --allow-image sha256:%s --image-action report",
             g_self_sha);
  else
    snprintf(opts, sizeof(opts),
             "--tier none --image-hash-cap 64K --deny-image original_file_name:jwtestid.exe "
             "--deny-image sha256:%s --image-action kill_process --rule-tags "
             "images=team.identity_review,attack.t1036.005 --rule-tags escape=team.not_this_rule",
             g_self_sha);
  snprintf(cmd, sizeof(cmd), "\"%s\" --helper run-exe \"%s\" --helper %s", g_self, copy,
           allow ? "exit 5" : "sleep 20000");
  evs = run(tag, opts, cmd, &code);
  /* The root (exempt) ran the copy: killed (58), or its own exit code. */
  CHECK_U64(code, allow ? 5 : 58);
  pid = only_child(evs);
  CHECK_INT(tw_count(evs, "sandbox.violation", "image_denied"), 0);
  CHECK_INT(tw_count(evs, "sandbox.violation", "image_not_allowed"), 0);
  e = tw_only_for(evs, "sandbox.violation", "image_unknown", pid);
  if (e != NULL) {
    CHECK_STR(tw_str(e, "rule_id"), "JW-1105");
    CHECK_STR(tw_str(e, "severity"), "high");
    CHECK_STR(tw_str(e, "enforcer"), tw_enforcer_for(tw_str(e, "action"), "monitor"));
    /* Decided once the worker had the copy's identity, not at its start. */
    CHECK_STR(tw_str(e, "source"), "jobwarden");
    CHECK(tw_get(e, "job_message") == NULL);
    CHECK_STR(tw_str(e, "action"), allow ? "reported" : "terminated");
    CHECK_STR(tw_str(e, "enforcement.configured_action"), allow ? "report" : "kill_process");
    CHECK(tw_get(e, "enforcement.list") == NULL);
    CHECK(tw_get(e, "enforcement.matched") == NULL);
    CHECK(tw_get(e, "error") == NULL);
    CHECK_STR(tw_str(e, "process.executable"), copy);
    check_over_cap(e, CAP_REASON);
    snprintf(want, sizeof(want),
             "child process %s (pid %lld): its executable identity, which an image list entry "
             "needs, could not be had (hash: " CAP_REASON
             "), so it cannot be checked against the image lists: %s",
             copy, pid,
             allow ? "reported only (action report)" : "jobwarden terminated the process");
    CHECK_STR(tw_str(e, "message"), want);
    /* --rule-tags: the images rule's own tags after the catalog's, in the
     * order given; the escape rule's are not this rule's. */
    if (allow) {
      CHECK_INT(json_array_size(tw_get(e, "tags")), 1);
    } else {
      CHECK_INT(json_array_size(tw_get(e, "tags")), 3);
      CHECK_STR(json_string_value(json_array_get(tw_get(e, "tags"), 1)), "team.identity_review");
      CHECK_STR(json_string_value(json_array_get(tw_get(e, "tags"), 2)), "attack.t1036.005");
    }
    CHECK_STR(json_string_value(json_array_get(tw_get(e, "tags"), 0)), "jobwarden.monitor_rule");
  }
  /* The identity came once, in the copy's process_update, before the
   * violation it decided. */
  up = tw_only_for(evs, "sandbox.process_update", "child_process", pid);
  check_over_cap(up, CAP_REASON);
  CHECK(up != NULL && e != NULL && tw_int(up, "seq") < tw_int(e, "seq"));
  ex = tw_only_for(evs, "sandbox.process_exit", "child_process", pid);
  if (ex != NULL) {
    CHECK_STR(tw_str(ex, "action"), allow ? "observed" : "terminated");
    CHECK_INT(tw_int(ex, "process.exit_code"), allow ? 5 : (long long)KILLED);
  }
  /* The cap is the run's: the root (this executable too) is not hashed
   * either, whichever event carries its identity. */
  {
    json_t *ev;
    size_t i;
    int k, seen = 0;
    for (k = 0; k < 2; k++) {
      root = tw_filter(evs, k == 0 ? "sandbox.process_start" : "sandbox.process_update",
                       "root_process");
      json_array_foreach(root, i, ev) {
        if (tw_get(ev, "process.unavailable.hash") != NULL) {
          check_over_cap(ev, CAP_REASON);
          seen++;
        }
        CHECK(tw_get(ev, "process.hash") == NULL);
      }
      json_decref(root);
    }
    CHECK_INT(seen, 1);
  }
  json_decref(evs);
  DeleteFileA(copy);
}

/* An image that cannot be read: renamed away while its process was
 * suspended outside the job, then put in the job (the rig). */
static void test_gone(void) {
  char copy[TW_PATH_CHARS], moved[TW_PATH_CHARS], marker[TW_PATH_CHARS], entry[80], want[1024];
  wchar_t wcopy[TW_PATH_CHARS], wmoved[TW_PATH_CHARS], cmd[2 * TW_PATH_CHARS];
  const char *args[2];
  PROCESS_INFORMATION pi;
  DWORD code = 0;
  rig_t r;
  jw_policy_t p;
  json_t *evs, *e, *s;
  tw_case_path(copy, sizeof(copy), g_events, "wine-identity-", "gone", ".exe");
  tw_case_path(moved, sizeof(moved), g_events, "wine-identity-", "gone-moved", ".exe");
  tw_case_path(marker, sizeof(marker), g_events, "wine-identity-", "gone", ".go");
  DeleteFileA(moved);
  DeleteFileA(marker);
  CHECK(CopyFileA(g_self, copy, FALSE));
  MultiByteToWideChar(CP_UTF8, 0, copy, -1, wcopy, TW_PATH_CHARS);
  MultiByteToWideChar(CP_UTF8, 0, moved, -1, wmoved, TW_PATH_CHARS);
  swprintf(cmd, 2 * TW_PATH_CHARS, L"\"%ls\" --helper sleep 30000", wcopy);
  memset(&pi, 0, sizeof(pi));
  /* Before the rig's root: not mistaken for an escape (created before
   * anything of the run). */
  if (tw_spawn(cmd, CREATE_SUSPENDED, &pi) != 0) {
    CHECK(!"CreateProcessW of the copy");
    return;
  }
  /* Measured (Wine 8.0, as Windows documents): DeleteFileW of a running
   * image fails with 5, MoveFileW works. */
  CHECK(!DeleteFileW(wcopy));
  CHECK_INT(GetLastError(), ERROR_ACCESS_DENIED);
  CHECK(MoveFileW(wcopy, wmoved));
  jw_policy_init(&p);
  snprintf(entry, sizeof(entry), "sha256:%s", g_self_sha);
  CHECK_INT(jw_policy_set(&p, "deny_image", entry, "test", NULL), 0);
  CHECK_INT(jw_policy_set(&p, "image_action", "kill_process", "test", NULL), 0);
  args[0] = "wait-file";
  args[1] = marker;
  if (rig_start(&r, g_events, "identity-gone", &p, args, 2) != 0) {
    CHECK(!"rig_start");
    TerminateProcess(pi.hProcess, 1);
    goto done;
  }
  CHECK(AssignProcessToJobObject(r.job.job, pi.hProcess));
  /* The monitor acts before it reports: the copy's end is the sign. */
  CHECK(WaitForSingleObject(pi.hProcess, 30000) == WAIT_OBJECT_0);
  CHECK(tw_exit_code(pi.hProcess, &code));
  CHECK_U64(code, KILLED);
  {
    FILE *f = fopen(marker, "wb");
    CHECK(f != NULL);
    if (f != NULL)
      fclose(f);
  }
  evs = rig_finish(&r);
  CHECK(evs != NULL);
  if (evs == NULL)
    goto done;
  e = tw_only_for(evs, "sandbox.violation", "image_unknown", pi.dwProcessId);
  if (e != NULL) {
    CHECK_STR(tw_str(e, "action"), "terminated");
    CHECK_STR(tw_str(e, "enforcer"), "monitor");
    CHECK_STR(tw_str(e, "source"), "port");
    CHECK_STR(tw_str(e, "job_message.name"), "JOB_OBJECT_MSG_NEW_PROCESS");
    CHECK_STR(tw_str(e, "enforcement.configured_action"), "kill_process");
    CHECK(tw_get(e, "enforcement.list") == NULL);
    CHECK(tw_get(e, "error") == NULL);
    /* The path the process was started from, where no file is now. */
    CHECK_STR(tw_str(e, "process.executable"), copy);
    CHECK(tw_get(e, "process.hash") == NULL);
    CHECK(tw_get(e, "process.image_size") == NULL);
    CHECK_STR(tw_str(e, "process.unavailable.hash"),
              "image file cannot be opened (CreateFileW error 2)");
    CHECK_STR(tw_str(e, "process.unavailable.image_size"),
              "image file cannot be opened (CreateFileW error 2)");
    CHECK_STR(tw_str(e, "process.unavailable.pe"),
              "image file cannot be opened (CreateFileW error 2)");
    CHECK_STR(tw_str(e, "process.unavailable.code_signature"),
              "image file cannot be opened (CreateFileW error 2)");
    snprintf(want, sizeof(want),
             "child process %s (pid %lu): its executable identity, which an image list entry "
             "needs, could not be had (hash: image file cannot be opened (CreateFileW error 2)), "
             "so it cannot be checked against the image lists: jobwarden terminated the process",
             copy, (unsigned long)pi.dwProcessId);
    CHECK_STR(tw_str(e, "message"), want);
  }
  /* Its start says the same, and no update follows (nothing to wait for). */
  s = tw_only_for(evs, "sandbox.process_start", "child_process", pi.dwProcessId);
  if (s != NULL)
    CHECK_STR(tw_str(s, "process.unavailable.hash"),
              "image file cannot be opened (CreateFileW error 2)");
  CHECK(s != NULL && e != NULL && tw_int(s, "seq") + 1 == tw_int(e, "seq"));
  {
    json_t *u = tw_filter(evs, "sandbox.process_update", "child_process");
    CHECK_INT(json_array_size(u), 0);
    json_decref(u);
  }
  json_decref(evs);
done:
  TerminateProcess(pi.hProcess, 1); /* a failed case must not leave it */
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  DeleteFileA(moved);
  DeleteFileA(marker);
}

static void test_cap_deny(void) {
  test_cap("cap-deny", 0);
}

static void test_cap_allow(void) {
  test_cap("cap-allow", 1);
}

/* Runnable one by one: `win_identity.exe DATA EVENTS JOBWARDEN ... --case gone`. */
static const jw_test_case_t cases[] = {
    {"hashes", test_hashes, 60},
    {"deny_hash", test_deny_hash, 60},
    {"deny_original", test_deny_original, 60},
    {"cap_deny", test_cap_deny, 60},
    {"cap_allow", test_cap_allow, 60},
    {"gone", test_gone, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (argc < 8 || tw_test_args(argc, argv, g_events, g_jw, g_self) != 0 ||
      tw_full_path(argv[6], g_testid, sizeof(g_testid)) != 0) {
    fprintf(stderr, "usage: win_identity DATA EVENTS JOBWARDEN SELF_SHA256 SELF_SIZE TESTID_EXE "
                    "TESTID_SHA256\n");
    return 2;
  }
  g_self_sha = argv[4];
  g_self_size = atoll(argv[5]);
  g_testid_sha = argv[7];
  tw_kit_set(g_jw, g_events, "wine-identity-");
  return TW_RUN_CASES("identity", argc, argv, cases);
}

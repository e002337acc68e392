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
 *
 * usage: win_identity DATA EVENTS JOBWARDEN SELF_SHA256 SELF_SIZE TESTID_EXE TESTID_SHA256 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <jansson.h>

#include "harness.h"
#include "helpers.h"

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
  tw_proc_t r;
  json_t *evs;
  tw_case_path(log, sizeof(log), g_events, "wine-identity-", tag, ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args), "run %s --export \"file:%s\" -- %s", opts, log, cmd);
  tw_case_begin(jw_test_failures);
  if (tw_proc_start(&r, g_jw, args, g_events, "wine-identity-", tag, NULL, NULL) != 0) {
    CHECK(!"tw_proc_start");
    return NULL;
  }
  tw_proc_wait(&r, 60000, 1);
  *code = r.exit_code;
  evs = tw_read_events(log);
  CHECK(evs != NULL);
  tw_case_end(tag, jw_test_failures, &r);
  tw_proc_free(&r);
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
  test_hashes();
  test_deny_hash();
  test_deny_original();
  return jw_test_result("identity");
}

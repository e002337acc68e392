/* wine.real.seal: sealed records made by the real jobwarden.exe.
 *
 * (a) `run --seal-key KEY` with a file, an ECS file and a pipe sink: the
 *     key file is created with a protected DACL granting the current user
 *     alone (read back); every stream verifies intact with `jobwarden
 *     verify` (the pipe reader's own stream "2/1" included);
 * (b) the key file exists: the run is refused (125) before any event file;
 * (c) `seal-key new` + `--seal-key-existing`: intact with that key, a key
 *     mismatch with another;
 * (d) the record of (a) damaged the ways an attacker who can write the
 *     file after the run would (a byte changed, a line deleted, a forged
 *     line inserted, two lines swapped, the end cut, a line of another run
 *     spliced in): each copy is refused (exit 1) and the first bad line is
 *     named with its kind; the copies and the expected verdicts are listed
 *     in wine-seal-manifest.txt, which tests/win/seal/run.sh checks again
 *     with the native jobwarden;
 * (e) jobwarden killed mid-run: its sealed record is truncated;
 * (f) the agent, from inside the job, tries to outlive the run and rewrite
 *     the record: it is terminated first, the record verifies intact.
 * Manifest lines: FILE<TAB>KEY<TAB>intact<TAB>- | FILE<TAB>KEY<TAB>KIND<TAB>WHERE
 * (WHERE: the line, "before LINE" / "after LINE" for a missing one).
 * argv: <tests/data dir> <events out dir> <jobwarden.exe> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

#include <jansson.h>

#include "harness.h"
#include "helpers.h"
#include "test_util.h"
#include "internal.h"
#include "win/win.h"

#define RUN_TIMEOUT_MS 60000

static char g_events[TW_PATH_CHARS];
static char g_jw[TW_PATH_CHARS];
static char g_self[TW_PATH_CHARS];
static FILE *g_manifest;

static void path_of(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_events, "wine-seal-", tag, suffix);
}

/* Runs jobwarden.exe with args; waits. log (or NULL): its file sink, read
 * into r->events at its end. */
static void seal_run(tw_run_t *r, const char *tag, const char *args, const char *log) {
  CHECK_INT(tw_jw_start(
                &(tw_run_opts_t){
                    .tag = tag, .args = args, .events_path = log, .timeout_ms = RUN_TIMEOUT_MS},
                r),
            0);
  CHECK(tw_jw_wait(r));
}

/* `jobwarden verify FILE --key KEY`: its exit code, stdout in r. */
static DWORD verify(tw_run_t *r, const char *tag, const char *file, const char *key) {
  char args[TW_CMD_CHARS];
  snprintf(args, sizeof(args), "verify \"%s\" --key \"%s\"", file, key);
  seal_run(r, tag, args, NULL);
  return r->exit_code;
}

static void expect_intact(const char *file, const char *key, const char *stream) {
  tw_run_t r;
  char want[256];
  CHECK_U64(verify(&r, "verify-intact", file, key), 0);
  CHECK_CONTAINS(r.out, "verify: intact\n");
  snprintf(want, sizeof(want), " stream %s: intact, ", stream);
  CHECK_CONTAINS(r.out, want);
  CHECK_CONTAINS(r.out, ", closed by sandbox.job_end\n");
  tw_jw_free(&r);
}

/* Verifies a damaged copy: exit 1, the first bad line "KIND: [REL]COPY:LINE".
 * Listed in the manifest for the native check. */
static void expect_damaged(const char *tag, char *const *l, size_t n, const char *key,
                           const char *kind, const char *rel, unsigned line) {
  char copy[TW_PATH_CHARS], want[TW_PATH_CHARS + 64];
  tw_run_t r;
  path_of(copy, sizeof(copy), tag, ".jsonl.txt");
  jw_test_lines_write(copy, l, n);
  CHECK_U64(verify(&r, tag, copy, key), 1);
  snprintf(want, sizeof(want), "verify: DAMAGED; the first bad line:\n  %s: %s%s:%u", kind, rel,
           copy, line);
  CHECK_CONTAINS(r.out, want);
  tw_jw_free(&r);
  if (g_manifest != NULL)
    fprintf(g_manifest, "%s\t%s\t%s\t%s%u\n", copy, key, kind, rel, line);
}

/* ---- the key file's DACL ------------------------------------------------ */

/* Windows-only: Wine keeps no file DACLs (measured: a DACL given to
 * CreateFileW or SetNamedSecurityInfoW is not stored; the one read back is
 * made from the Unix mode bits, docs/platform-support.md). */
static void check_key_dacl(const char *key) {
  tw_acl_t a;
  if (jw__is_wine()) {
    printf("windows-only: the DACL of %s (Wine %s keeps no file DACLs)\n", key, jw__wine_version());
    return;
  }
  CHECK_U64(tw_acl_read(NULL, key, 0, &a), ERROR_SUCCESS);
  if (a.error != ERROR_SUCCESS)
    return;
  CHECK(a.have_control);
  CHECK(a.is_protected); /* nothing inherited from the folder */
  CHECK(a.have_dacl);
  CHECK_INT(a.ace_count, 1);
  CHECK(a.ace[0].read);
  CHECK(tw_user_sid()[0] != '\0');
  if (a.ace[0].read) {
    CHECK_INT(a.ace[0].type, ACCESS_ALLOWED_ACE_TYPE);
    CHECK_STR(a.ace[0].sid, tw_user_sid());
    CHECK_U64(a.ace[0].mask & FILE_ALL_ACCESS, FILE_ALL_ACCESS);
  }
}

/* ---- (a) a sealed run with three sinks ---------------------------------- */

static void case_sealed_run(char *key, size_t key_n, char *rec, size_t rec_n) {
  char ecs[TW_PATH_CHARS], mark[TW_PATH_CHARS], pipe_out[TW_PATH_CHARS], args[TW_CMD_CHARS];
  char name[64], pipe_path[128];
  tw_run_t r;
  HANDLE h = INVALID_HANDLE_VALUE;
  DWORD i;

  path_of(key, key_n, "a", ".key");
  path_of(rec, rec_n, "a", ".jsonl");
  path_of(ecs, sizeof(ecs), "a-ecs", ".jsonl.txt");
  path_of(mark, sizeof(mark), "a", ".mark");
  path_of(pipe_out, sizeof(pipe_out), "a-pipe", ".jsonl.txt");
  DeleteFileA(key);
  DeleteFileA(rec);
  DeleteFileA(ecs);
  DeleteFileA(mark);
  snprintf(name, sizeof(name), "jw-seal-%lu", (unsigned long)GetCurrentProcessId());
  snprintf(pipe_path, sizeof(pipe_path), "\\\\.\\pipe\\%s", name);
  /* The root waits for the mark (made once this test reads the pipe),
   * then starts three children and one that crashes. */
  snprintf(args, sizeof(args),
           "run --seal-key \"%s\" --export \"file:%s\" --export \"file:%s,format=ecs\" "
           "--export pipe:%s -- \"%s\" --helper series-then-crash \"%s\"",
           key, rec, ecs, name, g_self, mark);
  CHECK_INT(
      tw_jw_start(&(tw_run_opts_t){.tag = "a", .args = args, .timeout_ms = RUN_TIMEOUT_MS}, &r), 0);
  CHECK_INT(tw_wait_pipe(name, 20000, 20), 0);
  for (i = 0; i < 200 && h == INVALID_HANDLE_VALUE; i++) {
    h = CreateFileA(pipe_path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
      Sleep(20); /* every instance busy: the next one comes */
  }
  CHECK(h != INVALID_HANDLE_VALUE);
  {
    FILE *m = fopen(mark, "wb");
    if (m != NULL)
      fclose(m);
  }
  if (h != INVALID_HANDLE_VALUE) {
    FILE *out = fopen(pipe_out, "wb");
    char buf[65536];
    DWORD got;
    while (ReadFile(h, buf, sizeof(buf), &got, NULL) && got > 0)
      if (out != NULL)
        fwrite(buf, 1, got, out);
    if (out != NULL)
      fclose(out);
    CloseHandle(h);
  }
  CHECK(tw_jw_wait(&r));
  CHECK_U64(r.exit_code, 0xC0000005); /* the root's own exit: the crash */
  tw_jw_free(&r);

  /* jobwarden.exe tail --file: the portable formatter over the record
   * (the seal member is not shown), exit 0 for a record that ends with
   * job_end. */
  {
    char targs[TW_CMD_CHARS];
    tw_run_t t;
    snprintf(targs, sizeof(targs), "tail --file \"%s\"", rec);
    seal_run(&t, "a-tail", targs, NULL);
    CHECK_U64(t.exit_code, 0);
    CHECK_CONTAINS(t.out, " info     job                    pid=-      -  job ended: ");
    CHECK(strstr(t.out, "\"mac\":") == NULL); /* no seal member shown */
    tw_jw_free(&t);
  }
  check_key_dacl(key);
  expect_intact(rec, key, "0");
  expect_intact(ecs, key, "1");
  expect_intact(pipe_out, key, "2/1");
}

/* ---- (b) the key file exists --------------------------------------------- */

static void case_key_exists(const char *key) {
  char rec[TW_PATH_CHARS], args[TW_CMD_CHARS], want[TW_PATH_CHARS + 64];
  tw_run_t r;
  path_of(rec, sizeof(rec), "b", ".jsonl");
  DeleteFileA(rec);
  snprintf(args, sizeof(args),
           "run --seal-key \"%s\" --export \"file:%s\" -- \"%s\" --helper exit 0", key, rec,
           g_self);
  seal_run(&r, "b", args, NULL);
  CHECK_U64(r.exit_code, 125);
  snprintf(want, sizeof(want), "%s: cannot create (error 80: ", key);
  CHECK_CONTAINS(r.err, want);
  CHECK_CONTAINS(r.err, "(a key file is never overwritten)");
  CHECK(GetFileAttributesA(rec) == INVALID_FILE_ATTRIBUTES); /* nothing was opened */
  tw_jw_free(&r);
}

/* A run sealed with the existing key `key` into the file `rec`: its root
 * runs `children` children one after another; exit 0. */
static void run_with_key(const char *key, const char *rec, const char *tag, int children) {
  char args[TW_CMD_CHARS];
  tw_run_t r;
  snprintf(args, sizeof(args),
           "run --seal-key-existing \"%s\" --export \"file:%s\" -- \"%s\" --helper series %d 0",
           key, rec, g_self, children);
  seal_run(&r, tag, args, NULL);
  CHECK_U64(r.exit_code, 0);
  tw_jw_free(&r);
}

/* ---- (c) a key made beforehand -------------------------------------------- */

static void case_existing_key(const char *key_a, char *rec, size_t rec_n) {
  char key[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  path_of(key, sizeof(key), "c", ".key");
  path_of(rec, rec_n, "c", ".jsonl");
  DeleteFileA(key);
  DeleteFileA(rec);
  snprintf(args, sizeof(args), "seal-key new \"%s\"", key);
  seal_run(&r, "c-key", args, NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_CONTAINS(r.out, ": new seal key ");
  tw_jw_free(&r);
  check_key_dacl(key);
  run_with_key(key, rec, "c", 2);
  expect_intact(rec, key, "0");
  /* The right record, the wrong key. */
  CHECK_U64(verify(&r, "c-wrong-key", rec, key_a), 1);
  CHECK_CONTAINS(r.out, "key_mismatch: ");
  tw_jw_free(&r);
}

/* ---- (d) damage ----------------------------------------------------------- */

static void case_damage(const char *key, const char *rec, const char *key_c) {
  jw_test_lines_t l, other;
  char other_rec[TW_PATH_CHARS], *saved;

  CHECK_INT(jw_test_lines_read(rec, &l), 0);
  CHECK(l.n >= 8);
  if (l.n < 8) {
    jw_test_lines_free(&l);
    return;
  }
  /* modified: one byte of line 3 (inside its message). */
  {
    char *p = strstr(l.l[2], "\"message\":\"");
    CHECK(p != NULL);
    if (p != NULL) {
      p[11] ^= 0x01;
      expect_damaged("d-modified", l.l, l.n, key, "modified", "", 3);
      p[11] ^= 0x01;
    }
  }
  /* deleted: line 4. */
  saved = l.l[3];
  l.l[3] = NULL;
  expect_damaged("d-deleted", l.l, l.n, key, "deleted", "before ", 4);
  l.l[3] = saved;
  /* inserted: a forged, valid-looking line after line 4: line 4 again with
   * another pid, its seal's MAC made up. */
  {
    char **ins = calloc(l.n + 1, sizeof(char *));
    char *forged = _strdup(l.l[3]), *mac = strstr(forged, "\"mac\":\"");
    memcpy(ins, l.l, 4 * sizeof(char *));
    if (mac != NULL)
      memset(mac + 7, 'f', 64);
    ins[4] = forged;
    memcpy(ins + 5, l.l + 4, (l.n - 4) * sizeof(char *));
    expect_damaged("d-inserted", ins, l.n + 1, key, "inserted", "", 5);
    free(forged);
    free(ins);
  }
  /* reordered: lines 5 and 6 swapped. */
  saved = l.l[4];
  l.l[4] = l.l[5];
  l.l[5] = saved;
  expect_damaged("d-reordered", l.l, l.n, key, "reordered", "", 6);
  l.l[5] = l.l[4];
  l.l[4] = saved;
  /* truncated: the last two lines cut. */
  {
    char name[TW_PATH_CHARS];
    path_of(name, sizeof(name), "d-truncated", ".jsonl.txt");
    expect_damaged("d-truncated", l.l, l.n - 2, key, "truncated", "after ", (unsigned)(l.n - 2));
  }
  /* spliced: line 4 replaced by line 4 of another run sealed with the same
   * key (a second run with --seal-key-existing). */
  path_of(other_rec, sizeof(other_rec), "d-other", ".jsonl");
  DeleteFileA(other_rec);
  run_with_key(key, other_rec, "d-other", 3);
  CHECK_INT(jw_test_lines_read(other_rec, &other), 0);
  CHECK(other.n >= 5);
  if (other.n >= 5) {
    saved = l.l[3];
    l.l[3] = other.l[3];
    expect_damaged("d-spliced", l.l, l.n, key, "spliced", "", 4);
    l.l[3] = saved;
  }
  jw_test_lines_free(&other);
  /* key mismatch: the intact record, another key. */
  expect_damaged("d-key", l.l, l.n, key_c, "key_mismatch", "", 1);
  jw_test_lines_free(&l);
}

/* ---- (f) the agent tries to rewrite the record ---------------------------
 * From inside the job, with kill-on-close off: the root starts a child
 * and exits, the child waits until jobwarden lets go of the record (share
 * modes stop it while the run lasts: wine.real.record) to change a byte of
 * its third line. What it got: nothing. jobwarden terminates what the root
 * leaves in the job before the record is closed (orphan_processes,
 * killed_job), so the child never opens the file (no MARK) and the record
 * verifies intact. A rewrite by anyone later is what verify names: (d). */
static void case_agent_rewrites(const char *key) {
  char rec[TW_PATH_CHARS], mark[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r;
  json_t *evs, *ev;
  size_t k;
  int orphan = 0, child_killed = 0;
  path_of(rec, sizeof(rec), "f-agent", ".jsonl.txt");
  path_of(mark, sizeof(mark), "f-agent", ".mark");
  DeleteFileA(rec);
  DeleteFileA(mark);
  snprintf(args, sizeof(args),
           "run --no-kill-on-close --seal-key-existing \"%s\" --export \"file:%s\" -- \"%s\" "
           "--helper spawn-rewriter \"%s\" \"%s\"",
           key, rec, g_self, rec, mark);
  seal_run(&r, "f", args, rec);
  CHECK_U64(r.exit_code, 0);
  /* The child's end is in the record, before job_end: it was terminated
   * while jobwarden still held the file. */
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  json_array_foreach(evs, k, ev) {
    const char *rule = tw_str(ev, "rule"), *action = tw_str(ev, "action");
    if (rule != NULL && strcmp(rule, "orphan_processes") == 0)
      orphan++;
    if (rule != NULL && action != NULL && strcmp(rule, "child_process") == 0 &&
        strcmp(action, "killed_job") == 0 &&
        strcmp(tw_str(ev, "event") ? tw_str(ev, "event") : "", "sandbox.process_exit") == 0)
      child_killed++;
  }
  json_decref(evs);
  CHECK_INT(orphan, 1);
  CHECK_INT(child_killed, 1);
  CHECK(GetFileAttributesA(mark) == INVALID_FILE_ATTRIBUTES); /* it never opened the file */
  expect_intact(rec, key, "0");
  tw_jw_free(&r);
  if (g_manifest != NULL)
    fprintf(g_manifest, "%s\t%s\tintact\t-\n", rec, key);
}

/* ---- (e) jobwarden killed ------------------------------------------------ */

static void case_killed(void) {
  char key[TW_PATH_CHARS], rec[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t r, v;
  path_of(key, sizeof(key), "e", ".key");
  path_of(rec, sizeof(rec), "e-killed", ".jsonl");
  DeleteFileA(key);
  DeleteFileA(rec);
  snprintf(args, sizeof(args),
           "run --seal-key \"%s\" --export \"file:%s\" -- \"%s\" --helper sleep 60000", key, rec,
           g_self);
  CHECK_INT(
      tw_jw_start(&(tw_run_opts_t){.tag = "e", .args = args, .timeout_ms = RUN_TIMEOUT_MS}, &r), 0);
  /* Once the root's start is written, jobwarden dies. */
  {
    DWORD i;
    for (i = 0; i < 1000; i++) {
      char *t = tw_read_file(rec, NULL);
      int started = t != NULL && strstr(t, "\"event\":\"sandbox.process_start\"") != NULL &&
                    strstr(t, "}}\n") != NULL;
      free(t);
      if (started)
        break;
      Sleep(20);
    }
  }
  CHECK(TerminateProcess(r.pi.hProcess, 9));
  tw_jw_wait(&r);
  CHECK_U64(verify(&v, "e-verify", rec, key), 1);
  CHECK_CONTAINS(v.out, "verify: DAMAGED; the first bad line:\n  truncated: after ");
  CHECK_CONTAINS(v.out, "without its closing line (sandbox.job_end)");
  tw_jw_free(&v);
  {
    char targs[TW_CMD_CHARS];
    snprintf(targs, sizeof(targs), "tail --file \"%s\"", rec);
    seal_run(&v, "e-tail", targs, NULL);
    CHECK_U64(v.exit_code, 1); /* the record ends before sandbox.job_end */
    CHECK_CONTAINS(v.err, ": the record ends before sandbox.job_end");
  }
  tw_jw_free(&v);
  tw_jw_free(&r);
  if (g_manifest != NULL)
    fprintf(g_manifest, "%s\t%s\ttruncated\tafter\n", rec, key);
}

/* The records the cases share: a (case sealed_run) and c (existing_key),
 * their keys, and the manifest the native check reads. */
static char g_key[TW_PATH_CHARS], g_rec[TW_PATH_CHARS], g_key_c[TW_PATH_CHARS],
    g_rec_c[TW_PATH_CHARS];

static void test_sealed_run(void) {
  case_sealed_run(g_key, sizeof(g_key), g_rec, sizeof(g_rec));
  if (g_manifest != NULL)
    fprintf(g_manifest, "%s\t%s\tintact\t-\n", g_rec, g_key);
}

static void test_existing_key(void) {
  case_existing_key(g_key, g_rec_c, sizeof(g_rec_c));
  if (g_manifest != NULL)
    fprintf(g_manifest, "%s\t%s\tintact\t-\n", g_rec_c, g_key_c);
}

/* A case run alone makes the records it reads first (with their checks)
 * when they are not there. */
static void need(const char *path, void (*make)(void)) {
  if (GetFileAttributesA(path) == INVALID_FILE_ATTRIBUTES)
    make();
}

static void test_key_exists(void) {
  need(g_rec, test_sealed_run);
  case_key_exists(g_key);
}

static void test_damage(void) {
  need(g_rec, test_sealed_run);
  need(g_rec_c, test_existing_key);
  case_damage(g_key, g_rec, g_key_c);
}

static void test_agent_rewrites(void) {
  need(g_rec, test_sealed_run);
  case_agent_rewrites(g_key);
}

/* Runnable one by one: `win_seal.exe DATA EVENTS JOBWARDEN --case damage`. */
static const jw_test_case_t cases[] = {
    {"sealed_run", test_sealed_run, 60},         {"key_exists", test_key_exists, 60},
    {"existing_key", test_existing_key, 60},     {"damage", test_damage, 120},
    {"agent_rewrites", test_agent_rewrites, 60}, {"killed", case_killed, 60},
};

int main(int argc, char **argv) {
  char manifest[TW_PATH_CHARS];
  int rc;
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-seal-", g_events, g_jw, g_self) != 0)
    return 2;
  setvbuf(stdout, NULL, _IONBF, 0);
  path_of(g_key, sizeof(g_key), "a", ".key");
  path_of(g_rec, sizeof(g_rec), "a", ".jsonl");
  path_of(g_key_c, sizeof(g_key_c), "c", ".key");
  path_of(g_rec_c, sizeof(g_rec_c), "c", ".jsonl");
  path_of(manifest, sizeof(manifest), "manifest", ".txt");
  g_manifest = fopen(manifest, "wb");
  rc = TW_RUN_CASES("seal", argc, argv, cases);
  if (g_manifest != NULL)
    fclose(g_manifest);
  return rc;
}

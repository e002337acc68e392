/* wine.real.faults — a sink that fails for real while jobwarden runs:
 * Linux's /dev/full seen through Wine's Z: drive accepts the open and
 * fails every write with ERROR_DISK_FULL (112). The run must go on, the
 * program's exit code stays jobwarden's exit code, the other sink gets
 * every event plus an in-band sandbox.notice (sink_failed) naming the
 * broken sink, and stderr says what failed, where and why. */
#include "harness.h"
#include "rig.h"

static char g_dir[TW_PATH_CHARS]; /* the events directory (Windows path) */
static char g_jw[TW_PATH_CHARS];  /* jobwarden.exe (Windows path) */
static const char *g_raw = ".";   /* the events directory as given (Unix-style) */

/* Runs jobwarden.exe with args (tag names its files: wine-faults-TAG.*);
 * 0 and its exit code when it ended by itself within 30 s, else -1. Its
 * stderr goes to *err (malloc'd), the events of its file sink `log` to
 * *evs (a new reference; NULL when unreadable or torn). */
static int run_jobwarden(const char *tag, const char *args, const char *log, DWORD *code,
                         char **err, json_t **evs) {
  tw_run_t r;
  int rc =
      tw_jw_run(&(tw_run_opts_t){.tag = tag, .args = args, .events_path = log, .timeout_ms = 30000},
                &r)
          ? 0
          : -1;
  *code = r.exit_code;
  *err = r.err;
  *evs = json_incref(r.events);
  r.err = NULL;
  tw_jw_free(&r);
  return rc;
}

/* The policy file's "exporters" array is used when no --export is given,
 * and --export replaces it. */
static void test_policy_exporters(void) {
  const char *dir = g_raw;
  char pol[1024], a[1024], b[1024], args[3072], doc[2600], *err = NULL;
  DWORD code = 0;
  FILE *f;
  json_t *evs;
  snprintf(pol, sizeof(pol), "%s/faults-policy.json", dir);
  snprintf(a, sizeof(a), "%s/wine-faults-policy-a.jsonl", dir);
  snprintf(b, sizeof(b), "%s/wine-faults-policy-b.jsonl", dir);
  remove(a);
  remove(b);
  /* JSON strings: backslashes of Windows paths are not expected here (the
   * paths are Unix-style, seen through Z:). */
  snprintf(doc, sizeof(doc), "{\"tier\": \"hardened\", \"exporters\": [\"file:%s\"]}", a);
  f = fopen(pol, "wb");
  CHECK(f != NULL);
  if (f == NULL)
    return;
  fputs(doc, f);
  fclose(f);
  snprintf(args, sizeof(args), "run --policy \"%s\" -- \"%s\" --helper exit 4", pol,
           rig_self_utf8());
  CHECK_INT(run_jobwarden("policy-a", args, a, &code, &err, &evs), 0);
  free(err);
  CHECK_U64(code, 4);
  CHECK(evs != NULL);
  if (evs != NULL) {
    CHECK_STR(tw_str(json_array_get(evs, 0), "event"), "sandbox.job_start");
    CHECK_STR(tw_str(json_array_get(evs, 0), "job.tier"), "hardened");
    CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.root_exit_code"), 4);
    json_decref(evs);
  }
  remove(a);
  snprintf(args, sizeof(args), "run --policy \"%s\" --export \"file:%s\" -- \"%s\" --helper exit 5",
           pol, b, rig_self_utf8());
  CHECK_INT(run_jobwarden("policy-b", args, b, &code, &err, &evs), 0);
  free(err);
  CHECK_U64(code, 5);
  CHECK(GetFileAttributesA(a) == INVALID_FILE_ATTRIBUTES); /* replaced, not added to */
  CHECK(evs != NULL);
  if (evs != NULL) {
    CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.root_exit_code"), 5);
    json_decref(evs);
  }
  remove(pol);
}

/* A sink that fails for real beside one that works. */
static void test_sink_fails(void) {
  char good[1024], args[3072], *text = NULL;
  DWORD code = 0;
  json_t *evs, *n, *ev;
  size_t i;

  snprintf(good, sizeof(good), "%s/wine-faults-good.jsonl", g_raw);
  remove(good);
  snprintf(args, sizeof(args),
           "run --export \"file:Z:\\dev\\full\" --export \"file:%s\" -- \"%s\" --helper exit 3",
           good, rig_self_utf8());
  CHECK_INT(run_jobwarden("good", args, good, &code, &text, &evs), 0);
  CHECK_U64(code, 3); /* the program's code: a broken sink does not change it */

  CHECK_CONTAINS(text, "jobwarden: exporter 'file:Z:\\dev\\full' failed at event seq 1: write to "
                       "'file:Z:\\dev\\full' failed after 0 of ");
  CHECK_CONTAINS(text, "(Win32 error 112)");
  free(text);

  CHECK(evs != NULL);
  if (evs == NULL)
    return;
  json_array_foreach(evs, i, ev) CHECK_INT(tw_int(ev, "seq"), (long long)i + 1);
  CHECK_STR(tw_str(json_array_get(evs, 0), "event"), "sandbox.job_start");
  CHECK_STR(tw_str(json_array_get(evs, json_array_size(evs) - 1), "event"), "sandbox.job_end");
  CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.root_exit_code"), 3);
  n = tw_filter(evs, "sandbox.notice", "sink_failed");
  CHECK_INT(json_array_size(n), 1);
  if (json_array_size(n) == 1) {
    json_t *e = json_array_get(n, 0);
    CHECK_STR(tw_str(e, "action"), "degraded");
    CHECK_STR(tw_str(e, "severity"), "high");
    CHECK_STR(tw_str(e, "error.where"), "file:Z:\\dev\\full");
    CHECK_INT(tw_int(e, "error.win32_error"), 112);
    CHECK_INT(tw_int(e, "error.seq"), 1);
  }
  json_decref(n);
  n = tw_filter(evs, "sandbox.process_exit", "root_process");
  CHECK_INT(json_array_size(n), 1);
  json_decref(n);
  json_decref(evs);
}

/* Runnable one by one: `win_faults.exe DATA EVENTS JOBWARDEN --case sink_fails`. */
static const jw_test_case_t cases[] = {
    {"sink_fails", test_sink_fails, 60},
    {"policy_exporters", test_policy_exporters, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-faults-", g_dir, g_jw, NULL) != 0)
    return 2;
  g_raw = argv[2];
  return TW_RUN_CASES("faults_real", argc, argv, cases);
}

/* wine.real.faults — a sink that fails for real while jobwarden runs:
 * Linux's /dev/full seen through Wine's Z: drive accepts the open and
 * fails every write with ERROR_DISK_FULL (112). The run must go on, the
 * program's exit code stays jobwarden's exit code, the other sink gets
 * every event plus an in-band sandbox.notice (sink_failed) naming the
 * broken sink, and stderr says what failed, where and why. */
#include "harness.h"
#include "rig.h"

static int run_jobwarden(const char *jw, const char *args, const char *err_path, DWORD *code) {
  wchar_t cmd[4096];
  SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  wchar_t werr[1024];
  HANDLE herr;
  int rc = -1;
  MultiByteToWideChar(CP_UTF8, 0, err_path, -1, werr, 1024);
  herr = CreateFileW(werr, GENERIC_WRITE, FILE_SHARE_READ, &sa, CREATE_ALWAYS, 0, NULL);
  if (herr == INVALID_HANDLE_VALUE)
    return -1;
  swprintf(cmd, 4096, L"\"%hs\" %hs", jw, args);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  si.hStdOutput = herr;
  si.hStdError = herr;
  if (CreateProcessW(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
    if (WaitForSingleObject(pi.hProcess, 30000) == WAIT_OBJECT_0 &&
        GetExitCodeProcess(pi.hProcess, code))
      rc = 0;
    else
      TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  CloseHandle(herr);
  return rc;
}

/* The policy file's "exporters" array is used when no --export is given,
 * and --export replaces it. */
static void test_policy_exporters(const char *dir, const char *jw) {
  char pol[1024], a[1024], b[1024], errp[1024], args[3072], doc[2600];
  DWORD code = 0;
  FILE *f;
  json_t *evs;
  snprintf(pol, sizeof(pol), "%s/faults-policy.json", dir);
  snprintf(a, sizeof(a), "%s/wine-faults-policy-a.jsonl", dir);
  snprintf(b, sizeof(b), "%s/wine-faults-policy-b.jsonl", dir);
  snprintf(errp, sizeof(errp), "%s/wine-faults-policy.stderr", dir);
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
  CHECK_INT(run_jobwarden(jw, args, errp, &code), 0);
  CHECK_U64(code, 4);
  evs = tw_read_events(a);
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
  CHECK_INT(run_jobwarden(jw, args, errp, &code), 0);
  CHECK_U64(code, 5);
  CHECK(GetFileAttributesA(a) == INVALID_FILE_ATTRIBUTES); /* replaced, not added to */
  evs = tw_read_events(b);
  CHECK(evs != NULL);
  if (evs != NULL) {
    CHECK_INT(tw_int(json_array_get(evs, json_array_size(evs) - 1), "summary.root_exit_code"), 5);
    json_decref(evs);
  }
  remove(pol);
}

int main(int argc, char **argv) {
  const char *dir = argc > 2 ? argv[2] : ".";
  const char *jw = argc > 3 ? argv[3] : "jobwarden.exe";
  char good[1024], errp[1024], args[3072];
  DWORD code = 0;
  json_t *evs, *n, *ev;
  char *text;
  size_t i;

  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  snprintf(good, sizeof(good), "%s/wine-faults-good.jsonl", dir);
  snprintf(errp, sizeof(errp), "%s/wine-faults.stderr", dir);
  remove(good);
  snprintf(args, sizeof(args),
           "run --export \"file:Z:\\dev\\full\" --export \"file:%s\" -- \"%s\" --helper exit 3",
           good, rig_self_utf8());
  CHECK_INT(run_jobwarden(jw, args, errp, &code), 0);
  CHECK_U64(code, 3); /* the program's code: a broken sink does not change it */

  text = tw_read_file(errp, NULL);
  CHECK_CONTAINS(text, "jobwarden: exporter 'file:Z:\\dev\\full' failed at event seq 1: write to "
                       "'file:Z:\\dev\\full' failed after 0 of ");
  CHECK_CONTAINS(text, "(Win32 error 112)");
  free(text);

  evs = tw_read_events(good);
  CHECK(evs != NULL);
  if (evs == NULL)
    return jw_test_result("faults_real");
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
  test_policy_exporters(dir, jw);
  return jw_test_result("faults_real");
}

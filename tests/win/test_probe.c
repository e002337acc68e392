/* wine.real.probe: `jobwarden probe`, the real jobwarden.exe started as a
 * child process with its output redirected to files, and its canaries run
 * inside real jobs. Each case asserts every probe's exact result, error and
 * reason as Wine 8.0 gives them, the table, the JSON document and the exit
 * status. What Wine does not enforce (the active-process limit, memory and
 * CPU-time limits, every UI restriction) must come out `allowed` with exit
 * status 1: the probe reports honestly, it does not pass.
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. Outputs
 * go to <events dir>/wine-probe-<case>.stdout / .stderr.
 *
 * One case checks the table of checks itself: unique names, known canaries,
 * and the list in docs/probe.md the same as the table.
 *
 * One case (kill-on-close refused by a parent job) cannot happen for real
 * under Wine: it calls jw_probe() in this process with the refusal injected
 * through jw__job_set_info_hook, exactly as wine.injected.limits does for
 * `run`; its canaries are this executable (--probe-canary). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <jansson.h>

#include "cli.h"
#include "harness.h"
#include "helpers.h"
#include "win/win.h"

#define RUN_TIMEOUT_MS 60000

static char g_jw[TW_PATH_CHARS];     /* jobwarden.exe (Windows path) */
static char g_events[TW_PATH_CHARS]; /* the events directory (Windows path) */

static void case_path(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_events, "wine-probe-", tag, suffix);
}

/* ------------------------------------------------------------------------ */
/* Running jobwarden.exe                                                    */
/* ------------------------------------------------------------------------ */

/* The pipe_reader probe's refusal is ERROR_PIPE_NOT_CONNECTED (233), or
 * ERROR_BROKEN_PIPE (109) when the canary reads after jobwarden has closed
 * its end rather than while it disconnects: the same refusal, nothing read.
 * A table line with 109 is written as with 233 (out is reallocated) so that
 * one expected text fits both; the JSON is checked with both allowed
 * (w_reader_broken). */
static char *same_pipe_close(char *out, size_t *len) {
  static const char b[] = "[ERROR_BROKEN_PIPE, Win32 error 109]";
  static const char c[] = "[ERROR_PIPE_NOT_CONNECTED, Win32 error 233]";
  char *at = out != NULL ? strstr(out, b) : NULL, *n;
  size_t pre;
  if (at == NULL)
    return out;
  pre = (size_t)(at - out);
  n = malloc(*len - (sizeof(b) - 1) + (sizeof(c) - 1) + 1);
  if (n == NULL)
    return out;
  memcpy(n, out, pre);
  memcpy(n + pre, c, sizeof(c) - 1);
  strcpy(n + pre + sizeof(c) - 1, at + sizeof(b) - 1);
  *len = strlen(n);
  free(out);
  return n;
}

/* Runs `"<jobwarden>" <args>` to completion (tw_jw_run; `extra`, when
 * not NULL, is inherited too). */
static void run_jw(tw_run_t *r, const char *tag, const char *args, HANDLE extra) {
  CHECK(tw_jw_start(&(tw_run_opts_t){.tag = tag,
                                     .args = args,
                                     .extra = extra,
                                     .timeout_ms = RUN_TIMEOUT_MS,
                                     .retry_1359 = 1},
                    r) == 0);
  tw_jw_wait(r);
  CHECK(r->finished);
  r->out = same_pipe_close(r->out, &r->out_len);
}

/* ------------------------------------------------------------------------ */
/* Expected results                                                         */
/* ------------------------------------------------------------------------ */

/* One probe as Wine must report it. err_kind NULL: "error" is null. */
typedef struct {
  const char *name;
  const char *field; /* NULL: JSON null */
  int claimed;
  const char *claim;
  const char *result;
  const char *reason;
  const char *err_kind;
  long long err_code;
  const char *err_name; /* NULL: JSON null */
} want_t;

/* The job's restrictions (16), then jobwarden's own defences (11). */
#define N_JOB_PROBES  16
#define N_SELF_PROBES 11
#define N_PROBES      (N_JOB_PROBES + N_SELF_PROBES)

static const char *const probe_order[N_PROBES] = {"spawn",
                                                  "breakaway",
                                                  "process_memory",
                                                  "job_memory",
                                                  "process_cpu_time",
                                                  "job_cpu_time",
                                                  "ui.handles",
                                                  "ui.read_clipboard",
                                                  "ui.write_clipboard",
                                                  "ui.system_parameters",
                                                  "ui.display_settings",
                                                  "ui.global_atoms",
                                                  "ui.desktop",
                                                  "ui.exit_windows",
                                                  "handle_inheritance",
                                                  "kill_on_close",
                                                  "jobwarden.terminate",
                                                  "jobwarden.dup_handle",
                                                  "jobwarden.vm_read",
                                                  "parent_spoof",
                                                  "event_file.write",
                                                  "event_file.delete",
                                                  "event_file.rename",
                                                  "control_pipe",
                                                  "pipe_reader",
                                                  "token.integrity",
                                                  "token.privileges"};

/* Reasons that do not depend on the policy. */
#define R_BREAKAWAY                                                                                \
  "CreateProcessW with CREATE_BREAKAWAY_FROM_JOB failed: the child stays in the job"
#define R_INHERIT                                                                                  \
  "an inheritable handle of jobwarden was not inherited (SetEvent on the value of jobwarden's "    \
  "handle failed)"
#define R_KILL "closing the job's last handle killed the program"

/* Wine kills the members of a kill-on-close job with exit code 0. */
static const want_t w_kill = {"kill_on_close",
                              "kill_on_close",
                              1,
                              "the program dies with jobwarden",
                              "blocked",
                              R_KILL,
                              "exit_code",
                              0,
                              NULL};

/* jobwarden's own defences, the same in every tier: what this build gives
 * under Wine 8.0, measured. One row per probe, in probe order: when a
 * defence lands (a protected process DACL, the file sink sharing read only,
 * the pipe exporter refusing in-job readers, a restricted low-integrity
 * token), change its row here; every case's expected exit status, verdict
 * line and summary follow from these rows. The token probes' facts are in
 * want_facts below. */
#define R_SPOOF                                                                                    \
  "OpenProcess(PROCESS_CREATE_PROCESS) on jobwarden's process failed: the program cannot name it " \
  "as a parent"
#define R_READER "jobwarden's event pipe closed the connection before any event"
#define WINE_PRIVILEGES                                                                            \
  "SeChangeNotifyPrivilege, SeLoadDriverPrivilege, SeImpersonatePrivilege, "                       \
  "SeCreateGlobalPrivilege"
static const want_t self_wine[N_SELF_PROBES] = {
    {"jobwarden.terminate", NULL, 1, "the program cannot terminate jobwarden", "blocked",
     "OpenProcess(PROCESS_TERMINATE) on jobwarden's process failed", "win32", 5,
     "ERROR_ACCESS_DENIED"},
    {"jobwarden.dup_handle", NULL, 1, "the program cannot copy jobwarden's handles", "blocked",
     "OpenProcess(PROCESS_DUP_HANDLE) on jobwarden's process failed", "win32", 5,
     "ERROR_ACCESS_DENIED"},
    {"jobwarden.vm_read", NULL, 1, "the program cannot read jobwarden's memory", "blocked",
     "OpenProcess(PROCESS_VM_READ) on jobwarden's process failed", "win32", 5,
     "ERROR_ACCESS_DENIED"},
    {"parent_spoof", NULL, 1, "no process leaves the job by a spoofed parent", "blocked", R_SPOOF,
     "win32", 5, "ERROR_ACCESS_DENIED"},
    {"event_file.write", NULL, 1, "the program cannot write the event file", "blocked",
     "CreateFileW(GENERIC_WRITE) on jobwarden's event file failed", "win32", 32,
     "ERROR_SHARING_VIOLATION"},
    {"event_file.delete", NULL, 1, "the program cannot delete the event file", "blocked",
     "DeleteFileW on jobwarden's event file failed", "win32", 32, "ERROR_SHARING_VIOLATION"},
    {"event_file.rename", NULL, 1, "the program cannot rename the event file", "blocked",
     "MoveFileExW on jobwarden's event file failed", "win32", 32, "ERROR_SHARING_VIOLATION"},
    {"control_pipe", NULL, 1, "the program cannot control its own run", "blocked",
     "jobwarden's control pipe refused a ps request from inside the job (from_sandbox)", NULL, 0,
     NULL},
    /* The refused reader's read fails with 233, or with 109 when the
     * server's end is already closed (both: nothing read); see
     * same_pipe_close. */
    {"pipe_reader", NULL, 1, "the program cannot read the event pipe", "blocked", R_READER, "win32",
     233, "ERROR_PIPE_NOT_CONNECTED"},
    /* Lockdown's token (restricted_low): Wine keeps the program at High
     * integrity (not enforced) and honours the dropped privileges. */
    {"token.integrity", NULL, 1, "the program runs below medium integrity", "allowed",
     "the program runs at High integrity (S-1-16-12288), not below medium", NULL, 0, NULL},
    {"token.privileges", NULL, 1, "only SeChangeNotifyPrivilege is enabled", "blocked",
     "the program has 1 privilege(s) enabled: SeChangeNotifyPrivilege", NULL, 0, NULL},
};

/* The same refusal seen as ERROR_BROKEN_PIPE (the reader read after the
 * server had closed its end rather than while it disconnected). */
static const want_t w_reader_broken = {
    "pipe_reader",      NULL,     1,       "the program cannot read the event pipe",
    "blocked",          R_READER, "win32", 109,
    "ERROR_BROKEN_PIPE"};

/* The token probes where the policy's token is jobwarden's own (inherit:
 * every tier but lockdown): facts only, not claimed. */
static const want_t self_wine_inherit[2] = {
    {"token.integrity", NULL, 0, "not lowered", "skipped",
     "the policy does not lower the program's integrity; the program runs at High integrity "
     "(S-1-16-12288)",
     NULL, 0, NULL},
    {"token.privileges", NULL, 0, "not restricted", "skipped",
     "the policy does not restrict the program's privileges; the program has 4 privilege(s) "
     "enabled: " WINE_PRIVILEGES,
     NULL, 0, NULL},
};

/* The `facts` member of the probes that have one (JSON text); every other
 * probe's is null. */
static const struct {
  const char *name;
  const char *facts;
} want_facts[] = {
    {"token.integrity", "{\"integrity\": \"High\", \"integrity_sid\": \"S-1-16-12288\"}"},
    {"token.privileges",
     "{\"enabled_privileges\": [\"SeChangeNotifyPrivilege\", \"SeLoadDriverPrivilege\", "
     "\"SeImpersonatePrivilege\", \"SeCreateGlobalPrivilege\"]}"},
    /* The restricted token's (claimed): what is left. */
    {"token.privileges+", "{\"enabled_privileges\": [\"SeChangeNotifyPrivilege\"]}"},
};

/* Lockdown under Wine 8.0, measured: the job's restrictions. */
static const want_t lockdown[N_JOB_PROBES] = {
    {"spawn", "limits.active_processes", 1, "at most 1 active process", "allowed",
     "2 process(es) were active in the job at once (CreateProcessW)", NULL, 0, NULL},
    {"breakaway", "allow_breakaway", 1, "no process can leave the job", "blocked", R_BREAKAWAY,
     "win32", 5, "ERROR_ACCESS_DENIED"},
    {"process_memory", "limits.process_memory", 0, "unlimited", "skipped",
     "the policy sets no per-process memory limit", NULL, 0, NULL},
    {"job_memory", "limits.job_memory", 0, "unlimited", "skipped",
     "the policy sets no job memory limit", NULL, 0, NULL},
    {"process_cpu_time", "limits.process_cpu_time", 0, "unlimited", "skipped",
     "the policy sets no per-process CPU-time limit", NULL, 0, NULL},
    {"job_cpu_time", "limits.job_cpu_time", 0, "unlimited", "skipped",
     "the policy sets no job CPU-time limit", NULL, 0, NULL},
    {"ui.handles", "ui_restrictions", 1, "blocks using USER handles from outside the job",
     "allowed", "GetClassNameW read the class of a window owned by a process outside the job", NULL,
     0, NULL},
    {"ui.read_clipboard", "ui_restrictions", 1, "blocks reading the clipboard", "allowed",
     "GetClipboardData read the clipboard", NULL, 0, NULL},
    {"ui.write_clipboard", "ui_restrictions", 1, "blocks writing the clipboard", "allowed",
     "SetClipboardData wrote the clipboard", NULL, 0, NULL},
    {"ui.system_parameters", "ui_restrictions", 1, "blocks changing system parameters", "allowed",
     "SystemParametersInfoW(SPI_SETBEEP) changed a system parameter", NULL, 0, NULL},
    {"ui.display_settings", "ui_restrictions", 1, "blocks changing display settings", "skipped",
     "not probed: trying would change the display settings if it is not enforced", NULL, 0, NULL},
    {"ui.global_atoms", "ui_restrictions", 1, "blocks seeing global atoms from outside the job",
     "allowed", "GlobalFindAtomW found the global atom added outside the job", NULL, 0, NULL},
    {"ui.desktop", "ui_restrictions", 1, "blocks creating or switching desktops", "allowed",
     "CreateDesktopW created a desktop", NULL, 0, NULL},
    {"ui.exit_windows", "ui_restrictions", 1, "blocks logging off or shutting down Windows",
     "skipped", "not probed: trying would log off or shut down Windows if it is not enforced", NULL,
     0, NULL},
    {"handle_inheritance", NULL, 1, "only stdin, stdout and stderr are inherited", "blocked",
     R_INHERIT, "win32", 6, "ERROR_INVALID_HANDLE"},
    {"kill_on_close", "kill_on_close", 1, "the program dies with jobwarden", "blocked", R_KILL,
     "exit_code", 0, NULL},
};

static const char *const ui_words[8] = {"using USER handles from outside the job",
                                        "reading the clipboard",
                                        "writing the clipboard",
                                        "changing system parameters",
                                        "changing display settings",
                                        "seeing global atoms from outside the job",
                                        "creating or switching desktops",
                                        "logging off or shutting down Windows"};

/* Lockdown: the job's restrictions and jobwarden's own defences. */
static void want_lockdown(want_t *w) {
  memcpy(w, lockdown, sizeof(lockdown));
  memcpy(w + N_JOB_PROBES, self_wine, sizeof(self_wine));
}

/* The exit status the wanted results give: 1 when a claimed restriction is
 * allowed. */
static int want_status(const want_t *w) {
  int i;
  for (i = 0; i < N_PROBES; i++)
    if (w[i].claimed && strcmp(w[i].result, "allowed") == 0)
      return JW_EXIT_NOT_ENFORCED;
  return JW_EXIT_OK;
}

/* The table's last line for the wanted results, "\nverdict: ...\n". */
static void want_verdict(const want_t *w, char *buf, size_t size) {
  int i, blocked = 0, allowed = 0, skipped = 0, first = 1;
  size_t n;
  for (i = 0; i < N_PROBES; i++) {
    if (strcmp(w[i].result, "blocked") == 0)
      blocked++;
    else if (strcmp(w[i].result, "allowed") == 0)
      allowed++;
    else
      skipped++;
  }
  if (allowed == 0) {
    snprintf(buf, size,
             "\nverdict: every claimed restriction that could be probed is enforced (%d blocked, "
             "%d skipped)\n",
             blocked, skipped);
    return;
  }
  n = (size_t)snprintf(buf, size,
                       "\nverdict: NOT ENFORCED: %d claimed restriction%s allowed:", allowed,
                       allowed == 1 ? " is" : "s are");
  for (i = 0; i < N_PROBES && n < size; i++) {
    if (strcmp(w[i].result, "allowed") != 0)
      continue;
    n += (size_t)snprintf(buf + n, size - n, "%s%s", first ? " " : ", ", w[i].name);
    first = 0;
  }
  if (n < size)
    snprintf(buf + n, size - n, "\n");
}

/* Tier none (nothing set): only what every job has is claimed. */
static void want_none(want_t *w) {
  int i;
  want_lockdown(w);
  w[0] = (want_t){"spawn",   "limits.active_processes",
                  0,         "unlimited",
                  "skipped", "the policy sets no active-process limit",
                  NULL,      0,
                  NULL};
  for (i = 0; i < 8; i++) {
    static char reasons[8][96];
    snprintf(reasons[i], sizeof(reasons[i]), "the policy does not restrict %s", ui_words[i]);
    w[6 + i].claimed = 0;
    w[6 + i].claim = "not restricted";
    w[6 + i].result = "skipped";
    w[6 + i].reason = reasons[i];
  }
  /* Kill-on-close is on in tier none too (docs/policy.md): claimed and
   * blocked as in lockdown, w[15] as copied. The token is jobwarden's own. */
  w[N_PROBES - 2] = self_wine_inherit[0];
  w[N_PROBES - 1] = self_wine_inherit[1];
}

/* ------------------------------------------------------------------------ */
/* Checking a JSON document                                                 */
/* ------------------------------------------------------------------------ */

/* The probe's `facts`: as in want_facts, or null. */
static void check_facts(json_t *p, const want_t *w) {
  json_t *facts = json_object_get(p, "facts"), *want = NULL;
  const char *text = NULL, *name = w->name;
  char key[64];
  size_t i;
  CHECK(facts != NULL);
  /* A claimed restriction of the privileges leaves other facts. */
  snprintf(key, sizeof(key), "%s%s", name,
           strcmp(name, "token.privileges") == 0 && w->claimed ? "+" : "");
  for (i = 0; i < sizeof(want_facts) / sizeof(want_facts[0]); i++)
    if (strcmp(want_facts[i].name, key) == 0)
      text = want_facts[i].facts;
  if (text != NULL)
    want = json_loads(text, 0, NULL);
  if (want == NULL) {
    CHECK(text == NULL);
    CHECK(json_is_null(facts));
    return;
  }
  if (!json_equal(facts, want)) {
    char *got = json_dumps(facts, JSON_ENCODE_ANY);
    fprintf(stderr, "%s: facts %s, expected %s\n", name, got ? got : "?", text);
    free(got);
    CHECK(0);
  }
  json_decref(want);
}

static void check_probe_json(json_t *p, const want_t *w) {
  json_t *err = json_object_get(p, "error");
  const char *field = json_string_value(json_object_get(p, "field"));
  CHECK_STR(json_string_value(json_object_get(p, "name")), w->name);
  if (w->field == NULL)
    CHECK(json_is_null(json_object_get(p, "field")));
  else
    CHECK_STR(field, w->field);
  CHECK_INT(json_is_true(json_object_get(p, "claimed")), w->claimed);
  CHECK_STR(json_string_value(json_object_get(p, "claim")), w->claim);
  CHECK_STR(json_string_value(json_object_get(p, "result")), w->result);
  if (strcmp(w->result, "skipped") == 0)
    CHECK(json_is_null(json_object_get(p, "enforced")));
  else
    CHECK_INT(json_is_true(json_object_get(p, "enforced")), strcmp(w->result, "blocked") == 0);
  CHECK(json_is_boolean(json_object_get(p, "enforced")) ||
        json_is_null(json_object_get(p, "enforced")));
  CHECK_STR(json_string_value(json_object_get(p, "reason")), w->reason);
  if (w->err_kind == NULL) {
    CHECK(json_is_null(err));
  } else {
    CHECK(json_is_object(err));
    CHECK_STR(json_string_value(json_object_get(err, "kind")), w->err_kind);
    if (strcmp(w->name, "pipe_reader") == 0 &&
        json_integer_value(json_object_get(err, "code")) == 109)
      w = &w_reader_broken;
    CHECK_INT(json_integer_value(json_object_get(err, "code")), w->err_code);
    CHECK(json_is_integer(json_object_get(err, "code")));
    if (w->err_name == NULL)
      CHECK(json_is_null(json_object_get(err, "name")));
    else
      CHECK_STR(json_string_value(json_object_get(err, "name")), w->err_name);
    CHECK(json_is_string(json_object_get(err, "text")));
  }
  check_facts(p, w);
  CHECK_INT(json_object_size(p), 9);
}

/* Parses the whole stdout as one JSON document and checks it against want
 * (N_PROBES entries, in order), the summary, verdict and exit status. */
static json_t *check_document(const char *text, const want_t *want, const char *tier) {
  int exit_status = want_status(want);
  json_error_t jerr;
  json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr), *probes, *ne, *plat;
  size_t i, blocked = 0, allowed = 0, skipped = 0, n_ne = 0;
  CHECK(doc != NULL);
  if (doc == NULL) {
    fprintf(stderr, "invalid JSON: %s (line %d)\n", jerr.text, jerr.line);
    return NULL;
  }
  CHECK_INT(json_integer_value(json_object_get(doc, "probe_version")), 1);
  CHECK_STR(json_string_value(json_object_get(doc, "jobwarden")), JW_VERSION);
  plat = json_object_get(doc, "platform");
  CHECK_STR(json_string_value(json_object_get(plat, "wine")), "8.0");
  CHECK(json_is_string(json_object_get(plat, "windows_version")));
  CHECK_STR(json_string_value(json_object_get(doc, "tier")), tier);
  CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "policy"), "tier")), tier);
  probes = json_object_get(doc, "probes");
  CHECK(json_is_array(probes));
  CHECK_INT(json_array_size(probes), N_PROBES);
  for (i = 0; i < N_PROBES && i < json_array_size(probes); i++) {
    CHECK_STR(want[i].name, probe_order[i]);
    check_probe_json(json_array_get(probes, i), &want[i]);
    if (strcmp(want[i].result, "blocked") == 0)
      blocked++;
    else if (strcmp(want[i].result, "allowed") == 0)
      allowed++;
    else
      skipped++;
  }
  CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "summary"), "blocked")),
            blocked);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "summary"), "allowed")),
            allowed);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "summary"), "skipped")),
            skipped);
  ne = json_object_get(doc, "not_enforced");
  CHECK(json_is_array(ne));
  for (i = 0; i < N_PROBES; i++) {
    if (strcmp(want[i].result, "allowed") != 0)
      continue;
    CHECK_STR(json_string_value(json_array_get(ne, n_ne)), want[i].name);
    n_ne++;
  }
  CHECK_INT(json_array_size(ne), n_ne);
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")),
            exit_status == 0 ? "enforced" : "not_enforced");
  CHECK_INT(json_integer_value(json_object_get(doc, "exit_status")), exit_status);
  CHECK_INT(json_object_size(doc), 10);
  return doc;
}

/* The table line jobwarden prints for a probe. */
static void table_line(const want_t *w, char *buf, size_t size) {
  char err[128] = "";
  if (w->err_kind != NULL && strcmp(w->err_kind, "win32") == 0)
    snprintf(err, sizeof(err), " [%s, Win32 error %lld]", w->err_name, w->err_code);
  else if (w->err_kind != NULL)
    snprintf(err, sizeof(err), " [exit code 0x%08llX%s%s]", w->err_code, w->err_name ? ", " : "",
             w->err_name ? w->err_name : "");
  snprintf(buf, size, "%-20s %-48s %-8s %s%s\n", w->name, w->claim, w->result, w->reason, err);
}

/* ------------------------------------------------------------------------ */
/* Cases                                                                    */
/* ------------------------------------------------------------------------ */

/* 1. Default (lockdown), readable table: exit 1, every line exact. */
static void case_lockdown_table(void) {
  tw_run_t r;
  char line[1200], expect[8192], head[128];
  size_t i;
  want_t w[N_PROBES];
  want_lockdown(w);
  run_jw(&r, "lockdown-table", "probe", NULL);
  CHECK_U64(r.exit_code, want_status(w));
  CHECK_INT(r.err_len, 0);
  expect[0] = '\0';
  snprintf(head, sizeof(head), "%-20s %-48s %-8s %s\n", "PROBE", "CLAIM", "RESULT", "DETAILS");
  strcat(expect, head);
  for (i = 0; i < N_PROBES; i++) {
    table_line(&w[i], line, sizeof(line));
    strcat(expect, line);
  }
  want_verdict(w, line, sizeof(line));
  strcat(expect, line);
  /* The first line names the platform; the rest is the table. */
  CHECK(strncmp(r.out, "jobwarden probe: tier lockdown, Windows ", 40) == 0);
  CHECK_CONTAINS(r.out, " (Wine 8.0)\n\n");
  {
    const char *body = strstr(r.out, "\n\n");
    CHECK_STR(body ? body + 2 : NULL, expect);
  }
  tw_jw_free(&r);
}

/* 2. Default (lockdown) as JSON. */
static void case_lockdown_json(void) {
  tw_run_t r;
  json_t *doc;
  want_t w[N_PROBES];
  want_lockdown(w);
  run_jw(&r, "lockdown-json", "probe --json", NULL);
  CHECK_U64(r.exit_code, want_status(w));
  CHECK_INT(r.err_len, 0);
  doc = check_document(r.out, w, "lockdown");
  if (doc != NULL) {
    json_t *lim = json_object_get(json_object_get(doc, "policy"), "limits");
    CHECK_INT(json_integer_value(json_object_get(lim, "active_processes")), 1);
    CHECK_INT(json_is_true(json_object_get(json_object_get(doc, "policy"), "kill_on_close")), 1);
  }
  json_decref(doc);
  tw_jw_free(&r);
}

/* 3. Tier none: only breakaway (no BREAKAWAY_OK in any job), handle
 * inheritance (jobwarden's own) and kill-on-close (on in every tier) are
 * claimed, all enforced: exit 0. */
static void case_none(void) {
  tw_run_t r;
  want_t w[N_PROBES];
  json_t *doc;
  want_none(w);
  run_jw(&r, "none-json", "probe --tier none --json", NULL);
  CHECK_U64(r.exit_code, want_status(w));
  CHECK_INT(r.err_len, 0);
  doc = check_document(r.out, w, "none");
  json_decref(doc);
  tw_jw_free(&r);

  run_jw(&r, "none-table", "probe --tier none", NULL);
  CHECK_U64(r.exit_code, want_status(w));
  {
    char verdict[1024], tail[1040];
    want_verdict(w, verdict, sizeof(verdict));
    snprintf(tail, sizeof(tail), "\n%s", verdict);
    CHECK_CONTAINS(r.out, tail);
  }
  tw_jw_free(&r);
}

/* 4. Flags claiming every limit Wine accepts but does not enforce: each is
 * probed for real and comes out allowed. */
static void case_limits(void) {
  tw_run_t r;
  want_t w[N_PROBES];
  json_t *doc;
  want_none(w);
  w[0] = (want_t){"spawn",   "limits.active_processes",
                  1,         "at most 3 active processes",
                  "allowed", "4 process(es) were active in the job at once (CreateProcessW)",
                  NULL,      0,
                  NULL};
  w[2] = (want_t){"process_memory",
                  "limits.process_memory",
                  1,
                  "at most 64M committed per process",
                  "allowed",
                  "committed 68157440 bytes (more than the limit) in one VirtualAlloc",
                  NULL,
                  0,
                  NULL};
  w[3] = (want_t){"job_memory",
                  "limits.job_memory",
                  1,
                  "at most 128M committed by the job",
                  "allowed",
                  "committed 135266304 bytes (more than the limit) in one VirtualAlloc",
                  NULL,
                  0,
                  NULL};
  w[4] = (want_t){"process_cpu_time",
                  "limits.process_cpu_time",
                  1,
                  "at most 500ms user CPU time per process",
                  "allowed",
                  "used at least 1500 ms of user-mode CPU time and was not stopped",
                  NULL,
                  0,
                  NULL};
  w[5] = (want_t){"job_cpu_time",
                  "limits.job_cpu_time",
                  1,
                  "at most 1s user CPU time for the job",
                  "allowed",
                  "used at least 2000 ms of user-mode CPU time and was not stopped",
                  NULL,
                  0,
                  NULL};
  w[11] = lockdown[11]; /* ui.global_atoms, allowed */
  w[15] = w_kill;
  run_jw(&r, "limits",
         "probe --tier none --active-processes 3 --process-memory 64M --job-memory=128M "
         "--process-cpu-time 500ms --job-cpu-time 1s --ui-restrictions global_atoms "
         "--kill-on-close --json",
         NULL);
  CHECK_U64(r.exit_code, want_status(w));
  CHECK_INT(r.err_len, 0);
  doc = check_document(r.out, w, "none");
  json_decref(doc);
  tw_jw_free(&r);
}

/* 5. A policy file whose every claim Wine enforces: hardened with
 * breakaway allowed. Exit 0 with claimed restrictions blocked. */
static void case_policy_file(void) {
  tw_run_t r;
  want_t w[N_PROBES];
  char path[TW_PATH_CHARS], args[TW_CMD_CHARS];
  FILE *f;
  json_t *doc;
  case_path(path, sizeof(path), "hardened", ".policy.json");
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fputs("{\"tier\": \"hardened\", \"allow_breakaway\": true}\n", f);
    fclose(f);
  }
  want_none(w);
  w[1] = (want_t){"breakaway", "allow_breakaway",
                  0,           "breakaway allowed",
                  "skipped",   "the policy allows breakaway",
                  NULL,        0,
                  NULL};
  w[15] = w_kill;
  snprintf(args, sizeof(args), "probe --policy \"%s\" --json", path);
  run_jw(&r, "hardened", args, NULL);
  CHECK_U64(r.exit_code, want_status(w));
  CHECK_INT(r.err_len, 0);
  doc = check_document(r.out, w, "hardened");
  json_decref(doc);
  tw_jw_free(&r);
}

/* 6. Limits the probe will not try (too much CPU, more memory than the
 * machine has) are skipped with the reason, and never fail the verdict. */
static void case_unprobeable(void) {
  tw_run_t r;
  json_t *doc, *probes, *p, *ne;
  json_error_t jerr;
  want_t w[N_PROBES];
  int i, skipped = 0;
  size_t k = 0;
  /* Skipped like tier none's unclaimed limits; the rest as in tier none. */
  want_none(w);
  for (i = 0; i < N_PROBES; i++)
    skipped += strcmp(w[i].result, "skipped") == 0;
  run_jw(&r, "unprobeable",
         "probe --tier none --process-memory 16T --job-cpu-time 30s --active-processes 100 --json",
         NULL);
  CHECK_U64(r.exit_code, want_status(w));
  doc = json_loads(r.out, 0, &jerr);
  CHECK(doc != NULL);
  probes = json_object_get(doc, "probes");
  p = json_array_get(probes, 0);
  CHECK_STR(json_string_value(json_object_get(p, "result")), "skipped");
  CHECK_INT(json_is_true(json_object_get(p, "claimed")), 1);
  CHECK_STR(json_string_value(json_object_get(p, "claim")), "at most 100 active processes");
  CHECK_STR(json_string_value(json_object_get(p, "reason")),
            "the limit (100) is above the 32 processes the probe starts at most");
  p = json_array_get(probes, 2);
  CHECK_STR(json_string_value(json_object_get(p, "result")), "skipped");
  CHECK_STR(json_string_value(json_object_get(p, "claim")), "at most 16T committed per process");
  CHECK_CONTAINS(json_string_value(json_object_get(p, "reason")),
                 "the limit is more than this machine can commit now (about ");
  CHECK_CONTAINS(json_string_value(json_object_get(p, "reason")),
                 "); a failed allocation would prove nothing");
  p = json_array_get(probes, 5);
  CHECK_STR(json_string_value(json_object_get(p, "result")), "skipped");
  CHECK_STR(json_string_value(json_object_get(p, "claim")),
            "at most 30s user CPU time for the job");
  CHECK_STR(json_string_value(json_object_get(p, "reason")),
            "the limit is above the 10 s of CPU time the probe burns at most; probe with a "
            "smaller limit (e.g. --job-cpu-time 1s)");
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")),
            want_status(w) == JW_EXIT_OK ? "enforced" : "not_enforced");
  CHECK_INT(json_integer_value(json_object_get(json_object_get(doc, "summary"), "skipped")),
            skipped);
  /* The skipped claims are not in not_enforced: only what tier none has. */
  ne = json_object_get(doc, "not_enforced");
  for (i = 0; i < N_PROBES; i++)
    if (strcmp(w[i].result, "allowed") == 0)
      CHECK_STR(json_string_value(json_array_get(ne, k++)), w[i].name);
  CHECK_INT(json_array_size(ne), k);
  json_decref(doc);
  tw_jw_free(&r);
}

/* 7. Usage errors exit 125 with the message, and print no table. */
static void case_usage(void) {
  tw_run_t r;
  run_jw(&r, "usage-option", "probe --bogus", NULL);
  CHECK_U64(r.exit_code, JW_EXIT_JW_ERROR);
  CHECK_INT(r.out_len, 0);
  CHECK_STR(r.err, "jobwarden: probe: unknown option '--bogus' (see jobwarden --help)\n");
  tw_jw_free(&r);
  run_jw(&r, "usage-arg", "probe extra", NULL);
  CHECK_U64(r.exit_code, JW_EXIT_JW_ERROR);
  CHECK_INT(r.out_len, 0);
  CHECK_STR(r.err, "jobwarden: probe: unexpected argument 'extra' (see jobwarden --help)\n");
  tw_jw_free(&r);
  run_jw(&r, "usage-memory", "probe --process-memory 0", NULL);
  CHECK_U64(r.exit_code, JW_EXIT_JW_ERROR);
  CHECK_INT(r.out_len, 0);
  CHECK_CONTAINS(r.err, "jobwarden: --process-memory: ");
  tw_jw_free(&r);
}

/* 8. Positive controls: the canaries detect what they look for when it is
 * there, so a `blocked` is not a canary that cannot see. Outside any job,
 * breakaway succeeds; a handle that really is inherited is found. And an
 * unknown canary is an error, not a result. */
static void case_canary_controls(void) {
  tw_run_t r;
  SECURITY_ATTRIBUTES sa;
  HANDLE ev;
  char args[128];
  run_jw(&r, "canary-breakaway", "--probe-canary breakaway", NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_STR(r.out, "allowed 0 CreateProcessW with CREATE_BREAKAWAY_FROM_JOB succeeded: a child "
                   "left the job\n");
  tw_jw_free(&r);

  sa.nLength = sizeof(sa);
  sa.lpSecurityDescriptor = NULL;
  sa.bInheritHandle = TRUE;
  ev = CreateEventW(&sa, TRUE, FALSE, NULL);
  CHECK(ev != NULL);
  snprintf(args, sizeof(args), "--probe-canary inherit %llu", (unsigned long long)(uintptr_t)ev);
  run_jw(&r, "canary-inherit", args, ev);
  CHECK_U64(r.exit_code, 0);
  CHECK_STR(r.out, "allowed 0 SetEvent on the value of jobwarden's handle succeeded\n");
  CHECK_INT(WaitForSingleObject(ev, 0), WAIT_OBJECT_0);
  CloseHandle(ev);
  tw_jw_free(&r);

  /* The event-file canaries see a refusal when there is one: a file held
   * open sharing read only (what a file sink that protects its record
   * does) cannot be opened for writing, deleted or renamed from another
   * process under Wine (ERROR_SHARING_VIOLATION). */
  {
    static const char *const actions[3] = {"write", "delete", "rename"};
    static const char *const lines[3] = {
        "blocked 32 CreateFileW(GENERIC_WRITE) on jobwarden's event file failed\n",
        "blocked 32 DeleteFileW on jobwarden's event file failed\n",
        "blocked 32 MoveFileExW on jobwarden's event file failed\n"};
    char path[TW_PATH_CHARS], tag[64];
    HANDLE held;
    int i;
    case_path(path, sizeof(path), "held", ".jsonl");
    held = CreateFileA(path, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ, NULL, CREATE_ALWAYS,
                       0, NULL);
    CHECK(held != INVALID_HANDLE_VALUE);
    for (i = 0; i < 3; i++) {
      snprintf(tag, sizeof(tag), "canary-file-%s", actions[i]);
      if (i < 2) /* write and delete take the path only */
        snprintf(args, sizeof(args), "--probe-canary event-file %s \"%s\"", actions[i], path);
      else
        snprintf(args, sizeof(args), "--probe-canary event-file %s \"%s\" \"%s.renamed\"",
                 actions[i], path, path);
      run_jw(&r, tag, args, NULL);
      CHECK_U64(r.exit_code, 0);
      CHECK_STR(r.out, lines[i]);
      tw_jw_free(&r);
    }
    CHECK(GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES);
    CloseHandle(held);
    DeleteFileA(path);
  }

  /* Nothing to reach: each canary reports the Win32 error it met. */
  {
    static const struct {
      const char *tag, *args, *out;
    } none[] = {
        {"canary-open-none", "--probe-canary open-process 4294967280 terminate",
         "blocked 87 OpenProcess(PROCESS_TERMINATE) on jobwarden's process failed\n"},
        {"canary-spoof-none", "--probe-canary parent-spoof 4294967280",
         "blocked 87 OpenProcess(PROCESS_CREATE_PROCESS) on jobwarden's process failed: the "
         "program cannot name it as a parent\n"},
        {"canary-control-none", "--probe-canary control jobwarden-probe-test-none",
         "blocked 2 connecting to jobwarden's control pipe failed\n"},
        {"canary-pipe-none", "--probe-canary pipe-reader jobwarden-probe-test-none",
         "blocked 2 connecting to jobwarden's event pipe failed\n"},
    };
    size_t i;
    for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
      run_jw(&r, none[i].tag, none[i].args, NULL);
      CHECK_U64(r.exit_code, 0);
      CHECK_STR(r.out, none[i].out);
      tw_jw_free(&r);
    }
  }

  /* Outside any job the canary's token is the one it has inside the job:
   * Wine gives every process its user's full token. */
  run_jw(&r, "canary-token", "--probe-canary token", NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK_STR(r.out, "facts 0 12288 SeChangeNotifyPrivilege,SeLoadDriverPrivilege,"
                   "SeImpersonatePrivilege,SeCreateGlobalPrivilege\n");
  tw_jw_free(&r);

  run_jw(&r, "canary-unknown", "--probe-canary nonsense", NULL);
  CHECK_U64(r.exit_code, 2);
  CHECK_STR(r.out, "error 0 unknown canary 'nonsense' or wrong arguments\n");
  tw_jw_free(&r);
}

/* The test prefix's clipboard: emptied (ownerless), or given "user data"
 * as a user's copy would, with a window of this process as its owner. */
static HWND g_clip_window;
static int clipboard_set(const wchar_t *text) {
  int ok = 0;
  if (g_clip_window == NULL) {
    WNDCLASSEXW wc;
    memset(&wc, 0, sizeof(wc));
    wc.cbSize = sizeof(wc);
    wc.lpfnWndProc = DefWindowProcW;
    wc.hInstance = GetModuleHandleW(NULL);
    wc.lpszClassName = L"test-probe-clip";
    RegisterClassExW(&wc);
    g_clip_window = CreateWindowExW(0, L"test-probe-clip", L"", 0, 0, 0, 0, 0, HWND_MESSAGE, NULL,
                                    wc.hInstance, NULL);
  }
  if (!OpenClipboard(text ? g_clip_window : NULL))
    return -1;
  if (EmptyClipboard()) {
    ok = 1;
    if (text != NULL) {
      size_t size = (wcslen(text) + 1) * sizeof(wchar_t);
      HGLOBAL g = GlobalAlloc(GMEM_MOVEABLE, size);
      void *m = g ? GlobalLock(g) : NULL;
      ok = 0;
      if (m != NULL) {
        memcpy(m, text, size);
        GlobalUnlock(g);
        ok = SetClipboardData(CF_UNICODETEXT, g) != NULL;
      }
    }
  }
  CloseClipboard();
  return ok ? 0 : -1;
}

/* The clipboard's text and number of formats ("" and 0 when empty). */
static int clipboard_get(wchar_t *buf, size_t n) {
  int count;
  HANDLE h;
  buf[0] = 0;
  if (!OpenClipboard(NULL))
    return -1;
  count = CountClipboardFormats();
  h = GetClipboardData(CF_UNICODETEXT);
  if (h != NULL) {
    const wchar_t *s = GlobalLock(h);
    if (s != NULL) {
      wcsncpy(buf, s, n - 1);
      buf[n - 1] = 0;
      GlobalUnlock(h);
    }
  }
  CloseClipboard();
  return count;
}

/* 9. The clipboard probes never destroy what the user copied: with data on
 * the clipboard, reading is probed on that data, writing is skipped, and
 * the data is still there afterwards. On an empty clipboard the probe's
 * marker is removed again. */
static void case_clipboard(void) {
  tw_run_t r;
  json_t *doc, *probes;
  wchar_t text[64];
  int count;
  CHECK_INT(clipboard_set(L"user data"), 0);
  run_jw(&r, "clipboard-user",
         "probe --tier none --ui-restrictions read_clipboard,write_clipboard --json", NULL);
  CHECK_U64(r.exit_code, JW_EXIT_NOT_ENFORCED);
  doc = json_loads(r.out, 0, NULL);
  probes = json_object_get(doc, "probes");
  CHECK_STR(json_string_value(json_object_get(json_array_get(probes, 7), "result")), "allowed");
  CHECK_STR(json_string_value(json_object_get(json_array_get(probes, 7), "reason")),
            "GetClipboardData read the clipboard");
  CHECK_STR(json_string_value(json_object_get(json_array_get(probes, 8), "result")), "skipped");
  CHECK_STR(json_string_value(json_object_get(json_array_get(probes, 8), "reason")),
            "not probed: the clipboard holds data that writing would replace; run the probe with "
            "an empty clipboard");
  json_decref(doc);
  count = clipboard_get(text, 64);
  CHECK(count >= 1);
  CHECK(wcscmp(text, L"user data") == 0);
  tw_jw_free(&r);

  CHECK_INT(clipboard_set(NULL), 0);
  run_jw(&r, "clipboard-empty",
         "probe --tier none --ui-restrictions read_clipboard,write_clipboard", NULL);
  CHECK_U64(r.exit_code, JW_EXIT_NOT_ENFORCED);
  {
    want_t w[N_PROBES];
    char verdict[1024];
    want_none(w);
    w[7] = lockdown[7];
    w[8] = lockdown[8];
    want_verdict(w, verdict, sizeof(verdict));
    CHECK_CONTAINS(r.out, verdict);
  }
  CHECK_INT(clipboard_get(text, 64), 0);
  tw_jw_free(&r);
}

/* 10. Injected: a parent job refuses KILL_ON_JOB_CLOSE with
 * ERROR_INVALID_PARAMETER (what Windows does in CI runners). jw_job_create
 * carries on without it, and the probe must say the claim is not enforced. */
static BOOL WINAPI refuse_kill_on_close(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info,
                                        DWORD len) {
  if (cls == JobObjectExtendedLimitInformation &&
      (((JOBOBJECT_EXTENDED_LIMIT_INFORMATION *)info)->BasicLimitInformation.LimitFlags &
       JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)) {
    SetLastError(ERROR_INVALID_PARAMETER);
    return FALSE;
  }
  return SetInformationJobObject(job, cls, info, len);
}

static void case_kill_on_close_refused(void) {
  jw_policy_t pol;
  jw_error_t err;
  want_t w[N_PROBES];
  char path[TW_PATH_CHARS];
  HANDLE out, saved;
  int status;
  char *text;
  size_t len = 0;
  json_t *doc;

  jw_policy_init(&pol);
  CHECK_INT(jw_policy_set(&pol, "tier", "hardened", "test", &err), 0);
  case_path(path, sizeof(path), "refused", ".stdout");
  out = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, 0, NULL);
  CHECK(out != INVALID_HANDLE_VALUE);
  saved = GetStdHandle(STD_OUTPUT_HANDLE);
  SetStdHandle(STD_OUTPUT_HANDLE, out);
  jw__job_set_info_hook(refuse_kill_on_close);
  status = jw_probe(&pol, 1);
  jw__job_set_info_hook(NULL);
  SetStdHandle(STD_OUTPUT_HANDLE, saved);
  CloseHandle(out);
  text = tw_read_file(path, &len);
  CHECK(text != NULL);
  want_none(w);
  w[15] = (want_t){"kill_on_close",
                   "kill_on_close",
                   1,
                   "the program dies with jobwarden",
                   "allowed",
                   "KILL_ON_JOB_CLOSE was refused (jobwarden runs in a job that forbids it): the "
                   "program would outlive jobwarden",
                   "win32",
                   87,
                   "ERROR_INVALID_PARAMETER"};
  CHECK_INT(status, want_status(w));
  doc = check_document(text ? text : "", w, "hardened");
  json_decref(doc);
  free(text);
}

/* The table of checks (src/win/probe.c checks[]): its names are unique,
 * every check's canary is one --probe-canary knows, and the list of checks
 * in docs/probe.md (the rows "| `NAME` | ..." of its table under "## The
 * probes", and its "always all N") is the table's, name for name, in the
 * table's order. docs: the path of docs/probe.md. */
static void case_table(const char *docs) {
  const char *names[64], *doc_names[64];
  char doc_buf[64][48];
  size_t n = 0, n_doc = 0, i, j, all = 0;
  const char *name, *canary;
  char line[4096];
  int in_section = 0;
  FILE *f;
  while (n < 64 && jw__probe_check_info(n, &name, &canary) == 0) {
    names[n++] = name;
    if (canary != NULL && !jw__probe_canary_known(canary)) {
      CHECK(!"a check starts a canary --probe-canary does not know");
      fprintf(stderr, "check %s: canary '%s'\n", name, canary);
    }
  }
  CHECK(jw__probe_canary_known("sleep") && !jw__probe_canary_known("no-such-canary"));
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) == 0) {
        CHECK(!"two checks have the same name");
        fprintf(stderr, "check name '%s' at %lu and %lu\n", names[i], (unsigned long)i,
                (unsigned long)j);
      }
  f = fopen(docs, "rb");
  CHECK(f != NULL);
  while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
    const char *at;
    if (strncmp(line, "## ", 3) == 0)
      in_section = strncmp(line, "## The probes", 13) == 0;
    if (in_section && strncmp(line, "| `", 3) == 0 && n_doc < 64) {
      const char *end = strchr(line + 3, '`');
      size_t len = end != NULL ? (size_t)(end - (line + 3)) : 0;
      CHECK(len > 0 && len < sizeof(doc_buf[0]));
      if (len > 0 && len < sizeof(doc_buf[0])) {
        memcpy(doc_buf[n_doc], line + 3, len);
        doc_buf[n_doc][len] = '\0';
        doc_names[n_doc] = doc_buf[n_doc];
        n_doc++;
      }
    }
    if ((at = strstr(line, "always all ")) != NULL)
      all = strtoul(at + 11, NULL, 10);
  }
  if (f != NULL)
    fclose(f);
  for (i = 0; i < n_doc; i++) {
    for (j = 0; j < n && strcmp(doc_names[i], names[j]) != 0; j++)
      ;
    if (j == n) {
      CHECK(!"docs/probe.md lists a check the table does not have");
      fprintf(stderr, "docs: '%s'\n", doc_names[i]);
    }
  }
  for (j = 0; j < n; j++) {
    for (i = 0; i < n_doc && strcmp(doc_names[i], names[j]) != 0; i++)
      ;
    if (i == n_doc) {
      CHECK(!"a check of the table is not in docs/probe.md's list");
      fprintf(stderr, "table: '%s'\n", names[j]);
    }
  }
  CHECK_INT(n_doc, n);
  for (i = 0; i < n && i < n_doc; i++)
    CHECK_STR(doc_names[i], names[i]);
  CHECK_U64(all, n);
}

static char g_docs[TW_PATH_CHARS + 32]; /* docs/probe.md */

static void case_docs_table(void) {
  case_table(g_docs);
}

/* Runnable one by one: `win_probe.exe DATA EVENTS JOBWARDEN --case limits`. */
static const jw_test_case_t cases[] = {
    {"table", case_docs_table, 60},
    {"lockdown_table", case_lockdown_table, 60},
    {"lockdown_json", case_lockdown_json, 60},
    {"none", case_none, 60},
    {"limits", case_limits, 70},
    {"policy_file", case_policy_file, 60},
    {"unprobeable", case_unprobeable, 60},
    {"usage", case_usage, 60},
    {"canary_controls", case_canary_controls, 120},
    {"clipboard", case_clipboard, 60},
    {"kill_on_close_refused", case_kill_on_close_refused, 60},
};

int main(int argc, char **argv) {
  int rc;
  /* The in-process case's canaries are this executable. */
  if (argc >= 2 && strcmp(argv[1], "--probe-canary") == 0)
    return jw__probe_canary_main(argc - 2, argv + 2);
  if (tw_test_setup(argc, argv, "wine-probe-", g_events, g_jw, NULL) != 0)
    return 2;
  CHECK(GetFileAttributesA(g_jw) != INVALID_FILE_ATTRIBUTES);

  {
    /* argv[1] is tests/data: the docs are two levels up. */
    char data[TW_PATH_CHARS];
    CHECK_INT(tw_full_path(argv[1], data, sizeof(data)), 0);
    snprintf(g_docs, sizeof(g_docs), "%s\\..\\..\\docs\\probe.md", data);
  }
  /* The lockdown cases probe writing the clipboard: it must be empty. */
  CHECK_INT(clipboard_set(NULL), 0);
  rc = TW_RUN_CASES("probe", argc, argv, cases);
  if (g_clip_window != NULL)
    DestroyWindow(g_clip_window);
  return rc;
}

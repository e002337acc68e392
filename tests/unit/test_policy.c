/* Unit tests of the policy: file format, command-line values, error texts,
 * tiers, rendering and the size/duration syntax.
 * argv[1] is tests/data, argv[2] a directory the test may write to. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "jobwarden.h"
#include "internal.h"
#include "test_util.h"

static const char *data_dir = ".";
static const char *out_dir = ".";

#define LIMIT_KEYS                                                                                 \
  "active_processes, process_memory, job_memory, process_cpu_time, "                               \
  "job_cpu_time, notification_margin"
#define TOP_KEYS                                                                                   \
  "version, name, tier, limits, ui_restrictions, kill_on_close, "                                  \
  "die_on_unhandled_exception, allow_breakaway, token, exporters, rules, seal"
#define SET_KEYS                                                                                   \
  "name, tier, " LIMIT_KEYS ", ui_restrictions, kill_on_close, "                                   \
  "die_on_unhandled_exception, allow_breakaway, timeout, timeout_action, "                         \
  "max_total_processes, total_processes_action, deny_image, allow_image, image_action, "           \
  "image_hash_cap, active_processes_action, escape_action, escape_scan_interval, "                 \
  "coalesce_window, timeout_tags, total_processes_tags, images_tags, active_processes_tags, "      \
  "escape_tags, token, seal_key, seal_key_existing"
#define UI_LIST                                                                                    \
  "\"handles\", \"read_clipboard\", \"write_clipboard\", "                                         \
  "\"system_parameters\", \"display_settings\", \"global_atoms\", "                                \
  "\"desktop\", \"exit_windows\""
#define EXPECT_SIZE     "expected a size like \"512M\""
#define EXPECT_DURATION "expected a duration with a unit, like \"500ms\", \"30s\", \"5m\" or \"2h\""
#define EXPECT_COUNT    "expected an integer from 1 to 65535 or \"unlimited\""
#define EXPECT_TIER     "expected one of \"none\", \"hardened\", \"lockdown\""
#define EXPECT_NAME     "expected a name of 1 to 63 characters from [A-Za-z0-9._-]"

/* Prints which case failed, since the CHECKs sit in shared helpers. */
static void note_case(int failures_before, const char *what) {
  if (jw_test_failures != failures_before)
    fprintf(stderr, "    ^ in case: %s\n", what);
}

static int parse(jw_policy_t *p, const char *json, const char *origin, jw_error_t *err) {
  return jw_policy_parse(p, json, strlen(json), origin, err);
}

/* Parsing `json` fails with JW_EPOLICY, exactly this where and text, and
 * leaves the policy as it was. */
static void expect_parse_error(const char *json, const char *origin, const char *where,
                               const char *text) {
  int before = jw_test_failures;
  jw_policy_t p, orig;
  jw_error_t err;
  jw_policy_init(&p);
  jw_policy_set(&p, "name", "before", NULL, NULL);
  jw_policy_set(&p, "job_memory", "7M", NULL, NULL);
  orig = p;
  memset(&err, 0, sizeof err);
  CHECK_INT(parse(&p, json, origin, &err), JW_EPOLICY);
  CHECK_INT(err.code, JW_EPOLICY);
  CHECK_INT(err.sys_error, 0);
  CHECK_STR(err.where, where);
  CHECK_STR(err.text, text);
  CHECK(memcmp(&p, &orig, sizeof p) == 0);
  note_case(before, json);
}

static void expect_set_error(const char *key, const char *value, const char *where, int code,
                             const char *want_where, const char *text) {
  int before = jw_test_failures;
  jw_policy_t p, orig;
  jw_error_t err;
  jw_policy_init(&p);
  jw_policy_set(&p, "tier", "hardened", NULL, NULL);
  orig = p;
  memset(&err, 0, sizeof err);
  CHECK_INT(jw_policy_set(&p, key, value, where, &err), code);
  CHECK_INT(err.code, code);
  CHECK_STR(err.where, want_where);
  CHECK_STR(err.text, text);
  CHECK(memcmp(&p, &orig, sizeof p) == 0);
  note_case(before, value);
}

static void check_policy(const jw_policy_t *got, const jw_policy_t *want, const char *what) {
  int before = jw_test_failures;
  CHECK_INT(got->tier, want->tier);
  CHECK_STR(got->name, want->name);
  CHECK_U64(got->active_processes, want->active_processes);
  CHECK_U64(got->process_memory, want->process_memory);
  CHECK_U64(got->job_memory, want->job_memory);
  CHECK_U64(got->process_time_ms, want->process_time_ms);
  CHECK_U64(got->job_time_ms, want->job_time_ms);
  CHECK_U64(got->ui_restrictions, want->ui_restrictions);
  CHECK_INT(got->kill_on_close, want->kill_on_close);
  CHECK_INT(got->die_on_unhandled_exception, want->die_on_unhandled_exception);
  CHECK_INT(got->breakaway_ok, want->breakaway_ok);
  CHECK_U64(got->notification_margin_bp, want->notification_margin_bp);
  CHECK_INT(got->token, want->token);
  note_case(before, what);
}

static void path_join(char *out, size_t size, const char *dir, const char *name) {
  snprintf(out, size, "%s/%s", dir, name);
}

/* ------------------------------------------------------------------------ */

static void test_init(void) {
  jw_policy_t p;
  memset(&p, 0xA5, sizeof p);
  jw_policy_init(&p);
  CHECK_INT(p.tier, JW_TIER_NONE);
  CHECK_STR(p.name, "");
  CHECK_U64(p.active_processes, 0);
  CHECK_U64(p.process_memory, 0);
  CHECK_U64(p.job_memory, 0);
  CHECK_U64(p.process_time_ms, 0);
  CHECK_U64(p.job_time_ms, 0);
  CHECK_U64(p.ui_restrictions, 0);
  CHECK_INT(p.kill_on_close, 0);
  CHECK_INT(p.die_on_unhandled_exception, 0);
  CHECK_INT(p.breakaway_ok, 0);
  CHECK_U64(p.set, 0);
}

static void test_tier_names(void) {
  jw_tier_t t = (jw_tier_t)99;
  CHECK_STR(jw_tier_name(JW_TIER_NONE), "none");
  CHECK_STR(jw_tier_name(JW_TIER_HARDENED), "hardened");
  CHECK_STR(jw_tier_name(JW_TIER_LOCKDOWN), "lockdown");
  CHECK_STR(jw_tier_name((jw_tier_t)3), "unknown");
  CHECK_STR(jw_tier_name((jw_tier_t)-1), "unknown");
  CHECK_INT(jw_tier_parse("none", &t), 0);
  CHECK_INT(t, JW_TIER_NONE);
  CHECK_INT(jw_tier_parse("hardened", &t), 0);
  CHECK_INT(t, JW_TIER_HARDENED);
  CHECK_INT(jw_tier_parse("lockdown", &t), 0);
  CHECK_INT(t, JW_TIER_LOCKDOWN);
  t = JW_TIER_HARDENED;
  CHECK_INT(jw_tier_parse("Lockdown", &t), JW_EINVAL);
  CHECK_INT(jw_tier_parse("", &t), JW_EINVAL);
  CHECK_INT(jw_tier_parse("lockdown ", &t), JW_EINVAL);
  CHECK_INT(jw_tier_parse(NULL, &t), JW_EINVAL);
  CHECK_INT(t, JW_TIER_HARDENED); /* untouched by failures */
}

static void size_ok(const char *text, uint64_t want) {
  uint64_t v = 12345;
  int before = jw_test_failures;
  CHECK_INT(jw_parse_size(text, &v), 0);
  CHECK_U64(v, want);
  note_case(before, text);
}

static void size_bad(const char *text) {
  uint64_t v = 12345;
  int before = jw_test_failures;
  CHECK_INT(jw_parse_size(text, &v), JW_EINVAL);
  CHECK_U64(v, 12345); /* not written on failure */
  note_case(before, text);
}

static void test_parse_size(void) {
  const uint64_t K = 1024, M = K * K, G = M * K, T = G * K;
  size_ok("1", 1);
  size_ok("4096", 4096);
  size_ok("4096B", 4096);
  size_ok("4096b", 4096);
  size_ok("64K", 64 * K);
  size_ok("64k", 64 * K);
  size_ok("64KB", 64 * K);
  size_ok("64KiB", 64 * K);
  size_ok("64kib", 64 * K);
  size_ok("512M", 512 * M);
  size_ok("512m", 512 * M);
  size_ok("512MB", 512 * M);
  size_ok("512MiB", 512 * M);
  size_ok("512MIB", 512 * M);
  size_ok("1G", G);
  size_ok("1GiB", G);
  size_ok("2T", 2 * T);
  size_ok("2tb", 2 * T);
  size_ok("007K", 7 * K);
  /* The largest values, and one past them. */
  size_ok("18446744073709551615", UINT64_MAX);
  size_bad("18446744073709551616");
  size_ok("16777215T", 16777215 * T);
  size_bad("16777216T");
  size_ok("17179869183G", 17179869183ull * G);
  size_bad("17179869184G");
  size_ok("18014398509481983K", 18014398509481983ull * K);
  size_bad("18014398509481984K");
  size_bad("99999999999T");
  size_bad("99999999999999999999999999");
  size_bad("0");
  size_bad("0K");
  size_bad("000");
  size_bad("");
  size_bad("-1");
  size_bad("-1K");
  size_bad("+1");
  size_bad(" 1");
  size_bad("1 ");
  size_bad("1 K");
  size_bad("1.5G");
  size_bad("1,5G");
  size_bad("1e3");
  size_bad("0x10");
  size_bad("12X");
  size_bad("1P");
  size_bad("K");
  size_bad("KB");
  size_bad("1KK");
  size_bad("1KiBB");
  size_bad("1Ki");
  size_bad("1iB");
  size_bad("1BB");
  size_bad("unlimited");
  {
    uint64_t v = 0;
    CHECK_INT(jw_parse_size(NULL, &v), JW_EINVAL);
    CHECK_INT(jw_parse_size("1K", NULL), JW_EINVAL);
  }
}

static void duration_ok(const char *text, uint64_t want) {
  uint64_t v = 12345;
  int before = jw_test_failures;
  CHECK_INT(jw_parse_duration(text, &v), 0);
  CHECK_U64(v, want);
  note_case(before, text);
}

static void duration_bad(const char *text) {
  uint64_t v = 12345;
  int before = jw_test_failures;
  CHECK_INT(jw_parse_duration(text, &v), JW_EINVAL);
  CHECK_U64(v, 12345);
  note_case(before, text);
}

static void test_parse_duration(void) {
  duration_ok("1ms", 1);
  duration_ok("500ms", 500);
  duration_ok("30s", 30000);
  duration_ok("5m", 300000);
  duration_ok("2h", 7200000);
  duration_ok("0030s", 30000);
  /* The largest CPU time a Job Object holds is INT64_MAX 100-ns ticks. */
  duration_ok("922337203685477ms", 922337203685477ull);
  duration_bad("922337203685478ms");
  duration_ok("922337203685s", 922337203685000ull);
  duration_bad("922337203686s");
  duration_ok("15372286728m", 922337203680000ull);
  duration_bad("15372286729m");
  duration_ok("256204778h", 922337200800000ull);
  duration_bad("256204779h");
  duration_bad("18446744073709551616ms");
  duration_bad("99999999999999999999999h");
  duration_bad("30"); /* a bare number: seconds or milliseconds? */
  duration_bad("0ms");
  duration_bad("0s");
  duration_bad("0h");
  duration_bad("");
  duration_bad("ms");
  duration_bad("s");
  duration_bad("1.5s");
  duration_bad("-1s");
  duration_bad("+1s");
  duration_bad(" 1s");
  duration_bad("1s ");
  duration_bad("1 s");
  duration_bad("30S");
  duration_bad("30MS");
  duration_bad("5M");
  duration_bad("30sec");
  duration_bad("1d");
  duration_bad("1us");
  duration_bad("1m30s");
  duration_bad("unlimited");
  {
    uint64_t v = 0;
    CHECK_INT(jw_parse_duration(NULL, &v), JW_EINVAL);
    CHECK_INT(jw_parse_duration("1s", NULL), JW_EINVAL);
  }
}

/* ------------------------------------------------------------------------ */

static const char *full_policy =
    "{\n"
    "  \"version\": 1,\n"
    "  \"name\": \"agent-run\",\n"
    "  \"tier\": \"lockdown\",\n"
    "  \"limits\": {\n"
    "    \"active_processes\": 4,\n"
    "    \"process_memory\": \"512M\",\n"
    "    \"job_memory\": \"1G\",\n"
    "    \"process_cpu_time\": \"30s\",\n"
    "    \"job_cpu_time\": \"2m\"\n"
    "  },\n"
    "  \"ui_restrictions\": [\"handles\", \"read_clipboard\", "
    "\"write_clipboard\", \"system_parameters\", \"display_settings\", "
    "\"global_atoms\", \"desktop\", \"exit_windows\"],\n"
    "  \"kill_on_close\": true,\n"
    "  \"die_on_unhandled_exception\": true,\n"
    "  \"allow_breakaway\": false\n"
    "}\n";

#define ALL_SET_BITS 0x7FFu

static void expect_full_policy(const jw_policy_t *p, const char *what) {
  jw_policy_t want;
  int before = jw_test_failures;
  jw_policy_init(&want);
  want.tier = JW_TIER_LOCKDOWN;
  strcpy(want.name, "agent-run");
  want.active_processes = 4;
  want.process_memory = 512ull << 20;
  want.job_memory = 1ull << 30;
  want.process_time_ms = 30000;
  want.job_time_ms = 120000;
  want.ui_restrictions = JW_UI_ALL;
  want.kill_on_close = 1;
  want.die_on_unhandled_exception = 1;
  want.breakaway_ok = 0;
  check_policy(p, &want, what);
  CHECK_U64(p->set, ALL_SET_BITS);
  note_case(before, what);
}

static void test_parse_full(void) {
  jw_policy_t p;
  jw_error_t err;
  jw_policy_init(&p);
  CHECK_INT(parse(&p, full_policy, "full.json", &err), 0);
  expect_full_policy(&p, "full policy");

  /* An empty document changes nothing. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{}", NULL, &err), 0);
  CHECK_U64(p.set, 0);
  CHECK_INT(parse(&p, " {\"limits\": {}} ", NULL, &err), 0);
  CHECK_U64(p.set, 0);

  /* Each field marks its own bit and nothing else. */
  {
    static const struct {
      const char *json;
      uint32_t bit;
    } one[] = {
        {"{\"name\": \"x\"}", JW_SET_NAME},
        {"{\"tier\": \"none\"}", JW_SET_TIER},
        {"{\"limits\": {\"active_processes\": 2}}", JW_SET_ACTIVE_PROCESSES},
        {"{\"limits\": {\"process_memory\": 1}}", JW_SET_PROCESS_MEMORY},
        {"{\"limits\": {\"job_memory\": 1}}", JW_SET_JOB_MEMORY},
        {"{\"limits\": {\"process_cpu_time\": \"1s\"}}", JW_SET_PROCESS_TIME},
        {"{\"limits\": {\"job_cpu_time\": \"1s\"}}", JW_SET_JOB_TIME},
        {"{\"ui_restrictions\": []}", JW_SET_UI},
        {"{\"kill_on_close\": false}", JW_SET_KILL_ON_CLOSE},
        {"{\"die_on_unhandled_exception\": false}", JW_SET_DIE_ON_EXCEPTION},
        {"{\"allow_breakaway\": true}", JW_SET_BREAKAWAY},
    };
    size_t i;
    for (i = 0; i < sizeof one / sizeof one[0]; i++) {
      int before = jw_test_failures;
      jw_policy_init(&p);
      CHECK_INT(parse(&p, one[i].json, NULL, &err), 0);
      CHECK_U64(p.set, one[i].bit);
      note_case(before, one[i].json);
    }
  }

  /* Values of every form the format allows. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"limits\": {\"active_processes\": 65535, "
                  "\"process_memory\": 9223372036854775807, "
                  "\"job_memory\": \"18446744073709551615\", "
                  "\"process_cpu_time\": \"500ms\", "
                  "\"job_cpu_time\": \"2h\"}, "
                  "\"ui_restrictions\": [\"desktop\", \"handles\"], "
                  "\"name\": \"A.b_c-9\", \"allow_breakaway\": true}",
                  NULL, &err),
            0);
  CHECK_U64(p.active_processes, 65535);
  CHECK_U64(p.process_memory, 9223372036854775807ull);
  CHECK_U64(p.job_memory, UINT64_MAX);
  CHECK_U64(p.process_time_ms, 500);
  CHECK_U64(p.job_time_ms, 7200000);
  CHECK_U64(p.ui_restrictions, JW_UI_DESKTOP | JW_UI_HANDLES);
  CHECK_STR(p.name, "A.b_c-9");
  CHECK_INT(p.breakaway_ok, 1);

  /* "unlimited" sets 0 explicitly; "all" and "none" for the UI. */
  CHECK_INT(parse(&p,
                  "{\"limits\": {\"active_processes\": \"unlimited\", "
                  "\"process_memory\": \"unlimited\", "
                  "\"job_memory\": \"unlimited\", "
                  "\"process_cpu_time\": \"unlimited\", "
                  "\"job_cpu_time\": \"unlimited\"}, "
                  "\"ui_restrictions\": \"all\"}",
                  NULL, &err),
            0);
  CHECK_U64(p.active_processes, 0);
  CHECK_U64(p.process_memory, 0);
  CHECK_U64(p.job_memory, 0);
  CHECK_U64(p.process_time_ms, 0);
  CHECK_U64(p.job_time_ms, 0);
  CHECK_U64(p.ui_restrictions, JW_UI_ALL);
  CHECK_U64(p.set & (JW_SET_ACTIVE_PROCESSES | JW_SET_PROCESS_MEMORY | JW_SET_JOB_MEMORY |
                     JW_SET_PROCESS_TIME | JW_SET_JOB_TIME),
            JW_SET_ACTIVE_PROCESSES | JW_SET_PROCESS_MEMORY | JW_SET_JOB_MEMORY |
                JW_SET_PROCESS_TIME | JW_SET_JOB_TIME);
  CHECK_INT(parse(&p, "{\"ui_restrictions\": \"none\"}", NULL, &err), 0);
  CHECK_U64(p.ui_restrictions, 0);

  /* A name of exactly 63 characters fits. */
  {
    char json[128], name[64];
    memset(name, 'n', 63);
    name[63] = '\0';
    snprintf(json, sizeof json, "{\"name\": \"%s\"}", name);
    CHECK_INT(parse(&p, json, NULL, &err), 0);
    CHECK_STR(p.name, name);
  }

  /* A UTF-8 byte order mark, as Notepad writes, is skipped. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "\xEF\xBB\xBF{\"tier\": \"hardened\"}", NULL, &err), 0);
  CHECK_INT(p.tier, JW_TIER_HARDENED);

  /* Bad arguments. */
  CHECK_INT(jw_policy_parse(NULL, "{}", 2, NULL, &err), JW_EINVAL);
  CHECK_INT(err.code, JW_EINVAL);
  CHECK_INT(jw_policy_parse(&p, NULL, 2, NULL, &err), JW_EINVAL);
  /* A NULL error record is allowed. */
  CHECK_INT(jw_policy_parse(&p, "{\"tier\": 3}", 11, NULL, NULL), JW_EPOLICY);
}

static void test_parse_errors(void) {
  /* Unknown keys, at the top and inside limits. */
  expect_parse_error("{\"tier\": \"none\", \"foo\": 1}", NULL, "foo",
                     "foo: unknown key (known: " TOP_KEYS ")");
  expect_parse_error("{\"limits\": {\"job_memory\": \"1G\", \"foo\": 1}}", NULL, "limits.foo",
                     "limits.foo: unknown key (known: " LIMIT_KEYS ")");
  /* A field that exists at the other level is still unknown here. */
  expect_parse_error("{\"job_memory\": \"1G\"}", NULL, "job_memory",
                     "job_memory: unknown key (known: " TOP_KEYS ")");
  expect_parse_error("{\"limits\": {\"tier\": \"none\"}}", NULL, "limits.tier",
                     "limits.tier: unknown key (known: " LIMIT_KEYS ")");
  expect_parse_error("{\"Tier\": \"none\"}", NULL, "Tier",
                     "Tier: unknown key (known: " TOP_KEYS ")");

  /* Wrong types. */
  expect_parse_error("{\"tier\": 3}", NULL, "tier", "tier: " EXPECT_TIER ", got 3");
  expect_parse_error("{\"tier\": \"Lockdown\"}", NULL, "tier",
                     "tier: " EXPECT_TIER ", got \"Lockdown\"");
  expect_parse_error("{\"tier\": null}", NULL, "tier", "tier: " EXPECT_TIER ", got null");
  expect_parse_error("{\"limits\": [1]}", NULL, "limits",
                     "limits: expected an object, got an array");
  expect_parse_error("{\"limits\": \"1G\"}", NULL, "limits",
                     "limits: expected an object, got \"1G\"");
  expect_parse_error("{\"kill_on_close\": \"true\"}", NULL, "kill_on_close",
                     "kill_on_close: expected true or false, got \"true\"");
  expect_parse_error("{\"allow_breakaway\": 1}", NULL, "allow_breakaway",
                     "allow_breakaway: expected true or false, got 1");
  expect_parse_error("{\"die_on_unhandled_exception\": {}}", NULL, "die_on_unhandled_exception",
                     "die_on_unhandled_exception: expected true or false, "
                     "got an object");
  expect_parse_error("[]", NULL, "", "expected a JSON object, got an array");
  expect_parse_error("\"tier\"", "p.json", "", "p.json: expected a JSON object, got \"tier\"");

  /* Sizes. */
  expect_parse_error("{\"limits\": {\"process_memory\": -3}}", NULL, "limits.process_memory",
                     "limits.process_memory: " EXPECT_SIZE ", got -3");
  expect_parse_error("{\"limits\": {\"job_memory\": \"99999999999T\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: expected a size of at most "
                     "18446744073709551615 bytes, got \"99999999999T\"");
  expect_parse_error("{\"limits\": {\"job_memory\": \"1.5G\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got \"1.5G\"");
  expect_parse_error("{\"limits\": {\"job_memory\": 1.5}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got 1.5");
  expect_parse_error("{\"limits\": {\"job_memory\": 1024.0}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got 1024.0");
  expect_parse_error("{\"limits\": {\"job_memory\": \"\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got \"\"");
  expect_parse_error("{\"limits\": {\"job_memory\": \"12X\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got \"12X\"");
  expect_parse_error("{\"limits\": {\"job_memory\": \" 12M\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got \" 12M\"");
  expect_parse_error("{\"limits\": {\"job_memory\": 0}}", NULL, "limits.job_memory",
                     "limits.job_memory: expected a size of at least 1 byte, "
                     "or \"unlimited\", got 0");
  expect_parse_error("{\"limits\": {\"job_memory\": \"0M\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: expected a size of at least 1 byte, "
                     "or \"unlimited\", got \"0M\"");
  expect_parse_error("{\"limits\": {\"job_memory\": \"Unlimited\"}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got \"Unlimited\"");
  expect_parse_error("{\"limits\": {\"job_memory\": true}}", NULL, "limits.job_memory",
                     "limits.job_memory: " EXPECT_SIZE ", got true");
  /* Beyond a JSON integer jansson holds: a syntax error with its position. */
  expect_parse_error("{\"limits\": {\"job_memory\": 18446744073709551615}}", NULL, "",
                     "line 1, column 46: invalid JSON: too big integer near "
                     "'18446744073709551615'");

  /* Durations. */
  expect_parse_error("{\"limits\": {\"process_cpu_time\": 30}}", NULL, "limits.process_cpu_time",
                     "limits.process_cpu_time: " EXPECT_DURATION ", got 30");
  expect_parse_error("{\"limits\": {\"job_cpu_time\": \"30\"}}", NULL, "limits.job_cpu_time",
                     "limits.job_cpu_time: " EXPECT_DURATION ", got \"30\"");
  expect_parse_error("{\"limits\": {\"job_cpu_time\": \"1.5s\"}}", NULL, "limits.job_cpu_time",
                     "limits.job_cpu_time: " EXPECT_DURATION ", got \"1.5s\"");
  expect_parse_error("{\"limits\": {\"job_cpu_time\": \"0s\"}}", NULL, "limits.job_cpu_time",
                     "limits.job_cpu_time: expected a duration of at least "
                     "1ms, or \"unlimited\", got \"0s\"");
  expect_parse_error("{\"limits\": {\"job_cpu_time\": \"256204779h\"}}", NULL,
                     "limits.job_cpu_time",
                     "limits.job_cpu_time: expected a duration of at most "
                     "922337203685477ms, got \"256204779h\"");

  /* Active processes. */
  expect_parse_error("{\"limits\": {\"active_processes\": 0}}", NULL, "limits.active_processes",
                     "limits.active_processes: " EXPECT_COUNT ", got 0");
  expect_parse_error("{\"limits\": {\"active_processes\": 65536}}", NULL, "limits.active_processes",
                     "limits.active_processes: " EXPECT_COUNT ", got 65536");
  expect_parse_error("{\"limits\": {\"active_processes\": -1}}", NULL, "limits.active_processes",
                     "limits.active_processes: " EXPECT_COUNT ", got -1");
  expect_parse_error("{\"limits\": {\"active_processes\": \"4\"}}", NULL, "limits.active_processes",
                     "limits.active_processes: " EXPECT_COUNT ", got \"4\"");
  expect_parse_error("{\"limits\": {\"active_processes\": 4.0}}", NULL, "limits.active_processes",
                     "limits.active_processes: " EXPECT_COUNT ", got 4.0");

  /* Version. */
  expect_parse_error("{\"version\": 2}", NULL, "version", "version: expected 1, got 2");
  expect_parse_error("{\"version\": \"1\"}", NULL, "version", "version: expected 1, got \"1\"");
  expect_parse_error("{\"version\": 1.0}", NULL, "version", "version: expected 1, got 1.0");
  /* The version is checked first, wherever it is in the document. */
  expect_parse_error("{\"tier\": 3, \"version\": 2}", NULL, "version",
                     "version: expected 1, got 2");
  /* Otherwise the first problem in document order is reported. */
  expect_parse_error("{\"tier\": 3, \"name\": \"a b\"}", NULL, "tier",
                     "tier: " EXPECT_TIER ", got 3");

  /* Names. */
  expect_parse_error("{\"name\": \"a b\"}", NULL, "name", "name: " EXPECT_NAME ", got \"a b\"");
  expect_parse_error("{\"name\": \"\"}", NULL, "name", "name: " EXPECT_NAME ", got \"\"");
  expect_parse_error("{\"name\": \"caf\\u00e9\"}", NULL, "name",
                     "name: " EXPECT_NAME ", got \"caf\xC3\xA9\"");
  expect_parse_error("{\"name\": \"a/b\"}", NULL, "name", "name: " EXPECT_NAME ", got \"a/b\"");
  expect_parse_error("{\"name\": 7}", NULL, "name", "name: " EXPECT_NAME ", got 7");
  {
    char json[128], want[256], name[65];
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(json, sizeof json, "{\"name\": \"%s\"}", name);
    /* 64 characters: too long; shown cut to 60 with "..." after it. */
    snprintf(want, sizeof want, "name: " EXPECT_NAME ", got \"%.60s\"...", name);
    expect_parse_error(json, NULL, "name", want);
  }

  /* UI restrictions. */
  expect_parse_error("{\"ui_restrictions\": [\"handles\", \"desktop\", \"bogus\"]}", NULL,
                     "ui_restrictions[2]",
                     "ui_restrictions[2]: expected one of " UI_LIST ", got \"bogus\"");
  expect_parse_error("{\"ui_restrictions\": [\"handles\", 5]}", NULL, "ui_restrictions[1]",
                     "ui_restrictions[1]: expected one of " UI_LIST ", got 5");
  expect_parse_error("{\"ui_restrictions\": [\"all\"]}", NULL, "ui_restrictions[0]",
                     "ui_restrictions[0]: expected one of " UI_LIST ", got \"all\"");
  expect_parse_error("{\"ui_restrictions\": [\"handles\", \"desktop\", \"handles\"]}", NULL,
                     "ui_restrictions[2]",
                     "ui_restrictions[2]: expected each restriction once, got \"handles\" "
                     "twice");
  expect_parse_error("{\"ui_restrictions\": \"some\"}", NULL, "ui_restrictions",
                     "ui_restrictions: expected an array of UI restriction "
                     "names, \"all\" or \"none\", got \"some\"");
  expect_parse_error("{\"ui_restrictions\": 255}", NULL, "ui_restrictions",
                     "ui_restrictions: expected an array of UI restriction "
                     "names, \"all\" or \"none\", got 255");

  /* JSON syntax: position from jansson, with and without an origin. */
  expect_parse_error("{\"tier\": \"none\", \"tier\": \"hardened\"}", "policy.json", "",
                     "policy.json:1:23: invalid JSON: duplicate object key "
                     "near '\"tier\"'");
  expect_parse_error("{\"limits\": {\"job_memory\": 1, \"job_memory\": 2}}", NULL, "",
                     "line 1, column 41: invalid JSON: duplicate object key "
                     "near '\"job_memory\"'");
  expect_parse_error("{\n  \"tier\": \"lockdown\"\n  \"name\": \"x\"\n}", "policy.json", "",
                     "policy.json:3:8: invalid JSON: '}' expected near "
                     "'\"name\"'");
  expect_parse_error("{\n  \"limits\": {\n    \"job_memory\": \"1G\",,\n  }\n}", "policy.json", "",
                     "policy.json:3:24: invalid JSON: string or '}' expected "
                     "near ','");
  expect_parse_error("", NULL, "",
                     "line 1, column 0: invalid JSON: unexpected token near "
                     "end of file");
  expect_parse_error("{} {}", NULL, "",
                     "line 1, column 4: invalid JSON: end of file expected "
                     "near '{'");
  expect_parse_error("{\"name\": \"a\\u0000b\"}", NULL, "",
                     "line 1, column 19: invalid JSON: \\u0000 is not "
                     "allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'");
  /* Invalid UTF-8 is a syntax error, and the raw bytes never reach the
   * message. */
  expect_parse_error("{\"name\": \"\xFF\xFE\"}", NULL, "",
                     "line 1, column 10: invalid JSON: unable to decode byte "
                     "0xff near '\"'");
  /* A UTF-16 file (PowerShell 5 "> file") gets its own message. */
  expect_parse_error("\xFF\xFE{\0}\0", "p.json", "",
                     "p.json: the policy is UTF-16 text; save it as UTF-8");

  /* The origin prefixes every message. */
  expect_parse_error("{\"tier\": 3}", "policy.json", "tier",
                     "policy.json: tier: " EXPECT_TIER ", got 3");
}

/* Hostile values in messages: escaped and bounded. */
static void test_hostile_messages(void) {
  char json[20000], want[512];
  size_t i;

  /* A terminal escape sequence and a right-to-left override. */
  expect_parse_error("{\"tier\": \"\\u001b[31mred\\u202Eevil\\n\"}", NULL, "tier",
                     "tier: " EXPECT_TIER ", got \"\\x1B[31mred\\u202Eevil\\n\"");
  /* Quotes and backslashes cannot close the shown string early. */
  expect_parse_error("{\"tier\": \"a\\\"b\\\\c\"}", NULL, "tier",
                     "tier: " EXPECT_TIER ", got \"a\\\"b\\\\c\"");
  /* 10 000 characters become 60 and "...". */
  strcpy(json, "{\"tier\": \"");
  for (i = 0; i < 10000; i++)
    strcat(json + 10 + i, "x");
  strcat(json, "\"}");
  snprintf(want, sizeof want, "tier: " EXPECT_TIER ", got \"%.60s\"...", json + 10);
  expect_parse_error(json, NULL, "tier", want);
  /* An escape is never split: 59 characters and a newline do not fit. */
  expect_parse_error("{\"tier\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxx\\n\"}",
                     NULL, "tier",
                     "tier: " EXPECT_TIER ", got \"xxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"...");
  /* Nor a UTF-8 character: 59 bytes and a two-byte "é". */
  expect_parse_error("{\"tier\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxx\\u00e9\"}",
                     NULL, "tier",
                     "tier: " EXPECT_TIER ", got \"xxxxxxxxxxxxxxxxxxxxxxxxxxx"
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"...");
  /* A hostile key is escaped in both where and text. */
  expect_parse_error("{\"a\\nb\\u0007\": 1}", NULL, "a\\nb\\x07",
                     "a\\nb\\x07: unknown key (known: " TOP_KEYS ")");
  strcpy(json, "{\"limits\": {\"");
  for (i = 0; i < 5000; i++)
    strcat(json + 13 + i, "k");
  strcat(json, "\": 1}}");
  expect_parse_error(json, NULL,
                     "limits.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
                     "kkkkkkkkkkk...",
                     "limits.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
                     "kkkkkkkkkkk...: unknown key (known: " LIMIT_KEYS ")");
  /* A long origin keeps its end; control characters in it are escaped. */
  {
    char origin[400];
    memset(origin, 'd', 300);
    strcpy(origin + 300, "/x\ny.json");
    /* The last 117 bytes: 108 of the "d"s and "/x\\ny.json". */
    snprintf(want, sizeof want, "...%.108s/x\\ny.json: tier: " EXPECT_TIER ", got 3", origin);
    expect_parse_error("{\"tier\": 3}", origin, "tier", want);
  }
  /* Deep nesting is refused by jansson, not a stack overflow. */
  {
    static char deep[200001];
    jw_policy_t p;
    jw_error_t err;
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    jw_policy_init(&p);
    CHECK_INT(jw_policy_parse(&p, deep, 200000, NULL, &err), JW_EPOLICY);
    CHECK_STR(err.text, "line 1, column 2049: invalid JSON: maximum parsing "
                        "depth reached near '['");
  }
}

/* ------------------------------------------------------------------------ */

static void test_set(void) {
  jw_policy_t p;
  jw_error_t err;
  static const char *const yes[] = {"true", "yes", "1", "on"};
  static const char *const no[] = {"false", "no", "0", "off"};
  size_t i;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "active_processes", "4", "--active-processes", &err), 0);
  CHECK_U64(p.active_processes, 4);
  CHECK_U64(p.set, JW_SET_ACTIVE_PROCESSES);
  CHECK_INT(jw_policy_set(&p, "process_memory", "512MiB", NULL, &err), 0);
  CHECK_U64(p.process_memory, 512ull << 20);
  CHECK_INT(jw_policy_set(&p, "job_memory", "2g", NULL, &err), 0);
  CHECK_U64(p.job_memory, 2ull << 30);
  CHECK_INT(jw_policy_set(&p, "process_cpu_time", "1500ms", NULL, &err), 0);
  CHECK_U64(p.process_time_ms, 1500);
  CHECK_INT(jw_policy_set(&p, "job_cpu_time", "5m", NULL, &err), 0);
  CHECK_U64(p.job_time_ms, 300000);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions", "handles,desktop", NULL, &err), 0);
  CHECK_U64(p.ui_restrictions, JW_UI_HANDLES | JW_UI_DESKTOP);
  CHECK_INT(jw_policy_set(&p, "kill_on_close", "yes", NULL, &err), 0);
  CHECK_INT(p.kill_on_close, 1);
  CHECK_INT(jw_policy_set(&p, "die_on_unhandled_exception", "off", NULL, &err), 0);
  CHECK_INT(p.die_on_unhandled_exception, 0);
  CHECK_INT(jw_policy_set(&p, "allow_breakaway", "1", NULL, &err), 0);
  CHECK_INT(p.breakaway_ok, 1);
  CHECK_INT(jw_policy_set(&p, "tier", "lockdown", NULL, &err), 0);
  CHECK_INT(p.tier, JW_TIER_LOCKDOWN);
  CHECK_INT(jw_policy_set(&p, "name", "my-job", NULL, &err), 0);
  CHECK_STR(p.name, "my-job");
  CHECK_U64(p.set, ALL_SET_BITS);

  for (i = 0; i < 4; i++) {
    int before = jw_test_failures;
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "kill_on_close", yes[i], NULL, &err), 0);
    CHECK_INT(p.kill_on_close, 1);
    CHECK_INT(jw_policy_set(&p, "kill_on_close", no[i], NULL, &err), 0);
    CHECK_INT(p.kill_on_close, 0);
    CHECK_U64(p.set, JW_SET_KILL_ON_CLOSE);
    note_case(before, yes[i]);
  }

  /* "unlimited", UI forms. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "active_processes", "unlimited", NULL, &err), 0);
  CHECK_U64(p.active_processes, 0);
  CHECK_U64(p.set, JW_SET_ACTIVE_PROCESSES);
  CHECK_INT(jw_policy_set(&p, "active_processes", "65535", NULL, &err), 0);
  CHECK_U64(p.active_processes, 65535);
  CHECK_INT(jw_policy_set(&p, "job_cpu_time", "unlimited", NULL, &err), 0);
  CHECK_U64(p.job_time_ms, 0);
  CHECK_U64(p.set, JW_SET_ACTIVE_PROCESSES | JW_SET_JOB_TIME);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions", "all", NULL, &err), 0);
  CHECK_U64(p.ui_restrictions, JW_UI_ALL);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions", "none", NULL, &err), 0);
  CHECK_U64(p.ui_restrictions, 0);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions", " read_clipboard , write_clipboard,exit_windows",
                          NULL, &err),
            0);
  CHECK_U64(p.ui_restrictions, JW_UI_READCLIPBOARD | JW_UI_WRITECLIPBOARD | JW_UI_EXITWINDOWS);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions",
                          "handles,read_clipboard,write_clipboard,"
                          "system_parameters,display_settings,global_atoms,"
                          "desktop,exit_windows",
                          NULL, &err),
            0);
  CHECK_U64(p.ui_restrictions, JW_UI_ALL);

  /* Errors: JW_EPOLICY, where = the flag, text with the flag. */
  expect_set_error("job_memory", "abc", "--job-memory", JW_EPOLICY, "--job-memory",
                   "--job-memory: " EXPECT_SIZE ", got \"abc\"");
  expect_set_error("job_memory", "-3", "--job-memory", JW_EPOLICY, "--job-memory",
                   "--job-memory: " EXPECT_SIZE ", got \"-3\"");
  expect_set_error("job_memory", "0", "--job-memory", JW_EPOLICY, "--job-memory",
                   "--job-memory: expected a size of at least 1 byte, or "
                   "\"unlimited\", got \"0\"");
  expect_set_error("process_memory", "99999999999T", "--process-memory", JW_EPOLICY,
                   "--process-memory",
                   "--process-memory: expected a size of at most "
                   "18446744073709551615 bytes, got \"99999999999T\"");
  expect_set_error("job_cpu_time", "30", "--job-cpu-time", JW_EPOLICY, "--job-cpu-time",
                   "--job-cpu-time: " EXPECT_DURATION ", got \"30\"");
  expect_set_error("active_processes", "0", "--active-processes", JW_EPOLICY, "--active-processes",
                   "--active-processes: " EXPECT_COUNT ", got \"0\"");
  expect_set_error("active_processes", "65536", "--active-processes", JW_EPOLICY,
                   "--active-processes", "--active-processes: " EXPECT_COUNT ", got \"65536\"");
  expect_set_error("active_processes", "4K", "--active-processes", JW_EPOLICY, "--active-processes",
                   "--active-processes: " EXPECT_COUNT ", got \"4K\"");
  expect_set_error("active_processes", " 4", "--active-processes", JW_EPOLICY, "--active-processes",
                   "--active-processes: " EXPECT_COUNT ", got \" 4\"");
  expect_set_error("active_processes", "", "--active-processes", JW_EPOLICY, "--active-processes",
                   "--active-processes: " EXPECT_COUNT ", got \"\"");
  expect_set_error("kill_on_close", "maybe", "--kill-on-close", JW_EPOLICY, "--kill-on-close",
                   "--kill-on-close: expected true or false (or yes/no, "
                   "on/off, 1/0), got \"maybe\"");
  expect_set_error("kill_on_close", "TRUE", "--kill-on-close", JW_EPOLICY, "--kill-on-close",
                   "--kill-on-close: expected true or false (or yes/no, "
                   "on/off, 1/0), got \"TRUE\"");
  expect_set_error("tier", "max", "--tier", JW_EPOLICY, "--tier",
                   "--tier: " EXPECT_TIER ", got \"max\"");
  expect_set_error("name", "has space", "--name", JW_EPOLICY, "--name",
                   "--name: " EXPECT_NAME ", got \"has space\"");
  expect_set_error("name", "", "--name", JW_EPOLICY, "--name", "--name: " EXPECT_NAME ", got \"\"");
  expect_set_error("ui_restrictions", "handles,bogus", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected \"all\", \"none\" or a comma-separated "
                   "list of " UI_LIST ", got \"bogus\"");
  expect_set_error("ui_restrictions", "handles,,desktop", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected \"all\", \"none\" or a comma-separated "
                   "list of " UI_LIST ", got \"\"");
  expect_set_error("ui_restrictions", "handles,", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected \"all\", \"none\" or a comma-separated "
                   "list of " UI_LIST ", got \"\"");
  expect_set_error("ui_restrictions", "", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected \"all\", \"none\" or a comma-separated "
                   "list of " UI_LIST ", got \"\"");
  expect_set_error("ui_restrictions", "all,handles", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected \"all\", \"none\" or a comma-separated "
                   "list of " UI_LIST ", got \"all\"");
  expect_set_error("ui_restrictions", "desktop,handles,desktop", "--ui", JW_EPOLICY, "--ui",
                   "--ui: expected each restriction once, got \"desktop\" "
                   "twice");
  /* Bytes that are not UTF-8 reach jw_policy_set unchecked. */
  expect_set_error("tier", "\xFF\xFE\x1B]0;x\x07", "--tier", JW_EPOLICY, "--tier",
                   "--tier: " EXPECT_TIER ", got \"\\xFF\\xFE\\x1B]0;x\\x07\"");
  /* Without `where`, the key names the source. */
  expect_set_error("job_memory", "1.5G", NULL, JW_EPOLICY, "job_memory",
                   "job_memory: " EXPECT_SIZE ", got \"1.5G\"");
  /* An unknown key is a programming error: JW_EINVAL. */
  expect_set_error("job_memroy", "1G", "--job-memroy", JW_EINVAL, "--job-memroy",
                   "--job-memroy: unknown policy key \"job_memroy\" (known: " SET_KEYS ")");
  expect_set_error("limits", "1G", NULL, JW_EINVAL, "limits",
                   "limits: unknown policy key \"limits\" (known: " SET_KEYS ")");
  expect_set_error("version", "1", NULL, JW_EINVAL, "version",
                   "version: unknown policy key \"version\" (known: " SET_KEYS ")");
  CHECK_INT(jw_policy_set(&p, NULL, "1", NULL, &err), JW_EINVAL);
  CHECK_INT(jw_policy_set(&p, "tier", NULL, NULL, &err), JW_EINVAL);
  CHECK_INT(jw_policy_set(NULL, "tier", "none", NULL, &err), JW_EINVAL);
  CHECK_INT(jw_policy_set(&p, "tier", "max", NULL, NULL), JW_EPOLICY);
}

/* ------------------------------------------------------------------------ */

/* The token key (docs/policy.md, "token"): its four words in a file and
 * on the command line, refusals that name the field, the value found and
 * the words allowed, and the tier defaults an explicit value overrides. */
static void test_token_key(void) {
  static const char *const words[] = {"inherit", "restricted", "low_integrity", "restricted_low"};
  jw_policy_t p, r;
  jw_error_t err;
  jw_token_mode_t m = JW_TOKEN_INHERIT;
  char doc[128];
  int i;
  for (i = 0; i < 4; i++) {
    CHECK_STR(jw_token_mode_name((jw_token_mode_t)i), words[i]);
    CHECK_INT(jw_token_mode_parse(words[i], &m), 0);
    CHECK_INT(m, i);
    jw_policy_init(&p);
    snprintf(doc, sizeof doc, "{\"token\": \"%s\"}", words[i]);
    CHECK_INT(parse(&p, doc, NULL, &err), 0);
    CHECK_INT(p.token, i);
    CHECK_U64(p.set, JW_SET_TOKEN);
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "token", words[i], "--token", &err), 0);
    CHECK_INT(p.token, i);
    CHECK_U64(p.set, JW_SET_TOKEN);
  }
  CHECK_STR(jw_token_mode_name((jw_token_mode_t)4), "unknown");
  CHECK_INT(jw_token_mode_parse("Restricted", &m), JW_EINVAL);
  CHECK_INT(jw_token_mode_parse(NULL, &m), JW_EINVAL);

  expect_parse_error("{\"token\": \"low\"}", NULL, "token",
                     "token: expected one of \"inherit\", \"restricted\", \"low_integrity\", "
                     "\"restricted_low\", got \"low\"");
  expect_parse_error("{\"token\": true}", NULL, "token",
                     "token: expected one of \"inherit\", \"restricted\", \"low_integrity\", "
                     "\"restricted_low\", got true");
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "token", "untrusted", "--token", &err), JW_EPOLICY);
  CHECK_STR(err.where, "--token");
  CHECK_STR(err.text, "--token: expected one of \"inherit\", \"restricted\", "
                      "\"low_integrity\", \"restricted_low\", got \"untrusted\"");
  CHECK_U64(p.set, 0);

  /* An explicit token beats lockdown's, and is kept in other tiers. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"tier\": \"lockdown\", \"token\": \"inherit\"}", NULL, &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.token, JW_TOKEN_INHERIT);
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"tier\": \"none\", \"token\": \"low_integrity\"}", NULL, &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.token, JW_TOKEN_LOW_INTEGRITY);
  /* kill_on_close: false is the only way to have none, in any tier. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"tier\": \"none\", \"kill_on_close\": false}", NULL, &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.kill_on_close, 0);
  jw_policy_init(&p);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.kill_on_close, 1);
}

static void test_resolve(void) {
  jw_policy_t p, r, want;
  jw_error_t err;

  /* The tier table, nothing set explicitly. Kill-on-close is on in
   * every tier, none included; the token is jobwarden's own except in
   * lockdown. */
  jw_policy_init(&p);
  jw_policy_resolve(&p, &r);
  jw_policy_init(&want);
  want.notification_margin_bp = JW_NOTIFY_MARGIN_DEFAULT_BP; /* every resolved policy */
  want.kill_on_close = 1;
  want.token = JW_TOKEN_INHERIT;
  check_policy(&r, &want, "tier none");

  jw_policy_init(&p);
  p.tier = JW_TIER_HARDENED;
  p.breakaway_ok = 1; /* not set explicitly: the tier overrides it */
  jw_policy_resolve(&p, &r);
  want.tier = JW_TIER_HARDENED;
  want.kill_on_close = 1;
  want.die_on_unhandled_exception = 1;
  want.breakaway_ok = 0;
  check_policy(&r, &want, "tier hardened");
  CHECK_U64(r.set, 0); /* resolving sets no bit */

  jw_policy_init(&p);
  p.tier = JW_TIER_LOCKDOWN;
  jw_policy_resolve(&p, &r);
  want.tier = JW_TIER_LOCKDOWN;
  want.active_processes = 1;
  want.ui_restrictions = JW_UI_ALL;
  want.token = JW_TOKEN_RESTRICTED_LOW;
  check_policy(&r, &want, "tier lockdown");

  /* Explicit settings win, "unlimited" and false included; fields without
   * a tier default keep their value. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"tier\": \"lockdown\", \"limits\": {\"active_processes\":"
                  " \"unlimited\", \"job_memory\": \"64M\"}, "
                  "\"ui_restrictions\": \"none\", \"kill_on_close\": false, "
                  "\"allow_breakaway\": true}",
                  NULL, &err),
            0);
  jw_policy_resolve(&p, &r);
  jw_policy_init(&want);
  want.notification_margin_bp = JW_NOTIFY_MARGIN_DEFAULT_BP;
  want.tier = JW_TIER_LOCKDOWN;
  want.active_processes = 0;
  want.job_memory = 64ull << 20;
  want.ui_restrictions = 0;
  want.kill_on_close = 0;
  want.die_on_unhandled_exception = 1;
  want.breakaway_ok = 1;
  want.token = JW_TOKEN_RESTRICTED_LOW;
  check_policy(&r, &want, "lockdown with overrides");
  CHECK_U64(r.set, p.set);

  /* A flag overrides lockdown's single process with "unlimited". */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "tier", "lockdown", "--tier", &err), 0);
  CHECK_INT(jw_policy_set(&p, "active_processes", "unlimited", "--active-processes", &err), 0);
  jw_policy_resolve(&p, &p); /* in == out */
  CHECK_U64(p.active_processes, 0);
  CHECK_U64(p.ui_restrictions, JW_UI_ALL);
  CHECK_INT(p.kill_on_close, 1);

  /* in == out, and resolving twice changes nothing. */
  jw_policy_init(&p);
  p.tier = JW_TIER_LOCKDOWN;
  p.job_time_ms = 5000;
  jw_policy_resolve(&p, &p);
  r = p;
  jw_policy_resolve(&p, &p);
  CHECK(memcmp(&p, &r, sizeof p) == 0);
  CHECK_U64(p.active_processes, 1);
  CHECK_U64(p.job_time_ms, 5000);
  CHECK_INT(p.die_on_unhandled_exception, 1);

  /* Tier none applies nothing: explicit values stay. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "kill_on_close", "true", NULL, &err), 0);
  CHECK_INT(jw_policy_set(&p, "active_processes", "3", NULL, &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.kill_on_close, 1);
  CHECK_U64(r.active_processes, 3);
  CHECK_INT(r.die_on_unhandled_exception, 0);
  CHECK_U64(r.ui_restrictions, 0);
}

static void test_override_order(void) {
  jw_policy_t p;
  jw_error_t err;

  /* A file, then flags, field by field. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, full_policy, "policy.json", &err), 0);
  CHECK_INT(jw_policy_set(&p, "job_memory", "2G", "--job-memory", &err), 0);
  CHECK_INT(jw_policy_set(&p, "tier", "hardened", "--tier", &err), 0);
  CHECK_U64(p.job_memory, 2ull << 30);
  CHECK_INT(p.tier, JW_TIER_HARDENED);
  CHECK_U64(p.process_memory, 512ull << 20); /* from the file */
  CHECK_U64(p.active_processes, 4);
  CHECK_STR(p.name, "agent-run");

  /* A second document only replaces what it names. */
  CHECK_INT(parse(&p, "{\"limits\": {\"process_memory\": \"1M\"}}", NULL, &err), 0);
  CHECK_U64(p.process_memory, 1ull << 20);
  CHECK_U64(p.job_memory, 2ull << 30);
  CHECK_INT(p.tier, JW_TIER_HARDENED);

  /* A failing flag leaves the earlier value in place. */
  CHECK_INT(jw_policy_set(&p, "job_memory", "lots", "--job-memory", &err), JW_EPOLICY);
  CHECK_U64(p.job_memory, 2ull << 30);

  /* A failing document changes nothing, even fields before the error. */
  CHECK_INT(parse(&p, "{\"name\": \"changed\", \"tier\": 9}", NULL, &err), JW_EPOLICY);
  CHECK_STR(p.name, "agent-run");
  CHECK_INT(p.tier, JW_TIER_HARDENED);
}

/* ------------------------------------------------------------------------ */

static char *dump(const jw_policy_t *p) {
  json_t *j = jw_policy_to_json(p);
  char *s;
  if (j == NULL)
    return NULL;
  s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

static void round_trip(const jw_policy_t *p, const char *what) {
  jw_policy_t resolved, back;
  jw_error_t err;
  char *s;
  int before = jw_test_failures;
  jw_policy_resolve(p, &resolved);
  s = dump(&resolved);
  CHECK(s != NULL);
  if (s == NULL)
    return;
  jw_policy_init(&back);
  CHECK_INT(jw_policy_parse(&back, s, strlen(s), "to_json", &err), 0);
  jw_policy_resolve(&back, &back);
  check_policy(&back, &resolved, what);
  /* Every field but the name (left out when empty) is explicit, and the
   * notification margin where a job limit makes it matter. */
  CHECK_U64(back.set | (resolved.name[0] ? 0 : JW_SET_NAME),
            ALL_SET_BITS | JW_SET_TOKEN |
                (resolved.job_memory || resolved.job_time_ms ? JW_SET_NOTIFY_MARGIN : 0));
  note_case(before, s);
  free(s);
}

static void test_to_json(void) {
  jw_policy_t p;
  jw_error_t err;
  char *s;

  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"name\": \"agent-run\", \"tier\": \"lockdown\", "
                  "\"limits\": {\"job_memory\": \"1G\", "
                  "\"process_cpu_time\": \"30s\"}}",
                  NULL, &err),
            0);
  jw_policy_resolve(&p, &p);
  s = dump(&p);
  CHECK_STR(s, "{\"version\":1,\"name\":\"agent-run\",\"tier\":\"lockdown\","
               "\"limits\":{\"active_processes\":1,"
               "\"process_memory\":\"unlimited\",\"job_memory\":1073741824,"
               "\"process_cpu_time\":\"30000ms\","
               "\"job_cpu_time\":\"unlimited\",\"notification_margin\":\"10%\"},"
               "\"ui_restrictions\":[\"handles\",\"read_clipboard\","
               "\"write_clipboard\",\"system_parameters\","
               "\"display_settings\",\"global_atoms\",\"desktop\","
               "\"exit_windows\"],"
               "\"kill_on_close\":true,\"die_on_unhandled_exception\":true,"
               "\"allow_breakaway\":false,\"token\":\"restricted_low\"}");
  free(s);

  /* No name; sizes beyond a JSON integer; the largest duration. */
  jw_policy_init(&p);
  p.active_processes = 65535;
  p.process_memory = UINT64_MAX;
  p.job_memory = (uint64_t)INT64_MAX;
  p.process_time_ms = 922337203685477ull;
  p.job_time_ms = 1;
  p.ui_restrictions = JW_UI_DESKTOP | JW_UI_READCLIPBOARD;
  p.breakaway_ok = 1;
  s = dump(&p);
  CHECK_STR(s, "{\"version\":1,\"tier\":\"none\","
               "\"limits\":{\"active_processes\":65535,"
               "\"process_memory\":\"18446744073709551615\","
               "\"job_memory\":9223372036854775807,"
               "\"process_cpu_time\":\"922337203685477ms\","
               "\"job_cpu_time\":\"1ms\",\"notification_margin\":\"10%\"},"
               "\"ui_restrictions\":[\"read_clipboard\",\"desktop\"],"
               "\"kill_on_close\":false,\"die_on_unhandled_exception\":false,"
               "\"allow_breakaway\":true,\"token\":\"inherit\"}");
  free(s);
  round_trip(&p, "extremes");

  /* Round trips through every tier, with and without overrides. */
  jw_policy_init(&p);
  round_trip(&p, "empty");
  p.tier = JW_TIER_HARDENED;
  round_trip(&p, "hardened");
  p.tier = JW_TIER_LOCKDOWN;
  round_trip(&p, "lockdown");
  jw_policy_init(&p);
  CHECK_INT(parse(&p, full_policy, NULL, &err), 0);
  round_trip(&p, "full");
  CHECK_INT(jw_policy_set(&p, "active_processes", "unlimited", NULL, &err), 0);
  CHECK_INT(jw_policy_set(&p, "ui_restrictions", "global_atoms", NULL, &err), 0);
  CHECK_INT(jw_policy_set(&p, "kill_on_close", "false", NULL, &err), 0);
  round_trip(&p, "lockdown overridden");
}

/* ------------------------------------------------------------------------ */
/* Rendering, byte for byte against a golden file                           */
/* ------------------------------------------------------------------------ */

/* Appends "== what (raw|resolved)\n" and the rendering as check-policy
 * prints it, for the policy as parsed and once resolved. */
static void golden_add(char **text, size_t *len, const jw_policy_t *p, const char *what) {
  int pass;
  for (pass = 0; pass < 2; pass++) {
    jw_policy_t q = *p;
    json_t *j;
    char *s, *grown;
    size_t need;
    if (pass == 1)
      jw_policy_resolve(&q, &q);
    j = jw_policy_to_json(&q);
    s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    CHECK(s != NULL);
    if (s == NULL)
      return;
    need = *len + strlen(what) + strlen(s) + 32;
    grown = realloc(*text, need);
    CHECK(grown != NULL);
    if (grown == NULL) {
      free(s);
      return;
    }
    *text = grown;
    *len += (size_t)snprintf(*text + *len, need - *len, "== %s (%s)\n%s\n", what,
                             pass ? "resolved" : "raw", s);
    free(s);
  }
}

static void golden_file(char **text, size_t *len, const char *dir, const char *name) {
  char path[1024];
  jw_policy_t p;
  jw_error_t err;
  path_join(path, sizeof path, dir, name);
  jw_policy_init(&p);
  memset(&err, 0, sizeof err);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
  golden_add(text, len, &p, name);
}

/* Policies set key by key: the command line's way in. */
static void golden_set(char **text, size_t *len, const char *what, const char *const *kv) {
  jw_policy_t p;
  jw_error_t err;
  jw_policy_init(&p);
  for (; kv[0] != NULL; kv += 2) {
    memset(&err, 0, sizeof err);
    CHECK_INT(jw_policy_set(&p, kv[0], kv[1], NULL, &err), 0);
  }
  golden_add(text, len, &p, what);
}

/* The rendering of every tier, of the example and test policies and of
 * policies set key by key, raw and resolved, is the one in
 * tests/data/policy/rendering.golden (made by the code before the field
 * table). JW_POLICY_GOLDEN_WRITE=PATH writes what this build renders. */
static void test_rendering_golden(void) {
  static const char *const tiers[] = {"none", "hardened", "lockdown"};
  static const char *const rules_only[] = {"coalesce_window", "5s", NULL};
  static const char *const extremes[] = {"process_memory",
                                         "18446744073709551615",
                                         "job_memory",
                                         "9223372036854775807",
                                         "process_cpu_time",
                                         "922337203685477ms",
                                         "job_cpu_time",
                                         "1ms",
                                         "active_processes",
                                         "65535",
                                         "notification_margin",
                                         "0.25%",
                                         "image_hash_cap",
                                         "18446744073709551615",
                                         "max_total_processes",
                                         "1",
                                         "escape_scan_interval",
                                         "off",
                                         "ui_restrictions",
                                         "none",
                                         NULL};
  static const char *const every_key[] = {
      "name",
      "set-by-key",
      "tier",
      "lockdown",
      "active_processes",
      "unlimited",
      "process_memory",
      "64KiB",
      "job_memory",
      "unlimited",
      "process_cpu_time",
      "unlimited",
      "job_cpu_time",
      "5m",
      "notification_margin",
      "off",
      "ui_restrictions",
      "read_clipboard, write_clipboard",
      "kill_on_close",
      "no",
      "die_on_unhandled_exception",
      "0",
      "allow_breakaway",
      "on",
      "timeout",
      "2h",
      "timeout_action",
      "kill_process",
      "max_total_processes",
      "12",
      "total_processes_action",
      "report",
      "deny_image",
      "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
      "deny_image",
      "cmd",
      "allow_image",
      "signer:Example Corp",
      "image_action",
      "kill_job",
      "image_hash_cap",
      "4096B",
      "active_processes_action",
      "kill_job",
      "escape_action",
      "report",
      "escape_scan_interval",
      "50ms",
      "coalesce_window",
      "1h",
      "timeout_tags",
      "a",
      "total_processes_tags",
      "b.c",
      "images_tags",
      "d_e",
      "active_processes_tags",
      "f1",
      "escape_tags",
      "g",
      "escape_tags",
      "h",
      "token",
      "restricted",
      "seal_key",
      "new.key",
      NULL};
  char dir[1024], path[1024], *text = NULL, *want = NULL;
  size_t len = 0, i;
  const char *write_to = getenv("JW_POLICY_GOLDEN_WRITE");
  FILE *f;
  for (i = 0; i < 3; i++) {
    jw_policy_t p;
    char what[64];
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "tier", tiers[i], NULL, NULL), 0);
    snprintf(what, sizeof what, "tier %s", tiers[i]);
    golden_add(&text, &len, &p, what);
    snprintf(what, sizeof what, "tier %s, rules.coalesce.window", tiers[i]);
    CHECK_INT(jw_policy_set(&p, "coalesce_window", "5s", NULL, NULL), 0);
    golden_add(&text, &len, &p, what);
  }
  path_join(dir, sizeof dir, data_dir, "../../docs/examples");
  golden_file(&text, &len, dir, "hardened.json");
  golden_file(&text, &len, dir, "lockdown.json");
  golden_file(&text, &len, dir, "monitor.json");
  path_join(dir, sizeof dir, data_dir, "policy");
  golden_file(&text, &len, dir, "lockdown.json");
  golden_file(&text, &len, dir, "bom-utf8.json");
  golden_file(&text, &len, dir, "every-field.json");
  golden_set(&text, &len, "rules.coalesce.window only", rules_only);
  golden_set(&text, &len, "extremes", extremes);
  golden_set(&text, &len, "every key by jw_policy_set", every_key);
  CHECK(text != NULL);
  if (text == NULL)
    return;
  if (write_to != NULL) {
    f = fopen(write_to, "wb");
    CHECK(f != NULL);
    if (f != NULL) {
      fwrite(text, 1, len, f);
      fclose(f);
    }
  }
  path_join(path, sizeof path, data_dir, "policy/rendering.golden");
  f = fopen(path, "rb");
  CHECK(f != NULL);
  if (f != NULL) {
    want = calloc(1, len + 2);
    if (want != NULL) {
      size_t n = fread(want, 1, len + 1, f);
      CHECK_U64(n, len);
      want[n] = '\0';
      CHECK_STR(text, want);
    }
    fclose(f);
  }
  free(want);
  free(text);
}

/* ------------------------------------------------------------------------ */
/* The table of fields                                                      */
/* ------------------------------------------------------------------------ */

/* What a policy value is where it differs from a flag's. */
static const jw_test_samples_t value_samples = {
    .tier = "lockdown",
    .ui = "desktop, handles",
    .flag = "true",
    .image = "sha256:ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789",
};

/* Whether a row's stored value (and its count or selector) is the same in
 * a and b. */
static int same_value(const jw_policy_t *a, const jw_policy_t *b, const jw_policy_field_t *f) {
  if (memcmp((const char *)a + f->offset, (const char *)b + f->offset, f->size) != 0)
    return 0;
  return f->count == 0 ||
         memcmp((const char *)a + f->count, (const char *)b + f->count, sizeof(int)) == 0;
}

/* The JSON value at a dotted path of obj (borrowed), or NULL. */
static json_t *at_path(json_t *obj, const char *path) {
  char part[128];
  while (obj != NULL && *path != '\0') {
    size_t n = strcspn(path, ".");
    snprintf(part, sizeof part, "%.*s", (int)n, path);
    obj = json_object_get(obj, part);
    path += n + (path[n] == '.');
  }
  return obj;
}

/* {"a": {"b": value}} for path "a.b" (value borrowed; new reference). */
static json_t *document_at(const char *path, json_t *value) {
  size_t n = strcspn(path, ".");
  char part[128];
  json_t *obj = json_object();
  snprintf(part, sizeof part, "%.*s", (int)n, path);
  if (path[n] == '\0')
    json_object_set(obj, part, value);
  else
    json_object_set_new(obj, part, document_at(path + n + 1, value));
  return obj;
}

/* Rows: unique keys, paths and flags; storage that matches the type. */
static void test_table_rows(void) {
  size_t n, i, j;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  CHECK(n >= 30);
  for (i = 0; i < n; i++) {
    const jw_policy_field_t *f = &rows[i];
    int before = jw_test_failures, scalar = f->type != JW_PF_NAME && f->type != JW_PF_IMAGE &&
                                            f->type != JW_PF_TAGS && f->type != JW_PF_KEY_FILE;
    CHECK(f->key != NULL && f->key[0] != '\0');
    CHECK(f->path != NULL && f->path[0] != '\0');
    CHECK(f->bit != 0 && (f->bit & (f->bit - 1)) == 0);
    CHECK(f->help == NULL || f->flag != NULL);
    CHECK(f->flag == NULL || (strncmp(f->flag, "--", 2) == 0 && f->help != NULL &&
                              (f->type == JW_PF_BOOL) == (f->placeholder == NULL)));
    /* Scalars are stored in 4 or 8 bytes; the others are arrays. */
    if (scalar)
      CHECK(f->size == 4 || f->size == 8);
    else
      CHECK(f->size > 8);
    CHECK((f->count != 0) ==
          (f->type == JW_PF_IMAGE || f->type == JW_PF_TAGS || f->type == JW_PF_KEY_FILE));
    CHECK(f->offset + f->size <= sizeof(jw_policy_t));
    /* Only scalars have tier defaults. */
    for (j = 0; j < 3; j++)
      CHECK(scalar || f->tier_default[j] == NULL);
    for (j = 0; j < i; j++) {
      CHECK(strcmp(rows[j].key, f->key) != 0);
      CHECK(strcmp(rows[j].path, f->path) != 0);
      CHECK(f->flag == NULL || rows[j].flag == NULL || strcmp(rows[j].flag, f->flag) != 0);
      /* Each field its own storage; the seal's two keys are one path
       * and a selector. */
      if (!(f->type == JW_PF_KEY_FILE && rows[j].type == JW_PF_KEY_FILE))
        CHECK(f->offset + f->size <= rows[j].offset || rows[j].offset + rows[j].size <= f->offset);
    }
    note_case(before, f->key);
  }
}

/* Every row: its key sets it (and marks its bit, nothing else), the
 * rendering shows it at its path, and both the rendering and a document
 * with only that path parse back to the same value. */
static void test_table_round_trip(void) {
  size_t n, i;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  for (i = 0; i < n; i++) {
    const jw_policy_field_t *f = &rows[i];
    int before = jw_test_failures;
    jw_policy_t init, p, back, alone;
    jw_error_t err;
    json_t *j, *v, *doc;
    char *text;
    jw_policy_init(&init);
    p = init;
    memset(&err, 0, sizeof err);
    CHECK_INT(jw_policy_set(&p, f->key, jw_test_sample_of(f->type, &value_samples), "test", &err),
              0);
    CHECK_U64(p.set, f->bit);
    CHECK(!same_value(&p, &init, f));
    j = jw_policy_to_json(&p);
    v = j ? at_path(j, f->path) : NULL;
    CHECK(v != NULL);
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    jw_policy_init(&back);
    CHECK_INT(text ? jw_policy_parse(&back, text, strlen(text), "rendered", &err) : -1, 0);
    CHECK(same_value(&back, &p, f));
    CHECK(back.set & f->bit);
    free(text);
    /* The path alone: the file's key stores where the flag's key does. */
    doc = v ? document_at(f->path, v) : NULL;
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    jw_policy_init(&alone);
    CHECK_INT(text ? jw_policy_parse(&alone, text, strlen(text), "alone", &err) : -1, 0);
    CHECK(same_value(&alone, &p, f));
    CHECK_U64(alone.set, f->bit);
    free(text);
    json_decref(doc);
    json_decref(j);
    note_case(before, f->key);
  }
}

/* jw_policy_resolve fills in each row's default for the tier (read as a
 * flag would be) where nothing set the field, leaves the others as
 * jw_policy_init does, and marks nothing; the defaults the monitor uses
 * (JW_*_DEFAULT*) are the rows'. */
static void test_table_tier_defaults(void) {
  static const char *const tiers[] = {"none", "hardened", "lockdown"};
  size_t n, i, t;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  int with_default = 0;
  for (t = 0; t < 3; t++) {
    jw_policy_t p, init;
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "tier", tiers[t], NULL, NULL), 0);
    init = p;
    jw_policy_resolve(&p, &p);
    CHECK_U64(p.set, JW_SET_TIER);
    for (i = 0; i < n; i++) {
      const jw_policy_field_t *f = &rows[i];
      int before = jw_test_failures;
      jw_policy_t want = init;
      if (f->tier_default[t] != NULL) {
        with_default++;
        CHECK_INT(jw_policy_set(&want, f->key, f->tier_default[t], NULL, NULL), 0);
      }
      CHECK(same_value(&p, &want, f));
      note_case(before, f->key);
    }
  }
  CHECK(with_default >= 3 * 10);
  for (i = 0; i < n; i++) {
    jw_policy_t d;
    jw_policy_init(&d);
    if (strcmp(rows[i].key, "coalesce_window") == 0) {
      CHECK_INT(jw_policy_set(&d, rows[i].key, rows[i].tier_default[JW_TIER_NONE], NULL, NULL), 0);
      CHECK_U64(d.coalesce_ms, JW_COALESCE_DEFAULT_MS);
    } else if (strcmp(rows[i].key, "image_hash_cap") == 0) {
      CHECK_INT(jw_policy_set(&d, rows[i].key, rows[i].tier_default[JW_TIER_NONE], NULL, NULL), 0);
      CHECK_U64(d.image_hash_cap, JW_IMAGE_HASH_CAP_DEFAULT);
    } else if (strcmp(rows[i].key, "notification_margin") == 0) {
      CHECK_INT(jw_policy_set(&d, rows[i].key, rows[i].tier_default[JW_TIER_NONE], NULL, NULL), 0);
      CHECK_U64(d.notification_margin_bp, JW_NOTIFY_MARGIN_DEFAULT_BP);
    } else if (strcmp(rows[i].key, "escape_scan_interval") == 0) {
      CHECK_INT(jw_policy_set(&d, rows[i].key, rows[i].tier_default[JW_TIER_HARDENED], NULL, NULL),
                0);
      CHECK_U64(d.escape_scan_ms, JW_ESCAPE_SCAN_DEFAULT_MS);
    }
  }
}

/* The unknown-key message of jw_policy_set lists every row's key once, in
 * row order. */
static void test_table_key_list(void) {
  size_t n, i;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  char want[1024] = "";
  jw_policy_t p;
  jw_error_t err;
  for (i = 0; i < n; i++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? ", " : "", rows[i].key);
  CHECK_STR(want, SET_KEYS);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "nope", "1", "--nope", &err), JW_EINVAL);
  CHECK_CONTAINS(err.text, want);
}

/* docs/policy.md: the "Fields" table has a line for every row (and for
 * the document's own keys, version and exporters), each naming the row's
 * flag; the "Tiers" table has a line for every row with a default, with
 * the row's defaults. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0, got;
  if (f == NULL)
    return NULL;
  do {
    if (len + 4096 > cap) {
      char *b = realloc(buf, cap += 65536);
      if (b == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
    }
    got = fread(buf + len, 1, cap - len - 1, f);
    len += got;
  } while (got > 0);
  fclose(f);
  buf[len] = '\0';
  return buf;
}

/* The table lines ("| ...") of the section whose heading line is
 * `heading`, one by one: *line set to the next, 0 at the end. */
static int next_table_line(const char *doc, const char *heading, const char **line, size_t *len) {
  const char *p = *line == NULL ? strstr(doc, heading) : *line + *len + 1;
  if (p == NULL)
    return 0;
  if (*line == NULL) {
    /* the first table line after the heading */
    p = strstr(p, "\n|");
    if (p == NULL)
      return 0;
    p++;
  }
  if (*p != '|')
    return 0;
  *line = p;
  *len = strcspn(p, "\n");
  return 1;
}

/* Cell k (from 0) of a table line, trimmed, into out. */
static void cell(const char *line, size_t len, int k, char *out, size_t size) {
  const char *p = line + 1, *end = line + len;
  int i;
  for (i = 0; i < k && p < end; i++) {
    const char *bar = memchr(p, '|', (size_t)(end - p));
    p = bar ? bar + 1 : end;
  }
  {
    const char *bar = memchr(p, '|', (size_t)(end - p));
    size_t n = (size_t)((bar ? bar : end) - p);
    while (n > 0 && *p == ' ')
      p++, n--;
    while (n > 0 && p[n - 1] == ' ')
      n--;
    snprintf(out, size, "%.*s", (int)n, p);
  }
}

/* "`"10%"`" -> 10%; "—" -> "" */
static void bare_value(const char *c, char *out, size_t size) {
  size_t n = strlen(c);
  if (n >= 2 && c[0] == '`' && c[n - 1] == '`')
    c++, n -= 2;
  if (n >= 2 && c[0] == '"' && c[n - 1] == '"')
    c++, n -= 2;
  if (strncmp(c, "\xE2\x80\x94", 3) == 0) /* — */
    n = 0;
  snprintf(out, size, "%.*s", (int)n, c);
}

static void test_table_docs(void) {
  char path[1024], *doc;
  size_t n, i, len;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  int *in_fields = calloc(n, sizeof(int)), *in_tiers = calloc(n, sizeof(int));
  const char *line = NULL;
  int extra = 0;
  path_join(path, sizeof path, data_dir, "../../docs/policy.md");
  doc = read_text(path);
  CHECK(doc != NULL && in_fields != NULL && in_tiers != NULL);
  if (doc == NULL || in_fields == NULL || in_tiers == NULL)
    goto done;
  /* | `path` | value | flags |, and `rules.<rule>.tags` (`timeout`, ...) */
  while (next_table_line(doc, "\n### Fields\n", &line, &len)) {
    char first[512], flags[512], docpath[128];
    const char *tick;
    cell(line, len, 0, first, sizeof first);
    cell(line, len, 2, flags, sizeof flags);
    if (first[0] != '`')
      continue; /* the header and its rule */
    for (tick = first; (tick = strchr(tick, '`')) != NULL;) {
      const char *close = strchr(tick + 1, '`');
      size_t tl = close ? (size_t)(close - tick - 1) : 0;
      int found = 0;
      if (close == NULL)
        break;
      if (strstr(first, "<rule>") != NULL) {
        if (tick == first) { /* the pattern itself */
          tick = close + 1;
          continue;
        }
        snprintf(docpath, sizeof docpath, "rules.%.*s.tags", (int)tl, tick + 1);
      } else {
        snprintf(docpath, sizeof docpath, "%.*s", (int)tl, tick + 1);
      }
      for (i = 0; i < n; i++) {
        if (strcmp(rows[i].path, docpath) != 0)
          continue;
        char want[128];
        found = 1;
        in_fields[i]++;
        if (rows[i].flag == NULL) {
          CHECK_CONTAINS(flags, "--rule-tags");
        } else {
          snprintf(want, sizeof want, "`%s%s", rows[i].flag,
                   rows[i].type == JW_PF_BOOL ? "`" : " ");
          CHECK_CONTAINS(flags, want);
          if (rows[i].type == JW_PF_BOOL) {
            snprintf(want, sizeof want, "`--no-%s`", rows[i].flag + 2);
            CHECK_CONTAINS(flags, want);
          }
        }
      }
      if (!found) {
        /* The document's own keys, read outside the table of fields. */
        CHECK(strcmp(docpath, "version") == 0 || strcmp(docpath, "exporters") == 0);
        if (strcmp(docpath, "version") != 0 && strcmp(docpath, "exporters") != 0)
          fprintf(stderr, "docs/policy.md Fields: %s is no row\n", docpath);
        extra++;
      }
      if (strstr(first, "<rule>") == NULL)
        break; /* one path per line */
      tick = close + 1;
    }
  }
  CHECK_INT(extra, 2);
  /* | `path` | none | hardened | lockdown | */
  line = NULL;
  while (next_table_line(doc, "\n## Tiers\n", &line, &len)) {
    char first[256], value[128], docpath[128];
    int t;
    cell(line, len, 0, first, sizeof first);
    if (first[0] != '`')
      continue;
    bare_value(first, docpath, sizeof docpath);
    for (i = 0; i < n && strcmp(rows[i].path, docpath) != 0; i++)
      ;
    CHECK(i < n);
    if (i == n) {
      fprintf(stderr, "docs/policy.md Tiers: %s is no row\n", docpath);
      continue;
    }
    in_tiers[i]++;
    for (t = 0; t < 3; t++) {
      char c[128];
      cell(line, len, 1 + t, c, sizeof c);
      bare_value(c, value, sizeof value);
      CHECK_STR(value, rows[i].tier_default[t] ? rows[i].tier_default[t] : "");
    }
  }
  for (i = 0; i < n; i++) {
    int before = jw_test_failures;
    int has_default = rows[i].tier_default[0] || rows[i].tier_default[1] || rows[i].tier_default[2];
    CHECK_INT(in_fields[i], 1);
    CHECK_INT(in_tiers[i], has_default ? 1 : 0);
    note_case(before, rows[i].path);
  }
done:
  free(in_fields);
  free(in_tiers);
  free(doc);
}

/* ------------------------------------------------------------------------ */

static int write_file(const char *path, const char *head, size_t total) {
  FILE *f = fopen(path, "wb");
  size_t i, hl = strlen(head);
  if (f == NULL)
    return -1;
  fwrite(head, 1, hl, f);
  for (i = hl; i < total; i++)
    fputc(' ', f);
  return fclose(f);
}

static void test_files(void) {
  jw_policy_t p;
  jw_error_t err;
  char path[512], want[1024];

  path_join(path, sizeof path, data_dir, "policy/lockdown.json");
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
  expect_full_policy(&p, path);

  /* The examples shipped in docs/ stay valid. */
  {
    static const char *const examples[] = {"lockdown.json", "hardened.json", "monitor.json"};
    size_t i;
    for (i = 0; i < 3; i++) {
      int before = jw_test_failures;
      snprintf(path, sizeof path, "%s/../../docs/examples/%s", data_dir, examples[i]);
      jw_policy_init(&p);
      memset(&err, 0, sizeof err);
      CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
      CHECK_STR(err.text, "");
      note_case(before, path);
    }
  }

  /* A UTF-8 file name that the ANSI code page cannot spell: on Windows it
   * must reach _wfopen as UTF-16. */
  path_join(path, sizeof path, data_dir,
            "policy/\xC3\xBCn\xC3\xAF"
            "c\xC3\xB8"
            "d\xC3\xA9-"
            "\xE5\x90\x8D\xE5\x89\x8D.json");
  jw_policy_init(&p);
  memset(&err, 0, sizeof err);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
  CHECK_STR(err.text, "");
  CHECK_STR(p.name, "unicode-path");

  path_join(path, sizeof path, data_dir, "policy/bom-utf8.json");
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
  CHECK_STR(p.name, "from-notepad");
  CHECK_INT(p.tier, JW_TIER_HARDENED);

  /* Errors name the file. These paths are short enough to be shown whole. */
  path_join(path, sizeof path, data_dir, "policy/missing-comma.json");
  CHECK(strlen(path) <= 120);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_EPOLICY);
  CHECK_STR(err.where, "");
  snprintf(want, sizeof want, "%s:3:8: invalid JSON: '}' expected near '\"name\"'", path);
  CHECK_STR(err.text, want);

  path_join(path, sizeof path, data_dir, "policy/unknown-limit.json");
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_EPOLICY);
  CHECK_STR(err.where, "limits.job_memroy");
  snprintf(want, sizeof want, "%s: limits.job_memroy: unknown key (known: " LIMIT_KEYS ")", path);
  CHECK_STR(err.text, want);
  CHECK_U64(p.set, 0); /* job_memory before the error was not kept */

  path_join(path, sizeof path, data_dir, "policy/utf16.json");
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_EPOLICY);
  snprintf(want, sizeof want, "%s: the policy is UTF-16 text; save it as UTF-8", path);
  CHECK_STR(err.text, want);

  /* Missing file: JW_ENOENT with errno. */
  path_join(path, sizeof path, data_dir, "policy/does-not-exist.json");
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_ENOENT);
  CHECK_INT(err.code, JW_ENOENT);
  CHECK_U64(err.sys_error, ENOENT);
  snprintf(want, sizeof want, "%s: cannot open the policy file: %s", path, strerror(ENOENT));
  CHECK_STR(err.text, want);

  /* A directory cannot be read as a policy. */
  path_join(path, sizeof path, data_dir, "policy");
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_EIO);
  CHECK_INT(err.code, JW_EIO);
  CHECK(err.sys_error != 0);

  /* 1 MiB exactly is accepted; one byte more is refused. */
  path_join(path, sizeof path, out_dir, "policy-1mib.json");
  CHECK_INT(write_file(path, "{\"tier\": \"lockdown\"}", 1048576), 0);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), 0);
  CHECK_INT(p.tier, JW_TIER_LOCKDOWN);
  remove(path);
  path_join(path, sizeof path, out_dir, "policy-too-big.json");
  CHECK_INT(write_file(path, "{\"tier\": \"lockdown\"}", 1048577), 0);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse_file(&p, path, &err), JW_EPOLICY);
  CHECK_STR(err.where, "");
  snprintf(want, sizeof want,
           "%s: the policy file is larger than 1 MiB (1048576 bytes); a "
           "policy is a few hundred bytes",
           path);
  CHECK_STR(err.text, want);
  CHECK_INT(p.tier, JW_TIER_NONE);
  remove(path);

  CHECK_INT(jw_policy_parse_file(&p, NULL, &err), JW_EINVAL);
  CHECK_INT(jw_policy_parse_file(NULL, "x.json", &err), JW_EINVAL);
}

/* "exporters": SPECs checked at parse time with the policy's error format,
 * stored, rendered back. */
static void test_exporters_array(void) {
  jw_policy_t p;
  jw_error_t err;
  json_t *j;
  const char *ok = "{\"exporters\": [\"file:events.jsonl,rotate=64M,keep=3\", \"stdout\", "
                   "\"syslog+tcp://127.0.0.1:6514\"]}";
  jw_policy_init(&p);
  memset(&err, 0, sizeof err);
  CHECK_INT(jw_policy_parse(&p, ok, strlen(ok), "p.json", &err), 0);
  CHECK_INT(p.n_exporters, 3);
  CHECK_STR(p.exporters[0], "file:events.jsonl,rotate=64M,keep=3");
  CHECK_STR(p.exporters[2], "syslog+tcp://127.0.0.1:6514");
  CHECK(p.set & JW_SET_EXPORTERS);
  j = jw_policy_to_json(&p);
  CHECK(j != NULL);
  CHECK_INT(json_array_size(json_object_get(j, "exporters")), 3);
  CHECK_STR(json_string_value(json_array_get(json_object_get(j, "exporters"), 1)), "stdout");
  json_decref(j);

  {
    static const struct {
      const char *doc, *where, *text;
    } bad[] = {
        {"{\"exporters\": \"stdout\"}", "exporters",
         "p.json: exporters: expected an array of exporter specs like \"file:events.jsonl\", got "
         "\"stdout\""},
        {"{\"exporters\": [\"stdout\", 3]}", "exporters[1]",
         "p.json: exporters[1]: expected an exporter spec string, got 3"},
        {"{\"exporters\": [\"bogus:x\"]}", "exporters[0]",
         "p.json: exporters[0]: unknown exporter 'bogus' (expected " JW_TEST_KINDS ")"},
        {"{\"exporters\": [\"file:x.jsonl,rotate=abc\"]}", "exporters[0]",
         "p.json: exporters[0]: file:x.jsonl,rotate=abc: rotate: expected a size like \"64M\", at "
         "least 1K, got "
         "\"abc\""},
        {"{\"exporters\": [\"syslog+tcp://nohostport\"]}", "exporters[0]",
         "p.json: exporters[0]: syslog+tcp://nohostport: expected syslog+tcp://HOST:PORT"},
        {"{\"exporters\": [\"stdout:x\"]}", "exporters[0]",
         "p.json: exporters[0]: stdout:x: stdout and stderr take no argument"},
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      jw_policy_init(&p);
      memset(&err, 0, sizeof err);
      CHECK_INT(jw_policy_parse(&p, bad[i].doc, strlen(bad[i].doc), "p.json", &err), JW_EPOLICY);
      CHECK_STR(err.where, bad[i].where);
      CHECK_STR(err.text, bad[i].text);
      CHECK_INT(p.n_exporters, 0);
    }
  }
}

/* ------------------------------------------------------------------------ */
/* Monitor rules ("rules")                                                  */
/* ------------------------------------------------------------------------ */

#define EXPECT_ACTION "expected one of \"report\", \"kill_process\", \"kill_job\""
#define EXPECT_TOTAL  "expected an integer from 1 to 4294967295 or \"unlimited\""
#define EXPECT_IMAGE  "expected a file name like \"cmd.exe\""
#define EXPECT_NODIR  "expected a file name like \"cmd.exe\" without a directory or drive"

static const char *const rules_policy =
    "{\"rules\": {\"timeout\": {\"after\": \"30m\", \"action\": \"report\"},\n"
    "  \"total_processes\": {\"max\": 100, \"action\": \"kill_job\"},\n"
    "  \"images\": {\"deny\": [\"cmd.exe\", \"powershell\"], \"allow\": [\"python.exe\"],\n"
    "             \"action\": \"report\"},\n"
    "  \"active_processes\": {\"action\": \"kill_process\"}}}";

static void test_rules_parse(void) {
  jw_policy_t p, r;
  jw_error_t err;
  jw_policy_init(&p);
  CHECK_INT(p.timeout_action, JW_ACTION_DEFAULT);
  CHECK_INT(parse(&p, rules_policy, "r.json", &err), 0);
  CHECK_U64(p.timeout_ms, 1800000);
  CHECK_INT(p.timeout_action, JW_ACTION_REPORT);
  CHECK_U64(p.max_total_processes, 100);
  CHECK_INT(p.total_processes_action, JW_ACTION_KILL_JOB);
  CHECK_INT(p.n_deny_images, 2);
  CHECK_STR(p.deny_images[0], "cmd.exe");
  CHECK_STR(p.deny_images[1], "powershell");
  CHECK_INT(p.n_allow_images, 1);
  CHECK_STR(p.allow_images[0], "python.exe");
  CHECK_INT(p.image_action, JW_ACTION_REPORT);
  CHECK_INT(p.active_processes_action, JW_ACTION_KILL_PROCESS);
  CHECK_U64(p.set, JW_SET_RULES);
  /* Resolving keeps what was chosen. */
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.timeout_action, JW_ACTION_REPORT);
  CHECK_INT(r.total_processes_action, JW_ACTION_KILL_JOB);
  CHECK_INT(r.image_action, JW_ACTION_REPORT);
  CHECK_INT(r.active_processes_action, JW_ACTION_KILL_PROCESS);

  /* Each key marks its own bit and nothing else. */
  {
    static const struct {
      const char *json;
      uint32_t bit;
    } one[] = {
        {"{\"rules\": {\"timeout\": {\"after\": \"1s\"}}}", JW_SET_TIMEOUT},
        {"{\"rules\": {\"timeout\": {\"action\": \"kill_job\"}}}", JW_SET_TIMEOUT_ACTION},
        {"{\"rules\": {\"total_processes\": {\"max\": \"unlimited\"}}}", JW_SET_MAX_TOTAL},
        {"{\"rules\": {\"total_processes\": {\"action\": \"report\"}}}", JW_SET_TOTAL_ACTION},
        {"{\"rules\": {\"images\": {\"deny\": []}}}", JW_SET_DENY_IMAGES},
        {"{\"rules\": {\"images\": {\"allow\": [\"a\"]}}}", JW_SET_ALLOW_IMAGES},
        {"{\"rules\": {\"images\": {\"action\": \"kill_job\"}}}", JW_SET_IMAGE_ACTION},
        {"{\"rules\": {\"active_processes\": {\"action\": \"report\"}}}", JW_SET_ACTIVE_ACTION},
        {"{\"rules\": {}}", 0},
        {"{\"rules\": {\"images\": {}}}", 0},
    };
    size_t i;
    for (i = 0; i < sizeof one / sizeof one[0]; i++) {
      int before = jw_test_failures;
      jw_policy_init(&p);
      CHECK_INT(parse(&p, one[i].json, NULL, &err), 0);
      CHECK_U64(p.set, one[i].bit);
      note_case(before, one[i].json);
    }
  }

  /* Defaults: a rule given only its value gets its own action. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"rules\": {\"timeout\": {\"after\": \"2h\"}, \"total_processes\": {\"max\": "
                  "4294967295}, \"images\": {\"deny\": [\"cmd\"]}}}",
                  NULL, &err),
            0);
  CHECK_U64(p.timeout_ms, 7200000);
  CHECK_U64(p.max_total_processes, 4294967295u);
  CHECK_INT(p.timeout_action, JW_ACTION_DEFAULT);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.timeout_action, JW_ACTION_KILL_JOB);
  CHECK_INT(r.total_processes_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(r.image_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(r.active_processes_action, JW_ACTION_REPORT);
  /* The tiers change no rule. */
  jw_policy_set(&p, "tier", "lockdown", NULL, NULL);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.active_processes_action, JW_ACTION_REPORT);
  CHECK_U64(r.timeout_ms, 7200000);

  /* "unlimited" lifts the timeout and the cap; a list in the file replaces
   * the list, and [] empties it. */
  CHECK_INT(parse(&p,
                  "{\"rules\": {\"timeout\": {\"after\": \"unlimited\"}, \"total_processes\": "
                  "{\"max\": \"unlimited\"}, \"images\": {\"deny\": [\"a.exe\", \"b\"]}}}",
                  NULL, &err),
            0);
  CHECK_U64(p.timeout_ms, 0);
  CHECK_U64(p.max_total_processes, 0);
  CHECK_INT(p.n_deny_images, 2);
  CHECK_STR(p.deny_images[0], "a.exe");
  CHECK_INT(parse(&p, "{\"rules\": {\"images\": {\"deny\": []}}}", NULL, &err), 0);
  CHECK_INT(p.n_deny_images, 0);

  /* The longest name (255 bytes), non-ASCII names, 32 names. */
  {
    char json[9000], name[256];
    int i;
    memset(name, 'n', 255);
    name[255] = '\0';
    snprintf(json, sizeof json, "{\"rules\": {\"images\": {\"allow\": [\"%s\"]}}}", name);
    jw_policy_init(&p);
    CHECK_INT(parse(&p, json, NULL, &err), 0);
    CHECK_STR(p.allow_images[0], name);
    CHECK_INT(parse(&p,
                    "{\"rules\": {\"images\": {\"deny\": [\"\xC3\x9Cn\xC3\xAF.exe\", "
                    "\"\xE5\x90\x8D\xE5\x89\x8D\", \".hidden\", \"a b.exe\"]}}}",
                    NULL, &err),
              0);
    CHECK_STR(p.deny_images[1], "\xE5\x90\x8D\xE5\x89\x8D");
    strcpy(json, "{\"rules\": {\"images\": {\"deny\": [");
    for (i = 0; i < 32; i++)
      snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"x%d.exe\"", i ? "," : "", i);
    strcat(json, "]}}}");
    CHECK_INT(parse(&p, json, NULL, &err), 0);
    CHECK_INT(p.n_deny_images, 32);
    CHECK_STR(p.deny_images[31], "x31.exe");
  }
}

static void test_rules_errors(void) {
  char json[9000], name[300];
  int i;
  expect_parse_error("{\"rules\": 1}", "p.json", "rules",
                     "p.json: rules: expected an object, got 1");
  expect_parse_error("{\"rules\": {\"timeout\": \"30s\"}}", "p.json", "rules.timeout",
                     "p.json: rules.timeout: expected an object, got \"30s\"");
  expect_parse_error("{\"rules\": {\"timout\": {}}}", "p.json", "rules.timout",
                     "p.json: rules.timout: unknown key (known: timeout, total_processes, images, "
                     "active_processes, escape, coalesce)");
  expect_parse_error("{\"rules\": {\"timeout\": {\"afer\": \"1s\"}}}", "p.json",
                     "rules.timeout.afer",
                     "p.json: rules.timeout.afer: unknown key (known: after, action, tags)");
  expect_parse_error("{\"rules\": {\"total_processes\": {\"limit\": 3}}}", NULL,
                     "rules.total_processes.limit",
                     "rules.total_processes.limit: unknown key (known: max, action, tags)");
  expect_parse_error(
      "{\"rules\": {\"images\": {\"block\": []}}}", NULL, "rules.images.block",
      "rules.images.block: unknown key (known: deny, allow, action, tags, hash_cap)");
  expect_parse_error("{\"rules\": {\"active_processes\": {\"max\": 1}}}", NULL,
                     "rules.active_processes.max",
                     "rules.active_processes.max: unknown key (known: action, tags)");
  expect_parse_error("{\"rules\": {\"timeout\": {\"after\": 30}}}", NULL, "rules.timeout.after",
                     "rules.timeout.after: " EXPECT_DURATION ", got 30");
  expect_parse_error("{\"rules\": {\"timeout\": {\"after\": \"0s\"}}}", NULL, "rules.timeout.after",
                     "rules.timeout.after: expected a duration of at least 1ms, or \"unlimited\", "
                     "got \"0s\"");
  expect_parse_error("{\"rules\": {\"timeout\": {\"action\": \"kill\"}}}", NULL,
                     "rules.timeout.action",
                     "rules.timeout.action: " EXPECT_ACTION ", got \"kill\"");
  expect_parse_error("{\"rules\": {\"timeout\": {\"action\": \"default\"}}}", NULL,
                     "rules.timeout.action",
                     "rules.timeout.action: " EXPECT_ACTION ", got \"default\"");
  expect_parse_error("{\"rules\": {\"images\": {\"action\": \"Kill_Job\"}}}", NULL,
                     "rules.images.action",
                     "rules.images.action: " EXPECT_ACTION ", got \"Kill_Job\"");
  expect_parse_error("{\"rules\": {\"active_processes\": {\"action\": 2}}}", NULL,
                     "rules.active_processes.action",
                     "rules.active_processes.action: " EXPECT_ACTION ", got 2");
  expect_parse_error("{\"rules\": {\"total_processes\": {\"max\": 0}}}", NULL,
                     "rules.total_processes.max",
                     "rules.total_processes.max: " EXPECT_TOTAL ", got 0");
  expect_parse_error("{\"rules\": {\"total_processes\": {\"max\": 4294967296}}}", NULL,
                     "rules.total_processes.max",
                     "rules.total_processes.max: " EXPECT_TOTAL ", got 4294967296");
  expect_parse_error("{\"rules\": {\"total_processes\": {\"max\": \"10\"}}}", NULL,
                     "rules.total_processes.max",
                     "rules.total_processes.max: " EXPECT_TOTAL ", got \"10\"");
  expect_parse_error("{\"rules\": {\"total_processes\": {\"max\": -1}}}", NULL,
                     "rules.total_processes.max",
                     "rules.total_processes.max: " EXPECT_TOTAL ", got -1");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": \"cmd.exe\"}}}", NULL,
                     "rules.images.deny",
                     "rules.images.deny: expected an array of file names like [\"cmd.exe\"], got "
                     "\"cmd.exe\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"ok.exe\", \"\"]}}}", NULL,
                     "rules.images.deny[1]", "rules.images.deny[1]: " EXPECT_IMAGE ", got \"\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [3]}}}", NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_IMAGE ", got 3");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"C:\\\\Windows\\\\cmd.exe\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_NODIR ", got \"C:\\\\Windows\\\\cmd.exe\"");
  expect_parse_error("{\"rules\": {\"images\": {\"allow\": [\"bin/python\"]}}}", NULL,
                     "rules.images.allow[0]",
                     "rules.images.allow[0]: " EXPECT_NODIR ", got \"bin/python\"");
  expect_parse_error("{\"rules\": {\"images\": {\"allow\": [\"c:cmd.exe\"]}}}", NULL,
                     "rules.images.allow[0]",
                     "rules.images.allow[0]: " EXPECT_NODIR ", got \"c:cmd.exe\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"cmd.exe.\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_IMAGE ", got \"cmd.exe.\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"cmd.exe \"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_IMAGE ", got \"cmd.exe \"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"*.exe\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_IMAGE ", got \"*.exe\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"a\\u0001b\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: " EXPECT_IMAGE ", got \"a\\x01b\"");
  memset(name, 'n', 256);
  name[256] = '\0';
  snprintf(json, sizeof json, "{\"rules\": {\"images\": {\"deny\": [\"%s\"]}}}", name);
  expect_parse_error(json, NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: expected a file name of at most 255 bytes, got "
                     "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"...");
  strcpy(json, "{\"rules\": {\"images\": {\"allow\": [");
  for (i = 0; i < 33; i++)
    snprintf(json + strlen(json), sizeof json - strlen(json), "%s\"x%d.exe\"", i ? "," : "", i);
  strcat(json, "]}}}");
  expect_parse_error(json, NULL, "rules.images.allow",
                     "rules.images.allow: expected at most 32 file names, got 33");
  /* An unknown key under rules is shown escaped like any other. */
  expect_parse_error("{\"rules\": {\"a\\u001bb\": {}}}", NULL, "rules.a\\x1Bb",
                     "rules.a\\x1Bb: unknown key (known: timeout, total_processes, images, "
                     "active_processes, escape, coalesce)");
}

static void test_rules_set(void) {
  jw_policy_t p;
  jw_error_t err;
  char name[16];
  int i;

  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "timeout", "30s", "--timeout", &err), 0);
  CHECK_U64(p.timeout_ms, 30000);
  CHECK_INT(jw_policy_set(&p, "timeout_action", "kill_process", NULL, &err), 0);
  CHECK_INT(p.timeout_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(jw_policy_set(&p, "max_total_processes", "4294967295", NULL, &err), 0);
  CHECK_U64(p.max_total_processes, 4294967295u);
  CHECK_INT(jw_policy_set(&p, "total_processes_action", "report", NULL, &err), 0);
  CHECK_INT(p.total_processes_action, JW_ACTION_REPORT);
  CHECK_INT(jw_policy_set(&p, "deny_image", "cmd.exe", NULL, &err), 0);
  CHECK_INT(jw_policy_set(&p, "deny_image", "powershell", NULL, &err), 0);
  CHECK_INT(p.n_deny_images, 2);
  CHECK_STR(p.deny_images[1], "powershell");
  CHECK_INT(jw_policy_set(&p, "allow_image", "python.exe", NULL, &err), 0);
  CHECK_INT(p.n_allow_images, 1);
  CHECK_INT(jw_policy_set(&p, "image_action", "kill_job", NULL, &err), 0);
  CHECK_INT(p.image_action, JW_ACTION_KILL_JOB);
  CHECK_INT(jw_policy_set(&p, "active_processes_action", "kill_process", NULL, &err), 0);
  CHECK_INT(p.active_processes_action, JW_ACTION_KILL_PROCESS);
  CHECK_U64(p.set, JW_SET_RULES);
  CHECK_INT(jw_policy_set(&p, "timeout", "unlimited", NULL, &err), 0);
  CHECK_U64(p.timeout_ms, 0);
  CHECK_INT(jw_policy_set(&p, "max_total_processes", "unlimited", NULL, &err), 0);
  CHECK_U64(p.max_total_processes, 0);

  /* Names from flags add to the file's list. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"rules\": {\"images\": {\"deny\": [\"a.exe\"]}}}", NULL, &err), 0);
  CHECK_INT(jw_policy_set(&p, "deny_image", "b.exe", "--deny-image", &err), 0);
  CHECK_INT(p.n_deny_images, 2);
  CHECK_STR(p.deny_images[0], "a.exe");
  CHECK_STR(p.deny_images[1], "b.exe");

  expect_set_error("timeout", "30", "--timeout", JW_EPOLICY, "--timeout",
                   "--timeout: " EXPECT_DURATION ", got \"30\"");
  expect_set_error("timeout", "0ms", "--timeout", JW_EPOLICY, "--timeout",
                   "--timeout: expected a duration of at least 1ms, or \"unlimited\", got \"0ms\"");
  expect_set_error("timeout_action", "kill", "--timeout-action", JW_EPOLICY, "--timeout-action",
                   "--timeout-action: " EXPECT_ACTION ", got \"kill\"");
  expect_set_error("total_processes_action", "", "--total-processes-action", JW_EPOLICY,
                   "--total-processes-action",
                   "--total-processes-action: " EXPECT_ACTION ", got \"\"");
  expect_set_error("image_action", "KILL_JOB", "--image-action", JW_EPOLICY, "--image-action",
                   "--image-action: " EXPECT_ACTION ", got \"KILL_JOB\"");
  expect_set_error("active_processes_action", "default", "--active-processes-action", JW_EPOLICY,
                   "--active-processes-action",
                   "--active-processes-action: " EXPECT_ACTION ", got \"default\"");
  expect_set_error("max_total_processes", "0", "--max-total-processes", JW_EPOLICY,
                   "--max-total-processes", "--max-total-processes: " EXPECT_TOTAL ", got \"0\"");
  expect_set_error("max_total_processes", "4294967296", "--max-total-processes", JW_EPOLICY,
                   "--max-total-processes",
                   "--max-total-processes: " EXPECT_TOTAL ", got \"4294967296\"");
  expect_set_error("max_total_processes", "1e3", "--max-total-processes", JW_EPOLICY,
                   "--max-total-processes", "--max-total-processes: " EXPECT_TOTAL ", got \"1e3\"");
  expect_set_error("deny_image", "C:\\Windows\\cmd.exe", "--deny-image", JW_EPOLICY, "--deny-image",
                   "--deny-image: " EXPECT_NODIR ", got \"C:\\\\Windows\\\\cmd.exe\"");
  expect_set_error("allow_image", "", "--allow-image", JW_EPOLICY, "--allow-image",
                   "--allow-image: " EXPECT_IMAGE ", got \"\"");
  expect_set_error("deny_image", "\xFF.exe", "--deny-image", JW_EPOLICY, "--deny-image",
                   "--deny-image: " EXPECT_IMAGE ", got \"\\xFF.exe\"");
  expect_set_error("deny_image", "a|b", "--deny-image", JW_EPOLICY, "--deny-image",
                   "--deny-image: " EXPECT_IMAGE ", got \"a|b\"");
  /* Invisible characters are valid in file names, and kept. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "deny_image",
                          "\xE2\x80\xAE"
                          "exe.txt",
                          NULL, &err),
            0);
  CHECK_STR(p.deny_images[0], "\xE2\x80\xAE"
                              "exe.txt");

  /* A 33rd name is refused and the policy keeps its 32. */
  {
    jw_policy_t before;
    jw_policy_init(&p);
    for (i = 0; i < 32; i++) {
      snprintf(name, sizeof name, "x%d.exe", i);
      CHECK_INT(jw_policy_set(&p, "allow_image", name, "--allow-image", &err), 0);
    }
    before = p;
    memset(&err, 0, sizeof err);
    CHECK_INT(jw_policy_set(&p, "allow_image", "x32.exe", "--allow-image", &err), JW_EPOLICY);
    CHECK_STR(err.where, "--allow-image");
    CHECK_STR(err.text, "--allow-image: expected at most 32 file names, got one more: \"x32.exe\"");
    CHECK(memcmp(&p, &before, sizeof p) == 0);
  }
}

static void test_rules_to_json(void) {
  jw_policy_t p, back;
  jw_error_t err;
  char *s, *s2;

  CHECK_STR(jw_rule_action_name(JW_ACTION_REPORT), "report");
  CHECK_STR(jw_rule_action_name(JW_ACTION_KILL_PROCESS), "kill_process");
  CHECK_STR(jw_rule_action_name(JW_ACTION_KILL_JOB), "kill_job");
  CHECK_STR(jw_rule_action_name(JW_ACTION_DEFAULT), "default");
  CHECK_STR(jw_rule_action_name((jw_rule_action_t)9), "unknown");

  jw_policy_init(&p);
  CHECK_INT(parse(&p, rules_policy, NULL, &err), 0);
  jw_policy_resolve(&p, &p);
  s = dump(&p);
  CHECK_STR(s, "{\"version\":1,\"tier\":\"none\","
               "\"limits\":{\"active_processes\":\"unlimited\","
               "\"process_memory\":\"unlimited\",\"job_memory\":\"unlimited\","
               "\"process_cpu_time\":\"unlimited\",\"job_cpu_time\":\"unlimited\"},"
               "\"ui_restrictions\":[],"
               "\"kill_on_close\":true,\"die_on_unhandled_exception\":false,"
               "\"allow_breakaway\":false,\"token\":\"inherit\","
               "\"rules\":{\"timeout\":{\"after\":\"1800000ms\",\"action\":\"report\"},"
               "\"total_processes\":{\"max\":100,\"action\":\"kill_job\"},"
               "\"images\":{\"deny\":[\"cmd.exe\",\"powershell\"],\"allow\":[\"python.exe\"],"
               "\"action\":\"report\"},"
               "\"active_processes\":{\"action\":\"kill_process\"},"
               "\"escape\":{\"action\":\"report\",\"scan_interval\":\"off\"},"
               "\"coalesce\":{\"window\":\"10000ms\"}}}");
  /* It parses back to the same rules, every rule field now explicit. */
  jw_policy_init(&back);
  CHECK_INT(jw_policy_parse(&back, s, strlen(s), "to_json", &err), 0);
  CHECK_U64(back.set & JW_SET_RULES, JW_SET_RULES);
  jw_policy_resolve(&back, &back);
  s2 = dump(&back);
  CHECK_STR(s2, s);
  free(s);
  free(s2);

  /* One rule set: the others appear with their defaults. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "deny_image", "cmd", NULL, &err), 0);
  jw_policy_resolve(&p, &p);
  s = dump(&p);
  CHECK(s != NULL && strstr(s, "\"rules\":{\"timeout\":{\"after\":\"unlimited\",\"action\":"
                               "\"kill_job\"},\"total_processes\":{\"max\":\"unlimited\","
                               "\"action\":\"kill_process\"},\"images\":{\"deny\":[\"cmd\"],"
                               "\"allow\":[],\"action\":\"kill_process\"},\"active_processes\":{"
                               "\"action\":\"report\"},\"escape\":{\"action\":\"report\","
                               "\"scan_interval\":\"off\"},\"coalesce\":{\"window\":"
                               "\"10000ms\"}}}") != NULL);
  free(s);
}

/* ------------------------------------------------------------------------ */
/* Notification margin                                                      */
/* ------------------------------------------------------------------------ */

#define EXPECT_MARGIN                                                                              \
  "expected a percentage like \"10%\" or \"2.5%\" (at most two decimals), or \"off\""
#define EXPECT_MARGIN_RANGE "expected a percentage below 100%, like \"10%\""

/* rules.escape: its action and the timed scan's interval; the tiers'
 * defaults; "off"; the errors. */
static void test_escape_rule(void) {
  jw_policy_t p, r;
  jw_error_t err;
  char *s;
  /* Tier defaults. */
  jw_policy_init(&p);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.escape_action, JW_ACTION_REPORT);
  CHECK_U64(r.escape_scan_ms, 0);
  jw_policy_set(&p, "tier", "hardened", NULL, NULL);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.escape_action, JW_ACTION_KILL_PROCESS);
  CHECK_U64(r.escape_scan_ms, JW_ESCAPE_SCAN_DEFAULT_MS);
  jw_policy_set(&p, "tier", "lockdown", NULL, NULL);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.escape_action, JW_ACTION_KILL_PROCESS);
  CHECK_U64(r.escape_scan_ms, 200);
  /* A file sets both; a tier does not override them. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"tier\": \"lockdown\", \"rules\": {\"escape\": {\"action\": \"kill_job\", "
                  "\"scan_interval\": \"off\"}}}",
                  NULL, &err),
            0);
  CHECK_U64(p.set & (JW_SET_ESCAPE_ACTION | JW_SET_ESCAPE_SCAN),
            JW_SET_ESCAPE_ACTION | JW_SET_ESCAPE_SCAN);
  jw_policy_resolve(&p, &r);
  CHECK_INT(r.escape_action, JW_ACTION_KILL_JOB);
  CHECK_U64(r.escape_scan_ms, 0);
  s = dump(&r);
  CHECK(s != NULL &&
        strstr(s, "\"escape\":{\"action\":\"kill_job\",\"scan_interval\":\"off\"}") != NULL);
  free(s);
  /* Flags (jw_policy_set), tier none with a timed scan. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "escape_scan_interval", "1s", "--escape-scan-interval", &err), 0);
  CHECK_INT(jw_policy_set(&p, "escape_action", "kill_process", "--escape-action", &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.escape_scan_ms, 1000);
  CHECK_INT(r.escape_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(jw_policy_set(&p, "escape_scan_interval", "off", NULL, &err), 0);
  CHECK_U64(p.escape_scan_ms, 0);
  /* Errors: what, where, why. */
  expect_parse_error("{\"rules\": {\"escape\": {\"scan_interval\": 200}}}", NULL,
                     "rules.escape.scan_interval",
                     "rules.escape.scan_interval: expected a duration with a unit, like \"200ms\" "
                     "or \"1s\", or \"off\", got 200");
  expect_parse_error("{\"rules\": {\"escape\": {\"scan_interval\": \"unlimited\"}}}", NULL,
                     "rules.escape.scan_interval",
                     "rules.escape.scan_interval: expected a duration with a unit, like \"200ms\" "
                     "or \"1s\", or \"off\", got \"unlimited\"");
  expect_parse_error("{\"rules\": {\"escape\": {\"scan\": \"1s\"}}}", NULL, "rules.escape.scan",
                     "rules.escape.scan: unknown key (known: action, scan_interval, tags)");
  expect_parse_error("{\"rules\": {\"escape\": {\"action\": \"kill\"}}}", NULL,
                     "rules.escape.action", "rules.escape.action: " EXPECT_ACTION ", got \"kill\"");
  expect_set_error("escape_scan_interval", "0ms", "--escape-scan-interval", JW_EPOLICY,
                   "--escape-scan-interval",
                   "--escape-scan-interval: expected a duration of at least 1ms, or \"off\", got "
                   "\"0ms\"");
}

/* rules.<rule>.tags: tags the policy adds to a monitor rule's violations,
 * from the file or one by one from jw_policy_set; rendered with the rule;
 * errors say what, where, why. */
static void test_rule_tags(void) {
  jw_policy_t p, r;
  jw_error_t err;
  char *s;
  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"rules\": {\"images\": {\"deny\": [\"cmd\"], \"tags\": [\"team.review\", "
                  "\"attack.t1059\"]}, \"escape\": {\"tags\": [\"sev_page\"]}}}",
                  NULL, &err),
            0);
  CHECK_U64(p.set & JW_SET_RULE_TAGS, JW_SET_RULE_TAGS);
  CHECK_INT(p.n_rule_tags[JW_TAGGED_IMAGES], 2);
  CHECK_STR(p.rule_tags[JW_TAGGED_IMAGES][0], "team.review");
  CHECK_STR(p.rule_tags[JW_TAGGED_IMAGES][1], "attack.t1059");
  CHECK_INT(p.n_rule_tags[JW_TAGGED_ESCAPE], 1);
  CHECK_INT(p.n_rule_tags[JW_TAGGED_TIMEOUT], 0);
  jw_policy_resolve(&p, &r);
  s = dump(&r);
  CHECK(s != NULL &&
        strstr(s, "\"images\":{\"deny\":[\"cmd\"],\"allow\":[],\"action\":"
                  "\"kill_process\",\"tags\":[\"team.review\",\"attack.t1059\"]}") != NULL);
  CHECK(s != NULL && strstr(s, "\"tags\":[\"sev_page\"]") != NULL);
  free(s);
  /* One by one (flags, jw_policy_set): appended. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "timeout_tags", "a.b", "test", &err), 0);
  CHECK_INT(jw_policy_set(&p, "timeout_tags", "c_d", "test", &err), 0);
  CHECK_INT(p.n_rule_tags[JW_TAGGED_TIMEOUT], 2);
  CHECK_STR(p.rule_tags[JW_TAGGED_TIMEOUT][1], "c_d");
  /* Errors. */
  expect_parse_error("{\"rules\": {\"images\": {\"tags\": [\"Team-X\"]}}}", NULL,
                     "rules.images.tags[0]",
                     "rules.images.tags[0]: expected a tag of 1 to 63 characters from [a-z0-9_.], "
                     "starting with a letter, like \"attack.t1059\", got \"Team-X\"");
  expect_parse_error(
      "{\"rules\": {\"images\": {\"tags\": \"x\"}}}", NULL, "rules.images.tags",
      "rules.images.tags: expected an array of tags like [\"attack.t1059\"], got \"x\"");
  expect_parse_error("{\"rules\": {\"timeout\": {\"tags\": [\"a\", \"b\", \"c\", \"d\"]}}}", NULL,
                     "rules.timeout.tags[3]",
                     "rules.timeout.tags[3]: expected at most 3 tags per rule, got one more: d");
}

/* rules.images.hash_cap: the executable identity's hashing cap. Default
 * 256 MiB (resolve), a size of at least 1 byte in the file (string or
 * integer bytes) and from jw_policy_set / --image-hash-cap; no
 * "unlimited"; rendered only when set, in bytes, and parsed back. */
static void test_image_hash_cap(void) {
  jw_policy_t p, r, back;
  jw_error_t err;
  char *s;
  jw_policy_init(&p);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.image_hash_cap, (uint64_t)256 << 20);
  CHECK_U64(JW_IMAGE_HASH_CAP_DEFAULT, (uint64_t)256 << 20);
  s = dump(&r);
  CHECK(s != NULL && strstr(s, "hash_cap") == NULL);
  free(s);
  CHECK_INT(parse(&p, "{\"rules\": {\"images\": {\"hash_cap\": \"64K\"}}}", NULL, &err), 0);
  CHECK_U64(p.set & JW_SET_IMAGE_HASH_CAP, JW_SET_IMAGE_HASH_CAP);
  CHECK_U64(p.image_hash_cap, 65536);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.image_hash_cap, 65536);
  s = dump(&r);
  CHECK(s != NULL && strstr(s, "\"images\":{\"deny\":[],\"allow\":[],\"action\":\"kill_process\","
                               "\"hash_cap\":65536}") != NULL);
  jw_policy_init(&back);
  CHECK_INT(s != NULL ? parse(&back, s, NULL, &err) : -1, 0);
  CHECK_U64(back.image_hash_cap, 65536);
  free(s);
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"rules\": {\"images\": {\"hash_cap\": 1000}}}", NULL, &err), 0);
  CHECK_U64(p.image_hash_cap, 1000);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "image_hash_cap", "1G", "--image-hash-cap", &err), 0);
  CHECK_U64(p.image_hash_cap, (uint64_t)1 << 30);
  CHECK_INT(jw_policy_set(&p, "image_hash_cap", "512", "--image-hash-cap", &err), 0);
  CHECK_U64(p.image_hash_cap, 512);
  /* The largest size there is: rendered as a string of digits, read back. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "image_hash_cap", "18446744073709551615", "t", &err), 0);
  s = dump(&p);
  CHECK(s != NULL && strstr(s, "\"hash_cap\":\"18446744073709551615\"") != NULL);
  jw_policy_init(&back);
  CHECK_INT(s != NULL ? parse(&back, s, NULL, &err) : -1, 0);
  CHECK_U64(back.image_hash_cap, UINT64_MAX);
  free(s);
  /* Errors: what, where, why; the policy left as it was. */
  expect_parse_error("{\"rules\": {\"images\": {\"hash_cap\": \"unlimited\"}}}", NULL,
                     "rules.images.hash_cap",
                     "rules.images.hash_cap: expected a size of at least 1 byte like \"256M\" "
                     "(there is no \"unlimited\" cap), got \"unlimited\"");
  expect_parse_error("{\"rules\": {\"images\": {\"hash_cap\": 0}}}", NULL, "rules.images.hash_cap",
                     "rules.images.hash_cap: expected a size of at least 1 byte like \"256M\" "
                     "(there is no \"unlimited\" cap), got 0");
  expect_parse_error("{\"rules\": {\"images\": {\"hash_cap\": -5}}}", NULL, "rules.images.hash_cap",
                     "rules.images.hash_cap: expected a size of at least 1 byte like \"256M\" "
                     "(there is no \"unlimited\" cap), got -5");
  expect_parse_error("{\"rules\": {\"images\": {\"hash_cap\": true}}}", NULL,
                     "rules.images.hash_cap",
                     "rules.images.hash_cap: expected a size of at least 1 byte like \"256M\" "
                     "(there is no \"unlimited\" cap), got true");
  expect_set_error("image_hash_cap", "0", "--image-hash-cap", JW_EPOLICY, "--image-hash-cap",
                   "--image-hash-cap: expected a size of at least 1 byte like \"256M\" (there is "
                   "no \"unlimited\" cap), got \"0\"");
  expect_set_error("image_hash_cap", "lots", "--image-hash-cap", JW_EPOLICY, "--image-hash-cap",
                   "--image-hash-cap: expected a size of at least 1 byte like \"256M\" (there is "
                   "no \"unlimited\" cap), got \"lots\"");
  expect_set_error("image_hash_cap", "99999999999999999999", "--image-hash-cap", JW_EPOLICY,
                   "--image-hash-cap",
                   "--image-hash-cap: expected a size of at most 18446744073709551615 bytes, got "
                   "\"99999999999999999999\"");
}

/* rules.coalesce.window: default 10 s, a duration, or "off"; errors say
 * what, where, why. */
static void test_coalesce_window(void) {
  jw_policy_t p, r;
  jw_error_t err;
  char *s;
  jw_policy_init(&p);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.coalesce_ms, JW_COALESCE_DEFAULT_MS);
  CHECK_INT(parse(&p, "{\"rules\": {\"coalesce\": {\"window\": \"2s\"}}}", NULL, &err), 0);
  CHECK_U64(p.set & JW_SET_COALESCE, JW_SET_COALESCE);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.coalesce_ms, 2000);
  s = dump(&r);
  CHECK(s != NULL && strstr(s, "\"coalesce\":{\"window\":\"2000ms\"}") != NULL);
  free(s);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "coalesce_window", "off", "--coalesce-window", &err), 0);
  jw_policy_resolve(&p, &r);
  CHECK_U64(r.coalesce_ms, 0);
  s = dump(&r);
  CHECK(s != NULL && strstr(s, "\"coalesce\":{\"window\":\"off\"}") != NULL);
  free(s);
  expect_parse_error("{\"rules\": {\"coalesce\": {\"window\": 5}}}", NULL, "rules.coalesce.window",
                     "rules.coalesce.window: expected a duration with a unit, like \"200ms\" "
                     "or \"1s\", or \"off\", got 5");
  expect_parse_error("{\"rules\": {\"coalesce\": {\"size\": \"1s\"}}}", NULL, "rules.coalesce.size",
                     "rules.coalesce.size: unknown key (known: window)");
  expect_set_error("coalesce_window", "soon", "--coalesce-window", JW_EPOLICY, "--coalesce-window",
                   "--coalesce-window: expected a duration with a unit, like \"200ms\" or \"1s\", "
                   "or \"off\", got \"soon\"");
}

static void test_margin_parse(void) {
  static const struct {
    const char *text;
    uint32_t bp;
  } ok[] = {{"10%", 1000}, {"2.5%", 250}, {"0.25%", 25},   {"0.01%", 1}, {"99.99%", 9999},
            {"99%", 9900}, {"07%", 700},  {"0%", 0},       {"0.0%", 0},  {"off", 0},
            {"0", 0},      {"1.5%", 150}, {"50.05%", 5005}};
  static const char *const bad[] = {"",     "10",    "%",    ".5%",  "5.%",  "1.234%", "-1%",
                                    "+1%",  "10 %",  " 10%", "10%%", "10% ", "OFF",    "on",
                                    "1e1%", "0x10%", "10p",  "0.5",  "1,5%", "100",    "none"};
  static const char *const range[] = {"100%", "100.00%", "150%", "99999999999999999999999%"};
  jw_policy_t p;
  jw_error_t err;
  char json[128], want[256];
  size_t i;
  uint32_t bp;

  for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int before = jw_test_failures;
    bp = 12345;
    CHECK_INT(jw_parse_margin(ok[i].text, &bp), 0);
    CHECK_U64(bp, ok[i].bp);
    /* The same text from a policy file and from the flag. */
    jw_policy_init(&p);
    snprintf(json, sizeof json, "{\"limits\": {\"notification_margin\": \"%s\"}}", ok[i].text);
    CHECK_INT(parse(&p, json, NULL, &err), 0);
    CHECK_U64(p.notification_margin_bp, ok[i].bp);
    CHECK_U64(p.set, JW_SET_NOTIFY_MARGIN);
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "notification_margin", ok[i].text, "--notification-margin", &err),
              0);
    CHECK_U64(p.notification_margin_bp, ok[i].bp);
    CHECK_U64(p.set, JW_SET_NOTIFY_MARGIN);
    note_case(before, ok[i].text);
  }
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int before = jw_test_failures;
    bp = 7;
    CHECK_INT(jw_parse_margin(bad[i], &bp), JW_EINVAL);
    CHECK_U64(bp, 7);
    snprintf(json, sizeof json, "{\"limits\": {\"notification_margin\": \"%s\"}}", bad[i]);
    snprintf(want, sizeof want, "limits.notification_margin: %s, got \"%s\"", EXPECT_MARGIN,
             bad[i]);
    expect_parse_error(json, NULL, "limits.notification_margin", want);
    snprintf(want, sizeof want, "--notification-margin: %s, got \"%s\"", EXPECT_MARGIN, bad[i]);
    expect_set_error("notification_margin", bad[i], "--notification-margin", JW_EPOLICY,
                     "--notification-margin", want);
    note_case(before, bad[i]);
  }
  for (i = 0; i < sizeof range / sizeof range[0]; i++) {
    int before = jw_test_failures;
    CHECK_INT(jw_parse_margin(range[i], &bp), JW_EINVAL);
    snprintf(json, sizeof json, "{\"limits\": {\"notification_margin\": \"%s\"}}", range[i]);
    snprintf(want, sizeof want, "limits.notification_margin: %s, got \"%s\"", EXPECT_MARGIN_RANGE,
             range[i]);
    expect_parse_error(json, NULL, "limits.notification_margin", want);
    snprintf(want, sizeof want, "--notification-margin: %s, got \"%s\"", EXPECT_MARGIN_RANGE,
             range[i]);
    expect_set_error("notification_margin", range[i], "--notification-margin", JW_EPOLICY,
                     "--notification-margin", want);
    note_case(before, range[i]);
  }
  /* In a file: the integer 0 means off; any other number is ambiguous
   * (10 % or 0.1?), and so is every other JSON type. */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"limits\": {\"notification_margin\": 0}}", NULL, &err), 0);
  CHECK_U64(p.notification_margin_bp, 0);
  CHECK_U64(p.set, JW_SET_NOTIFY_MARGIN);
  expect_parse_error("{\"limits\": {\"notification_margin\": 10}}", NULL,
                     "limits.notification_margin",
                     "limits.notification_margin: " EXPECT_MARGIN ", got 10");
  expect_parse_error("{\"limits\": {\"notification_margin\": 0.1}}", NULL,
                     "limits.notification_margin",
                     "limits.notification_margin: " EXPECT_MARGIN ", got 0.1");
  expect_parse_error("{\"limits\": {\"notification_margin\": false}}", NULL,
                     "limits.notification_margin",
                     "limits.notification_margin: " EXPECT_MARGIN ", got false");
  expect_parse_error("{\"limits\": {\"notification_margin\": null}}", NULL,
                     "limits.notification_margin",
                     "limits.notification_margin: " EXPECT_MARGIN ", got null");
  expect_parse_error("{\"limits\": {\"notification_margin\": [\"10%\"]}}", NULL,
                     "limits.notification_margin",
                     "limits.notification_margin: " EXPECT_MARGIN ", got an array");
  /* The key lives in "limits", nowhere else. */
  expect_parse_error("{\"notification_margin\": \"10%\"}", NULL, "notification_margin",
                     "notification_margin: unknown key (known: " TOP_KEYS ")");
  CHECK_INT(jw_parse_margin(NULL, &bp), JW_EINVAL);
  CHECK_INT(jw_parse_margin("10%", NULL), JW_EINVAL);
}

static void test_margin_resolve_and_render(void) {
  jw_policy_t p;
  jw_error_t err;
  char *s;

  /* Not set: the default after resolving; an explicit "off" stays off. */
  jw_policy_init(&p);
  CHECK_U64(p.notification_margin_bp, 0);
  jw_policy_resolve(&p, &p);
  CHECK_U64(p.notification_margin_bp, JW_NOTIFY_MARGIN_DEFAULT_BP);
  CHECK_U64(p.set, 0);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "off", NULL, &err), 0);
  jw_policy_resolve(&p, &p);
  CHECK_U64(p.notification_margin_bp, 0);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "2.5%", NULL, &err), 0);
  jw_policy_resolve(&p, &p);
  CHECK_U64(p.notification_margin_bp, 250);

  /* Rendered (effective value) where a job limit makes it matter... */
  jw_policy_init(&p);
  CHECK_INT(parse(&p, "{\"limits\": {\"job_cpu_time\": \"1m\"}}", NULL, &err), 0);
  s = dump(&p); /* unresolved: still the effective default */
  CHECK_CONTAINS(s, "\"job_cpu_time\":\"60000ms\",\"notification_margin\":\"10%\"}");
  free(s);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "0.25%", NULL, &err), 0);
  s = dump(&p);
  CHECK_CONTAINS(s, "\"notification_margin\":\"0.25%\"}");
  free(s);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "7.5%", NULL, &err), 0);
  s = dump(&p);
  CHECK_CONTAINS(s, "\"notification_margin\":\"7.5%\"}");
  free(s);
  round_trip(&p, "margin 7.5%");
  /* ... or where the policy chose it, even without a job limit ... */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "notification_margin", "0", NULL, &err), 0);
  s = dump(&p);
  CHECK_CONTAINS(s, "\"job_cpu_time\":\"unlimited\",\"notification_margin\":\"off\"}");
  free(s);
  /* ... and left out otherwise. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "process_memory", "1G", NULL, &err), 0);
  jw_policy_resolve(&p, &p);
  s = dump(&p);
  CHECK(s != NULL && strstr(s, "notification_margin") == NULL);
  free(s);
}

static void test_notification_threshold(void) {
  /* limit - floor(limit * margin / 100 %), exact for any 64-bit limit. */
  CHECK_U64(jw_notification_threshold(512ull << 20, 1000), 483183821ull);
  CHECK_U64(jw_notification_threshold(1ull << 30, 1000), 966367642ull);
  CHECK_U64(jw_notification_threshold(60000, 1000), 54000);
  CHECK_U64(jw_notification_threshold(60000, 250), 58500);
  CHECK_U64(jw_notification_threshold(922337203685477ull, 1000), 830103483316930ull);
  /* No overflow at the top of the range. */
  CHECK_U64(jw_notification_threshold(UINT64_MAX, 1000), 16602069666338596454ull);
  CHECK_U64(jw_notification_threshold(UINT64_MAX, 9999), 1844674407370956ull);
  CHECK_U64(jw_notification_threshold(UINT64_MAX, 1), 18444899399302180660ull);
  CHECK_U64(jw_notification_threshold((uint64_t)INT64_MAX, 1000), 8301034833169298227ull);
  /* Rounded down: the warning never comes earlier than asked. */
  CHECK_U64(jw_notification_threshold(10, 1000), 9);
  CHECK_U64(jw_notification_threshold(19, 1000), 18);
  CHECK_U64(jw_notification_threshold(2, 9999), 1);
  CHECK_U64(jw_notification_threshold(10000, 1), 9999);
  /* No warning: no limit, margin off, 100 % or more, or a margin that
   * rounds to nothing (the threshold would be the limit itself). */
  CHECK_U64(jw_notification_threshold(0, 1000), 0);
  CHECK_U64(jw_notification_threshold(1ull << 30, 0), 0);
  CHECK_U64(jw_notification_threshold(1ull << 30, 10000), 0);
  CHECK_U64(jw_notification_threshold(1ull << 30, 20000), 0);
  CHECK_U64(jw_notification_threshold(UINT64_MAX, UINT32_MAX), 0);
  CHECK_U64(jw_notification_threshold(9, 1000), 0);
  CHECK_U64(jw_notification_threshold(1, 9999), 0);
  CHECK_U64(jw_notification_threshold(9999, 1), 0);
}

/* Image list entries by hash, OriginalFileName and signer (issue 10,
 * section 2): parsed from a file and from flags, bad ones refused with
 * what, where and why. */
#define SHA_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SHA_U "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
static void test_image_entries(void) {
  jw_policy_t p;
  jw_error_t err;
  char json[1024], name[300];

  jw_policy_init(&p);
  CHECK_INT(parse(&p,
                  "{\"rules\": {\"images\": {\"deny\": [\"cmd.exe\", \"sha256:" SHA_U "\", "
                  "\"original_file_name:Cmd.Exe\", \"signer:Evil Corp Ltd\", "
                  "\"original_file_name:powershell\"]}}}",
                  "p.json", &err),
            0);
  CHECK_INT(p.n_deny_images, 5);
  CHECK_STR(p.deny_images[0], "cmd.exe");
  CHECK_STR(p.deny_images[1], "sha256:" SHA_A); /* kept lowercase */
  CHECK_STR(p.deny_images[2], "original_file_name:Cmd.Exe");
  CHECK_STR(p.deny_images[3], "signer:Evil Corp Ltd");
  CHECK_STR(p.deny_images[4], "original_file_name:powershell");
  /* Rendered back as stored: the resolved policy in job_start shows them. */
  {
    json_t *j = jw_policy_to_json(&p);
    char *text =
        json_dumps(json_object_get(json_object_get(json_object_get(j, "rules"), "images"), "deny"),
                   JSON_COMPACT);
    CHECK_STR(text, "[\"cmd.exe\",\"sha256:" SHA_A "\",\"original_file_name:Cmd.Exe\","
                    "\"signer:Evil Corp Ltd\",\"original_file_name:powershell\"]");
    free(text);
    json_decref(j);
  }
  /* Flags take the same entries. */
  jw_policy_init(&p);
  CHECK_INT(jw_policy_set(&p, "deny_image", "sha256:" SHA_U, "--deny-image", &err), 0);
  CHECK_INT(jw_policy_set(&p, "allow_image", "signer:Microsoft Corporation", "--allow-image", &err),
            0);
  CHECK_INT(jw_policy_set(&p, "allow_image", "original_file_name:python.exe", NULL, &err), 0);
  CHECK_STR(p.deny_images[0], "sha256:" SHA_A);
  CHECK_STR(p.allow_images[0], "signer:Microsoft Corporation");
  CHECK_STR(p.allow_images[1], "original_file_name:python.exe");

  /* Refused: what, where and why. */
  expect_parse_error(
      "{\"rules\": {\"images\": {\"deny\": [\"a.exe\", \"b.exe\", \"sha256:abc\"]}}}", "p.json",
      "rules.images.deny[2]",
      "p.json: rules.images.deny[2]: sha256: expected 64 hex digits, got \"abc\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"sha256:\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: sha256: expected 64 hex digits, got \"\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"sha256:" SHA_A "0\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: sha256: expected 64 hex digits, got 65 characters "
                     "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\"...");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"sha256:"
                     "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]}}}",
                     NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: sha256: expected 64 hex digits, got "
                     "\"g123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\"...");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"sha256:0123456789abcdef\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: sha256: expected 64 hex digits, got "
                     "\"0123456789abcdef\"");
  /* Kinds are lowercase, as documented. */
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"SHA256:" SHA_A "\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: unknown entry kind \"SHA256\" (known: sha256, "
                     "original_file_name, signer)");
  expect_parse_error("{\"rules\": {\"images\": {\"allow\": [\"original_file_name:\"]}}}", NULL,
                     "rules.images.allow[0]",
                     "rules.images.allow[0]: original_file_name: " EXPECT_IMAGE ", got \"\"");
  expect_parse_error(
      "{\"rules\": {\"images\": {\"allow\": [\"original_file_name:C:\\\\x\\\\cmd.exe\"]}}}", NULL,
      "rules.images.allow[0]",
      "rules.images.allow[0]: original_file_name: " EXPECT_NODIR ", got \"C:\\\\x\\\\cmd.exe\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"original_file_name:cmd.exe \"]}}}",
                     NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: original_file_name: " EXPECT_IMAGE
                     ", got \"cmd.exe \"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"signer:\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: signer: expected a signer's subject name like "
                     "\"Microsoft Corporation\", got \"\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"signer:Evil\\u202eCorp\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: signer: expected a signer's subject name like "
                     "\"Microsoft Corporation\", got \"Evil\\u202ECorp\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"signer: Evil\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: signer: expected a signer's subject name like "
                     "\"Microsoft Corporation\", got \" Evil\"");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"sha1:abcd\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: unknown entry kind \"sha1\" (known: sha256, "
                     "original_file_name, signer)");
  expect_parse_error("{\"rules\": {\"images\": {\"deny\": [\"signature:x\"]}}}", NULL,
                     "rules.images.deny[0]",
                     "rules.images.deny[0]: unknown entry kind \"signature\" (known: sha256, "
                     "original_file_name, signer)");
  memset(name, 'n', 250);
  name[250] = '\0';
  snprintf(json, sizeof json, "{\"rules\": {\"images\": {\"deny\": [\"signer:%s\"]}}}", name);
  expect_parse_error(json, NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: signer: expected an entry of at most 255 bytes, got "
                     "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"...");
  snprintf(json, sizeof json, "{\"rules\": {\"images\": {\"deny\": [\"original_file_name:%s\"]}}}",
           name);
  expect_parse_error(json, NULL, "rules.images.deny[0]",
                     "rules.images.deny[0]: original_file_name: expected an entry of at most 255 "
                     "bytes, got "
                     "\"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"...");
  /* The longest that fits: 255 bytes in all. */
  memset(name, 's', 248);
  name[248] = '\0';
  snprintf(json, sizeof json, "{\"rules\": {\"images\": {\"deny\": [\"signer:%s\"]}}}", name);
  jw_policy_init(&p);
  CHECK_INT(parse(&p, json, NULL, &err), 0);
  CHECK_INT(strlen(p.deny_images[0]), 255);
  expect_set_error("deny_image", "sha256:xyz", "--deny-image", JW_EPOLICY, "--deny-image",
                   "--deny-image: sha256: expected 64 hex digits, got \"xyz\"");
  expect_set_error("allow_image", "md5:00", "--allow-image", JW_EPOLICY, "--allow-image",
                   "--allow-image: unknown entry kind \"md5\" (known: sha256, original_file_name, "
                   "signer)");
}

/* jw__image_list_match: the portable matcher the monitor uses. */
static void test_image_match(void) {
  static const char list[][JW_IMAGE_NAME_MAX] = {
      "cmd", "sha256:" SHA_A, "original_file_name:PowerShell.EXE", "signer:Evil Corp Ltd",
      "original_file_name:wscript"};
  static const char names[][JW_IMAGE_NAME_MAX] = {"cmd.exe", "python"};
  jw_image_facts_t f;
  const char *m = "x";

  /* Plain names, as the monitor matched them before. */
  memset(&f, 0, sizeof f);
  f.file_name = "CMD.EXE";
  CHECK_INT(jw__image_list_match(names, 2, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "cmd.exe");
  f.file_name = "python.exe";
  CHECK_INT(jw__image_list_match(names, 2, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "python");
  f.file_name = "cmd.exe.bak";
  CHECK_INT(jw__image_list_match(names, 2, &f, &m), JW_IMAGE_NO_MATCH);
  CHECK(m == NULL);
  f.file_name = "python"; /* no extension: equal to the entry */
  CHECK_INT(jw__image_list_match(names, 2, &f, &m), JW_IMAGE_MATCH);
  f.file_name = ".exe";
  CHECK_INT(jw__image_list_match(names, 2, &f, NULL), JW_IMAGE_NO_MATCH);
  f.file_name = "pythonw.exe";
  CHECK_INT(jw__image_list_match(names, 2, &f, NULL), JW_IMAGE_NO_MATCH);

  /* A renamed cmd.exe: the name says nothing, the hash and the
   * OriginalFileName catch it; before they are known: undecided. */
  memset(&f, 0, sizeof f);
  f.file_name = "notepad.exe";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_UNDECIDED);
  CHECK(m == NULL);
  f.sha256 = SHA_A;
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "sha256:" SHA_A);
  f.sha256 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_UNDECIDED);
  f.original_file_name = "powershell.exe";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "original_file_name:PowerShell.EXE");
  f.original_file_name = "WScript.exe"; /* an entry without a dot: .exe optional */
  f.signer = "";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "original_file_name:wscript");
  /* Every fact known, none matching. "" = known absent (no version
   * resource, no trusted signer). */
  f.original_file_name = "";
  f.signer = "";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_NO_MATCH);
  CHECK(m == NULL);
  /* The signer: exact, ignoring case; not a prefix or a part. */
  f.signer = "EVIL CORP LTD";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "signer:Evil Corp Ltd");
  f.signer = "Evil Corp";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_NO_MATCH);
  f.signer = "Evil Corp Ltd.";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_NO_MATCH);
  /* The first matching entry in list order decides, even while a later
   * one is undecided; an undecided earlier one does not stop a match. */
  memset(&f, 0, sizeof f);
  f.file_name = "cmd.exe";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "cmd");
  memset(&f, 0, sizeof f);
  f.signer = "evil corp ltd";
  CHECK_INT(jw__image_list_match(list, 5, &f, &m), JW_IMAGE_MATCH);
  CHECK_STR(m, "signer:Evil Corp Ltd");
  /* A hash entry never matches by name, a name entry never by hash. */
  {
    static const char only[][JW_IMAGE_NAME_MAX] = {"sha256:" SHA_A};
    memset(&f, 0, sizeof f);
    f.file_name = "sha256:" SHA_A;
    f.original_file_name = "";
    f.signer = "";
    CHECK_INT(jw__image_list_match(only, 1, &f, NULL), JW_IMAGE_UNDECIDED);
    f.sha256 = SHA_A "";
    CHECK_INT(jw__image_list_match(only, 1, &f, NULL), JW_IMAGE_MATCH);
    CHECK_INT(jw__image_list_match(only, 0, &f, &m), JW_IMAGE_NO_MATCH);
  }
  /* Parsed entries match as written: the uppercase hash was lowered. */
  {
    jw_policy_t p;
    jw_error_t err;
    jw_policy_init(&p);
    CHECK_INT(jw_policy_set(&p, "deny_image", "sha256:" SHA_U, NULL, &err), 0);
    memset(&f, 0, sizeof f);
    f.sha256 = SHA_A;
    CHECK_INT(jw__image_list_match(p.deny_images, p.n_deny_images, &f, &m), JW_IMAGE_MATCH);
  }
#ifdef _WIN32
  /* On Windows, letters beyond ASCII compare ignoring case too (the
   * comparison the monitor has always used). */
  {
    static const char uni[][JW_IMAGE_NAME_MAX] = {"\xC3\x89vil.exe"}; /* Évil.exe */
    memset(&f, 0, sizeof f);
    f.file_name = "\xC3\xA9VIL.EXE"; /* éVIL.EXE */
    CHECK_INT(jw__image_list_match(uni, 1, &f, NULL), JW_IMAGE_MATCH);
  }
#endif
}

/* Runnable one by one: `test_policy DATA OUT --case parse_full`. */
static const jw_test_case_t cases[] = {
    {"init", test_init, 30},
    {"tier_names", test_tier_names, 30},
    {"parse_size", test_parse_size, 30},
    {"parse_duration", test_parse_duration, 30},
    {"parse_full", test_parse_full, 30},
    {"parse_errors", test_parse_errors, 30},
    {"hostile_messages", test_hostile_messages, 30},
    {"set", test_set, 30},
    {"token_key", test_token_key, 30},
    {"resolve", test_resolve, 30},
    {"override_order", test_override_order, 30},
    {"to_json", test_to_json, 30},
    {"files", test_files, 30},
    {"exporters_array", test_exporters_array, 30},
    {"rules_parse", test_rules_parse, 30},
    {"rules_errors", test_rules_errors, 30},
    {"rules_set", test_rules_set, 30},
    {"rules_to_json", test_rules_to_json, 30},
    {"escape_rule", test_escape_rule, 30},
    {"margin_parse", test_margin_parse, 30},
    {"margin_resolve_and_render", test_margin_resolve_and_render, 30},
    {"notification_threshold", test_notification_threshold, 30},
    {"coalesce_window", test_coalesce_window, 30},
    {"rule_tags", test_rule_tags, 30},
    {"image_hash_cap", test_image_hash_cap, 30},
    {"image_entries", test_image_entries, 30},
    {"image_match", test_image_match, 30},
    {"rendering_golden", test_rendering_golden, 30},
    {"table_rows", test_table_rows, 30},
    {"table_round_trip", test_table_round_trip, 30},
    {"table_tier_defaults", test_table_tier_defaults, 30},
    {"table_key_list", test_table_key_list, 30},
    {"table_docs", test_table_docs, 30},
};

int main(int argc, char **argv) {
  data_dir = jw_test_arg(argc, argv, 1, ".");
  out_dir = jw_test_arg(argc, argv, 2, ".");
  return jw_test_run_cases("policy", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

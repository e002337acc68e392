/* The event model: names, time and entity-id formatting, whole rendered
 * lines compared byte for byte, the extra-merge rules, invalid UTF-8, and the
 * data-driven hostile-string suite of DATA_DIR/hostile (see its README).
 * usage: test_event DATA_DIR OUT_DIR
 * Every line rendered for a valid event is also written to
 * OUT_DIR/unit-event.jsonl (one run, seq 1, 2, 3...), which the
 * <tree>.unit.schema test validates against docs/jobwarden-event.schema.json. */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "event_names.h"
#include "rule_catalog.h"
#include "harness.h"
#include "internal.h"
#include "jobwarden.h"
#include "test_util.h"

/* 2026-11-23T09:11:05.123456Z; event n of the file is n-1 seconds later. */
#define T0 UINT64_C(1795425065123456)

static FILE *events_file;
static uint64_t next_seq = 1;

static jw_run_info_t test_run(void) {
  jw_run_info_t run;
  memset(&run, 0, sizeof(run));
  strcpy(run.run_id, "0123456789abcdef0123456789abcdef");
  strcpy(run.host, "build-host");
  strcpy(run.job_name, "agent-ci");
  run.tier = JW_TIER_LOCKDOWN;
  return run;
}

static void init_event(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                       const char *enforcer, jw_severity_t sev, const char *source,
                       const char *message) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = kind;
  ev->rule = rule;
  ev->action = action;
  ev->enforcer = enforcer;
  ev->severity = sev;
  ev->source = source;
  strcpy(ev->message, message);
}

/* jw_event_render_line (the direct renderer) with the reference of the
 * same event beside it (jw__event_render_jansson: jansson's object and
 * dump): every line this test renders is compared byte for byte, and the
 * result codes must agree. */
static int render_line(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                       uint64_t time_us, char **out, size_t *out_len) {
  char *ref = NULL;
  size_t ref_len = 0;
  int rc = jw_event_render_line(ev, run, seq, time_us, out, out_len);
  int ref_rc = jw__event_render_jansson(ev, run, seq, time_us, out ? &ref : NULL, &ref_len);
  jw_test_checks++;
  if (rc != ref_rc ||
      (rc == 0 && out_len != NULL && (*out_len != ref_len || memcmp(*out, ref, ref_len) != 0))) {
    jw_test_failures++;
    fprintf(stderr,
            "direct renderer differs from the reference (rc %d / %d)\n  direct: %.*s\n  jansson: "
            "%.*s\n",
            rc, ref_rc, rc == 0 && out_len ? (int)*out_len : 0, rc == 0 && out ? *out : "",
            (int)ref_len, ref ? ref : "");
  }
  free(ref);
  return rc;
}

/* The line parses back, and dumping the parsed object gives the same bytes
 * (compact, same key order: nothing is lost or reordered). */
static void check_reparse(const char *line, size_t len, int lineno) {
  json_error_t jerr;
  json_t *back = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
  char *again = NULL;
  jw_test_checks++;
  if (back == NULL) {
    jw_test_failures++;
    fprintf(stderr, "%s:%d: rendered line does not parse: %s (column %d)\n", __FILE__, lineno,
            jerr.text, jerr.column);
    return;
  }
  again = json_dumps(back, JSON_COMPACT | JSON_PRESERVE_ORDER);
  CHECK(again != NULL && strlen(again) + 1 == len && memcmp(again, line, len - 1) == 0);
  free(again);
  json_decref(back);
}

/* Renders ev with the next seq of the file, compares with `want` (the
 * whole line without its "\n") when not NULL, appends to the file.
 * Returns the line (caller frees) or NULL. */
static char *emit(const jw_event_t *ev, const char *want, int lineno) {
  jw_run_info_t run = test_run();
  char *line = NULL;
  size_t len = 0;
  uint64_t seq = next_seq++;
  int rc = render_line(ev, &run, seq, T0 + (seq - 1) * 1000000, &line, &len);
  jw_test_checks++;
  if (rc != 0 || line == NULL) {
    jw_test_failures++;
    fprintf(stderr, "%s:%d: render failed: %d\n", __FILE__, lineno, rc);
    return NULL;
  }
  /* One record: ends with the only "\n" of the line, length exact. */
  CHECK_U64(len, strlen(line));
  CHECK(len > 0 && line[len - 1] == '\n');
  CHECK(memchr(line, '\n', len - 1) == NULL);
  if (want != NULL) {
    jw_test_checks++;
    if (len != strlen(want) + 1 || memcmp(line, want, len - 1) != 0) {
      jw_test_failures++;
      fprintf(stderr, "%s:%d: rendered line differs\n  got:  %.*s\n  want: %s\n", __FILE__, lineno,
              (int)(len - 1), line, want);
    }
  }
  check_reparse(line, len, lineno);
  if (events_file != NULL)
    CHECK(fwrite(line, 1, len, events_file) == len);
  return line;
}

#define EMIT(ev, want) free(emit(ev, want, __LINE__))

/* ---- names, time, entity id --------------------------------------------- */

static void test_names(void) {
  uint32_t id;
  CHECK_STR(jw_event_kind_name(JW_EVENT_VIOLATION), "sandbox.violation");
  CHECK_STR(jw_event_kind_name(JW_EVENT_JOB_START), "sandbox.job_start");
  CHECK_STR(jw_event_kind_name(JW_EVENT_JOB_END), "sandbox.job_end");
  CHECK_STR(jw_event_kind_name(JW_EVENT_PROCESS_START), "sandbox.process_start");
  CHECK_STR(jw_event_kind_name(JW_EVENT_PROCESS_EXIT), "sandbox.process_exit");
  CHECK_STR(jw_event_kind_name(JW_EVENT_NOTICE), "sandbox.notice");
  CHECK_STR(jw_event_kind_name((jw_event_kind_t)99), "unknown");
  CHECK_STR(jw_severity_name(JW_SEV_INFO), "info");
  CHECK_STR(jw_severity_name(JW_SEV_LOW), "low");
  CHECK_STR(jw_severity_name(JW_SEV_MEDIUM), "medium");
  CHECK_STR(jw_severity_name(JW_SEV_HIGH), "high");
  CHECK_STR(jw_severity_name(JW_SEV_CRITICAL), "critical");
  CHECK_STR(jw_severity_name((jw_severity_t)5), "unknown");

  CHECK_STR(jw__job_message_name(1), "JOB_OBJECT_MSG_END_OF_JOB_TIME");
  CHECK_STR(jw__job_message_name(2), "JOB_OBJECT_MSG_END_OF_PROCESS_TIME");
  CHECK_STR(jw__job_message_name(3), "JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT");
  CHECK_STR(jw__job_message_name(4), "JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO");
  CHECK_STR(jw__job_message_name(6), "JOB_OBJECT_MSG_NEW_PROCESS");
  CHECK_STR(jw__job_message_name(7), "JOB_OBJECT_MSG_EXIT_PROCESS");
  CHECK_STR(jw__job_message_name(8), "JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS");
  CHECK_STR(jw__job_message_name(9), "JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT");
  CHECK_STR(jw__job_message_name(10), "JOB_OBJECT_MSG_JOB_MEMORY_LIMIT");
  CHECK_STR(jw__job_message_name(11), "JOB_OBJECT_MSG_NOTIFICATION_LIMIT");
  CHECK_STR(jw__job_message_name(12), "JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT");
  CHECK_STR(jw__job_message_name(13), "JOB_OBJECT_MSG_SILO_TERMINATED");
  CHECK_STR(jw__job_message_name(0), "UNKNOWN");
  CHECK_STR(jw__job_message_name(5), "UNKNOWN");
  CHECK_STR(jw__job_message_name(14), "UNKNOWN");
  CHECK_STR(jw__job_message_name(0xFFFFFFFFu), "UNKNOWN");
  /* Every id 1..13 but 5 has a real name, with the prefix. */
  for (id = 1; id <= 13; id++)
    if (id != 5)
      CHECK(strncmp(jw__job_message_name(id), "JOB_OBJECT_MSG_", 15) == 0);
}

static void check_time(uint64_t us, const char *want, int lineno) {
  char buf[40];
  memset(buf, 'x', sizeof(buf));
  jw_format_time_us(us, buf, sizeof(buf));
  jw_test_checks++;
  if (strcmp(buf, want) != 0) {
    jw_test_failures++;
    fprintf(stderr, "%s:%d: time %" PRIu64 " -> %s, want %s\n", __FILE__, lineno, us, buf, want);
  }
}
#define TIME_CASE(us, want) check_time(us, want, __LINE__)

static void test_time(void) {
  char buf[40];
  unsigned y = 1970, m = 1, d = 1, mismatches = 0;
  uint64_t day;

  TIME_CASE(0, "1970-01-01T00:00:00.000000Z");
  TIME_CASE(1, "1970-01-01T00:00:00.000001Z");
  TIME_CASE(999999, "1970-01-01T00:00:00.999999Z");
  TIME_CASE(1000000, "1970-01-01T00:00:01.000000Z");
  TIME_CASE(UINT64_C(86399999999), "1970-01-01T23:59:59.999999Z");
  TIME_CASE(UINT64_C(86400000000), "1970-01-02T00:00:00.000000Z");
  TIME_CASE(UINT64_C(94694399000005), "1972-12-31T23:59:59.000005Z");
  TIME_CASE(UINT64_C(946684799999999), "1999-12-31T23:59:59.999999Z");
  TIME_CASE(UINT64_C(951868799999999), "2000-02-29T23:59:59.999999Z");
  TIME_CASE(UINT64_C(1709210096789012), "2024-02-29T12:34:56.789012Z");
  TIME_CASE(T0, "2026-11-23T09:11:05.123456Z");
  /* 2^31 seconds: past the 32-bit time_t end. */
  TIME_CASE(UINT64_C(2147483648000000), "2038-01-19T03:14:08.000000Z");
  /* 2^32 seconds. */
  TIME_CASE(UINT64_C(4294967296000000), "2106-02-07T06:28:16.000000Z");
  /* 2100 is not a leap year, 2400 is. */
  TIME_CASE(UINT64_C(4107542400000001), "2100-03-01T00:00:00.000001Z");
  TIME_CASE(UINT64_C(13574563200000000), "2400-02-29T00:00:00.000000Z");
  /* The last representable instant, and clamping beyond it. */
  TIME_CASE(UINT64_C(253402300799999999), "9999-12-31T23:59:59.999999Z");
  TIME_CASE(UINT64_C(253402300800000000), "9999-12-31T23:59:59.999999Z");
  TIME_CASE(UINT64_MAX, "9999-12-31T23:59:59.999999Z");

  /* A small buffer gets a terminated prefix, nothing written past it. */
  memset(buf, 'x', sizeof(buf));
  jw_format_time_us(0, buf, 11);
  CHECK_STR(buf, "1970-01-01");
  CHECK(buf[11] == 'x');
  jw_format_time_us(0, buf, 0); /* no write at all */
  CHECK(buf[0] == '1');

  /* Days from 1970 to 9999 against a plain calendar walk (month lengths
   * and the 4/100/400 rule, no arithmetic shared with the code): every day
   * up to 2200, then every 37th (so that the test stays fast under Wine). */
  for (day = 0; day < UINT64_C(2932897); day++) {
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    char want[40];
    unsigned len;
    if (y < 2200 || day % 37 == 0) {
      snprintf(want, sizeof(want), "%04u-%02u-%02uT00:00:00.000000Z", y, m, d);
      jw_format_time_us(day * UINT64_C(86400000000), buf, sizeof(buf));
      if (strcmp(buf, want) != 0 && mismatches++ < 5)
        fprintf(stderr, "  day %" PRIu64 ": %s, want %s\n", day, buf, want);
    }
    len = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (++d > len) {
      d = 1;
      if (++m > 12) {
        m = 1;
        y++;
      }
    }
  }
  CHECK_INT(mismatches, 0);
  CHECK_INT(y, 10000); /* the walk ended exactly after 9999-12-31 */
}

static void test_entity_id(void) {
  char buf[40];
  jw_format_entity_id(4242, UINT64_C(0x01DC5A0B12345678), buf, sizeof(buf));
  CHECK_STR(buf, "4242-01DC5A0B12345678");
  jw_format_entity_id(0, 1, buf, sizeof(buf));
  CHECK_STR(buf, "0-0000000000000001");
  jw_format_entity_id(0xFFFFFFFFu, UINT64_MAX, buf, sizeof(buf));
  CHECK_STR(buf, "4294967295-FFFFFFFFFFFFFFFF");
  CHECK_U64(strlen(buf), 27); /* the longest: fits the documented 32 */
  memset(buf, 'x', sizeof(buf));
  jw_format_entity_id(4242, 1, buf, 5);
  CHECK_STR(buf, "4242");
  CHECK(buf[5] == 'x');
}

/* ---- whole lines --------------------------------------------------------- */

static void root_process(jw_process_info_t *p) {
  p->pid = 4242;
  p->create_time = UINT64_C(0x01DC5A0B12345678);
  p->image = "C:\\agent\\agent.exe";
  p->is_root = 1;
}

#define HEAD "{\"schema_version\":\"2.0.0\",\"event\":"
#define RUN(seq, sec)                                                                              \
  ",\"seq\":" #seq ",\"@timestamp\":\"2026-11-23T09:11:" sec                                       \
  ".123456Z\",\"emitted\":\"2026-11-23T09:11:" sec                                                 \
  ".123456Z\",\"host\":{\"name\":\"build-host\"},"                                                 \
  "\"agent\":{\"name\":\"jobwarden\",\"version\":\"" JW_VERSION "\"},\"run_id\":"                  \
  "\"0123456789abcdef0123456789abcdef\",\"job\":{\"name\":\"agent-ci\","                           \
  "\"tier\":\"lockdown\"}"

static void test_lines(void) {
  jw_event_t ev;
  json_t *extra;
  char *line;

  /* 1: job start, with the policy as an extra object. */
  init_event(&ev, JW_EVENT_JOB_START, "job", "observed", "kernel", JW_SEV_INFO, "jobwarden",
             "Job agent-ci started (tier lockdown).");
  ev.has_process = 1;
  root_process(&ev.process);
  extra = json_pack("{s:{s:s,s:i,s:b},s:{s:[s,s],s:b}}", "policy", "tier", "lockdown",
                    "active_processes", 1, "kill_on_close", 1, "job_config", "command", "agent.exe",
                    "--task", "kill_on_close_applied", 1);
  ev.extra = extra;
  EMIT(&ev, HEAD "\"sandbox.job_start\"" RUN(
                1, "05") ",\"rule\":\"job\",\"rule_id\":\"JW-0001\",\"action\":\"observed\","
                         "\"severity\":\"info\","
                         "\"source\":\"jobwarden\",\"tags\":[\"jobwarden.lifecycle\"],\"process\":{"
                         "\"pid\":4242,"
                         "\"entity_id\":\"4242-01DC5A0B12345678\","
                         "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,\"start\":"
                         "\"2025-11-20T10:47:31.083224Z\"},"
                         "\"message\":\"Job agent-ci started (tier lockdown).\","
                         "\"policy\":{\"tier\":\"lockdown\",\"active_processes\":1,"
                         "\"kill_on_close\":true},\"job_config\":{\"command\":"
                         "[\"agent.exe\",\"--task\"],\"kill_on_close_applied\":true}}");
  /* The extra object is borrowed: still ours, unchanged. */
  CHECK_INT(extra->refcount, 1);
  CHECK_U64(json_object_size(extra), 2);
  json_decref(extra);

  /* 2: the root process starts (NEW_PROCESS from the port). */
  init_event(&ev, JW_EVENT_PROCESS_START, "root_process", "observed", "monitor", JW_SEV_INFO,
             "port", "Process 4242 started.");
  ev.has_job_message = 1;
  ev.job_message = 6;
  ev.has_process = 1;
  root_process(&ev.process);
  EMIT(&ev,
       HEAD "\"sandbox.process_start\"" RUN(
           2, "06") ",\"rule\":\"root_process\",\"rule_id\":\"JW-0002\",\"action\":\"observed\","
                    "\"severity\":\"info\",\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],"
                    "\"job_message\":{\"id\":6,\"name\":\"JOB_OBJECT_MSG_NEW_PROCESS\"},"
                    "\"process\":{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
                    "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,\"start\":"
                    "\"2025-11-20T10:47:31.083224Z\"},"
                    "\"message\":\"Process 4242 started.\"}");

  /* 3: a child process over the active-process limit. */
  init_event(&ev, JW_EVENT_VIOLATION, "active_processes", "blocked", "kernel", JW_SEV_HIGH, "port",
             "Process 4242 tried to start a child process; the job allows 1.");
  ev.has_job_message = 1;
  ev.job_message = 3;
  ev.has_limit = 1;
  ev.limit_name = "active_processes";
  ev.limit_unit = "processes";
  ev.limit_configured = 1;
  ev.has_limit_observed = 1;
  ev.limit_observed = 2;
  ev.has_process = 1;
  ev.process.pid = 5000;
  ev.process.create_time = UINT64_C(0x01DC5A0B12400000);
  ev.process.image = "C:\\Windows\\System32\\cmd.exe";
  ev.process.has_parent = 1;
  ev.process.parent_pid = 4242;
  EMIT(&ev,
       HEAD "\"sandbox.violation\"" RUN(
           3, "07") ",\"rule\":\"active_processes\",\"rule_id\":\"JW-1001\",\"action\":\"blocked\","
                    "\"enforcer\":\"kernel\",\"severity\":\"high\",\"source\":\"port\",\"tags\":["
                    "\"jobwarden.limit\"],"
                    "\"job_message\":{\"id\":3,"
                    "\"name\":\"JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT\"},"
                    "\"limit\":{\"name\":\"active_processes\",\"unit\":\"processes\","
                    "\"configured\":1,\"observed\":2},"
                    "\"process\":{\"pid\":5000,\"entity_id\":\"5000-01DC5A0B12400000\","
                    "\"executable\":\"C:\\\\Windows\\\\System32\\\\cmd.exe\","
                    "\"parent\":{\"pid\":4242},\"is_root\":false,\"start\":\"2025-11-20T10:47:"
                    "31.159654Z\"},"
                    "\"message\":\"Process 4242 tried to start a child process; the job "
                    "allows 1.\"}");

  /* 4: a memory limit, no measured value, unknown image and create time. */
  init_event(&ev, JW_EVENT_VIOLATION, "process_memory", "blocked", "kernel", JW_SEV_MEDIUM, "port",
             "Process 5001 hit the 512 MiB limit.");
  ev.has_job_message = 1;
  ev.job_message = 9;
  ev.has_limit = 1;
  ev.limit_name = "process_memory";
  ev.limit_unit = "bytes";
  ev.limit_configured = UINT64_C(536870912);
  ev.has_process = 1;
  ev.process.pid = 5001;
  EMIT(&ev,
       HEAD "\"sandbox.violation\"" RUN(
           4, "08") ",\"rule\":\"process_memory\",\"rule_id\":\"JW-1002\",\"action\":\"blocked\","
                    "\"enforcer\":\"kernel\",\"severity\":\"medium\",\"source\":\"port\",\"tags\":["
                    "\"jobwarden.limit\"],"
                    "\"job_message\":{\"id\":9,"
                    "\"name\":\"JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT\"},"
                    "\"limit\":{\"name\":\"process_memory\",\"unit\":\"bytes\","
                    "\"configured\":536870912},"
                    "\"process\":{\"pid\":5001,\"executable\":null,\"is_root\":false},"
                    "\"message\":\"Process 5001 hit the 512 MiB limit.\"}");

  /* 5: a crash. */
  init_event(&ev, JW_EVENT_VIOLATION, "abnormal_exit", "observed", "kernel", JW_SEV_HIGH, "port",
             "Process 4242 crashed: STATUS_ACCESS_VIOLATION.");
  ev.has_job_message = 1;
  ev.job_message = 8;
  ev.has_process = 1;
  root_process(&ev.process);
  ev.process.has_exit_code = 1;
  ev.process.exit_code = 0xC0000005u;
  EMIT(&ev,
       HEAD "\"sandbox.violation\"" RUN(
           5, "09") ",\"rule\":\"abnormal_exit\",\"rule_id\":\"JW-1201\",\"action\":\"observed\","
                    "\"severity\":\"high\",\"source\":\"port\",\"tags\":["
                    "\"jobwarden.process\"],"
                    "\"job_message\":{\"id\":8,"
                    "\"name\":\"JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS\"},"
                    "\"process\":{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
                    "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,"
                    "\"exit_code\":3221225477,\"exit_code_hex\":\"0xC0000005\","
                    "\"status\":\"STATUS_ACCESS_VIOLATION\",\"exit_class\":\"abnormal\","
                    "\"start\":\"2025-11-20T10:47:31.083224Z\"},"
                    "\"message\":\"Process 4242 crashed: STATUS_ACCESS_VIOLATION.\"}");

  /* 6: a clean exit; 7: exit(-1): no status name. */
  init_event(&ev, JW_EVENT_PROCESS_EXIT, "root_process", "observed", "monitor", JW_SEV_INFO, "port",
             "Process 4242 exited with 0.");
  ev.has_job_message = 1;
  ev.job_message = 7;
  ev.has_process = 1;
  root_process(&ev.process);
  ev.process.has_exit_code = 1;
  ev.process.exit_code = 0;
  EMIT(&ev,
       HEAD "\"sandbox.process_exit\"" RUN(
           6, "10") ",\"rule\":\"root_process\",\"rule_id\":\"JW-0002\",\"action\":\"observed\","
                    "\"severity\":\"info\",\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],"
                    "\"job_message\":{\"id\":7,\"name\":\"JOB_OBJECT_MSG_EXIT_PROCESS\"},"
                    "\"process\":{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
                    "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,"
                    "\"exit_code\":0,\"exit_code_hex\":\"0x00000000\",\"status\":null,"
                    "\"exit_class\":\"success\",\"start\":\"2025-11-20T10:47:31.083224Z\"},"
                    "\"message\":\"Process 4242 exited with 0.\"}");
  ev.process.exit_code = 0xFFFFFFFFu;
  ev.process.is_root = 0;
  ev.process.has_parent = 1;
  ev.process.parent_pid = 1;
  ev.has_job_message = 0;
  ev.source = "reconciled";
  strcpy(ev.message, "Process 4242 exited with -1.");
  EMIT(&ev,
       HEAD "\"sandbox.process_exit\"" RUN(
           7, "11") ",\"rule\":\"root_process\",\"rule_id\":\"JW-0002\",\"action\":\"observed\","
                    "\"severity\":\"info\","
                    "\"source\":\"reconciled\",\"tags\":[\"jobwarden.lifecycle\"],"
                    "\"process\":{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
                    "\"executable\":\"C:\\\\agent\\\\agent.exe\","
                    "\"parent\":{\"pid\":1},\"is_root\":false,"
                    "\"exit_code\":4294967295,\"exit_code_hex\":\"0xFFFFFFFF\","
                    "\"status\":null,\"exit_class\":\"failure\",\"start\":\"2025-11-20T10:47:"
                    "31.083224Z\"},"
                    "\"message\":\"Process 4242 exited with -1.\"}");

  /* 8: a notice without process; 9: an unknown port message. */
  init_event(&ev, JW_EVENT_NOTICE, "kill_on_close_unavailable", "degraded", "monitor",
             JW_SEV_MEDIUM, "jobwarden",
             "KILL_ON_JOB_CLOSE was refused; processes may outlive jobwarden.");
  EMIT(&ev, HEAD
       "\"sandbox.notice\"" RUN(8, "12") ",\"rule\":\"kill_on_close_unavailable\",\"rule_id\":\"JW-"
                                         "2003\",\"action\":\"degraded\","
                                         "\"severity\":\"medium\","
                                         "\"source\":\"jobwarden\",\"tags\":[\"jobwarden.sandbox_"
                                         "health\"],\"message\":\"KILL_ON_JOB_CLOSE was "
                                         "refused; processes may outlive jobwarden.\"}");
  init_event(&ev, JW_EVENT_NOTICE, "unknown_job_message", "observed", "kernel", JW_SEV_LOW, "port",
             "Unknown job message 5.");
  ev.has_job_message = 1;
  ev.job_message = 5;
  EMIT(
      &ev,
      HEAD "\"sandbox.notice\"" RUN(
          9,
          "13") ",\"rule\":\"unknown_job_message\",\"rule_id\":\"JW-2002\",\"action\":\"observed\","
                "\"severity\":\"low\",\"source\":\"port\",\"tags\":[\"jobwarden.sandbox_health\"],"
                "\"job_message\":{\"id\":5,\"name\":\"UNKNOWN\"},"
                "\"message\":\"Unknown job message 5.\"}");

  /* 10: a limit Windows reported that jobwarden did not configure
   * (configured null), with the largest values the types hold. */
  init_event(&ev, JW_EVENT_VIOLATION, "job_cpu_time", "killed_job", "kernel", JW_SEV_CRITICAL,
             "port", "The job used its CPU time.");
  ev.has_job_message = 1;
  ev.job_message = 1;
  ev.has_limit = 1;
  ev.limit_name = "job_cpu_time";
  ev.limit_unit = "ms";
  ev.has_limit_observed = 1;
  ev.limit_observed = UINT64_C(9223372036854775807);
  ev.has_process = 1;
  ev.process.pid = 0xFFFFFFFFu;
  ev.process.create_time = UINT64_MAX;
  ev.process.image = "";
  EMIT(&ev,
       HEAD "\"sandbox.violation\"" RUN(
           10, "14") ",\"rule\":\"job_cpu_time\",\"rule_id\":\"JW-1005\",\"action\":\"killed_job\","
                     "\"enforcer\":\"kernel\",\"severity\":\"critical\","
                     "\"source\":\"port\",\"tags\":[\"jobwarden.limit\"],\"job_message\":{\"id\":1,"
                     "\"name\":\"JOB_OBJECT_MSG_END_OF_JOB_TIME\"},"
                     "\"limit\":{\"name\":\"job_cpu_time\",\"unit\":\"ms\","
                     "\"configured\":null,\"observed\":9223372036854775807},"
                     "\"process\":{\"pid\":4294967295,"
                     "\"entity_id\":\"4294967295-FFFFFFFFFFFFFFFF\",\"executable\":\"\","
                     "\"is_root\":false,\"start\":\"9999-12-31T23:59:59.999999Z\"},"
                     "\"message\":\"The job used its CPU time.\"}");

  /* 11: extra may add keys but never replace or forge jobwarden's own, even
   * ones this event leaves out ("limit", "process"). Added keys keep
   * extra's order, after "message". (Not a job_end: that is the last line
   * of the file, test_last_line.) */
  init_event(&ev, JW_EVENT_NOTICE, "sink_failed", "degraded", "monitor", JW_SEV_INFO, "jobwarden",
             "Job agent-ci ended.");
  extra = json_pack("{s:i,s:s,s:{s:i},s:{s:i},s:{s:s},s:{s:i,s:i},s:s,"
                    "s:{s:s}}",
                    "seq", 99, "event", "forged", "process", "pid", 1, "limit", "observed", 5,
                    "host", "name", "evil", "summary", "processes", 3, "violations", 1, "message",
                    "forged", "error", "where", "CreateJobObjectW");
  ev.extra = extra;
  EMIT(&ev,
       HEAD "\"sandbox.notice\"" RUN(
           11, "15") ",\"rule\":\"sink_failed\",\"rule_id\":\"JW-2101\",\"action\":\"degraded\","
                     "\"severity\":\"info\","
                     "\"source\":\"jobwarden\",\"tags\":[\"jobwarden.telemetry\"],\"message\":"
                     "\"Job agent-ci ended.\","
                     "\"summary\":{\"processes\":3,\"violations\":1},"
                     "\"error\":{\"where\":\"CreateJobObjectW\"}}");
  json_decref(extra);

  /* 12: invalid UTF-8 from elsewhere (host name, job name, message):
   * replaced, the event kept whole. */
  {
    jw_run_info_t run = test_run();
    size_t len;
    uint64_t seq = next_seq++;
    static const char want[] = HEAD
        "\"sandbox.notice\",\"seq\":12,\"@timestamp\":"
        "\"2026-11-23T09:11:16.123456Z\",\"emitted\":\"2026-11-23T09:11:16.123456Z\","
        "\"host\":{\"name\":"
        "\"h\xEF\xBF\xBDst\"},\"agent\":{\"name\":\"jobwarden\",\"version\":\"" JW_VERSION "\"},"
        "\"run_id\":\"0123456789abcdef0123456789abcdef\","
        "\"job\":{\"name\":\"j\xEF\xBF\xBD\xEF\xBF\xBD\",\"tier\":\"lockdown\"},"
        "\"rule\":\"unknown_job_message\",\"rule_id\":\"JW-2002\",\"action\":\"observed\","
        "\"severity\":\"info\",\"source\":\"jobwarden\",\"tags\":[\"jobwarden.sandbox_health\"],"
        "\"message\":\"caf\xEF\xBF\xBD \xEF\xBF\xBD\"}\n";
    strcpy(run.host, "h\xFFst");
    strcpy(run.job_name, "j\xC0\xAF");
    init_event(&ev, JW_EVENT_NOTICE, "unknown_job_message", "observed", "monitor", JW_SEV_INFO,
               "jobwarden", "caf\xC3 \xE2\x82");
    line = NULL;
    CHECK_INT(render_line(&ev, &run, seq, T0 + (seq - 1) * 1000000, &line, &len), 0);
    CHECK_STR(line, want);
    if (line != NULL) {
      check_reparse(line, len, __LINE__);
      if (events_file != NULL)
        CHECK(fwrite(line, 1, len, events_file) == len);
    }
    free(line);
  }

  /* 13: a message filling all 512 bytes without a terminating 0 ends at
   * the array's end, not beyond. */
  init_event(&ev, JW_EVENT_NOTICE, "sink_failed", "lost", "monitor", JW_SEV_HIGH, "jobwarden", "");
  memset(ev.message, 'm', sizeof(ev.message));
  line = emit(&ev, NULL, __LINE__);
  {
    char want_msg[600];
    strcpy(want_msg, ",\"message\":\"");
    memset(want_msg + strlen(want_msg), 'm', 512);
    strcpy(want_msg + 12 + 512, "\"}\n");
    CHECK(line != NULL && strstr(line, want_msg) != NULL);
  }
  free(line);
}

/* jw_process_info_t.image is a counted string: with image_len, an embedded
 * U+0000 renders as \u0000 with the rest of the path after it (also on the
 * sanitizing path, when the bytes are not valid UTF-8); image_len 0 means
 * strlen(image), which ends at the first 0 byte. */
static void test_image_len(void) {
  static const char image[] = "C:\\a\0b.exe"; /* 10 bytes + the final 0 */
  jw_event_t ev;
  /* Lines 14-16 of the file (after test_lines' 13), run alone too: the
   * whole lines are compared, seq included. */
  next_seq = 14;

  /* 14: image_len covers the NUL and what follows it. */
  init_event(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", "monitor", JW_SEV_INFO,
             "port", "Child started.");
  ev.has_process = 1;
  ev.process.pid = 77;
  ev.process.image = image;
  ev.process.image_len = sizeof(image) - 1;
  EMIT(&ev,
       HEAD "\"sandbox.process_start\"" RUN(
           14,
           "18") ",\"rule\":\"child_process\",\"rule_id\":\"JW-0003\",\"action\":\"observed\","
                 "\"severity\":\"info\","
                 "\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],\"process\":{\"pid\":77,"
                 "\"executable\":\"C:\\\\a\\u0000b.exe\",\"is_root\":false},"
                 "\"message\":\"Child started.\"}");

  /* 15: the same pointer with image_len 0 is strlen(image): "C:\a". */
  ev.process.image_len = 0;
  EMIT(&ev,
       HEAD "\"sandbox.process_start\"" RUN(
           15,
           "19") ",\"rule\":\"child_process\",\"rule_id\":\"JW-0003\",\"action\":\"observed\","
                 "\"severity\":\"info\","
                 "\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],\"process\":{\"pid\":77,"
                 "\"executable\":\"C:\\\\a\",\"is_root\":false},"
                 "\"message\":\"Child started.\"}");

  /* 16: counted and invalid UTF-8: the sanitizing fallback keeps the NUL
   * and replaces the bad byte; image_truncated follows executable. */
  ev.process.image = "a\0\xFFz";
  ev.process.image_len = 4;
  ev.process.image_truncated = 1;
  EMIT(&ev,
       HEAD "\"sandbox.process_start\"" RUN(
           16,
           "20") ",\"rule\":\"child_process\",\"rule_id\":\"JW-0003\",\"action\":\"observed\","
                 "\"severity\":\"info\","
                 "\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],\"process\":{\"pid\":77,"
                 "\"executable\":\"a\\u0000\xEF\xBF\xBDz\","
                 "\"image_truncated\":true,\"is_root\":false},"
                 "\"message\":\"Child started.\"}");
}

/* The enrichment of schema 1.2.0: every field at once, in its order, with
 * a hostile command line (quote, backslash, ESC, U+0000 kept by the count)
 * and an ancestry chain; then an exit whose CPU and I/O are unavailable. */
/* The executable identity of schema 2.0.0: hash, size, version resource,
 * signature, in that order after executable; the ancestors' hashes; what
 * could not be had in unavailable. A process_update carries it. */
static void test_identity(void) {
  static const jw_process_ref_t chain[] = {
      {4242, UINT64_C(0x01DC5A0B12345678), "C:\\agent\\agent.exe", 0,
       "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
  };
  jw_event_t ev;
  char *line;
  init_event(&ev, JW_EVENT_PROCESS_UPDATE, "child_process", "observed", NULL, JW_SEV_INFO, "port",
             "Identity of cmd.exe.");
  ev.has_process = 1;
  ev.process.pid = 6100;
  ev.process.create_time = UINT64_C(0x01DC5A0B12600000);
  ev.process.image = "C:\\w\\renamed.exe";
  ev.process.sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  ev.process.has_image_size = 1;
  ev.process.image_size = 289792;
  ev.process.pe_original_file_name = "Cmd.Exe";
  ev.process.pe_company = "Microsoft Corporation";
  ev.process.pe_product = "";
  ev.process.pe_file_version = "10.0.19041.1";
  ev.process.has_code_signature = 1;
  ev.process.cs_exists = 0;
  ev.process.cs_status = "unsigned";
  ev.process.ancestry = chain;
  ev.process.n_ancestry = 1;
  ev.process.unavailable[0].field = "pe";
  ev.process.unavailable[0].reason = "the version resource has no ProductName";
  ev.process.n_unavailable = 1;
  line = emit(&ev, NULL, __LINE__);
  CHECK(line != NULL && strstr(line, "\"event\":\"sandbox.process_update\",") != NULL &&
        strstr(line,
               "\"executable\":\"C:\\\\w\\\\renamed.exe\","
               "\"hash\":{\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
               "7852b855\"},\"image_size\":289792,\"pe\":{\"original_file_name\":\"Cmd.Exe\","
               "\"company\":\"Microsoft Corporation\",\"file_version\":\"10.0.19041.1\"},"
               "\"code_signature\":{\"exists\":false,\"status\":\"unsigned\",\"trusted\":false},"
               "\"is_root\":false,") != NULL);
  CHECK(line != NULL &&
        strstr(line,
               "\"ancestry\":[{\"pid\":4242,\"entity_id\":\"4242-01DC5A0B12345678\","
               "\"executable\":\"C:\\\\agent\\\\agent.exe\",\"hash\":{\"sha256\":"
               "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}}]") != NULL);
  CHECK(line != NULL && strstr(line, "\"unavailable\":{\"pe\":\"the version resource has no "
                                     "ProductName\"}") != NULL);
  free(line);
}

static void test_enrichment(void) {
  static const char cmd[] = "agent.exe \"a b\" \\x \x1B[31m\0tail";
  static const jw_process_ref_t chain[] = {
      {5000, UINT64_C(0x01DC5A0B12400000), "C:\\tools\\sh.exe", 0, NULL},
      {4242, UINT64_C(0x01DC5A0B12345678), "C:\\agent\\agent.exe", 0, NULL},
  };
  jw_event_t ev;

  /* Lines 17-19 of the file, run alone too (as test_image_len). */
  next_seq = 17;

  /* 17: a grandchild's start. */
  init_event(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", "monitor", JW_SEV_INFO,
             "port", "Grandchild started.");
  ev.has_process = 1;
  ev.process.pid = 6000;
  ev.process.create_time = UINT64_C(0x01DC5A0B12500000);
  ev.process.image = "C:\\tools\\curl.exe";
  ev.process.has_parent = 1;
  ev.process.parent_pid = 5000;
  ev.process.parent_create_time = UINT64_C(0x01DC5A0B12400000);
  ev.process.command_line = cmd;
  ev.process.command_line_len = sizeof(cmd) - 1;
  ev.process.command_line_truncated = 1;
  ev.process.user_sid = "S-1-5-21-1-2-3-1001";
  ev.process.user_name = "BUILD-07\\agent";
  ev.process.integrity = "medium";
  ev.process.ancestry = chain;
  ev.process.n_ancestry = 2;
  EMIT(&ev,
       HEAD "\"sandbox.process_start\"" RUN(
           17, "21") ",\"rule\":\"child_process\",\"rule_id\":\"JW-0003\",\"action\":\"observed\","
                     "\"severity\":\"info\",\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],"
                     "\"process\":{\"pid\":6000,\"entity_id\":\"6000-01DC5A0B12500000\","
                     "\"executable\":\"C:\\\\tools\\\\curl.exe\","
                     "\"parent\":{\"pid\":5000,\"entity_id\":\"5000-01DC5A0B12400000\"},"
                     "\"is_root\":false,"
                     "\"command_line\":\"agent.exe \\\"a b\\\" \\\\x \\u001B[31m\\u0000tail\","
                     "\"command_line_truncated\":true,"
                     "\"user\":{\"sid\":\"S-1-5-21-1-2-3-1001\",\"name\":\"BUILD-07\\\\agent\"},"
                     "\"integrity\":\"medium\","
                     "\"ancestry\":[{\"pid\":5000,\"entity_id\":\"5000-01DC5A0B12400000\","
                     "\"executable\":\"C:\\\\tools\\\\sh.exe\"},{\"pid\":4242,"
                     "\"entity_id\":\"4242-01DC5A0B12345678\","
                     "\"executable\":\"C:\\\\agent\\\\agent.exe\"}],"
                     "\"start\":\"2025-11-20T10:47:31.264512Z\"},"
                     "\"message\":\"Grandchild started.\"}");

  /* 18: its exit, 1.5 s later: end, lifetime, peak working set from
   * samples, CPU and I/O unavailable; an ancestry cut at the limit; a user
   * whose name cannot be resolved. */
  init_event(&ev, JW_EVENT_PROCESS_EXIT, "child_process", "observed", "monitor", JW_SEV_INFO,
             "reconciled", "Grandchild exited.");
  ev.has_process = 1;
  ev.process.pid = 6000;
  ev.process.create_time = UINT64_C(0x01DC5A0B12500000);
  ev.process.end_time = UINT64_C(0x01DC5A0B12500000) + 15000000u;
  ev.process.image = "C:\\tools\\curl.exe";
  ev.process.has_exit_code = 1;
  ev.process.exit_code = 0;
  ev.process.user_sid = "S-1-5-21-1-2-3-1001";
  ev.process.ancestry = chain;
  ev.process.n_ancestry = 1;
  ev.process.ancestry_truncated = 1;
  ev.process.has_peak_working_set = 1;
  ev.process.peak_working_set = 5242880;
  ev.process.peak_working_set_from = "samples";
  ev.process.has_cpu = 0;
  ev.process.unavailable[0].field = "cpu";
  ev.process.unavailable[0].reason = "the system reported jobwarden's own CPU times";
  ev.process.unavailable[1].field = "io";
  ev.process.unavailable[1].reason = "Wine reports no I/O counters";
  ev.process.n_unavailable = 2;
  EMIT(&ev,
       HEAD "\"sandbox.process_exit\"" RUN(
           18, "22") ",\"rule\":\"child_process\",\"rule_id\":\"JW-0003\",\"action\":\"observed\","
                     "\"severity\":\"info\",\"source\":\"reconciled\",\"tags\":[\"jobwarden."
                     "lifecycle\"],"
                     "\"process\":{\"pid\":6000,\"entity_id\":\"6000-01DC5A0B12500000\","
                     "\"executable\":\"C:\\\\tools\\\\curl.exe\",\"is_root\":false,"
                     "\"exit_code\":0,\"exit_code_hex\":\"0x00000000\",\"status\":null,"
                     "\"exit_class\":\"success\","
                     "\"user\":{\"sid\":\"S-1-5-21-1-2-3-1001\",\"name\":null},"
                     "\"ancestry\":[{\"pid\":5000,\"entity_id\":\"5000-01DC5A0B12400000\","
                     "\"executable\":\"C:\\\\tools\\\\sh.exe\"}],\"ancestry_truncated\":true,"
                     "\"start\":\"2025-11-20T10:47:31.264512Z\","
                     "\"end\":\"2025-11-20T10:47:32.764512Z\",\"lifetime_ms\":1500,"
                     "\"memory\":{\"peak_working_set\":5242880,\"from\":\"samples\"},"
                     "\"unavailable\":{\"cpu\":\"the system reported jobwarden's own CPU "
                     "times\",\"io\":\"Wine reports no I/O counters\"}},"
                     "\"message\":\"Grandchild exited.\"}");

  /* 19: measured CPU and I/O (Windows); a root has an empty ancestry. */
  init_event(&ev, JW_EVENT_PROCESS_EXIT, "root_process", "observed", "monitor", JW_SEV_INFO, "port",
             "Root exited.");
  ev.has_process = 1;
  ev.process.pid = 4242;
  ev.process.image = "C:\\agent\\agent.exe";
  ev.process.is_root = 1;
  ev.process.ancestry = chain; /* n_ancestry 0: [] */
  ev.process.has_cpu = 1;
  ev.process.cpu_user_100ns = 1234567;
  ev.process.cpu_kernel_100ns = 9999;
  ev.process.has_io = 1;
  ev.process.io_read_ops = 1;
  ev.process.io_write_ops = 2;
  ev.process.io_other_ops = 3;
  ev.process.io_read_bytes = 4096;
  ev.process.io_write_bytes = UINT64_C(0xFFFFFFFFFFFFFFFF);
  ev.process.io_other_bytes = 0;
  EMIT(&ev,
       HEAD "\"sandbox.process_exit\"" RUN(
           19, "23") ",\"rule\":\"root_process\",\"rule_id\":\"JW-0002\",\"action\":\"observed\","
                     "\"severity\":\"info\",\"source\":\"port\",\"tags\":[\"jobwarden.lifecycle\"],"
                     "\"process\":{\"pid\":4242,\"executable\":\"C:\\\\agent\\\\agent.exe\","
                     "\"is_root\":true,\"ancestry\":[],"
                     "\"cpu\":{\"user_ms\":123,\"kernel_ms\":0},"
                     "\"io\":{\"read_ops\":1,\"write_ops\":2,\"other_ops\":3,"
                     "\"read_bytes\":4096,\"write_bytes\":9223372036854775807,"
                     "\"other_bytes\":0}},"
                     "\"message\":\"Root exited.\"}");
}

/* An ancestor's long executable is cut at JW_ANCESTOR_IMAGE_MAX bytes on a
 * character boundary (here inside a 2-byte character: one byte less). */
static void test_ancestor_cut(void) {
  char *image = malloc(3002);
  jw_process_ref_t chain[1];
  jw_run_info_t run = test_run();
  jw_event_t ev;
  json_t *o, *a;
  const char *x;
  size_t i;
  if (image == NULL)
    return;
  image[0] = 'a';
  for (i = 0; i < 1500; i++) {
    image[1 + 2 * i] = (char)0xC3;
    image[2 + 2 * i] = (char)0xA9; /* U+00E9 */
  }
  image[3001] = 0;
  memset(chain, 0, sizeof(chain));
  chain[0].pid = 1;
  chain[0].create_time = 0;
  chain[0].image = image;
  chain[0].image_len = 0;
  jw_event_init(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", "monitor", "port",
                JW_SEV_INFO);
  ev.has_process = 1;
  ev.process.pid = 2;
  ev.process.ancestry = chain;
  ev.process.n_ancestry = 1;
  o = jw_event_to_json(&ev, &run, 1, T0);
  a = json_array_get(json_object_get(json_object_get(o, "process"), "ancestry"), 0);
  x = json_string_value(json_object_get(a, "executable"));
  CHECK(x != NULL && strlen(x) == 1023 && memcmp(x, image, 1023) == 0);
  CHECK(json_is_true(json_object_get(a, "executable_truncated")));
  json_decref(o);
  /* At the limit exactly: not cut. */
  image[1024] = 0;
  image[1023] = 'z';
  o = jw_event_to_json(&ev, &run, 1, T0);
  a = json_array_get(json_object_get(json_object_get(o, "process"), "ancestry"), 0);
  x = json_string_value(json_object_get(a, "executable"));
  CHECK(x != NULL && strlen(x) == 1024);
  CHECK(json_object_get(a, "executable_truncated") == NULL);
  json_decref(o);
  free(image);
}

/* Events that are not written to the file: bad producer values still
 * render (null / "unknown"), seq is clamped, bad arguments are refused. */
static void test_edges(void) {
  jw_run_info_t run = test_run();
  jw_event_t ev;
  json_t *obj;
  char *line;
  size_t len;

  /* A static string that is not UTF-8 is replaced too, not dropped. */
  init_event(&ev, JW_EVENT_NOTICE, "bad_\x80", "observed\xF5", "monitor", JW_SEV_INFO, "jobwarden",
             "m");
  line = NULL;
  CHECK_INT(render_line(&ev, &run, 1, 0, &line, &len), 0);
  CHECK(line != NULL && strstr(line, ",\"rule\":\"bad_\xEF\xBF\xBD\",\"action\":\"observed"
                                     "\xEF\xBF\xBD\",") != NULL);
  free(line);

  init_event(&ev, (jw_event_kind_t)42, NULL, NULL, NULL, (jw_severity_t)9, NULL, "m");
  ev.has_limit = 1;
  line = NULL;
  CHECK_INT(render_line(&ev, &run, UINT64_MAX, 0, &line, &len), 0);
  CHECK_STR(line, "{\"schema_version\":\"2.0.0\",\"event\":\"unknown\","
                  "\"seq\":9223372036854775807,"
                  "\"@timestamp\":\"1970-01-01T00:00:00.000000Z\","
                  "\"emitted\":\"1970-01-01T00:00:00.000000Z\","
                  "\"host\":{\"name\":\"build-host\"},"
                  "\"agent\":{\"name\":\"jobwarden\",\"version\":\"" JW_VERSION "\"},"
                  "\"run_id\":\"0123456789abcdef0123456789abcdef\","
                  "\"job\":{\"name\":\"agent-ci\",\"tier\":\"lockdown\"},"
                  "\"rule\":null,\"action\":null,"
                  "\"severity\":\"unknown\",\"source\":null,\"tags\":[],"
                  "\"limit\":{\"name\":null,\"unit\":null,\"configured\":null},"
                  "\"message\":\"m\"}\n");
  free(line);

  /* Run info arrays filled to the last byte (no terminating 0) end at the
   * array: the next field ("build-host", "agent-ci") must not leak in. */
  {
    jw_run_info_t full = test_run();
    char want[400];
    memset(full.run_id, 'r', sizeof(full.run_id));
    memset(full.host, 'h', sizeof(full.host));
    init_event(&ev, JW_EVENT_NOTICE, "r", "observed", "monitor", JW_SEV_LOW, "jobwarden", "m");
    line = NULL;
    CHECK_INT(render_line(&ev, &full, 1, 0, &line, &len), 0);
    strcpy(want, "\"host\":{\"name\":\"");
    memset(want + 16, 'h', 256);
    strcpy(want + 16 + 256,
           "\"},\"agent\":{\"name\":\"jobwarden\",\"version\":\"" JW_VERSION "\"},\"run_id\":\"");
    {
      size_t at = strlen(want);
      memset(want + at, 'r', 40);
      strcpy(want + at + 40, "\",\"job\":{\"name\":\"agent-ci\"");
    }
    CHECK(line != NULL && strstr(line, want) != NULL);
    free(line);
  }

  /* jw_event_to_json returns a new object with the same content. */
  init_event(&ev, JW_EVENT_NOTICE, "r", "observed", "monitor", JW_SEV_LOW, "jobwarden", "hello");
  obj = jw_event_to_json(&ev, &run, 3, T0);
  CHECK(obj != NULL && json_is_object(obj));
  if (obj != NULL) {
    CHECK_INT(obj->refcount, 1);
    CHECK_STR(json_string_value(json_object_get(obj, "message")), "hello");
    CHECK_INT(json_integer_value(json_object_get(obj, "seq")), 3);
    CHECK_STR(json_string_value(json_object_get(obj, "@timestamp")), "2026-11-23T09:11:05.123456Z");
    json_decref(obj);
  }

  /* Bad arguments. */
  line = (char *)1;
  CHECK_INT(render_line(NULL, &run, 1, 0, &line, &len), JW_EINVAL);
  CHECK(line == NULL);
  CHECK_INT(render_line(&ev, NULL, 1, 0, &line, &len), JW_EINVAL);
  CHECK_INT(render_line(&ev, &run, 1, 0, NULL, &len), JW_EINVAL);
  CHECK(jw_event_to_json(NULL, &run, 1, 0) == NULL);

  /* Without has_process the image is not rendered, counted or not. */
  init_event(&ev, JW_EVENT_NOTICE, "r", "observed", "monitor", JW_SEV_LOW, "jobwarden", "x");
  ev.process.image = "a\0b";
  ev.process.image_len = 3;
  ev.process.image_truncated = 1;
  line = NULL;
  CHECK_INT(render_line(&ev, &run, 1, 0, &line, &len), 0);
  CHECK(line != NULL && strstr(line, "\"process\"") == NULL && strstr(line, "a\\u0000b") == NULL &&
        strstr(line, "image_truncated") == NULL);
  free(line);
}

/* ---- the direct renderer's fast paths ----------------------------------- */

/* ev rendered by jw__event_render_into with frags (made from run) and a
 * queue item's room in front, into a recycled buffer of `cap` bytes (0:
 * none), against the reference. Returns whether the bytes agree. */
static int render_into_matches(const jw_event_t *ev, const jw_run_info_t *run, size_t cap) {
  jw__run_frags_t frags;
  jw__linebuf_t lb;
  char *ref = NULL;
  size_t ref_len = 0;
  int rc, ref_rc, same;
  if (jw__run_frags_make(run, &frags) != 0)
    return 0;
  lb.head = 40;
  lb.cap = cap;
  lb.len = 0;
  lb.buf = cap != 0 ? malloc(cap) : NULL;
  if (lb.buf != NULL)
    memset(lb.buf, 'x', cap); /* stale bytes of an earlier line */
  rc = jw__event_render_into(ev, run, &frags, 7, T0, &lb);
  ref_rc = jw__event_render_jansson(ev, run, 7, T0, &ref, &ref_len);
  same = rc == ref_rc && (rc != 0 || (lb.len == ref_len && lb.buf != NULL &&
                                      memcmp(lb.buf + lb.head, ref, ref_len) == 0 &&
                                      lb.buf[lb.head + lb.len] == '\0'));
  if (!same)
    fprintf(stderr,
            "render_into (cap %zu) differs from the reference (rc %d / %d)\n  into: %.*s\n"
            "  jansson: %.*s\n",
            cap, rc, ref_rc, lb.buf ? (int)lb.len : 0, lb.buf ? lb.buf + lb.head : "", (int)ref_len,
            ref ? ref : "");
  free(lb.buf);
  free(ref);
  jw__run_frags_free(&frags);
  return same;
}

/* Escaping copies plain runs a word (8 bytes) at a time and finds the
 * first byte to escape or check inside a word: every special byte at
 * every offset of strings across word boundaries, an ill-formed sequence
 * right after an ASCII run, a valid one split by the end of the string. */
static void test_escape_runs(void) {
  static const char *const specials[] = {
      "\"",           "\\",       "\x01",     "\x1f",     "\n",
      "\x7f",         "\x80",     "\xC3\xA9", "\xE2\x82", "\xF0\x9F\x98\x80",
      "\xED\xA0\x80", "\xC0\xAF", "\xFF"};
  jw_run_info_t run = test_run();
  jw_event_t ev;
  char s[64];
  size_t len, pos, k;
  for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++)
    for (len = 0; len <= 26; len++)
      for (pos = 0; pos <= len; pos++) {
        size_t sl = strlen(specials[k]), i;
        char *line = NULL;
        size_t n = 0;
        for (i = 0; i < len; i++)
          s[i] = (char)('a' + i % 26);
        memcpy(s + pos, specials[k], sl);
        for (i = pos + sl; i < len + sl; i++)
          s[i] = (char)('A' + i % 26);
        init_event(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", NULL, JW_SEV_INFO,
                   "port", "");
        memcpy(ev.message, s, len + sl);
        ev.message[len + sl] = '\0';
        ev.has_process = 1;
        ev.process.pid = 1;
        ev.process.image = s; /* counted: no 0 byte after it */
        ev.process.image_len = len + sl;
        ev.tags[0] = s + pos; /* the special byte first: strict (json_string) checking */
        s[len + sl] = '\0';
        CHECK_INT(render_line(&ev, &run, 1, T0, &line, &n), 0);
        free(line);
      }
  /* Exact bytes: an escape right after a whole word, a run of 9, an
   * ill-formed byte after 8 ASCII bytes, U+00E9 after 16. */
  {
    char *line = NULL;
    size_t n = 0;
    init_event(&ev, JW_EVENT_NOTICE, "r", "observed", "monitor", JW_SEV_LOW, "jobwarden",
               "abcdefgh\"ijklmnopq\\\x01"
               "12345678\x80"
               "0123456789abcdef\xC3\xA9!");
    CHECK_INT(render_line(&ev, &run, 1, T0, &line, &n), 0);
    CHECK(line != NULL && strstr(line, ",\"message\":\"abcdefgh\\\"ijklmnopq\\\\\\u0001"
                                       "12345678\xEF\xBF\xBD"
                                       "0123456789abcdef\xC3\xA9!\"}") != NULL);
    free(line);
  }
}

/* The run's parts rendered once (jw__run_frags_make) and copied: a run
 * whose context strings hold controls, quotes, backslashes and ill-formed
 * UTF-8 gives the reference's bytes, into a fresh, a recycled and a too
 * small buffer; a repeated key in its unavailable map leaves the line to
 * the reference. */
static void test_run_frags(void) {
  jw_run_info_t run = test_run();
  jw_event_t ev;
  jw__run_frags_t frags;
  strcpy(run.host, "host\x01\"name\\\n\x7f\x80\xC3");
  strcpy(run.host_id, "\tid");
  strcpy(run.os_name, "Windows\x1b[31m");
  strcpy(run.os_version, "10.0");
  strcpy(run.wine_version, "8.0\xE2\x80");
  strcpy(run.user_id, "S-1-5-21-\"1\"");
  strcpy(run.user_name, "us\xC3\xA9r\\x");
  strcpy(run.agent_build, "abc\x02");
  strcpy(run.job_name, "job \"quoted\" \\ \x1f");
  jw__run_unavailable(&run, "user.domain", "lookup \"failed\": \x05 error %d", 1332);
  jw__run_unavailable(&run, "host.\x01id", "no \\ id\xFF");
  run.insecure_transport = 1;
  init_event(&ev, JW_EVENT_VIOLATION, "active_processes", "blocked", "kernel", JW_SEV_HIGH, "port",
             "m \"x\"");
  ev.has_process = 1;
  ev.process.pid = 42;
  ev.process.image = "C:\\a\\b.exe";
  CHECK(render_into_matches(&ev, &run, 0));
  CHECK(render_into_matches(&ev, &run, 4096));
  CHECK(render_into_matches(&ev, &run, 48)); /* grows */
  CHECK(render_into_matches(&ev, &run, 41)); /* room and one byte */
  /* The parts themselves: what the reference writes between "emitted"
   * and "rule", and its unavailable map. */
  CHECK_INT(jw__run_frags_make(&run, &frags), 0);
  CHECK(frags.reference == 0);
  {
    static const char head[] = ",\"host\":{\"name\":\"host\\u0001\\\"name\\\\\\n\x7f\xEF\xBF\xBD"
                               "\xEF\xBF\xBD\",\"id\":\"\\tid\"";
    static const char tail[] = ",\"job\":{\"name\":\"job \\\"quoted\\\" \\\\ \\u001F\","
                               "\"tier\":\"lockdown\"}";
    CHECK(frags.context != NULL && frags.context_len > sizeof(head) + sizeof(tail) &&
          memcmp(frags.context, head, sizeof(head) - 1) == 0 &&
          memcmp(frags.context + frags.context_len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) ==
              0);
  }
  jw__run_frags_free(&frags);
  /* A repeated key (the reference merges it): rendered by the reference. */
  jw__run_unavailable(&run, "user.domain", "again");
  CHECK_INT(jw__run_frags_make(&run, &frags), 0);
  CHECK(frags.reference == 1);
  jw__run_frags_free(&frags);
  CHECK(render_into_matches(&ev, &run, 0));
  CHECK(render_into_matches(&ev, &run, 2048));
  /* Without frags (NULL) the same renderer renders the run in place. */
  {
    jw__linebuf_t lb = {NULL, 0, 16, 0};
    char *ref = NULL;
    size_t ref_len = 0;
    CHECK_INT(jw__event_render_into(&ev, &run, NULL, 3, T0, &lb), 0);
    CHECK_INT(jw__event_render_jansson(&ev, &run, 3, T0, &ref, &ref_len), 0);
    CHECK(lb.buf != NULL && ref != NULL && lb.len == ref_len &&
          memcmp(lb.buf + 16, ref, ref_len) == 0);
    free(lb.buf);
    free(ref);
  }
}

/* ---- the hostile suite -------------------------------------------------- */

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0, n = 0;
  if (f == NULL)
    return NULL;
  for (;;) {
    size_t got;
    if (cap - n < 4096) {
      char *p = realloc(buf, cap + 65536);
      if (p == NULL)
        abort();
      buf = p;
      cap += 65536;
    }
    got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

struct hostile_case {
  int is_message; /* field message (bytes), else executable (units) */
  int want_truncated;
  uint16_t *units;
  size_t n_units, cap_units;
  char bytes[512];
  size_t n_bytes;
};

static void add_unit(struct hostile_case *c, unsigned long u) {
  if (c->n_units == c->cap_units) {
    size_t cap = c->cap_units ? c->cap_units * 2 : 64;
    uint16_t *p = realloc(c->units, cap * sizeof(*p));
    if (p == NULL)
      abort();
    c->units = p;
    c->cap_units = cap;
  }
  c->units[c->n_units++] = (uint16_t)u;
}

/* Parses one line of hex numbers; returns -1 on a bad token. */
static int parse_hex_list(const char *p, struct hostile_case *c, int as_bytes) {
  for (;;) {
    char *end;
    unsigned long v;
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '\0')
      return 0;
    v = strtoul(p, &end, 16);
    if (end == p || (*end != '\0' && *end != ' ' && *end != '\t'))
      return -1;
    if (as_bytes) {
      if (v == 0 || v > 0xFF || c->n_bytes >= sizeof(c->bytes) - 1)
        return -1;
      c->bytes[c->n_bytes++] = (char)v;
    } else {
      if (v > 0xFFFF)
        return -1;
      add_unit(c, v);
    }
    p = end;
  }
}

static int parse_input(char *text, struct hostile_case *c) {
  char *line = text;
  while (line != NULL && *line != '\0') {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    if (nl != NULL && nl > line && nl[-1] == '\r')
      nl[-1] = '\0';
    if (line[0] == '#' || line[0] == '\0') {
      /* comment or blank */
    } else if (strcmp(line, "field message") == 0) {
      c->is_message = 1;
    } else if (strcmp(line, "field executable") == 0) {
      c->is_message = 0;
    } else if (strcmp(line, "truncated yes") == 0) {
      c->want_truncated = 1;
    } else if (strcmp(line, "truncated no") == 0) {
      c->want_truncated = 0;
    } else if (strncmp(line, "repeat ", 7) == 0) {
      char *end;
      unsigned long u = strtoul(line + 7, &end, 16), n, i;
      if (u > 0xFFFF || *end != ' ')
        return -1;
      n = strtoul(end + 1, &end, 10);
      if (*end != '\0' || n > 1000000)
        return -1;
      for (i = 0; i < n; i++)
        add_unit(c, u);
    } else if (strncmp(line, "bytes ", 6) == 0) {
      if (parse_hex_list(line + 6, c, 1) != 0)
        return -1;
    } else if (strncmp(line, "units ", 6) == 0) {
      if (parse_hex_list(line + 6, c, 0) != 0)
        return -1;
    } else if (parse_hex_list(line, c, 0) != 0) {
      return -1;
    }
    line = nl ? nl + 1 : NULL;
  }
  if (c->is_message ? c->n_units != 0 : c->n_bytes != 0)
    return -1; /* units for a message or bytes for an image: a typo */
  return 0;
}

/* The JSON string token that starts at p (a '"'): its length, or 0. */
static size_t string_token_length(const char *p) {
  size_t i = 1;
  if (p[0] != '"')
    return 0;
  while (p[i] != '\0' && p[i] != '"') {
    if (p[i] == '\\' && p[i + 1] != '\0')
      i++;
    i++;
  }
  return p[i] == '"' ? i + 1 : 0;
}

static void run_hostile_case(const char *dir, const char *name) {
  char path[1024];
  char *input, *expected, *line, *token;
  size_t in_len, exp_len, line_len, tok_len;
  struct hostile_case c;
  jw_event_t ev;
  char *utf8 = NULL;
  size_t utf8_len = 0;
  int truncated = 0;
  json_t *parsed, *want_value, *got_value;
  json_error_t jerr;

  memset(&c, 0, sizeof(c));
  memset(&ev, 0, sizeof(ev));
  snprintf(path, sizeof(path), "%s/hostile/%s/input", dir, name);
  input = read_file(path, &in_len);
  snprintf(path, sizeof(path), "%s/hostile/%s/expected", dir, name);
  expected = read_file(path, &exp_len);
  jw_test_checks++;
  if (input == NULL || expected == NULL || parse_input(input, &c) != 0) {
    jw_test_failures++;
    fprintf(stderr, "%s:%d: hostile case %s: missing or bad input/expected\n", __FILE__, __LINE__,
            name);
    goto done;
  }
  if (exp_len > 0 && expected[exp_len - 1] == '\n')
    expected[--exp_len] = '\0';

  init_event(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", "monitor", JW_SEV_INFO,
             "port", "");
  snprintf(ev.message, sizeof(ev.message), "hostile case %s", name);
  ev.has_process = 1;
  ev.process.pid = 7000;
  ev.process.create_time = UINT64_C(0x01DC5A0B00000001);
  ev.process.has_parent = 1;
  ev.process.parent_pid = 4242;
  if (c.is_message) {
    memcpy(ev.message, c.bytes, c.n_bytes);
    ev.message[c.n_bytes] = '\0';
    ev.process.image = "C:\\x.exe";
  } else {
    CHECK_INT(
        jw_utf16_to_utf8(c.units, c.n_units, JW_HOSTILE_MAX_UNITS, &utf8, &utf8_len, &truncated),
        0);
    CHECK_INT(truncated, c.want_truncated);
    if (utf8 == NULL)
      goto done;
    ev.process.image = utf8;
    ev.process.image_len = utf8_len;
    ev.process.image_truncated = truncated;
  }

  line = emit(&ev, NULL, __LINE__);
  if (line == NULL)
    goto done;
  line_len = strlen(line);
  token = strstr(line, c.is_message ? "\"message\":" : "\"executable\":");
  if (token != NULL)
    token = strchr(token, ':') + 1;
  tok_len = token ? string_token_length(token) : 0;
  jw_test_checks++;
  if (tok_len != exp_len || memcmp(token, expected, exp_len) != 0) {
    jw_test_failures++;
    fprintf(stderr,
            "%s:%d: hostile case %s: token differs\n  got:  %.*s\n"
            "  want: %.*s\n",
            __FILE__, __LINE__, name, (int)(tok_len < 300 ? tok_len : 300), token ? token : "",
            (int)(exp_len < 300 ? exp_len : 300), expected);
  }
  /* image_truncated appears exactly when the image was cut. */
  CHECK_INT(strstr(line, ",\"image_truncated\":true,") != NULL, c.want_truncated);

  /* Round trip: the value parsed from the line equals the value of the
   * expected token and, for images, the converter's bytes. */
  parsed = json_loadb(line, line_len, JSON_ALLOW_NUL, &jerr);
  CHECK(parsed != NULL);
  {
    /* The expected token alone is not a JSON text jansson loads: wrap it. */
    char *arr = malloc(exp_len + 3);
    json_t *wrapped;
    if (arr == NULL)
      abort();
    arr[0] = '[';
    memcpy(arr + 1, expected, exp_len);
    arr[exp_len + 1] = ']';
    arr[exp_len + 2] = '\0';
    wrapped = json_loadb(arr, exp_len + 2, JSON_ALLOW_NUL, &jerr);
    want_value = json_incref(json_array_get(wrapped, 0)); /* borrowed: keep */
    json_decref(wrapped);
    free(arr);
  }
  got_value = c.is_message ? json_object_get(parsed, "message")
                           : json_object_get(json_object_get(parsed, "process"), "executable");
  CHECK(want_value != NULL && got_value != NULL && json_equal(want_value, got_value));
  if (!c.is_message && got_value != NULL) {
    CHECK_U64(json_string_length(got_value), utf8_len);
    CHECK(memcmp(json_string_value(got_value), utf8, utf8_len) == 0);
  }
  json_decref(want_value);
  json_decref(parsed);
  free(line);

done:
  free(utf8);
  free(c.units);
  free(input);
  free(expected);
}

static void test_hostile(const char *data_dir) {
  char path[1024];
  char *index, *line;
  size_t len;
  int cases = 0;

  snprintf(path, sizeof(path), "%s/hostile/INDEX", data_dir);
  index = read_file(path, &len);
  CHECK(index != NULL);
  if (index == NULL)
    return;
  line = index;
  while (line != NULL && *line != '\0') {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    if (nl != NULL && nl > line && nl[-1] == '\r')
      nl[-1] = '\0';
    if (line[0] != '#' && line[0] != '\0') {
      run_hostile_case(data_dir, line);
      cases++;
    }
    line = nl ? nl + 1 : NULL;
  }
  free(index);
  /* The suite is not silently empty (19 cases when this was written). */
  CHECK(cases >= 19);
}

/* limit.observed and what stands in for it (schema 1.2.0): the value with
 * where it was read, or the reason, call and error when there is none. */
/* The last line of the sample file is its run's job_end, as in every
 * stream jobwarden writes (the validator checks it). */
static void test_last_line(void) {
  jw_event_t ev;
  char *line;
  init_event(&ev, JW_EVENT_JOB_END, "job", "observed", "monitor", JW_SEV_INFO, "jobwarden",
             "Job agent-ci ended.");
  line = emit(&ev, NULL, __LINE__);
  CHECK(line != NULL && strstr(line, ",\"rule\":\"job\",\"rule_id\":\"JW-0001\","
                                     "\"action\":\"observed\",\"severity\":\"info\",") != NULL);
  free(line);
}

static void test_limit_lines(void) {
  jw_event_t ev;
  char *line;

  /* A warning below a hard limit, with the value Windows measured and
   * where it was read; a reason set beside a value is not rendered (the
   * value wins). */
  init_event(&ev, JW_EVENT_VIOLATION, "job_memory_warning", "observed", "kernel", JW_SEV_MEDIUM,
             "port", "warned");
  ev.has_job_message = 1;
  ev.job_message = 11;
  ev.has_limit = 1;
  ev.limit_name = "job_memory_warning";
  ev.limit_unit = "bytes";
  ev.limit_configured = 483183821;
  ev.limit_hard = 536870912;
  ev.has_limit_observed = 1;
  ev.limit_observed = 490000000;
  ev.limit_observed_source = "JobObjectLimitViolationInformation.JobMemory";
  strcpy(ev.limit_unavailable, "ignored");
  line = emit(&ev, NULL, __LINE__);
  CHECK_CONTAINS(line, ",\"limit\":{\"name\":\"job_memory_warning\",\"unit\":\"bytes\","
                       "\"configured\":483183821,\"observed\":490000000,"
                       "\"hard_limit\":536870912,\"observed_source\":"
                       "\"JobObjectLimitViolationInformation.JobMemory\"},\"message\":\"warned\"}");
  free(line);

  /* No value: the reason, the call and its error instead, never a 0; then
   * a reason without a failed call. */
  init_event(&ev, JW_EVENT_VIOLATION, "job_memory", "blocked", "kernel", JW_SEV_HIGH, "port",
             "refused");
  ev.has_limit = 1;
  ev.limit_name = "job_memory";
  ev.limit_unit = "bytes";
  ev.limit_configured = 536870912;
  strcpy(ev.limit_unavailable, "the query failed (87)");
  ev.limit_unavailable_where = "QueryInformationJobObject(JobObjectLimitViolationInformation)";
  ev.has_limit_unavailable_error = 1;
  ev.limit_unavailable_error = 87;
  line = emit(&ev, NULL, __LINE__);
  CHECK_CONTAINS(line, ",\"limit\":{\"name\":\"job_memory\",\"unit\":\"bytes\","
                       "\"configured\":536870912,\"observed_unavailable\":{\"reason\":"
                       "\"the query failed (87)\",\"where\":\"QueryInformationJobObject("
                       "JobObjectLimitViolationInformation)\",\"win32_error\":87}},"
                       "\"message\":\"refused\"}");
  free(line);
  ev.limit_unavailable_where = NULL;
  ev.has_limit_unavailable_error = 0;
  strcpy(ev.limit_unavailable, "no documented query");
  line = emit(&ev, NULL, __LINE__);
  CHECK_CONTAINS(line, ",\"limit\":{\"name\":\"job_memory\",\"unit\":\"bytes\","
                       "\"configured\":536870912,\"observed_unavailable\":{\"reason\":"
                       "\"no documented query\"}},\"message\":\"refused\"}");
  free(line);
}

/* docs/events.md's Rules table and the rule catalog (src/rule_catalog.c)
 * say the same: every catalog rule has its row with its id and exactly its
 * tags, and every row is in the catalog. */
static void test_catalog_doc(const char *data_dir) {
  char path[1024], line[4096];
  FILE *f;
  size_t n = 0, i, rows = 0;
  const jw_rule_info_t *cat = jw_rule_catalog(&n);
  int seen[64] = {0};
  snprintf(path, sizeof(path), "%s/../../docs/events.md", data_dir);
  f = fopen(path, "rb");
  CHECK(f != NULL);
  if (f == NULL)
    return;
  CHECK(n > 30 && n < 64);
  while (fgets(line, sizeof(line), f) != NULL) {
    char name[64], id[16];
    const char *tags, *p;
    const jw_rule_info_t *info;
    size_t k, ntags = 0;
    /* | `name` | JW-NNNN | kinds | meaning | `tag`, `tag` | */
    if (sscanf(line, "| `%63[a-z_]` | %15[JW0-9-] |", name, id) != 2 ||
        strncmp(id, "JW-", 3) != 0 || strlen(id) != 7)
      continue;
    rows++;
    info = jw_rule_info(name);
    CHECK(info != NULL);
    if (info == NULL) {
      fprintf(stderr, "docs/events.md: rule %s is not in the catalog\n", name);
      continue;
    }
    CHECK_STR(id, info->id);
    seen[info - cat] = 1;
    tags = strrchr(line, '|');
    /* the last cell: back up to the cell before the closing bar */
    p = tags;
    while (p > line && *(p - 1) != '|')
      p--;
    for (k = 0; k < JW_RULE_TAGS_MAX && info->tags[k] != NULL; k++) {
      char want[80];
      snprintf(want, sizeof(want), "`%s`", info->tags[k]);
      CHECK(strstr(p, want) != NULL && strstr(p, want) < tags);
      ntags++;
    }
    /* No tag in the row that the catalog does not have. */
    for (k = 0; p < tags && (p = strchr(p, '`')) != NULL && p < tags; k++) {
      p = strchr(p + 1, '`');
      if (p == NULL)
        break;
      p++;
    }
    CHECK_U64(k, ntags);
  }
  fclose(f);
  CHECK_U64(rows, n);
  for (i = 0; i < n; i++)
    if (!seen[i]) {
      CHECK(!"a catalog rule has no row in docs/events.md");
      fprintf(stderr, "missing row: %s\n", cat[i].name);
    }
}

static const char *g_data;

static void test_catalog_doc_case(void) {
  test_catalog_doc(g_data);
}

static void test_hostile_case(void) {
  test_hostile(g_data);
}

/* Last: every line the cases wrote reaches the file (the unit.schema test
 * reads it). */
static void test_events_file_closed(void) {
  if (events_file != NULL)
    CHECK(fclose(events_file) == 0);
  events_file = NULL;
}

/* Runnable one by one: `test_event DATA OUT --case lines`. */
static const jw_test_case_t cases[] = {
    {"catalog_doc", test_catalog_doc_case, 30},
    {"names", test_names, 30},
    {"time", test_time, 30},
    {"entity_id", test_entity_id, 30},
    {"lines", test_lines, 30},
    {"image_len", test_image_len, 30},
    {"enrichment", test_enrichment, 30},
    {"identity", test_identity, 30},
    {"ancestor_cut", test_ancestor_cut, 30},
    {"edges", test_edges, 30},
    {"escape_runs", test_escape_runs, 30},
    {"run_frags", test_run_frags, 30},
    {"hostile", test_hostile_case, 30},
    {"limit_lines", test_limit_lines, 30},
    {"last_line", test_last_line, 30},
    {"events_file_closed", test_events_file_closed, 30},
};

int main(int argc, char **argv) {
  char path[1024];
  const char *out = jw_test_arg(argc, argv, 2, NULL);
  g_data = jw_test_arg(argc, argv, 1, NULL);
  if (jw_test_listing(argc, argv))
    return jw_test_run_cases("event", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
  if (out == NULL) {
    fprintf(stderr, "usage: test_event DATA_DIR OUT_DIR [--case NAME]\n");
    return 2;
  }
  snprintf(path, sizeof(path), "%s/unit-event.jsonl", out);
  remove(path);
  /* Binary: "\n" stays "\n" on Windows too. */
  events_file = fopen(path, "wb");
  CHECK(events_file != NULL);
  return jw_test_run_cases("event", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

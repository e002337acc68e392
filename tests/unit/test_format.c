/* unit: the ecs and ocsf formats (src/format.c). Hand-built native lines of
 * schema 2.0.0 (one per event kind, /work SPEC-2.0.md shape) convert to
 * exactly the ECS and OCSF fields docs/integrations.md documents; the
 * converted lines are written to OUT/formats/unit-format.{ecs,ocsf}.jsonl,
 * where native.format.ecs_defs and native.format.ocsf_defs validate them
 * against Elastic's and OCSF's own definitions. Also: the exporters'
 * format= option (every kind, the errors), the emitter writing the same
 * event to native, ecs and ocsf sinks (each sink's line is the conversion of
 * the native line, synchronous and queued), the gap record and the
 * rotation's continuation line in the sink's format, and the syslog
 * header's facts read from each format. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#ifdef _WIN32
#include <direct.h>
#define MKDIR(p) _mkdir(p)
#else
#include <sys/stat.h>
#define MKDIR(p) mkdir(p, 0755)
#endif

#include "cli.h"
#include "format.h"
#include "harness.h"
#include "internal.h"
#include "test_util.h"

#define RUN "\"run_id\":\"0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f\""
#define HOST                                                                                       \
  "\"host\":{\"name\":\"BUILD-07\",\"id\":\"6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c\",\"os\":{"       \
  "\"name\":\"Windows\",\"version\":\"10.0\",\"build\":\"19045\",\"wine_version\":\"8.0\"}},"      \
  "\"agent\":{\"name\":\"jobwarden\",\"version\":\"0.2.0\",\"build\":\"63c24c2\"},"                \
  "\"user\":{\"id\":\"S-1-5-21-1-2-3-1001\",\"name\":\"alice\",\"domain\":\"BUILD-07\"}"
#define HEAD(ev, seq, ts, em)                                                                      \
  "{\"schema_version\":\"2.0.0\",\"event\":\"" ev "\",\"seq\":" #seq ",\"@timestamp\":\"" ts       \
  "\",\"emitted\":\"" em "\"," HOST "," RUN ",\"job\":{\"name\":\"agent-BUILD-07-0f8c2d4e\","      \
  "\"tier\":\"lockdown\"},"
#define ROOT_PROC                                                                                  \
  "\"process\":{\"pid\":4242,\"entity_id\":\"4242-01DD7B683C62E130\",\"executable\":"              \
  "\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,\"parent\":{\"pid\":1000,\"entity_id\":"          \
  "\"1000-01DD7B683C000000\"},\"command_line\":\"agent.exe --run\",\"user\":{\"sid\":"             \
  "\"S-1-5-21-1-2-3-1001\",\"name\":\"BUILD-07\\\\alice\"},\"integrity\":\"medium\","              \
  "\"ancestry\":[],\"start\":\"2026-11-23T09:11:05.090000Z\",\"hash\":{\"sha256\":"                \
  "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"},\"image_size\":123456,"   \
  "\"pe\":{\"original_file_name\":\"agent.exe\",\"company\":\"Example Corp\",\"product\":"         \
  "\"Agent\",\"description\":\"The agent\",\"file_version\":\"1.2.3.4\"},\"code_signature\":{"     \
  "\"exists\":false,\"status\":\"unsigned\",\"trusted\":false}}"
#define CHILD_IDS                                                                                  \
  "\"pid\":4300,\"entity_id\":\"4300-01DD7B683D000000\",\"executable\":"                           \
  "\"C:\\\\Windows\\\\System32\\\\cmd.exe\",\"is_root\":false,\"parent\":{\"pid\":4242,"           \
  "\"entity_id\":\"4242-01DD7B683C62E130\"},\"ancestry\":[{\"pid\":4242,\"entity_id\":"            \
  "\"4242-01DD7B683C62E130\",\"executable\":\"C:\\\\agent\\\\agent.exe\"}],\"start\":"             \
  "\"2026-11-23T09:11:06.000001Z\""

/* One native line per event kind (schema 2.0.0). */
static const char *const native_lines[] = {
    /* 0 job_start */
    HEAD("sandbox.job_start", 1, "2026-11-23T09:11:05.100000Z",
         "2026-11-23T09:11:05.100250Z") "\"rule\":\"job\",\"action\":\"observed\",\"severity\":"
                                        "\"info\",\"source\":\"jobwarden\","
                                        "\"message\":\"job agent-BUILD-07-0f8c2d4e "
                                        "started\",\"policy\":{\"tier\":\"lockdown\"},"
                                        "\"job_config\":{\"command\":[\"agent.exe\",\"--run\"]}}",
    /* 1 process_start of the root */
    HEAD("sandbox.process_start", 2, "2026-11-23T09:11:05.090000Z",
         "2026-11-23T09:11:05.100400Z") "\"rule\":\"root_process\",\"action\":\"observed\","
                                        "\"severity\":\"info\",\"source\":"
                                        "\"jobwarden\"," ROOT_PROC
                                        ",\"message\":\"process 4242 started\"}",
    /* 2 process_start of a child, identity not ready yet */
    HEAD("sandbox.process_start", 3, "2026-11-23T09:11:06.000001Z",
         "2026-11-23T09:11:06.000900Z") "\"rule\":\"child_process\",\"action\":\"observed\","
                                        "\"severity\":\"info\",\"source\":\"port\","
                                        "\"process\":{" CHILD_IDS
                                        ",\"command_line\":\"cmd.exe /c whoami\",\"integrity\":"
                                        "\"medium_plus\",\"unavailable\":{\"hash\":\"still "
                                        "hashing\"}},\"message\":\"process 4300 "
                                        "started\"}",
    /* 3 process_update: the child's identity */
    HEAD("sandbox.process_update", 4, "2026-11-23T09:11:06.020000Z",
         "2026-11-23T09:11:06.020100Z") "\"rule\":\"child_process\",\"action\":\"observed\","
                                        "\"severity\":\"info\",\"source\":"
                                        "\"jobwarden\",\"process\":{" CHILD_IDS
                                        ",\"hash\":{\"sha256\":"
                                        "\"b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ac"
                                        "e2efcde9\"},\"pe\":{"
                                        "\"original_file_name\":\"Cmd.Exe\",\"company\":"
                                        "\"Microsoft Corporation\"},"
                                        "\"code_signature\":{\"exists\":true,\"status\":\"valid\","
                                        "\"subject_name\":\"Microsoft "
                                        "Windows\",\"trusted\":true}},\"message\":\"identity of "
                                        "process 4300\"}",
    /* 4 violation: a denied image, terminated by jobwarden */
    HEAD("sandbox.violation", 5, "2026-11-23T09:11:06.030000Z",
         "2026-11-23T09:11:06.030300Z") "\"rule\":\"image_denied\",\"rule_id\":\"JW-1103\","
                                        "\"action\":\"terminated\",\"enforcer\":"
                                        "\"monitor\",\"severity\":\"high\",\"source\":"
                                        "\"jobwarden\",\"tags\":["
                                        "\"attack.t1059.003\",\"jobwarden.monitor_rule\"],"
                                        "\"process\":{" CHILD_IDS "},\"message\":"
                                        "\"process 4300 runs cmd.exe, which the deny list names; "
                                        "terminated\",\"enforcement\":{"
                                        "\"configured_action\":\"kill_process\",\"list\":\"deny\","
                                        "\"matched\":\"cmd.exe\"}}",
    /* 5 process_exit of the child: ended by jobwarden */
    HEAD("sandbox.process_exit", 6, "2026-11-23T09:11:06.040000Z",
         "2026-11-23T09:11:06.040200Z") "\"rule\":\"child_process\",\"action\":\"terminated\","
                                        "\"enforcer\":\"monitor\",\"severity\":"
                                        "\"info\",\"source\":\"port\",\"process\":{" CHILD_IDS
                                        ",\"exit_code\":1,\"exit_code_hex\":"
                                        "\"0x00000001\",\"status\":null,\"exit_class\":\"failure\","
                                        "\"end\":"
                                        "\"2026-11-23T09:11:06.040000Z\",\"lifetime_ms\":39},"
                                        "\"message\":\"process 4300 exited\"}",
    /* 6 violation: job escape (two ATT&CK tags: a sub-technique and a tactic) */
    HEAD("sandbox.violation", 7, "2026-11-23T09:11:07.000000Z",
         "2026-11-23T09:11:07.000500Z") "\"rule\":\"job_escape\",\"rule_id\":\"JW-1301\","
                                        "\"action\":\"terminated\",\"enforcer\":"
                                        "\"monitor\",\"severity\":\"critical\",\"source\":"
                                        "\"jobwarden\",\"tags\":["
                                        "\"attack.t1134.004\",\"attack.defense_evasion\","
                                        "\"jobwarden.attack\"],\"process\":{\"pid\":"
                                        "5000,\"entity_id\":\"5000-01DD7B683E000000\","
                                        "\"executable\":\"C:\\\\agent\\\\x.exe\","
                                        "\"is_root\":false,\"parent\":{\"pid\":700}},\"message\":"
                                        "\"process 5000 escaped the job\","
                                        "\"escape\":{\"parent\":\"member\",\"detected_by\":"
                                        "\"scan\",\"detected_after_ms\":120}}",
    /* 7 violation: the active-process limit, refused by the kernel (no process) */
    HEAD("sandbox.violation", 8, "2026-11-23T09:11:07.100000Z",
         "2026-11-23T09:11:07.100100Z") "\"rule\":\"active_processes\",\"rule_id\":\"JW-1001\","
                                        "\"action\":\"blocked\",\"enforcer\":"
                                        "\"kernel\",\"severity\":\"medium\",\"source\":\"port\","
                                        "\"tags\":[\"jobwarden.limit\"],"
                                        "\"job_message\":{\"id\":3,\"name\":\"JOB_OBJECT_MSG_"
                                        "ACTIVE_PROCESS_LIMIT\"},\"limit\":{"
                                        "\"name\":\"active_processes\",\"unit\":\"processes\","
                                        "\"configured\":4},\"message\":\"a "
                                        "process creation over the limit of 4 was refused\"}",
    /* 8 process_exit of the root: a crash nobody caused */
    HEAD("sandbox.process_exit", 9, "2026-11-23T09:11:08.000000Z",
         "2026-11-23T09:11:08.000700Z") "\"rule\":\"root_process\",\"action\":\"observed\","
                                        "\"severity\":\"info\",\"source\":\"port\","
                                        "\"process\":{\"pid\":4242,\"entity_id\":\"4242-"
                                        "01DD7B683C62E130\",\"executable\":"
                                        "\"C:\\\\agent\\\\agent.exe\",\"is_root\":true,\"parent\":{"
                                        "\"pid\":1000,\"entity_id\":"
                                        "\"1000-01DD7B683C000000\"},\"ancestry\":[],\"exit_code\":"
                                        "3221225477,\"exit_code_hex\":"
                                        "\"0xC0000005\",\"status\":\"STATUS_ACCESS_VIOLATION\","
                                        "\"exit_class\":\"abnormal\",\"start\":"
                                        "\"2026-11-23T09:11:05.090000Z\",\"end\":\"2026-11-23T09:"
                                        "11:08.000000Z\"},\"message\":"
                                        "\"process 4242 exited with 0xC0000005\"}",
    /* 9 notice */
    HEAD("sandbox.notice", 10, "2026-11-23T09:11:08.001000Z",
         "2026-11-23T09:11:08.001100Z") "\"rule\":\"token_not_applied\",\"rule_id\":\"JW-2006\","
                                        "\"action\":\"degraded\",\"severity\":"
                                        "\"high\",\"source\":\"jobwarden\",\"tags\":[\"jobwarden."
                                        "sandbox_health\"],\"message\":\"the "
                                        "program runs with a token that has more rights than "
                                        "asked\"}",
    /* 10 telemetry_gap */
    HEAD("sandbox.telemetry_gap", 14, "2026-11-23T09:11:08.002000Z",
         "2026-11-23T09:11:08.002000Z") "\"rule\":\"telemetry_gap\",\"rule_id\":\"JW-2102\","
                                        "\"action\":\"lost\",\"severity\":\"high\","
                                        "\"source\":\"jobwarden\",\"message\":\"3 event(s), seq 11 "
                                        "to 14, did not reach this sink "
                                        "(queue_full)\",\"gap\":{\"from_seq\":11,\"to_seq\":14,"
                                        "\"count\":3,\"sink\":"
                                        "\"file:e.jsonl,format=ecs\",\"reason\":\"queue_full\"}}",
    /* 11 job_end, the last line */
    HEAD("sandbox.job_end", 15, "2026-11-23T09:11:08.003000Z",
         "2026-11-23T09:11:08.003100Z") "\"rule\":\"job\",\"action\":\"observed\",\"severity\":"
                                        "\"info\",\"source\":\"jobwarden\","
                                        "\"message\":\"job "
                                        "ended\",\"summary\":{\"processes\":2,\"violations\":3,"
                                        "\"root_exit_code\":"
                                        "3221225477}}",
};
#define N_LINES (sizeof(native_lines) / sizeof(native_lines[0]))

/* The value at a dotted path (test_util.h). */
static json_t *at(json_t *o, const char *path) {
  return jw_test_json_at(o, path);
}
static const char *s_at(json_t *o, const char *path) {
  return json_string_value(at(o, path));
}
static long long i_at(json_t *o, const char *path) {
  json_t *v = at(o, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -999999;
}

static json_t *parse(const char *line) {
  json_error_t e;
  json_t *j = json_loads(line, 0, &e);
  if (j == NULL)
    fprintf(stderr, "test line does not parse: %s (%s)\n", e.text, line);
  return j;
}

/* Checks the fields every ECS line has. */
static void check_ecs_common(json_t *e, json_t *n) {
  CHECK_STR(s_at(e, "@timestamp"), s_at(n, "@timestamp"));
  CHECK_STR(s_at(e, "ecs.version"), JW_ECS_VERSION);
  CHECK_STR(s_at(e, "event.created"), s_at(n, "emitted"));
  CHECK_INT(i_at(e, "event.sequence"), i_at(n, "seq"));
  CHECK_STR(s_at(e, "event.module"), "jobwarden");
  CHECK_STR(s_at(e, "event.dataset"), "jobwarden.events");
  CHECK_STR(s_at(e, "log.level"), s_at(n, "severity"));
  CHECK_STR(s_at(e, "host.name"), "BUILD-07");
  CHECK_STR(s_at(e, "host.id"), "6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c");
  CHECK_STR(s_at(e, "host.os.name"), "Windows");
  CHECK_STR(s_at(e, "host.os.version"), "10.0");
  CHECK_STR(s_at(e, "host.os.kernel"), "10.0.19045");
  CHECK_STR(s_at(e, "host.os.type"), "windows");
  CHECK(at(e, "host.os.build") == NULL); /* not an ECS field: kept under jobwarden.host */
  CHECK_STR(s_at(e, "jobwarden.host.os.build"), "19045");
  CHECK_STR(s_at(e, "jobwarden.host.os.wine_version"), "8.0");
  CHECK_STR(s_at(e, "agent.name"), "jobwarden");
  CHECK_STR(s_at(e, "agent.version"), "0.2.0");
  CHECK_STR(s_at(e, "agent.build.original"), "63c24c2");
  CHECK_STR(s_at(e, "user.id"), "S-1-5-21-1-2-3-1001");
  CHECK_STR(s_at(e, "user.name"), "alice");
  CHECK_STR(s_at(e, "user.domain"), "BUILD-07");
  CHECK_STR(s_at(e, "message"), s_at(n, "message"));
  CHECK_STR(s_at(e, "jobwarden.event"), s_at(n, "event"));
  CHECK_STR(s_at(e, "jobwarden.run_id"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
  CHECK_STR(s_at(e, "jobwarden.job.name"), "agent-BUILD-07-0f8c2d4e");
  CHECK_STR(s_at(e, "jobwarden.job.tier"), "lockdown");
  CHECK_STR(s_at(e, "jobwarden.action"), s_at(n, "action"));
  CHECK_STR(s_at(e, "jobwarden.source"), s_at(n, "source"));
  CHECK(at(e, "jobwarden.seq") == NULL && at(e, "jobwarden.emitted") == NULL);
}

static void check_ocsf_common(json_t *o, json_t *n, long long class_uid, long long activity) {
  CHECK_INT(i_at(o, "class_uid"), class_uid);
  CHECK_INT(i_at(o, "category_uid"), class_uid / 1000);
  CHECK_INT(i_at(o, "activity_id"), activity);
  CHECK_INT(i_at(o, "type_uid"), class_uid * 100 + activity);
  CHECK_STR(s_at(o, "metadata.version"), JW_OCSF_VERSION);
  CHECK_STR(s_at(o, "metadata.product.name"), "jobwarden");
  CHECK_STR(s_at(o, "metadata.product.vendor_name"), "jobwarden");
  CHECK_STR(s_at(o, "metadata.product.version"), "0.2.0");
  CHECK_STR(s_at(o, "metadata.correlation_uid"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
  CHECK_INT(i_at(o, "metadata.sequence"), i_at(n, "seq"));
  CHECK_STR(s_at(o, "metadata.event_code"), s_at(n, "event"));
  CHECK_STR(s_at(o, "device.hostname"), "BUILD-07");
  CHECK_STR(s_at(o, "device.uid"), "6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c");
  CHECK_INT(i_at(o, "device.type_id"), 0);
  CHECK_INT(i_at(o, "device.os.type_id"), 100);
  CHECK_STR(s_at(o, "device.os.build"), "19045");
  CHECK_STR(s_at(o, "message"), s_at(n, "message"));
  CHECK_STR(s_at(o, "unmapped.jobwarden.run_id"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
  CHECK_STR(s_at(o, "unmapped.jobwarden.event"), s_at(n, "event"));
}

/* Converts every native line, checks the documented fields, writes both
 * outputs for the definition tests. */
static void test_kinds(const char *out) {
  char pe[1024], po[1024], pn[1024];
  FILE *fe, *fo, *fn;
  size_t i;
  snprintf(pe, sizeof(pe), "%s/formats/unit-format.ecs.jsonl", out);
  snprintf(po, sizeof(po), "%s/formats/unit-format.ocsf.jsonl", out);
  snprintf(pn, sizeof(pn), "%s/formats/unit-format.native.jsonl", out);
  fe = fopen(pe, "wb");
  fo = fopen(po, "wb");
  fn = fopen(pn, "wb");
  CHECK(fe != NULL && fo != NULL && fn != NULL);
  for (i = 0; i < N_LINES; i++) {
    json_t *n = parse(native_lines[i]), *e, *o;
    char *text;
    CHECK(n != NULL);
    if (n == NULL)
      continue;
    e = jw_format_ecs(n);
    o = jw_format_ocsf(n);
    CHECK(e != NULL && o != NULL);
    if (e == NULL || o == NULL) {
      json_decref(n);
      json_decref(e);
      json_decref(o);
      continue;
    }
    check_ecs_common(e, n);
    switch (i) {
    case 0: /* job_start */
      check_ocsf_common(o, n, 0, 99);
      CHECK_STR(s_at(e, "event.kind"), "event");
      CHECK_STR(s_at(e, "event.category.0"), "configuration");
      CHECK_STR(s_at(e, "event.type.0"), "info");
      CHECK_STR(s_at(e, "event.action"), "job_start");
      CHECK_STR(s_at(e, "event.outcome"), "success");
      CHECK_INT(i_at(e, "event.severity"), 1);
      CHECK(at(e, "rule") == NULL);
      CHECK_STR(s_at(e, "jobwarden.rule"), "job");
      CHECK_STR(s_at(e, "jobwarden.policy.tier"), "lockdown");
      CHECK_STR(s_at(e, "jobwarden.job_config.command.1"), "--run");
      CHECK_STR(s_at(o, "activity_name"), "Job Start");
      CHECK_STR(s_at(o, "metadata.profiles.0"), "host");
      CHECK_INT(i_at(o, "time"), 1795425065100LL);
      CHECK_INT(i_at(o, "metadata.logged_time"), 1795425065100LL);
      CHECK_INT(i_at(o, "severity_id"), 1);
      CHECK_STR(s_at(o, "severity"), "Informational");
      break;
    case 1: /* the root's start */
      check_ocsf_common(o, n, 1007, 1);
      CHECK_STR(s_at(e, "event.category.0"), "process");
      CHECK_STR(s_at(e, "event.type.0"), "start");
      CHECK_STR(s_at(e, "event.action"), "process_start");
      CHECK_STR(s_at(e, "event.outcome"), "success");
      CHECK_INT(i_at(e, "process.pid"), 4242);
      CHECK_STR(s_at(e, "process.entity_id"), "4242-01DD7B683C62E130");
      CHECK_STR(s_at(e, "process.executable"), "C:\\agent\\agent.exe");
      CHECK_STR(s_at(e, "process.name"), "agent.exe");
      CHECK_STR(s_at(e, "process.command_line"), "agent.exe --run");
      CHECK(at(e, "process.args") == NULL);
      CHECK_STR(s_at(e, "process.start"), "2026-11-23T09:11:05.090000Z");
      CHECK_INT(i_at(e, "process.parent.pid"), 1000);
      CHECK_STR(s_at(e, "process.parent.entity_id"), "1000-01DD7B683C000000");
      CHECK(at(e, "process.parent.executable") == NULL); /* not in the ancestry */
      CHECK_STR(s_at(e, "process.hash.sha256"),
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
      CHECK_STR(s_at(e, "process.pe.original_file_name"), "agent.exe");
      CHECK_STR(s_at(e, "process.pe.company"), "Example Corp");
      CHECK_STR(s_at(e, "process.pe.file_version"), "1.2.3.4");
      CHECK(json_is_false(at(e, "process.code_signature.exists")));
      CHECK_STR(s_at(e, "process.code_signature.status"), "unsigned");
      CHECK(json_is_false(at(e, "process.code_signature.trusted")));
      CHECK_STR(s_at(e, "process.user.id"), "S-1-5-21-1-2-3-1001");
      CHECK_STR(s_at(e, "process.user.name"), "alice");
      CHECK_STR(s_at(e, "jobwarden.process.user.name"), "BUILD-07\\alice");
      CHECK_STR(s_at(e, "jobwarden.process.integrity"), "medium");
      CHECK_INT(i_at(e, "jobwarden.process.image_size"), 123456);
      CHECK(json_is_true(at(e, "jobwarden.process.is_root")));
      CHECK(at(e, "jobwarden.process.pid") == NULL);
      CHECK_STR(s_at(o, "activity_name"), "Launch");
      CHECK_STR(s_at(o, "type_name"), "Process Activity: Launch");
      CHECK_INT(i_at(o, "time"), 1795425065090LL);
      CHECK_INT(i_at(o, "process.pid"), 4242);
      CHECK_STR(s_at(o, "process.uid"), "4242-01DD7B683C62E130");
      CHECK_STR(s_at(o, "process.cmd_line"), "agent.exe --run");
      CHECK_INT(i_at(o, "process.created_time"), 1795425065090LL);
      CHECK_STR(s_at(o, "process.file.name"), "agent.exe");
      CHECK_STR(s_at(o, "process.file.path"), "C:\\agent\\agent.exe");
      CHECK_INT(i_at(o, "process.file.type_id"), 1);
      CHECK_INT(i_at(o, "process.file.hashes.0.algorithm_id"), 3);
      CHECK_STR(s_at(o, "process.file.hashes.0.value"),
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
      CHECK_INT(i_at(o, "process.file.size"), 123456);
      CHECK_STR(s_at(o, "process.file.company_name"), "Example Corp");
      CHECK_STR(s_at(o, "process.user.uid"), "S-1-5-21-1-2-3-1001");
      CHECK_STR(s_at(o, "process.user.name"), "alice");
      CHECK_STR(s_at(o, "process.user.domain"), "BUILD-07");
      CHECK_INT(i_at(o, "process.integrity_id"), 3);
      CHECK_INT(i_at(o, "actor.process.pid"), 1000);
      CHECK_STR(s_at(o, "actor.app_name"), "jobwarden");
      CHECK_STR(s_at(o, "unmapped.jobwarden.process.pe.original_file_name"), NULL);
      CHECK_STR(s_at(o, "unmapped.jobwarden.process.integrity"), "medium");
      break;
    case 2: /* a child's start */
      check_ocsf_common(o, n, 1007, 1);
      CHECK_STR(s_at(e, "process.parent.executable"), "C:\\agent\\agent.exe");
      CHECK_STR(s_at(e, "process.parent.name"), "agent.exe");
      CHECK_STR(s_at(e, "process.name"), "cmd.exe");
      CHECK(at(e, "process.hash") == NULL);
      CHECK_STR(s_at(e, "jobwarden.process.unavailable.hash"), "still hashing");
      CHECK_STR(s_at(e, "jobwarden.process.ancestry.0.entity_id"), "4242-01DD7B683C62E130");
      CHECK_INT(i_at(o, "process.integrity_id"), 99);
      CHECK_STR(s_at(o, "process.integrity"), "medium_plus");
      CHECK_INT(i_at(o, "actor.process.pid"), 4242);
      CHECK_STR(s_at(o, "actor.process.file.name"), "agent.exe");
      CHECK_STR(s_at(o, "process.parent_process.uid"), "4242-01DD7B683C62E130");
      CHECK_STR(s_at(o, "actor.app_name"), "agent-BUILD-07-0f8c2d4e");
      CHECK_STR(s_at(o, "actor.app_uid"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
      break;
    case 3: /* process_update */
      check_ocsf_common(o, n, 1007, 99);
      CHECK_STR(s_at(e, "event.category.0"), "process");
      CHECK_STR(s_at(e, "event.type.0"), "info");
      CHECK_STR(s_at(e, "event.action"), "process_update");
      CHECK(at(e, "event.outcome") == NULL);
      CHECK_STR(s_at(e, "process.pe.original_file_name"), "Cmd.Exe");
      CHECK(json_is_true(at(e, "process.code_signature.trusted")));
      CHECK_STR(s_at(e, "process.code_signature.subject_name"), "Microsoft Windows");
      CHECK_STR(s_at(o, "activity_name"), "Update");
      CHECK_STR(s_at(o, "process.file.hashes.0.value"),
                "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
      break;
    case 4: /* image_denied */
      check_ocsf_common(o, n, 2004, 1);
      CHECK_STR(s_at(e, "event.kind"), "alert");
      CHECK_STR(s_at(e, "event.category.0"), "intrusion_detection");
      CHECK_STR(s_at(e, "event.type.0"), "denied");
      CHECK_STR(s_at(e, "event.action"), "image_denied");
      CHECK(at(e, "event.outcome") == NULL);
      CHECK_INT(i_at(e, "event.severity"), 4);
      CHECK_STR(s_at(e, "rule.id"), "JW-1103");
      CHECK_STR(s_at(e, "rule.name"), "image_denied");
      CHECK_STR(s_at(e, "rule.category"), "monitor_rule");
      CHECK_STR(s_at(e, "rule.ruleset"), "jobwarden");
      CHECK(s_at(e, "rule.description") != NULL);
      CHECK_STR(s_at(e, "tags.0"), "attack.t1059.003");
      CHECK_STR(s_at(e, "threat.framework"), "MITRE ATT&CK");
      CHECK_STR(s_at(e, "threat.technique.id.0"), "T1059");
      CHECK_STR(s_at(e, "threat.technique.name.0"), "Command and Scripting Interpreter");
      CHECK_STR(s_at(e, "threat.technique.reference.0"),
                "https://attack.mitre.org/techniques/T1059/");
      CHECK_STR(s_at(e, "threat.technique.subtechnique.id.0"), "T1059.003");
      CHECK_STR(s_at(e, "threat.technique.subtechnique.name.0"), "Windows Command Shell");
      CHECK_STR(s_at(e, "threat.technique.subtechnique.reference.0"),
                "https://attack.mitre.org/techniques/T1059/003/");
      CHECK(at(e, "threat.tactic") == NULL);
      CHECK_STR(s_at(e, "jobwarden.enforcer"), "monitor");
      CHECK_STR(s_at(e, "jobwarden.enforcement.matched"), "cmd.exe");
      CHECK_STR(s_at(o, "finding_info.uid"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f-5");
      CHECK_STR(s_at(o, "finding_info.title"), "Denied image started");
      CHECK_STR(s_at(o, "finding_info.types.0"), "monitor_rule");
      CHECK_INT(i_at(o, "finding_info.created_time"), 1795425066030LL);
      CHECK_INT(i_at(o, "finding_info.first_seen_time"), 1795425066030LL);
      CHECK_STR(s_at(o, "finding_info.attacks.0.technique.uid"), "T1059");
      CHECK_STR(s_at(o, "finding_info.attacks.0.sub_technique.uid"), "T1059.003");
      CHECK_STR(s_at(o, "finding_info.attacks.0.sub_technique.name"), "Windows Command Shell");
      CHECK(at(o, "finding_info.attacks.0.tactic") == NULL);
      CHECK_INT(i_at(o, "evidences.0.process.pid"), 4300);
      CHECK_INT(i_at(o, "severity_id"), 4);
      CHECK_STR(s_at(o, "severity"), "High");
      CHECK_STR(s_at(o, "unmapped.jobwarden.rule"), "image_denied");
      CHECK_STR(s_at(o, "unmapped.jobwarden.action"), "terminated");
      CHECK(json_is_true(at(o, "is_alert")));
      CHECK_INT(i_at(o, "action_id"), 2);
      CHECK_STR(s_at(o, "action"), "Denied");
      CHECK_INT(i_at(o, "disposition_id"), 99);
      CHECK_STR(s_at(o, "disposition"), "terminated");
      CHECK_STR(s_at(o, "metadata.profiles.0"), "security_control");
      break;
    case 5: /* the child's exit, ended by jobwarden */
      check_ocsf_common(o, n, 1007, 2);
      CHECK_STR(s_at(e, "event.type.0"), "end");
      CHECK_INT(i_at(e, "process.exit_code"), 1);
      CHECK_STR(s_at(e, "process.end"), "2026-11-23T09:11:06.040000Z");
      CHECK_INT(i_at(e, "jobwarden.process.lifetime_ms"), 39);
      CHECK_INT(i_at(o, "exit_code"), 1);
      CHECK_STR(s_at(o, "actor.app_name"), "jobwarden");
      CHECK(at(o, "actor.process") == NULL);
      CHECK_INT(i_at(o, "process.terminated_time"), 1795425066040LL);
      break;
    case 6: /* job_escape */
      check_ocsf_common(o, n, 2004, 1);
      CHECK_INT(i_at(e, "event.severity"), 5);
      CHECK_STR(s_at(e, "threat.technique.id.0"), "T1134");
      CHECK_STR(s_at(e, "threat.technique.subtechnique.id.0"), "T1134.004");
      CHECK_STR(s_at(e, "threat.technique.subtechnique.name.0"), "Parent PID Spoofing");
      CHECK_STR(s_at(e, "threat.tactic.id.0"), "TA0005");
      CHECK_STR(s_at(e, "threat.tactic.name.0"), "Defense Evasion");
      CHECK_INT(i_at(e, "process.parent.pid"), 700);
      CHECK(at(e, "process.parent.entity_id") == NULL);
      CHECK_STR(s_at(o, "finding_info.attacks.0.tactic.uid"), "TA0005");
      CHECK_STR(s_at(o, "finding_info.attacks.0.tactic.name"), "Defense Evasion");
      CHECK_STR(s_at(o, "finding_info.attacks.0.technique.name"), "Access Token Manipulation");
      CHECK_INT(i_at(o, "severity_id"), 5);
      CHECK_STR(s_at(o, "unmapped.jobwarden.escape.parent"), "member");
      break;
    case 7: /* the kernel refused a process */
      check_ocsf_common(o, n, 2004, 1);
      CHECK_STR(s_at(e, "event.type.0"), "denied");
      CHECK_STR(s_at(e, "event.outcome"), "failure");
      CHECK_STR(s_at(e, "jobwarden.enforcer"), "kernel");
      CHECK_INT(i_at(e, "jobwarden.limit.configured"), 4);
      CHECK_INT(i_at(e, "jobwarden.job_message.id"), 3);
      CHECK(at(e, "threat") == NULL);
      CHECK(at(e, "process") == NULL);
      CHECK(at(o, "evidences") == NULL);
      CHECK(at(o, "finding_info.attacks") == NULL);
      CHECK_INT(i_at(o, "action_id"), 2);
      CHECK_INT(i_at(o, "disposition_id"), 2);
      CHECK_STR(s_at(o, "disposition"), "Blocked");
      break;
    case 8: /* the root crashed */
      check_ocsf_common(o, n, 1007, 2);
      CHECK_INT(i_at(e, "process.exit_code"), -1073741819LL);
      CHECK_INT(i_at(e, "jobwarden.process.exit_code"), 3221225477LL);
      CHECK_STR(s_at(e, "jobwarden.process.exit_code_hex"), "0xC0000005");
      CHECK_STR(s_at(e, "jobwarden.process.status"), "STATUS_ACCESS_VIOLATION");
      CHECK_INT(i_at(o, "exit_code"), -1073741819LL);
      CHECK_INT(i_at(o, "actor.process.pid"), 4242); /* reflexive: nobody ended it */
      break;
    case 9: /* notice */
      check_ocsf_common(o, n, 0, 99);
      CHECK_STR(s_at(e, "event.kind"), "event");
      CHECK(at(e, "event.category") == NULL && at(e, "event.type") == NULL);
      CHECK_STR(s_at(e, "event.action"), "token_not_applied");
      CHECK_STR(s_at(e, "rule.id"), "JW-2006");
      CHECK_STR(s_at(e, "rule.category"), "sandbox_health");
      CHECK_STR(s_at(o, "activity_name"), "Notice");
      break;
    case 10: /* telemetry_gap */
      check_ocsf_common(o, n, 1008, 99);
      CHECK_STR(s_at(e, "event.action"), "telemetry_gap");
      CHECK_STR(s_at(e, "event.outcome"), "failure");
      CHECK_STR(s_at(e, "rule.id"), "JW-2102");
      CHECK_INT(i_at(e, "jobwarden.gap.count"), 3);
      CHECK_STR(s_at(o, "log_name"), "jobwarden");
      CHECK_INT(i_at(o, "status_id"), 2);
      CHECK_STR(s_at(o, "status_detail"), "queue_full");
      CHECK_INT(i_at(o, "unmapped.jobwarden.gap.to_seq"), 14);
      break;
    case 11: /* job_end */
      check_ocsf_common(o, n, 0, 99);
      CHECK_STR(s_at(e, "event.action"), "job_end");
      CHECK(at(e, "event.category") == NULL);
      CHECK_INT(i_at(e, "jobwarden.summary.root_exit_code"), 3221225477LL);
      CHECK_STR(s_at(o, "activity_name"), "Job End");
      break;
    }
    text = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (fe && text)
      fprintf(fe, "%s\n", text);
    free(text);
    text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (fo && text)
      fprintf(fo, "%s\n", text);
    free(text);
    if (fn)
      fprintf(fn, "%s\n", native_lines[i]);
    json_decref(e);
    json_decref(o);
    json_decref(n);
  }
  /* The rotation's continuation line, built from the first line of the new
   * file, in each format; written with the outputs it belongs to. */
  {
    char *conv = NULL, *head;
    size_t clen = 0, hlen = 0;
    json_t *h;
    jw_format_t fs[2] = {JW_FORMAT_ECS, JW_FORMAT_OCSF};
    FILE *fh[2];
    int k;
    fh[0] = fe;
    fh[1] = fo;
    for (k = 0; k < 2; k++) {
      CHECK_INT(jw_format_line(fs[k], native_lines[4], strlen(native_lines[4]), &conv, &clen), 0);
      head = jw_format_continuation(fs[k], "C:\\logs\\events.jsonl.1", conv, clen, &hlen);
      CHECK(head != NULL && hlen > 0 && head[hlen - 1] == '\n');
      h = head ? json_loadb(head, hlen, 0, NULL) : NULL;
      if (k == 0) {
        CHECK_STR(s_at(h, "@timestamp"), "2026-11-23T09:11:06.030300Z");
        CHECK_STR(s_at(h, "event.action"), "log_continued");
        CHECK_STR(s_at(h, "jobwarden.event"), "sandbox.log_continued");
        CHECK_INT(i_at(h, "jobwarden.continues_at_seq"), 5);
        CHECK_STR(s_at(h, "jobwarden.previous_file"), "C:\\logs\\events.jsonl.1");
        CHECK_STR(s_at(h, "host.name"), "BUILD-07");
        CHECK(at(h, "event.sequence") == NULL);
      } else {
        CHECK_INT(i_at(h, "class_uid"), 1008);
        CHECK_INT(i_at(h, "activity_id"), 5);
        CHECK_INT(i_at(h, "type_uid"), 100805);
        CHECK_INT(i_at(h, "time"), 1795425066030LL);
        CHECK_STR(s_at(h, "file.name"), "events.jsonl.1");
        CHECK_STR(s_at(h, "file.path"), "C:\\logs\\events.jsonl.1");
        CHECK(at(h, "metadata.sequence") == NULL);
        CHECK_STR(s_at(h, "metadata.correlation_uid"), "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
        CHECK_INT(i_at(h, "unmapped.jobwarden.continues_at_seq"), 5);
      }
      if (fh[k] && head)
        fwrite(head, 1, hlen, fh[k]);
      json_decref(h);
      free(head);
      free(conv);
      conv = NULL;
    }
    /* The native one is the line of schema 1.1 (docs/events.md). */
    head = jw_format_continuation(JW_FORMAT_NATIVE, "PATH.1", native_lines[4],
                                  strlen(native_lines[4]), &hlen);
    if (head != NULL)
      head[hlen - 1] = '\0'; /* compared as a string, without its newline */
    CHECK_STR(head, "{\"schema_version\":\"" JW_SCHEMA_VERSION "\",\"event\":"
                    "\"sandbox.log_continued\",\"run_id\":\"0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f\","
                    "\"continues_at_seq\":5,\"previous_file\":\"PATH.1\"}");
    free(head);
  }
  if (fe)
    fclose(fe);
  if (fo)
    fclose(fo);
  if (fn)
    fclose(fn);
}

/* Not a jobwarden event: no conversion, and the reason is told apart. */
static void test_refused(void) {
  char *out = NULL;
  size_t len = 0;
  json_t *j = parse("{\"schema_version\":\"2.0.0\",\"event\":\"sandbox.log_continued\","
                    "\"run_id\":\"x\",\"continues_at_seq\":3,\"previous_file\":\"p\"}");
  CHECK(jw_format_ecs(j) == NULL);
  CHECK(jw_format_ocsf(j) == NULL);
  json_decref(j);
  CHECK_INT(jw_format_line(JW_FORMAT_ECS, "{\"seq\":1}", 9, &out, &len), JW_EINVAL);
  CHECK_INT(jw_format_line(JW_FORMAT_OCSF, "[1,2]", 5, &out, &len), JW_EINVAL);
  CHECK_INT(jw_format_line(JW_FORMAT_ECS, "{\"event\":", 9, &out, &len), JW_EINVAL);
  CHECK(out == NULL);
  {
    jw_format_t f = JW_FORMAT_OCSF;
    CHECK_INT(jw_format_parse("ecs", &f), 0);
    CHECK_INT(f, JW_FORMAT_ECS);
    CHECK_INT(jw_format_parse("ECS", &f), JW_EINVAL);
    CHECK_INT(jw_format_parse("", &f), JW_EINVAL);
    CHECK_STR(jw_format_name(JW_FORMAT_OCSF), "ocsf");
  }
}

/* A path holding U+0000 (docs/events.md) is kept whole, and the names
 * derived from it are not cut at the 0 byte. */
static void test_nul(void) {
  static const char line[] =
      HEAD("sandbox.process_start", 2, "2026-11-23T09:11:05.090000Z",
           "2026-11-23T09:11:05.100400Z") "\"rule\":\"child_process\",\"action\":\"observed\","
                                          "\"severity\":\"info\",\"source\":\"port\",\"process\":{"
                                          "\"pid\":9,\"entity_id\":"
                                          "\"9-01DD7B683C62E130\",\"executable\":\"C:"
                                          "\\\\d\\u0000x\\\\a\\u0000b.exe\",\"user\":{"
                                          "\"sid\":\"S-1-5-21-1\",\"name\":"
                                          "\"DO\\u0000M\\\\b\\u0000ob\"}},\"message\":\"m\"}";
  char *out = NULL;
  size_t len = 0;
  json_t *e, *o;
  CHECK_INT(jw_format_line(JW_FORMAT_ECS, line, sizeof(line) - 1, &out, &len), 0);
  e = out ? json_loadb(out, len, JSON_ALLOW_NUL, NULL) : NULL;
  CHECK_INT(json_string_length(at(e, "process.executable")), 14);
  CHECK_INT(json_string_length(at(e, "process.name")), 7);
  CHECK(memcmp(s_at(e, "process.name") ? s_at(e, "process.name") : "", "a\0b.exe", 7) == 0);
  CHECK_INT(json_string_length(at(e, "process.user.name")), 4);
  free(out);
  CHECK_INT(jw_format_line(JW_FORMAT_OCSF, line, sizeof(line) - 1, &out, &len), 0);
  o = out ? json_loadb(out, len, JSON_ALLOW_NUL, NULL) : NULL;
  CHECK_INT(json_string_length(at(o, "process.file.path")), 14);
  CHECK_INT(json_string_length(at(o, "process.file.name")), 7);
  CHECK_INT(json_string_length(at(o, "process.user.domain")), 4);
  CHECK_INT(json_string_length(at(o, "process.user.name")), 4);
  free(out);
  json_decref(e);
  json_decref(o);
}

/* `jobwarden tail` on a pipe sink with format=ecs|ocsf shows the same line
 * as on a native one (OCSF's time has milliseconds), and still ends at
 * job_end. */
static void test_tail(void) {
  size_t i;
  for (i = 0; i < N_LINES; i++) {
    char want[2048], got[2048], *conv = NULL;
    size_t clen = 0;
    int end = jw_tail_format(native_lines[i], strlen(native_lines[i]), want, sizeof(want)), k;
    CHECK_INT(end, i == N_LINES - 1);
    for (k = 1; k < 3; k++) {
      CHECK_INT(
          jw_format_line((jw_format_t)k, native_lines[i], strlen(native_lines[i]), &conv, &clen),
          0);
      CHECK_INT(jw_tail_format(conv ? conv : "", clen, got, sizeof(got)), end);
      if (k == 1)
        CHECK_STR(got, want);
      else /* "2026-11-23T09:11:05.100Z" for "2026-11-23T09:11:05.100000Z" */
        CHECK_STR(strchr(got, ' '), strchr(want, ' '));
      free(conv);
      conv = NULL;
    }
  }
}

/* The syslog header's facts are the same whatever the format. */
static void test_meta(void) {
  jw_format_t fs[3] = {JW_FORMAT_NATIVE, JW_FORMAT_ECS, JW_FORMAT_OCSF};
  int k;
  for (k = 0; k < 3; k++) {
    char *line = NULL;
    size_t len = 0;
    json_t *j;
    jw_format_meta_t m;
    CHECK_INT(jw_format_line(fs[k], native_lines[4], strlen(native_lines[4]), &line, &len), 0);
    j = line ? json_loadb(line, len, 0, NULL) : NULL;
    jw_format_meta(fs[k], j, &m);
    CHECK_STR(m.timestamp, k == 2 ? "2026-11-23T09:11:06.030Z" : "2026-11-23T09:11:06.030000Z");
    CHECK_STR(m.event, "sandbox.violation");
    CHECK_STR(m.severity, "high");
    CHECK_STR(m.host, "BUILD-07");
    CHECK_STR(m.run_id, "0f8c2d4e6a1b3c5d7e9f0a2b4c6d8e0f");
    CHECK_INT(m.has_seq, 1);
    CHECK_INT(m.seq, 5);
    if (k == 2)
      CHECK_INT(m.emitted_ms, 1795425066030LL);
    else
      CHECK_STR(m.emitted, "2026-11-23T09:11:06.030300Z");
    json_decref(j);
    free(line);
  }
}

/* format= is one option of every exporter, parsed in one place. */
static void test_option(const char *out) {
  jw_error_t err;
  jw_exporter_t *exp = NULL;
  char spec[1200];
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_check("stdout,format=ecs", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("stderr,format=native", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("syslog+udp://127.0.0.1:514,format=ocsf", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("syslog+tcp://[::1]:6514,format=ecs", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("file:e.jsonl,rotate=64K,format=ocsf,keep=2", "--export", &err), 0);
#ifdef _WIN32
  CHECK_INT(jw_exporter_check("pipe:agent,replay=3,format=ecs", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("pipe-connect:collector,format=ocsf", "--export", &err), 0);
#endif
  CHECK_INT(jw_exporter_check("file:e.jsonl,format=xml", "exporters[2]", &err), JW_EUSAGE);
  CHECK_STR(
      err.text,
      "exporters[2] file:e.jsonl,format=xml: format: expected native, ecs or ocsf, got \"xml\"");
  CHECK_INT(jw_exporter_check("stdout,format=", "--export", &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export stdout,format=: format: expected native, ecs or ocsf, got \"\"");
  CHECK_INT(jw_exporter_check("stdout,format=ecs,format=ocsf", "--export", &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export stdout,format=ecs,format=ocsf: format: given twice");
  /* The exporter's own errors still name the SPEC as written. */
  CHECK_INT(jw_exporter_check("syslog+udp://nohost,format=ecs", "--export", &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export syslog+udp://nohost,format=ecs: expected syslog+udp://HOST:PORT");
  CHECK_INT(jw_exporter_check("stdout,rotate=1M,format=ecs", "--export", &err), JW_EUSAGE);
  snprintf(spec, sizeof(spec), "file:%s/formats/unit-format-open.txt,format=ocsf", out);
  CHECK_INT(jw_exporter_open(spec, &exp, &err), 0);
  CHECK(exp != NULL && exp->format == JW_FORMAT_OCSF);
  CHECK_STR(exp ? exp->spec : NULL, spec);
  jw_exporter_close(exp);
  exp = NULL;
  CHECK_INT(jw_exporter_open("stdout,format=json", &exp, &err), JW_EUSAGE);
  CHECK(exp == NULL);
}

/* Every line of `path` (format f) equals the conversion of the same line of
 * the native file: count, order and bytes. Returns the number of lines. */
static int compare_converted(const char *native_path, const char *path, jw_format_t f) {
  size_t la = 0, lb = 0;
  char *a = jw_test_read_file(native_path, &la), *b = jw_test_read_file(path, &lb);
  char *pa = a, *pb = b;
  int lines = 0, same = 1;
  CHECK(a != NULL && b != NULL);
  while (a && b && *pa) {
    char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n'), *conv = NULL;
    size_t clen = 0;
    if (ea == NULL || eb == NULL) {
      same = 0;
      break;
    }
    if (jw_format_line(f, pa, (size_t)(ea - pa + 1), &conv, &clen) != 0 ||
        clen != (size_t)(eb - pb + 1) || memcmp(conv, pb, clen) != 0) {
      fprintf(stderr, "line %d differs:\n  sink:      %.*s\n  converted: %.*s\n", lines + 1,
              (int)(eb - pb), pb, conv ? (int)clen - 1 : 0, conv ? conv : "");
      same = 0;
    }
    free(conv);
    pa = ea + 1;
    pb = eb + 1;
    lines++;
  }
  CHECK(same);
  CHECK(b == NULL || *pb == '\0'); /* no extra line in the sink */
  free(a);
  free(b);
  return lines;
}

/* The emitter writes each sink's format; queued delivery too, with the gap
 * record in the sink's format. */
static void test_emitter(const char *out, size_t capacity) {
  const char *names[3] = {"native", "ecs", "ocsf"};
  char paths[3][1024], spec[3200];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_error_t err;
  int i, k;
  CHECK_INT(jw_run_info_init(&run, "format-job", JW_TIER_HARDENED), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  for (k = 0; k < 3; k++) {
    jw_exporter_t *exp = NULL;
    snprintf(paths[k], sizeof(paths[k]), "%s/formats/unit-format-emit%s.%s.txt", out,
             capacity ? "-queued" : "", names[k]);
    remove(paths[k]);
    snprintf(spec, sizeof(spec), "file:%s,format=%s", paths[k], names[k]);
    CHECK_INT(jw_exporter_open(spec, &exp, &err), 0);
    if (exp != NULL)
      CHECK_INT(jw_emitter_add(em, exp), 0);
  }
  if (capacity)
    CHECK_INT(jw_emitter_start(em, capacity), 0);
  for (i = 0; i < 20; i++) {
    jw_event_t ev;
    jw_event_init(&ev,
                  i == 0  ? JW_EVENT_JOB_START
                  : i % 3 ? JW_EVENT_PROCESS_START
                          : JW_EVENT_VIOLATION,
                  i == 0  ? "job"
                  : i % 3 ? "child_process"
                          : "image_denied",
                  "observed", NULL, "port", i % 3 ? JW_SEV_INFO : JW_SEV_HIGH);
    ev.has_process = i != 0;
    ev.process.pid = 2000u + (uint32_t)i;
    ev.process.create_time = 133000000000000000ull + (uint64_t)i;
    ev.process.image = "C:\\agent\\child.exe";
    snprintf(ev.message, sizeof(ev.message), "event %d", i + 1);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  jw_emitter_free(em);
  for (k = 1; k < 3; k++)
    CHECK_INT(compare_converted(paths[0], paths[k], (jw_format_t)k), 20);
}

/* A gap record the writer thread renders comes out in the sink's format. */
static int block_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                        jw_error_t *err);
static int fail_first(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                      jw_error_t *err) {
  static int calls;
  (void)self;
  (void)ev;
  (void)err;
  if (calls++ < 3)
    return jw_error_set(err, JW_EIO, 0, "capture", "simulated failure");
  return block_export(self, line, len, ev, err);
}
static char g_capture[65536];
static size_t g_capture_len;
static int block_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                        jw_error_t *err) {
  (void)self;
  (void)ev;
  (void)err;
  if (g_capture_len + len < sizeof(g_capture)) {
    memcpy(g_capture + g_capture_len, line, len);
    g_capture_len += len;
  }
  return 0;
}
static const jw_exporter_vtable_t flaky_vt = {.name = "capture", .export_line = fail_first};

static void test_gap_format(void) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = calloc(1, sizeof(*exp));
  int i, n = 0, gaps = 0;
  char *p;
  CHECK_INT(jw_run_info_init(&run, "gap-job", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  if (exp == NULL || em == NULL)
    return;
  exp->vt = &flaky_vt;
  exp->format = JW_FORMAT_ECS;
  jw__strlcpy(exp->spec, "capture,format=ecs", sizeof(exp->spec));
  CHECK_INT(jw_emitter_add(em, exp), 0);
  CHECK_INT(jw_emitter_start(em, 64), 0);
  for (i = 0; i < 6; i++) {
    jw_event_t ev;
    jw_event_init(&ev, JW_EVENT_NOTICE, "interrupted", "degraded", NULL, "jobwarden", JW_SEV_LOW);
    snprintf(ev.message, sizeof(ev.message), "notice %d", i);
    jw_emit(em, &ev);
  }
  jw_emitter_free(em);
  g_capture[g_capture_len] = '\0';
  /* Every line the sink wrote is ECS: the failed ones became one gap record
   * (and the sink_failed notice), all converted. */
  for (p = g_capture; *p; p = strchr(p, '\n') + 1) {
    json_t *j = json_loadb(p, (size_t)(strchr(p, '\n') - p), 0, NULL);
    CHECK_STR(s_at(j, "ecs.version"), JW_ECS_VERSION);
    CHECK(at(j, "schema_version") == NULL);
    if (s_at(j, "jobwarden.event") &&
        strcmp(s_at(j, "jobwarden.event"), "sandbox.telemetry_gap") == 0) {
      gaps++;
      CHECK_STR(s_at(j, "jobwarden.gap.reason"), "write_failed");
      CHECK_INT(i_at(j, "jobwarden.gap.count"), 3);
      CHECK_STR(s_at(j, "jobwarden.gap.sink"), "capture,format=ecs");
      CHECK_STR(s_at(j, "event.action"), "telemetry_gap");
    }
    json_decref(j);
    n++;
  }
  CHECK_INT(gaps, 1);
  CHECK(n >= 4);
}

static const char *g_out = ".";

static void test_kinds_case(void) {
  test_kinds(g_out);
}

static void test_option_case(void) {
  test_option(g_out);
}

/* The emitter writing each event synchronously. */
static void test_emitter_sync(void) {
  test_emitter(g_out, 0);
}

/* The same through the emitter's queue. */
static void test_emitter_queued(void) {
  test_emitter(g_out, 256);
}

/* Runnable one by one: `test_format DATA OUT --case kinds`. */
static const jw_test_case_t cases[] = {
    {"kinds", test_kinds_case, 30},
    {"refused", test_refused, 30},
    {"nul", test_nul, 30},
    {"tail", test_tail, 30},
    {"meta", test_meta, 30},
    {"option", test_option_case, 30},
    {"emitter_sync", test_emitter_sync, 30},
    {"emitter_queued", test_emitter_queued, 30},
    {"gap_format", test_gap_format, 30},
};

int main(int argc, char **argv) {
  char dir[1024];
  g_out = jw_test_arg(argc, argv, 2, ".");
  snprintf(dir, sizeof(dir), "%s/formats", g_out);
  if (!jw_test_listing(argc, argv))
    MKDIR(dir);
  return jw_test_run_cases("format", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

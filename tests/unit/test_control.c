/* unit: the control channel's lines (src/control_proto.c): requests as
 * the server reads them (every refusal and its sentence), requests as the
 * client writes them, the "control" object of a notice, and replies as
 * `ps` / `kill` show them, hostile strings included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control.h"
#include "harness.h"

static int parse(const char *line, jw_control_request_t *req, char *why) {
  memset(req, 0xAB, sizeof(*req));
  why[0] = '\0';
  return jw_control_parse_request(line, strlen(line), req, why, 300);
}

static void test_parse(void) {
  jw_control_request_t req;
  char why[300];
  static const struct {
    const char *line, *why;
  } bad[] = {
      {"", "the request is not JSON: '[' or '{' expected near end of file (at byte 0)"},
      {"{\"op\":\"ps\"", "the request is not JSON: '}' expected near end of file (at byte 10)"},
      {"[\"ps\"]", "the request is not a JSON object"},
      {"{}", "\"op\" must be \"ps\" or \"kill\""},
      {"{\"op\":1}", "\"op\" must be \"ps\" or \"kill\""},
      {"{\"op\":\"PS\"}", "\"op\" must be \"ps\" or \"kill\""},
      {"{\"op\":\"ps\\u0000x\"}", "the request is not JSON: \\u0000 is not allowed without "
                                  "JSON_ALLOW_NUL near '\"ps\\u0000x\"' (at byte 17)"},
      {"{\"op\":\"ps\",\"pid\":4}", "\"ps\" takes no \"pid\""},
      {"{\"op\":\"kill\",\"pid\":0}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"pid\":-4}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"pid\":4294967296}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"pid\":\"4\"}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"pid\":4.0}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"pid\":null}", "\"pid\" must be an integer from 1 to 4294967295"},
      {"{\"op\":\"kill\",\"all\":true}",
       "unknown key \"all\" (expected \"op\" and, for kill, \"pid\")"},
      {"{\"op\":\"kill\",\"op\":\"ps\"}",
       "the request is not JSON: duplicate object key near '\"op\"' (at byte 17)"},
  };
  size_t i;

  CHECK_INT(parse("{\"op\":\"ps\"}", &req, why), 0);
  CHECK_INT(req.op, JW_CONTROL_PS);
  CHECK_U64(req.pid, 0);
  CHECK_INT(parse(" { \"op\" : \"kill\" }\r", &req, why), 0);
  CHECK_INT(req.op, JW_CONTROL_KILL_JOB);
  CHECK_INT(parse("{\"pid\":4294967295,\"op\":\"kill\"}", &req, why), 0);
  CHECK_INT(req.op, JW_CONTROL_KILL_PID);
  CHECK_U64(req.pid, 4294967295u);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_INT(parse(bad[i].line, &req, why), JW_EUSAGE);
    CHECK_INT(req.op, JW_CONTROL_INVALID);
    CHECK_STR(why, bad[i].why);
  }
  /* A line with a NUL inside is read to its length, not to the NUL. */
  CHECK_INT(jw_control_parse_request("{\"op\":\"ps\"}\0x", 13, &req, why, sizeof(why)), JW_EUSAGE);
}

static void test_format_request(void) {
  jw_control_request_t req;
  char buf[64], why[300];
  memset(&req, 0, sizeof(req));
  req.op = JW_CONTROL_PS;
  CHECK_U64(jw_control_format_request(&req, buf, sizeof(buf)), 12);
  CHECK_STR(buf, "{\"op\":\"ps\"}\n");
  req.op = JW_CONTROL_KILL_JOB;
  CHECK_U64(jw_control_format_request(&req, buf, sizeof(buf)), 14);
  CHECK_STR(buf, "{\"op\":\"kill\"}\n");
  req.op = JW_CONTROL_KILL_PID;
  req.pid = 4294967295u;
  CHECK_U64(jw_control_format_request(&req, buf, sizeof(buf)), 31);
  CHECK_STR(buf, "{\"op\":\"kill\",\"pid\":4294967295}\n");
  CHECK_U64(jw_control_format_request(&req, buf, 31), 0); /* no room for the NUL */
  req.op = JW_CONTROL_INVALID;
  CHECK_U64(jw_control_format_request(&req, buf, sizeof(buf)), 0);
  /* What the client writes, the server reads back. */
  req.op = JW_CONTROL_KILL_PID;
  req.pid = 77;
  jw_control_format_request(&req, buf, sizeof(buf));
  CHECK_INT(jw_control_parse_request(buf, strlen(buf) - 1, &req, why, sizeof(why)), 0);
  CHECK_INT(req.op, JW_CONTROL_KILL_PID);
  CHECK_U64(req.pid, 77);
}

static void test_event_object(void) {
  jw_control_request_t req;
  json_t *o;
  char *s;
  memset(&req, 0, sizeof(req));
  req.op = JW_CONTROL_KILL_PID;
  req.pid = 4242;
  req.requester_pid = 900;
  strcpy(req.requester_sid, "S-1-5-21-1-2-3-1000");
  o = jw_control_event_object(&req, "done", NULL);
  s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  CHECK_STR(s, "{\"op\":\"kill\",\"pid\":4242,\"requester\":{\"pid\":900,\"user\":"
               "\"S-1-5-21-1-2-3-1000\"},\"result\":\"done\"}");
  free(s);
  json_decref(o);
  memset(&req, 0, sizeof(req));
  o = jw_control_event_object(&req, "refused", "identity_unknown");
  s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  CHECK_STR(s, "{\"op\":\"invalid\",\"requester\":{\"pid\":null,\"user\":null},\"result\":"
               "\"refused\",\"reason\":\"identity_unknown\"}");
  free(s);
  json_decref(o);
  CHECK_STR(jw_control_op_name(JW_CONTROL_PS), "ps");
  CHECK_STR(jw_control_op_name(JW_CONTROL_KILL_JOB), "kill");
  CHECK_STR(jw_control_op_name((jw_control_op_t)99), "invalid");
}

static int text(const char *line, jw_control_op_t op, char **out) {
  free(*out);
  *out = NULL;
  return jw_control_reply_text(line, strlen(line), op, out);
}

static void test_reply_text(void) {
  char *t = NULL, big[5000], line[6000];
  size_t i;
  const char *ps =
      "{\"ok\":true,\"op\":\"ps\",\"members\":["
      "{\"pid\":4242,\"entity_id\":\"4242-01DC5C1A2B3C4D5E\",\"executable\":\"C:\\\\agent\\\\a."
      "exe\",\"parent_pid\":100,\"working_set\":12988416,\"start\":\"2026-11-23T09:11:05.123456Z\","
      "\"is_root\":true},"
      /* ESC, BEL, C1 CSI (U+009B), RLO (U+202E), LRI (U+2066), a line end */
      "{\"pid\":77,\"entity_id\":null,\"executable\":\"x\\u001b[2Jy\\u0007\\u009b\\u202egpj."
      "exe\\u2066\\nz\",\"parent_pid\":null,\"working_set\":null,\"start\":null,\"is_root\":false},"
      "{\"pid\":78,\"executable\":null,\"working_set\":1000,\"is_root\":false},"
      /* A U+0000 in an image path (the monitor keeps it as \u0000): the
       * list still reads, and what follows the U+0000 is shown. */
      "{\"pid\":79,\"executable\":\"C:\\\\a\\u0000b.exe\",\"is_root\":false}"
      "],\"truncated\":false,\"run_id\":\"0123\",\"job\":\"j\"}\n";

  CHECK_INT(text(ps, JW_CONTROL_PS, &t), 1);
  CHECK_STR(t, "    PID  WORKING SET  STARTED (UTC)                IMAGE\n"
               "   4242     12.4 MiB  2026-11-23T09:11:05.123456Z  C:\\agent\\a.exe  [root]\n"
               "     77            -  -                            x?[2Jy???gpj.exe??z\n"
               "     78       1000 B  -                            (image unknown)\n"
               "     79            -  -                            C:\\a?b.exe\n");
  CHECK_INT(
      text("{\"ok\":true,\"op\":\"ps\",\"members\":[],\"truncated\":true}", JW_CONTROL_PS, &t), 1);
  CHECK_STR(t, "    PID  WORKING SET  STARTED (UTC)                IMAGE\n"
               "(the list was cut: the reply reached its size limit)\n");
  CHECK_INT(text("{\"ok\":true,\"op\":\"ps\"}", JW_CONTROL_PS, &t), -1);
  CHECK_STR(t, "the reply has no member list");

  /* A 4000-byte image is cut at 400 bytes. */
  for (i = 0; i < 4000; i++)
    big[i] = 'a';
  big[4000] = '\0';
  snprintf(line, sizeof(line),
           "{\"ok\":true,\"members\":[{\"pid\":1,\"executable\":\"%s\",\"working_set\":"
           "2147483648,\"is_root\":true}]}",
           big);
  CHECK_INT(text(line, JW_CONTROL_PS, &t), 1);
  CHECK(t != NULL && strstr(t, "      1      2.0 GiB  -                            ") != NULL);
  /* 51 bytes of columns, 400 of the image, "...", the root mark, "\n" */
  CHECK(t != NULL && strlen(strchr(t, '\n') + 1) == 51 + 400 + 3 + 8 + 1);
  CHECK(t != NULL && strstr(t, "aaa...  [root]\n") != NULL);

  CHECK_INT(text("{\"ok\":true,\"op\":\"kill\",\"pid\":77,\"executable\":\"C:\\\\x\\u202e.exe\","
                 "\"is_root\":false}",
                 JW_CONTROL_KILL_PID, &t),
            1);
  CHECK_STR(t, "terminated pid 77 (C:\\x?.exe)\n");
  CHECK_INT(text("{\"ok\":true,\"op\":\"kill\",\"pid\":79,\"executable\":\"C:\\\\a\\u0000b.exe\","
                 "\"is_root\":false}",
                 JW_CONTROL_KILL_PID, &t),
            1);
  CHECK_STR(t, "terminated pid 79 (C:\\a?b.exe)\n");
  CHECK_INT(text("{\"ok\":true,\"op\":\"kill\",\"pid\":5,\"executable\":null,\"is_root\":true}",
                 JW_CONTROL_KILL_PID, &t),
            1);
  CHECK_STR(t, "terminated pid 5, the root process: the run ends\n");
  CHECK_INT(
      text("{\"ok\":true,\"op\":\"kill\",\"job\":true,\"processes\":3}", JW_CONTROL_KILL_JOB, &t),
      1);
  CHECK_STR(t, "terminated the job (3 process(es) were running)\n");
  CHECK_INT(text("{\"ok\":true,\"op\":\"kill\"}", JW_CONTROL_KILL_PID, &t), -1);
  CHECK_STR(t, "the reply names no pid");

  CHECK_INT(text("{\"ok\":false,\"op\":\"kill\",\"reason\":\"not_member\",\"error\":\"pid 4 is "
                 "not\\u001b a running process\"}",
                 JW_CONTROL_KILL_PID, &t),
            0);
  CHECK_STR(t, "pid 4 is not? a running process");
  CHECK_INT(text("{\"ok\":false}", JW_CONTROL_PS, &t), 0);
  CHECK_STR(t, "(no reason given)");
  CHECK_INT(text("{\"ok\":1}", JW_CONTROL_PS, &t), -1);
  CHECK_STR(t, "the run's reply has no \"ok\"");
  CHECK_INT(text("not json", JW_CONTROL_PS, &t), -1);
  CHECK_STR(t, "the run's reply is not a JSON object");
  CHECK_INT(text("[true]", JW_CONTROL_PS, &t), -1);
  CHECK_STR(t, "the run's reply is not a JSON object");
  free(t);
}

/* Runnable one by one: `test_control DATA OUT --case parse`. */
static const jw_test_case_t cases[] = {
    {"parse", test_parse, 30},
    {"format_request", test_format_request, 30},
    {"event_object", test_event_object, 30},
    {"reply_text", test_reply_text, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("control", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

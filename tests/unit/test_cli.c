/* unit: command-line parsing of jobwarden (what each flag sets, every
 * usage error and its message, exit-status mapping). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "harness.h"
#include "internal.h"
#include "test_util.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int parse(int argc, const char *const *argv, jw_cli_t *cli, jw_error_t *err) {
  memset(err, 0, sizeof(*err));
  return jw_cli_parse(argc, argv, cli, err);
}

static void test_commands(void) {
  jw_cli_t cli;
  jw_error_t err;
  const char *none[] = {"jobwarden"};
  const char *help[] = {"jobwarden", "--help"};
  const char *ver[] = {"jobwarden", "--version"};
  const char *bogus[] = {"jobwarden", "frobnicate"};
  const char *check0[] = {"jobwarden", "check-policy"};
  const char *check1[] = {"jobwarden", "check-policy", "p.json"};
  const char *check2[] = {"jobwarden", "check-policy", "a", "b"};

  CHECK_INT(parse(ARGC(none), none, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "expected a command (see jobwarden --help)");
  CHECK_INT(parse(ARGC(help), help, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_HELP);
  CHECK_INT(parse(ARGC(ver), ver, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_VERSION);
  CHECK_INT(parse(ARGC(bogus), bogus, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "unknown command 'frobnicate' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(check0), check0, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "check-policy: expected exactly one FILE");
  CHECK_INT(parse(ARGC(check2), check2, &cli, &err), JW_EUSAGE);
  CHECK_INT(parse(ARGC(check1), check1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_CHECK_POLICY);
  CHECK_STR(cli.policy_file, "p.json");
  CHECK_CONTAINS(jw_cli_usage(), "jobwarden run [OPTIONS] [--] COMMAND [ARG...]");
}

static void test_run_flags(void) {
  jw_cli_t cli;
  jw_error_t err;
  jw_policy_t eff;
  const char *a1[] = {"jobwarden",
                      "run",
                      "--tier",
                      "lockdown",
                      "--export",
                      "file:x.jsonl",
                      "--export=stdout",
                      "--job-memory=512M",
                      "--active-processes",
                      "unlimited",
                      "--no-kill-on-close",
                      "--",
                      "agent.exe",
                      "--tier",
                      "x"};
  const char *a2[] = {"jobwarden", "run", "agent.exe", "--job-memory", "1G"};
  const char *a3[] = {"jobwarden", "run", "--tier", "lockdown"};
  const char *a4[] = {"jobwarden", "run", "--bogus", "x.exe"};
  const char *a5[] = {"jobwarden", "run", "--kill-on-close=yes", "x.exe"};
  const char *a6[] = {"jobwarden", "run", "--job-memory=abc", "x.exe"};
  const char *a7[] = {"jobwarden", "run", "--export"};
  const char *a8[] = {"jobwarden", "run", "--process-memory"};
  const char *a9[] = {"jobwarden", "run", "--tier", "paranoid", "x.exe"};

  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_RUN);
  CHECK_INT(cli.n_exports, 2);
  CHECK_STR(cli.exports[0], "file:x.jsonl");
  CHECK_STR(cli.exports[1], "stdout");
  CHECK_INT(cli.command_argc, 3);
  CHECK_STR(cli.command[0], "agent.exe");
  CHECK_STR(cli.command[1], "--tier"); /* after "--": the program's own arguments */
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_INT(eff.tier, JW_TIER_LOCKDOWN);
  CHECK_U64(eff.job_memory, 512ull << 20);
  CHECK_INT(eff.active_processes, 0);           /* explicit "unlimited" beats lockdown's 1 */
  CHECK_INT(eff.kill_on_close, 0);              /* explicit --no- beats the tier */
  CHECK_INT(eff.die_on_unhandled_exception, 1); /* from the tier */
  CHECK_INT(eff.ui_restrictions, JW_UI_ALL);

  /* The first word that is not an option starts the command. */
  CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
  CHECK_INT(cli.command_argc, 3);
  CHECK_U64(cli.policy.job_memory, 0);

  CHECK_INT(parse(ARGC(a3), a3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "run: expected a COMMAND to run (see jobwarden --help)");
  CHECK_INT(parse(ARGC(a4), a4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "run: unknown option '--bogus' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(a5), a5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--kill-on-close: takes no value");
  CHECK_INT(parse(ARGC(a6), a6, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--job-memory");
  CHECK_STR(err.text, "--job-memory: expected a size like \"512M\", got \"abc\"");
  CHECK_INT(parse(ARGC(a7), a7, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export: expected a SPEC (" JW_TEST_KINDS ")");
  CHECK_INT(parse(ARGC(a8), a8, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--process-memory: expected a value");
  CHECK_INT(parse(ARGC(a9), a9, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--tier");
}

static void test_too_many_exports(void) {
  const char *argv[2 + 2 * 17 + 1];
  jw_cli_t cli;
  jw_error_t err;
  int i, n = 0;
  argv[n++] = "jobwarden";
  argv[n++] = "run";
  for (i = 0; i < 17; i++) {
    argv[n++] = "--export";
    argv[n++] = "stdout";
  }
  argv[n++] = "x.exe";
  CHECK_INT(parse(n, argv, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export: at most 16 exporters");
}

static void test_policy_file_then_flags(const char *dir) {
  char path[1024];
  FILE *f;
  jw_cli_t cli;
  jw_error_t err;
  jw_policy_t eff;
  const char *argv[] = {"jobwarden", "run", "--process-memory", "64M", "--policy", path, "x.exe"};
  const char *bad[] = {"jobwarden", "run", "--policy", "/no/such/policy.json", "x.exe"};

  snprintf(path, sizeof(path), "%s/cli-policy.json", dir);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f == NULL)
    return;
  fputs(
      "{\"tier\": \"hardened\", \"limits\": {\"process_memory\": \"1G\", \"job_memory\": \"2G\"}}",
      f);
  fclose(f);
  /* Flags win over the file whatever their order on the line. */
  CHECK_INT(parse(ARGC(argv), argv, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_INT(eff.tier, JW_TIER_HARDENED);
  CHECK_U64(eff.process_memory, 64ull << 20);
  CHECK_U64(eff.job_memory, 2ull << 30);
  CHECK_STR(cli.policy_file, path);
  remove(path);

  CHECK(parse(ARGC(bad), bad, &cli, &err) != 0);
  CHECK_CONTAINS(err.text, "/no/such/policy.json");
}

static void test_tail_and_probe(void) {
  jw_cli_t cli;
  jw_error_t err;
  char long_name[260];
  const char *t1[] = {"jobwarden", "tail", "agent-1"};
  const char *t2[] = {"jobwarden", "tail", "--raw", "\\\\.\\pipe\\agent-2"};
  const char *t3[] = {"jobwarden", "tail"};
  const char *t4[] = {"jobwarden", "tail", "a", "b"};
  const char *t5[] = {"jobwarden", "tail", "a\\b"};
  const char *t6[] = {"jobwarden", "tail", "--follow", "a"};
  const char *t7[] = {"jobwarden", "tail", long_name};
  const char *t8[] = {"jobwarden", "tail", "a\x01"};
  const char *p1[] = {"jobwarden", "probe"};
  const char *p2[] = {"jobwarden", "probe", "--tier", "hardened", "--json", "--job-memory", "64M"};
  const char *p3[] = {"jobwarden", "probe", "x.exe"};
  const char *p4[] = {"jobwarden", "probe", "--export", "stdout"};
  const char *p5[] = {"jobwarden", "probe", "--active-processes", "3"};

  CHECK_INT(parse(ARGC(t1), t1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_TAIL);
  CHECK_STR(cli.pipe_name, "agent-1");
  CHECK_INT(cli.raw, 0);
  CHECK_INT(parse(ARGC(t2), t2, &cli, &err), 0);
  CHECK_STR(cli.pipe_name, "agent-2"); /* the \\.\pipe\ prefix is accepted */
  CHECK_INT(cli.raw, 1);
  CHECK_INT(parse(ARGC(t3), t3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: expected the pipe NAME of a running 'run --export pipe:NAME'");
  CHECK_INT(parse(ARGC(t4), t4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: expected one pipe NAME, got 'b' too");
  CHECK_INT(parse(ARGC(t5), t5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: pipe NAME must not contain '\\', '/' or control characters (byte 1 "
                      "is 0x5c)");
  CHECK_INT(parse(ARGC(t6), t6, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: unknown option '--follow' (see jobwarden --help)");
  memset(long_name, 'n', 201);
  long_name[201] = '\0';
  CHECK_INT(parse(ARGC(t7), t7, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: pipe NAME is longer than 200 bytes");
  long_name[200] = '\0';
  CHECK_INT(parse(ARGC(t7), t7, &cli, &err), 0);
  CHECK_INT(parse(ARGC(t8), t8, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "tail: pipe NAME must not contain '\\', '/' or control characters (byte 1 "
                      "is 0x01)");

  CHECK_INT(parse(ARGC(p1), p1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_PROBE);
  CHECK_INT(cli.policy.tier, JW_TIER_LOCKDOWN); /* the default probe policy */
  CHECK_INT(cli.json, 0);
  CHECK_INT(parse(ARGC(p2), p2, &cli, &err), 0);
  CHECK_INT(cli.policy.tier, JW_TIER_HARDENED);
  CHECK_INT(cli.json, 1);
  CHECK_U64(cli.policy.job_memory, 64u * 1024 * 1024);
  CHECK_INT(parse(ARGC(p3), p3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "probe: unexpected argument 'x.exe' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(p4), p4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "probe: unknown option '--export' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(p5), p5, &cli, &err), 0);
  CHECK_INT(cli.policy.tier, JW_TIER_LOCKDOWN); /* limits alone keep the lockdown base */
  CHECK_U64(cli.policy.active_processes, 3);
}

/* `run --control`, `ps` and `kill`: what each sets, every usage error. */
static void test_control_commands(void) {
  jw_cli_t cli;
  jw_error_t err;
  const char *r1[] = {"jobwarden", "run", "--control", "agent", "x.exe"};
  const char *r2[] = {"jobwarden", "run", "--control=\\\\.\\pipe\\agent", "--", "x.exe"};
  const char *r3[] = {"jobwarden", "run", "--control", "a/b", "x.exe"};
  const char *r4[] = {"jobwarden", "run", "--control", "a", "--control", "b", "x.exe"};
  const char *r5[] = {"jobwarden", "run", "--control="};
  const char *r6[] = {"jobwarden", "probe", "--control", "a"};
  const char *s1[] = {"jobwarden", "ps", "agent"};
  const char *s2[] = {"jobwarden", "ps", "--json", "agent"};
  const char *s3[] = {"jobwarden", "ps"};
  const char *s4[] = {"jobwarden", "ps", "a", "b"};
  const char *s5[] = {"jobwarden", "ps", "agent", "--pid", "4"};
  const char *k1[] = {"jobwarden", "kill", "agent"};
  const char *k2[] = {"jobwarden", "kill", "agent", "--pid", "4242"};
  const char *k3[] = {"jobwarden", "kill", "--pid=4294967295", "agent"};
  const char *k4[] = {"jobwarden", "kill", "agent", "--pid", "0"};
  const char *k5[] = {"jobwarden", "kill", "agent", "--pid", "4294967296"};
  const char *k6[] = {"jobwarden", "kill", "agent", "--pid", "-1"};
  const char *k7[] = {"jobwarden", "kill", "agent", "--pid"};
  const char *k8[] = {"jobwarden", "kill", "agent", "--pid", "1", "--pid", "2"};
  const char *k9[] = {"jobwarden", "kill", "agent", "--json"};
  const char *k10[] = {"jobwarden", "kill", "--pid", "12x", "agent"};
  const char *k11[] = {"jobwarden", "kill", "a\x1b"};

  CHECK_INT(parse(ARGC(r1), r1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_RUN);
  CHECK_STR(cli.control_name, "agent");
  CHECK_INT(cli.command_argc, 1);
  CHECK_STR(cli.command[0], "x.exe");
  CHECK_INT(parse(ARGC(r2), r2, &cli, &err), 0);
  CHECK_STR(cli.control_name, "agent"); /* the \\.\pipe\ prefix is accepted */
  CHECK_INT(parse(ARGC(r3), r3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--control: pipe NAME must not contain '\\', '/' or control characters "
                      "(byte 1 is 0x2f)");
  CHECK_INT(parse(ARGC(r4), r4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--control: given twice");
  CHECK_INT(parse(ARGC(r5), r5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--control: expected a NAME");
  CHECK_INT(parse(ARGC(r6), r6, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "probe: unknown option '--control' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(k1), k1, &cli, &err), 0);
  CHECK(cli.control_name == NULL);

  CHECK_INT(parse(ARGC(s1), s1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_PS);
  CHECK_STR(cli.pipe_name, "agent");
  CHECK_INT(cli.json, 0);
  CHECK_INT(parse(ARGC(s2), s2, &cli, &err), 0);
  CHECK_INT(cli.json, 1);
  CHECK_INT(parse(ARGC(s3), s3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "ps: expected the NAME of a running 'run --control NAME'");
  CHECK_INT(parse(ARGC(s4), s4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "ps: expected one NAME, got 'b' too");
  CHECK_INT(parse(ARGC(s5), s5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "ps: unknown option '--pid' (see jobwarden --help)");

  CHECK_INT(parse(ARGC(k1), k1, &cli, &err), 0);
  CHECK_INT(cli.cmd, JW_CMD_KILL);
  CHECK_STR(cli.pipe_name, "agent");
  CHECK_INT(cli.has_pid, 0);
  CHECK_INT(parse(ARGC(k2), k2, &cli, &err), 0);
  CHECK_INT(cli.has_pid, 1);
  CHECK_U64(cli.pid, 4242);
  CHECK_INT(parse(ARGC(k3), k3, &cli, &err), 0);
  CHECK_U64(cli.pid, 4294967295u);
  CHECK_STR(cli.pipe_name, "agent");
  CHECK_INT(parse(ARGC(k4), k4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: expected a process id from 1 to 4294967295, got '0'");
  CHECK_INT(parse(ARGC(k5), k5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: expected a process id from 1 to 4294967295, got "
                      "'4294967296'");
  CHECK_INT(parse(ARGC(k6), k6, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: expected a process id from 1 to 4294967295, got '-1'");
  CHECK_INT(parse(ARGC(k7), k7, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: expected a process id from 1 to 4294967295, got ''");
  CHECK_INT(parse(ARGC(k8), k8, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: given twice");
  CHECK_INT(parse(ARGC(k9), k9, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: unknown option '--json' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(k10), k10, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: --pid: expected a process id from 1 to 4294967295, got '12x'");
  CHECK_INT(parse(ARGC(k11), k11, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "kill: pipe NAME must not contain '\\', '/' or control characters (byte 1 "
                      "is 0x1b)");

  CHECK_CONTAINS(jw_cli_usage(), "  jobwarden ps NAME [--json]\n");
  CHECK_CONTAINS(jw_cli_usage(), "  jobwarden kill NAME [--pid PID]\n");
  CHECK_CONTAINS(jw_cli_usage(), "ps, kill: 0 done, 1 the run refused or could not do it, 3 no "
                                 "such\ncontrol pipe, 125 usage or no valid reply.");
  CHECK_INT(JW_EXIT_CONTROL_REFUSED, 1);
  CHECK_INT(JW_EXIT_CONTROL_NO_PIPE, 3);
}

static void test_tail_format(void) {
  char out[1024], big[3000], line[4000];
  const char *v = "{\"event\":\"sandbox.violation\",\"@timestamp\":\"2026-11-23T09:11:10.123457Z\","
                  "\"severity\":\"high\",\"rule\":\"abnormal_exit\",\"process\":{\"pid\":4242,"
                  "\"executable\":\"C:\\\\agent\\\\agent.exe\"},\"message\":\"it crashed\"}\n";
  const char *end = "{\"event\":\"sandbox.job_end\",\"@timestamp\":\"T\",\"severity\":\"info\","
                    "\"message\":\"done\"}";
  /* ESC, BEL, C1 CSI (U+009B), RLO (U+202E), LRI (U+2066) in the image;
   * a line separator (U+2028) and a paragraph separator (U+2029) in the
   * message */
  const char *hostile = "{\"event\":\"sandbox.process_start\",\"@timestamp\":\"T\",\"severity\":"
                        "\"info\",\"rule\":\"child_process\",\"process\":{\"pid\":7,\"executable\":"
                        "\"a\\u001b[2Jb\\u0007c\\u009bd\\u202ee\\u2066f\u00e9\"},\"message\":"
                        "\"m\\nx\\u2028y\\u2029z\"}";
  CHECK_INT(jw_tail_format(v, strlen(v), out, sizeof(out)), 0);
  CHECK_STR(out, "2026-11-23T09:11:10.123457Z high     abnormal_exit          pid=4242   "
                 "C:\\agent\\agent.exe  it crashed\n");
  CHECK_INT(jw_tail_format(end, strlen(end), out, sizeof(out)), 1);
  CHECK_STR(out, "T info     job_end                pid=-      -  done\n");
  CHECK_INT(jw_tail_format(hostile, strlen(hostile), out, sizeof(out)), 0);
  CHECK_STR(out, "T info     child_process          pid=7      a?[2Jb?c?d?e?f\u00e9  m?x?y?z\n");
  /* A U+0000 in a string (the monitor keeps one in an image path as
   * \u0000): the event is shown, with what follows the U+0000. */
  {
    const char *nul = "{\"@timestamp\":\"T\",\"event\":\"sandbox.process_start\",\"severity\":"
                      "\"info\",\"rule\":\"child_process\",\"process\":{\"pid\":8,\"executable\":"
                      "\"C:\\\\a\\u0000b.exe\"},\"message\":\"started C:\\\\a\\u0000b.exe\"}";
    CHECK_INT(jw_tail_format(nul, strlen(nul), out, sizeof(out)), 0);
    CHECK_STR(out,
              "T info     child_process          pid=8      C:\\a?b.exe  started C:\\a?b.exe\n");
  }
  CHECK_INT(jw_tail_format("{\"a\":", 5, out, sizeof(out)), -1);
  CHECK(strncmp(out, "(a line of 5 bytes that is not a JSON event: ", 45) == 0);
  CHECK_INT(jw_tail_format("[1]", 3, out, sizeof(out)), -1);
  CHECK_STR(out, "(a line of 3 bytes that is not a JSON event: not an object)\n");
  /* A malformed line's own bytes (quoted by the JSON parser's message)
   * reach the terminal as '?' (found by unit.fuzz). */
  CHECK_INT(jw_tail_format("{\"a\"\x1b[2J", 9, out, sizeof(out)), -1);
  CHECK(strchr(out, 0x1b) == NULL);
  CHECK(strstr(out, "near '?'") != NULL);
  CHECK_INT(jw_tail_format("{\"a\"\xc2\x9b", 6, out, sizeof(out)), -1);
  CHECK(strstr(out, "\xc2") == NULL && strstr(out, "\x9b") == NULL);
  /* a 2000-byte message of 2-byte characters is cut on a character boundary */
  {
    size_t i, n = 0;
    for (i = 0; i < 1000; i++) {
      big[n++] = (char)0xC3;
      big[n++] = (char)0xA9;
    }
    big[n] = '\0';
    snprintf(line, sizeof(line), "{\"event\":\"sandbox.notice\",\"message\":\"%s\"}", big);
    CHECK_INT(jw_tail_format(line, strlen(line), out, sizeof(out)), 0);
    CHECK(strstr(out, "...\n") != NULL);
    CHECK_INT((int)strlen(out), 48 + 400 + 4); /* prefix, 200 characters, "...\n" */
    CHECK((unsigned char)strstr(out, "...")[-1] == 0xA9);
  }
}

static void test_exit_status(void) {
  CHECK_INT(jw_cli_exit_status(0), 0);
  CHECK_INT(jw_cli_exit_status(JW_ENOENT), 127);
  CHECK_INT(jw_cli_exit_status(JW_ENOEXEC), 126);
  CHECK_INT(jw_cli_exit_status(JW_EUSAGE), 125);
  CHECK_INT(jw_cli_exit_status(JW_EPOLICY), 125);
  CHECK_INT(jw_cli_exit_status(JW_ESYS), 125);
}

/* The monitor-rule flags: what each sets, image flags adding to the file's
 * lists, and their errors. */
static void test_rule_flags(const char *dir) {
  jw_cli_t cli;
  jw_error_t err;
  jw_policy_t eff;
  char path[1024];
  FILE *f;
  const char *a1[] = {"jobwarden",
                      "run",
                      "--timeout",
                      "30s",
                      "--timeout-action=kill_process",
                      "--max-total-processes",
                      "50",
                      "--total-processes-action",
                      "report",
                      "--deny-image",
                      "cmd.exe",
                      "--deny-image=powershell",
                      "--allow-image",
                      "python.exe",
                      "--image-action",
                      "kill_job",
                      "--active-processes-action",
                      "kill_process",
                      "agent.exe"};
  const char *a2[] = {"jobwarden", "run", "--timeout", "5m", "agent.exe"};
  const char *a3[] = {"jobwarden", "run", "--policy", path, "--deny-image", "wscript", "x.exe"};
  const char *b1[] = {"jobwarden", "run", "--timeout", "30", "x.exe"};
  const char *b2[] = {"jobwarden", "run", "--timeout-action", "kill", "x.exe"};
  const char *b3[] = {"jobwarden", "run", "--deny-image", "C:\\Windows\\cmd.exe", "x.exe"};
  const char *b4[] = {"jobwarden", "run", "--max-total-processes", "0", "x.exe"};
  const char *b5[] = {"jobwarden", "run", "--deny-image"};
  const char *b6[] = {"jobwarden", "run", "--image-action=", "x.exe"};
  const char *many[2 + 2 * 33 + 1];
  char names[33][16];
  int i, n = 0;

  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_INT(cli.command_argc, 1);
  CHECK_U64(cli.policy.timeout_ms, 30000);
  CHECK_INT(cli.policy.timeout_action, JW_ACTION_KILL_PROCESS);
  CHECK_U64(cli.policy.max_total_processes, 50);
  CHECK_INT(cli.policy.total_processes_action, JW_ACTION_REPORT);
  CHECK_INT(cli.policy.n_deny_images, 2);
  CHECK_STR(cli.policy.deny_images[0], "cmd.exe");
  CHECK_STR(cli.policy.deny_images[1], "powershell");
  CHECK_INT(cli.policy.n_allow_images, 1);
  CHECK_STR(cli.policy.allow_images[0], "python.exe");
  CHECK_INT(cli.policy.image_action, JW_ACTION_KILL_JOB);
  CHECK_INT(cli.policy.active_processes_action, JW_ACTION_KILL_PROCESS);

  /* Actions not given take the rule's default once resolved. */
  CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_U64(eff.timeout_ms, 300000);
  CHECK_INT(eff.timeout_action, JW_ACTION_KILL_JOB);
  CHECK_INT(eff.image_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(eff.total_processes_action, JW_ACTION_KILL_PROCESS);
  CHECK_INT(eff.active_processes_action, JW_ACTION_REPORT);

  /* --deny-image adds to the policy file's list (a flag cannot silently
   * drop a name the file denies). */
  snprintf(path, sizeof(path), "%s/cli-rules-policy.json", dir);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fputs("{\"rules\": {\"images\": {\"deny\": [\"cmd.exe\"], \"action\": \"report\"}}}", f);
    fclose(f);
    CHECK_INT(parse(ARGC(a3), a3, &cli, &err), 0);
    CHECK_INT(cli.policy.n_deny_images, 2);
    CHECK_STR(cli.policy.deny_images[0], "cmd.exe");
    CHECK_STR(cli.policy.deny_images[1], "wscript");
    CHECK_INT(cli.policy.image_action, JW_ACTION_REPORT);
    remove(path);
  }

  CHECK_INT(parse(ARGC(b1), b1, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--timeout");
  CHECK_STR(err.text, "--timeout: expected a duration with a unit, like \"500ms\", \"30s\", \"5m\" "
                      "or \"2h\", got \"30\"");
  CHECK_INT(parse(ARGC(b2), b2, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--timeout-action");
  CHECK_STR(err.text, "--timeout-action: expected one of \"report\", \"kill_process\", "
                      "\"kill_job\", got \"kill\"");
  CHECK_INT(parse(ARGC(b3), b3, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--deny-image");
  CHECK_STR(err.text, "--deny-image: expected a file name like \"cmd.exe\" without a directory or "
                      "drive, got \"C:\\\\Windows\\\\cmd.exe\"");
  CHECK_INT(parse(ARGC(b4), b4, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--max-total-processes: expected an integer from 1 to 4294967295 or "
                      "\"unlimited\", got \"0\"");
  CHECK_INT(parse(ARGC(b5), b5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--deny-image: expected a value");
  CHECK_INT(parse(ARGC(b6), b6, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--image-action: expected one of \"report\", \"kill_process\", "
                      "\"kill_job\", got \"\"");

  /* 32 names per list from flags; the 33rd is an error that names it. */
  many[n++] = "jobwarden";
  many[n++] = "run";
  for (i = 0; i < 33; i++) {
    snprintf(names[i], sizeof(names[i]), "x%d.exe", i);
    many[n++] = "--deny-image";
    many[n++] = names[i];
  }
  many[n++] = "x.exe";
  CHECK_INT(parse(n, many, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--deny-image: expected at most 32 file names, got one more: \"x32.exe\"");
  CHECK_INT(parse(n - 3, many, &cli, &err), JW_EUSAGE); /* no command after 32 */
  many[n - 3] = "x.exe";
  CHECK_INT(parse(n - 2, many, &cli, &err), 0);
  CHECK_INT(cli.policy.n_deny_images, 32);

  /* The usage text lists the flags and exit status 124. */
  CHECK_CONTAINS(jw_cli_usage(), "--deny-image NAME");
  CHECK_CONTAINS(jw_cli_usage(), "--timeout DUR|unlimited");
  CHECK_CONTAINS(jw_cli_usage(), "124 a monitor rule ended the program");
}

/* --rule-tags RULE=TAG[,TAG...] (docs/policy.md): onto the policy keys
 * <rule>_tags, in order, adding to the policy file's tags; exact errors
 * for a missing '=', an unknown rule, a bad tag and one tag too many. */
static void test_rule_tags_flag(const char *dir) {
  jw_cli_t cli;
  jw_error_t err;
  char path[1024];
  FILE *f;
  const char *a1[] = {"jobwarden",
                      "run",
                      "--rule-tags",
                      "images=attack.t1059,team.x",
                      "--rule-tags=escape=sev_page",
                      "--rule-tags",
                      "timeout=t1",
                      "--rule-tags",
                      "images=z9",
                      "x.exe"};
  const char *a2[] = {"jobwarden", "run", "--policy", path, "--rule-tags", "images=b.b", "x.exe"};
  const char *a3[] = {
      "jobwarden",          "run",  "--rule-tags", "total_processes=a", "--rule-tags",
      "active_processes=b", "x.exe"};
  const char *b1[] = {"jobwarden", "run", "--rule-tags", "images", "x.exe"};
  const char *b2[] = {"jobwarden", "run", "--rule-tags", "coalesce=a.b", "x.exe"};
  const char *b3[] = {"jobwarden", "run", "--rule-tags", "images=Team-X", "x.exe"};
  const char *b4[] = {"jobwarden", "run", "--rule-tags", "images=a,b,c,d", "x.exe"};
  const char *b5[] = {"jobwarden", "run", "--rule-tags", "images=a,,b", "x.exe"};
  const char *b6[] = {"jobwarden", "run", "--rule-tags", "images=", "x.exe"};
  const char *b7[] = {"jobwarden", "run", "--rule-tags"};
  const char *b8[] = {"jobwarden",   "run",        "--rule-tags", "images=a,b",
                      "--rule-tags", "images=c,d", "x.exe"};
  const char *b9[] = {"jobwarden", "run", "--rule-tags", "=a", "x.exe"};

  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_INT(cli.command_argc, 1);
  CHECK_STR(cli.command[0], "x.exe");
  CHECK_U64(cli.policy.set & JW_SET_RULE_TAGS, JW_SET_RULE_TAGS);
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_IMAGES], 3);
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_IMAGES][0], "attack.t1059");
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_IMAGES][1], "team.x");
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_IMAGES][2], "z9");
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_ESCAPE], 1);
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_ESCAPE][0], "sev_page");
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_TIMEOUT], 1);
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_TIMEOUT][0], "t1");
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_TOTAL_PROCESSES], 0);
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_ACTIVE_PROCESSES], 0);
  CHECK_INT(parse(ARGC(a3), a3, &cli, &err), 0);
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_TOTAL_PROCESSES], 1);
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_TOTAL_PROCESSES][0], "a");
  CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_ACTIVE_PROCESSES], 1);
  CHECK_STR(cli.policy.rule_tags[JW_TAGGED_ACTIVE_PROCESSES][0], "b");

  /* The flag adds to the file's tags, like --deny-image to its list. */
  snprintf(path, sizeof(path), "%s/cli-rule-tags-policy.json", dir);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fputs("{\"rules\": {\"images\": {\"tags\": [\"a.a\"]}}}", f);
    fclose(f);
    CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
    CHECK_INT(cli.policy.n_rule_tags[JW_TAGGED_IMAGES], 2);
    CHECK_STR(cli.policy.rule_tags[JW_TAGGED_IMAGES][0], "a.a");
    CHECK_STR(cli.policy.rule_tags[JW_TAGGED_IMAGES][1], "b.b");
    remove(path);
  }

  CHECK_INT(parse(ARGC(b1), b1, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.where, "--rule-tags");
  CHECK_STR(err.text, "--rule-tags: expected RULE=TAG[,TAG...] (RULE: timeout, total_processes, "
                      "images, active_processes, escape), got 'images'");
  CHECK_INT(parse(ARGC(b2), b2, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.where, "--rule-tags");
  CHECK_STR(err.text, "--rule-tags: unknown rule 'coalesce' (rules that take tags: timeout, "
                      "total_processes, images, active_processes, escape)");
  CHECK_INT(parse(ARGC(b9), b9, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--rule-tags: unknown rule '' (rules that take tags: timeout, "
                      "total_processes, images, active_processes, escape)");
  CHECK_INT(parse(ARGC(b3), b3, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--rule-tags images");
  CHECK_STR(err.text, "--rule-tags images: expected a tag of 1 to 63 characters from [a-z0-9_.], "
                      "starting with a letter, like \"attack.t1059\", got \"Team-X\"");
  CHECK_INT(parse(ARGC(b4), b4, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--rule-tags images");
  CHECK_STR(err.text, "--rule-tags images: expected at most 3 tags per rule, got one more: d");
  CHECK_INT(parse(ARGC(b8), b8, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--rule-tags images: expected at most 3 tags per rule, got one more: d");
  CHECK_INT(parse(ARGC(b5), b5, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--rule-tags images: expected a tag of 1 to 63 characters from [a-z0-9_.], "
                      "starting with a letter, like \"attack.t1059\", got \"\"");
  CHECK_INT(parse(ARGC(b6), b6, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--rule-tags images: expected a tag of 1 to 63 characters from [a-z0-9_.], "
                      "starting with a letter, like \"attack.t1059\", got \"\"");
  CHECK_INT(parse(ARGC(b7), b7, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--rule-tags: expected RULE=TAG[,TAG...] (RULE: timeout, total_processes, "
                      "images, active_processes, escape), got ''");
  CHECK_CONTAINS(jw_cli_usage(), "--rule-tags RULE=TAG[,TAG...]");
}

/* --image-hash-cap SIZE: the policy's rules.images.hash_cap. */
static void test_image_hash_cap_flag(void) {
  jw_cli_t cli;
  jw_error_t err;
  const char *a1[] = {"jobwarden", "run", "--image-hash-cap", "64K", "x.exe"};
  const char *b1[] = {"jobwarden", "run", "--image-hash-cap=unlimited", "x.exe"};
  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_U64(cli.policy.image_hash_cap, 65536);
  CHECK_U64(cli.policy.set & JW_SET_IMAGE_HASH_CAP, JW_SET_IMAGE_HASH_CAP);
  CHECK_INT(parse(ARGC(b1), b1, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--image-hash-cap");
  CHECK_STR(err.text, "--image-hash-cap: expected a size of at least 1 byte like \"256M\" (there "
                      "is no \"unlimited\" cap), got \"unlimited\"");
  CHECK_CONTAINS(jw_cli_usage(), "--image-hash-cap SIZE");
}

/* --token and --no-kill-on-close (docs/policy.md): the token mode, its
 * refusal, and the one way to run without kill-on-close. */
static void test_token_flags(void) {
  jw_cli_t cli;
  jw_error_t err;
  jw_policy_t eff;
  const char *a1[] = {"jobwarden", "run", "--token", "low_integrity", "x"};
  const char *a2[] = {"jobwarden", "run", "--tier", "lockdown", "--token=inherit", "x"};
  const char *a3[] = {"jobwarden", "run", "--no-kill-on-close", "x"};
  const char *a4[] = {"jobwarden", "run", "x"};
  const char *a5[] = {"jobwarden", "probe", "--token", "restricted"};
  const char *b1[] = {"jobwarden", "run", "--token", "system", "x"};
  const char *b2[] = {"jobwarden", "run", "--token"};

  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_INT(cli.policy.token, JW_TOKEN_LOW_INTEGRITY);
  CHECK_U64(cli.policy.set, JW_SET_TOKEN);
  CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_INT(eff.token, JW_TOKEN_INHERIT); /* the flag beats lockdown's restricted_low */
  CHECK_INT(parse(ARGC(a3), a3, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_INT(eff.kill_on_close, 0);
  CHECK_U64(cli.policy.set, JW_SET_KILL_ON_CLOSE);
  CHECK_INT(parse(ARGC(a4), a4, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &eff);
  CHECK_INT(eff.kill_on_close, 1); /* on in tier none too */
  CHECK_INT(eff.token, JW_TOKEN_INHERIT);
  CHECK_INT(parse(ARGC(a5), a5, &cli, &err), 0);
  CHECK_INT(cli.policy.token, JW_TOKEN_RESTRICTED);

  CHECK_INT(parse(ARGC(b1), b1, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--token");
  CHECK_STR(err.text, "--token: expected one of \"inherit\", \"restricted\", \"low_integrity\", "
                      "\"restricted_low\", got \"system\"");
  CHECK_INT(parse(ARGC(b2), b2, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--token: expected a value");
  CHECK_CONTAINS(jw_cli_usage(), "--token MODE");
}

/* --notification-margin: the warning margin below the job limits. */
static void test_notification_margin_flag(void) {
  jw_cli_t cli;
  jw_error_t err;
  const char *a1[] = {"jobwarden", "run", "--job-memory", "1G", "--notification-margin", "5%", "x"};
  const char *a2[] = {"jobwarden", "run", "--notification-margin=off", "x"};
  const char *a3[] = {"jobwarden", "probe", "--notification-margin", "12.5%"};
  const char *b1[] = {"jobwarden", "run", "--notification-margin", "100%", "x"};
  const char *b2[] = {"jobwarden", "run", "--notification-margin", "10", "x"};
  const char *b3[] = {"jobwarden", "run", "--notification-margin"};

  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_U64(cli.policy.notification_margin_bp, 500);
  CHECK_U64(cli.policy.set, JW_SET_JOB_MEMORY | JW_SET_NOTIFY_MARGIN);
  CHECK_STR(cli.command[0], "x");
  CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
  CHECK_U64(cli.policy.notification_margin_bp, 0);
  CHECK_U64(cli.policy.set, JW_SET_NOTIFY_MARGIN);
  CHECK_INT(parse(ARGC(a3), a3, &cli, &err), 0);
  CHECK_U64(cli.policy.notification_margin_bp, 1250);

  CHECK_INT(parse(ARGC(b1), b1, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.where, "--notification-margin");
  CHECK_STR(err.text, "--notification-margin: expected a percentage below 100%, like \"10%\", "
                      "got \"100%\"");
  CHECK_INT(parse(ARGC(b2), b2, &cli, &err), JW_EPOLICY);
  CHECK_STR(err.text, "--notification-margin: expected a percentage like \"10%\" or \"2.5%\" "
                      "(at most two decimals), or \"off\", got \"10\"");
  CHECK_INT(parse(ARGC(b3), b3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--notification-margin: expected a value");
  CHECK_CONTAINS(jw_cli_usage(), "--notification-margin PCT|off");
}

/* `run --agent-output`: taken as given (checked against the sinks by the
 * run), every usage error. */
static void test_agent_output(void) {
  jw_cli_t cli;
  jw_error_t err;
  const char *a1[] = {"jobwarden", "run", "--export", "stdout", "--agent-output", "null", "x.exe"};
  const char *a2[] = {"jobwarden", "run", "--agent-output=file:C:\\out.txt", "--", "x.exe"};
  const char *a3[] = {"jobwarden",      "run",    "--agent-output", "null",
                      "--agent-output", "stderr", "x.exe"};
  const char *a4[] = {"jobwarden", "run", "--agent-output="};
  const char *a5[] = {"jobwarden", "probe", "--agent-output", "null"};
  const char *a6[] = {"jobwarden", "run", "x.exe"};
  CHECK_INT(parse(ARGC(a1), a1, &cli, &err), 0);
  CHECK_STR(cli.agent_output, "null");
  CHECK_STR(cli.command[0], "x.exe");
  CHECK_INT(parse(ARGC(a2), a2, &cli, &err), 0);
  CHECK_STR(cli.agent_output, "file:C:\\out.txt");
  CHECK_INT(parse(ARGC(a3), a3, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--agent-output: given twice");
  CHECK_INT(parse(ARGC(a4), a4, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--agent-output: expected auto, inherit, stdout, stderr, null or file:PATH");
  CHECK_INT(parse(ARGC(a5), a5, &cli, &err), JW_EUSAGE);
  CHECK_STR(err.text, "probe: unknown option '--agent-output' (see jobwarden --help)");
  CHECK_INT(parse(ARGC(a6), a6, &cli, &err), 0);
  CHECK(cli.agent_output == NULL);
}

/* --help's exporter part comes from the option rows: every kind, every
 * option with its default; every row's default parses within its bounds;
 * no line over 79 columns. */
static void test_exporter_help(void) {
  char *help = jw_cli_help();
  size_t count = 0, i;
  const jw_exporter_vtable_t *const *kinds = jw__exporter_registry(&count);
  const char *line;
  CHECK(help != NULL);
  if (help == NULL)
    return;
  CHECK_CONTAINS(help, "jobwarden run [OPTIONS] [--] COMMAND [ARG...]");
  CHECK_CONTAINS(help, "\nExporters (--export KIND[:TARGET][,OPTION=VALUE]...; "
                       "docs/integrations.md):\n");
  CHECK(count >= 5);
  for (i = 0; i < count; i++) {
    jw_error_t err;
    const jw_option_t *o;
    char want[128];
    memset(&err, 0, sizeof(err));
    snprintf(want, sizeof(want), "\n  %s\n", kinds[i]->usage);
    CHECK_CONTAINS(help, want);
    CHECK_INT(jw__exporter_defaults_parse(kinds[i], &err), 0);
    for (o = kinds[i]->options; o != NULL && o->name != NULL; o++) {
      snprintf(want, sizeof(want), "      ,%s", o->name);
      CHECK_CONTAINS(help, want);
    }
  }
  CHECK_CONTAINS(help, "      ,spool=DIR ");
  CHECK_CONTAINS(help, "(default 10s)");
  CHECK_CONTAINS(help, "      ,format=native|ecs|ocsf ");
  for (line = help; *line != '\0';) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    if (n > 79)
      fprintf(stderr, "a --help line of %u columns: %.*s\n", (unsigned)n, (int)n, line);
    CHECK(n <= 79);
    line += n + (nl != NULL);
  }
  free(help);
}

/* What a flag writes where it differs from a policy file's value. */
static const jw_test_samples_t flag_samples = {
    .tier = "hardened",
    .ui = "desktop,handles",
    .flag = NULL, /* a boolean flag takes no value */
    .image = "original_file_name:pwsh",
};

/* {"a": {"b": value}} for path "a.b" (value borrowed; new reference). */
static json_t *document_at(const char *path, json_t *value) {
  size_t n = strcspn(path, ".");
  char part[128];
  json_t *obj = json_object();
  snprintf(part, sizeof(part), "%.*s", (int)n, path);
  if (path[n] == '\0')
    json_object_set(obj, part, value);
  else
    json_object_set_new(obj, part, document_at(path + n + 1, value));
  return obj;
}

/* The file's form of a row's value in p: the rendering's value at the
 * row's path, alone in a document ({"limits": {"job_memory": 3145728}}),
 * parsed into *out from jw_policy_init. */
static int parse_path_alone(const jw_policy_t *p, const jw_policy_field_t *f, jw_policy_t *out) {
  json_t *j = jw_policy_to_json(p), *v = j, *doc;
  const char *path = f->path;
  char part[128], *text;
  jw_error_t err;
  int rc;
  while (v != NULL && *path != '\0') {
    size_t n = strcspn(path, ".");
    snprintf(part, sizeof(part), "%.*s", (int)n, path);
    v = json_object_get(v, part);
    path += n + (path[n] == '.');
  }
  doc = v != NULL ? document_at(f->path, v) : NULL;
  text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  jw_policy_init(out);
  memset(&err, 0, sizeof(err));
  rc = text ? jw_policy_parse(out, text, strlen(text), "alone", &err) : -1;
  if (rc != 0)
    fprintf(stderr, "%s: %s (%s)\n", f->path, err.text, text ? text : "no value rendered");
  free(text);
  json_decref(doc);
  json_decref(j);
  return rc;
}

static int same_value(const jw_policy_t *a, const jw_policy_t *b, const jw_policy_field_t *f) {
  if (memcmp((const char *)a + f->offset, (const char *)b + f->offset, f->size) != 0)
    return 0;
  return f->count == 0 ||
         memcmp((const char *)a + f->count, (const char *)b + f->count, sizeof(int)) == 0;
}

/* Every row with a flag: --help shows it (with its placeholder, or as
 * --[no-]NAME), `run FLAG VALUE` sets that row alone, to what the file's
 * key at the row's path gives, and a JW_PF_BOOL row's --no- form sets it
 * false; a JW_PF_TAGS row through --rule-tags RULE=TAG. No row's flag is
 * one of run's own. */
static void test_flags_from_rows(void) {
  static const char *const own[] = {"--policy",  "--export",    "--agent-output",
                                    "--control", "--rule-tags", "--json"};
  size_t n, i, k;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  const char *usage = jw_cli_usage();
  int flags = 0, tags = 0;
  for (i = 0; i < n; i++) {
    const jw_policy_field_t *f = &rows[i];
    int before = jw_test_failures;
    jw_cli_t cli;
    jw_error_t err;
    jw_policy_t alone, init;
    char want[160], rule_arg[160];
    const char *argv[6] = {"jobwarden", "run", NULL, NULL, NULL, NULL};
    int argc = 2;
    jw_policy_init(&init);
    if (f->flag == NULL) {
      /* rules.<rule>.tags */
      const char *rule = f->path + 6, *dot = strchr(rule, '.');
      CHECK(f->type == JW_PF_TAGS && strncmp(f->path, "rules.", 6) == 0 && dot != NULL);
      if (dot == NULL)
        continue;
      tags++;
      snprintf(rule_arg, sizeof(rule_arg), "%.*s=%s", (int)(dot - rule), rule,
               jw_test_sample_of(f->type, &flag_samples));
      argv[argc++] = "--rule-tags";
      argv[argc++] = rule_arg;
    } else {
      flags++;
      for (k = 0; k < sizeof(own) / sizeof(own[0]); k++)
        CHECK(strcmp(f->flag, own[k]) != 0);
      if (f->type == JW_PF_BOOL)
        snprintf(want, sizeof(want), "\n  --[no-]%s ", f->flag + 2);
      else
        snprintf(want, sizeof(want), "\n  %s %s ", f->flag, f->placeholder);
      /* a long head goes on a line of its own */
      if (strstr(usage, want) == NULL)
        want[strlen(want) - 1] = '\n';
      CHECK_CONTAINS(usage, want);
      argv[argc++] = f->flag;
      if (f->type != JW_PF_BOOL)
        argv[argc++] = jw_test_sample_of(f->type, &flag_samples);
    }
    argv[argc++] = "--";
    argv[argc++] = "x.exe";
    CHECK_INT(parse(argc, argv, &cli, &err), 0);
    CHECK_U64(cli.policy.set, f->bit);
    CHECK(!same_value(&cli.policy, &init, f));
    CHECK_INT(parse_path_alone(&cli.policy, f, &alone), 0);
    CHECK(same_value(&alone, &cli.policy, f));
    CHECK_U64(alone.set, f->bit);
    if (f->type == JW_PF_BOOL) {
      char no[96];
      jw_policy_t want_false;
      snprintf(no, sizeof(no), "--no-%s", f->flag + 2);
      argv[2] = no;
      CHECK_INT(parse(argc, argv, &cli, &err), 0);
      jw_policy_init(&want_false);
      CHECK_INT(jw_policy_set(&want_false, f->key, "false", NULL, NULL), 0);
      CHECK(memcmp(&cli.policy, &want_false, sizeof(want_false)) == 0);
    }
    if (jw_test_failures != before)
      fprintf(stderr, "    ^ in row: %s\n", f->key);
  }
  CHECK(flags >= 25);
  CHECK_INT(tags, 5);
  /* The generated usage fits its buffer: it ends with its last line. */
  {
    static const char last[] = "like an interrupted one: 0xC000013A (STATUS_CONTROL_C_EXIT).\n";
    CHECK(strlen(usage) > strlen(last) && strcmp(usage + strlen(usage) - strlen(last), last) == 0);
  }
}

/* Every policy flag at once (and each boolean's --no- form), the policy
 * rendered as check-policy prints it: byte for byte the rendering in
 * tests/data/cli/every-flag.golden (made by the code before the field
 * table). JW_CLI_GOLDEN_WRITE=PATH writes what this build renders. */
static void test_every_flag_golden(const char *data) {
  const char *argv[] = {"jobwarden",
                        "run",
                        "--tier",
                        "hardened",
                        "--name=every-flag",
                        "--active-processes",
                        "3",
                        "--process-memory",
                        "1G",
                        "--job-memory=4G",
                        "--process-cpu-time",
                        "10s",
                        "--job-cpu-time",
                        "1h",
                        "--notification-margin",
                        "7.5%",
                        "--ui-restrictions",
                        "desktop,global_atoms",
                        "--no-kill-on-close",
                        "--die-on-unhandled-exception",
                        "--no-allow-breakaway",
                        "--allow-breakaway",
                        "--token",
                        "low_integrity",
                        "--timeout",
                        "45m",
                        "--timeout-action",
                        "report",
                        "--max-total-processes",
                        "99",
                        "--total-processes-action",
                        "kill_job",
                        "--deny-image",
                        "cmd.exe",
                        "--deny-image=original_file_name:pwsh",
                        "--allow-image",
                        "python",
                        "--image-action",
                        "report",
                        "--image-hash-cap",
                        "2M",
                        "--active-processes-action",
                        "kill_process",
                        "--escape-action",
                        "kill_job",
                        "--escape-scan-interval",
                        "2s",
                        "--coalesce-window",
                        "off",
                        "--rule-tags",
                        "images=attack.t1059,team.x",
                        "--rule-tags=escape=attack.t1611",
                        "--rule-tags",
                        "timeout=slow",
                        "--rule-tags",
                        "total_processes=many",
                        "--rule-tags",
                        "active_processes=busy",
                        "--seal-key",
                        "first.key",
                        "--seal-key-existing",
                        "second.key",
                        "--",
                        "agent.exe"};
  jw_cli_t cli;
  jw_error_t err;
  json_t *j;
  char *text, path[1024], *want;
  const char *write_to = getenv("JW_CLI_GOLDEN_WRITE");
  FILE *f;
  size_t len;
  CHECK_INT(parse(ARGC(argv), argv, &cli, &err), 0);
  jw_policy_resolve(&cli.policy, &cli.policy);
  j = jw_policy_to_json(&cli.policy);
  text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  CHECK(text != NULL);
  if (text == NULL)
    return;
  len = strlen(text);
  if (write_to != NULL && (f = fopen(write_to, "wb")) != NULL) {
    fwrite(text, 1, len, f);
    fclose(f);
  }
  snprintf(path, sizeof(path), "%s/cli/every-flag.golden", data);
  f = fopen(path, "rb");
  CHECK(f != NULL);
  want = calloc(1, len + 2);
  if (f != NULL && want != NULL) {
    size_t n = fread(want, 1, len + 1, f);
    want[n] = '\0';
    CHECK_STR(text, want);
  }
  if (f != NULL)
    fclose(f);
  free(want);
  free(text);
}

static const char *g_data = ".", *g_out = ".";

static void test_policy_file_then_flags_case(void) {
  test_policy_file_then_flags(g_out);
}

static void test_rule_flags_case(void) {
  test_rule_flags(g_out);
}

static void test_rule_tags_flag_case(void) {
  test_rule_tags_flag(g_out);
}

static void test_every_flag_golden_case(void) {
  test_every_flag_golden(g_data);
}

/* Runnable one by one: `test_cli DATA OUT --case commands`. */
static const jw_test_case_t cases[] = {
    {"exporter_help", test_exporter_help, 30},
    {"commands", test_commands, 30},
    {"run_flags", test_run_flags, 30},
    {"agent_output", test_agent_output, 30},
    {"too_many_exports", test_too_many_exports, 30},
    {"tail_and_probe", test_tail_and_probe, 30},
    {"control_commands", test_control_commands, 30},
    {"tail_format", test_tail_format, 30},
    {"policy_file_then_flags", test_policy_file_then_flags_case, 30},
    {"exit_status", test_exit_status, 30},
    {"rule_flags", test_rule_flags_case, 30},
    {"rule_tags_flag", test_rule_tags_flag_case, 30},
    {"image_hash_cap_flag", test_image_hash_cap_flag, 30},
    {"notification_margin_flag", test_notification_margin_flag, 30},
    {"token_flags", test_token_flags, 30},
    {"every_flag_golden", test_every_flag_golden_case, 30},
    {"flags_from_rows", test_flags_from_rows, 30},
};

int main(int argc, char **argv) {
  g_data = jw_test_arg(argc, argv, 1, ".");
  g_out = jw_test_arg(argc, argv, 2, ".");
  return jw_test_run_cases("cli", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

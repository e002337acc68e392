/* jobwarden.exe: the command-line front end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "win/win.h"

static void out(HANDLE h, const char *s) {
  jw__write_all(h, s, strlen(s));
}

int wmain(int argc, wchar_t **wargv);

int wmain(int argc, wchar_t **wargv) {
  char **argv = calloc((size_t)argc + 1, sizeof(char *));
  jw_cli_t cli;
  jw_error_t err;
  int i, rc, status;

  if (argv == NULL)
    return JW_EXIT_JW_ERROR;
  for (i = 0; i < argc; i++) {
    size_t len;
    if (jw_utf16_to_utf8((const uint16_t *)wargv[i], wcslen(wargv[i]), JW_HOSTILE_MAX_UNITS,
                         &argv[i], &len, NULL) != 0)
      return JW_EXIT_JW_ERROR;
  }
  /* `probe` re-runs jobwarden.exe inside the job as its canary. */
  if (argc >= 2 && strcmp(argv[1], "--probe-canary") == 0) {
    status = jw__probe_canary_main(argc - 2, argv + 2);
    for (i = 0; i < argc; i++)
      free(argv[i]);
    free(argv);
    return status;
  }
  /* verify, report, seal-key, check-policy, tail --file: the same code as
   * the native build's (src/commands.c). */
  if (jw_portable_command(argc, argv, &status)) {
    for (i = 0; i < argc; i++)
      free(argv[i]);
    free(argv);
    return status;
  }
  memset(&err, 0, sizeof(err));
  rc = jw_cli_parse(argc, (const char *const *)argv, &cli, &err);
  if (rc != 0) {
    out(GetStdHandle(STD_ERROR_HANDLE), "jobwarden: ");
    out(GetStdHandle(STD_ERROR_HANDLE), err.text);
    out(GetStdHandle(STD_ERROR_HANDLE), "\n");
    return JW_EXIT_JW_ERROR;
  }
  switch (cli.cmd) {
  case JW_CMD_HELP: {
    char *help = jw_cli_help();
    out(GetStdHandle(STD_OUTPUT_HANDLE), help != NULL ? help : jw_cli_usage());
    free(help);
  }
    status = JW_EXIT_OK;
    break;
  case JW_CMD_VERSION:
    out(GetStdHandle(STD_OUTPUT_HANDLE),
        "jobwarden " JW_VERSION " (event schema " JW_SCHEMA_VERSION ")\n");
    status = JW_EXIT_OK;
    break;
  case JW_CMD_CHECK_POLICY:
    status = jw_cmd_check_policy(argc, argv);
    break;
  case JW_CMD_TAIL:
    status = jw_tail_main(cli.pipe_name, cli.raw);
    break;
  case JW_CMD_PROBE:
    status = jw_probe(&cli.policy, cli.json);
    break;
  case JW_CMD_PS:
    status = jw_ps_main(cli.pipe_name, cli.json);
    break;
  case JW_CMD_KILL:
    status = jw_kill_main(cli.pipe_name, cli.has_pid, cli.pid);
    break;
  case JW_CMD_RUN: {
    jw_run_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.policy = cli.policy;
    cfg.exports = cli.exports;
    cfg.n_exports = cli.n_exports;
    cfg.argv = cli.command;
    cfg.argc = cli.command_argc;
    cfg.control_name = cli.control_name;
    cfg.agent_output = cli.agent_output;
    status = jw_run(&cfg);
    break;
  }
  default:
    status = JW_EXIT_JW_ERROR;
    break;
  }
  for (i = 0; i < argc; i++)
    free(argv[i]);
  free(argv);
  return status;
}

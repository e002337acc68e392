/* `jobwarden report`: placeholder until the report lands (this session). */
#include "cli.h"
#include "commands.h"

int jw_cmd_report(int argc, char **argv) {
  (void)argc;
  (void)argv;
  jw_errf("report: not built yet");
  return JW_EXIT_JW_ERROR;
}

/* The native `jobwarden`: the subcommands an analyst runs on a record
 * away from the Windows machine that made it (check-policy, verify,
 * report, seal-key, tail --file). The Windows-only ones say so. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static const char *const windows_only[] = {"run", "probe", "ps", "kill", "tail"};

static const char usage[] =
    "Usage (this build: Linux; the Windows build has every subcommand):\n"
    "  jobwarden verify FILE... --key KEYFILE [--json]\n"
    "  jobwarden report FILE... [--format text|json|html] [--key KEYFILE] [-o OUT]\n"
    "  jobwarden seal-key new FILE\n"
    "  jobwarden check-policy FILE\n"
    "  jobwarden tail --file FILE [--raw]\n"
    "  jobwarden flush DIR [--timeout DURATION]   (syslog+tcp spools)\n"
    "  jobwarden --help | --version\n"
    "\n"
    "Windows-only: run, probe, ps, kill, tail NAME (they need a Job Object).\n"
    "Exit status: verify 0 intact, 1 damaged, 125 usage; report 0, 1 a file\n"
    "could not be read as a record, 125 usage; check-policy 0 valid, 1 invalid,\n"
    "125 usage; tail --file 0 the record ends with sandbox.job_end, 1 it does\n"
    "not, 125 usage; flush 0 all delivered, 1 lines still wait, 125 usage.\n"
    "See docs/forensics.md and docs/integrations.md.\n";

int main(int argc, char **argv) {
  int status;
  size_t i;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? JW_EXIT_JW_ERROR : JW_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("jobwarden " JW_VERSION " (event schema " JW_SCHEMA_VERSION ", native build)\n");
    return JW_EXIT_OK;
  }
  if (jw_portable_command(argc, argv, &status))
    return status;
  for (i = 0; i < sizeof(windows_only) / sizeof(windows_only[0]); i++)
    if (strcmp(argv[1], windows_only[i]) == 0) {
      fprintf(stderr,
              "jobwarden: %s: Windows-only (it needs a Job Object); this native build has "
              "verify, report, seal-key, check-policy, tail --file and flush%s\n",
              argv[1],
              strcmp(argv[1], "tail") == 0 ? " (tail --file FILE reads a record file)" : "");
      return JW_EXIT_JW_ERROR;
    }
  fprintf(stderr, "jobwarden: unknown command '%.100s' (see jobwarden --help)\n", argv[1]);
  return JW_EXIT_JW_ERROR;
}

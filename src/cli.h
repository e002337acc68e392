/* Command-line parsing of jobwarden (portable, unit-tested natively). */
#ifndef JW_CLI_H
#define JW_CLI_H

#include "jobwarden.h"

/* Exit statuses of jobwarden itself, in the style of timeout(1) / env(1).
 * `run` otherwise exits with the sandboxed program's own exit code. */
#define JW_EXIT_OK              0
#define JW_EXIT_POLICY_INVALID  1   /* check-policy: the policy is invalid */
#define JW_EXIT_NOT_ENFORCED    1   /* probe: a claimed restriction is not enforced */
#define JW_EXIT_TAIL_CUT        1   /* tail: the stream ended without job_end */
#define JW_EXIT_TAIL_NO_PIPE    3   /* tail: no such pipe (no run, or wrong NAME) */
#define JW_EXIT_CONTROL_REFUSED 1   /* ps / kill: the run refused the request or could not do it */
#define JW_EXIT_CONTROL_NO_PIPE 3   /* ps / kill: no such control pipe (no run, or wrong NAME) */
#define JW_EXIT_VERIFY_DAMAGED  1   /* verify: a stream is damaged, incomplete or unsealed */
#define JW_EXIT_REPORT_UNREADABLE 1 /* report: a file could not be read as a record */
#define JW_EXIT_RULE_KILLED     124 /* run: a monitor rule ended the program (as timeout(1)) */
#define JW_EXIT_JW_ERROR        125 /* usage, policy, job or exporter set-up error */
#define JW_EXIT_CANNOT_EXEC     126 /* the program was found but cannot run */
#define JW_EXIT_NOT_FOUND       127 /* the program was not found */

typedef enum {
  JW_CMD_HELP = 0,
  JW_CMD_VERSION,
  JW_CMD_RUN,
  JW_CMD_CHECK_POLICY,
  JW_CMD_TAIL,
  JW_CMD_PROBE,
  JW_CMD_PS,
  JW_CMD_KILL
} jw_cmd_t;

#define JW_CLI_MAX_EXPORTS 16

typedef struct jw_cli_s {
  jw_cmd_t cmd;
  jw_policy_t policy;                      /* file then flags, not yet resolved */
  const char *policy_file;                 /* borrowed from argv, or NULL */
  const char *exports[JW_CLI_MAX_EXPORTS]; /* borrowed from argv */
  int n_exports;
  const char *const *command; /* borrowed: argv of the program to run */
  int command_argc;
  const char *pipe_name;    /* tail, ps, kill: NAME (borrowed, checked) */
  const char *control_name; /* run --control NAME (borrowed, checked), or NULL */
  const char *agent_output; /* run --agent-output VALUE (borrowed), or NULL */
  int raw;                  /* tail --raw */
  int json;                 /* probe --json, ps --json */
  int tier_given;           /* probe: --tier or --policy seen */
  int has_pid;              /* kill --pid given */
  uint32_t pid;             /* kill --pid PID */
} jw_cli_t;

/* Parses argv (argv[0] is jobwarden itself). Loads --policy FILE and
 * applies flags on top of it. Returns 0, JW_EUSAGE (err says which argument
 * and why) or the policy error. */
int jw_cli_parse(int argc, const char *const *argv, jw_cli_t *cli, jw_error_t *err);

/* The --help text; its policy flags come from the policy's field rows
 * (jw_policy_fields()). Built into a static buffer on each call: call it
 * from one thread at a time. */
const char *jw_cli_usage(void);
/* The usage followed by every exporter kind with its options (from their
 * option rows): what --help prints. malloc'd, NULL without memory. */
char *jw_cli_help(void);

/* Formats one JSON event line for `jobwarden tail`: "TIME SEVERITY RULE
 * pid=PID IMAGE  MESSAGE\n" into out (size >= 64; a longer line is cut),
 * hostile strings shown without control characters. Returns 1 for
 * sandbox.job_end, 0 for another event, -1 when the line is not a JSON
 * object (out then says so). */
int jw_tail_format(const char *line, size_t len, char *out, size_t size);

/* Maps an error code from parsing or running to jobwarden's exit status. */
int jw_cli_exit_status(int code);

#endif

/* Command-line parsing for `jobwarden`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

/* A limit flag: the CLI name and the policy key it sets. `boolean` flags
 * take no value; their --no- form sets false. */
typedef struct {
  const char *flag;
  const char *key;
  int boolean;
} flag_def_t;

static const flag_def_t flag_defs[] = {
    {"--tier", "tier", 0},
    {"--name", "name", 0},
    {"--active-processes", "active_processes", 0},
    {"--process-memory", "process_memory", 0},
    {"--job-memory", "job_memory", 0},
    {"--process-cpu-time", "process_cpu_time", 0},
    {"--job-cpu-time", "job_cpu_time", 0},
    {"--notification-margin", "notification_margin", 0},
    {"--ui-restrictions", "ui_restrictions", 0},
    {"--kill-on-close", "kill_on_close", 1},
    {"--die-on-unhandled-exception", "die_on_unhandled_exception", 1},
    {"--allow-breakaway", "allow_breakaway", 1},
    {"--token", "token", 0},
    {"--timeout", "timeout", 0},
    {"--timeout-action", "timeout_action", 0},
    {"--max-total-processes", "max_total_processes", 0},
    {"--total-processes-action", "total_processes_action", 0},
    {"--deny-image", "deny_image", 0},
    {"--allow-image", "allow_image", 0},
    {"--image-action", "image_action", 0},
    {"--image-hash-cap", "image_hash_cap", 0},
    {"--active-processes-action", "active_processes_action", 0},
    {"--escape-action", "escape_action", 0},
    {"--escape-scan-interval", "escape_scan_interval", 0},
    {"--coalesce-window", "coalesce_window", 0},
    {"--seal-key", "seal_key", 0},
    {"--seal-key-existing", "seal_key_existing", 0},
};

#define N_FLAG_DEFS (sizeof(flag_defs) / sizeof(flag_defs[0]))

/* --rule-tags RULE=TAG[,TAG...]: the monitor rules that take tags, each
 * with the policy key that adds one (rules.<rule>.tags) and the name its
 * messages are given under. */
static const struct {
  const char *rule, *key, *where;
} rule_tag_defs[] = {
    {"timeout", "timeout_tags", "--rule-tags timeout"},
    {"total_processes", "total_processes_tags", "--rule-tags total_processes"},
    {"images", "images_tags", "--rule-tags images"},
    {"active_processes", "active_processes_tags", "--rule-tags active_processes"},
    {"escape", "escape_tags", "--rule-tags escape"},
};
#define N_RULE_TAG_DEFS (sizeof(rule_tag_defs) / sizeof(rule_tag_defs[0]))
#define RULE_TAG_NAMES  "timeout, total_processes, images, active_processes, escape"
/* Bytes of one tag handed to the policy: a longer one is refused there
 * anyway (tags are at most 63 bytes), shown cut. */
#define RULE_TAG_PIECE 256
/* Room for every image of both lists (32 each) and the other flags. */
#define MAX_SETTINGS 128

typedef struct {
  const char *flag; /* as written, for messages */
  const char *key;
  const char *value;
  int tag_list; /* --rule-tags: value is TAG[,TAG...], one jw_policy_set per tag */
} setting_t;

const char *jw_cli_usage(void) {
  return "Usage:\n"
         "  jobwarden run [OPTIONS] [--] COMMAND [ARG...]\n"
         "  jobwarden check-policy FILE\n"
         "  jobwarden tail NAME [--raw] | tail --file FILE [--raw]\n"
         "  jobwarden verify FILE... --key KEYFILE [--json]\n"
         "  jobwarden report FILE... [--format text|json|html] [--key KEYFILE] [-o OUT]\n"
         "  jobwarden seal-key new FILE\n"
         "  jobwarden flush DIR [--timeout DURATION]\n"
         "  jobwarden ps NAME [--json]\n"
         "  jobwarden kill NAME [--pid PID]\n"
         "  jobwarden probe [--tier T | --policy FILE | limit flags] [--json]\n"
         "  jobwarden --help | --version\n"
         "\n"
         "Runs COMMAND inside a Windows Job Object built from a policy and writes\n"
         "every event the sandbox sees as JSON Lines.\n"
         "\n"
         "run options:\n"
         "  --tier none|hardened|lockdown    base policy (default: none)\n"
         "  --policy FILE                    JSON policy file (docs/policy.md)\n"
         "  --name NAME                      job name shown in events\n"
         "  --export SPEC                    where events go; repeatable; the kinds\n"
         "                                   and their options: 'Exporters' below\n"
         "                                   (default: file:jobwarden-events.jsonl)\n"
         "  --agent-output auto|inherit|stdout|stderr|null|file:PATH\n"
         "                                   where the program's stdout and stderr go;\n"
         "                                   auto (default): its own if no sink writes\n"
         "                                   there, else relayed to the stream no sink\n"
         "                                   uses (null when both are used)\n"
         "  --control NAME                   serve the control pipe\n"
         "                                   \\\\.\\pipe\\jobwarden-control-NAME, for\n"
         "                                   jobwarden ps NAME and jobwarden kill NAME\n"
         "                                   (the run's own user only)\n"
         "  --active-processes N|unlimited   processes alive at once in the job\n"
         "  --process-memory SIZE|unlimited  committed memory per process (e.g. 512M)\n"
         "  --job-memory SIZE|unlimited      committed memory of the whole job\n"
         "  --process-cpu-time DUR|unlimited user CPU time per process (e.g. 30s)\n"
         "  --job-cpu-time DUR|unlimited     user CPU time of the whole job\n"
         "  --notification-margin PCT|off    warn this far below the job memory and\n"
         "                                   job CPU time limits (default 10%)\n"
         "  --ui-restrictions LIST|all|none  e.g. read_clipboard,global_atoms\n"
         "  --[no-]kill-on-close             kill the job when jobwarden exits\n"
         "                                   (default: on in every tier)\n"
         "  --token MODE                     the program's token: inherit | restricted |\n"
         "                                   low_integrity | restricted_low (default:\n"
         "                                   restricted_low in lockdown, else inherit)\n"
         "  --[no-]die-on-unhandled-exception\n"
         "  --[no-]allow-breakaway           let processes leave the job\n"
         "  Monitor rules, enforced by jobwarden itself (ACTION: report,\n"
         "  kill_process or kill_job):\n"
         "  --timeout DUR|unlimited          wall-clock time of the run (e.g. 30m)\n"
         "  --timeout-action ACTION          default kill_job\n"
         "  --max-total-processes N|unlimited processes over the job's life, root\n"
         "                                   included\n"
         "  --total-processes-action ACTION  default kill_process\n"
         "  --deny-image NAME                a file name the program's descendants may\n"
         "                                   not run (cmd.exe; cmd: any extension), or\n"
         "                                   sha256:HEX, original_file_name:NAME,\n"
         "                                   signer:SUBJECT (docs/policy.md);\n"
         "                                   repeatable; adds to the policy file's list\n"
         "  --allow-image NAME               the only file names they may run; the same\n"
         "  --image-action ACTION            default kill_process\n"
         "  --image-hash-cap SIZE            images larger than SIZE are not hashed nor\n"
         "                                   verified (sha256: and signer: entries then\n"
         "                                   cannot decide them: image_unknown);\n"
         "                                   default 256M\n"
         "  --active-processes-action ACTION when the kernel lets --active-processes\n"
         "                                   pass (Wine); default report\n"
         "  --escape-action ACTION           a process outside the job whose parent is\n"
         "                                   jobwarden or a member; default kill_process\n"
         "                                   (report in tier none)\n"
         "  --escape-scan-interval DUR|off   how often to look for escapes while members\n"
         "                                   run; default 200ms (off in tier none)\n"
         "  --coalesce-window DUR|off        repeats of a violation (same rule, same\n"
         "                                   process or image) within DUR of the first\n"
         "                                   become one summary line; default 10s\n"
         "  --rule-tags RULE=TAG[,TAG...]    tags added to the violations of RULE\n"
         "                                   (timeout, total_processes, images,\n"
         "                                   active_processes, escape), e.g.\n"
         "                                   images=attack.t1059; at most 3 per rule,\n"
         "                                   each [a-z][a-z0-9_.]{0,62}; repeatable;\n"
         "                                   adds to the policy file's tags\n"
         "  --seal-key FILE                  seal every stream (docs/forensics.md) with\n"
         "                                   a new key written to FILE (refused if it\n"
         "                                   exists; owner-only)\n"
         "  --seal-key-existing FILE         seal with a key made by 'seal-key new'\n"
         "  Flags override the policy file; the tier fills in what neither sets.\n"
         "\n"
         "tail: connects to the pipe of 'run --export pipe:NAME' and prints one\n"
         "  readable line per event (time, severity, rule, pid, image, message);\n"
         "  --raw prints the JSON lines as they come. Ends when the run ends.\n"
         "ps: lists the processes of the job of 'run --control NAME' (pid, working\n"
         "  set, start time, image); --json prints the run's JSON reply.\n"
         "kill: terminates the job of 'run --control NAME', or with --pid PID only\n"
         "  that process (refused unless it is in the job).\n"
         "probe: runs canary checks inside a job built from the policy (default\n"
         "  tier lockdown) and reports each restriction as blocked, allowed or\n"
         "  skipped; --json prints one JSON document.\n"
         "verify: checks sealed records (--seal-key) against the key: names the\n"
         "  first line modified, inserted, deleted, reordered, cut off or spliced\n"
         "  in; a line delivered again byte for byte is a duplicate, not damage;\n"
         "  --json prints one JSON document. seal-key new FILE makes a key.\n"
         "verify, report and tail --file put an event split into continuation\n"
         "  records (a sink's size limit) back together, and name one left\n"
         "  incomplete.\n"
         "flush: delivers what runs left in a network sink's spool DIR (spool=) to\n"
         "  its collector, waiting at most --timeout (default 30s).\n"
         "report: the runs of the records as text, JSON or one HTML page; --key\n"
         "  adds each stream's seal verdict. tail --file FILE: tail's lines for a\n"
         "  record file.\n"
         "\n"
         "Exit status: the program's exit code; 124 a monitor rule ended the program\n"
         "(kill_job, or the timeout's kill_process); 125 jobwarden error (usage,\n"
         "policy, job or exporter set-up); 126 program cannot be executed;\n"
         "127 program not found. check-policy: 0 valid, 1 invalid, 125 usage.\n"
         "tail: 0 the run ended (job_end seen), 1 the stream ended without\n"
         "job_end, 3 no such pipe, 125 usage. probe: 0 every restriction the\n"
         "policy claims is enforced, 1 at least one is not, 125 usage.\n"
         "verify: 0 every stream intact and complete, 1 damaged, incomplete or\n"
         "unsealed, 125 usage or a bad key file. seal-key: 0, 125 (the file exists).\n"
         "tail --file: 0 the record ends with job_end, 1 it does not or an event\n"
         "is incomplete, 125 usage.\n"
         "flush: 0 everything waiting was delivered, 1 some lines still wait,\n"
         "125 usage (not a spool, a sink this build cannot open).\n"
         "report: 0 the report was written, 1 a file could not be read as a record\n"
         "(which and why on stderr), 125 usage (docs/forensics.md).\n"
         "ps, kill: 0 done, 1 the run refused or could not do it, 3 no such\n"
         "control pipe, 125 usage or no valid reply. A run ended by 'kill' exits\n"
         "like an interrupted one: 0xC000013A (STATUS_CONTROL_C_EXIT).\n";
}

char *jw_cli_help(void) {
  static const char head[] = "\nExporters (--export KIND[:TARGET][,OPTION=VALUE]...; "
                             "docs/integrations.md):\n";
  const char *u = jw_cli_usage();
  char *ex = jw_exporter_help(), *out;
  size_t n;
  if (ex == NULL)
    return NULL;
  n = strlen(u) + sizeof(head) + strlen(ex) + 1;
  out = malloc(n);
  if (out != NULL)
    snprintf(out, n, "%s%s%s", u, head, ex);
  free(ex);
  return out;
}

int jw_cli_exit_status(int code) {
  switch (code) {
  case 0:
    return JW_EXIT_OK;
  case JW_ENOENT:
    return JW_EXIT_NOT_FOUND;
  case JW_ENOEXEC:
    return JW_EXIT_CANNOT_EXEC;
  default:
    return JW_EXIT_JW_ERROR;
  }
}

static const flag_def_t *find_flag(const char *name, size_t len, int *negated) {
  size_t i;
  *negated = 0;
  if (len > 5 && memcmp(name, "--no-", 5) == 0) {
    for (i = 0; i < N_FLAG_DEFS; i++) {
      const char *f = flag_defs[i].flag + 2;
      if (flag_defs[i].boolean && strlen(f) == len - 5 && memcmp(f, name + 5, len - 5) == 0) {
        *negated = 1;
        return &flag_defs[i];
      }
    }
    return NULL;
  }
  for (i = 0; i < N_FLAG_DEFS; i++)
    if (strlen(flag_defs[i].flag) == len && memcmp(flag_defs[i].flag, name, len) == 0)
      return &flag_defs[i];
  return NULL;
}

/* Shows at most 60 bytes of a user-given argument in a message. */
#define SHOW(s) (int)(strlen(s) > 60 ? 60 : strlen(s)), (s), (strlen(s) > 60 ? "..." : "")

/* --rule-tags RULE=TAG[,TAG...] into *s: the rule checked here, the
 * tags by the policy when the settings are applied. */
static int rule_tags_setting(const char *value, setting_t *s, jw_error_t *err) {
  const char *eq = value != NULL ? strchr(value, '=') : NULL;
  size_t i, len;
  if (value == NULL || eq == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--rule-tags",
                        "--rule-tags: expected RULE=TAG[,TAG...] (RULE: " RULE_TAG_NAMES
                        "), got '%.*s%s'",
                        SHOW(value != NULL ? value : ""));
  len = (size_t)(eq - value);
  for (i = 0; i < N_RULE_TAG_DEFS; i++) {
    if (strlen(rule_tag_defs[i].rule) == len && memcmp(rule_tag_defs[i].rule, value, len) == 0) {
      s->flag = rule_tag_defs[i].where;
      s->key = rule_tag_defs[i].key;
      s->value = eq + 1;
      s->tag_list = 1;
      return 0;
    }
  }
  return jw_error_set(err, JW_EUSAGE, 0, "--rule-tags",
                      "--rule-tags: unknown rule '%.*s%s' (rules that take tags: " RULE_TAG_NAMES
                      ")",
                      (int)(len > 60 ? 60 : len), value, len > 60 ? "..." : "");
}

/* Applies one --rule-tags setting: each tag of its list in turn (an empty
 * one, as in "images=" or "a,,b", is refused like any bad tag). */
static int apply_tag_list(jw_policy_t *policy, const setting_t *s, jw_error_t *err) {
  const char *p = s->value;
  for (;;) {
    char tag[RULE_TAG_PIECE];
    size_t n = strcspn(p, ",");
    int rc;
    snprintf(tag, sizeof(tag), "%.*s", (int)(n < sizeof(tag) ? n : sizeof(tag) - 1), p);
    rc = jw_policy_set(policy, s->key, tag, s->flag, err);
    if (rc != 0)
      return rc;
    if (p[n] == '\0')
      return 0;
    p += n + 1;
  }
}

/* `run` and `probe` share the policy options; `probe` takes no COMMAND and
 * no --export, and adds --json. */
static int parse_run(int argc, const char *const *argv, int i, jw_cli_t *cli, jw_error_t *err) {
  const char *sub = cli->cmd == JW_CMD_PROBE ? "probe" : "run";
  setting_t settings[MAX_SETTINGS];
  int n_settings = 0, k, rc;

  for (; i < argc; i++) {
    const char *a = argv[i];
    const char *eq, *value = NULL;
    size_t name_len;
    const flag_def_t *def;
    int negated;

    if (strcmp(a, "--") == 0 && cli->cmd == JW_CMD_RUN) {
      i++;
      break;
    }
    if (cli->cmd == JW_CMD_PROBE && strcmp(a, "--json") == 0) {
      cli->json = 1;
      continue;
    }
    if ((a[0] != '-' || a[1] == '\0') && cli->cmd == JW_CMD_RUN)
      break; /* the command starts here */
    if (a[0] != '-' || a[1] == '\0')
      return jw_error_set(err, JW_EUSAGE, 0, sub,
                          "%s: unexpected argument '%.*s%s' (see jobwarden --help)", sub, SHOW(a));
    eq = strchr(a, '=');
    name_len = eq ? (size_t)(eq - a) : strlen(a);
    if (eq)
      value = eq + 1;

    if (name_len == 8 && memcmp(a, "--policy", 8) == 0) {
      if (!value && i + 1 < argc)
        value = argv[++i];
      if (!value || !value[0])
        return jw_error_set(err, JW_EUSAGE, 0, "--policy", "--policy: expected a FILE");
      cli->policy_file = value;
      cli->tier_given = 1;
      continue;
    }
    if (name_len == 8 && memcmp(a, "--export", 8) == 0 && cli->cmd == JW_CMD_RUN) {
      if (!value && i + 1 < argc)
        value = argv[++i];
      if (!value || !value[0])
        return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export: expected a SPEC (%s)",
                            jw_exporter_kinds());
      if (cli->n_exports == JW_CLI_MAX_EXPORTS)
        return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export: at most %d exporters",
                            JW_CLI_MAX_EXPORTS);
      cli->exports[cli->n_exports++] = value;
      continue;
    }
    if (name_len == 14 && memcmp(a, "--agent-output", 14) == 0 && cli->cmd == JW_CMD_RUN) {
      if (!value && i + 1 < argc)
        value = argv[++i];
      if (!value || !value[0])
        return jw_error_set(err, JW_EUSAGE, 0, "--agent-output",
                            "--agent-output: expected auto, inherit, stdout, stderr, null or "
                            "file:PATH");
      if (cli->agent_output != NULL)
        return jw_error_set(err, JW_EUSAGE, 0, "--agent-output", "--agent-output: given twice");
      cli->agent_output = value;
      continue;
    }
    if (name_len == 9 && memcmp(a, "--control", 9) == 0 && cli->cmd == JW_CMD_RUN) {
      if (!value && i + 1 < argc)
        value = argv[++i];
      if (!value || !value[0])
        return jw_error_set(err, JW_EUSAGE, 0, "--control", "--control: expected a NAME");
      if (cli->control_name != NULL)
        return jw_error_set(err, JW_EUSAGE, 0, "--control", "--control: given twice");
      rc = jw__pipe_name_check(&value, "--control", err);
      if (rc != 0)
        return rc;
      cli->control_name = value;
      continue;
    }
    if (name_len == 11 && memcmp(a, "--rule-tags", 11) == 0) {
      if (!value && i + 1 < argc)
        value = argv[++i];
      if (n_settings == MAX_SETTINGS)
        return jw_error_set(err, JW_EUSAGE, 0, "--rule-tags", "too many options");
      rc = rule_tags_setting(value, &settings[n_settings], err);
      if (rc != 0)
        return rc;
      n_settings++;
      continue;
    }
    def = find_flag(a, name_len, &negated);
    if (def == NULL)
      return jw_error_set(err, JW_EUSAGE, 0, sub,
                          "%s: unknown option '%.*s%s' (see jobwarden --help)", sub, SHOW(a));
    if (strcmp(def->key, "tier") == 0)
      cli->tier_given = 1;
    if (def->boolean) {
      if (value)
        return jw_error_set(err, JW_EUSAGE, 0, def->flag, "%.*s: takes no value", (int)name_len, a);
      value = negated ? "false" : "true";
    } else if (!value) {
      if (i + 1 >= argc)
        return jw_error_set(err, JW_EUSAGE, 0, def->flag, "%s: expected a value", def->flag);
      value = argv[++i];
    }
    if (n_settings == MAX_SETTINGS)
      return jw_error_set(err, JW_EUSAGE, 0, def->flag, "too many options");
    settings[n_settings].flag = def->flag;
    settings[n_settings].key = def->key;
    settings[n_settings].value = value;
    settings[n_settings].tag_list = 0;
    n_settings++;
  }

  if (cli->cmd == JW_CMD_RUN) {
    if (i >= argc)
      return jw_error_set(err, JW_EUSAGE, 0, "run",
                          "run: expected a COMMAND to run (see jobwarden --help)");
    cli->command = argv + i;
    cli->command_argc = argc - i;
  } else if (!cli->tier_given) {
    /* probe proves lockdown unless told otherwise */
    rc = jw_policy_set(&cli->policy, "tier", "lockdown", "probe", err);
    if (rc != 0)
      return rc;
  }

  if (cli->policy_file != NULL) {
    rc = jw_policy_parse_file(&cli->policy, cli->policy_file, err);
    if (rc != 0)
      return rc;
  }
  for (k = 0; k < n_settings; k++) {
    rc = settings[k].tag_list ? apply_tag_list(&cli->policy, &settings[k], err)
                              : jw_policy_set(&cli->policy, settings[k].key, settings[k].value,
                                              settings[k].flag, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* A pid as the user wrote it: decimal, 1..4294967295, nothing else. */
static int parse_pid(const char *s, uint32_t *out) {
  uint64_t n = 0;
  size_t i;
  if (s[0] == '\0' || strlen(s) > 10)
    return -1;
  for (i = 0; s[i]; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    n = n * 10 + (uint64_t)(s[i] - '0');
  }
  if (n < 1 || n > 0xFFFFFFFFu)
    return -1;
  *out = (uint32_t)n;
  return 0;
}

/* `ps NAME [--json]` and `kill NAME [--pid PID]`. */
static int parse_control(int argc, const char *const *argv, jw_cli_t *cli, jw_error_t *err) {
  const char *sub = cli->cmd == JW_CMD_PS ? "ps" : "kill";
  int i;
  for (i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (cli->cmd == JW_CMD_PS && strcmp(a, "--json") == 0) {
      cli->json = 1;
    } else if (cli->cmd == JW_CMD_KILL &&
               (strcmp(a, "--pid") == 0 || strncmp(a, "--pid=", 6) == 0)) {
      const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
      if (cli->has_pid)
        return jw_error_set(err, JW_EUSAGE, 0, "--pid", "kill: --pid: given twice");
      if (v == NULL || parse_pid(v, &cli->pid) != 0)
        return jw_error_set(err, JW_EUSAGE, 0, "--pid",
                            "kill: --pid: expected a process id from 1 to 4294967295, got '%.*s%s'",
                            SHOW(v ? v : ""));
      cli->has_pid = 1;
    } else if (a[0] == '-' && a[1] != '\0') {
      return jw_error_set(err, JW_EUSAGE, 0, sub,
                          "%s: unknown option '%.*s%s' (see jobwarden --help)", sub, SHOW(a));
    } else if (cli->pipe_name != NULL) {
      return jw_error_set(err, JW_EUSAGE, 0, sub, "%s: expected one NAME, got '%.*s%s' too", sub,
                          SHOW(a));
    } else {
      cli->pipe_name = a;
    }
  }
  if (cli->pipe_name == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, sub,
                        "%s: expected the NAME of a running 'run --control NAME'", sub);
  return jw__pipe_name_check(&cli->pipe_name, sub, err);
}

int jw_cli_parse(int argc, const char *const *argv, jw_cli_t *cli, jw_error_t *err) {
  const char *cmd;
  memset(cli, 0, sizeof(*cli));
  jw_policy_init(&cli->policy);
  if (argc < 2)
    return jw_error_set(err, JW_EUSAGE, 0, "", "expected a command (see jobwarden --help)");
  cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    cli->cmd = JW_CMD_HELP;
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
    cli->cmd = JW_CMD_VERSION;
    return 0;
  }
  if (strcmp(cmd, "run") == 0) {
    cli->cmd = JW_CMD_RUN;
    return parse_run(argc, argv, 2, cli, err);
  }
  if (strcmp(cmd, "check-policy") == 0) {
    cli->cmd = JW_CMD_CHECK_POLICY;
    if (argc != 3)
      return jw_error_set(err, JW_EUSAGE, 0, "check-policy",
                          "check-policy: expected exactly one FILE");
    cli->policy_file = argv[2];
    return 0;
  }
  if (strcmp(cmd, "probe") == 0) {
    cli->cmd = JW_CMD_PROBE;
    return parse_run(argc, argv, 2, cli, err);
  }
  if (strcmp(cmd, "tail") == 0) {
    int i;
    cli->cmd = JW_CMD_TAIL;
    for (i = 2; i < argc; i++) {
      const char *a = argv[i];
      if (strcmp(a, "--raw") == 0) {
        cli->raw = 1;
      } else if (a[0] == '-' && a[1] != '\0') {
        return jw_error_set(err, JW_EUSAGE, 0, "tail",
                            "tail: unknown option '%.*s%s' (see jobwarden --help)", SHOW(a));
      } else if (cli->pipe_name != NULL) {
        return jw_error_set(err, JW_EUSAGE, 0, "tail",
                            "tail: expected one pipe NAME, got '%.*s%s' too", SHOW(a));
      } else {
        cli->pipe_name = a;
      }
    }
    if (cli->pipe_name == NULL)
      return jw_error_set(err, JW_EUSAGE, 0, "tail",
                          "tail: expected the pipe NAME of a running 'run --export pipe:NAME'");
    return jw__pipe_name_check(&cli->pipe_name, "tail", err);
  }
  if (strcmp(cmd, "ps") == 0 || strcmp(cmd, "kill") == 0) {
    cli->cmd = strcmp(cmd, "ps") == 0 ? JW_CMD_PS : JW_CMD_KILL;
    return parse_control(argc, argv, cli, err);
  }
  return jw_error_set(err, JW_EUSAGE, 0, "", "unknown command '%.*s%s' (see jobwarden --help)",
                      SHOW(cmd));
}

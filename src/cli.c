/* Command-line parsing for `jobwarden`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

/* The policy's flags are its fields' rows (jw_policy_fields(): flag, key,
 * placeholder, help, tier defaults); a JW_PF_BOOL row's flag takes no
 * value and has a --no- form that sets false. --rule-tags RULE=TAG[,TAG...]
 * feeds the JW_PF_TAGS rows, RULE being the rule of their path
 * ("rules.<rule>.tags"). */

/* Bytes of one tag handed to the policy: a longer one is refused there
 * anyway (tags are at most 63 bytes), shown cut. */
#define RULE_TAG_PIECE 256
/* Room for every image of both lists (32 each) and the other flags. */
#define MAX_SETTINGS 128

typedef struct {
  const char *flag; /* as written, for messages */
  const char *key;
  const char *value;
  int tag_list;       /* --rule-tags: value is TAG[,TAG...], one jw_policy_set per tag */
  char tag_where[96]; /* --rule-tags: "--rule-tags RULE", what flag points to */
} setting_t;

/* The rule of a JW_PF_TAGS row ("rules.images.tags" -> "images", *len 6);
 * NULL for any other row. */
static const char *tagged_rule(const jw_policy_field_t *f, size_t *len) {
  const char *rule = f->path + strlen("rules."), *dot;
  if (f->type != JW_PF_TAGS || strncmp(f->path, "rules.", 6) != 0 ||
      (dot = strchr(rule, '.')) == NULL)
    return NULL;
  *len = (size_t)(dot - rule);
  return rule;
}

/* "timeout, total_processes, images, active_processes, escape" */
static void tagged_rules(char *buf, size_t size) {
  size_t n, i, len, used = 0;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  buf[0] = '\0';
  for (i = 0; i < n; i++) {
    const char *rule = tagged_rule(&rows[i], &len);
    if (rule != NULL && used + 1 < size)
      used += (size_t)snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "", (int)len, rule);
  }
}

/* The usage text, grown in a fixed buffer (it is a few KB). */
typedef struct {
  char *buf;
  size_t size, len;
} text_t;

static void put(text_t *t, const char *s, size_t n) {
  if (t->len + n >= t->size)
    n = t->size - 1 - t->len;
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

static void puts_(text_t *t, const char *s) {
  put(t, s, strlen(s));
}

/* A flag's --help line(s): "  --flag ARG" then its help from column 35,
 * words wrapped within 79 columns. */
#define HELP_COLUMN 35
#define HELP_WIDTH  79
static void put_flag_help(text_t *t, const char *head, const char *help) {
  static const char spaces[] = "                                   ";
  size_t col = strlen(head);
  puts_(t, head);
  if (col < HELP_COLUMN) {
    put(t, spaces, HELP_COLUMN - col);
  } else {
    put(t, "\n", 1);
    put(t, spaces, HELP_COLUMN);
  }
  col = HELP_COLUMN;
  while (*help != '\0') {
    size_t w = strcspn(help, " ");
    if (col > HELP_COLUMN && col + 1 + w > HELP_WIDTH) {
      put(t, "\n", 1);
      put(t, spaces, HELP_COLUMN);
      col = HELP_COLUMN;
    } else if (col > HELP_COLUMN) {
      put(t, " ", 1);
      col++;
    }
    put(t, help, w);
    col += w;
    help += w;
    while (*help == ' ')
      help++;
  }
  put(t, "\n", 1);
}

/* "; default 10%", "; default 1 in lockdown", "; default report in none,
 * kill_process in hardened and lockdown": a row's tier defaults. */
static void default_text(const jw_policy_field_t *f, char *buf, size_t size) {
  static const char *const tiers[] = {"none", "hardened", "lockdown"};
  const char *const *d = f->tier_default;
  size_t used = 0;
  int i, j;
  buf[0] = '\0';
  if (d[0] != NULL && d[1] != NULL && d[2] != NULL && strcmp(d[0], d[1]) == 0 &&
      strcmp(d[1], d[2]) == 0) {
    snprintf(buf, size, "; default %s", d[0]);
    return;
  }
  for (i = 0; i < 3; i++) {
    int first = 1;
    if (d[i] == NULL)
      continue;
    for (j = 0; j < i; j++)
      if (d[j] != NULL && strcmp(d[j], d[i]) == 0)
        break;
    if (j < i)
      continue; /* said with tier j */
    used += (size_t)snprintf(buf + used, size - used, "%s%s in", used ? ", " : "; default ", d[i]);
    for (j = i; j < 3 && used < size; j++)
      if (d[j] != NULL && strcmp(d[j], d[i]) == 0) {
        used += (size_t)snprintf(buf + used, size - used, "%s%s", first ? " " : " and ", tiers[j]);
        first = 0;
      }
    if (used >= size)
      return;
  }
}

/* The policy flags, from the rows: the job's settings, then the monitor
 * rules ("rules.") and --rule-tags. */
static void put_policy_flags(text_t *t) {
  size_t n, i;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  int rules;
  for (rules = 0; rules < 2; rules++) {
    if (rules)
      puts_(t, "  Monitor rules, enforced by jobwarden itself (ACTION: report,\n"
               "  kill_process or kill_job):\n");
    for (i = 0; i < n; i++) {
      const jw_policy_field_t *f = &rows[i];
      char head[96], help[600], defaults[160];
      if (f->flag == NULL || (strncmp(f->path, "rules.", 6) == 0) != rules)
        continue;
      if (f->type == JW_PF_BOOL)
        snprintf(head, sizeof(head), "  --[no-]%s", f->flag + 2);
      else
        snprintf(head, sizeof(head), "  %s %s", f->flag, f->placeholder);
      default_text(f, defaults, sizeof(defaults));
      snprintf(help, sizeof(help), "%s%s", f->help, defaults);
      put_flag_help(t, head, help);
    }
  }
  {
    char names[200], help[600];
    tagged_rules(names, sizeof(names));
    snprintf(help, sizeof(help),
             "tags added to the violations of RULE (%s), e.g. images=attack.t1059; at most %d per "
             "rule, each [a-z][a-z0-9_.]{0,62}; repeatable; adds to the policy file's tags",
             names, JW_RULE_TAGS_POLICY_MAX);
    put_flag_help(t, "  --rule-tags RULE=TAG[,TAG...]", help);
  }
}

static const char usage_head[] =
    "Usage:\n"
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
    "  --policy FILE                    JSON policy file (docs/policy.md)\n"
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
    "                                   (the run's own user only)\n";

static const char usage_tail[] =
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
    "is incomplete or dropped (its parts do not add up), 125 usage.\n"
    "flush: 0 everything waiting was delivered, 1 some lines still wait,\n"
    "125 usage (not a spool, a sink this build cannot open).\n"
    "report: 0 the report was written, 1 a file could not be read as a record\n"
    "(which and why on stderr), 125 usage (docs/forensics.md).\n"
    "ps, kill: 0 done, 1 the run refused or could not do it, 3 no such\n"
    "control pipe, 125 usage or no valid reply. A run ended by 'kill' exits\n"
    "like an interrupted one: 0xC000013A (STATUS_CONTROL_C_EXIT).\n";

const char *jw_cli_usage(void) {
  static char usage[16384];
  text_t t = {usage, sizeof(usage), 0};
  puts_(&t, usage_head);
  put_policy_flags(&t);
  puts_(&t, usage_tail);
  return usage;
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

/* The row whose flag is name[0..len), or whose --no- form it is
 * (*negated set) for a JW_PF_BOOL row. */
static const jw_policy_field_t *find_flag(const char *name, size_t len, int *negated) {
  size_t n, i;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  *negated = 0;
  if (len > 5 && memcmp(name, "--no-", 5) == 0) {
    for (i = 0; i < n; i++) {
      const char *f = rows[i].flag ? rows[i].flag + 2 : NULL;
      if (f != NULL && rows[i].type == JW_PF_BOOL && strlen(f) == len - 5 &&
          memcmp(f, name + 5, len - 5) == 0) {
        *negated = 1;
        return &rows[i];
      }
    }
    return NULL;
  }
  for (i = 0; i < n; i++)
    if (rows[i].flag != NULL && strlen(rows[i].flag) == len && memcmp(rows[i].flag, name, len) == 0)
      return &rows[i];
  return NULL;
}

/* Shows at most 60 bytes of a user-given argument in a message. */
#define SHOW(s) (int)(strlen(s) > 60 ? 60 : strlen(s)), (s), (strlen(s) > 60 ? "..." : "")

/* --rule-tags RULE=TAG[,TAG...] into *s: the rule checked here, the
 * tags by the policy when the settings are applied. */
static int rule_tags_setting(const char *value, setting_t *s, jw_error_t *err) {
  const char *eq = value != NULL ? strchr(value, '=') : NULL;
  size_t n, i, len, rlen;
  const jw_policy_field_t *rows = jw_policy_fields(&n);
  char names[200];
  tagged_rules(names, sizeof(names));
  if (value == NULL || eq == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--rule-tags",
                        "--rule-tags: expected RULE=TAG[,TAG...] (RULE: %s), got '%.*s%s'", names,
                        SHOW(value != NULL ? value : ""));
  len = (size_t)(eq - value);
  for (i = 0; i < n; i++) {
    const char *rule = tagged_rule(&rows[i], &rlen);
    if (rule != NULL && rlen == len && memcmp(rule, value, len) == 0) {
      snprintf(s->tag_where, sizeof(s->tag_where), "--rule-tags %.*s", (int)rlen, rule);
      s->flag = s->tag_where;
      s->key = rows[i].key;
      s->value = eq + 1;
      s->tag_list = 1;
      return 0;
    }
  }
  return jw_error_set(err, JW_EUSAGE, 0, "--rule-tags",
                      "--rule-tags: unknown rule '%.*s%s' (rules that take tags: %s)",
                      (int)(len > 60 ? 60 : len), value, len > 60 ? "..." : "", names);
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
    const jw_policy_field_t *def;
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
    if (def->type == JW_PF_BOOL) {
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

/* Policy: the policy file format, command-line overrides, tiers and the
 * rendering of a policy back to JSON.
 *
 * Every value that reaches an error message comes from the user or from a
 * file that may be hostile, so it is shown escaped (control characters,
 * invalid UTF-8, bidirectional overrides) and cut to a few dozen bytes:
 * a message never grows with its input. Parsing works on a copy of the
 * policy, so a failed parse or set leaves the caller's policy untouched. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

#if defined(__GNUC__)
#define POLICY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define POLICY_PRINTF(f, a)
#endif

/* A policy is a few hundred bytes; anything this large is a mistake (or an
 * attack on the parser), and is refused before jansson sees it. */
#define POLICY_FILE_MAX (1024 * 1024)

/* Bytes of escaped text shown for one hostile value, key or origin. */
#define SHOW_MAX        60
#define ORIGIN_SHOW_MAX 120

#define ACTIVE_PROCESSES_MAX 65535u
#define TOTAL_PROCESSES_MAX  4294967295u

/* Job Objects hold CPU-time limits as LARGE_INTEGER counts of 100 ns, so
 * the largest duration that reaches the kernel without overflowing is
 * INT64_MAX / 10000 milliseconds (about 29 000 years). */
#define DURATION_MAX_MS ((uint64_t)INT64_MAX / 10000u)

/* ------------------------------------------------------------------------ */
/* The fields                                                               */
/* ------------------------------------------------------------------------ */

/* Where a row's value lives in jw_policy_t. */
#define STORED(m)  .offset = offsetof(jw_policy_t, m), .size = sizeof(((jw_policy_t *)0)->m)
#define COUNTED(m) .count = offsetof(jw_policy_t, m)
#define EVERY_TIER(v)                                                                              \
  .tier_default = {[JW_TIER_NONE] = v, [JW_TIER_HARDENED] = v, [JW_TIER_LOCKDOWN] = v}
#define TAGS_ROW(rule, index)                                                                      \
  {                                                                                                \
    .key = rule "_tags", .path = "rules." rule ".tags", .type = JW_PF_TAGS,                        \
    STORED(rule_tags[index]), COUNTED(n_rule_tags[index]), .bit = JW_SET_RULE_TAGS,                \
    .shown = JW_PF_SHOWN_IF_NOT_EMPTY                                                              \
  }

/* One row per field: adding a field is adding its row (and its storage
 * and JW_SET_* bit in jobwarden.h); docs/policy.md's tables of fields and
 * tiers are checked against these rows by unit.policy. The rows are in
 * the order jw_policy_set's unknown-key message lists the keys; each
 * object of the file lists its keys, and is rendered, in this order too. */
static const jw_policy_field_t fields[] = {
    {.key = "name",
     .path = "name",
     .flag = "--name",
     .type = JW_PF_NAME,
     STORED(name),
     .bit = JW_SET_NAME,
     .shown = JW_PF_SHOWN_IF_NOT_EMPTY,
     .placeholder = "NAME",
     .help = "job name shown in events"},
    {.key = "tier",
     .path = "tier",
     .flag = "--tier",
     .type = JW_PF_TIER,
     STORED(tier),
     .bit = JW_SET_TIER,
     .placeholder = "none|hardened|lockdown",
     .help = "base policy: its defaults fill in what nothing else sets (default: none)"},
    {.key = "active_processes",
     .path = "limits.active_processes",
     .flag = "--active-processes",
     .type = JW_PF_COUNT,
     STORED(active_processes),
     .bit = JW_SET_ACTIVE_PROCESSES,
     .tier_default = {[JW_TIER_LOCKDOWN] = "1"},
     .placeholder = "N|unlimited",
     .help = "processes alive at once in the job"},
    {.key = "process_memory",
     .path = "limits.process_memory",
     .flag = "--process-memory",
     .type = JW_PF_SIZE,
     STORED(process_memory),
     .bit = JW_SET_PROCESS_MEMORY,
     .placeholder = "SIZE|unlimited",
     .help = "committed memory per process (e.g. 512M)"},
    {.key = "job_memory",
     .path = "limits.job_memory",
     .flag = "--job-memory",
     .type = JW_PF_SIZE,
     STORED(job_memory),
     .bit = JW_SET_JOB_MEMORY,
     .placeholder = "SIZE|unlimited",
     .help = "committed memory of the whole job"},
    {.key = "process_cpu_time",
     .path = "limits.process_cpu_time",
     .flag = "--process-cpu-time",
     .type = JW_PF_DURATION,
     STORED(process_time_ms),
     .bit = JW_SET_PROCESS_TIME,
     .placeholder = "DUR|unlimited",
     .help = "user CPU time per process (e.g. 30s)"},
    {.key = "job_cpu_time",
     .path = "limits.job_cpu_time",
     .flag = "--job-cpu-time",
     .type = JW_PF_DURATION,
     STORED(job_time_ms),
     .bit = JW_SET_JOB_TIME,
     .placeholder = "DUR|unlimited",
     .help = "user CPU time of the whole job"},
    {.key = "notification_margin",
     .path = "limits.notification_margin",
     .flag = "--notification-margin",
     .type = JW_PF_MARGIN,
     STORED(notification_margin_bp),
     .bit = JW_SET_NOTIFY_MARGIN,
     EVERY_TIER("10%"),
     .shown = JW_PF_SHOWN_IF_JOB_LIMIT,
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "PCT|off",
     .help = "warn this far below the job memory and job CPU time limits"},
    {.key = "ui_restrictions",
     .path = "ui_restrictions",
     .flag = "--ui-restrictions",
     .type = JW_PF_UI,
     STORED(ui_restrictions),
     .bit = JW_SET_UI,
     .tier_default = {[JW_TIER_LOCKDOWN] = "all"},
     .placeholder = "LIST|all|none",
     .help = "e.g. read_clipboard,global_atoms"},
    {.key = "kill_on_close",
     .path = "kill_on_close",
     .flag = "--kill-on-close",
     .type = JW_PF_BOOL,
     STORED(kill_on_close),
     .bit = JW_SET_KILL_ON_CLOSE,
     /* In every tier, none included: a jobwarden that is killed (by the
      * agent itself, among others) must not leave the agent running
      * unwatched. Only an explicit false turns it off, and job_start
      * says so. */
     EVERY_TIER("true"),
     .help = "kill the job when jobwarden exits"},
    {.key = "die_on_unhandled_exception",
     .path = "die_on_unhandled_exception",
     .flag = "--die-on-unhandled-exception",
     .type = JW_PF_BOOL,
     STORED(die_on_unhandled_exception),
     .bit = JW_SET_DIE_ON_EXCEPTION,
     .tier_default = {[JW_TIER_HARDENED] = "true", [JW_TIER_LOCKDOWN] = "true"},
     .help = "a crashing process ends at once instead of waiting on an error-report dialog"},
    {.key = "allow_breakaway",
     .path = "allow_breakaway",
     .flag = "--allow-breakaway",
     .type = JW_PF_BOOL,
     STORED(breakaway_ok),
     .bit = JW_SET_BREAKAWAY,
     .tier_default = {[JW_TIER_HARDENED] = "false", [JW_TIER_LOCKDOWN] = "false"},
     .help = "let processes leave the job"},
    {.key = "timeout",
     .path = "rules.timeout.after",
     .flag = "--timeout",
     .type = JW_PF_DURATION,
     STORED(timeout_ms),
     .bit = JW_SET_TIMEOUT,
     .placeholder = "DUR|unlimited",
     .help = "wall-clock time of the run (e.g. 30m)"},
    /* Each rule's default action is what a user who only sets the rule's
     * value means: a timeout ends the run, a cap or a list stops the
     * process; the active-process limit belongs to the kernel, so its
     * monitor fallback only reports unless asked. */
    {.key = "timeout_action",
     .path = "rules.timeout.action",
     .flag = "--timeout-action",
     .type = JW_PF_ACTION,
     STORED(timeout_action),
     .bit = JW_SET_TIMEOUT_ACTION,
     EVERY_TIER("kill_job"),
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "ACTION",
     .help = "when the run lasts longer than --timeout"},
    {.key = "max_total_processes",
     .path = "rules.total_processes.max",
     .flag = "--max-total-processes",
     .type = JW_PF_TOTAL,
     STORED(max_total_processes),
     .bit = JW_SET_MAX_TOTAL,
     .placeholder = "N|unlimited",
     .help = "processes over the job's life, root included"},
    {.key = "total_processes_action",
     .path = "rules.total_processes.action",
     .flag = "--total-processes-action",
     .type = JW_PF_ACTION,
     STORED(total_processes_action),
     .bit = JW_SET_TOTAL_ACTION,
     EVERY_TIER("kill_process"),
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "ACTION",
     .help = "when a process starts beyond --max-total-processes"},
    {.key = "deny_image",
     .path = "rules.images.deny",
     .flag = "--deny-image",
     .type = JW_PF_IMAGE,
     STORED(deny_images),
     COUNTED(n_deny_images),
     .bit = JW_SET_DENY_IMAGES,
     .placeholder = "NAME",
     .help = "a file name the program's descendants may not run (cmd.exe; cmd: any extension), "
             "or sha256:HEX, original_file_name:NAME, signer:SUBJECT (docs/policy.md); "
             "repeatable; adds to the policy file's list"},
    {.key = "allow_image",
     .path = "rules.images.allow",
     .flag = "--allow-image",
     .type = JW_PF_IMAGE,
     STORED(allow_images),
     COUNTED(n_allow_images),
     .bit = JW_SET_ALLOW_IMAGES,
     .placeholder = "NAME",
     .help = "the only file names they may run; the same"},
    {.key = "image_action",
     .path = "rules.images.action",
     .flag = "--image-action",
     .type = JW_PF_ACTION,
     STORED(image_action),
     .bit = JW_SET_IMAGE_ACTION,
     EVERY_TIER("kill_process"),
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "ACTION",
     .help = "when a process runs an image the lists refuse"},
    {.key = "image_hash_cap",
     .path = "rules.images.hash_cap",
     .flag = "--image-hash-cap",
     .type = JW_PF_HASH_CAP,
     STORED(image_hash_cap),
     .bit = JW_SET_IMAGE_HASH_CAP,
     EVERY_TIER("256M"),
     .shown = JW_PF_SHOWN_IF_SET,
     .flags = JW_PF_LISTED_LAST,
     .placeholder = "SIZE",
     .help = "images larger than SIZE are not hashed nor verified (sha256: and signer: entries "
             "then cannot decide them: image_unknown)"},
    {.key = "active_processes_action",
     .path = "rules.active_processes.action",
     .flag = "--active-processes-action",
     .type = JW_PF_ACTION,
     STORED(active_processes_action),
     .bit = JW_SET_ACTIVE_ACTION,
     EVERY_TIER("report"),
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "ACTION",
     .help = "when the kernel lets --active-processes pass (Wine)"},
    /* Escapes: stopped and looked for on a timer in the tiers that
     * contain; in none reported, and looked for only when the port says
     * something. */
    {.key = "escape_action",
     .path = "rules.escape.action",
     .flag = "--escape-action",
     .type = JW_PF_ACTION,
     STORED(escape_action),
     .bit = JW_SET_ESCAPE_ACTION,
     .tier_default = {[JW_TIER_NONE] = "report",
                      [JW_TIER_HARDENED] = "kill_process",
                      [JW_TIER_LOCKDOWN] = "kill_process"},
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "ACTION",
     .help = "a process outside the job whose parent is jobwarden or a member"},
    {.key = "escape_scan_interval",
     .path = "rules.escape.scan_interval",
     .flag = "--escape-scan-interval",
     .type = JW_PF_INTERVAL,
     STORED(escape_scan_ms),
     .bit = JW_SET_ESCAPE_SCAN,
     .tier_default =
         {[JW_TIER_NONE] = "off", [JW_TIER_HARDENED] = "200ms", [JW_TIER_LOCKDOWN] = "200ms"},
     .placeholder = "DUR|off",
     .help = "how often to look for escapes while members run"},
    {.key = "coalesce_window",
     .path = "rules.coalesce.window",
     .flag = "--coalesce-window",
     .type = JW_PF_INTERVAL,
     STORED(coalesce_ms),
     .bit = JW_SET_COALESCE,
     EVERY_TIER("10s"),
     .flags = JW_PF_EFFECTIVE,
     .placeholder = "DUR|off",
     .help = "repeats of a violation (same rule, same process or image) within DUR of the first "
             "become one summary line"},
    /* Tags come in through --rule-tags RULE=TAG,... (src/cli.c). */
    TAGS_ROW("timeout", JW_TAGGED_TIMEOUT),
    TAGS_ROW("total_processes", JW_TAGGED_TOTAL_PROCESSES),
    TAGS_ROW("images", JW_TAGGED_IMAGES),
    TAGS_ROW("active_processes", JW_TAGGED_ACTIVE_PROCESSES),
    TAGS_ROW("escape", JW_TAGGED_ESCAPE),
    /* Lockdown runs the program with less than jobwarden: a restricted,
     * Low-integrity token. Elsewhere the program keeps jobwarden's token,
     * because a Low-integrity program cannot write the user's files (its
     * own working directory included) unless they are labelled for it. */
    {.key = "token",
     .path = "token",
     .flag = "--token",
     .type = JW_PF_TOKEN,
     STORED(token),
     .bit = JW_SET_TOKEN,
     .tier_default = {[JW_TIER_NONE] = "inherit",
                      [JW_TIER_HARDENED] = "inherit",
                      [JW_TIER_LOCKDOWN] = "restricted_low"},
     .placeholder = "MODE",
     .help = "the program's token: inherit, restricted, low_integrity or restricted_low"},
    /* The seal key file: the later setting wins (a flag over the file). */
    {.key = "seal_key",
     .path = "seal.new_key",
     .flag = "--seal-key",
     .type = JW_PF_KEY_FILE,
     STORED(seal_key),
     COUNTED(seal_key_existing),
     .arg = 0,
     .bit = JW_SET_SEAL,
     .shown = JW_PF_SHOWN_IF_SET,
     .placeholder = "FILE",
     .help = "seal every stream (docs/forensics.md) with a new key written to FILE (refused if "
             "it exists; owner-only)"},
    {.key = "seal_key_existing",
     .path = "seal.existing_key",
     .flag = "--seal-key-existing",
     .type = JW_PF_KEY_FILE,
     STORED(seal_key),
     COUNTED(seal_key_existing),
     .arg = 1,
     .bit = JW_SET_SEAL,
     .shown = JW_PF_SHOWN_IF_SET,
     .placeholder = "FILE",
     .help = "seal with a key made by 'seal-key new'"},
};
#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

/* The file's top level, in the order its unknown-key message lists the
 * keys and rendering writes them (exporters last there). A FIELD is the
 * row of that path; an OBJECT holds the rows whose path starts with its
 * name and a dot; RULES holds one object per rule ("rules.<rule>.<key>"
 * rows); ONE_OF is an OBJECT that takes exactly one of its keys. */
typedef enum {
  TOP_VERSION,
  TOP_FIELD,
  TOP_OBJECT,
  TOP_RULES,
  TOP_ONE_OF,
  TOP_EXPORTERS
} top_kind_t;

static const struct {
  const char *name;
  top_kind_t kind;
  const char *expected; /* OBJECT, RULES, ONE_OF: what a value that is no object should be */
  int always_shown;     /* OBJECT: rendered even when none of its rows is set */
} top_keys[] = {
    {.name = "version", .kind = TOP_VERSION},
    {.name = "name", .kind = TOP_FIELD},
    {.name = "tier", .kind = TOP_FIELD},
    {.name = "limits", .kind = TOP_OBJECT, .expected = "an object", .always_shown = 1},
    {.name = "ui_restrictions", .kind = TOP_FIELD},
    {.name = "kill_on_close", .kind = TOP_FIELD},
    {.name = "die_on_unhandled_exception", .kind = TOP_FIELD},
    {.name = "allow_breakaway", .kind = TOP_FIELD},
    {.name = "token", .kind = TOP_FIELD},
    {.name = "exporters", .kind = TOP_EXPORTERS},
    {.name = "rules", .kind = TOP_RULES, .expected = "an object"},
    {.name = "seal", .kind = TOP_ONE_OF, .expected = "an object like {\"new_key\": \"run.key\"}"},
};
#define TOP_KEY_COUNT (sizeof(top_keys) / sizeof(top_keys[0]))

const jw_policy_field_t *jw_policy_fields(size_t *count) {
  if (count != NULL)
    *count = FIELD_COUNT;
  return fields;
}

/* The part of a row's path after "<prefix>." (prefix of plen bytes), or
 * NULL when the row is not under it. */
static const char *under(const jw_policy_field_t *f, const char *prefix, size_t plen) {
  if (strncmp(f->path, prefix, plen) != 0 || f->path[plen] != '.')
    return NULL;
  return f->path + plen + 1;
}

/* The row at `path` (plen bytes) "." key, or at `path` itself when key
 * is NULL. */
static const jw_policy_field_t *field_at(const char *path, size_t plen, const char *key) {
  size_t i;
  for (i = 0; i < FIELD_COUNT; i++) {
    const char *rest = key != NULL ? under(&fields[i], path, plen) : fields[i].path;
    if (key == NULL && strlen(rest) == plen && memcmp(rest, path, plen) == 0)
      return &fields[i];
    if (key != NULL && rest != NULL && strcmp(rest, key) == 0)
      return &fields[i];
  }
  return NULL;
}

static const jw_policy_field_t *field_by_key(const char *key) {
  size_t i;
  for (i = 0; i < FIELD_COUNT; i++)
    if (strcmp(fields[i].key, key) == 0)
      return &fields[i];
  return NULL;
}

/* Appends `word` to a ", "-separated list in buf. */
static void list_add(char *buf, size_t size, const char *word, size_t wlen) {
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "", (int)wlen, word);
}

/* The keys of the object at `prefix` ("limits", "rules.images"), for an
 * unknown-key message: its rows' last path parts in row order, the
 * JW_PF_LISTED_LAST ones after. */
static void keys_under(const char *prefix, char *buf, size_t size) {
  size_t plen = strlen(prefix), i;
  int last;
  buf[0] = '\0';
  for (last = 0; last < 2; last++)
    for (i = 0; i < FIELD_COUNT; i++) {
      const char *rest = under(&fields[i], prefix, plen);
      if (rest != NULL && !!(fields[i].flags & JW_PF_LISTED_LAST) == last)
        list_add(buf, size, rest, strlen(rest));
    }
}

/* The rule names of "rules.<rule>.<key>" rows, in row order: rule n
 * (from 0) in *name / *len; 0 when there are fewer. */
static int rule_name(size_t n, const char **name, size_t *len) {
  size_t i, j, seen = 0;
  for (i = 0; i < FIELD_COUNT; i++) {
    const char *rest = under(&fields[i], "rules", 5);
    size_t rlen;
    int dup = 0;
    if (rest == NULL || strchr(rest, '.') == NULL)
      continue;
    rlen = (size_t)(strchr(rest, '.') - rest);
    for (j = 0; j < i && !dup; j++) {
      const char *prev = under(&fields[j], "rules", 5);
      dup = prev != NULL && strncmp(prev, rest, rlen) == 0 && prev[rlen] == '.';
    }
    if (dup)
      continue;
    if (seen++ == n) {
      *name = rest;
      *len = rlen;
      return 1;
    }
  }
  return 0;
}

static const struct {
  const char *name;
  uint32_t bit;
} ui_names[] = {
    {"handles", JW_UI_HANDLES},
    {"read_clipboard", JW_UI_READCLIPBOARD},
    {"write_clipboard", JW_UI_WRITECLIPBOARD},
    {"system_parameters", JW_UI_SYSTEMPARAMETERS},
    {"display_settings", JW_UI_DISPLAYSETTINGS},
    {"global_atoms", JW_UI_GLOBALATOMS},
    {"desktop", JW_UI_DESKTOP},
    {"exit_windows", JW_UI_EXITWINDOWS},
};
#define UI_NAME_COUNT (sizeof(ui_names) / sizeof(ui_names[0]))

#define UI_NAME_LIST                                                                               \
  "\"handles\", \"read_clipboard\", \"write_clipboard\", "                                         \
  "\"system_parameters\", \"display_settings\", \"global_atoms\", "                                \
  "\"desktop\", \"exit_windows\""

static const char *const tier_names[] = {"none", "hardened", "lockdown"};

/* Indexed by jw_token_mode_t. */
static const char *const token_names[] = {"inherit", "restricted", "low_integrity",
                                          "restricted_low"};
#define TOKEN_LIST "\"inherit\", \"restricted\", \"low_integrity\", \"restricted_low\""

/* Indexed by jw_rule_action_t. */
static const char *const action_names[] = {"default", "report", "kill_process", "kill_job"};
#define ACTION_LIST "\"report\", \"kill_process\", \"kill_job\""

/* Why an image name was refused. */
typedef enum { IMG_OK = 0, IMG_BAD, IMG_DIR, IMG_LONG } img_result_t;

/* Why a textual quantity was refused; each reason has its own message. */
typedef enum { VAL_OK = 0, VAL_BAD, VAL_ZERO, VAL_RANGE } val_result_t;

static const char *expected_text(jw_policy_type_t kind, val_result_t why, int from_text) {
  switch (kind) {
  case JW_PF_COUNT:
    return "an integer from 1 to 65535 or \"unlimited\"";
  case JW_PF_SIZE:
    if (why == VAL_ZERO)
      return "a size of at least 1 byte, or \"unlimited\"";
    if (why == VAL_RANGE)
      return "a size of at most 18446744073709551615 bytes";
    return "a size like \"512M\"";
  case JW_PF_INTERVAL:
    if (why == VAL_ZERO)
      return "a duration of at least 1ms, or \"off\"";
    if (why == VAL_RANGE)
      return "a duration of at most 922337203685477ms";
    return "a duration with a unit, like \"200ms\" or \"1s\", or \"off\"";
  case JW_PF_DURATION:
    if (why == VAL_ZERO)
      return "a duration of at least 1ms, or \"unlimited\"";
    if (why == VAL_RANGE)
      return "a duration of at most 922337203685477ms";
    return "a duration with a unit, like \"500ms\", \"30s\", \"5m\" or \"2h\"";
  case JW_PF_UI:
    return from_text ? "\"all\", \"none\" or a comma-separated list of "
                       "UI restriction names"
                     : "an array of UI restriction names, \"all\" or \"none\"";
  case JW_PF_BOOL:
    return from_text ? "true or false (or yes/no, on/off, 1/0)" : "true or false";
  case JW_PF_TIER:
    return "one of \"none\", \"hardened\", \"lockdown\"";
  case JW_PF_TOKEN:
    return "one of " TOKEN_LIST;
  case JW_PF_NAME:
    return "a name of 1 to 63 characters from [A-Za-z0-9._-]";
  case JW_PF_TOTAL:
    return "an integer from 1 to 4294967295 or \"unlimited\"";
  case JW_PF_ACTION:
    return "one of " ACTION_LIST;
  case JW_PF_IMAGE:
    return "a file name like \"cmd.exe\"";
  case JW_PF_KEY_FILE:
    return "a file path of 1 to 1023 bytes without NUL";
  case JW_PF_HASH_CAP:
    if (why == VAL_RANGE)
      return "a size of at most 18446744073709551615 bytes";
    return "a size of at least 1 byte like \"256M\" (there is no \"unlimited\" cap)";
  case JW_PF_TAGS:
    return "a tag of 1 to 63 characters from [a-z0-9_.], starting with a letter, like "
           "\"attack.t1059\"";
  case JW_PF_MARGIN:
    if (why == VAL_RANGE)
      return "a percentage below 100%, like \"10%\"";
    return "a percentage like \"10%\" or \"2.5%\" (at most two decimals), or \"off\"";
  }
  return "a valid value";
}

static const char *image_expected_text(img_result_t why) {
  if (why == IMG_DIR)
    return "a file name like \"cmd.exe\" without a directory or drive";
  if (why == IMG_LONG)
    return "a file name of at most 255 bytes";
  return "a file name like \"cmd.exe\"";
}

/* ------------------------------------------------------------------------ */
/* Showing hostile text                                                     */
/* ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (0 if invalid), its code point in
 * *cp. Overlong forms, surrogates and values above U+10FFFF are invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t need, i;
  uint32_t v, min;
  unsigned char c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  v = c & (0x7Fu >> need);
  if (n < need)
    return 0;
  for (i = 1; i < need; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return need;
}

/* Code points that would reorder, hide or break a line of terminal or log
 * output: C1 controls, bidirectional controls, line separators, BOM. */
static int is_invisible(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

/* Writes s[0..len) into out (size > 0 bytes, always terminated) as one line
 * of printable text: control characters, invalid bytes and invisible code
 * points become \n, \xNN or \uNNNN; when `quoted`, quotes and backslashes
 * are escaped too, so the text cannot close the quotes it is shown in.
 * (Unquoted text keeps its backslashes: Windows paths are full of them.)
 * At most `max` bytes are written, never splitting an escape or a
 * character. Returns 1 when the text had to be cut. */
static int escape_text(char *out, size_t size, const char *s, size_t len, size_t max, int quoted) {
  const unsigned char *u = (const unsigned char *)s;
  size_t o = 0, i = 0;
  if (max > size - 1)
    max = size - 1;
  while (i < len) {
    char piece[12];
    size_t plen = 1, adv = 1;
    uint32_t cp = 0;
    unsigned char c = u[i];
    if ((quoted && (c == '"' || c == '\\')) || c == '\n' || c == '\r' || c == '\t') {
      piece[0] = '\\';
      piece[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c;
      plen = 2;
    } else if (c < 0x20 || c == 0x7F) {
      plen = (size_t)snprintf(piece, sizeof piece, "\\x%02X", (unsigned)c);
    } else if (c < 0x80) {
      piece[0] = (char)c;
    } else if ((adv = utf8_decode(u + i, len - i, &cp)) == 0) {
      adv = 1;
      plen = (size_t)snprintf(piece, sizeof piece, "\\x%02X", (unsigned)c);
    } else if (is_invisible(cp)) {
      plen = (size_t)snprintf(piece, sizeof piece, "\\u%04X", (unsigned)cp);
    } else {
      memcpy(piece, u + i, adv);
      plen = adv;
    }
    if (o + plen > max) {
      out[o] = '\0';
      return 1;
    }
    memcpy(out + o, piece, plen);
    o += plen;
    i += adv;
  }
  out[o] = '\0';
  return 0;
}

/* A string value as shown after "got": "text", or "text"... when cut. */
#define SHOWN_SIZE (SHOW_MAX + 8)
static void show_string(char out[SHOWN_SIZE], const char *s, size_t len) {
  char esc[SHOW_MAX + 1];
  int cut = escape_text(esc, sizeof esc, s, len, SHOW_MAX, 1);
  snprintf(out, SHOWN_SIZE, "\"%s\"%s", esc, cut ? "..." : "");
}

/* A JSON value as shown after "got". Reals keep a decimal point so that
 * 1.0 does not read like the integer that was expected. */
static void show_json(char out[SHOWN_SIZE], const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING:
    show_string(out, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    snprintf(out, SHOWN_SIZE, "%lld", (long long)json_integer_value(v));
    break;
  case JSON_REAL:
    snprintf(out, SHOWN_SIZE, "%.15g", json_real_value(v));
    if (strpbrk(out, ".eEni") == NULL)
      strcat(out, ".0");
    break;
  case JSON_TRUE:
    strcpy(out, "true");
    break;
  case JSON_FALSE:
    strcpy(out, "false");
    break;
  case JSON_NULL:
    strcpy(out, "null");
    break;
  case JSON_OBJECT:
    strcpy(out, "an object");
    break;
  case JSON_ARRAY:
    strcpy(out, "an array");
    break;
  }
}

/* A key from the document, for err->where: escaped and cut like a value. */
static void show_key(char *out, size_t size, const char *prefix, const char *key) {
  char esc[SHOW_MAX + 1];
  int cut = escape_text(esc, sizeof esc, key, strlen(key), SHOW_MAX, 0);
  snprintf(out, size, "%s%s%s", prefix, esc, cut ? "..." : "");
}

/* ------------------------------------------------------------------------ */
/* Error reporting                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
  jw_error_t *err;
  int has_origin;
  /* The origin as shown: escaped, and for a long path only its last
   * ORIGIN_SHOW_MAX bytes, the part that tells files apart. */
  char origin[ORIGIN_SHOW_MAX + 40];
} ctx_t;

static void ctx_init(ctx_t *cx, const char *origin, jw_error_t *err) {
  size_t len, start = 0;
  cx->err = err;
  cx->has_origin = origin != NULL;
  cx->origin[0] = '\0';
  if (origin == NULL)
    return;
  len = strlen(origin);
  if (len > ORIGIN_SHOW_MAX) {
    start = len - (ORIGIN_SHOW_MAX - 3);
    while (start < len && ((unsigned char)origin[start] & 0xC0) == 0x80)
      start++;
    memcpy(cx->origin, "...", 3);
  }
  /* Room is left for escapes to grow the text, and for a final "...". */
  if (escape_text(cx->origin + (start ? 3 : 0), sizeof cx->origin - 6, origin + start, len - start,
                  sizeof cx->origin - 7, 0))
    strcat(cx->origin, "...");
}

/* Fails with JW_EPOLICY: text is "[origin: ][where: ]<message>". */
static int policy_fail(const ctx_t *cx, const char *where, const char *fmt, ...)
    POLICY_PRINTF(3, 4);
static int policy_fail(const ctx_t *cx, const char *where, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return jw_error_set(cx->err, JW_EPOLICY, 0, where, "%s%s%s%s%s", cx->origin,
                      cx->has_origin ? ": " : "", where, where[0] ? ": " : "", msg);
}

static int fail_json(const ctx_t *cx, const char *where, const char *what, const json_t *got) {
  char shown[SHOWN_SIZE];
  show_json(shown, got);
  return policy_fail(cx, where, "expected %s, got %s", what, shown);
}

static int fail_text(const ctx_t *cx, const char *where, const char *what, const char *got) {
  char shown[SHOWN_SIZE];
  show_string(shown, got, strlen(got));
  return policy_fail(cx, where, "expected %s, got %s", what, shown);
}

/* ------------------------------------------------------------------------ */
/* Quantities                                                               */
/* ------------------------------------------------------------------------ */

static char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Reads one or more decimal digits at *p. *over is set when the number does
 * not fit in 64 bits; the digits are consumed anyway, so that the caller can
 * tell bad syntax from a value out of range. */
static int read_digits(const char **p, uint64_t *out, int *over) {
  const char *s = *p;
  uint64_t v = 0;
  *over = 0;
  if (*s < '0' || *s > '9')
    return 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      *over = 1;
    else
      v = v * 10 + d;
  }
  *p = s;
  *out = v;
  return 1;
}

static val_result_t size_from_text(const char *text, uint64_t *out) {
  const char *p = text;
  uint64_t v, mult = 1;
  int over;
  if (!read_digits(&p, &v, &over))
    return VAL_BAD;
  switch (ascii_lower(*p)) {
  case 'k':
    mult = (uint64_t)1 << 10;
    break;
  case 'm':
    mult = (uint64_t)1 << 20;
    break;
  case 'g':
    mult = (uint64_t)1 << 30;
    break;
  case 't':
    mult = (uint64_t)1 << 40;
    break;
  default:
    break;
  }
  if (mult != 1) {
    p++;
    if (ascii_lower(*p) == 'i' && ascii_lower(p[1]) == 'b')
      p += 2;
    else if (ascii_lower(*p) == 'b')
      p++;
  } else if (ascii_lower(*p) == 'b') {
    p++; /* "4096B" */
  }
  if (*p != '\0')
    return VAL_BAD;
  if (over || v > UINT64_MAX / mult)
    return VAL_RANGE;
  if (v == 0)
    return VAL_ZERO;
  *out = v * mult;
  return VAL_OK;
}

static val_result_t duration_from_text(const char *text, uint64_t *out_ms) {
  const char *p = text;
  uint64_t v, mult;
  int over;
  if (!read_digits(&p, &v, &over))
    return VAL_BAD;
  if (strcmp(p, "ms") == 0)
    mult = 1;
  else if (strcmp(p, "s") == 0)
    mult = 1000;
  else if (strcmp(p, "m") == 0)
    mult = 60u * 1000;
  else if (strcmp(p, "h") == 0)
    mult = 60u * 60 * 1000;
  else
    return VAL_BAD;
  if (over || v > DURATION_MAX_MS / mult)
    return VAL_RANGE;
  if (v == 0)
    return VAL_ZERO;
  *out_ms = v * mult;
  return VAL_OK;
}

static val_result_t count_from_text(const char *text, uint64_t max, uint64_t *out) {
  const char *p = text;
  uint64_t v;
  int over;
  if (!read_digits(&p, &v, &over) || *p != '\0')
    return VAL_BAD;
  if (over || v > max)
    return VAL_RANGE;
  if (v == 0)
    return VAL_ZERO;
  *out = v;
  return VAL_OK;
}

/* A notification margin: "N%" or "N.D%" / "N.DD%" below 100 %, in basis
 * points; "off", "0" and "0%" turn warnings off (0). Nothing else: a bare
 * "10" could mean 10 % or 0.1 and is refused. */
static val_result_t margin_from_text(const char *text, uint32_t *out_bp) {
  const char *p = text;
  uint64_t whole;
  uint32_t frac = 0;
  int over, decimals = 0;
  if (strcmp(text, "off") == 0 || strcmp(text, "0") == 0) {
    *out_bp = 0;
    return VAL_OK;
  }
  if (!read_digits(&p, &whole, &over))
    return VAL_BAD;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      if (++decimals > 2)
        return VAL_BAD;
      frac = frac * 10 + (uint32_t)(*p - '0');
      p++;
    }
    if (decimals == 0)
      return VAL_BAD;
    if (decimals == 1)
      frac *= 10;
  }
  if (p[0] != '%' || p[1] != '\0')
    return VAL_BAD;
  if (over || whole >= 100)
    return VAL_RANGE;
  *out_bp = (uint32_t)whole * 100u + frac;
  return VAL_OK;
}

/* "10%", "2.5%", "0.25%", "off": the text form of a margin (buf >= 16). */
static void margin_to_text(uint32_t bp, char *buf, size_t size) {
  if (bp == 0)
    snprintf(buf, size, "off");
  else if (bp % 100 == 0)
    snprintf(buf, size, "%lu%%", (unsigned long)(bp / 100));
  else if (bp % 10 == 0)
    snprintf(buf, size, "%lu.%lu%%", (unsigned long)(bp / 100), (unsigned long)(bp % 100 / 10));
  else
    snprintf(buf, size, "%lu.%02lu%%", (unsigned long)(bp / 100), (unsigned long)(bp % 100));
}

static int name_is_valid(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len >= JW_POLICY_NAME_MAX)
    return 0;
  for (i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

static int ui_bit(const char *name, size_t len, uint32_t *bit) {
  size_t i;
  for (i = 0; i < UI_NAME_COUNT; i++) {
    if (strlen(ui_names[i].name) == len && memcmp(ui_names[i].name, name, len) == 0) {
      *bit = ui_names[i].bit;
      return 1;
    }
  }
  return 0;
}

/* A row's storage in p. */
static void *slot(jw_policy_t *p, size_t offset) {
  return (char *)p + offset;
}

/* Writes a number, a boolean or an enumerator into f's storage (the
 * row's size says how wide it is). */
static void put_uint(jw_policy_t *p, const jw_policy_field_t *f, uint64_t v) {
  if (f->size == sizeof(uint64_t)) {
    memcpy(slot(p, f->offset), &v, sizeof v);
  } else {
    uint32_t v32 = (uint32_t)v;
    memcpy(slot(p, f->offset), &v32, sizeof v32);
  }
}

static uint64_t get_uint(const jw_policy_t *p, const jw_policy_field_t *f) {
  if (f->size == sizeof(uint64_t)) {
    uint64_t v;
    memcpy(&v, (const char *)p + f->offset, sizeof v);
    return v;
  } else {
    uint32_t v32;
    memcpy(&v32, (const char *)p + f->offset, sizeof v32);
    return v32;
  }
}

static int *count_of(jw_policy_t *p, const jw_policy_field_t *f) {
  return (int *)slot(p, f->count);
}

/* Stores a numeric, boolean or enumerated value into f and marks it as
 * set. */
static void store(jw_policy_t *p, const jw_policy_field_t *f, uint64_t v) {
  put_uint(p, f, f->type == JW_PF_BOOL ? (v != 0) : v);
  p->set |= f->bit;
}

/* "report" -> JW_ACTION_REPORT...; 0 when the word is not an action
 * ("default" is not a word of the policy). */
static jw_rule_action_t action_parse(const char *s, size_t len) {
  size_t i;
  for (i = JW_ACTION_REPORT; i <= JW_ACTION_KILL_JOB; i++)
    if (strlen(action_names[i]) == len && memcmp(action_names[i], s, len) == 0)
      return (jw_rule_action_t)i;
  return JW_ACTION_DEFAULT;
}

/* An image name: one file name as Windows allows it, so that a typo or a
 * path cannot sit in a list and silently never match. Directories are
 * refused: the monitor matches the file name only (a path is easily
 * sidestepped by copying the program elsewhere, and a list entry that
 * looks like a path would promise more than it checks). */
static img_result_t image_name_check(const char *s, size_t len) {
  size_t i = 0;
  if (len == 0 || strlen(s) != len)
    return IMG_BAD; /* empty, or a NUL inside */
  if (len >= JW_IMAGE_NAME_MAX)
    return IMG_LONG;
  if (strpbrk(s, "\\/:") != NULL)
    return IMG_DIR;
  /* Windows strips a trailing dot or space from a file name: such an
   * entry could never match. */
  if (s[len - 1] == '.' || s[len - 1] == ' ')
    return IMG_BAD;
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    uint32_t cp;
    size_t adv;
    if (c < 0x20 || c == 0x7F || strchr("<>\"|?*", c) != NULL)
      return IMG_BAD;
    adv = utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (adv == 0)
      return IMG_BAD;
    i += adv;
  }
  return IMG_OK;
}

/* The entry kinds of an image list besides plain file names
 * (docs/policy.md, "Image lists"). */
#define IMG_SHA256   "sha256"
#define IMG_ORIGINAL "original_file_name"
#define IMG_SIGNER   "signer"
#define IMG_KINDS    IMG_SHA256 ", " IMG_ORIGINAL ", " IMG_SIGNER

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A signer's subject name: printable UTF-8 (no control or invisible
 * characters, which no certificate name needs and a log would hide). */
static int signer_name_ok(const char *s, size_t len) {
  size_t i = 0;
  if (len == 0 || s[0] == ' ' || s[len - 1] == ' ')
    return 0;
  while (i < len) {
    uint32_t cp;
    size_t adv = utf8_decode((const unsigned char *)s + i, len - i, &cp);
    if (adv == 0 || cp < 0x20 || cp == 0x7F || is_invisible(cp))
      return 0;
    i += adv;
  }
  return 1;
}

/* Checks one image list entry (s, len bytes, from a file or a flag):
 * a file name, or "<kind>:<value>". Returns 0, or fails with a message
 * that names the kind and shows the value. A single letter before a colon
 * is a drive ("c:cmd.exe"), refused like any path. */
static int image_entry_check(const ctx_t *cx, const char *where, const char *s, size_t len) {
  const char *colon = memchr(s, ':', len);
  char shown[SHOWN_SIZE];
  img_result_t why;
  if (colon != NULL && strlen(s) == len) {
    size_t klen = (size_t)(colon - s), vlen = len - klen - 1, i;
    const char *v = colon + 1;
    show_string(shown, v, vlen);
    if (klen == strlen(IMG_SHA256) && memcmp(s, IMG_SHA256, klen) == 0) {
      for (i = 0; i < vlen && is_hex(v[i]); i++)
        ;
      /* A value too long to show whole says how long it was. */
      if (vlen != 64 && vlen > SHOW_MAX)
        return policy_fail(cx, where, IMG_SHA256 ": expected 64 hex digits, got %lu characters %s",
                           (unsigned long)vlen, shown);
      if (vlen != 64 || i != vlen)
        return policy_fail(cx, where, IMG_SHA256 ": expected 64 hex digits, got %s", shown);
      return 0;
    }
    if (klen == strlen(IMG_ORIGINAL) && memcmp(s, IMG_ORIGINAL, klen) == 0) {
      why = image_name_check(v, vlen);
      if (why == IMG_OK && len >= JW_IMAGE_NAME_MAX)
        why = IMG_LONG;
      if (why == IMG_LONG)
        return policy_fail(cx, where,
                           IMG_ORIGINAL ": expected an entry of at most %d bytes, got %s",
                           JW_IMAGE_NAME_MAX - 1, shown);
      if (why != IMG_OK)
        return policy_fail(cx, where, IMG_ORIGINAL ": expected %s, got %s",
                           image_expected_text(why), shown);
      return 0;
    }
    if (klen == strlen(IMG_SIGNER) && memcmp(s, IMG_SIGNER, klen) == 0) {
      if (len >= JW_IMAGE_NAME_MAX)
        return policy_fail(cx, where, IMG_SIGNER ": expected an entry of at most %d bytes, got %s",
                           JW_IMAGE_NAME_MAX - 1, shown);
      if (!signer_name_ok(v, vlen))
        return policy_fail(cx, where,
                           IMG_SIGNER ": expected a signer's subject name like \"Microsoft "
                                      "Corporation\", got %s",
                           shown);
      return 0;
    }
    if (klen >= 2) {
      for (i = 0; i < klen && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                               (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-');
           i++)
        ;
      if (i == klen) {
        show_string(shown, s, klen);
        return policy_fail(cx, where, "unknown entry kind %s (known: " IMG_KINDS ")", shown);
      }
    }
  }
  why = image_name_check(s, len);
  if (why != IMG_OK) {
    show_string(shown, s, len);
    return policy_fail(cx, where, "expected %s, got %s", image_expected_text(why), shown);
  }
  return 0;
}

/* Appends a checked name to f's list. Returns 0, or -1 when the list is
 * full. */
static int image_append(jw_policy_t *p, const jw_policy_field_t *f, const char *s, size_t len) {
  int *n = count_of(p, f);
  char(*list)[JW_IMAGE_NAME_MAX] = slot(p, f->offset);
  if (*n >= JW_POLICY_MAX_IMAGES)
    return -1;
  memcpy(list[*n], s, len);
  list[*n][len] = '\0';
  /* A hash is kept in the form images report it: lowercase. */
  if (strncmp(list[*n], IMG_SHA256 ":", strlen(IMG_SHA256) + 1) == 0) {
    char *c;
    for (c = list[*n] + strlen(IMG_SHA256) + 1; *c; c++)
      *c = ascii_lower(*c);
  }
  (*n)++;
  p->set |= f->bit;
  return 0;
}

/* A tag as the events carry it: [a-z][a-z0-9_.]{0,62}. */
static int tag_is_valid(const char *s, size_t len) {
  size_t i;
  if (len == 0 || len >= JW_TAG_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
    return 0;
  for (i = 1; i < len; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
          s[i] == '.'))
      return 0;
  return 1;
}

static int tag_append(const ctx_t *cx, const char *where, jw_policy_t *p,
                      const jw_policy_field_t *f, const char *s, size_t len) {
  int *n = count_of(p, f);
  char(*tags)[JW_TAG_MAX] = slot(p, f->offset);
  if (!tag_is_valid(s, len))
    return fail_text(cx, where, expected_text(JW_PF_TAGS, VAL_BAD, 1), s);
  if (*n >= JW_RULE_TAGS_POLICY_MAX)
    return policy_fail(cx, where, "expected at most %d tags per rule, got one more: %s",
                       JW_RULE_TAGS_POLICY_MAX, s);
  memcpy(tags[*n], s, len);
  tags[*n][len] = '\0';
  (*n)++;
  p->set |= f->bit;
  return 0;
}

/* A text field (a name, a key file's path), checked to fit; a key file
 * also sets its selector. */
static void store_text(jw_policy_t *p, const jw_policy_field_t *f, const char *s, size_t len) {
  char *text = slot(p, f->offset);
  memcpy(text, s, len);
  text[len] = '\0';
  if (f->type == JW_PF_KEY_FILE)
    *count_of(p, f) = f->arg;
  p->set |= f->bit;
}

/* A size, duration or count given as text (a JSON string or a flag). */
static val_result_t quantity_from_text(jw_policy_type_t kind, const char *text, uint64_t *out) {
  if (kind == JW_PF_INTERVAL) {
    /* An interval is switched off, not made unlimited. */
    if (strcmp(text, "off") == 0) {
      *out = 0;
      return VAL_OK;
    }
    return strcmp(text, "unlimited") == 0 ? VAL_BAD : duration_from_text(text, out);
  }
  if (strcmp(text, "unlimited") == 0) {
    *out = 0;
    return VAL_OK;
  }
  if (kind == JW_PF_SIZE)
    return size_from_text(text, out);
  if (kind == JW_PF_DURATION)
    return duration_from_text(text, out);
  return count_from_text(text, kind == JW_PF_TOTAL ? TOTAL_PROCESSES_MAX : ACTIVE_PROCESSES_MAX,
                         out);
}

/* ------------------------------------------------------------------------ */
/* Values from JSON                                                         */
/* ------------------------------------------------------------------------ */

static int ui_from_json(const ctx_t *cx, const jw_policy_field_t *f, const char *where,
                        const json_t *v, jw_policy_t *p) {
  uint32_t bits = 0, bit;
  size_t i;
  if (json_is_string(v) && strcmp(json_string_value(v), "all") == 0) {
    store(p, f, JW_UI_ALL);
    return 0;
  }
  if (json_is_string(v) && strcmp(json_string_value(v), "none") == 0) {
    store(p, f, 0);
    return 0;
  }
  if (!json_is_array(v))
    return fail_json(cx, where, expected_text(JW_PF_UI, VAL_BAD, 0), v);
  for (i = 0; i < json_array_size(v); i++) {
    const json_t *item = json_array_get(v, i);
    char item_where[64];
    snprintf(item_where, sizeof item_where, "%s[%lu]", where, (unsigned long)i);
    if (!json_is_string(item) || !ui_bit(json_string_value(item), json_string_length(item), &bit))
      return fail_json(cx, item_where, "one of " UI_NAME_LIST, item);
    if (bits & bit) {
      char shown[SHOWN_SIZE];
      show_json(shown, item);
      return policy_fail(cx, item_where, "expected each restriction once, got %s twice", shown);
    }
    bits |= bit;
  }
  store(p, f, bits);
  return 0;
}

/* An image list of the file ("deny" or "allow"): an array of names that
 * replaces the list built so far. */
static int images_from_json(const ctx_t *cx, const jw_policy_field_t *f, const char *where,
                            const json_t *v, jw_policy_t *p) {
  size_t i;
  if (!json_is_array(v))
    return fail_json(cx, where, "an array of file names like [\"cmd.exe\"]", v);
  if (json_array_size(v) > JW_POLICY_MAX_IMAGES)
    return policy_fail(cx, where, "expected at most %d file names, got %lu", JW_POLICY_MAX_IMAGES,
                       (unsigned long)json_array_size(v));
  *count_of(p, f) = 0;
  for (i = 0; i < json_array_size(v); i++) {
    const json_t *item = json_array_get(v, i);
    char item_where[96];
    snprintf(item_where, sizeof item_where, "%s[%lu]", where, (unsigned long)i);
    if (!json_is_string(item))
      return fail_json(cx, item_where, image_expected_text(IMG_BAD), item);
    if (image_entry_check(cx, item_where, json_string_value(item), json_string_length(item)) != 0)
      return JW_EPOLICY;
    image_append(p, f, json_string_value(item), json_string_length(item));
  }
  p->set |= f->bit;
  return 0;
}

static int field_from_json(const ctx_t *cx, const jw_policy_field_t *f, const char *where,
                           const json_t *v, jw_policy_t *p) {
  uint64_t q = 0;
  val_result_t why = VAL_BAD;
  jw_tier_t tier;
  switch (f->type) {
  case JW_PF_COUNT:
  case JW_PF_TOTAL:
  case JW_PF_SIZE:
  case JW_PF_DURATION:
  case JW_PF_INTERVAL:
    if (json_is_string(v)) {
      const char *s = json_string_value(v);
      /* In a file a count is a JSON integer; its only string is
       * "unlimited". */
      if ((f->type != JW_PF_COUNT && f->type != JW_PF_TOTAL) || strcmp(s, "unlimited") == 0)
        why = quantity_from_text(f->type, s, &q);
    } else if (json_is_integer(v) && f->type != JW_PF_DURATION && f->type != JW_PF_INTERVAL) {
      /* A bare number of milliseconds is too easily read as seconds, so
       * durations must carry a unit; sizes and counts need none. */
      json_int_t i = json_integer_value(v);
      if ((f->type == JW_PF_COUNT && i > (json_int_t)ACTIVE_PROCESSES_MAX) ||
          (f->type == JW_PF_TOTAL && i > (json_int_t)TOTAL_PROCESSES_MAX))
        why = VAL_RANGE;
      else
        why = i < 0 ? VAL_BAD : i == 0 ? VAL_ZERO : VAL_OK;
      q = (uint64_t)i;
    }
    if (why != VAL_OK)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, q);
    return 0;
  case JW_PF_BOOL:
    if (!json_is_boolean(v))
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, json_is_true(v));
    return 0;
  case JW_PF_TIER:
    if (!json_is_string(v) || jw_tier_parse(json_string_value(v), &tier) != 0)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, (uint64_t)tier);
    return 0;
  case JW_PF_TOKEN: {
    jw_token_mode_t mode;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        jw_token_mode_parse(json_string_value(v), &mode) != 0)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, (uint64_t)mode);
    return 0;
  }
  case JW_PF_HASH_CAP:
    /* A size like the limits' ("256M", or integer bytes), but a cap has
     * no "unlimited": hashing every image whatever its size would let one
     * huge file keep the identity worker busy for the whole run. */
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
      why = size_from_text(json_string_value(v), &q);
    else if (json_is_integer(v))
      why = json_integer_value(v) < 0 ? VAL_BAD : json_integer_value(v) == 0 ? VAL_ZERO : VAL_OK;
    if (why == VAL_OK && json_is_integer(v))
      q = (uint64_t)json_integer_value(v);
    if (why != VAL_OK)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, q);
    return 0;
  case JW_PF_KEY_FILE:
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) >= JW_POLICY_PATH_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store_text(p, f, json_string_value(v), json_string_length(v));
    return 0;
  case JW_PF_NAME:
    if (!json_is_string(v) || !name_is_valid(json_string_value(v), json_string_length(v)))
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store_text(p, f, json_string_value(v), json_string_length(v));
    return 0;
  case JW_PF_UI:
    return ui_from_json(cx, f, where, v, p);
  case JW_PF_ACTION: {
    jw_rule_action_t a = JW_ACTION_DEFAULT;
    if (json_is_string(v))
      a = action_parse(json_string_value(v), json_string_length(v));
    if (a == JW_ACTION_DEFAULT)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, (uint64_t)a);
    return 0;
  }
  case JW_PF_IMAGE:
    return images_from_json(cx, f, where, v, p);
  case JW_PF_TAGS: {
    size_t i;
    if (!json_is_array(v))
      return fail_json(cx, where, "an array of tags like [\"attack.t1059\"]", v);
    *count_of(p, f) = 0;
    for (i = 0; i < json_array_size(v); i++) {
      const json_t *item = json_array_get(v, i);
      char item_where[96];
      snprintf(item_where, sizeof item_where, "%s[%lu]", where, (unsigned long)i);
      if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item))
        return fail_json(cx, item_where, expected_text(JW_PF_TAGS, VAL_BAD, 0), item);
      if (tag_append(cx, item_where, p, f, json_string_value(item), json_string_length(item)) != 0)
        return JW_EPOLICY;
    }
    p->set |= f->bit;
    return 0;
  }
  case JW_PF_MARGIN: {
    uint32_t bp = 0;
    /* A string, or the integer 0 (off): any other number is ambiguous. */
    if (json_is_string(v))
      why = margin_from_text(json_string_value(v), &bp);
    else if (json_is_integer(v) && json_integer_value(v) == 0)
      why = VAL_OK;
    if (why != VAL_OK)
      return fail_json(cx, where, expected_text(f->type, why, 0), v);
    store(p, f, bp);
    return 0;
  }
  }
  return fail_json(cx, where, "a valid value", v);
}

/* "a, b or c" from "a, b, c" (in place; at most one list at a time). */
static const char *or_list(char *list) {
  char *last = strrchr(list, ',');
  if (last != NULL) {
    memmove(last + 3, last + 1, strlen(last + 1) + 1);
    memcpy(last, " or", 3);
  }
  return list;
}

/* An object of the file whose keys are rows under `prefix` ("limits",
 * "rules.images", "seal"): each key read into its row. ONE_OF: exactly
 * one key. */
static int object_from_json(const ctx_t *cx, const char *prefix, const char *expected, int one_of,
                            json_t *obj, jw_policy_t *p) {
  const char *key;
  json_t *v;
  char where[128], known[256];
  int n = 0;
  if (!json_is_object(obj))
    return fail_json(cx, prefix, expected, obj);
  json_object_foreach(obj, key, v) {
    const jw_policy_field_t *f = field_at(prefix, strlen(prefix), key);
    if (f == NULL) {
      char dotted[96];
      snprintf(dotted, sizeof dotted, "%s.", prefix);
      show_key(where, sizeof where, dotted, key);
      keys_under(prefix, known, sizeof known);
      return policy_fail(cx, where, "unknown key (known: %s)", known);
    }
    if (one_of && ++n > 1) {
      keys_under(prefix, known, sizeof known);
      return policy_fail(cx, f->path, "give %s, not both", or_list(known));
    }
    if (field_from_json(cx, f, f->path, v, p) != 0)
      return JW_EPOLICY;
  }
  if (one_of && n == 0) {
    keys_under(prefix, known, sizeof known);
    return policy_fail(cx, prefix, "expected %s", or_list(known));
  }
  return 0;
}

/* "rules": one object per rule. */
static int rules_from_json(const ctx_t *cx, const char *expected, json_t *rules, jw_policy_t *p) {
  const char *key;
  json_t *v;
  if (!json_is_object(rules))
    return fail_json(cx, "rules", expected, rules);
  json_object_foreach(rules, key, v) {
    const char *rule;
    char prefix[96], known[256] = "";
    size_t i, len;
    int found = 0;
    for (i = 0; rule_name(i, &rule, &len); i++) {
      if (strlen(key) == len && memcmp(key, rule, len) == 0)
        found = 1;
      list_add(known, sizeof known, rule, len);
    }
    if (!found) {
      char where[128];
      show_key(where, sizeof where, "rules.", key);
      return policy_fail(cx, where, "unknown key (known: %s)", known);
    }
    snprintf(prefix, sizeof prefix, "rules.%s", key);
    if (object_from_json(cx, prefix, "an object", 0, v, p) != 0)
      return JW_EPOLICY;
  }
  return 0;
}

/* "exporters": an array of SPECs, each checked now (nothing is opened). */
static int exporters_from_json(const ctx_t *cx, json_t *v, jw_policy_t *p) {
  size_t i;
  json_t *item;
  if (!json_is_array(v))
    return fail_json(cx, "exporters", "an array of exporter specs like \"file:events.jsonl\"", v);
  if (json_array_size(v) > JW_POLICY_MAX_EXPORTERS)
    return policy_fail(cx, "exporters", "at most %d exporters, got %lu", JW_POLICY_MAX_EXPORTERS,
                       (unsigned long)json_array_size(v));
  p->n_exporters = 0;
  json_array_foreach(v, i, item) {
    char where[32];
    jw_error_t e;
    snprintf(where, sizeof where, "exporters[%lu]", (unsigned long)i);
    if (!json_is_string(item))
      return fail_json(cx, where, "an exporter spec string", item);
    if (json_string_length(item) >= JW_EXPORTER_SPEC_MAX ||
        strlen(json_string_value(item)) != json_string_length(item))
      return policy_fail(cx, where, "expected a spec shorter than %d bytes without NUL",
                         JW_EXPORTER_SPEC_MAX);
    memset(&e, 0, sizeof e);
    if (jw_exporter_check(json_string_value(item), where, &e) != 0) {
      /* e.text starts with `where` (then ": " or " SPEC: "): reword it in
       * the policy's "origin: where: text" form. */
      const char *rest = e.text;
      if (strncmp(rest, where, strlen(where)) == 0) {
        rest += strlen(where);
        rest += rest[0] == ':' ? 1 : 0;
        rest += rest[0] == ' ' ? 1 : 0;
      }
      return policy_fail(cx, where, "%s", rest);
    }
    memcpy(p->exporters[p->n_exporters], json_string_value(item), json_string_length(item) + 1);
    p->n_exporters++;
  }
  p->set |= JW_SET_EXPORTERS;
  return 0;
}

static int policy_from_json(const ctx_t *cx, json_t *root, jw_policy_t *p) {
  const char *key;
  json_t *v;
  /* The version decides what every other key means, so it is checked
   * first wherever it appears in the document. */
  v = json_object_get(root, "version");
  if (v != NULL && !(json_is_integer(v) && json_integer_value(v) == 1))
    return fail_json(cx, "version", "1", v);
  json_object_foreach(root, key, v) {
    size_t i;
    int rc = 0;
    for (i = 0; i < TOP_KEY_COUNT && strcmp(top_keys[i].name, key) != 0; i++)
      ;
    if (i == TOP_KEY_COUNT) {
      char where[128], known[400] = "";
      show_key(where, sizeof where, "", key);
      for (i = 0; i < TOP_KEY_COUNT; i++)
        list_add(known, sizeof known, top_keys[i].name, strlen(top_keys[i].name));
      return policy_fail(cx, where, "unknown key (known: %s)", known);
    }
    switch (top_keys[i].kind) {
    case TOP_VERSION:
      break;
    case TOP_FIELD: {
      const jw_policy_field_t *f = field_at(key, strlen(key), NULL);
      rc = f != NULL ? field_from_json(cx, f, f->path, v, p) : JW_EPOLICY;
      break;
    }
    case TOP_OBJECT:
    case TOP_ONE_OF:
      rc = object_from_json(cx, key, top_keys[i].expected, top_keys[i].kind == TOP_ONE_OF, v, p);
      break;
    case TOP_RULES:
      rc = rules_from_json(cx, top_keys[i].expected, v, p);
      break;
    case TOP_EXPORTERS:
      rc = exporters_from_json(cx, v, p);
      break;
    }
    if (rc != 0)
      return JW_EPOLICY;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Public: parsing                                                          */
/* ------------------------------------------------------------------------ */

void jw_policy_init(jw_policy_t *policy) {
  memset(policy, 0, sizeof *policy);
  policy->tier = JW_TIER_NONE;
}

int jw_policy_parse(jw_policy_t *policy, const char *json, size_t len, const char *origin,
                    jw_error_t *err) {
  const unsigned char *u = (const unsigned char *)json;
  ctx_t cx;
  json_error_t jerr;
  json_t *root;
  jw_policy_t work;
  int rc;

  if (policy == NULL || (json == NULL && len > 0))
    return jw_error_set(err, JW_EINVAL, 0, "", "jw_policy_parse: NULL argument");
  ctx_init(&cx, origin, err);

  /* Windows editors and shells write byte order marks: a UTF-8 one is
   * harmless and skipped; UTF-16 (PowerShell 5's "> file") gets a clear
   * message instead of a puzzling syntax error. */
  if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
    json += 3;
    len -= 3;
  } else if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF))) {
    return policy_fail(&cx, "", "the policy is UTF-16 text; save it as UTF-8");
  }

  root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if (root == NULL) {
    char text[sizeof jerr.text + 8];
    if (escape_text(text, sizeof text, jerr.text, strlen(jerr.text), sizeof text - 4, 0))
      strcat(text, "...");
    if (cx.has_origin)
      return jw_error_set(err, JW_EPOLICY, 0, "", "%s:%d:%d: invalid JSON: %s", cx.origin,
                          jerr.line, jerr.column, text);
    return jw_error_set(err, JW_EPOLICY, 0, "", "line %d, column %d: invalid JSON: %s", jerr.line,
                        jerr.column, text);
  }
  if (!json_is_object(root)) {
    rc = fail_json(&cx, "", "a JSON object", root);
    json_decref(root);
    return rc;
  }
  work = *policy;
  rc = policy_from_json(&cx, root, &work);
  if (rc == 0)
    *policy = work;
  json_decref(root);
  return rc;
}

/* Opens a file for reading by its UTF-8 name. On Windows the narrow fopen
 * would read the name in the ANSI code page, so the name is converted. */
static FILE *open_utf8(const char *path) {
#ifdef _WIN32
  FILE *f;
  wchar_t *wpath;
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
  if (n <= 0) {
    errno = EILSEQ;
    return NULL;
  }
  wpath = malloc((size_t)n * sizeof *wpath);
  if (wpath == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, n);
  f = _wfopen(wpath, L"rb");
  free(wpath);
  return f;
#else
  return fopen(path, "rb");
#endif
}

int jw_policy_parse_file(jw_policy_t *policy, const char *path, jw_error_t *err) {
  FILE *f = NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  ctx_t cx;
  int rc;

  if (policy == NULL || path == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "", "jw_policy_parse_file: NULL argument");
  ctx_init(&cx, path, err);
  f = open_utf8(path);
  if (f == NULL) {
    int e = errno;
    rc = jw_error_set(err, e == ENOENT ? JW_ENOENT : JW_EIO, (uint32_t)e, "",
                      "%s: cannot open the policy file: %s", cx.origin, strerror(e));
    goto done;
  }
  /* Read to the end rather than trusting a size from fseek/ftell: the
   * "file" may be a pipe, and it may grow while it is read. */
  for (;;) {
    size_t n;
    if (len == cap) {
      size_t ncap = cap ? cap * 2 : 4096;
      char *nbuf;
      if (ncap > (size_t)POLICY_FILE_MAX + 1)
        ncap = (size_t)POLICY_FILE_MAX + 1;
      nbuf = realloc(buf, ncap);
      if (nbuf == NULL) {
        rc = jw_error_set(err, JW_ENOMEM, 0, "", "%s: out of memory", cx.origin);
        goto done;
      }
      buf = nbuf;
      cap = ncap;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (len > POLICY_FILE_MAX) {
      rc = policy_fail(&cx, "",
                       "the policy file is larger than 1 MiB (1048576 "
                       "bytes); a policy is a few hundred bytes");
      goto done;
    }
    if (n == 0) {
      if (ferror(f)) {
        int e = errno;
        rc = jw_error_set(err, JW_EIO, (uint32_t)e, "", "%s: cannot read the policy file: %s",
                          cx.origin, strerror(e));
        goto done;
      }
      break;
    }
  }
  rc = jw_policy_parse(policy, buf, len, path, err);
done:
  free(buf);
  if (f != NULL)
    fclose(f);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Public: command-line values                                              */
/* ------------------------------------------------------------------------ */

static int bool_from_text(const char *text, int *out) {
  static const char *const yes[] = {"true", "yes", "1", "on"};
  static const char *const no[] = {"false", "no", "0", "off"};
  size_t i;
  for (i = 0; i < 4; i++) {
    if (strcmp(text, yes[i]) == 0) {
      *out = 1;
      return 1;
    }
    if (strcmp(text, no[i]) == 0) {
      *out = 0;
      return 1;
    }
  }
  return 0;
}

/* "all", "none" or "handles,desktop"; spaces around a name are allowed
 * because "handles, desktop" is what people type. */
static int ui_from_text(const ctx_t *cx, const jw_policy_field_t *f, const char *where,
                        const char *text, jw_policy_t *p) {
  uint32_t bits = 0, bit;
  const char *s = text;
  if (strcmp(text, "all") == 0) {
    store(p, f, JW_UI_ALL);
    return 0;
  }
  if (strcmp(text, "none") == 0) {
    store(p, f, 0);
    return 0;
  }
  for (;;) {
    const char *end = strchr(s, ',');
    size_t len;
    char shown[SHOWN_SIZE];
    if (end == NULL)
      end = s + strlen(s);
    while (*s == ' ')
      s++;
    len = (size_t)(end - s);
    while (len > 0 && s[len - 1] == ' ')
      len--;
    show_string(shown, s, len);
    if (!ui_bit(s, len, &bit))
      return policy_fail(cx, where,
                         "expected \"all\", \"none\" or a comma-separated "
                         "list of " UI_NAME_LIST ", got %s",
                         shown);
    if (bits & bit)
      return policy_fail(cx, where, "expected each restriction once, got %s twice", shown);
    bits |= bit;
    if (*end == '\0')
      break;
    s = end + 1;
  }
  store(p, f, bits);
  return 0;
}

static int field_from_text(const ctx_t *cx, const jw_policy_field_t *f, const char *where,
                           const char *text, jw_policy_t *p) {
  uint64_t q = 0;
  val_result_t why;
  jw_tier_t tier;
  int b;
  switch (f->type) {
  case JW_PF_COUNT:
  case JW_PF_TOTAL:
  case JW_PF_SIZE:
  case JW_PF_DURATION:
  case JW_PF_INTERVAL:
    why = quantity_from_text(f->type, text, &q);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->type, why, 1), text);
    store(p, f, q);
    return 0;
  case JW_PF_BOOL:
    if (!bool_from_text(text, &b))
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store(p, f, (uint64_t)b);
    return 0;
  case JW_PF_TIER:
    if (jw_tier_parse(text, &tier) != 0)
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store(p, f, (uint64_t)tier);
    return 0;
  case JW_PF_TOKEN: {
    jw_token_mode_t mode;
    if (jw_token_mode_parse(text, &mode) != 0)
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store(p, f, (uint64_t)mode);
    return 0;
  }
  case JW_PF_HASH_CAP:
    why = size_from_text(text, &q);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->type, why, 1), text);
    store(p, f, q);
    return 0;
  case JW_PF_KEY_FILE:
    if (text[0] == '\0' || strlen(text) >= JW_POLICY_PATH_MAX)
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store_text(p, f, text, strlen(text));
    return 0;
  case JW_PF_NAME:
    if (!name_is_valid(text, strlen(text)))
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store_text(p, f, text, strlen(text));
    return 0;
  case JW_PF_UI:
    return ui_from_text(cx, f, where, text, p);
  case JW_PF_ACTION: {
    jw_rule_action_t a = action_parse(text, strlen(text));
    if (a == JW_ACTION_DEFAULT)
      return fail_text(cx, where, expected_text(f->type, VAL_BAD, 1), text);
    store(p, f, (uint64_t)a);
    return 0;
  }
  case JW_PF_TAGS:
    return tag_append(cx, where, p, f, text, strlen(text));
  case JW_PF_IMAGE: {
    if (image_entry_check(cx, where, text, strlen(text)) != 0)
      return JW_EPOLICY;
    if (image_append(p, f, text, strlen(text)) != 0) {
      char shown[SHOWN_SIZE];
      show_string(shown, text, strlen(text));
      return policy_fail(cx, where, "expected at most %d file names, got one more: %s",
                         JW_POLICY_MAX_IMAGES, shown);
    }
    return 0;
  }
  case JW_PF_MARGIN: {
    uint32_t bp = 0;
    why = margin_from_text(text, &bp);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->type, why, 1), text);
    store(p, f, bp);
    return 0;
  }
  }
  return fail_text(cx, where, "a valid value", text);
}

int jw_policy_set(jw_policy_t *policy, const char *key, const char *value, const char *where,
                  jw_error_t *err) {
  const jw_policy_field_t *f;
  ctx_t cx;
  jw_policy_t work;
  int rc;
  if (policy == NULL || key == NULL || value == NULL)
    return jw_error_set(err, JW_EINVAL, 0, where ? where : "", "jw_policy_set: NULL argument");
  if (where == NULL)
    where = key;
  f = field_by_key(key);
  if (f == NULL) {
    char shown[SHOWN_SIZE], known[800] = "";
    size_t i;
    show_string(shown, key, strlen(key));
    for (i = 0; i < FIELD_COUNT; i++)
      list_add(known, sizeof known, fields[i].key, strlen(fields[i].key));
    return jw_error_set(err, JW_EINVAL, 0, where, "%s: unknown policy key %s (known: %s)", where,
                        shown, known);
  }
  ctx_init(&cx, NULL, err);
  work = *policy;
  rc = field_from_text(&cx, f, where, value, &work);
  if (rc == 0)
    *policy = work;
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Public: tiers and rendering                                              */
/* ------------------------------------------------------------------------ */

/* Whether nothing chose f's value: an action still JW_ACTION_DEFAULT (what
 * jw_policy_init leaves), any other field not marked set. */
static int is_unset(const jw_policy_t *p, const jw_policy_field_t *f) {
  if (f->type == JW_PF_ACTION)
    return get_uint(p, f) == JW_ACTION_DEFAULT;
  return !(p->set & f->bit);
}

/* Puts f's default in p's tier into f's storage; p->set and the other
 * fields do not change. The default is read as a flag would be (unit.policy
 * checks that every row's defaults read). */
static void put_default(jw_policy_t *p, const jw_policy_field_t *f) {
  const char *text = NULL;
  uint32_t set = p->set;
  ctx_t cx;
  if ((unsigned)p->tier < sizeof f->tier_default / sizeof f->tier_default[0])
    text = f->tier_default[p->tier];
  if (text == NULL)
    return;
  ctx_init(&cx, NULL, NULL);
  field_from_text(&cx, f, f->key, text, p);
  p->set = set;
}

void jw_policy_resolve(const jw_policy_t *in, jw_policy_t *out) {
  size_t i;
  if (out != in)
    *out = *in;
  for (i = 0; i < FIELD_COUNT; i++)
    if (is_unset(out, &fields[i]))
      put_default(out, &fields[i]);
}

/* Sizes as integer bytes (a string of digits above what a JSON integer
 * holds in jansson), durations as "<N>ms": both parse back exactly. */
static json_t *size_to_json(uint64_t v) {
  char buf[24];
  if (v == 0)
    return json_string("unlimited");
  if (v <= (uint64_t)INT64_MAX)
    return json_integer((json_int_t)v);
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  return json_string(buf);
}

static json_t *duration_to_json(uint64_t ms) {
  char buf[32];
  if (ms == 0)
    return json_string("unlimited");
  snprintf(buf, sizeof buf, "%llums", (unsigned long long)ms);
  return json_string(buf);
}

static json_t *interval_to_json(uint64_t ms) {
  char buf[32];
  if (ms == 0)
    return json_string("off");
  snprintf(buf, sizeof buf, "%llums", (unsigned long long)ms);
  return json_string(buf);
}

/* An array of n strings of `width` bytes each at list (new reference). */
static json_t *strings_to_json(const char *list, size_t width, int n, int max) {
  json_t *arr = json_array();
  int i;
  for (i = 0; arr != NULL && i < n && i < max; i++) {
    if (json_array_append_new(arr, json_string(list + (size_t)i * width)) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static int is_list(const jw_policy_field_t *f) {
  return f->type == JW_PF_IMAGE || f->type == JW_PF_TAGS;
}

/* f's value in p, in the file's form (new reference; NULL without
 * memory). */
static json_t *field_to_json(const jw_policy_t *p, const jw_policy_field_t *f) {
  const char *at = (const char *)p + f->offset;
  int n = is_list(f) ? *(const int *)(const void *)((const char *)p + f->count) : 0;
  uint64_t v = f->size <= sizeof(uint64_t) ? get_uint(p, f) : 0; /* scalars: 4 or 8 bytes */
  switch (f->type) {
  case JW_PF_NAME:
  case JW_PF_KEY_FILE:
    return json_string(at);
  case JW_PF_TIER:
    return json_string(jw_tier_name((jw_tier_t)v));
  case JW_PF_COUNT:
  case JW_PF_TOTAL:
    return v ? json_integer((json_int_t)v) : json_string("unlimited");
  case JW_PF_SIZE:
  case JW_PF_HASH_CAP:
    return size_to_json(v);
  case JW_PF_DURATION:
    return duration_to_json(v);
  case JW_PF_INTERVAL:
    return interval_to_json(v);
  case JW_PF_MARGIN: {
    char margin[16];
    margin_to_text((uint32_t)v, margin, sizeof margin);
    return json_string(margin);
  }
  case JW_PF_UI: {
    json_t *ui = json_array();
    size_t i;
    for (i = 0; ui != NULL && i < UI_NAME_COUNT; i++)
      if ((v & ui_names[i].bit) && json_array_append_new(ui, json_string(ui_names[i].name)) != 0) {
        json_decref(ui);
        return NULL;
      }
    return ui;
  }
  case JW_PF_BOOL:
    return json_boolean(v);
  case JW_PF_TOKEN:
    return json_string(jw_token_mode_name((jw_token_mode_t)v));
  case JW_PF_ACTION:
    return json_string(jw_rule_action_name((jw_rule_action_t)v));
  case JW_PF_IMAGE:
    return strings_to_json(at, JW_IMAGE_NAME_MAX, n, JW_POLICY_MAX_IMAGES);
  case JW_PF_TAGS:
    return strings_to_json(at, JW_TAG_MAX, n, JW_RULE_TAGS_POLICY_MAX);
  }
  return NULL;
}

/* Whether rendering writes f (see jw_policy_shown_t). */
static int is_shown(const jw_policy_t *p, const jw_policy_field_t *f) {
  const char *at = (const char *)p + f->offset;
  switch (f->shown) {
  case JW_PF_SHOWN_ALWAYS:
    return 1;
  case JW_PF_SHOWN_IF_NOT_EMPTY:
    /* An empty name means "use the default" and is not valid in a file. */
    if (is_list(f))
      return *(const int *)(const void *)((const char *)p + f->count) > 0;
    return memchr(at, '\0', f->size) != NULL && at[0] != '\0';
  case JW_PF_SHOWN_IF_SET:
    if (!(p->set & f->bit))
      return 0;
    return f->type != JW_PF_KEY_FILE ||
           !!*(const int *)(const void *)((const char *)p + f->count) == f->arg;
  case JW_PF_SHOWN_IF_JOB_LIMIT:
    /* Where it matters (a job limit it applies to) or where the policy
     * chose it. */
    return p->job_memory != 0 || p->job_time_ms != 0 || (p->set & f->bit);
  }
  return 1;
}

/* Sets key to f's value in obj when it is shown. Returns 0, -1 without
 * memory. */
static int put_field(json_t *obj, const jw_policy_t *p, const jw_policy_field_t *f,
                     const char *key) {
  if (!is_shown(p, f))
    return 0;
  return json_object_set_new(obj, key, field_to_json(p, f));
}

/* The object of the rows under `prefix` (new reference; NULL without
 * memory). */
static json_t *object_to_json(const jw_policy_t *p, const char *prefix) {
  json_t *obj = json_object();
  size_t plen = strlen(prefix), i;
  for (i = 0; obj != NULL && i < FIELD_COUNT; i++) {
    const char *rest = under(&fields[i], prefix, plen);
    if (rest != NULL && put_field(obj, p, &fields[i], rest) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  return obj;
}

/* Whether a file or a flag set any row under `prefix`. */
static int any_set(const jw_policy_t *p, const char *prefix) {
  size_t plen = strlen(prefix), i;
  for (i = 0; i < FIELD_COUNT; i++)
    if (under(&fields[i], prefix, plen) != NULL && (p->set & fields[i].bit))
      return 1;
  return 0;
}

/* "rules": every rule in full, each key in its row's place. */
static json_t *rules_to_json(const jw_policy_t *p) {
  json_t *rules = json_object();
  const char *rule;
  size_t n, len;
  for (n = 0; rules != NULL && rule_name(n, &rule, &len); n++) {
    char prefix[96];
    snprintf(prefix, sizeof prefix, "rules.%.*s", (int)len, rule);
    if (json_object_set_new(rules, prefix + 6, object_to_json(p, prefix)) != 0) {
      json_decref(rules);
      return NULL;
    }
  }
  return rules;
}

void *jw_policy_to_json(const jw_policy_t *policy) {
  json_t *root = json_object();
  jw_policy_t *p = malloc(sizeof *p);
  size_t i;
  int failed = root == NULL || p == NULL;
  if (!failed) {
    /* The effective value of the rows that show it: the tier's default
     * where nothing chose one. */
    *p = *policy;
    for (i = 0; i < FIELD_COUNT; i++)
      if ((fields[i].flags & JW_PF_EFFECTIVE) && is_unset(p, &fields[i]))
        put_default(p, &fields[i]);
  }
  for (i = 0; !failed && i < TOP_KEY_COUNT; i++) {
    const char *name = top_keys[i].name;
    switch (top_keys[i].kind) {
    case TOP_VERSION:
      failed = json_object_set_new(root, name, json_integer(1)) != 0;
      break;
    case TOP_FIELD: {
      const jw_policy_field_t *f = field_at(name, strlen(name), NULL);
      failed = f == NULL || put_field(root, p, f, name) != 0;
      break;
    }
    case TOP_OBJECT:
    case TOP_ONE_OF:
      /* Rendered when any of its rows is set (limits: always). */
      if (top_keys[i].always_shown || any_set(p, name))
        failed = json_object_set_new(root, name, object_to_json(p, name)) != 0;
      break;
    case TOP_RULES:
      /* When any rule is set (like exporters), each rule in full. */
      if (any_set(p, name))
        failed = json_object_set_new(root, name, rules_to_json(p)) != 0;
      break;
    case TOP_EXPORTERS:
      break; /* last, below */
    }
  }
  if (!failed && p->n_exporters > 0) {
    json_t *ex = json_array();
    int k;
    failed = ex == NULL || json_object_set_new(root, "exporters", ex) != 0;
    for (k = 0; !failed && k < p->n_exporters && k < JW_POLICY_MAX_EXPORTERS; k++)
      failed = json_array_append_new(ex, json_string(p->exporters[k])) != 0;
  }
  free(p);
  if (failed) {
    json_decref(root);
    return NULL;
  }
  return root;
}

const char *jw_tier_name(jw_tier_t tier) {
  if ((unsigned)tier < sizeof tier_names / sizeof tier_names[0])
    return tier_names[tier];
  return "unknown";
}

const char *jw_token_mode_name(jw_token_mode_t mode) {
  if ((unsigned)mode < sizeof token_names / sizeof token_names[0])
    return token_names[mode];
  return "unknown";
}

int jw_token_mode_parse(const char *text, jw_token_mode_t *out) {
  size_t i;
  if (text == NULL || out == NULL)
    return JW_EINVAL;
  for (i = 0; i < sizeof token_names / sizeof token_names[0]; i++) {
    if (strcmp(text, token_names[i]) == 0) {
      *out = (jw_token_mode_t)i;
      return 0;
    }
  }
  return JW_EINVAL;
}

const char *jw_rule_action_name(jw_rule_action_t action) {
  if ((unsigned)action < sizeof action_names / sizeof action_names[0])
    return action_names[action];
  return "unknown";
}

int jw_tier_parse(const char *text, jw_tier_t *out) {
  size_t i;
  if (text == NULL || out == NULL)
    return JW_EINVAL;
  for (i = 0; i < sizeof tier_names / sizeof tier_names[0]; i++) {
    if (strcmp(text, tier_names[i]) == 0) {
      *out = (jw_tier_t)i;
      return 0;
    }
  }
  return JW_EINVAL;
}

int jw_parse_size(const char *text, uint64_t *out) {
  uint64_t v;
  if (text == NULL || out == NULL || size_from_text(text, &v) != VAL_OK)
    return JW_EINVAL;
  *out = v;
  return 0;
}

int jw_parse_margin(const char *text, uint32_t *out_bp) {
  uint32_t bp;
  if (text == NULL || out_bp == NULL || margin_from_text(text, &bp) != VAL_OK)
    return JW_EINVAL;
  *out_bp = bp;
  return 0;
}

uint64_t jw_notification_threshold(uint64_t limit, uint32_t margin_bp) {
  uint64_t margin;
  if (limit == 0 || margin_bp == 0 || margin_bp >= JW_NOTIFY_MARGIN_FULL_BP)
    return 0;
  /* limit * bp / 10000 without the product: the quotient part is at most
   * the limit itself, the remainder part below 10^8. Rounded down, so the
   * warning comes no earlier than the margin asks. */
  margin = limit / JW_NOTIFY_MARGIN_FULL_BP * margin_bp +
           limit % JW_NOTIFY_MARGIN_FULL_BP * margin_bp / JW_NOTIFY_MARGIN_FULL_BP;
  if (margin == 0 || margin >= limit)
    return 0;
  return limit - margin;
}

int jw_parse_duration(const char *text, uint64_t *out_ms) {
  uint64_t v;
  if (text == NULL || out_ms == NULL || duration_from_text(text, &v) != VAL_OK)
    return JW_EINVAL;
  *out_ms = v;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Matching an image against a list                                         */
/* ------------------------------------------------------------------------ */

/* A name entry (a plain file name or an original_file_name value) against
 * a name: equal ignoring case, or, for an entry without a dot, equal to
 * the name without its last extension ("cmd" matches cmd.exe; ".exe" is
 * no name with an extension). */
static int image_name_matches(const char *entry, const char *name) {
  size_t elen = strlen(entry), nlen = strlen(name), dot;
  if (jw__name_equal_nocase(name, nlen, entry, elen))
    return 1;
  if (strchr(entry, '.') != NULL || nlen == 0)
    return 0;
  for (dot = nlen - 1; dot > 0 && name[dot] != '.'; dot--)
    ;
  return dot > 0 && jw__name_equal_nocase(name, dot, entry, elen);
}

jw_image_match_t jw__image_list_match(const char (*list)[JW_IMAGE_NAME_MAX], int n,
                                      const jw_image_facts_t *facts, const char **matched) {
  static const char sha[] = IMG_SHA256 ":", orig[] = IMG_ORIGINAL ":", sig[] = IMG_SIGNER ":";
  int i, undecided = 0;
  if (matched != NULL)
    *matched = NULL;
  for (i = 0; i < n && i < JW_POLICY_MAX_IMAGES; i++) {
    const char *e = list[i], *fact, *v;
    int hit;
    if (strncmp(e, sha, sizeof sha - 1) == 0) {
      fact = facts->sha256;
      v = e + sizeof sha - 1;
      hit = fact != NULL && strcmp(fact, v) == 0;
    } else if (strncmp(e, orig, sizeof orig - 1) == 0) {
      fact = facts->original_file_name;
      v = e + sizeof orig - 1;
      hit = fact != NULL && fact[0] != '\0' && image_name_matches(v, fact);
    } else if (strncmp(e, sig, sizeof sig - 1) == 0) {
      fact = facts->signer;
      v = e + sizeof sig - 1;
      hit = fact != NULL && fact[0] != '\0' &&
            jw__name_equal_nocase(fact, strlen(fact), v, strlen(v));
    } else {
      fact = facts->file_name;
      hit = fact != NULL && fact[0] != '\0' && image_name_matches(e, fact);
    }
    if (hit) {
      if (matched != NULL)
        *matched = e;
      return JW_IMAGE_MATCH;
    }
    if (fact == NULL)
      undecided = 1;
  }
  return undecided ? JW_IMAGE_UNDECIDED : JW_IMAGE_NO_MATCH;
}

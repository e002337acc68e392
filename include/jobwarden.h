/*
 * jobwarden — run an untrusted Windows program inside a Job Object and
 * report everything the sandbox sees as JSON Lines events.
 *
 * This is the one public header. Portable parts (errors, policy, events,
 * exit-status decoding, exporter registry) build on every platform; the
 * job, spawn and monitor functions at the end exist in the Windows build only.
 *
 * Conventions: functions return 0 on success or a negative JW_E* code; an
 * optional jw_error_t* receives the details (which field or step, the raw
 * system error, a sentence for humans). Strings are UTF-8.
 */
#ifndef JOBWARDEN_H
#define JOBWARDEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define JW_VERSION "0.2.0"
/* Version of the event schema (docs/events.md, docs/jobwarden-event.schema.json). */
#define JW_SCHEMA_VERSION "2.0.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* One table generates the codes, jw_err_name() and jw_strerror(). */
#define JW_ERRNO_MAP(XX)                                                                           \
  XX(EINVAL, "invalid argument")                                                                   \
  XX(ENOMEM, "out of memory")                                                                      \
  XX(EPOLICY, "invalid policy")                                                                    \
  XX(EUSAGE, "invalid command line")                                                               \
  XX(ENOENT, "no such file or program")                                                            \
  XX(ENOEXEC, "program cannot be executed")                                                        \
  XX(EIO, "input/output error")                                                                    \
  XX(ESYS, "system call failed")                                                                   \
  XX(ETIMEDOUT, "timed out")                                                                       \
  XX(ENOTSUP, "not supported on this platform")                                                    \
  XX(EEXIST, "file exists")                                                                        \
  XX(EBUSY, "in use by another process")

enum jw__errno_index {
  JW__ERRNO_FIRST = 0,
#define XX(code, _) JW__IDX_##code,
  JW_ERRNO_MAP(XX)
#undef XX
      JW__ERRNO_COUNT
};

typedef enum {
  JW_OK = 0,
#define XX(code, _) JW_##code = -JW__IDX_##code,
  JW_ERRNO_MAP(XX)
#undef XX
} jw_errno_t;

/* Details of a failure, filled by the function that failed (like jansson's
 * json_error_t). `where` names the policy field path ("limits.job_memory"),
 * CLI flag ("--job-memory") or spawn step ("CreateProcessW"); `sys_error` is
 * the raw GetLastError()/errno value or 0; `text` is a full sentence. */
typedef struct jw_error_s {
  int code;
  uint32_t sys_error;
  char where[128];
  char text[1024];
} jw_error_t;

/* Name ("JW_EPOLICY") and description of an error code; never NULL. */
const char *jw_err_name(int code);
const char *jw_strerror(int code);
/* Fills err (if not NULL) and returns code. printf-style text. */
int jw_error_set(jw_error_t *err, int code, uint32_t sys_error, const char *where, const char *fmt,
                 ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* Policy                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum {
  JW_TIER_NONE = 0,     /* monitor only */
  JW_TIER_HARDENED = 1, /* kill-on-close, die-on-unhandled-exception, no breakaway */
  JW_TIER_LOCKDOWN = 2  /* hardened + one active process + every UI restriction */
} jw_tier_t;

/* UI restriction bits; the values are those of JOB_OBJECT_UILIMIT_*. */
enum {
  JW_UI_HANDLES = 0x0001,
  JW_UI_READCLIPBOARD = 0x0002,
  JW_UI_WRITECLIPBOARD = 0x0004,
  JW_UI_SYSTEMPARAMETERS = 0x0008,
  JW_UI_DISPLAYSETTINGS = 0x0010,
  JW_UI_GLOBALATOMS = 0x0020,
  JW_UI_DESKTOP = 0x0040,
  JW_UI_EXITWINDOWS = 0x0080,
  JW_UI_ALL = 0x00FF
};

/* Bits of jw_policy_t.set: which fields were given explicitly (by a policy
 * file or a flag). A tier fills in only the fields not set. */
enum {
  JW_SET_ACTIVE_PROCESSES = 1u << 0,
  JW_SET_PROCESS_MEMORY = 1u << 1,
  JW_SET_JOB_MEMORY = 1u << 2,
  JW_SET_PROCESS_TIME = 1u << 3,
  JW_SET_JOB_TIME = 1u << 4,
  JW_SET_UI = 1u << 5,
  JW_SET_KILL_ON_CLOSE = 1u << 6,
  JW_SET_DIE_ON_EXCEPTION = 1u << 7,
  JW_SET_BREAKAWAY = 1u << 8,
  JW_SET_TIER = 1u << 9,
  JW_SET_NAME = 1u << 10,
  JW_SET_EXPORTERS = 1u << 11,
  /* Monitor-enforced rules ("rules" in the policy file). */
  JW_SET_TIMEOUT = 1u << 12,
  JW_SET_TIMEOUT_ACTION = 1u << 13,
  JW_SET_MAX_TOTAL = 1u << 14,
  JW_SET_TOTAL_ACTION = 1u << 15,
  JW_SET_DENY_IMAGES = 1u << 16,
  JW_SET_ALLOW_IMAGES = 1u << 17,
  JW_SET_IMAGE_ACTION = 1u << 18,
  JW_SET_ACTIVE_ACTION = 1u << 19,
  JW_SET_RULES = 0xFFu << 12, /* any of the rule bits */
  /* Warning thresholds below the job's hard limits (limits.notification_margin). */
  JW_SET_NOTIFY_MARGIN = 1u << 20,
  /* Escapes (rules.escape): processes outside the job whose parent is
   * jobwarden or a member (docs/policy.md, "Escapes"). */
  JW_SET_ESCAPE_ACTION = 1u << 21,
  JW_SET_ESCAPE_SCAN = 1u << 22,
  /* The executable identity's hashing cap (rules.images.hash_cap). */
  JW_SET_IMAGE_HASH_CAP = 1u << 23,
  /* The token the program runs with (token). */
  JW_SET_TOKEN = 1u << 26,
  /* Coalescing of repeated violations (rules.coalesce.window). */
  JW_SET_COALESCE = 1u << 27,
  /* A rule's own tags (rules.<rule>.tags). */
  JW_SET_RULE_TAGS = 1u << 28,
  /* Sealing of the run's streams (seal.new_key / seal.existing_key). */
  JW_SET_SEAL = 1u << 29
};

/* The escape scan's interval in the hardened and lockdown tiers when the
 * policy sets none (the monitor's own poll of the members). */
#define JW_ESCAPE_SCAN_DEFAULT_MS 200u
/* The window in which repeats of a violation (same rule, same process or
 * image) are counted instead of written, when the policy sets none
 * (docs/events.md, "Coalesced repeats"). */
#define JW_COALESCE_DEFAULT_MS 10000u
/* Images larger than this many bytes are not hashed nor verified (their
 * hash and signature are named unavailable) when the policy sets no
 * rules.images.hash_cap (docs/policy.md). */
#define JW_IMAGE_HASH_CAP_DEFAULT ((uint64_t)256 << 20)
/* The monitor rules a policy may tag (rules.<rule>.tags), and how many
 * tags each may add, of how many bytes (NUL included). */
enum {
  JW_TAGGED_TIMEOUT = 0,
  JW_TAGGED_TOTAL_PROCESSES,
  JW_TAGGED_IMAGES,
  JW_TAGGED_ACTIVE_PROCESSES,
  JW_TAGGED_ESCAPE,
  JW_TAGGED_RULES
};
#define JW_RULE_TAGS_POLICY_MAX 3
#define JW_TAG_MAX              64

/* The access token the sandboxed program is started with (policy key
 * "token", docs/policy.md). INHERIT: jobwarden's own token. RESTRICTED:
 * CreateRestrictedToken from jobwarden's token, every privilege but
 * SeChangeNotifyPrivilege removed and the powerful groups deny-only.
 * LOW_INTEGRITY: jobwarden's token at Low mandatory integrity
 * (S-1-16-4096). RESTRICTED_LOW: both. */
typedef enum {
  JW_TOKEN_INHERIT = 0,
  JW_TOKEN_RESTRICTED = 1,
  JW_TOKEN_LOW_INTEGRITY = 2,
  JW_TOKEN_RESTRICTED_LOW = 3
} jw_token_mode_t;

/* The notification margin when the policy sets none: 10 % (in basis
 * points, 1/100 of a percent). */
#define JW_NOTIFY_MARGIN_DEFAULT_BP 1000u
/* Basis points in 100 %: a margin is below this. */
#define JW_NOTIFY_MARGIN_FULL_BP 10000u

/* What the monitor does when one of its rules is broken. DEFAULT (0, what
 * jw_policy_init leaves) stands for the rule's own default, which
 * jw_policy_resolve fills in: kill_job for the timeout, kill_process for
 * the total-process cap and the image lists, report for the active-process
 * limit. */
typedef enum {
  JW_ACTION_DEFAULT = 0,
  JW_ACTION_REPORT = 1,       /* emit the violation, change nothing */
  JW_ACTION_KILL_PROCESS = 2, /* TerminateProcess on the offending process */
  JW_ACTION_KILL_JOB = 3      /* TerminateJobObject: every process of the job */
} jw_rule_action_t;

#define JW_POLICY_NAME_MAX      64
#define JW_POLICY_MAX_EXPORTERS 16
#define JW_EXPORTER_SPEC_MAX    512
#define JW_POLICY_MAX_IMAGES    32   /* names per image list */
#define JW_IMAGE_NAME_MAX       256  /* bytes of one name, NUL included */
#define JW_POLICY_PATH_MAX      1024 /* bytes of a file path, NUL included */

/* A policy. Zero means "no limit" for the numeric limits. */
typedef struct jw_policy_s {
  jw_tier_t tier;
  char name[JW_POLICY_NAME_MAX];  /* job name used in events; "" = default */
  uint32_t active_processes;      /* 0 = unlimited */
  uint64_t process_memory;        /* bytes, committed per process; 0 = unlimited */
  uint64_t job_memory;            /* bytes, committed by the whole job */
  uint64_t process_time_ms;       /* user-mode CPU time per process */
  uint64_t job_time_ms;           /* user-mode CPU time of the whole job */
  uint32_t ui_restrictions;       /* JW_UI_* bits */
  int kill_on_close;              /* bool */
  int die_on_unhandled_exception; /* bool */
  int breakaway_ok;               /* bool */
  uint32_t set;                   /* JW_SET_* bits */
  /* SPECs from the policy file's "exporters" array (checked, not opened);
   * --export flags replace them. */
  int n_exporters;
  char exporters[JW_POLICY_MAX_EXPORTERS][JW_EXPORTER_SPEC_MAX];
  /* Rules the monitor enforces itself (docs/policy.md, "Monitor rules"). */
  uint64_t timeout_ms; /* wall-clock time of the run from the root's start; 0 = none */
  jw_rule_action_t timeout_action;
  uint32_t max_total_processes; /* processes over the job's lifetime, root included; 0 = no cap */
  jw_rule_action_t total_processes_action;
  /* File names (UTF-8, no directory) the descendants of the root may not
   * run (deny) / the only ones they may run (allow, when not empty). */
  int n_deny_images;
  char deny_images[JW_POLICY_MAX_IMAGES][JW_IMAGE_NAME_MAX];
  int n_allow_images;
  char allow_images[JW_POLICY_MAX_IMAGES][JW_IMAGE_NAME_MAX];
  jw_rule_action_t image_action;
  /* Bytes: images larger than this are not hashed nor verified (the
   * executable identity's cap, rules.images.hash_cap); jw_policy_resolve
   * puts JW_IMAGE_HASH_CAP_DEFAULT here when not set. */
  uint64_t image_hash_cap;
  /* What the monitor does when a process exceeds limits.active_processes
   * although the kernel let it start (Wine; a limit another job overrides). */
  jw_rule_action_t active_processes_action;
  /* How far below the job's hard limits (job_memory, job_cpu_time) Windows
   * is asked to post a guaranteed warning (JobObjectNotificationLimit-
   * Information), in basis points of the limit (1000 = 10 %); 0 = no
   * warnings. jw_policy_resolve puts JW_NOTIFY_MARGIN_DEFAULT_BP here when
   * the policy does not set it. */
  uint32_t notification_margin_bp;
  /* What the monitor does with an escaped process (default: kill_process
   * in hardened and lockdown, report in none), and how often it looks for
   * escapes while members run (ms; 0 = only when the job's port reports
   * something and at the job's end). */
  jw_rule_action_t escape_action;
  uint64_t escape_scan_ms;
  /* Repeats of a violation within this many ms of the written one are
   * counted into one summary line (0 = every hit is written).
   * jw_policy_resolve puts JW_COALESCE_DEFAULT_MS here when not set. */
  uint64_t coalesce_ms;
  /* Tags the policy adds to the violations of a monitor rule
   * (rules.<rule>.tags), by JW_TAGGED_* rule; each [a-z][a-z0-9_.]*. */
  char rule_tags[JW_TAGGED_RULES][JW_RULE_TAGS_POLICY_MAX][JW_TAG_MAX];
  int n_rule_tags[JW_TAGGED_RULES];
  /* The program's token; jw_policy_resolve fills in the tier's default
   * (restricted_low in lockdown, inherit elsewhere) when not set. */
  jw_token_mode_t token;
  /* Sealing (docs/forensics.md): the key file (UTF-8 path, "" = the run
   * is not sealed), and whether it exists already (made by `jobwarden
   * seal-key new`; 0: the run makes a new key and creates the file,
   * refused when it exists). */
  char seal_key[JW_POLICY_PATH_MAX];
  int seal_key_existing;
} jw_policy_t;

/* A policy with nothing set: tier none, no limits. */
void jw_policy_init(jw_policy_t *policy);

/* Parses a policy document (JSON text, `len` bytes) into `policy`, on top of
 * what it already holds. Unknown keys are errors. On failure err->where is
 * the field path and err->text says what was expected and what was found.
 * `origin` (e.g. the file name) prefixes messages; may be NULL. */
int jw_policy_parse(jw_policy_t *policy, const char *json, size_t len, const char *origin,
                    jw_error_t *err);
/* Reads and parses a policy file. */
int jw_policy_parse_file(jw_policy_t *policy, const char *path, jw_error_t *err);

/* Sets one field from its textual form, as given on the command line:
 * key is a field's key (the `key` of a jw_policy_fields() row:
 * "job_memory", "timeout_action", ...); `where` names the source in
 * errors (e.g. "--job-memory"). The image lists and the tags add one
 * entry; every other key replaces. */
int jw_policy_set(jw_policy_t *policy, const char *key, const char *value, const char *where,
                  jw_error_t *err);

/* The effective policy: the tier's defaults applied to every field not set
 * explicitly, and each rule's default action where none was chosen. `in`
 * and `out` may be the same object. */
void jw_policy_resolve(const jw_policy_t *in, jw_policy_t *out);

/* Renders a (resolved) policy as a JSON object in the policy file format.
 * Returns a new reference (json_t *) as void * so that this header does not
 * require jansson.h; NULL on allocation failure. */
void *jw_policy_to_json(const jw_policy_t *policy);

/* The policy's fields, one row each: everything else about a field (the
 * file's parser and its unknown-key lists, jw_policy_set, the tier
 * defaults jw_policy_resolve fills in, the rendering back to JSON, the
 * run/probe flags and their --help lines) is read from its row
 * (src/policy.c). How a row's value is read, checked and written: */
typedef enum {
  JW_PF_NAME = 0, /* [A-Za-z0-9._-]{1,63} -> char[] */
  JW_PF_TIER,     /* "none" | "hardened" | "lockdown" -> jw_tier_t */
  JW_PF_COUNT,    /* 1..65535 or "unlimited" (0) -> uint32_t */
  JW_PF_TOTAL,    /* 1..4294967295 or "unlimited" (0) -> uint32_t */
  JW_PF_SIZE,     /* "512M" (jw_parse_size) or "unlimited" (0) -> uint64_t bytes */
  JW_PF_DURATION, /* "30s" (jw_parse_duration) or "unlimited" (0) -> uint64_t ms */
  JW_PF_INTERVAL, /* "200ms" or "off" (0) -> uint64_t ms */
  JW_PF_MARGIN,   /* "10%" (jw_parse_margin) or "off" (0) -> uint32_t basis points */
  JW_PF_UI,       /* UI restriction names, "all" or "none" -> uint32_t JW_UI_* */
  JW_PF_BOOL,     /* true / false -> int */
  JW_PF_TOKEN,    /* jw_token_mode_parse -> jw_token_mode_t */
  JW_PF_ACTION,   /* "report" | "kill_process" | "kill_job" -> jw_rule_action_t */
  JW_PF_IMAGE,    /* an image list: entries appended, `count` holds how many */
  JW_PF_HASH_CAP, /* a size of at least 1 byte, no "unlimited" -> uint64_t */
  JW_PF_TAGS,     /* a rule's tags: appended, `count` holds how many */
  JW_PF_KEY_FILE  /* a path -> char[]; the int at `count` is set to `arg` */
} jw_policy_type_t;

/* When a row is written by jw_policy_to_json. */
typedef enum {
  JW_PF_SHOWN_ALWAYS = 0,
  JW_PF_SHOWN_IF_NOT_EMPTY, /* a name or a list that holds something */
  JW_PF_SHOWN_IF_SET,       /* set by the policy (KEY_FILE: and selected by `arg`) */
  JW_PF_SHOWN_IF_JOB_LIMIT  /* set, or a job memory or CPU time limit it applies to */
} jw_policy_shown_t;

/* Row flags. */
enum {
  /* Rendered as the effective value: the tier's default when unset. */
  JW_PF_EFFECTIVE = 1u << 0,
  /* Listed after the other keys of its object in an unknown-key message
   * (where it has always been listed). */
  JW_PF_LISTED_LAST = 1u << 1
};

typedef struct jw_policy_field_s {
  const char *key;       /* jw_policy_set(): "job_memory" */
  const char *path;      /* in the file: "limits.job_memory" */
  const char *flag;      /* run and probe: "--job-memory" (JW_PF_BOOL: and --no-...); NULL: none */
  jw_policy_type_t type; /* how the value is read, checked, stored and rendered */
  size_t offset, size;   /* the value in jw_policy_t */
  size_t count;          /* IMAGE, TAGS: the int count of entries; KEY_FILE: the selector */
  int arg;               /* KEY_FILE: the selector's value */
  uint32_t bit;          /* JW_SET_* marked when a file or a flag sets it */
  /* By jw_tier_t: what jw_policy_resolve fills in when the field is unset
   * (for actions: still JW_ACTION_DEFAULT), as a flag would write it;
   * NULL: the tier leaves the field as it is. */
  const char *tier_default[3];
  jw_policy_shown_t shown;
  unsigned flags;          /* JW_PF_EFFECTIVE, JW_PF_LISTED_LAST */
  const char *placeholder; /* --help: "SIZE|unlimited" (JW_PF_BOOL: none) */
  const char *help;        /* --help: one sentence, wrapped there */
} jw_policy_field_t;

/* The rows, in the order jw_policy_set's unknown-key message lists their
 * keys; *count is set to how many. Never NULL; any thread. */
const jw_policy_field_t *jw_policy_fields(size_t *count);

/* Text forms. jw_tier_name never returns NULL. */
const char *jw_tier_name(jw_tier_t tier);
int jw_tier_parse(const char *text, jw_tier_t *out);
/* "inherit", "restricted", "low_integrity", "restricted_low"; never NULL.
 * jw_token_mode_parse returns 0 or JW_EINVAL. */
const char *jw_token_mode_name(jw_token_mode_t mode);
int jw_token_mode_parse(const char *text, jw_token_mode_t *out);
/* "report", "kill_process", "kill_job" ("default" for JW_ACTION_DEFAULT);
 * never NULL. */
const char *jw_rule_action_name(jw_rule_action_t action);

/* The warning threshold jobwarden sets below a hard limit: `limit` minus
 * `margin_bp` basis points of it, rounded so that the margin is never
 * more than asked (computed without overflow for any 64-bit limit).
 * Returns 0 when no warning applies: no limit, no margin, a margin of
 * 100 % or more, or a margin that rounds to nothing (the threshold would
 * be the limit itself). Any thread. */
uint64_t jw_notification_threshold(uint64_t limit, uint32_t margin_bp);
/* "10%", "2.5%", "0.25%" -> basis points; "off", "0", "0%" -> 0. At most
 * two decimals, below 100 %. Returns 0 or JW_EINVAL. */
int jw_parse_margin(const char *text, uint32_t *out_bp);

/* "512M", "1G", "64KiB", "1048576" -> bytes. Returns 0 or JW_EINVAL. */
int jw_parse_size(const char *text, uint64_t *out);
/* "500ms", "30s", "5m", "2h" -> milliseconds. Returns 0 or JW_EINVAL. */
int jw_parse_duration(const char *text, uint64_t *out_ms);

/* ------------------------------------------------------------------------ */
/* Exit status                                                              */
/* ------------------------------------------------------------------------ */

typedef enum {
  JW_EXIT_SUCCESS = 0, /* 0 */
  JW_EXIT_FAILURE = 1, /* a plain non-zero exit code chosen by the program */
  JW_EXIT_ABNORMAL = 2 /* an exception / NTSTATUS error: crash, fail-fast... */
} jw_exit_class_t;

jw_exit_class_t jw_exit_classify(uint32_t code);
/* "STATUS_ACCESS_VIOLATION" for 0xC0000005; NULL when the code is unknown. */
const char *jw_ntstatus_name(uint32_t code);

/* ------------------------------------------------------------------------ */
/* Strings from the sandboxed process                                       */
/* ------------------------------------------------------------------------ */

/* Converts UTF-16 (possibly invalid: lone surrogates become U+FFFD) to
 * NUL-terminated UTF-8, reading at most `max_units` code units. `*out` is a
 * new malloc'd string; *truncated (if not NULL) says whether input was cut.
 * Returns 0 or JW_ENOMEM. */
#define JW_HOSTILE_MAX_UNITS 32768
int jw_utf16_to_utf8(const uint16_t *s, size_t len, size_t max_units, char **out, size_t *out_len,
                     int *truncated);

/* Quotes argv into one Windows command line following the rules that
 * CommandLineToArgvW and the MSVC runtime use to split it again.
 * `*out` is a new malloc'd UTF-8 string. Returns 0, JW_EINVAL or JW_ENOMEM. */
int jw_argv_to_cmdline(const char *const *argv, int argc, char **out);

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum {
  JW_EVENT_VIOLATION = 0, /* sandbox.violation */
  JW_EVENT_JOB_START,     /* sandbox.job_start */
  JW_EVENT_JOB_END,       /* sandbox.job_end */
  JW_EVENT_PROCESS_START, /* sandbox.process_start */
  JW_EVENT_PROCESS_EXIT,  /* sandbox.process_exit */
  JW_EVENT_NOTICE,        /* sandbox.notice: degraded protection, unknown messages */
  JW_EVENT_TELEMETRY_GAP, /* sandbox.telemetry_gap: events a sink did not get */
  JW_EVENT_PROCESS_UPDATE /* sandbox.process_update: fields of a started process that came later */
} jw_event_kind_t;

typedef enum {
  JW_SEV_INFO = 0,
  JW_SEV_LOW,
  JW_SEV_MEDIUM,
  JW_SEV_HIGH,
  JW_SEV_CRITICAL
} jw_severity_t;

/* What jobwarden knows about one process. Strings are owned by whoever owns
 * the event; they are UTF-8 (already sanitized with jw_utf16_to_utf8).
 * The image is a counted string: a path may hold U+0000 (a 0 byte, which
 * the JSON keeps escaped, with the rest of the path after it), so set
 * image_len to the length jw_utf16_to_utf8 returned; image_len 0 means
 * strlen(image), which ends at the first 0 byte. Invalid UTF-8 is replaced
 * by U+FFFD when rendered, never dropped. image_truncated (set from
 * jw_utf16_to_utf8's *truncated) is rendered as "image_truncated": true. */
/* A process named in another's ancestry: enough to find its own events. */
typedef struct jw_process_ref_s {
  uint32_t pid;
  uint64_t create_time; /* 0 = unknown (no entity_id) */
  const char *image;    /* NULL = unknown; counted by image_len like jw_process_info_t */
  size_t image_len;
  const char *sha256; /* its image's SHA-256 (64 lowercase hex digits), NULL = not known */
} jw_process_ref_t;

#define JW_ANCESTRY_MAX 32 /* ancestors listed in a process event */
/* A command line is kept up to this many UTF-16 units (then
 * command_line_truncated); an ancestor's executable up to this many bytes
 * (then executable_truncated): an event must stay small enough for every
 * sink (a syslog datagram holds 65000 bytes), whatever the agent names its
 * processes. */
#define JW_COMMAND_LINE_MAX_UNITS 8192
#define JW_ANCESTOR_IMAGE_MAX     1024
#define JW_UNAVAILABLE_MAX        12

typedef struct jw_process_info_s {
  uint32_t pid;
  uint64_t create_time; /* FILETIME (100 ns since 1601), 0 = unknown */
  const char *image;    /* full image path, NULL = unknown */
  size_t image_len;     /* bytes of image; 0 = strlen(image) */
  int image_truncated;  /* the source string was longer than JW_HOSTILE_MAX_UNITS */
  int has_parent;
  uint32_t parent_pid;
  int has_exit_code;
  uint32_t exit_code;
  int is_root; /* the process jobwarden started */

  /* Enrichment (schema 1.2.0). Every string is borrowed like image; NULL
   * leaves the field out. Fields jobwarden asked for and could not get
   * truthfully are named in unavailable[] with the reason instead. */
  uint64_t parent_create_time; /* FILETIME of the parent; 0 = unknown (no parent.entity_id) */
  const char *command_line;    /* counted like image */
  size_t command_line_len;
  int command_line_truncated;
  const char *user_sid;  /* "S-1-5-21-..." */
  const char *user_name; /* "DOMAIN\\user"; NULL = not resolvable */
  const char *integrity; /* "untrusted", "low", "medium", "medium_plus", "high", "system",
                            "protected"; NULL = unknown */
  const jw_process_ref_t *ancestry; /* parent first, up to the sandbox root */
  size_t n_ancestry;
  int ancestry_truncated; /* the chain was longer than JW_ANCESTRY_MAX */
  uint64_t end_time;      /* FILETIME of the exit; 0 = not exited / unknown */
  int has_peak_working_set;
  uint64_t peak_working_set;         /* bytes */
  const char *peak_working_set_from; /* "exit" (read at exit) or "samples" (largest
                                        value read while it ran: a lower bound) */
  int has_cpu;
  uint64_t cpu_user_100ns, cpu_kernel_100ns;
  int has_io;
  uint64_t io_read_ops, io_write_ops, io_other_ops, io_read_bytes, io_write_bytes, io_other_bytes;
  /* Executable identity (schema 2.0.0): the image file's SHA-256 (64
   * lowercase hex digits), size, PE version resource and Authenticode
   * signature. NULL / 0 leave a field out; what was asked for and could
   * not be had is named in unavailable[] ("hash", "pe", "code_signature"). */
  const char *sha256;
  int has_image_size;
  uint64_t image_size;
  const char *pe_original_file_name, *pe_company, *pe_product, *pe_description, *pe_file_version;
  int has_code_signature;
  int cs_exists, cs_trusted;
  const char *cs_status;       /* "valid", "unsigned", "untrusted", "expired", "revoked", ... */
  const char *cs_subject_name; /* NULL = none */
  struct {
    const char *field;  /* "command_line", "user", "cpu", "io", "peak_working_set", ... */
    const char *reason; /* why, with the Win32 / NTSTATUS code where there is one */
  } unavailable[JW_UNAVAILABLE_MAX];
  size_t n_unavailable;
} jw_process_info_t;

typedef struct jw_event_s {
  jw_event_kind_t kind;
  const char *rule;     /* static string: "child_process", "abnormal_exit", ... */
  const char *action;   /* static string: "blocked", "terminated", "observed", ... */
  const char *enforcer; /* "kernel" or "monitor": who acted. Rendered only with an action that
                           says something was done (blocked, terminated, killed_job); with any
                           other action nobody acted and the field is left out. */
  const char *source;   /* "port", "jobwarden", "reconciled" */
  jw_severity_t severity;

  int has_job_message; /* raw JOB_OBJECT_MSG_* id, for forensics */
  uint32_t job_message;

  int has_limit;
  const char *limit_name;    /* policy field name */
  const char *limit_unit;    /* "bytes", "ms", "processes" */
  uint64_t limit_configured; /* 0 = not configured */
  int has_limit_observed;
  uint64_t limit_observed;
  /* Measured values (docs/events.md, "Measured values"). All optional. */
  uint64_t limit_hard;               /* a warning's hard limit (limit.hard_limit); 0 = none */
  const char *limit_observed_source; /* static: what measured limit_observed, or NULL */
  /* Why there is no limit_observed (limit.observed_unavailable), "" when
   * not said; with the call that failed (static, may be NULL) and its
   * Win32 error when has_limit_unavailable_error. */
  char limit_unavailable[240];
  const char *limit_unavailable_where;
  int has_limit_unavailable_error;
  uint32_t limit_unavailable_error;

  int has_process;
  jw_process_info_t process;

  /* When it happened, microseconds since the Unix epoch (UTC): the
   * process's creation time for a start, its exit time for an exit, when
   * the system gives them. 0 = when it was emitted. Rendered as @timestamp;
   * the emit time is "emitted". */
  uint64_t time_us;
  /* Tags of this occurrence besides the rule's own (rule_catalog.c): an
   * ATT&CK technique the matched image stands for, a policy entry's tags.
   * Static or owned by the event's owner; NULL-terminated when fewer. */
  const char *tags[4];

  char message[512]; /* human-readable sentence */
  uint64_t seq;      /* set by the emitter: the seq of this event's line */
  void *extra;       /* json_t object merged into the event, or NULL; stolen by jw_emit() */
} jw_event_t;

/* Constant facts of one run, carried by every event. */
#define JW_CONTEXT_UNAVAILABLE_MAX 6
typedef struct jw_run_info_s {
  char run_id[40]; /* 32 hex digits */
  char host[256];
  char job_name[JW_POLICY_NAME_MAX + 32];
  jw_tier_t tier;
  /* Context of every event (jw_run_info_init reads it; "" = not known, and
   * then named in unavailable[] with the reason). */
  char host_id[64];      /* Windows: MachineGuid; elsewhere /etc/machine-id */
  char os_name[32];      /* "Windows", "Linux" */
  char os_version[32];   /* "10.0" */
  char os_build[32];     /* "19045" */
  char wine_version[32]; /* Wine's version when jobwarden runs under Wine, else "" */
  char user_id[192];     /* the user who started the run: a SID string, a uid */
  char user_name[128];
  char user_domain[128];
  char agent_build[48]; /* the git commit jobwarden was built from ("" = not known) */
  struct {
    char field[24];   /* "host.id", "user", "host.os", "agent.build" */
    char reason[160]; /* why, with the system's error */
  } unavailable[JW_CONTEXT_UNAVAILABLE_MAX];
  size_t n_unavailable;
  uint64_t start_us; /* when the run began (jw_run_info_init): job_start's @timestamp */
  /* A sink of the run delivers without checking its collector's
   * certificate (syslog+tls with insecure): every event carries the tag
   * JW_TAG_INSECURE_TRANSPORT. Set by jw_emitter_add. */
  int insecure_transport;
} jw_run_info_t;
#define JW_TAG_INSECURE_TRANSPORT "jobwarden.insecure_transport"

/* Clears *ev and sets the fields every event has. Strings are static. */
void jw_event_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                   const char *enforcer, const char *source, jw_severity_t sev);

const char *jw_event_kind_name(jw_event_kind_t kind); /* "sandbox.violation" */
const char *jw_severity_name(jw_severity_t sev);      /* "high" */

/* Builds the JSON object of an event (new reference, returned as void *
 * holding a json_t *). `time_us` is microseconds since the Unix epoch, UTC.
 * `ev->extra` is borrowed here. Returns NULL on allocation failure. */
void *jw_event_to_json(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                       uint64_t time_us);
/* Renders the event as one JSON Lines record: compact JSON + "\n", new
 * malloc'd buffer in *out, its length in *out_len. Returns 0 or JW_ENOMEM. */
int jw_event_render_line(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                         uint64_t time_us, char **out, size_t *out_len);
/* RFC 3339 UTC with microseconds: "2026-11-23T09:11:05.123456Z". buf >= 32. */
void jw_format_time_us(uint64_t time_us, char *buf, size_t size);
/* A PID-reuse-safe identity: "<pid>-<create_time as 16 hex digits>". buf >= 32. */
void jw_format_entity_id(uint32_t pid, uint64_t create_time, char *buf, size_t size);

/* ------------------------------------------------------------------------ */
/* Exporters                                                                */
/* ------------------------------------------------------------------------ */

typedef struct jw_exporter_s jw_exporter_t;

/* What a sink writes (the SPEC option format=, parsed once for every
 * exporter in exporters/registry.c): jobwarden's own JSON lines, ECS or
 * OCSF (src/format.h, docs/integrations.md). */
typedef enum { JW_FORMAT_NATIVE = 0, JW_FORMAT_ECS, JW_FORMAT_OCSF } jw_format_t;

/* The options of a SPEC ("file:PATH,rotate=64M,keep=3"), declared as one
 * row each (exporters/options.c parses them, checks them, fills the
 * exporter's config struct and writes --help from the rows):
 *   SIZE      "64M", "512K", bytes (jw_parse_size)        -> uint64_t
 *   COUNT     a decimal number                           -> uint64_t
 *   DURATION  "500ms", "10s", "2m" (jw_parse_duration)   -> uint64_t ms
 *   FLAG      the NAME alone, no value                   -> int 1
 *   STRING    any text without ','                       -> char * (owned)
 *   CHOICE    one of `values` ("native|ecs|ocsf")        -> int index */
typedef enum {
  JW_OPT_SIZE = 0,
  JW_OPT_COUNT,
  JW_OPT_DURATION,
  JW_OPT_FLAG,
  JW_OPT_STRING,
  JW_OPT_CHOICE,
} jw_option_type_t;

typedef struct jw_option_s {
  const char *name;      /* as written in a SPEC: "rotate" */
  jw_option_type_t type; /* how the value is read and stored */
  size_t offset;         /* where it goes in the config struct */
  const char *def;       /* the default, as written in a SPEC; NULL: unset (0 / NULL) */
  uint64_t min, max;     /* SIZE, COUNT, DURATION (ms): bounds (max 0: none) */
  /* CHOICE: the values, '|'-separated. COUNT, STRING: the placeholder for
   * --help and messages ("N", "DIR"). */
  const char *values;
  const char *help; /* one line, for --help */
} jw_option_t;

/* How a sink's lines reach it. LOCAL: the sink's writer thread writes each
 * line itself (a failed write is a loss, recorded as a gap). NETWORK: the
 * line is kept in the sink's on-disk spool first (src/spool.c) and
 * delivered from there by the sink's own sender thread, with retries and
 * backoff while the collector is away; export_line (or deliver_lines, for
 * what the spool holds) is then the attempt to deliver (connecting if
 * needed), and a failure means "not now". */
typedef enum { JW_DELIVERY_LOCAL = 0, JW_DELIVERY_NETWORK = 1 } jw_delivery_t;

/* One line of a batch handed to export_lines (the emitter's writer). */
typedef struct jw_line_ref_s {
  const char *line; /* one complete line, '\n' included */
  size_t len;
  uint64_t seq;
  jw_event_kind_t kind;
} jw_line_ref_t;

/* A sink. Exporters live in exporters/<name>/: one vtable with its option
 * rows, and one line in exporters/registry.c. Callbacks of one exporter
 * are never called concurrently. */
typedef struct jw_exporter_vtable_s {
  const char *name; /* the SPEC prefix: "file", "stdout" */
  /* arg: the SPEC's target after "name:" without the options ("PATH",
   * "//HOST:PORT"), or NULL. The options are in self->config, already
   * parsed and within their bounds. Stores its state in self->state. */
  int (*init)(jw_exporter_t *self, const char *arg, jw_error_t *err);
  /* One complete line, '\n' included. Must write it whole or fail. */
  int (*export_line)(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                     jw_error_t *err);
  /* NETWORK sinks, optional: one delivery attempt for a batch of whole
   * lines (lines[0..len), one or more, each ending in '\n'), in order, with
   * as few system calls as the transport allows (the spool's sender calls
   * it with what it read; NULL: export_line per line). *done is always
   * set: the bytes of the first lines that were delivered whole (a line
   * boundary). 0: all of them (*done == len). JW_EINVAL: the line at
   * *done can never be delivered (the caller skips it and goes on after
   * it). Any other error: nothing from *done on is delivered now; the next
   * attempt starts there, byte for byte. */
  int (*deliver_lines)(jw_exporter_t *self, const char *lines, size_t len, size_t *done,
                       jw_error_t *err);
  int (*flush)(jw_exporter_t *self, jw_error_t *err);
  void (*close)(jw_exporter_t *self);
  /* Validates arg like init would, without opening anything (policy files
   * are checked before a run). NULL: init itself has no side effect. */
  int (*check)(jw_exporter_t *self, const char *arg, jw_error_t *err);
  /* 0: the emitter seals each line before export_line (sealed runs).
   * 1: the exporter seals what it writes itself, with jw_exporter_seal
   * (src/seal.h): lines of its own (a rotated file's first line) or one
   * chain per client (a pipe's readers). */
  int seals_itself;
  /* The SPEC's shape for messages and --help ("file:PATH"). */
  const char *usage;
  /* One line for --help: what the sink does. */
  const char *summary;
  /* The kind's own options (NULL-name terminated), filling a struct of
   * config_size bytes at self->config. NULL: none. */
  const jw_option_t *options;
  size_t config_size;
  jw_delivery_t delivery;
  /* Optional (NULL: export_line for each line): n complete lines in seq
   * order, written with as few system calls as the sink can (the file
   * sink: one write for the batch). Returns how many, from the first,
   * were written whole; fewer than n: err says why the next one failed.
   * Lines taken this way are made durable by `flush`, which the emitter's
   * flusher thread calls within JW_SYNC_BOUND_MS after a batch that held a
   * violation (group commit), not one flush per violation, while the
   * writer thread may be in export_lines: a sink with both must let the
   * two run at the same time (the file sink: exporters/file/file.c). */
  size_t (*export_lines)(jw_exporter_t *self, const jw_line_ref_t *lines, size_t n,
                         jw_error_t *err);
} jw_exporter_vtable_t;

/* Group commit: a violation handed to a sink through export_lines is
 * flushed to disk (FlushFileBuffers / fsync returned) at most this long
 * after its line was written, plus the time of a flush already in
 * progress and of the flush itself. */
#define JW_SYNC_BOUND_MS     5
#define JW_WRITE_BATCH_BYTES (256u * 1024u)

/* The gate a sink that serves local clients (pipe:) asks before it serves
 * one. The run sets it (jw_exporter_set_gate) once the job exists; a sink
 * without a gate serves every client it is configured to. */
typedef enum {
  JW_CLIENT_OK = 0,  /* serve it */
  JW_CLIENT_IN_JOB,  /* a process of the sandboxed job: refuse */
  JW_CLIENT_UNKNOWN, /* its identity could not be established: refuse */
  JW_CLIENT_ESCAPED, /* not in the job, but its parent is jobwarden or a member: refuse */
} jw_client_verdict_t;
typedef enum {
  JW_CLIENT_REFUSED_IN_JOB = 0, /* the gate said JW_CLIENT_IN_JOB */
  JW_CLIENT_REFUSED_UNKNOWN,    /* the gate said JW_CLIENT_UNKNOWN */
  JW_CLIENT_REFUSED_MAX,        /* the sink's own cap (pipe: max_readers) */
  JW_CLIENT_REFUSED_ESCAPED,    /* the gate said JW_CLIENT_ESCAPED */
} jw_client_refusal_t;
typedef struct jw_client_gate_s {
  /* Whether the process `pid` may be served. `why` (may be left empty)
   * says how the verdict was reached. Any thread; must not emit. */
  jw_client_verdict_t (*check)(void *ctx, uint32_t pid, char *why, size_t why_size);
  /* Records a refusal in-band (an event). `limit` is the sink's cap for
   * JW_CLIENT_REFUSED_MAX. Called on the sink's own thread, with none of
   * the sink's locks held. */
  void (*refused)(void *ctx, const char *sink_spec, jw_client_refusal_t what, uint32_t pid,
                  const char *why, uint64_t limit);
  void *ctx; /* borrowed: must outlive the exporter */
} jw_client_gate_t;

struct jw_exporter_s {
  const jw_exporter_vtable_t *vt;
  void *state;                     /* owned by the exporter */
  char spec[JW_EXPORTER_SPEC_MAX]; /* as the user wrote it, for messages */
  int failed;                      /* set after the first failed write */
  uint64_t written;                /* lines written */
  uint64_t lost;                   /* lines that could not be written */
  /* The run this sink's events belong to, set by jw_emitter_add (exporters
   * that render records of their own, e.g. a pipe reader's gaps). */
  const jw_run_info_t *run;
  /* Asked before a local client is served (NULL: none). Set by
   * jw_exporter_set_gate; read by the sink's own threads. */
  const jw_client_gate_t *volatile gate;
  /* The format of every line this sink writes (format=; set before init
   * runs). The emitter hands it lines in this format; records the sink
   * renders itself (gaps, rotation) are converted to it too. */
  jw_format_t format;
  /* The stream's seal chain (src/seal.h), NULL when the run is not
   * sealed. Set by the run before the first line; used by the exporter
   * right before each write (jw_exporter_seal). Owned. */
  struct jw_seal_s *seal;
  /* The kind's options, parsed from the SPEC (vt->options; owned). */
  void *config;
  /* The options every sink has, and a network sink's delivery options
   * (exporters/options.c). */
  struct {
    char *spool;           /* spool=DIR, "none", or NULL: the default directory */
    uint64_t spool_max;    /* spool_max=SIZE */
    uint64_t drain_ms;     /* drain=DURATION */
    uint64_t retry_max_ms; /* retry_max=DURATION: the backoff's ceiling */
  } delivery;
  /* A NETWORK sink's spool and sender (src/spool.c); NULL otherwise or
   * with spool=none before the emitter starts it. Owned. */
  struct jw_spool_s *spool;
  /* How the sink tells the run about its delivery (a network sink's
   * outage and recovery): set by jw_emitter_add; NULL: stderr only.
   * `extra` is a json_t * (stolen). Called on the sink's own threads. */
  void (*notice)(void *ctx, jw_exporter_t *exp, const char *rule, jw_severity_t severity,
                 const char *message, void *extra);
  void *notice_ctx;
  /* Set by the exporter's init: it delivers without checking whom it
   * talks to (syslog+tls,insecure). The run then tags every event. */
  int insecure;
};

/* Gives a sink the gate it asks before serving a local client (the run
 * sets it once the job exists). Only sinks that serve clients use it.
 * `gate` is borrowed and must outlive the exporter. Main thread. */
void jw_exporter_set_gate(jw_exporter_t *exp, const jw_client_gate_t *gate);

/* Creates and initializes an exporter from a SPEC ("file:PATH", "stdout",
 * "stderr"). Returns 0 and a new exporter in *out (free with
 * jw_exporter_close), JW_EUSAGE for an unknown kind, or the init error. */
int jw_exporter_open(const char *spec, jw_exporter_t **out, jw_error_t *err);
void jw_exporter_close(jw_exporter_t *exp);
/* Checks a SPEC without opening the sink. `where` replaces "--export" in the
 * error text (e.g. "exporters[1]"). Returns 0 or JW_EUSAGE. */
int jw_exporter_check(const char *spec, const char *where, jw_error_t *err);
/* The list of registered kinds, for --help: "file:PATH | stdout | stderr". */
const char *jw_exporter_kinds(void);

/* The emitter numbers events (seq, gap-free per run), stamps time, renders
 * once and fans out to every exporter. Thread-safe. */
typedef struct jw_emitter_s jw_emitter_t;

/* Returns a new emitter in *out. `run` is copied. */
int jw_emitter_new(const jw_run_info_t *run, jw_emitter_t **out);
/* Takes ownership of exp. */
int jw_emitter_add(jw_emitter_t *em, jw_exporter_t *exp);
/* Numbers, renders and writes one event; ev->extra is stolen. Returns 0 when
 * every exporter took it, JW_EIO when at least one failed (reported on
 * stderr once per exporter). Any thread. */
int jw_emit(jw_emitter_t *em, jw_event_t *ev);
/* Number of events emitted so far (= last seq). */
uint64_t jw_emitter_count(jw_emitter_t *em);
/* Number of exporters that failed at least once. */
int jw_emitter_failed_sinks(jw_emitter_t *em);
/* Switches the emitter to delivery through queues: each exporter gets its own
 * thread and a queue of `capacity` lines, so jw_emit never waits for a sink.
 * Loss policy: when a sink's queue is full, lifecycle events are dropped for
 * that sink; violations and notices (alerts) are still queued up to four
 * times `capacity` (spill) before they are dropped too. A line a sink fails
 * to write is dropped for that sink. Every drop is counted and reported in
 * that sink's stream as a sandbox.telemetry_gap event (from_seq, to_seq,
 * count, reason) written before the next line it does get; the gap event
 * carries seq = to_seq, so the stream's seq stays strictly increasing and
 * every hole is explained. Call once, after the last jw_emitter_add, from
 * the owner's thread. Returns 0, JW_EINVAL or JW_ESYS. */
int jw_emitter_start(jw_emitter_t *em, size_t capacity);
/* Waits at most timeout_ms until every sink's writer has handled all that
 * is queued for it (written, spooled, or recorded as lost), including the
 * notices those writes cause, and every network sink has delivered what
 * its spool holds or found its collector away (and said so): called before
 * sandbox.job_end, so that a sink's failure is in the record before the
 * end. Returns 0 or JW_ETIMEDOUT. */
int jw_emitter_settle(jw_emitter_t *em, uint32_t timeout_ms);
/* Lines dropped so far for all sinks (reported in gap events). */
uint64_t jw_emitter_dropped(jw_emitter_t *em);
/* Drains every queue (writer threads finish what is queued), flushes,
 * closes every exporter and frees the emitter. Blocks until every writer
 * has returned: call jw_emitter_drain first where a stuck sink must not
 * hold up the caller. */
void jw_emitter_free(jw_emitter_t *em);
/* Stops accepting events and waits at most timeout_ms for every writer to
 * write what is queued and return. Returns 0 (jw_emitter_free will not
 * block), or JW_ETIMEDOUT when a sink is stuck in a write (each named on
 * stderr with how many events it will not get): the caller may then leave
 * the emitter unfreed and exit. */
int jw_emitter_drain(jw_emitter_t *em, uint32_t timeout_ms);

/* Fills run->run_id with 128 random bits, the host, OS and user context
 * (what cannot be read is named in run->unavailable), run->start_us, and
 * the job name: `job_name`, or when it is NULL or "" the default
 * "<program>-<host>-<first 8 hex digits of run_id>" (`program`: the file
 * name of the program without directory and ".exe"; NULL = "jobwarden"),
 * which names the program and is unique across hosts and runs. */
int jw_run_info_init(jw_run_info_t *run, const char *job_name, jw_tier_t tier);
int jw_run_info_init_for(jw_run_info_t *run, const char *job_name, const char *program,
                         jw_tier_t tier);
/* Microseconds since the Unix epoch, UTC. */
uint64_t jw_now_us(void);

#ifdef __cplusplus
}
#endif

#endif /* JOBWARDEN_H */

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

typedef enum {
  KIND_COUNT,    /* active_processes */
  KIND_SIZE,     /* bytes */
  KIND_DURATION, /* milliseconds */
  KIND_UI,
  KIND_BOOL,
  KIND_TIER,
  KIND_NAME,
  KIND_TOTAL,    /* rules.total_processes.max: a count up to 2^32 - 1 */
  KIND_ACTION,   /* a rule's action */
  KIND_IMAGE,    /* one file name of an image list */
  KIND_MARGIN,   /* limits.notification_margin: a percentage, in basis points */
  KIND_INTERVAL, /* rules.escape.scan_interval: a duration, or "off" (0) */
  KIND_TOKEN,    /* token: "inherit", "restricted", "low_integrity", "restricted_low" */
  KIND_TAGS,     /* rules.<rule>.tags: tags added to the rule's violations */
  KIND_KEY_FILE, /* seal.new_key / seal.existing_key: a key file's path */
  KIND_HASH_CAP  /* rules.images.hash_cap: a size of at least 1 byte, never "unlimited" */
} field_kind_t;

typedef struct {
  const char *key; /* name in the policy file and in jw_policy_set() */
  field_kind_t kind;
  uint32_t bit;  /* JW_SET_* */
  int in_limits; /* 1: lives in the "limits" object of the file; 2: in
                  * "rules" (read by rules_from_json, set by key); 3: in
                  * "seal" (read by seal_from_json, set by key) */
} field_t;

static const field_t fields[] = {
    {"name", KIND_NAME, JW_SET_NAME, 0},
    {"tier", KIND_TIER, JW_SET_TIER, 0},
    {"active_processes", KIND_COUNT, JW_SET_ACTIVE_PROCESSES, 1},
    {"process_memory", KIND_SIZE, JW_SET_PROCESS_MEMORY, 1},
    {"job_memory", KIND_SIZE, JW_SET_JOB_MEMORY, 1},
    {"process_cpu_time", KIND_DURATION, JW_SET_PROCESS_TIME, 1},
    {"job_cpu_time", KIND_DURATION, JW_SET_JOB_TIME, 1},
    {"ui_restrictions", KIND_UI, JW_SET_UI, 0},
    {"kill_on_close", KIND_BOOL, JW_SET_KILL_ON_CLOSE, 0},
    {"die_on_unhandled_exception", KIND_BOOL, JW_SET_DIE_ON_EXCEPTION, 0},
    {"allow_breakaway", KIND_BOOL, JW_SET_BREAKAWAY, 0},
    {"timeout", KIND_DURATION, JW_SET_TIMEOUT, 2},
    {"timeout_action", KIND_ACTION, JW_SET_TIMEOUT_ACTION, 2},
    {"max_total_processes", KIND_TOTAL, JW_SET_MAX_TOTAL, 2},
    {"total_processes_action", KIND_ACTION, JW_SET_TOTAL_ACTION, 2},
    {"deny_image", KIND_IMAGE, JW_SET_DENY_IMAGES, 2},
    {"allow_image", KIND_IMAGE, JW_SET_ALLOW_IMAGES, 2},
    {"image_action", KIND_ACTION, JW_SET_IMAGE_ACTION, 2},
    {"image_hash_cap", KIND_HASH_CAP, JW_SET_IMAGE_HASH_CAP, 2},
    {"active_processes_action", KIND_ACTION, JW_SET_ACTIVE_ACTION, 2},
    {"notification_margin", KIND_MARGIN, JW_SET_NOTIFY_MARGIN, 1},
    {"escape_action", KIND_ACTION, JW_SET_ESCAPE_ACTION, 2},
    {"escape_scan_interval", KIND_INTERVAL, JW_SET_ESCAPE_SCAN, 2},
    {"coalesce_window", KIND_INTERVAL, JW_SET_COALESCE, 2},
    {"timeout_tags", KIND_TAGS, JW_SET_RULE_TAGS, 2},
    {"total_processes_tags", KIND_TAGS, JW_SET_RULE_TAGS, 2},
    {"images_tags", KIND_TAGS, JW_SET_RULE_TAGS, 2},
    {"active_processes_tags", KIND_TAGS, JW_SET_RULE_TAGS, 2},
    {"escape_tags", KIND_TAGS, JW_SET_RULE_TAGS, 2},
    {"token", KIND_TOKEN, JW_SET_TOKEN, 0},
    {"seal_key", KIND_KEY_FILE, JW_SET_SEAL, 3},
    {"seal_key_existing", KIND_KEY_FILE, JW_SET_SEAL, 3},
};
#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

#define TOP_KEYS                                                                                   \
  "version, name, tier, limits, ui_restrictions, kill_on_close, "                                  \
  "die_on_unhandled_exception, allow_breakaway, token, exporters, rules, seal"
#define LIMIT_KEYS                                                                                 \
  "active_processes, process_memory, job_memory, process_cpu_time, "                               \
  "job_cpu_time, notification_margin"
#define SET_KEYS                                                                                   \
  "name, tier, " LIMIT_KEYS ", ui_restrictions, kill_on_close, "                                   \
  "die_on_unhandled_exception, allow_breakaway, timeout, timeout_action, "                         \
  "max_total_processes, total_processes_action, deny_image, allow_image, image_action, "           \
  "image_hash_cap, active_processes_action, escape_action, escape_scan_interval, "                 \
  "coalesce_window, timeout_tags, total_processes_tags, images_tags, active_processes_tags, "      \
  "escape_tags, token, seal_key, seal_key_existing"

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

/* The rules of the "rules" object: each key of a rule and the field it
 * sets (a key of `fields`). */
static const struct {
  const char *rule;
  const char *key;
  const char *field;
} rule_keys[] = {
    {"timeout", "after", "timeout"},
    {"timeout", "action", "timeout_action"},
    {"total_processes", "max", "max_total_processes"},
    {"total_processes", "action", "total_processes_action"},
    {"images", "deny", "deny_image"},
    {"images", "allow", "allow_image"},
    {"images", "action", "image_action"},
    {"active_processes", "action", "active_processes_action"},
    {"escape", "action", "escape_action"},
    {"escape", "scan_interval", "escape_scan_interval"},
    {"coalesce", "window", "coalesce_window"},
    {"timeout", "tags", "timeout_tags"},
    {"total_processes", "tags", "total_processes_tags"},
    {"images", "tags", "images_tags"},
    {"active_processes", "tags", "active_processes_tags"},
    {"escape", "tags", "escape_tags"},
    {"images", "hash_cap", "image_hash_cap"},
};
#define RULE_KEY_COUNT (sizeof(rule_keys) / sizeof(rule_keys[0]))
#define RULE_NAMES     "timeout, total_processes, images, active_processes, escape, coalesce"

/* Why an image name was refused. */
typedef enum { IMG_OK = 0, IMG_BAD, IMG_DIR, IMG_LONG } img_result_t;

/* Why a textual quantity was refused; each reason has its own message. */
typedef enum { VAL_OK = 0, VAL_BAD, VAL_ZERO, VAL_RANGE } val_result_t;

static const char *expected_text(field_kind_t kind, val_result_t why, int from_text) {
  switch (kind) {
  case KIND_COUNT:
    return "an integer from 1 to 65535 or \"unlimited\"";
  case KIND_SIZE:
    if (why == VAL_ZERO)
      return "a size of at least 1 byte, or \"unlimited\"";
    if (why == VAL_RANGE)
      return "a size of at most 18446744073709551615 bytes";
    return "a size like \"512M\"";
  case KIND_INTERVAL:
    if (why == VAL_ZERO)
      return "a duration of at least 1ms, or \"off\"";
    if (why == VAL_RANGE)
      return "a duration of at most 922337203685477ms";
    return "a duration with a unit, like \"200ms\" or \"1s\", or \"off\"";
  case KIND_DURATION:
    if (why == VAL_ZERO)
      return "a duration of at least 1ms, or \"unlimited\"";
    if (why == VAL_RANGE)
      return "a duration of at most 922337203685477ms";
    return "a duration with a unit, like \"500ms\", \"30s\", \"5m\" or \"2h\"";
  case KIND_UI:
    return from_text ? "\"all\", \"none\" or a comma-separated list of "
                       "UI restriction names"
                     : "an array of UI restriction names, \"all\" or \"none\"";
  case KIND_BOOL:
    return from_text ? "true or false (or yes/no, on/off, 1/0)" : "true or false";
  case KIND_TIER:
    return "one of \"none\", \"hardened\", \"lockdown\"";
  case KIND_TOKEN:
    return "one of " TOKEN_LIST;
  case KIND_NAME:
    return "a name of 1 to 63 characters from [A-Za-z0-9._-]";
  case KIND_TOTAL:
    return "an integer from 1 to 4294967295 or \"unlimited\"";
  case KIND_ACTION:
    return "one of " ACTION_LIST;
  case KIND_IMAGE:
    return "a file name like \"cmd.exe\"";
  case KIND_KEY_FILE:
    return "a file path of 1 to 1023 bytes without NUL";
  case KIND_HASH_CAP:
    if (why == VAL_RANGE)
      return "a size of at most 18446744073709551615 bytes";
    return "a size of at least 1 byte like \"256M\" (there is no \"unlimited\" cap)";
  case KIND_TAGS:
    return "a tag of 1 to 63 characters from [a-z0-9_.], starting with a letter, like "
           "\"attack.t1059\"";
  case KIND_MARGIN:
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

/* Stores a numeric or boolean value into the field named by `bit` and marks
 * it as set. */
static void store(jw_policy_t *p, uint32_t bit, uint64_t v) {
  switch (bit) {
  case JW_SET_ACTIVE_PROCESSES:
    p->active_processes = (uint32_t)v;
    break;
  case JW_SET_PROCESS_MEMORY:
    p->process_memory = v;
    break;
  case JW_SET_JOB_MEMORY:
    p->job_memory = v;
    break;
  case JW_SET_PROCESS_TIME:
    p->process_time_ms = v;
    break;
  case JW_SET_JOB_TIME:
    p->job_time_ms = v;
    break;
  case JW_SET_UI:
    p->ui_restrictions = (uint32_t)v;
    break;
  case JW_SET_KILL_ON_CLOSE:
    p->kill_on_close = v != 0;
    break;
  case JW_SET_DIE_ON_EXCEPTION:
    p->die_on_unhandled_exception = v != 0;
    break;
  case JW_SET_BREAKAWAY:
    p->breakaway_ok = v != 0;
    break;
  case JW_SET_TIER:
    p->tier = (jw_tier_t)v;
    break;
  case JW_SET_TIMEOUT:
    p->timeout_ms = v;
    break;
  case JW_SET_TIMEOUT_ACTION:
    p->timeout_action = (jw_rule_action_t)v;
    break;
  case JW_SET_MAX_TOTAL:
    p->max_total_processes = (uint32_t)v;
    break;
  case JW_SET_TOTAL_ACTION:
    p->total_processes_action = (jw_rule_action_t)v;
    break;
  case JW_SET_IMAGE_ACTION:
    p->image_action = (jw_rule_action_t)v;
    break;
  case JW_SET_ACTIVE_ACTION:
    p->active_processes_action = (jw_rule_action_t)v;
    break;
  case JW_SET_NOTIFY_MARGIN:
    p->notification_margin_bp = (uint32_t)v;
    break;
  case JW_SET_ESCAPE_ACTION:
    p->escape_action = (jw_rule_action_t)v;
    break;
  case JW_SET_ESCAPE_SCAN:
    p->escape_scan_ms = v;
    break;
  case JW_SET_IMAGE_HASH_CAP:
    p->image_hash_cap = v;
    break;
  case JW_SET_COALESCE:
    p->coalesce_ms = v;
    break;
  case JW_SET_TOKEN:
    p->token = (jw_token_mode_t)v;
    break;
  default:
    return;
  }
  p->set |= bit;
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

/* Appends a checked name to the list named by `bit`. Returns 0, or -1
 * when the list is full. */
static int image_append(jw_policy_t *p, uint32_t bit, const char *s, size_t len) {
  int *n = bit == JW_SET_DENY_IMAGES ? &p->n_deny_images : &p->n_allow_images;
  char(*list)[JW_IMAGE_NAME_MAX] = bit == JW_SET_DENY_IMAGES ? p->deny_images : p->allow_images;
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
  p->set |= bit;
  return 0;
}

/* Which tagged rule a *_tags field is (its key's prefix). */
static int tagged_index(const char *key) {
  static const char *const names[JW_TAGGED_RULES] = {"timeout_tags", "total_processes_tags",
                                                     "images_tags", "active_processes_tags",
                                                     "escape_tags"};
  int i;
  for (i = 0; i < JW_TAGGED_RULES; i++)
    if (strcmp(names[i], key) == 0)
      return i;
  return -1;
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

static int tag_append(const ctx_t *cx, const char *where, jw_policy_t *p, int rule, const char *s,
                      size_t len) {
  if (!tag_is_valid(s, len))
    return fail_text(cx, where, expected_text(KIND_TAGS, VAL_BAD, 1), s);
  if (p->n_rule_tags[rule] >= JW_RULE_TAGS_POLICY_MAX)
    return policy_fail(cx, where, "expected at most %d tags per rule, got one more: %s",
                       JW_RULE_TAGS_POLICY_MAX, s);
  memcpy(p->rule_tags[rule][p->n_rule_tags[rule]], s, len);
  p->rule_tags[rule][p->n_rule_tags[rule]][len] = '\0';
  p->n_rule_tags[rule]++;
  p->set |= JW_SET_RULE_TAGS;
  return 0;
}

/* The seal key file: the later setting wins (a flag over the file). */
static void store_key_file(jw_policy_t *p, const field_t *f, const char *path) {
  jw__strlcpy(p->seal_key, path, sizeof(p->seal_key));
  p->seal_key_existing = strcmp(f->key, "seal_key_existing") == 0;
  p->set |= JW_SET_SEAL;
}

static void store_name(jw_policy_t *p, const char *s, size_t len) {
  memcpy(p->name, s, len);
  p->name[len] = '\0';
  p->set |= JW_SET_NAME;
}

/* A size, duration or count given as text (a JSON string or a flag). */
static val_result_t quantity_from_text(field_kind_t kind, const char *text, uint64_t *out) {
  if (kind == KIND_INTERVAL) {
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
  if (kind == KIND_SIZE)
    return size_from_text(text, out);
  if (kind == KIND_DURATION)
    return duration_from_text(text, out);
  return count_from_text(text, kind == KIND_TOTAL ? TOTAL_PROCESSES_MAX : ACTIVE_PROCESSES_MAX,
                         out);
}

/* ------------------------------------------------------------------------ */
/* Values from JSON                                                         */
/* ------------------------------------------------------------------------ */

static int ui_from_json(const ctx_t *cx, const char *where, const json_t *v, jw_policy_t *p) {
  uint32_t bits = 0, bit;
  size_t i;
  if (json_is_string(v) && strcmp(json_string_value(v), "all") == 0) {
    store(p, JW_SET_UI, JW_UI_ALL);
    return 0;
  }
  if (json_is_string(v) && strcmp(json_string_value(v), "none") == 0) {
    store(p, JW_SET_UI, 0);
    return 0;
  }
  if (!json_is_array(v))
    return fail_json(cx, where, expected_text(KIND_UI, VAL_BAD, 0), v);
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
  store(p, JW_SET_UI, bits);
  return 0;
}

/* An image list of the file ("deny" or "allow"): an array of names that
 * replaces the list built so far. */
static int images_from_json(const ctx_t *cx, const field_t *f, const char *where, const json_t *v,
                            jw_policy_t *p) {
  size_t i;
  if (!json_is_array(v))
    return fail_json(cx, where, "an array of file names like [\"cmd.exe\"]", v);
  if (json_array_size(v) > JW_POLICY_MAX_IMAGES)
    return policy_fail(cx, where, "expected at most %d file names, got %lu", JW_POLICY_MAX_IMAGES,
                       (unsigned long)json_array_size(v));
  if (f->bit == JW_SET_DENY_IMAGES)
    p->n_deny_images = 0;
  else
    p->n_allow_images = 0;
  for (i = 0; i < json_array_size(v); i++) {
    const json_t *item = json_array_get(v, i);
    char item_where[96];
    snprintf(item_where, sizeof item_where, "%s[%lu]", where, (unsigned long)i);
    if (!json_is_string(item))
      return fail_json(cx, item_where, image_expected_text(IMG_BAD), item);
    if (image_entry_check(cx, item_where, json_string_value(item), json_string_length(item)) != 0)
      return JW_EPOLICY;
    image_append(p, f->bit, json_string_value(item), json_string_length(item));
  }
  p->set |= f->bit;
  return 0;
}

static int field_from_json(const ctx_t *cx, const field_t *f, const char *where, const json_t *v,
                           jw_policy_t *p) {
  uint64_t q = 0;
  val_result_t why = VAL_BAD;
  jw_tier_t tier;
  switch (f->kind) {
  case KIND_COUNT:
  case KIND_TOTAL:
  case KIND_SIZE:
  case KIND_DURATION:
  case KIND_INTERVAL:
    if (json_is_string(v)) {
      const char *s = json_string_value(v);
      /* In a file a count is a JSON integer; its only string is
       * "unlimited". */
      if ((f->kind != KIND_COUNT && f->kind != KIND_TOTAL) || strcmp(s, "unlimited") == 0)
        why = quantity_from_text(f->kind, s, &q);
    } else if (json_is_integer(v) && f->kind != KIND_DURATION && f->kind != KIND_INTERVAL) {
      /* A bare number of milliseconds is too easily read as seconds, so
       * durations must carry a unit; sizes and counts need none. */
      json_int_t i = json_integer_value(v);
      if ((f->kind == KIND_COUNT && i > (json_int_t)ACTIVE_PROCESSES_MAX) ||
          (f->kind == KIND_TOTAL && i > (json_int_t)TOTAL_PROCESSES_MAX))
        why = VAL_RANGE;
      else
        why = i < 0 ? VAL_BAD : i == 0 ? VAL_ZERO : VAL_OK;
      q = (uint64_t)i;
    }
    if (why != VAL_OK)
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, q);
    return 0;
  case KIND_BOOL:
    if (!json_is_boolean(v))
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, json_is_true(v));
    return 0;
  case KIND_TIER:
    if (!json_is_string(v) || jw_tier_parse(json_string_value(v), &tier) != 0)
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, (uint64_t)tier);
    return 0;
  case KIND_TOKEN: {
    jw_token_mode_t mode;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        jw_token_mode_parse(json_string_value(v), &mode) != 0)
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, (uint64_t)mode);
    return 0;
  }
  case KIND_HASH_CAP:
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
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, q);
    return 0;
  case KIND_KEY_FILE:
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) >= JW_POLICY_PATH_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store_key_file(p, f, json_string_value(v));
    return 0;
  case KIND_NAME:
    if (!json_is_string(v) || !name_is_valid(json_string_value(v), json_string_length(v)))
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store_name(p, json_string_value(v), json_string_length(v));
    return 0;
  case KIND_UI:
    return ui_from_json(cx, where, v, p);
  case KIND_ACTION: {
    jw_rule_action_t a = JW_ACTION_DEFAULT;
    if (json_is_string(v))
      a = action_parse(json_string_value(v), json_string_length(v));
    if (a == JW_ACTION_DEFAULT)
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, (uint64_t)a);
    return 0;
  }
  case KIND_IMAGE:
    return images_from_json(cx, f, where, v, p);
  case KIND_TAGS: {
    int rule = tagged_index(f->key);
    size_t i;
    if (!json_is_array(v) || rule < 0)
      return fail_json(cx, where, "an array of tags like [\"attack.t1059\"]", v);
    p->n_rule_tags[rule] = 0;
    for (i = 0; i < json_array_size(v); i++) {
      const json_t *item = json_array_get(v, i);
      char item_where[96];
      snprintf(item_where, sizeof item_where, "%s[%lu]", where, (unsigned long)i);
      if (!json_is_string(item) || strlen(json_string_value(item)) != json_string_length(item))
        return fail_json(cx, item_where, expected_text(KIND_TAGS, VAL_BAD, 0), item);
      if (tag_append(cx, item_where, p, rule, json_string_value(item), json_string_length(item)) !=
          0)
        return JW_EPOLICY;
    }
    p->set |= JW_SET_RULE_TAGS;
    return 0;
  }
  case KIND_MARGIN: {
    uint32_t bp = 0;
    /* A string, or the integer 0 (off): any other number is ambiguous. */
    if (json_is_string(v))
      why = margin_from_text(json_string_value(v), &bp);
    else if (json_is_integer(v) && json_integer_value(v) == 0)
      why = VAL_OK;
    if (why != VAL_OK)
      return fail_json(cx, where, expected_text(f->kind, why, 0), v);
    store(p, f->bit, bp);
    return 0;
  }
  }
  return fail_json(cx, where, "a valid value", v);
}

static const field_t *find_field(const char *key, int in_limits, int any) {
  size_t i;
  for (i = 0; i < FIELD_COUNT; i++)
    if ((any || fields[i].in_limits == in_limits) && strcmp(fields[i].key, key) == 0)
      return &fields[i];
  return NULL;
}

static int limits_from_json(const ctx_t *cx, json_t *limits, jw_policy_t *p) {
  const char *key;
  json_t *v;
  if (!json_is_object(limits))
    return fail_json(cx, "limits", "an object", limits);
  json_object_foreach(limits, key, v) {
    const field_t *f = find_field(key, 1, 0);
    char where[128];
    if (f == NULL) {
      show_key(where, sizeof where, "limits.", key);
      return policy_fail(cx, where, "unknown key (known: " LIMIT_KEYS ")");
    }
    snprintf(where, sizeof where, "limits.%s", f->key);
    if (field_from_json(cx, f, where, v, p) != 0)
      return JW_EPOLICY;
  }
  return 0;
}

/* One rule of "rules": an object whose keys are listed in rule_keys. */
static int rule_from_json(const ctx_t *cx, const char *rule, json_t *obj, jw_policy_t *p) {
  const char *key;
  json_t *v;
  char where[128];
  snprintf(where, sizeof where, "rules.%s", rule);
  if (!json_is_object(obj))
    return fail_json(cx, where, "an object", obj);
  json_object_foreach(obj, key, v) {
    const field_t *f = NULL;
    char known[96] = "";
    size_t i;
    for (i = 0; i < RULE_KEY_COUNT; i++) {
      if (strcmp(rule_keys[i].rule, rule) != 0)
        continue;
      if (strcmp(rule_keys[i].key, key) == 0)
        f = find_field(rule_keys[i].field, 2, 0);
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "",
               rule_keys[i].key);
    }
    if (f == NULL) {
      char prefix[64];
      snprintf(prefix, sizeof prefix, "rules.%s.", rule);
      show_key(where, sizeof where, prefix, key);
      return policy_fail(cx, where, "unknown key (known: %s)", known);
    }
    snprintf(where, sizeof where, "rules.%s.%s", rule, key);
    if (field_from_json(cx, f, where, v, p) != 0)
      return JW_EPOLICY;
  }
  return 0;
}

/* "rules": the monitor-enforced rules. */
static int rules_from_json(const ctx_t *cx, json_t *rules, jw_policy_t *p) {
  static const char *const names[] = {"timeout",          "total_processes", "images",
                                      "active_processes", "escape",          "coalesce"};
  const char *key;
  json_t *v;
  if (!json_is_object(rules))
    return fail_json(cx, "rules", "an object", rules);
  json_object_foreach(rules, key, v) {
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(names[i], key) == 0)
        break;
    if (i == sizeof names / sizeof names[0]) {
      char where[128];
      show_key(where, sizeof where, "rules.", key);
      return policy_fail(cx, where, "unknown key (known: " RULE_NAMES ")");
    }
    if (rule_from_json(cx, names[i], v, p) != 0)
      return JW_EPOLICY;
  }
  return 0;
}

/* "seal": {"new_key": PATH} or {"existing_key": PATH}. */
static int seal_from_json(const ctx_t *cx, json_t *v, jw_policy_t *p) {
  const char *key;
  json_t *item;
  int n = 0;
  if (!json_is_object(v))
    return fail_json(cx, "seal", "an object like {\"new_key\": \"run.key\"}", v);
  json_object_foreach(v, key, item) {
    char where[128];
    const field_t *f;
    if (strcmp(key, "new_key") == 0) {
      f = find_field("seal_key", 3, 0);
    } else if (strcmp(key, "existing_key") == 0) {
      f = find_field("seal_key_existing", 3, 0);
    } else {
      show_key(where, sizeof where, "seal.", key);
      return policy_fail(cx, where, "unknown key (known: new_key, existing_key)");
    }
    snprintf(where, sizeof where, "seal.%s", key);
    if (++n > 1)
      return policy_fail(cx, where, "give new_key or existing_key, not both");
    if (field_from_json(cx, f, where, item, p) != 0)
      return JW_EPOLICY;
  }
  if (n == 0)
    return policy_fail(cx, "seal", "expected new_key or existing_key");
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
    const field_t *f;
    if (strcmp(key, "version") == 0)
      continue;
    if (strcmp(key, "limits") == 0) {
      if (limits_from_json(cx, v, p) != 0)
        return JW_EPOLICY;
      continue;
    }
    if (strcmp(key, "exporters") == 0) {
      if (exporters_from_json(cx, v, p) != 0)
        return JW_EPOLICY;
      continue;
    }
    if (strcmp(key, "rules") == 0) {
      if (rules_from_json(cx, v, p) != 0)
        return JW_EPOLICY;
      continue;
    }
    if (strcmp(key, "seal") == 0) {
      if (seal_from_json(cx, v, p) != 0)
        return JW_EPOLICY;
      continue;
    }
    f = find_field(key, 0, 0);
    if (f == NULL) {
      char where[128];
      show_key(where, sizeof where, "", key);
      return policy_fail(cx, where, "unknown key (known: " TOP_KEYS ")");
    }
    if (field_from_json(cx, f, f->key, v, p) != 0)
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
static int ui_from_text(const ctx_t *cx, const char *where, const char *text, jw_policy_t *p) {
  uint32_t bits = 0, bit;
  const char *s = text;
  if (strcmp(text, "all") == 0) {
    store(p, JW_SET_UI, JW_UI_ALL);
    return 0;
  }
  if (strcmp(text, "none") == 0) {
    store(p, JW_SET_UI, 0);
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
  store(p, JW_SET_UI, bits);
  return 0;
}

static int field_from_text(const ctx_t *cx, const field_t *f, const char *where, const char *text,
                           jw_policy_t *p) {
  uint64_t q = 0;
  val_result_t why;
  jw_tier_t tier;
  int b;
  switch (f->kind) {
  case KIND_COUNT:
  case KIND_TOTAL:
  case KIND_SIZE:
  case KIND_DURATION:
  case KIND_INTERVAL:
    why = quantity_from_text(f->kind, text, &q);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->kind, why, 1), text);
    store(p, f->bit, q);
    return 0;
  case KIND_BOOL:
    if (!bool_from_text(text, &b))
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store(p, f->bit, (uint64_t)b);
    return 0;
  case KIND_TIER:
    if (jw_tier_parse(text, &tier) != 0)
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store(p, f->bit, (uint64_t)tier);
    return 0;
  case KIND_TOKEN: {
    jw_token_mode_t mode;
    if (jw_token_mode_parse(text, &mode) != 0)
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store(p, f->bit, (uint64_t)mode);
    return 0;
  }
  case KIND_HASH_CAP:
    why = size_from_text(text, &q);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->kind, why, 1), text);
    store(p, f->bit, q);
    return 0;
  case KIND_KEY_FILE:
    if (text[0] == '\0' || strlen(text) >= JW_POLICY_PATH_MAX)
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store_key_file(p, f, text);
    return 0;
  case KIND_NAME:
    if (!name_is_valid(text, strlen(text)))
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store_name(p, text, strlen(text));
    return 0;
  case KIND_UI:
    return ui_from_text(cx, where, text, p);
  case KIND_ACTION: {
    jw_rule_action_t a = action_parse(text, strlen(text));
    if (a == JW_ACTION_DEFAULT)
      return fail_text(cx, where, expected_text(f->kind, VAL_BAD, 1), text);
    store(p, f->bit, (uint64_t)a);
    return 0;
  }
  case KIND_TAGS: {
    int rule = tagged_index(f->key);
    if (rule < 0)
      return fail_text(cx, where, "a valid value", text);
    return tag_append(cx, where, p, rule, text, strlen(text));
  }
  case KIND_IMAGE: {
    if (image_entry_check(cx, where, text, strlen(text)) != 0)
      return JW_EPOLICY;
    if (image_append(p, f->bit, text, strlen(text)) != 0) {
      char shown[SHOWN_SIZE];
      show_string(shown, text, strlen(text));
      return policy_fail(cx, where, "expected at most %d file names, got one more: %s",
                         JW_POLICY_MAX_IMAGES, shown);
    }
    return 0;
  }
  case KIND_MARGIN: {
    uint32_t bp = 0;
    why = margin_from_text(text, &bp);
    if (why != VAL_OK)
      return fail_text(cx, where, expected_text(f->kind, why, 1), text);
    store(p, f->bit, bp);
    return 0;
  }
  }
  return fail_text(cx, where, "a valid value", text);
}

int jw_policy_set(jw_policy_t *policy, const char *key, const char *value, const char *where,
                  jw_error_t *err) {
  const field_t *f;
  ctx_t cx;
  jw_policy_t work;
  int rc;
  if (policy == NULL || key == NULL || value == NULL)
    return jw_error_set(err, JW_EINVAL, 0, where ? where : "", "jw_policy_set: NULL argument");
  if (where == NULL)
    where = key;
  f = find_field(key, 0, 1);
  if (f == NULL) {
    char shown[SHOWN_SIZE];
    show_string(shown, key, strlen(key));
    return jw_error_set(err, JW_EINVAL, 0, where, "%s: unknown policy key %s (known: " SET_KEYS ")",
                        where, shown);
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

void jw_policy_resolve(const jw_policy_t *in, jw_policy_t *out) {
  uint32_t set;
  if (out != in)
    *out = *in;
  set = out->set;
  /* Kill-on-close in every tier, none included: a jobwarden that is
   * killed (by the agent itself, among others) must not leave the agent
   * running unwatched. Only an explicit kill_on_close: false turns it
   * off, and job_start says so. */
  if (!(set & JW_SET_KILL_ON_CLOSE))
    out->kill_on_close = 1;
  /* Lockdown runs the program with less than jobwarden: a restricted,
   * Low-integrity token. Elsewhere the program keeps jobwarden's token,
   * because a Low-integrity program cannot write the user's files (its
   * own working directory included) unless they are labelled for it. */
  if (!(set & JW_SET_TOKEN))
    out->token = out->tier == JW_TIER_LOCKDOWN ? JW_TOKEN_RESTRICTED_LOW : JW_TOKEN_INHERIT;
  if (out->tier == JW_TIER_HARDENED || out->tier == JW_TIER_LOCKDOWN) {
    if (!(set & JW_SET_DIE_ON_EXCEPTION))
      out->die_on_unhandled_exception = 1;
    if (!(set & JW_SET_BREAKAWAY))
      out->breakaway_ok = 0;
  }
  if (out->tier == JW_TIER_LOCKDOWN) {
    if (!(set & JW_SET_ACTIVE_PROCESSES))
      out->active_processes = 1;
    if (!(set & JW_SET_UI))
      out->ui_restrictions = JW_UI_ALL;
  }
  /* Each rule's default action: what a user who only sets the rule's
   * value means (a timeout ends the run, a cap or a list stops the
   * process); the active-process limit belongs to the kernel, so its
   * monitor fallback only reports unless asked. */
  if (out->timeout_action == JW_ACTION_DEFAULT)
    out->timeout_action = JW_ACTION_KILL_JOB;
  if (out->total_processes_action == JW_ACTION_DEFAULT)
    out->total_processes_action = JW_ACTION_KILL_PROCESS;
  if (out->image_action == JW_ACTION_DEFAULT)
    out->image_action = JW_ACTION_KILL_PROCESS;
  if (out->active_processes_action == JW_ACTION_DEFAULT)
    out->active_processes_action = JW_ACTION_REPORT;
  /* Escapes: stopped and looked for on a timer in the tiers that contain;
   * in none reported, and looked for only when the port says something. */
  if (out->escape_action == JW_ACTION_DEFAULT)
    out->escape_action = out->tier == JW_TIER_NONE ? JW_ACTION_REPORT : JW_ACTION_KILL_PROCESS;
  if (!(set & JW_SET_ESCAPE_SCAN))
    out->escape_scan_ms = out->tier == JW_TIER_NONE ? 0 : JW_ESCAPE_SCAN_DEFAULT_MS;
  if (!(set & JW_SET_COALESCE))
    out->coalesce_ms = JW_COALESCE_DEFAULT_MS;
  if (!(set & JW_SET_IMAGE_HASH_CAP))
    out->image_hash_cap = JW_IMAGE_HASH_CAP_DEFAULT;
  /* Warnings before the hard job limits are on unless the policy says. */
  if (!(set & JW_SET_NOTIFY_MARGIN))
    out->notification_margin_bp = JW_NOTIFY_MARGIN_DEFAULT_BP;
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

static const char *action_or_default(jw_rule_action_t a, jw_rule_action_t def) {
  return jw_rule_action_name(a == JW_ACTION_DEFAULT ? def : a);
}

static json_t *names_to_json(const char (*list)[JW_IMAGE_NAME_MAX], int n) {
  json_t *arr = json_array();
  int i;
  for (i = 0; arr != NULL && i < n && i < JW_POLICY_MAX_IMAGES; i++) {
    if (json_array_append_new(arr, json_string(list[i])) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static json_t *interval_to_json(uint64_t ms) {
  char buf[32];
  if (ms == 0)
    return json_string("off");
  snprintf(buf, sizeof buf, "%llums", (unsigned long long)ms);
  return json_string(buf);
}

/* The "rules" object (new reference, NULL on allocation failure). */
static json_t *rules_to_json(const jw_policy_t *p) {
  jw_rule_action_t esc = p->escape_action != JW_ACTION_DEFAULT ? p->escape_action
                         : p->tier == JW_TIER_NONE             ? JW_ACTION_REPORT
                                                               : JW_ACTION_KILL_PROCESS;
  json_t *rules = json_pack(
      "{s:{s:o,s:s},s:{s:o,s:s},s:{s:o,s:o,s:s},s:{s:s},s:{s:s,s:o},s:{s:o}}", "timeout", "after",
      duration_to_json(p->timeout_ms), "action",
      action_or_default(p->timeout_action, JW_ACTION_KILL_JOB), "total_processes", "max",
      p->max_total_processes ? json_integer(p->max_total_processes) : json_string("unlimited"),
      "action", action_or_default(p->total_processes_action, JW_ACTION_KILL_PROCESS), "images",
      "deny", names_to_json(p->deny_images, p->n_deny_images), "allow",
      names_to_json(p->allow_images, p->n_allow_images), "action",
      action_or_default(p->image_action, JW_ACTION_KILL_PROCESS), "active_processes", "action",
      action_or_default(p->active_processes_action, JW_ACTION_REPORT), "escape", "action",
      jw_rule_action_name(esc), "scan_interval", interval_to_json(p->escape_scan_ms), "coalesce",
      "window",
      interval_to_json((p->set & JW_SET_COALESCE) ? p->coalesce_ms : JW_COALESCE_DEFAULT_MS));
  /* The hashing cap, when the policy sets one (integer bytes). */
  if (rules != NULL && (p->set & JW_SET_IMAGE_HASH_CAP) &&
      json_object_set_new(json_object_get(rules, "images"), "hash_cap",
                          size_to_json(p->image_hash_cap)) != 0) {
    json_decref(rules);
    return NULL;
  }
  /* A rule's own tags, when the policy gives it some. */
  static const char *const tagged[JW_TAGGED_RULES] = {"timeout", "total_processes", "images",
                                                      "active_processes", "escape"};
  int r, k;
  for (r = 0; rules != NULL && r < JW_TAGGED_RULES; r++) {
    json_t *a;
    if (p->n_rule_tags[r] == 0)
      continue;
    a = json_array();
    for (k = 0; a != NULL && k < p->n_rule_tags[r] && k < JW_RULE_TAGS_POLICY_MAX; k++)
      json_array_append_new(a, json_string(p->rule_tags[r][k]));
    if (a == NULL || json_object_set_new(json_object_get(rules, tagged[r]), "tags", a) != 0) {
      json_decref(rules);
      return NULL;
    }
  }
  return rules;
}

void *jw_policy_to_json(const jw_policy_t *p) {
  json_t *root = json_object(), *limits = json_object(), *ui = json_array();
  const char *nul;
  size_t i;
  if (root == NULL || limits == NULL || ui == NULL)
    goto fail;
  if (json_object_set_new(root, "version", json_integer(1)) != 0)
    goto fail;
  /* The name is left out when empty ("use the default"): an empty name is
   * not valid in a policy file. */
  nul = memchr(p->name, '\0', sizeof p->name);
  if (nul != NULL && nul != p->name && json_object_set_new(root, "name", json_string(p->name)) != 0)
    goto fail;
  if (json_object_set_new(root, "tier", json_string(jw_tier_name(p->tier))) != 0)
    goto fail;
  if (json_object_set_new(limits, "active_processes",
                          p->active_processes ? json_integer(p->active_processes)
                                              : json_string("unlimited")) != 0 ||
      json_object_set_new(limits, "process_memory", size_to_json(p->process_memory)) != 0 ||
      json_object_set_new(limits, "job_memory", size_to_json(p->job_memory)) != 0 ||
      json_object_set_new(limits, "process_cpu_time", duration_to_json(p->process_time_ms)) != 0 ||
      json_object_set_new(limits, "job_cpu_time", duration_to_json(p->job_time_ms)) != 0)
    goto fail;
  /* The margin is shown where it matters (a job limit it applies to) or
   * where the policy chose it, always as the effective value: a policy
   * that does not set it gets the default. */
  if (p->job_memory != 0 || p->job_time_ms != 0 || (p->set & JW_SET_NOTIFY_MARGIN)) {
    char margin[16];
    margin_to_text((p->set & JW_SET_NOTIFY_MARGIN) ? p->notification_margin_bp
                                                   : JW_NOTIFY_MARGIN_DEFAULT_BP,
                   margin, sizeof margin);
    if (json_object_set_new(limits, "notification_margin", json_string(margin)) != 0)
      goto fail;
  }
  if (json_object_set_new(root, "limits", limits) != 0) {
    limits = NULL; /* stolen, even on failure */
    goto fail;
  }
  limits = NULL;
  for (i = 0; i < UI_NAME_COUNT; i++)
    if ((p->ui_restrictions & ui_names[i].bit) &&
        json_array_append_new(ui, json_string(ui_names[i].name)) != 0)
      goto fail;
  if (json_object_set_new(root, "ui_restrictions", ui) != 0) {
    ui = NULL;
    goto fail;
  }
  ui = NULL;
  if (json_object_set_new(root, "kill_on_close", json_boolean(p->kill_on_close)) != 0 ||
      json_object_set_new(root, "die_on_unhandled_exception",
                          json_boolean(p->die_on_unhandled_exception)) != 0 ||
      json_object_set_new(root, "allow_breakaway", json_boolean(p->breakaway_ok)) != 0 ||
      json_object_set_new(root, "token", json_string(jw_token_mode_name(p->token))) != 0)
    goto fail;
  /* Rules are rendered when any is set (like exporters), each in full. */
  if (p->set & (JW_SET_RULES | JW_SET_ESCAPE_ACTION | JW_SET_ESCAPE_SCAN | JW_SET_COALESCE |
                JW_SET_RULE_TAGS | JW_SET_IMAGE_HASH_CAP)) {
    json_t *rules = rules_to_json(p);
    if (rules == NULL || json_object_set_new(root, "rules", rules) != 0)
      goto fail;
  }
  if (p->set & JW_SET_SEAL) {
    json_t *seal =
        json_pack("{s:s}", p->seal_key_existing ? "existing_key" : "new_key", p->seal_key);
    if (seal == NULL || json_object_set_new(root, "seal", seal) != 0)
      goto fail;
  }
  if (p->n_exporters > 0) {
    json_t *ex = json_array();
    int k;
    if (ex == NULL || json_object_set_new(root, "exporters", ex) != 0)
      goto fail;
    for (k = 0; k < p->n_exporters && k < JW_POLICY_MAX_EXPORTERS; k++)
      if (json_array_append_new(ex, json_string(p->exporters[k])) != 0)
        goto fail;
  }
  return root;
fail:
  json_decref(ui);
  json_decref(limits);
  json_decref(root);
  return NULL;
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

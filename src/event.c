/* The event model: one jw_event_t becomes one JSON object (schema 2.0.0,
 * docs/events.md) and one JSON Lines record. The key order is fixed here
 * and is part of the format: consumers may diff lines, tests compare them
 * byte for byte. Strings are hostile input: every one goes through
 * make_string(), which never drops a field on invalid UTF-8. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_names.h"
#include "internal.h"
#include "rule_catalog.h"

void jw_event_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                   const char *enforcer, const char *source, jw_severity_t sev) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = kind;
  ev->rule = rule;
  ev->action = action;
  ev->enforcer = enforcer;
  ev->source = source;
  ev->severity = sev;
}

const char *jw_event_kind_name(jw_event_kind_t kind) {
  switch (kind) {
  case JW_EVENT_VIOLATION:
    return "sandbox.violation";
  case JW_EVENT_JOB_START:
    return "sandbox.job_start";
  case JW_EVENT_JOB_END:
    return "sandbox.job_end";
  case JW_EVENT_PROCESS_START:
    return "sandbox.process_start";
  case JW_EVENT_PROCESS_EXIT:
    return "sandbox.process_exit";
  case JW_EVENT_NOTICE:
    return "sandbox.notice";
  case JW_EVENT_TELEMETRY_GAP:
    return "sandbox.telemetry_gap";
  case JW_EVENT_PROCESS_UPDATE:
    return "sandbox.process_update";
  }
  /* Not NULL: an out-of-range kind still renders (and fails the schema). */
  return "unknown";
}

const char *jw_severity_name(jw_severity_t sev) {
  switch (sev) {
  case JW_SEV_INFO:
    return "info";
  case JW_SEV_LOW:
    return "low";
  case JW_SEV_MEDIUM:
    return "medium";
  case JW_SEV_HIGH:
    return "high";
  case JW_SEV_CRITICAL:
    return "critical";
  }
  return "unknown";
}

const char *jw__job_message_name(uint32_t id) {
  /* Index = JOB_OBJECT_MSG_* value; 5 was never assigned. */
  static const char *const names[] = {
      NULL,
      "JOB_OBJECT_MSG_END_OF_JOB_TIME",
      "JOB_OBJECT_MSG_END_OF_PROCESS_TIME",
      "JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT",
      "JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO",
      NULL,
      "JOB_OBJECT_MSG_NEW_PROCESS",
      "JOB_OBJECT_MSG_EXIT_PROCESS",
      "JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS",
      "JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT",
      "JOB_OBJECT_MSG_JOB_MEMORY_LIMIT",
      "JOB_OBJECT_MSG_NOTIFICATION_LIMIT",
      "JOB_OBJECT_MSG_JOB_CYCLE_TIME_LIMIT",
      "JOB_OBJECT_MSG_SILO_TERMINATED",
  };
  if (id < sizeof(names) / sizeof(names[0]) && names[id] != NULL)
    return names[id];
  return "UNKNOWN";
}

/* ---- time and identity -------------------------------------------------- */

/* 9999-12-31T23:59:59.999999Z, the last instant RFC 3339 can write. */
#define TIME_US_MAX UINT64_C(253402300799999999)

/* Days since 1970-01-01 to a proleptic Gregorian date. Counting from
 * 0000-03-01 puts the leap day at the end of each year, so a year is 365
 * days plus one every 4 years except every 100 except every 400, and months
 * from March follow a fixed 153-days-per-5-months pattern. Pure integer
 * arithmetic: the same result on every platform, no gmtime, no time_t. */
static void civil_from_days(uint64_t days, unsigned *year, unsigned *month, unsigned *day) {
  const uint64_t z = days + 719468; /* days from 0000-03-01 to 1970-01-01 */
  const uint64_t era = z / 146097;  /* 400-year cycles */
  const uint64_t doe = z - era * 146097;
  const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const uint64_t mp = (5 * doy + 2) / 153; /* 0 = March ... 11 = February */
  uint64_t y = era * 400 + yoe;
  const unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
  if (m <= 2)
    y++;
  *year = (unsigned)y;
  *month = m;
  *day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
}

/* "00" .. "99": two digits per lookup. Every line writes two to four time
 * stamps and several numbers; a division per digit showed in profiles. */
static const char digit_pairs[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* v (< 100) as two digits at p. */
static inline void put2(char *p, unsigned v) {
  memcpy(p, digit_pairs + 2 * v, 2);
}

/* The 27 characters "2026-11-23T09:11:05.123456Z" of time_us (already
 * clamped to TIME_US_MAX) at t, no terminator. */
static void format_time27(uint64_t time_us, char *t) {
  uint64_t secs = time_us / 1000000;
  unsigned us = (unsigned)(time_us % 1000000), sod = (unsigned)(secs % 86400), y, mo, d;
  civil_from_days(secs / 86400, &y, &mo, &d);
  /* Digits by hand, not snprintf (the year is at most 9999, clamped). */
  put2(t, y / 100);
  put2(t + 2, y % 100);
  t[4] = '-';
  put2(t + 5, mo);
  t[7] = '-';
  put2(t + 8, d);
  t[10] = 'T';
  put2(t + 11, sod / 3600);
  t[13] = ':';
  put2(t + 14, sod / 60 % 60);
  t[16] = ':';
  put2(t + 17, sod % 60);
  t[19] = '.';
  put2(t + 20, us / 10000);
  put2(t + 22, us / 100 % 100);
  put2(t + 24, us % 100);
  t[26] = 'Z';
}

/* Times after year 9999 are written as the last representable instant
 * rather than as a 5-digit year that no RFC 3339 parser accepts. */
void jw_format_time_us(uint64_t time_us, char *buf, size_t size) {
  char t[28];
  if (buf == NULL || size == 0)
    return;
  if (time_us > TIME_US_MAX)
    time_us = TIME_US_MAX;
  format_time27(time_us, t);
  t[27] = '\0';
  if (size >= sizeof(t))
    memcpy(buf, t, sizeof(t));
  else
    jw__strlcpy(buf, t, size); /* cut like snprintf would */
}

void jw_format_entity_id(uint32_t pid, uint64_t create_time, char *buf, size_t size) {
  if (buf == NULL || size == 0)
    return;
  if (size < 32) {
    snprintf(buf, size, "%" PRIu32 "-%016" PRIX64, pid, create_time);
    return;
  }
  {
    static const char hex[] = "0123456789ABCDEF";
    char digits[10];
    int n = 0, i;
    do {
      digits[n++] = (char)('0' + pid % 10);
      pid /= 10;
    } while (pid != 0);
    for (i = 0; i < n; i++)
      buf[i] = digits[n - 1 - i];
    buf[n++] = '-';
    for (i = 15; i >= 0; i--)
      buf[n + 15 - i] = hex[(create_time >> (4 * i)) & 15];
    buf[n + 16] = '\0';
  }
}

/* ---- strings ------------------------------------------------------------ */

/* Whether the bytes at s[i] start a well-formed UTF-8 character: 1 with
 * *adv its length, or 0 with *adv the length of the maximal subpart that
 * one U+FFFD replaces, as Unicode recommends (a truncated 3-byte sequence
 * is one subpart, a stray continuation byte one each). Well-formed means:
 * shortest form, no surrogates, at most U+10FFFF — what jansson checks.
 * The one statement of these rules: utf8_sanitize and the direct renderer
 * both use it. */
static int utf8_sequence(const unsigned char *s, size_t len, size_t i, size_t *adv) {
  unsigned char c = s[i];
  size_t need, k;
  unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
  if (c < 0x80) {
    *adv = 1;
    return 1;
  } else if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0; /* overlong */
    else if (c == 0xED)
      hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90; /* overlong */
    else if (c == 0xF4)
      hi = 0x8F; /* above U+10FFFF */
  } else {
    *adv = 1; /* 80..C1, F5..FF can never start a sequence */
    return 0;
  }
  for (k = 1; k <= need; k++) {
    unsigned char bl = k == 1 ? lo : 0x80, bh = k == 1 ? hi : 0xBF;
    if (i + k >= len || s[i + k] < bl || s[i + k] > bh)
      break;
  }
  *adv = k; /* k <= need: bytes i .. i+k-1 are the maximal subpart */
  return k > need;
}

/* Copies s to dst (when not NULL) replacing every ill-formed UTF-8 sequence
 * by U+FFFD (utf8_sequence). 0 bytes are kept. Returns the output length;
 * at most 3 * len. */
static size_t utf8_sanitize(const unsigned char *s, size_t len, char *dst) {
  size_t i = 0, n = 0, adv;
  while (i < len) {
    if (utf8_sequence(s, len, i, &adv)) {
      if (dst)
        memcpy(dst + n, s + i, adv);
      n += adv;
    } else {
      if (dst)
        memcpy(dst + n, "\xEF\xBF\xBD", 3);
      n += 3;
    }
    i += adv;
  }
  return n;
}

/* A JSON string for len bytes at s (new reference): jansson's own copy when
 * it accepts the bytes, else a copy with ill-formed UTF-8 replaced. NULL s
 * is JSON null, on purpose. Returns NULL only when out of memory. */
static json_t *make_string(const char *s, size_t len) {
  json_t *j;
  char *clean;
  size_t n;
  if (s == NULL)
    return json_null();
  j = json_stringn(s, len);
  if (j != NULL)
    return j;
  if (len > ((size_t)-1) / 3)
    return NULL;
  clean = malloc(3 * len + 1);
  if (clean == NULL)
    return NULL;
  n = utf8_sanitize((const unsigned char *)s, len, clean);
  j = json_stringn(clean, n);
  free(clean);
  return j;
}

static json_t *make_cstring(const char *s) {
  return make_string(s, s ? strlen(s) : 0);
}

/* A fixed-size char array that should hold a C string but might not end
 * with a 0 byte: stop at the array's end. */
static json_t *make_bounded(const char *s, size_t size) {
  const char *end = memchr(s, '\0', size);
  return make_string(s, end ? (size_t)(end - s) : size);
}

/* jansson integers are signed 64-bit; values above INT64_MAX (no real
 * counter gets there) are clamped rather than wrapped to negative. */
static json_t *make_u64(uint64_t v) {
  return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)v);
}

/* Sets key to value, stealing value. Returns -1 when value is NULL (a failed
 * allocation upstream) or the insertion fails, so that no field is ever
 * silently missing: the caller abandons the whole object instead. */
static int put(json_t *obj, const char *key, json_t *value) {
  if (value == NULL)
    return -1;
  return json_object_set_new(obj, key, value);
}

/* ---- the event object --------------------------------------------------- */

/* Keys jobwarden sets itself; ev->extra can never add or replace them, even
 * when this event leaves them out (a process-less event cannot acquire a
 * forged "process" object through extra). */
static const char *const reserved_keys[] = {
    "schema_version", "event",    "seq",      "@timestamp",  "emitted", "host",
    "agent",          "user",     "run_id",   "job",         "rule",    "rule_id",
    "action",         "enforcer", "severity", "source",      "tags",    "job_message",
    "limit",          "process",  "message",  "unavailable",
};

static int is_reserved(const char *key) {
  size_t i;
  for (i = 0; i < sizeof(reserved_keys) / sizeof(reserved_keys[0]); i++)
    if (strcmp(key, reserved_keys[i]) == 0)
      return 1;
  return 0;
}

static const char *exit_class_name(jw_exit_class_t c) {
  switch (c) {
  case JW_EXIT_SUCCESS:
    return "success";
  case JW_EXIT_FAILURE:
    return "failure";
  case JW_EXIT_ABNORMAL:
    return "abnormal";
  }
  return "unknown";
}

/* FILETIME ticks (100 ns since 1601) of a plausible moment (after 1970)
 * to "2026-11-23T09:11:05.123456Z"; 0 when not plausible. */
#define FILETIME_UNIX_EPOCH 116444736000000000ull
static int format_filetime(uint64_t ft, char *buf, size_t size) {
  if (ft <= FILETIME_UNIX_EPOCH)
    return 0;
  jw_format_time_us((ft - FILETIME_UNIX_EPOCH) / 10u, buf, size);
  return 1;
}

int jw__filetime_iso(uint64_t filetime, char *buf, size_t size) {
  return format_filetime(filetime, buf, size);
}

/* A counted string (len 0 = C string), as the image is kept. */
static json_t *make_counted(const char *s, size_t len) {
  return len != 0 ? make_string(s, len) : make_cstring(s);
}

size_t jw__utf8_cut(const char *s, size_t len, size_t max) {
  size_t cut = max;
  if (len <= max)
    return len;
  while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
    cut--;
  return cut;
}

int jw__json_put_cut(void *obj, const char *key, const char *s, size_t len, size_t max) {
  char marker[64];
  size_t cut;
  if (s == NULL)
    return put(obj, key, json_null());
  if (len == 0)
    len = strlen(s);
  cut = jw__utf8_cut(s, len, max);
  if (put(obj, key, make_string(s, cut)) != 0)
    return -1;
  if (cut == len)
    return 0;
  snprintf(marker, sizeof(marker), "%s_truncated", key);
  return put(obj, marker, json_true());
}

static json_t *ancestry_to_json(const jw_process_info_t *p) {
  json_t *a = json_array();
  size_t i;
  char buf[48];
  if (a == NULL)
    return NULL;
  for (i = 0; i < p->n_ancestry; i++) {
    const jw_process_ref_t *r = &p->ancestry[i];
    json_t *e = json_object();
    if (e == NULL || json_array_append_new(a, e) != 0 || put(e, "pid", json_integer(r->pid)) != 0)
      goto fail;
    if (r->create_time != 0) {
      jw_format_entity_id(r->pid, r->create_time, buf, sizeof(buf));
      if (put(e, "entity_id", json_string(buf)) != 0)
        goto fail;
    }
    /* Cut long paths: up to 32 ancestors are repeated in every event. */
    if (jw__json_put_cut(e, "executable", r->image, r->image_len, JW_ANCESTOR_IMAGE_MAX) != 0)
      goto fail;
    if (r->sha256 != NULL) {
      json_t *h = json_object();
      if (h == NULL || put(e, "hash", h) != 0 || put(h, "sha256", make_cstring(r->sha256)) != 0)
        goto fail;
    }
  }
  return a;
fail:
  json_decref(a);
  return NULL;
}

static json_t *ms_from_100ns(uint64_t v) {
  return make_u64(v / 10000u);
}

/* The enrichment of schema 1.2.0, after is_root and the exit fields. */
static int put_enrichment(json_t *o, const jw_process_info_t *p) {
  char buf[48];
  size_t i;
  if (p->command_line != NULL &&
      put(o, "command_line", make_counted(p->command_line, p->command_line_len)) != 0)
    return -1;
  if (p->command_line != NULL && p->command_line_truncated &&
      put(o, "command_line_truncated", json_true()) != 0)
    return -1;
  if (p->user_sid != NULL) {
    json_t *u = json_object();
    if (u == NULL || put(o, "user", u) != 0 || put(u, "sid", make_cstring(p->user_sid)) != 0 ||
        put(u, "name", make_cstring(p->user_name)) != 0)
      return -1;
  }
  if (p->integrity != NULL && put(o, "integrity", json_string(p->integrity)) != 0)
    return -1;
  if (p->ancestry != NULL || p->n_ancestry != 0 || p->ancestry_truncated) {
    if (put(o, "ancestry", ancestry_to_json(p)) != 0)
      return -1;
    if (p->ancestry_truncated && put(o, "ancestry_truncated", json_true()) != 0)
      return -1;
  }
  if (format_filetime(p->create_time, buf, sizeof(buf)) && put(o, "start", json_string(buf)) != 0)
    return -1;
  if (format_filetime(p->end_time, buf, sizeof(buf))) {
    if (put(o, "end", json_string(buf)) != 0)
      return -1;
    if (p->create_time > FILETIME_UNIX_EPOCH && p->end_time >= p->create_time &&
        put(o, "lifetime_ms", ms_from_100ns(p->end_time - p->create_time)) != 0)
      return -1;
  }
  if (p->has_peak_working_set) {
    json_t *m = json_object();
    if (m == NULL || put(o, "memory", m) != 0 ||
        put(m, "peak_working_set", make_u64(p->peak_working_set)) != 0 ||
        put(m, "from", json_string(p->peak_working_set_from ? p->peak_working_set_from : "exit")) !=
            0)
      return -1;
  }
  if (p->has_cpu) {
    json_t *c = json_object();
    if (c == NULL || put(o, "cpu", c) != 0 ||
        put(c, "user_ms", ms_from_100ns(p->cpu_user_100ns)) != 0 ||
        put(c, "kernel_ms", ms_from_100ns(p->cpu_kernel_100ns)) != 0)
      return -1;
  }
  if (p->has_io) {
    json_t *io = json_object();
    if (io == NULL || put(o, "io", io) != 0 || put(io, "read_ops", make_u64(p->io_read_ops)) != 0 ||
        put(io, "write_ops", make_u64(p->io_write_ops)) != 0 ||
        put(io, "other_ops", make_u64(p->io_other_ops)) != 0 ||
        put(io, "read_bytes", make_u64(p->io_read_bytes)) != 0 ||
        put(io, "write_bytes", make_u64(p->io_write_bytes)) != 0 ||
        put(io, "other_bytes", make_u64(p->io_other_bytes)) != 0)
      return -1;
  }
  if (p->n_unavailable != 0) {
    json_t *u = json_object();
    if (u == NULL || put(o, "unavailable", u) != 0)
      return -1;
    for (i = 0; i < p->n_unavailable && i < JW_UNAVAILABLE_MAX; i++)
      if (p->unavailable[i].field != NULL &&
          put(u, p->unavailable[i].field, make_cstring(p->unavailable[i].reason)) != 0)
        return -1;
  }
  return 0;
}

/* A string member when the value is there ("" counts as absent). */
static int put_opt(json_t *o, const char *key, const char *v) {
  if (v == NULL || v[0] == '\0')
    return 0;
  return put(o, key, make_cstring(v));
}

/* The executable identity of schema 2.0.0, after executable. */
static int put_identity(json_t *o, const jw_process_info_t *p) {
  if (p->sha256 != NULL) {
    json_t *h = json_object();
    if (h == NULL || put(o, "hash", h) != 0 || put(h, "sha256", make_cstring(p->sha256)) != 0)
      return -1;
  }
  if (p->has_image_size && put(o, "image_size", make_u64(p->image_size)) != 0)
    return -1;
  if (p->pe_original_file_name || p->pe_company || p->pe_product || p->pe_description ||
      p->pe_file_version) {
    json_t *pe = json_object();
    if (pe == NULL || put(o, "pe", pe) != 0 ||
        put_opt(pe, "original_file_name", p->pe_original_file_name) != 0 ||
        put_opt(pe, "company", p->pe_company) != 0 || put_opt(pe, "product", p->pe_product) != 0 ||
        put_opt(pe, "description", p->pe_description) != 0 ||
        put_opt(pe, "file_version", p->pe_file_version) != 0)
      return -1;
    if (json_object_size(pe) == 0)
      json_object_del(o, "pe");
  }
  if (p->has_code_signature) {
    json_t *cs = json_object();
    if (cs == NULL || put(o, "code_signature", cs) != 0 ||
        put(cs, "exists", json_boolean(p->cs_exists)) != 0 ||
        put(cs, "status", make_cstring(p->cs_status)) != 0 ||
        put_opt(cs, "subject_name", p->cs_subject_name) != 0 ||
        put(cs, "trusted", json_boolean(p->cs_trusted)) != 0)
      return -1;
  }
  return 0;
}

static json_t *process_to_json(const jw_process_info_t *p) {
  json_t *o = json_object();
  char buf[48];
  if (o == NULL)
    return NULL;
  if (put(o, "pid", json_integer(p->pid)) != 0)
    goto fail;
  if (p->create_time != 0) {
    jw_format_entity_id(p->pid, p->create_time, buf, sizeof(buf));
    if (put(o, "entity_id", json_string(buf)) != 0)
      goto fail;
  }
  /* A counted image keeps every U+0000 and what follows it (jansson
   * escapes the 0 byte); image_len 0 is the plain C string. NULL image is
   * null either way. */
  if (put(o, "executable", make_counted(p->image, p->image_len)) != 0)
    goto fail;
  if (p->image_truncated && put(o, "image_truncated", json_true()) != 0)
    goto fail;
  if (put_identity(o, p) != 0)
    goto fail;
  if (p->has_parent) {
    json_t *parent = json_object();
    if (parent == NULL || put(o, "parent", parent) != 0 ||
        put(parent, "pid", json_integer(p->parent_pid)) != 0)
      goto fail;
    if (p->parent_create_time != 0) {
      jw_format_entity_id(p->parent_pid, p->parent_create_time, buf, sizeof(buf));
      if (put(parent, "entity_id", json_string(buf)) != 0)
        goto fail;
    }
  }
  if (put(o, "is_root", json_boolean(p->is_root)) != 0)
    goto fail;
  if (p->has_exit_code) {
    const char *status = jw_ntstatus_name(p->exit_code);
    snprintf(buf, sizeof(buf), "0x%08" PRIX32, p->exit_code);
    if (put(o, "exit_code", json_integer(p->exit_code)) != 0 ||
        put(o, "exit_code_hex", json_string(buf)) != 0 ||
        put(o, "status", status ? json_string(status) : json_null()) != 0 ||
        put(o, "exit_class", json_string(exit_class_name(jw_exit_classify(p->exit_code)))) != 0)
      goto fail;
  }
  if (put_enrichment(o, p) != 0)
    goto fail;
  return o;
fail:
  json_decref(o);
  return NULL;
}

/* Builds the object in schema order. Every put() failure means out of
 * memory; the half-built object is released and NULL returned, so a caller
 * never renders an event with a field missing. */
/* An action that says something was done to the offending thing; only
 * these name who did it (enforcer). */
static int action_acts(const char *action) {
  return action != NULL && (strcmp(action, "blocked") == 0 || strcmp(action, "terminated") == 0 ||
                            strcmp(action, "killed_job") == 0);
}

/* host, agent and user: the context of every event (schema 2.0.0). */
static int put_context(json_t *o, const jw_run_info_t *run) {
  json_t *host = json_object(), *os, *agent, *user;
  if (host == NULL || put(o, "host", host) != 0 ||
      put(host, "name", make_bounded(run->host, sizeof(run->host))) != 0)
    return -1;
  if (run->host_id[0] != '\0' &&
      put(host, "id", make_bounded(run->host_id, sizeof(run->host_id))) != 0)
    return -1;
  if (run->os_name[0] != '\0') {
    os = json_object();
    if (os == NULL || put(host, "os", os) != 0 ||
        put(os, "name", make_bounded(run->os_name, sizeof(run->os_name))) != 0)
      return -1;
    if (run->os_version[0] != '\0' &&
        put(os, "version", make_bounded(run->os_version, sizeof(run->os_version))) != 0)
      return -1;
    if (run->os_build[0] != '\0' &&
        put(os, "build", make_bounded(run->os_build, sizeof(run->os_build))) != 0)
      return -1;
    if (run->wine_version[0] != '\0' &&
        put(os, "wine_version", make_bounded(run->wine_version, sizeof(run->wine_version))) != 0)
      return -1;
  }
  agent = json_object();
  if (agent == NULL || put(o, "agent", agent) != 0 ||
      put(agent, "name", json_string("jobwarden")) != 0 ||
      put(agent, "version", json_string(JW_VERSION)) != 0)
    return -1;
  if (run->agent_build[0] != '\0' &&
      put(agent, "build", make_bounded(run->agent_build, sizeof(run->agent_build))) != 0)
    return -1;
  if (run->user_id[0] != '\0') {
    user = json_object();
    if (user == NULL || put(o, "user", user) != 0 ||
        put(user, "id", make_bounded(run->user_id, sizeof(run->user_id))) != 0)
      return -1;
    if (run->user_name[0] != '\0' &&
        put(user, "name", make_bounded(run->user_name, sizeof(run->user_name))) != 0)
      return -1;
    if (run->user_domain[0] != '\0' &&
        put(user, "domain", make_bounded(run->user_domain, sizeof(run->user_domain))) != 0)
      return -1;
  }
  return 0;
}

/* The rule's catalog tags, then this occurrence's own, without repeats;
 * then the run's own (a sink without certificate checks: every event of
 * the run says so). */
static json_t *make_tags(const jw_rule_info_t *info, const jw_event_t *ev,
                         const jw_run_info_t *run) {
  json_t *a = json_array();
  size_t i, k;
  if (a == NULL)
    return NULL;
  for (i = 0; info != NULL && i < JW_RULE_TAGS_MAX && info->tags[i] != NULL; i++)
    if (json_array_append_new(a, json_string(info->tags[i])) != 0)
      goto fail;
  for (i = 0; i < sizeof(ev->tags) / sizeof(ev->tags[0]) && ev->tags[i] != NULL; i++) {
    int seen = 0;
    for (k = 0; k < json_array_size(a); k++)
      if (strcmp(json_string_value(json_array_get(a, k)), ev->tags[i]) == 0)
        seen = 1;
    if (!seen && json_array_append_new(a, make_cstring(ev->tags[i])) != 0)
      goto fail;
  }
  if (run != NULL && run->insecure_transport &&
      json_array_append_new(a, json_string(JW_TAG_INSECURE_TRANSPORT)) != 0)
    goto fail;
  return a;
fail:
  json_decref(a);
  return NULL;
}

/* Builds the object in schema order. Every put() failure means out of
 * memory; the half-built object is released and NULL returned, so a caller
 * never renders an event with a field missing. */
void *jw_event_to_json(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                       uint64_t time_us) {
  json_t *o, *sub;
  const json_t *extra = NULL;
  const jw_rule_info_t *info;
  char when[32], emitted[32];

  if (ev == NULL || run == NULL)
    return NULL;
  if (ev->extra != NULL && json_is_object((json_t *)ev->extra))
    extra = (const json_t *)ev->extra;
  o = json_object();
  if (o == NULL)
    return NULL;
  /* @timestamp is when it happened, "emitted" when this line was made: a
   * timeline sorted on @timestamp puts a reconciled exit where the exit
   * was, not where jobwarden found it. */
  jw_format_time_us(ev->time_us != 0 ? ev->time_us : time_us, when, sizeof(when));
  jw_format_time_us(time_us, emitted, sizeof(emitted));

  if (put(o, "schema_version", json_string(JW_SCHEMA_VERSION)) != 0 ||
      put(o, "event", json_string(jw_event_kind_name(ev->kind))) != 0 ||
      put(o, "seq", make_u64(seq)) != 0 || put(o, "@timestamp", json_string(when)) != 0 ||
      put(o, "emitted", json_string(emitted)) != 0)
    goto fail;

  if (put_context(o, run) != 0)
    goto fail;
  if (put(o, "run_id", make_bounded(run->run_id, sizeof(run->run_id))) != 0)
    goto fail;
  sub = json_object();
  if (sub == NULL || put(o, "job", sub) != 0 ||
      put(sub, "name", make_bounded(run->job_name, sizeof(run->job_name))) != 0 ||
      put(sub, "tier", make_cstring(jw_tier_name(run->tier))) != 0)
    goto fail;

  /* NULL here is a producer bug: it renders as null, which the schema
   * rejects, so the tests catch it while the event itself is not lost. */
  info = jw_rule_info(ev->rule);
  if (put(o, "rule", make_cstring(ev->rule)) != 0)
    goto fail;
  if (info != NULL && put(o, "rule_id", json_string(info->id)) != 0)
    goto fail;
  if (put(o, "action", make_cstring(ev->action)) != 0)
    goto fail;
  /* Who acted, only when someone did: with "observed", "reported",
   * "not_enforced" nobody stopped anything and no enforcer is named. */
  if (action_acts(ev->action) && put(o, "enforcer", make_cstring(ev->enforcer)) != 0)
    goto fail;
  if (put(o, "severity", json_string(jw_severity_name(ev->severity))) != 0 ||
      put(o, "source", make_cstring(ev->source)) != 0 ||
      put(o, "tags", make_tags(info, ev, run)) != 0)
    goto fail;

  if (ev->has_job_message) {
    sub = json_object();
    if (sub == NULL || put(o, "job_message", sub) != 0 ||
        put(sub, "id", json_integer(ev->job_message)) != 0 ||
        put(sub, "name", json_string(jw__job_message_name(ev->job_message))) != 0)
      goto fail;
  }

  if (ev->has_limit) {
    sub = json_object();
    if (sub == NULL || put(o, "limit", sub) != 0 ||
        put(sub, "name", make_cstring(ev->limit_name)) != 0 ||
        put(sub, "unit", make_cstring(ev->limit_unit)) != 0 ||
        put(sub, "configured",
            ev->limit_configured ? make_u64(ev->limit_configured) : json_null()) != 0)
      goto fail;
    if (ev->has_limit_observed && put(sub, "observed", make_u64(ev->limit_observed)) != 0)
      goto fail;
    if (ev->limit_hard != 0 && put(sub, "hard_limit", make_u64(ev->limit_hard)) != 0)
      goto fail;
    if (ev->has_limit_observed && ev->limit_observed_source != NULL &&
        put(sub, "observed_source", json_string(ev->limit_observed_source)) != 0)
      goto fail;
    /* A value that could not be measured says why, instead of a number:
     * never a 0 that stands for "unknown". */
    if (!ev->has_limit_observed && ev->limit_unavailable[0] != '\0') {
      json_t *why = json_object();
      if (why == NULL || put(sub, "observed_unavailable", why) != 0 ||
          put(why, "reason", make_bounded(ev->limit_unavailable, sizeof(ev->limit_unavailable))) !=
              0)
        goto fail;
      if (ev->limit_unavailable_where != NULL &&
          put(why, "where", json_string(ev->limit_unavailable_where)) != 0)
        goto fail;
      if (ev->has_limit_unavailable_error &&
          put(why, "win32_error", json_integer(ev->limit_unavailable_error)) != 0)
        goto fail;
    }
  }

  if (ev->has_process && put(o, "process", process_to_json(&ev->process)) != 0)
    goto fail;

  if (put(o, "message", make_bounded(ev->message, sizeof(ev->message))) != 0)
    goto fail;

  if (run->n_unavailable != 0) {
    size_t i;
    sub = json_object();
    if (sub == NULL || put(o, "unavailable", sub) != 0)
      goto fail;
    for (i = 0; i < run->n_unavailable && i < JW_CONTEXT_UNAVAILABLE_MAX; i++)
      if (put(sub, run->unavailable[i].field,
              make_bounded(run->unavailable[i].reason, sizeof(run->unavailable[i].reason))) != 0)
        goto fail;
  }

  if (extra != NULL) {
    const char *key;
    json_t *value;
    /* Borrowed values: json_object_set takes its own reference. The cast
     * is needed because jansson's iteration macro is not const-correct. */
    json_object_foreach((json_t *)extra, key, value) {
      if (is_reserved(key))
        continue;
      if (json_object_set(o, key, value) != 0)
        goto fail;
    }
  }
  return o;
fail:
  json_decref(o);
  return NULL;
}

/* ---- the JSON Lines record ---------------------------------------------- */

struct line_buf {
  char *data;
  size_t len, cap;
};

/* json_dump_callback sink: our own malloc'd buffer, so the caller frees the
 * line with free() whatever allocator jansson was given. */
static int line_append(const char *chunk, size_t size, void *data) {
  struct line_buf *b = data;
  if (size > b->cap - b->len - 2) { /* keep room for "\n\0" */
    size_t cap = b->cap;
    char *p;
    while (size > cap - b->len - 2) {
      if (cap > ((size_t)-1) / 2)
        return -1;
      cap *= 2;
    }
    p = realloc(b->data, cap);
    if (p == NULL)
      return -1;
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->len, chunk, size);
  b->len += size;
  return 0;
}

int jw__event_render_jansson(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                             uint64_t time_us, char **out, size_t *out_len) {
  struct line_buf b = {NULL, 0, 1024};
  json_t *obj;
  int rc;

  if (out == NULL)
    return JW_EINVAL;
  *out = NULL;
  if (out_len)
    *out_len = 0;
  obj = jw_event_to_json(ev, run, seq, time_us);
  if (obj == NULL)
    return ev == NULL || run == NULL ? JW_EINVAL : JW_ENOMEM;
  b.data = malloc(b.cap);
  if (b.data == NULL) {
    json_decref(obj);
    return JW_ENOMEM;
  }
  /* Compact, one line: jansson escapes every control character, so "\n"
   * never appears inside a record. Key order is insertion order. */
  rc = json_dump_callback(obj, line_append, &b, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(obj);
  if (rc != 0) {
    free(b.data);
    return JW_ENOMEM;
  }
  b.data[b.len++] = '\n';
  b.data[b.len] = '\0';
  *out = b.data;
  if (out_len)
    *out_len = b.len;
  return 0;
}

/* ---- the direct renderer ------------------------------------------------ */

/* jw_event_render_line writes the line straight into one buffer, in the
 * order and with the escaping of the reference above (the object built by
 * jw_event_to_json, dumped by jansson with JSON_COMPACT): the reference
 * costs ~20 us per event in allocations, hash tables and a second UTF-8
 * pass; this costs ~1 us. The two are compared byte for byte over every
 * event of tests/unit/test_event.c and the fuzzer's (tests/unit/test_fuzz.c).
 * What the reference would refuse or merge (an invalid UTF-8 or repeated
 * key in an `unavailable` map, an invalid tag, a repeated key in extra, a
 * string jansson's json_string refuses) goes to the reference, which stays
 * the authority; extra's values are dumped by jansson itself. */

typedef struct {
  char *p;
  size_t len, cap;
  int oom;      /* an allocation failed: the line is abandoned */
  int fallback; /* the reference must render this event */
  /* The second last written by ob_time and its 20 characters
   * "2026-11-23T09:11:05.": @timestamp and emitted mostly share it. */
  uint64_t t_sec;
  char t_head[20];
} obuf_t;

static int ob_grow(obuf_t *b, size_t more) {
  size_t cap;
  char *n;
  if (b->oom)
    return -1;
  cap = b->cap;
  while (more > cap - b->len) {
    if (cap > ((size_t)-1) / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  n = realloc(b->p, cap);
  if (n == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = n;
  b->cap = cap;
  return 0;
}

/* Room for `more` bytes: the check inline (a line makes ~100 appends), the
 * growth apart. */
static inline int ob_reserve(obuf_t *b, size_t more) {
  return more <= b->cap - b->len ? 0 : ob_grow(b, more);
}

/* Inline: most appends are literals of a known length, which the compiler
 * then copies with a few moves instead of a call to memcpy. */
static inline void ob_raw(obuf_t *b, const char *s, size_t n) {
  if (ob_reserve(b, n) == 0) {
    memcpy(b->p + b->len, s, n);
    b->len += n;
  }
}
#define OB_LIT(b, lit) ob_raw((b), (lit), sizeof(lit) - 1)

/* Bytes jansson's dump writes as they are (0), escapes (1), or that start a
 * multi-byte character to check (2): controls, '"' (0x22), '\\' (0x5C). */
static const unsigned char ob_classes[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
#define ob_class(c) ob_classes[(unsigned char)(c)]

/* The bytes of the 8 in x that are < 0x20, '"', '\\' or >= 0x80, each as
 * its top bit (the classic "has a zero byte" test on x, x ^ '"' and
 * x ^ '\\'). A borrow can only mark bytes above a byte that really is
 * special, so the lowest marked byte is exact: on a little-endian machine
 * the first special byte of the word is at ctz(mask) / 8. */
static inline uint64_t word_special(uint64_t x) {
  const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
  uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
  uint64_t r = (x - ones * 0x20) | ((q - ones) & ~q) | ((bs - ones) & ~bs) | x;
  return r & high;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define OB_WORD_SCAN 1
#else
#define OB_WORD_SCAN 0
#endif

/* Copies the bytes from u[i] on that need neither escaping nor a UTF-8
 * check to o, eight at a time, then one by one; returns how many. Each
 * word is stored whole before it is looked at (o must have room for 8
 * more bytes than the run: ob_str_as reserves 6 per input byte), so a run
 * costs no call to memcpy: between a path's backslashes are a few bytes. */
static inline size_t copy_plain(const unsigned char *u, size_t i, size_t len, char *o) {
  size_t j = i;
  for (; j + 8 <= len; j += 8) {
    uint64_t x, m;
    memcpy(&x, u + j, 8);
    memcpy(o + (j - i), &x, 8);
    m = word_special(x);
    if (m != 0) {
#if OB_WORD_SCAN
      return j + ((size_t)__builtin_ctzll(m) >> 3) - i;
#else
      break;
#endif
    }
  }
#if OB_WORD_SCAN
  /* Fewer than 8 bytes left: the string's last 8 bytes as one word when
   * they start at or after i (bytes i .. j-1 are plain, so stored again
   * unchanged and no borrow comes from them), the bytes before j masked
   * off. */
  if (j < len && len - i >= 8) {
    uint64_t x, m;
    size_t at = len - 8, skip = j - at;
    memcpy(&x, u + at, 8);
    memcpy(o + (at - i), &x, 8);
    m = word_special(x) >> (8 * skip) << (8 * skip);
    return m != 0 ? at + ((size_t)__builtin_ctzll(m) >> 3) - i : len - i;
  }
#endif
  for (; j < len && ob_class(u[j]) == 0; j++)
    o[j - i] = (char)u[j];
  return j - i;
}

/* A JSON string of len bytes at s as make_string() + jansson's dump give
 * it: ill-formed UTF-8 replaced by U+FFFD (utf8_sequence, the rules of
 * utf8_sanitize), '"', '\\' and the controls escaped, the rest verbatim.
 * strict: ill-formed UTF-8 is the reference's to render instead
 * (b->fallback; what json_string refuses), found in the same pass. */
static inline void ob_str_as(obuf_t *b, const char *s, size_t len, int strict) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  char *o;
  if (len > (((size_t)-1) - 2) / 6) {
    b->oom = 1;
    return;
  }
  if (ob_reserve(b, 6 * len + 2) != 0)
    return;
  o = b->p + b->len;
  *o++ = '"';
  while (i < len) {
    unsigned char c;
    /* Output so far <= 1 + 6 * i bytes, and 6 * len + 2 are reserved: a
     * word stored at o fits while 8 input bytes remain. */
    size_t run = copy_plain(u, i, len, o), adv;
    o += run;
    i += run;
    if (i == len)
      break;
    c = u[i];
    if (ob_class(c) == 1) {
      *o++ = '\\';
      switch (c) {
      case '"':
      case '\\':
        *o++ = (char)c;
        break;
      case '\b':
        *o++ = 'b';
        break;
      case '\f':
        *o++ = 'f';
        break;
      case '\n':
        *o++ = 'n';
        break;
      case '\r':
        *o++ = 'r';
        break;
      case '\t':
        *o++ = 't';
        break;
      default:
        memcpy(o, "u00", 3);
        o[3] = hex[c >> 4];
        o[4] = hex[c & 15];
        o += 5;
      }
      i++;
      continue;
    }
    if (utf8_sequence(u, len, i, &adv)) {
      memcpy(o, s + i, adv);
      o += adv;
    } else if (strict) {
      b->fallback = 1;
      return;
    } else {
      memcpy(o, "\xEF\xBF\xBD", 3);
      o += 3;
    }
    i += adv;
  }
  *o++ = '"';
  b->len = (size_t)(o - b->p);
}

static void ob_str(obuf_t *b, const char *s, size_t len) {
  ob_str_as(b, s, len, 0);
}

/* make_string / make_cstring / make_bounded / make_counted. */
static void ob_string(obuf_t *b, const char *s, size_t len) {
  if (s == NULL)
    OB_LIT(b, "null");
  else
    ob_str(b, s, len);
}
static void ob_cstring(obuf_t *b, const char *s) {
  ob_string(b, s, s ? strlen(s) : 0);
}
static void ob_bounded(obuf_t *b, const char *s, size_t size) {
  const char *end = memchr(s, '\0', size);
  ob_str(b, s, end ? (size_t)(end - s) : size);
}
static void ob_counted(obuf_t *b, const char *s, size_t len) {
  if (len != 0)
    ob_string(b, s, len);
  else
    ob_cstring(b, s);
}

static int utf8_valid(const char *s, size_t len) {
  size_t i = 0, adv;
  while (i < len) {
    if ((unsigned char)s[i] < 0x80) {
      uint64_t x;
      /* ASCII eight bytes at a time (no top bit set in the word). */
      while (i + 8 <= len && (memcpy(&x, s + i, 8), (x & UINT64_C(0x8080808080808080)) == 0))
        i += 8;
      if (i < len && (unsigned char)s[i] < 0x80)
        i++;
      continue;
    }
    if (!utf8_sequence((const unsigned char *)s, len, i, &adv))
      return 0;
    i += adv;
  }
  return 1;
}

/* What the reference makes with json_string(s): refused (the whole event
 * fails there) for NULL or ill-formed UTF-8; that case is the reference's. */
static void ob_jstring(obuf_t *b, const char *s) {
  size_t len;
  if (s == NULL) {
    b->fallback = 1;
    return;
  }
  len = strlen(s);
  ob_str_as(b, s, len, 1);
}

static void ob_i64(obuf_t *b, int64_t v) {
  char buf[24], *e = buf + sizeof(buf), *p = e;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  while (u >= 100) {
    p -= 2;
    put2(p, (unsigned)(u % 100));
    u /= 100;
  }
  if (u >= 10) {
    p -= 2;
    put2(p, (unsigned)u);
  } else {
    *--p = (char)('0' + u);
  }
  if (v < 0)
    *--p = '-';
  ob_raw(b, p, (size_t)(e - p));
}

/* make_u64: clamped at INT64_MAX like the reference. */
static void ob_u64(obuf_t *b, uint64_t v) {
  ob_i64(b, v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

static void ob_bool(obuf_t *b, int v) {
  if (v)
    OB_LIT(b, "true");
  else
    OB_LIT(b, "false");
}

/* A key the reference sets with put(): jansson refuses ill-formed UTF-8
 * keys (the reference fails) and keeps a repeated key once, at its first
 * place, with the last value: both are the reference's to render. `keys`
 * holds the keys of the map so far (n of them). */
static int ob_map_key(obuf_t *b, const char *key, const char **keys, size_t n) {
  size_t i, len = strlen(key);
  if (!utf8_valid(key, len)) {
    b->fallback = 1;
    return -1;
  }
  for (i = 0; i < n; i++)
    if (strcmp(keys[i], key) == 0) {
      b->fallback = 1;
      return -1;
    }
  if (n != 0)
    OB_LIT(b, ",");
  ob_str(b, key, len);
  OB_LIT(b, ":");
  return 0;
}

/* "2026-11-23T09:11:05.123456Z" in quotes (jw_format_time_us). */
static void ob_time(obuf_t *b, uint64_t time_us) {
  char *o;
  unsigned us;
  if (ob_reserve(b, 29) != 0)
    return;
  if (time_us > TIME_US_MAX)
    time_us = TIME_US_MAX;
  o = b->p + b->len;
  o[0] = '"';
  if (time_us / 1000000 == b->t_sec) {
    memcpy(o + 1, b->t_head, 20);
    us = (unsigned)(time_us % 1000000);
    put2(o + 21, us / 10000);
    put2(o + 23, us / 100 % 100);
    put2(o + 25, us % 100);
    o[27] = 'Z';
  } else {
    format_time27(time_us, o + 1);
    b->t_sec = time_us / 1000000;
    memcpy(b->t_head, o + 1, 20);
  }
  o[28] = '"';
  b->len += 29;
}

static void ob_entity_id(obuf_t *b, uint32_t pid, uint64_t create_time) {
  char buf[48];
  size_t n;
  buf[0] = '"';
  jw_format_entity_id(pid, create_time, buf + 1, sizeof(buf) - 2);
  n = strlen(buf);
  buf[n++] = '"';
  ob_raw(b, buf, n);
}

/* jw__json_put_cut: ,"key":value[,"key_truncated":true] */
static void ob_put_cut(obuf_t *b, const char *key_lit, const char *trunc_lit, const char *s,
                       size_t len, size_t max) {
  size_t cut;
  ob_raw(b, key_lit, strlen(key_lit));
  if (s == NULL) {
    OB_LIT(b, "null");
    return;
  }
  if (len == 0)
    len = strlen(s);
  cut = jw__utf8_cut(s, len, max);
  ob_str(b, s, cut);
  if (cut != len)
    ob_raw(b, trunc_lit, strlen(trunc_lit));
}

static void ob_unavailable_process(obuf_t *b, const jw_process_info_t *p) {
  const char *keys[JW_UNAVAILABLE_MAX];
  size_t i, n = 0;
  OB_LIT(b, ",\"unavailable\":{");
  for (i = 0; i < p->n_unavailable && i < JW_UNAVAILABLE_MAX; i++) {
    if (p->unavailable[i].field == NULL)
      continue;
    if (ob_map_key(b, p->unavailable[i].field, keys, n) != 0)
      return;
    keys[n++] = p->unavailable[i].field;
    ob_cstring(b, p->unavailable[i].reason);
  }
  OB_LIT(b, "}");
}

static void ob_process(obuf_t *b, const jw_process_info_t *p) {
  char buf[48];
  size_t i;
  OB_LIT(b, ",\"process\":{\"pid\":");
  ob_i64(b, p->pid);
  if (p->create_time != 0) {
    OB_LIT(b, ",\"entity_id\":");
    ob_entity_id(b, p->pid, p->create_time);
  }
  OB_LIT(b, ",\"executable\":");
  ob_counted(b, p->image, p->image_len);
  if (p->image_truncated)
    OB_LIT(b, ",\"image_truncated\":true");
  /* put_identity */
  if (p->sha256 != NULL) {
    OB_LIT(b, ",\"hash\":{\"sha256\":");
    ob_cstring(b, p->sha256);
    OB_LIT(b, "}");
  }
  if (p->has_image_size) {
    OB_LIT(b, ",\"image_size\":");
    ob_u64(b, p->image_size);
  }
  {
    static const char *const pe_keys[] = {"original_file_name", "company", "product", "description",
                                          "file_version"};
    const char *pe_vals[5];
    int k, first = 1;
    pe_vals[0] = p->pe_original_file_name;
    pe_vals[1] = p->pe_company;
    pe_vals[2] = p->pe_product;
    pe_vals[3] = p->pe_description;
    pe_vals[4] = p->pe_file_version;
    for (k = 0; k < 5; k++) {
      if (pe_vals[k] == NULL || pe_vals[k][0] == '\0')
        continue; /* put_opt: "" is absent; "pe" only when one is there */
      ob_raw(b, first ? ",\"pe\":{\"" : ",\"", first ? 8 : 2);
      ob_raw(b, pe_keys[k], strlen(pe_keys[k]));
      OB_LIT(b, "\":");
      ob_cstring(b, pe_vals[k]);
      first = 0;
    }
    if (!first)
      OB_LIT(b, "}");
  }
  if (p->has_code_signature) {
    OB_LIT(b, ",\"code_signature\":{\"exists\":");
    ob_bool(b, p->cs_exists);
    OB_LIT(b, ",\"status\":");
    ob_cstring(b, p->cs_status);
    if (p->cs_subject_name != NULL && p->cs_subject_name[0] != '\0') {
      OB_LIT(b, ",\"subject_name\":");
      ob_cstring(b, p->cs_subject_name);
    }
    OB_LIT(b, ",\"trusted\":");
    ob_bool(b, p->cs_trusted);
    OB_LIT(b, "}");
  }
  if (p->has_parent) {
    OB_LIT(b, ",\"parent\":{\"pid\":");
    ob_i64(b, p->parent_pid);
    if (p->parent_create_time != 0) {
      OB_LIT(b, ",\"entity_id\":");
      ob_entity_id(b, p->parent_pid, p->parent_create_time);
    }
    OB_LIT(b, "}");
  }
  OB_LIT(b, ",\"is_root\":");
  ob_bool(b, p->is_root);
  if (p->has_exit_code) {
    const char *status = jw_ntstatus_name(p->exit_code);
    OB_LIT(b, ",\"exit_code\":");
    ob_i64(b, p->exit_code);
    snprintf(buf, sizeof(buf), ",\"exit_code_hex\":\"0x%08" PRIX32 "\"", p->exit_code);
    ob_raw(b, buf, strlen(buf));
    OB_LIT(b, ",\"status\":");
    if (status != NULL)
      ob_jstring(b, status);
    else
      OB_LIT(b, "null");
    OB_LIT(b, ",\"exit_class\":");
    ob_jstring(b, exit_class_name(jw_exit_classify(p->exit_code)));
  }
  /* put_enrichment */
  if (p->command_line != NULL) {
    OB_LIT(b, ",\"command_line\":");
    ob_counted(b, p->command_line, p->command_line_len);
    if (p->command_line_truncated)
      OB_LIT(b, ",\"command_line_truncated\":true");
  }
  if (p->user_sid != NULL) {
    OB_LIT(b, ",\"user\":{\"sid\":");
    ob_cstring(b, p->user_sid);
    OB_LIT(b, ",\"name\":");
    ob_cstring(b, p->user_name);
    OB_LIT(b, "}");
  }
  if (p->integrity != NULL) {
    OB_LIT(b, ",\"integrity\":");
    ob_jstring(b, p->integrity);
  }
  if (p->ancestry != NULL || p->n_ancestry != 0 || p->ancestry_truncated) {
    OB_LIT(b, ",\"ancestry\":[");
    for (i = 0; i < p->n_ancestry; i++) {
      const jw_process_ref_t *r = &p->ancestry[i];
      ob_raw(b, i == 0 ? "{\"pid\":" : ",{\"pid\":", i == 0 ? 7 : 8);
      ob_i64(b, r->pid);
      if (r->create_time != 0) {
        OB_LIT(b, ",\"entity_id\":");
        ob_entity_id(b, r->pid, r->create_time);
      }
      ob_put_cut(b, ",\"executable\":", ",\"executable_truncated\":true", r->image, r->image_len,
                 JW_ANCESTOR_IMAGE_MAX);
      if (r->sha256 != NULL) {
        OB_LIT(b, ",\"hash\":{\"sha256\":");
        ob_cstring(b, r->sha256);
        OB_LIT(b, "}");
      }
      OB_LIT(b, "}");
    }
    OB_LIT(b, "]");
    if (p->ancestry_truncated)
      OB_LIT(b, ",\"ancestry_truncated\":true");
  }
  if (p->create_time > FILETIME_UNIX_EPOCH) {
    OB_LIT(b, ",\"start\":");
    ob_time(b, (p->create_time - FILETIME_UNIX_EPOCH) / 10u);
  }
  if (p->end_time > FILETIME_UNIX_EPOCH) {
    OB_LIT(b, ",\"end\":");
    ob_time(b, (p->end_time - FILETIME_UNIX_EPOCH) / 10u);
    if (p->create_time > FILETIME_UNIX_EPOCH && p->end_time >= p->create_time) {
      OB_LIT(b, ",\"lifetime_ms\":");
      ob_u64(b, (p->end_time - p->create_time) / 10000u);
    }
  }
  if (p->has_peak_working_set) {
    OB_LIT(b, ",\"memory\":{\"peak_working_set\":");
    ob_u64(b, p->peak_working_set);
    OB_LIT(b, ",\"from\":");
    ob_jstring(b, p->peak_working_set_from ? p->peak_working_set_from : "exit");
    OB_LIT(b, "}");
  }
  if (p->has_cpu) {
    OB_LIT(b, ",\"cpu\":{\"user_ms\":");
    ob_u64(b, p->cpu_user_100ns / 10000u);
    OB_LIT(b, ",\"kernel_ms\":");
    ob_u64(b, p->cpu_kernel_100ns / 10000u);
    OB_LIT(b, "}");
  }
  if (p->has_io) {
    OB_LIT(b, ",\"io\":{\"read_ops\":");
    ob_u64(b, p->io_read_ops);
    OB_LIT(b, ",\"write_ops\":");
    ob_u64(b, p->io_write_ops);
    OB_LIT(b, ",\"other_ops\":");
    ob_u64(b, p->io_other_ops);
    OB_LIT(b, ",\"read_bytes\":");
    ob_u64(b, p->io_read_bytes);
    OB_LIT(b, ",\"write_bytes\":");
    ob_u64(b, p->io_write_bytes);
    OB_LIT(b, ",\"other_bytes\":");
    ob_u64(b, p->io_other_bytes);
    OB_LIT(b, "}");
  }
  if (p->n_unavailable != 0)
    ob_unavailable_process(b, p);
  OB_LIT(b, "}");
}

/* Optional members of the run's context: ,"key":"bounded value" when set. */
static void ob_ctx(obuf_t *b, const char *key_lit, const char *v, size_t size) {
  if (v[0] == '\0')
    return;
  ob_raw(b, key_lit, strlen(key_lit));
  ob_bounded(b, v, size);
}

static void ob_context(obuf_t *b, const jw_run_info_t *run) {
  OB_LIT(b, ",\"host\":{\"name\":");
  ob_bounded(b, run->host, sizeof(run->host));
  ob_ctx(b, ",\"id\":", run->host_id, sizeof(run->host_id));
  if (run->os_name[0] != '\0') {
    OB_LIT(b, ",\"os\":{\"name\":");
    ob_bounded(b, run->os_name, sizeof(run->os_name));
    ob_ctx(b, ",\"version\":", run->os_version, sizeof(run->os_version));
    ob_ctx(b, ",\"build\":", run->os_build, sizeof(run->os_build));
    ob_ctx(b, ",\"wine_version\":", run->wine_version, sizeof(run->wine_version));
    OB_LIT(b, "}");
  }
  OB_LIT(b, "},\"agent\":{\"name\":\"jobwarden\",\"version\":\"" JW_VERSION "\"");
  ob_ctx(b, ",\"build\":", run->agent_build, sizeof(run->agent_build));
  OB_LIT(b, "}");
  if (run->user_id[0] != '\0') {
    OB_LIT(b, ",\"user\":{\"id\":");
    ob_bounded(b, run->user_id, sizeof(run->user_id));
    ob_ctx(b, ",\"name\":", run->user_name, sizeof(run->user_name));
    ob_ctx(b, ",\"domain\":", run->user_domain, sizeof(run->user_domain));
    OB_LIT(b, "}");
  }
}

static void ob_tags(obuf_t *b, const jw_rule_info_t *info, const jw_event_t *ev,
                    const jw_run_info_t *run) {
  const char *seen[JW_RULE_TAGS_MAX + sizeof(ev->tags) / sizeof(ev->tags[0])];
  size_t i, k, n = 0;
  OB_LIT(b, ",\"tags\":[");
  for (i = 0; info != NULL && i < JW_RULE_TAGS_MAX && info->tags[i] != NULL; i++) {
    if (n != 0)
      OB_LIT(b, ",");
    ob_jstring(b, info->tags[i]);
    seen[n++] = info->tags[i];
  }
  for (i = 0; i < sizeof(ev->tags) / sizeof(ev->tags[0]) && ev->tags[i] != NULL; i++) {
    int dup = 0;
    /* The reference compares with the stored (sanitized) tags. */
    if (!utf8_valid(ev->tags[i], strlen(ev->tags[i]))) {
      b->fallback = 1;
      return;
    }
    for (k = 0; k < n && !dup; k++)
      dup = strcmp(seen[k], ev->tags[i]) == 0;
    if (dup)
      continue;
    if (n != 0)
      OB_LIT(b, ",");
    ob_cstring(b, ev->tags[i]);
    seen[n++] = ev->tags[i];
  }
  if (run->insecure_transport) {
    if (n != 0)
      OB_LIT(b, ",");
    OB_LIT(b, "\"" JW_TAG_INSECURE_TRANSPORT "\"");
  }
  OB_LIT(b, "]");
}

static void ob_limit(obuf_t *b, const jw_event_t *ev) {
  OB_LIT(b, ",\"limit\":{\"name\":");
  ob_cstring(b, ev->limit_name);
  OB_LIT(b, ",\"unit\":");
  ob_cstring(b, ev->limit_unit);
  OB_LIT(b, ",\"configured\":");
  if (ev->limit_configured)
    ob_u64(b, ev->limit_configured);
  else
    OB_LIT(b, "null");
  if (ev->has_limit_observed) {
    OB_LIT(b, ",\"observed\":");
    ob_u64(b, ev->limit_observed);
  }
  if (ev->limit_hard != 0) {
    OB_LIT(b, ",\"hard_limit\":");
    ob_u64(b, ev->limit_hard);
  }
  if (ev->has_limit_observed && ev->limit_observed_source != NULL) {
    OB_LIT(b, ",\"observed_source\":");
    ob_jstring(b, ev->limit_observed_source);
  }
  if (!ev->has_limit_observed && ev->limit_unavailable[0] != '\0') {
    OB_LIT(b, ",\"observed_unavailable\":{\"reason\":");
    ob_bounded(b, ev->limit_unavailable, sizeof(ev->limit_unavailable));
    if (ev->limit_unavailable_where != NULL) {
      OB_LIT(b, ",\"where\":");
      ob_jstring(b, ev->limit_unavailable_where);
    }
    if (ev->has_limit_unavailable_error) {
      OB_LIT(b, ",\"win32_error\":");
      ob_i64(b, ev->limit_unavailable_error);
    }
    OB_LIT(b, "}");
  }
  OB_LIT(b, "}");
}

static int ob_dump_cb(const char *chunk, size_t size, void *data) {
  obuf_t *b = data;
  ob_raw(b, chunk, size);
  return b->oom ? -1 : 0;
}

/* extra's members after everything jobwarden sets, each value as jansson
 * dumps it (the same flags as the whole line). */
static void ob_extra(obuf_t *b, const json_t *extra) {
  const char *key, *prev;
  json_t *value, *other;
  json_object_foreach((json_t *)extra, key, value) {
    if (is_reserved(key))
      continue;
    /* A key repeated once cut at a U+0000 would be merged by the reference. */
    json_object_foreach((json_t *)extra, prev, other) {
      if (prev == key)
        break;
      if (strcmp(prev, key) == 0) {
        b->fallback = 1;
        return;
      }
    }
    OB_LIT(b, ",");
    ob_str(b, key, strlen(key));
    OB_LIT(b, ":");
    if (json_dump_callback(value, ob_dump_cb, b,
                           JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) != 0) {
      b->oom = 1;
      return;
    }
  }
}

/* ,"host":{..},"agent":{..}[,"user":{..}],"run_id":"..","job":{..}: the
 * part of every line that depends on the run alone. */
static void ob_run_context(obuf_t *b, const jw_run_info_t *run) {
  ob_context(b, run);
  OB_LIT(b, ",\"run_id\":");
  ob_bounded(b, run->run_id, sizeof(run->run_id));
  OB_LIT(b, ",\"job\":{\"name\":");
  ob_bounded(b, run->job_name, sizeof(run->job_name));
  OB_LIT(b, ",\"tier\":");
  ob_cstring(b, jw_tier_name(run->tier));
  OB_LIT(b, "}");
}

/* ,"unavailable":{..} of the run's context, when it has one; b->fallback
 * when only the reference can render it. */
static void ob_run_unavailable(obuf_t *b, const jw_run_info_t *run) {
  const char *keys[JW_CONTEXT_UNAVAILABLE_MAX];
  size_t i, n = 0;
  if (run->n_unavailable == 0)
    return;
  OB_LIT(b, ",\"unavailable\":{");
  for (i = 0; i < run->n_unavailable && i < JW_CONTEXT_UNAVAILABLE_MAX && !b->fallback; i++) {
    if (ob_map_key(b, run->unavailable[i].field, keys, n) != 0)
      break;
    keys[n++] = run->unavailable[i].field;
    ob_bounded(b, run->unavailable[i].reason, sizeof(run->unavailable[i].reason));
  }
  OB_LIT(b, "}");
}

/* 0 with the line in b, 1 when the reference must render it, -1 when out of
 * memory. frags: the run's parts rendered once (jw__run_frags_make), or
 * NULL to render them here. */
static int render_direct(obuf_t *b, const jw_event_t *ev, const jw_run_info_t *run,
                         const jw__run_frags_t *frags, uint64_t seq, uint64_t time_us) {
  const jw_rule_info_t *info = jw_rule_info(ev->rule);
  const json_t *extra = NULL;
  if (ev->extra != NULL && json_is_object((json_t *)ev->extra))
    extra = (const json_t *)ev->extra;
  OB_LIT(b, "{\"schema_version\":\"" JW_SCHEMA_VERSION "\",\"event\":");
  ob_jstring(b, jw_event_kind_name(ev->kind));
  OB_LIT(b, ",\"seq\":");
  ob_u64(b, seq);
  OB_LIT(b, ",\"@timestamp\":");
  ob_time(b, ev->time_us != 0 ? ev->time_us : time_us);
  OB_LIT(b, ",\"emitted\":");
  ob_time(b, time_us);
  if (frags != NULL && frags->context != NULL)
    ob_raw(b, frags->context, frags->context_len);
  else
    ob_run_context(b, run);
  OB_LIT(b, ",\"rule\":");
  ob_cstring(b, ev->rule);
  if (info != NULL) {
    OB_LIT(b, ",\"rule_id\":");
    ob_jstring(b, info->id);
  }
  OB_LIT(b, ",\"action\":");
  ob_cstring(b, ev->action);
  if (action_acts(ev->action)) {
    OB_LIT(b, ",\"enforcer\":");
    ob_cstring(b, ev->enforcer);
  }
  OB_LIT(b, ",\"severity\":");
  ob_jstring(b, jw_severity_name(ev->severity));
  OB_LIT(b, ",\"source\":");
  ob_cstring(b, ev->source);
  ob_tags(b, info, ev, run);
  if (ev->has_job_message) {
    OB_LIT(b, ",\"job_message\":{\"id\":");
    ob_i64(b, ev->job_message);
    OB_LIT(b, ",\"name\":");
    ob_jstring(b, jw__job_message_name(ev->job_message));
    OB_LIT(b, "}");
  }
  if (ev->has_limit)
    ob_limit(b, ev);
  if (ev->has_process)
    ob_process(b, &ev->process);
  OB_LIT(b, ",\"message\":");
  ob_bounded(b, ev->message, sizeof(ev->message));
  if (frags != NULL && frags->context != NULL) {
    if (frags->reference)
      b->fallback = 1;
    else
      ob_raw(b, frags->unavailable, frags->unavailable_len);
  } else {
    ob_run_unavailable(b, run);
  }
  if (extra != NULL && !b->fallback)
    ob_extra(b, extra);
  OB_LIT(b, "}\n");
  if (b->oom)
    return -1;
  return b->fallback ? 1 : 0;
}

/* JW_RENDER_CHECK=1 in the environment (scripts/test.sh sets it for every
 * test, Wine's included): every line the direct renderer makes is compared
 * with the reference's, and a difference stops the process with both lines
 * on stderr, so that every event of every test is checked, not only those
 * of unit.event and unit.fuzz. */
static int render_check_on(void) {
  static atomic_int on = -1;
  int v = atomic_load(&on);
  if (v < 0) {
    const char *e = getenv("JW_RENDER_CHECK");
    v = e != NULL && strcmp(e, "1") == 0;
    atomic_store(&on, v);
  }
  return v;
}

static void render_check(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                         uint64_t time_us, const char *line, size_t len) {
  char *ref = NULL;
  size_t ref_len = 0;
  int rc = jw__event_render_jansson(ev, run, seq, time_us, &ref, &ref_len);
  if (rc == JW_ENOMEM)
    return; /* no verdict without memory */
  if (rc != 0 || ref_len != len || memcmp(ref, line, len) != 0) {
    char head[64];
    int n = snprintf(head, sizeof(head), "jobwarden: JW_RENDER_CHECK: lines differ (rc %d)\n", rc);
    jw__stderr_write(head, (size_t)n);
    jw__stderr_write("direct:    ", 11);
    jw__stderr_write(line, len);
    jw__stderr_write("reference: ", 11);
    if (ref != NULL)
      jw__stderr_write(ref, ref_len);
    abort();
  }
  free(ref);
}

int jw__run_frags_make(const jw_run_info_t *run, jw__run_frags_t *f) {
  obuf_t b = {NULL, 0, 1024, 0, 0, UINT64_MAX, {0}};
  size_t ctx_len;
  memset(f, 0, sizeof(*f));
  atomic_init(&f->last_len, 0);
  b.p = malloc(b.cap);
  if (b.p == NULL)
    return JW_ENOMEM;
  ob_run_context(&b, run);
  ctx_len = b.len;
  ob_run_unavailable(&b, run);
  if (b.oom) {
    free(b.p);
    return JW_ENOMEM;
  }
  f->context = b.p;
  f->context_len = ctx_len;
  f->unavailable = b.p + ctx_len;
  f->unavailable_len = b.len - ctx_len;
  f->reference = b.fallback;
  return 0;
}

void jw__run_frags_free(jw__run_frags_t *f) {
  if (f == NULL)
    return;
  free(f->context);
  f->context = f->unavailable = NULL;
}

int jw__event_render_into(const jw_event_t *ev, const jw_run_info_t *run, jw__run_frags_t *frags,
                          uint64_t seq, uint64_t time_us, jw__linebuf_t *lb) {
  obuf_t b = {NULL, 0, 2048, 0, 0, UINT64_MAX, {0}};
  char *ref = NULL;
  size_t ref_len = 0;
  int rc;
  if (lb->buf != NULL && lb->cap > lb->head) {
    b.p = lb->buf; /* a recycled buffer */
    b.cap = lb->cap;
  } else {
    free(lb->buf);
    if (frags != NULL) {
      /* Sized after the run's last line, so that a queued line holds
       * not much more than its bytes; ob_grow doubles for a longer one.
       * Half as much again: ob_str reserves 6 bytes per byte of a string
       * (its worst case), and the message comes near the end. */
      size_t last = atomic_load_explicit(&frags->last_len, memory_order_relaxed);
      if (last != 0)
        b.cap = (lb->head + last + last / 2 + 256) & ~(size_t)63;
    }
    if (b.cap < lb->head + 64)
      b.cap = lb->head + 64;
    b.p = malloc(b.cap);
  }
  lb->buf = NULL;
  lb->cap = lb->len = 0;
  if (ev == NULL || run == NULL) {
    free(b.p);
    return JW_EINVAL;
  }
  if (b.p == NULL)
    return JW_ENOMEM;
  b.len = lb->head;
  rc = render_direct(&b, ev, run, frags, seq, time_us);
  if (rc == 0 && ob_reserve(&b, 1) == 0) {
    size_t len = b.len - lb->head;
    b.p[b.len] = '\0';
    if (render_check_on())
      render_check(ev, run, seq, time_us, b.p + lb->head, len);
    if (frags != NULL)
      atomic_store_explicit(&frags->last_len, len, memory_order_relaxed);
    lb->buf = b.p;
    lb->cap = b.cap;
    lb->len = len;
    return 0;
  }
  if (rc < 0 || b.oom) {
    free(b.p);
    return JW_ENOMEM;
  }
  /* The reference's line, moved behind the room. */
  rc = jw__event_render_jansson(ev, run, seq, time_us, &ref, &ref_len);
  if (rc == 0) {
    b.len = lb->head;
    b.oom = 0;
    if (ob_reserve(&b, ref_len + 1) != 0) {
      rc = JW_ENOMEM;
    } else {
      memcpy(b.p + lb->head, ref, ref_len + 1);
      lb->buf = b.p;
      lb->cap = b.cap;
      lb->len = ref_len;
      b.p = NULL;
    }
  }
  free(ref);
  free(b.p);
  return rc;
}

int jw_event_render_line(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                         uint64_t time_us, char **out, size_t *out_len) {
  jw__linebuf_t lb = {NULL, 0, 0, 0};
  int rc;
  if (out == NULL)
    return JW_EINVAL;
  *out = NULL;
  if (out_len)
    *out_len = 0;
  rc = jw__event_render_into(ev, run, NULL, seq, time_us, &lb);
  if (rc == 0) {
    *out = lb.buf;
    if (out_len)
      *out_len = lb.len;
  }
  return rc;
}

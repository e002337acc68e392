/* Output formats (format.h): a native event object -> ECS, -> OCSF.
 * The mapping is documented field by field in docs/integrations.md; what
 * ECS or OCSF has no field for is kept as it is under `jobwarden.*` (ECS:
 * custom fields nested under a proper name, as ECS advises) or
 * `unmapped.jobwarden.*` (OCSF's place for attributes outside the class).
 * Nothing is guessed: a field is filled only from a native field that
 * says the same thing; what the native line lacks stays absent. */
#include "format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rule_catalog.h"

int jw_format_parse(const char *name, jw_format_t *out) {
  if (name != NULL && strcmp(name, "native") == 0)
    *out = JW_FORMAT_NATIVE;
  else if (name != NULL && strcmp(name, "ecs") == 0)
    *out = JW_FORMAT_ECS;
  else if (name != NULL && strcmp(name, "ocsf") == 0)
    *out = JW_FORMAT_OCSF;
  else
    return JW_EINVAL;
  return 0;
}

const char *jw_format_name(jw_format_t f) {
  switch (f) {
  case JW_FORMAT_ECS:
    return "ecs";
  case JW_FORMAT_OCSF:
    return "ocsf";
  case JW_FORMAT_NATIVE:
    break;
  }
  return "native";
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

typedef enum {
  K_OTHER = 0,
  K_PROCESS_START,
  K_PROCESS_EXIT,
  K_PROCESS_UPDATE,
  K_VIOLATION,
  K_NOTICE,
  K_JOB_START,
  K_JOB_END,
  K_GAP
} kind_t;

static kind_t kind_of(const char *ev) {
  static const struct {
    const char *name;
    kind_t kind;
  } map[] = {
      {"sandbox.process_start", K_PROCESS_START},
      {"sandbox.process_exit", K_PROCESS_EXIT},
      {"sandbox.process_update", K_PROCESS_UPDATE},
      {"sandbox.violation", K_VIOLATION},
      {"sandbox.notice", K_NOTICE},
      {"sandbox.job_start", K_JOB_START},
      {"sandbox.job_end", K_JOB_END},
      {"sandbox.telemetry_gap", K_GAP},
  };
  size_t i;
  for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(map[i].name, ev) == 0)
      return map[i].kind;
  return K_OTHER;
}

static json_t *get(const json_t *o, const char *k) {
  return json_object_get(o, k);
}

static const char *str(const json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

/* Sets the dotted path of root to v (stolen; NULL is ignored), creating
 * the objects on the way. Returns 0, or -1 when memory ran out. */
static int put(json_t *root, const char *path, json_t *v) {
  char key[64];
  const char *dot;
  json_t *o = root;
  if (v == NULL)
    return 0;
  while ((dot = strchr(path, '.')) != NULL) {
    json_t *next;
    size_t n = (size_t)(dot - path);
    if (n >= sizeof(key))
      goto fail;
    memcpy(key, path, n);
    key[n] = '\0';
    next = json_object_get(o, key);
    if (!json_is_object(next)) {
      next = json_object();
      if (next == NULL || json_object_set_new(o, key, next) != 0)
        goto fail;
    }
    o = next;
    path = dot + 1;
  }
  return json_object_set_new(o, path, v);
fail:
  json_decref(v);
  return -1;
}

/* A new reference to a deep copy of v, NULL for NULL. */
static json_t *copy(const json_t *v) {
  return v != NULL ? json_deep_copy(v) : NULL;
}

static json_t *copy_str(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_deep_copy(v) : NULL;
}

/* The part of the string v after its last separator (sep: "\\/" for a
 * path, "\\" for DOMAIN\\name), as a new string; all of v when it has none;
 * NULL when v is not a string or nothing follows the separator. Works on
 * v's bytes with their length: a path may hold U+0000 (docs/events.md),
 * which stays in the result instead of cutting it. */
static json_t *last_part(const json_t *v, const char *sep) {
  const char *s = json_string_value(v), *b;
  size_t n, i;
  if (s == NULL)
    return NULL;
  n = json_string_length(v);
  for (b = s, i = 0; i < n; i++)
    if (s[i] != '\0' && strchr(sep, s[i]) != NULL)
      b = s + i + 1;
  return b < s + n ? json_stringn(b, (size_t)(s + n - b)) : NULL;
}

static json_t *base_name(const json_t *path) {
  return last_part(path, "\\/");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* "2026-11-23T09:11:05.123456Z" -> milliseconds since the epoch (the
 * fraction cut, not rounded: a time never moves into the next ms).
 * Returns 0, or -1 when s is not such a time. */
static int iso_to_ms(const char *s, int64_t *ms) {
  int y, mo, d, h, mi, se, n = 0;
  int64_t frac = 0;
  int digits = 0;
  if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 ||
      n != 19)
    return -1;
  s += n;
  if (*s == '.') {
    for (s++; *s >= '0' && *s <= '9'; s++, digits++)
      if (digits < 3)
        frac = frac * 10 + (*s - '0');
    while (digits > 0 && digits < 3) {
      frac *= 10;
      digits++;
    }
  }
  if (strcmp(s, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31)
    return -1;
  *ms = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 +
        (int64_t)se * 1000 + frac;
  return 0;
}

/* Milliseconds since the epoch -> "2026-11-23T09:11:05.123Z". */
static void ms_to_iso(int64_t ms, char *buf, size_t size) {
  int64_t days = ms / 86400000, rem = ms % 86400000, z, era, y;
  unsigned doe, yoe, doy, mp, d, m;
  if (rem < 0) {
    rem += 86400000;
    days--;
  }
  z = days + 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (unsigned)(z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = (int64_t)yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
           (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
           (int)(rem % 1000));
}

static json_t *ms_of(const json_t *o, const char *k) {
  int64_t ms;
  if (iso_to_ms(str(o, k), &ms) != 0)
    return NULL;
  return json_integer((json_int_t)ms);
}

/* 1..5 for info..critical (ECS event.severity and OCSF severity_id use the
 * same scale); 0 when unknown. */
static int severity_num(const char *s) {
  static const char *const names[] = {"info", "low", "medium", "high", "critical"};
  int i;
  for (i = 0; s != NULL && i < 5; i++)
    if (strcmp(s, names[i]) == 0)
      return i + 1;
  return 0;
}

/* The exit code as Windows tools show it: the 32-bit value read as signed
 * (0xC0000005 -> -1073741819). docs/integrations.md says why. */
static json_t *signed_exit_code(const json_t *p) {
  const json_t *v = json_object_get(p, "exit_code");
  if (!json_is_integer(v))
    return NULL;
  return json_integer((json_int_t)(int32_t)(uint32_t)json_integer_value(v));
}

/* Copies every member of src into dst except the keys in skip (NULL-ended). */
static int copy_except(json_t *dst, const json_t *src, const char *const *skip) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)src, k, v) {
    const char *const *s;
    int skipped = 0;
    for (s = skip; *s != NULL; s++)
      if (strcmp(*s, k) == 0)
        skipped = 1;
    if (!skipped && json_object_set_new(dst, k, json_deep_copy(v)) != 0)
      return -1;
  }
  return 0;
}

/* Sets dst[key] to a copy of the object src without the keys in skip,
 * unless nothing is left (or src is not an object). -1 on allocation
 * failure. */
static int put_rest(json_t *dst, const char *key, const json_t *src, const char *const *skip) {
  json_t *rest;
  if (!json_is_object(src))
    return 0;
  rest = json_object();
  if (rest == NULL || copy_except(rest, src, skip) != 0) {
    json_decref(rest);
    return -1;
  }
  if (json_object_size(rest) > 0)
    json_object_set(dst, key, rest);
  json_decref(rest);
  return 0;
}

/* What jobwarden keeps for itself (ECS jobwarden.*, OCSF
 * unmapped.jobwarden.*): every native member except those both formats
 * map to fields of their own; of host, agent and process the members
 * neither maps. */
static json_t *jobwarden_part(const json_t *n) {
  static const char *const top_skip[] = {"@timestamp", "emitted", "seq",      "host",
                                         "agent",      "user",    "rule_id",  "tags",
                                         "process",    "message", "severity", NULL};
  static const char *const host_skip[] = {"name", "id", "os", NULL};
  static const char *const os_skip[] = {"name", "version", NULL};
  static const char *const agent_skip[] = {"name", "version", "build", NULL};
  static const char *const proc_skip[] = {
      "pid",  "entity_id", "executable",     "command_line", "start", "end",
      "hash", "pe",        "code_signature", "parent",       NULL};
  json_t *jw = json_object(), *host, *os, *agent, *proc;
  if (jw == NULL || copy_except(jw, n, top_skip) != 0)
    goto fail;
  host = get(n, "host");
  os = get(host, "os");
  if (json_is_object(host)) {
    json_t *h = json_object(), *o = json_object();
    if (h == NULL || o == NULL || copy_except(h, host, host_skip) != 0 ||
        (json_is_object(os) && copy_except(o, os, os_skip) != 0)) {
      json_decref(h);
      json_decref(o);
      goto fail;
    }
    if (json_object_size(o) > 0)
      json_object_set(h, "os", o);
    json_decref(o);
    if (json_object_size(h) > 0)
      json_object_set(jw, "host", h);
    json_decref(h);
  }
  agent = get(n, "agent");
  proc = get(n, "process");
  if (put_rest(jw, "agent", agent, agent_skip) != 0 ||
      put_rest(jw, "process", proc, proc_skip) != 0)
    goto fail;
  return jw;
fail:
  json_decref(jw);
  return NULL;
}

/* ATT&CK names for the technique and tactic ids jobwarden's rules and
 * image tags use (rule_catalog.c), as ATT&CK names them. An id not in
 * this table is reported by id only. */
static const struct {
  const char *id, *name;
} attack_names[] = {
    {"T1059", "Command and Scripting Interpreter"},
    {"T1059.001", "PowerShell"},
    {"T1059.003", "Windows Command Shell"},
    {"T1059.005", "Visual Basic"},
    {"T1059.006", "Python"},
    {"T1059.007", "JavaScript"},
    {"T1134", "Access Token Manipulation"},
    {"T1134.004", "Parent PID Spoofing"},
    {"T1218", "System Binary Proxy Execution"},
    {"T1218.005", "Mshta"},
    {"T1562", "Impair Defenses"},
    {"T1562.001", "Disable or Modify Tools"},
    {"TA0002", "Execution"},
    {"TA0004", "Privilege Escalation"},
    {"TA0005", "Defense Evasion"},
};
/* Sigma's tactic tags and the ATT&CK tactic they name. */
static const struct {
  const char *tag, *id;
} attack_tactics[] = {
    {"attack.execution", "TA0002"},
    {"attack.privilege_escalation", "TA0004"},
    {"attack.defense_evasion", "TA0005"},
};

static const char *attack_name(const char *id) {
  size_t i;
  for (i = 0; i < sizeof(attack_names) / sizeof(attack_names[0]); i++)
    if (strcmp(attack_names[i].id, id) == 0)
      return attack_names[i].name;
  return NULL;
}

/* "attack.t1059.003" -> technique "T1059", sub "T1059.003" (sub[0] = 0
 * when there is none). Returns 0, or -1 when tag is not a technique tag. */
static int technique_of(const char *tag, char tech[8], char sub[12]) {
  const char *p = tag + 8;
  size_t i;
  if (strncmp(tag, "attack.t", 8) != 0)
    return -1;
  for (i = 0; i < 4; i++)
    if (p[i] < '0' || p[i] > '9')
      return -1;
  tech[0] = 'T';
  memcpy(tech + 1, p, 4);
  tech[5] = '\0';
  sub[0] = '\0';
  if (p[4] == '\0')
    return 0;
  if (p[4] != '.' || p[5] < '0' || p[5] > '9' || p[6] < '0' || p[6] > '9' || p[7] < '0' ||
      p[7] > '9' || p[8] != '\0')
    return -1;
  memcpy(sub, tech, 5);
  memcpy(sub + 5, p + 4, 4);
  sub[9] = '\0';
  return 0;
}

static const char *tactic_of(const char *tag) {
  size_t i;
  for (i = 0; i < sizeof(attack_tactics) / sizeof(attack_tactics[0]); i++)
    if (strcmp(attack_tactics[i].tag, tag) == 0)
      return attack_tactics[i].id;
  return NULL;
}

/* https://attack.mitre.org/techniques/T1059/003/ (or tactics/TA0005/). */
static json_t *attack_url(const char *id) {
  char buf[80];
  if (strncmp(id, "TA", 2) == 0)
    snprintf(buf, sizeof(buf), "https://attack.mitre.org/tactics/%s/", id);
  else if (strchr(id, '.') != NULL)
    snprintf(buf, sizeof(buf), "https://attack.mitre.org/techniques/%.5s/%s/", id,
             strchr(id, '.') + 1);
  else
    snprintf(buf, sizeof(buf), "https://attack.mitre.org/techniques/%s/", id);
  return json_string(buf);
}

static int append_str(json_t *arr, const char *s) {
  return s != NULL ? json_array_append_new(arr, json_string(s)) : 0;
}

/* ------------------------------------------------------------------------ */
/* ECS                                                                      */
/* ------------------------------------------------------------------------ */

/* threat.* from the ATT&CK tags (ECS: arrays, the subtechnique beside its
 * technique). Returns 0 or -1 (out of memory). */
static int ecs_threat(json_t *o, const json_t *tags) {
  json_t *tid = json_array(), *tname = json_array(), *tref = json_array();
  json_t *sid = json_array(), *sname = json_array(), *sref = json_array();
  json_t *aid = json_array(), *aname = json_array(), *aref = json_array();
  size_t i;
  int rc = -1;
  if (!tid || !tname || !tref || !sid || !sname || !sref || !aid || !aname || !aref)
    goto done;
  for (i = 0; i < json_array_size(tags); i++) {
    const char *tag = json_string_value(json_array_get(tags, i)), *ta;
    char tech[8], sub[12];
    if (tag == NULL)
      continue;
    if (technique_of(tag, tech, sub) == 0) {
      append_str(tid, tech);
      append_str(tname, attack_name(tech));
      json_array_append_new(tref, attack_url(tech));
      if (sub[0]) {
        append_str(sid, sub);
        append_str(sname, attack_name(sub));
        json_array_append_new(sref, attack_url(sub));
      }
    } else if ((ta = tactic_of(tag)) != NULL) {
      append_str(aid, ta);
      append_str(aname, attack_name(ta));
      json_array_append_new(aref, attack_url(ta));
    }
  }
  rc = 0;
  if (json_array_size(tid) + json_array_size(aid) == 0)
    goto done;
  rc = put(o, "threat.framework", json_string("MITRE ATT&CK"));
  /* A name only where every id of the array has one: the arrays of ids
   * and names must pair up. */
  if (json_array_size(tid) > 0) {
    rc |= put(o, "threat.technique.id", json_incref(tid));
    if (json_array_size(tname) == json_array_size(tid))
      rc |= put(o, "threat.technique.name", json_incref(tname));
    rc |= put(o, "threat.technique.reference", json_incref(tref));
  }
  if (json_array_size(sid) > 0) {
    rc |= put(o, "threat.technique.subtechnique.id", json_incref(sid));
    if (json_array_size(sname) == json_array_size(sid))
      rc |= put(o, "threat.technique.subtechnique.name", json_incref(sname));
    rc |= put(o, "threat.technique.subtechnique.reference", json_incref(sref));
  }
  if (json_array_size(aid) > 0) {
    rc |= put(o, "threat.tactic.id", json_incref(aid));
    if (json_array_size(aname) == json_array_size(aid))
      rc |= put(o, "threat.tactic.name", json_incref(aname));
    rc |= put(o, "threat.tactic.reference", json_incref(aref));
  }
done:
  json_decref(tid);
  json_decref(tname);
  json_decref(tref);
  json_decref(sid);
  json_decref(sname);
  json_decref(sref);
  json_decref(aid);
  json_decref(aname);
  json_decref(aref);
  return rc;
}

/* "DOMAIN\\name" -> name (ECS user.name is the short name). */
static json_t *short_user_name(const json_t *v) {
  return last_part(v, "\\");
}

/* "DOMAIN\\name" -> DOMAIN; NULL when there is no domain part. */
static json_t *user_domain(const json_t *v) {
  const char *s = json_string_value(v);
  size_t n = json_string_length(v), i, cut = 0;
  int found = 0;
  for (i = 0; s != NULL && i < n; i++)
    if (s[i] == '\\') {
      cut = i;
      found = 1;
    }
  return found ? json_stringn(s, cut) : NULL;
}

static int ecs_process(json_t *o, const json_t *p) {
  const json_t *parent = get(p, "parent"), *anc = json_array_get(get(p, "ancestry"), 0);
  const json_t *pe = get(p, "pe"), *cs = get(p, "code_signature"), *user = get(p, "user");
  const char *parent_eid = str(parent, "entity_id");
  int rc = 0;
  rc |= put(o, "process.pid", copy(get(p, "pid")));
  rc |= put(o, "process.entity_id", copy_str(p, "entity_id"));
  rc |= put(o, "process.executable", copy_str(p, "executable"));
  rc |= put(o, "process.name", base_name(get(p, "executable")));
  rc |= put(o, "process.command_line", copy_str(p, "command_line"));
  rc |= put(o, "process.start", copy_str(p, "start"));
  rc |= put(o, "process.end", copy_str(p, "end"));
  rc |= put(o, "process.exit_code", signed_exit_code(p));
  rc |= put(o, "process.hash.sha256", copy_str(get(p, "hash"), "sha256"));
  rc |= put(o, "process.pe.original_file_name", copy_str(pe, "original_file_name"));
  rc |= put(o, "process.pe.company", copy_str(pe, "company"));
  rc |= put(o, "process.pe.product", copy_str(pe, "product"));
  rc |= put(o, "process.pe.description", copy_str(pe, "description"));
  rc |= put(o, "process.pe.file_version", copy_str(pe, "file_version"));
  if (json_is_boolean(get(cs, "exists")))
    rc |= put(o, "process.code_signature.exists", copy(get(cs, "exists")));
  rc |= put(o, "process.code_signature.status", copy_str(cs, "status"));
  rc |= put(o, "process.code_signature.subject_name", copy_str(cs, "subject_name"));
  if (json_is_boolean(get(cs, "trusted")))
    rc |= put(o, "process.code_signature.trusted", copy(get(cs, "trusted")));
  rc |= put(o, "process.user.id", copy_str(user, "sid"));
  rc |= put(o, "process.user.name", short_user_name(get(user, "name")));
  if (json_is_integer(get(parent, "pid")))
    rc |= put(o, "process.parent.pid", copy(get(parent, "pid")));
  rc |= put(o, "process.parent.entity_id", copy_str(parent, "entity_id"));
  /* The parent's image is the first ancestry entry's, when that entry is
   * the same process (same entity_id). */
  if (parent_eid != NULL && str(anc, "entity_id") != NULL &&
      strcmp(parent_eid, str(anc, "entity_id")) == 0) {
    rc |= put(o, "process.parent.executable", copy_str(anc, "executable"));
    rc |= put(o, "process.parent.name", base_name(get(anc, "executable")));
  }
  return rc;
}

json_t *jw_format_ecs(const json_t *n) {
  const char *ev = str(n, "event"), *action = str(n, "action"), *rule = str(n, "rule");
  const json_t *host = get(n, "host"), *os = get(host, "os"), *agent = get(n, "agent");
  const json_t *user = get(n, "user");
  json_t *o, *category = NULL, *type = NULL;
  kind_t kind;
  int rc = 0, sev;
  if (!json_is_object(n) || ev == NULL || strcmp(ev, "sandbox.log_continued") == 0)
    return NULL;
  kind = kind_of(ev);
  o = json_object();
  if (o == NULL)
    return NULL;

  rc |= put(o, "@timestamp", copy_str(n, "@timestamp"));
  rc |= put(o, "ecs.version", json_string(JW_ECS_VERSION));

  /* event.*: categorization from ECS's allowed values only, and only the
   * category/type pairs ECS expects (docs/integrations.md). */
  rc |= put(o, "event.kind", json_string(kind == K_VIOLATION ? "alert" : "event"));
  switch (kind) {
  case K_PROCESS_START:
    category = json_pack("[s]", "process");
    type = json_pack("[s]", "start");
    break;
  case K_PROCESS_EXIT:
    category = json_pack("[s]", "process");
    type = json_pack("[s]", "end");
    break;
  case K_PROCESS_UPDATE:
    category = json_pack("[s]", "process");
    type = json_pack("[s]", "info");
    break;
  case K_VIOLATION: {
    int stopped =
        action != NULL && (strcmp(action, "blocked") == 0 || strcmp(action, "terminated") == 0 ||
                           strcmp(action, "killed_job") == 0);
    category = json_pack("[s]", "intrusion_detection");
    type = json_pack("[s]", stopped ? "denied" : "info");
    break;
  }
  case K_JOB_START:
    category = json_pack("[s]", "configuration");
    type = json_pack("[s]", "info");
    break;
  default:
    break;
  }
  rc |= put(o, "event.category", category);
  rc |= put(o, "event.type", type);
  if ((kind == K_VIOLATION || kind == K_NOTICE) && rule != NULL)
    rc |= put(o, "event.action", json_string(rule));
  else
    rc |= put(o, "event.action", json_string(strncmp(ev, "sandbox.", 8) == 0 ? ev + 8 : ev));
  if (action != NULL && (strcmp(action, "blocked") == 0 || strcmp(action, "lost") == 0))
    rc |= put(o, "event.outcome", json_string("failure"));
  else if (kind == K_PROCESS_START || kind == K_JOB_START)
    rc |= put(o, "event.outcome", json_string("success"));
  sev = severity_num(str(n, "severity"));
  if (sev > 0)
    rc |= put(o, "event.severity", json_integer(sev));
  rc |= put(o, "event.created", copy_str(n, "emitted"));
  if (json_is_integer(get(n, "seq")))
    rc |= put(o, "event.sequence", copy(get(n, "seq")));
  rc |= put(o, "event.module", json_string("jobwarden"));
  rc |= put(o, "event.dataset", json_string("jobwarden.events"));
  rc |= put(o, "event.provider", json_string("jobwarden"));
  rc |= put(o, "log.level", copy_str(n, "severity"));

  /* rule.*: the rule that decided (violations, notices, gap records). */
  if (kind == K_VIOLATION || kind == K_NOTICE || kind == K_GAP || get(n, "rule_id") != NULL) {
    const jw_rule_info_t *ri = jw_rule_info(rule);
    if (str(n, "rule_id") != NULL)
      rc |= put(o, "rule.id", copy_str(n, "rule_id"));
    else if (ri != NULL)
      rc |= put(o, "rule.id", json_string(ri->id));
    if (rule != NULL)
      rc |= put(o, "rule.name", json_string(rule));
    if (ri != NULL) {
      rc |= put(o, "rule.description", json_string(ri->description));
      rc |= put(o, "rule.category", json_string(ri->category));
    }
    rc |= put(o, "rule.ruleset", json_string("jobwarden"));
  }
  if (json_is_array(get(n, "tags")) && json_array_size(get(n, "tags")) > 0) {
    rc |= put(o, "tags", copy(get(n, "tags")));
    rc |= ecs_threat(o, get(n, "tags"));
  }

  rc |= put(o, "host.name", copy_str(host, "name"));
  rc |= put(o, "host.id", copy_str(host, "id"));
  rc |= put(o, "host.os.name", copy_str(os, "name"));
  rc |= put(o, "host.os.version", copy_str(os, "version"));
  if (str(os, "name") != NULL && strcmp(str(os, "name"), "Windows") == 0) {
    rc |= put(o, "host.os.type", json_string("windows"));
    rc |= put(o, "host.os.platform", json_string("windows"));
    rc |= put(o, "host.os.family", json_string("windows"));
  }
  if (str(os, "version") != NULL && str(os, "build") != NULL) {
    char kernel[96];
    snprintf(kernel, sizeof(kernel), "%.40s.%.40s", str(os, "version"), str(os, "build"));
    rc |= put(o, "host.os.kernel", json_string(kernel));
  }
  rc |= put(o, "agent.name", copy_str(agent, "name"));
  rc |= put(o, "agent.type", copy_str(agent, "name"));
  rc |= put(o, "agent.version", copy_str(agent, "version"));
  rc |= put(o, "agent.build.original", copy_str(agent, "build"));
  rc |= put(o, "user.id", copy_str(user, "id"));
  rc |= put(o, "user.name", copy_str(user, "name"));
  rc |= put(o, "user.domain", copy_str(user, "domain"));
  if (json_is_object(get(n, "process")))
    rc |= ecs_process(o, get(n, "process"));
  rc |= put(o, "message", copy_str(n, "message"));
  rc |= put(o, "jobwarden", jobwarden_part(n));
  if (rc != 0 || get(o, "jobwarden") == NULL) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ------------------------------------------------------------------------ */
/* OCSF                                                                     */
/* ------------------------------------------------------------------------ */

static const char *const severity_caption[] = {"Unknown", "Informational", "Low",
                                               "Medium",  "High",          "Critical"};

/* An OCSF file object for an image path (a JSON string; type Regular
 * File), with the identity p (a native process) has of it. */
static json_t *ocsf_file(const json_t *path, const json_t *p) {
  json_t *f;
  const json_t *pe = get(p, "pe"), *hash = get(p, "hash");
  int rc = 0;
  if (!json_is_string(path))
    return NULL;
  f = json_object();
  if (f == NULL)
    return NULL;
  rc |= put(f, "name", base_name(path));
  rc |= put(f, "path", json_deep_copy(path));
  rc |= put(f, "type_id", json_integer(1));
  rc |= put(f, "type", json_string("Regular File"));
  if (str(hash, "sha256") != NULL)
    rc |= put(f, "hashes",
              json_pack("[{s:i,s:s,s:s}]", "algorithm_id", 3, "algorithm", "SHA-256", "value",
                        str(hash, "sha256")));
  if (json_is_integer(get(p, "image_size")))
    rc |= put(f, "size", copy(get(p, "image_size")));
  rc |= put(f, "company_name", copy_str(pe, "company"));
  rc |= put(f, "version", copy_str(pe, "file_version"));
  rc |= put(f, "desc", copy_str(pe, "description"));
  if (rc != 0 || get(f, "name") == NULL) {
    json_decref(f);
    return NULL;
  }
  return f;
}

static json_t *ocsf_integrity_id(const char *s) {
  static const struct {
    const char *name;
    int id;
  } map[] = {{"untrusted", 1}, {"low", 2},       {"medium", 3},      {"high", 4},
             {"system", 5},    {"protected", 6}, {"medium_plus", 99}};
  size_t i;
  for (i = 0; s != NULL && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(map[i].name, s) == 0)
      return json_integer(map[i].id);
  return NULL;
}

/* The parent as an OCSF process: pid, uid and, when the first ancestry
 * entry is the same process, its file. NULL when nothing is known. */
static json_t *ocsf_parent(const json_t *p) {
  const json_t *parent = get(p, "parent"), *anc = json_array_get(get(p, "ancestry"), 0);
  const char *eid = str(parent, "entity_id");
  json_t *o;
  int rc = 0;
  if (!json_is_integer(get(parent, "pid")) && eid == NULL)
    return NULL;
  o = json_object();
  if (o == NULL)
    return NULL;
  if (json_is_integer(get(parent, "pid")))
    rc |= put(o, "pid", copy(get(parent, "pid")));
  rc |= put(o, "uid", copy_str(parent, "entity_id"));
  if (eid != NULL && str(anc, "entity_id") != NULL && strcmp(eid, str(anc, "entity_id")) == 0)
    rc |= put(o, "file", ocsf_file(get(anc, "executable"), NULL));
  if (rc != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *ocsf_process(const json_t *p) {
  json_t *o = json_object();
  const json_t *user = get(p, "user");
  int rc = 0;
  if (o == NULL)
    return NULL;
  if (json_is_integer(get(p, "pid")))
    rc |= put(o, "pid", copy(get(p, "pid")));
  rc |= put(o, "uid", copy_str(p, "entity_id"));
  rc |= put(o, "name", base_name(get(p, "executable")));
  rc |= put(o, "cmd_line", copy_str(p, "command_line"));
  rc |= put(o, "created_time", ms_of(p, "start"));
  rc |= put(o, "terminated_time", ms_of(p, "end"));
  rc |= put(o, "file", ocsf_file(get(p, "executable"), p));
  if (str(user, "sid") != NULL || str(user, "name") != NULL) {
    rc |= put(o, "user.uid", copy_str(user, "sid"));
    rc |= put(o, "user.name", short_user_name(get(user, "name")));
    rc |= put(o, "user.domain", user_domain(get(user, "name")));
  }
  rc |= put(o, "integrity", copy_str(p, "integrity"));
  rc |= put(o, "integrity_id", ocsf_integrity_id(str(p, "integrity")));
  rc |= put(o, "parent_process", ocsf_parent(p));
  if (rc != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static json_t *ocsf_device(const json_t *host) {
  const json_t *os = get(host, "os");
  json_t *d;
  int rc = 0;
  if (!json_is_object(host))
    return NULL;
  d = json_object();
  if (d == NULL)
    return NULL;
  rc |= put(d, "hostname", copy_str(host, "name"));
  rc |= put(d, "uid", copy_str(host, "id"));
  /* Whether the host is a server, a desktop or a VM jobwarden does not
   * know: Unknown. */
  rc |= put(d, "type_id", json_integer(0));
  rc |= put(d, "type", json_string("Unknown"));
  if (str(os, "name") != NULL) {
    int windows = strcmp(str(os, "name"), "Windows") == 0;
    rc |= put(d, "os.name", copy_str(os, "name"));
    rc |= put(d, "os.type_id", json_integer(windows ? 100 : 0));
    rc |= put(d, "os.type", json_string(windows ? "Windows" : "Unknown"));
    rc |= put(d, "os.version", copy_str(os, "version"));
    rc |= put(d, "os.build", copy_str(os, "build"));
  }
  if (rc != 0) {
    json_decref(d);
    return NULL;
  }
  return d;
}

/* attacks[] of a finding from the ATT&CK tags: one entry per technique
 * (with its sub-technique), the rule's tactics on each. */
static json_t *ocsf_attacks(const json_t *tags) {
  json_t *out = json_array(), *tactics = json_array();
  size_t i;
  if (out == NULL || tactics == NULL)
    goto fail;
  for (i = 0; i < json_array_size(tags); i++) {
    const char *tag = json_string_value(json_array_get(tags, i)), *ta;
    if (tag != NULL && (ta = tactic_of(tag)) != NULL) {
      json_t *t = json_pack("{s:s}", "uid", ta);
      if (t == NULL)
        goto fail;
      if (attack_name(ta) != NULL)
        json_object_set_new(t, "name", json_string(attack_name(ta)));
      json_array_append_new(tactics, t);
    }
  }
  for (i = 0; i < json_array_size(tags); i++) {
    const char *tag = json_string_value(json_array_get(tags, i));
    char tech[8], sub[12];
    json_t *a, *t;
    if (tag == NULL || technique_of(tag, tech, sub) != 0)
      continue;
    a = json_object();
    t = json_pack("{s:s}", "uid", tech);
    if (a == NULL || t == NULL) {
      json_decref(a);
      json_decref(t);
      goto fail;
    }
    if (attack_name(tech) != NULL)
      json_object_set_new(t, "name", json_string(attack_name(tech)));
    json_object_set_new(t, "src_url", attack_url(tech));
    json_object_set_new(a, "technique", t);
    if (sub[0]) {
      json_t *s = json_pack("{s:s}", "uid", sub);
      if (s != NULL && attack_name(sub) != NULL)
        json_object_set_new(s, "name", json_string(attack_name(sub)));
      if (s != NULL)
        json_object_set_new(s, "src_url", attack_url(sub));
      json_object_set_new(a, "sub_technique", s);
    }
    if (json_array_size(tactics) > 0) {
      json_object_set(a, "tactic", json_array_get(tactics, 0));
      if (json_array_size(tactics) > 1)
        json_object_set_new(a, "tactics", json_deep_copy(tactics));
    }
    json_array_append_new(out, a);
  }
  json_decref(tactics);
  return out;
fail:
  json_decref(tactics);
  json_decref(out);
  return NULL;
}

/* The security_control profile's outcome of a violation: what jobwarden
 * or the kernel did (action_id) and how it ended (disposition_id). A
 * process ended after it started has no disposition of its own in OCSF:
 * Other, with jobwarden's word for it. */
static int ocsf_disposition(json_t *o, const char *action) {
  static const struct {
    const char *action;
    int action_id;
    const char *action_name;
    int disposition_id;
    const char *disposition;
  } map[] = {
      {"blocked", 2, "Denied", 2, "Blocked"},
      {"terminated", 2, "Denied", 99, "terminated"},
      {"killed_job", 2, "Denied", 99, "killed_job"},
      {"reported", 3, "Observed", 19, "Alert"},
      {"not_enforced", 3, "Observed", 16, "No Action"},
      {"observed", 3, "Observed", 15, "Detected"},
  };
  size_t i;
  int rc = 0;
  for (i = 0; action != NULL && i < sizeof(map) / sizeof(map[0]); i++)
    if (strcmp(map[i].action, action) == 0) {
      rc |= put(o, "action_id", json_integer(map[i].action_id));
      rc |= put(o, "action", json_string(map[i].action_name));
      rc |= put(o, "disposition_id", json_integer(map[i].disposition_id));
      rc |= put(o, "disposition", json_string(map[i].disposition));
    }
  return rc;
}

/* The members every OCSF class of the format carries. */
static int ocsf_common(json_t *o, const json_t *n, int category_uid, const char *category_name,
                       int class_uid, const char *class_name, int activity_id,
                       const char *activity_name) {
  const json_t *agent = get(n, "agent");
  int rc = 0, sev = severity_num(str(n, "severity"));
  char type_name[128];
  rc |= put(o, "category_uid", json_integer(category_uid));
  rc |= put(o, "category_name", json_string(category_name));
  rc |= put(o, "class_uid", json_integer(class_uid));
  rc |= put(o, "class_name", json_string(class_name));
  rc |= put(o, "activity_id", json_integer(activity_id));
  rc |= put(o, "activity_name", json_string(activity_name));
  rc |= put(o, "type_uid", json_integer((json_int_t)class_uid * 100 + activity_id));
  snprintf(type_name, sizeof(type_name), "%s: %s", class_name, activity_name);
  rc |= put(o, "type_name", json_string(type_name));
  rc |= put(o, "time", ms_of(n, "@timestamp"));
  rc |= put(o, "severity_id", json_integer(sev));
  rc |= put(o, "severity", json_string(severity_caption[sev]));
  rc |= put(o, "message", copy_str(n, "message"));
  rc |= put(o, "metadata.version", json_string(JW_OCSF_VERSION));
  rc |= put(o, "metadata.product.name", json_string("jobwarden"));
  rc |= put(o, "metadata.product.vendor_name", json_string("jobwarden"));
  rc |= put(o, "metadata.product.version", copy_str(agent, "version"));
  rc |= put(o, "metadata.log_name", json_string("jobwarden"));
  rc |= put(o, "metadata.log_provider", json_string("jobwarden"));
  rc |= put(o, "metadata.event_code", copy_str(n, "event"));
  rc |= put(o, "metadata.correlation_uid", copy_str(n, "run_id"));
  if (json_is_integer(get(n, "seq")))
    rc |= put(o, "metadata.sequence", copy(get(n, "seq")));
  rc |= put(o, "metadata.logged_time", ms_of(n, "emitted"));
  rc |= put(o, "device", ocsf_device(get(n, "host")));
  return rc;
}

json_t *jw_format_ocsf(const json_t *n) {
  const char *ev = str(n, "event"), *action = str(n, "action"), *enforcer = str(n, "enforcer");
  const char *rule = str(n, "rule");
  const json_t *p = get(n, "process");
  json_t *o;
  kind_t kind;
  int rc = 0;
  if (!json_is_object(n) || ev == NULL || strcmp(ev, "sandbox.log_continued") == 0)
    return NULL;
  kind = kind_of(ev);
  o = json_object();
  if (o == NULL)
    return NULL;
  switch (kind) {
  case K_PROCESS_START:
  case K_PROCESS_EXIT:
  case K_PROCESS_UPDATE: {
    int act = kind == K_PROCESS_START ? 1 : kind == K_PROCESS_EXIT ? 2 : 99;
    json_t *actor = json_object();
    rc |= ocsf_common(o, n, 1, "System Activity", 1007, "Process Activity", act,
                      act == 1   ? "Launch"
                      : act == 2 ? "Terminate"
                                 : "Update");
    rc |= put(o, "process", json_is_object(p) ? ocsf_process(p) : NULL);
    if (kind == K_PROCESS_EXIT)
      rc |= put(o, "exit_code", signed_exit_code(p));
    /* The actor: who ended it (jobwarden, the kernel, or, for an exit
     * nobody caused, the process itself: OCSF's reflexive case), or who
     * launched it: jobwarden for the root; for any other process of the
     * job, the sandboxed program (app_name = the job's name, app_uid = the
     * run) and, when known, the parent process. Only jobwarden and the
     * job's own processes can put a process into the job, so that much is
     * known even when the parent is not. */
    if (actor == NULL) {
      rc = -1;
    } else if (kind == K_PROCESS_EXIT && enforcer != NULL) {
      rc |= put(actor, "app_name",
                json_string(strcmp(enforcer, "monitor") == 0 ? "jobwarden" : "Windows kernel"));
    } else if (kind == K_PROCESS_EXIT) {
      rc |= put(actor, "process", json_is_object(p) ? ocsf_process(p) : NULL);
    } else {
      rc |= put(actor, "process", ocsf_parent(p));
      if (json_is_true(get(p, "is_root"))) {
        rc |= put(actor, "app_name", json_string("jobwarden"));
      } else {
        rc |= put(actor, "app_name", copy_str(get(n, "job"), "name"));
        rc |= put(actor, "app_uid", copy_str(n, "run_id"));
      }
    }
    if (json_object_size(actor) > 0)
      rc |= put(o, "actor", actor);
    else
      json_decref(actor);
    break;
  }
  case K_VIOLATION: {
    const jw_rule_info_t *ri = jw_rule_info(rule);
    char uid[80];
    json_t *attacks = ocsf_attacks(get(n, "tags"));
    rc |= ocsf_common(o, n, 2, "Findings", 2004, "Detection Finding", 1, "Create");
    /* One finding per event line: run_id and seq name it uniquely. */
    snprintf(uid, sizeof(uid), "%.40s-%lld", str(n, "run_id") ? str(n, "run_id") : "",
             (long long)json_integer_value(get(n, "seq")));
    rc |= put(o, "finding_info.uid", json_string(uid));
    rc |= put(o, "finding_info.title", json_string(ri ? ri->title : rule ? rule : ev));
    if (ri != NULL) {
      rc |= put(o, "finding_info.desc", json_string(ri->description));
      rc |= put(o, "finding_info.types", json_pack("[s]", ri->category));
    }
    rc |= put(o, "finding_info.created_time", ms_of(n, "emitted"));
    rc |= put(o, "finding_info.first_seen_time", ms_of(n, "@timestamp"));
    if (attacks != NULL && json_array_size(attacks) > 0)
      rc |= put(o, "finding_info.attacks", attacks);
    else
      json_decref(attacks);
    if (json_is_object(p)) {
      json_t *e = json_object();
      if (e == NULL || put(e, "process", ocsf_process(p)) != 0)
        rc = -1;
      rc |= put(o, "evidences", e ? json_pack("[o]", e) : NULL);
    }
    rc |= put(o, "is_alert", json_true());
    rc |= ocsf_disposition(o, action);
    rc |= put(o, "metadata.profiles", json_pack("[s]", "security_control"));
    break;
  }
  case K_GAP: {
    const json_t *gap = get(n, "gap");
    rc |= ocsf_common(o, n, 1, "System Activity", 1008, "Event Log Activity", 99, "Events Lost");
    rc |= put(o, "log_name", json_string("jobwarden"));
    rc |= put(o, "log_provider", json_string("jobwarden"));
    rc |= put(o, "status_id", json_integer(2));
    rc |= put(o, "status", json_string("Failure"));
    rc |= put(o, "status_detail", copy_str(gap, "reason"));
    break;
  }
  default: {
    /* OCSF has no class for a sandbox run's start and end or for the
     * sandbox's own health: the Base Event, as OCSF says for events the
     * schema does not otherwise define (docs/integrations.md). */
    const char *name = kind == K_JOB_START ? "Job Start"
                       : kind == K_JOB_END ? "Job End"
                       : kind == K_NOTICE  ? "Notice"
                                           : ev;
    rc |= ocsf_common(o, n, 0, "Uncategorized", 0, "Base Event", 99, name);
    rc |= put(o, "metadata.profiles", json_pack("[s]", "host"));
    break;
  }
  }
  rc |= put(o, "unmapped.jobwarden", jobwarden_part(n));
  if (rc != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

json_t *jw_format_convert(jw_format_t f, const json_t *native) {
  switch (f) {
  case JW_FORMAT_ECS:
    return jw_format_ecs(native);
  case JW_FORMAT_OCSF:
    return jw_format_ocsf(native);
  case JW_FORMAT_NATIVE:
    break;
  }
  return json_is_object(native) ? json_deep_copy(native) : NULL;
}

/* obj as one compact line + '\n' (new buffer). */
static int dump_line(const json_t *obj, char **out, size_t *out_len) {
  char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
  size_t n;
  if (text == NULL)
    return JW_ENOMEM;
  n = strlen(text);
  *out = malloc(n + 1);
  if (*out == NULL) {
    free(text);
    return JW_ENOMEM;
  }
  memcpy(*out, text, n);
  (*out)[n] = '\n';
  *out_len = n + 1;
  free(text);
  return 0;
}

int jw_format_line(jw_format_t f, const char *line, size_t len, char **out, size_t *out_len) {
  json_error_t jerr;
  json_t *n, *o;
  int rc;
  if (len > 0 && line[len - 1] == '\n')
    len--;
  n = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
  if (n == NULL)
    return JW_EINVAL;
  o = jw_format_convert(f, n);
  if (o == NULL) {
    rc = json_is_object(n) && str(n, "event") != NULL &&
                 strcmp(str(n, "event"), "sandbox.log_continued") != 0
             ? JW_ENOMEM
             : JW_EINVAL;
    json_decref(n);
    return rc;
  }
  rc = dump_line(o, out, out_len);
  json_decref(o);
  json_decref(n);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Reading lines of any format back                                         */
/* ------------------------------------------------------------------------ */

static const json_t *at(const json_t *o, const char *a, const char *b, const char *c) {
  o = json_object_get(o, a);
  if (b != NULL)
    o = json_object_get(o, b);
  if (c != NULL)
    o = json_object_get(o, c);
  return o;
}

void jw_format_meta(jw_format_t f, const json_t *obj, jw_format_meta_t *m) {
  const json_t *seq = NULL;
  memset(m, 0, sizeof(*m));
  m->emitted_ms = -1;
  switch (f) {
  case JW_FORMAT_NATIVE:
    m->timestamp = str(obj, "@timestamp");
    m->emitted = str(obj, "emitted");
    m->event = str(obj, "event");
    m->severity = str(obj, "severity");
    m->host = json_string_value(at(obj, "host", "name", NULL));
    m->run_id = str(obj, "run_id");
    seq = get(obj, "seq");
    break;
  case JW_FORMAT_ECS:
    m->timestamp = str(obj, "@timestamp");
    m->emitted = json_string_value(at(obj, "event", "created", NULL));
    m->event = json_string_value(at(obj, "jobwarden", "event", NULL));
    m->severity = json_string_value(at(obj, "log", "level", NULL));
    m->host = json_string_value(at(obj, "host", "name", NULL));
    m->run_id = json_string_value(at(obj, "jobwarden", "run_id", NULL));
    seq = at(obj, "event", "sequence", NULL);
    break;
  case JW_FORMAT_OCSF: {
    const json_t *t = get(obj, "time"), *lt = at(obj, "metadata", "logged_time", NULL);
    json_int_t sid = json_integer_value(get(obj, "severity_id"));
    static const char *const names[] = {NULL, "info", "low", "medium", "high", "critical"};
    if (json_is_integer(t)) {
      ms_to_iso((int64_t)json_integer_value(t), m->timestamp_buf, sizeof(m->timestamp_buf));
      m->timestamp = m->timestamp_buf;
    }
    if (json_is_integer(lt))
      m->emitted_ms = (int64_t)json_integer_value(lt);
    m->event = json_string_value(at(obj, "metadata", "event_code", NULL));
    m->severity = sid >= 1 && sid <= 5 ? names[sid] : NULL;
    m->host = json_string_value(at(obj, "device", "hostname", NULL));
    m->run_id = json_string_value(at(obj, "metadata", "correlation_uid", NULL));
    seq = at(obj, "metadata", "sequence", NULL);
    break;
  }
  }
  if (json_is_integer(seq)) {
    m->has_seq = 1;
    m->seq = (int64_t)json_integer_value(seq);
  }
}
/* The continuation's own facts under prefix (ECS "jobwarden.", OCSF
 * "unmapped.jobwarden."), as the native line names them. */
static int put_continued(json_t *o, const char *prefix, const char *run_id, long long seq,
                         const char *previous_file) {
  static const char *const keys[] = {"event", "run_id", "continues_at_seq", "previous_file"};
  json_t *values[4];
  char key[64];
  int rc = 0;
  size_t i;
  values[0] = json_string("sandbox.log_continued");
  values[1] = json_string(run_id);
  values[2] = json_integer((json_int_t)seq);
  values[3] = json_string(previous_file);
  for (i = 0; i < 4; i++) {
    snprintf(key, sizeof(key), "%s%s", prefix, keys[i]);
    rc |= put(o, key, values[i]);
  }
  return rc;
}

char *jw_format_continuation(jw_format_t f, const char *previous_file, const char *first,
                             size_t len, size_t *out_len) {
  json_error_t jerr;
  json_t *ev, *o = NULL;
  jw_format_meta_t m;
  char *out = NULL, msg[600];
  int rc = 0;
  if (len > 0 && first[len - 1] == '\n')
    len--;
  ev = json_loadb(first, len, JSON_ALLOW_NUL, &jerr);
  if (ev == NULL)
    return NULL;
  jw_format_meta(f, ev, &m);
  if (m.run_id == NULL || !m.has_seq || (o = json_object()) == NULL)
    goto done;
  snprintf(msg, sizeof(msg), "this file continues the event log of run %.40s from seq %lld; %.400s",
           m.run_id, (long long)m.seq, "the lines before are in the rotated file");
  switch (f) {
  case JW_FORMAT_NATIVE:
    /* The same line since schema 1.1 (docs/events.md). */
    rc |= put(o, "schema_version", json_string(JW_SCHEMA_VERSION));
    rc |= put(o, "event", json_string("sandbox.log_continued"));
    rc |= put(o, "run_id", json_string(m.run_id));
    rc |= put(o, "continues_at_seq", json_integer((json_int_t)m.seq));
    rc |= put(o, "previous_file", json_string(previous_file));
    break;
  case JW_FORMAT_ECS:
    /* The rotation happened just before the first line of the new file
     * was written: that line's event.created. */
    /* 1.x lines have no event.created: their @timestamp was the time of
     * writing. */
    if (m.emitted == NULL)
      m.emitted = m.timestamp;
    rc |= put(o, "@timestamp", m.emitted ? json_string(m.emitted) : NULL);
    rc |= put(o, "ecs.version", json_string(JW_ECS_VERSION));
    rc |= put(o, "event.kind", json_string("event"));
    rc |= put(o, "event.action", json_string("log_continued"));
    rc |= put(o, "event.created", m.emitted ? json_string(m.emitted) : NULL);
    rc |= put(o, "event.module", json_string("jobwarden"));
    rc |= put(o, "event.dataset", json_string("jobwarden.events"));
    rc |= put(o, "event.provider", json_string("jobwarden"));
    rc |= put(o, "log.level", json_string("info"));
    rc |= put(o, "host", copy(get(ev, "host")));
    rc |= put(o, "agent", copy(get(ev, "agent")));
    rc |= put(o, "message", json_string(msg));
    rc |= put_continued(o, "jobwarden.", m.run_id, m.seq, previous_file);
    break;
  case JW_FORMAT_OCSF:
    rc |= put(o, "category_uid", json_integer(1));
    rc |= put(o, "category_name", json_string("System Activity"));
    rc |= put(o, "class_uid", json_integer(1008));
    rc |= put(o, "class_name", json_string("Event Log Activity"));
    rc |= put(o, "activity_id", json_integer(5));
    rc |= put(o, "activity_name", json_string("Rotate"));
    rc |= put(o, "type_uid", json_integer(100805));
    rc |= put(o, "type_name", json_string("Event Log Activity: Rotate"));
    /* 1.x lines have no logged_time: their time was the time of writing. */
    if (m.emitted_ms < 0 && json_is_integer(get(ev, "time")))
      m.emitted_ms = (int64_t)json_integer_value(get(ev, "time"));
    rc |= put(o, "time", m.emitted_ms >= 0 ? json_integer((json_int_t)m.emitted_ms) : NULL);
    rc |= put(o, "severity_id", json_integer(1));
    rc |= put(o, "severity", json_string("Informational"));
    rc |= put(o, "message", json_string(msg));
    rc |= put(o, "metadata", copy(get(ev, "metadata")));
    json_object_del(get(o, "metadata"), "sequence");
    rc |= put(o, "metadata.event_code", json_string("sandbox.log_continued"));
    rc |= put(o, "device", copy(get(ev, "device")));
    {
      json_t *prev = json_string(previous_file);
      rc |= put(o, "file", ocsf_file(prev, NULL));
      json_decref(prev);
    }
    rc |= put(o, "log_name", json_string("jobwarden"));
    rc |= put(o, "log_provider", json_string("jobwarden"));
    rc |= put(o, "status_id", json_integer(1));
    rc |= put(o, "status", json_string("Success"));
    rc |= put_continued(o, "unmapped.jobwarden.", m.run_id, m.seq, previous_file);
    break;
  }
  if (rc == 0 && dump_line(o, &out, out_len) != 0)
    out = NULL;
done:
  json_decref(o);
  json_decref(ev);
  return out;
}

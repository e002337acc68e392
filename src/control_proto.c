/* The control channel's lines (docs/control.md): parsing a request,
 * writing one, the "control" object of a notice, and a reply made
 * readable for `jobwarden ps` / `jobwarden kill`. Portable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "control.h"
#include "internal.h"

#define TABLE_FIELD_MAX 400 /* bytes of one hostile string in a table line */
#define TABLE_LINE_MAX  1024

const char *jw_control_op_name(jw_control_op_t op) {
  switch (op) {
  case JW_CONTROL_PS:
    return "ps";
  case JW_CONTROL_KILL_PID:
  case JW_CONTROL_KILL_JOB:
    return "kill";
  default:
    return "invalid";
  }
}

static int why_set(char *why, size_t size, const char *text) {
  if (why != NULL && size > 0)
    jw__strlcpy(why, text, size);
  return JW_EUSAGE;
}

int jw_control_parse_request(const char *line, size_t len, jw_control_request_t *req, char *why,
                             size_t size) {
  json_t *j, *op, *pid;
  json_error_t jerr;
  const char *key;
  json_t *value;
  int rc = 0;

  req->op = JW_CONTROL_INVALID;
  req->pid = 0;
  while (len > 0 && line[len - 1] == '\r')
    len--;
  j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL) {
    char text[240];
    snprintf(text, sizeof(text), "the request is not JSON: %s (at byte %d)", jerr.text,
             jerr.position);
    return why_set(why, size, text);
  }
  if (!json_is_object(j)) {
    json_decref(j);
    return why_set(why, size, "the request is not a JSON object");
  }
  json_object_foreach(j, key, value) {
    if (strcmp(key, "op") != 0 && strcmp(key, "pid") != 0) {
      char text[160];
      snprintf(text, sizeof(text), "unknown key \"%.60s\" (expected \"op\" and, for kill, \"pid\")",
               key);
      rc = why_set(why, size, text);
      goto done;
    }
  }
  op = json_object_get(j, "op");
  pid = json_object_get(j, "pid");
  if (!json_is_string(op)) {
    rc = why_set(why, size, "\"op\" must be \"ps\" or \"kill\"");
  } else if (strcmp(json_string_value(op), "ps") == 0 && json_string_length(op) == 2) {
    if (pid != NULL)
      rc = why_set(why, size, "\"ps\" takes no \"pid\"");
    else
      req->op = JW_CONTROL_PS;
  } else if (strcmp(json_string_value(op), "kill") == 0 && json_string_length(op) == 4) {
    if (pid == NULL) {
      req->op = JW_CONTROL_KILL_JOB;
    } else if (!json_is_integer(pid) || json_integer_value(pid) < 1 ||
               json_integer_value(pid) > 0xFFFFFFFFll) {
      rc = why_set(why, size, "\"pid\" must be an integer from 1 to 4294967295");
    } else {
      req->op = JW_CONTROL_KILL_PID;
      req->pid = (uint32_t)json_integer_value(pid);
    }
  } else {
    rc = why_set(why, size, "\"op\" must be \"ps\" or \"kill\"");
  }
done:
  json_decref(j);
  return rc;
}

size_t jw_control_format_request(const jw_control_request_t *req, char *buf, size_t size) {
  int n;
  switch (req->op) {
  case JW_CONTROL_PS:
    n = snprintf(buf, size, "{\"op\":\"ps\"}\n");
    break;
  case JW_CONTROL_KILL_JOB:
    n = snprintf(buf, size, "{\"op\":\"kill\"}\n");
    break;
  case JW_CONTROL_KILL_PID:
    n = snprintf(buf, size, "{\"op\":\"kill\",\"pid\":%lu}\n", (unsigned long)req->pid);
    break;
  default:
    return 0;
  }
  return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

void *jw_control_event_object(const jw_control_request_t *req, const char *result,
                              const char *reason) {
  json_t *o = json_object(), *who = json_object();
  int bad = 0;
  if (o == NULL || who == NULL) {
    json_decref(o);
    json_decref(who);
    return NULL;
  }
  bad |= json_object_set_new(o, "op", json_string(jw_control_op_name(req->op)));
  if (req->op == JW_CONTROL_KILL_PID)
    bad |= json_object_set_new(o, "pid", json_integer(req->pid));
  bad |= json_object_set_new(who, "pid",
                             req->requester_pid ? json_integer(req->requester_pid) : json_null());
  bad |= json_object_set_new(who, "user",
                             req->requester_sid[0] ? json_string(req->requester_sid) : json_null());
  bad |= json_object_set_new(o, "requester", who);
  bad |= json_object_set_new(o, "result", json_string(result));
  if (reason != NULL)
    bad |= json_object_set_new(o, "reason", json_string(reason));
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* ---- replies -------------------------------------------------------------- */

/* A growing text. */
typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} text_t;

/* A text never grows near SIZE_MAX: a length beyond this is a bug, not
 * memory to ask for. Checking it also keeps len + n + 1 from wrapping (and
 * shows the compiler that the copy below is bounded). */
#define TEXT_MAX (SIZE_MAX / 4)

static void text_add(text_t *t, const char *s, size_t n) {
  if (t->failed)
    return;
  if (n > TEXT_MAX || t->len > TEXT_MAX - n) {
    t->failed = 1;
    return;
  }
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 1024;
    char *p;
    while (cap < t->len + n + 1)
      cap *= 2;
    p = realloc(t->s, cap);
    if (p == NULL) {
      t->failed = 1;
      return;
    }
    t->s = p;
    t->cap = cap;
  }
  memcpy(t->s + t->len, s, n);
  t->len += n;
  t->s[t->len] = '\0';
}

static void text_str(text_t *t, const char *s) {
  text_add(t, s, strlen(s));
}

/* A hostile string, sanitized and cut: the JSON string v whole (a
 * \u0000 inside hides nothing), or s when v is not a string. */
static void text_field(text_t *t, json_t *v, const char *s, size_t max) {
  char buf[TABLE_LINE_MAX], *p = buf;
  size_t left = sizeof(buf);
  if (json_is_string(v))
    jw__put_sanitized_n(&p, &left, json_string_value(v), json_string_length(v), max);
  else
    jw__put_sanitized(&p, &left, s, max);
  text_add(t, buf, (size_t)(p - buf));
}

/* Hands the text to *out and returns rc; -1 (and NULL) when memory ran out. */
static int text_done(text_t *t, int rc, char **out) {
  if (t->failed || t->s == NULL) {
    free(t->s);
    *out = NULL;
    return -1;
  }
  *out = t->s;
  return rc;
}

static int fail_text(const char *why, char **out) {
  text_t t = {NULL, 0, 0, 0};
  text_str(&t, why);
  return text_done(&t, -1, out);
}

/* "12.3 MiB" style, or "-" for null. */
static void format_bytes(json_t *v, char *buf, size_t size) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x;
  int u = 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0) {
    snprintf(buf, size, "-");
    return;
  }
  x = (double)json_integer_value(v);
  while (x >= 1024.0 && u < 4) {
    x /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, size, "%lld B", (long long)json_integer_value(v));
  else
    snprintf(buf, size, "%.1f %s", x, units[u]);
}

static void text_padded(text_t *t, const char *s, size_t width, int right) {
  size_t n = strlen(s);
  if (right)
    while (n++ < width)
      text_str(t, " ");
  text_str(t, s);
  if (!right)
    while (n++ < width)
      text_str(t, " ");
}

static int ps_table(json_t *reply, char **out) {
  json_t *members = json_object_get(reply, "members"), *m;
  text_t t = {NULL, 0, 0, 0};
  size_t i;
  if (!json_is_array(members))
    return fail_text("the reply has no member list", out);
  text_str(&t, "    PID  WORKING SET  STARTED (UTC)                IMAGE\n");
  json_array_foreach(members, i, m) {
    char num[32], ws[32], when[64], *p = when;
    size_t left = sizeof(when);
    json_t *pid = json_object_get(m, "pid");
    const char *start = json_string_value(json_object_get(m, "start"));
    json_t *image = json_object_get(m, "executable");
    if (json_is_integer(pid))
      snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(pid));
    else
      snprintf(num, sizeof(num), "?");
    format_bytes(json_object_get(m, "working_set"), ws, sizeof(ws));
    jw__put_sanitized(&p, &left, start ? start : "-", 40);
    text_padded(&t, num, 7, 1);
    text_str(&t, "  ");
    text_padded(&t, ws, 11, 1);
    text_str(&t, "  ");
    text_padded(&t, when, 27, 0);
    text_str(&t, "  ");
    text_field(&t, image, "(image unknown)", TABLE_FIELD_MAX);
    if (json_is_true(json_object_get(m, "is_root")))
      text_str(&t, "  [root]");
    text_str(&t, "\n");
  }
  if (json_is_true(json_object_get(reply, "truncated")))
    text_str(&t, "(the list was cut: the reply reached its size limit)\n");
  return text_done(&t, 1, out);
}

static int kill_sentence(json_t *reply, char **out) {
  text_t t = {NULL, 0, 0, 0};
  char buf[96];
  json_t *pid = json_object_get(reply, "pid");
  if (json_is_true(json_object_get(reply, "job"))) {
    json_t *n = json_object_get(reply, "processes");
    snprintf(buf, sizeof(buf), "terminated the job (%lld process(es) were running)\n",
             json_is_integer(n) ? (long long)json_integer_value(n) : -1ll);
    text_str(&t, buf);
    return text_done(&t, 1, out);
  }
  if (!json_is_integer(pid))
    return fail_text("the reply names no pid", out);
  snprintf(buf, sizeof(buf), "terminated pid %lld", (long long)json_integer_value(pid));
  text_str(&t, buf);
  if (json_is_string(json_object_get(reply, "executable"))) {
    text_str(&t, " (");
    text_field(&t, json_object_get(reply, "executable"), "", TABLE_FIELD_MAX);
    text_str(&t, ")");
  }
  if (json_is_true(json_object_get(reply, "is_root")))
    text_str(&t, ", the root process: the run ends");
  text_str(&t, "\n");
  return text_done(&t, 1, out);
}

int jw_control_reply_text(const char *line, size_t len, jw_control_op_t op, char **text) {
  json_t *reply, *ok;
  json_error_t jerr;
  int rc;
  *text = NULL;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  /* A member's image may hold a U+0000 (kept as \u0000): the reply is
   * still read. */
  reply = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  if (reply == NULL || !json_is_object(reply)) {
    json_decref(reply);
    return fail_text("the run's reply is not a JSON object", text);
  }
  ok = json_object_get(reply, "ok");
  if (json_is_false(ok)) {
    text_t t = {NULL, 0, 0, 0};
    text_field(&t, json_object_get(reply, "error"), "(no reason given)", TABLE_FIELD_MAX);
    rc = text_done(&t, 0, text);
  } else if (!json_is_true(ok)) {
    rc = fail_text("the run's reply has no \"ok\"", text);
  } else if (op == JW_CONTROL_PS) {
    rc = ps_table(reply, text);
  } else {
    rc = kill_sentence(reply, text);
  }
  json_decref(reply);
  return rc;
}

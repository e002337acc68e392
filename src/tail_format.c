/* `jobwarden tail`: one readable line per event (portable, unit-tested
 * natively). Strings from the event came from the sandboxed program: they
 * are shown without control characters, C1 controls or bidirectional
 * overrides (a terminal must never obey them), each cut at FIELD_MAX
 * bytes on a character boundary. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "format.h"
#include "internal.h"

#define FIELD_MAX 400

/* Declared in internal.h: `ps` (src/control_proto.c) shows the sandboxed
 * program's strings the same way. */
void jw__put_sanitized_n(char **out, size_t *left, const char *s, size_t n, size_t max) {
  size_t i = 0;
  int cut = 0;
  if (n > max) {
    n = jw__utf8_cut(s, n, max); /* never split a character */
    cut = 1;
  }
  while (i<n && * left> 1) {
    unsigned char c = (unsigned char)s[i];
    size_t clen = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    int bad = c < 0x20 || c == 0x7f;
    if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)
      bad = 1; /* U+0080..U+009F */
    if (c == 0xE2 && i + 2 < n &&
        (((unsigned char)s[i + 1] == 0x80 && (unsigned char)s[i + 2] >= 0xA8 &&
          (unsigned char)s[i + 2] <= 0xAE) ||
         ((unsigned char)s[i + 1] == 0x81 && (unsigned char)s[i + 2] >= 0xA6 &&
          (unsigned char)s[i + 2] <= 0xA9)))
      bad = 1; /* U+2028/U+2029 (line and paragraph separators), U+202A..U+202E,
                  U+2066..U+2069 */
    if (i + clen > n)
      clen = n - i;
    if (bad) {
      **out = '?';
      (*out)++;
      (*left)--;
    } else {
      if (clen >= *left)
        break;
      memcpy(*out, s + i, clen);
      *out += clen;
      *left -= clen;
    }
    i += clen;
  }
  if (cut && *left > 3) {
    memcpy(*out, "...", 3);
    *out += 3;
    *left -= 3;
  }
  **out = '\0';
}

void jw__put_sanitized(char **out, size_t *left, const char *s, size_t max) {
  jw__put_sanitized_n(out, left, s, strlen(s), max);
}

static void put_text(char **out, size_t *left, const char *s) {
  jw__put_sanitized(out, left, s, (size_t)-1 >> 1);
}

/* A sanitized field, then spaces up to `width` bytes. */
static void put_padded(char **out, size_t *left, const char *s, size_t max, size_t width) {
  char *start = *out;
  jw__put_sanitized(out, left, s, max);
  while ((size_t)(*out - start) < width && *left > 1) {
    *(*out)++ = ' ';
    (*left)--;
  }
  **out = '\0';
}

/* The string obj[key] sanitized (all of it: a \u0000 inside hides
 * nothing), or fallback. */
static void put_field(char **out, size_t *left, json_t *obj, const char *key, const char *fallback,
                      size_t max) {
  json_t *v = json_object_get(obj, key);
  if (json_is_string(v))
    jw__put_sanitized_n(out, left, json_string_value(v), json_string_length(v), max);
  else
    jw__put_sanitized(out, left, fallback, max);
}

static const char *str_at(json_t *obj, const char *key, const char *fallback) {
  const char *s = json_string_value(json_object_get(obj, key));
  return s ? s : fallback;
}

/* The format a pipe sink wrote the line in (format=): ECS lines carry
 * the "ecs" object, OCSF lines class_uid and metadata. */
static jw_format_t format_of(json_t *ev) {
  if (json_is_object(json_object_get(ev, "ecs")))
    return JW_FORMAT_ECS;
  if (json_is_integer(json_object_get(ev, "class_uid")) &&
      json_is_object(json_object_get(ev, "metadata")))
    return JW_FORMAT_OCSF;
  return JW_FORMAT_NATIVE;
}

int jw_tail_format(const char *line, size_t len, char *out, size_t size) {
  json_t *ev, *proc, *jw;
  json_error_t jerr;
  const char *event, *rule;
  char pid[32];
  char *p = out;
  size_t left = size;
  int is_end;
  jw_format_t f;
  jw_format_meta_t m;

  if (size < 64)
    return -1;
  while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
    len--;
  ev = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  if (ev == NULL || !json_is_object(ev)) {
    char *c;
    /* jansson's message quotes the offending bytes: shown as ASCII only,
     * so that a malformed line cannot reach the terminal as an escape
     * sequence either. */
    for (c = jerr.text; *c != 0; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
        *c = '?';
    snprintf(out, size, "(a line of %lu bytes that is not a JSON event: %s)\n", (unsigned long)len,
             ev ? "not an object" : jerr.text);
    json_decref(ev);
    return -1;
  }
  /* The same facts from wherever the sink's format keeps them. */
  f = format_of(ev);
  jw_format_meta(f, ev, &m);
  jw = f == JW_FORMAT_ECS    ? json_object_get(ev, "jobwarden")
       : f == JW_FORMAT_OCSF ? json_object_get(json_object_get(ev, "unmapped"), "jobwarden")
                             : ev;
  event = m.event ? m.event : "?";
  rule = str_at(jw, "rule", NULL);
  if (rule == NULL)
    rule = strncmp(event, "sandbox.", 8) == 0 ? event + 8 : event;
  proc = json_object_get(ev, "process");
  if (f == JW_FORMAT_OCSF && proc == NULL)
    proc = json_object_get(json_array_get(json_object_get(ev, "evidences"), 0), "process");
  if (json_is_integer(json_object_get(proc, "pid")))
    snprintf(pid, sizeof(pid), "pid=%lld",
             (long long)json_integer_value(json_object_get(proc, "pid")));
  else
    snprintf(pid, sizeof(pid), "pid=-");

  jw__put_sanitized(&p, &left, m.timestamp ? m.timestamp : "-", 40);
  put_text(&p, &left, " ");
  put_padded(&p, &left, m.severity ? m.severity : "-", 16, 8);
  put_text(&p, &left, " ");
  put_padded(&p, &left, rule, 40, 22);
  put_text(&p, &left, " ");
  put_padded(&p, &left, pid, 32, 10);
  put_text(&p, &left, " ");
  if (f == JW_FORMAT_OCSF)
    put_field(&p, &left, json_object_get(proc, "file"), "path", "-", FIELD_MAX);
  else
    put_field(&p, &left, proc, "executable", "-", FIELD_MAX);
  put_text(&p, &left, "  ");
  put_field(&p, &left, ev, "message", "", FIELD_MAX);
  if (left > 1) { /* room for it is kept by the field caps */
    *p++ = '\n';
    *p = '\0';
  }
  is_end = strcmp(event, "sandbox.job_end") == 0;
  json_decref(ev);
  return is_end;
}

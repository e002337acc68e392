/* Coalescing of repeated violations (coalesce.h). A small fixed table:
 * a run with more distinct (rule, subject) pairs in flight than slots
 * writes the extra hits in full, which costs lines, never information. */
#include "coalesce.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

void jw__coalesce_init(jw__coalesce_t *c, uint32_t window_ms) {
  memset(c, 0, sizeof(*c));
  c->window_us = (uint64_t)window_ms * 1000u;
}

/* Rules whose repeats are about the same binary rather than the same
 * process: each hit is a new process of that image. */
static int by_image(const char *rule) {
  static const char *const rules[] = {"image_denied",    "image_not_allowed", "image_unknown",
                                      "abnormal_exit",   "total_processes",   "active_processes",
                                      "process_left_job"};
  size_t i;
  for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
    if (strcmp(rules[i], rule) == 0)
      return 1;
  return 0;
}

void jw__coalesce_subject(const jw_event_t *ev, char *buf, size_t size) {
  const jw_process_info_t *p = &ev->process;
  if (size == 0)
    return;
  if (ev->has_process && ev->rule != NULL && by_image(ev->rule)) {
    size_t len = p->image == NULL ? 0 : p->image_len ? p->image_len : strlen(p->image);
    if (p->image == NULL)
      snprintf(buf, size, "image:?");
    else
      snprintf(buf, size, "image:%.*s", (int)(len < size ? len : size - 1), p->image);
  } else if (ev->has_process) {
    snprintf(buf, size, "process:%lu-%016llX", (unsigned long)p->pid,
             (unsigned long long)p->create_time);
  } else {
    snprintf(buf, size, "job");
  }
}

static jw__coalesce_slot_t *find(jw__coalesce_t *c, const char *rule, const char *subject) {
  size_t i;
  for (i = 0; i < JW_COALESCE_SLOTS; i++)
    if (c->slot[i].used && strcmp(c->slot[i].rule, rule) == 0 &&
        strcmp(c->slot[i].subject, subject) == 0)
      return &c->slot[i];
  return NULL;
}

int jw__coalesce_hold(jw__coalesce_t *c, jw_event_t *ev, uint64_t now_us) {
  char subject[200];
  jw__coalesce_slot_t *s;
  if (c->window_us == 0 || ev->rule == NULL)
    return 0;
  jw__coalesce_subject(ev, subject, sizeof(subject));
  s = find(c, ev->rule, subject);
  if (s == NULL || now_us >= s->close_us)
    return 0;
  s->count++;
  s->last_us = now_us;
  json_decref((json_t *)s->proto.extra);
  s->proto = *ev;
  s->proto.has_process = 0;
  memset(&s->proto.process, 0, sizeof(s->proto.process));
  ev->extra = NULL; /* the last repeat's enforcement and error go into the summary */
  s->has_pid = ev->has_process;
  s->pid = ev->process.pid;
  c->held++;
  return 1;
}

void jw__coalesce_opened(jw__coalesce_t *c, const jw_event_t *ev, uint64_t now_us) {
  char subject[200];
  jw__coalesce_slot_t *s;
  size_t i;
  if (c->window_us == 0 || ev->rule == NULL)
    return;
  jw__coalesce_subject(ev, subject, sizeof(subject));
  s = find(c, ev->rule, subject);
  if (s != NULL && s->count != 0)
    return; /* a window with repeats is summarized before a new one opens */
  for (i = 0; s == NULL && i < JW_COALESCE_SLOTS; i++)
    if (!c->slot[i].used)
      s = &c->slot[i];
  if (s == NULL)
    return; /* full: the next hit is written in full too */
  memset(s, 0, sizeof(*s));
  s->used = 1;
  s->rule = ev->rule;
  jw__strlcpy(s->subject, subject, sizeof(s->subject));
  s->first_us = s->last_us = now_us;
  s->close_us = now_us + c->window_us;
  s->first_seq = ev->seq;
}

uint64_t jw__coalesce_next_close(const jw__coalesce_t *c) {
  uint64_t next = 0;
  size_t i;
  for (i = 0; i < JW_COALESCE_SLOTS; i++)
    if (c->slot[i].used && (next == 0 || c->slot[i].close_us < next))
      next = c->slot[i].close_us;
  return next;
}

int jw__coalesce_take(jw__coalesce_t *c, uint64_t now_us, int all, jw_event_t *out) {
  size_t i;
  for (i = 0; i < JW_COALESCE_SLOTS; i++) {
    jw__coalesce_slot_t *s = &c->slot[i];
    char first[32], last[32];
    if (!s->used || (!all && now_us < s->close_us))
      continue;
    s->used = 0;
    if (s->count == 0)
      continue;
    *out = s->proto;
    out->time_us = s->last_us;
    jw_format_time_us(s->first_us, first, sizeof(first));
    jw_format_time_us(s->last_us, last, sizeof(last));
    snprintf(out->message, sizeof(out->message),
             "%llu more %s hit(s) for %.200s from %s to %s, after the one written as seq %llu "
             "(coalesced: one line per %llu ms window)",
             (unsigned long long)s->count, s->rule, s->subject, first, last,
             (unsigned long long)s->first_seq, (unsigned long long)(c->window_us / 1000u));
    {
      json_t *co =
          json_pack("{s:I,s:s,s:s,s:I,s:I,s:s}", "count", (json_int_t)s->count, "first", first,
                    "last", last, "first_seq", (json_int_t)s->first_seq, "window_ms",
                    (json_int_t)(c->window_us / 1000u), "subject", s->subject);
      json_t *x = s->proto.extra != NULL ? (json_t *)s->proto.extra : json_object();
      s->proto.extra = NULL;
      if (co != NULL && s->has_pid)
        json_object_set_new(co, "last_pid", json_integer(s->pid));
      if (x != NULL && co != NULL)
        json_object_set_new(x, "coalesced", co);
      else
        json_decref(co);
      out->extra = x;
    }
    return 1;
  }
  return 0;
}

/* Line queues: the FIFO of rendered lines a sink (or a pipe reader) has
 * still to write, with markers for the lines it lost. Shared by the emitter
 * and the pipe exporter; the caller provides the locking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

int jw__is_alert(jw_event_kind_t kind) {
  return kind == JW_EVENT_VIOLATION || kind == JW_EVENT_NOTICE || kind == JW_EVENT_TELEMETRY_GAP ||
         kind == JW_EVENT_JOB_END;
}

jw__line_t *jw__line_new(uint64_t seq, jw_event_kind_t kind, const char *data, size_t len) {
  jw__line_t *it = malloc(sizeof(*it) + len);
  if (it == NULL)
    return NULL;
  memset(it, 0, sizeof(*it));
  it->seq = seq;
  it->kind = kind;
  it->len = len;
  it->cap = len;
  memcpy(it->data, data, len);
  return it;
}

void jw__lineq_push(jw__lineq_t *q, jw__line_t *it) {
  it->next = NULL;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  if (it->gap_count == 0)
    q->queued++;
}

jw__line_t *jw__lineq_pop(jw__lineq_t *q) {
  jw__line_t *it = q->head;
  if (it == NULL)
    return NULL;
  q->head = it->next;
  if (q->head == NULL)
    q->tail = NULL;
  if (it->gap_count == 0)
    q->queued--;
  return it;
}

void jw__lineq_take(jw__lineq_t *q, jw__lineq_t *into) {
  *into = *q;
  q->head = q->tail = NULL;
  q->queued = 0;
}

void jw__lineq_drop(jw__lineq_t *q, uint64_t from, uint64_t to, const char *reason) {
  jw__line_t *m = q->tail;
  if (m != NULL && m->gap_count > 0 && m->seq + 1 == from) {
    m->gap_count += to - from + 1;
    m->seq = to;
    return;
  }
  m = calloc(1, sizeof(*m));
  if (m == NULL)
    return; /* the seq hole still shows in the stream */
  m->seq = to;
  m->gap_from = from;
  m->gap_count = to - from + 1;
  m->gap_reason = reason;
  jw__lineq_push(q, m);
}

void jw__lineq_clear(jw__lineq_t *q) {
  jw__line_t *it;
  while ((it = jw__lineq_pop(q)) != NULL)
    free(it);
}

void jw__gap_add(jw__gap_t *g, uint64_t from, uint64_t to, uint64_t count, const char *reason) {
  if (g->count == 0) {
    g->from = from;
    g->reason = reason;
  }
  g->to = to;
  g->count += count;
}

int jw__gap_render(const jw_run_info_t *run, const char *sink, uint64_t reader, const jw__gap_t *g,
                   jw_severity_t severity, char **line, size_t *len) {
  jw_event_t ev;
  int rc;
  jw_event_init(&ev, JW_EVENT_TELEMETRY_GAP, "telemetry_gap", "lost", "monitor", "jobwarden",
                severity);
  ev.extra = json_pack("{s:{s:I,s:I,s:I,s:s,s:s}}", "gap", "from_seq", (json_int_t)g->from,
                       "to_seq", (json_int_t)g->to, "count", (json_int_t)g->count, "sink", sink,
                       "reason", g->reason);
  if (reader != 0 && ev.extra != NULL)
    json_object_set_new(json_object_get((json_t *)ev.extra, "gap"), "reader",
                        json_integer((json_int_t)reader));
  snprintf(ev.message, sizeof(ev.message),
           "%llu event(s), seq %llu to %llu, did not reach this %s (%s)",
           (unsigned long long)g->count, (unsigned long long)g->from, (unsigned long long)g->to,
           reader != 0 ? "reader" : "sink", g->reason);
  rc = jw_event_render_line(&ev, run, g->to, jw_now_us(), line, len);
  json_decref((json_t *)ev.extra);
  return rc;
}

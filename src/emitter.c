/* The emitter: numbers events (seq), stamps them, renders each once and
 * hands the line to every exporter. One lock serializes numbering and
 * writing, so seq order is file order in every sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

struct jw_emitter_s {
  jw__mutex_t lock;
  jw_run_info_t run;
  uint64_t seq;          /* last seq handed out */
  jw_exporter_t **sinks; /* owned */
  size_t n_sinks;
  size_t cap_sinks;
  int failed_sinks;
};

int jw_emitter_new(const jw_run_info_t *run, jw_emitter_t **out) {
  jw_emitter_t *em = calloc(1, sizeof(*em));
  if (em == NULL)
    return JW_ENOMEM;
  em->run = *run;
  jw__mutex_init(&em->lock);
  *out = em;
  return 0;
}

int jw_emitter_add(jw_emitter_t *em, jw_exporter_t *exp) {
  int rc = 0;
  jw__mutex_lock(&em->lock);
  if (em->n_sinks == em->cap_sinks) {
    size_t cap = em->cap_sinks ? em->cap_sinks * 2 : 4;
    jw_exporter_t **p = realloc(em->sinks, cap * sizeof(*p));
    if (p == NULL) {
      rc = JW_ENOMEM;
      goto done;
    }
    em->sinks = p;
    em->cap_sinks = cap;
  }
  em->sinks[em->n_sinks++] = exp;
done:
  jw__mutex_unlock(&em->lock);
  return rc;
}

/* Tells the user once per sink that it failed; later failures only count. */
static void report_sink_failure(jw_emitter_t *em, jw_exporter_t *exp, const jw_error_t *err,
                                uint64_t seq) {
  char buf[1024];
  int n;
  exp->lost++;
  if (exp->failed)
    return;
  exp->failed = 1;
  em->failed_sinks++;
  n = snprintf(buf, sizeof(buf),
               "jobwarden: exporter '%s' failed at event seq %llu: %s; "
               "later events to this sink are counted as lost\n",
               exp->spec, (unsigned long long)seq, err->text[0] ? err->text : "write failed");
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int jw_emit(jw_emitter_t *em, jw_event_t *ev) {
  char *line = NULL;
  size_t len = 0;
  size_t i;
  int rc = 0;

  jw__mutex_lock(&em->lock);
  /* The seq is consumed only once the line exists, so a failed render never
   * leaves a gap that no sink can explain. */
  if (jw_event_render_line(ev, &em->run, em->seq + 1, jw_now_us(), &line, &len) != 0) {
    rc = JW_ENOMEM;
    goto done;
  }
  em->seq++;
  for (i = 0; i < em->n_sinks; i++) {
    jw_exporter_t *exp = em->sinks[i];
    jw_error_t err;
    memset(&err, 0, sizeof(err));
    if (exp->vt->export_line(exp, line, len, ev, &err) != 0) {
      report_sink_failure(em, exp, &err, em->seq);
      rc = JW_EIO;
    } else {
      exp->written++;
    }
  }
done:
  jw__mutex_unlock(&em->lock);
  if (ev->extra != NULL) {
    json_decref((json_t *)ev->extra);
    ev->extra = NULL;
  }
  free(line);
  return rc;
}

uint64_t jw_emitter_count(jw_emitter_t *em) {
  uint64_t n;
  jw__mutex_lock(&em->lock);
  n = em->seq;
  jw__mutex_unlock(&em->lock);
  return n;
}

int jw_emitter_failed_sinks(jw_emitter_t *em) {
  int n;
  jw__mutex_lock(&em->lock);
  n = em->failed_sinks;
  jw__mutex_unlock(&em->lock);
  return n;
}

void jw_emitter_free(jw_emitter_t *em) {
  size_t i;
  if (em == NULL)
    return;
  for (i = 0; i < em->n_sinks; i++)
    jw_exporter_close(em->sinks[i]);
  free(em->sinks);
  jw__mutex_destroy(&em->lock);
  free(em);
}

int jw_run_info_init(jw_run_info_t *run, const char *job_name, jw_tier_t tier) {
  unsigned char rnd[16];
  static const char hex[] = "0123456789abcdef";
  size_t i;
  memset(run, 0, sizeof(*run));
  if (jw__random_bytes(rnd, sizeof(rnd)) != 0)
    return JW_ESYS;
  for (i = 0; i < sizeof(rnd); i++) {
    run->run_id[2 * i] = hex[rnd[i] >> 4];
    run->run_id[2 * i + 1] = hex[rnd[i] & 15];
  }
  run->run_id[32] = '\0';
  jw__hostname(run->host, sizeof(run->host));
  jw__strlcpy(run->job_name, job_name ? job_name : "", sizeof(run->job_name));
  run->tier = tier;
  return 0;
}

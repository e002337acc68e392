/* Executable identity of the job's processes (src/win/imageid.c), a leaf
 * of the monitor (monitor_int.h). At admission (and when an escape is
 * found, monitor_escape.c: the same identity, in its job_escape violation
 * or in a process_update with rule escaped_process) the monitor asks the
 * identity service for the image of each process: the service opens the
 * file and reads its identity on the monitor's thread (no content is read
 * there) and answers from its cache, or queues the work for its own worker
 * thread. A cached answer goes into the process_start; otherwise the start
 * is written at once without it and a sandbox.process_update follows when
 * the worker has hashed the file. The image rules that need a fact of the
 * identity (sha256:, original_file_name:, signer: entries) are decided
 * then (monitor_admit.c, jw__mon_image_decide).
 *
 * The worker never touches the monitor's state: its callback appends a
 * copy of the result to a locked list and posts a JW_CTRL_IDENTITY packet
 * under the control key to wake the monitor, which takes the whole list.
 * Such a packet carries nothing: a forged one can only wake the monitor.
 * The worker counts what it posted, the monitor what it received, so a
 * packet nobody posted is still seen (monitor_tampering, channel control). */
#include <stdlib.h>
#include <string.h>

#include "win/monitor_int.h"

typedef struct id_result_s {
  struct id_result_s *next;
  uint64_t cookie;
  jw__imageid_t r;
} id_result_t;

/* Worker thread: hands the result to the monitor. */
static void on_identity(void *ctx, uint64_t cookie, const jw__imageid_t *result) {
  jw_monitor_t *m = ctx;
  id_result_t *e = malloc(sizeof(*e));
  if (e == NULL)
    return; /* the process keeps "pending"; its job_end names it unavailable */
  e->next = NULL;
  e->cookie = cookie;
  e->r = *result;
  jw__mutex_lock(&m->id_lock);
  if (m->id_tail != NULL)
    m->id_tail->next = e;
  else
    m->id_head = e;
  m->id_tail = e;
  m->id_posted++;
  jw__mutex_unlock(&m->id_lock);
  PostQueuedCompletionStatus(m->job->port, 0, m->job->key_control,
                             (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_IDENTITY);
}

void jw__mon_identity_start(jw_monitor_t *m) {
  jw__mutex_init(&m->id_lock);
  /* The policy's hashing cap (rules.images.hash_cap; 0: the default). */
  if (jw__imageid_start(&m->idsvc, m->job->policy.image_hash_cap, on_identity, m) != 0) {
    m->idsvc = NULL;
    jw__strlcpy(m->id_off_why, "the identity service could not start (out of resources)",
                sizeof(m->id_off_why));
  }
}

void jw__mon_identity_stop(jw_monitor_t *m) {
  id_result_t *e, *next;
  jw__imageid_stop(m->idsvc); /* joins the worker: no callback after this */
  m->idsvc = NULL;
  for (e = m->id_head; e != NULL; e = next) {
    next = e->next;
    free(e);
  }
  m->id_head = m->id_tail = NULL;
  jw__mutex_destroy(&m->id_lock);
}

/* A copy of a result for t (owned by t). */
static void keep(tracked_t *t, const jw__imageid_t *r, int state) {
  if (t->id == NULL)
    t->id = malloc(sizeof(*t->id));
  if (t->id == NULL) {
    t->id_state = ID_FAILED;
    return;
  }
  *t->id = *r;
  t->id_state = state;
}

void jw__mon_identity_request(jw_monitor_t *m, tracked_t *t) {
  jw__imageid_t r;
  wchar_t *w;
  int n, rc;
  size_t len;
  memset(&r, 0, sizeof(r));
  if (m->idsvc == NULL) {
    t->id_state = ID_OFF;
    return;
  }
  if (t->image == NULL || t->image_truncated) {
    t->id_state = ID_OFF; /* the image itself is unknown: said in its own field */
    return;
  }
  len = t->image_len ? t->image_len : strlen(t->image);
  n = MultiByteToWideChar(CP_UTF8, 0, t->image, (int)len, NULL, 0);
  w = n > 0 ? malloc(((size_t)n + 1) * sizeof(*w)) : NULL;
  if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, t->image, (int)len, w, n) == n)
    w[n] = L'\0';
  else {
    free(w);
    w = NULL;
  }
  /* A U+0000 inside the path: not a file name that can be opened. */
  if (w == NULL || wcslen(w) != (size_t)n) {
    free(w);
    t->id_state = ID_OFF;
    return;
  }
  t->id_cookie = ++m->id_serial;
  rc = jw__imageid_request(m->idsvc, w, t->id_cookie, &r);
  free(w);
  if (rc == JW_IMAGEID_CACHED)
    keep(t, &r, ID_KNOWN);
  else if (rc == JW_IMAGEID_QUEUED) {
    t->id_state = ID_PENDING;
    jw__mon_idq_add(m, t); /* found again by its cookie (drain) */
  } else
    keep(t, &r, ID_FAILED); /* FULL or an error: r names why */
}

/* The identity fields of t for an event (borrowed from t->id). */
void jw__mon_identity_fill(const jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p) {
  const jw__imageid_t *r = t->id;
  const char *why;
  if (t->id_state == ID_DROPPED && p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "hash";
    p->unavailable[p->n_unavailable++].reason = JW_NOT_KEPT;
  }
  if (t->id_state == ID_OFF && m->idsvc == NULL && m->id_off_why[0] != '\0' &&
      p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "hash";
    p->unavailable[p->n_unavailable++].reason = m->id_off_why;
  }
  if (r == NULL)
    return;
  if (r->has_sha256)
    p->sha256 = r->sha256;
  p->has_image_size = r->has_image_size;
  p->image_size = r->image_size;
  if (r->has_pe) {
    p->pe_original_file_name = r->original_file_name;
    p->pe_company = r->company;
    p->pe_product = r->product;
    p->pe_description = r->description;
    p->pe_file_version = r->file_version;
  }
  if (r->has_code_signature) {
    p->has_code_signature = 1;
    p->cs_exists = r->code_signature.exists;
    p->cs_trusted = r->code_signature.trusted;
    p->cs_status = r->code_signature.status;
    p->cs_subject_name = r->code_signature.subject_name;
  }
  /* What could not be had, under the schema's field names. */
  if ((why = jw__imageid_unavailable(r, "hash")) != NULL && p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "hash";
    p->unavailable[p->n_unavailable++].reason = why;
  }
  /* An image without a version resource has no pe to read: that is its
   * absence, not a failure (pe_version.c says "image has no version
   * resource"); a resource that could not be read is named. */
  if (!r->has_pe && (why = jw__imageid_unavailable(r, "pe")) != NULL &&
      strcmp(why, "image has no version resource") != 0 && p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "pe";
    p->unavailable[p->n_unavailable++].reason = why;
  }
  if (!r->has_code_signature && (why = jw__imageid_unavailable(r, "code_signature")) != NULL &&
      p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "code_signature";
    p->unavailable[p->n_unavailable++].reason = why;
  }
  if (!r->has_image_size && (why = jw__imageid_unavailable(r, "image_size")) != NULL &&
      p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = "image_size";
    p->unavailable[p->n_unavailable++].reason = why;
  }
}

/* The process_update of t: its identity arrived after its start (a
 * member's process_start, an escape's job_escape violation). */
static void emit_update(jw_monitor_t *m, tracked_t *t, int escaped) {
  jw_event_t ev;
  const char *who = escaped ? "escaped" : t->is_root ? "root" : "child";
  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_UPDATE,
                  escaped      ? "escaped_process"
                  : t->is_root ? "root_process"
                               : "child_process",
                  "observed", NULL, JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  snprintf(ev.message, sizeof(ev.message), "%s process %.300s (pid %lu): executable identity%s%s",
           who, jw__mon_image_or_unknown(t), (unsigned long)t->pid,
           ev.process.sha256 ? ", sha256 " : " (no hash: see unavailable)",
           ev.process.sha256 ? ev.process.sha256 : "");
  jw__mon_emit(m, &ev);
}

/* Takes every result the worker has handed over. */
static void drain(jw_monitor_t *m) {
  id_result_t *e, *next;
  jw__mutex_lock(&m->id_lock);
  e = m->id_head;
  m->id_head = m->id_tail = NULL;
  jw__mutex_unlock(&m->id_lock);
  for (; e != NULL; e = next) {
    tracked_t *t;
    next = e->next;
    /* The pending list is as long as the worker's queue (bounded). */
    for (t = m->idq; t != NULL; t = t->idq_next) {
      if (t->id_state != ID_PENDING || t->id_cookie != e->cookie)
        continue;
      keep(t, &e->r, ID_KNOWN);
      emit_update(m, t, 0);
      if (t->image_rules_pending)
        jw__mon_image_decide(m, t, 1);
      jw__mon_idq_remove(m, t); /* may free t: last */
      break;
    }
    /* Not a member's: an escape's (no rules apply to it, only its record). */
    if (t == NULL && (t = jw__mon_escape_pending(m, e->cookie)) != NULL) {
      keep(t, &e->r, ID_KNOWN);
      emit_update(m, t, 1);
    }
    free(e);
  }
}

void jw__mon_on_identity_packet(jw_monitor_t *m, DWORD bytes, ULONG_PTR value) {
  LONG posted;
  m->id_received++;
  jw__mutex_lock(&m->id_lock);
  posted = m->id_posted;
  jw__mutex_unlock(&m->id_lock);
  /* More taken than posted, beyond those already reported: a forgery. A
   * forgery taken before the worker's own packet makes the count run
   * ahead only once, so that packet is not reported too. */
  if (m->id_received > (uint64_t)posted + m->id_forged) {
    m->id_forged++;
    jw__mon_tampering(m, "control", 0, bytes, value, "unposted_identity",
                      "the identity worker did not post this wake-up (it carries nothing: no "
                      "identity is taken from a packet)");
  }
  drain(m);
}

void jw__mon_identity_finish(jw_monitor_t *m) {
  tracked_t *t, *next;
  /* Every identity asked for is in the record before job_end: wait for the
   * worker (bounded), then take what it handed over. */
  if (m->idsvc != NULL)
    jw__imageid_flush(m->idsvc, JW_IDENTITY_FLUSH_MS);
  drain(m);
  for (t = m->idq; t != NULL; t = next) {
    next = t->idq_next;
    if (t->id_state == ID_PENDING && t->image_rules_pending)
      jw__mon_image_decide(m, t, 1); /* decided without it: image_unknown */
  }
  /* Still not in (a file that does not answer, a read slower than the
   * wait): said, never left silent — one process_update naming every
   * identity field unavailable, and why. */
  for (t = m->idq; t != NULL; t = next) {
    next = t->idq_next;
    if (t->id_state == ID_PENDING) {
      static const char *const fields[] = {"hash", "image_size", "pe", "code_signature"};
      jw__imageid_t r;
      size_t k;
      memset(&r, 0, sizeof(r));
      for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++) {
        snprintf(r.unavailable[k].field, JW_IMAGEID_FIELD_MAX, "%s", fields[k]);
        snprintf(r.unavailable[k].reason, JW_IMAGEID_REASON_MAX,
                 "not read: the image file was still being read when the job ended (waited "
                 "%u ms)",
                 (unsigned)JW_IDENTITY_FLUSH_MS);
      }
      r.n_unavailable = (int)k;
      keep(t, &r, ID_FAILED);
      emit_update(m, t, 0);
      jw__mon_idq_remove(m, t); /* may free t: last */
    }
  }
}

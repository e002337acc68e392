/* The emitter: numbers events (seq), stamps them, renders each once and
 * hands the line to every exporter, in seq order in every sink.
 *
 * With queues (jw_emitter_start), an event's seq is reserved under the
 * lock, the line rendered outside it (callers on several threads render
 * at the same time), and the line committed to the sinks' queues under
 * the lock again in seq order: a line that is ready before an earlier seq
 * waits in `pending` until that one is committed. Each sink's writer takes
 * everything queued in one go and writes it in batches (export_lines: one
 * system call per batch); a sink with a flush has a flusher thread beside
 * its writer that flushes violations to disk by group commit
 * (JW_SYNC_BOUND_MS), so that no line waits behind a flush. Without
 * queues one lock serializes numbering, rendering and writing.
 *
 * What a line costs (docs/performance.md, "Event throughput"): the run's
 * part of every line is rendered once (em->frags), the native line is
 * rendered behind a queue item's header so that the first native sink
 * queues it without a copy, and writers hand the buffers of lines they
 * wrote back (em->spare) for the next lines to be rendered into. */
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format.h"
#include "internal.h"
#include "jw_build_info.h"
#include "spool.h"

typedef struct sink_s {
  jw_exporter_t *exp;  /* owned */
  jw_emitter_t *em;    /* back pointer */
  jw__thread_t thread; /* writer, once started */
  int started;
  int finished;  /* the writer has drained its queue and returned (em->lock) */
  jw__lineq_t q; /* guarded by em->lock */
  /* Lines of the batch the writer took from q and has not come to yet
   * (set under em->lock, counted down by the writer). */
  atomic_size_t in_hand;
  int busy;    /* the writer holds a batch it has not finished (em->lock) */
  int waiting; /* the writer sleeps on `more` (em->lock) */
  /* Set with every line or marker queued, cleared when the writer takes
   * the queue: read without the lock while the writer lingers. */
  atomic_int queued_hint;
  /* q grew or stopping: signalled only when `waiting`. Initialized by
   * jw_emitter_start, once the array of sinks no longer moves. */
  jw__cond_t more;
  /* Group commit (a sink with a flush): the writer reports violations it
   * wrote through export_lines; the flusher thread flushes them once
   * JW_SYNC_BOUND_MS have passed since the oldest was written, while the
   * writer goes on writing. Everything below is guarded by fl_lock, made
   * by jw_emitter_start like `more`. */
  jw__mutex_t fl_lock;
  jw__cond_t fl_cv; /* a first unflushed violation, or fl_stop */
  jw__thread_t flusher;
  int fl_started;
  int fl_dirty;         /* violations written and not flushed yet */
  int fl_stop;          /* the writer is done: flush what is left and return */
  uint64_t fl_first_us; /* when the oldest of them was written */
  uint64_t fl_through;  /* the seq of the last line written before the flush to come */
} sink_t;

/* An event's line in each format a sink of the emitter writes (index:
 * jw_format_t; NULL: could not be rendered). The native line is rendered
 * behind room for a queue item (`item`), so that the first native sink
 * queues the rendered buffer itself instead of a copy. */
typedef struct {
  jw__line_t *item; /* owned until a sink's queue takes it; lines[native] is its data */
  char *lines[3];   /* [ecs], [ocsf] owned; [native] inside item */
  size_t lens[3];
} rendered_t;

/* A line rendered out of turn: it waits until every earlier seq is
 * committed (em->lock). */
typedef struct pending_s {
  struct pending_s *next; /* ascending seq */
  uint64_t seq;
  jw_event_kind_t kind;
  rendered_t r; /* owned */
} pending_t;

struct jw_emitter_s {
  jw__mutex_t lock; /* guards everything below */
  jw__cond_t wake;  /* a writer finished a batch or returned (settle, drain) */
  jw__cond_t turn;  /* `committed` moved (an emitter whose pending entry could not be allocated) */
  jw_run_info_t run;
  /* The run's parts of every line, rendered once by jw_emitter_start
   * (context NULL before, or if that failed: each line renders them). */
  jw__run_frags_t frags;
  /* Buffers of written lines, handed back by the writers for the next
   * lines to be rendered into: a line's buffer goes round instead of
   * being freed on one thread and allocated on another (the heap then
   * shrinks and grows again with the queue). */
  jw__line_t *spare;
  size_t n_spare;
  uint64_t seq;       /* last seq handed out (reserved) */
  uint64_t committed; /* every seq up to this one is in the sinks' queues */
  pending_t *pending; /* rendered, waiting for an earlier seq; ascending */
  sink_t *sinks;      /* owned */
  size_t n_sinks;
  size_t cap_sinks;
  int failed_sinks;
  size_t capacity; /* 0: synchronous delivery */
  int stopping;
  uint64_t dropped;
  int ended; /* job_end was emitted: it stays the last line of every stream */
};

/* Test hook (internal.h): told of every group-commit flush. */
void (*jw__emitter_flush_hook)(void *ctx, const jw_exporter_t *exp, uint64_t through_seq,
                               uint64_t first_unflushed_us, int rc);
void *jw__emitter_flush_hook_ctx;
/* Test hook (internal.h): between an event's seq reservation and its
 * rendering. */
void (*jw__emitter_reserved_hook)(void *ctx, uint64_t seq);
void *jw__emitter_reserved_hook_ctx;

int jw_emitter_new(const jw_run_info_t *run, jw_emitter_t **out) {
  jw_emitter_t *em = calloc(1, sizeof(*em));
  if (em == NULL)
    return JW_ENOMEM;
  em->run = *run;
  atomic_init(&em->frags.last_len, 0);
  jw__mutex_init(&em->lock);
  jw__cond_init(&em->wake);
  jw__cond_init(&em->turn);
  *out = em;
  return 0;
}

/* A sink's word about its own delivery (a network sink's outage and
 * recovery, src/spool.c): a notice in every stream, and on stderr. */
static void sink_notice(void *ctx, jw_exporter_t *exp, const char *rule, jw_severity_t sev,
                        const char *message, void *extra) {
  jw_emitter_t *em = ctx;
  jw_event_t ev;
  char buf[800];
  int n = snprintf(buf, sizeof(buf), "jobwarden: %s\n", message);
  (void)exp;
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  jw__mutex_lock(&em->lock);
  n = em->ended;
  jw__mutex_unlock(&em->lock);
  if (n) {
    json_decref((json_t *)extra); /* after job_end: stderr only (said above) */
    return;
  }
  jw_event_init(&ev, JW_EVENT_NOTICE, rule, sev >= JW_SEV_MEDIUM ? "degraded" : "observed",
                "monitor", "jobwarden", sev);
  ev.extra = extra;
  jw__strlcpy(ev.message, message, sizeof(ev.message));
  jw_emit(em, &ev);
}

int jw_emitter_add(jw_emitter_t *em, jw_exporter_t *exp) {
  int rc = 0;
  jw__mutex_lock(&em->lock);
  if (em->capacity != 0) {
    rc = JW_EINVAL; /* sinks are fixed once delivery threads run */
    goto done;
  }
  if (em->n_sinks == em->cap_sinks) {
    size_t cap = em->cap_sinks ? em->cap_sinks * 2 : 4;
    sink_t *p = realloc(em->sinks, cap * sizeof(*p));
    if (p == NULL) {
      rc = JW_ENOMEM;
      goto done;
    }
    em->sinks = p;
    em->cap_sinks = cap;
  }
  memset(&em->sinks[em->n_sinks], 0, sizeof(sink_t));
  atomic_init(&em->sinks[em->n_sinks].in_hand, 0);
  atomic_init(&em->sinks[em->n_sinks].queued_hint, 0);
  em->sinks[em->n_sinks].exp = exp;
  em->sinks[em->n_sinks].em = em;
  exp->run = &em->run;
  if (exp->insecure)
    em->run.insecure_transport = 1;
  exp->notice = sink_notice;
  exp->notice_ctx = em;
  em->n_sinks++;
done:
  jw__mutex_unlock(&em->lock);
  return rc;
}

/* Tells the user once per sink that it failed; later failures only count. */
/* Returns 1 for the sink's first failure (reported), 0 afterwards. */
static int report_sink_failure(jw_emitter_t *em, jw_exporter_t *exp, const jw_error_t *err,
                               uint64_t seq) {
  char buf[1024];
  int n;
  exp->lost++;
  if (exp->failed)
    return 0;
  exp->failed = 1;
  em->failed_sinks++;
  n = snprintf(buf, sizeof(buf),
               "jobwarden: exporter '%s' failed at event seq %llu: %s; "
               "later events to this sink are counted as lost\n",
               exp->spec, (unsigned long long)seq, err->text[0] ? err->text : "write failed");
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  return 1;
}

/* Tells every sink, in-band, that one sink failed (writer thread, lock not
 * held). The failing sink gets the notice too: if it recovers, it shows. */
static void emit_sink_failed(jw_emitter_t *em, const jw_exporter_t *exp, const jw_error_t *err,
                             uint64_t seq) {
  jw_event_t ev;
  jw_event_init(&ev, JW_EVENT_NOTICE, "sink_failed", "degraded", "monitor", "jobwarden",
                JW_SEV_HIGH);
  ev.extra = json_pack("{s:{s:s,s:s,s:I,s:I}}", "error", "where", exp->spec, "code",
                       jw_err_name(err->code), "win32_error", (json_int_t)err->sys_error, "seq",
                       (json_int_t)seq);
  /* A long message is cut at the field's size: still one valid sentence start. */
  if (snprintf(ev.message, sizeof(ev.message),
               "exporter '%.200s' failed at event seq %llu: %.200s; what it misses is recorded as "
               "sandbox.telemetry_gap in its stream if it recovers",
               exp->spec, (unsigned long long)seq, err->text[0] ? err->text : "write failed") < 0)
    jw__strlcpy(ev.message, "an exporter failed", sizeof(ev.message));
  jw_emit(em, &ev);
}

/* Records that sink k does not get line `seq` (lock held). */
static void drop_for_sink(sink_t *k, uint64_t seq, const char *reason) {
  k->exp->lost++;
  k->em->dropped++;
  jw__lineq_drop(&k->q, seq, seq, reason);
  atomic_store_explicit(&k->queued_hint, 1, memory_order_relaxed);
}

/* Queues the line for sink k: the rendered item itself when *own is not
 * NULL (the queue takes it, *own becomes NULL), else a copy. */
static void enqueue(sink_t *k, uint64_t seq, jw_event_kind_t kind, const char *line, size_t len,
                    jw__line_t **own) {
  size_t limit = jw__is_alert(kind) ? k->em->capacity * 4 : k->em->capacity;
  jw__line_t *it;
  if (k->q.queued >= limit) {
    drop_for_sink(k, seq, "queue_full");
    return;
  }
  if (own != NULL && *own != NULL) {
    it = *own;
    *own = NULL;
  } else {
    it = jw__line_new(seq, kind, line, len);
  }
  if (it == NULL) {
    drop_for_sink(k, seq, "out_of_memory");
    return;
  }
  jw__lineq_push(&k->q, it);
  atomic_store_explicit(&k->queued_hint, 1, memory_order_relaxed);
}

/* Fills lines[f] / lens[f] for every format f != native that a sink of em
 * writes, each converted once from the native line (lines[native]); a
 * format that cannot be rendered stays NULL (its sinks lose the line).
 * The sinks' formats are fixed once queues run: no lock needed then. */
static void render_formats(jw_emitter_t *em, char *lines[3], size_t lens[3]) {
  /* lines[native] is not owned here (rendered_t): only the others are made. */
  size_t i;
  for (i = 0; i < em->n_sinks; i++) {
    jw_format_t f = em->sinks[i].exp->format;
    if (f != JW_FORMAT_NATIVE && lines[f] == NULL &&
        jw_format_line(f, lines[JW_FORMAT_NATIVE], lens[JW_FORMAT_NATIVE], &lines[f], &lens[f]) !=
            0)
      lines[f] = NULL;
  }
}

/* The line of `seq` into every sink's queue (lock held); lines[native]
 * NULL: it could not be rendered, and every sink records the seq as lost
 * (the gap record explains the hole). Returns whether a writer sleeps and
 * must be woken. */
static int commit_line(jw_emitter_t *em, uint64_t seq, jw_event_kind_t kind, rendered_t *r) {
  size_t i;
  int wake = 0;
  for (i = 0; i < em->n_sinks; i++) {
    sink_t *k = &em->sinks[i];
    jw_format_t f = k->exp->format;
    if (r->lines[JW_FORMAT_NATIVE] != NULL && r->lines[f] != NULL)
      enqueue(k, seq, kind, r->lines[f], r->lens[f], f == JW_FORMAT_NATIVE ? &r->item : NULL);
    else
      drop_for_sink(k, seq, "out_of_memory");
    wake |= k->waiting;
  }
  em->committed = seq;
  return wake;
}

static void free_rendered(rendered_t *r) {
  free(r->item);
  free(r->lines[JW_FORMAT_ECS]);
  free(r->lines[JW_FORMAT_OCSF]);
  memset(r, 0, sizeof(*r));
}

/* Commits the line of `seq` now if every earlier seq is committed, else
 * parks it in em->pending (ownership of lines moves there); then every
 * parked line whose turn came. Lock held. Returns whether to wake. */
static int commit_in_order(jw_emitter_t *em, uint64_t seq, jw_event_kind_t kind, rendered_t *r) {
  int wake = 0;
  if (seq != em->committed + 1) {
    pending_t *p = malloc(sizeof(*p)), **at = &em->pending;
    if (p == NULL) {
      /* No memory to park it: wait for its turn instead (rendering is
       * microseconds; the earlier seqs are being rendered right now). */
      while (em->committed + 1 != seq)
        jw__cond_wait(&em->turn, &em->lock);
    } else {
      p->seq = seq;
      p->kind = kind;
      p->r = *r;
      memset(r, 0, sizeof(*r));
      while (*at != NULL && (*at)->seq < seq)
        at = &(*at)->next;
      p->next = *at;
      *at = p;
      return 0;
    }
  }
  wake |= commit_line(em, seq, kind, r);
  while (em->pending != NULL && em->pending->seq == em->committed + 1) {
    pending_t *p = em->pending;
    em->pending = p->next;
    wake |= commit_line(em, p->seq, p->kind, &p->r);
    free_rendered(&p->r);
    free(p);
  }
  jw__cond_broadcast(&em->turn);
  return wake;
}

/* Wakes the writers that sleep (lock not held: woken under it, each would
 * only wait for it again). */
static void wake_writers(jw_emitter_t *em) {
  size_t i;
  for (i = 0; i < em->n_sinks; i++)
    jw__cond_broadcast(&em->sinks[i].more);
}

/* The event's native line as a queue item of `seq` in r (r->item,
 * r->lines[native]): rendered behind the item's header, the run's parts
 * copied from em->frags once jw_emitter_start made them. 0 or JW_ENOMEM
 * (r unchanged). */
static int render_item(jw_emitter_t *em, const jw_event_t *ev, uint64_t seq, uint64_t time_us,
                       jw__line_t *spare, rendered_t *r) {
  jw__linebuf_t lb;
  jw__line_t *it;
  size_t len;
  lb.buf = (char *)spare;
  lb.head = offsetof(jw__line_t, data);
  lb.cap = spare != NULL ? lb.head + spare->cap : 0;
  lb.len = 0;
  if (jw__event_render_into(ev, &em->run, &em->frags, seq, time_us, &lb) != 0)
    return JW_ENOMEM;
  it = (jw__line_t *)(void *)lb.buf;
  len = lb.len;
  memset(it, 0, lb.head);
  it->seq = seq;
  it->kind = ev->kind;
  it->len = len;
  it->cap = lb.cap - lb.head;
  r->item = it;
  r->lines[JW_FORMAT_NATIVE] = it->data;
  r->lens[JW_FORMAT_NATIVE] = len;
  return 0;
}

int jw_emit(jw_emitter_t *em, jw_event_t *ev) {
  /* The line in each format. */
  rendered_t r;
  jw__line_t *spare = NULL; /* a written line's buffer to render into */
  size_t i;
  int rc = 0, wake = 0;
  uint64_t seq, emitted;

  memset(&r, 0, sizeof(r));
  jw__mutex_lock(&em->lock);
  /* sandbox.job_end closes every stream: a consumer may rely on it being
   * the last line. Whatever comes later (a sink that fails on the job_end
   * line itself) is not numbered; it goes to stderr instead of being lost
   * without a word. */
  if (em->ended) {
    char buf[700];
    int n =
        snprintf(buf, sizeof(buf), "jobwarden: after the job's end, not in the record: %s %s: %s\n",
                 jw_event_kind_name(ev->kind), ev->rule ? ev->rule : "?", ev->message);
    if (n > 0)
      jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    json_decref(ev->extra);
    ev->extra = NULL;
    rc = JW_EINVAL;
    goto done;
  }
  /* An event that does not say when it happened happened now, on the
   * clock of the kernel's own process times (event_clock_us): read before
   * the emit time, so that @timestamp <= emitted. */
  if (ev->time_us == 0)
    ev->time_us = jw__event_clock_us();
  if (em->capacity != 0) {
    /* The seq and the emit time are taken in seq order; the line is made
     * outside the lock. A line that cannot be rendered is still committed
     * in its place, as a loss every sink records (its gap record says
     * out_of_memory), so no seq is ever missing without a word. */
    if (ev->kind == JW_EVENT_JOB_END)
      em->ended = 1;
    seq = ++em->seq;
    ev->seq = seq;
    emitted = jw_now_us();
    spare = em->spare;
    if (spare != NULL) {
      em->spare = spare->next;
      em->n_spare--;
    }
    jw__mutex_unlock(&em->lock);
    if (jw__emitter_reserved_hook != NULL)
      jw__emitter_reserved_hook(jw__emitter_reserved_hook_ctx, seq);
    if (render_item(em, ev, seq, emitted, spare, &r) != 0)
      rc = JW_ENOMEM;
    else
      render_formats(em, r.lines, r.lens);
    jw__mutex_lock(&em->lock);
    wake = commit_in_order(em, seq, ev->kind, &r); /* what no queue took is freed below */
    goto done;
  }
  /* The seq is consumed only once the line exists, so a failed render never
   * leaves a gap that no sink can explain. */
  if (render_item(em, ev, em->seq + 1, jw_now_us(), NULL, &r) != 0) {
    rc = JW_ENOMEM;
    goto done;
  }
  if (ev->kind == JW_EVENT_JOB_END)
    em->ended = 1;
  em->seq++;
  em->committed = em->seq;
  ev->seq = em->seq;
  render_formats(em, r.lines, r.lens);
  for (i = 0; i < em->n_sinks; i++) {
    jw_exporter_t *exp = em->sinks[i].exp;
    jw_format_t f = exp->format;
    jw_error_t err;
    memset(&err, 0, sizeof(err));
    if (r.lines[f] == NULL) {
      jw_error_set(&err, JW_ENOMEM, 0, exp->spec, "the line could not be rendered as %s",
                   jw_format_name(f));
      report_sink_failure(em, exp, &err, em->seq);
      rc = JW_EIO;
    } else if (jw__exporter_write(exp, r.lines[f], r.lens[f], ev, &err) != 0) {
      report_sink_failure(em, exp, &err, em->seq);
      rc = JW_EIO;
    } else {
      exp->written++;
    }
  }
done:
  jw__mutex_unlock(&em->lock);
  if (wake)
    wake_writers(em);
  if (ev->extra != NULL) {
    json_decref((json_t *)ev->extra);
    ev->extra = NULL;
  }
  free_rendered(&r);
  return rc;
}

/* Writes the telemetry_gap record for the lost lines in g (writer thread,
 * lock not held). */
static int write_gap(sink_t *k, const jw__gap_t *g) {
  jw_event_t stub;
  jw_error_t err;
  char *line = NULL;
  size_t len = 0;
  int rc = jw__gap_render(&k->em->run, k->exp->spec, 0, g, JW_SEV_HIGH, &line, &len);
  if (rc != 0)
    return rc;
  if (k->exp->format != JW_FORMAT_NATIVE) {
    /* The record in the sink's format, like every other line it gets. */
    char *conv = NULL;
    size_t clen = 0;
    rc = jw_format_line(k->exp->format, line, len, &conv, &clen);
    free(line);
    if (rc != 0)
      return rc;
    line = conv;
    len = clen;
  }
  memset(&stub, 0, sizeof(stub));
  memset(&err, 0, sizeof(err));
  stub.kind = JW_EVENT_TELEMETRY_GAP;
  stub.seq = g->to;
  rc = jw__exporter_write(k->exp, line, len, &stub, &err);
  free(line);
  return rc;
}

/* One line the old way (a gap pending, or after a batch write failed):
 * the gap record first, then the line; a failure counts the line lost and
 * adds it to the gap. Frees it. */
static void write_one(sink_t *k, jw__line_t *it, jw__gap_t *gap) {
  jw_emitter_t *em = k->em;
  jw_event_t stub;
  jw_error_t err;
  if (gap->count > 0) {
    if (write_gap(k, gap) == 0) {
      gap->count = 0;
    } else {
      /* The sink is still failing: this line joins the gap. */
      jw__gap_add(gap, it->seq, it->seq, 1, gap->reason);
      k->exp->lost++;
      jw__mutex_lock(&em->lock);
      em->dropped++;
      jw__mutex_unlock(&em->lock);
      free(it);
      return;
    }
  }
  memset(&stub, 0, sizeof(stub));
  memset(&err, 0, sizeof(err));
  stub.kind = it->kind;
  stub.seq = it->seq;
  if (jw__exporter_write(k->exp, it->data, it->len, &stub, &err) == 0) {
    k->exp->written++;
  } else {
    int first;
    jw__mutex_lock(&em->lock);
    first = report_sink_failure(em, k->exp, &err, it->seq); /* counts exp->lost */
    em->dropped++;
    jw__mutex_unlock(&em->lock);
    if (first)
      emit_sink_failed(em, k->exp, &err, it->seq);
    jw__gap_add(gap, it->seq, it->seq, 1, "write_failed");
  }
  free(it);
}

/* Group commit state of one writer. */
typedef struct {
  int dirty;            /* violations written through export_lines, not flushed yet */
  uint64_t first_us;    /* when the oldest of them was written */
  uint64_t through_seq; /* the last line written before the flush to come */
} commit_t;

static void flush_now(sink_t *k, commit_t *c) {
  jw_error_t err;
  int rc;
  memset(&err, 0, sizeof(err));
  rc = k->exp->vt->flush != NULL ? k->exp->vt->flush(k->exp, &err) : 0;
  if (rc != 0) {
    char buf[800];
    int n = snprintf(
        buf, sizeof(buf), "jobwarden: exporter '%s': flushing to disk failed after seq %llu: %s\n",
        k->exp->spec, (unsigned long long)c->through_seq, err.text[0] ? err.text : "flush failed");
    if (n > 0)
      jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  }
  if (jw__emitter_flush_hook != NULL)
    jw__emitter_flush_hook(jw__emitter_flush_hook_ctx, k->exp, c->through_seq, c->first_us, rc);
  c->dirty = 0;
}

/* Hands the violations the writer wrote (c) to the flusher and clears c
 * (writer thread). The flusher is woken for the first of a group only:
 * it then sleeps until the group's deadline. */
static void flush_request(sink_t *k, commit_t *c) {
  jw__mutex_lock(&k->fl_lock);
  if (!k->fl_dirty) {
    k->fl_dirty = 1;
    k->fl_first_us = c->first_us;
    jw__cond_broadcast(&k->fl_cv);
  }
  k->fl_through = c->through_seq;
  jw__mutex_unlock(&k->fl_lock);
  c->dirty = 0;
}

/* The flusher of a sink with a flush: one flush per group of violations,
 * JW_SYNC_BOUND_MS after the oldest was written (at once when the writer
 * stops). The flush runs beside the writer's writes: what was written
 * before it started is on disk when it returns. */
static void flusher_main(void *arg) {
  sink_t *k = arg;
  const uint64_t bound_us = (uint64_t)JW_SYNC_BOUND_MS * 1000u;
  commit_t c = {0, 0, 0};
  jw__mutex_lock(&k->fl_lock);
  for (;;) {
    if (k->fl_dirty) {
      uint64_t now = jw_now_us(), at = k->fl_first_us + bound_us;
      if (now < at && !k->fl_stop) {
        jw__cond_timedwait(&k->fl_cv, &k->fl_lock, (uint32_t)((at - now + 999u) / 1000u));
        continue;
      }
      c.first_us = k->fl_first_us;
      c.through_seq = k->fl_through;
      k->fl_dirty = 0;
      jw__mutex_unlock(&k->fl_lock);
      flush_now(k, &c);
      jw__mutex_lock(&k->fl_lock);
      continue;
    }
    if (k->fl_stop)
      break;
    jw__cond_wait(&k->fl_cv, &k->fl_lock);
  }
  jw__mutex_unlock(&k->fl_lock);
}

/* Ends the flusher once it has flushed what the writer reported (writer
 * thread, at its end). */
static void flusher_stop(sink_t *k) {
  if (!k->fl_started)
    return;
  jw__mutex_lock(&k->fl_lock);
  k->fl_stop = 1;
  jw__cond_broadcast(&k->fl_cv);
  jw__mutex_unlock(&k->fl_lock);
  jw__thread_join(&k->flusher);
  k->fl_started = 0;
}

#define BATCH_LINES 256
/* The emitter keeps at most this many written lines' buffers, each of at
 * most SPARE_CAP_MAX bytes, for lines to come (a few hundred KiB). */
#define SPARE_MAX     512
#define SPARE_CAP_MAX 4096
/* How long a writer that drained its queue looks for more before it
 * sleeps (sink_main). */
#define LINGER_US 50
/* A writer woken this soon after it went to sleep is in a burst. */
#define BURST_GAP_US 100

/* A written line's buffer: kept in sp (lines a writer has written, handed
 * back to the emitter by give_back under the lock it takes for its next
 * batch) for reuse when it is of a common size, else freed. */
static void spare_keep(jw__lineq_t *sp, jw__line_t *it) {
  if (it->cap == 0 || it->cap > SPARE_CAP_MAX || sp->queued >= SPARE_MAX) {
    free(it);
    return;
  }
  jw__lineq_push(sp, it);
}

/* Hands the writer's spares to the emitter (lock held) as far as its
 * stock has room; returns those it has no room for (freed by the caller,
 * lock released). */
static jw__line_t *give_back(jw_emitter_t *em, jw__lineq_t *sp) {
  jw__line_t *rest = NULL;
  jw__lineq_t all;
  jw__lineq_take(sp, &all);
  if (all.queued == 0)
    return NULL;
  if (em->n_spare + all.queued <= SPARE_MAX) {
    all.tail->next = em->spare;
    em->spare = all.head;
    em->n_spare += all.queued;
  } else {
    rest = all.head;
  }
  return rest;
}

static void free_chain(jw__line_t *it) {
  while (it != NULL) {
    jw__line_t *next = it->next;
    free(it);
    it = next;
  }
}

/* Writes the lines at the head of `batch` (up to BATCH_LINES and
 * JW_WRITE_BATCH_BYTES, stopping at a gap marker) with one export_lines
 * call, or one export_line each where the sink has no batch call or
 * another layer (the emitter's seal, a spool) stands between. Lines after
 * a failed one go back to write_one. */
static void write_batch(sink_t *k, jw__lineq_t *batch, jw__gap_t *gap, commit_t *c,
                        jw__lineq_t *sp) {
  jw_exporter_t *exp = k->exp;
  jw__line_t *items[BATCH_LINES];
  jw_line_ref_t refs[BATCH_LINES];
  size_t n = 0, bytes = 0, done, i;
  int violation = 0;
  jw_error_t err;
  int direct = exp->vt->export_lines != NULL && exp->spool == NULL &&
               (exp->seal == NULL || exp->vt->seals_itself);
  while (n < BATCH_LINES && batch->head != NULL && batch->head->gap_count == 0 &&
         (n == 0 || bytes + batch->head->len <= JW_WRITE_BATCH_BYTES)) {
    jw__line_t *it = jw__lineq_pop(batch);
    items[n] = it;
    refs[n].line = it->data;
    refs[n].len = it->len;
    refs[n].seq = it->seq;
    refs[n].kind = it->kind;
    violation |= it->kind == JW_EVENT_VIOLATION;
    bytes += it->len;
    n++;
  }
  atomic_fetch_sub(&k->in_hand, n);
  if (!direct) {
    for (i = 0; i < n; i++)
      write_one(k, items[i], gap);
    return;
  }
  memset(&err, 0, sizeof(err));
  done = exp->vt->export_lines(exp, refs, n, &err);
  exp->written += done;
  if (done > 0) {
    if (violation && !c->dirty && k->fl_started) {
      c->dirty = 1;
      c->first_us = jw_now_us();
    }
    if (c->dirty)
      c->through_seq = refs[done - 1].seq;
  }
  for (i = 0; i < done; i++)
    spare_keep(sp, items[i]);
  if (done < n) {
    int first;
    jw__mutex_lock(&k->em->lock);
    first = report_sink_failure(k->em, exp, &err, refs[done].seq); /* counts exp->lost */
    k->em->dropped++;
    jw__mutex_unlock(&k->em->lock);
    if (first)
      emit_sink_failed(k->em, exp, &err, refs[done].seq);
    jw__gap_add(gap, refs[done].seq, refs[done].seq, 1, "write_failed");
    free(items[done]);
    for (i = done + 1; i < n; i++)
      write_one(k, items[i], gap);
  }
}

/* One writer per sink: takes lines in order and writes them; losses (from
 * the queue or from failed writes) become one gap record, written before
 * the next line the sink does get. Violations written in batches are
 * handed to the sink's flusher after each batch (group commit, see
 * flusher_main): the writer itself never waits for the disk. */
static void sink_main(void *arg) {
  sink_t *k = arg;
  jw_emitter_t *em = k->em;
  jw__gap_t gap = {0, 0, 0, NULL};
  commit_t commit = {0, 0, 0};
  jw__lineq_t spares = {NULL, NULL, 0};
  jw__lineq_t batch;
  size_t last_take = 0; /* lines in the last take */
  int short_sleep = 0;  /* the last sleep ended within BURST_GAP_US */
  uint64_t slept;
  memset(&batch, 0, sizeof(batch));
  for (;;) {
    jw__line_t *it;
    if (commit.dirty)
      flush_request(k, &commit);
    if (batch.head == NULL) {
      int lingered;
      jw__line_t *extra;
      /* Everything queued so far in one take: the lock the emitter numbers
       * and commits under is taken once per batch, not once per line. */
      jw__mutex_lock(&em->lock);
      extra = give_back(em, &spares);
      if (k->busy) {
        k->busy = 0;
        jw__cond_broadcast(&em->wake); /* jw_emitter_settle */
      }
      /* Only a writer in a burst lingers: one whose last take held more
       * than one line, or whose last sleep was shorter than BURST_GAP_US
       * (the emitter commits about as fast as it writes). A lone line
       * after a quiet spell and it sleeps at once: spinning then only took
       * a core from the threads that carry that line on (a pipe's reader,
       * the server under Wine) — measured: p50 of a line to the file or a
       * pipe reader 25-40 % lower (docs/performance.md). */
      lingered = last_take < 2 && !short_sleep;
      while (k->q.head == NULL && !em->stopping) {
        if (!lingered) {
          /* Before sleeping, look for more for a moment without the lock:
           * an emitter in a burst commits the next line within
           * microseconds, and a sleeping writer costs it a wake-up
           * (a system call, under Wine more) for every line. Once per
           * drained queue, so an idle writer sleeps. */
          uint64_t t0 = jw_now_us();
          lingered = 1;
          jw__mutex_unlock(&em->lock);
          while (!atomic_load_explicit(&k->queued_hint, memory_order_relaxed) &&
                 jw_now_us() - t0 < LINGER_US)
            ;
          jw__mutex_lock(&em->lock);
          continue;
        }
        k->waiting = 1;
        slept = jw_now_us();
        jw__cond_wait(&k->more, &em->lock);
        short_sleep = jw_now_us() - slept < BURST_GAP_US;
        k->waiting = 0;
      }
      jw__lineq_take(&k->q, &batch);
      last_take = batch.queued;
      atomic_store_explicit(&k->queued_hint, 0, memory_order_relaxed);
      atomic_store(&k->in_hand, batch.queued);
      k->busy = batch.head != NULL;
      jw__mutex_unlock(&em->lock);
      free_chain(extra);
    }
    it = batch.head;
    if (it == NULL)
      break; /* stopping and drained */
    if (it->gap_count > 0) {
      /* Merge with losses this writer already holds (they are adjacent). */
      jw__lineq_pop(&batch);
      jw__gap_add(&gap, it->gap_from, it->seq, it->gap_count, it->gap_reason);
      free(it);
      continue;
    }
    if (gap.count > 0) {
      jw__lineq_pop(&batch);
      atomic_fetch_sub(&k->in_hand, 1);
      write_one(k, it, &gap);
      continue;
    }
    write_batch(k, &batch, &gap, &commit, &spares);
  }
  if (commit.dirty)
    flush_request(k, &commit);
  if (gap.count > 0 && write_gap(k, &gap) != 0) {
    char buf[600];
    int n = snprintf(buf, sizeof(buf),
                     "jobwarden: exporter '%s' lost %llu event(s) (seq %llu to %llu) and "
                     "could not record the gap\n",
                     k->exp->spec, (unsigned long long)gap.count, (unsigned long long)gap.from,
                     (unsigned long long)gap.to);
    if (n > 0)
      jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  }
  free_chain(spares.head);
  flusher_stop(k); /* what was reported is on disk before the sink counts as finished */
  jw__mutex_lock(&em->lock);
  k->finished = 1;
  jw__cond_broadcast(&em->wake); /* jw_emitter_drain waits on it too */
  jw__mutex_unlock(&em->lock);
}

int jw_emitter_start(jw_emitter_t *em, size_t capacity) {
  size_t i;
  int rc = 0;
  if (capacity == 0)
    return JW_EINVAL;
  jw__mutex_lock(&em->lock);
  if (em->capacity != 0) {
    rc = JW_EINVAL;
  } else {
    /* The run is final now (jw_emitter_add was its last change): its
     * parts of every line are rendered once. Without memory for them,
     * each line renders its own. Made before capacity is set, so that an
     * emitter that sees the queues sees them. */
    if (em->frags.context == NULL && jw__run_frags_make(&em->run, &em->frags) != 0)
      em->frags.context = NULL;
    em->capacity = capacity;
    for (i = 0; i < em->n_sinks; i++) {
      jw__cond_init(&em->sinks[i].more);
      jw__mutex_init(&em->sinks[i].fl_lock);
      jw__cond_init(&em->sinks[i].fl_cv);
    }
  }
  jw__mutex_unlock(&em->lock);
  if (rc != 0)
    return rc;
  for (i = 0; i < em->n_sinks; i++) {
    sink_t *k = &em->sinks[i];
    /* The flusher first: the writer reads fl_started. A sink without a
     * flush has none; one that cannot start fails the start like a
     * writer. */
    if (k->exp->vt->flush != NULL) {
      if (jw__thread_start(&k->flusher, flusher_main, k) != 0)
        return JW_ESYS;
      k->fl_started = 1;
    }
    if (jw__thread_start(&k->thread, sink_main, k) != 0)
      return JW_ESYS; /* the sinks started so far are joined by jw_emitter_free */
    k->started = 1;
  }
  return 0;
}

int jw_emitter_settle(jw_emitter_t *em, uint32_t timeout_ms) {
  uint64_t deadline = jw_now_us() + (uint64_t)timeout_ms * 1000u;
  int rc = 0;
  if (em == NULL)
    return 0;
  jw__mutex_lock(&em->lock);
  for (;;) {
    size_t i, busy = 0;
    uint64_t now;
    int spool_busy = 0;
    for (i = 0; i < em->n_sinks; i++) {
      sink_t *k = &em->sinks[i];
      jw__spool_stats_t st;
      busy += k->started && !k->finished && (k->q.head != NULL || k->busy);
      /* A network sink has delivered what it holds, or knows (and has
       * said: its notice is written, not being written) that its
       * collector is away. */
      if (jw__spool_stats(k->exp, &st) == 0 && ((st.pending > 0 && !st.down) || st.noticing))
        spool_busy = 1;
    }
    /* A line whose seq is reserved and that is being rendered is as good
     * as queued. */
    if (em->committed != em->seq)
      spool_busy = 1;
    if (busy == 0 && !spool_busy)
      break;
    now = jw_now_us();
    if (now >= deadline) {
      rc = JW_ETIMEDOUT;
      break;
    }
    /* The writers signal em->wake; a spool's sender and a committing
     * emitter do not: look again every few milliseconds while only they
     * are busy. */
    jw__cond_timedwait(&em->wake, &em->lock,
                       busy == 0 ? 5u : (uint32_t)((deadline - now + 999u) / 1000u));
  }
  jw__mutex_unlock(&em->lock);
  return rc;
}

void *jw__emitter_sinks_json(jw_emitter_t *em) {
  json_t *a = json_array();
  size_t i;
  if (a == NULL)
    return NULL;
  jw__mutex_lock(&em->lock);
  for (i = 0; i < em->n_sinks; i++) {
    jw_exporter_t *exp = em->sinks[i].exp;
    jw__spool_stats_t st;
    int spooled = jw__spool_stats(exp, &st) == 0;
    json_t *o =
        json_pack("{s:s,s:I,s:I}", "exporter", exp->spec, "written", (json_int_t)exp->written,
                  "lost", (json_int_t)(exp->lost + (spooled ? st.undeliverable : 0)));
    if (o != NULL && spooled)
      json_object_set_new(o, "spool",
                          json_pack("{s:s,s:I,s:I,s:I,s:b}", "dir", st.dir, "delivered",
                                    (json_int_t)st.delivered, "pending", (json_int_t)st.pending,
                                    "earlier_runs", (json_int_t)st.adopted, "collector_down",
                                    st.down));
    if (o != NULL)
      json_array_append_new(a, o);
  }
  jw__mutex_unlock(&em->lock);
  return a;
}

uint64_t jw_emitter_dropped(jw_emitter_t *em) {
  uint64_t n;
  jw__mutex_lock(&em->lock);
  n = em->dropped;
  jw__mutex_unlock(&em->lock);
  return n;
}

uint64_t jw_emitter_count(jw_emitter_t *em) {
  uint64_t n;
  jw__mutex_lock(&em->lock);
  n = em->committed; /* handed to the sinks, not merely reserved */
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

int jw_emitter_drain(jw_emitter_t *em, uint32_t timeout_ms) {
  uint64_t deadline = jw_now_us() + (uint64_t)timeout_ms * 1000u;
  size_t i, stuck = 0;
  if (em == NULL)
    return 0;
  jw__mutex_lock(&em->lock);
  em->stopping = 1;
  jw__cond_broadcast(&em->wake);
  if (em->capacity != 0)
    wake_writers(em);
  for (;;) {
    uint64_t now;
    stuck = 0;
    for (i = 0; i < em->n_sinks; i++)
      stuck += em->sinks[i].started && !em->sinks[i].finished;
    now = jw_now_us();
    if (stuck == 0 || now >= deadline)
      break;
    jw__cond_timedwait(&em->wake, &em->lock, (uint32_t)((deadline - now + 999u) / 1000u));
  }
  for (i = 0; i < em->n_sinks && stuck > 0; i++) {
    sink_t *k = &em->sinks[i];
    char buf[700];
    int n;
    if (!k->started || k->finished)
      continue;
    n = snprintf(buf, sizeof(buf),
                 "jobwarden: exporter '%s' is stuck (a write has not returned for %lu ms); "
                 "%llu queued event(s) will not reach it\n",
                 k->exp->spec, (unsigned long)timeout_ms,
                 (unsigned long long)(k->q.queued + atomic_load(&k->in_hand)));
    if (n > 0)
      jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
  }
  jw__mutex_unlock(&em->lock);
  return stuck == 0 ? 0 : JW_ETIMEDOUT;
}

void jw_emitter_free(jw_emitter_t *em) {
  size_t i;
  if (em == NULL)
    return;
  jw__mutex_lock(&em->lock);
  em->stopping = 1;
  jw__cond_broadcast(&em->wake);
  if (em->capacity != 0)
    wake_writers(em);
  jw__mutex_unlock(&em->lock);
  for (i = 0; i < em->n_sinks; i++) {
    sink_t *k = &em->sinks[i];
    if (k->started)
      jw__thread_join(&k->thread);
    flusher_stop(k);        /* a flusher whose writer never started */
    jw__lineq_clear(&k->q); /* a sink whose writer never started */
    if (em->capacity != 0) {
      jw__cond_destroy(&k->more);
      jw__cond_destroy(&k->fl_cv);
      jw__mutex_destroy(&k->fl_lock);
    }
  }
  while (em->pending != NULL) { /* an emitter still rendering an earlier seq: none by now */
    pending_t *p = em->pending;
    em->pending = p->next;
    free_rendered(&p->r);
    free(p);
  }
  jw__run_frags_free(&em->frags);
  free_chain(em->spare);
  /* Every network sink's drain runs at the same time, not one after the
   * other. */
  for (i = 0; i < em->n_sinks; i++)
    jw__spool_stop(em->sinks[i].exp);
  for (i = 0; i < em->n_sinks; i++)
    jw_exporter_close(em->sinks[i].exp);
  free(em->sinks);
  jw__cond_destroy(&em->turn);
  jw__cond_destroy(&em->wake);
  jw__mutex_destroy(&em->lock);
  free(em);
}

void jw__run_unavailable(jw_run_info_t *run, const char *field, const char *fmt, ...) {
  va_list ap;
  if (run->n_unavailable >= JW_CONTEXT_UNAVAILABLE_MAX)
    return;
  jw__strlcpy(run->unavailable[run->n_unavailable].field, field, sizeof(run->unavailable[0].field));
  va_start(ap, fmt);
  vsnprintf(run->unavailable[run->n_unavailable].reason, sizeof(run->unavailable[0].reason), fmt,
            ap);
  va_end(ap);
  run->n_unavailable++;
}

/* "<program>-<host>-<8 hex>": the program's file name without directory
 * and ".exe", and the host, each kept to the characters a job name may
 * hold anywhere (letters, digits, '.', '_', '-'; others become '_') and
 * cut so that the whole fits the policy's name limit. */
static void default_job_name(jw_run_info_t *run, const char *program) {
  char prog[41], host[40];
  const char *base = program ? program : "jobwarden";
  const char *p;
  size_t i, n;
  for (p = base; *p; p++)
    if (*p == '\\' || *p == '/' || *p == ':')
      base = p + 1;
  n = strlen(base);
  if (n >= 4 && base[n - 4] == '.' && (base[n - 3] | 0x20) == 'e' && (base[n - 2] | 0x20) == 'x' &&
      (base[n - 1] | 0x20) == 'e')
    n -= 4;
  if (n == 0) {
    base = "jobwarden";
    n = strlen(base);
  }
  if (n >= sizeof(prog))
    n = sizeof(prog) - 1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)base[i];
    prog[i] = (char)((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                             c == '.' || c == '_' || c == '-'
                         ? c
                         : '_');
  }
  prog[n] = '\0';
  for (i = 0; i + 1 < sizeof(host) && run->host[i]; i++) {
    unsigned char c = (unsigned char)run->host[i];
    host[i] = (char)((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                             c == '.' || c == '_' || c == '-'
                         ? c
                         : '_');
  }
  host[i] = '\0';
  snprintf(run->job_name, sizeof(run->job_name), "%s-%s-%.8s", prog, host, run->run_id);
}

int jw_run_info_init_for(jw_run_info_t *run, const char *job_name, const char *program,
                         jw_tier_t tier) {
  unsigned char rnd[16];
  static const char hex[] = "0123456789abcdef";
  size_t i;
  memset(run, 0, sizeof(*run));
  run->start_us = jw__event_clock_us();
  if (jw__random_bytes(rnd, sizeof(rnd)) != 0)
    return JW_ESYS;
  for (i = 0; i < sizeof(rnd); i++) {
    run->run_id[2 * i] = hex[rnd[i] >> 4];
    run->run_id[2 * i + 1] = hex[rnd[i] & 15];
  }
  run->run_id[32] = '\0';
  jw__hostname(run->host, sizeof(run->host));
  jw__run_context(run);
#ifdef JW_BUILD
  jw__strlcpy(run->agent_build, JW_BUILD, sizeof(run->agent_build));
#else
  jw__run_unavailable(run, "agent.build", "jobwarden was not built from a git checkout");
#endif
  if (job_name != NULL && job_name[0] != '\0')
    jw__strlcpy(run->job_name, job_name, sizeof(run->job_name));
  else
    default_job_name(run, program);
  run->tier = tier;
  return 0;
}

int jw_run_info_init(jw_run_info_t *run, const char *job_name, jw_tier_t tier) {
  return jw_run_info_init_for(run, job_name, NULL, tier);
}

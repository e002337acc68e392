/* Setup: the facts of a new member (image, parent, creation time, command
 * line, user) read without the monitor thread ever waiting for them. A
 * leaf of the monitor (monitor_int.h).
 *
 * Admission (monitor_admit.c) asks each fact once on the monitor thread.
 * Nearly always every read answers at once and the user is one the
 * monitor has named before: admission finishes there and then. A process
 * caught at the first instant of its life may not answer yet (Wine: error
 * 6 or 299 for some milliseconds), and a user not seen before needs a
 * LookupAccountSidW (a domain round trip, perhaps): such a member is
 * handed to the setup worker, a thread of jobwarden's own (protected like
 * the others: jw__thread_begin) that reads it again on a handle of its
 * own, tries taken in turn with the other members (at least
 * JW__READ_TRIES, for JW__READ_WINDOW_MS at least)
 * waiting (a member slow to read delays the others by one try, never by
 * all of its tries), looks the user's name up, and posts a JW_CTRL_SETUP
 * packet under the control key when done. The packet carries nothing: the
 * results wait in a locked list, a forged packet can only wake the monitor
 * (the worker counts what it posted, the monitor what it took, like the
 * identity worker's).
 *
 * Until its facts are in, the member is setup_pending: its start event is
 * not written, and every packet naming it (an exit or limit message, an
 * exit watcher's packet) waits in the deferred queue, replayed by the loop
 * in arrival order right after its start. The job's end waits for every
 * setup. A member whose parent's setup is still pending waits for it too
 * (held), so a start event never comes before its parent's. A setup the
 * worker has not finished within SETUP_MAX_MS is completed with what is
 * known (its creation time and parent asked once more on the monitor's
 * handle: its identity in the record stays the same), the rest named
 * unavailable. The worker goes on with it: what it learns later (image,
 * command line, user, parent) comes in a process_update, so a crowd of
 * slow members started to hide another delays that one's facts but does
 * not hide them. Late facts are waited for SETUP_LATE_MS more at most
 * (then abandoned, counted), and the job's end waits for them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win/monitor_int.h"

/* Deferred packets kept at most: beyond, a packet is handled at once (out
 * of order rather than lost). */
#define DEFER_MAX 65536u

static DWORD setup_max_ms = SETUP_MAX_MS;
static DWORD setup_late_ms = SETUP_LATE_MS;

void jw__monitor_setup_limit(DWORD ms) {
  setup_max_ms = ms != 0 ? ms : SETUP_MAX_MS;
}

void jw__monitor_setup_late_limit(DWORD ms) {
  setup_late_ms = ms != 0 ? ms : SETUP_LATE_MS;
}

typedef struct setup_req_s {
  struct setup_req_s *next;                /* todo or done list */
  ULONGLONG due;                           /* the worker's: its next try, not before */
  ULONGLONG since;                         /* when it was handed over (set before) */
  int tries;                               /* the worker's: tries made */
  struct setup_req_s *run_prev, *run_next; /* the monitor's in-flight or late list */
  tracked_t *t;    /* monitor thread only: the member (a reference); NULL once let go */
  ULONGLONG begun; /* monitor thread only: when it was handed over */
  ULONGLONG late;  /* monitor thread only: when it was given up, its facts still wanted; or 0 */
  tracked_t work;  /* the worker's: pid, its own handle, the facts it reads */
  char *user_name; /* looked up by the worker (owned), or NULL */
  int given_up;    /* under the lock: the monitor no longer wants it (not read if not begun) */
} setup_req_t;

typedef struct {
  DWORD pid; /* the member it waits for; 0: every setup */
  jw__deferred_t d;
} deferred_t;

struct jw__mon_setup_s {
  jw__mutex_t lock; /* guards todo, done, quit, busy, posted */
  jw__cond_t wake;  /* the worker waits for work or quit */
  jw__cond_t idle;  /* finish waits for an empty todo list and an idle worker */
  HANDLE thread;    /* owner: this struct */
  HANDLE port;      /* borrowed: the job's */
  ULONG_PTR key;    /* the control key */
  setup_req_t *todo_head, *todo_tail, *done_head, *done_tail;
  int quit, busy;
  LONG posted;
  /* Monitor thread only. */
  setup_req_t *run_head, *run_tail;   /* handed over, oldest first */
  setup_req_t *late_head, *late_tail; /* given up, late facts wanted; oldest first */
  uint32_t n_late;
  uint32_t n_pending; /* members setup_pending (held ones too) */
  tracked_t *held;    /* set up, waiting for a parent's setup */
  uint64_t received, forged;
  deferred_t *q;
  size_t q_len, q_cap;
  jw__deferred_t *ready; /* jw__mon_setup_ready's answer */
  size_t ready_cap;
};

/* ------------------------------------------------------------------------ */
/* The worker                                                               */
/* ------------------------------------------------------------------------ */

/* The first request whose next try is due (unlinked), or NULL and *wait
 * set to the time until the earliest. Under s->lock. */
static setup_req_t *next_due(jw__mon_setup_t *s, ULONGLONG now, DWORD *wait) {
  setup_req_t *r, *prev = NULL;
  ULONGLONG soonest = (ULONGLONG)-1;
  for (r = s->todo_head; r != NULL; prev = r, r = r->next) {
    if (r->due <= now || r->given_up) {
      if (prev != NULL)
        prev->next = r->next;
      else
        s->todo_head = r->next;
      if (s->todo_tail == r)
        s->todo_tail = prev;
      r->next = NULL;
      return r;
    }
    if (r->due < soonest)
      soonest = r->due;
  }
  *wait = soonest - now < JW__READ_RETRY_MS ? (DWORD)(soonest - now) : JW__READ_RETRY_MS;
  return NULL;
}

static void todo_append(jw__mon_setup_t *s, setup_req_t *r) {
  if (s->todo_tail != NULL)
    s->todo_tail->next = r;
  else
    s->todo_head = r;
  s->todo_tail = r;
}

/* The worker tries each process in turn, one try at a time: a process
 * that is not ready goes to the back of the line for its next try (at
 * least JW__READ_RETRY_MS later), so that processes that are slow to read
 * (still starting, or holding a command line that never reads: a crowd
 * started to hide another) delay the others by one try each, never by
 * all of their retries. */
static unsigned __stdcall worker_main(void *arg) {
  jw__mon_setup_t *s = arg;
  jw__mutex_lock(&s->lock);
  for (;;) {
    setup_req_t *r;
    DWORD wait = 0;
    int given_up;
    while (!s->quit && s->todo_head == NULL)
      jw__cond_wait(&s->wake, &s->lock);
    if (s->quit)
      break;
    r = next_due(s, GetTickCount64(), &wait);
    if (r == NULL) {
      jw__cond_timedwait(&s->wake, &s->lock, wait);
      continue;
    }
    s->busy = 1;
    given_up = r->given_up;
    jw__mutex_unlock(&s->lock);
    if (!given_up) {
      /* Not ready is tried again for JW__READ_WINDOW_MS at least, not
       * only for a count of tries: a process the system is slow to set up
       * (Wine under load: no PEB for longer than 12 tries, seen in
       * nul_flood) is read when it is ready. Not longer: an image that
       * never answers is decided (image rules) within that window. */
      int last =
          r->tries + 1 >= JW__READ_TRIES && GetTickCount64() - r->since >= JW__READ_WINDOW_MS;
      jw__read_mode_t mode = last ? JW__READ_LAST : JW__READ_RETRY;
      jw__mon_facts_clear(&r->work, "");
      if (jw__mon_read_facts(&r->work, mode) == JW__FACTS_WAIT) {
        r->tries++;
        r->due = GetTickCount64() + JW__READ_RETRY_MS;
        jw__mutex_lock(&s->lock);
        todo_append(s, r);
        s->busy = 0;
        continue;
      }
      if (r->work.sid_bin != NULL)
        r->user_name = jw__sid_account_name(r->work.sid_bin);
    }
    jw__mutex_lock(&s->lock);
    if (s->done_tail != NULL)
      s->done_tail->next = r;
    else
      s->done_head = r;
    s->done_tail = r;
    s->posted++;
    s->busy = 0;
    jw__cond_broadcast(&s->idle);
    jw__mutex_unlock(&s->lock);
    PostQueuedCompletionStatus(s->port, 0, s->key, (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_SETUP);
    jw__mutex_lock(&s->lock);
  }
  jw__mutex_unlock(&s->lock);
  return 0;
}

static void free_req(setup_req_t *r) {
  if (r->work.h != NULL)
    CloseHandle(r->work.h);
  jw__mon_facts_clear(&r->work, "");
  free(r->user_name);
  free(r);
}

static int worker_on = 1;

void jw__monitor_setup_worker(int on) {
  worker_on = on;
}

void jw__mon_setup_start(jw_monitor_t *m) {
  jw__mon_setup_t *s = worker_on ? calloc(1, sizeof(*s)) : NULL;
  if (s == NULL)
    return; /* setups then run on the monitor thread, with their waits */
  s->port = m->job->port;
  s->key = m->job->key_control;
  jw__mutex_init(&s->lock);
  jw__cond_init(&s->wake);
  jw__cond_init(&s->idle);
  s->thread = jw__thread_begin(worker_main, s, 0, 0);
  if (s->thread == NULL) {
    jw__cond_destroy(&s->wake);
    jw__cond_destroy(&s->idle);
    jw__mutex_destroy(&s->lock);
    free(s);
    return;
  }
  m->setup = s;
}

void jw__mon_setup_stop(jw_monitor_t *m) {
  jw__mon_setup_t *s = m->setup;
  setup_req_t *r, *next;
  if (s == NULL)
    return;
  jw__thread_quit(&s->lock, &s->wake, &s->quit, s->thread);
  /* In flight at the end (the monitor gave up or never took them): their
   * members' references go, the requests with them. */
  for (r = s->run_head; r != NULL; r = r->run_next) {
    if (r->t != NULL)
      jw__mon_unref(m, r->t);
    r->t = NULL;
  }
  for (r = s->late_head; r != NULL; r = r->run_next) {
    if (r->t != NULL)
      jw__mon_unref(m, r->t);
    r->t = NULL;
  }
  for (r = s->todo_head; r != NULL; r = next) {
    next = r->next;
    free_req(r);
  }
  for (r = s->done_head; r != NULL; r = next) {
    next = r->next;
    free_req(r);
  }
  free(s->q);
  free(s->ready);
  jw__cond_destroy(&s->wake);
  jw__cond_destroy(&s->idle);
  jw__mutex_destroy(&s->lock);
  free(s);
  m->setup = NULL;
}

/* ------------------------------------------------------------------------ */
/* Completion (monitor thread)                                              */
/* ------------------------------------------------------------------------ */

static void finish_one(jw_monitor_t *m, tracked_t *t) {
  if (t->setup_pending && m->setup != NULL)
    m->setup->n_pending--;
  t->setup_pending = 0;
  t->setup_held = 0;
  jw__mon_admit_finish(m, t);
}

/* Members held for a parent whose setup is done now. */
static void release_held(jw_monitor_t *m) {
  jw__mon_setup_t *s = m->setup;
  int again = 1;
  while (again && s != NULL) {
    tracked_t **pp;
    again = 0;
    for (pp = &s->held; *pp != NULL; pp = &(*pp)->held_next) {
      tracked_t *t = *pp;
      if (t->parent != NULL && t->parent->setup_pending)
        continue;
      *pp = t->held_next;
      t->held_next = NULL;
      finish_one(m, t);
      again = 1; /* its own children may wait for it */
      break;
    }
  }
}

/* t's facts are in: its start now, or after its parent's. */
static void complete(jw_monitor_t *m, tracked_t *t) {
  jw__mon_setup_t *s = m->setup;
  jw__mon_link_parent(m, t);
  if (s != NULL && t->parent != NULL && t->parent->setup_pending) {
    if (!t->setup_pending) {
      t->setup_pending = 1; /* its packets wait too */
      s->n_pending++;
    }
    t->setup_held = 1;
    t->held_next = s->held;
    s->held = t;
    return;
  }
  finish_one(m, t);
  release_held(m);
}

/* The monitor's lists of requests (in flight, late), linked through
 * run_prev/run_next: a request is on one of them at most. */
static void list_append(setup_req_t **head, setup_req_t **tail, setup_req_t *r) {
  r->run_next = NULL;
  r->run_prev = *tail;
  if (*tail != NULL)
    (*tail)->run_next = r;
  else
    *head = r;
  *tail = r;
}

static void list_remove(setup_req_t **head, setup_req_t **tail, setup_req_t *r) {
  if (r->run_prev != NULL)
    r->run_prev->run_next = r->run_next;
  else
    *head = r->run_next;
  if (r->run_next != NULL)
    r->run_next->run_prev = r->run_prev;
  else
    *tail = r->run_prev;
  r->run_prev = r->run_next = NULL;
}

/* The monitor lets r go: its member's reference is dropped, the worker
 * skips it if it has not begun it, and frees it when its result comes. */
static tracked_t *let_go(jw__mon_setup_t *s, setup_req_t *r) {
  tracked_t *t = r->t;
  r->t = NULL;
  jw__mutex_lock(&s->lock);
  r->given_up = 1;
  jw__mutex_unlock(&s->lock);
  return t;
}

/* The process_update of t: facts of a setup given up, read later. */
static void emit_late(jw_monitor_t *m, tracked_t *t) {
  jw_event_t ev;
  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_UPDATE, t->is_root ? "root_process" : "child_process",
                  "observed", NULL, JW_SEV_INFO);
  ev.source = "jobwarden";
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  snprintf(ev.message, sizeof(ev.message),
           "%s process %.300s (pid %lu): its facts, read after its start (its setup took longer "
           "than %lu ms)",
           t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
           (unsigned long)setup_max_ms);
  jw__mon_emit(m, &ev);
}

/* The late result of a setup given up: what the start lacked, now known. */
static void take_late(jw_monitor_t *m, tracked_t *t, setup_req_t *r) {
  int start_written = !t->setup_pending; /* else held for its parent: the start carries them */
  if (!jw__mon_facts_fill_in(t, &r->work))
    return; /* nothing new (a process gone by then: its reasons are the start's) */
  if (t->user_sid != NULL && t->user_name == NULL) {
    jw__mon_user_name_keep(m, t, r->user_name);
    r->user_name = NULL;
  }
  if (!start_written)
    return; /* admission finishes with them (identity, parent) */
  jw__mon_link_parent(m, t);
  if (t->parent != NULL)
    t->parent_create_time = t->parent->create_time;
  /* Its executable identity (ID_OFF: the image was unknown): in this
   * update when cached, else in one more when the identity worker is done. */
  if (t->id_state == ID_OFF && t->image != NULL && !t->image_truncated)
    jw__mon_identity_request(m, t);
  m->stats.setups_late++;
  emit_late(m, t);
}

/* The worker's results so far. */
static void take(jw_monitor_t *m) {
  jw__mon_setup_t *s = m->setup;
  setup_req_t *r, *next;
  jw__mutex_lock(&s->lock);
  r = s->done_head;
  s->done_head = s->done_tail = NULL;
  jw__mutex_unlock(&s->lock);
  for (; r != NULL; r = next) {
    tracked_t *t = r->t;
    next = r->next;
    if (t != NULL && r->late != 0) {
      list_remove(&s->late_head, &s->late_tail, r);
      s->n_late--;
      r->t = NULL;
      take_late(m, t, r);
      jw__mon_unref(m, t); /* the request's */
    } else if (t != NULL) {
      list_remove(&s->run_head, &s->run_tail, r);
      r->t = NULL;
      jw__mon_facts_move(t, &r->work);
      jw__mon_user_name_keep(m, t, r->user_name);
      r->user_name = NULL;
      complete(m, t);
      jw__mon_unref(m, t); /* the request's */
    }
    free_req(r); /* one the monitor let go: its result goes with it */
  }
}

/* r is overdue (or the job ends): t completes with what is known. With
 * late (the time now, not before the loop's own `now`), the worker goes on
 * and its result comes as late facts. */
static void give_up(jw_monitor_t *m, setup_req_t *r, ULONGLONG late) {
  jw__mon_setup_t *s = m->setup;
  tracked_t *t = r->t;
  char why[96];
  list_remove(&s->run_head, &s->run_tail, r);
  if (late != 0) {
    r->late = late;
    list_append(&s->late_head, &s->late_tail, r);
    s->n_late++; /* r keeps its reference to t */
  } else
    (void)let_go(s, r);
  m->stats.setups_given_up++;
  snprintf(why, sizeof(why), "not read: the process's setup took longer than %lu ms",
           (unsigned long)setup_max_ms);
  jw__mon_facts_clear(t, why);
  t->image_error = ERROR_TIMEOUT;
  jw__mon_read_ids(t); /* on the monitor's handle: asked once, never waits */
  complete(m, t);
  if (!late)
    jw__mon_unref(m, t); /* the request's */
}

/* Late facts not in within SETUP_LATE_MS (or the job ends): the start's
 * reasons stand. */
static void abandon(jw_monitor_t *m, setup_req_t *r) {
  jw__mon_setup_t *s = m->setup;
  list_remove(&s->late_head, &s->late_tail, r);
  s->n_late--;
  m->stats.setups_late_abandoned++;
  jw__mon_unref(m, let_go(s, r));
}

/* ------------------------------------------------------------------------ */
/* The monitor's calls                                                      */
/* ------------------------------------------------------------------------ */

void jw__mon_setup_begin(jw_monitor_t *m, tracked_t *t) {
  jw__mon_setup_t *s = m->setup;
  setup_req_t *r;
  int facts = jw__mon_read_facts(t, JW__READ_ASK);
  if (facts == JW__FACTS_DONE && jw__mon_user_name_cached(m, t)) {
    complete(m, t);
    return;
  }
  r = s != NULL ? calloc(1, sizeof(*r)) : NULL;
  if (r == NULL) {
    /* No worker (it could not start, or no memory): read here, waiting. */
    if (facts == JW__FACTS_WAIT) {
      jw__mon_facts_clear(t, "");
      (void)jw__mon_read_facts(t, JW__READ_PATIENT);
    }
    jw__mon_user_name(m, t);
    complete(m, t);
    return;
  }
  jw__mon_facts_clear(t, "not read yet: the process is being set up");
  r->work.pid = t->pid;
  /* The worker's own handle: the monitor's stays the monitor's. */
  if (t->h != NULL && !DuplicateHandle(GetCurrentProcess(), t->h, GetCurrentProcess(), &r->work.h,
                                       0, FALSE, DUPLICATE_SAME_ACCESS))
    r->work.h = NULL; /* the worker opens it by pid */
  r->t = t;
  jw__mon_ref(t);
  r->begun = r->since = GetTickCount64();
  t->setup_pending = 1;
  s->n_pending++;
  m->stats.setups_async++;
  m->stats.setups_waited_for[facts == JW__FACTS_WAIT ? t->waited_for : JW__WAITED_USER_NAME]++;
  list_append(&s->run_head, &s->run_tail, r);
  jw__mutex_lock(&s->lock);
  todo_append(s, r);
  jw__cond_broadcast(&s->wake);
  jw__mutex_unlock(&s->lock);
}

void jw__mon_on_setup_packet(jw_monitor_t *m, DWORD bytes, ULONG_PTR value) {
  jw__mon_setup_t *s = m->setup;
  LONG posted = 0;
  if (s != NULL) {
    jw__mutex_lock(&s->lock);
    posted = s->posted;
    jw__mutex_unlock(&s->lock);
    s->received++;
  }
  /* More taken than posted, beyond those already reported: a forgery (a
   * forgery taken before the worker's own packet makes the count run
   * ahead once, so that packet is not reported too). */
  if (s == NULL || s->received > (uint64_t)posted + s->forged) {
    if (s != NULL)
      s->forged++;
    jw__mon_tampering(m, "control", 0, bytes, value, "unposted_setup",
                      "the setup worker did not post this wake-up (it carries nothing: no fact "
                      "is taken from a packet)");
  }
  if (s != NULL)
    take(m);
}

void jw__mon_setup_tick(jw_monitor_t *m, ULONGLONG now, DWORD *wait) {
  jw__mon_setup_t *s = m->setup;
  ULONGLONG due = SETUP_POLL_MS;
  if (s == NULL || (s->run_head == NULL && s->late_head == NULL))
    return; /* nothing pending: no cost, no timer */
  take(m);
  while (s->run_head != NULL && now - s->run_head->begun >= setup_max_ms)
    give_up(m, s->run_head, now);
  while (s->late_head != NULL && now - s->late_head->late >= setup_late_ms)
    abandon(m, s->late_head);
  if ((s->run_head == NULL && s->late_head == NULL) || wait == NULL)
    return;
  if (s->run_head != NULL && s->run_head->begun + setup_max_ms - now < due)
    due = s->run_head->begun + setup_max_ms - now;
  if (s->late_head != NULL && s->late_head->late + setup_late_ms - now < due)
    due = s->late_head->late + setup_late_ms - now;
  if (due < *wait)
    *wait = (DWORD)due;
}

void jw__mon_setup_finish(jw_monitor_t *m) {
  jw__mon_setup_t *s = m->setup;
  ULONGLONG deadline = 0;
  if (s == NULL || (s->run_head == NULL && s->late_head == NULL))
    return;
  if (s->run_head != NULL)
    deadline = s->run_head->begun + setup_max_ms;
  if (s->late_head != NULL && s->late_head->late + setup_late_ms > deadline)
    deadline = s->late_head->late + setup_late_ms;
  jw__mutex_lock(&s->lock);
  while (s->todo_head != NULL || s->busy) {
    ULONGLONG now = GetTickCount64();
    if (now >= deadline)
      break;
    jw__cond_timedwait(&s->idle, &s->lock, (uint32_t)(deadline - now));
  }
  jw__mutex_unlock(&s->lock);
  take(m);
  while (s->run_head != NULL)
    give_up(m, s->run_head, 0);
  while (s->late_head != NULL)
    abandon(m, s->late_head);
}

int jw__mon_setup_defer(jw_monitor_t *m, const tracked_t *t, jw__defer_kind_t kind, DWORD bytes,
                        ULONG_PTR value) {
  jw__mon_setup_t *s = m->setup;
  deferred_t *e;
  /* The job's end waits for late facts too. */
  if (s == NULL || (t != NULL ? !t->setup_pending : s->n_pending == 0 && s->n_late == 0))
    return 0;
  if (s->q_len == s->q_cap) {
    size_t cap = s->q_cap ? s->q_cap * 2 : 64;
    deferred_t *q = cap <= DEFER_MAX ? realloc(s->q, cap * sizeof(*q)) : NULL;
    if (q == NULL)
      return 0; /* handled now: out of order rather than lost */
    s->q = q;
    s->q_cap = cap;
  }
  e = &s->q[s->q_len++];
  e->pid = t != NULL ? t->pid : 0;
  e->d.kind = kind;
  e->d.bytes = bytes;
  e->d.value = value;
  m->stats.setups_deferred_packets++;
  return 1;
}

size_t jw__mon_setup_ready(jw_monitor_t *m, const jw__deferred_t **out) {
  jw__mon_setup_t *s = m->setup;
  size_t i, w = 0, n = 0;
  *out = NULL;
  if (s == NULL || s->q_len == 0)
    return 0;
  if (s->ready_cap < s->q_len) {
    jw__deferred_t *r = realloc(s->ready, s->q_len * sizeof(*r));
    if (r == NULL)
      return 0; /* kept: replayed at a later take */
    s->ready = r;
    s->ready_cap = s->q_len;
  }
  /* One pass: the ones whose wait is over, in order, out; the rest kept,
   * in order. */
  for (i = 0; i < s->q_len; i++) {
    const deferred_t *e = &s->q[i];
    tracked_t *t;
    if (e->pid == 0 ? s->n_pending != 0 || s->n_late != 0
                    : (t = jw__mon_find_proc(m, e->pid)) != NULL && t->setup_pending)
      s->q[w++] = *e;
    else
      s->ready[n++] = e->d;
  }
  s->q_len = w;
  *out = s->ready;
  return n;
}

/* The monitor's process table (src/win/monitor_int.h): tracked processes,
 * what is read of them (image, parent, times, command line, user, memory),
 * how they are described in events, and their exits. A leaf: nothing here
 * calls back into the loop (src/win/monitor.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "win/monitor_int.h"

#define OPEN_RETRIES   JW__READ_TRIES
#define RETRY_SLEEP_MS JW__READ_RETRY_MS

static jw__query_image_fn query_image_hook;

void jw__monitor_image_hook(jw__query_image_fn fn) {
  query_image_hook = fn;
}

/* ------------------------------------------------------------------------ */
/* Process facts                                                            */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* The table                                                                */
/* ------------------------------------------------------------------------ */

/* A pid's slot: its newest entry in memory (the older ones follow on
 * pid_next), and the creation time of the newest holder whose entry was
 * freed (gone: there was one). A slot stays for the run: there are as many
 * as distinct pids, which the system reuses. */
typedef struct pid_slot_s {
  DWORD pid; /* 0 = free slot (no process has pid 0 in a job) */
  int gone;
  uint64_t gone_ct;
  tracked_t *head;
} pid_slot_t;

static size_t slot_hash(DWORD pid, size_t cap) {
  /* Pids are multiples of 4 on Windows: mixed before the mask. */
  uint32_t h = (uint32_t)pid * 2654435761u;
  return (size_t)(h ^ (h >> 15)) & (cap - 1);
}

static pid_slot_t *slot_find(jw_monitor_t *m, DWORD pid) {
  size_t i;
  if (m->slot_cap == 0 || pid == 0)
    return NULL;
  for (i = slot_hash(pid, m->slot_cap);; i = (i + 1) & (m->slot_cap - 1)) {
    if (m->slots[i].pid == pid)
      return &m->slots[i];
    if (m->slots[i].pid == 0)
      return NULL;
  }
}

/* The slot of pid, made when missing; NULL when out of memory. */
static pid_slot_t *slot_get(jw_monitor_t *m, DWORD pid) {
  pid_slot_t *s = slot_find(m, pid);
  size_t i;
  if (s != NULL || pid == 0)
    return s;
  if ((m->slot_used + 1) * 10 > m->slot_cap * 7) {
    size_t cap = m->slot_cap ? m->slot_cap * 2 : 64, j;
    pid_slot_t *n = calloc(cap, sizeof(*n));
    if (n == NULL)
      return NULL;
    for (j = 0; j < m->slot_cap; j++) {
      if (m->slots[j].pid == 0)
        continue;
      for (i = slot_hash(m->slots[j].pid, cap); n[i].pid != 0; i = (i + 1) & (cap - 1))
        ;
      n[i] = m->slots[j];
    }
    free(m->slots);
    m->slots = n;
    m->slot_cap = cap;
  }
  for (i = slot_hash(pid, m->slot_cap); m->slots[i].pid != 0; i = (i + 1) & (m->slot_cap - 1))
    ;
  m->slots[i].pid = pid;
  m->slot_used++;
  return &m->slots[i];
}

tracked_t *jw__mon_find_proc(jw_monitor_t *m, DWORD pid) {
  pid_slot_t *s = slot_find(m, pid);
  return s != NULL ? s->head : NULL;
}

tracked_t *jw__mon_add_proc(jw_monitor_t *m, DWORD pid) {
  pid_slot_t *s = slot_get(m, pid);
  tracked_t *t;
  if (s == NULL || (t = calloc(1, sizeof(*t))) == NULL)
    return NULL;
  t->pid = pid;
  t->start_source = "port";
  t->in_table = 1;
  t->refs = 1; /* its run: until its exit is reported */
  /* Newest first: a reused pid belongs to the latest entry. */
  t->pid_next = s->head;
  s->head = t;
  t->all_next = m->all;
  if (m->all != NULL)
    m->all->all_prev = t;
  m->all = t;
  t->live_next = m->live;
  if (m->live != NULL)
    m->live->live_prev = t;
  m->live = t;
  m->n_live++;
  if (++m->n_mem > m->n_mem_peak)
    m->n_mem_peak = m->n_mem;
  if (m->n_tree < TREE_MAX) {
    m->tree[m->n_tree++] = t;
    t->refs++;
  }
  m->stats.processes_seen++;
  return t;
}

void jw__mon_ref(tracked_t *t) {
  t->refs++;
}

/* An entry and what it owns. */
static void free_entry(tracked_t *t) {
  if (t->h != NULL)
    CloseHandle(t->h);
  free(t->image);
  free(t->cmdline);
  free(t->id);
  free(t->kept_sha256);
  free(t->user_sid);
  free(t->sid_bin);
  free(t);
}

/* Frees t (no reference left): its pid's slot remembers it was there. */
static void table_drop(jw_monitor_t *m, tracked_t *t) {
  pid_slot_t *s = slot_find(m, t->pid);
  tracked_t **pp;
  if (s != NULL) {
    for (pp = &s->head; *pp != NULL && *pp != t; pp = &(*pp)->pid_next)
      ;
    if (*pp == t)
      *pp = t->pid_next;
    if (!s->gone || t->create_time > s->gone_ct) {
      s->gone = 1;
      s->gone_ct = t->create_time;
    }
  }
  if (t->all_prev != NULL)
    t->all_prev->all_next = t->all_next;
  else
    m->all = t->all_next;
  if (t->all_next != NULL)
    t->all_next->all_prev = t->all_prev;
  m->n_mem--;
  free_entry(t);
}

void jw__mon_unref(jw_monitor_t *m, tracked_t *t) {
  /* A chain of ancestors may go with it: a loop, not recursion. */
  while (t != NULL && t->in_table && t->refs > 0 && --t->refs == 0) {
    tracked_t *parent = t->parent;
    table_drop(m, t);
    t = parent;
  }
}

void jw__mon_idq_add(jw_monitor_t *m, tracked_t *t) {
  if (!t->in_table)
    return; /* an escape's identity: found by monitor_escape.c */
  t->idq_prev = NULL;
  t->idq_next = m->idq;
  if (m->idq != NULL)
    m->idq->idq_prev = t;
  m->idq = t;
  t->refs++;
}

void jw__mon_idq_remove(jw_monitor_t *m, tracked_t *t) {
  if (!t->in_table || (t->idq_prev == NULL && m->idq != t))
    return;
  if (t->idq_prev != NULL)
    t->idq_prev->idq_next = t->idq_next;
  else
    m->idq = t->idq_next;
  if (t->idq_next != NULL)
    t->idq_next->idq_prev = t->idq_prev;
  t->idq_prev = t->idq_next = NULL;
  jw__mon_unref(m, t);
}

/* t is no longer a running member: out of the live list and the count. */
static void leave_live(jw_monitor_t *m, tracked_t *t) {
  if (!t->in_table || t->exited)
    return;
  t->exited = 1;
  if (t->live_prev != NULL)
    t->live_prev->live_next = t->live_next;
  else
    m->live = t->live_next;
  if (t->live_next != NULL)
    t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = NULL;
  m->n_live--;
}

void jw__mon_left_job(jw_monitor_t *m, tracked_t *t) {
  leave_live(m, t);
}

/* A reported exit: t's whole record stays among the RECENT_EXITS newest
 * (a late message may still name it); the oldest one there is cut down
 * to what the tree and ancestry read (pid, times, image, hash, parent,
 * exit), and lets go of the reference of its run. */
static void retire(jw_monitor_t *m, tracked_t *t) {
  tracked_t *old;
  t->recent_next = NULL;
  if (m->recent_tail != NULL)
    m->recent_tail->recent_next = t;
  else
    m->recent_head = t;
  m->recent_tail = t;
  if (++m->n_recent <= RECENT_EXITS)
    return;
  old = m->recent_head;
  m->recent_head = old->recent_next;
  if (m->recent_head == NULL)
    m->recent_tail = NULL;
  m->n_recent--;
  /* What a later event about it cannot have, named (never a false
   * value): a message naming it after this many exits is rare. The hash
   * stays for its descendants' ancestry. */
  if (old->cmdline != NULL) {
    free(old->cmdline);
    old->cmdline = NULL;
    old->cmdline_len = 0;
    snprintf(old->cmdline_why, sizeof(old->cmdline_why), "%s", JW_NOT_KEPT);
  }
  if (old->user_sid != NULL) {
    free(old->user_sid);
    old->user_sid = NULL;
    old->user_name = NULL;
    snprintf(old->user_why, sizeof(old->user_why), "%s", JW_NOT_KEPT);
  }
  if (old->id != NULL && (old->id_state == ID_KNOWN || old->id_state == ID_FAILED)) {
    if (old->id_state == ID_KNOWN && old->id->has_sha256)
      old->kept_sha256 = strdup(old->id->sha256);
    free(old->id);
    old->id = NULL;
    old->id_state = ID_DROPPED;
  }
  jw__mon_unref(m, old);
}

void jw__mon_table_free(jw_monitor_t *m) {
  tracked_t *t, *next;
  for (t = m->all; t != NULL; t = next) {
    next = t->all_next;
    m->stats.handles_held += t->h != NULL;
    free_entry(t);
  }
  m->all = m->live = NULL;
  free(m->slots);
  m->slots = NULL;
  m->slot_cap = m->slot_used = 0;
}

/* ------------------------------------------------------------------------ */
/* Exits without polling                                                    */
/* ------------------------------------------------------------------------ */

void jw__mon_watch_exit(jw_monitor_t *m, tracked_t *t) {
  if (t->h == NULL || t->watched || t->exited || !t->in_table)
    return;
  if (jw__exitwatch_add(m->xw, t->h, t->pid) != 0) {
    /* Its exit is still learnt from its message, from the job's
     * accounting at the next port activity, and at the job's end. */
    m->stats.exit_waits_failed++;
    return;
  }
  t->watched = 1;
}

void jw__mon_on_exit_signal(jw_monitor_t *m, DWORD bytes, ULONG_PTR value) {
  tracked_t *t = jw__mon_find_proc(m, bytes);
  char why[160];
  if (t == NULL || t->exited) {
    /* Its exit was reported (the message came first): nothing to do, and
     * a packet naming such a process changes nothing either. */
    m->exit_posts++;
    return;
  }
  if (jw__mon_setup_defer(m, t, JW_DEFER_EXITED, bytes, value))
    return; /* judged after its start */
  if (!jw__proc_ended(t->h)) {
    snprintf(why, sizeof(why),
             "process %lu is still running: no exit wait of jobwarden's has fired for it",
             (unsigned long)bytes);
    jw__mon_tampering(m, "control", 0, bytes, value, "unposted_exit", why);
    return;
  }
  jw__mon_grace_add(m, t);
}

void jw__mon_grace_add(jw_monitor_t *m, tracked_t *t) {
  if (t->in_grace || t->exited)
    return;
  /* The kernel posts EXIT_PROCESS while the process is torn down: give it
   * EXIT_GRACE_MS, then the exit is reconciled (jw__mon_exit_grace). */
  t->signaled_tick = GetTickCount64();
  t->in_grace = 1;
  m->n_grace++;
  t->grace_next = NULL;
  t->refs++;
  if (m->grace_tail != NULL)
    m->grace_tail->grace_next = t;
  else
    m->grace_head = t;
  m->grace_tail = t;
}

/* The image path, or NULL (with the Win32 error in *e) when the handle
 * cannot answer yet; its length in bytes (U+0000 kept) in *len and whether
 * it was cut in *truncated. */
static char *query_image(HANDLE h, DWORD *e, size_t *len, int *truncated) {
  wchar_t *buf = malloc(32768 * sizeof(wchar_t));
  char *out = NULL;
  DWORD size = 32768;
  *e = 0;
  *len = 0;
  *truncated = 0;
  if (buf == NULL)
    return NULL;
  if (query_image_hook != NULL ? query_image_hook(h, 0, buf, &size)
                               : QueryFullProcessImageNameW(h, 0, buf, &size)) {
    if (jw_utf16_to_utf8((const uint16_t *)buf, size, JW_HOSTILE_MAX_UNITS, &out, len, truncated) !=
        0)
      *truncated = 0; /* no image: nothing to call truncated */
  } else {
    *e = GetLastError();
  }
  free(buf);
  return out;
}

/* FILETIME of 2000-01-01, and of "now" plus a day: a creation time outside
 * that range is not believed. */
#define FILETIME_2000 0x01BF53EB256D4000ull

static int plausible_filetime(uint64_t ft) {
  FILETIME now;
  uint64_t n;
  GetSystemTimeAsFileTime(&now);
  n = ((uint64_t)now.dwHighDateTime << 32) | now.dwLowDateTime;
  return ft >= FILETIME_2000 && ft <= n + 864000000000ull;
}

/* The creation time: 1 with *v set, 0 when it cannot be read, -1 when the
 * value is not plausible yet (Wine reports a bogus value for a process
 * that is still starting; it settles within milliseconds). */
static int query_create_time(HANDLE h, uint64_t *v) {
  FILETIME ct, xt, kt, ut;
  memset(&ct, 0, sizeof(ct));
  if (!GetProcessTimes(h, &ct, &xt, &kt, &ut))
    return 0;
  *v = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
  return plausible_filetime(*v) ? 1 : -1;
}

/* Opens a process announced by the port and records what can be read. The
 * handle is kept for the process's lifetime, so its pid cannot be reused
 * while jobwarden tracks it. A process caught at the instant of its
 * NEW_PROCESS may hand out a handle that does not answer yet (Wine: error 6
 * for up to tens of milliseconds); it is opened again after a short pause,
 * a bounded number of times. */
HANDLE jw__mon_open_process(DWORD pid) {
  HANDLE h = OpenProcess(TRACK_RIGHTS | EXTRA_RIGHTS, FALSE, pid);
  if (h == NULL && GetLastError() == ERROR_ACCESS_DENIED)
    h = OpenProcess(TRACK_RIGHTS, FALSE, pid);
  return h;
}

/* The account name of a SID, through a small cache (a lookup can take a
 * domain round trip; the members of one job nearly always share a user).
 * The root's is looked up by jw_monitor_set_root on the owner's thread
 * before the monitor runs; a descendant running as another user has its
 * name looked up by the setup worker (monitor_setup.c), never by the
 * monitor thread. */
static int sid_cached(jw_monitor_t *m, void *sid, const char **name) {
  size_t i;
  for (i = 0; i < m->n_sids; i++)
    if (EqualSid((PSID)m->sids[i].sid, (PSID)sid)) {
      *name = m->sids[i].name;
      return 1;
    }
  return 0;
}

/* Keeps sid (owned) and its name (owned, may be NULL) in the cache;
 * returns the cached name, or NULL when the cache is full (the name is
 * then left out rather than leaked). */
static const char *sid_keep(jw_monitor_t *m, void *sid, char *name) {
  const char *have;
  if (sid_cached(m, sid, &have)) {
    free(sid);
    free(name);
    return have;
  }
  if (m->n_sids == SID_CACHE) {
    free(sid);
    free(name);
    return NULL;
  }
  m->sids[m->n_sids].sid = sid;
  m->sids[m->n_sids].name = name;
  m->n_sids++;
  return name;
}

int jw__mon_user_name_cached(jw_monitor_t *m, tracked_t *t) {
  const char *name = NULL;
  if (t->sid_bin == NULL)
    return 1; /* no user read: nothing to name */
  if (!sid_cached(m, t->sid_bin, &name) && m->n_sids < SID_CACHE)
    return 0;          /* a lookup: the setup worker's */
  t->user_name = name; /* NULL when the cache is full: left out */
  free(t->sid_bin);
  t->sid_bin = NULL;
  return 1;
}

void jw__mon_user_name(jw_monitor_t *m, tracked_t *t) {
  if (!jw__mon_user_name_cached(m, t))
    jw__mon_user_name_keep(m, t, jw__sid_account_name(t->sid_bin));
}

void jw__mon_user_name_keep(jw_monitor_t *m, tracked_t *t, char *name) {
  if (t->sid_bin == NULL) {
    free(name);
    return;
  }
  t->user_name = sid_keep(m, t->sid_bin, name);
  t->sid_bin = NULL;
}

static BOOL get_memory(HANDLE h, jw__process_memory_fn fn, PROCESS_MEMORY_COUNTERS_EX *pmc) {
  memset(pmc, 0, sizeof(*pmc));
  pmc->cb = sizeof(*pmc);
  return fn != NULL ? fn(h, (PROCESS_MEMORY_COUNTERS *)pmc, sizeof(*pmc))
                    : GetProcessMemoryInfo(h, (PROCESS_MEMORY_COUNTERS *)pmc, sizeof(*pmc));
}

int jw__mon_memory_counters(const tracked_t *t, jw__process_memory_fn fn,
                            PROCESS_MEMORY_COUNTERS_EX *pmc, const char **where, DWORD *error) {
  HANDLE h;
  BOOL ok;
  if (t->h == NULL) {
    *where = "OpenProcess";
    *error = t->open_error;
    return -1;
  }
  if (get_memory(t->h, fn, pmc))
    return 0;
  *where = "GetProcessMemoryInfo";
  *error = GetLastError();
  if (*error != ERROR_ACCESS_DENIED)
    return -1;
  h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, FALSE, t->pid);
  if (h == NULL) {
    *where = "OpenProcess";
    *error = GetLastError();
    return -1;
  }
  ok = get_memory(h, fn, pmc);
  *error = ok ? 0 : GetLastError();
  CloseHandle(h);
  return ok ? 0 : -1;
}

void jw__mon_sample_memory(tracked_t *t) {
  uint64_t v;
  if (t->h == NULL)
    return;
  v = jw__peak_working_set(t->h);
  if (v > t->peak_ws)
    t->peak_ws = v;
}

/* The parent inside the job: the newest entry of the parent's pid
 * created no later than the child (a younger holder of a reused pid
 * cannot be its parent). Takes one of the parent's references. An escape
 * (src/win/monitor_escape.c, not in the table) links the same way. */
void jw__mon_link_parent(jw_monitor_t *m, tracked_t *t) {
  tracked_t *p;
  if (!t->has_parent || t->parent != NULL)
    return;
  if (t->is_root) {
    t->parent_create_time = t->ppid == GetCurrentProcessId() ? m->own_create_time : 0;
    return;
  }
  for (p = jw__mon_find_proc(m, t->ppid); p != NULL; p = p->pid_next) {
    if (p == t)
      continue;
    if (p->create_time == 0 || t->create_time == 0 || p->create_time <= t->create_time) {
      t->parent = p;
      t->parent_create_time = p->create_time;
      jw__mon_ref(p);
      return;
    }
  }
}

/* Only a process still being set up is worth another look at its command
 * line; a refusal (access denied: a protected process) will not change,
 * nor will the memory of a process that is gone. ERROR_INVALID_DATA: no
 * PEB or no parameter block yet (Wine, a child caught at its first
 * instant: seen in wine.injected.setup nul_flood). */
static int cmdline_not_ready(const tracked_t *t, int e) {
  return (e == ERROR_NOT_READY || e == ERROR_PARTIAL_COPY || e == ERROR_INVALID_HANDLE ||
          e == ERROR_NOACCESS || e == ERROR_INVALID_DATA || e == JW__CMDLINE_NUL_ERROR) &&
         !jw__proc_ended(t->h);
}

/* Whether a fact that is not ready yet ends this read (JW__FACTS_WAIT). */
static int returns_wait(jw__read_mode_t mode) {
  return mode == JW__READ_ASK || mode == JW__READ_RETRY;
}

/* The command line, user and integrity, a first memory sample of t (its
 * handle is open). A just-created process may not answer yet (Wine: error
 * 6 or 299 for a few milliseconds): see jw__mon_read_facts's modes. */
static int read_more(tracked_t *t, jw__read_mode_t mode) {
  int attempt, tries = mode == JW__READ_PATIENT ? OPEN_RETRIES : 1;
  for (attempt = 0; attempt < tries; attempt++) {
    int e;
    if (attempt > 0)
      Sleep(RETRY_SLEEP_MS);
    e = jw__proc_command_line(t->h, &t->cmdline, &t->cmdline_len, &t->cmdline_truncated,
                              t->cmdline_why, sizeof(t->cmdline_why));
    if (e == 0) {
      t->cmdline_why[0] = 0;
      break;
    }
    if (!cmdline_not_ready(t, e))
      break;
    if (e == JW__CMDLINE_NUL_ERROR && ++t->nul_reads >= JW__NUL_TRIES)
      break;
    t->waited_for = JW__WAITED_COMMAND_LINE;
    if (returns_wait(mode))
      return JW__FACTS_WAIT;
  }
  if (jw__proc_user(t->h, &t->user_sid, &t->sid_bin, &t->integrity, t->user_why,
                    sizeof(t->user_why)) == 0)
    t->user_why[0] = 0;
  jw__mon_sample_memory(t);
  return JW__FACTS_DONE;
}

/* Why nothing can be read of a process without a handle. */
static void say_unopened(tracked_t *t) {
  snprintf(t->cmdline_why, sizeof(t->cmdline_why), "%s (error %lu)",
           t->open_error == ERROR_INVALID_PARAMETER
               ? "the process was gone before it could be opened"
               : "the process could not be opened",
           (unsigned long)t->open_error);
  snprintf(t->user_why, sizeof(t->user_why), "the process could not be opened (error %lu)",
           (unsigned long)t->open_error);
  jw__strlcpy(t->image_why, t->user_why, sizeof(t->image_why));
}

int jw__mon_read_facts(tracked_t *t, jw__read_mode_t mode) {
  int attempt, ct = 0, tries = mode == JW__READ_PATIENT ? OPEN_RETRIES : 1;
  for (attempt = 0; attempt < tries; attempt++) {
    DWORD e = 0;
    if (attempt > 0)
      Sleep(RETRY_SLEEP_MS);
    if (t->h == NULL)
      t->h = jw__mon_open_process(t->pid);
    if (t->h == NULL) {
      t->open_error = GetLastError();
      if (t->open_error == ERROR_INVALID_PARAMETER)
        break; /* no such process (any more): what it cannot give is said below */
      t->waited_for = JW__WAITED_OPEN;
      if (returns_wait(mode))
        return JW__FACTS_WAIT;
      continue;
    }
    t->open_error = 0;
    t->image = query_image(t->h, &e, &t->image_len, &t->image_truncated);
    t->image_error = e;
    if (t->image != NULL)
      break;
    t->waited_for = JW__WAITED_IMAGE;
    /* The first ask keeps the membership check's handle (it pins the
     * pid); the worker reads on a copy, reopening as needed. */
    if (mode == JW__READ_ASK)
      return JW__FACTS_WAIT;
    if (e == ERROR_INVALID_HANDLE && (mode == JW__READ_RETRY || attempt + 1 < tries)) {
      CloseHandle(t->h);
      t->h = NULL;
    }
    if (mode == JW__READ_RETRY)
      return JW__FACTS_WAIT;
  }
  if (t->h == NULL) {
    say_unopened(t);
    return JW__FACTS_DONE;
  }
  if (t->image == NULL)
    snprintf(t->image_why, sizeof(t->image_why), "QueryFullProcessImageNameW failed (error %lu)",
             (unsigned long)t->image_error);
  t->has_parent = jw__proc_parent(t->h, &t->ppid);
  for (attempt = 0; attempt < tries && (ct = query_create_time(t->h, &t->create_time)) < 0;
       attempt++) {
    t->waited_for = JW__WAITED_CREATE_TIME;
    if (returns_wait(mode))
      return JW__FACTS_WAIT;
    if (attempt + 1 < tries)
      Sleep(RETRY_SLEEP_MS);
  }
  if (ct <= 0)
    t->create_time = 0;
  return read_more(t, mode);
}

void jw__mon_facts_clear(tracked_t *t, const char *why) {
  free(t->image);
  free(t->cmdline);
  free(t->user_sid);
  free(t->sid_bin);
  t->image = t->cmdline = t->user_sid = NULL;
  t->sid_bin = NULL;
  t->image_len = t->cmdline_len = 0;
  t->image_truncated = t->cmdline_truncated = 0;
  t->image_error = 0;
  t->has_parent = 0;
  t->ppid = 0;
  t->create_time = 0;
  t->user_name = NULL;
  t->integrity = NULL;
  jw__strlcpy(t->cmdline_why, why, sizeof(t->cmdline_why));
  jw__strlcpy(t->user_why, why, sizeof(t->user_why));
  jw__strlcpy(t->image_why, why, sizeof(t->image_why));
}

void jw__mon_facts_move(tracked_t *dst, tracked_t *src) {
  jw__mon_facts_clear(dst, "");
  if (src->h != NULL) {
    if (dst->h != NULL)
      CloseHandle(dst->h);
    dst->h = src->h;
    src->h = NULL;
  }
  dst->open_error = src->open_error;
  dst->image = src->image;
  dst->image_len = src->image_len;
  dst->image_truncated = src->image_truncated;
  dst->image_error = src->image_error;
  dst->has_parent = src->has_parent;
  dst->ppid = src->ppid;
  dst->create_time = src->create_time;
  dst->cmdline = src->cmdline;
  dst->cmdline_len = src->cmdline_len;
  dst->cmdline_truncated = src->cmdline_truncated;
  memcpy(dst->cmdline_why, src->cmdline_why, sizeof(dst->cmdline_why));
  dst->user_sid = src->user_sid;
  dst->sid_bin = src->sid_bin;
  dst->integrity = src->integrity;
  memcpy(dst->user_why, src->user_why, sizeof(dst->user_why));
  memcpy(dst->image_why, src->image_why, sizeof(dst->image_why));
  if (src->peak_ws > dst->peak_ws)
    dst->peak_ws = src->peak_ws;
  src->image = src->cmdline = src->user_sid = NULL;
  src->sid_bin = NULL;
}

void jw__mon_read_ids(tracked_t *t) {
  uint64_t ct = 0;
  if (t->h == NULL)
    return;
  if (!t->has_parent)
    t->has_parent = jw__proc_parent(t->h, &t->ppid);
  if (t->create_time == 0 && query_create_time(t->h, &ct) > 0)
    t->create_time = ct;
}

int jw__mon_facts_fill_in(tracked_t *dst, tracked_t *src) {
  int learned = 0;
  if (dst->image == NULL && src->image != NULL) {
    dst->image = src->image;
    dst->image_len = src->image_len;
    dst->image_truncated = src->image_truncated;
    dst->image_error = src->image_error;
    src->image = NULL;
    learned = 1;
  }
  if (dst->image == NULL && src->image_why[0] != 0)
    memcpy(dst->image_why, src->image_why, sizeof(dst->image_why));
  if (dst->cmdline == NULL && src->cmdline != NULL) {
    dst->cmdline = src->cmdline;
    dst->cmdline_len = src->cmdline_len;
    dst->cmdline_truncated = src->cmdline_truncated;
    src->cmdline = NULL;
    learned = 1;
  }
  /* Still unread: the reader's own reason now, not the setup's. */
  if (dst->cmdline == NULL && src->cmdline_why[0] != 0)
    memcpy(dst->cmdline_why, src->cmdline_why, sizeof(dst->cmdline_why));
  if (dst->user_sid == NULL && src->user_sid != NULL) {
    free(dst->sid_bin);
    dst->user_sid = src->user_sid;
    dst->sid_bin = src->sid_bin;
    dst->integrity = src->integrity;
    dst->user_name = NULL;
    src->user_sid = NULL;
    src->sid_bin = NULL;
    learned = 1;
  }
  if (dst->user_sid == NULL && src->user_why[0] != 0)
    memcpy(dst->user_why, src->user_why, sizeof(dst->user_why));
  if (!dst->has_parent && src->has_parent) {
    dst->has_parent = 1;
    dst->ppid = src->ppid;
    learned = 1;
  }
  return learned;
}

void jw__mon_enrich_more(jw_monitor_t *m, tracked_t *t) {
  if (t->h == NULL)
    say_unopened(t);
  else
    (void)read_more(t, 1);
  jw__mon_user_name(m, t);
  jw__mon_link_parent(m, t);
}

static void unavailable(jw_process_info_t *p, const char *field, const char *why) {
  if (why != NULL && why[0] != 0 && p->n_unavailable < JW_UNAVAILABLE_MAX) {
    p->unavailable[p->n_unavailable].field = field;
    p->unavailable[p->n_unavailable].reason = why;
    p->n_unavailable++;
  }
}

/* Everything known about t, for an event emitted before the next call (the
 * ancestry lives in the monitor's scratch array). */
void jw__mon_fill_process(jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p) {
  const tracked_t *a;
  memset(p, 0, sizeof(*p));
  p->pid = t->pid;
  p->create_time = t->create_time;
  p->image = t->image;
  p->image_len = t->image_len;
  p->image_truncated = t->image_truncated;
  p->has_parent = t->has_parent;
  p->parent_pid = t->ppid;
  p->has_exit_code = t->has_exit_code;
  p->exit_code = t->exit_code;
  p->is_root = t->is_root;

  p->parent_create_time = t->parent_create_time;
  p->command_line = t->cmdline;
  p->command_line_len = t->cmdline_len;
  p->command_line_truncated = t->cmdline_truncated;
  p->user_sid = t->user_sid;
  p->user_name = t->user_name;
  p->integrity = t->integrity;
  p->ancestry = m->anc;
  for (a = t->is_root ? NULL : t->parent; a != NULL; a = a->parent) {
    if (p->n_ancestry == JW_ANCESTRY_MAX) {
      p->ancestry_truncated = 1;
      break;
    }
    m->anc[p->n_ancestry].pid = a->pid;
    m->anc[p->n_ancestry].create_time = a->create_time;
    m->anc[p->n_ancestry].image = a->image;
    m->anc[p->n_ancestry].image_len = a->image_len;
    m->anc[p->n_ancestry].sha256 = a->id != NULL && a->id_state == ID_KNOWN && a->id->has_sha256
                                       ? a->id->sha256
                                   : a->id_state == ID_DROPPED ? a->kept_sha256
                                                               : NULL;
    p->n_ancestry++;
    if (a->is_root)
      break;
  }
  jw__mon_identity_fill(m, t, p);
  unavailable(p, "image", t->image == NULL ? t->image_why : NULL);
  unavailable(p, "command_line", t->cmdline == NULL ? t->cmdline_why : NULL);
  unavailable(p, "user", t->user_sid == NULL ? t->user_why : NULL);
  if (t->exited && t->exit_read) {
    const jw__exit_facts_t *f = &t->xf;
    p->end_time = f->end_time;
    unavailable(p, "end", f->end_time == 0 ? f->end_why : NULL);
    p->has_cpu = f->has_cpu;
    p->cpu_user_100ns = f->cpu_user_100ns;
    p->cpu_kernel_100ns = f->cpu_kernel_100ns;
    unavailable(p, "cpu", f->has_cpu ? NULL : f->cpu_why);
    p->has_io = f->has_io;
    p->io_read_ops = f->io_read_ops;
    p->io_write_ops = f->io_write_ops;
    p->io_other_ops = f->io_other_ops;
    p->io_read_bytes = f->io_read_bytes;
    p->io_write_bytes = f->io_write_bytes;
    p->io_other_bytes = f->io_other_bytes;
    unavailable(p, "io", f->has_io ? NULL : f->io_why);
    if (f->peak_working_set != 0 && f->peak_working_set >= t->peak_ws) {
      p->has_peak_working_set = 1;
      p->peak_working_set = f->peak_working_set;
      p->peak_working_set_from = "exit";
    } else if (t->peak_ws != 0) {
      p->has_peak_working_set = 1;
      p->peak_working_set = t->peak_ws;
      p->peak_working_set_from = "samples";
    } else {
      unavailable(p, "peak_working_set",
                  f->memory_why[0] ? f->memory_why
                                   : "the system reported 0 and no value was read while it ran");
    }
  } else if (t->exited) {
    unavailable(p, "end", "no handle to the process: nothing could be read at its exit");
  }
}

/* Marks t exited and reads what its exit leaves: exit code, time, CPU,
 * memory, I/O. */
void jw__mon_mark_exited(jw_monitor_t *m, tracked_t *t) {
  int64_t code;
  leave_live(m, t);
  if (t->h == NULL)
    return;
  code = jw__proc_exit_code(t->h);
  if (code >= 0) {
    t->has_exit_code = 1;
    t->exit_code = (uint32_t)code;
  }
  jw__proc_exit_facts(t->h, &t->xf);
  t->exit_read = 1;
}

const char *jw__mon_image_or_unknown(const tracked_t *t) {
  return t->image ? t->image : "(image unknown)";
}

uint32_t jw__mon_active_count(const jw_monitor_t *m) {
  return m->n_live;
}

/* ------------------------------------------------------------------------ */
/* Events                                                                   */
/* ------------------------------------------------------------------------ */

/* Most monitor events come from a port message. */
uint64_t jw__mon_filetime_us(uint64_t filetime) {
  if (filetime <= 116444736000000000ull)
    return 0;
  return (filetime - 116444736000000000ull) / 10u;
}

void jw__mon_ev_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                     const char *enforcer, jw_severity_t sev) {
  jw_event_init(ev, kind, rule, action, enforcer, "port", sev);
}

void jw__mon_ev_job_message(jw_event_t *ev, DWORD msg) {
  ev->has_job_message = 1;
  ev->job_message = msg;
}

void jw__mon_coalesce_flush(jw_monitor_t *m, int all, DWORD *wait) {
  jw_event_t ev;
  uint64_t now = jw_now_us(), next;
  while (jw__coalesce_take(&m->coalesce, now, all, &ev))
    jw_emit(m->em, &ev);
  next = jw__coalesce_next_close(&m->coalesce);
  if (wait != NULL && next != 0) {
    uint64_t ms = next > now ? (next - now + 999u) / 1000u : 0;
    if (ms < *wait)
      *wait = (DWORD)ms;
  }
}

/* Violations about the sandbox itself are written every time (the
 * tampering and reader floods have their own bound). */
static int coalescable(const jw_event_t *ev) {
  return ev->kind == JW_EVENT_VIOLATION && ev->rule != NULL &&
         strcmp(ev->rule, "job_escape") != 0 && strcmp(ev->rule, "monitor_tampering") != 0 &&
         strcmp(ev->rule, "pipe_reader_refused") != 0;
}

/* The policy's own tags for a monitor rule's violation (rules.<rule>.tags). */
static void add_policy_tags(const jw_monitor_t *m, jw_event_t *ev) {
  const jw_policy_t *p = &m->job->policy;
  int r = -1, k;
  size_t slot;
  if (strncmp(ev->rule, "image_", 6) == 0)
    r = JW_TAGGED_IMAGES;
  else if (strcmp(ev->rule, "timeout") == 0)
    r = JW_TAGGED_TIMEOUT;
  else if (strcmp(ev->rule, "total_processes") == 0)
    r = JW_TAGGED_TOTAL_PROCESSES;
  else if (strcmp(ev->rule, "active_processes") == 0)
    r = JW_TAGGED_ACTIVE_PROCESSES;
  else if (strcmp(ev->rule, "job_escape") == 0)
    r = JW_TAGGED_ESCAPE;
  if (r < 0)
    return;
  for (slot = 0; slot < sizeof(ev->tags) / sizeof(ev->tags[0]) && ev->tags[slot] != NULL; slot++)
    ;
  for (k = 0; k < p->n_rule_tags[r] && slot < sizeof(ev->tags) / sizeof(ev->tags[0]); k++)
    ev->tags[slot++] = p->rule_tags[r][k];
}

void jw__mon_emit(jw_monitor_t *m, jw_event_t *ev) {
  uint64_t now = 0;
  if (ev->kind == JW_EVENT_VIOLATION)
    m->stats.violations++;
  if (ev->kind == JW_EVENT_VIOLATION && ev->rule != NULL)
    add_policy_tags(m, ev);
  /* A repeat of a violation inside the window of the one written: counted
   * into that window's summary (coalesce.h). Enforcement already
   * happened; only the line is held back. */
  if (coalescable(ev)) {
    now = jw_now_us();
    jw__mon_coalesce_flush(m, 0, NULL); /* a closed window first: its summary, then this */
    if (jw__coalesce_hold(&m->coalesce, ev, now)) {
      m->stats.coalesced++;
      return;
    }
  }
  /* Events that stand in for lost messages (not the gap record itself). */
  if (ev->source != NULL && strcmp(ev->source, "reconciled") == 0 &&
      ev->kind != JW_EVENT_TELEMETRY_GAP)
    m->stats.reconciled++;
  jw_emit(m->em, ev);
  if (now != 0)
    jw__coalesce_opened(&m->coalesce, ev, now);
}

static void format_code(uint32_t code, char *buf, size_t size) {
  const char *name = jw_ntstatus_name(code);
  if (name != NULL)
    snprintf(buf, size, "0x%08lX %s", (unsigned long)code, name);
  else
    snprintf(buf, size, "0x%08lX", (unsigned long)code);
}

/* The exit of a tracked process: its lifecycle event, preceded by a
 * violation when the exit code is an exception / NTSTATUS error (whichever
 * message announced it) and jobwarden did not cause it. */
void jw__mon_report_exit(jw_monitor_t *m, tracked_t *t, DWORD msg, const char *source) {
  jw_event_t ev;
  char code[96];
  int ours = t->has_exit_code && t->exit_code == JW_TERMINATE_EXIT_CODE;
  /* A process a rule terminated on its own (kill_process) keeps that
   * cause even when the job is terminated afterwards. */
  int killed_proc = ours && t->killed_by != NULL;
  int killed = ours && (killed_proc || m->terminating);
  int abnormal = (t->has_exit_code && jw_exit_classify(t->exit_code) == JW_EXIT_ABNORMAL) ||
                 msg == JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS;

  if (t->has_exit_code)
    format_code(t->exit_code, code, sizeof(code));
  else
    snprintf(code, sizeof(code), "an unknown exit code");

  if (abnormal && !killed) {
    m->stats.abnormal_exits++;
    /* A crash: nobody acted on the process, it ended by itself. */
    jw__mon_ev_init(&ev, JW_EVENT_VIOLATION, "abnormal_exit", "observed", NULL, JW_SEV_HIGH);
    ev.source = source;
    if (msg)
      jw__mon_ev_job_message(&ev, msg);
    ev.has_process = 1;
    jw__mon_fill_process(m, t, &ev.process);
    ev.time_us = jw__mon_filetime_us(ev.process.end_time);
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) exited abnormally with %s", t->is_root ? "root" : "child",
             jw__mon_image_or_unknown(t), (unsigned long)t->pid, code);
    jw__mon_emit(m, &ev);
  }

  jw__mon_ev_init(&ev, JW_EVENT_PROCESS_EXIT, t->is_root ? "root_process" : "child_process",
                  killed_proc ? "terminated"
                  : killed    ? "killed_job"
                              : "observed",
                  "monitor", JW_SEV_INFO);
  ev.source = source;
  if (msg)
    jw__mon_ev_job_message(&ev, msg);
  ev.has_process = 1;
  jw__mon_fill_process(m, t, &ev.process);
  ev.time_us = jw__mon_filetime_us(ev.process.end_time);
  if (killed_proc && strcmp(t->killed_by, "member_control") == 0)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (control request `kill` "
             "from pid %lu)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             (unsigned long)t->kill_requester);
  else if (killed_proc)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (monitor rule %s, "
             "kill_process)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             t->killed_by);
  else if (killed)
    snprintf(ev.message, sizeof(ev.message),
             "%s process %.300s (pid %lu) was terminated by jobwarden (%s)",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             m->terminate_reason ? m->terminate_reason : "job terminated");
  else
    snprintf(ev.message, sizeof(ev.message), "%s process %.300s (pid %lu) exited with %s",
             t->is_root ? "root" : "child", jw__mon_image_or_unknown(t), (unsigned long)t->pid,
             code);
  jw__mon_emit(m, &ev);
  /* Reported: its handle is let go, so that a long run with many
   * short-lived processes does not keep every one of them (and its pid)
   * alive in the kernel. What the events need was read at the exit. */
  if (t->h != NULL) {
    CloseHandle(t->h);
    t->h = NULL;
    t->released = 1;
  }
  if (t->in_table && !t->retired) {
    t->retired = 1;
    retire(m, t);
  }
}

/* Whether the process now holding t's pid is t's own (same creation
 * time); when it cannot be opened, it is taken to be (nothing new to
 * report). */
int jw__mon_same_process(DWORD pid, uint64_t create_time) {
  HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  FILETIME ct, xt, kt, ut;
  int same = 1;
  if (h == NULL)
    return 1;
  if (create_time != 0 && GetProcessTimes(h, &ct, &xt, &kt, &ut))
    same = (((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime) == create_time;
  CloseHandle(h);
  return same;
}

/* The job's members by its process id list; NULL with *n 0 on failure.
 * m->idlist holds the raw answer (header + ULONG_PTR ids); the ids are
 * returned in m->pids. */
const DWORD *jw__mon_job_pids(jw_monitor_t *m, size_t *n) {
  *n = 0;
  for (;;) {
    size_t cap = m->idlist_cap ? m->idlist_cap : 64;
    size_t bytes = sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + cap * sizeof(ULONG_PTR);
    JOBOBJECT_BASIC_PROCESS_ID_LIST *l;
    size_t i;
    if (m->idlist == NULL) {
      m->idlist = malloc(bytes);
      m->pids = malloc(cap * sizeof(DWORD));
      if (m->idlist == NULL || m->pids == NULL)
        return NULL;
      m->idlist_cap = cap;
    }
    l = (JOBOBJECT_BASIC_PROCESS_ID_LIST *)m->idlist;
    memset(l, 0, sizeof(*l));
    if (!QueryInformationJobObject(m->job->job, JobObjectBasicProcessIdList, l, (DWORD)bytes,
                                   NULL) &&
        GetLastError() != ERROR_MORE_DATA)
      return NULL;
    if (l->NumberOfAssignedProcesses > l->NumberOfProcessIdsInList &&
        l->NumberOfAssignedProcesses < 65536 && cap < l->NumberOfAssignedProcesses + 16u) {
      size_t want = l->NumberOfAssignedProcesses + 16u;
      void *raw =
          realloc(m->idlist, sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + want * sizeof(ULONG_PTR));
      DWORD *ids;
      if (raw == NULL)
        return NULL;
      m->idlist = raw;
      ids = realloc(m->pids, want * sizeof(DWORD));
      if (ids == NULL)
        return NULL;
      m->pids = ids;
      m->idlist_cap = want;
      continue;
    }
    for (i = 0; i < l->NumberOfProcessIdsInList && i < cap; i++)
      m->pids[i] = (DWORD)l->ProcessIdList[i];
    *n = i;
    return m->pids;
  }
}

int jw__mon_has_ended(const tracked_t *t) {
  return jw__proc_ended(t->h);
}

/* A running entry is that process; an ended one is while the monitor holds
 * its handle (its pid cannot be reused), or, once the handle was let go (or
 * when it was never opened), when the pid's holder was created at the same
 * time (jw__mon_same_process: a holder that cannot be asked is taken to
 * be it). */
int jw__mon_known(jw_monitor_t *m, DWORD pid, tracked_t **out) {
  pid_slot_t *s = slot_find(m, pid);
  tracked_t *t = s != NULL ? s->head : NULL;
  if (out != NULL)
    *out = t;
  if (t != NULL && (!t->exited || t->h != NULL))
    return 1;
  if (t != NULL)
    return jw__mon_same_process(t->pid, t->create_time);
  /* Its entries were freed: the newest of them was created then. */
  return s != NULL && s->gone && jw__mon_same_process(pid, s->gone_ct);
}

/* EXIT_PROCESS / ABNORMAL_EXIT_PROCESS. The kernel posts it while the
 * process is being torn down, so its handle is signaled at once or within
 * moments: a tracked process whose handle stays unsignaled is still
 * running, and the message is a forgery. An unknown pid goes through
 * admission first (which asks the kernel whether it is a member). */
void jw__mon_on_exit_message(jw_monitor_t *m, DWORD msg, DWORD pid) {
  tracked_t *t = jw__mon_find_proc(m, pid);
  char why[200];
  int refused = 0;
  if (t != NULL && t->exited)
    return; /* already reported (its grace ran out first, or a repeat) */
  if (t == NULL) {
    t = jw__mon_admit(m, pid, ADMIT_MESSAGE, &refused, why, sizeof(why));
    if (t == NULL) {
      if (refused)
        jw__mon_tampering(m, "job", 0, msg, pid, "not_a_member", why);
      return;
    }
  }
  /* Its start first (its facts are still being read). */
  if (jw__mon_setup_defer(m, t, JW_DEFER_JOB, msg, pid))
    return;
  /* A process the monitor could not open (t->h NULL) cannot be checked
   * this way; it is taken at the message's word (admission confirmed its
   * membership). */
  if (t->h != NULL) {
    DWORD confirm_ms = jw__mon_tamper_detailed(m) ? EXIT_CONFIRM_MS : 0u;
    jw__proc_state_t st = jw__proc_state(t->h, confirm_ms);
    if (st != JW_PROC_ENDED) {
      /* (Unsettled: under Wine, a process whose first thread has not run
       * yet.) */
      if (st == JW_PROC_UNSETTLED)
        snprintf(why, sizeof(why),
                 "process %lu is still running: its handle is signaled but it has no exit time "
                 "(it has no running thread yet)",
                 (unsigned long)pid);
      else
        snprintf(why, sizeof(why),
                 "process %lu is still running: its handle was not signaled within %lu ms of the "
                 "exit message",
                 (unsigned long)pid, (unsigned long)confirm_ms);
      jw__mon_tampering(m, "job", 0, msg, pid, "exit_not_signaled", why);
      return;
    }
  }
  jw__mon_mark_exited(m, t);
  jw__mon_report_exit(m, t, msg, "port");
}

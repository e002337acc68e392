/* The exit watcher: learns that a member's process has ended when its
 * handle is signaled, and says so with a JW_CTRL_EXITED packet (the pid in
 * the byte count) on the job's port, so that the monitor never polls its
 * members on a clock.
 *
 * Why not RegisterWaitForSingleObject: its waits run on the system's
 * thread pool, threads jobwarden does not start and cannot give the
 * protected DACL every thread of jobwarden carries (a member could open
 * one and suspend it: wine.real.selfdefense enumerates them). So the waits
 * run on jobwarden's own threads (jw__thread_begin), up to WATCH_SLOTS
 * processes each plus the group's wake-up event.
 *
 * Ownership: a group owns a duplicate of each handle it waits on, so the
 * monitor may close its own at any time; only the group's thread removes
 * an entry (when it signaled), so no handle in a wait is ever closed under
 * it. A process that left the job (still running) keeps its slot until it
 * ends or the watcher stops. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "win/exitwatch.h"

/* WaitForMultipleObjects takes MAXIMUM_WAIT_OBJECTS handles: the wake-up
 * event and this many processes. */
#define WATCH_SLOTS (MAXIMUM_WAIT_OBJECTS - 1)

/* A process whose handle signaled before it ended (Wine: no running
 * thread yet, or its last one just left) is looked at again after
 * SETTLE_FIRST_MS, then twice as long each time, SETTLE_MAX_MS at most,
 * until it ended (posted) or runs (back in the wait). Measured under
 * Wine: such a moment lasts well under a millisecond to a few. */
#define SETTLE_FIRST_MS 1u
#define SETTLE_MAX_MS   64u

typedef struct group_s {
  jw__exitwatch_t *w;
  HANDLE thread, wake;
  jw__mutex_t lock; /* guards n, h, pid, settle, quit */
  DWORD n;
  HANDLE h[WATCH_SLOTS];
  DWORD pid[WATCH_SLOTS];
  DWORD settle[WATCH_SLOTS]; /* 0: in the wait; else the next look's delay (ms) */
  int quit;
  struct group_s *next;
} group_t;

struct jw__exitwatch_s {
  HANDLE port;
  ULONG_PTR key;
  group_t *groups;
  volatile LONG posted, failed, unsettled, rewaited;
};

/* Only the group's thread removes an entry or changes its settle, so an
 * entry is found again by its handle (unique while it is in the set). */
static DWORD slot_of(const group_t *g, HANDLE h) {
  DWORD j;
  for (j = 0; j < g->n; j++)
    if (g->h[j] == h)
      return j;
  return WATCH_SLOTS;
}

/* h's process ended: its packet, and its slot freed. */
static void post_end(group_t *g, HANDLE h, DWORD pid) {
  DWORD j;
  if (!PostQueuedCompletionStatus(g->w->port, pid, g->w->key,
                                  (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_EXITED))
    InterlockedIncrement(&g->w->failed);
  else
    InterlockedIncrement(&g->w->posted);
  jw__mutex_lock(&g->lock);
  if ((j = slot_of(g, h)) < WATCH_SLOTS) {
    g->n--;
    g->h[j] = g->h[g->n];
    g->pid[j] = g->pid[g->n];
    g->settle[j] = g->settle[g->n];
  }
  jw__mutex_unlock(&g->lock);
  CloseHandle(h);
}

static void set_settle(group_t *g, HANDLE h, DWORD ms) {
  DWORD j;
  jw__mutex_lock(&g->lock);
  if ((j = slot_of(g, h)) < WATCH_SLOTS)
    g->settle[j] = ms;
  jw__mutex_unlock(&g->lock);
}

/* Another look at every process that signaled without having ended. */
static void settle_all(group_t *g) {
  HANDLE hs[WATCH_SLOTS];
  DWORD pids[WATCH_SLOTS], delay[WATCH_SLOTS], n = 0, i;
  jw__mutex_lock(&g->lock);
  for (i = 0; i < g->n; i++)
    if (g->settle[i] != 0) {
      hs[n] = g->h[i];
      pids[n] = g->pid[i];
      delay[n++] = g->settle[i];
    }
  jw__mutex_unlock(&g->lock);
  for (i = 0; i < n; i++) {
    jw__proc_state_t st = jw__proc_state(hs[i], 0);
    if (st == JW_PROC_ENDED) {
      post_end(g, hs[i], pids[i]);
    } else if (st == JW_PROC_RUNNING) {
      set_settle(g, hs[i], 0); /* back in the wait */
      InterlockedIncrement(&g->w->rewaited);
    } else {
      set_settle(g, hs[i], delay[i] * 2 < SETTLE_MAX_MS ? delay[i] * 2 : SETTLE_MAX_MS);
    }
  }
}

static unsigned __stdcall group_main(void *arg) {
  group_t *g = arg;
  HANDLE hs[MAXIMUM_WAIT_OBJECTS];
  DWORD pids[WATCH_SLOTS];
  for (;;) {
    DWORD n = 0, r, i, timeout = INFINITE;
    jw__mutex_lock(&g->lock);
    if (g->quit) {
      jw__mutex_unlock(&g->lock);
      break;
    }
    hs[0] = g->wake;
    for (i = 0; i < g->n; i++) {
      if (g->settle[i] == 0) {
        hs[1 + n] = g->h[i];
        pids[n++] = g->pid[i];
      } else if (g->settle[i] < timeout) {
        timeout = g->settle[i];
      }
    }
    jw__mutex_unlock(&g->lock);
    r = WaitForMultipleObjects(n + 1, hs, FALSE, timeout);
    if (r == WAIT_TIMEOUT) {
      settle_all(g);
      continue;
    }
    if (r == WAIT_OBJECT_0)
      continue; /* the set changed, or quit */
    if (r <= WAIT_OBJECT_0 || r > WAIT_OBJECT_0 + n) {
      /* Never seen; the monitor still learns exits from their messages
       * and at the job's end. Not a busy loop: the thread ends. */
      InterlockedIncrement(&g->w->failed);
      break;
    }
    i = r - WAIT_OBJECT_0 - 1;
    if (jw__proc_ended(hs[i + 1])) {
      post_end(g, hs[i + 1], pids[i]);
    } else {
      /* Signaled, not ended: out of the wait (it would return at once)
       * until a look says which. */
      InterlockedIncrement(&g->w->unsettled);
      set_settle(g, hs[i + 1], SETTLE_FIRST_MS);
    }
  }
  return 0;
}

int jw__exitwatch_start(HANDLE port, ULONG_PTR key, jw__exitwatch_t **out) {
  jw__exitwatch_t *w = calloc(1, sizeof(*w));
  *out = NULL;
  if (w == NULL)
    return JW_ENOMEM;
  w->port = port;
  w->key = key;
  *out = w;
  return 0;
}

static group_t *group_new(jw__exitwatch_t *w) {
  group_t *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return NULL;
  g->w = w;
  g->wake = CreateEventW(NULL, FALSE, FALSE, NULL);
  if (g->wake == NULL) {
    free(g);
    return NULL;
  }
  jw__mutex_init(&g->lock);
  g->thread = jw__thread_begin(group_main, g, 64 * 1024, 0);
  if (g->thread == NULL) {
    jw__mutex_destroy(&g->lock);
    CloseHandle(g->wake);
    free(g);
    return NULL;
  }
  g->next = w->groups;
  w->groups = g;
  return g;
}

int jw__exitwatch_add(jw__exitwatch_t *w, HANDLE process, DWORD pid) {
  group_t *g;
  HANDLE dup;
  if (w == NULL)
    return JW_EINVAL;
  /* The query right: whether a signaled process has ended is read from
   * its exit time (jw__proc_ended). */
  if (!DuplicateHandle(GetCurrentProcess(), process, GetCurrentProcess(), &dup,
                       SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, 0) &&
      !DuplicateHandle(GetCurrentProcess(), process, GetCurrentProcess(), &dup, SYNCHRONIZE, FALSE,
                       0))
    return JW_ESYS;
  for (g = w->groups; g != NULL; g = g->next) {
    jw__mutex_lock(&g->lock);
    if (g->n < WATCH_SLOTS && !g->quit)
      break; /* still locked */
    jw__mutex_unlock(&g->lock);
  }
  if (g == NULL) {
    g = group_new(w);
    if (g == NULL) {
      CloseHandle(dup);
      return JW_ESYS;
    }
    jw__mutex_lock(&g->lock);
  }
  g->h[g->n] = dup;
  g->pid[g->n] = pid;
  g->settle[g->n] = 0;
  g->n++;
  jw__mutex_unlock(&g->lock);
  SetEvent(g->wake);
  return 0;
}

uint32_t jw__exitwatch_posted(jw__exitwatch_t *w) {
  return w == NULL ? 0 : (uint32_t)InterlockedCompareExchange(&w->posted, 0, 0);
}

uint32_t jw__exitwatch_unsettled(jw__exitwatch_t *w) {
  return w == NULL ? 0 : (uint32_t)InterlockedCompareExchange(&w->unsettled, 0, 0);
}

uint32_t jw__exitwatch_rewaited(jw__exitwatch_t *w) {
  return w == NULL ? 0 : (uint32_t)InterlockedCompareExchange(&w->rewaited, 0, 0);
}

uint32_t jw__exitwatch_failed(jw__exitwatch_t *w) {
  return w == NULL ? 0 : (uint32_t)InterlockedCompareExchange(&w->failed, 0, 0);
}

void jw__exitwatch_stop(jw__exitwatch_t *w) {
  group_t *g, *next;
  if (w == NULL)
    return;
  for (g = w->groups; g != NULL; g = g->next) {
    jw__mutex_lock(&g->lock);
    g->quit = 1;
    jw__mutex_unlock(&g->lock);
    SetEvent(g->wake);
  }
  for (g = w->groups; g != NULL; g = next) {
    DWORD i;
    next = g->next;
    WaitForSingleObject(g->thread, INFINITE);
    CloseHandle(g->thread);
    for (i = 0; i < g->n; i++)
      CloseHandle(g->h[i]);
    CloseHandle(g->wake);
    jw__mutex_destroy(&g->lock);
    free(g);
  }
  free(w);
}

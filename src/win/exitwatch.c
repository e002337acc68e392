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

typedef struct group_s {
  jw__exitwatch_t *w;
  HANDLE thread, wake;
  jw__mutex_t lock; /* guards n, h, pid, quit */
  DWORD n;
  HANDLE h[WATCH_SLOTS];
  DWORD pid[WATCH_SLOTS];
  int quit;
  struct group_s *next;
} group_t;

struct jw__exitwatch_s {
  HANDLE port;
  ULONG_PTR key;
  group_t *groups;
  volatile LONG posted, failed;
};

static unsigned __stdcall group_main(void *arg) {
  group_t *g = arg;
  HANDLE hs[MAXIMUM_WAIT_OBJECTS];
  DWORD pids[WATCH_SLOTS];
  for (;;) {
    DWORD n, r, i;
    jw__mutex_lock(&g->lock);
    if (g->quit) {
      jw__mutex_unlock(&g->lock);
      break;
    }
    n = g->n;
    hs[0] = g->wake;
    memcpy(hs + 1, g->h, n * sizeof(HANDLE));
    memcpy(pids, g->pid, n * sizeof(DWORD));
    jw__mutex_unlock(&g->lock);
    r = WaitForMultipleObjects(n + 1, hs, FALSE, INFINITE);
    if (r == WAIT_OBJECT_0)
      continue; /* the set changed, or quit */
    if (r <= WAIT_OBJECT_0 || r > WAIT_OBJECT_0 + n) {
      /* Never seen; the monitor still learns exits from their messages
       * and at the job's end. Not a busy loop: the thread ends. */
      InterlockedIncrement(&g->w->failed);
      break;
    }
    i = r - WAIT_OBJECT_0 - 1;
    if (!PostQueuedCompletionStatus(g->w->port, pids[i], g->w->key,
                                    (LPOVERLAPPED)(ULONG_PTR)JW_CTRL_EXITED))
      InterlockedIncrement(&g->w->failed);
    else
      InterlockedIncrement(&g->w->posted);
    jw__mutex_lock(&g->lock);
    {
      DWORD j;
      for (j = 0; j < g->n; j++)
        if (g->h[j] == hs[i + 1]) {
          g->n--;
          g->h[j] = g->h[g->n];
          g->pid[j] = g->pid[g->n];
          break;
        }
    }
    jw__mutex_unlock(&g->lock);
    CloseHandle(hs[i + 1]);
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
  if (!DuplicateHandle(GetCurrentProcess(), process, GetCurrentProcess(), &dup, SYNCHRONIZE, FALSE,
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
  g->n++;
  jw__mutex_unlock(&g->lock);
  SetEvent(g->wake);
  return 0;
}

uint32_t jw__exitwatch_posted(jw__exitwatch_t *w) {
  return w == NULL ? 0 : (uint32_t)InterlockedCompareExchange(&w->posted, 0, 0);
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

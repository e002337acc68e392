/* The exit watcher (src/win/exitwatch.c): a JW_CTRL_EXITED packet on the
 * job's port when a watched process ends. Start/stop: the monitor's owner
 * side; add: the monitor thread. */
#ifndef JW_WIN_EXITWATCH_H
#define JW_WIN_EXITWATCH_H

#include "win/win.h"

typedef struct jw__exitwatch_s jw__exitwatch_t;

/* Posts (pid as the byte count, JW_CTRL_EXITED as the value) under key to
 * port. Returns 0 and *out, or JW_ENOMEM. */
int jw__exitwatch_start(HANDLE port, ULONG_PTR key, jw__exitwatch_t **out);
/* Watches process (the handle is duplicated: the caller keeps its own).
 * 0, JW_ESYS (no duplicate, no thread) or JW_EINVAL (no watcher). */
int jw__exitwatch_add(jw__exitwatch_t *w, HANDLE process, DWORD pid);
/* Packets posted, and waits or posts that failed, so far. Any thread. */
uint32_t jw__exitwatch_posted(jw__exitwatch_t *w);
uint32_t jw__exitwatch_failed(jw__exitwatch_t *w);
/* Signals of a process that had not ended (under Wine: no running thread
 * yet, or its last one just left): such a process is looked at again
 * until it ended or runs; it gets no packet before its end. */
uint32_t jw__exitwatch_unsettled(jw__exitwatch_t *w);
/* Of those, the ones a later look found running (back in the wait). */
uint32_t jw__exitwatch_rewaited(jw__exitwatch_t *w);
/* Ends every thread and closes every handle. No packet is posted after. */
void jw__exitwatch_stop(jw__exitwatch_t *w);

#endif

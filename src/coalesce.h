/* Alert hygiene: repeated identical violations (same rule, same subject —
 * a process or an image) within a window become one line. The first hit
 * is always written at once and in full; the repeats inside its window
 * are counted, and when the window closes (or the job ends) one summary
 * violation says how many there were and when the first and last were
 * (`coalesced`). Enforcement is never coalesced: every hit is still acted
 * on; only the lines are. Portable; one owner thread (the monitor). */
#ifndef JW_COALESCE_H
#define JW_COALESCE_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

#define JW_COALESCE_SLOTS 64

typedef struct jw__coalesce_slot_s {
  int used;
  const char *rule; /* static, as in the event */
  char subject[200];
  uint64_t first_us, last_us, close_us; /* first hit (the written one), last repeat, window end */
  uint64_t first_seq;                   /* seq of the written first hit */
  uint64_t count;                       /* repeats held back in this window */
  jw_event_t proto; /* the last repeat, without process; its extra (enforcement, error) owned */
  uint32_t pid;     /* its process, when it has one */
  int has_pid;
} jw__coalesce_slot_t;

typedef struct jw__coalesce_s {
  uint64_t window_us; /* 0: off, every hit is written */
  jw__coalesce_slot_t slot[JW_COALESCE_SLOTS];
  uint64_t held; /* repeats held back so far, in all windows */
} jw__coalesce_t;

void jw__coalesce_init(jw__coalesce_t *c, uint32_t window_ms);

/* The subject a hit of ev is the same as another by: the image for the
 * rules about what a process runs or how it ends (a loop starting the
 * same denied binary), else the process (entity id), else the job. Writes
 * into buf; never fails. */
void jw__coalesce_subject(const jw_event_t *ev, char *buf, size_t size);

/* Whether ev (a violation at now_us) is a repeat inside an open window of
 * its (rule, subject): then it is counted, its extra is taken over
 * (ev->extra becomes NULL) and 1 is returned, and the caller does not
 * write it. Otherwise 0: the caller writes it, then calls
 * jw__coalesce_opened with its seq. A full table never holds a hit back. */
int jw__coalesce_hold(jw__coalesce_t *c, jw_event_t *ev, uint64_t now_us);
void jw__coalesce_opened(jw__coalesce_t *c, const jw_event_t *ev, uint64_t now_us);

/* The earliest moment a window closes, 0 when none is open. */
uint64_t jw__coalesce_next_close(const jw__coalesce_t *c);

/* Takes one closed window with repeats (all windows when all != 0, at the
 * job's end) and fills *out with its summary violation (extra: a new
 * "coalesced" object, stolen by jw_emit). Returns 1 when *out was filled,
 * 0 when nothing is due. Windows that closed without repeats are freed. */
int jw__coalesce_take(jw__coalesce_t *c, uint64_t now_us, int all, jw_event_t *out);

#endif

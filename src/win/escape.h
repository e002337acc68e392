/* Escape detection primitives (src/win/escape.c). A job member that starts
 * a child with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming a process
 * outside the job (jobwarden itself, or any process it can open with
 * PROCESS_CREATE_PROCESS) gives that child the job of the *named* parent:
 * none. The kernel posts no job message for it. What is left to see it by
 * is its parent pid: a process whose parent is jobwarden (other than the
 * root) or a member of the job, created while that parent existed, but
 * which is not in the job, has escaped.
 *
 * These functions know nothing of the monitor: src/win/monitor_escape.c
 * applies them to the monitor's process table, src/win/control.c walks a
 * control client's ancestry with the same rules. Any thread may call them. */
#ifndef JW_WIN_ESCAPE_H
#define JW_WIN_ESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include <windows.h>

/* One process of the system: its pid and its parent's pid. */
typedef struct jw__proc_pair_s {
  DWORD pid;
  DWORD ppid;
} jw__proc_pair_t;

/* Every process of the system, reusable from one scan to the next. */
typedef struct jw__escape_snap_s {
  jw__proc_pair_t *procs; /* owned */
  size_t n, cap;
  void *raw; /* owned: the system's answer, kept for the next list */
  unsigned long raw_cap;
} jw__escape_snap_t;

/* Fills s with every process of the system (NtQuerySystemInformation
 * class 5, else CreateToolhelp32Snapshot), growing its buffers as needed.
 * Returns 0, or the Win32 error (s->n is 0). One thread per s. */
DWORD jw__escape_snapshot(jw__escape_snap_t *s);
/* Benchmarks: list with Toolhelp32 only (1) or as usual (0). */
void jw__escape_toolhelp_only(int on);
/* Frees s's buffers. */
void jw__escape_snap_free(jw__escape_snap_t *s);

/* Whether a process created at child_ct (FILETIME, 100 ns) can be a child
 * of the process created at parent_ct that ended at parent_end (0: still
 * running): it was created while that parent existed. A pid is reused, so
 * a parent pid alone names nobody; an unknown creation time (0) names
 * nobody either. */
int jw__escape_born_of(uint64_t parent_ct, uint64_t parent_end, uint64_t child_ct);

/* When a scan that came due at `due` may run (milliseconds of one clock,
 * GetTickCount64's in the monitor), given the last job message taken at
 * `message`: once the port has said nothing for JW__SCAN_QUIET_MS, but no
 * later than JW__SCAN_QUIET_MAX_MS after `due`. Returns 0 when it runs at
 * `now` (*at_bound: the port was not quiet, the bound made it run), else
 * the milliseconds until it may. A program that keeps the port busy delays
 * a scan by JW__SCAN_QUIET_MAX_MS at most; the wait lets the events of the
 * messages just taken reach the sinks before the scan, which under Wine
 * holds the wineserver (docs/performance.md, "The escape scan in the
 * pipe's tail"). */
#define JW__SCAN_QUIET_MS     3
#define JW__SCAN_QUIET_MAX_MS 50
uint64_t jw__escape_scan_wait(uint64_t message, uint64_t due, uint64_t now, int *at_bound);

/* The creation time of a process (FILETIME as 100 ns units), 0 when it
 * cannot be read. Wine reports a bogus value for a process that is still
 * starting; it is read again a few times, 10 ms apart, until plausible. */
uint64_t jw__escape_create_time(HANDLE process);

/* What jw__escape_examine found. */
typedef enum {
  JW__ESC_ERROR = -1,    /* it could not be examined (*err says why) */
  JW__ESC_INSIDE = 0,    /* it is in the job */
  JW__ESC_OUTSIDE = 1,   /* outside the job, created while the parent lived */
  JW__ESC_NOT_CHILD = 2, /* outside the job, but created before or after
                            the parent's life: a reused pid, not its child */
  JW__ESC_GONE = 3       /* no such process any more */
} jw__escape_verdict_t;

/* Opens pid, asks whether it is in `job` (IsProcessInJob) and, if it is
 * not, whether it was created in the parent's life (jw__escape_born_of).
 * On JW__ESC_OUTSIDE the process handle is the caller's (*h: SYNCHRONIZE,
 * QUERY_INFORMATION, and TERMINATE / VM_READ where granted) and its
 * creation time is in *ct; otherwise *h is NULL. */
jw__escape_verdict_t jw__escape_examine(HANDLE job, DWORD pid, uint64_t parent_ct,
                                        uint64_t parent_end, HANDLE *h, uint64_t *ct, DWORD *err);

/* Whether `process`, a process outside `job`, escaped it: one of its
 * ancestors, reached through processes outside the job, is jobwarden
 * itself (jw__escape_self_pid) or a member of the job. Each parent must
 * have been created no later than its child, or the pid was reused and the
 * chain ends there. A child of jobwarden counts only if it was created at
 * or after `since` (FILETIME: the caller's start, before the root's):
 * nothing of the run existed before the root, and jobwarden's own console
 * host (conhost.exe, whose parent is jobwarden on Windows) is older. An
 * ancestor that has exited cannot be examined: the chain ends there too
 * (the monitor's scan, which remembers the members, still reports the
 * escape itself). `process` needs PROCESS_QUERY_(LIMITED_)INFORMATION.
 * Returns "jobwarden" or "member" and that ancestor's pid in *via, or NULL.
 * The one rule of the control channel (src/win/control.c) and the pipe
 * readers' gate (src/win/gate.c); any thread. */
const char *jw__escape_ancestry(HANDLE job, HANDLE process, uint64_t since, DWORD *via);

/* The pid that stands for jobwarden: processes whose parent it is (other
 * than the run's root) are escapes. This process by default. Tests that
 * run jobwarden inside their own process, and start processes of their
 * own outside the job meanwhile, name another pid (0: none). */
DWORD jw__escape_self_pid(void);
void jw__escape_self_hook(DWORD pid);

#endif

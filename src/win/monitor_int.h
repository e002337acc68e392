/* The monitor's own state, shared by its source files: src/win/monitor.c
 * (the port, process tracking, rules, reconciliation, limit hits, the owner
 * side) and src/win/monitor_control.c (control requests). Everything here
 * belongs to the monitor thread unless a field says otherwise. */
#ifndef JW_WIN_MONITOR_INT_H
#define JW_WIN_MONITOR_INT_H

#include <jansson.h>

#include "control.h"
#include "win/win.h"

typedef struct tracked_s {
  DWORD pid;
  HANDLE h;             /* owner: the monitor; NULL when it could not be opened */
  uint64_t create_time; /* 0 = unknown */
  char *image;          /* owned, UTF-8; NULL = unknown */
  size_t image_len;     /* bytes of image (U+0000 kept); 0 = strlen(image) */
  int image_truncated;  /* the path was cut at JW_HOSTILE_MAX_UNITS */
  int has_parent;
  DWORD ppid;
  int is_root;
  int exited;
  int has_exit_code;
  uint32_t exit_code;
  DWORD open_error;      /* OpenProcess's error while h is NULL */
  DWORD image_error;     /* the image query's last error while image is NULL */
  const char *killed_by; /* static: the monitor rule that terminated it, or NULL */
  /* Enrichment. */
  const char *start_source; /* "jobwarden" (root), "port", "reconciled" */
  long parent_idx;          /* index in procs of its parent inside the job, -1 = none */
  uint64_t parent_create_time;
  char *cmdline; /* owned; counted UTF-8 */
  size_t cmdline_len;
  int cmdline_truncated;
  char *user_sid;          /* owned */
  const char *user_name;   /* borrowed from the monitor's SID cache; NULL = unresolved */
  const char *integrity;   /* static */
  uint64_t peak_ws;        /* largest PeakWorkingSetSize read while it ran */
  ULONGLONG signaled_tick; /* when a poll first found its handle signaled (no exit message yet) */
  int exit_read;           /* xf holds what was read at its exit */
  int released;            /* h was closed after its exit was reported */
  jw__exit_facts_t xf;
  char cmdline_why[200];
  char user_why[96];
  DWORD kill_requester; /* killed_by "member_control": the requesting client's pid */
} tracked_t;

/* A job message the port never delivered, found by reconciliation. */
typedef struct lost_s {
  const char *message; /* "JOB_OBJECT_MSG_EXIT_PROCESS", ... */
  DWORD pid;
  uint64_t create_time;
  const char *detected_by; /* "process_handle", "process_id_list", "accounting" */
  uint64_t count;          /* accounting only: how many */
} lost_t;

#define LOST_MAX       64  /* entries of one gap record */
#define PENDING_MAX    256 /* pids seen in the job's list and not announced, per poll */
#define SID_CACHE      8
#define POLL_MS        200  /* the monitor's look at process handles and the job's list */
#define EXIT_GRACE_MS  400  /* a signaled handle waits this long for its EXIT message */
#define TREE_MAX       1024 /* processes listed in the job-end summary */
#define TREE_IMAGE_MAX 256  /* bytes of each one's executable there */

/* The control slot: one request of the control channel on its way to the
 * monitor thread and back (jw_monitor_control). */
typedef enum {
  SLOT_IDLE = 0, /* nothing pending */
  SLOT_POSTED,   /* the packet is on the port */
  SLOT_TAKEN,    /* the monitor is answering */
  SLOT_ANSWERED, /* the reply waits for the control thread */
  SLOT_ABANDONED /* the control thread gave up while the monitor answered */
} slot_state_t;

struct jw_monitor_s {
  jw_job_t *job;      /* borrowed */
  jw_emitter_t *em;   /* borrowed */
  HANDLE thread;      /* owner: the monitor */
  HANDLE done;        /* owner: the monitor; set when the job is empty */
  int thread_running; /* resumed (main thread only) */
  tracked_t *procs;   /* monitor thread only once it runs */
  size_t n_procs, cap_procs;
  DWORD root_pid;
  volatile LONG terminating; /* jobwarden is killing the job */
  const char *volatile terminate_reason;
  jw_monitor_stats_t stats;
  /* The run's timeout: GetTickCount64 values set by jw_monitor_set_root
   * before the thread runs; deadline 0 = none, or already handled. */
  ULONGLONG start_tick, deadline_tick;
  /* Set by the monitor thread before a rule's action ends the root, read by
   * the owner once the root has exited (jw_monitor_rule_kill). */
  const char *volatile rule_kill;
  volatile LONG rule_kill_job;
  char kill_reason[160]; /* terminate_reason of a rule's kill_job */
  /* Enrichment and reconciliation (monitor thread). */
  jw_process_ref_t anc[JW_ANCESTRY_MAX]; /* scratch: the ancestry of the event being built */
  struct {
    void *sid;
    char *name;
  } sids[SID_CACHE];
  size_t n_sids;
  uint64_t own_create_time; /* jobwarden's own: the root's parent entity id */
  ULONGLONG last_poll;
  DWORD pending[PENDING_MAX]; /* in the job's list, not announced, at the last poll */
  size_t n_pending;
  lost_t lost[LOST_MAX]; /* of the gap record being gathered */
  size_t n_lost;
  uint64_t lost_total;
  void *idlist; /* answer buffer of JobObjectBasicProcessIdList */
  DWORD *pids;  /* its ids */
  size_t idlist_cap;
  int accounting_checked;
  /* The control slot, guarded by ctl_lock. */
  jw__mutex_t ctl_lock;
  slot_state_t ctl_state;
  uint32_t ctl_gen; /* generation of the request in the slot */
  jw_control_request_t ctl_req;
  json_t *ctl_reply;      /* new reference, until taken by the control thread */
  HANDLE ctl_answered;    /* owner: the monitor; auto-reset, set with a reply */
  DWORD ctl_signal_error; /* SetEvent(ctl_answered) failed with it (never seen) */
  /* Set by the monitor thread when a control request terminated the root or
   * the job, read by the owner once the root has exited. */
  char ctl_kill_text[JW_CONTROL_SID_MAX + 96];
  volatile LONG ctl_killed;      /* 1 the root, 2 the job */
  struct jw__mon_escapes_s *esc; /* owned: src/win/monitor_escape.c */
};

/* ---- shared by the monitor's files (monitor thread only) ----------------- */

/* The newest tracked entry of pid, or NULL. */
tracked_t *jw__mon_find_proc(jw_monitor_t *m, DWORD pid);
/* The image path of t, or "(image unknown)". */
const char *jw__mon_image_or_unknown(const tracked_t *t);
/* Everything known about t, for an event emitted before the next call. */
void jw__mon_fill_process(jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p);
/* Counts and emits an event. */
void jw__mon_emit(jw_monitor_t *m, jw_event_t *ev);
/* Whether the process now holding t's pid is t's own (same creation time). */
int jw__mon_same_process(const tracked_t *t);
/* A NEW_PROCESS of pid, handled as the port's message would be. */
void jw__mon_on_new_process(jw_monitor_t *m, DWORD pid);
/* The job's process id list (the monitor's buffer, valid until the next
 * call); NULL on failure. */
const DWORD *jw__mon_job_pids(jw_monitor_t *m, size_t *n);
/* A new tracked entry for pid (not yet enriched), or NULL (out of memory). */
tracked_t *jw__mon_add_proc(jw_monitor_t *m, DWORD pid);
/* Opens t's process and reads what can be read (image, parent, times,
 * command line, user); keeps the handle. */
void jw__mon_enrich(jw_monitor_t *m, tracked_t *t);
/* Clears ev and sets the fields every monitor event has. */
void jw__mon_ev_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                     const char *enforcer, jw_severity_t sev);
/* Records the JOB_OBJECT_MSG_* the event comes from. */
void jw__mon_ev_job_message(jw_event_t *ev, DWORD msg);
/* A kernel limit message (src/win/monitor_limits.c). */
void jw__mon_on_limit(jw_monitor_t *m, DWORD msg, DWORD pid, int has_pid, const char *rule,
                      const char *action, const char *unit, uint64_t configured, jw_severity_t sev,
                      const char *what);
/* JOB_OBJECT_MSG_NOTIFICATION_LIMIT (src/win/monitor_limits.c). */
void jw__mon_on_notification(jw_monitor_t *m, DWORD pid);
/* GetProcessMemoryInfo of t (through fn when not NULL: a test hook) on the
 * monitor's handle, or, where that handle lacks PROCESS_VM_READ (older
 * systems want it), on a second handle opened by pid: it names the same
 * process while the monitor's is held. Returns 0, or -1 with the failed
 * call in *where and its error in *error (t without a handle: "OpenProcess"
 * and t->open_error). */
int jw__mon_memory_counters(const tracked_t *t, jw__process_memory_fn fn,
                            PROCESS_MEMORY_COUNTERS_EX *pmc, const char **where, DWORD *error);
/* A JW_CTRL_REQUEST packet of generation gen (src/win/monitor_control.c). */
void jw__mon_on_control_packet(jw_monitor_t *m, uint32_t gen);
/* TerminateJobObject for the monitor rule `rule`, recorded as the run's
 * end like any rule's kill_job. 0, or -1 with the Win32 error in *err. */
int jw__mon_kill_job(jw_monitor_t *m, const char *rule, DWORD *err);

/* ---- escapes (src/win/monitor_escape.c; monitor thread only) ------------- */
typedef struct jw__mon_escapes_s jw__mon_escapes_t;
/* A job message arrived (pid: its value): a scan is due (rate-limited).
 * Before the message is handled. */
void jw__mon_escape_note(jw_monitor_t *m, DWORD msg, DWORD pid);
/* Before the port wait: the scans that are due, the exits of escapes; may
 * shorten *wait to the next scan. */
void jw__mon_escape_tick(jw_monitor_t *m, DWORD *wait);
/* The job ended: a last scan, every escape still running terminated and
 * its exit reported. Before the job's own reconciliation and job_end. */
void jw__mon_escape_job_end(jw_monitor_t *m);
/* Closes and frees what the escape scan holds (jw_monitor_stop). */
void jw__mon_escape_free(jw_monitor_t *m);

#endif

/* The monitor's own state, shared by its source files. One way: the loop
 * and its dispatch (src/win/monitor.c) call the leaf files, which never
 * call back into the loop:
 *   monitor_procs.c     the process table, what is read of a process, exits
 *   monitor_admit.c     admission (every first sight of a pid) and the rules
 *   monitor_actions.c   every termination, and the record of who killed what
 *   monitor_limits.c    limit messages and their measured values
 *   monitor_control.c   control requests
 *   monitor_reconcile.c what the port did not say, and the job's end
 *   monitor_tamper.c    packets the kernel did not send (monitor_tampering)
 *   monitor_escape.c    escapes: processes outside the job whose parent is
 *                       jobwarden or a member (job_escape)
 * Everything here belongs to the monitor thread unless a field says
 * otherwise. */
#ifndef JW_WIN_MONITOR_INT_H
#define JW_WIN_MONITOR_INT_H

#include <jansson.h>

#include "coalesce.h"
#include "win/exitwatch.h"
#include "win/imageid.h"

#include "control.h"
#include "win/win.h"

/* Where a pid was first seen (jw__mon_admit). */
typedef enum {
  ADMIT_PORT,    /* its NEW_PROCESS */
  ADMIT_CONTROL, /* the job's list at a control request; its NEW_PROCESS is still queued */
  ADMIT_ID_LIST, /* the job's list at two looks in a row; the port never announced it */
  ADMIT_MESSAGE  /* an exit or limit message names it; the port never announced it */
} admit_source_t;

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
  /* Its parent inside the job (one of the parent's references), or NULL. */
  struct tracked_s *parent;
  uint64_t parent_create_time;
  char *cmdline; /* owned; counted UTF-8 */
  size_t cmdline_len;
  int cmdline_truncated;
  char *user_sid;          /* owned */
  void *sid_bin;           /* owned; the user's SID until its name is looked up, else NULL */
  const char *user_name;   /* borrowed from the monitor's SID cache; NULL = unresolved */
  const char *integrity;   /* static */
  uint64_t peak_ws;        /* largest PeakWorkingSetSize read while it ran */
  ULONGLONG signaled_tick; /* when its handle was found signaled (no exit message yet) */
  int exit_read;           /* xf holds what was read at its exit */
  int released;            /* h was closed after its exit was reported */
  jw__exit_facts_t xf;
  char cmdline_why[200];
  char user_why[96];
  char image_why[128];  /* why image is NULL */
  int waited_for;       /* JW__WAITED_*: the last fact that was not ready */
  int nul_reads;        /* reads of its command line that found a U+0000 (JW__NUL_TRIES) */
  DWORD kill_requester; /* killed_by "member_control": the requesting client's pid */
  /* Executable identity (monitor_identity.c). */
  int id_state;            /* ID_* */
  uint64_t id_cookie;      /* of its request to the identity service */
  jw__imageid_t *id;       /* owned; the result (ID_KNOWN), or why not (ID_FAILED); else NULL */
  char *kept_sha256;       /* owned; ID_DROPPED: the hash it had, or NULL */
  int image_rules_pending; /* an image list entry waits for its identity */
  /* The process table (monitor_procs.c). An entry lives on the heap at a
   * fixed address while anything refers to it: its own run (until its exit
   * is reported), each child whose parent it is, a place in the job-end
   * tree, the exit grace queue, the recent exits, a pending identity.
   * With no reference left it is freed, and what stays of it is its pid's
   * slot (the creation time of the newest holder that was freed). */
  uint32_t refs;
  int in_table;                            /* a member (0: an escape, monitor_escape.c) */
  struct tracked_s *pid_next;              /* the next older entry of the same pid */
  struct tracked_s *all_prev, *all_next;   /* every entry in memory */
  struct tracked_s *live_prev, *live_next; /* members not exited */
  struct tracked_s *grace_next;            /* exit grace queue */
  struct tracked_s *recent_next;           /* recent exits */
  struct tracked_s *idq_prev, *idq_next;   /* identities pending */
  int in_grace;                            /* in the exit grace queue */
  int retired;                             /* among the recent exits, or past them */
  int watched;                             /* the exit watcher has its handle */
  /* Setup (monitor_setup.c): admitted, its facts being read by the setup
   * worker; its start event and every packet naming it wait for them. */
  int setup_pending;
  int setup_held;           /* set up, its start waits for its parent's (held list) */
  admit_source_t admit_src; /* how it was first seen */
  uint64_t seen_no;         /* processes_seen when it was admitted (its ordinal) */
  struct tracked_s *held_next;
} tracked_t;

enum {
  ID_OFF = 0, /* not asked: no service, or the image itself is unknown */
  ID_PENDING, /* the worker is computing it: a process_update follows */
  ID_KNOWN,   /* in id */
  ID_FAILED,  /* could not be had: id->unavailable says why */
  ID_DROPPED  /* let go after its exit (RECENT_EXITS); kept_sha256 keeps the hash */
};
/* Why a field of a process long exited is absent from a later event. */
#define JW_NOT_KEPT                                                                                \
  "not kept: the process exited more than " JW_MON_XSTR(RECENT_EXITS) " process exits before "     \
                                                                      "this event"
#define JW_MON_STR(x)  #x
#define JW_MON_XSTR(x) JW_MON_STR(x)
/* How long the job's end waits for identities still being computed. */
#define JW_IDENTITY_FLUSH_MS 2000u

/* A job message the port never delivered, found by reconciliation. */
typedef struct lost_s {
  const char *message; /* "JOB_OBJECT_MSG_EXIT_PROCESS", ... */
  DWORD pid;
  uint64_t create_time;
  const char *detected_by; /* "process_handle", "process_id_list", "accounting" */
  uint64_t count;          /* accounting only: how many */
} lost_t;

#define LOST_MAX    64  /* entries of one gap record */
#define PENDING_MAX 256 /* pids seen in the job's list and not announced, per look */
#define SID_CACHE   8
/* A pid seen in the job's list and not announced is looked at again this
 * long after (its NEW_PROCESS may still have been on its way); a timer
 * only while such a pid is pending. */
#define RECHECK_MS    200
#define EXIT_GRACE_MS 400 /* a signaled handle waits this long for its EXIT message */
/* Exited members kept whole (command line, user, identity) after their
 * exit was reported, for messages that still name them; older ones keep
 * only what the tree and ancestry need, or nothing. */
#define RECENT_EXITS   256
#define TREE_MAX       1024 /* processes listed in the job-end summary */
#define TREE_IMAGE_MAX 256  /* bytes of each one's executable there */
/* Forged packets reported one by one; later ones are counted, reported in
 * one summary violation before the job's end, and get only the cheap checks. */
#define TAMPER_DETAILED 32
/* How long an EXIT_PROCESS waits for the process's handle to be signaled
 * (the kernel posts the message while the process is being torn down):
 * only for the first TAMPER_DETAILED forgeries, so a flood cannot stall the
 * monitor. */
#define EXIT_CONFIRM_MS 100

/* PROCESS_TERMINATE: a monitor rule may have to kill it; QUERY_INFORMATION
 * and VM_READ: its command line is read from its memory where the system
 * has no query for it (and IsProcessInJob wants QUERY_INFORMATION). Without
 * those two (a protected process), the limited rights still give the rest. */
#define TRACK_RIGHTS (SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_TERMINATE)
#define EXTRA_RIGHTS (PROCESS_QUERY_INFORMATION | PROCESS_VM_READ)

/* The outcome of an action on one process (or the job). */
typedef struct outcome_s {
  int job_killed;        /* TerminateJobObject succeeded (now or earlier) */
  int proc_killed;       /* TerminateProcess succeeded */
  int proc_gone;         /* nothing to kill: the process had already exited */
  const char *err_where; /* the call that failed, or NULL */
  DWORD err;             /* its Win32 error */
} outcome_t;

/* One rule a process breaks (or the timeout). */
typedef struct verdict_s {
  const char *rule;        /* "image_denied", "total_processes", ... (static) */
  jw_rule_action_t action; /* configured */
  int has_limit;
  const char *limit_name, *limit_unit;
  uint64_t configured, observed;
  const char *list;    /* "deny" / "allow" for the image rules, else NULL */
  const char *matched; /* the deny-list entry that matched (borrowed from the policy) */
  const char *why;     /* image_unknown for want of the identity: why (static), else NULL */
  /* With why: the identity field an undecided entry needs ("hash", "pe",
   * "code_signature"; static) and its unavailable reason (borrowed from the
   * process's identity), or NULL. */
  const char *gap_field, *gap_reason;
  int late; /* decided when the identity arrived, not at the process's start */
} verdict_t;

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
  /* The process table (monitor_procs.c; monitor thread only once it
   * runs): every entry in memory, the running members and their count,
   * the first TREE_MAX members (the job-end tree), pid slots (an open
   * addressing hash: pid -> newest entry), the exit grace queue, the
   * recent exits, the pending identities. */
  tracked_t *all, *live;
  uint32_t n_live;
  uint64_t n_mem, n_mem_peak; /* entries in memory, now and at most */
  tracked_t *tree[TREE_MAX];
  size_t n_tree;
  struct pid_slot_s *slots;
  size_t slot_cap, slot_used;
  tracked_t *grace_head, *grace_tail;
  tracked_t *recent_head, *recent_tail;
  size_t n_recent;
  tracked_t *idq;
  uint32_t n_grace;
  jw__exitwatch_t *xw; /* owned; NULL when it could not start (exits then come from messages) */
  DWORD root_pid;
  volatile LONG terminating; /* jobwarden is killing the job */
  const char *volatile terminate_reason;
  jw_monitor_stats_t stats;
  jw__coalesce_t coalesce; /* repeated violations (monitor_procs.c, jw__mon_emit) */
  /* Executable identity (monitor_identity.c). id_lock guards id_head,
   * id_tail and id_posted, which the service's worker writes. */
  jw__imageid_svc_t *idsvc; /* owned; NULL when it could not start (id_off_why) */
  char id_off_why[96];
  jw__mutex_t id_lock;
  struct id_result_s *id_head, *id_tail;
  LONG id_posted;       /* wake-up packets the worker posted */
  uint64_t id_received; /* JW_CTRL_IDENTITY packets the monitor took */
  uint64_t id_forged;   /* of them, reported as not posted by the worker */
  uint64_t id_serial;
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
  uint64_t own_create_time;   /* jobwarden's own: the root's parent entity id */
  DWORD pending[PENDING_MAX]; /* in the job's list, not announced, at the last look */
  size_t n_pending;
  ULONGLONG recheck_tick; /* when the pending pids are looked at again; 0 = none */
  DWORD looked_total;     /* the accounting's TotalProcesses at the last look at the list */
  /* The job's accounting as a limit message of this wake-up read it
   * (monitor_limits.c): the batch's other limit messages and
   * jw__mon_check_members after the batch use it. Cleared at every
   * wake-up and before the deferred packets are replayed. */
  JOBOBJECT_BASIC_ACCOUNTING_INFORMATION acc_seen;
  int acc_seen_valid;
  uint32_t exit_posts;   /* JW_CTRL_EXITED packets for processes already reported */
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
  volatile LONG ctl_killed; /* 1 the root, 2 the job */
  /* Set by the owner (jw_monitor_stop) before it posts the quit packet: a
   * quit packet is obeyed only then. */
  volatile LONG stop_requested;
  volatile LONG wakeups;      /* returns from the port's wait (jw_monitor_wakeups) */
  volatile LONG exit_taken;   /* JW_CTRL_EXITED packets taken (jw_monitor_exit_packets) */
  uint32_t quits_posted;      /* by jw_monitor_stop (the owner's thread) */
  void (*before_end)(void *); /* jw_monitor_before_end */
  void *before_end_ctx;
  /* Forged packets (monitor_tamper.c). */
  uint64_t tamper_total;         /* every one */
  uint64_t tamper_unreported;    /* past TAMPER_DETAILED, not yet in a summary violation */
  uint64_t tamper_after_end;     /* after the job's end: counted only (job_end is the last event) */
  struct jw__mon_escapes_s *esc; /* owned: src/win/monitor_escape.c */
  struct jw__mon_setup_s *setup; /* owned: src/win/monitor_setup.c */
};

/* ---- shared by the monitor's files (monitor thread only) ----------------- */

/* monitor_procs.c: the process table. Every operation is O(1) in the
 * number of processes the run has seen (a hash by pid, lists by state). */
/* The newest entry in memory of pid, or NULL. */
tracked_t *jw__mon_find_proc(jw_monitor_t *m, DWORD pid);
/* A new entry for pid (not yet enriched), or NULL (out of memory). Only
 * admission (and the root) add entries. */
tracked_t *jw__mon_add_proc(jw_monitor_t *m, DWORD pid);
/* References to an entry (monitor_int.h, tracked_t.refs): the last
 * jw__mon_unref frees it. */
void jw__mon_ref(tracked_t *t);
void jw__mon_unref(jw_monitor_t *m, tracked_t *t);
/* Identities pending (monitor_identity.c): the list holds a reference. */
void jw__mon_idq_add(jw_monitor_t *m, tracked_t *t);
void jw__mon_idq_remove(jw_monitor_t *m, tracked_t *t);
/* Every entry, its handle and its wait: jw_monitor_stop. */
void jw__mon_table_free(jw_monitor_t *m);
/* The exit of t's process posts JW_CTRL_EXITED (its pid in the byte
 * count) to the port (src/win/exitwatch.c): no polling. Needs t->h. */
void jw__mon_watch_exit(jw_monitor_t *m, tracked_t *t);
/* A JW_CTRL_EXITED packet. */
void jw__mon_on_exit_signal(jw_monitor_t *m, DWORD bytes, ULONG_PTR value);
/* t's handle is signaled: its EXIT message gets EXIT_GRACE_MS. */
void jw__mon_grace_add(jw_monitor_t *m, tracked_t *t);
/* Signaled members whose EXIT message did not come within EXIT_GRACE_MS:
 * their exits, reconciled; lowers *wait to the next one's due time. */
void jw__mon_exit_grace(jw_monitor_t *m, ULONGLONG now, DWORD *wait);
/* OpenProcess with TRACK_RIGHTS | EXTRA_RIGHTS, else TRACK_RIGHTS. */
HANDLE jw__mon_open_process(DWORD pid);
/* What is read of a process: opens it (unless t->h is set) and reads the
 * image, parent, creation time, command line, user SID and integrity, a
 * memory sample into t; touches nothing else (the setup worker calls it
 * on an entry of its own). A process caught at its first instant may not
 * answer yet; what then happens is the mode's:
 *   JW__READ_ASK      one try, never waits: JW__FACTS_WAIT as soon as a
 *                     fact is not ready (the monitor's first ask; the
 *                     membership check's handle stays: it pins the pid);
 *   JW__READ_RETRY    the same, but a handle the image query called
 *                     invalid is closed, to be opened again (the setup
 *                     worker's tries but its last);
 *   JW__READ_LAST     one try, never waits, never JW__FACTS_WAIT: what did
 *                     not answer is named (the worker's last try);
 *   JW__READ_PATIENT  up to OPEN_RETRIES tries, a short Sleep between
 *                     (no worker).
 * After JW__FACTS_WAIT t holds part of the facts: jw__mon_facts_clear
 * before reading again. JW__FACTS_DONE: every fact read, or known not to
 * be readable (the reason in t's *_why). */
#define JW__FACTS_DONE 0
#define JW__FACTS_WAIT 1
typedef enum { JW__READ_ASK, JW__READ_RETRY, JW__READ_LAST, JW__READ_PATIENT } jw__read_mode_t;
/* How many tries a process gets at least, and for how long at least (the
 * setup worker's last one JW__READ_LAST), at least JW__READ_RETRY_MS
 * apart. */
#define JW__READ_TRIES     12
#define JW__READ_WINDOW_MS 1000u
#define JW__READ_RETRY_MS  10
/* A command line read with a U+0000 inside it this many times is final
 * (not read, for that reason): Wine's parameter block caught at a
 * process's first instant is whole at the next try, and a U+0000 that
 * stays is the process's own (or its parent's) doing, which must not buy
 * it all of JW__READ_TRIES of the setup worker's time. */
#define JW__NUL_TRIES 3
/* The fact a JW__FACTS_WAIT waited for (tracked_t.waited_for), counted in
 * the stats' setups_waited_for[] when a setup goes to the worker. */
enum {
  JW__WAITED_NOTHING,
  JW__WAITED_OPEN,
  JW__WAITED_IMAGE,
  JW__WAITED_CREATE_TIME,
  JW__WAITED_COMMAND_LINE,
  JW__WAITED_USER_NAME /* every fact read; the user's name not cached */
};
int jw__mon_read_facts(tracked_t *t, jw__read_mode_t mode);
/* Frees and clears t's facts (not its handle); why becomes the reason for
 * its command line and user until they are read. */
void jw__mon_facts_clear(tracked_t *t, const char *why);
/* Moves src's facts (and its handle, when it has one) into dst. */
void jw__mon_facts_move(tracked_t *dst, tracked_t *src);
/* t's parent and creation time, each asked once on its handle when not
 * known yet (never waits: a setup given up keeps its identity). */
void jw__mon_read_ids(tracked_t *t);
/* Moves into dst the facts src read that dst lacks (image, command line,
 * user, parent; never the creation time: a process's entity_id does not
 * change within a record), and src's reasons for the ones neither has.
 * Returns whether a value was learned. */
int jw__mon_facts_fill_in(tracked_t *dst, tracked_t *src);
/* The name of t's user SID (t->sid_bin) from the monitor's cache: 1 when
 * done (named, or left out: the cache is full), 0 when it needs a lookup
 * (LookupAccountSidW: not on the monitor thread). */
int jw__mon_user_name_cached(jw_monitor_t *m, tracked_t *t);
/* The same, looking the name up here when it is not cached (a wait: the
 * owner's thread, or a monitor without its setup worker). */
void jw__mon_user_name(jw_monitor_t *m, tracked_t *t);
/* Keeps the name looked up for t's SID (owned; NULL = not found). */
void jw__mon_user_name_keep(jw_monitor_t *m, tracked_t *t, char *name);
/* t's parent inside the job: the newest entry of its parent pid created no
 * later than t; takes a reference. */
void jw__mon_link_parent(jw_monitor_t *m, tracked_t *t);
/* The root's facts on the owner's thread before the monitor runs (its
 * image and handle come from the spawn): command line, user and its name,
 * a memory sample, waiting where it is not ready yet. */
void jw__mon_enrich_more(jw_monitor_t *m, tracked_t *t);
/* The image path of t, or "(image unknown)". */
const char *jw__mon_image_or_unknown(const tracked_t *t);
/* Everything known about t, for an event emitted before the next call. */
void jw__mon_fill_process(jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p);
/* Whether the process now holding pid was created at create_time (when
 * it cannot be asked, or create_time is 0: taken to be). */
int jw__mon_same_process(DWORD pid, uint64_t create_time);
/* Whether t's handle is signaled (the process has ended). */
int jw__mon_has_ended(const tracked_t *t);
/* Whether pid names a process the monitor already tracks: running, or
 * ended and still that same process (also one whose entry was freed). *t
 * (when not NULL) gets its entry, NULL when it was freed. */
int jw__mon_known(jw_monitor_t *m, DWORD pid, tracked_t **t);
/* The job's process id list (the monitor's buffer, valid until the next
 * call); NULL on failure. */
const DWORD *jw__mon_job_pids(jw_monitor_t *m, size_t *n);
/* Tracked processes that have not exited. */
uint32_t jw__mon_active_count(const jw_monitor_t *m);
void jw__mon_sample_memory(tracked_t *t);
/* Marks t exited and reads what its exit leaves. */
void jw__mon_mark_exited(jw_monitor_t *m, tracked_t *t);
/* t is no longer a member although it runs (it left the job). */
void jw__mon_left_job(jw_monitor_t *m, tracked_t *t);
/* The exit events of t (abnormal_exit, process_exit); lets its handle go. */
void jw__mon_report_exit(jw_monitor_t *m, tracked_t *t, DWORD msg, const char *source);
/* EXIT_PROCESS / ABNORMAL_EXIT_PROCESS, checked against the kernel. */
void jw__mon_on_exit_message(jw_monitor_t *m, DWORD msg, DWORD pid);
/* Clears ev and sets the fields every monitor event has. */
/* A FILETIME (100 ns since 1601) as microseconds since 1970 for an
 * event's time_us; 0 (= the emit time) when it is not a plausible time. */
uint64_t jw__mon_filetime_us(uint64_t filetime);
void jw__mon_ev_init(jw_event_t *ev, jw_event_kind_t kind, const char *rule, const char *action,
                     const char *enforcer, jw_severity_t sev);
/* Records the JOB_OBJECT_MSG_* the event comes from. */
void jw__mon_ev_job_message(jw_event_t *ev, DWORD msg);
/* Counts and emits an event. */
void jw__mon_emit(jw_monitor_t *m, jw_event_t *ev);
/* GetProcessMemoryInfo of t (through fn when not NULL: a test hook) on the
 * monitor's handle, or, where that handle lacks PROCESS_VM_READ (older
 * systems want it), on a second handle opened by pid: it names the same
 * process while the monitor's is held. Returns 0, or -1 with the failed
 * call in *where and its error in *error (t without a handle: "OpenProcess"
 * and t->open_error). */
int jw__mon_memory_counters(const tracked_t *t, jw__process_memory_fn fn,
                            PROCESS_MEMORY_COUNTERS_EX *pmc, const char **where, DWORD *error);

/* monitor_admit.c: the one admission path. */
/* The process pid, first seen by `src`: returns its entry when the monitor
 * already tracks it, else checks with the kernel that it is a member of
 * the job (IsProcessInJob; the job's id list; for a process already gone,
 * the job's accounting), tracks and enriches it, runs the monitor rules
 * and emits its child_process event (and the rules' violations). Returns
 * NULL when the kernel does not confirm it (*refused set, the reason in
 * why: the caller reports monitor_tampering) or memory ran out. */
tracked_t *jw__mon_admit(jw_monitor_t *m, DWORD pid, admit_source_t src, int *refused, char *why,
                         size_t why_size);
/* The rest of admission once t's facts are read (at once, or by the
 * setup worker): parent link, identity request, exit wait, the monitor
 * rules, the start event. */
void jw__mon_admit_finish(jw_monitor_t *m, tracked_t *t);
/* NEW_PROCESS from the port: admission, or monitor_tampering. */
void jw__mon_on_new_process_message(jw_monitor_t *m, DWORD pid);
/* The configured action, `def` when the policy left it to the default. */
jw_rule_action_t jw__mon_effective(jw_rule_action_t a, jw_rule_action_t def);
/* An escape (src/win/monitor_escape.c): a process the kernel says is
 * outside the job, in an entry t that is not in the process table. Gets
 * admission's description (handle h, owned by t from here on; image,
 * parent, times, command line, user; each asked once, what is not ready
 * named unavailable) and nothing else: it does not become
 * a member (no count, no rules, no child_process event). */
void jw__mon_admit_outside(jw_monitor_t *m, tracked_t *t, DWORD pid, HANDLE h, const char *source);

/* monitor_setup.c: a new member's facts read without the monitor waiting.
 * Admission reads them at once when every read answers at the first ask
 * and the user's name is cached; otherwise (a process still being created
 * answers "not ready" for milliseconds; a user not seen before needs a
 * LookupAccountSidW) it hands them to the setup worker, a thread of
 * jobwarden's own that reads with retries on its own handle and posts a
 * JW_CTRL_SETUP packet when done. Until then t->setup_pending: its start
 * event is not written and every packet naming it is deferred (kept in
 * order, replayed by the loop after its start); the job's end waits for
 * every setup. A setup not done within SETUP_MAX_MS is completed with
 * what is known (the rest named unavailable); the worker goes on reading
 * it, and what it learns later comes in a process_update (late facts,
 * waited for at most SETUP_LATE_MS more; the job's end waits for them). */
typedef struct jw__mon_setup_s jw__mon_setup_t;
#define SETUP_MAX_MS  2000u /* a setup is given up after this long */
#define SETUP_LATE_MS 2000u /* its late facts are waited for this much longer */
#define SETUP_POLL_MS 100u  /* while setups are pending, the loop looks for results this often */
typedef enum { JW_DEFER_JOB, JW_DEFER_EXITED } jw__defer_kind_t;
typedef struct jw__deferred_s {
  jw__defer_kind_t kind;
  DWORD bytes;
  ULONG_PTR value;
} jw__deferred_t;
/* start: before the monitor runs (owner thread); stop: after it ended. */
void jw__mon_setup_start(jw_monitor_t *m);
void jw__mon_setup_stop(jw_monitor_t *m);
/* Admission of t (t->h from the membership check, or NULL): reads its
 * facts at once and finishes admission, or hands it to the worker. */
void jw__mon_setup_begin(jw_monitor_t *m, tracked_t *t);
/* A JW_CTRL_SETUP packet (counted: one the worker did not post is
 * monitor_tampering) and the results it announces. The loop replays the
 * deferred packets right after (jw__mon_setup_ready). */
void jw__mon_on_setup_packet(jw_monitor_t *m, DWORD bytes, ULONG_PTR value);
/* The results handed over so far, without a packet (one may have been
 * taken from the port by a holder of a copy); setups overdue by
 * SETUP_MAX_MS completed; lowers *wait (may be NULL) to the next look
 * while setups are pending. */
void jw__mon_setup_tick(jw_monitor_t *m, ULONGLONG now, DWORD *wait);
/* Whether a packet about t (NULL: about the job, waits for every setup)
 * must wait: 1 when it was deferred. */
int jw__mon_setup_defer(jw_monitor_t *m, const tracked_t *t, jw__defer_kind_t kind, DWORD bytes,
                        ULONG_PTR value);
/* The deferred packets whose wait is over, in arrival order, taken out
 * of the queue in one pass (*out valid until the next call): their
 * count. Handling them may defer new ones; it ends no setup. */
size_t jw__mon_setup_ready(jw_monitor_t *m, const jw__deferred_t **out);
/* Before the end: waits for the worker (bounded: SETUP_MAX_MS, or
 * SETUP_LATE_MS for late facts), takes every result, completes what is
 * left with what is known. */
void jw__mon_setup_finish(jw_monitor_t *m);

/* monitor_actions.c: every termination. */
/* TerminateJobObject for a monitor rule. */
void jw__mon_kill_job_for(jw_monitor_t *m, const char *rule, outcome_t *o);
/* TerminateProcess of t for a monitor rule (on the handle the monitor holds). */
void jw__mon_kill_process_for(jw_monitor_t *m, tracked_t *t, const char *rule, outcome_t *o);
/* A control request's kill of t (requester's pid and description `who`):
 * 0, or the Win32 error of TerminateProcess. */
DWORD jw__mon_kill_process_by_request(jw_monitor_t *m, tracked_t *t, DWORD requester,
                                      const char *who);
/* A control request's kill of the job: 0, or TerminateJobObject's error. */
DWORD jw__mon_kill_job_by_request(jw_monitor_t *m, const char *who);
/* The event `action` for configured action a and what was done, with a
 * sentence in say. */
const char *jw__mon_outcome_action(jw_rule_action_t a, const outcome_t *o, char *say, size_t n);
/* The "enforcement" / "error" objects of a rule's event. New reference. */
json_t *jw__mon_rule_extra(const verdict_t *v, const outcome_t *o, const tracked_t *t);
/* The run's timeout has passed. */
void jw__mon_on_timeout(jw_monitor_t *m);

/* monitor_identity.c: executable identity. start/stop: the service (owner
 * thread, before the monitor runs / after it ended); request: at a
 * process's admission, before its start event; fill: its fields for an
 * event; on_identity_packet: a JW_CTRL_IDENTITY wake-up; finish: before
 * job_end, every identity asked for. */
void jw__mon_identity_start(jw_monitor_t *m);
void jw__mon_identity_stop(jw_monitor_t *m);
void jw__mon_identity_request(jw_monitor_t *m, tracked_t *t);
void jw__mon_identity_fill(const jw_monitor_t *m, const tracked_t *t, jw_process_info_t *p);
void jw__mon_on_identity_packet(jw_monitor_t *m, DWORD bytes, ULONG_PTR value);
void jw__mon_identity_finish(jw_monitor_t *m);
/* monitor_admit.c: the image lists for t once its identity is known (or
 * final: will not be), acting and reporting like at its start. */
void jw__mon_image_decide(jw_monitor_t *m, tracked_t *t, int final);
/* Writes the summaries of the coalescing windows that closed by now (all
 * of them when all != 0: before job_end), and lowers *wait (when not
 * NULL) to the next window's close. */
void jw__mon_coalesce_flush(jw_monitor_t *m, int all, DWORD *wait);

/* monitor_limits.c */
/* A kernel limit message, checked against the policy (a limit it did not
 * set cannot have been hit) and, when it names a pid, admitted. */
void jw__mon_on_limit(jw_monitor_t *m, DWORD msg, DWORD pid, int has_pid, const char *rule,
                      const char *action, const char *unit, uint64_t configured, jw_severity_t sev,
                      const char *what);
/* JOB_OBJECT_MSG_NOTIFICATION_LIMIT. */
void jw__mon_on_notification(jw_monitor_t *m, DWORD pid);

/* monitor_control.c */
/* A JW_CTRL_REQUEST packet of generation gen. Returns 0, or -1 when no
 * request of that generation was ever posted (a forgery). */
int jw__mon_on_control_packet(jw_monitor_t *m, uint32_t gen);

/* monitor_reconcile.c */
/* Records a message the port did not deliver, for the next gap record. */
void jw__mon_note_lost(jw_monitor_t *m, const char *message, const tracked_t *t, DWORD pid,
                       const char *by, uint64_t count);
/* After port activity (the port drained): members the job's accounting
 * counts that the monitor does not know are looked for in the job's list;
 * one seen at two looks in a row is admitted (its NEW_PROCESS was lost).
 * Sets m->recheck_tick while pids are pending. */
void jw__mon_check_members(jw_monitor_t *m);
/* The second look at pending pids when it is due; lowers *wait. */
void jw__mon_recheck_tick(jw_monitor_t *m, ULONGLONG now, DWORD *wait);
/* ACTIVE_PROCESS_ZERO, checked against the job's accounting; the job's end. */
void jw__mon_on_active_zero(jw_monitor_t *m);
/* The end of the record when the port never said it (the monitor stops). */
void jw__mon_end_unannounced(jw_monitor_t *m);

/* monitor_tamper.c */
/* One forged packet: a critical monitor_tampering violation (the first
 * TAMPER_DETAILED of the run; later ones are counted). channel: "job",
 * "control" or "unknown" (the key is shown only for "unknown"); reason:
 * a static token (docs/events.md); detail: what the kernel said instead. */
void jw__mon_tampering(jw_monitor_t *m, const char *channel, ULONG_PTR key, DWORD bytes,
                       ULONG_PTR value, const char *reason, const char *detail);
/* Whether the next forgery still gets its own event (and the costlier
 * checks: EXIT_CONFIRM_MS). */
int jw__mon_tamper_detailed(const jw_monitor_t *m);
/* Before the job's end: one summary violation for the forgeries counted
 * but not reported one by one. */
void jw__mon_tamper_summary(jw_monitor_t *m);

/* monitor_escape.c: escapes (the loop's calls; monitor thread only). */
typedef struct jw__mon_escapes_s jw__mon_escapes_t;
/* A job message arrived (pid: its value): a scan is due (rate-limited).
 * Before the message is handled. */
void jw__mon_escape_note(jw_monitor_t *m, DWORD msg, DWORD pid);
/* Before the port wait: the scans that are due, the exits of escapes; may
 * shorten *wait to the next scan. */
void jw__mon_escape_tick(jw_monitor_t *m, DWORD *wait);
/* The job really ended (the kernel's accounting agrees): a last scan,
 * every escape still running terminated and its exit reported. Before the
 * job's own reconciliation and job_end (monitor_reconcile.c). */
void jw__mon_escape_job_end(jw_monitor_t *m);
/* The escape whose executable identity is still being computed under
 * that cookie (monitor_identity.c's results), or NULL. */
tracked_t *jw__mon_escape_pending(jw_monitor_t *m, uint64_t cookie);
/* Closes and frees what the escape scan holds (jw_monitor_stop). */
void jw__mon_escape_free(jw_monitor_t *m);

#endif

/* Windows-only internals: the job, the race-free spawn, the monitor thread
 * and the `run` driver. Only the Windows build compiles these. */
#ifndef JW_WIN_H
#define JW_WIN_H

#include <jansson.h>

#include "control.h"
#include "internal.h"

#include <psapi.h>

/* Control packets the owner posts to the job's port under the run's
 * control key (jw_job_t.key_control). */
#define JW_CTRL_QUIT 1u
/* A control-channel request is waiting in the monitor's slot; the packet's
 * byte count carries the request's generation (jw_monitor_control). */
#define JW_CTRL_REQUEST 2u
/* The identity worker has results for the monitor (monitor_identity.c). */
#define JW_CTRL_IDENTITY 3u
/* A member's process handle was signaled: its exit wait (monitor_procs.c)
 * posts this with the pid in the byte count. */
#define JW_CTRL_EXITED 4u
/* The setup worker has read a new member's facts (monitor_setup.c). */
#define JW_CTRL_SETUP 5u

#ifndef JOB_OBJECT_MSG_SILO_TERMINATED
#define JOB_OBJECT_MSG_SILO_TERMINATED 13
#endif

/* Exit code jobwarden gives the job's processes when it terminates them
 * (Ctrl-C, console close, leftovers after the root exited). */
#define JW_TERMINATE_EXIT_CODE 0xC000013Au /* STATUS_CONTROL_C_EXIT */

typedef struct jw_job_s {
  HANDLE job;  /* owner: jw_job; closing it kills members when kill-on-close is set */
  HANDLE port; /* owner: jw_job; the completion port bound to `job` */
  /* Completion keys drawn per run from the system CSPRNG (jw__random_bytes):
   * the job's messages arrive under key_job, the owner's control packets
   * under key_control; nonzero and different. Never written to the record. */
  ULONG_PTR key_job, key_control;
  jw_policy_t policy;        /* resolved */
  int kill_on_close_refused; /* KILL_ON_JOB_CLOSE was refused and dropped */
  DWORD kill_on_close_error; /* the Win32 error of that refusal */
  /* Warning thresholds (JobObjectNotificationLimitInformation) below the
   * hard job limits, from policy.notification_margin_bp; 0 = none asked. */
  uint64_t notify_job_memory;  /* bytes */
  uint64_t notify_job_time_ms; /* user-mode CPU time */
  DWORD notify_flags;          /* JOB_OBJECT_LIMIT_JOB_MEMORY / _JOB_TIME the kernel accepted */
  int notify_refused;          /* SetInformationJobObject refused them: no warnings */
  DWORD notify_error;          /* the Win32 error of that refusal */
} jw_job_t;

/* Creates a job with the resolved policy's limits and UI restrictions and
 * binds a new completion port to it under job->key_job, before any process
 * can be in it. If KILL_ON_JOB_CLOSE is refused with ERROR_INVALID_PARAMETER
 * (jobwarden already runs in a job that forbids it), retries without it and
 * sets job->kill_on_close_refused; the caller reports that in an event.
 * Returns 0 or JW_ESYS with err->where naming the failed call. Main thread. */
int jw_job_create(jw_job_t *job, const jw_policy_t *resolved, jw_error_t *err);
/* Closes the job and its port (kills the members if kill-on-close is set). */
void jw_job_close(jw_job_t *job);

/* Test hook: replaces SetInformationJobObject so tests can make the kernel
 * "refuse" an information class. NULL restores the real call. */
typedef BOOL(WINAPI *jw__set_job_info_fn)(HANDLE, JOBOBJECTINFOCLASS, LPVOID, DWORD);
void jw__job_set_info_hook(jw__set_job_info_fn fn);
/* QueryInformationJobObject as the monitor's measurements call it, and its
 * test hook (tests answer what a real Windows kernel would answer, e.g.
 * JobObjectLimitViolationInformation). NULL restores the real call. */
typedef BOOL(WINAPI *jw__query_job_info_fn)(HANDLE, JOBOBJECTINFOCLASS, LPVOID, DWORD, LPDWORD);
void jw__job_query_info_hook(jw__query_job_info_fn fn);
BOOL jw__job_query_info(HANDLE job, JOBOBJECTINFOCLASS cls, LPVOID info, DWORD len, LPDWORD ret);

typedef struct jw_child_s {
  HANDLE process; /* owner: the caller of jw_spawn (close with jw_child_close) */
  HANDLE thread;  /* owner: the caller; primary thread */
  DWORD pid;
  uint64_t create_time; /* FILETIME ticks, 0 if unknown */
  char *image;          /* UTF-8 full path of the program, owned */
  const char *method;   /* "job_list" or "suspended_assign" (or "naive" in tests) */
} jw_child_t;

typedef int (*jw_before_resume_fn)(void *ctx, jw_child_t *child);

typedef struct jw_spawn_options_s {
  const char *const *argv; /* UTF-8; argv[0] is the program */
  int argc;
  HANDLE std_in, std_out, std_err; /* NULL: jobwarden's own */
  /* Called while the child is suspended inside the job (nothing of it has
   * run yet); an error aborts the spawn and kills the child. May be NULL. */
  jw_before_resume_fn before_resume;
  void *ctx;
  /* Test-only: milliseconds to sleep between process creation and the
   * moment the child may run (jobwarden's order) or the moment it is
   * assigned (naive order). */
  unsigned test_delay_ms;
  /* Test-only: the unsafe order some tools use: CreateProcess running,
   * (sleep), then AssignProcessToJobObject. Never used by jobwarden. */
  int test_naive_order;
  /* Test-only: skip PROC_THREAD_ATTRIBUTE_JOB_LIST, use the fallback. */
  int test_force_fallback;
  /* The primary token to start the program with (CreateProcessAsUserW,
   * borrowed: the caller owns and closes it); NULL: jobwarden's own
   * (CreateProcessW). See jw__token_build. */
  HANDLE token;
} jw_spawn_options_t;

/* Spawns argv race-free into `job`: the child is created suspended and
 * already inside the job (PROC_THREAD_ATTRIBUTE_JOB_LIST; where that is
 * unavailable CREATE_SUSPENDED + AssignProcessToJobObject), inherits only its
 * three standard handles (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), is checked to
 * be in the job, then resumed. On any failure after creation the child is
 * terminated and waited for. Returns 0, JW_ENOENT (program not found),
 * JW_ENOEXEC (cannot execute), JW_EUSAGE (bad argv) or JW_ESYS with
 * err->where naming the step and err->sys_error the Win32 error. */
int jw_spawn(HANDLE job, const jw_spawn_options_t *opt, jw_child_t *child, jw_error_t *err);
void jw_child_close(jw_child_t *child);

/* Builds the primary token the program is started with for a token mode
 * (docs/policy.md, "token") from jobwarden's own: RESTRICTED through
 * CreateRestrictedToken (DISABLE_MAX_PRIVILEGE: every privilege but
 * SeChangeNotifyPrivilege removed; the powerful groups the token holds
 * made deny-only), LOW_INTEGRITY through DuplicateTokenEx at Low integrity
 * (S-1-16-4096), RESTRICTED_LOW both. INHERIT leaves *out NULL. Returns 0
 * and a new token handle in *out (owner: the caller), or JW_ESYS /
 * JW_ENOMEM with err->where naming the failed call. Any thread. */
int jw__token_build(jw_token_mode_t mode, HANDLE *out, jw_error_t *err);
/* What a token really holds, read back: {"integrity", "integrity_sid",
 * "privileges": [names], "deny_only": [SIDs]}, and "unavailable":
 * [{"field","reason"}] for what could not be read. New reference (NULL
 * only when out of memory). */
json_t *jw__token_describe(HANDLE token);
/* The same for a process's own token (OpenProcessToken TOKEN_QUERY); a
 * token that cannot be opened gives {"unavailable":[{"field":"token",...}]}. */
json_t *jw__token_describe_process(HANDLE process);
/* "low", "medium"... for a mandatory-label RID (the names procinfo uses). */
const char *jw__integrity_name(DWORD rid);

/* jobwarden's own process and threads behind a protected DACL
 * (src/win/selfprotect.c): the entries below, in this order; "user" is
 * the SID of jobwarden's own token. */
#define JW_SELF_ACES 3
typedef struct {
  const char *who; /* "user", or a SID string */
  DWORD mask;      /* the access allowed */
} jw_self_ace_t;
extern const jw_self_ace_t jw__self_process_aces[JW_SELF_ACES];
extern const jw_self_ace_t jw__self_thread_aces[JW_SELF_ACES];
/* Sets the protected DACL on jobwarden's process (through its
 * pseudo-handle, which keeps full access) and on every thread it has at
 * the call; threads already protected by an earlier call are left as
 * they are. Threads started later get the same DACL at their creation
 * (jw__thread_dacl_set, jw__thread_begin). Returns 0 or JW_ESYS with
 * err->where naming the failed call.
 * Main thread. */
int jw__self_protect(jw_error_t *err);
/* Clears HANDLE_FLAG_INHERIT on every handle jobwarden holds (its own
 * standard handles included: the program gets duplicates made for it
 * alone), so that no CreateProcess of jobwarden's, whatever its
 * arguments, can hand one to another process. *cleared counts the
 * handles changed, *left those that stayed inheritable. Returns 0, or
 * JW_ESYS when *left > 0. Main thread, while no other thread creates
 * handles meant to be inherited. */
int jw__handles_uninherit(unsigned *cleared, unsigned *left);

/* Resolves a program name the way `run` does (SearchPathW, ".exe" added).
 * Returns a new malloc'd UTF-16 path, or NULL with err set (JW_ENOENT). */
wchar_t *jw__resolve_program(const char *name, jw_error_t *err);

/* The monitor thread. */
typedef struct jw_monitor_s jw_monitor_t;

/* Creates the thread draining job->port; it starts running once the root
 * is known (jw_monitor_set_root) so the root's own NEW_PROCESS packet is
 * never mistaken for a child. Neither the job nor the emitter is
 * owned; both must outlive jw_monitor_stop. Main thread. */
int jw_monitor_start(jw_job_t *job, jw_emitter_t *em, jw_monitor_t **out, jw_error_t *err);
/* Tells the monitor which process is the root (before it runs; the handle is
 * duplicated) and emits its sandbox.process_start event. Main thread. */
int jw_monitor_set_root(jw_monitor_t *m, const jw_child_t *root);
/* Announces that jobwarden itself is terminating the job (`reason` is a
 * static string such as "interrupted"), so the exits that follow are
 * reported as killed by jobwarden, not as crashes. Any thread. */
void jw_monitor_note_terminating(jw_monitor_t *m, const char *reason);
/* The monitor rule ("timeout", "image_denied", "total_processes", ...,
 * a static string) whose action terminated the root process: a kill_job,
 * or the timeout's kill_process; NULL when no rule did. *job (may be NULL)
 * is set when the whole job was terminated. Reliable once the root has
 * exited. Any thread. */
const char *jw_monitor_rule_kill(jw_monitor_t *m, int *job);
/* Hands a control-channel request (docs/control.md) to the monitor thread,
 * which owns the process table: it posts a JW_CTRL_REQUEST packet to the
 * job's port and waits at most timeout_ms for the answer. The monitor
 * lists the members (the job's own process-id list, described from its
 * table) or terminates one member or the whole job, emits the
 * member_control notice for a kill (done or refused) and answers with the
 * reply object ({"ok":...}, a new reference in *reply). Returns 0,
 * JW_ETIMEDOUT (no answer in time: the request is withdrawn, or its late
 * answer dropped) or JW_ESYS (the packet could not be posted). One
 * request at a time: the control thread only. */
int jw_monitor_control(jw_monitor_t *m, const jw_control_request_t *req, DWORD timeout_ms,
                       json_t **reply);
/* When a control request terminated the root process or the whole job
 * (*job, may be NULL, says which): a sentence naming the request ("`jobwarden
 * kill` from pid P (user S)"), valid until jw_monitor_stop; else NULL.
 * Reliable once the root has exited. Any thread. */
const char *jw_monitor_control_kill(jw_monitor_t *m, int *job);
/* Test hook: replaces QueryFullProcessImageNameW in the monitor, so tests
 * can make an image unreadable. NULL restores the real call. */
typedef BOOL(WINAPI *jw__query_image_fn)(HANDLE, DWORD, LPWSTR, PDWORD);
void jw__monitor_image_hook(jw__query_image_fn fn);
/* Test hook: called with every job message (id, value) before the monitor
 * handles it, and with every exit watcher's packet as (JW_DROP_EXITED,
 * pid); nonzero drops it, as if the port had never delivered it (or
 * someone holding a copy of the port had taken it). NULL: none dropped. */
#define JW_DROP_EXITED 0x4A570004u
/* ... and with every setup worker's wake-up as (JW_DROP_SETUP, 0). */
#define JW_DROP_SETUP 0x4A570005u
typedef int (*jw__drop_message_fn)(DWORD msg, ULONG_PTR value);
void jw__monitor_drop_hook(jw__drop_message_fn fn);
/* Benchmark hook (tests/win/bench_scale.c): pids that exist only in
 * packets the benchmark posts to the job's port. For a pid the hook
 * claims (returns 1, its facts filled), admission takes the hook's word
 * for membership and facts instead of asking the kernel (there is no
 * process to open); everything after admission is the monitor's own path.
 * Never set outside benchmarks. */
typedef struct jw__synthetic_proc_s {
  DWORD ppid;
  uint64_t create_time; /* FILETIME */
  const char *image;    /* UTF-8, copied */
} jw__synthetic_proc_t;
typedef int (*jw__synthetic_fn)(DWORD pid, jw__synthetic_proc_t *out);
void jw__monitor_synthetic_hook(jw__synthetic_fn fn);
/* Test hook: how long a member's setup may take before it is completed
 * with what is known (monitor_setup.c; 0 restores SETUP_MAX_MS). */
void jw__monitor_setup_limit(DWORD ms);
/* Test hook: how long late facts of a setup given up are waited for
 * (0 restores SETUP_LATE_MS). */
void jw__monitor_setup_late_limit(DWORD ms);
/* Test hook (monitor_escape.c): nonzero makes every monitor see its port
 * as never quiet, as a program that keeps it busy would, so that a due
 * escape scan runs at its bound (JW__SCAN_QUIET_MAX_MS); 0 restores. */
void jw__monitor_escape_never_quiet(int on);
/* Benchmark hook (tests/win/bench_setup.c): 0 starts monitors without the
 * setup worker, so admission reads and retries on the monitor thread (the
 * old way, the baseline); 1 (the default) with it. */
void jw__monitor_setup_worker(int on);
/* Test hooks for the measured values of limit hits: replace
 * GetProcessMemoryInfo (a PROCESS_MEMORY_COUNTERS_EX is asked for) and
 * GetProcessTimes on the process a limit message names. NULL restores
 * the real calls. */
typedef BOOL(WINAPI *jw__process_memory_fn)(HANDLE, PROCESS_MEMORY_COUNTERS *, DWORD);
typedef BOOL(WINAPI *jw__process_times_fn)(HANDLE, LPFILETIME, LPFILETIME, LPFILETIME, LPFILETIME);
void jw__monitor_measure_hooks(jw__process_memory_fn memory, jw__process_times_fn times);
/* Manual-reset event set once the job has no active process left (or the
 * monitor ended). Owned by the monitor. */
HANDLE jw_monitor_done_event(jw_monitor_t *m);
/* Counters of a finished monitor. */
typedef struct jw_monitor_stats_s {
  uint32_t processes_seen; /* root included */
  uint32_t violations;
  uint32_t abnormal_exits;
  uint32_t coalesced;  /* violations counted into a summary instead of written */
  uint32_t reconciled; /* events synthesized because the port missed them */
  int job_end_emitted;
  uint32_t handles_held; /* process handles still held when the monitor stopped (an
                            exited process's is let go once its exit is reported) */
  uint32_t wakeups;      /* returns from the port's wait: packets or a timeout */
  uint32_t timeouts;     /* of which a timeout (a member poll or deadline was due) */
  uint32_t quits_posted; /* quit packets jw_monitor_stop posted (one per REPOST_MS) */
  /* Escapes (src/win/monitor_escape.c): how many were found, and what the
   * look for them cost (scans, microseconds in all and at most, processes
   * on the system at the last scan). */
  uint32_t escapes;
  uint32_t escape_scans;
  uint64_t escape_scan_us_total, escape_scan_us_max;
  uint32_t escape_scan_processes;
  /* Scans that came due while the port was busy: ran once it was quiet,
   * and ran at the bound without waiting longer (monitor_escape.c). */
  uint32_t escape_scans_after_quiet, escape_scans_at_bound;
  /* The process table: entries in memory at most (members running, exited
   * ones kept for the tree, ancestry or recent messages), exit waits that
   * could not be registered (their exits are then learnt from the
   * message, or at the job's end). */
  uint64_t table_peak;
  uint32_t exit_waits_failed;
  /* Exit waits that fired before their process had ended (under Wine: a
   * process with no running thread, as it starts or as it ends): looked
   * at again, posted only at the end (src/win/exitwatch.c). */
  uint32_t exit_waits_unsettled;
  /* Setups (src/win/monitor_setup.c): members whose facts the setup
   * worker read because they did not answer at once (or their user was
   * new), packets that waited for a setup, setups given up (SETUP_MAX_MS). */
  uint32_t setups_async;
  uint32_t setups_deferred_packets;
  uint32_t setups_given_up;
  /* Of those: facts the worker read later, written in a process_update
   * (late), and late reads the monitor stopped waiting for (SETUP_LATE_MS). */
  uint32_t setups_late;
  uint32_t setups_late_abandoned;
  /* Setups handed to the worker by what the first ask waited for: the
   * process's open, its image, creation time, command line, user name
   * (monitor_int.h JW__WAITED_*; index 0 unused). */
  uint32_t setups_waited_for[6];
  /* Admissions on the monitor thread (the membership check, the first
   * reads, and when they answered at once the rules and start event):
   * how many, their time in all and the longest one, in microseconds. */
  uint32_t admissions;
  uint64_t admit_us_total, admit_us_max;
  /* The job's accounting read for limit messages (ACTIVE_PROCESS_LIMIT,
   * END_OF_JOB_TIME), and the messages that used a read of the same
   * wake-up instead. */
  uint32_t limit_reads;
  uint32_t limit_reads_shared;
} jw_monitor_stats_t;
/* fn(ctx) runs on the monitor's thread just before it writes job_end
 * (after its own summaries), once: the last events of other parts of the
 * run (the readers' gate). Set before the root runs. Main thread. */
void jw_monitor_before_end(jw_monitor_t *m, void (*fn)(void *), void *ctx);
/* The monitor's wake-ups so far (jw_monitor_stats_t.wakeups), read while
 * it runs. Any thread. */
uint32_t jw_monitor_wakeups(jw_monitor_t *m);
/* Exit-watcher packets posted so far, and of them taken by the monitor
 * (a test's idle window starts once every one was taken). Any thread. */
void jw_monitor_exit_packets(jw_monitor_t *m, uint32_t *posted, uint32_t *taken);
/* Posts QUIT; the thread handles every packet queued before it, reconciles
 * what the port did not say (exits of tracked processes, the job end), and
 * ends. Waits at most timeout_ms; copies the counters to *stats (may be
 * NULL) and frees. If the thread does not stop in time it is left running
 * and JW_ETIMEDOUT is returned (never TerminateThread). Main thread. */
int jw_monitor_stop(jw_monitor_t *m, DWORD timeout_ms, jw_monitor_stats_t *stats);

/* ---- process facts (src/win/procinfo.c) ------------------------------ */

/* Wine's version string when running under Wine (ntdll exports
 * wine_get_version), else NULL. */
const char *jw__wine_version(void);
/* Nonzero when running under Wine. */
int jw__is_wine(void);
/* The parent pid recorded at the process's creation (the parent may be
 * gone). Returns 1, or 0 when it cannot be read. */
int jw__proc_parent(HANDLE h, DWORD *ppid);
/* The command line the process holds: NtQueryInformationProcess class 60,
 * else read from its PEB (needs PROCESS_QUERY_INFORMATION | PROCESS_VM_READ).
 * Counted UTF-8 in *out (owned by the caller). Returns 0, or the Win32
 * error of the read from the process (-1 when there is none) with the
 * reason (both attempts, their status / error) in why. Never an empty
 * string: a parameter block without a command line (a process still being
 * set up) is ERROR_NOT_READY, *out NULL. A string with a U+0000 inside its
 * length is JW__CMDLINE_NUL_ERROR (why then holds JW__CMDLINE_NUL). */
#define JW__CMDLINE_NUL       "a U+0000 inside its length"
#define JW__CMDLINE_NUL_ERROR 582 /* ERROR_ILLEGAL_CHARACTER (not in mingw-w64 headers) */
int jw__proc_command_line(HANDLE h, char **out, size_t *len, int *truncated, char *why,
                          size_t why_size);
/* The token's user as "S-1-..." (*sid_out) and as a binary SID (*sid_bin,
 * for jw__sid_account_name), both owned by the caller, and the integrity
 * level's name (static; NULL when the token has none). Returns 0 or -1
 * with the reason in why. */
int jw__proc_user(HANDLE h, char **sid_out, void **sid_bin, const char **integrity, char *why,
                  size_t why_size);
/* "DOMAIN\\name" of a SID (owned by the caller), NULL when not resolvable.
 * May be slow (a domain lookup): callers cache. */
char *jw__sid_account_name(void *sid);
/* PeakWorkingSetSize, 0 when it cannot be read. */
uint64_t jw__peak_working_set(HANDLE h);
/* What can be read truthfully about a process that has exited. A field
 * that cannot has its *_why set (and has_* 0 / value 0). */
typedef struct jw__exit_facts_s {
  uint64_t end_time; /* FILETIME; 0 = unknown (end_why) */
  int has_cpu;
  uint64_t cpu_user_100ns, cpu_kernel_100ns;
  uint64_t peak_working_set; /* 0 = none read (memory_why, or the system said 0) */
  int has_io;
  uint64_t io_read_ops, io_write_ops, io_other_ops, io_read_bytes, io_write_bytes, io_other_bytes;
  char end_why[96], cpu_why[128], memory_why[96], io_why[96];
} jw__exit_facts_t;
void jw__proc_exit_facts(HANDLE h, jw__exit_facts_t *f);
/* Where h's process stands: running (not signaled within wait_ms, or h
 * NULL), ended (signaled, its exit time set), or unsettled: signaled
 * without an exit time — under Wine a process with no running thread, as
 * it starts and as it ends (docs/platform-support.md). Every "has it
 * ended" of jobwarden asks this (or jw__proc_ended), never the signal
 * alone. */
typedef enum { JW_PROC_RUNNING, JW_PROC_UNSETTLED, JW_PROC_ENDED } jw__proc_state_t;
jw__proc_state_t jw__proc_state(HANDLE h, DWORD wait_ms);
/* jw__proc_state(h, 0) == JW_PROC_ENDED. */
int jw__proc_ended(HANDLE h);
/* Tests: fn is given every state read (h, what the system said) and
 * answers in its place (NULL: none). Set while no monitor runs. */
void jw__proc_state_hook(jw__proc_state_t (*fn)(HANDLE h, jw__proc_state_t real));
/* The exit code of a process that has ended: the code (any 32-bit value,
 * STILL_ACTIVE's 259 included: a program may exit with it) once
 * jw__proc_ended, -1 while it runs or when the code cannot be read. */
int64_t jw__proc_exit_code(HANDLE h);
/* After h signaled: waits (1 ms sleeps, at most max_ms) while it is
 * signaled but not ended; at once when it is not signaled. Whether it
 * ended. Not for the monitor thread's ordinary work (the job's end, which
 * already waits for processes, may). */
int jw__proc_await_end(HANDLE h, DWORD max_ms);
/* jw__proc_exit_code once jw__proc_await_end: the code of a process that
 * signaled, read after its end. */
int64_t jw__proc_exit_code_settled(HANDLE h, DWORD max_ms);
/* The CPU times of process h (100 ns units) and, when exit_time is not
 * NULL, its exit FILETIME, through fn (NULL: GetProcessTimes; tests pass a
 * hook). Returns JW_CPU_OK; JW_CPU_OWN when the answer lies within
 * jobwarden's own times read just before and after (the system answered
 * with the caller's, as Wine does for another process: not the process's);
 * JW_CPU_UNCHECKED when jobwarden's own could not be read to check it
 * (*error); JW_CPU_FAILED when the query itself failed (*error). */
enum { JW_CPU_OK = 0, JW_CPU_OWN, JW_CPU_UNCHECKED, JW_CPU_FAILED };
int jw__proc_cpu_times(HANDLE h, jw__process_times_fn fn, uint64_t *user, uint64_t *kernel,
                       uint64_t *exit_time, DWORD *error);

/* The `run` subcommand: everything from the policy to the exit status.
 * Returns the exit status jobwarden should exit with. */
typedef struct jw_run_config_s {
  jw_policy_t policy;         /* not yet resolved */
  const char *const *exports; /* SPECs; none = the default file */
  int n_exports;
  const char *const *argv; /* command */
  int argc;
  const char *control_name; /* serve \\.\pipe\jobwarden-control-NAME, or NULL */
  const char *agent_output; /* --agent-output VALUE, or NULL (auto) */
} jw_run_config_t;
int jw_run(const jw_run_config_t *cfg);
/* The console control handler jw_run installs (Ctrl-C, Ctrl-Break, close,
 * logoff, shutdown). Exposed so tests can deliver exactly what Windows
 * delivers where Wine cannot generate console events. */
BOOL WINAPI jw__run_console_ctrl(DWORD type);

/* The `probe` subcommand: runs each canary check inside a job built from
 * `policy` (not yet resolved) with jw_job_create + jw_spawn, and prints a
 * table, or with `json` one JSON document (docs/probe.md), on stdout.
 * Returns JW_EXIT_OK (every claimed restriction that could be probed is
 * enforced), JW_EXIT_NOT_ENFORCED or JW_EXIT_JW_ERROR (set-up error, said on
 * stderr). Main thread. */
int jw_probe(const jw_policy_t *policy, int json);
/* The canary side of `probe`: jobwarden.exe --probe-canary KIND [ARGS];
 * argv starts at KIND. Answers with one line on stdout and returns the
 * process's exit code. */
int jw__probe_canary_main(int argc, char **argv);
/* The table of `probe`'s checks (for tests): check i's name and the
 * canary kind it starts (NULL: none); 0, or -1 past the last check. */
int jw__probe_check_info(size_t i, const char **name, const char **canary);
/* 1 when --probe-canary knows the canary KIND, else 0. */
int jw__probe_canary_known(const char *kind);

/* `jobwarden tail NAME [--raw]` (src/win/tail.c). Returns the exit status. */
int jw_tail_main(const char *name, int raw);

/* The control channel's server (src/win/control.c). */
typedef struct jw_control_s jw_control_t;
/* Creates \\.\pipe\jobwarden-control-NAME (NAME checked by the caller):
 * owner-and-SYSTEM DACL, first instance only, no remote clients, not
 * inheritable. A name that is already served is refused with JW_EUSAGE
 * (err says so) before anything else of the run starts. Main thread. */
int jw_control_open(const char *name, jw_control_t **out, jw_error_t *err);
/* Starts the thread that serves requests against `mon` (borrowed; it must
 * outlive jw_control_close) and reports refusals on `em`. Main thread. */
int jw_control_start(jw_control_t *c, jw_job_t *job, jw_monitor_t *mon, jw_emitter_t *em,
                     const jw_run_info_t *run, jw_error_t *err);
/* Stops the server (a request being answered gets its reply first; the
 * wait is bounded) and frees it. NULL is ignored. Main thread. */
void jw_control_close(jw_control_t *c);
/* Test hook: replaces how the server reads a client's user. fn gets the
 * client's pid and writes the user's SID as text ("S-1-..."); returning
 * nonzero means "unknown". NULL restores the real reads (the pipe's
 * impersonation token and the client process's token). Any thread. */
typedef int (*jw__control_identity_fn)(DWORD client_pid, char *sid, size_t size);
void jw__control_identity_hook(jw__control_identity_fn fn);

/* `jobwarden ps NAME [--json]` and `jobwarden kill NAME [--pid PID]`
 * (src/win/control_client.c). Return the exit status. */
int jw_ps_main(const char *name, int json);
int jw_kill_main(const char *name, int has_pid, uint32_t pid);

/* --- The program's own output stream (src/win/relay.c) --- */
typedef enum {
  JW_AGENT_OUT_INHERIT = 0, /* jobwarden's own stdout / stderr (no sink uses them) */
  JW_AGENT_OUT_STDOUT,      /* relayed to jobwarden's stdout */
  JW_AGENT_OUT_STDERR,      /* relayed to jobwarden's stderr */
  JW_AGENT_OUT_NULL,        /* read and discarded */
  JW_AGENT_OUT_FILE         /* relayed to a file (appended) */
} jw__agent_output_t;
typedef struct jw__relay_s jw__relay_t;
/* --agent-output VALUE (NULL = auto) checked against the event sinks:
 * auto picks the standard stream no sink uses (null when both are used);
 * naming a stream that carries events is JW_EUSAGE. *path (FILE) points
 * into value. Main thread. */
int jw__agent_output_resolve(const char *value, const char *const *exports, int n_exports,
                             jw__agent_output_t *mode, const char **path, jw_error_t *err);
/* Creates the program's output pipe (nothing for INHERIT: *out and
 * *agent_stdio stay NULL). *agent_stdio is the write end to give the
 * program as its stdout and stderr (borrowed: owned by the relay). */
int jw__relay_open(jw__agent_output_t mode, const char *path, jw__relay_t **out,
                   HANDLE *agent_stdio, jw_error_t *err);
/* After the spawn: closes jobwarden's copy of the write end and starts
 * copying. NULL is ignored. Main thread. */
int jw__relay_start(jw__relay_t *r, jw_error_t *err);
/* Waits (bounded) until everything the program wrote is relayed; problems
 * are said on stderr. Returns 0, or -1 when the pipe is still held open
 * (then the relay must not be freed). Main thread. */
int jw__relay_finish(jw__relay_t *r, uint32_t timeout_ms);
void jw__relay_free(jw__relay_t *r);

/* --- The readers' gate of `run` (src/win/gate.c) --- */
typedef struct jw__gate_s jw__gate_t;
/* A gate that refuses clients in `job` and records refusals on `em` until
 * `done` (the monitor's done event) is set, on stderr after. Both handles
 * are duplicated; em is borrowed and must outlive the exporters. */
int jw__gate_new(HANDLE job, HANDLE done, jw_emitter_t *em, jw__gate_t **out, jw_error_t *err);
const jw_client_gate_t *jw__gate_get(const jw__gate_t *g);
void jw__gate_free(jw__gate_t *g);
/* Writes the summary of the refusals counted past the flood bound (if
 * any) and closes the gate's part of the record: later refusals go to
 * stderr. ctx: the gate. The monitor's before-end hook. */
void jw__gate_close_record(void *ctx);

#endif

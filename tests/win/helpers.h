/* Shared by the Windows test executables: helper modes (a test re-runs its
 * own .exe as the sandboxed child, libuv's spawn_helper pattern) and small
 * utilities for running processes and reading event logs. */
#ifndef JW_TEST_WIN_HELPERS_H
#define JW_TEST_WIN_HELPERS_H

#include <windows.h>

#include <winternl.h>

#include <jansson.h>

/* Whether this run is a helper run (argv[1] is "--helper"). */
int tw_is_helper(int argc, char **argv);

/* Runs the helper mode named by argv[2] and returns its exit code (any
 * 32-bit value, so only call it when tw_is_helper()). Modes:
 *   exit CODE             exit with CODE (decimal or 0x hex)
 *   crash                 write through a NULL pointer (0xC0000005)
 *   sleep MS              sleep, exit 0
 *   print TEXT            write TEXT and a newline to stdout, exit 0
 *   tree PIDFILE MS [MODE ARGS...]
 *                         start a grandchild (default: sleep MS), write
 *                         "<own pid> <grandchild pid>\n" to PIDFILE, wait
 *                         for the grandchild, exit 0
 *   series N MS           run N children (exit 0) one after another, MS
 *                         apart, exit 0
 *   series-sync DIR N PHASES
 *                         PHASES times: run N children (exit 0) one after
 *                         another; after phase k write DIR\done-k holding
 *                         the last child's pid and a newline; before the
 *                         next phase wait (up to 120 s, else exit 97) for
 *                         DIR\go-k, which the test creates. Exit 0
 *   race                  at once start a grandchild; exit 0x100 | 1 (if
 *                         this process was in a job at main) | 2 (if the
 *                         grandchild was in a job)
 *   race-sync DIR         start a grandchild at once, write DIR\started,
 *                         wait (up to 120 s, else exit 97) for DIR\go, then
 *                         exit 0x100 | 1 (in a job now) | 2 (the grandchild
 *                         is in a job): the naive order, synchronised
 *   breakaway             try CREATE_BREAKAWAY_FROM_JOB; exit with the
 *                         Win32 error, or 0x200 if it was allowed
 *   set-event VALUE       SetEvent on the handle value; exit 0 if that
 *                         worked (the handle was inherited), 1 otherwise
 *   spoof-parent WHO PIDFILE THEN [image=EXE] MODE [ARGS...]
 *                         the escape attack: start `MODE ARGS` (run from
 *                         EXE, a copy of this executable, when given) with
 *                         PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming WHO
 *                         ("parent": the process that started this one,
 *                         i.e. jobwarden; "parent-dacl": the same, but when
 *                         the open is refused, first rewrite its DACL
 *                         through WRITE_DAC (Everyone: full access) and
 *                         open again; "member": a sibling started for it
 *                         inside the job; or a pid), opened with
 *                         PROCESS_CREATE_PROCESS; write "<WHO's pid>
 *                         <child pid> open=E rewrite=E" to PIDFILE (E: Win32
 *                         errors of the first open and of the rewrite, -1
 *                         not tried; child pid 0 when refused); then THEN:
 *                         "exit" (exit 0 at once), "wait" (exit with the
 *                         child's exit code; 0xC000013A, jobwarden's kill,
 *                         as 58) or "kick" (first start a child inside the
 *                         job, then wait). Failures: 80 arguments, 81
 *                         sibling, 82 OpenProcess refused, 83 attribute
 *                         list, 84 CreateProcessW, 85 PIDFILE, 86 kick,
 *                         87 wait
 *   breakaway-child PIDFILE MODE [ARGS...]
 *                         start `MODE ARGS` with CREATE_BREAKAWAY_FROM_JOB
 *                         (a child of this member outside the job, where
 *                         the policy allows breakaway); "<own pid> <child
 *                         pid>" to PIDFILE; exit as spoof-parent's "wait"
 *                         (84 CreateProcessW, 85 PIDFILE, 87 wait)
 *   jw-control OUTFILE JW NAME
 *                         run `JW ps NAME` then `JW kill NAME`; write their
 *                         exit codes "<ps> <kill>" to OUTFILE
 *   tamper RESULT MARKER  the agent attacking the monitor's port from
 *                         inside the job: finds its parent's completion
 *                         port (PROCESS_DUP_HANDLE), learns the job's key
 *                         by dequeuing, posts forged packets, writes what
 *                         it achieved to RESULT ("post NAME OK ERR"
 *                         lines...), waits for MARKER, exit 0
 *   forge-exited RESULT MARKER CODE
 *                         the same port found through the DACL rewrite;
 *                         learns the CONTROL key from one of jobwarden's
 *                         own packets (short-lived children; all it takes
 *                         put back in order), posts JW_CTRL_EXITED naming
 *                         itself, writes what it achieved to RESULT, waits
 *                         for MARKER, exits CODE
 *
 *   report-mix FILE       wine.report.real's run: FILE holds UTF-16LE strings,
 *                         each ended by a U+0000 unit; string i becomes the
 *                         rest of the command line of a child `exit I
 *                         <string>` (run one after another); then children
 *                         `exit 0xC0000409`, `crash` and `tree FILE.tree 10`.
 *                         Exit 0; 88 FILE unreadable, 89 a creation failed
 *
 * Self-defence attacks (the agent against jobwarden, its parent); each
 * reports lines on stdout, "<what> <Win32 error, 0 = it worked>":
 *   open-parent           OpenProcess on the parent with each of
 *                         PROCESS_TERMINATE, PROCESS_DUP_HANDLE,
 *                         PROCESS_VM_READ, PROCESS_CREATE_PROCESS,
 *                         WRITE_DAC, PROCESS_QUERY_LIMITED_INFORMATION:
 *                         "parent PID", then "open NAME ERR" per right
 *   kill-parent PIDFILE GOFILE
 *                         start a grandchild (sleep 60 s), write
 *                         "<own pid> <grandchild pid>" to PIDFILE, wait
 *                         for GOFILE to exist, OpenProcess(PROCESS_TERMINATE)
 *                         the parent and TerminateProcess it with 0:
 *                         "open ERR", "terminate ERR"; then wait. When the
 *                         open is refused, the owner's way round: open it
 *                         for WRITE_DAC, give Everyone full access
 *                         ("rewrite_open ERR", "rewrite_set ERR") and open
 *                         again ("reopen ERR")
 *   dup-job               copy the parent's handle to this process's job
 *                         (PROCESS_DUP_HANDLE), set BREAKAWAY_OK without
 *                         KILL_ON_JOB_CLOSE through it, start a child with
 *                         CREATE_BREAKAWAY_FROM_JOB: "open ERR" (refused:
 *                         the DACL rewrite of kill-parent, "reopen ERR"),
 *                         "job VALUE"
 *                         (0 = not found), "set ERR", "breakaway ERR",
 *                         "escaped 0|1" (the child is terminated at once)
 *   inherited             "std IN OUT ERR" (hex values) and "inheritable
 *                         V..." (every handle with HANDLE_FLAG_INHERIT:
 *                         what the process inherited)
 *   token-report          its own token: "integrity 0xRID", "privileges
 *                         NAME...", "deny_only SID..."
 *
 * wine.real.record (attacks on the record from inside the job):
 *   attack-spool DIR RESULT SNAPSHOT   attack-file on the first segment of
 *                         the run directory under the spool root DIR
 *   attack-file LOG RESULT SNAPSHOT
 *                         open LOG for GENERIC_WRITE, with TRUNCATE_EXISTING
 *                         and CREATE_ALWAYS, DeleteFileW, MoveFileExW, open
 *                         for DELETE + FileDispositionInfo, then read it;
 *                         RESULT: "write=E trunc=E create=E delete=E move=E
 *                         disposition=E read=E" (Win32 errors, 0 = done),
 *                         SNAPSHOT: what it read
 *   forge-output          write TW_FORGED_PARTS to stdout / stderr (half
 *                         lines and forged sandbox.job_end lines), exit 0
 *   pipe-reader NAME RESULT
 *                         read \\.\pipe\NAME to its end; RESULT: "open=E
 *                         bytes=N end=E\n" then the bytes read
 *   pipe-reader-escaped NAME RESULT
 *                         start `pipe-reader NAME RESULT.child` with this
 *                         process's parent (jobwarden) as its spoofed parent
 *                         (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS: in no job),
 *                         wait for it; when jobwarden's DACL refuses the
 *                         open (5), rewrite it through WRITE_DAC first (the
 *                         owner's way round, open under Wine only); RESULT:
 *                         "first=E child=PID" (E: the first open's error),
 *                         or "first=E spoof=E" / "spawn=E" when the parent
 *                         could not be opened / the child not started
 *   wait-file PATH        exit 0 once PATH exists
 *   spawn-rewriter LOG MARK
 *                         start `rewrite-after LOG MARK` and exit 0 (89 when
 *                         the child cannot be started)
 *   rewrite-after LOG MARK
 *                         once LOG opens for writing (no sharing), flip
 *                         one bit of the third line's first message
 *                         character; MARK: "rewritten" or "failed E"
 *   series-then-crash MARK
 *                         once MARK exists, run three children `exit 0`
 *                         one after another, then crash (0xC0000005); 97
 *                         when MARK does not come within 30 s
 *   flood N [PAD]         start N children at once, each `exit 0` with the
 *                         argument TW_FLOOD_TAG_FMT (its index) and, with
 *                         PAD, one more of PAD characters (big events),
 *                         wait for them; exit 0, or 93 if a CreateProcessW
 *                         failed
 *   spew N                write N lines TW_SPEW_FMT (0..N-1) on stdout, one
 *                         WriteFile each, exit 0
 *   nul-child MARKER GO   the attack through a command line: start
 *                         `wait-file GO pad` suspended, write a U+0000 over
 *                         the last unit of its command line, write "<own
 *                         pid> <child pid>" to MARKER, resume it, wait for
 *                         it; exit 0
 *                         (80 arguments, 81 creation, 82 parameter block
 *                         not read, 83 write refused, 84 MARKER)
 *   fake-1359 MARKER EVENTS
 *                         jobwarden.exe's stand-in for the kit's retry_1359:
 *                         without MARKER, make it, say jobwarden's message
 *                         for Win32 error 1359 on stderr, exit 125; with it,
 *                         write a root_process line to EVENTS, exit 0
 *   nul-flood N PIDFILE GO
 *                         the same against the monitor's setup: N such
 *                         children (their command lines never ready), then
 *                         an ordinary `wait-file GO payload`; "<own pid>
 *                         <payload pid>" to PIDFILE; wait for all; exit 0
 *                         (80..84 as nul-child)
 *
 * The hardening round (wine.real.selfdefense, wine.real.record):
 *   open-threads GOFILE   once GOFILE exists, OpenThread on every thread of
 *                         the parent (jobwarden) with THREAD_SUSPEND_RESUME
 *                         and THREAD_TERMINATE: "thread TID ESUSPEND
 *                         ETERMINATE" each (Win32 errors, 0 = granted),
 *                         then "threads N"
 *   reader-flood NAME N   connect to \\.\pipe\NAME N times (waiting when
 *                         it is busy), read a byte each: "connected N",
 *                         "refused R", "served S"; exit 0 once N connected */
/*   run-exe EXE [ARGS...]: runs EXE with ARGS and exits with its exit code
 *                          (a renamed copy of a binary, for the image lists) */
int tw_helper_main(int argc, char **argv);

/* forge-output's writes in order: {"o" (stdout) or "e" (stderr), bytes}. */
#define TW_FORGED_JOB_END                                                                          \
  "{\"schema_version\":\"1.0\",\"event\":\"sandbox.job_end\",\"seq\":2,\"rule\":\"job\","          \
  "\"action\":\"observed\",\"severity\":\"info\",\"message\":\"forged\"}\n"
#define TW_FORGED_PARTS                                                                            \
  {                                                                                                \
    {"o", "{\"half\":\"a line without its end"}, {"o", TW_FORGED_JOB_END},                         \
        {"e", "stderr: half a line"}, {"e", TW_FORGED_JOB_END}, {"o", "tail without newline"},     \
  }
/* The concatenation of TW_FORGED_PARTS' bytes. */
#define TW_FORGED_OUTPUT                                                                           \
  "{\"half\":\"a line without its end" TW_FORGED_JOB_END "stderr: half a line" TW_FORGED_JOB_END   \
  "tail without newline"
/* A flood child's last argument: its index, padded so every command line
 * is long enough that a half-written one would show. */
/* spew's line i (an unsigned long). */
#define TW_SPEW_FMT      "spew line %06lu: the quick brown fox jumps over the lazy dog\n"
#define TW_FLOOD_TAG_FMT "flood-%04lu-abcdefghijklmnopqrstuvwxyz"

/* This executable's full path (static buffer). */
const wchar_t *tw_self(void);

/* Builds L"\"<self>\" --helper <args>" into buf. */
void tw_helper_cmdline(wchar_t *buf, size_t size, const char *args);

/* Starts a command line with creation flags (0, CREATE_SUSPENDED,
 * CREATE_BREAKAWAY_FROM_JOB...), inheriting no handle: the one way a test
 * or a helper mode starts a process of its own. Wine's rare
 * ERROR_INTERNAL_ERROR (1359) is tried once more and said on stderr ("...
 * failed with 1359; trying once more"); a failure is said on stderr with
 * the command line, and GetLastError() still holds its error. Returns 0
 * and *pi (the caller closes both handles), or -1. */
int tw_spawn(const wchar_t *cmdline, DWORD flags, PROCESS_INFORMATION *pi);

/* tw_spawn with one process attribute whose value is a single handle:
 * PROC_THREAD_ATTRIBUTE_PARENT_PROCESS (that process is its parent, and
 * it takes that process's job) or PROC_THREAD_ATTRIBUTE_JOB_LIST (it is
 * created inside that job, as jobwarden spawns). attr 0: none. Returns 0,
 * -1 (the creation failed), or -2 (the attribute list could not be made:
 * nothing was tried). */
int tw_spawn_attr(const wchar_t *cmdline, DWORD flags, DWORD_PTR attr, HANDLE value,
                  PROCESS_INFORMATION *pi);

/* GetExitCodeProcess for a process that signaled, once it has ended:
 * under Wine the signal can come a moment before the exit code (which
 * reads 259 until then; jw__proc_await_end, 5 s at most). A process that
 * has not signaled is read at once, as GetExitCodeProcess does. */
BOOL tw_exit_code(HANDLE process, DWORD *code);

/* Starts a command line (tw_spawn, flags 0), waits up to timeout_ms,
 * returns 0 and the exit code, or -1 (timeout: the process is killed). */
int tw_run_wait(const wchar_t *cmdline, DWORD timeout_ms, DWORD *exit_code);

/* Whole file as a NUL-terminated buffer (malloc'd), NULL if unreadable. */
char *tw_read_file(const char *path, size_t *len);

/* Parses a JSON Lines file. Returns a JSON array of the events (new
 * reference) or NULL if the file is unreadable or any line is not a JSON
 * object (reported on stderr with the line number), or if the last line is
 * not terminated by a newline (a torn line). */
json_t *tw_read_events(const char *path);

/* Events of an array matching event name and rule (rule may be NULL);
 * returns a new array. */
json_t *tw_filter(json_t *events, const char *event, const char *rule);
/* How many events of an array match event name and rule (rule may be
 * NULL). */
size_t tw_count(json_t *events, const char *event, const char *rule);
/* Value at a dotted path ("process.parent.pid"), borrowed; NULL if absent. */
json_t *tw_get(json_t *ev, const char *path);
/* Integer at a dotted path ("process.pid"), or -1 when absent. */
long long tw_int(json_t *ev, const char *path);
/* String at a dotted path, or NULL. */
const char *tw_str(json_t *ev, const char *path);
/* The enforcer an event with `action` names under schema 2.0.0: `who`
 * when something was done (blocked, terminated, killed_job), NULL (no
 * enforcer field) for every other action. For CHECK_STR. */
const char *tw_enforcer_for(const char *action, const char *who);

/* Waits (up to timeout_ms) until the JSON Lines file at path holds a
 * complete event whose process.pid is pid: the monitor has handled that
 * process. 0, or -1 on timeout. */
int tw_wait_event_pid(const char *path, DWORD pid, DWORD timeout_ms);

/* Reads "<a> <b>" from PIDFILE, waiting up to timeout_ms for it to exist. */
int tw_read_pids(const char *pidfile, DWORD timeout_ms, DWORD *a, DWORD *b);

/* Another process's parameter block, as a process of the same user can
 * reach it (NtQueryInformationProcess, ReadProcessMemory): its address
 * there (*at) and a copy (*pp). 0, or -1. */
int tw_params_read(HANDLE h, void **at, RTL_USER_PROCESS_PARAMETERS *pp);

/* WriteProcessMemory into that block: one UTF-16 unit at `index` of its
 * command line (pp as tw_params_read read it), or its CommandLine.Length.
 * 0, or -1. */
int tw_cmdline_put(HANDLE h, const RTL_USER_PROCESS_PARAMETERS *pp, size_t index, wchar_t unit);
int tw_cmdline_put_length(HANDLE h, void *at, USHORT len);

#define TW_PATH_CHARS (MAX_PATH * 4)
#define TW_CMD_CHARS  8192

/* Starts the command line `cmd` (ANSI code page) in directory cwd with
 * stdin = NUL and stdout / stderr written to the two files (created anew).
 * Only those three handles, and `extra` (an inheritable handle) when not
 * NULL, are inherited (PROC_THREAD_ATTRIBUTE_HANDLE_LIST), so no handle of
 * the test (a CTest pipe...) leaks into the child. Returns 0 and *pi (the
 * caller closes its handles) or -1 (reported on stderr). */
int tw_spawn_redirected(const char *cmd, const char *cwd, const char *out_path,
                        const char *err_path, HANDLE extra, PROCESS_INFORMATION *pi);

/* ------------------------------------------------------------------------ */
/* The test kit for runs of jobwarden.exe (every test file that starts it) */
/* ------------------------------------------------------------------------ */

/* A full Windows path for an argv path (Unix-style paths resolve through
 * the current drive, Z: under Wine), through GetFullPathNameW, in the ANSI
 * code page, without trailing separators (a drive root keeps its own).
 * Returns 0, or -1 when it does not convert or does not fit in n bytes. */
int tw_full_path(const char *in, char *out, size_t n);

/* The arguments every test executable run against jobwarden.exe takes:
 * `<tests/data dir> <events dir> <jobwarden.exe>`. Resolves argv[2] into
 * events and argv[3] into jw (tw_full_path) and, when self is not NULL,
 * writes this executable's path (ANSI code page) into self; each buffer
 * holds TW_PATH_CHARS bytes. Returns 0, or -1 when argc < 4 or a path does
 * not resolve (nothing is printed: each test says its own usage). */
int tw_test_args(int argc, char **argv, char *events, char *jw, char *self);

/* tw_test_args, then the events directory made when missing and the kit
 * set (tw_kit_set(jw, events, prefix)): the start of a test executable's
 * main. Returns 0, or -1 after a usage line on stderr. */
int tw_test_setup(int argc, char **argv, const char *prefix, char *events, char *jw, char *self);

/* Writes "<dir>\<prefix><tag><suffix>" to buf: a case's file in the events
 * directory under the test's own prefix ("wine-cli-", "wine-probe-"...).
 * Only that name is written; nothing is created or removed. */
void tw_case_path(char *buf, size_t n, const char *dir, const char *prefix, const char *tag,
                  const char *suffix);

/* One run of a program (jobwarden.exe, mostly) with stdin = NUL and
 * stdout / stderr in files: what it is told (tw_run_opts_t) and what it
 * gave (tw_run_t). Paths in the ANSI code page. */
typedef struct tw_run_opts_s {
  const char *exe;         /* the program; NULL: the kit's jobwarden.exe (tw_kit_set) */
  const char *args;        /* its command line after the quoted exe */
  const char *tag;         /* names its files and its messages */
  const char *dir;         /* working directory and the files' directory;
                              NULL: the kit's */
  const char *prefix;      /* the files' prefix; NULL: the kit's */
  const char *out_path;    /* stdout's file; NULL: <dir>\<prefix><tag>.stdout */
  HANDLE out_handle;       /* when not NULL: stdout is this inheritable handle
                              (a pipe...), not a file; r->out is then "" */
  const char *events_path; /* when not NULL: an event file (JSON Lines) read
                              into the result's events once the run ended */
  HANDLE extra;            /* one more inheritable handle for it, or NULL */
  DWORD timeout_ms;        /* 0: 60 s; then it is killed */
  UINT kill_code;          /* the kill's exit code; 0: 1 */
  int retry_1359;          /* Wine under load rarely fails a CreateProcessW with
                              1359 (docs/platform-support.md), and jobwarden
                              then exits 125 naming it: with this set,
                              tw_jw_start watches the run until its root's
                              process_start is in events_path (or, without
                              one, until it exits) and starts a run that
                              met 1359 once more, said on stderr */
} tw_run_opts_t;

typedef struct tw_run_s {
  char tag[64];           /* the run's tag (messages) */
  PROCESS_INFORMATION pi; /* owned by the run from tw_jw_start until
                             tw_jw_wait closes both handles */
  int started;            /* tw_jw_start started it */
  int finished;           /* it exited by itself within its timeout */
  DWORD exit_code;        /* (DWORD)-1 until tw_jw_wait reads it; after a
                             kill, the kill code; (DWORD)-1 when unreadable */
  char *out, *err;        /* stdout / stderr (malloc'd, NUL-terminated, "" when
                             unreadable), never NULL after tw_jw_wait;
                             freed by tw_jw_free */
  size_t out_len, err_len;
  json_t *events; /* opts.events_path's events (tw_read_events, new
                     reference, freed by tw_jw_free), NULL when not
                     asked for or unreadable */
  DWORD timeout_ms;
  UINT kill_code;
  char out_path[TW_PATH_CHARS], err_path[TW_PATH_CHARS], events_path[TW_PATH_CHARS];
} tw_run_t;

/* The test executable's defaults for its runs: jobwarden.exe's path, the
 * directory (the events directory) and the file prefix ("wine-cli-"...).
 * Kept by reference: the strings must outlive the runs. */
void tw_kit_set(const char *jw, const char *dir, const char *prefix);

/* Starts `"<exe>" <args>` as o says, inheriting only its three standard
 * handles and o->extra (see tw_spawn_redirected). Clears *r first. A `run`
 * of jobwarden.exe whose args do not seal it is sealed with a new key
 * <dir>\<prefix><tag>.seal.key (--seal-key after "run"), so that
 * wine.seal.records can verify it. Returns 0, or -1 (r->started 0; the
 * reason on stderr). */
int tw_jw_start(const tw_run_opts_t *o, tw_run_t *r);

/* Waits for a started run up to its timeout; when it does not exit in
 * time, says so on stderr, kills it with its kill code and waits (5 s)
 * for that. Then reads its exit code, closes its handles (a second call
 * does not wait again), reads both files into r->out / r->err and the
 * event file into r->events (also when it never started: then exit_code
 * stays (DWORD)-1), and notes the run for tw_kit_case_end. Returns
 * r->finished. */
int tw_jw_wait(tw_run_t *r);

/* tw_jw_start then tw_jw_wait: returns r->finished (0 also when it did
 * not start). */
int tw_jw_run(const tw_run_opts_t *o, tw_run_t *r);

/* Takes the `seal` member (docs/forensics.md) out of every line of
 * text[0..len) in place: what two sinks of a sealed run wrote then
 * compares byte for byte. Returns the new length (text NUL-terminated
 * there when it shrank). */
size_t tw_unseal(char *text, size_t len);

/* Frees r->out / r->err / r->events (NULL afterwards); r may be reused. */
void tw_jw_free(tw_run_t *r);

/* jw_test_case_end_hook (tests/harness.h) for the Windows tests: when the
 * case failed, prints "---- case NAME failed" and, for each run the kit
 * waited for during the case, its tag, exit code, stdout and stderr (read
 * again from their files), and the records shown (tw_kit_show_record);
 * then forgets both. */
void tw_kit_case_end(const char *name, int failed);

/* A record (a JSON Lines file) written in the current case: when the case
 * fails, tw_kit_case_end prints it (its last 16 KiB), so that a failure
 * seen once in CI shows the events it was about. At most 8 per case. */
void tw_kit_show_record(const char *path);

/* A test executable's main ends with this: its cases by name (see
 * jw_test_run_cases), a failed case followed by what its runs said. */
#define TW_RUN_CASES(name, argc, argv, cases)                                                      \
  (jw_test_case_end_hook = tw_kit_case_end,                                                        \
   jw_test_run_cases((name), (argc), (argv), (cases), sizeof(cases) / sizeof((cases)[0])))

/* A security descriptor read back (GetSecurityInfo on a handle, or
 * GetNamedSecurityInfoA on a file's path): its owner, whether its DACL is
 * protected, and its first TW_ACL_ACES entries, SIDs as strings ("S-1-5-18")
 * so that a test compares them with CHECK_STR. */
#define TW_ACL_ACES  4
#define TW_SID_CHARS 192
typedef struct tw_acl_s {
  DWORD error;              /* what the read answered (ERROR_SUCCESS) */
  char owner[TW_SID_CHARS]; /* "" when not asked for or not read */
  int have_control;         /* GetSecurityDescriptorControl worked */
  int is_protected;         /* SE_DACL_PROTECTED is set */
  int have_dacl;            /* a DACL is present */
  DWORD ace_count;          /* its AceCount */
  struct {
    int read;  /* GetAce worked */
    BYTE type; /* Header.AceType */
    DWORD mask;
    char sid[TW_SID_CHARS]; /* "" when it does not convert */
  } ace[TW_ACL_ACES];
} tw_acl_t;

/* Reads the owner (when want_owner) and the DACL of a kernel object
 * (h, when not NULL) or of the file at path into *a (cleared first).
 * Returns a->error. */
DWORD tw_acl_read(HANDLE h, const char *path, int want_owner, tw_acl_t *a);

/* This process's user SID as a string (static buffer), "" when the token
 * cannot be read. */
const char *tw_user_sid(void);

/* Waits (up to timeout_ms, looking again every poll_ms) until the pipe
 * \\.\pipe\<name> exists: a server (jobwarden) has started serving it.
 * 0, or -1 on timeout. */
int tw_wait_pipe(const char *name, DWORD timeout_ms, DWORD poll_ms);

#endif

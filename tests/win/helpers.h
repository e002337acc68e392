/* Shared by the Windows test executables: helper modes (a test re-runs its
 * own .exe as the sandboxed child, libuv's spawn_helper pattern) and small
 * utilities for running processes and reading event logs. */
#ifndef JW_TEST_WIN_HELPERS_H
#define JW_TEST_WIN_HELPERS_H

#include <windows.h>

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
 *   race                  at once start a grandchild; exit 0x100 | 1 (if
 *                         this process was in a job at main) | 2 (if the
 *                         grandchild was in a job)
 *   breakaway             try CREATE_BREAKAWAY_FROM_JOB; exit with the
 *                         Win32 error, or 0x200 if it was allowed
 *   set-event VALUE       SetEvent on the handle value; exit 0 if that
 *                         worked (the handle was inherited), 1 otherwise
 *   spoof-parent WHO PIDFILE THEN MODE [ARGS...]
 *                         the escape attack: start `MODE ARGS` with
 *                         PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming WHO
 *                         ("parent": the process that started this one,
 *                         i.e. jobwarden; "member": a sibling started for
 *                         it inside the job; or a pid), opened with
 *                         PROCESS_CREATE_PROCESS; write "<WHO's pid>
 *                         <child pid>
" to PIDFILE; then THEN: "exit"
 *                         (exit 0 at once), "wait" (exit with the child's
 *                         exit code; 0xC000013A, jobwarden's kill, as 58) or "kick" (first start a
child inside
 *                         the job, then wait). Failures: 80 arguments,
 *                         81 sibling, 82 OpenProcess, 83 attribute list,
 *                         84 CreateProcessW, 85 PIDFILE, 86 kick, 87 wait
 *   breakaway-child PIDFILE MODE [ARGS...]
 *                         start `MODE ARGS` with CREATE_BREAKAWAY_FROM_JOB
 *                         (a child of this member outside the job, where
 *                         the policy allows breakaway); "<own pid> <child
 *                         pid>\n" to PIDFILE; exit as spoof-parent's
 *                         "wait" (84 CreateProcessW, 85 PIDFILE, 87 wait)
 *   jw-control OUTFILE JW NAME
 *                         run `JW ps NAME` then `JW kill NAME`; write their
 *                         exit codes "<ps> <kill>
" to OUTFILE */
int tw_helper_main(int argc, char **argv);

/* This executable's full path (static buffer). */
const wchar_t *tw_self(void);

/* Builds L"\"<self>\" --helper <args>" into buf. */
void tw_helper_cmdline(wchar_t *buf, size_t size, const char *args);

/* Starts a command line (inheriting nothing), waits up to timeout_ms,
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
/* Value at a dotted path ("process.parent.pid"), borrowed; NULL if absent. */
json_t *tw_get(json_t *ev, const char *path);
/* Integer at a dotted path ("process.pid"), or -1 when absent. */
long long tw_int(json_t *ev, const char *path);
/* String at a dotted path, or NULL. */
const char *tw_str(json_t *ev, const char *path);

/* Reads "<a> <b>" from PIDFILE, waiting up to timeout_ms for it to exist. */
int tw_read_pids(const char *pidfile, DWORD timeout_ms, DWORD *a, DWORD *b);

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

#endif

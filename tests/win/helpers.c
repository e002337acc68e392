/* Helper modes and utilities for the Windows tests (see helpers.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "helpers.h"
#include "test_util.h"
#include "win/win.h"

#include <aclapi.h>
#include <sddl.h>
#include <tlhelp32.h>

const wchar_t *tw_self(void) {
  static wchar_t self[MAX_PATH];
  if (self[0] == 0)
    GetModuleFileNameW(NULL, self, MAX_PATH);
  return self;
}

void tw_helper_cmdline(wchar_t *buf, size_t size, const char *args) {
  swprintf(buf, size, L"\"%ls\" --helper %hs", tw_self(), args);
}

/* CreateProcessW, once more after Wine's rare ERROR_INTERNAL_ERROR under
 * load (1359, docs/platform-support.md), said on stderr with what (the
 * command line, for a reader of the test's output). Every process the
 * kit starts goes through here. */
static BOOL create_process(wchar_t *cmd, BOOL inherit, DWORD flags, const wchar_t *cwd,
                           STARTUPINFOW *si, PROCESS_INFORMATION *pi, const wchar_t *what) {
  BOOL ok = CreateProcessW(NULL, cmd, NULL, NULL, inherit, flags, NULL, cwd, si, pi);
  if (!ok && GetLastError() == ERROR_INTERNAL_ERROR) {
    fprintf(stderr, "CreateProcessW failed with 1359; trying once more: %ls\n", what);
    ok = CreateProcessW(NULL, cmd, NULL, NULL, inherit, flags, NULL, cwd, si, pi);
  }
  if (!ok) {
    /* Said on stderr, so that a helper's failure to start a child names
     * the error in the test's output; the error stays the last one. */
    DWORD e = GetLastError();
    fprintf(stderr, "CreateProcessW failed (Win32 error %lu): %ls\n", (unsigned long)e, what);
    SetLastError(e);
  }
  return ok;
}

int tw_spawn_attr(const wchar_t *cmdline, DWORD flags, DWORD_PTR attr, HANDLE value,
                  PROCESS_INFORMATION *pi) {
  STARTUPINFOEXW si;
  SIZE_T size = 0;
  wchar_t *cmd = _wcsdup(cmdline); /* CreateProcessW may write to it */
  int rc = -1;
  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = attr ? sizeof(si) : sizeof(si.StartupInfo);
  if (cmd == NULL)
    return -1;
  if (attr) {
    InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    si.lpAttributeList = malloc(size);
    if (si.lpAttributeList == NULL ||
        !InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size)) {
      free(si.lpAttributeList);
      free(cmd);
      return -2;
    }
    if (!UpdateProcThreadAttribute(si.lpAttributeList, 0, attr, &value, sizeof(value), NULL,
                                   NULL)) {
      rc = -2;
      goto done;
    }
    flags |= EXTENDED_STARTUPINFO_PRESENT;
  }
  rc = create_process(cmd, FALSE, flags, NULL, &si.StartupInfo, pi, cmdline) ? 0 : -1;
done:
  if (si.lpAttributeList != NULL) {
    DWORD e = GetLastError(); /* the creation's error, for the caller */
    DeleteProcThreadAttributeList(si.lpAttributeList);
    free(si.lpAttributeList);
    SetLastError(e);
  }
  free(cmd);
  return rc;
}

int tw_spawn(const wchar_t *cmdline, DWORD flags, PROCESS_INFORMATION *pi) {
  return tw_spawn_attr(cmdline, flags, 0, NULL, pi);
}

BOOL tw_exit_code(HANDLE process, DWORD *code) {
  (void)jw__proc_await_end(process, 5000);
  return GetExitCodeProcess(process, code);
}

int tw_run_wait(const wchar_t *cmdline, DWORD timeout_ms, DWORD *exit_code) {
  PROCESS_INFORMATION pi;
  int rc = 0;
  if (tw_spawn(cmdline, 0, &pi) != 0)
    return -1;
  if (WaitForSingleObject(pi.hProcess, timeout_ms) != WAIT_OBJECT_0) {
    TerminateProcess(pi.hProcess, 1);
    rc = -1;
  } else if (!tw_exit_code(pi.hProcess, exit_code)) {
    rc = -1;
  }
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return rc;
}

static int helper_tree(int argc, char **argv) {
  wchar_t cmd[2048];
  char args[1024] = "";
  PROCESS_INFORMATION pi;
  char tmp[MAX_PATH + 8], line[64];
  FILE *f;
  int i;
  if (argc < 4)
    return 90;
  if (argc > 5) {
    for (i = 5; i < argc; i++) {
      strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
      strncat(args, " ", sizeof(args) - strlen(args) - 1);
    }
  } else {
    snprintf(args, sizeof(args), "sleep %s", argv[4]);
  }
  tw_helper_cmdline(cmd, 2048, args);
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 91;
  /* Written to a temporary name, then renamed: a reader never sees half. */
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return 92;
  snprintf(line, sizeof(line), "%lu %lu\n", (unsigned long)GetCurrentProcessId(),
           (unsigned long)pi.dwProcessId);
  fputs(line, f);
  fclose(f);
  if (!MoveFileExA(tmp, argv[3], MOVEFILE_REPLACE_EXISTING))
    return 93;
  WaitForSingleObject(pi.hProcess, INFINITE);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0;
}

static int helper_race(void) {
  BOOL self_in = FALSE, child_in = FALSE;
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  /* The very first thing: is this process already confined? */
  IsProcessInJob(GetCurrentProcess(), NULL, &self_in);
  tw_helper_cmdline(cmd, 1024, "sleep 0");
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 94;
  IsProcessInJob(pi.hProcess, NULL, &child_in);
  WaitForSingleObject(pi.hProcess, 5000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0x100 | (self_in ? 1 : 0) | (child_in ? 2 : 0);
}

static int helper_breakaway(void) {
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  tw_helper_cmdline(cmd, 1024, "sleep 0");
  if (tw_spawn(cmd, CREATE_BREAKAWAY_FROM_JOB, &pi) != 0)
    return (int)GetLastError();
  TerminateProcess(pi.hProcess, 1);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0x200;
}

/* ---- escapes (issue 9, section 3): attacks from inside the job ---------- */

/* Writes len bytes to path through a temporary name and a rename, so that a
 * reader never sees half of them. 0 or -1. */
static int write_file_atomic(const char *path, const char *text, size_t len) {
  char tmp[MAX_PATH * 4 + 8];
  FILE *f;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return -1;
  if (fwrite(text, 1, len, f) != len) {
    fclose(f);
    return -1;
  }
  if (fclose(f) != 0)
    return -1;
  return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
}

/* Waits for a file the test creates (its signal), polling every 5 ms: 0,
 * or -1 after timeout_ms (INFINITE: no bound). */
static int wait_file(const char *path, DWORD timeout_ms) {
  DWORD waited = 0;
  while (GetFileAttributesA(path) == INVALID_FILE_ATTRIBUTES) {
    if (timeout_ms != INFINITE && waited >= timeout_ms)
      return -1;
    Sleep(5);
    waited += 5;
  }
  return 0;
}

/* The pid of this process's parent (the process that started it), 0 if
 * unknown. */
static DWORD own_parent(void) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  PROCESSENTRY32W pe;
  DWORD me = GetCurrentProcessId(), ppid = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  memset(&pe, 0, sizeof(pe));
  pe.dwSize = sizeof(pe);
  if (Process32FirstW(snap, &pe)) {
    do {
      if (pe.th32ProcessID == me)
        ppid = pe.th32ParentProcessID;
    } while (ppid == 0 && Process32NextW(snap, &pe));
  }
  CloseHandle(snap);
  return ppid;
}

/* Waits (60 s) for a child and gives its exit code as this helper's;
 * jobwarden's kill (0xC000013A) becomes 58, so that the helper does not
 * look killed itself; 87 when it did not end or its code cannot be read.
 * Closes pi's handles. */
static int child_exit_rc(PROCESS_INFORMATION *pi) {
  DWORD code = 0;
  int rc;
  if (WaitForSingleObject(pi->hProcess, 60000) != WAIT_OBJECT_0 ||
      !tw_exit_code(pi->hProcess, &code))
    rc = 87;
  else
    rc = code == 0xC000013Au ? 58 : (int)code;
  CloseHandle(pi->hThread);
  CloseHandle(pi->hProcess);
  return rc;
}

static int write_pair_tail(const char *path, DWORD a, DWORD b, const char *tail) {
  char text[256];
  int n = snprintf(text, sizeof(text), "%lu %lu%s%s\n", (unsigned long)a, (unsigned long)b,
                   tail[0] ? " " : "", tail);
  if (n < 0 || (size_t)n >= sizeof(text))
    return -1;
  return write_file_atomic(path, text, (size_t)n);
}

static int write_pair(const char *path, DWORD a, DWORD b) {
  return write_pair_tail(path, a, b, "");
}

/* The owner's way round jobwarden's protected process DACL, which Wine
 * allows (it ignores the OWNER RIGHTS entry; Windows refuses WRITE_DAC):
 * open pid for WRITE_DAC and give Everyone full access. The Win32 error of
 * the first step that failed, 0 when the DACL was replaced; *opened says
 * whether the WRITE_DAC open worked. */
static DWORD grant_everyone(DWORD pid, int *opened) {
  PSECURITY_DESCRIPTOR sd = NULL;
  PACL dacl = NULL;
  BOOL present = FALSE, defaulted = FALSE;
  DWORD e;
  HANDLE h = OpenProcess(WRITE_DAC, FALSE, pid);
  *opened = h != NULL;
  if (h == NULL)
    return GetLastError();
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorA("D:(A;;GA;;;WD)", SDDL_REVISION_1, &sd,
                                                            NULL) ||
      !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
    e = GetLastError();
  else
    e = SetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, dacl, NULL);
  if (sd != NULL)
    LocalFree(sd);
  CloseHandle(h);
  return e;
}

/* spoof-parent WHO PIDFILE THEN [image=EXE] MODE [ARGS...]: starts `self
 * --helper MODE ARGS` (or `EXE --helper MODE ARGS`, EXE a copy of this
 * executable) with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming WHO, so
 * that it takes WHO's job instead of this one's. */
static int helper_spoof_parent(int argc, char **argv) {
  const char *who, *pidfile, *then;
  char args[1024] = "", tail[64];
  wchar_t cmd[2048], kick[1024];
  DWORD parent_pid, open_err = 0, rewrite_err = (DWORD)-1;
  HANDLE parent = NULL;
  PROCESS_INFORMATION sib, pi, kp;
  const char *image = NULL;
  int i, first, rc = 0, spawned;
  memset(&sib, 0, sizeof(sib));
  if (argc < 6)
    return 80;
  who = argv[3];
  pidfile = argv[4];
  then = argv[5];
  first = 6;
  if (argc > 6 && strncmp(argv[6], "image=", 6) == 0) {
    image = argv[6] + 6;
    first = 7;
  }
  for (i = first; i < argc; i++) {
    strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
    strncat(args, " ", sizeof(args) - strlen(args) - 1);
  }
  if (strcmp(who, "parent") == 0 || strcmp(who, "parent-dacl") == 0) {
    parent_pid = own_parent();
  } else if (strcmp(who, "member") == 0) {
    /* A sibling started the ordinary way: a member of this job. */
    tw_helper_cmdline(cmd, 2048, "sleep 60000");
    if (tw_spawn(cmd, 0, &sib) != 0)
      return 81;
    parent_pid = sib.dwProcessId;
  } else {
    parent_pid = (DWORD)strtoul(who, NULL, 0);
  }
  parent = OpenProcess(PROCESS_CREATE_PROCESS, FALSE, parent_pid);
  if (parent == NULL) {
    open_err = GetLastError();
    if (strcmp(who, "parent-dacl") == 0) {
      int opened;
      rewrite_err = grant_everyone(parent_pid, &opened);
      if (rewrite_err == 0)
        parent = OpenProcess(PROCESS_CREATE_PROCESS, FALSE, parent_pid);
    }
  }
  snprintf(tail, sizeof(tail), "open=%lu rewrite=%ld", (unsigned long)open_err,
           rewrite_err == (DWORD)-1 ? -1L : (long)rewrite_err);
  if (parent == NULL) {
    /* Refused: nothing was started; the pid file says why. */
    write_pair_tail(pidfile, parent_pid, 0, tail);
    rc = 82;
    goto done;
  }
  if (image != NULL)
    swprintf(cmd, 2048, L"\"%hs\" --helper %hs", image, args);
  else
    tw_helper_cmdline(cmd, 2048, args);
  spawned = tw_spawn_attr(cmd, 0, PROC_THREAD_ATTRIBUTE_PARENT_PROCESS, parent, &pi);
  if (spawned != 0) {
    rc = spawned == -2 ? 83 : 84;
    goto done;
  }
  if (write_pair_tail(pidfile, parent_pid, pi.dwProcessId, tail) != 0)
    rc = 85;
  if (rc == 0 && strcmp(then, "kick") == 0) {
    /* A child inside the job: a NEW_PROCESS on the port. */
    tw_helper_cmdline(kick, 1024, "exit 0");
    if (tw_spawn(kick, 0, &kp) != 0) {
      rc = 86;
    } else {
      WaitForSingleObject(kp.hProcess, 20000);
      CloseHandle(kp.hThread);
      CloseHandle(kp.hProcess);
    }
  }
  if (rc == 0 && strcmp(then, "exit") != 0) {
    /* How the escape ended is this process's exit code. */
    rc = child_exit_rc(&pi);
  } else {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
done:
  if (parent != NULL)
    CloseHandle(parent);
  if (sib.hProcess != NULL) {
    TerminateProcess(sib.hProcess, 0);
    WaitForSingleObject(sib.hProcess, 5000);
    CloseHandle(sib.hThread);
    CloseHandle(sib.hProcess);
  }
  return rc;
}

/* breakaway-child PIDFILE MODE [ARGS...]: starts `self --helper MODE ARGS`
 * with CREATE_BREAKAWAY_FROM_JOB (the job must allow it), writes "<own
 * pid> <child pid>\n" to PIDFILE and exits as "wait" does above. */
static int helper_breakaway_child(int argc, char **argv) {
  char args[1024] = "";
  wchar_t cmd[2048];
  PROCESS_INFORMATION pi;
  int i, rc = 0;
  if (argc < 5)
    return 80;
  for (i = 4; i < argc; i++) {
    strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
    strncat(args, " ", sizeof(args) - strlen(args) - 1);
  }
  tw_helper_cmdline(cmd, 2048, args);
  if (tw_spawn(cmd, CREATE_BREAKAWAY_FROM_JOB, &pi) != 0)
    return 84;
  if (write_pair(argv[3], GetCurrentProcessId(), pi.dwProcessId) != 0)
    rc = 85;
  if (rc != 0) {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return rc;
  }
  return child_exit_rc(&pi);
}

/* jw-control OUTFILE JW NAME: `JW ps NAME`, then `JW kill NAME`; their
 * exit codes to OUTFILE as "<ps> <kill>\n". */
static int helper_jw_control(int argc, char **argv) {
  wchar_t cmd[2048];
  DWORD ps = 0, kill = 0;
  if (argc < 6)
    return 80;
  swprintf(cmd, 2048, L"\"%hs\" ps %hs", argv[4], argv[5]);
  if (tw_run_wait(cmd, 20000, &ps) != 0)
    return 81;
  swprintf(cmd, 2048, L"\"%hs\" kill %hs", argv[4], argv[5]);
  if (tw_run_wait(cmd, 20000, &kill) != 0)
    return 82;
  return write_pair(argv[3], ps, kill) == 0 ? 0 : 83;
}
/* ---- end of escapes ----------------------------------------------------- */

/* --- series-sync, race-sync, tw_wait_event_pid: helpers that wait for what
 * happened ----------------------------------------------------------------- */

/* Runs the helper `exit 0` once, waits for it; 0 and its pid, or -1. */
static int run_one_child(DWORD *pid) {
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  DWORD code = 0;
  tw_helper_cmdline(cmd, 1024, "exit 0");
  if (tw_spawn(cmd, 0, &pi) != 0)
    return -1;
  *pid = pi.dwProcessId;
  WaitForSingleObject(pi.hProcess, 10000);
  tw_exit_code(pi.hProcess, &code);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return code == 0 ? 0 : -1;
}

/* series-sync DIR N PHASES: see helpers.h. The wait for the test's go
 * marker is a poll for a file the test creates (bounded by 120 s, so a test
 * that died leaves no helper behind for ever), never a guess of how long
 * the test needs. */
static int helper_series_sync(int argc, char **argv) {
  unsigned long n, phases, k, i;
  char path[MAX_PATH], text[32];
  DWORD pid = 0;
  if (argc < 6)
    return 90;
  n = strtoul(argv[4], NULL, 0);
  phases = strtoul(argv[5], NULL, 0);
  for (k = 1; k <= phases; k++) {
    for (i = 0; i < n; i++)
      if (run_one_child(&pid) != 0)
        return 96;
    snprintf(path, sizeof(path), "%s\\done-%lu", argv[3], k);
    snprintf(text, sizeof(text), "%lu\n", (unsigned long)pid);
    if (write_file_atomic(path, text, strlen(text)) != 0)
      return 92;
    if (k == phases)
      break;
    snprintf(path, sizeof(path), "%s\\go-%lu", argv[3], k);
    if (wait_file(path, 120000) != 0)
      return 97;
  }
  return 0;
}

/* tw_wait_event_pid: see helpers.h. Only complete lines count: the line
 * being written is not an event yet. */
int tw_wait_event_pid(const char *path, DWORD pid, DWORD timeout_ms) {
  ULONGLONG deadline = GetTickCount64() + timeout_ms;
  for (;;) {
    size_t len = 0;
    char *buf = tw_read_file(path, &len), *line, *nl;
    int found = 0;
    for (line = buf; buf != NULL && !found && (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
      json_t *ev = json_loadb(line, (size_t)(nl - line), 0, NULL);
      found = ev != NULL && tw_int(ev, "process.pid") == (long long)pid;
      json_decref(ev);
    }
    free(buf);
    if (found)
      return 0;
    if (GetTickCount64() >= deadline)
      return -1;
    Sleep(10); /* a bounded poll of the file, not a guess */
  }
}

/* race-sync DIR: see helpers.h. The naive spawn order made deterministic:
 * the grandchild exists before the test assigns this process to a job. */
static int helper_race_sync(int argc, char **argv) {
  char path[MAX_PATH];
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  BOOL self_in = FALSE, child_in = FALSE;
  if (argc < 4)
    return 90;
  tw_helper_cmdline(cmd, 1024, "sleep 0");
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 94;
  snprintf(path, sizeof(path), "%s\\started", argv[3]);
  if (write_file_atomic(path, "started\n", 8) != 0)
    return 92;
  snprintf(path, sizeof(path), "%s\\go", argv[3]);
  if (wait_file(path, 120000) != 0)
    return 97;
  IsProcessInJob(GetCurrentProcess(), NULL, &self_in);
  IsProcessInJob(pi.hProcess, NULL, &child_in);
  WaitForSingleObject(pi.hProcess, 5000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0x100 | (self_in ? 1 : 0) | (child_in ? 2 : 0);
}

/* --- end of series-sync, race-sync, tw_wait_event_pid ------------------- */

/* ---- tamper: an agent attacking the monitor's completion port ------------ */

/* Wine 8 and Windows: NtQueryObject(ObjectTypeInformation) starts with the
 * type's name as a UNICODE_STRING. */
typedef struct {
  USHORT Length, MaximumLength;
  PWSTR Buffer;
} tw_ustr_t;
typedef LONG(WINAPI *tw_nt_query_object_fn)(HANDLE, int, PVOID, ULONG, PULONG);
typedef LONG(WINAPI *tw_nt_query_process_fn)(HANDLE, int, PVOID, ULONG, PULONG);

/* The parent pid, as an attacker reads it (ProcessBasicInformation). */
static DWORD tamper_parent(void) {
  ULONG_PTR pbi[6];
  tw_nt_query_process_fn q = (tw_nt_query_process_fn)(void (*)(void))GetProcAddress(
      GetModuleHandleW(L"ntdll.dll"), "NtQueryInformationProcess");
  if (q == NULL || q(GetCurrentProcess(), 0, pbi, sizeof(pbi), NULL) != 0)
    return 0;
  return (DWORD)pbi[5];
}

/* 1: the handle is an IoCompletion object by its type name; 0: another
 * type; -1: the type could not be read (*qerr: the NTSTATUS). */
static int tamper_is_port_by_type(HANDLE h, LONG *qerr) {
  static tw_nt_query_object_fn q;
  union {
    tw_ustr_t name;
    BYTE raw[2048];
  } buf;
  LONG st;
  if (q == NULL)
    q = (tw_nt_query_object_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                              "NtQueryObject");
  if (q == NULL)
    return -1;
  memset(&buf, 0, sizeof(buf));
  st = q(h, 2 /* ObjectTypeInformation */, &buf, sizeof(buf), NULL);
  if (st != 0) {
    *qerr = st;
    return -1;
  }
  return buf.name.Buffer != NULL && buf.name.Length == 24 &&
         wcsncmp(buf.name.Buffer, L"IoCompletion", 12) == 0;
}

static void tamper_post(HANDLE port, ULONG_PTR key, DWORD bytes, ULONG_PTR value, FILE *out,
                        const char *name) {
  BOOL ok = PostQueuedCompletionStatus(port, bytes, key, (LPOVERLAPPED)value);
  fprintf(out, "post %s %d %lu\n", name, ok ? 1 : 0, ok ? 0ul : (unsigned long)GetLastError());
}

/* Whether a dequeued packet is the kernel's (a job message: its byte
 * count a JOB_OBJECT_MSG_* id, its value a pid or 0) rather than one of
 * jobwarden's own (a small value: the control packets, e.g. an exit
 * watcher's JW_CTRL_EXITED with a pid as its byte count). Jobwarden's are
 * put back unchanged: the attacker wants the job's key, and the monitor
 * must not tell the difference. */
static int tamper_job_packet(HANDLE port, DWORD bytes, ULONG_PTR key, LPOVERLAPPED o) {
  if (bytes >= 1 && bytes <= 13 && ((ULONG_PTR)o == 0 || (ULONG_PTR)o >= 16))
    return 1;
  PostQueuedCompletionStatus(port, bytes, key, o);
  return 0;
}

/* tamper RESULT MARKER: run inside the job. Opens its parent (the process
 * playing jobwarden) with PROCESS_DUP_HANDLE, copies every handle value it
 * has and keeps the IoCompletion ones (by type name where NtQueryObject
 * answers, else by GetQueuedCompletionStatus's answer), learns the job's
 * key by dequeuing a job message (it starts short-lived children until one
 * of the candidate ports hands it one; jobwarden's own packets it puts
 * back), then posts: the old constant quit,
 * a quit under a guessed key, a quit under the learned key, and under the
 * learned key a NEW_PROCESS naming its parent, an EXIT_PROCESS naming
 * itself, an ACTIVE_PROCESS_ZERO, a PROCESS_MEMORY_LIMIT naming itself.
 * Writes what it achieved to RESULT (renamed into place), then waits for
 * MARKER to exist and exits 0. */
static int helper_tamper(int argc, char **argv) {
  char tmp[MAX_PATH + 8];
  FILE *out;
  DWORD parent = tamper_parent(), self = GetCurrentProcessId();
  HANDLE hp, cand[16], port = NULL;
  int n_cand = 0, by_type = 0, by_wait = 0, type_fail = 0, i, tries;
  LONG qerr = 0;
  ULONG_PTR v, key = 0;
  DWORD bytes = 0;
  ULONG_PTR got_value = 0;
  if (argc < 5)
    return 90;
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  out = fopen(tmp, "wb");
  if (out == NULL)
    return 91;
  fprintf(out, "parent %lu\nself %lu\n", (unsigned long)parent, (unsigned long)self);
  hp = OpenProcess(PROCESS_DUP_HANDLE, FALSE, parent);
  fprintf(out, "open_parent %d %lu\n", hp != NULL, hp ? 0ul : (unsigned long)GetLastError());
  for (v = 4; hp != NULL && v < 0x10000 && n_cand < 16; v += 4) {
    HANDLE h = NULL;
    int t;
    if (!DuplicateHandle(hp, (HANDLE)v, GetCurrentProcess(), &h, 0, FALSE, DUPLICATE_SAME_ACCESS))
      continue;
    t = tamper_is_port_by_type(h, &qerr);
    if (t < 0) {
      DWORD n = 0;
      ULONG_PTR k = 0;
      LPOVERLAPPED o = NULL;
      type_fail++;
      /* A port answers an empty wait with WAIT_TIMEOUT; other objects
       * with ERROR_INVALID_HANDLE. */
      t = !GetQueuedCompletionStatus(h, &n, &k, &o, 0) && GetLastError() == WAIT_TIMEOUT;
      by_wait += t;
    } else {
      by_type += t;
    }
    if (t)
      cand[n_cand++] = h;
    else
      CloseHandle(h);
  }
  fprintf(out, "ports %d by_type %d by_wait %d type_query_failures %d ntstatus 0x%08lX\n", n_cand,
          by_type, by_wait, type_fail, (unsigned long)qerr);
  /* Learn the key: the kernel posts a NEW_PROCESS and an EXIT_PROCESS for
   * each child; the monitor competes for them. */
  for (tries = 0; tries < 200 && port == NULL && n_cand > 0; tries++) {
    wchar_t cmd[1024];
    PROCESS_INFORMATION pi;
    tw_helper_cmdline(cmd, 1024, "exit 0");
    if (tw_spawn(cmd, 0, &pi) == 0) {
      CloseHandle(pi.hThread);
      /* Dequeue while the kernel posts (the child starts and exits). */
      while (port == NULL && WaitForSingleObject(pi.hProcess, 0) != WAIT_OBJECT_0) {
        for (i = 0; i < n_cand && port == NULL; i++) {
          LPOVERLAPPED o = NULL;
          if (GetQueuedCompletionStatus(cand[i], &bytes, &key, &o, 1) || o != NULL) {
            if (!tamper_job_packet(cand[i], bytes, key, o))
              continue; /* jobwarden's own: put back, the job's key is wanted */
            port = cand[i];
            got_value = (ULONG_PTR)o;
          }
        }
      }
      for (i = 0; i < n_cand && port == NULL; i++) {
        LPOVERLAPPED o = NULL;
        if (GetQueuedCompletionStatus(cand[i], &bytes, &key, &o, 20) || o != NULL) {
          if (!tamper_job_packet(cand[i], bytes, key, o))
            continue;
          port = cand[i];
          got_value = (ULONG_PTR)o;
        }
      }
      CloseHandle(pi.hProcess);
    }
  }
  fprintf(out, "dequeued %d tries %d message %lu value %lu\n", port != NULL, tries,
          (unsigned long)bytes, (unsigned long)got_value);
  if (port == NULL && n_cand > 0)
    port = cand[0];
  if (port != NULL) {
    tamper_post(port, (ULONG_PTR)0x4A57002, 0, 1, out, "old_quit");
    tamper_post(port, (ULONG_PTR)0x12345678, 0, 1, out, "guessed_quit");
    if (key != 0) {
      tamper_post(port, key, 0, 1, out, "learned_quit");
      tamper_post(port, key, JOB_OBJECT_MSG_NEW_PROCESS, parent, out, "new_process");
      tamper_post(port, key, JOB_OBJECT_MSG_EXIT_PROCESS, self, out, "exit_process");
      tamper_post(port, key, JOB_OBJECT_MSG_ACTIVE_PROCESS_ZERO, 0, out, "active_zero");
      tamper_post(port, key, JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT, self, out, "memory_limit");
    }
  }
  fprintf(out, "done\n");
  fclose(out);
  if (!MoveFileExA(tmp, argv[3], MOVEFILE_REPLACE_EXISTING))
    return 92;
  wait_file(argv[4], INFINITE);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Self-defence helpers (issue 9, part 1): the agent turns on jobwarden.    */
/* Each reports on stdout (the handle jobwarden passes on, which a Low-     */
/* integrity child can still write) in one WriteFile per line.              */
/* ------------------------------------------------------------------------ */

static void report(const char *fmt, ...) {
  char line[4096];
  va_list ap;
  int n;
  DWORD done;
  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), line, (DWORD)n, &done, NULL);
}

/* The owner's way round a process DACL (grant_everyone), reported:
 * "rewrite_open ERR" and, when the open worked, "rewrite_set ERR"; 0 when
 * the DACL was replaced. */
static int rewrite_parent_dacl(DWORD ppid) {
  int opened = 0;
  DWORD e = grant_everyone(ppid, &opened);
  report("rewrite_open %lu", opened ? 0ul : (unsigned long)e);
  if (opened)
    report("rewrite_set %lu", (unsigned long)e);
  return e == 0 ? 0 : -1;
}

/* open-parent: one OpenProcess per right on jobwarden; "open <NAME> <err>"
 * per right, err 0 when the open succeeded. */
static int helper_open_parent(void) {
  static const struct {
    const char *name;
    DWORD right;
  } rights[] = {{"PROCESS_TERMINATE", PROCESS_TERMINATE},
                {"PROCESS_DUP_HANDLE", PROCESS_DUP_HANDLE},
                {"PROCESS_VM_READ", PROCESS_VM_READ},
                {"PROCESS_CREATE_PROCESS", PROCESS_CREATE_PROCESS},
                {"WRITE_DAC", WRITE_DAC},
                {"PROCESS_QUERY_LIMITED_INFORMATION", PROCESS_QUERY_LIMITED_INFORMATION}};
  DWORD ppid = own_parent();
  size_t i;
  if (ppid == 0)
    return 80;
  report("parent %lu", (unsigned long)ppid);
  for (i = 0; i < sizeof(rights) / sizeof(rights[0]); i++) {
    HANDLE h = OpenProcess(rights[i].right, FALSE, ppid);
    report("open %s %lu", rights[i].name, h != NULL ? 0ul : (unsigned long)GetLastError());
    if (h != NULL)
      CloseHandle(h);
  }
  return 0;
}

/* kill-parent PIDFILE GOFILE: starts a grandchild (sleep), writes
 * "<own pid> <grandchild pid>" to PIDFILE, waits for GOFILE, then opens
 * jobwarden with PROCESS_TERMINATE and terminates it with exit code 0.
 * Reports "open <err>" and, if it got that far, "terminate <err>"; then
 * waits for the grandchild (it dies with the job, or the test kills it). */
static int helper_kill_parent(int argc, char **argv) {
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  char tmp[MAX_PATH + 8];
  FILE *f;
  DWORD ppid = own_parent();
  HANDLE h;
  if (argc < 5 || ppid == 0)
    return 81;
  tw_helper_cmdline(cmd, 1024, "sleep 60000");
  if (tw_spawn(cmd, 0, &pi) != 0)
    return 82;
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return 83;
  fprintf(f, "%lu %lu\n", (unsigned long)GetCurrentProcessId(), (unsigned long)pi.dwProcessId);
  fclose(f);
  if (!MoveFileExA(tmp, argv[3], MOVEFILE_REPLACE_EXISTING))
    return 84;
  if (wait_file(argv[4], 30000) != 0)
    return 85;
  h = OpenProcess(PROCESS_TERMINATE, FALSE, ppid);
  report("open %lu", h != NULL ? 0ul : (unsigned long)GetLastError());
  if (h == NULL && rewrite_parent_dacl(ppid) == 0) {
    h = OpenProcess(PROCESS_TERMINATE, FALSE, ppid);
    report("reopen %lu", h != NULL ? 0ul : (unsigned long)GetLastError());
  }
  if (h != NULL) {
    BOOL ok = TerminateProcess(h, 0);
    report("terminate %lu", ok ? 0ul : (unsigned long)GetLastError());
    CloseHandle(h);
  }
  WaitForSingleObject(pi.hProcess, 60000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0;
}

/* dup-job: opens jobwarden with PROCESS_DUP_HANDLE, copies every handle
 * value until one is the job this process is in, turns kill-on-close off
 * and breakaway on through the copy, and tries a child that breaks away.
 * Reports "open <err>", "job <handle value in jobwarden, 0 = not found>",
 * "set <err>", "breakaway <err>" and "escaped <0|1>" (the child was outside
 * every job; it is terminated at once). */
static int helper_dup_job(void) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  DWORD ppid = own_parent(), v, found = 0;
  HANDLE parent, job = NULL;
  wchar_t cmd[1024];
  PROCESS_INFORMATION pi;
  if (ppid == 0)
    return 86;
  parent = OpenProcess(PROCESS_DUP_HANDLE, FALSE, ppid);
  report("open %lu", parent != NULL ? 0ul : (unsigned long)GetLastError());
  if (parent == NULL && rewrite_parent_dacl(ppid) == 0) {
    parent = OpenProcess(PROCESS_DUP_HANDLE, FALSE, ppid);
    report("reopen %lu", parent != NULL ? 0ul : (unsigned long)GetLastError());
  }
  if (parent == NULL)
    return 0;
  for (v = 4; v < 0x4000 && job == NULL; v += 4) {
    HANDLE h = NULL;
    BOOL in = FALSE;
    if (!DuplicateHandle(parent, (HANDLE)(ULONG_PTR)v, GetCurrentProcess(), &h, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
      continue;
    if (IsProcessInJob(GetCurrentProcess(), h, &in) && in) {
      job = h;
      found = v;
    } else {
      CloseHandle(h);
    }
  }
  CloseHandle(parent);
  report("job %lu", (unsigned long)found);
  if (job == NULL)
    return 0;
  memset(&li, 0, sizeof(li));
  li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_BREAKAWAY_OK;
  report("set %lu", SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof(li))
                        ? 0ul
                        : (unsigned long)GetLastError());
  CloseHandle(job);
  tw_helper_cmdline(cmd, 1024, "sleep 60000");
  if (tw_spawn(cmd, CREATE_BREAKAWAY_FROM_JOB | CREATE_SUSPENDED, &pi) != 0) {
    report("breakaway %lu", (unsigned long)GetLastError());
    return 0;
  }
  {
    BOOL in = TRUE;
    IsProcessInJob(pi.hProcess, NULL, &in);
    report("breakaway 0");
    report("escaped %d", in ? 0 : 1);
  }
  TerminateProcess(pi.hProcess, 1);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0;
}

/* inherited: the handles this process holds with HANDLE_FLAG_INHERIT set
 * (an inherited handle keeps the flag: these are what it inherited) and
 * its three standard handles. Reports "std <in> <out> <err>" and
 * "inheritable <v>..." (values in hex). */
static int helper_inherited(void) {
  char list[2048] = "inheritable";
  DWORD v, flags, gap = 0;
  report("std 0x%lx 0x%lx 0x%lx", (unsigned long)(ULONG_PTR)GetStdHandle(STD_INPUT_HANDLE),
         (unsigned long)(ULONG_PTR)GetStdHandle(STD_OUTPUT_HANDLE),
         (unsigned long)(ULONG_PTR)GetStdHandle(STD_ERROR_HANDLE));
  /* Handle tables fill from the bottom: 4096 unused values in a row end
   * the scan. */
  for (v = 4; gap < 4096; v += 4) {
    if (!GetHandleInformation((HANDLE)(ULONG_PTR)v, &flags)) {
      gap += 4;
      continue;
    }
    gap = 0;
    if ((flags & HANDLE_FLAG_INHERIT) && strlen(list) + 16 < sizeof(list))
      snprintf(list + strlen(list), sizeof(list) - strlen(list), " 0x%lx", (unsigned long)v);
  }
  report("%s", list);
  return 0;
}

/* token-report: this process's own token, read independently of
 * jobwarden: "integrity <rid>", "privileges <name>...", "deny_only
 * <sid>...". */
static int helper_token_report(void) {
  HANDLE tok = NULL;
  BYTE buf[8192];
  DWORD len = 0, i;
  char line[3000];
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return 87;
  if (GetTokenInformation(tok, TokenIntegrityLevel, buf, sizeof(buf), &len)) {
    PSID sid = ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid;
    report("integrity 0x%lx",
           (unsigned long)*GetSidSubAuthority(sid, *GetSidSubAuthorityCount(sid) - 1));
  } else {
    report("integrity unavailable %lu", (unsigned long)GetLastError());
  }
  strcpy(line, "privileges");
  if (GetTokenInformation(tok, TokenPrivileges, buf, sizeof(buf), &len)) {
    TOKEN_PRIVILEGES *tp = (TOKEN_PRIVILEGES *)buf;
    for (i = 0; i < tp->PrivilegeCount; i++) {
      char name[128];
      DWORD n = sizeof(name);
      if (LookupPrivilegeNameA(NULL, &tp->Privileges[i].Luid, name, &n) &&
          strlen(line) + n + 2 < sizeof(line)) {
        strcat(line, " ");
        strcat(line, name);
      }
    }
  }
  report("%s", line);
  strcpy(line, "deny_only");
  if (GetTokenInformation(tok, TokenGroups, buf, sizeof(buf), &len)) {
    TOKEN_GROUPS *g = (TOKEN_GROUPS *)buf;
    for (i = 0; i < g->GroupCount; i++) {
      char *sid = NULL;
      if ((g->Groups[i].Attributes & SE_GROUP_USE_FOR_DENY_ONLY) &&
          ConvertSidToStringSidA(g->Groups[i].Sid, &sid)) {
        if (strlen(line) + strlen(sid) + 2 < sizeof(line)) {
          strcat(line, " ");
          strcat(line, sid);
        }
        LocalFree(sid);
      }
    }
  }
  report("%s", line);
  CloseHandle(tok);
  return 0;
}

static int helper_self_defense(int argc, char **argv, int *handled) {
  const char *mode = argv[2];
  *handled = 1;
  if (strcmp(mode, "open-parent") == 0)
    return helper_open_parent();
  if (strcmp(mode, "kill-parent") == 0)
    return helper_kill_parent(argc, argv);
  if (strcmp(mode, "dup-job") == 0)
    return helper_dup_job();
  if (strcmp(mode, "inherited") == 0)
    return helper_inherited();
  if (strcmp(mode, "token-report") == 0)
    return helper_token_report();
  *handled = 0;
  return 0;
}

/* --- Modes of wine.real.record (tests/win/test_record.c): attacks on the
 * record from inside the job. --------------------------------------------- */

/* Appends "NAME=ERR " for one attempt: 0 when it succeeded (then what it
 * opened is closed again at once, without writing). */
static void note(char *out, size_t size, const char *name, DWORD e) {
  size_t n = strlen(out);
  snprintf(out + n, size - n, "%s%s=%lu", n ? " " : "", name, (unsigned long)e);
}

static DWORD try_open(const wchar_t *path, DWORD access, DWORD disposition) {
  HANDLE h = CreateFileW(path, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                         disposition, FILE_ATTRIBUTE_NORMAL, NULL);
  DWORD e = GetLastError();
  if (h == INVALID_HANDLE_VALUE)
    return e ? e : 1;
  CloseHandle(h);
  return 0;
}

/* attack-file LOG RESULT SNAPSHOT: every way to rewrite the event file
 * LOG in place, then a plain read of it (what a tailer does), saved to
 * SNAPSHOT; RESULT gets "write=E trunc=E create=E delete=E move=E
 * disposition=E read=E" (Win32 errors, 0 = it worked). */
static int helper_attack_file(int argc, char **argv) {
  wchar_t log[TW_PATH_CHARS], moved[TW_PATH_CHARS + 8];
  char out[512] = "";
  HANDLE h;
  DWORD e;
  char *snap;
  size_t snap_len = 0;
  if (argc < 6 || !MultiByteToWideChar(CP_ACP, 0, argv[3], -1, log, TW_PATH_CHARS))
    return 90;
  swprintf(moved, TW_PATH_CHARS + 8, L"%ls.moved", log);
  note(out, sizeof(out), "write", try_open(log, GENERIC_WRITE, OPEN_EXISTING));
  note(out, sizeof(out), "trunc", try_open(log, GENERIC_WRITE, TRUNCATE_EXISTING));
  note(out, sizeof(out), "create", try_open(log, GENERIC_WRITE, CREATE_ALWAYS));
  note(out, sizeof(out), "delete", DeleteFileW(log) ? 0 : GetLastError());
  note(out, sizeof(out), "move",
       MoveFileExW(log, moved, MOVEFILE_REPLACE_EXISTING) ? 0 : GetLastError());
  /* Delete-on-close through a handle opened for DELETE: the open itself
   * must fail; had it worked, the disposition would be set. */
  h = CreateFileW(log, DELETE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, 0, NULL);
  if (h == INVALID_HANDLE_VALUE) {
    e = GetLastError();
  } else {
    FILE_DISPOSITION_INFO di;
    di.DeleteFile = TRUE;
    e = SetFileInformationByHandle(h, FileDispositionInfo, &di, sizeof(di)) ? 0 : GetLastError();
    CloseHandle(h);
    if (e != 0)
      e = 0x10000 | e; /* opened (itself a failure of the defence), then refused */
  }
  note(out, sizeof(out), "disposition", e);
  snap = tw_read_file(argv[3], &snap_len);
  note(out, sizeof(out), "read",
       snap != NULL && snap_len > 0 ? 0
       : GetLastError()             ? GetLastError()
                                    : 1);
  if (snap != NULL && write_file_atomic(argv[5], snap, snap_len) != 0)
    return 91;
  free(snap);
  return write_file_atomic(argv[4], out, strlen(out)) == 0 ? 0 : 92;
}

static void std_write(DWORD which, const char *s) {
  DWORD w;
  WriteFile(GetStdHandle(which), s, (DWORD)strlen(s), &w, NULL);
}

/* forge-output: what a program that shares jobwarden's event stream would
 * write into it: half a line, then a whole forged sandbox.job_end, on
 * stdout and on stderr in turn (TW_FORGED_OUTPUT is the exact sequence of
 * bytes, stdout and stderr interleaved as written). */
static int helper_forge_output(void) {
  static const char *const parts[][2] = TW_FORGED_PARTS;
  size_t i;
  for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    std_write(parts[i][0][0] == 'o' ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE, parts[i][1]);
  return 0;
}

/* pipe-reader NAME RESULT: connects to \\.\pipe\NAME as a reader from
 * inside the job and reads until the stream ends; RESULT gets
 * "open=E bytes=N end=E" and, after a newline, what it read. */
static int helper_pipe_reader(int argc, char **argv) {
  char path[300], head[128], *all = NULL;
  size_t len = 0, cap = 0;
  HANDLE h;
  DWORD open_e = 0, end_e = 0;
  int i;
  if (argc < 5)
    return 90;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", argv[3]);
  for (i = 0; i < 200; i++) {
    h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
      break;
    WaitNamedPipeA(path, 100);
  }
  if (h == INVALID_HANDLE_VALUE) {
    open_e = GetLastError();
  } else {
    for (;;) {
      char chunk[4096];
      DWORD got = 0;
      if (!ReadFile(h, chunk, sizeof(chunk), &got, NULL) || got == 0) {
        end_e = GetLastError();
        break;
      }
      if (len + got + 1 > cap) {
        cap = (len + got + 1) * 2;
        all = realloc(all, cap);
        if (all == NULL)
          return 91;
      }
      memcpy(all + len, chunk, got);
      len += got;
    }
    CloseHandle(h);
  }
  snprintf(head, sizeof(head), "open=%lu bytes=%lu end=%lu\n", (unsigned long)open_e,
           (unsigned long)len, (unsigned long)end_e);
  {
    size_t hl = strlen(head);
    char *buf = malloc(hl + len + 1);
    int rc;
    if (buf == NULL)
      return 91;
    memcpy(buf, head, hl);
    if (len)
      memcpy(buf + hl, all, len);
    rc = write_file_atomic(argv[4], buf, hl + len);
    free(buf);
    free(all);
    return rc == 0 ? 0 : 92;
  }
}

/* wait-file PATH: exits 0 once PATH exists (the test's signal). */
static int helper_wait_file(int argc, char **argv) {
  if (argc < 4)
    return 90;
  wait_file(argv[3], INFINITE);
  return 0;
}

/* flood N: starts N children at once (each `exit 0 flood-<i>-<tag>`, a
 * command line of its own), then waits for all of them. */
static int helper_flood(int argc, char **argv) {
  unsigned long n = argc > 3 ? strtoul(argv[3], NULL, 0) : 0, i, started = 0;
  unsigned long pad = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
  HANDLE *hs;
  static wchar_t cmd[32768];
  static char args[32000];
  if (n == 0 || n > 2000 || pad > 30000)
    return 90;
  hs = calloc(n, sizeof(HANDLE));
  if (hs == NULL)
    return 91;
  for (i = 0; i < n; i++) {
    PROCESS_INFORMATION pi;
    int k = snprintf(args, sizeof(args), "exit 0 " TW_FLOOD_TAG_FMT, i);
    if (pad > 0 && k > 0) {
      /* One more argument of PAD characters: big events. */
      args[k++] = ' ';
      memset(args + k, 'p', pad);
      args[k + (int)pad] = '\0';
    }
    tw_helper_cmdline(cmd, 32768, args);
    if (tw_spawn(cmd, 0, &pi) != 0)
      continue; /* counted by the test: every child it sees must be right */
    CloseHandle(pi.hThread);
    hs[started++] = pi.hProcess;
  }
  for (i = 0; i < started; i++) {
    WaitForSingleObject(hs[i], 60000);
    CloseHandle(hs[i]);
  }
  free(hs);
  return started == n ? 0 : 93;
}

/* attack-spool DIR RESULT SNAPSHOT: attack-file on the first segment of
 * the run directory jobwarden made under the spool root DIR (waits, at
 * most 10 s, until it exists: the first line is spooled when the program
 * starts). */
static int helper_attack_spool(int argc, char **argv) {
  char pattern[TW_PATH_CHARS], seg[TW_PATH_CHARS];
  char *args[6];
  WIN32_FIND_DATAA fd;
  HANDLE f;
  int i;
  if (argc < 6)
    return 90;
  for (i = 0; i < 1000; i++) {
    snprintf(pattern, sizeof(pattern), "%s\\*", argv[3]);
    f = FindFirstFileA(pattern, &fd);
    seg[0] = '\0';
    if (f != INVALID_HANDLE_VALUE) {
      do {
        if (fd.cFileName[0] != '.' && (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
          snprintf(seg, sizeof(seg), "%s\\%s\\00000001.seg", argv[3], fd.cFileName);
      } while (seg[0] == '\0' && FindNextFileA(f, &fd));
      FindClose(f);
    }
    if (seg[0] != '\0' && GetFileAttributesA(seg) != INVALID_FILE_ATTRIBUTES)
      break;
    Sleep(10); /* polling for the segment; bounded */
  }
  if (i == 1000)
    return 94;
  args[0] = argv[0];
  args[1] = argv[1];
  args[2] = "attack-file";
  args[3] = seg;
  args[4] = argv[4];
  args[5] = argv[5];
  return helper_attack_file(6, args);
}

/* pipe-reader-escaped NAME RESULT: starts `pipe-reader NAME RESULT.child`
 * as a child whose parent is this process's own parent (jobwarden) through
 * PROC_THREAD_ATTRIBUTE_PARENT_PROCESS, so that it is in no job, and
 * waits for it. RESULT: "first=E child=PID", where E is the error of the
 * first OpenProcess(PROCESS_CREATE_PROCESS) on jobwarden (5: its DACL
 * refused it, and the DACL was then rewritten through WRITE_DAC, a way only
 * Wine leaves open), or "first=E spoof=E" (the parent could not be opened
 * at all: nothing escaped) or "spawn=E". */
static int helper_pipe_reader_escaped(int argc, char **argv) {
  char out[64], args[1024];
  wchar_t cmd[2048];
  HANDLE parent = NULL;
  DWORD ppid, first;
  PROCESS_INFORMATION pi;
  if (argc < 5)
    return 90;
  ppid = own_parent();
  parent = ppid ? OpenProcess(PROCESS_CREATE_PROCESS, FALSE, ppid) : NULL;
  first = parent != NULL ? 0 : GetLastError();
  /* jobwarden's DACL refuses the direct way (5). The owner's way round it,
   * which only Wine leaves open (it ignores OWNER RIGHTS): rewrite the
   * DACL, then open. */
  if (parent == NULL && first == ERROR_ACCESS_DENIED && rewrite_parent_dacl(ppid) == 0)
    parent = OpenProcess(PROCESS_CREATE_PROCESS, FALSE, ppid);
  if (parent == NULL) {
    snprintf(out, sizeof(out), "first=%lu spoof=%lu", (unsigned long)first,
             (unsigned long)GetLastError());
    return write_file_atomic(argv[4], out, strlen(out)) == 0 ? 0 : 92;
  }
  snprintf(args, sizeof(args), "pipe-reader %s \"%s.child\"", argv[3], argv[4]);
  tw_helper_cmdline(cmd, 2048, args);
  if (tw_spawn_attr(cmd, 0, PROC_THREAD_ATTRIBUTE_PARENT_PROCESS, parent, &pi) != 0) {
    snprintf(out, sizeof(out), "spawn=%lu", (unsigned long)GetLastError());
  } else {
    snprintf(out, sizeof(out), "first=%lu child=%lu", (unsigned long)first,
             (unsigned long)pi.dwProcessId);
    WaitForSingleObject(pi.hProcess, 60000);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  CloseHandle(parent);
  return write_file_atomic(argv[4], out, strlen(out)) == 0 ? 0 : 92;
}

/* spew N: N lines TW_SPEW_FMT (index from 0) on stdout, written one
 * WriteFile each: far more than a pipe holds. */
static int helper_spew(int argc, char **argv) {
  unsigned long n = argc > 3 ? strtoul(argv[3], NULL, 0) : 0, i;
  for (i = 0; i < n; i++) {
    char line[128];
    DWORD w = 0;
    int len = snprintf(line, sizeof(line), TW_SPEW_FMT, i);
    if (!WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), line, (DWORD)len, &w, NULL) || w != (DWORD)len)
      return 91;
  }
  return 0;
}

/* Starts `wait-file GO pad` suspended, writes a U+0000 over the last unit
 * of its command line (inside the string's length, where no command line
 * has one) and resumes it: 0, or 81 creation, 82 parameter block not read,
 * 83 write refused (the child then terminated). */
static int start_nul_child(const char *go, PROCESS_INFORMATION *pi) {
  wchar_t cmd[TW_CMD_CHARS];
  char args[TW_CMD_CHARS];
  RTL_USER_PROCESS_PARAMETERS pp;
  void *at = NULL;
  int rc = 0;
  snprintf(args, sizeof(args), "wait-file \"%s\" pad", go);
  tw_helper_cmdline(cmd, TW_CMD_CHARS, args);
  if (tw_spawn(cmd, CREATE_SUSPENDED, pi) != 0)
    return 81;
  if (tw_params_read(pi->hProcess, &at, &pp) != 0 || pp.CommandLine.Length < 2)
    rc = 82;
  else if (tw_cmdline_put(pi->hProcess, &pp, pp.CommandLine.Length / sizeof(wchar_t) - 1, 0) != 0)
    rc = 83;
  if (rc != 0)
    TerminateProcess(pi->hProcess, 1);
  ResumeThread(pi->hThread);
  return rc;
}

/* nul-child MARKER GO: the attack on the record through a command line:
 * one such child; "<own pid> <child pid>" to MARKER once its command line
 * is rewritten, then waits for it. Exit 0; 80 arguments, 81..83 as
 * start_nul_child, 84 MARKER. */
static int helper_nul_child(int argc, char **argv) {
  char line[48];
  PROCESS_INFORMATION pi;
  int rc;
  if (argc < 5)
    return 80;
  rc = start_nul_child(argv[4], &pi);
  if (rc == 81)
    return rc;
  snprintf(line, sizeof(line), "%lu %lu\n", (unsigned long)GetCurrentProcessId(),
           (unsigned long)pi.dwProcessId);
  if (rc == 0 && write_file_atomic(argv[3], line, strlen(line)) != 0)
    rc = 84;
  WaitForSingleObject(pi.hProcess, INFINITE);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return rc;
}

/* nul-flood N PIDFILE GO: the same attack on the monitor's setup: N such
 * children (each slow to read: its command line is never ready), then one
 * ordinary child `wait-file GO payload`; "<own pid> <payload pid>" to
 * PIDFILE; waits for all. Exit 0; 80 arguments, 81..83 as start_nul_child,
 * 84 PIDFILE. */
static int helper_nul_flood(int argc, char **argv) {
  unsigned long n = argc > 3 ? strtoul(argv[3], NULL, 0) : 0, i, started = 0;
  HANDLE *hs;
  wchar_t cmd[TW_CMD_CHARS];
  char args[TW_CMD_CHARS], line[48];
  PROCESS_INFORMATION pi;
  int rc = 0;
  if (argc < 6 || n == 0 || n > 500)
    return 80;
  hs = calloc(n + 1, sizeof(HANDLE));
  if (hs == NULL)
    return 80;
  for (i = 0; i < n && rc == 0; i++) {
    rc = start_nul_child(argv[5], &pi);
    if (rc == 81)
      break;
    CloseHandle(pi.hThread);
    hs[started++] = pi.hProcess;
  }
  snprintf(args, sizeof(args), "wait-file \"%s\" payload", argv[5]);
  tw_helper_cmdline(cmd, TW_CMD_CHARS, args);
  if (rc == 0 && tw_spawn(cmd, 0, &pi) != 0)
    rc = 81;
  if (rc == 0) {
    CloseHandle(pi.hThread);
    hs[started++] = pi.hProcess;
    snprintf(line, sizeof(line), "%lu %lu\n", (unsigned long)GetCurrentProcessId(),
             (unsigned long)pi.dwProcessId);
    if (write_file_atomic(argv[4], line, strlen(line)) != 0)
      rc = 84;
  }
  for (i = 0; i < started; i++) {
    WaitForSingleObject(hs[i], INFINITE);
    CloseHandle(hs[i]);
  }
  free(hs);
  return rc;
}

/* fake-1359 MARKER EVENTS: stands in for jobwarden.exe in the kit's own
 * test of retry_1359: the first time (no MARKER yet) it makes MARKER, says
 * what jobwarden says when Wine fails its CreateProcessW with 1359 and
 * exits 125; after that it writes a root's process_start line to EVENTS
 * and exits 0. */
static int helper_fake_1359(int argc, char **argv) {
  static const char line[] = "{\"event\":\"sandbox.process_start\",\"rule\":\"root_process\"}\n";
  if (argc < 5)
    return 80;
  if (GetFileAttributesA(argv[3]) == INVALID_FILE_ATTRIBUTES) {
    if (write_file_atomic(argv[3], "1\n", 2) != 0)
      return 81;
    fprintf(stderr, "jobwarden: cannot start the program: CreateProcessW failed: Internal error "
                    "(Win32 error 1359)\n");
    return 125;
  }
  return write_file_atomic(argv[4], line, sizeof(line) - 1) == 0 ? 0 : 82;
}

static int record_helper(const char *mode, int argc, char **argv, int *rc) {
  if (strcmp(mode, "attack-spool") == 0)
    *rc = helper_attack_spool(argc, argv);
  else if (strcmp(mode, "attack-file") == 0)
    *rc = helper_attack_file(argc, argv);
  else if (strcmp(mode, "forge-output") == 0)
    *rc = helper_forge_output();
  else if (strcmp(mode, "pipe-reader") == 0)
    *rc = helper_pipe_reader(argc, argv);
  else if (strcmp(mode, "wait-file") == 0)
    *rc = helper_wait_file(argc, argv);
  else if (strcmp(mode, "flood") == 0)
    *rc = helper_flood(argc, argv);
  else if (strcmp(mode, "pipe-reader-escaped") == 0)
    *rc = helper_pipe_reader_escaped(argc, argv);
  else if (strcmp(mode, "spew") == 0)
    *rc = helper_spew(argc, argv);
  else if (strcmp(mode, "nul-child") == 0)
    *rc = helper_nul_child(argc, argv);
  else if (strcmp(mode, "nul-flood") == 0)
    *rc = helper_nul_flood(argc, argv);
  else if (strcmp(mode, "fake-1359") == 0)
    *rc = helper_fake_1359(argc, argv);
  else
    return 0;
  return 1;
}
/* --- end of wine.real.record's modes ---------------------------------------- */

/* --- Modes of the hardening round (wine.real.selfdefense threads,
 * wine.real.record's refusal flood). ------------------------------------- */

/* open-threads GOFILE: once GOFILE exists, every thread of the parent
 * (jobwarden) opened with THREAD_SUSPEND_RESUME and with THREAD_TERMINATE:
 * "thread TID SUSPEND_ERR TERMINATE_ERR" each (0 = granted: closed again
 * at once, unused), then "threads N". */
static int helper_open_threads(int argc, char **argv) {
  DWORD ppid = own_parent(), n = 0;
  HANDLE snap;
  THREADENTRY32 te;
  if (argc < 4 || ppid == 0)
    return 90;
  if (wait_file(argv[3], 60000) != 0)
    return 91;
  snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return 92;
  memset(&te, 0, sizeof(te));
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      DWORD e[2], i;
      static const DWORD rights[2] = {THREAD_SUSPEND_RESUME, THREAD_TERMINATE};
      if (te.th32OwnerProcessID != ppid)
        continue;
      for (i = 0; i < 2; i++) {
        HANDLE h = OpenThread(rights[i], FALSE, te.th32ThreadID);
        e[i] = h != NULL ? 0 : GetLastError();
        if (h != NULL)
          CloseHandle(h);
      }
      report("thread %lu %lu %lu", (unsigned long)te.th32ThreadID, (unsigned long)e[0],
             (unsigned long)e[1]);
      n++;
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  report("threads %lu", (unsigned long)n);
  return 0;
}

/* reader-flood NAME N: connects to \\.\pipe\NAME until N connections
 * were made, reads one byte from each and closes it; reports "connected
 * N", "refused R" (the read got nothing: the pipe was disconnected) and
 * "served S" (it got a byte). A busy or missing pipe is waited for
 * (WaitNamedPipe), at most 60 s in all. */
static int helper_reader_flood(int argc, char **argv) {
  char path[300];
  unsigned long want = argc > 4 ? strtoul(argv[4], NULL, 0) : 0, got = 0, refused = 0, served = 0;
  ULONGLONG end = GetTickCount64() + 60000;
  if (argc < 5 || want == 0)
    return 90;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", argv[3]);
  while (got < want && GetTickCount64() < end) {
    char c;
    DWORD n = 0;
    HANDLE h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
      /* Between two instances: wait for the acceptor's next one. */
      if (!WaitNamedPipeA(path, 1000) && GetLastError() == ERROR_FILE_NOT_FOUND)
        Sleep(1);
      continue;
    }
    got++;
    if (ReadFile(h, &c, 1, &n, NULL) && n == 1)
      served++;
    else
      refused++;
    CloseHandle(h);
  }
  report("connected %lu", got);
  report("refused %lu", refused);
  report("served %lu", served);
  return got == want ? 0 : 93;
}

static int harden_helper(const char *mode, int argc, char **argv, int *rc) {
  if (strcmp(mode, "open-threads") == 0)
    *rc = helper_open_threads(argc, argv);
  else if (strcmp(mode, "reader-flood") == 0)
    *rc = helper_reader_flood(argc, argv);
  else
    return 0;
  return 1;
}
/* --- end of the hardening round's modes ------------------------------------- */

int tw_is_helper(int argc, char **argv) {
  return argc >= 3 && strcmp(argv[1], "--helper") == 0;
}

/* ---- wine.report.real (the forensic report of a real run) --------------- */

/* report-mix FILE: the run the report test reads. FILE holds UTF-16LE
 * strings, each ended by a U+0000 unit; for string i it runs
 * `--helper exit I <string>` (the string as the rest of the child's
 * command line, exactly as given: quotes, control characters, lone
 * surrogates, markup), one after another. Then a child that exits with
 * 0xC0000409 (an NTSTATUS exit, an abnormal_exit violation), one that
 * really crashes (0xC0000005), and a `tree` child with a grandchild.
 * Exit 0, or 88 when FILE cannot be read, 89 when a creation failed. */
static int helper_report_mix(int argc, char **argv) {
  size_t len = 0, i, start = 0;
  char *buf;
  const wchar_t *units;
  wchar_t cmd[32768];
  DWORD code;
  unsigned long k = 0;
  if (argc < 4 || (buf = tw_read_file(argv[3], &len)) == NULL)
    return 88;
  units = (const wchar_t *)buf;
  for (i = 0; i < len / 2; i++) {
    int n;
    char args[32];
    if (units[i] != 0)
      continue;
    snprintf(args, sizeof(args), "exit %lu ", k++);
    tw_helper_cmdline(cmd, 32768, args);
    n = (int)wcslen(cmd);
    if (n + (int)(i - start) >= 32767) {
      free(buf);
      return 89;
    }
    memcpy(cmd + n, units + start, (i - start) * sizeof(wchar_t));
    cmd[n + (i - start)] = 0;
    start = i + 1;
    if (tw_run_wait(cmd, 60000, &code) != 0) {
      free(buf);
      return 89;
    }
  }
  free(buf);
  tw_helper_cmdline(cmd, 32768, "exit 0xC0000409");
  if (tw_run_wait(cmd, 60000, &code) != 0)
    return 89;
  tw_helper_cmdline(cmd, 32768, "crash");
  if (tw_run_wait(cmd, 60000, &code) != 0)
    return 89;
  {
    char args[600];
    snprintf(args, sizeof(args), "tree %s.tree 10", argv[3]);
    tw_helper_cmdline(cmd, 32768, args);
    if (tw_run_wait(cmd, 60000, &code) != 0)
      return 89;
  }
  return 0;
}

/* forge-exited RESULT MARKER CODE: the exit watcher's packet forged from
 * inside the job (wine.real.tamper, case forged_exit_signal_in_job).
 * Opens its parent (jobwarden) with PROCESS_DUP_HANDLE, going round its
 * DACL by rewriting it when the open is refused (Wine ignores OWNER
 * RIGHTS), and copies the first IoCompletion among its handle values.
 * Learns the control key from one of jobwarden's own packets: it starts
 * short-lived children (`exit 0`) and, while each starts and ends and for
 * FORGE_DRAIN_MS after (the exit watcher posts when the child's handle is
 * signaled), dequeues all that is queued at once, until a packet's value
 * is a small JW_CTRL_* constant (below 16: 1 quit, 2 request, 3 identity,
 * 4 exited, 5 setup; a job message's value is a pid or 0, and no member's
 * pid is that small). Every packet it takes, the kernel's and
 * jobwarden's, it puts back at once, unchanged and in order (it may take
 * one again: the counts are takings). Waits for each child's end. Then
 * posts JW_CTRL_EXITED (its own pid as the byte count) under that key,
 * then the setup worker's wake-up JW_CTRL_SETUP (byte count 0), and
 * writes to RESULT (renamed into place) "parent PID", "open ERR",
 * "rewrite ERR" (-1: not needed), "self PID", "ports N", "children N",
 * "took_kernel N", "took_control N VALUE" (VALUE: the first one's),
 * "put_back_failed N", "key_learned 0|1", "post_exited OK ERR",
 * "post_setup OK ERR"; waits
 * (120 s at most) for MARKER and exits with CODE. 90: arguments, 91:
 * RESULT. */
#define FORGE_DRAIN_MS 100
#define FORGE_CHILDREN 100
static int helper_forge_exited(int argc, char **argv) {
  char text[1024];
  wchar_t cmd[1024];
  DWORD parent = tamper_parent(), open_e, rewrite_e = (DWORD)-1, post_e = 0, took_value = 0;
  HANDLE hp, port = NULL;
  ULONG_PTR v, key = 0;
  int ports = 0, children = 0, kernel = 0, control = 0, lost = 0, opened = 0, posted = 0, n;
  int posted_setup = 0;
  DWORD post_setup_e = 0;
  LONG qerr = 0;
  if (argc < 6)
    return 90;
  hp = OpenProcess(PROCESS_DUP_HANDLE, FALSE, parent);
  open_e = hp != NULL ? 0 : GetLastError();
  if (hp == NULL) {
    rewrite_e = grant_everyone(parent, &opened);
    if (rewrite_e == 0)
      hp = OpenProcess(PROCESS_DUP_HANDLE, FALSE, parent);
  }
  for (v = 4; hp != NULL && v < 0x10000; v += 4) {
    HANDLE h = NULL;
    if (!DuplicateHandle(hp, (HANDLE)v, GetCurrentProcess(), &h, 0, FALSE, DUPLICATE_SAME_ACCESS))
      continue;
    if (tamper_is_port_by_type(h, &qerr) == 1 && ports++ == 0)
      port = h; /* kept: the port */
    else
      CloseHandle(h);
  }
  tw_helper_cmdline(cmd, 1024, "exit 0");
  while (port != NULL && key == 0 && children < FORGE_CHILDREN) {
    PROCESS_INFORMATION pi;
    ULONGLONG until = 0;
    if (tw_spawn(cmd, 0, &pi) != 0)
      break;
    children++;
    CloseHandle(pi.hThread);
    while (key == 0 && (until == 0 || GetTickCount64() < until)) {
      OVERLAPPED_ENTRY e[64];
      ULONG got = 0, i;
      if (until == 0 && WaitForSingleObject(pi.hProcess, 0) == WAIT_OBJECT_0)
        until = GetTickCount64() + FORGE_DRAIN_MS;
      /* Everything queued at once, put back in the same order: the
       * monitor sees its packets as they came. */
      if (!GetQueuedCompletionStatusEx(port, e, 64, &got, 1, FALSE))
        continue;
      for (i = 0; i < got; i++) {
        ULONG_PTR o = (ULONG_PTR)e[i].lpOverlapped;
        if (o >= 1 && o < 16 && key == 0) {
          key = e[i].lpCompletionKey;
          took_value = (DWORD)o;
        }
        control += o >= 1 && o < 16;
        kernel += o == 0 || o >= 16;
      }
      for (i = 0; i < got; i++)
        lost += !PostQueuedCompletionStatus(port, e[i].dwNumberOfBytesTransferred,
                                            e[i].lpCompletionKey, e[i].lpOverlapped);
    }
    /* Its exit is in the port before the forgery: the record has it. */
    WaitForSingleObject(pi.hProcess, 60000);
    CloseHandle(pi.hProcess);
  }
  if (key != 0) {
    posted = PostQueuedCompletionStatus(port, GetCurrentProcessId(), key, (LPOVERLAPPED)4);
    post_e = posted ? 0 : GetLastError();
    posted_setup = PostQueuedCompletionStatus(port, 0, key, (LPOVERLAPPED)5);
    post_setup_e = posted_setup ? 0 : GetLastError();
  }
  n = snprintf(
      text, sizeof(text),
      "parent %lu\nopen %lu\nrewrite %ld\nself %lu\nports %d\nchildren %d\ntook_kernel %d\n"
      "took_control %d %lu\nput_back_failed %d\nkey_learned %d\npost_exited %d %lu\n"
      "post_setup %d %lu\n",
      (unsigned long)parent, (unsigned long)open_e, (long)rewrite_e,
      (unsigned long)GetCurrentProcessId(), ports, children, kernel, control,
      (unsigned long)took_value, lost, key != 0, posted, (unsigned long)post_e, posted_setup,
      (unsigned long)post_setup_e);
  if (n < 0 || (size_t)n >= sizeof(text) || write_file_atomic(argv[3], text, (size_t)n) != 0)
    return 91;
  wait_file(argv[4], 120000);
  return (int)strtoul(argv[5], NULL, 0);
}

int tw_helper_main(int argc, char **argv) {
  const char *mode;
  if (!tw_is_helper(argc, argv))
    return 98;
  mode = argv[2];
  if (strcmp(mode, "exit") == 0 && argc > 3)
    return (int)strtoul(argv[3], NULL, 0);
  if (strcmp(mode, "crash") == 0) {
    /* No crash dialog: under Wine it needs a desktop, and when none runs
     * Wine starts explorer.exe as a child of the crashing process, inside
     * the job (docs/platform-support.md). The exit code is the same. */
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    *(volatile int *)(ULONG_PTR)0 = 1;
    return 95;
  }
  if (strcmp(mode, "spawn-rewriter") == 0 && argc > 4) {
    /* Starts `rewrite-after LOG MARK` (in the job, like this process) and
     * exits at once: with kill-on-close off the child outlives the run. */
    char args[2 * MAX_PATH + 64];
    wchar_t cmd[2048];
    PROCESS_INFORMATION pi;
    snprintf(args, sizeof(args), "rewrite-after \"%s\" \"%s\"", argv[3], argv[4]);
    tw_helper_cmdline(cmd, 2048, args);
    if (tw_spawn(cmd, 0, &pi) != 0)
      return 89;
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return 0;
  }
  if (strcmp(mode, "rewrite-after") == 0 && argc > 4) {
    /* The agent rewriting the record once jobwarden lets go of it: waits
     * until LOG opens for writing (jobwarden holds it sharing read only),
     * changes one byte of the third line's message, then writes MARK:
     * "rewritten" or "failed E". */
    HANDLE h = INVALID_HANDLE_VALUE;
    DWORD i, got = 0, e = 0;
    char buf[65536], *p = NULL;
    FILE *m;
    for (i = 0; i < 3000 && h == INVALID_HANDLE_VALUE; i++) {
      h = CreateFileA(argv[3], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
      if (h == INVALID_HANDLE_VALUE)
        Sleep(10); /* jobwarden still holds it: its run has not ended */
    }
    if (h != INVALID_HANDLE_VALUE && ReadFile(h, buf, sizeof(buf) - 1, &got, NULL)) {
      buf[got] = '\0';
      p = strchr(buf, '\n');
      p = p ? strchr(p + 1, '\n') : NULL;
      p = p ? strstr(p, "\"message\":\"") : NULL;
    }
    if (p != NULL) {
      LONG at = (LONG)(p - buf) + 11;
      char c = (char)(buf[at] ^ 0x01);
      DWORD put = 0;
      if (SetFilePointer(h, at, NULL, FILE_BEGIN) == INVALID_SET_FILE_POINTER ||
          !WriteFile(h, &c, 1, &put, NULL) || put != 1)
        e = GetLastError();
    } else {
      e = h == INVALID_HANDLE_VALUE ? GetLastError() : ERROR_INVALID_DATA;
    }
    if (h != INVALID_HANDLE_VALUE)
      CloseHandle(h);
    m = fopen(argv[4], "wb");
    if (m != NULL) {
      if (e == 0)
        fputs("rewritten", m);
      else
        fprintf(m, "failed %lu", (unsigned long)e);
      fclose(m);
    }
    return e == 0 ? 0 : 1;
  }
  if (strcmp(mode, "series-then-crash") == 0 && argc > 3) {
    /* Once MARK exists: three children `exit 0`, one after another, then
     * a crash (a record with starts, exits and an NTSTATUS exit). */
    wchar_t cmd[1024];
    DWORD code, i;
    for (i = 0; GetFileAttributesA(argv[3]) == INVALID_FILE_ATTRIBUTES; i++) {
      if (i > 3000)
        return 97;
      Sleep(10);
    }
    tw_helper_cmdline(cmd, 1024, "exit 0");
    for (i = 0; i < 3; i++)
      if (tw_run_wait(cmd, 10000, &code) != 0)
        return 96;
    SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    *(volatile int *)(ULONG_PTR)0 = 1;
    return 95;
  }
  if (strcmp(mode, "sleep") == 0 && argc > 3) {
    Sleep((DWORD)strtoul(argv[3], NULL, 0));
    return 0;
  }
  if (strcmp(mode, "print") == 0 && argc > 3) {
    printf("%s\n", argv[3]);
    fflush(stdout);
    return 0;
  }
  if (strcmp(mode, "series") == 0 && argc > 4) {
    /* N short-lived children, MS apart: a steady trickle of events. */
    unsigned long n = strtoul(argv[3], NULL, 0), ms = strtoul(argv[4], NULL, 0), i;
    wchar_t cmd[1024];
    tw_helper_cmdline(cmd, 1024, "exit 0");
    for (i = 0; i < n; i++) {
      DWORD code;
      if (tw_run_wait(cmd, 10000, &code) != 0)
        return 96;
      Sleep((DWORD)ms);
    }
    return 0;
  }
  if (strcmp(mode, "run-exe") == 0 && argc > 3) {
    /* Runs another program (a copy of a binary under another name) with
     * the rest of the arguments; its exit code is this helper's. */
    wchar_t cmd[2048];
    PROCESS_INFORMATION pi;
    int i, k = swprintf(cmd, 2048, L"\"%hs\"", argv[3]);
    for (i = 4; i < argc && k > 0 && k < 2000; i++)
      k += swprintf(cmd + k, 2048 - (size_t)k, L" %hs", argv[i]);
    if (tw_spawn(cmd, 0, &pi) != 0)
      return 91;
    return child_exit_rc(&pi);
  }
  if (strcmp(mode, "tree") == 0)
    return helper_tree(argc, argv);
  if (strcmp(mode, "series-sync") == 0)
    return helper_series_sync(argc, argv);
  if (strcmp(mode, "race-sync") == 0)
    return helper_race_sync(argc, argv);
  if (strcmp(mode, "race") == 0)
    return helper_race();
  if (strcmp(mode, "breakaway") == 0)
    return helper_breakaway();
  if (strcmp(mode, "spoof-parent") == 0)
    return helper_spoof_parent(argc, argv);
  if (strcmp(mode, "breakaway-child") == 0)
    return helper_breakaway_child(argc, argv);
  if (strcmp(mode, "jw-control") == 0)
    return helper_jw_control(argc, argv);
  if (strcmp(mode, "tamper") == 0)
    return helper_tamper(argc, argv);
  if (strcmp(mode, "forge-exited") == 0)
    return helper_forge_exited(argc, argv);
  if (strcmp(mode, "report-mix") == 0)
    return helper_report_mix(argc, argv);
  {
    int handled, rc = helper_self_defense(argc, argv, &handled);
    if (handled)
      return rc;
  }
  {
    int rc;
    if (record_helper(mode, argc, argv, &rc))
      return rc;
    if (harden_helper(mode, argc, argv, &rc))
      return rc;
  }
  if (strcmp(mode, "set-event") == 0 && argc > 3)
    return SetEvent((HANDLE)(ULONG_PTR)strtoull(argv[3], NULL, 0)) ? 0 : 1;
  fprintf(stderr, "unknown helper mode %s\n", mode);
  return 99;
}

char *tw_read_file(const char *path, size_t *len) {
  size_t n = 0;
  char *buf = jw_test_read_file(path, &n);
  if (len)
    *len = n;
  return buf;
}

json_t *tw_read_events(const char *path) {
  size_t len = 0;
  char *buf = tw_read_file(path, &len), *line, *nl;
  json_t *arr;
  int lineno = 0;
  if (buf == NULL) {
    fprintf(stderr, "%s: cannot read\n", path);
    return NULL;
  }
  if (len > 0 && buf[len - 1] != '\n') {
    fprintf(stderr, "%s: the last line is torn (no newline)\n", path);
    free(buf);
    return NULL;
  }
  arr = json_array();
  for (line = buf; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    json_error_t jerr;
    json_t *j = json_loadb(line, (size_t)(nl - line), 0, &jerr);
    lineno++;
    if (j == NULL || !json_is_object(j)) {
      fprintf(stderr, "%s:%d: not a JSON object: %s\n", path, lineno, jerr.text);
      json_decref(j);
      json_decref(arr);
      free(buf);
      return NULL;
    }
    json_array_append_new(arr, j);
  }
  free(buf);
  return arr;
}

json_t *tw_get(json_t *ev, const char *path) {
  return jw_test_json_at(ev, path); /* the portable tests' one (test_util.h) */
}

long long tw_int(json_t *ev, const char *path) {
  json_t *v = tw_get(ev, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

const char *tw_str(json_t *ev, const char *path) {
  return json_string_value(tw_get(ev, path));
}

const char *tw_enforcer_for(const char *action, const char *who) {
  if (action != NULL && (strcmp(action, "blocked") == 0 || strcmp(action, "terminated") == 0 ||
                         strcmp(action, "killed_job") == 0))
    return who;
  return NULL;
}

json_t *tw_filter(json_t *events, const char *event, const char *rule) {
  json_t *out = json_array(), *ev;
  size_t i;
  json_array_foreach(events, i, ev) {
    const char *e = tw_str(ev, "event"), *r = tw_str(ev, "rule");
    if (e && strcmp(e, event) == 0 && (rule == NULL || (r && strcmp(r, rule) == 0)))
      json_array_append(out, ev);
  }
  return out;
}

size_t tw_count(json_t *events, const char *event, const char *rule) {
  json_t *f = tw_filter(events, event, rule);
  size_t n = json_array_size(f);
  json_decref(f);
  return n;
}

int tw_read_pids(const char *pidfile, DWORD timeout_ms, DWORD *a, DWORD *b) {
  DWORD waited = 0;
  for (;;) {
    char *s = tw_read_file(pidfile, NULL);
    if (s != NULL) {
      unsigned long x = 0, y = 0;
      int n = sscanf(s, "%lu %lu", &x, &y);
      free(s);
      if (n == 2) {
        *a = (DWORD)x;
        *b = (DWORD)y;
        return 0;
      }
    }
    if (waited >= timeout_ms)
      return -1;
    Sleep(10);
    waited += 10;
  }
}

typedef LONG(NTAPI *tw_nt_query_fn)(HANDLE, PROCESSINFOCLASS, PVOID, ULONG, PULONG);

int tw_params_read(HANDLE h, void **at, RTL_USER_PROCESS_PARAMETERS *pp) {
  tw_nt_query_fn q = (tw_nt_query_fn)(void (*)(void))GetProcAddress(GetModuleHandleW(L"ntdll.dll"),
                                                                    "NtQueryInformationProcess");
  PROCESS_BASIC_INFORMATION pbi;
  PEB peb;
  SIZE_T n = 0;
  ULONG rl = 0;
  memset(&pbi, 0, sizeof(pbi));
  if (q == NULL || q(h, ProcessBasicInformation, &pbi, sizeof(pbi), &rl) < 0 ||
      !ReadProcessMemory(h, pbi.PebBaseAddress, &peb, sizeof(peb), &n) || n != sizeof(peb) ||
      peb.ProcessParameters == NULL ||
      !ReadProcessMemory(h, peb.ProcessParameters, pp, sizeof(*pp), &n) || n != sizeof(*pp))
    return -1;
  *at = peb.ProcessParameters;
  return 0;
}

int tw_cmdline_put(HANDLE h, const RTL_USER_PROCESS_PARAMETERS *pp, size_t index, wchar_t unit) {
  SIZE_T n = 0;
  return WriteProcessMemory(h, pp->CommandLine.Buffer + index, &unit, sizeof(unit), &n) &&
                 n == sizeof(unit)
             ? 0
             : -1;
}

int tw_cmdline_put_length(HANDLE h, void *at, USHORT len) {
  SIZE_T n = 0;
  return WriteProcessMemory(h,
                            (char *)at + offsetof(RTL_USER_PROCESS_PARAMETERS, CommandLine) +
                                offsetof(UNICODE_STRING, Length),
                            &len, sizeof(len), &n) &&
                 n == sizeof(len)
             ? 0
             : -1;
}

static HANDLE open_inheritable(const char *path, DWORD access, DWORD disposition) {
  SECURITY_ATTRIBUTES sa;
  wchar_t w[TW_PATH_CHARS];
  sa.nLength = sizeof(sa);
  sa.lpSecurityDescriptor = NULL;
  sa.bInheritHandle = TRUE;
  if (!MultiByteToWideChar(CP_ACP, 0, path, -1, w, TW_PATH_CHARS))
    return INVALID_HANDLE_VALUE;
  return CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa,
                     disposition, FILE_ATTRIBUTE_NORMAL, NULL);
}

/* Starts cmd in cwd with the three standard handles given (inheritable)
 * and `extra`, and no other handle inherited (PROC_THREAD_ATTRIBUTE_HANDLE_LIST).
 * The handles stay the caller's. 0, or -1 (said on stderr). */
static int spawn_std(const char *cmd, const char *cwd, HANDLE hin, HANDLE hout, HANDLE herr,
                     HANDLE extra, PROCESS_INFORMATION *pi) {
  wchar_t wcmd[TW_CMD_CHARS], wcwd[TW_PATH_CHARS];
  HANDLE list[4];
  STARTUPINFOEXW si;
  SIZE_T attr_size = 0;
  BOOL ok = FALSE;
  int tried = 0;

  if (!MultiByteToWideChar(CP_ACP, 0, cmd, -1, wcmd, TW_CMD_CHARS) ||
      !MultiByteToWideChar(CP_ACP, 0, cwd, -1, wcwd, TW_PATH_CHARS)) {
    fprintf(stderr, "cannot convert the command line: %s\n", cmd);
    return -1;
  }
  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = sizeof(si);
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = hin;
  si.StartupInfo.hStdOutput = hout;
  si.StartupInfo.hStdError = herr;
  list[0] = hin;
  list[1] = hout;
  list[2] = herr;
  list[3] = extra;
  InitializeProcThreadAttributeList(NULL, 1, 0, &attr_size);
  si.lpAttributeList = malloc(attr_size);
  if (hin != INVALID_HANDLE_VALUE && hout != INVALID_HANDLE_VALUE && herr != INVALID_HANDLE_VALUE &&
      si.lpAttributeList != NULL &&
      InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &attr_size)) {
    if (UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list,
                                  (extra ? 4 : 3) * sizeof(HANDLE), NULL, NULL)) {
      tried = 1; /* create_process says its own failure */
      ok =
          create_process(wcmd, TRUE, EXTENDED_STARTUPINFO_PRESENT, wcwd, &si.StartupInfo, pi, wcmd);
    }
    DeleteProcThreadAttributeList(si.lpAttributeList);
  }
  if (!ok && !tried)
    fprintf(stderr, "cannot start (Win32 error %lu): %s\n", (unsigned long)GetLastError(), cmd);
  free(si.lpAttributeList);
  return ok ? 0 : -1;
}

/* Opens the standard handles tw_spawn_redirected and tw_jw_start give a
 * run (stdout to out_handle when it is not NULL: then left as it is) and
 * starts it; closes what it opened. */
static int spawn_files(const char *cmd, const char *cwd, const char *out_path, HANDLE out_handle,
                       const char *err_path, HANDLE extra, PROCESS_INFORMATION *pi) {
  HANDLE hout = out_handle ? out_handle : open_inheritable(out_path, GENERIC_WRITE, CREATE_ALWAYS);
  HANDLE herr = open_inheritable(err_path, GENERIC_WRITE, CREATE_ALWAYS);
  HANDLE hin = open_inheritable("NUL", GENERIC_READ, OPEN_EXISTING);
  int rc = spawn_std(cmd, cwd, hin, hout, herr, extra, pi);
  if (hin != INVALID_HANDLE_VALUE)
    CloseHandle(hin);
  if (hout != INVALID_HANDLE_VALUE && out_handle == NULL)
    CloseHandle(hout);
  if (herr != INVALID_HANDLE_VALUE)
    CloseHandle(herr);
  return rc;
}

int tw_spawn_redirected(const char *cmd, const char *cwd, const char *out_path,
                        const char *err_path, HANDLE extra, PROCESS_INFORMATION *pi) {
  return spawn_files(cmd, cwd, out_path, NULL, err_path, extra, pi);
}

/* ------------------------------------------------------------------------ */
/* The test kit for runs of jobwarden.exe */
/* ------------------------------------------------------------------------ */

int tw_full_path(const char *in, char *out, size_t n) {
  wchar_t win[TW_PATH_CHARS], wout[TW_PATH_CHARS];
  DWORD k;
  size_t len;
  if (!MultiByteToWideChar(CP_ACP, 0, in, -1, win, TW_PATH_CHARS))
    return -1;
  k = GetFullPathNameW(win, TW_PATH_CHARS, wout, NULL);
  if (k == 0 || k >= TW_PATH_CHARS)
    return -1;
  if (!WideCharToMultiByte(CP_ACP, 0, wout, -1, out, (int)n, NULL, NULL))
    return -1;
  len = strlen(out);
  while (len > 3 && (out[len - 1] == '\\' || out[len - 1] == '/'))
    out[--len] = '\0';
  return 0;
}

int tw_test_args(int argc, char **argv, char *events, char *jw, char *self) {
  if (argc < 4 || tw_full_path(argv[2], events, TW_PATH_CHARS) != 0 ||
      tw_full_path(argv[3], jw, TW_PATH_CHARS) != 0)
    return -1;
  if (self != NULL &&
      !WideCharToMultiByte(CP_ACP, 0, tw_self(), -1, self, TW_PATH_CHARS, NULL, NULL))
    return -1;
  return 0;
}

int tw_test_setup(int argc, char **argv, const char *prefix, char *events, char *jw, char *self) {
  if (tw_test_args(argc, argv, events, jw, self) != 0) {
    fprintf(stderr, "usage: %s <tests/data dir> <events dir> <jobwarden.exe> [--case NAME]\n",
            argc > 0 ? argv[0] : "test");
    return -1;
  }
  CreateDirectoryA(events, NULL);
  tw_kit_set(jw, events, prefix);
  return 0;
}

void tw_case_path(char *buf, size_t n, const char *dir, const char *prefix, const char *tag,
                  const char *suffix) {
  snprintf(buf, n, "%s\\%s%s%s", dir, prefix, tag, suffix);
}

size_t tw_unseal(char *text, size_t len) {
  static const char pat[] = ",\"seal\":{";
  size_t in = 0, out = 0;
  while (in < len) {
    const char *nl = memchr(text + in, '\n', len - in);
    size_t end = nl ? (size_t)(nl - text) : len, cut = end, i;
    /* the last `,"seal":{` of the line, when the line ends with "}}" */
    if (end - in >= sizeof(pat) + 1 && text[end - 1] == '}' && text[end - 2] == '}')
      for (i = end - (sizeof(pat) - 1); i-- > in;)
        if (memcmp(text + i, pat, sizeof(pat) - 1) == 0) {
          cut = i;
          break;
        }
    memmove(text + out, text + in, cut - in);
    out += cut - in;
    if (cut != end)
      text[out++] = '}';
    if (nl != NULL)
      text[out++] = '\n';
    in = end + (nl != NULL);
  }
  if (out < len)
    text[out] = '\0';
  return out;
}

/* The test executable's defaults (tw_kit_set), borrowed. */
static const char *tw__kit_jw, *tw__kit_dir, *tw__kit_prefix;

void tw_kit_set(const char *jw, const char *dir, const char *prefix) {
  tw__kit_jw = jw;
  tw__kit_dir = dir;
  tw__kit_prefix = prefix;
}

static int tw__start_once(const tw_run_opts_t *o, tw_run_t *r) {
  char cmd[TW_CMD_CHARS];
  const char *exe = o->exe ? o->exe : tw__kit_jw, *dir = o->dir ? o->dir : tw__kit_dir;
  const char *prefix = o->prefix ? o->prefix : tw__kit_prefix, *args = o->args ? o->args : "";
  memset(r, 0, sizeof(*r));
  r->exit_code = (DWORD)-1;
  r->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
  r->kill_code = o->kill_code ? o->kill_code : 1;
  snprintf(r->tag, sizeof(r->tag), "%s", o->tag ? o->tag : "");
  if (exe == NULL || dir == NULL || prefix == NULL) {
    fprintf(stderr, "[%s] no program or directory for the run (tw_kit_set)\n", r->tag);
    return -1;
  }
  if (o->out_handle != NULL)
    r->out_path[0] = '\0'; /* its stdout is the caller's handle */
  else if (o->out_path != NULL)
    snprintf(r->out_path, sizeof(r->out_path), "%s", o->out_path);
  else
    tw_case_path(r->out_path, sizeof(r->out_path), dir, prefix, r->tag, ".stdout");
  tw_case_path(r->err_path, sizeof(r->err_path), dir, prefix, r->tag, ".stderr");
  if (o->events_path != NULL)
    snprintf(r->events_path, sizeof(r->events_path), "%s", o->events_path);
  snprintf(cmd, sizeof(cmd), "\"%s\" %s", exe, args);
  /* Every run of jobwarden.exe the kit starts is sealed with a key of its
   * own, <prefix><tag>.seal.key (made anew), unless the test seals it
   * itself: wine.seal.records verifies every sealed record of the suite
   * afterwards (docs/forensics.md). */
  {
    size_t el = strlen(exe);
    if (el >= 13 && _stricmp(exe + el - 13, "jobwarden.exe") == 0 &&
        strncmp(args, "run ", 4) == 0 && strstr(args, "--seal-key") == NULL) {
      char key[TW_PATH_CHARS];
      tw_case_path(key, sizeof(key), dir, prefix, r->tag, ".seal.key");
      DeleteFileA(key);
      snprintf(cmd, sizeof(cmd), "\"%s\" run --seal-key \"%s\" %s", exe, key, args + 4);
    }
  }
  r->started =
      spawn_files(cmd, dir, r->out_path, o->out_handle, r->err_path, o->extra, &r->pi) == 0;
  return r->started ? 0 : -1;
}

/* Watches a run (o->retry_1359) until it shows that it started its
 * program (its root's process_start in o->events_path) or it exits: 1
 * when it exited 125 naming Win32 error 1359 (then waited for). */
static int tw__met_1359(const tw_run_opts_t *o, tw_run_t *r) {
  ULONGLONG deadline = GetTickCount64() + r->timeout_ms;
  while (GetTickCount64() < deadline) {
    if (WaitForSingleObject(r->pi.hProcess, 10) == WAIT_OBJECT_0) {
      tw_jw_wait(r);
      return r->exit_code == 125 && strstr(r->err, "(Win32 error 1359)") != NULL;
    }
    if (o->events_path != NULL) {
      char *s = tw_read_file(o->events_path, NULL);
      int started = s != NULL && strstr(s, "\"rule\":\"root_process\"") != NULL;
      free(s);
      if (started)
        return 0;
    }
  }
  return 0;
}

int tw_jw_start(const tw_run_opts_t *o, tw_run_t *r) {
  int rc = tw__start_once(o, r);
  if (rc == 0 && o->retry_1359 && tw__met_1359(o, r)) {
    fprintf(stderr,
            "[%s] jobwarden met Wine's CreateProcessW error 1359 (docs/platform-support.md); "
            "running it once more\n",
            r->tag);
    tw_jw_free(r);
    if (o->events_path != NULL)
      DeleteFileA(o->events_path); /* the record is the second run's alone */
    rc = tw__start_once(o, r);
  }
  return rc;
}

/* Reads a whole file, "" when it is unreadable (NULL only when out of
 * memory). */
static char *tw__read_or_empty(const char *path, size_t *len) {
  char *s = tw_read_file(path, len);
  if (s == NULL) {
    s = calloc(1, 1);
    *len = 0;
  }
  return s;
}

/* The runs waited for in the current case (tw_kit_case_end). */
#define TW__CASE_RUNS 64
static struct {
  char tag[64];
  DWORD exit_code;
  int finished;
  char out_path[TW_PATH_CHARS], err_path[TW_PATH_CHARS];
} tw__case_runs[TW__CASE_RUNS];
static size_t tw__case_nruns, tw__case_dropped;

/* The records written in the current case (tw_kit_show_record). */
#define TW__CASE_RECORDS 8
#define TW__RECORD_TAIL  16384
static char tw__case_records[TW__CASE_RECORDS][TW_PATH_CHARS];
static size_t tw__case_nrecords;

void tw_kit_show_record(const char *path) {
  if (tw__case_nrecords < TW__CASE_RECORDS)
    snprintf(tw__case_records[tw__case_nrecords++], TW_PATH_CHARS, "%s", path);
}

static void tw__case_note(const tw_run_t *r) {
  if (tw__case_nruns == TW__CASE_RUNS) {
    tw__case_dropped++;
    return;
  }
  snprintf(tw__case_runs[tw__case_nruns].tag, sizeof(tw__case_runs[0].tag), "%s", r->tag);
  tw__case_runs[tw__case_nruns].exit_code = r->exit_code;
  tw__case_runs[tw__case_nruns].finished = r->finished;
  snprintf(tw__case_runs[tw__case_nruns].out_path, TW_PATH_CHARS, "%s", r->out_path);
  snprintf(tw__case_runs[tw__case_nruns].err_path, TW_PATH_CHARS, "%s", r->err_path);
  tw__case_nruns++;
  if (r->events_path[0] != '\0')
    tw_kit_show_record(r->events_path);
}

int tw_jw_wait(tw_run_t *r) {
  if (r->started && r->pi.hProcess != NULL) {
    if (WaitForSingleObject(r->pi.hProcess, r->timeout_ms) == WAIT_OBJECT_0) {
      r->finished = 1;
    } else {
      fprintf(stderr, "[%s] jobwarden did not exit within %lu ms: killed\n", r->tag,
              (unsigned long)r->timeout_ms);
      TerminateProcess(r->pi.hProcess, r->kill_code);
      WaitForSingleObject(r->pi.hProcess, 5000);
    }
    if (!tw_exit_code(r->pi.hProcess, &r->exit_code))
      r->exit_code = (DWORD)-1;
    CloseHandle(r->pi.hThread);
    CloseHandle(r->pi.hProcess);
    r->pi.hThread = r->pi.hProcess = NULL;
    tw__case_note(r);
  }
  tw_jw_free(r);
  r->out = tw__read_or_empty(r->out_path, &r->out_len);
  r->err = tw__read_or_empty(r->err_path, &r->err_len);
  if (r->events_path[0] != '\0')
    r->events = tw_read_events(r->events_path);
  return r->finished;
}

int tw_jw_run(const tw_run_opts_t *o, tw_run_t *r) {
  tw_jw_start(o, r);
  return tw_jw_wait(r);
}

void tw_jw_free(tw_run_t *r) {
  free(r->out);
  free(r->err);
  json_decref(r->events);
  r->out = r->err = NULL;
  r->events = NULL;
}

void tw_kit_case_end(const char *name, int failed) {
  size_t i;
  if (failed) {
    fprintf(stderr, "---- case %s failed\n", name);
    for (i = 0; i < tw__case_nruns; i++) {
      size_t n;
      char *out = tw__read_or_empty(tw__case_runs[i].out_path, &n);
      char *err = tw__read_or_empty(tw__case_runs[i].err_path, &n);
      fprintf(stderr, "--- run %s: exit 0x%08lX%s\n--- stdout:\n%s\n--- stderr:\n%s\n",
              tw__case_runs[i].tag, (unsigned long)tw__case_runs[i].exit_code,
              tw__case_runs[i].finished ? "" : " (killed)", out ? out : "", err ? err : "");
      free(out);
      free(err);
    }
    if (tw__case_dropped > 0)
      fprintf(stderr, "--- (%lu more runs)\n", (unsigned long)tw__case_dropped);
    for (i = 0; i < tw__case_nrecords; i++) {
      size_t n;
      char *rec = tw__read_or_empty(tw__case_records[i], &n);
      /* Its end: what the failed checks were about is the newest part. */
      const char *from = n > TW__RECORD_TAIL ? rec + n - TW__RECORD_TAIL : rec;
      fprintf(stderr, "--- record %s (%lu bytes%s):\n%s\n", tw__case_records[i], (unsigned long)n,
              from != rec ? ", its end" : "", from);
      free(rec);
    }
    fprintf(stderr, "----\n");
  }
  tw__case_nruns = tw__case_dropped = tw__case_nrecords = 0;
}

/* A SID as a string into out ("" when it does not convert). */
static void sid_text(PSID sid, char *out, size_t n) {
  char *s = NULL;
  out[0] = '\0';
  if (sid != NULL && ConvertSidToStringSidA(sid, &s)) {
    snprintf(out, n, "%s", s);
    LocalFree(s);
  }
}

DWORD tw_acl_read(HANDLE h, const char *path, int want_owner, tw_acl_t *a) {
  SECURITY_INFORMATION what = DACL_SECURITY_INFORMATION;
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  PACL dacl = NULL;
  SECURITY_DESCRIPTOR_CONTROL ctl = 0;
  DWORD rev = 0, i;
  memset(a, 0, sizeof(*a));
  if (want_owner)
    what |= OWNER_SECURITY_INFORMATION;
  a->error = h != NULL ? GetSecurityInfo(h, SE_KERNEL_OBJECT, what, want_owner ? &owner : NULL,
                                         NULL, &dacl, NULL, &sd)
                       : GetNamedSecurityInfoA(path, SE_FILE_OBJECT, what,
                                               want_owner ? &owner : NULL, NULL, &dacl, NULL, &sd);
  if (a->error != ERROR_SUCCESS || sd == NULL)
    return a->error;
  sid_text(owner, a->owner, sizeof(a->owner));
  a->have_control = GetSecurityDescriptorControl(sd, &ctl, &rev) != 0;
  a->is_protected = (ctl & SE_DACL_PROTECTED) != 0;
  a->have_dacl = dacl != NULL;
  if (dacl != NULL) {
    a->ace_count = dacl->AceCount;
    for (i = 0; i < dacl->AceCount && i < TW_ACL_ACES; i++) {
      ACCESS_ALLOWED_ACE *ace = NULL;
      if (!GetAce(dacl, i, (void **)&ace) || ace == NULL)
        continue;
      a->ace[i].read = 1;
      a->ace[i].type = ace->Header.AceType;
      a->ace[i].mask = ace->Mask;
      sid_text((PSID)&ace->SidStart, a->ace[i].sid, sizeof(a->ace[i].sid));
    }
  }
  LocalFree(sd);
  return a->error;
}

const char *tw_user_sid(void) {
  static char sid[TW_SID_CHARS];
  HANDLE tok;
  union {
    TOKEN_USER tu;
    unsigned char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  DWORD got = 0;
  if (sid[0] == '\0' && OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &got))
      sid_text(u.tu.User.Sid, sid, sizeof(sid));
    CloseHandle(tok);
  }
  return sid;
}

int tw_wait_pipe(const char *name, DWORD timeout_ms, DWORD poll_ms) {
  char path[300];
  ULONGLONG end = GetTickCount64() + timeout_ms;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  while (GetTickCount64() < end) {
    if (WaitNamedPipeA(path, 1) || GetLastError() != ERROR_FILE_NOT_FOUND)
      return 0;
    Sleep(poll_ms);
  }
  return -1;
}

/* Helper modes and utilities for the Windows tests (see helpers.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "test_util.h"

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

static int start(const wchar_t *cmdline, DWORD flags, PROCESS_INFORMATION *pi) {
  STARTUPINFOW si;
  wchar_t *cmd = _wcsdup(cmdline);
  BOOL ok;
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  ok = cmd != NULL && CreateProcessW(NULL, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, pi);
  free(cmd);
  return ok ? 0 : -1;
}

int tw_run_wait(const wchar_t *cmdline, DWORD timeout_ms, DWORD *exit_code) {
  PROCESS_INFORMATION pi;
  int rc = 0;
  if (start(cmdline, 0, &pi) != 0)
    return -1;
  if (WaitForSingleObject(pi.hProcess, timeout_ms) != WAIT_OBJECT_0) {
    TerminateProcess(pi.hProcess, 1);
    rc = -1;
  } else if (!GetExitCodeProcess(pi.hProcess, exit_code)) {
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
  if (start(cmd, 0, &pi) != 0)
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
  if (start(cmd, 0, &pi) != 0)
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
  if (start(cmd, CREATE_BREAKAWAY_FROM_JOB, &pi) != 0)
    return (int)GetLastError();
  TerminateProcess(pi.hProcess, 1);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 0x200;
}

/* ---- escapes (issue 9, section 3): attacks from inside the job ---------- */

/* "<a> <b>\n" to path, through a temporary name: a reader never sees half. */
static int write_pair(const char *path, DWORD a, DWORD b) {
  char tmp[MAX_PATH * 4 + 8];
  FILE *f;
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  f = fopen(tmp, "wb");
  if (f == NULL)
    return -1;
  fprintf(f, "%lu %lu\n", (unsigned long)a, (unsigned long)b);
  if (fclose(f) != 0)
    return -1;
  return MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
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

/* spoof-parent WHO PIDFILE THEN MODE [ARGS...]: starts `self --helper MODE
 * ARGS` with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming WHO, so that it
 * takes WHO's job instead of this one's. */
static int helper_spoof_parent(int argc, char **argv) {
  const char *who, *pidfile, *then;
  char args[1024] = "";
  wchar_t cmd[2048], kick[1024];
  DWORD parent_pid;
  HANDLE parent = NULL;
  PROCESS_INFORMATION sib, pi, kp;
  STARTUPINFOEXW si;
  SIZE_T size = 0;
  DWORD code = 0;
  int i, rc = 0;
  memset(&si, 0, sizeof(si));
  memset(&sib, 0, sizeof(sib));
  if (argc < 6)
    return 80;
  who = argv[3];
  pidfile = argv[4];
  then = argv[5];
  for (i = 6; i < argc; i++) {
    strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
    strncat(args, " ", sizeof(args) - strlen(args) - 1);
  }
  if (strcmp(who, "parent") == 0) {
    parent_pid = own_parent();
  } else if (strcmp(who, "member") == 0) {
    /* A sibling started the ordinary way: a member of this job. */
    tw_helper_cmdline(cmd, 2048, "sleep 60000");
    if (start(cmd, 0, &sib) != 0)
      return 81;
    parent_pid = sib.dwProcessId;
  } else {
    parent_pid = (DWORD)strtoul(who, NULL, 0);
  }
  parent = OpenProcess(PROCESS_CREATE_PROCESS, FALSE, parent_pid);
  if (parent == NULL) {
    rc = 82;
    goto done;
  }
  si.StartupInfo.cb = sizeof(si);
  InitializeProcThreadAttributeList(NULL, 1, 0, &size);
  si.lpAttributeList = malloc(size);
  if (si.lpAttributeList == NULL ||
      !InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size) ||
      !UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_PARENT_PROCESS,
                                 &parent, sizeof(parent), NULL, NULL)) {
    rc = 83;
    goto done;
  }
  tw_helper_cmdline(cmd, 2048, args);
  if (!CreateProcessW(NULL, cmd, NULL, NULL, FALSE, EXTENDED_STARTUPINFO_PRESENT, NULL, NULL,
                      &si.StartupInfo, &pi)) {
    DeleteProcThreadAttributeList(si.lpAttributeList);
    rc = 84;
    goto done;
  }
  DeleteProcThreadAttributeList(si.lpAttributeList);
  if (write_pair(pidfile, parent_pid, pi.dwProcessId) != 0)
    rc = 85;
  if (rc == 0 && strcmp(then, "kick") == 0) {
    /* A child inside the job: a NEW_PROCESS on the port. */
    tw_helper_cmdline(kick, 1024, "exit 0");
    if (start(kick, 0, &kp) != 0) {
      rc = 86;
    } else {
      WaitForSingleObject(kp.hProcess, 20000);
      CloseHandle(kp.hThread);
      CloseHandle(kp.hProcess);
    }
  }
  if (rc == 0 && strcmp(then, "exit") != 0) {
    /* How the escape ended is this process's exit code; jobwarden's kill
     * (0xC000013A) becomes 58, so that this process does not look killed. */
    if (WaitForSingleObject(pi.hProcess, 60000) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code))
      rc = 87;
    else
      rc = code == 0xC000013Au ? 58 : (int)code;
  }
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
done:
  free(si.lpAttributeList);
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
  DWORD code = 0;
  int i, rc = 0;
  if (argc < 5)
    return 80;
  for (i = 4; i < argc; i++) {
    strncat(args, argv[i], sizeof(args) - strlen(args) - 2);
    strncat(args, " ", sizeof(args) - strlen(args) - 1);
  }
  tw_helper_cmdline(cmd, 2048, args);
  if (start(cmd, CREATE_BREAKAWAY_FROM_JOB, &pi) != 0)
    return 84;
  if (write_pair(argv[3], GetCurrentProcessId(), pi.dwProcessId) != 0)
    rc = 85;
  if (rc == 0) {
    if (WaitForSingleObject(pi.hProcess, 60000) != WAIT_OBJECT_0 ||
        !GetExitCodeProcess(pi.hProcess, &code))
      rc = 87;
    else
      rc = code == 0xC000013Au ? 58 : (int)code;
  }
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return rc;
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

int tw_is_helper(int argc, char **argv) {
  return argc >= 3 && strcmp(argv[1], "--helper") == 0;
}

int tw_helper_main(int argc, char **argv) {
  const char *mode;
  if (!tw_is_helper(argc, argv))
    return 98;
  mode = argv[2];
  if (strcmp(mode, "exit") == 0 && argc > 3)
    return (int)strtoul(argv[3], NULL, 0);
  if (strcmp(mode, "crash") == 0) {
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
  if (strcmp(mode, "tree") == 0)
    return helper_tree(argc, argv);
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
  char key[64];
  const char *p = path;
  while (ev != NULL && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof(key))
      return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    ev = json_object_get(ev, key);
    p += n + (dot ? 1 : 0);
  }
  return ev;
}

long long tw_int(json_t *ev, const char *path) {
  json_t *v = tw_get(ev, path);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

const char *tw_str(json_t *ev, const char *path) {
  return json_string_value(tw_get(ev, path));
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

int tw_spawn_redirected(const char *cmd, const char *cwd, const char *out_path,
                        const char *err_path, HANDLE extra, PROCESS_INFORMATION *pi) {
  wchar_t wcmd[TW_CMD_CHARS], wcwd[TW_PATH_CHARS];
  HANDLE hin, hout, herr, list[4];
  STARTUPINFOEXW si;
  SIZE_T attr_size = 0;
  BOOL ok = FALSE;

  if (!MultiByteToWideChar(CP_ACP, 0, cmd, -1, wcmd, TW_CMD_CHARS) ||
      !MultiByteToWideChar(CP_ACP, 0, cwd, -1, wcwd, TW_PATH_CHARS)) {
    fprintf(stderr, "cannot convert the command line: %s\n", cmd);
    return -1;
  }
  hout = open_inheritable(out_path, GENERIC_WRITE, CREATE_ALWAYS);
  herr = open_inheritable(err_path, GENERIC_WRITE, CREATE_ALWAYS);
  hin = open_inheritable("NUL", GENERIC_READ, OPEN_EXISTING);

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
                                  (extra ? 4 : 3) * sizeof(HANDLE), NULL, NULL))
      ok = CreateProcessW(NULL, wcmd, NULL, NULL, TRUE, EXTENDED_STARTUPINFO_PRESENT, NULL, wcwd,
                          &si.StartupInfo, pi);
    DeleteProcThreadAttributeList(si.lpAttributeList);
  }
  if (!ok)
    fprintf(stderr, "cannot start (Win32 error %lu): %s\n", (unsigned long)GetLastError(), cmd);
  free(si.lpAttributeList);
  if (hin != INVALID_HANDLE_VALUE)
    CloseHandle(hin);
  if (hout != INVALID_HANDLE_VALUE)
    CloseHandle(hout);
  if (herr != INVALID_HANDLE_VALUE)
    CloseHandle(herr);
  return ok ? 0 : -1;
}

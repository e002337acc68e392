/* `jobwarden probe`: the user's proof that a policy is enforced where it
 * runs. Each probe builds a job from the policy with jobwarden's own job and
 * spawn code (jw_job_create, jw_spawn: the path `run` takes), starts
 * jobwarden.exe itself inside it as a canary (`--probe-canary KIND ...`)
 * that tries exactly one forbidden thing, and reads back what happened.
 *
 * The canary answers with one line on its standard output (a pipe only the
 * prober reads): "<word> <win32 error> <sentence>", word = blocked, allowed,
 * skipped, ready or error. A canary the kernel kills (a CPU-time limit, kill
 * on close) answers with its exit code instead. Every wait is bounded: a
 * canary that does not answer in time is terminated with its job. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "win/win.h"

#define PROBE_MAX_CHILDREN    32      /* the spawn probe starts at most this many */
#define PROBE_CPU_MAX_MS      10000   /* CPU limits above this are not probed */
#define PROBE_CPU_MARGIN_MS   1000    /* spin this much CPU time past the limit */
#define PROBE_MEMORY_MARGIN   1048576 /* allocate this much past the limit */
#define PROBE_WAIT_MS         20000   /* a canary's answer, at most */
#define PROBE_KILL_WAIT_MS    5000    /* kill-on-close: how long the kill may take */
#define PROBE_HOLD_MS         60000   /* kill-on-close canary: how long it lives */
#define PROBE_CHILD_SLEEP_MS  30000   /* spawn canary's children */
#define PROBE_CLIPBOARD_TRIES 25      /* OpenClipboard retries, 20 ms apart */
#define PROBE_LINE_MAX        1024
#define PROBE_WINDOW_CLASS    L"jobwarden-probe-window"
#define PROBE_CLIP_MARKER     L"jobwarden probe canary"
#define PROBE_SELF_UNITS      32768

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum { PROBE_SKIPPED = 0, PROBE_BLOCKED, PROBE_ALLOWED } probe_result_t;

typedef struct probe_s {
  const char *name;  /* "spawn", "ui.global_atoms"... */
  const char *field; /* the policy field it checks; NULL: jobwarden's own behaviour */
  int claimed;       /* the policy (or jobwarden) claims the restriction */
  char claim[96];    /* what is claimed, for humans */
  probe_result_t result;
  char reason[480];
  const char *error_kind; /* NULL, "win32" or "exit_code" */
  uint32_t error_code;
} probe_t;

static const char *result_name(probe_result_t r) {
  return r == PROBE_BLOCKED ? "blocked" : r == PROBE_ALLOWED ? "allowed" : "skipped";
}

/* Names of the Win32 errors a probe can meet; others are shown by number
 * and system text only. */
static const struct {
  uint32_t code;
  const char *name;
} win32_names[] = {
    {0, "ERROR_SUCCESS"},
    {1, "ERROR_INVALID_FUNCTION"},
    {2, "ERROR_FILE_NOT_FOUND"},
    {5, "ERROR_ACCESS_DENIED"},
    {6, "ERROR_INVALID_HANDLE"},
    {8, "ERROR_NOT_ENOUGH_MEMORY"},
    {14, "ERROR_OUTOFMEMORY"},
    {87, "ERROR_INVALID_PARAMETER"},
    {120, "ERROR_CALL_NOT_IMPLEMENTED"},
    {1400, "ERROR_INVALID_WINDOW_HANDLE"},
    {1418, "ERROR_CLIPBOARD_NOT_OPEN"},
    {1455, "ERROR_COMMITMENT_LIMIT"},
    {1459, "ERROR_REQUIRES_INTERACTIVE_WINDOWSTATION"},
    {1816, "ERROR_NOT_ENOUGH_QUOTA"},
};

static const char *win32_name(uint32_t code) {
  size_t i;
  for (i = 0; i < sizeof(win32_names) / sizeof(win32_names[0]); i++)
    if (win32_names[i].code == code)
      return win32_names[i].name;
  return NULL;
}

static void set_result(probe_t *p, probe_result_t r, const char *kind, uint32_t code,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void set_result(probe_t *p, probe_result_t r, const char *kind, uint32_t code,
                       const char *fmt, ...) {
  va_list ap;
  p->result = r;
  p->error_kind = kind;
  p->error_code = code;
  va_start(ap, fmt);
  vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
  va_end(ap);
}

/* "512M", "1G", "1536K", "1000 bytes": the exact value, largest unit. */
static void format_size(uint64_t v, char *buf, size_t size) {
  if (v % (1ull << 40) == 0)
    snprintf(buf, size, "%lluT", (unsigned long long)(v >> 40));
  else if (v % (1ull << 30) == 0)
    snprintf(buf, size, "%lluG", (unsigned long long)(v >> 30));
  else if (v % (1ull << 20) == 0)
    snprintf(buf, size, "%lluM", (unsigned long long)(v >> 20));
  else if (v % 1024 == 0)
    snprintf(buf, size, "%lluK", (unsigned long long)(v >> 10));
  else
    snprintf(buf, size, "%llu bytes", (unsigned long long)v);
}

static void format_duration(uint64_t ms, char *buf, size_t size) {
  if (ms % 3600000 == 0)
    snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
  else if (ms % 60000 == 0)
    snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
  else if (ms % 1000 == 0)
    snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
  else
    snprintf(buf, size, "%llums", (unsigned long long)ms);
}

/* ------------------------------------------------------------------------ */
/* The canary side: jobwarden.exe --probe-canary KIND [ARGS]                 */
/* ------------------------------------------------------------------------ */

/* Writes "<word> <code> <sentence>\n" to stdout in one WriteFile. */
static void canary_say(const char *word, DWORD code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void canary_say(const char *word, DWORD code, const char *fmt, ...) {
  char line[PROBE_LINE_MAX];
  int n, m;
  va_list ap;
  DWORD w;
  n = snprintf(line, sizeof(line), "%s %lu ", word, (unsigned long)code);
  if (n < 0 || (size_t)n >= sizeof(line) - 2)
    return;
  va_start(ap, fmt);
  m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (m < 0)
    return;
  n += m;
  if ((size_t)n > sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), line, (DWORD)n, &w, NULL);
}

/* Starts this executable again as `--probe-canary sleep MS`, inheriting
 * nothing, optionally suspended or breaking away. */
static BOOL canary_start_self(DWORD flags, DWORD sleep_ms, PROCESS_INFORMATION *pi) {
  static wchar_t self[PROBE_SELF_UNITS];
  wchar_t cmd[PROBE_SELF_UNITS + 64];
  STARTUPINFOW si;
  DWORD n = GetModuleFileNameW(NULL, self, PROBE_SELF_UNITS);
  if (n == 0 || n >= PROBE_SELF_UNITS)
    return FALSE;
  swprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --probe-canary sleep %lu", self,
           (unsigned long)sleep_ms);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  memset(pi, 0, sizeof(*pi));
  return CreateProcessW(self, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, pi);
}

/* Starts up to n children that stay alive; the n-th one is one more than an
 * active-process limit of n allows (the canary itself is the first). */
static int canary_spawn(unsigned long n) {
  HANDLE kids[PROBE_MAX_CHILDREN];
  unsigned long k = 0, i;
  DWORD e = 0;
  PROCESS_INFORMATION pi;
  if (n == 0 || n > PROBE_MAX_CHILDREN) {
    canary_say("error", 0, "bad child count");
    return 2;
  }
  while (k < n) {
    if (!canary_start_self(0, PROBE_CHILD_SLEEP_MS, &pi)) {
      e = GetLastError();
      break;
    }
    CloseHandle(pi.hThread);
    kids[k++] = pi.hProcess;
  }
  for (i = 0; i < k; i++) {
    TerminateProcess(kids[i], 0);
    WaitForSingleObject(kids[i], 5000);
    CloseHandle(kids[i]);
  }
  if (k < n)
    canary_say("blocked", e,
               "with %lu process(es) active in the job, starting one more failed (CreateProcessW)",
               k + 1);
  else
    canary_say("allowed", 0, "%lu process(es) were active in the job at once (CreateProcessW)",
               n + 1);
  return 0;
}

static int canary_breakaway(void) {
  PROCESS_INFORMATION pi;
  if (!canary_start_self(CREATE_SUSPENDED | CREATE_BREAKAWAY_FROM_JOB, 0, &pi)) {
    canary_say("blocked", GetLastError(),
               "CreateProcessW with CREATE_BREAKAWAY_FROM_JOB failed: the child stays in the job");
    return 0;
  }
  /* It never ran: it was created suspended. */
  TerminateProcess(pi.hProcess, 0);
  WaitForSingleObject(pi.hProcess, 5000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  canary_say("allowed", 0,
             "CreateProcessW with CREATE_BREAKAWAY_FROM_JOB succeeded: a child left the job");
  return 0;
}

static int canary_alloc(unsigned long long bytes) {
  void *p;
  if (bytes == 0 || bytes > (unsigned long long)SIZE_MAX) {
    canary_say("error", 0, "bad size");
    return 2;
  }
  p = VirtualAlloc(NULL, (SIZE_T)bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (p == NULL) {
    canary_say("blocked", GetLastError(), "committing %llu bytes failed (VirtualAlloc)", bytes);
    return 0;
  }
  VirtualFree(p, 0, MEM_RELEASE);
  canary_say("allowed", 0, "committed %llu bytes (more than the limit) in one VirtualAlloc", bytes);
  return 0;
}

static int own_user_ms(unsigned long long *ms) {
  FILETIME c, x, k, u;
  if (!GetProcessTimes(GetCurrentProcess(), &c, &x, &k, &u))
    return -1;
  *ms = (((unsigned long long)u.dwHighDateTime << 32) | u.dwLowDateTime) / 10000u;
  return 0;
}

/* Burns user-mode CPU time until target_ms is used, or wall_ms passed. */
static int canary_spin(unsigned long long target_ms, unsigned long long wall_ms) {
  ULONGLONG start = GetTickCount64();
  unsigned long long used = 0;
  volatile unsigned long sink = 0;
  unsigned long i;
  for (;;) {
    if (own_user_ms(&used) != 0) {
      canary_say("error", GetLastError(), "GetProcessTimes failed");
      return 2;
    }
    if (used >= target_ms)
      break;
    if (GetTickCount64() - start > wall_ms) {
      canary_say("skipped", 0,
                 "the canary got only %llu ms of CPU time in %llu ms: the machine is too busy "
                 "to prove the limit",
                 used, (unsigned long long)(GetTickCount64() - start));
      return 0;
    }
    for (i = 0; i < 2000000ul; i++)
      sink += i;
  }
  canary_say("allowed", 0, "used at least %llu ms of user-mode CPU time and was not stopped",
             target_ms);
  return 0;
}

static int canary_window(unsigned long long value) {
  HWND h = (HWND)(uintptr_t)value;
  wchar_t cls[64];
  int n = GetClassNameW(h, cls, 64);
  if (n == 0) {
    canary_say("blocked", GetLastError(),
               "GetClassNameW on a window of a process outside the job failed");
    return 0;
  }
  if (wcscmp(cls, PROBE_WINDOW_CLASS) != 0) {
    canary_say("blocked", 0, "the handle of the window outside the job named another window");
    return 0;
  }
  canary_say("allowed", 0,
             "GetClassNameW read the class of a window owned by a process outside the job");
  return 0;
}

static int canary_clipboard_read(void) {
  UINT fmt;
  DWORD e;
  if (!OpenClipboard(NULL)) {
    canary_say("blocked", GetLastError(), "OpenClipboard failed");
    return 0;
  }
  SetLastError(0);
  fmt = EnumClipboardFormats(0);
  if (fmt == 0) {
    e = GetLastError();
    CloseClipboard();
    canary_say("blocked", e,
               "the clipboard looked empty from inside the job, though it holds data");
    return 0;
  }
  if (GetClipboardData(fmt) == NULL) {
    e = GetLastError();
    CloseClipboard();
    canary_say("blocked", e, "GetClipboardData failed");
    return 0;
  }
  CloseClipboard();
  canary_say("allowed", 0, "GetClipboardData read the clipboard");
  return 0;
}

static HWND canary_make_window(void) {
  WNDCLASSEXW wc;
  memset(&wc, 0, sizeof(wc));
  wc.cbSize = sizeof(wc);
  wc.lpfnWndProc = DefWindowProcW;
  wc.hInstance = GetModuleHandleW(NULL);
  wc.lpszClassName = PROBE_WINDOW_CLASS;
  if (!RegisterClassExW(&wc) && GetLastError() != ERROR_CLASS_ALREADY_EXISTS)
    return NULL;
  return CreateWindowExW(0, PROBE_WINDOW_CLASS, L"jobwarden probe", 0, 0, 0, 0, 0, HWND_MESSAGE,
                         NULL, wc.hInstance, NULL);
}

static int canary_clipboard_write(void) {
  HWND w = canary_make_window();
  HGLOBAL g;
  DWORD e;
  void *p;
  if (w == NULL) {
    canary_say("error", GetLastError(), "cannot create a window to own the clipboard");
    return 2;
  }
  g = GlobalAlloc(GMEM_MOVEABLE, sizeof(PROBE_CLIP_MARKER));
  p = g ? GlobalLock(g) : NULL;
  if (p == NULL) {
    canary_say("error", GetLastError(), "out of memory");
    return 2;
  }
  memcpy(p, PROBE_CLIP_MARKER, sizeof(PROBE_CLIP_MARKER));
  GlobalUnlock(g);
  if (!OpenClipboard(w)) {
    e = GetLastError();
    GlobalFree(g);
    canary_say("blocked", e, "OpenClipboard failed");
    return 0;
  }
  if (!EmptyClipboard()) {
    e = GetLastError();
    CloseClipboard();
    GlobalFree(g);
    canary_say("blocked", e, "EmptyClipboard failed");
    return 0;
  }
  if (SetClipboardData(CF_UNICODETEXT, g) == NULL) {
    e = GetLastError();
    CloseClipboard();
    GlobalFree(g);
    canary_say("blocked", e, "SetClipboardData failed");
    return 0;
  }
  CloseClipboard();
  canary_say("allowed", 0, "SetClipboardData wrote the clipboard");
  DestroyWindow(w);
  return 0;
}

static int canary_sysparams(void) {
  BOOL beep = FALSE;
  if (!SystemParametersInfoW(SPI_GETBEEP, 0, &beep, 0)) {
    canary_say("error", GetLastError(), "SystemParametersInfoW(SPI_GETBEEP) failed");
    return 2;
  }
  /* The same value back, not saved, not broadcast: nothing changes. */
  if (!SystemParametersInfoW(SPI_SETBEEP, (UINT)beep, NULL, 0)) {
    canary_say("blocked", GetLastError(), "SystemParametersInfoW(SPI_SETBEEP) failed");
    return 0;
  }
  canary_say("allowed", 0, "SystemParametersInfoW(SPI_SETBEEP) changed a system parameter");
  return 0;
}

static int canary_atom(const char *name) {
  wchar_t *w = jw__utf8_to_wide(name);
  ATOM a;
  if (w == NULL) {
    canary_say("error", 0, "bad atom name");
    return 2;
  }
  a = GlobalFindAtomW(w);
  free(w);
  if (a == 0) {
    canary_say("blocked", GetLastError(),
               "GlobalFindAtomW did not find the global atom added outside the job");
    return 0;
  }
  canary_say("allowed", 0, "GlobalFindAtomW found the global atom added outside the job");
  return 0;
}

static int canary_desktop(const char *name) {
  wchar_t *w = jw__utf8_to_wide(name);
  HDESK d;
  if (w == NULL) {
    canary_say("error", 0, "bad desktop name");
    return 2;
  }
  d = CreateDesktopW(w, NULL, NULL, 0, DESKTOP_CREATEWINDOW, NULL);
  free(w);
  if (d == NULL) {
    canary_say("blocked", GetLastError(), "CreateDesktopW failed");
    return 0;
  }
  CloseDesktop(d);
  canary_say("allowed", 0, "CreateDesktopW created a desktop");
  return 0;
}

static int canary_inherit(unsigned long long value) {
  if (!SetEvent((HANDLE)(uintptr_t)value)) {
    canary_say("blocked", GetLastError(), "SetEvent on the value of jobwarden's handle failed");
    return 0;
  }
  canary_say("allowed", 0, "SetEvent on the value of jobwarden's handle succeeded");
  return 0;
}

static int parse_ull(const char *s, unsigned long long *out) {
  char *end;
  if (s == NULL || s[0] < '0' || s[0] > '9')
    return -1;
  *out = strtoull(s, &end, 10);
  return *end == '\0' ? 0 : -1;
}

int jw__probe_canary_main(int argc, char **argv) {
  const char *kind = argc > 0 ? argv[0] : "";
  unsigned long long a = 0, b = 0;
  int one = argc == 2 && parse_ull(argv[1], &a) == 0;

  if (strcmp(kind, "sleep") == 0 && one) {
    Sleep((DWORD)(a > 600000 ? 600000 : a));
    return 0;
  }
  if (strcmp(kind, "hold") == 0 && one) {
    canary_say("ready", 0, "running");
    Sleep((DWORD)(a > 600000 ? 600000 : a));
    canary_say("allowed", 0, "still running");
    return 0;
  }
  if (strcmp(kind, "spawn") == 0 && one)
    return canary_spawn((unsigned long)a);
  if (strcmp(kind, "breakaway") == 0 && argc == 1)
    return canary_breakaway();
  if (strcmp(kind, "alloc") == 0 && one)
    return canary_alloc(a);
  if (strcmp(kind, "spin") == 0 && argc == 3 && parse_ull(argv[1], &a) == 0 &&
      parse_ull(argv[2], &b) == 0)
    return canary_spin(a, b);
  if (strcmp(kind, "window") == 0 && one)
    return canary_window(a);
  if (strcmp(kind, "clipboard-read") == 0 && argc == 1)
    return canary_clipboard_read();
  if (strcmp(kind, "clipboard-write") == 0 && argc == 1)
    return canary_clipboard_write();
  if (strcmp(kind, "system-parameters") == 0 && argc == 1)
    return canary_sysparams();
  if (strcmp(kind, "atom") == 0 && argc == 2)
    return canary_atom(argv[1]);
  if (strcmp(kind, "desktop") == 0 && argc == 2)
    return canary_desktop(argv[1]);
  if (strcmp(kind, "inherit") == 0 && one)
    return canary_inherit(a);
  canary_say("error", 0, "unknown canary '%.40s' or wrong arguments", kind);
  return 2;
}

/* ------------------------------------------------------------------------ */
/* The prober side                                                          */
/* ------------------------------------------------------------------------ */

typedef struct prober_s {
  jw_policy_t policy; /* resolved */
  char *self;         /* jobwarden.exe as UTF-8, owned */
  HANDLE nul;         /* owner: prober; NUL, the canaries' stdin and stderr */
  HWND window;        /* owner: prober; message-only window of the UI probes, or NULL */
  DWORD window_error; /* why there is no window */
  jw_error_t err;     /* the set-up error that ended the probe */
} prober_t;

typedef struct canary_s {
  jw_job_t job;             /* owner: canary_t */
  jw_child_t child;         /* owner: canary_t */
  HANDLE out;               /* owner: canary_t; read end of the canary's stdout */
  char buf[PROBE_LINE_MAX]; /* what it wrote so far */
  size_t len;
  int exited;
  DWORD exit_code;
  /* its last complete answer */
  char word[16];
  uint32_t code;
  const char *text; /* into buf */
} canary_t;

/* Which limits a probe's job keeps. Every probe's job has the policy's
 * kill-on-close, breakaway, die-on-unhandled-exception and UI settings;
 * the memory and CPU-time limits are kept only by the probe that measures
 * them (a small limit would otherwise stop canaries for an unrelated
 * reason), and the breakaway probe drops the active-process limit (it
 * could refuse the child before the breakaway rule is looked at). */
enum {
  KEEP_ACTIVE = 1,
  KEEP_PROCESS_MEMORY = 2,
  KEEP_JOB_MEMORY = 4,
  KEEP_PROCESS_TIME = 8,
  KEEP_JOB_TIME = 16
};

static void job_policy(const prober_t *pr, unsigned keep, jw_policy_t *out) {
  *out = pr->policy;
  if (!(keep & KEEP_ACTIVE))
    out->active_processes = 0;
  if (!(keep & KEEP_PROCESS_MEMORY))
    out->process_memory = 0;
  if (!(keep & KEEP_JOB_MEMORY))
    out->job_memory = 0;
  if (!(keep & KEEP_PROCESS_TIME))
    out->process_time_ms = 0;
  if (!(keep & KEEP_JOB_TIME))
    out->job_time_ms = 0;
}

/* Creates the job and starts `jobwarden --probe-canary args...` in it.
 * Returns 0 or -1 with pr->err set. */
static int canary_start(prober_t *pr, canary_t *c, const jw_policy_t *pol, const char *const *args,
                        int nargs) {
  const char *argv[8];
  jw_spawn_options_t opt;
  HANDLE w = NULL;
  int i;
  memset(c, 0, sizeof(*c));
  if (nargs > 6)
    return jw_error_set(&pr->err, JW_EINVAL, 0, "probe", "too many canary arguments"), -1;
  if (jw_job_create(&c->job, pol, &pr->err) != 0)
    return -1;
  if (!CreatePipe(&c->out, &w, NULL, 0)) {
    DWORD e = GetLastError();
    c->out = NULL;
    jw_error_set(&pr->err, JW_ESYS, e, "CreatePipe",
                 "cannot create the canary's output pipe: CreatePipe failed (Win32 error %lu)",
                 (unsigned long)e);
    return -1;
  }
  argv[0] = pr->self;
  argv[1] = "--probe-canary";
  for (i = 0; i < nargs; i++)
    argv[2 + i] = args[i];
  memset(&opt, 0, sizeof(opt));
  opt.argv = argv;
  opt.argc = 2 + nargs;
  opt.std_in = pr->nul;
  opt.std_out = w;
  opt.std_err = pr->nul;
  i = jw_spawn(c->job.job, &opt, &c->child, &pr->err);
  /* The canary holds its own copy now: EOF comes when it exits. */
  CloseHandle(w);
  return i == 0 ? 0 : -1;
}

/* Reads what the canary wrote so far, without blocking. */
static void canary_drain(canary_t *c) {
  DWORD avail = 0, got = 0;
  while (c->out != NULL && c->len < sizeof(c->buf) - 1 &&
         PeekNamedPipe(c->out, NULL, 0, NULL, &avail, NULL) && avail > 0) {
    DWORD want = (DWORD)(sizeof(c->buf) - 1 - c->len);
    if (want > avail)
      want = avail;
    if (!ReadFile(c->out, c->buf + c->len, want, &got, NULL) || got == 0)
      break;
    c->len += got;
  }
  c->buf[c->len] = '\0';
}

/* Parses the last complete line "<word> <code> <text>". 0 or -1 (none). */
static int canary_answer(canary_t *c) {
  char *end, *start, *p;
  size_t n = c->len;
  while (n > 0 && c->buf[n - 1] != '\n')
    n--; /* drop an unterminated tail */
  if (n == 0)
    return -1;
  c->buf[n - 1] = '\0';
  if (n >= 2 && c->buf[n - 2] == '\r')
    c->buf[n - 2] = '\0';
  start = strrchr(c->buf, '\n');
  start = start ? start + 1 : c->buf;
  p = strchr(start, ' ');
  if (p == NULL || (size_t)(p - start) >= sizeof(c->word))
    return -1;
  memcpy(c->word, start, (size_t)(p - start));
  c->word[p - start] = '\0';
  c->code = (uint32_t)strtoul(p + 1, &end, 10);
  if (end == p + 1 || *end != ' ')
    return -1;
  c->text = end + 1;
  return 0;
}

/* Waits (bounded) for the canary to exit; a late one is terminated with
 * its job. Then reads its answer. */
/* Waits for h while answering the messages of this thread's windows: a
 * canary may send one to the prober's window (taking the clipboard from
 * its owner sends WM_DESTROYCLIPBOARD), and an owner that does not answer
 * would stall it. Returns WAIT_OBJECT_0 or WAIT_TIMEOUT. */
static DWORD wait_pumping(HANDLE h, DWORD timeout_ms) {
  ULONGLONG deadline = GetTickCount64() + timeout_ms;
  for (;;) {
    ULONGLONG now = GetTickCount64();
    DWORD left = now >= deadline ? 0 : (DWORD)(deadline - now);
    DWORD w = MsgWaitForMultipleObjects(1, &h, FALSE, left, QS_ALLINPUT);
    MSG msg;
    if (w == WAIT_OBJECT_0)
      return WAIT_OBJECT_0;
    if (w != WAIT_OBJECT_0 + 1)
      return WaitForSingleObject(h, 0) == WAIT_OBJECT_0 ? WAIT_OBJECT_0 : WAIT_TIMEOUT;
    while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE)) {
      TranslateMessage(&msg);
      DispatchMessageW(&msg);
    }
  }
}

static void canary_wait(canary_t *c, DWORD timeout_ms) {
  if (wait_pumping(c->child.process, timeout_ms) != WAIT_OBJECT_0) {
    TerminateJobObject(c->job.job, JW_TERMINATE_EXIT_CODE);
    WaitForSingleObject(c->child.process, PROBE_KILL_WAIT_MS);
  } else {
    c->exited = 1;
  }
  if (!GetExitCodeProcess(c->child.process, &c->exit_code))
    c->exit_code = (DWORD)-1;
  canary_drain(c);
}

/* Kills whatever is left in the job and releases everything. */
static void canary_close(canary_t *c) {
  if (c->job.job != NULL) {
    TerminateJobObject(c->job.job, JW_TERMINATE_EXIT_CODE);
    if (c->child.process != NULL)
      WaitForSingleObject(c->child.process, PROBE_KILL_WAIT_MS);
  }
  jw_job_close(&c->job);
  jw_child_close(&c->child);
  if (c->out != NULL)
    CloseHandle(c->out);
  c->out = NULL;
}

/* A canary that gave no usable answer is a set-up failure of the probe. */
static int no_answer(prober_t *pr, const probe_t *p, const canary_t *c) {
  const char *status = jw_ntstatus_name(c->exit_code);
  return jw_error_set(&pr->err, JW_ESYS, 0, p->name,
                      "probe %s: the canary gave no answer (exit code 0x%08lX%s%s%s)", p->name,
                      (unsigned long)c->exit_code, status ? ", " : "", status ? status : "",
                      c->exited ? "" : ", killed after the time limit"),
         -1;
}

/* Runs one canary to its answer and maps it to the probe's result:
 * blocked / allowed / skipped, the error the canary met. 0 or -1. */
static int run_canary(prober_t *pr, probe_t *p, unsigned keep, const char *const *args, int nargs,
                      DWORD timeout_ms) {
  jw_policy_t pol;
  canary_t c;
  int rc = -1;
  job_policy(pr, keep, &pol);
  if (canary_start(pr, &c, &pol, args, nargs) != 0)
    goto done;
  canary_wait(&c, timeout_ms);
  if (canary_answer(&c) != 0 || strcmp(c.word, "error") == 0) {
    if (c.text != NULL)
      jw_error_set(&pr->err, JW_ESYS, c.code, p->name, "probe %s: the canary failed: %s", p->name,
                   c.text);
    else
      no_answer(pr, p, &c);
    goto done;
  }
  if (strcmp(c.word, "blocked") == 0)
    set_result(p, PROBE_BLOCKED, c.code ? "win32" : NULL, c.code, "%s", c.text);
  else if (strcmp(c.word, "allowed") == 0)
    set_result(p, PROBE_ALLOWED, NULL, 0, "%s", c.text);
  else
    set_result(p, PROBE_SKIPPED, c.code ? "win32" : NULL, c.code, "%s", c.text);
  rc = 0;
done:
  canary_close(&c);
  return rc;
}

static void random_name(char *buf, size_t size) {
  unsigned char r[8];
  size_t i;
  int n = snprintf(buf, size, "jobwarden-probe-%lu-", (unsigned long)GetCurrentProcessId());
  if (jw__random_bytes(r, sizeof(r)) != 0)
    memset(r, 0, sizeof(r));
  for (i = 0; i < sizeof(r) && n > 0 && (size_t)n + 3 < size; i++)
    n += snprintf(buf + n, size - (size_t)n, "%02x", r[i]);
}

/* ---- the probes --------------------------------------------------------- */

static int probe_spawn(prober_t *pr, probe_t *p) {
  char n[24];
  const char *args[2] = {"spawn", n};
  uint32_t limit = pr->policy.active_processes;
  p->field = "limits.active_processes";
  if (limit == 0) {
    snprintf(p->claim, sizeof(p->claim), "unlimited");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy sets no active-process limit");
    return 0;
  }
  p->claimed = 1;
  snprintf(p->claim, sizeof(p->claim), "at most %lu active process%s", (unsigned long)limit,
           limit == 1 ? "" : "es");
  if (limit > PROBE_MAX_CHILDREN) {
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "the limit (%lu) is above the %d processes the probe starts at most",
               (unsigned long)limit, PROBE_MAX_CHILDREN);
    return 0;
  }
  snprintf(n, sizeof(n), "%lu", (unsigned long)limit);
  return run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS + limit * 2000u);
}

static int probe_breakaway(prober_t *pr, probe_t *p) {
  const char *args[1] = {"breakaway"};
  p->field = "allow_breakaway";
  if (pr->policy.breakaway_ok) {
    snprintf(p->claim, sizeof(p->claim), "breakaway allowed");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy allows breakaway");
    return 0;
  }
  p->claimed = 1;
  snprintf(p->claim, sizeof(p->claim), "no process can leave the job");
  return run_canary(pr, p, 0, args, 1, PROBE_WAIT_MS);
}

static int probe_memory(prober_t *pr, probe_t *p, int job_wide) {
  uint64_t limit = job_wide ? pr->policy.job_memory : pr->policy.process_memory;
  char size[32], bytes[32];
  const char *args[2] = {"alloc", bytes};
  MEMORYSTATUSEX ms;
  p->field = job_wide ? "limits.job_memory" : "limits.process_memory";
  if (limit == 0) {
    snprintf(p->claim, sizeof(p->claim), "unlimited");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy sets no %s memory limit",
               job_wide ? "job" : "per-process");
    return 0;
  }
  p->claimed = 1;
  format_size(limit, size, sizeof(size));
  snprintf(p->claim, sizeof(p->claim), "at most %s committed %s", size,
           job_wide ? "by the job" : "per process");
  /* A failure to commit more than the machine has left proves nothing. */
  memset(&ms, 0, sizeof(ms));
  ms.dwLength = sizeof(ms);
  if (!GlobalMemoryStatusEx(&ms)) {
    set_result(p, PROBE_SKIPPED, "win32", GetLastError(),
               "cannot read how much memory this machine can commit (GlobalMemoryStatusEx)");
    return 0;
  }
  if (limit > UINT64_MAX - PROBE_MEMORY_MARGIN ||
      limit + PROBE_MEMORY_MARGIN >= ms.ullAvailPageFile ||
      limit + PROBE_MEMORY_MARGIN > (uint64_t)SIZE_MAX) {
    format_size(ms.ullAvailPageFile & ~(uint64_t)0xFFFFF, bytes, sizeof(bytes));
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "the limit is more than this machine can commit now (about %s); a failed "
               "allocation would prove nothing",
               bytes);
    return 0;
  }
  snprintf(bytes, sizeof(bytes), "%llu", (unsigned long long)(limit + PROBE_MEMORY_MARGIN));
  return run_canary(pr, p,
                    job_wide ? KEEP_ACTIVE | KEEP_JOB_MEMORY : KEEP_ACTIVE | KEEP_PROCESS_MEMORY,
                    args, 2, PROBE_WAIT_MS);
}

static int probe_cpu(prober_t *pr, probe_t *p, int job_wide) {
  uint64_t limit = job_wide ? pr->policy.job_time_ms : pr->policy.process_time_ms;
  uint64_t target, wall;
  char dur[32], t[24], w[24];
  const char *args[3] = {"spin", t, w};
  jw_policy_t pol;
  canary_t c;
  int rc = -1;
  p->field = job_wide ? "limits.job_cpu_time" : "limits.process_cpu_time";
  if (limit == 0) {
    snprintf(p->claim, sizeof(p->claim), "unlimited");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy sets no %s CPU-time limit",
               job_wide ? "job" : "per-process");
    return 0;
  }
  p->claimed = 1;
  format_duration(limit, dur, sizeof(dur));
  snprintf(p->claim, sizeof(p->claim), "at most %s user CPU time %s", dur,
           job_wide ? "for the job" : "per process");
  if (limit > PROBE_CPU_MAX_MS) {
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "the limit is above the %d s of CPU time the probe burns at most; probe with a "
               "smaller limit (e.g. --%s 1s)",
               PROBE_CPU_MAX_MS / 1000, job_wide ? "job-cpu-time" : "process-cpu-time");
    return 0;
  }
  target = limit + PROBE_CPU_MARGIN_MS;
  wall = target * 4 + 2000;
  snprintf(t, sizeof(t), "%llu", (unsigned long long)target);
  snprintf(w, sizeof(w), "%llu", (unsigned long long)wall);
  job_policy(pr, job_wide ? KEEP_ACTIVE | KEEP_JOB_TIME : KEEP_ACTIVE | KEEP_PROCESS_TIME, &pol);
  if (canary_start(pr, &c, &pol, args, 3) != 0)
    goto done;
  canary_wait(&c, (DWORD)wall + PROBE_WAIT_MS);
  if (canary_answer(&c) == 0 && strcmp(c.word, "error") != 0) {
    if (strcmp(c.word, "allowed") == 0)
      set_result(p, PROBE_ALLOWED, NULL, 0, "%s", c.text);
    else
      set_result(p, PROBE_SKIPPED, NULL, 0, "%s", c.text);
  } else if (c.exited && c.len == 0) {
    /* Killed before it could say it got past the limit: that is the
     * kernel enforcing it. */
    set_result(p, PROBE_BLOCKED, "exit_code", c.exit_code,
               "the canary was terminated while burning CPU time");
  } else {
    no_answer(pr, p, &c);
    goto done;
  }
  rc = 0;
done:
  canary_close(&c);
  return rc;
}

/* Opens the clipboard for the prober, retrying while another program has it. */
static int open_clipboard(HWND w) {
  int i;
  for (i = 0; i < PROBE_CLIPBOARD_TRIES; i++) {
    if (OpenClipboard(w))
      return 0;
    Sleep(20);
  }
  return -1;
}

static int clipboard_holds_marker(void) {
  HANDLE h = GetClipboardData(CF_UNICODETEXT);
  const wchar_t *s = h ? GlobalLock(h) : NULL;
  int same = 0;
  if (s != NULL) {
    same = GlobalSize(h) >= sizeof(PROBE_CLIP_MARKER) && wcscmp(s, PROBE_CLIP_MARKER) == 0;
    GlobalUnlock(h);
  }
  return same;
}

static int probe_ui(prober_t *pr, probe_t *p, uint32_t bit, const char *word) {
  char arg[64];
  const char *args[2] = {NULL, arg};
  int rc, placed = 0;
  DWORD seq = 0;
  p->field = "ui_restrictions";
  if (pr->policy.ui_restrictions & bit)
    snprintf(p->claim, sizeof(p->claim), "blocks %s", word);
  else
    snprintf(p->claim, sizeof(p->claim), "not restricted");
  if (!(pr->policy.ui_restrictions & bit)) {
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy does not restrict %s", word);
    return 0;
  }
  p->claimed = 1;
  switch (bit) {
  case JW_UI_EXITWINDOWS:
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "not probed: trying would log off or shut down Windows if it is not enforced");
    return 0;
  case JW_UI_DISPLAYSETTINGS:
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "not probed: trying would change the display settings if it is not enforced");
    return 0;
  case JW_UI_SYSTEMPARAMETERS:
    args[0] = "system-parameters";
    return run_canary(pr, p, KEEP_ACTIVE, args, 1, PROBE_WAIT_MS);
  case JW_UI_DESKTOP:
    args[0] = "desktop";
    random_name(arg, sizeof(arg));
    return run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS);
  case JW_UI_GLOBALATOMS: {
    wchar_t wname[64];
    ATOM atom;
    args[0] = "atom";
    random_name(arg, sizeof(arg));
    MultiByteToWideChar(CP_UTF8, 0, arg, -1, wname, 64);
    atom = GlobalAddAtomW(wname);
    if (atom == 0) {
      set_result(p, PROBE_SKIPPED, "win32", GetLastError(),
                 "cannot add a global atom to look for (GlobalAddAtomW)");
      return 0;
    }
    rc = run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS);
    GlobalDeleteAtom(atom);
    return rc;
  }
  default:
    break;
  }
  if (pr->window == NULL) {
    set_result(p, PROBE_SKIPPED, "win32", pr->window_error,
               "cannot create the window the probe needs (CreateWindowExW)");
    return 0;
  }
  if (bit == JW_UI_HANDLES) {
    args[0] = "window";
    snprintf(arg, sizeof(arg), "%llu", (unsigned long long)(uintptr_t)pr->window);
    return run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS);
  }
  /* The clipboard: never destroy what the user copied. Reading needs data:
   * when the clipboard is empty the probe puts a marker there and removes it
   * afterwards. Writing is probed only on an empty clipboard. */
  if (open_clipboard(pr->window) != 0) {
    set_result(p, PROBE_SKIPPED, "win32", GetLastError(),
               "cannot open the clipboard to prepare the probe (another program holds it)");
    return 0;
  }
  if (CountClipboardFormats() == 0) {
    if (bit == JW_UI_READCLIPBOARD) {
      HGLOBAL g = GlobalAlloc(GMEM_MOVEABLE, sizeof(PROBE_CLIP_MARKER));
      void *m = g ? GlobalLock(g) : NULL;
      if (m != NULL) {
        memcpy(m, PROBE_CLIP_MARKER, sizeof(PROBE_CLIP_MARKER));
        GlobalUnlock(g);
        if (EmptyClipboard() && SetClipboardData(CF_UNICODETEXT, g) != NULL) {
          placed = 1;
        } else {
          GlobalFree(g);
        }
      }
      if (!placed) {
        DWORD e = GetLastError();
        CloseClipboard();
        set_result(p, PROBE_SKIPPED, "win32", e,
                   "the clipboard is empty and the probe cannot put data there to read");
        return 0;
      }
    }
  } else if (bit == JW_UI_WRITECLIPBOARD) {
    CloseClipboard();
    set_result(p, PROBE_SKIPPED, NULL, 0,
               "not probed: the clipboard holds data that writing would replace; run the probe "
               "with an empty clipboard");
    return 0;
  }
  CloseClipboard();
  /* Read after closing: closing may count as a change too. */
  seq = GetClipboardSequenceNumber();
  args[0] = bit == JW_UI_READCLIPBOARD ? "clipboard-read" : "clipboard-write";
  rc = run_canary(pr, p, KEEP_ACTIVE, args, 1, PROBE_WAIT_MS);
  /* Remove the marker, unless somebody copied something since. Opened
   * without a window, so that emptying leaves the clipboard with no owner. */
  if (open_clipboard(NULL) == 0) {
    if ((placed && GetClipboardSequenceNumber() == seq && clipboard_holds_marker()) ||
        (bit == JW_UI_WRITECLIPBOARD && clipboard_holds_marker()))
      EmptyClipboard();
    CloseClipboard();
  }
  return rc;
}

static int probe_inherit(prober_t *pr, probe_t *p) {
  SECURITY_ATTRIBUTES sa;
  HANDLE ev;
  char value[32];
  const char *args[2] = {"inherit", value};
  int rc;
  p->field = NULL;
  p->claimed = 1;
  snprintf(p->claim, sizeof(p->claim), "only stdin, stdout and stderr are inherited");
  /* An inheritable handle, alive while the canary is created: exactly what
   * would leak without PROC_THREAD_ATTRIBUTE_HANDLE_LIST. */
  sa.nLength = sizeof(sa);
  sa.lpSecurityDescriptor = NULL;
  sa.bInheritHandle = TRUE;
  ev = CreateEventW(&sa, TRUE, FALSE, NULL);
  if (ev == NULL)
    return jw_error_set(&pr->err, JW_ESYS, GetLastError(), "CreateEventW",
                        "probe handle_inheritance: CreateEventW failed (Win32 error %lu)",
                        (unsigned long)GetLastError()),
           -1;
  snprintf(value, sizeof(value), "%llu", (unsigned long long)(uintptr_t)ev);
  rc = run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS);
  if (rc == 0) {
    /* Only a signal on jobwarden's own event proves the leak: the same
     * value may name another object in the canary. */
    if (WaitForSingleObject(ev, 0) == WAIT_OBJECT_0)
      set_result(p, PROBE_ALLOWED, NULL, 0,
                 "the program signalled an inheritable event of jobwarden through the inherited "
                 "handle");
    else if (p->result == PROBE_ALLOWED)
      set_result(p, PROBE_BLOCKED, NULL, 0,
                 "the handle value named another object in the program; jobwarden's event was "
                 "not signalled");
    else {
      char what[sizeof(p->reason)];
      jw__strlcpy(what, p->reason, sizeof(what));
      set_result(p, PROBE_BLOCKED, p->error_kind, p->error_code,
                 "an inheritable handle of jobwarden was not inherited (%s)", what);
    }
  }
  CloseHandle(ev);
  return rc;
}

static int probe_kill_on_close(prober_t *pr, probe_t *p) {
  const char *args[2] = {"hold", NULL};
  char ms[24];
  jw_policy_t pol;
  canary_t c;
  ULONGLONG deadline;
  int rc = -1;
  p->field = "kill_on_close";
  if (!pr->policy.kill_on_close) {
    snprintf(p->claim, sizeof(p->claim), "off");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy does not set kill_on_close");
    return 0;
  }
  p->claimed = 1;
  snprintf(p->claim, sizeof(p->claim), "the program dies with jobwarden");
  snprintf(ms, sizeof(ms), "%d", PROBE_HOLD_MS);
  args[1] = ms;
  job_policy(pr, KEEP_ACTIVE, &pol);
  if (canary_start(pr, &c, &pol, args, 2) != 0)
    goto done;
  if (c.job.kill_on_close_refused) {
    set_result(p, PROBE_ALLOWED, "win32", c.job.kill_on_close_error,
               "KILL_ON_JOB_CLOSE was refused (jobwarden runs in a job that forbids it): the "
               "program would outlive jobwarden");
    rc = 0;
    goto done;
  }
  /* Wait until it runs, so what is killed is a running program. */
  deadline = GetTickCount64() + PROBE_WAIT_MS;
  while (strstr(c.buf, "ready ") == NULL && GetTickCount64() < deadline &&
         wait_pumping(c.child.process, 5) == WAIT_TIMEOUT)
    canary_drain(&c);
  if (strstr(c.buf, "ready ") == NULL) {
    canary_wait(&c, 0);
    no_answer(pr, p, &c);
    goto done;
  }
  /* What happens when jobwarden dies: the job's last handle is closed. */
  jw_job_close(&c.job);
  if (wait_pumping(c.child.process, PROBE_KILL_WAIT_MS) == WAIT_OBJECT_0) {
    DWORD code = 0;
    if (!GetExitCodeProcess(c.child.process, &code))
      code = (DWORD)-1;
    set_result(p, PROBE_BLOCKED, "exit_code", code,
               "closing the job's last handle killed the program");
  } else {
    set_result(p, PROBE_ALLOWED, NULL, 0,
               "the program still ran %d ms after the job's last handle was closed",
               PROBE_KILL_WAIT_MS);
    TerminateProcess(c.child.process, JW_TERMINATE_EXIT_CODE);
    WaitForSingleObject(c.child.process, PROBE_KILL_WAIT_MS);
  }
  rc = 0;
done:
  canary_close(&c);
  return rc;
}

/* ---- output ------------------------------------------------------------- */

static void out_text(const char *s) {
  jw__write_all(GetStdHandle(STD_OUTPUT_HANDLE), s, strlen(s));
}

static void say_error(const char *text) {
  char buf[700];
  int n = snprintf(buf, sizeof(buf), "jobwarden: probe: %s\n", text);
  if (n > 0)
    jw__stderr_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void windows_version(char *buf, size_t size) {
  typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  rtl_get_version_fn fn =
      ntdll ? (rtl_get_version_fn)(void (*)(void))GetProcAddress(ntdll, "RtlGetVersion") : NULL;
  OSVERSIONINFOW v;
  memset(&v, 0, sizeof(v));
  v.dwOSVersionInfoSize = sizeof(v);
  if (fn != NULL && fn(&v) == 0)
    snprintf(buf, size, "%lu.%lu.%lu", (unsigned long)v.dwMajorVersion,
             (unsigned long)v.dwMinorVersion, (unsigned long)v.dwBuildNumber);
  else
    snprintf(buf, size, "unknown");
}

static json_t *error_json(const probe_t *p) {
  char text[256];
  const char *name;
  if (p->error_kind == NULL)
    return json_null();
  if (strcmp(p->error_kind, "win32") == 0) {
    name = win32_name(p->error_code);
    jw__sys_error_text(p->error_code, text, sizeof(text));
  } else {
    name = jw_ntstatus_name(p->error_code);
    snprintf(text, sizeof(text), "0x%08lX", (unsigned long)p->error_code);
  }
  return json_pack("{s:s,s:I,s:o,s:s}", "kind", p->error_kind, "code", (json_int_t)p->error_code,
                   "name", name ? json_string(name) : json_null(), "text", text);
}

/* "ERROR_ACCESS_DENIED, Win32 error 5" / "exit code 0xC000013A" */
static void error_short(const probe_t *p, char *buf, size_t size) {
  const char *name;
  buf[0] = '\0';
  if (p->error_kind == NULL)
    return;
  if (strcmp(p->error_kind, "win32") == 0) {
    name = win32_name(p->error_code);
    snprintf(buf, size, " [%s%sWin32 error %lu]", name ? name : "", name ? ", " : "",
             (unsigned long)p->error_code);
  } else {
    name = jw_ntstatus_name(p->error_code);
    snprintf(buf, size, " [exit code 0x%08lX%s%s]", (unsigned long)p->error_code, name ? ", " : "",
             name ? name : "");
  }
}

static json_t *document_json(const prober_t *pr, const probe_t *probes, size_t n, int status) {
  json_t *doc, *arr, *not_enforced;
  char winver[48];
  const char *wine = jw__wine_version();
  size_t i, counts[3] = {0, 0, 0};
  windows_version(winver, sizeof(winver));
  arr = json_array();
  not_enforced = json_array();
  for (i = 0; i < n; i++) {
    const probe_t *p = &probes[i];
    json_t *o = json_pack("{s:s,s:o,s:b,s:s,s:s,s:o,s:s,s:o}", "name", p->name, "field",
                          p->field ? json_string(p->field) : json_null(), "claimed", p->claimed,
                          "claim", p->claim, "result", result_name(p->result), "enforced",
                          p->result == PROBE_SKIPPED ? json_null()
                                                     : json_boolean(p->result == PROBE_BLOCKED),
                          "reason", p->reason, "error", error_json(p));
    counts[p->result]++;
    if (p->result == PROBE_ALLOWED && p->claimed)
      json_array_append_new(not_enforced, json_string(p->name));
    json_array_append_new(arr, o);
  }
  doc = json_pack("{s:i,s:s,s:{s:s,s:o},s:s,s:o,s:o,s:{s:I,s:I,s:I},s:o,s:s,s:i}", "probe_version",
                  1, "jobwarden", JW_VERSION, "platform", "windows_version", winver, "wine",
                  wine ? json_string(wine) : json_null(), "tier", jw_tier_name(pr->policy.tier),
                  "policy", (json_t *)jw_policy_to_json(&pr->policy), "probes", arr, "summary",
                  "blocked", (json_int_t)counts[PROBE_BLOCKED], "allowed",
                  (json_int_t)counts[PROBE_ALLOWED], "skipped", (json_int_t)counts[PROBE_SKIPPED],
                  "not_enforced", not_enforced, "verdict",
                  status == JW_EXIT_OK ? "enforced" : "not_enforced", "exit_status", status);
  return doc;
}

static void print_table(const prober_t *pr, const probe_t *probes, size_t n, int status) {
  char line[1200], err[128], winver[48];
  const char *wine = jw__wine_version();
  size_t i, counts[3] = {0, 0, 0};
  int first = 1;
  windows_version(winver, sizeof(winver));
  snprintf(line, sizeof(line), "jobwarden probe: tier %s, Windows %s%s%s%s\n\n",
           jw_tier_name(pr->policy.tier), winver, wine ? " (Wine " : "", wine ? wine : "",
           wine ? ")" : "");
  out_text(line);
  snprintf(line, sizeof(line), "%-20s %-48s %-8s %s\n", "PROBE", "CLAIM", "RESULT", "DETAILS");
  out_text(line);
  for (i = 0; i < n; i++) {
    const probe_t *p = &probes[i];
    error_short(p, err, sizeof(err));
    snprintf(line, sizeof(line), "%-20s %-48s %-8s %s%s\n", p->name, p->claim,
             result_name(p->result), p->reason, err);
    out_text(line);
    counts[p->result]++;
  }
  if (status == JW_EXIT_OK) {
    snprintf(line, sizeof(line),
             "\nverdict: every claimed restriction that could be probed is enforced (%lu blocked, "
             "%lu skipped)\n",
             (unsigned long)counts[PROBE_BLOCKED], (unsigned long)counts[PROBE_SKIPPED]);
    out_text(line);
    return;
  }
  snprintf(line, sizeof(line), "\nverdict: NOT ENFORCED: %lu claimed restriction%s allowed:",
           (unsigned long)counts[PROBE_ALLOWED], counts[PROBE_ALLOWED] == 1 ? " is" : "s are");
  out_text(line);
  for (i = 0; i < n; i++) {
    if (probes[i].result != PROBE_ALLOWED)
      continue;
    out_text(first ? " " : ", ");
    out_text(probes[i].name);
    first = 0;
  }
  out_text("\n");
}

/* ---- driver ------------------------------------------------------------- */

static const struct {
  const char *name;
  uint32_t bit;
  const char *word;
} ui_probes[] = {
    {"ui.handles", JW_UI_HANDLES, "using USER handles from outside the job"},
    {"ui.read_clipboard", JW_UI_READCLIPBOARD, "reading the clipboard"},
    {"ui.write_clipboard", JW_UI_WRITECLIPBOARD, "writing the clipboard"},
    {"ui.system_parameters", JW_UI_SYSTEMPARAMETERS, "changing system parameters"},
    {"ui.display_settings", JW_UI_DISPLAYSETTINGS, "changing display settings"},
    {"ui.global_atoms", JW_UI_GLOBALATOMS, "seeing global atoms from outside the job"},
    {"ui.desktop", JW_UI_DESKTOP, "creating or switching desktops"},
    {"ui.exit_windows", JW_UI_EXITWINDOWS, "logging off or shutting down Windows"},
};

#define N_UI_PROBES  (sizeof(ui_probes) / sizeof(ui_probes[0]))
#define N_PROBES_MAX (8 + N_UI_PROBES)

static int prober_init(prober_t *pr, const jw_policy_t *policy) {
  wchar_t *self = malloc(PROBE_SELF_UNITS * sizeof(wchar_t));
  DWORD n;
  size_t len;
  memset(pr, 0, sizeof(*pr));
  jw_policy_resolve(policy, &pr->policy);
  pr->nul = INVALID_HANDLE_VALUE;
  if (self == NULL)
    return jw_error_set(&pr->err, JW_ENOMEM, 0, "probe", "out of memory"), -1;
  n = GetModuleFileNameW(NULL, self, PROBE_SELF_UNITS);
  if (n == 0 || n >= PROBE_SELF_UNITS ||
      jw_utf16_to_utf8((const uint16_t *)self, n, JW_HOSTILE_MAX_UNITS, &pr->self, &len, NULL) !=
          0) {
    free(self);
    return jw_error_set(&pr->err, JW_ESYS, GetLastError(), "GetModuleFileNameW",
                        "cannot find jobwarden.exe's own path to start the canaries"),
           -1;
  }
  free(self);
  /* Not inheritable: jw_spawn gives the canary its own duplicate. */
  pr->nul = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                        NULL, OPEN_EXISTING, 0, NULL);
  if (pr->nul == INVALID_HANDLE_VALUE)
    return jw_error_set(&pr->err, JW_ESYS, GetLastError(), "CreateFileW(NUL)",
                        "cannot open NUL for the canaries (Win32 error %lu)",
                        (unsigned long)GetLastError()),
           -1;
  if (pr->policy.ui_restrictions & (JW_UI_HANDLES | JW_UI_READCLIPBOARD | JW_UI_WRITECLIPBOARD)) {
    /* Message-only: never shown, never sent broadcasts. */
    pr->window = canary_make_window();
    if (pr->window == NULL)
      pr->window_error = GetLastError();
  }
  return 0;
}

static void prober_free(prober_t *pr) {
  if (pr->window != NULL)
    DestroyWindow(pr->window);
  if (pr->nul != INVALID_HANDLE_VALUE && pr->nul != NULL)
    CloseHandle(pr->nul);
  free(pr->self);
}

int jw_probe(const jw_policy_t *policy, int json) {
  prober_t pr;
  probe_t probes[N_PROBES_MAX];
  size_t n = 0, i;
  int status = JW_EXIT_OK, rc = 0;

  memset(probes, 0, sizeof(probes));
  if (prober_init(&pr, policy) != 0) {
    say_error(pr.err.text);
    prober_free(&pr);
    return JW_EXIT_JW_ERROR;
  }
  probes[n].name = "spawn";
  if (rc == 0)
    rc = probe_spawn(&pr, &probes[n++]);
  probes[n].name = "breakaway";
  if (rc == 0)
    rc = probe_breakaway(&pr, &probes[n++]);
  probes[n].name = "process_memory";
  if (rc == 0)
    rc = probe_memory(&pr, &probes[n++], 0);
  probes[n].name = "job_memory";
  if (rc == 0)
    rc = probe_memory(&pr, &probes[n++], 1);
  probes[n].name = "process_cpu_time";
  if (rc == 0)
    rc = probe_cpu(&pr, &probes[n++], 0);
  probes[n].name = "job_cpu_time";
  if (rc == 0)
    rc = probe_cpu(&pr, &probes[n++], 1);
  for (i = 0; i < N_UI_PROBES; i++) {
    probes[n].name = ui_probes[i].name;
    if (rc == 0)
      rc = probe_ui(&pr, &probes[n++], ui_probes[i].bit, ui_probes[i].word);
  }
  probes[n].name = "handle_inheritance";
  if (rc == 0)
    rc = probe_inherit(&pr, &probes[n++]);
  probes[n].name = "kill_on_close";
  if (rc == 0)
    rc = probe_kill_on_close(&pr, &probes[n++]);

  if (rc != 0) {
    say_error(pr.err.text);
    prober_free(&pr);
    return JW_EXIT_JW_ERROR;
  }
  for (i = 0; i < n; i++)
    if (probes[i].claimed && probes[i].result == PROBE_ALLOWED)
      status = JW_EXIT_NOT_ENFORCED;

  if (json) {
    json_t *doc = document_json(&pr, probes, n, status);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL) {
      say_error("out of memory");
      prober_free(&pr);
      return JW_EXIT_JW_ERROR;
    }
    out_text(text);
    out_text("\n");
    free(text);
  } else {
    print_table(&pr, probes, n, status);
  }
  prober_free(&pr);
  return status;
}

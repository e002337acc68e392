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
 * canary that does not answer in time is terminated with its job.
 *
 * The checks are one table, checks[] (their order is the output's): a row
 * names the check, the policy field it checks, the canary it starts and
 * the judge that reads the answer into the result. Each check's canary
 * and judge sit next to each other below; the canaries themselves are a
 * table too (canaries[]: kind, arguments, function), which
 * `--probe-canary KIND ARGS` is looked up in. Adding a check is a row in
 * each and its two functions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "control.h"
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
#define PROBE_PIPE_READ_MS    5000 /* a pipe canary waits this long for a line */

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
  json_t *facts; /* owned; what the canary read about itself, or NULL */
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
    {32, "ERROR_SHARING_VIOLATION"},
    {50, "ERROR_NOT_SUPPORTED"},
    {87, "ERROR_INVALID_PARAMETER"},
    {109, "ERROR_BROKEN_PIPE"},
    {120, "ERROR_CALL_NOT_IMPLEMENTED"},
    {231, "ERROR_PIPE_BUSY"},
    {233, "ERROR_PIPE_NOT_CONNECTED"},
    {1314, "ERROR_PRIVILEGE_NOT_HELD"},
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
/* Speaking from inside the job: jobwarden.exe --probe-canary KIND [ARGS]    */
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

static int parse_ull(const char *s, unsigned long long *out) {
  char *end;
  if (s == NULL || s[0] < '0' || s[0] > '9')
    return -1;
  *out = strtoull(s, &end, 10);
  return *end == '\0' ? 0 : -1;
}

/* ------------------------------------------------------------------------ */
/* The prober's tools: a job, a canary in it, its answer                    */
/* ------------------------------------------------------------------------ */

typedef struct prober_s {
  jw_policy_t policy; /* resolved */
  char *self;         /* jobwarden.exe as UTF-8, owned */
  HANDLE nul;         /* owner: prober; NUL, the canaries' stdin and stderr */
  HWND window;        /* owner: prober; message-only window of the UI probes, or NULL */
  HANDLE token;       /* owner: prober; the policy's token for every canary, NULL = inherit */
  DWORD window_error; /* why there is no window */
  /* The token canary's answer, read once for both token checks. */
  int token_read;
  long token_rid;                   /* its integrity RID, -1 when it could not read it */
  char token_privs[PROBE_LINE_MAX]; /* its enabled privileges: "a,b", "-" none, "?" unread */
  jw_error_t err;                   /* the set-up error that ended the probe */
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

/* Starts `jobwarden --probe-canary args...` in c->job (created). Every
 * canary is started here, with jw_spawn as `run` starts the program: what
 * `run` gives the program (its token, its handles) the canary gets too.
 * before_resume (may be NULL) runs while it is suspended in the job.
 * Returns 0 or -1 with pr->err set. */
static int canary_launch(prober_t *pr, canary_t *c, const char *const *args, int nargs,
                         jw_before_resume_fn before_resume, void *ctx) {
  const char *argv[8];
  jw_spawn_options_t opt;
  HANDLE w = NULL;
  int i;
  if (nargs > 6)
    return jw_error_set(&pr->err, JW_EINVAL, 0, "probe", "too many canary arguments"), -1;
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
  opt.before_resume = before_resume;
  opt.ctx = ctx;
  /* Every canary runs with the token `run` gives the program: what it can
   * reach is what the program could. */
  opt.token = pr->token;
  i = jw_spawn(c->job.job, &opt, &c->child, &pr->err);
  /* The canary holds its own copy now: EOF comes when it exits. */
  CloseHandle(w);
  return i == 0 ? 0 : -1;
}

/* Creates the job and starts `jobwarden --probe-canary args...` in it.
 * Returns 0 or -1 with pr->err set. */
static int canary_start(prober_t *pr, canary_t *c, const jw_policy_t *pol, const char *const *args,
                        int nargs) {
  memset(c, 0, sizeof(*c));
  if (jw_job_create(&c->job, pol, &pr->err) != 0)
    return -1;
  return canary_launch(pr, c, args, nargs, NULL, NULL);
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
  {
    int64_t code = jw__proc_exit_code_settled(c->child.process, PROBE_KILL_WAIT_MS);
    c->exit_code = code < 0 ? (DWORD)-1 : (DWORD)code;
  }
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

/* Maps a finished canary's answer to the probe's result: blocked /
 * allowed / skipped, the error the canary met. 0 or -1 (pr->err). */
static int take_answer(prober_t *pr, probe_t *p, canary_t *c) {
  if (canary_answer(c) != 0 || strcmp(c->word, "error") == 0) {
    if (c->text != NULL)
      jw_error_set(&pr->err, JW_ESYS, c->code, p->name, "probe %s: the canary failed: %s", p->name,
                   c->text);
    else
      no_answer(pr, p, c);
    return -1;
  }
  if (strcmp(c->word, "blocked") == 0)
    set_result(p, PROBE_BLOCKED, c->code ? "win32" : NULL, c->code, "%s", c->text);
  else if (strcmp(c->word, "allowed") == 0)
    set_result(p, PROBE_ALLOWED, NULL, 0, "%s", c->text);
  else
    set_result(p, PROBE_SKIPPED, c->code ? "win32" : NULL, c->code, "%s", c->text);
  return 0;
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
  rc = take_answer(pr, p, &c);
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

/* A run of the probe's own, set up as `run` sets one up (src/win/runner.c):
 * the exporters fed by their writer threads, the job, the monitor, the
 * control pipe, the canary as the root process. */
typedef struct minirun_s {
  jw_run_info_t run;
  jw_emitter_t *em;        /* owner: minirun */
  jw_monitor_t *mon;       /* owner: minirun */
  jw_control_t *ctl;       /* owner: minirun */
  jw__gate_t *gate;        /* owner: minirun; the pipe readers' gate, outlives the exporters */
  jw_exporter_t *sinks[4]; /* owned by em */
} minirun_t;

#define PROBE_RUN_QUEUE 4096

static int set_root_cb(void *ctx, jw_child_t *child) {
  return jw_monitor_set_root((jw_monitor_t *)ctx, child);
}

/* Runs the canary `args` as the root of a run with the exporters
 * `exports` and the control pipe `control` (NULL: none); its answer is p's
 * result. 0 or -1 (pr->err). */
static int run_canary_in_run(prober_t *pr, probe_t *p, const char *const *exports, int n_exports,
                             const char *control, const char *const *args, int nargs) {
  jw_policy_t pol;
  canary_t c;
  minirun_t r;
  int rc = -1, i;
  memset(&c, 0, sizeof(c));
  memset(&r, 0, sizeof(r));
  job_policy(pr, KEEP_ACTIVE, &pol);
  if (control != NULL && jw_control_open(control, &r.ctl, &pr->err) != 0)
    goto done;
  if (jw_run_info_init(&r.run, "jobwarden-probe", pol.tier) != 0 ||
      jw_emitter_new(&r.run, &r.em) != 0) {
    jw_error_set(&pr->err, JW_ENOMEM, 0, "probe",
                 "probe %s: cannot initialize the probe's run (no random source or out of memory)",
                 p->name);
    goto done;
  }
  for (i = 0; i < n_exports && i < 4; i++) {
    jw_exporter_t *exp;
    if (jw_exporter_open(exports[i], &exp, &pr->err) != 0)
      goto done;
    if (jw_emitter_add(r.em, exp) != 0) {
      jw_exporter_close(exp);
      jw_error_set(&pr->err, JW_ENOMEM, 0, "probe", "out of memory");
      goto done;
    }
    r.sinks[i] = exp;
  }
  if (jw_emitter_start(r.em, PROBE_RUN_QUEUE) != 0) {
    jw_error_set(&pr->err, JW_ESYS, 0, "probe", "probe %s: cannot start the exporter threads",
                 p->name);
    goto done;
  }
  if (jw_job_create(&c.job, &pol, &pr->err) != 0 ||
      jw_monitor_start(&c.job, r.em, &r.mon, &pr->err) != 0 ||
      jw__gate_new(c.job.job, jw_monitor_done_event(r.mon), r.em, &r.gate, &pr->err) != 0)
    goto done;
  /* Readers of the event pipe are checked as `run` checks them. */
  for (i = 0; i < n_exports && i < 4; i++)
    jw_exporter_set_gate(r.sinks[i], jw__gate_get(r.gate));
  if ((r.ctl != NULL && jw_control_start(r.ctl, &c.job, r.mon, r.em, &r.run, &pr->err) != 0) ||
      canary_launch(pr, &c, args, nargs, set_root_cb, r.mon) != 0)
    goto done;
  canary_wait(&c, PROBE_WAIT_MS);
  rc = take_answer(pr, p, &c);
done:
  /* Torn down in `run`'s order: the job's processes, the monitor's view of
   * the job's end, the control pipe, the monitor, the exporters. */
  if (c.job.job != NULL) {
    TerminateJobObject(c.job.job, JW_TERMINATE_EXIT_CODE);
    if (c.child.process != NULL)
      WaitForSingleObject(c.child.process, PROBE_KILL_WAIT_MS);
  }
  if (r.mon != NULL)
    WaitForSingleObject(jw_monitor_done_event(r.mon), PROBE_KILL_WAIT_MS);
  jw_control_close(r.ctl);
  if (r.mon != NULL && jw_monitor_stop(r.mon, PROBE_KILL_WAIT_MS, NULL) != 0 && rc == 0) {
    /* Its thread still uses the job and the emitter: both are left alone. */
    jw_error_set(&pr->err, JW_ETIMEDOUT, 0, "probe", "probe %s: the monitor did not stop in time",
                 p->name);
    return -1;
  }
  if (r.em != NULL && jw_emitter_drain(r.em, PROBE_KILL_WAIT_MS) == 0) {
    jw_emitter_free(r.em);
    jw__gate_free(r.gate);
  } else if (r.em == NULL) {
    jw__gate_free(r.gate);
  }
  canary_close(&c);
  return rc;
}

/* A fresh path in the temporary directory for the probe's event file. */
static int temp_event_path(prober_t *pr, char *buf, size_t size) {
  wchar_t dir[MAX_PATH + 1];
  char name[64], *u = NULL;
  size_t len = 0;
  DWORD n = GetTempPathW(MAX_PATH + 1, dir);
  if (n == 0 || n > MAX_PATH ||
      jw_utf16_to_utf8((const uint16_t *)dir, n, JW_HOSTILE_MAX_UNITS, &u, &len, NULL) != 0)
    return jw_error_set(&pr->err, JW_ESYS, GetLastError(), "GetTempPathW",
                        "cannot find the temporary directory for the probe's event file"),
           -1;
  random_name(name, sizeof(name));
  snprintf(buf, size, "%s%s.jsonl", u, name);
  free(u);
  return 0;
}

static void delete_utf8(const char *path) {
  wchar_t *w = jw__utf8_to_wide(path);
  if (w != NULL)
    DeleteFileW(w);
  free(w);
}

/* ------------------------------------------------------------------------ */
/* The checks: each one's canary, then its judge                            */
/* ------------------------------------------------------------------------ */

/* A canary: what --probe-canary KIND runs inside the job. argv[0] is the
 * kind; num[i] is argv[i] as a number where the kind's row says it is one.
 * It answers with canary_say and returns the canary's exit code. */
typedef int (*canary_fn)(int argc, char **argv, const unsigned long long *num);

/* A judge: sets up what the check needs, runs its canary (the row's kind)
 * and reads the answer into p (result, reason, error, claim). 0, or -1 with
 * pr->err set: a set-up failure that ends the whole probe. */
typedef struct check_s check_t;
typedef int (*judge_fn)(prober_t *pr, probe_t *p, const check_t *c);

struct check_s {
  const char *name;   /* as the output and docs/probe.md name it */
  const char *field;  /* the policy field it checks; NULL: jobwarden's own defence */
  const char *canary; /* the canary kind it starts (canaries[]); NULL: it never starts one */
  judge_fn judge;
  uint32_t arg;      /* the judge's parameter: job-wide (memory, CPU time), the UI bit */
  const char *word;  /* the judge's word: what a UI restriction blocks, the right or action tried */
  const char *claim; /* what is claimed when it does not depend on the policy (always claimed) */
};

/* ---- spawn: the active-process limit ----------------------------------- */

/* `sleep MS`: the spawn canary's children (and parent_spoof's child). */
static int canary_sleep(int argc, char **argv, const unsigned long long *num) {
  (void)argc;
  (void)argv;
  Sleep((DWORD)(num[1] > 600000 ? 600000 : num[1]));
  return 0;
}

/* `spawn N`: starts up to N children that stay alive; the N-th one is one
 * more than an active-process limit of N allows (the canary is the first). */
static int canary_spawn(int argc, char **argv, const unsigned long long *num) {
  unsigned long long n = num[1];
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
               (unsigned long)n + 1);
  (void)argc;
  (void)argv;
  return 0;
}

static int probe_spawn(prober_t *pr, probe_t *p, const check_t *c) {
  char n[24];
  const char *args[2] = {c->canary, n};
  uint32_t limit = pr->policy.active_processes;
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

/* ---- breakaway --------------------------------------------------------- */

static int canary_breakaway(int argc, char **argv, const unsigned long long *num) {
  PROCESS_INFORMATION pi;
  (void)argc;
  (void)argv;
  (void)num;
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

static int probe_breakaway(prober_t *pr, probe_t *p, const check_t *c) {
  const char *args[1] = {c->canary};
  if (pr->policy.breakaway_ok) {
    snprintf(p->claim, sizeof(p->claim), "breakaway allowed");
    set_result(p, PROBE_SKIPPED, NULL, 0, "the policy allows breakaway");
    return 0;
  }
  p->claimed = 1;
  snprintf(p->claim, sizeof(p->claim), "no process can leave the job");
  return run_canary(pr, p, 0, args, 1, PROBE_WAIT_MS);
}

/* ---- process_memory, job_memory ---------------------------------------- */

static int canary_alloc(int argc, char **argv, const unsigned long long *num) {
  unsigned long long bytes = num[1];
  void *p;
  (void)argc;
  (void)argv;
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

/* c->arg: 1 the job's limit, 0 the per-process one. */
static int probe_memory(prober_t *pr, probe_t *p, const check_t *c) {
  int job_wide = c->arg != 0;
  uint64_t limit = job_wide ? pr->policy.job_memory : pr->policy.process_memory;
  char size[32], bytes[32];
  const char *args[2] = {c->canary, bytes};
  MEMORYSTATUSEX ms;
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

/* ---- process_cpu_time, job_cpu_time ------------------------------------ */

static int own_user_ms(unsigned long long *ms) {
  FILETIME c, x, k, u;
  if (!GetProcessTimes(GetCurrentProcess(), &c, &x, &k, &u))
    return -1;
  *ms = (((unsigned long long)u.dwHighDateTime << 32) | u.dwLowDateTime) / 10000u;
  return 0;
}

/* `spin TARGET_MS WALL_MS`: burns user-mode CPU time until TARGET_MS is
 * used, or WALL_MS passed. */
static int canary_spin(int argc, char **argv, const unsigned long long *num) {
  unsigned long long target_ms = num[1], wall_ms = num[2];
  ULONGLONG start = GetTickCount64();
  unsigned long long used = 0;
  volatile unsigned long sink = 0;
  unsigned long i;
  (void)argc;
  (void)argv;
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

/* c->arg: 1 the job's limit, 0 the per-process one. */
static int probe_cpu(prober_t *pr, probe_t *p, const check_t *row) {
  int job_wide = row->arg != 0;
  uint64_t limit = job_wide ? pr->policy.job_time_ms : pr->policy.process_time_ms;
  uint64_t target, wall;
  char dur[32], t[24], w[24];
  const char *args[3] = {row->canary, t, w};
  jw_policy_t pol;
  canary_t c;
  int rc = -1;
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

/* ---- ui.*: the job's UI restrictions ------------------------------------ */

/* `window HWND`: a window of the prober, outside the job. */
static int canary_window(int argc, char **argv, const unsigned long long *num) {
  HWND h = (HWND)(uintptr_t)num[1];
  wchar_t cls[64];
  int n = GetClassNameW(h, cls, 64);
  (void)argc;
  (void)argv;
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

static int canary_clipboard_read(int argc, char **argv, const unsigned long long *num) {
  UINT fmt;
  DWORD e;
  (void)argc;
  (void)argv;
  (void)num;
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

static int canary_clipboard_write(int argc, char **argv, const unsigned long long *num) {
  HWND w = canary_make_window();
  HGLOBAL g;
  DWORD e;
  void *p;
  (void)argc;
  (void)argv;
  (void)num;
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

static int canary_sysparams(int argc, char **argv, const unsigned long long *num) {
  BOOL beep = FALSE;
  (void)argc;
  (void)argv;
  (void)num;
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

/* `atom NAME`: a global atom the prober added outside the job. */
static int canary_atom(int argc, char **argv, const unsigned long long *num) {
  wchar_t *w = jw__utf8_to_wide(argv[1]);
  ATOM a;
  (void)argc;
  (void)num;
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

/* `desktop NAME`: a new desktop of that name. */
static int canary_desktop(int argc, char **argv, const unsigned long long *num) {
  wchar_t *w = jw__utf8_to_wide(argv[1]);
  HDESK d;
  (void)argc;
  (void)num;
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

/* c->arg: the restriction's bit; c->word: what it blocks. */
static int probe_ui(prober_t *pr, probe_t *p, const check_t *c) {
  uint32_t bit = c->arg;
  const char *word = c->word;
  char arg[64];
  const char *args[2] = {c->canary, arg};
  int rc, placed = 0;
  DWORD seq = 0;
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
    return run_canary(pr, p, KEEP_ACTIVE, args, 1, PROBE_WAIT_MS);
  case JW_UI_DESKTOP:
    random_name(arg, sizeof(arg));
    return run_canary(pr, p, KEEP_ACTIVE, args, 2, PROBE_WAIT_MS);
  case JW_UI_GLOBALATOMS: {
    wchar_t wname[64];
    ATOM atom;
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

/* ---- handle_inheritance ------------------------------------------------ */

/* `inherit VALUE`: the value of an inheritable handle of the prober. */
static int canary_inherit(int argc, char **argv, const unsigned long long *num) {
  (void)argc;
  (void)argv;
  if (!SetEvent((HANDLE)(uintptr_t)num[1])) {
    canary_say("blocked", GetLastError(), "SetEvent on the value of jobwarden's handle failed");
    return 0;
  }
  canary_say("allowed", 0, "SetEvent on the value of jobwarden's handle succeeded");
  return 0;
}

static int probe_inherit(prober_t *pr, probe_t *p, const check_t *c) {
  SECURITY_ATTRIBUTES sa;
  HANDLE ev;
  char value[32];
  const char *args[2] = {c->canary, value};
  int rc;
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

/* ---- kill_on_close ----------------------------------------------------- */

/* `hold MS`: says it runs, then lives MS (unless the job's end kills it). */
static int canary_hold(int argc, char **argv, const unsigned long long *num) {
  (void)argc;
  (void)argv;
  canary_say("ready", 0, "running");
  Sleep((DWORD)(num[1] > 600000 ? 600000 : num[1]));
  canary_say("allowed", 0, "still running");
  return 0;
}

static int probe_kill_on_close(prober_t *pr, probe_t *p, const check_t *row) {
  const char *args[2] = {row->canary, NULL};
  char ms[24];
  jw_policy_t pol;
  canary_t c;
  ULONGLONG deadline;
  int rc = -1;
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
    int64_t code = jw__proc_exit_code_settled(c.child.process, PROBE_KILL_WAIT_MS);
    set_result(p, PROBE_BLOCKED, "exit_code", code < 0 ? (DWORD)-1 : (DWORD)code,
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

/* ---- jobwarden.terminate, .dup_handle, .vm_read: jobwarden's process ---- */

/* The rights a program in the job must not get on jobwarden's process. */
static const struct {
  const char *word; /* as the prober names it */
  DWORD access;
  const char *name; /* as Windows names it */
} open_rights[] = {
    {"terminate", PROCESS_TERMINATE, "PROCESS_TERMINATE"},
    {"dup_handle", PROCESS_DUP_HANDLE, "PROCESS_DUP_HANDLE"},
    {"vm_read", PROCESS_VM_READ, "PROCESS_VM_READ"},
};

/* `open-process PID RIGHT` (open_rights[].word): opens jobwarden's process
 * (PID) for one right and closes the handle at once: having the handle is
 * what the restriction must prevent; nothing is done with it. */
static int canary_open_process(int argc, char **argv, const unsigned long long *num) {
  unsigned long long pid = num[1];
  const char *word = argv[2];
  size_t i;
  HANDLE h;
  (void)argc;
  for (i = 0; i < sizeof(open_rights) / sizeof(open_rights[0]); i++)
    if (strcmp(open_rights[i].word, word) == 0)
      break;
  if (i == sizeof(open_rights) / sizeof(open_rights[0]) || pid == 0 || pid > 0xFFFFFFFFull) {
    canary_say("error", 0, "bad right or pid");
    return 2;
  }
  h = OpenProcess(open_rights[i].access, FALSE, (DWORD)pid);
  if (h == NULL) {
    canary_say("blocked", GetLastError(), "OpenProcess(%s) on jobwarden's process failed",
               open_rights[i].name);
    return 0;
  }
  CloseHandle(h);
  canary_say("allowed", 0, "OpenProcess(%s) on jobwarden's process succeeded", open_rights[i].name);
  return 0;
}

/* From inside the job: OpenProcess on the prober (jobwarden's own process,
 * protected as `run` protects itself: probe_protect_self) for one right. */
/* c->word: the right (open_rights[].word). */
static int probe_open_jobwarden(prober_t *pr, probe_t *p, const check_t *c) {
  char pid[24];
  const char *args[3] = {c->canary, pid, c->word};
  snprintf(pid, sizeof(pid), "%lu", (unsigned long)GetCurrentProcessId());
  return run_canary(pr, p, KEEP_ACTIVE, args, 3, PROBE_WAIT_MS);
}

/* ---- parent_spoof -------------------------------------------------------- */

/* Whether process `pid` is in the canary's own job: the job's process list
 * (QueryInformationJobObject on NULL, i.e. the caller's job), else
 * IsProcessInJob(any job). 1 in, 0 out, -1 unknown. *how names the check. */
static int in_own_job(DWORD pid, HANDLE process, const char **how) {
  union {
    JOBOBJECT_BASIC_PROCESS_ID_LIST list;
    char bytes[sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + 256 * sizeof(ULONG_PTR)];
  } u;
  BOOL in = FALSE;
  DWORD i;
  memset(&u, 0, sizeof(u));
  if (QueryInformationJobObject(NULL, JobObjectBasicProcessIdList, &u, sizeof(u), NULL)) {
    *how = "the job's process list";
    for (i = 0; i < u.list.NumberOfProcessIdsInList && i < 256; i++)
      if (u.list.ProcessIdList[i] == (ULONG_PTR)pid)
        return 1;
    return 0;
  }
  *how = "IsProcessInJob";
  if (!IsProcessInJob(process, NULL, &in))
    return -1;
  return in ? 1 : 0;
}

/* Starts a child (suspended: it never runs a single instruction) whose
 * parent is jobwarden's process (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS), the
 * escape of issue 9. Such a child gets the named parent's job. It is
 * killed and waited for at once, whatever it turned out to be. */
static int canary_parent_spoof(int argc, char **argv, const unsigned long long *num) {
  unsigned long long pid = num[1];
  static wchar_t self[PROBE_SELF_UNITS];
  wchar_t cmd[PROBE_SELF_UNITS + 64];
  STARTUPINFOEXW si;
  SIZE_T size = 0;
  PROCESS_INFORMATION pi;
  HANDLE parent;
  const char *how = "";
  DWORD n, e = 0;
  BOOL ok = FALSE;
  int in;
  (void)argc;
  (void)argv;
  if (pid == 0 || pid > 0xFFFFFFFFull) {
    canary_say("error", 0, "bad pid");
    return 2;
  }
  n = GetModuleFileNameW(NULL, self, PROBE_SELF_UNITS);
  if (n == 0 || n >= PROBE_SELF_UNITS) {
    canary_say("error", GetLastError(), "GetModuleFileNameW failed");
    return 2;
  }
  parent = OpenProcess(PROCESS_CREATE_PROCESS, FALSE, (DWORD)pid);
  if (parent == NULL) {
    canary_say("blocked", GetLastError(),
               "OpenProcess(PROCESS_CREATE_PROCESS) on jobwarden's process failed: the program "
               "cannot name it as a parent");
    return 0;
  }
  swprintf(cmd, sizeof(cmd) / sizeof(cmd[0]), L"\"%ls\" --probe-canary sleep 0", self);
  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = sizeof(si);
  memset(&pi, 0, sizeof(pi));
  InitializeProcThreadAttributeList(NULL, 1, 0, &size);
  si.lpAttributeList = malloc(size);
  if (si.lpAttributeList != NULL &&
      InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &size)) {
    if (UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_PARENT_PROCESS,
                                  &parent, sizeof(parent), NULL, NULL))
      ok = CreateProcessW(self, cmd, NULL, NULL, FALSE,
                          CREATE_SUSPENDED | EXTENDED_STARTUPINFO_PRESENT, NULL, NULL,
                          &si.StartupInfo, &pi);
    e = GetLastError();
    DeleteProcThreadAttributeList(si.lpAttributeList);
  } else {
    e = GetLastError();
  }
  free(si.lpAttributeList);
  CloseHandle(parent);
  if (!ok) {
    canary_say("blocked", e,
               "CreateProcessW with PROC_THREAD_ATTRIBUTE_PARENT_PROCESS naming jobwarden failed");
    return 0;
  }
  in = in_own_job(pi.dwProcessId, pi.hProcess, &how);
  /* Never leave it behind: it has not run, and it never will. */
  if (!TerminateProcess(pi.hProcess, 0) ||
      WaitForSingleObject(pi.hProcess, 5000) != WAIT_OBJECT_0) {
    e = GetLastError();
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    canary_say("error", e,
               "could not kill the child it started with jobwarden as its parent (pid %lu)",
               (unsigned long)pi.dwProcessId);
    return 2;
  }
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  if (in < 0) {
    canary_say("error", GetLastError(), "cannot tell whether the child was in the job");
    return 2;
  }
  if (in)
    canary_say(
        "blocked", 0,
        "a child started with jobwarden as its parent (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS) "
        "was in the job (%s)",
        how);
  else
    canary_say(
        "allowed", 0,
        "a child started with jobwarden as its parent (PROC_THREAD_ATTRIBUTE_PARENT_PROCESS) "
        "was outside the job (%s); it was killed before it ran",
        how);
  return 0;
}

/* From inside the job: a child whose parent is jobwarden. The job has no
 * active-process limit here (as for breakaway): a refusal by the limit
 * would say nothing about the parent. */
static int probe_parent_spoof(prober_t *pr, probe_t *p, const check_t *c) {
  char pid[24];
  const char *args[2] = {c->canary, pid};
  snprintf(pid, sizeof(pid), "%lu", (unsigned long)GetCurrentProcessId());
  return run_canary(pr, p, 0, args, 2, PROBE_WAIT_MS);
}

/* ---- event_file.write, .delete, .rename: jobwarden's record ------------- */

/* `event-file ACTION PATH [TO]`: what the program tries on the event file
 * the file exporter holds open: open it for writing (without writing),
 * delete it, rename it (to TO). */
static int canary_event_file(int argc, char **argv, const unsigned long long *num) {
  const char *what = argv[1], *path = argv[2], *to = argc == 4 ? argv[3] : NULL;
  wchar_t *w = jw__utf8_to_wide(path), *wto = to ? jw__utf8_to_wide(to) : NULL;
  int rc = 0;
  (void)num;
  if (w == NULL || (to != NULL && wto == NULL)) {
    canary_say("error", 0, "bad path");
    rc = 2;
  } else if (strcmp(what, "write") == 0) {
    HANDLE h = CreateFileW(w, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
      canary_say("blocked", GetLastError(),
                 "CreateFileW(GENERIC_WRITE) on jobwarden's event file failed");
    } else {
      CloseHandle(h); /* nothing written: having the handle is the point */
      canary_say("allowed", 0,
                 "CreateFileW(GENERIC_WRITE) opened jobwarden's event file for writing");
    }
  } else if (strcmp(what, "delete") == 0) {
    if (!DeleteFileW(w))
      canary_say("blocked", GetLastError(), "DeleteFileW on jobwarden's event file failed");
    else
      canary_say("allowed", 0, "DeleteFileW deleted jobwarden's event file");
  } else if (strcmp(what, "rename") == 0 && wto != NULL) {
    if (!MoveFileExW(w, wto, 0))
      canary_say("blocked", GetLastError(), "MoveFileExW on jobwarden's event file failed");
    else
      canary_say("allowed", 0, "MoveFileExW renamed jobwarden's event file");
  } else {
    canary_say("error", 0, "bad event-file action");
    rc = 2;
  }
  free(w);
  free(wto);
  return rc;
}

/* From inside the job: the event file of a real file exporter (`file:PATH`,
 * opened through the registry as `run` opens it, so the canary meets the
 * sharing mode jobwarden really uses) opened for writing, deleted or
 * renamed while the run holds it. */
/* c->word: the action (write, delete, rename). */
static int probe_event_file(prober_t *pr, probe_t *p, const check_t *c) {
  char path[MAX_PATH * 4 + 64], to[MAX_PATH * 4 + 80], spec[MAX_PATH * 4 + 80];
  const char *args[4] = {c->canary, c->word, path, to};
  const char *exports[1] = {spec};
  int rc;
  if (temp_event_path(pr, path, sizeof(path)) != 0)
    return -1;
  snprintf(to, sizeof(to), "%s.renamed", path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  rc = run_canary_in_run(pr, p, exports, 1, NULL, args, strcmp(c->word, "rename") == 0 ? 4 : 3);
  delete_utf8(path);
  delete_utf8(to);
  return rc;
}

/* ---- control_pipe -------------------------------------------------------- */

/* Waits (bounded) for one line on a pipe opened for synchronous I/O and
 * returns its length (without '\n'), 0 when nothing came in time, or -1
 * with *e the Win32 error (ERROR_BROKEN_PIPE: the server closed it). */
static int pipe_read_line(HANDLE h, char *buf, size_t size, DWORD *e) {
  ULONGLONG deadline = GetTickCount64() + PROBE_PIPE_READ_MS;
  size_t len = 0;
  *e = 0;
  while (len < size - 1) {
    DWORD avail = 0, got = 0;
    char *nl;
    if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, NULL)) {
      *e = GetLastError();
      return len > 0 ? (int)len : -1;
    }
    if (avail == 0) {
      if (GetTickCount64() >= deadline)
        return (int)len;
      Sleep(10); /* a bounded poll for data, not a guess */
      continue;
    }
    if (avail > size - 1 - len)
      avail = (DWORD)(size - 1 - len);
    if (!ReadFile(h, buf + len, avail, &got, NULL)) {
      *e = GetLastError();
      return len > 0 ? (int)len : -1;
    }
    len += got;
    buf[len] = '\0';
    nl = memchr(buf, '\n', len);
    if (nl != NULL) {
      *nl = '\0';
      return (int)(nl - buf);
    }
  }
  buf[len] = '\0';
  return (int)len;
}

/* Opens \\.\pipe\<name> at the identification level (as `jobwarden ps`
 * does); NULL and *e on failure. */
static HANDLE open_pipe(const char *name, DWORD access, DWORD *e) {
  char path[JW_PIPE_NAME_MAX + 64];
  wchar_t *w;
  HANDLE h;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  w = jw__utf8_to_wide(path);
  if (w == NULL) {
    *e = ERROR_INVALID_NAME;
    return NULL;
  }
  h = CreateFileW(w, access, 0, NULL, OPEN_EXISTING,
                  SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
  *e = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  free(w);
  return h == INVALID_HANDLE_VALUE ? NULL : h;
}

/* `control NAME`: sends `{"op":"ps"}` on the run's control pipe and reads
 * the answer. */
static int canary_control(int argc, char **argv, const unsigned long long *num) {
  const char *name = argv[1];
  char pipe[JW_PIPE_NAME_MAX + 32], line[PROBE_LINE_MAX], req_line[64];
  jw_control_request_t req;
  json_t *reply;
  DWORD e = 0, w = 0;
  size_t n;
  int len;
  HANDLE h;
  (void)argc;
  (void)num;
  snprintf(pipe, sizeof(pipe), "%s%s", JW_CONTROL_PIPE_PREFIX, name);
  h = open_pipe(pipe, GENERIC_READ | GENERIC_WRITE, &e);
  if (h == NULL) {
    canary_say("blocked", e, "connecting to jobwarden's control pipe failed");
    return 0;
  }
  memset(&req, 0, sizeof(req));
  req.op = JW_CONTROL_PS;
  n = jw_control_format_request(&req, req_line, sizeof(req_line));
  if (n == 0 || !WriteFile(h, req_line, (DWORD)n, &w, NULL) || w != n) {
    e = GetLastError();
    CloseHandle(h);
    canary_say("blocked", e, "writing a ps request to jobwarden's control pipe failed");
    return 0;
  }
  len = pipe_read_line(h, line, sizeof(line), &e);
  CloseHandle(h);
  if (len < 0) {
    canary_say("blocked", e,
               "jobwarden's control pipe closed the connection without answering a ps request");
    return 0;
  }
  if (len == 0) {
    canary_say("skipped", 0,
               "jobwarden's control pipe did not answer a ps request within %d ms: cannot tell",
               PROBE_PIPE_READ_MS);
    return 0;
  }
  reply = json_loadb(line, (size_t)len, 0, NULL);
  if (json_is_true(json_object_get(reply, "ok"))) {
    canary_say("allowed", 0, "jobwarden's control pipe answered a ps request from inside the job");
  } else if (json_is_false(json_object_get(reply, "ok"))) {
    const char *why = json_string_value(json_object_get(reply, "reason"));
    canary_say("blocked", 0,
               "jobwarden's control pipe refused a ps request from inside the job (%s)",
               why ? why : "no reason given");
  } else {
    canary_say("blocked", 0, "jobwarden's control pipe answered with something other than a reply");
  }
  json_decref(reply);
  return 0;
}

/* From inside the job: a ps request on the run's `--control` pipe. */
static int probe_control_pipe(prober_t *pr, probe_t *p, const check_t *c) {
  char name[64];
  const char *args[2] = {c->canary, name};
  random_name(name, sizeof(name));
  return run_canary_in_run(pr, p, NULL, 0, name, args, 2);
}

/* ---- pipe_reader --------------------------------------------------------- */

/* `pipe-reader NAME`: connects to the pipe exporter's pipe as a reader and
 * reads a line. */
static int canary_pipe_reader(int argc, char **argv, const unsigned long long *num) {
  char line[8192];
  json_t *ev;
  DWORD e = 0;
  int len;
  HANDLE h = open_pipe(argv[1], GENERIC_READ, &e);
  (void)argc;
  (void)num;
  if (h == NULL) {
    canary_say("blocked", e, "connecting to jobwarden's event pipe failed");
    return 0;
  }
  len = pipe_read_line(h, line, sizeof(line), &e);
  CloseHandle(h);
  if (len < 0) {
    canary_say("blocked", e, "jobwarden's event pipe closed the connection before any event");
    return 0;
  }
  if (len == 0) {
    canary_say("skipped", 0,
               "connected to jobwarden's event pipe but nothing arrived within %d ms: cannot tell",
               PROBE_PIPE_READ_MS);
    return 0;
  }
  ev = json_loadb(line, (size_t)len, 0, NULL);
  if (json_is_string(json_object_get(ev, "event")) && json_is_integer(json_object_get(ev, "seq")))
    canary_say("allowed", 0, "read an event from jobwarden's event pipe inside the job");
  else
    canary_say("blocked", 0,
               "jobwarden's event pipe sent no event to the program (it sent: %.120s)", line);
  json_decref(ev);
  return 0;
}

/* From inside the job: a reader on the run's `pipe:` exporter. The run's
 * first event (the canary's own process_start) is in the pipe's replay
 * before the canary runs, so an accepted reader always has a line. */
static int probe_pipe_reader(prober_t *pr, probe_t *p, const check_t *c) {
  char name[64], spec[80];
  const char *args[2] = {c->canary, name};
  const char *exports[1] = {spec};
  random_name(name, sizeof(name));
  snprintf(spec, sizeof(spec), "pipe:%s", name);
  return run_canary_in_run(pr, p, exports, 1, NULL, args, 2);
}

/* ---- token.integrity, token.privileges: the program's token -------------- */

/* Writes "facts 0 <integrity RID or -1> <enabled privileges>,..." where the
 * list is "-" when empty and "?" when the token could not be read. */
static int canary_token(int argc, char **argv, const unsigned long long *num) {
  HANDLE tok = NULL;
  char line[PROBE_LINE_MAX - 32];
  size_t len = 0;
  long rid = -1;
  int privs_read = 0, n_enabled = 0;
  union {
    TOKEN_MANDATORY_LABEL label;
    char bytes[256];
  } il;
  TOKEN_PRIVILEGES *tp = NULL;
  DWORD size = 0, i;
  (void)argc;
  (void)argv;
  (void)num;
  line[0] = '\0';
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
    canary_say("error", GetLastError(), "OpenProcessToken failed");
    return 2;
  }
  if (GetTokenInformation(tok, TokenIntegrityLevel, &il, sizeof(il), &size) &&
      IsValidSid(il.label.Label.Sid) && *GetSidSubAuthorityCount(il.label.Label.Sid) > 0)
    rid = (long)*GetSidSubAuthority(il.label.Label.Sid,
                                    (DWORD)(*GetSidSubAuthorityCount(il.label.Label.Sid) - 1));
  GetTokenInformation(tok, TokenPrivileges, NULL, 0, &size);
  if (size > 0 && (tp = malloc(size)) != NULL &&
      GetTokenInformation(tok, TokenPrivileges, tp, size, &size)) {
    privs_read = 1;
    for (i = 0; i < tp->PrivilegeCount; i++) {
      wchar_t wname[64];
      char name[64];
      DWORD wn = 64;
      if (!(tp->Privileges[i].Attributes & SE_PRIVILEGE_ENABLED))
        continue;
      if (!LookupPrivilegeNameW(NULL, &tp->Privileges[i].Luid, wname, &wn) ||
          !WideCharToMultiByte(CP_UTF8, 0, wname, -1, name, sizeof(name), NULL, NULL))
        snprintf(name, sizeof(name), "LUID-%lu", (unsigned long)tp->Privileges[i].Luid.LowPart);
      if (len + strlen(name) + 2 < sizeof(line)) {
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", n_enabled ? "," : "", name);
        n_enabled++;
      }
    }
  }
  free(tp);
  CloseHandle(tok);
  canary_say("facts", 0, "%ld %s", rid, !privs_read ? "?" : n_enabled ? line : "-");
  return 0;
}

/* What the policy claims about the program's token: it runs below medium
 * integrity (low_integrity, restricted_low: lockdown's default), it has no
 * privilege but SeChangeNotifyPrivilege enabled (restricted,
 * restricted_low). With `inherit` nothing is claimed and the two token
 * probes report what the program has as facts. */
static void token_claims(const prober_t *pr, int *low_integrity, int *restricted) {
  jw_token_mode_t t = pr->policy.token;
  *low_integrity = t == JW_TOKEN_LOW_INTEGRITY || t == JW_TOKEN_RESTRICTED_LOW;
  *restricted = t == JW_TOKEN_RESTRICTED || t == JW_TOKEN_RESTRICTED_LOW;
}

static const char *integrity_name(long rid) {
  switch (rid) {
  case SECURITY_MANDATORY_UNTRUSTED_RID:
    return "Untrusted";
  case SECURITY_MANDATORY_LOW_RID:
    return "Low";
  case SECURITY_MANDATORY_MEDIUM_RID:
    return "Medium";
  case 0x2100: /* SECURITY_MANDATORY_MEDIUM_PLUS_RID, not in mingw-w64 */
    return "Medium Plus";
  case SECURITY_MANDATORY_HIGH_RID:
    return "High";
  case SECURITY_MANDATORY_SYSTEM_RID:
    return "System";
  case SECURITY_MANDATORY_PROTECTED_PROCESS_RID:
    return "Protected Process";
  default:
    return NULL;
  }
}

/* One canary reads its own token (as the program would: the token jw_spawn
 * gave it); both token checks report from its answer, read once. 0 or -1
 * (pr->err, named after p). */
static int token_facts(prober_t *pr, probe_t *p, const check_t *row) {
  const char *args[1] = {row->canary};
  jw_policy_t pol;
  canary_t c;
  char *privs;
  int rc = -1;
  if (pr->token_read)
    return 0;
  job_policy(pr, KEEP_ACTIVE, &pol);
  if (canary_start(pr, &c, &pol, args, 1) != 0)
    goto done;
  canary_wait(&c, PROBE_WAIT_MS);
  if (canary_answer(&c) != 0 || strcmp(c.word, "facts") != 0) {
    if (c.text != NULL)
      jw_error_set(&pr->err, JW_ESYS, c.code, p->name, "probe %s: the canary failed: %s", p->name,
                   c.text);
    else
      no_answer(pr, p, &c);
    goto done;
  }
  pr->token_rid = strtol(c.text, &privs, 10);
  while (*privs == ' ')
    privs++;
  jw__strlcpy(pr->token_privs, privs, sizeof(pr->token_privs));
  pr->token_read = 1;
  rc = 0;
done:
  canary_close(&c);
  return rc;
}

static int probe_token_integrity(prober_t *pr, probe_t *pi, const check_t *c) {
  int low, restricted;
  long rid;
  char level[64], sid[32];
  const char *iname;
  token_claims(pr, &low, &restricted);
  pi->claimed = low;
  snprintf(pi->claim, sizeof(pi->claim), "%s",
           low ? "the program runs below medium integrity" : "not lowered");
  if (token_facts(pr, pi, c) != 0)
    return -1;
  rid = pr->token_rid;
  iname = integrity_name(rid);
  if (rid < 0) {
    set_result(pi, PROBE_SKIPPED, NULL, 0, "the program could not read its own integrity level");
    return 0;
  }
  if (iname != NULL)
    snprintf(level, sizeof(level), "%s integrity (S-1-16-%ld)", iname, rid);
  else
    snprintf(level, sizeof(level), "integrity S-1-16-%ld", rid);
  snprintf(sid, sizeof(sid), "S-1-16-%ld", rid);
  pi->facts = json_pack("{s:o,s:s}", "integrity", iname ? json_string(iname) : json_null(),
                        "integrity_sid", sid);
  if (!low)
    set_result(pi, PROBE_SKIPPED, NULL, 0,
               "the policy does not lower the program's integrity; the program runs at %s", level);
  else if (rid < SECURITY_MANDATORY_MEDIUM_RID)
    set_result(pi, PROBE_BLOCKED, NULL, 0, "the program runs at %s, below medium", level);
  else
    set_result(pi, PROBE_ALLOWED, NULL, 0, "the program runs at %s, not below medium", level);
  return 0;
}

static int probe_token_privileges(prober_t *pr, probe_t *pp, const check_t *c) {
  int low, restricted, count = 0, only_notify = 1;
  char list[PROBE_LINE_MAX], names[PROBE_LINE_MAX] = "", *tok;
  size_t nlen = 0;
  json_t *arr;
  token_claims(pr, &low, &restricted);
  pp->claimed = restricted;
  snprintf(pp->claim, sizeof(pp->claim), "%s",
           restricted ? "only SeChangeNotifyPrivilege is enabled" : "not restricted");
  if (token_facts(pr, pp, c) != 0)
    return -1;
  jw__strlcpy(list, pr->token_privs, sizeof(list));
  if (strcmp(list, "?") == 0) {
    set_result(pp, PROBE_SKIPPED, NULL, 0, "the program could not read its own privileges");
    return 0;
  }
  arr = json_array();
  for (tok = strcmp(list, "-") == 0 ? NULL : strtok(list, ","); tok != NULL;
       tok = strtok(NULL, ",")) {
    json_array_append_new(arr, json_string(tok));
    if (strcmp(tok, "SeChangeNotifyPrivilege") != 0)
      only_notify = 0;
    if (nlen + strlen(tok) + 3 < sizeof(names))
      nlen += (size_t)snprintf(names + nlen, sizeof(names) - nlen, "%s%s", count ? ", " : "", tok);
    count++;
  }
  pp->facts = json_pack("{s:o}", "enabled_privileges", arr);
  if (!restricted)
    set_result(pp, PROBE_SKIPPED, NULL, 0,
               "the policy does not restrict the program's privileges; the program has %d "
               "privilege(s) enabled%s%s",
               count, count ? ": " : "", names);
  else if (only_notify)
    set_result(pp, PROBE_BLOCKED, NULL, 0, "the program has %d privilege(s) enabled%s%s", count,
               count ? ": " : "", names);
  else
    set_result(pp, PROBE_ALLOWED, NULL, 0, "the program has %d privileges enabled: %s", count,
               names);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The tables                                                               */
/* ------------------------------------------------------------------------ */

/* The canaries --probe-canary starts: KIND, how many words argv has with
 * the kind (at least, at most), which of them are numbers (bit i: argv[i]),
 * and the function. */
static const struct {
  const char *kind;
  int argc_min, argc_max;
  unsigned numeric;
  canary_fn run;
} canaries[] = {
    {.kind = "sleep", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_sleep},
    {.kind = "hold", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_hold},
    {.kind = "spawn", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_spawn},
    {.kind = "breakaway", .argc_min = 1, .argc_max = 1, .run = canary_breakaway},
    {.kind = "alloc", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_alloc},
    {.kind = "spin", .argc_min = 3, .argc_max = 3, .numeric = 3u << 1, .run = canary_spin},
    {.kind = "window", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_window},
    {.kind = "clipboard-read", .argc_min = 1, .argc_max = 1, .run = canary_clipboard_read},
    {.kind = "clipboard-write", .argc_min = 1, .argc_max = 1, .run = canary_clipboard_write},
    {.kind = "system-parameters", .argc_min = 1, .argc_max = 1, .run = canary_sysparams},
    {.kind = "atom", .argc_min = 2, .argc_max = 2, .run = canary_atom},
    {.kind = "desktop", .argc_min = 2, .argc_max = 2, .run = canary_desktop},
    {.kind = "inherit", .argc_min = 2, .argc_max = 2, .numeric = 1u << 1, .run = canary_inherit},
    {.kind = "open-process",
     .argc_min = 3,
     .argc_max = 3,
     .numeric = 1u << 1,
     .run = canary_open_process},
    {.kind = "parent-spoof",
     .argc_min = 2,
     .argc_max = 2,
     .numeric = 1u << 1,
     .run = canary_parent_spoof},
    {.kind = "event-file", .argc_min = 3, .argc_max = 4, .run = canary_event_file},
    {.kind = "control", .argc_min = 2, .argc_max = 2, .run = canary_control},
    {.kind = "pipe-reader", .argc_min = 2, .argc_max = 2, .run = canary_pipe_reader},
    {.kind = "token", .argc_min = 1, .argc_max = 1, .run = canary_token},
};
#define CANARY_ARGC_MAX 4

/* The checks, in the order of the output and of docs/probe.md's table. */
static const check_t checks[] = {
    {.name = "spawn", .field = "limits.active_processes", .canary = "spawn", .judge = probe_spawn},
    {.name = "breakaway",
     .field = "allow_breakaway",
     .canary = "breakaway",
     .judge = probe_breakaway},
    {.name = "process_memory",
     .field = "limits.process_memory",
     .canary = "alloc",
     .judge = probe_memory},
    {.name = "job_memory",
     .field = "limits.job_memory",
     .canary = "alloc",
     .judge = probe_memory,
     .arg = 1},
    {.name = "process_cpu_time",
     .field = "limits.process_cpu_time",
     .canary = "spin",
     .judge = probe_cpu},
    {.name = "job_cpu_time",
     .field = "limits.job_cpu_time",
     .canary = "spin",
     .judge = probe_cpu,
     .arg = 1},
    {.name = "ui.handles",
     .field = "ui_restrictions",
     .canary = "window",
     .judge = probe_ui,
     .arg = JW_UI_HANDLES,
     .word = "using USER handles from outside the job"},
    {.name = "ui.read_clipboard",
     .field = "ui_restrictions",
     .canary = "clipboard-read",
     .judge = probe_ui,
     .arg = JW_UI_READCLIPBOARD,
     .word = "reading the clipboard"},
    {.name = "ui.write_clipboard",
     .field = "ui_restrictions",
     .canary = "clipboard-write",
     .judge = probe_ui,
     .arg = JW_UI_WRITECLIPBOARD,
     .word = "writing the clipboard"},
    {.name = "ui.system_parameters",
     .field = "ui_restrictions",
     .canary = "system-parameters",
     .judge = probe_ui,
     .arg = JW_UI_SYSTEMPARAMETERS,
     .word = "changing system parameters"},
    /* Never tried: it would change the display if it is not enforced. */
    {.name = "ui.display_settings",
     .field = "ui_restrictions",
     .judge = probe_ui,
     .arg = JW_UI_DISPLAYSETTINGS,
     .word = "changing display settings"},
    {.name = "ui.global_atoms",
     .field = "ui_restrictions",
     .canary = "atom",
     .judge = probe_ui,
     .arg = JW_UI_GLOBALATOMS,
     .word = "seeing global atoms from outside the job"},
    {.name = "ui.desktop",
     .field = "ui_restrictions",
     .canary = "desktop",
     .judge = probe_ui,
     .arg = JW_UI_DESKTOP,
     .word = "creating or switching desktops"},
    /* Never tried: it would log off or shut down Windows. */
    {.name = "ui.exit_windows",
     .field = "ui_restrictions",
     .judge = probe_ui,
     .arg = JW_UI_EXITWINDOWS,
     .word = "logging off or shutting down Windows"},
    {.name = "handle_inheritance",
     .canary = "inherit",
     .judge = probe_inherit,
     .claim = "only stdin, stdout and stderr are inherited"},
    {.name = "kill_on_close",
     .field = "kill_on_close",
     .canary = "hold",
     .judge = probe_kill_on_close},
    {.name = "jobwarden.terminate",
     .canary = "open-process",
     .judge = probe_open_jobwarden,
     .word = "terminate",
     .claim = "the program cannot terminate jobwarden"},
    {.name = "jobwarden.dup_handle",
     .canary = "open-process",
     .judge = probe_open_jobwarden,
     .word = "dup_handle",
     .claim = "the program cannot copy jobwarden's handles"},
    {.name = "jobwarden.vm_read",
     .canary = "open-process",
     .judge = probe_open_jobwarden,
     .word = "vm_read",
     .claim = "the program cannot read jobwarden's memory"},
    {.name = "parent_spoof",
     .canary = "parent-spoof",
     .judge = probe_parent_spoof,
     .claim = "no process leaves the job by a spoofed parent"},
    {.name = "event_file.write",
     .canary = "event-file",
     .judge = probe_event_file,
     .word = "write",
     .claim = "the program cannot write the event file"},
    {.name = "event_file.delete",
     .canary = "event-file",
     .judge = probe_event_file,
     .word = "delete",
     .claim = "the program cannot delete the event file"},
    {.name = "event_file.rename",
     .canary = "event-file",
     .judge = probe_event_file,
     .word = "rename",
     .claim = "the program cannot rename the event file"},
    {.name = "control_pipe",
     .canary = "control",
     .judge = probe_control_pipe,
     .claim = "the program cannot control its own run"},
    {.name = "pipe_reader",
     .canary = "pipe-reader",
     .judge = probe_pipe_reader,
     .claim = "the program cannot read the event pipe"},
    {.name = "token.integrity", .canary = "token", .judge = probe_token_integrity},
    {.name = "token.privileges", .canary = "token", .judge = probe_token_privileges},
};
#define N_CHECKS (sizeof(checks) / sizeof(checks[0]))

int jw__probe_canary_main(int argc, char **argv) {
  const char *kind = argc > 0 ? argv[0] : "";
  unsigned long long num[CANARY_ARGC_MAX];
  size_t k;
  int i;
  memset(num, 0, sizeof(num));
  for (k = 0; k < sizeof(canaries) / sizeof(canaries[0]); k++) {
    if (strcmp(canaries[k].kind, kind) != 0)
      continue;
    if (argc < canaries[k].argc_min || argc > canaries[k].argc_max || argc > CANARY_ARGC_MAX)
      break;
    for (i = 1; i < argc; i++)
      if ((canaries[k].numeric >> i & 1u) && parse_ull(argv[i], &num[i]) != 0)
        break;
    if (i < argc)
      break;
    return canaries[k].run(argc, argv, num);
  }
  canary_say("error", 0, "unknown canary '%.40s' or wrong arguments", kind);
  return 2;
}

int jw__probe_check_info(size_t i, const char **name, const char **canary) {
  if (i >= N_CHECKS)
    return -1;
  *name = checks[i].name;
  *canary = checks[i].canary;
  return 0;
}

int jw__probe_canary_known(const char *kind) {
  size_t k;
  for (k = 0; kind != NULL && k < sizeof(canaries) / sizeof(canaries[0]); k++)
    if (strcmp(canaries[k].kind, kind) == 0)
      return 1;
  return 0;
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
    json_object_set(o, "facts", p->facts ? p->facts : json_null());
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

static void probes_free(probe_t *probes, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    json_decref(probes[i].facts);
    probes[i].facts = NULL;
  }
}

static void prober_free(prober_t *pr) {
  if (pr->token != NULL)
    CloseHandle(pr->token);
  if (pr->window != NULL)
    DestroyWindow(pr->window);
  if (pr->nul != INVALID_HANDLE_VALUE && pr->nul != NULL)
    CloseHandle(pr->nul);
  free(pr->self);
}

/* jobwarden's self-protection, applied to the probe's own process, and the
 * program's token. The jobwarden.* and parent_spoof canaries open this
 * process, so it is protected exactly like the process of `run`, by the
 * same calls `run` makes (src/win/runner.c), and this is the one place the
 * probe applies them. A protection that cannot be applied is not an error
 * of the probe: the canaries then show what the program could do to an
 * unprotected jobwarden. A token that cannot be built is (`run` would not
 * start either). 0 or -1 (pr->err). */
static int probe_protect_self(prober_t *pr) {
  jw_error_t ignored;
  unsigned uninherited = 0, inheritable = 0;
  memset(&ignored, 0, sizeof(ignored));
  (void)jw__self_protect(&ignored);
  jw__handles_uninherit(&uninherited, &inheritable);
  return jw__token_build(pr->policy.token, &pr->token, &pr->err) == 0 ? 0 : -1;
}

int jw_probe(const jw_policy_t *policy, int json) {
  prober_t pr;
  probe_t probes[N_CHECKS];
  size_t n, i;
  int status = JW_EXIT_OK, rc = 0;

  memset(probes, 0, sizeof(probes));
  if (prober_init(&pr, policy) != 0 || probe_protect_self(&pr) != 0) {
    say_error(pr.err.text);
    prober_free(&pr);
    return JW_EXIT_JW_ERROR;
  }
  for (n = 0; n < N_CHECKS; n++) {
    const check_t *c = &checks[n];
    probe_t *p = &probes[n];
    p->name = c->name;
    p->field = c->field;
    if (c->claim != NULL) {
      p->claimed = 1;
      snprintf(p->claim, sizeof(p->claim), "%s", c->claim);
    }
    if (rc == 0)
      rc = c->judge(&pr, p, c);
  }

  if (rc != 0) {
    say_error(pr.err.text);
    probes_free(probes, N_CHECKS);
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
      probes_free(probes, N_CHECKS);
      prober_free(&pr);
      return JW_EXIT_JW_ERROR;
    }
    out_text(text);
    out_text("\n");
    free(text);
  } else {
    print_table(&pr, probes, n, status);
  }
  probes_free(probes, N_CHECKS);
  prober_free(&pr);
  return status;
}

/* Escape detection primitives: see src/win/escape.h. */
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <tlhelp32.h>
#include <winternl.h>

#include "win/escape.h"
#include "win/win.h"

/* FILETIME of 2000-01-01, and of "now" plus a day: a creation time outside
 * that range is not believed (Wine, a process still starting). */
#define FILETIME_2000  0x01BF53EB256D4000ull
#define CT_RETRIES     12
#define CT_RETRY_SLEEP 10

static volatile LONG self_hooked;
static volatile LONG toolhelp_only;

void jw__escape_toolhelp_only(int on) {
  InterlockedExchange(&toolhelp_only, on != 0);
}
static volatile DWORD self_pid;

DWORD jw__escape_self_pid(void) {
  MemoryBarrier();
  return self_hooked ? self_pid : GetCurrentProcessId();
}

void jw__escape_self_hook(DWORD pid) {
  self_pid = pid;
  MemoryBarrier();
  InterlockedExchange(&self_hooked, 1);
}

typedef LONG(NTAPI *nt_query_system_fn)(ULONG, PVOID, ULONG, PULONG);

/* The head of SYSTEM_PROCESS_INFORMATION (winternl.h hides these fields
 * in Reserved members): offsets as documented for NtQuerySystemInformation
 * class 5 on 64-bit Windows. */
typedef struct spi_head_s {
  ULONG next;
  ULONG threads;
  LARGE_INTEGER private_ws, hard_faults_and_hwm, cycle_time;
  LARGE_INTEGER create_time, user_time, kernel_time;
  UNICODE_STRING image;
  LONG base_priority;
  HANDLE pid;
  HANDLE ppid;
} spi_head_t;

#define SYSTEM_PROCESS_INFORMATION_CLASS 5
#define STATUS_INFO_LENGTH_MISMATCH_     ((LONG)0xC0000004)

/* The list through NtQuerySystemInformation(SystemProcessInformation):
 * one call, where Toolhelp32 makes a snapshot object and a call per
 * process (measured under Wine: docs/performance.md). 0, or an NTSTATUS
 * or -1 (the caller falls back to Toolhelp32). */
static LONG snapshot_nt(jw__escape_snap_t *s) {
  static nt_query_system_fn q;
  LONG st;
  ULONG need = 0, off = 0;
  if (q == NULL) {
    HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    q = ntdll ? (nt_query_system_fn)(void *)GetProcAddress(ntdll, "NtQuerySystemInformation")
              : NULL;
    if (q == NULL)
      return -1;
  }
  for (;;) {
    if (s->raw_cap == 0) {
      s->raw_cap = 256 * 1024;
      s->raw = malloc(s->raw_cap);
      if (s->raw == NULL) {
        s->raw_cap = 0;
        return -1;
      }
    }
    st = q(SYSTEM_PROCESS_INFORMATION_CLASS, s->raw, s->raw_cap, &need);
    if (st != STATUS_INFO_LENGTH_MISMATCH_)
      break;
    free(s->raw);
    s->raw = NULL;
    s->raw_cap = need > s->raw_cap * 2 ? need + 65536 : s->raw_cap * 2;
    s->raw = malloc(s->raw_cap);
    if (s->raw == NULL) {
      s->raw_cap = 0;
      return -1;
    }
  }
  if (st < 0)
    return st;
  for (;;) {
    const spi_head_t *e = (const spi_head_t *)((const char *)s->raw + off);
    if (s->n == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 256;
      jw__proc_pair_t *p = realloc(s->procs, cap * sizeof(*p));
      if (p == NULL) {
        s->n = 0;
        return -1;
      }
      s->procs = p;
      s->cap = cap;
    }
    s->procs[s->n].pid = (DWORD)(ULONG_PTR)e->pid;
    s->procs[s->n].ppid = (DWORD)(ULONG_PTR)e->ppid;
    s->n++;
    if (e->next == 0 || off + e->next + sizeof(spi_head_t) > s->raw_cap)
      break;
    off += e->next;
  }
  return 0;
}

DWORD jw__escape_snapshot(jw__escape_snap_t *s) {
  HANDLE snap;
  PROCESSENTRY32W pe;
  DWORD e = 0;
  s->n = 0;
  if (!toolhelp_only && snapshot_nt(s) == 0)
    return 0;
  s->n = 0;
  snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return GetLastError();
  memset(&pe, 0, sizeof(pe));
  pe.dwSize = sizeof(pe);
  if (!Process32FirstW(snap, &pe)) {
    e = GetLastError();
    goto done;
  }
  do {
    if (s->n == s->cap) {
      size_t cap = s->cap ? s->cap * 2 : 256;
      jw__proc_pair_t *p = realloc(s->procs, cap * sizeof(*p));
      if (p == NULL) {
        e = ERROR_NOT_ENOUGH_MEMORY;
        s->n = 0;
        goto done;
      }
      s->procs = p;
      s->cap = cap;
    }
    s->procs[s->n].pid = pe.th32ProcessID;
    s->procs[s->n].ppid = pe.th32ParentProcessID;
    s->n++;
  } while (Process32NextW(snap, &pe));
done:
  CloseHandle(snap);
  return e;
}

void jw__escape_snap_free(jw__escape_snap_t *s) {
  free(s->procs);
  free(s->raw);
  memset(s, 0, sizeof(*s));
}

int jw__escape_born_of(uint64_t parent_ct, uint64_t parent_end, uint64_t child_ct) {
  if (parent_ct == 0 || child_ct == 0)
    return 0;
  return child_ct >= parent_ct && (parent_end == 0 || child_ct <= parent_end);
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t jw__escape_scan_wait(uint64_t message, uint64_t due, uint64_t now, int *at_bound) {
  uint64_t quiet = add_sat(message, JW__SCAN_QUIET_MS), bound = add_sat(due, JW__SCAN_QUIET_MAX_MS);
  uint64_t at = quiet > due ? quiet : due;
  *at_bound = 0;
  if (at > bound) {
    at = bound;
    *at_bound = 1;
  }
  return now >= at ? 0 : at - now;
}

static int plausible(uint64_t ft) {
  FILETIME now;
  uint64_t n;
  GetSystemTimeAsFileTime(&now);
  n = ((uint64_t)now.dwHighDateTime << 32) | now.dwLowDateTime;
  return ft >= FILETIME_2000 && ft <= n + 864000000000ull;
}

uint64_t jw__escape_create_time(HANDLE process) {
  int attempt;
  for (attempt = 0; attempt < CT_RETRIES; attempt++) {
    FILETIME ct, xt, kt, ut;
    uint64_t v;
    memset(&ct, 0, sizeof(ct));
    if (!GetProcessTimes(process, &ct, &xt, &kt, &ut))
      return 0;
    v = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
    if (plausible(v))
      return v;
    Sleep(CT_RETRY_SLEEP);
  }
  return 0;
}

/* SYNCHRONIZE: its exit is waited for; QUERY_INFORMATION: Wine's
 * IsProcessInJob refuses a limited handle; TERMINATE: the policy may kill
 * it; VM_READ: the monitor reads its command line from its memory. */
#define FULL_RIGHTS                                                                                \
  (SYNCHRONIZE | PROCESS_QUERY_INFORMATION | PROCESS_QUERY_LIMITED_INFORMATION |                   \
   PROCESS_TERMINATE | PROCESS_VM_READ)

jw__escape_verdict_t jw__escape_examine(HANDLE job, DWORD pid, uint64_t parent_ct,
                                        uint64_t parent_end, HANDLE *h, uint64_t *ct, DWORD *err) {
  HANDLE p;
  BOOL in_job = TRUE;
  uint64_t created;
  *h = NULL;
  *ct = 0;
  *err = 0;
  p = OpenProcess(FULL_RIGHTS, FALSE, pid);
  if (p == NULL && GetLastError() == ERROR_ACCESS_DENIED)
    p = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_INFORMATION | PROCESS_TERMINATE, FALSE, pid);
  if (p == NULL && GetLastError() == ERROR_ACCESS_DENIED)
    p = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_INFORMATION, FALSE, pid);
  if (p == NULL) {
    *err = GetLastError();
    return *err == ERROR_INVALID_PARAMETER ? JW__ESC_GONE : JW__ESC_ERROR;
  }
  if (!IsProcessInJob(p, job, &in_job)) {
    *err = GetLastError();
    CloseHandle(p);
    return JW__ESC_ERROR;
  }
  if (in_job) {
    CloseHandle(p);
    return JW__ESC_INSIDE;
  }
  created = jw__escape_create_time(p);
  if (created == 0) {
    *err = GetLastError() ? GetLastError() : ERROR_INVALID_DATA;
    CloseHandle(p);
    return JW__ESC_ERROR;
  }
  if (!jw__escape_born_of(parent_ct, parent_end, created)) {
    CloseHandle(p);
    return JW__ESC_NOT_CHILD;
  }
  *h = p;
  *ct = created;
  return JW__ESC_OUTSIDE;
}

/* Ancestors looked at for an escape, at most. */
#define ESCAPE_DEPTH 32

const char *jw__escape_ancestry(HANDLE job, HANDLE client, uint64_t since, DWORD *via) {
  DWORD self = jw__escape_self_pid(), ppid = 0;
  HANDLE cur = client, p = NULL;
  uint64_t cur_ct = jw__escape_create_time(client);
  const char *kind = NULL;
  int depth;
  for (depth = 0; depth < ESCAPE_DEPTH && cur_ct != 0; depth++) {
    uint64_t pct;
    BOOL in_job = FALSE;
    if (!jw__proc_parent(cur, &ppid) || ppid == 0)
      break;
    if (ppid == self) {
      if (cur_ct >= since) {
        kind = "jobwarden";
        *via = ppid;
      }
      break;
    }
    p = OpenProcess(PROCESS_QUERY_INFORMATION, FALSE, ppid);
    if (p == NULL)
      break;
    pct = jw__escape_create_time(p);
    if (pct == 0 || pct > cur_ct)
      break;
    if (IsProcessInJob(p, job, &in_job) && in_job) {
      kind = "member";
      *via = ppid;
      break;
    }
    if (cur != client)
      CloseHandle(cur);
    cur = p;
    cur_ct = pct;
    p = NULL;
  }
  if (p != NULL)
    CloseHandle(p);
  if (cur != client)
    CloseHandle(cur);
  return kind;
}

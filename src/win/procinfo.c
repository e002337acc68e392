/* What the monitor reads about a process besides its image: the command
 * line, the user and integrity level of its token, and at exit its times,
 * peak working set and I/O counters. Every reader says why when it cannot
 * give a true value; none ever hands back a number it cannot vouch for
 * (Wine answers GetProcessTimes on another process with the caller's own
 * times, and GetProcessIoCounters with zeros). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "win/win.h"

#include <psapi.h>
#include <sddl.h>
#include <winternl.h>

typedef LONG(NTAPI *nt_query_fn)(HANDLE, PROCESSINFOCLASS, PVOID, ULONG, PULONG);

#define PROCESS_COMMAND_LINE_INFORMATION 60 /* PROCESSINFOCLASS, Windows 8.1+ */
#define STATUS_INFO_LENGTH_MISMATCH_     ((LONG)0xC0000004)
#define STATUS_BUFFER_OVERFLOW_          ((LONG)0x80000005)
#define STATUS_BUFFER_TOO_SMALL_         ((LONG)0xC0000023)

static nt_query_fn nt_query(void) {
  static nt_query_fn fn;
  if (fn == NULL) {
    HMODULE nt = GetModuleHandleW(L"ntdll.dll");
    if (nt != NULL)
      fn = (nt_query_fn)(void (*)(void))GetProcAddress(nt, "NtQueryInformationProcess");
  }
  return fn;
}

const char *jw__wine_version(void) {
  typedef const char *(CDECL * wine_get_version_fn)(void);
  HMODULE nt = GetModuleHandleW(L"ntdll.dll");
  wine_get_version_fn fn =
      nt ? (wine_get_version_fn)(void (*)(void))GetProcAddress(nt, "wine_get_version") : NULL;
  return fn ? fn() : NULL;
}

int jw__is_wine(void) {
  static int cached = -1;
  if (cached < 0)
    cached = jw__wine_version() != NULL;
  return cached;
}

int jw__proc_parent(HANDLE h, DWORD *ppid) {
  nt_query_fn q = nt_query();
  PROCESS_BASIC_INFORMATION pbi;
  ULONG got = 0;
  memset(&pbi, 0, sizeof(pbi));
  if (q == NULL || q(h, ProcessBasicInformation, &pbi, sizeof(pbi), &got) < 0)
    return 0;
  *ppid = (DWORD)pbi.InheritedFromUniqueProcessId;
  return 1;
}

/* UTF-16 units to the counted UTF-8 form events keep, at most max_units
 * of them. */
static int to_utf8_max(const wchar_t *s, size_t units, size_t max_units, char **out, size_t *len,
                       int *truncated) {
  return jw_utf16_to_utf8((const uint16_t *)s, units, max_units, out, len, truncated) == 0 ? 0 : -1;
}

static int to_utf8(const wchar_t *s, size_t units, char **out, size_t *len, int *truncated) {
  return to_utf8_max(s, units, JW_HOSTILE_MAX_UNITS, out, len, truncated);
}

/* A command line is cut at JW_COMMAND_LINE_MAX_UNITS: one up to the
 * system's 32767 units of characters that each escape to six bytes would
 * make an event too big for a syslog datagram, and so lose it there. */
static int cmdline_utf8(const wchar_t *s, size_t units, char **out, size_t *len, int *truncated) {
  return to_utf8_max(s, units, JW_COMMAND_LINE_MAX_UNITS, out, len, truncated);
}

/* Whether s holds a U+0000. No command line does (CreateProcess takes a
 * NUL-terminated string, and the length stops before it): one that does
 * was read while the process's memory was being written or torn down
 * (seen under Wine for a short-lived child: the string's length over
 * reused memory), or was put there by a process that rewrote its own
 * parameter block or a suspended child's (so that its line would carry a
 * \u0000 that strict readers refuse or C strings cut). Either way it is not
 * a command line jobwarden reports. */
static int has_nul(const wchar_t *s, size_t units) {
  size_t i;
  for (i = 0; i < units; i++)
    if (s[i] == 0)
      return 1;
  return 0;
}

/* Class 60: a UNICODE_STRING followed by its characters, in one buffer. */
static LONG command_line_class60(HANDLE h, char **out, size_t *len, int *truncated) {
  nt_query_fn q = nt_query();
  ULONG size = 4096, got = 0;
  LONG st;
  int attempt;
  if (q == NULL)
    return (LONG)0xC0000002; /* STATUS_NOT_IMPLEMENTED */
  for (attempt = 0; attempt < 3; attempt++) {
    UNICODE_STRING *us = malloc(size);
    if (us == NULL)
      return (LONG)0xC0000017; /* STATUS_NO_MEMORY */
    st = q(h, (PROCESSINFOCLASS)PROCESS_COMMAND_LINE_INFORMATION, us, size, &got);
    if (st >= 0) {
      /* The string must lie inside what was returned. */
      size_t units = us->Length / sizeof(wchar_t);
      const char *base = (const char *)us, *buf = (const char *)us->Buffer;
      if (us->Buffer == NULL || units == 0) {
        /* Never "": an empty answer is what a process still being set up
         * shows; the PEB read below decides (and says why). */
        st = (LONG)0xC0000001; /* STATUS_UNSUCCESSFUL */
      } else if (buf < base + sizeof(*us) || buf + us->Length > base + size ||
                 has_nul(us->Buffer, units)) {
        st = (LONG)0xC0000001; /* STATUS_UNSUCCESSFUL: inconsistent answer */
      } else {
        st = cmdline_utf8(us->Buffer, units, out, len, truncated) == 0 ? 0 : (LONG)0xC0000017;
      }
      free(us);
      return st;
    }
    free(us);
    if ((st != STATUS_INFO_LENGTH_MISMATCH_ && st != STATUS_BUFFER_OVERFLOW_ &&
         st != STATUS_BUFFER_TOO_SMALL_) ||
        got <= size || got > 70000)
      return st;
    size = got;
  }
  return st;
}

/* The fallback: the command line the process keeps in its own memory
 * (PEB -> RTL_USER_PROCESS_PARAMETERS -> CommandLine). The process can
 * change it, so it is "what the process holds", as class 60 is too. */
static DWORD command_line_peb(HANDLE h, char **out, size_t *len, int *truncated,
                              const char **step) {
  nt_query_fn q = nt_query();
  PROCESS_BASIC_INFORMATION pbi;
  PEB peb;
  RTL_USER_PROCESS_PARAMETERS pp;
  SIZE_T got = 0;
  ULONG rl = 0;
  wchar_t *buf;
  size_t units;
  DWORD e = 0;
  LONG st;

  *step = "NtQueryInformationProcess(ProcessBasicInformation)";
  if (q == NULL)
    return ERROR_PROC_NOT_FOUND;
  memset(&pbi, 0, sizeof(pbi));
  st = q(h, ProcessBasicInformation, &pbi, sizeof(pbi), &rl);
  if (st < 0)
    return (DWORD)st;
  if (pbi.PebBaseAddress == NULL)
    return ERROR_INVALID_DATA;
  *step = "ReadProcessMemory(PEB)";
  if (!ReadProcessMemory(h, pbi.PebBaseAddress, &peb, sizeof(peb), &got) || got != sizeof(peb))
    return GetLastError() ? GetLastError() : ERROR_PARTIAL_COPY;
  if (peb.ProcessParameters == NULL)
    return ERROR_INVALID_DATA;
  *step = "ReadProcessMemory(process parameters)";
  if (!ReadProcessMemory(h, peb.ProcessParameters, &pp, sizeof(pp), &got) || got != sizeof(pp))
    return GetLastError() ? GetLastError() : ERROR_PARTIAL_COPY;
  units = pp.CommandLine.Length / sizeof(wchar_t); /* at most 32767: bounded */
  if (units == 0 || pp.CommandLine.Buffer == NULL) {
    /* A process caught while it is being set up shows a parameter block
     * with no command line yet (Wine, floods: up to 2 % of children). An
     * empty string would be a value claimed as true: it is reported as not
     * read (the monitor retries; then the field is absent and named in
     * process.unavailable). A process started with a really empty command
     * line is reported the same way, never as "". */
    *step = "ReadProcessMemory(process parameters): no command line (empty or still being set up)";
    return ERROR_NOT_READY;
  }
  buf = malloc(units * sizeof(wchar_t));
  if (buf == NULL)
    return ERROR_NOT_ENOUGH_MEMORY;
  *step = "ReadProcessMemory(command line)";
  if (!ReadProcessMemory(h, pp.CommandLine.Buffer, buf, units * sizeof(wchar_t), &got) ||
      got != units * sizeof(wchar_t)) {
    e = GetLastError() ? GetLastError() : ERROR_PARTIAL_COPY;
  } else if (buf[0] == 0) {
    /* A process caught while it is being set up (Wine: a grandchild at its
     * NEW_PROCESS) has the string's length but not yet its characters: no
     * command line starts with U+0000. */
    *step = "ReadProcessMemory(command line): still being written";
    e = ERROR_NOT_READY;
  } else if (has_nul(buf, units)) {
    /* Kept short: with the prefix below it fits a tracked process's
     * 200-byte reason (monitor_int.h), which test_nul_cmdline reads whole. */
    *step = "ReadProcessMemory(command line): " JW__CMDLINE_NUL " (being written, torn "
            "down or rewritten)";
    e = JW__CMDLINE_NUL_ERROR;
  } else if (cmdline_utf8(buf, units, out, len, truncated) != 0)
    e = ERROR_NOT_ENOUGH_MEMORY;
  free(buf);
  return e;
}

int jw__proc_command_line(HANDLE h, char **out, size_t *len, int *truncated, char *why,
                          size_t why_size) {
  LONG st;
  DWORD e;
  const char *step = "";
  *out = NULL;
  *len = 0;
  *truncated = 0;
  st = command_line_class60(h, out, len, truncated);
  if (st >= 0 && *out != NULL)
    return 0;
  e = command_line_peb(h, out, len, truncated, &step);
  if (e == 0 && *out != NULL)
    return 0;
  free(*out);
  *out = NULL;
  *len = 0;
  *truncated = 0;
  snprintf(why, why_size,
           "class 60 query failed with NTSTATUS 0x%08lX; reading it from the process failed at %s "
           "(error %lu)",
           (unsigned long)st, step, (unsigned long)e);
  return e != 0 ? (int)e : -1;
}

int jw__proc_user(HANDLE h, char **sid_out, void **sid_bin, const char **integrity, char *why,
                  size_t why_size) {
  HANDLE tok = NULL;
  union {
    TOKEN_USER user;
    TOKEN_MANDATORY_LABEL label;
    BYTE raw[256];
  } info;
  DWORD n = 0, sid_len;
  LPWSTR s = NULL;
  size_t len;
  int rc = -1;

  *sid_out = NULL;
  *sid_bin = NULL;
  *integrity = NULL;
  if (!OpenProcessToken(h, TOKEN_QUERY, &tok)) {
    snprintf(why, why_size, "OpenProcessToken failed (error %lu)", (unsigned long)GetLastError());
    return -1;
  }
  if (!GetTokenInformation(tok, TokenUser, &info, sizeof(info), &n)) {
    snprintf(why, why_size, "GetTokenInformation(TokenUser) failed (error %lu)",
             (unsigned long)GetLastError());
    goto out;
  }
  if (!IsValidSid(info.user.User.Sid)) {
    snprintf(why, why_size, "the token's user SID is not valid");
    goto out;
  }
  if (!ConvertSidToStringSidW(info.user.User.Sid, &s)) {
    snprintf(why, why_size, "ConvertSidToStringSidW failed (error %lu)",
             (unsigned long)GetLastError());
    goto out;
  }
  sid_len = GetLengthSid(info.user.User.Sid);
  *sid_bin = malloc(sid_len);
  if (*sid_bin == NULL || !CopySid(sid_len, *sid_bin, info.user.User.Sid) ||
      to_utf8(s, wcslen(s), sid_out, &len, NULL) != 0) {
    free(*sid_bin);
    *sid_bin = NULL;
    snprintf(why, why_size, "out of memory");
    goto out;
  }
  rc = 0;
  /* The integrity level is optional (the SID alone is returned without). */
  if (GetTokenInformation(tok, TokenIntegrityLevel, &info, sizeof(info), &n) &&
      IsValidSid(info.label.Label.Sid) && *GetSidSubAuthorityCount(info.label.Label.Sid) > 0)
    *integrity = jw__integrity_name(*GetSidSubAuthority(
        info.label.Label.Sid, *GetSidSubAuthorityCount(info.label.Label.Sid) - 1u));
out:
  if (s != NULL)
    LocalFree(s);
  CloseHandle(tok);
  return rc;
}

char *jw__sid_account_name(void *sid) {
  wchar_t name[256], domain[256], full[520];
  DWORD nn = 256, dn = 256;
  SID_NAME_USE use;
  char *out = NULL;
  size_t len;
  if (!LookupAccountSidW(NULL, (PSID)sid, name, &nn, domain, &dn, &use))
    return NULL;
  if (domain[0] != 0)
    swprintf(full, 520, L"%ls\\%ls", domain, name);
  else
    swprintf(full, 520, L"%ls", name);
  if (to_utf8(full, wcslen(full), &out, &len, NULL) != 0)
    return NULL;
  return out;
}

uint64_t jw__peak_working_set(HANDLE h) {
  PROCESS_MEMORY_COUNTERS pmc;
  memset(&pmc, 0, sizeof(pmc));
  pmc.cb = sizeof(pmc);
  if (!GetProcessMemoryInfo(h, &pmc, sizeof(pmc)))
    return 0;
  return pmc.PeakWorkingSetSize;
}

static uint64_t ft64(FILETIME f) {
  return ((uint64_t)f.dwHighDateTime << 32) | f.dwLowDateTime;
}

int jw__proc_cpu_times(HANDLE h, jw__process_times_fn fn, uint64_t *user, uint64_t *kernel,
                       uint64_t *exit_time, DWORD *error) {
  FILETIME c, x, k, u, c0, x0, k0, u0, c1, x1, k1, u1;
  BOOL own0, got, own1;
  *user = *kernel = 0;
  if (exit_time != NULL)
    *exit_time = 0;
  *error = 0;
  own0 = GetProcessTimes(GetCurrentProcess(), &c0, &x0, &k0, &u0);
  got = fn != NULL ? fn(h, &c, &x, &k, &u) : GetProcessTimes(h, &c, &x, &k, &u);
  if (!got) {
    *error = GetLastError();
    return JW_CPU_FAILED;
  }
  own1 = GetProcessTimes(GetCurrentProcess(), &c1, &x1, &k1, &u1);
  *user = ft64(u);
  *kernel = ft64(k);
  if (exit_time != NULL)
    *exit_time = ft64(x);
  if (!own0 || !own1) {
    *error = GetLastError();
    return JW_CPU_UNCHECKED;
  }
  /* Some kernels (Wine) answer for another process with the caller's own
   * times: an answer within jobwarden's own, read just before and after,
   * in both user and kernel time is not believed. */
  if (*user >= ft64(u0) && *user <= ft64(u1) && *kernel >= ft64(k0) && *kernel <= ft64(k1))
    return JW_CPU_OWN;
  return JW_CPU_OK;
}

static jw__proc_state_t (*state_hook)(HANDLE h, jw__proc_state_t real);

void jw__proc_state_hook(jw__proc_state_t (*fn)(HANDLE h, jw__proc_state_t real)) {
  state_hook = fn;
}

jw__proc_state_t jw__proc_state(HANDLE h, DWORD wait_ms) {
  FILETIME created, exited, kernel, user;
  DWORD code = 0;
  jw__proc_state_t st;
  if (h == NULL || WaitForSingleObject(h, wait_ms) != WAIT_OBJECT_0)
    st = JW_PROC_RUNNING;
  /* Signaled. On Windows that is the end; under Wine it is also a process
   * with no running thread (before its first thread ran, after its last
   * one left) whose exit time still reads 0 and exit code 259. */
  else if (GetProcessTimes(h, &created, &exited, &kernel, &user))
    st = (exited.dwLowDateTime | exited.dwHighDateTime) != 0 ? JW_PROC_ENDED : JW_PROC_UNSETTLED;
  /* The times need the same right as the exit code: a handle that reads
   * neither is taken at its signal's word. */
  else
    st = !GetExitCodeProcess(h, &code) || code != STILL_ACTIVE ? JW_PROC_ENDED : JW_PROC_UNSETTLED;
  return state_hook != NULL ? state_hook(h, st) : st;
}

int jw__proc_ended(HANDLE h) {
  return jw__proc_state(h, 0) == JW_PROC_ENDED;
}

int64_t jw__proc_exit_code(HANDLE h) {
  DWORD code = 0;
  /* GetExitCodeProcess answers 259 for a process that still runs, and a
   * process may also exit with 259: only its end tells them apart. */
  if (!jw__proc_ended(h) || !GetExitCodeProcess(h, &code))
    return -1;
  return (int64_t)code;
}

int jw__proc_await_end(HANDLE h, DWORD max_ms) {
  ULONGLONG end = GetTickCount64() + max_ms;
  jw__proc_state_t st;
  /* Called once h signaled: under Wine the end follows within moments. */
  while ((st = jw__proc_state(h, 0)) == JW_PROC_UNSETTLED && GetTickCount64() < end)
    Sleep(1);
  return st == JW_PROC_ENDED;
}

int64_t jw__proc_exit_code_settled(HANDLE h, DWORD max_ms) {
  (void)jw__proc_await_end(h, max_ms);
  return jw__proc_exit_code(h);
}

void jw__proc_exit_facts(HANDLE h, jw__exit_facts_t *f) {
  PROCESS_MEMORY_COUNTERS pmc;
  IO_COUNTERS io;
  uint64_t user, kernel;
  DWORD e;
  int rc;

  memset(f, 0, sizeof(*f));
  rc = jw__proc_cpu_times(h, NULL, &user, &kernel, &f->end_time, &e);
  if (rc == JW_CPU_FAILED) {
    snprintf(f->end_why, sizeof(f->end_why), "GetProcessTimes failed (error %lu)",
             (unsigned long)e);
    snprintf(f->cpu_why, sizeof(f->cpu_why), "GetProcessTimes failed (error %lu)",
             (unsigned long)e);
  } else {
    if (f->end_time == 0)
      snprintf(f->end_why, sizeof(f->end_why), "the system gave no exit time");
    if (rc == JW_CPU_UNCHECKED)
      snprintf(f->cpu_why, sizeof(f->cpu_why),
               "jobwarden's own CPU times could not be read to check the answer (error %lu)",
               (unsigned long)e);
    else if (rc == JW_CPU_OWN)
      snprintf(f->cpu_why, sizeof(f->cpu_why),
               "the system answered with jobwarden's own CPU times, not the process's");
    else {
      f->has_cpu = 1;
      f->cpu_kernel_100ns = kernel;
      f->cpu_user_100ns = user;
    }
  }

  memset(&pmc, 0, sizeof(pmc));
  pmc.cb = sizeof(pmc);
  if (GetProcessMemoryInfo(h, &pmc, sizeof(pmc)))
    f->peak_working_set = pmc.PeakWorkingSetSize;
  else
    snprintf(f->memory_why, sizeof(f->memory_why), "GetProcessMemoryInfo failed (error %lu)",
             (unsigned long)GetLastError());

  if (jw__is_wine()) {
    snprintf(f->io_why, sizeof(f->io_why),
             "Wine reports zero I/O counters for every other process");
  } else if (GetProcessIoCounters(h, &io)) {
    f->has_io = 1;
    f->io_read_ops = io.ReadOperationCount;
    f->io_write_ops = io.WriteOperationCount;
    f->io_other_ops = io.OtherOperationCount;
    f->io_read_bytes = io.ReadTransferCount;
    f->io_write_bytes = io.WriteTransferCount;
    f->io_other_bytes = io.OtherTransferCount;
  } else {
    snprintf(f->io_why, sizeof(f->io_why), "GetProcessIoCounters failed (error %lu)",
             (unsigned long)GetLastError());
  }
}

/* Platform layer for Windows. */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include <sddl.h>

void jw__mutex_init(jw__mutex_t *m) {
  InitializeCriticalSection(m);
}
void jw__mutex_lock(jw__mutex_t *m) {
  EnterCriticalSection(m);
}
void jw__mutex_unlock(jw__mutex_t *m) {
  LeaveCriticalSection(m);
}
void jw__mutex_destroy(jw__mutex_t *m) {
  DeleteCriticalSection(m);
}

/* RtlGenRandom is exported by advapi32 as SystemFunction036; it needs no
 * provider handle and is what the CRT's rand_s() uses. */
typedef BOOLEAN(WINAPI *jw__rtlgenrandom_fn)(PVOID, ULONG);

int jw__random_bytes(void *buf, size_t n) {
  static jw__rtlgenrandom_fn fn;
  if (fn == NULL) {
    HMODULE mod = LoadLibraryW(L"advapi32.dll");
    if (mod == NULL)
      return JW_ESYS;
    fn = (jw__rtlgenrandom_fn)(void (*)(void))GetProcAddress(mod, "SystemFunction036");
    if (fn == NULL)
      return JW_ESYS;
  }
  if (n > 0xFFFFFFFFu || !fn(buf, (ULONG)n))
    return JW_ESYS;
  return 0;
}

/* Both names as UTF-16, then CompareStringOrdinal with bIgnoreCase: the
 * comparison the monitor's image lists have always used (NTFS-like). */
int jw__name_equal_nocase(const char *a, size_t alen, const char *b, size_t blen) {
  wchar_t wa[1024], wb[1024];
  int na, nb;
  if (alen == 0 || blen == 0 || alen > 1024 || blen > 1024)
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
  na = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, a, (int)alen, wa, 1024);
  nb = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, b, (int)blen, wb, 1024);
  if (na <= 0 || nb <= 0)
    return alen == blen && memcmp(a, b, alen) == 0;
  return CompareStringOrdinal(wa, na, wb, nb, TRUE) == CSTR_EQUAL;
}

void jw__hostname(char *buf, size_t size) {
  wchar_t name[256];
  DWORD len = (DWORD)(sizeof(name) / sizeof(name[0]));
  if (size == 0)
    return;
  if (!GetComputerNameExW(ComputerNameDnsHostname, name, &len) || len == 0 ||
      WideCharToMultiByte(CP_UTF8, 0, name, (int)len, buf, (int)size - 1, NULL, NULL) <= 0) {
    jw__strlcpy(buf, "unknown", size);
    return;
  }
  buf[size - 1] = '\0';
  {
    int n = WideCharToMultiByte(CP_UTF8, 0, name, (int)len, NULL, 0, NULL, NULL);
    if (n > 0 && (size_t)n < size)
      buf[n] = '\0';
  }
}

int jw__write_all(HANDLE h, const char *buf, size_t len) {
  if (h == NULL || h == INVALID_HANDLE_VALUE)
    return -1;
  while (len > 0) {
    DWORD w = 0;
    if (!WriteFile(h, buf, len > 65536 ? 65536 : (DWORD)len, &w, NULL) || w == 0)
      return -1;
    buf += w;
    len -= w;
  }
  return 0;
}

void jw__stderr_write(const char *buf, size_t len) {
  jw__write_all(GetStdHandle(STD_ERROR_HANDLE), buf, len);
}

/* 100 ns ticks since 1601-01-01 -> microseconds since 1970-01-01. */
static uint64_t unix_us(const FILETIME *ft) {
  ULARGE_INTEGER u;
  u.LowPart = ft->dwLowDateTime;
  u.HighPart = ft->dwHighDateTime;
  return (u.QuadPart - 116444736000000000ull) / 10u;
}

uint64_t jw__event_clock_us(void) {
  FILETIME ft;
  GetSystemTimeAsFileTime(&ft);
  return unix_us(&ft);
}

uint64_t jw_now_us(void) {
  FILETIME ft;
  GetSystemTimePreciseAsFileTime(&ft);
  return unix_us(&ft);
}

void jw__sys_error_text(uint32_t code, char *buf, size_t size) {
  wchar_t *msg = NULL;
  DWORD n;
  if (size == 0)
    return;
  n = FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM |
                         FORMAT_MESSAGE_IGNORE_INSERTS,
                     NULL, code, 0, (LPWSTR)&msg, 0, NULL);
  /* Messages such as "Bad EXE format for %1." keep their insert when
   * inserts are ignored: drop " for %1" and any other "%1". */
  if (n > 0) {
    wchar_t *p;
    while ((p = wcsstr(msg, L" for %1")) != NULL)
      memmove(p, p + 7, (wcslen(p + 7) + 1) * sizeof(wchar_t));
    while ((p = wcsstr(msg, L"%1")) != NULL)
      memmove(p, p + 2, (wcslen(p + 2) + 1) * sizeof(wchar_t));
    n = (DWORD)wcslen(msg);
  }
  while (n > 0 &&
         (msg[n - 1] == L'\r' || msg[n - 1] == L'\n' || msg[n - 1] == L' ' || msg[n - 1] == L'.'))
    n--;
  if (n == 0 || WideCharToMultiByte(CP_UTF8, 0, msg, (int)n, buf, (int)size - 1, NULL, NULL) <= 0) {
    snprintf(buf, size, "Win32 error %lu", (unsigned long)code);
  } else {
    int len = WideCharToMultiByte(CP_UTF8, 0, msg, (int)n, NULL, 0, NULL, NULL);
    buf[(size_t)len < size ? (size_t)len : size - 1] = '\0';
  }
  if (msg != NULL)
    LocalFree(msg);
}

/* A new malloc'd UTF-16 copy of a UTF-8 string, NULL on invalid input or
 * allocation failure. */
wchar_t *jw__utf8_to_wide(const char *s) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  wchar_t *w;
  if (n <= 0)
    return NULL;
  w = malloc((size_t)n * sizeof(wchar_t));
  if (w == NULL)
    return NULL;
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
    free(w);
    return NULL;
  }
  return w;
}

FILE *jw__fopen_utf8(const char *path, const char *mode) {
  wchar_t *wpath = jw__utf8_to_wide(path), *wmode = jw__utf8_to_wide(mode);
  FILE *f = NULL;
  if (wpath != NULL && wmode != NULL)
    f = _wfopen(wpath, wmode);
  free(wpath);
  free(wmode);
  return f;
}

int jw__stdout_write(const char *buf, size_t len) {
  return jw__write_all(GetStdHandle(STD_OUTPUT_HANDLE), buf, len) == 0 ? 0 : -1;
}

/* "D:P(A;;FA;;;<user>)": a protected DACL (nothing inherited from the
 * folder) whose one entry grants the current user full access. A
 * restricted token checks its restricting SIDs too, which this entry
 * does not name: the sandboxed program is denied (Windows; Wine does not
 * enforce tokens, docs/platform-support.md). */
static int owner_only_sa(SECURITY_ATTRIBUTES *sa, DWORD *e) {
  union {
    TOKEN_USER tu;
    unsigned char raw[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  HANDLE token = NULL;
  DWORD got = 0;
  LPWSTR sid = NULL;
  wchar_t sddl[256];
  int ok;
  memset(sa, 0, sizeof(*sa));
  sa->nLength = sizeof(*sa);
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    *e = GetLastError();
    return -1;
  }
  ok = GetTokenInformation(token, TokenUser, &u, sizeof(u), &got) &&
       ConvertSidToStringSidW(u.tu.User.Sid, &sid);
  *e = ok ? 0 : GetLastError();
  CloseHandle(token);
  if (!ok)
    return -1;
  _snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]) - 1, L"D:P(A;;FA;;;%ls)", sid);
  sddl[sizeof(sddl) / sizeof(sddl[0]) - 1] = L'\0';
  LocalFree(sid);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
                                                            &sa->lpSecurityDescriptor, NULL)) {
    *e = GetLastError();
    return -1;
  }
  return 0;
}

int jw__create_secret_file(const char *path, const void *data, size_t len, jw_error_t *err) {
  SECURITY_ATTRIBUTES sa;
  wchar_t *wpath = jw__utf8_to_wide(path);
  HANDLE h;
  DWORD e = 0;
  char sys[256];
  int rc;
  if (wpath == NULL)
    return jw_error_set(err, JW_EINVAL, 0, path, "%s: not a valid UTF-8 file name", path);
  if (owner_only_sa(&sa, &e) != 0) {
    free(wpath);
    jw__sys_error_text(e, sys, sizeof(sys));
    return jw_error_set(err, JW_ESYS, e, path,
                        "%s: cannot build an owner-only security descriptor (error %lu: %s)", path,
                        (unsigned long)e, sys);
  }
  h = CreateFileW(wpath, GENERIC_WRITE, 0, &sa, CREATE_NEW,
                  FILE_ATTRIBUTE_NORMAL | FILE_FLAG_WRITE_THROUGH, NULL);
  e = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  LocalFree(sa.lpSecurityDescriptor);
  if (h == INVALID_HANDLE_VALUE) {
    free(wpath);
    jw__sys_error_text(e, sys, sizeof(sys));
    return jw_error_set(err, e == ERROR_FILE_EXISTS ? JW_EEXIST : JW_ESYS, e, path,
                        "%s: cannot create (error %lu: %s)%s", path, (unsigned long)e, sys,
                        e == ERROR_FILE_EXISTS ? " (a key file is never overwritten)" : "");
  }
  rc = jw__write_all(h, data, len);
  if (rc == 0 && !FlushFileBuffers(h))
    rc = -1;
  e = rc != 0 ? GetLastError() : 0;
  CloseHandle(h);
  if (rc != 0) {
    DeleteFileW(wpath);
    free(wpath);
    jw__sys_error_text(e, sys, sizeof(sys));
    return jw_error_set(err, JW_EIO, e, path, "%s: cannot write (error %lu: %s)", path,
                        (unsigned long)e, sys);
  }
  free(wpath);
  return 0;
}

void jw__cond_init(jw__cond_t *c) {
  InitializeConditionVariable(c);
}
void jw__cond_wait(jw__cond_t *c, jw__mutex_t *m) {
  SleepConditionVariableCS(c, m, INFINITE);
}
int jw__cond_timedwait(jw__cond_t *c, jw__mutex_t *m, uint32_t ms) {
  if (SleepConditionVariableCS(c, m, ms >= INFINITE ? INFINITE - 1 : ms))
    return 0;
  return GetLastError() == ERROR_TIMEOUT ? 1 : 0;
}
void jw__cond_broadcast(jw__cond_t *c) {
  WakeAllConditionVariable(c);
}
void jw__cond_destroy(jw__cond_t *c) {
  (void)c;
}

/* The protected DACL every thread jobwarden starts gets at its creation
 * (jw__thread_dacl_set, from jw__self_protect): set once, before any
 * other thread exists, and read-only afterwards. */
static BYTE thread_acl[512];
static SECURITY_DESCRIPTOR thread_sd;
static SECURITY_ATTRIBUTES thread_sa;
static volatile LONG thread_sa_state; /* 0 none, 1 being set, 2 set */

int jw__thread_dacl_set(const ACL *acl) {
  if (acl == NULL || acl->AclSize > sizeof(thread_acl))
    return JW_EINVAL;
  if (InterlockedCompareExchange(&thread_sa_state, 1, 0) != 0)
    return 0; /* set by an earlier call: the same entries */
  memcpy(thread_acl, acl, acl->AclSize);
  if (!InitializeSecurityDescriptor(&thread_sd, SECURITY_DESCRIPTOR_REVISION) ||
      !SetSecurityDescriptorDacl(&thread_sd, TRUE, (PACL)thread_acl, FALSE) ||
      !SetSecurityDescriptorControl(&thread_sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED)) {
    InterlockedExchange(&thread_sa_state, 0);
    return JW_ESYS;
  }
  thread_sa.nLength = sizeof(thread_sa);
  thread_sa.lpSecurityDescriptor = &thread_sd;
  thread_sa.bInheritHandle = FALSE;
  MemoryBarrier();
  InterlockedExchange(&thread_sa_state, 2);
  return 0;
}

void jw__thread_quit(jw__mutex_t *lock, jw__cond_t *wake, int *quit, HANDLE thread) {
  jw__mutex_lock(lock);
  *quit = 1;
  jw__cond_broadcast(wake);
  jw__mutex_unlock(lock);
  WaitForSingleObject(thread, INFINITE);
  CloseHandle(thread);
}

HANDLE jw__thread_begin(unsigned(__stdcall *fn)(void *), void *arg, unsigned stack_bytes,
                        unsigned flags) {
  /* The thread is created with the DACL (the creator's handle still has
   * full access), so there is no moment at which another process could
   * open it with the default one. */
  SECURITY_ATTRIBUTES *sa = thread_sa_state == 2 ? &thread_sa : NULL;
  if (stack_bytes != 0)
    flags |= STACK_SIZE_PARAM_IS_A_RESERVATION;
  return (HANDLE)_beginthreadex(sa, stack_bytes, fn, arg, flags, NULL);
}

typedef struct {
  void (*fn)(void *);
  void *arg;
} thread_start_t;

static unsigned __stdcall thread_trampoline(void *p) {
  thread_start_t s = *(thread_start_t *)p;
  free(p);
  s.fn(s.arg);
  return 0;
}

int jw__thread_start(jw__thread_t *t, void (*fn)(void *), void *arg) {
  return jw__thread_start_stack(t, fn, arg, 0);
}

int jw__thread_start_stack(jw__thread_t *t, void (*fn)(void *), void *arg, size_t stack_bytes) {
  thread_start_t *s = malloc(sizeof(*s));
  if (s == NULL)
    return JW_ENOMEM;
  s->fn = fn;
  s->arg = arg;
  /* STACK_SIZE_PARAM_IS_A_RESERVATION (jw__thread_begin): stack_bytes is
   * the reserved address space (the whole stack), not just its first
   * commit. */
  *t = jw__thread_begin(thread_trampoline, s, (unsigned)stack_bytes, 0);
  if (*t == NULL) {
    free(s);
    return JW_ESYS;
  }
  return 0;
}

void jw__thread_join(jw__thread_t *t) {
  WaitForSingleObject(*t, INFINITE);
  CloseHandle(*t);
}

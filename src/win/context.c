/* The context every event carries (schema 2.0.0): which machine, which
 * Windows, which user started the run. Read once per run, before the job
 * exists; every value jobwarden cannot read is left empty and named in
 * run->unavailable with the reason, never guessed. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* After windows.h (internal.h), which it needs. */
#include <sddl.h>

static int to_utf8(const wchar_t *w, char *buf, size_t size) {
  int n;
  if (size == 0)
    return -1;
  n = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)size, NULL, NULL);
  if (n <= 0) {
    buf[0] = '\0';
    return -1;
  }
  return 0;
}

/* HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid, from the 64-bit view:
 * Windows writes it at setup, the same value every tool that names a
 * machine by it reads (Sysmon, Defender, Elastic's host.id on Windows). */
static void read_machine_guid(jw_run_info_t *run) {
  wchar_t guid[64];
  DWORD size = sizeof(guid);
  LSTATUS rc =
      RegGetValueW(HKEY_LOCAL_MACHINE, L"SOFTWARE\\Microsoft\\Cryptography", L"MachineGuid",
                   RRF_RT_REG_SZ | RRF_SUBKEY_WOW6464KEY, NULL, guid, &size);
  size_t i;
  if (rc != ERROR_SUCCESS) {
    jw__run_unavailable(
        run, "host.id",
        "MachineGuid could not be read from HKLM\\SOFTWARE\\Microsoft\\Cryptography "
        "(Win32 error %ld)",
        (long)rc);
    return;
  }
  if (to_utf8(guid, run->host_id, sizeof(run->host_id)) != 0 || run->host_id[0] == '\0') {
    run->host_id[0] = '\0';
    jw__run_unavailable(run, "host.id", "MachineGuid is empty or not convertible");
    return;
  }
  for (i = 0; run->host_id[i]; i++)
    if (run->host_id[i] >= 'A' && run->host_id[i] <= 'Z')
      run->host_id[i] = (char)(run->host_id[i] - 'A' + 'a');
}

/* RtlGetVersion answers the real version whatever the executable's
 * manifest says (GetVersionEx is capped at 6.2 without one). Under Wine it
 * answers the Windows version the prefix is set to imitate, and ntdll
 * exports wine_get_version: both are reported, so that no reader takes a
 * Wine run for a Windows one. */
typedef LONG(WINAPI *rtl_get_version_fn)(OSVERSIONINFOW *);
typedef const char *(__cdecl *wine_get_version_fn)(void);

static void read_os(jw_run_info_t *run) {
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  rtl_get_version_fn get_version = NULL;
  wine_get_version_fn wine_version = NULL;
  OSVERSIONINFOW vi;
  jw__strlcpy(run->os_name, "Windows", sizeof(run->os_name));
  if (ntdll != NULL) {
    get_version = (rtl_get_version_fn)(void (*)(void))GetProcAddress(ntdll, "RtlGetVersion");
    wine_version = (wine_get_version_fn)(void (*)(void))GetProcAddress(ntdll, "wine_get_version");
  }
  memset(&vi, 0, sizeof(vi));
  vi.dwOSVersionInfoSize = sizeof(vi);
  if (get_version != NULL && get_version(&vi) == 0) {
    snprintf(run->os_version, sizeof(run->os_version), "%lu.%lu", (unsigned long)vi.dwMajorVersion,
             (unsigned long)vi.dwMinorVersion);
    snprintf(run->os_build, sizeof(run->os_build), "%lu", (unsigned long)vi.dwBuildNumber);
  } else {
    jw__run_unavailable(run, "host.os.version", "RtlGetVersion is not available or failed");
  }
  if (wine_version != NULL) {
    const char *v = wine_version();
    if (v != NULL)
      jw__strlcpy(run->wine_version, v, sizeof(run->wine_version));
  }
}

/* The user jobwarden runs as: its own token's user, as a SID string and,
 * when the SID resolves, name and domain. */
static void read_user(jw_run_info_t *run) {
  HANDLE token = NULL; /* owned here */
  union {
    TOKEN_USER tu;
    BYTE raw[256];
  } buf;
  DWORD len = 0;
  wchar_t *sid = NULL, name[128], domain[128];
  DWORD nname = 128, ndomain = 128;
  SID_NAME_USE use;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    jw__run_unavailable(run, "user", "OpenProcessToken failed (Win32 error %lu)",
                        (unsigned long)GetLastError());
    return;
  }
  if (!GetTokenInformation(token, TokenUser, &buf, sizeof(buf), &len)) {
    jw__run_unavailable(run, "user", "GetTokenInformation(TokenUser) failed (Win32 error %lu)",
                        (unsigned long)GetLastError());
    goto done;
  }
  if (!ConvertSidToStringSidW(buf.tu.User.Sid, &sid) ||
      to_utf8(sid, run->user_id, sizeof(run->user_id)) != 0) {
    run->user_id[0] = '\0';
    jw__run_unavailable(run, "user", "ConvertSidToStringSidW failed (Win32 error %lu)",
                        (unsigned long)GetLastError());
    goto done;
  }
  if (!LookupAccountSidW(NULL, buf.tu.User.Sid, name, &nname, domain, &ndomain, &use)) {
    jw__run_unavailable(run, "user.name", "LookupAccountSidW failed (Win32 error %lu)",
                        (unsigned long)GetLastError());
    goto done;
  }
  if (to_utf8(name, run->user_name, sizeof(run->user_name)) != 0)
    jw__run_unavailable(run, "user.name", "the account name is not convertible");
  else if (to_utf8(domain, run->user_domain, sizeof(run->user_domain)) != 0)
    run->user_domain[0] = '\0';
done:
  if (sid != NULL)
    LocalFree(sid);
  CloseHandle(token);
}

void jw__run_context(jw_run_info_t *run) {
  read_machine_guid(run);
  read_os(run);
  read_user(run);
}

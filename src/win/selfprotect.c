/* jobwarden's own process and threads behind a protected DACL, so that
 * the program it watches (the same user) cannot open it to terminate it,
 * copy its handles (job, port, log), read its memory, write its threads'
 * context or rewrite the DACL. `jobwarden run` calls this first, before
 * any exporter, pipe or process exists, and again just before the program
 * starts (to cover the threads started in between); `jobwarden probe`
 * calls it too. */
#include <string.h>

#include "win/win.h"

#include <aclapi.h>
#include <tlhelp32.h>

/* The entries, in this order (docs/platform-support.md, "jobwarden's own
 * process"): the user may only wait for jobwarden and ask its name and
 * exit code; SYSTEM keeps everything; OWNER RIGHTS (S-1-3-4) replaces the
 * owner's implicit READ_CONTROL | WRITE_DAC with READ_CONTROL alone, so
 * the owner (the same user) cannot simply write a new DACL. */
const jw_self_ace_t jw__self_process_aces[JW_SELF_ACES] = {
    {"user", PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE},
    {"S-1-5-18", PROCESS_ALL_ACCESS},
    {"S-1-3-4", READ_CONTROL},
};
const jw_self_ace_t jw__self_thread_aces[JW_SELF_ACES] = {
    {"user", THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE},
    {"S-1-5-18", THREAD_ALL_ACCESS},
    {"S-1-3-4", READ_CONTROL},
};

static int sys_fail(jw_error_t *err, const char *step, DWORD e) {
  char why[256];
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_ESYS, e, step,
                      "cannot protect jobwarden's own process: %s failed: %s (Win32 error %lu)",
                      step, why, (unsigned long)e);
}

/* The user SID of jobwarden's token, in a caller buffer. */
static int current_user(BYTE *buf, DWORD size, PSID *sid, jw_error_t *err) {
  HANDLE token = NULL; /* owner: this function */
  DWORD len = 0;
  int rc = 0;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return sys_fail(err, "OpenProcessToken", GetLastError());
  if (!GetTokenInformation(token, TokenUser, buf, size, &len))
    rc = sys_fail(err, "GetTokenInformation(TokenUser)", GetLastError());
  else
    *sid = ((TOKEN_USER *)buf)->User.Sid;
  CloseHandle(token);
  return rc;
}

/* Builds the three-entry DACL of `aces` into acl_buf. */
static int build_dacl(const jw_self_ace_t *aces, PSID user, BYTE *acl_buf, DWORD size, PACL *out,
                      jw_error_t *err) {
  PACL acl = (PACL)acl_buf;
  int i;
  if (!InitializeAcl(acl, size, ACL_REVISION))
    return sys_fail(err, "InitializeAcl", GetLastError());
  for (i = 0; i < JW_SELF_ACES; i++) {
    PSID sid = user;
    BYTE known[SECURITY_MAX_SID_SIZE];
    int ok;
    if (strcmp(aces[i].who, "user") != 0) {
      DWORD n = sizeof(known);
      WELL_KNOWN_SID_TYPE type =
          strcmp(aces[i].who, "S-1-5-18") == 0 ? WinLocalSystemSid : WinCreatorOwnerRightsSid;
      if (!CreateWellKnownSid(type, NULL, known, &n))
        return sys_fail(err, "CreateWellKnownSid", GetLastError());
      sid = known;
    }
    ok = AddAccessAllowedAce(acl, ACL_REVISION, aces[i].mask, sid);
    if (!ok)
      return sys_fail(err, "AddAccessAllowedAce", GetLastError());
  }
  *out = acl;
  return 0;
}

static DWORD protect(HANDLE h, PACL dacl) {
  return SetSecurityInfo(h, SE_KERNEL_OBJECT,
                         DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL,
                         NULL, dacl, NULL);
}

/* Whether a thread already carries a protected DACL (a second call: the
 * OWNER RIGHTS entry refuses WRITE_DAC to jobwarden too, by design). */
static int thread_is_protected(DWORD tid) {
  HANDLE t = OpenThread(READ_CONTROL, FALSE, tid); /* owner: this function */
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_DESCRIPTOR_CONTROL ctl = 0;
  DWORD rev = 0;
  PACL dacl = NULL;
  int yes = 0;
  if (t == NULL)
    return 0;
  if (GetSecurityInfo(t, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                      &sd) == ERROR_SUCCESS &&
      GetSecurityDescriptorControl(sd, &ctl, &rev) && (ctl & SE_DACL_PROTECTED) && dacl != NULL &&
      dacl->AceCount == JW_SELF_ACES)
    yes = 1;
  if (sd != NULL)
    LocalFree(sd);
  CloseHandle(t);
  return yes;
}

int jw__self_protect(jw_error_t *err) {
  BYTE user_buf[256];
  BYTE pacl_buf[512], tacl_buf[512];
  PSID user = NULL;
  PACL pdacl = NULL, tdacl = NULL;
  HANDLE snap = INVALID_HANDLE_VALUE; /* owner: this function */
  THREADENTRY32 te;
  DWORD self = GetCurrentProcessId(), me = GetCurrentThreadId(), e;
  int rc;

  if ((rc = current_user(user_buf, sizeof(user_buf), &user, err)) != 0 ||
      (rc = build_dacl(jw__self_process_aces, user, pacl_buf, sizeof(pacl_buf), &pdacl, err)) !=
          0 ||
      (rc = build_dacl(jw__self_thread_aces, user, tacl_buf, sizeof(tacl_buf), &tdacl, err)) != 0)
    return rc;

  /* The threads first: the calling thread through its pseudo-handle (full
   * access, no access check), every other one opened for WRITE_DAC. */
  e = protect(GetCurrentThread(), tdacl);
  if (e != ERROR_SUCCESS)
    return sys_fail(err, "SetSecurityInfo(own thread)", e);
  snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  if (snap == INVALID_HANDLE_VALUE)
    return sys_fail(err, "CreateToolhelp32Snapshot", GetLastError());
  memset(&te, 0, sizeof(te));
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      HANDLE t; /* owner: this loop */
      if (te.th32OwnerProcessID != self || te.th32ThreadID == me)
        continue;
      t = OpenThread(WRITE_DAC, FALSE, te.th32ThreadID);
      if (t == NULL) {
        e = GetLastError();
        /* Protected by an earlier call, or ended meanwhile. */
        if ((e == ERROR_ACCESS_DENIED && thread_is_protected(te.th32ThreadID)) ||
            e == ERROR_INVALID_PARAMETER)
          continue;
        rc = sys_fail(err, "OpenThread(WRITE_DAC)", e);
        break;
      }
      e = protect(t, tdacl);
      CloseHandle(t);
      if (e != ERROR_SUCCESS) {
        rc = sys_fail(err, "SetSecurityInfo(thread)", e);
        break;
      }
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  if (rc != 0)
    return rc;
  /* The process last, through its pseudo-handle: jobwarden keeps full
   * access to itself whatever the DACL says. */
  e = protect(GetCurrentProcess(), pdacl);
  if (e != ERROR_SUCCESS)
    return sys_fail(err, "SetSecurityInfo(own process)", e);
  return 0;
}

int jw__handles_uninherit(unsigned *cleared, unsigned *left) {
  DWORD v, flags, gap = 0;
  *cleared = 0;
  *left = 0;
  /* Handle values are multiples of 4 and the table fills from the
   * bottom: 4096 unused values in a row end the scan. */
  for (v = 4; gap < 4096; v += 4) {
    HANDLE h = (HANDLE)(ULONG_PTR)v;
    if (!GetHandleInformation(h, &flags)) {
      gap += 4;
      continue;
    }
    gap = 0;
    if (!(flags & HANDLE_FLAG_INHERIT))
      continue;
    if (SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0))
      (*cleared)++;
    else
      (*left)++;
  }
  return *left == 0 ? 0 : JW_ESYS;
}

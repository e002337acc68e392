/* jw-demo-agent: a deliberately misbehaving "agent" for jobwarden's demo.
 * It starts a child process, tries to break away from its job, then
 * crashes with an access violation. Run it under `jobwarden run`. */
#include <stdio.h>
#include <string.h>
#include <windows.h>

static void say(const char *s) {
  fputs(s, stdout);
  fflush(stdout);
}

static int start_self(const char *mode, DWORD flags) {
  wchar_t self[MAX_PATH], cmd[MAX_PATH + 64];
  STARTUPINFOW si;
  PROCESS_INFORMATION pi;
  char line[200];
  DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH);
  if (n == 0 || n >= MAX_PATH)
    return -1;
  swprintf(cmd, MAX_PATH + 64, L"\"%ls\" %hs", self, mode);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  if (!CreateProcessW(self, cmd, NULL, NULL, FALSE, flags, NULL, NULL, &si, &pi)) {
    snprintf(line, sizeof(line), "demo agent: %s refused (Win32 error %lu)\n", mode,
             (unsigned long)GetLastError());
    say(line);
    return 0;
  }
  snprintf(line, sizeof(line), "demo agent: %s started as pid %lu\n", mode,
           (unsigned long)pi.dwProcessId);
  say(line);
  WaitForSingleObject(pi.hProcess, 5000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
  return 1;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0)
    return 0;
  say("demo agent: starting; about to misbehave\n");
  start_self("child", 0);
  start_self("breakaway", CREATE_BREAKAWAY_FROM_JOB);
  say("demo agent: dereferencing NULL\n");
  *(volatile int *)(ULONG_PTR)0 = 42;
  return 0;
}

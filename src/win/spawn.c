/* Race-free spawn: the child exists only inside the job, suspended, until
 * every check has passed; it inherits its three standard handles and
 * nothing else; with a policy token it is started under that token
 * (CreateProcessAsUserW) through the same path. */
#include <stdlib.h>
#include <string.h>

#include "win/win.h"

#define JW_PATH_UNITS 32768

#ifndef ERROR_ELEVATION_REQUIRED
#define ERROR_ELEVATION_REQUIRED 740L
#endif

static int sys_fail(jw_error_t *err, const char *step, DWORD e) {
  char why[256];
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, JW_ESYS, e, step,
                      "cannot start the program: %s failed: %s (Win32 error %lu)", step, why,
                      (unsigned long)e);
}

static int has_path_part(const char *s) {
  return strchr(s, '\\') != NULL || strchr(s, '/') != NULL || strchr(s, ':') != NULL;
}

static int is_file(const wchar_t *path, int *is_dir) {
  DWORD a = GetFileAttributesW(path);
  *is_dir = a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY);
  return a != INVALID_FILE_ATTRIBUTES;
}

wchar_t *jw__resolve_program(const char *name, jw_error_t *err) {
  wchar_t *wname = NULL, *buf = NULL;
  DWORD n;
  int is_dir = 0;

  if (name == NULL || name[0] == '\0') {
    jw_error_set(err, JW_EUSAGE, 0, "COMMAND", "the program name is empty");
    return NULL;
  }
  wname = jw__utf8_to_wide(name);
  buf = malloc(JW_PATH_UNITS * sizeof(wchar_t));
  if (wname == NULL || buf == NULL) {
    jw_error_set(err, wname == NULL && buf != NULL ? JW_EUSAGE : JW_ENOMEM, 0, "COMMAND",
                 "the program name is not valid UTF-8 or memory ran out");
    goto fail;
  }
  if (has_path_part(name)) {
    /* An explicit path: taken as is, ".exe" added when that is what exists. */
    n = GetFullPathNameW(wname, JW_PATH_UNITS, buf, NULL);
    if (n == 0 || n >= JW_PATH_UNITS) {
      jw_error_set(err, JW_ENOENT, GetLastError(), "COMMAND",
                   "'%.200s': program not found (invalid path)", name);
      goto fail;
    }
    if (!is_file(buf, &is_dir) && n + 4 < JW_PATH_UNITS) {
      wcscat(buf, L".exe");
      if (!is_file(buf, &is_dir)) {
        jw_error_set(err, JW_ENOENT, ERROR_FILE_NOT_FOUND, "COMMAND", "'%.200s': program not found",
                     name);
        goto fail;
      }
    }
  } else {
    /* A bare name: the standard search order, ".exe" appended when the
     * name has no extension. */
    n = SearchPathW(NULL, wname, L".exe", JW_PATH_UNITS, buf, NULL);
    if (n == 0 || n >= JW_PATH_UNITS) {
      jw_error_set(err, JW_ENOENT, GetLastError(), "COMMAND",
                   "'%.200s': program not found (searched the application "
                   "directory, the current directory, the system directories and PATH)",
                   name);
      goto fail;
    }
    is_file(buf, &is_dir);
  }
  if (is_dir) {
    jw_error_set(err, JW_ENOEXEC, ERROR_ACCESS_DENIED, "COMMAND",
                 "'%.200s': cannot execute: it is a directory", name);
    goto fail;
  }
  free(wname);
  return buf;
fail:
  free(wname);
  free(buf);
  return NULL;
}

static char *wide_to_utf8(const wchar_t *w) {
  char *out = NULL;
  size_t len = 0;
  size_t n = wcslen(w);
  if (jw_utf16_to_utf8((const uint16_t *)w, n, JW_HOSTILE_MAX_UNITS, &out, &len, NULL) != 0)
    return NULL;
  return out;
}

/* Makes an inheritable duplicate of a standard handle, or leaves *out NULL
 * when there is none to give. */
static int dup_std(HANDLE h, HANDLE *out, const char *which, jw_error_t *err) {
  *out = NULL;
  if (h == NULL || h == INVALID_HANDLE_VALUE)
    return 0;
  if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), out, 0, TRUE,
                       DUPLICATE_SAME_ACCESS)) {
    DWORD e = GetLastError();
    *out = NULL;
    return jw_error_set(err, JW_ESYS, e, which,
                        "cannot pass %s to the program: DuplicateHandle failed (Win32 error %lu)",
                        which, (unsigned long)e);
  }
  return 0;
}

static int map_create_error(DWORD e, const char *call, const char *program, jw_error_t *err) {
  char why[256];
  jw__sys_error_text(e, why, sizeof(why));
  switch (e) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    return jw_error_set(err, JW_ENOENT, e, call,
                        "'%.200s': program not found: %s (Win32 error %lu)", program, why,
                        (unsigned long)e);
  case ERROR_BAD_EXE_FORMAT:
  case ERROR_ACCESS_DENIED:
  case ERROR_EXE_MACHINE_TYPE_MISMATCH:
  case ERROR_EXE_MARKED_INVALID:
  case ERROR_BAD_FORMAT:
  case ERROR_INVALID_EXE_SIGNATURE:
  case ERROR_ELEVATION_REQUIRED:
    return jw_error_set(err, JW_ENOEXEC, e, call, "'%.200s': cannot execute: %s (Win32 error %lu)",
                        program, why, (unsigned long)e);
  default:
    return sys_fail(err, call, e);
  }
}

int jw_spawn(HANDLE job, const jw_spawn_options_t *opt, jw_child_t *child, jw_error_t *err) {
  wchar_t *app = NULL, *wcmd = NULL;
  char *cmd = NULL;
  HANDLE std_dup[3] = {NULL, NULL, NULL};
  HANDLE inherit[3];
  DWORD n_inherit = 0, attr_count = 0, flags;
  SIZE_T attr_size = 0;
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  HANDLE job_list[1];
  int use_job_list = !opt->test_naive_order && !opt->test_force_fallback;
  int created = 0, rc = 0, i;
  BOOL in_job = FALSE;
  FILETIME ct, xt, kt, ut;

  memset(child, 0, sizeof(*child));
  memset(&pi, 0, sizeof(pi));
  memset(&si, 0, sizeof(si));
  if (opt->argc < 1 || opt->argv == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "COMMAND", "no program to run");

  app = jw__resolve_program(opt->argv[0], err);
  if (app == NULL) {
    rc = err ? err->code : JW_ENOENT;
    goto done;
  }
  rc = jw_argv_to_cmdline(opt->argv, opt->argc, &cmd);
  if (rc != 0) {
    rc =
        jw_error_set(err, JW_EUSAGE, 0, "COMMAND",
                     "the command line cannot be built (too long, or a quote in the program name)");
    goto done;
  }
  wcmd = jw__utf8_to_wide(cmd);
  if (wcmd == NULL || wcslen(wcmd) >= 32767) {
    rc = jw_error_set(err, JW_EUSAGE, 0, "COMMAND",
                      "the command line is not valid UTF-8 or longer than 32767 characters");
    goto done;
  }

  if ((rc = dup_std(opt->std_in ? opt->std_in : GetStdHandle(STD_INPUT_HANDLE), &std_dup[0],
                    "stdin", err)) ||
      (rc = dup_std(opt->std_out ? opt->std_out : GetStdHandle(STD_OUTPUT_HANDLE), &std_dup[1],
                    "stdout", err)) ||
      (rc = dup_std(opt->std_err ? opt->std_err : GetStdHandle(STD_ERROR_HANDLE), &std_dup[2],
                    "stderr", err)))
    goto done;
  for (i = 0; i < 3; i++)
    if (std_dup[i] != NULL)
      inherit[n_inherit++] = std_dup[i];

  attr_count = (n_inherit > 0) + (use_job_list ? 1 : 0);
  if (attr_count > 0) {
    InitializeProcThreadAttributeList(NULL, attr_count, 0, &attr_size);
    attrs = malloc(attr_size);
    if (attrs == NULL) {
      rc = jw_error_set(err, JW_ENOMEM, 0, "InitializeProcThreadAttributeList", "out of memory");
      goto done;
    }
    if (!InitializeProcThreadAttributeList(attrs, attr_count, 0, &attr_size)) {
      DWORD e = GetLastError();
      free(attrs);
      attrs = NULL;
      rc = sys_fail(err, "InitializeProcThreadAttributeList", e);
      goto done;
    }
    if (n_inherit > 0 &&
        !UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, inherit,
                                   n_inherit * sizeof(HANDLE), NULL, NULL)) {
      rc = sys_fail(err, "UpdateProcThreadAttribute(HANDLE_LIST)", GetLastError());
      goto done;
    }
    if (use_job_list) {
      job_list[0] = job;
      /* Windows before 10 has no JOB_LIST: fall back to suspended + assign. */
      if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_JOB_LIST, job_list,
                                     sizeof(job_list), NULL, NULL))
        use_job_list = 0;
    }
  }

  si.StartupInfo.cb = sizeof(si);
  si.lpAttributeList = attrs;
  if (n_inherit > 0) {
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = std_dup[0];
    si.StartupInfo.hStdOutput = std_dup[1];
    si.StartupInfo.hStdError = std_dup[2];
  }
  flags = EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT;
  if (!opt->test_naive_order)
    flags |= CREATE_SUSPENDED;
  /* With a token of the policy's (restricted, Low integrity), the same
   * path through CreateProcessAsUserW: suspended, in the job from the
   * start, the listed handles only. The token is a restricted copy of
   * jobwarden's own, which needs no privilege to assign. */
  if (opt->token != NULL ? !CreateProcessAsUserW(opt->token, app, wcmd, NULL, NULL, n_inherit > 0,
                                                 flags, NULL, NULL, &si.StartupInfo, &pi)
                         : !CreateProcessW(app, wcmd, NULL, NULL, n_inherit > 0, flags, NULL, NULL,
                                           &si.StartupInfo, &pi)) {
    rc = map_create_error(GetLastError(),
                          opt->token != NULL ? "CreateProcessAsUserW" : "CreateProcessW",
                          opt->argv[0], err);
    goto done;
  }
  created = 1;
  child->method = use_job_list ? "job_list" : "suspended_assign";

  if (opt->test_naive_order) {
    /* The unsafe order, for the race test only: the child already runs. */
    child->method = "naive";
    if (opt->test_delay_ms)
      Sleep(opt->test_delay_ms);
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
      rc = sys_fail(err, "AssignProcessToJobObject", GetLastError());
      goto done;
    }
  } else if (!use_job_list) {
    if (!AssignProcessToJobObject(job, pi.hProcess)) {
      rc = sys_fail(err, "AssignProcessToJobObject", GetLastError());
      goto done;
    }
  }
  /* Belt and braces: never resume a process that is not in the job. */
  if (!IsProcessInJob(pi.hProcess, job, &in_job)) {
    rc = sys_fail(err, "IsProcessInJob", GetLastError());
    goto done;
  }
  if (!in_job) {
    rc = jw_error_set(err, JW_ESYS, 0, "IsProcessInJob",
                      "cannot start the program: it is not in the job after creation");
    goto done;
  }

  child->process = pi.hProcess;
  child->thread = pi.hThread;
  child->pid = pi.dwProcessId;
  if (GetProcessTimes(pi.hProcess, &ct, &xt, &kt, &ut))
    child->create_time = ((uint64_t)ct.dwHighDateTime << 32) | ct.dwLowDateTime;
  child->image = wide_to_utf8(app);
  if (child->image == NULL) {
    rc = jw_error_set(err, JW_ENOMEM, 0, "spawn", "out of memory");
    goto done;
  }

  if (opt->before_resume != NULL) {
    rc = opt->before_resume(opt->ctx, child);
    if (rc != 0)
      goto done;
  }
  if (!opt->test_naive_order) {
    if (opt->test_delay_ms)
      Sleep(opt->test_delay_ms);
    if (ResumeThread(pi.hThread) == (DWORD)-1) {
      rc = sys_fail(err, "ResumeThread", GetLastError());
      goto done;
    }
  }

done:
  if (rc != 0 && created) {
    /* Never leave a half-started child behind. */
    TerminateProcess(pi.hProcess, JW_TERMINATE_EXIT_CODE);
    WaitForSingleObject(pi.hProcess, 5000);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    free(child->image);
    memset(child, 0, sizeof(*child));
  }
  if (attrs != NULL) {
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
  }
  for (i = 0; i < 3; i++)
    if (std_dup[i] != NULL)
      CloseHandle(std_dup[i]);
  free(app);
  free(wcmd);
  free(cmd);
  return rc;
}

void jw_child_close(jw_child_t *child) {
  if (child->process != NULL)
    CloseHandle(child->process);
  if (child->thread != NULL)
    CloseHandle(child->thread);
  free(child->image);
  memset(child, 0, sizeof(*child));
}

/* The spool's files on Windows (src/fileio.h). Handles are opened without
 * inheritance (NULL security attributes); files jobwarden writes are
 * shared for reading only, so no other process — the sandboxed program
 * included — can write, truncate, rename or delete them while they are
 * open (Wine enforces share modes as Windows does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "fileio.h"
#include "internal.h"

struct jw__file_s {
  HANDLE h;
};

static int fail(jw_error_t *err, int code, DWORD e, const char *what, const char *path) {
  char why[256];
  jw__sys_error_text(e, why, sizeof(why));
  return jw_error_set(err, code, e, what, "cannot %s '%s': %s (Win32 error %lu)", what, path, why,
                      (unsigned long)e);
}

static int open_with(const char *path, DWORD access, DWORD share, DWORD disposition,
                     const char *what, jw__file_t **out, jw_error_t *err) {
  wchar_t *w = jw__utf8_to_wide(path);
  HANDLE h;
  DWORD e;
  jw__file_t *f;
  if (w == NULL)
    return jw_error_set(err, JW_EINVAL, 0, what, "cannot %s '%s': not valid UTF-8", what, path);
  h = CreateFileW(w, access, share, NULL, disposition, FILE_ATTRIBUTE_NORMAL, NULL);
  e = GetLastError();
  free(w);
  if (h == INVALID_HANDLE_VALUE) {
    int code = e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS         ? JW_EEXIST
               : e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND    ? JW_ENOENT
               : e == ERROR_SHARING_VIOLATION || e == ERROR_LOCK_VIOLATION ? JW_EBUSY
                                                                           : JW_EIO;
    return fail(err, code, e, what, path);
  }
  if ((f = malloc(sizeof(*f))) == NULL) {
    CloseHandle(h);
    return jw_error_set(err, JW_ENOMEM, 0, what, "out of memory");
  }
  f->h = h;
  *out = f;
  return 0;
}

int jw__file_create(const char *path, jw__file_t **out, jw_error_t *err) {
  return open_with(path, FILE_APPEND_DATA | FILE_READ_DATA | SYNCHRONIZE, FILE_SHARE_READ,
                   CREATE_NEW, "create", out, err);
}

int jw__file_open_read(const char *path, jw__file_t **out, jw_error_t *err) {
  return open_with(path, GENERIC_READ, FILE_SHARE_READ, OPEN_EXISTING, "open", out, err);
}

int jw__file_open_rw(const char *path, jw__file_t **out, jw_error_t *err) {
  return open_with(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ, OPEN_ALWAYS, "open", out,
                   err);
}

int jw__file_lock(const char *path, jw__file_t **out, jw_error_t *err) {
  return open_with(path, GENERIC_READ | GENERIC_WRITE, 0, OPEN_ALWAYS, "lock", out, err);
}

int jw__file_append(jw__file_t *f, const void *buf, size_t len, jw_error_t *err) {
  const char *p = buf;
  while (len > 0) {
    DWORD w = 0, chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    if (!WriteFile(f->h, p, chunk, &w, NULL) || w == 0) {
      DWORD e = GetLastError();
      char why[256];
      jw__sys_error_text(e, why, sizeof(why));
      return jw_error_set(err, JW_EIO, e, "WriteFile", "write failed: %s (Win32 error %lu)", why,
                          (unsigned long)e);
    }
    p += w;
    len -= w;
  }
  return 0;
}

int jw__file_pwrite(jw__file_t *f, uint64_t off, const void *buf, size_t len, jw_error_t *err) {
  const char *p = buf;
  while (len > 0) {
    OVERLAPPED o;
    DWORD w = 0, chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
    memset(&o, 0, sizeof(o));
    o.Offset = (DWORD)off;
    o.OffsetHigh = (DWORD)(off >> 32);
    if (!WriteFile(f->h, p, chunk, &w, &o) || w == 0) {
      DWORD e = GetLastError();
      return jw_error_set(err, JW_EIO, e, "WriteFile", "write failed (Win32 error %lu)",
                          (unsigned long)e);
    }
    p += w;
    off += w;
    len -= w;
  }
  return 0;
}

int jw__file_pread(jw__file_t *f, uint64_t off, void *buf, size_t len, size_t *got,
                   jw_error_t *err) {
  OVERLAPPED o;
  DWORD r = 0, chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
  memset(&o, 0, sizeof(o));
  o.Offset = (DWORD)off;
  o.OffsetHigh = (DWORD)(off >> 32);
  *got = 0;
  if (!ReadFile(f->h, buf, chunk, &r, &o)) {
    DWORD e = GetLastError();
    if (e == ERROR_HANDLE_EOF)
      return 0;
    return jw_error_set(err, JW_EIO, e, "ReadFile", "read failed (Win32 error %lu)",
                        (unsigned long)e);
  }
  *got = r;
  return 0;
}

int jw__file_size(jw__file_t *f, uint64_t *size, jw_error_t *err) {
  LARGE_INTEGER li;
  if (!GetFileSizeEx(f->h, &li))
    return jw_error_set(err, JW_EIO, GetLastError(), "GetFileSizeEx", "cannot read a file's size");
  *size = (uint64_t)li.QuadPart;
  return 0;
}

int jw__file_sync(jw__file_t *f, jw_error_t *err) {
  if (!FlushFileBuffers(f->h))
    return jw_error_set(err, JW_EIO, GetLastError(), "FlushFileBuffers", "flush failed");
  return 0;
}

void jw__file_close(jw__file_t *f) {
  if (f != NULL) {
    CloseHandle(f->h);
    free(f);
  }
}

/* DeleteFileW or RemoveDirectoryW on path; 0 also when it is not there. */
static int remove_with(const char *path, BOOL(WINAPI *op)(LPCWSTR), const char *what,
                       jw_error_t *err) {
  wchar_t *w = jw__utf8_to_wide(path);
  DWORD e;
  if (w == NULL)
    return jw_error_set(err, JW_EINVAL, 0, what, "cannot %s '%s': not valid UTF-8", what, path);
  if (op(w)) {
    free(w);
    return 0;
  }
  e = GetLastError();
  free(w);
  if (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
    return 0;
  return fail(err, JW_EIO, e, what, path);
}

int jw__file_remove(const char *path, jw_error_t *err) {
  return remove_with(path, DeleteFileW, "delete", err);
}

int jw__dir_create(const char *path, jw_error_t *err) {
  size_t n = strlen(path), i;
  char *copy = malloc(n + 1);
  int rc = 0;
  if (copy == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "mkdir", "out of memory");
  memcpy(copy, path, n + 1);
  for (i = 1; i <= n && rc == 0; i++) {
    if (copy[i] == '\\' || copy[i] == '/' || copy[i] == '\0') {
      char c = copy[i];
      wchar_t *w;
      /* "C:" and "\\server\share" are not directories to create. */
      if (i == 2 && copy[1] == ':')
        continue;
      copy[i] = '\0';
      w = jw__utf8_to_wide(copy);
      if (w == NULL) {
        rc = jw_error_set(err, JW_EINVAL, 0, "mkdir", "'%s' is not valid UTF-8", path);
      } else if (!CreateDirectoryW(w, NULL)) {
        DWORD e = GetLastError();
        if (e != ERROR_ALREADY_EXISTS && !(e == ERROR_ACCESS_DENIED && i < n))
          rc = fail(err, JW_EIO, e, "create directory", copy);
      }
      free(w);
      copy[i] = c;
    }
  }
  free(copy);
  return rc;
}

static char *to_utf8(const wchar_t *w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
  char *s;
  if (n <= 0 || (s = malloc((size_t)n)) == NULL)
    return NULL;
  WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
  return s;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int jw__dir_list(const char *path, char ***names, size_t *count, jw_error_t *err) {
  size_t plen = strlen(path), n = 0, cap = 0;
  char *pattern = malloc(plen + 3);
  wchar_t *w;
  WIN32_FIND_DATAW fd;
  HANDLE h;
  char **v = NULL;
  *names = NULL;
  *count = 0;
  if (pattern == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "list", "out of memory");
  snprintf(pattern, plen + 3, "%s\\*", path);
  w = jw__utf8_to_wide(pattern);
  free(pattern);
  if (w == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "list", "'%s' is not valid UTF-8", path);
  h = FindFirstFileW(w, &fd);
  free(w);
  if (h == INVALID_HANDLE_VALUE) {
    DWORD e = GetLastError();
    if (e == ERROR_FILE_NOT_FOUND)
      return 0; /* empty */
    return fail(err, e == ERROR_PATH_NOT_FOUND ? JW_ENOENT : JW_EIO, e, "list", path);
  }
  do {
    char *s;
    if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
      continue;
    if (n == cap) {
      char **bigger = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
      if (bigger == NULL)
        break;
      v = bigger;
      cap = cap ? cap * 2 : 16;
    }
    if ((s = to_utf8(fd.cFileName)) != NULL)
      v[n++] = s;
  } while (FindNextFileW(h, &fd));
  FindClose(h);
  if (n > 0)
    qsort(v, n, sizeof(*v), by_name);
  *names = v;
  *count = n;
  return 0;
}

void jw__dir_list_free(char **names, size_t count) {
  size_t i;
  for (i = 0; i < count; i++)
    free(names[i]);
  free(names);
}

int jw__dir_remove(const char *path, jw_error_t *err) {
  return remove_with(path, RemoveDirectoryW, "remove directory", err);
}

char *jw__state_dir(jw_error_t *err) {
  wchar_t buf[MAX_PATH + 1];
  DWORD n = GetEnvironmentVariableW(L"LOCALAPPDATA", buf, MAX_PATH);
  char *base, *out;
  size_t len;
  if (n == 0 || n >= MAX_PATH) {
    jw_error_set(err, JW_ENOENT, 0, "LOCALAPPDATA",
                 "no directory for jobwarden's state: LOCALAPPDATA is not set");
    return NULL;
  }
  base = to_utf8(buf);
  if (base == NULL) {
    jw_error_set(err, JW_ENOMEM, 0, "malloc", "out of memory");
    return NULL;
  }
  len = strlen(base) + 16;
  out = malloc(len);
  if (out != NULL)
    snprintf(out, len, "%s\\jobwarden", base);
  else
    jw_error_set(err, JW_ENOMEM, 0, "malloc", "out of memory");
  free(base);
  return out;
}

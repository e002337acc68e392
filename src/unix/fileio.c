/* The spool's files on POSIX (src/fileio.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "internal.h"

struct jw__file_s {
  int fd;
};

static int fail(jw_error_t *err, int code, const char *what, const char *path) {
  int e = errno;
  return jw_error_set(err, code, (uint32_t)e, what, "cannot %s '%s': %s", what, path, strerror(e));
}

static int wrap(int fd, jw__file_t **out, jw_error_t *err) {
  jw__file_t *f = malloc(sizeof(*f));
  if (f == NULL) {
    close(fd);
    return jw_error_set(err, JW_ENOMEM, 0, "malloc", "out of memory");
  }
  f->fd = fd;
  *out = f;
  return 0;
}

int jw__file_create(const char *path, jw__file_t **out, jw_error_t *err) {
  int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(err, errno == EEXIST ? JW_EEXIST : JW_EIO, "create", path);
  return wrap(fd, out, err);
}

int jw__file_open_read(const char *path, jw__file_t **out, jw_error_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(err, errno == ENOENT ? JW_ENOENT : JW_EIO, "open", path);
  return wrap(fd, out, err);
}

int jw__file_open_rw(const char *path, jw__file_t **out, jw_error_t *err) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(err, JW_EIO, "open", path);
  return wrap(fd, out, err);
}

int jw__file_append(jw__file_t *f, const void *buf, size_t len, jw_error_t *err) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = write(f->fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return jw_error_set(err, JW_EIO, (uint32_t)errno, "write", "write failed: %s",
                          w < 0 ? strerror(errno) : "no progress");
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

int jw__file_pwrite(jw__file_t *f, uint64_t off, const void *buf, size_t len, jw_error_t *err) {
  const char *p = buf;
  while (len > 0) {
    ssize_t w = pwrite(f->fd, p, len, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return jw_error_set(err, JW_EIO, (uint32_t)errno, "write", "write failed: %s",
                          w < 0 ? strerror(errno) : "no progress");
    p += w;
    off += (uint64_t)w;
    len -= (size_t)w;
  }
  return 0;
}

int jw__file_pread(jw__file_t *f, uint64_t off, void *buf, size_t len, size_t *got,
                   jw_error_t *err) {
  ssize_t r;
  do {
    r = pread(f->fd, buf, len, (off_t)off);
  } while (r < 0 && errno == EINTR);
  if (r < 0)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, "read", "read failed: %s", strerror(errno));
  *got = (size_t)r;
  return 0;
}

int jw__file_size(jw__file_t *f, uint64_t *size, jw_error_t *err) {
  struct stat sb;
  if (fstat(f->fd, &sb) != 0)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, "fstat", "fstat failed: %s", strerror(errno));
  *size = (uint64_t)sb.st_size;
  return 0;
}

int jw__file_sync(jw__file_t *f, jw_error_t *err) {
  if (fdatasync(f->fd) != 0 && errno != EINVAL)
    return jw_error_set(err, JW_EIO, (uint32_t)errno, "fdatasync", "fdatasync failed: %s",
                        strerror(errno));
  return 0;
}

void jw__file_close(jw__file_t *f) {
  if (f != NULL) {
    close(f->fd);
    free(f);
  }
}

int jw__file_lock(const char *path, jw__file_t **out, jw_error_t *err) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(err, JW_EIO, "open", path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return fail(err, e == EWOULDBLOCK ? JW_EBUSY : JW_EIO, "lock", path);
  }
  return wrap(fd, out, err);
}

int jw__file_remove(const char *path, jw_error_t *err) {
  if (unlink(path) != 0 && errno != ENOENT)
    return fail(err, JW_EIO, "delete", path);
  return 0;
}

int jw__dir_create(const char *path, jw_error_t *err) {
  char *copy = strdup(path), *p;
  int rc = 0;
  if (copy == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "mkdir", "out of memory");
  for (p = copy + 1; rc == 0; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(copy, 0700) != 0 && errno != EEXIST)
        rc = fail(err, JW_EIO, "create directory", copy);
      *p = c;
      if (c == '\0')
        break;
    }
  }
  free(copy);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int jw__dir_list(const char *path, char ***names, size_t *count, jw_error_t *err) {
  DIR *d = opendir(path);
  struct dirent *e;
  char **v = NULL;
  size_t n = 0, cap = 0;
  *names = NULL;
  *count = 0;
  if (d == NULL)
    return fail(err, errno == ENOENT ? JW_ENOENT : JW_EIO, "list", path);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    if (n == cap) {
      char **bigger = realloc(v, (cap ? cap * 2 : 16) * sizeof(*v));
      if (bigger == NULL)
        break;
      v = bigger;
      cap = cap ? cap * 2 : 16;
    }
    if ((v[n] = strdup(e->d_name)) != NULL)
      n++;
  }
  closedir(d);
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
  if (rmdir(path) != 0 && errno != ENOENT)
    return fail(err, JW_EIO, "remove directory", path);
  return 0;
}

char *jw__state_dir(jw_error_t *err) {
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  char *out;
  size_t n;
  if (xdg != NULL && xdg[0] == '/') {
    n = strlen(xdg) + 16;
    if ((out = malloc(n)) != NULL)
      snprintf(out, n, "%s/jobwarden", xdg);
  } else if (home != NULL && home[0] == '/') {
    n = strlen(home) + 32;
    if ((out = malloc(n)) != NULL)
      snprintf(out, n, "%s/.local/state/jobwarden", home);
  } else {
    jw_error_set(err, JW_ENOENT, 0, "HOME",
                 "no directory for jobwarden's state: neither XDG_STATE_HOME nor HOME is set");
    return NULL;
  }
  if (out == NULL)
    jw_error_set(err, JW_ENOMEM, 0, "malloc", "out of memory");
  return out;
}

/* Platform layer for the native (POSIX) build: used by the unit tests and
 * by the portable core's tools; the product itself runs on Windows. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void jw__mutex_init(jw__mutex_t *m) {
  pthread_mutex_init(m, NULL);
}
void jw__mutex_lock(jw__mutex_t *m) {
  pthread_mutex_lock(m);
}
void jw__mutex_unlock(jw__mutex_t *m) {
  pthread_mutex_unlock(m);
}
void jw__mutex_destroy(jw__mutex_t *m) {
  pthread_mutex_destroy(m);
}

int jw__random_bytes(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return JW_ESYS;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

/* ASCII letters only: jobwarden runs programs on Windows, where the
 * Windows version (CompareStringOrdinal) is used; this one serves the
 * portable unit tests. */
int jw__name_equal_nocase(const char *a, size_t alen, const char *b, size_t blen) {
  size_t i;
  if (alen != blen)
    return 0;
  for (i = 0; i < alen; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z')
      x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = (unsigned char)(y - 'A' + 'a');
    if (x != y)
      return 0;
  }
  return 1;
}

void jw__hostname(char *buf, size_t size) {
  if (size == 0)
    return;
  if (gethostname(buf, size) != 0 || buf[0] == '\0')
    jw__strlcpy(buf, "unknown", size);
  buf[size - 1] = '\0';
}

void jw__stderr_write(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(2, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    buf += w;
    len -= (size_t)w;
  }
}

uint64_t jw__event_clock_us(void) {
  return jw_now_us();
}

uint64_t jw_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void jw__sys_error_text(uint32_t code, char *buf, size_t size) {
  jw__strlcpy(buf, strerror((int)code), size);
}

int jw__stdout_write(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(1, buf, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += w;
    len -= (size_t)w;
  }
  return 0;
}

int jw__create_secret_file(const char *path, const void *data, size_t len, jw_error_t *err) {
  const char *p = data;
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    int e = errno;
    return jw_error_set(err, e == EEXIST ? JW_EEXIST : JW_ESYS, (uint32_t)e, path,
                        "%s: cannot create: %s%s", path, strerror(e),
                        e == EEXIST ? " (a key file is never overwritten)" : "");
  }
  /* umask may only take bits away; say exactly what the file is. */
  if (fchmod(fd, 0600) != 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return jw_error_set(err, JW_ESYS, (uint32_t)e, path, "%s: cannot restrict to the owner: %s",
                        path, strerror(e));
  }
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(path);
      return jw_error_set(err, JW_EIO, (uint32_t)e, path, "%s: cannot write: %s", path,
                          strerror(e));
    }
    p += w;
    len -= (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int e = errno;
    unlink(path);
    return jw_error_set(err, JW_EIO, (uint32_t)e, path, "%s: cannot write: %s", path, strerror(e));
  }
  return 0;
}

FILE *jw__fopen_utf8(const char *path, const char *mode) {
  return fopen(path, mode);
}

void jw__cond_init(jw__cond_t *c) {
  pthread_cond_init(c, NULL);
}
void jw__cond_wait(jw__cond_t *c, jw__mutex_t *m) {
  pthread_cond_wait(c, m);
}
int jw__cond_timedwait(jw__cond_t *c, jw__mutex_t *m, uint32_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(ms / 1000u);
  ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT ? 1 : 0;
}
void jw__cond_broadcast(jw__cond_t *c) {
  pthread_cond_broadcast(c);
}
void jw__cond_destroy(jw__cond_t *c) {
  pthread_cond_destroy(c);
}

typedef struct {
  void (*fn)(void *);
  void *arg;
} thread_start_t;

static void *thread_trampoline(void *p) {
  thread_start_t s = *(thread_start_t *)p;
  free(p);
  s.fn(s.arg);
  return NULL;
}

int jw__thread_start(jw__thread_t *t, void (*fn)(void *), void *arg) {
  return jw__thread_start_stack(t, fn, arg, 0);
}

int jw__thread_start_stack(jw__thread_t *t, void (*fn)(void *), void *arg, size_t stack_bytes) {
  thread_start_t *s = malloc(sizeof(*s));
  pthread_attr_t attr;
  int rc;
  if (s == NULL)
    return JW_ENOMEM;
  s->fn = fn;
  s->arg = arg;
  pthread_attr_init(&attr);
  if (stack_bytes != 0)
    pthread_attr_setstacksize(&attr, stack_bytes);
  rc = pthread_create(t, &attr, thread_trampoline, s);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    free(s);
    return JW_ESYS;
  }
  return 0;
}

void jw__thread_join(jw__thread_t *t) {
  pthread_join(*t, NULL);
}

/* The native build only renders and checks events (unit tests, tools);
 * its context is read the same honest way: what is not there is named. */
void jw__run_context(jw_run_info_t *run) {
  FILE *f = fopen("/etc/machine-id", "r");
  struct utsname u;
  struct passwd *pw;
  if (f != NULL) {
    if (fgets(run->host_id, sizeof(run->host_id), f) != NULL)
      run->host_id[strcspn(run->host_id, "\r\n")] = '\0';
    fclose(f);
  }
  if (run->host_id[0] == '\0')
    jw__run_unavailable(run, "host.id", "/etc/machine-id could not be read");
  if (uname(&u) == 0) {
    jw__strlcpy(run->os_name, u.sysname, sizeof(run->os_name));
    jw__strlcpy(run->os_version, u.release, sizeof(run->os_version));
  } else {
    jw__run_unavailable(run, "host.os", "uname failed (errno %d)", errno);
  }
  snprintf(run->user_id, sizeof(run->user_id), "%lu", (unsigned long)getuid());
  pw = getpwuid(getuid());
  if (pw != NULL && pw->pw_name != NULL)
    jw__strlcpy(run->user_name, pw->pw_name, sizeof(run->user_name));
  else
    jw__run_unavailable(run, "user.name", "uid %lu has no passwd entry", (unsigned long)getuid());
}

/* Internal declarations shared by jobwarden's sources (not public API). */
#ifndef JW_INTERNAL_H
#define JW_INTERNAL_H

#include "jobwarden.h"

#ifdef _WIN32
#include <windows.h>
typedef CRITICAL_SECTION jw__mutex_t;
typedef CONDITION_VARIABLE jw__cond_t;
typedef HANDLE jw__thread_t;
#else
#include <pthread.h>
typedef pthread_mutex_t jw__mutex_t;
typedef pthread_cond_t jw__cond_t;
typedef pthread_t jw__thread_t;
#endif

/* Platform layer (src/win/platform.c, src/unix/platform.c). */
void jw__mutex_init(jw__mutex_t *m);
void jw__mutex_lock(jw__mutex_t *m);
void jw__mutex_unlock(jw__mutex_t *m);
void jw__mutex_destroy(jw__mutex_t *m);
void jw__cond_init(jw__cond_t *c);
/* Waits on c with m held; returns with m held again. */
void jw__cond_wait(jw__cond_t *c, jw__mutex_t *m);
void jw__cond_broadcast(jw__cond_t *c);
void jw__cond_destroy(jw__cond_t *c);
/* Starts fn(arg) on a new thread. Returns 0 or JW_ESYS. */
int jw__thread_start(jw__thread_t *t, void (*fn)(void *), void *arg);
/* Waits for the thread to end and releases it. */
void jw__thread_join(jw__thread_t *t);
/* Fills buf with n cryptographically random bytes. Returns 0 or JW_ESYS. */
int jw__random_bytes(void *buf, size_t n);
/* Host name as UTF-8; "unknown" when it cannot be read. */
void jw__hostname(char *buf, size_t size);
/* Writes all of buf to the process's stderr, unbuffered (messages that must
 * not interleave with another thread's output mid-line). */
void jw__stderr_write(const char *buf, size_t len);

/* Text of a system error code (GetLastError() / errno), UTF-8, without a
 * trailing newline or period. */
void jw__sys_error_text(uint32_t code, char *buf, size_t size);
/* fopen() for a UTF-8 path (on Windows through _wfopen). */
#include <stdio.h>
FILE *jw__fopen_utf8(const char *path, const char *mode);

#ifdef _WIN32
/* A new malloc'd UTF-16 copy of a UTF-8 string; NULL when the input is not
 * valid UTF-8 or memory runs out. */
wchar_t *jw__utf8_to_wide(const char *s);
#endif

/* Bounded copy that always terminates dst (truncates silently). */
void jw__strlcpy(char *dst, const char *src, size_t size);

/* Longest pipe NAME accepted (the part after \\.\pipe\; the kernel takes
 * 256 characters for the whole path). */
#define JW_PIPE_NAME_MAX 200
/* Checks a pipe NAME: 1 to JW_PIPE_NAME_MAX bytes, no backslash, slash or
 * control character; a leading \\.\pipe\ is skipped (*name moves past
 * it). `what` starts the error text ("tail", "--export pipe:"). Returns 0
 * or JW_EUSAGE. */
int jw__pipe_name_check(const char **name, const char *what, jw_error_t *err);

#endif /* JW_INTERNAL_H */

/* Error codes, names and the caller-provided error record. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

const char *jw_err_name(int code) {
  switch (code) {
  case 0:
    return "JW_OK";
#define XX(c, _)                                                                                   \
  case JW_##c:                                                                                     \
    return "JW_" #c;
    JW_ERRNO_MAP(XX)
#undef XX
  default:
    return "JW_EUNKNOWN";
  }
}

const char *jw_strerror(int code) {
  switch (code) {
  case 0:
    return "success";
#define XX(c, s)                                                                                   \
  case JW_##c:                                                                                     \
    return s;
    JW_ERRNO_MAP(XX)
#undef XX
  default:
    return "unknown error";
  }
}

int jw_error_set(jw_error_t *err, int code, uint32_t sys_error, const char *where, const char *fmt,
                 ...) {
  va_list ap;
  if (err == NULL)
    return code;
  err->code = code;
  err->sys_error = sys_error;
  jw__strlcpy(err->where, where ? where : "", sizeof(err->where));
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof(err->text), fmt, ap);
  va_end(ap);
  return code;
}

int jw__lower_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

void jw__strlcpy(char *dst, const char *src, size_t size) {
  size_t n;
  if (size == 0)
    return;
  n = strlen(src);
  if (n >= size)
    n = size - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Strings that cross the sandbox boundary: UTF-16 from the sandboxed process
 * turned into UTF-8 that is always valid, and argv quoted into the one
 * command line CreateProcessW takes. Both treat their input as hostile: any
 * length, any code unit, and every size computed before anything is written. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* CreateProcessW: "The maximum length of this string is 32,767 characters,
 * including the Unicode terminating null character." */
#define CMDLINE_MAX_UNITS 32767u

static int is_high_surrogate(uint16_t u) {
  return u >= 0xD800 && u <= 0xDBFF;
}
static int is_low_surrogate(uint16_t u) {
  return u >= 0xDC00 && u <= 0xDFFF;
}

/* Decodes the code point starting at s[i] (i < n). Lone and reversed
 * surrogates decode as U+FFFD, one per code unit. Sets *used to 1 or 2. */
static uint32_t decode_utf16(const uint16_t *s, size_t n, size_t i, size_t *used) {
  uint16_t u = s[i];
  *used = 1;
  if (is_high_surrogate(u)) {
    if (i + 1 < n && is_low_surrogate(s[i + 1])) {
      *used = 2;
      return 0x10000u + (((uint32_t)(u - 0xD800u) << 10) | (uint32_t)(s[i + 1] - 0xDC00u));
    }
    return 0xFFFDu;
  }
  if (is_low_surrogate(u))
    return 0xFFFDu;
  return u;
}

static size_t utf8_length(uint32_t cp) {
  if (cp < 0x80)
    return 1;
  if (cp < 0x800)
    return 2;
  if (cp < 0x10000)
    return 3;
  return 4;
}

static char *utf8_put(char *p, uint32_t cp) {
  if (cp < 0x80) {
    *p++ = (char)cp;
  } else if (cp < 0x800) {
    *p++ = (char)(0xC0 | (cp >> 6));
    *p++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *p++ = (char)(0xE0 | (cp >> 12));
    *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *p++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *p++ = (char)(0xF0 | (cp >> 18));
    *p++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *p++ = (char)(0x80 | (cp & 0x3F));
  }
  return p;
}

/* Also returns JW_EINVAL for out == NULL or s == NULL with len > 0. U+0000
 * code units are kept (as a 0 byte counted in *out_len): the JSON renderer
 * escapes them, so a name hiding text after a NUL cannot hide it from the
 * log. When the cut at max_units falls between the two halves of a
 * surrogate pair, the dangling high half is dropped rather than turned into
 * U+FFFD: it was valid input, the cut is ours, and *truncated says so. */
int jw_utf16_to_utf8(const uint16_t *s, size_t len, size_t max_units, char **out, size_t *out_len,
                     int *truncated) {
  size_t n = len, i, used, total = 0;
  char *buf, *p;

  if (out == NULL)
    return JW_EINVAL;
  *out = NULL;
  if (s == NULL && len > 0)
    return JW_EINVAL;
  if (out_len)
    *out_len = 0;
  if (truncated)
    *truncated = 0;

  if (n > max_units) {
    n = max_units;
    if (truncated)
      *truncated = 1;
    if (n > 0 && is_high_surrogate(s[n - 1]) && is_low_surrogate(s[n]))
      n--;
  }

  /* Pass 1: the exact size. A code unit never needs more than 3 bytes (a
   * pair needs 4 for 2 units), so total <= 3 * n; the check keeps a 32-bit
   * size_t from wrapping on absurd inputs. */
  for (i = 0; i < n; i += used) {
    size_t k = utf8_length(decode_utf16(s, n, i, &used));
    if (total > (size_t)-1 - 1 - k)
      return JW_ENOMEM;
    total += k;
  }

  buf = malloc(total + 1);
  if (buf == NULL)
    return JW_ENOMEM;
  p = buf;
  for (i = 0; i < n; i += used)
    p = utf8_put(p, decode_utf16(s, n, i, &used));
  *p = '\0';

  *out = buf;
  if (out_len)
    *out_len = total;
  return 0;
}

/* Whether an argument must be quoted for CommandLineToArgvW / the MSVC CRT
 * to give it back unchanged: empty, or holding a separator or a quote. The
 * splitters only separate on space and tab, but newline and vertical tab
 * are quoted too because other parsers (and humans reading logs) split
 * there. */
static int needs_quotes(const char *arg) {
  return arg[0] == '\0' || strpbrk(arg, " \t\n\v\"") != NULL;
}

/* Bytes that arg takes in the command line (without separator), or
 * (size_t)-1 once that exceeds `limit`, so that no sum can wrap. */
static size_t quoted_length(const char *arg, int is_program, size_t limit) {
  size_t len = 0, backslashes = 0;
  int quote = needs_quotes(arg);
  const char *p;

  if (quote)
    len += 2;
  for (p = arg; *p != '\0'; p++) {
    if (*p == '\\') {
      backslashes++;
      len++;
    } else {
      /* Backslashes before a quote are doubled and the quote escaped. The
       * program name is never escaped: it has no quote (checked). */
      if (*p == '"')
        len += backslashes + 2;
      else
        len++;
      backslashes = 0;
    }
    if (len > limit)
      return (size_t)-1;
  }
  /* Backslashes before the closing quote are doubled, except in the program
   * name, which the splitters read up to the next quote with no escapes. */
  if (quote && !is_program)
    len += backslashes;
  return len > limit ? (size_t)-1 : len;
}

static char *quote_into(char *p, const char *arg, int is_program) {
  size_t backslashes = 0, k;
  int quote = needs_quotes(arg);
  const char *q;

  if (quote)
    *p++ = '"';
  for (q = arg; *q != '\0'; q++) {
    if (*q == '\\') {
      backslashes++;
    } else {
      if (*q == '"') {
        for (k = 0; k < backslashes; k++)
          *p++ = '\\';
        *p++ = '\\';
      }
      backslashes = 0;
    }
    *p++ = *q;
  }
  if (quote) {
    if (!is_program)
      for (k = 0; k < backslashes; k++)
        *p++ = '\\';
    *p++ = '"';
  }
  return p;
}

/* Returns JW_EINVAL when argc < 1, argv or an element is NULL, argv[0]
 * contains '"' (a program name cannot: the splitters end it at the next
 * quote), or the result is longer than CreateProcessW accepts. That limit
 * is 32767 UTF-16 units including the terminating NUL; it is checked on the
 * UTF-8 bytes, which is conservative because every UTF-16 unit comes from at
 * least one UTF-8 byte: a command line of at most 32766 bytes always fits,
 * and one of non-ASCII text may be refused slightly before the real limit. */
int jw_argv_to_cmdline(const char *const *argv, int argc, char **out) {
  const size_t limit = CMDLINE_MAX_UNITS - 1;
  size_t total = 0, k;
  char *buf, *p;
  int i;

  if (out == NULL)
    return JW_EINVAL;
  *out = NULL;
  if (argv == NULL || argc < 1)
    return JW_EINVAL;
  for (i = 0; i < argc; i++) {
    if (argv[i] == NULL)
      return JW_EINVAL;
    if (i == 0 && strchr(argv[0], '"') != NULL)
      return JW_EINVAL;
    k = quoted_length(argv[i], i == 0, limit);
    if (k == (size_t)-1)
      return JW_EINVAL;
    total += k + (i > 0); /* the space before every argument but the first */
    if (total > limit)
      return JW_EINVAL;
  }

  buf = malloc(total + 1);
  if (buf == NULL)
    return JW_ENOMEM;
  p = buf;
  for (i = 0; i < argc; i++) {
    if (i > 0)
      *p++ = ' ';
    p = quote_into(p, argv[i], i == 0);
  }
  *p = '\0';
  *out = buf;
  return 0;
}

int jw__pipe_name_check(const char **pname, const char *what, jw_error_t *err) {
  static const char prefix[] = "\\\\.\\pipe\\";
  const char *name = *pname;
  size_t i, len;
  if (strncmp(name, prefix, sizeof(prefix) - 1) == 0)
    name += sizeof(prefix) - 1;
  len = strlen(name);
  if (len == 0)
    return jw_error_set(err, JW_EUSAGE, 0, what, "%s: expected a pipe NAME", what);
  if (len > JW_PIPE_NAME_MAX)
    return jw_error_set(err, JW_EUSAGE, 0, what, "%s: pipe NAME is longer than %d bytes", what,
                        JW_PIPE_NAME_MAX);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c == '\\' || c == '/' || c < 0x20 || c == 0x7f)
      return jw_error_set(err, JW_EUSAGE, 0, what,
                          "%s: pipe NAME must not contain '\\', '/' or control characters "
                          "(byte %u is 0x%02x)",
                          what, (unsigned)i, c);
  }
  *pname = name;
  return 0;
}

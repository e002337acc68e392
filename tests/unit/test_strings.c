/* Strings from the sandboxed process: UTF-16 -> UTF-8 and argv quoting.
 * usage: test_strings DATA_DIR OUT_DIR (neither is used). */
#include <stdint.h>
#include <stdlib.h>

#include "harness.h"
#include "jobwarden.h"

#ifdef _WIN32
#include <windows.h>
#endif

/* ---- UTF-16 -> UTF-8 ---------------------------------------------------- */

/* Converts and compares with the exact bytes expected. */
static void check_utf16(const uint16_t *in, size_t len, size_t max_units, const char *want,
                        size_t want_len, int want_trunc, int line) {
  char *out = (char *)1;
  size_t out_len = 12345;
  int trunc = -1;
  int rc = jw_utf16_to_utf8(in, len, max_units, &out, &out_len, &trunc);
  jw_test_checks++;
  if (rc != 0 || out == NULL || out_len != want_len || memcmp(out, want, want_len) != 0 ||
      out[out_len] != '\0' || trunc != want_trunc) {
    size_t i;
    jw_test_failures++;
    fprintf(stderr,
            "%s:%d: utf16 case: rc=%d len=%zu (want %zu) trunc=%d "
            "(want %d) bytes:",
            __FILE__, line, rc, out_len, want_len, trunc, want_trunc);
    for (i = 0; rc == 0 && out && i < out_len; i++)
      fprintf(stderr, " %02X", (unsigned char)out[i]);
    fprintf(stderr, "\n");
  }
  if (rc == 0)
    free(out);
}

#define U16(...) ((const uint16_t[]){__VA_ARGS__})
#define N16(...) (sizeof((const uint16_t[]){__VA_ARGS__}) / sizeof(uint16_t))
#define UTF16_CASE(max, want, want_len, trunc, ...)                                                \
  check_utf16(U16(__VA_ARGS__), N16(__VA_ARGS__), max, want, want_len, trunc, __LINE__)

/* Decodes one UTF-8 sequence (test-side, strict), for the exhaustive pass. */
static long decode_one(const unsigned char *s, size_t len, size_t *used) {
  if (len >= 1 && s[0] < 0x80) {
    *used = 1;
    return s[0];
  }
  if (len >= 2 && (s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
    *used = 2;
    return ((long)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if (len >= 3 && (s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
    *used = 3;
    return ((long)(s[0] & 0x0F) << 12) | ((long)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  if (len >= 4 && (s[0] & 0xF8) == 0xF0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 &&
      (s[3] & 0xC0) == 0x80) {
    *used = 4;
    return ((long)(s[0] & 0x07) << 18) | ((long)(s[1] & 0x3F) << 12) | ((long)(s[2] & 0x3F) << 6) |
           (s[3] & 0x3F);
  }
  *used = 0;
  return -1;
}

static void test_utf16(void) {
  char *out;
  size_t out_len;
  int trunc;
  long u;
  int bad;
  uint16_t big[100];
  size_t i;

  /* Plain text and the UTF-8 length boundaries. */
  UTF16_CASE(100, "AB", 2, 0, 0x41, 0x42);
  UTF16_CASE(100, "\x7F", 1, 0, 0x7F);
  UTF16_CASE(100, "\xC2\x80", 2, 0, 0x80);
  UTF16_CASE(100, "\xC3\xA9", 2, 0, 0xE9);
  UTF16_CASE(100, "\xDF\xBF", 2, 0, 0x7FF);
  UTF16_CASE(100, "\xE0\xA0\x80", 3, 0, 0x800);
  UTF16_CASE(100, "\xE2\x82\xAC", 3, 0, 0x20AC);
  UTF16_CASE(100, "\xED\x9F\xBF", 3, 0, 0xD7FF);
  UTF16_CASE(100, "\xEE\x80\x80", 3, 0, 0xE000);
  UTF16_CASE(100, "\xEF\xBF\xBD", 3, 0, 0xFFFD);
  UTF16_CASE(100, "\xEF\xBF\xBF", 3, 0, 0xFFFF);
  /* Pairs: U+10000, U+1F600, U+10FFFF. */
  UTF16_CASE(100, "\xF0\x90\x80\x80", 4, 0, 0xD800, 0xDC00);
  UTF16_CASE(100, "\xF0\x9F\x98\x80", 4, 0, 0xD83D, 0xDE00);
  UTF16_CASE(100, "\xF4\x8F\xBF\xBF", 4, 0, 0xDBFF, 0xDFFF);
  /* Lone, reversed and doubled surrogates: one U+FFFD per bad unit. */
  UTF16_CASE(100,
             "A\xEF\xBF\xBD"
             "B",
             5, 0, 0x41, 0xD800, 0x42);
  UTF16_CASE(100, "A\xEF\xBF\xBD", 4, 0, 0x41, 0xDBFF);
  UTF16_CASE(100,
             "A\xEF\xBF\xBD"
             "B",
             5, 0, 0x41, 0xDC00, 0x42);
  UTF16_CASE(100, "\xEF\xBF\xBD\xEF\xBF\xBD", 6, 0, 0xDE00, 0xD83D);
  UTF16_CASE(100, "\xEF\xBF\xBD\xF0\x9F\x98\x80", 7, 0, 0xD83D, 0xD83D, 0xDE00);
  UTF16_CASE(100, "\xF0\x9F\x98\x80\xEF\xBF\xBD", 7, 0, 0xD83D, 0xDE00, 0xDE00);
  /* U+0000 is kept inside and counted. */
  UTF16_CASE(100, "A\0B\0", 4, 0, 0x41, 0x0000, 0x42, 0x0000);
  UTF16_CASE(100, "\0", 1, 0, 0x0000);

  /* Truncation at max_units. */
  UTF16_CASE(3, "ABC", 3, 1, 0x41, 0x42, 0x43, 0x44, 0x45);
  UTF16_CASE(5, "ABCDE", 5, 0, 0x41, 0x42, 0x43, 0x44, 0x45); /* == max */
  UTF16_CASE(0, "", 0, 1, 0x41);
  /* A pair cut in the middle: the dangling high half is dropped. */
  UTF16_CASE(3, "AB", 2, 1, 0x41, 0x42, 0xD83D, 0xDE00);
  UTF16_CASE(4, "AB\xF0\x9F\x98\x80", 6, 0, 0x41, 0x42, 0xD83D, 0xDE00);
  /* A lone high at the cut (next unit not a low): U+FFFD as usual. */
  UTF16_CASE(3, "AB\xEF\xBF\xBD", 5, 1, 0x41, 0x42, 0xD83D, 0x43);
  /* A low at the cut whose high is inside: the pair is complete. */
  UTF16_CASE(4,
             "A\xF0\x9F\x98\x80"
             "C",
             6, 1, 0x41, 0xD83D, 0xDE00, 0x43, 0x44);

  /* Empty input, with and without a pointer. */
  out = NULL;
  CHECK_INT(jw_utf16_to_utf8(NULL, 0, 10, &out, &out_len, &trunc), 0);
  CHECK(out != NULL && out[0] == '\0');
  CHECK_U64(out_len, 0);
  CHECK_INT(trunc, 0);
  free(out);
  /* Optional outputs may be NULL. */
  out = NULL;
  CHECK_INT(jw_utf16_to_utf8(U16(0x41, 0x42), 2, 1, &out, NULL, NULL), 0);
  CHECK_STR(out, "A");
  free(out);
  /* Bad arguments. */
  out = (char *)1;
  CHECK_INT(jw_utf16_to_utf8(NULL, 1, 10, &out, &out_len, &trunc), JW_EINVAL);
  CHECK(out == NULL);
  CHECK_INT(jw_utf16_to_utf8(U16(0x41), 1, 10, NULL, &out_len, &trunc), JW_EINVAL);

  /* A huge declared length is never read past max_units (ASan would see
   * the overread): 100 real units, "len" SIZE_MAX. */
  for (i = 0; i < 100; i++)
    big[i] = (uint16_t)('a' + i % 26);
  out = NULL;
  CHECK_INT(jw_utf16_to_utf8(big, (size_t)-1, 100, &out, &out_len, &trunc), 0);
  CHECK_U64(out_len, 100);
  CHECK_INT(trunc, 1);
  CHECK(out != NULL && memcmp(out, "abcdefghijklmnopqrstuvwxyzabcd", 30) == 0);
  free(out);

  /* Every BMP unit alone: length by range, decodes back to itself, and a
   * surrogate to U+FFFD. */
  bad = 0;
  for (u = 0; u <= 0xFFFF; u++) {
    uint16_t unit = (uint16_t)u;
    size_t used, want_len;
    long want = (u >= 0xD800 && u <= 0xDFFF) ? 0xFFFD : u;
    want_len = want < 0x80 ? 1 : want < 0x800 ? 2 : 3;
    out = NULL;
    if (jw_utf16_to_utf8(&unit, 1, 1, &out, &out_len, &trunc) != 0 || out_len != want_len ||
        trunc != 0 || decode_one((const unsigned char *)out, out_len, &used) != want ||
        used != out_len) {
      if (bad++ < 5)
        fprintf(stderr, "%s:%d: unit U+%04lX converts wrongly\n", __FILE__, __LINE__, u);
    }
    free(out);
  }
  CHECK_INT(bad, 0);
  /* Every pair with a high from each end and the middle, every low. */
  bad = 0;
  for (u = 0; u < 3 * 1024; u++) {
    static const uint16_t highs[3] = {0xD800, 0xDA3C, 0xDBFF};
    uint16_t pair[2];
    size_t used;
    long want;
    pair[0] = highs[u / 1024];
    pair[1] = (uint16_t)(0xDC00 + u % 1024);
    want = 0x10000 + ((long)(pair[0] - 0xD800) << 10) + (pair[1] - 0xDC00);
    out = NULL;
    if (jw_utf16_to_utf8(pair, 2, 2, &out, &out_len, &trunc) != 0 || out_len != 4 ||
        decode_one((const unsigned char *)out, out_len, &used) != want)
      bad++;
    free(out);
  }
  CHECK_INT(bad, 0);
}

/* ---- argv -> command line ----------------------------------------------- */

static void check_cmdline(const char *const *argv, int argc, const char *want, int line) {
  char *out = (char *)1;
  int rc = jw_argv_to_cmdline(argv, argc, &out);
  jw_test_checks++;
  if (rc != 0 || out == NULL || strcmp(out, want) != 0) {
    jw_test_failures++;
    fprintf(stderr, "%s:%d: command line: rc=%d got [%s] want [%s]\n", __FILE__, line, rc,
            rc == 0 && out ? out : "(none)", want);
  }
  if (rc == 0)
    free(out);
}

#define CMDLINE_CASE(want, ...)                                                                    \
  check_cmdline((const char *const[]){__VA_ARGS__},                                                \
                (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)), want,    \
                __LINE__)

/* A reference splitter with the rules of the UCRT (and, for what quoting
 * produces, CommandLineToArgvW): the program name runs to the first space
 * or tab outside quotes, quotes toggle and are dropped, no escapes; then
 * 2n backslashes + quote = n backslashes + toggle, 2n+1 backslashes + quote
 * = n backslashes + literal quote, other backslashes literal, "" inside
 * quotes = literal quote. Returns argc; args are malloc'd, NULL on OOM. */
#ifdef _WIN32
/* Round trips checked by the system's CommandLineToArgvW. */
static int system_splits;
#endif

struct sbuf {
  char *p;
  size_t n;
};

static void sb_put(struct sbuf *b, char c) {
  char *q = realloc(b->p, b->n + 2);
  if (q == NULL)
    abort();
  b->p = q;
  b->p[b->n++] = c;
  b->p[b->n] = '\0';
}

static int split_cmdline(const char *p, char **args, int max) {
  int argc = 0, in_q = 0;
  struct sbuf b = {NULL, 0};
  sb_put(&b, 'x');
  b.n = 0;
  b.p[0] = '\0';
  while (*p && (in_q || (*p != ' ' && *p != '\t'))) {
    if (*p == '"')
      in_q = !in_q;
    else
      sb_put(&b, *p);
    p++;
  }
  args[argc++] = b.p;
  for (;;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p == '\0' || argc == max)
      break;
    b.p = NULL;
    b.n = 0;
    sb_put(&b, 'x');
    b.n = 0;
    b.p[0] = '\0';
    in_q = 0;
    while (*p && (in_q || (*p != ' ' && *p != '\t'))) {
      if (*p == '\\') {
        size_t n = 0, k;
        while (*p == '\\') {
          n++;
          p++;
        }
        if (*p == '"') {
          for (k = 0; k < n / 2; k++)
            sb_put(&b, '\\');
          if (n % 2) {
            sb_put(&b, '"');
            p++;
          }
        } else {
          for (k = 0; k < n; k++)
            sb_put(&b, '\\');
        }
      } else if (*p == '"') {
        if (in_q && p[1] == '"') {
          sb_put(&b, '"');
          p += 2;
        } else {
          in_q = !in_q;
          p++;
        }
      } else {
        sb_put(&b, *p++);
      }
    }
    args[argc++] = b.p;
  }
  return argc;
}

/* Quotes argv, splits the result again and expects argv back; on Windows,
 * also with the system's own CommandLineToArgvW. Returns 0 when equal. */
static int roundtrip(const char *const *argv, int argc) {
  char *line = NULL, *args[16];
  int n, i, bad = 0;
  if (jw_argv_to_cmdline(argv, argc, &line) != 0)
    return -1;
  n = split_cmdline(line, args, 16);
  if (n != argc)
    bad = 1;
  for (i = 0; i < n; i++) {
    if (!bad && strcmp(args[i], argv[i]) != 0)
      bad = 1;
    free(args[i]);
  }
#ifdef _WIN32
  if (!bad) {
    typedef LPWSTR *(WINAPI * split_fn)(LPCWSTR, int *);
    static split_fn split;
    static int loaded;
    if (!loaded) {
      HMODULE shell32 = LoadLibraryW(L"shell32.dll");
      loaded = 1;
      if (shell32)
        split = (split_fn)(void (*)(void))GetProcAddress(shell32, "CommandLineToArgvW");
    }
    if (split) {
      int wn = MultiByteToWideChar(CP_UTF8, 0, line, -1, NULL, 0), wargc = 0;
      WCHAR *w = malloc(sizeof(WCHAR) * (size_t)wn);
      LPWSTR *wargv;
      if (w == NULL)
        abort();
      MultiByteToWideChar(CP_UTF8, 0, line, -1, w, wn);
      wargv = split(w, &wargc);
      system_splits++;
      if (wargv == NULL || wargc != argc)
        bad = 2;
      for (i = 0; bad == 0 && i < wargc; i++) {
        char u8[4096];
        if (WideCharToMultiByte(CP_UTF8, 0, wargv[i], -1, u8, sizeof(u8), NULL, NULL) == 0 ||
            strcmp(u8, argv[i]) != 0)
          bad = 2;
      }
      LocalFree(wargv);
      free(w);
    }
  }
#endif
  if (bad)
    fprintf(stderr, "  round trip failed (%s) for [%s]\n",
            bad == 2 ? "CommandLineToArgvW" : "reference splitter", line);
  free(line);
  return bad;
}

static void test_cmdline(void) {
  char *out;
  char *long_arg;
  size_t i;
  int bad;

  CMDLINE_CASE("prog.exe", "prog.exe");
  CMDLINE_CASE("prog.exe a b", "prog.exe", "a", "b");
  /* Empty arguments must survive as "". */
  CMDLINE_CASE("prog.exe \"\"", "prog.exe", "");
  CMDLINE_CASE("p a \"b c\" \"\" d", "p", "a", "b c", "", "d");
  /* Separators: space and tab (what the splitters use), newline and
   * vertical tab (quoted as well). */
  CMDLINE_CASE("p \"a b\"", "p", "a b");
  CMDLINE_CASE("p \"a\tb\"", "p", "a\tb");
  CMDLINE_CASE("p \"a\nb\"", "p", "a\nb");
  CMDLINE_CASE("p \"a\vb\"", "p", "a\vb");
  CMDLINE_CASE("p \" \"", "p", " ");
  /* Quotes become \" inside a quoted argument. */
  CMDLINE_CASE("p \"say \\\"hi\\\"\"", "p", "say \"hi\"");
  CMDLINE_CASE("p \"a\\\"b\"", "p", "a\"b");
  CMDLINE_CASE("p \"\\\"\"", "p", "\"");
  CMDLINE_CASE("p \"\\\"\\\"\"", "p", "\"\"");
  /* Backslashes are literal unless a quote follows. */
  CMDLINE_CASE("p a\\b", "p", "a\\b");
  CMDLINE_CASE("p \\\\server\\share", "p", "\\\\server\\share");
  CMDLINE_CASE("p \\", "p", "\\");
  CMDLINE_CASE("p a\\\\b\\", "p", "a\\\\b\\");
  CMDLINE_CASE("p C:\\dir\\\\", "p", "C:\\dir\\\\");
  /* Backslashes before a quote are doubled, then the quote escaped. */
  CMDLINE_CASE("p \"a\\\\\\\"b\"", "p", "a\\\"b");
  CMDLINE_CASE("p \"a\\\\\\\\\\\"b\"", "p", "a\\\\\"b");
  CMDLINE_CASE("p \"\\\\\\\"\"", "p", "\\\"");
  /* Trailing backslashes of a quoted argument are doubled, so that the
   * closing quote stays a quote. */
  CMDLINE_CASE("p \"C:\\Program Files\\\\\"", "p", "C:\\Program Files\\");
  CMDLINE_CASE("p \"a b\\\\\\\\\"", "p", "a b\\\\");
  /* The program name: quoted when needed, never escaped (the splitters
   * read it up to the next quote, backslashes literal). */
  CMDLINE_CASE("\"C:\\Program Files\\app.exe\" x", "C:\\Program Files\\app.exe", "x");
  CMDLINE_CASE("\"C:\\a b\\\" x", "C:\\a b\\", "x");
  CMDLINE_CASE("\"\" x", "", "x");
  CMDLINE_CASE("C:\\tools\\x.exe", "C:\\tools\\x.exe");
  /* UTF-8 passes through as bytes. */
  CMDLINE_CASE("p \"\xC3\xBC x\" \xE6\x96\x87", "p", "\xC3\xBC x", "\xE6\x96\x87");

  /* Refused: no program, a quote in the program name, NULL pointers. */
  out = (char *)1;
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p"}, 0, &out), JW_EINVAL);
  CHECK(out == NULL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p"}, -1, &out), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline(NULL, 1, &out), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p"}, 1, NULL), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"a\"b.exe", "x"}, 2, &out), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"\"p\""}, 1, &out), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", NULL}, 2, &out), JW_EINVAL);
  /* A quote elsewhere than argv[0] is fine. */
  out = NULL;
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", "\""}, 2, &out), 0);
  free(out);

  /* The length limit: 32767 UTF-16 units including the terminating NUL,
   * so at most 32766 bytes. "p " + 32764 = 32766 fits, one more does not. */
  long_arg = malloc(1024 * 1024 + 1);
  if (long_arg == NULL)
    abort();
  memset(long_arg, 'a', 1024 * 1024);
  long_arg[32764] = '\0';
  out = NULL;
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), 0);
  CHECK_U64(out ? strlen(out) : 0, 32766);
  free(out);
  long_arg[32764] = 'a';
  long_arg[32765] = '\0';
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), JW_EINVAL);
  /* The added quotes count: "p \"" + 32762 + "\"" = 32766. */
  long_arg[0] = ' ';
  long_arg[32762] = '\0';
  out = NULL;
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), 0);
  CHECK_U64(out ? strlen(out) : 0, 32766);
  free(out);
  long_arg[32762] = 'a';
  long_arg[32763] = '\0';
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), JW_EINVAL);
  /* Doubled trailing backslashes count: "p \"" + " " + 32759 a + "\\\\" +
   * "\"" = 32766. */
  long_arg[0] = ' ';
  memset(long_arg + 1, 'a', 32759);
  long_arg[32760] = '\\';
  long_arg[32761] = '\0';
  out = NULL;
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), 0);
  CHECK_U64(out ? strlen(out) : 0, 32766);
  CHECK(out != NULL && strcmp(out + 32762, "a\\\\\"") == 0);
  free(out);
  long_arg[32760] = 'a';
  long_arg[32761] = '\\';
  long_arg[32762] = '\0';
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), JW_EINVAL);
  /* Escapes count too: 16383 quotes quote to 32766 + 2 bytes. */
  memset(long_arg, '"', 16383);
  long_arg[16383] = '\0';
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), JW_EINVAL);
  /* Separators count: one space per argument after the first. */
  {
    static const char *many[16384];
    for (i = 0; i < 16384; i++)
      many[i] = i == 0 ? "pp" : "a";
    /* "pp" + 16382 * " a" = 2 + 32764 = 32766 bytes: fits. */
    out = NULL;
    CHECK_INT(jw_argv_to_cmdline(many, 16383, &out), 0);
    CHECK_U64(out ? strlen(out) : 0, 32766);
    free(out);
    CHECK_INT(jw_argv_to_cmdline(many, 16384, &out), JW_EINVAL);
  }
  /* A megabyte argument is refused without trouble. */
  memset(long_arg, 'b', 1024 * 1024);
  long_arg[1024 * 1024] = '\0';
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){"p", long_arg}, 2, &out), JW_EINVAL);
  CHECK_INT(jw_argv_to_cmdline((const char *const[]){long_arg}, 1, &out), JW_EINVAL);
  free(long_arg);

  /* Round trip: every string of up to 5 characters over the alphabet that
   * matters (letter, space, tab, backslash, quote), between two plain
   * arguments so that a bad quote would spill into its neighbour. */
  {
    static const char alphabet[] = {'a', ' ', '\t', '\\', '"'};
    char s[6];
    int len, total = 0;
    long code, count;
    bad = 0;
    for (len = 0; len <= 5; len++) {
      count = 1;
      for (i = 0; i < (size_t)len; i++)
        count *= 5;
      for (code = 0; code < count; code++) {
        long c = code;
        const char *argv[3];
        for (i = 0; i < (size_t)len; i++) {
          s[i] = alphabet[c % 5];
          c /= 5;
        }
        s[len] = '\0';
        argv[0] = "prog";
        argv[1] = s;
        argv[2] = "z";
        if (roundtrip(argv, 3) != 0 && bad++ < 5)
          fprintf(stderr, "  for argv[1] = [%s]\n", s);
        total++;
      }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(total, 1 + 5 + 25 + 125 + 625 + 3125);
  }
  /* Program names round-trip as well. */
  {
    static const char *const names[] = {
        "prog", "a b", "C:\\x y\\", "", "\\\\srv\\share\\p.exe", "a\\", "tab\there", "C:\\\\"};
    bad = 0;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
      const char *argv[2];
      argv[0] = names[i];
      argv[1] = "x y";
      if (roundtrip(argv, 2) != 0)
        bad++;
    }
    CHECK_INT(bad, 0);
  }
#ifdef _WIN32
  /* The system splitter really ran (shell32 loaded, function found). */
  CHECK(system_splits > 3900);
#endif
}

/* Runnable one by one: `test_strings DATA OUT --case utf16`. */
static const jw_test_case_t cases[] = {
    {"utf16", test_utf16, 30},
    {"cmdline", test_cmdline, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("strings", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

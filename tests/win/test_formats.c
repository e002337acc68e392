/* wine.real.formats: the sinks of one real run write what the converter
 * produces. jobwarden.exe runs a helper that starts children, with one
 * native file sink and, for the same events, ecs and ocsf file sinks, an
 * ocsf stdout sink and an ecs file sink rotated every 4 KiB. Checked: each
 * formatted stream has exactly the native stream's lines, in the same
 * order, and every line is byte for byte the conversion of the native line
 * of the same seq (jw_format_line: the function jw-format runs, linked into
 * this executable from the same src/format.c), with event.sequence /
 * metadata.sequence equal to the native seq; the rotated ecs files, joined
 * oldest first, are that stream too, and every file after the first starts
 * with the ecs sandbox.log_continued line jw_format_continuation builds
 * from the line after it, naming PATH.1 and the seq that follows.
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. The
 * native stream is <events>\wine-formats.jsonl (validated with every other
 * native file); the formatted ones go to <events>\formats\ (not *.jsonl of
 * the events directory itself, which the native schema validator reads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <jansson.h>

#include "format.h"
#include "harness.h"
#include "helpers.h"

#define RUN_TIMEOUT_MS 60000
#define CHILDREN       12

static char g_self[TW_PATH_CHARS], g_jw[TW_PATH_CHARS], g_events[TW_PATH_CHARS];

/* The lines of a buffer: pointers into it, each without its '\n'. */
typedef struct {
  char *buf;
  const char **line;
  size_t *len;
  size_t n;
} lines_t;

static int split_lines(char *buf, size_t size, lines_t *out) {
  size_t i, cap = 16;
  memset(out, 0, sizeof(*out));
  out->buf = buf;
  out->line = malloc(cap * sizeof(*out->line));
  out->len = malloc(cap * sizeof(*out->len));
  if (buf == NULL || out->line == NULL || out->len == NULL)
    return -1;
  for (i = 0; i < size;) {
    char *nl = memchr(buf + i, '\n', size - i);
    if (nl == NULL)
      return -1; /* a torn last line */
    if (out->n == cap) {
      cap *= 2;
      out->line = realloc(out->line, cap * sizeof(*out->line));
      out->len = realloc(out->len, cap * sizeof(*out->len));
      if (out->line == NULL || out->len == NULL)
        return -1;
    }
    out->line[out->n] = buf + i;
    out->len[out->n] = (size_t)(nl - (buf + i));
    out->n++;
    i = (size_t)(nl - buf) + 1;
  }
  return 0;
}

static void free_lines(lines_t *l) {
  free(l->buf);
  free((void *)l->line);
  free(l->len);
  memset(l, 0, sizeof(*l));
}

static int read_lines(const char *path, lines_t *out) {
  size_t len = 0;
  char *buf = tw_read_file(path, &len);
  if (buf == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    memset(out, 0, sizeof(*out));
    return -1;
  }
  /* each sink's own seal chain aside: the lines themselves compare */
  len = tw_unseal(buf, len);
  return split_lines(buf, len, out);
}

static long long seq_of(jw_format_t f, const char *line, size_t len) {
  json_t *j = json_loadb(line, len, 0, NULL);
  jw_format_meta_t m;
  long long s;
  jw_format_meta(f, j, &m);
  s = m.has_seq ? m.seq : -1;
  json_decref(j);
  return s;
}

/* Every line of got (format f) is the conversion of the native line at the
 * same index; same count. Returns the number of lines that differ. */
static int compare(const char *what, const lines_t *native, const lines_t *got, jw_format_t f) {
  size_t i;
  int bad = 0;
  CHECK_INT(got->n, native->n);
  for (i = 0; i < native->n && i < got->n; i++) {
    char *conv = NULL;
    size_t clen = 0;
    int rc = jw_format_line(f, native->line[i], native->len[i], &conv, &clen);
    if (rc != 0 || clen != got->len[i] + 1 || memcmp(conv, got->line[i], got->len[i]) != 0) {
      if (bad++ < 3)
        fprintf(stderr, "%s line %lu differs:\n  sink:      %.*s\n  converted: %.*s\n", what,
                (unsigned long)i + 1, (int)got->len[i], got->line[i], conv ? (int)clen - 1 : 0,
                conv ? conv : "");
    }
    CHECK_INT(seq_of(f, got->line[i], got->len[i]),
              seq_of(JW_FORMAT_NATIVE, native->line[i], native->len[i]));
    free(conv);
  }
  CHECK_INT(bad, 0);
  return bad;
}

/* The rotated ecs files PATH.k .. PATH.1, PATH joined: continuation lines
 * checked and dropped, the rest compared with the native stream. */
static void check_rotated(const char *path, const lines_t *native) {
  char part[TW_PATH_CHARS], prev[TW_PATH_CHARS];
  lines_t all, one;
  int k, files = 0, heads = 0;
  size_t cap = 0;
  memset(&all, 0, sizeof(all));
  snprintf(prev, sizeof(prev), "%s.1", path);
  for (k = 200; k >= 0; k--) {
    size_t i, start = 0;
    if (k > 0)
      snprintf(part, sizeof(part), "%s.%d", path, k);
    else
      snprintf(part, sizeof(part), "%s", path);
    if (GetFileAttributesA(part) == INVALID_FILE_ATTRIBUTES)
      continue;
    CHECK_INT(read_lines(part, &one), 0);
    files++;
    if (files > 1 && one.n >= 2) {
      /* The continuation line: exactly what the exporter's function makes
       * of the line after it. */
      size_t hlen = 0;
      char *want = jw_format_continuation(JW_FORMAT_ECS, prev, one.line[1], one.len[1], &hlen);
      json_t *h = json_loadb(one.line[0], one.len[0], 0, NULL);
      CHECK(want != NULL && hlen == one.len[0] + 1 && memcmp(want, one.line[0], one.len[0]) == 0);
      CHECK_STR(tw_str(h, "jobwarden.event"), "sandbox.log_continued");
      CHECK_STR(tw_str(h, "jobwarden.previous_file"), prev);
      CHECK_INT(tw_int(h, "jobwarden.continues_at_seq"),
                seq_of(JW_FORMAT_ECS, one.line[1], one.len[1]));
      heads++;
      start = 1;
      free(want);
      json_decref(h);
    }
    for (i = start; i < one.n; i++) {
      if (all.n == cap) {
        cap = cap ? cap * 2 : 64;
        all.line = realloc((void *)all.line, cap * sizeof(*all.line));
        all.len = realloc(all.len, cap * sizeof(*all.len));
      }
      /* Keep the buffers: the joined view points into them. */
      all.line[all.n] = one.line[i];
      all.len[all.n] = one.len[i];
      all.n++;
    }
    free((void *)one.line);
    free(one.len);
    /* one.buf stays allocated for `all` (freed at process exit). */
  }
  CHECK(files >= 3); /* it really rotated, more than once */
  CHECK_INT(heads, files - 1);
  compare("rotated ecs", native, &all, JW_FORMAT_ECS);
  free((void *)all.line);
  free(all.len);
}

/* <events>\\formats, made when missing (each case runs alone too). */
static void formats_dir(char *dir) {
  snprintf(dir, TW_PATH_CHARS, "%s\\formats", g_events);
  CreateDirectoryA(dir, NULL);
}

/* Runs jobwarden.exe in <events>\\formats: stdout / stderr to
 * wine-formats<tag>.stdout / .stderr there (stdout to out_path when not
 * NULL), killed with 99 after RUN_TIMEOUT_MS. */
static void formats_run(tw_run_t *r, const char *tag, const char *args, const char *out_path) {
  char dir[TW_PATH_CHARS];
  formats_dir(dir);
  CHECK_INT(tw_jw_start(&(tw_run_opts_t){.args = args,
                                         .dir = dir,
                                         .prefix = "wine-formats",
                                         .tag = tag,
                                         .out_path = out_path,
                                         .timeout_ms = RUN_TIMEOUT_MS,
                                         .kill_code = 99},
                        r),
            0);
  tw_jw_wait(r);
  CHECK(r->finished);
}

static void case_formats(void) {
  char dir[TW_PATH_CHARS], a[TW_PATH_CHARS], b[TW_PATH_CHARS], c[TW_PATH_CHARS];
  char d[TW_PATH_CHARS], out[TW_PATH_CHARS], args[TW_CMD_CHARS], part[TW_PATH_CHARS];
  tw_run_t r;
  lines_t la, lb, lc, lo;
  int k;

  formats_dir(dir);
  tw_case_path(a, sizeof(a), g_events, "wine-", "formats", ".jsonl");
  tw_case_path(b, sizeof(b), dir, "wine-formats", "", ".ecs.jsonl");
  tw_case_path(c, sizeof(c), dir, "wine-formats", "", ".ocsf.jsonl");
  tw_case_path(d, sizeof(d), dir, "wine-formats", "-rotated", ".ecs.txt");
  tw_case_path(out, sizeof(out), dir, "wine-formats", "-stdout", ".ocsf.jsonl");
  DeleteFileA(a);
  DeleteFileA(b);
  DeleteFileA(c);
  DeleteFileA(d);
  for (k = 1; k <= 200; k++) {
    snprintf(part, sizeof(part), "%s.%d", d, k);
    DeleteFileA(part);
  }
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export \"file:%s,format=ecs\" --export "
           "\"file:%s,format=ocsf\" --export stdout,format=ocsf --export "
           "\"file:%s,rotate=4K,keep=200,format=ecs\" -- \"%s\" --helper series %d 0",
           a, b, c, d, g_self, CHILDREN);
  formats_run(&r, "", args, out);
  CHECK_U64(r.exit_code, 0);

  CHECK_INT(read_lines(a, &la), 0);
  CHECK_INT(read_lines(b, &lb), 0);
  CHECK_INT(read_lines(c, &lc), 0);
  CHECK_INT(read_lines(out, &lo), 0);
  /* The run started the children: every one has its start and exit. */
  CHECK(la.n >= 2 + 2 * (CHILDREN + 1));
  compare("ecs", &la, &lb, JW_FORMAT_ECS);
  compare("ocsf", &la, &lc, JW_FORMAT_OCSF);
  compare("stdout ocsf", &la, &lo, JW_FORMAT_OCSF);
  check_rotated(d, &la);
  free_lines(&la);
  free_lines(&lb);
  free_lines(&lc);
  free_lines(&lo);
  tw_jw_free(&r);
}

/* A stdout sink with format= still carries events only: the program's own
 * output goes to the other stream (--agent-output auto), never between
 * the event lines. */
static void case_stdout_relay(void) {
  char args[TW_CMD_CHARS];
  tw_run_t r;
  lines_t lo;
  size_t i;
  snprintf(args, sizeof(args),
           "run --export stdout,format=ecs -- \"%s\" --helper print agent-says-hello", g_self);
  formats_run(&r, "-relay", args, NULL);
  CHECK_U64(r.exit_code, 0);
  CHECK(r.err != NULL && strstr(r.err, "agent-says-hello") != NULL);
  /* Not a line of its own on stdout (the text is in the events, inside the
   * command line: every line below must be an ECS object). */
  CHECK(r.out != NULL && strncmp(r.out, "agent-says-hello", 16) != 0 &&
        strstr(r.out, "\nagent-says-hello") == NULL);
  CHECK_INT(split_lines(r.out ? _strdup(r.out) : NULL, r.out_len, &lo), 0);
  CHECK(lo.n >= 4);
  for (i = 0; i < lo.n; i++) {
    json_t *j = json_loadb(lo.line[i], lo.len[i], 0, NULL);
    CHECK_STR(tw_str(j, "ecs.version"), JW_ECS_VERSION);
    json_decref(j);
  }
  free_lines(&lo);
  tw_jw_free(&r);
}

/* A bad format= stops the run before anything starts, with the message. */
static void case_bad_format(void) {
  char args[TW_CMD_CHARS];
  tw_run_t r;
  snprintf(args, sizeof(args), "run --export stdout,format=cef -- \"%s\" --helper exit 0", g_self);
  formats_run(&r, "-bad", args, NULL);
  CHECK_U64(r.exit_code, 125);
  CHECK(r.err != NULL &&
        strstr(r.err, "--export stdout,format=cef: format: expected native, ecs or ocsf, got "
                      "\"cef\"") != NULL);
  CHECK(r.out != NULL && r.out[0] == '\0'); /* no event: nothing ran */
  tw_jw_free(&r);
}

/* Runnable one by one: `win_formats.exe DATA EVENTS JOBWARDEN --case bad_format`. */
static const jw_test_case_t cases[] = {
    {"formats", case_formats, 60},
    {"stdout_relay", case_stdout_relay, 60},
    {"bad_format", case_bad_format, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-formats-", g_events, g_jw, g_self) != 0)
    return 2;
  return TW_RUN_CASES("formats", argc, argv, cases);
}

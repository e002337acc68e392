/* The portable subcommands' dispatch and what they share: reading a
 * record file line by line, writing to standard output, messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "internal.h"
#include "parts.h"

int jw_out(const char *buf, size_t len) {
  return jw__stdout_write(buf, len);
}

int jw_outf(const char *fmt, ...) {
  char small[1024], *big = NULL;
  va_list ap;
  int n, rc;
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0)
    return -1;
  if ((size_t)n < sizeof(small))
    return jw_out(small, (size_t)n);
  big = malloc((size_t)n + 1);
  if (big == NULL)
    return -1;
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  rc = jw_out(big, (size_t)n);
  free(big);
  return rc;
}

void jw_errf(const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  int n = snprintf(buf, sizeof(buf), "jobwarden: ");
  va_start(ap, fmt);
  n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  if ((size_t)n > sizeof(buf) - 2)
    n = (int)sizeof(buf) - 2;
  buf[n++] = '\n';
  jw__stderr_write(buf, (size_t)n);
}

int jw_record_read(const char *path, jw_record_line_fn fn, void *ctx, char *errbuf,
                   size_t errsize) {
  FILE *f = jw__fopen_utf8(path, "rb");
  char *buf;
  size_t cap = 1 << 16, have = 0;
  unsigned long lineno = 0;
  int rc = 0, too_long = 0;
  if (f == NULL) {
    snprintf(errbuf, errsize, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  buf = malloc(cap);
  if (buf == NULL) {
    fclose(f);
    snprintf(errbuf, errsize, "%s: out of memory", path);
    return -1;
  }
  for (;;) {
    int c = getc(f);
    if (c == EOF || c == '\n') {
      size_t len = have;
      if (c == EOF && have == 0 && !too_long)
        break;
      if (len > 0 && buf[len - 1] == '\r' && c == '\n')
        len--;
      lineno++;
      rc = fn(ctx, buf, len, lineno, c == EOF || too_long);
      have = 0;
      too_long = 0;
      if (rc != 0 || c == EOF)
        break;
      continue;
    }
    if (have >= JW_RECORD_LINE_MAX) {
      too_long = 1;
      continue;
    }
    if (have + 1 >= cap) {
      size_t ncap = cap * 2;
      char *p = realloc(buf, ncap);
      if (p == NULL) {
        snprintf(errbuf, errsize, "%s: out of memory at line %lu", path, lineno + 1);
        rc = -1;
        break;
      }
      buf = p;
      cap = ncap;
    }
    buf[have++] = (char)c;
  }
  if (rc == 0 && ferror(f)) {
    snprintf(errbuf, errsize, "%s: read error after line %lu", path, lineno);
    rc = -1;
  }
  free(buf);
  fclose(f);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* check-policy FILE                                                        */
/* ------------------------------------------------------------------------ */

int jw_cmd_check_policy(int argc, char **argv) {
  jw_policy_t p;
  jw_error_t err;
  json_t *j;
  char *text;
  if (argc != 3) {
    jw_errf("check-policy: expected exactly one FILE");
    return JW_EXIT_JW_ERROR;
  }
  memset(&err, 0, sizeof(err));
  jw_policy_init(&p);
  if (jw_policy_parse_file(&p, argv[2], &err) != 0) {
    jw_errf("check-policy: %s", err.text);
    return JW_EXIT_POLICY_INVALID;
  }
  jw_policy_resolve(&p, &p);
  j = jw_policy_to_json(&p);
  text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  if (text == NULL) {
    jw_errf("check-policy: out of memory");
    return JW_EXIT_JW_ERROR;
  }
  jw_out(text, strlen(text));
  jw_out("\n", 1);
  free(text);
  return JW_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* tail --file FILE [--raw]                                                 */
/* ------------------------------------------------------------------------ */

typedef struct {
  int raw;
  int saw_end;
  int out_failed;
  const char *path;
  jw__parts_t *parts; /* events sent as continuation records, put together */
  unsigned long lost; /* events not shown: incomplete, or dropped whole */
} tail_file_t;

static int tail_event(tail_file_t *t, const char *line, size_t len);

static int tail_line(void *ctx, const char *line, size_t len, unsigned long lineno, int cut) {
  tail_file_t *t = ctx;
  jw__part_result_t res;
  size_t rlen = len;
  const char *rec = jw__parts_record_start(line, &rlen);
  int pr, rc;
  (void)cut;
  pr = jw__parts_feed(t->parts, rec, rlen, lineno, &res);
  switch (pr) {
  case JW_PARTS_HELD:
  case JW_PARTS_REPEAT:
    return 0;
  case JW_PARTS_WHOLE:
    rc = tail_event(t, res.whole, res.whole_len);
    free(res.whole);
    return rc;
  case JW_EINVAL:
    /* A line dropped whole is named where its first part was (as verify
     * and report name it). */
    jw_errf("tail: %s:%lu: %s", t->path, res.line_dropped ? (unsigned long)res.first_tag : lineno,
            res.why);
    t->lost += res.line_dropped != 0;
    return 0;
  case JW_ENOMEM:
    jw_errf("tail: out of memory");
    t->out_failed = 1;
    return 1;
  default:
    return tail_event(t, line, len);
  }
}

static void tail_incomplete(void *ctx, const jw__parts_pending_t *pp) {
  tail_file_t *t = ctx;
  char name[JW_PARTS_NAME_MAX];
  if (pp->repeat)
    return;
  t->lost++;
  jw__parts_name(name, sizeof(name), pp->run_id, pp->seq, pp->digest, pp->limit);
  jw_errf("tail: %s:%lu: an incomplete event: %s: %lu of %lu continuation records "
          "(part %lu missing)",
          t->path, (unsigned long)pp->first_tag, name, (unsigned long)pp->seen,
          (unsigned long)pp->of, (unsigned long)pp->missing);
}

static int tail_event(tail_file_t *t, const char *line, size_t len) {
  char out[2048];
  int r;
  r = jw_tail_format(line, len, out, sizeof(out));
  if (r == 1)
    t->saw_end = 1;
  if (t->raw ? (jw_out(line, len) != 0 || jw_out("\n", 1) != 0) : jw_out(out, strlen(out)) != 0) {
    t->out_failed = 1;
    return 1;
  }
  return 0;
}

int jw_cmd_tail_file(int argc, char **argv) {
  tail_file_t t;
  const char *path = NULL;
  char why[600];
  int i;
  memset(&t, 0, sizeof(t));
  for (i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--raw") == 0) {
      t.raw = 1;
    } else if (strcmp(argv[i], "--file") == 0) {
      if (i + 1 >= argc) {
        jw_errf("tail: --file needs a FILE");
        return JW_EXIT_JW_ERROR;
      }
      if (path != NULL) {
        jw_errf("tail: --file given twice");
        return JW_EXIT_JW_ERROR;
      }
      path = argv[++i];
    } else {
      jw_errf("tail: unexpected argument '%.200s' (tail --file FILE [--raw])", argv[i]);
      return JW_EXIT_JW_ERROR;
    }
  }
  if (path == NULL) {
    jw_errf("tail: expected --file FILE");
    return JW_EXIT_JW_ERROR;
  }
  t.path = path;
  t.parts = jw__parts_new();
  if (t.parts == NULL) {
    jw_errf("tail: out of memory");
    return JW_EXIT_JW_ERROR;
  }
  if (jw_record_read(path, tail_line, &t, why, sizeof(why)) < 0) {
    jw__parts_free(t.parts);
    jw_errf("tail: %s", why);
    return JW_EXIT_JW_ERROR;
  }
  jw__parts_pending(t.parts, tail_incomplete, &t);
  jw__parts_free(t.parts);
  if (t.out_failed)
    return JW_EXIT_JW_ERROR;
  if (!t.saw_end) {
    jw_errf("tail: %s: the record ends before sandbox.job_end", path);
    return JW_EXIT_TAIL_CUT;
  }
  if (t.lost > 0)
    return JW_EXIT_TAIL_CUT; /* an event is missing: said above */
  return JW_EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */
/* ------------------------------------------------------------------------ */

static int has_arg(int argc, char **argv, const char *a) {
  int i;
  for (i = 2; i < argc; i++)
    if (strcmp(argv[i], a) == 0)
      return 1;
  return 0;
}

int jw_portable_command(int argc, char **argv, int *status) {
  const char *cmd = argc >= 2 ? argv[1] : "";
  if (strcmp(cmd, "check-policy") == 0)
    *status = jw_cmd_check_policy(argc, argv);
  else if (strcmp(cmd, "verify") == 0)
    *status = jw_cmd_verify(argc, argv);
  else if (strcmp(cmd, "report") == 0)
    *status = jw_cmd_report(argc, argv);
  else if (strcmp(cmd, "seal-key") == 0)
    *status = jw_cmd_seal_key(argc, argv);
  else if (strcmp(cmd, "flush") == 0)
    *status = jw_cmd_flush(argc, argv);
  else if (strcmp(cmd, "tail") == 0 && has_arg(argc, argv, "--file"))
    *status = jw_cmd_tail_file(argc, argv);
  else
    return 0;
  return 1;
}

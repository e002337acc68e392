/* `jobwarden flush DIR [--timeout DURATION]`: delivers what runs left in a
 * network sink's spool (src/spool.h) to its collector.
 *
 * DIR is a spool root (the directory spool= names, holding one directory
 * per run) or one run directory. Each run directory names its sink's SPEC
 * in its file `sink`; flush opens that exporter (its transport and
 * options, without a spool of its own) and delivers the lines in order,
 * retrying with backoff until all are delivered or --timeout (default
 * 30s) has passed. A run directory a live jobwarden holds is skipped.
 * Delivered directories are removed; what is left stays for a later
 * flush or run.
 *
 * Exit status: 0 everything found was delivered (or nothing was waiting),
 * 1 some lines are still waiting, 125 usage (no such directory, not a
 * spool, a SPEC this build cannot open). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "internal.h"
#include "spool.h"

#define FLUSH_TIMEOUT_DEFAULT_MS 30000

typedef struct {
  char spec[JW_EXPORTER_SPEC_MAX];
  int got;
} sink_line_t;

static int first_line(void *ctx, const char *line, size_t len, unsigned long lineno, int cut) {
  sink_line_t *s = ctx;
  (void)cut;
  if (lineno == 1 && len < sizeof(s->spec)) {
    memcpy(s->spec, line, len);
    s->spec[len] = '\0';
    s->got = 1;
  }
  return 1; /* the first line is enough */
}

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s%c%s", a, JW_PATH_SEP, b);
  return s;
}

/* Flushes one run directory. Returns 0 delivered (or nothing there),
 * 1 lines left, 2 skipped (a live run's), 125 cannot. */
static int flush_run(const char *dir, uint32_t timeout_ms, uint64_t *sent, uint64_t *left) {
  sink_line_t s;
  char why[600];
  char *sinkp = join(dir, "sink"), *lockp = join(dir, "lock");
  jw_exporter_t *exp = NULL;
  jw__file_t *probe = NULL;
  jw_error_t err;
  jw__spool_stats_t st;
  uint64_t found = 0;
  int rc;
  memset(&s, 0, sizeof(s));
  memset(&err, 0, sizeof(err));
  *sent = *left = 0;
  if (sinkp == NULL || lockp == NULL) {
    free(sinkp);
    free(lockp);
    jw_errf("flush: out of memory");
    return 125;
  }
  rc = jw_record_read(sinkp, first_line, &s, why, sizeof(why));
  free(sinkp);
  if ((rc < 0 || !s.got)) {
    free(lockp);
    jw_errf("flush: %s: not a run's spool directory (its 'sink' file cannot be read%s%s)", dir,
            rc < 0 ? ": " : "", rc < 0 ? why : "");
    return 125;
  }
  /* A live run holds its lock: its own sender delivers. */
  rc = jw__file_lock(lockp, &probe, &err);
  free(lockp);
  if (rc == JW_EBUSY) {
    jw_outf("%s: in use by a running jobwarden; skipped\n", dir);
    return 2;
  }
  jw__file_close(probe);
  rc = jw__exporter_open_flush(s.spec, dir, &exp, &found, &err);
  if (rc != 0) {
    jw_errf("flush: %s: %s", dir, err.text);
    return 125;
  }
  if (found > 0)
    jw__spool_wait(exp, timeout_ms);
  jw__spool_stats(exp, &st);
  *sent = st.adopted_sent;
  *left = st.pending;
  exp->delivery.drain_ms = 0;
  jw_exporter_close(exp); /* removes the directory when all went out */
  jw_outf("%s: %llu line(s) delivered to %s%s", dir, (unsigned long long)*sent, s.spec,
          *left > 0 ? "" : "\n");
  if (*left > 0)
    jw_outf("; %llu still waiting\n", (unsigned long long)*left);
  return *left > 0 ? 1 : 0;
}

int jw_cmd_flush(int argc, char **argv) {
  const char *dir = NULL;
  uint64_t timeout_ms = FLUSH_TIMEOUT_DEFAULT_MS, sent_all = 0, left_all = 0;
  char **names = NULL;
  size_t n = 0, i, runs = 0;
  jw_error_t err;
  int a, status = 0, is_run = 0;
  memset(&err, 0, sizeof(err));
  for (a = 2; a < argc; a++) {
    if (strcmp(argv[a], "--timeout") == 0) {
      if (a + 1 >= argc || jw_parse_duration(argv[a + 1], &timeout_ms) != 0 ||
          timeout_ms > 24u * 3600u * 1000u) {
        jw_errf("flush: --timeout: expected a duration like \"30s\" (at most 24h)%s%s%s",
                a + 1 < argc ? ", got \"" : "", a + 1 < argc ? argv[a + 1] : "",
                a + 1 < argc ? "\"" : "");
        return JW_EXIT_JW_ERROR;
      }
      a++;
    } else if (argv[a][0] == '-' && argv[a][1] != '\0') {
      jw_errf("flush: unknown option '%s' (usage: jobwarden flush DIR [--timeout DURATION])",
              argv[a]);
      return JW_EXIT_JW_ERROR;
    } else if (dir == NULL) {
      dir = argv[a];
    } else {
      jw_errf("flush: one DIR only (got '%s' and '%s')", dir, argv[a]);
      return JW_EXIT_JW_ERROR;
    }
  }
  if (dir == NULL) {
    jw_errf("flush: expected the spool directory (usage: jobwarden flush DIR [--timeout "
            "DURATION])");
    return JW_EXIT_JW_ERROR;
  }
  if (jw__dir_list(dir, &names, &n, &err) != 0) {
    jw_errf("flush: %s", err.text);
    return JW_EXIT_JW_ERROR;
  }
  for (i = 0; i < n; i++)
    is_run |= strcmp(names[i], "sink") == 0;
  if (is_run) {
    status = flush_run(dir, (uint32_t)timeout_ms, &sent_all, &left_all);
    runs = 1;
  } else {
    uint64_t deadline = jw_now_us() + timeout_ms * 1000u;
    for (i = 0; i < n && status != 125; i++) {
      char *sub = join(dir, names[i]), *sinkp = sub ? join(sub, "sink") : NULL;
      jw__file_t *f = NULL;
      uint64_t sent = 0, left = 0, now = jw_now_us();
      int r;
      if (sub == NULL || sinkp == NULL || jw__file_open_read(sinkp, &f, &err) != 0) {
        free(sub);
        free(sinkp);
        continue; /* not a run directory */
      }
      jw__file_close(f);
      free(sinkp);
      runs++;
      r = flush_run(sub, now < deadline ? (uint32_t)((deadline - now) / 1000u) : 0, &sent, &left);
      free(sub);
      sent_all += sent;
      left_all += left;
      if (r == 125 || (r == 1 && status == 0))
        status = r;
    }
    if (runs == 0 && status == 0) {
      jw__dir_list_free(names, n);
      jw_errf("flush: %s: not a spool (no run directory with a 'sink' file in it)", dir);
      return JW_EXIT_JW_ERROR;
    }
  }
  jw__dir_list_free(names, n);
  if (status == 2)
    status = 0;
  if (status == 125)
    return JW_EXIT_JW_ERROR;
  jw_outf("flush: %llu line(s) delivered, %llu still waiting\n", (unsigned long long)sent_all,
          (unsigned long long)left_all);
  return left_all > 0 ? 1 : 0;
}

/* jw-parts: test tool for continuation records (src/parts.h).
 *
 *   jw-parts record KEYFILE OUT N   a sealed record of N events (job_start,
 *                                   N-2 notices with long messages that
 *                                   need escaping, job_end), written through
 *                                   the emitter and the file exporter, with
 *                                   a new seal key written to KEYFILE
 *   jw-parts split MAX IN OUT       every line of IN longer than MAX bytes
 *                                   as part records of at most MAX bytes
 *                                   (version 2, "limit":MAX), as a sink
 *                                   with that size limit sends it (run_id
 *                                   and seq read with jw_format_meta, in
 *                                   any format; MAX at least
 *                                   JW_PARTS_MIN_MAX, 298)
 *
 * Exit status: 0; 1 when a line cannot be split (the message says which);
 * 2 for bad usage, a file that cannot be opened or written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format.h"
#include "parts.h"
#include "seal.h"

static int record(const char *keyfile, const char *out, int n) {
  jw_seal_key_t key;
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  char spec[1100];
  int i;
  memset(&err, 0, sizeof(err));
  if (jw_seal_key_generate(&key) != 0 || jw_seal_key_write(keyfile, &key, &err) != 0) {
    fprintf(stderr, "jw-parts: %s\n", err.text[0] ? err.text : "no random source");
    return 2;
  }
  snprintf(spec, sizeof(spec), "file:%s", out);
  if (jw_run_info_init(&run, "parts-test", JW_TIER_NONE) != 0 || jw_emitter_new(&run, &em) != 0 ||
      jw_exporter_open(spec, &exp, &err) != 0 ||
      jw_seal_new(&key, run.run_id, "0", &exp->seal) != 0 || jw_emitter_add(em, exp) != 0) {
    fprintf(stderr, "jw-parts: %s: %s\n", out, err.text[0] ? err.text : "cannot set up");
    return 2;
  }
  jw_seal_key_wipe(&key);
  for (i = 0; i < n; i++) {
    jw_event_t ev;
    if (i == 0)
      jw_event_init(&ev, JW_EVENT_JOB_START, "job", "observed", NULL, "jobwarden", JW_SEV_INFO);
    else if (i == n - 1)
      jw_event_init(&ev, JW_EVENT_JOB_END, "job", "observed", NULL, "jobwarden", JW_SEV_INFO);
    else {
      jw_event_init(&ev, JW_EVENT_NOTICE, "sink_failed", "degraded", "monitor", "jobwarden",
                    JW_SEV_HIGH);
      snprintf(ev.message, sizeof(ev.message),
               "event %d: \"quoted\" C:\\path\\x \xc3\xa9t\xc3\xa9 \xe2\x82\xac "
               "\xf0\x9f\x98\x80 tab\there, padded: %0120d",
               i, i);
    }
    if (jw_emit(em, &ev) != 0) {
      fprintf(stderr, "jw-parts: %s: emit failed\n", out);
      return 2;
    }
  }
  jw_emitter_free(em);
  return 0;
}

typedef struct {
  FILE *out;
  int failed;
} sink_t;

static int write_part(void *ctx, const char *part, size_t len) {
  sink_t *s = ctx;
  if (fwrite(part, 1, len, s->out) != len || fputc('\n', s->out) == EOF) {
    s->failed = 1;
    return JW_EIO;
  }
  return 0;
}

static int split(size_t max, const char *in_path, const char *out_path) {
  FILE *in = fopen(in_path, "rb"), *out;
  char *line = NULL;
  size_t cap = 0, len;
  unsigned long lineno = 0;
  int c, status = 0;
  sink_t sink;
  if (in == NULL) {
    fprintf(stderr, "jw-parts: %s: cannot open\n", in_path);
    return 2;
  }
  out = fopen(out_path, "wb");
  if (out == NULL) {
    fclose(in);
    fprintf(stderr, "jw-parts: %s: cannot create\n", out_path);
    return 2;
  }
  sink.out = out;
  sink.failed = 0;
  for (;;) {
    len = 0;
    while ((c = fgetc(in)) != EOF && c != '\n') {
      if (len + 2 > cap) {
        cap = cap ? cap * 2 : 4096;
        line = realloc(line, cap);
        if (line == NULL)
          return 2;
      }
      line[len++] = (char)c;
    }
    if (c == EOF && len == 0)
      break;
    lineno++;
    if (line == NULL)
      line = calloc(1, 1);
    line[len] = '\0';
    if (len > max) {
      json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
      jw_format_meta_t m;
      jw_error_t err;
      int rc;
      jw_format_t f = json_is_object(json_object_get(j, "ecs"))        ? JW_FORMAT_ECS
                      : json_is_object(json_object_get(j, "metadata")) ? JW_FORMAT_OCSF
                                                                       : JW_FORMAT_NATIVE;
      jw_format_meta(f, j, &m);
      memset(&err, 0, sizeof(err));
      if (m.run_id == NULL || !m.has_seq) {
        fprintf(stderr, "jw-parts: %s:%lu: no run_id and seq: written as it is\n", in_path, lineno);
        rc = JW_PARTS_FITS;
      } else {
        rc = jw__parts_split(line, len, max, m.run_id, (uint64_t)m.seq, write_part, &sink, &err);
      }
      json_decref(j);
      if (rc == 0)
        continue;
      if (rc != JW_PARTS_FITS) {
        fprintf(stderr, "jw-parts: %s:%lu: %s\n", in_path, lineno, err.text);
        status = 1;
      }
    }
    if (fwrite(line, 1, len, out) != len || fputc('\n', out) == EOF)
      sink.failed = 1;
  }
  free(line);
  fclose(in);
  if (fclose(out) != 0 || sink.failed) {
    fprintf(stderr, "jw-parts: %s: cannot write\n", out_path);
    return 2;
  }
  return status;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "record") == 0 && atoi(argv[4]) >= 2)
    return record(argv[2], argv[3], atoi(argv[4]));
  if (argc == 5 && strcmp(argv[1], "split") == 0 && atol(argv[2]) > 0)
    return split((size_t)atol(argv[2]), argv[3], argv[4]);
  fprintf(stderr, "usage: jw-parts record KEYFILE OUT N | jw-parts split MAX IN OUT\n");
  return 2;
}

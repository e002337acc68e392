/* Event throughput benchmark (not a test): N events through the whole
 * pipeline — jw_emit (numbering, jansson rendering, queueing) and the
 * file exporter's writer thread — against a baseline in the same run that
 * writes the same number of pre-rendered lines of the same size through
 * the same file exporter, one write per line. Builds natively and for
 * Windows (run under Wine). Usage: bench_emit DIR [N [FORMAT]]: FORMAT
 * (native, ecs, ocsf) is the pipeline sink's format=. The pipeline runs a
 * second time with its sink sealed (--seal-key), for the cost of sealing
 * in the same run. See
 * docs/performance.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "bench_util.h"
#include "internal.h"
#include "seal.h"

static double now_s(void) {
  return (double)jw_now_us() / 1e6;
}

static int open_sink(const char *dir, const char *name, const char *format, jw_exporter_t **out) {
  char path[1024], spec[1200];
  jw_error_t err;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s,format=%s", path, format);
  if (jw_exporter_open(spec, out, &err) != 0) {
    fprintf(stderr, "%s\n", err.text);
    return -1;
  }
  return 0;
}

#define ROUNDS 5

static double median(double *v) {
  int i, j;
  for (i = 1; i < ROUNDS; i++)
    for (j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  return v[ROUNDS / 2];
}

/* One pipeline run: n events rendered, queued and written by the sink's
 * thread, timed until every line is written (the capacity holds every
 * event: none dropped). Sealed: the sink's chain as --seal-key makes it
 * (src/seal.c: one keyed BLAKE2b over the line, one key step, the seal
 * member appended). Seconds, or -1. */
static double pipeline(const jw_run_info_t *run, const char *dir, const char *format, uint32_t n,
                       int sealed) {
  jw_emitter_t *em;
  jw_exporter_t *exp;
  jw_event_t ev;
  jw_seal_key_t key;
  double t0;
  uint32_t i;
  if (jw_emitter_new(run, &em) != 0 ||
      open_sink(dir, sealed ? "bench-sealed.jsonl" : "bench-pipeline.jsonl", format, &exp) != 0)
    return -1;
  if (sealed) {
    if (jw_seal_key_generate(&key) != 0 || jw_seal_new(&key, run->run_id, "0", &exp->seal) != 0)
      return -1;
    jw_seal_key_wipe(&key);
  }
  if (jw_emitter_add(em, exp) != 0 || jw_emitter_start(em, n) != 0)
    return -1;
  t0 = now_s();
  for (i = 0; i < n; i++) {
    make_event(&ev, i); /* lifecycle: dropped if the queue were full */
    if (jw_emit(em, &ev) != 0)
      return -1;
  }
  if (jw_emitter_dropped(em) != 0)
    return -1;
  jw_emitter_free(em);
  return now_s() - t0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 100000, i;
  const char *format = argc > 3 ? argv[3] : "native";
  jw_run_info_t run;
  jw_exporter_t *exp;
  jw_event_t ev;
  char *line;
  size_t len;
  double t0, base, full, sealed, full_t[ROUNDS], sealed_t[ROUNDS];
  int r;
  jw_error_t err;

  if (jw_run_info_init(&run, "bench", JW_TIER_LOCKDOWN) != 0)
    return 1;
  /* Baseline: the same bytes, pre-rendered once, written n times. Both
   * sides use a lifecycle kind: violations are flushed to disk per line
   * (FlushFileBuffers / fdatasync), which would dominate both. */
  make_event(&ev, 0);
  if (jw_event_render_line(&ev, &run, 1, jw_now_us(), &line, &len) != 0 ||
      open_sink(dir, "bench-baseline.jsonl", "native", &exp) != 0)
    return 1;
  t0 = now_s();
  for (i = 0; i < n; i++)
    if (exp->vt->export_line(exp, line, len, &ev, &err) != 0)
      return 1;
  jw_exporter_close(exp);
  base = now_s() - t0;
  free(line);

  /* The pipeline, unsealed and sealed in turn (ROUNDS each, medians:
   * alternating keeps a change in the machine's load from favouring one). */
  for (r = 0; r < ROUNDS; r++) {
    full_t[r] = pipeline(&run, dir, format, n, 0);
    sealed_t[r] = pipeline(&run, dir, format, n, 1);
    if (full_t[r] < 0 || sealed_t[r] < 0)
      return 1;
  }
  full = median(full_t);
  sealed = median(sealed_t);

  printf("events: %u, native line: %zu bytes, pipeline format: %s\n", n, len, format);
  printf("baseline (pre-rendered, file sink)   %9.0f lines/s  (%.3f s)\n", n / base, base);
  printf("pipeline (render+queue+file sink)    %9.0f events/s (%.3f s, median of %d)\n", n / full,
         full, ROUNDS);
  printf("pipeline, sealed                     %9.0f events/s (%.3f s, median of %d)\n", n / sealed,
         sealed, ROUNDS);
  printf("pipeline / baseline throughput ratio %.3f\n", base / full);
  printf("sealed / unsealed throughput ratio   %.3f\n", full / sealed);
  return 0;
}

/* Event throughput benchmark (not a test): N events through the whole
 * pipeline — jw_emit (numbering, rendering, queueing) and the sink's
 * writer thread — against baselines in the same run that write the same
 * bytes without the pipeline. Builds natively and for Windows (run under
 * Wine). Usage: bench_emit DIR [N [FORMAT]]: FORMAT (native, ecs, ocsf) is
 * the pipeline sink's format=. Variants, interleaved round by round
 * (ROUNDS each, medians, so that a change in the machine's load hits them
 * alike):
 *   raw, per line  the pre-rendered line written N times by the file
 *                  exporter, one write per line (the file sink's old way);
 *   raw, batched   the same bytes, one write per JW_WRITE_BATCH_BYTES (what
 *                  a writer that had nothing to render would do);
 *   pipeline       N jw_emit calls into a file sink, until every line is
 *                  written (jw_emitter_free), none dropped;
 *   sealed         the same with the sink sealed (--seal-key);
 *   Windows only:  a pipe: sink with one reader reading until the end,
 *                  against the same bytes written to a named pipe in
 *                  64 KiB WriteFile calls with the same reader.
 * See docs/performance.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#ifdef _WIN32
#include <process.h>
#endif

#include "bench_util.h"
#include "internal.h"
#include "seal.h"

#define ROUNDS 5

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

/* The pre-rendered line written n times: one export_line per line, or
 * export_lines with as many lines as fit JW_WRITE_BATCH_BYTES. Seconds, or
 * -1. Both use a lifecycle kind: nothing is flushed to disk. */
static double raw_file(const char *dir, const char *line, size_t len, uint32_t n, int batched) {
  jw_exporter_t *exp;
  jw_event_t ev;
  jw_error_t err;
  jw_line_ref_t *refs;
  size_t per = JW_WRITE_BATCH_BYTES / len, k;
  uint32_t i;
  double t0, t;
  if (per == 0)
    per = 1;
  refs = calloc(per, sizeof(*refs));
  if (refs == NULL ||
      open_sink(dir, batched ? "bench-raw-batched.jsonl" : "bench-raw.jsonl", "native", &exp) != 0)
    return -1;
  make_event(&ev, 0);
  for (k = 0; k < per; k++) {
    refs[k].line = line;
    refs[k].len = len;
    refs[k].kind = JW_EVENT_PROCESS_START;
  }
  t0 = now_s();
  for (i = 0; i < n;) {
    if (batched) {
      size_t m = n - i < per ? n - i : per;
      if (exp->vt->export_lines(exp, refs, m, &err) != m)
        return -1;
      i += (uint32_t)m;
    } else {
      if (exp->vt->export_line(exp, line, len, &ev, &err) != 0)
        return -1;
      i++;
    }
  }
  jw_exporter_close(exp);
  t = now_s() - t0;
  free(refs);
  return t;
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

#ifdef _WIN32
/* ---- the pipe sink (Windows) ------------------------------------------- */

typedef struct {
  const wchar_t *name;
  HANDLE connected; /* set once the reader's CreateFileW succeeded */
  uint64_t lines, bytes;
  int ok;
} pipe_reader_t;

/* Reads the pipe until the server closes it, counting lines. */
static unsigned __stdcall pipe_reader(void *arg) {
  pipe_reader_t *r = arg;
  static char buf[1 << 16];
  HANDLE h = INVALID_HANDLE_VALUE;
  DWORD got, i;
  int tries;
  for (tries = 0; tries < 2000 && h == INVALID_HANDLE_VALUE; tries++) {
    h = CreateFileW(r->name, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
      WaitNamedPipeW(r->name, 10);
  }
  SetEvent(r->connected);
  if (h == INVALID_HANDLE_VALUE)
    return 1;
  while (ReadFile(h, buf, sizeof(buf), &got, NULL) && got > 0) {
    r->bytes += got;
    for (i = 0; i < got; i++)
      r->lines += buf[i] == '\n';
  }
  r->ok = GetLastError() == ERROR_BROKEN_PIPE;
  CloseHandle(h);
  return 0;
}

static HANDLE start_reader(pipe_reader_t *r, const wchar_t *name) {
  memset(r, 0, sizeof(*r));
  r->name = name;
  r->connected = CreateEventW(NULL, TRUE, FALSE, NULL);
  return (HANDLE)_beginthreadex(NULL, 0, pipe_reader, r, 0, NULL);
}

/* The pipeline into pipe:NAME with one reader connected before the first
 * event, timed until the reader has read the last line. Seconds or -1. */
static double pipeline_pipe(const jw_run_info_t *run, uint32_t n) {
  jw_emitter_t *em;
  jw_exporter_t *exp;
  jw_event_t ev;
  jw_error_t err;
  pipe_reader_t r;
  HANDLE t;
  uint64_t connected = 0, gone = 0, last = 0;
  uint32_t e, i;
  double t0, dt;
  if (jw_emitter_new(run, &em) != 0 ||
      jw_exporter_open("pipe:jw-bench-emit,replay=0,buffer=1048576", &exp, &err) != 0 ||
      jw_emitter_add(em, exp) != 0 || jw_emitter_start(em, n) != 0)
    return -1;
  t = start_reader(&r, L"\\\\.\\pipe\\jw-bench-emit");
  WaitForSingleObject(r.connected, INFINITE);
  /* Served once the sink's acceptor has taken it (not merely connected). */
  for (i = 0; i < 5000 && connected == 0; i++) {
    jw__pipe_reader_stats(exp, &connected, &gone, &e, &last);
    if (connected == 0)
      Sleep(1);
  }
  t0 = now_s();
  for (i = 0; i < n; i++) {
    make_event(&ev, i);
    if (jw_emit(em, &ev) != 0)
      return -1;
  }
  jw_emitter_free(em); /* the reader reads to the end, then EOF */
  WaitForSingleObject(t, INFINITE);
  dt = now_s() - t0;
  CloseHandle(t);
  CloseHandle(r.connected);
  return r.ok && r.lines == n ? dt : -1;
}

/* The same bytes to a named pipe, 64 KiB per WriteFile, the same reader. */
static double raw_pipe(const char *line, size_t len, uint32_t n) {
  const wchar_t *name = L"\\\\.\\pipe\\jw-bench-raw";
  HANDLE srv, t;
  pipe_reader_t r;
  char *buf;
  size_t per = 65536 / len, used;
  uint32_t i = 0;
  double t0, dt;
  DWORD w;
  if (per == 0)
    per = 1;
  buf = malloc(per * len);
  srv = CreateNamedPipeW(name, PIPE_ACCESS_OUTBOUND, PIPE_TYPE_BYTE | PIPE_WAIT, 1, 65536, 4096, 0,
                         NULL);
  if (buf == NULL || srv == INVALID_HANDLE_VALUE)
    return -1;
  t = start_reader(&r, name);
  if (!ConnectNamedPipe(srv, NULL) && GetLastError() != ERROR_PIPE_CONNECTED)
    return -1;
  t0 = now_s();
  while (i < n) {
    for (used = 0; used < per * len && i < n; i++, used += len)
      memcpy(buf + used, line, len);
    if (!WriteFile(srv, buf, (DWORD)used, &w, NULL) || w != used)
      return -1;
  }
  FlushFileBuffers(srv); /* until the reader has read it all */
  CloseHandle(srv);
  WaitForSingleObject(t, INFINITE);
  dt = now_s() - t0;
  CloseHandle(t);
  CloseHandle(r.connected);
  free(buf);
  return r.lines == n ? dt : -1;
}
#endif

int main(int argc, char **argv) {
  const char *dir = bench_dir(argc, argv, "bench_emit DIR [N [FORMAT]]");
  uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 100000;
  const char *format = argc > 3 ? argv[3] : "native";
  jw_run_info_t run;
  jw_event_t ev;
  char *line;
  size_t len;
  double raw_t[ROUNDS], rawb_t[ROUNDS], full_t[ROUNDS], sealed_t[ROUNDS];
  double raw, rawb, full, sealed;
#ifdef _WIN32
  double pipe_t[ROUNDS], rawp_t[ROUNDS], pipe, rawp;
#endif
  int r;

  if (dir == NULL)
    return 2;
  if (jw_run_info_init(&run, "bench", JW_TIER_LOCKDOWN) != 0)
    return 1;
  /* The baselines' line: the pipeline's first event, rendered once. */
  make_event(&ev, 0);
  if (jw_event_render_line(&ev, &run, 1, jw_now_us(), &line, &len) != 0)
    return 1;

  for (r = 0; r < ROUNDS; r++) {
    raw_t[r] = raw_file(dir, line, len, n, 0);
    rawb_t[r] = raw_file(dir, line, len, n, 1);
    full_t[r] = pipeline(&run, dir, format, n, 0);
    sealed_t[r] = pipeline(&run, dir, format, n, 1);
    if (raw_t[r] < 0 || rawb_t[r] < 0 || full_t[r] < 0 || sealed_t[r] < 0)
      return 1;
#ifdef _WIN32
    rawp_t[r] = raw_pipe(line, len, n);
    pipe_t[r] = pipeline_pipe(&run, n);
    if (rawp_t[r] < 0 || pipe_t[r] < 0)
      return 1;
#endif
  }
  raw = median(raw_t);
  rawb = median(rawb_t);
  full = median(full_t);
  sealed = median(sealed_t);

  printf("events: %u, native line: %zu bytes, pipeline format: %s, medians of %d rounds\n", n, len,
         format, ROUNDS);
  printf("file: raw, one write per line          %9.0f lines/s  (%.3f s)\n", n / raw, raw);
  printf("file: raw, one write per %3u KiB        %9.0f lines/s  (%.3f s)\n",
         JW_WRITE_BATCH_BYTES / 1024u, n / rawb, rawb);
  printf("file: pipeline (render+queue+write)    %9.0f events/s (%.3f s)\n", n / full, full);
  printf("file: pipeline, sealed                 %9.0f events/s (%.3f s)\n", n / sealed, sealed);
  printf("pipeline / raw per line  ratio         %.3f\n", raw / full);
  printf("pipeline / raw batched   ratio         %.3f\n", rawb / full);
  printf("sealed / unsealed        ratio         %.3f\n", full / sealed);
#ifdef _WIN32
  pipe = median(pipe_t);
  rawp = median(rawp_t);
  printf("pipe: raw, one WriteFile per 64 KiB    %9.0f lines/s  (%.3f s)\n", n / rawp, rawp);
  printf("pipe: pipeline, one reader             %9.0f events/s (%.3f s)\n", n / pipe, pipe);
  printf("pipe pipeline / raw      ratio         %.3f\n", rawp / pipe);
#endif
  free(line);
  return 0;
}

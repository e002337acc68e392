/* unit: the emitter numbers events without gaps, renders once and fans out
 * to every exporter; a failing exporter is counted, never fatal; exporter
 * SPECs are validated with precise messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "test_util.h"
#include "internal.h"
#include "seal.h"

static int fail_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  (void)line;
  (void)len;
  (void)ev;
  return jw_error_set(err, JW_EIO, 28, self->spec, "simulated: no space left on device");
}

static const jw_exporter_vtable_t failing_vt = {.name = "failing", .export_line = fail_export};

static long long tw_json_int(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static void test_fanout(const char *dir) {
  char path1[1024], path2[1024], spec[1100];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *e1 = NULL, *e2 = NULL, *bad;
  jw_error_t err;
  char *a, *b, *line, *nl;
  size_t la = 0, lb = 0;
  int i, n_lines = 0;
  const int N = 50;

  snprintf(path1, sizeof(path1), "%s/unit-emitter.jsonl", dir);
  snprintf(path2, sizeof(path2), "%s/unit-emitter-copy.jsonl.txt", dir);
  remove(path1);
  remove(path2);

  CHECK_INT(jw_run_info_init(&run, "unit-job", JW_TIER_HARDENED), 0);
  CHECK_INT(strlen(run.run_id), 32);
  CHECK(run.host[0] != '\0');
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s", path1);
  CHECK_INT(jw_exporter_open(spec, &e1, &err), 0);
  snprintf(spec, sizeof(spec), "file:%s", path2);
  CHECK_INT(jw_exporter_open(spec, &e2, &err), 0);
  if (em == NULL || e1 == NULL || e2 == NULL)
    return;
  bad = calloc(1, sizeof(*bad));
  bad->vt = &failing_vt;
  jw__strlcpy(bad->spec, "failing:test", sizeof(bad->spec));
  CHECK_INT(jw_emitter_add(em, e1), 0);
  CHECK_INT(jw_emitter_add(em, bad), 0);
  CHECK_INT(jw_emitter_add(em, e2), 0);

  for (i = 0; i < N; i++) {
    jw_event_t ev;
    memset(&ev, 0, sizeof(ev));
    /* A stream as jobwarden writes one: job_start first, job_end last. */
    ev.kind = i == 0 ? JW_EVENT_JOB_START : i == N - 1 ? JW_EVENT_JOB_END : JW_EVENT_VIOLATION;
    ev.rule = i == 0 || i == N - 1 ? "job" : "image_denied";
    ev.action = "observed";
    ev.enforcer = "kernel";
    ev.source = "port";
    ev.severity = JW_SEV_LOW;
    ev.has_process = i != 0 && i != N - 1;
    ev.process.pid = 1000u + (uint32_t)i;
    ev.process.create_time = 133000000000000000ull + (uint64_t)i;
    ev.process.image = "C:\\agent\\child.exe";
    snprintf(ev.message, sizeof(ev.message), "event number %d", i + 1);
    if (i == 0)
      ev.extra = json_pack("{s:{s:s}}", "policy", "tier", "hardened");
    /* One sink fails every time: jw_emit reports it, the others still get the line. */
    CHECK_INT(jw_emit(em, &ev), JW_EIO);
    CHECK(ev.extra == NULL); /* stolen */
  }
  CHECK_U64(jw_emitter_count(em), N);
  CHECK_INT(jw_emitter_failed_sinks(em), 1);
  CHECK_U64(bad->lost, N);
  CHECK_U64(e1->written, N);
  CHECK_U64(e2->written, N);
  CHECK_U64(e1->lost, 0);
  jw_emitter_free(em);

  a = jw_test_read_file(path1, &la);
  b = jw_test_read_file(path2, &lb);
  CHECK(a != NULL && b != NULL);
  if (a == NULL || b == NULL)
    return;
  /* Both sinks received the same bytes: rendered once, written to each. */
  CHECK_INT(la, lb);
  CHECK(memcmp(a, b, la) == 0);
  CHECK(la > 0 && a[la - 1] == '\n');
  for (line = a; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    json_error_t jerr;
    json_t *j = json_loadb(line, (size_t)(nl - line), 0, &jerr);
    n_lines++;
    CHECK(j != NULL);
    if (j == NULL)
      continue;
    CHECK_INT(json_integer_value(json_object_get(j, "seq")), n_lines);
    CHECK_STR(json_string_value(json_object_get(j, "run_id")), run.run_id);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "job"), "name")), "unit-job");
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "job"), "tier")), "hardened");
    if (n_lines == 1) {
      CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.job_start");
      CHECK_STR(json_string_value(json_object_get(json_object_get(j, "policy"), "tier")),
                "hardened");
    } else if (n_lines == N) {
      CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.job_end");
    } else {
      CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.violation");
      CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "process"), "pid")),
                1000 + n_lines - 1);
    }
    json_decref(j);
  }
  CHECK_INT(n_lines, N);
  free(a);
  free(b);
  remove(path2);
}

static void test_specs(const char *dir) {
  jw_exporter_t *e = NULL;
  jw_error_t err;
  char spec[1200];

  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open("bogus:x", &e, &err), JW_EUSAGE);
  CHECK(e == NULL);
  CHECK_STR(err.text, "--export: unknown exporter 'bogus' (expected " JW_TEST_KINDS ")");

  CHECK_INT(jw_exporter_open("file:", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export file:: expected file:PATH");
  CHECK_INT(jw_exporter_open("file", &e, &err), JW_EUSAGE);
  CHECK_INT(jw_exporter_open("stdout:x", &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export stdout:x: stdout and stderr take no argument");

  /* A directory that does not exist: the path and the reason are named. */
  snprintf(spec, sizeof(spec), "file:%s/no-such-dir/events.jsonl", dir);
  CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EIO);
  CHECK(e == NULL);
  CHECK_CONTAINS(err.text, "cannot open event log '");
  CHECK_CONTAINS(err.text, "/no-such-dir/events.jsonl' for appending: ");
  CHECK(err.sys_error != 0);

  memset(spec, 'a', 600);
  spec[600] = '\0';
  CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EUSAGE);
  CHECK_STR(err.text, "--export: specification is longer than 511 bytes");

  CHECK_INT(jw_exporter_open("stdout", &e, &err), 0);
  CHECK(e != NULL);
  jw_exporter_close(e);
}

static void test_errors(void) {
  jw_error_t err;
  CHECK_STR(jw_err_name(JW_EPOLICY), "JW_EPOLICY");
  CHECK_STR(jw_strerror(JW_ENOENT), "no such file or program");
  CHECK_STR(jw_err_name(0), "JW_OK");
  CHECK_STR(jw_err_name(-999), "JW_EUNKNOWN");
  CHECK(JW_EINVAL < 0 && JW_ENOTSUP < 0 && JW_EINVAL != JW_ENOTSUP);
  CHECK_INT(jw_error_set(&err, JW_EIO, 5, "step", "failed %d", 42), JW_EIO);
  CHECK_STR(err.where, "step");
  CHECK_STR(err.text, "failed 42");
  CHECK_U64(err.sys_error, 5);
  CHECK_INT(jw_error_set(NULL, JW_EIO, 0, NULL, "x"), JW_EIO);
}

static void test_time_source(void) {
  uint64_t a = jw_now_us(), b = jw_now_us();
  /* After 2020-01-01 and monotonic enough for two calls in a row. */
  CHECK(a > 1577836800000000ull);
  CHECK(b >= a);
}

/* ---- queued delivery ---------------------------------------------------- */

/* A sink that keeps its lines in memory; it can hold its writer inside
 * export_line (the gate) and fail its first `fail_first` writes. */
typedef struct {
  jw__mutex_t m;
  jw__cond_t c;
  int gate_closed;
  int entered; /* export_line has been called at least once */
  int fail_first;
  int calls;
  char *lines[256];
  int n;
} mem_sink_t;

static int mem_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                      jw_error_t *err) {
  mem_sink_t *s = self->state;
  int rc = 0;
  (void)ev;
  jw__mutex_lock(&s->m);
  s->entered = 1;
  jw__cond_broadcast(&s->c);
  while (s->gate_closed)
    jw__cond_wait(&s->c, &s->m);
  if (s->calls++ < s->fail_first) {
    rc = jw_error_set(err, JW_EIO, 0, self->spec, "simulated failure");
  } else if (s->n < 256) {
    s->lines[s->n] = malloc(len + 1);
    memcpy(s->lines[s->n], line, len);
    s->lines[s->n][len] = '\0';
    s->n++;
  }
  jw__mutex_unlock(&s->m);
  return rc;
}

static const jw_exporter_vtable_t mem_vt = {.name = "memory", .export_line = mem_export};

static jw_exporter_t *mem_exporter(mem_sink_t *s) {
  jw_exporter_t *e = calloc(1, sizeof(*e));
  memset(s, 0, sizeof(*s));
  jw__mutex_init(&s->m);
  jw__cond_init(&s->c);
  e->vt = &mem_vt;
  e->state = s;
  jw__strlcpy(e->spec, "memory:test", sizeof(e->spec));
  return e;
}

static void emit_kind(jw_emitter_t *em, jw_event_kind_t kind) {
  jw_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.kind = kind;
  ev.rule = kind == JW_EVENT_VIOLATION ? "abnormal_exit" : "root_process";
  ev.action = "observed";
  ev.enforcer = "monitor";
  ev.source = "port";
  ev.severity = kind == JW_EVENT_VIOLATION ? JW_SEV_HIGH : JW_SEV_INFO;
  ev.has_process = 1;
  ev.process.pid = 4242;
  ev.process.create_time = 134000000000000000ull;
  ev.process.image = "C:\\agent.exe";
  ev.process.is_root = kind != JW_EVENT_VIOLATION;
  if (kind == JW_EVENT_JOB_END) {
    ev.rule = "job";
    ev.has_process = 0;
  }
  if (kind == JW_EVENT_PROCESS_EXIT) {
    ev.process.has_exit_code = 1;
    ev.process.exit_code = 0;
  }
  jw__strlcpy(ev.message, "queued delivery test", sizeof(ev.message));
  CHECK_INT(jw_emit(em, &ev), 0);
}

static json_t *line_json(mem_sink_t *s, int i) {
  json_error_t jerr;
  return i < s->n ? json_loads(s->lines[i], 0, &jerr) : NULL;
}

static void save_lines(mem_sink_t *s, const char *path) {
  FILE *f = fopen(path, "wb");
  int i;
  if (f == NULL)
    return;
  for (i = 0; i < s->n; i++)
    fputs(s->lines[i], f);
  fclose(f);
}

static void free_mem(mem_sink_t *s) {
  int i;
  for (i = 0; i < s->n; i++)
    free(s->lines[i]);
}

/* A stuck sink never stalls jw_emit; lifecycle lines beyond the queue are
 * dropped and recorded as one gap; alerts and the job end spill past the
 * queue. */
static void test_queue_full(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  mem_sink_t s;
  jw_exporter_t *e = mem_exporter(&s);
  char path[1024];
  json_t *j;
  int i;

  s.gate_closed = 1;
  CHECK_INT(jw_run_info_init(&run, "queue-job", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_emitter_add(em, e), 0);
  CHECK_INT(jw_emitter_start(em, 8), 0);
  CHECK_INT(jw_emitter_start(em, 8), JW_EINVAL);
  CHECK_INT(jw_emitter_add(em, e), JW_EINVAL);
  emit_kind(em, JW_EVENT_PROCESS_START); /* seq 1: the writer takes it and is held */
  jw__mutex_lock(&s.m);
  while (!s.entered)
    jw__cond_wait(&s.c, &s.m);
  jw__mutex_unlock(&s.m);
  for (i = 2; i <= 30; i++) /* 2..9 fill the queue, 10..30 are dropped */
    emit_kind(em, JW_EVENT_PROCESS_EXIT);
  for (i = 31; i <= 35; i++) /* alerts spill past the full queue */
    emit_kind(em, JW_EVENT_VIOLATION);
  emit_kind(em, JW_EVENT_PROCESS_EXIT); /* seq 36: dropped again */
  emit_kind(em, JW_EVENT_JOB_END);      /* seq 37: the run's summary spills */
  CHECK_U64(jw_emitter_dropped(em), 22);
  CHECK_U64(jw_emitter_count(em), 37);
  jw__mutex_lock(&s.m);
  s.gate_closed = 0;
  jw__cond_broadcast(&s.c);
  jw__mutex_unlock(&s.m);
  CHECK_U64(e->lost, 22);
  jw_emitter_free(em); /* drains */

  /* 1..9, gap 10..30, 31..35, gap 36..36, 37 */
  CHECK_INT(s.n, 9 + 1 + 5 + 1 + 1);
  for (i = 0; i < 9; i++) {
    j = line_json(&s, i);
    CHECK_INT(tw_json_int(j, "seq"), i + 1);
    json_decref(j);
  }
  j = line_json(&s, 9);
  CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.telemetry_gap");
  CHECK_INT(tw_json_int(j, "seq"), 30);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "from_seq")), 10);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "to_seq")), 30);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "count")), 21);
  CHECK_STR(json_string_value(json_object_get(json_object_get(j, "gap"), "reason")), "queue_full");
  CHECK_STR(json_string_value(json_object_get(json_object_get(j, "gap"), "sink")), "memory:test");
  CHECK_STR(json_string_value(json_object_get(j, "run_id")), run.run_id);
  json_decref(j);
  for (i = 10; i < 15; i++) {
    j = line_json(&s, i);
    CHECK_INT(tw_json_int(j, "seq"), 21 + i);
    CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.violation");
    json_decref(j);
  }
  j = line_json(&s, 15);
  CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.telemetry_gap");
  CHECK_INT(tw_json_int(j, "seq"), 36);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "from_seq")), 36);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "count")), 1);
  json_decref(j);
  j = line_json(&s, 16);
  CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.job_end");
  CHECK_INT(tw_json_int(j, "seq"), 37);
  json_decref(j);
  snprintf(path, sizeof(path), "%s/unit-emitter-gaps.jsonl", dir);
  save_lines(&s, path);
  free_mem(&s);
}

/* A sink that fails and recovers gets a gap record, then the stream. */
static void test_write_failures(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  mem_sink_t s;
  jw_exporter_t *e = mem_exporter(&s);
  char path[1024];
  json_t *j;
  int i;

  s.fail_first = 3;
  s.gate_closed = 1; /* every event is queued before the first write fails */
  CHECK_INT(jw_run_info_init(&run, "failing-job", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_emitter_add(em, e), 0);
  CHECK_INT(jw_emitter_start(em, 64), 0);
  for (i = 0; i < 6; i++)
    emit_kind(em, JW_EVENT_PROCESS_EXIT);
  jw__mutex_lock(&s.m);
  s.gate_closed = 0;
  jw__cond_broadcast(&s.c);
  jw__mutex_unlock(&s.m);
  jw_emitter_free(em);
  /* gap 1..3, events 4..6, then the in-band notice of the failure (seq 7),
   * which this sink receives once it has recovered. */
  CHECK_INT(s.n, 5);
  j = line_json(&s, 0);
  CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.telemetry_gap");
  CHECK_INT(tw_json_int(j, "seq"), 3);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "from_seq")), 1);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "gap"), "count")), 3);
  CHECK_STR(json_string_value(json_object_get(json_object_get(j, "gap"), "reason")),
            "write_failed");
  json_decref(j);
  for (i = 1; i < 4; i++) {
    j = line_json(&s, i);
    CHECK_INT(tw_json_int(j, "seq"), 3 + i);
    json_decref(j);
  }
  j = line_json(&s, 4);
  CHECK_INT(tw_json_int(j, "seq"), 7);
  CHECK_STR(json_string_value(json_object_get(j, "event")), "sandbox.notice");
  CHECK_STR(json_string_value(json_object_get(j, "rule")), "sink_failed");
  CHECK_STR(json_string_value(json_object_get(j, "action")), "degraded");
  CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "where")),
            "memory:test");
  CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "error"), "seq")), 1);
  json_decref(j);
  snprintf(path, sizeof(path), "%s/unit-emitter-failures.jsonl", dir);
  save_lines(&s, path);
  free_mem(&s);
}

/* jw_emitter_drain: bounded for a sink stuck in a write (the caller can
 * leave), immediate for healthy ones; jw_emitter_free still delivers
 * everything once the sink moves again. */
static void test_drain(void) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  mem_sink_t s;
  jw_exporter_t *e = mem_exporter(&s);
  uint64_t t0, ms;
  int i;

  CHECK_INT(jw_run_info_init(&run, "drain-job", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_emitter_add(em, e), 0);
  s.gate_closed = 1;
  CHECK_INT(jw_emitter_start(em, 8), 0);
  for (i = 0; i < 3; i++)
    emit_kind(em, JW_EVENT_PROCESS_START);
  jw__mutex_lock(&s.m);
  while (!s.entered)
    jw__cond_wait(&s.c, &s.m);
  jw__mutex_unlock(&s.m);
  t0 = jw_now_us();
  CHECK_INT(jw_emitter_drain(em, 300), JW_ETIMEDOUT);
  ms = (jw_now_us() - t0) / 1000u;
  CHECK(ms >= 290 && ms < 5000);
  jw__mutex_lock(&s.m);
  s.gate_closed = 0;
  jw__cond_broadcast(&s.c);
  jw__mutex_unlock(&s.m);
  CHECK_INT(jw_emitter_drain(em, 5000), 0); /* moving again: drained */
  jw_emitter_free(em);
  CHECK_INT(s.n, 3);
  free_mem(&s);

  /* A healthy sink: drained at once. */
  e = mem_exporter(&s);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_emitter_add(em, e), 0);
  CHECK_INT(jw_emitter_start(em, 8), 0);
  for (i = 0; i < 5; i++)
    emit_kind(em, JW_EVENT_PROCESS_START);
  t0 = jw_now_us();
  CHECK_INT(jw_emitter_drain(em, 10000), 0);
  CHECK((jw_now_us() - t0) / 1000u < 5000);
  CHECK_INT(s.n, 5);
  jw_emitter_free(em);
  CHECK_INT(jw_emitter_drain(NULL, 10), 0);
  free_mem(&s);
}

/* sandbox.job_end stays the last line of every stream, and a sink's
 * failure is in the record before it: jw_emitter_settle waits until every
 * writer has handled what was queued, the sink_failed notice its failure
 * caused included. Sink A fails its first line, which it only gets to
 * once its gate opens, right before the settle. */
static void test_settle(void) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  mem_sink_t sa, sb;
  jw_exporter_t *a, *b;
  int i, failed_at = -1, end_at = -1;
  CHECK_INT(jw_run_info_init(&run, "unit-settle", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  a = mem_exporter(&sa);
  b = mem_exporter(&sb);
  jw__strlcpy(a->spec, "memory:a", sizeof(a->spec));
  sa.fail_first = 1;
  sa.gate_closed = 1;
  CHECK_INT(jw_emitter_add(em, a), 0);
  CHECK_INT(jw_emitter_add(em, b), 0);
  CHECK_INT(jw_emitter_start(em, 64), 0);
  for (i = 0; i < 3; i++)
    emit_kind(em, JW_EVENT_PROCESS_START);
  jw__mutex_lock(&sa.m);
  sa.gate_closed = 0;
  jw__cond_broadcast(&sa.c);
  jw__mutex_unlock(&sa.m);
  CHECK_INT(jw_emitter_settle(em, 5000), 0);
  emit_kind(em, JW_EVENT_JOB_END);
  CHECK_INT(jw_emitter_drain(em, 5000), 0);
  for (i = 0; i < sb.n; i++) {
    if (strstr(sb.lines[i], "\"rule\":\"sink_failed\"") != NULL)
      failed_at = i;
    if (strstr(sb.lines[i], "\"event\":\"sandbox.job_end\"") != NULL)
      end_at = i;
  }
  CHECK_INT(sb.n, 5);
  CHECK_INT(failed_at, 3);
  CHECK_INT(end_at, 4);
  jw_emitter_free(em);
  for (i = 0; i < sb.n; i++)
    free(sb.lines[i]);
  for (i = 0; i < sa.n; i++)
    free(sa.lines[i]);
}

/* ---- seq order with emitters on several threads ------------------------- */

/* The seq of a rendered line (-1 when it has none). */
static long long line_seq(const char *line) {
  json_error_t jerr;
  json_t *o = json_loads(line, 0, &jerr);
  long long v = o ? (long long)json_integer_value(json_object_get(o, "seq")) : -1;
  json_decref(o);
  return v;
}

typedef struct {
  jw__mutex_t m;
  jw__cond_t c;
  int held;     /* the emitter of seq 1 waits in the hook */
  int released; /* ... until this is set */
} hold_t;

static void hold_seq1(void *ctx, uint64_t seq) {
  hold_t *h = ctx;
  if (seq != 1)
    return;
  jw__mutex_lock(&h->m);
  h->held = 1;
  jw__cond_broadcast(&h->c);
  while (!h->released)
    jw__cond_wait(&h->c, &h->m);
  jw__mutex_unlock(&h->m);
}

typedef struct {
  jw_emitter_t *em;
  int n;
  int kind_mix; /* 0: one process start; else a mix, long lines included */
} emitter_arg_t;

static void emit_some(void *arg) {
  emitter_arg_t *a = arg;
  static char long_cmd[20000];
  int i;
  if (long_cmd[0] == 0) {
    memset(long_cmd, 'x', sizeof(long_cmd) - 1);
    long_cmd[sizeof(long_cmd) - 1] = 0;
  }
  for (i = 0; i < a->n; i++) {
    jw_event_t ev;
    if (i % 3 == 0)
      jw_event_init(&ev, JW_EVENT_VIOLATION, "abnormal_exit", "observed", "monitor", "port",
                    JW_SEV_HIGH);
    else
      jw_event_init(&ev, JW_EVENT_PROCESS_START, "child_process", "observed", "monitor", "port",
                    JW_SEV_INFO);
    ev.has_process = 1;
    ev.process.pid = (uint32_t)(1000 + i);
    ev.process.image = "C:\\agent\\child.exe";
    /* Lines of very different cost, so that renders finish out of turn. */
    if (a->kind_mix && i % 7 == 0)
      ev.process.command_line = long_cmd;
    jw__strlcpy(ev.message, "ordering test", sizeof(ev.message));
    CHECK_INT(jw_emit(a->em, &ev), 0);
  }
}

/* Lines are rendered outside the emitter's lock, yet every sink gets them
 * in seq order: a line ready before an earlier seq waits for it (forced
 * here with the reserved hook: seq 2 is rendered while seq 1 is held, and
 * nothing is handed to a sink until seq 1 is). Then four threads emit at
 * once: each sink's file holds seq 1..N in order, and the sealed one
 * verifies intact (its chain follows the seq order). */
static void test_concurrent_order(const char *dir) {
  jw_run_info_t run;
  jw_emitter_t *em;
  jw_exporter_t *plain, *sealed;
  jw_seal_key_t key;
  jw_error_t err;
  hold_t h;
  emitter_arg_t one = {NULL, 1, 0}, args[4];
  jw__thread_t t, ts[4];
  char p1[1024], p2[1024], spec[1100], why[256];
  jw_test_lines_t l1, l2;
  const char *files[1];
  json_t *doc;
  size_t i;
  int k, total;

  snprintf(p1, sizeof(p1), "%s/emitter-order.jsonl", dir);
  snprintf(p2, sizeof(p2), "%s/emitter-order-sealed.jsonl", dir);
  remove(p1);
  remove(p2);
  CHECK_INT(jw_run_info_init(&run, "order", JW_TIER_LOCKDOWN), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s", p1);
  CHECK_INT(jw_exporter_open(spec, &plain, &err), 0);
  snprintf(spec, sizeof(spec), "file:%s", p2);
  CHECK_INT(jw_exporter_open(spec, &sealed, &err), 0);
  CHECK_INT(jw_seal_key_generate(&key), 0);
  /* The record's key beside it: wine.seal.records verifies it too. */
  snprintf(spec, sizeof(spec), "%s/emitter-order-sealed.key", dir);
  remove(spec);
  CHECK_INT(jw_seal_key_write(spec, &key, NULL), 0);
  CHECK_INT(jw_seal_new(&key, run.run_id, "0", &sealed->seal), 0);
  CHECK_INT(jw_emitter_add(em, plain), 0);
  CHECK_INT(jw_emitter_add(em, sealed), 0);
  CHECK_INT(jw_emitter_start(em, 100000), 0);

  memset(&h, 0, sizeof(h));
  jw__mutex_init(&h.m);
  jw__cond_init(&h.c);
  jw__emitter_reserved_hook_ctx = &h;
  jw__emitter_reserved_hook = hold_seq1;
  one.em = em;
  CHECK_INT(jw__thread_start(&t, emit_some, &one), 0);
  jw__mutex_lock(&h.m);
  while (!h.held)
    jw__cond_wait(&h.c, &h.m);
  jw__mutex_unlock(&h.m);
  /* seq 2, rendered while seq 1 is not: parked, nothing committed. */
  emit_kind(em, JW_EVENT_PROCESS_START);
  CHECK_U64(jw_emitter_count(em), 0);
  jw__mutex_lock(&h.m);
  h.released = 1;
  jw__cond_broadcast(&h.c);
  jw__mutex_unlock(&h.m);
  jw__thread_join(&t);
  CHECK_U64(jw_emitter_count(em), 2);
  jw__emitter_reserved_hook = NULL;

  for (k = 0; k < 4; k++) {
    args[k].em = em;
    args[k].n = 1500;
    args[k].kind_mix = 1;
    CHECK_INT(jw__thread_start(&ts[k], emit_some, &args[k]), 0);
  }
  for (k = 0; k < 4; k++)
    jw__thread_join(&ts[k]);
  emit_kind(em, JW_EVENT_JOB_END); /* a sealed stream ends with it */
  total = 2 + 4 * 1500 + 1;
  CHECK_U64(jw_emitter_count(em), (uint64_t)total);
  CHECK_U64(jw_emitter_dropped(em), 0);
  jw_emitter_free(em);

  CHECK_INT(jw_test_lines_read(p1, &l1), 0);
  CHECK_INT(jw_test_lines_read(p2, &l2), 0);
  CHECK_U64(l1.n, (uint64_t)total);
  CHECK_U64(l2.n, (uint64_t)total);
  for (i = 0; i < l1.n && i < (size_t)total; i++)
    if (line_seq(l1.l[i]) != (long long)i + 1) {
      CHECK_U64((uint64_t)line_seq(l1.l[i]), (uint64_t)i + 1);
      break;
    }
  for (i = 0; i < l2.n && i < (size_t)total; i++)
    if (line_seq(l2.l[i]) != (long long)i + 1) {
      CHECK_U64((uint64_t)line_seq(l2.l[i]), (uint64_t)i + 1);
      break;
    }
  jw_test_lines_free(&l1);
  jw_test_lines_free(&l2);
  files[0] = p2;
  doc = jw_verify_files(files, 1, &key, why, sizeof(why));
  CHECK(doc != NULL);
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
  if (doc != NULL && strcmp(json_string_value(json_object_get(doc, "verdict")), "intact") != 0) {
    char *dmg = json_dumps(json_object_get(doc, "first_damage"), JSON_COMPACT);
    fprintf(stderr, "first damage: %s\n", dmg ? dmg : "?");
    free(dmg);
  }
  CHECK_INT(json_integer_value(
                json_object_get(json_array_get(json_object_get(doc, "streams"), 0), "lines")),
            total);
  json_decref(doc);
  jw_seal_key_wipe(&key);
  jw__cond_destroy(&h.c);
  jw__mutex_destroy(&h.m);
}

/* ---- group commit -------------------------------------------------------- */

typedef struct {
  jw__mutex_t m;
  jw__cond_t c;
  int flushes;
  uint64_t through;  /* seq covered by the last flush */
  uint64_t delay_us; /* the last flush's end minus its oldest violation's write */
  uint64_t max_delay_us;
  int rc;
} flushes_t;

static void count_flush(void *ctx, const jw_exporter_t *exp, uint64_t through_seq,
                        uint64_t first_unflushed_us, int rc) {
  flushes_t *f = ctx;
  uint64_t now = jw_now_us();
  (void)exp;
  jw__mutex_lock(&f->m);
  f->flushes++;
  f->through = through_seq;
  f->delay_us = now - first_unflushed_us;
  if (f->delay_us > f->max_delay_us)
    f->max_delay_us = f->delay_us;
  f->rc |= rc;
  jw__cond_broadcast(&f->c);
  jw__mutex_unlock(&f->m);
}

/* Violations reach the disk by group commit: a burst of N violations
 * causes far fewer than N flushes, and the last one is flushed without
 * any later event and without the sink being closed — the writer's own
 * deadline (JW_SYNC_BOUND_MS) does it. Lifecycle lines cause no flush. */
static void test_group_commit(const char *dir) {
  enum { N = 3000 };
  jw_run_info_t run;
  jw_emitter_t *em;
  jw_exporter_t *exp;
  jw_error_t err;
  flushes_t f;
  char path[1024], spec[1100];
  int i, timed_out = 0;
  uint64_t deadline;

  memset(&f, 0, sizeof(f));
  jw__mutex_init(&f.m);
  jw__cond_init(&f.c);
  snprintf(path, sizeof(path), "%s/emitter-group-commit.jsonl", dir);
  remove(path);
  CHECK_INT(jw_run_info_init(&run, "commit", JW_TIER_LOCKDOWN), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s", path);
  CHECK_INT(jw_exporter_open(spec, &exp, &err), 0);
  CHECK_INT(jw_emitter_add(em, exp), 0);
  jw__emitter_flush_hook_ctx = &f;
  jw__emitter_flush_hook = count_flush;
  CHECK_INT(jw_emitter_start(em, 100000), 0);

  /* Lifecycle only: written, never flushed. */
  for (i = 0; i < 200; i++)
    emit_kind(em, JW_EVENT_PROCESS_START);
  CHECK_INT(jw_emitter_settle(em, 10000), 0);
  jw__mutex_lock(&f.m);
  CHECK_INT(f.flushes, 0);
  jw__mutex_unlock(&f.m);

  for (i = 0; i < N; i++)
    emit_kind(em, JW_EVENT_VIOLATION);
  /* Wait for the flush that covers the last violation (seq 200 + N). The
   * timeout only keeps a broken build from hanging. */
  deadline = jw_now_us() + 30u * 1000u * 1000u;
  jw__mutex_lock(&f.m);
  while (f.through < 200u + N && !timed_out)
    timed_out = jw__cond_timedwait(&f.c, &f.m, 1000) && jw_now_us() > deadline;
  CHECK_U64(f.through, 200u + N);
  CHECK(f.flushes >= 1);
  CHECK(f.flushes < N / 10);
  CHECK_INT(f.rc, 0);
  printf("group commit: %d violations, %d flushes, last flush %llu us after its oldest "
         "violation was written, longest %llu us (bound %d ms + a batch write + the flush)\n",
         N, f.flushes, (unsigned long long)f.delay_us, (unsigned long long)f.max_delay_us,
         JW_SYNC_BOUND_MS);
  /* Generous: a loaded machine may deschedule the writer, but a flush that
   * waited for a later event or for the close would never come. */
  CHECK(f.max_delay_us < 2u * 1000u * 1000u);
  jw__mutex_unlock(&f.m);
  CHECK_U64(jw_emitter_count(em), 200u + N);
  jw_emitter_free(em);
  jw__emitter_flush_hook = NULL;
  jw__cond_destroy(&f.c);
  jw__mutex_destroy(&f.m);
}

static const char *g_out = ".";

static void test_specs_case(void) {
  test_specs(g_out);
}

static void test_fanout_case(void) {
  test_fanout(g_out);
}

static void test_queue_full_case(void) {
  test_queue_full(g_out);
}

static void test_write_failures_case(void) {
  test_write_failures(g_out);
}

static void test_concurrent_order_case(void) {
  test_concurrent_order(g_out);
}

static void test_group_commit_case(void) {
  test_group_commit(g_out);
}

/* Runnable one by one: `test_emitter DATA OUT --case settle`. */
static const jw_test_case_t cases[] = {
    {"settle", test_settle, 30},
    {"errors", test_errors, 30},
    {"time_source", test_time_source, 30},
    {"specs", test_specs_case, 30},
    {"fanout", test_fanout_case, 30},
    {"queue_full", test_queue_full_case, 30},
    {"write_failures", test_write_failures_case, 30},
    {"drain", test_drain, 30},
    {"concurrent_order", test_concurrent_order_case, 180},
    {"group_commit", test_group_commit_case, 30},
};

int main(int argc, char **argv) {
  g_out = jw_test_arg(argc, argv, 2, ".");
  return jw_test_run_cases("emitter", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

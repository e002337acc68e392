/* wine.real.pipe: the pipe exporters and `jobwarden tail`, on real named
 * pipes under Wine.
 *
 *  1. security: the pipe's owner and DACL read back with GetSecurityInfo
 *     (owner + SYSTEM only); a name already served is refused; SPEC errors.
 *  2. readers: one reader that stops reading (it loses lines and is told
 *     so exactly), one that disconnects mid-stream (the writer side goes
 *     on), one that connects late (joined_late record, then the replay).
 *  3. burst (injected): 5000 limit packets posted in a tight loop, a pipe
 *     reader that takes 1 ms a line: delivered + inside gap records =
 *     posted.
 *  4. cli: jobwarden.exe run with two pipe exporters, two concurrent
 *     `tail --raw` readers, one raw reader that leaves after 3 lines, one
 *     late readable `tail`; `tail` of a missing pipe; a run whose pipe
 *     name is taken.
 *  5. pipe-connect: a collector that drops the connection mid-run and
 *     comes back: every event arrives or is inside a gap record.
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. Every
 * stream a reader got is saved under the events dir, where
 * wine.schema.events validates it (schema, seq order, exact gap records). */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <aclapi.h>
#include <jansson.h>

#include "cli.h"
#include "seal.h"
#include "harness.h"
#include "rig.h"
#include "checks.h"

static char g_events[TW_PATH_CHARS]; /* the events directory (Windows path) */
static char g_jw[TW_PATH_CHARS];     /* jobwarden.exe */
static char g_self[TW_PATH_CHARS];   /* this executable */

/* ------------------------------------------------------------------------ */
/* Pipe clients                                                             */
/* ------------------------------------------------------------------------ */

/* Pipe names unique to this test process: every "jw-" in s becomes
 * "jw<pid>-", so that two suites on one wineserver cannot meet. The result
 * lives in a ring of buffers (enough for every name in use at once). */
static const char *U(const char *s) {
  static char ring[32][1024];
  static unsigned next;
  char *out = ring[next++ % 32u], tag[16];
  size_t o = 0, tl;
  snprintf(tag, sizeof(tag), "jw%lu-", (unsigned long)GetCurrentProcessId());
  tl = strlen(tag);
  while (*s != 0 && o + tl + 1 < sizeof(ring[0])) {
    if (strncmp(s, "jw-", 3) == 0) {
      memcpy(out + o, tag, tl);
      o += tl;
      s += 3;
    } else {
      out[o++] = *s++;
    }
  }
  out[o] = 0;
  return out;
}

static HANDLE client_open(const char *name) {
  char path[300];
  HANDLE h;
  int i;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  for (i = 0; i < 100; i++) {
    h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
      return h;
    WaitNamedPipeA(path, 100);
  }
  return INVALID_HANDLE_VALUE;
}

typedef struct {
  HANDLE h;
  char *buf;
  size_t len, cap;
  int max_lines;   /* stop after this many complete lines (0: to the end) */
  DWORD line_ms;   /* pause after each line (a slow reader) */
  DWORD end_error; /* the error that ended the stream */
  HANDLE thread;
} reader_t;

/* Reads from r->h until the stream ends (or max_lines). Thread or inline. */
static unsigned __stdcall reader_main(void *arg) {
  reader_t *r = arg;
  int lines = 0;
  for (;;) {
    DWORD got = 0, i;
    char chunk[4096];
    DWORD want = r->line_ms ? 512 : sizeof(chunk);
    if (!ReadFile(r->h, chunk, want, &got, NULL) || got == 0) {
      r->end_error = GetLastError();
      break;
    }
    if (r->len + got + 1 > r->cap) {
      size_t cap = (r->cap + got + 1) * 2;
      char *p = realloc(r->buf, cap);
      if (p == NULL)
        break;
      r->buf = p;
      r->cap = cap;
    }
    for (i = 0; i < got; i++) {
      r->buf[r->len++] = chunk[i];
      if (chunk[i] == '\n') {
        lines++;
        if (r->line_ms)
          Sleep(r->line_ms);
        if (r->max_lines && lines == r->max_lines)
          goto done;
      }
    }
  }
done:
  if (r->buf != NULL)
    r->buf[r->len] = '\0';
  return 0;
}

static void reader_start(reader_t *r) {
  r->thread = (HANDLE)_beginthreadex(NULL, 0, reader_main, r, 0, NULL);
  CHECK(r->thread != NULL);
}

static void reader_join(reader_t *r) {
  if (r->thread != NULL) {
    CHECK(WaitForSingleObject(r->thread, 60000) == WAIT_OBJECT_0);
    CloseHandle(r->thread);
    r->thread = NULL;
  }
  if (r->h != INVALID_HANDLE_VALUE && r->h != NULL)
    CloseHandle(r->h);
  r->h = NULL;
}

/* Saves a stream under the events dir (validated by wine.schema.events). */
static void save(const char *name, const char *buf, size_t len) {
  char path[TW_PATH_CHARS];
  FILE *f;
  snprintf(path, sizeof(path), "%s\\wine-pipe-%s.jsonl", g_events, name);
  f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fwrite(buf, 1, len, f);
    fclose(f);
  }
}

/* Parses JSON Lines; NULL when a line is not an object or the last line is
 * not terminated (torn). */
static json_t *parse_lines(const char *buf, size_t len) {
  json_t *arr = json_array();
  size_t off = 0;
  while (off < len) {
    const char *nl = memchr(buf + off, '\n', len - off);
    json_t *ev;
    if (nl == NULL) {
      fprintf(stderr, "torn last line: %.80s\n", buf + off);
      json_decref(arr);
      return NULL;
    }
    ev = json_loadb(buf + off, (size_t)(nl - buf - off), 0, NULL);
    if (!json_is_object(ev)) {
      fprintf(stderr, "not a JSON object: %.80s\n", buf + off);
      json_decref(ev);
      json_decref(arr);
      return NULL;
    }
    json_array_append_new(arr, ev);
    off = (size_t)(nl - buf) + 1;
  }
  return arr;
}

typedef struct {
  long long lines, gaps, gap_events; /* lines that are events, gap records, seqs inside them */
  long long last;                    /* highest seq accounted for */
  int exact;                         /* every seq 1..last exactly once */
} account_t;

/* Walks a reader's stream: each seq from 1 on must come exactly once, as an
 * event line or inside a gap record (from_seq = the next seq, seq =
 * to_seq, count = to - from + 1) of this `reader` (0: any) with `reason`
 * (NULL: any). Duplicates are allowed only when `dups` (at-least-once). */
/* A record of lines a sink lost (not the monitor's port_message_lost
 * record, which is an ordinary line of every stream). */
static int is_sink_gap(json_t *ev) {
  const char *name = tw_str(ev, "event"), *reason = tw_str(ev, "gap.reason");
  return name != NULL && strcmp(name, "sandbox.telemetry_gap") == 0 &&
         (reason == NULL || strcmp(reason, "port_message_lost") != 0);
}

static size_t count_sink_gaps(json_t *evs) {
  size_t i, n = 0;
  json_t *ev;
  json_array_foreach(evs, i, ev) n += is_sink_gap(ev);
  return n;
}

static account_t account(json_t *evs, long long reader, const char *reason, int dups) {
  account_t a = {0, 0, 0, 0, 1};
  size_t i;
  json_t *ev;
  json_array_foreach(evs, i, ev) {
    long long seq = tw_int(ev, "seq");
    const char *name = tw_str(ev, "event");
    if (dups && seq <= a.last)
      continue; /* a repeated line */
    if (name != NULL && is_sink_gap(ev) && (reader == 0 || tw_int(ev, "gap.reader") == reader) &&
        (reason == NULL || strcmp(tw_str(ev, "gap.reason"), reason) == 0)) {
      long long from = tw_int(ev, "gap.from_seq"), to = tw_int(ev, "gap.to_seq");
      if (from != a.last + 1 || to != seq || tw_int(ev, "gap.count") != to - from + 1) {
        fprintf(stderr, "gap record %lld..%lld (count %lld) after seq %lld is not exact\n", from,
                to, tw_int(ev, "gap.count"), a.last);
        a.exact = 0;
      }
      a.gaps++;
      a.gap_events += to - from + 1;
      a.last = to;
      continue;
    }
    if (seq != a.last + 1) {
      fprintf(stderr, "seq %lld follows %lld\n", seq, a.last);
      a.exact = 0;
    }
    a.lines++;
    a.last = seq;
  }
  return a;
}

/* The line of `file` (JSON Lines text) whose seq is `seq`, as text. */
static int same_line_in_file(const char *file, json_t *ev) {
  char *mine = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
  char key[64];
  const char *p;
  int same = 0;
  snprintf(key, sizeof(key), "\"seq\":%lld,", tw_int(ev, "seq"));
  p = strstr(file, key);
  if (mine != NULL && p != NULL) {
    const char *start = p, *end = strchr(p, '\n');
    while (start > file && start[-1] != '\n')
      start--;
    same = end != NULL && (size_t)(end - start) == strlen(mine) &&
           memcmp(start, mine, strlen(mine)) == 0;
  }
  free(mine);
  return same;
}

/* Waits until the pipe exporter has seen `connected` readers, `gone` of
 * them left, and it took every line up to `seq` (the emitter hands lines
 * over on its own thread). */
static void wait_pipe_state(jw_exporter_t *exp, uint64_t connected, uint64_t gone, uint64_t seq) {
  uint64_t c = 0, g = 0, last = 0;
  uint32_t e = 0;
  int i;
  for (i = 0; i < 1000; i++) {
    CHECK_INT(jw__pipe_reader_stats(exp, &c, &g, &e, &last), 0);
    if (c >= connected && g >= gone && last >= seq)
      return;
    Sleep(10);
  }
  fprintf(stderr, "pipe: %llu connected, %llu gone, seq %llu; wanted %llu, %llu, %llu\n",
          (unsigned long long)c, (unsigned long long)g, (unsigned long long)last,
          (unsigned long long)connected, (unsigned long long)gone, (unsigned long long)seq);
  CHECK(0);
}

/* The sink's first reader: connected, and served before anything is
 * emitted. */
static HANDLE first_reader(jw_exporter_t *pipe, const char *name) {
  HANDLE h = client_open(name);
  CHECK(h != INVALID_HANDLE_VALUE);
  wait_pipe_state(pipe, 1, 0, 0);
  return h;
}

static void emit_n(jw_emitter_t *em, int n, jw_event_kind_t kind, size_t msg_len, DWORD gap_ms) {
  int i;
  for (i = 0; i < n; i++) {
    if (gap_ms)
      Sleep(gap_ms);
    jw_event_t ev;
    jw_event_init(&ev, kind, kind == JW_EVENT_VIOLATION ? "active_processes" : "child_process",
                  kind == JW_EVENT_VIOLATION ? "blocked" : "observed", "kernel", "port",
                  kind == JW_EVENT_VIOLATION ? JW_SEV_HIGH : JW_SEV_INFO);
    if (kind == JW_EVENT_PROCESS_START) {
      ev.has_process = 1;
      ev.process.pid = (uint32_t)(1000 + i);
      ev.process.image = "C:\\agent\\tool.exe";
    }
    memset(ev.message, 'm', msg_len);
    ev.message[msg_len] = '\0';
    CHECK_INT(jw_emit(em, &ev), 0);
  }
}

/* ------------------------------------------------------------------------ */
/* 1. security                                                              */
/* ------------------------------------------------------------------------ */

static void case_security(void) {
  jw_exporter_t *exp = NULL, *second = NULL;
  jw_error_t err;
  HANDLE h;
  static const struct {
    const char *spec, *text;
  } bad[] = {
      {"pipe:", "--export pipe:: expected a pipe NAME"},
      {"pipe:a/b", "--export pipe:a/b: pipe NAME must not contain '\\', '/' or control characters "
                   "(byte 1 is 0x2f)"},
      {"pipe:a,replay=x",
       "--export pipe:a,replay=x: replay: expected a number of lines from 0 to 65536, got \"x\""},
      {"pipe:a,buffer=8", "--export pipe:a,buffer=8: buffer: expected a number of lines from 16 to "
                          "1048576, got \"8\""},
      {"pipe:a,replay=1,replay=2", "--export pipe:a,replay=1,replay=2: replay: given twice"},
      {"pipe:a,keep=1", "--export pipe:a,keep=1: unknown option 'keep' (expected replay=N, "
                        "buffer=N, max_readers=N, format=native|ecs|ocsf)"},
      {"pipe-connect:a,b", "--export pipe-connect:a,b: a pipe NAME has no ','"},
      {"pipe-connect:a,spool_max=1K", "--export pipe-connect:a,spool_max=1K: spool_max: expected "
                                      "a size like \"64M\", at least 64K, got \"1K\""},
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&err, 0, sizeof(err));
    CHECK_INT(jw_exporter_open(bad[i].spec, &second, &err), JW_EUSAGE);
    CHECK_STR(err.text, bad[i].text);
    memset(&err, 0, sizeof(err));
    CHECK_INT(jw_exporter_check(bad[i].spec, "exporters[2]", &err), JW_EUSAGE);
    CHECK(strncmp(err.text, "exporters[2]", 12) == 0);
  }

  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(U("pipe:jw-test-sec"), &exp, &err), 0);
  if (exp == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return;
  }
  /* A second exporter (a second run) on the same name is refused. */
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(U("pipe:jw-test-sec,replay=0"), &second, &err), JW_EUSAGE);
  CHECK_STR(err.text,
            U("--export pipe:jw-test-sec,replay=0: \\\\.\\pipe\\jw-test-sec already exists "
              "(another jobwarden run or another program serves it); choose another NAME"));

  h = client_open(U("jw-test-sec"));
  CHECK(h != INVALID_HANDLE_VALUE);
  tw_check_private_dacl(h);
  CloseHandle(h);
  jw_exporter_close(exp);
  /* Once the run is over the name is free again. */
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(U("pipe:jw-test-sec"), &exp, &err), 0);
  jw_exporter_close(exp);
}

/* ------------------------------------------------------------------------ */
/* 2. readers                                                               */
/* ------------------------------------------------------------------------ */

static void case_readers(void) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *pipe = NULL, *file = NULL;
  jw_error_t err;
  char path[TW_PATH_CHARS], spec[TW_PATH_CHARS + 16];
  reader_t r1, r2, r3;
  json_t *s1, *s2, *s3, *ev;
  account_t a;
  uint64_t c = 0, g = 0, last = 0;
  jw__pipe_wstats_t ws = {0, 0, 0, 0};
  uint32_t e = 0;
  char *file_text;
  size_t file_len, i;

  memset(&r1, 0, sizeof(r1));
  memset(&r2, 0, sizeof(r2));
  memset(&r3, 0, sizeof(r3));
  snprintf(path, sizeof(path), "%s\\wine-pipe-readers-file.jsonl", g_events);
  DeleteFileA(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_run_info_init(&run, "pipe-readers", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_exporter_open(U("pipe:jw-test-rd,replay=3,buffer=16"), &pipe, &err), 0);
  CHECK_INT(jw_exporter_open(spec, &file, &err), 0);
  if (pipe == NULL || file == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return;
  }
  CHECK_INT(jw_emitter_add(em, pipe), 0);
  CHECK_INT(jw_emitter_add(em, file), 0);
  CHECK_INT(jw_emitter_start(em, 4096), 0);

  /* Reader 1 connects first and does not read for now. */
  r1.h = first_reader(pipe, U("jw-test-rd"));
  emit_n(em, 10, JW_EVENT_PROCESS_START, 300, 0);
  wait_pipe_state(pipe, 1, 0, 10);

  /* Reader 2 joins late (replay 3: seq 8..10), reads two lines, leaves. */
  r2.h = client_open(U("jw-test-rd"));
  CHECK(r2.h != INVALID_HANDLE_VALUE);
  wait_pipe_state(pipe, 2, 0, 10);
  r2.max_lines = 2;
  reader_main(&r2);
  CloseHandle(r2.h);
  r2.h = NULL;
  emit_n(em, 1, JW_EVENT_PROCESS_START, 300, 0); /* seq 11: for a reader that left */
  wait_pipe_state(pipe, 2, 1, 11);
  CHECK_INT(jw__pipe_reader_stats(pipe, &c, &g, &e, &last), 0);
  printf("reader 2 left: noticed by Win32 error %lu\n", (unsigned long)e);
  CHECK(e == ERROR_NO_DATA || e == ERROR_BROKEN_PIPE); /* 232 on write, 109 on its read */

  /* 289 large lines: reader 1 (not reading) overflows pipe buffer + queue. */
  emit_n(em, 289, JW_EVENT_PROCESS_START, 450, 0);
  wait_pipe_state(pipe, 2, 1, 300);

  /* Reader 3 joins after seq 300: joined_late 1..297, then 298..300. */
  r3.h = client_open(U("jw-test-rd"));
  CHECK(r3.h != INVALID_HANDLE_VALUE);
  wait_pipe_state(pipe, 3, 1, 300);
  reader_start(&r3);
  /* paced, so that reader 3, which reads, never has 16 lines queued */
  emit_n(em, 20, JW_EVENT_PROCESS_START, 100, 5);
  emit_n(em, 1, JW_EVENT_VIOLATION, 100, 5); /* seq 321 */
  Sleep(200);
  /* Lines to a reader with nothing queued went straight to its pipe from
   * the sink's writer; reader 1's, once its pipe was full, did not
   * complete and were handed to its thread (the writer never waited). */
  CHECK_INT(jw__pipe_write_stats(pipe, &ws), 0);
  printf("direct writes %llu, handed to a reader's thread %llu\n", (unsigned long long)ws.direct,
         (unsigned long long)ws.handed);
  CHECK(ws.direct >= 10);
  CHECK(ws.handed >= 1);
  reader_start(&r1);   /* reader 1 reads again */
  jw_emitter_free(em); /* the run ends: readers get the rest, then EOF */
  reader_join(&r1);
  reader_join(&r3);
  CHECK_INT(r1.end_error, ERROR_BROKEN_PIPE);
  CHECK_INT(r3.end_error, ERROR_BROKEN_PIPE);

  file_text = tw_read_file(path, &file_len);
  CHECK(file_text != NULL);
  if (file_text == NULL)
    return;
  s1 = parse_lines(r1.buf ? r1.buf : "", r1.len);
  s2 = parse_lines(r2.buf ? r2.buf : "", r2.len);
  s3 = parse_lines(r3.buf ? r3.buf : "", r3.len);
  CHECK(s1 != NULL && s2 != NULL && s3 != NULL);
  if (s1 == NULL || s2 == NULL || s3 == NULL)
    goto out;
  save("reader1", r1.buf, r1.len);
  save("reader2", r2.buf, r2.len);
  save("reader3", r3.buf, r3.len);

  /* Reader 1: everything up to 321, its losses in exact reader_slow records. */
  a = account(s1, 1, "reader_slow", 0);
  printf("reader 1: %lld lines, %lld gap record(s) covering %lld events\n", a.lines, a.gaps,
         a.gap_events);
  CHECK(a.exact);
  CHECK_INT(a.last, 321);
  CHECK(a.gaps >= 1);
  CHECK(a.gap_events >= 1);
  CHECK_INT(a.lines + a.gap_events, 321);
  CHECK_INT(tw_int(json_array_get(s1, 0), "seq"), 1);
  ev = json_array_get(s1, json_array_size(s1) - 1);
  CHECK_STR(tw_str(ev, "event"), "sandbox.violation");
  CHECK_INT(tw_int(ev, "seq"), 321);
  json_array_foreach(s1, i, ev) {
    if (is_sink_gap(ev)) {
      CHECK_STR(tw_str(ev, "severity"), "high");
      CHECK_STR(tw_str(ev, "gap.sink"), U("pipe:jw-test-rd,replay=3,buffer=16"));
    } else {
      CHECK(same_line_in_file(file_text, ev));
    }
  }

  /* Reader 2: joined_late 1..7, then seq 8; nothing else. */
  CHECK_INT(json_array_size(s2), 2);
  ev = json_array_get(s2, 0);
  CHECK_STR(tw_str(ev, "event"), "sandbox.telemetry_gap");
  CHECK_STR(tw_str(ev, "gap.reason"), "joined_late");
  CHECK_STR(tw_str(ev, "severity"), "info");
  CHECK_INT(tw_int(ev, "gap.from_seq"), 1);
  CHECK_INT(tw_int(ev, "gap.to_seq"), 7);
  CHECK_INT(tw_int(ev, "gap.count"), 7);
  CHECK_INT(tw_int(ev, "gap.reader"), 2);
  CHECK_INT(tw_int(ev, "seq"), 7);
  CHECK_STR(tw_str(ev, "message"),
            "7 event(s), seq 1 to 7, did not reach this reader (joined_late)");
  CHECK_INT(tw_int(json_array_get(s2, 1), "seq"), 8);
  CHECK(same_line_in_file(file_text, json_array_get(s2, 1)));

  /* Reader 3: joined_late 1..297, then every line 298..321. */
  a = account(s3, 3, NULL, 0);
  CHECK(a.exact);
  CHECK_INT(a.last, 321);
  CHECK_INT(a.gaps, 1);
  CHECK_INT(a.lines, 24);
  ev = json_array_get(s3, 0);
  CHECK_STR(tw_str(ev, "gap.reason"), "joined_late");
  CHECK_INT(tw_int(ev, "gap.from_seq"), 1);
  CHECK_INT(tw_int(ev, "gap.to_seq"), 297);
  json_array_foreach(s3, i, ev) {
    if (i > 0)
      CHECK(same_line_in_file(file_text, ev));
  }
out:
  json_decref(s1);
  json_decref(s2);
  json_decref(s3);
  free(file_text);
  free(r1.buf);
  free(r2.buf);
  free(r3.buf);
}

/* ------------------------------------------------------------------------ */
/* 3. burst (injected)                                                      */
/* ------------------------------------------------------------------------ */

#define BURST 5000

static void case_burst(void) {
  rig_t r;
  jw_policy_t p;
  const char *args[] = {"sleep", "600000"};
  reader_t rd;
  json_t *file_evs, *evs, *ev;
  account_t a;
  long long delivered = 0, in_gaps = 0, posted_in_file = 0;
  char *is_violation;
  size_t i;
  int k;

  memset(&rd, 0, sizeof(rd));
  jw_policy_init(&p);
  jw_policy_set(&p, "active_processes", "4", "test", NULL);
  /* The burst is 5000 identical hits: every one must reach the pipe. */
  jw_policy_set(&p, "coalesce_window", "off", "test", NULL);
  CHECK_INT(
      rig_start_ex(&r, g_events, "pipe-burst", &p, args, 2, U("pipe:jw-test-burst,buffer=64")), 0);
  rd.h = client_open(U("jw-test-burst"));
  CHECK(rd.h != INVALID_HANDLE_VALUE);
  wait_pipe_state(r.extra, 1, 0, 0);
  rd.line_ms = 1; /* a deliberately slow reader */
  reader_start(&rd);
  for (k = 0; k < BURST; k++)
    CHECK(PostQueuedCompletionStatus(r.job.port, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT, r.job.key_job,
                                     NULL));
  CHECK(TerminateJobObject(r.job.job, 1));
  file_evs = rig_finish(&r);
  reader_join(&rd);
  CHECK(file_evs != NULL);
  evs = parse_lines(rd.buf ? rd.buf : "", rd.len);
  CHECK(evs != NULL);
  if (file_evs == NULL || evs == NULL) {
    json_decref(file_evs);
    free(rd.buf);
    return;
  }
  save("burst-reader", rd.buf, rd.len);
  /* Which seqs were the posted packets (from the file, which got all). */
  CHECK_INT(count_sink_gaps(file_evs), 0);
  is_violation = calloc(json_array_size(file_evs) + 2, 1);
  json_array_foreach(file_evs, i, ev) {
    long long seq = tw_int(ev, "seq");
    if (strcmp(tw_str(ev, "event"), "sandbox.violation") == 0 &&
        strcmp(tw_str(ev, "rule"), "active_processes") == 0 && seq > 0 &&
        (size_t)seq <= json_array_size(file_evs)) {
      is_violation[seq] = 1;
      posted_in_file++;
    }
  }
  CHECK_INT(posted_in_file, BURST);
  /* losses of the reader (reader_slow) and of the pipe sink as a whole
   * (queue_full) alike are in exact records */
  a = account(evs, 0, NULL, 0);
  CHECK(a.exact);
  CHECK_INT(a.last, (long long)json_array_size(file_evs));
  json_array_foreach(evs, i, ev) {
    long long seq = tw_int(ev, "seq");
    if (is_sink_gap(ev)) {
      long long s;
      for (s = tw_int(ev, "gap.from_seq"); s <= seq; s++)
        in_gaps += is_violation[s];
    } else if (is_violation[seq]) {
      delivered++;
    }
  }
  printf("burst: %d posted; slow reader: %lld delivered + %lld in %lld gap record(s) = %lld\n",
         BURST, delivered, in_gaps, a.gaps, delivered + in_gaps);
  CHECK_INT(delivered + in_gaps, BURST);
  CHECK(a.gaps >= 1); /* the reader was slow enough to lose some */
  free(is_violation);
  json_decref(evs);
  json_decref(file_evs);
  free(rd.buf);
}

/* ------------------------------------------------------------------------ */
/* 4. jobwarden.exe + tail                                                  */
/* ------------------------------------------------------------------------ */

/* Starts `jobwarden <args>` with stdout / stderr to wine-pipe-<tag>.*;
 * tw_jw_wait kills it with 99 after 60 s. */
static void proc_start(tw_run_t *p, const char *tag, const char *args) {
  tw_jw_start(&(tw_run_opts_t){.tag = tag, .args = args, .kill_code = 99}, p);
  CHECK(p->started);
}

/* Number of complete lines in a file, 0 when unreadable. */
static size_t file_lines(const char *path) {
  size_t len = 0, n = 0, i;
  char *s = tw_read_file(path, &len);
  for (i = 0; s != NULL && i < len; i++)
    n += s[i] == '\n';
  free(s);
  return n;
}

static void case_cli(void) {
  char file[TW_PATH_CHARS], args[TW_CMD_CHARS];
  tw_run_t run, t1, t2, t3, none, taken;
  reader_t quitter;
  char *file_text;
  size_t file_len, n, i;
  json_t *evs, *late;
  HANDLE squat;

  /* the sandboxed program: 8 children, 150 ms apart */
  snprintf(file, sizeof(file), "%s\\wine-pipe-cli.jsonl", g_events);
  DeleteFileA(file);
  snprintf(args, sizeof(args),
           "run --name pipe-cli --export file:%s --export pipe:%s --export "
           "pipe:%s,replay=3 -- \"%s\" --helper series 8 150",
           file, U("jw-cli-a"), U("jw-cli-b"), g_self);
  proc_start(&run, "cli-run", args);
  CHECK_INT(tw_wait_pipe(U("jw-cli-b"), 10000, 10), 0);
  proc_start(&t1, "cli-tail1", U("tail --raw jw-cli-a"));
  proc_start(&t2, "cli-tail2", U("tail --raw \\\\.\\pipe\\jw-cli-a"));
  memset(&quitter, 0, sizeof(quitter));
  quitter.h = client_open(U("jw-cli-a"));
  CHECK(quitter.h != INVALID_HANDLE_VALUE);
  quitter.max_lines = 3;
  reader_main(&quitter); /* three lines, then it leaves mid-stream */
  CloseHandle(quitter.h);
  for (i = 0; i < 500 && file_lines(file) < 8; i++)
    Sleep(10);
  proc_start(&t3, "cli-tail3", U("tail jw-cli-b")); /* late, readable */
  tw_jw_wait(&run);
  tw_jw_wait(&t1);
  tw_jw_wait(&t2);
  tw_jw_wait(&t3);
  CHECK_INT(run.exit_code, 0);
  CHECK_STR(run.err, "");
  file_text = tw_read_file(file, &file_len);
  CHECK(file_text != NULL);
  if (file_text == NULL)
    goto out;
  evs = parse_lines(file_text, file_len);
  CHECK(evs != NULL);
  n = 0;
  {
    /* Identity updates come or not depending on the identity cache (the
     * root and its 8 children share one image): at most one per process. */
    size_t k, updates = 0;
    json_t *ev;
    json_array_foreach(evs, k, ev) {
      if (strcmp(tw_str(ev, "event") ? tw_str(ev, "event") : "", "sandbox.process_update") == 0)
        updates++;
      else
        n++;
    }
    CHECK(updates >= 1 && updates <= 9);
  }
  CHECK_INT(n, 2 + 16 + 2); /* job_start, root start, 8 x (start, exit), root exit, job_end */
  /* the two tails got the file's exact bytes, and ended with the run (each
   * reader's own seal chain aside: the kit seals the run) */
  CHECK_INT(t1.exit_code, 0);
  CHECK_INT(t2.exit_code, 0);
  CHECK_STR(t1.err, "");
  file_len = tw_unseal(file_text, file_len);
  t1.out_len = tw_unseal(t1.out, t1.out_len);
  t2.out_len = tw_unseal(t2.out, t2.out_len);
  quitter.len = tw_unseal(quitter.buf, quitter.len);
  CHECK(t1.out_len == file_len && memcmp(t1.out, file_text, file_len) == 0);
  CHECK(t2.out_len == file_len && memcmp(t2.out, file_text, file_len) == 0);
  /* the reader that left got the first three lines */
  CHECK(quitter.len > 0 && strncmp(quitter.buf, file_text, quitter.len) == 0);
  CHECK_INT(quitter.len,
            (size_t)(strchr(strchr(strchr(file_text, '\n') + 1, '\n') + 1, '\n') - file_text + 1));
  /* the late readable tail: a joined_late line first, then the file's
   * events from where its replay started, formatted one per line */
  CHECK_INT(t3.exit_code, 0);
  late = json_array();
  {
    const char *p = t3.out, *nl = strchr(p, '\n');
    long long first = 0;
    char expect[160];
    CHECK(nl != NULL);
    if (nl != NULL && sscanf(strstr(p, "seq 1 to ") ? strstr(p, "seq 1 to ") : "", "seq 1 to %lld",
                             &first) == 1) {
      snprintf(expect, sizeof(expect),
               "%lld event(s), seq 1 to %lld, did not reach this reader (joined_late)\n", first,
               first);
      CHECK(strstr(p, " info     telemetry_gap          pid=-      -  ") != NULL);
      CHECK(strncmp(nl - strlen(expect) + 1, expect, strlen(expect)) == 0);
      CHECK(first >= 8 - 3); /* it joined after 8 lines, replay 3 */
      /* the rest equals the formatter's rendering of file lines first+1.. */
      {
        const char *fp = file_text, *tp = nl + 1;
        long long seq = 0;
        char line[2048];
        while (*fp != '\0') {
          const char *fe = strchr(fp, '\n');
          seq++;
          if (fe == NULL)
            break;
          if (seq > first) {
            jw_tail_format(fp, (size_t)(fe - fp + 1), line, sizeof(line));
            if (strncmp(tp, line, strlen(line)) != 0) {
              fprintf(stderr, "tail line for seq %lld differs:\n%s%.*s", seq, line,
                      (int)strcspn(tp, "\n") + 1, tp);
              CHECK(0);
              break;
            }
            tp += strlen(line);
          }
          fp = fe + 1;
        }
        CHECK(*tp == '\0');
      }
    } else {
      fprintf(stderr, "late tail output:\n%s\n", t3.out);
      CHECK(0);
    }
  }
  json_decref(late);
  json_decref(evs);
  free(file_text);

  /* tail of a pipe nobody serves: 3 and a clear message */
  proc_start(&none, "cli-nosuch", U("tail jw-cli-nosuch"));
  tw_jw_wait(&none);
  CHECK_INT(none.exit_code, JW_EXIT_TAIL_NO_PIPE);
  {
    const char *want = U("jobwarden: tail: \\\\.\\pipe\\jw-cli-nosuch: no such pipe (is "
                         "'jobwarden run --export pipe:NAME' running?) (error 2: ");
    CHECK(strncmp(none.err, want, strlen(want)) == 0);
  }

  /* a run whose pipe name another program serves: 125, nothing started */
  squat = CreateNamedPipeA(U("\\\\.\\pipe\\jw-cli-taken"), PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE,
                           PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, NULL);
  CHECK(squat != INVALID_HANDLE_VALUE);
  snprintf(args, sizeof(args), "run --export pipe:%s -- \"%s\" --helper exit 7", U("jw-cli-taken"),
           g_self);
  proc_start(&taken, "cli-taken", args);
  tw_jw_wait(&taken);
  CHECK_INT(taken.exit_code, 125);
  CHECK_STR(taken.err, U("jobwarden: --export pipe:jw-cli-taken: \\\\.\\pipe\\jw-cli-taken already "
                         "exists (another jobwarden run or another program serves it); choose "
                         "another NAME\n"));
  CloseHandle(squat);
  tw_jw_free(&none);
  tw_jw_free(&taken);
out:
  free(quitter.buf);
  tw_jw_free(&run);
  tw_jw_free(&t1);
  tw_jw_free(&t2);
  tw_jw_free(&t3);
}

/* ------------------------------------------------------------------------ */
/* 5. pipe-connect                                                          */
/* ------------------------------------------------------------------------ */

/* Serves one connection on a new instance; returns what it read. */
/* A collector: serves the pipe NAME, takes one connection and reads it.
 * `ready` (may be NULL): a marker file created once the pipe exists, for a
 * helper that waits for the collector to be there (series-sync). */
static void collect(const char *name, reader_t *r, const char *ready) {
  char path[300];
  HANDLE h;
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  h = CreateNamedPipeA(path, PIPE_ACCESS_INBOUND, PIPE_TYPE_BYTE | PIPE_WAIT, 1, 4096, 65536, 0,
                       NULL);
  CHECK(h != INVALID_HANDLE_VALUE);
  if (h == INVALID_HANDLE_VALUE)
    return;
  if (ready != NULL) {
    FILE *f = fopen(ready, "wb");
    CHECK(f != NULL);
    if (f != NULL)
      fclose(f);
  }
  if (!ConnectNamedPipe(h, NULL))
    CHECK_INT(GetLastError(), ERROR_PIPE_CONNECTED);
  r->h = h;
  reader_main(r);
  CloseHandle(h); /* the collector goes away (or the run ended) */
  r->h = NULL;
}

static void case_connect(void) {
  char file[TW_PATH_CHARS], args[TW_CMD_CHARS], sync[TW_PATH_CHARS], go[TW_PATH_CHARS + 8];
  tw_run_t run;
  reader_t c1, c2;
  char *all, *file_text;
  size_t file_len;
  json_t *evs, *file_evs;
  account_t a;

  snprintf(file, sizeof(file), "%s\\wine-pipe-connect.jsonl", g_events);
  DeleteFileA(file);
  /* The program runs its children in two phases and waits between them
   * until the collector is back (its pipe exists), so the run cannot end
   * while the collector is away, however slow the machine. */
  snprintf(sync, sizeof(sync), "%s\\pipe-connect-sync", g_events);
  snprintf(go, sizeof(go), "%s\\go-1", sync);
  CreateDirectoryA(sync, NULL);
  DeleteFileA(go);
  snprintf(args, sizeof(args),
           "run --name pipe-connect --export file:%s --export "
           "pipe-connect:%s,spool=%s\\spool,retry_max=200ms -- "
           "\"%s\" --helper series-sync \"%s\" 5 2",
           file, U("jw-collector"), sync, g_self, sync);
  memset(&c1, 0, sizeof(c1));
  memset(&c2, 0, sizeof(c2));
  proc_start(&run, "connect-run", args);
  c1.max_lines = 5;
  collect(U("jw-collector"), &c1, NULL); /* 5 lines, then the collector drops out */
  collect(U("jw-collector"), &c2, go);   /* ... and comes back */
  tw_jw_wait(&run);
  CHECK_INT(run.exit_code, 0);
  /* Nothing lost, nothing failed (the collector may be back before the
   * sender notices it was gone: then there is no outage to report). */
  CHECK(strstr(run.err, "lost") == NULL && strstr(run.err, "failed") == NULL);
  if (run.err[0] != '\0')
    CHECK_CONTAINS(run.err, "' delivers again after ");
  /* A collector discards an incomplete last line of a broken connection. */
  while (c1.len > 0 && c1.buf[c1.len - 1] != '\n')
    c1.len--;
  all = malloc(c1.len + c2.len + 1);
  memcpy(all, c1.buf ? c1.buf : "", c1.len);
  memcpy(all + c1.len, c2.buf ? c2.buf : "", c2.len);
  all[c1.len + c2.len] = '\0';
  evs = parse_lines(all, c1.len + c2.len);
  if (evs != NULL) {
    /* saved as a collector keeps it: deduplicated on seq (at-least-once) */
    json_t *kept = json_array(), *ev;
    long long last = 0, repeated = 0;
    size_t i;
    char *text = calloc(1, c1.len + c2.len + 1), *p = text;
    json_array_foreach(evs, i, ev) {
      char *line;
      if (tw_int(ev, "seq") <= last) {
        repeated++;
        continue;
      }
      last = tw_int(ev, "seq");
      line = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
      if (line != NULL && text != NULL) {
        p += sprintf(p, "%s\n", line);
      }
      free(line);
      json_array_append(kept, ev);
    }
    printf("collector: %lld line(s) repeated after the reconnection\n", repeated);
    CHECK(repeated <= 16); /* at most the resent lines */
    if (text != NULL)
      save("collector", text, (size_t)(p - text));
    free(text);
    json_decref(kept);
  }
  file_text = tw_read_file(file, &file_len);
  file_evs = file_text ? parse_lines(file_text, file_len) : NULL;
  CHECK(evs != NULL && file_evs != NULL);
  if (evs != NULL && file_evs != NULL) {
    a = account(evs, 0, NULL, 1);
    printf("collector: %lld lines (%lld before the break), %lld gap record(s) covering %lld\n",
           a.lines, (long long)c1.max_lines, a.gaps, a.gap_events);
    CHECK(a.exact);
    CHECK_INT(a.last, (long long)json_array_size(file_evs));
    /* The spool held what the collector missed: every line, no gap. */
    CHECK_INT(a.gaps, 0);
    CHECK_INT(a.lines, (long long)json_array_size(file_evs));
    CHECK_STR(tw_str(json_array_get(evs, json_array_size(evs) - 1), "event"), "sandbox.job_end");
  }
  json_decref(evs);
  json_decref(file_evs);
  free(file_text);
  free(all);
  free(c1.buf);
  free(c2.buf);
  tw_jw_free(&run);
}

/* ------------------------------------------------------------------------ */
/* 6. a sealed reader's stream through both write paths (injected)          */
/* ------------------------------------------------------------------------ */

static unsigned __stdcall free_emitter(void *arg) {
  jw_emitter_free(arg);
  return 0;
}

/* The sink's writer writes a line to an idle reader's pipe itself; when the
 * pipe is full, the write is handed to the reader's thread. Here the run
 * ends with that write still pending: the system cancels a write when the
 * thread that made it ends (the sink's writer), and the reader's thread
 * writes the rest. A sealed run: the reader's chain must come out whole,
 * every line once, in order. Fails without the resume (the stream ends at
 * the cancelled write). */
static void case_sealed_direct(void) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *pipe = NULL;
  jw_error_t err;
  jw_seal_key_t key;
  char key_path[TW_PATH_CHARS], out_path[TW_PATH_CHARS], args[TW_CMD_CHARS];
  reader_t r1;
  jw__pipe_wstats_t ws = {0, 0, 0, 0};
  account_t a;
  json_t *s1;
  tw_run_t v;
  HANDLE ender;
  FILE *f;
  int i;

  memset(&r1, 0, sizeof(r1));
  memset(&err, 0, sizeof(err));
  snprintf(key_path, sizeof(key_path), "%s\\wine-pipe-sealed.key", g_events);
  snprintf(out_path, sizeof(out_path), "%s\\wine-pipe-sealed.jsonl.txt", g_events);
  DeleteFileA(key_path);
  CHECK_INT(jw_seal_key_generate(&key), 0);
  CHECK_INT(jw_seal_key_write(key_path, &key, &err), 0);
  CHECK_INT(jw_run_info_init(&run, "pipe-sealed", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_exporter_open(U("pipe:jw-test-sealed,buffer=4096"), &pipe, &err), 0);
  if (pipe == NULL) {
    fprintf(stderr, "%s\n", err.text);
    return;
  }
  CHECK_INT(jw_seal_new(&key, run.run_id, "0", &pipe->seal), 0);
  CHECK_INT(jw_emitter_add(em, pipe), 0);
  CHECK_INT(jw_emitter_start(em, 4096), 0);
  r1.h = first_reader(pipe, U("jw-test-sealed"));
  /* Not read yet: the first write goes straight to the pipe and does not
   * fit. */
  emit_n(em, 300, JW_EVENT_PROCESS_START, 450, 0);
  emit_n(em, 1, JW_EVENT_JOB_END, 10, 0);
  wait_pipe_state(pipe, 1, 0, 301);
  /* The end begins in a thread of its own: the writer ends, then the sink
   * closes (and waits for the reader, which reads only from then on). */
  ender = (HANDLE)_beginthreadex(NULL, 0, free_emitter, em, 0, NULL);
  CHECK(ender != NULL);
  for (i = 0; i < 10000 && jw__pipe_write_stats(pipe, &ws) == 0 && !ws.closing; i++)
    Sleep(1);
  /* The cancelled write is taken up by the reader's thread (within 2 s:
   * the end gives up a reader that makes no progress for 3 s). */
  for (i = 0; i < 2000 && ws.closing && ws.resumed == 0; i++) {
    Sleep(1);
    jw__pipe_write_stats(pipe, &ws);
  }
  printf("at the end: direct writes %llu, handed %llu, resumed %llu\n",
         (unsigned long long)ws.direct, (unsigned long long)ws.handed,
         (unsigned long long)ws.resumed);
  CHECK(ws.closing);
  CHECK(ws.direct >= 1);
  CHECK_U64(ws.handed, 1); /* then its queue: nothing more went straight */
  CHECK_U64(ws.resumed, 1);
  reader_start(&r1);
  if (ender != NULL) {
    CHECK(WaitForSingleObject(ender, 60000) == WAIT_OBJECT_0);
    CloseHandle(ender);
  }
  reader_join(&r1);
  CHECK_INT(r1.end_error, ERROR_BROKEN_PIPE);
  s1 = parse_lines(r1.buf ? r1.buf : "", r1.len);
  CHECK(s1 != NULL);
  if (s1 != NULL) {
    a = account(s1, 1, NULL, 0);
    printf("reader: %lld lines, %lld gap record(s)\n", a.lines, a.gaps);
    CHECK(a.exact);
    CHECK_INT(a.gaps, 0); /* buffer=4096: nothing lost */
    CHECK_INT(a.lines, 301);
    CHECK_INT(a.last, 301);
    json_decref(s1);
  }
  f = fopen(out_path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    if (r1.buf != NULL)
      fwrite(r1.buf, 1, r1.len, f);
    fclose(f);
  }
  snprintf(args, sizeof(args), "verify \"%s\" --key \"%s\"", out_path, key_path);
  CHECK(tw_jw_run(&(tw_run_opts_t){.tag = "sealed-verify", .args = args}, &v));
  CHECK_U64(v.exit_code, 0);
  CHECK_CONTAINS(v.out, "verify: intact\n");
  CHECK_CONTAINS(v.out, " stream 0/1: intact, 301 lines, ");
  CHECK_CONTAINS(v.out, ", closed by sandbox.job_end\n");
  tw_jw_free(&v);
  free(r1.buf);
}

/* Runnable one by one: `win_pipe.exe DATA EVENTS JOBWARDEN --case burst`. */
static const jw_test_case_t cases[] = {
    {"security", case_security, 60}, {"readers", case_readers, 120},
    {"burst", case_burst, 60},       {"cli", case_cli, 120},
    {"connect", case_connect, 120},  {"sealed_direct", case_sealed_direct, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-pipe-", g_events, g_jw, g_self) != 0)
    return 2;
  return TW_RUN_CASES("pipe", argc, argv, cases);
}

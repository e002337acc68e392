/* wine.real.record: the record cannot be rewritten in place (issue 9, 4).
 * Each attack runs FROM INSIDE THE JOB, as a helper mode of this
 * executable started by the real jobwarden.exe (`jobwarden run`).
 *
 *  1. file: the program opens the event file for writing, truncates it,
 *     recreates it, deletes it, renames it and sets delete-on-close; each
 *     fails with 32 (sharing violation). A plain read works (a tailer). The
 *     file afterwards holds every event, what the program read is an
 *     unchanged prefix of it, job_end is last.
 *  2. stdout: with --export stdout the program writes half lines and forged
 *     sandbox.job_end lines on stdout and stderr. jobwarden's stdout holds
 *     its events alone (each line parses, one run, seq 1..n, exactly one
 *     job_end, last); the program's bytes arrive, intact and in order,
 *     where --agent-output says (auto: stderr; file:PATH; null), also
 *     10 000 lines, far more than the pipe holds. Conflicting
 *     --agent-output values are refused with exit status 125.
 *  3. pipe readers: (a) max_readers=2 and three readers: the third is
 *     disconnected before it reads a byte and a medium pipe_reader_refused
 *     notice names it; (b) a reader inside the job reads nothing and a
 *     critical pipe_reader_refused violation names it; (c) max_readers
 *     SPEC errors; (d) the cost of a reader, measured (printed for
 *     docs/architecture.md) and bounded; (e) 40 readers against the
 *     default cap of jobwarden.exe: 16 served, 24 refused and recorded,
 *     jobwarden's thread count flat after the 16th; (f) a reader that
 *     escaped the job (its parent spoofed to jobwarden from inside):
 *     refused, a critical pipe_reader_refused violation.
 *  4. command lines: a flood of 200 children started at once, each with
 *     its own command line: every child's events hold either its exact
 *     command line or no command_line and the reason in
 *     process.unavailable; never "". And a live process whose parameter
 *     block this test empties (CommandLine.Length = 0) reads as "not read,
 *     and why", never as "".
 *
 * argv: <tests/data dir> <events out dir> <path of jobwarden.exe>. */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <psapi.h>
#include <tlhelp32.h>

#include <jansson.h>

#include "harness.h"
#include "helpers.h"
#include "internal.h"
#include "jobwarden.h"
#include "win/win.h"

#define RUN_TIMEOUT_MS 60000

static char g_events[TW_PATH_CHARS]; /* the events directory (Windows path) */
static char g_jw[TW_PATH_CHARS];     /* jobwarden.exe */
static char g_self[TW_PATH_CHARS];   /* this executable */

/* <events dir>\wine-record-<tag><suffix> */
static void rec_path(char *buf, size_t n, const char *tag, const char *suffix) {
  tw_case_path(buf, n, g_events, "wine-record-", tag, suffix);
}

/* Starts `jobwarden <args>`; its stdout goes to out_path (default
 * wine-record-<tag>.stdout), its stderr to wine-record-<tag>.stderr; the
 * events of its file sink `log` (when not NULL) are read into r->events
 * at its end. */
static int jw_start(tw_run_t *r, const char *tag, const char *out_path, const char *log,
                    const char *args) {
  return tw_jw_start(&(tw_run_opts_t){.tag = tag,
                                      .args = args,
                                      .out_path = out_path,
                                      .events_path = log,
                                      .timeout_ms = RUN_TIMEOUT_MS},
                     r);
}

static void jw_run_case(tw_run_t *r, const char *tag, const char *out_path, const char *log,
                        const char *args) {
  CHECK_INT(jw_start(r, tag, out_path, log, args), 0);
  CHECK(tw_jw_wait(r));
}

/* One run's stream, complete and written by jobwarden alone: one run_id,
 * seq 1..n without a hole, exactly one sandbox.job_end and it is the last
 * line. */
static void check_stream(json_t *evs, const char *what) {
  size_t i, n = json_array_size(evs), ends = 0;
  const char *run = n ? tw_str(json_array_get(evs, 0), "run_id") : NULL;
  int bad_run = 0, bad_seq = 0;
  CHECK(n >= 3);
  for (i = 0; i < n; i++) {
    json_t *ev = json_array_get(evs, i);
    const char *r = tw_str(ev, "run_id");
    if (r == NULL || run == NULL || strcmp(r, run) != 0)
      bad_run++;
    if (tw_int(ev, "seq") != (long long)(i + 1))
      bad_seq++;
    if (strcmp(tw_str(ev, "event") ? tw_str(ev, "event") : "", "sandbox.job_end") == 0)
      ends++;
  }
  CHECK_INT(bad_run, 0);
  CHECK_INT(bad_seq, 0);
  CHECK_INT(ends, 1);
  CHECK_STR(n ? tw_str(json_array_get(evs, n - 1), "event") : NULL, "sandbox.job_end");
  if (bad_run || bad_seq || ends != 1)
    fprintf(stderr, "(%s: %lu events)\n", what, (unsigned long)n);
}

/* The only event of that name and rule (NULL, and a failed check, if
 * there is not exactly one). Borrowed from evs. */
static json_t *only(json_t *evs, const char *event, const char *rule) {
  json_t *f = tw_filter(evs, event, rule), *ev = NULL;
  CHECK_INT(json_array_size(f), 1);
  if (json_array_size(f) == 1)
    ev = json_array_get(f, 0);
  json_decref(f); /* the array only; the events stay referenced by evs */
  return ev;
}

static const char *file_name(const char *path) {
  const char *a = strrchr(path, '\\'), *b = strrchr(path, '/');
  const char *p = a > b ? a : b;
  return p ? p + 1 : path;
}

/* ------------------------------------------------------------------------ */
/* 1. The event file                                                        */
/* ------------------------------------------------------------------------ */

static void case_file_attack(void) {
  char log[TW_PATH_CHARS], result[TW_PATH_CHARS], snap[TW_PATH_CHARS], args[TW_CMD_CHARS];
  char moved[TW_PATH_CHARS + 8];
  char *res, *text, *seen;
  size_t text_len = 0, seen_len = 0;
  tw_run_t r;
  json_t *evs;

  rec_path(log, sizeof(log), "file", ".jsonl");
  rec_path(result, sizeof(result), "file", ".result");
  rec_path(snap, sizeof(snap), "file", ".snapshot");
  snprintf(moved, sizeof(moved), "%s.moved", log);
  DeleteFileA(log);
  DeleteFileA(result);
  DeleteFileA(snap);
  DeleteFileA(moved);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" -- \"%s\" --helper attack-file \"%s\" \"%s\" \"%s\"", log,
           g_self, log, result, snap);
  jw_run_case(&r, "file", NULL, log, args);
  CHECK_U64(r.exit_code, 0);
  res = tw_read_file(result, NULL);
  /* Every attempt is refused by the share mode: 32, ERROR_SHARING_VIOLATION;
   * a plain read (what a tailer does) works. */
  CHECK_STR(res, "write=32 trunc=32 create=32 delete=32 move=32 disposition=32 read=0");
  free(res);
  CHECK(GetFileAttributesA(moved) == INVALID_FILE_ATTRIBUTES);
  /* What the program read mid-run is, byte for byte, the start of the
   * final file: nothing was rewritten. */
  text = tw_read_file(log, &text_len);
  seen = tw_read_file(snap, &seen_len);
  CHECK(text != NULL && seen != NULL);
  CHECK(seen_len > 0 && seen_len < text_len);
  CHECK(text != NULL && seen != NULL && seen_len <= text_len && memcmp(text, seen, seen_len) == 0);
  free(text);
  free(seen);
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    check_stream(evs, log);
    CHECK(only(evs, "sandbox.job_start", "job") != NULL);
    CHECK(only(evs, "sandbox.process_exit", "root_process") != NULL);
  }
  json_decref(evs);
  /* A second writer on the same file is refused while jobwarden holds it
   * (here: the file is free again after the run, so it opens). */
  {
    HANDLE h = CreateFileA(log, GENERIC_WRITE, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    if (h != INVALID_HANDLE_VALUE)
      CloseHandle(h);
  }
  tw_jw_free(&r);
}

/* ------------------------------------------------------------------------ */
/* 2. --export stdout | stderr                                             */
/* ------------------------------------------------------------------------ */

/* The events on a stream jobwarden wrote alone: its stdout or stderr
 * file, read here rather than as the run's events (one events_path per
 * run; "both" reads two streams). */
static void check_event_stream(const char *path, const char *what) {
  json_t *evs = tw_read_events(path);
  CHECK(evs != NULL);
  if (evs != NULL)
    check_stream(evs, what);
  json_decref(evs);
}

static void case_stdout_forgery(void) {
  char out[TW_PATH_CHARS], errp[TW_PATH_CHARS], agent[TW_PATH_CHARS], args[TW_CMD_CHARS];
  char *bytes;
  size_t len = 0;
  tw_run_t r;

  /* auto: the agent's bytes go to jobwarden's stderr. */
  rec_path(out, sizeof(out), "stdout-auto", ".jsonl");
  snprintf(args, sizeof(args), "run --export stdout -- \"%s\" --helper forge-output", g_self);
  jw_run_case(&r, "stdout-auto", out, NULL, args);
  CHECK_U64(r.exit_code, 0);
  check_event_stream(out, "stdout-auto");
  CHECK_INT(r.err_len, strlen(TW_FORGED_OUTPUT));
  CHECK_STR(r.err, TW_FORGED_OUTPUT);
  /* None of the program's bytes on the event stream ("forged_packets" is
   * a field of jobwarden's own job_end summary). */
  CHECK(strstr(r.out, "\"message\":\"forged\"") == NULL &&
        strstr(r.out, "a line without its end") == NULL && strstr(r.out, "half a line") == NULL);
  tw_jw_free(&r);

  /* --export stderr: the agent's bytes go to stdout. */
  rec_path(errp, sizeof(errp), "stderr-auto", ".stderr");
  snprintf(args, sizeof(args), "run --export stderr -- \"%s\" --helper forge-output", g_self);
  jw_run_case(&r, "stderr-auto", NULL, NULL, args);
  CHECK_U64(r.exit_code, 0);
  check_event_stream(r.err_path, "stderr-auto");
  CHECK_STR(r.out, TW_FORGED_OUTPUT);
  /* Kept under a .jsonl name: wine.schema.events validates it too. */
  {
    char kept[TW_PATH_CHARS];
    rec_path(kept, sizeof(kept), "stderr-auto", ".jsonl");
    CHECK(CopyFileA(r.err_path, kept, FALSE));
  }
  tw_jw_free(&r);

  /* file:PATH: the agent's bytes in the file, nothing on stderr. */
  rec_path(out, sizeof(out), "stdout-file", ".jsonl");
  rec_path(agent, sizeof(agent), "stdout-file", ".agent");
  DeleteFileA(agent);
  snprintf(args, sizeof(args),
           "run --export stdout --agent-output \"file:%s\" -- \"%s\" --helper forge-output", agent,
           g_self);
  jw_run_case(&r, "stdout-file", out, NULL, args);
  CHECK_U64(r.exit_code, 0);
  check_event_stream(out, "stdout-file");
  CHECK_INT(r.err_len, 0);
  bytes = tw_read_file(agent, &len);
  CHECK_STR(bytes, TW_FORGED_OUTPUT);
  free(bytes);
  tw_jw_free(&r);

  /* Both streams carry events: auto discards the agent's bytes. */
  rec_path(out, sizeof(out), "both", ".jsonl");
  snprintf(args, sizeof(args),
           "run --export stdout --export stderr -- \"%s\" --helper forge-output", g_self);
  jw_run_case(&r, "both", out, NULL, args);
  CHECK_U64(r.exit_code, 0);
  check_event_stream(out, "both stdout");
  check_event_stream(r.err_path, "both stderr");
  /* the same events; each sink's own seal chain aside */
  r.out_len = tw_unseal(r.out, r.out_len);
  r.err_len = tw_unseal(r.err, r.err_len);
  CHECK(r.out_len == r.err_len && memcmp(r.out, r.err, r.out_len) == 0);
  tw_jw_free(&r);

  /* Much more output than the pipe holds (850 KB in 10 000 writes; the pipe holds 64 KB),
   * while events are written: all of it arrives, in order, intact. */
  rec_path(out, sizeof(out), "spew", ".jsonl");
  snprintf(args, sizeof(args), "run --export stdout -- \"%s\" --helper spew 10000", g_self);
  jw_run_case(&r, "spew", out, NULL, args);
  CHECK_U64(r.exit_code, 0);
  check_event_stream(out, "spew");
  {
    unsigned long i;
    size_t off = 0;
    int bad = 0;
    for (i = 0; i < 10000 && !bad; i++) {
      char line[128];
      int ll = snprintf(line, sizeof(line), TW_SPEW_FMT, i);
      if (off + (size_t)ll > r.err_len || memcmp(r.err + off, line, (size_t)ll) != 0) {
        fprintf(stderr, "spew: line %lu differs at offset %lu\n", i, (unsigned long)off);
        bad = 1;
      }
      off += (size_t)ll;
    }
    CHECK_INT(bad, 0);
    CHECK_INT(r.err_len, off);
  }
  tw_jw_free(&r);

  /* A stream that carries events cannot be given to the program. */
  snprintf(args, sizeof(args),
           "run --export stdout --agent-output stdout -- \"%s\" --helper forge-output", g_self);
  jw_run_case(&r, "stdout-conflict", NULL, NULL, args);
  CHECK_U64(r.exit_code, 125);
  CHECK_INT(r.out_len, 0);
  CHECK_STR(r.err, "jobwarden: --agent-output stdout: jobwarden's stdout carries events (--export "
                   "stdout); the program's output must go elsewhere (auto, stderr, null or "
                   "file:PATH)\n");
  tw_jw_free(&r);

  snprintf(args, sizeof(args),
           "run --export stderr --agent-output inherit -- \"%s\" --helper forge-output", g_self);
  jw_run_case(&r, "inherit-conflict", NULL, NULL, args);
  CHECK_U64(r.exit_code, 125);
  CHECK_STR(r.err, "jobwarden: --agent-output inherit: the program would share jobwarden's "
                   "stderr with the event stream (--export stderr); use auto, stdout, null or "
                   "file:PATH\n");
  tw_jw_free(&r);

  snprintf(args, sizeof(args), "run --agent-output somewhere -- \"%s\" --helper exit 0", g_self);
  jw_run_case(&r, "agent-output-bad", NULL, NULL, args);
  CHECK_U64(r.exit_code, 125);
  CHECK_STR(r.err, "jobwarden: --agent-output: expected auto, inherit, stdout, stderr, null or "
                   "file:PATH, got \"somewhere\"\n");
  tw_jw_free(&r);
}

/* ------------------------------------------------------------------------ */
/* 3. Pipe readers                                                          */
/* ------------------------------------------------------------------------ */

/* Pipe names unique to this test process. */
static const char *pipe_name(const char *base) {
  static char ring[8][128];
  static unsigned next;
  char *out = ring[next++ % 8u];
  snprintf(out, 128, "jw%lu-%s", (unsigned long)GetCurrentProcessId(), base);
  return out;
}

typedef struct {
  HANDLE h;
  char *buf;
  size_t len;
  DWORD end_error;
  HANDLE thread;
  HANDLE first; /* set once the first byte arrived (or the stream ended) */
  HANDLE saw;   /* set once `want` was read (or the stream ended) */
  const char *want;
} preader_t;

static unsigned __stdcall preader_main(void *arg) {
  preader_t *r = arg;
  for (;;) {
    char chunk[4096];
    DWORD got = 0;
    if (!ReadFile(r->h, chunk, sizeof(chunk), &got, NULL) || got == 0) {
      r->end_error = GetLastError();
      break;
    }
    r->buf = realloc(r->buf, r->len + got + 1);
    memcpy(r->buf + r->len, chunk, got);
    r->len += got;
    r->buf[r->len] = 0;
    SetEvent(r->first);
    if (r->want != NULL && strstr(r->buf, r->want) != NULL)
      SetEvent(r->saw);
  }
  SetEvent(r->first);
  SetEvent(r->saw);
  return 0;
}

static int preader_open(preader_t *r, const char *name, const char *want) {
  char path[300];
  int i;
  memset(r, 0, sizeof(*r));
  snprintf(path, sizeof(path), "\\\\.\\pipe\\%s", name);
  for (i = 0; i < 200; i++) {
    r->h = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (r->h != INVALID_HANDLE_VALUE || GetLastError() != ERROR_PIPE_BUSY)
      break;
    WaitNamedPipeA(path, 100);
  }
  if (r->h == INVALID_HANDLE_VALUE)
    return -1;
  r->first = CreateEventW(NULL, TRUE, FALSE, NULL);
  r->saw = CreateEventW(NULL, TRUE, FALSE, NULL);
  r->want = want;
  r->thread = (HANDLE)_beginthreadex(NULL, 64 * 1024, preader_main, r,
                                     STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
  return r->thread != NULL ? 0 : -1;
}

static void preader_join(preader_t *r) {
  if (r->thread != NULL) {
    CHECK(WaitForSingleObject(r->thread, RUN_TIMEOUT_MS) == WAIT_OBJECT_0);
    CloseHandle(r->thread);
  }
  if (r->h != INVALID_HANDLE_VALUE && r->h != NULL)
    CloseHandle(r->h);
  if (r->first != NULL)
    CloseHandle(r->first);
  if (r->saw != NULL)
    CloseHandle(r->saw);
}

/* (a) max_readers=2, three readers from outside the job. */
static void case_pipe_cap(void) {
  char log[TW_PATH_CHARS], marker[TW_PATH_CHARS], args[TW_CMD_CHARS], kept[TW_PATH_CHARS];
  const char *name = pipe_name("cap");
  preader_t rd[3];
  tw_run_t r;
  json_t *evs;
  int i;

  rec_path(log, sizeof(log), "cap", ".jsonl");
  rec_path(marker, sizeof(marker), "cap", ".go");
  DeleteFileA(log);
  DeleteFileA(marker);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export pipe:%s,max_readers=2 -- \"%s\" --helper wait-file "
           "\"%s\"",
           log, name, g_self, marker);
  CHECK_INT(jw_start(&r, "cap", NULL, log, args), 0);
  CHECK_INT(tw_wait_pipe(name, 20000, 5), 0);
  /* The acceptor serves one connection at a time, in order: the third
   * reader is judged after the first two are served. The first two get
   * the stream (at least job_start) before the third connects. */
  for (i = 0; i < 3; i++) {
    CHECK_INT(preader_open(&rd[i], name, NULL), 0);
    if (i < 2)
      CHECK(WaitForSingleObject(rd[i].first, 20000) == WAIT_OBJECT_0);
  }
  CHECK(WaitForSingleObject(rd[2].first, 20000) == WAIT_OBJECT_0);
  /* Refused before a single byte: its read ends at once. */
  CHECK_INT(rd[2].len, 0);
  CHECK(rd[2].end_error == ERROR_PIPE_NOT_CONNECTED || rd[2].end_error == ERROR_BROKEN_PIPE);
  {
    HANDLE h = CreateFileA(marker, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CloseHandle(h);
  }
  CHECK(tw_jw_wait(&r));
  CHECK_U64(r.exit_code, 0);
  for (i = 0; i < 3; i++)
    preader_join(&rd[i]);
  for (i = 0; i < 2; i++) {
    FILE *f;
    char tag[32];
    snprintf(tag, sizeof(tag), "cap-reader%d", i + 1);
    rec_path(kept, sizeof(kept), tag, ".jsonl");
    f = fopen(kept, "wb");
    if (f != NULL) {
      fwrite(rd[i].buf, 1, rd[i].len, f);
      fclose(f);
    }
    CHECK(rd[i].len > 0 && strstr(rd[i].buf, "\"sandbox.job_end\"") != NULL);
    CHECK_INT(rd[i].end_error, ERROR_BROKEN_PIPE);
    free(rd[i].buf);
  }
  free(rd[2].buf);
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev;
    check_stream(evs, log);
    ev = only(evs, "sandbox.notice", "pipe_reader_refused");
    CHECK_STR(tw_str(ev, "severity"), "medium");
    CHECK_STR(tw_str(ev, "action"), "blocked");
    CHECK_STR(tw_str(ev, "enforcer"), "monitor");
    CHECK_STR(tw_str(ev, "reader.reason"), "max_readers");
    CHECK_INT(tw_int(ev, "reader.max_readers"), 2);
    CHECK_INT(tw_int(ev, "reader.pid"), GetCurrentProcessId());
    CHECK_STR(tw_str(ev, "reader.executable") ? file_name(tw_str(ev, "reader.executable")) : NULL,
              file_name(g_self));
    {
      char spec[200];
      snprintf(spec, sizeof(spec), "pipe:%s,max_readers=2", name);
      CHECK_STR(tw_str(ev, "reader.sink"), spec);
    }
    CHECK_CONTAINS(tw_str(ev, "message"), "2 readers are served already (max_readers=2)");
  }
  json_decref(evs);
  tw_jw_free(&r);
}

/* A pipe-reader's RESULT file: it connected and the pipe was closed
 * before a byte (233, or 109 when it read after the close). */
static void check_nothing_read(const char *result, const char *who) {
  char *res = tw_read_file(result, NULL);
  CHECK(res != NULL && (strcmp(res, "open=0 bytes=0 end=233\n") == 0 ||
                        strcmp(res, "open=0 bytes=0 end=109\n") == 0));
  if (res != NULL && strncmp(res, "open=0 bytes=0 ", 15) != 0)
    fprintf(stderr, "%s reader got: %.300s\n", who, res);
  free(res);
}

/* (b) A reader inside the job. */
static void case_pipe_in_job(void) {
  char log[TW_PATH_CHARS], result[TW_PATH_CHARS], args[TW_CMD_CHARS];
  const char *name = pipe_name("injob");
  tw_run_t r;
  json_t *evs;

  rec_path(log, sizeof(log), "injob", ".jsonl");
  rec_path(result, sizeof(result), "injob", ".result");
  DeleteFileA(log);
  DeleteFileA(result);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export pipe:%s -- \"%s\" --helper pipe-reader %s \"%s\"",
           log, name, g_self, name, result);
  jw_run_case(&r, "injob", NULL, log, args);
  CHECK_U64(r.exit_code, 0);
  CHECK_INT(r.err_len, 0); /* recorded in-band, not on stderr */
  /* Connected, then disconnected before a byte: nothing of the stream. */
  check_nothing_read(result, "in-job");
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *ev, *root;
    check_stream(evs, log);
    root = only(evs, "sandbox.process_start", "root_process");
    ev = only(evs, "sandbox.violation", "pipe_reader_refused");
    CHECK_STR(tw_str(ev, "severity"), "critical");
    CHECK_STR(tw_str(ev, "action"), "blocked");
    CHECK_STR(tw_str(ev, "reader.reason"), "in_job");
    CHECK(tw_int(ev, "reader.pid") > 0);
    CHECK_INT(tw_int(ev, "reader.pid"), tw_int(root, "process.pid"));
    CHECK_STR(tw_str(ev, "reader.executable"), tw_str(root, "process.executable"));
    CHECK(tw_get(ev, "reader.max_readers") == NULL);
    CHECK_CONTAINS(tw_str(ev, "message"), "is a process of the sandboxed job");
  }
  json_decref(evs);
  tw_jw_free(&r);
}

/* (b2) A flood of refused readers: the agent connects 500 times from
 *      inside the job. The first 32 refusals are events one by one, the
 *      other 468 one summary (reason flood, the exact count) just before
 *      job_end; the run goes on to its end. */
static void case_pipe_refusal_flood(void) {
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS];
  const char *name = pipe_name("rflood");
  tw_run_t r;
  json_t *evs;

  rec_path(log, sizeof(log), "rflood", ".jsonl");
  DeleteFileA(log);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export pipe:%s -- \"%s\" --helper reader-flood %s 500", log,
           name, g_self, name);
  jw_run_case(&r, "rflood", NULL, log, args);
  CHECK_U64(r.exit_code, 0); /* the helper connected 500 times */
  CHECK_CONTAINS(r.out, "connected 500");
  CHECK_CONTAINS(r.out, "refused 500");
  CHECK_CONTAINS(r.out, "served 0");
  CHECK_INT(r.err_len, 0);
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *v = tw_filter(evs, "sandbox.violation", "pipe_reader_refused"), *ev;
    size_t i, n = json_array_size(evs), detailed = 0;
    json_t *root = only(evs, "sandbox.process_start", "root_process");
    check_stream(evs, log);
    CHECK_INT(json_array_size(v), 33);
    json_array_foreach(v, i, ev) {
      if (i < 32) {
        detailed += tw_str(ev, "reader.reason") != NULL &&
                    strcmp(tw_str(ev, "reader.reason"), "in_job") == 0 &&
                    tw_int(ev, "reader.pid") == tw_int(root, "process.pid");
        CHECK_STR(tw_str(ev, "severity"), "critical");
      }
    }
    CHECK_INT(detailed, 32);
    ev = json_array_get(v, 32);
    CHECK_STR(tw_str(ev, "reader.reason"), "flood");
    CHECK_INT(tw_int(ev, "reader.count"), 468);
    CHECK_INT(tw_int(ev, "reader.by_reason.in_job"), 468);
    CHECK_STR(tw_str(ev, "severity"), "critical");
    CHECK_CONTAINS(tw_str(ev, "message"), "468 further reader(s) refused after the first 32");
    /* The summary, then job_end, last. */
    CHECK(n >= 2 && json_equal(json_array_get(evs, n - 2), ev));
    CHECK_STR(tw_str(json_array_get(evs, n - 1), "event"), "sandbox.job_end");
    CHECK_INT(tw_int(json_array_get(evs, n - 1), "summary.root_exit_code"), 0);
    json_decref(v);
  }
  json_decref(evs);
  tw_jw_free(&r);
}

/* Threads and reserved + committed address space of another process. */
static unsigned long proc_threads(DWORD pid) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  THREADENTRY32 te;
  unsigned long n = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID == pid)
        n++;
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  return n;
}

static unsigned long long proc_address_space(HANDLE h) {
  MEMORY_BASIC_INFORMATION mbi;
  unsigned char *p = NULL;
  unsigned long long total = 0;
  while (VirtualQueryEx(h, p, &mbi, sizeof(mbi)) == sizeof(mbi)) {
    if (mbi.State != MEM_FREE)
      total += mbi.RegionSize;
    p = (unsigned char *)mbi.BaseAddress + mbi.RegionSize;
    if ((ULONG_PTR)p < (ULONG_PTR)mbi.BaseAddress)
      break;
  }
  return total;
}

#define FLOOD_READERS 40

/* (e) The default cap against a reader flood, on the real jobwarden.exe:
 * 40 readers from outside the job; the first 16 are served (one thread
 * each in jobwarden), the 24 others refused, each recorded, and they cost
 * jobwarden no thread. Its threads and address space are measured. */
static void case_pipe_flood(void) {
  char log[TW_PATH_CHARS], marker[TW_PATH_CHARS], args[TW_CMD_CHARS];
  const char *name = pipe_name("flood");
  static preader_t rd[FLOOD_READERS];
  tw_run_t r;
  json_t *evs;
  HANDLE jwh = NULL;
  unsigned long t1 = 0, t16 = 0, t40 = 0;
  unsigned long long a1 = 0, a16 = 0, a40 = 0;
  int i, served = 0, refused = 0;

  rec_path(log, sizeof(log), "pipe-flood", ".jsonl");
  rec_path(marker, sizeof(marker), "pipe-flood", ".go");
  DeleteFileA(log);
  DeleteFileA(marker);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export pipe:%s -- \"%s\" --helper wait-file \"%s\"", log,
           name, g_self, marker);
  CHECK_INT(jw_start(&r, "pipe-flood", NULL, log, args), 0);
  jwh = r.started
            ? OpenProcess(PROCESS_QUERY_INFORMATION | PROCESS_VM_READ, FALSE, r.pi.dwProcessId)
            : NULL;
  CHECK(jwh != NULL);
  CHECK_INT(tw_wait_pipe(name, 20000, 5), 0);
  for (i = 0; i < FLOOD_READERS; i++) {
    /* A served reader has the root's process_start: by then every thread
     * of the run (monitor, writers) exists. */
    CHECK_INT(preader_open(&rd[i], name, "\"sandbox.process_start\""), 0);
    CHECK(WaitForSingleObject(rd[i].saw, 20000) == WAIT_OBJECT_0);
    if (i == 0) {
      t1 = proc_threads(r.pi.dwProcessId);
      a1 = proc_address_space(jwh);
    } else if (i == 15) {
      t16 = proc_threads(r.pi.dwProcessId);
      a16 = proc_address_space(jwh);
    }
  }
  t40 = proc_threads(r.pi.dwProcessId);
  a40 = proc_address_space(jwh);
  printf("pipe flood: jobwarden.exe threads %lu with 1 reader, %lu with 16, %lu after 24 more "
         "were refused; address space +%llu KiB per served reader, +%llu KiB for the 24 "
         "refusals\n",
         t1, t16, t40, (a16 - a1) / 15 / 1024, a40 >= a16 ? (a40 - a16) / 1024 : 0);
  CHECK_INT(t16 - t1, 15);
  CHECK_INT(t40, t16);
  {
    HANDLE h = CreateFileA(marker, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CloseHandle(h);
  }
  CHECK(tw_jw_wait(&r));
  CHECK_U64(r.exit_code, 0);
  for (i = 0; i < FLOOD_READERS; i++) {
    preader_join(&rd[i]);
    if (rd[i].len > 0 && strstr(rd[i].buf, "\"sandbox.job_end\"") != NULL)
      served++;
    else if (rd[i].len == 0)
      refused++;
    free(rd[i].buf);
  }
  CHECK_INT(served, 16);
  CHECK_INT(refused, FLOOD_READERS - 16);
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  if (evs != NULL) {
    json_t *f = tw_filter(evs, "sandbox.notice", "pipe_reader_refused"), *ev;
    size_t k;
    int right = 0;
    check_stream(evs, log);
    CHECK_INT(json_array_size(f), FLOOD_READERS - 16);
    json_array_foreach(f, k, ev) {
      right += tw_int(ev, "reader.max_readers") == 16 &&
               tw_int(ev, "reader.pid") == (long long)GetCurrentProcessId() &&
               strcmp(tw_str(ev, "severity"), "medium") == 0;
    }
    CHECK_INT(right, FLOOD_READERS - 16);
    json_decref(f);
  }
  json_decref(evs);
  if (jwh != NULL)
    CloseHandle(jwh);
  tw_jw_free(&r);
}

/* (f) A reader that escaped the job: a process of the job starts a child
 * whose parent is spoofed to jobwarden (in no job), and that child reads
 * the pipe. Refused, and a critical event names it. Should the spoof
 * itself be refused (a process DACL on jobwarden that Wine enforces), the
 * helper says so (spoof=5) and nothing escaped. */
static void case_pipe_escaped(void) {
  char log[TW_PATH_CHARS], result[TW_PATH_CHARS], child_result[TW_PATH_CHARS + 8];
  char args[TW_CMD_CHARS];
  const char *name = pipe_name("escaped");
  tw_run_t r;
  json_t *evs;
  char *res;
  unsigned long child = 0;

  rec_path(log, sizeof(log), "escaped", ".jsonl");
  rec_path(result, sizeof(result), "escaped", ".result");
  snprintf(child_result, sizeof(child_result), "%s.child", result);
  DeleteFileA(log);
  DeleteFileA(result);
  DeleteFileA(child_result);
  snprintf(args, sizeof(args),
           "run --export \"file:%s\" --export pipe:%s -- \"%s\" --helper pipe-reader-escaped %s "
           "\"%s\"",
           log, name, g_self, name, result);
  jw_run_case(&r, "escaped", NULL, log, args);
  CHECK_U64(r.exit_code, 0);
  CHECK_INT(r.err_len, 0); /* recorded in-band, not on stderr */
  res = tw_read_file(result, NULL);
  CHECK(res != NULL);
  /* jobwarden's DACL refuses the direct way (first=5); the reader escapes
   * through the DACL rewrite that only Wine allows (platform-support.md),
   * so that the gate's refusal of an escaped reader is proven here. */
  {
    unsigned long first = 99;
    CHECK(res != NULL && sscanf(res, "first=%lu child=%lu", &first, &child) == 2 && child > 0);
    CHECK_INT(first, ERROR_ACCESS_DENIED);
    check_nothing_read(child_result, "escaped");
    evs = json_incref(r.events);
    CHECK(evs != NULL);
    if (evs != NULL) {
      json_t *ev;
      check_stream(evs, log);
      ev = only(evs, "sandbox.violation", "pipe_reader_refused");
      CHECK_STR(tw_str(ev, "severity"), "critical");
      CHECK_STR(tw_str(ev, "reader.reason"), "escaped");
      CHECK_INT(tw_int(ev, "reader.pid"), child);
      CHECK_STR(tw_str(ev, "reader.executable") ? file_name(tw_str(ev, "reader.executable")) : NULL,
                file_name(g_self));
      CHECK_CONTAINS(tw_str(ev, "message"), "yet it descends from jobwarden itself");
    }
    json_decref(evs);
  }
  free(res);
  tw_jw_free(&r);
}

/* (c) max_readers: bounds and form. */
static void case_pipe_spec(void) {
  static const struct {
    const char *spec, *text;
  } bad[] = {
      {"pipe:x,max_readers=0", "--export pipe:x,max_readers=0: max_readers: expected a number of "
                               "readers from 1 to 256, got \"0\""},
      {"pipe:x,max_readers=257", "--export pipe:x,max_readers=257: max_readers: expected a number "
                                 "of readers from 1 to 256, got \"257\""},
      {"pipe:x,max_readers=", "--export pipe:x,max_readers=: max_readers: expected a number of "
                              "readers from 1 to 256, got \"\""},
      {"pipe:x,max_readers=1,max_readers=2",
       "--export pipe:x,max_readers=1,max_readers=2: max_readers: given twice"},
      {"pipe:x,readers=2", "--export pipe:x,readers=2: unknown option 'readers' (expected "
                           "replay=N, buffer=N, max_readers=N, format=native|ecs|ocsf)"},
  };
  size_t i;
  jw_error_t err;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    memset(&err, 0, sizeof(err));
    CHECK_INT(jw_exporter_check(bad[i].spec, "--export", &err), JW_EUSAGE);
    CHECK_STR(err.text, bad[i].text);
  }
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_check("pipe:x,max_readers=256", "--export", &err), 0);
  CHECK_INT(jw_exporter_check("pipe:x,max_readers=1", "--export", &err), 0);
}

/* (d) What a reader costs: threads, reserved address space and commit,
 * in this process, for 64 readers of an in-process pipe exporter; and the
 * stack alone, default (1 MB) against READER_STACK_BYTES. Printed for
 * docs/architecture.md; bounded here. */
static unsigned long own_threads(void) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  THREADENTRY32 te;
  unsigned long n = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID == GetCurrentProcessId())
        n++;
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  return n;
}

/* Reserved + committed address space of this process, in bytes. */
static unsigned long long own_address_space(void) {
  MEMORY_BASIC_INFORMATION mbi;
  unsigned char *p = NULL;
  unsigned long long total = 0;
  while (VirtualQuery(p, &mbi, sizeof(mbi)) == sizeof(mbi)) {
    if (mbi.State != MEM_FREE)
      total += mbi.RegionSize;
    p = (unsigned char *)mbi.BaseAddress + mbi.RegionSize;
    if ((ULONG_PTR)p < (ULONG_PTR)mbi.BaseAddress)
      break;
  }
  return total;
}

static unsigned long long own_commit(void) {
  PROCESS_MEMORY_COUNTERS pmc;
  memset(&pmc, 0, sizeof(pmc));
  GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof(pmc));
  return pmc.PagefileUsage;
}

static HANDLE g_park; /* idle threads wait on it */
static void park_main(void *arg) {
  (void)arg;
  WaitForSingleObject(g_park, INFINITE);
}

#define COST_READERS 64
#define COST_THREADS 64

static void case_reader_cost(void) {
  const char *name = pipe_name("cost");
  char spec[200];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  preader_t rd[COST_READERS];
  jw__thread_t th[COST_THREADS];
  unsigned long t0, t1;
  unsigned long long a0, a1, c0, c1, sa0, sa1, sb1;
  int i;

  /* The stack alone: 64 idle threads with the default stack, then 64 with
   * the readers' explicit one. */
  g_park = CreateEventW(NULL, TRUE, FALSE, NULL);
  sa0 = own_address_space();
  for (i = 0; i < COST_THREADS; i++)
    CHECK_INT(jw__thread_start(&th[i], park_main, NULL), 0);
  sa1 = own_address_space() - sa0;
  SetEvent(g_park);
  for (i = 0; i < COST_THREADS; i++)
    jw__thread_join(&th[i]);
  ResetEvent(g_park);
  sa0 = own_address_space();
  for (i = 0; i < COST_THREADS; i++)
    CHECK_INT(jw__thread_start_stack(&th[i], park_main, NULL, 64 * 1024), 0);
  sb1 = own_address_space() - sa0;
  SetEvent(g_park);
  for (i = 0; i < COST_THREADS; i++)
    jw__thread_join(&th[i]);
  CloseHandle(g_park);
  printf("reader cost: an idle thread reserves %llu KiB with the default stack, %llu KiB with "
         "a 64 KiB stack\n",
         sa1 / COST_THREADS / 1024, sb1 / COST_THREADS / 1024);
  /* Under Wine a thread also costs about 2 MB of its own (TEB, signal and
   * kernel stacks): what the explicit stack saves is the difference, about
   * 1 MB a thread. */
  CHECK(sa1 > sb1 && (sa1 - sb1) / COST_THREADS >= 900 * 1024);

  snprintf(spec, sizeof(spec), "pipe:%s,max_readers=%d,replay=1", name, COST_READERS);
  memset(&err, 0, sizeof(err));
  if (jw_run_info_init(&run, "cost", JW_TIER_NONE) != 0 || jw_emitter_new(&run, &em) != 0 ||
      jw_exporter_open(spec, &exp, &err) != 0 || jw_emitter_add(em, exp) != 0 ||
      jw_emitter_start(em, 1024) != 0) {
    fprintf(stderr, "cost: set-up failed: %s\n", err.text);
    CHECK(0);
    return;
  }
  t0 = own_threads();
  a0 = own_address_space();
  c0 = own_commit();
  for (i = 0; i < COST_READERS; i++)
    CHECK_INT(preader_open(&rd[i], name, NULL), 0);
  /* Every reader is served once a line reaches it. */
  {
    jw_event_t ev;
    jw_event_init(&ev, JW_EVENT_NOTICE, "cost", "observed", "monitor", "jobwarden", JW_SEV_INFO);
    jw__strlcpy(ev.message, "reader cost probe", sizeof(ev.message));
    jw_emit(em, &ev);
  }
  for (i = 0; i < COST_READERS; i++)
    CHECK(WaitForSingleObject(rd[i].first, 20000) == WAIT_OBJECT_0);
  t1 = own_threads();
  a1 = own_address_space();
  c1 = own_commit();
  /* Each reader of ours costs a thread here too (its reading thread, 1 MB
   * default stack): subtract it to get the exporter's share. */
  /* The test's own reading threads have the same 64 KiB stack as the
   * exporter's: half of the threads and sb1 of the address space per
   * reader are the test's, not the exporter's. */
  printf("reader cost: %d readers: +%lu threads (half of them the test's own readers), "
         "+%llu KiB address space, +%llu KiB commit in this process; the exporter's share per "
         "reader: 1 thread, about %llu KiB address space, %llu KiB commit\n",
         COST_READERS, t1 - t0, (a1 - a0) / 1024, (c1 - c0) / 1024,
         ((a1 - a0) - sb1) / COST_READERS / 1024, (c1 - c0) / COST_READERS / 1024);
  CHECK_INT(t1 - t0, 2 * COST_READERS);
  CHECK(jw_emitter_drain(em, 10000) == 0);
  jw_emitter_free(em);
  for (i = 0; i < COST_READERS; i++) {
    preader_join(&rd[i]);
    free(rd[i].buf);
  }
}

/* ------------------------------------------------------------------------ */
/* 4. Command lines in a flood                                              */
/* ------------------------------------------------------------------------ */

#define FLOOD_N 200

static void case_flood(void) {
  char log[TW_PATH_CHARS], args[TW_CMD_CHARS];
  static char seen[FLOOD_N];
  tw_run_t r;
  json_t *evs, *ev;
  size_t i;
  int exact = 0, absent = 0, empty = 0, wrong = 0, children = 0, dup = 0;
  wchar_t wprefix[1024];
  char prefix[1024];

  rec_path(log, sizeof(log), "flood", ".jsonl");
  DeleteFileA(log);
  /* The command line a flood child gets, up to its tag (helpers.c). */
  tw_helper_cmdline(wprefix, 1024, "exit 0 ");
  WideCharToMultiByte(CP_UTF8, 0, wprefix, -1, prefix, sizeof(prefix), NULL, NULL);
  snprintf(args, sizeof(args), "run --export \"file:%s\" -- \"%s\" --helper flood %d", log, g_self,
           FLOOD_N);
  jw_run_case(&r, "flood", NULL, log, args);
  CHECK_U64(r.exit_code, 0);
  evs = json_incref(r.events);
  CHECK(evs != NULL);
  json_array_foreach(evs, i, ev) {
    const char *e = tw_str(ev, "event"), *rule = tw_str(ev, "rule"), *cl;
    json_t *cv;
    int start;
    /* A child's start is a sandbox.process_start (rule child_process); its
     * end a sandbox.process_exit. */
    if (e == NULL || rule == NULL || strcmp(rule, "child_process") != 0 ||
        (strcmp(e, "sandbox.process_start") != 0 && strcmp(e, "sandbox.process_exit") != 0))
      continue;
    start = strcmp(e, "sandbox.process_start") == 0;
    cv = tw_get(ev, "process.command_line");
    cl = json_string_value(cv);
    if (start)
      children++;
    if (cv == NULL) {
      const char *why = tw_str(ev, "process.unavailable.command_line");
      absent++;
      if (why == NULL || why[0] == 0) {
        wrong++;
        fprintf(stderr, "flood: no command_line and no reason (seq %lld)\n", tw_int(ev, "seq"));
      }
      continue;
    }
    if (cl != NULL && cl[0] == 0) {
      empty++;
      continue;
    }
    {
      unsigned long idx = 0;
      char expect[1200];
      size_t pl = strlen(prefix);
      if (cl == NULL || strncmp(cl, prefix, pl) != 0 || sscanf(cl + pl, "flood-%lu", &idx) != 1 ||
          idx >= FLOOD_N) {
        wrong++;
        fprintf(stderr, "flood: unexpected command line: %.300s\n", cl ? cl : "(not a string)");
        continue;
      }
      snprintf(expect, sizeof(expect), "%s" TW_FLOOD_TAG_FMT, prefix, idx);
      if (strcmp(cl, expect) != 0) {
        wrong++;
        fprintf(stderr, "flood: command line %.300s, expected %.300s\n", cl, expect);
        continue;
      }
      if (start) {
        dup += seen[idx];
        seen[idx] = 1;
      }
      exact++;
    }
  }
  printf("flood: %d children, %d events with the exact command line, %d without one (reason "
         "given), %d empty\n",
         children, exact, absent, empty);
  {
    int retries = 0;
    const char *at = r.err;
    while (at != NULL && (at = strstr(at, "failed with 1359; trying once more")) != NULL) {
      retries++;
      at++;
    }
    /* A creation Wine failed with 1359 can leave a process in the job
     * that never ran its image (seen in fresh-clone runs: no image, no
     * command line, parent 0 or the flood helper); the helper then starts
     * that child again. So: every flood child once, and at most as many
     * more as the helper said it retried, each of them without a command
     * line (with its reason). */
    CHECK(children >= FLOOD_N && children - FLOOD_N <= retries);
    CHECK(absent >= 2 * (children - FLOOD_N));
  }
  CHECK_INT(empty, 0);
  CHECK_INT(wrong, 0);
  CHECK_INT(dup, 0);
  CHECK_INT(exact + absent, 2 * children);
  if (evs != NULL)
    check_stream(evs, log);
  json_decref(evs);
  tw_jw_free(&r);
}

/* The parameter block of a live process with its command line emptied
 * (Length 0: what a process still being set up shows) is read as "not
 * read, and why", never as "". The real path: a process of ours whose
 * PEB this test rewrites with WriteProcessMemory. */

/* The process's command line is not read (error `code`, nothing
 * returned), for the reason `because`. */
static void expect_not_read(HANDLE h, int code, const char *because) {
  char *out = NULL, why[512] = "";
  size_t len = 0;
  int trunc = 0;
  CHECK_INT(jw__proc_command_line(h, &out, &len, &trunc, why, sizeof(why)), code);
  CHECK(out == NULL);
  CHECK_INT(len, 0);
  CHECK_CONTAINS(why, because);
  free(out);
}

static void case_cmdline_empty(void) {
  wchar_t cmd[1024];
  char expect[1200], *out = NULL, why[512], pidfile[TW_PATH_CHARS], targs[TW_PATH_CHARS + 32];
  size_t len = 0;
  int trunc = 0, rc;
  DWORD self_pid = 0, grandchild = 0;
  PROCESS_INFORMATION pi;
  RTL_USER_PROCESS_PARAMETERS pp;
  void *at = NULL;

  /* `tree` writes its pid file from main, after its start-up: from then on
   * its parameter block is the one it keeps (Wine may still move it while
   * a process starts, so rewriting it earlier could miss). */
  rec_path(pidfile, sizeof(pidfile), "cmdline-empty", ".pids");
  DeleteFileA(pidfile);
  snprintf(targs, sizeof(targs), "tree \"%s\" 20000", pidfile);
  tw_helper_cmdline(cmd, 1024, targs);
  WideCharToMultiByte(CP_UTF8, 0, cmd, -1, expect, sizeof(expect), NULL, NULL);
  if (tw_spawn(cmd, 0, &pi) != 0) {
    CHECK(0);
    return;
  }
  /* Once it runs, its command line reads back exactly. */
  CHECK_INT(tw_read_pids(pidfile, 20000, &self_pid, &grandchild), 0);
  CHECK_INT(self_pid, pi.dwProcessId);
  rc = jw__proc_command_line(pi.hProcess, &out, &len, &trunc, why, sizeof(why));
  CHECK_INT(rc, 0);
  CHECK_STR(out, expect);
  free(out);
  out = NULL;
  /* Now the same process with CommandLine.Length = 0. */
  CHECK_INT(tw_params_read(pi.hProcess, &at, &pp), 0);
  CHECK_INT(tw_cmdline_put_length(pi.hProcess, at, 0), 0);
  expect_not_read(pi.hProcess, ERROR_NOT_READY, "no command line (empty or still being set up)");
  /* Its length back, and a U+0000 inside it (what a read of a short-lived
   * child's memory while it is torn down returned once: characters over
   * reused memory): not its command line either, never reported as one. */
  CHECK_INT(tw_cmdline_put_length(pi.hProcess, at, pp.CommandLine.Length), 0);
  CHECK(pp.CommandLine.Length >= 8);
  CHECK_INT(tw_cmdline_put(pi.hProcess, &pp, 2, 0), 0);
  expect_not_read(pi.hProcess, JW__CMDLINE_NUL_ERROR, "a U+0000 inside its length");
  if (grandchild != 0) {
    HANDLE g = OpenProcess(PROCESS_TERMINATE | SYNCHRONIZE, FALSE, grandchild);
    CHECK(g != NULL);
    if (g != NULL) {
      TerminateProcess(g, 0);
      WaitForSingleObject(g, 5000);
      CloseHandle(g);
    }
  }
  TerminateProcess(pi.hProcess, 0);
  WaitForSingleObject(pi.hProcess, 5000);
  CloseHandle(pi.hThread);
  CloseHandle(pi.hProcess);
}

/* The kit's retry_1359 (tests/win/helpers.h), with a stand-in for
 * jobwarden.exe that meets 1359 once: with it the run is started once more
 * and its record is the second run's; without it the run's 125 stands. */
static void case_kit_retry_1359(void) {
  char marker[TW_PATH_CHARS], events[TW_PATH_CHARS], args[3 * TW_PATH_CHARS];
  tw_run_t r;
  int retry;
  rec_path(marker, sizeof(marker), "kit-1359", ".marker");
  /* Not .jsonl: the stand-in's line is no event (the schema tests read
   * every .jsonl file of the directory). */
  rec_path(events, sizeof(events), "kit-1359", ".events.txt");
  snprintf(args, sizeof(args), "--helper fake-1359 \"%s\" \"%s\"", marker, events);
  for (retry = 0; retry < 2; retry++) {
    DeleteFileA(marker);
    DeleteFileA(events);
    CHECK_INT(tw_jw_start(&(tw_run_opts_t){.exe = g_self,
                                           .tag = "kit-1359",
                                           .args = args,
                                           .events_path = events,
                                           .retry_1359 = retry},
                          &r),
              0);
    tw_jw_wait(&r);
    CHECK_U64(r.exit_code, retry ? 0 : 125);
    CHECK_INT(json_array_size(r.events), retry ? 1 : 0);
    CHECK(GetFileAttributesA(marker) != INVALID_FILE_ATTRIBUTES);
    tw_jw_free(&r);
  }
}

/* Runnable one by one: `win_record.exe DATA EVENTS JOBWARDEN --case pipe-cap`. */
/* No file name holds a U+0000: the system refuses to make one (Wine 8
 * and NTFS alike, STATUS_OBJECT_NAME_INVALID), so no program of the job
 * can start an image whose path would carry a \u0000 into the record. The
 * readers accept one all the same (tail, ps, kill, report: unit tests);
 * this is the fact the threat model leans on, measured here. The real
 * path: NtCreateFile with a counted name, as a program would call it. */
typedef NTSTATUS(NTAPI *nt_create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES,
                                           PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG, ULONG,
                                           ULONG, PVOID, ULONG);

static void case_nul_file_name(void) {
  nt_create_file_fn create = (nt_create_file_fn)(void (*)(void))GetProcAddress(
      GetModuleHandleW(L"ntdll.dll"), "NtCreateFile");
  wchar_t dir[MAX_PATH], name[2 * MAX_PATH + 16];
  UNICODE_STRING us;
  OBJECT_ATTRIBUTES oa;
  IO_STATUS_BLOCK io;
  HANDLE h = NULL;
  NTSTATUS st;
  DWORD n = GetFullPathNameA(g_events, 0, NULL, NULL);
  int len;
  CHECK(create != NULL);
  CHECK(n > 0 && n < MAX_PATH);
  if (create == NULL || n == 0 || n >= MAX_PATH ||
      MultiByteToWideChar(CP_UTF8, 0, g_events, -1, dir, MAX_PATH) == 0 ||
      GetFullPathNameW(dir, MAX_PATH, dir, NULL) == 0)
    return;
  len = swprintf(name, 2 * MAX_PATH, L"\\??\\%ls\\record-nul", dir);
  name[len++] = 0; /* inside the counted name */
  len += swprintf(name + len, 16, L"x.exe");
  us.Buffer = name;
  us.Length = (USHORT)(len * sizeof(wchar_t));
  us.MaximumLength = us.Length;
  InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, NULL, NULL);
  st = create(&h, GENERIC_WRITE | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL, 0,
              FILE_CREATE, FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE, NULL, 0);
  CHECK_INT((unsigned long)st, 0xC0000033ul); /* STATUS_OBJECT_NAME_INVALID */
  CHECK(h == NULL);
  if (h != NULL)
    CloseHandle(h);
  /* The same call with the U+0000 made a letter: the path itself is good. */
  name[len - 6] = L'-';
  st = create(&h, GENERIC_WRITE | DELETE | SYNCHRONIZE, &oa, &io, NULL, FILE_ATTRIBUTE_NORMAL, 0,
              FILE_CREATE,
              FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE | FILE_DELETE_ON_CLOSE, NULL,
              0);
  CHECK_INT((unsigned long)st, 0ul);
  if (h != NULL)
    CloseHandle(h);
}

static const jw_test_case_t cases[] = {
    {"file", case_file_attack, 60},
    {"stdout", case_stdout_forgery, 60},
    {"pipe-spec", case_pipe_spec, 60},
    {"pipe-cap", case_pipe_cap, 60},
    {"pipe-in-job", case_pipe_in_job, 60},
    {"pipe-refusal-flood", case_pipe_refusal_flood, 60},
    {"pipe-flood", case_pipe_flood, 120},
    {"pipe-escaped", case_pipe_escaped, 60},
    {"reader-cost", case_reader_cost, 60},
    {"cmdline-empty", case_cmdline_empty, 60},
    {"nul-file-name", case_nul_file_name, 60},
    {"flood", case_flood, 120},
    {"kit-retry-1359", case_kit_retry_1359, 60},
};

int main(int argc, char **argv) {
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  if (tw_test_setup(argc, argv, "wine-record-", g_events, g_jw, g_self) != 0)
    return 2;
  setvbuf(stdout, NULL, _IONBF, 0);
  return TW_RUN_CASES("record", argc, argv, cases);
}

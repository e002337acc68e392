/* wine.real.rotation — size-based rotation of the file exporter under a
 * burst, with a concurrent tailer. The tailer thread follows PATH like
 * `tail -F`: it keeps the file open (FILE_SHARE_READ | FILE_SHARE_WRITE |
 * FILE_SHARE_DELETE) while the exporter renames it away, drains it, then
 * switches to the new PATH. (The exporter shares its file for reading only,
 * so a reader must share write access to open it at all and delete access
 * for the rotation's rename to pass it: these flags are what any `tail -F`
 * on Windows uses; the tailer needed no change for the read-only share.)
 * Checked: no rotation fails (nothing lost, no
 * rotation message), the tailer followed rotations while holding the file
 * and never read a torn line (every complete line it read is a JSON object
 * equal to the emitted line of that seq, in increasing seq order), every
 * rotated file starts with sandbox.log_continued naming the run and the seq
 * of its next line, and the files PATH.k ... PATH.1, PATH without those
 * lines are exactly the emitted stream. */
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "helpers.h"
#include "jobwarden.h"

#define N_EVENTS 2000
#define KEEP     1000

/* ---- the reference stream ------------------------------------------------ */

static char *g_stream;
static size_t g_stream_len, g_stream_cap;
static size_t g_line_off[N_EVENTS + 2], g_line_len[N_EVENTS + 2];
static size_t g_lines;

static int capture_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                          jw_error_t *err) {
  (void)self;
  (void)ev;
  (void)err;
  if (g_stream_len + len + 1 > g_stream_cap) {
    size_t cap = (g_stream_len + len + 1) * 2;
    char *p = realloc(g_stream, cap);
    if (p == NULL)
      return JW_ENOMEM;
    g_stream = p;
    g_stream_cap = cap;
  }
  if (g_lines < N_EVENTS + 1) {
    g_lines++;
    g_line_off[g_lines] = g_stream_len; /* index = seq */
    g_line_len[g_lines] = len;
  }
  memcpy(g_stream + g_stream_len, line, len);
  g_stream_len += len;
  g_stream[g_stream_len] = '\0';
  return 0;
}

static const jw_exporter_vtable_t capture_vt = {.name = "capture", .export_line = capture_export};

/* ---- the tailer ---------------------------------------------------------- */

typedef struct {
  wchar_t wpath[1100];
  volatile LONG done; /* set by the writer when every event is written */
  HANDLE opened;      /* set once the tailer holds PATH */
  /* results */
  char *lines; /* every event line read, in order */
  size_t lines_len, lines_cap;
  int torn;           /* complete lines that were not a JSON object */
  int switches;       /* rotations followed while holding the old file */
  int headers;        /* continuation lines read */
  int open_failures;  /* CreateFileW of PATH failed (between rename and reopen) */
  long long last_seq; /* seq of the last event line read */
  int out_of_order;
  int missed_files; /* a header continued beyond the last seq read */
} tailer_t;

static HANDLE open_shared(const wchar_t *path) {
  return CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                     NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
}

/* Whether h2 (PATH opened afresh) is a newer file than the one held, whose
 * lines up to last_seq were read. Wine answers GetFileInformationByHandle
 * for a renamed file from its old name, so the file index cannot tell; the
 * self-describing first line can: a file written after a rotation starts
 * with sandbox.log_continued and its continues_at_seq lies beyond every seq
 * of the file before it. */
static int is_newer_file(HANDLE h2, long long last_seq) {
  char buf[4096];
  DWORD got = 0;
  char *nl;
  json_error_t jerr;
  json_t *j;
  const char *event;
  int newer = 0;
  if (!ReadFile(h2, buf, sizeof(buf) - 1, &got, NULL))
    return 0;
  buf[got] = '\0';
  nl = strchr(buf, '\n');
  if (nl == NULL)
    return 0; /* empty or still being written: look again later */
  j = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
  event = j != NULL ? json_string_value(json_object_get(j, "event")) : NULL;
  if (event != NULL && strcmp(event, "sandbox.log_continued") == 0 &&
      json_integer_value(json_object_get(j, "continues_at_seq")) > last_seq)
    newer = 1;
  json_decref(j);
  return newer;
}

static void tail_line(tailer_t *t, const char *line, size_t len) {
  json_error_t jerr;
  json_t *j = json_loadb(line, len - 1, 0, &jerr);
  const char *event;
  if (j == NULL || !json_is_object(j)) {
    t->torn++;
    fprintf(stderr, "tailer: torn line: %.*s\n", (int)(len > 200 ? 200 : len), line);
    json_decref(j);
    return;
  }
  event = json_string_value(json_object_get(j, "event"));
  if (event != NULL && strcmp(event, "sandbox.log_continued") == 0) {
    long long at = (long long)json_integer_value(json_object_get(j, "continues_at_seq"));
    t->headers++;
    if (at > t->last_seq + 1)
      t->missed_files++;
  } else {
    long long seq = (long long)json_integer_value(json_object_get(j, "seq"));
    if (seq <= t->last_seq) {
      if (t->out_of_order++ < 5)
        fprintf(stderr, "tailer: seq %lld after %lld (switch %d)\n", seq, t->last_seq, t->switches);
    }
    t->last_seq = seq;
    if (t->lines_len + len + 1 > t->lines_cap) {
      size_t cap = (t->lines_len + len + 1) * 2;
      char *p = realloc(t->lines, cap);
      if (p != NULL) {
        t->lines = p;
        t->lines_cap = cap;
      }
    }
    if (t->lines_len + len + 1 <= t->lines_cap) {
      memcpy(t->lines + t->lines_len, line, len);
      t->lines_len += len;
    }
  }
  json_decref(j);
}

/* Reads what is there; complete lines are handed to tail_line, the rest is
 * carried. Returns the bytes read. */
static DWORD tail_read(tailer_t *t, HANDLE h, char *carry, size_t *carry_len, size_t carry_cap) {
  char buf[8192];
  DWORD got = 0, total = 0;
  while (ReadFile(h, buf, sizeof(buf), &got, NULL) && got > 0) {
    size_t i, start = 0;
    total += got;
    for (i = 0; i < got; i++) {
      if (buf[i] != '\n')
        continue;
      if (*carry_len + (i + 1 - start) <= carry_cap) {
        memcpy(carry + *carry_len, buf + start, i + 1 - start);
        *carry_len += i + 1 - start;
        tail_line(t, carry, *carry_len);
      } else {
        t->torn++;
      }
      *carry_len = 0;
      start = i + 1;
    }
    if (*carry_len + (got - start) <= carry_cap) {
      memcpy(carry + *carry_len, buf + start, got - start);
      *carry_len += got - start;
    }
  }
  return total;
}

static unsigned __stdcall tailer_main(void *p) {
  tailer_t *t = p;
  size_t carry_cap = 1 << 20, carry_len = 0;
  char *carry = malloc(carry_cap);
  HANDLE h = INVALID_HANDLE_VALUE;
  int i;
  for (i = 0; i < 5000 && h == INVALID_HANDLE_VALUE; i++) {
    h = open_shared(t->wpath);
    if (h == INVALID_HANDLE_VALUE)
      Sleep(1);
  }
  SetEvent(t->opened);
  if (h == INVALID_HANDLE_VALUE || carry == NULL) {
    free(carry);
    return 1;
  }
  for (;;) {
    int finished = InterlockedCompareExchange(&t->done, 0, 0) != 0;
    HANDLE h2;
    if (tail_read(t, h, carry, &carry_len, carry_cap) > 0)
      continue;
    /* At the end of the file held: has PATH become another file? */
    h2 = open_shared(t->wpath);
    if (h2 == INVALID_HANDLE_VALUE) {
      t->open_failures++; /* between the rename and the reopen */
      Sleep(1);
      continue;
    }
    if (is_newer_file(h2, t->last_seq)) {
      SetFilePointer(h2, 0, NULL, FILE_BEGIN);
      /* The held file was renamed away and closed by the writer: drain it. */
      tail_read(t, h, carry, &carry_len, carry_cap);
      if (carry_len != 0) {
        t->torn++; /* a file must end with a whole line */
        carry_len = 0;
      }
      CloseHandle(h);
      h = h2;
      t->switches++;
      continue;
    }
    CloseHandle(h2);
    if (finished)
      break; /* the writer was done before this last look: nothing more comes */
    Sleep(1);
  }
  if (carry_len != 0)
    t->torn++;
  CloseHandle(h);
  free(carry);
  return 0;
}

/* ---- the test ------------------------------------------------------------ */

static void make_event(jw_event_t *ev, int i, char *image, size_t image_len) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = i % 50 == 0 ? JW_EVENT_VIOLATION : JW_EVENT_PROCESS_START;
  ev->rule = i % 50 == 0 ? "image_denied" : "root_process";
  ev->action = i % 50 == 0 ? "reported" : "observed";
  ev->enforcer = "monitor";
  ev->source = "port";
  ev->severity = i % 50 == 0 ? JW_SEV_LOW : JW_SEV_INFO;
  ev->has_process = 1;
  ev->process.pid = 4000u + (uint32_t)i;
  ev->process.create_time = 133000000000000000ull + (uint64_t)i;
  memset(image, 'x', image_len);
  memcpy(image, "C:\\agent\\", 9);
  image[image_len] = '\0';
  ev->process.image = image;
  snprintf(ev->message, sizeof(ev->message), "burst event %d", i);
}

static void test_rotation(const char *dir) {
  char path[1024], spec[1100], p[1100];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *fe = NULL, *cap;
  jw_error_t err;
  tailer_t *t = calloc(1, sizeof(*t));
  HANDLE th;
  char image[600], *all = NULL;
  size_t all_len = 0, files = 0;
  int i, n_rot;

  snprintf(path, sizeof(path), "%s/wine-rotation.jsonl", dir);
  remove(path);
  for (i = 1; i <= KEEP + 1; i++) {
    snprintf(p, sizeof(p), "%s.%d", path, i);
    remove(p);
  }
  CHECK_INT(jw_run_info_init(&run, "wine-rotation", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s,rotate=16K,keep=%d", path, KEEP);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(spec, &fe, &err), 0);
  if (t == NULL || em == NULL || fe == NULL) {
    fprintf(stderr, "cannot open %s: %s\n", spec, err.text);
    return;
  }
  cap = calloc(1, sizeof(*cap));
  cap->vt = &capture_vt;
  snprintf(cap->spec, sizeof(cap->spec), "capture");
  CHECK_INT(jw_emitter_add(em, fe), 0);
  CHECK_INT(jw_emitter_add(em, cap), 0);

  /* The tailer holds PATH before the first event. */
  MultiByteToWideChar(CP_UTF8, 0, path, -1, t->wpath, (int)(sizeof(t->wpath) / sizeof(wchar_t)));
  t->opened = CreateEventW(NULL, TRUE, FALSE, NULL);
  th = (HANDLE)_beginthreadex(NULL, 0, tailer_main, t, 0, NULL);
  CHECK(th != NULL);
  CHECK_INT(WaitForSingleObject(t->opened, 10000), WAIT_OBJECT_0);

  for (i = 1; i <= N_EVENTS; i++) {
    jw_event_t ev;
    make_event(&ev, i, image, 40 + (size_t)(i * 53) % 500);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  CHECK_U64(fe->written, N_EVENTS);
  CHECK_U64(fe->lost, 0);
  CHECK_INT(jw_emitter_failed_sinks(em), 0);
  jw_emitter_free(em); /* closes the file: the tailer can finish */
  InterlockedExchange(&t->done, 1);
  CHECK_INT(WaitForSingleObject(th, 60000), WAIT_OBJECT_0);
  CloseHandle(th);
  CloseHandle(t->opened);

  /* The tailer: followed rotations while holding the file, never a torn
   * line, each line it read is the emitted line of that seq. */
  fprintf(stderr, "tailer: %d switches, %d headers, %d missed files, %d failed opens, %llu bytes\n",
          t->switches, t->headers, t->missed_files, t->open_failures,
          (unsigned long long)t->lines_len);
  CHECK(t->switches >= 1);
  CHECK_INT(t->torn, 0);
  CHECK_INT(t->out_of_order, 0);
  CHECK_INT(t->last_seq, N_EVENTS);
  CHECK(g_lines == N_EVENTS);
  {
    char *line = t->lines, *end = t->lines + t->lines_len, *nl;
    int bad = 0;
    while (line != NULL && line < end && (nl = memchr(line, '\n', (size_t)(end - line))) != NULL) {
      size_t ll = (size_t)(nl - line) + 1;
      json_error_t jerr;
      json_t *j = json_loadb(line, ll - 1, 0, &jerr);
      long long seq = (long long)json_integer_value(json_object_get(j, "seq"));
      if (seq < 1 || seq > N_EVENTS || g_line_len[seq] != ll ||
          memcmp(g_stream + g_line_off[seq], line, ll) != 0)
        bad++;
      json_decref(j);
      line = nl + 1;
    }
    CHECK_INT(bad, 0);
  }

  /* The files: PATH.n ... PATH.1, PATH. */
  for (n_rot = 0; n_rot <= KEEP; n_rot++) {
    snprintf(p, sizeof(p), "%s.%d", path, n_rot + 1);
    if (GetFileAttributesA(p) == INVALID_FILE_ATTRIBUTES)
      break;
  }
  CHECK(n_rot >= 30); /* ~2000 lines of 300-800 bytes in 16K files */
  for (i = n_rot; i >= 0; i--) {
    size_t len = 0;
    char *data, *line, *nl;
    if (i == 0)
      snprintf(p, sizeof(p), "%s", path);
    else
      snprintf(p, sizeof(p), "%s.%d", path, i);
    data = tw_read_file(p, &len);
    CHECK(data != NULL);
    if (data == NULL)
      continue;
    files++;
    CHECK(len > 0 && data[len - 1] == '\n');
    CHECK(len <= 16384);
    for (line = data; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
      size_t ll = (size_t)(nl - line) + 1;
      if (line == data && i != n_rot) {
        json_error_t jerr;
        json_t *h = json_loadb(line, ll - 1, 0, &jerr), *next;
        char prev[1100];
        snprintf(prev, sizeof(prev), "%s.1", path);
        CHECK_STR(h ? json_string_value(json_object_get(h, "event")) : NULL,
                  "sandbox.log_continued");
        CHECK_STR(h ? json_string_value(json_object_get(h, "run_id")) : NULL, run.run_id);
        CHECK_STR(h ? json_string_value(json_object_get(h, "previous_file")) : NULL, prev);
        next = json_loadb(nl + 1, strcspn(nl + 1, "\n"), 0, &jerr);
        CHECK(next != NULL);
        if (h != NULL && next != NULL)
          CHECK_INT(json_integer_value(json_object_get(h, "continues_at_seq")),
                    json_integer_value(json_object_get(next, "seq")));
        json_decref(next);
        json_decref(h);
        continue;
      }
      all = realloc(all, all_len + ll + 1);
      if (all == NULL)
        break;
      memcpy(all + all_len, line, ll);
      all_len += ll;
    }
    free(data);
  }
  CHECK_INT(files, (size_t)n_rot + 1);
  CHECK_INT(all_len, g_stream_len);
  CHECK(all != NULL && all_len == g_stream_len && memcmp(all, g_stream, all_len) == 0);
  fprintf(stderr, "files: %d rotated + current, %llu bytes\n", n_rot, (unsigned long long)all_len);
  free(all);
  free(t->lines);
  free(t);
}

static const char *g_dir = ".";

static void test_rotation_case(void) {
  test_rotation(g_dir);
}

/* Runnable one by one: `win_rotation.exe DATA EVENTS JOBWARDEN --case rotation`. */
static const jw_test_case_t cases[] = {
    {"rotation", test_rotation_case, 120},
};

int main(int argc, char **argv) {
  const char *dir = argc > 2 ? argv[2] : ".";
  if (tw_is_helper(argc, argv))
    return tw_helper_main(argc, argv);
  int rc;
  g_dir = dir;
  rc = TW_RUN_CASES("rotation_real", argc, argv, cases);
  free(g_stream);
  return rc;
}

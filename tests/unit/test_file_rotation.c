/* unit: the file exporter's options (rotate=SIZE, keep=N) are validated with
 * exact messages; rotation never splits, loses or repeats a line: the
 * rotated files, oldest first and without their sandbox.log_continued
 * lines, are exactly the emitted stream; no file exceeds the size unless it
 * holds a single event; keep is honoured; every rotated file starts with a
 * continuation line naming the run and the seq it continues at; a rename
 * that fails leaves every line in the current file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#ifdef _WIN32
#include <direct.h>
#define MKDIR(p) _mkdir(p)
#define RMDIR(p) _rmdir(p)
#else
#include <sys/stat.h>
#include <unistd.h>
#define MKDIR(p) mkdir(p, 0755)
#define RMDIR(p) rmdir(p)
#endif

#include "harness.h"
#include "test_util.h"
#include "internal.h"

/* ---- a sink that keeps every line it gets: the reference stream -------- */

static char *g_stream;
static size_t g_stream_len, g_stream_cap;

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
  memcpy(g_stream + g_stream_len, line, len);
  g_stream_len += len;
  g_stream[g_stream_len] = '\0';
  return 0;
}

static const jw_exporter_vtable_t capture_vt = {.name = "capture", .export_line = capture_export};

static int exists(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return 0;
  fclose(f);
  return 1;
}

/* PATH or PATH.n; a path too long for buf is a broken test set-up. */
static void numbered(char *buf, size_t size, const char *path, unsigned n) {
  int w = n == 0 ? snprintf(buf, size, "%s", path) : snprintf(buf, size, "%s.%u", path, n);
  if (w < 0 || (size_t)w >= size) {
    fprintf(stderr, "test path too long: %s\n", path);
    abort();
  }
}

static void remove_all(const char *path) {
  char p[1100];
  unsigned i;
  for (i = 0; i <= 1100; i++) {
    numbered(p, sizeof(p), path, i);
    remove(p);
  }
}

/* ---- option parsing ------------------------------------------------------ */

static void expect_usage(const char *spec, const char *text) {
  jw_exporter_t *e = NULL;
  jw_error_t err;
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(spec, &e, &err), JW_EUSAGE);
  CHECK(e == NULL);
  CHECK_STR(err.text, text);
  if (e != NULL)
    jw_exporter_close(e);
}

static void test_options(const char *dir) {
  char spec[1200], path[1100];
  jw_exporter_t *e = NULL;
  jw_error_t err;

  expect_usage("file:x.jsonl,rotate=abc",
               "--export file:x.jsonl,rotate=abc: rotate: expected a size like \"64M\", at least "
               "1K, got \"abc\"");
  expect_usage("file:x.jsonl,rotate=0",
               "--export file:x.jsonl,rotate=0: rotate: expected a size like \"64M\", at least 1K, "
               "got \"0\"");
  expect_usage("file:x.jsonl,rotate=",
               "--export file:x.jsonl,rotate=: rotate: expected a size like \"64M\", at least 1K, "
               "got \"\"");
  expect_usage("file:x.jsonl,rotate=512",
               "--export file:x.jsonl,rotate=512: rotate: expected a size like \"64M\", at least "
               "1K, got \"512\"");
  expect_usage("file:x.jsonl,rotate=64M,keep=0",
               "--export file:x.jsonl,rotate=64M,keep=0: keep: expected a number from 1 to 1000, "
               "got \"0\"");
  expect_usage("file:x.jsonl,rotate=64M,keep=1001",
               "--export file:x.jsonl,rotate=64M,keep=1001: keep: expected a number from 1 to "
               "1000, got \"1001\"");
  expect_usage("file:x.jsonl,rotate=64M,keep=-1",
               "--export file:x.jsonl,rotate=64M,keep=-1: keep: expected a number from 1 to "
               "1000, got \"-1\"");
  expect_usage("file:x.jsonl,keep=3",
               "--export file:x.jsonl,keep=3: keep: only meaningful with rotate=SIZE");
  expect_usage("file:x.jsonl,color=red",
               "--export file:x.jsonl,color=red: unknown option 'color' (expected rotate=SIZE, "
               "keep=N, format=native|ecs|ocsf)");
  expect_usage("file:x.jsonl,rotate=1M,rotate=2M",
               "--export file:x.jsonl,rotate=1M,rotate=2M: rotate: given twice");
  expect_usage("file:x.jsonl,rotate=1M,",
               "--export file:x.jsonl,rotate=1M,: expected NAME=VALUE after ',', got \"\" "
               "(options: rotate=SIZE, keep=N, format=native|ecs|ocsf)");
  expect_usage("file:x.jsonl,rotate=1M,keep",
               "--export file:x.jsonl,rotate=1M,keep: keep: expected keep=N");
  expect_usage("file:x.jsonl,rotate=1M,keep=2,rotate=2M",
               "--export file:x.jsonl,rotate=1M,keep=2,rotate=2M: rotate: given twice");
  expect_usage("file:,rotate=1M", "--export file:,rotate=1M: expected file:PATH");
  CHECK(!exists("x.jsonl")); /* nothing was created by a refused SPEC */

  /* A comma is part of the path unless an option (NAME=) follows it. */
  snprintf(path, sizeof(path), "%s/unit-rotation,comma,1.jsonl.txt", dir);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  CHECK_INT(jw_exporter_open(spec, &e, &err), 0);
  jw_exporter_close(e);
  CHECK(exists(path));
  remove(path);
  snprintf(path, sizeof(path), "%s/unit-rotation,comma,2.jsonl.txt", dir);
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s,rotate=1M,keep=2", path);
  e = NULL;
  CHECK_INT(jw_exporter_open(spec, &e, &err), 0);
  jw_exporter_close(e);
  CHECK(exists(path));
  remove(path);

  /* Sizes in every accepted spelling. */
  snprintf(path, sizeof(path), "%s/unit-rotation-opts.jsonl.txt", dir);
  snprintf(spec, sizeof(spec), "file:%s,keep=1000,rotate=64KiB", path);
  e = NULL;
  CHECK_INT(jw_exporter_open(spec, &e, &err), 0);
  jw_exporter_close(e);
  remove(path);
}

/* ---- rotation ------------------------------------------------------------ */

static void make_event(jw_event_t *ev, int i, char *image, size_t image_size, size_t image_len) {
  memset(ev, 0, sizeof(*ev));
  ev->kind = i % 7 == 0 ? JW_EVENT_VIOLATION : JW_EVENT_PROCESS_START;
  ev->rule = i % 7 == 0 ? "image_denied" : "root_process";
  ev->action = i % 7 == 0 ? "reported" : "observed";
  ev->enforcer = "monitor";
  ev->source = "port";
  ev->severity = i % 7 == 0 ? JW_SEV_LOW : JW_SEV_INFO;
  ev->has_process = 1;
  ev->process.pid = 2000u + (uint32_t)i;
  ev->process.create_time = 133000000000000000ull + (uint64_t)i;
  if (image_len >= image_size)
    image_len = image_size - 1;
  memset(image, 'p', image_len);
  memcpy(image, "C:\\agent\\", 9);
  image[image_len] = '\0';
  ev->process.image = image;
  /* Lines of varying length. */
  snprintf(ev->message, sizeof(ev->message), "event %d %.*s", i, (i * 37) % 200,
           "................................................................"
           "................................................................"
           "................................................................"
           "........");
}

typedef struct {
  unsigned files; /* PATH.k ... PATH */
  int oldest_has_header;
  uint64_t first_seq;       /* seq of the first event kept */
  size_t oversized_checked; /* files holding a line larger than rotate */
} scan_t;

/* Reads PATH.keep ... PATH.1, PATH, checks every file, and returns the
 * concatenation of the event lines (new buffer). */
static char *scan_files(const char *path, unsigned max_n, uint64_t rotate, const char *run_id,
                        scan_t *sc, size_t *out_len) {
  char p[1100], prev[1100];
  char *all = NULL;
  size_t all_len = 0;
  unsigned n;
  int k;
  memset(sc, 0, sizeof(*sc));
  numbered(prev, sizeof(prev), path, 1);
  for (k = (int)max_n; k >= 0; k--) {
    size_t len = 0, events = 0, max_line = 0;
    char *data, *line, *nl;
    numbered(p, sizeof(p), path, (unsigned)k);
    data = jw_test_read_file(p, &len);
    if (data == NULL)
      continue;
    n = sc->files++;
    CHECK(len > 0 && data[len - 1] == '\n');
    for (line = data; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
      json_error_t jerr;
      size_t ll = (size_t)(nl - line) + 1;
      json_t *j = json_loadb(line, ll - 1, 0, &jerr);
      const char *event;
      CHECK(j != NULL);
      if (j == NULL)
        break;
      event = json_string_value(json_object_get(j, "event"));
      if (event != NULL && strcmp(event, "sandbox.log_continued") == 0) {
        /* Only as the first line, naming the next line's run and seq. */
        json_t *next;
        CHECK(line == data);
        CHECK_STR(json_string_value(json_object_get(j, "schema_version")), JW_SCHEMA_VERSION);
        CHECK_STR(json_string_value(json_object_get(j, "run_id")), run_id);
        CHECK_STR(json_string_value(json_object_get(j, "previous_file")), prev);
        CHECK_INT(json_object_size(j), 5);
        next = json_loadb(nl + 1, strcspn(nl + 1, "\n"), 0, &jerr);
        CHECK(next != NULL);
        if (next != NULL) {
          CHECK_INT(json_integer_value(json_object_get(j, "continues_at_seq")),
                    json_integer_value(json_object_get(next, "seq")));
          CHECK_STR(json_string_value(json_object_get(next, "run_id")), run_id);
        }
        json_decref(next);
        if (n == 0)
          sc->oldest_has_header = 1;
      } else {
        char *grown = realloc(all, all_len + ll + 1);
        CHECK(grown != NULL);
        if (grown == NULL) {
          json_decref(j);
          break;
        }
        all = grown;
        memcpy(all + all_len, line, ll);
        all_len += ll;
        all[all_len] = '\0';
        if (events == 0 && n == 0)
          sc->first_seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));
        events++;
        if (ll > max_line)
          max_line = ll;
      }
      json_decref(j);
    }
    /* Bounded by rotate, unless the file holds one single event. */
    if (len > rotate) {
      CHECK_INT(events, 1);
    }
    if (max_line > rotate) {
      CHECK_INT(events, 1);
      sc->oversized_checked++;
    }
    /* Every file but the newest was full: the next line did not fit. */
    free(data);
  }
  *out_len = all_len;
  return all;
}

static void run_rotation(const char *dir, const char *name, unsigned keep, int n_events,
                         unsigned expect_files) {
  char path[1100], spec[1200];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *fe = NULL, *cap;
  jw_error_t err;
  char *image = malloc(9000), *all;
  size_t all_len = 0;
  scan_t sc;
  const uint64_t rotate = 4096;
  int i;

  g_stream_len = 0;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  remove_all(path);
  CHECK_INT(jw_run_info_init(&run, "unit-rotation", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s,rotate=4K,keep=%u", path, keep);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_exporter_open(spec, &fe, &err), 0);
  if (em == NULL || fe == NULL || image == NULL) {
    fprintf(stderr, "cannot open %s: %s\n", spec, err.text);
    free(image);
    jw_emitter_free(em);
    return;
  }
  cap = calloc(1, sizeof(*cap));
  cap->vt = &capture_vt;
  jw__strlcpy(cap->spec, "capture", sizeof(cap->spec));
  CHECK_INT(jw_emitter_add(em, fe), 0);
  CHECK_INT(jw_emitter_add(em, cap), 0);
  for (i = 1; i <= n_events; i++) {
    jw_event_t ev;
    /* Two lines larger than rotate, one right after a rotation-sized run. */
    size_t image_len = i == 250 || i == 251 ? 6000 : 20 + (size_t)(i % 13) * 17;
    make_event(&ev, i, image, 9000, image_len);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  CHECK_U64(fe->written, (uint64_t)n_events);
  CHECK_U64(fe->lost, 0);
  jw_emitter_free(em);

  all = scan_files(path, keep + 2, rotate, run.run_id, &sc, &all_len);
  if (expect_files != 0)
    CHECK_INT(sc.files, expect_files);
  else
    CHECK(sc.files >= 20); /* ~200K in 4K files */
  /* keep honoured: nothing beyond PATH.keep. */
  numbered(spec, sizeof(spec), path, keep + 1);
  CHECK(!exists(spec));
  CHECK(all != NULL);
  if (all != NULL) {
    if (keep >= 1000) {
      /* Everything kept: the files are exactly the stream. */
      CHECK_INT(sc.oldest_has_header, 0);
      CHECK_U64(sc.first_seq, 1);
      CHECK_INT(all_len, g_stream_len);
      CHECK(all_len == g_stream_len && memcmp(all, g_stream, all_len) == 0);
      CHECK_INT(sc.oversized_checked, 2);
    } else {
      /* Older files deleted: the files are exactly the stream's tail. */
      CHECK_INT(sc.oldest_has_header, 1);
      CHECK(all_len < g_stream_len);
      CHECK(all_len <= g_stream_len &&
            memcmp(all, g_stream + g_stream_len - all_len, all_len) == 0);
      CHECK(all_len < g_stream_len && g_stream[g_stream_len - all_len - 1] == '\n');
    }
  }
  free(all);
  free(image);
  if (keep >= 1000)
    remove_all(path); /* ~100 files: only the keep=3 run is kept for the schema test */
}

/* A rename that fails (PATH.1 is a non-empty directory): every line still
 * lands in PATH, nothing is counted lost. */
static void test_rename_failure(const char *dir) {
  char path[1100], blocker[1100], inside[1200], spec[1200];
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *fe = NULL;
  jw_error_t err;
  char image[200], *data;
  size_t len = 0, lines = 0, i;
  FILE *f;

  snprintf(path, sizeof(path), "%s/unit-rotation-blocked.jsonl.txt", dir);
  numbered(blocker, sizeof(blocker), path, 1);
  snprintf(inside, sizeof(inside), "%s/keep-me", blocker);
  remove(path);
  remove(inside);
  RMDIR(blocker);
  CHECK_INT(MKDIR(blocker), 0);
  f = fopen(inside, "wb");
  CHECK(f != NULL);
  if (f != NULL)
    fclose(f);
  CHECK_INT(jw_run_info_init(&run, "unit-rotation", JW_TIER_NONE), 0);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  snprintf(spec, sizeof(spec), "file:%s,rotate=1K,keep=1", path);
  CHECK_INT(jw_exporter_open(spec, &fe, &err), 0);
  if (em == NULL || fe == NULL)
    return;
  CHECK_INT(jw_emitter_add(em, fe), 0);
  for (i = 1; i <= 20; i++) {
    jw_event_t ev;
    make_event(&ev, (int)i, image, sizeof(image), 60);
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  CHECK_U64(fe->lost, 0);
  jw_emitter_free(em);
  data = jw_test_read_file(path, &len);
  CHECK(data != NULL);
  for (i = 0; data != NULL && i < len; i++)
    lines += data[i] == '\n';
  CHECK_INT(lines, 20);
  CHECK(data == NULL || strstr(data, "log_continued") == NULL);
  free(data);
  CHECK(exists(inside));
  remove(inside);
  RMDIR(blocker);
  remove(path);
}

static const char *g_out = ".";

static void test_options_case(void) {
  test_options(g_out);
}

/* keep=1000: every file kept; ~500 events of 300-700 bytes in 4K files. */
static void test_rotation_keep_all(void) {
  run_rotation(g_out, "unit-rotation-all.jsonl.txt", 1000, 500, 0);
}

/* keep=3: PATH.3, PATH.2, PATH.1 and PATH, nothing older. */
static void test_rotation_keep_3(void) {
  run_rotation(g_out, "unit-rotation.jsonl.txt", 3, 500, 4);
}

static void test_rename_failure_case(void) {
  test_rename_failure(g_out);
}

/* Runnable one by one: `test_file_rotation DATA OUT --case rotation_keep_3`. */
static const jw_test_case_t cases[] = {
    {"options", test_options_case, 30},
    {"rotation_keep_all", test_rotation_keep_all, 30},
    {"rotation_keep_3", test_rotation_keep_3, 30},
    {"rename_failure", test_rename_failure_case, 30},
};

int main(int argc, char **argv) {
  int rc;
  g_out = jw_test_arg(argc, argv, 2, ".");
  rc = jw_test_run_cases("file_rotation", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
  free(g_stream);
  return rc;
}

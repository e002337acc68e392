/* unit: forward-secure sealing and `verify` (src/seal.c, src/verify.c).
 * A key file is created owner-only and never overwritten; a damaged key
 * file is refused with a message that says what is wrong. A sealed record
 * written through the emitter and the file exporter verifies intact (in
 * one file and rotated over several, given in any order), and every kind
 * of damage made to it is found and named at the right line: modified,
 * inserted (an unsealed line, a forged valid-looking line, a replayed
 * line), deleted, reordered, truncated, spliced from another run, key
 * mismatch. Whoever holds the chain at line N (the state of a jobwarden
 * taken over there) cannot reseal an earlier line. A write that fails
 * leaves no hole in the chain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#ifndef _WIN32
#include <sys/stat.h>
#endif

#include "commands.h"
#include "harness.h"
#include "internal.h"
#include "parts.h"
#include "seal.h"
#include "test_util.h"

static const char *g_dir;

static void path_of(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_dir, name);
}

/* ---- records ------------------------------------------------------------ */

/* Writes a sealed record of `n` events (job_start, n-2 violations,
 * job_end unless `no_end`) to `file` with `key`; *run_id receives the run. */
static void write_record(const char *spec, const jw_seal_key_t *key, int n, int no_end,
                         char run_id[33]) {
  jw_run_info_t run;
  jw_emitter_t *em = NULL;
  jw_exporter_t *exp = NULL;
  jw_error_t err;
  int i;
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_run_info_init(&run, "seal-test", JW_TIER_NONE), 0);
  memcpy(run_id, run.run_id, 33);
  CHECK_INT(jw_emitter_new(&run, &em), 0);
  CHECK_INT(jw_exporter_open(spec, &exp, &err), 0);
  CHECK_INT(jw_seal_new(key, run.run_id, "0", &exp->seal), 0);
  CHECK_INT(jw_emitter_add(em, exp), 0);
  for (i = 0; i < n; i++) {
    jw_event_t ev;
    if (i == 0)
      jw_event_init(&ev, JW_EVENT_JOB_START, "job", "observed", NULL, "jobwarden", JW_SEV_INFO);
    else if (i == n - 1 && !no_end)
      jw_event_init(&ev, JW_EVENT_JOB_END, "job", "observed", NULL, "jobwarden", JW_SEV_INFO);
    else {
      jw_event_init(&ev, JW_EVENT_NOTICE, "sink_failed", "degraded", "monitor", "jobwarden",
                    JW_SEV_HIGH);
      snprintf(ev.message, sizeof(ev.message),
               "event number %d of the sealed record, padded "
               "to make lines long enough for a rotation: %080d",
               i, i);
    }
    CHECK_INT(jw_emit(em, &ev), 0);
  }
  jw_emitter_free(em);
}

/* verify's document for one file. */
static json_t *verify1(const char *path, const jw_seal_key_t *key) {
  const char *files[1];
  char why[512];
  files[0] = path;
  return jw_verify_files(files, 1, key, why, sizeof(why));
}

/* The first damage of `path` is `kind` at `line` (or, for a missing line,
 * before/after that line: `where`). */
static void expect_damage(const char *path, const jw_seal_key_t *key, const char *kind,
                          const char *where, long line) {
  json_t *doc = verify1(path, key), *d;
  CHECK(doc != NULL);
  if (doc == NULL)
    return;
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "damaged");
  d = json_object_get(doc, "first_damage");
  CHECK_STR(json_string_value(json_object_get(d, "kind")), kind);
  if (where != NULL)
    d = json_object_get(d, where);
  CHECK_INT(json_integer_value(json_object_get(d, "line")), line);
  CHECK_STR(json_string_value(json_object_get(d, "file")), path);
  if (jw_test_failures > 0 && getenv("JW_TEST_VERBOSE")) {
    char *t = json_dumps(doc, JSON_INDENT(2));
    fprintf(stderr, "%s\n", t);
    free(t);
  }
  json_decref(doc);
}

/* `path` verifies intact with `n` duplicate lines, the first of them at
 * line `line`, a copy of line `first`. */
static void expect_duplicates(const char *path, const jw_seal_key_t *key, int n, long line,
                              long first) {
  json_t *doc = verify1(path, key), *s, *d;
  CHECK(doc != NULL);
  if (doc == NULL)
    return;
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
  CHECK(json_object_get(doc, "first_damage") == NULL);
  CHECK_INT(json_integer_value(json_object_get(doc, "duplicates")), n);
  s = json_array_get(json_object_get(doc, "streams"), 0);
  CHECK_STR(json_string_value(json_object_get(s, "verdict")), "intact");
  CHECK_INT(json_array_size(json_object_get(s, "damage")), 0);
  CHECK_INT(json_array_size(json_object_get(s, "duplicates")), n);
  d = json_array_get(json_object_get(s, "duplicates"), 0);
  CHECK_STR(json_string_value(json_object_get(d, "kind")), "duplicate");
  CHECK_STR(json_string_value(json_object_get(d, "file")), path);
  CHECK_INT(json_integer_value(json_object_get(d, "line")), line);
  CHECK_INT(json_integer_value(json_object_get(json_object_get(d, "first"), "line")), first);
  CHECK_STR(json_string_value(json_object_get(json_object_get(d, "first"), "file")), path);
  json_decref(doc);
}

/* ---- key files ------------------------------------------------------------ */

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
}

static void test_key_files(void) {
  jw_seal_key_t k, r;
  jw_error_t err;
  char path[1024], bad[1024], want[1400];
  path_of(path, sizeof(path), "unit-seal.key.txt");
  remove(path);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw_seal_key_generate(&k), 0);
  CHECK_INT((int)strlen(k.key_id), 32);
  CHECK_INT(jw_seal_key_write(path, &k, &err), 0);
#ifndef _WIN32
  {
    struct stat sb;
    CHECK_INT(stat(path, &sb), 0);
    CHECK_INT(sb.st_mode & 0777, 0600); /* owner-only, whatever the umask */
  }
#endif
  /* Never overwritten. */
  CHECK_INT(jw_seal_key_write(path, &k, &err), JW_EEXIST);
  CHECK_CONTAINS(err.text, "(a key file is never overwritten)");
  CHECK_INT(jw_seal_key_read(path, &r, &err), 0);
  CHECK(memcmp(r.master, k.master, sizeof(k.master)) == 0);
  CHECK_STR(r.key_id, k.key_id);

  path_of(bad, sizeof(bad), "unit-seal-bad.key.txt");
  write_text(bad, "not json\n");
  CHECK_INT(jw_seal_key_read(bad, &r, &err), JW_EINVAL);
  snprintf(want, sizeof(want),
           "%s: not a jobwarden seal key (expected the JSON line that 'jobwarden seal-key new' "
           "writes)",
           bad);
  CHECK_STR(err.text, want);
  write_text(bad, "{\"jobwarden_seal_key\":2,\"key\":\"00\"}\n");
  CHECK_INT(jw_seal_key_read(bad, &r, &err), JW_EINVAL);
  snprintf(want, sizeof(want),
           "%s: jobwarden_seal_key: expected version 1 (a key of another version or not a key "
           "file)",
           bad);
  CHECK_STR(err.text, want);
  write_text(bad, "{\"jobwarden_seal_key\":1,\"key\":\"zz\",\"key_id\":\"x\"}\n");
  CHECK_INT(jw_seal_key_read(bad, &r, &err), JW_EINVAL);
  snprintf(want, sizeof(want), "%s: key: expected 64 hex digits", bad);
  CHECK_STR(err.text, want);
  {
    /* A key whose id was edited (another key's id pasted in). */
    char text[256];
    jw_seal_key_t other;
    CHECK_INT(jw_seal_key_generate(&other), 0);
    jw_seal_key_text(&k, text, sizeof(text));
    memcpy(strstr(text, k.key_id), other.key_id, 32);
    write_text(bad, text);
    CHECK_INT(jw_seal_key_read(bad, &r, &err), JW_EINVAL);
    snprintf(want, sizeof(want), "%s: key_id does not belong to the key (the file was edited)",
             bad);
    CHECK_STR(err.text, want);
  }
  path_of(bad, sizeof(bad), "unit-seal-missing.key.txt");
  remove(bad);
  CHECK_INT(jw_seal_key_read(bad, &r, &err), JW_ENOENT);
  CHECK_CONTAINS(err.text, "cannot open the key file");
}

/* ---- the chain ------------------------------------------------------------ */

static void test_intact_and_damage(void) {
  jw_seal_key_t key, other;
  char spec[1200], path[1024], copy[1024], other_path[1024], run_id[33], run2[33];
  jw_test_lines_t l, o;
  json_t *doc, *s;
  char *saved;

  CHECK_INT(jw_seal_key_generate(&key), 0);
  CHECK_INT(jw_seal_key_generate(&other), 0);
  /* The record's key beside it: wine.seal.records verifies it too. */
  path_of(path, sizeof(path), "unit-seal.key");
  remove(path);
  CHECK_INT(jw_seal_key_write(path, &key, NULL), 0);
  path_of(path, sizeof(path), "unit-seal.jsonl");
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  write_record(spec, &key, 8, 0, run_id);

  doc = verify1(path, &key);
  CHECK(doc != NULL);
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
  s = json_array_get(json_object_get(doc, "streams"), 0);
  CHECK_INT(json_array_size(json_object_get(doc, "streams")), 1);
  CHECK_STR(json_string_value(json_object_get(s, "run_id")), run_id);
  CHECK_STR(json_string_value(json_object_get(s, "stream")), "0");
  CHECK_INT(json_integer_value(json_object_get(s, "lines")), 8);
  CHECK_INT(json_integer_value(json_object_get(s, "first_index")), 0);
  CHECK_INT(json_integer_value(json_object_get(s, "last_index")), 7);
  CHECK(json_is_true(json_object_get(s, "complete")));
  json_decref(doc);

  jw_test_lines_read(path, &l);
  CHECK_INT(l.n, 8);
  if (l.n != 8)
    return;
  /* The first line states the chain; the others do not; the last ends it. */
  CHECK_CONTAINS(l.l[0], ",\"seal\":{\"v\":1,\"alg\":\"blake2b-256\",\"key_id\":\"");
  CHECK(strstr(l.l[3], "\"v\":1") == NULL);
  CHECK_CONTAINS(l.l[7], "\"i\":7,\"end\":true,\"mac\":\"");

  /* As a syslog collector keeps it: a header before every message. */
  {
    char *with[8];
    size_t i;
    json_t *d;
    for (i = 0; i < 8; i++) {
      with[i] = malloc(strlen(l.l[i]) + 80);
      sprintf(with[i], "<134>1 2026-12-02T07:00:00Z vm jobwarden 42 sandbox.x - %s", l.l[i]);
    }
    path_of(copy, sizeof(copy), "unit-seal-syslog.jsonl.txt");
    jw_test_lines_write(copy, with, 8);
    d = verify1(copy, &key);
    CHECK_STR(json_string_value(json_object_get(d, "verdict")), "intact");
    json_decref(d);
    memcpy(strstr(with[5], "event number 5"), "EVENT", 5);
    jw_test_lines_write(copy, with, 8);
    expect_damage(copy, &key, "modified", NULL, 6);
    for (i = 0; i < 8; i++)
      free(with[i]);
  }

  path_of(copy, sizeof(copy), "unit-seal-damaged.jsonl.txt");
  /* modified: one byte of line 4's message. */
  {
    char *p = strstr(l.l[3], "event number 3");
    p[13] = '4';
    jw_test_lines_write(copy, l.l, l.n);
    expect_damage(copy, &key, "modified", NULL, 4);
    p[13] = '3';
  }
  /* deleted: line 4 gone. */
  saved = l.l[3];
  l.l[3] = NULL;
  jw_test_lines_write(copy, l.l, l.n);
  expect_damage(copy, &key, "deleted", "before", 4); /* the line that is now 4th */
  l.l[3] = saved;
  /* inserted: a line without a seal, after line 2. */
  {
    char *ins[9];
    memcpy(ins, l.l, 2 * sizeof(char *));
    ins[2] = "{\"schema_version\":\"2.0.0\",\"event\":\"sandbox.notice\",\"seq\":3}";
    memcpy(ins + 3, l.l + 2, 6 * sizeof(char *));
    jw_test_lines_write(copy, ins, 9);
    expect_damage(copy, &key, "inserted", NULL, 3);
    /* a forged, valid-looking line: line 3 with another message and the
     * seal of index 2 with a made-up MAC */
    ins[2] = strdup(l.l[2]);
    memcpy(strstr(ins[2], "event number 2"), "EVENT", 5);
    memset(strstr(ins[2], "\"mac\":\"") + 7, 'a', 64);
    jw_test_lines_write(copy, ins, 9);
    expect_damage(copy, &key, "inserted", NULL, 3);
    /* a line played twice, byte for byte (at-least-once delivery): a
     * duplicate, not damage */
    free(ins[2]);
    ins[2] = l.l[1];
    jw_test_lines_write(copy, ins, 9);
    expect_duplicates(copy, &key, 1, 3, 2);
  }
  /* reordered: lines 4 and 5 swapped. */
  saved = l.l[3];
  l.l[3] = l.l[4];
  l.l[4] = saved;
  jw_test_lines_write(copy, l.l, l.n);
  expect_damage(copy, &key, "reordered", NULL, 5);
  l.l[4] = l.l[3];
  l.l[3] = saved;
  /* truncated: the closing line cut off. */
  jw_test_lines_write(copy, l.l, l.n - 1);
  expect_damage(copy, &key, "truncated", "after", 7);
  /* key mismatch: the right record, the wrong key. */
  expect_damage(path, &other, "key_mismatch", NULL, 1);
  /* spliced: line 4 replaced by line 4 of another run sealed with the same
   * key. */
  path_of(other_path, sizeof(other_path), "unit-seal-other.jsonl.txt");
  remove(other_path);
  snprintf(spec, sizeof(spec), "file:%s", other_path);
  write_record(spec, &key, 8, 0, run2);
  jw_test_lines_read(other_path, &o);
  CHECK_INT(o.n, 8);
  if (o.n == 8) {
    saved = l.l[3];
    l.l[3] = o.l[3];
    jw_test_lines_write(copy, l.l, l.n);
    expect_damage(copy, &key, "spliced", NULL, 4);
    l.l[3] = saved;
  }
  jw_test_lines_free(&o);

  /* Forward security: whoever holds the chain after line 5 (k5, M4) and
   * rewrites line 4 with it gets nothing that verifies. */
  {
    jw_seal_t *ch = NULL;
    char *line = NULL, *forged = NULL, *cut;
    size_t flen = 0;
    int i;
    CHECK_INT(jw_seal_new(&key, run_id, "0", &ch), 0);
    /* Walk the genuine chain up to line 5 (the state at that moment). */
    for (i = 0; i < 5; i++) {
      char *tmp = NULL;
      size_t tl = 0;
      line = strdup(l.l[i]);
      cut = strstr(line, ",\"seal\":{");
      strcpy(cut, "}");
      CHECK_INT(jw_seal_line(ch, line, strlen(line), 0, &tmp, &tl), 0);
      jw_seal_commit(ch);
      CHECK_STR(tmp, l.l[i]); /* the same chain gives the same lines */
      free(tmp);
      free(line);
    }
    line = strdup(l.l[3]);
    cut = strstr(line, ",\"seal\":{");
    strcpy(cut, "}");
    memcpy(strstr(line, "event number 3"), "EVENT", 5);
    CHECK_INT(jw_seal_line(ch, line, strlen(line), 0, &forged, &flen), 0);
    /* it claims index 5; renumbered to 3 it is still the wrong MAC */
    {
      char *p = strstr(forged, "\"i\":5,");
      p[4] = '3';
    }
    saved = l.l[3];
    l.l[3] = forged;
    jw_test_lines_write(copy, l.l, l.n);
    expect_damage(copy, &key, "modified", NULL, 4);
    l.l[3] = saved;
    free(forged);
    free(line);
    jw_seal_free(ch);
  }
  jw_test_lines_free(&l);
}

/* ---- continuation records and lines delivered twice ------------------------ */

typedef struct {
  char *l[400];
  size_t n;
} out_t;

static int out_add(void *ctx, const char *line, size_t len) {
  out_t *o = ctx;
  if (o->n >= 400)
    return JW_ENOMEM;
  o->l[o->n] = malloc(len + 1);
  memcpy(o->l[o->n], line, len + 1);
  o->n++;
  return 0;
}

static void out_copy(out_t *o, const char *line) {
  out_add(o, line, strlen(line));
}

/* Appends `line` split into part records of at most `max` bytes (its
 * run_id and seq read from it); returns how many. */
static size_t out_split(out_t *o, const char *line, size_t max) {
  json_t *j = json_loads(line, 0, NULL);
  size_t before = o->n;
  CHECK_INT(
      jw__parts_split(line, strlen(line), max, json_string_value(json_object_get(j, "run_id")),
                      (uint64_t)json_integer_value(json_object_get(j, "seq")), out_add, o, NULL),
      0);
  json_decref(j);
  return o->n - before;
}

/* The first ASCII letter of a part record's data that is not part of an
 * escape: flipping its case makes other data and still a valid part,
 * wherever the cuts fall (they move with the line's length, which differs
 * between builds). */
static char *data_letter(char *part) {
  char *at = strstr(part, "\"data\":\"");
  if (at == NULL)
    return NULL;
  for (at += 8; *at != '\0' && *at != '"'; at++) {
    if (*at == '\\') /* \X, or \uXXXX */
      at += at[1] == 'u' ? 5 : 1;
    else if ((*at >= 'a' && *at <= 'z') || (*at >= 'A' && *at <= 'Z'))
      return at;
  }
  return NULL;
}

static void out_free(out_t *o) {
  size_t i;
  for (i = 0; i < o->n; i++)
    free(o->l[i]);
  o->n = 0;
}

/* A sealed record as a collector with a size limit keeps it: line 1 (the
 * chain's parameters) and line 5 split into continuation records. It
 * verifies intact, also with headers and with parts in any order. A part
 * missing, damaged or contradicted is named; a part's data changed is the
 * line modified, at its first part. A resend — whole lines or all the
 * parts of one — is `duplicate`, not damage. */
static void test_parts_and_resends(void) {
  jw_seal_key_t key;
  char spec[1200], path[1024], copy[1024], run_id[33], want[2000];
  jw_test_lines_t l;
  out_t o;
  json_t *doc, *d, *inc;
  size_t k1, k5, i, at5;

  memset(&o, 0, sizeof(o));
  CHECK_INT(jw_seal_key_generate(&key), 0);
  path_of(path, sizeof(path), "unit-seal-parts.jsonl.txt");
  remove(path);
  snprintf(spec, sizeof(spec), "file:%s", path);
  write_record(spec, &key, 8, 0, run_id);
  jw_test_lines_read(path, &l);
  CHECK_INT(l.n, 8);
  if (l.n != 8)
    return;
  path_of(copy, sizeof(copy), "unit-seal-parts-copy.jsonl.txt");

  /* Intact: lines 1 and 5 split. */
  k1 = out_split(&o, l.l[0], 300);
  for (i = 1; i < 4; i++)
    out_copy(&o, l.l[i]);
  at5 = o.n; /* where line 5's parts start (0-based) */
  k5 = out_split(&o, l.l[4], JW_PARTS_MIN_MAX);
  for (i = 5; i < 8; i++)
    out_copy(&o, l.l[i]);
  CHECK(k1 >= 3 && k5 >= 4);
  jw_test_lines_write(copy, o.l, o.n);
  doc = verify1(copy, &key);
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
  d = json_array_get(json_object_get(doc, "streams"), 0);
  CHECK_INT(json_integer_value(json_object_get(d, "lines")), 8);
  CHECK(json_is_true(json_object_get(d, "complete")));
  d = json_array_get(json_object_get(doc, "files"), 0);
  CHECK_INT(json_integer_value(json_object_get(d, "lines")), (long long)o.n);
  CHECK_INT(json_integer_value(json_object_get(d, "parts")), (long long)(k1 + k5));
  CHECK_INT(json_integer_value(json_object_get(d, "unsealed")), 0);
  CHECK_INT(json_array_size(json_object_get(doc, "incomplete")), 0);
  CHECK_INT(json_integer_value(json_object_get(doc, "duplicates")), 0);
  json_decref(doc);

  /* With a collector's header before every line, and line 5's parts in
   * reverse order. */
  {
    out_t h;
    memset(&h, 0, sizeof(h));
    for (i = 0; i < o.n; i++) {
      size_t src = i >= at5 && i < at5 + k5 ? at5 + (at5 + k5 - 1 - i) : i;
      char *t = malloc(strlen(o.l[src]) + 100);
      sprintf(t, "<134>1 2026-12-02T07:00:%02luZ vm jobwarden 42 sandbox - %s", (unsigned long)i,
              o.l[src]);
      out_copy(&h, t);
      free(t);
    }
    jw_test_lines_write(copy, h.l, h.n);
    doc = verify1(copy, &key);
    CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
    json_decref(doc);
    out_free(&h);
  }

  /* A part missing: line 5 is incomplete (listed) and its chain shows it
   * deleted, before line 6. */
  {
    char *saved = o.l[at5 + 1];
    memmove(o.l + at5 + 1, o.l + at5 + 2, (o.n - at5 - 2) * sizeof(char *));
    jw_test_lines_write(copy, o.l, o.n - 1);
    expect_damage(copy, &key, "deleted", "before", (long)(at5 + k5)); /* line 6, now */
    doc = verify1(copy, &key);
    inc = json_array_get(json_object_get(doc, "incomplete"), 0);
    CHECK_INT(json_array_size(json_object_get(doc, "incomplete")), 1);
    CHECK_STR(json_string_value(json_object_get(inc, "run_id")), run_id);
    CHECK_INT(json_integer_value(json_object_get(inc, "seq")), 5);
    CHECK_STR(json_string_value(json_object_get(inc, "file")), copy);
    CHECK_INT(json_integer_value(json_object_get(inc, "line")), (long long)at5 + 1);
    CHECK_INT(json_integer_value(json_object_get(inc, "parts_read")), (long long)k5 - 1);
    CHECK_INT(json_integer_value(json_object_get(inc, "parts")), (long long)k5);
    CHECK_INT(json_integer_value(json_object_get(inc, "first_missing")), 2);
    json_decref(doc);
    memmove(o.l + at5 + 2, o.l + at5 + 1, (o.n - at5 - 2) * sizeof(char *));
    o.l[at5 + 1] = saved;
  }
  /* A part whose data was changed (still a valid part): the line put
   * together is not the line of its parts' digest, and is dropped:
   * modified, at its first part, with the reason. */
  {
    char *p = data_letter(o.l[at5 + 1]);
    CHECK(p != NULL);
    if (p != NULL) {
      *p ^= 0x20;
      jw_test_lines_write(copy, o.l, o.n);
      expect_damage(copy, &key, "modified", NULL, (long)at5 + 1);
      doc = verify1(copy, &key);
      d = json_object_get(doc, "first_damage");
      CHECK_INT(json_integer_value(json_object_get(d, "parts")), (long long)k5);
      CHECK_INT(json_integer_value(json_object_get(d, "seq")), 5);
      snprintf(want, sizeof(want),
               "parts of run %s seq 5 (digest %.12s, limit %d) put together are not the line of "
               "their \"digest\"",
               run_id,
               strstr(o.l[at5], "\"digest\":\"") ? strstr(o.l[at5], "\"digest\":\"") + 10 : "",
               JW_PARTS_MIN_MAX);
      CHECK_CONTAINS(json_string_value(json_object_get(d, "detail")), want);
      json_decref(doc);
      *p ^= 0x20;
    }
  }
  /* A part damaged (not JSON): modified there, with the reason. */
  {
    char *saved = o.l[at5 + 2];
    o.l[at5 + 2] = strdup(saved);
    o.l[at5 + 2][strlen(saved) - 1] = ' ';
    jw_test_lines_write(copy, o.l, o.n);
    expect_damage(copy, &key, "modified", NULL, (long)at5 + 3);
    doc = verify1(copy, &key);
    d = json_object_get(doc, "first_damage");
    CHECK_CONTAINS(json_string_value(json_object_get(d, "detail")),
                   "a damaged part record: not JSON: ");
    CHECK_INT(json_array_size(json_object_get(doc, "incomplete")), 1);
    json_decref(doc);
    free(o.l[at5 + 2]);
    o.l[at5 + 2] = saved;
  }
  /* A second part 2 with other data after the genuine one: inserted,
   * naming the one kept; the line itself is whole and verifies. */
  {
    out_t c;
    memset(&c, 0, sizeof(c));
    for (i = 0; i < o.n; i++) {
      out_copy(&c, o.l[i]);
      if (i == at5 + 1) {
        out_copy(&c, o.l[i]);
        char *at = data_letter(c.l[c.n - 1]);
        CHECK(at != NULL);
        if (at != NULL)
          *at ^= 0x20;
      }
    }
    jw_test_lines_write(copy, c.l, c.n);
    expect_damage(copy, &key, "inserted", NULL, (long)at5 + 3);
    doc = verify1(copy, &key);
    d = json_object_get(doc, "first_damage");
    {
      /* The line's name carries its digest (from its parts) and limit. */
      const char *dg = strstr(o.l[at5], "\"digest\":\"");
      CHECK(dg != NULL);
      snprintf(want, sizeof(want),
               "a continuation record that contradicts the one kept (%s:%lu): part 2 of %lu of run "
               "%s seq 5 (digest %.12s, limit %d) differs from the part 2 read before",
               copy, (unsigned long)at5 + 2, (unsigned long)k5, run_id, dg != NULL ? dg + 10 : "",
               JW_PARTS_MIN_MAX);
    }
    CHECK_STR(json_string_value(json_object_get(d, "detail")), want);
    d = json_array_get(json_object_get(doc, "streams"), 0);
    CHECK_INT(json_array_size(json_object_get(d, "damage")), 1);
    json_decref(doc);
    out_free(&c);
  }
  /* A resend: all the parts of line 5 again after the last line, and
   * lines 3 to 4 again with other headers. Duplicates, intact. */
  {
    out_t c;
    memset(&c, 0, sizeof(c));
    for (i = 0; i < o.n; i++)
      out_copy(&c, o.l[i]);
    for (i = at5; i < at5 + k5; i++)
      out_copy(&c, o.l[i]);
    for (i = 2; i < 4; i++) {
      char *t = malloc(strlen(l.l[i]) + 100);
      sprintf(t, "<134>1 2026-12-02T08:00:00Z vm jobwarden 42 sandbox - %s", l.l[i]);
      out_copy(&c, t);
      free(t);
    }
    jw_test_lines_write(copy, c.l, c.n);
    /* in the order of the file: line 5's parts, then lines 3 and 4 */
    expect_duplicates(copy, &key, 3, (long)o.n + 1, (long)at5 + 1);
    doc = verify1(copy, &key);
    d = json_object_get(json_array_get(json_object_get(doc, "streams"), 0), "duplicates");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(d, 0), "parts")), (long long)k5);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(d, 0), "seq")), 5);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(d, 2), "line")),
              (long long)(o.n + k5 + 2));
    CHECK_INT(
        json_integer_value(json_object_get(json_object_get(json_array_get(d, 2), "first"), "line")),
        (long long)k1 + 3);
    json_decref(doc);
    out_free(&c);
  }
  out_free(&o);
  jw_test_lines_free(&l);
}

/* A rotated record: files given newest first still verify; one file
 * missing from the middle is a deletion. */
static void test_rotation(void) {
  jw_seal_key_t key;
  char spec[1200], path[1024], p1[1100], p2[1100], run_id[33];
  const char *files[8];
  char why[512];
  json_t *doc;
  int i, n = 0;
  CHECK_INT(jw_seal_key_generate(&key), 0);
  path_of(path, sizeof(path), "unit-seal-rot.key");
  remove(path);
  CHECK_INT(jw_seal_key_write(path, &key, NULL), 0);
  path_of(path, sizeof(path), "unit-seal-rot.jsonl");
  for (i = 0; i <= 9; i++) {
    snprintf(p1, sizeof(p1), i ? "%s.%d" : "%s", path, i);
    remove(p1);
  }
  snprintf(spec, sizeof(spec), "file:%s,rotate=16K,keep=9", path);
  write_record(spec, &key, 40, 0, run_id);
  files[n++] = path;
  for (i = 1; i <= 9; i++) {
    FILE *f;
    snprintf(p1, sizeof(p1), "%s.%d", path, i);
    f = fopen(p1, "rb");
    if (f == NULL)
      break;
    fclose(f);
    files[n++] = strdup(p1);
  }
  CHECK(n >= 3);
  doc = jw_verify_files(files, n, &key, why, sizeof(why));
  CHECK_STR(json_string_value(json_object_get(doc, "verdict")), "intact");
  CHECK_INT(json_integer_value(
                json_object_get(json_array_get(json_object_get(doc, "streams"), 0), "lines")),
            40 + (n - 1)); /* each rotated file starts with its log_continued line */
  json_decref(doc);
  /* The middle file left out. */
  if (n >= 3) {
    const char *some[8];
    int k = 0;
    for (i = 0; i < n; i++)
      if (i != 1)
        some[k++] = files[i];
    doc = jw_verify_files(some, k, &key, why, sizeof(why));
    CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "first_damage"), "kind")),
              "deleted");
    json_decref(doc);
  }
  /* A rotated file starts with a continuation line that states the chain. */
  {
    jw_test_lines_t l;
    snprintf(p2, sizeof(p2), "%s.1", path);
    jw_test_lines_read(p2, &l);
    CHECK(l.n > 0);
    if (l.n > 0) {
      CHECK_CONTAINS(l.l[0], "\"event\":\"sandbox.log_continued\"");
      CHECK_CONTAINS(l.l[0], ",\"seal\":{\"v\":1,");
    }
    jw_test_lines_free(&l);
  }
  for (i = 1; i < n; i++)
    free((char *)files[i]);
}

/* A sink whose first write fails: the line is lost (its gap record says
 * so), the chain is not: the next line takes index 0. */
static int g_fail_next = 1;
static char g_written[8192];
static int flaky_export(jw_exporter_t *self, const char *line, size_t len, const jw_event_t *ev,
                        jw_error_t *err) {
  (void)self;
  (void)ev;
  if (g_fail_next) {
    g_fail_next = 0;
    return jw_error_set(err, JW_EIO, 0, "flaky", "first write fails");
  }
  if (strlen(g_written) + len < sizeof(g_written))
    strncat(g_written, line, len);
  return 0;
}
static const jw_exporter_vtable_t flaky_vt = {.name = "flaky", .export_line = flaky_export};

static void test_failed_write(void) {
  jw_seal_key_t key;
  jw_exporter_t *exp = calloc(1, sizeof(*exp));
  jw_run_info_t run;
  jw_error_t err;
  CHECK_INT(jw_seal_key_generate(&key), 0);
  CHECK_INT(jw_run_info_init(&run, "seal-flaky", JW_TIER_NONE), 0);
  exp->vt = &flaky_vt;
  CHECK_INT(jw_seal_new(&key, run.run_id, "0", &exp->seal), 0);
  memset(&err, 0, sizeof(err));
  CHECK_INT(jw__exporter_write(exp, "{\"a\":1}\n", 8, NULL, &err), JW_EIO);
  CHECK_INT(jw__exporter_write(exp, "{\"a\":2}\n", 8, NULL, &err), 0);
  CHECK_CONTAINS(g_written, "{\"a\":2,\"seal\":{\"v\":1,");
  CHECK_CONTAINS(g_written, "\"i\":0,\"mac\":\"");
  CHECK_INT(jw_seal_next_index(exp->seal), 1);
  /* Not a JSON object line: refused, the chain stays. */
  CHECK_INT(jw__exporter_write(exp, "plain text\n", 11, NULL, &err), JW_EINVAL);
  CHECK_INT(jw_seal_next_index(exp->seal), 1);
  jw_seal_free(exp->seal);
  free(exp);
}

/* The policy's "seal" and the flags that set it. */
static void test_policy(void) {
  jw_policy_t p;
  jw_error_t err;
  static const char both[] = "{\"seal\":{\"new_key\":\"a.key\",\"existing_key\":\"b.key\"}}";
  static const char empty[] = "{\"seal\":{}}";
  static const char wrong[] = "{\"seal\":{\"key\":\"a\"}}";
  static const char bad[] = "{\"seal\":{\"new_key\":\"\"}}";
  static const char good[] = "{\"seal\":{\"existing_key\":\"C:\\\\keys\\\\run.key\"}}";
  memset(&err, 0, sizeof(err));
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse(&p, good, strlen(good), "p.json", &err), 0);
  CHECK_STR(p.seal_key, "C:\\keys\\run.key");
  CHECK_INT(p.seal_key_existing, 1);
  /* A flag over the file: the later setting wins. */
  CHECK_INT(jw_policy_set(&p, "seal_key", "new.key", "--seal-key", &err), 0);
  CHECK_STR(p.seal_key, "new.key");
  CHECK_INT(p.seal_key_existing, 0);
  jw_policy_init(&p);
  CHECK_INT(jw_policy_parse(&p, both, strlen(both), "p.json", &err), JW_EPOLICY);
  CHECK_STR(err.text, "p.json: seal.existing_key: give new_key or existing_key, not both");
  CHECK_INT(jw_policy_parse(&p, empty, strlen(empty), "p.json", &err), JW_EPOLICY);
  CHECK_STR(err.text, "p.json: seal: expected new_key or existing_key");
  CHECK_INT(jw_policy_parse(&p, wrong, strlen(wrong), "p.json", &err), JW_EPOLICY);
  CHECK_STR(err.text, "p.json: seal.key: unknown key (known: new_key, existing_key)");
  CHECK_INT(jw_policy_parse(&p, bad, strlen(bad), "p.json", &err), JW_EPOLICY);
  CHECK_CONTAINS(err.text, "p.json: seal.new_key: expected a file path of 1 to 1023 bytes");
}

/* Runnable one by one: `test_seal DATA OUT --case policy`. */
static const jw_test_case_t cases[] = {
    {"policy", test_policy, 30},
    {"key_files", test_key_files, 30},
    {"intact_and_damage", test_intact_and_damage, 30},
    {"rotation", test_rotation, 30},
    {"parts_and_resends", test_parts_and_resends, 30},
    {"failed_write", test_failed_write, 30},
};

int main(int argc, char **argv) {
  g_dir = jw_test_arg(argc, argv, 2, ".");
  return jw_test_run_cases("seal", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

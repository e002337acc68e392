/* `jobwarden verify` and `jobwarden seal-key`: checks sealed records
 * against the key holder's copy of the key (src/seal.h has the chain).
 *
 * The files are read whole; every line is an entry: where it is (file,
 * line), what its seal claims (run, stream, index, end), and the bytes its
 * MAC covers. Entries are grouped into streams by (run, stream); a stream
 * may span files (rotation) given in any order. Then, per stream:
 *   - order: in reading order, an index below one already seen is a line
 *     moved back (reordered) or a second line for the same index
 *     (inserted);
 *   - MACs, in index order from k0: the line that verifies for an index
 *     is genuine, others claiming it are inserted; none verifying is
 *     modified; an index nobody claims is deleted;
 *   - ends: index 0 present (else deleted), the last index closes the
 *     stream with "end":true (else truncated), nothing after it.
 * A line with a syslog header before its message is read from the
 * message on. A line without a seal in a sealed file is inserted; a line of another
 * run amid a stream is spliced; a stream whose key id is not the key's is
 * a key mismatch (nothing else is said of it).
 *
 * Continuation records (src/parts.h) are put back together first, across
 * the files in the order given: the whole line is an entry at the line of
 * its first part read. A damaged part is a modified line, a part that
 * contradicts another an inserted one; a line whose parts are not all
 * there is listed as incomplete (and its chain shows it missing).
 *
 * At-least-once delivery: a line byte for byte equal to another line of
 * the same stream claiming the same index (the message from its first
 * `{"` on: a collector's header may differ) is a duplicate, listed with
 * where it was first read, and is not damage. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "internal.h"
#include "parts.h"
#include "seal.h"

#define MAX_DAMAGE_LISTED 100

/* A line's place for the reassembler: file index and line number. */
#define TAG(file, line) (((uint64_t)(file) << 40) | (uint64_t)(line))
#define TAG_FILE(t)     ((int)((t) >> 40))
#define TAG_LINE(t)     ((unsigned long)((t) & ((1ull << 40) - 1)))

typedef struct {
  int file;             /* index into the file list */
  unsigned long lineno; /* 1-based */
  int sealed;           /* a seal member that parses */
  int malformed;        /* "seal":{ present but not a valid seal */
  int params, end;
  uint64_t index;
  char run[33];
  char stream[JW_SEAL_STREAM_MAX];
  char key_id[33];
  unsigned char mac[JW_SEAL_MAC_BYTES];
  long long seq; /* -1: none */
  char *prefix;  /* the bytes the MAC covers (sealed entries) */
  size_t prefix_len;
  int stream_no; /* index into streams, -1: none */
  int spliced;
  int dup;        /* another line read before it claims its index */
  int dup_of;     /* the entry it repeats byte for byte, or -1 */
  unsigned parts; /* put together from this many continuation records; 0: read as is */
  char *bad_part; /* a damaged or contradicting continuation record: why (owned) */
  int conflict;   /* bad_part contradicts the part at conflict_tag */
  uint64_t conflict_tag;
} entry_t;

typedef struct {
  char run[33];
  char stream[JW_SEAL_STREAM_MAX];
  int *entries; /* indexes into the entry array, reading order */
  size_t n, cap;
  int key_mismatch;
  char key_id[33];
} stream_t;

typedef struct {
  jw_damage_t kind;
  int entry;      /* -1: none (a missing line) */
  int near_entry; /* where a missing line would have been */
  uint64_t index;
  char detail[400];
} damage_t;

typedef struct {
  entry_t *e;
  size_t n, cap;
  const char *const *files;
  int file;
  /* per file: the stream the last params line opened */
  char cur_run[33];
  char cur_stream[JW_SEAL_STREAM_MAX];
  int have_cur;
  unsigned long lines, unsealed, parts;
  jw__parts_t *reassembler; /* across all files: a line's parts may span a rotation */
  int oom;
} reader_t;

const char *jw_damage_name(jw_damage_t d) {
  static const char *const names[] = {"none",      "modified",  "inserted",  "deleted",
                                      "reordered", "truncated", "spliced",   "key_mismatch",
                                      "unsealed",  "duplicate", "incomplete"};
  return (unsigned)d < sizeof(names) / sizeof(names[0]) ? names[d] : "unknown";
}

/* The event's seq, wherever the line's format keeps it. */
static long long line_seq(const char *text, size_t len) {
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_ALLOW_NUL, &je), *v;
  long long seq = -1;
  if (j == NULL)
    return -1;
  v = json_object_get(j, "seq");
  if (!json_is_integer(v))
    v = json_object_get(json_object_get(j, "event"), "sequence");
  if (!json_is_integer(v))
    v = json_object_get(json_object_get(j, "metadata"), "sequence");
  if (json_is_integer(v))
    seq = (long long)json_integer_value(v);
  json_decref(j);
  return seq;
}

/* Finds the last `"seal":{` of the line (the member jobwarden appends
 * last; a string inside the event cannot hold an unescaped quote). */
static const char *find_seal(const char *line, size_t len) {
  static const char pat[] = "\"seal\":{";
  const size_t plen = sizeof(pat) - 1;
  size_t i;
  if (len < plen)
    return NULL;
  for (i = len - plen + 1; i-- > 0;)
    if (memcmp(line + i, pat, plen) == 0)
      return line + i;
  return NULL;
}

/* Parses the seal of one line into e. */
static void parse_seal(entry_t *e, const char *line, size_t len) {
  static const char macpat[] = "\"mac\":\"";
  const size_t tail = (sizeof(macpat) - 1) + 2 * JW_SEAL_MAC_BYTES + 3;
  const char *seal = find_seal(line, len), *obj, *end;
  json_t *j, *v;
  json_error_t je;
  size_t body_end; /* where the event's own members end */
  e->seq = -1;
  if (seal == NULL)
    return;
  e->malformed = 1;
  if (len < tail || (size_t)(seal - line) + tail > len || memcmp(line + len - 3, "\"}}", 3) != 0 ||
      memcmp(line + len - tail, macpat, sizeof(macpat) - 1) != 0 ||
      !jw__lower_hex(line + len - 3 - 2 * JW_SEAL_MAC_BYTES, 2 * JW_SEAL_MAC_BYTES))
    return;
  obj = seal + 7; /* the '{' of the seal object */
  end = line + len - 1;
  j = json_loadb(obj, (size_t)(end - obj), 0, &je);
  if (j == NULL || !json_is_object(j))
    goto out;
  v = json_object_get(j, "i");
  if (!json_is_integer(v) || json_integer_value(v) < 0)
    goto out;
  e->index = (uint64_t)json_integer_value(v);
  if (!json_is_string(json_object_get(j, "run")) || !json_is_string(json_object_get(j, "s")) ||
      json_string_length(json_object_get(j, "run")) >= sizeof(e->run) ||
      json_string_length(json_object_get(j, "s")) >= sizeof(e->stream))
    goto out;
  jw__strlcpy(e->run, json_string_value(json_object_get(j, "run")), sizeof(e->run));
  jw__strlcpy(e->stream, json_string_value(json_object_get(j, "s")), sizeof(e->stream));
  e->end = json_is_true(json_object_get(j, "end"));
  if (json_object_get(j, "v") != NULL) {
    if (json_integer_value(json_object_get(j, "v")) != JW_SEAL_VERSION ||
        !json_is_string(json_object_get(j, "key_id")) ||
        json_string_length(json_object_get(j, "key_id")) != 32)
      goto out;
    e->params = 1;
    jw__strlcpy(e->key_id, json_string_value(json_object_get(j, "key_id")), sizeof(e->key_id));
  }
  if (jw__seal_hex(json_string_value(json_object_get(j, "mac")), e->mac, JW_SEAL_MAC_BYTES) != 0)
    goto out;
  e->prefix_len = len - 3 - 2 * JW_SEAL_MAC_BYTES;
  e->prefix = malloc(e->prefix_len ? e->prefix_len : 1);
  if (e->prefix == NULL)
    goto out;
  memcpy(e->prefix, line, e->prefix_len);
  e->sealed = 1;
  e->malformed = 0;
  /* The event without its seal member, for its seq. */
  body_end = (size_t)(seal - line);
  if (body_end > 0 && line[body_end - 1] == ',')
    body_end--;
  {
    char *ev = malloc(body_end + 2);
    if (ev != NULL) {
      memcpy(ev, line, body_end);
      ev[body_end] = '}';
      e->seq = line_seq(ev, body_end + 1);
      free(ev);
    }
  }
out:
  json_decref(j);
}

static int on_line(void *ctx, const char *line, size_t len, unsigned long lineno, int cut) {
  reader_t *r = ctx;
  entry_t *e;
  jw__part_result_t res;
  int pr;
  (void)cut;
  if (len == 0 && cut)
    return 0; /* nothing after the last newline */
  r->lines++;
  /* A syslog collector's line: a header (RFC 5424, or rsyslog's
   * traditional format) before the message. The seal covers the message,
   * which starts at the first `{"`; the header is the collector's and is
   * not checked. */
  line = jw__parts_record_start(line, &len);
  pr = jw__parts_feed(r->reassembler, line, len, TAG(r->file, lineno), &res);
  if (pr == JW_ENOMEM) {
    r->oom = 1;
    return 1;
  }
  if (pr != JW_PARTS_NONE)
    r->parts++;
  if (pr == JW_PARTS_HELD || pr == JW_PARTS_REPEAT)
    return 0;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 1024;
    entry_t *p = realloc(r->e, cap * sizeof(*p));
    if (p == NULL) {
      free(res.whole);
      r->oom = 1;
      return 1;
    }
    r->e = p;
    r->cap = cap;
  }
  e = &r->e[r->n++];
  memset(e, 0, sizeof(*e));
  e->file = r->file;
  e->lineno = lineno;
  e->stream_no = -1;
  e->dup_of = -1;
  e->seq = -1;
  if (pr == JW_PARTS_WHOLE) {
    e->file = TAG_FILE(res.first_tag);
    e->lineno = TAG_LINE(res.first_tag);
    e->parts = res.of;
    parse_seal(e, res.whole, res.whole_len);
    if (!e->sealed)
      e->seq = line_seq(res.whole, res.whole_len);
    free(res.whole);
  } else if (pr == JW_EINVAL) {
    size_t n = strlen(res.why) + 1;
    e->malformed = 1;
    e->bad_part = malloc(n);
    if (e->bad_part == NULL) {
      r->oom = 1;
      return 1;
    }
    memcpy(e->bad_part, res.why, n);
    e->conflict = res.conflict;
    e->conflict_tag = res.other_tag;
    if (res.run_id[0] != '\0')
      e->seq = (long long)res.seq;
    if (res.line_dropped) {
      /* A line whose parts do not add up (to its bytes, or to the line of
       * its digest) is damage where the line is, at its first part. */
      e->file = TAG_FILE(res.first_tag);
      e->lineno = TAG_LINE(res.first_tag);
      e->parts = res.of;
    }
  } else {
    parse_seal(e, line, len);
    if (!e->sealed)
      e->seq = line_seq(line, len);
  }
  if (!e->sealed)
    r->unsealed++;
  return 0;
}

static int find_stream(stream_t *st, size_t n, const char *run, const char *stream) {
  size_t i;
  for (i = 0; i < n; i++)
    if (strcmp(st[i].run, run) == 0 && strcmp(st[i].stream, stream) == 0)
      return (int)i;
  return -1;
}

static int push_int(int **a, size_t *n, size_t *cap, int v) {
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 64;
    int *p = realloc(*a, c * sizeof(*p));
    if (p == NULL)
      return -1;
    *a = p;
    *cap = c;
  }
  (*a)[(*n)++] = v;
  return 0;
}

typedef struct {
  damage_t *d;
  size_t n, cap;
} damages_t;

static void add_damage(damages_t *ds, jw_damage_t kind, int entry, int near_entry, uint64_t index,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
static void add_damage(damages_t *ds, jw_damage_t kind, int entry, int near_entry, uint64_t index,
                       const char *fmt, ...) {
  va_list ap;
  damage_t *d;
  if (ds->n == ds->cap) {
    size_t c = ds->cap ? ds->cap * 2 : 16;
    damage_t *p = realloc(ds->d, c * sizeof(*p));
    if (p == NULL)
      return;
    ds->d = p;
    ds->cap = c;
  }
  d = &ds->d[ds->n++];
  d->kind = kind;
  d->entry = entry;
  d->near_entry = near_entry;
  d->index = index;
  va_start(ap, fmt);
  vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
  va_end(ap);
}

/* Sorting a stream's entries by claimed index, reading order kept. */
static const entry_t *g_sort_entries;
static int by_index(const void *a, const void *b) {
  const entry_t *x = &g_sort_entries[*(const int *)a], *y = &g_sort_entries[*(const int *)b];
  if (x->index != y->index)
    return x->index < y->index ? -1 : 1;
  return *(const int *)a < *(const int *)b ? -1 : *(const int *)a > *(const int *)b;
}

/* Lines by content (the bytes the MAC covers, then the MAC), reading
 * order kept among equal ones. */
static int by_content(const void *a, const void *b) {
  const entry_t *x = &g_sort_entries[*(const int *)a], *y = &g_sort_entries[*(const int *)b];
  int c;
  if (x->prefix_len != y->prefix_len)
    return x->prefix_len < y->prefix_len ? -1 : 1;
  c = memcmp(x->prefix, y->prefix, x->prefix_len);
  if (c == 0)
    c = memcmp(x->mac, y->mac, sizeof(x->mac));
  if (c != 0)
    return c;
  return *(const int *)a < *(const int *)b ? -1 : *(const int *)a > *(const int *)b;
}

/* In each group of sorted[0..n) claiming one index, a line equal byte
 * for byte to one read before it is a duplicate of that one (dup_of):
 * listed in dups, left out of the judging. */
static void mark_duplicates(entry_t *E, const int *sorted, size_t n, damages_t *dups) {
  size_t i = 0, j, k;
  while (i < n) {
    int *tmp;
    for (j = i + 1; j < n && E[sorted[j]].index == E[sorted[i]].index; j++)
      ;
    if (j - i > 1 && (tmp = malloc((j - i) * sizeof(int))) != NULL) {
      size_t first = 0;
      memcpy(tmp, sorted + i, (j - i) * sizeof(int));
      g_sort_entries = E;
      qsort(tmp, j - i, sizeof(int), by_content);
      for (k = 1; k < j - i; k++) {
        entry_t *a = &E[tmp[first]], *b = &E[tmp[k]];
        if (a->prefix_len == b->prefix_len && memcmp(a->prefix, b->prefix, a->prefix_len) == 0 &&
            memcmp(a->mac, b->mac, sizeof(a->mac)) == 0) {
          b->dup_of = tmp[first];
          add_damage(dups, JW_DAMAGE_DUPLICATE, tmp[k], tmp[first], b->index,
                     "the same line again (delivered twice: not damage)");
        } else {
          first = k;
        }
      }
      free(tmp);
    }
    i = j;
  }
}

/* The checks of one stream (see the top of the file). */
static void check_stream(entry_t *E, stream_t *s, const jw_seal_key_t *key, damages_t *ds,
                         damages_t *dups) {
  int *sorted;
  size_t i, k;
  uint64_t max_seen = 0, expected = 0, kidx = 0;
  int any = 0;
  unsigned char kcur[JW_SEAL_KEY_BYTES], prev[JW_SEAL_MAC_BYTES], mac[JW_SEAL_MAC_BYTES];

  if (s->key_mismatch) {
    add_damage(ds, JW_DAMAGE_KEY_MISMATCH, s->entries[0], s->entries[0], E[s->entries[0]].index,
               "the stream was sealed with key %s, the key given is another", s->key_id);
    return;
  }
  sorted = malloc(s->n * sizeof(int));
  if (sorted == NULL)
    return;
  memcpy(sorted, s->entries, s->n * sizeof(int));
  g_sort_entries = E;
  qsort(sorted, s->n, sizeof(int), by_index);
  for (i = 1; i < s->n; i++)
    E[sorted[i]].dup = E[sorted[i]].index == E[sorted[i - 1]].index;
  mark_duplicates(E, sorted, s->n, dups);
  g_sort_entries = E;
  /* Order, in reading order. Files of a rotated stream are read in the
   * order of their first index (entries were grouped so already). An
   * index seen before is a duplicate (inserted: told apart by the MACs
   * below) or a line that came back later (reordered). */
  for (i = 0; i < s->n; i++) {
    entry_t *e = &E[s->entries[i]];
    if (any && e->index <= max_seen && !e->dup)
      add_damage(ds, JW_DAMAGE_REORDERED, s->entries[i], s->entries[i], e->index,
                 "index %llu comes after index %llu", (unsigned long long)e->index,
                 (unsigned long long)max_seen);
    if (!any || e->index > max_seen)
      max_seen = e->index;
    any = 1;
  }
  /* MACs, in index order. */
  jw__seal_k0(key, s->run, s->stream, kcur);
  memset(prev, 0, sizeof(prev));
  for (i = 0; i < s->n;) {
    uint64_t c = E[sorted[i]].index;
    size_t j, genuine = (size_t)-1;
    int known_prev = 1;
    if (c > expected) {
      add_damage(ds, JW_DAMAGE_DELETED, -1, sorted[i], expected,
                 c - expected == 1 ? "index %llu is missing" : "indexes %llu to %llu are missing",
                 (unsigned long long)expected, (unsigned long long)(c - 1));
      known_prev = 0;
    }
    while (kidx < c) {
      jw__seal_evolve(kcur);
      kidx++;
    }
    /* The group of entries claiming c. */
    for (j = i; j < s->n && E[sorted[j]].index == c; j++) {
      entry_t *e = &E[sorted[j]];
      if (!known_prev || e->dup_of >= 0) {
        continue; /* nothing to check the first line after a hole against; a copy */
      }
      jw__seal_mac(kcur, prev, e->prefix, e->prefix_len, mac);
      if (genuine == (size_t)-1 && jw__seal_equal(mac, e->mac, JW_SEAL_MAC_BYTES))
        genuine = j;
    }
    if (!known_prev) {
      genuine = i; /* taken as it is: its MAC chains on from a lost line */
    }
    for (k = i; k < j; k++) {
      entry_t *e = &E[sorted[k]];
      if (k == genuine || e->dup_of >= 0)
        continue;
      if (genuine != (size_t)-1)
        add_damage(ds, JW_DAMAGE_INSERTED, sorted[k], sorted[k], c,
                   "a second line for index %llu that the key did not seal", (unsigned long long)c);
      else if (k == i)
        add_damage(ds, JW_DAMAGE_MODIFIED, sorted[k], sorted[k], c,
                   "its MAC does not match its content (index %llu)", (unsigned long long)c);
      else
        add_damage(ds, JW_DAMAGE_INSERTED, sorted[k], sorted[k], c, "a second line for index %llu",
                   (unsigned long long)c);
      (void)e;
    }
    /* The chain goes on from the genuine line, or from the modified one's
     * own MAC (so that one change is reported once). */
    memcpy(prev, E[sorted[genuine != (size_t)-1 ? genuine : i]].mac, sizeof(prev));
    expected = c + 1;
    i = j;
  }
  /* The end: the highest index closes the stream, nothing comes after. */
  if (s->n > 0) {
    entry_t *last = &E[sorted[s->n - 1]];
    for (i = 0; i + 1 < s->n; i++) {
      entry_t *e = &E[sorted[i]];
      if (e->end && e->index != last->index) {
        add_damage(ds, JW_DAMAGE_INSERTED, sorted[i + 1], sorted[i + 1], E[sorted[i + 1]].index,
                   "a line after the one that closed the stream (index %llu)",
                   (unsigned long long)e->index);
        break;
      }
    }
    if (!last->end)
      add_damage(ds, JW_DAMAGE_TRUNCATED, -1, sorted[s->n - 1], last->index + 1,
                 "the stream ends at index %llu without its closing line (sandbox.job_end)",
                 (unsigned long long)last->index);
  }
  memset(kcur, 0, sizeof(kcur));
  free(sorted);
}

static json_t *where_json(const entry_t *E, const char *const *files, int entry) {
  const entry_t *e = &E[entry];
  json_t *o = json_pack("{s:s,s:I}", "file", files[e->file], "line", (json_int_t)e->lineno);
  if (o != NULL && e->seq >= 0)
    json_object_set_new(o, "seq", json_integer(e->seq));
  if (o != NULL && e->parts > 0)
    json_object_set_new(o, "parts", json_integer((json_int_t)e->parts));
  return o;
}

static json_t *damage_json(const entry_t *E, const char *const *files, const damage_t *d) {
  json_t *o = json_pack("{s:s,s:I,s:s}", "kind", jw_damage_name(d->kind), "index",
                        (json_int_t)d->index, "detail", d->detail);
  json_t *w;
  if (o == NULL)
    return NULL;
  if (d->entry >= 0) {
    w = where_json(E, files, d->entry);
    json_object_update(o, w);
    json_decref(w);
    if (d->kind == JW_DAMAGE_DUPLICATE && d->near_entry >= 0)
      json_object_set_new(o, "first", where_json(E, files, d->near_entry));
  } else if (d->near_entry >= 0) {
    /* A missing line: where it would have been (before this line, or
     * after the last one). */
    w = where_json(E, files, d->near_entry);
    json_object_set_new(o, d->kind == JW_DAMAGE_TRUNCATED ? "after" : "before", w);
  }
  return o;
}

/* Orders damages the way a reader meets them: by file as given, line. */
static const entry_t *g_dmg_entries;
static int damage_order(const void *a, const void *b) {
  const damage_t *x = a, *y = b;
  int ex = x->entry >= 0 ? x->entry : x->near_entry, ey = y->entry >= 0 ? y->entry : y->near_entry;
  const entry_t *p = &g_dmg_entries[ex], *q = &g_dmg_entries[ey];
  if (p->file != q->file)
    return p->file < q->file ? -1 : 1;
  if (p->lineno != q->lineno)
    return p->lineno < q->lineno ? -1 : 1;
  /* a missing line before this one comes first; truncation last */
  return (x->entry < 0 && x->kind != JW_DAMAGE_TRUNCATED ? 0 : 1) -
         (y->entry < 0 && y->kind != JW_DAMAGE_TRUNCATED ? 0 : 1);
}

/* The incomplete lines the reassembler was left with (not those that
 * only repeat a line already whole: nothing of them is lost). */
typedef struct {
  json_t *list;
  const char *const *files;
} incomplete_t;

static void list_incomplete(void *ctx, const jw__parts_pending_t *pp) {
  incomplete_t *inc = ctx;
  if (pp->repeat)
    return;
  json_t *o = json_pack("{s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:I}", "run_id", pp->run_id, "seq",
                        (json_int_t)pp->seq, "file", inc->files[TAG_FILE(pp->first_tag)], "line",
                        (json_int_t)TAG_LINE(pp->first_tag), "parts_read", (json_int_t)pp->seen,
                        "parts", (json_int_t)pp->of, "first_missing", (json_int_t)pp->missing,
                        "bytes", (json_int_t)pp->bytes);
  /* Version 2 names its line (two lines of one seq are told apart). */
  if (o != NULL && pp->digest[0] != '\0') {
    json_object_set_new(o, "digest", json_string(pp->digest));
    json_object_set_new(o, "limit", json_integer((json_int_t)pp->limit));
  }
  json_array_append_new(inc->list, o);
}

void *jw_verify_files(const char *const *files, int nfiles, const jw_seal_key_t *key, char *errbuf,
                      size_t errsize) {
  reader_t r;
  stream_t *st = NULL;
  size_t nst = 0, capst = 0, i;
  json_t *doc = NULL, *jstreams, *jfiles;
  int f, damaged = 0;
  json_t *first = NULL;
  size_t n_dups = 0;

  memset(&r, 0, sizeof(r));
  r.files = files;
  r.reassembler = jw__parts_new();
  jfiles = json_array();
  if (r.reassembler == NULL || jfiles == NULL)
    goto oom;
  for (f = 0; f < nfiles; f++) {
    size_t start = r.n, k;
    r.file = f;
    r.lines = r.unsealed = r.parts = 0;
    r.have_cur = 0;
    if (jw_record_read(files[f], on_line, &r, errbuf, errsize) != 0) {
      if (r.oom)
        snprintf(errbuf, errsize, "%s: out of memory", files[f]);
      goto fail;
    }
    /* Streams of this file, in its order: a params line opens (or
     * continues) a stream; a line of another run without params amid it
     * is spliced in. */
    for (k = start; k < r.n; k++) {
      entry_t *e = &r.e[k];
      int sn;
      if (!e->sealed)
        continue;
      if (e->params || !r.have_cur) {
        jw__strlcpy(r.cur_run, e->run, sizeof(r.cur_run));
        jw__strlcpy(r.cur_stream, e->stream, sizeof(r.cur_stream));
        r.have_cur = 1;
      } else if (strcmp(e->run, r.cur_run) != 0) {
        e->spliced = 1;
        continue;
      }
      sn = find_stream(st, nst, e->run, e->stream);
      if (sn < 0) {
        if (nst == capst) {
          size_t c = capst ? capst * 2 : 8;
          stream_t *p = realloc(st, c * sizeof(*p));
          if (p == NULL)
            goto oom;
          st = p;
          capst = c;
        }
        memset(&st[nst], 0, sizeof(st[nst]));
        jw__strlcpy(st[nst].run, e->run, sizeof(st[nst].run));
        jw__strlcpy(st[nst].stream, e->stream, sizeof(st[nst].stream));
        sn = (int)nst++;
      }
      if (e->params && !st[sn].key_mismatch && strcmp(e->key_id, key->key_id) != 0) {
        st[sn].key_mismatch = 1;
        jw__strlcpy(st[sn].key_id, e->key_id, sizeof(st[sn].key_id));
      }
      e->stream_no = sn;
    }
    json_array_append_new(jfiles, json_pack("{s:s,s:I,s:I,s:I}", "file", files[f], "lines",
                                            (json_int_t)r.lines, "unsealed", (json_int_t)r.unsealed,
                                            "parts", (json_int_t)r.parts));
  }
  /* Each stream's entries: its files in the order of their first index,
   * each file's lines in order. */
  {
    int *order = malloc((size_t)(nfiles > 0 ? nfiles : 1) * sizeof(int));
    if (order == NULL)
      goto oom;
    for (i = 0; i < nst; i++) {
      uint64_t *firsts = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof(uint64_t));
      int *has = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof(int));
      int a, b, no = 0;
      size_t k;
      if (firsts == NULL || has == NULL) {
        free(firsts);
        free(has);
        free(order);
        goto oom;
      }
      for (k = 0; k < r.n; k++)
        if (r.e[k].stream_no == (int)i && !has[r.e[k].file]) {
          has[r.e[k].file] = 1;
          firsts[r.e[k].file] = r.e[k].index;
        }
      for (a = 0; a < nfiles; a++)
        if (has[a])
          order[no++] = a;
      for (a = 1; a < no; a++) /* insertion sort: a few files */
        for (b = a; b > 0 && firsts[order[b]] < firsts[order[b - 1]]; b--) {
          int t = order[b];
          order[b] = order[b - 1];
          order[b - 1] = t;
        }
      for (a = 0; a < no; a++)
        for (k = 0; k < r.n; k++)
          if (r.e[k].stream_no == (int)i && r.e[k].file == order[a] &&
              push_int(&st[i].entries, &st[i].n, &st[i].cap, (int)k) != 0) {
            free(firsts);
            free(has);
            free(order);
            goto oom;
          }
      free(firsts);
      free(has);
    }
    free(order);
  }

  doc = json_object();
  jstreams = json_array();
  json_object_set_new(doc, "streams", jstreams);
  {
    damages_t all;
    memset(&all, 0, sizeof(all));
    /* Lines that belong to no stream: unsealed lines of sealed files, and
     * spliced lines. */
    int *file_sealed = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof(int));
    if (file_sealed == NULL)
      goto oom;
    for (i = 0; i < r.n; i++)
      file_sealed[r.e[i].file] |= r.e[i].sealed;
    for (i = 0; i < r.n; i++) {
      entry_t *e = &r.e[i];
      if (e->spliced)
        add_damage(&all, JW_DAMAGE_SPLICED, (int)i, (int)i, e->index,
                   "a line of run %s amid a stream of another run", e->run);
      else if (!e->sealed && file_sealed[e->file] && e->bad_part != NULL && e->conflict)
        add_damage(&all, JW_DAMAGE_INSERTED, (int)i, (int)i, 0,
                   "a continuation record that contradicts the one kept (%s:%lu): %s",
                   files[TAG_FILE(e->conflict_tag)], TAG_LINE(e->conflict_tag), e->bad_part);
      else if (!e->sealed && file_sealed[e->file] && e->bad_part != NULL)
        add_damage(&all, JW_DAMAGE_MODIFIED, (int)i, (int)i, 0, "%s", e->bad_part);
      else if (!e->sealed && file_sealed[e->file]) /* a file with no seal: once, below */
        add_damage(&all, e->malformed ? JW_DAMAGE_MODIFIED : JW_DAMAGE_INSERTED, (int)i, (int)i, 0,
                   e->malformed ? "its seal is damaged" : "a line without a seal");
    }
    free(file_sealed);
    for (f = 0; f < nfiles; f++) {
      size_t k, n = 0, first_line = (size_t)-1;
      for (k = 0; k < r.n; k++)
        if (r.e[k].file == f) {
          n += r.e[k].sealed;
          if (first_line == (size_t)-1)
            first_line = k;
        }
      if (n == 0) {
        json_t *d = json_pack("{s:s,s:s,s:s}", "kind", "unsealed", "file", files[f], "detail",
                              first_line == (size_t)-1 ? "the file is empty"
                                                       : "no line of the file is sealed");
        if (first == NULL)
          first = json_incref(d);
        json_array_append_new(jstreams, json_pack("{s:s,s:[s],s:s,s:[o]}", "run_id", "", "files",
                                                  files[f], "verdict", "damaged", "damage", d));
        damaged = 1;
      }
    }
    for (i = 0; i < nst; i++) {
      damages_t ds, dups;
      json_t *js, *jd, *jf, *jdup;
      size_t k;
      int a;
      memset(&ds, 0, sizeof(ds));
      memset(&dups, 0, sizeof(dups));
      check_stream(r.e, &st[i], key, &ds, &dups);
      /* the stream's own share of the stray lines (in its files) */
      {
        /* (no memory: the stray lines are said on their own, below) */
        char *in_file = calloc((size_t)(nfiles > 0 ? nfiles : 1), 1);
        for (k = 0; k < st[i].n && in_file != NULL; k++)
          in_file[r.e[st[i].entries[k]].file] = 1;
        for (k = 0; k < all.n && in_file != NULL; k++)
          if (all.d[k].kind != JW_DAMAGE_NONE && in_file[r.e[all.d[k].entry].file]) {
            add_damage(&ds, all.d[k].kind, all.d[k].entry, all.d[k].near_entry, all.d[k].index,
                       "%s", all.d[k].detail);
            all.d[k].kind = JW_DAMAGE_NONE; /* said once */
          }
        free(in_file);
      }
      g_dmg_entries = r.e;
      if (ds.n > 1)
        qsort(ds.d, ds.n, sizeof(damage_t), damage_order);
      jf = json_array();
      {
        int *seen = calloc((size_t)(nfiles > 0 ? nfiles : 1), sizeof(int));
        for (k = 0; k < st[i].n; k++) {
          a = r.e[st[i].entries[k]].file;
          if (seen != NULL && !seen[a]) {
            seen[a] = 1;
            json_array_append_new(jf, json_string(files[a]));
          }
        }
        free(seen);
      }
      jd = json_array();
      for (k = 0; k < ds.n && k < MAX_DAMAGE_LISTED; k++)
        json_array_append_new(jd, damage_json(r.e, files, &ds.d[k]));
      /* The stream's first and last lines in reading order, copies
       * delivered again left aside. */
      {
        size_t lo = 0, hi = 0;
        for (k = 0; k < st[i].n; k++)
          if (r.e[st[i].entries[k]].dup_of < 0) {
            if (lo == 0)
              lo = k + 1;
            hi = k + 1;
          }
        js = json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:b,s:s,s:o}", "run_id", st[i].run, "stream",
                       st[i].stream, "files", jf, "lines", (json_int_t)st[i].n, "first_index",
                       (json_int_t)(lo ? r.e[st[i].entries[lo - 1]].index : 0), "last_index",
                       (json_int_t)(hi ? r.e[st[i].entries[hi - 1]].index : 0), "complete",
                       hi > 0 && r.e[st[i].entries[hi - 1]].end && ds.n == 0, "verdict",
                       ds.n == 0 ? "intact" : "damaged", "damage", jd);
      }
      if (ds.n > MAX_DAMAGE_LISTED)
        json_object_set_new(js, "damage_not_listed",
                            json_integer((json_int_t)(ds.n - MAX_DAMAGE_LISTED)));
      /* Lines delivered twice: where each repeats, and where it was
       * first read. */
      if (dups.n > 1)
        qsort(dups.d, dups.n, sizeof(damage_t), damage_order);
      jdup = json_array();
      for (k = 0; k < dups.n && k < MAX_DAMAGE_LISTED; k++)
        json_array_append_new(jdup, damage_json(r.e, files, &dups.d[k]));
      json_object_set_new(js, "duplicates", jdup);
      if (dups.n > MAX_DAMAGE_LISTED)
        json_object_set_new(js, "duplicates_not_listed",
                            json_integer((json_int_t)(dups.n - MAX_DAMAGE_LISTED)));
      n_dups += dups.n;
      free(dups.d);
      json_array_append_new(jstreams, js);
      if (ds.n > 0) {
        damaged = 1;
        if (first == NULL)
          first = json_incref(json_array_get(jd, 0));
      }
      free(ds.d);
    }
    /* Stray lines in files that have no stream of their own. */
    for (i = 0; i < all.n; i++)
      if (all.d[i].kind != JW_DAMAGE_NONE) {
        json_t *d = damage_json(r.e, files, &all.d[i]);
        damaged = 1;
        if (first == NULL)
          first = json_incref(d);
        json_array_append_new(jstreams,
                              json_pack("{s:s,s:s,s:[o]}", "run_id", r.e[all.d[i].entry].run,
                                        "verdict", "damaged", "damage", d));
      }
    free(all.d);
  }
  /* Lines whose continuation records are not all there. */
  {
    incomplete_t inc;
    inc.list = json_array();
    inc.files = files;
    if (inc.list == NULL)
      goto oom;
    jw__parts_pending(r.reassembler, list_incomplete, &inc);
    if (json_array_size(inc.list) > 0) {
      damaged = 1;
      if (first == NULL) {
        json_t *i0 = json_array_get(inc.list, 0);
        first = json_pack("{s:s,s:O,s:O,s:O,s:s}", "kind", "incomplete", "file",
                          json_object_get(i0, "file"), "line", json_object_get(i0, "line"), "seq",
                          json_object_get(i0, "seq"), "detail",
                          "a line whose continuation records are not all there (see incomplete)");
      }
    }
    json_object_set_new(doc, "incomplete", inc.list);
  }
  json_object_set_new(doc, "duplicates", json_integer((json_int_t)n_dups));
  json_object_set_new(doc, "verdict", json_string(damaged ? "damaged" : "intact"));
  if (first != NULL)
    json_object_set_new(doc, "first_damage", first);
  json_object_set_new(doc, "files", jfiles);
  jfiles = NULL;
  goto done;
oom:
  snprintf(errbuf, errsize, "out of memory");
fail:
  json_decref(doc);
  doc = NULL;
done:
  json_decref(jfiles);
  for (i = 0; i < r.n; i++) {
    free(r.e[i].prefix);
    free(r.e[i].bad_part);
  }
  free(r.e);
  jw__parts_free(r.reassembler);
  for (i = 0; i < nst; i++)
    free(st[i].entries);
  free(st);
  return doc;
}

/* ------------------------------------------------------------------------ */
/* The commands                                                             */
/* ------------------------------------------------------------------------ */

static void say_damage(json_t *d) {
  json_t *w = json_object_get(d, "before")  ? json_object_get(d, "before")
              : json_object_get(d, "after") ? json_object_get(d, "after")
                                            : d;
  const char *rel = json_object_get(d, "before")  ? "before "
                    : json_object_get(d, "after") ? "after "
                                                  : "";
  const char *file = json_string_value(json_object_get(w, "file"));
  json_t *seq = json_object_get(w, "seq"), *parts = json_object_get(w, "parts");
  if (file != NULL && json_object_get(w, "line") != NULL) {
    if (json_is_integer(seq) && json_is_integer(parts))
      jw_outf("  %s: %s%s:%lld (seq %lld, a line of %lld continuation records): %s\n",
              json_string_value(json_object_get(d, "kind")), rel, file,
              (long long)json_integer_value(json_object_get(w, "line")),
              (long long)json_integer_value(seq), (long long)json_integer_value(parts),
              json_string_value(json_object_get(d, "detail")));
    else if (json_is_integer(seq))
      jw_outf("  %s: %s%s:%lld (seq %lld): %s\n", json_string_value(json_object_get(d, "kind")),
              rel, file, (long long)json_integer_value(json_object_get(w, "line")),
              (long long)json_integer_value(seq), json_string_value(json_object_get(d, "detail")));
    else
      jw_outf("  %s: %s%s:%lld: %s\n", json_string_value(json_object_get(d, "kind")), rel, file,
              (long long)json_integer_value(json_object_get(w, "line")),
              json_string_value(json_object_get(d, "detail")));
  } else {
    jw_outf("  %s: %s: %s\n", json_string_value(json_object_get(d, "kind")), file ? file : "?",
            json_string_value(json_object_get(d, "detail")));
  }
}

int jw_cmd_verify(int argc, char **argv) {
  const char **files;
  const char *keyfile = NULL;
  int nfiles = 0, json_out = 0, i, status;
  jw_seal_key_t key;
  jw_error_t err;
  char why[1024];
  json_t *doc, *s;
  size_t k;

  files = calloc((size_t)argc, sizeof(*files));
  if (files == NULL)
    return JW_EXIT_JW_ERROR;
  for (i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--key") == 0) {
      if (i + 1 >= argc || keyfile != NULL) {
        jw_errf("verify: %s", keyfile ? "--key given twice" : "--key needs a KEYFILE");
        free(files);
        return JW_EXIT_JW_ERROR;
      }
      keyfile = argv[++i];
    } else if (strcmp(argv[i], "--json") == 0) {
      json_out = 1;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      jw_errf("verify: unknown option '%.100s' (verify FILE... --key KEYFILE [--json])", argv[i]);
      free(files);
      return JW_EXIT_JW_ERROR;
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (nfiles == 0 || keyfile == NULL) {
    jw_errf("verify: expected FILE... and --key KEYFILE (the key file the run was sealed with)");
    free(files);
    return JW_EXIT_JW_ERROR;
  }
  memset(&err, 0, sizeof(err));
  if (jw_seal_key_read(keyfile, &key, &err) != 0) {
    jw_errf("verify: %s", err.text);
    free(files);
    return JW_EXIT_JW_ERROR;
  }
  doc = jw_verify_files(files, nfiles, &key, why, sizeof(why));
  jw_seal_key_wipe(&key);
  free(files);
  if (doc == NULL) {
    jw_errf("verify: %s", why);
    return JW_EXIT_JW_ERROR;
  }
  status = strcmp(json_string_value(json_object_get(doc, "verdict")), "intact") == 0
               ? JW_EXIT_OK
               : JW_EXIT_VERIFY_DAMAGED;
  if (json_out) {
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text != NULL) {
      jw_out(text, strlen(text));
      jw_out("\n", 1);
    }
    free(text);
  } else {
    json_array_foreach(json_object_get(doc, "streams"), k, s) {
      json_t *d, *files_of = json_object_get(s, "files");
      size_t m;
      const char *stream = json_string_value(json_object_get(s, "stream"));
      const char *f0 = json_string_value(json_array_get(files_of, 0));
      const char *run = json_string_value(json_object_get(s, "run_id"));
      jw_outf("%s: run %s stream %s: %s", f0 ? f0 : "?", run && run[0] ? run : "?",
              stream ? stream : "-", json_string_value(json_object_get(s, "verdict")));
      if (json_array_size(files_of) > 1)
        jw_outf(" (%lu files)", (unsigned long)json_array_size(files_of));
      if (json_object_get(s, "lines"))
        jw_outf(", %lld lines, index %lld to %lld%s\n",
                (long long)json_integer_value(json_object_get(s, "lines")),
                (long long)json_integer_value(json_object_get(s, "first_index")),
                (long long)json_integer_value(json_object_get(s, "last_index")),
                json_is_true(json_object_get(s, "complete")) ? ", closed by sandbox.job_end" : "");
      else
        jw_out("\n", 1);
      json_array_foreach(json_object_get(s, "damage"), m, d) say_damage(d);
      json_array_foreach(json_object_get(s, "duplicates"), m, d) {
        json_t *f1 = json_object_get(d, "first");
        jw_outf("  duplicate: %s:%lld (index %lld): the same line as %s:%lld, delivered again "
                "(not damage)\n",
                json_string_value(json_object_get(d, "file")),
                (long long)json_integer_value(json_object_get(d, "line")),
                (long long)json_integer_value(json_object_get(d, "index")),
                json_string_value(json_object_get(f1, "file")),
                (long long)json_integer_value(json_object_get(f1, "line")));
      }
      if (json_object_get(s, "duplicates_not_listed") != NULL)
        jw_outf("  ... and %lld more duplicate line(s)\n",
                (long long)json_integer_value(json_object_get(s, "duplicates_not_listed")));
    }
    json_array_foreach(json_object_get(doc, "incomplete"), k, s) {
      char name[JW_PARTS_NAME_MAX];
      const char *dg = json_string_value(json_object_get(s, "digest"));
      jw__parts_name(name, sizeof(name), json_string_value(json_object_get(s, "run_id")),
                     (uint64_t)json_integer_value(json_object_get(s, "seq")), dg ? dg : "",
                     (uint64_t)json_integer_value(json_object_get(s, "limit")));
      jw_outf("%s:%lld: incomplete: %s: %lld of %lld continuation records (part "
              "%lld missing); the event is not in the record\n",
              json_string_value(json_object_get(s, "file")),
              (long long)json_integer_value(json_object_get(s, "line")), name,
              (long long)json_integer_value(json_object_get(s, "parts_read")),
              (long long)json_integer_value(json_object_get(s, "parts")),
              (long long)json_integer_value(json_object_get(s, "first_missing")));
    }
    if (json_integer_value(json_object_get(doc, "duplicates")) > 0)
      jw_outf("verify: %lld duplicate line(s): delivered more than once, not damage\n",
              (long long)json_integer_value(json_object_get(doc, "duplicates")));
    if (status == JW_EXIT_OK) {
      jw_outf("verify: intact\n");
    } else {
      json_t *d = json_object_get(doc, "first_damage");
      jw_outf("verify: DAMAGED; the first bad line:\n");
      say_damage(d);
    }
  }
  json_decref(doc);
  return status;
}

int jw_cmd_seal_key(int argc, char **argv) {
  jw_seal_key_t key;
  jw_error_t err;
  if (argc != 4 || strcmp(argv[2], "new") != 0) {
    jw_errf("seal-key: expected 'seal-key new FILE'");
    return JW_EXIT_JW_ERROR;
  }
  memset(&err, 0, sizeof(err));
  if (jw_seal_key_generate(&key) != 0) {
    jw_errf("seal-key: no random source");
    return JW_EXIT_JW_ERROR;
  }
  if (jw_seal_key_write(argv[3], &key, &err) != 0) {
    jw_seal_key_wipe(&key);
    jw_errf("seal-key: %s", err.text);
    return JW_EXIT_JW_ERROR;
  }
  jw_outf("%s: new seal key %s (owner-only; keep a copy away from the sandboxed program)\n",
          argv[3], key.key_id);
  jw_seal_key_wipe(&key);
  return JW_EXIT_OK;
}

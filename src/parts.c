/* Continuation records (src/parts.h): splitting a line too long for a
 * sink, and putting it back together in a reader.
 *
 * The splitter cuts the raw line between UTF-8 characters and lets jansson
 * (the reference writer) escape each segment into the part's data string.
 * So that no part is longer than the limit, it counts each character's
 * escaped length the way jansson writes it (dump.c, dump_string: '"' and
 * '\\' and \b \f \n \r \t as two bytes, other C0 controls as \u00XX, all
 * else as it is, without JSON_ENSURE_ASCII / JSON_ESCAPE_SLASH), and the
 * envelope's length from the digits of n and of. `of` is not known before
 * the cutting: the cutting is done with a guess of its digits and redone
 * with more digits until the count it gives has as many.
 *
 * The reassembler keeps one entry per line in a hash table (libsodium's
 * SipHash with a random key: a record is outside input), keyed by run_id
 * + seq + digest + limit for version 2 records and by run_id + seq for
 * version 1 (a version 1 and a version 2 part never belong to one line).
 * An incomplete line holds its parts' data; a completed line keeps only a
 * 16-byte BLAKE2b digest per part, so that a part read again later is
 * known to be the same (ignored) or not (a conflict). Everything held is
 * counted against a cap; completed lines are forgotten oldest first when
 * the count goes over it (a stray copy of one part of a line forgotten
 * then looks like the start of an incomplete line). An incomplete line
 * sets its whole `bytes` aside when its first part comes, so a line taken
 * in can always be completed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "parts.h"

#define DIGEST_BYTES JW_PARTS_DIGEST_BYTES
#define DIGEST_HEX   (2 * DIGEST_BYTES)

/* A version 2 record's envelope, around its run id, digest and numbers
 * (seq, limit, n, of, bytes) and its data. */
static const char env_a[] = "{\"jobwarden_part\":{\"v\":2,\"run_id\":\"",
                  env_seq[] = "\",\"seq\":", env_digest[] = ",\"digest\":\"",
                  env_limit[] = "\",\"limit\":", env_n[] = ",\"n\":", env_of[] = ",\"of\":",
                  env_bytes[] = ",\"bytes\":", env_data[] = ",\"data\":\"", env_end[] = "\"}}";
#define ENVELOPE_TEXT                                                                              \
  (sizeof(env_a) + sizeof(env_seq) + sizeof(env_digest) + sizeof(env_limit) + sizeof(env_n) +      \
   sizeof(env_of) + sizeof(env_bytes) + sizeof(env_data) + sizeof(env_end) - 9)
/* JW_PARTS_MIN_MAX is this envelope at its widest and one escaped
 * character (src/parts.h says how); the envelope is version 2's. */
_Static_assert(JW_PARTS_VERSION == 2, "the envelope above is version 2's");
_Static_assert(ENVELOPE_TEXT == 96 && JW_PARTS_MIN_MAX == ENVELOPE_TEXT + JW_PARTS_RUN_ID_MAX +
                                                              DIGEST_HEX + 5 * 20 + 6,
               "JW_PARTS_MIN_MAX: the widest envelope and one escaped character");

/* ---- shared -------------------------------------------------------------- */

static int run_id_ok(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > JW_PARTS_RUN_ID_MAX)
    return 0;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          c == '-'))
      return 0;
  }
  return 1;
}

static size_t digits(uint64_t v) {
  size_t d = 1;
  while (v >= 10) {
    v /= 10;
    d++;
  }
  return d;
}

const char *jw__parts_record_start(const char *line, size_t *len) {
  size_t i;
  if (*len > 0 && line[0] == '{')
    return line;
  for (i = 0; i + 1 < *len; i++)
    if (line[i] == '{' && line[i + 1] == '"') {
      *len -= i;
      return line + i;
    }
  return line;
}

/* ---- writer -------------------------------------------------------------- */

/* The bytes of one UTF-8 character starting at s (valid UTF-8 assumed:
 * the line was checked) and its length once jansson escapes it. */
static size_t char_len(const unsigned char *s, size_t left, size_t *escaped) {
  unsigned char c = s[0];
  size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (n > left)
    n = left;
  if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
    *escaped = 2;
  else if (c < 0x20)
    *escaped = 6;
  else
    *escaped = n;
  return n;
}

/* The part record's length without its data's characters. */
static size_t envelope_len(size_t run_id_len, uint64_t seq, size_t max, uint64_t n,
                           size_t of_digits, size_t bytes) {
  return ENVELOPE_TEXT + run_id_len + digits(seq) + DIGEST_HEX + digits(max) + digits(n) +
         of_digits + digits(bytes);
}

/* Where part n's segment that starts at `pos` ends. */
static size_t segment_end(const char *line, size_t len, size_t pos, size_t room) {
  size_t used = 0;
  while (pos < len) {
    size_t esc, n = char_len((const unsigned char *)line + pos, len - pos, &esc);
    if (used + esc > room)
      break;
    used += esc;
    pos += n;
  }
  return pos;
}

typedef struct {
  const char *line;
  size_t len, max, rid_len;
  const char *run_id;
  uint64_t seq;
} split_t;

/* How many parts the cutting gives when `of` has of_digits digits. */
static uint64_t count_parts(const split_t *s, size_t of_digits) {
  size_t pos = 0;
  uint64_t n = 0;
  while (pos < s->len) {
    n++;
    pos = segment_end(s->line, s->len, pos,
                      s->max - envelope_len(s->rid_len, s->seq, s->max, n, of_digits, s->len));
  }
  return n;
}

int jw__parts_split(const char *line, size_t len, size_t max, const char *run_id, uint64_t seq,
                    jw__parts_emit_fn emit, void *ctx, jw_error_t *err) {
  split_t s;
  size_t of_digits = 1, pos = 0;
  uint64_t of = 0, n;
  json_t *check;
  unsigned char dg[DIGEST_BYTES];
  char digest[DIGEST_HEX + 1];
  int rc = 0;

  if (max < JW_PARTS_MIN_MAX)
    return jw_error_set(err, JW_EINVAL, 0, "parts",
                        "a size limit of %lu bytes is too small to split a line (at least %u)",
                        (unsigned long)max, JW_PARTS_MIN_MAX);
  if (run_id == NULL || !run_id_ok(run_id, strlen(run_id)))
    return jw_error_set(err, JW_EINVAL, 0, "parts",
                        "run_id: expected 1 to %u characters of [0-9A-Za-z_-]",
                        JW_PARTS_RUN_ID_MAX);
  if (seq > (uint64_t)INT64_MAX)
    return jw_error_set(err, JW_EINVAL, 0, "parts", "seq %llu is above 2^63-1",
                        (unsigned long long)seq);
  if (len > 0 && line[len - 1] == '\n')
    len--;
  if (len <= max)
    return JW_PARTS_FITS;
  /* jansson's own check: a line it could not write as a string is not
   * split (each segment must be valid UTF-8). */
  check = json_stringn(line, len);
  if (check == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "parts",
                        "the line (%lu bytes) is not valid UTF-8: it cannot be split into JSON "
                        "strings",
                        (unsigned long)len);
  json_decref(check);
  /* The whole line's digest names it apart from another line of the same
   * seq (another sink's) and checks it once put together. */
  if (sodium_init() < 0)
    return jw_error_set(err, JW_ESYS, 0, "parts", "libsodium could not be initialized");
  crypto_generichash(dg, sizeof(dg), (const unsigned char *)line, len, NULL, 0);
  sodium_bin2hex(digest, sizeof(digest), dg, sizeof(dg));

  s.line = line;
  s.len = len;
  s.max = max;
  s.run_id = run_id;
  s.rid_len = strlen(run_id);
  s.seq = seq;
  for (;;) {
    of = count_parts(&s, of_digits);
    if (digits(of) <= of_digits)
      break;
    of_digits = digits(of);
  }
  /* digits(of) < of_digits cannot happen: more digits only make parts
   * smaller, so the count does not go down. Render each part. */
  for (n = 1; n <= of && rc == 0; n++) {
    size_t room = max - envelope_len(s.rid_len, seq, max, n, of_digits, len);
    size_t end = segment_end(line, len, pos, room);
    json_t *part = json_object(), *in = json_object();
    char *text = NULL;
    if (part == NULL || in == NULL) {
      json_decref(part);
      json_decref(in);
      return jw_error_set(err, JW_ENOMEM, 0, "parts", "out of memory");
    }
    if (json_object_set_new(part, "jobwarden_part", in) != 0) { /* `in` is stolen either way */
      json_decref(part);
      return jw_error_set(err, JW_ENOMEM, 0, "parts", "out of memory");
    }
    if (json_object_set_new(in, "v", json_integer(JW_PARTS_VERSION)) != 0 ||
        json_object_set_new(in, "run_id", json_string(run_id)) != 0 ||
        json_object_set_new(in, "seq", json_integer((json_int_t)seq)) != 0 ||
        json_object_set_new(in, "digest", json_string(digest)) != 0 ||
        json_object_set_new(in, "limit", json_integer((json_int_t)max)) != 0 ||
        json_object_set_new(in, "n", json_integer((json_int_t)n)) != 0 ||
        json_object_set_new(in, "of", json_integer((json_int_t)of)) != 0 ||
        json_object_set_new(in, "bytes", json_integer((json_int_t)len)) != 0 ||
        json_object_set_new(in, "data", json_stringn(line + pos, end - pos)) != 0 ||
        (text = json_dumps(part, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
      json_decref(part);
      return jw_error_set(err, JW_ENOMEM, 0, "parts", "out of memory");
    }
    json_decref(part);
    /* The count above is the contract: a part over the limit would be a
     * bug here, never sent. */
    if (strlen(text) > max) {
      rc = jw_error_set(err, JW_EINVAL, 0, "parts",
                        "part %llu of %llu came out %lu bytes long, over the limit of %lu",
                        (unsigned long long)n, (unsigned long long)of, (unsigned long)strlen(text),
                        (unsigned long)max);
      free(text);
      break;
    }
    rc = emit(ctx, text, strlen(text));
    free(text);
    pos = end;
  }
  return rc;
}

/* ---- reader -------------------------------------------------------------- */

typedef struct {
  char *data; /* NULL: not read */
  size_t len;
  uint64_t tag;
} slot_t;

/* What names a line: run_id + seq; for version 2 also the whole line's
 * digest (hex) and the limit it was split at ("" and 0 for version 1). */
typedef struct {
  unsigned version;
  const char *run_id;
  uint64_t seq;
  const char *digest;
  uint64_t limit;
} line_key_t;

typedef struct line_s {
  struct line_s *next_in_bucket;
  struct line_s *prev, *next; /* in the pending or the completed list */
  unsigned version;
  char run_id[JW_PARTS_RUN_ID_MAX + 1];
  uint64_t seq;
  char digest[DIGEST_HEX + 1];
  uint64_t limit;
  uint32_t of;
  size_t bytes;
  /* Parts read and not yet put together (an incomplete line, or parts of
   * a completed line that came again). */
  slot_t *slots;
  uint32_t seen;
  size_t have;
  uint64_t first_tag;
  /* A completed line: each part's digest. */
  unsigned char *digests;
  uint64_t *tags; /* completed: where each part was read */
  size_t charge;  /* what it counts against the cap */
  int on_pending; /* in the pending list (else in the completed one) */
} line_t;

typedef struct {
  line_t *head, *tail;
} list_t;

struct jw__parts_s {
  line_t **buckets;
  size_t n_buckets, n_lines;
  list_t pending, completed;
  size_t held, cap;
  unsigned char key[crypto_shorthash_KEYBYTES];
};

static void list_push(list_t *l, line_t *x) {
  x->next = NULL;
  x->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = x;
  else
    l->head = x;
  l->tail = x;
}

static void list_remove(list_t *l, line_t *x) {
  if (x->prev != NULL)
    x->prev->next = x->next;
  else
    l->head = x->next;
  if (x->next != NULL)
    x->next->prev = x->prev;
  else
    l->tail = x->prev;
  x->prev = x->next = NULL;
}

static line_key_t key_of(const line_t *x) {
  line_key_t k;
  k.version = x->version;
  k.run_id = x->run_id;
  k.seq = x->seq;
  k.digest = x->digest;
  k.limit = x->limit;
  return k;
}

/* Every member of the key goes into the hash: lines of one seq (two
 * sinks' or two limits') spread over the table like any others. */
static size_t bucket_of(const jw__parts_t *p, const line_key_t *k, size_t n_buckets) {
  unsigned char in[1 + JW_PARTS_RUN_ID_MAX + 8 + DIGEST_HEX + 8], h[crypto_shorthash_BYTES];
  size_t rl = strlen(k->run_id), dl = strlen(k->digest), at = 0, i;
  uint64_t v = 0;
  in[at++] = (unsigned char)k->version;
  memcpy(in + at, k->run_id, rl);
  at += rl;
  for (i = 0; i < 8; i++)
    in[at++] = (unsigned char)(k->seq >> (8 * i));
  memcpy(in + at, k->digest, dl);
  at += dl;
  for (i = 0; i < 8; i++)
    in[at++] = (unsigned char)(k->limit >> (8 * i));
  crypto_shorthash(h, in, at, p->key);
  for (i = 0; i < 8; i++)
    v |= (uint64_t)h[i] << (8 * i);
  return (size_t)(v % n_buckets);
}

jw__parts_t *jw__parts_new(void) {
  jw__parts_t *p;
  if (sodium_init() < 0)
    return NULL;
  p = calloc(1, sizeof(*p));
  if (p == NULL)
    return NULL;
  p->n_buckets = 64;
  p->buckets = calloc(p->n_buckets, sizeof(*p->buckets));
  if (p->buckets == NULL) {
    free(p);
    return NULL;
  }
  p->cap = JW_PARTS_CAP_DEFAULT;
  randombytes_buf(p->key, sizeof(p->key));
  return p;
}

void jw__parts_set_cap(jw__parts_t *p, size_t cap) {
  p->cap = cap < 4096 ? 4096 : cap;
}

size_t jw__parts_held(const jw__parts_t *p) {
  return p->held;
}

static void slots_clear(jw__parts_t *p, line_t *x) {
  uint32_t i;
  if (x->slots == NULL)
    return;
  for (i = 0; i < x->of; i++)
    free(x->slots[i].data);
  free(x->slots);
  x->slots = NULL;
  p->held -= (size_t)x->of * sizeof(slot_t) + x->bytes;
  x->charge -= (size_t)x->of * sizeof(slot_t) + x->bytes;
  x->seen = 0;
  x->have = 0;
}

/* Takes x out of the table and its list, and frees it. */
static void line_drop(jw__parts_t *p, line_t *x) {
  line_key_t k = key_of(x);
  line_t **pp = &p->buckets[bucket_of(p, &k, p->n_buckets)];
  while (*pp != NULL && *pp != x)
    pp = &(*pp)->next_in_bucket;
  if (*pp == x)
    *pp = x->next_in_bucket;
  list_remove(x->on_pending ? &p->pending : &p->completed, x);
  slots_clear(p, x);
  p->held -= x->charge;
  free(x->digests);
  free(x->tags);
  free(x);
  p->n_lines--;
}

void jw__parts_free(jw__parts_t *p) {
  if (p == NULL)
    return;
  while (p->pending.head != NULL)
    line_drop(p, p->pending.head);
  while (p->completed.head != NULL)
    line_drop(p, p->completed.head);
  free(p->buckets);
  free(p);
}

static line_t *line_find(const jw__parts_t *p, const line_key_t *k) {
  line_t *x = p->buckets[bucket_of(p, k, p->n_buckets)];
  for (; x != NULL; x = x->next_in_bucket)
    if (x->seq == k->seq && x->version == k->version && x->limit == k->limit &&
        strcmp(x->run_id, k->run_id) == 0 && strcmp(x->digest, k->digest) == 0)
      return x;
  return NULL;
}

static void table_grow(jw__parts_t *p) {
  size_t nb = p->n_buckets * 2, i;
  line_t **b = calloc(nb, sizeof(*b));
  if (b == NULL)
    return; /* longer chains, still correct */
  for (i = 0; i < p->n_buckets; i++) {
    line_t *x = p->buckets[i], *next;
    for (; x != NULL; x = next) {
      line_key_t k = key_of(x);
      size_t at = bucket_of(p, &k, nb);
      next = x->next_in_bucket;
      x->next_in_bucket = b[at];
      b[at] = x;
    }
  }
  free(p->buckets);
  p->buckets = b;
  p->n_buckets = nb;
}

/* Makes room for `need` more bytes: forgets completed lines, oldest
 * first. 0 when it fits, -1 when it does not. */
static int make_room(jw__parts_t *p, size_t need, const line_t *keep) {
  line_t *x = p->completed.head;
  while (p->held + need > p->cap && x != NULL) {
    line_t *next = x->next;
    if (x != keep && x->slots == NULL)
      line_drop(p, x);
    x = next;
  }
  return p->held + need <= p->cap ? 0 : -1;
}

void jw__parts_name(char *buf, size_t size, const char *run_id, uint64_t seq, const char *digest,
                    uint64_t limit) {
  if (digest != NULL && digest[0] != '\0')
    snprintf(buf, size, "run %s seq %llu (digest %.12s, limit %llu)", run_id,
             (unsigned long long)seq, digest, (unsigned long long)limit);
  else
    snprintf(buf, size, "run %s seq %llu", run_id, (unsigned long long)seq);
}

static int why(jw__part_result_t *res, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int why(jw__part_result_t *res, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->why, sizeof(res->why), fmt, ap);
  va_end(ap);
  return code;
}

/* An integer member of `in` in [lo, hi], else -1 (with res->why). */
static int get_uint(json_t *in, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
                    jw__part_result_t *res) {
  json_t *v = json_object_get(in, key);
  if (v == NULL)
    return why(res, -1, "a part record without \"%s\"", key);
  if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < lo ||
      (uint64_t)json_integer_value(v) > hi)
    return why(res, -1, "a part record whose \"%s\" is not an integer from %llu to %llu", key,
               (unsigned long long)lo, (unsigned long long)hi);
  *out = (uint64_t)json_integer_value(v);
  return 0;
}

/* Drops the line x whose parts were refused as a whole (res says where
 * its first part was): a line never completed goes; one completed before
 * keeps what tells a repeat from a conflict, its parts read again go. */
static void drop_line(jw__parts_t *p, line_t *x, jw__part_result_t *res) {
  res->line_dropped = 1;
  res->first_tag = x->first_tag;
  if (x->digests == NULL)
    line_drop(p, x);
  else
    slots_clear(p, x);
}

/* The data of parts 1..of, in order, into a new buffer. */
static char *join(line_t *x) {
  char *w = malloc(x->bytes + 1);
  size_t at = 0;
  uint32_t i;
  if (w == NULL)
    return NULL;
  for (i = 0; i < x->of; i++) {
    memcpy(w + at, x->slots[i].data, x->slots[i].len);
    at += x->slots[i].len;
  }
  w[at] = '\0';
  return w;
}

int jw__parts_feed(jw__parts_t *p, const char *line, size_t len, uint64_t tag,
                   jw__part_result_t *res) {
  static const char prefix[] = "{\"jobwarden_part\":";
  json_t *root = NULL, *in, *data;
  json_error_t je;
  uint64_t v, seq, n, of, bytes, cap, limit = 0;
  const char *rid, *d, *digest = "";
  size_t dlen;
  line_key_t key;
  line_t *x;
  unsigned char dg[DIGEST_BYTES];
  char name[JW_PARTS_NAME_MAX];
  int rc;

  memset(res, 0, sizeof(*res));
  line = jw__parts_record_start(line, &len);
  if (len < sizeof(prefix) - 1 || memcmp(line, prefix, sizeof(prefix) - 1) != 0)
    return JW_PARTS_NONE;
  root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (root == NULL) {
    char t[120];
    size_t i;
    jw__strlcpy(t, je.text, sizeof(t));
    for (i = 0; t[i] != '\0'; i++) /* it may quote the bytes: keep them printable */
      if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f)
        t[i] = '?';
    return why(res, JW_EINVAL, "a damaged part record: not JSON: %s (column %d)", t, je.column);
  }
  in = json_object_get(root, "jobwarden_part");
  if (json_object_size(root) != 1 || !json_is_object(in)) {
    rc = why(res, JW_EINVAL, "a damaged part record: expected {\"jobwarden_part\":{...}} alone");
    goto done;
  }
  if (get_uint(in, "v", 0, (uint64_t)INT64_MAX, &v, res) != 0) {
    rc = JW_EINVAL;
    goto done;
  }
  if (v != 1 && v != 2) {
    rc = why(res, JW_EINVAL, "a part record of version %llu (this reader knows versions 1 and 2)",
             (unsigned long long)v);
    goto done;
  }
  if (json_object_size(in) != (v == 1 ? 7u : 9u)) {
    rc = why(res, JW_EINVAL, "a damaged part record: expected the members %s (found %lu members)",
             v == 1 ? "v, run_id, seq, n, of, bytes, data"
                    : "v, run_id, seq, digest, limit, n, of, bytes, data",
             (unsigned long)json_object_size(in));
    goto done;
  }
  rid = json_string_value(json_object_get(in, "run_id"));
  if (rid == NULL || !run_id_ok(rid, json_string_length(json_object_get(in, "run_id")))) {
    rc = why(res, JW_EINVAL, "a part record whose \"run_id\" is not 1 to %u of [0-9A-Za-z_-]",
             JW_PARTS_RUN_ID_MAX);
    goto done;
  }
  cap = p->cap;
  if (get_uint(in, "seq", 0, (uint64_t)INT64_MAX, &seq, res) != 0) {
    rc = JW_EINVAL;
    goto done;
  }
  if (v == 2) {
    json_t *dj = json_object_get(in, "digest");
    digest = json_string_value(dj);
    if (digest == NULL || json_string_length(dj) != DIGEST_HEX ||
        !jw__lower_hex(digest, DIGEST_HEX)) {
      rc = why(res, JW_EINVAL, "a part record whose \"digest\" is not %d lowercase hex digits",
               DIGEST_HEX);
      goto done;
    }
    if (get_uint(in, "limit", JW_PARTS_MIN_MAX, (uint64_t)INT64_MAX, &limit, res) != 0) {
      rc = JW_EINVAL;
      goto done;
    }
  }
  if (get_uint(in, "bytes", 1, cap, &bytes, res) != 0 ||
      get_uint(in, "of", 1, bytes < UINT32_MAX ? bytes : UINT32_MAX, &of, res) != 0 ||
      get_uint(in, "n", 1, of, &n, res) != 0) {
    rc = JW_EINVAL;
    goto done;
  }
  data = json_object_get(in, "data");
  if (!json_is_string(data) || json_string_length(data) == 0 || json_string_length(data) > bytes) {
    rc = why(res, JW_EINVAL,
             "a part record whose \"data\" is not a string of 1 to \"bytes\" (%llu) bytes",
             (unsigned long long)bytes);
    goto done;
  }
  res->version = (unsigned)v;
  jw__strlcpy(res->run_id, rid, sizeof(res->run_id));
  res->seq = seq;
  jw__strlcpy(res->digest, digest, sizeof(res->digest));
  res->limit = limit;
  res->n = (uint32_t)n;
  res->of = (uint32_t)of;
  d = json_string_value(data);
  dlen = json_string_length(data);
  jw__parts_name(name, sizeof(name), rid, seq, digest, limit);

  key.version = (unsigned)v;
  key.run_id = rid;
  key.seq = seq;
  key.digest = digest;
  key.limit = limit;
  x = line_find(p, &key);
  if (x != NULL && (x->of != of || x->bytes != bytes)) {
    res->conflict = 1;
    res->other_tag = x->slots != NULL ? x->first_tag : x->tags[0];
    rc = why(res, JW_EINVAL,
             "part %llu of %s says of %llu and bytes %llu; the parts read before "
             "say of %lu and bytes %lu",
             (unsigned long long)n, name, (unsigned long long)of, (unsigned long long)bytes,
             (unsigned long)x->of, (unsigned long)x->bytes);
    goto done;
  }
  if (x != NULL && x->digests != NULL) {
    crypto_generichash(dg, sizeof(dg), (const unsigned char *)d, dlen, NULL, 0);
    if (memcmp(dg, x->digests + (n - 1) * DIGEST_BYTES, DIGEST_BYTES) != 0) {
      res->conflict = 1;
      res->other_tag = x->tags[n - 1];
      rc = why(res, JW_EINVAL,
               "part %llu of %llu of %s differs from the part %llu read before "
               "(the line was already whole)",
               (unsigned long long)n, (unsigned long long)of, name, (unsigned long long)n);
      goto done;
    }
  }
  if (x != NULL && x->slots != NULL && x->slots[n - 1].data != NULL) {
    slot_t *s = &x->slots[n - 1];
    if (s->len == dlen && memcmp(s->data, d, dlen) == 0) {
      rc = JW_PARTS_REPEAT;
    } else {
      res->conflict = 1;
      res->other_tag = s->tag;
      rc = why(res, JW_EINVAL, "part %llu of %llu of %s differs from the part %llu read before",
               (unsigned long long)n, (unsigned long long)of, name, (unsigned long long)n);
    }
    goto done;
  }
  if (x == NULL) {
    if (make_room(p, sizeof(line_t), NULL) != 0) {
      rc = why(res, JW_EINVAL,
               "part %llu of %llu of %s dropped: the incomplete lines held take "
               "the reader's cap of %lu bytes",
               (unsigned long long)n, (unsigned long long)of, name, (unsigned long)p->cap);
      goto done;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
      rc = why(res, JW_ENOMEM, "out of memory");
      goto done;
    }
    x->version = (unsigned)v;
    jw__strlcpy(x->run_id, rid, sizeof(x->run_id));
    x->seq = seq;
    jw__strlcpy(x->digest, digest, sizeof(x->digest));
    x->limit = limit;
    x->of = (uint32_t)of;
    x->bytes = (size_t)bytes;
    x->charge = sizeof(line_t);
    p->held += x->charge;
    {
      size_t b = bucket_of(p, &key, p->n_buckets);
      x->next_in_bucket = p->buckets[b];
      p->buckets[b] = x;
    }
    x->on_pending = 1;
    list_push(&p->pending, x);
    if (++p->n_lines > p->n_buckets * 2)
      table_grow(p);
  }
  if (x->slots == NULL) {
    /* The whole line's bytes are set aside now: a line taken in can
     * always be completed. */
    size_t need = (size_t)of * sizeof(slot_t) + (size_t)bytes;
    if (make_room(p, need, x) != 0) {
      rc = why(res, JW_EINVAL,
               "part %llu of %llu of %s dropped: its line would take the reader "
               "over its cap of %lu bytes",
               (unsigned long long)n, (unsigned long long)of, name, (unsigned long)p->cap);
      if (x->digests == NULL)
        line_drop(p, x);
      goto done;
    }
    x->slots = calloc((size_t)of, sizeof(slot_t));
    if (x->slots == NULL) {
      rc = why(res, JW_ENOMEM, "out of memory");
      if (x->digests == NULL)
        line_drop(p, x);
      goto done;
    }
    p->held += need;
    x->charge += need;
    x->first_tag = tag;
  }
  if (x->have + dlen > x->bytes) {
    rc = why(res, JW_EINVAL,
             "the parts of %s read so far hold %lu bytes, more than its \"bytes\" "
             "(%lu): the line is dropped",
             name, (unsigned long)(x->have + dlen), (unsigned long)x->bytes);
    drop_line(p, x, res);
    goto done;
  }
  {
    slot_t *s = &x->slots[n - 1];
    s->data = malloc(dlen ? dlen : 1);
    if (s->data == NULL) {
      rc = why(res, JW_ENOMEM, "out of memory");
      goto done;
    }
    memcpy(s->data, d, dlen);
    s->len = dlen;
    s->tag = tag;
    x->have += dlen;
    x->seen++;
  }
  if (x->seen < x->of) {
    rc = x->digests != NULL ? JW_PARTS_REPEAT : JW_PARTS_HELD;
    goto done;
  }
  /* Every part is here. */
  if (x->have != x->bytes) {
    rc = why(res, JW_EINVAL,
             "the %lu parts of %s hold %lu bytes, not its \"bytes\" (%lu): the line "
             "is dropped",
             (unsigned long)x->of, name, (unsigned long)x->have, (unsigned long)x->bytes);
    drop_line(p, x, res);
    goto done;
  }
  res->whole = join(x);
  if (res->whole == NULL) {
    rc = why(res, JW_ENOMEM, "out of memory");
    goto done;
  }
  if (x->version == 2) {
    /* The line put together is the one the parts name: parts of another
     * line under the same name (forged, or damaged the same way twice)
     * are not passed on as it. */
    char hex[DIGEST_HEX + 1];
    crypto_generichash(dg, sizeof(dg), (const unsigned char *)res->whole, x->bytes, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), dg, sizeof(dg));
    if (strcmp(hex, x->digest) != 0) {
      free(res->whole);
      res->whole = NULL;
      rc = why(res, JW_EINVAL,
               "the %lu parts of %s put together are not the line of their "
               "\"digest\" (%s): the line is dropped",
               (unsigned long)x->of, name, digest);
      drop_line(p, x, res);
      goto done;
    }
  }
  res->whole_len = x->bytes;
  res->first_tag = x->first_tag;
  if (x->digests == NULL) {
    /* Keep what tells a later copy of a part from another part. */
    size_t need = (size_t)x->of * (DIGEST_BYTES + sizeof(uint64_t));
    uint32_t i;
    x->digests = malloc((size_t)x->of * DIGEST_BYTES);
    x->tags = malloc((size_t)x->of * sizeof(uint64_t));
    if (x->digests == NULL || x->tags == NULL) {
      free(res->whole);
      res->whole = NULL;
      rc = why(res, JW_ENOMEM, "out of memory");
      line_drop(p, x);
      goto done;
    }
    for (i = 0; i < x->of; i++) {
      crypto_generichash(x->digests + (size_t)i * DIGEST_BYTES, DIGEST_BYTES,
                         (const unsigned char *)x->slots[i].data, x->slots[i].len, NULL, 0);
      x->tags[i] = x->slots[i].tag;
    }
    p->held += need;
    x->charge += need;
    list_remove(&p->pending, x);
    x->on_pending = 0;
    list_push(&p->completed, x);
  }
  slots_clear(p, x);
  make_room(p, 0, NULL);
  rc = JW_PARTS_WHOLE;
done:
  json_decref(root);
  return rc;
}

size_t jw__parts_pending(const jw__parts_t *p, void (*fn)(void *ctx, const jw__parts_pending_t *pp),
                         void *ctx) {
  const list_t *lists[2];
  size_t count = 0, k;
  lists[0] = &p->pending;
  lists[1] = &p->completed;
  for (k = 0; k < 2; k++) {
    const line_t *x;
    for (x = lists[k]->head; x != NULL; x = x->next) {
      jw__parts_pending_t pp;
      uint32_t i;
      if (x->slots == NULL || x->seen == 0)
        continue;
      memset(&pp, 0, sizeof(pp));
      pp.version = x->version;
      pp.run_id = x->run_id;
      pp.seq = x->seq;
      pp.digest = x->digest;
      pp.limit = x->limit;
      pp.seen = x->seen;
      pp.of = x->of;
      pp.bytes = x->bytes;
      pp.first_tag = x->first_tag;
      pp.repeat = x->digests != NULL;
      for (i = 0; i < x->of; i++)
        if (x->slots[i].data == NULL) {
          pp.missing = i + 1;
          break;
        }
      count++;
      if (fn != NULL)
        fn(ctx, &pp);
    }
  }
  return count;
}

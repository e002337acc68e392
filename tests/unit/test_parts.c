/* unit: continuation records (src/parts.c). The splitter: the exact part
 * lines (version 2) of a known input; the limits (a line of exactly MAX
 * bytes is not split, MAX + 1 is; MAX below the minimum, a bad run id,
 * invalid UTF-8 are refused); cuts next to multi-byte characters and next
 * to bytes that need escaping — every part at most MAX, and as full as it
 * can be (the next character would not fit: the escaped-length count is
 * exact). A round trip over many random lines and limits. The
 * reassembler: parts interleaved, reordered, repeated, conflicting,
 * missing, a line delivered twice, collector headers, malformed parts
 * with their reasons, and its cap; two different lines of one seq (two
 * sinks) and one line at two limits put together apart; a line that is
 * not its digest; version 1 records read as before. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "harness.h"
#include "internal.h"
#include "parts.h"

#define RID "0123456789abcdef0123456789abcdef"
/* The limit most cases split at: version 2's envelope is 56 bytes longer
 * than version 1's was (the digest member, and a limit of 3 digits), so at
 * 312 each part holds the very data it held at 256 in version 1, and the
 * cuts below are the ones worked out for it. */
#define MAX 312

/* The digest a version 2 part names: BLAKE2b-128 of the line, in hex. */
static void line_digest(const char *line, size_t len, char hex[33]) {
  unsigned char d[16];
  crypto_generichash(d, sizeof(d), (const unsigned char *)line, len, NULL, 0);
  sodium_bin2hex(hex, 33, d, sizeof(d));
}

static uint64_t g_rng = 0x70617274735f7631ull; /* fixed: reproducible */

static uint32_t rnd(void) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 0x2545F4914F6CDD1Dull) >> 32);
}

/* ---- collecting parts ------------------------------------------------------ */

typedef struct {
  char **l;
  size_t *len;
  size_t n, cap;
  int fail_at; /* emit returns JW_EIO at this part (1-based); 0: never */
} parts_t;

static int collect(void *ctx, const char *part, size_t len) {
  parts_t *p = ctx;
  if (p->fail_at > 0 && (size_t)p->fail_at == p->n + 1)
    return JW_EIO;
  if (part[len] != '\0')
    return JW_EINVAL; /* promised NUL-terminated */
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 16;
    p->l = realloc(p->l, p->cap * sizeof(*p->l));
    p->len = realloc(p->len, p->cap * sizeof(*p->len));
  }
  p->l[p->n] = malloc(len + 1);
  memcpy(p->l[p->n], part, len + 1);
  p->len[p->n] = len;
  p->n++;
  return 0;
}

static void parts_free(parts_t *p) {
  size_t i;
  for (i = 0; i < p->n; i++)
    free(p->l[i]);
  free(p->l);
  free(p->len);
  memset(p, 0, sizeof(*p));
}

/* The escaped length of the UTF-8 character at s, as jansson writes it. */
static size_t esc_len(const unsigned char *s, size_t *raw) {
  unsigned char c = s[0];
  *raw = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
    return 2;
  return c < 0x20 ? 6 : *raw;
}

/* Checks the parts of `line` (len bytes, no newline) split at `max`:
 * each at most max bytes, exactly the envelope jobwarden writes, full (the
 * next character of the line would not have fitted), and their data
 * concatenated is the line. Returns the number of failed checks. */
static int check_parts(const parts_t *p, const char *line, size_t len, size_t max, uint64_t seq) {
  int before = jw_test_failures;
  size_t i, at = 0;
  for (i = 0; i < p->n; i++) {
    json_error_t je;
    json_t *j = json_loadb(p->l[i], p->len[i], JSON_ALLOW_NUL, &je), *in, *d;
    char head[300], digest[33];
    int hn;
    CHECK(p->len[i] <= max);
    CHECK(memchr(p->l[i], '\n', p->len[i]) == NULL);
    CHECK(j != NULL);
    if (j == NULL)
      return jw_test_failures - before;
    in = json_object_get(j, "jobwarden_part");
    line_digest(line, len, digest);
    hn = snprintf(head, sizeof(head),
                  "{\"jobwarden_part\":{\"v\":2,\"run_id\":\"%s\",\"seq\":%llu,\"digest\":\"%s\","
                  "\"limit\":%lu,\"n\":%lu,\"of\":%lu,\"bytes\":%lu,\"data\":\"",
                  RID, (unsigned long long)seq, digest, (unsigned long)max, (unsigned long)(i + 1),
                  (unsigned long)p->n, (unsigned long)len);
    CHECK(strncmp(p->l[i], head, (size_t)hn) == 0); /* members and their order */
    CHECK(memcmp(p->l[i] + p->len[i] - 3, "\"}}", 3) == 0);
    d = json_object_get(in, "data");
    CHECK(json_is_string(d) && json_string_length(d) > 0);
    if (!json_is_string(d) || at + json_string_length(d) > len) {
      CHECK(0);
      json_decref(j);
      return jw_test_failures - before;
    }
    CHECK(memcmp(line + at, json_string_value(d), json_string_length(d)) == 0);
    at += json_string_length(d);
    if (i + 1 < p->n) {
      size_t raw, e = esc_len((const unsigned char *)line + at, &raw);
      CHECK(p->len[i] + e > max); /* the next character would not fit */
    }
    json_decref(j);
  }
  CHECK_INT(at, len);
  return jw_test_failures - before;
}

/* ---- the splitter ---------------------------------------------------------- */

static char *repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static void test_exact(void) {
  /* {"a":"xxx...x"} of 408 bytes at MAX 312: the envelope of run RID,
   * seq 7, its digest, limit 312, n and of of one digit, bytes 408 is 169
   * bytes, leaving 143 for the escaped data. Part 1 takes {"a":" (6
   * bytes, 9 escaped) and 134 x; part 2, 143 x; part 3 the last 123 x and
   * "} (3 escaped). The digest is from Python's hashlib (another BLAKE2b):
   * hashlib.blake2b(line, digest_size=16).hexdigest(). */
  char line[500], want[600];
  char *x134 = repeat('x', 134), *x143 = repeat('x', 143), *x400 = repeat('x', 400),
       *x123 = repeat('x', 123);
  parts_t p;
  jw_error_t err;
  memset(&p, 0, sizeof(p));
  memset(&err, 0, sizeof(err));
  snprintf(line, sizeof(line), "{\"a\":\"%s\"}\n", x400);
  CHECK_INT(strlen(line), 409);
  CHECK_INT(jw__parts_split(line, strlen(line), MAX, RID, 7, collect, &p, &err), 0);
  CHECK_INT(p.n, 3);
  if (p.n == 3) {
#define V2_HEAD                                                                                    \
  "{\"jobwarden_part\":{\"v\":2,\"run_id\":\"" RID "\",\"seq\":7,"                                 \
  "\"digest\":\"6d364b771e86f74cb19f37e94cce8edf\",\"limit\":312,"
    snprintf(want, sizeof(want),
             V2_HEAD "\"n\":1,\"of\":3,\"bytes\":408,\"data\":\"{\\\"a\\\":\\\"%s\"}}", x134);
    CHECK_STR(p.l[0], want);
    CHECK_INT(p.len[0], 312);
    snprintf(want, sizeof(want), V2_HEAD "\"n\":2,\"of\":3,\"bytes\":408,\"data\":\"%s\"}}", x143);
    CHECK_STR(p.l[1], want);
    CHECK_INT(p.len[1], 312);
    snprintf(want, sizeof(want), V2_HEAD "\"n\":3,\"of\":3,\"bytes\":408,\"data\":\"%s\\\"}\"}}",
             x123);
    CHECK_STR(p.l[2], want);
    CHECK_INT(p.len[2], 295);
#undef V2_HEAD
  }
  CHECK_INT(check_parts(&p, line, 408, MAX, 7), 0);
  parts_free(&p);
  /* emit's refusal stops the split and is returned. */
  p.fail_at = 2;
  CHECK_INT(jw__parts_split(line, strlen(line), MAX, RID, 7, collect, &p, &err), JW_EIO);
  CHECK_INT(p.n, 1);
  parts_free(&p);
  free(x134);
  free(x143);
  free(x400);
  free(x123);
}

static void test_limits(void) {
  parts_t p;
  jw_error_t err;
  char *line = repeat('y', 1000);
  memset(&p, 0, sizeof(p));
  memset(&err, 0, sizeof(err));
  /* Exactly MAX: not split; with its newline too. */
  CHECK_INT(jw__parts_split(line, 300, 300, RID, 1, collect, &p, &err), JW_PARTS_FITS);
  line[300] = '\n';
  CHECK_INT(jw__parts_split(line, 301, 300, RID, 1, collect, &p, &err), JW_PARTS_FITS);
  CHECK_INT(p.n, 0);
  line[300] = 'y';
  /* MAX + 1: split (three parts: the envelope takes 166 of the 300). */
  CHECK_INT(jw__parts_split(line, 301, 300, RID, 1, collect, &p, &err), 0);
  CHECK_INT(p.n, 3);
  CHECK_INT(check_parts(&p, line, 301, 300, 1), 0);
  parts_free(&p);
  /* The smallest limit, and one below it. */
  CHECK_INT(jw__parts_split(line, 1000, JW_PARTS_MIN_MAX, RID, 123456789, collect, &p, &err), 0);
  CHECK_INT(check_parts(&p, line, 1000, JW_PARTS_MIN_MAX, 123456789), 0);
  parts_free(&p);
  CHECK_INT(jw__parts_split(line, 1000, JW_PARTS_MIN_MAX - 1, RID, 1, collect, &p, &err),
            JW_EINVAL);
  CHECK_STR(err.text, "a size limit of 297 bytes is too small to split a line (at least 298)");
  /* The widest envelope still leaves room: a 64-character run id and a
   * 19-digit seq at the minimum. */
  {
    char rid64[65];
    memset(rid64, 'Z', 64);
    rid64[64] = '\0';
    CHECK_INT(jw__parts_split(line, 1000, JW_PARTS_MIN_MAX, rid64, (uint64_t)INT64_MAX, collect, &p,
                              &err),
              0);
    CHECK(p.n > 0);
    {
      size_t i;
      for (i = 0; i < p.n; i++)
        CHECK(p.len[i] <= JW_PARTS_MIN_MAX);
    }
    parts_free(&p);
    rid64[10] = '"';
    CHECK_INT(jw__parts_split(line, 1000, 300, rid64, 1, collect, &p, &err), JW_EINVAL);
    CHECK_STR(err.text, "run_id: expected 1 to 64 characters of [0-9A-Za-z_-]");
    CHECK_INT(jw__parts_split(line, 1000, 300, "", 1, collect, &p, &err), JW_EINVAL);
    CHECK_INT(jw__parts_split(line, 1000, 300, RID, (uint64_t)INT64_MAX + 1, collect, &p, &err),
              JW_EINVAL);
    CHECK_STR(err.text, "seq 9223372036854775808 is above 2^63-1");
  }
  /* Not UTF-8: refused, nothing emitted. */
  line[500] = (char)0xC3;
  line[501] = '(';
  CHECK_INT(jw__parts_split(line, 1000, 300, RID, 1, collect, &p, &err), JW_EINVAL);
  CHECK_STR(err.text,
            "the line (1000 bytes) is not valid UTF-8: it cannot be split into JSON strings");
  CHECK_INT(p.n, 0);
  free(line);
}

/* Builds a line of `n` filler bytes with `ins` put at every offset from
 * `from` to `to`, one line per offset, and checks the split of each:
 * whatever falls on the cut, every part is within the limit, full, and
 * the data is the line. */
static void straddle(const char *ins, size_t ins_len, const char *what) {
  size_t off;
  int failed = 0;
  for (off = 100; off < 200 && !failed; off++) {
    char line[600];
    parts_t p;
    size_t len = 500;
    memset(&p, 0, sizeof(p));
    memset(line, 'a', len);
    memcpy(line + off, ins, ins_len);
    if (jw__parts_split(line, len, MAX, RID, 42, collect, &p, NULL) != 0) {
      fprintf(stderr, "straddle %s at %lu: split failed\n", what, (unsigned long)off);
      CHECK(0);
      failed = 1;
    } else if (check_parts(&p, line, len, MAX, 42) != 0) {
      fprintf(stderr, "straddle %s at %lu: parts wrong\n", what, (unsigned long)off);
      failed = 1;
    }
    parts_free(&p);
  }
  CHECK(!failed);
}

static void test_straddling(void) {
  /* Offsets 100..199 put the insert on every position around the first
   * cut (part 1 holds 143 bytes of data at this envelope). */
  straddle("\xe2\x82\xac\xe2\x82\xac", 6, "euro signs (3 bytes)");
  straddle("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 8, "emoji (4 bytes)");
  straddle("\xc3\xa9\xc3\xa9\xc3\xa9", 6, "e-acute (2 bytes)");
  straddle("\\\"\\\\", 4, "backslash-quote, backslash-backslash");
  straddle("\\u0000\\u001f", 12, "\\u0000-style text");
  straddle("\x01\x1f\x01", 3, "control bytes (6 escaped)");
  straddle("\0\0", 2, "NUL bytes");
  straddle("\"\"\"\"\"\"", 6, "quotes");
  straddle("\t\n\r\b\f", 5, "short escapes");
  /* A known cut (the envelope of seq 42, 500 bytes is 170 bytes: 142 for
   * the data): a euro sign at bytes 141..143 goes whole to part 2, the
   * data of part 1 ends before it. */
  {
    char line[500];
    parts_t p;
    memset(&p, 0, sizeof(p));
    memset(line, 'a', sizeof(line));
    memcpy(line + 141, "\xe2\x82\xac", 3);
    CHECK_INT(jw__parts_split(line, sizeof(line), MAX, RID, 42, collect, &p, NULL), 0);
    CHECK(p.n >= 2);
    if (p.n >= 2) {
      CHECK_INT(p.len[0], 311); /* 141 bytes of data: the sign needs 3 */
      CHECK(strstr(p.l[1], "\"data\":\"\xe2\x82\xac") != NULL);
    }
    parts_free(&p);
    /* A quote at byte 141 (two escaped) does not fit either. */
    memset(line, 'a', sizeof(line));
    line[141] = '"';
    CHECK_INT(jw__parts_split(line, sizeof(line), MAX, RID, 42, collect, &p, NULL), 0);
    if (p.n >= 2) {
      CHECK_INT(p.len[0], 311);
      CHECK(strstr(p.l[1], "\"data\":\"\\\"aaa") != NULL);
    }
    parts_free(&p);
  }
}

/* A random line: ASCII, bytes that need escaping, 2- to 4-byte
 * characters, NULs. */
static size_t random_line(char *buf, size_t max_len) {
  size_t len = rnd() % (max_len + 1), at = 0;
  while (at < len) {
    uint32_t r = rnd() % 20;
    if (r < 10 || at + 4 > len)
      buf[at++] = (char)(0x20 + rnd() % 95);
    else if (r < 13)
      buf[at++] = "\"\\\n\t\r\b\f\x01\x1f\0"[rnd() % 10];
    else if (r < 15) {
      buf[at++] = (char)(0xC2 + rnd() % 30);
      buf[at++] = (char)(0x80 + rnd() % 64);
    } else if (r < 17) {
      buf[at++] = (char)0xE2;
      buf[at++] = (char)(0x80 + rnd() % 64);
      buf[at++] = (char)(0x80 + rnd() % 64);
    } else {
      buf[at++] = (char)0xF0;
      buf[at++] = (char)(0x90 + rnd() % 48);
      buf[at++] = (char)(0x80 + rnd() % 64);
      buf[at++] = (char)(0x80 + rnd() % 64);
    }
  }
  return at;
}

static void shuffle(size_t *ix, size_t n) {
  size_t i;
  for (i = n; i > 1; i--) {
    size_t j = rnd() % i, t = ix[i - 1];
    ix[i - 1] = ix[j];
    ix[j] = t;
  }
}

static void test_round_trip(void) {
  static char line[20000];
  int round, bad = 0, split = 0;
  jw__parts_t *r = jw__parts_new();
  for (round = 0; round < 2000 && bad < 5; round++) {
    size_t len = random_line(line, round % 10 == 0 ? 20000 : 3000);
    size_t max = JW_PARTS_MIN_MAX + rnd() % 2000, i;
    /* One reassembler for all. A third of the lines share four seqs: a
     * line of a seq whose other lines were put together before (another
     * sink's) is a line of its own, never a conflict. */
    uint64_t seq = rnd() % 3 == 0   ? (uint64_t)(rnd() % 4)
                   : rnd() % 2 == 0 ? ((uint64_t)rnd() << 31 | (uint64_t)round)
                                    : (uint64_t)round;
    parts_t p;
    size_t *ix;
    int rc, got_whole = 0;
    memset(&p, 0, sizeof(p));
    rc = jw__parts_split(line, len, max, RID, seq, collect, &p, NULL);
    if (len <= max) {
      if (rc != JW_PARTS_FITS || p.n != 0)
        bad++;
      parts_free(&p);
      continue;
    }
    split++;
    if (rc != 0 || check_parts(&p, line, len, max, seq) != 0) {
      fprintf(stderr, "round trip %d: len %lu max %lu: rc %d\n", round, (unsigned long)len,
              (unsigned long)max, rc);
      bad++;
      parts_free(&p);
      continue;
    }
    /* Back together, in a random order, some parts twice. */
    ix = malloc(p.n * sizeof(*ix));
    for (i = 0; i < p.n; i++)
      ix[i] = i;
    shuffle(ix, p.n);
    for (i = 0; i < p.n; i++) {
      jw__part_result_t res;
      int k = jw__parts_feed(r, p.l[ix[i]], p.len[ix[i]], i, &res);
      if (k == JW_PARTS_WHOLE) {
        got_whole++;
        if (i + 1 != p.n || res.whole_len != len || memcmp(res.whole, line, len) != 0)
          bad++;
        free(res.whole);
      } else if (k != JW_PARTS_HELD) {
        fprintf(stderr, "round trip %d: part %lu of %lu: %d %s\n", round, (unsigned long)ix[i] + 1,
                (unsigned long)p.n, k, res.why);
        bad++;
      }
      if (rnd() % 5 == 0 && i + 1 < p.n &&
          jw__parts_feed(r, p.l[ix[i]], p.len[ix[i]], i, &res) != JW_PARTS_REPEAT)
        bad++;
    }
    if (got_whole != 1)
      bad++;
    free(ix);
    parts_free(&p);
  }
  CHECK_INT(bad, 0);
  CHECK(split > 1000);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  jw__parts_free(r);
  printf("round trip: %d lines, %d split\n", round, split);
}

/* ---- the reassembler ------------------------------------------------------- */

typedef struct {
  char text[8][200];
  int n;
} pend_t;

static void on_pending(void *ctx, const jw__parts_pending_t *pp) {
  pend_t *p = ctx;
  char v2[60] = "";
  if (pp->version == 2)
    snprintf(v2, sizeof(v2), " %.8s limit %llu", pp->digest, (unsigned long long)pp->limit);
  if (p->n < 8)
    snprintf(
        p->text[p->n++], sizeof(p->text[0]), "%s/%llu%s %u of %u missing %u bytes %lu tag %llu%s",
        pp->run_id, (unsigned long long)pp->seq, v2, pp->seen, pp->of, pp->missing,
        (unsigned long)pp->bytes, (unsigned long long)pp->first_tag, pp->repeat ? " repeat" : "");
}

/* Splits a line of `len` bytes whose bytes depend on `c` into `p`. */
static char *make_line(char c, size_t len, uint64_t seq, parts_t *p) {
  char *line = repeat(c, len);
  memset(p, 0, sizeof(*p));
  CHECK_INT(jw__parts_split(line, len, MAX, RID, seq, collect, p, NULL), 0);
  return line;
}

static int feed(jw__parts_t *r, const char *line, uint64_t tag, jw__part_result_t *res) {
  return jw__parts_feed(r, line, strlen(line), tag, res);
}

static void test_reassembly(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t a, b;
  char *la = make_line('a', 400, 5, &a), *lb = make_line('b', 600, 6, &b);
  pend_t pend;
  char hdr[600];

  CHECK_INT(a.n, 3);
  CHECK_INT(b.n, 5);
  /* Not a part: ordinary lines, also with a header. */
  CHECK_INT(feed(r, "{\"schema_version\":\"2.0.0\"}", 1, &res), JW_PARTS_NONE);
  CHECK_INT(feed(r, "<134>1 2026-01-01T00:00:00Z h jobwarden - - - {\"x\":1}", 1, &res),
            JW_PARTS_NONE);
  CHECK_INT(feed(r, "", 1, &res), JW_PARTS_NONE);
  CHECK_INT(feed(r, "{\"jobwarden_partial\":{}}", 1, &res), JW_PARTS_NONE);
  /* Interleaved and reordered: b5 a2 b1 a3 b3 b2 a1 (whole a) b4 (whole b). */
  CHECK_INT(feed(r, b.l[4], 10, &res), JW_PARTS_HELD);
  CHECK_STR(res.run_id, RID);
  CHECK_INT(res.seq, 6);
  CHECK_INT(res.n, 5);
  CHECK_INT(res.of, 5);
  CHECK_INT(feed(r, a.l[1], 11, &res), JW_PARTS_HELD);
  CHECK_INT(feed(r, b.l[0], 12, &res), JW_PARTS_HELD);
  /* With a collector's header. */
  snprintf(hdr, sizeof(hdr), "<134>1 2026-01-01T00:00:00Z h jobwarden 7 - - %s", a.l[2]);
  CHECK_INT(feed(r, hdr, 13, &res), JW_PARTS_HELD);
  CHECK_INT(feed(r, b.l[2], 14, &res), JW_PARTS_HELD);
  CHECK_INT(feed(r, b.l[1], 15, &res), JW_PARTS_HELD);
  /* A part repeated byte for byte: ignored. */
  CHECK_INT(feed(r, b.l[1], 16, &res), JW_PARTS_REPEAT);
  memset(&pend, 0, sizeof(pend));
  CHECK_INT(jw__parts_pending(r, on_pending, &pend), 2);
  CHECK_STR(pend.text[0], RID "/6 5eeb958a limit 312 4 of 5 missing 4 bytes 600 tag 10");
  CHECK_STR(pend.text[1], RID "/5 360cdcc6 limit 312 2 of 3 missing 1 bytes 400 tag 11");
  CHECK_INT(feed(r, a.l[0], 17, &res), JW_PARTS_WHOLE);
  CHECK_INT(res.whole_len, 400);
  CHECK(res.whole != NULL && memcmp(res.whole, la, 400) == 0 && res.whole[400] == '\0');
  CHECK_INT(res.first_tag, 11);
  free(res.whole);
  CHECK_INT(feed(r, b.l[3], 18, &res), JW_PARTS_WHOLE);
  CHECK(res.whole != NULL && res.whole_len == 600 && memcmp(res.whole, lb, 600) == 0);
  CHECK_INT(res.first_tag, 10);
  free(res.whole);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);

  /* After the line is whole: a stray copy of one of its parts is ignored
   * and is no incomplete line (only a repeat); a copy with other data is
   * a conflict that names where the part was read. */
  CHECK_INT(feed(r, a.l[1], 20, &res), JW_PARTS_REPEAT);
  memset(&pend, 0, sizeof(pend));
  CHECK_INT(jw__parts_pending(r, on_pending, &pend), 1);
  CHECK_STR(pend.text[0], RID "/5 360cdcc6 limit 312 1 of 3 missing 1 bytes 400 tag 20 repeat");
  {
    char *forged = strdup(a.l[0]);
    char *d = strstr(forged, "\"data\":\"") + 8;
    d[3] = 'Z';
    CHECK_INT(feed(r, forged, 21, &res), JW_EINVAL);
    CHECK_INT(res.conflict, 1);
    CHECK_INT(res.other_tag, 17);
    CHECK_STR(res.why,
              "part 1 of 3 of run " RID " seq 5 (digest 360cdcc62d0f, limit 312) differs from the "
              "part 1 read before "
              "(the line was already whole)");
    free(forged);
  }
  /* The whole line delivered again (a resend): whole again. */
  CHECK_INT(feed(r, a.l[2], 22, &res), JW_PARTS_REPEAT);
  CHECK_INT(feed(r, a.l[0], 23, &res), JW_PARTS_WHOLE);
  CHECK(res.whole != NULL && res.whole_len == 400 && memcmp(res.whole, la, 400) == 0);
  CHECK_INT(res.first_tag, 20);
  free(res.whole);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);

  /* Conflicts while a line is incomplete. */
  {
    parts_t c;
    char *lc = make_line('c', 500, 9, &c), *forged;
    CHECK_INT(feed(r, c.l[0], 30, &res), JW_PARTS_HELD);
    forged = strdup(c.l[0]);
    strstr(forged, "\"data\":\"")[10] = 'Q';
    CHECK_INT(feed(r, forged, 31, &res), JW_EINVAL);
    CHECK_INT(res.conflict, 1);
    CHECK_INT(res.other_tag, 30);
    CHECK_STR(res.why,
              "part 1 of 4 of run " RID
              " seq 9 (digest d80d9c363aa5, limit 312) differs from the part 1 read before");
    free(forged);
    /* Another "of" for the same line. */
    forged = strdup(c.l[1]);
    memcpy(strstr(forged, "\"of\":4"), "\"of\":5", 6);
    CHECK_INT(feed(r, forged, 32, &res), JW_EINVAL);
    CHECK_INT(res.conflict, 1);
    CHECK_STR(res.why, "part 2 of run " RID " seq 9 (digest d80d9c363aa5, limit 312) says of 5 and "
                       "bytes 500; the parts read "
                       "before say of 4 and bytes 500");
    free(forged);
    /* Missing parts: listed at the end. */
    CHECK_INT(feed(r, c.l[2], 33, &res), JW_PARTS_HELD);
    memset(&pend, 0, sizeof(pend));
    CHECK_INT(jw__parts_pending(r, on_pending, &pend), 1);
    CHECK_STR(pend.text[0], RID "/9 d80d9c36 limit 312 2 of 4 missing 2 bytes 500 tag 30");
    free(lc);
    parts_free(&c);
  }
  free(la);
  free(lb);
  parts_free(&a);
  parts_free(&b);
  jw__parts_free(r);
}

/* Version 1 records, as jobwarden wrote them before version 2: the line
 * {"a":"x...x"} (300 x, 308 bytes) at a limit of 256 — part 1 {"a":" and
 * 134 x, part 2 143 x, part 3 23 x and "}. Readers put them together as
 * they always did (keyed by run_id + seq), apart from version 2 parts of
 * the same line and seq; two version 1 lines of one seq still conflict. */
#define V1_HEAD "{\"jobwarden_part\":{\"v\":1,\"run_id\":\"" RID "\",\"seq\":7,"

static void test_version1(void) {
  char line[400], v1[3][400];
  char *x134 = repeat('x', 134), *x143 = repeat('x', 143), *x300 = repeat('x', 300),
       *x23 = repeat('x', 23);
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t p;
  size_t i;
  memset(&p, 0, sizeof(p));
  snprintf(line, sizeof(line), "{\"a\":\"%s\"}", x300);
  snprintf(v1[0], sizeof(v1[0]),
           V1_HEAD "\"n\":1,\"of\":3,\"bytes\":308,\"data\":\"{\\\"a\\\":\\\"%s\"}}", x134);
  snprintf(v1[1], sizeof(v1[1]), V1_HEAD "\"n\":2,\"of\":3,\"bytes\":308,\"data\":\"%s\"}}", x143);
  snprintf(v1[2], sizeof(v1[2]), V1_HEAD "\"n\":3,\"of\":3,\"bytes\":308,\"data\":\"%s\\\"}\"}}",
           x23);
  CHECK_INT(strlen(v1[0]), 256);
  CHECK_INT(strlen(v1[1]), 256);
  CHECK_INT(strlen(v1[2]), 139);
  /* The same line split by version 2 at the minimum, same run and seq. */
  CHECK_INT(jw__parts_split(line, 308, JW_PARTS_MIN_MAX, RID, 7, collect, &p, NULL), 0);
  CHECK_INT(p.n, 3);
  /* v1 3, v2 1, v1 1, v1 1 again, v2 2, v1 2 (whole), v2 3 (whole) */
  CHECK_INT(feed(r, v1[2], 1, &res), JW_PARTS_HELD);
  CHECK_INT(res.version, 1);
  CHECK_STR(res.digest, "");
  CHECK_U64(res.limit, 0);
  CHECK_INT(res.n, 3);
  CHECK_INT(feed(r, p.l[0], 2, &res), JW_PARTS_HELD);
  CHECK_INT(res.version, 2);
  CHECK_INT(feed(r, v1[0], 3, &res), JW_PARTS_HELD);
  CHECK_INT(feed(r, v1[0], 4, &res), JW_PARTS_REPEAT);
  CHECK_INT(feed(r, p.l[1], 5, &res), JW_PARTS_HELD);
  CHECK_INT(feed(r, v1[1], 6, &res), JW_PARTS_WHOLE);
  CHECK(res.whole != NULL && res.whole_len == 308 && memcmp(res.whole, line, 309) == 0);
  CHECK_INT(res.first_tag, 1);
  free(res.whole);
  CHECK_INT(feed(r, p.l[2], 7, &res), JW_PARTS_WHOLE);
  CHECK(res.whole != NULL && res.whole_len == 308 && memcmp(res.whole, line, 309) == 0);
  CHECK_INT(res.first_tag, 2);
  free(res.whole);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  /* Another version 1 line of the same run and seq (version 1 cannot
   * tell it from a forgery): each of its parts is a conflict, as ever. */
  for (i = 0; i < 3; i++) {
    char other[400];
    memcpy(other, v1[i], strlen(v1[i]) + 1);
    memset(strstr(other, "xxxxx"), 'y', 5);
    CHECK_INT(feed(r, other, 10 + i, &res), JW_EINVAL);
    CHECK_INT(res.conflict, 1);
    CHECK_INT(res.other_tag, i == 0 ? 3 : i == 1 ? 6 : 1);
  }
  CHECK_STR(res.why, "part 3 of 3 of run " RID " seq 7 differs from the part 3 read before (the "
                     "line was already whole)");
  parts_free(&p);
  jw__parts_free(r);
  free(x134);
  free(x143);
  free(x300);
  free(x23);
}

/* Two lines of `len` bytes, all 'a' and all 'b' (the same length, other
 * bytes), their digests, and each split at max as seq `seq`. */
static void two_lines(size_t len, size_t max, uint64_t seq, char **la, char **lb, char da[33],
                      char db[33], parts_t *a, parts_t *b) {
  *la = repeat('a', len);
  *lb = repeat('b', len);
  memset(a, 0, sizeof(*a));
  memset(b, 0, sizeof(*b));
  line_digest(*la, len, da);
  line_digest(*lb, len, db);
  CHECK_INT(jw__parts_split(*la, len, max, RID, seq, collect, a, NULL), 0);
  CHECK_INT(jw__parts_split(*lb, len, max, RID, seq, collect, b, NULL), 0);
}

/* Two sinks of one run sending to one collector carry different lines
 * under the same run_id and seq (each sink's seal differs, or its format),
 * split at the same limit: parts of both arrive interleaved. Each line
 * comes out whole, byte for byte; neither is refused as a conflict with
 * the other. (Version 1 refused every part of the second line: "differs
 * from the part read before".) */
static void test_one_seq_two_lines(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t a, b;
  char *la, *lb, da[33], db[33];
  size_t i;
  two_lines(600, JW_PARTS_MIN_MAX, 77, &la, &lb, da, db, &a, &b);
  CHECK_INT(a.n, 5);
  CHECK_INT(b.n, 5);
  /* a1 b1 a2 b2 ... a5 (a whole) b5 (b whole) */
  for (i = 0; i < 5 && a.n == 5 && b.n == 5; i++) {
    int last = i == 4;
    CHECK_INT(feed(r, a.l[i], 2 * i, &res), last ? JW_PARTS_WHOLE : JW_PARTS_HELD);
    CHECK_INT(res.version, 2);
    CHECK_STR(res.digest, da);
    CHECK_U64(res.limit, JW_PARTS_MIN_MAX);
    if (last) {
      CHECK(res.whole != NULL && res.whole_len == 600 && memcmp(res.whole, la, 600) == 0);
      CHECK_INT(res.first_tag, 0);
      free(res.whole);
    }
    CHECK_INT(feed(r, b.l[i], 2 * i + 1, &res), last ? JW_PARTS_WHOLE : JW_PARTS_HELD);
    CHECK_STR(res.digest, db);
    if (last) {
      CHECK(res.whole != NULL && res.whole_len == 600 && memcmp(res.whole, lb, 600) == 0);
      CHECK_INT(res.first_tag, 1);
      free(res.whole);
    } else if (i == 2) {
      pend_t pend;
      memset(&pend, 0, sizeof(pend));
      CHECK_INT(jw__parts_pending(r, on_pending, &pend), 2);
      CHECK_STR(pend.text[0], RID "/77 3393bbb5 limit 298 3 of 5 missing 4 bytes 600 tag 0");
      CHECK_STR(pend.text[1], RID "/77 5eeb958a limit 298 3 of 5 missing 4 bytes 600 tag 1");
    }
  }
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  /* A resend of line b is still a resend: its parts repeat, and once all
   * came again it is whole again. */
  for (i = 0; i < b.n; i++) {
    CHECK_INT(feed(r, b.l[i], 20 + i, &res), i + 1 < b.n ? JW_PARTS_REPEAT : JW_PARTS_WHOLE);
    if (res.whole != NULL) {
      CHECK(res.whole_len == 600 && memcmp(res.whole, lb, 600) == 0);
      free(res.whole);
    }
  }
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  free(la);
  free(lb);
  parts_free(&a);
  parts_free(&b);
  jw__parts_free(r);
}

/* One line split at two limits (two syslog sinks whose headers differ in
 * length): parts cut at other places, interleaved. Each split is put
 * together on its own: two wholes of the same line, no conflict. */
static void test_two_limits(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t a, b;
  pend_t pend;
  char *l = repeat('l', 1000);
  size_t i, j;
  int whole = 0;
  memset(&a, 0, sizeof(a));
  memset(&b, 0, sizeof(b));
  memcpy(l + 300, "\"\xe2\x82\xac\\", 5); /* the cuts differ around escapes too */
  CHECK_INT(jw__parts_split(l, 1000, MAX, RID, 3, collect, &a, NULL), 0);
  CHECK_INT(jw__parts_split(l, 1000, 400, RID, 3, collect, &b, NULL), 0);
  CHECK_INT(check_parts(&a, l, 1000, MAX, 3), 0);
  CHECK_INT(check_parts(&b, l, 1000, 400, 3), 0);
  CHECK_INT(a.n, 8);
  CHECK_INT(b.n, 5);
  /* b1 a1 b2 a2 ... b4 a4 b5 (whole at 400) a5 a6 a7 a8 (whole at 312) */
  for (i = j = 0; i < a.n || j < b.n;) {
    const parts_t *p = j < b.n && (j <= i || i == a.n) ? &b : &a;
    size_t k = p == &b ? j++ : i++;
    int rc = feed(r, p->l[k], (p == &b ? 100 : 200) + k, &res);
    CHECK_U64(res.limit, p == &b ? 400 : MAX);
    if (k + 1 < p->n) {
      CHECK_INT(rc, JW_PARTS_HELD);
      continue;
    }
    CHECK_INT(rc, JW_PARTS_WHOLE);
    CHECK(res.whole != NULL && res.whole_len == 1000 && memcmp(res.whole, l, 1000) == 0);
    CHECK_INT(res.first_tag, p == &b ? 100 : 200);
    free(res.whole);
    whole++;
    if (p == &b) {
      memset(&pend, 0, sizeof(pend));
      CHECK_INT(jw__parts_pending(r, on_pending, &pend), 1);
      CHECK_STR(pend.text[0], RID "/3 4f64ae7a limit 312 4 of 8 missing 5 bytes 1000 tag 200");
    }
  }
  CHECK_INT(whole, 2);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  free(l);
  parts_free(&a);
  parts_free(&b);
  jw__parts_free(r);
}

/* A line whose parts are all there but are not the line their digest
 * names (here: line a's data under line b's digest): refused, the line
 * dropped; b's genuine parts are then put together as b. */
static void test_digest_mismatch(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t a, b;
  char *la, *lb, da[33], db[33], want[300];
  size_t i;
  two_lines(500, MAX, 8, &la, &lb, da, db, &a, &b);
  CHECK_INT(a.n, 4);
  for (i = 0; i < a.n; i++) {
    char *d = strstr(a.l[i], da);
    CHECK(d != NULL);
    if (d != NULL)
      memcpy(d, db, 32);
    CHECK_INT(feed(r, a.l[i], i, &res), i + 1 < a.n ? JW_PARTS_HELD : JW_EINVAL);
  }
  CHECK_INT(res.conflict, 0);
  CHECK_INT(res.line_dropped, 1);
  CHECK_INT(res.first_tag, 0);
  CHECK(res.whole == NULL);
  snprintf(want, sizeof(want),
           "the 4 parts of run " RID " seq 8 (digest %.12s, limit 312) put together are not the "
           "line of their \"digest\" (%s): the line is dropped",
           db, db);
  CHECK_STR(res.why, want);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  CHECK_INT(jw__parts_held(r), 0);
  for (i = 0; i < b.n; i++)
    CHECK_INT(feed(r, b.l[i], 10 + i, &res), i + 1 < b.n ? JW_PARTS_HELD : JW_PARTS_WHOLE);
  CHECK(res.whole != NULL && res.whole_len == 500 && memcmp(res.whole, lb, 500) == 0);
  free(res.whole);
  free(la);
  free(lb);
  parts_free(&a);
  parts_free(&b);
  jw__parts_free(r);
}

/* A collector that escapes characters of a record again (here: the first
 * character of each part's data as \u0061) makes the record longer than
 * its limit; the data, and so the line, are the same: put together. */
static void test_reescaped(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t a;
  char *la = make_line('a', 500, 9, &a);
  size_t i;
  CHECK_INT(a.n, 4);
  for (i = 0; i < a.n; i++) {
    char *d = strstr(a.l[i], "\"data\":\"a"), *x;
    CHECK(d != NULL);
    if (d == NULL)
      continue;
    x = malloc(a.len[i] + 6);
    d += 8;
    memcpy(x, a.l[i], (size_t)(d - a.l[i]));
    memcpy(x + (d - a.l[i]), "\\u0061", 6);
    strcpy(x + (d - a.l[i]) + 6, d + 1);
    CHECK(strlen(x) == a.len[i] + 5);
    CHECK_INT(feed(r, x, i, &res), i + 1 < a.n ? JW_PARTS_HELD : JW_PARTS_WHOLE);
    free(x);
  }
  CHECK(res.whole != NULL && res.whole_len == 500 && memcmp(res.whole, la, 500) == 0);
  free(res.whole);
  free(la);
  parts_free(&a);
  jw__parts_free(r);
}

/* Malformed part records: each refused with its reason, nothing held.
 * Version 1 and version 2 records; V2 is a version 2 record's start up to
 * "n", with a digest of the right shape. */
#define V2                                                                                         \
  "{\"jobwarden_part\":{\"v\":2,\"run_id\":\"r\",\"seq\":1,"                                       \
  "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":298,"
#define V2_NO_DIGEST "{\"jobwarden_part\":{\"v\":2,\"run_id\":\"r\",\"seq\":1,"
static void test_malformed(void) {
  static const struct {
    const char *line, *why;
  } cases[] = {
      {"{\"jobwarden_part\":{\"v\":1", "a damaged part record: not JSON: '}' expected near end of "
                                       "file (column 24)"},
      {"{\"jobwarden_part\":[]}", "a damaged part record: expected {\"jobwarden_part\":{...}} "
                                  "alone"},
      {"{\"jobwarden_part\":{},\"x\":1}", "a damaged part record: expected "
                                          "{\"jobwarden_part\":{...}} alone"},
      {"{\"jobwarden_part\":{\"v\":3,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record of version 3 (this reader knows versions 1 and 2)"},
      /* version 2 without digest and limit; version 1 with them */
      {V2_NO_DIGEST "\"n\":1,\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a damaged part record: expected the members v, run_id, seq, digest, limit, n, of, bytes, "
       "data (found 7 members)"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,"
       "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":298,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a damaged part record: expected the members v, run_id, seq, n, of, bytes, data (found 9 "
       "members)"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff\",\"max\":298,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record without \"limit\""},
      /* a digest that is not 32 lowercase hex digits */
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899AABBCCDDEEFF\",\"limit\":298,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeef\",\"limit\":298,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff0\",\"limit\":298,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeg0\",\"limit\":298,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      {V2_NO_DIGEST "\"digest\":\"0011223344556677\\u00008899aabbccddeef\",\"limit\":298,"
                    "\"n\":1,\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      {V2_NO_DIGEST "\"digest\":5,\"limit\":298,\"n\":1,\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"digest\" is not 32 lowercase hex digits"},
      /* a limit that is no size limit, or below the smallest */
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":297,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"limit\" is not an integer from 298 to 9223372036854775807"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":-400,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"limit\" is not an integer from 298 to 9223372036854775807"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":\"400\",\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"limit\" is not an integer from 298 to 9223372036854775807"},
      {V2_NO_DIGEST "\"digest\":\"00112233445566778899aabbccddeeff\",\"limit\":400.0,\"n\":1,"
                    "\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"limit\" is not an integer from 298 to 9223372036854775807"},
      {V2 "\"n\":3,\"of\":2,\"bytes\":2,\"data\":\"a\"}}",
       "a part record whose \"n\" is not an integer from 1 to 2"},
      {"{\"jobwarden_part\":{\"run_id\":\"r\"}}", "a part record without \"v\""},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2}}",
       "a damaged part record: expected the members v, run_id, seq, n, of, bytes, data (found 6 "
       "members)"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\\\"\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record whose \"run_id\" is not 1 to 64 of [0-9A-Za-z_-]"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":-1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record whose \"seq\" is not an integer from 0 to 9223372036854775807"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":3,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record whose \"n\" is not an integer from 1 to 2"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":0,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record whose \"n\" is not an integer from 1 to 2"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":3,\"bytes\":2,"
       "\"data\":\"a\"}}",
       "a part record whose \"of\" is not an integer from 1 to 2"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,"
       "\"bytes\":99999999999,\"data\":\"a\"}}",
       "a part record whose \"bytes\" is not an integer from 1 to 67108864"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"abc\"}}",
       "a part record whose \"data\" is not a string of 1 to \"bytes\" (2) bytes"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":5}}",
       "a part record whose \"data\" is not a string of 1 to \"bytes\" (2) bytes"},
      {"{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,\"bytes\":2,"
       "\"data\":\"a\",\"data\":\"b\"}}",
       "a damaged part record: not JSON: duplicate object key near '\"data\"' (column 86)"},
  };
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    CHECK_INT(feed(r, cases[i].line, i, &res), JW_EINVAL);
    CHECK_INT(res.conflict, 0);
    CHECK_INT(res.line_dropped, 0);
    CHECK_STR(res.why, cases[i].why);
  }
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  CHECK_INT(jw__parts_held(r), 0);
  /* A record exactly at its limit is one; a reader's line ending after it
   * (a CR, blanks) is not part of it. */
  {
    parts_t p;
    char *l = repeat('z', 700), *crlf;
    memset(&p, 0, sizeof(p));
    CHECK_INT(jw__parts_split(l, 700, MAX, RID, 4, collect, &p, NULL), 0);
    CHECK(p.n > 1 && p.len[0] == MAX);
    crlf = malloc(p.len[0] + 3);
    memcpy(crlf, p.l[0], p.len[0]);
    memcpy(crlf + p.len[0], " \r", 3);
    CHECK_INT(jw__parts_feed(r, crlf, p.len[0] + 2, 1, &res), JW_PARTS_HELD);
    CHECK_INT(jw__parts_feed(r, p.l[0], p.len[0], 2, &res), JW_PARTS_REPEAT);
    free(crlf);
    parts_free(&p);
    free(l);
    jw__parts_free(r);
    r = jw__parts_new();
  }
  /* Parts whose data adds up to more, or fewer, bytes than they say. */
  CHECK_INT(feed(r,
                 "{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":1,\"of\":2,"
                 "\"bytes\":3,\"data\":\"ab\"}}",
                 1, &res),
            JW_PARTS_HELD);
  CHECK_INT(feed(r,
                 "{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":1,\"n\":2,\"of\":2,"
                 "\"bytes\":3,\"data\":\"cd\"}}",
                 2, &res),
            JW_EINVAL);
  CHECK_STR(res.why, "the parts of run r seq 1 read so far hold 4 bytes, more than its \"bytes\" "
                     "(3): the line is dropped");
  CHECK_INT(res.line_dropped, 1);
  CHECK_INT(res.first_tag, 1);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  CHECK_INT(feed(r,
                 "{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":2,\"n\":1,\"of\":2,"
                 "\"bytes\":5,\"data\":\"ab\"}}",
                 3, &res),
            JW_PARTS_HELD);
  CHECK_INT(feed(r,
                 "{\"jobwarden_part\":{\"v\":1,\"run_id\":\"r\",\"seq\":2,\"n\":2,\"of\":2,"
                 "\"bytes\":5,\"data\":\"cd\"}}",
                 4, &res),
            JW_EINVAL);
  CHECK_STR(res.why,
            "the 2 parts of run r seq 2 hold 4 bytes, not its \"bytes\" (5): the line is dropped");
  CHECK_INT(res.line_dropped, 1);
  CHECK_INT(res.first_tag, 3);
  CHECK_INT(jw__parts_pending(r, NULL, NULL), 0);
  CHECK_INT(jw__parts_held(r), 0);
  jw__parts_free(r);
}
#undef V2
#undef V2_NO_DIGEST
#undef X200

/* The cap: incomplete lines beyond it are refused; completed lines are
 * forgotten oldest first; what is held never goes over it. */
static void test_cap(void) {
  jw__parts_t *r = jw__parts_new();
  jw__part_result_t res;
  parts_t big;
  char *lbig;
  int i, over = 0;
  jw__parts_set_cap(r, 8192);
  /* A line of 10000 bytes cannot be held at all. */
  lbig = make_line('q', 10000, 1, &big);
  CHECK_INT(feed(r, big.l[0], 1, &res), JW_EINVAL);
  CHECK_STR(res.why, "a part record whose \"bytes\" is not an integer from 1 to 8192");
  parts_free(&big);
  free(lbig);
  /* Lines of 3000 bytes: two fit while incomplete, a third does not. */
  for (i = 0; i < 3; i++) {
    parts_t p;
    char *l = make_line((char)('d' + i), 3000, 100 + (uint64_t)i, &p);
    int rc = feed(r, p.l[0], (uint64_t)i, &res);
    if (i < 2)
      CHECK_INT(rc, JW_PARTS_HELD);
    else {
      CHECK_INT(rc, JW_EINVAL);
      CHECK_STR(res.why,
                "part 1 of 22 of run " RID " seq 102 (digest 864731f02a75, limit 312) dropped: "
                "its line would take the "
                "reader over its cap of 8192 bytes");
    }
    CHECK(jw__parts_held(r) <= 8192);
    parts_free(&p);
    free(l);
  }
  jw__parts_free(r);
  /* Many completed lines: the oldest are forgotten, the cap holds. */
  r = jw__parts_new();
  jw__parts_set_cap(r, 8192);
  for (i = 0; i < 200; i++) {
    parts_t p;
    char *l = make_line('e', 700, (uint64_t)i, &p);
    size_t k;
    for (k = 0; k < p.n; k++) {
      int rc = feed(r, p.l[k], k, &res);
      if (rc == JW_PARTS_WHOLE)
        free(res.whole);
      if (rc != (k + 1 == p.n ? JW_PARTS_WHOLE : JW_PARTS_HELD))
        over++;
      if (jw__parts_held(r) > 8192)
        over++;
    }
    parts_free(&p);
    free(l);
  }
  CHECK_INT(over, 0);
  jw__parts_free(r);
}

/* Runnable one by one: `test_parts DATA OUT --case exact`. */
static const jw_test_case_t cases[] = {
    {"exact", test_exact, 30},
    {"version1", test_version1, 30},
    {"limits", test_limits, 30},
    {"straddling", test_straddling, 30},
    {"round_trip", test_round_trip, 60},
    {"reassembly", test_reassembly, 30},
    {"one_seq_two_lines", test_one_seq_two_lines, 30},
    {"two_limits", test_two_limits, 30},
    {"digest_mismatch", test_digest_mismatch, 30},
    {"reescaped", test_reescaped, 30},
    {"malformed", test_malformed, 30},
    {"cap", test_cap, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("parts", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

/* jw__pe_version_resource (src/pe_version.c): the version resource found
 * in a PE file's own resource tree, on PE images built here byte by byte,
 * every refusal with its reason, the language choice, and mutated images
 * (ASan in the asan tree: no read outside the input, ever). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define IMG_SIZE 0x600
#define RSRC_OFF 0x200 /* file offset of .rsrc */
#define RSRC_RVA 0x1000
#define OPT_OFF  0x58 /* optional header: after "PE\0\0" and the file header at 0x40 */
#define SEC_OFF  (OPT_OFF + 240)

typedef struct {
  const unsigned char *buf;
  size_t len;
  int fail; /* the read callback fails */
  int reads;
} mem_t;

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len) {
  mem_t *m = ctx;
  m->reads++;
  if (m->fail || off > m->len || len > m->len - off)
    return -1;
  memcpy(buf, m->buf + off, len);
  return 0;
}

static void put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v) {
  put16(p, v & 0xFFFF);
  put16(p + 2, v >> 16);
}

/* A PE32+ image with one section (.rsrc) whose tree holds RT_VERSION,
 * name 1, in n_langs languages; language k's data is 32 bytes of the
 * value 'A' + k at RVA 0x1100 + 0x40 k. */
static void build(unsigned char *img, const uint32_t *langs, int n_langs) {
  unsigned char *r = img + RSRC_OFF;
  int k;
  memset(img, 0, IMG_SIZE);
  img[0] = 'M';
  img[1] = 'Z';
  put32(img + 0x3C, 0x40);
  memcpy(img + 0x40, "PE\0\0", 4);
  put16(img + 0x44, 0x8664);
  put16(img + 0x46, 1);   /* sections */
  put16(img + 0x54, 240); /* SizeOfOptionalHeader */
  put16(img + OPT_OFF, 0x20b);
  put32(img + OPT_OFF + 108, 16);            /* NumberOfRvaAndSizes */
  put32(img + OPT_OFF + 112 + 16, RSRC_RVA); /* DataDirectory[2] */
  put32(img + OPT_OFF + 112 + 20, 0x300);
  memcpy(img + SEC_OFF, ".rsrc", 5);
  put32(img + SEC_OFF + 8, 0x400);
  put32(img + SEC_OFF + 12, RSRC_RVA);
  put32(img + SEC_OFF + 16, 0x400);
  put32(img + SEC_OFF + 20, RSRC_OFF);
  /* type directory: one ID entry, RT_VERSION */
  put16(r + 14, 1);
  put32(r + 16, 16);
  put32(r + 20, 0x80000000u | 0x18);
  /* name directory: name 1 */
  put16(r + 0x18 + 14, 1);
  put32(r + 0x18 + 16, 1);
  put32(r + 0x18 + 20, 0x80000000u | 0x30);
  /* language directory */
  put16(r + 0x30 + 14, (unsigned)n_langs);
  for (k = 0; k < n_langs; k++) {
    put32(r + 0x40 + 8 * k, langs[k]);
    put32(r + 0x40 + 8 * k + 4, 0x80 + 16 * (uint32_t)k); /* data entry */
    put32(r + 0x80 + 16 * k, 0x1100 + 0x40 * (uint32_t)k);
    put32(r + 0x80 + 16 * k + 4, 32);
    memset(r + 0x100 + 0x40 * k, 'A' + k, 32);
  }
}

/* Runs the parser; on success *first is the first byte of the resource. */
static int run_any(const unsigned char *img, size_t len, const char **why, int *first,
                   size_t *got_len) {
  mem_t m = {img, len, 0, 0};
  void *out = (void *)1;
  size_t out_len = 99;
  int rc = jw__pe_version_resource(mem_read, &m, len, &out, &out_len, why);
  *first = -1;
  if (rc == 0) {
    CHECK(out != NULL);
    CHECK(*why == NULL);
    CHECK(out_len > 0 && out_len <= JW_PE_VERSION_MAX);
    if (out != NULL && out_len > 0)
      *first = ((unsigned char *)out)[0];
  } else {
    CHECK(out == NULL);
    CHECK_U64(out_len, 0);
    CHECK(*why != NULL);
  }
  *got_len = out_len;
  free(out);
  return rc;
}

/* The same, for the built images: 32 bytes found. */
static int run(const unsigned char *img, size_t len, const char **why, int *first) {
  size_t got = 0;
  int rc = run_any(img, len, why, first, &got);
  if (rc == 0)
    CHECK_U64(got, 32);
  return rc;
}

static void expect_refused(const unsigned char *img, size_t len, int code, const char *why_want,
                           const char *what) {
  const char *why = NULL;
  int first, before = jw_test_failures;
  CHECK_INT(run(img, len, &why, &first), code);
  CHECK_STR(why, why_want);
  if (jw_test_failures != before)
    fprintf(stderr, "    ^ in case: %s\n", what);
}

static void test_found(void) {
  static unsigned char img[IMG_SIZE];
  static const uint32_t one[] = {0x409}, ar_en[] = {0x401, 0x409}, ar_fr[] = {0x401, 0x40C},
                        de_uk[] = {0x407, 0x809}, en_neutral[] = {0x409, 0};
  const char *why;
  int first;

  build(img, one, 1);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'A');
  /* The language: neutral, else US English, else any English, else the
   * first listed. */
  build(img, ar_en, 2);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'B');
  build(img, ar_fr, 2);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'A');
  build(img, de_uk, 2);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'B');
  build(img, en_neutral, 2);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'B');
  /* A PE32 (not PE32+) image: data directories 16 bytes earlier. */
  build(img, one, 1);
  put16(img + OPT_OFF, 0x10b);
  put32(img + OPT_OFF + 92, 16);
  put32(img + OPT_OFF + 96 + 16, RSRC_RVA);
  put32(img + OPT_OFF + 96 + 20, 0x300);
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'A');
  /* Other resource types before RT_VERSION are skipped. */
  /* (Two type entries take the room of the name directory's header:
   * it moves to 0x200.) */
  build(img, one, 1);
  {
    unsigned char *r = img + RSRC_OFF;
    put16(r + 14, 2);
    put32(r + 16, 3);
    put32(r + 20, 0x80000000u | 0x200);
    put32(r + 24, 16);
    put32(r + 28, 0x80000000u | 0x200);
    put16(r + 0x200 + 14, 1);
    put32(r + 0x200 + 16, 1);
    put32(r + 0x200 + 20, 0x80000000u | 0x30);
  }
  CHECK_INT(run(img, IMG_SIZE, &why, &first), 0);
  CHECK_INT(first, 'A');
}

static void test_refused(void) {
  static unsigned char img[IMG_SIZE];
  static const uint32_t one[] = {0x409};
  mem_t m;
  void *out;
  size_t out_len;
  const char *why;

  build(img, one, 1);
  expect_refused(img, 10, JW_EINVAL, "not a PE file", "too short");
  img[0] = 'N';
  expect_refused(img, IMG_SIZE, JW_EINVAL, "not a PE file", "no MZ");
  build(img, one, 1);
  img[0x41] = 'X';
  expect_refused(img, IMG_SIZE, JW_EINVAL, "not a PE file", "no PE signature");
  build(img, one, 1);
  put32(img + 0x3C, 0xFFFFFFF0u);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "not a PE file", "e_lfanew past the end");
  build(img, one, 1);
  put16(img + 0x46, 97);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the PE headers are malformed", "97 sections");
  build(img, one, 1);
  put16(img + OPT_OFF, 0x107);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the PE headers are malformed", "bad magic");
  build(img, one, 1);
  put32(img + OPT_OFF + 112 + 16, 0);
  expect_refused(img, IMG_SIZE, JW_ENOENT, "image has no version resource", "no resource dir");
  build(img, one, 1);
  put32(img + OPT_OFF + 108, 2);
  expect_refused(img, IMG_SIZE, JW_ENOENT, "image has no version resource", "2 data dirs");
  build(img, one, 1);
  put32(img + RSRC_OFF + 16, 3); /* only RT_ICON */
  expect_refused(img, IMG_SIZE, JW_ENOENT, "image has no version resource", "no RT_VERSION");
  build(img, one, 1);
  put16(img + RSRC_OFF + 14, 0);
  expect_refused(img, IMG_SIZE, JW_ENOENT, "image has no version resource", "empty tree");
  build(img, one, 1);
  put16(img + RSRC_OFF + 0x30 + 14, 0);
  expect_refused(img, IMG_SIZE, JW_ENOENT, "the version resource is empty", "no language");
  build(img, one, 1);
  put32(img + OPT_OFF + 112 + 16, 0x9000);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "a resource lies outside every section",
                 "tree outside the sections");
  build(img, one, 1);
  put32(img + RSRC_OFF + 20, 0x80000000u | 0x3F8);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is cut", "subdir at the end");
  build(img, one, 1);
  put16(img + RSRC_OFF + 0x18 + 14, 4000);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is cut", "4000 entries");
  build(img, one, 1);
  put16(img + RSRC_OFF + 0x18 + 12, 0xFFFF);
  put16(img + RSRC_OFF + 0x18 + 14, 0xFFFF);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is cut", "131070 entries");
  build(img, one, 1);
  put32(img + RSRC_OFF + 20, 0x18); /* type entry points at data, not a directory */
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is malformed",
                 "type entry names data");
  build(img, one, 1);
  put32(img + RSRC_OFF + 0x44, 0x80000000u | 0x80); /* language entry is a directory */
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is malformed",
                 "language entry names a directory");
  build(img, one, 1);
  put32(img + RSRC_OFF + 0x84, 0);
  expect_refused(img, IMG_SIZE, JW_ENOENT, "the version resource is empty", "size 0");
  build(img, one, 1);
  put32(img + RSRC_OFF + 0x84, 64 * 1024 + 1);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the version resource is larger than 64 KiB",
                 "64 KiB + 1");
  build(img, one, 1);
  put32(img + RSRC_OFF + 0x80, 0x13F0); /* data runs past the section's raw data */
  expect_refused(img, IMG_SIZE, JW_EINVAL, "a resource lies outside every section",
                 "data past the section");
  build(img, one, 1);
  put32(img + SEC_OFF + 20, 0x700); /* the section's raw data past the end of the file */
  expect_refused(img, IMG_SIZE, JW_EINVAL, "the resource directory is cut", "raw past EOF");
  build(img, one, 1);
  put32(img + SEC_OFF + 16, 0x800); /* raw data said to run past the end of the file */
  put32(img + RSRC_OFF + 0x80, RSRC_RVA + 0x500);
  expect_refused(img, IMG_SIZE, JW_EINVAL, "a resource lies outside the file", "data past EOF");
  /* A read that fails. */
  build(img, one, 1);
  m.buf = img;
  m.len = IMG_SIZE;
  m.fail = 1;
  m.reads = 0;
  CHECK_INT(jw__pe_version_resource(mem_read, &m, IMG_SIZE, &out, &out_len, &why), JW_EIO);
  CHECK_STR(why, "the file cannot be read");
  CHECK_INT(m.reads, 1);
}

/* Mutated images: any answer, but never a read outside the input (ASan)
 * and always a consistent one. Deterministic. */
static void test_mutations(void) {
  static unsigned char base[IMG_SIZE], img[IMG_SIZE];
  static const uint32_t two[] = {0x401, 0x409};
  uint64_t rng = 0x6a7770652d7665ull;
  int rounds = 20000, i, j, ok = 0, bad = 0;
  const char *env = getenv("JW_FUZZ_ROUNDS");
  if (env != NULL && atoi(env) > 0)
    rounds = atoi(env);
  build(base, two, 2);
  for (i = 0; i < rounds; i++) {
    const char *why;
    int first, n, rc;
    size_t len = IMG_SIZE, got = 0;
    memcpy(img, base, IMG_SIZE);
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    n = 1 + (int)((rng >> 33) % 8);
    for (j = 0; j < n; j++) {
      size_t at;
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      /* Mutate where it matters: headers and the tree, mostly. */
      at = (size_t)((rng >> 20) % (j & 1 ? 0x160 : IMG_SIZE));
      if (j & 1 && at >= 0x100)
        at = RSRC_OFF + (at - 0x100) * 2;
      img[at] = (unsigned char)(rng >> 40);
    }
    if ((rng >> 50) % 16 == 0)
      len = (size_t)((rng >> 8) % IMG_SIZE);
    rc = run_any(img, len, &why, &first, &got);
    if (rc == 0)
      ok++;
    else
      bad++;
    CHECK(rc == 0 || rc == JW_ENOENT || rc == JW_EINVAL);
  }
  /* The mutations hit both outcomes. */
  CHECK(ok > 0);
  CHECK(bad > 0);
}

/* A VS_VERSIONINFO writer: nodes opened and closed like a stack. */
typedef struct {
  unsigned char b[1024];
  size_t n;
} blk_t;

static void pad4(blk_t *k) {
  while (k->n % 4)
    k->b[k->n++] = 0;
}

/* Opens a node: key (ASCII), wType, value of value_units (UTF-16 units
 * for text, bytes otherwise; the bytes are 'v'). Returns its start. */
static size_t open_node(blk_t *k, const char *key, int type, unsigned value_units) {
  size_t start = k->n, i;
  put16(k->b + k->n + 2, value_units);
  put16(k->b + k->n + 4, (unsigned)type);
  k->n += 6;
  for (i = 0; key[i]; i++, k->n += 2)
    put16(k->b + k->n, (unsigned char)key[i]);
  put16(k->b + k->n, 0);
  k->n += 2;
  pad4(k);
  for (i = 0; i < value_units * (type ? 2u : 1u); i++)
    k->b[k->n++] = 'v';
  pad4(k);
  return start;
}

static void close_node(blk_t *k, size_t start) {
  put16(k->b + start, (unsigned)(k->n - start));
}

/* VS_VERSION_INFO { fixed info; StringFileInfo { 040904b0 { CompanyName } } } */
static void build_block(blk_t *k) {
  size_t root, sfi, table, str;
  memset(k, 0, sizeof(*k));
  root = open_node(k, "VS_VERSION_INFO", 0, 52);
  sfi = open_node(k, "StringFileInfo", 1, 0);
  table = open_node(k, "040904b0", 1, 0);
  str = open_node(k, "CompanyName", 1, 2);
  close_node(k, str);
  close_node(k, table);
  close_node(k, sfi);
  close_node(k, root);
}

static void test_block(void) {
  blk_t k;
  size_t i, nest[8];
  int j;
  uint64_t rng = 0x626c6f636b21ull;

  build_block(&k);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 1);
  CHECK_INT(jw__pe_version_block_ok(k.b, 5), 0);
  CHECK_INT(jw__pe_version_block_ok(NULL, 0), 0);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n - 1), 0); /* root longer than the data */
  put16(k.b, 0);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  build_block(&k);
  put16(k.b + 92, 0x200); /* StringFileInfo (at 92) longer than its parent */
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  build_block(&k);
  put16(k.b + 92, 4); /* shorter than a node */
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  build_block(&k);
  put16(k.b + 96, 2); /* wType 2 */
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  build_block(&k);
  for (i = 6; i < k.n; i++) /* no NUL to end the root's key */
    if (k.b[i] == 0)
      k.b[i] = 'k';
  put16(k.b, (unsigned)k.n);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  /* A value said to run past its node: no children, not refused (the
   * system's reader does the same). */
  build_block(&k);
  put16(k.b + 2, 0xFFFF);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 1);
  /* Six levels: refused. */
  memset(&k, 0, sizeof k);
  for (j = 0; j < 6; j++)
    nest[j] = open_node(&k, "n", 1, 0);
  for (j = 5; j >= 0; j--)
    close_node(&k, nest[j]);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 0);
  memset(&k, 0, sizeof k);
  for (j = 0; j < 5; j++)
    nest[j] = open_node(&k, "n", 1, 0);
  for (j = 4; j >= 0; j--)
    close_node(&k, nest[j]);
  CHECK_INT(jw__pe_version_block_ok(k.b, k.n), 1);
  /* Mutations: any answer, never a read outside (ASan). */
  for (j = 0; j < 20000; j++) {
    blk_t m;
    int n;
    build_block(&m);
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    for (n = 0; n < 1 + (int)((rng >> 60) & 3); n++) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      m.b[(rng >> 20) % m.n] = (unsigned char)(rng >> 40);
    }
    (void)jw__pe_version_block_ok(m.b, m.n);
  }
  CHECK(1);
}

/* Runnable one by one: `test_pe DATA OUT --case found`. */
static const jw_test_case_t cases[] = {
    {"found", test_found, 30},
    {"refused", test_refused, 30},
    {"mutations", test_mutations, 30},
    {"block", test_block, 30},
};

int main(int argc, char **argv) {
  return jw_test_run_cases("pe", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

/* The version resource (RT_VERSION) of a PE file, found in the file itself
 * through a read callback: the executable identity reads it from the
 * handle it hashed (src/win/imageid.c), never by path. Windows' version
 * API takes a path (the file may be another one by then) and takes the
 * strings of a language-neutral system file from its .mui satellite, a
 * different file ("Cmd.Exe.MUI"); this reads the file that was hashed.
 *
 * Portable and pure, so that it is unit-tested and fuzzed natively. The
 * input is hostile: every offset and count is checked against the file's
 * size and the resource section's bounds before it is read, the walk has a
 * fixed depth (type, name, language) and the sizes it reads are capped. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RT_VERSION_ID   16u
#define MAX_SECTIONS    96u   /* Windows refuses more */
#define MAX_DIR_ENTRIES 4096u /* per resource directory level */
#define SUBDIR_BIT      0x80000000u
#define NAME_BIT        0x80000000u

static uint16_t le16(const unsigned char *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

typedef struct {
  jw__pe_read_fn read;
  void *ctx;
  uint64_t size;
  unsigned n_sections;
  unsigned char sections[MAX_SECTIONS * 40];
  const char *why;
} pe_t;

/* Reads len bytes at off, checked against the file's size. */
static int rd(pe_t *pe, uint64_t off, void *buf, size_t len) {
  if (off > pe->size || len > pe->size - off) {
    pe->why = "a resource lies outside the file";
    return JW_EINVAL;
  }
  if (pe->read(pe->ctx, off, buf, len) != 0) {
    pe->why = "the file cannot be read";
    return JW_EIO;
  }
  return 0;
}

/* The file offset of [rva, rva + len) when one section's raw data holds
 * all of it; *end (may be NULL) is where that section's raw data ends. */
static int rva_to_off(pe_t *pe, uint32_t rva, uint32_t len, uint64_t *off, uint64_t *end) {
  unsigned i;
  for (i = 0; i < pe->n_sections; i++) {
    const unsigned char *s = pe->sections + 40 * i;
    uint64_t va = le32(s + 12), raw_size = le32(s + 16), raw = le32(s + 20);
    if (rva >= va && (uint64_t)rva + len <= va + raw_size) {
      *off = raw + (rva - va);
      if (end != NULL)
        *end = raw + raw_size;
      return 0;
    }
  }
  pe->why = "a resource lies outside every section";
  return JW_EINVAL;
}

/* How much a language is preferred (lower is better): language-neutral,
 * then US English, then any English, then whatever comes first. Windows
 * picks by the user's languages; this choice is the same on every host. */
static unsigned lang_rank(uint32_t id) {
  if (id == 0)
    return 0;
  if (id == 0x409)
    return 1;
  if ((id & 0x3FF) == 0x09)
    return 2;
  return 3;
}

/* Levels of the resource tree. */
enum { LEVEL_TYPE, LEVEL_NAME, LEVEL_LANG };

/* The entry of the resource directory at base + dir (bounded by lim)
 * that the level selects: the ID entry RT_VERSION for the type, the
 * first entry for the name, the preferred language (lang_rank) for the
 * language. want_subdir: the entry must name a subdirectory (1) or data
 * (0). Its offset (relative to base) in *next. */
static int dir_pick(pe_t *pe, uint64_t base, uint64_t lim, uint32_t dir, int level, int want_subdir,
                    uint32_t *next) {
  unsigned char head[16], *ents = NULL;
  unsigned total, i, best = 0, best_rank = 4;
  int rc, type_level = level == LEVEL_TYPE;
  if (base + dir + 16 > lim) {
    pe->why = "the resource directory is cut";
    return JW_EINVAL;
  }
  rc = rd(pe, base + dir, head, sizeof head);
  if (rc != 0)
    return rc;
  total = (unsigned)le16(head + 12) + le16(head + 14);
  if (total > MAX_DIR_ENTRIES || base + dir + 16 + 8ull * total > lim) {
    pe->why = "the resource directory is cut";
    return JW_EINVAL;
  }
  if (total == 0) {
    pe->why = type_level ? "image has no version resource" : "the version resource is empty";
    return JW_ENOENT;
  }
  ents = malloc(8u * total);
  if (ents == NULL)
    return JW_ENOMEM;
  rc = rd(pe, base + dir + 16, ents, 8u * total);
  if (rc != 0)
    goto done;
  rc = JW_ENOENT;
  pe->why = "image has no version resource";
  for (i = 0; i < total; i++) {
    uint32_t name = le32(ents + 8 * i);
    unsigned rank = 0;
    if (type_level && ((name & NAME_BIT) != 0 || name != RT_VERSION_ID))
      continue;
    if (level == LEVEL_LANG)
      rank = (name & NAME_BIT) != 0 ? 3 : lang_rank(name);
    if (rank < best_rank) {
      best = i;
      best_rank = rank;
    }
    if (level != LEVEL_LANG || rank == 0)
      break;
  }
  if (best_rank < 4) {
    uint32_t to = le32(ents + 8 * best + 4);
    if (((to & SUBDIR_BIT) != 0) != (want_subdir != 0)) {
      pe->why = "the resource directory is malformed";
      rc = JW_EINVAL;
      goto done;
    }
    *next = to & ~SUBDIR_BIT;
    rc = 0;
  }
done:
  free(ents);
  return rc;
}

int jw__pe_version_resource(jw__pe_read_fn read, void *ctx, uint64_t file_size, void **out,
                            size_t *out_len, const char **why) {
  pe_t *pe;
  unsigned char dos[64], nt[24], opt[240], data[16];
  uint32_t lfanew, opt_size, n_dirs, dd, res_rva, d1 = 0, d2 = 0, d3 = 0, data_rva, data_size;
  uint64_t base = 0, lim = 0, data_off = 0;
  uint16_t magic;
  int rc;
  void *buf = NULL;

  *out = NULL;
  *out_len = 0;
  *why = NULL;
  pe = calloc(1, sizeof(*pe));
  if (pe == NULL)
    return JW_ENOMEM;
  pe->read = read;
  pe->ctx = ctx;
  pe->size = file_size;
  rc = JW_EINVAL;
  pe->why = "not a PE file";
  if (file_size < sizeof dos)
    goto done;
  if ((rc = rd(pe, 0, dos, sizeof dos)) != 0)
    goto done;
  rc = JW_EINVAL;
  if (dos[0] != 'M' || dos[1] != 'Z')
    goto done;
  lfanew = le32(dos + 0x3C);
  rc = rd(pe, lfanew, nt, sizeof nt);
  if (rc == JW_EIO)
    goto done;
  if (rc != 0 || memcmp(nt, "PE\0\0", 4) != 0) {
    rc = JW_EINVAL;
    pe->why = "not a PE file";
    goto done;
  }
  rc = JW_EINVAL;
  pe->n_sections = le16(nt + 6);
  opt_size = le16(nt + 20);
  if (pe->n_sections > MAX_SECTIONS || opt_size < 2) {
    pe->why = "the PE headers are malformed";
    goto done;
  }
  rc = rd(pe, (uint64_t)lfanew + 24, opt, opt_size < sizeof opt ? opt_size : sizeof opt);
  if (rc != 0)
    goto done;
  rc = JW_EINVAL;
  magic = le16(opt);
  if (magic == 0x10b) {
    n_dirs = opt_size >= 96 ? le32(opt + 92) : 0;
    dd = 96;
  } else if (magic == 0x20b) {
    n_dirs = opt_size >= 112 ? le32(opt + 108) : 0;
    dd = 112;
  } else {
    pe->why = "the PE headers are malformed";
    goto done;
  }
  /* The resource directory is entry 2 of the data directories. */
  if (n_dirs < 3 || dd + 24 > opt_size || dd + 24 > sizeof opt ||
      (res_rva = le32(opt + dd + 16)) == 0) {
    rc = JW_ENOENT;
    pe->why = "image has no version resource";
    goto done;
  }
  rc = rd(pe, (uint64_t)lfanew + 24 + opt_size, pe->sections, 40u * pe->n_sections);
  if (rc != 0)
    goto done;
  /* Offsets inside the resource tree are relative to its start and stay
   * inside the raw data of the section that holds it. */
  if ((rc = rva_to_off(pe, res_rva, 16, &base, &lim)) != 0)
    goto done;
  if (lim > file_size)
    lim = file_size;
  if ((rc = dir_pick(pe, base, lim, 0, LEVEL_TYPE, 1, &d1)) != 0 ||
      (rc = dir_pick(pe, base, lim, d1, LEVEL_NAME, 1, &d2)) != 0 ||
      (rc = dir_pick(pe, base, lim, d2, LEVEL_LANG, 0, &d3)) != 0)
    goto done;
  if (base + d3 + 16 > lim) {
    rc = JW_EINVAL;
    pe->why = "the resource directory is cut";
    goto done;
  }
  if ((rc = rd(pe, base + d3, data, sizeof data)) != 0)
    goto done;
  data_rva = le32(data);
  data_size = le32(data + 4);
  if (data_size == 0) {
    rc = JW_ENOENT;
    pe->why = "the version resource is empty";
    goto done;
  }
  if (data_size > JW_PE_VERSION_MAX) {
    rc = JW_EINVAL;
    pe->why = "the version resource is larger than 64 KiB";
    goto done;
  }
  if ((rc = rva_to_off(pe, data_rva, data_size, &data_off, NULL)) != 0)
    goto done;
  buf = malloc(data_size);
  if (buf == NULL) {
    rc = JW_ENOMEM;
    goto done;
  }
  if ((rc = rd(pe, data_off, buf, data_size)) != 0)
    goto done;
  *out = buf;
  *out_len = data_size;
  buf = NULL;
  pe->why = NULL;
done:
  *why = rc == JW_ENOMEM ? "out of memory" : pe->why;
  free(buf);
  free(pe);
  return rc;
}

/* One node of a VS_VERSIONINFO tree (wLength, wValueLength, wType, a
 * NUL-terminated UTF-16 key, padding, the value, padding, children) at
 * b[off..end), checked to lie inside its parent with its key terminated
 * and every child inside it, depth levels deep at most. */
static int node_ok(const unsigned char *b, size_t off, size_t end, int depth) {
  size_t len, node_end, p, value_len;
  if (depth > 4 || off + 6 > end)
    return 0;
  len = le16(b + off);
  if (len < 6 || len > end - off)
    return 0;
  node_end = off + len;
  /* The key: UTF-16 code units up to a NUL, inside the node. */
  for (p = off + 6;; p += 2) {
    if (p + 2 > node_end)
      return 0;
    if (b[p] == 0 && b[p + 1] == 0)
      break;
  }
  p = (p + 2 + 3) & ~(size_t)3;
  /* The value: wValueLength counts UTF-16 units for text (wType 1) and
   * bytes otherwise; real files get it wrong both ways, so a value that
   * runs past the node only ends the walk (no children), as in the
   * system's own reader. */
  if (le16(b + off + 4) > 1)
    return 0; /* wType: 1 text, 0 binary; readers differ on anything else */
  value_len = le16(b + off + 2) * (le16(b + off + 4) == 1 ? 2u : 1u);
  if (p >= node_end || value_len >= node_end - p)
    return 1;
  p = (p + value_len + 3) & ~(size_t)3;
  while (p + 6 <= node_end) {
    size_t child_len = le16(b + p);
    if (!node_ok(b, p, node_end, depth + 1))
      return 0;
    p = (p + child_len + 3) & ~(size_t)3;
  }
  return 1;
}

int jw__pe_version_block_ok(const void *block, size_t len) {
  const unsigned char *b = block;
  if (block == NULL || len < 6 || le16(b) > len)
    return 0;
  return node_ok(b, 0, le16(b), 0);
}

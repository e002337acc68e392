/* Continuation records (docs/events.md, "Continuation records"): a line
 * too long for a sink's size limit (a UDP datagram, a collector's maximum
 * message size) is sent as consecutive part records, never truncated, and
 * readers put it back together.
 *
 * A part record is one compact JSON object on one line, members in this
 * order:
 *
 *   {"jobwarden_part":{"v":1,"run_id":R,"seq":N,"n":K,"of":COUNT,
 *                      "bytes":TOTAL,"data":SEGMENT}}
 *
 * R and N are the run_id and seq of the event the line carries; K runs
 * from 1 to COUNT; TOTAL is the length in bytes of the whole line without
 * its newline; SEGMENT is a JSON string holding the next bytes of the
 * line, cut only between UTF-8 characters. The data of parts 1..COUNT
 * concatenated is the line, byte for byte. Each part record is at most the
 * sink's limit in bytes (its newline not counted), escapes included.
 *
 * Portable C11 + jansson + libsodium. The splitter has no state (any
 * thread); a reassembler belongs to one thread. */
#ifndef JW_PARTS_H
#define JW_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

#define JW_PARTS_VERSION 1
/* The smallest size limit the splitter takes: room for the envelope with
 * a 64-byte run id and 20-digit numbers, and one escaped character. */
#define JW_PARTS_MIN_MAX 256u
/* A run id is 1 to 64 characters of [0-9A-Za-z_-] (jobwarden's are 32
 * lowercase hex digits). */
#define JW_PARTS_RUN_ID_MAX 64u
/* What a reassembler holds at most by default (jw__parts_set_cap): the
 * bytes of incomplete lines plus the bookkeeping of completed ones. No
 * single reassembled line is longer than the cap either. */
#define JW_PARTS_CAP_DEFAULT (64u << 20)

/* ---- writer ------------------------------------------------------------ */

/* jw__parts_split's answer for a line that fits the limit as it is. */
#define JW_PARTS_FITS 1

/* Gets one part record: `part` (part_len bytes, no newline, NUL-terminated,
 * valid until the call returns). Returns 0 to go on; anything else stops
 * the split, and jw__parts_split returns it. */
typedef int (*jw__parts_emit_fn)(void *ctx, const char *part, size_t part_len);

/* Splits `line` (len bytes, JSON of any format; one trailing '\n' is not
 * part of it) into part records of at most `max` bytes each and gives
 * them to emit in order (n = 1..of). run_id and seq: the event's, as
 * jw_format_meta reads them from the line.
 *
 * Returns
 *   JW_PARTS_FITS  the line without its newline is at most max bytes:
 *                  nothing to split, emit is not called;
 *   0              every part was emitted;
 *   JW_EINVAL      max < JW_PARTS_MIN_MAX, a run_id that is not 1..64 of
 *                  [0-9A-Za-z_-], seq > INT64_MAX, or the line is not
 *                  valid UTF-8 (err says which);
 *   JW_ENOMEM;
 *   what emit returned when it was not 0 (the parts before it were given).
 * Pure; any thread. err may be NULL. */
int jw__parts_split(const char *line, size_t len, size_t max, const char *run_id, uint64_t seq,
                    jw__parts_emit_fn emit, void *ctx, jw_error_t *err);

/* ---- reader ------------------------------------------------------------ */

typedef struct jw__parts_s jw__parts_t;

/* What jw__parts_feed returns (besides JW_EINVAL / JW_ENOMEM). */
#define JW_PARTS_NONE   0 /* not a part record: use the line as it is */
#define JW_PARTS_HELD   1 /* a part, kept until its line is whole */
#define JW_PARTS_WHOLE  2 /* a part that completed its line: res->whole */
#define JW_PARTS_REPEAT 3 /* a part byte-identical to one already read: ignored */

typedef struct jw__part_result_s {
  /* JW_PARTS_WHOLE: the line (no newline, NUL-terminated), new malloc'd,
   * the caller's to free; NULL otherwise. */
  char *whole;
  size_t whole_len;
  /* JW_PARTS_WHOLE: the tag of the first part read for this line (the
   * caller's position of it); `tag` of this call is the last. */
  uint64_t first_tag;
  /* The part's own fields, once it parsed (HELD, WHOLE, REPEAT and a
   * conflict); run_id "" otherwise. */
  char run_id[JW_PARTS_RUN_ID_MAX + 1];
  uint64_t seq;
  uint32_t n, of;
  /* JW_EINVAL: 1 when the part is well formed but contradicts what was
   * read before for its line (other_tag: where); 0 for a malformed part. */
  int conflict;
  uint64_t other_tag;
  /* JW_EINVAL: why, one sentence ("part 2 of 3 of run R seq N differs
   * from the part 2 read before"). */
  char why[256];
} jw__part_result_t;

/* A reassembler with the default cap. NULL when memory runs out. */
jw__parts_t *jw__parts_new(void);
/* Changes the cap (bytes; at least 4096) on what p holds. */
void jw__parts_set_cap(jw__parts_t *p, size_t cap);
/* What p holds now (the bytes counted against its cap). */
size_t jw__parts_held(const jw__parts_t *p);
void jw__parts_free(jw__parts_t *p);

/* Feeds one line as read (len bytes, no newline). A collector's header
 * before the record is skipped: the record starts at the line's first
 * `{"`, and is a part record when it starts with `{"jobwarden_part":`.
 * `tag` is the caller's name for the line's position (a line number, a
 * file and line packed), given back in res.
 *
 * Parts are matched by run_id + seq: parts of several lines may come
 * interleaved and in any order. A part read again byte for byte is
 * ignored (REPEAT), also after its line was completed; when every part of
 * a completed line comes again, the line is whole again (WHOLE: a line
 * delivered twice is read twice, and a reader that deduplicates sees it).
 *
 * Returns JW_PARTS_NONE, JW_PARTS_HELD, JW_PARTS_WHOLE, JW_PARTS_REPEAT;
 * JW_EINVAL for a part that is malformed (not JSON, a member missing, of
 * the wrong type or out of range, another version), that contradicts
 * what was read for its line before (res->conflict: another `of` or
 * `bytes`, other data for the same n; the part read first is kept), whose
 * parts hold more or fewer bytes than `bytes` (the line is dropped), or
 * that would take p over its cap (the part is dropped) — res->why says
 * which; JW_ENOMEM. res is filled in every case. */
int jw__parts_feed(jw__parts_t *p, const char *line, size_t len, uint64_t tag,
                   jw__part_result_t *res);

/* A line some of whose parts were read but not all. */
typedef struct jw__parts_pending_s {
  const char *run_id; /* borrowed from p, valid until the next feed/free */
  uint64_t seq;
  uint32_t seen, of;  /* parts read, parts the line has */
  uint32_t missing;   /* the lowest part number not read */
  size_t bytes;       /* the whole line's length */
  uint64_t first_tag; /* the first part read */
  int repeat;         /* these parts repeat a line already whole: nothing is lost */
} jw__parts_pending_t;

/* Calls fn for every incomplete line, in the order their first part was
 * read (lines already whole whose parts partly came again last, with
 * repeat = 1). Returns how many there were. */
size_t jw__parts_pending(const jw__parts_t *p, void (*fn)(void *ctx, const jw__parts_pending_t *pp),
                         void *ctx);

/* Where a line's record starts: at its first `{"` (a collector's header
 * before it skipped), or the line itself when it has none. *len is
 * updated. Readers of collector files (verify) use the same rule. */
const char *jw__parts_record_start(const char *line, size_t *len);

#endif

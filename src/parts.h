/* Continuation records (docs/events.md, "Continuation records"): a line
 * too long for a sink's size limit (a UDP datagram, a collector's maximum
 * message size) is sent as consecutive part records, never truncated, and
 * readers put it back together.
 *
 * A part record is one compact JSON object on one line, members in this
 * order (version 2, the one the splitter writes):
 *
 *   {"jobwarden_part":{"v":2,"run_id":R,"seq":N,"digest":D,"limit":L,
 *                      "n":K,"of":COUNT,"bytes":TOTAL,"data":SEGMENT}}
 *
 * R and N are the run_id and seq of the event the line carries; D is the
 * BLAKE2b-128 digest (libsodium's crypto_generichash, 16 bytes, no key)
 * of the whole line without its newline, as 32 lowercase hex digits; L is
 * the size limit the line was split at; K runs from 1 to COUNT; TOTAL is
 * the length in bytes of the whole line without its newline; SEGMENT is a
 * JSON string holding the next bytes of the line, cut only between UTF-8
 * characters. The data of parts 1..COUNT concatenated is the line, byte
 * for byte. Each part record is at most L bytes (its newline not
 * counted), escapes included.
 *
 * Why D and L: run_id + seq name an event, not a line. Two sinks of one
 * run sending to one collector carry different lines for the same seq
 * (each sink's seal differs, or its format), or the same line cut at
 * other places (a syslog header's length, and so the limit left for the
 * record, differs by facility and transport). Their parts must neither
 * mix nor contradict each other: a line is the parts that agree on
 * R, N, D and L, and D also checks the line put together.
 *
 * Version 1 (written before) has no "digest" and no "limit"
 * ({"v":1,"run_id":R,"seq":N,"n":K,"of":COUNT,"bytes":TOTAL,"data":S});
 * readers still read it, its lines keyed by R + N alone.
 *
 * Portable C11 + jansson + libsodium. The splitter has no state (any
 * thread); a reassembler belongs to one thread. */
#ifndef JW_PARTS_H
#define JW_PARTS_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

/* The version the splitter writes; readers read it and version 1. */
#define JW_PARTS_VERSION 2
/* The smallest size limit the splitter takes (and a version 2 record may
 * name): room for the widest envelope and one character of data, so that
 * every part holds at least one character. The envelope is 96 bytes of
 * member names and punctuation, a 64-character run id, the 32-digit
 * digest and five numbers (seq, limit, n, of, bytes) of at most 20 digits
 * each (a 64-bit integer's widest); the widest character, a control byte
 * escaped as \u00XX, is 6: 96 + 64 + 32 + 5 * 20 + 6 = 298. src/parts.c
 * checks the 96 against the envelope it writes. */
#define JW_PARTS_MIN_MAX 298u
/* A version 2 record's "digest": BLAKE2b of this many bytes, written as
 * twice as many hex digits. */
#define JW_PARTS_DIGEST_BYTES 16
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
 * part of it) into part records (version 2, `max` as their "limit") of at
 * most `max` bytes each and gives them to emit in order (n = 1..of).
 * run_id and seq: the event's, as jw_format_meta reads them from the
 * line.
 *
 * Returns
 *   JW_PARTS_FITS  the line without its newline is at most max bytes:
 *                  nothing to split, emit is not called;
 *   0              every part was emitted;
 *   JW_EINVAL      max < JW_PARTS_MIN_MAX, a run_id that is not 1..64 of
 *                  [0-9A-Za-z_-], seq > INT64_MAX, or the line is not
 *                  valid UTF-8 (err says which);
 *   JW_ENOMEM;
 *   JW_ESYS        libsodium could not be initialized (the line's digest);
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
  /* JW_PARTS_WHOLE, and JW_EINVAL with line_dropped: the tag of the
   * first part read for this line (the caller's position of it); `tag` of
   * this call is the last. */
  uint64_t first_tag;
  /* The part's own fields, once it parsed (HELD, WHOLE, REPEAT and a
   * conflict); run_id "" otherwise. Version 2 also names its line by
   * digest (32 lowercase hex digits) and limit; "" and 0 for version 1. */
  unsigned version;
  char run_id[JW_PARTS_RUN_ID_MAX + 1];
  uint64_t seq;
  char digest[2 * JW_PARTS_DIGEST_BYTES + 1];
  uint64_t limit;
  uint32_t n, of;
  /* JW_EINVAL: 1 when the part is well formed but contradicts what was
   * read before for its line (other_tag: where); 0 for a malformed part. */
  int conflict;
  uint64_t other_tag;
  /* JW_EINVAL: 1 when the line was dropped with the parts read for it
   * (they hold more or fewer bytes than `bytes`, or are not the line of
   * their digest); first_tag says where its first part was read. */
  int line_dropped;
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
 * Parts are matched to their line by run_id + seq + digest + limit
 * (version 2; run_id + seq for version 1): parts of several lines may
 * come interleaved and in any order, different lines of one seq (two
 * sinks) and one line split at two limits are put together apart. A part
 * read again byte for byte is ignored (REPEAT), also after its line was
 * completed; when every part of a completed line comes again, the line is
 * whole again (WHOLE: a line delivered twice is read twice, and a reader
 * that deduplicates sees it).
 *
 * Returns JW_PARTS_NONE, JW_PARTS_HELD, JW_PARTS_WHOLE, JW_PARTS_REPEAT;
 * JW_EINVAL for a part that is malformed (not JSON, a member missing, of
 * the wrong type or out of range, another version; a record longer than
 * its limit is not: a collector may escape characters again, the digest
 * says whether the line is intact), that contradicts what was read for its line
 * before (res->conflict: another `of` or `bytes`, other data for the same
 * n; the part read first is kept), whose parts hold more or fewer bytes
 * than `bytes` or (version 2) put together do not match `digest` (the
 * line is dropped), or that would take p over its cap (the part is
 * dropped) — res->why says which; JW_ENOMEM. res is filled in every
 * case. */
int jw__parts_feed(jw__parts_t *p, const char *line, size_t len, uint64_t tag,
                   jw__part_result_t *res);

/* A line some of whose parts were read but not all. */
typedef struct jw__parts_pending_s {
  unsigned version;
  const char *run_id; /* borrowed from p, valid until the next feed/free */
  uint64_t seq;
  const char *digest; /* version 2: the line's (borrowed as run_id); "" for 1 */
  uint64_t limit;     /* version 2: the split's; 0 for 1 */
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

/* A line's name for a message, into buf: "run R seq N", and for a
 * version 2 line " (digest D, limit L)" with the digest's first 12 hex
 * digits, so that two lines of one seq (two sinks, or one line cut at two
 * limits) are told apart. digest "" (version 1): the short form. */
#define JW_PARTS_NAME_MAX (JW_PARTS_RUN_ID_MAX + 96)
void jw__parts_name(char *buf, size_t size, const char *run_id, uint64_t seq, const char *digest,
                    uint64_t limit);

/* Where a line's record starts: at its first `{"` (a collector's header
 * before it skipped), or the line itself when it has none. *len is
 * updated. Readers of collector files (verify) use the same rule. */
const char *jw__parts_record_start(const char *line, size_t *len);

#endif

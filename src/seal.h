/* Forward-secure sealing of event streams (docs/forensics.md).
 *
 * Chain format 1 ("blake2b-256"): every line a sink writes ends with a
 * `seal` member, the last member of the line's JSON object:
 *
 *   {...event...,"seal":{"run":R,"s":S,"i":I[,"end":true][,params],"mac":M}}
 *
 * params ("v":1,"alg":"blake2b-256","key_id":K) appear on the first line
 * of a stream (I = 0) and on the first line of every file a rotation
 * opens. With k0 the stream's first key, k(I+1) = BLAKE2b-256 keyed with
 * k(I) over "jobwarden seal evolve v1" (k(I) is wiped once used), and
 * M(I) = BLAKE2b-256 keyed with k(I) over M(I-1) (32 zero bytes for I = 0)
 * followed by the line's bytes up to and not including `"mac":"`. k0 of
 * stream S of run R = BLAKE2b-256 keyed with the master key over
 * "jobwarden seal stream v1", NUL, R, NUL, S. K = the first 16 bytes of
 * BLAKE2b-256 keyed with the master key over "jobwarden seal key id v1",
 * in hex. The line that closes the stream (sandbox.job_end) has
 * "end":true. All hashing is libsodium's crypto_generichash. */
#ifndef JW_SEAL_H
#define JW_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

#define JW_SEAL_VERSION    1
#define JW_SEAL_ALG        "blake2b-256"
#define JW_SEAL_KEY_BYTES  32
#define JW_SEAL_MAC_BYTES  32
#define JW_SEAL_STREAM_MAX 24 /* "12/4294967295" and its NUL fit */

typedef struct {
  unsigned char master[JW_SEAL_KEY_BYTES];
  char key_id[33]; /* 32 hex digits */
} jw_seal_key_t;

/* A new master key from the system's CSPRNG (libsodium randombytes). */
int jw_seal_key_generate(jw_seal_key_t *key);
/* The key file's text (one JSON line) for key, into buf (>= 256 bytes). */
int jw_seal_key_text(const jw_seal_key_t *key, char *buf, size_t size);
/* Writes a new key file: refused when `path` exists, owner-only. */
int jw_seal_key_write(const char *path, const jw_seal_key_t *key, jw_error_t *err);
/* Reads a key file; err says what is wrong with it (and where). */
int jw_seal_key_read(const char *path, jw_seal_key_t *key, jw_error_t *err);
/* Erases the key from memory. */
void jw_seal_key_wipe(jw_seal_key_t *key);

/* One stream's chain: the current key, the last MAC, the next index. */
typedef struct jw_seal_s jw_seal_t;

/* The chain of stream `stream` ("0", "2/7") of run `run_id`. */
int jw_seal_new(const jw_seal_key_t *key, const char *run_id, const char *stream, jw_seal_t **out);
/* The chain of sub-stream "S/n" of a sink whose own chain `root` (stream
 * S) never seals a line itself (a pipe sink: one chain per reader, made
 * when the reader comes, without the master key). */
int jw_seal_child(const jw_seal_t *root, unsigned long n, jw_seal_t **out);
void jw_seal_free(jw_seal_t *s);

#define JW_SEAL_END    1 /* the line closes the stream (sandbox.job_end) */
#define JW_SEAL_PARAMS 2 /* state the chain's parameters (a new file) */

/* Seals one line (a JSON object, with or without its '\n'): *out is a new
 * malloc'd line, '\n' kept as given, with the seal member added, and the
 * chain moves on (the used key wiped). On failure (not a JSON object
 * line, no memory) the chain does not move. Returns 0, JW_EINVAL or
 * JW_ENOMEM. */
int jw_seal_line(jw_seal_t *s, const char *line, size_t len, int flags, char **out,
                 size_t *out_len);
/* After one or more jw_seal_line calls: the lines were written (the keys
 * they used are wiped) or were not (the chain goes back to before them,
 * so that the next line takes their place: a sink's lost lines show as
 * its gap record, not as a hole in its chain). */
void jw_seal_commit(jw_seal_t *s);
void jw_seal_abort(jw_seal_t *s);
/* The index the next line gets. */
uint64_t jw_seal_next_index(const jw_seal_t *s);

/* Seals `line` when the exporter has a chain (exp->seal): *buf receives a
 * new line to write and free; without a chain *buf is NULL and the line
 * is written as it is. Exporters call it right before writing. */
int jw_exporter_seal(jw_exporter_t *exp, const char *line, size_t len, const jw_event_t *ev,
                     int flags, char **buf, const char **wline, size_t *wlen);
/* After the write of what jw_exporter_seal gave: written or not. */
void jw_exporter_sealed(jw_exporter_t *exp, int written);

/* What the verifier recomputes: k0 of a stream ("S" or "S/R"), one MAC,
 * one step of the key, hex digits, a constant-time comparison. */
void jw__seal_k0(const jw_seal_key_t *key, const char *run_id, const char *stream,
                 unsigned char out[JW_SEAL_KEY_BYTES]);
void jw__seal_mac(const unsigned char key[JW_SEAL_KEY_BYTES],
                  const unsigned char prev[JW_SEAL_MAC_BYTES], const char *prefix, size_t len,
                  unsigned char out[JW_SEAL_MAC_BYTES]);
void jw__seal_evolve(unsigned char key[JW_SEAL_KEY_BYTES]);
int jw__seal_hex(const char *s, unsigned char *out, size_t n);
int jw__seal_equal(const unsigned char *a, const unsigned char *b, size_t n);

/* ---- verification (src/verify.c) --------------------------------------- */

/* The kinds of damage `jobwarden verify` names. */
typedef enum {
  JW_DAMAGE_NONE = 0,
  JW_DAMAGE_MODIFIED,
  JW_DAMAGE_INSERTED,
  JW_DAMAGE_DELETED,
  JW_DAMAGE_REORDERED,
  JW_DAMAGE_TRUNCATED,
  JW_DAMAGE_SPLICED,
  JW_DAMAGE_KEY_MISMATCH,
  JW_DAMAGE_UNSEALED,   /* no seal at all in a file */
  JW_DAMAGE_DUPLICATE,  /* not damage: a line delivered again, byte for byte */
  JW_DAMAGE_INCOMPLETE, /* a line whose continuation records are not all there */
} jw_damage_t;
const char *jw_damage_name(jw_damage_t d);

/* Verifies the records in files[0..n) with the key: a JSON document
 * (schema in docs/forensics.md) {"verdict":"intact"|"damaged",
 * "streams":[{"run_id","stream","files":[...],"lines","first_index",
 * "last_index","complete","verdict","damage":[{"kind","file","line",
 * "seq","index","detail"}...]}...],"files":[{"file","lines","unsealed"}]}.
 * A file that cannot be read is a usage-level failure: NULL with errbuf
 * set. Returns a new jansson object (json_t *). */
void *jw_verify_files(const char *const *files, int n, const jw_seal_key_t *key, char *errbuf,
                      size_t errsize);

#endif

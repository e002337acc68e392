/* Executable identity (issue 10, section 2): the SHA-256, size, PE version
 * resource and Authenticode status of a process image, computed by one
 * worker thread off the caller's thread and cached per file identity.
 *
 * Internal (jw__). The caller (the monitor) opens the file and reads its
 * identity on its own thread (cheap: one CreateFileW and one
 * GetFileInformationByHandle); everything that reads the file's content
 * (hashing, the version resource, WinVerifyTrust) runs on the service's
 * worker. docs/architecture.md, "Executable identity", states the design,
 * the cache key, the cap and the measured bound. */
#ifndef JW_WIN_IMAGEID_H
#define JW_WIN_IMAGEID_H

#include <stdint.h>
#include <wchar.h>

#include "jobwarden.h"

/* Bytes of one string field, NUL included (a longer value is not cut: the
 * field is left absent and named in unavailable, never a partial value). */
#define JW_IMAGEID_STR_MAX 256
/* Bytes of one unavailable reason, NUL included (reasons are <= 239). */
#define JW_IMAGEID_REASON_MAX      240
#define JW_IMAGEID_FIELD_MAX       32
#define JW_IMAGEID_MAX_UNAVAILABLE 10
/* Images larger than this are not hashed (nor verified: WinVerifyTrust
 * hashes the whole file too); jw__imageid_start takes another cap (the
 * policy's rules.images.hash_cap). */
#define JW_IMAGEID_DEFAULT_CAP JW_IMAGE_HASH_CAP_DEFAULT
/* Results kept (the oldest is evicted first) and requests waiting for the
 * worker (one more is refused with JW_IMAGEID_FULL). */
#define JW_IMAGEID_CACHE_MAX 4096
#define JW_IMAGEID_QUEUE_MAX 64

/* The cache key: which file, in which state. Two paths of one file (a hard
 * link) share it; a copy, or the same file rewritten, does not. */
typedef struct {
  uint32_t volume_serial; /* BY_HANDLE_FILE_INFORMATION.dwVolumeSerialNumber */
  uint64_t file_index;    /* nFileIndexHigh:nFileIndexLow */
  uint64_t size;          /* bytes */
  uint64_t last_write;    /* FILETIME ticks */
} jw__imageid_key_t;

/* Every string is UTF-8 and "" when absent. */
typedef struct {
  int has_key;
  jw__imageid_key_t key;
  int has_sha256;
  char sha256[65]; /* 64 lowercase hex digits */
  int has_image_size;
  uint64_t image_size; /* bytes of the image file */
  /* PE version resource, read from the identified file itself (never a
   * .mui satellite, which is another file): the language-neutral one,
   * else US English, else any English, else the first. An empty value
   * counts as absent. */
  int has_pe; /* a version resource was read (some strings may be absent) */
  char original_file_name[JW_IMAGEID_STR_MAX];
  char company[JW_IMAGEID_STR_MAX];
  char product[JW_IMAGEID_STR_MAX];
  char description[JW_IMAGEID_STR_MAX];
  char file_version[JW_IMAGEID_STR_MAX];
  int has_code_signature;
  struct {
    int exists;      /* a signature (embedded or catalog) was found */
    char status[16]; /* "valid", "unsigned", "untrusted", "expired", "revoked", "bad_signature" */
    char subject_name[JW_IMAGEID_STR_MAX]; /* the signer's simple display name; "" = absent */
    int trusted;                           /* status "valid" */
  } code_signature;
  /* Fields that could not be read: "hash", "image_size", "pe",
   * "pe.company"..., "code_signature", each with why. */
  int n_unavailable;
  struct {
    char field[JW_IMAGEID_FIELD_MAX];
    char reason[JW_IMAGEID_REASON_MAX];
  } unavailable[JW_IMAGEID_MAX_UNAVAILABLE];
} jw__imageid_t;

/* The reason of `field` in r->unavailable, or NULL. */
const char *jw__imageid_unavailable(const jw__imageid_t *r, const char *field);

/* Called on the worker thread with the cookie of a QUEUED request and its
 * result (borrowed for the call). It must not call jw__imageid_stop or
 * jw__imageid_flush; it may call jw__imageid_request. */
typedef void (*jw__imageid_cb)(void *ctx, uint64_t cookie, const jw__imageid_t *result);

typedef struct jw__imageid_svc_s jw__imageid_svc_t;

typedef struct {
  uint64_t hits;         /* requests answered CACHED */
  uint64_t misses;       /* requests QUEUED */
  uint64_t full;         /* requests answered FULL (queue at its bound) */
  uint64_t worker_hits;  /* queued requests the worker found cached (a duplicate) */
  uint64_t computed;     /* identities the worker computed */
  uint64_t hashed_bytes; /* bytes fed to SHA-256 */
  uint64_t evicted;      /* cache entries dropped for room */
  uint64_t remote;       /* requests for a file on a network path: opened by the worker */
} jw__imageid_counters_t;

/* Starts the service and its worker thread (jw__thread_begin: the
 * protected thread DACL). cap_bytes 0 means JW_IMAGEID_DEFAULT_CAP.
 * Opens the SHA-256 provider once. Returns 0 and *out (owner: the caller,
 * released by jw__imageid_stop), JW_ENOMEM or JW_ESYS. Any thread. */
int jw__imageid_start(jw__imageid_svc_t **out, uint64_t cap_bytes, jw__imageid_cb cb, void *ctx);

/* Results of jw__imageid_request (errors are negative JW_E* codes):
 * CACHED: *out filled from the cache, no callback;
 * QUEUED: the callback follows, on the worker, with the cookie;
 * FULL:   the queue is at its bound: *out holds the key and size, every
 *         other field named unavailable ("identity queue full"), and no
 *         callback follows (remembering it would take the memory the bound
 *         is there to cap). */
#define JW_IMAGEID_CACHED 1
#define JW_IMAGEID_QUEUED 2
#define JW_IMAGEID_FULL   3

/* Identifies the file at path on the caller's thread (open + identity,
 * nothing read) and answers from the cache or queues the work. *out is
 * always written: the result for CACHED, the key and size for QUEUED and
 * FULL, the reason in unavailable for an error. Returns CACHED, QUEUED,
 * FULL, JW_ENOENT (no such file), JW_ESYS (cannot be opened or
 * identified: unavailable names why) or JW_EINVAL. Any thread.
 * A file on a network path (a UNC path, \\?\UNC\, a device path, or a
 * drive letter that does not link to a disk volume) is not opened here:
 * a share that
 * stops answering would hold the caller (the monitor) in CreateFileW.
 * Such a request is QUEUED at once, *out without a key; the worker opens
 * it, answers from the cache when it is there, else computes. */
int jw__imageid_request(jw__imageid_svc_t *svc, const wchar_t *path, uint64_t cookie,
                        jw__imageid_t *out);

/* Whether a drive letter's target (QueryDosDeviceW's first string) is a
 * local disk volume (\Device\Harddisk...): 1, else 0 (a redirector, a
 * SUBST's \??\ path, NULL). */
int jw__imageid_dos_target_local(const wchar_t *target);

/* How long jw__imageid_stop waits for the worker to end. */
#define JW_IMAGEID_STOP_MS 1000u

/* Waits until every queued request has been answered (its callback has
 * returned). Returns 0 or JW_ETIMEDOUT. Not from the callback. */
int jw__imageid_flush(jw__imageid_svc_t *svc, uint32_t timeout_ms);

/* Stops the worker after the request it is working on; requests still
 * queued are dropped without a callback. Frees svc. NULL is ignored. Not
 * from the callback. Waits at most JW_IMAGEID_STOP_MS for the worker: one
 * still stuck in a file after that (a share that stopped answering) is
 * left to the process's exit with the service (not freed), and calls
 * back no more. */
void jw__imageid_stop(jw__imageid_svc_t *svc);

/* A copy of the counters. Any thread. */
void jw__imageid_counters(jw__imageid_svc_t *svc, jw__imageid_counters_t *out);

/* Test hook: while held, the worker takes no request from the queue (so a
 * test can fill it to its bound deterministically). Any thread. */
void jw__imageid_test_hold(jw__imageid_svc_t *svc, int hold);

/* Test hook (Wine has no share to stall): fn(path, 0) != 0 makes path
 * count as a network path; fn(path, 1) is called on the thread about to
 * open path, just before the open (it may block there, as a share that
 * stopped answering would). NULL: none. Set before use. */
typedef int (*jw__imageid_remote_fn)(const wchar_t *path, int opening);
void jw__imageid_test_remote(jw__imageid_remote_fn fn);

/* How a WinVerifyTrust answer (st, GetLastError right after it in last)
 * and the signer chain's CERT_TRUST_* error bits (chain, when have_chain)
 * become code_signature or an unavailable reason in r; returns 1 when a
 * status was set. Exposed for wine.injected.imageid: Wine cannot produce
 * a trusted chain (docs/platform-support.md). Pure; any thread. */
int jw__imageid_map_trust(long st, unsigned long last, unsigned long chain, int have_chain,
                          jw__imageid_t *r);

/* Test hook: keeps at most n (1..JW_IMAGEID_CACHE_MAX) results, so a
 * test sees eviction without 4096 files. Only before the first result is
 * cached. Returns 0 or JW_EINVAL. Any thread. */
int jw__imageid_test_cache_max(jw__imageid_svc_t *svc, unsigned n);

/* The identity of one file computed on the calling thread, without the
 * service (a tool, a test). Same result as a QUEUED request's. Returns 0
 * or the error of jw__imageid_request. */
int jw__imageid_compute(const wchar_t *path, uint64_t cap_bytes, jw__imageid_t *out);

#endif

/* Internal declarations shared by jobwarden's sources (not public API). */
#ifndef JW_INTERNAL_H
#define JW_INTERNAL_H

#include <stdatomic.h>

#include "jobwarden.h"

#ifdef _WIN32
#include <windows.h>
typedef CRITICAL_SECTION jw__mutex_t;
typedef CONDITION_VARIABLE jw__cond_t;
typedef HANDLE jw__thread_t;
/* Writes all len bytes to h (a file, pipe or console) in a blocking loop
 * (src/win/platform.c). Returns 0, or -1 when a write fails (or h is not a
 * handle). */
int jw__write_all(HANDLE h, const char *buf, size_t len);
/* The one way jobwarden starts a thread on Windows (src/win/platform.c):
 * _beginthreadex with the protected thread DACL of jw__thread_dacl_set
 * once that is set (docs/platform-support.md), stack_bytes reserved (0:
 * the default), flags as _beginthreadex's (CREATE_SUSPENDED). Returns the
 * thread's handle (owner: the caller) or NULL with GetLastError set. */
HANDLE jw__thread_begin(unsigned(__stdcall *fn)(void *), void *arg, unsigned stack_bytes,
                        unsigned flags);
/* Ends a worker thread that waits on `wake` under `lock` for *quit: sets
 * *quit, wakes it, waits for it to end and closes its handle. */
void jw__thread_quit(jw__mutex_t *lock, jw__cond_t *wake, int *quit, HANDLE thread);
/* Makes acl (copied) the DACL of every thread jw__thread_begin starts
 * from now on. The first call wins; later ones return 0 and change
 * nothing. Call before other threads start (jw__self_protect does).
 * Returns 0, JW_EINVAL or JW_ESYS. */
int jw__thread_dacl_set(const ACL *acl);
#else
#include <pthread.h>
typedef pthread_mutex_t jw__mutex_t;
typedef pthread_cond_t jw__cond_t;
typedef pthread_t jw__thread_t;
#endif

/* Platform layer (src/win/platform.c, src/unix/platform.c). */
void jw__mutex_init(jw__mutex_t *m);
void jw__mutex_lock(jw__mutex_t *m);
void jw__mutex_unlock(jw__mutex_t *m);
void jw__mutex_destroy(jw__mutex_t *m);
void jw__cond_init(jw__cond_t *c);
/* Waits on c with m held; returns with m held again. */
void jw__cond_wait(jw__cond_t *c, jw__mutex_t *m);
/* Waits at most ms milliseconds; returns 0 when woken (possibly
 * spuriously: callers loop on their condition) or 1 on the timeout. */
int jw__cond_timedwait(jw__cond_t *c, jw__mutex_t *m, uint32_t ms);
void jw__cond_broadcast(jw__cond_t *c);
void jw__cond_destroy(jw__cond_t *c);
/* Starts fn(arg) on a new thread. Returns 0 or JW_ESYS. */
int jw__thread_start(jw__thread_t *t, void (*fn)(void *), void *arg);
/* The same with an explicit stack size: stack_bytes of address space
 * reserved (0: the system's default, 1 MB on Windows). For threads that
 * exist once per client (a pipe reader) so that their cost is known and
 * small. Returns 0 or JW_ESYS. */
int jw__thread_start_stack(jw__thread_t *t, void (*fn)(void *), void *arg, size_t stack_bytes);
/* Waits for the thread to end and releases it. */
void jw__thread_join(jw__thread_t *t);
/* Fills buf with n cryptographically random bytes. Returns 0 or JW_ESYS. */
int jw__random_bytes(void *buf, size_t n);
/* Host name as UTF-8; "unknown" when it cannot be read. */
void jw__hostname(char *buf, size_t size);
/* Microseconds since the Unix epoch on the clock the kernel stamps process
 * creation and exit times with (Windows: GetSystemTimeAsFileTime, which
 * advances at the timer tick; GetSystemTimePreciseAsFileTime, jw_now_us,
 * runs ahead of it by up to a tick). Every @timestamp jobwarden makes
 * itself is on this clock, so that a process's own times and the events
 * around them sort in the order they happened. Never later than a
 * jw_now_us() read after it. */
uint64_t jw__event_clock_us(void);
/* The run's context beyond the host name: host id, OS, the user running
 * jobwarden; each value that cannot be read is named in
 * run->unavailable[] with the reason (platform.c). */
void jw__run_context(jw_run_info_t *run);
/* Adds field -> reason to run->unavailable (formats like printf). */
void jw__run_unavailable(jw_run_info_t *run, const char *field, const char *fmt, ...);
/* Whether two UTF-8 names are equal ignoring case the way Windows compares
 * file names: CompareStringOrdinal(bIgnoreCase) on Windows (every letter
 * the system upper-cases); on other systems ASCII letters only (the
 * portable unit tests). Invalid UTF-8 compares bytewise. */
int jw__name_equal_nocase(const char *a, size_t alen, const char *b, size_t blen);

/* Reads len bytes at offset off of a file into buf: 0, or -1 when they
 * cannot all be read. */
typedef int (*jw__pe_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);
/* Version resources larger than this are refused (real ones are ~1-2 KiB). */
#define JW_PE_VERSION_MAX (64u * 1024u)
/* The raw RT_VERSION resource (VS_VERSIONINFO: the first name; of its
 * languages neutral, else US English, else any English, else the first)
 * of the PE file read through `read` (file_size bytes), taken
 * from the file itself, never from a .mui satellite (src/pe_version.c).
 * Returns 0 with *out (new malloc'd, *out_len bytes); JW_ENOENT when the
 * file has none, JW_EINVAL when it is not a PE file or is malformed,
 * JW_EIO when a read fails, JW_ENOMEM; *why is then a static sentence
 * ("image has no version resource", "not a PE file", ...). Pure; any
 * thread. */
int jw__pe_version_resource(jw__pe_read_fn read, void *ctx, uint64_t file_size, void **out,
                            size_t *out_len, const char **why);

/* Whether a VS_VERSIONINFO block (len bytes) is well formed enough for
 * the system's VerQueryValueW to walk: every node at least 6 bytes, inside
 * its parent, its key NUL-terminated, at most 5 levels. 1 or 0. Pure. */
int jw__pe_version_block_ok(const void *block, size_t len);

/* Image list entries (docs/policy.md, "Image lists"): a plain file name,
 * "sha256:<64 lowercase hex>", "original_file_name:<name>" or
 * "signer:<subject name>", stored in the policy as written (the hex
 * lowercased). */
typedef enum {
  JW_IMAGE_NO_MATCH = 0, /* no entry matches, and every entry could be decided */
  JW_IMAGE_MATCH = 1,    /* an entry matches (*matched names it) */
  JW_IMAGE_UNDECIDED = 2 /* none matches yet, but an entry needs a fact not known */
} jw_image_match_t;

/* What is known about one image. NULL: not known (not computed yet, or
 * unavailable); "": known to be absent. signer is the subject name of a
 * signature that verified (code_signature.status "valid") and "" for an
 * image that is unsigned or whose signature did not verify: a self-signed
 * certificate can carry any name, so an untrusted one is no signer. */
typedef struct {
  const char *file_name;          /* the image's file name, no directory */
  const char *sha256;             /* 64 lowercase hex */
  const char *original_file_name; /* the version resource's OriginalFilename */
  const char *signer;
} jw_image_facts_t;

/* Matches one image list (n entries of a jw_policy_t list) against the
 * facts, in list order: the first entry that matches decides (MATCH, its
 * text in *matched, borrowed from list); an entry whose fact is NULL
 * makes the answer UNDECIDED unless a later entry matches. Plain names
 * and original_file_name: equal ignoring case (jw__name_equal_nocase),
 * and an entry without a dot also matches the name without its extension
 * ("cmd" matches cmd.exe). signer: exact, ignoring case. sha256: exact.
 * Pure; any thread. matched may be NULL. */
jw_image_match_t jw__image_list_match(const char (*list)[JW_IMAGE_NAME_MAX], int n,
                                      const jw_image_facts_t *facts, const char **matched);
/* Writes all of buf to the process's stderr, unbuffered (messages that must
 * not interleave with another thread's output mid-line). */
void jw__stderr_write(const char *buf, size_t len);
/* Writes all of buf to standard output: 0, or -1 when it cannot. */
int jw__stdout_write(const char *buf, size_t len);
/* Hands one line to an exporter, sealed first when the run seals and the
 * exporter does not seal itself (src/seal.c). The emitter's only way to
 * call export_line. */
/* Test hook: called by a sink's writer after each group-commit flush
 * (src/emitter.c): the exporter, the seq of the last line the flush
 * covers, when the oldest violation it covers was written (jw_now_us),
 * and the flush's result (0 or a JW_E* code). Set before the emitter
 * starts; NULL: none. */
extern void (*jw__emitter_flush_hook)(void *ctx, const jw_exporter_t *exp, uint64_t through_seq,
                                      uint64_t first_unflushed_us, int rc);
extern void *jw__emitter_flush_hook_ctx;
/* Test hook: called by jw_emit (with queues) after the event's seq is
 * reserved and the lock released, before the line is rendered: a test
 * holds one emitter there to make a later seq ready first. NULL: none. */
extern void (*jw__emitter_reserved_hook)(void *ctx, uint64_t seq);
extern void *jw__emitter_reserved_hook_ctx;
/* Per sink, for job_end's summary: [{exporter, written, lost, spool?}]
 * (a json_t *, new reference). */
void *jw__emitter_sinks_json(jw_emitter_t *em);
/* The registered exporters (exporters/registry.c). */
const jw_exporter_vtable_t *const *jw__exporter_registry(size_t *count);
/* Parses a SPEC's options (exporters/options.c): after_kind is the SPEC
 * after its kind (":TARGET,OPTS", ",OPTS" or ""); exp->vt and exp->spec
 * set. Fills exp->config and exp's common fields, *target (malloc'd or
 * NULL). */
int jw__exporter_parse(jw_exporter_t *exp, const char *after_kind, char **target, jw_error_t *err);
void jw__exporter_options_free(jw_exporter_t *exp);
/* Opens the exporter a spool's `sink` file names, to deliver what the
 * spool directory dir holds (`jobwarden flush`): *found lines wait. */
int jw__exporter_open_flush(const char *spec, const char *dir, jw_exporter_t **out, uint64_t *found,
                            jw_error_t *err);
/* Parses every row's default (the unit test of each kind's table). */
int jw__exporter_defaults_parse(const jw_exporter_vtable_t *vt, jw_error_t *err);
/* --help's text for the exporters, from their option rows (malloc'd). */
char *jw_exporter_help(void);
int jw__exporter_write(jw_exporter_t *exp, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err);
/* Creates the file `path` (UTF-8) for a secret: refused when it exists
 * (JW_EEXIST), readable and writable by its owner only (POSIX mode 0600;
 * on Windows a protected DACL with one entry, the current user, so that
 * a process whose restricted token does not carry the user's SID for
 * access checks is denied), holding exactly data[0..len). Returns 0 or
 * an error code with err set (what, where, why). */
int jw__create_secret_file(const char *path, const void *data, size_t len, jw_error_t *err);

/* Text of a system error code (GetLastError() / errno), UTF-8, without a
 * trailing newline or period. */
void jw__sys_error_text(uint32_t code, char *buf, size_t size);
/* fopen() for a UTF-8 path (on Windows through _wfopen). */
#include <stdio.h>
FILE *jw__fopen_utf8(const char *path, const char *mode);

#ifdef _WIN32
/* A new malloc'd UTF-16 copy of a UTF-8 string; NULL when the input is not
 * valid UTF-8 or memory runs out. */
wchar_t *jw__utf8_to_wide(const char *s);
/* Test hook (exporters/pipe/pipe.c): of a pipe: exporter's readers, how
 * many connected so far, how many went away before the end, the Win32
 * error that showed the last one leaving; and the last seq it took. */
int jw__pipe_reader_stats(jw_exporter_t *exp, uint64_t *connected, uint64_t *gone,
                          uint32_t *last_error, uint64_t *last_seq);
/* Test hook: the writes the pipe sink's writer made to a reader's pipe
 * itself (its queue empty, nobody writing to it); of those the ones that
 * did not complete at once and were handed to the reader's thread; of
 * those the ones cancelled when the writer's thread ended and finished by
 * the reader's thread. `closing`: the run's end has begun (the writer has
 * ended). */
typedef struct {
  uint64_t direct, handed, resumed;
  int closing;
} jw__pipe_wstats_t;
int jw__pipe_write_stats(jw_exporter_t *exp, jw__pipe_wstats_t *st);
#endif

/* Bounded copy that always terminates dst (truncates silently). */
void jw__strlcpy(char *dst, const char *src, size_t size);
/* Whether the n bytes at s are all of [0-9a-f] (a NUL among them is not). */
int jw__lower_hex(const char *s, size_t n);

/* Appends the n bytes at s to *out (at most *left bytes, the NUL
 * included; *out and *left move on) as a terminal may show it: control
 * characters (a U+0000 too: what follows it is shown), C1 controls and
 * bidirectional overrides become '?', and s is cut after `max` bytes on a
 * character boundary ("..." marks the cut). Used by `tail`, `ps` and
 * `report` for strings that came from the sandboxed program: a JSON
 * string's n is json_string_length, so a \u0000 in it hides nothing.
 * jw__put_sanitized: the same for a C string. */
void jw__put_sanitized_n(char **out, size_t *left, const char *s, size_t n, size_t max);
void jw__put_sanitized(char **out, size_t *left, const char *s, size_t max);

/* Longest pipe NAME accepted (the part after \\.\pipe\; the kernel takes
 * 256 characters for the whole path). */
#define JW_PIPE_NAME_MAX 200
/* Checks a pipe NAME: 1 to JW_PIPE_NAME_MAX bytes, no backslash, slash or
 * control character; a leading \\.\pipe\ is skipped (*name moves past
 * it). `what` starts the error text ("tail", "--export pipe:"). Returns 0
 * or JW_EUSAGE. */
int jw__pipe_name_check(const char **name, const char *what, jw_error_t *err);

/* Line queues (src/lineq.c): the lines one consumer still has to write, in
 * seq order, with markers (gap_count > 0) for lines it lost at that point.
 * No locking inside: the owner guards each queue. */
typedef struct jw__line_s {
  struct jw__line_s *next;
  uint64_t seq; /* a marker: the last lost seq */
  jw_event_kind_t kind;
  uint64_t gap_from, gap_count; /* marker only */
  const char *gap_reason;       /* marker only; a static string */
  size_t len;
  size_t cap;  /* bytes allocated for data (>= len; 0 for a marker) */
  char data[]; /* the line, '\n' included */
} jw__line_t;

typedef struct {
  jw__line_t *head, *tail;
  size_t queued; /* lines, markers not counted */
} jw__lineq_t;

/* Alerts (violations, notices, gap records) and the job's end (the run's
 * summary and process tree: the record an analyst starts from) may fill a
 * queue to four times its capacity before they are dropped; the other
 * lifecycle events may not. */
int jw__is_alert(jw_event_kind_t kind);
/* A new line holding a copy of data; NULL when memory runs out. */
jw__line_t *jw__line_new(uint64_t seq, jw_event_kind_t kind, const char *data, size_t len);
void jw__lineq_push(jw__lineq_t *q, jw__line_t *it);
/* The oldest entry or NULL; the caller frees it. */
jw__line_t *jw__lineq_pop(jw__lineq_t *q);
/* Moves every item of q into `into` (which must be empty); q is empty. */
void jw__lineq_take(jw__lineq_t *q, jw__lineq_t *into);
/* Records that seq from..to are lost at the tail of q: extends a marker
 * that ends at from - 1, else appends a new one. */
void jw__lineq_drop(jw__lineq_t *q, uint64_t from, uint64_t to, const char *reason);
void jw__lineq_clear(jw__lineq_t *q);

/* What every line of a run repeats, rendered once (jw__run_frags_make,
 * from the run as it is then) and copied into each line by
 * jw__event_render_into: the context from "host" to "job", and the
 * run's "unavailable" map. The emitter makes them when its sinks are
 * fixed (jw_emitter_start); its run does not change after that. */
typedef struct {
  char *context; /* owned; NULL: not made, each line renders its own */
  size_t context_len;
  char *unavailable; /* inside the context's buffer; "" when there is none */
  size_t unavailable_len;
  int reference; /* the map is one only the reference renders (a repeated or ill-formed key) */
  /* The last line's length (relaxed: a hint for the next line's buffer). */
  atomic_size_t last_len;
} jw__run_frags_t;
int jw__run_frags_make(const jw_run_info_t *run, jw__run_frags_t *f); /* 0 or JW_ENOMEM */
void jw__run_frags_free(jw__run_frags_t *f);
/* A buffer a line is rendered into: buf (malloc'd, cap bytes; NULL: the
 * renderer allocates one) holds `head` bytes of room, then the line (len
 * bytes, '\n' included, then a 0 byte). */
typedef struct {
  char *buf;
  size_t cap;
  size_t head;
  size_t len;
} jw__linebuf_t;
/* jw_event_render_line into lb: the run's parts copied from frags (NULL,
 * or frags->context NULL: rendered here; frags->last_len is updated).
 * lb->buf is taken (grown, or replaced); on success it holds the line,
 * else it is freed and NULL. Same results as jw_event_render_line. Any
 * thread. */
int jw__event_render_into(const jw_event_t *ev, const jw_run_info_t *run, jw__run_frags_t *frags,
                          uint64_t seq, uint64_t time_us, jw__linebuf_t *lb);

/* The reference rendering of jw_event_render_line (same contract): the
 * object of jw_event_to_json dumped by jansson. jw_event_render_line
 * writes the same bytes directly; the unit tests compare the two. */
int jw__event_render_jansson(const jw_event_t *ev, const jw_run_info_t *run, uint64_t seq,
                             uint64_t time_us, char **out, size_t *out_len);

/* "2026-11-23T09:11:05.123456Z" for a FILETIME (100 ns since 1601) after
 * 1970; returns 0 (buf untouched) for anything earlier. */
int jw__filetime_iso(uint64_t filetime, char *buf, size_t size);
/* The longest prefix of s (len bytes) of at most max bytes that does not
 * split a UTF-8 character: len itself when len <= max. */
size_t jw__utf8_cut(const char *s, size_t len, size_t max);
/* Sets key of obj (a json_t * object) to the string s (len bytes, 0 =
 * strlen(s); ill-formed UTF-8 replaced by U+FFFD, U+0000 kept; NULL s =
 * JSON null), cut at max bytes on a character boundary; when it was cut,
 * also sets "<key>_truncated": true. Returns 0, or -1 when out of memory
 * (obj may then hold key without its marker: the caller drops obj). */
int jw__json_put_cut(void *obj, const char *key, const char *s, size_t len, size_t max);

/* Losses a consumer holds until it can write their record. */
typedef struct {
  uint64_t from, to, count;
  const char *reason;
} jw__gap_t;
/* Adds the adjacent losses from..to (count of them) to g. */
void jw__gap_add(jw__gap_t *g, uint64_t from, uint64_t to, uint64_t count, const char *reason);
/* Renders g as a sandbox.telemetry_gap line of `sink` (seq = g->to);
 * reader != 0 adds gap.reader (a pipe exporter's reader number). */
int jw__gap_render(const jw_run_info_t *run, const char *sink, uint64_t reader, const jw__gap_t *g,
                   jw_severity_t severity, char **line, size_t *len);

#endif /* JW_INTERNAL_H */

/* A network sink's spool and sender (src/spool.h has the layout).
 *
 * Two threads touch a spool. The sink's writer (the emitter's thread for
 * that sink) appends whole lines to the tail segment of this run's
 * directory; the sender delivers from the head: it reads a chunk of the
 * head segment, hands the complete lines in it to the exporter as one
 * batch (deliver_lines; export_line line by line for an exporter without
 * it), advances the cursor past what was delivered, and deletes a segment
 * once it is delivered and another follows. Only the sender calls the
 * exporter, so it sees one caller. A failed delivery is not a loss: the line stays where it is
 * and is tried again after a backoff (100 ms doubling up to retry_max=);
 * the first failure of an outage and the first success after it are
 * notices in the record (sink_unreachable, sink_recovered).
 *
 * Bounded: this run's undelivered bytes never exceed spool_max= (a line
 * that would is refused: the writer records it as lost, the stream gets a
 * telemetry_gap once there is room again). The segments this run writes
 * stay open, shared for reading only, until they are delivered: the
 * sandboxed program (same user) cannot rewrite or delete them meanwhile. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fileio.h"
#include "internal.h"
#include "spool.h"

#define SEG_MAX          (4u << 20)   /* a segment is closed for appending past this */
#define READ_CHUNK       (256u << 10) /* the sender reads this much at a time */
#define BACKOFF_FIRST_MS 100
#define DRAIN_BACKOFF_MS 1000 /* the longest wait between attempts while draining */
#define CURSOR_EVERY_US  200000
#define CURSOR_LEN       42 /* "%020llu %020llu\n" */

typedef struct seg_s {
  uint64_t number;
  char *path;
  jw__file_t *f;
  uint64_t size; /* complete lines in it (bytes) */
  int full;      /* takes no more lines (SEG_MAX, or a failed write left a torn line) */
  struct seg_s *next;
} seg_t;

typedef struct dir_s {
  char *path;
  jw__file_t *lock;   /* held while this process owns the directory */
  jw__file_t *cursor; /* NULL when it cannot be written */
  seg_t *segs, *tail; /* head: being delivered */
  uint64_t off;       /* bytes of the head delivered */
  uint64_t pending;   /* lines not delivered */
  uint64_t next_number;
  int own;
  struct dir_s *next;
} dir_t;

typedef struct jw_spool_s jw_spool_t;
struct jw_spool_s {
  jw_exporter_t *exp;
  char *root;
  dir_t *dirs; /* adopted ones first (oldest first), this run's last */
  dir_t *own;  /* NULL with flush */
  jw__mutex_t lock;
  jw__cond_t wake;
  jw__thread_t thread;
  int started;
  int stopping;
  uint64_t deadline_us; /* with stopping: when the sender gives up */
  uint64_t undelivered; /* this run's bytes not delivered (spool_max) */
  uint64_t appended, delivered, adopted, adopted_sent;
  uint64_t undeliverable; /* lines the exporter said it can never deliver (skipped) */
  int down;
  /* A notice (sink_unreachable / sink_recovered) is being written: the
   * spool is not settled until it is in the stream (jw__spool_stats), so
   * that job_end, which waits for settled sinks, comes after it. */
  int noticing;
  uint64_t down_since_us, retry_at_us, backoff_ms, attempts_failed;
  uint64_t cursor_at_us;
  char last_error[300];
};

/* --- small helpers ---------------------------------------------------------- */

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);
  if (s == NULL)
    return NULL;
  memcpy(s, a, la);
  s[la] = JW_PATH_SEP;
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

static char *seg_path(const char *dir, uint64_t number) {
  char name[32];
  snprintf(name, sizeof(name), "%08llu.seg", (unsigned long long)number);
  return join(dir, name);
}

static void say(const jw_exporter_t *exp, const char *fmt, ...) {
  char buf[1200];
  va_list ap;
  int n = snprintf(buf, sizeof(buf), "jobwarden: exporter '%s': ", exp->spec);
  va_start(ap, fmt);
  if (n > 0 && (size_t)n < sizeof(buf))
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
  va_end(ap);
  if (n > 0 && (size_t)n < sizeof(buf) - 1) {
    buf[n++] = '\n';
    jw__stderr_write(buf, (size_t)n);
  }
}

static void notice(jw_exporter_t *exp, const char *rule, jw_severity_t sev, json_t *extra,
                   const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (exp->notice != NULL) {
    exp->notice(exp->notice_ctx, exp, rule, sev, msg, extra);
  } else {
    json_decref(extra);
    say(exp, "%s", msg);
  }
}

static const char *last_newline(const char *buf, size_t len) {
  while (len > 0)
    if (buf[--len] == '\n')
      return buf + len;
  return NULL;
}

static uint64_t count_lines(const char *buf, size_t len) {
  uint64_t n = 0;
  const char *p = buf, *end = buf + len;
  while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
    n++;
    p++;
  }
  return n;
}

static void seg_free(seg_t *s) {
  jw__file_close(s->f);
  free(s->path);
  free(s);
}

static void write_cursor(dir_t *d) {
  char buf[CURSOR_LEN + 1];
  jw_error_t err;
  if (d->cursor == NULL || d->segs == NULL)
    return;
  snprintf(buf, sizeof(buf), "%020llu %020llu\n", (unsigned long long)d->segs->number,
           (unsigned long long)d->off);
  memset(&err, 0, sizeof(err));
  jw__file_pwrite(d->cursor, 0, buf, CURSOR_LEN, &err);
}

/* Removes a directory this process holds, with everything in it. */
static void remove_dir(dir_t *d) {
  char **names = NULL;
  size_t n = 0, i;
  jw_error_t err;
  seg_t *s;
  memset(&err, 0, sizeof(err));
  for (s = d->segs; s != NULL;) {
    seg_t *next = s->next;
    jw__file_close(s->f);
    s->f = NULL;
    jw__file_remove(s->path, &err);
    seg_free(s);
    s = next;
  }
  d->segs = d->tail = NULL;
  jw__file_close(d->cursor);
  d->cursor = NULL;
  if (jw__dir_list(d->path, &names, &n, &err) == 0) {
    for (i = 0; i < n; i++) {
      char *p;
      if (strcmp(names[i], "lock") == 0)
        continue;
      if ((p = join(d->path, names[i])) != NULL)
        jw__file_remove(p, &err);
      free(p);
    }
    jw__dir_list_free(names, n);
  }
  jw__file_close(d->lock);
  d->lock = NULL;
  {
    char *p = join(d->path, "lock");
    if (p != NULL)
      jw__file_remove(p, &err);
    free(p);
  }
  jw__dir_remove(d->path, &err);
}

static void dir_free(dir_t *d) {
  seg_t *s = d->segs;
  while (s != NULL) {
    seg_t *next = s->next;
    seg_free(s);
    s = next;
  }
  jw__file_close(d->cursor);
  jw__file_close(d->lock);
  free(d->path);
  free(d);
}

/* --- adopting what ended runs left ------------------------------------------ */

/* Reads "<segment> <offset>" from a cursor file; 0 when there is none. */
static void read_cursor(dir_t *d, uint64_t *number, uint64_t *off) {
  char buf[CURSOR_LEN + 1];
  size_t got = 0;
  jw_error_t err;
  unsigned long long a, b;
  *number = 0;
  *off = 0;
  memset(&err, 0, sizeof(err));
  if (d->cursor == NULL || jw__file_pread(d->cursor, 0, buf, CURSOR_LEN, &got, &err) != 0)
    return;
  buf[got] = '\0';
  if (sscanf(buf, "%llu %llu", &a, &b) == 2) {
    *number = a;
    *off = b;
  }
}

/* Takes the run directory `name` in the root if no process holds it.
 * Returns the directory with its pending lines counted, or NULL (held by
 * a live run, not a run directory, or nothing left: then removed). */
static dir_t *adopt(jw_spool_t *sp, const char *path) {
  dir_t *d = calloc(1, sizeof(*d));
  char *lockp = join(path, "lock"), *cursorp = join(path, "cursor");
  char **names = NULL;
  size_t n = 0, i;
  uint64_t cnum, coff;
  jw_error_t err;
  memset(&err, 0, sizeof(err));
  if (d == NULL || lockp == NULL || cursorp == NULL || (d->path = malloc(strlen(path) + 1)) == NULL)
    goto skip;
  memcpy(d->path, path, strlen(path) + 1);
  if (jw__dir_list(path, &names, &n, &err) != 0)
    goto skip;
  for (i = 0; i < n && strcmp(names[i], "sink") != 0; i++)
    ;
  if (i == n)
    goto skip; /* not a run directory: never touch it */
  if (jw__file_lock(lockp, &d->lock, &err) != 0)
    goto skip; /* a live run's */
  if (jw__file_open_rw(cursorp, &d->cursor, &err) != 0)
    d->cursor = NULL;
  read_cursor(d, &cnum, &coff);
  for (i = 0; i < n; i++) {
    size_t len = strlen(names[i]);
    seg_t *s;
    uint64_t size = 0;
    char *buf;
    size_t got = 0, at;
    if (len != 12 || strcmp(names[i] + 8, ".seg") != 0)
      continue;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
      continue;
    s->number = strtoull(names[i], NULL, 10);
    s->path = join(path, names[i]);
    if (s->path == NULL || s->number < cnum || jw__file_open_read(s->path, &s->f, &err) != 0 ||
        jw__file_size(s->f, &size, &err) != 0) {
      if (s->path != NULL && s->number < cnum)
        jw__file_remove(s->path, &err); /* delivered already */
      seg_free(s);
      continue;
    }
    at = s->number == cnum ? (size_t)(coff < size ? coff : size) : 0;
    /* Count the complete lines; a torn last line (a run killed in a
     * write) is not a line: it is left out. */
    buf = malloc(size > at ? (size_t)(size - at) : 1);
    if (buf != NULL && jw__file_pread(s->f, at, buf, (size_t)(size - at), &got, &err) == 0) {
      const char *last = got > 0 ? last_newline(buf, got) : NULL;
      size_t whole = last ? (size_t)(last - buf) + 1 : 0;
      if (whole < got)
        say(sp->exp,
            "spool %s: %lu byte(s) at the end are not a whole line (a run ended in a "
            "write); they are not sent",
            s->path, (unsigned long)(got - whole));
      s->size = at + whole;
      d->pending += count_lines(buf, whole);
    }
    free(buf);
    if (d->segs == NULL) {
      d->segs = s;
      d->off = at;
    } else {
      d->tail->next = s;
    }
    d->tail = s;
  }
  jw__dir_list_free(names, n);
  free(lockp);
  free(cursorp);
  if (d->pending == 0) {
    remove_dir(d);
    dir_free(d);
    return NULL;
  }
  return d;
skip:
  jw__dir_list_free(names, n);
  free(lockp);
  free(cursorp);
  if (d != NULL)
    dir_free(d);
  return NULL;
}

/* Adopts every ended run's directory in the root, oldest first. */
static void adopt_all(jw_spool_t *sp, const char *skip_name) {
  char **names = NULL;
  size_t n = 0, i;
  jw_error_t err;
  dir_t **at = &sp->dirs;
  memset(&err, 0, sizeof(err));
  if (jw__dir_list(sp->root, &names, &n, &err) != 0)
    return;
  for (i = 0; i < n; i++) {
    char *p;
    dir_t *d;
    if (skip_name != NULL && strcmp(names[i], skip_name) == 0)
      continue;
    p = join(sp->root, names[i]);
    d = p != NULL ? adopt(sp, p) : NULL;
    free(p);
    if (d == NULL)
      continue;
    sp->adopted += d->pending;
    *at = d;
    at = &d->next;
  }
  jw__dir_list_free(names, n);
}

/* --- the sender --------------------------------------------------------------- */

static dir_t *first_pending(jw_spool_t *sp) {
  dir_t *d;
  for (d = sp->dirs; d != NULL; d = d->next)
    if (d->pending > 0)
      return d;
  return NULL;
}

static uint64_t total_pending(jw_spool_t *sp) {
  uint64_t n = 0;
  dir_t *d;
  for (d = sp->dirs; d != NULL; d = d->next)
    n += d->pending;
  return n;
}

static void on_failure(jw_spool_t *sp, const jw_error_t *err) {
  uint64_t now = jw_now_us(), cap = sp->exp->delivery.retry_max_ms;
  if (sp->stopping && cap > DRAIN_BACKOFF_MS)
    cap = DRAIN_BACKOFF_MS;
  sp->attempts_failed++;
  sp->backoff_ms = sp->backoff_ms == 0 ? BACKOFF_FIRST_MS : sp->backoff_ms * 2;
  if (sp->backoff_ms > cap)
    sp->backoff_ms = cap;
  sp->retry_at_us = now + sp->backoff_ms * 1000u;
  jw__strlcpy(sp->last_error, err->text[0] ? err->text : "delivery failed", sizeof(sp->last_error));
  if (!sp->down) {
    uint64_t pending = total_pending(sp);
    json_t *extra;
    sp->down = 1;
    sp->down_since_us = now;
    extra = json_pack("{s:{s:s,s:s,s:I,s:I}}", "delivery", "exporter", sp->exp->spec, "spool",
                      sp->own ? sp->own->path : sp->root, "pending", (json_int_t)pending,
                      "win32_error", (json_int_t)err->sys_error);
    sp->noticing++;
    jw__mutex_unlock(&sp->lock);
    notice(sp->exp, "sink_unreachable", JW_SEV_MEDIUM, extra,
           "exporter '%.200s' cannot deliver: %.200s; %llu line(s) wait in its spool and go out "
           "when it is back (retrying up to every %llu ms)",
           sp->exp->spec, sp->last_error, (unsigned long long)pending,
           (unsigned long long)sp->exp->delivery.retry_max_ms);
    jw__mutex_lock(&sp->lock);
    sp->noticing--;
  }
}

/* waited: the lines that were pending when the attempt that succeeded
 * began (the outage's backlog). */
static void on_success(jw_spool_t *sp, uint64_t waited) {
  sp->backoff_ms = 0;
  sp->retry_at_us = 0;
  if (sp->down) {
    uint64_t pending = waited, ms = (jw_now_us() - sp->down_since_us) / 1000u;
    json_t *extra = json_pack("{s:{s:s,s:I,s:I,s:I}}", "delivery", "exporter", sp->exp->spec,
                              "pending", (json_int_t)pending, "outage_ms", (json_int_t)ms,
                              "failed_attempts", (json_int_t)sp->attempts_failed);
    sp->down = 0;
    sp->attempts_failed = 0;
    sp->noticing++;
    jw__mutex_unlock(&sp->lock);
    notice(sp->exp, "sink_recovered", JW_SEV_INFO, extra,
           "exporter '%.200s' delivers again after %llu ms; the %llu line(s) spooled meanwhile "
           "follow in order",
           sp->exp->spec, (unsigned long long)ms, (unsigned long long)pending);
    jw__mutex_lock(&sp->lock);
    sp->noticing--;
  }
}

/* Delivers from the head of d until a failure or the end of what is
 * there. Called with sp->lock held; releases it around the I/O. */
static void deliver_some(jw_spool_t *sp, dir_t *d, char **buf, size_t *cap) {
  seg_t *s = d->segs;
  uint64_t off = d->off, end, sent_lines = 0, sent_bytes = 0, waited, skipped = 0;
  char skip_why[300] = "";
  int rc;
  size_t got = 0, pos = 0;
  jw_error_t err;
  int failed = 0;

  if (s == NULL)
    return;
  waited = total_pending(sp);
  end = s->size;
  if (off >= end) {
    /* The head is done: drop it when another segment follows. */
    if (s->next != NULL || !d->own) {
      d->segs = s->next;
      if (d->segs == NULL)
        d->tail = NULL;
      d->off = 0;
      jw__file_close(s->f);
      s->f = NULL;
      memset(&err, 0, sizeof(err));
      jw__file_remove(s->path, &err);
      seg_free(s);
      write_cursor(d);
    }
    return;
  }
  jw__mutex_unlock(&sp->lock);
  memset(&err, 0, sizeof(err));
  for (;;) {
    size_t want = (size_t)(end - off < (uint64_t)*cap ? end - off : *cap);
    if (jw__file_pread(s->f, off, *buf, want, &got, &err) != 0 || got == 0) {
      if (err.text[0] == '\0')
        jw_error_set(&err, JW_EIO, 0, s->path, "the spool file %s ends early", s->path);
      failed = -1;
      break;
    }
    if (memchr(*buf, '\n', got) == NULL && got == *cap) {
      /* One line longer than the buffer: a bigger one. */
      char *bigger = realloc(*buf, *cap * 2);
      if (bigger == NULL) {
        jw_error_set(&err, JW_ENOMEM, 0, "spool", "out of memory");
        failed = -1;
        break;
      }
      *buf = bigger;
      *cap *= 2;
      continue;
    }
    break;
  }
  if (!failed && sp->exp->vt->deliver_lines != NULL) {
    /* The whole lines read go to the exporter as one batch: it frames
     * them together and checks and writes its connection once, not once
     * per line. What it reports delivered (whole lines) is what the
     * cursor passes; the next attempt starts at the first line it did
     * not deliver, byte for byte as it is on disk. */
    const char *last = last_newline(*buf, got);
    size_t whole = last != NULL ? (size_t)(last - *buf) + 1 : 0;
    while (pos < whole) {
      size_t done = 0, left = whole - pos;
      memset(&err, 0, sizeof(err));
      rc = sp->exp->vt->deliver_lines(sp->exp, *buf + pos, left, &done, &err);
      if (done > left || (done > 0 && (*buf)[pos + done - 1] != '\n'))
        done = 0; /* not a line boundary: nothing counts as delivered */
      sent_lines += count_lines(*buf + pos, done);
      sent_bytes += done;
      pos += done;
      if (rc == JW_EINVAL && pos < whole) {
        /* This line can never be delivered (the exporter says so): it
         * must not hold up the ones behind it. Skipped, counted as lost,
         * said. */
        size_t len =
            (size_t)((const char *)memchr(*buf + pos, '\n', whole - pos) - (*buf + pos)) + 1;
        skipped++;
        if (skipped == 1)
          jw__strlcpy(skip_why, err.text, sizeof(skip_why));
        pos += len;
        sent_lines++;
        sent_bytes += len;
      } else if (rc != 0 || done == 0) {
        if (rc == 0)
          jw_error_set(&err, JW_EIO, 0, sp->exp->spec, "the exporter delivered nothing");
        failed = 1;
        break;
      }
    }
  }
  while (!failed && sp->exp->vt->deliver_lines == NULL) {
    const char *nl = memchr(*buf + pos, '\n', got - pos);
    size_t len;
    jw_event_t stub;
    if (nl == NULL)
      break;
    len = (size_t)(nl - (*buf + pos)) + 1;
    memset(&stub, 0, sizeof(stub));
    stub.kind = JW_EVENT_NOTICE;
    memset(&err, 0, sizeof(err));
    rc = sp->exp->vt->export_line(sp->exp, *buf + pos, len, &stub, &err);
    if (rc == JW_EINVAL) {
      /* As above: skipped, counted as lost, said. */
      skipped++;
      if (skipped == 1)
        jw__strlcpy(skip_why, err.text, sizeof(skip_why));
    } else if (rc != 0) {
      failed = 1;
      break;
    }
    pos += len;
    sent_lines++;
    sent_bytes += len;
  }
  jw__mutex_lock(&sp->lock);
  d->off = off + sent_bytes;
  d->pending -= sent_lines;
  if (d->own) {
    sp->delivered += sent_lines;
    sp->undelivered -= sent_bytes;
  } else {
    sp->adopted_sent += sent_lines;
  }
  if (skipped > 0) {
    int first = sp->undeliverable == 0;
    sp->undeliverable += skipped;
    if (first) {
      json_t *extra = json_pack("{s:{s:s,s:s,s:I}}", "error", "where", sp->exp->spec, "code",
                                "EINVAL", "win32_error", (json_int_t)0);
      jw__mutex_unlock(&sp->lock);
      notice(sp->exp, "sink_failed", JW_SEV_HIGH, extra,
             "exporter '%.200s' cannot deliver a line at all (%.200s); it is skipped and counted "
             "as lost, the lines after it go on",
             sp->exp->spec, skip_why);
      jw__mutex_lock(&sp->lock);
    }
  }
  if (sent_lines > skipped || failed == 0)
    on_success(sp, waited);
  if (failed)
    on_failure(sp, &err);
  if (jw_now_us() - sp->cursor_at_us >= CURSOR_EVERY_US || d->pending == 0) {
    write_cursor(d);
    sp->cursor_at_us = jw_now_us();
  }
  jw__cond_broadcast(&sp->wake); /* jw__spool_wait */
}

static void sender_main(void *arg) {
  jw_spool_t *sp = arg;
  size_t cap = READ_CHUNK;
  char *buf = malloc(cap);
  if (buf == NULL)
    return;
  jw__mutex_lock(&sp->lock);
  for (;;) {
    dir_t *d = first_pending(sp);
    uint64_t now = jw_now_us();
    if (d == NULL) {
      dir_t *x, **at;
      /* Adopted directories that are done go away. */
      for (at = &sp->dirs; (x = *at) != NULL;) {
        if (!x->own && x->pending == 0) {
          *at = x->next;
          remove_dir(x);
          dir_free(x);
        } else {
          at = &x->next;
        }
      }
      if (sp->stopping)
        break;
      jw__cond_wait(&sp->wake, &sp->lock);
      continue;
    }
    if (sp->stopping && now >= sp->deadline_us)
      break;
    if (now < sp->retry_at_us) {
      uint64_t until = sp->retry_at_us;
      if (sp->stopping && sp->deadline_us < until)
        until = sp->deadline_us;
      jw__cond_timedwait(&sp->wake, &sp->lock, (uint32_t)((until - now + 999u) / 1000u));
      continue;
    }
    deliver_some(sp, d, &buf, &cap);
  }
  {
    dir_t *d;
    for (d = sp->dirs; d != NULL; d = d->next)
      write_cursor(d);
  }
  jw__mutex_unlock(&sp->lock);
  free(buf);
}

/* --- opening ------------------------------------------------------------------ */

/* The default root: <state dir>/spool/<kind>_<target>, the target's
 * characters other than letters, digits, '.', '-' made '_'. */
static char *default_root(const jw_exporter_t *exp, const char *target, jw_error_t *err) {
  char key[200], *state = jw__state_dir(err), *spool, *root;
  size_t k = 0, i;
  const char *t = target ? target : "";
  if (state == NULL)
    return NULL;
  while (*t == '/')
    t++;
  k = (size_t)snprintf(key, sizeof(key), "%s_", exp->vt->name);
  for (i = 0; t[i] != '\0' && k + 1 < sizeof(key); i++) {
    char c = t[i];
    key[k++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '.' || c == '-'
                   ? c
                   : '_';
  }
  key[k] = '\0';
  spool = join(state, "spool");
  root = spool ? join(spool, key) : NULL;
  free(state);
  free(spool);
  if (root == NULL)
    jw_error_set(err, JW_ENOMEM, 0, "spool", "out of memory");
  return root;
}

static jw_spool_t *spool_new(jw_exporter_t *exp) {
  jw_spool_t *sp = calloc(1, sizeof(*sp));
  if (sp == NULL)
    return NULL;
  sp->exp = exp;
  jw__mutex_init(&sp->lock);
  jw__cond_init(&sp->wake);
  return sp;
}

static void spool_free(jw_spool_t *sp) {
  while (sp->dirs != NULL) {
    dir_t *next = sp->dirs->next;
    dir_free(sp->dirs);
    sp->dirs = next;
  }
  jw__cond_destroy(&sp->wake);
  jw__mutex_destroy(&sp->lock);
  free(sp->root);
  free(sp);
}

/* Creates this run's directory in the root: lock, sink, cursor. */
static int make_own(jw_spool_t *sp, char *name, size_t name_size, jw_error_t *err) {
  unsigned char rnd[3];
  char stamp[40];
  jw__file_t *sink = NULL;
  dir_t *d;
  char *p;
  int rc;
  uint64_t now = jw_now_us();
  jw_format_time_us(now, stamp, sizeof(stamp)); /* 2026-12-02T11:01:50.123456Z */
  if (jw__random_bytes(rnd, sizeof(rnd)) != 0)
    memset(rnd, 0, sizeof(rnd));
  /* 20261202T110150.123456Z: sorts by time, no ':' (Windows). */
  snprintf(name, name_size, "%.4s%.2s%.2sT%.2s%.2s%.2s%.8s-%02x%02x%02x", stamp, stamp + 5,
           stamp + 8, stamp + 11, stamp + 14, stamp + 17, stamp + 19, rnd[0], rnd[1], rnd[2]);
  d = calloc(1, sizeof(*d));
  if (d == NULL || (d->path = join(sp->root, name)) == NULL) {
    free(d);
    return jw_error_set(err, JW_ENOMEM, 0, "spool", "out of memory");
  }
  d->own = 1;
  d->next_number = 1;
  rc = jw__dir_create(d->path, err);
  if (rc == 0 && (p = join(d->path, "lock")) != NULL) {
    rc = jw__file_lock(p, &d->lock, err);
    free(p);
  }
  if (rc == 0 && (p = join(d->path, "sink")) != NULL) {
    rc = jw__file_create(p, &sink, err);
    free(p);
    if (rc == 0) {
      rc = jw__file_append(sink, sp->exp->spec, strlen(sp->exp->spec), err);
      if (rc == 0)
        rc = jw__file_append(sink, "\n", 1, err);
      jw__file_close(sink);
    }
  }
  if (rc == 0 && (p = join(d->path, "cursor")) != NULL) {
    rc = jw__file_open_rw(p, &d->cursor, err);
    free(p);
  }
  if (rc != 0) {
    remove_dir(d);
    dir_free(d);
    return rc;
  }
  sp->own = d;
  /* This run's directory goes last: what ended runs left goes first. */
  {
    dir_t **at = &sp->dirs;
    while (*at != NULL)
      at = &(*at)->next;
    *at = d;
  }
  return 0;
}

static int start(jw_spool_t *sp, jw_error_t *err) {
  if (jw__thread_start(&sp->thread, sender_main, sp) != 0)
    return jw_error_set(err, JW_ESYS, 0, "spool", "cannot start the sender thread of '%s'",
                        sp->exp->spec);
  sp->started = 1;
  return 0;
}

int jw__spool_open(jw_exporter_t *exp, const char *target, jw_error_t *err) {
  jw_spool_t *sp;
  char name[64];
  jw_error_t e;
  int rc;
  if (exp->delivery.spool != NULL && strcmp(exp->delivery.spool, "none") == 0)
    return 0;
  sp = spool_new(exp);
  if (sp == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  memset(&e, 0, sizeof(e));
  if (exp->delivery.spool != NULL) {
    sp->root = malloc(strlen(exp->delivery.spool) + 1);
    if (sp->root != NULL)
      memcpy(sp->root, exp->delivery.spool, strlen(exp->delivery.spool) + 1);
    else
      jw_error_set(&e, JW_ENOMEM, 0, "spool", "out of memory");
  } else {
    sp->root = default_root(exp, target, &e);
  }
  rc = sp->root == NULL ? (e.code ? e.code : JW_ENOMEM) : jw__dir_create(sp->root, &e);
  if (rc == 0)
    rc = make_own(sp, name, sizeof(name), &e);
  if (rc == 0) {
    /* What ended runs left, before this run's own lines. */
    dir_t *own = sp->dirs;
    sp->dirs = NULL;
    adopt_all(sp, name);
    {
      dir_t **at = &sp->dirs;
      while (*at != NULL)
        at = &(*at)->next;
      *at = own;
    }
    if (sp->adopted > 0)
      say(exp, "%llu line(s) an earlier run could not deliver are sent first (spool %s)",
          (unsigned long long)sp->adopted, sp->root);
    rc = start(sp, &e);
  }
  if (rc != 0) {
    if (sp->own != NULL)
      remove_dir(sp->own);
    spool_free(sp);
    return jw_error_set(err, rc, e.sys_error, "--export", "--export %s: spool: %s", exp->spec,
                        e.text);
  }
  exp->spool = sp;
  return 0;
}

int jw__spool_open_flush(jw_exporter_t *exp, const char *root, uint64_t *found, jw_error_t *err) {
  jw_spool_t *sp = spool_new(exp);
  char **names = NULL;
  size_t n = 0, i;
  int rc, is_run = 0;
  *found = 0;
  if (sp == NULL || (sp->root = malloc(strlen(root) + 1)) == NULL) {
    if (sp != NULL)
      spool_free(sp);
    return jw_error_set(err, JW_ENOMEM, 0, "flush", "out of memory");
  }
  memcpy(sp->root, root, strlen(root) + 1);
  rc = jw__dir_list(root, &names, &n, err);
  if (rc != 0) {
    spool_free(sp);
    return rc;
  }
  for (i = 0; i < n; i++)
    is_run |= strcmp(names[i], "sink") == 0;
  jw__dir_list_free(names, n);
  if (is_run) {
    dir_t *d = adopt(sp, root);
    if (d != NULL) {
      sp->dirs = d;
      sp->adopted = d->pending;
    }
  } else {
    adopt_all(sp, NULL);
  }
  *found = sp->adopted;
  rc = start(sp, err);
  if (rc != 0) {
    spool_free(sp);
    return rc;
  }
  exp->spool = sp;
  return 0;
}

/* --- the writer's side ---------------------------------------------------------- */

int jw__spool_append(jw_exporter_t *exp, const char *line, size_t len, int durable,
                     jw_error_t *err) {
  jw_spool_t *sp = exp->spool;
  dir_t *d;
  seg_t *s;
  int rc;
  if (sp == NULL || sp->own == NULL)
    return jw_error_set(err, JW_EINVAL, 0, exp->spec, "no spool");
  d = sp->own;
  jw__mutex_lock(&sp->lock);
  if (sp->undelivered + len > exp->delivery.spool_max) {
    char cap[32];
    snprintf(cap, sizeof(cap), "%llu", (unsigned long long)exp->delivery.spool_max);
    jw__mutex_unlock(&sp->lock);
    return jw_error_set(err, JW_EIO, 0, exp->spec,
                        "the spool is full (%s bytes wait for the collector, spool_max=%s): "
                        "the line is lost",
                        cap, cap);
  }
  s = d->tail;
  jw__mutex_unlock(&sp->lock);
  /* Only this thread appends: the tail and the segment list's end are
   * ours; the sender only reads sizes under the lock. */
  if (s == NULL || s->full || s->size >= SEG_MAX) {
    seg_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
      return jw_error_set(err, JW_ENOMEM, 0, exp->spec, "out of memory");
    n->number = d->next_number++;
    n->path = seg_path(d->path, n->number);
    if (n->path == NULL) {
      free(n);
      return jw_error_set(err, JW_ENOMEM, 0, exp->spec, "out of memory");
    }
    rc = jw__file_create(n->path, &n->f, err);
    if (rc != 0) {
      seg_free(n);
      return jw_error_set(err, rc, err->sys_error, exp->spec, "spool: %s", err->text);
    }
    jw__mutex_lock(&sp->lock);
    if (d->tail == NULL) {
      d->segs = n;
      d->off = 0;
    } else {
      d->tail->next = n;
    }
    d->tail = n;
    jw__mutex_unlock(&sp->lock);
    s = n;
  }
  rc = jw__file_append(s->f, line, len, err);
  if (rc == 0 && durable)
    rc = jw__file_sync(s->f, err);
  if (rc != 0) {
    /* A partial write may have left a torn line after s->size (the sender
     * reads no further): this segment takes no more lines, the next
     * append starts a new one. */
    jw_error_set(err, rc, err->sys_error, exp->spec, "spool %s: %s", s->path, err->text);
    jw__mutex_lock(&sp->lock);
    s->full = 1;
    jw__mutex_unlock(&sp->lock);
    return rc;
  }
  jw__mutex_lock(&sp->lock);
  s->size += len;
  d->pending++;
  sp->appended++;
  sp->undelivered += len;
  jw__cond_broadcast(&sp->wake);
  jw__mutex_unlock(&sp->lock);
  return 0;
}

/* --- figures and the end ---------------------------------------------------------- */

int jw__spool_stats(jw_exporter_t *exp, jw__spool_stats_t *st) {
  jw_spool_t *sp = exp->spool;
  memset(st, 0, sizeof(*st));
  if (sp == NULL)
    return JW_EINVAL;
  jw__mutex_lock(&sp->lock);
  st->appended = sp->appended;
  st->delivered = sp->delivered;
  st->adopted = sp->adopted;
  st->adopted_sent = sp->adopted_sent;
  st->pending = total_pending(sp);
  st->undeliverable = sp->undeliverable;
  st->down = sp->down;
  st->noticing = sp->noticing > 0;
  if (sp->own != NULL)
    jw__strlcpy(st->dir, sp->own->path, sizeof(st->dir));
  jw__mutex_unlock(&sp->lock);
  return 0;
}

int jw__spool_wait(jw_exporter_t *exp, uint32_t timeout_ms) {
  jw_spool_t *sp = exp->spool;
  uint64_t deadline = jw_now_us() + (uint64_t)timeout_ms * 1000u;
  int rc = 0;
  if (sp == NULL)
    return 0;
  jw__mutex_lock(&sp->lock);
  while (total_pending(sp) > 0) {
    uint64_t now = jw_now_us();
    if (now >= deadline) {
      rc = JW_ETIMEDOUT;
      break;
    }
    jw__cond_timedwait(&sp->wake, &sp->lock, (uint32_t)((deadline - now + 999u) / 1000u));
  }
  jw__mutex_unlock(&sp->lock);
  return rc;
}

void jw__spool_stop(jw_exporter_t *exp) {
  jw_spool_t *sp = exp->spool;
  if (sp == NULL)
    return;
  jw__mutex_lock(&sp->lock);
  if (sp->stopping) {
    jw__mutex_unlock(&sp->lock);
    return;
  }
  sp->stopping = 1;
  sp->deadline_us = jw_now_us() + exp->delivery.drain_ms * 1000u;
  /* The drain tries at once and then at least every DRAIN_BACKOFF_MS. */
  if (sp->retry_at_us > jw_now_us() + DRAIN_BACKOFF_MS * 1000u)
    sp->retry_at_us = jw_now_us();
  if (sp->backoff_ms > DRAIN_BACKOFF_MS)
    sp->backoff_ms = DRAIN_BACKOFF_MS;
  jw__cond_broadcast(&sp->wake);
  jw__mutex_unlock(&sp->lock);
}

void jw__spool_close(jw_exporter_t *exp) {
  jw_spool_t *sp = exp->spool;
  uint64_t left_own, left_all;
  if (sp == NULL)
    return;
  jw__spool_stop(exp);
  if (sp->started)
    jw__thread_join(&sp->thread);
  left_all = total_pending(sp);
  left_own = sp->own != NULL ? sp->own->pending : 0;
  if (sp->own != NULL && left_own == 0)
    remove_dir(sp->own);
  if (left_all > 0) {
    char drain[32];
    snprintf(drain, sizeof(drain), "%llums", (unsigned long long)exp->delivery.drain_ms);
    say(exp,
        "%llu line(s) were not delivered within drain=%s (%s); they stay in the spool %s "
        "for the next run to this collector or 'jobwarden flush %s'",
        (unsigned long long)left_all, drain, sp->last_error[0] ? sp->last_error : "no answer",
        sp->root, sp->root);
  }
  exp->spool = NULL;
  spool_free(sp);
}

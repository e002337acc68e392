/* The report model (src/report.h): record lines in, one JSON document out.
 *
 * Lines are grouped by run_id and put in seq order whatever the order of
 * the files on the command line (a rotated log read as PATH PATH.1 PATH.2
 * or any other order). Within a run, processes are joined on
 * process.entity_id (pids are reused): the process_start gives a process's
 * facts, a later process_update what was not ready then (the image hash),
 * the process_exit its end. Every other event (violations, notices, gaps,
 * the job's start and end) stays an event of the run's timeline, tied to
 * its process when it names one. Only native lines of schema 2.x are
 * events; anything else is kept as a problem (file, line, why), never
 * guessed at. An event sent as continuation records (src/parts.h) is put
 * back together first, across the files, and read at the line of its
 * first part; one left incomplete is a problem. An event whose run_id and
 * seq were read before (a sink's resend, a replayed spool, two sinks'
 * files) is counted once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "internal.h"
#include "jobwarden.h"
#include "parts.h"
#include "report.h"

/* ---- output buffer ------------------------------------------------------ */

void jw__rbuf_add(jw_rbuf_t *b, const char *s, size_t len) {
  if (b->failed || len == 0)
    return;
  if (b->len + len + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    char *p;
    while (ncap < b->len + len + 1)
      ncap *= 2;
    p = realloc(b->data, ncap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->data = p;
    b->cap = ncap;
  }
  memcpy(b->data + b->len, s, len);
  b->len += len;
  b->data[b->len] = '\0';
}

void jw__rbuf_puts(jw_rbuf_t *b, const char *s) {
  jw__rbuf_add(b, s, strlen(s));
}

void jw__rbuf_printf(jw_rbuf_t *b, const char *fmt, ...) {
  char small[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  if ((size_t)n < sizeof(small)) {
    jw__rbuf_add(b, small, (size_t)n);
    return;
  }
  {
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
      b->failed = 1;
      return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    jw__rbuf_add(b, big, (size_t)n);
    free(big);
  }
}

void jw__rbuf_free(jw_rbuf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

/* ---- the model ---------------------------------------------------------- */

/* One event line of a run. */
typedef struct {
  json_t *ev;       /* owned; the seal member removed */
  const char *file; /* borrowed from argv */
  unsigned long line;
  long long seq;
  size_t order; /* reading order: ties between equal seqs keep the first */
} rep_line_t;

typedef struct {
  char *run_id; /* owned */
  rep_line_t *lines;
  size_t n, cap;
} rep_run_t;

struct jw_report_s {
  rep_run_t *runs;
  size_t n_runs, cap_runs;
  json_t *run_index; /* run_id -> index into runs (owned) */
  json_t *files;     /* the document's "files" (owned) */
  json_t *problems;  /* the document's "problems" (owned) */
  size_t order;
  jw__parts_t *parts; /* continuation records across the files (owned) */
  const char **paths; /* the files read, by index (borrowed from the caller) */
  size_t n_paths;
};

/* A line's place for the reassembler: file index and line number. */
#define TAG(file, line) (((uint64_t)(file) << 40) | (uint64_t)(line))
#define TAG_FILE(t)     ((size_t)((t) >> 40))
#define TAG_LINE(t)     ((unsigned long)((t) & ((1ull << 40) - 1)))

/* Reading one file. */
typedef struct {
  jw_report_t *r;
  const char *path;
  json_t *entry;   /* borrowed from r->files */
  json_t *run_ids; /* run_id -> true, this file's runs (owned) */
  unsigned long lines, events, not_events, sealed;
  long long first_seq, last_seq;
  char first_problem[300]; /* why the first line that is not an event is not */
  unsigned long first_problem_line;
  int oom;
} rep_file_t;

jw_report_t *jw__report_new(void) {
  jw_report_t *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return NULL;
  r->run_index = json_object();
  r->files = json_array();
  r->problems = json_array();
  r->parts = jw__parts_new();
  if (r->run_index == NULL || r->files == NULL || r->problems == NULL || r->parts == NULL) {
    jw__report_free(r);
    return NULL;
  }
  return r;
}

void jw__report_free(jw_report_t *r) {
  size_t i, j;
  if (r == NULL)
    return;
  for (i = 0; i < r->n_runs; i++) {
    for (j = 0; j < r->runs[i].n; j++)
      json_decref(r->runs[i].lines[j].ev);
    free(r->runs[i].lines);
    free(r->runs[i].run_id);
  }
  free(r->runs);
  json_decref(r->run_index);
  json_decref(r->files);
  json_decref(r->problems);
  jw__parts_free(r->parts);
  free(r->paths);
  free(r);
}

static rep_run_t *run_for(jw_report_t *r, const char *run_id) {
  json_t *ix = json_object_get(r->run_index, run_id);
  rep_run_t *run;
  if (ix != NULL)
    return &r->runs[json_integer_value(ix)];
  if (r->n_runs == r->cap_runs) {
    size_t ncap = r->cap_runs ? r->cap_runs * 2 : 4;
    rep_run_t *p = realloc(r->runs, ncap * sizeof(*p));
    if (p == NULL)
      return NULL;
    r->runs = p;
    r->cap_runs = ncap;
  }
  run = &r->runs[r->n_runs];
  memset(run, 0, sizeof(*run));
  run->run_id = malloc(strlen(run_id) + 1);
  if (run->run_id == NULL)
    return NULL;
  strcpy(run->run_id, run_id);
  if (json_object_set_new(r->run_index, run_id, json_integer((json_int_t)r->n_runs)) != 0) {
    free(run->run_id);
    return NULL;
  }
  r->n_runs++;
  return run;
}

static int run_add(rep_run_t *run, const rep_line_t *l) {
  if (run->n == run->cap) {
    size_t ncap = run->cap ? run->cap * 2 : 64;
    rep_line_t *p = realloc(run->lines, ncap * sizeof(*p));
    if (p == NULL)
      return -1;
    run->lines = p;
    run->cap = ncap;
  }
  run->lines[run->n++] = *l;
  return 0;
}

/* Records why line `lineno` of the file is not an event. */
static void not_event(rep_file_t *f, unsigned long lineno, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void not_event(rep_file_t *f, unsigned long lineno, const char *fmt, ...) {
  char why[300];
  va_list ap;
  json_t *p;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  f->not_events++;
  if (f->first_problem_line == 0) {
    f->first_problem_line = lineno;
    jw__strlcpy(f->first_problem, why, sizeof(f->first_problem));
  }
  p = json_pack("{s:s, s:I, s:s}", "file", f->path, "line", (json_int_t)lineno, "reason", why);
  if (p == NULL || json_array_append_new(f->r->problems, p) != 0)
    f->oom = 1;
}

/* jansson's parse message quotes the offending bytes: kept ASCII-only and
 * printable, since it reaches a terminal. */
static void ascii_only(char *s) {
  for (; *s != 0; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
      *s = '?';
}

static int is_ecs(json_t *ev) {
  return json_is_object(json_object_get(ev, "ecs"));
}

static int is_ocsf(json_t *ev) {
  return json_is_integer(json_object_get(ev, "class_uid")) &&
         json_is_object(json_object_get(ev, "metadata"));
}

static int valid_run_id(const char *s) {
  size_t i;
  if (s == NULL || strlen(s) != 32)
    return 0;
  for (i = 0; i < 32; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return 0;
  return 1;
}

/* v when it is an integer / a string / an array, else NULL (borrowed):
 * the report's own members have the types its schema says, whatever a
 * forged line holds. */
static json_t *int_or(json_t *v) {
  return json_is_integer(v) ? v : NULL;
}

static json_t *string_or(json_t *v) {
  return json_is_string(v) ? v : NULL;
}

static json_t *array_or(json_t *v) {
  return json_is_array(v) ? v : NULL;
}

static int event_line(rep_file_t *f, const char *line, size_t len, unsigned long lineno, int cut);

static int file_line(void *ctx, const char *line, size_t len, unsigned long lineno, int cut) {
  rep_file_t *f = ctx;
  jw__part_result_t res;
  int pr, rc;

  f->lines++;
  if (len == 0) {
    not_event(f, lineno, "an empty line");
    return f->oom;
  }
  if (len < JW_RECORD_LINE_MAX) {
    /* A syslog collector's line (RFC 5424, or rsyslog's traditional
     * format): its header before the message is the collector's; the
     * event (or part record) starts at the first `{"`, as `verify` reads
     * it. */
    size_t rlen = len;
    const char *rec = jw__parts_record_start(line, &rlen);
    line = rec;
    pr = jw__parts_feed(f->r->parts, rec, rlen, TAG(f->r->n_paths - 1, lineno), &res);
    if (pr == JW_ENOMEM) {
      f->oom = 1;
      return 1;
    }
    if (pr == JW_PARTS_HELD || pr == JW_PARTS_REPEAT)
      return 0;
    if (pr == JW_EINVAL) {
      /* A line dropped whole is named where its first part was (perhaps
       * an earlier file), as verify names it. */
      const char *here = f->path;
      if (res.line_dropped)
        f->path = f->r->paths[TAG_FILE(res.first_tag)];
      not_event(f, res.line_dropped ? TAG_LINE(res.first_tag) : lineno, "%s", res.why);
      f->path = here;
      return f->oom;
    }
    if (pr == JW_PARTS_WHOLE) {
      /* The event is read where its first part is (perhaps in an
       * earlier file: a problem with it is said there too). */
      const char *here = f->path;
      f->path = f->r->paths[TAG_FILE(res.first_tag)];
      rc = event_line(f, res.whole, res.whole_len, TAG_LINE(res.first_tag), 0);
      f->path = here;
      free(res.whole);
      return rc;
    }
    len = rlen;
  }
  return event_line(f, line, len, lineno, cut);
}

/* One line that is not a continuation record (or a whole one put
 * together), at f->path:`lineno`. */
static int event_line(rep_file_t *f, const char *line, size_t len, unsigned long lineno, int cut) {
  json_t *ev;
  json_error_t jerr;
  const char *event, *schema, *run_id;
  json_t *seq;
  rep_run_t *run;
  rep_line_t l;

  if (len >= JW_RECORD_LINE_MAX) {
    not_event(f, lineno, "a line longer than %u bytes (cut there): not an event",
              (unsigned)JW_RECORD_LINE_MAX);
    return f->oom;
  }
  ev = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  if (ev == NULL) {
    ascii_only(jerr.text);
    if (cut)
      not_event(f, lineno, "not JSON: %s (the file ends inside this line: a cut write?)",
                jerr.text);
    else
      not_event(f, lineno, "not JSON: %s (column %d)", jerr.text, jerr.column);
    return f->oom;
  }
  if (!json_is_object(ev)) {
    not_event(f, lineno, "a JSON value that is not an object: not an event");
    goto drop;
  }
  if (is_ecs(ev) || is_ocsf(ev)) {
    not_event(f, lineno,
              "a line in the %s format: report reads jobwarden's native lines only "
              "(format=native, the default; give it the native file of the run)",
              is_ecs(ev) ? "ECS (format=ecs)" : "OCSF (format=ocsf)");
    goto drop;
  }
  event = json_string_value(json_object_get(ev, "event"));
  schema = json_string_value(json_object_get(ev, "schema_version"));
  if (event == NULL || schema == NULL) {
    not_event(f, lineno, "a JSON object without \"%s\": not a jobwarden event",
              event == NULL ? "event" : "schema_version");
    goto drop;
  }
  if (strncmp(schema, "2.", 2) != 0) {
    char v[40];
    char *p = v;
    size_t left = sizeof(v);
    jw__put_sanitized(&p, &left, schema, 24);
    not_event(f, lineno, "schema_version \"%s\": report reads events of schema 2.x", v);
    goto drop;
  }
  run_id = json_string_value(json_object_get(ev, "run_id"));
  if (!valid_run_id(run_id)) {
    not_event(f, lineno, "a %s without a valid run_id (32 lowercase hex digits)",
              "jobwarden event");
    goto drop;
  }
  if (strcmp(event, "sandbox.log_continued") == 0) {
    /* Not an event: it says which file and seq this one continues. */
    json_t *c = json_pack("{s:O?, s:O?}", "continues_at_seq",
                          int_or(json_object_get(ev, "continues_at_seq")), "previous_file",
                          string_or(json_object_get(ev, "previous_file")));
    if (c == NULL || json_object_set_new(f->entry, "continues", c) != 0)
      f->oom = 1;
    json_object_set_new(f->run_ids, run_id, json_true());
    goto drop;
  }
  seq = json_object_get(ev, "seq");
  if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
    not_event(f, lineno, "a jobwarden event without a valid seq (an integer >= 1)");
    goto drop;
  }
  if (!json_is_string(json_object_get(ev, "@timestamp"))) {
    not_event(f, lineno, "a jobwarden event without @timestamp");
    goto drop;
  }
  /* The seal is the chain's, not the event's: `verify` judges it. */
  if (json_object_get(ev, "seal") != NULL) {
    json_object_del(ev, "seal");
    f->sealed++;
  }
  run = run_for(f->r, run_id);
  if (run == NULL) {
    f->oom = 1;
    goto drop;
  }
  l.ev = ev;
  l.file = f->path;
  l.line = lineno;
  l.seq = (long long)json_integer_value(seq);
  l.order = f->r->order++;
  if (run_add(run, &l) != 0) {
    f->oom = 1;
    goto drop;
  }
  json_object_set_new(f->run_ids, run_id, json_true());
  if (f->events == 0 || l.seq < f->first_seq)
    f->first_seq = l.seq;
  if (f->events == 0 || l.seq > f->last_seq)
    f->last_seq = l.seq;
  f->events++;
  return 0;
drop:
  json_decref(ev);
  return f->oom;
}

int jw__report_read_file(jw_report_t *r, const char *path, char *errbuf, size_t errsize) {
  rep_file_t f;
  json_t *ids;
  const char *key;
  json_t *v;
  int rc;
  memset(&f, 0, sizeof(f));
  f.r = r;
  f.path = path;
  f.entry = json_pack("{s:s}", "file", path);
  f.run_ids = json_object();
  {
    const char **np = realloc(r->paths, (r->n_paths + 1) * sizeof(*np));
    if (np != NULL) {
      r->paths = np;
      r->paths[r->n_paths++] = path;
    }
    if (np == NULL || f.entry == NULL || f.run_ids == NULL ||
        json_array_append(r->files, f.entry) != 0) {
      snprintf(errbuf, errsize, "%s: out of memory", path);
      rc = -1;
      goto done;
    }
  }
  rc = jw_record_read(path, file_line, &f, errbuf, errsize);
  if (rc < 0)
    goto done;
  if (rc != 0 || f.oom) {
    snprintf(errbuf, errsize, "%s: out of memory at line %lu", path, f.lines);
    rc = -1;
    goto done;
  }
  if (f.lines == 0) {
    snprintf(errbuf, errsize, "%s: an empty file, not a record", path);
    rc = -1;
    goto done;
  }
  if (f.events == 0) {
    snprintf(errbuf, errsize,
             "%s: not a record: none of its %lu line(s) is a jobwarden event "
             "(line %lu: %s)",
             path, f.lines, f.first_problem_line, f.first_problem);
    rc = -1;
    goto done;
  }
  ids = json_array();
  json_object_foreach(f.run_ids, key, v) {
    json_array_append_new(ids, json_string(key));
  }
  json_object_set_new(f.entry, "runs", ids);
  json_object_set_new(f.entry, "lines", json_integer((json_int_t)f.lines));
  json_object_set_new(f.entry, "events", json_integer((json_int_t)f.events));
  json_object_set_new(f.entry, "not_events", json_integer((json_int_t)f.not_events));
  json_object_set_new(f.entry, "sealed", json_integer((json_int_t)f.sealed));
  json_object_set_new(f.entry, "first_seq", json_integer(f.first_seq));
  json_object_set_new(f.entry, "last_seq", json_integer(f.last_seq));
  if (json_object_get(f.entry, "continues") == NULL)
    json_object_set_new(f.entry, "continues", json_null());
  rc = 0;
done:
  json_decref(f.entry);
  json_decref(f.run_ids);
  return rc;
}

/* ---- reconstruction of one run ------------------------------------------ */

static const char *str(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

static int cmp_seq(const void *a, const void *b) {
  const rep_line_t *x = a, *y = b;
  if (x->seq != y->seq)
    return x->seq < y->seq ? -1 : 1;
  return x->order < y->order ? -1 : x->order > y->order;
}

/* qsort has no context argument in C11: the comparators below read the
 * array they order through these (the report is single-threaded). */
static const rep_line_t *g_sort_lines;

/* Events in the order things happened: (@timestamp, seq) (docs/events.md,
 * "Time"); the fixed-width timestamps sort as text. */
static int cmp_time(const void *a, const void *b) {
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  const rep_line_t *x = g_sort_lines + i, *y = g_sort_lines + j;
  int c = strcmp(str(x->ev, "@timestamp"), str(y->ev, "@timestamp"));
  if (c != 0)
    return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A process under reconstruction. */
typedef struct {
  json_t *facts;  /* the merged process object of its events (owned) */
  json_t *events; /* seqs of its events (owned) */
  long long start_seq, exit_seq, first_seq;
  const char *start_ts; /* borrowed from an event */
  const char *exit_ts;  /* the process_exit's @timestamp, borrowed */
  int parent;           /* index into procs, -1 none */
  int escaped;
  unsigned long violations;
  size_t *children, n_children, cap_children;
  int out_index;
} rep_proc_t;

typedef struct {
  rep_proc_t *p;
  size_t n, cap;
  json_t *by_key; /* entity_id (or "pid:N") -> index (owned) */
} rep_procs_t;

static void procs_free(rep_procs_t *ps) {
  size_t i;
  for (i = 0; i < ps->n; i++) {
    json_decref(ps->p[i].facts);
    json_decref(ps->p[i].events);
    free(ps->p[i].children);
  }
  free(ps->p);
  json_decref(ps->by_key);
}

/* The key a process is joined on: its entity_id, else its pid (a process
 * whose creation time was never known; pid reuse may then merge two). */
static void proc_key(json_t *proc, char *key, size_t size) {
  const char *eid = str(proc, "entity_id");
  if (eid != NULL)
    snprintf(key, size, "%s", eid);
  else
    snprintf(key, size, "pid:%lld", (long long)json_integer_value(json_object_get(proc, "pid")));
}

static int proc_for(rep_procs_t *ps, json_t *proc, long long seq) {
  char key[160];
  json_t *ix;
  rep_proc_t *p;
  proc_key(proc, key, sizeof(key));
  ix = json_object_get(ps->by_key, key);
  if (ix != NULL)
    return (int)json_integer_value(ix);
  if (ps->n == ps->cap) {
    size_t ncap = ps->cap ? ps->cap * 2 : 64;
    rep_proc_t *np = realloc(ps->p, ncap * sizeof(*np));
    if (np == NULL)
      return -1;
    ps->p = np;
    ps->cap = ncap;
  }
  p = &ps->p[ps->n];
  memset(p, 0, sizeof(*p));
  p->facts = json_object();
  p->events = json_array();
  p->parent = -1;
  p->first_seq = seq;
  if (p->facts == NULL || p->events == NULL ||
      json_object_set_new(ps->by_key, key, json_integer((json_int_t)ps->n)) != 0) {
    json_decref(p->facts);
    json_decref(p->events);
    return -1;
  }
  return (int)ps->n++;
}

/* Merges what an event says of a process into its facts: a later value
 * replaces an earlier one (an update brings the hash, the exit its code),
 * but never with null over a value. */
static void merge_facts(json_t *facts, json_t *proc) {
  const char *k;
  json_t *v;
  json_object_foreach(proc, k, v) {
    if (json_is_null(v) && json_object_get(facts, k) != NULL)
      continue;
    if (strcmp(k, "ancestry") == 0 || strcmp(k, "ancestry_truncated") == 0)
      continue; /* the tree shows it */
    json_object_set(facts, k, v);
  }
}

static int child_add(rep_proc_t *p, size_t child) {
  if (p->n_children == p->cap_children) {
    size_t ncap = p->cap_children ? p->cap_children * 2 : 4;
    size_t *np = realloc(p->children, ncap * sizeof(*np));
    if (np == NULL)
      return -1;
    p->children = np;
    p->cap_children = ncap;
  }
  p->children[p->n_children++] = child;
  return 0;
}

static const rep_procs_t *g_sort_procs;
static int cmp_proc_start(const void *a, const void *b) {
  const rep_proc_t *x = &g_sort_procs->p[*(const size_t *)a];
  const rep_proc_t *y = &g_sort_procs->p[*(const size_t *)b];
  const char *sx = x->start_ts ? x->start_ts : "", *sy = y->start_ts ? y->start_ts : "";
  int c = strcmp(sx, sy);
  if (c != 0)
    return c;
  return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

/* Depth-first order, children by start time; iterative (a chain of 5,000
 * processes must not exhaust the stack). */
static int tree_order(rep_procs_t *ps, size_t *order, int *depth) {
  size_t *roots = malloc((ps->n + 1) * sizeof(size_t));
  size_t *stack = malloc((ps->n + 1) * sizeof(size_t));
  int *sdepth = malloc((ps->n + 1) * sizeof(int));
  size_t i, nroots = 0, top = 0, out = 0;
  int rc = -1;
  if (roots == NULL || stack == NULL || sdepth == NULL)
    goto done;
  g_sort_procs = ps;
  for (i = 0; i < ps->n; i++) {
    if (ps->p[i].parent < 0)
      roots[nroots++] = i;
    if (ps->p[i].n_children > 1)
      qsort(ps->p[i].children, ps->p[i].n_children, sizeof(size_t), cmp_proc_start);
  }
  qsort(roots, nroots, sizeof(size_t), cmp_proc_start);
  for (i = nroots; i-- > 0;) {
    stack[top] = roots[i];
    sdepth[top++] = 0;
  }
  while (top > 0) {
    size_t cur = stack[--top];
    int d = sdepth[top];
    size_t c;
    ps->p[cur].out_index = (int)out;
    order[out] = cur;
    depth[out++] = d;
    for (c = ps->p[cur].n_children; c-- > 0;) {
      stack[top] = ps->p[cur].children[c];
      sdepth[top++] = d + 1;
    }
  }
  rc = out == ps->n ? 0 : -1;
done:
  free(roots);
  free(stack);
  free(sdepth);
  return rc;
}

static const char *const k_severities[] = {"critical", "high", "medium", "low", "info"};

/* The context every event repeats: shown once per run, not per event. */
static const char *const k_context[] = {
    "schema_version", "event", "seq",  "@timestamp", "emitted", "host",     "agent",  "user",
    "run_id",         "job",   "rule", "rule_id",    "action",  "severity", "source", "message"};

static json_t *event_detail(json_t *ev) {
  json_t *d = json_deep_copy(ev);
  size_t i;
  if (d == NULL)
    return NULL;
  for (i = 0; i < sizeof(k_context) / sizeof(k_context[0]); i++)
    json_object_del(d, k_context[i]);
  return d;
}

/* A new reference to the string member key of ev, or to JSON null. */
static json_t *str_or_null(json_t *ev, const char *key) {
  json_t *v = json_object_get(ev, key);
  return json_is_string(v) ? json_incref(v) : json_null();
}

static const char *category_of(const char *event) {
  if (strcmp(event, "sandbox.violation") == 0)
    return "violation";
  if (strcmp(event, "sandbox.notice") == 0)
    return "notice";
  if (strcmp(event, "sandbox.telemetry_gap") == 0)
    return "gap";
  if (strcmp(event, "sandbox.job_start") == 0 || strcmp(event, "sandbox.job_end") == 0)
    return "job";
  if (strncmp(event, "sandbox.process_", 16) == 0)
    return "process";
  return "other";
}

static void count_in(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  json_object_set_new(obj, key, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static void incr(json_t *obj, const char *key, json_int_t by) {
  json_object_set_new(obj, key, json_integer(json_integer_value(json_object_get(obj, key)) + by));
}

/* Promotes the facts an analyst reads first out of the merged process
 * object; the rest stays in `fields`. */
static json_t *process_entry(rep_procs_t *ps, size_t i, int depth) {
  rep_proc_t *p = &ps->p[i];
  json_t *f = json_deep_copy(p->facts), *e, *par, *children;
  json_t *v;
  size_t c;
  if (f == NULL)
    return NULL;
  e = json_object();
  children = json_array();
  json_object_set_new(e, "index", json_integer(p->out_index));
  json_object_set(e, "entity_id",
                  json_is_string(json_object_get(f, "entity_id")) ? json_object_get(f, "entity_id")
                                                                  : json_null());
  json_object_set(e, "pid", json_object_get(f, "pid") ? json_object_get(f, "pid") : json_null());
  json_object_set_new(e, "parent_index",
                      p->parent >= 0 ? json_integer(ps->p[p->parent].out_index) : json_null());
  par = json_object_get(f, "parent");
  json_object_set(e, "parent", json_is_object(par) ? par : json_null());
  json_object_set_new(e, "depth", json_integer(depth));
  json_object_set(e, "is_root",
                  json_is_boolean(json_object_get(f, "is_root")) ? json_object_get(f, "is_root")
                                                                 : json_false());
  json_object_set_new(e, "escaped", json_boolean(p->escaped));
  json_object_set_new(e, "seen_start", json_boolean(p->start_seq > 0));
  json_object_set_new(e, "seen_exit", json_boolean(p->exit_seq > 0));
  {
    /* Promoted only with the type the event schema gives them; a value of
     * another type (a forged line) stays as it is in `fields`. */
    static const struct {
      const char *name;
      int integer;
    } promote[] = {{"executable", 0},  {"command_line", 0}, {"start", 0},         {"end", 0},
                   {"lifetime_ms", 1}, {"exit_code", 1},    {"exit_code_hex", 0}, {"status", 0},
                   {"exit_class", 0},  {"integrity", 0}};
    size_t k;
    for (k = 0; k < sizeof(promote) / sizeof(promote[0]); k++) {
      v = json_object_get(f, promote[k].name);
      if (promote[k].integer ? json_is_integer(v) : json_is_string(v)) {
        json_object_set(e, promote[k].name, v);
        json_object_del(f, promote[k].name);
      } else {
        json_object_set_new(e, promote[k].name, json_null());
      }
    }
    v = json_object_get(e, "exit_code");
    if (json_is_integer(v) && (json_integer_value(v) < 0 || json_integer_value(v) > 0xFFFFFFFFLL)) {
      json_object_set(f, "exit_code", v);
      json_object_set_new(e, "exit_code", json_null());
    }
  }
  /* An exit code without its NTSTATUS name in the record gets it here. */
  if (json_is_integer(json_object_get(e, "exit_code")) &&
      json_is_null(json_object_get(e, "status"))) {
    const char *name =
        jw_ntstatus_name((uint32_t)json_integer_value(json_object_get(e, "exit_code")));
    if (name != NULL)
      json_object_set_new(e, "status", json_string(name));
  }
  v = json_object_get(json_object_get(f, "hash"), "sha256");
  json_object_set(e, "sha256", json_is_string(v) ? v : json_null());
  v = json_object_get(f, "user");
  if (json_is_object(v)) {
    json_t *n = json_object_get(v, "name"), *sid = json_object_get(v, "sid");
    json_object_set(e, "user", json_is_string(n) ? n : json_is_string(sid) ? sid : json_null());
  } else {
    json_object_set_new(e, "user", json_null());
  }
  json_object_set_new(e, "start_seq", p->start_seq > 0 ? json_integer(p->start_seq) : json_null());
  json_object_set_new(e, "exit_seq", p->exit_seq > 0 ? json_integer(p->exit_seq) : json_null());
  /* When the record says when its start and exit events happened (their
   * @timestamp), also for a process whose own start or end is unknown. */
  json_object_set_new(e, "start_time", p->start_seq > 0 ? json_string(p->start_ts) : json_null());
  json_object_set_new(e, "exit_time", p->exit_ts ? json_string(p->exit_ts) : json_null());
  json_object_set_new(e, "violations", json_integer((json_int_t)p->violations));
  for (c = 0; c < p->n_children; c++)
    json_array_append_new(children, json_integer(ps->p[p->children[c]].out_index));
  json_object_set_new(e, "children", children);
  json_object_set(e, "events", p->events);
  json_object_del(f, "pid");
  json_object_del(f, "entity_id");
  json_object_del(f, "parent");
  json_object_del(f, "is_root");
  json_object_set_new(e, "fields", f);
  return e;
}

/* Seq ranges [from, to] of this run's gap records. */
typedef struct {
  long long from, to;
} seq_range_t;

static json_t *build_run(jw_report_t *r, rep_run_t *run, json_t *problems) {
  json_t *out = json_object(), *events = json_array(), *gaps = json_array(), *files = json_array();
  json_t *sum = json_object(), *by_sev = json_object(), *by_rule = json_object();
  json_t *missing = json_array(), *notes = json_array(), *procs_out = json_array();
  rep_procs_t ps;
  rep_line_t *L;
  size_t i, n, *tix = NULL, *order = NULL;
  int *depth = NULL;
  seq_range_t *explained = NULL;
  size_t n_explained = 0;
  json_t *job_start = NULL, *job_end = NULL, *first = NULL;
  unsigned long dup = 0;
  long long lost_events = 0, port_lost = 0, coalesced = 0;
  json_t *fail = NULL;

  memset(&ps, 0, sizeof(ps));
  ps.by_key = json_object();
  if (out == NULL || events == NULL || gaps == NULL || files == NULL || sum == NULL ||
      by_sev == NULL || by_rule == NULL || missing == NULL || notes == NULL || procs_out == NULL ||
      ps.by_key == NULL)
    goto oom;

  /* Seq order; a seq read twice (the same events in two files) once.
   * Two sinks of one run number their lines alike, except that a sink's
   * gap record takes the seq of the last event it lost (docs/events.md):
   * when one sink has the event and another its gap record, the event is
   * kept. Any other difference is a problem. */
  qsort(run->lines, run->n, sizeof(rep_line_t), cmp_seq);
  for (i = 0, n = 0; i < run->n; i++) {
    if (n > 0 && run->lines[n - 1].seq == run->lines[i].seq) {
      rep_line_t *k = &run->lines[n - 1], *d = &run->lines[i];
      int k_gap = strcmp(str(k->ev, "event"), "sandbox.telemetry_gap") == 0;
      int d_gap = strcmp(str(d->ev, "event"), "sandbox.telemetry_gap") == 0;
      if (k_gap && !d_gap) {
        rep_line_t t = *k;
        *k = *d;
        *d = t;
      } else if (k_gap == d_gap && !json_equal(k->ev, d->ev)) {
        json_t *p =
            json_pack("{s:s, s:I, s:s++}", "file", d->file, "line", (json_int_t)d->line, "reason",
                      "seq already read with a different event (kept: ", k->file, ")");
        if (p != NULL)
          json_array_append_new(problems, p);
      }
      dup++;
      json_decref(d->ev);
      continue;
    }
    run->lines[n++] = run->lines[i];
  }
  run->n = n;
  L = run->lines;

  /* Files of the run, in the order of their first seq here. */
  for (i = 0; i < run->n; i++) {
    size_t k;
    int seen = 0;
    if (i > 0 && L[i].file == L[i - 1].file)
      continue; /* the same argv string: most lines */
    for (k = 0; k < json_array_size(files); k++)
      if (strcmp(json_string_value(json_array_get(files, k)), L[i].file) == 0)
        seen = 1;
    if (!seen)
      json_array_append_new(files, json_string(L[i].file));
  }

  explained = calloc(run->n + 1, sizeof(*explained));
  tix = malloc((run->n + 1) * sizeof(size_t));
  if (explained == NULL || tix == NULL)
    goto oom;

  /* Processes, in seq order so that updates come after starts. */
  for (i = 0; i < run->n; i++) {
    json_t *ev = L[i].ev, *proc = json_object_get(ev, "process");
    const char *event = str(ev, "event"), *rule = str(ev, "rule");
    const char *cat = category_of(event);
    int pi;
    if (!json_is_object(proc) || !json_is_integer(json_object_get(proc, "pid")))
      continue;
    pi = proc_for(&ps, proc, L[i].seq);
    if (pi < 0)
      goto oom;
    json_array_append_new(ps.p[pi].events, json_integer(L[i].seq));
    if (strcmp(cat, "process") == 0 || ps.p[pi].start_seq == 0)
      merge_facts(ps.p[pi].facts, proc);
    if (strcmp(event, "sandbox.process_start") == 0 && ps.p[pi].start_seq == 0) {
      ps.p[pi].start_seq = L[i].seq;
      ps.p[pi].start_ts = str(ev, "@timestamp");
    }
    if (strcmp(event, "sandbox.process_exit") == 0) {
      ps.p[pi].exit_seq = L[i].seq;
      ps.p[pi].exit_ts = str(ev, "@timestamp");
    }
    if (ps.p[pi].start_ts == NULL)
      ps.p[pi].start_ts = str(proc, "start") ? str(proc, "start") : str(ev, "@timestamp");
    if (strcmp(cat, "violation") == 0)
      ps.p[pi].violations++;
    if (rule != NULL && (strcmp(rule, "job_escape") == 0 || strcmp(rule, "escaped_process") == 0))
      ps.p[pi].escaped = 1;
  }
  /* Parents, by the entity id each process names. */
  for (i = 0; i < ps.n; i++) {
    const char *peid = str(json_object_get(ps.p[i].facts, "parent"), "entity_id");
    json_t *ix = peid ? json_object_get(ps.by_key, peid) : NULL;
    if (ix != NULL && (size_t)json_integer_value(ix) != i) {
      ps.p[i].parent = (int)json_integer_value(ix);
      if (child_add(&ps.p[ps.p[i].parent], i) != 0)
        goto oom;
    }
  }
  /* A parent cycle (forged ids) would hide processes from the tree: the
   * first process of a cycle met here becomes a root, which breaks it. */
  for (i = 0; i < ps.n; i++) {
    size_t steps = 0;
    int cur = ps.p[i].parent;
    while (cur >= 0 && (size_t)cur != i && steps++ <= ps.n)
      cur = ps.p[cur].parent;
    if (cur >= 0 && (size_t)cur == i) {
      rep_proc_t *par = &ps.p[ps.p[i].parent];
      size_t c;
      for (c = 0; c < par->n_children; c++)
        if (par->children[c] == i)
          par->children[c] = par->children[--par->n_children];
      ps.p[i].parent = -1;
    }
  }
  order = malloc((ps.n + 1) * sizeof(size_t));
  depth = malloc((ps.n + 1) * sizeof(int));
  if (order == NULL || depth == NULL || tree_order(&ps, order, depth) != 0)
    goto oom;
  for (i = 0; i < ps.n; i++) {
    json_t *e = process_entry(&ps, order[i], depth[i]);
    if (e == NULL || json_array_append_new(procs_out, e) != 0)
      goto oom;
  }

  /* Gaps, counts, the job's start and end. */
  for (i = 0; i < sizeof(k_severities) / sizeof(k_severities[0]); i++)
    json_object_set_new(by_sev, k_severities[i], json_integer(0));
  json_object_set_new(sum, "violations", json_integer(0));
  json_object_set_new(sum, "notices", json_integer(0));
  json_object_set_new(sum, "gap_records", json_integer(0));
  json_object_set_new(sum, "escapes", json_integer(0));
  json_object_set_new(sum, "tampering", json_integer(0));
  for (i = 0; i < run->n; i++) {
    json_t *ev = L[i].ev;
    const char *event = str(ev, "event"), *rule = str(ev, "rule"), *sev = str(ev, "severity");
    const char *cat = category_of(event);
    if (first == NULL)
      first = ev;
    if (strcmp(event, "sandbox.job_start") == 0 && job_start == NULL)
      job_start = ev;
    if (strcmp(event, "sandbox.job_end") == 0)
      job_end = ev;
    if (sev != NULL && json_object_get(by_sev, sev) != NULL)
      incr(by_sev, sev, 1);
    if (strcmp(cat, "violation") == 0 || strcmp(cat, "notice") == 0 || strcmp(cat, "gap") == 0) {
      count_in(by_rule, rule ? rule : "(none)");
      incr(sum,
           strcmp(cat, "violation") == 0 ? "violations"
           : strcmp(cat, "notice") == 0  ? "notices"
                                         : "gap_records",
           1);
    }
    if (rule != NULL && strcmp(rule, "job_escape") == 0)
      incr(sum, "escapes", 1);
    if (rule != NULL && strcmp(rule, "monitor_tampering") == 0)
      incr(sum, "tampering", 1);
    /* Repeats a coalesced summary stands for (docs/events.md, "Coalesced
     * repeats"): hits that were acted on but not written one by one. */
    if (strcmp(cat, "violation") == 0)
      coalesced += json_integer_value(json_object_get(json_object_get(ev, "coalesced"), "count"));
    if (strcmp(cat, "gap") == 0) {
      json_t *g = json_object_get(ev, "gap");
      const char *reason = str(g, "reason");
      json_t *from = json_object_get(g, "from_seq"), *to = json_object_get(g, "to_seq");
      json_t *ge = json_pack(
          "{s:I, s:s?, s:s?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:s?}", "seq",
          (json_int_t)L[i].seq, "time", str(ev, "@timestamp"), "reason", reason, "from_seq",
          int_or(from), "to_seq", int_or(to), "count", int_or(json_object_get(g, "count")), "sink",
          string_or(json_object_get(g, "sink")), "reader", int_or(json_object_get(g, "reader")),
          "lost", array_or(json_object_get(g, "lost")), "message", str(ev, "message"));
      if (ge == NULL || json_array_append_new(gaps, ge) != 0)
        goto oom;
      if (reason != NULL && strcmp(reason, "port_message_lost") == 0)
        port_lost += json_integer_value(json_object_get(g, "count"));
      else
        lost_events += json_integer_value(json_object_get(g, "count"));
      if (json_is_integer(from) && json_is_integer(to)) {
        explained[n_explained].from = json_integer_value(from);
        explained[n_explained++].to = json_integer_value(to);
      }
    }
  }

  /* Seqs missing from the files: a hole no gap record explains. After
   * the last line of an incomplete record nothing is known. */
  {
    long long expect = 1;
    for (i = 0; i < run->n; i++) {
      long long a = expect, to = L[i].seq - 1;
      while (a <= to) {
        long long b = to;
        size_t k;
        int covered = 0;
        for (k = 0; k < n_explained; k++) {
          if (explained[k].from <= a && a <= explained[k].to) {
            covered = 1;
            b = explained[k].to < to ? explained[k].to : to;
            break;
          }
          if (explained[k].from > a && explained[k].from - 1 < b)
            b = explained[k].from - 1;
        }
        if (!covered &&
            json_array_append_new(
                missing, json_pack("{s:I, s:I}", "from", (json_int_t)a, "to", (json_int_t)b)) != 0)
          goto oom;
        a = b + 1;
      }
      expect = L[i].seq + 1;
    }
  }

  /* The timeline: every event, in the order things happened. */
  for (i = 0; i < run->n; i++)
    tix[i] = i;
  g_sort_lines = L;
  qsort(tix, run->n, sizeof(size_t), cmp_time);
  for (i = 0; i < run->n; i++) {
    rep_line_t *l = &L[tix[i]];
    json_t *ev = l->ev, *proc = json_object_get(ev, "process"), *e;
    const char *event = str(ev, "event");
    const char *cat = category_of(event);
    json_t *pidx = json_null();
    if (json_is_object(proc) && json_is_integer(json_object_get(proc, "pid"))) {
      char key[160];
      json_t *ix;
      proc_key(proc, key, sizeof(key));
      ix = json_object_get(ps.by_key, key);
      if (ix != NULL)
        pidx = json_integer(ps.p[json_integer_value(ix)].out_index);
    }
    e = json_pack("{s:I, s:s, s:s, s:s, s:o?, s:o?, s:o?, s:o?, s:o?, s:o?, s:o, s:s, s:I}", "seq",
                  (json_int_t)l->seq, "time", str(ev, "@timestamp"), "event", event, "category",
                  cat, "rule", str_or_null(ev, "rule"), "rule_id", str_or_null(ev, "rule_id"),
                  "severity", str_or_null(ev, "severity"), "action", str_or_null(ev, "action"),
                  "source", str_or_null(ev, "source"), "message", str_or_null(ev, "message"),
                  "process", pidx, "file", l->file, "line", (json_int_t)l->line);
    if (e == NULL)
      goto oom;
    if (strcmp(cat, "process") != 0) {
      json_t *d = event_detail(ev);
      if (d == NULL)
        goto oom;
      json_object_set_new(e, "detail", d);
    }
    if (json_array_append_new(events, e) != 0)
      goto oom;
  }

  /* The run's own facts. */
  {
    json_t *src = job_start ? job_start : first;
    json_t *cmd = json_object_get(json_object_get(job_start, "job_config"), "command");
    json_t *seqs;
    long long last = run->n ? L[run->n - 1].seq : 0;
    json_object_set_new(out, "run_id", json_string(run->run_id));
    json_object_set(out, "job",
                    json_is_object(json_object_get(src, "job")) ? json_object_get(src, "job")
                                                                : json_null());
    json_object_set(out, "host",
                    json_is_object(json_object_get(src, "host")) ? json_object_get(src, "host")
                                                                 : json_null());
    json_object_set(out, "agent",
                    json_is_object(json_object_get(src, "agent")) ? json_object_get(src, "agent")
                                                                  : json_null());
    json_object_set(out, "user",
                    json_is_object(json_object_get(src, "user")) ? json_object_get(src, "user")
                                                                 : json_null());
    {
      size_t k;
      json_t *a;
      int strings = json_is_array(cmd);
      json_array_foreach(cmd, k, a) {
        if (!json_is_string(a))
          strings = 0;
      }
      json_object_set(out, "command", strings ? cmd : json_null());
    }
    json_object_set_new(out, "start", json_string(str(first, "@timestamp")));
    json_object_set_new(out, "end", json_string(str(L[run->n - 1].ev, "@timestamp")));
    json_object_set_new(out, "complete", json_boolean(job_end != NULL));
    json_object_set_new(out, "has_job_start", json_boolean(job_start != NULL));
    json_object_set_new(out, "files", files);
    files = NULL;
    json_object_set_new(out, "rotated",
                        json_boolean(json_array_size(json_object_get(out, "files")) > 1));
    seqs = json_pack("{s:I, s:I, s:I, s:o, s:I}", "first", (json_int_t)(run->n ? L[0].seq : 0),
                     "last", (json_int_t)last, "events", (json_int_t)run->n, "missing", missing,
                     "duplicates", (json_int_t)dup);
    missing = NULL;
    json_object_set_new(out, "seq", seqs);
    if (job_end == NULL)
      json_array_append_new(
          notes, json_string("incomplete: the record has no sandbox.job_end (jobwarden was killed "
                             "or stopped, or the record was cut); what happened after the last "
                             "event is unknown"));
    if (job_start == NULL)
      json_array_append_new(
          notes, json_string("the record does not hold the run's start (no sandbox.job_start: "
                             "earlier files of a rotated log are missing)"));
    if (json_array_size(json_object_get(json_object_get(out, "seq"), "missing")) > 0)
      json_array_append_new(
          notes, json_string("events are missing: seq numbers with no line and no gap record "
                             "(seq.missing): lines were deleted or files are missing"));
    if (json_array_size(json_object_get(out, "files")) > 1)
      json_array_append_new(notes, json_string("rotated: the run's events come from several files, "
                                               "read in seq order"));
    if (dup > 0) {
      char note[300];
      snprintf(note, sizeof(note),
               "%lu line(s) repeat the seq of an event already read (a sink's resend after a "
               "reconnect, a replayed spool, or the same events in several files): each event "
               "is counted once (seq.duplicates)",
               dup);
      json_array_append_new(notes, json_string(note));
    }
  }
  json_object_set_new(sum, "events", json_integer((json_int_t)run->n));
  json_object_set_new(sum, "processes", json_integer((json_int_t)ps.n));
  {
    json_int_t abnormal = 0;
    for (i = 0; i < json_array_size(procs_out); i++) {
      const char *cls = str(json_array_get(procs_out, i), "exit_class");
      if (cls != NULL && strcmp(cls, "abnormal") == 0)
        abnormal++;
    }
    json_object_set_new(sum, "abnormal_exits", json_integer(abnormal));
  }
  json_object_set_new(sum, "lost_events", json_integer(lost_events));
  json_object_set_new(sum, "port_messages_lost", json_integer(port_lost));
  json_object_set_new(sum, "coalesced_repeats", json_integer(coalesced));
  json_object_set_new(sum, "by_severity", by_sev);
  by_sev = NULL;
  json_object_set_new(sum, "by_rule", by_rule);
  by_rule = NULL;
  {
    json_t *js = json_object_get(job_end, "summary");
    json_object_set(sum, "job_end", json_is_object(js) ? js : json_null());
  }
  json_object_set_new(out, "summary", sum);
  sum = NULL;
  json_object_set_new(out, "notes", notes);
  notes = NULL;
  json_object_set_new(out, "processes", procs_out);
  procs_out = NULL;
  json_object_set_new(out, "events", events);
  events = NULL;
  json_object_set_new(out, "gaps", gaps);
  gaps = NULL;
  (void)r;
  goto done;
oom:
  fail = out;
  out = NULL;
done:
  json_decref(fail);
  json_decref(events);
  json_decref(gaps);
  json_decref(files);
  json_decref(sum);
  json_decref(by_sev);
  json_decref(by_rule);
  json_decref(missing);
  json_decref(notes);
  json_decref(procs_out);
  procs_out = NULL;
  procs_free(&ps);
  free(explained);
  free(tix);
  free(order);
  free(depth);
  return out;
}

static int cmp_run_start(const void *a, const void *b) {
  const rep_run_t *x = a, *y = b;
  const char *tx = x->n ? str(x->lines[0].ev, "@timestamp") : "";
  const char *ty = y->n ? str(y->lines[0].ev, "@timestamp") : "";
  int c = strcmp(tx, ty);
  return c != 0 ? c : strcmp(x->run_id, y->run_id);
}

/* An event some of whose continuation records were read but not all:
 * a problem at its first part (nothing is lost with a partial repeat of
 * a line already whole). */
typedef struct {
  jw_report_t *r;
  size_t n;
} rep_incomplete_t;

static void incomplete_problem(void *ctx, const jw__parts_pending_t *pp) {
  rep_incomplete_t *in = ctx;
  char why[300], name[JW_PARTS_NAME_MAX];
  json_t *p;
  if (pp->repeat)
    return;
  jw__parts_name(name, sizeof(name), pp->run_id, pp->seq, pp->digest, pp->limit);
  snprintf(why, sizeof(why),
           "an incomplete event: %s: %lu of %lu continuation records (part %lu "
           "missing); the event is not in the report",
           name, (unsigned long)pp->seen, (unsigned long)pp->of, (unsigned long)pp->missing);
  p = json_pack("{s:s, s:I, s:s}", "file", in->r->paths[TAG_FILE(pp->first_tag)], "line",
                (json_int_t)TAG_LINE(pp->first_tag), "reason", why);
  if (p != NULL)
    json_array_append_new(in->r->problems, p);
  in->n++;
}

json_t *jw__report_finish(jw_report_t *r, json_t *seal) {
  json_t *doc = NULL, *runs = json_array(), *notes = json_array();
  size_t i;
  rep_incomplete_t inc;
  if (runs == NULL || notes == NULL)
    goto fail;
  inc.r = r;
  inc.n = 0;
  jw__parts_pending(r->parts, incomplete_problem, &inc);
  /* Runs in the order they began (each run's first line in seq order). */
  for (i = 0; i < r->n_runs; i++)
    qsort(r->runs[i].lines, r->runs[i].n, sizeof(rep_line_t), cmp_seq);
  qsort(r->runs, r->n_runs, sizeof(rep_run_t), cmp_run_start);
  for (i = 0; i < r->n_runs; i++) {
    json_t *run = build_run(r, &r->runs[i], r->problems);
    if (run == NULL || json_array_append_new(runs, run) != 0)
      goto fail;
  }
  if (r->n_runs > 1) {
    char note[160];
    snprintf(note, sizeof(note),
             "%lu runs in these files (distinct run_id): each is reported on its own",
             (unsigned long)r->n_runs);
    json_array_append_new(notes, json_string(note));
  }
  if (inc.n > 0) {
    char note[200];
    snprintf(note, sizeof(note),
             "%lu event(s) sent as continuation records are incomplete: parts are missing "
             "(problems), the events are not in the report",
             (unsigned long)inc.n);
    json_array_append_new(notes, json_string(note));
  }
  if (json_array_size(r->problems) > 0)
    json_array_append_new(notes, json_string("some lines are not jobwarden events and were left "
                                             "out (problems: file, line, why)"));
  doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:O, s:O, s:o, s:o, s:O?}", "report_version",
                  JW_REPORT_VERSION, "generator", "name", "jobwarden", "version", JW_VERSION,
                  "event_schema", JW_SCHEMA_VERSION, "files", r->files, "problems", r->problems,
                  "notes", notes, "runs", runs, "seal", seal);
  if (doc != NULL && json_object_get(doc, "seal") == NULL)
    json_object_set_new(doc, "seal", json_null());
  return doc;
fail:
  json_decref(runs);
  json_decref(notes);
  return NULL;
}

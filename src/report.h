/* `jobwarden report` (docs/forensics.md, "Report"): internal interfaces.
 *
 * The report is built in two steps. src/report_model.c reads the records'
 * lines into one JSON document, the report model (its schema is
 * docs/jobwarden-report.schema.json): the files read, the lines that are
 * not events, and per run the process tree, the events in time order, the
 * gaps and losses and the summary. Each format renders that document and
 * nothing else: src/report_json.c writes it as it is, src/report_text.c
 * for a terminal, src/report_html.c as one self-contained page whose own
 * script renders the same document. Everything here is single-threaded. */
#ifndef JW_REPORT_H
#define JW_REPORT_H

#include <stddef.h>

#include <jansson.h>

/* The report document's own version (report_version), independent of the
 * event schema: a consumer checks its major number. */
#define JW_REPORT_VERSION "1.0.0"

/* A growing output buffer. A failed allocation sets `failed` and later
 * appends do nothing, so that a renderer checks once at its end. */
typedef struct {
  char *data; /* owned, NUL-terminated when len > 0 */
  size_t len, cap;
  int failed;
} jw_rbuf_t;

void jw__rbuf_add(jw_rbuf_t *b, const char *s, size_t len);
void jw__rbuf_puts(jw_rbuf_t *b, const char *s);
void jw__rbuf_printf(jw_rbuf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void jw__rbuf_free(jw_rbuf_t *b);

/* The model under construction: create, feed each file's lines, finish. */
typedef struct jw_report_s jw_report_t;

jw_report_t *jw__report_new(void);
void jw__report_free(jw_report_t *r);
/* Reads one record file (path borrowed for the report's lifetime) into r.
 * Returns 0; -1 when the file cannot be read as a record: it cannot be
 * opened or read, it is empty, or none of its lines is a jobwarden event
 * (errbuf says which file and why). Lines that are not events in a file
 * that has events are kept in the model's `problems`, not an error. */
int jw__report_read_file(jw_report_t *r, const char *path, char *errbuf, size_t errsize);
/* The finished document (a new reference), with `seal` (borrowed: a
 * jw_verify_files document, or NULL when no key was given) copied in.
 * NULL when memory runs out. */
json_t *jw__report_finish(jw_report_t *r, json_t *seal);

/* Renderers: each appends the whole output for `doc` to out. */
void jw__report_render_json(json_t *doc, jw_rbuf_t *out);
void jw__report_render_text(json_t *doc, jw_rbuf_t *out);
/* Returns 0, or -1 when the page's hashes cannot be computed. */
int jw__report_render_html(json_t *doc, jw_rbuf_t *out);

/* Appends s (len bytes) as JSON text safe inside an HTML <script> element:
 * '<', '>', '&', U+2028 and U+2029 as \uXXXX escapes (they can occur only
 * inside JSON strings, so the value is unchanged). */
void jw__report_json_for_html(jw_rbuf_t *out, const char *s, size_t len);

#endif

/* Output formats (format=native|ecs|ocsf, docs/integrations.md): pure
 * functions from one native event object (schema 2.0.0, docs/events.md)
 * to the same event in the Elastic Common Schema and in an OCSF class.
 * The emitter renders the native line once and derives each format a sink
 * asks for from it with these functions, once per event; jw-format
 * (tests/tools/jw_format.c) runs the same functions over a .jsonl file, so
 * a test can compare what a sink wrote with the conversion of the native
 * line. Portable C11 + jansson, no state: any thread. */
#ifndef JW_FORMAT_H
#define JW_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jobwarden.h"

/* The ECS version the ecs format follows (the @elastic/ecs package the
 * tests validate against: scripts/ecs-defs.sh pins the same version). */
#define JW_ECS_VERSION "9.3.0"
/* The OCSF schema version the ocsf format targets (metadata.version);
 * the class definitions the tests check against are transcribed in
 * tests/ocsf/. */
#define JW_OCSF_VERSION "1.9.0"

/* "native", "ecs", "ocsf" -> *out. Returns 0, or JW_EINVAL for any other
 * text (case-sensitive, like every SPEC option). */
int jw_format_parse(const char *name, jw_format_t *out);
/* "native", "ecs" or "ocsf". */
const char *jw_format_name(jw_format_t f);

/* The event `native` (a jobwarden event object, borrowed, not changed) as
 * a new ECS object (new reference). NULL when `native` is not an object
 * with a string "event", or memory ran out. A sandbox.log_continued line
 * is not converted here: see jw_format_continuation. */
json_t *jw_format_ecs(const json_t *native);
/* The same as an OCSF event object (new reference) of the class that fits
 * the event kind (docs/integrations.md, "OCSF classes"). */
json_t *jw_format_ocsf(const json_t *native);
/* jw_format_ecs or jw_format_ocsf by f; JW_FORMAT_NATIVE gives a new
 * reference to a deep copy. */
json_t *jw_format_convert(jw_format_t f, const json_t *native);

/* Renders a native line (len bytes, a trailing '\n' allowed) in format f
 * as one compact line with '\n', new malloc'd buffer in *out. Returns 0,
 * JW_EINVAL when the line is not a jobwarden event object, JW_ENOMEM. */
int jw_format_line(jw_format_t f, const char *line, size_t len, char **out, size_t *out_len);

/* What a sink needs to know of a line in any format, read where that
 * format keeps it (the syslog header, the rotation's continuation line).
 * Strings are borrowed from the object the call was given; NULL when the
 * line does not carry them. */
typedef struct jw_format_meta_s {
  const char *timestamp; /* RFC 3339: when it happened */
  const char *emitted;   /* RFC 3339: when jobwarden wrote it; NULL in ocsf (numeric) */
  int64_t emitted_ms;    /* ocsf: metadata.logged_time; -1 when absent */
  const char *event;     /* "sandbox.violation" */
  const char *severity;  /* "info" ... "critical" */
  const char *host;      /* host name */
  const char *run_id;
  int has_seq;
  int64_t seq;
  char timestamp_buf[40]; /* ocsf: `timestamp` rendered from `time` */
} jw_format_meta_t;
/* Fills *m from obj, a line of format f. Never fails: what is not there
 * stays NULL / has_seq 0. */
void jw_format_meta(jw_format_t f, const json_t *obj, jw_format_meta_t *m);

/* The sandbox.log_continued line (format f, '\n' included, new malloc'd
 * buffer) that starts the file after a rotation, built from the first line
 * the new file gets (`first`, len bytes, in format f) and the rotated
 * file's name. native: {schema_version, event, run_id, continues_at_seq,
 * previous_file}, unchanged since 1.1; ecs and ocsf add the time of that
 * first line's writing (the rotation happened just before it). NULL when
 * `first` does not carry a run_id and a seq, or memory ran out. */
char *jw_format_continuation(jw_format_t f, const char *previous_file, const char *first,
                             size_t len, size_t *out_len);

#endif

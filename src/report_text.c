/* `jobwarden report --format text`: the report model for a terminal.
 *
 * Every string that came from the record goes through jw__put_sanitized
 * (src/tail_format.c), as `tail` does: control characters, C1 controls
 * and bidirectional overrides become '?', so that no hostile command line
 * can move the cursor, recolour or reorder what the analyst reads. A NUL
 * inside a string (kept as \u0000 by jobwarden) is shown as '?' too, with
 * what follows it. Columns are padded by characters, not bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "report.h"

/* Longest piece of a record string shown on one line. */
#define FIELD_MAX 2000

/* Appends the JSON string v (any other value: `dflt`) made safe for a
 * terminal, then spaces up to `width` characters. */
static void put_pad(jw_rbuf_t *out, json_t *v, const char *dflt, size_t max, size_t width) {
  const char *s = json_is_string(v) ? json_string_value(v) : dflt;
  size_t len = json_is_string(v) ? json_string_length(v) : strlen(dflt), i, chars = 0;
  char *buf, *p;
  size_t left;
  buf = malloc(len + 8);
  if (buf == NULL) {
    out->failed = 1;
    return;
  }
  p = buf;
  left = len + 8;
  jw__put_sanitized_n(&p, &left, s, len, max); /* a U+0000 inside hides nothing */
  jw__rbuf_add(out, buf, (size_t)(p - buf));
  for (i = 0; i < (size_t)(p - buf); i++)
    if (((unsigned char)buf[i] & 0xC0) != 0x80)
      chars++;
  for (; chars < width; chars++)
    jw__rbuf_add(out, " ", 1);
  free(buf);
}

static void put_str(jw_rbuf_t *out, json_t *v, const char *dflt) {
  put_pad(out, v, dflt, FIELD_MAX, 0);
}

static json_t *get(json_t *o, const char *k) {
  return json_object_get(o, k);
}

static long long num(json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}

static void put_files(jw_rbuf_t *out, json_t *doc) {
  json_t *f, *p;
  size_t i;
  jw__rbuf_printf(out, "Files (%lu):\n", (unsigned long)json_array_size(get(doc, "files")));
  json_array_foreach(get(doc, "files"), i, f) {
    jw__rbuf_puts(out, "  ");
    put_str(out, get(f, "file"), "?");
    jw__rbuf_printf(out, ": %lld line(s), %lld event(s), seq %lld-%lld", num(f, "lines"),
                    num(f, "events"), num(f, "first_seq"), num(f, "last_seq"));
    if (num(f, "not_events") > 0)
      jw__rbuf_printf(out, ", %lld line(s) not events", num(f, "not_events"));
    if (num(f, "sealed") > 0)
      jw__rbuf_printf(out, ", %lld sealed", num(f, "sealed"));
    if (json_is_object(get(f, "continues"))) {
      jw__rbuf_printf(out, ", continues at seq %lld from ",
                      num(get(f, "continues"), "continues_at_seq"));
      put_str(out, get(get(f, "continues"), "previous_file"), "?");
    }
    jw__rbuf_puts(out, "\n");
  }
  if (json_array_size(get(doc, "problems")) > 0) {
    jw__rbuf_printf(out, "Lines that are not events (%lu), left out:\n",
                    (unsigned long)json_array_size(get(doc, "problems")));
    json_array_foreach(get(doc, "problems"), i, p) {
      jw__rbuf_puts(out, "  ");
      put_str(out, get(p, "file"), "?");
      jw__rbuf_printf(out, ":%lld: ", num(p, "line"));
      put_str(out, get(p, "reason"), "?");
      jw__rbuf_puts(out, "\n");
    }
  }
}

static void put_notes(jw_rbuf_t *out, json_t *notes, const char *indent) {
  json_t *n;
  size_t i;
  json_array_foreach(notes, i, n) {
    jw__rbuf_printf(out, "%sNote: ", indent);
    put_str(out, n, "");
    jw__rbuf_puts(out, "\n");
  }
}

/* The per-stream seal verdict (jw_verify_files's document, src/seal.h). */
static void put_seal(jw_rbuf_t *out, json_t *seal) {
  json_t *s, *d, *f;
  size_t i, j;
  if (!json_is_object(seal))
    return;
  jw__rbuf_puts(out, "\nSeal verdict: ");
  put_str(out, get(seal, "verdict"), "?");
  jw__rbuf_puts(out, "\n");
  json_array_foreach(get(seal, "streams"), i, s) {
    jw__rbuf_puts(out, "  run ");
    put_str(out, get(s, "run_id"), "?");
    jw__rbuf_puts(out, " stream ");
    put_str(out, get(s, "stream"), "?");
    jw__rbuf_puts(out, ": ");
    put_str(out, get(s, "verdict"), "?");
    jw__rbuf_printf(out, ", %lld line(s), index %lld-%lld, %s\n", num(s, "lines"),
                    num(s, "first_index"), num(s, "last_index"),
                    json_is_true(get(s, "complete")) ? "complete (closed by job_end)"
                                                     : "NOT complete (no closing job_end)");
    jw__rbuf_puts(out, "    files:");
    json_array_foreach(get(s, "files"), j, f) {
      jw__rbuf_puts(out, " ");
      put_str(out, f, "?");
    }
    jw__rbuf_puts(out, "\n");
    json_array_foreach(get(s, "damage"), j, d) {
      /* A missing line is placed by the line before / after it; a field
       * the verifier did not give (a line without seq) is not shown. */
      json_t *w = get(d, "before") ? get(d, "before") : get(d, "after") ? get(d, "after") : d;
      jw__rbuf_puts(out, "    DAMAGE ");
      put_str(out, get(d, "kind"), "?");
      jw__rbuf_puts(out, get(d, "before") ? " before " : get(d, "after") ? " after " : " at ");
      put_str(out, get(w, "file"), "?");
      if (json_is_integer(get(w, "line")))
        jw__rbuf_printf(out, ":%lld", num(w, "line"));
      jw__rbuf_puts(out, " (");
      if (json_is_integer(get(w, "seq")))
        jw__rbuf_printf(out, "seq %lld, ", num(w, "seq"));
      jw__rbuf_printf(out, "index %lld): ", num(d, "index"));
      put_str(out, get(d, "detail"), "");
      jw__rbuf_puts(out, "\n");
    }
    if (num(s, "damage_not_listed") > 0)
      jw__rbuf_printf(out, "    ... and %lld more damage(s) not listed\n",
                      num(s, "damage_not_listed"));
    json_array_foreach(get(s, "duplicates"), j, d) {
      jw__rbuf_puts(out, "    duplicate at ");
      put_str(out, get(d, "file"), "?");
      jw__rbuf_printf(out, ":%lld (index %lld): the same line as ", num(d, "line"),
                      num(d, "index"));
      put_str(out, get(get(d, "first"), "file"), "?");
      jw__rbuf_printf(out, ":%lld (not damage)\n", num(get(d, "first"), "line"));
    }
  }
  json_array_foreach(get(seal, "incomplete"), i, d) {
    jw__rbuf_puts(out, "  INCOMPLETE ");
    put_str(out, get(d, "file"), "?");
    jw__rbuf_printf(out, ":%lld: run ", num(d, "line"));
    put_str(out, get(d, "run_id"), "?");
    jw__rbuf_printf(out, " seq %lld: %lld of %lld continuation records (part %lld missing)\n",
                    num(d, "seq"), num(d, "parts_read"), num(d, "parts"), num(d, "first_missing"));
  }
  json_array_foreach(get(seal, "files"), i, f) {
    if (num(f, "unsealed") <= 0)
      continue;
    jw__rbuf_puts(out, "  ");
    put_str(out, get(f, "file"), "?");
    jw__rbuf_printf(out, ": %lld of %lld line(s) carry no seal\n", num(f, "unsealed"),
                    num(f, "lines"));
  }
}

static void put_counts(jw_rbuf_t *out, json_t *obj) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    /* A rule name is the record's: shown like any other string of it. */
    jw__rbuf_puts(out, "  ");
    put_str(out, NULL, k);
    jw__rbuf_printf(out, " %lld", (long long)json_integer_value(v));
  }
}

static void put_exit(jw_rbuf_t *out, json_t *p, size_t width) {
  jw_rbuf_t t;
  memset(&t, 0, sizeof(t));
  if (json_is_integer(get(p, "exit_code"))) {
    put_str(&t, get(p, "exit_code_hex"), "?");
    if (json_is_string(get(p, "status"))) {
      jw__rbuf_puts(&t, " ");
      put_str(&t, get(p, "status"), "");
    }
    if (json_is_string(get(p, "exit_class"))) {
      jw__rbuf_puts(&t, " (");
      put_str(&t, get(p, "exit_class"), "");
      jw__rbuf_puts(&t, ")");
    }
  } else if (json_is_true(get(p, "seen_exit"))) {
    jw__rbuf_puts(&t, "exited, code unknown");
  } else {
    jw__rbuf_puts(&t, "no exit in record");
  }
  if (t.failed)
    out->failed = 1;
  {
    json_t *s = json_stringn(t.data ? t.data : "", t.len);
    put_pad(out, s, "", 200, width);
    json_decref(s);
  }
  jw__rbuf_free(&t);
}

static void put_processes(jw_rbuf_t *out, json_t *run) {
  json_t *p;
  size_t i;
  jw__rbuf_printf(out, "\nProcess tree (%lu):\n",
                  (unsigned long)json_array_size(get(run, "processes")));
  jw__rbuf_puts(out, "  PID       START                        LIFETIME     EXIT        "
                     "                                         IMAGE\n");
  json_array_foreach(get(run, "processes"), i, p) {
    long long d = num(p, "depth"), k;
    char pid[32], life[32];
    snprintf(pid, sizeof(pid), "%lld", num(p, "pid"));
    if (json_is_integer(get(p, "lifetime_ms")))
      snprintf(life, sizeof(life), "%lld ms", num(p, "lifetime_ms"));
    else
      snprintf(life, sizeof(life), "-");
    jw__rbuf_printf(out, "  %-9s ", pid);
    put_pad(out, json_is_string(get(p, "start")) ? get(p, "start") : get(p, "start_time"), "-", 40,
            28);
    jw__rbuf_printf(out, " %-12s ", life);
    put_exit(out, p, 52);
    jw__rbuf_puts(out, " ");
    for (k = 0; k < d && k < 24; k++)
      jw__rbuf_puts(out, "  ");
    if (d > 24)
      jw__rbuf_printf(out, "[depth %lld] ", d);
    if (d > 0)
      jw__rbuf_puts(out, "`- ");
    put_str(out, get(p, "executable"), "(image unknown)");
    if (json_is_true(get(p, "is_root")))
      jw__rbuf_puts(out, "  [root]");
    if (json_is_true(get(p, "escaped")))
      jw__rbuf_puts(out, "  [ESCAPED the job]");
    if (num(p, "violations") > 0)
      jw__rbuf_printf(out, "  [%lld violation(s)]", num(p, "violations"));
    jw__rbuf_puts(out, "\n");
    jw__rbuf_puts(out, "            command line: ");
    {
      /* Not read: the record says why (process.unavailable). */
      json_t *why = get(get(get(p, "fields"), "unavailable"), "command_line");
      if (json_is_null(get(p, "command_line")) && json_is_string(why)) {
        jw__rbuf_puts(out, "(unavailable: ");
        put_str(out, why, "");
        jw__rbuf_puts(out, ")");
      } else {
        put_str(out, get(p, "command_line"), "(not recorded)");
      }
    }
    jw__rbuf_puts(out, "\n            sha256: ");
    put_str(out, get(p, "sha256"), "(not recorded)");
    jw__rbuf_puts(out, "  user: ");
    put_str(out, get(p, "user"), "-");
    jw__rbuf_puts(out, "  integrity: ");
    put_str(out, get(p, "integrity"), "-");
    jw__rbuf_puts(out, "  entity: ");
    put_str(out, get(p, "entity_id"), "-");
    jw__rbuf_puts(out, "\n");
  }
}

static void put_timeline(jw_rbuf_t *out, json_t *run) {
  json_t *procs = get(run, "processes"), *e;
  size_t i;
  jw__rbuf_printf(out, "\nTimeline (%lu events, by @timestamp then seq):\n",
                  (unsigned long)json_array_size(get(run, "events")));
  jw__rbuf_puts(out, "  TIME                         SEQ      SEVERITY  EVENT            "
                     "RULE                     PID       MESSAGE\n");
  json_array_foreach(get(run, "events"), i, e) {
    const char *ev = json_string_value(get(e, "event"));
    json_t *p = json_array_get(procs, (size_t)json_integer_value(get(e, "process")));
    char seq[32], pid[32];
    const char *cat = json_string_value(get(e, "category"));
    int alert = cat && (strcmp(cat, "violation") == 0 || strcmp(cat, "notice") == 0 ||
                        strcmp(cat, "gap") == 0);
    snprintf(seq, sizeof(seq), "%lld", num(e, "seq"));
    if (json_is_integer(get(e, "process")) && p != NULL)
      snprintf(pid, sizeof(pid), "%lld", num(p, "pid"));
    else
      snprintf(pid, sizeof(pid), "-");
    jw__rbuf_puts(out, alert ? "! " : "  ");
    put_pad(out, get(e, "time"), "-", 40, 28);
    jw__rbuf_printf(out, " %-8s ", seq);
    put_pad(out, get(e, "severity"), "-", 16, 9);
    jw__rbuf_printf(out, " %-16s ", ev && strncmp(ev, "sandbox.", 8) == 0 ? ev + 8 : "?");
    put_pad(out, get(e, "rule"), "-", 40, 24);
    jw__rbuf_printf(out, " %-9s ", pid);
    put_str(out, get(e, "message"), "");
    jw__rbuf_puts(out, "\n");
  }
}

static void put_gaps(jw_rbuf_t *out, json_t *run) {
  json_t *g, *m;
  size_t i;
  jw__rbuf_printf(out, "\nGaps and losses (%lu):\n",
                  (unsigned long)json_array_size(get(run, "gaps")));
  if (json_array_size(get(run, "gaps")) == 0)
    jw__rbuf_puts(out, "  none recorded\n");
  json_array_foreach(get(run, "gaps"), i, g) {
    jw__rbuf_printf(out, "  seq %lld  ", num(g, "seq"));
    put_str(out, get(g, "time"), "-");
    jw__rbuf_puts(out, "  ");
    put_str(out, get(g, "reason"), "?");
    if (json_is_integer(get(g, "from_seq")))
      jw__rbuf_printf(out, "  seq %lld-%lld", num(g, "from_seq"), num(g, "to_seq"));
    jw__rbuf_printf(out, "  count %lld", num(g, "count"));
    if (json_is_string(get(g, "sink"))) {
      jw__rbuf_puts(out, "  sink ");
      put_str(out, get(g, "sink"), "");
    }
    jw__rbuf_puts(out, "\n    ");
    put_str(out, get(g, "message"), "");
    jw__rbuf_puts(out, "\n");
  }
  json_array_foreach(get(get(run, "seq"), "missing"), i, m) {
    jw__rbuf_printf(out, "  MISSING seq %lld-%lld: no line and no gap record\n", num(m, "from"),
                    num(m, "to"));
  }
}

static void put_run(jw_rbuf_t *out, json_t *run, size_t i, size_t n) {
  json_t *sum = get(run, "summary"), *seq = get(run, "seq"), *f, *c;
  size_t j;
  jw__rbuf_puts(out, "\n== Run ");
  put_str(out, get(run, "run_id"), "?");
  if (n > 1)
    jw__rbuf_printf(out, " (%lu of %lu)", (unsigned long)i + 1, (unsigned long)n);
  jw__rbuf_puts(out, " ==\n  Job:      ");
  put_str(out, get(get(run, "job"), "name"), "?");
  jw__rbuf_puts(out, " (tier ");
  put_str(out, get(get(run, "job"), "tier"), "?");
  jw__rbuf_puts(out, ")\n  Host:     ");
  put_str(out, get(get(run, "host"), "name"), "?");
  jw__rbuf_puts(out, "  agent ");
  put_str(out, get(get(run, "agent"), "version"), "?");
  jw__rbuf_puts(out, "\n  Command: ");
  if (json_array_size(get(run, "command")) == 0)
    jw__rbuf_puts(out, " (not in the record)");
  json_array_foreach(get(run, "command"), j, c) {
    jw__rbuf_puts(out, " ");
    put_str(out, c, "");
  }
  jw__rbuf_puts(out, "\n  Time:     ");
  put_str(out, get(run, "start"), "?");
  jw__rbuf_puts(out, " .. ");
  put_str(out, get(run, "end"), "?");
  jw__rbuf_printf(out, "\n  Record:   %s\n",
                  json_is_true(get(run, "complete"))
                      ? "complete (ends with sandbox.job_end)"
                      : "INCOMPLETE: no sandbox.job_end (jobwarden was killed, or the record "
                        "was cut)");
  jw__rbuf_printf(out, "  Files:   %s", json_is_true(get(run, "rotated")) ? " rotated:" : "");
  json_array_foreach(get(run, "files"), j, f) {
    jw__rbuf_puts(out, " ");
    put_str(out, f, "?");
  }
  jw__rbuf_printf(out, "%s\n", json_is_true(get(run, "rotated")) ? " (in seq order)" : "");
  jw__rbuf_printf(out, "  Seq:      %lld-%lld, %lld event(s)", num(seq, "first"), num(seq, "last"),
                  num(seq, "events"));
  if (num(seq, "duplicates") > 0)
    jw__rbuf_printf(out, ", %lld line(s) repeated a seq (read once)", num(seq, "duplicates"));
  jw__rbuf_printf(out, ", missing: %s\n",
                  json_array_size(get(seq, "missing")) ? "see Gaps and losses" : "none");
  put_notes(out, get(run, "notes"), "  ");

  jw__rbuf_puts(out, "\nSummary:\n");
  jw__rbuf_printf(out,
                  "  events %lld  processes %lld  violations %lld  notices %lld  gap records %lld"
                  "\n  escapes %lld  tampering %lld  abnormal exits %lld  lost events %lld  "
                  "port messages lost %lld\n  coalesced repeats %lld (violations acted on, "
                  "counted in a summary line instead of one line each)\n",
                  num(sum, "events"), num(sum, "processes"), num(sum, "violations"),
                  num(sum, "notices"), num(sum, "gap_records"), num(sum, "escapes"),
                  num(sum, "tampering"), num(sum, "abnormal_exits"), num(sum, "lost_events"),
                  num(sum, "port_messages_lost"), num(sum, "coalesced_repeats"));
  jw__rbuf_puts(out, "  by severity:");
  put_counts(out, get(sum, "by_severity"));
  jw__rbuf_puts(out, "\n  by rule:    ");
  if (json_object_size(get(sum, "by_rule")) == 0)
    jw__rbuf_puts(out, "  (no violation, notice or gap)");
  put_counts(out, get(sum, "by_rule"));
  jw__rbuf_puts(out, "\n");
  put_processes(out, run);
  put_timeline(out, run);
  put_gaps(out, run);
}

void jw__report_render_text(json_t *doc, jw_rbuf_t *out) {
  json_t *run;
  size_t i, n = json_array_size(get(doc, "runs"));
  jw__rbuf_printf(out, "jobwarden report: %lu run(s) in %lu file(s)\n", (unsigned long)n,
                  (unsigned long)json_array_size(get(doc, "files")));
  put_files(out, doc);
  put_notes(out, get(doc, "notes"), "");
  put_seal(out, get(doc, "seal"));
  json_array_foreach(get(doc, "runs"), i, run) {
    put_run(out, run, i, n);
  }
}

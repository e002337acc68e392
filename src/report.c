/* `jobwarden report FILE... [--format text|json|html] [--key KEYFILE]
 * [-o OUT]` (docs/forensics.md, "Report"): reads the record files into the
 * report model (src/report_model.c), verifies their seals when a key is
 * given (src/verify.c), and writes one of the three renderings.
 *
 * Exit status: 0 the report was written; 1 a file could not be read as a
 * record (which and why on stderr; nothing is written); 125 usage, a key
 * file that cannot be used, or an output that cannot be written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "commands.h"
#include "internal.h"
#include "report.h"
#include "seal.h"

#define USAGE "report FILE... [--format text|json|html] [--key KEYFILE] [-o OUT]"

/* Lines that are not events are named on stderr too, up to this many. */
#define PROBLEMS_SHOWN 20

typedef enum { FORMAT_TEXT, FORMAT_JSON, FORMAT_HTML } report_format_t;

typedef struct {
  const char **files; /* borrowed from argv */
  int n_files;
  report_format_t format;
  const char *key_file; /* borrowed, or NULL */
  const char *out;      /* borrowed, or NULL: standard output */
} report_args_t;

/* Returns 0, or JW_EXIT_JW_ERROR with the message written. */
static int parse_args(int argc, char **argv, report_args_t *a) {
  int i, format_seen = 0;
  memset(a, 0, sizeof(*a));
  a->files = malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
  if (a->files == NULL) {
    jw_errf("report: out of memory");
    return JW_EXIT_JW_ERROR;
  }
  for (i = 2; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--format") == 0) {
      if (i + 1 >= argc) {
        jw_errf("report: --format needs a value: text, json or html (" USAGE ")");
        return JW_EXIT_JW_ERROR;
      }
      if (format_seen) {
        jw_errf("report: --format given twice");
        return JW_EXIT_JW_ERROR;
      }
      format_seen = 1;
      arg = argv[++i];
      if (strcmp(arg, "text") == 0)
        a->format = FORMAT_TEXT;
      else if (strcmp(arg, "json") == 0)
        a->format = FORMAT_JSON;
      else if (strcmp(arg, "html") == 0)
        a->format = FORMAT_HTML;
      else {
        jw_errf("report: unknown --format '%.100s' (text, json or html)", arg);
        return JW_EXIT_JW_ERROR;
      }
    } else if (strcmp(arg, "--key") == 0) {
      if (i + 1 >= argc) {
        jw_errf("report: --key needs a KEYFILE (" USAGE ")");
        return JW_EXIT_JW_ERROR;
      }
      if (a->key_file != NULL) {
        jw_errf("report: --key given twice");
        return JW_EXIT_JW_ERROR;
      }
      a->key_file = argv[++i];
    } else if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) {
      if (i + 1 >= argc) {
        jw_errf("report: %s needs a file name OUT (" USAGE ")", arg);
        return JW_EXIT_JW_ERROR;
      }
      if (a->out != NULL) {
        jw_errf("report: -o given twice");
        return JW_EXIT_JW_ERROR;
      }
      a->out = argv[++i];
    } else if (arg[0] == '-' && arg[1] != '\0') {
      jw_errf("report: unknown option '%.100s' (" USAGE ")", arg);
      return JW_EXIT_JW_ERROR;
    } else {
      a->files[a->n_files++] = arg;
    }
  }
  if (a->n_files == 0) {
    jw_errf("report: expected at least one record FILE (" USAGE ")");
    return JW_EXIT_JW_ERROR;
  }
  return 0;
}

/* The seal verdict of the files (a new reference), or NULL with the exit
 * status in *status. */
static json_t *verify_seals(const report_args_t *a, int *status) {
  jw_seal_key_t key;
  jw_error_t err;
  char why[1024] = "";
  json_t *doc;
  memset(&err, 0, sizeof(err));
  memset(&key, 0, sizeof(key));
  if (jw_seal_key_read(a->key_file, &key, &err) != 0) {
    /* The key reader's text names the file and what is wrong with it. */
    if (err.text[0])
      jw_errf("report: --key: %s", err.text);
    else
      jw_errf("report: --key: %.300s: the key file cannot be used", a->key_file);
    *status = JW_EXIT_JW_ERROR;
    return NULL;
  }
  doc = jw_verify_files(a->files, a->n_files, &key, why, sizeof(why));
  jw_seal_key_wipe(&key);
  if (doc == NULL) {
    jw_errf("report: the seals could not be verified: %s", why[0] ? why : "no verdict");
    *status = JW_EXIT_JW_ERROR;
  }
  return doc;
}

static int write_output(const report_args_t *a, const jw_rbuf_t *b) {
  FILE *f;
  if (a->out == NULL) {
    if (jw_out(b->data, b->len) == 0)
      return 0;
    jw_errf("report: cannot write to standard output");
    return -1;
  }
  f = jw__fopen_utf8(a->out, "wb");
  if (f == NULL) {
    jw_errf("report: -o %.300s: cannot create: %s", a->out, strerror(errno));
    return -1;
  }
  {
    int bad = fwrite(b->data, 1, b->len, f) != b->len;
    if (fclose(f) != 0)
      bad = 1;
    if (bad) {
      jw_errf("report: -o %.300s: cannot write: %s", a->out, strerror(errno));
      return -1;
    }
  }
  return 0;
}

/* Names the lines that are not events on stderr, so that a report piped
 * elsewhere still says it left something out. */
static void warn_problems(json_t *doc) {
  json_t *problems = json_object_get(doc, "problems"), *p;
  size_t i;
  json_array_foreach(problems, i, p) {
    if (i == PROBLEMS_SHOWN) {
      jw_errf("report: ... and %lu more line(s) that are not events (listed in the report)",
              (unsigned long)(json_array_size(problems) - i));
      break;
    }
    jw_errf("report: %.300s:%lld: %s", json_string_value(json_object_get(p, "file")),
            (long long)json_integer_value(json_object_get(p, "line")),
            json_string_value(json_object_get(p, "reason")));
  }
}

int jw_cmd_report(int argc, char **argv) {
  report_args_t a;
  jw_report_t *r = NULL;
  json_t *seal = NULL, *doc = NULL;
  jw_rbuf_t out;
  char why[1024];
  int i, status;

  memset(&out, 0, sizeof(out));
  status = parse_args(argc, argv, &a);
  if (status != 0)
    goto done;
  r = jw__report_new();
  if (r == NULL) {
    jw_errf("report: out of memory");
    status = JW_EXIT_JW_ERROR;
    goto done;
  }
  for (i = 0; i < a.n_files; i++) {
    if (jw__report_read_file(r, a.files[i], why, sizeof(why)) != 0) {
      jw_errf("report: %s", why);
      status = JW_EXIT_REPORT_UNREADABLE;
      goto done;
    }
  }
  if (a.key_file != NULL) {
    seal = verify_seals(&a, &status);
    if (seal == NULL)
      goto done;
  }
  doc = jw__report_finish(r, seal);
  if (doc == NULL) {
    jw_errf("report: out of memory");
    status = JW_EXIT_JW_ERROR;
    goto done;
  }
  if (a.format == FORMAT_JSON)
    jw__report_render_json(doc, &out);
  else if (a.format == FORMAT_TEXT)
    jw__report_render_text(doc, &out);
  else if (jw__report_render_html(doc, &out) != 0)
    out.failed = 1;
  if (out.failed) {
    jw_errf("report: out of memory while rendering");
    status = JW_EXIT_JW_ERROR;
    goto done;
  }
  warn_problems(doc);
  status = write_output(&a, &out) == 0 ? JW_EXIT_OK : JW_EXIT_JW_ERROR;
done:
  jw__rbuf_free(&out);
  json_decref(doc);
  json_decref(seal);
  jw__report_free(r);
  free(a.files);
  return status;
}

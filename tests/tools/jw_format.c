/* jw-format: converts jobwarden's native JSON lines to ECS or OCSF with the
 * functions the exporters use (src/format.c), so that a test can compare
 * what a sink with format=ecs|ocsf wrote with the conversion of the native
 * stream, line by line.
 *
 *   jw-format ecs|ocsf|native [IN.jsonl [OUT.jsonl]]   (default: stdin, stdout)
 *
 * A sandbox.log_continued line (the start of a file after a rotation) is
 * converted with the line that follows it, as the file exporter builds it
 * (jw_format_continuation). Exit status: 0, 1 when a line is not a
 * jobwarden event (the message names the line), 2 for bad usage or a file
 * that cannot be opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "format.h"

/* Reads one line (without its '\n') into *buf; returns its length, or -1
 * at the end of the input. */
static long read_line(FILE *in, char **buf, size_t *cap) {
  size_t n = 0;
  int c;
  while ((c = fgetc(in)) != EOF && c != '\n') {
    if (n + 2 > *cap) {
      size_t ncap = *cap ? *cap * 2 : 4096;
      char *p = realloc(*buf, ncap);
      if (p == NULL)
        return -1;
      *buf = p;
      *cap = ncap;
    }
    (*buf)[n++] = (char)c;
  }
  if (c == EOF && n == 0)
    return -1;
  if (*buf == NULL && (*buf = malloc(1)) == NULL)
    return -1;
  (*buf)[n] = '\0';
  return (long)n;
}

int main(int argc, char **argv) {
  jw_format_t f;
  FILE *in = stdin, *out = stdout;
  char *buf = NULL, *cont_prev = NULL;
  size_t cap = 0;
  long len, lineno = 0, cont_line = 0;
  int64_t cont_seq = 0;
  int status = 0;

  if (argc < 2 || argc > 4 || jw_format_parse(argv[1], &f) != 0) {
    fprintf(stderr, "usage: jw-format ecs|ocsf|native [IN.jsonl [OUT.jsonl]]\n");
    return 2;
  }
  if (argc >= 3 && strcmp(argv[2], "-") != 0 && (in = fopen(argv[2], "rb")) == NULL) {
    fprintf(stderr, "jw-format: cannot open '%s'\n", argv[2]);
    return 2;
  }
  if (argc == 4 && (out = fopen(argv[3], "wb")) == NULL) {
    fprintf(stderr, "jw-format: cannot create '%s'\n", argv[3]);
    return 2;
  }
  while (status == 0 && (len = read_line(in, &buf, &cap)) >= 0) {
    json_error_t jerr;
    json_t *n;
    char *conv = NULL;
    size_t clen = 0;
    lineno++;
    if (len == 0)
      continue;
    n = json_loadb(buf, (size_t)len, JSON_ALLOW_NUL, &jerr);
    if (n != NULL && json_is_string(json_object_get(n, "event")) &&
        strcmp(json_string_value(json_object_get(n, "event")), "sandbox.log_continued") == 0) {
      const char *prev = json_string_value(json_object_get(n, "previous_file"));
      json_t *seq = json_object_get(n, "continues_at_seq");
      if (prev == NULL || !json_is_integer(seq) || cont_prev != NULL) {
        fprintf(stderr,
                "jw-format: line %ld: a sandbox.log_continued line without "
                "previous_file and continues_at_seq, or after another one\n",
                lineno);
        status = 1;
      } else {
        cont_prev = strdup(prev);
        cont_seq = (int64_t)json_integer_value(seq);
        cont_line = lineno;
      }
      json_decref(n);
      continue;
    }
    if (n == NULL || jw_format_line(f, buf, (size_t)len, &conv, &clen) != 0) {
      fprintf(stderr, "jw-format: line %ld: not a jobwarden event%s%s\n", lineno,
              n == NULL ? ": " : "", n == NULL ? jerr.text : "");
      status = 1;
    } else {
      if (cont_prev != NULL) {
        size_t hlen = 0;
        json_t *seq = json_object_get(n, "seq");
        char *head = jw_format_continuation(f, cont_prev, conv, clen, &hlen);
        if (head == NULL || !json_is_integer(seq) || json_integer_value(seq) != cont_seq) {
          fprintf(stderr,
                  "jw-format: line %ld: the sandbox.log_continued line does not continue at "
                  "the seq of the line after it\n",
                  cont_line);
          status = 1;
        } else {
          fwrite(head, 1, hlen, out);
        }
        free(head);
        free(cont_prev);
        cont_prev = NULL;
      }
      if (status == 0)
        fwrite(conv, 1, clen, out);
    }
    free(conv);
    json_decref(n);
  }
  if (status == 0 && cont_prev != NULL) {
    fprintf(stderr, "jw-format: line %ld: a sandbox.log_continued line is the last line\n",
            cont_line);
    status = 1;
  }
  free(cont_prev);
  free(buf);
  if (in != stdin)
    fclose(in);
  if (out != stdout && fclose(out) != 0) {
    fprintf(stderr, "jw-format: cannot write '%s'\n", argv[3]);
    status = 2;
  }
  return status;
}

/* <tree>.unit.report: the report's renderers on what the command-line
 * tests cannot reach yet, and its HTML escaping byte for byte.
 *   seal      a jw_verify_files document (src/seal.h's shape, made here,
 *             with hostile file names and details) rendered in all three
 *             formats: the text has each stream and damage line with no
 *             control character, the json holds the document as given,
 *             the html embeds it with no '<' of it left;
 *   html json '<', '>', '&', U+2028, U+2029 become \uXXXX, nothing else
 *             changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "test_util.h"
#include "report.h"

static const char *g_data;

static const char k_seal[] =
    "{\"verdict\":\"damaged\",\"streams\":[{\"run_id\":\"5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5\","
    "\"stream\":\"0\",\"files\":[\"ev\\u001b[31m.jsonl\"],\"lines\":7,\"first_index\":0,"
    "\"last_index\":6,\"complete\":false,\"verdict\":\"damaged\",\"damage\":[{\"kind\":"
    "\"modified\",\"file\":\"ev\\u001b[31m.jsonl\",\"line\":3,\"seq\":3,\"index\":2,\"detail\":"
    "\"mac mismatch </script><script>x()</script>\\u202e\"},{\"kind\":\"deleted\",\"index\":4,"
    "\"detail\":\"index 4 is missing\",\"before\":{\"file\":\"b.jsonl\",\"line\":5,\"seq\":6}},"
    "{\"kind\":\"truncated\",\"index\":7,\"detail\":\"no end\",\"after\":{\"file\":"
    "\"b.jsonl\",\"line\":6}}],\"damage_not_listed\":3},{\"run_id\":"
    "\"5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5\",\"stream\":\"2/1\",\"files\":[\"b.jsonl\"],\"lines\":"
    "7,\"first_index\":0,\"last_index\":6,\"complete\":true,\"verdict\":\"intact\",\"damage\":"
    "[]}],\"files\":[{\"file\":\"c.jsonl\",\"lines\":4,\"unsealed\":4}]}";

static json_t *report_with(json_t *seal) {
  char path[1024], why[1024];
  jw_report_t *r = jw__report_new();
  json_t *doc;
  snprintf(path, sizeof(path), "%s/report/sample.jsonl", g_data);
  CHECK(r != NULL);
  CHECK_INT(jw__report_read_file(r, path, why, sizeof(why)), 0);
  doc = jw__report_finish(r, seal);
  jw__report_free(r);
  return doc;
}

static void test_seal(void) {
  json_error_t jerr;
  json_t *seal = json_loads(k_seal, 0, &jerr), *doc;
  jw_rbuf_t text, js, html;
  size_t i;
  CHECK(seal != NULL);
  doc = report_with(seal);
  CHECK(doc != NULL);
  if (doc == NULL) {
    json_decref(seal);
    return;
  }
  memset(&text, 0, sizeof(text));
  memset(&js, 0, sizeof(js));
  memset(&html, 0, sizeof(html));
  jw__report_render_text(doc, &text);
  jw__report_render_json(doc, &js);
  CHECK_INT(jw__report_render_html(doc, &html), 0);
  CHECK(!text.failed && !js.failed && !html.failed);

  CHECK_CONTAINS(text.data, "\nSeal verdict: damaged\n"
                            "  run 5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5 stream 0: damaged, 7 line(s), "
                            "index 0-6, NOT complete (no closing job_end)\n"
                            "    files: ev?[31m.jsonl\n"
                            "    DAMAGE modified at ev?[31m.jsonl:3 (seq 3, index 2): mac mismatch "
                            "</script><script>x()</script>?\n"
                            "    DAMAGE deleted before b.jsonl:5 (seq 6, index 4): index 4 is "
                            "missing\n"
                            "    DAMAGE truncated after b.jsonl:6 (index 7): no end\n"
                            "    ... and 3 more damage(s) not listed\n"
                            "  run 5f0c9a7e1b2d4c3a8e6f70a1b2c3d4e5 stream 2/1: intact, 7 line(s), "
                            "index 0-6, complete (closed by job_end)\n"
                            "    files: b.jsonl\n"
                            "  c.jsonl: 4 of 4 line(s) carry no seal\n");
  for (i = 0; i < text.len; i++)
    if ((unsigned char)text.data[i] < 0x20 && text.data[i] != '\n')
      break;
  CHECK_INT(i, text.len);

  {
    json_t *back = json_loads(js.data, 0, &jerr);
    CHECK(back != NULL && json_equal(json_object_get(back, "seal"), seal));
    json_decref(back);
  }
  /* The page's data block holds the seal's strings escaped: its only
   * "</script>" are the page's own two. */
  CHECK_CONTAINS(html.data,
                 "mac mismatch \\u003c/script\\u003e\\u003cscript\\u003ex()\\u003c/script\\u003e");
  {
    const char *p = html.data;
    int n = 0;
    while ((p = strstr(p, "</script>")) != NULL) {
      n++;
      p++;
    }
    CHECK_INT(n, 2);
  }
  jw__rbuf_free(&text);
  jw__rbuf_free(&js);
  jw__rbuf_free(&html);
  json_decref(doc);
  json_decref(seal);
}

static void test_json_for_html(void) {
  static const char in[] = "{\"a\":\"</script><!-- & \xe2\x80\xa8 \xe2\x80\xa9 \xe2\x80\xaa\"}";
  jw_rbuf_t b;
  memset(&b, 0, sizeof(b));
  jw__report_json_for_html(&b, in, strlen(in));
  CHECK_STR(b.data,
            "{\"a\":\"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028 \\u2029 \xe2\x80\xaa\"}");
  jw__rbuf_free(&b);
}

/* Without a seal document the report says null, in json, and nothing in
 * text. */
static void test_no_seal(void) {
  json_t *doc = report_with(NULL);
  jw_rbuf_t text;
  memset(&text, 0, sizeof(text));
  CHECK(doc != NULL && json_is_null(json_object_get(doc, "seal")));
  jw__report_render_text(doc, &text);
  CHECK(text.data != NULL && strstr(text.data, "Seal verdict") == NULL);
  jw__rbuf_free(&text);
  json_decref(doc);
}

/* Runnable one by one: `test_report DATA OUT --case seal`. */
static const jw_test_case_t cases[] = {
    {"seal", test_seal, 30},
    {"no_seal", test_no_seal, 30},
    {"json_for_html", test_json_for_html, 30},
};

int main(int argc, char **argv) {
  g_data = jw_test_arg(argc, argv, 1, "tests/data");
  return jw_test_run_cases("report", argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}

/* `jobwarden report --format json`: the report model as it is, one
 * document for further tooling (schema: docs/jobwarden-report.schema.json),
 * and the same JSON made safe to embed in an HTML page. */
#include <stdlib.h>
#include <string.h>

#include "report.h"

void jw__report_render_json(json_t *doc, jw_rbuf_t *out) {
  char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  if (text == NULL) {
    out->failed = 1;
    return;
  }
  jw__rbuf_puts(out, text);
  jw__rbuf_puts(out, "\n");
  free(text);
}

void jw__report_json_for_html(jw_rbuf_t *out, const char *s, size_t len) {
  size_t i, from = 0;
  for (i = 0; i < len; i++) {
    const char *esc = NULL;
    size_t skip = 1;
    unsigned char c = (unsigned char)s[i];
    if (c == '<')
      esc = "\\u003c";
    else if (c == '>')
      esc = "\\u003e";
    else if (c == '&')
      esc = "\\u0026";
    else if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
             ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
      /* U+2028 / U+2029: line terminators to older JavaScript parsers. */
      esc = (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029";
      skip = 3;
    }
    if (esc == NULL)
      continue;
    jw__rbuf_add(out, s + from, i - from);
    jw__rbuf_puts(out, esc);
    i += skip - 1;
    from = i + 1;
  }
  jw__rbuf_add(out, s + from, len - from);
}

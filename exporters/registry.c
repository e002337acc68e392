/* Exporter registry: maps a SPEC's kind to its callbacks. */
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "internal.h"

static const jw_exporter_vtable_t *const registry[] = {
    &jw_exporter_file,       &jw_exporter_stdout,     &jw_exporter_stderr,
    &jw_exporter_syslog_udp, &jw_exporter_syslog_tcp, /* one source, two transports */
};

const char *jw_exporter_kinds(void) {
  return "file:PATH | stdout | stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT";
}

int jw_exporter_open(const char *spec, jw_exporter_t **out, jw_error_t *err) {
  const char *colon = strchr(spec, ':');
  size_t kind_len = colon ? (size_t)(colon - spec) : strlen(spec);
  const char *arg = colon ? colon + 1 : NULL;
  const jw_exporter_vtable_t *vt = NULL;
  jw_exporter_t *exp;
  size_t i;
  int rc;

  *out = NULL;
  if (strlen(spec) >= sizeof(((jw_exporter_t *)0)->spec))
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export: specification is longer than %u bytes",
                        (unsigned)sizeof(((jw_exporter_t *)0)->spec) - 1);
  for (i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
    if (strlen(registry[i]->name) == kind_len && memcmp(registry[i]->name, spec, kind_len) == 0) {
      vt = registry[i];
      break;
    }
  }
  if (vt == NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export: unknown exporter '%.*s' (expected %s)",
                        (int)(kind_len > 40 ? 40 : kind_len), spec, jw_exporter_kinds());
  exp = calloc(1, sizeof(*exp));
  if (exp == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  exp->vt = vt;
  jw__strlcpy(exp->spec, spec, sizeof(exp->spec));
  rc = vt->init(exp, arg, err);
  if (rc != 0) {
    free(exp);
    return rc;
  }
  *out = exp;
  return 0;
}

void jw_exporter_close(jw_exporter_t *exp) {
  if (exp == NULL)
    return;
  if (exp->vt->flush != NULL)
    exp->vt->flush(exp, NULL);
  if (exp->vt->close != NULL)
    exp->vt->close(exp);
  free(exp);
}

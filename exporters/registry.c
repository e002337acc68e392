/* Exporter registry: maps a SPEC's kind to its callbacks. */
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "internal.h"

static const jw_exporter_vtable_t *const registry[] = {
    &jw_exporter_file,       &jw_exporter_stdout,       &jw_exporter_stderr,
    &jw_exporter_syslog_udp, &jw_exporter_syslog_tcp, /* one source, two transports */
#ifdef _WIN32
    &jw_exporter_pipe,       &jw_exporter_pipe_connect,
#endif
};

const char *jw_exporter_kinds(void) {
#ifdef _WIN32
  return "file:PATH | stdout | stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT | "
         "pipe:NAME | pipe-connect:NAME";
#else
  return "file:PATH | stdout | stderr | syslog+udp://HOST:PORT | syslog+tcp://HOST:PORT";
#endif
}

/* Finds the exporter a SPEC names; fills *arg. Returns NULL with err set. */
static const jw_exporter_vtable_t *lookup(const char *spec, const char **arg, jw_error_t *err) {
  const char *colon = strchr(spec, ':');
  size_t kind_len = colon ? (size_t)(colon - spec) : strlen(spec);
  size_t i;
  *arg = colon ? colon + 1 : NULL;
  if (strlen(spec) >= sizeof(((jw_exporter_t *)0)->spec)) {
    jw_error_set(err, JW_EUSAGE, 0, "--export", "--export: specification is longer than %u bytes",
                 (unsigned)sizeof(((jw_exporter_t *)0)->spec) - 1);
    return NULL;
  }
  for (i = 0; i < sizeof(registry) / sizeof(registry[0]); i++)
    if (strlen(registry[i]->name) == kind_len && memcmp(registry[i]->name, spec, kind_len) == 0)
      return registry[i];
  jw_error_set(err, JW_EUSAGE, 0, "--export", "--export: unknown exporter '%.*s' (expected %s)",
               (int)(kind_len > 40 ? 40 : kind_len), spec, jw_exporter_kinds());
  return NULL;
}

int jw_exporter_check(const char *spec, const char *where, jw_error_t *err) {
  jw_exporter_t probe;
  jw_error_t e;
  const char *arg;
  int rc;
  memset(&probe, 0, sizeof(probe));
  memset(&e, 0, sizeof(e));
  probe.vt = lookup(spec, &arg, &e);
  if (probe.vt == NULL) {
    rc = e.code;
  } else {
    jw__strlcpy(probe.spec, spec, sizeof(probe.spec));
    rc = probe.vt->check ? probe.vt->check(&probe, arg, &e) : probe.vt->init(&probe, arg, &e);
  }
  if (rc == 0)
    return 0;
  /* The exporters word their errors for --export; name the real source. */
  if (strncmp(e.text, "--export", 8) == 0)
    return jw_error_set(err, rc, e.sys_error, where, "%s%s", where, e.text + 8);
  return jw_error_set(err, rc, e.sys_error, where, "%s: %s", where, e.text);
}

int jw_exporter_open(const char *spec, jw_exporter_t **out, jw_error_t *err) {
  const char *arg;
  const jw_exporter_vtable_t *vt;
  jw_exporter_t *exp;
  int rc;

  *out = NULL;
  vt = lookup(spec, &arg, err);
  if (vt == NULL)
    return err ? err->code : JW_EUSAGE;
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

void jw_exporter_set_gate(jw_exporter_t *exp, const jw_client_gate_t *gate) {
  if (exp != NULL)
    exp->gate = gate;
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

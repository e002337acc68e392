/* Exporter registry: maps a SPEC's kind to its callbacks. */
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "exporters.h"
#include "internal.h"
#include "seal.h"

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

/* Takes the option format=native|ecs|ocsf out of a SPEC, for every kind of
 * exporter alike: `base` receives the SPEC without it (what the exporter
 * itself parses), *fmt the format (native when not given). The option is
 * a ",format=VALUE" segment anywhere after the kind ("stdout,format=ecs",
 * "file:PATH,rotate=64M,format=ocsf", "syslog+udp://HOST:PORT,format=ecs").
 * Returns 0, or JW_EUSAGE with err set (given twice, unknown value). */
static int split_format(const char *spec, char *base, size_t size, jw_format_t *fmt,
                        jw_error_t *err) {
  static const char opt[] = ",format=";
  const char *p = strstr(spec, opt), *v, *end;
  char value[16];
  size_t vlen;
  *fmt = JW_FORMAT_NATIVE;
  jw__strlcpy(base, spec, size);
  if (p == NULL)
    return 0;
  v = p + sizeof(opt) - 1;
  end = strchr(v, ',');
  vlen = end ? (size_t)(end - v) : strlen(v);
  if (strstr(v, opt) != NULL)
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: format: given twice", spec);
  value[0] = '\0';
  if (vlen < sizeof(value)) {
    memcpy(value, v, vlen);
    value[vlen] = '\0';
  }
  if (vlen >= sizeof(value) || jw_format_parse(value, fmt) != 0)
    return jw_error_set(err, JW_EUSAGE, 0, "--export",
                        "--export %s: format: expected native, ecs or ocsf, got \"%.*s\"", spec,
                        (int)(vlen > 40 ? 40 : vlen), v);
  /* base = the SPEC before the segment + what follows it. */
  memcpy(base, spec, (size_t)(p - spec));
  jw__strlcpy(base + (p - spec), end ? end : "", size - (size_t)(p - spec));
  return 0;
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
  char base[JW_EXPORTER_SPEC_MAX];
  int rc;
  memset(&probe, 0, sizeof(probe));
  memset(&e, 0, sizeof(e));
  if (strlen(spec) < sizeof(base) && split_format(spec, base, sizeof(base), &probe.format, &e) != 0)
    rc = e.code;
  else if ((probe.vt = lookup(strlen(spec) < sizeof(base) ? base : spec, &arg, &e)) == NULL) {
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
  char base[JW_EXPORTER_SPEC_MAX];
  jw_format_t fmt = JW_FORMAT_NATIVE;
  int rc;

  *out = NULL;
  if (strlen(spec) < sizeof(base) && (rc = split_format(spec, base, sizeof(base), &fmt, err)) != 0)
    return rc;
  /* The exporter parses the SPEC without format=; its messages name the
   * SPEC as written (exp->spec). */
  vt = lookup(strlen(spec) < sizeof(base) ? base : spec, &arg, err);
  if (vt == NULL)
    return err ? err->code : JW_EUSAGE;
  exp = calloc(1, sizeof(*exp));
  if (exp == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  exp->vt = vt;
  exp->format = fmt;
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
  jw_seal_free(exp->seal);
  free(exp);
}

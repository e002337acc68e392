/* Exporter registry: maps a SPEC's kind to its callbacks; opens, checks
 * and closes exporters. The SPEC's options are parsed in options.c. */
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "internal.h"
#include "seal.h"
#include "spool.h"

static const jw_exporter_vtable_t *const registry[] = {
    &jw_exporter_file,       &jw_exporter_stdout,     &jw_exporter_stderr,
    &jw_exporter_syslog_udp, &jw_exporter_syslog_tcp, /* one source, two transports */
#ifdef _WIN32
    &jw_exporter_syslog_tls, &jw_exporter_pipe,       &jw_exporter_pipe_connect,
#endif
};

const jw_exporter_vtable_t *const *jw__exporter_registry(size_t *count) {
  *count = sizeof(registry) / sizeof(registry[0]);
  return registry;
}

/* "file:PATH | stdout | ...": the kinds' usage in registry order, made
 * once (the first call comes from the command line's or a policy's
 * parsing, before any thread of a run). */
const char *jw_exporter_kinds(void) {
  static char kinds[512];
  size_t i, used = 0;
  if (kinds[0] != '\0')
    return kinds;
  for (i = 0; i < sizeof(registry) / sizeof(registry[0]); i++) {
    int n = snprintf(kinds + used, sizeof(kinds) - used, "%s%s", i ? " | " : "",
                     registry[i]->usage ? registry[i]->usage : registry[i]->name);
    if (n < 0 || (size_t)n >= sizeof(kinds) - used)
      break;
    used += (size_t)n;
  }
  return kinds;
}

/* Finds the exporter a SPEC names: its kind ends at the first ':' or ','.
 * *rest points there. Returns NULL with err set. */
static const jw_exporter_vtable_t *lookup(const char *spec, const char **rest, jw_error_t *err) {
  size_t kind_len = strcspn(spec, ":,");
  size_t i;
  *rest = spec + kind_len;
  if (strlen(spec) >= JW_EXPORTER_SPEC_MAX) {
    jw_error_set(err, JW_EUSAGE, 0, "--export", "--export: specification is longer than %u bytes",
                 (unsigned)JW_EXPORTER_SPEC_MAX - 1);
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
  const char *rest;
  char *target = NULL;
  int rc;
  memset(&probe, 0, sizeof(probe));
  memset(&e, 0, sizeof(e));
  if ((probe.vt = lookup(spec, &rest, &e)) == NULL) {
    rc = e.code;
  } else {
    jw__strlcpy(probe.spec, spec, sizeof(probe.spec));
    rc = jw__exporter_parse(&probe, rest, &target, &e);
    if (rc == 0)
      rc = probe.vt->check ? probe.vt->check(&probe, target, &e)
                           : probe.vt->init(&probe, target, &e);
    if (rc == 0 && probe.vt->check == NULL && probe.vt->close != NULL)
      probe.vt->close(&probe);
  }
  free(target);
  jw__exporter_options_free(&probe);
  if (rc == 0)
    return 0;
  /* The exporters word their errors for --export; name the real source. */
  if (strncmp(e.text, "--export", 8) == 0)
    return jw_error_set(err, rc, e.sys_error, where, "%s%s", where, e.text + 8);
  return jw_error_set(err, rc, e.sys_error, where, "%s: %s", where, e.text);
}

/* A new exporter of the SPEC's kind with its options parsed; *target
 * (malloc'd or NULL) for init. NULL with err set. */
static jw_exporter_t *exporter_new(const char *spec, char **target, jw_error_t *err) {
  const char *rest;
  const jw_exporter_vtable_t *vt = lookup(spec, &rest, err);
  jw_exporter_t *exp;
  *target = NULL;
  if (vt == NULL)
    return NULL;
  exp = calloc(1, sizeof(*exp));
  if (exp == NULL) {
    jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
    return NULL;
  }
  exp->vt = vt;
  jw__strlcpy(exp->spec, spec, sizeof(exp->spec));
  if (jw__exporter_parse(exp, rest, target, err) != 0) {
    free(*target);
    *target = NULL;
    jw__exporter_options_free(exp);
    free(exp);
    return NULL;
  }
  return exp;
}

/* Initializes exp and gives it its spool: the run's own (dir NULL) or,
 * for flush, what ended runs left in dir. */
static int exporter_start(jw_exporter_t *exp, const char *target, const char *dir, uint64_t *found,
                          jw_error_t *err) {
  int rc;
  if (dir != NULL) {
    /* Without a spool of its own (no connection at init, as with one). */
    char *saved = exp->delivery.spool;
    exp->delivery.spool = NULL;
    rc = exp->vt->init(exp, target, err);
    exp->delivery.spool = saved;
  } else {
    rc = exp->vt->init(exp, target, err);
  }
  if (rc == 0 && exp->vt->delivery == JW_DELIVERY_NETWORK)
    rc =
        dir != NULL ? jw__spool_open_flush(exp, dir, found, err) : jw__spool_open(exp, target, err);
  if (rc != 0 && exp->vt->close != NULL && exp->state != NULL)
    exp->vt->close(exp);
  return rc;
}

static int exporter_open(const char *spec, const char *dir, jw_exporter_t **out, uint64_t *found,
                         jw_error_t *err) {
  char *target = NULL;
  jw_exporter_t *exp = exporter_new(spec, &target, err);
  int rc;
  *out = NULL;
  if (exp == NULL)
    return err->code ? err->code : JW_EUSAGE;
  if (dir != NULL && exp->vt->delivery != JW_DELIVERY_NETWORK)
    rc = jw_error_set(err, JW_EUSAGE, 0, "flush", "'%s' is not a network sink: it has no spool",
                      spec);
  else
    rc = exporter_start(exp, target, dir, found, err);
  free(target);
  if (rc != 0) {
    jw__exporter_options_free(exp);
    free(exp);
    return rc;
  }
  *out = exp;
  return 0;
}

int jw_exporter_open(const char *spec, jw_exporter_t **out, jw_error_t *err) {
  uint64_t found;
  return exporter_open(spec, NULL, out, &found, err);
}

int jw__exporter_open_flush(const char *spec, const char *dir, jw_exporter_t **out, uint64_t *found,
                            jw_error_t *err) {
  *found = 0;
  return exporter_open(spec, dir, out, found, err);
}

void jw_exporter_set_gate(jw_exporter_t *exp, const jw_client_gate_t *gate) {
  if (exp != NULL)
    exp->gate = gate;
}

void jw_exporter_close(jw_exporter_t *exp) {
  if (exp == NULL)
    return;
  /* A network sink's sender delivers what it can within drain= first. */
  jw__spool_close(exp);
  if (exp->vt->flush != NULL)
    exp->vt->flush(exp, NULL);
  if (exp->vt->close != NULL)
    exp->vt->close(exp);
  jw_seal_free(exp->seal);
  jw__exporter_options_free(exp);
  free(exp);
}

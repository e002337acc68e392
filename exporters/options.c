/* The SPEC of an exporter, parsed from its kind's option rows.
 *
 *   KIND[:TARGET][,NAME=VALUE|,FLAG]...
 *
 * KIND picks the vtable (registry.c). TARGET is what the exporter itself
 * reads (a path, //HOST:PORT, a pipe name); it ends at the first ',' that
 * starts an option: a word followed by '=', or a word that is one of the
 * kind's FLAG options. A TARGET may hold other commas ("file:a,b.jsonl")
 * as long as no option follows it.
 *
 * Each option is one row (jw_option_t, include/jobwarden.h) — name, type,
 * where the value goes, default, bounds, help — in one of three tables:
 * the options every sink has (format=), the options of every NETWORK sink
 * (its spool and retries), and the kind's own (vt->options, stored in the
 * struct at exp->config). The rows are the only place an option exists:
 * parsing, defaults, bounds, the error messages and --help all come from
 * them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "internal.h"

/* Options every exporter takes; stored in jw_exporter_t itself. */
static const jw_option_t common_options[] = {
    {"format", JW_OPT_CHOICE, offsetof(jw_exporter_t, format), "native", 0, 0, "native|ecs|ocsf",
     "what each line is: jobwarden's own JSON, ECS or OCSF (docs/integrations.md)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* Options of every NETWORK sink (src/spool.c). */
static const jw_option_t delivery_options[] = {
    {"spool", JW_OPT_STRING, offsetof(jw_exporter_t, delivery.spool), NULL, 0, 0, "DIR",
     "where lines wait while the collector is away (default: the user's "
     "jobwarden spool directory; none: no spool, a failed delivery is a loss)"},
    {"spool_max", JW_OPT_SIZE, offsetof(jw_exporter_t, delivery.spool_max), "256M", 64 * 1024, 0,
     NULL, "the most this run's spool holds; lines beyond it are lost (a telemetry_gap)"},
    {"drain", JW_OPT_DURATION, offsetof(jw_exporter_t, delivery.drain_ms), "10s", 0, 3600u * 1000u,
     NULL,
     "how long the run's end waits for the spool to reach the collector; what is left stays "
     "for the next run or 'jobwarden flush'"},
    {"retry_max", JW_OPT_DURATION, offsetof(jw_exporter_t, delivery.retry_max_ms), "5s", 100,
     3600u * 1000u, NULL, "the longest wait between two delivery attempts (backoff from 100ms)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

/* The tables that apply to a kind, in the order --help lists them. */
static int tables_of(const jw_exporter_vtable_t *vt, const jw_option_t *tables[3]) {
  int n = 0;
  if (vt->options != NULL)
    tables[n++] = vt->options;
  if (vt->delivery == JW_DELIVERY_NETWORK)
    tables[n++] = delivery_options;
  tables[n++] = common_options;
  return n;
}

/* The struct a row's offset is into. */
static void *base_of(jw_exporter_t *exp, const jw_option_t *table) {
  return table == common_options || table == delivery_options ? (void *)exp : exp->config;
}

static const jw_option_t *find_option(const jw_exporter_vtable_t *vt, const char *name, size_t len,
                                      const jw_option_t **table) {
  const jw_option_t *tables[3];
  int n = tables_of(vt, tables), t;
  const jw_option_t *o;
  for (t = 0; t < n; t++)
    for (o = tables[t]; o->name != NULL; o++)
      if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) {
        *table = tables[t];
        return o;
      }
  return NULL;
}

/* Length of the word (letters, digits, '_') at s. */
static size_t word_len(const char *s) {
  size_t n = 0;
  while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
         (s[n] >= '0' && s[n] <= '9') || s[n] == '_')
    n++;
  return n;
}

/* Whether the ',' at p starts an option of vt. */
static int starts_option(const jw_exporter_vtable_t *vt, const char *p) {
  size_t n = word_len(p + 1);
  const jw_option_t *table, *o;
  if (n == 0)
    return 0;
  if (p[1 + n] == '=')
    return 1;
  if (p[1 + n] != ',' && p[1 + n] != '\0')
    return 0;
  o = find_option(vt, p + 1, n, &table);
  return o != NULL && o->type == JW_OPT_FLAG;
}

/* "64M" for 64 MiB: the largest unit that divides the size. */
static void size_text(uint64_t v, char *buf, size_t size) {
  static const char units[] = "KMGT";
  int u = -1;
  while (u < 3 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    u++;
  }
  if (u < 0)
    snprintf(buf, size, "%llu", (unsigned long long)v);
  else
    snprintf(buf, size, "%llu%c", (unsigned long long)v, units[u]);
}

/* "500ms", "10s", "2m", "1h": the largest unit that divides it. */
static void duration_text(uint64_t ms, char *buf, size_t size) {
  if (ms != 0 && ms % 3600000u == 0)
    snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000u));
  else if (ms != 0 && ms % 60000u == 0)
    snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000u));
  else if (ms % 1000u == 0)
    snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000u));
  else
    snprintf(buf, size, "%llums", (unsigned long long)ms);
}

/* The placeholder after NAME= in --help and messages. */
static const char *placeholder(const jw_option_t *o) {
  switch (o->type) {
  case JW_OPT_SIZE:
    return "SIZE";
  case JW_OPT_DURATION:
    return "DURATION";
  case JW_OPT_CHOICE:
    return strlen(o->values) > 24 ? "NAME" : o->values;
  case JW_OPT_FLAG:
    return "";
  default:
    return o->values != NULL ? o->values : "VALUE";
  }
}

/* COUNT and STRING rows' values: "N" or "N lines" (placeholder, then what
 * is counted, for messages). */
static size_t placeholder_len(const jw_option_t *o, const char *ph) {
  const char *sp = (o->type == JW_OPT_COUNT || o->type == JW_OPT_STRING) ? strchr(ph, ' ') : NULL;
  return sp != NULL ? (size_t)(sp - ph) : strlen(ph);
}

/* What a value of o must be, for "NAME: expected ..., got ...". */
static void expectation(const jw_option_t *o, char *buf, size_t size) {
  char lo[32], hi[32];
  switch (o->type) {
  case JW_OPT_SIZE:
    size_text(o->min, lo, sizeof(lo));
    size_text(o->max, hi, sizeof(hi));
    if (o->max != 0)
      snprintf(buf, size, "a size like \"64M\" from %s to %s", lo, hi);
    else if (o->min != 0)
      snprintf(buf, size, "a size like \"64M\", at least %s", lo);
    else
      snprintf(buf, size, "a size like \"64M\"");
    break;
  case JW_OPT_DURATION:
    duration_text(o->min, lo, sizeof(lo));
    duration_text(o->max, hi, sizeof(hi));
    snprintf(buf, size, "a duration like \"10s\" from %s to %s", lo, hi);
    break;
  case JW_OPT_COUNT: {
    const char *noun = o->values != NULL ? strchr(o->values, ' ') : NULL;
    snprintf(buf, size, "a number%s%s from %llu to %llu", noun ? " of" : "", noun ? noun : "",
             (unsigned long long)o->min, (unsigned long long)o->max);
    break;
  }
  case JW_OPT_CHOICE: {
    /* "native, ecs or ocsf" */
    const char *v = o->values, *bar;
    size_t used = 0;
    buf[0] = '\0';
    while (v != NULL && used + 1 < size) {
      bar = strchr(v, '|');
      used += (size_t)snprintf(buf + used, size - used, "%s%.*s",
                               used == 0 ? "" : (bar == NULL ? " or " : ", "),
                               (int)(bar ? (size_t)(bar - v) : strlen(v)), v);
      v = bar ? bar + 1 : NULL;
    }
    break;
  }
  default:
    snprintf(buf, size, "%s=%.*s", o->name, (int)placeholder_len(o, placeholder(o)),
             placeholder(o));
  }
}

static int bad_value(const jw_exporter_t *exp, const jw_option_t *o, const char *v, size_t vlen,
                     jw_error_t *err) {
  char want[400];
  expectation(o, want, sizeof(want));
  return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %s: expected %s, got \"%.*s\"",
                      exp->spec, o->name, want, (int)(vlen > 40 ? 40 : vlen), v);
}

/* Reads one value into base + o->offset. */
static int set_value(jw_exporter_t *exp, void *base, const jw_option_t *o, const char *v,
                     size_t vlen, jw_error_t *err) {
  char text[JW_EXPORTER_SPEC_MAX];
  char *field = (char *)base + o->offset;
  uint64_t n = 0;
  if (o->type == JW_OPT_FLAG) {
    if (v != NULL)
      return jw_error_set(err, JW_EUSAGE, 0, "--export",
                          "--export %s: %s: takes no value, got \"%.*s\"", exp->spec, o->name,
                          (int)(vlen > 40 ? 40 : vlen), v);
    *(int *)field = 1;
    return 0;
  }
  if (v == NULL) {
    return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %s: expected %s=%s", exp->spec,
                        o->name, o->name, placeholder(o));
  }
  memcpy(text, v, vlen);
  text[vlen] = '\0';
  switch (o->type) {
  case JW_OPT_SIZE:
    if (jw_parse_size(text, &n) != 0 || n < o->min || (o->max != 0 && n > o->max))
      return bad_value(exp, o, v, vlen, err);
    *(uint64_t *)field = n;
    return 0;
  case JW_OPT_DURATION: {
    /* jw_parse_duration takes no zero (a policy's limit is never 0); an
     * option may: "0", "0s", "0ms". */
    size_t z = strspn(text, "0");
    int zero = z > 0 && (text[z] == '\0' || strcmp(text + z, "s") == 0 ||
                         strcmp(text + z, "ms") == 0 || strcmp(text + z, "m") == 0);
    if (zero)
      n = 0;
    else if (jw_parse_duration(text, &n) != 0)
      return bad_value(exp, o, v, vlen, err);
    if (n < o->min || (o->max != 0 && n > o->max))
      return bad_value(exp, o, v, vlen, err);
    *(uint64_t *)field = n;
    return 0;
  }
  case JW_OPT_COUNT: {
    size_t i;
    if (vlen == 0 || vlen > 19)
      return bad_value(exp, o, v, vlen, err);
    for (i = 0; i < vlen; i++) {
      if (text[i] < '0' || text[i] > '9')
        return bad_value(exp, o, v, vlen, err);
      n = n * 10 + (uint64_t)(text[i] - '0');
    }
    if (n < o->min || (o->max != 0 && n > o->max))
      return bad_value(exp, o, v, vlen, err);
    *(uint64_t *)field = n;
    return 0;
  }
  case JW_OPT_CHOICE: {
    const char *c = o->values, *bar;
    int index = 0;
    for (; c != NULL; c = bar ? bar + 1 : NULL, index++) {
      size_t clen;
      bar = strchr(c, '|');
      clen = bar ? (size_t)(bar - c) : strlen(c);
      if (clen == vlen && memcmp(c, text, vlen) == 0) {
        *(int *)field = index;
        return 0;
      }
    }
    return bad_value(exp, o, v, vlen, err);
  }
  case JW_OPT_STRING: {
    char **s = (char **)field;
    if (vlen == 0)
      return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %s: expected %s=%.*s",
                          exp->spec, o->name, o->name, (int)placeholder_len(o, placeholder(o)),
                          placeholder(o));
    free(*s);
    *s = malloc(vlen + 1);
    if (*s == NULL)
      return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
    memcpy(*s, text, vlen + 1);
    return 0;
  }
  default:
    return jw_error_set(err, JW_EINVAL, 0, "--export", "--export %s: %s: option of unknown type",
                        exp->spec, o->name);
  }
}

/* "rotate=SIZE, keep=N, format=native|ecs|ocsf" */
static void option_list(const jw_exporter_vtable_t *vt, char *buf, size_t size) {
  const jw_option_t *tables[3], *o;
  int n = tables_of(vt, tables), t;
  size_t used = 0;
  buf[0] = '\0';
  for (t = 0; t < n; t++)
    for (o = tables[t]; o->name != NULL && used + 1 < size; o++) {
      int w = snprintf(buf + used, size - used, "%s%s%s%.*s", used ? ", " : "", o->name,
                       o->type == JW_OPT_FLAG ? "" : "=", (int)placeholder_len(o, placeholder(o)),
                       placeholder(o));
      if (w < 0)
        break;
      used += (size_t)w < size - used ? (size_t)w : size - used - 1;
    }
}

void jw__exporter_options_free(jw_exporter_t *exp) {
  const jw_option_t *tables[3], *o;
  int n, t;
  if (exp == NULL || exp->vt == NULL)
    return;
  n = tables_of(exp->vt, tables);
  for (t = 0; t < n; t++) {
    void *base = base_of(exp, tables[t]);
    if (base == NULL)
      continue;
    for (o = tables[t]; o->name != NULL; o++)
      if (o->type == JW_OPT_STRING) {
        char **s = (char **)((char *)base + o->offset);
        free(*s);
        *s = NULL;
      }
  }
  free(exp->config);
  exp->config = NULL;
}

int jw__exporter_parse(jw_exporter_t *exp, const char *after_kind, char **target, jw_error_t *err) {
  const jw_exporter_vtable_t *vt = exp->vt;
  const jw_option_t *tables[3], *o, *table;
  unsigned char seen[3][64];
  int n = tables_of(vt, tables), t, rc;
  const char *opts = NULL, *p;

  *target = NULL;
  memset(seen, 0, sizeof(seen));
  if (vt->config_size > 0 && (exp->config = calloc(1, vt->config_size)) == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
  /* The defaults, read as if written (a unit test checks every row's). */
  for (t = 0; t < n; t++)
    for (o = tables[t]; o->name != NULL; o++)
      if (o->def != NULL &&
          (rc = set_value(exp, base_of(exp, tables[t]), o, o->def, strlen(o->def), err)) != 0)
        return rc;
  /* The target: after ':' up to the first ',' that starts an option. */
  if (*after_kind == ':') {
    const char *start = after_kind + 1;
    size_t tlen;
    for (p = strchr(start, ','); p != NULL; p = strchr(p + 1, ','))
      if (starts_option(vt, p))
        break;
    tlen = p ? (size_t)(p - start) : strlen(start);
    opts = p;
    *target = malloc(tlen + 1);
    if (*target == NULL)
      return jw_error_set(err, JW_ENOMEM, 0, "--export", "out of memory");
    memcpy(*target, start, tlen);
    (*target)[tlen] = '\0';
  } else if (*after_kind == ',') {
    opts = after_kind;
  }
  /* The options, each once. */
  for (p = opts; p != NULL;) {
    const char *name = p + 1, *next = strchr(name, ','), *eq;
    size_t seg = next ? (size_t)(next - name) : strlen(name), nlen = word_len(name);
    int ti, oi;
    eq = nlen < seg && name[nlen] == '=' ? name + nlen : NULL;
    o = nlen > 0 && (eq != NULL || nlen == seg) ? find_option(vt, name, nlen, &table) : NULL;
    if (o == NULL) {
      char list[600];
      option_list(vt, list, sizeof(list));
      if (nlen == 0 || (eq == NULL && nlen != seg))
        return jw_error_set(err, JW_EUSAGE, 0, "--export",
                            "--export %s: expected NAME=VALUE after ',', got \"%.*s\" (options: "
                            "%s)",
                            exp->spec, (int)(seg > 40 ? 40 : seg), name, list);
      return jw_error_set(err, JW_EUSAGE, 0, "--export",
                          "--export %s: unknown option '%.*s' (expected %s)", exp->spec,
                          (int)(nlen > 40 ? 40 : nlen), name, list);
    }
    for (ti = 0; tables[ti] != table; ti++)
      ;
    oi = (int)(o - table);
    if (oi < 64 && seen[ti][oi]++)
      return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %s: given twice", exp->spec,
                          o->name);
    if (eq != NULL && (size_t)(seg - nlen - 1) >= JW_EXPORTER_SPEC_MAX)
      return jw_error_set(err, JW_EUSAGE, 0, "--export", "--export %s: %s: value too long",
                          exp->spec, o->name);
    rc = set_value(exp, base_of(exp, table), o, eq ? eq + 1 : NULL, eq ? seg - nlen - 1 : 0, err);
    if (rc != 0)
      return rc;
    p = next;
  }
  return 0;
}

/* --help's text, grown as needed. */
typedef struct {
  char *buf;
  size_t len, cap;
  int failed;
} text_t;

static void put(text_t *t, const char *s, size_t n) {
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = (t->cap ? t->cap * 2 : 4096) + n;
    char *b = realloc(t->buf, cap);
    if (b == NULL) {
      t->failed = 1;
      return;
    }
    t->buf = b;
    t->cap = cap;
  }
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

/* Words of s, wrapped at 79 columns, each line indented by `indent`;
 * the first line continues at column `col`. */
static void put_wrapped(text_t *t, const char *s, size_t col, size_t indent) {
  static const char spaces[] = "                    ";
  while (*s != '\0') {
    size_t w = strcspn(s, " ");
    if (col > indent && col + 1 + w > 79) {
      put(t, "\n", 1);
      put(t, spaces, indent);
      col = indent;
    } else if (col > indent) {
      put(t, " ", 1);
      col++;
    }
    put(t, s, w);
    col += w;
    s += w;
    while (*s == ' ')
      s++;
  }
  put(t, "\n", 1);
}

static void put_option(text_t *t, const jw_option_t *o) {
  char head[96], help[700];
  int long_choice = o->type == JW_OPT_CHOICE && strlen(o->values) > 24;
  const char *ph = long_choice ? o->values : placeholder(o);
  int n =
      snprintf(head, sizeof(head), "      ,%s%s%.*s", o->name, o->type == JW_OPT_FLAG ? "" : "=",
               (int)(long_choice ? 4 : placeholder_len(o, ph)), long_choice ? "NAME" : ph);
  char values[300] = "";
  if (long_choice) {
    size_t i, k = 0;
    for (i = 0; ph[i] != '\0' && k + 3 < sizeof(values); i++) {
      if (ph[i] == '|') {
        values[k++] = ',';
        values[k++] = ' ';
      } else {
        values[k++] = ph[i];
      }
    }
    values[k] = '\0';
  }
  snprintf(help, sizeof(help), "%s%s%s%s%s%s", o->help, long_choice ? "; one of " : "", values,
           o->def != NULL ? " (default " : "", o->def != NULL ? o->def : "",
           o->def != NULL ? ")" : "");
  put(t, head, (size_t)n);
  if (n + 2 > 40) {
    put(t, "\n", 1);
    put(t, "          ", 10);
    put_wrapped(t, help, 10, 10);
  } else {
    put(t, " ", 1);
    put_wrapped(t, help, (size_t)n + 1, 10);
  }
}

/* --help: one paragraph per kind, its options one per row. */
char *jw_exporter_help(void) {
  size_t i, count = 0;
  const jw_exporter_vtable_t *const *kinds = jw__exporter_registry(&count);
  text_t t = {NULL, 0, 0, 0};
  for (i = 0; i < count; i++) {
    const jw_exporter_vtable_t *vt = kinds[i];
    const jw_option_t *tables[3], *o;
    int n = tables_of(vt, tables), k;
    const char *usage = vt->usage ? vt->usage : vt->name;
    put(&t, "  ", 2);
    put(&t, usage, strlen(usage));
    put(&t, "\n      ", 7);
    put_wrapped(&t, vt->summary ? vt->summary : "", 6, 6);
    for (k = 0; k < n; k++)
      if (tables[k] != common_options) /* said once, below */
        for (o = tables[k]; o->name != NULL; o++)
          put_option(&t, o);
  }
  put(&t, "  every kind:\n", 14);
  for (i = 0; common_options[i].name != NULL; i++)
    put_option(&t, &common_options[i]);
  if (t.failed) {
    free(t.buf);
    return NULL;
  }
  return t.buf;
}

int jw__exporter_defaults_parse(const jw_exporter_vtable_t *vt, jw_error_t *err) {
  jw_exporter_t probe;
  char *target = NULL;
  int rc;
  memset(&probe, 0, sizeof(probe));
  probe.vt = vt;
  jw__strlcpy(probe.spec, vt->name, sizeof(probe.spec));
  rc = jw__exporter_parse(&probe, "", &target, err);
  free(target);
  jw__exporter_options_free(&probe);
  return rc;
}

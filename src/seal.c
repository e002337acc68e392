/* Forward-secure sealing: the key file, the per-stream MAC chain, and the
 * exporters' one call before a write (src/seal.h has the chain format).
 * Every hash is libsodium's BLAKE2b (crypto_generichash); keys are wiped
 * with sodium_memzero as soon as they are used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "seal.h"
#include "spool.h"

static const char evolve_msg[] = "jobwarden seal evolve v1";
static const char stream_msg[] = "jobwarden seal stream v1";
static const char keyid_msg[] = "jobwarden seal key id v1";

struct jw_seal_s {
  unsigned char key[JW_SEAL_KEY_BYTES]; /* k(i): wiped when the chain moves */
  unsigned char mac[JW_SEAL_MAC_BYTES]; /* M(i-1); zeros before the first line */
  uint64_t next;                        /* i of the next line */
  /* The chain as it was before the first line not yet known to be written
   * (jw_seal_commit wipes it, jw_seal_abort goes back to it): a line that
   * never reached its sink does not leave a hole in the chain. */
  unsigned char saved_key[JW_SEAL_KEY_BYTES];
  unsigned char saved_mac[JW_SEAL_MAC_BYTES];
  uint64_t saved_next;
  int has_saved;
  char run_id[33];
  char stream[JW_SEAL_STREAM_MAX];
  char key_id[33];
};

static int lib_ready(void) {
  return sodium_init() >= 0 ? 0 : -1; /* idempotent and thread-safe */
}

static void to_hex(const unsigned char *b, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[2 * n] = '\0';
}

static int from_hex(const char *s, unsigned char *out, size_t n) {
  size_t i;
  if (strlen(s) != 2 * n)
    return -1;
  for (i = 0; i < 2 * n; i++) {
    char c = s[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0)
      return -1;
    out[i / 2] = (unsigned char)(i % 2 ? (out[i / 2] | v) : v << 4);
  }
  return 0;
}

static void key_id_of(const unsigned char master[JW_SEAL_KEY_BYTES], char out[33]) {
  unsigned char h[32];
  crypto_generichash(h, sizeof(h), (const unsigned char *)keyid_msg, sizeof(keyid_msg) - 1, master,
                     JW_SEAL_KEY_BYTES);
  to_hex(h, 16, out);
}

int jw_seal_key_generate(jw_seal_key_t *key) {
  if (lib_ready() != 0)
    return JW_ESYS;
  randombytes_buf(key->master, sizeof(key->master));
  key_id_of(key->master, key->key_id);
  return 0;
}

void jw_seal_key_wipe(jw_seal_key_t *key) {
  sodium_memzero(key, sizeof(*key));
}

int jw_seal_key_text(const jw_seal_key_t *key, char *buf, size_t size) {
  char hex[2 * JW_SEAL_KEY_BYTES + 1];
  int n;
  to_hex(key->master, JW_SEAL_KEY_BYTES, hex);
  n = snprintf(buf, size,
               "{\"jobwarden_seal_key\":%d,\"alg\":\"%s\",\"key_id\":\"%s\",\"key\":\"%s\"}\n",
               JW_SEAL_VERSION, JW_SEAL_ALG, key->key_id, hex);
  sodium_memzero(hex, sizeof(hex));
  return n > 0 && (size_t)n < size ? 0 : JW_EINVAL;
}

int jw_seal_key_write(const char *path, const jw_seal_key_t *key, jw_error_t *err) {
  char text[256];
  int rc = jw_seal_key_text(key, text, sizeof(text));
  if (rc != 0)
    return jw_error_set(err, rc, 0, path, "%s: cannot render the key", path);
  rc = jw__create_secret_file(path, text, strlen(text), err);
  sodium_memzero(text, sizeof(text));
  return rc;
}

int jw_seal_key_read(const char *path, jw_seal_key_t *key, jw_error_t *err) {
  FILE *f;
  char text[512];
  size_t n;
  json_t *j = NULL;
  json_error_t je;
  const char *hex, *id;
  int rc = 0;
  memset(key, 0, sizeof(*key));
  if (lib_ready() != 0)
    return jw_error_set(err, JW_ESYS, 0, path, "%s: libsodium could not start", path);
  f = jw__fopen_utf8(path, "rb");
  if (f == NULL)
    return jw_error_set(err, JW_ENOENT, 0, path, "%s: cannot open the key file: %s", path,
                        strerror(errno));
  n = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  text[n] = '\0';
  if (n == sizeof(text) - 1) {
    rc = jw_error_set(err, JW_EINVAL, 0, path,
                      "%s: not a jobwarden seal key (longer than a key file)", path);
    goto done;
  }
  j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
  if (j == NULL || !json_is_object(j)) {
    rc = jw_error_set(err, JW_EINVAL, 0, path,
                      "%s: not a jobwarden seal key (expected the JSON line that "
                      "'jobwarden seal-key new' writes)",
                      path);
    goto done;
  }
  if (json_integer_value(json_object_get(j, "jobwarden_seal_key")) != JW_SEAL_VERSION ||
      !json_is_integer(json_object_get(j, "jobwarden_seal_key"))) {
    rc = jw_error_set(err, JW_EINVAL, 0, path,
                      "%s: jobwarden_seal_key: expected version %d (a key of another version "
                      "or not a key file)",
                      path, JW_SEAL_VERSION);
    goto done;
  }
  hex = json_string_value(json_object_get(j, "key"));
  id = json_string_value(json_object_get(j, "key_id"));
  if (hex == NULL || from_hex(hex, key->master, JW_SEAL_KEY_BYTES) != 0) {
    rc = jw_error_set(err, JW_EINVAL, 0, path, "%s: key: expected %d hex digits", path,
                      2 * JW_SEAL_KEY_BYTES);
    goto done;
  }
  key_id_of(key->master, key->key_id);
  if (id == NULL || strcmp(id, key->key_id) != 0) {
    rc = jw_error_set(err, JW_EINVAL, 0, path,
                      "%s: key_id does not belong to the key (the file was edited)", path);
    goto done;
  }
done:
  if (j != NULL) {
    /* jansson keeps its own copy of the hex text: overwrite it in place. */
    json_t *k = json_object_get(j, "key");
    if (json_is_string(k))
      sodium_memzero((char *)json_string_value(k), json_string_length(k));
    json_decref(j);
  }
  sodium_memzero(text, sizeof(text));
  if (rc != 0)
    jw_seal_key_wipe(key);
  return rc;
}

/* k0 of `stream` of `run_id` from the master key (also a root's key). */
static void stream_key(const jw_seal_key_t *key, const char *run_id, const char *stream,
                       unsigned char out[JW_SEAL_KEY_BYTES]) {
  crypto_generichash_state st;
  static const unsigned char nul = 0;
  crypto_generichash_init(&st, key->master, JW_SEAL_KEY_BYTES, JW_SEAL_KEY_BYTES);
  crypto_generichash_update(&st, (const unsigned char *)stream_msg, sizeof(stream_msg) - 1);
  crypto_generichash_update(&st, &nul, 1);
  crypto_generichash_update(&st, (const unsigned char *)run_id, strlen(run_id));
  crypto_generichash_update(&st, &nul, 1);
  crypto_generichash_update(&st, (const unsigned char *)stream, strlen(stream));
  crypto_generichash_final(&st, out, JW_SEAL_KEY_BYTES);
  sodium_memzero(&st, sizeof(st));
}

static int seal_alloc(const char *run_id, const char *stream, const char *key_id, jw_seal_t **out) {
  jw_seal_t *s;
  *out = NULL;
  if (lib_ready() != 0)
    return JW_ESYS;
  if (strlen(run_id) >= sizeof(s->run_id) || strlen(stream) >= sizeof(s->stream))
    return JW_EINVAL;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return JW_ENOMEM;
  jw__strlcpy(s->run_id, run_id, sizeof(s->run_id));
  jw__strlcpy(s->stream, stream, sizeof(s->stream));
  jw__strlcpy(s->key_id, key_id, sizeof(s->key_id));
  *out = s;
  return 0;
}

int jw_seal_new(const jw_seal_key_t *key, const char *run_id, const char *stream, jw_seal_t **out) {
  int rc = seal_alloc(run_id, stream, key->key_id, out);
  if (rc == 0)
    stream_key(key, run_id, stream, (*out)->key);
  return rc;
}

int jw_seal_child(const jw_seal_t *root, unsigned long n, jw_seal_t **out) {
  char stream[JW_SEAL_STREAM_MAX + 24];
  jw_seal_key_t k;
  int rc;
  snprintf(stream, sizeof(stream), "%s/%lu", root->stream, n);
  if (strlen(stream) >= JW_SEAL_STREAM_MAX)
    return JW_EINVAL;
  /* The root's key plays the master for its sub-streams; key_id stays the
   * run's (the verifier derives the root the same way). */
  memcpy(k.master, root->key, sizeof(k.master));
  jw__strlcpy(k.key_id, root->key_id, sizeof(k.key_id));
  rc = seal_alloc(root->run_id, stream, root->key_id, out);
  if (rc == 0)
    stream_key(&k, root->run_id, stream, (*out)->key);
  sodium_memzero(&k, sizeof(k));
  return rc;
}

void jw_seal_free(jw_seal_t *s) {
  if (s == NULL)
    return;
  sodium_memzero(s, sizeof(*s));
  free(s);
}

uint64_t jw_seal_next_index(const jw_seal_t *s) {
  return s->next;
}

int jw_seal_line(jw_seal_t *s, const char *line, size_t len, int flags, char **out,
                 size_t *out_len) {
  char head[320];
  size_t body, hlen, nl = 0;
  char *buf;
  unsigned char mac[JW_SEAL_MAC_BYTES];
  int n;

  *out = NULL;
  *out_len = 0;
  if (len > 0 && line[len - 1] == '\n')
    nl = 1;
  body = len - nl;
  if (body > 0 && line[body - 1] == '\r')
    return JW_EINVAL;
  if (body < 2 || line[0] != '{' || line[body - 1] != '}')
    return JW_EINVAL;
  /* `,"seal":{...,"mac":"` replaces the closing brace; "{}" has no member
   * to put a comma after. */
  if (s->next == 0 || (flags & JW_SEAL_PARAMS))
    n = snprintf(
        head, sizeof(head),
        "%s\"seal\":{\"v\":%d,\"alg\":\"%s\",\"key_id\":\"%s\",\"run\":\"%s\",\"s\":\"%s\","
        "\"i\":%llu%s,\"mac\":\"",
        body == 2 ? "" : ",", JW_SEAL_VERSION, JW_SEAL_ALG, s->key_id, s->run_id, s->stream,
        (unsigned long long)s->next, (flags & JW_SEAL_END) ? ",\"end\":true" : "");
  else
    n = snprintf(head, sizeof(head),
                 "%s\"seal\":{\"run\":\"%s\",\"s\":\"%s\",\"i\":%llu%s,\"mac\":\"",
                 body == 2 ? "" : ",", s->run_id, s->stream, (unsigned long long)s->next,
                 (flags & JW_SEAL_END) ? ",\"end\":true" : "");
  if (n <= 0 || (size_t)n >= sizeof(head))
    return JW_EINVAL;
  hlen = (size_t)n;
  buf = malloc(body - 1 + hlen + 2 * JW_SEAL_MAC_BYTES + 3 + nl + 1);
  if (buf == NULL)
    return JW_ENOMEM;
  memcpy(buf, line, body - 1);
  memcpy(buf + body - 1, head, hlen);
  /* M(i) over M(i-1) and everything written before the MAC's digits. */
  jw__seal_mac(s->key, s->mac, buf, body - 1 + hlen, mac);
  to_hex(mac, JW_SEAL_MAC_BYTES, buf + body - 1 + hlen);
  memcpy(buf + body - 1 + hlen + 2 * JW_SEAL_MAC_BYTES, "\"}}", 3);
  *out_len = body - 1 + hlen + 2 * JW_SEAL_MAC_BYTES + 3;
  if (nl)
    buf[(*out_len)++] = '\n';
  buf[*out_len] = '\0';
  *out = buf;
  if (!s->has_saved) {
    memcpy(s->saved_key, s->key, sizeof(s->key));
    memcpy(s->saved_mac, s->mac, sizeof(s->mac));
    s->saved_next = s->next;
    s->has_saved = 1;
  }
  /* The chain moves on: k(i+1) from k(i), which is gone once the line is
   * written (jw_seal_commit). */
  memcpy(s->mac, mac, sizeof(mac));
  jw__seal_evolve(s->key);
  s->next++;
  return 0;
}

void jw_seal_commit(jw_seal_t *s) {
  if (s == NULL || !s->has_saved)
    return;
  sodium_memzero(s->saved_key, sizeof(s->saved_key));
  sodium_memzero(s->saved_mac, sizeof(s->saved_mac));
  s->has_saved = 0;
}

void jw_seal_abort(jw_seal_t *s) {
  if (s == NULL || !s->has_saved)
    return;
  memcpy(s->key, s->saved_key, sizeof(s->key));
  memcpy(s->mac, s->saved_mac, sizeof(s->mac));
  s->next = s->saved_next;
  sodium_memzero(s->saved_key, sizeof(s->saved_key));
  sodium_memzero(s->saved_mac, sizeof(s->saved_mac));
  s->has_saved = 0;
}

void jw_exporter_sealed(jw_exporter_t *exp, int written) {
  if (exp->seal == NULL)
    return;
  if (written)
    jw_seal_commit(exp->seal);
  else
    jw_seal_abort(exp->seal);
}

int jw_exporter_seal(jw_exporter_t *exp, const char *line, size_t len, const jw_event_t *ev,
                     int flags, char **buf, const char **wline, size_t *wlen) {
  int rc;
  *buf = NULL;
  *wline = line;
  *wlen = len;
  if (exp->seal == NULL)
    return 0;
  if (ev != NULL && ev->kind == JW_EVENT_JOB_END)
    flags |= JW_SEAL_END;
  rc = jw_seal_line(exp->seal, line, len, flags, buf, wlen);
  if (rc != 0) {
    *wline = NULL;
    *wlen = 0;
    return rc;
  }
  *wline = *buf;
  return 0;
}

/* The line to the sink: a network sink's to its spool (src/spool.h), from
 * where its sender delivers it; others' to export_line. */
static int hand_over(jw_exporter_t *exp, const char *line, size_t len, const jw_event_t *ev,
                     jw_error_t *err) {
  if (exp->spool != NULL)
    return jw__spool_append(exp, line, len, ev != NULL && ev->kind == JW_EVENT_VIOLATION, err);
  return exp->vt->export_line(exp, line, len, ev, err);
}

int jw__exporter_write(jw_exporter_t *exp, const char *line, size_t len, const jw_event_t *ev,
                       jw_error_t *err) {
  char *buf = NULL;
  const char *w;
  size_t wlen;
  int rc;
  if (exp->seal == NULL || exp->vt->seals_itself)
    return hand_over(exp, line, len, ev, err);
  rc = jw_exporter_seal(exp, line, len, ev, 0, &buf, &w, &wlen);
  if (rc != 0)
    return jw_error_set(err, rc, 0, exp->spec, "%s: cannot seal the line (%s)", exp->spec,
                        jw_strerror(rc));
  rc = hand_over(exp, w, wlen, ev, err);
  jw_exporter_sealed(exp, rc == 0);
  free(buf);
  return rc;
}

/* ---- what the verifier recomputes (src/verify.c) ----------------------- */

void jw__seal_k0(const jw_seal_key_t *key, const char *run_id, const char *stream,
                 unsigned char out[JW_SEAL_KEY_BYTES]) {
  const char *slash = strchr(stream, '/');
  if (slash == NULL) {
    stream_key(key, run_id, stream, out);
  } else {
    /* "S/R": a reader's chain of sink S, from the sink's root key. */
    char parent[JW_SEAL_STREAM_MAX];
    jw_seal_key_t root;
    size_t n = (size_t)(slash - stream);
    if (n >= sizeof(parent))
      n = sizeof(parent) - 1;
    memcpy(parent, stream, n);
    parent[n] = '\0';
    stream_key(key, run_id, parent, root.master);
    stream_key(&root, run_id, stream, out);
    sodium_memzero(&root, sizeof(root));
  }
}

void jw__seal_mac(const unsigned char key[JW_SEAL_KEY_BYTES],
                  const unsigned char prev[JW_SEAL_MAC_BYTES], const char *prefix, size_t len,
                  unsigned char out[JW_SEAL_MAC_BYTES]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key, JW_SEAL_KEY_BYTES, JW_SEAL_MAC_BYTES);
  crypto_generichash_update(&st, prev, JW_SEAL_MAC_BYTES);
  crypto_generichash_update(&st, (const unsigned char *)prefix, len);
  crypto_generichash_final(&st, out, JW_SEAL_MAC_BYTES);
  sodium_memzero(&st, sizeof(st));
}

void jw__seal_evolve(unsigned char key[JW_SEAL_KEY_BYTES]) {
  unsigned char next[JW_SEAL_KEY_BYTES];
  crypto_generichash(next, sizeof(next), (const unsigned char *)evolve_msg, sizeof(evolve_msg) - 1,
                     key, JW_SEAL_KEY_BYTES);
  memcpy(key, next, sizeof(next));
  sodium_memzero(next, sizeof(next));
}

int jw__seal_hex(const char *s, unsigned char *out, size_t n) {
  return from_hex(s, out, n);
}

int jw__seal_equal(const unsigned char *a, const unsigned char *b, size_t n) {
  return sodium_memcmp(a, b, n) == 0;
}

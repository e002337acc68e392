/* placeholder */
#include <sodium.h>

#include "seal.h"

/* Stubs until the sealing lands (the lead's src/seal.c replaces this
 * file): a key file is never accepted, saying why. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int jw_seal_key_read(const char *path, jw_seal_key_t *key, jw_error_t *err) {
  FILE *f = jw__fopen_utf8(path, "rb");
  memset(key, 0, sizeof(*key));
  err->code = JW_EINVAL;
  if (f == NULL) {
    snprintf(err->text, sizeof(err->text), "cannot open: %s", strerror(errno));
    return JW_EINVAL;
  }
  fclose(f);
  snprintf(err->text, sizeof(err->text),
           "not a jobwarden seal key file (this build cannot read "
           "key files yet)");
  return JW_EINVAL;
}

void jw_seal_key_wipe(jw_seal_key_t *key) {
  sodium_memzero(key, sizeof(*key));
}

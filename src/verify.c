/* `jobwarden verify`: placeholder until the verifier lands (this session). */
#include "cli.h"
#include "commands.h"
#include "seal.h"

int jw_cmd_verify(int argc, char **argv) {
  (void)argc;
  (void)argv;
  jw_errf("verify: not built yet");
  return JW_EXIT_JW_ERROR;
}
int jw_cmd_seal_key(int argc, char **argv) {
  (void)argc;
  (void)argv;
  jw_errf("seal-key: not built yet");
  return JW_EXIT_JW_ERROR;
}
void *jw_verify_files(const char *const *files, int n, const jw_seal_key_t *key, char *errbuf,
                      size_t errsize) {
  (void)files;
  (void)n;
  (void)key;
  (void)errbuf;
  (void)errsize;
  return 0;
}

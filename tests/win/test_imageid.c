/* wine.real.imageid: executable identity (src/win/imageid.c) on real files
 * under Wine: CNG's SHA-256 against coreutils' sha256sum of the same files
 * (computed natively by run_imageid_test.sh and passed as arguments), the
 * version resource of a helper image built with one (jwtestid.rc), the
 * Authenticode status Wine answers for an unsigned image, the cache key
 * (a copy, a hard link, a rewrite), the size cap, a missing file, the
 * queue bound, and every counter exactly.
 *
 * argv: <events dir> <work dir> <jwtestid.exe> <sha256 of this exe>
 *       <size of this exe> <sha256 of jwtestid.exe> <size of jwtestid.exe>
 *       <sha256 of work\seed.txt> <sha256 of work\big.exe> <its size>
 * Every path is a Linux path (Wine maps it through drive Z:). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <wincrypt.h>
#include <wintrust.h>

#include "harness.h"
#include "helpers.h"
#include "internal.h"
#include "win/imageid.h"

#define WAIT_MS 120000
#define FLOOD   (JW_IMAGEID_QUEUE_MAX + 5)

static wchar_t g_work[MAX_PATH], g_self[MAX_PATH], g_helper[MAX_PATH];
static const char *g_self_sha, *g_helper_sha, *g_seed_sha, *g_big_sha;
static unsigned long long g_self_size, g_helper_size, g_big_size;

/* Results the callback delivered, by cookie. */
#define SLOTS 300
static jw__imageid_t g_res[SLOTS];
static int g_got[SLOTS];
static LONG g_calls;
static LARGE_INTEGER g_done_at[SLOTS];

static void on_result(void *ctx, uint64_t cookie, const jw__imageid_t *r) {
  (void)ctx;
  InterlockedIncrement(&g_calls);
  if (cookie < SLOTS) {
    QueryPerformanceCounter(&g_done_at[cookie]);
    g_res[cookie] = *r;
    g_got[cookie]++;
  }
}

/* The concurrency case: results only counted and checked. */
static jw__imageid_svc_t *g_conc;
static LONG g_cached, g_bad;

static void on_count(void *ctx, uint64_t cookie, const jw__imageid_t *r) {
  (void)ctx;
  (void)cookie;
  InterlockedIncrement(&g_calls);
  if (!r->has_sha256 || strcmp(r->sha256, g_seed_sha) != 0)
    InterlockedIncrement(&g_bad);
}

static void work_path(wchar_t *out, const wchar_t *name);

static DWORD WINAPI conc_main(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 15; i++) {
    wchar_t name[32], f[MAX_PATH];
    jw__imageid_t r;
    int rc;
    swprintf(name, 32, L"flood-%03d.txt", 20 + i);
    work_path(f, name);
    rc = jw__imageid_request(g_conc, f, (uint64_t)i, &r);
    if (rc == JW_IMAGEID_CACHED) {
      InterlockedIncrement(&g_cached);
      if (strcmp(r.sha256, g_seed_sha) != 0)
        InterlockedIncrement(&g_bad);
    } else if (rc != JW_IMAGEID_QUEUED) {
      InterlockedIncrement(&g_bad);
    }
  }
  return 0;
}

static int to_full(const char *in, wchar_t *out) {
  wchar_t w[MAX_PATH];
  DWORD k;
  if (!MultiByteToWideChar(CP_UTF8, 0, in, -1, w, MAX_PATH))
    return -1;
  k = GetFullPathNameW(w, MAX_PATH, out, NULL);
  return k == 0 || k >= MAX_PATH ? -1 : 0;
}

static void work_path(wchar_t *out, const wchar_t *name) {
  swprintf(out, MAX_PATH, L"%ls\\%ls", g_work, name);
}

/* Writes len bytes of data as the whole content of path (replacing it in
 * place: same file, new size and last write time). */
static int rewrite(const wchar_t *path, const void *data, DWORD len) {
  HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, TRUNCATE_EXISTING, 0, NULL);
  DWORD put = 0;
  BOOL ok;
  if (h == INVALID_HANDLE_VALUE)
    return -1;
  ok = WriteFile(h, data, len, &put, NULL) && put == len;
  CloseHandle(h);
  return ok ? 0 : -1;
}

static void *read_all(const wchar_t *path, DWORD *len) {
  HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
  DWORD size, got = 0;
  void *buf = NULL;
  *len = 0;
  if (h == INVALID_HANDLE_VALUE)
    return NULL;
  size = GetFileSize(h, NULL);
  buf = malloc(size ? size : 1);
  if (buf != NULL && (!ReadFile(h, buf, size, &got, NULL) || got != size)) {
    free(buf);
    buf = NULL;
  }
  CloseHandle(h);
  *len = size;
  return buf;
}

/* The fields of an image without a version resource that Wine 8 reports
 * unsigned (docs/platform-support.md, "Executable identity"). */
static void check_unsigned_no_pe(const jw__imageid_t *r) {
  CHECK_INT(r->has_pe, 0);
  CHECK_STR(jw__imageid_unavailable(r, "pe"), "image has no version resource");
  CHECK_INT(r->has_code_signature, 1);
  CHECK_INT(r->code_signature.exists, 0);
  CHECK_STR(r->code_signature.status, "unsigned");
  CHECK_STR(r->code_signature.subject_name, "");
  CHECK_INT(r->code_signature.trusted, 0);
  CHECK(jw__imageid_unavailable(r, "code_signature") == NULL);
}

static void check_helper_pe(const jw__imageid_t *r) {
  CHECK_INT(r->has_pe, 1);
  CHECK_STR(r->original_file_name, "jwtestid.exe");
  CHECK_STR(r->company, "jobwarden tests");
  CHECK_STR(r->product, "jobwarden");
  CHECK_STR(r->description, "jobwarden identity test image");
  CHECK_STR(r->file_version, "1.2.3.4");
  CHECK(jw__imageid_unavailable(r, "pe") == NULL);
}

static double ms_since(LARGE_INTEGER t0, LARGE_INTEGER t1) {
  LARGE_INTEGER f;
  QueryPerformanceFrequency(&f);
  return (double)(t1.QuadPart - t0.QuadPart) * 1000.0 / (double)f.QuadPart;
}

/* Requests path under cookie and waits for the worker; returns the
 * request's answer, the result in *r, and the time from the request to
 * the callback in *ms (QUEUED only). */
static int request_wait(jw__imageid_svc_t *s, const wchar_t *path, uint64_t cookie,
                        jw__imageid_t *r, double *ms) {
  LARGE_INTEGER t0;
  int rc;
  QueryPerformanceCounter(&t0);
  rc = jw__imageid_request(s, path, cookie, r);
  if (rc == JW_IMAGEID_QUEUED) {
    CHECK_INT(jw__imageid_flush(s, WAIT_MS), 0);
    CHECK_INT(g_got[cookie], 1);
    *r = g_res[cookie];
    if (ms != NULL)
      *ms = ms_since(t0, g_done_at[cookie]);
  }
  return rc;
}

/* Adds the DER certificate at path to the current user's Root store (the
 * test's own root, removed again by untrust_root). Returns the added
 * certificate's context (owner: the caller, via untrust_root) or NULL. */
static PCCERT_CONTEXT trust_root(const char *path) {
  wchar_t w[MAX_PATH];
  DWORD len;
  void *der;
  HCERTSTORE store;
  PCCERT_CONTEXT added = NULL;
  if (to_full(path, w) != 0 || (der = read_all(w, &len)) == NULL)
    return NULL;
  store = CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_LOCAL_MACHINE, L"Root");
  if (store != NULL) {
    if (!CertAddEncodedCertificateToStore(store, X509_ASN_ENCODING, der, len,
                                          CERT_STORE_ADD_REPLACE_EXISTING, &added))
      added = NULL;
    CertCloseStore(store, 0);
  }
  free(der);
  return added;
}

/* Removes the root trust_root added (frees ctx). */
static int untrust_root(PCCERT_CONTEXT ctx) {
  /* CertDeleteCertificateFromStore frees the context, even on failure. */
  return ctx != NULL && CertDeleteCertificateFromStore(ctx) ? 0 : -1;
}

/* The hash coreutils' sha256sum gave for `name` in work\signed\SHA256SUMS
 * (copied into out, 65 bytes), or "" when it is not listed. */
static void signed_sum(const char *name, char out[65]) {
  wchar_t w[MAX_PATH];
  DWORD len;
  char *text, *line;
  out[0] = '\0';
  work_path(w, L"signed\\SHA256SUMS");
  text = read_all(w, &len);
  if (text == NULL)
    return;
  text = realloc(text, len + 1);
  text[len] = '\0';
  for (line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
    if (strlen(line) > 66 && strcmp(line + 66, name) == 0)
      snprintf(out, 65, "%.64s", line);
  free(text);
}

/* One signed image: its hash against sha256sum, and what the identity
 * says of its signature. subject NULL: the subject is named unavailable. */
static void check_signed(const char *name, const char *status, const char *subject) {
  wchar_t w[MAX_PATH], wn[64];
  char want[65];
  jw__imageid_t r;
  int before = jw_test_failures;
  MultiByteToWideChar(CP_UTF8, 0, name, -1, wn, 64);
  swprintf(w, MAX_PATH, L"%ls\\signed\\%ls", g_work, wn);
  signed_sum(name, want);
  CHECK_INT(strlen(want), 64);
  CHECK_INT(jw__imageid_compute(w, 0, &r), 0);
  CHECK_STR(r.sha256, want);
  check_helper_pe(&r);
  CHECK_INT(r.has_code_signature, 1);
  CHECK_INT(r.code_signature.exists, 1);
  CHECK_STR(r.code_signature.status, status);
  CHECK_INT(r.code_signature.trusted, strcmp(status, "valid") == 0);
  if (subject != NULL) {
    CHECK_STR(r.code_signature.subject_name, subject);
    CHECK(jw__imageid_unavailable(&r, "code_signature.subject_name") == NULL);
  } else {
    CHECK_STR(r.code_signature.subject_name, "");
    CHECK_STR(jw__imageid_unavailable(&r, "code_signature.subject_name"),
              "the signer's certificate could not be read");
  }
  CHECK(jw__imageid_unavailable(&r, "code_signature") == NULL);
  if (jw_test_failures != before)
    fprintf(stderr, "    ^ in signed image %s\n", name);
}

/* wine.injected.imageid: the mapping of WinVerifyTrust's answers and the
 * signer chain's status, for the answers Wine cannot give (a success
 * with a clean chain needs a root Wine trusts: only the host's). */
static void expect_map(long st, unsigned long last, unsigned long chain, int have_chain,
                       const char *status, const char *reason) {
  jw__imageid_t r;
  int before = jw_test_failures;
  memset(&r, 0, sizeof r);
  CHECK_INT(jw__imageid_map_trust(st, last, chain, have_chain, &r), status != NULL);
  if (status != NULL) {
    CHECK_INT(r.has_code_signature, 1);
    CHECK_INT(r.code_signature.exists, 1);
    CHECK_STR(r.code_signature.status, status);
    CHECK_INT(r.code_signature.trusted, strcmp(status, "valid") == 0);
    CHECK_INT(r.n_unavailable, 0);
  } else {
    CHECK_INT(r.has_code_signature, 0);
    CHECK_STR(jw__imageid_unavailable(&r, "code_signature"), reason);
    CHECK_INT(r.n_unavailable, 1);
  }
  if (jw_test_failures != before)
    fprintf(stderr, "    ^ in mapping st=0x%08lX chain=0x%08lX\n", (unsigned long)st, chain);
}

/* The signature verdicts mapped from what WinVerifyTrust and the chain
 * answer (injected answers). */
static void test_trust_map(void) {
  expect_map(0, 0, 0, 1, "valid", NULL);
  /* Without revocation checks, "revocation unknown" says nothing. */
  expect_map(0, 0, CERT_TRUST_REVOCATION_STATUS_UNKNOWN | CERT_TRUST_IS_OFFLINE_REVOCATION, 1,
             "valid", NULL);
  expect_map(0, 0, 0, 0, NULL,
             "WinVerifyTrust answered success without a signer chain to confirm it");
  expect_map(0, 0, CERT_TRUST_IS_NOT_TIME_VALID, 1, "expired", NULL);
  expect_map(0, 0, CERT_TRUST_IS_REVOKED, 1, "revoked", NULL);
  expect_map(0, 0, CERT_TRUST_IS_NOT_SIGNATURE_VALID | CERT_TRUST_IS_UNTRUSTED_ROOT, 1,
             "bad_signature", NULL);
  /* What Wine 8 answers for the signed images of wine.real.imageid:
   * success, with these chains. */
  expect_map(0, 0xEA, CERT_TRUST_IS_UNTRUSTED_ROOT, 1, "untrusted", NULL);
  expect_map(0, 0xEA, CERT_TRUST_IS_PARTIAL_CHAIN, 1, "untrusted", NULL);
  expect_map(0, 0xEA, CERT_TRUST_IS_PARTIAL_CHAIN | CERT_TRUST_IS_NOT_TIME_VALID, 1, "untrusted",
             NULL);
  expect_map(0, 0, CERT_TRUST_IS_CYCLIC, 1, "untrusted", NULL);
  expect_map(0, 0, CERT_TRUST_IS_EXPLICIT_DISTRUST, 1, "untrusted", NULL);
  expect_map(0, 0, CERT_TRUST_IS_NOT_VALID_FOR_USAGE, 1, NULL,
             "WinVerifyTrust answered success but the signer's chain has errors 0x00000010");
  /* Windows' own answers. */
  expect_map(CERT_E_EXPIRED, 0, 0, 0, "expired", NULL);
  expect_map(CERT_E_REVOKED, 0, 0, 0, "revoked", NULL);
  expect_map(TRUST_E_BAD_DIGEST, 0, 0, 0, "bad_signature", NULL);
  expect_map(CERT_E_UNTRUSTEDROOT, 0, 0, 0, "untrusted", NULL);
  expect_map(CERT_E_CHAINING, 0, 0, 0, "untrusted", NULL);
  /* TRUST_E_NOSIGNATURE means "unsigned" only with that same last error
   * (the caller checks it before a catalog lookup); otherwise the file
   * could not be read: never "unsigned". */
  expect_map(TRUST_E_NOSIGNATURE, 0x80070005, 0, 0, NULL,
             "WinVerifyTrust answered TRUST_E_NOSIGNATURE with error 0x80070005: a signature "
             "that cannot be read, not a missing one");
  expect_map(TRUST_E_SUBJECT_FORM_UNKNOWN, TRUST_E_SUBJECT_FORM_UNKNOWN, 0, 0, NULL,
             "WinVerifyTrust answered 0x800B0003");
  expect_map(TRUST_E_PROVIDER_UNKNOWN, 0, 0, 0, NULL, "WinVerifyTrust answered 0x800B0001");
  expect_map(TRUST_E_CERT_SIGNATURE, 0, 0, 0, NULL, "WinVerifyTrust answered 0x80096004");
}

/* What a drive letter links to (QueryDosDeviceW's answer, injected):
 * only a disk volume is local; the monitor opens nothing else itself. And
 * what this system answers for the drives here (real). */
static void test_dos_target(void) {
  static const wchar_t *const drives[] = {L"C:", L"Z:"};
  wchar_t target[MAX_PATH + 64];
  int k;
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\HarddiskVolume3"), 1);
  CHECK_INT(jw__imageid_dos_target_local(L"\\device\\harddiskvolume12"), 1);
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\Harddisk0\\DR0"), 1);
  CHECK_INT(jw__imageid_dos_target_local(
                L"\\Device\\LanmanRedirector\\;Z:00000000000a1b2c\\server\\share"),
            0);
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\Mup\\;RdpDr\\;:1\\tsclient\\C"), 0);
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\WebDavRedirector\\;W:0000\\host\\dav"), 0);
  CHECK_INT(jw__imageid_dos_target_local(L"\\??\\UNC\\server\\share"), 0); /* SUBST of a share */
  CHECK_INT(jw__imageid_dos_target_local(L"\\??\\C:\\work"), 0);           /* SUBST: not resolved */
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\CdRom0"), 0);
  CHECK_INT(jw__imageid_dos_target_local(L"\\Device\\Harddis"), 0);
  CHECK_INT(jw__imageid_dos_target_local(L""), 0);
  CHECK_INT(jw__imageid_dos_target_local(NULL), 0);
  /* This system's C: and Z: (Wine 8: \\Device\\HarddiskVolume1 and 2). */
  for (k = 0; k < 2; k++) {
    DWORD n = QueryDosDeviceW(drives[k], target, MAX_PATH + 64);
    CHECK(n > 0);
    if (n > 0) {
      printf("%ls -> %ls\n", drives[k], target);
      CHECK_INT(jw__imageid_dos_target_local(target), 1);
    }
  }
}

static const jw_test_case_t injected_cases[] = {
    {"trust_map", test_trust_map, 60},
    {"dos_target", test_dos_target, 60},
};

/* `--identify [--trust-root DER] PATH...`: prints what jw__imageid_compute answers for each
 * file (the measurements in docs/platform-support.md were made so). */
static int identify_main(int argc, char **argv) {
  int i = 2, k;
  PCCERT_CONTEXT root = NULL;
  if (argc > 3 && strcmp(argv[2], "--trust-root") == 0) {
    root = trust_root(argv[3]);
    printf("root trusted: %s\n", root != NULL ? "yes" : "no");
    i = 4;
  }
  for (; i < argc; i++) {
    wchar_t w[MAX_PATH];
    jw__imageid_t r;
    int rc;
    if (to_full(argv[i], w) != 0)
      return 2;
    rc = jw__imageid_compute(w, 0, &r);
    printf("%s: rc=%d sha256=%s size=%llu pe=%d ofn=\"%s\" company=\"%s\" product=\"%s\" "
           "description=\"%s\" version=\"%s\" signature=%d exists=%d status=\"%s\" "
           "subject=\"%s\" trusted=%d\n",
           argv[i], rc, r.has_sha256 ? r.sha256 : "-", (unsigned long long)r.image_size, r.has_pe,
           r.original_file_name, r.company, r.product, r.description, r.file_version,
           r.has_code_signature, r.code_signature.exists, r.code_signature.status,
           r.code_signature.subject_name, r.code_signature.trusted);
    for (k = 0; k < r.n_unavailable; k++)
      printf("  unavailable %s: %s\n", r.unavailable[k].field, r.unavailable[k].reason);
  }
  if (root != NULL)
    printf("root removed: %s\n", untrust_root(root) == 0 ? "yes" : "no");
  return 0;
}

/* The flood files section 7 makes (copies of seed.txt), for a case run
 * alone: copied when missing, never replaced. */
static void ensure_flood_files(void) {
  wchar_t seed[MAX_PATH], f[MAX_PATH], name[32];
  int i;
  work_path(seed, L"seed.txt");
  for (i = 0; i < FLOOD; i++) {
    swprintf(name, 32, L"flood-%03d.txt", i);
    work_path(f, name);
    CopyFileW(seed, f, TRUE);
  }
}

/* 1-8: one service: misses, hits, the queue bound and the timing; its
 * counters add up over all of them. */
static void test_service(void) {
  jw__imageid_svc_t *s = NULL;
  jw__imageid_counters_t c;
  jw__imageid_t r, r2;
  wchar_t copy[MAX_PATH], link[MAX_PATH], missing[MAX_PATH], rw[MAX_PATH], hcopy[MAX_PATH],
      seed[MAX_PATH], f[MAX_PATH];
  uint64_t hashed = 0, misses = 0, hits = 0;
  double ms = 0, ms_helper = 0, ms_self = 0, ms_max = 0, ms_sum = 0;
  void *helper_bytes;
  DWORD helper_len;
  int i, rc, linked;
  uint64_t self_index;

  CHECK_INT(jw__imageid_start(&s, 0, on_result, NULL), 0);
  if (s == NULL)
    return;

  /* 1. This executable: a miss, then a hit with the same answer. */
  rc = request_wait(s, g_self, 1, &r, &ms_self);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_self_size;
  CHECK_INT(r.has_sha256, 1);
  CHECK_STR(r.sha256, g_self_sha);
  CHECK_INT(r.has_image_size, 1);
  CHECK_U64(r.image_size, g_self_size);
  check_unsigned_no_pe(&r);
  CHECK_INT(r.n_unavailable, 1);
  self_index = r.key.file_index;
  rc = jw__imageid_request(s, g_self, 2, &r2);
  CHECK_INT(rc, JW_IMAGEID_CACHED);
  hits++;
  CHECK_STR(r2.sha256, g_self_sha);
  CHECK(memcmp(&r, &r2, sizeof r) == 0);
  CHECK_INT(g_got[2], 0); /* no callback for a cached answer */

  /* 2. A renamed copy: another file (another file id), a miss, the same
   * hash. */
  work_path(copy, L"renamed-copy.exe");
  CHECK(CopyFileW(g_self, copy, FALSE));
  rc = request_wait(s, copy, 3, &r, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_self_size;
  CHECK_STR(r.sha256, g_self_sha);
  CHECK(r.key.file_index != self_index);
  check_unsigned_no_pe(&r);

  /* 3. A hard link to the copy: the same file under another name, so
   * the same key and a cache hit (Wine 8 supports CreateHardLinkW on a
   * Unix file system and gives both names one file index). */
  work_path(link, L"hard-link.exe");
  linked = CreateHardLinkW(link, copy, NULL) != 0;
  CHECK_INT(linked, 1);
  if (linked) {
    rc = jw__imageid_request(s, link, 4, &r2);
    CHECK_INT(rc, JW_IMAGEID_CACHED);
    hits++;
    CHECK_STR(r2.sha256, g_self_sha);
    CHECK_U64(r2.key.file_index, r.key.file_index);
  }

  /* 4. The image with a version resource, and a renamed copy of it: the
   * resource still says what it is. */
  rc = request_wait(s, g_helper, 5, &r, &ms_helper);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_helper_size;
  CHECK_STR(r.sha256, g_helper_sha);
  CHECK_U64(r.image_size, g_helper_size);
  check_helper_pe(&r);
  CHECK_STR(r.code_signature.status, "unsigned");
  CHECK_INT(r.n_unavailable, 0);
  work_path(hcopy, L"renamed-tool.exe");
  CHECK(CopyFileW(g_helper, hcopy, FALSE));
  rc = request_wait(s, hcopy, 6, &r, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_helper_size;
  CHECK_STR(r.sha256, g_helper_sha);
  check_helper_pe(&r);
  /* A copy named like one of Wine's built-in programs: Wine's version
   * API would answer for its built-in module (no version resource); the
   * resource read from the file's own handle is the file's. */
  work_path(hcopy, L"notepad.exe");
  CHECK(CopyFileW(g_helper, hcopy, FALSE));
  rc = request_wait(s, hcopy, 11, &r, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_helper_size;
  CHECK_STR(r.sha256, g_helper_sha);
  check_helper_pe(&r);

  /* 5. A missing file: an error with the reason, nothing queued. */
  work_path(missing, L"no-such-image.exe");
  rc = jw__imageid_request(s, missing, 7, &r);
  CHECK_INT(rc, JW_ENOENT);
  CHECK_INT(r.has_key, 0);
  CHECK_INT(r.has_sha256, 0);
  CHECK_STR(jw__imageid_unavailable(&r, "hash"),
            "image file cannot be opened (CreateFileW error 2)");
  CHECK_STR(jw__imageid_unavailable(&r, "image_size"),
            "image file cannot be opened (CreateFileW error 2)");
  CHECK_STR(jw__imageid_unavailable(&r, "pe"), "image file cannot be opened (CreateFileW error 2)");
  CHECK_STR(jw__imageid_unavailable(&r, "code_signature"),
            "image file cannot be opened (CreateFileW error 2)");
  CHECK_INT(r.n_unavailable, 4);

  /* 6. A file rewritten after it was cached: the same file id, another
   * size and last write time, so a miss and the new content's hash; then
   * only its last write time changed: a miss, the same hash. */
  work_path(rw, L"rewritten.exe");
  CHECK(CopyFileW(g_self, rw, FALSE));
  rc = request_wait(s, rw, 8, &r, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_self_size;
  CHECK_STR(r.sha256, g_self_sha);
  helper_bytes = read_all(g_helper, &helper_len);
  CHECK(helper_bytes != NULL);
  CHECK_U64(helper_len, g_helper_size);
  if (helper_bytes != NULL)
    CHECK_INT(rewrite(rw, helper_bytes, helper_len), 0);
  free(helper_bytes);
  rc = request_wait(s, rw, 9, &r2, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_helper_size;
  CHECK_U64(r2.key.file_index, r.key.file_index);
  CHECK(r2.key.size != r.key.size);
  CHECK_STR(r2.sha256, g_helper_sha);
  check_helper_pe(&r2);
  {
    HANDLE h =
        CreateFileW(rw, FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    FILETIME ft;
    ULARGE_INTEGER u;
    u.QuadPart = r2.key.last_write + 10000000ull * 3600; /* an hour later */
    ft.dwLowDateTime = u.LowPart;
    ft.dwHighDateTime = u.HighPart;
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK(SetFileTime(h, NULL, NULL, &ft));
    CloseHandle(h);
  }
  rc = request_wait(s, rw, 10, &r, &ms);
  CHECK_INT(rc, JW_IMAGEID_QUEUED);
  misses++;
  hashed += g_helper_size;
  CHECK_U64(r.key.last_write, r2.key.last_write + 10000000ull * 3600);
  CHECK_U64(r.key.size, r2.key.size);
  CHECK_STR(r.sha256, g_helper_sha);

  /* 7. The queue bound: with the worker held, a flood of distinct files
   * (copies of seed.txt) fills the queue; every request past the bound is
   * refused at once with "identity queue full" and gets no callback. One
   * duplicate request of the first file is queued as well (the worker
   * then answers it from the cache, once the first is done). */
  work_path(seed, L"seed.txt");
  jw__imageid_test_hold(s, 1);
  g_calls = 0;
  {
    int queued = 0, full = 0;
    for (i = 0; i < FLOOD; i++) {
      wchar_t name[32];
      swprintf(name, 32, L"flood-%03d.txt", i);
      work_path(f, name);
      CHECK(CopyFileW(seed, f, FALSE));
      rc = jw__imageid_request(s, f, 100 + (uint64_t)i, &r);
      if (rc == JW_IMAGEID_QUEUED)
        queued++;
      else if (rc == JW_IMAGEID_FULL) {
        full++;
        CHECK_STR(jw__imageid_unavailable(&r, "hash"), "identity queue full");
        CHECK_STR(jw__imageid_unavailable(&r, "pe"), "identity queue full");
        CHECK_STR(jw__imageid_unavailable(&r, "code_signature"), "identity queue full");
        CHECK_INT(r.has_image_size, 1);
        CHECK_U64(r.image_size, 25);
      }
    }
    CHECK_INT(queued, JW_IMAGEID_QUEUE_MAX);
    CHECK_INT(full, FLOOD - JW_IMAGEID_QUEUE_MAX);
    misses += JW_IMAGEID_QUEUE_MAX;
    hashed += 25u * JW_IMAGEID_QUEUE_MAX;
  }
  CHECK_INT(jw__imageid_flush(s, 200), JW_ETIMEDOUT); /* held: nothing moves */
  CHECK_INT(g_calls, 0);
  jw__imageid_test_hold(s, 0);
  CHECK_INT(jw__imageid_flush(s, WAIT_MS), 0);
  CHECK_INT(g_calls, JW_IMAGEID_QUEUE_MAX);
  for (i = 0; i < FLOOD; i++) {
    if (i < JW_IMAGEID_QUEUE_MAX) {
      CHECK_INT(g_got[100 + i], 1);
      CHECK_STR(g_res[100 + i].sha256, g_seed_sha);
    } else {
      CHECK_INT(g_got[100 + i], 0);
    }
  }
  /* A text file: not a PE file, and WinVerifyTrust answers
   * TRUST_E_SUBJECT_FORM_UNKNOWN: no signature status is made up for it. */
  r = g_res[100];
  CHECK_STR(jw__imageid_unavailable(&r, "pe"), "not a PE file");
  CHECK_INT(r.has_code_signature, 0);
  CHECK_STR(jw__imageid_unavailable(&r, "code_signature"), "WinVerifyTrust answered 0x800B0003");

  /* A duplicate while queued: two misses, one computation. */
  jw__imageid_test_hold(s, 1);
  work_path(f, L"duplicate.exe");
  CHECK(CopyFileW(g_helper, f, FALSE));
  CHECK_INT(jw__imageid_request(s, f, 200, &r), JW_IMAGEID_QUEUED);
  CHECK_INT(jw__imageid_request(s, f, 201, &r), JW_IMAGEID_QUEUED);
  misses += 2;
  hashed += g_helper_size;
  jw__imageid_test_hold(s, 0);
  CHECK_INT(jw__imageid_flush(s, WAIT_MS), 0);
  CHECK_STR(g_res[200].sha256, g_helper_sha);
  CHECK(memcmp(&g_res[200], &g_res[201], sizeof r) == 0);

  jw__imageid_counters(s, &c);
  CHECK_U64(c.hits, hits);
  CHECK_U64(c.misses, misses);
  CHECK_U64(c.full, FLOOD - JW_IMAGEID_QUEUE_MAX);
  CHECK_U64(c.worker_hits, 1);
  CHECK_U64(c.computed, misses - 1);
  CHECK_U64(c.hashed_bytes, hashed);
  CHECK_U64(c.evicted, 0);
  /* Every file here is on a drive letter that links to a disk volume
   * (Wine: \Device\HarddiskVolumeN, measured): opened on the caller's
   * thread, none left to the worker as a network path. */
  CHECK_U64(c.remote, 0);

  /* 8. Timing: request to callback for a program of a typical size
   * (big.exe: this executable plus 6 MiB), ten copies (each a new file:
   * a miss); the bound docs/architecture.md states. */
  work_path(seed, L"big.exe");
  for (i = 0; i < 10; i++) {
    wchar_t name[32];
    swprintf(name, 32, L"timing-%d.exe", i);
    work_path(f, name);
    CHECK(CopyFileW(seed, f, FALSE));
    CHECK_INT(request_wait(s, f, 210 + (uint64_t)i, &r, &ms), JW_IMAGEID_QUEUED);
    CHECK_STR(r.sha256, g_big_sha);
    CHECK_U64(r.image_size, g_big_size);
    CHECK_STR(r.code_signature.status, "unsigned");
    if (ms > ms_max)
      ms_max = ms;
    ms_sum += ms;
  }
  fprintf(stderr,
          "imageid: request to callback: this exe (%llu bytes) %.1f ms; jwtestid.exe (%llu "
          "bytes) %.1f ms; big.exe (%llu bytes) mean %.1f ms, max %.1f ms of 10\n",
          g_self_size, ms_self, g_helper_size, ms_helper, g_big_size, ms_sum / 10, ms_max);
  jw__imageid_stop(s);
}

static void test_cap(void) {
  jw__imageid_svc_t *small = NULL;
  jw__imageid_counters_t c;
  jw__imageid_t r;
  wchar_t f[MAX_PATH];
  double ms = 0;
  int rc;

  ensure_flood_files();
  /* 9. The size cap: an image over it is neither hashed nor verified,
   * and says why; its version resource is still read. */
  CHECK_INT(jw__imageid_start(&small, 4096, on_result, NULL), 0);
  if (small != NULL) {
    rc = request_wait(small, g_helper, 240, &r, &ms);
    CHECK_INT(rc, JW_IMAGEID_QUEUED);
    CHECK_INT(r.has_sha256, 0);
    CHECK_STR(jw__imageid_unavailable(&r, "hash"), "image larger than the 4 KiB hashing cap");
    CHECK_INT(r.has_code_signature, 0);
    CHECK_STR(jw__imageid_unavailable(&r, "code_signature"),
              "image larger than the 4 KiB hashing cap");
    CHECK_U64(r.image_size, g_helper_size);
    check_helper_pe(&r);
    CHECK_INT(r.n_unavailable, 2);
    /* Under the cap: hashed. */
    work_path(f, L"flood-000.txt");
    rc = request_wait(small, f, 241, &r, &ms);
    CHECK_INT(rc, JW_IMAGEID_QUEUED);
    CHECK_STR(r.sha256, g_seed_sha);
    jw__imageid_counters(small, &c);
    CHECK_U64(c.hashed_bytes, 25);
    CHECK_U64(c.misses, 2);
    jw__imageid_stop(small);
  }
}

static void test_signed(void) {
  /* 10. Signed images (make_signed.sh). Wine 8's WinVerifyTrust answers
   * ERROR_SUCCESS for every intact one, whatever its chain; the chain
   * check makes them "untrusted" (the root is not one Wine trusts: Wine
   * takes its roots from the host, docs/platform-support.md). Before that
   * check, the identity said "valid" for a self-signed certificate. */
  check_signed("signed-valid.exe", "untrusted", "jobwarden test signer");
  check_signed("signed-withroot.exe", "untrusted", "jobwarden test signer");
  check_signed("signed-expired.exe", "untrusted", "jobwarden expired signer");
  check_signed("signed-selfsigned.exe", "untrusted", "jobwarden self-signed signer");
  check_signed("signed-tampered.exe", "bad_signature", NULL);
}

static void test_eviction(void) {
  int i;
  double ms = 0;
  wchar_t f[MAX_PATH];
  jw__imageid_t r;
  jw__imageid_counters_t c;
  jw__imageid_svc_t *small = NULL;

  ensure_flood_files();
  /* 11. Eviction: a cache of 3 results, 4 files; the oldest is dropped
   * (a miss again), the newest still a hit. */
  CHECK_INT(jw__imageid_start(&small, 0, on_result, NULL), 0);
  if (small != NULL) {
    CHECK_INT(jw__imageid_test_cache_max(small, 3), 0);
    CHECK_INT(jw__imageid_test_cache_max(small, 0), JW_EINVAL);
    for (i = 0; i < 4; i++) {
      wchar_t name[32];
      swprintf(name, 32, L"flood-%03d.txt", i);
      work_path(f, name);
      CHECK_INT(request_wait(small, f, 250 + (uint64_t)i, &r, &ms), JW_IMAGEID_QUEUED);
    }
    work_path(f, L"flood-003.txt");
    CHECK_INT(jw__imageid_request(small, f, 254, &r), JW_IMAGEID_CACHED);
    CHECK_STR(r.sha256, g_seed_sha);
    work_path(f, L"flood-001.txt");
    CHECK_INT(jw__imageid_request(small, f, 255, &r), JW_IMAGEID_CACHED);
    work_path(f, L"flood-000.txt");
    CHECK_INT(request_wait(small, f, 256, &r, &ms), JW_IMAGEID_QUEUED);
    CHECK_STR(r.sha256, g_seed_sha);
    /* Its return evicted the next oldest, flood-001. */
    work_path(f, L"flood-001.txt");
    CHECK_INT(request_wait(small, f, 257, &r, &ms), JW_IMAGEID_QUEUED);
    jw__imageid_counters(small, &c);
    CHECK_U64(c.hits, 2);
    CHECK_U64(c.misses, 6);
    CHECK_U64(c.computed, 6);
    CHECK_U64(c.evicted, 3);
    CHECK_U64(c.hashed_bytes, 6 * 25);
    CHECK_INT(jw__imageid_test_cache_max(small, 5), JW_EINVAL); /* not once results exist */
    jw__imageid_stop(small);
  }
}

static void test_stop_queued(void) {
  jw__imageid_svc_t *small = NULL;
  jw__imageid_t r;
  wchar_t f[MAX_PATH];
  int i;

  ensure_flood_files();
  /* 12. Stop with requests still queued: they are dropped, no callback
   * comes (after stop returns, none can). */
  CHECK_INT(jw__imageid_start(&small, 0, on_result, NULL), 0);
  if (small != NULL) {
    jw__imageid_test_hold(small, 1);
    for (i = 0; i < 3; i++) {
      wchar_t name[32];
      swprintf(name, 32, L"flood-%03d.txt", 10 + i);
      work_path(f, name);
      CHECK_INT(jw__imageid_request(small, f, 260 + (uint64_t)i, &r), JW_IMAGEID_QUEUED);
    }
    jw__imageid_stop(small);
    for (i = 0; i < 3; i++)
      CHECK_INT(g_got[260 + i], 0);
  }
}

static void test_concurrent(void) {
  jw__imageid_svc_t *small = NULL;
  jw__imageid_counters_t c;
  int i;

  ensure_flood_files();
  /* 13. Four threads requesting the same 15 files at once (60 requests:
   * under the queue's bound, so none is refused): every request is
   * answered exactly once (CACHED now or one callback later), the
   * counters add up. */
  CHECK_INT(jw__imageid_start(&small, 0, on_count, NULL), 0);
  if (small != NULL) {
    HANDLE th[4];
    g_calls = 0;
    g_cached = 0;
    g_conc = small;
    for (i = 0; i < 4; i++)
      th[i] = CreateThread(NULL, 0, conc_main, NULL, 0, NULL);
    for (i = 0; i < 4; i++) {
      CHECK(th[i] != NULL);
      if (th[i] != NULL) {
        CHECK_INT(WaitForSingleObject(th[i], WAIT_MS), WAIT_OBJECT_0);
        CloseHandle(th[i]);
      }
    }
    CHECK_INT(jw__imageid_flush(small, WAIT_MS), 0);
    jw__imageid_counters(small, &c);
    CHECK_U64(c.hits + c.misses + c.full, 60);
    CHECK_U64(c.full, 0);
    CHECK_U64(c.hits, g_cached);
    CHECK_U64(c.misses, g_calls);
    CHECK_U64(c.computed + c.worker_hits, c.misses);
    CHECK(c.computed >= 15);
    CHECK_U64(c.hashed_bytes, 25 * c.computed);
    CHECK_INT(g_bad, 0);
    jw__imageid_stop(small);
  }
}

static void test_compute(void) {
  jw__imageid_t r;
  wchar_t missing[MAX_PATH];

  work_path(missing, L"no-such-image.exe");
  /* 14. Without the service (same code path, this thread). */
  CHECK_INT(jw__imageid_compute(g_helper, 0, &r), 0);
  CHECK_STR(r.sha256, g_helper_sha);
  check_helper_pe(&r);
  CHECK_INT(jw__imageid_compute(missing, 0, &r), JW_ENOENT);
}

/* Which thread opened the image the identity hook last saw opened. */
static volatile DWORD g_opener;

static int note_opener(const wchar_t *path, int opening) {
  (void)path;
  if (opening)
    g_opener = GetCurrentThreadId();
  return 0; /* the service's own reading decides what is a network path */
}

/* 15. A drive letter that links to a share (what `net use` or a SUBST of a
 * UNC path makes; the program can define one for its own logon session
 * with DefineDosDeviceW): the caller (the monitor) does not open an image
 * there; the worker does. Injected: Wine has no share behind the letter
 * (its object manager answers the link as defined, measured; an open
 * through it fails), so the worker's open fails and says so. The control:
 * an image on a disk volume is opened on the caller's thread. */
static void test_letter_to_share(void) {
  static const wchar_t *const letters[] = {L"X:", L"W:", L"V:", L"U:"};
  jw__imageid_svc_t *svc = NULL;
  jw__imageid_counters_t c;
  jw__imageid_t r;
  wchar_t target[MAX_PATH + 64], path[MAX_PATH];
  const wchar_t *letter = NULL;
  size_t k;
  for (k = 0; k < 4 && letter == NULL; k++)
    if (QueryDosDeviceW(letters[k], target, MAX_PATH + 64) == 0)
      letter = letters[k];
  CHECK(letter != NULL);
  if (letter == NULL)
    return;
  CHECK(DefineDosDeviceW(DDD_RAW_TARGET_PATH, letter, L"\\??\\UNC\\jw-share\\agent"));
  CHECK(QueryDosDeviceW(letter, target, MAX_PATH + 64) > 0);
  CHECK_INT(wcscmp(target, L"\\??\\UNC\\jw-share\\agent"), 0);
  jw__imageid_test_remote(note_opener);
  CHECK_INT(jw__imageid_start(&svc, 0, on_result, NULL), 0);
  if (svc != NULL) {
    swprintf(path, MAX_PATH, L"%ls\\bin\\tool.exe", letter);
    g_opener = 0;
    CHECK_INT(jw__imageid_request(svc, path, 290, &r), JW_IMAGEID_QUEUED);
    CHECK_INT(jw__imageid_flush(svc, WAIT_MS), 0);
    CHECK(g_opener != 0 && g_opener != GetCurrentThreadId()); /* the worker */
    CHECK_INT(g_got[290], 1);
    CHECK(jw__imageid_unavailable(&g_res[290], "hash") != NULL);
    CHECK(g_res[290].sha256[0] == '\0');
    /* The control: this executable, on a disk volume, opened here. */
    g_opener = 0;
    CHECK(jw__imageid_request(svc, g_self, 291, &r) >= 0);
    CHECK_INT(g_opener, GetCurrentThreadId());
    CHECK_INT(jw__imageid_flush(svc, WAIT_MS), 0);
    jw__imageid_counters(svc, &c);
    CHECK_U64(c.remote, 1);
    jw__imageid_stop(svc);
  }
  jw__imageid_test_remote(NULL);
  CHECK(DefineDosDeviceW(DDD_REMOVE_DEFINITION, letter, NULL));
}

/* Runnable one by one: `win_imageid.exe EVENTS WORK HELPER ... --case signed`. */
static const jw_test_case_t cases[] = {
    {"service", test_service, 300},        {"cap", test_cap, 60},
    {"signed", test_signed, 60},           {"eviction", test_eviction, 60},
    {"stop_queued", test_stop_queued, 60}, {"concurrent", test_concurrent, 120},
    {"compute", test_compute, 60},         {"letter_to_share", test_letter_to_share, 60},
};

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--identify") == 0)
    return identify_main(argc, argv);
  if (argc > 1 && strcmp(argv[1], "--injected") == 0)
    return TW_RUN_CASES("imageid-injected", argc, argv, injected_cases);
  if (argc < 11 || to_full(argv[2], g_work) != 0 || to_full(argv[3], g_helper) != 0) {
    fprintf(stderr, "usage: test_imageid EVENTS WORK HELPER SELF_SHA SELF_SIZE HELPER_SHA "
                    "HELPER_SIZE SEED_SHA BIG_SHA BIG_SIZE\n");
    return 2;
  }
  GetModuleFileNameW(NULL, g_self, MAX_PATH);
  g_self_sha = argv[4];
  g_self_size = strtoull(argv[5], NULL, 10);
  g_helper_sha = argv[6];
  g_helper_size = strtoull(argv[7], NULL, 10);
  g_seed_sha = argv[8];
  g_big_sha = argv[9];
  g_big_size = strtoull(argv[10], NULL, 10);
  CHECK_INT(strlen(g_self_sha), 64);

  return TW_RUN_CASES("imageid", argc, argv, cases);
}

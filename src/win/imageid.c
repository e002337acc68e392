/* Executable identity: SHA-256 (CNG), size, PE version resource and
 * Authenticode status of an image file, computed by one worker thread and
 * cached per file identity. See imageid.h for the API and
 * docs/architecture.md ("Executable identity") for the design. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
/* Order matters: WIN32_LEAN_AND_MEAN leaves wincrypt.h out of windows.h,
 * and the trust headers need it first. */
#include <wincrypt.h>
#include <wintrust.h>
#include <softpub.h>
#include <mscat.h>
#include <bcrypt.h>
#include <winver.h>

#include "internal.h"
#include "win/imageid.h"

/* wintrust.dll and crypt32.dll import user32.dll (Windows' and Wine's
 * alike), and a process that loads user32 connects to a desktop — under
 * Wine, one with no desktop process running starts explorer.exe as its
 * own child. They are loaded on first use, by the identity worker, never
 * at process start: no executable that links jobwarden (the test programs
 * double as sandboxed programs) carries them as imports. */
static struct {
  __typeof__(&WinVerifyTrust) WinVerifyTrust_;
  __typeof__(&WTHelperProvDataFromStateData) WTHelperProvDataFromStateData_;
  __typeof__(&WTHelperGetProvSignerFromChain) WTHelperGetProvSignerFromChain_;
  __typeof__(&WTHelperGetProvCertFromChain) WTHelperGetProvCertFromChain_;
  __typeof__(&CryptCATAdminAcquireContext) CryptCATAdminAcquireContext_;
  __typeof__(&CryptCATAdminCalcHashFromFileHandle) CryptCATAdminCalcHashFromFileHandle_;
  __typeof__(&CryptCATAdminEnumCatalogFromHash) CryptCATAdminEnumCatalogFromHash_;
  __typeof__(&CryptCATAdminReleaseCatalogContext) CryptCATAdminReleaseCatalogContext_;
  __typeof__(&CryptCATAdminReleaseContext) CryptCATAdminReleaseContext_;
  __typeof__(&CryptCATCatalogInfoFromContext) CryptCATCatalogInfoFromContext_;
  __typeof__(&CertGetNameStringW) CertGetNameStringW_;
  int ok;
} trust;
static INIT_ONCE trust_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK load_trust(PINIT_ONCE once, PVOID param, PVOID *context) {
  HMODULE wt = LoadLibraryW(L"wintrust.dll"), c32 = LoadLibraryW(L"crypt32.dll");
  (void)once;
  (void)param;
  (void)context;
  if (wt != NULL && c32 != NULL) {
    trust.WinVerifyTrust_ =
        (__typeof__(trust.WinVerifyTrust_))(void *)GetProcAddress(wt, "WinVerifyTrust");
    trust.WTHelperProvDataFromStateData_ =
        (__typeof__(trust.WTHelperProvDataFromStateData_))(void *)GetProcAddress(
            wt, "WTHelperProvDataFromStateData");
    trust.WTHelperGetProvSignerFromChain_ =
        (__typeof__(trust.WTHelperGetProvSignerFromChain_))(void *)GetProcAddress(
            wt, "WTHelperGetProvSignerFromChain");
    trust.WTHelperGetProvCertFromChain_ =
        (__typeof__(trust.WTHelperGetProvCertFromChain_))(void *)GetProcAddress(
            wt, "WTHelperGetProvCertFromChain");
    trust.CryptCATAdminAcquireContext_ =
        (__typeof__(trust.CryptCATAdminAcquireContext_))(void *)GetProcAddress(
            wt, "CryptCATAdminAcquireContext");
    trust.CryptCATAdminCalcHashFromFileHandle_ =
        (__typeof__(trust.CryptCATAdminCalcHashFromFileHandle_))(void *)GetProcAddress(
            wt, "CryptCATAdminCalcHashFromFileHandle");
    trust.CryptCATAdminEnumCatalogFromHash_ =
        (__typeof__(trust.CryptCATAdminEnumCatalogFromHash_))(void *)GetProcAddress(
            wt, "CryptCATAdminEnumCatalogFromHash");
    trust.CryptCATAdminReleaseCatalogContext_ =
        (__typeof__(trust.CryptCATAdminReleaseCatalogContext_))(void *)GetProcAddress(
            wt, "CryptCATAdminReleaseCatalogContext");
    trust.CryptCATAdminReleaseContext_ =
        (__typeof__(trust.CryptCATAdminReleaseContext_))(void *)GetProcAddress(
            wt, "CryptCATAdminReleaseContext");
    trust.CryptCATCatalogInfoFromContext_ =
        (__typeof__(trust.CryptCATCatalogInfoFromContext_))(void *)GetProcAddress(
            wt, "CryptCATCatalogInfoFromContext");
    trust.CertGetNameStringW_ =
        (__typeof__(trust.CertGetNameStringW_))(void *)GetProcAddress(c32, "CertGetNameStringW");
    trust.ok = trust.WinVerifyTrust_ != NULL && trust.WTHelperProvDataFromStateData_ != NULL &&
               trust.WTHelperGetProvSignerFromChain_ != NULL &&
               trust.WTHelperGetProvCertFromChain_ != NULL &&
               trust.CryptCATAdminAcquireContext_ != NULL &&
               trust.CryptCATAdminCalcHashFromFileHandle_ != NULL &&
               trust.CryptCATAdminEnumCatalogFromHash_ != NULL &&
               trust.CryptCATAdminReleaseCatalogContext_ != NULL &&
               trust.CryptCATAdminReleaseContext_ != NULL &&
               trust.CryptCATCatalogInfoFromContext_ != NULL && trust.CertGetNameStringW_ != NULL;
  }
  return TRUE;
}

/* Whether the trust functions are there (loaded once, any thread). */
static int trust_ready(void) {
  InitOnceExecuteOnce(&trust_once, load_trust, NULL, NULL);
  return trust.ok;
}

#define WinVerifyTrust                      trust.WinVerifyTrust_
#define WTHelperProvDataFromStateData       trust.WTHelperProvDataFromStateData_
#define WTHelperGetProvSignerFromChain      trust.WTHelperGetProvSignerFromChain_
#define WTHelperGetProvCertFromChain        trust.WTHelperGetProvCertFromChain_
#define CryptCATAdminAcquireContext         trust.CryptCATAdminAcquireContext_
#define CryptCATAdminCalcHashFromFileHandle trust.CryptCATAdminCalcHashFromFileHandle_
#define CryptCATAdminEnumCatalogFromHash    trust.CryptCATAdminEnumCatalogFromHash_
#define CryptCATAdminReleaseCatalogContext  trust.CryptCATAdminReleaseCatalogContext_
#define CryptCATAdminReleaseContext         trust.CryptCATAdminReleaseContext_
#define CryptCATCatalogInfoFromContext      trust.CryptCATCatalogInfoFromContext_
#define CertGetNameStringW                  trust.CertGetNameStringW_

#ifndef STATUS_SUCCESS
#define STATUS_SUCCESS ((NTSTATUS)0)
#endif

/* Bytes read from the image per ReadFile and fed to the hash per call. */
#define READ_CHUNK (1u << 20)
#define MIB        ((uint64_t)1 << 20)

/* ------------------------------------------------------------------------ */
/* Results                                                                  */
/* ------------------------------------------------------------------------ */

const char *jw__imageid_unavailable(const jw__imageid_t *r, const char *field) {
  int i;
  for (i = 0; i < r->n_unavailable; i++)
    if (strcmp(r->unavailable[i].field, field) == 0)
      return r->unavailable[i].reason;
  return NULL;
}

/* Names `field` unavailable with a reason (cut at 239 bytes, which the
 * fixed texts below never reach). A second reason for the same field is
 * ignored: the first says what failed first. */
static void unavail(jw__imageid_t *r, const char *field, const char *fmt, ...) {
  va_list ap;
  if (jw__imageid_unavailable(r, field) != NULL || r->n_unavailable >= JW_IMAGEID_MAX_UNAVAILABLE)
    return;
  snprintf(r->unavailable[r->n_unavailable].field, JW_IMAGEID_FIELD_MAX, "%s", field);
  va_start(ap, fmt);
  vsnprintf(r->unavailable[r->n_unavailable].reason, JW_IMAGEID_REASON_MAX, fmt, ap);
  va_end(ap);
  r->n_unavailable++;
}

/* Every field but the key and size named unavailable with one reason
 * (the file could not be opened, the queue was full). */
static void unavail_all(jw__imageid_t *r, int with_size, const char *reason) {
  unavail(r, "hash", "%s", reason);
  if (with_size)
    unavail(r, "image_size", "%s", reason);
  unavail(r, "pe", "%s", reason);
  unavail(r, "code_signature", "%s", reason);
}

/* "256 MiB", "64 KiB" or "1000 bytes": the cap as the reason states it. */
static void cap_text(uint64_t cap, char *buf, size_t size) {
  if (cap % MIB == 0)
    snprintf(buf, size, "%llu MiB", (unsigned long long)(cap / MIB));
  else if (cap % 1024 == 0)
    snprintf(buf, size, "%llu KiB", (unsigned long long)(cap / 1024));
  else
    snprintf(buf, size, "%llu-byte", (unsigned long long)cap);
}

/* ------------------------------------------------------------------------ */
/* Identity: one handle                                                     */
/* ------------------------------------------------------------------------ */

static int key_from_handle(HANDLE h, jw__imageid_key_t *k) {
  BY_HANDLE_FILE_INFORMATION fi;
  if (!GetFileInformationByHandle(h, &fi))
    return -1;
  k->volume_serial = fi.dwVolumeSerialNumber;
  k->file_index = ((uint64_t)fi.nFileIndexHigh << 32) | fi.nFileIndexLow;
  k->size = ((uint64_t)fi.nFileSizeHigh << 32) | fi.nFileSizeLow;
  k->last_write =
      ((uint64_t)fi.ftLastWriteTime.dwHighDateTime << 32) | fi.ftLastWriteTime.dwLowDateTime;
  return 0;
}

static int key_equal(const jw__imageid_key_t *a, const jw__imageid_key_t *b) {
  return a->volume_serial == b->volume_serial && a->file_index == b->file_index &&
         a->size == b->size && a->last_write == b->last_write;
}

/* The test hook of jw__imageid_test_remote (NULL: none). */
static jw__imageid_remote_fn remote_hook;

/* Opens path for reading only, sharing everything (the program, its
 * installer or an attacker may rename, delete or rewrite the file while
 * jobwarden reads it: jobwarden must not change what they can do), and
 * reads its identity. Returns 0 and *h (owner: the caller), or an error
 * with every field named unavailable. */
static int open_identify(const wchar_t *path, HANDLE *h, jw__imageid_t *r) {
  DWORD e;
  if (remote_hook != NULL)
    remote_hook(path, 1);
  *h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                   OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_SEQUENTIAL_SCAN, NULL);
  if (*h == INVALID_HANDLE_VALUE) {
    char reason[JW_IMAGEID_REASON_MAX];
    e = GetLastError();
    *h = NULL;
    snprintf(reason, sizeof reason, "image file cannot be opened (CreateFileW error %lu)",
             (unsigned long)e);
    unavail_all(r, 1, reason);
    return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? JW_ENOENT : JW_ESYS;
  }
  if (key_from_handle(*h, &r->key) != 0) {
    char reason[JW_IMAGEID_REASON_MAX];
    e = GetLastError();
    CloseHandle(*h);
    *h = NULL;
    snprintf(reason, sizeof reason,
             "image file cannot be identified (GetFileInformationByHandle error %lu)",
             (unsigned long)e);
    unavail_all(r, 1, reason);
    return JW_ESYS;
  }
  r->has_key = 1;
  r->has_image_size = 1;
  r->image_size = r->key.size;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* SHA-256                                                                  */
/* ------------------------------------------------------------------------ */

/* Hashes the file behind h, the handle its identity was read from: a
 * path opened again could name another file by then (renamed over, or
 * replaced between the identity and the hash), and the cache would file
 * that file's hash under this file's key. Reads at explicit offsets, so
 * the handle's file pointer does not matter. *bytes counts what was fed
 * to the hash. Returns 1 when the file changed while it was read. */
static int hash_handle(BCRYPT_ALG_HANDLE alg, HANDLE h, uint64_t cap, jw__imageid_t *r,
                       uint64_t *bytes) {
  static const char hex[] = "0123456789abcdef";
  BCRYPT_HASH_HANDLE hh = NULL; /* owner: this function */
  unsigned char *buf = NULL, digest[32];
  uint64_t off = 0;
  NTSTATUS st;
  jw__imageid_key_t after;
  int i, changed = 0;

  if (r->key.size > cap) {
    char c[32];
    cap_text(cap, c, sizeof c);
    unavail(r, "hash", "image larger than the %s hashing cap", c);
    return 0;
  }
  buf = malloc(READ_CHUNK);
  if (buf == NULL) {
    unavail(r, "hash", "out of memory");
    goto done;
  }
  st = BCryptCreateHash(alg, &hh, NULL, 0, NULL, 0, 0);
  if (st != STATUS_SUCCESS) {
    hh = NULL;
    unavail(r, "hash", "BCryptCreateHash failed (NTSTATUS 0x%08lX)", (unsigned long)st);
    goto done;
  }
  for (;;) {
    OVERLAPPED ov;
    DWORD got = 0;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    if (!ReadFile(h, buf, READ_CHUNK, &got, &ov)) {
      DWORD e = GetLastError();
      if (e == ERROR_HANDLE_EOF)
        break;
      unavail(r, "hash", "image file cannot be read (ReadFile error %lu)", (unsigned long)e);
      goto done;
    }
    if (got == 0)
      break;
    st = BCryptHashData(hh, buf, got, 0);
    if (st != STATUS_SUCCESS) {
      unavail(r, "hash", "BCryptHashData failed (NTSTATUS 0x%08lX)", (unsigned long)st);
      goto done;
    }
    off += got;
    *bytes += got;
    if (off > r->key.size)
      break; /* grew while read: caught below */
  }
  /* The file may be rewritten while it is read (it is shared for
   * writing): a hash of a mix of two versions is no file's hash. */
  if (off != r->key.size || key_from_handle(h, &after) != 0 || !key_equal(&after, &r->key)) {
    unavail(r, "hash", "image file changed while it was hashed");
    changed = 1;
    goto done;
  }
  st = BCryptFinishHash(hh, digest, sizeof digest, 0);
  if (st != STATUS_SUCCESS) {
    unavail(r, "hash", "BCryptFinishHash failed (NTSTATUS 0x%08lX)", (unsigned long)st);
    goto done;
  }
  for (i = 0; i < 32; i++) {
    r->sha256[2 * i] = hex[digest[i] >> 4];
    r->sha256[2 * i + 1] = hex[digest[i] & 15];
  }
  r->sha256[64] = '\0';
  r->has_sha256 = 1;
done:
  if (hh != NULL)
    BCryptDestroyHash(hh);
  free(buf);
  return changed;
}

/* ------------------------------------------------------------------------ */
/* PE version resource                                                      */
/* ------------------------------------------------------------------------ */

/* One string of the version resource into out (UTF-8); absent ("") when
 * the resource lacks it or it is empty; named unavailable when too long
 * to keep whole. */
static void version_string(const void *block, const wchar_t *sub, const char *field,
                           const wchar_t *name, char out[JW_IMAGEID_STR_MAX], jw__imageid_t *r) {
  wchar_t q[96];
  wchar_t *val = NULL;
  UINT len = 0;
  char *u = NULL;
  size_t ulen = 0, n;
  out[0] = '\0';
  swprintf(q, sizeof q / sizeof q[0], L"\\StringFileInfo\\%ls\\%ls", sub, name);
  if (!VerQueryValueW(block, q, (void **)&val, &len) || val == NULL || len == 0)
    return;
  n = wcsnlen(val, len);
  if (n == 0)
    return;
  if (jw_utf16_to_utf8((const uint16_t *)val, n, JW_HOSTILE_MAX_UNITS, &u, &ulen, NULL) != 0) {
    unavail(r, field, "out of memory");
    return;
  }
  if (ulen >= JW_IMAGEID_STR_MAX)
    unavail(r, field, "longer than %d bytes", JW_IMAGEID_STR_MAX - 1);
  else
    memcpy(out, u, ulen + 1);
  free(u);
}

/* jw__pe_read_fn over the identified file's handle. */
static int read_at(void *ctx, uint64_t off, void *buf, size_t len) {
  unsigned char *p = buf;
  while (len > 0) {
    OVERLAPPED ov;
    DWORD want = len > READ_CHUNK ? READ_CHUNK : (DWORD)len, got = 0;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    if (!ReadFile((HANDLE)ctx, p, want, &got, &ov) || got == 0)
      return -1;
    p += got;
    off += got;
    len -= got;
  }
  return 0;
}

/* The version resource of the file behind h, the handle it was identified
 * and hashed from. Windows' version API would open the path again (by
 * then maybe another file) and, for a language-neutral system file, take
 * the strings of its .mui satellite (another file: OriginalFilename
 * "Cmd.Exe.MUI"); Wine's answers for a file named like one of its
 * built-in programs. So the resource is found in the file itself
 * (jw__pe_version_resource, portable, fuzzed) and only its strings are
 * read by the system's VerQueryValueW. */
static void version_info(HANDLE h, uint64_t size, jw__imageid_t *r) {
  void *res = NULL;
  size_t len = 0;
  const char *why = NULL;
  unsigned char *block = NULL;
  struct {
    WORD lang, codepage;
  } *tr = NULL;
  UINT trlen = 0;
  wchar_t sub[16];
  int rc;

  rc = jw__pe_version_resource(read_at, h, size, &res, &len, &why);
  if (rc != 0) {
    unavail(r, "pe", "%s", why != NULL ? why : "the version resource cannot be read");
    return;
  }
  /* VerQueryValueW walks the block by its own lengths: they are checked
   * first (jw__pe_version_block_ok), and the copy is followed by as many
   * zero bytes again (the room GetFileVersionInfoW leaves after a block
   * it returns). */
  if (!jw__pe_version_block_ok(res, len)) {
    unavail(r, "pe", "the version resource is malformed");
    goto done;
  }
  block = calloc(1, 2 * len + 4);
  if (block == NULL) {
    unavail(r, "pe", "out of memory");
    goto done;
  }
  memcpy(block, res, len);
  /* The first translation names the string table; without one, the
   * table most resources carry (US English, Unicode). */
  if (VerQueryValueW(block, L"\\VarFileInfo\\Translation", (void **)&tr, &trlen) && tr != NULL &&
      trlen >= sizeof(*tr))
    swprintf(sub, sizeof sub / sizeof sub[0], L"%04x%04x", tr->lang, tr->codepage);
  else
    wcscpy(sub, L"040904b0");
  r->has_pe = 1;
  version_string(block, sub, "pe.original_file_name", L"OriginalFilename", r->original_file_name,
                 r);
  version_string(block, sub, "pe.company", L"CompanyName", r->company, r);
  version_string(block, sub, "pe.product", L"ProductName", r->product, r);
  version_string(block, sub, "pe.description", L"FileDescription", r->description, r);
  version_string(block, sub, "pe.file_version", L"FileVersion", r->file_version, r);
done:
  free(block);
  free(res);
}

/* ------------------------------------------------------------------------ */
/* Authenticode                                                             */
/* ------------------------------------------------------------------------ */

/* The signer's simple display name from a verification's state. */
static void signer_name(HANDLE state, jw__imageid_t *r) {
  CRYPT_PROVIDER_DATA *pd;
  CRYPT_PROVIDER_SGNR *sg;
  CRYPT_PROVIDER_CERT *pc;
  wchar_t name[JW_IMAGEID_STR_MAX];
  DWORD n;
  char *u = NULL;
  size_t ulen = 0;
  if (state == NULL)
    return;
  pd = WTHelperProvDataFromStateData(state);
  sg = pd != NULL ? WTHelperGetProvSignerFromChain(pd, 0, FALSE, 0) : NULL;
  pc = sg != NULL ? WTHelperGetProvCertFromChain(sg, 0) : NULL;
  if (pc == NULL || pc->pCert == NULL) {
    unavail(r, "code_signature.subject_name", "the signer's certificate could not be read");
    return;
  }
  n = CertGetNameStringW(pc->pCert, CERT_NAME_SIMPLE_DISPLAY_TYPE, 0, NULL, name,
                         sizeof name / sizeof name[0]);
  if (n <= 1) {
    unavail(r, "code_signature.subject_name", "the signer's certificate has no name");
    return;
  }
  if (jw_utf16_to_utf8((const uint16_t *)name, n - 1, JW_HOSTILE_MAX_UNITS, &u, &ulen, NULL) != 0)
    return;
  if (ulen < JW_IMAGEID_STR_MAX)
    memcpy(r->code_signature.subject_name, u, ulen + 1);
  else
    unavail(r, "code_signature.subject_name", "longer than %d bytes", JW_IMAGEID_STR_MAX - 1);
  free(u);
}

/* The error status of the chain WinVerifyTrust built for the signer
 * (CERT_TRUST_* bits) into *status; 0 when there is none to read. */
static int signer_chain_status(HANDLE state, DWORD *status) {
  CRYPT_PROVIDER_DATA *pd;
  CRYPT_PROVIDER_SGNR *sg;
  if (state == NULL)
    return 0;
  pd = WTHelperProvDataFromStateData(state);
  sg = pd != NULL ? WTHelperGetProvSignerFromChain(pd, 0, FALSE, 0) : NULL;
  if (sg == NULL || sg->pChainContext == NULL)
    return 0;
  *status = sg->pChainContext->TrustStatus.dwErrorStatus;
  return 1;
}

/* One WinVerifyTrust verification (file or catalog member), its state
 * always closed. Returns the answer; *last is GetLastError right after
 * it (it tells "no signature" from "cannot tell" for
 * TRUST_E_NOSIGNATURE); the signer's name goes into r when known, and
 * the signer chain's error status into *chain (*have_chain 1). */
static LONG verify(WINTRUST_DATA *wd, DWORD *last, DWORD *chain, int *have_chain,
                   jw__imageid_t *r) {
  GUID action = WINTRUST_ACTION_GENERIC_VERIFY_V2;
  LONG st;
  wd->cbStruct = sizeof(*wd);
  wd->dwUIChoice = WTD_UI_NONE;
  wd->fdwRevocationChecks = WTD_REVOKE_NONE;
  wd->dwStateAction = WTD_STATEACTION_VERIFY;
  /* Never fetch from the network on the worker thread. */
  wd->dwProvFlags = WTD_CACHE_ONLY_URL_RETRIEVAL;
  SetLastError(0);
  st = WinVerifyTrust(NULL, &action, wd);
  *last = GetLastError();
  if (st != TRUST_E_NOSIGNATURE && st != TRUST_E_SUBJECT_FORM_UNKNOWN &&
      st != TRUST_E_PROVIDER_UNKNOWN)
    signer_name(wd->hWVTStateData, r);
  *have_chain = signer_chain_status(wd->hWVTStateData, chain);
  wd->dwStateAction = WTD_STATEACTION_CLOSE;
  WinVerifyTrust(NULL, &action, wd);
  return st;
}

static void set_signature(jw__imageid_t *r, int exists, const char *status) {
  r->has_code_signature = 1;
  r->code_signature.exists = exists;
  snprintf(r->code_signature.status, sizeof r->code_signature.status, "%s", status);
  r->code_signature.trusted = strcmp(status, "valid") == 0;
}

/* Chain errors that say nothing about the signature when revocation is
 * not checked (WTD_REVOKE_NONE). */
#define CHAIN_IGNORED (CERT_TRUST_REVOCATION_STATUS_UNKNOWN | CERT_TRUST_IS_OFFLINE_REVOCATION)

/* Maps a verification's answer; returns 1 when it said something.
 *
 * A success is believed only when the signer's chain agrees: Wine 8's
 * WinVerifyTrust answers ERROR_SUCCESS for a self-signed certificate that
 * no root trusts and for an expired one (docs/platform-support.md), while
 * the chain it built says CERT_TRUST_IS_UNTRUSTED_ROOT / _NOT_TIME_VALID.
 * On Windows a success comes with a clean chain, so this changes nothing
 * there. The order of the checks is the one Windows' Authenticode policy
 * reports them in. */
int jw__imageid_map_trust(long st, unsigned long last, unsigned long chain, int have_chain,
                          jw__imageid_t *r) {
  switch ((DWORD)st) {
  case ERROR_SUCCESS:
    if (!have_chain) {
      unavail(r, "code_signature",
              "WinVerifyTrust answered success without a signer chain to confirm it");
      return 0;
    }
    chain &= ~(DWORD)CHAIN_IGNORED;
    if (chain == 0)
      set_signature(r, 1, "valid");
    else if (chain & CERT_TRUST_IS_NOT_SIGNATURE_VALID)
      set_signature(r, 1, "bad_signature");
    else if (chain & (CERT_TRUST_IS_UNTRUSTED_ROOT | CERT_TRUST_IS_PARTIAL_CHAIN |
                      CERT_TRUST_IS_CYCLIC | CERT_TRUST_IS_EXPLICIT_DISTRUST))
      set_signature(r, 1, "untrusted");
    else if (chain & CERT_TRUST_IS_NOT_TIME_VALID)
      set_signature(r, 1, "expired");
    else if (chain & CERT_TRUST_IS_REVOKED)
      set_signature(r, 1, "revoked");
    else {
      unavail(r, "code_signature",
              "WinVerifyTrust answered success but the signer's chain has errors 0x%08lX",
              (unsigned long)chain);
      return 0;
    }
    return 1;
  case (DWORD)CERT_E_EXPIRED:
    set_signature(r, 1, "expired");
    return 1;
  case (DWORD)CERT_E_REVOKED:
    set_signature(r, 1, "revoked");
    return 1;
  case (DWORD)TRUST_E_BAD_DIGEST:
    set_signature(r, 1, "bad_signature");
    return 1;
  case (DWORD)CERT_E_UNTRUSTEDROOT:
  case (DWORD)CERT_E_CHAINING:
    set_signature(r, 1, "untrusted");
    return 1;
  default:
    break;
  }
  if ((DWORD)st == (DWORD)TRUST_E_NOSIGNATURE)
    unavail(r, "code_signature",
            "WinVerifyTrust answered TRUST_E_NOSIGNATURE with error 0x%08lX: a signature that "
            "cannot be read, not a missing one",
            (unsigned long)last);
  else
    unavail(r, "code_signature", "WinVerifyTrust answered 0x%08lX", (unsigned long)(DWORD)st);
  return 0;
}

typedef BOOL(WINAPI *acquire2_fn)(HCATADMIN *, const GUID *, const WCHAR *,
                                  const CERT_STRONG_SIGN_PARA *, DWORD);
typedef BOOL(WINAPI *calc2_fn)(HCATADMIN, HANDLE, DWORD *, BYTE *, DWORD);

/* Looks for a system catalog that lists the file (Windows' own binaries
 * are signed that way, not with an embedded signature) with one hash
 * algorithm, and verifies the file as its member. Returns 1 when a
 * catalog was found (r filled), 0 when none lists the file, -1 when the
 * lookup failed (r names why). The SHA-256 functions (Windows 8+) are
 * looked up at run time: Wine 8 lacks CryptCATAdminCalcHashFromFileHandle2. */
static int catalog_verify(HANDLE h, const wchar_t *path, int sha256, jw__imageid_t *r) {
  HMODULE wt = GetModuleHandleW(L"wintrust.dll"); /* loaded by trust_ready */
  acquire2_fn acquire2 = NULL;
  calc2_fn calc2 = NULL;
  HCATADMIN adm = NULL; /* owner: this function */
  HCATINFO ci = NULL;   /* owner: this function (released through adm) */
  BYTE *hash = NULL;
  DWORD hlen = 0, last = 0, i, chain = 0;
  int have_chain = 0;
  wchar_t *tag = NULL;
  CATALOG_INFO info;
  WINTRUST_CATALOG_INFO cat;
  WINTRUST_DATA wd;
  LARGE_INTEGER zero;
  LONG st;
  int ret = -1;

  if (sha256) {
    if (wt != NULL) {
      acquire2 = (acquire2_fn)(void *)GetProcAddress(wt, "CryptCATAdminAcquireContext2");
      calc2 = (calc2_fn)(void *)GetProcAddress(wt, "CryptCATAdminCalcHashFromFileHandle2");
    }
    if (acquire2 == NULL || calc2 == NULL)
      return 0; /* no SHA-256 catalogs on this system */
    if (!acquire2(&adm, NULL, BCRYPT_SHA256_ALGORITHM, NULL, 0)) {
      adm = NULL;
      unavail(r, "code_signature", "catalog lookup failed (CryptCATAdminAcquireContext2 error %lu)",
              (unsigned long)GetLastError());
      goto done;
    }
  } else if (!CryptCATAdminAcquireContext(&adm, NULL, 0)) {
    adm = NULL;
    unavail(r, "code_signature", "catalog lookup failed (CryptCATAdminAcquireContext error %lu)",
            (unsigned long)GetLastError());
    goto done;
  }
  zero.QuadPart = 0;
  SetFilePointerEx(h, zero, NULL, FILE_BEGIN);
  if (sha256 ? !calc2(adm, h, &hlen, NULL, 0)
             : !CryptCATAdminCalcHashFromFileHandle(h, &hlen, NULL, 0)) {
    if (GetLastError() != ERROR_INSUFFICIENT_BUFFER || hlen == 0) {
      unavail(r, "code_signature", "catalog lookup failed (file hash error %lu)",
              (unsigned long)GetLastError());
      goto done;
    }
  }
  hash = malloc(hlen);
  tag = malloc((2 * (size_t)hlen + 1) * sizeof(*tag));
  if (hash == NULL || tag == NULL) {
    unavail(r, "code_signature", "out of memory");
    goto done;
  }
  SetFilePointerEx(h, zero, NULL, FILE_BEGIN);
  if (sha256 ? !calc2(adm, h, &hlen, hash, 0)
             : !CryptCATAdminCalcHashFromFileHandle(h, &hlen, hash, 0)) {
    unavail(r, "code_signature", "catalog lookup failed (file hash error %lu)",
            (unsigned long)GetLastError());
    goto done;
  }
  ci = CryptCATAdminEnumCatalogFromHash(adm, hash, hlen, 0, NULL);
  if (ci == NULL) {
    ret = 0;
    goto done;
  }
  memset(&info, 0, sizeof info);
  info.cbStruct = sizeof info;
  if (!CryptCATCatalogInfoFromContext(ci, &info, 0)) {
    unavail(r, "code_signature", "catalog lookup failed (CryptCATCatalogInfoFromContext error %lu)",
            (unsigned long)GetLastError());
    goto done;
  }
  for (i = 0; i < hlen; i++)
    swprintf(tag + 2 * i, 3, L"%02X", hash[i]);
  memset(&cat, 0, sizeof cat);
  cat.cbStruct = sizeof cat;
  cat.pcwszCatalogFilePath = info.wszCatalogFile;
  cat.pcwszMemberTag = tag;
  cat.pcwszMemberFilePath = path;
  cat.hMemberFile = h;
  cat.pbCalculatedFileHash = hash;
  cat.cbCalculatedFileHash = hlen;
  cat.hCatAdmin = adm;
  memset(&wd, 0, sizeof wd);
  wd.dwUnionChoice = WTD_CHOICE_CATALOG;
  wd.pCatalog = &cat;
  st = verify(&wd, &last, &chain, &have_chain, r);
  jw__imageid_map_trust(st, last, chain, have_chain, r);
  ret = 1;
done:
  if (ci != NULL)
    CryptCATAdminReleaseCatalogContext(adm, ci, 0);
  if (adm != NULL)
    CryptCATAdminReleaseContext(adm, 0);
  free(hash);
  free(tag);
  return ret;
}

/* The Authenticode status of the file behind h: its embedded signature,
 * else a catalog that lists it; "unsigned" only when WinVerifyTrust says
 * there is no signature (TRUST_E_NOSIGNATURE with that same last error)
 * and no catalog lists the file. */
static void code_signature(HANDLE h, const wchar_t *path, jw__imageid_t *r) {
  WINTRUST_FILE_INFO fi;
  WINTRUST_DATA wd;
  LARGE_INTEGER zero;
  DWORD last = 0, chain = 0;
  LONG st;
  int c, have_chain = 0;
  if (!trust_ready()) {
    unavail(r, "code_signature",
            "wintrust.dll or crypt32.dll could not be loaded (Win32 error %lu)",
            (unsigned long)GetLastError());
    return;
  }

  memset(&fi, 0, sizeof fi);
  fi.cbStruct = sizeof fi;
  fi.pcwszFilePath = path;
  fi.hFile = h; /* the identified file, not whatever the path names now */
  memset(&wd, 0, sizeof wd);
  wd.dwUnionChoice = WTD_CHOICE_FILE;
  wd.pFile = &fi;
  zero.QuadPart = 0;
  SetFilePointerEx(h, zero, NULL, FILE_BEGIN);
  st = verify(&wd, &last, &chain, &have_chain, r);
  if ((DWORD)st != (DWORD)TRUST_E_NOSIGNATURE || last != (DWORD)TRUST_E_NOSIGNATURE) {
    jw__imageid_map_trust(st, last, chain, have_chain, r);
    return;
  }
  /* No embedded signature: a catalog may sign it (SHA-256 catalogs
   * first, then SHA-1 ones). */
  c = catalog_verify(h, path, 1, r);
  if (c == 0)
    c = catalog_verify(h, path, 0, r);
  if (c == 0)
    set_signature(r, 0, "unsigned");
}

/* ------------------------------------------------------------------------ */
/* One identity                                                             */
/* ------------------------------------------------------------------------ */

/* Everything that reads the content, from the handle open_identify
 * returned (r->key filled). Returns 1 when the result may be cached
 * (nothing changed while it was read). */
static int compute(BCRYPT_ALG_HANDLE alg, HANDLE h, const wchar_t *path, uint64_t cap,
                   jw__imageid_t *r, uint64_t *bytes) {
  int cacheable = 1;

  if (hash_handle(alg, h, cap, r, bytes))
    cacheable = 0;
  version_info(h, r->key.size, r);
  if (r->key.size > cap) {
    char c[32];
    cap_text(cap, c, sizeof c);
    unavail(r, "code_signature", "image larger than the %s hashing cap", c);
  } else {
    code_signature(h, path, r);
  }
  return cacheable;
}

int jw__imageid_compute(const wchar_t *path, uint64_t cap_bytes, jw__imageid_t *out) {
  BCRYPT_ALG_HANDLE alg = NULL; /* owner: this function */
  HANDLE h = NULL;              /* owner: this function */
  uint64_t bytes = 0;
  int rc;
  if (path == NULL || out == NULL)
    return JW_EINVAL;
  memset(out, 0, sizeof(*out));
  if (cap_bytes == 0)
    cap_bytes = JW_IMAGEID_DEFAULT_CAP;
  rc = open_identify(path, &h, out);
  if (rc != 0)
    return rc;
  if (BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL, 0) != STATUS_SUCCESS) {
    alg = NULL;
    unavail(out, "hash", "the SHA-256 provider cannot be opened");
  }
  if (alg != NULL)
    compute(alg, h, path, cap_bytes, out, &bytes);
  CloseHandle(h);
  if (alg != NULL)
    BCryptCloseAlgorithmProvider(alg, 0);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The service                                                              */
/* ------------------------------------------------------------------------ */

typedef struct entry_s {
  struct entry_s *next; /* bucket chain */
  jw__imageid_t r;
} entry_t;

typedef struct {
  HANDLE file;   /* owner: the request (the worker, or stop, closes it) */
  wchar_t *path; /* owned */
  uint64_t cookie;
  jw__imageid_key_t key;
} req_t;

#define BUCKETS (JW_IMAGEID_CACHE_MAX * 2)

struct jw__imageid_svc_s {
  jw__mutex_t lock;      /* guards everything below but alg, cap, cb, ctx */
  jw__cond_t wake;       /* the worker waits for a request or quit */
  jw__cond_t idle;       /* flush waits for an empty queue and an idle worker */
  HANDLE thread;         /* owner: the service; the worker */
  BCRYPT_ALG_HANDLE alg; /* owner: the service; SHA-256, opened once */
  uint64_t cap;
  jw__imageid_cb cb;
  void *ctx;
  req_t queue[JW_IMAGEID_QUEUE_MAX];
  unsigned q_head, q_count;
  int busy, quit, hold;
  /* stop gave up waiting for the worker (stuck in a file that does not
   * answer): it calls back no more and leaves the service to the process's
   * exit; in_cb: the worker is inside the callback (stop waits it out). */
  int abandoned, in_cb;
  /* The cache: a hash table of BUCKETS chains; ring[] holds the entries
   * in insertion order, so the oldest is evicted first. */
  entry_t *buckets[BUCKETS];
  entry_t *ring[JW_IMAGEID_CACHE_MAX];
  unsigned ring_pos;
  unsigned cache_max; /* entries kept: JW_IMAGEID_CACHE_MAX (less in tests) */
  jw__imageid_counters_t c;
  jw__imageid_t work; /* the worker's result being built (worker only) */
};

static size_t key_bucket(const jw__imageid_key_t *k) {
  uint64_t x = k->file_index ^ ((uint64_t)k->volume_serial << 32) ^
               (k->size * 0x9E3779B97F4A7C15ull) ^ (k->last_write * 0xC2B2AE3D27D4EB4Full);
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  return (size_t)(x % BUCKETS);
}

/* Lock held. */
static entry_t *cache_find(jw__imageid_svc_t *s, const jw__imageid_key_t *k) {
  entry_t *e;
  for (e = s->buckets[key_bucket(k)]; e != NULL; e = e->next)
    if (key_equal(&e->r.key, k))
      return e;
  return NULL;
}

/* Lock held. Stores a copy of r, evicting the oldest entry when full. */
static void cache_put(jw__imageid_svc_t *s, const jw__imageid_t *r) {
  entry_t *e = s->ring[s->ring_pos], **pp;
  if (cache_find(s, &r->key) != NULL)
    return;
  if (e != NULL) {
    for (pp = &s->buckets[key_bucket(&e->r.key)]; *pp != NULL; pp = &(*pp)->next) {
      if (*pp == e) {
        *pp = e->next;
        break;
      }
    }
    s->c.evicted++;
  } else {
    e = malloc(sizeof(*e));
    if (e == NULL)
      return;
  }
  e->r = *r;
  e->next = s->buckets[key_bucket(&r->key)];
  s->buckets[key_bucket(&r->key)] = e;
  s->ring[s->ring_pos] = e;
  s->ring_pos = (s->ring_pos + 1) % s->cache_max;
}

static unsigned __stdcall worker_main(void *arg) {
  jw__imageid_svc_t *s = arg;
  jw__imageid_t *r = &s->work;
  jw__mutex_lock(&s->lock);
  for (;;) {
    req_t q;
    entry_t *e;
    int cacheable, rc;
    uint64_t bytes = 0;
    while (!s->quit && (s->q_count == 0 || s->hold))
      jw__cond_wait(&s->wake, &s->lock);
    if (s->quit)
      break;
    q = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % JW_IMAGEID_QUEUE_MAX;
    s->q_count--;
    s->busy = 1;
    if (q.file == NULL) {
      /* A network path: opened here, never on the requester's thread. */
      jw__mutex_unlock(&s->lock);
      memset(r, 0, sizeof(*r));
      rc = open_identify(q.path, &q.file, r);
      jw__mutex_lock(&s->lock);
      if (rc == 0)
        q.key = r->key;
    }
    if (q.file == NULL) {
      jw__mutex_unlock(&s->lock); /* r names why it could not be opened */
    } else if ((e = cache_find(s, &q.key)) != NULL) {
      /* A duplicate queued before the first was done. */
      *r = e->r;
      s->c.worker_hits++;
      jw__mutex_unlock(&s->lock);
    } else {
      jw__mutex_unlock(&s->lock);
      memset(r, 0, sizeof(*r));
      r->has_key = 1;
      r->key = q.key;
      r->has_image_size = 1;
      r->image_size = q.key.size;
      cacheable = compute(s->alg, q.file, q.path, s->cap, r, &bytes);
      jw__mutex_lock(&s->lock);
      s->c.computed++;
      s->c.hashed_bytes += bytes;
      if (cacheable)
        cache_put(s, r);
      jw__mutex_unlock(&s->lock);
    }
    if (q.file != NULL)
      CloseHandle(q.file);
    free(q.path);
    jw__mutex_lock(&s->lock);
    if (s->abandoned)
      break; /* its caller is gone: no callback */
    s->in_cb = 1;
    jw__mutex_unlock(&s->lock);
    s->cb(s->ctx, q.cookie, r);
    jw__mutex_lock(&s->lock);
    s->in_cb = 0;
    s->busy = 0;
    jw__cond_broadcast(&s->idle);
  }
  jw__mutex_unlock(&s->lock);
  return 0;
}

int jw__imageid_start(jw__imageid_svc_t **out, uint64_t cap_bytes, jw__imageid_cb cb, void *ctx) {
  jw__imageid_svc_t *s;
  if (out == NULL || cb == NULL)
    return JW_EINVAL;
  *out = NULL;
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return JW_ENOMEM;
  s->cap = cap_bytes ? cap_bytes : JW_IMAGEID_DEFAULT_CAP;
  s->cache_max = JW_IMAGEID_CACHE_MAX;
  s->cb = cb;
  s->ctx = ctx;
  if (BCryptOpenAlgorithmProvider(&s->alg, BCRYPT_SHA256_ALGORITHM, NULL, 0) != STATUS_SUCCESS) {
    free(s);
    return JW_ESYS;
  }
  jw__mutex_init(&s->lock);
  jw__cond_init(&s->wake);
  jw__cond_init(&s->idle);
  s->thread = jw__thread_begin(worker_main, s, 0, 0);
  if (s->thread == NULL) {
    BCryptCloseAlgorithmProvider(s->alg, 0);
    jw__cond_destroy(&s->wake);
    jw__cond_destroy(&s->idle);
    jw__mutex_destroy(&s->lock);
    free(s);
    return JW_ESYS;
  }
  *out = s;
  return 0;
}

void jw__imageid_test_remote(jw__imageid_remote_fn fn) {
  remote_hook = fn;
}

int jw__imageid_dos_target_local(const wchar_t *target) {
  static const wchar_t disk[] = L"\\Device\\Harddisk";
  return target != NULL && _wcsnicmp(target, disk, sizeof(disk) / sizeof(disk[0]) - 1) == 0;
}

/* Whether jw__imageid_request leaves path to the worker: a network path
 * (imageid.h). */
static int is_remote(const wchar_t *path) {
  wchar_t drive[3], target[MAX_PATH + 64];
  if (remote_hook != NULL && remote_hook(path, 0))
    return 1;
  /* \\?\C:\... is a local drive's path in the long form. */
  if (wcsncmp(path, L"\\\\?\\", 4) == 0 && path[4] != L'\0' && path[5] == L':')
    path += 4;
  /* \\server\share, \\?\UNC\..., \\.\device, \\?\Volume{...}: not a
   * file of a local drive letter; left to the worker. */
  if (path[0] == L'\\' || path[0] == L'/')
    return 1;
  if (path[0] == L'\0' || path[1] != L':')
    return 1;
  /* What the drive letter links to, read from the object manager: no
   * request reaches the drive (GetDriveTypeW opens the drive's root on
   * Windows, which for a mapped share goes to the redirector). A disk
   * volume is local; a redirector, a SUBST, anything else or a letter
   * that cannot be read goes to the worker: at worst its identity comes
   * in a process_update instead of the start. */
  drive[0] = path[0];
  drive[1] = L':';
  drive[2] = L'\0';
  if (QueryDosDeviceW(drive, target, (DWORD)(sizeof(target) / sizeof(target[0]))) == 0)
    return 1;
  return !jw__imageid_dos_target_local(target);
}

int jw__imageid_request(jw__imageid_svc_t *s, const wchar_t *path, uint64_t cookie,
                        jw__imageid_t *out) {
  HANDLE h = NULL; /* owner: this function, then the queued request */
  entry_t *e = NULL;
  wchar_t *copy;
  int rc, remote;
  if (out == NULL)
    return JW_EINVAL;
  memset(out, 0, sizeof(*out));
  if (s == NULL || path == NULL)
    return JW_EINVAL;
  remote = is_remote(path);
  if (!remote && (rc = open_identify(path, &h, out)) != 0)
    return rc;
  copy = _wcsdup(path);
  jw__mutex_lock(&s->lock);
  if (!remote)
    e = cache_find(s, &out->key);
  if (e != NULL) {
    *out = e->r;
    s->c.hits++;
    jw__mutex_unlock(&s->lock);
    CloseHandle(h);
    free(copy);
    return JW_IMAGEID_CACHED;
  }
  if (s->q_count >= JW_IMAGEID_QUEUE_MAX || copy == NULL) {
    int nomem = copy == NULL;
    if (!nomem)
      s->c.full++;
    jw__mutex_unlock(&s->lock);
    CloseHandle(h);
    free(copy);
    /* No callback for a refused request: remembering it would take the
     * memory the bound is there to cap. The caller reports it now. */
    unavail_all(out, 0, nomem ? "out of memory" : "identity queue full");
    return nomem ? JW_ENOMEM : JW_IMAGEID_FULL;
  }
  {
    req_t *q = &s->queue[(s->q_head + s->q_count) % JW_IMAGEID_QUEUE_MAX];
    q->file = h; /* NULL: a network path, opened by the worker */
    q->path = copy;
    q->cookie = cookie;
    q->key = out->key;
  }
  s->q_count++;
  s->c.misses++;
  if (remote)
    s->c.remote++;
  jw__cond_broadcast(&s->wake);
  jw__mutex_unlock(&s->lock);
  return JW_IMAGEID_QUEUED;
}

int jw__imageid_flush(jw__imageid_svc_t *s, uint32_t timeout_ms) {
  ULONGLONG deadline = GetTickCount64() + timeout_ms;
  int rc = 0;
  jw__mutex_lock(&s->lock);
  while (s->q_count > 0 || s->busy) {
    ULONGLONG now = GetTickCount64();
    if (now >= deadline) {
      rc = JW_ETIMEDOUT;
      break;
    }
    jw__cond_timedwait(&s->idle, &s->lock, (uint32_t)(deadline - now));
  }
  jw__mutex_unlock(&s->lock);
  return rc;
}

void jw__imageid_stop(jw__imageid_svc_t *s) {
  unsigned i;
  if (s == NULL)
    return;
  jw__mutex_lock(&s->lock);
  s->quit = 1;
  jw__cond_broadcast(&s->wake);
  jw__mutex_unlock(&s->lock);
  if (WaitForSingleObject(s->thread, JW_IMAGEID_STOP_MS) != WAIT_OBJECT_0) {
    /* Stuck in a file (a share that stopped answering, a huge read): it
     * is left to the process's exit, with the service it uses; it calls
     * back no more once the callback it may be in has returned. */
    jw__mutex_lock(&s->lock);
    s->abandoned = 1;
    while (s->in_cb)
      jw__cond_wait(&s->idle, &s->lock);
    jw__mutex_unlock(&s->lock);
    CloseHandle(s->thread);
    return;
  }
  CloseHandle(s->thread);
  for (i = 0; i < s->q_count; i++) {
    req_t *q = &s->queue[(s->q_head + i) % JW_IMAGEID_QUEUE_MAX];
    if (q->file != NULL)
      CloseHandle(q->file);
    free(q->path);
  }
  for (i = 0; i < JW_IMAGEID_CACHE_MAX; i++)
    free(s->ring[i]);
  BCryptCloseAlgorithmProvider(s->alg, 0);
  jw__cond_destroy(&s->wake);
  jw__cond_destroy(&s->idle);
  jw__mutex_destroy(&s->lock);
  free(s);
}

void jw__imageid_counters(jw__imageid_svc_t *s, jw__imageid_counters_t *out) {
  jw__mutex_lock(&s->lock);
  *out = s->c;
  jw__mutex_unlock(&s->lock);
}

int jw__imageid_test_cache_max(jw__imageid_svc_t *s, unsigned n) {
  int rc = JW_EINVAL;
  jw__mutex_lock(&s->lock);
  if (n >= 1 && n <= JW_IMAGEID_CACHE_MAX && s->ring[0] == NULL) {
    s->cache_max = n;
    rc = 0;
  }
  jw__mutex_unlock(&s->lock);
  return rc;
}

void jw__imageid_test_hold(jw__imageid_svc_t *s, int hold) {
  jw__mutex_lock(&s->lock);
  s->hold = hold;
  jw__cond_broadcast(&s->wake);
  jw__mutex_unlock(&s->lock);
}

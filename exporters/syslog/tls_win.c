/* TLS client for syslog over TLS (RFC 5425) through SChannel; API in tls.h.
 *
 * Design
 *
 * - No TLS or cryptography of our own: the handshake, the records and the
 *   certificate checks are Windows' (SChannel through SSPI; crypt32's chain
 *   engine and its SSL chain policy). This file only moves bytes between
 *   the socket and SSPI, and decides which certificate answers are fatal.
 *
 * - secur32.dll and crypt32.dll are loaded on first use (jw__tls_creds_new),
 *   never imported: crypt32 imports user32, and a process that loads user32
 *   connects to a desktop (under Wine it starts explorer.exe as its own
 *   child; docs/platform-support.md). Every executable linking jobwarden
 *   doubles as a sandboxed test program and must not carry it.
 *
 * - Validation is always ours (SCH_CRED_MANUAL_CRED_VALIDATION): SChannel's
 *   automatic check would trust every system root, and `ca=` must mean
 *   "this CA and no other" (Wine's SChannel checks nothing at all:
 *   measured). After the handshake the server's certificate
 *   (SECPKG_ATTR_REMOTE_CERT_CONTEXT) goes through, in this order:
 *     1. CertGetCertificateChain, with the certificates the server sent and
 *        those of `ca=` as additional stores, for server-auth usage;
 *     2. with `ca=`: the chain's last certificate must be one of the file's,
 *        compared byte for byte (a server can send a root of its own; a
 *        system root does not count either). Wine has no exclusive-root
 *        chain engine (hExclusiveRoot: E_INVALIDARG), hence this;
 *     3. CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL), told with
 *        `ca=` to accept a root the system does not trust (step 2 checked
 *        it), nothing else: time validity of every certificate, server-auth
 *        usage, signatures, and the DNS name (SAN dNSName, or the common
 *        name when the certificate has no DNS name);
 *     4. the chain's own status: what the policy let pass is refused all
 *        the same, but for revocation (not asked for) and, with `ca=`, the
 *        untrusted root. Wine's policy passes a chain whose issuer is
 *        nowhere (measured); Windows answers CERT_E_CHAINING;
 *     5. an IP literal is matched against the SAN iPAddress entries here,
 *        as bytes (inet_pton), because Wine's policy never matches one
 *        (measured); the policy's name check is skipped for it.
 *   Revocation is not checked: collectors on private CAs rarely publish a
 *   CRL or OCSP responder, and an unreachable one would refuse every
 *   connection. `insecure` skips 1-5. A refused server is told why with a
 *   fatal alert (close_notify under Wine, which makes no alert token).
 *
 * - TLS 1.2 or later (RFC 9662 updates RFC 5425 so): SCH_CREDENTIALS with
 *   SSL 2/3 and TLS 1.0/1.1 disabled, which lets a Windows that has TLS 1.3
 *   use it; where SCH_CREDENTIALS is unknown (before Windows 10 1809),
 *   SCHANNEL_CRED with TLS 1.2 only. The negotiated version is checked
 *   after the handshake: Wine ignores the disabled versions of
 *   SCH_CREDENTIALS and negotiates TLS 1.1 with a server that offers no
 *   more (measured). Nothing is sent on such a connection.
 *
 * - The socket is non-blocking from jw__tls_connect on, and every wait is a
 *   select() bounded by a deadline: the handshake and each send have
 *   timeout_ms, jw__tls_peer_closed and jw__tls_close never wait. A failed
 *   send may leave half a record on the wire, so the session is then
 *   broken for good.
 *
 * - A syslog collector never sends application data. jw__tls_peer_closed
 *   drains what arrived without waiting: end of stream, a reset, a
 *   close_notify (SEC_I_CONTEXT_EXPIRED on Windows; under Wine 8 a record
 *   that decrypts to nothing, which counts as one) or a record that does
 *   not decrypt mean the server is gone. TLS 1.3 post-handshake messages
 *   (session tickets) come out of DecryptMessage as SEC_I_RENEGOTIATE and
 *   are given back to InitializeSecurityContextW, as SChannel requires
 *   (windows-only: Wine 8 speaks TLS 1.2 at most). */
#define SECURITY_WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#include <wincrypt.h>
#define SCHANNEL_USE_BLACKLISTS
#include <subauth.h>
#include <schannel.h>
#include <security.h>
#include <sspi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "syslog/tls.h"

/* SSL_EXTRA_CERT_CHAIN_POLICY_PARA.fdwChecks (documented with
 * CertVerifyCertificateChainPolicy; defined in winhttp.h / wininet.h). */
#ifndef SECURITY_FLAG_IGNORE_CERT_CN_INVALID
#define SECURITY_FLAG_IGNORE_CERT_CN_INVALID 0x00001000
#endif

#define CA_FILE_MAX   (1024 * 1024)
#define HANDSHAKE_MAX (256 * 1024)             /* largest handshake input we buffer */
#define RECORD_MAX    (5 + 16384 + 2048 + 256) /* a TLS record, with room */
/* Records encrypted before one send: under Wine every socket call is a
 * round trip to the wineserver, so a batch goes out in few of them. */
#define GROUP_RECORDS 16
#define PEM_BEGIN     "-----BEGIN CERTIFICATE-----"
#define PEM_END       "-----END CERTIFICATE-----"

/* ------------------------------------------------------------------------ */
/* secur32 and crypt32, loaded on first use                                 */
/* ------------------------------------------------------------------------ */

#define CRYPT32_FUNCTIONS(X)                                                                       \
  X(CertOpenStore)                                                                                 \
  X(CertCloseStore)                                                                                \
  X(CertAddEncodedCertificateToStore)                                                              \
  X(CertAddStoreToCollection)                                                                      \
  X(CertEnumCertificatesInStore)                                                                   \
  X(CertFreeCertificateContext)                                                                    \
  X(CertGetCertificateChain)                                                                       \
  X(CertFreeCertificateChain)                                                                      \
  X(CertVerifyCertificateChainPolicy)                                                              \
  X(CertNameToStrW)                                                                                \
  X(CertGetNameStringW)                                                                            \
  X(CertFindExtension)                                                                             \
  X(CryptDecodeObjectEx)                                                                           \
  X(CryptStringToBinaryA)

static struct {
#define X(name) __typeof__(&name) name##_;
  CRYPT32_FUNCTIONS(X)
#undef X
  PSecurityFunctionTableW sspi;
  DWORD error; /* why loading failed (Win32), 0 when ok */
  const char *missing;
} api;
static INIT_ONCE api_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK load_api(PINIT_ONCE once, PVOID param, PVOID *context) {
  HMODULE sec, c32;
  INIT_SECURITY_INTERFACE_W init;
  (void)once;
  (void)param;
  (void)context;
  sec = LoadLibraryW(L"secur32.dll");
  if (sec == NULL) {
    api.error = GetLastError();
    api.missing = "secur32.dll";
    return TRUE;
  }
  c32 = LoadLibraryW(L"crypt32.dll");
  if (c32 == NULL) {
    api.error = GetLastError();
    api.missing = "crypt32.dll";
    return TRUE;
  }
#define X(name)                                                                                    \
  api.name##_ = (__typeof__(api.name##_))(void *)GetProcAddress(c32, #name);                       \
  if (api.name##_ == NULL) {                                                                       \
    api.error = GetLastError();                                                                    \
    api.missing = "crypt32.dll!" #name;                                                            \
    return TRUE;                                                                                   \
  }
  CRYPT32_FUNCTIONS(X)
#undef X
  init = (INIT_SECURITY_INTERFACE_W)(void *)GetProcAddress(sec, "InitSecurityInterfaceW");
  api.sspi = init != NULL ? init() : NULL;
  if (api.sspi == NULL) {
    api.error = init == NULL ? GetLastError() : ERROR_NOT_SUPPORTED;
    api.missing = "secur32.dll!InitSecurityInterfaceW";
  }
  return TRUE;
}

static int api_ready(jw_error_t *err) {
  char why[256];
  InitOnceExecuteOnce(&api_once, load_api, NULL, NULL);
  if (api.sspi != NULL)
    return 0;
  jw__sys_error_text(api.error, why, sizeof why);
  return jw_error_set(err, JW_ESYS, api.error, "tls", "TLS is unavailable: cannot load %s: %s",
                      api.missing, why);
}

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* A UTF-8 copy of a wide string into buf (truncated), "" when it fails. */
static void wide_to_utf8(const wchar_t *w, char *buf, size_t size) {
  if (size == 0)
    return;
  if (w == NULL || WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)size, NULL, NULL) <= 0)
    buf[0] = '\0';
  buf[size - 1] = '\0';
}

/* A distinguished name as "CN=..., O=..." (UTF-8). */
static void name_text(CERT_NAME_BLOB *name, char *buf, size_t size) {
  wchar_t w[512];
  DWORD n = api.CertNameToStrW_(X509_ASN_ENCODING, name,
                                CERT_X500_NAME_STR | CERT_NAME_STR_REVERSE_FLAG, w, 512);
  if (n <= 1) {
    snprintf(buf, size, "%s", "(no name)");
    return;
  }
  wide_to_utf8(w, buf, size);
}

static void cert_subject(PCCERT_CONTEXT cert, char *buf, size_t size) {
  name_text(&cert->pCertInfo->Subject, buf, size);
}

/* Whom the chain leads up to: the subject of its last certificate when
 * that one is self-signed (a root), else the issuer it names, which
 * neither the server nor the CA file provided. */
static void chain_top(PCCERT_CHAIN_CONTEXT chain, char *buf, size_t size) {
  const CERT_SIMPLE_CHAIN *simple = chain->rgpChain[0];
  const CERT_CHAIN_ELEMENT *top = simple->rgpElement[simple->cElement - 1];
  if (top->TrustStatus.dwInfoStatus & CERT_TRUST_IS_SELF_SIGNED)
    name_text(&top->pCertContext->pCertInfo->Subject, buf, size);
  else
    name_text(&top->pCertContext->pCertInfo->Issuer, buf, size);
}

/* "2020-01-02 00:00:00 UTC" */
static void filetime_text(const FILETIME *ft, char *buf, size_t size) {
  SYSTEMTIME st;
  if (!FileTimeToSystemTime(ft, &st)) {
    snprintf(buf, size, "%s", "(unreadable time)");
    return;
  }
  snprintf(buf, size, "%04u-%02u-%02u %02u:%02u:%02u UTC", st.wYear, st.wMonth, st.wDay, st.wHour,
           st.wMinute, st.wSecond);
}

/* A system error as "its text (0x8009310B)", or "error 0x8009310B" when
 * the system has no text for it (Wine for most crypt32 codes). */
static void code_text(DWORD code, char *buf, size_t size) {
  char why[256];
  jw__sys_error_text(code, why, sizeof why);
  if (strncmp(why, "Win32 error ", 12) == 0)
    snprintf(buf, size, "error 0x%08lX", (unsigned long)code);
  else
    snprintf(buf, size, "%s (0x%08lX)", why, (unsigned long)code);
}

static ULONGLONG now_ms(void) {
  return GetTickCount64();
}

/* Milliseconds left until deadline, 0 when it has passed. */
static DWORD left_ms(ULONGLONG deadline) {
  ULONGLONG now = now_ms();
  return now >= deadline ? 0 : (DWORD)(deadline - now);
}

/* Waits until s is readable (write 0) or writable (write 1), at most until
 * deadline. 1 ready, 0 timed out, -1 select failed (WSAGetLastError). */
static int wait_socket(SOCKET s, int write, ULONGLONG deadline) {
  fd_set set, ex;
  struct timeval tv;
  DWORD ms = left_ms(deadline);
  int r;
  FD_ZERO(&set);
  FD_ZERO(&ex);
  FD_SET(s, &set);
  FD_SET(s, &ex);
  tv.tv_sec = (long)(ms / 1000);
  tv.tv_usec = (long)(ms % 1000) * 1000;
  r = select(0, write ? NULL : &set, write ? &set : NULL, &ex, &tv);
  if (r == SOCKET_ERROR)
    return -1;
  return r > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Credentials and the CA file                                              */
/* ------------------------------------------------------------------------ */

struct jw__tls_creds_s {
  CredHandle cred; /* owner: these creds (FreeCredentialsHandle) */
  int have_cred;
  HCERTSTORE ca; /* owner: these creds; the certificates of ca_file, NULL
                    for the system's roots or insecure */
  int insecure;
  char ca_file[MAX_PATH * 4];
};

/* Reads the whole CA file (malloc'd, NUL-terminated) into *out. */
static int read_ca_file(const char *path, char **out, size_t *len, jw_error_t *err) {
  wchar_t *wpath = jw__utf8_to_wide(path);
  HANDLE h;
  LARGE_INTEGER size;
  DWORD got = 0, e;
  char why[256];
  char *buf;
  if (wpath == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "ca", "the CA file name is not valid UTF-8");
  h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL,
                  NULL);
  e = GetLastError();
  free(wpath);
  if (h == INVALID_HANDLE_VALUE) {
    jw__sys_error_text(e, why, sizeof why);
    return jw_error_set(err,
                        e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? JW_ENOENT : JW_EIO,
                        e, "ca", "cannot open the CA file %s: %s", path, why);
  }
  if (!GetFileSizeEx(h, &size)) {
    e = GetLastError();
    CloseHandle(h);
    jw__sys_error_text(e, why, sizeof why);
    return jw_error_set(err, JW_EIO, e, "ca", "cannot read the CA file %s: %s", path, why);
  }
  if (size.QuadPart == 0 || size.QuadPart > CA_FILE_MAX) {
    CloseHandle(h);
    if (size.QuadPart == 0)
      return jw_error_set(err, JW_EINVAL, 0, "ca",
                          "the CA file %s is empty: expected PEM certificates or one DER "
                          "certificate",
                          path);
    return jw_error_set(err, JW_EINVAL, 0, "ca",
                        "the CA file %s is %lld bytes, more than a CA file can be (1 MiB)", path,
                        (long long)size.QuadPart);
  }
  buf = malloc((size_t)size.QuadPart + 1);
  if (buf == NULL) {
    CloseHandle(h);
    return jw_error_set(err, JW_ENOMEM, 0, "ca", "out of memory");
  }
  if (!ReadFile(h, buf, (DWORD)size.QuadPart, &got, NULL) || got != (DWORD)size.QuadPart) {
    e = GetLastError();
    CloseHandle(h);
    free(buf);
    jw__sys_error_text(e, why, sizeof why);
    return jw_error_set(err, JW_EIO, e, "ca", "cannot read the CA file %s: %s", path, why);
  }
  CloseHandle(h);
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

static unsigned line_of(const char *text, const char *at) {
  unsigned line = 1;
  for (; text < at; text++)
    line += *text == '\n';
  return line;
}

/* Adds every certificate of the CA file to store: PEM CERTIFICATE blocks,
 * or the whole file as one DER certificate when it has no PEM block. */
static int parse_ca_file(HCERTSTORE store, const char *path, const char *text, size_t len,
                         jw_error_t *err) {
  const char *p = text;
  int blocks = 0;
  char why[256];
  DWORD e;
  /* text is NUL-terminated: a DER file's first NUL byte ends the search,
   * which finds no PEM block in it. */
  while ((p = strstr(p, PEM_BEGIN)) != NULL) {
    const char *end = strstr(p + strlen(PEM_BEGIN), PEM_END);
    BYTE *der;
    DWORD der_len = 0;
    blocks++;
    if (end == NULL)
      return jw_error_set(err, JW_EINVAL, 0, "ca",
                          "the CA file %s: certificate %d (line %u) has no \"" PEM_END "\" line",
                          path, blocks, line_of(text, p));
    end += strlen(PEM_END);
    if (!api.CryptStringToBinaryA_(p, (DWORD)(end - p), CRYPT_STRING_BASE64HEADER, NULL, &der_len,
                                   NULL, NULL) ||
        der_len == 0) {
      e = GetLastError();
      code_text(e, why, sizeof why);
      return jw_error_set(err, JW_EINVAL, e, "ca",
                          "the CA file %s: certificate %d (line %u) is not valid base64: %s", path,
                          blocks, line_of(text, p), why);
    }
    der = malloc(der_len);
    if (der == NULL)
      return jw_error_set(err, JW_ENOMEM, 0, "ca", "out of memory");
    if (!api.CryptStringToBinaryA_(p, (DWORD)(end - p), CRYPT_STRING_BASE64HEADER, der, &der_len,
                                   NULL, NULL) ||
        !api.CertAddEncodedCertificateToStore_(store, X509_ASN_ENCODING, der, der_len,
                                               CERT_STORE_ADD_USE_EXISTING, NULL)) {
      e = GetLastError();
      free(der);
      code_text(e, why, sizeof why);
      return jw_error_set(err, JW_EINVAL, e, "ca",
                          "the CA file %s: certificate %d (line %u) is not an X.509 certificate: "
                          "%s",
                          path, blocks, line_of(text, p), why);
    }
    free(der);
    p = end;
  }
  if (blocks > 0)
    return 0;
  if (strstr(text, "-----BEGIN ") != NULL)
    return jw_error_set(err, JW_EINVAL, 0, "ca",
                        "the CA file %s holds no certificate: it has PEM blocks, but none is a "
                        "\"" PEM_BEGIN "\" block",
                        path);
  if (!api.CertAddEncodedCertificateToStore_(store, X509_ASN_ENCODING, (const BYTE *)text,
                                             (DWORD)len, CERT_STORE_ADD_USE_EXISTING, NULL)) {
    e = GetLastError();
    code_text(e, why, sizeof why);
    return jw_error_set(err, JW_EINVAL, e, "ca",
                        "the CA file %s holds no certificate: it is neither PEM (\"" PEM_BEGIN
                        "\" blocks) nor one DER certificate: %s",
                        path, why);
  }
  return 0;
}

int jw__tls_creds_new(const jw__tls_config_t *cfg, jw__tls_creds_t **out, jw_error_t *err) {
  jw__tls_creds_t *c = NULL;
  char *text = NULL;
  size_t len = 0;
  SECURITY_STATUS ss;
  TimeStamp expiry;
  DWORD flags = SCH_CRED_MANUAL_CRED_VALIDATION | SCH_CRED_NO_DEFAULT_CREDS | SCH_USE_STRONG_CRYPTO;
  SCH_CREDENTIALS sc;
  TLS_PARAMETERS tp;
  int rc;
  *out = NULL;
  if (cfg == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "tls", "no TLS configuration");
  if (cfg->insecure && cfg->ca_file != NULL)
    return jw_error_set(err, JW_EINVAL, 0, "ca",
                        "ca=%s and insecure contradict each other: insecure checks no certificate",
                        cfg->ca_file);
  if ((rc = api_ready(err)) != 0)
    return rc;
  c = calloc(1, sizeof *c);
  if (c == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "tls", "out of memory");
  c->insecure = cfg->insecure != 0;
  if (cfg->ca_file != NULL) {
    jw__strlcpy(c->ca_file, cfg->ca_file, sizeof c->ca_file);
    if ((rc = read_ca_file(cfg->ca_file, &text, &len, err)) != 0)
      goto done;
    c->ca = api.CertOpenStore_(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
    if (c->ca == NULL) {
      rc = jw_error_set(err, JW_ESYS, GetLastError(), "ca", "cannot create a certificate store");
      goto done;
    }
    if ((rc = parse_ca_file(c->ca, cfg->ca_file, text, len, err)) != 0)
      goto done;
  }

  memset(&sc, 0, sizeof sc);
  memset(&tp, 0, sizeof tp);
  sc.dwVersion = SCH_CREDENTIALS_VERSION;
  sc.dwFlags = flags;
  tp.grbitDisabledProtocols =
      SP_PROT_SSL2_CLIENT | SP_PROT_SSL3_CLIENT | SP_PROT_TLS1_0_CLIENT | SP_PROT_TLS1_1_CLIENT;
  sc.cTlsParameters = 1;
  sc.pTlsParameters = &tp;
  ss = api.sspi->AcquireCredentialsHandleW(NULL, (SEC_WCHAR *)UNISP_NAME_W, SECPKG_CRED_OUTBOUND,
                                           NULL, &sc, NULL, NULL, &c->cred, &expiry);
  if (ss != SEC_E_OK) {
    /* Before Windows 10 1809: no SCH_CREDENTIALS, so TLS 1.2 exactly. */
    SCHANNEL_CRED old;
    memset(&old, 0, sizeof old);
    old.dwVersion = SCHANNEL_CRED_VERSION;
    old.dwFlags = flags;
    old.grbitEnabledProtocols = SP_PROT_TLS1_2_CLIENT;
    ss = api.sspi->AcquireCredentialsHandleW(NULL, (SEC_WCHAR *)UNISP_NAME_W, SECPKG_CRED_OUTBOUND,
                                             NULL, &old, NULL, NULL, &c->cred, &expiry);
  }
  if (ss != SEC_E_OK) {
    char why[256];
    jw__sys_error_text((uint32_t)ss, why, sizeof why);
    rc = jw_error_set(err, JW_ESYS, (uint32_t)ss, "tls",
                      "SChannel gave no TLS client credentials: %s (0x%08lx)", why,
                      (unsigned long)ss);
    goto done;
  }
  c->have_cred = 1;
  rc = 0;
done:
  free(text);
  if (rc != 0)
    jw__tls_creds_free(c);
  else
    *out = c;
  return rc;
}

void jw__tls_creds_free(jw__tls_creds_t *c) {
  if (c == NULL)
    return;
  if (c->have_cred)
    api.sspi->FreeCredentialsHandle(&c->cred);
  if (c->ca != NULL)
    api.CertCloseStore_(c->ca, 0);
  free(c);
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

struct jw__tls_s {
  jw__tls_creds_t *creds; /* borrowed: outlives the connection */
  SOCKET s;               /* borrowed: the caller closes it */
  CtxtHandle ctx;         /* owner: this connection (DeleteSecurityContext) */
  int have_ctx;
  wchar_t *target; /* SNI / session cache name, NULL for an IP literal */
  char name[256];  /* server_name as given, for messages */
  SecPkgContext_StreamSizes sizes;
  DWORD protocol; /* SP_PROT_* of the session */
  char *in;       /* received, not yet decrypted (owned) */
  size_t in_len, in_cap;
  char *group; /* up to GROUP_RECORDS records being encrypted, back to back (owned) */
  size_t group_cap;
  int timeout_ms;
  int closed; /* the server closed: close_notify, end of stream or reset */
  int broken; /* our side failed (send, decrypt): never used again */
};

/* Appends whatever the socket has to t->in, waiting for it until deadline.
 * 0 got bytes, else an error (the server closed, timeout, socket error). */
static int recv_some(jw__tls_t *t, ULONGLONG deadline, const char *what, jw_error_t *err) {
  for (;;) {
    int n, w;
    if (t->in_len == t->in_cap) {
      size_t cap = t->in_cap * 2;
      char *p;
      if (cap > HANDSHAKE_MAX)
        return jw_error_set(err, JW_EIO, 0, "handshake",
                            "the TLS server %s sent a handshake message larger than %d KiB",
                            t->name, HANDSHAKE_MAX / 1024);
      p = realloc(t->in, cap);
      if (p == NULL)
        return jw_error_set(err, JW_ENOMEM, 0, "handshake", "out of memory");
      t->in = p;
      t->in_cap = cap;
    }
    n = recv(t->s, t->in + t->in_len, (int)(t->in_cap - t->in_len), 0);
    if (n > 0) {
      t->in_len += (size_t)n;
      return 0;
    }
    if (n == 0)
      return jw_error_set(err, JW_EIO, 0, "handshake",
                          "the server %s closed the connection %s (not a TLS port, or it refused "
                          "our TLS versions or cipher suites)",
                          t->name, what);
    if (WSAGetLastError() != WSAEWOULDBLOCK) {
      int e = WSAGetLastError();
      char why[256];
      jw__sys_error_text((uint32_t)e, why, sizeof why);
      return jw_error_set(err, JW_EIO, (uint32_t)e, "handshake",
                          "receiving from the server %s failed %s: %s", t->name, what, why);
    }
    w = wait_socket(t->s, 0, deadline);
    if (w == 0)
      return jw_error_set(err, JW_ETIMEDOUT, WSAETIMEDOUT, "handshake",
                          "the server %s did not answer %s within %d ms", t->name, what,
                          t->timeout_ms);
    if (w < 0) {
      int e = WSAGetLastError();
      return jw_error_set(err, JW_EIO, (uint32_t)e, "handshake",
                          "waiting for the server %s failed (select: %d)", t->name, e);
    }
  }
}

/* Sends all of buf until deadline; where names the step for errors.
 * *took (may be NULL): the bytes the socket took, also on failure. */
static int send_raw(jw__tls_t *t, const char *buf, size_t len, ULONGLONG deadline,
                    const char *where, jw_error_t *err, size_t *took) {
  size_t off = 0;
  if (took != NULL)
    *took = 0;
  while (off < len) {
    int chunk = len - off > 1 << 20 ? 1 << 20 : (int)(len - off);
    int n = send(t->s, buf + off, chunk, 0);
    int e, w;
    if (n > 0) {
      off += (size_t)n;
      if (took != NULL)
        *took = off;
      continue;
    }
    e = WSAGetLastError();
    if (n == SOCKET_ERROR && e != WSAEWOULDBLOCK) {
      char why[256];
      jw__sys_error_text((uint32_t)e, why, sizeof why);
      return jw_error_set(err, JW_EIO, (uint32_t)e, where,
                          "sending to the TLS server %s failed: %s", t->name, why);
    }
    w = wait_socket(t->s, 1, deadline);
    if (w == 0)
      return jw_error_set(err, JW_ETIMEDOUT, WSAETIMEDOUT, where,
                          "the TLS server %s took %lu of %lu bytes within %d ms", t->name,
                          (unsigned long)off, (unsigned long)len, t->timeout_ms);
    if (w < 0) {
      e = WSAGetLastError();
      return jw_error_set(err, JW_EIO, (uint32_t)e, where,
                          "waiting for the TLS server %s failed (select: %d)", t->name, e);
    }
  }
  return 0;
}

/* Keeps the unprocessed tail of t->in that SSPI reports as SECBUFFER_EXTRA
 * (the start of the next record), or empties t->in. */
static void keep_extra(jw__tls_t *t, const SecBuffer *bufs, int n) {
  int i;
  for (i = 0; i < n; i++) {
    if (bufs[i].BufferType == SECBUFFER_EXTRA && bufs[i].cbBuffer > 0 &&
        bufs[i].cbBuffer <= t->in_len) {
      memmove(t->in, t->in + t->in_len - bufs[i].cbBuffer, bufs[i].cbBuffer);
      t->in_len = bufs[i].cbBuffer;
      return;
    }
  }
  t->in_len = 0;
}

#define ISC_FLAGS                                                                                  \
  (ISC_REQ_SEQUENCE_DETECT | ISC_REQ_REPLAY_DETECT | ISC_REQ_CONFIDENTIALITY |                     \
   ISC_REQ_EXTENDED_ERROR | ISC_REQ_ALLOCATE_MEMORY | ISC_REQ_STREAM |                             \
   ISC_REQ_MANUAL_CRED_VALIDATION | ISC_REQ_USE_SUPPLIED_CREDS)

static const char *status_name(SECURITY_STATUS ss) {
  switch (ss) {
  case SEC_E_ALGORITHM_MISMATCH:
    return "no TLS version or cipher suite in common (jobwarden needs TLS 1.2 or later)";
  case SEC_E_ILLEGAL_MESSAGE:
    return "the server sent a message that is not TLS, or an alert";
  case SEC_E_INTERNAL_ERROR:
    return "the handshake failed (an alert from the server, or a TLS version it refused)";
  case SEC_E_MESSAGE_ALTERED:
  case SEC_E_DECRYPT_FAILURE:
    return "a record did not decrypt";
  case SEC_E_UNSUPPORTED_FUNCTION:
    return "a TLS feature SChannel does not support";
  default:
    return NULL;
  }
}

static int status_error(jw__tls_t *t, SECURITY_STATUS ss, const char *step, jw_error_t *err) {
  const char *known = status_name(ss);
  char why[256];
  if (known == NULL) {
    jw__sys_error_text((uint32_t)ss, why, sizeof why);
    known = why;
  }
  return jw_error_set(err, JW_EIO, (uint32_t)ss, "handshake",
                      "TLS %s with %s failed: %s (SECURITY_STATUS 0x%08lx)", step, t->name, known,
                      (unsigned long)ss);
}

/* The handshake: InitializeSecurityContextW until SEC_E_OK. */
/* One InitializeSecurityContextW step: t->in as the input token (none
 * before the context exists), inb[] the input buffers (for the caller's
 * keep_extra), outb[0] the token to send (FreeContextBuffer it); new_ctx:
 * the handshake's steps name the context as the new one too. */
static SECURITY_STATUS isc_step(jw__tls_t *t, SecBuffer inb[2], SecBuffer outb[1], int new_ctx) {
  SecBufferDesc ind, outd;
  ULONG attrs = 0;
  inb[0].BufferType = SECBUFFER_TOKEN;
  inb[0].pvBuffer = t->in;
  inb[0].cbBuffer = (ULONG)t->in_len;
  inb[1].BufferType = SECBUFFER_EMPTY;
  inb[1].pvBuffer = NULL;
  inb[1].cbBuffer = 0;
  ind.ulVersion = SECBUFFER_VERSION;
  ind.cBuffers = 2;
  ind.pBuffers = inb;
  outb[0].BufferType = SECBUFFER_TOKEN;
  outb[0].pvBuffer = NULL;
  outb[0].cbBuffer = 0;
  outd.ulVersion = SECBUFFER_VERSION;
  outd.cBuffers = 1;
  outd.pBuffers = outb;
  return api.sspi->InitializeSecurityContextW(&t->creds->cred, t->have_ctx ? &t->ctx : NULL,
                                              t->target, ISC_FLAGS, 0, 0, t->have_ctx ? &ind : NULL,
                                              0, new_ctx ? &t->ctx : NULL, &outd, &attrs, NULL);
}

static int handshake(jw__tls_t *t, ULONGLONG deadline, jw_error_t *err) {
  for (;;) {
    SecBuffer inb[2], outb[1];
    SECURITY_STATUS ss;
    int rc;
    ss = isc_step(t, inb, outb, 1);
    if (!t->have_ctx && (ss == SEC_E_OK || ss == SEC_I_CONTINUE_NEEDED ||
                         ss == SEC_E_INCOMPLETE_MESSAGE || ss == SEC_I_INCOMPLETE_CREDENTIALS))
      t->have_ctx = 1;
    /* A token goes out whatever the status: with ISC_REQ_EXTENDED_ERROR a
     * failure's token is the alert that tells the server why. */
    if (outb[0].pvBuffer != NULL) {
      rc = 0;
      if (outb[0].cbBuffer > 0)
        rc = send_raw(t, outb[0].pvBuffer, outb[0].cbBuffer, deadline, "handshake", err, NULL);
      api.sspi->FreeContextBuffer(outb[0].pvBuffer);
      if (rc != 0 && (ss == SEC_E_OK || ss == SEC_I_CONTINUE_NEEDED))
        return rc;
    }
    switch (ss) {
    case SEC_E_OK:
      keep_extra(t, inb, 2);
      return 0;
    case SEC_I_CONTINUE_NEEDED:
      keep_extra(t, inb, 2);
      if (t->in_len == 0 && (rc = recv_some(t, deadline, "during the TLS handshake", err)) != 0)
        return rc;
      break;
    case SEC_E_INCOMPLETE_MESSAGE:
      if ((rc = recv_some(t, deadline, "during the TLS handshake", err)) != 0)
        return rc;
      break;
    case SEC_I_INCOMPLETE_CREDENTIALS:
      /* The server asks for a client certificate; we have none and go on
       * without (the server decides). */
      break;
    default:
      return status_error(t, ss, "handshake", err);
    }
  }
}

/* Whether name is an IP literal ("127.0.0.1", "::1", "[::1]"); its bytes
 * into ip (4 or 16), their count into *ip_len. */
static int ip_literal(const char *name, unsigned char ip[16], size_t *ip_len) {
  char buf[64];
  size_t n = strlen(name);
  if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof buf) {
    memcpy(buf, name + 1, n - 2);
    buf[n - 2] = '\0';
  } else if (n < sizeof buf) {
    memcpy(buf, name, n + 1);
  } else {
    return 0;
  }
  if (inet_pton(AF_INET, buf, ip) == 1) {
    *ip_len = 4;
    return 1;
  }
  if (inet_pton(AF_INET6, buf, ip) == 1) {
    *ip_len = 16;
    return 1;
  }
  return 0;
}

/* The certificate's subject alternative names, decoded by crypt32 (free
 * with LocalFree), or NULL when it has none. */
static CERT_ALT_NAME_INFO *alt_names(PCCERT_CONTEXT cert) {
  PCERT_EXTENSION ext = api.CertFindExtension_(szOID_SUBJECT_ALT_NAME2, cert->pCertInfo->cExtension,
                                               cert->pCertInfo->rgExtension);
  CERT_ALT_NAME_INFO *info = NULL;
  DWORD size = 0;
  if (ext == NULL)
    return NULL;
  if (!api.CryptDecodeObjectEx_(X509_ASN_ENCODING, X509_ALTERNATE_NAME, ext->Value.pbData,
                                ext->Value.cbData, CRYPT_DECODE_ALLOC_FLAG, NULL, &info, &size))
    return NULL;
  return info;
}

/* The names a certificate is for, for messages: its DNS names and IP
 * addresses, or its common name when it has neither. */
static void cert_names(PCCERT_CONTEXT cert, char *buf, size_t size) {
  CERT_ALT_NAME_INFO *info = alt_names(cert);
  size_t used = 0;
  DWORD i;
  buf[0] = '\0';
  for (i = 0; info != NULL && i < info->cAltEntry; i++) {
    const CERT_ALT_NAME_ENTRY *e = &info->rgAltEntry[i];
    char one[300];
    one[0] = '\0';
    if (e->dwAltNameChoice == CERT_ALT_NAME_DNS_NAME) {
      wide_to_utf8(e->pwszDNSName, one, sizeof one);
    } else if (e->dwAltNameChoice == CERT_ALT_NAME_IP_ADDRESS &&
               (e->IPAddress.cbData == 4 || e->IPAddress.cbData == 16)) {
      if (inet_ntop(e->IPAddress.cbData == 4 ? AF_INET : AF_INET6, e->IPAddress.pbData, one,
                    sizeof one) == NULL)
        one[0] = '\0';
    }
    if (one[0] != '\0' && used + strlen(one) + 3 < size)
      used += (size_t)snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "", one);
  }
  if (info != NULL)
    LocalFree(info);
  if (used == 0) {
    wchar_t w[256];
    if (api.CertGetNameStringW_(cert, CERT_NAME_ATTR_TYPE, 0, (void *)szOID_COMMON_NAME, w, 256) >
        1)
      wide_to_utf8(w, buf, size);
    else
      snprintf(buf, size, "%s", "no name");
  }
}

/* Whether the certificate lists the IP address among its SAN iPAddress
 * entries. */
static int cert_has_ip(PCCERT_CONTEXT cert, const unsigned char *ip, size_t ip_len) {
  CERT_ALT_NAME_INFO *info = alt_names(cert);
  int found = 0;
  DWORD i;
  for (i = 0; info != NULL && i < info->cAltEntry && !found; i++) {
    const CERT_ALT_NAME_ENTRY *e = &info->rgAltEntry[i];
    found = e->dwAltNameChoice == CERT_ALT_NAME_IP_ADDRESS && e->IPAddress.cbData == ip_len &&
            memcmp(e->IPAddress.pbData, ip, ip_len) == 0;
  }
  if (info != NULL)
    LocalFree(info);
  return found;
}

/* Whether cert is, byte for byte, one of the certificates in store. */
static int store_has(HCERTSTORE store, PCCERT_CONTEXT cert) {
  PCCERT_CONTEXT it = NULL;
  while ((it = api.CertEnumCertificatesInStore_(store, it)) != NULL) {
    if (it->cbCertEncoded == cert->cbCertEncoded &&
        memcmp(it->pbCertEncoded, cert->pbCertEncoded, cert->cbCertEncoded) == 0) {
      api.CertFreeCertificateContext_(it);
      return 1;
    }
  }
  return 0;
}

/* Explains a CertVerifyCertificateChainPolicy error for the chain's
 * element that caused it. */
static int policy_error(jw__tls_t *t, PCCERT_CHAIN_CONTEXT chain,
                        const CERT_CHAIN_POLICY_STATUS *ps, PCCERT_CONTEXT leaf, jw_error_t *err);

/* What the chain engine found wrong that the policy let pass: Wine 8's SSL
 * policy accepts a chain that ends in a certificate whose issuer is
 * nowhere (CERT_TRUST_IS_PARTIAL_CHAIN; measured), Windows' answers
 * CERT_E_CHAINING. Only revocation, which is not asked for, and, with
 * ca=, a root the system does not trust (step 2 checked it) may remain.
 * 0, or the policy's error for the first bit left. */
static int chain_status_error(jw__tls_t *t, PCCERT_CHAIN_CONTEXT chain, PCCERT_CONTEXT leaf,
                              jw_error_t *err) {
  static const struct {
    DWORD bit;
    HRESULT code;
  } map[] = {
      {CERT_TRUST_IS_PARTIAL_CHAIN, CERT_E_CHAINING},
      {CERT_TRUST_IS_UNTRUSTED_ROOT, CERT_E_UNTRUSTEDROOT},
      {CERT_TRUST_IS_NOT_TIME_VALID, CERT_E_EXPIRED},
      {CERT_TRUST_IS_NOT_VALID_FOR_USAGE, CERT_E_WRONG_USAGE},
      {CERT_TRUST_IS_REVOKED, CRYPT_E_REVOKED},
      {CERT_TRUST_IS_NOT_SIGNATURE_VALID, TRUST_E_CERT_SIGNATURE},
  };
  DWORD allowed = CERT_TRUST_REVOCATION_STATUS_UNKNOWN | CERT_TRUST_IS_OFFLINE_REVOCATION |
                  CERT_TRUST_IS_NOT_TIME_NESTED |
                  (t->creds->ca != NULL ? CERT_TRUST_IS_UNTRUSTED_ROOT : 0);
  DWORD left = chain->TrustStatus.dwErrorStatus & ~allowed;
  CERT_CHAIN_POLICY_STATUS ps;
  const CERT_SIMPLE_CHAIN *simple = chain->rgpChain[0];
  size_t i;
  DWORD e;
  if (left == 0)
    return 0;
  memset(&ps, 0, sizeof ps);
  ps.cbSize = sizeof ps;
  ps.dwError = 0;
  for (i = 0; i < sizeof map / sizeof map[0] && ps.dwError == 0; i++) {
    if (left & map[i].bit) {
      ps.dwError = (DWORD)map[i].code;
      for (e = 0; e < simple->cElement; e++) {
        if (simple->rgpElement[e]->TrustStatus.dwErrorStatus & map[i].bit) {
          ps.lElementIndex = (LONG)e;
          break;
        }
      }
    }
  }
  if (ps.dwError == 0) {
    char subject[512];
    cert_subject(leaf, subject, sizeof subject);
    return jw_error_set(err, JW_EPOLICY, left, "certificate",
                        "the chain of the server's certificate (%s) has errors (CERT_TRUST "
                        "status 0x%08lX)",
                        subject, (unsigned long)left);
  }
  return policy_error(t, chain, &ps, leaf, err);
}

/* Checks the server's certificate (the design's steps 1-5). */
static int verify_server(jw__tls_t *t, jw_error_t *err) {
  jw__tls_creds_t *c = t->creds;
  PCCERT_CONTEXT leaf = NULL;
  HCERTSTORE extra = NULL;
  PCCERT_CHAIN_CONTEXT chain = NULL;
  CERT_CHAIN_PARA cp;
  LPSTR usage[1] = {(LPSTR)szOID_PKIX_KP_SERVER_AUTH};
  SSL_EXTRA_CERT_CHAIN_POLICY_PARA ssl;
  CERT_CHAIN_POLICY_PARA pp;
  CERT_CHAIN_POLICY_STATUS ps;
  unsigned char ip[16];
  size_t ip_len = 0;
  int is_ip = ip_literal(t->name, ip, &ip_len);
  char subject[512];
  SECURITY_STATUS ss;
  int rc;

  ss = api.sspi->QueryContextAttributesW(&t->ctx, SECPKG_ATTR_REMOTE_CERT_CONTEXT, &leaf);
  if (ss != SEC_E_OK || leaf == NULL) {
    rc = jw_error_set(err, JW_EPOLICY, (uint32_t)ss, "certificate",
                      "the TLS server %s presented no certificate (SECURITY_STATUS 0x%08lx)",
                      t->name, (unsigned long)ss);
    goto done;
  }
  cert_subject(leaf, subject, sizeof subject);

  /* 1. The chain, with what the server sent and the CA file to build it. */
  extra = api.CertOpenStore_(CERT_STORE_PROV_COLLECTION, 0, 0, 0, NULL);
  if (extra == NULL || !api.CertAddStoreToCollection_(extra, leaf->hCertStore, 0, 0) ||
      (c->ca != NULL && !api.CertAddStoreToCollection_(extra, c->ca, 0, 1))) {
    rc = jw_error_set(err, JW_ESYS, GetLastError(), "certificate",
                      "cannot collect the certificates to check the server %s", t->name);
    goto done;
  }
  memset(&cp, 0, sizeof cp);
  cp.cbSize = sizeof cp;
  cp.RequestedUsage.dwType = USAGE_MATCH_TYPE_AND;
  cp.RequestedUsage.Usage.cUsageIdentifier = 1;
  cp.RequestedUsage.Usage.rgpszUsageIdentifier = usage;
  if (!api.CertGetCertificateChain_(NULL, leaf, NULL, extra, &cp, 0, NULL, &chain) ||
      chain->cChain == 0 || chain->rgpChain[0]->cElement == 0) {
    DWORD e = GetLastError();
    char why[256];
    jw__sys_error_text(e, why, sizeof why);
    rc = jw_error_set(err, JW_EPOLICY, e, "certificate",
                      "cannot build the chain of the server's certificate (%s): %s", subject, why);
    goto done;
  }

  /* 2. With ca=: the chain ends in one of the file's certificates. */
  if (c->ca != NULL) {
    const CERT_SIMPLE_CHAIN *simple = chain->rgpChain[0];
    PCCERT_CONTEXT root = simple->rgpElement[simple->cElement - 1]->pCertContext;
    if (!store_has(c->ca, root)) {
      char top[512];
      chain_top(chain, top, sizeof top);
      rc = jw_error_set(err, JW_EPOLICY, (uint32_t)CERT_E_UNTRUSTEDROOT, "certificate",
                        "the server's certificate (%s) is not issued by the CA in %s: it chains "
                        "up to %s",
                        subject, c->ca_file, top);
      goto done;
    }
  }

  /* 3. Time, usage, signatures and (for a DNS name) the name. */
  memset(&ssl, 0, sizeof ssl);
  ssl.cbSize = sizeof ssl;
  ssl.dwAuthType = AUTHTYPE_SERVER;
  ssl.pwszServerName = is_ip ? NULL : t->target;
  ssl.fdwChecks = is_ip ? SECURITY_FLAG_IGNORE_CERT_CN_INVALID : 0;
  memset(&pp, 0, sizeof pp);
  pp.cbSize = sizeof pp;
  pp.dwFlags = c->ca != NULL ? CERT_CHAIN_POLICY_ALLOW_UNKNOWN_CA_FLAG : 0;
  pp.pvExtraPolicyPara = &ssl;
  memset(&ps, 0, sizeof ps);
  ps.cbSize = sizeof ps;
  if (!api.CertVerifyCertificateChainPolicy_(CERT_CHAIN_POLICY_SSL, chain, &pp, &ps)) {
    DWORD e = GetLastError();
    rc = jw_error_set(err, JW_ESYS, e, "certificate",
                      "CertVerifyCertificateChainPolicy failed for the server %s (%lu)", t->name,
                      (unsigned long)e);
    goto done;
  }
  if (ps.dwError != 0) {
    rc = policy_error(t, chain, &ps, leaf, err);
    goto done;
  }
  /* 4. What the chain engine found that the policy let pass. */
  if ((rc = chain_status_error(t, chain, leaf, err)) != 0)
    goto done;

  /* 5. An IP literal among the certificate's IP addresses. */
  if (is_ip && !cert_has_ip(leaf, ip, ip_len)) {
    char names[512];
    cert_names(leaf, names, sizeof names);
    rc = jw_error_set(err, JW_EPOLICY, (uint32_t)CERT_E_CN_NO_MATCH, "certificate",
                      "the server's certificate is for %s, not %s", names, t->name);
    goto done;
  }
  rc = 0;
done:
  if (chain != NULL)
    api.CertFreeCertificateChain_(chain);
  if (extra != NULL)
    api.CertCloseStore_(extra, 0);
  if (leaf != NULL)
    api.CertFreeCertificateContext_(leaf);
  return rc;
}

static int policy_error(jw__tls_t *t, PCCERT_CHAIN_CONTEXT chain,
                        const CERT_CHAIN_POLICY_STATUS *ps, PCCERT_CONTEXT leaf, jw_error_t *err) {
  DWORD code = ps->dwError;
  PCCERT_CONTEXT bad = leaf;
  char subject[512], names[512], when[64], why[256];
  const char *whose = "the server's certificate";
  if (ps->lChainIndex >= 0 && (DWORD)ps->lChainIndex < chain->cChain && ps->lElementIndex > 0 &&
      (DWORD)ps->lElementIndex < chain->rgpChain[ps->lChainIndex]->cElement) {
    bad = chain->rgpChain[ps->lChainIndex]->rgpElement[ps->lElementIndex]->pCertContext;
    whose = "the CA certificate in the server's chain";
  }
  cert_subject(bad, subject, sizeof subject);
  switch (code) {
  case (DWORD)CERT_E_CN_NO_MATCH:
    cert_names(leaf, names, sizeof names);
    return jw_error_set(err, JW_EPOLICY, code, "certificate",
                        "the server's certificate is for %s, not %s", names, t->name);
  case (DWORD)CERT_E_EXPIRED: {
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    if (CompareFileTime(&now, &bad->pCertInfo->NotBefore) < 0) {
      filetime_text(&bad->pCertInfo->NotBefore, when, sizeof when);
      return jw_error_set(err, JW_EPOLICY, code, "certificate", "%s (%s) is not valid before %s",
                          whose, subject, when);
    }
    filetime_text(&bad->pCertInfo->NotAfter, when, sizeof when);
    return jw_error_set(err, JW_EPOLICY, code, "certificate", "%s (%s) expired on %s", whose,
                        subject, when);
  }
  case (DWORD)CERT_E_UNTRUSTEDROOT:
  case (DWORD)CERT_E_CHAINING:
    cert_subject(leaf, subject, sizeof subject);
    chain_top(chain, names, sizeof names);
    if (t->creds->ca != NULL)
      return jw_error_set(err, JW_EPOLICY, code, "certificate",
                          "the server's certificate (%s) does not chain up to a root in the CA "
                          "file %s: it chains up to %s",
                          subject, t->creds->ca_file, names);
    return jw_error_set(err, JW_EPOLICY, code, "certificate",
                        "the server's certificate (%s) is not issued by a CA this system trusts: "
                        "it chains up to %s",
                        subject, names);
  case (DWORD)CERT_E_WRONG_USAGE:
    return jw_error_set(err, JW_EPOLICY, code, "certificate",
                        "%s (%s) is not for TLS server authentication (extended key usage)", whose,
                        subject);
  case (DWORD)CERT_E_REVOKED:
  case (DWORD)CRYPT_E_REVOKED:
    return jw_error_set(err, JW_EPOLICY, code, "certificate", "%s (%s) is revoked", whose, subject);
  case (DWORD)TRUST_E_CERT_SIGNATURE:
    return jw_error_set(err, JW_EPOLICY, code, "certificate", "%s (%s) has an invalid signature",
                        whose, subject);
  default:
    code_text(code, why, sizeof why);
    return jw_error_set(err, JW_EPOLICY, code, "certificate", "%s (%s) was refused: %s", whose,
                        subject, why);
  }
}

static const char *protocol_name(DWORD p) {
  if (p & SP_PROT_TLS1_3_CLIENT)
    return "TLS 1.3";
  if (p & SP_PROT_TLS1_2_CLIENT)
    return "TLS 1.2";
  if (p & SP_PROT_TLS1_1_CLIENT)
    return "TLS 1.1";
  if (p & SP_PROT_TLS1_0_CLIENT)
    return "TLS 1.0";
  if (p & SP_PROT_SSL3_CLIENT)
    return "SSL 3.0";
  return "an unknown protocol";
}

/* Tells the server we leave: a fatal alert (TLS1_ALERT_*) after refusing
 * its certificate (close_notify where SChannel makes no alert), close_notify
 * for alert 0. SChannel makes the record
 * (ApplyControlToken, then InitializeSecurityContextW); it is sent only
 * if the socket takes it at once: leaving never waits. */
static void send_goodbye(jw__tls_t *t, DWORD alert) {
  DWORD shutdown = SCHANNEL_SHUTDOWN;
  SCHANNEL_ALERT_TOKEN token;
  SecBuffer b, outb;
  SecBufferDesc d, outd;
  ULONG attrs = 0;
  SECURITY_STATUS ss;
  if (alert != 0) {
    token.dwTokenType = SCHANNEL_ALERT;
    token.dwAlertType = TLS1_ALERT_FATAL;
    token.dwAlertNumber = alert;
    b.pvBuffer = &token;
    b.cbBuffer = sizeof token;
  } else {
    b.pvBuffer = &shutdown;
    b.cbBuffer = sizeof shutdown;
  }
  b.BufferType = SECBUFFER_TOKEN;
  d.ulVersion = SECBUFFER_VERSION;
  d.cBuffers = 1;
  d.pBuffers = &b;
  if (api.sspi->ApplyControlToken(&t->ctx, &d) != SEC_E_OK) {
    /* Wine 8 has no alert tokens (SEC_E_UNSUPPORTED_FUNCTION, measured):
     * a close_notify then, so the server at least sees a clean end. */
    if (alert == 0)
      return;
    b.pvBuffer = &shutdown;
    b.cbBuffer = sizeof shutdown;
    if (api.sspi->ApplyControlToken(&t->ctx, &d) != SEC_E_OK)
      return;
  }
  outb.BufferType = SECBUFFER_TOKEN;
  outb.pvBuffer = NULL;
  outb.cbBuffer = 0;
  outd.ulVersion = SECBUFFER_VERSION;
  outd.cBuffers = 1;
  outd.pBuffers = &outb;
  ss = api.sspi->InitializeSecurityContextW(&t->creds->cred, &t->ctx, t->target, ISC_FLAGS, 0, 0,
                                            NULL, 0, NULL, &outd, &attrs, NULL);
  if (outb.pvBuffer != NULL) {
    if ((ss == SEC_E_OK || ss == SEC_I_CONTEXT_EXPIRED) && outb.cbBuffer > 0)
      (void)send(t->s, outb.pvBuffer, (int)outb.cbBuffer, 0);
    api.sspi->FreeContextBuffer(outb.pvBuffer);
  }
}

static void tls_free(jw__tls_t *t) {
  if (t == NULL)
    return;
  if (t->have_ctx)
    api.sspi->DeleteSecurityContext(&t->ctx);
  free(t->target);
  free(t->in);
  free(t->group);
  free(t);
}

int jw__tls_connect(jw__tls_creds_t *c, uintptr_t sock, const char *server_name, int timeout_ms,
                    jw__tls_t **out, jw_error_t *caller_err) {
  jw_error_t local, *err = caller_err != NULL ? caller_err : &local;
  jw__tls_t *t;
  ULONGLONG deadline;
  u_long nonblocking = 1;
  unsigned char ip[16];
  size_t ip_len;
  SecPkgContext_ConnectionInfo info;
  SECURITY_STATUS ss;
  int rc;
  *out = NULL;
  if (c == NULL || server_name == NULL || server_name[0] == '\0' || timeout_ms <= 0)
    return jw_error_set(err, JW_EINVAL, 0, "tls", "jw__tls_connect: invalid arguments");
  if (strlen(server_name) >= sizeof t->name)
    return jw_error_set(err, JW_EINVAL, 0, "tls", "the server name is longer than %d bytes",
                        (int)sizeof t->name - 1);
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return jw_error_set(err, JW_ENOMEM, 0, "tls", "out of memory");
  deadline = now_ms() + (ULONGLONG)timeout_ms;
  t->creds = c;
  t->s = (SOCKET)sock;
  t->timeout_ms = timeout_ms;
  jw__strlcpy(t->name, server_name, sizeof t->name);
  /* RFC 6066: SNI carries DNS names only. */
  if (!ip_literal(server_name, ip, &ip_len) &&
      (t->target = jw__utf8_to_wide(server_name)) == NULL) {
    rc = jw_error_set(err, JW_EINVAL, 0, "tls", "the server name is not valid UTF-8");
    goto done;
  }
  t->in_cap = 16 * 1024;
  t->in = malloc(t->in_cap);
  if (t->in == NULL) {
    rc = jw_error_set(err, JW_ENOMEM, 0, "tls", "out of memory");
    goto done;
  }
  if (ioctlsocket(t->s, FIONBIO, &nonblocking) != 0) {
    int e = WSAGetLastError();
    rc = jw_error_set(err, JW_EIO, (uint32_t)e, "tls", "cannot make the socket non-blocking (%d)",
                      e);
    goto done;
  }
  if ((rc = handshake(t, deadline, err)) != 0)
    goto done;

  ss = api.sspi->QueryContextAttributesW(&t->ctx, SECPKG_ATTR_CONNECTION_INFO, &info);
  if (ss != SEC_E_OK) {
    rc = status_error(t, ss, "session query", err);
    goto done;
  }
  t->protocol = info.dwProtocol;
  if (!(info.dwProtocol & (SP_PROT_TLS1_2_CLIENT | SP_PROT_TLS1_3_CLIENT))) {
    /* SChannel was told TLS 1.2 or later; Wine 8 ignores that for
     * SCH_CREDENTIALS (measured), so it is checked here too. */
    rc = jw_error_set(err, JW_EIO, 0, "handshake",
                      "the TLS server %s negotiated %s: RFC 5425 needs TLS 1.2 or later", t->name,
                      protocol_name(info.dwProtocol));
    send_goodbye(t, TLS1_ALERT_PROTOCOL_VERSION);
    goto done;
  }
  ss = api.sspi->QueryContextAttributesW(&t->ctx, SECPKG_ATTR_STREAM_SIZES, &t->sizes);
  if (ss != SEC_E_OK || t->sizes.cbMaximumMessage == 0) {
    rc = status_error(t, ss, "session query", err);
    goto done;
  }
  t->group_cap =
      ((size_t)t->sizes.cbHeader + t->sizes.cbMaximumMessage + t->sizes.cbTrailer) * GROUP_RECORDS;
  t->group = malloc(t->group_cap);
  if (t->group == NULL) {
    rc = jw_error_set(err, JW_ENOMEM, 0, "tls", "out of memory");
    goto done;
  }
  if (!c->insecure && (rc = verify_server(t, err)) != 0) {
    /* Tell the collector why (its log then says so, not "premature end"). */
    DWORD why = (DWORD)err->sys_error;
    send_goodbye(t, why == (DWORD)CERT_E_UNTRUSTEDROOT || why == (DWORD)CERT_E_CHAINING
                        ? TLS1_ALERT_UNKNOWN_CA
                    : why == (DWORD)CERT_E_EXPIRED ? TLS1_ALERT_CERTIFICATE_EXPIRED
                                                   : TLS1_ALERT_BAD_CERTIFICATE);
    goto done;
  }
  /* The input buffer must take one whole record from now on: TLS allows
   * 2^14 bytes of data plus 2048 of expansion, and a header. */
  if (t->in_cap < RECORD_MAX) {
    char *p = realloc(t->in, RECORD_MAX);
    if (p == NULL) {
      rc = jw_error_set(err, JW_ENOMEM, 0, "tls", "out of memory");
      goto done;
    }
    t->in = p;
    t->in_cap = RECORD_MAX;
  }
  rc = 0;
done:
  if (rc != 0)
    tls_free(t);
  else
    *out = t;
  return rc;
}

int jw__tls_send(jw__tls_t *t, const char *buf, size_t len, jw_error_t *err) {
  size_t sent = 0;
  return jw__tls_send_some(t, buf, len, &sent, err);
}

int jw__tls_send_some(jw__tls_t *t, const char *buf, size_t len, size_t *sent, jw_error_t *err) {
  size_t off = 0;
  *sent = 0;
  if (t == NULL)
    return jw_error_set(err, JW_EINVAL, 0, "send", "no TLS connection");
  if (t->closed)
    return jw_error_set(err, JW_EIO, 0, "send", "the TLS server %s has closed the connection",
                        t->name);
  if (t->broken)
    return jw_error_set(err, JW_EIO, 0, "send",
                        "the TLS connection to %s failed before: connect again", t->name);
  while (off < len) {
    /* Where each record of the group ends, on the wire and in buf. */
    size_t wire_end[GROUP_RECORDS], plain_end[GROUP_RECORDS], glen = 0, plain = off, took = 0;
    int n_rec = 0, i, rc;
    while (plain < len && n_rec < GROUP_RECORDS) {
      size_t n = len - plain;
      char *at = t->group + glen;
      SecBuffer b[4];
      SecBufferDesc d;
      SECURITY_STATUS ss;
      if (n > t->sizes.cbMaximumMessage)
        n = t->sizes.cbMaximumMessage;
      memcpy(at + t->sizes.cbHeader, buf + plain, n);
      b[0].BufferType = SECBUFFER_STREAM_HEADER;
      b[0].pvBuffer = at;
      b[0].cbBuffer = t->sizes.cbHeader;
      b[1].BufferType = SECBUFFER_DATA;
      b[1].pvBuffer = at + t->sizes.cbHeader;
      b[1].cbBuffer = (ULONG)n;
      b[2].BufferType = SECBUFFER_STREAM_TRAILER;
      b[2].pvBuffer = at + t->sizes.cbHeader + n;
      b[2].cbBuffer = t->sizes.cbTrailer;
      b[3].BufferType = SECBUFFER_EMPTY;
      b[3].pvBuffer = NULL;
      b[3].cbBuffer = 0;
      d.ulVersion = SECBUFFER_VERSION;
      d.cBuffers = 4;
      d.pBuffers = b;
      ss = api.sspi->EncryptMessage(&t->ctx, 0, &d, 0);
      if (ss != SEC_E_OK) {
        /* The records encrypted before it were never sent: the session's
         * sequence is lost with them, so it is over. */
        t->broken = 1;
        return jw_error_set(err, JW_EIO, (uint32_t)ss, "send",
                            "TLS encryption for %s failed (SECURITY_STATUS 0x%08lx)", t->name,
                            (unsigned long)ss);
      }
      /* The record is header, data and trailer as EncryptMessage sized
       * them; the trailer may be shorter than cbTrailer, so the next
       * record starts right after it. */
      if (b[0].cbBuffer != t->sizes.cbHeader)
        memmove(at + b[0].cbBuffer, b[1].pvBuffer, b[1].cbBuffer + b[2].cbBuffer);
      glen += (size_t)b[0].cbBuffer + b[1].cbBuffer + b[2].cbBuffer;
      plain += n;
      wire_end[n_rec] = glen;
      plain_end[n_rec] = plain;
      n_rec++;
    }
    rc = send_raw(t, t->group, glen, now_ms() + (ULONGLONG)t->timeout_ms, "send", err, &took);
    if (rc != 0) {
      t->broken = 1;
      for (i = 0; i < n_rec && wire_end[i] <= took; i++)
        *sent = plain_end[i];
      return rc;
    }
    off = plain;
    *sent = off;
  }
  return 0;
}

/* A TLS 1.3 post-handshake message (SEC_I_RENEGOTIATE): handed back to
 * InitializeSecurityContextW as SChannel asks. 0, or -1 (broken). */
static int post_handshake(jw__tls_t *t) {
  SecBuffer inb[2], outb[1];
  SECURITY_STATUS ss = isc_step(t, inb, outb, 0); /* t->have_ctx: the context exists */
  if (outb[0].pvBuffer != NULL) {
    int rc = 0;
    if (outb[0].cbBuffer > 0 && ss == SEC_E_OK)
      rc = send_raw(t, outb[0].pvBuffer, outb[0].cbBuffer, now_ms(), "send", NULL, NULL);
    api.sspi->FreeContextBuffer(outb[0].pvBuffer);
    if (rc != 0)
      return -1;
  }
  if (ss != SEC_E_OK && ss != SEC_I_CONTINUE_NEEDED)
    return -1;
  keep_extra(t, inb, 2);
  return 0;
}

/* Decrypts every whole record in t->in. 0 more may come, 1 closed. */
static int drain_records(jw__tls_t *t) {
  while (t->in_len > 0) {
    SecBuffer b[4];
    SecBufferDesc d;
    SECURITY_STATUS ss;
    int i;
    b[0].BufferType = SECBUFFER_DATA;
    b[0].pvBuffer = t->in;
    b[0].cbBuffer = (ULONG)t->in_len;
    for (i = 1; i < 4; i++) {
      b[i].BufferType = SECBUFFER_EMPTY;
      b[i].pvBuffer = NULL;
      b[i].cbBuffer = 0;
    }
    d.ulVersion = SECBUFFER_VERSION;
    d.cBuffers = 4;
    d.pBuffers = b;
    ss = api.sspi->DecryptMessage(&t->ctx, &d, 0, NULL);
    if (ss == SEC_E_INCOMPLETE_MESSAGE)
      return 0;
    if (ss == SEC_I_CONTEXT_EXPIRED)
      return 1; /* close_notify */
    if (ss == SEC_I_RENEGOTIATE) {
      keep_extra(t, b, 4);
      if (post_handshake(t) != 0)
        return 1;
      continue;
    }
    if (ss != SEC_E_OK)
      return 1;
    /* Wine 8 reports close_notify as SEC_E_OK with no data (measured),
     * Windows as SEC_I_CONTEXT_EXPIRED. An empty record is taken as the
     * end on both: a collector sends no data, so the worst a genuinely
     * empty record can cost is a reconnect. Data is dropped. */
    for (i = 0; i < 4; i++) {
      if (b[i].BufferType == SECBUFFER_DATA && b[i].cbBuffer == 0)
        return 1;
    }
    keep_extra(t, b, 4);
  }
  return 0;
}

int jw__tls_peer_closed(jw__tls_t *t) {
  if (t == NULL || t->closed || t->broken)
    return 1;
  for (;;) {
    int n;
    if (drain_records(t)) {
      t->closed = 1;
      return 1;
    }
    if (t->in_len == t->in_cap) { /* a record larger than TLS allows */
      t->broken = 1;
      return 1;
    }
    n = recv(t->s, t->in + t->in_len, (int)(t->in_cap - t->in_len), 0);
    if (n > 0) {
      t->in_len += (size_t)n;
      continue;
    }
    if (n == SOCKET_ERROR && WSAGetLastError() == WSAEWOULDBLOCK)
      return 0;
    t->closed = 1; /* end of stream or reset */
    return 1;
  }
}

void jw__tls_close(jw__tls_t *t) {
  if (t == NULL)
    return;
  if (t->have_ctx && !t->broken && !t->closed)
    send_goodbye(t, 0);
  tls_free(t);
}

const char *jw__tls_protocol(const jw__tls_t *t) {
  return t != NULL ? protocol_name(t->protocol) : "?";
}

size_t jw__tls_max_record(const jw__tls_t *t) {
  return t != NULL ? t->sizes.cbMaximumMessage : 0;
}

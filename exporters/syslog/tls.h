/* TLS client transport for syslog over TLS (RFC 5425), through Windows' own
 * TLS stack (SChannel) and certificate validation (crypt32). Windows only:
 * exporters/syslog/tls_win.c, whose opening comment explains the design.
 *
 * Two objects:
 *   jw__tls_creds_t  made once per sink at init: the SChannel credentials
 *                    and the CA certificates of `ca=` (read and checked
 *                    then, so a bad file is a set-up error);
 *   jw__tls_t        one per connection: the TLS session over a socket the
 *                    caller connected.
 *
 * Errors: every function that can fail returns 0 or a negative JW_E* code
 * and fills *err: `where` names the step ("ca", "handshake", "certificate",
 * "send"), `sys_error` keeps the raw Win32 error, SECURITY_STATUS or
 * CERT_E_* value (0 when there is none), `text` says what failed with what
 * and why, in full ("the certificate of 127.0.0.1 is for localhost, not
 * other.example").
 *
 * Threads: a jw__tls_creds_t may be shared by connections on any threads
 * (it is only read after jw__tls_creds_new) and must outlive them; one
 * jw__tls_t is used by one thread at a time (no internal lock). */
#ifndef JW_EXPORTERS_SYSLOG_TLS_H
#define JW_EXPORTERS_SYSLOG_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "jobwarden.h"

typedef struct jw__tls_creds_s jw__tls_creds_t;
typedef struct jw__tls_s jw__tls_t;

typedef struct {
  /* A PEM file (one or more "-----BEGIN CERTIFICATE-----" blocks) or one DER
   * certificate, path in UTF-8. The chain of the server's certificate must
   * end in one of these certificates exactly (put the root CA here); the
   * system's trusted roots then do not count. NULL: the chain must end in
   * a root the system trusts. */
  const char *ca_file;
  /* No validation at all: any certificate, any name (tests only; the
   * caller says so wherever the connection is reported). */
  int insecure;
} jw__tls_config_t;

/* Loads secur32/crypt32 (on first use, never as imports), reads and checks
 * cfg->ca_file, acquires the SChannel client credentials (TLS 1.2 or
 * later). Returns 0 and *out (free with jw__tls_creds_free), or JW_EINVAL
 * (no config / both ca_file and insecure), JW_ENOENT / JW_EIO (the CA file
 * cannot be read, is empty or larger than 1 MiB), JW_EINVAL (it holds no
 * certificate, or a block that is not one: which block, which line),
 * JW_ESYS (SChannel or crypt32 unavailable). */
int jw__tls_creds_new(const jw__tls_config_t *cfg, jw__tls_creds_t **out, jw_error_t *err);
void jw__tls_creds_free(jw__tls_creds_t *c);

/* The TLS handshake over sock (a connected TCP SOCKET, passed as its
 * value). server_name is the name the caller connected to: a DNS name
 * (sent as SNI and matched against the certificate's DNS names, or its
 * common name when it has none) or an IP literal ("127.0.0.1", "::1" or
 * "[::1]": no SNI, matched against the certificate's IP addresses only).
 * The socket is switched to non-blocking mode and must from now on be
 * used only through jw__tls_* until jw__tls_close; every wait is bounded:
 * the whole handshake by timeout_ms, each jw__tls_send call by timeout_ms.
 * Returns 0 and *out, or JW_ETIMEDOUT (no handshake within timeout_ms),
 * JW_EIO (the server refused or closed, a protocol failure, a version
 * below TLS 1.2), JW_EPOLICY (the certificate was refused: not issued by
 * the CA, wrong name, expired or not yet valid, not for server
 * authentication...), JW_ENOMEM. On failure nothing is left to free and
 * the socket is the caller's to close. Never sends application data. */
int jw__tls_connect(jw__tls_creds_t *c, uintptr_t sock, const char *server_name, int timeout_ms,
                    jw__tls_t **out, jw_error_t *err);

/* Sends all of buf[0..len) as TLS records of at most the negotiated
 * maximum (16 KiB) each, within timeout_ms of jw__tls_connect for each
 * group of 16 records (the whole call for up to 256 KiB).
 * Returns 0, or JW_ETIMEDOUT (the peer took too little within the bound),
 * JW_EIO (the connection failed, or the server closed it: seen by
 * jw__tls_peer_closed or by the send). After any failure the connection is
 * broken for good (a record may be half sent): every later send fails
 * with JW_EIO; close it and connect again. Some of buf may have reached
 * the server before a failure: TLS syslog has no acknowledgement. */
int jw__tls_send(jw__tls_t *t, const char *buf, size_t len, jw_error_t *err);
/* The same, and *sent (always set): the bytes of buf in records that were
 * handed to the socket whole, on success (len) and on failure (what a
 * caller that resends may count as sent). Up to 16 records are encrypted
 * and handed to the socket at once: one send for 256 KiB, not one per
 * record. timeout_ms bounds the sending of each such group. */
int jw__tls_send_some(jw__tls_t *t, const char *buf, size_t len, size_t *sent, jw_error_t *err);

/* Never blocks. 1 when the server has closed the connection (close_notify,
 * end of stream, reset) or it is unusable (a send failed, a record that
 * does not decrypt), else 0. Reads and discards whatever the server sent
 * (an RFC 5425 collector sends no data; TLS 1.3 session tickets are taken
 * in on Windows). Call it before a send to learn of a restarted collector
 * without losing the event to a dead connection. */
int jw__tls_peer_closed(jw__tls_t *t);

/* Sends close_notify when the socket takes it at once (never waits), frees
 * the session. Does not close the socket. NULL is allowed. */
void jw__tls_close(jw__tls_t *t);

/* The negotiated protocol ("TLS 1.2", "TLS 1.3"; "?" otherwise) and the
 * largest payload of one record, for reports and tests. */
const char *jw__tls_protocol(const jw__tls_t *t);
size_t jw__tls_max_record(const jw__tls_t *t);

#endif

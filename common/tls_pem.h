/*
 * tls_pem.h - a TLS server context from PEM text in memory (generic layer).
 *
 * Shared by mailrootd, which checks the administrator's certificate and key
 * with it at start and at reload, and smtpd, which serves with the context
 * it builds from the same text: what mailrootd accepted is exactly what
 * smtpd will load.  Neither the text nor the context touches the filesystem.
 */
#ifndef MR_TLS_PEM_H
#define MR_TLS_PEM_H

#include <stddef.h>

struct ssl_ctx_st;

/*
 * A server SSL_CTX from `cert` (the certificate, then any chain
 * certificates) and `key` (its private key, unencrypted), both PEM.  TLS 1.2
 * is the minimum, the server's cipher order wins, no compression, no
 * renegotiation.  The names are for messages only.  NULL on error, with
 * "file: what (OpenSSL: reason)" in err.
 */
struct ssl_ctx_st *tls_pem_server_ctx(const char *cert, size_t certlen,
    const char *certname, const char *key, size_t keylen, const char *keyname,
    char *err, size_t errsz);

/* OpenSSL's reason for the oldest error in its queue (which is cleared). */
const char *tls_pem_error(char *buf, size_t bufsz);

#endif

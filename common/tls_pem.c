/*
 * tls_pem.c - a TLS server context from PEM text in memory (generic layer).
 *
 * Runs in mailrootd (root: the check of the administrator's files) and in
 * smtpd (unprivileged, chrooted: the context it serves with).  The input is
 * the administrator's certificate and key, trusted but possibly wrong: every
 * failure is a message naming the file and OpenSSL's reason, never a crash.
 * OpenSSL's configuration file is not read (smtpd, in an empty chroot, could
 * not read it), so both processes get the same settings: the ones below.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_pem.h"

#define TLS_SECURITY_LEVEL	2	/* RSA/DH keys of 2048 bits or more, no SHA-1 */

const char *
tls_pem_error(char *buf, size_t bufsz)
{
	unsigned long e = ERR_get_error();
	const char *r;

	ERR_clear_error();
	if (e == 0)
		snprintf(buf, bufsz, "no reason given");
	else if ((r = ERR_reason_error_string(e)) != NULL)
		snprintf(buf, bufsz, "%s", r);
	else
		ERR_error_string_n(e, buf, bufsz);
	return buf;
}

/* An encrypted key would make OpenSSL prompt on a terminal: refuse it. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Add each further certificate of `bio` to the chain; -1 on a bad one. */
static int
read_chain(SSL_CTX *ctx, BIO *bio)
{
	unsigned long e;
	X509 *x;

	for (;;) {
		if ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) == NULL) {
			/* The end of the text is "no start line": not an error. */
			e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
				ERR_clear_error();
				return 0;
			}
			return -1;
		}
		if (!SSL_CTX_add0_chain_cert(ctx, x)) {
			X509_free(x);
			return -1;
		}
	}
}

SSL_CTX *
tls_pem_server_ctx(const char *cert, size_t certlen, const char *certname,
    const char *key, size_t keylen, const char *keyname, char *err, size_t errsz)
{
	char why[256];
	SSL_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *bio = NULL;

	OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	ERR_clear_error();
	if (certlen > INT_MAX || keylen > INT_MAX) {
		snprintf(err, errsz, "%s: too large", certlen > INT_MAX ? certname : keyname);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errsz, "cannot create a TLS context (OpenSSL: %s)",
		    tls_pem_error(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_security_level(ctx, TLS_SECURITY_LEVEL);
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
		snprintf(err, errsz, "cannot set TLS 1.2 as the minimum (OpenSSL: %s)",
		    tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

	/* The certificate, then its chain. */
	if ((bio = BIO_new_mem_buf(cert, (int)certlen)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", certname);
		goto fail;
	}
	if ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) == NULL) {
		snprintf(err, errsz, "%s: no PEM certificate could be read (OpenSSL: %s)",
		    certname, tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	if (!SSL_CTX_use_certificate(ctx, x)) {
		snprintf(err, errsz, "%s: the certificate cannot be used (OpenSSL: %s)",
		    certname, tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	if (read_chain(ctx, bio) == -1) {
		snprintf(err, errsz, "%s: a chain certificate after the first cannot be "
		    "used (OpenSSL: %s)", certname, tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	BIO_free(bio);

	/* The key, and that it is the certificate's. */
	if ((bio = BIO_new_mem_buf(key, (int)keylen)) == NULL) {
		snprintf(err, errsz, "%s: out of memory", keyname);
		goto fail;
	}
	if ((pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)) == NULL) {
		snprintf(err, errsz, "%s: no unencrypted PEM private key could be read "
		    "(OpenSSL: %s)", keyname, tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	if (!SSL_CTX_use_PrivateKey(ctx, pkey) || !SSL_CTX_check_private_key(ctx)) {
		snprintf(err, errsz, "%s: the key does not match the certificate in %s "
		    "(OpenSSL: %s)", keyname, certname, tls_pem_error(why, sizeof(why)));
		goto fail;
	}
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	X509_free(x);
	return ctx;
fail:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	X509_free(x);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}

/*
 * deliverd_tls.c - the TLS client of outbound SMTP (deliverd, unprivileged,
 * chrooted): one SSL_CTX, TLS 1.2 or later, whose trust store is the CA
 * bundle mailrootd reads for us (DAEMON_CA_BUNDLE: deliverd cannot open the
 * file in its chroot).  Each connection gets an SSL with SNI and the name
 * (or, for an address literal, the IP) it must match; under tls require a
 * certificate that does not verify fails the handshake.  Trust boundary:
 * the server's certificate and records, which only OpenSSL parses.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "deliverd.h"
#include "log.h"
#include "tls_pem.h"
#include "util.h"

#define CA_BUNDLE_MAX	(16 * 1024 * 1024)

static SSL_CTX *ctx;

static SSL_CTX *
ctx_new(void)
{
	SSL_CTX *c;

	if ((c = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	return c;
}

void
tls_client_init(void)
{
	if ((ctx = ctx_new()) == NULL)
		fatalx("tls: cannot make the client context");
}

void
tls_ca_bundle(int fd, const char *name)
{
	char why[256], *buf = NULL;
	X509_STORE *store = NULL;
	SSL_CTX *nctx = NULL;
	struct stat st;
	BIO *bio = NULL;
	X509 *x;
	size_t len;
	int n = 0;

	if (fstat(fd, &st) == -1 || st.st_size <= 0 || st.st_size > CA_BUNDLE_MAX) {
		log_warnx("tls: bad CA bundle %s from the supervisor", name);
		goto done;
	}
	len = (size_t)st.st_size;
	if ((buf = malloc(len)) == NULL || lseek(fd, 0, SEEK_SET) == -1 ||
	    read_full(fd, buf, len) != (ssize_t)len) {
		log_warn("tls: reading the CA bundle %s", name);
		goto done;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (store = X509_STORE_new()) == NULL || (nctx = ctx_new()) == NULL)
		goto oom;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (X509_STORE_add_cert(store, x) == 1)
			n++;
		X509_free(x);
	}
	ERR_clear_error();	/* the end of the text reads as an error */
	if (n == 0) {
		log_warnx("tls: no certificate in the CA bundle %s; keeping the "
		    "previous one", name);
		goto done;
	}
	SSL_CTX_set_cert_store(nctx, store);	/* the context owns it now */
	store = NULL;
	/* Connections under way keep a reference to the old context. */
	SSL_CTX_free(ctx);
	ctx = nctx;
	nctx = NULL;
	log_info("tls: %d CA certificates from %s", n, name);
	goto done;
oom:
	log_warnx("tls: loading the CA bundle %s: %s", name, tls_pem_error(why, sizeof(why)));
done:
	X509_STORE_free(store);
	SSL_CTX_free(nctx);
	BIO_free(bio);
	free(buf);
	close(fd);
}

SSL *
tls_client_new(const char *name, int literal, int require)
{
	X509_VERIFY_PARAM *vp;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	vp = SSL_get0_param(ssl);
	if (literal) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
			goto fail;
	} else {
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
		    X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1)
			goto fail;
	}
	/*
	 * Opportunistic: verified all the same, for the log, but any
	 * certificate is taken (RFC 7435).
	 */
	SSL_set_verify(ssl, require ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

void
tls_client_info(SSL *ssl, char *version, size_t versionsz, int *verified)
{
	(void)strlcpy(version, SSL_get_version(ssl), versionsz);
	*verified = SSL_get_verify_result(ssl) == X509_V_OK &&
	    SSL_get0_peer_certificate(ssl) != NULL;
}

void
tls_client_error(struct bufferevent *bev, short what, char *buf, size_t bufsz)
{
	const char *r[3];
	unsigned long e;
	int n = 0, i;

	buf[0] = '\0';
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (n < 3 && (r[n] = ERR_reason_error_string(e)) != NULL)
			n++;
	for (i = n - 1; i >= 0; i--) {
		if (buf[0])
			(void)strlcat(buf, ", ", bufsz);
		(void)strlcat(buf, r[i], bufsz);
	}
	if (buf[0] != '\0')
		return;
	if (what & BEV_EVENT_TIMEOUT)
		(void)strlcpy(buf, "timeout", bufsz);
	else if (what & BEV_EVENT_EOF)
		(void)strlcpy(buf, "connection closed by the server", bufsz);
	else if (errno != 0)
		(void)strlcpy(buf, strerror(errno), bufsz);
	else
		(void)strlcpy(buf, "handshake failed", bufsz);
}

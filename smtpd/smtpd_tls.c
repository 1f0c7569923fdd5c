/*
 * smtpd_tls.c - TLS on the listeners: STARTTLS (RFC 3207) and implicit TLS
 * (RFC 8314) (smtpd, unprivileged, chrooted).
 *
 * smtpd cannot read the certificate or key (it runs as _smtpd in an empty
 * chroot): mailrootd reads and checks them and hands over the PEM text in a
 * memfd (DAEMON_TLS_MATERIAL), from which this file builds the SSL_CTX of
 * new sessions (common/tls_pem.c), then wipes the text.  A session's TLS is
 * a libevent OpenSSL filter over its socket bufferevent; the session code
 * reads and writes s->bev as before.  Trust boundary: the client's TLS
 * records, which only OpenSSL parses; a failed handshake is logged with
 * OpenSSL's reason and ends the session.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "daemon.h"
#include "log.h"
#include "smtpd.h"
#include "tls_pem.h"
#include "util.h"

#define TLS_MATERIAL_MAX	(2 * 1024 * 1024 + 2)	/* two files of 1 MiB */
#define LINGER_SEC		10	/* to send the last records after a close */

static SSL_CTX *ctx;

void
tls_material(int fd, uint64_t certlen, const char *certfile, const char *keyfile)
{
	char err[1024], *buf;
	struct stat st;
	SSL_CTX *nctx;
	size_t len;

	if (fstat(fd, &st) == -1 || st.st_size < 0 || st.st_size > TLS_MATERIAL_MAX ||
	    certlen > (uint64_t)st.st_size) {
		log_warnx("tls: bad certificate and key from the supervisor; keeping %s",
		    ctx ? "the previous ones" : "TLS off");
		close(fd);
		return;
	}
	len = (size_t)st.st_size;
	if ((buf = malloc(len + 1)) == NULL || lseek(fd, 0, SEEK_SET) == -1 ||
	    read_full(fd, buf, len) != (ssize_t)len) {
		log_warn("tls: reading the certificate and key");
		if (buf) {
			explicit_bzero(buf, len);
			free(buf);
		}
		(void)!ftruncate(fd, 0);
		close(fd);
		return;
	}
	/* Nothing keeps a copy of the key text: the memfd, then the buffer. */
	(void)!ftruncate(fd, 0);
	close(fd);
	nctx = tls_pem_server_ctx(buf, (size_t)certlen, certfile, buf + certlen,
	    len - (size_t)certlen, keyfile, err, sizeof(err));
	explicit_bzero(buf, len);
	free(buf);
	if (nctx == NULL) {
		log_warnx("tls: %s; keeping %s", err, ctx ? "the previous certificate" :
		    "TLS off");
		return;
	}
	/* Sessions under way hold a reference to the old context. */
	SSL_CTX_free(ctx);
	ctx = nctx;
	log_info("tls: serving certificate %s", certfile);
}

int
tls_available(void)
{
	return ctx != NULL;
}

/*
 * Put a TLS filter (server side, handshake pending) over s->bev, which
 * becomes s->bev_plain.  The caller sets the filter's callbacks.  The
 * socket's input must be empty: what is there would be taken as the
 * handshake.
 */
int
tls_start(struct session *s)
{
	struct bufferevent *bev;
	SSL *ssl;
	char why[256];

	if (ctx == NULL) {
		log_warnx("session=%08x client=%s status=tls-failed reason=\"no "
		    "certificate loaded\"", s->id, s->addr);
		return -1;
	}
	if ((ssl = SSL_new(ctx)) == NULL) {
		log_warnx("session=%08x tls: SSL_new: %s", s->id,
		    tls_pem_error(why, sizeof(why)));
		return -1;
	}
	/*
	 * Not BEV_OPT_CLOSE_ON_FREE: the session frees the SSL and the socket
	 * itself, after the last records are sent (tls_close).
	 */
	bev = bufferevent_openssl_filter_new(env->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, 0);
	if (bev == NULL) {
		log_warnx("session=%08x tls: cannot set up the TLS filter", s->id);
		SSL_free(ssl);
		return -1;
	}
	/* A client that closes without close_notify: an end, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	s->bev_plain = s->bev;
	s->bev = bev;
	s->ssl = ssl;
	s->tls = TLS_HANDSHAKE;
	return 0;
}

/* The handshake completed: note what was agreed. */
void
tls_established(struct session *s)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(s->ssl);

	s->tls = TLS_ON;
	smtpd_stats.tls++;
	strlcpy(s->tls_version, SSL_get_version(s->ssl), sizeof(s->tls_version));
	strlcpy(s->tls_cipher, c ? SSL_CIPHER_get_name(c) : "unknown",
	    sizeof(s->tls_cipher));
	s->tls_bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

/* The handshake did not complete: log why (OpenSSL's reasons, oldest first). */
void
tls_failed(struct session *s, short what)
{
	const char *r[3];
	char reason[512], buf[128];
	unsigned long e;
	int n = 0, i;

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0)
		if (n < 3 && (r[n] = ERR_reason_error_string(e)) != NULL)
			n++;
	reason[0] = '\0';
	for (i = n - 1; i >= 0; i--) {
		if (reason[0])
			strlcat(reason, ", ", sizeof(reason));
		strlcat(reason, r[i], sizeof(reason));
	}
	if (reason[0] == '\0') {
		if (what & BEV_EVENT_TIMEOUT)
			strlcpy(reason, "timeout", sizeof(reason));
		else if (what & BEV_EVENT_EOF)
			strlcpy(reason, "connection closed by the client", sizeof(reason));
		else if ((what & BEV_EVENT_ERROR) && errno != 0) {
			/* A socket error (libevent leaves its errno). */
			snprintf(buf, sizeof(buf), "%s", strerror(errno));
			strlcpy(reason, buf, sizeof(reason));
		} else
			strlcpy(reason, "handshake failed", sizeof(reason));
	}
	log_info("session=%08x client=%s status=tls-failed reason=\"%s\"",
	    s->id, s->addr, reason);
}

/* " tls=TLSv1.3 cipher=..." for a session's log lines; "" without TLS. */
const char *
tls_log_fields(const struct session *s)
{
	static char buf[128];

	if (s->tls != TLS_ON)
		return "";
	snprintf(buf, sizeof(buf), " tls=%s cipher=%s", s->tls_version, s->tls_cipher);
	return buf;
}

/* ---- closing: the socket outlives the session until its output is sent ---- */

static void
linger_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

/*
 * Free the session's TLS filter, SSL and socket.  The filter's output has
 * become records in the socket's output buffer: the socket stays open (at
 * most LINGER_SEC) until they, and a close_notify, are sent.
 */
void
tls_close(struct session *s)
{
	struct bufferevent *plain = s->bev_plain;
	struct timeval tv = { LINGER_SEC, 0 };

	if (s->tls == TLS_ON)
		(void)SSL_shutdown(s->ssl);	/* queues close_notify */
	ERR_clear_error();
	bufferevent_free(s->bev);
	SSL_free(s->ssl);
	s->bev = NULL;
	s->ssl = NULL;
	s->bev_plain = NULL;
	if (evbuffer_get_length(bufferevent_get_output(plain)) == 0) {
		bufferevent_free(plain);
		return;
	}
	bufferevent_setcb(plain, NULL, linger_write_cb, linger_event_cb, NULL);
	bufferevent_disable(plain, EV_READ);
	bufferevent_setwatermark(plain, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(plain, NULL, &tv);
	bufferevent_enable(plain, EV_WRITE);
}

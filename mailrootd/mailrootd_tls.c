/*
 * mailrootd_tls.c - the certificate and key of the TLS listeners (mailrootd,
 * root).
 *
 * smtpd runs chrooted as _smtpd and never opens these files: the supervisor
 * reads them at start and at each reload, checks them with the code smtpd
 * builds its context with (common/tls_pem.c: they parse, and the key is the
 * certificate's), keeps the PEM text, and hands it to smtpd as a memfd in
 * DAEMON_TLS_MATERIAL whenever smtpd starts and after each reload.  Trust:
 * the files are the administrator's; they are still read as data, bounded
 * in size, and must be regular files.  The key text is wiped from memory
 * when it is replaced.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "tls_pem.h"
#include "util.h"

#define TLS_FILE_MAX	(4 * 1024 * 1024)	/* a certificate chain, a key, a CA bundle */

/* What smtpd is given: the certificate (and chain), then the key. */
static struct {
	char	*pem;			/* NULL: no TLS configured */
	size_t	 len, certlen;
	char	 certfile[PATH_MAX];
	char	 keyfile[PATH_MAX];
} cur;

/* Append the file `path` to *buf (of *len bytes); -1 with err. */
static int
read_pem(const char *path, const char *what, char **buf, size_t *len,
    char *err, size_t errsz)
{
	struct stat st;
	char *nb;
	ssize_t n;
	int fd;

	/* Links are followed: certificates often live behind them (certbot). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errsz, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > TLS_FILE_MAX) {
		snprintf(err, errsz, "%s %s: not a regular file of at most 4 MiB",
		    what, path);
		close(fd);
		return -1;
	}
	if ((nb = realloc(*buf, *len + (size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		close(fd);
		return -1;
	}
	*buf = nb;
	n = read_full(fd, nb + *len, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		explicit_bzero(nb + *len, (size_t)st.st_size);
		snprintf(err, errsz, "%s %s: short read", what, path);
		return -1;
	}
	*len += (size_t)n;
	nb[*len] = '\0';
	return 0;
}

static void
wipe(char *buf, size_t len)
{
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
}

/* Say when a certificate is not valid now: it loads, but clients will balk. */
static void
check_dates(SSL_CTX *ctx, const char *certfile)
{
	X509 *x = SSL_CTX_get0_certificate(ctx);
	struct tm tm;
	char when[64];

	if (x == NULL)
		return;
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1 ||
		    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
			strlcpy(when, "?", sizeof(when));
		log_warnx("tls-certificate %s: the certificate expired on %s", certfile,
		    when);
	} else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		log_warnx("tls-certificate %s: the certificate is not valid yet",
		    certfile);
}

int
tls_load(const struct config *c, char *err, size_t errsz)
{
	char *buf = NULL;
	size_t len = 0, certlen;
	SSL_CTX *ctx;

	if (c->tls_certificate[0] == '\0') {
		wipe(cur.pem, cur.len);
		memset(&cur, 0, sizeof(cur));
		return 0;
	}
	if (read_pem(c->tls_certificate, "tls-certificate", &buf, &len, err, errsz) == -1)
		goto fail;
	certlen = len;
	if (read_pem(c->tls_key, "tls-key", &buf, &len, err, errsz) == -1)
		goto fail;
	ctx = tls_pem_server_ctx(buf, certlen, c->tls_certificate, buf + certlen,
	    len - certlen, c->tls_key, err, errsz);
	if (ctx == NULL)
		goto fail;
	check_dates(ctx, c->tls_certificate);
	SSL_CTX_free(ctx);
	wipe(cur.pem, cur.len);
	cur.pem = buf;
	cur.len = len;
	cur.certlen = certlen;
	strlcpy(cur.certfile, c->tls_certificate, sizeof(cur.certfile));
	strlcpy(cur.keyfile, c->tls_key, sizeof(cur.keyfile));
	log_debug("tls: certificate %s and key %s loaded", cur.certfile, cur.keyfile);
	return 0;
fail:
	wipe(buf, len);
	return -1;
}

void
tls_send(struct ipc *ipc)
{
	struct mbuf m;
	int fd;

	if (cur.pem == NULL || ipc == NULL)
		return;
	if ((fd = memfd_create("mailroot-tls", MFD_CLOEXEC)) == -1) {
		log_warn("tls: memfd for smtpd");
		return;
	}
	if (write_all(fd, cur.pem, cur.len) == -1 || lseek(fd, 0, SEEK_SET) == -1) {
		log_warn("tls: memfd for smtpd");
		close(fd);
		return;
	}
	m_init(&m, DAEMON_TLS_MATERIAL, 0);
	m_add_fd(&m, fd);
	m_add_u64(&m, cur.certlen);
	m_add_str(&m, cur.certfile);
	m_add_str(&m, cur.keyfile);
	ipc_send(ipc, &m);
}

/*
 * The CA certificates deliverd verifies outbound peers with: read here, as
 * root, at each start of deliverd and each reload (deliverd is chrooted and
 * cannot open the file), and sent as PEM text.  The bundle is public: no
 * wiping needed.
 */
void
ca_send(struct ipc *ipc, const struct config *c)
{
	char *buf = NULL, err[PATH_MAX + 128];
	size_t len = 0;
	struct mbuf m;
	int fd;

	if (ipc == NULL || c->outbound_tls_ca_file[0] == '\0')
		return;
	if (read_pem(c->outbound_tls_ca_file, "outbound-tls-ca-file", &buf, &len,
	    err, sizeof(err)) == -1) {
		log_warnx("%s: outbound TLS verifies no certificate", err);
		free(buf);
		return;
	}
	if ((fd = memfd_create("mailroot-ca", MFD_CLOEXEC)) == -1 ||
	    write_all(fd, buf, len) == -1 || lseek(fd, 0, SEEK_SET) == -1) {
		log_warn("tls: memfd for deliverd");
		if (fd != -1)
			close(fd);
		free(buf);
		return;
	}
	free(buf);
	m_init(&m, DAEMON_CA_BUNDLE, 0);
	m_add_fd(&m, fd);
	m_add_str(&m, c->outbound_tls_ca_file);
	ipc_send(ipc, &m);
}

/*
 * mailrootd_listen.c - binding the SMTP listeners (mailrootd, as root).
 * Ports below 1024 need root, so the supervisor binds them all and hands the
 * descriptors to smtpd; smtpd itself never holds privilege.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailrootd.h"

int
listen_bind(const char *addr, uint16_t port, int line, int backlog, char *err,
    size_t errsz)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int fd, on = 1, off = 0, v6;

	memset(&ss, 0, sizeof(ss));
	v6 = strcmp(addr, "*") == 0 || strchr(addr, ':') != NULL;
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_any;
		if (strcmp(addr, "*") != 0 &&
		    inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			goto badaddr;
		slen = sizeof(*sin6);
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			goto badaddr;
		slen = sizeof(*sin);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1 && v6 && strcmp(addr, "*") == 0 && errno == EAFNOSUPPORT) {
		/* A host without IPv6: "all" means all IPv4 addresses. */
		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		slen = sizeof(*sin);
		v6 = 0;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	}
	if (fd == -1) {
		snprintf(err, errsz, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	/* "all" on IPv6 takes IPv4 too; an explicit IPv6 address only IPv6. */
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		    strcmp(addr, "*") == 0 ? &off : &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1) {
		snprintf(err, errsz, "%s:%d: listen on %s port %u: %s", mrd->conf->file,
		    line, addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	if (listen(fd, backlog) == -1) {
		snprintf(err, errsz, "listen on %s port %u: %s", addr, port,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
badaddr:
	snprintf(err, errsz, "bad listen address %s", addr);
	return -1;
}

int
listen_open(const struct config *c, int **fdsp, size_t *np, char *err, size_t errsz)
{
	const struct listener_conf *l;
	int *fds = NULL, *nf, fd;
	size_t n = 0;

	TAILQ_FOREACH(l, &c->listeners, entry) {
		if ((fd = listen_bind(l->addr, l->port, l->line, 512, err, errsz)) == -1)
			goto fail;
		if ((nf = reallocarray(fds, n + 1, sizeof(*fds))) == NULL) {
			close(fd);
			snprintf(err, errsz, "out of memory");
			goto fail;
		}
		fds = nf;
		fds[n++] = fd;
	}
	*fdsp = fds;
	*np = n;
	return 0;
fail:
	listen_close(fds, n);
	return -1;
}

void
listen_close(int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
}

/*
 * ctl_client.c - the control-socket client side shared by smtpctl and
 * smtpq (run by the operator, unprivileged).  Trust: mailrootd is trusted;
 * its answers are still read with the checked IPC decoder.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl_client.h"
#include "ipc.h"
#include "proto.h"

int
ctl_connect(const struct config *c)
{
	struct sockaddr_un sun;
	struct ipc_reader r;
	struct ipc_msg msg;
	struct mbuf m;
	const char *text;
	int fd, saved;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, c->control_socket, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		errx(1, "control socket path too long");
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		err(1, "socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		/* Only "nobody listens there" means stopped. */
		if (saved == ENOENT || saved == ECONNREFUSED)
			return -1;
		if (saved == EACCES || saved == EPERM)
			return -2;
		errx(1, "%s: %s", c->control_socket, strerror(saved));
	}
	m_init(&m, CTL_HELLO, 1);
	m_add_u32(&m, PROTO_VERSION);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1 || ipc_recv_sync(fd, &r, &msg) != 1)
		errx(1, "%s: no answer from mailrootd", c->control_socket);
	if (msg.type != CLIENT_OK) {
		if (m_get_str(&msg, &text, 1024) == -1)
			text = "refused";
		errx(1, "%s", text);
	}
	ipc_reader_clear(&r);
	return fd;
}

void
json_str(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

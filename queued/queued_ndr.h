/*
 * queued_ndr.h - composing delivery status notifications (queued): RFC 3464
 * reports of failed or delayed recipients.  No queue state: the caller says
 * everything the report needs, and where to write it.
 */
#ifndef QUEUED_NDR_H
#define QUEUED_NDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct envelope;

enum ndr_kind { NDR_FAILED, NDR_DELAYED };

/* One recipient of a report. */
struct ndr_rcpt {
	const char	*addr;		/* the final recipient */
	const char	*orcpt;		/* ORCPT "type;xtext", or NULL */
	const char	*status;	/* enhanced status code, "5.1.1" */
	const char	*remote_mta;	/* "name[address]" that answered, or NULL */
	const char	*diag;		/* the reply ("550 5.1.1 ..."), or NULL */
};

struct ndr_info {
	const char		*hostname;	/* Reporting-MTA, From: MAILER-DAEMON@ */
	const char		*id;		/* the report's own queue id */
	const struct envelope	*orig;		/* the message reported on */
	int			 content_fd;	/* its content (read with pread) */
	enum ndr_kind		 kind;
	int64_t			 now;		/* Date: */
	int64_t			 last_attempt;	/* 0: none */
	int64_t			 retry_until;	/* for delay notices */
	const struct ndr_rcpt	*rcpts;
	size_t			 nrcpts;
};

/*
 * Write the report (RFC 5322 message with CRLF line ends) to `outfd`: a
 * multipart/report with a text/plain part, a message/delivery-status part,
 * and the original (RET=FULL or no RET on a failure) or its header section
 * (RET=HDRS, delay notices).  0, or -1 with why.
 */
int	ndr_compose(const struct ndr_info *, int outfd, char *why, size_t whysz);
/* Octets of the header section of the content at fd, with its empty line; -1 on error. */
ssize_t	ndr_header_length(int fd);
/* How many Received: fields the header section has (RFC 5321 6.3); -1 on error. */
int	ndr_count_received(int fd);

#endif

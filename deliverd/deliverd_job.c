/*
 * deliverd_job.c - a batch from queued and the outcome of each of its
 * recipients (deliverd, unprivileged, chrooted).  The batch is decoded and
 * checked by common/proto_deliver.c; here it is copied, so it outlives the
 * IPC frame.  Reply text from remote servers is cleaned into one printable
 * line before it is kept: it goes to queued, then into logs and NDRs.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliverd.h"
#include "log.h"

void
text_clean(char *dst, size_t dstsz, const char *src)
{
	size_t i;

	if (dstsz == 0)
		return;
	for (i = 0; src[i] != '\0' && i + 1 < dstsz; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || (unsigned char)src[i] > 0x7e) ?
		    '?' : src[i];
	dst[i] = '\0';
}

struct job *
job_new(const struct deliver_batch *b, uint32_t reqid, int fd)
{
	struct job *j;
	size_t i;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->fd = fd;
	j->reqid = reqid;
	if (strlcpy(j->qid, b->qid, sizeof(j->qid)) >= sizeof(j->qid) ||
	    strlcpy(j->domain, b->domain, sizeof(j->domain)) >= sizeof(j->domain) ||
	    strlcpy(j->envid, b->envid, sizeof(j->envid)) >= sizeof(j->envid) ||
	    (j->sender = strdup(b->sender)) == NULL ||
	    (j->rcpts = calloc(b->nrcpts, sizeof(*j->rcpts))) == NULL)
		goto fail;
	j->body = b->body;
	j->smtputf8 = b->smtputf8 != 0;
	j->ret = b->ret;
	j->size = b->size;
	for (i = 0; i < b->nrcpts; i++) {
		struct job_rcpt *r = &j->rcpts[i];

		j->nrcpts++;
		r->index = b->rcpts[i].index;
		r->notify = b->rcpts[i].notify;
		if ((r->addr = strdup(b->rcpts[i].addr)) == NULL)
			goto fail;
		if (b->rcpts[i].orcpt[0] != '\0' &&
		    (r->orcpt = strdup(b->rcpts[i].orcpt)) == NULL)
			goto fail;
	}
	job_error(j, 0, 0, "4.4.1", "not attempted", "");
	return j;
fail:
	j->fd = -1;	/* the caller still owns it */
	job_free(j);
	return NULL;
}

void
job_free(struct job *j)
{
	size_t i;

	if (j == NULL)
		return;
	/* nrcpts counts the entries filled in: 0 when rcpts could not be allocated */
	for (i = 0; i < j->nrcpts; i++) {
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		free(j->rcpts[i].addr);
		free(j->rcpts[i].orcpt);
	}
	free(j->rcpts);
	free(j->sender);
	if (j->fd != -1)
		close(j->fd);
	explicit_bzero(j->route.auth_password, sizeof(j->route.auth_password));
	free(j);
}

void
job_error(struct job *j, int perm, uint32_t code, const char *enhanced,
    const char *text, const char *host)
{
	j->err_perm = perm;
	j->err_code = code;
	(void)strlcpy(j->err_enhanced, enhanced ? enhanced : "", sizeof(j->err_enhanced));
	text_clean(j->err_text, sizeof(j->err_text), text ? text : "");
	text_clean(j->err_host, sizeof(j->err_host), host ? host : "");
}

void
job_rcpt_result(struct job *j, struct job_rcpt *r, uint32_t code,
    const char *enhanced, const char *text, const char *host)
{
	(void)j;
	r->done = 1;
	r->status = code / 100 == 2 ? DELIVER_OK : code / 100 == 5 ?
	    DELIVER_PERMFAIL : DELIVER_TEMPFAIL;
	r->code = code;
	(void)strlcpy(r->enhanced, enhanced ? enhanced : "", sizeof(r->enhanced));
	text_clean(r->text, sizeof(r->text), text ? text : "");
	text_clean(r->host, sizeof(r->host), host ? host : "");
}

void
job_settle(struct job *j)
{
	size_t i;

	for (i = 0; i < j->nrcpts; i++) {
		struct job_rcpt *r = &j->rcpts[i];

		if (r->done)
			continue;
		r->done = 1;
		r->status = j->err_perm ? DELIVER_PERMFAIL : DELIVER_TEMPFAIL;
		r->code = j->err_code;
		(void)strlcpy(r->enhanced, j->err_enhanced, sizeof(r->enhanced));
		(void)strlcpy(r->text, j->err_text, sizeof(r->text));
		(void)strlcpy(r->host, j->err_host, sizeof(r->host));
	}
}

/*
 * envelope.c - writing and reading Queue/<id>.env (mail layer; queued).
 * The parser treats the file as untrusted (it may be torn, or edited by
 * hand): every line is checked, addresses must be valid mailboxes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>

#include "dsn.h"
#include "envelope.h"
#include "smtp_parse.h"

static const char *const state_names[] = { "pending", "done", "failed" };

const char *
rcpt_state_name(enum rcpt_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "unknown";
}

int
envelope_add_rcpt(struct envelope *e, const char *addr, enum rcpt_state st)
{
	struct envelope_rcpt *nr;
	char *a;

	if ((a = strdup(addr)) == NULL)
		return -1;
	nr = reallocarray(e->rcpts, e->nrcpts + 1, sizeof(*nr));
	if (nr == NULL) {
		free(a);
		return -1;
	}
	e->rcpts = nr;
	e->rcpts[e->nrcpts].addr = a;
	e->rcpts[e->nrcpts].state = st;
	e->rcpts[e->nrcpts].notify = 0;
	e->rcpts[e->nrcpts].orcpt = NULL;
	e->rcpts[e->nrcpts].error = NULL;
	e->nrcpts++;
	return 0;
}

int
envelope_rcpt_dsn(struct envelope *e, uint32_t notify, const char *orcpt)
{
	struct envelope_rcpt *r;
	char *o = NULL;

	if (e->nrcpts == 0)
		return -1;
	r = &e->rcpts[e->nrcpts - 1];
	if (orcpt != NULL && orcpt[0] != '\0' && (o = strdup(orcpt)) == NULL)
		return -1;
	free(r->orcpt);
	r->orcpt = o;
	r->notify = notify & DSN_NOTIFY_MASK;
	return 0;
}

int
envelope_rcpt_error(struct envelope *e, size_t i, const char *text)
{
	char *t = NULL;
	size_t n, k;

	if (i >= e->nrcpts)
		return -1;
	if (text != NULL && text[0] != '\0') {
		n = strnlen(text, ENVELOPE_ERROR_MAX);
		if ((t = malloc(n + 1)) == NULL)
			return -1;
		for (k = 0; k < n; k++)
			t[k] = (unsigned char)text[k] < 0x20 ||
			    (unsigned char)text[k] > 0x7e ? '?' : text[k];
		t[n] = '\0';
		/* A trailing space would not survive the file's form. */
		while (n > 0 && t[n - 1] == ' ')
			t[--n] = '\0';
		if (n == 0) {
			free(t);
			t = NULL;
		}
	}
	free(e->rcpts[i].error);
	e->rcpts[i].error = t;
	return 0;
}

/* Printable US-ASCII, not empty, at most ENVELOPE_ERROR_MAX octets. */
static int
error_valid(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return n > 0 && n <= ENVELOPE_ERROR_MAX;
}

static const char *const body_names[] = { "", "7bit", "8bitmime", "binarymime" };

int
envelope_format(const struct envelope *e, struct evbuffer *out)
{
	char nbuf[32];
	size_t i;

	if (evbuffer_add_printf(out, "mailroot-envelope %d\nid %s\narrival %" PRId64
	    "\nattempts %" PRIu32 "\nnext-attempt %" PRId64 "\nsender <%s>\n",
	    ENVELOPE_VERSION, e->id, e->arrival, e->attempts, e->next_attempt,
	    e->sender ? e->sender : "") < 0)
		return -1;
	if (e->body > ENV_BODY_NONE && e->body <= ENV_BODY_BINARYMIME &&
	    evbuffer_add_printf(out, "body %s\n", body_names[e->body]) < 0)
		return -1;
	if (e->smtputf8 && evbuffer_add_printf(out, "smtputf8 yes\n") < 0)
		return -1;
	if (e->ret != DSN_RET_NONE &&
	    evbuffer_add_printf(out, "ret %s\n", dsn_ret_name(e->ret)) < 0)
		return -1;
	if (e->envid && evbuffer_add_printf(out, "envid %s\n", e->envid) < 0)
		return -1;
	if (e->delay_notified && evbuffer_add_printf(out, "delay-notified yes\n") < 0)
		return -1;
	if (e->last_attempt != 0 && evbuffer_add_printf(out, "last-attempt %" PRId64
	    "\n", e->last_attempt) < 0)
		return -1;
	if (e->held && evbuffer_add_printf(out, "held yes\n") < 0)
		return -1;
	for (i = 0; i < e->nrcpts; i++) {
		if (evbuffer_add_printf(out, "rcpt %s <%s>\n",
		    rcpt_state_name(e->rcpts[i].state), e->rcpts[i].addr) < 0)
			return -1;
		if (e->rcpts[i].notify && evbuffer_add_printf(out, "notify %s\n",
		    dsn_notify_format(e->rcpts[i].notify, nbuf, sizeof(nbuf))) < 0)
			return -1;
		if (e->rcpts[i].orcpt &&
		    evbuffer_add_printf(out, "orcpt %s\n", e->rcpts[i].orcpt) < 0)
			return -1;
		if (e->rcpts[i].error &&
		    evbuffer_add_printf(out, "error %s\n", e->rcpts[i].error) < 0)
			return -1;
	}
	return evbuffer_add(out, "end\n", 4);
}

void
envelope_free(struct envelope *e)
{
	size_t i;

	free(e->sender);
	free(e->envid);
	for (i = 0; i < e->nrcpts; i++) {
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
		free(e->rcpts[i].error);
	}
	free(e->rcpts);
	memset(e, 0, sizeof(*e));
}

static int
parse_i64(const char *s, int64_t *v)
{
	char *end;
	long long n;

	if (*s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end != '\0')
		return -1;
	*v = n;
	return 0;
}

/* "<addr>" -> addr, checked; allow_null accepts "<>". */
static char *
parse_addr(const char *s, int allow_null)
{
	size_t len = strlen(s);
	char buf[SMTP_PATH_MAX + 1];

	if (len < 2 || s[0] != '<' || s[len - 1] != '>' || len - 2 > SMTP_PATH_MAX)
		return NULL;
	memcpy(buf, s + 1, len - 2);
	buf[len - 2] = '\0';
	if (buf[0] == '\0')
		return allow_null ? strdup("") : NULL;
	if (!smtp_mailbox_valid(buf, 1) && !smtp_is_postmaster(buf))
		return NULL;
	return strdup(buf);
}

int
envelope_parse(const char *buf, size_t len, struct envelope *e, char *err, size_t errsz)
{
	char line[ENVELOPE_ERROR_MAX + DSN_ORCPT_MAX + SMTP_PATH_MAX + 64], *val;
	const char *p = buf, *end = buf + len, *nl;
	int lineno = 0, seen_end = 0, seen_id = 0, seen_sender = 0;
	int seen_arrival = 0, seen_attempts = 0, seen_next = 0;
	int seen_body = 0, seen_utf8 = 0, seen_ret = 0, seen_notify = 0, seen_orcpt = 0;
	int seen_delay = 0, seen_last = 0, seen_error = 0, seen_held = 0;
	uint32_t notify;
	enum rcpt_state st;
	int64_t v;
	size_t ll, i;

	memset(e, 0, sizeof(*e));
	if (len > ENVELOPE_MAX_SIZE) {
		snprintf(err, errsz, "envelope too large");
		return -1;
	}
	while (p < end) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL) {
			snprintf(err, errsz, "line %d: not terminated (torn file)", lineno);
			return -1;
		}
		ll = (size_t)(nl - p);
		if (ll >= sizeof(line) || memchr(p, '\0', ll) != NULL) {
			snprintf(err, errsz, "line %d: too long or binary", lineno);
			return -1;
		}
		memcpy(line, p, ll);
		line[ll] = '\0';
		p = nl + 1;
		if (seen_end) {
			snprintf(err, errsz, "line %d: data after end", lineno);
			return -1;
		}
		if (lineno == 1) {
			if (strcmp(line, "mailroot-envelope 1") != 0) {
				snprintf(err, errsz, "line 1: not a version %d envelope",
				    ENVELOPE_VERSION);
				return -1;
			}
			continue;
		}
		if (strcmp(line, "end") == 0) {
			seen_end = 1;
			continue;
		}
		if ((val = strchr(line, ' ')) == NULL)
			goto bad;
		*val++ = '\0';
		if (strcmp(line, "id") == 0) {
			if (seen_id || !queueid_valid(val))
				goto bad;
			strlcpy(e->id, val, sizeof(e->id));
			seen_id = 1;
		} else if (strcmp(line, "arrival") == 0) {
			if (seen_arrival++ || parse_i64(val, &e->arrival) == -1)
				goto bad;
		} else if (strcmp(line, "attempts") == 0) {
			if (seen_attempts++ || parse_i64(val, &v) == -1 || v < 0 ||
			    v > UINT32_MAX)
				goto bad;
			e->attempts = (uint32_t)v;
		} else if (strcmp(line, "next-attempt") == 0) {
			if (seen_next++ || parse_i64(val, &e->next_attempt) == -1)
				goto bad;
		} else if (strcmp(line, "sender") == 0) {
			if (seen_sender)
				goto bad;
			if ((e->sender = parse_addr(val, 1)) == NULL)
				goto bad;
			seen_sender = 1;
		} else if (strcmp(line, "rcpt") == 0) {
			char *addr = strchr(val, ' ');

			if (addr == NULL)
				goto bad;
			*addr++ = '\0';
			for (i = 0; i < 3; i++)
				if (strcmp(val, state_names[i]) == 0)
					break;
			if (i == 3)
				goto bad;
			st = (enum rcpt_state)i;
			if ((addr = parse_addr(addr, 0)) == NULL)
				goto bad;
			if (envelope_add_rcpt(e, addr, st) == -1) {
				free(addr);
				snprintf(err, errsz, "out of memory");
				return -1;
			}
			free(addr);
			seen_notify = seen_orcpt = seen_error = 0;
		} else if (strcmp(line, "notify") == 0) {
			/* belongs to the rcpt line just before */
			if (e->nrcpts == 0 || seen_notify++ ||
			    dsn_notify_parse(val, &notify) == -1)
				goto bad;
			e->rcpts[e->nrcpts - 1].notify = notify;
		} else if (strcmp(line, "orcpt") == 0) {
			if (e->nrcpts == 0 || seen_orcpt++ || !dsn_orcpt_valid(val, 1) ||
			    (e->rcpts[e->nrcpts - 1].orcpt = strdup(val)) == NULL)
				goto bad;
		} else if (strcmp(line, "error") == 0) {
			if (e->nrcpts == 0 || seen_error++ || !error_valid(val) ||
			    (e->rcpts[e->nrcpts - 1].error = strdup(val)) == NULL)
				goto bad;
		} else if (strcmp(line, "delay-notified") == 0) {
			if (seen_delay++ || strcmp(val, "yes") != 0)
				goto bad;
			e->delay_notified = 1;
		} else if (strcmp(line, "held") == 0) {
			if (seen_held++ || strcmp(val, "yes") != 0)
				goto bad;
			e->held = 1;
		} else if (strcmp(line, "last-attempt") == 0) {
			if (seen_last++ || parse_i64(val, &e->last_attempt) == -1)
				goto bad;
		} else if (strcmp(line, "body") == 0) {
			for (i = 1; i < sizeof(body_names) / sizeof(body_names[0]); i++)
				if (strcmp(val, body_names[i]) == 0)
					break;
			if (seen_body++ || i == sizeof(body_names) / sizeof(body_names[0]))
				goto bad;
			e->body = (enum envelope_body)i;
		} else if (strcmp(line, "smtputf8") == 0) {
			if (seen_utf8++ || strcmp(val, "yes") != 0)
				goto bad;
			e->smtputf8 = 1;
		} else if (strcmp(line, "ret") == 0) {
			if (seen_ret++ || (strcmp(val, "full") != 0 && strcmp(val, "hdrs") != 0))
				goto bad;
			e->ret = dsn_ret_parse(val);
		} else if (strcmp(line, "envid") == 0) {
			if (e->envid != NULL || !dsn_envid_valid(val) ||
			    (e->envid = strdup(val)) == NULL)
				goto bad;
		} else
			goto bad;
	}
	if (!seen_end) {
		snprintf(err, errsz, "no end line (torn file)");
		return -1;
	}
	if (!seen_id || !seen_sender || e->nrcpts == 0) {
		snprintf(err, errsz, "missing id, sender or recipients");
		return -1;
	}
	return 0;
bad:
	snprintf(err, errsz, "line %d: malformed", lineno);
	return -1;
}

/*
 * fuzz_smtp_command.c - libFuzzer target for common/smtp_parse.c: the input
 * is a client's byte stream (one line, or pipelined lines) and an address.
 * Checks the documented guarantees with abort(): what is parsed OK is valid,
 * and the framing never claims more than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_command(const char *line, size_t len, int utf8)
{
	struct smtp_cmd cmd;
	const char *why = NULL, *d;
	enum smtp_parse_result r;
	size_t i, j;

	r = smtp_parse_command(line, len, utf8, &cmd, &why);
	if (why == NULL || r > SMTP_PARSE_TOO_LONG)
		abort();
	if (r != SMTP_PARSE_OK)
		return;
	if (len > SMTP_LINE_MAX - 2 || cmd.verb == SMTP_CMD_UNKNOWN ||
	    memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL ||
	    memchr(line, '\n', len) != NULL)
		abort();
	if (memchr(cmd.arg, '\0', sizeof(cmd.arg)) == NULL ||
	    memchr(cmd.path, '\0', sizeof(cmd.path)) == NULL ||
	    cmd.nparams > SMTP_PARAMS_MAX)
		abort();
	for (i = 0; i < cmd.nparams; i++) {
		const struct smtp_param *p = &cmd.params[i];

		if (memchr(p->key, '\0', sizeof(p->key)) == NULL ||
		    memchr(p->value, '\0', sizeof(p->value)) == NULL ||
		    p->key[0] == '\0' || strpbrk(p->value, "= \t") != NULL ||
		    strpbrk(p->key, "abcdefghijklmnopqrstuvwxyz=") != NULL)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(cmd.params[j].key, p->key) == 0)
				abort();
	}
	switch (cmd.verb) {
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		if (!smtp_domain_valid(cmd.arg, utf8))
			abort();
		break;
	case SMTP_CMD_MAIL:
		if (cmd.path[0] != '\0' && !smtp_mailbox_valid(cmd.path, 1))
			abort();
		break;
	case SMTP_CMD_RCPT:
		if (smtp_is_postmaster(cmd.path))
			break;
		if (!smtp_mailbox_valid(cmd.path, utf8) ||
		    smtp_addr_domain(cmd.path, &d) == -1 ||
		    !smtp_domain_valid(d, utf8))
			abort();
		break;
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		if (cmd.arg[0] != '\0')
			abort();
		break;
	default:
		break;
	}
	/* SMTPUTF8 only ever widens what is accepted */
	if (!utf8) {
		if (smtp_parse_command(line, len, 1, &cmd, &why) != SMTP_PARSE_OK)
			abort();
	}
}

static void
check_path(const char *s, size_t len)
{
	char out[SMTP_PATH_MAX + 1];
	const char *d;
	int an, u;

	for (u = 0; u <= 1; u++)
		for (an = 0; an <= 1; an++) {
			if (smtp_parse_path(s, len, an, u, out, sizeof(out)) == -1)
				continue;
			if (len > SMTP_PATH_MAX || strlen(out) > SMTP_PATH_MAX - 2)
				abort();
			if (out[0] == '\0') {
				if (!an)
					abort();
				continue;
			}
			if (!smtp_mailbox_valid(out, u) ||
			    smtp_addr_domain(out, &d) == -1 ||
			    !smtp_domain_valid(d, u))
				abort();
		}
}

/* The string functions on a NUL-terminated copy of the input. */
static void
check_strings(const char *s)
{
	char path[SMTP_PATH_MAX + 3], out[SMTP_PATH_MAX + 1];
	const char *d;
	size_t n;
	int u;

	for (u = 0; u <= 1; u++) {
		if (smtp_domain_valid(s, 0) && !smtp_domain_valid(s, 1))
			abort();
		if (!smtp_mailbox_valid(s, u))
			continue;
		if (!smtp_mailbox_valid(s, 1))
			abort();
		/* a valid mailbox round-trips through a Path */
		n = strlen(s);
		if (n > SMTP_PATH_MAX - 2 || smtp_addr_domain(s, &d) == -1 ||
		    !smtp_domain_valid(d, u))
			abort();
		path[0] = '<';
		memcpy(path + 1, s, n);
		path[n + 1] = '>';
		if (smtp_parse_path(path, n + 2, 0, u, out, sizeof(out)) == -1 ||
		    strcmp(out, s) != 0)
			abort();
	}
	(void)smtp_is_postmaster(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	char *copy;
	size_t off = 0, linelen, consumed;
	int r;

	check_command(buf, size, 0);
	check_command(buf, size, 1);

	/* the input as a pipelined stream of command lines */
	while ((r = smtp_line_next(buf + off, size - off, &linelen,
	    &consumed)) == 1) {
		if (consumed > size - off || linelen >= consumed ||
		    consumed > SMTP_LINE_MAX || buf[off + consumed - 1] != '\n' ||
		    memchr(buf + off, '\n', consumed - 1) != NULL)
			abort();
		check_command(buf + off, linelen, 0);
		check_command(buf + off, linelen, 1);
		off += consumed;
	}
	if (r == -1 ? size - off < SMTP_LINE_MAX :
	    memchr(buf + off, '\n', size - off) != NULL)
		abort();

	check_path(buf, size);
	if ((copy = malloc(size + 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	check_strings(copy);
	free(copy);
	return 0;
}

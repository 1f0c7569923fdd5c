/*
 * smtp_parse.h - SMTP command lines and address syntax (mail layer).
 * RFC 5321 section 4.1 (commands), 4.1.2 (Mailbox, Path), 4.5.3.1 (sizes),
 * RFC 1870 (SIZE), RFC 6152 (BODY), RFC 3461 (DSN parameters), RFC 6531
 * (SMTPUTF8).  Pure functions: no I/O, no allocation; safe on any input.
 */
#ifndef MR_SMTP_PARSE_H
#define MR_SMTP_PARSE_H

#include <stddef.h>

#define SMTP_LINE_MAX		512	/* command line including CRLF (4.5.3.1.4) */
#define SMTP_TEXT_LINE_MAX	1000	/* text line including CRLF (4.5.3.1.6) */
#define SMTP_LOCAL_MAX		64	/* local-part (4.5.3.1.1) */
#define SMTP_DOMAIN_MAX		255	/* domain (4.5.3.1.2) */
#define SMTP_PATH_MAX		256	/* reverse/forward path with <> (4.5.3.1.3) */
#define SMTP_PARAMS_MAX		16

enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT,
	SMTP_CMD_DATA, SMTP_CMD_RSET, SMTP_CMD_NOOP, SMTP_CMD_QUIT,
	SMTP_CMD_VRFY, SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH, SMTP_CMD_BDAT, SMTP_CMD_ETRN
};

/* An ESMTP parameter of MAIL or RCPT: KEY or KEY=VALUE (4.1.2 esmtp-param). */
struct smtp_param {
	char	key[32];		/* upper-cased */
	char	value[SMTP_LINE_MAX];	/* "" when there was no =value */
};

struct smtp_cmd {
	enum smtp_verb	verb;
	/* HELO/EHLO: the domain or address literal; VRFY/EXPN/HELP/AUTH/BDAT/ETRN/NOOP: the rest of the line. */
	char		arg[SMTP_LINE_MAX];
	/* MAIL/RCPT: the address without <> ("" is the null reverse-path <>). */
	char		path[SMTP_PATH_MAX + 1];
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t		nparams;
};

/* Results; each maps to one reply the session sends. */
enum smtp_parse_result {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_UNKNOWN,	/* 500 5.5.1 command unrecognized */
	SMTP_PARSE_SYNTAX,	/* 501 5.5.2 syntax error in parameters or arguments */
	SMTP_PARSE_BAD_ADDRESS,	/* 553 5.1.3 / 501 5.1.7 mailbox syntax */
	SMTP_PARSE_TOO_LONG,	/* 500 5.5.2 line too long */
};

/*
 * Parse one command line (without its CRLF).  `line` need not be NUL-
 * terminated and may contain any bytes (a NUL or bare CR/LF is a syntax
 * error).  On error *why is a short human-readable reason for the reply text.
 * `smtputf8` allows UTF-8 in addresses (RFC 6531) when the client asked for it
 * on MAIL; RCPT is parsed with the value the session recorded.
 */
enum smtp_parse_result smtp_parse_command(const char *line, size_t len,
    int smtputf8, struct smtp_cmd *cmd, const char **why);

/*
 * Find the next command line in buf[0..len): returns 1 and sets *linelen
 * (without CRLF) and *consumed (with it) when a line ending in LF is there
 * (a CR before it is dropped); 0 when more bytes are needed; -1 when no LF
 * came within SMTP_LINE_MAX bytes (the caller discards up to the next LF
 * and replies 500 5.5.2).
 */
int smtp_line_next(const char *buf, size_t len, size_t *linelen, size_t *consumed);

/*
 * Parse a Path "<...>" (with an optional obsolete source route, which is
 * dropped) into `out` without the brackets.  `allow_null` accepts "<>".
 * Returns 0 or -1.
 */
int smtp_parse_path(const char *s, size_t len, int allow_null, int smtputf8,
    char *out, size_t outsz);

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629) of the non-ASCII
 * character at str[0..len), or 0.
 */
size_t smtp_utf8_len(const char *str, size_t len);
/* 1 when `addr` (no brackets) is a valid Mailbox local-part@domain. */
int smtp_mailbox_valid(const char *addr, int smtputf8);
/* 1 when `d` is a valid Domain (RFC 5321 4.1.2) or address literal [..]. */
int smtp_domain_valid(const char *d, int smtputf8);
/* Point *domain at the domain of `addr` (after the last '@'); -1 if none. */
int smtp_addr_domain(const char *addr, const char **domain);
/* Case-insensitive: is `addr` "postmaster" (any domain-less form, 4.5.1)? */
int smtp_is_postmaster(const char *addr);

#endif

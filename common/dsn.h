/*
 * dsn.h - the syntax of Delivery Status Notification parameters (mail
 * layer): RFC 3461 NOTIFY, RET, ENVID, ORCPT and their xtext encoding.
 * Pure functions: no I/O, no allocation; safe on any input.
 */
#ifndef MR_DSN_H
#define MR_DSN_H

#include <stddef.h>
#include <stdint.h>

#define DSN_ENVID_MAX		100	/* RFC 3461 4.4 */
#define DSN_ORCPT_MAX		500	/* RFC 3461 4.2 */

/* RCPT NOTIFY= (RFC 3461 4.1); 0 means the parameter was not given. */
#define DSN_NOTIFY_SUCCESS	0x1
#define DSN_NOTIFY_FAILURE	0x2
#define DSN_NOTIFY_DELAY	0x4
#define DSN_NOTIFY_NEVER	0x8
#define DSN_NOTIFY_MASK		0xf

/* MAIL RET= (RFC 3461 4.3). */
enum dsn_ret { DSN_RET_NONE = 0, DSN_RET_FULL, DSN_RET_HDRS };

/*
 * Decode xtext (RFC 3461 4: xchar / "+" 2HEXUPPER) into out (NUL-
 * terminated); with `utf8`, UTF-8 octets are taken as they are (RFC 6533
 * unitext).  Returns the decoded length, or -1 when the input is not xtext
 * or does not fit.  A decoded NUL or other control character is refused.
 */
int	dsn_xtext_decode(const char *in, int utf8, char *out, size_t outsz);
/* "NEVER" alone, or a list of SUCCESS, FAILURE, DELAY each at most once. */
int	dsn_notify_parse(const char *value, uint32_t *notify);
/* The text form of a NOTIFY value ("success,failure", "never"); "" for 0. */
const char *dsn_notify_format(uint32_t notify, char *buf, size_t bufsz);
/* "FULL"/"HDRS" (any case) -> DSN_RET_*; -1 otherwise. */
int	dsn_ret_parse(const char *value);
const char *dsn_ret_name(int ret);
/* ENVID: at most 100 octets of xtext that decode to printable US-ASCII. */
int	dsn_envid_valid(const char *value);
/* ORCPT: addr-type ";" xtext, at most 500 octets (RFC 3461 4.2). */
int	dsn_orcpt_valid(const char *value, int utf8);

#endif

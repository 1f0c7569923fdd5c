/*
 * auth.h - what smtpd and mailrootd agree on for SMTP AUTH (mail layer).
 *
 * smtpd speaks SASL PLAIN and LOGIN with the client and sends the decoded
 * user name and password to mailrootd (SUPERVISOR_AUTH_CHECK), which alone
 * reads the password table and answers DAEMON_AUTH_RESULT.  mailrootd takes
 * smtpd for untrusted: it checks every field against these limits.
 */
#ifndef MR_AUTH_H
#define MR_AUTH_H

/* RFC 4616 2: an authcid and a passwd of up to 255 octets must be accepted. */
#define AUTH_USER_MAX		255
/* crypt(3) takes a passphrase of at most 511 octets (CRYPT_MAX_PASSPHRASE_SIZE). */
#define AUTH_PASS_MAX		511
/* Failures from one client address are counted over this many seconds. */
#define AUTH_FAILURE_WINDOW	600

/* The payload of DAEMON_AUTH_RESULT. */
enum auth_result {
	AUTH_RESULT_FAIL = 0,		/* unknown user or wrong password */
	AUTH_RESULT_OK = 1,
	AUTH_RESULT_TEMPFAIL = 2	/* no table, or the checks are over their rate */
};

#endif

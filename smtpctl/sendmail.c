/*
 * sendmail.c - the sendmail-compatible submission command (runs as the
 * invoking user; installed setgid to the mailroot group so that any local
 * user may submit).
 *
 * It reads one message from standard input and writes it into Pickup/ with
 * the IIS envelope lines first (x-sender:, x-receiver:), under a dot-name
 * first, fsync'd, then renamed in: pickupd never sees half a file.  With -t
 * the recipients come from To:/Cc:/Bcc: through pickupd's own parser, which
 * also removes Bcc:.  -bs speaks SMTP on stdin/stdout instead
 * (sendmail_bs.c) and writes each message the same way; -bp and the name
 * mailq run smtpq(1); -bi and the name newaliases do nothing.  Trust: the
 * user is untrusted when the program runs setgid: it then reads only the
 * system configuration file (no -C, no environment), writes only into
 * Pickup/, and never follows a link.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "config.h"
#include "mailroot.h"
#include "pickupd_parse.h"
#include "sendmail.h"
#include "smtp_parse.h"
#include "util.h"

#define UNLIMITED_CAP	(64ULL * 1024 * 1024)

#if defined(__SANITIZE_ADDRESS__)
/*
 * Built with AddressSanitizer (the test build): a set-group-ID process is
 * not dumpable, so LeakSanitizer can neither read its options nor trace
 * the process, and would abort it.  Leak checks run on the other programs.
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: sendmail [-it] [-C file] [-F fullname] [-f sender] "
	    "[-o option] [recipient ...]\n"
	    "       sendmail -bs [-C file] [-F fullname]\n"
	    "       sendmail -bp [-C file]\n"
	    "       sendmail -bi\n");
	exit(EX_USAGE);
}

static void
ignore_report(const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
}

/* Read standard input whole (without -i, a line of one dot ends it). */
static char *
read_message(int dot_ends, uint64_t cap, size_t *lenp)
{
	char *line = NULL, *buf = NULL, *nb;
	size_t linecap = 0, len = 0, bufcap = 0;
	ssize_t n;

	while ((n = getline(&line, &linecap, stdin)) != -1) {
		if (dot_ends && (strcmp(line, ".\n") == 0 || strcmp(line, ".\r\n") == 0))
			break;
		if ((uint64_t)len + (uint64_t)n > cap)
			errx(EX_DATAERR, "message larger than max-message-size (%llu octets)",
			    (unsigned long long)cap);
		if (len + (size_t)n + 1 > bufcap) {
			bufcap = (len + (size_t)n + 1) * 2;
			if ((nb = realloc(buf, bufcap)) == NULL)
				err(EX_OSERR, "reading the message");
			buf = nb;
		}
		memcpy(buf + len, line, (size_t)n);
		len += (size_t)n;
	}
	if (ferror(stdin))
		err(EX_IOERR, "reading the message");
	free(line);
	if (buf == NULL && (buf = strdup("")) == NULL)
		err(EX_OSERR, "reading the message");
	*lenp = len;
	return buf;
}

/* Does the message start with a header field (name, colon)? */
static int
starts_with_header(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == ':')
			return i > 0;
		if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 127)
			return 0;
	}
	return 0;
}

/* Is there a From: field in the header section? */
static int
has_from(const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (buf[i] == '\n' || (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n'))
			return 0;	/* end of the header section */
		if (len - i >= 5 && strncasecmp(buf + i, "From:", 5) == 0)
			return 1;
		while (i < len && buf[i] != '\n')
			i++;
		i++;
	}
	return 0;
}

void
message_complete(struct evbuffer *out, const char *msg, size_t len,
    const char *sender, const char *fullname)
{
	if (!starts_with_header(msg, len))
		evbuffer_add(out, "\r\n", 2);	/* no header section: body only */
	else if (!has_from(msg, len)) {
		if (fullname && strpbrk(fullname, "\"\\\r\n") == NULL)
			evbuffer_add_printf(out, "From: \"%s\" <%s>\r\n", fullname, sender);
		else
			evbuffer_add_printf(out, "From: <%s>\r\n", sender);
	}
	evbuffer_add(out, msg, len);
}

int
pickup_write(const char *pickup, const char *sender, char **rcpts, size_t nrcpts,
    struct evbuffer *content, char *name, size_t namesz, char *why, size_t whysz,
    int *exitcode)
{
	struct evbuffer *out;
	char tmpname[128];
	size_t i;
	int dirfd, fd, e;

	*exitcode = EX_OSERR;
	if ((out = evbuffer_new()) == NULL) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	evbuffer_add_printf(out, "x-sender: %s\r\n", sender[0] ? sender : "<>");
	for (i = 0; i < nrcpts; i++)
		evbuffer_add_printf(out, "x-receiver: %s\r\n", rcpts[i]);
	evbuffer_add_buffer(out, content);

	/* Into Pickup/: a dot-name pickupd ignores, fsync, rename, fsync the folder. */
	if ((dirfd = open(pickup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(why, whysz, "%s: %s", pickup, strerror(errno));
		*exitcode = EX_UNAVAILABLE;
		evbuffer_free(out);
		return -1;
	}
	snprintf(tmpname, sizeof(tmpname), ".sendmail.%ld.%08x.tmp", (long)getpid(),
	    arc4random());
	snprintf(name, namesz, "%lld.%ld.%08x.eml", (long long)time(NULL),
	    (long)getpid(), arc4random());
	fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd == -1) {
		snprintf(why, whysz, "%s/%s: %s", pickup, tmpname, strerror(errno));
		*exitcode = EX_CANTCREAT;
		goto fail;
	}
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) == -1 && errno != EINTR) {
			e = errno;
			close(fd);
			(void)unlinkat(dirfd, tmpname, 0);
			snprintf(why, whysz, "%s/%s: %s", pickup, tmpname, strerror(e));
			*exitcode = e == ENOSPC ? EX_TEMPFAIL : EX_IOERR;
			goto fail;
		}
	if (fsync(fd) == -1 || close(fd) == -1 ||
	    renameat(dirfd, tmpname, dirfd, name) == -1) {
		e = errno;
		(void)unlinkat(dirfd, tmpname, 0);
		snprintf(why, whysz, "%s/%s: %s", pickup, name, strerror(e));
		*exitcode = e == ENOSPC ? EX_TEMPFAIL : EX_IOERR;
		goto fail;
	}
	(void)fsync(dirfd);
	close(dirfd);
	evbuffer_free(out);
	return 0;
fail:
	close(dirfd);
	evbuffer_free(out);
	return -1;
}

static void
add_rcpt(char ***rcpts, size_t *n, const char *addr, const char *domain)
{
	char buf[SMTP_PATH_MAX + 1], **nr;
	size_t l = strlen(addr);

	if (l >= 2 && addr[0] == '<' && addr[l - 1] == '>') {
		if (l - 2 >= sizeof(buf))
			errx(EX_NOUSER, "recipient too long");
		memcpy(buf, addr + 1, l - 2);
		buf[l - 2] = '\0';
	} else if (strlcpy(buf, addr, sizeof(buf)) >= sizeof(buf))
		errx(EX_NOUSER, "recipient too long");
	if (strchr(buf, '@') == NULL && (strlcat(buf, "@", sizeof(buf)) >= sizeof(buf) ||
	    strlcat(buf, domain, sizeof(buf)) >= sizeof(buf)))
		errx(EX_NOUSER, "recipient too long");
	if (!smtp_mailbox_valid(buf, 0))
		errx(EX_NOUSER, "invalid recipient address: %s", addr);
	if ((nr = reallocarray(*rcpts, *n + 1, sizeof(*nr))) == NULL ||
	    (nr[*n] = strdup(buf)) == NULL)
		err(EX_OSERR, "recipients");
	*rcpts = nr;
	(*n)++;
}

/*
 * sendmail -bp, mailq: the queue as smtpq(1) lists it.  smtpq runs without
 * the mailroot group: the queue is the operator's to read, not every
 * user's.  Only an unprivileged run ignores MAILROOT_BINDIR.
 */
static int
list_queue(const char *conf_file, int setgid_run)
{
	const char *d = setgid_run ? NULL : getenv("MAILROOT_BINDIR");
	char path[PATH_MAX];

	if (setgid(getgid()) == -1)
		err(EX_OSERR, "setgid");
	if (snprintf(path, sizeof(path), "%s/smtpq", (d && *d) ? d : BINDIR) >=
	    (int)sizeof(path))
		errx(EX_USAGE, "MAILROOT_BINDIR too long");
	execl(path, "smtpq", "-f", conf_file, (char *)NULL);
	err(EX_UNAVAILABLE, "exec %s", path);
}

int
main(int argc, char **argv)
{
	const char *conf_file = CONF_DEFAULT_FILE, *fullname = NULL, *prog;
	char sender[SMTP_PATH_MAX + 1] = "", pickup[PATH_MAX], name[128], why[PATH_MAX + 128];
	char **rcpts = NULL, *msg;
	struct pickup_opts opts;
	struct pickup_msg pm;
	struct evbuffer *body;
	struct passwd *pw;
	struct config *conf;
	size_t nrcpts = 0, len, i;
	int ch, opt_t = 0, dot_ends = 1, status;
	int setgid_run = getegid() != getgid();
	enum { MODE_MAIL, MODE_SMTP, MODE_LIST, MODE_ALIASES } mode = MODE_MAIL;
	uint64_t cap;

	/* Called by the other names an MTA's sendmail answers to. */
	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (strcmp(prog, "mailq") == 0)
		mode = MODE_LIST;
	else if (strcmp(prog, "newaliases") == 0)
		mode = MODE_ALIASES;

	while ((ch = getopt(argc, argv, "A:B:b:C:F:f:Gh:iL:N:nO:o:qR:r:tUV:vX:")) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "m") == 0)
				mode = MODE_MAIL;
			else if (strcmp(optarg, "s") == 0)
				mode = MODE_SMTP;
			else if (strcmp(optarg, "p") == 0)
				mode = MODE_LIST;
			else if (strcmp(optarg, "i") == 0)
				mode = MODE_ALIASES;
			else
				errx(EX_USAGE, "-b%s is not supported (-bm, -bs, -bp, -bi are)",
				    optarg);
			break;
		case 'C':
			if (setgid_run)
				errx(EX_USAGE, "-C is not allowed to an unprivileged user");
			conf_file = optarg;
			break;
		case 'F': fullname = optarg; break;
		case 'f':
		case 'r':
			if (strlcpy(sender, optarg, sizeof(sender)) >= sizeof(sender))
				errx(EX_USAGE, "sender address too long");
			break;
		case 'i': dot_ends = 0; break;
		case 'o':
			/* -oi is -i; the other -o options (-odi, -oem, ...) have no effect */
			if (strcmp(optarg, "i") == 0)
				dot_ends = 0;
			break;
		case 'q':
			errx(EX_USAGE, "-q: the queue runs by itself (see smtpq(1) to retry now)");
		case 't': opt_t = 1; break;
		case 'A': case 'B': case 'G': case 'h': case 'L': case 'N': case 'n':
		case 'O': case 'R': case 'U': case 'V': case 'v': case 'X':
			break;	/* accepted for compatibility, no effect */
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (mode == MODE_ALIASES) {
		fprintf(stderr, "sendmail: Mailroot uses no aliases file: nothing to "
		    "rebuild (local addresses are mailroot.conf(5)'s domains)\n");
		return 0;
	}
	if (mode == MODE_LIST)
		return list_queue(conf_file, setgid_run);

	if ((conf = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(EX_CONFIG, "%s", conf_file);
	if (mailroot_path(conf, MR_PICKUP, pickup, sizeof(pickup)) == -1)
		errx(EX_CONFIG, "mailroot path too long");
	cap = conf->max_message_size ? conf->max_message_size : UNLIMITED_CAP;

	if (mode == MODE_SMTP) {
		if (argc > 0 || opt_t)
			errx(EX_USAGE, "-bs takes the envelope from the SMTP dialogue "
			    "(no recipients, no -t)");
		status = sendmail_bs(conf, pickup, cap, fullname);
		config_free(conf);
		return status;
	}

	/* The envelope sender: -f, else the invoking user in the default domain. */
	if (sender[0] == '\0') {
		if ((pw = getpwuid(getuid())) == NULL)
			errx(EX_NOUSER, "who are you? (uid %u has no name)", (unsigned)getuid());
		snprintf(sender, sizeof(sender), "%s@%s", pw->pw_name, conf->default_domain);
	} else if (strcmp(sender, "<>") == 0)
		sender[0] = '\0';
	else if (strchr(sender, '@') == NULL) {
		strlcat(sender, "@", sizeof(sender));
		strlcat(sender, conf->default_domain, sizeof(sender));
	}
	if (sender[0] && !smtp_mailbox_valid(sender, 0))
		errx(EX_USAGE, "invalid sender address: %s", sender);

	for (i = 0; i < (size_t)argc; i++)
		add_rcpt(&rcpts, &nrcpts, argv[i], conf->default_domain);

	msg = read_message(dot_ends, cap, &len);
	if ((body = evbuffer_new()) == NULL)
		err(EX_OSERR, "evbuffer_new");
	message_complete(body, msg, len, sender, fullname);
	free(msg);
	memset(&pm, 0, sizeof(pm));
	if (opt_t) {
		memset(&opts, 0, sizeof(opts));
		opts.default_domain = conf->default_domain;
		len = evbuffer_get_length(body);
		if (pickup_parse((const char *)evbuffer_pullup(body, -1), len, &opts, &pm) == 0)
			for (i = 0; i < pm.nrcpts; i++)
				add_rcpt(&rcpts, &nrcpts, pm.rcpts[i], conf->default_domain);
		else if (strcmp(pm.error, "no recipients") != 0)
			errx(EX_DATAERR, "cannot read the recipients: %s", pm.error);
	}
	if (nrcpts == 0)
		errx(EX_USAGE, "no recipients%s", opt_t ? " (none given, none in To:, Cc:, Bcc:)" : "");

	/* With -t, the parser's copy: Bcc: removed. */
	if (pickup_write(pickup, sender, rcpts, nrcpts, pm.content != NULL ? pm.content : body,
	    name, sizeof(name), why, sizeof(why), &status) == -1)
		errx(status, "%s", why);
	pickup_msg_free(&pm);
	evbuffer_free(body);
	for (i = 0; i < nrcpts; i++)
		free(rcpts[i]);
	free(rcpts);
	config_free(conf);
	return 0;
}

/*
 * sendmail.c - the sendmail-compatible submission command (runs as the
 * invoking user; installed setgid to the mailroot group so that any local
 * user may submit).
 *
 * It reads one message from standard input and writes it into Pickup/ with
 * the IIS envelope lines first (x-sender:, x-receiver:), under a dot-name
 * first, fsync'd, then renamed in: pickupd never sees half a file.  With -t
 * the recipients come from To:/Cc:/Bcc: through pickupd's own parser, which
 * also removes Bcc:.  Trust: the user is untrusted when the program runs
 * setgid: it then reads only the system configuration file (no -C, no
 * environment), writes only into Pickup/, and never follows a link.
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
	    "[-o option] [recipient ...]\n");
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

int
main(int argc, char **argv)
{
	const char *conf_file = CONF_DEFAULT_FILE, *fullname = NULL;
	char sender[SMTP_PATH_MAX + 1] = "", pickup[PATH_MAX], tmpname[128], name[128];
	char **rcpts = NULL, *msg;
	struct pickup_opts opts;
	struct pickup_msg pm;
	struct evbuffer *out, *body;
	struct passwd *pw;
	struct config *conf;
	size_t nrcpts = 0, len, i;
	int ch, opt_t = 0, dot_ends = 1, dirfd, fd;
	int setgid_run = getegid() != getgid();
	uint64_t cap;

	while ((ch = getopt(argc, argv, "B:b:C:F:f:iL:N:o:R:r:tV:v")) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "m") != 0)
				errx(EX_USAGE, "-b%s is not supported (only -bm, the default)",
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
			if (strcmp(optarg, "i") == 0)
				dot_ends = 0;
			/* other -o options of sendmail are accepted and ignored */
			break;
		case 't': opt_t = 1; break;
		case 'B': case 'L': case 'N': case 'R': case 'V': case 'v':
			break;	/* accepted for compatibility, no effect */
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if ((conf = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(EX_CONFIG, "%s", conf_file);
	if (mailroot_path(conf, MR_PICKUP, pickup, sizeof(pickup)) == -1)
		errx(EX_CONFIG, "mailroot path too long");
	cap = conf->max_message_size ? conf->max_message_size : UNLIMITED_CAP;

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
	/* Complete the message: an empty header section, or a From: field. */
	if ((body = evbuffer_new()) == NULL || (out = evbuffer_new()) == NULL)
		err(EX_OSERR, "evbuffer_new");
	if (!starts_with_header(msg, len))
		evbuffer_add(body, "\r\n", 2);	/* no header section: body only */
	else if (!has_from(msg, len)) {
		if (fullname && strpbrk(fullname, "\"\\\r\n") == NULL)
			evbuffer_add_printf(body, "From: \"%s\" <%s>\r\n", fullname, sender);
		else
			evbuffer_add_printf(body, "From: <%s>\r\n", sender);
	}
	evbuffer_add(body, msg, len);
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

	evbuffer_add_printf(out, "x-sender: %s\r\n", sender[0] ? sender : "<>");
	for (i = 0; i < nrcpts; i++)
		evbuffer_add_printf(out, "x-receiver: %s\r\n", rcpts[i]);
	/* With -t, the parser's copy: Bcc: removed. */
	evbuffer_add_buffer(out, pm.content != NULL ? pm.content : body);
	pickup_msg_free(&pm);
	evbuffer_free(body);

	/* Into Pickup/: a dot-name pickupd ignores, fsync, rename, fsync the folder. */
	if ((dirfd = open(pickup, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		err(EX_UNAVAILABLE, "%s", pickup);
	snprintf(tmpname, sizeof(tmpname), ".sendmail.%ld.%08x.tmp", (long)getpid(),
	    arc4random());
	snprintf(name, sizeof(name), "%lld.%ld.%08x.eml", (long long)time(NULL),
	    (long)getpid(), arc4random());
	fd = openat(dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd == -1)
		err(EX_CANTCREAT, "%s/%s", pickup, tmpname);
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, fd) == -1 && errno != EINTR) {
			(void)unlinkat(dirfd, tmpname, 0);
			err(EX_IOERR, "%s/%s", pickup, tmpname);
		}
	if (fsync(fd) == -1 || close(fd) == -1 ||
	    renameat(dirfd, tmpname, dirfd, name) == -1) {
		(void)unlinkat(dirfd, tmpname, 0);
		err(errno == ENOSPC ? EX_TEMPFAIL : EX_IOERR, "%s/%s", pickup, name);
	}
	(void)fsync(dirfd);
	close(dirfd);
	evbuffer_free(out);
	config_free(conf);
	return 0;
}

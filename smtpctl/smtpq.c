/*
 * smtpq.c - the queue inspector (runs as the operator).
 *
 * Reads the Mailroot read-only: Queue/<id>.env and .eml, Badmail/<id>.BDR.
 * It opens nothing for writing and follows no link, so it is safe whether
 * the suite runs or not.  Queue/ is readable by root and the queue user
 * only; another user gets a clear error.  Envelope files are parsed with
 * the same checks as queued's (common/envelope.c).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "mailroot.h"
#include "queueid.h"
#include "util.h"

#define HEADERS_MAX	(64 * 1024)

static int json;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: smtpq [-f file] [--json] [show ID | badmail]\n");
	exit(2);
}

static void
ignore_report(const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
}

/* Print s as a JSON string. */
static void
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

/* Read a whole small file at dirfd/name into a NUL-terminated buffer. */
static char *
slurp(int dirfd, const char *name, size_t max, size_t *lenp)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	if ((size_t)st.st_size < max)
		max = (size_t)st.st_size;
	if ((buf = malloc(max + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	n = read_full(fd, buf, max);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (lenp)
		*lenp = (size_t)n;
	return buf;
}

static int
open_sub(const struct config *c, const char *sub)
{
	char path[PATH_MAX];
	int fd;

	if (mailroot_path(c, sub, path, sizeof(path)) == -1)
		errx(1, "mailroot path too long");
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		err(1, "%s%s", path, errno == EACCES ?
		    " (the queue is readable by root and the queue user only)" : "");
	return fd;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids of the files in a folder with this suffix, sorted (by arrival). */
static char **
list_ids(int dirfd, const char *suffix, size_t *np)
{
	struct dirent *de;
	char **ids = NULL, **n;
	size_t cnt = 0, sl = strlen(suffix);
	DIR *d;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL)
		err(1, "opendir");
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != QUEUEID_LEN + sl ||
		    strcmp(de->d_name + QUEUEID_LEN, suffix) != 0)
			continue;
		if ((n = reallocarray(ids, cnt + 1, sizeof(*ids))) == NULL ||
		    (n[cnt] = strndup(de->d_name, QUEUEID_LEN)) == NULL)
			err(1, "out of memory");
		ids = n;
		if (!queueid_valid(ids[cnt])) {
			free(ids[cnt]);
			continue;
		}
		cnt++;
	}
	closedir(d);
	if (cnt > 1)
		qsort(ids, cnt, sizeof(*ids), cmp_str);
	*np = cnt;
	return ids;
}

static void
fmt_time(int64_t t, char *buf, size_t sz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	localtime_r(&tt, &tm);
	strftime(buf, sz, "%Y-%m-%d %H:%M:%S", &tm);
}

/* List the queue like mailq: one block per message, then a totals line. */
static int
cmd_list(const struct config *c)
{
	struct envelope e;
	struct stat st;
	char name[QUEUEID_LEN + 8], when[32], why[128], *buf;
	size_t n, i, j, len;
	unsigned long long total = 0;
	int qfd = open_sub(c, MR_QUEUE), first = 1;
	char **ids = list_ids(qfd, ".env", &n);

	if (json)
		printf("[");
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s.env", ids[i]);
		if ((buf = slurp(qfd, name, ENVELOPE_MAX_SIZE, &len)) == NULL)
			continue;	/* delivered meanwhile */
		if (envelope_parse(buf, len, &e, why, sizeof(why)) == -1) {
			fprintf(stderr, "smtpq: %s: unreadable envelope: %s\n", ids[i], why);
			free(buf);
			envelope_free(&e);
			continue;
		}
		free(buf);
		snprintf(name, sizeof(name), "%s.eml", ids[i]);
		if (fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			st.st_size = 0;
		total += (unsigned long long)st.st_size;
		fmt_time(e.arrival, when, sizeof(when));
		if (json) {
			printf("%s{\"id\":\"%s\",\"size\":%lld,\"arrival\":%lld,"
			    "\"attempts\":%u,\"sender\":", first ? "" : ",", e.id,
			    (long long)st.st_size, (long long)e.arrival, e.attempts);
			json_str(e.sender);
			printf(",\"recipients\":[");
			for (j = 0; j < e.nrcpts; j++) {
				printf("%s{\"address\":", j ? "," : "");
				json_str(e.rcpts[j].addr);
				printf(",\"state\":\"%s\"}", rcpt_state_name(e.rcpts[j].state));
			}
			printf("]}");
		} else {
			printf("%-20s %8lld %s  <%s>\n", e.id, (long long)st.st_size, when,
			    e.sender);
			for (j = 0; j < e.nrcpts; j++)
				printf("%-20s %8s %-19s  %-8s <%s>\n", "", "", "",
				    rcpt_state_name(e.rcpts[j].state), e.rcpts[j].addr);
		}
		first = 0;
		envelope_free(&e);
	}
	if (json)
		printf("]\n");
	else if (first)
		printf("Mail queue is empty\n");
	else
		printf("-- %llu Kbytes in %zu request%s.\n", (total + 1023) / 1024, n,
		    n == 1 ? "" : "s");
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	close(qfd);
	return 0;
}

/* The envelope and the header section of one queued message. */
static int
cmd_show(const struct config *c, const char *id)
{
	char name[QUEUEID_LEN + 8], *buf, *end;
	size_t len;
	int qfd;

	if (!queueid_valid(id))
		errx(1, "not a queue id: %s", id);
	qfd = open_sub(c, MR_QUEUE);
	snprintf(name, sizeof(name), "%s.env", id);
	if ((buf = slurp(qfd, name, ENVELOPE_MAX_SIZE, &len)) == NULL)
		errx(1, "%s: not in the queue", id);
	if (json) {
		printf("{\"id\":\"%s\",\"envelope\":", id);
		json_str(buf);
	} else
		printf("%s\n", buf);
	free(buf);
	snprintf(name, sizeof(name), "%s.eml", id);
	if ((buf = slurp(qfd, name, HEADERS_MAX, &len)) != NULL) {
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			end[2] = '\0';
		if (json) {
			printf(",\"headers\":");
			json_str(buf);
		} else
			printf("%s", buf);
		free(buf);
	}
	if (json)
		printf("}\n");
	close(qfd);
	return 0;
}

/* Badmail/: each entry with the reason from its .BDR. */
static int
cmd_badmail(const struct config *c)
{
	char name[QUEUEID_LEN + 8], *buf, *reason, *eol;
	size_t n, i;
	int bfd = open_sub(c, MR_BADMAIL);
	char **ids = list_ids(bfd, ".BDR", &n);

	if (json)
		printf("[");
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s.BDR", ids[i]);
		buf = slurp(bfd, name, 8192, NULL);
		reason = buf ? strstr(buf, "Reason: ") : NULL;
		if (reason) {
			reason += 8;
			if ((eol = strpbrk(reason, "\r\n")) != NULL)
				*eol = '\0';
		}
		if (json) {
			printf("%s{\"id\":\"%s\",\"reason\":", i ? "," : "", ids[i]);
			json_str(reason ? reason : "");
			printf("}");
		} else
			printf("%s  %s\n", ids[i], reason ? reason : "(no reason recorded)");
		free(buf);
		free(ids[i]);
	}
	if (json)
		printf("]\n");
	else if (n == 0)
		printf("Badmail is empty\n");
	free(ids);
	close(bfd);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *conf_file = CONF_DEFAULT_FILE;
	struct config *c;
	int i, ret;

	/* --json may stand anywhere among the arguments. */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			memmove(&argv[i], &argv[i + 1], sizeof(*argv) * (size_t)(argc - i));
			argc--;
			i--;
		}
	while ((i = getopt(argc, argv, "f:")) != -1) {
		switch (i) {
		case 'f': conf_file = optarg; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if ((c = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(1, "%s", conf_file);
	if (argc == 0)
		ret = cmd_list(c);
	else if (strcmp(argv[0], "show") == 0 && argc == 2)
		ret = cmd_show(c, argv[1]);
	else if (strcmp(argv[0], "badmail") == 0 && argc == 1)
		ret = cmd_badmail(c);
	else
		usage();
	config_free(c);
	return ret;
}

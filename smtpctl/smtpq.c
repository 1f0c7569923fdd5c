/*
 * smtpq.c - the queue for operators (runs as the operator; FEATURES O4).
 *
 * While the suite runs, every command is a request to queued over the
 * control socket (CTL_QUEUE, common/proto_queue.h); mailrootd decides from
 * the kernel's credentials of this process whether it may make it
 * (FEATURES O5).  While the suite is stopped, the listings read the
 * Mailroot read-only (Queue/<id>.env and .eml, Badmail/<id>.BDR), opening
 * nothing for writing and following no link; the commands that change the
 * queue then fail, since only queued changes Queue/.  Queue/ is readable by
 * root and the queue user only.  Text from messages and peers is printed
 * with control characters escaped.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl_client.h"
#include "envelope.h"
#include "ipc.h"
#include "mailroot.h"
#include "proto.h"
#include "proto_queue.h"
#include "queueid.h"
#include "smtp_parse.h"
#include "util.h"

#define HEADERS_MAX	(64 * 1024)

static int json;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: smtpq [-f file] [--json] [show ID | delete ID|all | "
	    "retry ID|all | retry domain DOMAIN |\n"
	    "             hold ID|all | release ID|all | badmail | requeue ID]\n");
	exit(2);
}

static void
ignore_report(const char *msg, void *arg)
{
	(void)msg;
	(void)arg;
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

/* Print text from a message or a peer: control characters escaped. */
static void
put_safe(const char *s, int keep_newlines)
{
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		if (keep_newlines && (*p == '\n' || *p == '\t' ||
		    (*p == '\r' && p[1] == '\n')))
			putchar(*p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/* One message of a listing, from queued or from the envelope file. */
struct qrcpt {
	const char	*addr;
	uint32_t	 state;
	const char	*error;		/* "" none */
};

struct qitem {
	const char	*id;
	uint64_t	 size;
	int64_t		 arrival;
	const char	*sender;
	uint32_t	 attempts;
	int64_t		 next;		/* 0: none planned */
	uint32_t	 flags;		/* QUEUE_F_* */
	uint32_t	 rcpts_total;
	size_t		 n;
	struct qrcpt	*r;
};

static const char *
state_name(uint32_t st)
{
	return rcpt_state_name(st <= RCPT_FAILED ? (enum rcpt_state)st : RCPT_PENDING);
}

static int list_first = 1;
static unsigned long long list_bytes;
static size_t list_count;

static void
list_begin(void)
{
	if (json)
		printf("[");
	else
		printf("%-20s %8s %-19s  %s\n", "QUEUE ID", "SIZE", "ARRIVAL",
		    "SENDER / RECIPIENTS");
}

static void
list_item(const struct qitem *it)
{
	char when[32], next[32];
	size_t j;

	list_bytes += it->size;
	list_count++;
	if (json) {
		printf("%s{\"id\":\"%s\",\"size\":%llu,\"arrival\":%lld,\"attempts\":%u,"
		    "\"next_attempt\":%lld,\"held\":%s,\"running\":%s,\"sender\":",
		    list_first ? "" : ",", it->id, (unsigned long long)it->size,
		    (long long)it->arrival, it->attempts, (long long)it->next,
		    it->flags & QUEUE_F_HELD ? "true" : "false",
		    it->flags & QUEUE_F_RUNNING ? "true" : "false");
		json_str(it->sender);
		printf(",\"recipients_total\":%u,\"recipients\":[", it->rcpts_total);
		for (j = 0; j < it->n; j++) {
			printf("%s{\"address\":", j ? "," : "");
			json_str(it->r[j].addr);
			printf(",\"state\":\"%s\",\"error\":", state_name(it->r[j].state));
			json_str(it->r[j].error);
			printf("}");
		}
		printf("]}");
		list_first = 0;
		return;
	}
	list_first = 0;
	fmt_time(it->arrival, when, sizeof(when));
	printf("%-20s %8llu %-19s  <", it->id, (unsigned long long)it->size, when);
	put_safe(it->sender, 0);
	printf(">\n");
	if (it->next > 0)
		fmt_time(it->next, next, sizeof(next));
	printf("%-31s attempts %u%s%s%s%s\n", "", it->attempts,
	    it->next > 0 && !(it->flags & QUEUE_F_HELD) ? ", next " : "",
	    it->next > 0 && !(it->flags & QUEUE_F_HELD) ? next : "",
	    it->flags & QUEUE_F_HELD ? ", HELD (smtpq release)" : "",
	    it->flags & QUEUE_F_RUNNING ? ", attempt under way" : "");
	for (j = 0; j < it->n; j++) {
		printf("%-31s %-8s <", "", state_name(it->r[j].state));
		put_safe(it->r[j].addr, 0);
		printf(">\n");
		if (it->r[j].error[0]) {
			printf("%-40s ", "");
			put_safe(it->r[j].error, 0);
			printf("\n");
		}
	}
	if (it->n < it->rcpts_total)
		printf("%-31s (%u more recipients)\n", "", it->rcpts_total - (uint32_t)it->n);
}

static void
list_end(void)
{
	if (json)
		printf("]\n");
	else if (list_count == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %llu Kbytes in %zu request%s.\n", (list_bytes + 1023) / 1024,
		    list_count, list_count == 1 ? "" : "s");
}

static int
cmp_item(const void *a, const void *b)
{
	const struct qitem *x = *(struct qitem *const *)a, *y = *(struct qitem *const *)b;

	if (x->arrival != y->arrival)
		return x->arrival < y->arrival ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* List the queue from the files (the suite is stopped). */
static int
cmd_list(const struct config *c)
{
	struct envelope *envs;
	struct qitem *it;
	struct stat st;
	char name[QUEUEID_LEN + 8], why[128], *buf;
	size_t n, i, j, len, k = 0;
	int qfd = open_sub(c, MR_QUEUE);
	char **ids = list_ids(qfd, ".env", &n);

	if ((envs = calloc(n ? n : 1, sizeof(*envs))) == NULL ||
	    (it = calloc(n ? n : 1, sizeof(*it))) == NULL)
		err(1, "out of memory");
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s.env", ids[i]);
		if ((buf = slurp(qfd, name, ENVELOPE_MAX_SIZE, &len)) == NULL)
			continue;	/* delivered meanwhile */
		if (envelope_parse(buf, len, &envs[k], why, sizeof(why)) == -1) {
			fprintf(stderr, "smtpq: %s: unreadable envelope: %s\n", ids[i], why);
			free(buf);
			envelope_free(&envs[k]);
			continue;
		}
		free(buf);
		snprintf(name, sizeof(name), "%s.eml", ids[i]);
		if (fstatat(qfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			st.st_size = 0;
		it[k].id = envs[k].id;
		it[k].size = (uint64_t)st.st_size;
		it[k].arrival = envs[k].arrival;
		it[k].sender = envs[k].sender;
		it[k].attempts = envs[k].attempts;
		it[k].next = envs[k].held ? 0 : envs[k].next_attempt;
		it[k].flags = envs[k].held ? QUEUE_F_HELD : 0;
		it[k].rcpts_total = (uint32_t)envs[k].nrcpts;
		if ((it[k].r = calloc(envs[k].nrcpts, sizeof(*it[k].r))) == NULL)
			err(1, "out of memory");
		for (j = 0; j < envs[k].nrcpts && j < QUEUE_LIST_RCPTS_MAX; j++) {
			it[k].r[j].addr = envs[k].rcpts[j].addr;
			it[k].r[j].state = envs[k].rcpts[j].state;
			it[k].r[j].error = envs[k].rcpts[j].error ? envs[k].rcpts[j].error : "";
		}
		it[k].n = j;
		k++;
	}
	list_begin();
	for (i = 0; i < k; i++)
		list_item(&it[i]);
	list_end();
	for (i = 0; i < k; i++) {
		envelope_free(&envs[i]);
		free(it[i].r);
	}
	free(envs);
	free(it);
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
	} else {
		put_safe(buf, 1);
		printf("\n");
	}
	free(buf);
	snprintf(name, sizeof(name), "%s.eml", id);
	if ((buf = slurp(qfd, name, HEADERS_MAX, &len)) != NULL) {
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			end[2] = '\0';
		if (json) {
			printf(",\"headers\":");
			json_str(buf);
		} else
			put_safe(buf, 1);
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
		} else {
			printf("%s  ", ids[i]);
			put_safe(reason ? reason : "(no reason recorded)", 0);
			printf("\n");
		}
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

/* ---- the suite runs: ask queued through mailrootd -------------------------- */


static void __attribute__((noreturn))
malformed(void)
{
	errx(1, "malformed answer from mailrootd");
}

/* A CLIENT_FAIL: its reason, exit 1. */
static void __attribute__((noreturn))
failed(struct ipc_msg *msg)
{
	const char *text;

	if (m_get_str(msg, &text, 1024) == -1)
		text = "(no reason given)";
	fprintf(stderr, "smtpq: ");
	{
		const unsigned char *p;

		for (p = (const unsigned char *)text; *p; p++)
			fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
	}
	fputc('\n', stderr);
	exit(1);
}

/* The answers received, kept while what was decoded from them is in use. */
static struct ipc_msg **kept;
static size_t nkept;

static void
kept_free(void)
{
	size_t i;

	for (i = 0; i < nkept; i++) {
		free((void *)kept[i]->data);
		free(kept[i]);
	}
	free(kept);
	kept = NULL;
	nkept = 0;
}

/* Read one answer of `want` type (or CLIENT_FAIL: exit); the frame is copied. */
static struct ipc_msg *
recv_answer(int fd, struct ipc_reader *r, uint32_t want)
{
	struct ipc_msg *msg;
	uint8_t *copy;

	if ((msg = malloc(sizeof(*msg))) == NULL)
		err(1, "out of memory");
	if (ipc_recv_sync(fd, r, msg) != 1)
		errx(1, "no answer from mailrootd");
	if (msg->type == CLIENT_FAIL)
		failed(msg);
	/* queued refuses a listing with a DONE saying why (not in the queue) */
	if (msg->type == CLIENT_QUEUE_DONE && want != CLIENT_QUEUE_DONE) {
		uint32_t okv, count;

		if (m_get_u32(msg, &okv) == -1 || m_get_u32(msg, &count) == -1)
			malformed();
		failed(msg);
	}
	if (msg->type != want)
		malformed();
	/* the reader's buffer is reused by the next receive */
	if ((copy = malloc(msg->len ? msg->len : 1)) == NULL)
		err(1, "out of memory");
	memcpy(copy, msg->data, msg->len);
	msg->data = copy;
	if ((kept = reallocarray(kept, nkept + 1, sizeof(*kept))) == NULL)
		err(1, "out of memory");
	kept[nkept++] = msg;
	return msg;
}

static int
remote_list(int fd, struct ipc_reader *r)
{
	struct ipc_msg *msg;
	struct qitem *items = NULL, **sorted;
	size_t nitems = 0, i, j;
	uint32_t total, last = 0, n, k;
	uint64_t u;

	while (!last) {
		msg = recv_answer(fd, r, CLIENT_QUEUE_LIST);
		if (m_get_u32(msg, &total) == -1 || m_get_u32(msg, &last) == -1 ||
		    m_get_u32(msg, &n) == -1)
			malformed();
		if ((items = reallocarray(items, nitems + n, sizeof(*items))) == NULL)
			err(1, "out of memory");
		for (i = 0; i < n; i++) {
			struct qitem *it = &items[nitems + i];

			memset(it, 0, sizeof(*it));
			if (m_get_str(msg, &it->id, QUEUEID_LEN) == -1 ||
			    m_get_u64(msg, &it->size) == -1 || m_get_u64(msg, &u) == -1)
				malformed();
			it->arrival = (int64_t)u;
			if (m_get_str(msg, &it->sender, SMTP_PATH_MAX_CONF) == -1 ||
			    m_get_u32(msg, &it->attempts) == -1 || m_get_u64(msg, &u) == -1)
				malformed();
			it->next = (int64_t)u;
			if (m_get_u32(msg, &it->flags) == -1 ||
			    m_get_u32(msg, &it->rcpts_total) == -1 || m_get_u32(msg, &k) == -1 ||
			    k > QUEUE_LIST_RCPTS_MAX)
				malformed();
			if ((it->r = calloc(k ? k : 1, sizeof(*it->r))) == NULL)
				err(1, "out of memory");
			for (j = 0; j < k; j++)
				if (m_get_str(msg, &it->r[j].addr, SMTP_PATH_MAX_CONF) == -1 ||
				    m_get_u32(msg, &it->r[j].state) == -1 ||
				    m_get_str(msg, &it->r[j].error, ENVELOPE_ERROR_MAX) == -1)
					malformed();
			it->n = k;
		}
		if (m_end(msg) == -1)
			malformed();
		nitems += n;
		/* msg and its data stay: the items point into it */
	}
	if ((sorted = calloc(nitems ? nitems : 1, sizeof(*sorted))) == NULL)
		err(1, "out of memory");
	for (i = 0; i < nitems; i++)
		sorted[i] = &items[i];
	qsort(sorted, nitems, sizeof(*sorted), cmp_item);
	list_begin();
	for (i = 0; i < nitems; i++)
		list_item(sorted[i]);
	list_end();
	for (i = 0; i < nitems; i++)
		free(items[i].r);
	free(items);
	free(sorted);
	return 0;
}

static int
remote_show(int fd, struct ipc_reader *r, const char *id)
{
	struct ipc_msg *msg = recv_answer(fd, r, CLIENT_QUEUE_SHOW);
	const char *envtext, *head;

	if (m_get_str(msg, &envtext, QUEUE_SHOW_ENV_MAX) == -1 ||
	    m_get_str(msg, &head, QUEUE_SHOW_HEADERS_MAX) == -1 || m_end(msg) == -1)
		malformed();
	if (json) {
		printf("{\"id\":\"%s\",\"envelope\":", id);
		json_str(envtext);
		printf(",\"headers\":");
		json_str(head);
		printf("}\n");
	} else {
		put_safe(envtext, 1);
		printf("\n");
		put_safe(head, 1);
	}
	return 0;
}

static int
remote_badmail(int fd, struct ipc_reader *r)
{
	struct ipc_msg *msg = recv_answer(fd, r, CLIENT_QUEUE_BADMAIL);
	const char *bid, *reason;
	uint32_t total, n, i;

	if (m_get_u32(msg, &total) == -1 || m_get_u32(msg, &n) == -1 || n > total)
		malformed();
	if (json)
		printf("[");
	for (i = 0; i < n; i++) {
		if (m_get_str(msg, &bid, QUEUEID_LEN) == -1 ||
		    m_get_str(msg, &reason, QUEUE_TEXT_MAX) == -1)
			malformed();
		if (json) {
			printf("%s{\"id\":", i ? "," : "");
			json_str(bid);
			printf(",\"reason\":");
			json_str(reason);
			printf("}");
		} else {
			put_safe(bid, 0);
			printf("  ");
			put_safe(reason[0] ? reason : "(no reason recorded)", 0);
			printf("\n");
		}
	}
	if (m_end(msg) == -1)
		malformed();
	if (json)
		printf("]\n");
	else if (total == 0)
		printf("Badmail is empty\n");
	else if (n < total)
		printf("%u entries, %u shown\n", total, n);
	return 0;
}

static int
remote_done(int fd, struct ipc_reader *r)
{
	struct ipc_msg *msg = recv_answer(fd, r, CLIENT_QUEUE_DONE);
	const char *text;
	uint32_t ok, count;

	if (m_get_u32(msg, &ok) == -1 || m_get_u32(msg, &count) == -1 ||
	    m_get_str(msg, &text, QUEUE_TEXT_MAX) == -1 || m_end(msg) == -1)
		malformed();
	if (json) {
		printf("{\"ok\":%s,\"count\":%u,\"message\":", ok ? "true" : "false", count);
		json_str(text);
		printf("}\n");
	} else if (ok) {
		put_safe(text, 0);
		printf("\n");
	} else {
		fprintf(stderr, "smtpq: ");
		fflush(stderr);
		{
			const unsigned char *p;

			for (p = (const unsigned char *)text; *p; p++)
				fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, stderr);
		}
		fputc('\n', stderr);
	}
	return ok ? 0 : 1;
}

static int
remote(int fd, uint32_t op, const char *arg)
{
	struct ipc_reader r;
	struct mbuf m;
	int ret;

	m_init(&m, CTL_QUEUE, 2);
	m_add_u32(&m, op);
	m_add_str(&m, arg);
	ipc_reader_init(&r);
	if (ipc_send_sync(fd, &m) == -1)
		errx(1, "cannot send to mailrootd");
	switch (op) {
	case QOP_LIST:
		ret = remote_list(fd, &r);
		break;
	case QOP_SHOW:
		ret = remote_show(fd, &r, arg);
		break;
	case QOP_BADMAIL:
		ret = remote_badmail(fd, &r);
		break;
	default:
		ret = remote_done(fd, &r);
		break;
	}
	kept_free();
	ipc_reader_clear(&r);
	return ret;
}

int
main(int argc, char **argv)
{
	const char *conf_file = CONF_DEFAULT_FILE;
	struct config *c;
	const char *arg = "";
	uint32_t op;
	int i, ret, fd;

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
	if (argc == 0)
		op = QOP_LIST;
	else if (argc == 3 && strcmp(argv[0], "retry") == 0 &&
	    strcmp(argv[1], "domain") == 0) {
		op = QOP_RETRY_DOMAIN;
		arg = argv[2];
	} else if (argc == 1 && strcmp(argv[0], "badmail") == 0)
		op = QOP_BADMAIL;
	else if (argc == 2) {
		for (op = QOP_SHOW; op < QOP_MAX; op++)
			if (op != QOP_BADMAIL && op != QOP_RETRY_DOMAIN &&
			    strcmp(argv[0], proto_queue_op_name(op)) == 0)
				break;
		if (op == QOP_MAX)
			usage();
		arg = argv[1];
	} else
		usage();
	if (strlen(arg) > QUEUE_ARG_MAX)
		errx(1, "argument too long");
	if ((c = config_load_lenient(conf_file, ignore_report, NULL)) == NULL)
		err(1, "%s", conf_file);
	signal(SIGPIPE, SIG_IGN);
	if ((fd = ctl_connect(c)) >= 0) {
		ret = remote(fd, op, arg);
		close(fd);
	} else if (fd == -2 && proto_queue_mutates(op))
		errx(1, "refused: %s needs root or an operator: the control socket %s "
		    "is for root only (see operators-group in mailroot.conf(5))",
		    proto_queue_op_name(op), c->control_socket);
	else if (proto_queue_mutates(op))
		errx(1, "mailroot is not running: %s needs queued (smtpctl start)",
		    proto_queue_op_name(op));
	else if (op == QOP_LIST)
		ret = cmd_list(c);
	else if (op == QOP_SHOW)
		ret = cmd_show(c, arg);
	else
		ret = cmd_badmail(c);
	config_free(c);
	return ret;
}

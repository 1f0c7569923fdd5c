/*
 * mailrootd_auth.c - the SMTP AUTH password table and the checks smtpd asks
 * for (mailrootd, root).
 *
 * The table (auth-table: lines "user:crypt-hash", '#' comments) is read
 * here only, at start and on reload; it never enters smtpd's chroot.  smtpd
 * sends SUPERVISOR_AUTH_CHECK with a user name and a password and is
 * answered DAEMON_AUTH_RESULT.
 *
 * Trust boundary: smtpd is untrusted.  Every field is length-checked, a
 * request from any other daemon is refused, and the checks are rate-limited
 * so that a compromised smtpd can neither stall the supervisor nor guess
 * passwords at the speed of crypt(3).  Every check costs one crypt(3): an
 * unknown user is checked against a dummy hash made with the method and
 * cost of the table's first entry, so the time taken does not tell whether
 * a user exists.  Hashes are compared in constant time, and the password is
 * scrubbed from our memory once checked.  crypt(3) runs in the supervisor's
 * event loop: a check takes from about 2 ms (bcrypt cost 5) to 30 ms
 * (yescrypt's default cost).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "auth.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "mailrootd.h"
#include "util.h"

#define TABLE_MAX_SIZE		(64 * 1024 * 1024)
#define TABLE_LINE_MAX		4096
#define CHECKS_PER_SEC		20	/* sustained rate of checks */
#define CHECKS_BURST		40	/* checks allowed at once */

struct auth_entry {
	char	*user;
	char	*hash;
	int	 line;
};

struct auth_table {
	struct auth_entry	*e;
	size_t			 n;
	char			 dummy[CRYPT_OUTPUT_SIZE];	/* for unknown users */
};

static struct auth_table *table;	/* NULL: AUTH is not configured */
static struct crypt_data *scratch;	/* crypt_rn's 32 KiB work area */
static uint64_t bucket_ms;		/* token bucket of checks, in ms of credit */
static uint64_t bucket_last;
static unsigned refused_over_rate;

/* The methods accepted: all current, none legacy (RFC-less DES, MD5). */
static const char *const methods[] = { "$y$", "$2b$", "$2y$", "$2a$", "$6$" };

static void
table_free(struct auth_table *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++) {
		free(t->e[i].user);
		explicit_bzero(t->e[i].hash, strlen(t->e[i].hash));
		free(t->e[i].hash);
	}
	free(t->e);
	explicit_bzero(t, sizeof(*t));
	free(t);
}

/* A user name: 1 to AUTH_USER_MAX octets, no blank, control character or ':'. */
static const char *
user_check(const char *u, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty user name";
	if (len > AUTH_USER_MAX)
		return "user name longer than 255 octets";
	for (i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f)
			return "blank or control character in the user name";
	return NULL;
}

/* A crypt(3) hash of an accepted method, in the crypt alphabet. */
static const char *
hash_check(const char *h)
{
	size_t i, len = strlen(h);

	if (h[0] == '!' || h[0] == '*')
		return "locked entry (hash starts with '!' or '*')";
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strncmp(h, methods[i], strlen(methods[i])) == 0)
			break;
	if (i == sizeof(methods) / sizeof(methods[0]))
		return "not a yescrypt ($y$), bcrypt ($2b$) or sha512-crypt ($6$) hash";
	if (len >= CRYPT_OUTPUT_SIZE)
		return "hash too long";
	if (strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789./$=") != len)
		return "character outside the crypt(3) alphabet in the hash";
	if (crypt_checksalt(h) != CRYPT_SALT_OK)
		return "hash not usable by crypt(3)";
	return NULL;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct auth_entry *x = a, *y = b;
	int c = strcmp(x->user, y->user);

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int
entry_find(const void *key, const void *b)
{
	return strcmp(key, ((const struct auth_entry *)b)->user);
}

/* A hash with the method and cost of `like` (or yescrypt's default). */
static void
make_dummy(struct auth_table *t, const char *like)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h = NULL;

	if (like)
		h = crypt_rn("mailroot-dummy-password", like, scratch, sizeof(*scratch));
	if (h == NULL && crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
	    sizeof(setting)) != NULL)
		h = crypt_rn("mailroot-dummy-password", setting, scratch, sizeof(*scratch));
	if (h == NULL)
		h = crypt_rn("mailroot-dummy-password", "$6$mailrootdummy$", scratch,
		    sizeof(*scratch));
	strlcpy(t->dummy, h ? h : "$6$mailrootdummy$", sizeof(t->dummy));
	explicit_bzero(scratch, sizeof(*scratch));
}

/* Say what is wrong with the file's owner and mode; it is still used. */
static void
mode_check(const char *path, const struct stat *st)
{
	if (geteuid() == 0 && st->st_uid != 0)
		log_warnx("auth-table %s: owned by uid %lu, not root", path,
		    (unsigned long)st->st_uid);
	if (st->st_mode & S_IROTH)
		log_warnx("auth-table %s: readable by every user (mode %04o); "
		    "make it 0600 or 0640", path, (unsigned)(st->st_mode & 07777));
	else if (st->st_mode & (S_IWGRP | S_IWOTH))
		log_warnx("auth-table %s: writable by others than its owner (mode %04o)",
		    path, (unsigned)(st->st_mode & 07777));
}

static int
table_add(struct auth_table *t, size_t *cap, const char *user, size_t ulen,
    const char *hash, int line)
{
	struct auth_entry *ne;

	if (t->n == *cap) {
		if ((ne = reallocarray(t->e, *cap ? *cap * 2 : 64, sizeof(*ne))) == NULL)
			return -1;
		t->e = ne;
		*cap = *cap ? *cap * 2 : 64;
	}
	if ((t->e[t->n].user = strndup(user, ulen)) == NULL)
		return -1;
	if ((t->e[t->n].hash = strdup(hash)) == NULL) {
		free(t->e[t->n].user);
		return -1;
	}
	t->e[t->n].line = line;
	t->n++;
	return 0;
}

/*
 * Read the table at `path`.  A bad line is logged as path:line and skipped;
 * NULL (with err) only when the file cannot be used at all.
 */
static struct auth_table *
table_read(const char *path, char *err, size_t errsz)
{
	struct auth_table *t;
	struct stat st;
	char *line = NULL, *p, *colon, *first = NULL;
	const char *why;
	size_t cap = 0, ecap = 0, i, j;
	ssize_t len;
	int fd, lineno = 0;
	FILE *fp;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errsz, "auth-table %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > TABLE_MAX_SIZE) {
		snprintf(err, errsz, "auth-table %s: not a regular file of at most 64 MiB",
		    path);
		close(fd);
		return NULL;
	}
	mode_check(path, &st);
	if ((t = calloc(1, sizeof(*t))) == NULL || (fp = fdopen(fd, "r")) == NULL) {
		snprintf(err, errsz, "auth-table %s: out of memory", path);
		free(t);
		close(fd);
		return NULL;
	}
	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
			if (len > 0 && line[len - 1] == '\r')
				line[--len] = '\0';
		}
		why = NULL;
		if (memchr(line, '\0', (size_t)len) != NULL)
			why = "NUL byte in line";
		else if (len > TABLE_LINE_MAX)
			why = "line too long";
		if (why == NULL) {
			/* Blank lines and comments; blanks around the entry are ignored. */
			for (p = line; *p == ' ' || *p == '\t'; p++)
				;
			if (*p == '\0' || *p == '#')
				continue;
			while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
				line[--len] = '\0';
			if ((colon = strchr(p, ':')) == NULL)
				why = "expected user:hash";
			else if ((why = user_check(p, (size_t)(colon - p))) == NULL &&
			    (why = hash_check(colon + 1)) == NULL) {
				if (table_add(t, &ecap, p, (size_t)(colon - p), colon + 1,
				    lineno) == -1) {
					snprintf(err, errsz, "auth-table %s: out of memory", path);
					goto fail;
				}
				if (first == NULL)
					first = t->e[t->n - 1].hash;
				continue;
			}
		}
		log_warnx("%s:%d: %s; line skipped", path, lineno, why);
	}
	if (ferror(fp)) {
		snprintf(err, errsz, "auth-table %s: read error: %s", path, strerror(errno));
		goto fail;
	}
	make_dummy(t, first);
	/* Sorted by name for lookups; of a name given twice the first line counts. */
	if (t->n > 0)
		qsort(t->e, t->n, sizeof(*t->e), entry_cmp);
	for (i = 0, j = 0; i < t->n; i++) {
		if (j > 0 && strcmp(t->e[j - 1].user, t->e[i].user) == 0) {
			log_warnx("%s:%d: user %s already declared at line %d; line skipped",
			    path, t->e[i].line, t->e[i].user, t->e[j - 1].line);
			free(t->e[i].user);
			explicit_bzero(t->e[i].hash, strlen(t->e[i].hash));
			free(t->e[i].hash);
			continue;
		}
		t->e[j++] = t->e[i];
	}
	t->n = j;
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(fp);
	return t;
fail:
	if (line)
		explicit_bzero(line, cap);
	free(line);
	fclose(fp);
	table_free(t);
	return NULL;
}

int
auth_table_load(const struct config *c, char *err, size_t errsz)
{
	struct auth_table *t;

	if (!config_auth_used(c)) {
		table_free(table);
		table = NULL;
		return 0;
	}
	if (scratch == NULL && (scratch = calloc(1, sizeof(*scratch))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if ((t = table_read(c->auth_table, err, errsz)) == NULL)
		return -1;
	table_free(table);
	table = t;
	log_info("auth-table %s: %zu user%s", c->auth_table, t->n, t->n == 1 ? "" : "s");
	return 0;
}

void
auth_table_free(void)
{
	table_free(table);
	table = NULL;
	free(scratch);
	scratch = NULL;
}

/* Token bucket: 1 when a check may run now. */
static int
rate_take(void)
{
	uint64_t now = now_ms(), max = (uint64_t)CHECKS_BURST * 1000;

	if (bucket_last == 0)
		bucket_ms = max;
	else
		bucket_ms += (now - bucket_last) * CHECKS_PER_SEC;
	if (bucket_ms > max)
		bucket_ms = max;
	bucket_last = now;
	if (bucket_ms < 1000)
		return 0;
	bucket_ms -= 1000;
	return 1;
}

/* One crypt(3), whatever the user: the answer and the time are all it tells. */
static enum auth_result
verify(const char *user, const char *pass)
{
	const struct auth_entry *e;
	const char *hash, *out;
	size_t hlen;
	int ok;

	if (table == NULL || scratch == NULL)
		return AUTH_RESULT_TEMPFAIL;
	e = (user[0] && user_check(user, strlen(user)) == NULL && table->n > 0) ?
	    bsearch(user, table->e, table->n, sizeof(*table->e), entry_find) : NULL;
	hash = e ? e->hash : table->dummy;
	out = crypt_rn(pass, hash, scratch, sizeof(*scratch));
	hlen = strlen(hash);
	ok = e != NULL && pass[0] != '\0' && out != NULL && strlen(out) == hlen &&
	    CRYPTO_memcmp(out, hash, hlen) == 0;
	if (e != NULL && out == NULL)
		log_warnx("auth-table: the hash of user %s (line %d) is not usable",
		    e->user, e->line);
	explicit_bzero(scratch, sizeof(*scratch));
	return ok ? AUTH_RESULT_OK : AUTH_RESULT_FAIL;
}

void
auth_check(struct proc *p, struct ipc_msg *msg)
{
	enum auth_result r = AUTH_RESULT_FAIL;
	const char *user, *pass;
	struct mbuf m;

	if (p->id != PROC_SMTPD) {
		log_warnx("SUPERVISOR_AUTH_CHECK from %s refused", proc_name(p->id));
		explicit_bzero((void *)(uintptr_t)msg->data, msg->len);
		return;
	}
	if (m_get_str(msg, &user, AUTH_USER_MAX) == -1 ||
	    m_get_str(msg, &pass, AUTH_PASS_MAX) == -1 || m_end(msg) == -1)
		log_warnx("malformed SUPERVISOR_AUTH_CHECK from smtpd");
	else if (!rate_take()) {
		if (refused_over_rate++ == 0)
			log_warnx("AUTH checks over %d per second: answering "
			    "temporary failures", CHECKS_PER_SEC);
		r = AUTH_RESULT_TEMPFAIL;
	} else {
		if (refused_over_rate) {
			log_warnx("AUTH checks back under their rate (%u refused)",
			    refused_over_rate);
			refused_over_rate = 0;
		}
		r = verify(user, pass);
	}
	/* The frame stays in the reader's buffer until compacted: scrub it. */
	explicit_bzero((void *)(uintptr_t)msg->data, msg->len);
	m_init(&m, DAEMON_AUTH_RESULT, msg->id);
	m_add_u32(&m, (uint32_t)r);
	if (p->ipc == NULL || ipc_send(p->ipc, &m) == -1)
		log_warnx("cannot answer an AUTH check of smtpd");
}
